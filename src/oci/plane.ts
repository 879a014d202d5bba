import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { RegistryError } from '../errors/catalogue.ts';
import type { Action } from '../registry/access.ts';
import type { Registry } from '../registry/registry.ts';
import { handleBlob } from './blobs.ts';
import { handleManifest } from './manifests.ts';
import { parseOciPath, type OciRoute } from './paths.ts';
import { handleReferrers } from './referrers.ts';
import { handleCatalog, handleTags } from './tags.ts';
import { handleUpload, handleUploads } from './uploads.ts';

export interface OciDeps {
  registry: Registry;
  manifestMaxBytes: number;
}

export type OciHandler<R extends OciRoute> = (deps: OciDeps, route: R, request: FastifyRequest, reply: FastifyReply) => Promise<void>;

/**
 * Checks that the caller may do `action` on the repository: the one authorization hook every
 * data-plane operation passes. Records the repository and operation for the request's log line.
 */
export async function authorize(deps: OciDeps, request: FastifyRequest, action: Action, repository: string | undefined, operation: string): Promise<void> {
  request.berth.repository = repository;
  request.berth.operation = operation;
  await deps.registry.authorizer.authorize(request.berth.principal, action, repository);
}

function unsupported(request: FastifyRequest): RegistryError {
  return new RegistryError('Unsupported', { method: request.method }, { message: `${request.method} is not supported on ${request.url.split('?')[0]}.` });
}

/** Registers the OCI Distribution API (spec v1.1) under /v2/. */
export function registerOciPlane(app: FastifyInstance, deps: OciDeps): void {
  // Fastify needs the reply returned from an async handler, or it ends a streamed response empty.
  const handler = async (request: FastifyRequest, reply: FastifyReply) => {
    await dispatch(request, reply);
    return reply;
  };
  const dispatch = async (request: FastifyRequest, reply: FastifyReply): Promise<void> => {
    request.berth.plane = 'oci';
    reply.header('docker-distribution-api-version', 'registry/2.0');
    const pathname = request.url.split('?', 1)[0]!;
    const route = parseOciPath(pathname);
    if (!route) throw new RegistryError('NotFound', { path: pathname }, { message: `${pathname} is not an endpoint of the OCI Distribution API.` });
    const m = request.method;
    switch (route.kind) {
      case 'base':
        if (m !== 'GET' && m !== 'HEAD') throw unsupported(request);
        // API version check (spec: "Determining support"): answers 200 once the caller may use the registry.
        await authorize(deps, request, 'pull', undefined, 'registry:Ping');
        reply.header('content-type', 'application/json').send('{}');
        return;
      case 'catalog':
        if (m !== 'GET') throw unsupported(request);
        return handleCatalog(deps, route, request, reply);
      case 'tags':
        if (m !== 'GET') throw unsupported(request);
        return handleTags(deps, route, request, reply);
      case 'manifest':
        return handleManifest(deps, route, request, reply);
      case 'uploads':
        if (m !== 'POST') throw unsupported(request);
        return handleUploads(deps, route, request, reply);
      case 'upload':
        return handleUpload(deps, route, request, reply);
      case 'blob':
        return handleBlob(deps, route, request, reply);
      case 'referrers':
        if (m !== 'GET') throw unsupported(request);
        return handleReferrers(deps, route, request, reply);
    }
  };
  app.route({ method: ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE'], url: '/v2', handler });
  app.route({ method: ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE'], url: '/v2/*', handler });
}

export { unsupported };
