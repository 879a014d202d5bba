import assert from 'node:assert/strict';
import { describe } from 'node:test';
import type { CacheRule } from '../../src/store/meta/cache-store.ts';
import { storeTest, T0, type MetaStoreHarness } from './harness.ts';

const ACCOUNT = '111122223333';
const OTHER = '444455556666';
const DIGEST = `sha256:${'a'.repeat(64)}`;
const OTHER_DIGEST = `sha256:${'b'.repeat(64)}`;

function rule(ecrRepositoryPrefix: string, overrides: Partial<CacheRule> = {}): CacheRule {
  return {
    accountId: ACCOUNT,
    ecrRepositoryPrefix,
    upstreamRegistryUrl: 'quay.io',
    upstreamRegistry: 'quay',
    upstreamRepositoryPrefix: 'ROOT',
    credentialArn: null,
    customRoleArn: null,
    createdAtMs: T0,
    updatedAtMs: T0,
    ...overrides,
  };
}

/**
 * The pull-through cache's state (CacheStore, src/store/meta/cache-store.ts) on every MetaStore
 * driver: rules, tag checks (which hang off repositories) and the fetch leases that make a
 * cluster fetch each blob from an upstream once.
 */
export function cacheStoreContract(name: string, open: () => Promise<MetaStoreHarness>): void {
  const cacheTest = storeTest(open);

  describe(`CacheStore contract: ${name}`, () => {
    cacheTest('createRule stores a rule once per prefix; get and list read it back, by account', async (store) => {
      const cache = store.cache;
      assert.deepEqual(await cache.listRules(ACCOUNT), []);
      assert.equal(await cache.getRule(ACCOUNT, 'quay'), undefined);
      const quay = rule('quay', { credentialArn: `arn:aws:secretsmanager:us-east-1:${ACCOUNT}:secret:ecr-pullthroughcache/quay-AbCdEf`, createdAtMs: 2 ** 42, updatedAtMs: 2 ** 42 + 1 });
      const hub = rule('docker-hub', { upstreamRegistryUrl: 'registry-1.docker.io', upstreamRegistry: 'docker-hub', upstreamRepositoryPrefix: 'library' });
      const root = rule('ROOT', { upstreamRegistryUrl: 'http://127.0.0.1:5000', upstreamRegistry: null, customRoleArn: `arn:aws:iam::${ACCOUNT}:role/puller` });
      for (const r of [quay, hub, root]) assert.equal(await cache.createRule(r, 50), 'created', r.ecrRepositoryPrefix);
      assert.deepEqual(await cache.getRule(ACCOUNT, 'quay'), quay, 'every field kept, times past 2^32 ms too');
      assert.deepEqual(await cache.getRule(ACCOUNT, 'ROOT'), root, 'nulls stay null');
      assert.deepEqual(await cache.listRules(ACCOUNT), [root, hub, quay], 'by prefix, byte order');
      assert.deepEqual(await cache.listRules(OTHER), [], 'another account has none');
      assert.equal(await cache.getRule(OTHER, 'quay'), undefined);

      assert.equal(await cache.createRule({ ...quay, upstreamRegistryUrl: 'ghcr.io', upstreamRegistry: 'github-container-registry' }, 50), 'exists');
      assert.deepEqual(await cache.getRule(ACCOUNT, 'quay'), quay, 'the first rule stays as it was');
      assert.equal(await cache.createRule({ ...quay, accountId: OTHER }, 50), 'created', 'prefixes are per account');
      assert.equal(await cache.getRule(ACCOUNT, 'Quay'), undefined, 'prefixes compare exactly');
    });

    cacheTest('createRule refuses a rule past the limit, per account; an existing prefix is still "exists"', async (store) => {
      const cache = store.cache;
      assert.equal(await cache.createRule(rule('a1'), 2), 'created');
      assert.equal(await cache.createRule(rule('a2'), 2), 'created');
      assert.equal(await cache.createRule(rule('a3'), 2), 'limit');
      assert.equal(await cache.getRule(ACCOUNT, 'a3'), undefined, 'nothing stored');
      assert.equal(await cache.createRule(rule('a1'), 2), 'exists');
      assert.equal(await cache.createRule(rule('a1', { accountId: OTHER }), 2), 'created', 'another account has its own limit');
      assert.equal(await cache.createRule(rule('a3'), 3), 'created', 'a higher limit lets it in');
      assert.deepEqual((await cache.listRules(ACCOUNT)).map((r) => r.ecrRepositoryPrefix), ['a1', 'a2', 'a3']);
      await cache.deleteRule(ACCOUNT, 'a2');
      assert.equal(await cache.createRule(rule('a4'), 3), 'created', 'a deleted rule frees its place');
    });

    cacheTest('concurrent creations of one prefix: exactly one is created, the others are "exists"', async (store) => {
      const cache = store.cache;
      const urls = Array.from({ length: 8 }, (_, i) => `http://127.0.0.1:${5000 + i}`);
      const results = await Promise.all(urls.map((upstreamRegistryUrl) => cache.createRule(rule('race', { upstreamRegistryUrl, upstreamRegistry: null }), 50)));
      assert.equal(results.filter((r) => r === 'created').length, 1, results.join());
      assert.equal(results.filter((r) => r === 'exists').length, 7, results.join());
      const rules = await cache.listRules(ACCOUNT);
      assert.equal(rules.length, 1);
      assert.equal(rules[0]!.upstreamRegistryUrl, urls[results.indexOf('created')], 'the stored rule is the one that was told "created"');
    });

    cacheTest('concurrent creations of different prefixes near the limit never exceed it', async (store) => {
      const cache = store.cache;
      for (const p of ['held1', 'held2']) await cache.createRule(rule(p), 4);
      const results = await Promise.all(Array.from({ length: 8 }, (_, i) => cache.createRule(rule(`new${i}`), 4)));
      assert.equal(results.filter((r) => r === 'created').length, 2, results.join());
      assert.equal(results.filter((r) => r === 'limit').length, 6, results.join());
      assert.equal((await cache.listRules(ACCOUNT)).length, 4);
    });

    cacheTest('updateRule changes credentials and updatedAt only; absent rules update and delete nothing', async (store) => {
      const cache = store.cache;
      assert.equal(await cache.updateRule(ACCOUNT, 'quay', { credentialArn: 'arn:x', customRoleArn: null, updatedAtMs: T0 + 1 }), undefined);
      assert.equal(await cache.deleteRule(ACCOUNT, 'quay'), undefined);
      const quay = rule('quay');
      await cache.createRule(quay, 50);
      const arn = `arn:aws:secretsmanager:us-east-1:${ACCOUNT}:secret:ecr-pullthroughcache/q-123456`;
      const updated = await cache.updateRule(ACCOUNT, 'quay', { credentialArn: arn, customRoleArn: 'arn:role', updatedAtMs: T0 + 5_000 });
      assert.deepEqual(updated, { ...quay, credentialArn: arn, customRoleArn: 'arn:role', updatedAtMs: T0 + 5_000 });
      assert.deepEqual(await cache.getRule(ACCOUNT, 'quay'), updated);
      assert.equal(await cache.updateRule(OTHER, 'quay', { credentialArn: null, customRoleArn: null, updatedAtMs: T0 + 6_000 }), undefined, 'not another account’s');
      assert.equal(await cache.deleteRule(OTHER, 'quay'), undefined, 'not another account’s');
      const cleared = await cache.updateRule(ACCOUNT, 'quay', { credentialArn: null, customRoleArn: null, updatedAtMs: T0 + 7_000 });
      assert.equal(cleared?.credentialArn, null);
      assert.equal(cleared?.customRoleArn, null);

      assert.deepEqual(await cache.deleteRule(ACCOUNT, 'quay'), cleared, 'resolves the rule it removed');
      assert.equal(await cache.getRule(ACCOUNT, 'quay'), undefined);
      assert.equal(await cache.deleteRule(ACCOUNT, 'quay'), undefined, 'a second delete finds nothing');
      assert.equal(await cache.updateRule(ACCOUNT, 'quay', { credentialArn: arn, customRoleArn: null, updatedAtMs: T0 + 8_000 }), undefined);
      assert.deepEqual(await cache.listRules(ACCOUNT), []);
    });

    cacheTest('concurrent deletions of one rule: one resolves it, the others undefined', async (store) => {
      const cache = store.cache;
      await cache.createRule(rule('gone'), 50);
      const results = await Promise.all(Array.from({ length: 6 }, () => cache.deleteRule(ACCOUNT, 'gone')));
      assert.equal(results.filter((r) => r !== undefined).length, 1);
    });

    cacheTest('tag checks: undefined until recorded, an upsert per repository and tag', async (store) => {
      const cache = store.cache;
      const { repository } = await store.createRepository(ACCOUNT, 'quay/coreos/etcd', T0);
      const { repository: other } = await store.createRepository(ACCOUNT, 'quay/coreos/flannel', T0);
      assert.equal(await cache.tagCheck(repository.id, 'v1'), undefined);
      await cache.recordTagCheck(repository.id, 'v1', DIGEST, T0);
      assert.deepEqual(await cache.tagCheck(repository.id, 'v1'), { upstreamDigest: DIGEST, checkedAtMs: T0 });
      await cache.recordTagCheck(repository.id, 'v1', OTHER_DIGEST, 2 ** 42);
      assert.deepEqual(await cache.tagCheck(repository.id, 'v1'), { upstreamDigest: OTHER_DIGEST, checkedAtMs: 2 ** 42 }, 'replaced');
      assert.equal(await cache.tagCheck(repository.id, 'V1'), undefined, 'tags compare exactly');
      assert.equal(await cache.tagCheck(other.id, 'v1'), undefined, 'per repository');
      await Promise.all(Array.from({ length: 6 }, (_, i) => cache.recordTagCheck(other.id, 'latest', DIGEST, T0 + i)));
      assert.equal((await cache.tagCheck(other.id, 'latest'))?.upstreamDigest, DIGEST, 'concurrent upserts of one tag do not fail');
    });

    cacheTest('a tag check of a repository that is gone records nothing; deleting a repository takes its checks', async (store) => {
      const cache = store.cache;
      const absent = 987_654;
      await cache.recordTagCheck(absent, 'v1', DIGEST, T0);
      assert.equal(await cache.tagCheck(absent, 'v1'), undefined);

      const { repository } = await store.createRepository(ACCOUNT, 'quay/app', T0);
      const { repository: kept } = await store.createRepository(ACCOUNT, 'quay/kept', T0);
      await cache.recordTagCheck(repository.id, 'v1', DIGEST, T0);
      await cache.recordTagCheck(repository.id, 'v2', DIGEST, T0);
      await cache.recordTagCheck(kept.id, 'v1', DIGEST, T0);
      assert.equal(await store.deleteRepository(repository.id, T0), true);
      assert.equal(await cache.tagCheck(repository.id, 'v1'), undefined);
      assert.equal(await cache.tagCheck(repository.id, 'v2'), undefined);
      await cache.recordTagCheck(repository.id, 'v3', DIGEST, T0);
      assert.equal(await cache.tagCheck(repository.id, 'v3'), undefined, 'the deleted repository records nothing');
      assert.deepEqual(await cache.tagCheck(kept.id, 'v1'), { upstreamDigest: DIGEST, checkedAtMs: T0 }, 'other repositories keep theirs');
      // A repository created under the same name starts without checks, whatever id it gets.
      const { repository: again } = await store.createRepository(ACCOUNT, 'quay/app', T0 + 1);
      assert.equal(await cache.tagCheck(again.id, 'v1'), undefined);
      assert.equal(await cache.tagCheck(again.id, 'v2'), undefined);
    });

    cacheTest('fetch leases: claimed when free; another owner is refused until it expires; the owner renews and reclaims', async (store) => {
      const cache = store.cache;
      assert.equal(await cache.claimFetch(DIGEST, 'node-a', T0 + 10_000, T0), true, 'free');
      assert.equal(await cache.claimFetch(DIGEST, 'node-b', T0 + 15_000, T0 + 5_000), false, 'held by node-a');
      assert.equal(await cache.claimFetch(DIGEST, 'node-a', T0 + 12_000, T0 + 5_000), true, 'the owner’s already');
      assert.equal(await cache.claimFetch(OTHER_DIGEST, 'node-b', T0 + 15_000, T0 + 5_000), true, 'leases are per digest');

      assert.equal(await cache.renewFetch(DIGEST, 'node-b', T0 + 99_000), false, 'only the owner renews');
      assert.equal(await cache.renewFetch(DIGEST, 'node-a', T0 + 30_000), true);
      assert.equal(await cache.claimFetch(DIGEST, 'node-b', T0 + 40_000, T0 + 20_000), false, 'the renewal holds past the first expiry');
      assert.equal(await cache.claimFetch(DIGEST, 'node-b', T0 + 60_000, T0 + 30_001), true, 'taken over once expired');
      assert.equal(await cache.renewFetch(DIGEST, 'node-a', T0 + 90_000), false, 'the old owner lost it');
      assert.equal(await cache.claimFetch(DIGEST, 'node-a', T0 + 70_000, T0 + 40_000), false, 'and cannot take it back while node-b holds it');
      assert.equal(await cache.renewFetch(`sha256:${'c'.repeat(64)}`, 'node-a', T0 + 90_000), false, 'no lease, nothing to renew');
    });

    cacheTest('releaseFetch frees the owner’s lease and leaves another owner’s alone', async (store) => {
      const cache = store.cache;
      await cache.releaseFetch(DIGEST, 'node-a'); // nothing to release: no failure
      assert.equal(await cache.claimFetch(DIGEST, 'node-a', T0 + 10_000, T0), true);
      await cache.releaseFetch(DIGEST, 'node-b');
      assert.equal(await cache.claimFetch(DIGEST, 'node-b', T0 + 10_000, T0 + 1), false, 'a release by a non-owner leaves the lease');
      assert.equal(await cache.renewFetch(DIGEST, 'node-a', T0 + 20_000), true, 'still node-a’s');
      await cache.releaseFetch(DIGEST, 'node-a');
      assert.equal(await cache.renewFetch(DIGEST, 'node-a', T0 + 20_000), false, 'released');
      assert.equal(await cache.claimFetch(DIGEST, 'node-b', T0 + 10_000, T0 + 2), true, 'free again at once, before the old expiry');
    });

    cacheTest('concurrent claims of one free lease by eight owners: exactly one gets it', async (store) => {
      const cache = store.cache;
      const owners = Array.from({ length: 8 }, (_, i) => `node-${i}`);
      const results = await Promise.all(owners.map((owner) => cache.claimFetch(DIGEST, owner, T0 + 60_000, T0)));
      assert.equal(results.filter(Boolean).length, 1, results.join());
      const winner = owners[results.indexOf(true)]!;
      for (const owner of owners) assert.equal(await cache.renewFetch(DIGEST, owner, T0 + 70_000), owner === winner, owner);
    });
  });
}
