import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { CreateAccessKeyCommand, CreateUserCommand, PutUserPolicyCommand } from '@aws-sdk/client-iam';
import { ADMIN, basicAuthorization } from '../support/auth.ts';
import { awsFails, awsOk, iamClient, requireAwsCli, signedFetch, ecrRequest, type AwsCredentials } from '../support/aws.ts';
import { buildImage, pushImage } from '../support/oci.ts';
import { assertNoServerErrors } from '../support/http.ts';
import { startServer, type TestServer } from '../support/server.ts';

/**
 * The replication API's answers to what a user gets wrong, as ECR gives them (the copying itself
 * is in replication.test.ts): which destinations a configuration may name, the limits, the status
 * of images that are not replicated, access, and the data plane's replication header.
 */

let server: TestServer;
const A = ADMIN.accountId;
const config = (rules: object[]) => ['ecr', 'put-replication-configuration', '--replication-configuration', JSON.stringify({ rules })];

before(async () => {
  requireAwsCli();
  server = await startServer({
    env: { BERTH_REPLICATION_PEERS: JSON.stringify([{ region: 'eu-west-1', endpoint: 'http://127.0.0.1:9', accessKeyId: 'AKIAPEER', secretAccessKey: 'peer' }]) },
  });
});
after(async () => {
  if (server) assertNoServerErrors(server.logs);
  await server?.close();
});

async function userWithPolicy(name: string, actions: string[]): Promise<AwsCredentials> {
  const iam = iamClient(server, ADMIN);
  await iam.send(new CreateUserCommand({ UserName: name }));
  await iam.send(new PutUserPolicyCommand({ UserName: name, PolicyName: 'p', PolicyDocument: JSON.stringify({ Version: '2012-10-17', Statement: [{ Effect: 'Allow', Action: actions, Resource: '*' }] }) }));
  const key = (await iam.send(new CreateAccessKeyCommand({ UserName: name }))).AccessKey!;
  return { accessKeyId: key.AccessKeyId!, secretAccessKey: key.SecretAccessKey! };
}

test('DescribeRegistry has no rules until a configuration is put, then the rules as given', async () => {
  assert.deepEqual((await awsOk(server, ADMIN, ['ecr', 'describe-registry'])).json, { registryId: A, replicationConfiguration: { rules: [] } });
  const rules = [
    { destinations: [{ region: 'eu-west-1', registryId: A }], repositoryFilters: [{ filter: 'prod', filterType: 'PREFIX_MATCH' }] },
    { destinations: [{ region: 'us-east-1', registryId: '444455556666' }] },
  ];
  const put = await awsOk(server, ADMIN, config(rules));
  assert.deepEqual(put.json, { replicationConfiguration: { rules } });
  assert.deepEqual((await awsOk(server, ADMIN, ['ecr', 'describe-registry'])).json.replicationConfiguration, { rules });
  await awsOk(server, ADMIN, config([]));
  assert.deepEqual((await awsOk(server, ADMIN, ['ecr', 'describe-registry'])).json.replicationConfiguration, { rules: [] });
});

test('a configuration naming a region that is neither this one nor a peer, or the source itself, is refused with the reason', async () => {
  const unknown = await awsFails(server, ADMIN, config([{ destinations: [{ region: 'ap-south-1', registryId: A }] }]));
  assert.equal(unknown.errorCode, 'InvalidParameterException');
  assert.match(unknown.stderr, /ap-south-1 is not a region this registry replicates to.*replication\.peers \(eu-west-1\)/);
  const itself = await awsFails(server, ADMIN, config([{ destinations: [{ region: 'us-east-1', registryId: A }] }]));
  assert.equal(itself.errorCode, 'InvalidParameterException');
  assert.match(itself.stderr, /cannot be the same as the source registry/);
  const noDestination = await awsFails(server, ADMIN, config([{ destinations: [] }]));
  assert.equal(noDestination.errorCode, 'InvalidParameterException');
  assert.deepEqual((await awsOk(server, ADMIN, ['ecr', 'describe-registry'])).json.replicationConfiguration, { rules: [] }, 'nothing was stored');
});

test("ECR's limits: 10 rules, 25 distinct destinations, PREFIX_MATCH filters", async () => {
  const rule = (registryId: string) => ({ destinations: [{ region: 'us-east-1', registryId }] });
  const tooManyRules = await awsFails(server, ADMIN, config(Array.from({ length: 11 }, (_, i) => rule(String(400000000000 + i)))));
  assert.ok(['InvalidParameterException', 'ValidationException'].includes(tooManyRules.errorCode!), tooManyRules.stderr);
  const destinations = Array.from({ length: 26 }, (_, i) => ({ region: 'us-east-1', registryId: String(400000000000 + i) }));
  const tooMany = await awsFails(server, ADMIN, config([{ destinations }]));
  assert.equal(tooMany.errorCode, 'InvalidParameterException');
  assert.match(tooMany.stderr, /at most 25 distinct destinations/);
  await awsOk(server, ADMIN, config([{ destinations: destinations.slice(0, 25) }, { destinations: destinations.slice(0, 25) }]));
  const badFilter = await awsFails(server, ADMIN, config([{ destinations: [destinations[0]], repositoryFilters: [{ filter: 'prod', filterType: 'WILDCARD' }] }]));
  assert.ok(['InvalidParameterException', 'ValidationException'].includes(badFilter.errorCode!), badFilter.stderr);
  await awsOk(server, ADMIN, config([]));
});

test('DescribeImageReplicationStatus: the repository and image must exist; an image no rule covered has no statuses', async () => {
  const missingRepo = await awsFails(server, ADMIN, ['ecr', 'describe-image-replication-status', '--repository-name', 'nowhere/app', '--image-id', 'imageTag=v1']);
  assert.equal(missingRepo.errorCode, 'RepositoryNotFoundException');
  await pushImage(server.baseUrl, 'plain/app', buildImage({ layers: 1, layerBytes: 1000 }), 'v1');
  const missingImage = await awsFails(server, ADMIN, ['ecr', 'describe-image-replication-status', '--repository-name', 'plain/app', '--image-id', 'imageTag=v2']);
  assert.equal(missingImage.errorCode, 'ImageNotFoundException');
  const status = await awsOk(server, ADMIN, ['ecr', 'describe-image-replication-status', '--repository-name', 'plain/app', '--image-id', 'imageTag=v1']);
  assert.equal(status.json.repositoryName, 'plain/app');
  assert.equal(status.json.imageId.imageTag, 'v1');
  assert.match(status.json.imageId.imageDigest, /^sha256:/);
  assert.deepEqual(status.json.replicationStatuses, []);
});

test('access: each operation is its own IAM action', async () => {
  const reader = await userWithPolicy('replication-reader', ['ecr:DescribeRegistry', 'ecr:DescribeImageReplicationStatus']);
  await awsOk(server, reader, ['ecr', 'describe-registry']);
  const denied = await awsFails(server, reader, config([]));
  assert.equal(denied.errorCode, 'AccessDeniedException');
  assert.match(denied.stderr, /ecr:PutReplicationConfiguration/);
  const backfill = await signedFetch(server, reader, { service: 'ecr', ...ecrRequest('BerthReplicationBackfill', { dryRun: true }) });
  assert.equal(backfill.status, 400);
  assert.match(await backfill.text(), /AccessDeniedException.*ecr:BerthReplicationBackfill/s);
  const admin = await signedFetch(server, ADMIN, { service: 'ecr', ...ecrRequest('BerthReplicationBackfill', { dryRun: true }) });
  assert.equal(admin.status, 200);
  assert.deepEqual(await admin.json(), { dryRun: true, repositories: 0, images: 0, queued: 0, alreadyKnown: 0, retried: 0 });
});

test('the data plane: a replication is asked as ecr:ReplicateImage, and a malformed replication header is refused', async () => {
  const pusher = await userWithPolicy('plain-pusher', ['ecr:*']);
  await userWithPolicy('no-replicate', ['ecr:GetAuthorizationToken']);
  const url = `${server.baseUrl}/v2/replicated/app/blobs/uploads/`;
  const header = `account=${A}; region=eu-west-1`;
  const ok = await fetch(url, { method: 'POST', headers: { authorization: basicAuthorization(pusher.accessKeyId, pusher.secretAccessKey), 'x-berth-replication': header } });
  assert.equal(ok.status, 202, 'ecr:* includes ecr:ReplicateImage');

  const iam = iamClient(server, ADMIN);
  const key = (await iam.send(new CreateAccessKeyCommand({ UserName: 'no-replicate' }))).AccessKey!;
  const refused = await fetch(url, { method: 'POST', headers: { authorization: basicAuthorization(key.AccessKeyId!, key.SecretAccessKey!), 'x-berth-replication': header } });
  assert.equal(refused.status, 403);
  assert.match(await refused.text(), /ecr:ReplicateImage/);

  const malformed = await fetch(url, { method: 'POST', headers: { authorization: basicAuthorization(pusher.accessKeyId, pusher.secretAccessKey), 'x-berth-replication': 'from us' } });
  assert.equal(malformed.status, 400);
  const body = (await malformed.json()) as { errors: Array<{ code: string; message: string }> };
  assert.equal(body.errors[0]?.code, 'UNSUPPORTED');
  assert.match(body.errors[0]!.message, /account=<12-digit account id>; region=<region>/);
});
