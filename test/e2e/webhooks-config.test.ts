import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { buildImage, pushImage, repoName, waitFor } from '../support/oci.ts';
import { berth, startServer, type TestServer } from '../support/server.ts';
import { startWebhookReceiver } from '../support/webhook-receiver.ts';

/**
 * Webhook subscriptions declared in the config file (`events.webhooks`, docs/webhooks.md): the
 * real server is started, and restarted on the same data directory, with config files that
 * declare, change and drop a subscription, while a real receiver verifies the signatures.
 */

const FAST = { BERTH_EVENTS_POLL_INTERVAL_MS: '100', BERTH_EVENTS_RETRY_BASE_MS: '50', BERTH_EVENTS_RETRY_MAX_MS: '400' };

interface Listed {
  id: string;
  url: string;
  pattern: unknown;
  headers: string[];
  maxAttempts: number;
  disabled: boolean;
  cursor: number;
  lag: number;
}

test('a subscription in the config file is delivered to, kept across changes, and removed with its entry', async (t) => {
  const dir = await mkdtemp(path.join(tmpdir(), 'berth-webhooks-config-'));
  const dataDir = path.join(dir, 'data');
  t.after(() => rm(dir, { recursive: true, force: true }));
  const secret = 'whsec_from-a-file-0123456789';
  const secretFile = path.join(dir, 'hook.secret');
  await writeFile(secretFile, `${secret}\n`, { mode: 0o600 });
  const first = await startWebhookReceiver({ secret });
  const second = await startWebhookReceiver({ secret });
  t.after(() => Promise.all([first.close(), second.close()]));

  const pattern = { 'detail-type': ['ECR Image Action'], detail: { 'action-type': ['PUSH'], 'repository-name': [{ prefix: 'cfg/' }] } };
  const configFile = path.join(dir, 'berth.json');
  const start = async (webhooks: unknown[]): Promise<TestServer> => {
    await writeFile(configFile, JSON.stringify({ events: { webhooks } }));
    return startServer({ dataDir, args: ['--config', configFile], env: FAST });
  };
  const entry = { id: 'ci', url: first.url, pattern, secretFile, headers: { 'X-Team': 'registry' }, maxAttempts: 3 };
  const list = async (server: TestServer) => (await berth(server, ['events', 'list'])) as Listed[];

  let server = await start([entry]);
  try {
    const listed = (await list(server)).find((s) => s.id === 'config:ci');
    assert.deepEqual(
      listed && { url: listed.url, pattern: listed.pattern, headers: listed.headers, maxAttempts: listed.maxAttempts, disabled: listed.disabled },
      { url: first.url, pattern, headers: ['X-Team'], maxAttempts: 3, disabled: false },
      'listed by berth events under its config: id',
    );

    const repository = repoName('cfg');
    await pushImage(server.baseUrl, repository, buildImage({ layers: 1 }), 'v1');
    await pushImage(server.baseUrl, repoName('other'), buildImage({ layers: 1 }), 'v1');
    await waitFor(async () => first.deliveredIds().length === 1, { what: 'the push to be delivered' });
    const delivery = first.received.find((d) => d.event?.id === first.deliveredIds()[0])!;
    assert.ok(delivery.verified.ok, `signed with the secret from secretFile: ${JSON.stringify(delivery.verified)}`);
    assert.equal(delivery.event?.detail['repository-name'], repository, 'the pattern applies');
    assert.equal(delivery.headers['x-team'], 'registry');

    await assert.rejects(berth(server, ['events', 'remove', '--id', 'config:ci']), (err: { stderr: string }) => {
      assert.match(err.stderr, /managed by the configuration.*events\.webhooks/);
      return true;
    });
    assert.ok((await list(server)).some((s) => s.id === 'config:ci'), 'still there after the refused remove');
    await waitFor(async () => (await list(server)).find((s) => s.id === 'config:ci')?.lag === 0, { what: 'the cursor to pass every event' });
  } finally {
    await server.close();
  }

  // The same id with another URL: the cursor stays where the first server left it.
  const cursorBefore = await (async () => {
    server = await start([{ ...entry, url: second.url }]);
    const listed = (await list(server)).find((s) => s.id === 'config:ci')!;
    assert.equal(listed.url, second.url, 'the change is applied');
    return listed.cursor;
  })();
  try {
    assert.ok(cursorBefore > 0, 'the cursor moved past the first events and was kept');
    const repository = repoName('cfg');
    await pushImage(server.baseUrl, repository, buildImage({ layers: 1 }), 'v1');
    await waitFor(async () => second.deliveredIds().length === 1, { what: 'the push to reach the new URL' });
    assert.equal(second.received.find((d) => d.event?.id === second.deliveredIds()[0])?.event?.detail['repository-name'], repository, 'only the new event: nothing before the cursor is sent again');
    assert.equal(first.deliveredIds().length, 1, 'the old URL gets nothing more');
  } finally {
    await server.close();
  }

  server = await start([]);
  try {
    assert.deepEqual((await list(server)).map((s) => s.id), [], 'the entry removed from the config is gone from the store');
  } finally {
    await server.close();
  }
});

test('a bad entry stops startup with a message naming the entry and the problem', async (t) => {
  const dir = await mkdtemp(path.join(tmpdir(), 'berth-webhooks-config-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const configFile = path.join(dir, 'berth.json');
  const webhooks = [
    { id: 'fine', url: 'http://127.0.0.1:9/hook', secret: 'whsec_0123456789abcdef' },
    { id: 'broken', url: 'http://127.0.0.1:9/hook', secret: 'whsec_0123456789abcdef', pattern: { detail: { 'repository-name': [{ prefix: 7 }] } } },
  ];
  await writeFile(configFile, JSON.stringify({ events: { webhooks } }));
  await assert.rejects(startServer({ dataDir: path.join(dir, 'data'), args: ['--config', configFile] }), (err: Error) => {
    assert.match(err.message, /configuration error: events\.webhooks \(from [^)]*berth\.json\): \[1\] \(id broken\): pattern: /);
    return true;
  });
});
