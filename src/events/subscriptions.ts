/**
 * Webhook subscriptions as `berth events add` and the BerthCreateEventSubscription operation make
 * them (docs/webhooks.md): one check of what is given and one way to build the stored record, so
 * that a subscription made either way is the same. Also what both show of a subscription's
 * progress: its backlog, and the delivery status of its recent events.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import type { DeadLetter, StoredEvent, WebhookSubscription } from '../store/meta/event-store.ts';
import { compilePattern, EventPatternError, type EventPattern } from './pattern.ts';
import { DEFAULT_MAX_ATTEMPTS, DEFAULT_TIMEOUT_MS } from './webhooks.ts';

export const MAX_TIMEOUT_SECONDS = 300;
export const MAX_ATTEMPTS = 100;
export const MIN_SECRET_LENGTH = 16;

/** Header names a subscription may not set: the delivery's own. */
const RESERVED_HEADERS = new Set(['content-type', 'content-length', 'host', 'transfer-encoding', 'connection', 'berth-signature', 'berth-timestamp', 'berth-event-id']);
/** RFC 9110's token: what fetch accepts as a header name. */
const HEADER_NAME = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
/** What fetch sends as a header value: Latin-1 without line breaks or NUL (it throws on more). */
const HEADER_VALUE = /^[\t\u0020-\u007e\u0080-\u00ff]*$/;

export type SubscriptionField = 'url' | 'pattern' | 'secret' | 'headers' | 'timeoutSeconds' | 'maxAttempts';

/** A subscription's input that cannot be accepted. */
export class SubscriptionInputError extends Error {
  override readonly name = 'SubscriptionInputError';
  readonly field: SubscriptionField;
  /** The problem in a sentence that names the field as the caller knows it (`--pattern`, `eventPattern`). */
  readonly describe: (name: string) => string;

  constructor(field: SubscriptionField, describe: (name: string) => string) {
    super(describe(field));
    this.field = field;
    this.describe = describe;
  }
}

export interface NewSubscriptionInput {
  /** Only this account's events; null for every account's (`berth events add` without `--account`). */
  accountId: string | null;
  url: string;
  /** An EventBridge event pattern, as JSON text; every event when absent. */
  pattern?: string | undefined;
  /** At least 16 characters; generated when absent. */
  secret?: string | undefined;
  headers?: Readonly<Record<string, string>> | undefined;
  timeoutSeconds?: number | undefined;
  maxAttempts?: number | undefined;
}

export interface NewSubscription {
  subscription: WebhookSubscription;
  /** The secret, plain: to be shown once, when it was generated. */
  secret: string;
  isSecretGenerated: boolean;
}

/** A new secret: 24 random bytes, with a prefix that says what it is. */
export function generateWebhookSecret(): string {
  return `whsec_${randomBytes(24).toString('base64url')}`;
}

/**
 * Checks the input and builds the subscription to store (createWebhook), with a new id and the
 * secret sealed by `seal`. Throws SubscriptionInputError for the first thing wrong.
 */
export function newSubscription(input: NewSubscriptionInput, options: { seal: (secret: string) => string; nowMs?: number }): NewSubscription {
  let url: URL | undefined;
  try {
    url = new URL(input.url);
  } catch {
    url = undefined;
  }
  if (!url || (url.protocol !== 'http:' && url.protocol !== 'https:')) {
    throw new SubscriptionInputError('url', (name) => `${name} must be an http:// or https:// URL, got ${JSON.stringify(input.url)}`);
  }

  let pattern: string | null = null;
  if (input.pattern !== undefined) {
    try {
      compilePattern(input.pattern);
    } catch (err) {
      if (err instanceof EventPatternError) throw new SubscriptionInputError('pattern', (name) => `${name}: ${err.message}`);
      throw err;
    }
    // Stored without the layout it was given in.
    pattern = JSON.stringify(JSON.parse(input.pattern));
  }

  const given = input.secret;
  if (given !== undefined && given.length < MIN_SECRET_LENGTH) throw new SubscriptionInputError('secret', (name) => `${name} must be at least ${MIN_SECRET_LENGTH} characters`);
  const secret = given ?? generateWebhookSecret();

  const headers: Record<string, string> = {};
  for (const [header, value] of Object.entries(input.headers ?? {})) {
    if (!HEADER_NAME.test(header)) throw new SubscriptionInputError('headers', (name) => `${name} ${JSON.stringify(header)}: not a header name`);
    if (!HEADER_VALUE.test(value)) throw new SubscriptionInputError('headers', (name) => `${name} ${header}: the value may not contain line breaks or characters beyond Latin-1`);
    if (RESERVED_HEADERS.has(header.toLowerCase())) throw new SubscriptionInputError('headers', (name) => `${name} ${header}: Berth sets this header itself`);
    Object.defineProperty(headers, header, { value, enumerable: true, writable: true, configurable: true });
  }

  const whole = (field: 'timeoutSeconds' | 'maxAttempts', value: number | undefined, fallback: number, max: number): number => {
    if (value === undefined) return fallback;
    if (!Number.isSafeInteger(value) || value < 1 || value > max) throw new SubscriptionInputError(field, (name) => `${name} must be a whole number from 1 to ${max}`);
    return value;
  };

  const subscription: WebhookSubscription = {
    id: randomUUID(),
    accountId: input.accountId,
    url: url.href,
    pattern,
    secretSealed: options.seal(secret),
    headers,
    timeoutMs: whole('timeoutSeconds', input.timeoutSeconds, DEFAULT_TIMEOUT_MS / 1000, MAX_TIMEOUT_SECONDS) * 1000,
    maxAttempts: whole('maxAttempts', input.maxAttempts, DEFAULT_MAX_ATTEMPTS, MAX_ATTEMPTS),
    createdAtMs: options.nowMs ?? Date.now(),
    isDisabled: false,
  };
  return { subscription, secret, isSecretGenerated: given === undefined };
}

/** The reads the progress of an account's subscription needs (registry/event-subscriptions.ts). */
export interface SubscriptionLog {
  /** The subscription's account's events after `after`, oldest first. */
  readAfter(after: number, limit: number): Promise<StoredEvent[]>;
  /** Its account's events before `before`, newest first. */
  readBefore(before: number, limit: number): Promise<StoredEvent[]>;
  /** The subscription's dead letters after `afterSeq`, in sequence order. */
  deadLetters(afterSeq: number, limit: number): Promise<DeadLetter[]>;
}

const PAGE = 500;
/** Events of the account read at most, per call, to count a backlog or find recent deliveries. */
export const SCAN_LIMIT = 10_000;

function matcher(subscription: WebhookSubscription): EventPattern | undefined {
  return subscription.pattern === null ? undefined : compilePattern(subscription.pattern);
}

/**
 * The events past the cursor the subscription will deliver (its account's that its pattern
 * matches). It counts over at most SCAN_LIMIT of the account's events past the cursor: a larger
 * backlog shows as the count among those.
 */
export async function subscriptionLag(log: SubscriptionLog, subscription: WebhookSubscription, cursor: number): Promise<number> {
  const pattern = matcher(subscription);
  let after = cursor;
  let scanned = 0;
  let lag = 0;
  while (scanned < SCAN_LIMIT) {
    const batch = await log.readAfter(after, Math.min(PAGE, SCAN_LIMIT - scanned));
    for (const e of batch) if (!pattern || pattern.matches(e.body)) lag++;
    scanned += batch.length;
    if (batch.length === 0 || batch.length < PAGE) break;
    after = batch.at(-1)!.seq;
  }
  return lag;
}

export type DeliveryStatus = 'DELIVERED' | 'PENDING' | 'FAILED';

export interface DeliveryRecord {
  event: StoredEvent;
  status: DeliveryStatus;
  /** For FAILED: its dead letter. */
  deadLetter?: DeadLetter;
}

/**
 * The subscription's most recent events, newest first, at most `limit`: those of its account
 * that its pattern matches, written after it was created. At or before its cursor an event was
 * delivered, unless a dead letter says the subscription gave up on it (FAILED); after the cursor
 * it is PENDING. The subscription's start is known by time (its creation time against each
 * event's), since the store keeps no sequence number for it: an event written in the very
 * millisecond of its creation is left out rather than shown as delivered when it was not.
 * At most SCAN_LIMIT of the account's events are read.
 */
export async function recentDeliveries(log: SubscriptionLog, subscription: WebhookSubscription, cursor: number, limit: number): Promise<DeliveryRecord[]> {
  const pattern = matcher(subscription);
  const found: StoredEvent[] = [];
  let before = Number.MAX_SAFE_INTEGER;
  let scanned = 0;
  scan: while (found.length < limit && scanned < SCAN_LIMIT) {
    const batch = await log.readBefore(before, Math.min(PAGE, SCAN_LIMIT - scanned));
    for (const e of batch) {
      if (e.timeMs <= subscription.createdAtMs) break scan;
      if (!pattern || pattern.matches(e.body)) found.push(e);
      if (found.length === limit) break scan;
    }
    scanned += batch.length;
    if (batch.length < PAGE) break;
    before = batch.at(-1)!.seq;
  }
  if (found.length === 0) return [];
  const oldest = found.at(-1)!.seq;
  const letters = new Map((await log.deadLetters(oldest - 1, SCAN_LIMIT)).map((l) => [l.seq, l]));
  return found.map((event) => {
    const deadLetter = letters.get(event.seq);
    if (deadLetter) return { event, status: 'FAILED', deadLetter };
    return { event, status: event.seq <= cursor ? 'DELIVERED' : 'PENDING' };
  });
}
