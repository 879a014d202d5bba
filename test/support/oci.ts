import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { authedFetch } from './auth.ts';

/** A random repository name, unique per test, optionally under a namespace. */
export function repoName(prefix = 'test'): string {
  return `${prefix}/${randomBytes(6).toString('hex')}`;
}

export function sha256(bytes: Uint8Array | string): string {
  return `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
}

export const MT = {
  ociManifest: 'application/vnd.oci.image.manifest.v1+json',
  ociIndex: 'application/vnd.oci.image.index.v1+json',
  ociConfig: 'application/vnd.oci.image.config.v1+json',
  ociLayer: 'application/vnd.oci.image.layer.v1.tar+gzip',
  ociEmpty: 'application/vnd.oci.empty.v1+json',
  dockerManifest: 'application/vnd.docker.distribution.manifest.v2+json',
  dockerList: 'application/vnd.docker.distribution.manifest.list.v2+json',
  dockerConfig: 'application/vnd.docker.container.image.v1+json',
  dockerLayer: 'application/vnd.docker.image.rootfs.diff.tar.gzip',
} as const;

export interface Blob {
  digest: string;
  bytes: Buffer;
}

export function blob(bytes: Buffer | string): Blob {
  const b = typeof bytes === 'string' ? Buffer.from(bytes) : bytes;
  return { digest: sha256(b), bytes: b };
}

export interface BuiltImage {
  config: Blob;
  layers: Blob[];
  manifest: Buffer;
  digest: string;
  mediaType: string;
}

/** An image with random layer bytes (not real tarballs: the registry does not look inside). */
export function buildImage(options: { layers?: number; layerBytes?: number; docker?: boolean; platform?: { os: string; architecture: string } } = {}): BuiltImage {
  return imageOver(Array.from({ length: options.layers ?? 1 }, () => blob(randomBytes(options.layerBytes ?? 1024))), options);
}

/** An image over the given layers (images may share them), with a config of its own. */
export function imageOver(layers: Blob[], options: { docker?: boolean; platform?: { os: string; architecture: string } } = {}): BuiltImage {
  const platform = options.platform ?? { os: 'linux', architecture: 'amd64' };
  const config = blob(JSON.stringify({ ...platform, rootfs: { type: 'layers', diff_ids: layers.map((l) => l.digest) }, nonce: randomBytes(8).toString('hex') }));
  const docker = options.docker ?? false;
  const layerType = docker ? MT.dockerLayer : MT.ociLayer;
  return { config, layers, ...imageManifest(config, layers.map((l) => ({ ...l, mediaType: layerType })), docker) };
}

/** The schema 2 (Docker) or OCI image manifest for a config and layers, as exact bytes. */
export function imageManifest(config: Blob, layers: (Blob & { mediaType: string })[], docker: boolean): { manifest: Buffer; digest: string; mediaType: string } {
  const mediaType = docker ? MT.dockerManifest : MT.ociManifest;
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType,
      config: { mediaType: docker ? MT.dockerConfig : MT.ociConfig, digest: config.digest, size: config.bytes.length },
      layers: layers.map((l) => ({ mediaType: l.mediaType, digest: l.digest, size: l.bytes.length })),
    }),
  );
  return { manifest, digest: sha256(manifest), mediaType };
}

/** Monolithic push of one blob (POST then PUT) as the test administrator. Throws on any unexpected status. */
export async function pushBlob(baseUrl: string, repository: string, b: Blob): Promise<void> {
  const start = await authedFetch(`${baseUrl}/v2/${repository}/blobs/uploads/`, { method: 'POST' });
  if (start.status !== 202) throw new Error(`POST upload: ${start.status} ${await start.text()}`);
  const location = new URL(start.headers.get('location')!, baseUrl);
  location.searchParams.set('digest', b.digest);
  const put = await authedFetch(location, { method: 'PUT', body: b.bytes, headers: { 'content-type': 'application/octet-stream' } });
  if (put.status !== 201) throw new Error(`PUT upload: ${put.status} ${await put.text()}`);
}

/** PUT of a manifest as the test administrator; resolves the response, whatever its status. */
export async function pushManifest(baseUrl: string, repository: string, reference: string, body: Buffer, mediaType: string): Promise<Response> {
  return authedFetch(`${baseUrl}/v2/${repository}/manifests/${reference}`, { method: 'PUT', body, headers: { 'content-type': mediaType } });
}

/** Pushes an image's blobs and manifest under `reference`; resolves the manifest digest. */
export async function pushImage(baseUrl: string, repository: string, image: BuiltImage, reference = 'latest'): Promise<string> {
  for (const b of [image.config, ...image.layers]) await pushBlob(baseUrl, repository, b);
  const res = await pushManifest(baseUrl, repository, reference, image.manifest, image.mediaType);
  if (res.status !== 201) throw new Error(`PUT manifest: ${res.status} ${await res.text()}`);
  return image.digest;
}

/**
 * A blob's bytes as a client gets them, from Berth or from the store a GET redirects to;
 * undefined when the repository does not hold it.
 */
export async function getBlob(baseUrl: string, repository: string, digest: string): Promise<Buffer | undefined> {
  const res = await authedFetch(`${baseUrl}/v2/${repository}/blobs/${digest}`, { redirect: 'manual' });
  if (res.status === 307) {
    const direct = await fetch(res.headers.get('location')!);
    if (direct.status !== 200) throw new Error(`redirected GET of ${digest}: ${direct.status}`);
    return Buffer.from(await direct.arrayBuffer());
  }
  if (res.status === 404) return (await res.arrayBuffer(), undefined);
  if (res.status !== 200) throw new Error(`GET blob ${digest}: ${res.status} ${await res.text()}`);
  return Buffer.from(await res.arrayBuffer());
}

/** Pulls the image by `reference` and checks its manifest and every blob byte for byte. */
export async function assertPullsBack(baseUrl: string, repository: string, reference: string, image: BuiltImage): Promise<void> {
  const res = await authedFetch(`${baseUrl}/v2/${repository}/manifests/${reference}`, { headers: { accept: image.mediaType } });
  assert.equal(res.status, 200, `${repository}:${reference}`);
  assert.ok(Buffer.from(await res.arrayBuffer()).equals(image.manifest), `${repository}:${reference} manifest byte-identical`);
  for (const b of [image.config, ...image.layers]) {
    const got = await getBlob(baseUrl, repository, b.digest);
    assert.ok(got?.equals(b.bytes), `${repository}:${reference}: blob ${b.digest} byte-identical`);
  }
}

/** Polls `check` until it resolves truthy or the deadline passes. */
export async function waitFor<T>(check: () => Promise<T | undefined | false>, options: { timeoutMs?: number; intervalMs?: number; what?: string } = {}): Promise<T> {
  // Generous: the deadline only matters when the condition never comes, and on a busy CI
  // machine background work can take many times longer than on an idle one.
  const deadline = Date.now() + (options.timeoutMs ?? 60_000);
  for (;;) {
    const value = await check();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${options.what ?? 'condition'}`);
    await new Promise((r) => setTimeout(r, options.intervalMs ?? 50));
  }
}
