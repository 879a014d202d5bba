import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { test } from 'node:test';
import { blob, pushBlob, repoName, sha256 } from '../support/oci.ts';
import { expectError, expectHeadError, sha512, sharedServer } from '../support/http.ts';

const s = sharedServer();

/** A repository holding one random blob of `size` bytes. */
async function repoWithBlob(size = 100): Promise<{ repository: string; bytes: Buffer; digest: string }> {
  const repository = repoName();
  const b = blob(randomBytes(size));
  await pushBlob(s.baseUrl, repository, b);
  return { repository, bytes: b.bytes, digest: b.digest };
}

test('GET a blob serves its bytes with length, digest and type headers', async () => {
  const { repository, bytes, digest } = await repoWithBlob(3000);
  const res = await s.fetch(`/v2/${repository}/blobs/${digest}`);
  assert.equal(res.status, 200);
  assert.equal(res.headers.get('content-length'), '3000');
  assert.equal(res.headers.get('docker-content-digest'), digest);
  assert.equal(res.headers.get('content-type'), 'application/octet-stream');
  assert.equal(res.headers.get('docker-distribution-api-version'), 'registry/2.0');
  assert.deepEqual(Buffer.from(await res.arrayBuffer()), bytes);
});

test('HEAD a blob gives the same headers and no body', async () => {
  const { repository, digest } = await repoWithBlob(1234);
  const res = await s.fetch(`/v2/${repository}/blobs/${digest}`, { method: 'HEAD' });
  assert.equal(res.status, 200);
  assert.equal(res.headers.get('content-length'), '1234');
  assert.equal(res.headers.get('docker-content-digest'), digest);
  assert.equal(res.headers.get('content-type'), 'application/octet-stream');
  assert.equal((await res.arrayBuffer()).byteLength, 0);
});

test('Range requests serve the part asked for (RFC 9110)', async () => {
  const { repository, bytes, digest } = await repoWithBlob(1000);
  const cases: [string, number, number][] = [
    ['bytes=0-0', 0, 0],
    ['bytes=10-19', 10, 19],
    ['bytes=990-', 990, 999],
    ['bytes=0-', 0, 999],
    ['bytes=-25', 975, 999],
    ['bytes=-5000', 0, 999],
    ['bytes=500-5000', 500, 999],
    ['bytes=999-999', 999, 999],
  ];
  for (const [range, start, end] of cases) {
    const res = await s.fetch(`/v2/${repository}/blobs/${digest}`, { headers: { range } });
    assert.equal(res.status, 206, range);
    assert.equal(res.headers.get('content-range'), `bytes ${start}-${end}/1000`, range);
    assert.equal(res.headers.get('content-length'), String(end - start + 1), range);
    assert.equal(res.headers.get('docker-content-digest'), digest, range);
    assert.deepEqual(Buffer.from(await res.arrayBuffer()), bytes.subarray(start, end + 1), range);
  }
});

test('a Range beyond the end answers 416 RANGE_INVALID with Content-Range bytes */size', async () => {
  const { repository, digest } = await repoWithBlob(1000);
  for (const range of ['bytes=1000-', 'bytes=1000-1001', 'bytes=5000-6000', 'bytes=-0']) {
    const res = await s.fetch(`/v2/${repository}/blobs/${digest}`, { headers: { range } });
    assert.equal(res.headers.get('content-range'), 'bytes */1000', range);
    await expectError(res, 416, 'RANGE_INVALID');
  }
});

test('several ranges or a malformed Range header are ignored: the whole blob, 200', async () => {
  const { repository, bytes, digest } = await repoWithBlob(500);
  for (const range of ['bytes=0-1,5-9', 'bytes=0-1, 3-4', 'items=0-5', 'bytes=abc', 'bytes=20-10', 'bytes=-']) {
    const res = await s.fetch(`/v2/${repository}/blobs/${digest}`, { headers: { range } });
    assert.equal(res.status, 200, range);
    assert.equal(res.headers.get('content-range'), null, range);
    assert.equal(res.headers.get('content-length'), '500', range);
    assert.deepEqual(Buffer.from(await res.arrayBuffer()), bytes, range);
  }
});

test('an unknown blob is 404 BLOB_UNKNOWN for GET, HEAD and DELETE', async () => {
  const { repository } = await repoWithBlob();
  const missing = sha256(randomBytes(16));
  await expectError(await s.fetch(`/v2/${repository}/blobs/${missing}`), 404, 'BLOB_UNKNOWN');
  await expectHeadError(await s.fetch(`/v2/${repository}/blobs/${missing}`, { method: 'HEAD' }), 404);
  await expectError(await s.fetch(`/v2/${repository}/blobs/${missing}`, { method: 'DELETE' }), 404, 'BLOB_UNKNOWN');
});

test('a blob in a repository that does not exist is 404 NAME_UNKNOWN', async () => {
  const { digest } = await repoWithBlob();
  await expectError(await s.fetch(`/v2/${repoName()}/blobs/${digest}`), 404, 'NAME_UNKNOWN');
  await expectHeadError(await s.fetch(`/v2/${repoName()}/blobs/${digest}`, { method: 'HEAD' }), 404);
});

test('a blob pushed into one repository is not readable from another without a mount', async () => {
  const a = await repoWithBlob();
  const b = await repoWithBlob();
  await expectError(await s.fetch(`/v2/${b.repository}/blobs/${a.digest}`), 404, 'BLOB_UNKNOWN');
  await expectHeadError(await s.fetch(`/v2/${b.repository}/blobs/${a.digest}`, { method: 'HEAD' }), 404);
  await expectError(await s.fetch(`/v2/${b.repository}/blobs/${a.digest}`, { method: 'DELETE' }), 404, 'BLOB_UNKNOWN');
  // Ranged reads do not leak it either.
  await expectError(await s.fetch(`/v2/${b.repository}/blobs/${a.digest}`, { headers: { range: 'bytes=0-9' } }), 404, 'BLOB_UNKNOWN');
  const still = await s.fetch(`/v2/${a.repository}/blobs/${a.digest}`);
  assert.equal(still.status, 200);
  assert.deepEqual(Buffer.from(await still.arrayBuffer()), a.bytes);
});

test('malformed digests answer 400 DIGEST_INVALID', async () => {
  const { repository } = await repoWithBlob();
  const hex = 'a'.repeat(64);
  const bad = [
    'sha256:abc',
    `sha256:${'A'.repeat(64)}`,
    `sha256:${'g'.repeat(64)}`,
    `sha256:${hex}0`,
    `sha512:${hex}`,
    `md5:${'a'.repeat(32)}`,
    `sha256:`,
    `:${hex}`,
    `sha256::${hex}`,
  ];
  for (const digest of bad) {
    const path = `/v2/${repository}/blobs/${encodeURIComponent(digest).replace(/%3A/g, ':')}`;
    await expectError(await s.fetch(path), 400, 'DIGEST_INVALID');
    await expectError(await s.fetch(path, { method: 'DELETE' }), 400, 'DIGEST_INVALID');
    await expectHeadError(await s.fetch(path, { method: 'HEAD' }), 400);
  }
});

test('DELETE a blob answers 202, then it is gone from that repository', async () => {
  const { repository, digest } = await repoWithBlob();
  const del = await s.fetch(`/v2/${repository}/blobs/${digest}`, { method: 'DELETE' });
  assert.equal(del.status, 202);
  await del.arrayBuffer();
  await expectError(await s.fetch(`/v2/${repository}/blobs/${digest}`), 404, 'BLOB_UNKNOWN');
  await expectHeadError(await s.fetch(`/v2/${repository}/blobs/${digest}`, { method: 'HEAD' }), 404);
  await expectError(await s.fetch(`/v2/${repository}/blobs/${digest}`, { method: 'DELETE' }), 404, 'BLOB_UNKNOWN');
});

test('deleting a blob from one repository leaves it readable in another', async () => {
  const b = blob(randomBytes(200));
  const one = repoName();
  const two = repoName();
  await pushBlob(s.baseUrl, one, b);
  await pushBlob(s.baseUrl, two, b);
  const del = await s.fetch(`/v2/${one}/blobs/${b.digest}`, { method: 'DELETE' });
  assert.equal(del.status, 202);
  await expectError(await s.fetch(`/v2/${one}/blobs/${b.digest}`), 404, 'BLOB_UNKNOWN');
  const res = await s.fetch(`/v2/${two}/blobs/${b.digest}`);
  assert.equal(res.status, 200);
  assert.deepEqual(Buffer.from(await res.arrayBuffer()), b.bytes);
});

test('a deleted blob can be pushed again', async () => {
  const { repository, bytes, digest } = await repoWithBlob();
  assert.equal((await s.fetch(`/v2/${repository}/blobs/${digest}`, { method: 'DELETE' })).status, 202);
  await pushBlob(s.baseUrl, repository, { digest, bytes });
  const res = await s.fetch(`/v2/${repository}/blobs/${digest}`);
  assert.equal(res.status, 200);
  assert.deepEqual(Buffer.from(await res.arrayBuffer()), bytes);
});

test('a zero-byte blob is served with Content-Length 0', async () => {
  const repository = repoName();
  const empty = blob(Buffer.alloc(0));
  assert.equal(empty.digest, 'sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855');
  await pushBlob(s.baseUrl, repository, empty);
  const res = await s.fetch(`/v2/${repository}/blobs/${empty.digest}`);
  assert.equal(res.status, 200);
  assert.equal(res.headers.get('content-length'), '0');
  assert.equal(res.headers.get('docker-content-digest'), empty.digest);
  assert.equal((await res.arrayBuffer()).byteLength, 0);
  const ranged = await s.fetch(`/v2/${repository}/blobs/${empty.digest}`, { headers: { range: 'bytes=0-' } });
  assert.equal(ranged.headers.get('content-range'), 'bytes */0');
  await expectError(ranged, 416, 'RANGE_INVALID');
});

test('blobs pushed under a sha512 digest are served under it', async () => {
  const repository = repoName();
  const bytes = randomBytes(5000);
  const digest = sha512(bytes);
  const post = await s.fetch(`/v2/${repository}/blobs/uploads/?digest=${digest}`, { method: 'POST', body: bytes, headers: { 'content-type': 'application/octet-stream' } });
  assert.equal(post.status, 201, await post.clone().text());
  assert.equal(post.headers.get('docker-content-digest'), digest);
  assert.equal(post.headers.get('location'), `/v2/${repository}/blobs/${digest}`);
  const res = await s.fetch(`/v2/${repository}/blobs/${digest}`);
  assert.equal(res.status, 200);
  assert.equal(res.headers.get('docker-content-digest'), digest);
  assert.deepEqual(Buffer.from(await res.arrayBuffer()), bytes);
  const ranged = await s.fetch(`/v2/${repository}/blobs/${digest}`, { headers: { range: 'bytes=100-199' } });
  assert.equal(ranged.status, 206);
  assert.deepEqual(Buffer.from(await ranged.arrayBuffer()), bytes.subarray(100, 200));
  // Stored under its sha512 only: the sha256 of the same bytes names nothing here.
  await expectError(await s.fetch(`/v2/${repository}/blobs/${sha256(bytes)}`), 404, 'BLOB_UNKNOWN');
});

// --- cross-repository mount (spec: "Mounting a blob from another repository") -----------------

function mountUrl(target: string, digest: string, from?: string): string {
  return `/v2/${target}/blobs/uploads/?mount=${encodeURIComponent(digest)}${from === undefined ? '' : `&from=${encodeURIComponent(from)}`}`;
}

/** Asserts a 202 upload session and that it can be used to push the blob after all. */
async function expectSessionThenPush(res: Response, repository: string, bytes: Buffer, digest: string): Promise<void> {
  assert.equal(res.status, 202, await res.clone().text());
  const location = res.headers.get('location');
  assert.ok(location, 'Location header');
  assert.ok(res.headers.get('docker-upload-uuid'), 'Docker-Upload-UUID header');
  await res.arrayBuffer();
  const url = s.url(location);
  url.searchParams.set('digest', digest);
  const put = await s.fetch(url, { method: 'PUT', body: bytes });
  assert.equal(put.status, 201);
  const get = await s.fetch(`/v2/${repository}/blobs/${digest}`);
  assert.deepEqual(Buffer.from(await get.arrayBuffer()), bytes);
}

test('mounting a blob from a repository that holds it answers 201 and makes it readable', async () => {
  const source = await repoWithBlob(777);
  const target = repoName();
  await pushBlob(s.baseUrl, target, blob(randomBytes(10)));
  const res = await s.fetch(mountUrl(target, source.digest, source.repository), { method: 'POST' });
  assert.equal(res.status, 201);
  assert.equal(res.headers.get('location'), `/v2/${target}/blobs/${source.digest}`);
  assert.equal(res.headers.get('docker-content-digest'), source.digest);
  await res.arrayBuffer();
  const get = await s.fetch(s.url(`/v2/${target}/blobs/${source.digest}`));
  assert.equal(get.status, 200);
  assert.deepEqual(Buffer.from(await get.arrayBuffer()), source.bytes);
});

test('mounting into a repository that does not exist yet creates it', async () => {
  const source = await repoWithBlob();
  const target = repoName();
  const res = await s.fetch(mountUrl(target, source.digest, source.repository), { method: 'POST' });
  assert.equal(res.status, 201);
  const get = await s.fetch(`/v2/${target}/blobs/${source.digest}`, { method: 'HEAD' });
  assert.equal(get.status, 200);
});

test('mounting a blob the target already holds answers 201', async () => {
  const source = await repoWithBlob();
  const res = await s.fetch(mountUrl(source.repository, source.digest, repoName()), { method: 'POST' });
  assert.equal(res.status, 201);
  assert.equal(res.headers.get('docker-content-digest'), source.digest);
});

test('a mount from a repository without the blob opens an upload session instead', async () => {
  const other = await repoWithBlob();
  const target = repoName();
  const b = blob(randomBytes(300));
  await expectSessionThenPush(await s.fetch(mountUrl(target, b.digest, other.repository), { method: 'POST' }), target, b.bytes, b.digest);
});

test('a mount from a repository that does not exist opens an upload session instead', async () => {
  const target = repoName();
  const b = blob(randomBytes(300));
  await expectSessionThenPush(await s.fetch(mountUrl(target, b.digest, repoName()), { method: 'POST' }), target, b.bytes, b.digest);
});

test('a mount from an invalid repository name opens an upload session instead', async () => {
  const source = await repoWithBlob();
  for (const from of ['Not/Valid', 'a..b', '-x', 'x'.repeat(300), '']) {
    const target = repoName();
    const res = await s.fetch(mountUrl(target, source.digest, from), { method: 'POST' });
    await expectSessionThenPush(res, target, source.bytes, source.digest);
  }
});

test('a mount of a blob the caller names but no repository holds opens an upload session', async () => {
  const target = repoName();
  const b = blob(randomBytes(64));
  await expectSessionThenPush(await s.fetch(mountUrl(target, b.digest), { method: 'POST' }), target, b.bytes, b.digest);
});

test('a mount without from answers 201 when another repository holds the blob', async () => {
  const source = await repoWithBlob(321);
  const target = repoName();
  const res = await s.fetch(mountUrl(target, source.digest), { method: 'POST' });
  assert.equal(res.status, 201);
  assert.equal(res.headers.get('location'), `/v2/${target}/blobs/${source.digest}`);
  assert.equal(res.headers.get('docker-content-digest'), source.digest);
  const get = await s.fetch(`/v2/${target}/blobs/${source.digest}`);
  assert.deepEqual(Buffer.from(await get.arrayBuffer()), source.bytes);
});

test('a mount with a malformed digest answers 400 DIGEST_INVALID', async () => {
  await expectError(await s.fetch(mountUrl(repoName(), 'sha256:nope', repoName()), { method: 'POST' }), 400, 'DIGEST_INVALID');
});

test('a mounted blob stays readable after the source repository deletes it', async () => {
  const source = await repoWithBlob();
  const target = repoName();
  assert.equal((await s.fetch(mountUrl(target, source.digest, source.repository), { method: 'POST' })).status, 201);
  assert.equal((await s.fetch(`/v2/${source.repository}/blobs/${source.digest}`, { method: 'DELETE' })).status, 202);
  const get = await s.fetch(`/v2/${target}/blobs/${source.digest}`);
  assert.equal(get.status, 200);
  assert.deepEqual(Buffer.from(await get.arrayBuffer()), source.bytes);
});
