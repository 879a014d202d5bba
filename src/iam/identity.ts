import { randomInt } from 'node:crypto';
import { chmodSync, mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { LRUCache } from 'lru-cache';
import type { Logger } from '../log/logger.ts';
import type { IamPrincipal } from '../registry/access.ts';
import type { RepoRef } from '../registry/names.ts';
import type { MetaStore } from '../store/meta/meta-store.ts';
import type { AccessKeyRow, IdentityStore, LoginProfileRow, PasswordPolicy, PrincipalType, RoleRow, Tag, UserRow } from '../store/meta/identity-store.ts';
import { iamArn, isAccountId, newAccessKeyId, newAccountId, newSecretAccessKey, newTemporaryKeyId, newUserId } from './ids.ts';
import { managedPolicyByArn } from './managed-policies.ts';
import { parsePolicy, type CompiledPolicy } from './policy/index.ts';
import { DECOY_PASSWORD_HASH, hashPassword, timingSafeStringEqual, verifyPassword, type Secrets } from './secrets.ts';

/** A request the identity layer refuses as such (a taken id, a malformed one): a message for people, no stack. */
export class IdentityConflictError extends Error {
  override name = 'IdentityConflictError';
}

/** Token prefixes: authorization tokens (docker login passwords and bearer tokens) and STS session tokens. */
const AUTH_TOKEN = 'berth1';
const SESSION_TOKEN = 'berthsts1';

export interface IdentityOptions {
  meta: MetaStore;
  secrets: Secrets;
  log: Logger;
  region: string;
  /** How long resolved principals and compiled policies are trusted (auth.cacheTtlSeconds). */
  cacheTtlMs: number;
  tokenTtlMs: number;
  now?: () => number;
}

/** Claims of an authorization token. */
interface AuthTokenClaims {
  /** principal kind */
  t: 'user' | 'role';
  a: string;
  /** user or role name */
  n: string;
  /** user or role unique id: a user deleted and re-created under the same name gets a new id, and old tokens stop working */
  i: string;
  /** access key the token was issued through (user keys: still checked to be active) */
  k: string | undefined;
  s?: string;
  x: number;
}

/** Claims of an STS session token: a role session (AssumeRole) or a user's (GetSessionToken). */
type SessionClaims = RoleSessionClaims | UserSessionClaims;

interface RoleSessionClaims {
  t?: undefined;
  k: string;
  a: string;
  /** role name, role id, role path */
  r: string;
  ri: string;
  rp: string;
  s: string;
  x: number;
  /** who assumed it */
  by: string;
}

interface UserSessionClaims {
  t: 'user';
  k: string;
  a: string;
  /** user name and unique id: a user deleted (and re-created under the same name) ends its sessions */
  n: string;
  i: string;
  x: number;
}

export type SignInResult =
  | { ok: true; user: UserRow; accountId: string; passwordResetRequired: boolean; passwordExpired: boolean }
  | { ok: false; reason: 'unknown-account' | 'unknown-user' | 'no-login-profile' | 'wrong-password' | 'expired-hard' };

/** IAM's password rules when an account has set no password policy. */
export const DEFAULT_PASSWORD_RULES = 'at least 8 characters, with at least three of: upper-case letters, lower-case letters, numbers and symbols; not the user name or the account id or alias';

/** The symbols RequireSymbols asks for (IAM's list). */
export const PASSWORD_SYMBOLS = "!@#$%^&*()_+-=[]{}|'";

/** How many earlier password hashes a login profile keeps (PasswordReusePrevention's maximum). */
export const MAX_PASSWORD_HISTORY = 24;

/**
 * Why `password` breaks the account's password policy (IAM's default rules when `policy` is
 * undefined), or undefined when it does not. `names`: the user name and the account id and
 * alias, which the default rules forbid as passwords.
 */
export function passwordPolicyViolation(policy: PasswordPolicy | undefined, password: string, names: readonly string[] = []): string | undefined {
  const prefix = 'Password does not conform to the account password policy:';
  const upper = /[A-Z]/.test(password);
  const lower = /[a-z]/.test(password);
  const number = /[0-9]/.test(password);
  if (!policy) {
    if ([...password].length < 8) return `${prefix} it must be at least 8 characters long.`;
    const other = /[^A-Za-z0-9]/.test(password);
    if ([upper, lower, number, other].filter(Boolean).length < 3) {
      return `${prefix} it must contain at least three of these: upper-case letters (A-Z), lower-case letters (a-z), numbers (0-9) and symbols.`;
    }
    if (names.some((n) => n !== '' && n.toLowerCase() === password.toLowerCase())) return `${prefix} it must not be the user name, the account id or the account alias.`;
    return undefined;
  }
  if ([...password].length < policy.minimumPasswordLength) return `${prefix} it must be at least ${policy.minimumPasswordLength} characters long.`;
  if (policy.requireUppercaseCharacters && !upper) return `${prefix} it must contain at least one upper-case letter (A-Z).`;
  if (policy.requireLowercaseCharacters && !lower) return `${prefix} it must contain at least one lower-case letter (a-z).`;
  if (policy.requireNumbers && !number) return `${prefix} it must contain at least one number (0-9).`;
  if (policy.requireSymbols && ![...password].some((c) => PASSWORD_SYMBOLS.includes(c))) return `${prefix} it must contain at least one of these symbols: ${PASSWORD_SYMBOLS.split('').join(' ')}`;
  return undefined;
}

/** A random password that satisfies any password policy (and the default rules): 20 characters or the policy's minimum. */
export function generatePassword(policy?: PasswordPolicy): string {
  const classes = ['ABCDEFGHJKLMNPQRSTUVWXYZ', 'abcdefghijkmnopqrstuvwxyz', '23456789', PASSWORD_SYMBOLS.replace("'", '')];
  const all = classes.join('');
  const length = Math.max(20, policy?.minimumPasswordLength ?? 0);
  const pick = (set: string) => set[randomInt(set.length)]!;
  const chars = [...classes.map(pick), ...Array.from({ length: length - classes.length }, () => pick(all))];
  for (let i = chars.length - 1; i > 0; i--) {
    const j = randomInt(i + 1);
    [chars[i], chars[j]] = [chars[j]!, chars[i]!];
  }
  return chars.join('');
}

/** Whether a login profile's password is past the policy's MaxPasswordAge. */
export function isPasswordExpired(policy: PasswordPolicy | undefined, profile: Pick<LoginProfileRow, 'passwordChangedAtMs'>, nowMs: number): boolean {
  return !!policy?.maxPasswordAge && nowMs - profile.passwordChangedAtMs >= policy.maxPasswordAge * 86_400_000;
}

/** The hashes a profile keeps after its password is replaced: the replaced one first. */
export function passwordHistoryAfterChange(profile: Pick<LoginProfileRow, 'passwordHash' | 'previousHashes'>): string[] {
  return [profile.passwordHash, ...profile.previousHashes].slice(0, MAX_PASSWORD_HISTORY);
}

export type KeyLookup =
  | { status: 'ok'; secretAccessKey: string; identity: IamPrincipal }
  | { status: 'unknown' }
  | { status: 'expired' }
  | { status: 'invalid-token' };

export type TokenCheck = { ok: true; principal: IamPrincipal } | { ok: false; reason: 'invalid' | 'expired' | 'revoked' };

export interface TemporaryCredentials {
  accessKeyId: string;
  secretAccessKey: string;
  sessionToken: string;
  expiration: Date;
  assumedRoleArn: string;
  assumedRoleId: string;
}

export function userArn(u: Pick<UserRow, 'accountId' | 'path' | 'name'>): string {
  return iamArn(u.accountId, 'user', u.path, u.name);
}

export function roleArnOf(r: Pick<RoleRow, 'accountId' | 'path' | 'name'>): string {
  return iamArn(r.accountId, 'role', r.path, r.name);
}

function userPrincipal(u: UserRow, accessKeyId: string | undefined, expiresAtMs?: number): IamPrincipal {
  return {
    kind: 'iam',
    type: 'user',
    accountId: u.accountId,
    arn: userArn(u),
    userId: u.id,
    name: u.name,
    accessKeyId,
    ...(expiresAtMs !== undefined ? { expiresAtMs } : {}),
  };
}

function sessionPrincipal(c: { a: string; r: string; ri: string; rp: string; s: string }, accessKeyId: string | undefined, expiresAtMs: number): IamPrincipal {
  return {
    kind: 'iam',
    type: 'assumed-role',
    accountId: c.a,
    arn: `arn:aws:sts::${c.a}:assumed-role/${c.r}/${c.s}`,
    userId: `${c.ri}:${c.s}`,
    name: c.r,
    accessKeyId,
    roleArn: iamArn(c.a, 'role', c.rp, c.r),
    sessionName: c.s,
    expiresAtMs,
  };
}

/**
 * Who callers are: accounts and their first administrator, access keys, temporary credentials,
 * authorization tokens, and the policies that apply to a principal or a repository. Every
 * answer is cached for `cacheTtlMs` (default 5 s); a change made through this process clears
 * the caches at once, one made through another node applies within that time.
 */
export class Identity {
  readonly store: IdentityStore;
  private readonly meta: MetaStore;
  private readonly secrets: Secrets;
  private readonly log: Logger;
  readonly region: string;
  private readonly tokenTtlMs: number;
  private readonly now: () => number;
  private readonly keys: LRUCache<string, { row: AccessKeyRow; secret: string; user: UserRow } | { missing: true }>;
  private readonly tokens: LRUCache<string, TokenCheck>;
  private readonly policies: LRUCache<string, CompiledPolicy[]>;
  private readonly lastTouched = new Map<string, number>();
  private defaultAccountId: string | undefined;
  readonly cacheTtlMs: number;

  constructor(options: IdentityOptions) {
    this.meta = options.meta;
    this.store = options.meta.identity;
    this.secrets = options.secrets;
    this.log = options.log;
    this.region = options.region;
    this.tokenTtlMs = options.tokenTtlMs;
    this.now = options.now ?? Date.now;
    const ttl = Math.max(1, options.cacheTtlMs);
    this.cacheTtlMs = ttl;
    this.keys = new LRUCache({ max: 10_000, ttl });
    this.tokens = new LRUCache({ max: 10_000, ttl });
    this.policies = new LRUCache({ max: 10_000, ttl });
    this.roles = new LRUCache({ max: 10_000, ttl });
    this.users = new LRUCache({ max: 10_000, ttl });
    this.tagCache = new LRUCache({ max: 10_000, ttl });
    this.accountCache = new LRUCache({ max: 10_000, ttl });
  }

  /** Forgets everything cached: called after every IAM or policy change made through this process. */
  invalidate(): void {
    this.keys.clear();
    this.tokens.clear();
    this.policies.clear();
    this.roles.clear();
    this.users.clear();
    this.tagCache.clear();
    this.accountCache.clear();
  }

  // --- accounts ---------------------------------------------------------------------------

  /** The account served on the bare host name: the first one created. */
  async defaultAccount(): Promise<string> {
    if (this.defaultAccountId) return this.defaultAccountId;
    const first = (await this.store.listAccounts())[0];
    if (!first) throw new Error('no account exists; the store was not bootstrapped');
    this.defaultAccountId = first.id;
    return first.id;
  }

  private readonly accountCache: LRUCache<string, boolean>;

  async accountExists(id: string): Promise<boolean> {
    let known = this.accountCache.get(id);
    if (known === undefined) {
      known = (await this.store.getAccount(id)) !== undefined;
      this.accountCache.set(id, known);
    }
    return known;
  }

  /**
   * Creates an account with an administrator user (`admin`, AdministratorAccess attached) and
   * one access key for it, all in one transaction. Resolves the key's id and secret: the only
   * time the secret is shown.
   */
  async createAccount(options: { accountId?: string | undefined; alias?: string | undefined; accessKeyId?: string | undefined; secretAccessKey?: string | undefined }): Promise<{ accountId: string; userName: string; accessKeyId: string; secretAccessKey: string }> {
    const accountId = options.accountId ?? newAccountId();
    if (!isAccountId(accountId)) throw new IdentityConflictError(`account id must be 12 digits, got ${accountId}`);
    const accessKeyId = options.accessKeyId ?? newAccessKeyId();
    const secretAccessKey = options.secretAccessKey ?? newSecretAccessKey();
    const now = this.now();
    await this.meta.transaction(async (tx) => {
      const store = tx.identity;
      if (!(await store.createAccount({ id: accountId, alias: options.alias ?? null, createdAtMs: now }))) throw new IdentityConflictError(`account ${accountId} already exists`);
      if (await store.getAccessKey(accessKeyId)) throw new IdentityConflictError(`access key ${accessKeyId} already exists`);
      await store.createUser({ accountId, name: 'admin', id: newUserId(), path: '/', tags: [], createdAtMs: now });
      await store.attachPolicy(accountId, 'user', 'admin', 'arn:aws:iam::aws:policy/AdministratorAccess');
      await store.createAccessKey({
        id: accessKeyId,
        accountId,
        userName: 'admin',
        secretSealed: this.secrets.seal(secretAccessKey),
        status: 'Active',
        createdAtMs: now,
        lastUsedAtMs: null,
        lastUsedService: null,
      });
    });
    this.invalidate();
    return { accountId, userName: 'admin', accessKeyId, secretAccessKey };
  }

  /**
   * Refuses to run with a secret key other than the one the store's access keys were sealed
   * with: every key would otherwise fail as if unknown. Checks one stored key.
   */
  async checkSecretKey(): Promise<void> {
    for (const account of await this.store.listAccounts()) {
      for (const user of await this.store.listUsers(account.id, '/', { limit: 20 })) {
        const key = (await this.store.listAccessKeys(account.id, user.name))[0];
        if (!key) continue;
        try {
          this.secrets.unseal(key.secretSealed);
          return;
        } catch {
          throw new IdentityConflictError(
            'the secret key (auth.secretKey or auth.secretKeyFile) is not the one this store\'s access keys were sealed with; use the original key (every node of a cluster needs the same one)',
          );
        }
      }
    }
  }

  /**
   * On first start with an empty store: the first account and its administrator. The key is
   * written to `<dataDir>/admin-credentials` (mode 0600, AWS credentials-file format) and shown
   * once on stderr; it never goes to the log.
   */
  async bootstrap(options: { dataDir: string; accountId?: string | undefined; accessKeyId?: string | undefined; secretAccessKey?: string | undefined }): Promise<void> {
    if ((await this.store.listAccounts()).length > 0) return;
    let created;
    try {
      created = await this.createAccount(options);
    } catch (err) {
      // Several nodes starting on one empty store: another one bootstrapped first.
      if ((await this.store.listAccounts()).length > 0) return;
      throw err;
    }
    this.log.info({ accountId: created.accountId, user: created.userName, accessKeyId: created.accessKeyId }, 'first account and administrator created');
    if (options.secretAccessKey !== undefined) return;
    const file = path.join(options.dataDir, 'admin-credentials');
    const text = `# Berth administrator of account ${created.accountId} (user ${created.userName}), created ${new Date(this.now()).toISOString()}\n[berth]\naws_access_key_id = ${created.accessKeyId}\naws_secret_access_key = ${created.secretAccessKey}\n`;
    // The secret is shown before the file is written: whatever happens to the file (a data
    // directory that cannot be created, a read-only disk), the operator has seen it once.
    process.stderr.write(
      `\nBerth created account ${created.accountId} and its administrator "${created.userName}".\n` +
        `  Access key id:     ${created.accessKeyId}\n` +
        `  Secret access key: ${created.secretAccessKey}\n`,
    );
    try {
      mkdirSync(options.dataDir, { recursive: true, mode: 0o700 });
      writeFileSync(file, text, { mode: 0o600 });
      chmodSync(file, 0o600);
      process.stderr.write(`This is the only time the secret is shown; it is also in ${file} (readable only by you).\n\n`);
    } catch (err) {
      process.stderr.write(`This is the only time the secret is shown: note it now (it could not be written to ${file}: ${(err as Error).message}).\n\n`);
      this.log.warn({ file, err: { message: (err as Error).message } }, 'could not write the administrator credentials file');
    }
  }

  // --- access keys and SigV4 --------------------------------------------------------------

  /** Seals a new access key's secret for storage. */
  sealSecret(secret: string): string {
    return this.secrets.seal(secret);
  }

  private async loadKey(id: string): Promise<{ row: AccessKeyRow; secret: string; user: UserRow } | { missing: true }> {
    const cached = this.keys.get(id);
    if (cached) return cached;
    const row = await this.store.getAccessKey(id);
    const user = row && (await this.store.getUser(row.accountId, row.userName));
    let secret: string | undefined;
    if (row && user) {
      try {
        secret = this.secrets.unseal(row.secretSealed);
      } catch (err) {
        this.log.error({ accessKeyId: id, err: { message: (err as Error).message } }, 'an access key secret cannot be unsealed: the secret key differs from the one it was sealed with');
      }
    }
    const entry = row && user && secret !== undefined ? { row, secret, user } : ({ missing: true } as const);
    this.keys.set(id, entry);
    return entry;
  }

  /** Records a key's last use, at most once a minute per key per node. */
  private touch(id: string, service: string): void {
    const now = this.now();
    if ((this.lastTouched.get(id) ?? 0) > now - 60_000) return;
    this.lastTouched.set(id, now);
    if (this.lastTouched.size > 10_000) this.lastTouched.clear();
    this.store.touchAccessKey(id, now, service).catch((err: unknown) => this.log.warn({ err }, 'could not record access key use'));
  }

  /** What SigV4 verification needs for an access key id (and session token). */
  async lookupKey(accessKeyId: string, sessionToken: string | undefined, service: string): Promise<KeyLookup> {
    if (accessKeyId.startsWith('ASIA')) {
      if (!sessionToken) return { status: 'invalid-token' };
      const claims = this.secrets.verifyToken(SESSION_TOKEN, sessionToken) as SessionClaims | undefined;
      if (!claims || claims.k !== accessKeyId) return { status: 'invalid-token' };
      if (claims.x <= this.now()) return { status: 'expired' };
      if (claims.t === 'user') {
        // GetSessionToken's: the user itself, as long as it exists with the same unique id.
        const user = await this.cachedUser(claims.a, claims.n);
        if (!user || user.id !== claims.i) return { status: 'invalid-token' };
        return { status: 'ok', secretAccessKey: this.secrets.sessionSecret(accessKeyId), identity: userPrincipal(user, accessKeyId, claims.x) };
      }
      const role = await this.cachedRole(claims.a, claims.r);
      if (!role || role.id !== claims.ri) return { status: 'invalid-token' };
      return { status: 'ok', secretAccessKey: this.secrets.sessionSecret(accessKeyId), identity: sessionPrincipal(claims, accessKeyId, claims.x) };
    }
    // A long-term key has no session, so AWS refuses any token sent with it ("The security token
    // included in the request is invalid"), rather than ignoring it.
    if (sessionToken !== undefined) return { status: 'invalid-token' };
    const key = await this.loadKey(accessKeyId);
    if ('missing' in key || key.row.status !== 'Active') return { status: 'unknown' };
    this.touch(accessKeyId, service);
    return { status: 'ok', secretAccessKey: key.secret, identity: userPrincipal(key.user, accessKeyId) };
  }

  private readonly roles: LRUCache<string, RoleRow | { missing: true }>;
  private readonly users: LRUCache<string, UserRow | { missing: true }>;

  private async cachedUser(accountId: string, name: string): Promise<UserRow | undefined> {
    const k = `${accountId}/${name.toLowerCase()}`;
    let u = this.users.get(k);
    if (!u) {
      u = (await this.store.getUser(accountId, name)) ?? { missing: true };
      this.users.set(k, u);
    }
    return 'missing' in u ? undefined : u;
  }

  private async cachedRole(accountId: string, name: string): Promise<RoleRow | undefined> {
    const k = `${accountId}/${name.toLowerCase()}`;
    let r = this.roles.get(k);
    if (!r) {
      r = (await this.store.getRole(accountId, name)) ?? { missing: true };
      this.roles.set(k, r);
    }
    return 'missing' in r ? undefined : r;
  }

  /** HTTP Basic with an access key id as user name and its secret as password (like a robot account). */
  async checkKeyPassword(accessKeyId: string, secret: string): Promise<IamPrincipal | undefined> {
    const key = await this.loadKey(accessKeyId);
    if ('missing' in key || key.row.status !== 'Active' || !timingSafeStringEqual(key.secret, secret)) return undefined;
    this.touch(accessKeyId, 'ecr');
    return userPrincipal(key.user, accessKeyId);
  }

  // --- authorization tokens ---------------------------------------------------------------

  /** A token carrying the principal, valid for auth.tokenTtlSeconds (12 h) or until the caller's own credentials expire. */
  issueToken(principal: IamPrincipal): { token: string; expiresAt: Date } {
    const x = Math.min(this.now() + this.tokenTtlMs, principal.expiresAtMs ?? Infinity);
    const claims: AuthTokenClaims =
      principal.type === 'assumed-role'
        ? { t: 'role', a: principal.accountId, n: principal.name, i: principal.userId.split(':')[0]!, k: principal.accessKeyId, s: principal.sessionName ?? 'session', x }
        : { t: 'user', a: principal.accountId, n: principal.name, i: principal.userId, k: principal.accessKeyId, x };
    return { token: this.secrets.signToken(AUTH_TOKEN, claims), expiresAt: new Date(x) };
  }

  /** Signs the fields of a layer download URL (see download-url.ts). */
  signDownload(fields: readonly string[]): string {
    return this.secrets.signDownload(fields);
  }

  /**
   * Checks a token (HMAC, microseconds) and that what it was issued to still stands: the user
   * (same id) and its access key still active, or the role (same id). Cached for cacheTtlMs.
   */
  async checkToken(token: string): Promise<TokenCheck> {
    const cached = this.tokens.get(token);
    if (cached) {
      if (cached.ok && (cached.principal.expiresAtMs ?? Infinity) <= this.now()) return { ok: false, reason: 'expired' };
      return cached;
    }
    const result = await this.checkTokenUncached(token);
    this.tokens.set(token, result);
    return result;
  }

  private async checkTokenUncached(token: string): Promise<TokenCheck> {
    const c = this.secrets.verifyToken(AUTH_TOKEN, token) as AuthTokenClaims | undefined;
    if (!c || typeof c.x !== 'number') return { ok: false, reason: 'invalid' };
    if (c.x <= this.now()) return { ok: false, reason: 'expired' };
    if (c.t === 'user') {
      const user = await this.store.getUser(c.a, c.n);
      if (!user || user.id !== c.i) return { ok: false, reason: 'revoked' };
      // Issued through a user's session credentials (ASIA...): they have no key row, and the
      // token ends with the session at the latest (issueToken).
      if (c.k && !c.k.startsWith('ASIA')) {
        const key = await this.loadKey(c.k);
        if ('missing' in key || key.row.status !== 'Active' || key.user.id !== c.i) return { ok: false, reason: 'revoked' };
      }
      return { ok: true, principal: { ...userPrincipal(user, c.k), expiresAtMs: c.x } };
    }
    const role = await this.store.getRole(c.a, c.n);
    if (!role || role.id !== c.i) return { ok: false, reason: 'revoked' };
    return { ok: true, principal: sessionPrincipal({ a: c.a, r: role.name, ri: role.id, rp: role.path, s: c.s ?? 'session' }, c.k, c.x) };
  }

  // --- STS --------------------------------------------------------------------------------

  /** Temporary credentials for a role session (the caller has been authorized already). */
  issueRoleSession(role: RoleRow, sessionName: string, durationSeconds: number, assumedBy: string): TemporaryCredentials {
    const accessKeyId = newTemporaryKeyId();
    const x = this.now() + durationSeconds * 1000;
    const claims: SessionClaims = { k: accessKeyId, a: role.accountId, r: role.name, ri: role.id, rp: role.path, s: sessionName, x, by: assumedBy };
    return {
      accessKeyId,
      secretAccessKey: this.secrets.sessionSecret(accessKeyId),
      sessionToken: this.secrets.signToken(SESSION_TOKEN, claims),
      expiration: new Date(x),
      assumedRoleArn: `arn:aws:sts::${role.accountId}:assumed-role/${role.name}/${sessionName}`,
      assumedRoleId: `${role.id}:${sessionName}`,
    };
  }

  /**
   * GetSessionToken's credentials for a user (the caller has been authenticated already): their
   * principal is the user itself, with its policies, until `durationSeconds` from now or until
   * the user is deleted.
   */
  issueUserSession(user: UserRow, durationSeconds: number): { accessKeyId: string; secretAccessKey: string; sessionToken: string; expiration: Date } {
    const accessKeyId = newTemporaryKeyId();
    const x = this.now() + durationSeconds * 1000;
    const claims: UserSessionClaims = { t: 'user', k: accessKeyId, a: user.accountId, n: user.name, i: user.id, x };
    return { accessKeyId, secretAccessKey: this.secrets.sessionSecret(accessKeyId), sessionToken: this.secrets.signToken(SESSION_TOKEN, claims), expiration: new Date(x) };
  }

  /** The secret key of temporary credentials, from their access key id (derived, never stored). */
  sessionSecretFor(accessKeyId: string): string {
    return this.secrets.sessionSecret(accessKeyId);
  }

  // --- console passwords ------------------------------------------------------------------

  /** The account a sign-in names: a 12-digit id, or an alias (ignoring case). */
  private async accountFor(accountOrAlias: string): Promise<string | undefined> {
    if (isAccountId(accountOrAlias)) return (await this.store.getAccount(accountOrAlias))?.id;
    const alias = accountOrAlias.toLowerCase();
    return (await this.store.listAccounts()).find((a) => a.alias !== null && a.alias.toLowerCase() === alias)?.id;
  }

  /**
   * Console sign-in. accountOrAlias: a 12-digit account id or an account alias. Always takes
   * about as long (runs scrypt even for an unknown account or user, or one without a password),
   * so that timing tells nothing about which users exist. A hard-expired password
   * (MaxPasswordAge with HardExpiry) is reported only after the password proved right. Records
   * the sign-in as the profile's last use (IAM's PasswordLastUsed). Audits nothing: the caller
   * records the attempt.
   */
  async signInWithPassword(accountOrAlias: string, userName: string, password: string): Promise<SignInResult> {
    const accountId = await this.accountFor(accountOrAlias);
    const user = accountId === undefined ? undefined : await this.store.getUser(accountId, userName);
    const profile = user ? await this.store.getLoginProfile(user.accountId, user.name) : undefined;
    const isMatch = await verifyPassword(password, profile?.passwordHash ?? DECOY_PASSWORD_HASH);
    if (accountId === undefined) return { ok: false, reason: 'unknown-account' };
    if (!user) return { ok: false, reason: 'unknown-user' };
    if (!profile) return { ok: false, reason: 'no-login-profile' };
    if (!isMatch) return { ok: false, reason: 'wrong-password' };
    const policy = await this.store.getPasswordPolicy(accountId);
    const now = this.now();
    const isExpired = isPasswordExpired(policy, profile, now);
    if (isExpired && policy?.hardExpiry) return { ok: false, reason: 'expired-hard' };
    await this.store.touchLoginProfile(accountId, user.name, now);
    return { ok: true, user, accountId, passwordResetRequired: profile.isResetRequired, passwordExpired: isExpired };
  }

  /**
   * Why `password` may not become the user's password under the account's password policy (or
   * IAM's default rules), or undefined. With `reuse`, also the policy's PasswordReusePrevention
   * against the profile's current and earlier passwords.
   */
  async passwordViolation(user: UserRow, password: string, reuse?: Pick<LoginProfileRow, 'passwordHash' | 'previousHashes'>): Promise<string | undefined> {
    const policy = await this.store.getPasswordPolicy(user.accountId);
    const alias = (await this.store.getAccount(user.accountId))?.alias ?? '';
    const violation = passwordPolicyViolation(policy, password, [user.name, user.accountId, alias]);
    if (violation || !reuse || !policy?.passwordReusePrevention) return violation;
    const recent = passwordHistoryAfterChange(reuse).slice(0, policy.passwordReusePrevention);
    const matches = await Promise.all(recent.map((hash) => verifyPassword(password, hash)));
    if (matches.some(Boolean)) {
      return `Password does not conform to the account password policy: it must not be one of the last ${policy.passwordReusePrevention} passwords of the user.`;
    }
    return undefined;
  }

  /** A password's scrypt hash for a login profile. */
  hashPassword(password: string): Promise<string> {
    return hashPassword(password);
  }

  /** Whether `password` is the profile's current password (constant-time). */
  checkPassword(profile: Pick<LoginProfileRow, 'passwordHash'>, password: string): Promise<boolean> {
    return verifyPassword(password, profile.passwordHash);
  }

  // --- policies ---------------------------------------------------------------------------

  private async compiledPolicy(label: string, text: string): Promise<CompiledPolicy | undefined> {
    try {
      return parsePolicy(text, 'identity', label, { isStored: true });
    } catch (err) {
      // Stored documents were validated when set; one that no longer parses grants nothing.
      this.log.warn({ policy: label, err: { message: (err as Error).message } }, 'stored policy does not parse; ignored');
      return undefined;
    }
  }

  private async attachedAndInline(accountId: string, type: PrincipalType, name: string, into: CompiledPolicy[]): Promise<void> {
    for (const arn of await this.store.listAttachedPolicies(accountId, type, name)) {
      const managed = managedPolicyByArn.get(arn);
      let text = managed?.document;
      if (!text) {
        const m = /^arn:aws:iam::(\d{12}):policy\/(?:.*\/)?([^/]+)$/.exec(arn);
        text = m ? (await this.store.getPolicy(m[1]!, m[2]!))?.document : undefined;
      }
      if (text) {
        const p = await this.compiledPolicy(arn, text);
        if (p) into.push(p);
      }
    }
    for (const inline of await this.store.listInlinePolicies(accountId, type, name)) {
      const p = await this.compiledPolicy(`${type}/${name} inline policy ${inline.name}`, inline.document);
      if (p) into.push(p);
    }
  }

  /** Every identity policy of the principal: a user's own and its groups', or the role's. */
  async identityPolicies(principal: IamPrincipal): Promise<CompiledPolicy[]> {
    const cacheKey = `id:${principal.arn}`;
    const cached = this.policies.get(cacheKey);
    if (cached) return cached;
    const out: CompiledPolicy[] = [];
    if (principal.type === 'user') {
      await this.attachedAndInline(principal.accountId, 'user', principal.name, out);
      for (const g of await this.store.listGroupsForUser(principal.accountId, principal.name)) await this.attachedAndInline(principal.accountId, 'group', g.name, out);
    } else if (principal.type === 'assumed-role') {
      await this.attachedAndInline(principal.accountId, 'role', principal.name, out);
    }
    this.policies.set(cacheKey, out);
    return out;
  }

  private readonly tagCache: LRUCache<string, Tag[]>;

  /** Tags of the principal (aws:PrincipalTag/...), cached like policies. */
  async principalTags(principal: IamPrincipal): Promise<Tag[]> {
    const cached = this.tagCache.get(principal.arn);
    if (cached) return cached;
    let tags: Tag[] = [];
    if (principal.type === 'user') tags = (await this.store.getUser(principal.accountId, principal.name))?.tags ?? [];
    else if (principal.type === 'assumed-role') tags = (await this.cachedRole(principal.accountId, principal.name))?.tags ?? [];
    this.tagCache.set(principal.arn, tags);
    return tags;
  }

  /** The resource policies that govern a repository: its repository policy and its account's registry policy. */
  async repositoryPolicies(repo: RepoRef): Promise<CompiledPolicy[]> {
    const cacheKey = `repo:${repo.account}/${repo.name}`;
    const cached = this.policies.get(cacheKey);
    if (cached) return cached;
    const out: CompiledPolicy[] = [];
    const repository = await this.meta.getRepository(repo.account, repo.name);
    const repoText = repository && (await this.meta.getRepositoryPolicy(repository.id));
    if (repoText) {
      try {
        out.push(parsePolicy(repoText, 'resource', `repository policy of ${repo.name}`));
      } catch (err) {
        this.log.warn({ repository: repo.name, err: { message: (err as Error).message } }, 'stored repository policy does not parse; ignored');
      }
    }
    const registryText = await this.store.getRegistryPolicy(repo.account);
    if (registryText) {
      try {
        out.push(parsePolicy(registryText, 'resource', `registry policy of ${repo.account}`));
      } catch (err) {
        this.log.warn({ account: repo.account, err: { message: (err as Error).message } }, 'stored registry policy does not parse; ignored');
      }
    }
    this.policies.set(cacheKey, out);
    return out;
  }

  /** The trust policy of a role, compiled. */
  async trustPolicy(role: RoleRow): Promise<CompiledPolicy | undefined> {
    try {
      return parsePolicy(role.trustPolicy, 'trust', `trust policy of role ${role.name}`, { isStored: true });
    } catch {
      return undefined;
    }
  }
}
