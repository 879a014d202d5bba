import type { Readable } from 'node:stream';
import type { Digest } from '../digest/digest.ts';
import { isRegistryError } from '../errors/catalogue.ts';
import { parseManifest } from '../registry/manifest.ts';
import type { RepoRef } from '../registry/names.ts';
import type { Registry } from '../registry/registry.ts';
import { ReplicationFailure, type Destination } from './destination.ts';

/** How deep referrers of referrers are followed (a signature of an SBOM of an image is depth 2). */
const MAX_REFERRER_DEPTH = 3;

export interface ImageCopy {
  registry: Registry;
  destination: Destination;
  /** The source repository. */
  source: RepoRef;
  sourceRepositoryId: number;
  /** Settings to copy too, when the destination takes them. */
  copySettings: boolean;
  /** Aborts the copy (the node is stopping). */
  signal?: AbortSignal | undefined;
}

/**
 * Copies one image to the destination (docs/replication.md): its manifest tree (an index's
 * children first, then each manifest's blobs, then the manifest by digest, so the destination
 * never holds a manifest whose references it lacks), its referrers (signatures, SBOMs), and
 * then the tags that still name it here. Resolves the tags done. Something the destination
 * already holds is not sent again, and nothing counts as done until the destination answers
 * that it holds the image.
 */
export async function copyImage(copy: ImageCopy, digest: Digest, tags: readonly string[]): Promise<string[]> {
  const { destination, registry } = copy;
  const target = destination.repositoryName(copy.source.name);
  await destination.prepare(target);
  // The image goes in under a tag that still names it, when there is one, so that the destination
  // records one arrival per tag (as for pushes) rather than an untagged one first.
  let firstTag: string | undefined;
  for (const tag of tags) {
    if ((await registry.tagDigest(copy.sourceRepositoryId, tag)) === digest) {
      firstTag = tag;
      break;
    }
  }
  const record = await copyTree(copy, target, digest, new Set(), 0, firstTag);
  if (copy.copySettings && destination.copySettings) {
    const repository = await registry.getRepository(copy.source);
    const settings = await registry.repositorySettings(repository);
    await destination.copySettings(target, {
      repositoryPolicy: (await registry.repositoryPolicy(repository.id)) ?? null,
      lifecyclePolicy: (await registry.lifecyclePolicy(repository.id))?.text ?? null,
      tagMutability: { imageTagMutability: settings.imageTagMutability, imageTagMutabilityExclusionFilters: settings.imageTagMutabilityExclusionFilters },
    });
  }
  const done: string[] = [];
  for (const tag of tags) {
    // A tag moved on since the push is left to the push that moved it (it has its own task).
    if ((await registry.tagDigest(copy.sourceRepositoryId, tag)) !== digest) {
      done.push(tag);
      continue;
    }
    if ((await destination.manifestDigest(target, tag, copy.signal)) !== digest) await destination.putManifest(target, tag, record.mediaType, record.payload, copy.signal);
    done.push(tag);
  }
  if ((await destination.manifestDigest(target, digest, copy.signal)) !== digest) {
    throw new ReplicationFailure(`${destination.label} does not hold ${target}@${digest} after it was sent; trying again.`, { retryable: true });
  }
  return done;
}

/**
 * Copies the manifest `digest` with what it references and its referrers; resolves its record.
 * With `tag`, the manifest is put under that tag rather than by digest.
 */
async function copyTree(copy: ImageCopy, target: string, digest: Digest, seen: Set<string>, depth: number, tag?: string): Promise<{ mediaType: string; payload: Uint8Array }> {
  const { destination, registry } = copy;
  copy.signal?.throwIfAborted();
  seen.add(digest);
  const record = await registry.getManifest(copy.source, digest);
  if ((await destination.manifestDigest(target, digest, copy.signal)) !== digest) {
    const parsed = parseManifest(record.payload, record.mediaType);
    for (const child of parsed.manifests) {
      if (seen.has(child.digest)) continue;
      // An index may name platforms this registry does not hold (a partial copy); the destination then needs none of them either.
      if (!(await registry.hasManifest(copy.sourceRepositoryId, child.digest))) continue;
      await copyTree(copy, target, child.digest, seen, depth);
    }
    for (const blob of parsed.blobs) await copyBlob(copy, target, blob.digest, blob.urls !== undefined && blob.urls.length > 0);
    await destination.putManifest(target, tag ?? digest, record.mediaType, record.payload, copy.signal);
  }
  if (depth < MAX_REFERRER_DEPTH) {
    for (const referrer of await registry.listReferrers(copy.source, digest)) {
      if (seen.has(referrer.digest)) continue;
      await copyTree(copy, target, referrer.digest, seen, depth + 1);
    }
  }
  return record;
}

async function copyBlob(copy: ImageCopy, target: string, digest: Digest, isForeign: boolean): Promise<void> {
  let info;
  try {
    info = await copy.registry.statBlob(copy.source, digest);
  } catch (err) {
    // A foreign layer (with URLs) need not be in the registry; its manifest is pushed as it is.
    if (isForeign && isRegistryError(err, 'BlobUnknown')) return;
    throw err;
  }
  const size = info.sizeBytes;
  const open = (offset: number): Promise<Readable> => copy.registry.openBlob(info, offset > 0 ? { start: offset, end: size - 1 } : undefined);
  await copy.destination.putBlob(target, { digest, sizeBytes: size }, open, copy.signal);
}
