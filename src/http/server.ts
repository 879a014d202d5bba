import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { Socket } from 'node:net';
import Fastify, { LogController, type FastifyInstance } from 'fastify';
import type { Config } from '../config/config.ts';
import type { Logger } from '../log/logger.ts';
import { RegistryError } from '../errors/catalogue.ts';
import { anonymous } from '../registry/access.ts';
import type { Registry } from '../registry/registry.ts';
import { registerOciPlane } from '../oci/plane.ts';
import type { PullThroughCache } from '../cache/pull-through-cache.ts';
import { registerTokenEndpoint } from '../oci/authenticate.ts';
import { registerDownloadRoute } from '../oci/download.ts';
import { registerControlPlane } from '../control/plane.ts';
import type { AuditLog } from '../audit/audit-log.ts';
import type { IamAuthorizer } from '../iam/authorizer.ts';
import type { Identity } from '../iam/identity.ts';
import type { SecretsManager } from '../secrets/secrets-manager.ts';
import { renderOciError } from '../oci/render-error.ts';
import { registerConsole, wantsConsole } from '../console/console.ts';
import type { RequestContext } from './context.ts';
import './context.ts';

/** Modern ciphers for TLS 1.2 (forward secrecy, AEAD only); TLS 1.3 suites are always modern. */
const TLS12_CIPHERS = [
  'ECDHE-ECDSA-AES128-GCM-SHA256',
  'ECDHE-RSA-AES128-GCM-SHA256',
  'ECDHE-ECDSA-AES256-GCM-SHA384',
  'ECDHE-RSA-AES256-GCM-SHA384',
  'ECDHE-ECDSA-CHACHA20-POLY1305',
  'ECDHE-RSA-CHACHA20-POLY1305',
].join(':');

const badRequest = JSON.stringify({ errors: [{ code: 'BAD_REQUEST', message: 'The request could not be read: it was malformed or its body ended early.' }] });

/**
 * A request the HTTP parser rejects (garbage, a body shorter than its Content-Length, or a TLS
 * handshake sent to the plain-HTTP port, as skopeo and podman do first with --tls-verify=false)
 * gets a short 400 in the OCI error shape and the connection is closed at once.
 */
function clientErrorHandler(err: NodeJS.ErrnoException, socket: Socket): void {
  if (err.code === 'ECONNRESET' || !socket.writable) {
    socket.destroy();
    return;
  }
  socket.end(`HTTP/1.1 400 Bad Request\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(badRequest)}\r\n\r\n${badRequest}`);
}

export interface ServerDeps {
  config: Config;
  log: Logger;
  registry: Registry;
  identity: Identity;
  authorizer: IamAuthorizer;
  audit: AuditLog;
  /** The Secrets Manager API's domain (pull-through cache credentials). */
  secretsManager: SecretsManager;
  /** The pull-through cache; undefined when cache.pullThroughEnabled is off. */
  cache?: PullThroughCache | undefined;
  /** Tells this node's scan worker that StartImageScan queued a scan (a hint; the queue is durable). */
  onScanRequested?: () => void;
  /** Called when replications were queued through the API (a backfill), so this node starts them now. */
  onReplicationRequested?: () => void;
}

/**
 * The HTTP pipeline: one Fastify instance, request ids, one completion log line per request,
 * raw request streams (bodies are never buffered by the framework) and the OCI plane.
 */
export function buildServer(deps: ServerDeps): FastifyInstance {
  const { config, log, registry, identity, authorizer, audit } = deps;
  const https = config.tls.cert && config.tls.key
    ? { cert: readFileSync(config.tls.cert), key: readFileSync(config.tls.key), minVersion: 'TLSv1.2' as const, ciphers: TLS12_CIPHERS, honorCipherOrder: true }
    : null;
  const app = Fastify({
    loggerInstance: log,
    // One completion line per request is written by the onResponse hook below instead.
    logController: new LogController({ disableRequestLogging: true }),
    exposeHeadRoutes: false,
    genReqId: () => randomUUID(),
    requestIdHeader: false,
    // Uploads of large blobs may legitimately take longer than any fixed limit.
    requestTimeout: 0,
    connectionTimeout: 0,
    keepAliveTimeout: 65_000,
    bodyLimit: 1024 * 1024,
    // Requests that arrive while closing are refused below, in the OCI error shape.
    return503OnClosing: false,
    clientErrorHandler,
    forceCloseConnections: 'idle',
    ...(config.server.trustProxy !== undefined ? { trustProxy: config.server.trustProxy } : {}),
    routerOptions: { ignoreDuplicateSlashes: true, maxParamLength: 1000 },
    ...(https ? { https } : {}),
  } as Parameters<typeof Fastify>[0]) as unknown as FastifyInstance;

  let isClosing = false;
  app.addHook('preClose', async () => {
    isClosing = true;
  });
  app.decorateRequest('berth', null as unknown as RequestContext);
  app.addHook('onRequest', async (request, reply) => {
    request.berth = { principal: anonymous, account: undefined, plane: 'other', operation: undefined, repository: undefined, errorCode: undefined, bytesIn: 0 };
    reply.header('x-request-id', request.id);
    if (isClosing) {
      reply.header('connection', 'close');
      throw new RegistryError('ServiceUnavailable', undefined, { message: 'The registry is shutting down; retry against another node or in a moment.' });
    }
  });
  app.addHook('onResponse', async (request, reply) => {
    const ctx = request.berth;
    const length = reply.getHeader('content-length');
    log.info(
      {
        requestId: request.id,
        plane: ctx.plane,
        operation: ctx.operation,
        repository: ctx.repository,
        method: request.method,
        path: request.url.split('?', 1)[0],
        status: reply.statusCode,
        errorCode: ctx.errorCode,
        bytesIn: ctx.bytesIn || Number(request.headers['content-length'] ?? 0),
        bytesOut: request.method === 'HEAD' ? 0 : Number(length ?? 0),
        durationMs: Math.round(reply.elapsedTime * 10) / 10,
      },
      'request',
    );
  });

  // Bodies stay unread streams: each handler consumes request.raw itself, hashing as it writes.
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', (_request, _payload, done) => done(null, undefined));

  app.setErrorHandler((err, request, reply) => renderOciError(err, request, reply));
  app.setNotFoundHandler((request, reply) => {
    request.berth.plane = 'other';
    reply.code(404).header('content-type', 'application/json').send(JSON.stringify({ errors: [{ code: 'NOT_FOUND', message: `${request.url.split('?', 1)[0]} is not an endpoint of this registry.` }] }));
  });

  app.get('/healthz', async (request, reply) => {
    request.berth.plane = 'health';
    return reply.header('content-type', 'application/json').send('{"status":"ok"}');
  });
  app.get('/readyz', async (request, reply) => {
    request.berth.plane = 'health';
    try {
      await Promise.all([registry.meta.check(), registry.blobs.check()]);
      return reply.header('content-type', 'application/json').send('{"status":"ready"}');
    } catch (err) {
      request.log.warn({ err }, 'not ready');
      return reply.code(503).header('content-type', 'application/json').send('{"status":"not ready"}');
    }
  });

  registerOciPlane(app, {
    registry,
    manifestMaxBytes: config.manifests.maxBytes,
    identity,
    audit,
    authEnabled: config.auth.enabled,
    challenge: config.auth.challenge,
    cache: deps.cache,
  });
  if (config.console.enabled && config.auth.enabled) {
    // A browser's GET / (it asks for HTML) goes to the console; API clients never ask for HTML.
    app.addHook('onRequest', async (request, reply) => {
      if (request.url === '/' && wantsConsole(request)) {
        request.berth.plane = 'console';
        return reply.redirect('/console/', 302);
      }
    });
    registerConsole(app, { identity, audit, region: config.region, sessionSeconds: Math.min(config.console.sessionSeconds, 129_600), signInAttempts: config.console.signInAttempts });
  }
  registerTokenEndpoint(app, identity, config.auth.enabled ? authorizer : undefined);
  registerDownloadRoute(app, { registry, signer: identity });
  registerControlPlane(app, {
    identity,
    authorizer,
    registry,
    audit,
    region: config.region,
    scanning: { manualScanQuotaSeconds: config.scan.manualScanQuotaSeconds, continuousStatus: config.scan.continuousStatus, ...(deps.onScanRequested ? { wake: deps.onScanRequested } : {}) },
    replication: { peerRegions: config.replication.peers.map((p) => p.region), ...(deps.onReplicationRequested ? { wake: deps.onReplicationRequested } : {}) },
    authEnabled: config.auth.enabled,
    maxBodyBytes: config.manifests.maxBytes * 2 + 64 * 1024,
    secretsManager: deps.secretsManager,
    cache: deps.cache,
  });

  return app;
}
