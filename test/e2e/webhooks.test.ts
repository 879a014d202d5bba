import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { ADMIN } from '../support/auth.ts';
import { buildImage, pushImage, repoName, waitFor } from '../support/oci.ts';
import { berth, runBerth, startServer, type TestServer } from '../support/server.ts';
import { startWebhookReceiver, type WebhookReceiver } from '../support/webhook-receiver.ts';

/**
 * Webhook subscriptions (docs/webhooks.md) against real receivers: HTTP servers in the test that
 * verify every signature as a receiver should. Subscriptions are managed with `berth events`, as
 * an operator would, and the server delivers in the background while the test pushes with plain
 * HTTP. Retries are made fast by configuration so that failures settle quickly.
 */

let server: TestServer;
const A = ADMIN.accountId;
const receivers: WebhookReceiver[] = [];

before(async () => {
  server = await startServer({ env: { BERTH_EVENTS_POLL_INTERVAL_MS: '100', BERTH_EVENTS_RETRY_BASE_MS: '50', BERTH_EVENTS_RETRY_MAX_MS: '400' } });
});
after(async () => {
  for (const r of receivers) await r.close();
  await server?.close();
});

async function receiver(secret?: string): Promise<WebhookReceiver> {
  const r = await startWebhookReceiver(secret === undefined ? {} : { secret });
  receivers.push(r);
  return r;
}

interface Added {
  id: string;
  url: string;
  accountId: string | null;
  pattern: unknown;
  headers: string[];
  timeoutSeconds: number;
  maxAttempts: number;
  secret?: string;
}

async function add(args: string[]): Promise<Added> {
  return (await berth(server, ['events', 'add', ...args])) as Added;
}

/** The ids of the log's events matching the pattern, in log order, from `berth events tail`. */
async function logged(pattern: object): Promise<{ id: string; repository: string }[]> {
  const out = await runBerth(server, ['events', 'tail', '--pattern', JSON.stringify(pattern)]);
  return out
    .split('\n')
    .filter(Boolean)
    .map((line) => JSON.parse(line) as { event: { id: string; detail: { 'repository-name': string } } })
    .map(({ event }) => ({ id: event.id, repository: event.detail['repository-name'] }));
}

/** Each repository's event ids in the order the receiver first got them (duplicates dropped, as a receiver deduplicates by id). */
function perRepository(r: WebhookReceiver): Map<string, string[]> {
  const byId = new Map(r.received.filter((d) => d.event).map((d) => [d.event!.id, d.event!]));
  const out = new Map<string, string[]>();
  for (const id of r.deliveredIds()) {
    const repository = String(byId.get(id)!.detail['repository-name']);
    out.set(repository, [...(out.get(repository) ?? []), id]);
  }
  return out;
}

function groupByRepository(events: { id: string; repository: string }[]): Map<string, string[]> {
  const out = new Map<string, string[]>();
  for (const e of events) out.set(e.repository, [...(out.get(e.repository) ?? []), e.id]);
  return out;
}

function failuresLogged(subscription: string): Record<string, unknown>[] {
  return server.logs.filter((l) => l['msg'] === 'webhook delivery failed' && l['subscription'] === subscription);
}

test('a subscription to every push to prod/* receives exactly those, signed, in order per repository', async () => {
  const hook = await receiver();
  const pattern = { 'detail-type': ['ECR Image Action'], detail: { 'action-type': ['PUSH'], 'repository-name': [{ prefix: 'prod/' }] } };
  const sub = await add(['--url', hook.url, '--pattern', JSON.stringify(pattern), '--header', 'X-Team: registry', '--header', 'Authorization: Bearer receiver-token']);
  assert.ok(sub.secret && sub.secret.length >= 32, 'a generated secret, printed once');
  assert.deepEqual({ url: sub.url, accountId: sub.accountId, pattern: sub.pattern, headers: sub.headers, timeoutSeconds: sub.timeoutSeconds, maxAttempts: sub.maxAttempts }, { url: hook.url, accountId: null, pattern, headers: ['X-Team', 'Authorization'], timeoutSeconds: 10, maxAttempts: 10 });
  hook.secret = sub.secret;

  const listed = (await berth(server, ['events', 'list'])) as (Added & { cursor: number; deadLetters: number })[];
  const mine = listed.find((s) => s.id === sub.id);
  assert.ok(mine, 'listed');
  assert.equal(mine.secret, undefined, 'the secret is never shown again');
  assert.ok(!JSON.stringify(listed).includes('receiver-token'), 'nor header values');

  // Two prod repositories and a dev one, pushed to in turns.
  const prodA = repoName('prod');
  const prodC = repoName('prod');
  const devB = repoName('dev');
  for (let i = 1; i <= 3; i++) {
    await pushImage(server.baseUrl, prodA, buildImage({ layers: 1 }), `v${i}`);
    await pushImage(server.baseUrl, devB, buildImage({ layers: 1 }), `v${i}`);
    if (i <= 2) await pushImage(server.baseUrl, prodC, buildImage({ layers: 1 }), `v${i}`);
  }

  const expected = (await logged(pattern)).filter((e) => e.repository === prodA || e.repository === prodC);
  assert.equal(expected.length, 5, 'the log has the five prod pushes');
  await waitFor(async () => expected.every((e) => hook.deliveredIds().includes(e.id)), { what: 'every prod push to be delivered' });

  for (const d of hook.received) {
    assert.ok(d.verified.ok, `signed with the subscription's secret: ${JSON.stringify(d.verified)}`);
    assert.equal(d.headers['content-type'], 'application/json');
    assert.equal(d.headers['x-team'], 'registry');
    assert.equal(d.headers['authorization'], 'Bearer receiver-token');
    assert.equal(d.headers['berth-event-id'], d.event?.id);
    assert.equal(d.headers['berth-timestamp'], /t=(\d+)/.exec(String(d.headers['berth-signature']))?.[1]);
  }
  const events = hook.received.map((d) => d.event!);
  assert.ok(events.every((e) => String(e.detail['repository-name']).startsWith('prod/')), 'nothing from dev/');
  assert.ok(!events.some((e) => e.detail['repository-name'] === devB));
  const first = events.find((e) => e.id === expected[0]!.id)!;
  assert.deepEqual(
    { 'detail-type': first['detail-type'], source: first.source, account: first.account, region: first.region, resources: first.resources, action: first.detail['action-type'], tag: first.detail['image-tag'], result: first.detail['result'] },
    { 'detail-type': 'ECR Image Action', source: 'aws.ecr', account: A, region: 'us-east-1', resources: [], action: 'PUSH', tag: 'v1', result: 'SUCCESS' },
  );
  assert.deepEqual(new Set(hook.deliveredIds()), new Set(expected.map((e) => e.id)), 'each prod push once, after deduplication by id');
  assert.deepEqual(perRepository(hook), groupByRepository(expected), 'in log order within each repository');

  // berth events test: a signed test event, sent now, and the receiver's answer printed.
  const tested = (await berth(server, ['events', 'test', '--id', sub.id])) as { delivered: boolean; status: number; eventId: string };
  assert.deepEqual({ delivered: tested.delivered, status: tested.status }, { delivered: true, status: 204 });
  const testEvent = hook.received.find((d) => d.event?.id === tested.eventId);
  assert.ok(testEvent?.verified.ok, 'the test event is signed');
  assert.equal(testEvent.event!['detail-type'], 'Berth Test Event');

  await berth(server, ['events', 'remove', '--id', sub.id]);
  assert.ok(!((await berth(server, ['events', 'list'])) as Added[]).some((s) => s.id === sub.id), 'removed');
  await assert.rejects(runBerth(server, ['events', 'test', '--id', sub.id]), (err: { stderr: string }) => /does not exist/.test(err.stderr));
});

test('berth events add refuses a bad pattern, URL or header with the reason', async () => {
  const refused = async (args: string[], reason: RegExp) =>
    assert.rejects(runBerth(server, ['events', 'add', ...args]), (err: { stderr: string }) => reason.test(err.stderr));
  await refused(['--url', 'http://127.0.0.1:1/', '--pattern', '{"detail":{"action-type":"PUSH"}}'], /--pattern: .*action-type/s);
  await refused(['--url', 'ftp://example.com/'], /--url must be an http/);
  await refused(['--url', 'http://127.0.0.1:1/', '--header', 'Berth-Signature: x'], /sets this header itself/);
  await refused(['--url', 'http://127.0.0.1:1/', '--max-attempts', '0'], /--max-attempts/);
});

test('a receiver that is down for a while gets everything once it is back, in order', async () => {
  const secret = 'down-for-a-while-secret';
  const hook = await receiver(secret);
  const prefix = repoName('down');
  const pattern = { 'detail-type': ['ECR Image Action'], detail: { 'repository-name': [{ prefix: `${prefix}/` }] } };
  const sub = await add(['--url', hook.url, '--pattern', JSON.stringify(pattern), '--secret', secret, '--max-attempts', '100']);
  assert.equal(sub.secret, undefined, 'a secret given is not printed back');
  await hook.stop();

  const one = `${prefix}/one`;
  const two = `${prefix}/two`;
  for (let i = 1; i <= 3; i++) {
    await pushImage(server.baseUrl, one, buildImage({ layers: 1 }), `v${i}`);
    await pushImage(server.baseUrl, two, buildImage({ layers: 1 }), `v${i}`);
  }
  // Pushes went through while the receiver was down; the deliveries are being retried.
  await waitFor(async () => failuresLogged(sub.id).length >= 3, { what: 'deliveries to the stopped receiver to fail and be retried' });
  assert.deepEqual(hook.deliveredIds(), []);

  await hook.start();
  const expected = await logged(pattern);
  assert.equal(expected.length, 6);
  await waitFor(async () => expected.every((e) => hook.deliveredIds().includes(e.id)), { what: 'everything to arrive once the receiver is back' });
  assert.ok(hook.received.every((d) => d.verified.ok));
  assert.deepEqual(perRepository(hook), groupByRepository(expected));
  const failure = failuresLogged(sub.id)[0]!;
  assert.equal(failure['eventId'], expected[0]!.id, 'failures are logged with the event');
  assert.equal(failure['attempt'], 1);
  assert.equal(typeof failure['error'], 'string');
  assert.deepEqual((await berth(server, ['events', 'deliveries', '--id', sub.id])) as unknown[], [], 'nothing was given up');
  await berth(server, ['events', 'remove', '--id', sub.id]);
});

test('a receiver answering 500 gets dead letters, listed by berth events deliveries, and redelivered once it is fixed', async () => {
  const secret = 'answers-500-forever-secret';
  const hook = await receiver(secret);
  hook.answer = 500;
  const prefix = repoName('dead');
  const pattern = { detail: { 'repository-name': [{ prefix: `${prefix}/` }], 'action-type': ['PUSH'] } };
  const sub = await add(['--url', hook.url, '--pattern', JSON.stringify(pattern), '--secret', secret, '--max-attempts', '2']);

  const repository = `${prefix}/app`;
  for (let i = 1; i <= 3; i++) await pushImage(server.baseUrl, repository, buildImage({ layers: 1 }), `v${i}`);
  const expected = await logged(pattern);
  assert.equal(expected.length, 3);

  type Letter = { seq: number; eventId: string; detailType: string; repository: string; attempts: number; lastError: string };
  const letters = await waitFor(
    async () => {
      const listed = (await berth(server, ['events', 'deliveries', '--id', sub.id])) as Letter[];
      return listed.length === 3 && listed;
    },
    { what: 'three dead letters' },
  );
  assert.deepEqual(letters.map((l) => l.eventId), expected.map((e) => e.id), 'one per event, in log order');
  for (const l of letters) {
    assert.equal(l.attempts, 2);
    assert.equal(l.repository, repository);
    assert.equal(l.detailType, 'ECR Image Action');
    assert.match(l.lastError, /^HTTP 500/);
  }
  assert.equal(hook.received.length, 6, 'each event tried twice');
  assert.deepEqual(hook.deliveredIds(), []);
  const logged500 = failuresLogged(sub.id);
  assert.equal(logged500.length, 6);
  assert.ok(logged500.every((l) => l['status'] === 500 && typeof l['eventId'] === 'string' && typeof l['attempt'] === 'number'));
  assert.ok(!server.logs.some((l) => JSON.stringify(l).includes(secret)), 'the secret is never logged');
  const listed = ((await berth(server, ['events', 'list'])) as (Added & { deadLetters: number; lag: number })[]).find((s) => s.id === sub.id)!;
  assert.equal(listed.deadLetters, 3);

  // Still failing: redeliver reports it, and keeps the dead letters.
  await assert.rejects(runBerth(server, ['events', 'redeliver', '--id', sub.id, '--seq', String(letters[0]!.seq)]), (err: { stdout: string }) => /"delivered": false/.test(err.stdout));
  assert.equal(((await berth(server, ['events', 'deliveries', '--id', sub.id])) as Letter[])[0]!.attempts, 3);

  hook.answer = 200;
  const redelivered = (await berth(server, ['events', 'redeliver', '--id', sub.id])) as { eventId: string; delivered: boolean; status: number }[];
  assert.deepEqual(redelivered.map((r) => [r.eventId, r.delivered, r.status]), expected.map((e) => [e.id, true, 200]));
  assert.deepEqual(hook.deliveredIds(), expected.map((e) => e.id), 'delivered, signed, in order');
  assert.deepEqual(await berth(server, ['events', 'deliveries', '--id', sub.id]), []);
  await berth(server, ['events', 'remove', '--id', sub.id]);
});

test('a subscription whose receiver never answers does not delay a healthy one', async () => {
  const stuck = await receiver('stuck-receiver-secret');
  stuck.answer = 'hang';
  const healthy = await receiver('healthy-receiver-secret');
  const prefix = repoName('iso');
  const pattern = JSON.stringify({ 'detail-type': ['ECR Image Action'], detail: { 'repository-name': [{ prefix: `${prefix}/` }] } });
  const stuckSub = await add(['--url', stuck.url, '--pattern', pattern, '--secret', stuck.secret, '--max-attempts', '100', '--timeout-seconds', '1']);
  const healthySub = await add(['--url', healthy.url, '--pattern', pattern, '--secret', healthy.secret]);

  for (let i = 1; i <= 4; i++) await pushImage(server.baseUrl, `${prefix}/app`, buildImage({ layers: 1 }), `v${i}`);
  const expected = await logged(JSON.parse(pattern) as object);
  assert.equal(expected.length, 4);
  await waitFor(async () => expected.every((e) => healthy.deliveredIds().includes(e.id)), { what: 'the healthy receiver to get everything' });
  assert.deepEqual(healthy.deliveredIds(), expected.map((e) => e.id));

  // Meanwhile the stuck one is still on its first event, timing out and retrying.
  await waitFor(async () => failuresLogged(stuckSub.id).length >= 2, { what: 'the stuck subscription to time out twice' });
  assert.deepEqual([...new Set(stuck.received.map((d) => d.event?.id))], [expected[0]!.id], 'only ever the first event: in order, nothing skipped');
  assert.match(String(failuresLogged(stuckSub.id)[0]!['error']), /no answer within 1000 ms/);
  assert.deepEqual(stuck.deliveredIds(), []);

  await berth(server, ['events', 'remove', '--id', stuckSub.id]);
  await berth(server, ['events', 'remove', '--id', healthySub.id]);
});
