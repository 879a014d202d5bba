import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { test } from 'node:test';
import { MT, blob, buildImage, pushBlob, pushImage, pushManifest, repoName, sha256, type Blob } from '../support/oci.ts';
import { expectError, expectHeadError, httpRequest, sha512, sharedServer } from '../support/http.ts';

const s = sharedServer();

async function pushBlobs(repository: string, blobs: Blob[]): Promise<void> {
  for (const b of blobs) await pushBlob(s.baseUrl, repository, b);
}

function put(repository: string, reference: string, body: Buffer | string, contentType?: string): Promise<Response> {
  const headers: Record<string, string> = {};
  if (contentType !== undefined) headers['content-type'] = contentType;
  return s.fetch(`/v2/${repository}/manifests/${reference}`, { method: 'PUT', body: typeof body === 'string' ? Buffer.from(body) : body, headers });
}

function expectPushed(res: Response, repository: string, digest: string): void {
  assert.equal(res.status, 201);
  assert.equal(res.headers.get('location'), `/v2/${repository}/manifests/${digest}`);
  assert.equal(res.headers.get('docker-content-digest'), digest);
}

/** GET and HEAD the manifest and check it comes back byte for byte with its type and digest. */
async function expectManifest(repository: string, reference: string, bytes: Buffer, mediaType: string): Promise<void> {
  const digest = sha256(bytes);
  const res = await s.fetch(`/v2/${repository}/manifests/${reference}`);
  assert.equal(res.status, 200, `GET ${reference}`);
  assert.equal(res.headers.get('content-type'), mediaType);
  assert.equal(res.headers.get('docker-content-digest'), digest);
  assert.equal(res.headers.get('content-length'), String(bytes.length));
  assert.ok(Buffer.from(await res.arrayBuffer()).equals(bytes), 'the exact bytes pushed come back');
  const head = await s.fetch(`/v2/${repository}/manifests/${reference}`, { method: 'HEAD' });
  assert.equal(head.status, 200, `HEAD ${reference}`);
  assert.equal(head.headers.get('content-type'), mediaType);
  assert.equal(head.headers.get('docker-content-digest'), digest);
  assert.equal(head.headers.get('content-length'), String(bytes.length));
  assert.equal((await head.arrayBuffer()).byteLength, 0);
}

async function expectNoManifest(repository: string, reference: string): Promise<void> {
  await expectError(await s.fetch(`/v2/${repository}/manifests/${reference}`), 404, 'MANIFEST_UNKNOWN');
  await expectHeadError(await s.fetch(`/v2/${repository}/manifests/${reference}`, { method: 'HEAD' }), 404);
}

async function tagsOf(repository: string): Promise<string[]> {
  const res = await s.fetch(`/v2/${repository}/tags/list`);
  assert.equal(res.status, 200);
  return ((await res.json()) as { tags: string[] }).tags;
}

function descriptor(b: Blob, mediaType: string): { mediaType: string; digest: string; size: number } {
  return { mediaType, digest: b.digest, size: b.bytes.length };
}

/** An OCI image's config and one layer, pushed; the manifest is left to the test to write. */
async function pushedParts(repository: string): Promise<{ config: Blob; layer: Blob }> {
  const config = blob(JSON.stringify({ architecture: 'amd64', os: 'linux', nonce: randomBytes(8).toString('hex') }));
  const layer = blob(randomBytes(512));
  await pushBlobs(repository, [config, layer]);
  return { config, layer };
}

/** Pushes `count` platform images and resolves their descriptors for an index. */
async function pushChildren(repository: string, count: number, docker = false): Promise<{ mediaType: string; digest: string; size: number; platform: { os: string; architecture: string } }[]> {
  const out = [];
  for (let i = 0; i < count; i++) {
    const platform = { os: 'linux', architecture: ['amd64', 'arm64', 's390x'][i % 3]! };
    const image = buildImage({ docker, platform });
    await pushImage(s.baseUrl, repository, image, image.digest);
    out.push({ mediaType: image.mediaType, digest: image.digest, size: image.manifest.length, platform });
  }
  return out;
}

test('PUT by tag answers 201 with Location and Docker-Content-Digest; GET by tag and digest serve it', async () => {
  const repository = repoName();
  const image = buildImage({ layers: 2 });
  for (const b of [image.config, ...image.layers]) await pushBlob(s.baseUrl, repository, b);
  expectPushed(await put(repository, 'v1', image.manifest, MT.ociManifest), repository, image.digest);
  await expectManifest(repository, 'v1', image.manifest, MT.ociManifest);
  await expectManifest(repository, image.digest, image.manifest, MT.ociManifest);
  assert.deepEqual(await tagsOf(repository), ['v1']);
});

test('PUT by digest answers 201 and creates no tag', async () => {
  const repository = repoName();
  const image = buildImage();
  for (const b of [image.config, ...image.layers]) await pushBlob(s.baseUrl, repository, b);
  expectPushed(await put(repository, image.digest, image.manifest, MT.ociManifest), repository, image.digest);
  await expectManifest(repository, image.digest, image.manifest, MT.ociManifest);
  assert.deepEqual(await tagsOf(repository), []);
});

test('PUT by a digest that does not match the body answers 400 DIGEST_INVALID and stores nothing', async () => {
  const repository = repoName();
  const image = buildImage();
  await pushImage(s.baseUrl, repository, image, 'other');
  const changed = Buffer.from(image.manifest.toString().replace('"schemaVersion":2', '"schemaVersion": 2'));
  await expectError(await put(repository, image.digest, changed, MT.ociManifest), 400, 'DIGEST_INVALID');
  await expectNoManifest(repository, sha256(changed));
  // A sha512 reference is checked against the sha512 of the body.
  await expectError(await put(repository, sha512(changed), image.manifest, MT.ociManifest), 400, 'DIGEST_INVALID');
});

test('a manifest is stored and served in the exact bytes pushed', async () => {
  const repository = repoName();
  const { config, layer } = await pushedParts(repository);
  // Unusual key order, whitespace, escapes and a trailing newline: any re-serialisation shows.
  const text =
    `{\n\t"layers" : [ {"size":${layer.bytes.length},   "digest":"${layer.digest}","mediaType":"${MT.ociLayer}"} ],\r\n` +
    `  "annotations": {"org.example.note": "caf\\u00e9 \u2603", "org.example.empty": ""},\n` +
    `  "config":{"digest":"${config.digest}","size":${config.bytes.length},"mediaType":"${MT.ociConfig}"},` +
    `   "mediaType":"${MT.ociManifest}"   ,"schemaVersion":2.0\n}\n\n`;
  const bytes = Buffer.from(text, 'utf8');
  expectPushed(await put(repository, 'odd', bytes, MT.ociManifest), repository, sha256(bytes));
  await expectManifest(repository, 'odd', bytes, MT.ociManifest);
  await expectManifest(repository, sha256(bytes), bytes, MT.ociManifest);
});

test('Content-Type round-trips for OCI and Docker manifests and indexes', async () => {
  const repository = repoName();
  const oci = buildImage();
  await pushImage(s.baseUrl, repository, oci, 'oci');
  await expectManifest(repository, 'oci', oci.manifest, MT.ociManifest);

  const docker = buildImage({ docker: true });
  await pushImage(s.baseUrl, repository, docker, 'docker');
  await expectManifest(repository, 'docker', docker.manifest, MT.dockerManifest);

  const ociChildren = await pushChildren(repository, 2);
  const index = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: MT.ociIndex, manifests: ociChildren }, null, 2));
  expectPushed(await put(repository, 'index', index, MT.ociIndex), repository, sha256(index));
  await expectManifest(repository, 'index', index, MT.ociIndex);

  const dockerChildren = await pushChildren(repository, 2, true);
  const list = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: MT.dockerList, manifests: dockerChildren }));
  expectPushed(await put(repository, 'list', list, MT.dockerList), repository, sha256(list));
  await expectManifest(repository, 'list', list, MT.dockerList);
});

test('a manifest without a mediaType field is served with the Content-Type it was pushed with', async () => {
  const repository = repoName();
  const { config, layer } = await pushedParts(repository);
  const manifest = Buffer.from(JSON.stringify({ schemaVersion: 2, config: descriptor(config, MT.ociConfig), layers: [descriptor(layer, MT.ociLayer)] }));
  expectPushed(await put(repository, 'bare', manifest, MT.ociManifest), repository, sha256(manifest));
  await expectManifest(repository, 'bare', manifest, MT.ociManifest);

  const children = await pushChildren(repository, 1);
  const index = Buffer.from(JSON.stringify({ schemaVersion: 2, manifests: children }));
  expectPushed(await put(repository, 'bare-index', index, MT.ociIndex), repository, sha256(index));
  await expectManifest(repository, 'bare-index', index, MT.ociIndex);
});

test('parameters on the Content-Type are ignored', async () => {
  const repository = repoName();
  const image = buildImage();
  for (const b of [image.config, ...image.layers]) await pushBlob(s.baseUrl, repository, b);
  expectPushed(await put(repository, 'v1', image.manifest, `${MT.ociManifest}; charset=utf-8`), repository, image.digest);
  await expectManifest(repository, 'v1', image.manifest, MT.ociManifest);
});

test('a Content-Type that contradicts the mediaType field answers 400 MANIFEST_INVALID', async () => {
  const repository = repoName();
  const image = buildImage();
  for (const b of [image.config, ...image.layers]) await pushBlob(s.baseUrl, repository, b);
  await expectError(await put(repository, 'v1', image.manifest, MT.dockerManifest), 400, 'MANIFEST_INVALID');
  await expectNoManifest(repository, image.digest);
});

test('a manifest referencing a missing layer or config answers 400 MANIFEST_BLOB_UNKNOWN', async () => {
  const repository = repoName();
  const { config, layer } = await pushedParts(repository);
  const missing = blob(randomBytes(100));
  const missingLayer = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: MT.ociManifest, config: descriptor(config, MT.ociConfig), layers: [descriptor(layer, MT.ociLayer), descriptor(missing, MT.ociLayer)] }));
  const body = await expectError(await put(repository, 'a', missingLayer, MT.ociManifest), 400, 'MANIFEST_BLOB_UNKNOWN');
  assert.deepEqual(body.errors[0]!.detail, { digest: missing.digest });
  const missingConfig = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: MT.ociManifest, config: descriptor(missing, MT.ociConfig), layers: [descriptor(layer, MT.ociLayer)] }));
  await expectError(await put(repository, 'b', missingConfig, MT.ociManifest), 400, 'MANIFEST_BLOB_UNKNOWN');
  await expectNoManifest(repository, 'a');
  await expectNoManifest(repository, 'b');
  await expectNoManifest(repository, sha256(missingLayer));
});

test('a blob held only by another repository does not satisfy a manifest', async () => {
  const elsewhere = repoName();
  const image = buildImage();
  await pushImage(s.baseUrl, elsewhere, image);
  const repository = repoName();
  await pushBlob(s.baseUrl, repository, image.config);
  await expectError(await put(repository, 'v1', image.manifest, MT.ociManifest), 400, 'MANIFEST_BLOB_UNKNOWN');
});

test('a descriptor whose size differs from the blob answers 400 MANIFEST_INVALID', async () => {
  const repository = repoName();
  const { config, layer } = await pushedParts(repository);
  const manifest = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: MT.ociManifest, config: descriptor(config, MT.ociConfig), layers: [{ ...descriptor(layer, MT.ociLayer), size: layer.bytes.length + 1 }] }));
  await expectError(await put(repository, 'v1', manifest, MT.ociManifest), 400, 'MANIFEST_INVALID');
});

test('non-distributable layers with URLs need not be in the repository', async () => {
  const repository = repoName();
  const { config, layer } = await pushedParts(repository);
  const foreign = blob(randomBytes(64));
  const manifest = Buffer.from(JSON.stringify({
    schemaVersion: 2,
    mediaType: MT.ociManifest,
    config: descriptor(config, MT.ociConfig),
    layers: [descriptor(layer, MT.ociLayer), { ...descriptor(foreign, 'application/vnd.oci.image.layer.nondistributable.v1.tar+gzip'), urls: ['https://example.com/layer'] }],
  }));
  expectPushed(await put(repository, 'v1', manifest, MT.ociManifest), repository, sha256(manifest));
});

test('an index listing a manifest the repository lacks answers 400 MANIFEST_BLOB_UNKNOWN', async () => {
  const repository = repoName();
  const children = await pushChildren(repository, 1);
  const absent = buildImage({ platform: { os: 'linux', architecture: 'arm64' } });
  const index = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: MT.ociIndex, manifests: [...children, { mediaType: MT.ociManifest, digest: absent.digest, size: absent.manifest.length }] }));
  const body = await expectError(await put(repository, 'multi', index, MT.ociIndex), 400, 'MANIFEST_BLOB_UNKNOWN');
  assert.deepEqual(body.errors[0]!.detail, { digest: absent.digest });
  await expectNoManifest(repository, 'multi');
});

test('malformed manifests answer 400 MANIFEST_INVALID', async () => {
  const repository = repoName();
  const { config, layer } = await pushedParts(repository);
  const c = descriptor(config, MT.ociConfig);
  const l = descriptor(layer, MT.ociLayer);
  const cases: [string, string | undefined, string][] = [
    ['not JSON', MT.ociManifest, '{"schemaVersion": 2,'],
    ['empty body', MT.ociManifest, ''],
    ['a JSON array', MT.ociManifest, '[]'],
    ['a JSON string', MT.ociManifest, '"manifest"'],
    ['schema 1 by media type', 'application/vnd.docker.distribution.manifest.v1+prettyjws', JSON.stringify({ schemaVersion: 1, name: repository, tag: 'v1', fsLayers: [], history: [] })],
    ['schema 1 unsigned', 'application/vnd.docker.distribution.manifest.v1+json', JSON.stringify({ schemaVersion: 1, name: repository, tag: 'v1', fsLayers: [], history: [] })],
    ['schemaVersion 1 with an OCI type', MT.ociManifest, JSON.stringify({ schemaVersion: 1, mediaType: MT.ociManifest, config: c, layers: [l] })],
    ['schemaVersion 3', MT.ociManifest, JSON.stringify({ schemaVersion: 3, mediaType: MT.ociManifest, config: c, layers: [l] })],
    ['no schemaVersion', MT.ociManifest, JSON.stringify({ mediaType: MT.ociManifest, config: c, layers: [l] })],
    ['an unknown mediaType', 'application/vnd.example.thing+json', JSON.stringify({ schemaVersion: 2, mediaType: 'application/vnd.example.thing+json', config: c, layers: [l] })],
    ['an unknown Content-Type and no mediaType', 'application/json', JSON.stringify({ schemaVersion: 2, config: c, layers: [l] })],
    ['no Content-Type and no mediaType', undefined, JSON.stringify({ schemaVersion: 2, config: c, layers: [l] })],
    ['a non-string mediaType', MT.ociManifest, JSON.stringify({ schemaVersion: 2, mediaType: 7, config: c, layers: [l] })],
    ['no config', MT.ociManifest, JSON.stringify({ schemaVersion: 2, mediaType: MT.ociManifest, layers: [l] })],
    ['layers not a list', MT.ociManifest, JSON.stringify({ schemaVersion: 2, mediaType: MT.ociManifest, config: c, layers: l })],
    ['a malformed layer digest', MT.ociManifest, JSON.stringify({ schemaVersion: 2, mediaType: MT.ociManifest, config: c, layers: [{ ...l, digest: 'sha256:1234' }] })],
    ['a negative size', MT.ociManifest, JSON.stringify({ schemaVersion: 2, mediaType: MT.ociManifest, config: c, layers: [{ ...l, size: -1 }] })],
    ['a non-string annotation', MT.ociManifest, JSON.stringify({ schemaVersion: 2, mediaType: MT.ociManifest, config: c, layers: [l], annotations: { a: 1 } })],
    ['a Docker manifest with no layers', MT.dockerManifest, JSON.stringify({ schemaVersion: 2, mediaType: MT.dockerManifest, config: { ...c, mediaType: MT.dockerConfig }, layers: [] })],
    ['an index without manifests', MT.ociIndex, JSON.stringify({ schemaVersion: 2, mediaType: MT.ociIndex })],
    ['a malformed subject', MT.ociManifest, JSON.stringify({ schemaVersion: 2, mediaType: MT.ociManifest, config: c, layers: [l], subject: { mediaType: MT.ociManifest, digest: 'nope', size: 1 } })],
  ];
  for (const [what, contentType, body] of cases) {
    const res = await put(repository, 'bad', body, contentType);
    const text = await res.text();
    assert.equal(res.status, 400, `${what}: ${text}`);
    assert.equal((JSON.parse(text) as { errors: { code: string }[] }).errors[0]?.code, 'MANIFEST_INVALID', what);
  }
  await expectNoManifest(repository, 'bad');
});

test('manifests up to 4 MiB are accepted; larger ones answer 413 SIZE_INVALID', async () => {
  const repository = repoName();
  const { config, layer } = await pushedParts(repository);
  const limit = 4 * 1024 * 1024;
  const sized = (size: number): Buffer => {
    const base = { schemaVersion: 2, mediaType: MT.ociManifest, config: descriptor(config, MT.ociConfig), layers: [descriptor(layer, MT.ociLayer)], annotations: { pad: '' } };
    const overhead = Buffer.byteLength(JSON.stringify(base));
    base.annotations.pad = 'x'.repeat(size - overhead);
    const bytes = Buffer.from(JSON.stringify(base));
    assert.equal(bytes.length, size);
    return bytes;
  };
  const atLimit = sized(limit);
  expectPushed(await put(repository, 'big', atLimit, MT.ociManifest), repository, sha256(atLimit));
  await expectManifest(repository, 'big', atLimit, MT.ociManifest);

  const over = sized(limit + 1);
  await expectError(await put(repository, 'too-big', over, MT.ociManifest), 413, 'SIZE_INVALID');
  // The same without a Content-Length (chunked transfer): refused once the limit is crossed.
  const chunks: Buffer[] = [];
  for (let i = 0; i < over.length; i += 256 * 1024) chunks.push(over.subarray(i, i + 256 * 1024));
  const streamed = await httpRequest(s.url(`/v2/${repository}/manifests/too-big`), { method: 'PUT', headers: { 'content-type': MT.ociManifest }, chunks });
  assert.equal(streamed.status, 413);
  assert.equal((JSON.parse(streamed.body.toString()) as { errors: { code: string }[] }).errors[0]?.code, 'SIZE_INVALID');
  await expectNoManifest(repository, 'too-big');
  await expectNoManifest(repository, sha256(over));
});

/** Spec "Pulling manifests" / "Deleting Manifests": nothing can be stored under an invalid reference, so it is not found. */
async function expectNeverStored(repository: string, reference: string): Promise<void> {
  const body = await expectError(await s.fetch(`/v2/${repository}/manifests/${reference}`), 404, 'MANIFEST_UNKNOWN');
  assert.match(body.errors[0]!.message, /neither a valid tag .* nor a valid digest/, `GET ${reference}`);
  await expectHeadError(await s.fetch(`/v2/${repository}/manifests/${reference}`, { method: 'HEAD' }), 404);
  await expectError(await s.fetch(`/v2/${repository}/manifests/${reference}`, { method: 'DELETE' }), 404, 'MANIFEST_UNKNOWN');
}

test('invalid tags: a PUT answers 400 TAG_INVALID; GET, HEAD and DELETE answer 404 MANIFEST_UNKNOWN', async () => {
  const repository = repoName();
  const image = buildImage();
  await pushImage(s.baseUrl, repository, image);
  for (const tag of ['-lead', '.lead', 'a'.repeat(129), 'has+plus', 'spa%20ce', 'caf%C3%A9']) {
    await expectError(await put(repository, tag, image.manifest, MT.ociManifest), 400, 'TAG_INVALID');
    await expectNeverStored(repository, tag);
  }
  for (const tag of ['a'.repeat(128), '_under', 'V1.2.3-rc_4', '0']) {
    expectPushed(await put(repository, tag, image.manifest, MT.ociManifest), repository, image.digest);
    await expectManifest(repository, tag, image.manifest, MT.ociManifest);
  }
});

test('malformed digests as references: a PUT answers 400 DIGEST_INVALID; GET, HEAD and DELETE answer 404 MANIFEST_UNKNOWN', async () => {
  const repository = repoName();
  await pushImage(s.baseUrl, repository, buildImage());
  for (const ref of ['sha256:abc', 'sha256:zz', `sha256:${'A'.repeat(64)}`, `md5:${'a'.repeat(32)}`, `sha384:${'a'.repeat(96)}`, 'a:b']) {
    await expectError(await put(repository, ref, '{}', MT.ociManifest), 400, 'DIGEST_INVALID');
    await expectNeverStored(repository, ref);
  }
});

test('an invalid reference in a repository that does not exist answers 404 NAME_UNKNOWN', async () => {
  const name = repoName();
  for (const ref of ['.lead', 'sha256:zz']) {
    await expectError(await s.fetch(`/v2/${name}/manifests/${ref}`), 404, 'NAME_UNKNOWN');
    await expectError(await s.fetch(`/v2/${name}/manifests/${ref}`, { method: 'DELETE' }), 404, 'NAME_UNKNOWN');
  }
});

test('an unknown tag or digest answers 404 MANIFEST_UNKNOWN', async () => {
  const repository = repoName();
  await pushImage(s.baseUrl, repository, buildImage());
  await expectNoManifest(repository, 'nope');
  await expectNoManifest(repository, sha256(randomBytes(8)));
  await expectError(await s.fetch(`/v2/${repository}/manifests/nope`, { method: 'DELETE' }), 404, 'MANIFEST_UNKNOWN');
  await expectError(await s.fetch(`/v2/${repository}/manifests/${sha256('x')}`, { method: 'DELETE' }), 404, 'MANIFEST_UNKNOWN');
});

test('invalid repository names answer 400 NAME_INVALID', async () => {
  const image = buildImage();
  const names = ['Upper/case', 'UPPER', 'a'.repeat(257), `${'a'.repeat(200)}/${'b'.repeat(56)}`, 'a..b', 'a/-b', 'a-/b', 'a_/b', '-ab', 'ab-', 'a//b', 'a/b/', 'a', 'a%20b', 'a:b'];
  for (const name of names) {
    await expectError(await s.fetch(`/v2/${name}/manifests/latest`), 400, 'NAME_INVALID');
    await expectError(await put(name, 'latest', image.manifest, MT.ociManifest), 400, 'NAME_INVALID');
    await expectError(await s.fetch(`/v2/${name}/tags/list`), 400, 'NAME_INVALID');
    await expectError(await s.fetch(`/v2/${name}/blobs/${image.config.digest}`), 400, 'NAME_INVALID');
  }
});

test('repository names at the length limit are accepted', async () => {
  for (const name of ['a'.repeat(256), `${'a'.repeat(127)}/${'b'.repeat(128)}`, 'ab']) {
    const image = buildImage();
    await pushImage(s.baseUrl, name, image, 'v1');
    await expectManifest(name, 'v1', image.manifest, MT.ociManifest);
  }
});

test('a repository that does not exist answers 404 NAME_UNKNOWN', async () => {
  const name = repoName();
  await expectError(await s.fetch(`/v2/${name}/manifests/latest`), 404, 'NAME_UNKNOWN');
  await expectHeadError(await s.fetch(`/v2/${name}/manifests/latest`, { method: 'HEAD' }), 404);
  await expectError(await s.fetch(`/v2/${name}/manifests/${sha256('x')}`), 404, 'NAME_UNKNOWN');
  await expectError(await s.fetch(`/v2/${name}/manifests/${sha256('x')}`, { method: 'DELETE' }), 404, 'NAME_UNKNOWN');
  await expectError(await s.fetch(`/v2/${name}/tags/list`), 404, 'NAME_UNKNOWN');
});

test('nested repository names work, including components named like endpoints', async () => {
  const prefix = repoName('team');
  for (const name of [`${prefix}/service/api`, `${prefix}/manifests/x`, `${prefix}/blobs/uploads`, `${prefix}/tags/list`, `${prefix}/referrers`]) {
    const image = buildImage();
    await pushImage(s.baseUrl, name, image, 'v1');
    await expectManifest(name, 'v1', image.manifest, MT.ociManifest);
    const layer = await s.fetch(`/v2/${name}/blobs/${image.layers[0]!.digest}`);
    assert.equal(layer.status, 200, name);
    assert.ok(Buffer.from(await layer.arrayBuffer()).equals(image.layers[0]!.bytes));
    assert.deepEqual(await tagsOf(name), ['v1'], name);
  }
  // The parent path is a different repository, which does not exist.
  await expectError(await s.fetch(`/v2/${prefix}/service/manifests/v1`), 404, 'NAME_UNKNOWN');
});

test('manifests can be pushed and pulled by sha512 digest', async () => {
  const repository = repoName();
  const image = buildImage();
  for (const b of [image.config, ...image.layers]) await pushBlob(s.baseUrl, repository, b);
  const digest = sha512(image.manifest);
  const res = await put(repository, digest, image.manifest, MT.ociManifest);
  assert.equal(res.status, 201);
  assert.equal(res.headers.get('docker-content-digest'), digest);
  assert.equal(res.headers.get('location'), `/v2/${repository}/manifests/${digest}`);
  const get = await s.fetch(`/v2/${repository}/manifests/${digest}`);
  assert.equal(get.status, 200);
  assert.equal(get.headers.get('docker-content-digest'), digest);
  assert.ok(Buffer.from(await get.arrayBuffer()).equals(image.manifest));
});

test('pushing the same manifest again answers 201 again', async () => {
  const repository = repoName();
  const image = buildImage();
  await pushImage(s.baseUrl, repository, image, 'v1');
  expectPushed(await put(repository, 'v1', image.manifest, MT.ociManifest), repository, image.digest);
  expectPushed(await put(repository, image.digest, image.manifest, MT.ociManifest), repository, image.digest);
  await expectManifest(repository, 'v1', image.manifest, MT.ociManifest);
});

test('an index with no manifests can be pushed into a new repository', async () => {
  const repository = repoName();
  const index = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: MT.ociIndex, manifests: [] }));
  expectPushed(await put(repository, 'empty', index, MT.ociIndex), repository, sha256(index));
  await expectManifest(repository, 'empty', index, MT.ociIndex);
});

test('a manifest is also readable through the blobs endpoint', async () => {
  const repository = repoName();
  const image = buildImage();
  await pushImage(s.baseUrl, repository, image);
  const res = await s.fetch(`/v2/${repository}/blobs/${image.digest}`);
  assert.equal(res.status, 200);
  assert.equal(res.headers.get('docker-content-digest'), image.digest);
  assert.ok(Buffer.from(await res.arrayBuffer()).equals(image.manifest));
});

test('DELETE by digest removes the manifest and every tag on it', async () => {
  const repository = repoName();
  const image = buildImage();
  await pushImage(s.baseUrl, repository, image, 'a');
  await pushManifest(s.baseUrl, repository, 'b', image.manifest, MT.ociManifest);
  const keep = buildImage();
  await pushImage(s.baseUrl, repository, keep, 'keep');
  const del = await s.fetch(`/v2/${repository}/manifests/${image.digest}`, { method: 'DELETE' });
  assert.equal(del.status, 202);
  await del.arrayBuffer();
  await expectNoManifest(repository, image.digest);
  await expectNoManifest(repository, 'a');
  await expectNoManifest(repository, 'b');
  assert.deepEqual(await tagsOf(repository), ['keep']);
  await expectManifest(repository, 'keep', keep.manifest, MT.ociManifest);
  await expectError(await s.fetch(`/v2/${repository}/manifests/${image.digest}`, { method: 'DELETE' }), 404, 'MANIFEST_UNKNOWN');
  // It can be pushed again afterwards.
  expectPushed(await put(repository, 'again', image.manifest, MT.ociManifest), repository, image.digest);
  await expectManifest(repository, 'again', image.manifest, MT.ociManifest);
});

test('DELETE by tag removes only that tag', async () => {
  const repository = repoName();
  const image = buildImage();
  await pushImage(s.baseUrl, repository, image, 'a');
  await pushManifest(s.baseUrl, repository, 'b', image.manifest, MT.ociManifest);
  const del = await s.fetch(`/v2/${repository}/manifests/a`, { method: 'DELETE' });
  assert.equal(del.status, 202);
  await del.arrayBuffer();
  await expectNoManifest(repository, 'a');
  await expectManifest(repository, 'b', image.manifest, MT.ociManifest);
  await expectManifest(repository, image.digest, image.manifest, MT.ociManifest);
  assert.deepEqual(await tagsOf(repository), ['b']);
  await expectError(await s.fetch(`/v2/${repository}/manifests/a`, { method: 'DELETE' }), 404, 'MANIFEST_UNKNOWN');
});

test('a manifest an index still lists cannot be deleted (409 DENIED) until the index is', async () => {
  const repository = repoName();
  const children = await pushChildren(repository, 2);
  const index = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: MT.ociIndex, manifests: children }));
  expectPushed(await put(repository, 'multi', index, MT.ociIndex), repository, sha256(index));
  const child = children[0]!.digest;
  await expectError(await s.fetch(`/v2/${repository}/manifests/${child}`, { method: 'DELETE' }), 409, 'DENIED');
  assert.equal((await s.fetch(`/v2/${repository}/manifests/${child}`, { method: 'HEAD' })).status, 200, 'the child survives');
  assert.equal((await s.fetch(`/v2/${repository}/manifests/${sha256(index)}`, { method: 'DELETE' })).status, 202);
  await expectNoManifest(repository, 'multi');
  assert.equal((await s.fetch(`/v2/${repository}/manifests/${child}`, { method: 'DELETE' })).status, 202);
  await expectNoManifest(repository, child);
  assert.equal((await s.fetch(`/v2/${repository}/manifests/${children[1]!.digest}`, { method: 'HEAD' })).status, 200, 'the other child is untouched');
});

test('deleting a manifest leaves layers it shares with another manifest readable', async () => {
  const repository = repoName();
  const shared = blob(randomBytes(2048));
  const configs = [blob('{"os":"linux","n":1}'), blob('{"os":"linux","n":2}')];
  await pushBlobs(repository, [shared, ...configs]);
  const manifests = configs.map((config) => Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: MT.ociManifest, config: descriptor(config, MT.ociConfig), layers: [descriptor(shared, MT.ociLayer)] })));
  expectPushed(await put(repository, 'one', manifests[0]!, MT.ociManifest), repository, sha256(manifests[0]!));
  expectPushed(await put(repository, 'two', manifests[1]!, MT.ociManifest), repository, sha256(manifests[1]!));
  assert.equal((await s.fetch(`/v2/${repository}/manifests/${sha256(manifests[0]!)}`, { method: 'DELETE' })).status, 202);
  const layer = await s.fetch(`/v2/${repository}/blobs/${shared.digest}`);
  assert.equal(layer.status, 200);
  assert.ok(Buffer.from(await layer.arrayBuffer()).equals(shared.bytes));
  await expectManifest(repository, 'two', manifests[1]!, MT.ociManifest);
  // The other manifest can still be pushed again from what is left.
  expectPushed(await put(repository, 'one', manifests[0]!, MT.ociManifest), repository, sha256(manifests[0]!));
});

test('pushing a tag again moves it to the new manifest', async () => {
  const repository = repoName();
  const first = buildImage();
  const second = buildImage();
  await pushImage(s.baseUrl, repository, first, 'latest');
  await expectManifest(repository, 'latest', first.manifest, MT.ociManifest);
  await pushImage(s.baseUrl, repository, second, 'latest');
  await expectManifest(repository, 'latest', second.manifest, MT.ociManifest);
  await expectManifest(repository, first.digest, first.manifest, MT.ociManifest);
  assert.deepEqual(await tagsOf(repository), ['latest']);
  // And a Docker manifest can replace an OCI one under the same tag.
  const docker = buildImage({ docker: true });
  await pushImage(s.baseUrl, repository, docker, 'latest');
  await expectManifest(repository, 'latest', docker.manifest, MT.dockerManifest);
});
