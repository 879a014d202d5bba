import { randomBytes } from 'node:crypto';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { AuditLog } from '../../audit/audit-log.ts';
import type { Identity } from '../../iam/identity.ts';
import { userArn } from '../../iam/identity.ts';
import { queryOf, sendPage } from '../console.ts';
import { html } from '../html.ts';
import { page, type Notice } from '../layout.ts';
import { cookie, isSecure, parseCookies, sameToken, SIGNIN_COOKIE, type Sessions, type SignInLimiter } from '../sessions.ts';

interface SignInDeps {
  sessions: Sessions;
  limiter: SignInLimiter;
  identity: Identity;
  audit: AuditLog;
  readForm(request: FastifyRequest): Promise<URLSearchParams>;
}

/**
 * Only a console path may be the target after signing in (no open redirect), in printable ASCII
 * as request URLs are (a CR or LF would make the Location header invalid: a 500, not a redirect).
 */
function safeNext(next: string | null): string {
  return next && /^\/console\/[^/\\]/.test(next) && /^[\x21-\x7e]+$/.test(next) && !next.startsWith('/console/signin') ? next : '/console/repositories';
}

function form(token: string, values: { account: string; user: string; next: string }, notices: Notice[]): string {
  return page(
    'Sign in',
    html`<section class="signin">
<h1>Sign in to Berth</h1>
<form method="post" action="/console/signin" class="stack">
  <input type="hidden" name="token" value="${token}">
  <input type="hidden" name="next" value="${values.next}">
  <label for="account">Account ID or alias</label>
  <input id="account" name="account" required autocomplete="organization" value="${values.account}" inputmode="text">
  <label for="user">IAM user name</label>
  <input id="user" name="user" required autocomplete="username" value="${values.user}">
  <label for="password">Password</label>
  <input id="password" name="password" type="password" required autocomplete="current-password">
  <button type="submit" class="primary">Sign in</button>
</form>
<p class="hint">Passwords are set with <code>aws iam create-login-profile</code>, or for the first administrator with <code>npm run berth -- user password --user admin</code> (docs/console.md).</p>
</section>`,
    undefined,
    notices,
  );
}

export function signInRoutes(app: FastifyInstance, deps: SignInDeps): void {
  const token = (request: FastifyRequest) => parseCookies(request.headers.cookie).get(SIGNIN_COOKIE);

  const show = async (request: FastifyRequest, reply: import('fastify').FastifyReply, status: number, values: { account?: string; user?: string; next: string }, notices: Notice[]) => {
    let t = token(request);
    if (!t || !/^[A-Za-z0-9_-]{32}$/.test(t)) {
      t = randomBytes(24).toString('base64url');
      reply.header('set-cookie', cookie(SIGNIN_COOKIE, t, { maxAgeSeconds: 3600, secure: isSecure(request) }));
    }
    const account = values.account ?? (await deps.identity.defaultAccount());
    return sendPage(reply, status, form(t, { account, user: values.user ?? '', next: values.next }, notices));
  };

  app.get('/console/signin', async (request, reply) => {
    const query = queryOf(request);
    if (await deps.sessions.find(request)) return reply.redirect(safeNext(query.get('next')), 303);
    const notices: Notice[] = query.get('signedOut') ? [{ kind: 'info', text: 'You have signed out.' }] : [];
    return show(request, reply, 200, { next: safeNext(query.get('next')) }, notices);
  });

  app.post('/console/signin', async (request, reply) => {
    const form = await deps.readForm(request).catch(() => new URLSearchParams());
    const account = (form.get('account') ?? '').trim();
    const user = (form.get('user') ?? '').trim();
    const password = form.get('password') ?? '';
    const next = safeNext(form.get('next'));
    const t = token(request);
    if (!t || !sameToken(form.get('token') ?? undefined, t)) {
      return show(request, reply, 403, { account, user, next }, [{ kind: 'error', text: 'The sign-in form had expired. Please sign in again.' }]);
    }
    if (!account || !user || !password) {
      return show(request, reply, 400, { account, user, next }, [{ kind: 'error', text: 'Enter the account, the user name and the password.' }]);
    }
    const keys = [`user:${account.toLowerCase()}/${user.toLowerCase()}`, `ip:${request.ip}`];
    const record = (decision: string, accountId: string | null, principal: string | null, errorCode: string | null) =>
      deps.audit.record({
        atMs: Date.now(),
        requestId: request.id,
        plane: 'console',
        accountId,
        principal,
        accessKeyId: null,
        action: 'signin:ConsoleLogin',
        resource: principal,
        decision,
        policy: null,
        sourceIp: request.ip,
        userAgent: request.headers['user-agent'] ?? null,
        errorCode,
      });
    const wait = deps.limiter.retryAfterMs(keys);
    if (wait > 0) {
      record('deny', /^\d{12}$/.test(account) ? account : null, null, 'TooManyAttempts');
      const minutes = Math.max(1, Math.ceil(wait / 60_000));
      reply.header('retry-after', String(Math.ceil(wait / 1000)));
      return show(request, reply, 429, { account, user, next }, [{ kind: 'error', text: `Too many failed sign-ins. Try again in ${minutes} minute${minutes === 1 ? '' : 's'}.` }]);
    }
    const result = await deps.identity.signInWithPassword(account, user, password);
    if (!result.ok) {
      deps.limiter.failed(keys);
      record('deny', /^\d{12}$/.test(account) ? account : null, null, result.reason);
      // One message whatever failed, so that the form does not tell which users exist.
      return show(request, reply, 401, { account, user, next }, [{ kind: 'error', text: 'The account, user name or password is not correct.' }]);
    }
    deps.limiter.succeeded(keys[0]!);
    record('allow', result.accountId, userArn(result.user), null);
    await deps.sessions.start(reply, request, result.user, result.passwordResetRequired || result.passwordExpired);
    return reply.redirect(result.passwordResetRequired || result.passwordExpired ? '/console/account/password' : next, 303);
  });
}
