import type { FastifyReply } from 'fastify';
import { RegistryError } from '../errors/catalogue.ts';
import type { Upload } from '../store/meta/meta-store.ts';
import type { OciRoute } from './paths.ts';
import { authorize, callerOf, replicationSourceOf, unsupported, type OciHandler } from './plane.ts';
import { chunkBounds, hasBody, param, queryOf } from './http-util.ts';

/** Headers that tell the client where an upload stands (spec: "Pushing a blob in chunks"). */
function uploadStatus(reply: FastifyReply, name: string, upload: Upload): FastifyReply {
  // As Distribution does: "0-0" for an empty upload, else the inclusive range held.
  const end = upload.sizeBytes > 0 ? upload.sizeBytes - 1 : 0;
  return reply
    .header('location', `/v2/${name}/blobs/uploads/${upload.id}`)
    .header('range', `0-${end}`)
    .header('docker-upload-uuid', upload.id);
}

function blobCreated(reply: FastifyReply, name: string, digest: string): void {
  reply.code(201).header('location', `/v2/${name}/blobs/${digest}`).header('docker-content-digest', digest).send();
}

/**
 * POST /v2/<name>/blobs/uploads/: opens a session, or pushes a whole blob in one request
 * (`?digest=`), or mounts a blob from another repository (`?mount=&from=`).
 */
export const handleUploads: OciHandler<Extract<OciRoute, { kind: 'uploads' }>> = async (deps, route, request, reply) => {
  const { registry } = deps;
  const query = queryOf(request);
  const mount = param(query, 'mount');
  const digest = param(query, 'digest');
  // A single POST with ?digest= is a whole upload, governed by the action that completes one.
  const repo = await authorize(deps, request, digest !== undefined && mount === undefined ? 'ecr:CompleteLayerUpload' : 'ecr:InitiateLayerUpload', route.name);
  if (mount !== undefined) {
    request.raw.resume();
    // A failed mount is not an error (spec: "Mounting a blob from another repository"): skopeo
    // asks for mounts from repositories in its cache that may be long gone. Open a session instead.
    // A replication may mount what it replicated before into other repositories of the same account.
    const sourceAction = replicationSourceOf(request) ? 'ecr:ReplicateImage' : undefined;
    const blob = await registry.mountBlob(callerOf(request), repo, mount, param(query, 'from'), sourceAction);
    if (blob) {
      blobCreated(reply, route.name, blob.digest);
      return;
    }
  } else if (digest !== undefined) {
    const blob = await registry.pushBlob(repo, digest, request.raw, chunkBounds(request));
    blobCreated(reply, route.name, blob.digest);
    return;
  } else {
    request.raw.resume();
  }
  const upload = await registry.startUpload(repo);
  uploadStatus(reply.code(202), route.name, upload).send();
};

/** GET/PATCH/PUT/DELETE /v2/<name>/blobs/uploads/<id>: status, chunk, complete, cancel. */
export const handleUpload: OciHandler<Extract<OciRoute, { kind: 'upload' }>> = async (deps, route, request, reply) => {
  const { registry } = deps;
  switch (request.method) {
    case 'GET': {
      const repo = await authorize(deps, request, 'ecr:InitiateLayerUpload', route.name);
      const upload = await registry.getUpload(repo, route.uploadId);
      uploadStatus(reply.code(204), route.name, upload).send();
      return;
    }
    case 'PATCH': {
      const repo = await authorize(deps, request, 'ecr:UploadLayerPart', route.name);
      const before = Date.now();
      const upload = await registry.appendUpload(repo, route.uploadId, request.raw, chunkBounds(request));
      request.log.debug({ uploadId: upload.id, sizeBytes: upload.sizeBytes, ms: Date.now() - before }, 'chunk appended');
      uploadStatus(reply.code(202), route.name, upload).send();
      return;
    }
    case 'PUT': {
      const repo = await authorize(deps, request, 'ecr:CompleteLayerUpload', route.name);
      const digest = param(queryOf(request), 'digest');
      if (digest === undefined) {
        request.raw.resume();
        throw new RegistryError('DigestInvalid', undefined, { message: 'The digest query parameter is required to complete an upload.' });
      }
      const lastChunk = hasBody(request) ? { body: request.raw, bounds: chunkBounds(request) } : undefined;
      const blob = await registry.completeUpload(repo, route.uploadId, digest, lastChunk);
      blobCreated(reply, route.name, blob.digest);
      return;
    }
    case 'DELETE':
      const repo = await authorize(deps, request, 'ecr:InitiateLayerUpload', route.name);
      await registry.cancelUpload(repo, route.uploadId);
      reply.code(204).send();
      return;
    default:
      throw unsupported(request);
  }
};
