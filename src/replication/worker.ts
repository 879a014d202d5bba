import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import type { Digest } from '../digest/digest.ts';
import { isRegistryError } from '../errors/catalogue.ts';
import { consumeEvents, PollLoop } from '../events/consumer.ts';
import { pushedImageDigest } from '../events/envelope.ts';
import type { Config } from '../config/config.ts';
import type { Logger } from '../log/logger.ts';
import type { RepoRef } from '../registry/names.ts';
import { destinationsFor, type ReplicationConfiguration } from '../registry/replication.ts';
import type { Registry } from '../registry/registry.ts';
import type { EventStore } from '../store/meta/event-store.ts';
import { parseDestinationKey, type ReplicationRequest, type ReplicationTask } from '../store/meta/replication-store.ts';
import { copyImage } from './copy.ts';
import { LocalDestination, ReplicationFailure, type Destination } from './destination.ts';
import type { Peer } from './peers.ts';

/** The event-log consumer that turns pushes into replication tasks (docs/adr/0012-event-outbox.md). */
export const REPLICATION_CONSUMER = 'replication';

/** replication.* of the configuration, but the peers (given apart). */
export type ReplicationSettings = Omit<Config['replication'], 'peers'>;

export interface ReplicationWorkerOptions {
  registry: Registry;
  events: EventStore;
  log: Logger;
  /** This deployment's region. */
  region: string;
  peers: readonly Peer[];
  settings: ReplicationSettings;
  /**
   * Whether the replication of `sourceAccount` may do `action` on a repository of another
   * account here (IamAuthorizer.allowsReplication); everything is allowed when auth is off.
   */
  allowsReplication: (sourceAccount: string, action: string, repo: RepoRef) => Promise<boolean>;
  now?: () => number;
}

/** The wait before the next attempt after `attempts` failures: full jitter over an exponential ceiling. */
export function backoffMs(attempts: number, baseMs: number, maxMs: number): number {
  const ceiling = Math.min(maxMs, baseMs * 2 ** Math.min(attempts, 30));
  // Whole milliseconds: the time is stored in an integer column.
  return Math.round(Math.max(Math.min(baseMs, ceiling) / 2, Math.random() * ceiling));
}

/**
 * Replication's background work on one node (docs/replication.md). Two loops share one timer:
 *
 * - pushes: the `replication` consumer of the event log reads `ECR Image Action` PUSH events
 *   (not replicated images, which arrive as `ECR Replication Action`: replication is not
 *   transitive) and asks, for each destination of its account's rules that existed before the
 *   push, for a task. The cursor moves only after the tasks are recorded, so a node dying in
 *   between records them again (recording is idempotent) and none is lost;
 * - tasks: due tasks are leased and copied, at most `concurrency` at once per node. A copy whose
 *   node dies is taken over once its lease runs out; a failure that may pass is retried with
 *   exponential backoff, as long as it takes; one that cannot is FAILED with its code.
 */
export class ReplicationWorker {
  private readonly registry: Registry;
  private readonly events: EventStore;
  private readonly log: Logger;
  private readonly region: string;
  private readonly peers: ReadonlyMap<string, Peer>;
  private readonly settings: ReplicationSettings;
  private readonly allowsReplication: ReplicationWorkerOptions['allowsReplication'];
  private readonly now: () => number;
  readonly owner = `${hostname()}:${process.pid}:${randomUUID().slice(0, 8)}`;
  private readonly destinations = new Map<string, Destination>();
  private readonly loop: PollLoop;
  private readonly running = new Set<Promise<void>>();
  private readonly aborts = new Set<AbortController>();

  constructor(options: ReplicationWorkerOptions) {
    this.registry = options.registry;
    this.events = options.events;
    this.log = options.log.child({ worker: 'replication' });
    this.region = options.region;
    this.peers = new Map(options.peers.map((p) => [p.region, p]));
    this.settings = options.settings;
    this.allowsReplication = options.allowsReplication;
    this.now = options.now ?? Date.now;
    this.loop = new PollLoop({
      intervalMs: this.settings.pollIntervalMs,
      log: this.log,
      what: 'replication',
      steps: [
        ['pushes', () => this.queuePushes()],
        ['tasks', () => this.startTasks()],
      ],
    });
  }

  start(): void {
    if (this.settings.enabled) this.loop.start();
  }

  /** Looks for work now rather than at the next poll (a hint: the work is durable either way). */
  wake(): void {
    if (this.settings.enabled) this.loop.wake();
  }

  async stop(): Promise<void> {
    const stopping = this.loop.stop();
    // Copies in flight stop, and their tasks are handed back at once (PENDING) for another node.
    for (const a of this.aborts) a.abort(new Error('the node is stopping'));
    await stopping;
    await Promise.allSettled([...this.running]);
    for (const d of this.destinations.values()) d.close?.();
    // Another node (or this one restarted) reads the log at once rather than after the lease.
    await this.events.releaseConsumer(REPLICATION_CONSUMER, this.owner).catch(() => undefined);
  }

  /** Reads pushes from the event log and records the replications they call for. */
  async queuePushes(): Promise<number> {
    let queued = 0;
    // Read once per pass: a configuration put meanwhile applies from the next pass, and only to later pushes.
    let configs: Map<string, ReplicationConfiguration> | undefined;
    await consumeEvents(this.events, { name: REPLICATION_CONSUMER, owner: this.owner, leaseMs: this.settings.leaseSeconds * 1000, now: this.now }, async (batch) => {
      configs ??= new Map((await this.registry.replication.configurations()).map(({ accountId, config }) => [accountId, config] as const));
      const requests: ReplicationRequest[] = [];
      for (const event of batch) {
        const digest = pushedImageDigest(event);
        if (digest === undefined || event.repository === null) continue;
        const config = configs.get(event.accountId);
        if (!config) continue;
        const keys = this.destinationsAfter(config, event.repository, event.seq);
        if (keys.length === 0) continue;
        const repository = await this.registry.findRepository({ account: event.accountId, name: event.repository });
        if (!repository) continue;
        const tag = (event.body as { detail?: { 'image-tag'?: string } }).detail?.['image-tag'];
        for (const destination of keys) {
          requests.push({ repositoryId: repository.id, digest, destination, tags: tag ? [tag] : [], reason: 'push', pushedAtMs: event.timeMs });
        }
      }
      queued += await this.registry.replication.request(requests);
    });
    if (queued > 0) this.log.info({ queued }, 'replications queued for pushes');
    return queued;
  }

  /** The destinations of the repository whose rule existed before the event `seq`. */
  private destinationsAfter(config: ReplicationConfiguration, repository: string, seq: number): string[] {
    return destinationsFor(config, repository).filter((key) => seq > (config.startSeqs[key] ?? Number.POSITIVE_INFINITY));
  }

  /** Leases due tasks up to the concurrency and starts them. */
  async startTasks(): Promise<number> {
    const free = this.settings.concurrency - this.running.size;
    if (free <= 0) return 0;
    const leaseMs = this.settings.leaseSeconds * 1000;
    const tasks = await this.registry.replication.claim(this.owner, this.now() + leaseMs, free);
    for (const task of tasks) {
      const run = this.run(task)
        .catch((err: unknown) => {
          // Recording the outcome failed (the store is unreachable): the lease runs out and the task is taken up again.
          this.log.warn({ err, repository: task.repositoryName, digest: task.digest, destination: task.destination }, 'could not record a replication outcome; it is retried once its lease runs out');
        })
        .finally(() => {
          this.running.delete(run);
          // A slot came free: look for more at once rather than at the next poll.
          this.wake();
        });
      this.running.add(run);
    }
    return tasks.length;
  }

  /** Copies one task's image, renewing its lease meanwhile, and records the outcome. */
  private async run(task: ReplicationTask): Promise<void> {
    const leaseMs = this.settings.leaseSeconds * 1000;
    let lost = false;
    const renewal = setInterval(() => {
      void this.registry.replication.renew(task, this.owner, this.now() + leaseMs).then(
        (held) => {
          if (!held) lost = true;
        },
        (err: unknown) => this.log.warn({ err }, 'could not renew a replication lease'),
      );
    }, Math.max(100, leaseMs / 3));
    renewal.unref();
    const log = this.log.child({ repository: task.repositoryName, digest: task.digest, destination: task.destination });
    const started = this.now();
    const abort = new AbortController();
    this.aborts.add(abort);
    try {
      const destination = await this.destinationFor(task);
      const copySettings = this.copiesSettings(task);
      const done = await copyImage(
        { registry: this.registry, destination, source: { account: task.accountId, name: task.repositoryName }, sourceRepositoryId: task.repositoryId, copySettings, signal: abort.signal },
        task.digest as Digest,
        task.tags,
      );
      if (lost) return log.warn('the replication lease was taken over; the outcome is left to the other node');
      await this.registry.replication.complete(task, this.owner, done);
      log.info({ tags: done, durationMs: this.now() - started, lagMs: this.now() - task.pushedAtMs }, 'image replicated');
    } catch (err) {
      if (abort.signal.aborted) {
        log.info('replication stopped with the node; it is handed back for another node');
        await this.registry.replication.release(task, this.owner).catch(() => undefined);
      } else {
        await this.recordFailure(task, err, log);
      }
    } finally {
      clearInterval(renewal);
      this.aborts.delete(abort);
    }
  }

  private async recordFailure(task: ReplicationTask, err: unknown, log: Logger): Promise<void> {
    if (isRegistryError(err, 'ManifestUnknown') || isRegistryError(err, 'NameUnknown')) {
      // The source image or repository was deleted meanwhile; its task goes with it.
      log.info('the image was deleted before it was replicated');
      await this.registry.replication.retry(task, this.owner, 'the source image was deleted', this.now());
      return;
    }
    const failure = err instanceof ReplicationFailure ? err : new ReplicationFailure((err as Error).message ?? String(err), { retryable: true, cause: err });
    if (failure.retryable || failure.failureCode === undefined) {
      const delay = backoffMs(task.attempts, this.settings.retryBaseMs, this.settings.retryMaxMs);
      log.warn({ err: { message: failure.message }, attempts: task.attempts + 1, retryInMs: Math.round(delay) }, 'replication failed; it is retried');
      await this.registry.replication.retry(task, this.owner, failure.message, this.now() + delay);
      return;
    }
    log.warn({ failureCode: failure.failureCode, err: { message: failure.message } }, 'replication failed');
    await this.registry.replication.fail(task, this.owner, failure.failureCode, failure.message);
  }

  private copiesSettings(task: ReplicationTask): boolean {
    const { region } = parseDestinationKey(task.destination);
    const peer = this.peers.get(region);
    return peer?.kind === 'berth' && peer.copySettings.length > 0;
  }

  /** The destination a task's key names (cached, so that remote ones remember where blobs went). */
  private async destinationFor(task: ReplicationTask): Promise<Destination> {
    const cacheKey = `${task.accountId}>${task.destination}`;
    const cached = this.destinations.get(cacheKey);
    if (cached) return cached;
    const { region, registryId } = parseDestinationKey(task.destination);
    const source = { account: task.accountId, region: this.region };
    let destination: Destination;
    if (region === this.region) {
      if (registryId === task.accountId) {
        throw new ReplicationFailure(`A destination in the source's own region and account (${task.destination}) is not a replication.`, { failureCode: 'UNKNOWN_DESTINATION', retryable: false });
      }
      destination = new LocalDestination({ registry: this.registry, source, account: registryId, allows: (action, repo) => this.allowsReplication(task.accountId, action, repo) });
    } else {
      const peer = this.peers.get(region);
      if (!peer) {
        throw new ReplicationFailure(`No peer is configured for region ${region}: add it to replication.peers on every node (docs/replication.md).`, { failureCode: 'UNKNOWN_DESTINATION', retryable: false });
      }
      // Loaded on first use: the HTTP client and the AWS SDK clients it brings are not needed by a
      // deployment without peers, which is most of them.
      const { RemoteDestination } = await import('./remote.ts');
      // Another task may have made it while this one waited: one per destination, so that its
      // transfers are shared (a blob is sent once to it).
      const made = this.destinations.get(cacheKey);
      if (made) return made;
      destination = new RemoteDestination({ peer, registryId, source, chunkBytes: this.settings.chunkBytes });
    }
    this.destinations.set(cacheKey, destination);
    return destination;
  }
}
