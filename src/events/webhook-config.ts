/**
 * Webhook subscriptions declared in the configuration (`events.webhooks`, docs/webhooks.md).
 * loadConfig() checks the entries with parseConfigWebhooks(); at startup syncConfigWebhooks()
 * makes the store's `config:` subscriptions match them, before the dispatcher starts. In the
 * store they are ordinary subscriptions, with their own cursor, lease and dead letters, so
 * `berth events list|deliveries|redeliver` work on them; only their ids set them apart.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import type { Secrets } from '../iam/secrets.ts';
import type { Logger } from '../log/logger.ts';
import type { MetaStore } from '../store/meta/meta-store.ts';
import { compilePattern, EventPatternError } from './pattern.ts';

/**
 * The ids of config-managed subscriptions start with this. CLI subscriptions have UUIDs, which
 * never contain a colon, so the two sets cannot meet.
 */
export const CONFIG_WEBHOOK_PREFIX = 'config:';

export function isConfigWebhook(subscriptionId: string): boolean {
  return subscriptionId.startsWith(CONFIG_WEBHOOK_PREFIX);
}

/** One checked entry of `events.webhooks`. */
export interface ConfigWebhook {
  /** The entry's own id, without the prefix. */
  id: string;
  url: string;
  accountId: string | null;
  /** The pattern as normalised JSON text; null for every event. */
  pattern: string | null;
  /** Plain: from `secret`, or read from `secretFile` at startup. */
  secret: string;
  headers: Record<string, string>;
  timeoutMs: number;
  maxAttempts: number;
  isEnabled: boolean;
}

/** What is wrong with `events.webhooks`; loadConfig() reports it as a ConfigError with the source. */
export class WebhookConfigError extends Error {
  override name = 'WebhookConfigError';
}

const FIELDS = new Set(['id', 'url', 'account', 'pattern', 'secret', 'secretFile', 'headers', 'timeoutSeconds', 'maxAttempts', 'enabled']);
/** As `berth events add`: Berth sets these itself. */
const RESERVED_HEADERS = new Set(['content-type', 'content-length', 'host', 'transfer-encoding', 'connection', 'berth-signature', 'berth-timestamp', 'berth-event-id']);
const MAX_TIMEOUT_SECONDS = 300;
const MAX_ATTEMPTS = 100;
const DEFAULT_TIMEOUT_SECONDS = 10;
const DEFAULT_MAX_ATTEMPTS = 10;

/**
 * Checks the entries and reads their secret files (relative paths against `cwd`). Throws a
 * WebhookConfigError naming the entry (`[index]` and its id) and the problem.
 */
export function parseConfigWebhooks(raw: unknown, options: { cwd: string }): ConfigWebhook[] {
  if (!Array.isArray(raw)) throw new WebhookConfigError('expected a JSON array of subscriptions');
  const seen = new Set<string>();
  return raw.map((entry: unknown, index) => {
    let where = `[${index}]`;
    const fail = (problem: string): never => {
      throw new WebhookConfigError(`${where}: ${problem}`);
    };
    if (entry === null || typeof entry !== 'object' || Array.isArray(entry)) return fail('expected an object');
    const e = entry as Record<string, unknown>;
    if (typeof e['id'] !== 'string' || !/^[a-z0-9](?:[a-z0-9-]{0,62}[a-z0-9])?$/.test(e['id'])) {
      return fail(`id: expected 1 to 64 lower-case letters, digits and inner hyphens, got ${JSON.stringify(e['id'])}`);
    }
    const id = e['id'];
    where = `[${index}] (id ${id})`;
    if (seen.has(id)) fail('id: another entry has the same id');
    seen.add(id);
    for (const k of Object.keys(e)) if (!FIELDS.has(k)) fail(`unknown field ${JSON.stringify(k)}`);

    let url: URL | undefined;
    try {
      url = typeof e['url'] === 'string' ? new URL(e['url']) : undefined;
    } catch {
      url = undefined;
    }
    if (!url || (url.protocol !== 'http:' && url.protocol !== 'https:')) fail(`url: expected an http:// or https:// URL, got ${JSON.stringify(e['url'])}`);

    const account = e['account'];
    if (account !== undefined && (typeof account !== 'string' || !/^\d{12}$/.test(account))) fail(`account: expected an account id of 12 digits, got ${JSON.stringify(account)}`);

    let pattern: string | null = null;
    if (e['pattern'] !== undefined) {
      if (e['pattern'] === null || typeof e['pattern'] !== 'object' || Array.isArray(e['pattern'])) fail('pattern: expected an EventBridge event pattern (a JSON object)');
      pattern = JSON.stringify(e['pattern']);
      try {
        compilePattern(pattern);
      } catch (err) {
        if (err instanceof EventPatternError) fail(`pattern: ${err.message}`);
        throw err;
      }
    }

    if ((e['secret'] === undefined) === (e['secretFile'] === undefined)) fail('give exactly one of secret and secretFile');
    let secret: string;
    if (e['secret'] !== undefined) {
      if (typeof e['secret'] !== 'string') return fail('secret: expected a string');
      secret = e['secret'];
    } else {
      if (typeof e['secretFile'] !== 'string' || e['secretFile'] === '') return fail('secretFile: expected a path');
      const file = path.resolve(options.cwd, e['secretFile']);
      try {
        // A trailing line break is the editor's, not the secret's.
        secret = readFileSync(file, 'utf8').replace(/\r?\n$/, '');
      } catch (err) {
        return fail(`secretFile: cannot read ${file}: ${(err as Error).message}`);
      }
    }
    if (secret.length < 16) fail('the secret must be at least 16 characters');

    const headers: Record<string, string> = {};
    if (e['headers'] !== undefined) {
      const h = e['headers'];
      if (h === null || typeof h !== 'object' || Array.isArray(h)) return fail('headers: expected an object of header names to values');
      for (const [name, value] of Object.entries(h)) {
        if (!/^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/.test(name)) fail(`headers: ${JSON.stringify(name)} is not a header name`);
        if (typeof value !== 'string' || /[\r\n\0]/.test(value)) fail(`headers: ${name}: expected a string without line breaks`);
        if (RESERVED_HEADERS.has(name.toLowerCase())) fail(`headers: ${name}: Berth sets this header itself`);
        headers[name] = value as string;
      }
    }

    const whole = (field: string, fallback: number, max: number): number => {
      const v = e[field];
      if (v === undefined) return fallback;
      if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 1 || v > max) fail(`${field}: expected a whole number from 1 to ${max}, got ${JSON.stringify(v)}`);
      return v as number;
    };
    const timeoutSeconds = whole('timeoutSeconds', DEFAULT_TIMEOUT_SECONDS, MAX_TIMEOUT_SECONDS);
    const maxAttempts = whole('maxAttempts', DEFAULT_MAX_ATTEMPTS, MAX_ATTEMPTS);
    if (e['enabled'] !== undefined && typeof e['enabled'] !== 'boolean') fail(`enabled: expected true or false, got ${JSON.stringify(e['enabled'])}`);

    return {
      id,
      url: url!.href,
      accountId: (account as string | undefined) ?? null,
      pattern,
      secret,
      headers,
      timeoutMs: timeoutSeconds * 1000,
      maxAttempts,
      isEnabled: e['enabled'] !== false,
    };
  });
}

export interface SyncOptions {
  meta: MetaStore;
  secrets: Secrets;
  log: Logger;
  webhooks: readonly ConfigWebhook[];
  nowMs?: number;
}

/**
 * Makes the store's config-managed subscriptions those of the config: each entry is upserted
 * (a new one starts at the log's end; a changed one keeps its cursor and dead letters), and those
 * no longer declared are deleted. Every step is idempotent, so nodes starting together with the
 * same config agree; nodes with different lists undo each other's changes at each start.
 */
export async function syncConfigWebhooks(options: SyncOptions): Promise<{ created: string[]; updated: string[]; removed: string[] }> {
  const { meta, secrets, log } = options;
  const result = { created: [] as string[], updated: [] as string[], removed: [] as string[] };
  const declared = new Set<string>();
  for (const w of options.webhooks) {
    const id = CONFIG_WEBHOOK_PREFIX + w.id;
    declared.add(id);
    const existing = await meta.events.getWebhook(id);
    const outcome = await meta.events.upsertWebhook({
      id,
      accountId: w.accountId,
      url: w.url,
      pattern: w.pattern,
      // Sealing is randomised: keep the stored seal when it holds the same secret.
      secretSealed: existing && unsealsTo(secrets, existing.secretSealed, w.secret) ? existing.secretSealed : secrets.seal(w.secret),
      headers: w.headers,
      timeoutMs: w.timeoutMs,
      maxAttempts: w.maxAttempts,
      createdAtMs: options.nowMs ?? Date.now(),
      isDisabled: !w.isEnabled,
    });
    result[outcome].push(id);
  }
  for (const s of await meta.events.listWebhooks({ idPrefix: CONFIG_WEBHOOK_PREFIX })) {
    if (declared.has(s.id)) continue;
    await meta.events.deleteWebhook(s.id);
    result.removed.push(s.id);
  }
  if (result.created.length + result.updated.length + result.removed.length > 0) log.info(result, 'webhook subscriptions of the configuration applied');
  return result;
}

function unsealsTo(secrets: Secrets, sealed: string, secret: string): boolean {
  try {
    return secrets.unseal(sealed) === secret;
  } catch {
    return false;
  }
}
