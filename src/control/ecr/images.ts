import { isRegistryError } from '../../errors/catalogue.ts';
import { digestOf, isDigest, parseDigest, type Digest } from '../../digest/digest.ts';
import { isIndexMediaType } from '../../registry/manifest.ts';
import { imageSizeBytes } from '../../registry/listings.ts';
import { isValidTag, type RepoRef } from '../../registry/names.ts';
import type { ImageId, ImageRecord, Repository, TagStatus } from '../../store/meta/meta-store.ts';
import { AwsError } from '../aws-error.ts';
import type { ActionContext, ActionHandler } from '../plane.ts';
import { afterToken, nextTokenAfter, pushTargetOf, repositoryOf } from './common.ts';
import { imageScanSummaries } from './scanning.ts';

/**
 * ECR's image operations: ListImages, DescribeImages, BatchGetImage, PutImage, BatchDeleteImage
 * and ListImageReferrers. They work on the same registry as the data plane (manifests, tags,
 * referrers), so a push with docker is listed here at once and a deletion here is a 404 there.
 * docs/ecr-api.md says where Berth's answers differ from ECR's.
 */

/** ListImages and DescribeImages return this many entries when maxResults is not given (as ECR). */
const DEFAULT_PAGE = 100;
/** ECR's digest grammar (ImageFailure reasons quote it). */
const ECR_DIGEST = /^[a-zA-Z0-9-_+.]+:[a-fA-F0-9]+$/;

export interface ImageIdentifier {
  imageDigest?: string;
  imageTag?: string;
}

interface ImageFailure {
  imageId: ImageIdentifier;
  failureCode: 'InvalidImageDigest' | 'InvalidImageTag' | 'ImageTagDoesNotMatchDigest' | 'ImageNotFound' | 'MissingDigestAndTag' | 'ImageReferencedByManifestList';
  failureReason: string;
}

type Resolved = { digest: Digest; tag?: string | undefined } | { failure: ImageFailure };

/**
 * The image an ImageIdentifier names, or why it names none, in BatchGetImage's and
 * BatchDeleteImage's failure words. With both a tag and a digest, the tag must point at it.
 */
export async function resolveImageId(ctx: ActionContext, repositoryId: number, id: ImageIdentifier): Promise<Resolved> {
  const fail = (failureCode: ImageFailure['failureCode'], failureReason: string): Resolved => ({ failure: { imageId: id, failureCode, failureReason } });
  const { imageDigest, imageTag } = id;
  if (imageDigest === undefined && imageTag === undefined) return fail('MissingDigestAndTag', 'Invalid request parameters: both tag and digest cannot be null');
  if (imageDigest !== undefined && !ECR_DIGEST.test(imageDigest)) {
    return fail('InvalidImageDigest', "Invalid request parameters: image digest should satisfy the regex '[a-zA-Z0-9-_+.]+:[a-fA-F0-9]+'");
  }
  if (imageTag !== undefined && !isValidTag(imageTag)) {
    return fail('InvalidImageTag', 'Invalid request parameters: image tag should be up to 128 letters, digits, _ . and -, not starting with . or -');
  }
  const { registry } = ctx.deps;
  if (imageTag !== undefined) {
    const digest = await registry.tagDigest(repositoryId, imageTag);
    if (digest === undefined) return fail('ImageNotFound', 'Requested image not found');
    if (imageDigest !== undefined && digest !== imageDigest) return fail('ImageTagDoesNotMatchDigest', `Invalid request parameters: image tag '${imageTag}' points at ${digest}, not ${imageDigest}`);
    return { digest, tag: imageTag };
  }
  if (!isDigest(imageDigest!) || !(await registry.hasManifest(repositoryId, imageDigest!))) return fail('ImageNotFound', 'Requested image not found');
  return { digest: imageDigest! };
}

function pageSize(input: Record<string, any>): number {
  return (input['maxResults'] as number | undefined) ?? DEFAULT_PAGE;
}

/** ECR's archival states: Berth keeps every image active, so only ACTIVE (or ANY) lists anything. */
function listsActive(imageStatus: string | undefined): boolean {
  return imageStatus === undefined || imageStatus === 'ACTIVE' || imageStatus === 'ANY';
}

/** The JSON a manifest was pushed as (stored bytes are always valid JSON: the registry parsed them). */
function manifestJson(image: ImageRecord): Record<string, any> {
  return JSON.parse(Buffer.from(image.payload).toString('utf8')) as Record<string, any>;
}

/**
 * DescribeImages' ImageDetail for each image. imageSizeInBytes is the sum of the layers' sizes
 * (as ECR: compressed, as pushed; the config is not counted); for an index (manifest list), the
 * sum of the sizes of the images it lists that the repository holds.
 */
export async function imageDetails(ctx: ActionContext, repo: { ref: RepoRef; id: number; repository: Repository }, images: ImageRecord[]): Promise<Record<string, unknown>[]> {
  const docs = new Map<string, Record<string, any>>();
  for (const [i, image] of images.entries()) {
    docs.set(image.digest, manifestJson(image));
    // A page holds up to 1,000 manifests: parsed in slices, so that other requests get in between.
    if (i % 200 === 199) await new Promise((resolve) => setImmediate(resolve));
  }
  const children = [...new Set(images.filter((i) => isIndexMediaType(i.mediaType)).flatMap((i) => ((docs.get(i.digest)!['manifests'] as { digest: string }[] | undefined) ?? []).map((m) => m.digest)))];
  const childDocs = new Map<Digest, Record<string, unknown>>();
  if (children.length > 0) {
    for (const child of (await ctx.deps.registry.getImages(repo.id, children)).values()) childDocs.set(child.digest, manifestJson(child));
  }
  const scans = await imageScanSummaries(ctx, repo.repository, images.map((i) => i.digest));
  return images.map((image) => {
    const doc = docs.get(image.digest)!;
    const isIndex = isIndexMediaType(image.mediaType);
    const size = imageSizeBytes(image.mediaType, doc, childDocs);
    const artifactMediaType = isIndex ? image.artifactType : (doc['config']?.mediaType as string | undefined);
    const pulledAt = ctx.deps.registry.lastPulledAt(repo.id, image.digest, image.lastPulledAtMs);
    return {
      registryId: repo.ref.account,
      repositoryName: repo.ref.name,
      imageDigest: image.digest,
      ...(image.tags.length > 0 ? { imageTags: image.tags } : {}),
      imageSizeInBytes: size,
      imagePushedAt: new Date(image.createdAtMs),
      imageManifestMediaType: image.mediaType,
      ...(artifactMediaType ? { artifactMediaType } : {}),
      ...(pulledAt !== null ? { lastRecordedPullTime: new Date(pulledAt) } : {}),
      ...(image.subjectDigest ? { subjectManifestDigest: image.subjectDigest } : {}),
      ...scans.get(image.digest),
      imageStatus: 'ACTIVE',
    };
  });
}

export function imageNotFound(ref: RepoRef, id: ImageIdentifier): AwsError {
  return new AwsError(
    'ImageNotFoundException',
    `The image with imageId {imageDigest:'${id.imageDigest ?? 'null'}', imageTag:'${id.imageTag ?? 'null'}'} does not exist within the repository with name '${ref.name}' in the registry with id '${ref.account}'`,
  );
}

/** ListImages' key for an entry: untagged entries are the digest alone (tags never hold a space). */
function imageIdKey(id: ImageId): string {
  return id.tag === null ? id.digest : `${id.digest} ${id.tag}`;
}

function imageIdFromKey(key: string): ImageId {
  const space = key.indexOf(' ');
  return space < 0 ? { digest: key, tag: null } : { digest: key.slice(0, space), tag: key.slice(space + 1) };
}

export const imageActions: Record<string, ActionHandler> = {
  async ListImages(ctx, input) {
    const repo = await repositoryOf(ctx, input, 'ecr:ListImages');
    const after = afterToken(input['nextToken']);
    if (!listsActive(input['filter']?.imageStatus)) return { imageIds: [] };
    const limit = pageSize(input);
    const tagStatus = (input['filter']?.tagStatus as TagStatus | undefined) ?? 'ANY';
    const ids = await ctx.deps.registry.listImageIds(repo.id, { tagStatus, after: after === undefined ? undefined : imageIdFromKey(after), limit: limit + 1 });
    const page = ids.slice(0, limit);
    return {
      imageIds: page.map((i) => ({ imageDigest: i.digest, ...(i.tag !== null ? { imageTag: i.tag } : {}) })),
      ...(ids.length > limit ? { nextToken: nextTokenAfter(imageIdKey(page.at(-1)!)) } : {}),
    };
  },

  async DescribeImages(ctx, input) {
    const repo = await repositoryOf(ctx, input, 'ecr:DescribeImages');
    const { registry } = ctx.deps;
    const ids = input['imageIds'] as ImageIdentifier[] | undefined;
    if (ids !== undefined) {
      // ECR: imageIds, maxResults and nextToken do not go together.
      if (input['maxResults'] !== undefined || input['nextToken'] !== undefined) {
        throw new AwsError('InvalidParameterException', "Invalid parameter at 'imageIds' failed to satisfy constraint: 'maxResults and nextToken cannot be used with imageIds'");
      }
      const digests: Digest[] = [];
      for (const id of ids) {
        const resolved = await resolveImageId(ctx, repo.id, id);
        if ('failure' in resolved) {
          if (resolved.failure.failureCode === 'ImageNotFound' || resolved.failure.failureCode === 'ImageTagDoesNotMatchDigest') throw imageNotFound(repo.ref, id);
          throw new AwsError('InvalidParameterException', resolved.failure.failureReason);
        }
        if (!digests.includes(resolved.digest)) digests.push(resolved.digest);
      }
      const found = await registry.getImages(repo.id, digests);
      const missing = digests.findIndex((d) => !found.has(d));
      if (missing >= 0) throw imageNotFound(repo.ref, { imageDigest: digests[missing]! });
      return { imageDetails: await imageDetails(ctx, repo, digests.map((d) => found.get(d)!)) };
    }
    const after = afterToken(input['nextToken']);
    if (!listsActive(input['filter']?.imageStatus)) return { imageDetails: [] };
    const limit = pageSize(input);
    const tagStatus = (input['filter']?.tagStatus as TagStatus | undefined) ?? 'ANY';
    const images = await registry.listImages(repo.id, { tagStatus, afterDigest: after, limit: limit + 1 });
    const page = images.slice(0, limit);
    return {
      imageDetails: await imageDetails(ctx, repo, page),
      ...(images.length > limit ? { nextToken: nextTokenAfter(page.at(-1)!.digest) } : {}),
    };
  },

  async BatchGetImage(ctx, input) {
    const repo = await repositoryOf(ctx, input, 'ecr:BatchGetImage');
    const accepted = input['acceptedMediaTypes'] as string[] | undefined;
    const images: Record<string, unknown>[] = [];
    const failures: ImageFailure[] = [];
    for (const id of input['imageIds'] as ImageIdentifier[]) {
      const resolved = await resolveImageId(ctx, repo.id, id);
      if ('failure' in resolved) {
        failures.push(resolved.failure);
        continue;
      }
      let manifest;
      try {
        manifest = await ctx.deps.registry.getManifest(repo.ref, resolved.digest);
      } catch (err) {
        if (!isRegistryError(err, 'ManifestUnknown')) throw err;
        failures.push({ imageId: id, failureCode: 'ImageNotFound', failureReason: 'Requested image not found' });
        continue;
      }
      // Berth never converts a manifest to another format: one of a type the caller does not
      // accept is reported as not found, as a data-plane pull with that Accept header would be.
      if (accepted !== undefined && !accepted.includes(manifest.mediaType)) {
        failures.push({ imageId: id, failureCode: 'ImageNotFound', failureReason: `Requested image is a ${manifest.mediaType}, which is not among the acceptedMediaTypes` });
        continue;
      }
      ctx.deps.registry.recordPull(repo.id, manifest.digest);
      images.push({
        registryId: repo.ref.account,
        repositoryName: repo.ref.name,
        imageId: { imageDigest: manifest.digest, ...(resolved.tag !== undefined ? { imageTag: resolved.tag } : {}) },
        imageManifest: Buffer.from(manifest.payload).toString('utf8'),
        imageManifestMediaType: manifest.mediaType,
      });
    }
    return { images, failures };
  },

  async PutImage(ctx, input) {
    // A repository creation template with CREATE_ON_PUSH may create the repository here.
    const repo = await pushTargetOf(ctx, input, 'ecr:PutImage');
    const text = input['imageManifest'] as string;
    const payload = Buffer.from(text, 'utf8');
    const tag = input['imageTag'] as string | undefined;
    const given = input['imageDigest'] as string | undefined;
    let digest = digestOf(payload);
    if (given !== undefined) {
      if (!isDigest(given)) throw new AwsError('InvalidParameterException', `Invalid parameter at 'imageDigest' failed to satisfy constraint: '${given} is not a sha256 or sha512 digest'`);
      digest = digestOf(payload, parseDigest(given).algorithm);
      if (digest !== given) {
        throw new AwsError('ImageDigestDoesNotMatchException', `The image digest '${given}' does not match the digest '${digest}' calculated for the image manifest`);
      }
    }
    if (tag !== undefined && !isValidTag(tag)) {
      throw new AwsError('InvalidParameterException', `Invalid parameter at 'imageTag' failed to satisfy constraint: 'up to 128 letters, digits, _ . and -, not starting with . or -'`);
    }
    const { registry } = ctx.deps;
    // ECR: the same manifest again, untagged or under the tag it already has, is an error.
    const id = repo.repository?.id;
    if (id !== undefined && (await registry.hasManifest(id, digest)) && (tag === undefined || (await registry.tagDigest(id, tag)) === digest)) {
      throw new AwsError(
        'ImageAlreadyExistsException',
        `Image with digest '${digest}'${tag !== undefined ? ` and tag '${tag}'` : ''} already exists in the repository with name '${repo.ref.name}' in registry with id '${repo.ref.account}'`,
      );
    }
    // Untagged, the manifest is stored under the digest as given (sha256 or sha512).
    const reference = tag ?? digest;
    const result = await ctx.deps.registry.putManifest(repo.ref, reference, input['imageManifestMediaType'] as string | undefined, payload);
    const stored = await ctx.deps.registry.getManifest(repo.ref, result.digest);
    return {
      image: {
        registryId: repo.ref.account,
        repositoryName: repo.ref.name,
        imageId: { imageDigest: result.digest, ...(tag !== undefined ? { imageTag: tag } : {}) },
        imageManifest: text,
        imageManifestMediaType: stored.mediaType,
      },
    };
  },

  async BatchDeleteImage(ctx, input) {
    const repo = await repositoryOf(ctx, input, 'ecr:BatchDeleteImage');
    const { registry } = ctx.deps;
    const imageIds: ImageIdentifier[] = [];
    const failures: ImageFailure[] = [];
    for (const id of input['imageIds'] as ImageIdentifier[]) {
      const resolved = await resolveImageId(ctx, repo.id, id);
      if ('failure' in resolved) {
        failures.push(resolved.failure);
        continue;
      }
      const { digest, tag } = resolved;
      try {
        if (tag !== undefined) {
          // By tag: the tag goes; as in ECR, an image that loses its last tag goes too, unless an
          // index in the repository still lists it (it then stays, untagged).
          await registry.deleteManifest(repo.ref, tag);
          imageIds.push({ imageDigest: digest, imageTag: tag });
          const rest = (await registry.getImages(repo.id, [digest])).get(digest);
          if (rest && rest.tags.length === 0 && (await registry.parentManifests(repo.id, digest)).length === 0) {
            await registry.deleteManifest(repo.ref, digest).catch((err: unknown) => {
              if (!isRegistryError(err, 'ManifestUnknown') && !isRegistryError(err, 'ManifestReferenced')) throw err;
            });
          }
          continue;
        }
        // By digest: the image and all its tags, unless an index in the repository lists it.
        const image = (await registry.getImages(repo.id, [digest])).get(digest);
        if (!image) {
          failures.push({ imageId: id, failureCode: 'ImageNotFound', failureReason: 'Requested image not found' });
          continue;
        }
        await registry.deleteManifest(repo.ref, digest);
        if (image.tags.length === 0) imageIds.push({ imageDigest: digest });
        for (const t of image.tags) imageIds.push({ imageDigest: digest, imageTag: t });
      } catch (err) {
        if (isRegistryError(err, 'ManifestReferenced')) {
          const parents = (err.detail?.['parents'] as string[] | undefined) ?? [];
          failures.push({ imageId: id, failureCode: 'ImageReferencedByManifestList', failureReason: `Requested image referenced by manifest list: [${parents.join(', ')}]` });
        } else if (isRegistryError(err, 'ManifestUnknown')) {
          failures.push({ imageId: id, failureCode: 'ImageNotFound', failureReason: 'Requested image not found' });
        } else {
          throw err;
        }
      }
    }
    return { imageIds, failures };
  },

  async ListImageReferrers(ctx, input) {
    const repo = await repositoryOf(ctx, input, 'ecr:ListImageReferrers');
    const subject = input['subjectId'].imageDigest as string;
    if (!isDigest(subject)) throw new AwsError('InvalidParameterException', `Invalid parameter at 'subjectId.imageDigest' failed to satisfy constraint: '${subject} is not a sha256 or sha512 digest'`);
    const after = afterToken(input['nextToken']);
    if (!listsActive(input['filter']?.artifactStatus)) return { referrers: [] };
    const types = (input['filter']?.artifactTypes as string[] | undefined) ?? [];
    // The referrers API's order (oldest first, then digest); the token keeps the last position.
    const key = (r: { createdAtMs: number; digest: string }) => `${String(r.createdAtMs).padStart(16, '0')}/${r.digest}`;
    const all = (await ctx.deps.registry.listReferrers(repo.ref, subject)).filter((r) => types.length === 0 || (r.artifactType !== null && types.includes(r.artifactType)));
    const rest = after === undefined ? all : all.filter((r) => key(r) > after);
    const limit = (input['maxResults'] as number | undefined) ?? 50;
    const page = rest.slice(0, limit);
    return {
      referrers: page.map((r) => ({
        digest: r.digest,
        mediaType: r.mediaType,
        ...(r.artifactType ? { artifactType: r.artifactType } : {}),
        size: r.sizeBytes,
        ...(r.annotations ? { annotations: JSON.parse(r.annotations) as Record<string, string> } : {}),
        artifactStatus: 'ACTIVE',
      })),
      ...(rest.length > limit ? { nextToken: nextTokenAfter(key(page.at(-1)!)) } : {}),
    };
  },
};
