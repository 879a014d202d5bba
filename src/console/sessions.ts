import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { Identity } from '../iam/identity.ts';
import type { ConsoleSessionRow, UserRow } from '../store/meta/identity-store.ts';

/**
 * Console sessions. The browser holds only a random 256-bit id in an HttpOnly cookie; the row
 * (keyed by the id's SHA-256, so a leaked table names no live cookie) holds who signed in and
 * the session credentials (GetSessionToken's) that the console signs its API calls with. Any
 * node of a cluster finds the row; signing out deletes it, so a copied cookie dies with it.
 */

export const SESSION_COOKIE = 'berth_session';
/** The sign-in form's double-submit token (no session exists yet to tie one to). */
export const SIGNIN_COOKIE = 'berth_signin';

export interface Session {
  /** The cookie's value. */
  id: string;
  row: ConsoleSessionRow;
  /** The token every form of this session carries (a hash of the id: unguessable without it). */
  csrf: string;
  /** Whether the user must choose a new password before anything else. */
  mustChangePassword: boolean;
}

export function parseCookies(header: string | undefined): Map<string, string> {
  const out = new Map<string, string>();
  for (const part of (header ?? '').split(';')) {
    const i = part.indexOf('=');
    if (i <= 0) continue;
    const name = part.slice(0, i).trim();
    if (!out.has(name)) out.set(name, part.slice(i + 1).trim());
  }
  return out;
}

export function cookie(name: string, value: string, options: { maxAgeSeconds: number; secure: boolean; path?: string }): string {
  return [`${name}=${value}`, `Path=${options.path ?? '/console'}`, `Max-Age=${options.maxAgeSeconds}`, 'HttpOnly', 'SameSite=Strict', ...(options.secure ? ['Secure'] : [])].join('; ');
}

const hashId = (id: string) => createHash('sha256').update(id).digest('hex');
export const csrfFor = (id: string) => createHash('sha256').update(`berth-console-csrf:${id}`).digest('base64url');

export function sameToken(a: string | undefined, b: string): boolean {
  if (typeof a !== 'string' || a.length !== b.length) return false;
  return timingSafeEqual(Buffer.from(a), Buffer.from(b));
}

export function isSecure(request: FastifyRequest): boolean {
  return request.protocol === 'https';
}

export class Sessions {
  readonly #identity: Identity;
  readonly #seconds: number;
  readonly #now: () => number;
  #lastSweep = 0;

  constructor(identity: Identity, seconds: number, now: () => number = Date.now) {
    this.#identity = identity;
    this.#seconds = seconds;
    this.#now = now;
  }

  get seconds(): number {
    return this.#seconds;
  }

  /** Starts a session for a user who proved their password; sets the cookie. */
  async start(reply: FastifyReply, request: FastifyRequest, user: UserRow, mustChangePassword: boolean): Promise<Session> {
    const id = randomBytes(32).toString('base64url');
    const creds = this.#identity.issueUserSession(user, this.#seconds);
    const now = this.#now();
    const row: ConsoleSessionRow = {
      idHash: hashId(id),
      accountId: user.accountId,
      userName: user.name,
      userId: user.id,
      accessKeyId: creds.accessKeyId,
      sessionToken: creds.sessionToken,
      createdAtMs: now,
      expiresAtMs: creds.expiration.getTime(),
      mustChangePassword,
    };
    await this.#identity.store.createConsoleSession(row);
    reply.header('set-cookie', cookie(SESSION_COOKIE, id, { maxAgeSeconds: this.#seconds, secure: isSecure(request) }));
    if (now - this.#lastSweep > 10 * 60_000) {
      this.#lastSweep = now;
      void this.#identity.store.deleteExpiredConsoleSessions(now).catch(() => {});
    }
    return { id, row, csrf: csrfFor(id), mustChangePassword };
  }

  /** The session the request's cookie names, when it exists and has not expired. */
  async find(request: FastifyRequest): Promise<Session | undefined> {
    const id = parseCookies(request.headers.cookie).get(SESSION_COOKIE);
    if (!id || !/^[A-Za-z0-9_-]{43}$/.test(id)) return undefined;
    const row = await this.#identity.store.getConsoleSession(hashId(id));
    if (!row || row.expiresAtMs <= this.#now()) return undefined;
    return { id, row, csrf: csrfFor(id), mustChangePassword: row.mustChangePassword };
  }

  async passwordChanged(session: Session): Promise<void> {
    await this.#identity.store.clearConsoleSessionPasswordChange(session.row.idHash);
  }

  async end(reply: FastifyReply, request: FastifyRequest, session: Session | undefined): Promise<void> {
    if (session) {
      await this.#identity.store.deleteConsoleSession(session.row.idHash);
    }
    reply.header('set-cookie', cookie(SESSION_COOKIE, '', { maxAgeSeconds: 0, secure: isSecure(request) }));
  }

  credentials(session: Session): { accessKeyId: string; secretAccessKey: string; sessionToken: string } {
    return { accessKeyId: session.row.accessKeyId, secretAccessKey: this.#identity.sessionSecretFor(session.row.accessKeyId), sessionToken: session.row.sessionToken };
  }
}

/**
 * Failed sign-ins per user name and per client address, in a sliding window of 5 minutes on
 * this node. Past the limit a sign-in is refused before its password is even checked.
 */
export class SignInLimiter {
  readonly #limit: number;
  readonly #windowMs = 5 * 60_000;
  readonly #failures = new Map<string, number[]>();
  readonly #now: () => number;

  constructor(limit: number, now: () => number = Date.now) {
    this.#limit = limit;
    this.#now = now;
  }

  #recent(key: string): number[] {
    const since = this.#now() - this.#windowMs;
    const list = (this.#failures.get(key) ?? []).filter((t) => t > since);
    if (list.length === 0) this.#failures.delete(key);
    else this.#failures.set(key, list);
    return list;
  }

  /** Milliseconds until another attempt is allowed, or 0. */
  retryAfterMs(keys: readonly string[]): number {
    let wait = 0;
    for (const key of keys) {
      const list = this.#recent(key);
      if (list.length >= this.#limit) wait = Math.max(wait, list[list.length - this.#limit]! + this.#windowMs - this.#now());
    }
    return wait;
  }

  failed(keys: readonly string[]): void {
    if (this.#failures.size > 100_000) this.#failures.clear();
    for (const key of keys) this.#failures.set(key, [...this.#recent(key), this.#now()]);
  }

  succeeded(key: string): void {
    this.#failures.delete(key);
  }
}
