import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { CreateAccessKeyCommand, CreateUserCommand, PutUserPolicyCommand } from '@aws-sdk/client-iam';
import { ADMIN, basicAuthorization } from '../support/auth.ts';
import { awsFails, awsOk, iamClient, requireAwsCli } from '../support/aws.ts';
import { buildRealImage, writeOciLayout } from '../support/layout.ts';
import { MT, buildImage, pushImage, pushManifest, repoName } from '../support/oci.ts';
import { runBerth, startServer, type TestServer } from '../support/server.ts';
import { requireTools, toolSandbox, type ToolSandbox } from '../support/tools.ts';

/**
 * The event log (docs/adr/0012-event-outbox.md) as a user's changes write it: skopeo and plain
 * HTTP pushes, tag moves, the AWS CLI's deletions and policy changes, a lifecycle run and a
 * repository deletion each leave exactly their events, in order, in ECR's shapes; a refused push
 * leaves none. Read back with `berth events tail`, as an operator would.
 */

let server: TestServer;
let tools: ToolSandbox;
const A = ADMIN.accountId;

before(async () => {
  requireAwsCli();
  server = await startServer({ env: { BERTH_REPOSITORIES_CREATE_ON_PUSH: 'false' } });
  tools = await toolSandbox();
  await tools.login(`127.0.0.1:${server.port}`, ADMIN.accessKeyId, ADMIN.secretAccessKey);
});
after(async () => {
  await tools?.close();
  await server?.close();
});

interface Logged {
  seq: number;
  event: { id: string; 'detail-type': string; source: string; account: string; region: string; time: string; resources: string[]; detail: Record<string, unknown> };
}

async function tail(...args: string[]): Promise<Logged[]> {
  const out = await runBerth(server, ['events', 'tail', ...args]);
  return out.split('\n').filter(Boolean).map((line) => JSON.parse(line) as Logged);
}

/** The repository's events after `after`, as [detail-type, action-type, tag, digest] rows. */
async function rows(repository: string, after = 0): Promise<string[][]> {
  return (await tail('--account', A, '--repository', repository, '--after', String(after))).map(({ event }) => [
    event['detail-type'],
    String(event.detail['action-type']),
    String(event.detail['image-tag'] ?? (event.detail['image-tags'] as string[] | undefined)?.join(',') ?? ''),
    String(event.detail['image-digest'] ?? ''),
  ]);
}

test('pushes, a tag move, deletions, policy changes, a lifecycle expiry and a repository deletion each write their events, in order', async (t) => {
  if (!requireTools(t, 'skopeo')) return;
  const name = repoName('events');
  await awsOk(server, ADMIN, ['ecr', 'create-repository', '--repository-name', name]);

  // skopeo pushes a real image as v1.
  const real = buildRealImage({ layers: [[{ name: 'hello.txt', content: Buffer.from('hello') }]] });
  const layout = await tools.mkdir('layout');
  await writeOciLayout(layout, [{ tag: 'v1', content: real }]);
  await tools.skopeo(['copy', '--quiet', '--preserve-digests', '--dest-tls-verify=false', `oci:${layout}:v1`, `docker://127.0.0.1:${server.port}/${name}:v1`]);
  // Plain HTTP: another image as v2, then v2 moved onto a third image; the same push again changes nothing.
  const second = buildImage({ layers: 1 });
  const third = buildImage({ layers: 1, docker: true });
  await pushImage(server.baseUrl, name, second, 'v2');
  await pushImage(server.baseUrl, name, third, 'v2');
  assert.equal((await pushManifest(server.baseUrl, name, 'v2', third.manifest, third.mediaType)).status, 201);

  let log = await rows(name);
  assert.deepEqual(log, [
    ['Berth Repository Action', 'CREATE', '', ''],
    ['ECR Image Action', 'PUSH', 'v1', real.digest],
    ['ECR Image Action', 'PUSH', 'v2', second.digest],
    ['ECR Image Action', 'PUSH', 'v2', third.digest],
    ['Berth Image Action', 'TAG_MOVE', 'v2', third.digest],
  ]);
  const all = await tail('--account', A, '--repository', name);
  const push = all[1]!.event;
  assert.deepEqual(
    { source: push.source, account: push.account, region: push.region, resources: push.resources },
    { source: 'aws.ecr', account: A, region: 'us-east-1', resources: [] },
  );
  assert.equal(push.detail['result'], 'SUCCESS');
  assert.equal(push.detail['repository-name'], name);
  assert.equal(push.detail['manifest-media-type'], MT.ociManifest);
  assert.equal(push.detail['artifact-media-type'], 'application/vnd.oci.image.config.v1+json');
  assert.match(push.time, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
  assert.equal(all[4]!.event.detail['previous-image-digest'], second.digest);
  assert.equal(all[3]!.event.detail['manifest-media-type'], MT.dockerManifest);
  assert.equal(new Set(all.map((e) => e.event.id)).size, all.length, 'every event has its own id');
  assert.ok(all.every((e, i) => i === 0 || e.seq > all[i - 1]!.seq), 'in sequence order');

  // A refused push (the tag is immutable now) and a failed deletion write nothing.
  const mark = all.at(-1)!.seq;
  await awsOk(server, ADMIN, ['ecr', 'put-image-tag-mutability', '--repository-name', name, '--image-tag-mutability', 'IMMUTABLE']);
  assert.equal((await pushManifest(server.baseUrl, name, 'v1', second.manifest, second.mediaType)).status, 400);
  await awsFails(server, ADMIN, ['ecr', 'delete-repository', '--repository-name', name]);
  assert.deepEqual(await rows(name, mark), [], 'nothing for what was refused');
  await awsOk(server, ADMIN, ['ecr', 'put-image-tag-mutability', '--repository-name', name, '--image-tag-mutability', 'MUTABLE']);

  // The AWS CLI: a deletion by tag (the image's last tag, so the image goes too), a policy set and deleted.
  await awsOk(server, ADMIN, ['ecr', 'batch-delete-image', '--repository-name', name, '--image-ids', 'imageTag=v1']);
  const policy = JSON.stringify({ Version: '2012-10-17', Statement: [{ Effect: 'Allow', Principal: { AWS: 'arn:aws:iam::444455556666:root' }, Action: 'ecr:BatchGetImage' }] });
  await awsOk(server, ADMIN, ['ecr', 'set-repository-policy', '--repository-name', name, '--policy-text', policy]);
  await awsOk(server, ADMIN, ['ecr', 'delete-repository-policy', '--repository-name', name]);
  log = await rows(name, mark);
  assert.deepEqual(log, [
    ['ECR Image Action', 'DELETE', 'v1', real.digest],
    ['ECR Image Action', 'DELETE', '', real.digest],
    ['Berth Repository Action', 'POLICY_CHANGE', '', ''],
    ['Berth Repository Action', 'POLICY_CHANGE', '', ''],
  ]);
  const changes = (await tail('--account', A, '--repository', name, '--after', String(mark))).slice(2).map((e) => [e.event.detail['policy-type'], e.event.detail['change-type']]);
  assert.deepEqual(changes, [['REPOSITORY_POLICY', 'PUT'], ['REPOSITORY_POLICY', 'DELETE']]);

  // A lifecycle policy keeps one image: the run's expiry is an EXPIRE event, not a client's DELETE.
  const mark2 = (await tail('--account', A, '--repository', name)).at(-1)!.seq;
  const rules = { rules: [{ rulePriority: 1, selection: { tagStatus: 'any', countType: 'imageCountMoreThan', countNumber: 1 }, action: { type: 'expire' } }] };
  const file = path.join(server.dataDir, 'lifecycle.json');
  await writeFile(file, JSON.stringify(rules));
  await awsOk(server, ADMIN, ['ecr', 'put-lifecycle-policy', '--repository-name', name, '--lifecycle-policy-text', `file://${file}`]);
  await runBerth(server, ['lifecycle', 'run', '--account', A, '--repository', name]);
  log = await rows(name, mark2);
  assert.deepEqual(log, [
    ['Berth Repository Action', 'POLICY_CHANGE', '', ''],
    ['Berth Lifecycle Policy Action', 'EXPIRE', '', second.digest],
  ]);

  await awsOk(server, ADMIN, ['ecr', 'delete-repository', '--repository-name', name, '--force']);
  assert.deepEqual((await rows(name)).at(-1), ['Berth Repository Action', 'DELETE', '', '']);
});

test('berth events tail filters with an EventBridge pattern, and refuses a bad one with the reason', async () => {
  const name = repoName('events-pattern');
  await awsOk(server, ADMIN, ['ecr', 'create-repository', '--repository-name', name]);
  await pushImage(server.baseUrl, name, buildImage({ layers: 1 }), 'prod-1');
  await pushImage(server.baseUrl, name, buildImage({ layers: 1 }), 'dev-1');
  const pattern = JSON.stringify({ 'detail-type': ['ECR Image Action'], detail: { 'action-type': ['PUSH'], 'repository-name': [name], 'image-tag': [{ prefix: 'prod-' }] } });
  const matched = await tail('--pattern', pattern);
  assert.deepEqual(matched.map((e) => e.event.detail['image-tag']), ['prod-1']);
  await assert.rejects(runBerth(server, ['events', 'tail', '--pattern', '{"detail":{"action-type":"PUSH"}}']), (err: { stderr: string }) => /--pattern: .*detail.*action-type/s.test(err.stderr));
});

test('GET /v2/_events pages through the log with n, last and Link, and shows each caller only the repositories it may describe', async () => {
  const mine = repoName('events-feed');
  const other = repoName('events-other');
  for (const name of [mine, other]) await awsOk(server, ADMIN, ['ecr', 'create-repository', '--repository-name', name]);
  for (const tag of ['a', 'b', 'c']) await pushImage(server.baseUrl, mine, buildImage({ layers: 1 }), tag);
  await pushImage(server.baseUrl, other, buildImage({ layers: 1 }), 'x');

  const feed = async (auth: string, query: string) => {
    const res = await fetch(`${server.baseUrl}/v2/_events?${query}`, { headers: { authorization: auth } });
    assert.equal(res.status, 200, await res.clone().text());
    return { link: res.headers.get('link'), body: (await res.json()) as { events: Logged[] } };
  };
  const admin = basicAuthorization(ADMIN.accessKeyId, ADMIN.secretAccessKey);
  // Two at a time through the repository's four events (CREATE and three pushes), following Link.
  const seen: string[] = [];
  let query = `n=2&repository=${encodeURIComponent(mine)}`;
  for (let page = 0; page < 5; page++) {
    const { link, body } = await feed(admin, query);
    seen.push(...body.events.map((e) => `${e.event.detail['action-type']}:${e.event.detail['image-tag'] ?? ''}`));
    if (!link) break;
    query = /<\/v2\/_events\?([^>]+)>; rel="next"/.exec(link)![1]!;
  }
  assert.deepEqual(seen, ['CREATE:', 'PUSH:a', 'PUSH:b', 'PUSH:c']);

  // A user allowed DescribeImages on `mine` only sees its events and none of `other`'s.
  const iam = iamClient(server, ADMIN);
  const user = `feed-${Math.random().toString(36).slice(2, 8)}`;
  await iam.send(new CreateUserCommand({ UserName: user }));
  await iam.send(new PutUserPolicyCommand({ UserName: user, PolicyName: 'p', PolicyDocument: JSON.stringify({ Version: '2012-10-17', Statement: [{ Effect: 'Allow', Action: 'ecr:DescribeImages', Resource: `arn:aws:ecr:us-east-1:${A}:repository/${mine}` }] }) }));
  const key = (await iam.send(new CreateAccessKeyCommand({ UserName: user }))).AccessKey!;
  const asUser = basicAuthorization(key.AccessKeyId!, key.SecretAccessKey!);
  const visible = new Set((await feed(asUser, 'n=1000')).body.events.map((e) => e.event.detail['repository-name']));
  assert.deepEqual([...visible], [mine]);
  const none = await fetch(`${server.baseUrl}/v2/_events?n=abc`, { headers: { authorization: admin } });
  assert.equal(none.status, 400);
  assert.equal(((await none.json()) as { errors: { code: string }[] }).errors[0]!.code, 'PAGINATION_NUMBER_INVALID');
});

test('registry policy changes, through the AWS CLI and the berth command, are Berth Registry Action events', async () => {
  const before = await tail('--account', A);
  const mark = before.at(-1)?.seq ?? 0;
  const policy = JSON.stringify({ Version: '2012-10-17', Statement: [{ Effect: 'Allow', Principal: { AWS: 'arn:aws:iam::444455556666:root' }, Action: ['ecr:CreateRepository', 'ecr:ReplicateImage'], Resource: `arn:aws:ecr:us-east-1:${A}:repository/*` }] });
  await awsOk(server, ADMIN, ['ecr', 'put-registry-policy', '--policy-text', policy]);
  await awsOk(server, ADMIN, ['ecr', 'delete-registry-policy']);
  await awsOk(server, ADMIN, ['ecr', 'put-registry-policy', '--policy-text', policy]);
  await runBerth(server, ['registry-policy', 'delete', '--account', A]);
  const changes = (await tail('--account', A, '--after', String(mark)))
    .filter((e) => e.event['detail-type'] === 'Berth Registry Action')
    .map((e) => [e.event.detail['action-type'], e.event.detail['policy-type'], e.event.detail['change-type'], e.event.resources.length]);
  assert.deepEqual(changes, [
    ['POLICY_CHANGE', 'REGISTRY_POLICY', 'PUT', 0],
    ['POLICY_CHANGE', 'REGISTRY_POLICY', 'DELETE', 0],
    ['POLICY_CHANGE', 'REGISTRY_POLICY', 'PUT', 0],
    ['POLICY_CHANGE', 'REGISTRY_POLICY', 'DELETE', 0],
  ]);
});
