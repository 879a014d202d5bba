import assert from 'node:assert/strict';
import { describe } from 'node:test';
import type { MetaStore, Repository } from '../../src/store/meta/meta-store.ts';
import type { ScanOutcome, ScanRecord } from '../../src/store/meta/scan-store.ts';
import { manifest, storeTest, T0, type MetaStoreHarness } from './harness.ts';

const ACCOUNT = '111122223333';
const OTHER_ACCOUNT = '444455556666';
/** A digest no manifest has. */
const ABSENT = `sha256:${'0'.repeat(64)}`;

function outcome(overrides: Partial<ScanOutcome> = {}): ScanOutcome {
  return {
    status: 'COMPLETE',
    description: 'The scan was completed successfully. ü',
    completedAtMs: T0 + 5_000,
    dbVersion: 1,
    dbUpdatedAtMs: T0 - 86_400_000,
    severityCounts: '{"HIGH":1}',
    findings: '{"findings":[{"name":"CVE-2099-0001","package":"😀"}]}',
    ...overrides,
  };
}

const request = (nowMs: number, overrides: Partial<{ reason: string; scanType: 'BASIC' | 'ENHANCED'; isManual: boolean }> = {}) => ({ reason: 'push', scanType: 'BASIC' as const, nowMs, ...overrides });

/** Key order of the records staleScans pages through: repository id, then digest bytes. */
function keyOrder(a: ScanRecord, b: ScanRecord): number {
  return a.repositoryId - b.repositoryId || Buffer.compare(Buffer.from(a.digest), Buffer.from(b.digest));
}

/**
 * Image scanning's state and queue (ScanStore, src/store/meta/scan-store.ts), on every MetaStore
 * driver. Scan records hang off manifests, so each test creates its repositories and manifests
 * with the MetaStore API first.
 */
export function scanStoreContract(name: string, open: () => Promise<MetaStoreHarness>): void {
  const scanTest = storeTest(open);

  async function repo(store: MetaStore, repositoryName: string, accountId = ACCOUNT): Promise<Repository> {
    return (await store.createRepository(accountId, repositoryName, T0)).repository;
  }

  /** `count` manifests in the repository; resolves their digests. */
  async function images(store: MetaStore, repository: Repository, count: number): Promise<string[]> {
    const digests: string[] = [];
    for (let i = 0; i < count; i++) {
      const m = manifest();
      await store.putManifest(repository.id, m, []);
      digests.push(m.digest);
    }
    return digests;
  }

  /** Requests, claims and finishes a scan with `result`; resolves the record. */
  async function scanned(store: MetaStore, repositoryId: number, digest: string, result: ScanOutcome, nowMs = T0): Promise<ScanRecord> {
    assert.equal(await store.scan.requestScan(repositoryId, digest, request(nowMs)), true);
    const claimed = await store.scan.claimScans('finisher', nowMs, nowMs + 60_000, 100);
    assert.ok(claimed.some((c) => c.repositoryId === repositoryId && c.digest === digest), 'the scan was claimed');
    assert.equal(await store.scan.finishScan(repositoryId, digest, 'finisher', result), true);
    return (await store.scan.getScan(repositoryId, digest))!;
  }

  describe(`ScanStore contract: ${name}`, () => {
    scanTest('registry scanning: undefined until put; put replaces; per account', async (store) => {
      assert.equal(await store.scan.registryScanning(ACCOUNT), undefined);
      const first = { scanType: 'ENHANCED' as const, rules: '[{"scanFrequency":"CONTINUOUS_SCAN","repositoryFilters":[{"filter":"prod-*","filterType":"WILDCARD"}]}]', updatedAtMs: T0 };
      await store.scan.putRegistryScanning(ACCOUNT, first);
      assert.deepEqual(await store.scan.registryScanning(ACCOUNT), first);
      assert.equal(await store.scan.registryScanning(OTHER_ACCOUNT), undefined, 'another account keeps the default');

      const second = { scanType: 'BASIC' as const, rules: '[]', updatedAtMs: 2 ** 42 };
      await store.scan.putRegistryScanning(ACCOUNT, second);
      assert.deepEqual(await store.scan.registryScanning(ACCOUNT), second, 'replaced whole; times past 2^32 ms kept');
    });

    scanTest('layer facts: per diffID and analyser version; putting again, at once or later, is idempotent', async (store) => {
      const diffId = `sha256:${'ab'.repeat(32)}`;
      assert.equal(await store.scan.layerFacts(diffId, 1), undefined);
      const facts = JSON.stringify({ packages: [{ name: 'libc6', version: '2.36-9+deb12u4' }], note: 'ü 😀' });
      // Two nodes analysing one shared base layer at once write the same result.
      await Promise.all(Array.from({ length: 6 }, () => store.scan.putLayerFacts(diffId, 1, facts, T0)));
      assert.equal(await store.scan.layerFacts(diffId, 1), facts);
      await store.scan.putLayerFacts(diffId, 1, facts, T0 + 1);
      assert.equal(await store.scan.layerFacts(diffId, 1), facts);
      assert.equal(await store.scan.layerFacts(diffId, 2), undefined, 'another analyser version has its own entry');
      await store.scan.putLayerFacts(diffId, 2, '{"v":2}', T0);
      assert.equal(await store.scan.layerFacts(diffId, 2), '{"v":2}');
      assert.equal(await store.scan.layerFacts(diffId, 1), facts);
      assert.equal(await store.scan.layerFacts(`sha256:${'cd'.repeat(32)}`, 1), undefined);
    });

    scanTest('inventories: per image digest and analyser version; putting again is idempotent', async (store) => {
      const digest = `sha256:${'ef'.repeat(32)}`;
      assert.equal(await store.scan.inventory(digest, 1), undefined);
      const inventory = JSON.stringify({ os: { id: 'debian', versionId: '12' }, packages: Array.from({ length: 2000 }, (_, i) => ({ name: `pkg-${i}`, version: `1.${i}-ü` })) });
      await Promise.all(Array.from({ length: 6 }, () => store.scan.putInventory(digest, 1, inventory, T0)));
      assert.equal(await store.scan.inventory(digest, 1), inventory, 'a large inventory reads back whole');
      await store.scan.putInventory(digest, 1, inventory, T0 + 1);
      assert.equal(await store.scan.inventory(digest, 1), inventory);
      assert.equal(await store.scan.inventory(digest, 2), undefined);
      // Not tied to a repository or a manifest: an inventory is the image's, wherever it is pushed.
      assert.equal(await store.scan.inventory(`sha256:${'12'.repeat(32)}`, 1), undefined);
    });

    scanTest('requestScan queues a scan once: PENDING with every field as documented; false while PENDING', async (store) => {
      const r = await repo(store, 'scan/request');
      const [digest] = await images(store, r, 1);
      assert.equal(await store.scan.getScan(r.id, digest!), undefined, 'no record before a request');
      assert.equal(await store.scan.requestScan(r.id, digest!, request(T0 + 10, { reason: 'push', scanType: 'ENHANCED' })), true);
      const expected: ScanRecord = {
        repositoryId: r.id,
        accountId: ACCOUNT,
        repositoryName: 'scan/request',
        digest: digest!,
        status: 'PENDING',
        description: null,
        reason: 'push',
        scanType: 'ENHANCED',
        requestedAtMs: T0 + 10,
        startedAtMs: null,
        completedAtMs: null,
        dbVersion: null,
        dbUpdatedAtMs: null,
        severityCounts: null,
        findings: null,
        lastManualAtMs: null,
        attempts: 0,
        leaseOwner: null,
        leaseUntilMs: null,
      };
      assert.deepEqual(await store.scan.getScan(r.id, digest!), expected);
      assert.equal(await store.scan.requestScan(r.id, digest!, request(T0 + 20, { reason: 'manual', isManual: true })), false, 'already PENDING');
      assert.deepEqual(await store.scan.getScan(r.id, digest!), expected, 'a refused request changes nothing, the manual time included');
    });

    scanTest('requestScan: false for an image that does not exist, and no record is made', async (store) => {
      const r = await repo(store, 'scan/missing');
      const other = await repo(store, 'scan/other');
      const [digest] = await images(store, other, 1);
      assert.equal(await store.scan.requestScan(r.id, ABSENT, request(T0)), false, 'no such manifest');
      assert.equal(await store.scan.requestScan(r.id, digest!, request(T0)), false, 'the manifest is in another repository');
      assert.equal(await store.scan.requestScan(999_999, digest!, request(T0)), false, 'no such repository');
      assert.equal(await store.scan.getScan(r.id, ABSENT), undefined);
      assert.equal(await store.scan.getScan(r.id, digest!), undefined);
      assert.deepEqual(await store.scan.countByStatus(), {});
      // The store is still usable (on PostgreSQL a failed statement must not poison the connection).
      assert.equal(await store.scan.requestScan(other.id, digest!, request(T0)), true);
    });

    scanTest('requestScan inside a transaction: a missing image resolves false and the transaction goes on', async (store) => {
      const r = await repo(store, 'scan/in-tx');
      const [digest] = await images(store, r, 1);
      await store.transaction(async (tx) => {
        assert.equal(await tx.scan.requestScan(r.id, ABSENT, request(T0)), false);
        assert.equal(await tx.scan.requestScan(r.id, digest!, request(T0)), true);
      });
      assert.equal((await store.scan.getScan(r.id, digest!))?.status, 'PENDING', 'the transaction committed its request');
    });

    scanTest('requestScan: of concurrent requests for a new image, exactly one queues it', async (store) => {
      const r = await repo(store, 'scan/race');
      const [digest] = await images(store, r, 1);
      const results = await Promise.all(Array.from({ length: 8 }, (_, i) => store.scan.requestScan(r.id, digest!, request(T0 + i))));
      assert.equal(results.filter(Boolean).length, 1, `one true in ${JSON.stringify(results)}`);
      assert.equal((await store.scan.getScan(r.id, digest!))?.status, 'PENDING');
    });

    scanTest('requestScan: false while IN_PROGRESS; after it finishes, queued again with the last findings kept', async (store) => {
      const r = await repo(store, 'scan/again');
      const [digest] = await images(store, r, 1);
      assert.equal(await store.scan.requestScan(r.id, digest!, request(T0)), true);
      const [claimed] = await store.scan.claimScans('node-a', T0 + 1, T0 + 60_000, 1);
      assert.equal(claimed?.status, 'IN_PROGRESS');
      assert.equal(await store.scan.requestScan(r.id, digest!, request(T0 + 2, { isManual: true })), false, 'already IN_PROGRESS');
      const during = await store.scan.getScan(r.id, digest!);
      assert.equal(during?.status, 'IN_PROGRESS');
      assert.equal(during?.leaseOwner, 'node-a');
      assert.equal(during?.lastManualAtMs, null);

      const done = outcome();
      assert.equal(await store.scan.finishScan(r.id, digest!, 'node-a', done), true);
      assert.equal(await store.scan.requestScan(r.id, digest!, request(T0 + 9_000, { reason: 'manual', scanType: 'ENHANCED', isManual: true })), true);
      const again = await store.scan.getScan(r.id, digest!);
      assert.deepEqual(again, {
        ...during!,
        status: 'PENDING',
        reason: 'manual',
        scanType: 'ENHANCED',
        requestedAtMs: T0 + 9_000,
        lastManualAtMs: T0 + 9_000,
        // The last result stays readable until the new scan finishes.
        description: done.description,
        completedAtMs: done.completedAtMs,
        dbVersion: done.dbVersion,
        dbUpdatedAtMs: done.dbUpdatedAtMs,
        severityCounts: done.severityCounts,
        findings: done.findings,
        // A new job: no lease, attempts counted afresh.
        attempts: 0,
        leaseOwner: null,
        leaseUntilMs: null,
      });

      // A later request that is not manual keeps the last manual time, for the quota.
      const [reclaimed] = await store.scan.claimScans('node-b', T0 + 9_001, T0 + 70_000, 1);
      assert.equal(reclaimed?.attempts, 1);
      assert.equal(await store.scan.finishScan(r.id, digest!, 'node-b', outcome({ status: 'FAILED', findings: null, severityCounts: null, dbVersion: null })), true);
      assert.equal(await store.scan.requestScan(r.id, digest!, request(T0 + 20_000, { reason: 'continuous' })), true, 'a FAILED scan can be requested again');
      const third = await store.scan.getScan(r.id, digest!);
      assert.equal(third?.lastManualAtMs, T0 + 9_000);
      assert.equal(third?.reason, 'continuous');
      assert.equal(third?.status, 'PENDING');
    });

    scanTest('getScans: the records of the digests given that exist, by digest, in that repository only', async (store) => {
      const r = await repo(store, 'scan/many');
      const other = await repo(store, 'scan/many-other');
      const digests = await images(store, r, 4);
      const [theirs] = await images(store, other, 1);
      for (const d of digests.slice(0, 3)) assert.equal(await store.scan.requestScan(r.id, d, request(T0)), true);
      assert.equal(await store.scan.requestScan(other.id, theirs!, request(T0)), true);
      const got = await store.scan.getScans(r.id, [digests[0]!, digests[1]!, digests[1]!, digests[3]!, theirs!, ABSENT]);
      assert.deepEqual([...got.keys()].sort(), [digests[0]!, digests[1]!].sort());
      assert.deepEqual(got.get(digests[0]!), await store.scan.getScan(r.id, digests[0]!));
      assert.deepEqual(await store.scan.getScans(r.id, []), new Map());
    });

    scanTest('claimScans: PENDING scans, oldest request first, at most limit; each IN_PROGRESS under the owner', async (store) => {
      const r = await repo(store, 'scan/claim');
      const digests = await images(store, r, 4);
      // Requested out of order: 2, 0, 3, 1.
      const requestedAt = [T0 + 20, T0 + 40, T0 + 10, T0 + 30];
      for (const [i, d] of digests.entries()) assert.equal(await store.scan.requestScan(r.id, d, request(requestedAt[i]!)), true);

      const first = await store.scan.claimScans('node-a', T0 + 100, T0 + 1_100, 2);
      assert.deepEqual(first.map((c) => c.digest).sort(), [digests[2]!, digests[0]!].sort(), 'the two oldest requests');
      for (const c of first) {
        assert.equal(c.status, 'IN_PROGRESS');
        assert.equal(c.leaseOwner, 'node-a');
        assert.equal(c.leaseUntilMs, T0 + 1_100);
        assert.equal(c.startedAtMs, T0 + 100);
        assert.equal(c.attempts, 1);
        assert.equal(c.accountId, ACCOUNT);
        assert.equal(c.repositoryName, 'scan/claim');
        assert.deepEqual(await store.scan.getScan(r.id, c.digest), c, 'the claimed record is as stored');
      }
      const second = await store.scan.claimScans('node-b', T0 + 200, T0 + 1_200, 10);
      assert.deepEqual(second.map((c) => c.digest).sort(), [digests[3]!, digests[1]!].sort(), 'then the rest');
      assert.deepEqual(await store.scan.claimScans('node-c', T0 + 300, T0 + 1_300, 10), [], 'nothing is due: every lease is held');
      assert.deepEqual(await store.scan.countByStatus(), { IN_PROGRESS: 4 });

      // Finished scans are not claimed again.
      for (const c of [...first, ...second]) assert.equal(await store.scan.finishScan(r.id, c.digest, c.leaseOwner!, outcome({ status: c === first[0] ? 'FAILED' : 'COMPLETE' })), true);
      assert.deepEqual(await store.scan.claimScans('node-c', T0 + 10_000_000, T0 + 10_060_000, 10), []);
      assert.deepEqual(await store.scan.countByStatus(), { COMPLETE: 3, FAILED: 1 });
    });

    scanTest('claimScans: of claimers running at once, each record goes to exactly one', async (store) => {
      const r = await repo(store, 'scan/concurrent');
      const other = await repo(store, 'scan/concurrent-2', OTHER_ACCOUNT);
      const digests = [...(await images(store, r, 12)), ...(await images(store, other, 12))];
      const repositoryOf = (i: number) => (i < 12 ? r.id : other.id);
      for (const [i, d] of digests.entries()) assert.equal(await store.scan.requestScan(repositoryOf(i), d, request(T0 + i)), true);

      const owners = ['node-0', 'node-1', 'node-2', 'node-3', 'node-4', 'node-5'];
      const claimedBy = new Map<string, string[]>();
      for (let round = 0; round < 20 && claimedBy.size < digests.length; round++) {
        const rounds = await Promise.all(owners.map((owner) => store.scan.claimScans(owner, T0 + 100, T0 + 60_000, 3)));
        for (const [i, claimed] of rounds.entries()) {
          for (const c of claimed) {
            const key = `${c.repositoryId}/${c.digest}`;
            claimedBy.set(key, [...(claimedBy.get(key) ?? []), owners[i]!]);
            assert.equal(c.leaseOwner, owners[i], 'the record names the claimer it was given to');
          }
        }
      }
      assert.equal(claimedBy.size, digests.length, 'every record was claimed');
      const twice = [...claimedBy].filter(([, by]) => by.length > 1);
      assert.deepEqual(twice, [], 'no record went to two claimers');
      for (const [i, d] of digests.entries()) {
        const stored = await store.scan.getScan(repositoryOf(i), d);
        assert.deepEqual([stored?.status, stored?.leaseOwner, stored?.attempts], ['IN_PROGRESS', claimedBy.get(`${repositoryOf(i)}/${d}`)![0], 1]);
      }
    });

    scanTest('claimScans: an IN_PROGRESS scan whose lease ran out is claimed again, its attempts counted; the old owner can no longer renew or finish it', async (store) => {
      const r = await repo(store, 'scan/expired');
      const [digest, later] = await images(store, r, 2);
      assert.equal(await store.scan.requestScan(r.id, digest!, request(T0)), true);
      const [a] = await store.scan.claimScans('node-a', T0 + 100, T0 + 1_000, 5);
      assert.equal(a?.digest, digest);
      assert.equal(await store.scan.requestScan(r.id, later!, request(T0 + 500)), true);

      // Before the lease runs out only the newer PENDING scan is due.
      const b1 = await store.scan.claimScans('node-b', T0 + 999, T0 + 2_000, 5);
      assert.deepEqual(b1.map((c) => c.digest), [later!]);
      assert.equal((await store.scan.getScan(r.id, digest!))?.leaseOwner, 'node-a');
      // node-a renews in time.
      assert.equal(await store.scan.renewScan(r.id, digest!, 'node-a', T0 + 3_000), true);
      assert.equal((await store.scan.getScan(r.id, digest!))?.leaseUntilMs, T0 + 3_000);
      assert.deepEqual(await store.scan.claimScans('node-c', T0 + 1_500, T0 + 4_000, 5), [], 'node-a’s renewed lease holds, and node-b’s');

      // node-a dies: after its lease, node-c takes the scan over (and node-b's, whose lease ran out at T0 + 2000).
      const c = await store.scan.claimScans('node-c', T0 + 3_001, T0 + 9_000, 5);
      assert.deepEqual(c.map((x) => x.digest).sort(), [digest!, later!].sort());
      const taken = c.find((x) => x.digest === digest)!;
      assert.equal(taken.status, 'IN_PROGRESS');
      assert.equal(taken.leaseOwner, 'node-c');
      assert.equal(taken.leaseUntilMs, T0 + 9_000);
      assert.equal(taken.startedAtMs, T0 + 3_001);
      assert.equal(taken.attempts, 2, 'the second attempt');
      assert.equal(taken.requestedAtMs, T0, 'still the same request');

      // The node that lost the lease wakes up: it can neither renew nor finish.
      assert.equal(await store.scan.renewScan(r.id, digest!, 'node-a', T0 + 20_000), false);
      assert.equal(await store.scan.finishScan(r.id, digest!, 'node-a', outcome({ description: 'stale' })), false);
      assert.deepEqual(await store.scan.getScan(r.id, digest!), taken, 'nothing written by the old owner');
      assert.equal(await store.scan.finishScan(r.id, digest!, 'node-c', outcome()), true);
    });

    scanTest('renewScan and finishScan: only by the owner of an IN_PROGRESS scan; finishing writes the outcome and releases the lease', async (store) => {
      const r = await repo(store, 'scan/owner');
      const [digest] = await images(store, r, 1);
      assert.equal(await store.scan.renewScan(r.id, digest!, 'node-a', T0 + 5_000), false, 'no record');
      assert.equal(await store.scan.finishScan(r.id, digest!, 'node-a', outcome()), false, 'no record');
      assert.equal(await store.scan.requestScan(r.id, digest!, request(T0)), true);
      assert.equal(await store.scan.renewScan(r.id, digest!, 'node-a', T0 + 5_000), false, 'PENDING: nobody holds it');
      assert.equal(await store.scan.finishScan(r.id, digest!, 'node-a', outcome()), false, 'PENDING: nobody holds it');
      assert.equal((await store.scan.getScan(r.id, digest!))?.status, 'PENDING');

      const [claimed] = await store.scan.claimScans('node-a', T0 + 10, T0 + 1_000, 1);
      assert.equal(await store.scan.renewScan(r.id, digest!, 'node-b', T0 + 5_000), false, 'not the owner');
      assert.equal(await store.scan.finishScan(r.id, digest!, 'node-b', outcome()), false, 'not the owner');
      assert.deepEqual(await store.scan.getScan(r.id, digest!), claimed, 'nothing written by another node');
      assert.equal(await store.scan.renewScan(r.id, digest!, 'node-a', T0 + 5_000), true);
      assert.deepEqual(await store.scan.getScan(r.id, digest!), { ...claimed!, leaseUntilMs: T0 + 5_000 });

      const done = outcome({ status: 'COMPLETE', dbVersion: 7, dbUpdatedAtMs: 2 ** 42 });
      assert.equal(await store.scan.finishScan(r.id, digest!, 'node-a', done), true);
      assert.deepEqual(await store.scan.getScan(r.id, digest!), {
        ...claimed!,
        status: 'COMPLETE',
        description: done.description,
        completedAtMs: done.completedAtMs,
        dbVersion: 7,
        dbUpdatedAtMs: 2 ** 42,
        severityCounts: done.severityCounts,
        findings: done.findings,
        leaseOwner: null,
        leaseUntilMs: null,
      });
      assert.equal(await store.scan.renewScan(r.id, digest!, 'node-a', T0 + 9_000), false, 'finished: the lease is gone');
      assert.equal(await store.scan.finishScan(r.id, digest!, 'node-a', outcome({ description: 'twice' })), false, 'finished once');
      assert.equal((await store.scan.getScan(r.id, digest!))?.description, done.description);
    });

    scanTest('finishScan records every outcome status; UNSUPPORTED_IMAGE and INDEX are not re-matched', async (store) => {
      const r = await repo(store, 'scan/outcomes');
      const digests = await images(store, r, 4);
      const statuses = ['COMPLETE', 'FAILED', 'UNSUPPORTED_IMAGE', 'INDEX'] as const;
      for (const [i, status] of statuses.entries()) {
        const rec = await scanned(store, r.id, digests[i]!, outcome({ status, dbVersion: null }), T0 + i);
        assert.equal(rec.status, status);
      }
      assert.deepEqual(await store.scan.countByStatus(), { COMPLETE: 1, FAILED: 1, UNSUPPORTED_IMAGE: 1, INDEX: 1 });
      assert.deepEqual((await store.scan.staleScans(1, undefined, 10)).map((s) => s.digest), [digests[0]!], 'only the COMPLETE one is stale');
    });

    scanTest('staleScans: COMPLETE scans below a version (or never matched), in (repository, digest) order, paged', async (store) => {
      const a = await repo(store, 'stale/a');
      const b = await repo(store, 'stale/b', OTHER_ACCOUNT);
      const versions: Array<number | null> = [1, 2, 3, null, 1, 2, 3, 4];
      const digestsA = await images(store, a, 4);
      const digestsB = await images(store, b, 4);
      const all: ScanRecord[] = [];
      for (const [i, d] of [...digestsA, ...digestsB].entries()) all.push(await scanned(store, i < 4 ? a.id : b.id, d, outcome({ dbVersion: versions[i]! }), T0 + i));
      // Not stale whatever their version: a FAILED scan, and a COMPLETE one queued again.
      const [failed, requeued] = await images(store, a, 2);
      await scanned(store, a.id, failed!, outcome({ status: 'FAILED', dbVersion: null }));
      await scanned(store, a.id, requeued!, outcome({ dbVersion: 1 }));
      assert.equal(await store.scan.requestScan(a.id, requeued!, request(T0 + 100)), true);

      const expected = all.filter((s) => s.dbVersion === null || s.dbVersion < 3).sort(keyOrder);
      assert.equal(expected.length, 5);
      assert.deepEqual(await store.scan.staleScans(3, undefined, 100), expected, 'whole records, in key order');
      assert.deepEqual(await store.scan.staleScans(5, undefined, 100), all.slice().sort(keyOrder));
      assert.deepEqual(await store.scan.staleScans(1, undefined, 100), all.filter((s) => s.dbVersion === null).sort(keyOrder));

      for (const limit of [1, 2, 3]) {
        const paged: ScanRecord[] = [];
        let after: { repositoryId: number; digest: string } | undefined;
        for (let pages = 0; ; pages++) {
          assert.ok(pages <= expected.length, 'paging ends');
          const page = await store.scan.staleScans(3, after, limit);
          assert.ok(page.length <= limit);
          if (page.length === 0) break;
          paged.push(...page);
          after = { repositoryId: page.at(-1)!.repositoryId, digest: page.at(-1)!.digest };
        }
        assert.deepEqual(paged, expected, `pages of ${limit}`);
      }
      // `after` is a key, not a record: one past the last of repository a starts at repository b.
      const lastOfA = expected.filter((s) => s.repositoryId === a.id).at(-1)!;
      assert.deepEqual(await store.scan.staleScans(3, { repositoryId: lastOfA.repositoryId, digest: lastOfA.digest }, 100), expected.filter((s) => s.repositoryId === b.id));
      assert.deepEqual(await store.scan.staleScans(3, { repositoryId: Math.min(a.id, b.id), digest: `sha256:${'f'.repeat(64)}` }, 100), expected.filter((s) => s.repositoryId === Math.max(a.id, b.id)));
    });

    scanTest('rematchScan replaces findings only of a COMPLETE scan still below the new version', async (store) => {
      const r = await repo(store, 'scan/rematch');
      const [digest, never, queued, running] = await images(store, r, 4);
      const before = await scanned(store, r.id, digest!, outcome({ dbVersion: 1 }));
      const newer = outcome({ dbVersion: 2, dbUpdatedAtMs: T0 + 50, completedAtMs: T0 + 60_000, severityCounts: '{"CRITICAL":1,"HIGH":1}', findings: '{"findings":["added"]}', description: 'rematched' });
      assert.equal(await store.scan.rematchScan(r.id, digest!, newer), true);
      assert.deepEqual(await store.scan.getScan(r.id, digest!), {
        ...before,
        description: 'rematched',
        completedAtMs: T0 + 60_000,
        dbVersion: 2,
        dbUpdatedAtMs: T0 + 50,
        severityCounts: newer.severityCounts,
        findings: newer.findings,
      });
      assert.equal(await store.scan.rematchScan(r.id, digest!, outcome({ dbVersion: 2, findings: 'again' })), false, 'already at that version: another node won');
      assert.equal(await store.scan.rematchScan(r.id, digest!, outcome({ dbVersion: 1, findings: 'older' })), false, 'an older version never replaces a newer one');
      assert.equal((await store.scan.getScan(r.id, digest!))?.findings, newer.findings);
      assert.deepEqual(await store.scan.staleScans(2, undefined, 10), [], 'no longer stale');

      // Never matched (null version): re-matched at any version.
      await scanned(store, r.id, never!, outcome({ dbVersion: null }));
      assert.equal(await store.scan.rematchScan(r.id, never!, outcome({ dbVersion: 1 })), true);
      assert.equal((await store.scan.getScan(r.id, never!))?.dbVersion, 1);

      // A scan queued again or running: the new scan's result wins, a re-match must not overwrite it.
      await scanned(store, r.id, queued!, outcome({ dbVersion: 1 }));
      assert.equal(await store.scan.requestScan(r.id, queued!, request(T0 + 10)), true);
      assert.equal(await store.scan.rematchScan(r.id, queued!, outcome({ dbVersion: 3 })), false, 'PENDING');
      assert.equal((await store.scan.getScan(r.id, queued!))?.status, 'PENDING');
      assert.equal(await store.scan.requestScan(r.id, running!, request(T0 + 20)), true);
      const claimed = await store.scan.claimScans('node-a', T0 + 30, T0 + 60_000, 10);
      assert.ok(claimed.some((c) => c.digest === running));
      assert.equal(await store.scan.rematchScan(r.id, running!, outcome({ dbVersion: 3 })), false, 'IN_PROGRESS');
      const stillRunning = await store.scan.getScan(r.id, running!);
      assert.deepEqual([stillRunning?.status, stillRunning?.dbVersion, stillRunning?.leaseOwner], ['IN_PROGRESS', null, 'node-a']);
      assert.equal(await store.scan.rematchScan(r.id, ABSENT, outcome({ dbVersion: 3 })), false, 'no record');
    });

    scanTest('a deleted manifest takes its scan record with it; a deleted repository takes all of them', async (store) => {
      const r = await repo(store, 'scan/cascade');
      const [kept, queued] = await images(store, r, 2);
      const m = manifest();
      await store.putManifest(r.id, m, []);
      const deleted = m.digest;
      await scanned(store, r.id, kept!, outcome());
      await scanned(store, r.id, deleted, outcome());
      assert.equal(await store.scan.requestScan(r.id, queued!, request(T0)), true);
      assert.equal(await store.deleteManifest(r.id, deleted, T0 + 1), true);
      assert.equal(await store.scan.getScan(r.id, deleted), undefined, 'the record went with its manifest');
      assert.deepEqual((await store.scan.staleScans(10, undefined, 10)).map((s) => s.digest), [kept!]);
      assert.equal(await store.scan.requestScan(r.id, deleted, request(T0 + 2)), false, 'a deleted image is not queued');
      assert.deepEqual(await store.scan.countByStatus(), { COMPLETE: 1, PENDING: 1 });
      // Pushed again, the image starts with no scan.
      await store.putManifest(r.id, m, []);
      assert.equal(await store.scan.getScan(r.id, deleted), undefined);
      assert.equal(await store.scan.requestScan(r.id, deleted, request(T0 + 3)), true);
      assert.equal((await store.scan.getScan(r.id, deleted))?.findings, null, 'nothing of the deleted image’s last scan');

      const other = await repo(store, 'scan/cascade-other');
      const [elsewhere] = await images(store, other, 1);
      await scanned(store, other.id, elsewhere!, outcome());

      assert.equal(await store.deleteRepository(r.id, T0 + 3), true);
      assert.equal(await store.scan.getScan(r.id, kept!), undefined);
      assert.equal(await store.scan.getScan(r.id, queued!), undefined);
      assert.deepEqual(await store.scan.claimScans('node-a', T0 + 10, T0 + 1_000, 10), [], 'the queued scan went with the repository');
      assert.deepEqual(await store.scan.countByStatus(), { COMPLETE: 1 }, 'the other repository keeps its record');
      assert.equal((await store.scan.getScan(other.id, elsewhere!))?.status, 'COMPLETE');
    });

    scanTest('a manifest deleted while its scan runs: the scan record goes, and the scanner’s finish resolves false', async (store) => {
      const r = await repo(store, 'scan/deleted-mid-scan');
      const [digest] = await images(store, r, 1);
      assert.equal(await store.scan.requestScan(r.id, digest!, request(T0)), true);
      const [claimed] = await store.scan.claimScans('node-a', T0 + 1, T0 + 60_000, 1);
      assert.equal(claimed?.digest, digest);
      assert.equal(await store.deleteManifest(r.id, digest!, T0 + 2), true);
      assert.equal(await store.scan.renewScan(r.id, digest!, 'node-a', T0 + 90_000), false);
      assert.equal(await store.scan.finishScan(r.id, digest!, 'node-a', outcome()), false);
      assert.equal(await store.scan.getScan(r.id, digest!), undefined);
    });
  });
}
