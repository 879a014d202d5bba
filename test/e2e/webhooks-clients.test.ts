import assert from 'node:assert/strict';
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { ADMIN } from '../support/auth.ts';
import { awsOk, requireAwsCli } from '../support/aws.ts';
import { buildRealImage, writeOciLayout } from '../support/layout.ts';
import { repoName, waitFor } from '../support/oci.ts';
import { berth, runBerth, startServer, type TestServer } from '../support/server.ts';
import { requireTools, toolSandbox, type ToolSandbox } from '../support/tools.ts';
import { startWebhookReceiver, type WebhookReceiver } from '../support/webhook-receiver.ts';

/**
 * What a webhook receiver sees of real clients' work (issue 12): skopeo and podman push, the AWS
 * CLI deletes, a lifecycle policy expires; every event the log has for the repository arrives,
 * signed, once after deduplication by id, in the log's order, in the documented shape.
 */

let server: TestServer;
let tools: ToolSandbox;
let hook: WebhookReceiver;
const A = ADMIN.accountId;

before(async () => {
  requireAwsCli();
  server = await startServer({ env: { BERTH_REPOSITORIES_CREATE_ON_PUSH: 'false', BERTH_EVENTS_POLL_INTERVAL_MS: '100' } });
  tools = await toolSandbox();
  await tools.login(`127.0.0.1:${server.port}`, ADMIN.accessKeyId, ADMIN.secretAccessKey);
  hook = await startWebhookReceiver();
});
after(async () => {
  await hook?.close();
  await tools?.close();
  await server?.close();
});

test('skopeo and podman pushes, AWS CLI deletions and a lifecycle expiry all reach a subscribed receiver, once each and in order', async (t) => {
  if (!requireTools(t, 'skopeo', 'podman')) return;
  const name = repoName('hooked');
  const sub = (await berth(server, ['events', 'add', '--url', hook.url, '--pattern', JSON.stringify({ detail: { 'repository-name': [name] } })])) as { id: string; secret: string };
  hook.secret = sub.secret;
  await awsOk(server, ADMIN, ['ecr', 'create-repository', '--repository-name', name]);
  const host = `127.0.0.1:${server.port}`;

  // skopeo pushes v1 and v3, podman then pushes v2 (the newest).
  const one = buildRealImage({ layers: [[{ name: 'one.txt', content: Buffer.from('one') }]] });
  const two = buildRealImage({ layers: [[{ name: 'two.txt', content: Buffer.from('two') }]] });
  const three = buildRealImage({ layers: [[{ name: 'three.txt', content: Buffer.from('three') }]] });
  const layout = await tools.mkdir('layout');
  await writeOciLayout(layout, [{ tag: 'v1', content: one }, { tag: 'v2', content: two }, { tag: 'v3', content: three }]);
  for (const tag of ['v1', 'v3']) await tools.skopeo(['copy', '--quiet', '--preserve-digests', '--dest-tls-verify=false', `oci:${layout}:${tag}`, `docker://${host}/${name}:${tag}`]);
  const imageId = (await tools.podman(['pull', '--quiet', `oci:${layout}:v2`])).stdout.trim();
  const ref = `${host}/${name}:v2`;
  await tools.podman(['tag', imageId, ref]);
  const digestFile = path.join(await tools.mkdir('podman-digest'), 'digest');
  await tools.podman(['push', '--quiet', '--tls-verify=false', '--digestfile', digestFile, ref]);
  const podmanDigest = (await readFile(digestFile, 'utf8')).trim();

  // The AWS CLI deletes v1 (its last tag, so the image goes too); a lifecycle policy that keeps
  // the newest image then expires v3.
  await awsOk(server, ADMIN, ['ecr', 'batch-delete-image', '--repository-name', name, '--image-ids', 'imageTag=v1']);
  const rules = { rules: [{ rulePriority: 1, selection: { tagStatus: 'any', countType: 'imageCountMoreThan', countNumber: 1 }, action: { type: 'expire' } }] };
  const file = path.join(server.dataDir, 'hooked-lifecycle.json');
  await writeFile(file, JSON.stringify(rules));
  await awsOk(server, ADMIN, ['ecr', 'put-lifecycle-policy', '--repository-name', name, '--lifecycle-policy-text', `file://${file}`]);
  await runBerth(server, ['lifecycle', 'run', '--account', A, '--repository', name]);

  const logged = (await runBerth(server, ['events', 'tail', '--account', A, '--repository', name]))
    .split('\n')
    .filter(Boolean)
    .map((line) => (JSON.parse(line) as { event: { id: string; 'detail-type': string; detail: Record<string, unknown> } }).event);
  const rows = logged.map((e) => [e['detail-type'], e.detail['action-type'], e.detail['image-tag'] ?? (e.detail['image-tags'] as string[] | undefined)?.join(',') ?? '']);
  assert.deepEqual(rows, [
    ['Berth Repository Action', 'CREATE', ''],
    ['ECR Image Action', 'PUSH', 'v1'],
    ['ECR Image Action', 'PUSH', 'v3'],
    ['ECR Image Action', 'PUSH', 'v2'],
    ['ECR Image Action', 'DELETE', 'v1'],
    ['ECR Image Action', 'DELETE', ''],
    ['Berth Repository Action', 'POLICY_CHANGE', ''],
    ['Berth Lifecycle Policy Action', 'EXPIRE', 'v3'],
  ]);
  await waitFor(async () => logged.every((e) => hook.deliveredIds().includes(e.id)), { what: 'every event of the repository to be delivered' });
  assert.deepEqual(hook.deliveredIds(), logged.map((e) => e.id), 'each once after deduplication, in the log\'s order');
  for (const d of hook.received) assert.ok(d.verified.ok, `signed: ${JSON.stringify(d.verified)}`);
  const pushed = hook.received.map((d) => d.event!).filter((e) => e.detail['action-type'] === 'PUSH');
  assert.deepEqual(pushed.map((e) => e.detail['image-digest']), [one.digest, three.digest, podmanDigest]);
  assert.ok(pushed.every((e) => e.source === 'aws.ecr' && e.account === A && typeof e.detail['manifest-media-type'] === 'string'));
  await berth(server, ['events', 'remove', '--id', sub.id]);
});
