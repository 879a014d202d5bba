import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdtemp, readdir, rm, stat } from 'node:fs/promises';
import http from 'node:http';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { embeddedOnly } from '../support/backend.ts';
import { test } from 'node:test';
import { startServer, type TestServer } from '../support/server.ts';
import { blob, buildImage, pushImage, repoName, sha256, waitFor, type BuiltImage } from '../support/oci.ts';
import { adminAuthorization, authedFetch } from '../support/auth.ts';

/**
 * Faults: a crash in the middle of an upload, a digest that does not match, and shutdown.
 * Paths follow docs/blob-layout.md: committed blobs under <dataDir>/blobs/blobs/<alg>/<xx>/<hex>,
 * upload bytes under <dataDir>/blobs/uploads/<id>. The first two look at those files, so they run
 * on the embedded backend only; on S3 the same guarantees are the S3 contract suite's
 * (test/contracts/s3.test.ts) and the cluster test's (a node killed mid-upload).
 */

const MiB = 1024 * 1024;

function blobFile(dataDir: string, digest: string): string {
  const hex = digest.slice('sha256:'.length);
  return path.join(dataDir, 'blobs', 'blobs', 'sha256', hex.slice(0, 2), hex);
}

function uploadFile(dataDir: string, uploadId: string): string {
  return path.join(dataDir, 'blobs', 'uploads', uploadId);
}

async function errorCode(res: Response): Promise<string | undefined> {
  const body = (await res.json()) as { errors?: { code: string }[] };
  return body.errors?.[0]?.code;
}

/** Every blob and the manifest of an image pushed earlier come back byte-identical. */
async function assertPullsIdentical(baseUrl: string, repository: string, image: BuiltImage, reference: string): Promise<void> {
  const res = await authedFetch(`${baseUrl}/v2/${repository}/manifests/${reference}`, { headers: { accept: image.mediaType } });
  assert.equal(res.status, 200);
  assert.equal(res.headers.get('docker-content-digest'), image.digest);
  assert.deepEqual(Buffer.from(await res.arrayBuffer()), image.manifest);
  for (const b of [image.config, ...image.layers]) {
    const r = await authedFetch(`${baseUrl}/v2/${repository}/blobs/${b.digest}`);
    assert.equal(r.status, 200);
    assert.ok(Buffer.from(await r.arrayBuffer()).equals(b.bytes), `${b.digest} is byte-identical`);
  }
}

async function startUpload(baseUrl: string, repository: string): Promise<{ url: URL; id: string }> {
  const res = await authedFetch(`${baseUrl}/v2/${repository}/blobs/uploads/`, { method: 'POST' });
  assert.equal(res.status, 202);
  return { url: new URL(res.headers.get('location')!, baseUrl), id: res.headers.get('docker-upload-uuid')! };
}

test('kill -9 in the middle of a chunked upload: nothing partial is visible and the upload resumes', { skip: embeddedOnly }, async (t) => {
  const dataDir = await mkdtemp(path.join(tmpdir(), 'berth-crash-'));
  t.after(() => rm(dataDir, { recursive: true, force: true }));
  let server: TestServer = await startServer({ dataDir });
  t.after(() => server.close());
  const repository = repoName('crash');
  const earlier = buildImage({ layers: 3, layerBytes: 256 * 1024 });
  await pushImage(server.baseUrl, repository, earlier, 'earlier');

  const big = blob(randomBytes(24 * MiB));
  const firstChunk = 8 * MiB;
  const { url, id } = await startUpload(server.baseUrl, repository);
  const first = await authedFetch(url, { method: 'PATCH', body: big.bytes.subarray(0, firstChunk), headers: { 'content-type': 'application/octet-stream', 'content-range': `0-${firstChunk - 1}` } });
  assert.equal(first.status, 202);
  assert.equal(first.headers.get('range'), `0-${firstChunk - 1}`);

  // The second chunk streams (chunked transfer, no length) and stalls half-way; the server
  // is killed while it waits for the rest.
  const sent = 4 * MiB;
  const stalled = http.request(url, { method: 'PATCH', headers: { 'content-type': 'application/octet-stream', authorization: adminAuthorization } });
  const outcome = new Promise<string>((resolve) => {
    stalled.on('response', (res) => resolve(`response ${res.statusCode}`));
    stalled.on('error', (err: NodeJS.ErrnoException) => resolve(err.code ?? err.message));
  });
  stalled.write(big.bytes.subarray(firstChunk, firstChunk + sent));
  await waitFor(async () => (await stat(uploadFile(dataDir, id)).catch(() => undefined))?.size === firstChunk + sent, { what: 'the stalled chunk to reach the upload file' });
  await server.kill('SIGKILL');
  assert.equal(server.process.signalCode, 'SIGKILL');
  assert.match(await outcome, /ECONNRESET|EPIPE|socket hang up/);

  server = await startServer({ dataDir });
  const ready = await fetch(`${server.baseUrl}/readyz`);
  assert.equal(ready.status, 200, 'the metadata DB opened after the crash');
  const head = await authedFetch(`${server.baseUrl}/v2/${repository}/blobs/${big.digest}`, { method: 'HEAD' });
  assert.equal(head.status, 404);
  assert.equal(existsSync(blobFile(dataDir, big.digest)), false, 'no blob file for the interrupted upload');
  await assertPullsIdentical(server.baseUrl, repository, earlier, 'earlier');

  // The session survives with the size it had recorded: the half chunk was never acknowledged.
  const resumeUrl = new URL(url.pathname, server.baseUrl);
  const status = await authedFetch(resumeUrl);
  if (status.status === 404) {
    assert.equal(await errorCode(status), 'BLOB_UPLOAD_UNKNOWN');
    assert.equal(existsSync(uploadFile(dataDir, id)), false, 'an unknown session leaves no bytes behind');
    t.diagnostic('the upload session was dropped by the restart');
  } else {
    assert.equal(status.status, 204);
    assert.equal(status.headers.get('range'), `0-${firstChunk - 1}`);
    const rest = await authedFetch(resumeUrl, {
      method: 'PATCH',
      body: big.bytes.subarray(firstChunk),
      headers: { 'content-type': 'application/octet-stream', 'content-range': `${firstChunk}-${big.bytes.length - 1}` },
    });
    assert.equal(rest.status, 202, await rest.clone().text());
    assert.equal(rest.headers.get('range'), `0-${big.bytes.length - 1}`);
    const done = new URL(resumeUrl);
    done.searchParams.set('digest', big.digest);
    const put = await authedFetch(done, { method: 'PUT' });
    assert.equal(put.status, 201, await put.clone().text());
    const got = await authedFetch(`${server.baseUrl}/v2/${repository}/blobs/${big.digest}`);
    assert.equal(got.status, 200);
    assert.ok(Buffer.from(await got.arrayBuffer()).equals(big.bytes), 'the resumed blob is byte-identical');
    assert.equal(existsSync(uploadFile(dataDir, id)), false, 'the upload file is gone once committed');
    t.diagnostic('the upload resumed from its recorded size after the restart');
  }

  // After a clean stop the database file passes SQLite's own check.
  await server.close();
  const db = new DatabaseSync(path.join(dataDir, 'metadata.db'), { readOnly: true });
  try {
    assert.deepEqual(db.prepare('PRAGMA integrity_check').all().map((r) => Object.values(r)[0]), ['ok']);
  } finally {
    db.close();
  }
});

test('a digest mismatch is refused with DIGEST_INVALID and nothing is kept', { skip: embeddedOnly }, async (t) => {
  const server = await startServer();
  t.after(() => server.close());
  const repository = repoName('mismatch');
  const bytes = randomBytes(MiB + 17);
  const actual = sha256(bytes);
  const claimed = sha256(Buffer.concat([bytes, Buffer.from('x')]));
  const uploadsDir = path.join(server.dataDir, 'blobs', 'uploads');

  const assertNothingKept = async (uploadId?: string) => {
    for (const d of [actual, claimed]) {
      assert.equal(existsSync(blobFile(server.dataDir, d)), false, `no blob file for ${d}`);
      const head = await authedFetch(`${server.baseUrl}/v2/${repository}/blobs/${d}`, { method: 'HEAD' });
      assert.equal(head.status, 404);
    }
    assert.deepEqual(await readdir(uploadsDir), [], 'no upload bytes left');
    if (uploadId !== undefined) {
      const status = await authedFetch(`${server.baseUrl}/v2/${repository}/blobs/uploads/${uploadId}`);
      assert.equal(status.status, 404);
      assert.equal(await errorCode(status), 'BLOB_UPLOAD_UNKNOWN');
    }
  };

  // Chunks, then PUT with the wrong digest.
  const chunked = await startUpload(server.baseUrl, repository);
  const patched = await authedFetch(chunked.url, { method: 'PATCH', body: bytes, headers: { 'content-type': 'application/octet-stream' } });
  assert.equal(patched.status, 202);
  const put = new URL(chunked.url);
  put.searchParams.set('digest', claimed);
  const refused = await authedFetch(put, { method: 'PUT' });
  assert.equal(refused.status, 400);
  assert.equal(await errorCode(refused), 'DIGEST_INVALID');
  await assertNothingKept(chunked.id);

  // The last chunk carried by the PUT itself.
  const withBody = await startUpload(server.baseUrl, repository);
  const put2 = new URL(withBody.url);
  put2.searchParams.set('digest', claimed);
  const refused2 = await authedFetch(put2, { method: 'PUT', body: bytes, headers: { 'content-type': 'application/octet-stream' } });
  assert.equal(refused2.status, 400);
  assert.equal(await errorCode(refused2), 'DIGEST_INVALID');
  await assertNothingKept(withBody.id);

  // A single-request push (POST ?digest=).
  const mono = await authedFetch(`${server.baseUrl}/v2/${repository}/blobs/uploads/?digest=${claimed}`, { method: 'POST', body: bytes, headers: { 'content-type': 'application/octet-stream' } });
  assert.equal(mono.status, 400);
  assert.equal(await errorCode(mono), 'DIGEST_INVALID');
  await assertNothingKept();

  // The right digest still goes through afterwards.
  const ok = await authedFetch(`${server.baseUrl}/v2/${repository}/blobs/uploads/?digest=${actual}`, { method: 'POST', body: bytes, headers: { 'content-type': 'application/octet-stream' } });
  assert.equal(ok.status, 201);
  assert.equal(existsSync(blobFile(server.dataDir, actual)), true);
});

test('SIGTERM while idle exits 0 without forcing connections closed', async (t) => {
  const server = await startServer();
  t.after(() => server.close());
  // Leave a keep-alive connection idle in the client's pool, as any client would.
  const agent = new http.Agent({ keepAlive: true });
  t.after(() => agent.destroy());
  const res = await new Promise<http.IncomingMessage>((resolve, reject) => http.get(`${server.baseUrl}/v2/`, { agent, headers: { authorization: adminAuthorization } }, resolve).on('error', reject));
  assert.equal(res.statusCode, 200);
  res.resume();
  await new Promise((r) => res.on('end', r));

  await server.kill('SIGTERM');
  assert.equal(server.process.exitCode, 0);
  assert.equal(server.process.signalCode, null);
  assert.ok(server.logs.some((l) => l['msg'] === 'shutting down' && l['signal'] === 'SIGTERM'));
  const complaints = server.logs.filter((l) => l['level'] === 'warn' || l['level'] === 'error');
  assert.deepEqual(complaints, [], 'no forced close and no errors');
});

test('SIGTERM right after start, before any request, exits 0', async (t) => {
  const server = await startServer();
  t.after(() => server.close());
  await server.kill('SIGTERM');
  assert.equal(server.process.exitCode, 0);
  assert.equal(server.process.signalCode, null);
});
