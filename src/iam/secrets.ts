import { createCipheriv, createDecipheriv, createHmac, hkdfSync, randomBytes, scrypt, timingSafeEqual, type ScryptOptions } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';

/**
 * The instance's one secret key and everything derived from it: access-key secrets are sealed
 * with AES-256-GCM before they reach the metadata store (SigV4 needs the secret itself, so it
 * cannot be a one-way hash), and tokens (docker login passwords, STS session tokens) are
 * HMAC-SHA256 signed. Every node of a cluster must share the key.
 */
export class Secrets {
  private readonly sealKey: Buffer;
  private readonly tokenKey: Buffer;
  private readonly sessionKey: Buffer;
  private readonly downloadKey: Buffer;

  constructor(master: Buffer) {
    if (master.length < 32) throw new Error('the secret key must be at least 32 bytes');
    const derive = (label: string) => Buffer.from(hkdfSync('sha256', master, Buffer.alloc(0), label, 32));
    this.sealKey = derive('berth/seal-access-key-secrets');
    this.tokenKey = derive('berth/tokens');
    this.sessionKey = derive('berth/sts-session-secrets');
    this.downloadKey = derive('berth/download-urls');
  }

  /**
   * Loads the key: `auth.secretKey` (base64, for clusters) if set, else the key file, which is
   * created (32 random bytes, mode 0600) on first start.
   */
  static load(options: { secretKey: string; keyFile: string }): Secrets {
    if (options.secretKey) {
      const key = Buffer.from(options.secretKey, 'base64');
      if (key.length < 32) throw new Error('auth.secretKey must be at least 32 bytes, base64-encoded (e.g. `openssl rand -base64 32`)');
      return new Secrets(key);
    }
    if (!existsSync(options.keyFile)) {
      mkdirSync(path.dirname(options.keyFile), { recursive: true });
      writeFileSync(options.keyFile, randomBytes(32).toString('base64') + '\n', { mode: 0o600, flag: 'wx' });
    }
    chmodSync(options.keyFile, 0o600);
    return new Secrets(Buffer.from(readFileSync(options.keyFile, 'utf8').trim(), 'base64'));
  }

  seal(plain: string): string {
    const iv = randomBytes(12);
    const cipher = createCipheriv('aes-256-gcm', this.sealKey, iv);
    const body = Buffer.concat([cipher.update(plain, 'utf8'), cipher.final()]);
    return `v1:${Buffer.concat([iv, cipher.getAuthTag(), body]).toString('base64')}`;
  }

  unseal(sealed: string): string {
    if (!sealed.startsWith('v1:')) throw new Error('unknown sealed-secret format');
    const raw = Buffer.from(sealed.slice(3), 'base64');
    const decipher = createDecipheriv('aes-256-gcm', this.sealKey, raw.subarray(0, 12));
    decipher.setAuthTag(raw.subarray(12, 28));
    return Buffer.concat([decipher.update(raw.subarray(28)), decipher.final()]).toString('utf8');
  }

  /** `<prefix>.<base64url payload>.<base64url mac>` */
  signToken(prefix: string, payload: object): string {
    const body = Buffer.from(JSON.stringify(payload)).toString('base64url');
    const mac = createHmac('sha256', this.tokenKey).update(`${prefix}.${body}`).digest('base64url');
    return `${prefix}.${body}.${mac}`;
  }

  /** The payload of a token this instance signed with the prefix, or undefined if forged or malformed. */
  verifyToken(prefix: string, token: string): unknown {
    if (!token.startsWith(prefix + '.')) return undefined;
    const dot = token.lastIndexOf('.');
    if (dot <= prefix.length) return undefined;
    const signed = token.slice(0, dot);
    const mac = Buffer.from(token.slice(dot + 1), 'base64url');
    const expected = createHmac('sha256', this.tokenKey).update(signed).digest();
    if (mac.length !== expected.length || !timingSafeEqual(mac, expected)) return undefined;
    try {
      return JSON.parse(Buffer.from(signed.slice(prefix.length + 1), 'base64url').toString('utf8'));
    } catch {
      return undefined;
    }
  }

  /**
   * The signature of a layer download URL (GetDownloadUrlForLayer): HMAC-SHA256 over its fields,
   * base64url, with a key of its own so that it can never pass for a token.
   */
  signDownload(fields: readonly string[]): string {
    return createHmac('sha256', this.downloadKey).update(fields.join('\n')).digest('base64url');
  }

  /**
   * The secret of a temporary (STS) access key: derived from the key id, so temporary
   * credentials need no storage and any node can verify them.
   */
  sessionSecret(accessKeyId: string): string {
    return createHmac('sha256', this.sessionKey).update(accessKeyId).digest('base64').slice(0, 40);
  }
}

export function timingSafeStringEqual(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

/**
 * Console passwords are hashed with scrypt (RFC 7914) and a random 16-byte salt, never sealed:
 * unlike access-key secrets nothing needs them back, and a copy of the store (with or without
 * the secret key) yields only hashes that cost 16 MiB and tens of milliseconds each to try.
 * Format: `scrypt$N$r$p$<salt base64>$<hash base64>`, so the cost can be raised later while old
 * hashes keep verifying.
 */
const SCRYPT = { N: 16384, r: 8, p: 1, keyLength: 32 } as const;

function scryptAsync(password: string, salt: Buffer, keyLength: number, options: ScryptOptions): Promise<Buffer> {
  return new Promise((resolve, reject) => scrypt(password.normalize('NFC'), salt, keyLength, options, (err, key) => (err ? reject(err) : resolve(key))));
}

export async function hashPassword(password: string): Promise<string> {
  const salt = randomBytes(16);
  const hash = await scryptAsync(password, salt, SCRYPT.keyLength, { N: SCRYPT.N, r: SCRYPT.r, p: SCRYPT.p, maxmem: 64 * 1024 * 1024 });
  return `scrypt$${SCRYPT.N}$${SCRYPT.r}$${SCRYPT.p}$${salt.toString('base64')}$${hash.toString('base64')}`;
}

/**
 * A hash to verify against when there is none (an unknown account or user, no login profile), so
 * that those answers cost the same scrypt as a wrong password. Made once from random bytes that
 * were thrown away; whatever matches it, the caller refuses the sign-in anyway.
 */
export const DECOY_PASSWORD_HASH = 'scrypt$16384$8$1$KIGDRGxfTHMZCW9wA3UYDg==$d6trUDxVtdR4x8YV7Wkl7/vflcORzFY6ONMXwXUsfxw=';

/** Whether `password` is the one `stored` was made from; compares in constant time. False for a malformed hash. */
export async function verifyPassword(password: string, stored: string): Promise<boolean> {
  const parts = stored.split('$');
  if (parts.length !== 6 || parts[0] !== 'scrypt') return false;
  const [, n, r, p, saltText, hashText] = parts;
  const expected = Buffer.from(hashText!, 'base64');
  const N = Number(n);
  const options = { N, r: Number(r), p: Number(p), maxmem: 256 * 1024 * 1024 };
  if (![options.N, options.r, options.p].every((v) => Number.isSafeInteger(v) && v > 0) || expected.length < 16) return false;
  const actual = await scryptAsync(password, Buffer.from(saltText!, 'base64'), expected.length, options);
  return timingSafeEqual(actual, expected);
}
