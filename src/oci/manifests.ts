import { RegistryError } from '../errors/catalogue.ts';
import type { OciRoute } from './paths.ts';
import { authorize, callerOf, replicationSourceOf, unsupported, type OciHandler } from './plane.ts';
import { readSmallBody } from './http-util.ts';

type ManifestRoute = Extract<OciRoute, { kind: 'manifest' }>;

/** GET/HEAD/PUT/DELETE /v2/<name>/manifests/<reference> (spec: "Pulling manifests", "Pushing Manifests", "Deleting Manifests"). */
export const handleManifest: OciHandler<ManifestRoute> = async (deps, route, request, reply) => {
  const { registry } = deps;
  switch (request.method) {
    case 'GET':
    case 'HEAD': {
      const repo = await authorize(deps, request, 'ecr:BatchGetImage', route.name);
      // A repository a pull-through cache rule covers: what it does not hold (yet) comes from the upstream.
      const upstream = deps.cache && (await deps.cache.manifest(repo, route.reference, callerOf(request)));
      if (upstream) {
        reply
          .header('content-type', upstream.mediaType)
          .header('content-length', upstream.bytes.length)
          .header('docker-content-digest', upstream.digest)
          .header('etag', `"${upstream.digest}"`);
        reply.send(request.method === 'HEAD' ? undefined : upstream.bytes);
        return;
      }
      // A GET is a pull (lastRecordedPullTime); a HEAD only checks.
      const manifest = request.method === 'GET' ? await registry.pullManifest(repo, route.reference) : await registry.getManifest(repo, route.reference);
      reply
        .header('content-type', manifest.mediaType)
        .header('content-length', manifest.sizeBytes)
        .header('docker-content-digest', manifest.digest)
        .header('etag', `"${manifest.digest}"`);
      reply.send(request.method === 'HEAD' ? undefined : Buffer.from(manifest.payload.buffer, manifest.payload.byteOffset, manifest.payload.byteLength));
      return;
    }
    case 'PUT': {
      const repo = await authorize(deps, request, 'ecr:PutImage', route.name);
      const body = await readSmallBody(request, deps.manifestMaxBytes, (size) =>
        new RegistryError('ManifestTooLarge', { sizeBytes: size }, { message: `The manifest is at least ${size} bytes; the limit is ${deps.manifestMaxBytes}.` }),
      );
      request.berth.bytesIn = body.length;
      const result = await registry.putManifest(repo, route.reference, request.headers['content-type'], body, { replicatedFrom: replicationSourceOf(request) });
      reply.code(201).header('location', `/v2/${route.name}/manifests/${result.digest}`).header('docker-content-digest', result.digest);
      // Spec: "Pushing Manifests with Subject": tells the client the registry indexed the referrer.
      if (result.subject) reply.header('oci-subject', result.subject);
      reply.send();
      return;
    }
    case 'DELETE':
      const repo = await authorize(deps, request, 'ecr:BatchDeleteImage', route.name);
      await registry.deleteManifest(repo, route.reference);
      reply.code(202).send();
      return;
    default:
      throw unsupported(request);
  }
};
