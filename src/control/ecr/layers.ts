import { Readable } from 'node:stream';
import { downloadUrl } from '../../iam/download-url.ts';
import { isDigest } from '../../digest/digest.ts';
import { AwsError } from '../aws-error.ts';
import type { ActionHandler } from '../plane.ts';
import { pushTargetOf, repositoryOf } from './common.ts';

/**
 * ECR's layer operations: the upload API (InitiateLayerUpload, UploadLayerPart,
 * CompleteLayerUpload) over the data plane's upload sessions, BatchCheckLayerAvailability and
 * GetDownloadUrlForLayer. A layer uploaded here is a blob the data plane serves, and an upload
 * started here may even be continued there (the ids are the same sessions).
 */

/** The part size InitiateLayerUpload suggests (ECR answers 10 MiB too); parts may be up to 20 MiB. */
const PART_SIZE_BYTES = 10 * 1024 * 1024;
/** ECR's LayerDigest grammar, which BatchCheckLayerAvailability checks itself (its input has no pattern). */
const ECR_DIGEST = /^[a-zA-Z0-9-_+.]+:[a-fA-F0-9]+$/;

export const layerActions: Record<string, ActionHandler> = {
  async BatchCheckLayerAvailability(ctx, input) {
    const repo = await repositoryOf(ctx, input, 'ecr:BatchCheckLayerAvailability');
    const digests = input['layerDigests'] as string[];
    const failures: { layerDigest: string; failureCode: string; failureReason: string }[] = [];
    const checked: string[] = [];
    for (const d of digests) {
      if (d === '') failures.push({ layerDigest: d, failureCode: 'MissingLayerDigest', failureReason: 'The layer digest is missing' });
      else if (!ECR_DIGEST.test(d)) failures.push({ layerDigest: d, failureCode: 'InvalidLayerDigest', failureReason: "Invalid layer digest: it should satisfy the regex '[a-zA-Z0-9-_+.]+:[a-fA-F0-9]+'" });
      else checked.push(d);
    }
    const found = await ctx.deps.registry.findLinkedBlobs(repo.id, [...new Set(checked.filter(isDigest))]);
    const layers = checked.map((d) => {
      const blob = found.get(d);
      return blob ? { layerDigest: d, layerAvailability: 'AVAILABLE', layerSize: blob.sizeBytes } : { layerDigest: d, layerAvailability: 'UNAVAILABLE' };
    });
    return { layers, failures };
  },

  async InitiateLayerUpload(ctx, input) {
    // A repository creation template with CREATE_ON_PUSH may create the repository here.
    const repo = await pushTargetOf(ctx, input, 'ecr:InitiateLayerUpload');
    const upload = await ctx.deps.registry.startUpload(repo.ref);
    return { uploadId: upload.id, partSize: PART_SIZE_BYTES };
  },

  async UploadLayerPart(ctx, input) {
    const repo = await repositoryOf(ctx, input, 'ecr:UploadLayerPart');
    const bytes = input['layerPartBlob'] as Uint8Array;
    const first = input['partFirstByte'] as number;
    const last = input['partLastByte'] as number;
    const uploadId = input['uploadId'] as string;
    // partLastByte is inclusive: a part of n bytes from byte f ends at f + n - 1.
    if (bytes.byteLength === 0 || last - first + 1 !== bytes.byteLength) {
      throw new AwsError('InvalidLayerPartException', `The layer part holds ${bytes.byteLength} bytes, but partFirstByte ${first} and partLastByte ${last} describe ${Math.max(0, last - first + 1)}; parts must not be empty.`);
    }
    const upload = await ctx.deps.registry.appendUpload(repo.ref, uploadId, Readable.from([Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength)]), {
      start: first,
      end: last,
      length: bytes.byteLength,
    });
    return { registryId: repo.ref.account, repositoryName: repo.ref.name, uploadId, lastByteReceived: upload.sizeBytes - 1 };
  },

  async CompleteLayerUpload(ctx, input) {
    const repo = await repositoryOf(ctx, input, 'ecr:CompleteLayerUpload');
    const { registry } = ctx.deps;
    const uploadId = input['uploadId'] as string;
    const digests = input['layerDigests'] as string[];
    if (digests.length !== 1) {
      throw new AwsError('InvalidParameterException', `Invalid parameter at 'layerDigests' failed to satisfy constraint: 'an upload is one layer: give exactly one digest, not ${digests.length}'`);
    }
    const digest = digests[0]!;
    if (!isDigest(digest)) throw new AwsError('InvalidLayerException', `Invalid layer digest ${digest}: only sha256 (64 hex digits) and sha512 (128 hex digits) are supported`);
    const upload = await registry.getUpload(repo.ref, uploadId);
    if (upload.sizeBytes === 0) throw new AwsError('EmptyUploadException', `The upload ${uploadId} has no layer parts; upload them with UploadLayerPart first`);
    if (await registry.findLinkedBlob(repo.id, digest)) {
      await registry.cancelUpload(repo.ref, uploadId);
      throw new AwsError('LayerAlreadyExistsException', `The layer ${digest} already exists in the repository with name '${repo.ref.name}' in registry with id '${repo.ref.account}'`);
    }
    // A digest that does not match the bytes is InvalidLayerException (DigestInvalid in the catalogue).
    const blob = await registry.completeUpload(repo.ref, uploadId, digest);
    return { registryId: repo.ref.account, repositoryName: repo.ref.name, uploadId, layerDigest: blob.digest };
  },

  async GetDownloadUrlForLayer(ctx, input) {
    const repo = await repositoryOf(ctx, input, 'ecr:GetDownloadUrlForLayer');
    const digest = input['layerDigest'] as string;
    const { registry } = ctx.deps;
    if (!isDigest(digest) || !(await registry.findLinkedBlob(repo.id, digest))) {
      throw new AwsError('LayersNotFoundException', `The image layer ${digest} does not exist in the repository with name '${repo.ref.name}' in the registry with id '${repo.ref.account}'`);
    }
    if (!(await registry.isBlobReferenced(repo.id, digest))) {
      throw new AwsError('LayerInaccessibleException', `The layer ${digest} is not associated with an image in the repository with name '${repo.ref.name}'; unassociated layers may be cleaned up at any time`);
    }
    // As ECR does, a presigned URL of the object store itself where the store can make one and
    // blobs.redirect covers the caller; otherwise Berth's own signed URL, which it proxies.
    const direct = await ctx.deps.registry.redirects.urlFor(digest, ctx.caller.sourceIp);
    return { downloadUrl: direct ?? downloadUrl(ctx.deps.identity, ctx.endpoint, repo.ref, digest, Date.now()), layerDigest: digest };
  },
};
