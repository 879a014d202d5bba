import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { PassThrough, Readable } from 'node:stream';
import { test, type TestContext } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { digestOf, type Digest } from '../digest/digest.ts';
import { isRegistryError } from '../errors/catalogue.ts';
import { createLogger } from '../log/logger.ts';
import { allowAll } from '../registry/access.ts';
import type { RepoRef } from '../registry/names.ts';
import { Registry, type RegistryOptions } from '../registry/registry.ts';
import { FsBlobStore } from '../store/blob/fs/fs-blob-store.ts';
import type { CacheStore } from '../store/meta/cache-store.ts';
import { openSqliteMetaStore } from '../store/meta/sqlite/sqlite-meta-store.ts';
import { BlobFetches, type BlobFetch, type BlobSource } from './fetches.ts';

const ACCOUNT = '111122223333';
const log = createLogger({ level: 'silent' });

/**
 * The real registry, on SQLite and the filesystem, that also tells when a blob push (the
 * fetch's commit) resolved, and counts fetch-lease claims: what a fetch did, seen from outside.
 */
class WatchedRegistry extends Registry {
  commits = 0;
  claims = 0;

  constructor(options: RegistryOptions) {
    super(options);
    const cache = options.meta.cache;
    const counted: CacheStore = {
      listRules: (...a) => cache.listRules(...a),
      getRule: (...a) => cache.getRule(...a),
      createRule: (...a) => cache.createRule(...a),
      updateRule: (...a) => cache.updateRule(...a),
      deleteRule: (...a) => cache.deleteRule(...a),
      tagCheck: (...a) => cache.tagCheck(...a),
      recordTagCheck: (...a) => cache.recordTagCheck(...a),
      claimFetch: (...a) => {
        this.claims++;
        return cache.claimFetch(...a);
      },
      renewFetch: (...a) => cache.renewFetch(...a),
      releaseFetch: (...a) => cache.releaseFetch(...a),
    };
    Object.defineProperty(this, 'pullThroughCache', { value: counted });
  }

  override async pushBlob(...args: Parameters<Registry['pushBlob']>): ReturnType<Registry['pushBlob']> {
    const blob = await super.pushBlob(...args);
    this.commits++;
    return blob;
  }
}

interface Setup {
  registry: WatchedRegistry;
  fetches: BlobFetches;
  /** fetches.fetch into the test's repository. */
  fetch(digest: Digest, source: BlobSource): BlobFetch;
  /** A source that is destroyed after the test if the test left it open (a failed test ends its fetches). */
  source(options?: { size?: number | undefined; holds?: boolean }): ControlledSource;
  repo: RepoRef;
  repositoryId: number;
  /** Whether the repository links the blob and the blob store holds its bytes. */
  stored(digest: Digest): Promise<{ linked: boolean; bytes: boolean }>;
  /** Upload sessions left behind. */
  uploads(): Promise<number>;
}

async function setup(t: TestContext, options: { stallMs?: number; leaseMs?: number } = {}): Promise<Setup> {
  const dir = await mkdtemp(path.join(tmpdir(), 'berth-fetches-'));
  const meta = await openSqliteMetaStore(path.join(dir, 'metadata.db'));
  const blobs = await FsBlobStore.open(path.join(dir, 'blobs'));
  const registry = new WatchedRegistry({
    meta,
    blobs,
    authorizer: allowAll,
    log,
    region: 'us-east-1',
    createOnPush: false,
    uploadTtlMs: 3_600_000,
    manifestMaxBytes: 4 * 1024 * 1024,
    cacheTtlMs: 0,
    manifestCacheBytes: 1024 * 1024,
  });
  const sources: ControlledSource[] = [];
  const made: BlobFetch[] = [];
  t.after(async () => {
    for (const source of sources) {
      if (source.stream.readableEnded || source.stream.destroyed) continue;
      source.stream.on('error', () => {});
      source.stream.destroy(new Error('the test is over'));
    }
    // A fetch waiting on another node's lease ends once the store closes under it.
    await Promise.race([Promise.allSettled(made.map((f) => f.done)), sleep(5_000, undefined, { ref: false })]);
    await registry.close();
    await blobs.close();
    await meta.close();
    await rm(dir, { recursive: true, force: true });
  });
  const repo = { account: ACCOUNT, name: 'quay/coreos/etcd' };
  const { repository } = await registry.createRepository(repo);
  const fetches = new BlobFetches({ registry, log, owner: 'node-here', leaseMs: options.leaseMs ?? 60_000, stallMs: options.stallMs ?? 60_000, pollMs: 20 });
  return {
    registry,
    fetches,
    fetch(digest, source) {
      const fetch = fetches.fetch(repo, repository.id, digest, source);
      made.push(fetch);
      return fetch;
    },
    source(sourceOptions) {
      const source = new ControlledSource(sourceOptions);
      sources.push(source);
      return source;
    },
    repo,
    repositoryId: repository.id,
    async stored(digest) {
      return { linked: (await registry.findLinkedBlobs(repository.id, [digest])).has(digest), bytes: (await blobs.stat(digest)) !== undefined };
    },
    async uploads() {
      return (await meta.listStaleUploads(Date.now() + 3_600_000, 100)).length;
    },
  };
}

/** An upstream whose bytes the test writes, chunk by chunk, and ends (or fails) when it chooses. */
class ControlledSource implements BlobSource {
  readonly stream = new PassThrough();
  opens = 0;
  private readonly size: number | undefined;
  private readonly holds: boolean;

  constructor(options: { size?: number | undefined; holds?: boolean } = {}) {
    this.size = options.size;
    this.holds = options.holds ?? true;
  }

  async has(): Promise<boolean> {
    return this.holds;
  }

  async open(): Promise<{ size: number | undefined; stream: Readable } | undefined> {
    this.opens++;
    if (!this.holds) return undefined;
    return { size: this.size, stream: this.stream };
  }

  write(...chunks: Buffer[]): void {
    for (const c of chunks) this.stream.write(c);
  }

  end(...chunks: Buffer[]): void {
    this.write(...chunks);
    this.stream.end();
  }
}

/** Reads a subscriber's stream as a client would, recording what arrived and when it ended. */
interface Client {
  bytes: number;
  body(): Buffer;
  /** The registry's commits counted when the last expected byte arrived. */
  commitsAtFull: number | undefined;
  error: Error | undefined;
  ended: Promise<Buffer>;
}

function client(stream: Readable | undefined, registry: WatchedRegistry, expectedBytes: number): Client {
  assert.ok(stream, 'subscribed before the bytes flowed');
  const chunks: Buffer[] = [];
  const c: Client = {
    bytes: 0,
    body: () => Buffer.concat(chunks),
    commitsAtFull: undefined,
    error: undefined,
    ended: new Promise<Buffer>((resolve, reject) => {
      stream.on('data', (chunk: Buffer) => {
        chunks.push(chunk);
        c.bytes += chunk.length;
        if (c.bytes >= expectedBytes && c.commitsAtFull === undefined) c.commitsAtFull = registry.commits;
      });
      stream.on('end', () => resolve(Buffer.concat(chunks)));
      stream.on('error', (err) => {
        c.error = err;
        reject(err);
      });
    }),
  };
  c.ended.catch(() => {});
  return c;
}

async function waitFor(check: () => boolean | Promise<boolean>, what: string, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

function chunks(count: number, sizeBytes: number): { parts: Buffer[]; whole: Buffer; digest: Digest } {
  const parts = Array.from({ length: count }, () => randomBytes(sizeBytes));
  const whole = Buffer.concat(parts);
  return { parts, whole, digest: digestOf(whole) as Digest };
}

async function streaming(fetch: BlobFetch): Promise<number | undefined> {
  const started = await fetch.started;
  assert.equal(started.kind, 'streaming');
  return started.kind === 'streaming' ? started.size : undefined;
}

test('two clients subscribed at the start get byte-identical bytes; the blob is stored and linked', async (t) => {
  const s = await setup(t);
  const { parts, whole, digest } = chunks(40, 64 * 1024);
  const source = s.source({ size: whole.length });
  const fetch = s.fetch(digest, source);
  assert.equal(await streaming(fetch), whole.length, 'the upstream’s size is passed on');
  const a = client(fetch.subscribe(), s.registry, whole.length);
  const b = client(fetch.subscribe(), s.registry, whole.length);
  source.end(...parts);
  await fetch.done;
  assert.ok((await a.ended).equals(whole), 'client a got every byte');
  assert.ok((await b.ended).equals(whole), 'client b got every byte');
  assert.equal(source.opens, 1, 'the upstream was read once');
  assert.deepEqual(await s.stored(digest), { linked: true, bytes: true });
  assert.equal(fetch.subscribe(), undefined, 'a late subscriber is told to read the store');
  assert.equal(await s.uploads(), 0, 'no upload session left');
  await waitFor(() => s.fetches.current(digest) === undefined, 'the fetch to leave the in-progress map');
});

test('the last chunk is held back until the blob is committed', async (t) => {
  const s = await setup(t);
  const { parts, whole, digest } = chunks(3, 64 * 1024);
  const source = s.source({ size: whole.length });
  const fetch = s.fetch(digest, source);
  await streaming(fetch);
  const c = client(fetch.subscribe(), s.registry, whole.length);
  source.write(...parts);
  // Every byte has come from the upstream, which has not ended: the client has all but the last chunk.
  await waitFor(() => c.bytes >= 2 * 64 * 1024, 'the first two chunks to reach the client');
  assert.equal(c.bytes, 2 * 64 * 1024, 'the third chunk is held');
  assert.equal(s.registry.commits, 0);
  source.end();
  await fetch.done;
  assert.ok((await c.ended).equals(whole));
  assert.equal(c.commitsAtFull, 1, 'the client saw its last byte only once the commit had resolved');
});

test('bytes that do not match the digest: every client stream errors before its end, nothing is stored', async (t) => {
  const s = await setup(t);
  const { parts, whole } = chunks(8, 32 * 1024);
  const claimed = digestOf(Buffer.concat([whole.subarray(1), Buffer.from([whole[0]! ^ 1])])) as Digest;
  const source = s.source({ size: whole.length });
  const fetch = s.fetch(claimed, source);
  await streaming(fetch);
  const a = client(fetch.subscribe(), s.registry, whole.length);
  const b = client(fetch.subscribe(), s.registry, whole.length);
  source.end(...parts);
  await assert.rejects(fetch.done, (err: unknown) => isRegistryError(err, 'DigestInvalid'), 'the fetch fails on the digest');
  await assert.rejects(a.ended);
  await assert.rejects(b.ended);
  for (const c of [a, b]) {
    assert.ok(c.error, 'the stream errored');
    assert.ok(c.bytes < whole.length, `a client never gets the whole of a bad blob (${c.bytes} of ${whole.length})`);
  }
  assert.deepEqual(await s.stored(claimed), { linked: false, bytes: false }, 'nothing stored');
  assert.deepEqual(await s.stored(digestOf(whole) as Digest), { linked: false, bytes: false }, 'not even under the bytes’ own digest');
  assert.equal(await s.uploads(), 0, 'the upload was discarded');
  assert.equal(await s.registry.pullThroughCache.claimFetch(claimed, 'node-other', Date.now() + 60_000, Date.now()), true, 'the lease was released');
  await waitFor(() => s.fetches.current(claimed) === undefined, 'the failed fetch to leave the in-progress map');
});

test('an upstream connection that fails midway: clients error, nothing is stored, a new fetch starts afresh', async (t) => {
  const s = await setup(t);
  const { parts, whole, digest } = chunks(8, 32 * 1024);
  const source = s.source({ size: whole.length });
  const fetch = s.fetch(digest, source);
  await streaming(fetch);
  const c = client(fetch.subscribe(), s.registry, whole.length);
  source.write(...parts.slice(0, 4));
  await waitFor(() => c.bytes > 0, 'some bytes to reach the client');
  source.stream.destroy(new Error('connection reset by the upstream'));
  await assert.rejects(fetch.done);
  await assert.rejects(c.ended);
  assert.deepEqual(await s.stored(digest), { linked: false, bytes: false });
  await waitFor(() => s.fetches.current(digest) === undefined, 'the failed fetch to leave the in-progress map');

  const retry = s.source({ size: whole.length });
  const again = s.fetch(digest, retry);
  assert.notEqual(again, fetch);
  await streaming(again);
  retry.end(...parts);
  await again.done;
  assert.deepEqual(await s.stored(digest), { linked: true, bytes: true });
});

test('a client that goes away midway does not stop the fetch: the other client and the cache get the blob', async (t) => {
  const s = await setup(t);
  const { parts, whole, digest } = chunks(16, 64 * 1024);
  const source = s.source({ size: whole.length });
  const fetch = s.fetch(digest, source);
  await streaming(fetch);
  const leaving = fetch.subscribe();
  const gone = client(leaving, s.registry, whole.length);
  const staying = client(fetch.subscribe(), s.registry, whole.length);
  source.write(...parts.slice(0, 4));
  await waitFor(() => gone.bytes > 0, 'the first bytes to reach the leaving client');
  leaving!.destroy();
  source.end(...parts.slice(4));
  await fetch.done;
  assert.ok(gone.bytes < whole.length);
  assert.ok((await staying.ended).equals(whole), 'the staying client got every byte');
  assert.deepEqual(await s.stored(digest), { linked: true, bytes: true });
});

test('the only client going away midway leaves the fetch running into the cache', async (t) => {
  const s = await setup(t);
  const { parts, whole, digest } = chunks(16, 64 * 1024);
  const source = s.source({ size: whole.length });
  const fetch = s.fetch(digest, source);
  await streaming(fetch);
  const leaving = fetch.subscribe();
  const gone = client(leaving, s.registry, whole.length);
  source.write(...parts.slice(0, 2));
  await waitFor(() => gone.bytes > 0, 'the first bytes to reach the client');
  leaving!.destroy();
  source.end(...parts.slice(2));
  await fetch.done;
  assert.deepEqual(await s.stored(digest), { linked: true, bytes: true });
});

test('a client that never reads is dropped after stallMs; the other client and the cache get the blob', async (t) => {
  const stallMs = 300;
  const s = await setup(t, { stallMs });
  // Far more than the subscriber's and the tee's buffers hold.
  const { parts, whole, digest } = chunks(64, 64 * 1024);
  const source = s.source({ size: whole.length });
  const fetch = s.fetch(digest, source);
  await streaming(fetch);
  const stalled = fetch.subscribe()!;
  let stallError: Error | undefined;
  stalled.on('error', (err) => (stallError = err));
  const reading = client(fetch.subscribe(), s.registry, whole.length);
  const startedAt = Date.now();
  source.end(...parts);
  await fetch.done;
  assert.ok(Date.now() - startedAt >= stallMs - 20, 'the fetch waited for the slow client as long as stallMs');
  assert.ok(stalled.destroyed, 'the stalled client was dropped');
  assert.match(stallError?.message ?? '', /no bytes for too long/);
  assert.ok((await reading.ended).equals(whole), 'the reading client got every byte');
  assert.deepEqual(await s.stored(digest), { linked: true, bytes: true });
});

test('a second fetch of a digest while one runs is the same fetch; after it, a fetch finds the blob stored', async (t) => {
  const s = await setup(t);
  const { parts, whole, digest } = chunks(4, 16 * 1024);
  const source = s.source({ size: whole.length });
  const first = s.fetch(digest, source);
  const other = s.source({ size: whole.length });
  assert.equal(s.fetch(digest, other), first);
  assert.equal(s.fetches.current(digest), first);
  await streaming(first);
  const c = client(first.subscribe(), s.registry, whole.length);
  assert.equal(s.fetch(digest, other), first, 'still the same while the bytes flow');
  source.end(...parts);
  await first.done;
  assert.ok((await c.ended).equals(whole));
  assert.equal(source.opens, 1);
  assert.equal(other.opens, 0, 'the second source was never read');
  await waitFor(() => s.fetches.current(digest) === undefined, 'the fetch to leave the in-progress map');

  const later = s.fetch(digest, other);
  assert.notEqual(later, first);
  assert.deepEqual(await later.started, { kind: 'stored' });
  await later.done;
  assert.equal(other.opens, 0, 'a stored blob is not fetched again');
});

test('an upstream that lacks the blob: the fetch fails with BlobUnknown and releases its lease', async (t) => {
  const s = await setup(t);
  const digest = digestOf(randomBytes(100)) as Digest;
  const fetch = s.fetch(digest, s.source({ holds: false }));
  await assert.rejects(fetch.started, (err: unknown) => isRegistryError(err, 'BlobUnknown'));
  await assert.rejects(fetch.done, (err: unknown) => isRegistryError(err, 'BlobUnknown'));
  assert.equal(await s.registry.pullThroughCache.claimFetch(digest, 'node-other', Date.now() + 60_000, Date.now()), true, 'the lease was released');
});

test('a lease held by another node: the fetch reports "elsewhere", never reads the upstream, and completes once that node’s blob appears', async (t) => {
  const s = await setup(t);
  const { whole, digest } = chunks(4, 16 * 1024);
  const cache = s.registry.pullThroughCache;
  assert.equal(await cache.claimFetch(digest, 'node-other', Date.now() + 60_000, Date.now()), true);
  const source = s.source({ size: whole.length });
  const fetch = s.fetch(digest, source);
  let settled = false;
  void fetch.done.then(() => (settled = true), () => (settled = true));
  assert.deepEqual(await fetch.started, { kind: 'elsewhere' });
  const claimsAtStart = s.registry.claims;
  await waitFor(() => s.registry.claims >= claimsAtStart + 3, 'the fetch to look at the lease again a few times');
  assert.equal(settled, false, 'it waits while the other node holds the lease');
  assert.equal(source.opens, 0);

  // The other node stores the blob (into the repository it was caching for) and lets its lease go.
  const elsewhere = { account: ACCOUNT, name: 'quay/coreos/etcd-other-node' };
  await s.registry.createRepository(elsewhere);
  await s.registry.pushBlob(elsewhere, digest, Readable.from([whole]), { length: whole.length });
  await cache.releaseFetch(digest, 'node-other');
  await fetch.done;
  assert.equal(source.opens, 0, 'the upstream was never read here');
  assert.deepEqual(await s.stored(digest), { linked: true, bytes: true }, 'linked into this repository');
});

test('a lease another node lets go of without storing the blob: this node fetches it', async (t) => {
  const s = await setup(t);
  const { parts, whole, digest } = chunks(4, 16 * 1024);
  const cache = s.registry.pullThroughCache;
  await cache.claimFetch(digest, 'node-other', Date.now() + 60_000, Date.now());
  const source = s.source({ size: whole.length });
  const fetch = s.fetch(digest, source);
  assert.deepEqual(await fetch.started, { kind: 'elsewhere' });
  source.end(...parts);
  await cache.releaseFetch(digest, 'node-other');
  await fetch.done;
  assert.equal(source.opens, 1);
  assert.deepEqual(await s.stored(digest), { linked: true, bytes: true });
});

test('a lease of a node that died (not renewed) is taken over once it expires', async (t) => {
  const s = await setup(t);
  const { parts, whole, digest } = chunks(4, 16 * 1024);
  const cache = s.registry.pullThroughCache;
  const expiresAt = Date.now() + 400;
  await cache.claimFetch(digest, 'node-dead', expiresAt, Date.now());
  const source = s.source({ size: whole.length });
  source.end(...parts);
  const fetch = s.fetch(digest, source);
  assert.deepEqual(await fetch.started, { kind: 'elsewhere' });
  await fetch.done;
  assert.ok(Date.now() >= expiresAt, 'not before the lease expired');
  assert.equal(source.opens, 1);
  assert.deepEqual(await s.stored(digest), { linked: true, bytes: true });
  assert.equal(await cache.renewFetch(digest, 'node-dead', Date.now() + 60_000), false, 'the dead node’s lease is gone');
});

test('a fetch whose commit fails lets go of the upstream connection', async (t) => {
  const s = await setup(t);
  const { parts, whole, digest } = chunks(64, 64 * 1024);
  // The repository goes (deleted meanwhile): the push into it fails before it reads a byte.
  const repository = await s.registry.getRepository(s.repo);
  await s.registry.deleteRepository(repository, { force: true });
  const source = s.source({ size: whole.length });
  source.write(...parts);
  const fetch = s.fetch(digest, source);
  await assert.rejects(fetch.done);
  await waitFor(() => source.stream.destroyed, 'the upstream stream to be destroyed rather than left half read');
});
