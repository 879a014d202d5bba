import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { CreateRepositoryCommand, DescribeRepositoriesCommand, DescribeRepositoryCreationTemplatesCommand, DescribeImagesCommand, ListImagesCommand } from '@aws-sdk/client-ecr';
import { CreateAccessKeyCommand, CreateUserCommand, PutUserPolicyCommand } from '@aws-sdk/client-iam';
import { ADMIN, basicAuthorization } from '../support/auth.ts';
import { awsFails, awsOk, ecrClient, iamClient, requireAwsCli, REGION, type AwsCredentials } from '../support/aws.ts';
import { startServer, type TestServer } from '../support/server.ts';

/**
 * Listings and access, as ECR answers them: a caller that may describe no repository is refused
 * (AccessDeniedException naming ecr:DescribeRepositories), not given an empty list, so that tools
 * can tell "no access" from "no repositories"; a caller that may describe some repositories gets
 * exactly those.
 */

let server: TestServer;
const A = ADMIN.accountId;
const arn = (name: string) => `arn:aws:ecr:${REGION}:${A}:repository/${name}`;
const suffix = Math.random().toString(36).slice(2, 8);
const names = { team: `team-${suffix}/app`, other: `other-${suffix}/app` };

before(async () => {
  requireAwsCli();
  server = await startServer({ env: { BERTH_REPOSITORIES_CREATE_ON_PUSH: 'false' } });
  const ecr = ecrClient(server, ADMIN);
  for (const repositoryName of Object.values(names)) await ecr.send(new CreateRepositoryCommand({ repositoryName }));
});
after(async () => {
  await server?.close();
});

async function userWithPolicy(name: string, statements: object[] | undefined): Promise<AwsCredentials> {
  const iam = iamClient(server, ADMIN);
  await iam.send(new CreateUserCommand({ UserName: name }));
  if (statements) await iam.send(new PutUserPolicyCommand({ UserName: name, PolicyName: 'p', PolicyDocument: JSON.stringify({ Version: '2012-10-17', Statement: statements }) }));
  const key = (await iam.send(new CreateAccessKeyCommand({ UserName: name }))).AccessKey!;
  return { accessKeyId: key.AccessKeyId!, secretAccessKey: key.SecretAccessKey! };
}

async function catalog(creds: AwsCredentials): Promise<{ status: number; body: any }> {
  const res = await fetch(`${server.baseUrl}/v2/_catalog`, { headers: { authorization: basicAuthorization(creds.accessKeyId, creds.secretAccessKey) } });
  return { status: res.status, body: await res.json() };
}

test('a user with no policy is refused describe-repositories and the catalog, naming the action', async () => {
  const nobody = await userWithPolicy(`nobody-${suffix}`, undefined);
  const cli = await awsFails(server, nobody, ['ecr', 'describe-repositories']);
  assert.match(cli.stderr, /AccessDeniedException/);
  assert.match(cli.stderr, /ecr:DescribeRepositories/);
  await assert.rejects(ecrClient(server, nobody).send(new DescribeRepositoriesCommand({})), (err: Error) => {
    assert.equal(err.name, 'AccessDeniedException');
    assert.match(err.message, /ecr:DescribeRepositories/);
    return true;
  });
  const { status, body } = await catalog(nobody);
  assert.equal(status, 403);
  assert.equal(body.errors[0].code, 'DENIED');
  assert.match(body.errors[0].message, /ecr:DescribeRepositories/);
  // The other listings ask on the repository or the registry, and refuse the same way.
  for (const command of [new ListImagesCommand({ repositoryName: names.team }), new DescribeImagesCommand({ repositoryName: names.team }), new DescribeRepositoryCreationTemplatesCommand({})]) {
    await assert.rejects(ecrClient(server, nobody).send(command as any), (err: Error) => err.name === 'AccessDeniedException');
  }
});

test('a user allowed on some repositories lists exactly those', async () => {
  const team = await userWithPolicy(`team-${suffix}`, [{ Effect: 'Allow', Action: 'ecr:DescribeRepositories', Resource: arn(`team-${suffix}/*`) }]);
  const out = JSON.parse((await awsOk(server, team, ['ecr', 'describe-repositories'])).stdout) as { repositories: { repositoryName: string }[] };
  assert.deepEqual(out.repositories.map((r) => r.repositoryName), [names.team]);
  const { status, body } = await catalog(team);
  assert.equal(status, 200);
  assert.deepEqual(body.repositories, [names.team]);
});

test('a user allowed on every repository lists them all, and an explicit deny on them wins', async () => {
  const anyRepo = await userWithPolicy(`any-${suffix}`, [{ Effect: 'Allow', Action: 'ecr:DescribeRepositories', Resource: '*' }]);
  const own = JSON.parse((await awsOk(server, anyRepo, ['ecr', 'describe-repositories'])).stdout) as { repositories: { repositoryName: string }[] };
  assert.deepEqual(own.repositories.map((r) => r.repositoryName).sort(), Object.values(names).sort());
  // An explicit deny on everything wins over the allow.
  const denied = await userWithPolicy(`denied-${suffix}`, [
    { Effect: 'Allow', Action: 'ecr:DescribeRepositories', Resource: '*' },
    { Effect: 'Deny', Action: 'ecr:DescribeRepositories', Resource: arn('*') },
  ]);
  const cli = await awsFails(server, denied, ['ecr', 'describe-repositories']);
  assert.match(cli.stderr, /AccessDeniedException/);
});

test('an empty registry lists nothing for a caller who may describe everything', async () => {
  const empty = await startServer({ env: { BERTH_REPOSITORIES_CREATE_ON_PUSH: 'false' } });
  try {
    const out = JSON.parse((await awsOk(empty, ADMIN, ['ecr', 'describe-repositories'])).stdout) as { repositories: unknown[] };
    assert.deepEqual(out.repositories, []);
    const res = await fetch(`${empty.baseUrl}/v2/_catalog`, { headers: { authorization: basicAuthorization(ADMIN.accessKeyId, ADMIN.secretAccessKey) } });
    assert.equal(res.status, 200);
    assert.deepEqual(await res.json(), { repositories: [] });
  } finally {
    await empty.close();
  }
});
