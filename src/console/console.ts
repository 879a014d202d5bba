import { readFileSync } from 'node:fs';
import path from 'node:path';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { AuditLog } from '../audit/audit-log.ts';
import type { Identity } from '../iam/identity.ts';
import { ApiError, ConsoleApi } from './api.ts';
import { html } from './html.ts';
import { page, type Frame, type Notice } from './layout.ts';
import { accountRoutes } from './pages/account.ts';
import { auditRoutes } from './pages/audit.ts';
import { registryRoutes } from './pages/registry.ts';
import { repositoryRoutes } from './pages/repository.ts';
import { repositoriesRoutes } from './pages/repositories.ts';
import { signInRoutes } from './pages/signin.ts';
import { usageRoutes } from './pages/usage.ts';
import { isSecure, sameToken, Sessions, SignInLimiter, type Session } from './sessions.ts';

export interface ConsoleDeps {
  identity: Identity;
  audit: AuditLog;
  region: string;
  sessionSeconds: number;
  signInAttempts: number;
}

/** What a page handler gets. */
export interface PageContext {
  request: FastifyRequest;
  reply: FastifyReply;
  session: Session;
  api: ConsoleApi;
  frame: Frame;
  query: URLSearchParams;
  /** The form of a POST (CSRF already checked). */
  form: URLSearchParams;
}

/** What a page handler answers: a page, or a redirect (after a POST, to a GET). */
export type PageResult = { title: string; body: ReturnType<typeof html>; section: Frame['section']; notices?: Notice[]; status?: number; refreshSeconds?: number } | { redirect: string };

export type PageHandler = (ctx: PageContext) => Promise<PageResult>;

export interface Routes {
  get?: Record<string, PageHandler>;
  post?: Record<string, PageHandler>;
}

/** Content-Security-Policy: scripts and styles from this origin only (no inline ones), no framing, forms post only here. */
const CSP = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

const ASSETS: Record<string, string> = {
  'console.css': 'text/css; charset=utf-8',
  'console.js': 'text/javascript; charset=utf-8',
  'berth.svg': 'image/svg+xml',
};

const FORM_LIMIT = 512 * 1024;

async function readForm(request: FastifyRequest): Promise<URLSearchParams> {
  const type = String(request.headers['content-type'] ?? '');
  if (!type.startsWith('application/x-www-form-urlencoded')) return new URLSearchParams();
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of request.raw as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > FORM_LIMIT) throw new ApiError('FormTooLarge', `The form is larger than ${FORM_LIMIT / 1024} KiB.`, 413);
    chunks.push(chunk);
  }
  return new URLSearchParams(Buffer.concat(chunks).toString('utf8'));
}

/** Whether a POST came from a page of this origin (browsers send Origin on POSTs). */
function sameOrigin(request: FastifyRequest): boolean {
  const origin = request.headers['origin'];
  if (origin === undefined) return true;
  try {
    return new URL(origin).host === request.host;
  } catch {
    return false;
  }
}

/** A form of this session: sent from a page of this origin, with the session's CSRF token. */
function isOwnForm(request: FastifyRequest, form: URLSearchParams, session: Session): boolean {
  return sameOrigin(request) && sameToken(form.get('csrf') ?? undefined, session.csrf);
}

/** The query string of a request's URL. */
export function queryOf(request: FastifyRequest): URLSearchParams {
  const i = request.url.indexOf('?');
  return new URLSearchParams(i < 0 ? '' : request.url.slice(i + 1));
}

const frameOf = (session: Session): Frame => ({ accountId: session.row.accountId, userName: session.row.userName, csrf: session.csrf, section: 'repositories' });

function securityHeaders(reply: FastifyReply, request: FastifyRequest): void {
  reply.header('content-security-policy', CSP);
  reply.header('x-content-type-options', 'nosniff');
  reply.header('x-frame-options', 'DENY');
  // Not no-referrer: under it a browser sends `Origin: null` with every POST (Fetch, "append a
  // request Origin header"), which sameOrigin() must refuse. same-origin sends no referrer elsewhere.
  reply.header('referrer-policy', 'same-origin');
  reply.header('cross-origin-opener-policy', 'same-origin');
  if (isSecure(request)) reply.header('strict-transport-security', 'max-age=31536000');
}

export function sendPage(reply: FastifyReply, status: number, text: string): FastifyReply {
  return reply.code(status).header('content-type', 'text/html; charset=utf-8').header('cache-control', 'no-store').send(text);
}

/**
 * The web console at /console/ (docs/console.md): server-rendered pages over Berth's public APIs,
 * called with the signed-in user's session credentials.
 */
export function registerConsole(app: FastifyInstance, deps: ConsoleDeps): void {
  const sessions = new Sessions(deps.identity, deps.sessionSeconds);
  const limiter = new SignInLimiter(deps.signInAttempts);
  const assetsDir = path.join(import.meta.dirname, 'assets');
  const assets = new Map(Object.keys(ASSETS).map((name) => [name, readFileSync(path.join(assetsDir, name))]));

  app.addHook('onRequest', async (request, reply) => {
    if (request.url === '/console' || request.url.startsWith('/console/')) {
      request.berth.plane = 'console';
      securityHeaders(reply, request);
    }
  });

  app.get('/console', async (_request, reply) => reply.redirect('/console/', 302));
  app.get('/console/assets/:name', async (request, reply) => {
    const name = (request.params as { name: string }).name;
    const body = assets.get(name);
    if (!body) return sendPage(reply, 404, page('Not found', html`<h1>Not found</h1>`));
    return reply.header('content-type', ASSETS[name]!).header('cache-control', 'public, max-age=86400').send(body);
  });

  const apiFor = (request: FastifyRequest, session: Session) =>
    new ConsoleApi({ app, credentials: sessions.credentials(session), region: deps.region, host: request.host || 'localhost', clientIp: request.ip });

  const answer = (reply: FastifyReply, result: PageResult, frame: Frame): FastifyReply => {
    if ('redirect' in result) return reply.redirect(result.redirect, 303);
    if (result.refreshSeconds !== undefined) reply.header('refresh', String(result.refreshSeconds));
    return sendPage(reply, result.status ?? 200, page(result.title, result.body, { ...frame, section: result.section }, result.notices));
  };

  const run = (handler: PageHandler, method: 'GET' | 'POST') => async (request: FastifyRequest, reply: FastifyReply) => {
    const session = await sessions.find(request);
    if (!session) {
      if (method === 'GET') return reply.redirect(`/console/signin?next=${encodeURIComponent(request.url)}`, 303);
      return sendPage(reply, 403, page('Signed out', html`<h1>Your session has ended</h1><p><a href="/console/signin">Sign in again</a> and repeat what you were doing.</p>`));
    }
    const frame = frameOf(session);
    const query = queryOf(request);
    let form = new URLSearchParams();
    if (method === 'POST') {
      try {
        form = await readForm(request);
      } catch (err) {
        return sendPage(reply, 413, page('Too large', html`<h1>The form is too large</h1><p>${(err as Error).message}</p>`, frame));
      }
      if (!isOwnForm(request, form, session)) {
        request.berth.errorCode = 'CSRF';
        return sendPage(reply, 403, page('Refused', html`<h1>This form was refused</h1><p>It did not come from a page of this console session (its security token is missing or stale). Go back, reload the page and try again.</p>`, frame));
      }
    }
    if (session.mustChangePassword && !request.url.startsWith('/console/account/password')) return reply.redirect('/console/account/password', 303);
    const ctx: PageContext = { request, reply, session, api: apiFor(request, session), frame, query, form };
    try {
      return answer(reply, await handler(ctx), frame);
    } catch (err) {
      if (err instanceof ApiError) {
        const status = err.denied ? 403 : err.status >= 500 ? 502 : err.status === 400 && /NotFound/.test(err.code) ? 404 : 400;
        const title = err.denied ? 'Not allowed' : /NotFound/.test(err.code) ? 'Not found' : 'Something went wrong';
        return sendPage(reply, status, page(title, html`<h1>${title}</h1><p class="notice ${err.denied ? 'denied' : 'error'}">${err.message}</p><p><a href="/console/repositories">Back to repositories</a></p>`, frame));
      }
      request.log.error({ err }, 'console page failed');
      return sendPage(reply, 500, page('Error', html`<h1>Something went wrong</h1><p>The page could not be built; the error has been logged with request id ${request.id}.</p>`, frame));
    }
  };

  const mount = (routes: Routes) => {
    for (const [url, handler] of Object.entries(routes.get ?? {})) app.get(url, run(handler, 'GET'));
    for (const [url, handler] of Object.entries(routes.post ?? {})) app.post(url, run(handler, 'POST'));
  };

  signInRoutes(app, { sessions, limiter, identity: deps.identity, audit: deps.audit, readForm });
  app.get('/console/', async (request, reply) => reply.redirect((await sessions.find(request)) ? '/console/repositories' : '/console/signin', 303));
  app.post('/console/signout', async (request, reply) => {
    const session = await sessions.find(request);
    const form = await readForm(request).catch(() => new URLSearchParams());
    if (session && isOwnForm(request, form, session)) await sessions.end(reply, request, session);
    return reply.redirect('/console/signin?signedOut=1', 303);
  });
  mount(accountRoutes(sessions));
  mount(repositoriesRoutes());
  mount(repositoryRoutes());
  mount(registryRoutes());
  mount(usageRoutes());
  mount(auditRoutes());
  // Any other console path: a page saying so, in the console's frame when signed in.
  const notFound = async (request: FastifyRequest, reply: FastifyReply) => {
    const session = await sessions.find(request);
    return sendPage(reply, 404, page('Not found', html`<h1>Not found</h1><p>There is no such page in the console. <a href="/console/repositories">Go to the repositories</a>.</p>`, session && frameOf(session)));
  };
  app.get('/console/*', notFound);
  app.post('/console/*', notFound);
}

/** A browser's GET / (it asks for HTML) goes to the console. */
export function wantsConsole(request: FastifyRequest): boolean {
  return request.method === 'GET' && /text\/html/.test(String(request.headers['accept'] ?? ''));
}
