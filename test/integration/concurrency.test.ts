import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { test } from 'node:test';
import { MT, blob, buildImage, pushBlob, pushImage, repoName, sha256 } from '../support/oci.ts';
import { checkErrorBody, expectError, expectHeadError, sharedServer } from '../support/http.ts';

const s = sharedServer();

const PARALLEL = 16;

interface Outcome {
  status: number;
  code: string | undefined;
  headers: Headers;
  body: string;
}

/** Runs a request and records its status and, for errors, the checked OCI error code. */
async function outcome(path: string | URL, init?: RequestInit): Promise<Outcome> {
  const res = await s.fetch(path, init);
  const body = await res.text();
  const code = res.status >= 400 && init?.method !== 'HEAD' ? checkErrorBody(res.headers.get('content-type'), body, JSON.parse(body).errors[0].code).errors[0]!.code : undefined;
  return { status: res.status, code, headers: res.headers, body };
}

function tally(outcomes: Outcome[]): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const o of outcomes) {
    const key = o.code ? `${o.status} ${o.code}` : String(o.status);
    counts[key] = (counts[key] ?? 0) + 1;
  }
  return counts;
}

async function startUpload(repository: string): Promise<URL> {
  const res = await s.fetch(`/v2/${repository}/blobs/uploads/`, { method: 'POST' });
  assert.equal(res.status, 202);
  return s.url(res.headers.get('location')!);
}

async function uploadSize(url: URL): Promise<number> {
  const res = await s.fetch(url);
  assert.equal(res.status, 204);
  const end = Number(/^0-(\d+)$/.exec(res.headers.get('range') ?? '')![1]);
  return end === 0 ? 0 : end + 1;
}

async function expectBlob(repository: string, bytes: Buffer): Promise<void> {
  const res = await s.fetch(`/v2/${repository}/blobs/${sha256(bytes)}`);
  assert.equal(res.status, 200);
  assert.ok(Buffer.from(await res.arrayBuffer()).equals(bytes), 'blob bytes intact');
}

test('concurrent pushes of the same blob into one repository all succeed', async () => {
  const repository = repoName();
  const b = blob(randomBytes(256 * 1024));
  const monolithic = Array.from({ length: PARALLEL }, async () => {
    const url = await startUpload(repository);
    url.searchParams.set('digest', b.digest);
    return outcome(url, { method: 'PUT', body: b.bytes });
  });
  const single = Array.from({ length: PARALLEL }, () => outcome(`/v2/${repository}/blobs/uploads/?digest=${b.digest}`, { method: 'POST', body: b.bytes }));
  const outcomes = await Promise.all([...monolithic, ...single]);
  assert.deepEqual(tally(outcomes), { '201': PARALLEL * 2 });
  for (const o of outcomes) assert.equal(o.headers.get('docker-content-digest'), b.digest);
  await expectBlob(repository, b.bytes);
});

test('concurrent first pushes into a new repository all succeed and create it once', async () => {
  const repository = repoName();
  const blobs = Array.from({ length: PARALLEL }, () => blob(randomBytes(1000)));
  const outcomes = await Promise.all(blobs.map((b) => outcome(`/v2/${repository}/blobs/uploads/?digest=${b.digest}`, { method: 'POST', body: b.bytes })));
  assert.deepEqual(tally(outcomes), { '201': PARALLEL });
  for (const b of blobs) await expectBlob(repository, b.bytes);
  const catalog = (await (await s.fetch('/v2/_catalog')).json()) as { repositories: string[] };
  assert.equal(catalog.repositories.filter((n) => n === repository).length, 1);
});

test('concurrent pushes of the same blob into many repositories all succeed', async () => {
  const b = blob(randomBytes(64 * 1024));
  const repositories = Array.from({ length: PARALLEL }, () => repoName());
  const outcomes = await Promise.all(repositories.map((r) => outcome(`/v2/${r}/blobs/uploads/?digest=${b.digest}`, { method: 'POST', body: b.bytes })));
  assert.deepEqual(tally(outcomes), { '201': PARALLEL });
  for (const r of repositories) await expectBlob(r, b.bytes);
});

test('concurrent mounts of one blob into one repository all answer 201', async () => {
  const source = repoName();
  const b = blob(randomBytes(4096));
  await pushBlob(s.baseUrl, source, b);
  const target = repoName();
  const outcomes = await Promise.all(Array.from({ length: PARALLEL }, () => outcome(`/v2/${target}/blobs/uploads/?mount=${b.digest}&from=${source}`, { method: 'POST' })));
  assert.deepEqual(tally(outcomes), { '201': PARALLEL });
  await expectBlob(target, b.bytes);
});

test('concurrent pushes of different manifests to one tag leave it on one of them', async () => {
  const repository = repoName();
  const images = Array.from({ length: PARALLEL }, () => buildImage({ layers: 1, layerBytes: 256 }));
  await Promise.all(images.map((image) => Promise.all([image.config, ...image.layers].map((b) => pushBlob(s.baseUrl, repository, b)))));
  const outcomes = await Promise.all(
    images.map((image) => outcome(`/v2/${repository}/manifests/race`, { method: 'PUT', body: image.manifest, headers: { 'content-type': MT.ociManifest } })),
  );
  assert.deepEqual(tally(outcomes), { '201': PARALLEL });
  const res = await s.fetch(`/v2/${repository}/manifests/race`);
  assert.equal(res.status, 200);
  const body = Buffer.from(await res.arrayBuffer());
  const digest = res.headers.get('docker-content-digest');
  assert.equal(sha256(body), digest, 'the tag serves the manifest its digest header names');
  const winner = images.find((image) => image.digest === digest);
  assert.ok(winner, 'the tag points at one of the pushed manifests');
  assert.ok(body.equals(winner.manifest));
  for (const image of images) {
    assert.equal((await s.fetch(`/v2/${repository}/manifests/${image.digest}`, { method: 'HEAD' })).status, 200, 'every pushed manifest is stored');
  }
  const tags = (await (await s.fetch(`/v2/${repository}/tags/list`)).json()) as { tags: string[] };
  assert.deepEqual(tags.tags, ['race']);
});

test('concurrent pushes of the same manifest all succeed', async () => {
  const repository = repoName();
  const image = buildImage();
  for (const b of [image.config, ...image.layers]) await pushBlob(s.baseUrl, repository, b);
  const outcomes = await Promise.all(
    Array.from({ length: PARALLEL }, (_, i) =>
      outcome(`/v2/${repository}/manifests/${i % 2 === 0 ? image.digest : `t${i}`}`, { method: 'PUT', body: image.manifest, headers: { 'content-type': MT.ociManifest } }),
    ),
  );
  assert.deepEqual(tally(outcomes), { '201': PARALLEL });
  const res = await s.fetch(`/v2/${repository}/manifests/${image.digest}`);
  assert.ok(Buffer.from(await res.arrayBuffer()).equals(image.manifest));
});

test('concurrent deletes of one manifest: one 202, the rest 404 MANIFEST_UNKNOWN', async () => {
  const repository = repoName();
  const image = buildImage();
  await pushImage(s.baseUrl, repository, image, 'v1');
  const outcomes = await Promise.all(Array.from({ length: PARALLEL }, () => outcome(`/v2/${repository}/manifests/${image.digest}`, { method: 'DELETE' })));
  assert.deepEqual(tally(outcomes), { '202': 1, '404 MANIFEST_UNKNOWN': PARALLEL - 1 });
  await expectError(await s.fetch(`/v2/${repository}/manifests/v1`), 404, 'MANIFEST_UNKNOWN');
});

test('concurrent ranged PATCHes to one upload: in-order ones succeed, the rest 416, and the upload completes', async () => {
  const repository = repoName();
  const url = await startUpload(repository);
  const CHUNK = 4096;
  const all = randomBytes(CHUNK * PARALLEL);
  const outcomes = await Promise.all(
    Array.from({ length: PARALLEL }, (_, i) =>
      outcome(url, { method: 'PATCH', body: all.subarray(i * CHUNK, (i + 1) * CHUNK), headers: { 'content-range': `${i * CHUNK}-${(i + 1) * CHUNK - 1}` } }),
    ),
  );
  for (const o of outcomes) assert.ok(o.status === 202 || (o.status === 416 && o.code === 'RANGE_INVALID'), `unexpected ${o.status} ${o.body}`);
  const accepted = outcomes.filter((o) => o.status === 202).length;
  assert.ok(accepted >= 1, 'the chunk at 0 is always accepted');
  let size = await uploadSize(url);
  assert.equal(size, accepted * CHUNK, 'the upload holds exactly the accepted chunks');
  assert.equal(size % CHUNK, 0, 'no partial chunk');
  // Resume from where the registry says the upload stands.
  while (size < all.length) {
    const res = await s.fetch(url, { method: 'PATCH', body: all.subarray(size, size + CHUNK), headers: { 'content-range': `${size}-${size + CHUNK - 1}` } });
    assert.equal(res.status, 202);
    await res.arrayBuffer();
    size = await uploadSize(url);
  }
  const done = new URL(url);
  done.searchParams.set('digest', sha256(all));
  assert.equal((await s.fetch(done, { method: 'PUT' })).status, 201);
  await expectBlob(repository, all);
});

/** Every order in which the chunks could have been appended. */
function permutations<T>(items: T[]): T[][] {
  if (items.length <= 1) return [items];
  return items.flatMap((item, i) => permutations([...items.slice(0, i), ...items.slice(i + 1)]).map((rest) => [item, ...rest]));
}

test('concurrent unranged PATCHes to one upload never interleave: the digest check passes or fails cleanly', async () => {
  const repository = repoName();
  const url = await startUpload(repository);
  const chunks = Array.from({ length: 6 }, (_, i) => randomBytes(20_000 + i * 3_000));
  const outcomes = await Promise.all(chunks.map((chunk) => outcome(url, { method: 'PATCH', body: chunk })));
  for (const o of outcomes) assert.ok(o.status === 202 || (o.status === 416 && o.code === 'RANGE_INVALID'), `unexpected ${o.status} ${o.body}`);
  const accepted = chunks.filter((_, i) => outcomes[i]!.status === 202);
  assert.equal(await uploadSize(url), accepted.reduce((n, c) => n + c.length, 0), 'the upload holds exactly the accepted chunks');
  const intended = Buffer.concat(accepted);
  const done = new URL(url);
  done.searchParams.set('digest', sha256(intended));
  const res = await outcome(done, { method: 'PUT' });
  if (res.status === 201) {
    await expectBlob(repository, intended);
    return;
  }
  // Appended in another order: refused cleanly, nothing visible, and the bytes were whole chunks.
  assert.equal(res.status, 400);
  assert.equal(res.code, 'DIGEST_INVALID');
  await expectHeadError(await s.fetch(`/v2/${repository}/blobs/${sha256(intended)}`, { method: 'HEAD' }), 404);
  const actual = (JSON.parse(res.body) as { errors: { detail?: { actual?: string } }[] }).errors[0]!.detail?.actual;
  if (actual !== undefined) {
    const possible = new Set(permutations(accepted).map((order) => sha256(Buffer.concat(order))));
    assert.ok(possible.has(actual), 'the upload holds the accepted chunks, whole, in some order');
  }
});

test('concurrent completions of one upload: one 201, the rest 404 BLOB_UPLOAD_UNKNOWN', async () => {
  const repository = repoName();
  const url = await startUpload(repository);
  const bytes = randomBytes(50_000);
  const patched = await s.fetch(url, { method: 'PATCH', body: bytes });
  assert.equal(patched.status, 202);
  const done = new URL(url);
  done.searchParams.set('digest', sha256(bytes));
  const outcomes = await Promise.all(Array.from({ length: 8 }, () => outcome(done, { method: 'PUT' })));
  assert.deepEqual(tally(outcomes), { '201': 1, '404 BLOB_UPLOAD_UNKNOWN': 7 });
  await expectBlob(repository, bytes);
});

test('a cancel racing chunks leaves no session behind', async () => {
  const repository = repoName();
  const url = await startUpload(repository);
  const outcomes = await Promise.all([
    ...Array.from({ length: 4 }, () => outcome(url, { method: 'PATCH', body: randomBytes(10_000) })),
    outcome(url, { method: 'DELETE' }),
    ...Array.from({ length: 4 }, () => outcome(url, { method: 'PATCH', body: randomBytes(10_000) })),
  ]);
  for (const o of outcomes) {
    assert.ok([202, 204].includes(o.status) || (o.status === 404 && o.code === 'BLOB_UPLOAD_UNKNOWN'), `unexpected ${o.status} ${o.body}`);
  }
  assert.equal(outcomes[4]!.status, 204, 'the cancel itself succeeds');
  await expectError(await s.fetch(url), 404, 'BLOB_UPLOAD_UNKNOWN');
});
