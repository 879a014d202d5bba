import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { once } from 'node:events';
import http from 'node:http';
import net from 'node:net';
import { after, before } from 'node:test';
import { authedFetch, withAdminAuthorizationRaw } from './auth.ts';
import { startServer, type StartOptions, type TestServer } from './server.ts';

/** The OCI error body (spec: "Error Codes"). */
export interface OciErrorBody {
  errors: { code: string; message: string; detail?: unknown }[];
}

/**
 * One server shared by every test in a file: started in `before`, stopped in `after`. Every
 * response that passes through `fetch` is checked never to be a 5xx, and when the server has
 * stopped its log is checked for 5xx completion lines and error-level entries, so a request that
 * failed server-side (e.g. one whose client went away) cannot hide a 500 either.
 *
 * Requests authenticate as the test administrator (ADMIN in auth.ts) unless they set their own
 * Authorization header; `authorization: ''` sends the request with no credentials at all.
 */
export interface SharedServer {
  readonly server: TestServer;
  readonly baseUrl: string;
  /** Absolute URL for a path (or a Location header, relative or absolute). */
  url(pathOrLocation: string): URL;
  /**
   * fetch() as the administrator that fails the test on any 5xx response. A caller's own
   * Authorization header wins; `headers: { authorization: '' }` sends the request anonymously.
   */
  fetch(pathOrUrl: string | URL, init?: RequestInit): Promise<Response>;
}

export function sharedServer(options: StartOptions = {}): SharedServer {
  let server: TestServer | undefined;
  let stdoutEnded: Promise<unknown> = Promise.resolve();
  const ctx: SharedServer = {
    get server() {
      assert.ok(server, 'server not started (use the SharedServer inside a test)');
      return server;
    },
    get baseUrl() {
      return ctx.server.baseUrl;
    },
    url(pathOrLocation) {
      return new URL(pathOrLocation, ctx.baseUrl);
    },
    async fetch(pathOrUrl, init) {
      const target = typeof pathOrUrl === 'string' ? ctx.url(pathOrUrl) : pathOrUrl;
      const res = await authedFetch(target, init);
      if (res.status >= 500) {
        assert.fail(`${init?.method ?? 'GET'} ${target.pathname}${target.search} answered ${res.status}: ${await res.text()}`);
      }
      return res;
    },
  };
  before(async () => {
    server = await startServer(options);
    stdoutEnded = once(server.process.stdout!, 'end');
  });
  after(async () => {
    if (!server) return;
    await server.close();
    // The last lines may still be in the pipe when the process exits.
    await stdoutEnded;
    assertNoServerErrors(server.logs);
  });
  return ctx;
}

/** Fails on any request the server answered with 5xx and on any error- or fatal-level log entry. */
export function assertNoServerErrors(logs: Record<string, unknown>[]): void {
  const bad = logs.filter((l) => (typeof l['status'] === 'number' && l['status'] >= 500) || l['level'] === 'error' || l['level'] === 'fatal');
  assert.deepEqual(bad, [], 'the server logged 5xx responses or errors');
}

/**
 * Asserts that a response is an OCI error: the status, a JSON body of the spec's shape, and
 * `code` as the first error's code. Resolves the parsed body.
 */
export async function expectError(res: Response, status: number, code: string): Promise<OciErrorBody> {
  const text = await res.text();
  assert.equal(res.status, status, `expected ${status} ${code}, got ${res.status}: ${text}`);
  return checkErrorBody(res.headers.get('content-type'), text, code);
}

export function checkErrorBody(contentType: string | null | undefined, text: string, code: string): OciErrorBody {
  assert.match(contentType ?? '', /^application\/json/, `error content type: ${contentType}`);
  const body = JSON.parse(text) as OciErrorBody;
  assert.ok(Array.isArray(body.errors) && body.errors.length > 0, `errors list in ${text}`);
  for (const e of body.errors) {
    assert.match(e.code, /^[A-Z_]+$/, `error code ${e.code}`);
    assert.equal(typeof e.message, 'string');
  }
  assert.equal(body.errors[0]!.code, code, `error code in ${text}`);
  return body;
}

/** HEAD errors carry no body: checks the status and that nothing came back. */
export async function expectHeadError(res: Response, status: number): Promise<void> {
  assert.equal(res.status, status);
  assert.equal((await res.arrayBuffer()).byteLength, 0);
}

export function sha512(bytes: Uint8Array | string): string {
  return `sha512:${createHash('sha512').update(bytes).digest('hex')}`;
}

/** Reads a response body as a stream, resolving its length and sha256 digest (for large blobs). */
export async function digestBody(res: Response): Promise<{ digest: string; sizeBytes: number }> {
  const hash = createHash('sha256');
  let sizeBytes = 0;
  for await (const chunk of res.body as AsyncIterable<Uint8Array>) {
    hash.update(chunk);
    sizeBytes += chunk.byteLength;
  }
  return { digest: `sha256:${hash.digest('hex')}`, sizeBytes };
}

export interface RawResponse {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: Buffer;
}

/**
 * A request through node:http, for what fetch cannot express: a chunked body with no
 * Content-Length (each element of `chunks` is written separately) or headers fetch would rewrite.
 * Sends the administrator's Authorization header unless `headers` has one; an empty
 * `authorization: ''` means none.
 */
export function httpRequest(
  target: URL,
  options: { method: string; headers?: Record<string, string | number>; chunks?: Buffer[] },
): Promise<RawResponse> {
  return new Promise((resolve, reject) => {
    const req = http.request(target, { method: options.method, headers: withAdminAuthorizationRaw(options.headers) }, (res) => {
      const parts: Buffer[] = [];
      res.on('data', (d: Buffer) => parts.push(d));
      res.once('end', () => resolve({ status: res.statusCode!, headers: res.headers, body: Buffer.concat(parts) }));
      res.once('error', reject);
    });
    req.once('error', reject);
    (async () => {
      for (const chunk of options.chunks ?? []) {
        if (!req.write(chunk)) await once(req, 'drain');
      }
      req.end();
    })().catch(reject);
  });
}

/**
 * Starts a request on a bare socket, sends its head and `partialBody`, waits for `whenSent`
 * (e.g. until the server has the bytes), then either destroys the socket (a client that vanishes
 * mid-body) or half-closes it (a body shorter than its Content-Length). Resolves whatever
 * response bytes came back, if any. As httpRequest, it sends the administrator's Authorization
 * header unless `headers` has one (`authorization: ''`: none).
 */
export async function interruptedRequest(
  target: URL,
  options: {
    method: string;
    headers: Record<string, string | number>;
    partialBody: Buffer;
    whenSent?: () => Promise<unknown>;
    how: 'destroy' | 'half-close';
  },
): Promise<string> {
  const socket = net.connect(Number(target.port), target.hostname);
  await once(socket, 'connect');
  const received: Buffer[] = [];
  socket.on('data', (d: Buffer) => received.push(d));
  const closed = once(socket, 'close');
  let timedOut = false;
  socket.on('error', () => {
    // A reset after we half-close or destroy is expected.
  });
  const head = [`${options.method} ${target.pathname}${target.search} HTTP/1.1`, `Host: ${target.host}`, ...Object.entries(withAdminAuthorizationRaw(options.headers)).map(([k, v]) => `${k}: ${v}`), '', ''].join('\r\n');
  socket.write(head);
  socket.write(options.partialBody);
  if (options.whenSent) await options.whenSent();
  if (options.how === 'destroy') {
    socket.destroy();
  } else {
    socket.end();
    // The server should answer or close; don't let a test hang if it does neither.
    socket.setTimeout(10_000, () => {
      timedOut = true;
      socket.destroy();
    });
  }
  await closed;
  if (timedOut) throw new Error('the server kept a half-closed connection open for 10 s');
  return Buffer.concat(received).toString('latin1');
}

/** Parses an RFC 8288 Link header's rel="next" target. */
export function nextLink(header: string | null): string | undefined {
  if (header === null) return undefined;
  const m = /<([^>]+)>\s*;\s*rel="?next"?/.exec(header);
  return m?.[1];
}
