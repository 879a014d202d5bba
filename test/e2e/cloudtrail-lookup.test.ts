import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { ADMIN, basicAuthorization } from '../support/auth.ts';
import { aws, awsFails, awsOk, requireAwsCli, signedFetch, type AwsCredentials } from '../support/aws.ts';
import { buildImage, waitFor, type BuiltImage } from '../support/oci.ts';
import { berth, runBerth, startServer, type TestServer } from '../support/server.ts';

/**
 * CloudTrail's LookupEvents over the audit log, with the real AWS CLI (`aws cloudtrail
 * lookup-events`) and SigV4-signed requests: the events of pushes and deletes under CloudTrail's
 * names, each lookup attribute and several at once, time ranges, pages, another account's events
 * kept out, and IAM's cloudtrail:LookupEvents. The tests share one server and run in order.
 */

const A = ADMIN.accountId;
const B = '444455556666';
const REGION = 'us-east-1';
const run = randomBytes(3).toString('hex');
const WEB = `ct-${run}/web`;
const API = `ct-${run}/api`;
const repoArn = (name: string, account: string = A) => `arn:aws:ecr:${REGION}:${account}:repository/${name}`;

interface LookupEvent {
  EventId: string;
  EventName: string;
  ReadOnly: string;
  AccessKeyId?: string;
  EventTime: string;
  EventSource: string;
  Username?: string;
  Resources: { ResourceType?: string; ResourceName: string }[];
  CloudTrailEvent: string;
}

interface State {
  server: TestServer;
  alice: AwsCredentials;
  bob: AwsCredentials;
  auditor: AwsCredentials;
  nobody: AwsCredentials;
  b: AwsCredentials;
  /** Whole seconds (the CLI sends times in seconds) around bob's deletion, and nothing else bob did. */
  deleteWindow: { start: string; end: string; startMs: number };
}

const s = {} as State;

/** `aws cloudtrail lookup-events ARGS` (every page, as the CLI pages by itself); resolves the events. */
async function lookup(creds: AwsCredentials, args: string[] = []): Promise<LookupEvent[]> {
  const out = await awsOk(s.server, creds, ['cloudtrail', 'lookup-events', ...args]);
  return out.json.Events as LookupEvent[];
}

/** --lookup-attributes in the CLI's shorthand, one per key and value. */
function attrs(pairs: Record<string, string>): string[] {
  return ['--lookup-attributes', ...Object.entries(pairs).map(([k, v]) => `AttributeKey=${k},AttributeValue=${v}`)];
}

/** LookupEvents as a signed request: the status and the parsed body. */
async function lookupRaw(creds: AwsCredentials, input: Record<string, unknown>): Promise<{ status: number; body: any }> {
  const res = await signedFetch(s.server, creds, {
    service: 'cloudtrail',
    headers: { 'content-type': 'application/x-amz-json-1.1', 'x-amz-target': 'com.amazonaws.cloudtrail.v20131101.CloudTrail_20131101.LookupEvents' },
    body: JSON.stringify(input),
  });
  return { status: res.status, body: await res.json() };
}

async function createUser(name: string, policy: { managed?: string; inline?: object }): Promise<AwsCredentials> {
  await awsOk(s.server, ADMIN, ['iam', 'create-user', '--user-name', name]);
  if (policy.managed) await awsOk(s.server, ADMIN, ['iam', 'attach-user-policy', '--user-name', name, '--policy-arn', policy.managed]);
  if (policy.inline) await awsOk(s.server, ADMIN, ['iam', 'put-user-policy', '--user-name', name, '--policy-name', 'p', '--policy-document', JSON.stringify(policy.inline)]);
  const key = (await awsOk(s.server, ADMIN, ['iam', 'create-access-key', '--user-name', name])).json.AccessKey;
  return { accessKeyId: key.AccessKeyId, secretAccessKey: key.SecretAccessKey };
}

/** Pushes an image over the data plane with an access key as Basic credentials (as a robot account). */
async function pushAs(creds: AwsCredentials, repository: string, image: BuiltImage, tag: string): Promise<void> {
  const authorization = basicAuthorization(creds.accessKeyId, creds.secretAccessKey);
  for (const b of [image.config, ...image.layers]) {
    const start = await fetch(`${s.server.baseUrl}/v2/${repository}/blobs/uploads/`, { method: 'POST', headers: { authorization } });
    assert.equal(start.status, 202, await start.text());
    const location = new URL(start.headers.get('location')!, s.server.baseUrl);
    location.searchParams.set('digest', b.digest);
    const put = await fetch(location, { method: 'PUT', body: b.bytes, headers: { authorization, 'content-type': 'application/octet-stream' } });
    assert.equal(put.status, 201, await put.text());
  }
  const res = await fetch(`${s.server.baseUrl}/v2/${repository}/manifests/${tag}`, { method: 'PUT', body: image.manifest, headers: { authorization, 'content-type': image.mediaType } });
  assert.equal(res.status, 201, await res.text());
}

const names = (events: LookupEvent[]) => events.map((e) => e.EventName);
const record = (e: LookupEvent) => JSON.parse(e.CloudTrailEvent) as Record<string, any>;

describe('CloudTrail LookupEvents over the audit log', () => {
  before(async () => {
    requireAwsCli();
    s.server = await startServer({ env: { BERTH_REPOSITORIES_CREATE_ON_PUSH: 'false' } });
    s.alice = await createUser('alice', { managed: 'arn:aws:iam::aws:policy/AmazonEC2ContainerRegistryPowerUser' });
    s.bob = await createUser('bob', { managed: 'arn:aws:iam::aws:policy/AmazonEC2ContainerRegistryFullAccess' });
    s.auditor = await createUser('auditor', { inline: { Version: '2012-10-17', Statement: [{ Effect: 'Allow', Action: 'cloudtrail:LookupEvents', Resource: '*' }] } });
    s.nobody = await createUser('nobody', { inline: { Version: '2012-10-17', Statement: [{ Effect: 'Allow', Action: 'ecr:*', Resource: '*' }, { Effect: 'Deny', Action: 'cloudtrail:*', Resource: '*' }] } });
    const created = await berth(s.server, ['account', 'create', '--account-id', B]);
    s.b = { accessKeyId: created.accessKeyId, secretAccessKey: created.secretAccessKey };

    await awsOk(s.server, ADMIN, ['ecr', 'create-repository', '--repository-name', WEB]);
    await awsOk(s.server, ADMIN, ['ecr', 'create-repository', '--repository-name', API]);
    await pushAs(s.alice, WEB, buildImage({ layers: 2 }), 'v1');
    await pushAs(s.bob, API, buildImage({ layers: 1 }), 'v1');
    const startMs = (Math.floor(Date.now() / 1000) + 1) * 1000;
    await waitFor(async () => Date.now() >= startMs, { what: 'the next second' });
    await awsOk(s.server, s.bob, ['ecr', 'batch-delete-image', '--repository-name', WEB, '--image-ids', 'imageTag=v1']);
    s.deleteWindow = { start: new Date(startMs).toISOString(), end: new Date(Math.ceil(Date.now() / 1000) * 1000).toISOString(), startMs };
    // Another account: a repository of the same name, created by its own "admin".
    await awsOk(s.server, s.b, ['ecr', 'create-repository', '--repository-name', WEB]);
  });
  after(() => s.server?.close());

  test('pushes and deletes appear under CloudTrail’s names, newest first, as this node’s requests end', async () => {
    const events = await lookup(ADMIN, attrs({ ResourceName: WEB }));
    // alice's push: two layers and a config (InitiateLayerUpload, CompleteLayerUpload each), the manifest.
    assert.deepEqual(names(events), [
      'BatchDeleteImage',
      'PutImage',
      ...Array.from({ length: 3 }, () => ['CompleteLayerUpload', 'InitiateLayerUpload']).flat(),
      'CreateRepository',
    ]);
    for (let i = 1; i < events.length; i++) assert.ok(Date.parse(events[i - 1]!.EventTime) >= Date.parse(events[i]!.EventTime), 'newest first');

    const [deleted, pushed] = events;
    assert.equal(deleted!.Username, 'bob');
    assert.equal(deleted!.AccessKeyId, s.bob.accessKeyId);
    assert.equal(deleted!.EventSource, 'ecr.amazonaws.com');
    assert.equal(deleted!.ReadOnly, 'false');
    assert.deepEqual(deleted!.Resources, [{ ResourceType: 'AWS::ECR::Repository', ResourceName: WEB }]);
    assert.equal(pushed!.Username, 'alice');
    assert.equal(pushed!.EventSource, 'ecr.amazonaws.com', 'the data plane’s push is ECR’s PutImage');
    assert.ok(Math.abs(Date.parse(pushed!.EventTime) - Date.now()) < 120_000);

    // CloudTrailEvent: the record as CloudTrail writes one.
    const r = record(deleted!);
    assert.equal(r['eventVersion'], '1.08');
    assert.equal(r['eventSource'], 'ecr.amazonaws.com');
    assert.equal(r['eventName'], 'BatchDeleteImage');
    assert.equal(r['eventID'], deleted!.EventId);
    assert.equal(r['awsRegion'], REGION);
    assert.equal(r['recipientAccountId'], A);
    assert.equal(r['readOnly'], false);
    assert.equal(r['eventType'], 'AwsApiCall');
    assert.deepEqual(r['userIdentity'], { type: 'IAMUser', arn: `arn:aws:iam::${A}:user/bob`, accountId: A, accessKeyId: s.bob.accessKeyId, userName: 'bob' });
    assert.deepEqual(r['resources'], [{ ARN: repoArn(WEB), accountId: A, type: 'AWS::ECR::Repository' }]);
    assert.equal(r['sourceIPAddress'], '127.0.0.1');
    assert.match(r['userAgent'], /^aws-cli\//u);
    assert.equal(r['decision'], 'allow');
    assert.equal(r['plane'], 'ecr');
    assert.equal(record(pushed!)['plane'], 'oci');

    // The same record, line for line, in `berth audit`.
    const lines = (await runBerth(s.server, ['audit', '--account', A])).trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
    assert.deepEqual(lines.find((l) => l['eventID'] === deleted!.EventId), r);
  });

  test('each lookup attribute filters; several match all at once; a time range bounds them', async () => {
    const alices = await lookup(ADMIN, attrs({ Username: 'alice' }));
    assert.ok(alices.length >= 7);
    assert.ok(alices.every((e) => e.Username === 'alice' && e.AccessKeyId === s.alice.accessKeyId));
    assert.deepEqual(await lookup(ADMIN, attrs({ AccessKeyId: s.alice.accessKeyId })), alices);

    const puts = await lookup(ADMIN, attrs({ EventName: 'PutImage' }));
    assert.deepEqual(puts.map((e) => [e.Username, e.Resources[0]?.ResourceName]), [['bob', API], ['alice', WEB]]);

    // By repository name or ARN alike.
    const byName = await lookup(ADMIN, attrs({ ResourceName: API }));
    assert.ok(byName.length > 0);
    assert.deepEqual(await lookup(ADMIN, attrs({ ResourceName: repoArn(API) })), byName);

    const iam = await lookup(ADMIN, attrs({ EventSource: 'iam.amazonaws.com' }));
    assert.ok(iam.every((e) => e.EventSource === 'iam.amazonaws.com'));
    assert.ok(iam.some((e) => e.EventName === 'CreateUser' && e.Resources[0]?.ResourceName === 'alice'));
    const users = await lookup(ADMIN, attrs({ ResourceType: 'AWS::IAM::User' }));
    assert.deepEqual(new Set(users.flatMap((e) => e.Resources.map((r) => r.ResourceName))), new Set(['alice', 'bob', 'auditor', 'nobody']));

    const reads = await lookup(ADMIN, attrs({ ReadOnly: 'true', Username: 'alice' }));
    const writes = await lookup(ADMIN, attrs({ ReadOnly: 'false', Username: 'alice' }));
    assert.ok(writes.length > 0 && reads.every((e) => e.ReadOnly === 'true') && writes.every((e) => e.ReadOnly === 'false'));
    assert.equal(reads.length + writes.length, alices.length);

    const [one] = await lookup(ADMIN, attrs({ EventId: puts[0]!.EventId }));
    assert.deepEqual(one, puts[0]);
    assert.deepEqual(await lookup(ADMIN, attrs({ EventId: 'not-an-id' })), []);

    // Several attributes (a Berth extension: AWS takes one): the user, the action and the repository.
    const both = await lookup(ADMIN, attrs({ Username: 'alice', EventName: 'PutImage', ResourceName: WEB }));
    assert.deepEqual(names(both), ['PutImage']);
    assert.deepEqual(await lookup(ADMIN, attrs({ Username: 'alice', ResourceName: API })), []);
    const twice = await awsFails(s.server, ADMIN, ['cloudtrail', 'lookup-events', ...attrs({ Username: 'alice' }), 'AttributeKey=Username,AttributeValue=bob']);
    assert.equal(twice.errorCode, 'InvalidLookupAttributesException');
    const unknown = await lookupRaw(ADMIN, { LookupAttributes: [{ AttributeKey: 'Region', AttributeValue: 'x' }] });
    assert.equal(unknown.body.__type, 'InvalidLookupAttributesException');
    assert.equal((await lookupRaw(ADMIN, { LookupAttributes: [{ AttributeKey: 'ReadOnly', AttributeValue: 'yes' }] })).body.__type, 'InvalidLookupAttributesException');

    // A time range (both ends inclusive): bob's deletion and nothing before or after it.
    const windowed = await lookup(ADMIN, [...attrs({ Username: 'bob' }), '--start-time', s.deleteWindow.start, '--end-time', s.deleteWindow.end]);
    assert.deepEqual(names(windowed), ['BatchDeleteImage']);
    // To the millisecond in a signed request (the CLI sends whole seconds): all of bob's events but the deletion.
    const before = await lookupRaw(ADMIN, { LookupAttributes: [{ AttributeKey: 'Username', AttributeValue: 'bob' }], EndTime: (s.deleteWindow.startMs - 1) / 1000 });
    assert.deepEqual(before.body.Events.map((e: LookupEvent) => e.EventId), (await lookup(ADMIN, attrs({ Username: 'bob' }))).slice(1).map((e) => e.EventId));
    const future = new Date(Date.now() + 3_600_000).toISOString();
    assert.deepEqual(await lookup(ADMIN, ['--start-time', future]), []);
    const backwards = await awsFails(s.server, ADMIN, ['cloudtrail', 'lookup-events', '--start-time', s.deleteWindow.end, '--end-time', s.deleteWindow.start]);
    assert.equal(backwards.errorCode, 'InvalidTimeRangeException');

    // Berth records no Insights events.
    assert.deepEqual(await lookup(ADMIN, ['--event-category', 'insight']), []);
    assert.equal((await lookupRaw(ADMIN, { EventCategory: 'management' })).body.__type, 'InvalidEventCategoryException');
  });

  test('pages hold every event once, newest first; NextToken is bound to its query; MaxResults is 1 to 50', async () => {
    const query = attrs({ EventSource: 'ecr.amazonaws.com' });
    const whole = await lookup(ADMIN, query);
    assert.ok(whole.length > 12, `${whole.length} ECR events`);
    assert.deepEqual(await lookup(ADMIN, [...query, '--page-size', '4']), whole, 'the CLI paging by 4 finds the same');

    // By hand: MaxResults 6 and each NextToken.
    const input = { LookupAttributes: [{ AttributeKey: 'EventSource', AttributeValue: 'ecr.amazonaws.com' }] };
    const pages: LookupEvent[][] = [];
    let token: string | undefined;
    let first: string | undefined;
    do {
      const { status, body } = await lookupRaw(ADMIN, { ...input, MaxResults: 6, ...(token ? { NextToken: token } : {}) });
      assert.equal(status, 200, JSON.stringify(body));
      pages.push(body.Events);
      token = body.NextToken;
      first ??= token;
    } while (token);
    assert.deepEqual(pages.flat().map((e) => e.EventId), whole.map((e) => e.EventId));
    assert.ok(pages.slice(0, -1).every((p) => p.length === 6) && pages.at(-1)!.length > 0, 'full pages, and no empty last page');
    const events = pages.flat();
    for (let i = 1; i < events.length; i++) {
      const [p, e] = [events[i - 1]!, events[i]!];
      assert.ok(p.EventTime > e.EventTime || (p.EventTime === e.EventTime && Number(p.EventId) > Number(e.EventId)), 'newest first');
    }
    const defaultPage = await lookupRaw(ADMIN, {});
    assert.equal(defaultPage.body.Events.length, 50, 'MaxResults is 50 by default');
    assert.ok(defaultPage.body.NextToken);

    const other = await lookupRaw(ADMIN, { LookupAttributes: [{ AttributeKey: 'Username', AttributeValue: 'alice' }], NextToken: first });
    assert.equal(other.body.__type, 'InvalidNextTokenException', 'a token of another query');
    assert.equal((await lookupRaw(ADMIN, { ...input, NextToken: 'bm90IGEgdG9rZW4' })).body.__type, 'InvalidNextTokenException');
    assert.equal((await lookupRaw(s.b, { ...input, NextToken: first })).body.__type, 'InvalidNextTokenException', 'another account’s token');
    for (const MaxResults of [0, 51]) {
      const { status, body } = await lookupRaw(ADMIN, { MaxResults });
      assert.equal(status, 400);
      assert.equal(body.__type, 'InvalidMaxResultsException', `MaxResults ${MaxResults}`);
    }
    const unsupported = await signedFetch(s.server, ADMIN, { service: 'cloudtrail', headers: { 'content-type': 'application/x-amz-json-1.1', 'x-amz-target': 'com.amazonaws.cloudtrail.v20131101.CloudTrail_20131101.DescribeTrails' }, body: '{}' });
    assert.equal(((await unsupported.json()) as { __type: string }).__type, 'UnknownOperationException');
  });

  test('another account’s events are invisible, and it sees its own', async () => {
    const bEvents = await lookup(s.b);
    assert.ok(bEvents.length > 0);
    for (const e of bEvents) assert.equal(record(e)['recipientAccountId'], B);
    assert.ok(bEvents.some((e) => e.EventName === 'CreateRepository' && e.Resources[0]?.ResourceName === WEB));
    assert.deepEqual(await lookup(s.b, attrs({ Username: 'alice' })), []);
    assert.deepEqual(await lookup(s.b, attrs({ EventName: 'PutImage' })), []);

    const created = bEvents.find((e) => e.EventName === 'CreateRepository')!;
    assert.deepEqual(await lookup(ADMIN, attrs({ AccessKeyId: s.b.accessKeyId })), []);
    assert.deepEqual(await lookup(ADMIN, attrs({ EventId: created.EventId })), []);
    assert.deepEqual(await lookup(ADMIN, attrs({ ResourceName: repoArn(WEB, B) })), [], 'another account’s ARN');
    assert.deepEqual(await lookup(s.b, attrs({ ResourceName: repoArn(WEB, B) })), (await lookup(s.b, attrs({ ResourceName: WEB }))));
  });

  test('cloudtrail:LookupEvents decides, and a refusal is itself an event', async () => {
    const denied = await awsFails(s.server, s.nobody, ['cloudtrail', 'lookup-events']);
    assert.equal(denied.errorCode, 'AccessDeniedException');
    assert.match(denied.stderr, /not authorized to perform: cloudtrail:LookupEvents on resource: \*/u);
    const raw = await lookupRaw(s.nobody, {});
    assert.equal(raw.status, 400);
    assert.equal(raw.body.__type, 'AccessDeniedException');

    // The auditor may look up and nothing else: it sees the account's events.
    const seen = await lookup(s.auditor, attrs({ EventName: 'PutImage' }));
    assert.equal(seen.length, 2);
    assert.equal((await aws(s.server, s.auditor, ['ecr', 'describe-images', '--repository-name', API])).errorCode, 'AccessDeniedException');

    const refusals = await lookup(ADMIN, attrs({ Username: 'nobody', EventName: 'LookupEvents' }));
    assert.equal(refusals.length, 2);
    const r = record(refusals[0]!);
    assert.equal(r['eventSource'], 'cloudtrail.amazonaws.com');
    assert.equal(r['errorCode'], 'AccessDenied');
    assert.equal(r['decision'], 'deny');
    assert.equal(refusals[0]!.ReadOnly, 'true');
  });
});
