import type { OutgoingHttpHeaders } from 'node:http';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { isRegistryError } from '../errors/catalogue.ts';
import type { Registry } from '../registry/registry.ts';
import type { OciRoute } from './paths.ts';
import { authorize, callerOf, unsupported, type OciHandler } from './plane.ts';
import { byteRange } from './http-util.ts';

type BlobRoute = Extract<OciRoute, { kind: 'blob' }>;

/** GET/HEAD/DELETE /v2/<name>/blobs/<digest> (spec: "Pulling blobs", "Deleting Blobs"). */
export const handleBlob: OciHandler<BlobRoute> = async (deps, route, request, reply) => {
  const { registry } = deps;
  switch (request.method) {
    case 'GET':
    case 'HEAD': {
      const isHead = request.method === 'HEAD';
      const repo = await authorize(deps, request, isHead ? 'ecr:BatchCheckLayerAvailability' : 'ecr:GetDownloadUrlForLayer', route.name);
      let blob;
      try {
        blob = await registry.statBlob(repo, route.digest);
      } catch (err) {
        // A repository a pull-through cache rule covers: a blob it does not hold comes from the upstream.
        if (!deps.cache || !(isRegistryError(err, 'BlobUnknown') || isRegistryError(err, 'NameUnknown'))) throw err;
        const cached = await deps.cache.blob(repo, route.digest, callerOf(request));
        if (!cached) throw err;
        if (cached.kind === 'stream') {
          sendUpstreamBlob(route.digest, cached, request, reply);
          return;
        }
        blob = await registry.statBlob(repo, route.digest);
      }
      if (!isHead && !blob.manifest) {
        // The bytes come from the object store itself (a presigned URL), as with ECR and
        // Distribution on S3, when blobs.redirect says so for this client.
        const location = await registry.redirects.urlFor(blob.digest, request.ip);
        if (location) {
          reply.code(307).header('location', location).header('docker-content-digest', blob.digest).header('cache-control', 'no-store').send();
          return;
        }
      }
      await sendBlob(registry, blob, request, reply);
      return;
    }
    case 'DELETE':
      const repo = await authorize(deps, request, 'ecr:BatchDeleteImage', route.name);
      await registry.deleteBlob(repo, route.digest);
      reply.code(202).send();
      return;
    default:
      throw unsupported(request);
  }
};

/**
 * Answers a GET or HEAD of a blob with the bytes of its upstream as they are fetched into the
 * pull-through cache (the whole blob: a Range is not honoured before the blob is cached). A
 * fetch that fails, or bytes that do not match the digest, end the response early.
 */
function sendUpstreamBlob(digest: string, cached: { size: number | undefined; stream: Readable }, request: FastifyRequest, reply: FastifyReply): void {
  reply.header('content-type', 'application/octet-stream').header('docker-content-digest', digest).header('etag', `"${digest}"`);
  if (cached.size !== undefined) reply.header('content-length', cached.size);
  if (request.method === 'HEAD') {
    cached.stream.destroy();
    reply.send();
    return;
  }
  reply.hijack();
  const res = reply.raw;
  res.writeHead(200, reply.getHeaders() as OutgoingHttpHeaders);
  pipeline(cached.stream, res).catch((err: unknown) => {
    request.berth.errorCode = 'UPSTREAM_ABORTED';
    request.log.info({ err: { message: (err as Error).message } }, 'blob transfer from the upstream ended early');
    res.destroy();
  });
}

/**
 * Answers a GET or HEAD of a blob the repository holds: headers, an optional byte range (RFC
 * 9110), then the bytes. Shared by the blob route and the signed download URLs.
 */
export async function sendBlob(registry: Registry, blob: Awaited<ReturnType<Registry['statBlob']>>, request: FastifyRequest, reply: FastifyReply): Promise<void> {
  const isHead = request.method === 'HEAD';
  let range;
  try {
    range = byteRange(request.headers.range, blob.sizeBytes);
  } catch (err) {
    // RFC 9110 section 15.5.17: a 416 says how large the representation is.
    if (isRegistryError(err, 'RangeNotSatisfiable')) reply.header('content-range', `bytes */${blob.sizeBytes}`);
    throw err;
  }
  reply
    .header('content-type', 'application/octet-stream')
    .header('docker-content-digest', blob.digest)
    .header('accept-ranges', 'bytes')
    .header('etag', `"${blob.digest}"`)
    .header('cache-control', 'max-age=31536000');
  if (range) {
    reply.code(206).header('content-range', `bytes ${range.start}-${range.end}/${blob.sizeBytes}`).header('content-length', range.end - range.start + 1);
  } else {
    reply.header('content-length', blob.sizeBytes);
  }
  if (isHead || blob.sizeBytes === 0) {
    reply.send();
    return;
  }
  const send = await registry.openBlobSender(blob, range);
  if (send) {
    // Write straight to the socket so the store can reuse its buffers; the request's
    // completion line is still logged (onResponse runs for hijacked replies).
    reply.hijack();
    const res = reply.raw;
    res.writeHead(reply.statusCode, reply.getHeaders() as OutgoingHttpHeaders);
    try {
      await send(res);
      res.end();
    } catch (err) {
      request.berth.errorCode = 'CLIENT_ABORTED';
      request.log.info({ err: { message: (err as Error).message } }, 'blob transfer ended early');
      res.destroy();
    }
    return;
  }
  reply.send(await registry.openBlob(blob, range));
}
