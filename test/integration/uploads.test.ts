import assert from 'node:assert/strict';
import { randomBytes, randomUUID } from 'node:crypto';
import { stat } from 'node:fs/promises';
import path from 'node:path';
import { test } from 'node:test';
import { backend, storedUploadIds } from '../support/backend.ts';
import { blob, pushBlob, repoName, sha256, waitFor } from '../support/oci.ts';
import { digestBody, expectError, expectHeadError, httpRequest, interruptedRequest, sha512, sharedServer } from '../support/http.ts';

const s = sharedServer();

interface Session {
  repository: string;
  /** The Location the registry gave, resolved against the base URL. */
  url: URL;
  id: string;
}

/** POST /v2/<name>/blobs/uploads/ and check the session headers (spec: "POST then PUT"). */
async function startUpload(repository = repoName()): Promise<Session> {
  const res = await s.fetch(`/v2/${repository}/blobs/uploads/`, { method: 'POST', headers: { 'content-length': '0' } });
  assert.equal(res.status, 202, await res.clone().text());
  const location = res.headers.get('location');
  assert.ok(location, 'Location header');
  const id = res.headers.get('docker-upload-uuid');
  assert.ok(id, 'Docker-Upload-UUID header');
  assert.equal(location, `/v2/${repository}/blobs/uploads/${id}`);
  assert.equal(res.headers.get('range'), '0-0');
  assert.equal((await res.arrayBuffer()).byteLength, 0);
  return { repository, url: s.url(location), id };
}

function withDigest(url: URL, digest: string): URL {
  const u = new URL(url);
  u.searchParams.set('digest', digest);
  return u;
}

/** PATCH a chunk; expects 202 and checks the status headers; resolves the new size. */
async function patch(session: Session, chunk: Buffer, contentRange?: string): Promise<number> {
  const headers: Record<string, string> = { 'content-type': 'application/octet-stream' };
  if (contentRange !== undefined) headers['content-range'] = contentRange;
  const res = await s.fetch(session.url, { method: 'PATCH', body: chunk, headers });
  assert.equal(res.status, 202, await res.clone().text());
  assert.equal(res.headers.get('location'), session.url.pathname);
  assert.equal(res.headers.get('docker-upload-uuid'), session.id);
  const range = /^0-(\d+)$/.exec(res.headers.get('range') ?? '');
  assert.ok(range, `Range header ${res.headers.get('range')}`);
  await res.arrayBuffer();
  return Number(range[1]) + 1;
}

/** GET the upload's status (204); resolves how many bytes it holds. */
async function uploadedBytes(session: Session): Promise<number> {
  const res = await s.fetch(session.url);
  assert.equal(res.status, 204);
  assert.equal(res.headers.get('location'), session.url.pathname);
  assert.equal(res.headers.get('docker-upload-uuid'), session.id);
  const range = res.headers.get('range');
  assert.match(range ?? '', /^0-\d+$/);
  await res.arrayBuffer();
  const end = Number(range!.slice(2));
  // "0-0" stands for an empty upload as well as for one byte (as Distribution writes it).
  return end === 0 ? -1 : end + 1;
}

async function complete(session: Session, digest: string, init: RequestInit = {}): Promise<Response> {
  const res = await s.fetch(withDigest(session.url, digest), { method: 'PUT', ...init });
  return res;
}

async function expectBlob(repository: string, bytes: Buffer): Promise<void> {
  const digest = sha256(bytes);
  const res = await s.fetch(`/v2/${repository}/blobs/${digest}`);
  assert.equal(res.status, 200);
  assert.equal(res.headers.get('docker-content-digest'), digest);
  assert.equal(res.headers.get('content-length'), String(bytes.length));
  assert.ok(Buffer.from(await res.arrayBuffer()).equals(bytes), 'blob bytes round-trip');
}

function expectCreated(res: Response, repository: string, digest: string): void {
  assert.equal(res.status, 201);
  assert.equal(res.headers.get('location'), `/v2/${repository}/blobs/${digest}`);
  assert.equal(res.headers.get('docker-content-digest'), digest);
}

function uploadFile(id: string): string {
  return path.join(s.server.dataDir, 'blobs', 'uploads', id);
}

test('POST then PUT pushes a blob monolithically', async () => {
  const session = await startUpload();
  const bytes = randomBytes(4096);
  const res = await complete(session, sha256(bytes), { body: bytes, headers: { 'content-type': 'application/octet-stream' } });
  expectCreated(res, session.repository, sha256(bytes));
  await expectBlob(session.repository, bytes);
  // The session is closed.
  await expectError(await s.fetch(session.url), 404, 'BLOB_UPLOAD_UNKNOWN');
  await expectError(await s.fetch(session.url, { method: 'PATCH', body: Buffer.from('x') }), 404, 'BLOB_UPLOAD_UNKNOWN');
});

test('a single POST with ?digest= pushes a blob', async () => {
  const repository = repoName();
  const bytes = randomBytes(2048);
  const res = await s.fetch(`/v2/${repository}/blobs/uploads/?digest=${sha256(bytes)}`, { method: 'POST', body: bytes, headers: { 'content-type': 'application/octet-stream' } });
  expectCreated(res, repository, sha256(bytes));
  await expectBlob(repository, bytes);
});

test('a single POST whose body does not match its digest is refused and stores nothing', async () => {
  const repository = repoName();
  await pushBlob(s.baseUrl, repository, blob('unrelated'));
  const bytes = randomBytes(1000);
  const claimed = sha256(randomBytes(1000));
  await expectError(await s.fetch(`/v2/${repository}/blobs/uploads/?digest=${claimed}`, { method: 'POST', body: bytes }), 400, 'DIGEST_INVALID');
  await expectHeadError(await s.fetch(`/v2/${repository}/blobs/${claimed}`, { method: 'HEAD' }), 404);
  await expectHeadError(await s.fetch(`/v2/${repository}/blobs/${sha256(bytes)}`, { method: 'HEAD' }), 404);
});

test('a single POST with a malformed digest answers 400 DIGEST_INVALID', async () => {
  await expectError(await s.fetch(`/v2/${repoName()}/blobs/uploads/?digest=sha256:xyz`, { method: 'POST', body: Buffer.from('abc') }), 400, 'DIGEST_INVALID');
});

test('chunks PATCHed without Content-Range are appended in order', async () => {
  const session = await startUpload();
  const chunks = [randomBytes(1000), randomBytes(1), randomBytes(70_000), randomBytes(333)];
  let total = 0;
  for (const chunk of chunks) {
    total += chunk.length;
    assert.equal(await patch(session, chunk), total);
  }
  assert.equal(await uploadedBytes(session), total);
  const all = Buffer.concat(chunks);
  expectCreated(await complete(session, sha256(all)), session.repository, sha256(all));
  await expectBlob(session.repository, all);
});

test('chunks PATCHed with Content-Range are appended in order', async () => {
  const session = await startUpload();
  const all = randomBytes(3000);
  assert.equal(await patch(session, all.subarray(0, 1000), '0-999'), 1000);
  assert.equal(await patch(session, all.subarray(1000, 2000), '1000-1999'), 2000);
  // RFC 9110's spelling, which some clients send, is accepted too.
  assert.equal(await patch(session, all.subarray(2000, 3000), 'bytes 2000-2999/*'), 3000);
  expectCreated(await complete(session, sha256(all)), session.repository, sha256(all));
  await expectBlob(session.repository, all);
});

test('GET on an upload reports its progress with 204, Range, Location and Docker-Upload-UUID', async () => {
  const session = await startUpload();
  const res = await s.fetch(session.url);
  assert.equal(res.status, 204);
  assert.equal(res.headers.get('range'), '0-0');
  assert.equal(res.headers.get('location'), session.url.pathname);
  assert.equal(res.headers.get('docker-upload-uuid'), session.id);
  await patch(session, randomBytes(512), '0-511');
  assert.equal(await uploadedBytes(session), 512);
  await patch(session, randomBytes(100));
  assert.equal(await uploadedBytes(session), 612);
});

test('an out-of-order chunk answers 416 and the upload stays resumable', async () => {
  const session = await startUpload();
  const all = randomBytes(3000);
  await patch(session, all.subarray(0, 1000), '0-999');
  for (const range of ['2000-2999', '0-999', '999-1998', '1001-2000']) {
    const [start, end] = range.split('-').map(Number) as [number, number];
    const res = await s.fetch(session.url, { method: 'PATCH', body: all.subarray(start, end + 1), headers: { 'content-range': range } });
    await expectError(res, 416, 'RANGE_INVALID');
    assert.equal(await uploadedBytes(session), 1000, `after ${range}`);
  }
  await patch(session, all.subarray(1000, 2000), '1000-1999');
  await patch(session, all.subarray(2000), '2000-2999');
  expectCreated(await complete(session, sha256(all)), session.repository, sha256(all));
  await expectBlob(session.repository, all);
});

test('a chunk whose Content-Range and Content-Length disagree is refused and changes nothing', async () => {
  const session = await startUpload();
  const all = randomBytes(200);
  await patch(session, all.subarray(0, 100), '0-99');
  const res = await s.fetch(session.url, { method: 'PATCH', body: all.subarray(100, 150), headers: { 'content-range': '100-199' } });
  await expectError(res, 416, 'RANGE_INVALID');
  assert.equal(await uploadedBytes(session), 100);
  for (const range of ['abc', '5-3', '100-', '-5', '100-199-299']) {
    await expectError(await s.fetch(session.url, { method: 'PATCH', body: all.subarray(100), headers: { 'content-range': range } }), 416, 'RANGE_INVALID');
    assert.equal(await uploadedBytes(session), 100, range);
  }
  await patch(session, all.subarray(100), '100-199');
  expectCreated(await complete(session, sha256(all)), session.repository, sha256(all));
  await expectBlob(session.repository, all);
});

test('a chunked-transfer body shorter or longer than its Content-Range is refused with SIZE_INVALID', async () => {
  const session = await startUpload();
  const all = randomBytes(4000);
  await patch(session, all.subarray(0, 1000));
  // Shorter: 500 bytes arrive for a range of 1000.
  const short = await httpRequest(session.url, { method: 'PATCH', headers: { 'content-range': '1000-1999' }, chunks: [all.subarray(1000, 1300), all.subarray(1300, 1500)] });
  assert.equal(short.status, 400);
  const shortCode = JSON.parse(short.body.toString()) as { errors: { code: string }[] };
  assert.equal(shortCode.errors[0]?.code, 'SIZE_INVALID');
  assert.equal(await uploadedBytes(session), 1000);
  // Longer: 1500 bytes arrive for a range of 1000.
  const long = await httpRequest(session.url, { method: 'PATCH', headers: { 'content-range': '1000-1999' }, chunks: [all.subarray(1000, 2000), all.subarray(2000, 2500)] });
  assert.equal(long.status, 400);
  assert.equal((JSON.parse(long.body.toString()) as { errors: { code: string }[] }).errors[0]?.code, 'SIZE_INVALID');
  assert.equal(await uploadedBytes(session), 1000);
  // The upload resumes where it stood; the refused bytes left no trace.
  await patch(session, all.subarray(1000, 2500), '1000-2499');
  const last = await httpRequest(session.url, { method: 'PATCH', chunks: [all.subarray(2500, 3000), all.subarray(3000)] });
  assert.equal(last.status, 202);
  assert.equal(last.headers['range'], '0-3999');
  expectCreated(await complete(session, sha256(all)), session.repository, sha256(all));
  await expectBlob(session.repository, all);
});

test('PUT may carry the final chunk, with or without Content-Range', async () => {
  const all = randomBytes(3000);
  const plain = await startUpload();
  await patch(plain, all.subarray(0, 2000));
  expectCreated(await complete(plain, sha256(all), { body: all.subarray(2000) }), plain.repository, sha256(all));
  await expectBlob(plain.repository, all);

  const ranged = await startUpload();
  await patch(ranged, all.subarray(0, 2000), '0-1999');
  expectCreated(await complete(ranged, sha256(all), { body: all.subarray(2000), headers: { 'content-range': '2000-2999' } }), ranged.repository, sha256(all));
  await expectBlob(ranged.repository, all);

  // A streamed (chunked) final chunk.
  const streamed = await startUpload();
  await patch(streamed, all.subarray(0, 1000));
  const put = await httpRequest(withDigest(streamed.url, sha256(all)), { method: 'PUT', chunks: [all.subarray(1000, 1500), all.subarray(1500)] });
  assert.equal(put.status, 201);
  await expectBlob(streamed.repository, all);
});

test('a final chunk out of order answers 416 and the upload stays resumable', async () => {
  const session = await startUpload();
  const all = randomBytes(2000);
  await patch(session, all.subarray(0, 1000), '0-999');
  const res = await complete(session, sha256(all), { body: all.subarray(1500), headers: { 'content-range': '1500-1999' } });
  await expectError(res, 416, 'RANGE_INVALID');
  assert.equal(await uploadedBytes(session), 1000);
  expectCreated(await complete(session, sha256(all), { body: all.subarray(1000), headers: { 'content-range': '1000-1999' } }), session.repository, sha256(all));
  await expectBlob(session.repository, all);
});

test('DELETE cancels an upload: 204, then the session is unknown', async () => {
  const session = await startUpload();
  await patch(session, randomBytes(100));
  const del = await s.fetch(session.url, { method: 'DELETE' });
  assert.equal(del.status, 204);
  await del.arrayBuffer();
  await expectError(await s.fetch(session.url), 404, 'BLOB_UPLOAD_UNKNOWN');
  await expectError(await s.fetch(session.url, { method: 'PATCH', body: Buffer.from('more') }), 404, 'BLOB_UPLOAD_UNKNOWN');
  await expectError(await complete(session, sha256('x'), { body: Buffer.from('x') }), 404, 'BLOB_UPLOAD_UNKNOWN');
  await expectError(await s.fetch(session.url, { method: 'DELETE' }), 404, 'BLOB_UPLOAD_UNKNOWN');
  await waitFor(async () => !(await storedUploadIds(s.server)).includes(session.id), { what: 'the upload bytes to be removed' });
});

test('a digest mismatch on completion answers 400 DIGEST_INVALID and nothing becomes visible', async () => {
  const session = await startUpload();
  const bytes = randomBytes(5000);
  await patch(session, bytes);
  const claimed = sha256(randomBytes(5000));
  await expectError(await complete(session, claimed), 400, 'DIGEST_INVALID');
  await expectHeadError(await s.fetch(`/v2/${session.repository}/blobs/${claimed}`, { method: 'HEAD' }), 404);
  await expectHeadError(await s.fetch(`/v2/${session.repository}/blobs/${sha256(bytes)}`, { method: 'HEAD' }), 404);
  // The session and its bytes are dropped.
  await expectError(await s.fetch(session.url), 404, 'BLOB_UPLOAD_UNKNOWN');
  await expectError(await complete(session, sha256(bytes)), 404, 'BLOB_UPLOAD_UNKNOWN');
});

test('a digest mismatch with the final chunk in the PUT stores nothing either', async () => {
  const session = await startUpload();
  const bytes = randomBytes(800);
  const claimed = sha256(Buffer.concat([bytes, Buffer.from('!')]));
  await expectError(await complete(session, claimed, { body: bytes }), 400, 'DIGEST_INVALID');
  await expectHeadError(await s.fetch(`/v2/${session.repository}/blobs/${claimed}`, { method: 'HEAD' }), 404);
  await expectHeadError(await s.fetch(`/v2/${session.repository}/blobs/${sha256(bytes)}`, { method: 'HEAD' }), 404);
});

test('PUT without a digest, or with a malformed one, is refused and the upload stays usable', async () => {
  const session = await startUpload();
  const bytes = randomBytes(300);
  await patch(session, bytes);
  const noDigest = await s.fetch(session.url, { method: 'PUT' });
  await expectError(noDigest, 400, 'DIGEST_INVALID');
  const withBody = await s.fetch(session.url, { method: 'PUT', body: Buffer.from('tail') });
  await expectError(withBody, 400, 'DIGEST_INVALID');
  for (const digest of ['sha256:abc', 'nope', `sha256:${'Z'.repeat(64)}`]) {
    await expectError(await complete(session, digest), 400, 'DIGEST_INVALID');
  }
  assert.equal(await uploadedBytes(session), 300);
  expectCreated(await complete(session, sha256(bytes)), session.repository, sha256(bytes));
  await expectBlob(session.repository, bytes);
});

test('an unknown upload id answers 404 BLOB_UPLOAD_UNKNOWN for every method', async () => {
  const { repository } = await startUpload();
  for (const id of [randomUUID(), 'not-a-uuid', '...', 'x'.repeat(200)]) {
    const url = s.url(`/v2/${repository}/blobs/uploads/${id}`);
    await expectError(await s.fetch(url), 404, 'BLOB_UPLOAD_UNKNOWN');
    await expectError(await s.fetch(url, { method: 'PATCH', body: Buffer.from('x') }), 404, 'BLOB_UPLOAD_UNKNOWN');
    await expectError(await s.fetch(withDigest(url, sha256('x')), { method: 'PUT', body: Buffer.from('x') }), 404, 'BLOB_UPLOAD_UNKNOWN');
    await expectError(await s.fetch(url, { method: 'DELETE' }), 404, 'BLOB_UPLOAD_UNKNOWN');
  }
});

test('an upload id used under another repository is unknown there and untouched', async () => {
  const session = await startUpload();
  const bytes = randomBytes(400);
  await patch(session, bytes.subarray(0, 200));
  const other = await startUpload();
  const foreign = s.url(`/v2/${other.repository}/blobs/uploads/${session.id}`);
  await expectError(await s.fetch(foreign), 404, 'BLOB_UPLOAD_UNKNOWN');
  await expectError(await s.fetch(foreign, { method: 'PATCH', body: Buffer.from('evil') }), 404, 'BLOB_UPLOAD_UNKNOWN');
  await expectError(await s.fetch(withDigest(foreign, sha256(bytes)), { method: 'PUT', body: bytes.subarray(200) }), 404, 'BLOB_UPLOAD_UNKNOWN');
  await expectError(await s.fetch(foreign, { method: 'DELETE' }), 404, 'BLOB_UPLOAD_UNKNOWN');
  assert.equal(await uploadedBytes(session), 200);
  expectCreated(await complete(session, sha256(bytes), { body: bytes.subarray(200) }), session.repository, sha256(bytes));
  await expectBlob(session.repository, bytes);
  await expectHeadError(await s.fetch(`/v2/${other.repository}/blobs/${sha256(bytes)}`, { method: 'HEAD' }), 404);
});

test('upload endpoints of a repository that does not exist answer NAME_UNKNOWN', async () => {
  const url = s.url(`/v2/${repoName()}/blobs/uploads/${randomUUID()}`);
  await expectError(await s.fetch(url), 404, 'NAME_UNKNOWN');
  await expectError(await s.fetch(url, { method: 'PATCH', body: Buffer.from('x') }), 404, 'NAME_UNKNOWN');
  await expectError(await s.fetch(url, { method: 'DELETE' }), 404, 'NAME_UNKNOWN');
});

test('starting an upload with an invalid repository name answers NAME_INVALID', async () => {
  for (const name of ['Upper/case', 'a..b', 'x']) {
    await expectError(await s.fetch(`/v2/${name}/blobs/uploads/`, { method: 'POST' }), 400, 'NAME_INVALID');
  }
});

/**
 * Resolves once the server has the partial chunk: on the filesystem, once the upload file holds
 * `size` bytes; on S3, where a chunk shorter than a part stays in the server's memory until its
 * body ends, after a pause.
 */
async function partialChunkArrived(uploadId: string, size: number): Promise<void> {
  if (backend === 'scaleout') return new Promise((resolve) => setTimeout(resolve, 300));
  await waitFor(async () => (await stat(uploadFile(uploadId))).size >= size, { what: 'the partial chunk to reach the disk' });
}

for (const how of ['destroy', 'half-close'] as const) {
  test(`a client that ${how === 'destroy' ? 'disconnects' : 'half-closes'} mid-PATCH leaves the upload resumable at its previous size`, async () => {
    const session = await startUpload();
    const all = randomBytes(10_000);
    await patch(session, all.subarray(0, 3000), '0-2999');
    // Declare 5000 bytes, send 2000, and wait until the server has written them before leaving.
    const response = await interruptedRequest(session.url, {
      method: 'PATCH',
      headers: { 'content-type': 'application/octet-stream', 'content-length': 5000, 'content-range': '3000-7999' },
      partialBody: all.subarray(3000, 5000),
      whenSent: () => partialChunkArrived(session.id, 5000),
      how,
    });
    assert.doesNotMatch(response, /^HTTP\/1\.1 5/, 'no 5xx for an interrupted chunk');
    assert.doesNotMatch(response, /^HTTP\/1\.1 202/, 'an interrupted chunk is not accepted');
    assert.equal(await uploadedBytes(session), 3000);
    // Resuming takes its turn after the interrupted request; its bytes are dropped.
    assert.equal(await patch(session, all.subarray(3000, 8000), '3000-7999'), 8000);
    assert.equal(await uploadedBytes(session), 8000);
    expectCreated(await complete(session, sha256(all), { body: all.subarray(8000), headers: { 'content-range': '8000-9999' } }), session.repository, sha256(all));
    await expectBlob(session.repository, all);
  });
}

test('a client that disconnects mid-PATCH without Content-Range leaves the upload resumable', async () => {
  const session = await startUpload();
  const all = randomBytes(6000);
  await patch(session, all.subarray(0, 1000));
  await interruptedRequest(session.url, {
    method: 'PATCH',
    headers: { 'transfer-encoding': 'chunked' },
    partialBody: Buffer.concat([Buffer.from('7d0\r\n'), randomBytes(2000), Buffer.from('\r\n')]),
    whenSent: () => partialChunkArrived(session.id, 3000),
    how: 'destroy',
  });
  assert.equal(await uploadedBytes(session), 1000);
  await patch(session, all.subarray(1000));
  expectCreated(await complete(session, sha256(all)), session.repository, sha256(all));
  await expectBlob(session.repository, all);
});

test('zero-byte blobs can be pushed by POST then PUT, single POST, and an empty chunk', async () => {
  const empty = Buffer.alloc(0);
  const digest = sha256(empty);

  const monolithic = await startUpload();
  expectCreated(await complete(monolithic, digest), monolithic.repository, digest);
  await expectBlob(monolithic.repository, empty);

  const single = repoName();
  expectCreated(await s.fetch(`/v2/${single}/blobs/uploads/?digest=${digest}`, { method: 'POST', body: empty }), single, digest);
  await expectBlob(single, empty);

  const chunked = await startUpload();
  const res = await s.fetch(chunked.url, { method: 'PATCH', body: empty });
  assert.equal(res.status, 202);
  assert.equal(res.headers.get('range'), '0-0');
  expectCreated(await complete(chunked, digest), chunked.repository, digest);
  await expectBlob(chunked.repository, empty);
});

test('a 20 MiB blob pushed in chunks, one of them streamed, pulls back with the same digest', async () => {
  const MiB = 1024 * 1024;
  const all = randomBytes(20 * MiB);
  const digest = sha256(all);
  const session = await startUpload();
  assert.equal(await patch(session, all.subarray(0, 6 * MiB), `0-${6 * MiB - 1}`), 6 * MiB);
  // A chunk streamed with chunked transfer encoding in 64 KiB pieces, no Content-Length.
  const pieces: Buffer[] = [];
  for (let i = 6 * MiB; i < 13 * MiB; i += 64 * 1024) pieces.push(all.subarray(i, Math.min(i + 64 * 1024, 13 * MiB)));
  const streamed = await httpRequest(session.url, { method: 'PATCH', headers: { 'content-type': 'application/octet-stream' }, chunks: pieces });
  assert.equal(streamed.status, 202);
  assert.equal(streamed.headers['range'], `0-${13 * MiB - 1}`);
  assert.equal(await patch(session, all.subarray(13 * MiB, 18 * MiB), `${13 * MiB}-${18 * MiB - 1}`), 18 * MiB);
  expectCreated(await complete(session, digest, { body: all.subarray(18 * MiB) }), session.repository, digest);

  const head = await s.fetch(`/v2/${session.repository}/blobs/${digest}`, { method: 'HEAD' });
  assert.equal(head.headers.get('content-length'), String(20 * MiB));
  const res = await s.fetch(`/v2/${session.repository}/blobs/${digest}`);
  assert.equal(res.status, 200);
  assert.deepEqual(await digestBody(res), { digest, sizeBytes: 20 * MiB });
  const tail = await s.fetch(`/v2/${session.repository}/blobs/${digest}`, { headers: { range: `bytes=${19 * MiB}-` } });
  assert.equal(tail.status, 206);
  assert.ok(Buffer.from(await tail.arrayBuffer()).equals(all.subarray(19 * MiB)));
});

test('a chunked upload completes under a sha512 digest', async () => {
  const session = await startUpload();
  const all = randomBytes(100_000);
  await patch(session, all.subarray(0, 60_000), '0-59999');
  await patch(session, all.subarray(60_000), '60000-99999');
  const digest = sha512(all);
  expectCreated(await complete(session, digest), session.repository, digest);
  const res = await s.fetch(`/v2/${session.repository}/blobs/${digest}`);
  assert.equal(res.status, 200);
  assert.equal(res.headers.get('docker-content-digest'), digest);
  assert.ok(Buffer.from(await res.arrayBuffer()).equals(all));
});

test('a sha512 digest mismatch is refused like a sha256 one', async () => {
  const session = await startUpload();
  const bytes = randomBytes(1000);
  await patch(session, bytes);
  const claimed = sha512(randomBytes(10));
  await expectError(await complete(session, claimed), 400, 'DIGEST_INVALID');
  await expectHeadError(await s.fetch(`/v2/${session.repository}/blobs/${claimed}`, { method: 'HEAD' }), 404);
});

test('completing an upload of a blob the repository already holds answers 201', async () => {
  const repository = repoName();
  const b = blob(randomBytes(700));
  await pushBlob(s.baseUrl, repository, b);
  const session = await startUpload(repository);
  expectCreated(await complete(session, b.digest, { body: b.bytes }), repository, b.digest);
  await expectBlob(repository, b.bytes);
});
