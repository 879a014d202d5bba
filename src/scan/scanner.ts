import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { isDigest, type Digest } from '../digest/digest.ts';
import type { Logger } from '../log/logger.ts';
import { isIndexMediaType, MediaTypes } from '../registry/manifest.ts';
import type { RepoRef } from '../registry/names.ts';
import type { Registry } from '../registry/registry.ts';
import { ScanInputError } from './analyse/analyser.ts';
import { allAnalysers, ANALYSER_VERSION, analyseLayer, isSupportedLayerMediaType, mergeLayers, type ScanLimits } from './analyse/index.ts';
import type { Inventory, LayerFacts } from './types.ts';

/** The image config media types of container images (anything else is an artifact, not scanned). */
const IMAGE_CONFIG_TYPES = new Set(['application/vnd.oci.image.config.v1+json', 'application/vnd.docker.container.image.v1+json']);

/** Largest image config read, as Distribution and containerd bound it. */
const MAX_CONFIG_BYTES = 8 * 1024 * 1024;

export interface ManifestJson {
  mediaType?: string;
  artifactType?: string;
  config?: { mediaType?: string; digest?: string; size?: number };
  layers?: Array<{ mediaType?: string; digest?: string; size?: number; urls?: string[] }>;
  manifests?: Array<{ mediaType?: string; digest?: string; platform?: { os?: string; architecture?: string; variant?: string }; annotations?: Record<string, string> }>;
}

/** What a manifest is to the scanner. */
export type ScanTarget =
  | { kind: 'image'; manifest: ManifestJson }
  | { kind: 'index'; children: Array<{ digest: Digest; platform: string }> }
  | { kind: 'unsupported'; reason: string };

/**
 * Decides whether a manifest is a container image the scanner reads, an index of them (scanned
 * per platform image), or something else (a Helm chart, a signature, an SBOM): ECR answers
 * UnsupportedImageTypeException for those, and so does Berth.
 */
export function scanTarget(payload: Uint8Array, storedMediaType: string): ScanTarget {
  let m: ManifestJson;
  try {
    m = JSON.parse(Buffer.from(payload).toString('utf8')) as ManifestJson;
  } catch {
    return { kind: 'unsupported', reason: 'The manifest is not JSON.' };
  }
  const mediaType = m.mediaType ?? storedMediaType;
  if (isIndexMediaType(mediaType)) {
    const children: Array<{ digest: Digest; platform: string }> = [];
    for (const d of m.manifests ?? []) {
      if (typeof d.digest !== 'string' || !isDigest(d.digest)) continue;
      // BuildKit's attestation manifests ride in the index under the platform unknown/unknown.
      if (d.annotations?.['vnd.docker.reference.type'] === 'attestation-manifest') continue;
      const p = d.platform;
      children.push({ digest: d.digest as Digest, platform: p ? [p.os, p.architecture, p.variant].filter(Boolean).join('/') : '' });
    }
    if (children.length === 0) return { kind: 'unsupported', reason: 'The index lists no platform images.' };
    return { kind: 'index', children };
  }
  if (mediaType !== MediaTypes.ociManifest && mediaType !== MediaTypes.dockerManifest) return { kind: 'unsupported', reason: `The manifest media type ${mediaType} is not a container image.` };
  const configType = m.config?.mediaType ?? '';
  if (m.artifactType !== undefined || !IMAGE_CONFIG_TYPES.has(configType)) {
    return { kind: 'unsupported', reason: `The artifact type ${m.artifactType ?? configType} is not a container image.` };
  }
  for (const layer of m.layers ?? []) {
    if (!isSupportedLayerMediaType(layer.mediaType ?? '')) return { kind: 'unsupported', reason: `The layer media type ${layer.mediaType ?? '(none)'} is not a container image layer.` };
  }
  return { kind: 'image', manifest: m };
}

export interface InventoryOptions {
  registry: Registry;
  repo: RepoRef;
  digest: Digest;
  manifest: ManifestJson;
  limits: ScanLimits;
  log: Logger;
  signal?: AbortSignal;
  /** Where layer files are spooled; the system's temporary directory by default. */
  tempRoot?: string;
}

export interface InventoryResult {
  inventory: Inventory;
  /** The layers' digests in manifest order, for findings' sourceLayerHash. */
  layerDigests: string[];
  platform: { os?: string; architecture?: string };
  /** Layers read now; the rest came from the cache. */
  layersRead: number;
}

/**
 * The package inventory of one platform image: each layer's analysis comes from the cache (by
 * diffID and analyser version) or is made by reading the layer once, streaming; the layers'
 * facts are then merged in order, honouring whiteouts. The merged inventory is stored too, so a
 * database import re-matches the image without reading anything.
 */
export async function imageInventory(o: InventoryOptions): Promise<InventoryResult> {
  const { registry, repo, manifest } = o;
  const configDigest = manifest.config?.digest;
  if (typeof configDigest !== 'string' || !isDigest(configDigest)) throw new ScanInputError('The image manifest names no config.');
  const configInfo = await registry.statBlob(repo, configDigest as Digest);
  if (configInfo.sizeBytes > MAX_CONFIG_BYTES) throw new ScanInputError(`The image config is ${configInfo.sizeBytes} bytes, more than the ${MAX_CONFIG_BYTES} read.`);
  const chunks: Buffer[] = [];
  for await (const chunk of await registry.openBlob(configInfo)) chunks.push(chunk as Buffer);
  let config: { os?: string; architecture?: string; rootfs?: { diff_ids?: unknown } };
  try {
    config = JSON.parse(Buffer.concat(chunks).toString('utf8')) as typeof config;
  } catch {
    throw new ScanInputError('The image config is not JSON.');
  }
  const layers = manifest.layers ?? [];
  const diffIds = Array.isArray(config.rootfs?.diff_ids) ? (config.rootfs.diff_ids as unknown[]) : [];
  if (diffIds.length !== layers.length || diffIds.some((d) => typeof d !== 'string' || !isDigest(d))) {
    throw new ScanInputError(`The image config lists ${diffIds.length} layer diff_ids for the manifest's ${layers.length} layers.`);
  }

  const facts: LayerFacts[] = [];
  let layersRead = 0;
  let tempDir: string | undefined;
  try {
    for (let i = 0; i < layers.length; i++) {
      const layer = layers[i]!;
      const diffId = diffIds[i] as string;
      const cached = await registry.scans.layerFacts(diffId, ANALYSER_VERSION);
      if (cached !== undefined) {
        facts.push(JSON.parse(cached) as LayerFacts);
        continue;
      }
      if (layer.urls?.length && layer.mediaType?.includes('nondistributable')) {
        // A foreign layer lives elsewhere (Windows base layers); Berth never fetches it.
        facts.push({ analyserVersion: ANALYSER_VERSION, files: {}, whiteouts: [], opaqueDirs: [] });
        continue;
      }
      // The process id in the name lets a restarted node remove what a killed one left (worker.ts).
      tempDir ??= await mkdtemp(path.join(o.tempRoot ?? tmpdir(), `berth-scan-${process.pid}-`));
      const info = await registry.statBlob(repo, layer.digest as Digest);
      const stream = await registry.openBlob(info);
      const result = await analyseLayer(stream, {
        mediaType: layer.mediaType ?? '',
        expectedDiffId: diffId,
        analysers: allAnalysers,
        limits: o.limits,
        tempDir,
        layerIndex: i,
        ...(o.signal ? { signal: o.signal } : {}),
      });
      layersRead++;
      await registry.scans.putLayerFacts(diffId, ANALYSER_VERSION, JSON.stringify(result.facts));
      facts.push(result.facts);
    }
  } finally {
    if (tempDir) await rm(tempDir, { recursive: true, force: true });
  }
  const inventory = mergeLayers(facts);
  await registry.scans.putInventory(o.digest, ANALYSER_VERSION, JSON.stringify(inventory));
  return {
    inventory,
    layerDigests: layers.map((l) => l.digest ?? ''),
    platform: { ...(config.os ? { os: config.os } : {}), ...(config.architecture ? { architecture: config.architecture } : {}) },
    layersRead,
  };
}
