import { createHash } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { rm } from 'node:fs/promises';
import path from 'node:path';
import { Transform, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { digestOf } from '../../digest/digest.ts';
import { MediaTypes } from '../../registry/manifest.ts';

/**
 * A bundle (bundle.ts) as an OCI artifact, so that an air-gapped site copies the database into
 * Berth like any image (`oras push`, `skopeo copy`, replication) and imports it from there. The
 * manifest follows the image-spec's guidance for artifacts (manifest.md, "Guidelines for
 * Artifact Usage"): `artifactType` says what it is, the config is the empty descriptor, and the
 * single layer is the bundle tar.
 */

export const VULNDB_ARTIFACT_TYPE = 'application/vnd.berth.vulndb.bundle.v1';
export const VULNDB_BUNDLE_LAYER_MEDIA_TYPE = 'application/vnd.berth.vulndb.bundle.v1.tar';
const IMAGE_MANIFEST_MEDIA_TYPE = MediaTypes.ociManifest;

/** The empty config blob (image-spec manifest.md, "Guidance for an Empty Descriptor"): the two bytes `{}`. */
export const EMPTY_CONFIG_BYTES = Buffer.from('{}');
export const EMPTY_CONFIG_DESCRIPTOR = Object.freeze({
  mediaType: MediaTypes.ociEmpty,
  digest: digestOf(EMPTY_CONFIG_BYTES),
  size: EMPTY_CONFIG_BYTES.length,
});

/** The bundle's layer is refused past this size (the whole of OSV's exports is a few GB). */
export const MAX_BUNDLE_BYTES = 32 * 1024 ** 3;

export interface VulnDbArtifactManifest {
  schemaVersion: 2;
  mediaType: typeof IMAGE_MANIFEST_MEDIA_TYPE;
  artifactType: typeof VULNDB_ARTIFACT_TYPE;
  config: { mediaType: string; digest: string; size: number };
  layers: Array<{ mediaType: typeof VULNDB_BUNDLE_LAYER_MEDIA_TYPE; digest: string; size: number; annotations?: Record<string, string> }>;
  annotations?: Record<string, string>;
}

/**
 * The OCI image manifest of a bundle pushed as an artifact: its digest and size (as createBundle
 * resolves them), and annotations for the manifest (`org.opencontainers.image.created`, say).
 * The config blob to push with it is EMPTY_CONFIG_BYTES.
 */
export function bundleArtifactManifest(bundleDigest: string, size: number, annotations: Record<string, string> = {}): VulnDbArtifactManifest {
  if (!/^sha256:[0-9a-f]{64}$/.test(bundleDigest)) throw new Error(`bundle digest ${JSON.stringify(bundleDigest)} is not sha256:<64 hex digits>`);
  if (!Number.isSafeInteger(size) || size < 0) throw new Error(`bundle size ${size} is not a byte count`);
  return {
    schemaVersion: 2,
    mediaType: IMAGE_MANIFEST_MEDIA_TYPE,
    artifactType: VULNDB_ARTIFACT_TYPE,
    config: { ...EMPTY_CONFIG_DESCRIPTOR },
    layers: [{ mediaType: VULNDB_BUNDLE_LAYER_MEDIA_TYPE, digest: bundleDigest, size, annotations: { 'org.opencontainers.image.title': 'vulndb-bundle.tar' } }],
    ...(Object.keys(annotations).length > 0 ? { annotations } : {}),
  };
}

function fail(message: string): never {
  throw new Error(`vulnerability database artifact: ${message}`);
}

/**
 * The bundle layer of an artifact's manifest (bytes or parsed JSON); throws saying why when the
 * manifest is not a vulnerability database artifact.
 */
export function bundleLayerOf(manifest: Uint8Array | string | unknown): { digest: string; size: number } {
  let doc = manifest;
  if (typeof manifest === 'string' || manifest instanceof Uint8Array) {
    try {
      doc = JSON.parse(Buffer.from(manifest).toString('utf8'));
    } catch (err) {
      fail(`the manifest is not valid JSON (${(err as Error).message})`);
    }
  }
  if (typeof doc !== 'object' || doc === null) fail('the manifest is not a JSON object');
  const m = doc as Record<string, unknown>;
  if (m['mediaType'] !== undefined && m['mediaType'] !== IMAGE_MANIFEST_MEDIA_TYPE) fail(`the manifest is ${String(m['mediaType'])}, not an OCI image manifest`);
  const config = m['config'] as Record<string, unknown> | undefined;
  // Before image-spec 1.1 artifacts said what they were by their config's media type.
  const artifactType = m['artifactType'] ?? config?.['mediaType'];
  if (artifactType !== VULNDB_ARTIFACT_TYPE) fail(`its artifactType is ${JSON.stringify(artifactType)}, not ${VULNDB_ARTIFACT_TYPE}`);
  const layers = m['layers'];
  if (!Array.isArray(layers) || layers.length !== 1) fail('it must have exactly one layer, the bundle');
  const layer = layers[0] as Record<string, unknown>;
  if (layer['mediaType'] !== VULNDB_BUNDLE_LAYER_MEDIA_TYPE) fail(`its layer is ${JSON.stringify(layer['mediaType'])}, not ${VULNDB_BUNDLE_LAYER_MEDIA_TYPE}`);
  const digest = layer['digest'];
  const size = layer['size'];
  if (typeof digest !== 'string' || !/^sha256:[0-9a-f]{64}$/.test(digest)) fail(`its layer digest ${JSON.stringify(digest)} is not sha256:<64 hex digits>`);
  if (typeof size !== 'number' || !Number.isSafeInteger(size) || size < 0) fail('its layer size is not a byte count');
  if (size > MAX_BUNDLE_BYTES) fail(`its bundle is ${size} bytes, more than ${MAX_BUNDLE_BYTES}`);
  return { digest, size };
}

/**
 * Writes the bundle an artifact carries to a file in `tempDir` and resolves its path, for
 * importVulnDb; the caller removes the file. The bytes are checked against the layer's size and
 * digest as they are written (the blob store verified them on push; this guards the copy).
 */
export async function bundleFromArtifact(manifest: Uint8Array | string | unknown, readBlob: (digest: string) => Promise<Readable>, tempDir: string): Promise<string> {
  const { digest, size } = bundleLayerOf(manifest);
  const file = path.join(tempDir, `vulndb-bundle-${digest.slice('sha256:'.length, 'sha256:'.length + 16)}-${process.pid}-${Date.now()}.tar`);
  const hash = createHash('sha256');
  let written = 0;
  const check = new Transform({
    transform(chunk: Buffer, _enc, done) {
      written += chunk.length;
      if (written > size) {
        done(new Error(`vulnerability database artifact: the bundle blob is larger than the ${size} bytes its manifest says`));
        return;
      }
      hash.update(chunk);
      done(null, chunk);
    },
  });
  try {
    await pipeline(await readBlob(digest), check, createWriteStream(file, { flags: 'wx', mode: 0o600 }));
    if (written !== size) fail(`the bundle blob is ${written} bytes, its manifest says ${size}`);
    const actual = `sha256:${hash.digest('hex')}`;
    if (actual !== digest) fail(`the bundle blob has digest ${actual}, its manifest says ${digest}`);
  } catch (err) {
    await rm(file, { force: true });
    throw err;
  }
  return file;
}
