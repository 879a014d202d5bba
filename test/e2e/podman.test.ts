import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { test, type TestContext } from 'node:test';
import { startServer } from '../support/server.ts';
import { MT, repoName } from '../support/oci.ts';
import { buildRealImage, buildRealIndex, layerFiles, readOciLayout, untar, writeOciLayout } from '../support/layout.ts';
import { requireTools, toolSandbox } from '../support/tools.ts';
import { authedFetch } from '../support/auth.ts';

/**
 * podman against the real server, with storage in a per-test sandbox (vfs driver). Pushes and
 * pulls use --tls-verify=false on the plain-HTTP port, so podman first tries HTTPS there and
 * must get a quick refusal before it falls back to HTTP.
 */

interface InspectedImage {
  Id: string;
  Digest: string;
  RepoDigests: string[];
  Architecture: string;
  Os: string;
  Config: { Labels?: Record<string, string> };
}

async function setup(t: TestContext) {
  if (!requireTools(t, 'podman', 'skopeo')) return undefined;
  const server = await startServer();
  t.after(() => server.close());
  const tools = await toolSandbox();
  t.after(() => tools.close());
  const host = `127.0.0.1:${server.port}`;
  await tools.login(host);
  const inspect = async (ref: string): Promise<InspectedImage> => {
    const out = await tools.podman(['image', 'inspect', ref]);
    const [image] = JSON.parse(out.stdout) as InspectedImage[];
    assert.ok(image, `podman image inspect ${ref}`);
    return image;
  };
  const imageIds = async (): Promise<string[]> => (await tools.podman(['images', '--quiet', '--no-trunc'])).stdout.split('\n').filter(Boolean);
  return { server, tools, host, inspect, imageIds };
}

test('podman pushes an image to Berth, forgets it, and pulls back the same image', async (t) => {
  const ctx = await setup(t);
  if (!ctx) return;
  const { server, tools, host, inspect, imageIds } = ctx;
  const repository = repoName('podman');
  const image = buildRealImage({
    layers: [
      [{ name: 'etc', type: 'dir' }, { name: 'etc/os-release', content: 'ID=berth-test\n' }],
      [{ name: 'app', type: 'dir' }, { name: 'app/data', content: `payload for ${repository}\n` }],
    ],
  });
  const src = await tools.mkdir('src');
  await writeOciLayout(src, [{ tag: 'v1', content: image }]);

  // Into podman's storage from an OCI layout built in code; the image id is the config digest.
  await tools.podman(['pull', '--quiet', `oci:${src}:v1`]);
  const imageId = image.config.digest.slice('sha256:'.length);
  assert.deepEqual(await imageIds(), [`sha256:${imageId}`]);

  const ref = `${host}/${repository}:v1`;
  await tools.podman(['tag', imageId, ref]);
  const digestFile = path.join(tools.dir, 'pushed.digest');
  await tools.podman(['push', '--quiet', '--tls-verify=false', '--digestfile', digestFile, ref]);
  const pushed = (await readFile(digestFile, 'utf8')).trim();
  const head = await authedFetch(`${server.baseUrl}/v2/${repository}/manifests/v1`, { method: 'HEAD', headers: { accept: `${MT.ociManifest}, ${MT.dockerManifest}` } });
  assert.equal(head.status, 200);
  assert.equal(head.headers.get('docker-content-digest'), pushed);

  await tools.podman(['rmi', '--all', '--force']);
  assert.deepEqual(await imageIds(), []);

  const pulled = await tools.podman(['pull', '--quiet', '--tls-verify=false', ref]);
  assert.equal(pulled.stdout.trim(), imageId);
  const got = await inspect(ref);
  assert.equal(got.Id, imageId);
  assert.equal(got.Digest, pushed);
  assert.ok(got.RepoDigests.includes(`${host}/${repository}@${pushed}`), `RepoDigests: ${got.RepoDigests.join(', ')}`);
  assert.equal(got.Config.Labels?.['test.nonce'], (JSON.parse(image.config.bytes.toString()) as { config: { Labels: Record<string, string> } }).config.Labels['test.nonce']);

  // The files came back too: save what podman holds now and read the layers.
  const saved = await tools.mkdir('saved');
  await tools.podman(['save', '--quiet', '--format', 'oci-dir', '--output', saved, ref]);
  const layout = await readOciLayout(saved);
  const manifest = JSON.parse(layout.blobs.get(layout.descriptor.digest)!.toString()) as { config: { digest: string }; layers: { digest: string; mediaType: string }[] };
  assert.equal(manifest.config.digest, image.config.digest);
  const files = new Map<string, Buffer>();
  for (const l of manifest.layers) {
    const bytes = layout.blobs.get(l.digest)!;
    for (const [name, content] of l.mediaType.endsWith('gzip') ? layerFiles(bytes) : untar(bytes)) files.set(name, content);
  }
  assert.equal(files.get('etc/os-release')?.toString(), 'ID=berth-test\n');
  assert.equal(files.get('app/data')?.toString(), `payload for ${repository}\n`);
});

test('podman pulls the arm64 image of a multi-arch index with --arch', async (t) => {
  const ctx = await setup(t);
  if (!ctx) return;
  const { server, tools, host, inspect } = ctx;
  const repository = repoName('podman-multi');
  const amd64 = buildRealImage({ platform: { os: 'linux', architecture: 'amd64' } });
  const arm64 = buildRealImage({ platform: { os: 'linux', architecture: 'arm64', variant: 'v8' } });
  const index = buildRealIndex([amd64, arm64]);
  const src = await tools.mkdir('src');
  await writeOciLayout(src, [{ tag: 'multi', content: index }]);
  await tools.skopeo(['copy', '--quiet', '--all', '--preserve-digests', '--dest-tls-verify=false', `oci:${src}:multi`, `docker://${host}/${repository}:multi`]);
  const head = await authedFetch(`${server.baseUrl}/v2/${repository}/manifests/multi`, { method: 'HEAD', headers: { accept: MT.ociIndex } });
  assert.equal(head.headers.get('docker-content-digest'), index.digest);

  const ref = `${host}/${repository}:multi`;
  const pulled = await tools.podman(['pull', '--quiet', '--tls-verify=false', '--arch', 'arm64', '--variant', 'v8', ref]);
  assert.equal(pulled.stdout.trim(), arm64.config.digest.slice('sha256:'.length));
  const got = await inspect(ref);
  assert.equal(got.Architecture, 'arm64');
  assert.equal(got.Os, 'linux');
  // podman records the index it resolved as the image digest, and both digests as RepoDigests.
  assert.equal(got.Digest, index.digest);
  assert.deepEqual(got.RepoDigests.sort(), [`${host}/${repository}@${index.digest}`, `${host}/${repository}@${arm64.digest}`].sort());
});
