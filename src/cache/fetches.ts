import { PassThrough, Transform, type Readable, type TransformCallback } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { RegistryError } from '../errors/catalogue.ts';
import type { Digest } from '../digest/digest.ts';
import type { Logger } from '../log/logger.ts';
import type { RepoRef } from '../registry/names.ts';
import type { Registry } from '../registry/registry.ts';

/** Where a fetch gets a blob: the upstream repository of the rule that covers the repository. */
export interface BlobSource {
  /** Whether the upstream repository holds the blob (before linking bytes cached for another repository). */
  has(): Promise<boolean>;
  /** The upstream's bytes; undefined when it does not hold the blob. */
  open(): Promise<{ size: number | undefined; stream: Readable } | undefined>;
}

export interface BlobFetchesOptions {
  registry: Registry;
  log: Logger;
  /** This node, as the fetch leases name it. */
  owner: string;
  /** A node fetches a blob under a lease of this long, renewed every third; a node that dies is taken over after it. */
  leaseMs: number;
  /** A client that takes no bytes for this long is dropped from a fetch, so that it holds no one else back. */
  stallMs: number;
  /** How often a node waiting on another node's fetch looks whether it finished. */
  pollMs?: number;
  /** Counts the bytes read from upstreams. */
  onBytes?: (n: number) => void;
}

/** What a caller of `fetch` learns once the fetch knows where the bytes will come from. */
export type FetchStart =
  /** This node reads the upstream now: subscribe() before the next turn of the event loop gets every byte. */
  | { kind: 'streaming'; size: number | undefined }
  /** The bytes are already in the store (or another node is fetching them): wait for `done`, then read the store. */
  | { kind: 'stored' }
  | { kind: 'elsewhere' };

/**
 * One fetch of one blob from an upstream into a repository: the bytes are verified against
 * the digest and committed through the registry (which links them to the repository), and
 * streamed meanwhile to every client that subscribed before the first byte (a tee). A client's
 * last chunk is held back until the digest has been verified, so no client ever receives the
 * whole of a blob that does not match; on a mismatch every client's stream is destroyed and
 * nothing is stored. A client that goes away leaves the fetch running for the others and for
 * the cache.
 */
export class BlobFetch {
  readonly digest: Digest;
  /** Resolves when the bytes' origin is known; rejects when the upstream cannot give them. */
  readonly started: Promise<FetchStart>;
  /** Resolves when the blob is committed and linked to the repository; rejects when it could not be. */
  readonly done: Promise<void>;
  private readonly tee: Tee;
  private flowing = false;

  constructor(digest: Digest, run: (fetch: BlobFetch, tee: Tee, start: (s: FetchStart) => void) => Promise<void>) {
    this.digest = digest;
    this.tee = new Tee();
    let start!: (s: FetchStart) => void;
    this.started = new Promise<FetchStart>((resolve) => (start = resolve));
    this.done = run(this, this.tee, (s) => {
      if (s.kind === 'streaming') setImmediate(() => (this.flowing = true));
      start(s);
    });
    // Callers await `started` or `done`; neither rejection is left unhandled when no one does.
    this.done.catch(() => {});
    void this.done.then(
      () => start({ kind: 'stored' }),
      (err: unknown) => {
        // Ignored (and so never handled by `started`) when `started` already resolved: an
        // unhandled rejection would end the process.
        const failed = Promise.reject(err);
        failed.catch(() => {});
        start(failed as never);
      },
    );
    this.started.catch(() => {});
  }

  /** A stream of the blob's bytes, or undefined when the bytes already started flowing (read the store once `done`). */
  subscribe(): Readable | undefined {
    if (this.flowing) return undefined;
    return this.tee.subscribe();
  }
}

/**
 * The blob fetches in progress, one per digest in this process and, through leases in the
 * metadata store, one per digest in the cluster: concurrent first pulls of a blob read the
 * upstream once, whatever node they reach.
 */
export class BlobFetches {
  private readonly options: BlobFetchesOptions;
  private readonly inProgress = new Map<Digest, BlobFetch>();

  constructor(options: BlobFetchesOptions) {
    this.options = options;
  }

  /** The fetch of this digest in progress in this process, if any. */
  current(digest: Digest): BlobFetch | undefined {
    return this.inProgress.get(digest);
  }

  /**
   * The fetch of the blob into `repo` (an existing repository): the one in progress in this
   * process, or a new one. The caller has checked that `source` is the right upstream for it.
   */
  fetch(repo: RepoRef, repositoryId: number, digest: Digest, source: BlobSource): BlobFetch {
    const found = this.inProgress.get(digest);
    if (found) return found;
    const fetch = new BlobFetch(digest, (f, tee, start) => this.run(repo, repositoryId, digest, source, tee, start));
    this.inProgress.set(digest, fetch);
    void fetch.done.finally(() => {
      if (this.inProgress.get(digest) === fetch) this.inProgress.delete(digest);
    }).catch(() => {});
    return fetch;
  }

  private async run(repo: RepoRef, repositoryId: number, digest: Digest, source: BlobSource, tee: Tee, start: (s: FetchStart) => void): Promise<void> {
    const { registry, owner, leaseMs } = this.options;
    const state = registry.pullThroughCache;
    let waiting = false;
    // Bytes cached meanwhile (by another node, or for another repository) are linked, not fetched again.
    const linkedFromStore = async (): Promise<boolean> => {
      if (!((await registry.blobs.stat(digest)) && (await source.has()) && (await registry.linkBlob(repositoryId, digest)))) return false;
      start({ kind: 'stored' });
      tee.finish(new RegistryError('BlobUnknown', { digest }, { message: 'The blob was cached by another request; read it again.' }));
      return true;
    };
    try {
      for (;;) {
        const now = Date.now();
        if (await state.claimFetch(digest, owner, now + leaseMs, now)) {
          // Under the lease, look first: the node that held it (or a pull into another repository)
          // may have stored the blob already.
          if (await linkedFromStore()) {
            await state.releaseFetch(digest, owner).catch(() => {});
            return;
          }
          break;
        }
        if (!waiting) {
          waiting = true;
          start({ kind: 'elsewhere' });
        }
        await sleep(this.options.pollMs ?? 250);
      }
    } catch (err) {
      tee.finish(err as Error);
      throw err;
    }
    const renew = setInterval(() => {
      state.renewFetch(digest, owner, Date.now() + leaseMs).catch((err: unknown) => this.options.log.warn({ err, digest }, 'could not renew the lease of a blob fetch'));
    }, Math.max(1000, Math.floor(leaseMs / 3)));
    let opened: Awaited<ReturnType<BlobSource['open']>>;
    try {
      opened = await source.open();
      if (!opened) {
        throw new RegistryError('BlobUnknown', { digest }, { message: `Blob ${digest} is neither cached in repository ${repo.name} nor held by its upstream.` });
      }
      // Callers already told to wait read the store once this is done; those that come with the
      // start subscribe now and get every byte: let them attach before the first one.
      if (!waiting) {
        start({ kind: 'streaming', size: opened.size });
        await new Promise((resolve) => setImmediate(resolve));
      }
      tee.onBytes = this.options.onBytes;
      tee.stallMs = this.options.stallMs;
      opened.stream.pipe(tee);
      // The push reports the tee's failure; after the push, nothing may throw from it.
      tee.on('error', () => {});
      opened.stream.on('error', (err) => tee.destroy(err));
      // A stream closed before its end without an error still fails the fetch, rather than leave it waiting.
      const upstream = opened.stream;
      upstream.on('close', () => {
        if (!upstream.readableEnded && !tee.destroyed && !tee.writableFinished) tee.destroy(new Error('the upstream closed the blob before its end'));
      });
      const length = opened.size;
      await registry.pushBlob(repo, digest, tee, length === undefined ? {} : { length });
      tee.finish();
      this.options.log.info({ account: repo.account, repository: repo.name, digest, sizeBytes: tee.bytes }, 'blob cached from upstream');
    } catch (err) {
      tee.finish(err as Error);
      // A push that failed before reading every byte would leave the upstream's connection held.
      opened?.stream.unpipe(tee);
      opened?.stream.destroy();
      throw err;
    } finally {
      clearInterval(renew);
      await state.releaseFetch(digest, owner).catch(() => {});
    }
  }
}

/**
 * Passes an upstream's bytes on to the registry's upload (its readable side) and to the
 * subscribed clients, one chunk behind: the last chunk reaches the clients only when finish()
 * says the digest matched.
 */
class Tee extends Transform {
  private readonly subscribers = new Set<PassThrough>();
  private held: Buffer | undefined;
  bytes = 0;
  onBytes: ((n: number) => void) | undefined;
  stallMs = 60_000;
  private finished = false;

  constructor() {
    super({ highWaterMark: 1024 * 1024 });
  }

  subscribe(): Readable {
    const sub = new PassThrough({ highWaterMark: 1024 * 1024 });
    this.subscribers.add(sub);
    sub.on('close', () => this.subscribers.delete(sub));
    return sub;
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    this.bytes += chunk.length;
    this.onBytes?.(chunk.length);
    const previous = this.held;
    this.held = chunk;
    if (previous === undefined || this.subscribers.size === 0) {
      callback(null, chunk);
      return;
    }
    this.deliver(previous).then(() => callback(null, chunk), callback);
  }

  /** Writes to every subscriber, waiting for the slow ones to drain (dropping one that stalls). */
  private async deliver(chunk: Buffer): Promise<void> {
    const waits: Promise<void>[] = [];
    for (const sub of this.subscribers) {
      if (sub.destroyed) continue;
      if (!sub.write(chunk)) waits.push(this.drained(sub));
    }
    if (waits.length > 0) await Promise.all(waits);
  }

  private drained(sub: PassThrough): Promise<void> {
    return new Promise<void>((resolve) => {
      const timer = setTimeout(() => {
        sub.destroy(new Error('the client took no bytes for too long'));
      }, this.stallMs);
      const done = () => {
        clearTimeout(timer);
        sub.off('drain', done);
        sub.off('close', done);
        resolve();
      };
      sub.on('drain', done);
      sub.on('close', done);
    });
  }

  /** Ends the subscribers: with the held last chunk when the blob was verified and stored, destroyed otherwise. */
  finish(err?: Error): void {
    if (this.finished) return;
    this.finished = true;
    const last = this.held;
    this.held = undefined;
    for (const sub of this.subscribers) {
      if (err) sub.destroy(err);
      else {
        if (last) sub.write(last);
        sub.end();
      }
    }
  }
}

export type { Tee };
