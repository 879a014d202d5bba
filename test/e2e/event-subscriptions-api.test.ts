import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { CreateAccessKeyCommand, CreateUserCommand, PutUserPolicyCommand } from '@aws-sdk/client-iam';
import { ADMIN } from '../support/auth.ts';
import { ecrRequest, iamClient, signedFetch, type AwsCredentials } from '../support/aws.ts';
import { buildImage, pushImage, repoName, waitFor } from '../support/oci.ts';
import { berth, runBerth, startServer, type TestServer } from '../support/server.ts';
import { startWebhookReceiver, type WebhookReceiver } from '../support/webhook-receiver.ts';

/**
 * Berth's event subscription operations (docs/ecr-api.md, "Berth's event subscription
 * operations"): webhook subscriptions of the caller's account through signed API calls, as the
 * console makes them, against a real server delivering to real receivers that verify every
 * signature. Retries are made fast by configuration so that failures settle quickly.
 */

let server: TestServer;
const A = ADMIN.accountId;
const B = '444455556666';
let adminB: AwsCredentials;
const receivers: WebhookReceiver[] = [];
/** A subscription of the configuration naming account A, disabled so that it delivers nothing. */
const CONFIGURED = { id: 'ops', url: 'http://127.0.0.1:9/never', account: A, secret: 'configured-secret-0123456789', enabled: false };

before(async () => {
  server = await startServer({
    env: { BERTH_EVENTS_POLL_INTERVAL_MS: '100', BERTH_EVENTS_RETRY_BASE_MS: '50', BERTH_EVENTS_RETRY_MAX_MS: '200', BERTH_EVENTS_WEBHOOKS: JSON.stringify([CONFIGURED]) },
  });
  const created = await berth(server, ['account', 'create', '--account-id', B]);
  adminB = { accessKeyId: created.accessKeyId, secretAccessKey: created.secretAccessKey };
});
after(async () => {
  for (const r of receivers) await r.close();
  if (server) assert.deepEqual(server.logs.filter((l) => typeof l['status'] === 'number' && l['status'] >= 500), [], 'no 5xx answers');
  await server?.close();
});

async function receiver(secret?: string): Promise<WebhookReceiver> {
  const r = await startWebhookReceiver(secret === undefined ? {} : { secret });
  receivers.push(r);
  return r;
}

interface Subscription {
  subscriptionId: string;
  url: string;
  eventPattern?: string;
  headerNames: string[];
  timeoutSeconds: number;
  maxAttempts: number;
  createdAt: number;
  disabled: boolean;
  cursor: number;
  lag: number;
  deadLetterCount: number;
}

interface Delivery {
  eventId: string;
  seq: number;
  detailType: string;
  time: number;
  repositoryName?: string;
  status: 'DELIVERED' | 'PENDING' | 'FAILED';
  attempts?: number;
  lastError?: string;
}

/** A signed ECR call; the status, the parsed body and its text. */
async function call(creds: AwsCredentials, operation: string, input: Record<string, unknown> = {}): Promise<{ status: number; body: any; text: string }> {
  const res = await signedFetch(server, creds, { service: 'ecr', ...ecrRequest(operation, input) });
  const text = await res.text();
  return { status: res.status, body: text ? JSON.parse(text) : {}, text };
}

async function ok(creds: AwsCredentials, operation: string, input: Record<string, unknown> = {}): Promise<any> {
  const out = await call(creds, operation, input);
  assert.equal(out.status, 200, `${operation}: ${out.text}`);
  return out.body;
}

/** The error's message, after checking its type. */
async function fails(creds: AwsCredentials, operation: string, input: Record<string, unknown>, type: string): Promise<string> {
  const out = await call(creds, operation, input);
  assert.equal(out.status, 400, `${operation}: ${out.text}`);
  assert.equal(out.body.__type, type, `${operation}: ${out.text}`);
  return out.body.message as string;
}

async function create(creds: AwsCredentials, input: Record<string, unknown>): Promise<{ subscription: Subscription; secret?: string }> {
  return ok(creds, 'BerthCreateEventSubscription', input);
}

async function describe(creds: AwsCredentials = ADMIN): Promise<Subscription[]> {
  return (await ok(creds, 'BerthDescribeEventSubscriptions')).subscriptions;
}

async function deliveries(subscriptionId: string, maxResults?: number): Promise<Delivery[]> {
  return (await ok(ADMIN, 'BerthListEventDeliveries', { subscriptionId, ...(maxResults ? { maxResults } : {}) })).deliveries;
}

/** Pushes to the prefix's repositories, and nothing else, as one pattern. */
function pushesUnder(prefix: string): string {
  return JSON.stringify({ 'detail-type': ['ECR Image Action'], detail: { 'action-type': ['PUSH'], 'repository-name': [{ prefix: `${prefix}/` }] } });
}

/** The ids of the log's events matching the pattern, oldest first, from `berth events tail`. */
async function logged(pattern: string): Promise<string[]> {
  const out = await runBerth(server, ['events', 'tail', '--pattern', pattern]);
  return out.split('\n').filter(Boolean).map((line) => (JSON.parse(line) as { event: { id: string } }).event.id);
}

async function userWithPolicy(name: string, actions: string[]): Promise<AwsCredentials> {
  const iam = iamClient(server, ADMIN);
  await iam.send(new CreateUserCommand({ UserName: name }));
  await iam.send(new PutUserPolicyCommand({ UserName: name, PolicyName: 'p', PolicyDocument: JSON.stringify({ Version: '2012-10-17', Statement: [{ Effect: 'Allow', Action: actions, Resource: '*' }] }) }));
  const key = (await iam.send(new CreateAccessKeyCommand({ UserName: name }))).AccessKey!;
  return { accessKeyId: key.AccessKeyId!, secretAccessKey: key.SecretAccessKey! };
}

test('create, describe, disable, enable and delete; the secret is returned once and header values never', async () => {
  const hook = await receiver();
  const pattern = pushesUnder(repoName('crud'));
  const made = await create(ADMIN, { url: hook.url, eventPattern: `  ${pattern}\n`, headers: { Authorization: 'Bearer hush-header-value', 'X-Team': 'registry' }, timeoutSeconds: 5, maxAttempts: 3 });
  assert.match(made.secret ?? '', /^whsec_[A-Za-z0-9_-]{32}$/, 'a generated secret, returned once');
  const sub = made.subscription;
  assert.deepEqual(
    { url: sub.url, eventPattern: sub.eventPattern, headerNames: sub.headerNames, timeoutSeconds: sub.timeoutSeconds, maxAttempts: sub.maxAttempts, disabled: sub.disabled, lag: sub.lag, deadLetterCount: sub.deadLetterCount },
    { url: hook.url, eventPattern: pattern, headerNames: ['Authorization', 'X-Team'], timeoutSeconds: 5, maxAttempts: 3, disabled: false, lag: 0, deadLetterCount: 0 },
  );
  assert.match(sub.subscriptionId, /^[0-9a-f-]{36}$/);
  assert.ok(Math.abs(sub.createdAt * 1000 - Date.now()) < 60_000, 'created now');
  assert.equal(typeof sub.cursor, 'number');

  const given = await create(ADMIN, { url: hook.url, secret: 'a-secret-of-my-own-choosing' });
  assert.equal(given.secret, undefined, 'a secret given is not returned');
  assert.equal(given.subscription.eventPattern, undefined, 'every event');
  assert.deepEqual({ timeoutSeconds: given.subscription.timeoutSeconds, maxAttempts: given.subscription.maxAttempts }, { timeoutSeconds: 10, maxAttempts: 10 });

  // Describe: both, oldest first; no secret, no header value, anywhere in the answer.
  const described = await ok(ADMIN, 'BerthDescribeEventSubscriptions');
  const mine = (described.subscriptions as Subscription[]).filter((s) => [sub.subscriptionId, given.subscription.subscriptionId].includes(s.subscriptionId));
  assert.deepEqual(mine.map((s) => s.subscriptionId), [sub.subscriptionId, given.subscription.subscriptionId]);
  assert.deepEqual(mine[0], { ...sub, cursor: mine[0]!.cursor });
  const text = JSON.stringify(described);
  for (const secret of [made.secret!, 'a-secret-of-my-own-choosing', 'hush-header-value']) assert.ok(!text.includes(secret), `Describe never shows ${secret}`);
  // The operator sees the same subscription, for account A.
  const listed = ((await berth(server, ['events', 'list'])) as { id: string; accountId: string | null; headers: string[] }[]).find((s) => s.id === sub.subscriptionId);
  assert.deepEqual({ accountId: listed?.accountId, headers: listed?.headers }, { accountId: A, headers: ['Authorization', 'X-Team'] });

  // Pages.
  const first = await ok(ADMIN, 'BerthDescribeEventSubscriptions', { maxResults: 1 });
  assert.equal(first.subscriptions.length, 1);
  assert.equal(typeof first.nextToken, 'string');
  const second = await ok(ADMIN, 'BerthDescribeEventSubscriptions', { maxResults: 1, nextToken: first.nextToken });
  assert.notEqual(second.subscriptions[0].subscriptionId, first.subscriptions[0].subscriptionId);
  assert.match(await fails(ADMIN, 'BerthDescribeEventSubscriptions', { nextToken: 'bm90IG91cnM' }, 'InvalidParameterException'), /nextToken/);

  // Disable, then enable.
  const disabled = await ok(ADMIN, 'BerthUpdateEventSubscription', { subscriptionId: sub.subscriptionId, disabled: true });
  assert.equal(disabled.subscription.disabled, true);
  assert.equal((await describe()).find((s) => s.subscriptionId === sub.subscriptionId)?.disabled, true);
  const enabled = await ok(ADMIN, 'BerthUpdateEventSubscription', { subscriptionId: sub.subscriptionId, disabled: false });
  assert.equal(enabled.subscription.disabled, false);

  // Delete: gone for every operation after.
  const deleted = await ok(ADMIN, 'BerthDeleteEventSubscription', { subscriptionId: sub.subscriptionId });
  assert.equal(deleted.subscription.subscriptionId, sub.subscriptionId);
  assert.ok(!(await describe()).some((s) => s.subscriptionId === sub.subscriptionId));
  const gone = await fails(ADMIN, 'BerthDeleteEventSubscription', { subscriptionId: sub.subscriptionId }, 'EventSubscriptionNotFoundException');
  assert.equal(gone, `The event subscription with id '${sub.subscriptionId}' does not exist in the registry with id '${A}'`);
  await fails(ADMIN, 'BerthUpdateEventSubscription', { subscriptionId: sub.subscriptionId, disabled: true }, 'EventSubscriptionNotFoundException');
  await fails(ADMIN, 'BerthListEventDeliveries', { subscriptionId: sub.subscriptionId }, 'EventSubscriptionNotFoundException');
  assert.ok(!((await berth(server, ['events', 'list'])) as { id: string }[]).some((s) => s.id === sub.subscriptionId), 'gone for the operator too');
  await ok(ADMIN, 'BerthDeleteEventSubscription', { subscriptionId: given.subscription.subscriptionId });
});

test('deliveries: pushes after the subscription reach the receiver and are DELIVERED; one the receiver has not taken yet is PENDING', async () => {
  const hook = await receiver();
  const prefix = repoName('hooked');
  const pattern = pushesUnder(prefix);
  // Before the subscription: never delivered, and not listed.
  await pushImage(server.baseUrl, `${prefix}/app`, buildImage({ layers: 1 }), 'v0');
  const made = await create(ADMIN, { url: hook.url, eventPattern: pattern, timeoutSeconds: 1, maxAttempts: 100 });
  hook.secret = made.secret!;
  const id = made.subscription.subscriptionId;
  assert.deepEqual(await deliveries(id), [], 'nothing since it was made');

  await pushImage(server.baseUrl, `${prefix}/app`, buildImage({ layers: 1 }), 'v1');
  await pushImage(server.baseUrl, `${prefix}/web`, buildImage({ layers: 1 }), 'v1');
  await pushImage(server.baseUrl, repoName('elsewhere'), buildImage({ layers: 1 }), 'v1');
  const events = await logged(pattern);
  assert.equal(events.length, 3, 'the log has the three pushes under the prefix');
  const after = events.slice(1);

  const listed = await waitFor(
    async () => {
      const d = await deliveries(id);
      return d.length === 2 && d.every((x) => x.status === 'DELIVERED') && d;
    },
    { what: 'both pushes to be DELIVERED' },
  );
  assert.deepEqual(listed.map((d) => d.eventId), [...after].reverse(), 'newest first, and only those after the subscription');
  assert.deepEqual(hook.deliveredIds(), after, 'the receiver got them, signed, in order');
  assert.ok(hook.received.every((d) => d.verified.ok));
  assert.deepEqual(listed.map((d) => [d.detailType, d.repositoryName]), [['ECR Image Action', `${prefix}/web`], ['ECR Image Action', `${prefix}/app`]]);
  assert.ok(listed[0]!.seq > listed[1]!.seq);
  assert.ok(listed.every((d) => d.attempts === undefined && d.lastError === undefined));
  assert.ok(Math.abs(listed[0]!.time * 1000 - Date.now()) < 60_000);
  assert.deepEqual((await deliveries(id, 1)).map((d) => d.eventId), [after[1]], 'maxResults');
  const shown = await waitFor(async () => (await describe()).find((s) => s.subscriptionId === id && s.cursor >= listed[0]!.seq), { what: 'the cursor to be recorded' });
  assert.equal(shown.lag, 0);

  // A receiver that stops answering: the next push is retried (1 s timeouts, 100 attempts), PENDING meanwhile.
  hook.answer = 'hang';
  await pushImage(server.baseUrl, `${prefix}/app`, buildImage({ layers: 1 }), 'v2');
  const [pending] = await waitFor(
    async () => {
      const d = await deliveries(id);
      return d.length === 3 && hook.received.length > after.length && d;
    },
    { what: 'the third push to be tried' },
  );
  assert.equal(pending!.status, 'PENDING');
  assert.deepEqual((await deliveries(id)).map((d) => d.status), ['PENDING', 'DELIVERED', 'DELIVERED']);
  assert.equal((await describe()).find((s) => s.subscriptionId === id)?.lag, 1, 'the lag counts it');
  hook.answer = 204;
  await waitFor(async () => (await deliveries(id)).every((d) => d.status === 'DELIVERED'), { what: 'the pending push to be delivered once the receiver answers' });
  assert.ok(hook.deliveredIds().includes(pending!.eventId));
  await ok(ADMIN, 'BerthDeleteEventSubscription', { subscriptionId: id });
});

test('deliveries: a receiver that refuses past maxAttempts makes the event FAILED, with the attempts and the status only', async () => {
  // The receiver checks signatures with another secret: it refuses every delivery with 400 and a reason in the body.
  const hook = await receiver('the-receivers-own-secret');
  const prefix = repoName('refused');
  const made = await create(ADMIN, { url: hook.url, eventPattern: pushesUnder(prefix), secret: 'not-the-receivers-secret', maxAttempts: 2, timeoutSeconds: 2 });
  const id = made.subscription.subscriptionId;
  await pushImage(server.baseUrl, `${prefix}/app`, buildImage({ layers: 1 }), 'v1');
  const [failed] = await waitFor(
    async () => {
      const d = await deliveries(id);
      return d.length === 1 && d[0]!.status === 'FAILED' && d;
    },
    { what: 'the push to fail for good' },
  );
  assert.deepEqual({ attempts: failed!.attempts, lastError: failed!.lastError, repositoryName: failed!.repositoryName }, { attempts: 2, lastError: 'HTTP 400', repositoryName: `${prefix}/app` });
  assert.equal(hook.received.length, 2, 'tried twice');
  assert.ok(hook.received.every((d) => d.status === 400 && !d.verified.ok));
  // The operator sees the receiver's reason; the API only its status.
  const letters = (await berth(server, ['events', 'deliveries', '--id', id])) as { eventId: string; lastError: string }[];
  assert.equal(letters[0]!.eventId, failed!.eventId);
  assert.match(letters[0]!.lastError, /^HTTP 400: ./);
  const shown = (await describe()).find((s) => s.subscriptionId === id)!;
  assert.deepEqual({ deadLetterCount: shown.deadLetterCount, lag: shown.lag }, { deadLetterCount: 1, lag: 0 });

  // Redelivered by the operator once the receiver takes it: DELIVERED.
  hook.secret = 'not-the-receivers-secret';
  await berth(server, ['events', 'redeliver', '--id', id]);
  assert.equal((await deliveries(id))[0]!.status, 'DELIVERED');
  await ok(ADMIN, 'BerthDeleteEventSubscription', { subscriptionId: id });
});

test('each account sees only its own subscriptions; operator-wide ones are nobody’s, configured ones are shown but not changed', async () => {
  const hook = await receiver();
  const ofA = (await create(ADMIN, { url: hook.url, eventPattern: pushesUnder(repoName('a')) })).subscription.subscriptionId;
  const ofB = (await create(adminB, { url: hook.url, eventPattern: pushesUnder(repoName('b')) })).subscription.subscriptionId;
  const everyone = (await berth(server, ['events', 'add', '--url', hook.url, '--pattern', pushesUnder(repoName('all'))])) as { id: string };
  const byOperatorForA = (await berth(server, ['events', 'add', '--account', A, '--url', hook.url, '--pattern', pushesUnder(repoName('op')), '--max-attempts', '4'])) as { id: string };

  const seenByA = (await describe(ADMIN)).map((s) => s.subscriptionId);
  const seenByB = (await describe(adminB)).map((s) => s.subscriptionId);
  assert.ok(seenByA.includes(ofA) && seenByA.includes(byOperatorForA.id), 'A sees its own, those the operator made for A included');
  assert.ok(seenByA.includes('config:ops'), 'and those of the configuration that name A');
  assert.ok(!seenByA.includes(ofB) && !seenByA.includes(everyone.id), 'never B’s nor the operator-wide one');
  assert.deepEqual(seenByB, [ofB]);
  assert.equal((await describe(ADMIN)).find((s) => s.subscriptionId === byOperatorForA.id)?.maxAttempts, 4);

  for (const [creds, id] of [[adminB, ofA], [ADMIN, ofB], [ADMIN, everyone.id], [adminB, everyone.id]] as const) {
    await fails(creds, 'BerthListEventDeliveries', { subscriptionId: id }, 'EventSubscriptionNotFoundException');
    await fails(creds, 'BerthUpdateEventSubscription', { subscriptionId: id, disabled: true }, 'EventSubscriptionNotFoundException');
    await fails(creds, 'BerthDeleteEventSubscription', { subscriptionId: id }, 'EventSubscriptionNotFoundException');
  }
  assert.equal(((await berth(server, ['events', 'list'])) as { id: string; disabled: boolean }[]).find((s) => s.id === ofA)?.disabled, false, 'B changed nothing');

  // The configuration's: listed with its deliveries (A's events since the server started, all
  // waiting: it is disabled), changed only in the configuration.
  await pushImage(server.baseUrl, repoName('configured'), buildImage({ layers: 1 }), 'v1');
  const configured = await deliveries('config:ops', 100);
  assert.ok(configured.length > 0 && configured.every((d) => d.status === 'PENDING'), JSON.stringify(configured));
  assert.match(await fails(ADMIN, 'BerthDeleteEventSubscription', { subscriptionId: 'config:ops' }, 'InvalidParameterException'), /managed by the server's configuration/);
  assert.match(await fails(ADMIN, 'BerthUpdateEventSubscription', { subscriptionId: 'config:ops', disabled: false }, 'InvalidParameterException'), /managed by the server's configuration/);

  for (const id of [ofA, byOperatorForA.id]) await ok(ADMIN, 'BerthDeleteEventSubscription', { subscriptionId: id });
  await ok(adminB, 'BerthDeleteEventSubscription', { subscriptionId: ofB });
  await berth(server, ['events', 'remove', '--id', everyone.id]);
});

test('IAM: each operation is its own action on the registry', async () => {
  const reader = await userWithPolicy('subscription-reader', ['ecr:BerthDescribeEventSubscriptions', 'ecr:BerthListEventDeliveries']);
  const hook = await receiver();
  const id = (await create(ADMIN, { url: hook.url })).subscription.subscriptionId;
  assert.ok((await describe(reader)).some((s) => s.subscriptionId === id));
  assert.deepEqual((await ok(reader, 'BerthListEventDeliveries', { subscriptionId: id })).deliveries, []);
  const denied = [
    ['BerthCreateEventSubscription', { url: hook.url }],
    ['BerthUpdateEventSubscription', { subscriptionId: id, disabled: true }],
    ['BerthDeleteEventSubscription', { subscriptionId: id }],
  ] as const;
  for (const [operation, input] of denied) {
    const message = await fails(reader, operation, input, 'AccessDeniedException');
    assert.match(message, new RegExp(`ecr:${operation}`));
  }
  const nobody = await userWithPolicy('subscription-nobody', ['ecr:DescribeRepositories']);
  assert.match(await fails(nobody, 'BerthDescribeEventSubscriptions', {}, 'AccessDeniedException'), /ecr:BerthDescribeEventSubscriptions/);
  assert.match(await fails(nobody, 'BerthListEventDeliveries', { subscriptionId: id }, 'AccessDeniedException'), /ecr:BerthListEventDeliveries/, 'asked before the id is looked up');
  assert.equal((await describe()).find((s) => s.subscriptionId === id)?.disabled, false, 'nothing was changed');
  await ok(ADMIN, 'BerthDeleteEventSubscription', { subscriptionId: id });
});

test('bad input is refused with InvalidParameterException naming the member, as berth events add refuses it; 25 per account', async () => {
  const url = 'http://127.0.0.1:9/hook';
  const refused = async (input: Record<string, unknown>, reason: RegExp) => assert.match(await fails(ADMIN, 'BerthCreateEventSubscription', input, 'InvalidParameterException'), reason);
  await refused({ url: 'ftp://example.com/' }, /^Invalid parameter at 'url' failed to satisfy constraint: 'url must be an http:\/\/ or https:\/\/ URL/);
  await refused({ url, eventPattern: '{"detail":{"action-type":"PUSH"}}' }, /^Invalid parameter at 'eventPattern' .*action-type/);
  await refused({ url, eventPattern: 'not json' }, /'eventPattern'.*not valid JSON/);
  await refused({ url, headers: { 'Berth-Signature': 'x' } }, /'headers'.*Berth-Signature: Berth sets this header itself/);
  await refused({ url, headers: { 'bad name': 'x' } }, /'headers'.*not a header name/);
  await refused({ url, headers: { 'X-Emoji': '😀' } }, /'headers'.*Latin-1/);
  await refused({ url, secret: 'short' }, /'secret'/);
  await refused({ url, maxAttempts: 0 }, /'maxAttempts'/);
  await refused({ url, timeoutSeconds: 301 }, /'timeoutSeconds'/);
  await refused({}, /'url'/);
  assert.match(await fails(ADMIN, 'BerthListEventDeliveries', { subscriptionId: 'x', maxResults: 101 }, 'InvalidParameterException'), /'maxResults'/);
  assert.match(await fails(ADMIN, 'BerthUpdateEventSubscription', { subscriptionId: 'x' }, 'InvalidParameterException'), /'disabled'/);
  // The secret is sensitive: a refused one is not echoed back.
  const tooLong = 's'.repeat(300);
  assert.ok(!(await fails(ADMIN, 'BerthCreateEventSubscription', { url, secret: tooLong }, 'InvalidParameterException')).includes(tooLong));
  // The CLI refuses the same things in the same words, with its options' names.
  await assert.rejects(runBerth(server, ['events', 'add', '--url', url, '--header', 'X-Emoji: 😀']), (err: { stderr: string }) => /--header X-Emoji: .*Latin-1/.test(err.stderr));

  // An account may have 25.
  const made: string[] = [];
  const room = 25 - (await describe(adminB)).length;
  for (let i = 0; i < room; i++) made.push((await create(adminB, { url, eventPattern: pushesUnder(`none-${i}`) })).subscription.subscriptionId);
  assert.match(await fails(adminB, 'BerthCreateEventSubscription', { url }, 'LimitExceededException'), /at most 25 event subscriptions/);
  for (const id of made) await ok(adminB, 'BerthDeleteEventSubscription', { subscriptionId: id });
  assert.equal((await describe(adminB)).length, 25 - room);
});
