import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { RegistryError } from '../errors/catalogue.ts';
import { checkDownload, DOWNLOAD_PATH_PREFIX, parseDownloadPath, type DownloadSigner } from '../iam/download-url.ts';
import type { Registry } from '../registry/registry.ts';
import { sendBlob } from './blobs.ts';

/**
 * GET/HEAD of the layer download URLs GetDownloadUrlForLayer issues (src/iam/download-url.ts):
 * the signature in the query stands in for credentials, so the request needs no Authorization.
 * An expired or altered URL answers 403 DENIED; a layer the repository no longer holds 404.
 */
export function registerDownloadRoute(app: FastifyInstance, deps: { registry: Registry; signer: DownloadSigner; now?: () => number }): void {
  const now = deps.now ?? Date.now;
  const handler = async (request: FastifyRequest, reply: FastifyReply) => {
    request.berth.plane = 'oci';
    request.berth.operation = 'ecr:GetDownloadUrlForLayer';
    const q = request.url.indexOf('?');
    const pathname = q < 0 ? request.url : request.url.slice(0, q);
    const search = q < 0 ? '' : request.url.slice(q + 1);
    const target = parseDownloadPath(pathname);
    if (!target) throw new RegistryError('NotFound', { path: pathname }, { message: `${pathname} is not a layer download URL.` });
    request.berth.account = target.repo.account;
    request.berth.repository = target.repo.name;
    const refused = checkDownload(deps.signer, target.repo, target.digest, new URLSearchParams(search), now());
    if (refused) {
      throw new RegistryError('Denied', { reason: refused }, {
        message: refused === 'expired'
          ? 'The download URL has expired; ask GetDownloadUrlForLayer for a new one.'
          : 'The download URL is not valid: its signature does not match its repository, digest and expiry.',
      });
    }
    const blob = await deps.registry.statBlob(target.repo, target.digest);
    await sendBlob(deps.registry, blob, request, reply);
    return reply;
  };
  app.route({ method: ['GET', 'HEAD'], url: `${DOWNLOAD_PATH_PREFIX}*`, handler });
}
