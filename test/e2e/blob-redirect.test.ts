import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { authedFetch } from '../support/auth.ts';
import { backend } from '../support/backend.ts';
import { blob, pushBlob, repoName } from '../support/oci.ts';
import { startServer, type TestServer } from '../support/server.ts';

/**
 * blobs.redirect: a blob GET answered by a redirect to a presigned URL of the object store, or
 * proxied through Berth, per client network. The filesystem store cannot presign, so there every
 * setting proxies; on S3 (the scale-out backend) the settings decide.
 */

async function serverWith(redirect: string): Promise<TestServer> {
  return startServer({ env: { BERTH_BLOBS_REDIRECT: redirect, BERTH_BLOBS_REDIRECT_TTL_SECONDS: '300' } });
}

describe('blob downloads by redirect or by proxy', () => {
  const servers: TestServer[] = [];
  const bytes = blob(randomBytes(100_000));
  let always: TestServer;
  let otherNetwork: TestServer;
  let ownNetwork: TestServer;
  const repository = repoName('redirect');

  before(async () => {
    [always, otherNetwork, ownNetwork] = await Promise.all([serverWith('always'), serverWith('10.0.0.0/8, 192.0.2.1'), serverWith('127.0.0.0/8')]);
    servers.push(always, otherNetwork, ownNetwork);
    for (const s of servers) await pushBlob(s.baseUrl, repository, bytes);
  });
  after(() => Promise.all(servers.map((s) => s.close())));

  const get = (s: TestServer, init: RequestInit = {}) => authedFetch(`${s.baseUrl}/v2/${repository}/blobs/${bytes.digest}`, { redirect: 'manual', ...init });

  test('always: a GET answers 307 to a presigned URL of the store that serves the bytes; HEAD is answered by Berth', async () => {
    const res = await get(always);
    if (backend === 'embedded') {
      assert.equal(res.status, 200, 'the filesystem store cannot presign: proxied');
      assert.ok(Buffer.from(await res.arrayBuffer()).equals(bytes.bytes));
      return;
    }
    assert.equal(res.status, 307);
    assert.equal(res.headers.get('docker-content-digest'), bytes.digest);
    const location = new URL(res.headers.get('location')!);
    assert.equal(location.origin, new URL(process.env['BERTH_TEST_S3_ENDPOINT']!).origin);
    assert.equal(location.searchParams.get('X-Amz-Expires'), '300', 'blobs.redirectTtlSeconds');
    const direct = await fetch(location);
    assert.equal(direct.status, 200);
    assert.ok(Buffer.from(await direct.arrayBuffer()).equals(bytes.bytes), 'the store serves the blob byte for byte, without Berth');
    const ranged = await fetch(location, { headers: { range: 'bytes=100-199' } });
    assert.equal(ranged.status, 206);
    assert.ok(Buffer.from(await ranged.arrayBuffer()).equals(bytes.bytes.subarray(100, 200)));

    const head = await get(always, { method: 'HEAD' });
    assert.equal(head.status, 200);
    assert.equal(head.headers.get('content-length'), String(bytes.bytes.length));
  });

  test('a list of networks: clients outside them are proxied, clients inside are redirected', async () => {
    const outside = await get(otherNetwork);
    assert.equal(outside.status, 200, '127.0.0.1 is not in 10.0.0.0/8 or 192.0.2.1');
    assert.equal(outside.headers.get('docker-content-digest'), bytes.digest);
    assert.ok(Buffer.from(await outside.arrayBuffer()).equals(bytes.bytes));
    const inside = await get(ownNetwork);
    assert.equal(inside.status, backend === 'scaleout' ? 307 : 200);
    await inside.arrayBuffer();
  });

  test('a blob the repository does not hold is still 404 BLOB_UNKNOWN, never a redirect', async () => {
    const res = await authedFetch(`${always.baseUrl}/v2/${repository}/blobs/sha256:${'0'.repeat(64)}`, { redirect: 'manual' });
    assert.equal(res.status, 404);
    assert.equal(((await res.json()) as { errors: { code: string }[] }).errors[0]!.code, 'BLOB_UNKNOWN');
  });
});
