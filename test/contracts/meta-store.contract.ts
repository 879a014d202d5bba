import assert from 'node:assert/strict';
import { describe } from 'node:test';
import { digestOf, type Digest } from '../../src/digest/digest.ts';
import type { ImageId, ManifestRecord, ManifestSummary, MetaStore, Page, Repository, Upload } from '../../src/store/meta/meta-store.ts';
import { gcStoreContract } from './gc-store.contract.ts';
import { manifest, storeTest, T0, type MetaStoreHarness } from './harness.ts';
import { lifecycleStoreContract } from './lifecycle-store.contract.ts';

/** What a driver's test file hands the suite: a fresh, empty, migrated store per test. */
export type { MetaStoreHarness } from './harness.ts';

/**
 * Epoch milliseconds, as the registry passes them: past 2^32, so a driver that reads bigint
 * columns back as strings or 32-bit integers shows here.
 */
const ACCOUNT = '111122223333';
const OTHER_ACCOUNT = '444455556666';
/** Sizes past 2^32 for the same reason: a layer of several GiB is ordinary. */
const BIG_SIZE = 5 * 1024 ** 3 + 123;

let nextId = 0;
function digest(label = `d${nextId++}`): Digest {
  return digestOf(Buffer.from(`meta-store contract ${label}`));
}

function summary(m: ManifestSummary): ManifestSummary {
  return {
    digest: m.digest,
    mediaType: m.mediaType,
    sizeBytes: m.sizeBytes,
    artifactType: m.artifactType,
    subjectDigest: m.subjectDigest,
    annotations: m.annotations,
    createdAtMs: m.createdAtMs,
  };
}

function asBuffer(bytes: Uint8Array): Buffer {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

function assertManifest(got: ManifestRecord | undefined, expected: ManifestRecord, what = 'manifest'): void {
  assert.ok(got, `${what} is found`);
  assert.deepEqual(summary(got), summary(expected), `${what}: fields`);
  assert.ok(got.payload instanceof Uint8Array, `${what}: payload is bytes`);
  assert.deepEqual(asBuffer(got.payload), asBuffer(expected.payload), `${what}: payload bytes`);
}

/** Every item, fetched `limit` at a time; checks each page's size and that the last is empty. */
async function allPages(list: (page: Page) => Promise<string[]>, limit: number): Promise<string[]> {
  const all: string[] = [];
  let after: string | undefined;
  for (;;) {
    const page = await list({ after, limit });
    assert.ok(page.length <= limit, `a page holds at most ${limit}, got ${page.length}`);
    if (page.length === 0) return all;
    all.push(...page);
    after = page.at(-1);
  }
}

/** Byte order, as `_catalog` and tag lists need it (and not a locale's collation). */
function byteOrder(names: string[]): string[] {
  return [...names].sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)));
}

/**
 * The behaviour every MetaStore driver must have, as meta-store.ts documents it. A driver's test
 * file is one call: `metaStoreContract('sqlite', async () => ({ store, cleanup }))`, which also
 * runs the suites of its sub-stores (garbage collection, lifecycle).
 */
export function metaStoreContract(name: string, open: () => Promise<MetaStoreHarness>): void {
  gcStoreContract(name, open);
  lifecycleStoreContract(name, open);
  const metaTest = storeTest(open);

  async function repo(store: MetaStore, repositoryName: string, nowMs = T0): Promise<Repository> {
    return (await store.createRepository(ACCOUNT, repositoryName, nowMs)).repository;
  }

  describe(`MetaStore contract: ${name}`, () => {
    metaTest('check() resolves on a working store', async (store) => {
      await store.check();
    });

    // --- repositories ---------------------------------------------------------------------------

    metaTest('createRepository creates once; later calls resolve the same row with created=false', async (store) => {
      const first = await store.createRepository(ACCOUNT, 'team/app', T0);
      assert.equal(first.created, true);
      assert.equal(first.repository.name, 'team/app');
      assert.equal(first.repository.createdAtMs, T0);
      assert.ok(Number.isInteger(first.repository.id), 'id is a number');
      const again = await store.createRepository(ACCOUNT, 'team/app', T0 + 5000);
      assert.deepEqual(again, { repository: first.repository, created: false }, 'the first creation time is kept');
      const other = await store.createRepository(ACCOUNT, 'team/other', T0);
      assert.equal(other.created, true);
      assert.notEqual(other.repository.id, first.repository.id);
    });

    metaTest('repositories belong to one account: the same name in two accounts is two repositories', async (store) => {
      const mine = await store.createRepository(ACCOUNT, 'team/app', T0);
      const theirs = await store.createRepository(OTHER_ACCOUNT, 'team/app', T0);
      assert.equal(theirs.created, true);
      assert.notEqual(theirs.repository.id, mine.repository.id);
      assert.equal(mine.repository.accountId, ACCOUNT);
      assert.equal(theirs.repository.accountId, OTHER_ACCOUNT);
      await store.createRepository(OTHER_ACCOUNT, 'only/theirs', T0);
      assert.deepEqual(await store.listRepositories(ACCOUNT, { limit: 10 }), ['team/app']);
      assert.deepEqual(await store.listRepositories(OTHER_ACCOUNT, { limit: 10 }), ['only/theirs', 'team/app']);
      assert.equal(await store.getRepository(ACCOUNT, 'only/theirs'), undefined);
      const d = `sha256:${'c'.repeat(64)}`;
      await store.putBlob({ digest: d, sizeBytes: 3 }, T0);
      await store.linkBlob(theirs.repository.id, d, T0);
      assert.deepEqual(await store.findRepositoriesWithBlob(ACCOUNT, d, 10), [], 'another account\'s links are not candidates');
      assert.deepEqual(await store.findRepositoriesWithBlob(OTHER_ACCOUNT, d, 10), [theirs.repository]);
    });

    metaTest('jobs: one lease at a time among concurrent callers; due times; an expired lease is taken over', async (store) => {
      await store.ensureJob('sweep', T0);
      await store.ensureJob('sweep', T0 + 999_999); // idempotent: the first registration stands
      assert.equal((await store.getJob('sweep'))?.nextRunAtMs, T0);
      assert.equal(await store.acquireJob('sweep', 'a', T0 - 1, T0 + 100), false, 'not due yet');
      const owners = ['a', 'b', 'c', 'd', 'e', 'f'];
      const won = await Promise.all(owners.map((o) => store.acquireJob('sweep', o, T0 + 10, T0 + 1000)));
      assert.equal(won.filter(Boolean).length, 1, 'exactly one caller takes the lease');
      const winner = owners[won.indexOf(true)]!;
      const loser = owners.find((o) => o !== winner)!;
      assert.equal((await store.getJob('sweep'))?.leaseOwner, winner);
      assert.equal(await store.renewJob('sweep', loser, T0 + 5000), false, 'only the owner renews');
      assert.equal(await store.renewJob('sweep', winner, T0 + 2000), true);
      assert.equal(await store.acquireJob('sweep', loser, T0 + 1500, T0 + 3000), false, 'a live lease holds');
      // The owner dies: once the lease expires another node takes the job over.
      assert.equal(await store.acquireJob('sweep', loser, T0 + 2001, T0 + 4000), true);
      assert.equal(await store.finishJob('sweep', winner, T0 + 2100, T0 + 9000, null), false, 'the old owner cannot finish it');
      assert.equal(await store.finishJob('sweep', loser, T0 + 2200, T0 + 9000, 'boom'), true);
      const job = await store.getJob('sweep');
      assert.equal(job?.leaseOwner, null);
      assert.equal(job?.nextRunAtMs, T0 + 9000);
      assert.equal(job?.lastError, 'boom');
      assert.equal(job?.lastFinishedAtMs, T0 + 2200);
      assert.equal(await store.acquireJob('sweep', winner, T0 + 8999, T0 + 10_000), false, 'not due again yet');
      assert.equal(await store.acquireJob('sweep', winner, T0 + 9000, T0 + 10_000), true);
      assert.equal(await store.getJob('absent'), undefined);
    });

    metaTest('jobs: hurried forward, never back, and a hurry during a run outlasts its finish', async (store) => {
      await store.ensureJob('gc', T0 + 10_000);
      await store.hurryJob('gc', T0 + 20_000);
      assert.equal((await store.getJob('gc'))?.nextRunAtMs, T0 + 10_000, 'a later time does not postpone the run');
      await store.hurryJob('gc', T0 + 5000);
      assert.equal((await store.getJob('gc'))?.nextRunAtMs, T0 + 5000);
      await store.hurryJob('absent', T0);
      assert.equal(await store.getJob('absent'), undefined, 'hurrying an unknown job creates nothing');

      // Not hurried during the run: the next run is as the owner says.
      assert.equal(await store.acquireJob('gc', 'a', T0 + 5000, T0 + 6000), true);
      assert.equal(await store.finishJob('gc', 'a', T0 + 5500, T0 + 90_000, null), true);
      assert.equal((await store.getJob('gc'))?.nextRunAtMs, T0 + 90_000);

      // Hurried twice during a run: the earlier time stands after the finish.
      assert.equal(await store.acquireJob('gc', 'a', T0 + 90_000, T0 + 91_000), true);
      await store.hurryJob('gc', T0 + 95_000);
      await store.hurryJob('gc', T0 + 93_000);
      await store.hurryJob('gc', T0 + 94_000);
      assert.equal(await store.finishJob('gc', 'a', T0 + 90_500, T0 + 200_000, null), true);
      assert.equal((await store.getJob('gc'))?.nextRunAtMs, T0 + 93_000);

      // Hurried during a run to a time after the owner's own next run: the owner's stands.
      assert.equal(await store.acquireJob('gc', 'a', T0 + 93_000, T0 + 94_000), true);
      await store.hurryJob('gc', T0 + 300_000);
      assert.equal(await store.finishJob('gc', 'a', T0 + 93_500, T0 + 100_000, null), true);
      assert.equal((await store.getJob('gc'))?.nextRunAtMs, T0 + 100_000);
    });

    metaTest('repository settings: defaults, given at creation, patched field by field', async (store) => {
      const plain = await store.createRepository(ACCOUNT, 'settings/plain', T0);
      assert.deepEqual(await store.getRepositorySettings(plain.repository.id), {
        imageTagMutability: 'MUTABLE',
        imageTagMutabilityExclusionFilters: [],
        scanOnPush: false,
        encryptionType: 'AES256',
        kmsKey: null,
        tags: [],
        lifecyclePolicy: null,
      });
      const given = await store.createRepository(ACCOUNT, 'settings/given', T0, {
        imageTagMutability: 'IMMUTABLE_WITH_EXCLUSION',
        imageTagMutabilityExclusionFilters: [{ filterType: 'WILDCARD', filter: 'latest*' }],
        scanOnPush: true,
        tags: [{ Key: 'team', Value: 'a' }],
      });
      const again = await store.createRepository(ACCOUNT, 'settings/given', T0, { scanOnPush: false });
      assert.equal(again.created, false);
      const s = await store.getRepositorySettings(given.repository.id);
      assert.equal(s?.imageTagMutability, 'IMMUTABLE_WITH_EXCLUSION');
      assert.deepEqual(s?.imageTagMutabilityExclusionFilters, [{ filterType: 'WILDCARD', filter: 'latest*' }]);
      assert.equal(s?.scanOnPush, true, 'a repeated creation does not change settings');
      assert.deepEqual(s?.tags, [{ Key: 'team', Value: 'a' }]);
      assert.equal(await store.updateRepositorySettings(given.repository.id, { scanOnPush: false, encryptionType: 'KMS', kmsKey: 'k1' }), true);
      const t = await store.getRepositorySettings(given.repository.id);
      assert.equal(t?.scanOnPush, false);
      assert.equal(t?.encryptionType, 'KMS');
      assert.equal(t?.kmsKey, 'k1');
      assert.equal(t?.imageTagMutability, 'IMMUTABLE_WITH_EXCLUSION', 'fields not patched stay');
      assert.equal(await store.updateRepositorySettings(given.repository.id + 1000, { scanOnPush: true }), false);
      assert.equal(await store.getRepositorySettings(given.repository.id + 1000), undefined);
    });

    metaTest('deleteRepository removes the repository and everything in it; the name can be created again', async (store) => {
      const r = (await store.createRepository(ACCOUNT, 'doomed/app', T0)).repository;
      const d = `sha256:${'d'.repeat(64)}`;
      await store.putBlob({ digest: d, sizeBytes: 3 }, T0);
      await store.linkBlob(r.id, d, T0);
      await store.createUpload({ id: 'doomed-up', repositoryId: r.id, sizeBytes: 0, startedAtMs: T0, updatedAtMs: T0 });
      assert.equal(await store.countManifests(r.id), 0);
      assert.equal(await store.deleteRepository(r.id), true);
      assert.equal(await store.getRepository(ACCOUNT, 'doomed/app'), undefined);
      assert.equal(await store.getUpload('doomed-up'), undefined);
      assert.equal(await store.findLinkedBlob(r.id, d), undefined);
      assert.deepEqual(await store.getBlob(d), { digest: d, sizeBytes: 3 }, 'the blob record stays for GC');
      assert.equal(await store.deleteRepository(r.id), false);
      assert.equal((await store.createRepository(ACCOUNT, 'doomed/app', T0)).created, true);
    });

    metaTest('repository templates and account settings are stored per account', async (store) => {
      await store.putRepositoryTemplate(ACCOUNT, { prefix: 'team', template: { imageTagMutability: 'IMMUTABLE' }, createdAtMs: T0, updatedAtMs: T0 });
      await store.putRepositoryTemplate(ACCOUNT, { prefix: 'ROOT', template: {}, createdAtMs: T0, updatedAtMs: T0 });
      await store.putRepositoryTemplate(ACCOUNT, { prefix: 'team', template: { imageTagMutability: 'MUTABLE' }, createdAtMs: T0 + 5, updatedAtMs: T0 + 5 });
      assert.deepEqual(await store.listRepositoryTemplates(ACCOUNT), [
        { prefix: 'ROOT', template: {}, createdAtMs: T0, updatedAtMs: T0 },
        { prefix: 'team', template: { imageTagMutability: 'MUTABLE' }, createdAtMs: T0, updatedAtMs: T0 + 5 },
      ]);
      assert.deepEqual(await store.listRepositoryTemplates(OTHER_ACCOUNT), []);
      assert.equal(await store.deleteRepositoryTemplate(ACCOUNT, 'team'), true);
      assert.equal(await store.deleteRepositoryTemplate(ACCOUNT, 'team'), false);
      assert.equal(await store.getAccountSetting(ACCOUNT, 'BLOB_MOUNTING'), undefined);
      await store.putAccountSetting(ACCOUNT, 'BLOB_MOUNTING', 'DISABLED');
      await store.putAccountSetting(ACCOUNT, 'BLOB_MOUNTING', 'ENABLED');
      assert.equal(await store.getAccountSetting(ACCOUNT, 'BLOB_MOUNTING'), 'ENABLED');
      assert.equal(await store.getAccountSetting(OTHER_ACCOUNT, 'BLOB_MOUNTING'), undefined);
    });

    metaTest('a repository policy is stored, replaced and removed; absent reads undefined', async (store) => {
      const r = await store.createRepository(ACCOUNT, 'team/policy', T0);
      assert.equal(await store.getRepositoryPolicy(r.repository.id), undefined);
      assert.equal(await store.setRepositoryPolicy(r.repository.id, '{"Version":"2012-10-17","Statement":[]}'), true);
      assert.equal(await store.getRepositoryPolicy(r.repository.id), '{"Version":"2012-10-17","Statement":[]}');
      assert.equal(await store.setRepositoryPolicy(r.repository.id, '{"a":1}'), true);
      assert.equal(await store.getRepositoryPolicy(r.repository.id), '{"a":1}');
      assert.equal(await store.setRepositoryPolicy(r.repository.id, null), true);
      assert.equal(await store.getRepositoryPolicy(r.repository.id), undefined);
      assert.equal(await store.setRepositoryPolicy(r.repository.id + 1000, '{}'), false, 'a missing repository');
    });

    metaTest('10 concurrent createRepository calls for one name make one repository, one of them created', async (store) => {
      const results = await Promise.all(Array.from({ length: 10 }, (_, i) => store.createRepository(ACCOUNT, 'race/app', T0 + i)));
      assert.equal(results.filter((r) => r.created).length, 1, 'exactly one caller created it');
      const winner = results.find((r) => r.created)!.repository;
      for (const r of results) assert.deepEqual(r.repository, winner);
      assert.deepEqual(await store.getRepository(ACCOUNT, 'race/app'), winner);
      assert.deepEqual(await store.listRepositories(ACCOUNT, { limit: 100 }), ['race/app']);
    });

    metaTest('getRepository resolves undefined when absent and the row when present', async (store) => {
      assert.equal(await store.getRepository(ACCOUNT, 'absent'), undefined);
      const created = await repo(store, 'present');
      assert.deepEqual(await store.getRepository(ACCOUNT, 'present'), created);
      assert.equal(await store.getRepository(ACCOUNT, 'presen'), undefined, 'no prefix match');
    });

    metaTest('listRepositories pages through names in byte order', async (store) => {
      // Separators sort below letters and digits in byte order, not in most locales' collation.
      const names = ['b', 'a/b', 'a-b', 'a.b', 'a_b', 'ab', 'a0', 'a/c', 'aa', 'team/app', 'z9', 'a', 'a/b/c'];
      for (const n of names) await repo(store, n);
      const sorted = byteOrder(names);
      assert.deepEqual(await store.listRepositories(ACCOUNT, { limit: 100 }), sorted);
      assert.deepEqual(await allPages((p) => store.listRepositories(ACCOUNT, p), 3), sorted);
      assert.deepEqual(await allPages((p) => store.listRepositories(ACCOUNT, p), 1), sorted);
      assert.deepEqual(await store.listRepositories(ACCOUNT, { limit: 2 }), sorted.slice(0, 2));
      assert.deepEqual(await store.listRepositories(ACCOUNT, { after: 'a/b', limit: 3 }), sorted.slice(sorted.indexOf('a/b') + 1, sorted.indexOf('a/b') + 4));
      assert.deepEqual(await store.listRepositories(ACCOUNT, { after: 'a1', limit: 100 }), sorted.filter((n) => n > 'a1'), '`after` need not be a listed name');
      assert.deepEqual(await store.listRepositories(ACCOUNT, { after: 'z9', limit: 10 }), []);
    });

    // --- blobs ------------------------------------------------------------------------------------

    metaTest('putBlob is idempotent and getBlob resolves undefined when absent', async (store) => {
      const d = digest();
      assert.equal(await store.getBlob(d), undefined);
      await store.putBlob({ digest: d, sizeBytes: BIG_SIZE }, T0);
      await store.putBlob({ digest: d, sizeBytes: BIG_SIZE }, T0 + 1);
      assert.deepEqual(await store.getBlob(d), { digest: d, sizeBytes: BIG_SIZE });
      const empty = digestOf(Buffer.alloc(0));
      await store.putBlob({ digest: empty, sizeBytes: 0 }, T0);
      assert.deepEqual(await store.getBlob(empty), { digest: empty, sizeBytes: 0 });
      const long = digestOf(Buffer.from('x'), 'sha512');
      await store.putBlob({ digest: long, sizeBytes: 1 }, T0);
      assert.deepEqual(await store.getBlob(long), { digest: long, sizeBytes: 1 });
    });

    metaTest('linkBlob is idempotent and per repository; unlinkBlob keeps the blob record', async (store) => {
      const a = await repo(store, 'a');
      const b = await repo(store, 'b');
      const d = digest();
      await store.putBlob({ digest: d, sizeBytes: 42 }, T0);
      assert.equal(await store.findLinkedBlob(a.id, d), undefined, 'recorded but not linked');
      await store.linkBlob(a.id, d, T0);
      await store.linkBlob(a.id, d, T0 + 1);
      assert.deepEqual(await store.findLinkedBlob(a.id, d), { digest: d, sizeBytes: 42 });
      assert.equal(await store.findLinkedBlob(b.id, d), undefined, 'another repository does not see it');
      assert.equal(await store.findLinkedBlob(a.id, digest()), undefined, 'an unknown digest');
      assert.equal(await store.unlinkBlob(a.id, d), true);
      assert.equal(await store.unlinkBlob(a.id, d), false);
      assert.equal(await store.unlinkBlob(b.id, d), false);
      assert.equal(await store.findLinkedBlob(a.id, d), undefined);
      assert.deepEqual(await store.getBlob(d), { digest: d, sizeBytes: 42 }, 'the bytes stay; GC decides');
      await store.linkBlob(a.id, d, T0 + 2);
      assert.deepEqual(await store.findLinkedBlob(a.id, d), { digest: d, sizeBytes: 42 }, 'a blob can be linked again');
    });

    metaTest('findLinkedBlobs answers for over 1000 digests, only those the repository links', async (store) => {
      const a = await repo(store, 'many');
      const b = await repo(store, 'other');
      const digests = Array.from({ length: 1203 }, () => digest());
      await store.transaction(async (tx) => {
        for (const [i, d] of digests.entries()) {
          await tx.putBlob({ digest: d, sizeBytes: BIG_SIZE + i }, T0);
          if (i % 3 === 0) await tx.linkBlob(a.id, d, T0);
          if (i % 2 === 0) await tx.linkBlob(b.id, d, T0);
        }
      });
      const unrecorded = Array.from({ length: 10 }, () => digest());
      const found = await store.findLinkedBlobs(a.id, [...unrecorded, ...digests]);
      const expected = new Map(digests.flatMap((d, i) => (i % 3 === 0 ? [[d, { digest: d, sizeBytes: BIG_SIZE + i }] as const] : [])));
      assert.equal(found.size, expected.size);
      assert.deepEqual(found, expected);
      assert.deepEqual(await store.findLinkedBlobs(a.id, []), new Map());
      assert.deepEqual(await store.findLinkedBlobs(a.id, unrecorded), new Map());
    });

    metaTest('findRepositoriesWithBlob lists the repositories that link it, oldest first, up to limit', async (store) => {
      const d = digest();
      await store.putBlob({ digest: d, sizeBytes: 1 }, T0);
      // Created and linked in the same order, so either reading of "oldest" gives the same list.
      const repos = [];
      for (const [i, n] of ['zeta', 'alpha', 'mid', 'unlinked'].entries()) repos.push(await repo(store, n, T0 + i * 1000));
      for (const [i, r] of repos.slice(0, 3).entries()) await store.linkBlob(r.id, d, T0 + 10_000 + i * 1000);
      assert.deepEqual(await store.findRepositoriesWithBlob(ACCOUNT, d, 10), repos.slice(0, 3));
      assert.deepEqual(await store.findRepositoriesWithBlob(ACCOUNT, d, 2), repos.slice(0, 2));
      assert.deepEqual(await store.findRepositoriesWithBlob(ACCOUNT, digest(), 10), []);
      await store.unlinkBlob(repos[0]!.id, d);
      assert.deepEqual(await store.findRepositoriesWithBlob(ACCOUNT, d, 10), repos.slice(1, 3));
    });

    // --- manifests ----------------------------------------------------------------------------------

    metaTest('a manifest round-trips every field and its exact bytes, binary and large included', async (store) => {
      const r = await repo(store, 'img');
      const binary = Buffer.concat([
        Buffer.from([0xef, 0xbb, 0xbf]), // a UTF-8 BOM
        Buffer.from(Array.from({ length: 256 }, (_, i) => i)),
        Buffer.from([0xc3, 0x28, 0xff, 0xfe, 0xed, 0xa0, 0x80, 0xf4, 0x90, 0x80, 0x80]), // invalid UTF-8
        Buffer.from(' {"a":1}\r\n\0'),
      ]);
      const full = manifest({
        payload: binary,
        mediaType: 'application/vnd.oci.image.index.v1+json',
        artifactType: 'application/vnd.example.sbom',
        subjectDigest: digest(),
        annotations: '{"org.opencontainers.image.created":"2024-01-01T00:00:00Z","é":"ü"}',
        createdAtMs: T0 + 7,
      });
      await store.putManifest(r.id, full, []);
      assertManifest(await store.getManifest(r.id, full.digest), full, 'binary manifest');

      const large = manifest({ payload: Buffer.alloc(4 * 1024 * 1024, 'ab\u00ff') });
      await store.putManifest(r.id, large, []);
      assertManifest(await store.getManifest(r.id, large.digest), large, '4 MiB manifest');

      const bare = manifest({ payload: Buffer.from('{}') });
      await store.putManifest(r.id, bare, []);
      assertManifest(await store.getManifest(r.id, bare.digest), bare, 'manifest with null fields');
    });

    metaTest('getManifest resolves undefined when absent or in another repository', async (store) => {
      const a = await repo(store, 'a');
      const b = await repo(store, 'b');
      const m = manifest();
      await store.putManifest(a.id, m, []);
      assert.equal(await store.getManifest(a.id, digest()), undefined);
      assert.equal(await store.getManifest(b.id, m.digest), undefined);
    });

    metaTest('putManifest is idempotent: the first write wins, references included', async (store) => {
      const r = await repo(store, 'img');
      const childA = manifest();
      const childB = manifest();
      for (const c of [childA, childB]) await store.putManifest(r.id, c, []);
      const first = manifest({ createdAtMs: T0 + 1 });
      await store.putManifest(r.id, first, [{ digest: childA.digest, kind: 'manifest' }]);
      const second = { ...first, mediaType: 'application/other', artifactType: 'x/y', annotations: '{}', createdAtMs: T0 + 2, payload: Buffer.from('other bytes') };
      await store.putManifest(r.id, second, [{ digest: childB.digest, kind: 'manifest' }]);
      assertManifest(await store.getManifest(r.id, first.digest), first, 'after a second put');
      assert.deepEqual(await store.findParentManifests(r.id, childA.digest), [first.digest]);
      assert.deepEqual(await store.findParentManifests(r.id, childB.digest), [], "the second put's references are not recorded");
      // The same manifest in another repository is a separate record.
      const other = await repo(store, 'other');
      await store.putManifest(other.id, second, []);
      assert.equal((await store.getManifest(other.id, first.digest))?.mediaType, 'application/other');
      assert.equal((await store.getManifest(r.id, first.digest))?.mediaType, first.mediaType);
    });

    metaTest('findExistingManifests answers for over 500 digests, within the repository only', async (store) => {
      const a = await repo(store, 'a');
      const b = await repo(store, 'b');
      const digests = Array.from({ length: 1100 }, () => digest());
      const present = [0, 499, 500, 501, 999, 1000, 1099];
      const manifests = present.map(() => manifest());
      for (const [k, i] of present.entries()) digests[i] = manifests[k]!.digest;
      for (const m of manifests) await store.putManifest(a.id, m, []);
      const elsewhere = manifest();
      await store.putManifest(b.id, elsewhere, []);
      digests.push(elsewhere.digest);
      assert.deepEqual(await store.findExistingManifests(a.id, digests), new Set(manifests.map((m) => m.digest)));
      assert.deepEqual(await store.findExistingManifests(b.id, digests), new Set([elsewhere.digest]));
      assert.deepEqual(await store.findExistingManifests(a.id, []), new Set());
    });

    // --- tags ---------------------------------------------------------------------------------------

    metaTest('putTag creates and moves a tag; findTagDigest and findManifestByTag follow it', async (store) => {
      const r = await repo(store, 'img');
      const other = await repo(store, 'other');
      const m1 = manifest();
      const m2 = manifest({ payload: Buffer.from([0xff, 0x00, 0x80]) });
      await store.putManifest(r.id, m1, []);
      await store.putManifest(r.id, m2, []);
      assert.equal(await store.findTagDigest(r.id, 'latest'), undefined);
      assert.equal(await store.findManifestByTag(r.id, 'latest'), undefined);
      await store.putTag(r.id, 'latest', m1.digest, T0);
      assert.equal(await store.findTagDigest(r.id, 'latest'), m1.digest);
      assertManifest(await store.findManifestByTag(r.id, 'latest'), m1);
      await store.putTag(r.id, 'latest', m2.digest, T0 + 1);
      assert.equal(await store.findTagDigest(r.id, 'latest'), m2.digest);
      assertManifest(await store.findManifestByTag(r.id, 'latest'), m2, 'the moved tag');
      await store.putTag(r.id, 'latest', m2.digest, T0 + 2); // same target again
      assert.deepEqual(await store.listTags(r.id, { limit: 10 }), ['latest']);
      assertManifest(await store.getManifest(r.id, m1.digest), m1, 'the old target stays');
      assert.equal(await store.findTagDigest(other.id, 'latest'), undefined, 'tags are per repository');
      assert.equal(await store.findManifestByTag(other.id, 'latest'), undefined);
      assert.equal(await store.findTagDigest(r.id, 'LATEST'), undefined, 'tags are case-sensitive');
    });

    metaTest('deleteTag removes the tag only, and resolves false when absent', async (store) => {
      const r = await repo(store, 'img');
      const m = manifest();
      await store.putManifest(r.id, m, []);
      await store.putTag(r.id, 'v1', m.digest, T0);
      await store.putTag(r.id, 'v2', m.digest, T0);
      assert.equal(await store.deleteTag(r.id, 'v1'), true);
      assert.equal(await store.deleteTag(r.id, 'v1'), false);
      assert.equal(await store.deleteTag(r.id, 'never'), false);
      assert.equal(await store.findTagDigest(r.id, 'v1'), undefined);
      assert.equal(await store.findTagDigest(r.id, 'v2'), m.digest);
      assertManifest(await store.getManifest(r.id, m.digest), m, 'the manifest stays');
    });

    metaTest('listTags pages through the repository’s tags in byte order', async (store) => {
      const r = await repo(store, 'img');
      const other = await repo(store, 'other');
      const m = manifest();
      await store.putManifest(r.id, m, []);
      await store.putManifest(other.id, m, []);
      // Upper case sorts before lower case and _ between them in byte order, unlike most locales.
      const tags = ['latest', 'v1.0', 'v1.0-rc1', 'v1_0', 'V2', '1.0', 'A', 'a', 'Z', '_x', 'v1', 'v10', 'v2'];
      for (const t of tags) await store.putTag(r.id, t, m.digest, T0);
      await store.putTag(other.id, 'elsewhere', m.digest, T0);
      const sorted = byteOrder(tags);
      assert.deepEqual(await store.listTags(r.id, { limit: 100 }), sorted);
      assert.deepEqual(await allPages((p) => store.listTags(r.id, p), 4), sorted);
      assert.deepEqual(await store.listTags(r.id, { after: 'Z', limit: 2 }), sorted.slice(sorted.indexOf('Z') + 1, sorted.indexOf('Z') + 3));
      assert.deepEqual(await store.listTags(r.id, { after: 'v2', limit: 10 }), []);
      assert.deepEqual(await store.listTags(other.id, { limit: 100 }), ['elsewhere']);
    });

    // --- references, deletion, referrers ------------------------------------------------------------

    metaTest('deleteManifest removes the manifest, its tags and its references, and nothing else', async (store) => {
      const r = await repo(store, 'img');
      const child = manifest();
      const index = manifest();
      const sibling = manifest();
      const layer = digest();
      await store.putManifest(r.id, child, []);
      await store.putManifest(r.id, index, [
        { digest: child.digest, kind: 'manifest' },
        { digest: layer, kind: 'blob' },
      ]);
      await store.putManifest(r.id, sibling, [{ digest: child.digest, kind: 'manifest' }]);
      await store.putTag(r.id, 'v1', index.digest, T0);
      await store.putTag(r.id, 'latest', index.digest, T0);
      await store.putTag(r.id, 'child', child.digest, T0);
      assert.deepEqual((await store.findParentManifests(r.id, child.digest)).sort(), [index.digest, sibling.digest].sort());

      assert.equal(await store.deleteManifest(r.id, index.digest), true);
      assert.equal(await store.getManifest(r.id, index.digest), undefined);
      assert.equal(await store.findTagDigest(r.id, 'v1'), undefined, 'its tags go with it');
      assert.equal(await store.findManifestByTag(r.id, 'latest'), undefined);
      assert.deepEqual(await store.listTags(r.id, { limit: 10 }), ['child']);
      assert.deepEqual(await store.findParentManifests(r.id, child.digest), [sibling.digest], 'its references go with it');
      assertManifest(await store.getManifest(r.id, child.digest), child, 'what it referenced stays');
      assert.equal(await store.deleteManifest(r.id, index.digest), false);
      assert.equal(await store.deleteManifest(r.id, digest()), false);

      // Pushed again without references, it must not regain the old ones.
      await store.putManifest(r.id, index, []);
      assert.deepEqual(await store.findParentManifests(r.id, child.digest), [sibling.digest]);
      assert.equal(await store.findTagDigest(r.id, 'v1'), undefined, 'nor its old tags');
    });

    metaTest('findParentManifests lists manifests that reference a child manifest, not a blob, in the repository', async (store) => {
      const r = await repo(store, 'img');
      const other = await repo(store, 'other');
      const child = manifest();
      const parents = [manifest(), manifest(), manifest()];
      const shared = digest();
      await store.putManifest(r.id, child, []);
      for (const p of parents) {
        await store.putManifest(r.id, p, [
          { digest: child.digest, kind: 'manifest' },
          { digest: shared, kind: 'blob' },
        ]);
      }
      await store.putManifest(other.id, manifest(), [{ digest: child.digest, kind: 'manifest' }]);
      const byLayer = manifest();
      await store.putManifest(r.id, byLayer, [{ digest: child.digest, kind: 'blob' }]);
      assert.deepEqual((await store.findParentManifests(r.id, child.digest)).sort(), parents.map((p) => p.digest).sort());
      assert.deepEqual(await store.findParentManifests(r.id, shared), [], 'blob references are not parents');
      assert.deepEqual(await store.findParentManifests(r.id, digest()), []);
    });

    metaTest('listReferrers lists manifests by subject, oldest first, optionally of one artifact type', async (store) => {
      const r = await repo(store, 'img');
      const other = await repo(store, 'other');
      const subject = digest();
      const sig = 'application/vnd.example.signature';
      const sbom = 'application/vnd.example.sbom';
      const newest = manifest({ subjectDigest: subject, artifactType: sbom, createdAtMs: T0 + 300, annotations: '{"k":"v"}' });
      const oldest = manifest({ subjectDigest: subject, artifactType: sig, createdAtMs: T0 + 100 });
      const middle = manifest({ subjectDigest: subject, artifactType: sig, createdAtMs: T0 + 200 });
      const untyped = manifest({ subjectDigest: subject, createdAtMs: T0 + 250 });
      // Inserted out of order, so that insertion order cannot pass for age.
      for (const m of [newest, middle, untyped, oldest]) await store.putManifest(r.id, m, []);
      await store.putManifest(r.id, manifest({ subjectDigest: digest(), artifactType: sig }), []);
      await store.putManifest(other.id, manifest({ subjectDigest: subject, artifactType: sig }), []);
      await store.putManifest(r.id, manifest(), []);

      const all = await store.listReferrers(r.id, subject);
      assert.deepEqual(all.map(summary), [oldest, middle, untyped, newest].map(summary));
      assert.deepEqual((await store.listReferrers(r.id, subject, sig)).map(summary), [oldest, middle].map(summary));
      assert.deepEqual((await store.listReferrers(r.id, subject, sbom)).map(summary), [newest].map(summary));
      assert.deepEqual(await store.listReferrers(r.id, subject, 'application/none'), []);
      assert.deepEqual(await store.listReferrers(r.id, digest()), []);
      await store.deleteManifest(r.id, middle.digest);
      assert.deepEqual((await store.listReferrers(r.id, subject, sig)).map((m) => m.digest), [oldest.digest]);
    });

    // --- uploads ------------------------------------------------------------------------------------

    metaTest('uploads: create, get, delete', async (store) => {
      const r = await repo(store, 'img');
      const upload: Upload = { id: 'c6f0e9a4-0b9e-4c55-a0b5-6d3c1f2e9a01', repositoryId: r.id, sizeBytes: 0, startedAtMs: T0, updatedAtMs: T0 + 1 };
      assert.equal(await store.getUpload(upload.id), undefined);
      await store.createUpload(upload);
      assert.deepEqual(await store.getUpload(upload.id), upload);
      assert.equal(await store.deleteUpload(upload.id), true);
      assert.equal(await store.deleteUpload(upload.id), false);
      assert.equal(await store.getUpload(upload.id), undefined);
      assert.equal(await store.deleteUpload('never'), false);
    });

    metaTest('advanceUpload moves the size only from the size the caller saw', async (store) => {
      const r = await repo(store, 'img');
      await store.createUpload({ id: 'u1', repositoryId: r.id, sizeBytes: 0, startedAtMs: T0, updatedAtMs: T0 });
      assert.equal(await store.advanceUpload('u1', 0, BIG_SIZE, T0 + 10), true);
      assert.deepEqual(await store.getUpload('u1'), { id: 'u1', repositoryId: r.id, sizeBytes: BIG_SIZE, startedAtMs: T0, updatedAtMs: T0 + 10 });
      assert.equal(await store.advanceUpload('u1', 0, 50, T0 + 20), false, 'from a stale size');
      assert.deepEqual(await store.getUpload('u1'), { id: 'u1', repositoryId: r.id, sizeBytes: BIG_SIZE, startedAtMs: T0, updatedAtMs: T0 + 10 }, 'a failed advance changes nothing');
      assert.equal(await store.advanceUpload('absent', 0, 10, T0), false);
      assert.equal(await store.getUpload('absent'), undefined, 'advancing does not create');

      // Two nodes appending to one upload: of several advances from the same size, one wins.
      const outcomes = await Promise.all(Array.from({ length: 5 }, (_, i) => store.advanceUpload('u1', BIG_SIZE, BIG_SIZE + 1 + i, T0 + 30)));
      assert.equal(outcomes.filter(Boolean).length, 1);
      const winner = outcomes.indexOf(true);
      assert.equal((await store.getUpload('u1'))?.sizeBytes, BIG_SIZE + 1 + winner);
    });

    metaTest('listStaleUploads lists uploads untouched since the cutoff, oldest first, up to limit', async (store) => {
      const r = await repo(store, 'img');
      const at = { u300: 300, u100: 100, u500: 500, u200: 200, u400: 400 };
      for (const [id, t] of Object.entries(at)) await store.createUpload({ id, repositoryId: r.id, sizeBytes: 0, startedAtMs: T0, updatedAtMs: T0 + t });
      const ids = (uploads: Upload[]) => uploads.map((u) => u.id);
      assert.deepEqual(ids(await store.listStaleUploads(T0 + 400, 10)), ['u100', 'u200', 'u300'], 'touched at the cutoff is not stale');
      assert.deepEqual(ids(await store.listStaleUploads(T0 + 400, 2)), ['u100', 'u200']);
      assert.deepEqual(ids(await store.listStaleUploads(T0 + 100, 10)), []);
      assert.deepEqual((await store.listStaleUploads(T0 + 150, 10))[0], { id: 'u100', repositoryId: r.id, sizeBytes: 0, startedAtMs: T0, updatedAtMs: T0 + 100 });
      assert.equal(await store.advanceUpload('u100', 0, 10, T0 + 600), true);
      assert.deepEqual(ids(await store.listStaleUploads(T0 + 1000, 10)), ['u200', 'u300', 'u400', 'u500', 'u100'], 'an advance touches it');
      await store.deleteUpload('u200');
      assert.deepEqual(ids(await store.listStaleUploads(T0 + 400, 10)), ['u300']);
    });

    // --- transactions -------------------------------------------------------------------------------

    metaTest('a transaction whose fn rejects rejects with that error, and none of its writes are visible', async (store) => {
      const r = await repo(store, 'keep');
      const kept = digest();
      await store.putBlob({ digest: kept, sizeBytes: 1 }, T0);
      await store.linkBlob(r.id, kept, T0);
      const m0 = manifest();
      await store.putManifest(r.id, m0, []);
      await store.putTag(r.id, 'stay', m0.digest, T0);
      await store.putTag(r.id, 'doomed', m0.digest, T0);
      await store.createUpload({ id: 'up', repositoryId: r.id, sizeBytes: 0, startedAtMs: T0, updatedAtMs: T0 });
      await store.createUpload({ id: 'up2', repositoryId: r.id, sizeBytes: 0, startedAtMs: T0, updatedAtMs: T0 });

      const fresh = digest();
      const m1 = manifest();
      const boom = new Error('boom');
      await assert.rejects(
        store.transaction(async (tx) => {
          await tx.createRepository(ACCOUNT, 'gone', T0);
          await tx.putBlob({ digest: fresh, sizeBytes: 2 }, T0);
          await tx.linkBlob(r.id, fresh, T0);
          await tx.unlinkBlob(r.id, kept);
          await tx.putManifest(r.id, m1, [{ digest: m0.digest, kind: 'manifest' }]);
          await tx.putTag(r.id, 'stay', m1.digest, T0 + 1);
          await tx.putTag(r.id, 'new', m1.digest, T0 + 1);
          await tx.deleteTag(r.id, 'doomed');
          await tx.createUpload({ id: 'tx-up', repositoryId: r.id, sizeBytes: 0, startedAtMs: T0, updatedAtMs: T0 });
          await tx.advanceUpload('up', 0, 100, T0 + 1);
          await tx.deleteUpload('up2');
          // Inside, the transaction reads its own writes.
          assert.ok(await tx.getRepository(ACCOUNT, 'gone'));
          assert.equal(await tx.findTagDigest(r.id, 'stay'), m1.digest);
          assert.equal((await tx.getUpload('up'))?.sizeBytes, 100);
          throw boom;
        }),
        (err) => {
          if (err !== boom) throw err;
          return true;
        },
      );
      assert.equal(await store.getRepository(ACCOUNT, 'gone'), undefined);
      assert.deepEqual(await store.listRepositories(ACCOUNT, { limit: 10 }), ['keep']);
      assert.equal(await store.getBlob(fresh), undefined);
      assert.equal(await store.findLinkedBlob(r.id, fresh), undefined);
      assert.deepEqual(await store.findLinkedBlob(r.id, kept), { digest: kept, sizeBytes: 1 });
      assert.equal(await store.getManifest(r.id, m1.digest), undefined);
      assert.deepEqual(await store.findParentManifests(r.id, m0.digest), []);
      assert.deepEqual(await store.listTags(r.id, { limit: 10 }), ['doomed', 'stay']);
      assert.equal(await store.findTagDigest(r.id, 'stay'), m0.digest);
      assert.equal(await store.getUpload('tx-up'), undefined);
      assert.equal((await store.getUpload('up'))?.sizeBytes, 0);
      assert.ok(await store.getUpload('up2'));
    });

    metaTest('a transaction that resolves commits all its writes and resolves with fn’s value', async (store) => {
      const r = await repo(store, 'img');
      const m0 = manifest();
      await store.putManifest(r.id, m0, []);
      await store.putTag(r.id, 'old', m0.digest, T0);
      await store.createUpload({ id: 'up', repositoryId: r.id, sizeBytes: 7, startedAtMs: T0, updatedAtMs: T0 });
      const d = digest();
      const m1 = manifest();
      const value = await store.transaction(async (tx) => {
        const { repository, created } = await tx.createRepository(ACCOUNT, 'made', T0);
        await tx.putBlob({ digest: d, sizeBytes: 3 }, T0);
        await tx.linkBlob(repository.id, d, T0);
        await tx.putManifest(r.id, m1, [{ digest: m0.digest, kind: 'manifest' }]);
        await tx.putTag(r.id, 'new', m1.digest, T0);
        await tx.deleteManifest(r.id, m0.digest);
        await tx.deleteUpload('up');
        return { id: repository.id, created };
      });
      assert.equal(value.created, true);
      assert.deepEqual(await store.getRepository(ACCOUNT, 'made'), { id: value.id, accountId: ACCOUNT, name: 'made', createdAtMs: T0 });
      assert.deepEqual(await store.findLinkedBlob(value.id, d), { digest: d, sizeBytes: 3 });
      assertManifest(await store.findManifestByTag(r.id, 'new'), m1);
      assert.deepEqual(await store.findParentManifests(r.id, m0.digest), [m1.digest]);
      assert.equal(await store.getManifest(r.id, m0.digest), undefined);
      assert.deepEqual(await store.listTags(r.id, { limit: 10 }), ['new']);
      assert.equal(await store.getUpload('up'), undefined);
    });

    metaTest('concurrent transactions: each commits or rolls back on its own', async (store) => {
      const outcomes = await Promise.allSettled(
        Array.from({ length: 6 }, (_, i) =>
          store.transaction(async (tx) => {
            const { repository } = await tx.createRepository(ACCOUNT, `tx/${i}`, T0);
            const d = digest(`tx ${i}`);
            await tx.putBlob({ digest: d, sizeBytes: i }, T0);
            await tx.linkBlob(repository.id, d, T0);
            if (i === 2) throw new Error(`transaction ${i} fails`);
            return repository.id;
          }),
        ),
      );
      assert.deepEqual(
        outcomes.map((o) => o.status),
        ['fulfilled', 'fulfilled', 'rejected', 'fulfilled', 'fulfilled', 'fulfilled'],
      );
      assert.deepEqual(await store.listRepositories(ACCOUNT, { limit: 10 }), ['tx/0', 'tx/1', 'tx/3', 'tx/4', 'tx/5']);
      assert.equal(await store.getBlob(digest('tx 2')), undefined);
      for (const [i, o] of outcomes.entries()) {
        if (o.status === 'fulfilled') assert.deepEqual(await store.findLinkedBlob(o.value, digest(`tx ${i}`)), { digest: digest(`tx ${i}`), sizeBytes: i });
      }
    });

    // --- images (ECR ListImages, DescribeImages, lastRecordedPullTime) -----------------------------

    metaTest('listImageIds: one entry per tag and one per untagged manifest, by digest then tag, filtered and paged', async (store) => {
      const r = await repo(store, 'images/ids');
      const [m1, m2, m3] = [manifest(), manifest(), manifest()];
      for (const m of [m1, m2, m3]) await store.putManifest(r.id, m, []);
      await store.putTag(r.id, 'v1', m1.digest, T0);
      await store.putTag(r.id, 'latest', m1.digest, T0);
      await store.putTag(r.id, 'v2', m2.digest, T0);
      const other = await repo(store, 'images/other');
      await store.putManifest(other.id, m3, []);
      await store.putTag(other.id, 'elsewhere', m3.digest, T0);

      const byDigest = [m1, m2, m3].map((m) => m.digest).sort();
      const expected = byDigest.flatMap((d): ImageId[] => (d === m1.digest ? [{ digest: d, tag: 'latest' }, { digest: d, tag: 'v1' }] : d === m2.digest ? [{ digest: d, tag: 'v2' }] : [{ digest: d, tag: null }]));
      assert.deepEqual(await store.listImageIds(r.id, { tagStatus: 'ANY', limit: 10 }), expected);
      assert.deepEqual(await store.listImageIds(r.id, { tagStatus: 'TAGGED', limit: 10 }), expected.filter((e) => e.tag !== null));
      assert.deepEqual(await store.listImageIds(r.id, { tagStatus: 'UNTAGGED', limit: 10 }), [{ digest: m3.digest, tag: null }]);

      // Page by page, one entry at a time, each page continuing after the last entry of the one before.
      const paged: ImageId[] = [];
      let after: ImageId | undefined;
      for (;;) {
        const page = await store.listImageIds(r.id, { tagStatus: 'ANY', after, limit: 1 });
        if (page.length === 0) break;
        assert.equal(page.length, 1);
        paged.push(page[0]!);
        after = page[0];
      }
      assert.deepEqual(paged, expected);
      assert.deepEqual(await store.listImageIds(other.id + 1000, { tagStatus: 'ANY', limit: 10 }), [], 'a missing repository has no images');
    });

    metaTest('listImages and getImages: manifests with their tags and last pull, filtered by tag status and paged by digest', async (store) => {
      const r = await repo(store, 'images/details');
      const tagged = manifest({ artifactType: 'application/vnd.example+json', annotations: '{"a":"b"}', createdAtMs: T0 + 1 });
      const untagged = manifest({ createdAtMs: T0 + 2 });
      await store.putManifest(r.id, tagged, []);
      await store.putManifest(r.id, untagged, []);
      await store.putTag(r.id, 'b', tagged.digest, T0);
      await store.putTag(r.id, 'a', tagged.digest, T0);

      const all = await store.listImages(r.id, { tagStatus: 'ANY', limit: 10 });
      assert.deepEqual(all.map((i) => i.digest), [tagged.digest, untagged.digest].sort());
      const t = all.find((i) => i.digest === tagged.digest)!;
      assertManifest(t, tagged, 'tagged image');
      assert.deepEqual(t.tags, ['a', 'b'], 'tags in byte order');
      assert.equal(t.lastPulledAtMs, null, 'never pulled');
      assert.deepEqual(all.find((i) => i.digest === untagged.digest)!.tags, []);

      assert.deepEqual((await store.listImages(r.id, { tagStatus: 'TAGGED', limit: 10 })).map((i) => i.digest), [tagged.digest]);
      assert.deepEqual((await store.listImages(r.id, { tagStatus: 'UNTAGGED', limit: 10 })).map((i) => i.digest), [untagged.digest]);
      const first = await store.listImages(r.id, { tagStatus: 'ANY', limit: 1 });
      assert.equal(first.length, 1);
      const second = await store.listImages(r.id, { tagStatus: 'ANY', afterDigest: first[0]!.digest, limit: 1 });
      assert.deepEqual([...first, ...second].map((i) => i.digest), all.map((i) => i.digest));
      assert.deepEqual(await store.listImages(r.id, { tagStatus: 'ANY', afterDigest: second[0]!.digest, limit: 1 }), []);

      const missing = digest('not pushed');
      const got = await store.getImages(r.id, [tagged.digest, missing, tagged.digest]);
      assert.deepEqual([...got.keys()], [tagged.digest], 'absent digests are left out; duplicates count once');
      assert.deepEqual(got.get(tagged.digest), t);
      assert.equal((await store.getImages(r.id, [])).size, 0);
    });

    metaTest('recordPulls: a pull time only moves forward, is per repository, and skips manifests that are gone', async (store) => {
      const r = await repo(store, 'images/pulls');
      const other = await repo(store, 'images/pulls-other');
      const m = manifest();
      const gone = manifest();
      await store.putManifest(r.id, m, []);
      await store.putManifest(other.id, m, []);
      await store.putManifest(r.id, gone, []);
      await store.deleteManifest(r.id, gone.digest);
      const pulledAt = async (repositoryId: number) => (await store.getImages(repositoryId, [m.digest])).get(m.digest)!.lastPulledAtMs;

      await store.recordPulls([]);
      await store.recordPulls([
        { repositoryId: r.id, digest: m.digest, atMs: T0 + 10_000 },
        { repositoryId: r.id, digest: gone.digest, atMs: T0 + 10_000 },
      ]);
      assert.equal(await pulledAt(r.id), T0 + 10_000);
      assert.equal(await pulledAt(other.id), null, 'the same digest in another repository is another image');
      assert.equal(await store.getManifest(r.id, gone.digest), undefined, 'a pull of a deleted manifest does not bring it back');

      await store.recordPulls([{ repositoryId: r.id, digest: m.digest, atMs: T0 + 5_000 }]);
      assert.equal(await pulledAt(r.id), T0 + 10_000, 'an older time does not move it back');
      await store.recordPulls([{ repositoryId: r.id, digest: m.digest, atMs: T0 + 20_000 }, { repositoryId: other.id, digest: m.digest, atMs: T0 + 1 }]);
      assert.equal(await pulledAt(r.id), T0 + 20_000);
      assert.equal(await pulledAt(other.id), T0 + 1);
      assert.equal((await store.listImages(r.id, { tagStatus: 'ANY', limit: 10 }))[0]!.lastPulledAtMs, T0 + 20_000, 'listImages shows it too');
    });

    metaTest('isReferenced: whether a manifest of the repository references a blob or a child manifest', async (store) => {
      const r = await repo(store, 'images/refs');
      const other = await repo(store, 'images/refs-other');
      const layer = digest('layer');
      const child = manifest();
      const index = manifest();
      await store.putManifest(r.id, child, [{ digest: layer, kind: 'blob' }]);
      await store.putManifest(r.id, index, [{ digest: child.digest, kind: 'manifest' }]);
      assert.equal(await store.isReferenced(r.id, layer), true);
      assert.equal(await store.isReferenced(r.id, child.digest), true);
      assert.equal(await store.isReferenced(r.id, index.digest), false);
      assert.equal(await store.isReferenced(other.id, layer), false, 'references are per repository');
      await store.deleteManifest(r.id, index.digest);
      assert.equal(await store.isReferenced(r.id, child.digest), false, 'gone with the manifest that made it');
    });
  });
}
