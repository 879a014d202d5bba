import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { RegistryError, isRegistryError } from '../errors/catalogue.ts';
import type { AuditLog } from '../audit/audit-log.ts';
import type { PullThroughCache } from '../cache/pull-through-cache.ts';
import type { Identity } from '../iam/identity.ts';
import type { Caller, Principal } from '../registry/access.ts';
import type { RepoRef } from '../registry/names.ts';
import type { Registry } from '../registry/registry.ts';
import { accountOfHost, authenticate, challenge } from './authenticate.ts';
import { handleBlob } from './blobs.ts';
import { handleManifest } from './manifests.ts';
import { parseOciPath, type OciRoute } from './paths.ts';
import { handleReferrers } from './referrers.ts';
import { handleCatalog, handleTags } from './tags.ts';
import { handleEvents } from './events.ts';
import { handleUpload, handleUploads } from './uploads.ts';

export interface OciDeps {
  registry: Registry;
  manifestMaxBytes: number;
  identity: Identity;
  audit: AuditLog;
  /** False when auth.enabled is off: every request then acts as the addressed account's root. */
  authEnabled: boolean;
  challenge: 'basic' | 'bearer';
  /** The pull-through cache, which answers pulls the registry cannot from the upstream of a rule. */
  cache?: PullThroughCache | undefined;
}

export type OciHandler<R extends OciRoute> = (deps: OciDeps, route: R, request: FastifyRequest, reply: FastifyReply) => Promise<void>;

/** The caller as policies see it. */
export function callerOf(request: FastifyRequest): Caller {
  return {
    principal: request.berth.principal,
    sourceIp: request.ip,
    secureTransport: request.protocol === 'https',
    requestId: request.id,
    userAgent: request.headers['user-agent'],
    plane: request.berth.plane,
  };
}

/** Actions that write into a repository: a push to a missing one also needs ecr:CreateRepository when it would create it. */
const PUSH_ACTIONS = new Set(['ecr:InitiateLayerUpload', 'ecr:UploadLayerPart', 'ecr:CompleteLayerUpload', 'ecr:PutImage']);

/** Data-plane actions a replication from another region or account performs, each authorized as ecr:ReplicateImage. */
const REPLICATION_ACTIONS = new Set([...PUSH_ACTIONS, 'ecr:BatchCheckLayerAvailability', 'ecr:BatchGetImage']);

/**
 * The header a replicating Berth sends on every data-plane request it makes to its destination
 * (docs/replication.md): `account=SOURCE_ACCOUNT; region=SOURCE_REGION`.
 */
export const REPLICATION_HEADER = 'x-berth-replication';

/**
 * The source a replication request names, or undefined for an ordinary request. A malformed
 * header is refused rather than ignored, so that a replication never lands as a push.
 */
export function replicationSourceOf(request: FastifyRequest): { account: string; region: string } | undefined {
  const raw = request.headers[REPLICATION_HEADER];
  if (raw === undefined) return undefined;
  const fields = new Map(
    String(raw)
      .split(';')
      .map((part) => part.trim().split('=', 2) as [string, string | undefined])
      .map(([k, v]) => [k.trim().toLowerCase(), (v ?? '').trim()]),
  );
  const account = fields.get('account') ?? '';
  const region = fields.get('region') ?? '';
  if (!/^\d{12}$/.test(account) || !/^[0-9a-z-]{2,25}$/.test(region)) {
    throw new RegistryError('ReplicationHeaderInvalid', { header: REPLICATION_HEADER }, {
      message: `The ${REPLICATION_HEADER} header must read "account=<12-digit account id>; region=<region>", not ${JSON.stringify(String(raw).slice(0, 200))}.`,
    });
  }
  return { account, region };
}

/**
 * Checks that the caller may do `action` (an ECR IAM action) on the repository: the one
 * authorization hook every data-plane operation passes. Records the repository and operation
 * for the request's log line and resolves the repository's full reference.
 *
 * A replication request (REPLICATION_HEADER) is asked as ecr:ReplicateImage instead of the push
 * and read actions it is made of, as ECR asks a replicating registry; a repository it writes
 * to that does not exist is created, as ecr:CreateRepository, from a REPLICATION creation
 * template (or with the defaults).
 */
export async function authorize(deps: OciDeps, request: FastifyRequest, action: string, name: string): Promise<RepoRef> {
  request.berth.repository = name;
  request.berth.operation = action;
  const repo: RepoRef = { account: request.berth.account!, name };
  const caller = callerOf(request);
  if (REPLICATION_ACTIONS.has(action) && replicationSourceOf(request)) {
    request.berth.operation = 'ecr:ReplicateImage';
    await deps.registry.authorizer.authorize(caller, 'ecr:ReplicateImage', repo);
    if (PUSH_ACTIONS.has(action) && !(await deps.registry.findRepository(repo))) {
      await deps.registry.authorizer.authorize(caller, 'ecr:CreateRepository', repo);
      await deps.registry.repositoryForTemplateUse(repo, 'REPLICATION');
    }
    return repo;
  }
  await deps.registry.authorizer.authorize(caller, action, repo);
  if (PUSH_ACTIONS.has(action) && !(await deps.registry.findRepository(repo)) && (await deps.registry.createsOnPush(repo))) {
    await deps.registry.authorizer.authorize(caller, 'ecr:CreateRepository', repo);
  }
  return repo;
}

/** For account-wide operations (the catalog): any authenticated caller; entries are filtered by policy. */
export async function authorizeAccount(deps: OciDeps, request: FastifyRequest, action: string): Promise<string> {
  request.berth.operation = action;
  const caller = callerOf(request);
  if (caller.principal.kind !== 'iam') await deps.registry.authorizer.authorize(caller, action, undefined, request.berth.account);
  else {
    deps.audit.record({
      atMs: Date.now(),
      requestId: request.id,
      plane: 'oci',
      accountId: request.berth.account ?? null,
      principal: caller.principal.arn,
      accessKeyId: caller.principal.accessKeyId ?? null,
      action,
      resource: '*',
      decision: 'allow',
      policy: 'listing filtered per repository',
      sourceIp: request.ip,
      userAgent: request.headers['user-agent'] ?? null,
      errorCode: null,
    });
  }
  return request.berth.account!;
}

function rootOf(account: string): Principal {
  return { kind: 'iam', type: 'root', accountId: account, arn: `arn:aws:iam::${account}:root`, userId: account, name: 'root', accessKeyId: undefined };
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
    try {
      const account = await accountOfHost(deps.identity, request.host);
      request.berth.account = account;
      request.berth.principal = deps.authEnabled ? await authenticate(deps.identity, request.headers.authorization) : rootOf(account);
      if (!route) throw new RegistryError('NotFound', { path: pathname }, { message: `${pathname} is not an endpoint of the OCI Distribution API.` });
      await route_(route, request, reply);
    } catch (err) {
      if (isRegistryError(err, 'Unauthorized')) {
        reply.header('www-authenticate', challenge(deps.challenge, request, route));
        if (request.headers.authorization) {
          // Credentials that failed to authenticate: the refusal is audited here, as no policy was asked.
          deps.audit.record({
            atMs: Date.now(),
            requestId: request.id,
            plane: 'oci',
            accountId: request.berth.account ?? null,
            principal: null,
            accessKeyId: null,
            action: request.berth.operation ?? `${request.method} ${pathname}`,
            resource: null,
            decision: 'unauthenticated',
            policy: null,
            sourceIp: request.ip,
            userAgent: request.headers['user-agent'] ?? null,
            errorCode: 'UNAUTHORIZED',
          });
        }
      }
      throw err;
    }
  };
  const route_ = async (route: OciRoute, request: FastifyRequest, reply: FastifyReply): Promise<void> => {
    const m = request.method;
    switch (route.kind) {
      case 'base':
        if (m !== 'GET' && m !== 'HEAD') throw unsupported(request);
        // API version check (spec: "Determining support"): answers 200 once the caller may use the registry.
        request.berth.operation = 'registry:Ping';
        if (request.berth.principal.kind !== 'iam') throw new RegistryError('Unauthorized', undefined, { message: 'Authentication is required: log in with `aws ecr get-login-password | docker login --username AWS --password-stdin HOST`.' });
        reply.header('content-type', 'application/json').send('{}');
        return;
      case 'catalog':
        if (m !== 'GET') throw unsupported(request);
        return handleCatalog(deps, route, request, reply);
      case 'events':
        if (m !== 'GET') throw unsupported(request);
        return handleEvents(deps, route, request, reply);
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
