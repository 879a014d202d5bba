import type { FastifyReply } from 'fastify';
import { RegistryError } from '../errors/catalogue.ts';
import type { Upload } from '../store/meta/meta-store.ts';
import type { OciRoute } from './paths.ts';
import { authorize, unsupported, type OciHandler } from './plane.ts';
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
  if (mount !== undefined) {
    await authorize(deps, request, 'push', route.name, 'ecr:InitiateLayerUpload');
    request.raw.resume();
    // A failed mount is not an error (spec: "Mounting a blob from another repository"): skopeo
    // asks for mounts from repositories in its cache that may be long gone. Open a session instead.
    const blob = await registry.mountBlob(request.berth.principal, route.name, mount, param(query, 'from'));
    if (blob) {
      blobCreated(reply, route.name, blob.digest);
      return;
    }
  } else if (digest !== undefined) {
    await authorize(deps, request, 'push', route.name, 'ecr:CompleteLayerUpload');
    const blob = await registry.pushBlob(route.name, digest, request.raw, chunkBounds(request));
    blobCreated(reply, route.name, blob.digest);
    return;
  } else {
    await authorize(deps, request, 'push', route.name, 'ecr:InitiateLayerUpload');
    request.raw.resume();
  }
  const upload = await registry.startUpload(route.name);
  uploadStatus(reply.code(202), route.name, upload).send();
};

/** GET/PATCH/PUT/DELETE /v2/<name>/blobs/uploads/<id>: status, chunk, complete, cancel. */
export const handleUpload: OciHandler<Extract<OciRoute, { kind: 'upload' }>> = async (deps, route, request, reply) => {
  const { registry } = deps;
  switch (request.method) {
    case 'GET': {
      await authorize(deps, request, 'push', route.name, 'ecr:InitiateLayerUpload');
      const upload = await registry.getUpload(route.name, route.uploadId);
      uploadStatus(reply.code(204), route.name, upload).send();
      return;
    }
    case 'PATCH': {
      await authorize(deps, request, 'push', route.name, 'ecr:UploadLayerPart');
      const before = Date.now();
      const upload = await registry.appendUpload(route.name, route.uploadId, request.raw, chunkBounds(request));
      request.log.debug({ uploadId: upload.id, sizeBytes: upload.sizeBytes, ms: Date.now() - before }, 'chunk appended');
      uploadStatus(reply.code(202), route.name, upload).send();
      return;
    }
    case 'PUT': {
      await authorize(deps, request, 'push', route.name, 'ecr:CompleteLayerUpload');
      const digest = param(queryOf(request), 'digest');
      if (digest === undefined) {
        request.raw.resume();
        throw new RegistryError('DigestInvalid', undefined, { message: 'The digest query parameter is required to complete an upload.' });
      }
      const lastChunk = hasBody(request) ? { body: request.raw, bounds: chunkBounds(request) } : undefined;
      const blob = await registry.completeUpload(route.name, route.uploadId, digest, lastChunk);
      blobCreated(reply, route.name, blob.digest);
      return;
    }
    case 'DELETE':
      await authorize(deps, request, 'push', route.name, 'ecr:InitiateLayerUpload');
      await registry.cancelUpload(route.name, route.uploadId);
      reply.code(204).send();
      return;
    default:
      throw unsupported(request);
  }
};
