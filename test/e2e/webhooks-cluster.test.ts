import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { promisify } from 'node:util';
import { backend, freshScaleoutStores, type StoreSet } from '../support/backend.ts';
import { startCluster, type TestCluster } from '../support/cluster.ts';
import { buildImage, pushImage, repoName, waitFor } from '../support/oci.ts';
import { repoRoot } from '../support/server.ts';
import { startWebhookReceiver, type WebhookReceiver } from '../support/webhook-receiver.ts';

/**
 * Webhooks in a three-node cluster on PostgreSQL (the scale-out backend): each subscription is
 * delivered by one node at a time, and when that node is SIGKILLed mid-stream another takes its
 * lease over and resumes at the first event not yet delivered, losing nothing and keeping each
 * repository's order. The lease is short here so that the takeover comes quickly.
 */

const skip = backend === 'scaleout' ? false : 'needs the shared metadata store of the scale-out backend (scripts/test-scaleout.ts)';
let stores: StoreSet | undefined;
let cluster: TestCluster | undefined;
let receiver: WebhookReceiver | undefined;
let env: Record<string, string> = {};

before(async () => {
  if (skip) return;
  stores = await freshScaleoutStores();
  env = { ...stores.env, BERTH_AUTH_SECRET_KEY: randomBytes(32).toString('base64') };
  cluster = await startCluster(3, {
    env: { ...env, BERTH_REPOSITORIES_CREATE_ON_PUSH: 'true', BERTH_EVENTS_POLL_INTERVAL_MS: '100', BERTH_EVENTS_LEASE_SECONDS: '2', BERTH_EVENTS_RETRY_BASE_MS: '50', BERTH_EVENTS_RETRY_MAX_MS: '400' },
  });
  receiver = await startWebhookReceiver({ secret: 'cluster-receiver-secret' });
});
after(async () => {
  await receiver?.close();
  await cluster?.close();
  await stores?.drop();
});

async function berth(args: string[]): Promise<any> {
  const { stdout } = await promisify(execFile)(path.join(repoRoot, 'bin', 'berth'), args, { cwd: repoRoot, env: { ...process.env, ...env } });
  return JSON.parse(stdout);
}

test('the node delivering a subscription is killed mid-stream; another resumes with nothing lost, in order', { skip }, async () => {
  const hook = receiver!;
  const c = cluster!;
  const prefix = repoName('cluster');
  const pattern = { 'detail-type': ['ECR Image Action'], detail: { 'repository-name': [{ prefix: `${prefix}/` }] } };
  const sub = await berth(['events', 'add', '--url', hook.url, '--pattern', JSON.stringify(pattern), '--secret', hook.secret, '--max-attempts', '100']);
  const repositories = [`${prefix}/one`, `${prefix}/two`];
  const push = async (from: number, to: number) => {
    for (let i = from; i <= to; i++) for (const r of repositories) await pushImage(c.baseUrl, r, buildImage({ layers: 1 }), `v${i}`);
  };

  await push(1, 2);
  await waitFor(async () => hook.deliveredIds().length === 4, { what: 'the first four deliveries' });
  // The receiver stops answering: the delivering node is caught with a request in flight.
  hook.answer = 'hang';
  await push(3, 4);
  await waitFor(async () => hook.received.some((d) => d.status === 0), { what: 'a delivery in flight' });
  const owner = await waitFor(async () => ((await berth(['events', 'list'])) as { id: string; deliveredBy: string | null }[]).find((s) => s.id === sub.id)?.deliveredBy ?? undefined, { what: 'a node to hold the lease' });
  const victim = c.nodes.findIndex((n) => owner.split(':')[1] === String(n.process.pid));
  assert.ok(victim >= 0, `the lease owner ${owner} is one of the nodes`);
  await c.kill(victim);
  hook.answer = 204;
  // More pushes, through the survivors.
  await push(5, 6);

  const { stdout } = await promisify(execFile)(path.join(repoRoot, 'bin', 'berth'), ['events', 'tail', '--pattern', JSON.stringify(pattern)], { cwd: repoRoot, env: { ...process.env, ...env } });
  const expected = stdout
    .split('\n')
    .filter(Boolean)
    .map((line) => JSON.parse(line) as { event: { id: string; detail: { 'repository-name': string } } })
    .map(({ event }) => ({ id: event.id, repository: event.detail['repository-name'] }));
  assert.equal(expected.length, 12);
  await waitFor(async () => expected.every((e) => hook.deliveredIds().includes(e.id)), { what: 'every event to be delivered after the takeover', timeoutMs: 120_000 });

  const delivered = hook.deliveredIds();
  assert.deepEqual(new Set(delivered), new Set(expected.map((e) => e.id)), 'nothing lost, nothing else');
  for (const r of repositories) {
    const ids = new Set(expected.filter((e) => e.repository === r).map((e) => e.id));
    assert.deepEqual(delivered.filter((id) => ids.has(id)), [...ids], `${r}: in order`);
  }
  assert.ok(hook.received.every((d) => d.verified.ok), 'every node signs with the shared secret');
  const now = ((await berth(['events', 'list'])) as { id: string; deliveredBy: string | null }[]).find((s) => s.id === sub.id)!;
  assert.notEqual(now.deliveredBy, owner, 'another node delivers it now');
  await berth(['events', 'remove', '--id', sub.id]);
});
