import { RegistryError } from '../errors/catalogue.ts';
import { isDigest, type Digest } from '../digest/digest.ts';
import type { ManifestReference } from '../store/meta/meta-store.ts';

export const MediaTypes = {
  ociManifest: 'application/vnd.oci.image.manifest.v1+json',
  ociIndex: 'application/vnd.oci.image.index.v1+json',
  dockerManifest: 'application/vnd.docker.distribution.manifest.v2+json',
  dockerManifestList: 'application/vnd.docker.distribution.manifest.list.v2+json',
  dockerSchema1: 'application/vnd.docker.distribution.manifest.v1+json',
  dockerSchema1Signed: 'application/vnd.docker.distribution.manifest.v1+prettyjws',
  ociEmpty: 'application/vnd.oci.empty.v1+json',
} as const;

const imageManifestTypes = new Set<string>([MediaTypes.ociManifest, MediaTypes.dockerManifest]);
const indexTypes = new Set<string>([MediaTypes.ociIndex, MediaTypes.dockerManifestList]);

export function isIndexMediaType(mediaType: string): boolean {
  return indexTypes.has(mediaType);
}

export interface Descriptor {
  mediaType: string;
  digest: Digest;
  size: number;
  urls?: string[];
  artifactType?: string;
  annotations?: Record<string, string>;
  platform?: Record<string, unknown>;
}

export interface ParsedManifest {
  mediaType: string;
  /** For referrers: the manifest's artifactType, else its config's media type (OCI image spec, "Guidelines for Artifact Usage"). */
  artifactType: string | null;
  subject: Descriptor | null;
  annotations: Record<string, string> | null;
  /** Blobs that must exist in the repository (config and layers, less non-distributable ones with URLs). */
  blobs: Descriptor[];
  /** Manifests that must exist in the repository (index entries). */
  manifests: Descriptor[];
  references: ManifestReference[];
}

function invalid(message: string): RegistryError {
  return new RegistryError('ManifestInvalid', undefined, { message: `Invalid manifest: ${message}.` });
}

function parseDescriptor(value: unknown, where: string): Descriptor {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) throw invalid(`${where} must be an object`);
  const d = value as Record<string, unknown>;
  if (typeof d['mediaType'] !== 'string' || d['mediaType'] === '') throw invalid(`${where}.mediaType must be a non-empty string`);
  if (typeof d['digest'] !== 'string' || !isDigest(d['digest'])) throw invalid(`${where}.digest must be a sha256 or sha512 digest`);
  if (typeof d['size'] !== 'number' || !Number.isSafeInteger(d['size']) || d['size'] < 0) throw invalid(`${where}.size must be a non-negative integer`);
  if (d['urls'] !== undefined && (!Array.isArray(d['urls']) || d['urls'].some((u) => typeof u !== 'string'))) throw invalid(`${where}.urls must be a list of strings`);
  if (d['artifactType'] !== undefined && typeof d['artifactType'] !== 'string') throw invalid(`${where}.artifactType must be a string`);
  checkAnnotations(d['annotations'], `${where}.annotations`);
  return d as unknown as Descriptor;
}

function checkAnnotations(value: unknown, where: string): void {
  if (value === undefined) return;
  if (value === null || typeof value !== 'object' || Array.isArray(value) || Object.values(value).some((v) => typeof v !== 'string')) {
    throw invalid(`${where} must map strings to strings`);
  }
}

function descriptorList(value: unknown, where: string): Descriptor[] {
  if (!Array.isArray(value)) throw invalid(`${where} must be a list`);
  return value.map((v, i) => parseDescriptor(v, `${where}[${i}]`));
}

/**
 * Parses and checks a pushed manifest. `contentType` is the request's Content-Type; the
 * manifest's own `mediaType` field, when present, wins and must then agree with it. Schema
 * version 1 manifests are refused: they are deprecated and unsafe (no content addressing of
 * the config), and neither ECR nor Distribution 3 accept them any more.
 */
export function parseManifest(payload: Uint8Array, contentType: string | undefined): ParsedManifest {
  let doc: unknown;
  try {
    doc = JSON.parse(Buffer.from(payload.buffer, payload.byteOffset, payload.byteLength).toString('utf8'));
  } catch (err) {
    throw invalid(`the body is not valid JSON (${(err as Error).message})`);
  }
  if (doc === null || typeof doc !== 'object' || Array.isArray(doc)) throw invalid('the body must be a JSON object');
  const m = doc as Record<string, unknown>;
  const header = contentType?.split(';')[0]?.trim().toLowerCase() || undefined;
  const declared = m['mediaType'];
  if (declared !== undefined && typeof declared !== 'string') throw invalid('mediaType must be a string');
  const mediaType = declared ?? header;
  if (mediaType === MediaTypes.dockerSchema1 || mediaType === MediaTypes.dockerSchema1Signed || m['schemaVersion'] === 1) {
    throw invalid('Docker image manifest schema version 1 is not supported; push schema 2 or OCI');
  }
  if (mediaType === undefined) {
    throw invalid('the media type is unknown: set the mediaType field or the Content-Type header');
  }
  if (!imageManifestTypes.has(mediaType) && !indexTypes.has(mediaType)) {
    throw invalid(`media type ${JSON.stringify(mediaType)} is not a manifest type Berth stores (OCI image manifest or index, Docker schema 2 manifest or list)`);
  }
  if (declared !== undefined && header !== undefined && header !== declared && (imageManifestTypes.has(header) || indexTypes.has(header))) {
    throw invalid(`the Content-Type ${header} does not match the manifest's mediaType ${declared}`);
  }
  if (m['schemaVersion'] !== 2) throw invalid('schemaVersion must be 2');
  checkAnnotations(m['annotations'], 'annotations');
  const annotations = (m['annotations'] as Record<string, string> | undefined) ?? null;
  if (m['artifactType'] !== undefined && typeof m['artifactType'] !== 'string') throw invalid('artifactType must be a string');
  const subject = m['subject'] === undefined ? null : parseDescriptor(m['subject'], 'subject');

  if (imageManifestTypes.has(mediaType)) {
    const config = parseDescriptor(m['config'], 'config');
    const layers = descriptorList(m['layers'], 'layers');
    if (mediaType === MediaTypes.dockerManifest && layers.length === 0) throw invalid('a Docker schema 2 manifest needs at least one layer');
    // Non-distributable layers with URLs live elsewhere (image-spec layer.md); don't require them.
    const blobs = [config, ...layers.filter((l) => !(l.urls && l.urls.length > 0))];
    // An empty artifactType counts as missing (spec: "Listing Referrers").
    const artifactType = (m['artifactType'] as string | undefined) || (mediaType === MediaTypes.ociManifest ? config.mediaType : null);
    return {
      mediaType,
      artifactType,
      subject,
      annotations,
      blobs,
      manifests: [],
      references: blobs.map((b) => ({ digest: b.digest, kind: 'blob' as const })),
    };
  }

  const manifests = descriptorList(m['manifests'], 'manifests');
  const blobs = m['blobs'] === undefined ? [] : descriptorList(m['blobs'], 'blobs');
  return {
    mediaType,
    artifactType: (m['artifactType'] as string | undefined) ?? null,
    subject,
    annotations,
    blobs,
    manifests,
    references: [
      ...manifests.map((d) => ({ digest: d.digest, kind: 'manifest' as const })),
      ...blobs.map((d) => ({ digest: d.digest, kind: 'blob' as const })),
    ],
  };
}
