import { MediaTypes } from '../registry/manifest.ts';
import type { OciRoute } from './paths.ts';
import { authorize, type OciHandler } from './plane.ts';
import { param, queryOf } from './http-util.ts';

/** GET /v2/<name>/referrers/<digest> (spec: "Listing Referrers"), with artifactType filtering. */
export const handleReferrers: OciHandler<Extract<OciRoute, { kind: 'referrers' }>> = async (deps, route, request, reply) => {
  const repo = await authorize(deps, request, 'ecr:ListImageReferrers', route.name);
  const artifactType = param(queryOf(request), 'artifactType');
  const referrers = await deps.registry.listReferrers(repo, route.digest, artifactType || undefined);
  const manifests = referrers.map((r) => ({
    mediaType: r.mediaType,
    digest: r.digest,
    size: r.sizeBytes,
    ...(r.artifactType ? { artifactType: r.artifactType } : {}),
    ...(r.annotations ? { annotations: JSON.parse(r.annotations) as Record<string, string> } : {}),
  }));
  if (artifactType) reply.header('oci-filters-applied', 'artifactType');
  // A Buffer, not a string: Fastify would append `; charset=utf-8`, and the spec fixes the exact type.
  reply.header('content-type', MediaTypes.ociIndex).send(Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: MediaTypes.ociIndex, manifests })));
};
