import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { after, before, test } from 'node:test';
import {
  AddUserToGroupCommand,
  AttachGroupPolicyCommand,
  AttachRolePolicyCommand,
  CreateAccessKeyCommand,
  CreateGroupCommand,
  CreateRoleCommand,
  CreateUserCommand,
  PutUserPolicyCommand,
  RemoveUserFromGroupCommand,
} from '@aws-sdk/client-iam';
import { execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';
import { AssumeRoleCommand } from '@aws-sdk/client-sts';
import { ADMIN, basicAuthorization } from '../support/auth.ts';
import { iamClient, stsClient, type AwsCredentials } from '../support/aws.ts';
import { repoRoot, startServer, type TestServer } from '../support/server.ts';

/**
 * Identity details beyond the main flow: a trusted proxy's X-Forwarded-For reaching
 * aws:SourceIp, sts:ExternalId in trust policies, refused session policies, and the token
 * endpoint asking for ecr:GetAuthorizationToken.
 */

let proxied: TestServer;
let direct: TestServer;
before(async () => {
  proxied = await startServer({ env: { BERTH_SERVER_TRUST_PROXY: '127.0.0.1' } });
  direct = await startServer();
});
after(async () => {
  await proxied?.close();
  await direct?.close();
});

const policy = (statements: object[]) => JSON.stringify({ Version: '2012-10-17', Statement: statements });

async function userWithPolicy(server: TestServer, name: string, statements: object[]): Promise<AwsCredentials> {
  const iam = iamClient(server, ADMIN);
  await iam.send(new CreateUserCommand({ UserName: name }));
  await iam.send(new PutUserPolicyCommand({ UserName: name, PolicyName: 'p', PolicyDocument: policy(statements) }));
  const key = (await iam.send(new CreateAccessKeyCommand({ UserName: name }))).AccessKey!;
  return { accessKeyId: key.AccessKeyId!, secretAccessKey: key.SecretAccessKey! };
}

async function pushBlob(server: TestServer, repo: string, creds: AwsCredentials, headers: Record<string, string> = {}): Promise<number> {
  const bytes = Buffer.from(`blob for ${repo}`);
  const digest = `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
  const res = await fetch(`${server.baseUrl}/v2/${repo}/blobs/uploads/?digest=${digest}`, {
    method: 'POST',
    body: bytes,
    headers: { authorization: basicAuthorization(creds.accessKeyId, creds.secretAccessKey), 'content-type': 'application/octet-stream', ...headers },
  });
  await res.arrayBuffer();
  return res.status;
}

const officeOnly = [
  { Effect: 'Allow', Action: 'ecr:*', Resource: '*' },
  { Effect: 'Deny', Action: 'ecr:*', Resource: '*', Condition: { NotIpAddress: { 'aws:SourceIp': ['127.0.0.0/8', '198.51.100.0/24'] } } },
];

test('behind a trusted proxy, aws:SourceIp is the client from X-Forwarded-For', async () => {
  const creds = await userWithPolicy(proxied, 'office', officeOnly);
  assert.equal(await pushBlob(proxied, 'office/a', creds), 201, 'from the proxy itself (loopback)');
  assert.equal(await pushBlob(proxied, 'office/a', creds, { 'x-forwarded-for': '198.51.100.7' }), 201, 'a client in the office range');
  assert.equal(await pushBlob(proxied, 'office/a', creds, { 'x-forwarded-for': '203.0.113.9' }), 403, 'a client outside it');
});

test('without server.trustProxy, X-Forwarded-For is ignored: the peer address counts', async () => {
  const creds = await userWithPolicy(direct, 'office', officeOnly);
  assert.equal(await pushBlob(direct, 'office/a', creds, { 'x-forwarded-for': '203.0.113.9' }), 201);
});

test('a trust policy can require sts:ExternalId; session policies are refused rather than ignored', async () => {
  const iam = iamClient(direct, ADMIN);
  await iam.send(
    new CreateRoleCommand({
      RoleName: 'partner',
      AssumeRolePolicyDocument: policy([{ Effect: 'Allow', Principal: { AWS: `arn:aws:iam::${ADMIN.accountId}:user/admin` }, Action: 'sts:AssumeRole', Condition: { StringEquals: { 'sts:ExternalId': 'x-42' } } }]),
    }),
  );
  const sts = stsClient(direct, ADMIN);
  const arn = `arn:aws:iam::${ADMIN.accountId}:role/partner`;
  await assert.rejects(sts.send(new AssumeRoleCommand({ RoleArn: arn, RoleSessionName: 'ci-1' })), (err: Error) => err.name === 'AccessDenied');
  await assert.rejects(sts.send(new AssumeRoleCommand({ RoleArn: arn, RoleSessionName: 'ci-1', ExternalId: 'wrong' })), (err: Error) => err.name === 'AccessDenied');
  const ok = await sts.send(new AssumeRoleCommand({ RoleArn: arn, RoleSessionName: 'ci-1', ExternalId: 'x-42' }));
  assert.match(ok.AssumedRoleUser!.Arn!, /assumed-role\/partner\/ci-1$/);
  await assert.rejects(
    sts.send(new AssumeRoleCommand({ RoleArn: arn, RoleSessionName: 'ci-1', ExternalId: 'x-42', Policy: policy([{ Effect: 'Allow', Action: 'ecr:BatchGetImage', Resource: '*' }]) })),
    (err: Error) => err.name === 'ValidationError' && /Session policies/.test(err.message),
  );
});

test('the token endpoint, like GetAuthorizationToken, needs ecr:GetAuthorizationToken', async () => {
  const pusher = await userWithPolicy(direct, 'no-login', [{ Effect: 'Allow', Action: ['ecr:BatchGetImage'], Resource: '*' }]);
  const res = await fetch(`${direct.baseUrl}/token?service=berth&scope=repository:x/y:pull`, { headers: { authorization: basicAuthorization(pusher.accessKeyId, pusher.secretAccessKey) } });
  const body = (await res.json()) as { errors: { code: string; message: string }[] };
  assert.equal(res.status, 403);
  assert.equal(body.errors[0]!.code, 'DENIED');
  assert.match(body.errors[0]!.message, /ecr:GetAuthorizationToken/);
  const admin = await fetch(`${direct.baseUrl}/token?service=berth`, { headers: { authorization: basicAuthorization(ADMIN.accessKeyId, ADMIN.secretAccessKey) } });
  assert.equal(admin.status, 200);
  assert.ok(((await admin.json()) as { token: string }).token);
});

test('a group\'s managed policy applies to its members, and stops applying when one leaves', async () => {
  const iam = iamClient(direct, ADMIN);
  await iam.send(new CreateGroupCommand({ GroupName: 'pushers' }));
  await iam.send(new AttachGroupPolicyCommand({ GroupName: 'pushers', PolicyArn: 'arn:aws:iam::aws:policy/AmazonEC2ContainerRegistryPowerUser' }));
  await iam.send(new CreateUserCommand({ UserName: 'dev' }));
  const key = (await iam.send(new CreateAccessKeyCommand({ UserName: 'dev' }))).AccessKey!;
  const dev = { accessKeyId: key.AccessKeyId!, secretAccessKey: key.SecretAccessKey! };
  assert.equal(await pushBlob(direct, 'group/app', ADMIN), 201, 'the administrator creates the repository (PowerUser may not)');
  assert.equal(await pushBlob(direct, 'group/app', dev), 403, 'no policy yet');
  await iam.send(new AddUserToGroupCommand({ GroupName: 'pushers', UserName: 'dev' }));
  assert.equal(await pushBlob(direct, 'group/app', dev), 201, 'allowed through the group');
  assert.equal(await pushBlob(direct, 'group/new-repo', dev), 403, 'PowerUser does not include ecr:CreateRepository');
  await iam.send(new RemoveUserFromGroupCommand({ GroupName: 'pushers', UserName: 'dev' }));
  assert.equal(await pushBlob(direct, 'group/app', dev), 403, 'allowed no more');
});

test('another account assumes a role it is trusted for, and acts in the role\'s account', async () => {
  const { stdout } = await promisify(execFile)(path.join(repoRoot, 'bin', 'berth'), ['account', 'create', '--account-id', '777788889999', '--data-dir', direct.dataDir], { cwd: repoRoot, env: { ...process.env, ...direct.storeEnv } });
  const b = JSON.parse(stdout) as AwsCredentials;
  const iam = iamClient(direct, ADMIN);
  await iam.send(
    new CreateRoleCommand({ RoleName: 'cross-reader', AssumeRolePolicyDocument: policy([{ Effect: 'Allow', Principal: { AWS: 'arn:aws:iam::777788889999:root' }, Action: 'sts:AssumeRole' }]) }),
  );
  await iam.send(new AttachRolePolicyCommand({ RoleName: 'cross-reader', PolicyArn: 'arn:aws:iam::aws:policy/AmazonEC2ContainerRegistryPowerUser' }));
  assert.equal(await pushBlob(direct, 'shared/app', ADMIN), 201);
  assert.equal(await pushBlob(direct, 'shared/app', b), 403, 'B itself has no access to A\'s repository');
  const arn = `arn:aws:iam::${ADMIN.accountId}:role/cross-reader`;
  const session = await stsClient(direct, b).send(new AssumeRoleCommand({ RoleArn: arn, RoleSessionName: 'from-b' }));
  assert.equal(session.AssumedRoleUser!.Arn, `arn:aws:sts::${ADMIN.accountId}:assumed-role/cross-reader/from-b`);
  const temp = { accessKeyId: session.Credentials!.AccessKeyId!, secretAccessKey: session.Credentials!.SecretAccessKey!, sessionToken: session.Credentials!.SessionToken! };
  const { GetAuthorizationTokenCommand } = await import('@aws-sdk/client-ecr');
  const { ecrClient } = await import('../support/aws.ts');
  const auth = (await ecrClient(direct, temp).send(new GetAuthorizationTokenCommand({}))).authorizationData![0]!;
  const bytes = Buffer.from('pushed as the role');
  const digest = `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
  const res = await fetch(`${direct.baseUrl}/v2/shared/app/blobs/uploads/?digest=${digest}`, {
    method: 'POST',
    body: bytes,
    headers: { authorization: `Basic ${auth.authorizationToken}`, 'content-type': 'application/octet-stream' },
  });
  assert.equal(res.status, 201, await res.text());

  // A third account that the trust policy does not name is refused, even with an identity allow.
  const other = JSON.parse((await promisify(execFile)(path.join(repoRoot, 'bin', 'berth'), ['account', 'create', '--account-id', '121212121212', '--data-dir', direct.dataDir], { cwd: repoRoot, env: { ...process.env, ...direct.storeEnv } })).stdout) as AwsCredentials;
  await assert.rejects(stsClient(direct, other).send(new AssumeRoleCommand({ RoleArn: arn, RoleSessionName: 'sneaky' })), (err: Error) => err.name === 'AccessDenied');
});
