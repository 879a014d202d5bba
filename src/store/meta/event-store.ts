/**
 * The event log (docs/adr/0012-event-outbox.md): an outbox in the metadata store that every
 * change writes its events to in the same transaction, and the consumers' cursors and leases.
 */

/** An event as the registry writes it; the store assigns its sequence number. */
export interface NewEvent {
  /** The EventBridge envelope's `id` (a UUID): stable, for consumers to deduplicate. */
  id: string;
  accountId: string;
  /** The repository it is about; null for registry-wide events (a registry policy). */
  repository: string | null;
  /** The envelope's `detail-type`, e.g. "ECR Image Action". */
  detailType: string;
  /** The envelope's time, as epoch milliseconds. */
  timeMs: number;
  /** The whole EventBridge envelope, as it is delivered. */
  body: unknown;
}

export interface StoredEvent extends NewEvent {
  /** Position in the log: strictly increasing in the order the events became visible. */
  seq: number;
}

export interface ConsumerState {
  name: string;
  /** The last sequence number the consumer has handled; 0 before the first. */
  cursor: number;
  leaseOwner: string | null;
  leaseUntilMs: number | null;
}

/** A webhook subscription: the consumer `webhook:<id>` of the log (src/events/webhooks.ts). */
export interface WebhookSubscription {
  id: string;
  /** Only this account's events; null for every account's. */
  accountId: string | null;
  url: string;
  /** An EventBridge event pattern, as JSON text; null for every event. */
  pattern: string | null;
  /** The shared secret, sealed with the instance's secret key (Secrets.seal); the store never sees it plain. */
  secretSealed: string;
  /** Extra request headers, name to value. */
  headers: Record<string, string>;
  timeoutMs: number;
  /** Attempts at one event (the first included) before it becomes a dead letter. */
  maxAttempts: number;
  createdAtMs: number;
  /** A disabled subscription delivers nothing; its cursor waits where it is. */
  isDisabled: boolean;
}

/** An event a subscription gave up on after its attempts. */
export interface DeadLetter {
  subscriptionId: string;
  seq: number;
  eventId: string;
  attempts: number;
  lastError: string;
  failedAtMs: number;
  /** The envelope as it was sent, kept here because the event may be pruned before redelivery. */
  body: unknown;
}

/** The consumer name of a webhook subscription. */
export function webhookConsumer(subscriptionId: string): string {
  return `webhook:${subscriptionId}`;
}

export interface EventStore {
  /**
   * Appends events. Call it inside MetaStore.transaction(), as the transaction's last write:
   * the events become visible when, and only if, the transaction commits, and never before an
   * event with a lower sequence number (on PostgreSQL this takes a transaction-scoped lock
   * held until the commit, see the ADR). Order within the call is kept. Called outside a
   * transaction, it runs in one of its own. All or nothing: an id already in the log rejects
   * the call and writes none of its events. An empty list does nothing.
   */
  append(events: NewEvent[]): Promise<void>;
  /**
   * Events after `after` (a sequence number), in sequence order, at most `limit`; only the
   * account's when `accountId` is given, only the repository's when `repository` is too
   * (`repository` filters by name whenever given). Registry-wide events (repository null) are
   * an account's but no repository's.
   */
  read(query: { after: number; limit: number; accountId?: string | undefined; repository?: string | undefined }): Promise<StoredEvent[]>;
  /**
   * The log read backwards: events before `before` (a sequence number), newest first, at most
   * `limit`, with read()'s filters. Pages go on from the last event's sequence number.
   */
  readBackward(query: { before: number; limit: number; accountId?: string | undefined; repository?: string | undefined }): Promise<StoredEvent[]>;
  /**
   * The highest sequence number in the log; 0 when the log is empty, also after pruning has
   * emptied it (numbers are never reused: the next event still comes after every pruned one).
   * Never a number not yet visible, so a consumer may start its cursor there.
   */
  lastSeq(): Promise<number>;
  /** The consumer's state; a consumer not seen before starts with cursor 0 (created, idempotent). */
  consumer(name: string): Promise<ConsumerState>;
  /**
   * Takes or renews the consumer's lease for `owner` until `untilMs`, if nobody else holds an
   * unexpired one at `nowMs` (a lease is held through its `untilMs`, as a job's is). Resolves
   * whether `owner` holds it now. Creates the consumer if it is new. Of concurrent callers for
   * a free lease, one wins.
   */
  acquireConsumer(name: string, owner: string, nowMs: number, untilMs: number): Promise<boolean>;
  /**
   * Moves the cursor forward to `cursor`, only while `owner` holds the lease (resolves false
   * otherwise, changing nothing); never moves it back, and resolves true for the owner when
   * the cursor is already past `cursor`. "Holds" means the lease was last taken by `owner` and
   * not released: an expired lease nobody has taken over still counts, since no other node has
   * handled the consumer meanwhile.
   */
  advanceConsumer(name: string, owner: string, cursor: number): Promise<boolean>;
  /** Gives up the lease, if `owner` holds it; otherwise does nothing. The cursor stays. */
  releaseConsumer(name: string, owner: string): Promise<void>;
  /**
   * Deletes events written before `beforeMs` that every consumer has passed (sequence at most
   * the lowest cursor; with no consumers, by time alone). Resolves how many went. A consumer
   * created later starts at 0 but finds the pruned events gone.
   */
  prune(beforeMs: number): Promise<number>;
  /** Every consumer, by name. */
  listConsumers(): Promise<ConsumerState[]>;
  /**
   * Forgets a consumer: its cursor and lease. Idempotent. A consumer that is gone no longer holds
   * back pruning; naming it again starts it at 0.
   */
  deleteConsumer(name: string): Promise<void>;

  /**
   * Adds a subscription, and its consumer (`webhookConsumer(id)`) with the cursor at the log's
   * last sequence number, in one transaction: it receives the events written after it, not the
   * log's history. Rejects when the id is taken, writing nothing.
   */
  createWebhook(subscription: WebhookSubscription): Promise<void>;
  /**
   * Creates the subscription as createWebhook does (its consumer at the log's end) when the id
   * is new; otherwise replaces everything but `createdAtMs`, keeping its consumer's cursor, lease
   * and its dead letters. Resolves 'created' or 'updated'. Idempotent: of concurrent callers
   * for a new id, exactly one creates it (the others update it), and none moves a cursor.
   */
  upsertWebhook(subscription: WebhookSubscription): Promise<'created' | 'updated'>;
  /**
   * Every subscription, oldest first (then by id); only those whose id starts with `idPrefix`
   * when given (compared exactly: case-sensitive, no wildcards).
   */
  listWebhooks(options?: { idPrefix?: string }): Promise<WebhookSubscription[]>;
  /** Resolves undefined when there is no such subscription. */
  getWebhook(id: string): Promise<WebhookSubscription | undefined>;
  /** Resolves false (changing nothing) when there is no such subscription. */
  setWebhookDisabled(id: string, isDisabled: boolean): Promise<boolean>;
  /**
   * Deletes the subscription, its dead letters and its consumer, in one transaction. Resolves
   * false when there was no such subscription (any consumer of that name is deleted all the same).
   */
  deleteWebhook(id: string): Promise<boolean>;
  /**
   * Records that the subscription gave up on the event at `seq`; the same `seq` again replaces
   * the record (a redelivery that failed once more). Rejects when the subscription does not exist.
   */
  putDeadLetter(letter: DeadLetter): Promise<void>;
  /** The subscription's dead letters in sequence order, at most `limit`, after `afterSeq` if given. */
  listDeadLetters(subscriptionId: string, options?: { afterSeq?: number; limit?: number }): Promise<DeadLetter[]>;
  /** How many dead letters the subscription has; 0 for a subscription that does not exist. */
  countDeadLetters(subscriptionId: string): Promise<number>;
  /** Resolves false when there was no such dead letter. */
  deleteDeadLetter(subscriptionId: string, seq: number): Promise<boolean>;
}
