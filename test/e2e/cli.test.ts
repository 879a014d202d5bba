import { redactUrl } from '../../src/store/open.ts';
import assert from 'node:assert/strict';
import { stat, readFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { GetCallerIdentityCommand } from '@aws-sdk/client-sts';
import { ADMIN } from '../support/auth.ts';
import { berth, runBerth, startServer, type TestServer } from '../support/server.ts';
import { stsClient } from '../support/aws.ts';
import { basicAuthorization } from '../support/auth.ts';
import { createHash } from 'node:crypto';
import { httpRequest } from '../support/http.ts';

async function berthFails(server: TestServer, args: string[]): Promise<string> {
  try {
    await runBerth(server, args);
  } catch (err) {
    const e = err as { code: number; stderr: string };
    assert.equal(e.code, 2, e.stderr);
    return e.stderr;
  }
  assert.fail(`berth ${args.join(' ')} succeeded`);
}

async function whoAmI(server: TestServer, creds: { accessKeyId: string; secretAccessKey: string }): Promise<string | undefined> {
  return (await stsClient(server, creds).send(new GetCallerIdentityCommand({}))).Arn;
}

let server: TestServer;
let generated: TestServer;
before(async () => {
  // Caches of one millisecond: what the CLI changes in the store shows on the next request.
  // Blobs proxied also on S3: these tests read them back over plain HTTP (blob-redirect.test.ts covers redirects).
  server = await startServer({ env: { BERTH_AUTH_CACHE_TTL_SECONDS: '0', BERTH_BLOBS_REDIRECT: 'never' } });
  // No BERTH_BOOTSTRAP_*: the administrator's key is generated and written for its owner only.
  generated = await startServer({ env: { BERTH_BOOTSTRAP_ACCOUNT_ID: '', BERTH_BOOTSTRAP_ACCESS_KEY_ID: '', BERTH_BOOTSTRAP_SECRET_ACCESS_KEY: '' } });
});
after(async () => {
  await server?.close();
  await generated?.close();
});

test('a first start without bootstrap keys writes the administrator key to a file only its owner can read, and it works', async () => {
  const file = path.join(generated.dataDir, 'admin-credentials');
  assert.equal((await stat(file)).mode & 0o777, 0o600);
  const text = await readFile(file, 'utf8');
  const accessKeyId = /aws_access_key_id = (\S+)/.exec(text)?.[1];
  const secretAccessKey = /aws_secret_access_key = (\S+)/.exec(text)?.[1];
  assert.ok(accessKeyId !== undefined && secretAccessKey !== undefined, text);
  assert.match(accessKeyId, /^AKIA/);
  assert.match((await whoAmI(generated, { accessKeyId, secretAccessKey }))!, /^arn:aws:iam::\d{12}:user\/admin$/);
  const logged = JSON.stringify(generated.logs);
  assert.ok(!logged.includes(secretAccessKey), 'the secret is never logged');
  assert.ok(logged.includes(accessKeyId), 'the key id is logged, so an operator can match the file');
});

test('berth key create recovers a lost administrator key; deactivating the old one takes effect at once', async () => {
  const accounts = await berth(server, ['account', 'list']);
  assert.deepEqual(accounts.map((a: { accountId: string }) => a.accountId), [ADMIN.accountId]);
  const created = await berth(server, ['key', 'create', '--account', ADMIN.accountId, '--user', 'admin']);
  assert.match(created.accessKeyId, /^AKIA[A-Z2-7]{16}$/);
  assert.equal(await whoAmI(server, created), `arn:aws:iam::${ADMIN.accountId}:user/admin`);

  const keys = await berth(server, ['key', 'list', '--account', ADMIN.accountId, '--user', 'admin']);
  assert.deepEqual(keys.map((k: { accessKeyId: string }) => k.accessKeyId).sort(), [ADMIN.accessKeyId, created.accessKeyId].sort());
  assert.match(await berthFails(server, ['key', 'create', '--account', ADMIN.accountId, '--user', 'admin']), /already has two access keys/);

  await berth(server, ['key', 'deactivate', ADMIN.accessKeyId]);
  await assert.rejects(whoAmI(server, ADMIN), (err: Error) => err.name === 'InvalidClientTokenId');
  await berth(server, ['key', 'activate', ADMIN.accessKeyId]);
  assert.equal(await whoAmI(server, ADMIN), `arn:aws:iam::${ADMIN.accountId}:user/admin`);
  await berth(server, ['key', 'delete', created.accessKeyId]);
  await assert.rejects(whoAmI(server, created), (err: Error) => err.name === 'InvalidClientTokenId');
});

test('berth account create makes a second account whose administrator works at once', async () => {
  const created = await berth(server, ['account', 'create', '--account-id', '444455556666']);
  assert.equal(created.accountId, '444455556666');
  assert.equal(await whoAmI(server, created), 'arn:aws:iam::444455556666:user/admin');
  assert.match(await berthFails(server, ['account', 'create', '--account-id', '444455556666']), /already exists/);
  const user = await berth(server, ['user', 'create', '--account', '444455556666', '--user', 'ops', '--admin']);
  assert.equal(user.arn, 'arn:aws:iam::444455556666:user/ops');
  const key = await berth(server, ['key', 'create', '--account', '444455556666', '--user', 'ops']);
  assert.equal(await whoAmI(server, key), 'arn:aws:iam::444455556666:user/ops');
});

test('berth refuses unknown commands and missing options with a usage error', async () => {
  assert.match(await berthFails(server, ['frobnicate']), /unknown command/);
  assert.match(await berthFails(server, ['key', 'create', '--account', ADMIN.accountId]), /--user is required/);
  assert.match(await berthFails(server, ['audit', '--since', 'yesterday-ish']), /--since must be a date/);
});

test('another account\'s registry is addressed as ACCOUNT.HOST; the bare host serves the default account', async () => {
  const b = await berth(server, ['key', 'create', '--account', '444455556666', '--user', 'admin']);
  const asB = basicAuthorization(b.accessKeyId, b.secretAccessKey);
  const url = (p: string) => new URL(p, server.baseUrl);
  const bHost = `444455556666.registry.test:${server.port}`;
  const bytes = Buffer.from('a blob in account B');
  const digest = `sha256:${createHash('sha256').update(bytes).digest('hex')}`;

  const pushed = await httpRequest(url(`/v2/team/b-only/blobs/uploads/?digest=${digest}`), {
    method: 'POST',
    headers: { host: bHost, authorization: asB, 'content-type': 'application/octet-stream', 'content-length': bytes.length },
    chunks: [bytes],
  });
  assert.equal(pushed.status, 201, pushed.body.toString());
  const catalog = async (host: string | undefined, authorization: string) =>
    JSON.parse((await httpRequest(url('/v2/_catalog'), { method: 'GET', headers: { ...(host ? { host } : {}), authorization } })).body.toString()).repositories;
  assert.deepEqual(await catalog(bHost, asB), ['team/b-only'], 'B sees its repository in its own registry');
  // On the bare host B is a caller from another account, allowed nothing there: refused.
  const bOnBare = await httpRequest(url('/v2/_catalog'), { method: 'GET', headers: { authorization: asB } });
  assert.equal(bOnBare.status, 403, 'the bare host is the default account, not B');
  assert.doesNotMatch(bOnBare.body.toString(), /team\/b-only/);
  // A may describe none of B's repositories: refused, as ECR refuses a listing to such a caller.
  const byAdminOfA = await httpRequest(url('/v2/_catalog'), { method: 'GET', headers: { host: bHost, authorization: basicAuthorization(ADMIN.accessKeyId, ADMIN.secretAccessKey) } });
  assert.equal(byAdminOfA.status, 403, 'A sees nothing of B without a policy');
  assert.match(byAdminOfA.body.toString(), /DENIED.*ecr:DescribeRepositories/s);

  const read = await httpRequest(url(`/v2/team/b-only/blobs/${digest}`), { method: 'GET', headers: { host: bHost, authorization: asB } });
  assert.equal(read.status, 200);
  assert.deepEqual(read.body, bytes);
  const byA = await httpRequest(url(`/v2/team/b-only/blobs/${digest}`), { method: 'GET', headers: { host: bHost } });
  assert.equal(byA.status, 403, 'A\'s administrator is another account here: no repository policy, no access');
  assert.match(byA.body.toString(), /arn:aws:ecr:us-east-1:444455556666:repository\/team\/b-only/);
  const onBare = await httpRequest(url(`/v2/team/b-only/blobs/${digest}`), { method: 'GET', headers: { authorization: asB } });
  assert.notEqual(onBare.status, 200, 'the same name on the bare host is account A\'s (absent) repository');
});

test('a server started with another secret key than the store was sealed with refuses to start, saying why', async () => {
  await assert.rejects(
    startServer({ dataDir: generated.dataDir, env: { BERTH_AUTH_SECRET_KEY: Buffer.alloc(32, 7).toString('base64') } }),
    /exited with 1 before listening.*secret key .* is not the one this store's access keys were sealed with/s,
  );
  await assert.rejects(
    runBerth(server, ['key', 'create', '--account', ADMIN.accountId, '--user', 'nobody', '--auth-secret-key-file', path.join(generated.dataDir, 'secret.key')]),
    (err: { code: number; stderr: string }) => err.code === 2 && /not the one this store's access keys were sealed with/.test(err.stderr),
  );
  // Without the key, the keys sealed with it can still be listed (and deleted) to recover.
  const listed = await berth(server, ['key', 'list', '--account', ADMIN.accountId, '--user', 'admin', '--auth-secret-key-file', '/nonexistent/secret.key']);
  assert.ok(listed.length >= 1);
});

test('berth repository-policy delete and registry-policy delete undo a policy that locks everyone out', async () => {
  const repo = 'locked/out';
  const bytes = Buffer.from('locked');
  const digest = `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
  const put = await httpRequest(new URL(`/v2/${repo}/blobs/uploads/?digest=${digest}`, server.baseUrl), { method: 'POST', headers: { 'content-type': 'application/octet-stream', 'content-length': bytes.length }, chunks: [bytes] });
  assert.equal(put.status, 201);
  const denyAll = JSON.stringify({ Version: '2012-10-17', Statement: [{ Effect: 'Deny', Principal: '*', Action: 'ecr:*' }] });
  const { ecrClient } = await import('../support/aws.ts');
  const { SetRepositoryPolicyCommand, PutRegistryPolicyCommand } = await import('@aws-sdk/client-ecr');
  await ecrClient(server, ADMIN).send(new SetRepositoryPolicyCommand({ repositoryName: repo, policyText: denyAll }));
  const read = () => httpRequest(new URL(`/v2/${repo}/blobs/${digest}`, server.baseUrl), { method: 'GET' });
  assert.equal((await read()).status, 403, 'even the administrator is locked out');
  assert.deepEqual(await berth(server, ['repository-policy', 'delete', '--account', ADMIN.accountId, '--repository', repo]), { accountId: ADMIN.accountId, repositoryName: repo, result: 'deleted' });
  assert.equal((await read()).status, 200);

  await ecrClient(server, ADMIN).send(new PutRegistryPolicyCommand({ policyText: denyAll }));
  assert.equal((await read()).status, 403, 'a registry policy applies to every repository of the account');
  assert.deepEqual(await berth(server, ['registry-policy', 'delete', '--account', ADMIN.accountId]), { accountId: ADMIN.accountId, result: 'deleted' });
  assert.equal((await read()).status, 200);
});

test('berth status shows the stores and each account with its repositories, images and users', async () => {
  const status = await berth(server, ['status']);
  const metadataUrl = server.storeEnv['BERTH_METADATA_URL'];
  assert.equal(status.metadataUrl, metadataUrl ? redactUrl(metadataUrl) : `sqlite:${path.join(server.dataDir, 'metadata.db')}`);
  if (metadataUrl) assert.doesNotMatch(JSON.stringify(status), /berth-test@/, 'no database password in the output');
  assert.equal(status.region, 'us-east-1');
  assert.equal(status.defaultAccount, ADMIN.accountId);
  const mine = status.accounts.find((a: { accountId: string }) => a.accountId === ADMIN.accountId);
  assert.ok(mine.repositories >= 1, 'the repositories pushed by earlier tests');
  assert.ok(mine.users >= 1);
  assert.equal(typeof mine.images, 'number');
});
