import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { DescribeRepositoriesCommand, GetAuthorizationTokenCommand } from '@aws-sdk/client-ecr';
import { AttachRolePolicyCommand, CreateRoleCommand, GetUserCommand } from '@aws-sdk/client-iam';
import { AssumeRoleCommand, GetCallerIdentityCommand } from '@aws-sdk/client-sts';
import { ADMIN } from '../support/auth.ts';
import { type AwsCredentials, awsFails, awsOk, ecrClient, iamClient, sdkError, signedFetch, stsClient } from '../support/aws.ts';
import { repoName } from '../support/oci.ts';
import { startServer, type TestServer } from '../support/server.ts';

/**
 * How the AWS APIs treat requests AWS itself refuses before running anything: an X-Amz-Target
 * ECR does not serve, and a session token sent with a long-term access key. Driven by signed
 * raw requests, the AWS SDK and the AWS CLI against one server.
 */

const TARGET_PREFIX = 'AmazonEC2ContainerRegistry_V20150921';

let server: TestServer;

before(async () => {
  server = await startServer();
});
after(() => server?.close());



/** A CreateRepository body sent with `target` (or with no X-Amz-Target at all), signed for ECR as the admin. */
function createWithTarget(repositoryName: string, target: string | undefined): Promise<Response> {
  const headers: Record<string, string> = { 'content-type': 'application/x-amz-json-1.1' };
  if (target !== undefined) headers['x-amz-target'] = target;
  return signedFetch(server, ADMIN, { service: 'ecr', headers, body: JSON.stringify({ repositoryName }) });
}

async function repositoryExists(repositoryName: string): Promise<boolean> {
  try {
    await ecrClient(server, ADMIN).send(new DescribeRepositoriesCommand({ repositoryNames: [repositoryName] }));
    return true;
  } catch (err) {
    if ((err as Error).name === 'RepositoryNotFoundException') return false;
    throw err;
  }
}

test('an X-Amz-Target ECR does not serve answers 400 UnknownOperationException and runs nothing', async () => {
  // The same request with the right target creates the repository: only the target differs below.
  const control = repoName('target');
  const ok = await createWithTarget(control, `${TARGET_PREFIX}.CreateRepository`);
  assert.equal(ok.status, 200, await ok.text());
  assert.equal(await repositoryExists(control), true);

  const targets: [string, string | undefined][] = [
    ['another API version', 'AmazonEC2ContainerRegistry_V20991231.CreateRepository'],
    ['another prefix of the same length', `${'X'.repeat(TARGET_PREFIX.length)}.CreateRepository`],
    ['no separator before the operation', `${TARGET_PREFIX}CreateRepository`],
    ['no operation', `${TARGET_PREFIX}.`],
    ['an operation ECR lacks', `${TARGET_PREFIX}.CreateBucket`],
    ['the operation in the wrong case', `${TARGET_PREFIX}.createRepository`],
    ['no X-Amz-Target header', undefined],
  ];
  for (const [what, target] of targets) {
    const repositoryName = repoName('target');
    const res = await createWithTarget(repositoryName, target);
    const text = await res.text();
    assert.equal(res.status, 400, `${what}: ${text}`);
    assert.equal(res.headers.get('x-amzn-errortype'), 'UnknownOperationException', what);
    assert.match(res.headers.get('content-type') ?? '', /^application\/x-amz-json-1\.1/, what);
    assert.equal((JSON.parse(text) as { __type: string }).__type, 'UnknownOperationException', `${what}: ${text}`);
    assert.equal(await repositoryExists(repositoryName), false, `${what}: the repository was not created`);
  }
});

test('a long-term access key with a session token is refused by ECR, IAM and STS (AWS SDK)', async () => {
  // Without the token the key works on all three.
  await ecrClient(server, ADMIN).send(new GetAuthorizationTokenCommand({}));
  await iamClient(server, ADMIN).send(new GetUserCommand({}));
  await stsClient(server, ADMIN).send(new GetCallerIdentityCommand({}));

  // A genuine session token (from AssumeRole) is refused too: it belongs to a session, not to this key.
  const trust = { Version: '2012-10-17', Statement: [{ Effect: 'Allow', Principal: { AWS: `arn:aws:iam::${ADMIN.accountId}:user/admin` }, Action: 'sts:AssumeRole' }] };
  const role = (await iamClient(server, ADMIN).send(new CreateRoleCommand({ RoleName: 'token-mixer', AssumeRolePolicyDocument: JSON.stringify(trust) }))).Role!;
  await iamClient(server, ADMIN).send(new AttachRolePolicyCommand({ RoleName: 'token-mixer', PolicyArn: 'arn:aws:iam::aws:policy/AmazonEC2ContainerRegistryReadOnly' }));
  const assumed = (await stsClient(server, ADMIN).send(new AssumeRoleCommand({ RoleArn: role.Arn!, RoleSessionName: 'mixer' }))).Credentials!;
  const session: AwsCredentials = { accessKeyId: assumed.AccessKeyId!, secretAccessKey: assumed.SecretAccessKey!, sessionToken: assumed.SessionToken! };
  // The session's own credentials still work.
  await ecrClient(server, session).send(new GetAuthorizationTokenCommand({}));

  for (const sessionToken of ['made-up', session.sessionToken!]) {
    const creds: AwsCredentials = { ...ADMIN, sessionToken };
    const what = sessionToken === 'made-up' ? 'a made-up token' : "a role session's token";
    const e = await sdkError(ecrClient(server, creds).send(new GetAuthorizationTokenCommand({})));
    assert.deepEqual([e.name, e.status], ['UnrecognizedClientException', 400], `ECR, ${what}: ${e.message}`);
    assert.equal(e.message, 'The security token included in the request is invalid.');
    for (const [api, call] of [
      ['IAM', iamClient(server, creds).send(new GetUserCommand({}))],
      ['STS', stsClient(server, creds).send(new GetCallerIdentityCommand({}))],
    ] as const) {
      const q = await sdkError(call);
      assert.deepEqual([q.name, q.status], ['InvalidClientTokenId', 403], `${api}, ${what}: ${q.message}`);
      assert.equal(q.message, 'The security token included in the request is invalid.');
    }
  }
});

test('the AWS CLI with AWS_SESSION_TOKEN set beside a long-term key is refused by ECR, IAM and STS', async () => {
  const calls: [string[], string][] = [
    [['ecr', 'describe-repositories'], 'UnrecognizedClientException'],
    [['iam', 'get-user'], 'InvalidClientTokenId'],
    [['sts', 'get-caller-identity'], 'InvalidClientTokenId'],
  ];
  for (const [args, code] of calls) {
    await awsOk(server, ADMIN, args);
    const refused = await awsFails(server, { ...ADMIN, sessionToken: 'FwoGZXIvYXdzEXAMPLETOKEN' }, args);
    assert.equal(refused.errorCode, code, `aws ${args.join(' ')}: ${refused.stderr}`);
    assert.match(refused.stderr, /The security token included in the request is invalid/, refused.stderr);
  }
});
