import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { test, type TestContext } from 'node:test';
import { startServer, type TestServer } from '../support/server.ts';
import { MT, repoName, sha256 } from '../support/oci.ts';
import { buildRealImage, buildRealIndex, layerFiles, readDirImage, readOciLayout, writeOciLayout, type RealImage } from '../support/layout.ts';
import { requireTools, toolSandbox, type ToolSandbox } from '../support/tools.ts';
import { authedFetch } from '../support/auth.ts';

/** skopeo against the real server: pushes and pulls through the OCI layout and dir: transports. */

async function setup(t: TestContext, env?: Record<string, string>): Promise<{ server: TestServer; tools: ToolSandbox; host: string } | undefined> {
  if (!requireTools(t, 'skopeo')) return undefined;
  const server = await startServer(env ? { env } : {});
  t.after(() => server.close());
  const tools = await toolSandbox();
  t.after(() => tools.close());
  const host = `127.0.0.1:${server.port}`;
  await tools.login(host);
  return { server, tools, host };
}

async function getManifest(baseUrl: string, repository: string, reference: string, accept: string): Promise<{ digest: string; mediaType: string; bytes: Buffer }> {
  const res = await authedFetch(`${baseUrl}/v2/${repository}/manifests/${reference}`, { headers: { accept } });
  assert.equal(res.status, 200, `GET manifest ${repository}:${reference}`);
  return { digest: res.headers.get('docker-content-digest')!, mediaType: res.headers.get('content-type')!, bytes: Buffer.from(await res.arrayBuffer()) };
}

/** Every blob of the image, keyed by digest: config, layers and the manifest itself. */
function imageBlobs(image: RealImage): Map<string, Buffer> {
  return new Map([
    [image.digest, image.manifest],
    [image.config.digest, image.config.bytes],
    ...image.layers.map((l) => [l.digest, l.bytes] as [string, Buffer]),
  ]);
}

function assertSameBlobs(actual: Map<string, Buffer>, expected: Map<string, Buffer>, what: string): void {
  assert.deepEqual([...actual.keys()].sort(), [...expected.keys()].sort(), `${what}: the same set of blobs`);
  for (const [digest, bytes] of expected) {
    assert.ok(actual.get(digest)?.equals(bytes), `${what}: ${digest} is byte-identical`);
  }
}

test('skopeo pushes an OCI layout and pulls it back byte-identical to oci: and dir:', async (t) => {
  const ctx = await setup(t);
  if (!ctx) return;
  const { server, tools, host } = ctx;
  const repository = repoName('skopeo');
  const image = buildRealImage({
    layers: [
      [{ name: 'bin', type: 'dir' }, { name: 'bin/hello', content: '#!/bin/sh\necho hello\n', mode: 0o755 }],
      [{ name: 'etc', type: 'dir' }, { name: 'etc/motd', content: `built by ${repository}\n` }, { name: 'etc/localtime', type: 'symlink', linkname: '/usr/share/zoneinfo/UTC' }],
    ],
  });
  const src = await tools.mkdir('src');
  await writeOciLayout(src, [{ tag: 'v1', content: image }]);

  await tools.skopeo(['copy', '--quiet', '--preserve-digests', '--dest-tls-verify=false', `oci:${src}:v1`, `docker://${host}/${repository}:v1`]);
  const stored = await getManifest(server.baseUrl, repository, 'v1', MT.ociManifest);
  assert.equal(stored.digest, image.digest);
  assert.deepEqual(stored.bytes, image.manifest);

  const back = await tools.mkdir('back');
  await tools.skopeo(['copy', '--quiet', '--src-tls-verify=false', `docker://${host}/${repository}:v1`, `oci:${back}:again`]);
  const layout = await readOciLayout(back, 'again');
  assert.equal(layout.descriptor.digest, image.digest);
  assert.equal(layout.descriptor.mediaType, MT.ociManifest);
  assertSameBlobs(layout.blobs, imageBlobs(image), 'oci: layout');

  const dir = await tools.mkdir('dir');
  await tools.skopeo(['copy', '--quiet', '--src-tls-verify=false', `docker://${host}/${repository}@${image.digest}`, `dir:${dir}`]);
  const fromDir = await readDirImage(dir);
  assert.deepEqual(fromDir.manifest, image.manifest);
  const expected = imageBlobs(image);
  expected.delete(image.digest);
  assertSameBlobs(fromDir.blobs, expected, 'dir:');
  assert.equal(layerFiles(fromDir.blobs.get(image.layers[0]!.digest)!).get('bin/hello')?.toString(), '#!/bin/sh\necho hello\n');

  const tags = await tools.skopeo(['list-tags', '--tls-verify=false', `docker://${host}/${repository}`]);
  assert.deepEqual((JSON.parse(tags.stdout) as { Tags: string[] }).Tags, ['v1']);
});

test('skopeo round-trips a Docker schema 2 image, as built and as converted with --format v2s2', async (t) => {
  const ctx = await setup(t);
  if (!ctx) return;
  const { server, tools, host } = ctx;
  const repository = repoName('skopeo');

  // A Docker image made in code, written in the dir: transport's layout (which takes any manifest type).
  const docker = buildRealImage({ docker: true });
  const src = await tools.mkdir('docker-src');
  await writeFile(path.join(src, 'manifest.json'), docker.manifest);
  await writeFile(path.join(src, 'version'), 'Directory Transport Version: 1.1\n');
  for (const b of [docker.config, ...docker.layers]) await writeFile(path.join(src, b.digest.slice('sha256:'.length)), b.bytes);
  await tools.skopeo(['copy', '--quiet', '--preserve-digests', '--dest-tls-verify=false', `dir:${src}`, `docker://${host}/${repository}:docker`]);
  const stored = await getManifest(server.baseUrl, repository, 'docker', `${MT.dockerManifest}, ${MT.ociManifest}`);
  assert.equal(stored.mediaType, MT.dockerManifest);
  assert.equal(stored.digest, docker.digest);
  const back = await tools.mkdir('docker-back');
  await tools.skopeo(['copy', '--quiet', '--src-tls-verify=false', `docker://${host}/${repository}:docker`, `dir:${back}`]);
  const fromDir = await readDirImage(back);
  assert.deepEqual(fromDir.manifest, docker.manifest);
  const expected = imageBlobs(docker);
  expected.delete(docker.digest);
  assertSameBlobs(fromDir.blobs, expected, 'docker image in dir:');

  // An OCI image converted on the way up: the registry keeps the Docker manifest skopeo wrote.
  const oci = buildRealImage();
  const layout = await tools.mkdir('oci-src');
  await writeOciLayout(layout, [{ tag: 'v1', content: oci }]);
  await tools.skopeo(['copy', '--quiet', '--format', 'v2s2', '--dest-tls-verify=false', `oci:${layout}:v1`, `docker://${host}/${repository}:converted`]);
  const converted = await getManifest(server.baseUrl, repository, 'converted', `${MT.dockerManifest}, ${MT.ociManifest}`);
  assert.equal(converted.mediaType, MT.dockerManifest);
  assert.equal(converted.digest, sha256(converted.bytes));
  const parsed = JSON.parse(converted.bytes.toString()) as { config: { mediaType: string; digest: string }; layers: { mediaType: string; digest: string }[] };
  assert.equal(parsed.config.mediaType, MT.dockerConfig);
  assert.deepEqual(parsed.layers.map((l) => [l.mediaType, l.digest]), oci.layers.map((l) => [MT.dockerLayer, l.digest]));
  const convertedDir = await tools.mkdir('converted-back');
  await tools.skopeo(['copy', '--quiet', '--src-tls-verify=false', `docker://${host}/${repository}:converted`, `dir:${convertedDir}`]);
  const again = await readDirImage(convertedDir);
  assert.deepEqual(again.manifest, converted.bytes);
  for (const l of oci.layers) assert.ok(again.blobs.get(l.digest)?.equals(l.bytes), `layer ${l.digest} is byte-identical`);
  assert.ok(again.blobs.get(parsed.config.digest), 'config came back');
});

test('skopeo copies a multi-arch index with --all and pulls one platform with --override-arch', async (t) => {
  const ctx = await setup(t);
  if (!ctx) return;
  const { server, tools, host } = ctx;
  const repository = repoName('multiarch');
  const amd64 = buildRealImage({ platform: { os: 'linux', architecture: 'amd64' } });
  const arm64 = buildRealImage({ platform: { os: 'linux', architecture: 'arm64', variant: 'v8' } });
  const index = buildRealIndex([amd64, arm64]);
  const src = await tools.mkdir('multi-src');
  await writeOciLayout(src, [{ tag: 'multi', content: index }]);

  await tools.skopeo(['copy', '--quiet', '--all', '--preserve-digests', '--dest-tls-verify=false', `oci:${src}:multi`, `docker://${host}/${repository}:multi`]);
  const stored = await getManifest(server.baseUrl, repository, 'multi', MT.ociIndex);
  assert.equal(stored.digest, index.digest);
  assert.deepEqual(stored.bytes, index.index);
  for (const img of [amd64, arm64]) {
    const child = await getManifest(server.baseUrl, repository, img.digest, MT.ociManifest);
    assert.deepEqual(child.bytes, img.manifest);
  }

  for (const [arch, variant, img] of [['arm64', 'v8', arm64], ['amd64', '', amd64]] as const) {
    const out = await tools.mkdir(`pull-${arch}`);
    const overrides = ['--override-os', 'linux', '--override-arch', arch, ...(variant ? ['--override-variant', variant] : [])];
    await tools.skopeo([...overrides, 'copy', '--quiet', '--src-tls-verify=false', `docker://${host}/${repository}:multi`, `oci:${out}:one`]);
    const layout = await readOciLayout(out, 'one');
    assert.equal(layout.descriptor.digest, img.digest, `${arch}: the ${arch} manifest was chosen`);
    assertSameBlobs(layout.blobs, imageBlobs(img), `${arch} image`);
    const config = JSON.parse(layout.blobs.get(img.config.digest)!.toString()) as { architecture: string };
    assert.equal(config.architecture, arch);
    const files = layerFiles(layout.blobs.get(img.layers[0]!.digest)!);
    assert.match(files.get('etc/berth-test')!.toString(), new RegExp(`^linux/${arch} `));
  }

  const all = await tools.mkdir('pull-all');
  await tools.skopeo(['copy', '--quiet', '--all', '--src-tls-verify=false', `docker://${host}/${repository}:multi`, `oci:${all}:all`]);
  const layout = await readOciLayout(all, 'all');
  assert.equal(layout.descriptor.digest, index.digest);
  assertSameBlobs(layout.blobs, new Map([[index.digest, index.index], ...imageBlobs(amd64), ...imageBlobs(arm64)]), 'whole index');
});

test('copying an image between repositories mounts its layers instead of uploading them', async (t) => {
  // At debug level the registry logs each mount with its source repository.
  const ctx = await setup(t, { BERTH_LOG_LEVEL: 'debug' });
  if (!ctx) return;
  const { server, tools, host } = ctx;
  const a = repoName('mount-a');
  const b = repoName('mount-b');
  const image = buildRealImage({
    layers: [
      [{ name: 'one', content: randomBytes(64 * 1024) }],
      [{ name: 'two', content: randomBytes(256 * 1024) }],
    ],
  });
  const src = await tools.mkdir('src');
  await writeOciLayout(src, [{ tag: 'v1', content: image }]);
  await tools.skopeo(['copy', '--quiet', '--preserve-digests', '--dest-tls-verify=false', `oci:${src}:v1`, `docker://${host}/${a}:v1`]);
  const before = server.logs.length;

  await tools.skopeo(['copy', '--quiet', '--preserve-digests', '--src-tls-verify=false', '--dest-tls-verify=false', `docker://${host}/${a}:v1`, `docker://${host}/${b}:v1`]);
  const copyLogs = server.logs.slice(before);

  const mounted = copyLogs.filter((l) => l['msg'] === 'blob mounted' && l['repository'] === b && l['from'] === a).map((l) => l['digest']);
  for (const l of image.layers) assert.ok(mounted.includes(l.digest), `layer ${l.digest} was mounted from ${a}`);
  // A mount answers POST .../blobs/uploads/?mount=... with 201 and opens no session; a
  // single-request push would be 201 too, but is logged as ecr:CompleteLayerUpload.
  const mountPosts = copyLogs.filter(
    (l) => l['msg'] === 'request' && l['method'] === 'POST' && l['path'] === `/v2/${b}/blobs/uploads/` && l['status'] === 201 && l['operation'] === 'ecr:InitiateLayerUpload',
  );
  assert.ok(mountPosts.length >= image.layers.length, 'one 201 POST per mounted layer');
  // No layer bytes were uploaded into B.
  const patched = copyLogs.filter((l) => l['msg'] === 'request' && l['method'] === 'PATCH' && String(l['path']).startsWith(`/v2/${b}/`)).reduce((n, l) => n + Number(l['bytesIn'] ?? 0), 0);
  assert.ok(patched <= image.config.bytes.length, `only the config may be uploaded (${patched} bytes were)`);

  for (const d of [image.config.digest, ...image.layers.map((l) => l.digest)]) {
    const head = await authedFetch(`${server.baseUrl}/v2/${b}/blobs/${d}`, { method: 'HEAD' });
    assert.equal(head.status, 200, `${d} is in ${b}`);
  }
  const stored = await getManifest(server.baseUrl, b, 'v1', MT.ociManifest);
  assert.deepEqual(stored.bytes, image.manifest);
  const out = await tools.mkdir('out');
  await tools.skopeo(['copy', '--quiet', '--src-tls-verify=false', `docker://${host}/${b}:v1`, `oci:${out}:v1`]);
  const layout = await readOciLayout(out, 'v1');
  assert.equal(layout.descriptor.digest, image.digest);
  assertSameBlobs(layout.blobs, imageBlobs(image), 'image pulled from B');
});

test('skopeo inspect of a sha384 digest, which Berth cannot store, reports manifest unknown', async (t) => {
  const ctx = await setup(t);
  if (!ctx) return;
  const { tools, host } = ctx;
  const repository = repoName('skopeo');
  const src = await tools.mkdir('src');
  await writeOciLayout(src, [{ tag: 'v1', content: buildRealImage() }]);
  await tools.skopeo(['copy', '--quiet', '--preserve-digests', '--dest-tls-verify=false', `oci:${src}:v1`, `docker://${host}/${repository}:v1`]);

  // skopeo refuses malformed references itself, but takes sha384, which Berth does not store:
  // the spec's "not found" (404 MANIFEST_UNKNOWN), not 400 DIGEST_INVALID.
  const out = await tools.skopeo(['inspect', '--tls-verify=false', `docker://${host}/${repository}@sha384:${'a'.repeat(96)}`], { allowFailure: true });
  assert.notEqual(out.code, 0, out.stdout);
  assert.match(out.stderr, /manifest unknown: Nothing is stored under \\"sha384:a+\\"/, out.stderr);
});
