import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { loadModel } from '../aws/model.ts';
import type { ServiceModel } from '../aws/model.ts';
import { ProtocolError, parseQueryRequest, queryErrorStatus, renderQueryError, renderQueryResponse } from '../aws/query.ts';
import { operationFromTarget, renderJsonError, renderJsonOutput, validateJsonInput } from '../aws/json.ts';
import { peekSigV4, sigV4ErrorFor, verifySigV4 } from '../aws/sigv4.ts';
import { catalogue, isRegistryError, RegistryError, type ErrorSpec } from '../errors/catalogue.ts';
import type { AuditLog } from '../audit/audit-log.ts';
import type { PullThroughCache } from '../cache/pull-through-cache.ts';
import type { IamAuthorizer } from '../iam/authorizer.ts';
import { denialMessage, NO_POLICIES } from '../iam/authorizer.ts';
import type { Identity } from '../iam/identity.ts';
import type { CompiledPolicy } from '../iam/policy/index.ts';
import type { Caller, IamPrincipal } from '../registry/access.ts';
import type { Registry } from '../registry/registry.ts';
import type { SecretsManager } from '../secrets/secrets-manager.ts';
import { AwsError } from './aws-error.ts';
import { ecrActions } from './ecr/index.ts';
import { iamActions } from './iam-actions.ts';
import { secretsManagerActions } from './secretsmanager-actions.ts';
import { checkCloudTrailInput, cloudTrailActions } from './cloudtrail-actions.ts';
import { stsActions } from './sts-actions.ts';

export interface ControlDeps {
  identity: Identity;
  authorizer: IamAuthorizer;
  registry: Registry;
  audit: AuditLog;
  region: string;
  authEnabled: boolean;
  /** Largest request body (PutImage carries a manifest). */
  maxBodyBytes: number;
  /** StartImageScan's quota (scan.manualScanQuotaSeconds) and how continuous results are reported (scan.continuousStatus). */
  scanning: { manualScanQuotaSeconds: number; continuousStatus: 'COMPLETE' | 'ACTIVE'; wake?: () => void };
  /** The regions replication rules may name besides this one: the peers of `replication.peers`. */
  replication: { peerRegions: readonly string[]; wake?: () => void };
  /** The Secrets Manager API (pull-through cache credentials). */
  secretsManager: SecretsManager;
  /** The pull-through cache (rules take effect through it); undefined when cache.pullThroughEnabled is off. */
  cache?: PullThroughCache | undefined;
}

/** What an action handler gets: the authenticated caller and a way to ask IAM about it. */
export interface ActionContext {
  deps: ControlDeps;
  principal: IamPrincipal;
  caller: Caller;
  requestId: string;
  /** The registry's URL as the caller reached it (GetAuthorizationToken's proxyEndpoint). */
  endpoint: string;
  /**
   * Resolves when the caller may do `action` on `resource`; throws AccessDenied otherwise.
   * For another account's resource pass its id and the resource's policies.
   */
  authorize(action: string, resource: string, options?: { resourceAccountId?: string; resourcePolicies?: CompiledPolicy[] }): Promise<void>;
}

export type ActionHandler = (ctx: ActionContext, input: Record<string, any>) => Promise<Record<string, unknown>>;

type Service = 'ecr' | 'iam' | 'sts' | 'secretsmanager' | 'cloudtrail';
/** The services that speak AWS JSON 1.1 (X-Amz-Target, JSON errors); the others speak AWS Query. */
const JSON_SERVICES: ReadonlySet<Service> = new Set(['ecr', 'secretsmanager', 'cloudtrail']);
const ECR_TARGET = 'AmazonEC2ContainerRegistry_V20150921.';
const SECRETSMANAGER_TARGET = 'secretsmanager.';
const CLOUDTRAIL_TARGET = 'com.amazonaws.cloudtrail.v20131101.CloudTrail_20131101.';
const STS_ACTIONS = new Set(['GetCallerIdentity', 'AssumeRole', 'GetSessionToken']);
/** UploadLayerPart carries up to 20 MiB (the model's LayerPartBlob) as base64 in its JSON body. */
const LAYER_PART_BODY_BYTES = Math.ceil((20 * 1024 * 1024) / 3) * 4 + 64 * 1024;

const models: Record<Service, () => ServiceModel> = {
  ecr: () => loadModel('ecr'),
  iam: () => loadModel('iam'),
  sts: () => loadModel('sts'),
  secretsmanager: () => loadModel('secretsmanager'),
  cloudtrail: () => loadModel('cloudtrail'),
};

const handlers: Record<Service, Record<string, ActionHandler>> = { ecr: ecrActions, iam: iamActions, sts: stsActions, secretsmanager: secretsManagerActions, cloudtrail: cloudTrailActions };

async function readBody(request: FastifyRequest, limit: number): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of request.raw as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > limit) throw new AwsError('SerializationException', `The request body is larger than ${limit} bytes.`, 413);
    chunks.push(chunk);
  }
  return Buffer.concat(chunks);
}

/** Which AWS API a request at `/` is for: the X-Amz-Target (ECR, Secrets Manager, CloudTrail), else the signature's scope or the Action. */
function serviceOf(request: FastifyRequest, params: URLSearchParams | undefined): Service | undefined {
  const target = request.headers['x-amz-target'];
  if (typeof target === 'string' && target.startsWith(ECR_TARGET)) return 'ecr';
  if (typeof target === 'string' && target.startsWith(SECRETSMANAGER_TARGET)) return 'secretsmanager';
  if (typeof target === 'string' && target.startsWith(CLOUDTRAIL_TARGET)) return 'cloudtrail';
  const scope = peekSigV4({ url: request.url, headers: request.headers });
  if (scope?.service === 'iam' || scope?.service === 'sts' || scope?.service === 'ecr' || scope?.service === 'secretsmanager' || scope?.service === 'cloudtrail') return scope.service;
  const action = params?.get('Action');
  if (action) return STS_ACTIONS.has(action) ? 'sts' : 'iam';
  return undefined;
}

function sendError(reply: FastifyReply, request: FastifyRequest, service: Service, code: string, message: string, status: number): void {
  request.berth.errorCode = code;
  if (JSON_SERVICES.has(service)) {
    const { body, headers } = renderJsonError(code, message);
    reply.code(status).headers(headers).send(body);
    return;
  }
  const model = models[service]();
  reply.code(status).header('content-type', 'text/xml').send(renderQueryError(model, code, message, request.id, status < 500));
}

/**
 * The AWS APIs at `/`: ECR, Secrets Manager and CloudTrail (AWS JSON 1.1, X-Amz-Target), IAM and STS
 * (AWS Query, form bodies).
 * Every request must be SigV4-signed; the action handlers then ask IAM about each resource.
 */
export function registerControlPlane(app: FastifyInstance, deps: ControlDeps): void {
  const handler = async (request: FastifyRequest, reply: FastifyReply) => {
    let service: Service = 'ecr';
    try {
      const isLayerPart = request.headers['x-amz-target'] === `${ECR_TARGET}UploadLayerPart`;
      const body = await readBody(request, isLayerPart ? Math.max(deps.maxBodyBytes, LAYER_PART_BODY_BYTES) : deps.maxBodyBytes);
      const contentType = String(request.headers['content-type'] ?? '');
      const query = request.url.includes('?') ? new URLSearchParams(request.url.slice(request.url.indexOf('?') + 1)) : undefined;
      const form = contentType.startsWith('application/x-www-form-urlencoded') ? new URLSearchParams(body.toString('utf8')) : undefined;
      const params = form ?? query;
      const found = serviceOf(request, params);
      if (!found) {
        // Not an AWS API request (e.g. a browser's GET /): answer like any unknown path.
        request.berth.plane = 'other';
        reply.code(404).header('content-type', 'application/json').send(JSON.stringify({ errors: [{ code: 'NOT_FOUND', message: '/ is not an endpoint of this registry; AWS API requests need X-Amz-Target (ECR, Secrets Manager) or an Action parameter (IAM, STS).' }] }));
        return reply;
      }
      service = found;
      request.berth.plane = service;
      const model = models[service]();

      // Authenticate: SigV4 only.
      let principal: IamPrincipal;
      if (deps.authEnabled) {
        const verified = await verifySigV4(
          { method: request.method, url: request.url, headers: request.headers, body },
          {
            services: [service],
            region: deps.region,
            lookup: async (accessKeyId, sessionToken) => deps.identity.lookupKey(accessKeyId, sessionToken, service),
          },
        );
        if (!verified.ok) {
          const { code, status } = sigV4ErrorFor(verified.failure, JSON_SERVICES.has(service) ? 'json' : 'query');
          recordRefusal(deps, request, service, code);
          throw new AwsError(code, verified.message, status);
        }
        principal = verified.identity as IamPrincipal;
      } else {
        const account = await deps.identity.defaultAccount();
        principal = { kind: 'iam', type: 'root', accountId: account, arn: `arn:aws:iam::${account}:root`, userId: account, name: 'root', accessKeyId: undefined };
      }
      request.berth.principal = principal;
      request.berth.account = principal.accountId;

      // Decode the operation and its input per the service model.
      let operation: string;
      let input: Record<string, unknown>;
      if (JSON_SERVICES.has(service)) {
        // The whole target is checked, API version included: ECR serves only its own prefix.
        const target = request.headers['x-amz-target'];
        operation = operationFromTarget(model, typeof target === 'string' ? target : undefined);
        let parsed: unknown;
        try {
          parsed = body.length === 0 ? {} : JSON.parse(body.toString('utf8'));
        } catch {
          throw new AwsError('SerializationException', 'The request body is not valid JSON.', 400);
        }
        if (!handlers[service][operation] && model.operations[operation]) {
          request.berth.operation = `${service}:${operation}`;
          throw new AwsError('UnsupportedOperationException', `${operation} is not supported by this registry yet.`, 400);
        }
        if (service === 'cloudtrail') checkCloudTrailInput(operation, parsed);
        input = validateJsonInput(model, operation, parsed);
      } else {
        if (!params) throw new AwsError('MissingAction', 'The request must contain the parameter Action.', 400);
        ({ operation, input } = parseQueryRequest(model, params));
      }
      request.berth.operation = `${service}:${operation}`;
      const action = handlers[service][operation];
      if (!action) throw new AwsError(JSON_SERVICES.has(service) ? 'UnknownOperationException' : 'InvalidAction', `The action ${operation} is not valid for this endpoint.`, 400);

      const caller: Caller = {
        principal,
        sourceIp: request.ip,
        secureTransport: request.protocol === 'https',
        requestId: request.id,
        userAgent: request.headers['user-agent'],
        plane: service,
      };
      const ctx: ActionContext = {
        deps,
        principal,
        caller,
        requestId: request.id,
        endpoint: `${request.protocol === 'https' ? 'https' : 'http'}://${request.host || 'localhost'}`,
        async authorize(iamAction, resource, options) {
          const decision = await deps.authorizer.decide({
            caller,
            action: iamAction,
            resource,
            resourceAccountId: options?.resourceAccountId ?? principal.accountId,
            resourcePolicies: options?.resourcePolicies ?? NO_POLICIES,
          });
          if (decision.effect === 'allow') return;
          const message = denialMessage(principal, iamAction, resource, decision);
          throw new AwsError(JSON_SERVICES.has(service) ? 'AccessDeniedException' : 'AccessDenied', message, JSON_SERVICES.has(service) ? 400 : 403);
        },
      };
      const output = await action(ctx, input);
      if (JSON_SERVICES.has(service)) {
        reply.header('content-type', 'application/x-amz-json-1.1').send(renderJsonOutput(model, operation, output));
      } else {
        reply.header('content-type', 'text/xml').send(renderQueryResponse(model, operation, output, request.id));
      }
    } catch (err) {
      if (err instanceof AwsError) {
        sendError(reply, request, service, err.code, err.message, err.status);
      } else if (err instanceof ProtocolError) {
        sendError(reply, request, service, err.code, err.message, err.status);
      } else if (isRegistryError(err)) {
        const [code, status] = registryErrorFor(err);
        sendError(reply, request, service, code, err.message, status);
      } else {
        request.log.error({ err }, 'unexpected error');
        const failure = service === 'ecr' ? 'ServerException' : service === 'secretsmanager' ? 'InternalServiceError' : service === 'cloudtrail' ? 'InternalFailure' : 'ServiceFailure';
        sendError(reply, request, service, failure, `An unexpected error occurred; it has been logged with request id ${request.id}.`, 500);
      }
    }
    return reply;
  };
  app.route({ method: ['POST', 'GET'], url: '/', handler });
}

/** Registry facts met on the control plane, spelt as the catalogue says ECR spells them. */
function registryErrorFor(err: RegistryError): [string, number] {
  const ecr = (catalogue[err.errorName] as ErrorSpec).ecr;
  return ecr ? [ecr.type, ecr.status] : ['InvalidParameterException', 400];
}

function recordRefusal(deps: ControlDeps, request: FastifyRequest, service: Service, code: string): void {
  deps.audit.record({
    atMs: Date.now(),
    requestId: request.id,
    plane: service,
    accountId: null,
    principal: null,
    accessKeyId: peekSigV4({ url: request.url, headers: request.headers })?.accessKeyId ?? null,
    action: typeof request.headers['x-amz-target'] === 'string' ? `${service}:${String(request.headers['x-amz-target']).split('.').pop()}` : `${service}:*`,
    resource: null,
    decision: 'unauthenticated',
    policy: null,
    sourceIp: request.ip,
    userAgent: request.headers['user-agent'] ?? null,
    errorCode: code,
  });
}

export { queryErrorStatus };
