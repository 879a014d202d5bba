import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { test, type TestContext } from 'node:test';
import { Secrets } from '../iam/secrets.ts';
import type { MetaStore } from '../store/meta/meta-store.ts';
import { openSqliteMetaStore } from '../store/meta/sqlite/sqlite-meta-store.ts';
import { SecretNotFound, SecretsManager, SecretsManagerError, type AuthorizeSecret } from './secrets-manager.ts';

const ACCOUNT = '111122223333';
const REGION = 'us-east-1';
const DAY = 86_400_000;
const T0 = 1_700_000_000_000;
const TOKEN_A = 'aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa';
const TOKEN_B = 'bbbbbbbb-bbbb-4bbb-8bbb-bbbbbbbbbbbb';

interface Fixture {
  sm: SecretsManager;
  meta: MetaStore;
  clock: { now: number };
  /** Every ARN the operations asked about. */
  asked: string[];
  allow: AuthorizeSecret;
  /** The same store read with another instance key. */
  other(): SecretsManager;
}

async function fixture(t: TestContext): Promise<Fixture> {
  const dir = await mkdtemp(path.join(tmpdir(), 'berth-secrets-'));
  const meta = await openSqliteMetaStore(path.join(dir, 'metadata.db'));
  t.after(async () => {
    await meta.close();
    await rm(dir, { recursive: true, force: true });
  });
  const clock = { now: T0 };
  const asked: string[] = [];
  const make = (key: Buffer) => new SecretsManager({ store: meta.secrets, secrets: new Secrets(key), region: REGION, now: () => clock.now });
  return {
    sm: make(randomBytes(32)),
    meta,
    clock,
    asked,
    allow: async (arn) => void asked.push(arn),
    other: () => make(randomBytes(32)),
  };
}

async function rejectsWith(call: Promise<unknown>, code: string, message?: RegExp): Promise<void> {
  await assert.rejects(call, (err: unknown) => {
    assert.ok(err instanceof SecretsManagerError, `expected SecretsManagerError, got ${String(err)}`);
    assert.equal(err.code, code, err.message);
    if (message) assert.match(err.message, message);
    return true;
  });
}

const ARN = /^arn:aws:secretsmanager:us-east-1:111122223333:secret:ecr-pullthroughcache\/hub-[A-Za-z0-9]{6}$/u;

test('CreateSecret makes an ARN with a 6-character suffix, seals the value and answers GetSecretValue', async (t) => {
  const f = await fixture(t);
  const created = await f.sm.createSecret(ACCOUNT, { Name: 'ecr-pullthroughcache/hub', SecretString: '{"username":"u","accessToken":"t"}', ClientRequestToken: TOKEN_A, Description: 'Docker Hub' }, f.allow);
  assert.match(String(created['ARN']), ARN);
  assert.deepEqual([created['Name'], created['VersionId']], ['ecr-pullthroughcache/hub', TOKEN_A]);
  assert.deepEqual(f.asked, [created['ARN']], 'asked about the new ARN');

  const stored = await f.meta.secrets.getVersion((await f.meta.secrets.getSecret(ACCOUNT, 'ecr-pullthroughcache/hub'))!.id, { stage: 'AWSCURRENT' });
  assert.ok(stored && !stored.sealed.includes('accessToken'), 'sealed at rest');

  const got = await f.sm.getSecretValue(ACCOUNT, { SecretId: 'ecr-pullthroughcache/hub' }, f.allow);
  assert.equal(got['SecretString'], '{"username":"u","accessToken":"t"}');
  assert.deepEqual(got['VersionStages'], ['AWSCURRENT']);
  assert.deepEqual(got['CreatedDate'], new Date(T0));
  for (const id of [created['ARN'] as string, `arn:aws:secretsmanager:${REGION}:${ACCOUNT}:secret:ecr-pullthroughcache/hub`]) {
    assert.equal((await f.sm.getSecretValue(ACCOUNT, { SecretId: id }, f.allow))['ARN'], created['ARN'], `by ${id}`);
  }
  const described = await f.sm.describeSecret(ACCOUNT, { SecretId: 'ecr-pullthroughcache/hub' }, f.allow);
  assert.equal(described['Description'], 'Docker Hub');
  assert.deepEqual(described['VersionIdsToStages'], { [TOKEN_A]: ['AWSCURRENT'] });
  assert.deepEqual(described['LastAccessedDate'], new Date(Math.floor(T0 / DAY) * DAY), 'a date, as AWS keeps it');
});

test('names: the alphabet, one per account, and a creation retried with its token is answered again', async (t) => {
  const f = await fixture(t);
  await rejectsWith(f.sm.createSecret(ACCOUNT, { Name: 'bad name' }, f.allow), 'InvalidParameterException', /Invalid name/);
  await rejectsWith(f.sm.createSecret(ACCOUNT, { Name: 'x', SecretString: 's', SecretBinary: new Uint8Array([1]) }, f.allow), 'InvalidParameterException', /both/);
  const first = await f.sm.createSecret(ACCOUNT, { Name: 'x', SecretString: 's', ClientRequestToken: TOKEN_A }, f.allow);
  assert.deepEqual(await f.sm.createSecret(ACCOUNT, { Name: 'x', SecretString: 's', ClientRequestToken: TOKEN_A }, f.allow), first, 'idempotent retry');
  await rejectsWith(f.sm.createSecret(ACCOUNT, { Name: 'x', SecretString: 'other', ClientRequestToken: TOKEN_A }, f.allow), 'ResourceExistsException', /already exists/);
  await rejectsWith(f.sm.createSecret(ACCOUNT, { Name: 'x', SecretString: 's', ClientRequestToken: TOKEN_B }, f.allow), 'ResourceExistsException');
  const bare = await f.sm.createSecret(ACCOUNT, { Name: 'no-value' }, f.allow);
  assert.equal(bare['VersionId'], undefined);
  await rejectsWith(f.sm.getSecretValue(ACCOUNT, { SecretId: 'no-value' }, f.allow), 'ResourceNotFoundException', /staging label: AWSCURRENT/);
});

test('PutSecretValue and UpdateSecret move AWSCURRENT and AWSPREVIOUS; a token is a version, reused only for the same value', async (t) => {
  const f = await fixture(t);
  await f.sm.createSecret(ACCOUNT, { Name: 's', SecretString: 'one', ClientRequestToken: TOKEN_A }, f.allow);
  f.clock.now += 1000;
  const put = await f.sm.putSecretValue(ACCOUNT, { SecretId: 's', SecretString: 'two', ClientRequestToken: TOKEN_B }, f.allow);
  assert.deepEqual([put['VersionId'], put['VersionStages']], [TOKEN_B, ['AWSCURRENT']]);
  assert.deepEqual((await f.sm.putSecretValue(ACCOUNT, { SecretId: 's', SecretString: 'two', ClientRequestToken: TOKEN_B }, f.allow))['VersionStages'], ['AWSCURRENT'], 'a retry is answered again');
  await rejectsWith(f.sm.putSecretValue(ACCOUNT, { SecretId: 's', SecretString: 'three', ClientRequestToken: TOKEN_B }, f.allow), 'ResourceExistsException', /can't modify an existing version/);
  await rejectsWith(f.sm.putSecretValue(ACCOUNT, { SecretId: 's' }, f.allow), 'InvalidParameterException');
  assert.equal((await f.sm.getSecretValue(ACCOUNT, { SecretId: 's', VersionStage: 'AWSPREVIOUS' }, f.allow))['SecretString'], 'one');
  assert.equal((await f.sm.getSecretValue(ACCOUNT, { SecretId: 's', VersionId: TOKEN_A }, f.allow))['SecretString'], 'one');
  await rejectsWith(f.sm.getSecretValue(ACCOUNT, { SecretId: 's', VersionId: TOKEN_A, VersionStage: 'AWSCURRENT' }, f.allow), 'ResourceNotFoundException');

  const updated = await f.sm.updateSecret(ACCOUNT, { SecretId: 's', Description: 'described', SecretBinary: new Uint8Array([0, 1, 2, 255]) }, f.allow);
  assert.ok(typeof updated['VersionId'] === 'string');
  const got = await f.sm.getSecretValue(ACCOUNT, { SecretId: 's' }, f.allow);
  assert.deepEqual(got['SecretBinary'], new Uint8Array([0, 1, 2, 255]));
  assert.equal(got['SecretString'], undefined);
  const described = await f.sm.describeSecret(ACCOUNT, { SecretId: 's' }, f.allow);
  assert.equal(described['Description'], 'described');
  assert.deepEqual(described['VersionIdsToStages'], { [TOKEN_B]: ['AWSPREVIOUS'], [updated['VersionId'] as string]: ['AWSCURRENT'] });
  const metadataOnly = await f.sm.updateSecret(ACCOUNT, { SecretId: 's', KmsKeyId: 'alias/mine' }, f.allow);
  assert.equal(metadataOnly['VersionId'], undefined, 'no value, no version');
});

test('a missing secret is asked about by its partial ARN before ResourceNotFoundException; a refusal comes first', async (t) => {
  const f = await fixture(t);
  await rejectsWith(f.sm.getSecretValue(ACCOUNT, { SecretId: 'nope' }, f.allow), 'ResourceNotFoundException', /can't find the specified secret/);
  assert.deepEqual(f.asked, [`arn:aws:secretsmanager:${REGION}:${ACCOUNT}:secret:nope`]);
  const deny: AuthorizeSecret = async () => {
    throw new Error('denied');
  };
  await assert.rejects(f.sm.describeSecret(ACCOUNT, { SecretId: 'nope' }, deny), /denied/);
  await f.sm.createSecret(ACCOUNT, { Name: 'mine', SecretString: 'v' }, f.allow);
  await assert.rejects(f.sm.getSecretValue(ACCOUNT, { SecretId: 'mine' }, deny), /denied/);
  // Another account's ARN is not found here (no resource policies).
  const foreign = `arn:aws:secretsmanager:${REGION}:444455556666:secret:mine`;
  await rejectsWith(f.sm.getSecretValue(ACCOUNT, { SecretId: foreign }, f.allow), 'ResourceNotFoundException');
  assert.equal(f.asked.at(-1), foreign);
  await rejectsWith(f.sm.getSecretValue(ACCOUNT, { SecretId: 'arn:aws:s3:::bucket' }, f.allow), 'InvalidParameterException');
});

test('DeleteSecret schedules within 7-30 days, RestoreSecret undoes it, a forced one is gone at once, a due one lazily', async (t) => {
  const f = await fixture(t);
  await f.sm.createSecret(ACCOUNT, { Name: 'd', SecretString: 'v' }, f.allow);
  await rejectsWith(f.sm.deleteSecret(ACCOUNT, { SecretId: 'd', RecoveryWindowInDays: 6 }, f.allow), 'InvalidParameterException', /between 7 and 30/);
  await rejectsWith(f.sm.deleteSecret(ACCOUNT, { SecretId: 'd', RecoveryWindowInDays: 7, ForceDeleteWithoutRecovery: true }, f.allow), 'InvalidParameterException', /conjunction/);
  const deleted = await f.sm.deleteSecret(ACCOUNT, { SecretId: 'd', RecoveryWindowInDays: 7 }, f.allow);
  assert.deepEqual(deleted['DeletionDate'], new Date(T0 + 7 * DAY));
  await rejectsWith(f.sm.getSecretValue(ACCOUNT, { SecretId: 'd' }, f.allow), 'InvalidRequestException', /marked for deletion/);
  await rejectsWith(f.sm.putSecretValue(ACCOUNT, { SecretId: 'd', SecretString: 'w' }, f.allow), 'InvalidRequestException');
  await rejectsWith(f.sm.updateSecret(ACCOUNT, { SecretId: 'd', Description: 'w' }, f.allow), 'InvalidRequestException');
  await rejectsWith(f.sm.deleteSecret(ACCOUNT, { SecretId: 'd' }, f.allow), 'InvalidRequestException', /already scheduled/);
  await rejectsWith(f.sm.createSecret(ACCOUNT, { Name: 'd' }, f.allow), 'InvalidRequestException', /scheduled for deletion/);
  assert.deepEqual((await f.sm.describeSecret(ACCOUNT, { SecretId: 'd' }, f.allow))['DeletedDate'], new Date(T0));
  await assert.rejects(f.sm.readValue(ACCOUNT, 'd'), (err: unknown) => err instanceof SecretNotFound && err.reason === 'deleted');
  assert.deepEqual((await f.sm.listSecrets(ACCOUNT, {}))['SecretList'], []);
  assert.equal(((await f.sm.listSecrets(ACCOUNT, { IncludePlannedDeletion: true }))['SecretList'] as unknown[]).length, 1);

  await f.sm.restoreSecret(ACCOUNT, { SecretId: 'd' }, f.allow);
  assert.equal((await f.sm.getSecretValue(ACCOUNT, { SecretId: 'd' }, f.allow))['SecretString'], 'v');
  assert.equal((await f.sm.describeSecret(ACCOUNT, { SecretId: 'd' }, f.allow))['DeletedDate'], undefined);

  await f.sm.deleteSecret(ACCOUNT, { SecretId: 'd' }, f.allow);
  f.clock.now = T0 + 30 * DAY;
  await rejectsWith(f.sm.describeSecret(ACCOUNT, { SecretId: 'd' }, f.allow), 'ResourceNotFoundException', undefined);
  const again = await f.sm.createSecret(ACCOUNT, { Name: 'd', SecretString: 'new' }, f.allow);
  assert.ok(again['ARN']);

  // Forced: gone at once, also when already scheduled, and the name is free.
  await f.sm.deleteSecret(ACCOUNT, { SecretId: 'd' }, f.allow);
  await f.sm.deleteSecret(ACCOUNT, { SecretId: 'd', ForceDeleteWithoutRecovery: true }, f.allow);
  await rejectsWith(f.sm.describeSecret(ACCOUNT, { SecretId: 'd' }, f.allow), 'ResourceNotFoundException');
  await f.sm.createSecret(ACCOUNT, { Name: 'd' }, f.allow);
});

test('ListSecrets pages by MaxResults and filters by name prefix, description, tags and negation', async (t) => {
  const f = await fixture(t);
  const names = ['ecr-pullthroughcache/docker-hub', 'ecr-pullthroughcache/ghcr', 'ecr-pullthroughcache/quay', 'app/db', 'app/api'];
  for (const [i, name] of names.entries()) {
    await f.sm.createSecret(ACCOUNT, { Name: name, Description: i % 2 === 0 ? 'Upstream creds' : 'other', Tags: [{ Key: 'team', Value: i < 3 ? 'build' : 'app' }] }, f.allow);
  }
  const names$ = (out: Record<string, unknown>) => (out['SecretList'] as Array<{ Name: string }>).map((s) => s.Name);
  const all: string[] = [];
  let token: string | undefined;
  do {
    const out = await f.sm.listSecrets(ACCOUNT, { MaxResults: 2, ...(token ? { NextToken: token } : {}) });
    assert.ok(names$(out).length <= 2);
    all.push(...names$(out));
    token = out['NextToken'] as string | undefined;
  } while (token);
  assert.deepEqual(all, [...names].sort());
  const filtered = async (Filters: Array<{ Key: string; Values: string[] }>) => names$(await f.sm.listSecrets(ACCOUNT, { Filters }));
  assert.deepEqual(await filtered([{ Key: 'name', Values: ['ecr-pullthroughcache/'] }]), names.slice(0, 3));
  assert.deepEqual(await filtered([{ Key: 'name', Values: ['ECR-'] }]), [], 'name is case-sensitive');
  assert.deepEqual(await filtered([{ Key: 'name', Values: ['app/', 'ecr-pullthroughcache/g'] }]), ['app/api', 'app/db', 'ecr-pullthroughcache/ghcr']);
  assert.deepEqual(await filtered([{ Key: 'name', Values: ['!app/'] }]), names.slice(0, 3));
  assert.deepEqual(await filtered([{ Key: 'description', Values: ['upstream'] }]), ['app/api', 'ecr-pullthroughcache/docker-hub', 'ecr-pullthroughcache/quay']);
  assert.deepEqual(await filtered([{ Key: 'tag-value', Values: ['build'] }, { Key: 'name', Values: ['!ecr-pullthroughcache/q'] }]), names.slice(0, 2));
  assert.deepEqual(await filtered([{ Key: 'all', Values: ['GHCR'] }]), ['ecr-pullthroughcache/ghcr']);
  const entry = (await f.sm.listSecrets(ACCOUNT, { MaxResults: 1 }))['SecretList'] as Array<Record<string, unknown>>;
  assert.deepEqual(entry[0]!['Tags'], [{ Key: 'team', Value: 'app' }]);
  assert.deepEqual(entry[0]!['SecretVersionsToStages'], {});
  await rejectsWith(f.sm.listSecrets(ACCOUNT, { NextToken: 'garbage' }), 'InvalidNextTokenException');
});

test('readValue: the current value without IAM, or SecretNotFound with a reason; another key is undecryptable, not a crash', async (t) => {
  const f = await fixture(t);
  const created = await f.sm.createSecret(ACCOUNT, { Name: 'ecr-pullthroughcache/hub', SecretString: '{"username":"u","accessToken":"t"}' }, f.allow);
  const byName = await f.sm.readValue(ACCOUNT, 'ecr-pullthroughcache/hub');
  assert.deepEqual(byName, { arn: created['ARN'], name: 'ecr-pullthroughcache/hub', secretString: '{"username":"u","accessToken":"t"}' });
  assert.deepEqual(await f.sm.readValue(ACCOUNT, created['ARN'] as string), byName);
  await f.sm.createSecret(ACCOUNT, { Name: 'bin', SecretBinary: new Uint8Array([9, 8]) }, f.allow);
  assert.deepEqual((await f.sm.readValue(ACCOUNT, 'bin')).secretBinary, Buffer.from([9, 8]));
  const reason = async (call: Promise<unknown>) => {
    try {
      await call;
    } catch (err) {
      assert.ok(err instanceof SecretNotFound, String(err));
      return err.reason;
    }
    assert.fail('expected SecretNotFound');
  };
  assert.equal(await reason(f.sm.readValue(ACCOUNT, 'nope')), 'missing');
  assert.equal(await reason(f.sm.readValue('444455556666', 'ecr-pullthroughcache/hub')), 'missing', 'per account');
  assert.equal(await reason(f.sm.readValue(ACCOUNT, 'arn:nonsense')), 'missing');
  assert.equal(await reason(f.other().readValue(ACCOUNT, 'ecr-pullthroughcache/hub')), 'undecryptable');
  await rejectsWith(f.other().getSecretValue(ACCOUNT, { SecretId: 'ecr-pullthroughcache/hub' }, f.allow), 'DecryptionFailure');
});
