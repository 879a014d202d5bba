import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { describe } from 'node:test';
import { AWSCURRENT, AWSPREVIOUS, MAX_SECRET_VERSIONS, type NewSecretVersion, type SecretRecord } from '../../src/store/meta/secret-store.ts';
import { storeTest, T0, type MetaStoreHarness } from './harness.ts';

const ACCOUNT = '111122223333';
const OTHER = '444455556666';

function secret(name: string, overrides: Partial<SecretRecord> = {}): SecretRecord {
  const accountId = overrides.accountId ?? ACCOUNT;
  return {
    id: randomUUID(),
    accountId,
    name,
    arn: `arn:aws:secretsmanager:us-east-1:${accountId}:secret:${name}-${randomUUID().slice(0, 6)}`,
    description: null,
    kmsKeyId: null,
    tags: [],
    createdAtMs: T0,
    lastChangedAtMs: T0,
    lastAccessedAtMs: null,
    deletedAtMs: null,
    purgeAtMs: null,
    ...overrides,
  };
}

let versions = 0;
function version(overrides: Partial<NewSecretVersion> = {}): NewSecretVersion {
  versions++;
  return { versionId: `v-${versions}-${randomUUID()}`, sealed: `v1:sealed-${versions}`, isBinary: false, stages: [AWSCURRENT], createdAtMs: T0 + versions, ...overrides };
}

/**
 * Secrets Manager's secrets (SecretStore, src/store/meta/secret-store.ts) on every MetaStore
 * driver: creation by name, versions and how labels move, scheduled deletion, and that a
 * deleted secret leaves no version or label behind.
 */
export function secretStoreContract(name: string, open: () => Promise<MetaStoreHarness>): void {
  const secretTest = storeTest(open);

  describe(`SecretStore contract: ${name}`, () => {
    secretTest('a secret is found by name and by ARN in its account only; its first version holds its labels', async (store) => {
      const s = secret('ecr-pullthroughcache/docker-hub', { description: 'hub', kmsKeyId: 'alias/x', tags: [{ Key: 'team', Value: 'build' }] });
      const first = version({ isBinary: true });
      assert.deepEqual(await store.secrets.createSecret(s, first), { created: true });
      assert.deepEqual(await store.secrets.getSecret(ACCOUNT, s.name), s);
      assert.deepEqual(await store.secrets.getSecretByArn(ACCOUNT, s.arn), s);
      assert.equal(await store.secrets.getSecret(OTHER, s.name), undefined);
      assert.equal(await store.secrets.getSecretByArn(OTHER, s.arn), undefined);
      assert.equal(await store.secrets.getSecret(ACCOUNT, 'nope'), undefined);
      const current = await store.secrets.getVersion(s.id, { stage: AWSCURRENT });
      assert.deepEqual(current, { secretId: s.id, versionId: first.versionId, sealed: first.sealed, isBinary: true, stages: [AWSCURRENT], createdAtMs: first.createdAtMs });
      assert.deepEqual(await store.secrets.getVersion(s.id, { versionId: first.versionId }), current);
      assert.deepEqual(await store.secrets.getVersion(s.id, { versionId: first.versionId, stage: AWSCURRENT }), current);
      assert.equal(await store.secrets.getVersion(s.id, { versionId: first.versionId, stage: AWSPREVIOUS }), undefined, 'id and label must agree');
      assert.equal(await store.secrets.getVersion(s.id, { versionId: 'absent' }), undefined);
      assert.deepEqual(await store.secrets.versionStages([s.id, 'absent']), new Map([[s.id, { [first.versionId]: [AWSCURRENT] }], ['absent', {}]]));
    });

    secretTest('a name is created once: a second or concurrent creation resolves the existing secret and changes nothing', async (store) => {
      const a = secret('dup');
      const b = secret('dup', { description: 'other' });
      const results = await Promise.all([store.secrets.createSecret(a, version()), store.secrets.createSecret(b, version())]);
      assert.equal(results.filter((r) => r.created).length, 1);
      const winner = (await store.secrets.getSecret(ACCOUNT, 'dup'))!;
      const loser = results.find((r) => !r.created) as { created: false; existing: SecretRecord };
      assert.deepEqual(loser.existing, winner);
      assert.equal(Object.keys((await store.secrets.versionStages([winner.id])).get(winner.id)!).length, 1, 'only the winner’s version');
      const again = await store.secrets.createSecret(secret('dup', { accountId: OTHER }));
      assert.equal(again.created, true, 'names are per account');
      const bare = secret('no-value');
      await store.secrets.createSecret(bare);
      assert.equal(await store.secrets.getVersion(bare.id, { stage: AWSCURRENT }), undefined, 'a secret may have no value');
    });

    secretTest('putVersion moves AWSCURRENT and gives the old current AWSPREVIOUS; other labels move as given', async (store) => {
      const s = secret('labels');
      const v1 = version();
      await store.secrets.createSecret(s, v1);
      const v2 = version();
      const put2 = await store.secrets.putVersion(s.id, v2, T0 + 1000);
      assert.equal(put2.status, 'created');
      assert.deepEqual(await store.secrets.versionStages([s.id]), new Map([[s.id, { [v1.versionId]: [AWSPREVIOUS], [v2.versionId]: [AWSCURRENT] }]]));
      assert.equal((await store.secrets.getSecret(ACCOUNT, 'labels'))!.lastChangedAtMs, T0 + 1000);
      const v3 = version();
      await store.secrets.putVersion(s.id, v3, T0 + 2000);
      assert.deepEqual((await store.secrets.versionStages([s.id])).get(s.id), { [v2.versionId]: [AWSPREVIOUS], [v3.versionId]: [AWSCURRENT] }, 'v1 keeps no label');
      assert.deepEqual((await store.secrets.getVersion(s.id, { versionId: v1.versionId }))?.stages, [], 'a label-less version is still there');
      // A custom label moves alone; AWSCURRENT stays where it is.
      const v4 = version({ stages: ['STAGING'] });
      await store.secrets.putVersion(s.id, v4, T0 + 3000);
      const v5 = version({ stages: ['STAGING'] });
      const put5 = await store.secrets.putVersion(s.id, v5, T0 + 4000);
      assert.deepEqual(put5.status === 'created' && put5.version.stages, ['STAGING']);
      assert.deepEqual((await store.secrets.versionStages([s.id])).get(s.id), { [v2.versionId]: [AWSPREVIOUS], [v3.versionId]: [AWSCURRENT], [v5.versionId]: ['STAGING'] });
      // Both labels given: the new version takes both, none goes to the old current.
      const v6 = version({ stages: [AWSCURRENT, AWSPREVIOUS] });
      await store.secrets.putVersion(s.id, v6, T0 + 5000);
      assert.deepEqual((await store.secrets.versionStages([s.id])).get(s.id), { [v5.versionId]: ['STAGING'], [v6.versionId]: [AWSCURRENT, AWSPREVIOUS] });
    });

    secretTest('putVersion is idempotent by version id, and refuses a missing or deleted secret', async (store) => {
      const s = secret('idem');
      const v1 = version();
      await store.secrets.createSecret(s, v1);
      const again = await store.secrets.putVersion(s.id, { ...v1, sealed: 'v1:different', stages: ['X'] }, T0 + 10);
      assert.equal(again.status, 'exists');
      assert.deepEqual(again.status === 'exists' && again.version, { secretId: s.id, versionId: v1.versionId, sealed: v1.sealed, isBinary: false, stages: [AWSCURRENT], createdAtMs: v1.createdAtMs }, 'left as it was');
      assert.deepEqual(await store.secrets.putVersion('absent', version(), T0), { status: 'missing' });
      await store.secrets.scheduleDeletion(s.id, T0 + 20, T0 + 30 * 86_400_000);
      assert.deepEqual(await store.secrets.putVersion(s.id, version(), T0 + 30), { status: 'deleted' });
      assert.equal(await store.secrets.updateSecret(s.id, { description: 'x' }, T0 + 30), 'deleted');
      assert.equal(await store.secrets.updateSecret('absent', { description: 'x' }, T0 + 30), 'missing');
    });

    secretTest('concurrent putVersion calls leave exactly one AWSCURRENT and one AWSPREVIOUS', async (store) => {
      const s = secret('race');
      await store.secrets.createSecret(s, version());
      const puts = Array.from({ length: 8 }, () => version());
      await Promise.all(puts.map((v, i) => store.secrets.putVersion(s.id, v, T0 + i)));
      const stages = (await store.secrets.versionStages([s.id])).get(s.id)!;
      const labels = Object.values(stages).flat().sort();
      assert.deepEqual(labels, [AWSCURRENT, AWSPREVIOUS]);
      const holder = (label: string) => Object.keys(stages).find((id) => stages[id]!.includes(label));
      assert.ok(puts.some((v) => v.versionId === holder(AWSCURRENT)), 'the last put is current');
      assert.notEqual(holder(AWSPREVIOUS), holder(AWSCURRENT));
    });

    secretTest('versions beyond the quota lose their oldest label-less members', async (store) => {
      const s = secret('many');
      const first = version();
      await store.secrets.createSecret(s, first);
      const added: NewSecretVersion[] = [];
      for (let i = 0; i < MAX_SECRET_VERSIONS + 1; i++) {
        const v = version();
        added.push(v);
        await store.secrets.putVersion(s.id, v, T0 + i);
      }
      assert.equal(await store.secrets.getVersion(s.id, { versionId: first.versionId }), undefined, 'the oldest label-less version went');
      assert.equal(await store.secrets.getVersion(s.id, { versionId: added[0]!.versionId }), undefined);
      assert.ok(await store.secrets.getVersion(s.id, { versionId: added[1]!.versionId }), 'the rest stayed');
      assert.deepEqual((await store.secrets.getVersion(s.id, { stage: AWSCURRENT }))?.versionId, added.at(-1)!.versionId);
    });

    secretTest('updateSecret sets only what it is given; touchAccessed never goes back', async (store) => {
      const s = secret('meta', { description: 'old', kmsKeyId: 'k1' });
      await store.secrets.createSecret(s);
      assert.equal(await store.secrets.updateSecret(s.id, { description: 'new' }, T0 + 5), 'updated');
      let got = (await store.secrets.getSecret(ACCOUNT, 'meta'))!;
      assert.deepEqual([got.description, got.kmsKeyId, got.lastChangedAtMs], ['new', 'k1', T0 + 5]);
      await store.secrets.touchAccessed(s.id, T0 + 86_400_000);
      await store.secrets.touchAccessed(s.id, T0);
      got = (await store.secrets.getSecret(ACCOUNT, 'meta'))!;
      assert.equal(got.lastAccessedAtMs, T0 + 86_400_000);
      await store.secrets.touchAccessed('absent', T0);
    });

    secretTest('scheduled deletion: once only, restorable until due, purged when due with its versions', async (store) => {
      const s = secret('doomed');
      const v = version();
      await store.secrets.createSecret(s, v);
      const due = T0 + 7 * 86_400_000;
      assert.equal(await store.secrets.scheduleDeletion(s.id, T0, due), 'scheduled');
      assert.equal(await store.secrets.scheduleDeletion(s.id, T0 + 1, due + 1), 'deleted', 'already scheduled: unchanged');
      assert.equal(await store.secrets.scheduleDeletion('absent', T0, due), 'missing');
      let got = (await store.secrets.getSecret(ACCOUNT, 'doomed'))!;
      assert.deepEqual([got.deletedAtMs, got.purgeAtMs], [T0, due]);
      assert.equal(await store.secrets.restore(s.id, T0 + 1), true);
      assert.equal(await store.secrets.restore(s.id, T0 + 2), true, 'idempotent');
      got = (await store.secrets.getSecret(ACCOUNT, 'doomed'))!;
      assert.deepEqual([got.deletedAtMs, got.purgeAtMs], [null, null]);
      await store.secrets.scheduleDeletion(s.id, T0 + 3, due);
      assert.equal(await store.secrets.restore(s.id, due), false, 'too late once due');
      assert.equal(await store.secrets.purgeDue(OTHER, due), 0);
      assert.equal(await store.secrets.purgeDue(ACCOUNT, due - 1), 0);
      assert.equal(await store.secrets.purgeDue(ACCOUNT, due), 1);
      assert.equal(await store.secrets.getSecret(ACCOUNT, 'doomed'), undefined);
      assert.equal(await store.secrets.getVersion(s.id, { versionId: v.versionId }), undefined, 'versions went with it');
      assert.equal(await store.secrets.restore(s.id, T0), false);
      // The name is free again; the new secret has nothing of the old one.
      const reborn = secret('doomed');
      assert.deepEqual(await store.secrets.createSecret(reborn), { created: true });
      assert.deepEqual(await store.secrets.versionStages([reborn.id]), new Map([[reborn.id, {}]]));
    });

    secretTest('deleteSecret removes the secret with its versions and labels at once', async (store) => {
      const s = secret('gone');
      await store.secrets.createSecret(s, version());
      await store.secrets.putVersion(s.id, version(), T0 + 1);
      assert.equal(await store.secrets.deleteSecret(s.id), true);
      assert.equal(await store.secrets.deleteSecret(s.id), false);
      assert.equal(await store.secrets.getSecretByArn(ACCOUNT, s.arn), undefined);
      assert.deepEqual(await store.secrets.versionStages([s.id]), new Map([[s.id, {}]]));
      assert.equal(await store.secrets.getVersion(s.id, { stage: AWSPREVIOUS }), undefined);
    });

    secretTest('listSecrets: name order, pages after a name, prefix ranges, planned deletions only when asked', async (store) => {
      const names = ['b/two', 'a/one', 'ecr-pullthroughcache/quay', 'ecr-pullthroughcache/docker-hub', 'ecr-pullthroughcache', 'ecr-pullthroughcachf', 'Z'];
      for (const n of names) await store.secrets.createSecret(secret(n));
      await store.secrets.createSecret(secret('ecr-pullthroughcache/other-account', { accountId: OTHER }));
      const doomed = secret('ecr-pullthroughcache/zz-doomed');
      await store.secrets.createSecret(doomed);
      await store.secrets.scheduleDeletion(doomed.id, T0, T0 + 86_400_000 * 7);
      const list = async (options: { limit?: number; afterName?: string; namePrefix?: string; includePlannedDeletion?: boolean }) =>
        (await store.secrets.listSecrets(ACCOUNT, { limit: 100, includePlannedDeletion: false, ...options })).map((s) => s.name);
      assert.deepEqual(await list({}), [...names].sort((a, b) => (a < b ? -1 : 1)), 'bytewise: Z before a');
      assert.deepEqual(await list({ limit: 2 }), ['Z', 'a/one']);
      assert.deepEqual(await list({ limit: 2, afterName: 'a/one' }), ['b/two', 'ecr-pullthroughcache']);
      assert.deepEqual(await list({ namePrefix: 'ecr-pullthroughcache/' }), ['ecr-pullthroughcache/docker-hub', 'ecr-pullthroughcache/quay']);
      assert.deepEqual(await list({ namePrefix: 'ecr-pullthroughcache/', includePlannedDeletion: true }), ['ecr-pullthroughcache/docker-hub', 'ecr-pullthroughcache/quay', 'ecr-pullthroughcache/zz-doomed']);
      assert.deepEqual(await list({ namePrefix: 'ecr-pullthroughcache', afterName: 'ecr-pullthroughcache/docker-hub' }), ['ecr-pullthroughcache/quay']);
      assert.deepEqual(await list({ namePrefix: 'A/' }), [], 'case-sensitive');
    });
  });
}
