import type { FastifyInstance, FastifyRequest } from 'fastify';
import { RegistryError } from '../errors/catalogue.ts';
import type { Identity } from '../iam/identity.ts';
import { denialMessage, NO_POLICIES, type IamAuthorizer } from '../iam/authorizer.ts';
import { anonymous, type IamPrincipal, type Principal } from '../registry/access.ts';
import type { OciRoute } from './paths.ts';

/**
 * Data-plane authentication. Accepted on every request, whatever the challenge says:
 * - `Basic AWS:<token>`: the password `aws ecr get-login-password` prints (ECR's scheme);
 * - `Basic <access key id>:<secret>`: an access key used directly, as a robot account;
 * - `Bearer <token>`: a token from the token endpoint (the Docker token flow) or GetAuthorizationToken.
 * No credentials means anonymous, which every operation refuses with a 401 and a challenge.
 */
export async function authenticate(identity: Identity, authorization: string | undefined): Promise<Principal> {
  if (!authorization) return anonymous;
  const space = authorization.indexOf(' ');
  const scheme = authorization.slice(0, space).toLowerCase();
  const value = authorization.slice(space + 1).trim();
  if (scheme === 'basic') {
    const decoded = Buffer.from(value, 'base64').toString('utf8');
    const colon = decoded.indexOf(':');
    if (colon <= 0) throw unauthorized('The Basic credentials are malformed; expected base64 of USER:PASSWORD.');
    const user = decoded.slice(0, colon);
    const password = decoded.slice(colon + 1);
    if (user === 'AWS') return checkToken(identity, password);
    const principal = await identity.checkKeyPassword(user, password);
    if (!principal) throw unauthorized('The user name and password are not valid: use AWS and a token from `aws ecr get-login-password`, or an active access key id and its secret.');
    return principal;
  }
  if (scheme === 'bearer') return checkToken(identity, value);
  throw unauthorized(`The ${scheme || 'given'} authorization scheme is not supported; use Basic or Bearer.`);
}

async function checkToken(identity: Identity, token: string): Promise<IamPrincipal> {
  const result = await identity.checkToken(token);
  if (result.ok) return result.principal;
  if (result.reason === 'expired') throw unauthorized('The authorization token has expired; log in again (e.g. `aws ecr get-login-password | docker login ...`).');
  if (result.reason === 'revoked') throw unauthorized('The authorization token is no longer valid: the user, role or access key it was issued to was deleted or deactivated.');
  throw unauthorized('The authorization token is not valid.');
}

function unauthorized(message: string): RegistryError {
  return new RegistryError('Unauthorized', undefined, { message });
}

/** The host the client used (X-Forwarded-Host only from a trusted proxy: server.trustProxy). */
function hostOf(request: FastifyRequest): string {
  return request.host || 'localhost';
}

function scheme(request: FastifyRequest): string {
  return request.protocol === 'https' ? 'https' : 'http';
}

/** The 401 challenge for a data-plane request. */
export function challenge(kind: 'basic' | 'bearer', request: FastifyRequest, route: OciRoute | undefined): string {
  const base = `${scheme(request)}://${hostOf(request)}`;
  if (kind === 'basic') return `Basic realm="${base}/",service="berth"`;
  let scope = '';
  if (route && 'name' in route) {
    const write = request.method !== 'GET' && request.method !== 'HEAD';
    scope = `,scope="repository:${route.name}:${write ? (request.method === 'DELETE' ? 'delete' : 'pull,push') : 'pull'}"`;
  } else if (route?.kind === 'catalog') {
    scope = ',scope="registry:catalog:*"';
  }
  return `Bearer realm="${base}/token",service="berth"${scope}`;
}

/**
 * The Docker token endpoint (`GET /token?service=...&scope=...`): exchanges Basic credentials
 * for a bearer token. The token carries the caller's identity, not the scope: what it may do is
 * decided by policy on every request, so a policy change applies to tokens already issued.
 */
export function registerTokenEndpoint(app: FastifyInstance, identity: Identity, authorizer: IamAuthorizer | undefined): void {
  app.get('/token', async (request, reply) => {
    request.berth.plane = 'oci';
    request.berth.operation = 'ecr:GetAuthorizationToken';
    const principal = await authenticate(identity, request.headers.authorization);
    if (principal.kind !== 'iam') {
      reply.header('www-authenticate', `Basic realm="${scheme(request)}://${hostOf(request)}/token",service="berth"`);
      throw unauthorized('The token endpoint needs Basic credentials: AWS and a token from `aws ecr get-login-password`, or an access key id and its secret.');
    }
    request.berth.principal = principal;
    // As GetAuthorizationToken: the caller needs ecr:GetAuthorizationToken (audited like any decision).
    if (authorizer) {
      const caller = { principal, sourceIp: request.ip, secureTransport: request.protocol === 'https', requestId: request.id, userAgent: request.headers['user-agent'], plane: 'oci' };
      const decision = await authorizer.decide({ caller, action: 'ecr:GetAuthorizationToken', resource: '*', resourceAccountId: principal.accountId, resourcePolicies: NO_POLICIES });
      if (decision.effect !== 'allow') {
        throw new RegistryError('Denied', { action: 'ecr:GetAuthorizationToken' }, { message: denialMessage(principal, 'ecr:GetAuthorizationToken', '*', decision) });
      }
    }
    const { token, expiresAt } = identity.issueToken(principal);
    const now = new Date();
    return reply.header('content-type', 'application/json').header('cache-control', 'no-store').send(
      JSON.stringify({ token, access_token: token, expires_in: Math.max(1, Math.floor((expiresAt.getTime() - now.getTime()) / 1000)), issued_at: now.toISOString() }),
    );
  });
}

/**
 * The account a data-plane request addresses: `ACCOUNT.HOST` (as ECR's ACCOUNT.dkr.ecr.REGION.amazonaws.com)
 * when the first label of the host name is a 12-digit id, else the default account. An id no
 * account has simply holds no repositories.
 */
export async function accountOfHost(identity: Identity, host: string | undefined): Promise<string> {
  const label = /^(\d{12})\./.exec(host ?? '')?.[1];
  return label ?? identity.defaultAccount();
}
