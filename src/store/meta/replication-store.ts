/**
 * Replication's state in the metadata store (docs/replication.md): each account's replication
 * configuration, and one task per image and destination, which is both the image's replication
 * status (DescribeImageReplicationStatus) and the work queue the replication workers lease from.
 */

/** An account's replication configuration, as PutReplicationConfiguration stored it. */
export interface StoredReplicationConfiguration {
  /** ECR's rules, as JSON text: `[{destinations:[{region,registryId}], repositoryFilters?:[{filter,filterType}]}]`. */
  rules: string;
  /**
   * For each destination (`destinationKey`), the last event-log sequence number written before it
   * was added: replication starts with the pushes after it, as in ECR. JSON text of an object.
   */
  startSeqs: string;
  updatedAtMs: number;
}

/**
 * A task's status. PENDING: waiting for a worker (new, changed, or retrying after a failure,
 * not before `nextAttemptAtMs`); IN_PROGRESS: a worker holds its lease; COMPLETE: the
 * destination holds the image and every tag asked for; FAILED: a failure that retrying cannot
 * mend (`failureCode`), until the image is pushed again or backfilled.
 */
export type ReplicationTaskStatus = 'PENDING' | 'IN_PROGRESS' | 'COMPLETE' | 'FAILED';

export interface ReplicationTaskKey {
  repositoryId: number;
  digest: string;
  /** `destinationKey(region, registryId)`. */
  destination: string;
}

export interface ReplicationTask extends ReplicationTaskKey {
  accountId: string;
  repositoryName: string;
  status: ReplicationTaskStatus;
  /** Tags still to point at the image in the destination (a push by digest adds none). */
  tags: string[];
  /** 'push' or 'backfill': why the task exists. */
  reason: string;
  /** Grows with every request that changes the task; a worker's outcome applies only to the version it read. */
  version: number;
  /** Failed attempts since the last request (for the backoff). */
  attempts: number;
  nextAttemptAtMs: number;
  /** When the image was pushed (the event's time), for lag. */
  pushedAtMs: number;
  requestedAtMs: number;
  completedAtMs: number | null;
  failureCode: string | null;
  lastError: string | null;
  leaseOwner: string | null;
  leaseUntilMs: number | null;
}

export interface ReplicationRequest extends ReplicationTaskKey {
  tags: string[];
  /** push: a push asks; backfill: only where no task exists; retry: only a FAILED task, again. */
  reason: 'push' | 'backfill' | 'retry';
  pushedAtMs: number;
}

/** Per destination: how much is waiting and how far behind it is. */
export interface ReplicationDestinationSummary {
  destination: string;
  pending: number;
  inProgress: number;
  failed: number;
  complete: number;
  /** When the oldest image still waiting (PENDING or IN_PROGRESS) was pushed; null when none waits. */
  oldestWaitingPushedAtMs: number | null;
  lastCompletedAtMs: number | null;
  /** The last error of a waiting task, if any (a destination that is down says why). */
  lastError: string | null;
  /** The error of a FAILED task, if any, with its code. */
  lastFailure: { failureCode: string | null; error: string | null } | null;
}

/** The key a destination is stored under: `REGION/REGISTRYID`. */
export function destinationKey(region: string, registryId: string): string {
  return `${region}/${registryId}`;
}

export function parseDestinationKey(key: string): { region: string; registryId: string } {
  const slash = key.indexOf('/');
  return { region: key.slice(0, slash), registryId: key.slice(slash + 1) };
}

export interface ReplicationStore {
  /** Resolves undefined when the account never put one. */
  getConfiguration(accountId: string): Promise<StoredReplicationConfiguration | undefined>;
  /** Replaces the account's configuration (idempotent). */
  putConfiguration(accountId: string, config: StoredReplicationConfiguration): Promise<void>;
  /** Every account's configuration that has at least one rule. */
  listConfigurations(): Promise<Array<{ accountId: string; config: StoredReplicationConfiguration }>>;

  /**
   * Asks for images to be replicated. A `push` request creates the task (PENDING) or, for an
   * existing one, adds its tags, bumps its version and makes it PENDING again now (an
   * IN_PROGRESS task keeps its lease: its worker's outcome then leaves it PENDING for another
   * round). A `backfill` request only creates tasks that do not exist, so a backfill copies an
   * image at most once. A `retry` request makes a FAILED task PENDING again (with its tags) and
   * leaves every other alone. A request for a manifest that no longer exists is dropped. Resolves
   * how many tasks were created or changed.
   */
  request(requests: ReplicationRequest[], nowMs: number): Promise<number>;
  /**
   * Leases at most `limit` due tasks to `owner` until `untilMs`: PENDING ones whose next attempt
   * is due, and IN_PROGRESS ones whose lease ran out (their node died). Of concurrent callers,
   * each task goes to one.
   */
  claim(owner: string, nowMs: number, untilMs: number, limit: number): Promise<ReplicationTask[]>;
  /** Extends the lease while `owner` holds it; false when it does not (another node took over). */
  renew(key: ReplicationTaskKey, owner: string, untilMs: number): Promise<boolean>;
  /**
   * Records that the destination holds the image and `tagsDone`. COMPLETE when the version is
   * still `version`; otherwise (a request came meanwhile) PENDING with the tags not yet done.
   * False when `owner` no longer holds the task.
   */
  complete(key: ReplicationTaskKey, owner: string, version: number, tagsDone: string[], nowMs: number): Promise<boolean>;
  /** PENDING again at once, attempts not counted (the node holding it is stopping). False when `owner` no longer holds it. */
  release(key: ReplicationTaskKey, owner: string, nowMs: number): Promise<boolean>;
  /** PENDING again, not before `nextAttemptAtMs`, with attempts counted and the error kept. False when `owner` no longer holds it. */
  retry(key: ReplicationTaskKey, owner: string, failure: { error: string; nextAttemptAtMs: number }): Promise<boolean>;
  /** FAILED with `failureCode` (or PENDING when a request came meanwhile). False when `owner` no longer holds it. */
  fail(key: ReplicationTaskKey, owner: string, version: number, failure: { failureCode: string; error: string; nowMs: number }): Promise<boolean>;
  /** The image's tasks, by destination. */
  tasksOf(repositoryId: number, digest: string): Promise<ReplicationTask[]>;
  /** Per destination, over every task. */
  summary(): Promise<ReplicationDestinationSummary[]>;
}
