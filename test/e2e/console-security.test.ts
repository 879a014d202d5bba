import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import http, { type IncomingHttpHeaders } from 'node:http';
import https from 'node:https';
import { after, before, test } from 'node:test';
import { CreateRepositoryCommand, DescribeRepositoriesCommand } from '@aws-sdk/client-ecr';
import { AttachUserPolicyCommand, CreateLoginProfileCommand, CreateUserCommand } from '@aws-sdk/client-iam';
import { ADMIN } from '../support/auth.ts';
import { awsOk, ecrClient, iamClient, requireAwsCli, sdkError } from '../support/aws.ts';
import { buildImage, pushImage, waitFor } from '../support/oci.ts';
import { startServer, type TestServer } from '../support/server.ts';
import { makeTestPki } from '../support/tls.ts';

/**
 * The web console's defences, over plain HTTP (no browser needed to see them): the
 * Content-Security-Policy and other headers of every page, CSRF refusals, cookie flags, sign-out,
 * the failed-sign-in limit and its audit records, the console switched off, secrets kept out of
 * URLs and logs, and the sign-in's `next=` kept on the console (docs/console.md).
 */

const ACCOUNT = ADMIN.accountId;
const ADMIN_POLICY = 'arn:aws:iam::aws:policy/AdministratorAccess';
const READ_ONLY = 'arn:aws:iam::aws:policy/AmazonEC2ContainerRegistryReadOnly';
const PASSWORDS = { alice: `Alice-${randomBytes(6).toString('hex')}-pw1!`, bob: `Bob-${randomBytes(6).toString('hex')}-pw2!` };

// --- a plain HTTP(S) client that keeps cookies, as a browser would for /console ------------------

interface Answer {
  status: number;
  headers: IncomingHttpHeaders;
  text: string;
  location: string | undefined;
  setCookies: string[];
}

interface CallOptions {
  method?: string;
  headers?: Record<string, string>;
  form?: Record<string, string>;
  /** A CA to trust (HTTPS to the test PKI's certificate). */
  ca?: string;
}

function call(url: string, options: CallOptions = {}): Promise<Answer> {
  const body = options.form === undefined ? undefined : new URLSearchParams(options.form).toString();
  const headers: Record<string, string> = { ...(body !== undefined ? { 'content-type': 'application/x-www-form-urlencoded', 'content-length': String(Buffer.byteLength(body)) } : {}), ...options.headers };
  const target = new URL(url);
  const send = target.protocol === 'https:' ? https.request : http.request;
  return new Promise((resolve, reject) => {
    const req = send(target, { method: options.method ?? (body === undefined ? 'GET' : 'POST'), headers, ...(options.ca ? { ca: options.ca } : {}) }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () =>
        resolve({
          status: res.statusCode ?? 0,
          headers: res.headers,
          text: Buffer.concat(chunks).toString('utf8'),
          location: res.headers.location,
          setCookies: res.headers['set-cookie'] ?? [],
        }),
      );
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(body);
  });
}

/** One visitor: a cookie jar for /console, and the requests made (to look for secrets in URLs). */
class Visitor {
  readonly jar = new Map<string, string>();
  readonly urls: string[] = [];
  readonly answers: Answer[] = [];
  readonly baseUrl: string;
  readonly ca: string | undefined;
  constructor(baseUrl: string, ca?: string) {
    this.baseUrl = baseUrl;
    this.ca = ca;
  }

  async send(path: string, options: CallOptions = {}): Promise<Answer> {
    const url = new URL(path, this.baseUrl).toString();
    this.urls.push(url);
    const cookie = [...this.jar].map(([k, v]) => `${k}=${v}`).join('; ');
    const answer = await call(url, { ...options, ...(this.ca ? { ca: this.ca } : {}), headers: { accept: 'text/html', ...(cookie ? { cookie } : {}), ...options.headers } });
    for (const line of answer.setCookies) {
      const [pair] = line.split(';');
      const name = pair!.slice(0, pair!.indexOf('='));
      const value = pair!.slice(pair!.indexOf('=') + 1);
      if (/max-age=0/i.test(line) || value === '') this.jar.delete(name);
      else this.jar.set(name, value);
    }
    if (answer.location) this.urls.push(new URL(answer.location, url).toString());
    this.answers.push(answer);
    return answer;
  }

  get(path: string, headers: Record<string, string> = {}): Promise<Answer> {
    return this.send(path, { headers });
  }

  post(path: string, form: Record<string, string>, headers: Record<string, string> = {}): Promise<Answer> {
    return this.send(path, { form, headers });
  }

  /** Opens the sign-in form (for its token) and posts it. */
  async signIn(userName: string, password: string, options: { account?: string; next?: string } = {}): Promise<Answer> {
    const form = await this.get(`/console/signin${options.next !== undefined ? `?next=${encodeURIComponent(options.next)}` : ''}`);
    assert.equal(form.status, 200, form.text);
    return this.post('/console/signin', { token: hidden(form.text, 'token'), next: hidden(form.text, 'next'), account: options.account ?? ACCOUNT, user: userName, password });
  }

  get session(): string | undefined {
    return this.jar.get('berth_session');
  }
}

/** The value of a hidden field of the page. */
function hidden(text: string, name: string): string {
  const m = new RegExp(`<input type="hidden" name="${name}" value="([^"]*)">`).exec(text);
  assert.ok(m, `a hidden ${name} field in:\n${text}`);
  return m[1]!.replace(/&amp;/g, '&').replace(/&quot;/g, '"').replace(/&#39;/g, "'").replace(/&lt;/g, '<').replace(/&gt;/g, '>');
}

const csrfOf = (text: string) => hidden(text, 'csrf');

/** Signs in and checks that it worked; resolves the session's CSRF token (from the next page). */
async function signedIn(v: Visitor, userName: string, password: string): Promise<string> {
  const res = await v.signIn(userName, password, { next: '/console/account' });
  assert.equal(res.status, 303, `sign-in of ${userName}: ${res.text}`);
  assert.equal(res.location, '/console/account');
  assert.ok(v.session, 'a session cookie');
  const page = await v.get('/console/account');
  assert.equal(page.status, 200, page.text);
  return csrfOf(page.text);
}

// --- servers ------------------------------------------------------------------------------------

let server: TestServer;
let repository: string;
let imageDigest: string;

async function consoleUser(target: TestServer, name: string, password: string, policy: string): Promise<void> {
  const iam = iamClient(target, ADMIN);
  await iam.send(new CreateUserCommand({ UserName: name }));
  await iam.send(new AttachUserPolicyCommand({ UserName: name, PolicyArn: policy }));
  await iam.send(new CreateLoginProfileCommand({ UserName: name, Password: password, PasswordResetRequired: false }));
}

before(async () => {
  requireAwsCli();
  // debug: the most the server ever logs, to look for secrets in.
  server = await startServer({ env: { BERTH_LOG_LEVEL: 'debug' } });
  await consoleUser(server, 'alice', PASSWORDS.alice, ADMIN_POLICY);
  await consoleUser(server, 'bob', PASSWORDS.bob, READ_ONLY);
  repository = `sec-${randomBytes(4).toString('hex')}/app`;
  await ecrClient(server, ADMIN).send(new CreateRepositoryCommand({ repositoryName: repository }));
  imageDigest = await pushImage(server.baseUrl, repository, buildImage(), 'v1');
});
after(async () => {
  await server?.close();
});

// --- headers ------------------------------------------------------------------------------------

function directives(csp: string): Map<string, string[]> {
  return new Map(csp.split(';').map((d) => d.trim().split(/\s+/)).filter((d) => d[0]).map(([name, ...values]) => [name!, values]));
}

/** The headers every console answer carries, whatever its status. */
function assertSecurityHeaders(what: string, res: Answer, options: { tls?: boolean } = {}): void {
  const csp = directives(String(res.headers['content-security-policy'] ?? ''));
  assert.deepEqual(csp.get('default-src'), ["'none'"], `${what}: default-src`);
  assert.deepEqual(csp.get('script-src'), ["'self'"], `${what}: script-src, no inline or eval`);
  assert.deepEqual(csp.get('style-src'), ["'self'"], `${what}: style-src, no inline`);
  assert.deepEqual(csp.get('frame-ancestors'), ["'none'"], `${what}: frame-ancestors`);
  assert.deepEqual(csp.get('form-action'), ["'self'"], `${what}: form-action`);
  assert.deepEqual(csp.get('base-uri'), ["'none'"], `${what}: base-uri`);
  assert.equal(res.headers['x-content-type-options'], 'nosniff', `${what}: nosniff`);
  assert.equal(res.headers['x-frame-options'], 'DENY', `${what}: x-frame-options`);
  // No referrer to other sites; not no-referrer, under which browsers send `Origin: null` with every form POST.
  assert.equal(res.headers['referrer-policy'], 'same-origin', `${what}: referrer-policy`);
  assert.equal(res.headers['cross-origin-opener-policy'], 'same-origin', `${what}: COOP`);
  if (options.tls) assert.match(String(res.headers['strict-transport-security']), /^max-age=\d{7,}/, `${what}: HSTS under TLS`);
  else assert.equal(res.headers['strict-transport-security'], undefined, `${what}: no HSTS over plain HTTP`);
}

/** An HTML page: never cached, and nothing inline that the CSP would have to allow. */
function assertHtmlPage(what: string, res: Answer): void {
  assert.equal(res.headers['content-type'], 'text/html; charset=utf-8', `${what}: content-type`);
  assert.equal(res.headers['cache-control'], 'no-store', `${what}: cache-control`);
  assert.match(res.text, /^<!doctype html>/, `${what}: a page`);
  assert.doesNotMatch(res.text, /<script(?![^>]*\ssrc=)[^>]*>/i, `${what}: no inline script`);
  assert.doesNotMatch(res.text, /<style[\s>]/i, `${what}: no style element`);
  assert.doesNotMatch(res.text, /\sstyle=/i, `${what}: no style attribute`);
  assert.doesNotMatch(res.text, /\son[a-z]+=/i, `${what}: no event handler attribute`);
  assert.doesNotMatch(res.text, /href="javascript:/i, `${what}: no javascript: link`);
}

test('every console page carries the Content-Security-Policy and the other security headers, and has nothing inline', async () => {
  const anonymous = new Visitor(server.baseUrl);
  const signin = await anonymous.get('/console/signin');
  assert.equal(signin.status, 200);
  assertSecurityHeaders('sign-in page', signin);
  assertHtmlPage('sign-in page', signin);
  for (const path of ['/console', '/console/', '/console/repositories', `/console/repos/${repository}/-/settings`]) {
    const res = await anonymous.get(path);
    assert.ok([302, 303].includes(res.status), `${path} signed out: ${res.status}`);
    assertSecurityHeaders(`${path} signed out`, res);
  }

  const alice = new Visitor(server.baseUrl);
  await signedIn(alice, 'alice', PASSWORDS.alice);
  const image = `/console/repos/${repository}/-/image/${encodeURIComponent(imageDigest)}`;
  const pages = [
    '/console/repositories',
    '/console/repositories?q=sec-&sort=createdAt&order=DESC',
    '/console/repositories/new',
    `/console/repos/${repository}`,
    `/console/repos/${repository}?tagStatus=UNTAGGED`,
    `/console/repos/${repository}/-/settings`,
    `/console/repos/${repository}/-/lifecycle`,
    `/console/repos/${repository}/-/push-commands`,
    image,
    ...['overview', 'layers', 'findings', 'manifest', 'config'].map((tab) => `${image}?tab=${tab}`),
    ...['scanning', 'replication', 'cache', 'templates', 'policy', 'events'].map((tab) => `/console/registry?tab=${tab}`),
    '/console/usage',
    '/console/audit',
    '/console/account',
    '/console/account/password',
  ];
  for (const path of pages) {
    const res = await alice.get(path);
    assert.equal(res.status, 200, `${path}: ${res.text.slice(0, 2000)}`);
    assertSecurityHeaders(path, res);
    assertHtmlPage(path, res);
  }
  // Pages that refuse or find nothing are console pages too.
  for (const [path, status] of [[`/console/repos/${repository}/-/no-such-page`, 404], ['/console/repos/no-such-repository-here', 404]] as const) {
    const res = await alice.get(path);
    assert.equal(res.status, status, `${path}: ${res.text.slice(0, 1000)}`);
    assertSecurityHeaders(path, res);
    assertHtmlPage(path, res);
  }
  const refused = await alice.post('/console/repositories', { name: 'x' });
  assert.equal(refused.status, 403);
  assertSecurityHeaders('a refused form', refused);
  assertHtmlPage('a refused form', refused);

  // The assets the CSP allows, served as what they are.
  for (const [name, type] of [['console.js', 'text/javascript; charset=utf-8'], ['console.css', 'text/css; charset=utf-8'], ['berth.svg', 'image/svg+xml']] as const) {
    const res = await anonymous.get(`/console/assets/${name}?v=1`);
    assert.equal(res.status, 200, name);
    assert.equal(res.headers['content-type'], type, name);
    assertSecurityHeaders(name, res);
  }
  const missing = await anonymous.get('/console/assets/..%2Fconsole.ts');
  assert.equal(missing.status, 404);
  assert.doesNotMatch(missing.text, /registerConsole/, 'no source file served');
});

// --- CSRF -----------------------------------------------------------------------------------------

test('a POST without the session’s CSRF token, with a wrong or another session’s token, or from another origin is refused and changes nothing', async () => {
  const alice = new Visitor(server.baseUrl);
  const token = await signedIn(alice, 'alice', PASSWORDS.alice);
  const bob = new Visitor(server.baseUrl);
  const bobToken = await signedIn(bob, 'bob', PASSWORDS.bob);
  assert.notEqual(token, bobToken, 'each session has its own token');
  const ecr = ecrClient(server, ADMIN);
  const name = `csrf-${randomBytes(4).toString('hex')}`;
  const attempts: Array<[string, Record<string, string>, Record<string, string>]> = [
    ['no token', { name }, {}],
    ['an empty token', { name, csrf: '' }, {}],
    ['a wrong token', { name, csrf: token.slice(0, -2) + (token.endsWith('AA') ? 'BB' : 'AA') }, {}],
    ['a token of another length', { name, csrf: `${token}x` }, {}],
    ['another session’s token', { name, csrf: bobToken }, {}],
    ['the right token from another origin', { name, csrf: token }, { origin: 'http://evil.example' }],
    ['the right token from an opaque origin', { name, csrf: token }, { origin: 'null' }],
    ['the right token from the same host on another port', { name, csrf: token }, { origin: `http://127.0.0.1:${server.port + 1}` }],
  ];
  for (const [what, form, headers] of attempts) {
    const res = await alice.post('/console/repositories', form, headers);
    assert.equal(res.status, 403, `${what}: ${res.status}`);
    assert.match(res.text, /This form was refused/, what);
  }
  // Not a form at all: no token can be read from it.
  const json = await alice.send('/console/repositories', { method: 'POST', headers: { 'content-type': 'application/json' } });
  assert.equal(json.status, 403);
  assert.equal((await sdkError(ecr.send(new DescribeRepositoriesCommand({ repositoryNames: [name] })))).name, 'RepositoryNotFoundException', 'nothing was created');

  // Signing out needs the token too: without it the session lives on.
  const out = await alice.post('/console/signout', { csrf: bobToken });
  assert.equal(out.status, 303);
  assert.equal((await alice.get('/console/account')).status, 200, 'a forged sign-out ends nothing');

  // The control: the same form with the session's token, from this origin, works.
  const ok = await alice.post('/console/repositories', { name, csrf: token, mutability: 'MUTABLE' }, { origin: server.baseUrl });
  assert.equal(ok.status, 303, ok.text);
  assert.equal(ok.location, `/console/repos/${name}?created=1`);
  const described = await ecr.send(new DescribeRepositoriesCommand({ repositoryNames: [name] }));
  assert.equal(described.repositories?.[0]?.repositoryName, name);

  // The sign-in form has its own token (a cookie and a field that must match): a login CSRF fails.
  const stranger = new Visitor(server.baseUrl);
  const forged = await stranger.post('/console/signin', { token: 'A'.repeat(32), next: '/console/repositories', account: ACCOUNT, user: 'alice', password: PASSWORDS.alice });
  assert.equal(forged.status, 403);
  assert.equal(stranger.session, undefined, 'no session from a forged sign-in');
});

// --- cookies ------------------------------------------------------------------------------------

function cookieAttributes(line: string): { name: string; value: string; attrs: Map<string, string> } {
  const [pair, ...rest] = line.split(';').map((s) => s.trim());
  const attrs = new Map(rest.map((a) => [a.split('=')[0]!.toLowerCase(), a.includes('=') ? a.slice(a.indexOf('=') + 1) : '']));
  return { name: pair!.slice(0, pair!.indexOf('=')), value: pair!.slice(pair!.indexOf('=') + 1), attrs };
}

function assertCookieFlags(line: string | undefined, name: string, secure: boolean): void {
  assert.ok(line, `a ${name} cookie`);
  const c = cookieAttributes(line);
  assert.equal(c.name, name);
  assert.ok(c.attrs.has('httponly'), `${name} is HttpOnly: ${line}`);
  assert.equal(c.attrs.get('samesite'), 'Strict', `${name} is SameSite=Strict: ${line}`);
  assert.equal(c.attrs.get('path'), '/console', `${name} is scoped to /console: ${line}`);
  assert.ok(!c.attrs.has('domain'), `${name} is host-only: ${line}`);
  assert.equal(c.attrs.has('secure'), secure, `${name} Secure=${secure}: ${line}`);
}

test('sign-in and session cookies are HttpOnly, SameSite=Strict, host-only and scoped to /console; Secure and HSTS under TLS', async (t) => {
  const plain = new Visitor(server.baseUrl);
  const form = await plain.get('/console/signin');
  assertCookieFlags(form.setCookies.find((c) => c.startsWith('berth_signin=')), 'berth_signin', false);
  const signedIn = await plain.post('/console/signin', { token: hidden(form.text, 'token'), next: hidden(form.text, 'next'), account: ACCOUNT, user: 'alice', password: PASSWORDS.alice });
  assert.equal(signedIn.status, 303);
  const session = signedIn.setCookies.find((c) => c.startsWith('berth_session='));
  assertCookieFlags(session, 'berth_session', false);
  assert.match(cookieAttributes(session!).value, /^[A-Za-z0-9_-]{43}$/, '256 random bits');
  assert.equal(cookieAttributes(session!).attrs.get('max-age'), '43200', 'lasts console.sessionSeconds');

  const pki = await makeTestPki();
  t.after(() => pki.close());
  const secure = await startServer({ args: pki.serverArgs });
  t.after(() => secure.close());
  // Set up as an operator would, with the AWS CLI trusting the test CA.
  await awsOk(secure, ADMIN, ['--ca-bundle', pki.caFile, 'iam', 'create-user', '--user-name', 'alice']);
  await awsOk(secure, ADMIN, ['--ca-bundle', pki.caFile, 'iam', 'create-login-profile', '--user-name', 'alice', '--password', PASSWORDS.alice]);
  const ca = await readFile(pki.caFile, 'utf8');
  assert.match(secure.baseUrl, /^https:/);
  const tls = new Visitor(secure.baseUrl, ca);
  const tlsForm = await tls.get('/console/signin');
  assert.equal(tlsForm.status, 200);
  assertSecurityHeaders('sign-in page under TLS', tlsForm, { tls: true });
  assertCookieFlags(tlsForm.setCookies.find((c) => c.startsWith('berth_signin=')), 'berth_signin', true);
  const tlsIn = await tls.post('/console/signin', { token: hidden(tlsForm.text, 'token'), next: '/console/account', account: ACCOUNT, user: 'alice', password: PASSWORDS.alice });
  assert.equal(tlsIn.status, 303, tlsIn.text);
  assertCookieFlags(tlsIn.setCookies.find((c) => c.startsWith('berth_session=')), 'berth_session', true);
  const account = await tls.get('/console/account');
  assert.equal(account.status, 200);
  assertSecurityHeaders('account page under TLS', account, { tls: true });
  const out = await tls.post('/console/signout', { csrf: csrfOf(account.text) });
  assertCookieFlags(out.setCookies.find((c) => c.startsWith('berth_session=')), 'berth_session', true);
});

// --- sign-out -------------------------------------------------------------------------------------

test('signing out ends the session on the server: a copied cookie opens nothing afterwards', async () => {
  const alice = new Visitor(server.baseUrl);
  const token = await signedIn(alice, 'alice', PASSWORDS.alice);
  const copied = alice.session!;
  // Another browser holding a copy of the cookie is signed in as alice...
  const thief = new Visitor(server.baseUrl);
  thief.jar.set('berth_session', copied);
  assert.equal((await thief.get('/console/account')).status, 200, 'the copy works while the session lives');

  const out = await alice.post('/console/signout', { csrf: token });
  assert.equal(out.status, 303);
  assert.equal(out.location, '/console/signin?signedOut=1');
  const cleared = out.setCookies.find((c) => c.startsWith('berth_session='));
  assert.ok(cleared, 'the cookie is cleared');
  assert.equal(cookieAttributes(cleared).value, '');
  assert.equal(cookieAttributes(cleared).attrs.get('max-age'), '0');
  assert.equal(alice.session, undefined);
  const signinPage = await alice.get(out.location);
  assert.match(signinPage.text, /You have signed out/);

  // ...and after the sign-out the copy opens nothing: the row is gone, not just the cookie.
  for (const path of ['/console/account', '/console/repositories', `/console/repos/${repository}/-/settings`]) {
    const res = await thief.get(path);
    assert.equal(res.status, 303, path);
    assert.equal(res.location, `/console/signin?next=${encodeURIComponent(path)}`);
  }
  const post = await thief.post('/console/repositories', { name: `after-signout-${randomBytes(3).toString('hex')}`, csrf: token });
  assert.equal(post.status, 403);
  assert.match(post.text, /Your session has ended/);
  // The sign-in page does not take the dead session for a live one.
  assert.equal((await thief.get('/console/signin')).status, 200);
});

// --- the failed sign-in limit ----------------------------------------------------------------------

interface LookupEvent {
  EventName: string;
  Username?: string;
  CloudTrailEvent: string;
}

test('after BERTH_CONSOLE_SIGN_IN_ATTEMPTS failed sign-ins even the right password gets 429; every attempt is audited', async (t) => {
  const limited = await startServer({ env: { BERTH_CONSOLE_SIGN_IN_ATTEMPTS: '3' } });
  t.after(() => limited.close());
  await consoleUser(limited, 'alice', PASSWORDS.alice, ADMIN_POLICY);
  await iamClient(limited, ADMIN).send(new CreateUserCommand({ UserName: 'carol' }));
  const v = new Visitor(limited.baseUrl);
  // Three failures of three kinds, answered alike, so that the form tells no one which users exist.
  const failures: Array<[string, string]> = [['alice', 'not-her-password'], ['nobody-here', 'whatever'], ['carol', 'no-login-profile']];
  for (const [user, password] of failures) {
    const res = await v.signIn(user, password);
    assert.equal(res.status, 401, `${user}: ${res.status}`);
    assert.match(res.text, /The account, user name or password is not correct\./);
    assert.equal(v.session, undefined);
  }
  const blocked = await v.signIn('alice', PASSWORDS.alice);
  assert.equal(blocked.status, 429, 'the right password, refused');
  assert.match(blocked.text, /Too many failed sign-ins\. Try again in \d+ minutes?\./);
  const retryAfter = Number(blocked.headers['retry-after']);
  assert.ok(retryAfter > 0 && retryAfter <= 300, `retry-after ${blocked.headers['retry-after']}`);
  assert.equal(v.session, undefined, 'no session');
  assert.equal(blocked.setCookies.find((c) => c.startsWith('berth_session=')), undefined);
  // The limit is per client address too: from the same address, another user is refused as well.
  const other = await new Visitor(limited.baseUrl).signIn('carol', 'anything');
  assert.equal(other.status, 429);

  // The audit log (CloudTrail's LookupEvents) holds every attempt.
  const events = await waitFor(
    async () => {
      const out = await awsOk(limited, ADMIN, ['cloudtrail', 'lookup-events', '--lookup-attributes', 'AttributeKey=EventName,AttributeValue=ConsoleLogin']);
      const list = (out.json?.Events ?? []) as LookupEvent[];
      return list.length >= 5 ? list : undefined;
    },
    { timeoutMs: 60_000, intervalMs: 500, what: 'the ConsoleLogin audit events' },
  );
  const records = events.map((e) => JSON.parse(e.CloudTrailEvent) as { eventSource: string; eventType: string; errorCode?: string; decision: string; sourceIPAddress: string; plane: string });
  assert.deepEqual(records.map((r) => r.errorCode).sort(), ['TooManyAttempts', 'TooManyAttempts', 'no-login-profile', 'unknown-user', 'wrong-password'].sort());
  for (const r of records) {
    assert.equal(r.eventSource, 'signin.amazonaws.com');
    assert.equal(r.eventType, 'AwsConsoleSignIn');
    assert.equal(r.plane, 'console');
    assert.notEqual(r.decision, 'allow');
    assert.equal(r.sourceIPAddress, '127.0.0.1');
  }
  assert.doesNotMatch(JSON.stringify(events), new RegExp(PASSWORDS.alice.replace(/[!-]/g, '.')), 'no password in the audit log');
});

// --- console switched off -----------------------------------------------------------------------

test('with BERTH_CONSOLE_ENABLED=false there is no console: 404 under /console/, a browser’s GET / is not redirected, an API client’s GET / is unchanged', async (t) => {
  const off = await startServer({ env: { BERTH_CONSOLE_ENABLED: 'false' } });
  t.after(() => off.close());
  const browserAccept = { accept: 'text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8', 'user-agent': 'Mozilla/5.0 (X11; Linux x86_64) Chrome/156.0' };
  for (const path of ['/console', '/console/', '/console/signin', '/console/repositories', '/console/assets/console.js']) {
    const res = await call(`${off.baseUrl}${path}`, { headers: browserAccept });
    assert.equal(res.status, 404, `${path} with the console off`);
    assert.equal(res.headers['content-security-policy'], undefined, `${path}: not a console answer`);
  }
  const signinPost = await call(`${off.baseUrl}/console/signin`, { form: { account: ACCOUNT, user: 'alice', password: 'x', token: 'x' } });
  assert.equal(signinPost.status, 404);

  const browserOff = await call(`${off.baseUrl}/`, { headers: browserAccept });
  assert.ok(browserOff.status < 300 || browserOff.status >= 400, `not a redirect: ${browserOff.status}`);
  assert.equal(browserOff.location, undefined);
  // With the console on, the same browser request goes to it.
  const browserOn = await call(`${server.baseUrl}/`, { headers: browserAccept });
  assert.equal(browserOn.status, 302);
  assert.equal(browserOn.location, '/console/');

  // API clients never ask for HTML: what they get at / is the same with the console on or off.
  for (const headers of [{}, { accept: '*/*' }, { accept: 'application/json' }, { 'user-agent': 'aws-cli/2.15 Python/3.11', accept: 'application/json' }] as Record<string, string>[]) {
    const on = await call(`${server.baseUrl}/`, { headers });
    const offRes = await call(`${off.baseUrl}/`, { headers });
    assert.equal(on.status, offRes.status, `GET / ${JSON.stringify(headers)}`);
    assert.equal(on.location, undefined);
    assert.equal(on.headers['content-type'], offRes.headers['content-type']);
    assert.equal(on.text, offRes.text);
  }
  // The registry itself works the same.
  const ping = await call(`${off.baseUrl}/v2/`, { headers: { authorization: `Basic ${Buffer.from(`${ADMIN.accessKeyId}:${ADMIN.secretAccessKey}`).toString('base64')}` } });
  assert.equal(ping.status, 200);
});

// --- secrets in URLs and logs ---------------------------------------------------------------------

test('no password, session id or CSRF token appears in a URL or in the server log', async () => {
  const v = new Visitor(server.baseUrl);
  // A failed sign-in (its wrong password is a secret too), then a real one from a deep link.
  const wrong = `Wrong-${randomBytes(6).toString('hex')}`;
  assert.equal((await v.signIn('alice', wrong)).status, 401);
  const deep = await v.get(`/console/repos/${repository}/-/settings`);
  assert.equal(deep.status, 303);
  const form = await v.get(deep.location!);
  const res = await v.post('/console/signin', { token: hidden(form.text, 'token'), next: hidden(form.text, 'next'), account: ACCOUNT, user: 'alice', password: PASSWORDS.alice });
  assert.equal(res.status, 303);
  assert.equal(res.location, `/console/repos/${repository}/-/settings`, 'back to the deep link');
  const sessionId = v.session!;
  const settings = await v.get(res.location);
  const csrf = csrfOf(settings.text);
  // A password change posts three passwords; this one fails on purpose (the new ones differ).
  const newPassword = `New-${randomBytes(6).toString('hex')}-pw!`;
  await v.post('/console/account/password', { csrf, old: PASSWORDS.alice, new: newPassword, again: `${newPassword}x` });
  const signinToken = v.jar.get('berth_signin')!;
  await v.post('/console/signout', { csrf });

  const secrets = { password: PASSWORDS.alice, wrong, newPassword, sessionId, csrf, signinToken };
  for (const url of v.urls) {
    for (const [what, secret] of Object.entries(secrets)) {
      assert.ok(!url.includes(secret) && !url.includes(encodeURIComponent(secret)), `${what} in the URL ${url}`);
    }
  }
  // Every line the server logged up to a marker request made last.
  const marker = `/console/marker-${randomBytes(6).toString('hex')}`;
  await call(`${server.baseUrl}${marker}`);
  await waitFor(async () => server.logs.some((l) => JSON.stringify(l).includes(marker)), { what: 'the marker request in the log' });
  const log = server.logs.map((l) => JSON.stringify(l)).join('\n');
  assert.match(log, /"path":"\/console\/signin"/, 'console requests are logged (so the check below means something)');
  for (const [what, secret] of Object.entries(secrets)) assert.ok(!log.includes(secret), `${what} in the server log`);
  assert.doesNotMatch(log, /berth_session=|berth_signin=/, 'no cookie header in the log');
});

// --- next= -----------------------------------------------------------------------------------------

test('after sign-in, next= only leads to a console page (no open redirect)', async () => {
  const hostile = [
    'https://evil.example/',
    '//evil.example/console/repositories',
    '/\\evil.example',
    '/console//evil.example',
    '/console/\\evil.example',
    'javascript:alert(1)',
    ' /console/account',
    '/console/signin?next=https://evil.example/',
    '/console/x\r\nSet-Cookie: berth_session=fixated',
    '/console/\u2028x',
    '%2F%2Fevil.example',
    'http://127.0.0.1:1/console/account',
  ];
  for (const next of hostile) {
    // The form keeps only a safe target...
    const v = new Visitor(server.baseUrl);
    const form = await v.get(`/console/signin?next=${encodeURIComponent(next)}`);
    assert.equal(form.status, 200);
    assert.equal(hidden(form.text, 'next'), '/console/repositories', `the form's next for ${JSON.stringify(next)}`);
    // ...and a forged form field is not followed either.
    const res = await v.post('/console/signin', { token: hidden(form.text, 'token'), next, account: ACCOUNT, user: 'bob', password: PASSWORDS.bob });
    assert.equal(res.status, 303, `${JSON.stringify(next)}: ${res.status} ${res.text.slice(0, 300)}`);
    assert.equal(res.location, '/console/repositories', `redirect for ${JSON.stringify(next)}`);
    // Signed in already, the sign-in page sends a visitor on, to a safe place too.
    const again = await v.get(`/console/signin?next=${encodeURIComponent(next)}`);
    assert.equal(again.status, 303);
    assert.equal(again.location, '/console/repositories');
  }
  // A console page is honoured.
  const v = new Visitor(server.baseUrl);
  const res = await v.signIn('bob', PASSWORDS.bob, { next: `/console/repos/${repository}?tagStatus=TAGGED` });
  assert.equal(res.location, `/console/repos/${repository}?tagStatus=TAGGED`);
});
