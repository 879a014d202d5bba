import assert from 'node:assert/strict';
import { describe } from 'node:test';
import type { Readable } from 'node:stream';
import { collectGarbage, storageReport, type GcReport } from '../../src/gc/collector.ts';
import { createLogger } from '../../src/log/logger.ts';
import { digestOf, type Digest } from '../../src/digest/digest.ts';
import type { BlobInfo, BlobStore } from '../../src/store/blob/blob-store.ts';
import type { ManifestReference, MetaStore, Repository } from '../../src/store/meta/meta-store.ts';
import { manifest, storeTest, T0, type MetaStoreHarness } from './harness.ts';

/** Epoch milliseconds past 2^32, as the registry passes them. */
const HOUR = 3_600_000;
const ACCOUNT = '111122223333';
const OTHER_ACCOUNT = '444455556666';
const INDEX_MT = 'application/vnd.oci.image.index.v1+json';
const silent = createLogger({ level: 'silent' });

let nextId = 0;
function blobDigest(label = `b${nextId++}`): Digest {
  return digestOf(Buffer.from(`gc contract ${label} ${Math.random()}`));
}

const blobRefs = (...digests: Digest[]): ManifestReference[] => digests.map((digest) => ({ digest, kind: 'blob' }));
const childRefs = (...digests: Digest[]): ManifestReference[] => digests.map((digest) => ({ digest, kind: 'manifest' }));

/**
 * Blob bytes in memory, with the times they appeared: enough of a BlobStore for the collector
 * (stat, delete, listBlobs). The real drivers are exercised by test/e2e/gc.test.ts.
 */
export class MemoryBytes implements BlobStore {
  readonly bytes = new Map<Digest, { sizeBytes: number; modifiedAtMs: number }>();
  /** Called after each delete has removed the bytes; throwing fails that delete (a crash just after it). */
  afterDelete: (digest: Digest) => void | Promise<void> = () => {};

  put(digest: Digest, sizeBytes: number, modifiedAtMs: number): void {
    this.bytes.set(digest, { sizeBytes, modifiedAtMs });
  }
  async stat(digest: Digest): Promise<BlobInfo | undefined> {
    const b = this.bytes.get(digest);
    return b && { digest, sizeBytes: b.sizeBytes };
  }
  async delete(digest: Digest): Promise<void> {
    this.bytes.delete(digest);
    await this.afterDelete(digest);
  }
  async *listBlobs(): AsyncIterable<{ digest: Digest; sizeBytes: number; modifiedAtMs: number }> {
    for (const [digest, b] of [...this.bytes]) yield { digest, ...b };
  }
  read(): Promise<Readable> {
    throw new Error('not in this fake');
  }
  createUpload(): Promise<void> {
    throw new Error('not in this fake');
  }
  append(): Promise<number> {
    throw new Error('not in this fake');
  }
  commit(): Promise<BlobInfo> {
    throw new Error('not in this fake');
  }
  abortUpload(): Promise<void> {
    throw new Error('not in this fake');
  }
  async *listUploads(): AsyncIterable<{ uploadId: string; modifiedAtMs: number }> {}
  async check(): Promise<void> {}
  async close(): Promise<void> {}
}

/** Records a blob (row and bytes) used at `atMs`, linked to the repositories given. */
async function addBlob(store: MetaStore, bytes: MemoryBytes, atMs: number, sizeBytes: number, ...repos: Repository[]): Promise<Digest> {
  const digest = blobDigest();
  bytes.put(digest, sizeBytes, atMs);
  await store.putBlob({ digest, sizeBytes }, atMs);
  for (const r of repos) await store.linkBlob(r.id, digest, atMs);
  return digest;
}

async function lastUsed(store: MetaStore, digest: Digest): Promise<number | undefined> {
  return (await store.gc.getBlobUsage([digest])).get(digest)?.lastUsedAtMs;
}

/** Starts both at once, the writer first in even iterations and the collector first in odd ones. */
async function race<W, C>(i: number, writer: () => Promise<W>, collector: () => Promise<C>): Promise<[W, C]> {
  if (i % 2 === 0) {
    const w = writer();
    return Promise.all([w, collector()]);
  }
  const c = collector();
  return Promise.all([writer(), c]);
}

/** The parts of a report that a dry run and a real run must agree on. */
function removals(r: GcReport) {
  return { manifests: r.manifests, blobs: r.blobs, orphans: r.orphans, bytesReclaimed: r.bytesReclaimed, manifestBytesReclaimed: r.manifestBytesReclaimed };
}

/**
 * Garbage collection's queries and deletions (GcStore) and the collector over them, on every
 * MetaStore driver: `gcStoreContract('sqlite', open)`, called by metaStoreContract.
 */
export function gcStoreContract(name: string, open: () => Promise<MetaStoreHarness>): void {
  const gcTest = storeTest(open);

  async function repo(store: MetaStore, repositoryName: string, account = ACCOUNT): Promise<Repository> {
    return (await store.createRepository(account, repositoryName, T0)).repository;
  }

  describe(`GcStore contract: ${name}`, () => {
    // --- what writers record --------------------------------------------------------------------

    gcTest('putBlob marks a blob used (the time only moves forward) and revives one being deleted', async (store) => {
      const d = blobDigest();
      await store.putBlob({ digest: d, sizeBytes: 10 }, T0);
      assert.equal(await lastUsed(store, d), T0);
      await store.putBlob({ digest: d, sizeBytes: 10 }, T0 + 5000);
      assert.equal(await lastUsed(store, d), T0 + 5000);
      await store.putBlob({ digest: d, sizeBytes: 10 }, T0 + 1000);
      assert.equal(await lastUsed(store, d), T0 + 5000, 'an earlier time does not move it back');
      const [record] = await store.gc.listBlobRecords({ limit: 10 });
      assert.equal(record?.createdAtMs, T0, 'created_at stays the first commit');

      assert.equal(await store.gc.markBlobForDeletion(d, T0 + 10_000, T0 + 20_000), true);
      assert.equal(await store.getBlob(d), undefined, 'a marked blob reads as absent');
      await store.putBlob({ digest: d, sizeBytes: 10 }, T0 + 30_000);
      assert.deepEqual(await store.getBlob(d), { digest: d, sizeBytes: 10 }, 'committed again, it lives');
      assert.equal((await store.gc.getBlobUsage([d])).get(d)?.deletingAtMs, null);
    });

    gcTest('linkBlob marks the blob used; it links nothing and resolves false for a blob unrecorded or being deleted', async (store) => {
      const r = await repo(store, 'gc/link');
      const d = blobDigest();
      assert.equal(await store.linkBlob(r.id, d, T0), false, 'not recorded');
      await store.putBlob({ digest: d, sizeBytes: 3 }, T0);
      assert.equal(await store.linkBlob(r.id, d, T0 + 100), true);
      assert.equal(await store.linkBlob(r.id, d, T0 + 200), true, 'idempotent');
      assert.equal(await lastUsed(store, d), T0 + 200);
      const other = await repo(store, 'gc/link-other');
      assert.equal(await store.gc.markBlobForDeletion(d, T0 + 1000, T0 + 1000), true);
      assert.equal(await store.linkBlob(other.id, d, T0 + 2000), false, 'being deleted');
      assert.equal(await store.findLinkedBlob(other.id, d), undefined);
      assert.equal(await store.findLinkedBlob(r.id, d), undefined, 'the existing link no longer shows it either');
      assert.equal((await store.findLinkedBlobs(r.id, [d])).size, 0);
    });

    gcTest('putManifest marks its blobs used at its creation and reports references it could not find', async (store) => {
      const r = await repo(store, 'gc/put');
      const used = blobDigest();
      const marked = blobDigest();
      const absent = blobDigest();
      await store.putBlob({ digest: used, sizeBytes: 1 }, T0);
      await store.putBlob({ digest: marked, sizeBytes: 1 }, T0);
      assert.equal(await store.gc.markBlobForDeletion(marked, T0 + 1, T0 + 1), true);
      const m = manifest({ createdAtMs: T0 + HOUR });
      const outcome = await store.putManifest(r.id, m, blobRefs(used, marked, absent));
      assert.equal(outcome.created, true);
      assert.deepEqual([...outcome.missingBlobs].sort(), [marked, absent].sort());
      assert.deepEqual(outcome.missingManifests, []);
      assert.equal(await lastUsed(store, used), T0 + HOUR);

      const child = manifest();
      await store.putManifest(r.id, child, []);
      const absentChild = manifest().digest;
      const index = manifest({ mediaType: INDEX_MT });
      const indexOutcome = await store.putManifest(r.id, index, childRefs(child.digest, absentChild));
      assert.deepEqual(indexOutcome, { created: true, missingBlobs: [], missingManifests: [absentChild] });

      const again = await store.putManifest(r.id, m, blobRefs(absent));
      assert.deepEqual(again, { created: false, missingBlobs: [], missingManifests: [] }, 'an existing manifest is not checked again');
    });

    gcTest('deleteManifest and deleteRepository mark the blobs they referenced used, so they outlive them by the grace period', async (store) => {
      const r = await repo(store, 'gc/del');
      const a = blobDigest();
      const b = blobDigest();
      for (const d of [a, b]) await store.putBlob({ digest: d, sizeBytes: 1 }, T0);
      const m = manifest();
      await store.putManifest(r.id, m, blobRefs(a));
      const n = manifest();
      await store.putManifest(r.id, n, blobRefs(b));
      assert.equal(await store.deleteManifest(r.id, m.digest, T0 + HOUR), true);
      assert.equal(await lastUsed(store, a), T0 + HOUR);
      assert.equal(await lastUsed(store, b), T0);
      await store.lifecycle.putPolicy(r.id, '{"rules":[]}', T0);
      assert.equal(await store.deleteRepository(r.id, T0 + 2 * HOUR), true);
      assert.equal(await lastUsed(store, b), T0 + 2 * HOUR);
      assert.equal(await store.lifecycle.getPolicy(r.id), undefined, 'the policy goes with the repository');
      assert.equal(await store.deleteManifest(r.id, n.digest, T0), false);
    });

    // --- blobs ------------------------------------------------------------------------------------

    gcTest('listBlobCandidates: live, unreferenced, last used before the cutoff; oldest use first, paged', async (store) => {
      const bytes = new MemoryBytes();
      const r = await repo(store, 'gc/candidates');
      const old = [];
      for (let i = 0; i < 7; i++) old.push(await addBlob(store, bytes, T0 + (i % 3), 5, r));
      const recent = await addBlob(store, bytes, T0 + 2 * HOUR, 5, r);
      const referenced = await addBlob(store, bytes, T0, 5, r);
      await store.putManifest(r.id, manifest(), blobRefs(referenced));
      const marked = await addBlob(store, bytes, T0, 5);
      await store.gc.markBlobForDeletion(marked, T0 + 10, T0 + 10);

      const seen: string[] = [];
      let after: { lastUsedAtMs: number; digest: string } | undefined;
      for (;;) {
        const page = await store.gc.listBlobCandidates({ usedBeforeMs: T0 + HOUR, after, limit: 3 });
        seen.push(...page.map((b) => b.digest));
        if (page.length < 3) break;
        after = { lastUsedAtMs: page[2]!.lastUsedAtMs, digest: page[2]!.digest };
      }
      assert.deepEqual([...seen].sort(), [...old].sort(), 'each old unreferenced blob once; not the recent, referenced or marked ones');
      const records = new Map((await store.gc.listBlobRecords({ limit: 100 })).map((b) => [b.digest, b]));
      const uses = seen.map((d) => records.get(d)!.lastUsedAtMs);
      assert.deepEqual(uses, [...uses].sort((x, y) => x - y), 'oldest use first');
      assert.deepEqual((await store.gc.listDeletingBlobs({ limit: 10 })).map((b) => b.digest), [marked]);
      assert.ok(!seen.includes(recent));
    });

    gcTest('markBlobForDeletion checks again under the lock: referenced, used since, or already marked is refused', async (store) => {
      const r = await repo(store, 'gc/mark');
      const d = blobDigest();
      await store.putBlob({ digest: d, sizeBytes: 1 }, T0);
      await store.linkBlob(r.id, d, T0);
      const m = manifest();
      await store.putManifest(r.id, m, blobRefs(d));
      assert.equal(await store.gc.markBlobForDeletion(d, T0 + HOUR, T0 + HOUR), false, 'referenced');
      await store.deleteManifest(r.id, m.digest, T0 + 10);
      assert.equal(await store.gc.markBlobForDeletion(d, T0 + 10, T0 + HOUR), false, 'used at the cutoff');
      assert.equal(await store.gc.markBlobForDeletion(d, T0 + 11, T0 + HOUR), true);
      assert.equal(await store.gc.markBlobForDeletion(d, T0 + 11, T0 + HOUR), false, 'already marked');
      assert.equal(await store.gc.markBlobForDeletion(blobDigest(), T0 + HOUR, T0 + HOUR), false, 'not recorded');
    });

    gcTest('deleteMarkedBlob removes links and row, and the bytes while holding the row; a failure to remove the bytes keeps the marked row', async (store) => {
      const r = await repo(store, 'gc/delete');
      const d = blobDigest();
      await store.putBlob({ digest: d, sizeBytes: 42 }, T0);
      await store.linkBlob(r.id, d, T0);
      assert.equal(await store.gc.deleteMarkedBlob(d, async () => assert.fail('not marked')), undefined);
      await store.gc.markBlobForDeletion(d, T0 + 1, T0 + 1);
      await assert.rejects(store.gc.deleteMarkedBlob(d, async () => {
        throw new Error('store down');
      }), /store down/);
      assert.equal((await store.gc.listDeletingBlobs({ limit: 10 }))[0]?.digest, d, 'still marked, for the next run');
      let removedWith: number | undefined;
      const deleted = await store.gc.deleteMarkedBlob(d, async (blob) => {
        removedWith = blob.sizeBytes;
      });
      assert.equal(deleted?.digest, d);
      assert.equal(removedWith, 42);
      assert.deepEqual(await store.gc.findRecordedBlobs([d]), new Set());
      assert.equal(await store.unlinkBlob(r.id, d), false, 'the link went with it');
    });

    gcTest('deleteMarkedBlob clears the mark instead when something references the blob', async (store) => {
      const r = await repo(store, 'gc/revive');
      const d = blobDigest();
      await store.putBlob({ digest: d, sizeBytes: 1 }, T0);
      await store.gc.markBlobForDeletion(d, T0 + 1, T0 + 1);
      // No writer references a marked blob through the registry; a store caller can.
      const m = manifest();
      const outcome = await store.putManifest(r.id, m, blobRefs(d));
      assert.deepEqual(outcome.missingBlobs, [d]);
      assert.equal(await store.gc.deleteMarkedBlob(d, async () => assert.fail('referenced')), undefined);
      assert.deepEqual(await store.getBlob(d), { digest: d, sizeBytes: 1 });
    });

    gcTest('deleteUnrecordedBytes removes bytes only while no row records them, leaving no row', async (store) => {
      const recorded = blobDigest();
      await store.putBlob({ digest: recorded, sizeBytes: 1 }, T0);
      assert.equal(await store.gc.deleteUnrecordedBytes(recorded, 1, T0, async () => assert.fail('recorded')), false);
      const orphan = blobDigest();
      let called = 0;
      assert.equal(await store.gc.deleteUnrecordedBytes(orphan, 7, T0, async () => void called++), true);
      assert.equal(called, 1);
      assert.deepEqual(await store.gc.findRecordedBlobs([orphan, recorded]), new Set([recorded]));
      await assert.rejects(store.gc.deleteUnrecordedBytes(orphan, 7, T0, async () => {
        throw new Error('store down');
      }));
      assert.deepEqual(await store.gc.findRecordedBlobs([orphan]), new Set(), 'no placeholder is left behind');
    });

    // --- manifests --------------------------------------------------------------------------------

    gcTest('listManifestCandidates: old, untagged, listed by no index, no referrer of a manifest held; paged by repository and digest', async (store) => {
      const r = await repo(store, 'gc/m1');
      const s = await repo(store, 'gc/m2');
      const untagged = [manifest(), manifest(), manifest()];
      for (const m of untagged) await store.putManifest(r.id, m, []);
      const elsewhere = manifest();
      await store.putManifest(s.id, elsewhere, []);
      const tagged = manifest();
      await store.putManifest(r.id, tagged, []);
      await store.putTag(r.id, 'v1', tagged.digest, T0);
      const young = manifest({ createdAtMs: T0 + 2 * HOUR });
      await store.putManifest(r.id, young, []);
      const child = manifest();
      await store.putManifest(r.id, child, []);
      const index = manifest({ mediaType: INDEX_MT });
      await store.putManifest(r.id, index, childRefs(child.digest));
      await store.putTag(r.id, 'multi', index.digest, T0);
      const liveReferrer = manifest({ subjectDigest: tagged.digest });
      await store.putManifest(r.id, liveReferrer, []);
      const orphanReferrer = manifest({ subjectDigest: manifest().digest });
      await store.putManifest(r.id, orphanReferrer, []);

      const seen: string[] = [];
      let after: { repositoryId: number; digest: string } | undefined;
      for (;;) {
        const page = await store.gc.listManifestCandidates({ createdBeforeMs: T0 + HOUR, after, limit: 2 });
        seen.push(...page.map((m) => `${m.repositoryId} ${m.digest}`));
        if (page.length < 2) break;
        after = page[1]!;
      }
      const expected = [...untagged, orphanReferrer].map((m) => `${r.id} ${m.digest}`).sort().concat(`${s.id} ${elsewhere.digest}`);
      assert.deepEqual(seen, expected);
      const [first] = await store.gc.listManifestCandidates({ createdBeforeMs: T0 + HOUR, limit: 1 });
      assert.equal(first?.repositoryName, 'gc/m1');
      assert.equal(first?.accountId, ACCOUNT);
    });

    gcTest('getManifestState and deleteManifestIfUnused: checked again under the lock; what the removal frees is reported', async (store) => {
      const r = await repo(store, 'gc/state');
      const layer = blobDigest();
      await store.putBlob({ digest: layer, sizeBytes: 9 }, T0);
      const child = manifest();
      await store.putManifest(r.id, child, blobRefs(layer));
      const index = manifest({ mediaType: INDEX_MT });
      await store.putManifest(r.id, index, childRefs(child.digest));
      const sig = manifest({ subjectDigest: index.digest });
      await store.putManifest(r.id, sig, []);

      const state = await store.gc.getManifestState(r.id, index.digest);
      assert.deepEqual(
        { ...state, repositoryId: 0 },
        {
          repositoryId: 0,
          digest: index.digest,
          accountId: ACCOUNT,
          repositoryName: 'gc/state',
          sizeBytes: index.sizeBytes,
          createdAtMs: T0,
          isTagged: false,
          parents: [],
          subjectDigest: null,
          subjectExists: false,
          children: [child.digest],
          referrers: [sig.digest],
          blobs: [],
        },
      );
      const childState = await store.gc.getManifestState(r.id, child.digest);
      assert.deepEqual(childState?.parents, [index.digest]);
      assert.deepEqual(childState?.blobs, [layer]);
      assert.equal((await store.gc.getManifestState(r.id, sig.digest))?.subjectExists, true);
      assert.equal(await store.gc.getManifestState(r.id, manifest().digest), undefined);

      assert.equal(await store.gc.deleteManifestIfUnused(r.id, child.digest, T0 + HOUR), undefined, 'listed by the index');
      assert.equal(await store.gc.deleteManifestIfUnused(r.id, sig.digest, T0 + HOUR), undefined, 'its subject is held');
      assert.equal(await store.gc.deleteManifestIfUnused(r.id, index.digest, T0), undefined, 'too young');
      await store.putTag(r.id, 'v1', index.digest, T0);
      assert.equal(await store.gc.deleteManifestIfUnused(r.id, index.digest, T0 + HOUR), undefined, 'tagged');
      await store.deleteTag(r.id, 'v1');
      const removed = await store.gc.deleteManifestIfUnused(r.id, index.digest, T0 + HOUR);
      assert.deepEqual(removed && { children: removed.children, referrers: removed.referrers, blobs: removed.blobs }, { children: [child.digest], referrers: [sig.digest], blobs: [] });
      assert.equal(await store.getManifest(r.id, index.digest), undefined);
      assert.equal(await lastUsed(store, layer), T0, 'a collection marks nothing used');
      const candidates = (await store.gc.listManifestCandidates({ createdBeforeMs: T0 + HOUR, limit: 10 })).map((m) => m.digest);
      assert.deepEqual(candidates.sort(), [child.digest, sig.digest].sort(), 'the child and the referrer are free now');
    });

    // --- accounting -------------------------------------------------------------------------------

    gcTest('storage accounting: per repository, per account with shared blobs counted once, and the total', async (store) => {
      const bytes = new MemoryBytes();
      const a = await repo(store, 'gc/usage-a');
      const b = await repo(store, 'gc/usage-b');
      const c = await repo(store, 'gc/usage-c', OTHER_ACCOUNT);
      const shared = await addBlob(store, bytes, T0, 5 * 1024 ** 3, a, b, c);
      const onlyA = await addBlob(store, bytes, T0, 100, a);
      const unused = await addBlob(store, bytes, T0, 7, a);
      const ma = manifest();
      await store.putManifest(a.id, ma, blobRefs(shared, onlyA));
      const ma2 = manifest();
      await store.putManifest(a.id, ma2, blobRefs(shared));
      const mb = manifest();
      await store.putManifest(b.id, mb, blobRefs(shared));
      const mc = manifest();
      await store.putManifest(c.id, mc, blobRefs(shared));
      const big = 5 * 1024 ** 3;

      const report = await storageReport(store);
      const byName = new Map(report.repositories.map((r) => [r.name, r]));
      assert.deepEqual(byName.get('gc/usage-a'), { repositoryId: a.id, accountId: ACCOUNT, name: 'gc/usage-a', manifests: 2, manifestBytes: ma.sizeBytes + ma2.sizeBytes, blobs: 2, blobBytes: big + 100 });
      assert.deepEqual(byName.get('gc/usage-b'), { repositoryId: b.id, accountId: ACCOUNT, name: 'gc/usage-b', manifests: 1, manifestBytes: mb.sizeBytes, blobs: 1, blobBytes: big });
      assert.deepEqual(report.accounts, [
        { accountId: ACCOUNT, repositories: 2, manifests: 3, manifestBytes: ma.sizeBytes + ma2.sizeBytes + mb.sizeBytes, blobs: 2, blobBytes: big + 100, sharedBlobs: 1, sharedBytes: big },
        { accountId: OTHER_ACCOUNT, repositories: 1, manifests: 1, manifestBytes: mc.sizeBytes, blobs: 1, blobBytes: big, sharedBlobs: 0, sharedBytes: 0 },
      ]);
      assert.deepEqual(report.total, {
        manifests: 4,
        manifestBytes: ma.sizeBytes + ma2.sizeBytes + mb.sizeBytes + mc.sizeBytes,
        blobs: 3,
        blobBytes: big + 107,
        unreferencedBlobs: 1,
        unreferencedBytes: 7,
      });
      assert.ok(unused);
      assert.deepEqual((await storageReport(store, { accountId: OTHER_ACCOUNT })).repositories.map((r) => r.name), ['gc/usage-c']);
    });

    // --- races --------------------------------------------------------------------------------

    gcTest('a collection racing a commit of the same blob never leaves a live row without bytes', async (store) => {
      const bytes = new MemoryBytes();
      const r = await repo(store, 'gc/race-commit');
      const outcomes = new Set<string>();
      for (let i = 0; i < 30; i++) {
        const d = await addBlob(store, bytes, T0, 3, r);
        // The writer: an upload whose commit found the bytes already there, then records the
        // blob and checks the bytes before committing (Registry.completeUpload).
        const writer = () =>
          store
            .transaction(async (tx) => {
              await tx.putBlob({ digest: d, sizeBytes: 3 }, T0 + HOUR);
              if (!(await tx.linkBlob(r.id, d, T0 + HOUR))) throw new Error('retry');
              if (!(await bytes.stat(d))) throw new Error('retry');
            })
            .then(() => 'committed', () => 'refused');
        // Three orders: the writer first; both at once; the writer while the collection holds
        // the marked row and removes the bytes.
        const mode = i % 3;
        let writing: Promise<string> | undefined;
        const collector = async () => {
          if (!(await store.gc.markBlobForDeletion(d, T0 + 1, T0 + 2))) return 'kept';
          const deleted = await store.gc.deleteMarkedBlob(d, async (b) => {
            if (mode === 2) writing = writer();
            await bytes.delete(b.digest);
            await new Promise((resolve) => setTimeout(resolve, 20));
          });
          return deleted ? 'deleted' : 'kept';
        };
        let w: string;
        let c: string;
        if (mode === 0) [w, c] = await Promise.all([writer(), collector()]);
        else if (mode === 1) [c, w] = await Promise.all([collector(), writer()]);
        else {
          c = await collector();
          w = await (writing ?? writer());
        }
        outcomes.add(`${w} ${c}`);
        const live = await store.getBlob(d);
        assert.equal(live !== undefined, w === 'committed', `iteration ${i}: the row lives exactly when the commit went through (${w}, ${c})`);
        if (live) assert.ok(bytes.bytes.has(d), `iteration ${i}: a live row has bytes (${w}, ${c})`);
        assert.ok(!(w === 'committed' && c === 'deleted'), `iteration ${i}: not both`);
      }
      assert.ok(outcomes.has('refused deleted'), `a commit that waited for the collection was refused (${[...outcomes].join('; ')})`);
      assert.ok(outcomes.has('committed kept'), `a commit first kept the blob (${[...outcomes].join('; ')})`);
    });

    gcTest('a collection racing a manifest push that names the blob: the push fails cleanly or the blob stays', async (store) => {
      const bytes = new MemoryBytes();
      const r = await repo(store, 'gc/race-manifest');
      for (let i = 0; i < 20; i++) {
        const d = await addBlob(store, bytes, T0, 3, r);
        const m = manifest({ createdAtMs: T0 + HOUR });
        const writer = () => store
          .transaction(async (tx) => {
            const outcome = await tx.putManifest(r.id, m, blobRefs(d));
            if (outcome.missingBlobs.length > 0) throw new Error('blob unknown');
          })
          .then(() => 'pushed', () => 'refused');
        const collector = async () => {
          if (!(await store.gc.markBlobForDeletion(d, T0 + 1, T0 + 2))) return 'kept';
          return (await store.gc.deleteMarkedBlob(d, (b) => bytes.delete(b.digest))) ? 'deleted' : 'kept';
        };
        const [w, c] = await race(i, writer, collector);
        const pushed = (await store.getManifest(r.id, m.digest)) !== undefined;
        assert.equal(pushed, w === 'pushed', `iteration ${i}`);
        if (pushed) {
          assert.ok(await store.getBlob(d), `iteration ${i}: the pushed manifest's blob lives (${c})`);
          assert.ok(bytes.bytes.has(d), `iteration ${i}: with its bytes`);
        } else {
          assert.equal(c, 'deleted', `iteration ${i}: a push is refused only when the blob went`);
        }
      }
    });

    gcTest('a collection racing a tag pushed onto an untagged manifest: the tag is kept, or the manifest pushed again', async (store) => {
      const r = await repo(store, 'gc/race-tag');
      for (let i = 0; i < 20; i++) {
        const m = manifest();
        await store.putManifest(r.id, m, []);
        const tag = `t${i}`;
        const writer = () =>
          store.transaction(async (tx) => {
            await tx.putManifest(r.id, { ...m, createdAtMs: T0 + HOUR }, []);
            await tx.putTag(r.id, tag, m.digest, T0 + HOUR);
          });
        await race(i, writer, () => store.gc.deleteManifestIfUnused(r.id, m.digest, T0 + 1));
        assert.equal(await store.findTagDigest(r.id, tag), m.digest, `iteration ${i}: the tag acknowledged is there`);
        assert.ok(await store.getManifest(r.id, m.digest), `iteration ${i}: with its manifest`);
      }
    });

    // --- the collector ----------------------------------------------------------------------------

    /**
     * A registry with some of everything: kept and garbage manifests, indexes, referrers, shared
     * and unshared blobs, a blob used within the grace period, bytes without a row and a row an
     * interrupted run marked.
     */
    async function fixture(store: MetaStore, bytes: MemoryBytes) {
      const r = await repo(store, 'gc/app');
      const other = await repo(store, 'gc/other');
      const blob = (size: number, atMs = T0, ...repos: Repository[]) => addBlob(store, bytes, atMs, size, ...(repos.length > 0 ? repos : [r]));
      const base = await blob(1000, T0, r, other);
      const keptLayer = await blob(10);
      const keptImage = manifest();
      await store.putManifest(r.id, keptImage, blobRefs(base, keptLayer));
      await store.putTag(r.id, 'kept', keptImage.digest, T0);
      const liveSig = manifest({ subjectDigest: keptImage.digest });
      await store.putManifest(r.id, liveSig, []);

      const goneLayer = await blob(20);
      const goneImage = manifest();
      await store.putManifest(r.id, goneImage, blobRefs(base, goneLayer));

      const childLayers = [await blob(30), await blob(31)];
      const children = [manifest(), manifest()];
      for (const [i, c] of children.entries()) await store.putManifest(r.id, c, blobRefs(base, childLayers[i]!));
      const goneIndex = manifest({ mediaType: INDEX_MT });
      await store.putManifest(r.id, goneIndex, childRefs(...children.map((c) => c.digest)));
      const goneSig = manifest({ subjectDigest: goneIndex.digest });
      await store.putManifest(r.id, goneSig, []);
      const sigOfSig = manifest({ subjectDigest: goneSig.digest });
      await store.putManifest(r.id, sigOfSig, []);

      const keptChildLayer = await blob(40);
      const keptChild = manifest();
      await store.putManifest(r.id, keptChild, blobRefs(keptChildLayer));
      const keptIndex = manifest({ mediaType: INDEX_MT });
      await store.putManifest(r.id, keptIndex, childRefs(keptChild.digest));
      await store.putTag(r.id, 'multi', keptIndex.digest, T0);

      const sharedWithOther = await blob(50, T0, r, other);
      const otherImage = manifest();
      await store.putManifest(other.id, otherImage, blobRefs(sharedWithOther));
      await store.putTag(other.id, 'v1', otherImage.digest, T0);
      const goneInR = manifest();
      await store.putManifest(r.id, goneInR, blobRefs(sharedWithOther));

      const unreferenced = await blob(60);
      const fresh = await blob(70, T0 + 2 * HOUR);
      const youngManifest = manifest({ createdAtMs: T0 + 2 * HOUR });
      await store.putManifest(r.id, youngManifest, []);

      const orphanBytes = blobDigest();
      bytes.put(orphanBytes, 80, T0);
      const youngOrphan = blobDigest();
      bytes.put(youngOrphan, 90, T0 + 2 * HOUR);
      const marked = await blob(100);
      await store.gc.markBlobForDeletion(marked, T0 + 1, T0 + 1);
      bytes.bytes.delete(marked); // an interrupted run removed the bytes, not the row

      return {
        r,
        other,
        kept: { manifests: [keptImage, liveSig, keptChild, keptIndex, otherImage, youngManifest], blobs: [base, keptLayer, keptChildLayer, sharedWithOther, fresh], orphans: [youngOrphan] },
        gone: {
          manifests: [goneImage, goneIndex, ...children, goneSig, sigOfSig, goneInR].map((m) => ({ repositoryId: r.id, digest: m.digest, sizeBytes: m.sizeBytes })),
          blobs: [
            { digest: goneLayer, sizeBytes: 20 },
            { digest: childLayers[0]!, sizeBytes: 30 },
            { digest: childLayers[1]!, sizeBytes: 31 },
            { digest: unreferenced, sizeBytes: 60 },
            { digest: marked, sizeBytes: 100 },
          ],
          orphans: [{ digest: orphanBytes, sizeBytes: 80 }],
        },
      };
    }

    const graceMs = HOUR;
    const now = () => T0 + HOUR + 1;
    const byDigest = <T extends { digest: string }>(list: T[]) => [...list].sort((a, b) => (a.digest < b.digest ? -1 : a.digest > b.digest ? 1 : 0));

    gcTest('the collector removes exactly the garbage, and a dry run lists exactly what the run then removes', async (store) => {
      const bytes = new MemoryBytes();
      const f = await fixture(store, bytes);
      const before = [...bytes.bytes.keys()].sort();
      const dry = await collectGarbage({ meta: store, blobs: bytes, log: silent, now }, { graceMs, dryRun: true, batchSize: 2 });
      assert.deepEqual([...bytes.bytes.keys()].sort(), before, 'a dry run removes no bytes');
      assert.equal((await store.gc.listManifestCandidates({ createdBeforeMs: T0 + HOUR, limit: 100 })).length, 3, 'and no manifest');
      const real = await collectGarbage({ meta: store, blobs: bytes, log: silent, now }, { graceMs, dryRun: false, batchSize: 2 });
      assert.deepEqual(removals(dry), removals(real));
      assert.equal(real.dryRun, false);
      assert.equal(real.errors, 0);

      assert.deepEqual(
        real.manifests.map((m) => ({ repositoryId: m.repositoryId, digest: m.digest, sizeBytes: m.sizeBytes })),
        [...f.gone.manifests].sort((a, b) => a.repositoryId - b.repositoryId || (a.digest < b.digest ? -1 : 1)),
      );
      assert.ok(real.manifests.every((m) => m.repository === 'gc/app' && m.accountId === ACCOUNT));
      assert.deepEqual(real.blobs, byDigest(f.gone.blobs));
      assert.deepEqual(real.orphans, f.gone.orphans);
      assert.equal(real.bytesReclaimed, 20 + 30 + 31 + 60 + 100 + 80);
      assert.equal(real.manifestBytesReclaimed, f.gone.manifests.reduce((s, m) => s + m.sizeBytes, 0));

      for (const m of f.kept.manifests) {
        assert.ok((await store.getManifest(f.r.id, m.digest)) ?? (await store.getManifest(f.other.id, m.digest)), `kept manifest ${m.digest}`);
      }
      for (const d of f.kept.blobs) {
        assert.ok(await store.getBlob(d), `kept blob ${d}`);
        assert.ok(bytes.bytes.has(d), `kept bytes ${d}`);
      }
      for (const d of f.kept.orphans) assert.ok(bytes.bytes.has(d), 'bytes younger than the grace period stay');
      for (const b of f.gone.blobs) assert.equal(await store.getBlob(b.digest), undefined);
      assert.deepEqual(await store.gc.findRecordedBlobs(f.gone.blobs.map((b) => b.digest)), new Set(), 'rows gone, marked ones included');
      assert.ok(await store.findLinkedBlob(f.other.id, f.kept.blobs[3]!), 'a blob shared with a repository that uses it stays linked there');

      const again = await collectGarbage({ meta: store, blobs: bytes, log: silent, now }, { graceMs, dryRun: false });
      assert.deepEqual(removals(again), { manifests: [], blobs: [], orphans: [], bytesReclaimed: 0, manifestBytesReclaimed: 0 }, 'idempotent');
    });

    gcTest('the collector keeps what was used within the grace period, an index’s children and referrers of a live subject', async (store) => {
      const bytes = new MemoryBytes();
      const r = await repo(store, 'gc/keep');
      const touched = await addBlob(store, bytes, T0, 5, r);
      await store.linkBlob(r.id, touched, T0 + HOUR - 1000); // a mount, within the grace period
      const child = manifest();
      await store.putManifest(r.id, child, []);
      const index = manifest({ mediaType: INDEX_MT });
      await store.putManifest(r.id, index, childRefs(child.digest));
      await store.putTag(r.id, 'v1', index.digest, T0);
      const sig = manifest({ subjectDigest: child.digest });
      await store.putManifest(r.id, sig, []);
      const report = await collectGarbage({ meta: store, blobs: bytes, log: silent, now: () => T0 + HOUR + 10 }, { graceMs: HOUR, dryRun: false });
      assert.deepEqual(removals(report), { manifests: [], blobs: [], orphans: [], bytesReclaimed: 0, manifestBytesReclaimed: 0 });
      assert.ok(bytes.bytes.has(touched));

      // Untag the index: it goes, and with it, in the same run, its child and the child's referrer.
      await store.deleteTag(r.id, 'v1');
      const after = await collectGarbage({ meta: store, blobs: bytes, log: silent, now: () => T0 + HOUR + 10 }, { graceMs: HOUR, dryRun: false });
      assert.deepEqual(after.manifests.map((m) => m.digest).sort(), [index.digest, child.digest, sig.digest].sort());
      assert.deepEqual(after.blobs, [], 'the mounted blob is still within its grace period');
      const later = await collectGarbage({ meta: store, blobs: bytes, log: silent, now: () => T0 + 2 * HOUR }, { graceMs: HOUR, dryRun: false });
      assert.deepEqual(later.blobs, [{ digest: touched, sizeBytes: 5 }]);
    });

    gcTest('keepUntaggedManifests leaves manifests alone and collects only unreferenced blobs', async (store) => {
      const bytes = new MemoryBytes();
      const r = await repo(store, 'gc/keep-untagged');
      const layer = await addBlob(store, bytes, T0, 5, r);
      const unused = await addBlob(store, bytes, T0, 6, r);
      const m = manifest();
      await store.putManifest(r.id, m, blobRefs(layer));
      const report = await collectGarbage({ meta: store, blobs: bytes, log: silent, now }, { graceMs, dryRun: false, keepUntaggedManifests: true });
      assert.deepEqual(report.manifests, []);
      assert.deepEqual(report.blobs, [{ digest: unused, sizeBytes: 6 }]);
      assert.ok(await store.getManifest(r.id, m.digest));
    });

    gcTest('an interrupted collection leaves no live row without bytes, and the next one finishes the job', async (store) => {
      const bytes = new MemoryBytes();
      const r = await repo(store, 'gc/interrupted');
      const digests = [];
      for (let i = 0; i < 6; i++) digests.push(await addBlob(store, bytes, T0, 10 + i, r));
      let deletes = 0;
      bytes.afterDelete = () => {
        // The third delete: the bytes are gone, then the collection fails before it commits.
        if (++deletes === 3) throw new Error('crash');
      };
      const first = await collectGarbage({ meta: store, blobs: bytes, log: silent, now }, { graceMs, dryRun: false, concurrency: 1 });
      assert.equal(first.errors, 1);
      assert.equal(first.blobs.length, 5);
      const left = await store.gc.listDeletingBlobs({ limit: 10 });
      assert.equal(left.length, 1, 'the failed one is still marked');
      assert.equal(await store.getBlob(left[0]!.digest), undefined, 'and reads as absent');
      bytes.afterDelete = () => {};
      const second = await collectGarbage({ meta: store, blobs: bytes, log: silent, now }, { graceMs, dryRun: false });
      assert.deepEqual(second.blobs.map((b) => b.digest), [left[0]!.digest]);
      assert.equal(bytes.bytes.size, 0);
      assert.deepEqual(await store.gc.listBlobRecords({ limit: 10 }), []);
    });

    gcTest('the upload sweep runs with the collection when a registry is given, dry run included', async (store) => {
      const bytes = new MemoryBytes();
      const calls: unknown[] = [];
      const registry = { sweepUploads: async (options?: { dryRun?: boolean }) => (calls.push(options), { sessions: 2, orphans: 1 }) };
      const dry = await collectGarbage({ meta: store, blobs: bytes, registry, log: silent, now }, { graceMs, dryRun: true });
      const real = await collectGarbage({ meta: store, blobs: bytes, registry, log: silent, now }, { graceMs, dryRun: false });
      assert.deepEqual(calls, [{ dryRun: true }, { dryRun: false }]);
      assert.deepEqual(dry.uploads, { sessions: 2, orphans: 1 });
      assert.deepEqual(real.uploads, { sessions: 2, orphans: 1 });
      assert.equal((await collectGarbage({ meta: store, blobs: bytes, log: silent, now }, { graceMs, dryRun: false })).uploads, null);
    });
  });
}
