/**
 * Webhook delivery signatures and retry timing. Pure, no I/O.
 *
 * The signature scheme is Stripe's webhook signature scheme ("Check the webhook signatures" in
 * Stripe's documentation), under Berth's header names, so that receivers can reuse what they know
 * and the libraries that verify it:
 *
 *     Berth-Signature: t=1700000000,v1=a0943b036d0f8946fec6bd5b6d70f5fd83778476a0976db7accad22a46b79b6f
 *     Berth-Timestamp: 1700000000
 *     Berth-Event-Id: 6a7e8feb-b491-4cf7-a9f1-bf3703467718
 *
 * (the secret `berth-example-secret` and the body `{"id":"6a7e8feb-b491-4cf7-a9f1-bf3703467718"}`;
 * signing.test.ts checks this example.)
 *
 * `t` is the time of signing in Unix seconds and each `v1` is the hex HMAC-SHA256, keyed with an
 * endpoint secret, of `${t}.${body}`: the timestamp, a full stop, then the body's exact bytes.
 * Signing the timestamp with the body is what lets a receiver refuse a captured delivery replayed
 * later. While a secret is being rotated the sender signs with every active secret, one `v1` each,
 * and a receiver accepts the delivery if any `v1` matches any secret it holds. Elements of other
 * schemes (`v0=`, a future `v2=`) are ignored, as Stripe's receivers do, so a scheme can be added
 * without breaking them.
 *
 * Berth-Timestamp repeats `t` and Berth-Event-Id repeats the event's `id` for receivers that log or
 * deduplicate before parsing; neither is signed on its own, but both are in the signed body (the
 * id) or the signature header (the time), which is what a careful receiver trusts.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';

export const SIGNATURE_HEADER = 'Berth-Signature';
export const TIMESTAMP_HEADER = 'Berth-Timestamp';
export const EVENT_ID_HEADER = 'Berth-Event-Id';

/** Stripe's default: five minutes either way. */
export const DEFAULT_TOLERANCE_SECONDS = 300;

export interface SignOptions {
  /** The endpoint's secret, or all of its active secrets while one is being rotated. */
  secret: string | readonly string[];
  /** The `id` of the event in the body. */
  eventId: string;
  /** When the delivery is signed, in epoch milliseconds; the header carries whole seconds. */
  timeMs: number;
  /** Exactly the bytes that will be sent. */
  body: string | Uint8Array;
}

export interface SignedDelivery {
  headers: Record<typeof SIGNATURE_HEADER | typeof TIMESTAMP_HEADER | typeof EVENT_ID_HEADER, string>;
}

export function signDelivery(o: SignOptions): SignedDelivery {
  const secrets = secretList(o.secret);
  if (!Number.isFinite(o.timeMs) || o.timeMs < 0) throw new RangeError(`A signing time must be a non-negative number of milliseconds, but it is ${o.timeMs}.`);
  const t = Math.floor(o.timeMs / 1000);
  const signatures = secrets.map((secret) => `v1=${hmac(secret, t, o.body).toString('hex')}`);
  return {
    headers: {
      [SIGNATURE_HEADER]: [`t=${t}`, ...signatures].join(','),
      [TIMESTAMP_HEADER]: String(t),
      [EVENT_ID_HEADER]: o.eventId,
    },
  };
}

export interface VerifyOptions {
  /** The secret the receiver holds, or several while it rotates. */
  secret: string | readonly string[];
  /** The Berth-Signature header as received; absent when the request had none. */
  header: string | undefined;
  /** The body exactly as received, before any parsing. */
  body: string | Uint8Array;
  /** How far `t` may be from now, either way. Defaults to DEFAULT_TOLERANCE_SECONDS. */
  toleranceSeconds?: number;
  /** The receiver's clock, in epoch milliseconds. Defaults to Date.now(). */
  nowMs?: number;
}

export type VerifyFailure =
  /** The header is missing, or is not a list of key=value elements with one numeric `t`. */
  | 'malformed-header'
  /** The header has no `v1` signature. */
  | 'no-signature'
  /** `t` is further from now than the tolerance: a replay, or a badly wrong clock. */
  | 'timestamp-out-of-tolerance'
  /** No `v1` is the signature of this body and time under any of the secrets. */
  | 'signature-mismatch';

export type VerifyResult =
  | { ok: true; timestampSeconds: number }
  | { ok: false; reason: VerifyFailure; message: string };

/** Checks a delivery's signature and age. Never throws for anything the sender controls. */
export function verifyDelivery(o: VerifyOptions): VerifyResult {
  const secrets = secretList(o.secret);
  const toleranceSeconds = o.toleranceSeconds ?? DEFAULT_TOLERANCE_SECONDS;
  if (!(toleranceSeconds >= 0)) throw new RangeError(`toleranceSeconds must be zero or more, but it is ${toleranceSeconds}.`);
  const parsed = parseSignatureHeader(o.header);
  if ('reason' in parsed) return parsed;
  const { t, candidates, v1Count } = parsed;

  // The signature is checked before the age, so that a stale but genuine delivery is reported as
  // stale: that tells an operator to look at clocks or queues, not at secrets.
  const expected = secrets.map((secret) => hmac(secret, t, o.body));
  let matched = false;
  for (const candidate of candidates) {
    for (const digest of expected) {
      // Both are 32 bytes (parseSignatureHeader keeps only 64-hex-digit values), as timingSafeEqual requires.
      if (timingSafeEqual(candidate, digest)) matched = true;
    }
  }
  if (!matched) {
    return failure('signature-mismatch', `none of the ${v1Count} v1 signature(s) matches the body and timestamp under the ${secrets.length} secret(s) held.`);
  }
  const nowSeconds = Math.floor((o.nowMs ?? Date.now()) / 1000);
  const ageSeconds = nowSeconds - t;
  if (Math.abs(ageSeconds) > toleranceSeconds) {
    const when = ageSeconds > 0 ? `${ageSeconds} seconds ago` : `${-ageSeconds} seconds in the future`;
    return failure('timestamp-out-of-tolerance', `the delivery was signed ${when}; at most ${toleranceSeconds} seconds either way is accepted.`);
  }
  return { ok: true, timestampSeconds: t };
}

export interface RetryOptions {
  /** The largest delay of the first retry. Default 1,000. */
  baseMs?: number;
  /** No delay exceeds this. Default 600,000 (ten minutes). */
  maxMs?: number;
  /** A source of numbers in [0, 1); tests pass a fixed one. Default Math.random. */
  random?: () => number;
}

/**
 * The delay before retrying a delivery that has failed `attempt` times (1 for the first retry):
 * exponential backoff with full jitter, a uniform pick between 0 and min(maxMs, baseMs * 2^(attempt - 1)),
 * as in the AWS Architecture Blog's "Exponential Backoff And Jitter". Full jitter spreads the
 * retries of many deliveries that failed together (an endpoint that was down) instead of sending
 * them back in waves. Whole milliseconds; the same `random` gives the same delay.
 */
export function retryDelayMs(attempt: number, options: RetryOptions = {}): number {
  const baseMs = options.baseMs ?? 1_000;
  const maxMs = options.maxMs ?? 600_000;
  const random = options.random ?? Math.random;
  if (!Number.isSafeInteger(attempt) || attempt < 1) throw new RangeError(`attempt counts failed deliveries, from 1; it is ${attempt}.`);
  if (!(baseMs > 0 && Number.isFinite(baseMs))) throw new RangeError(`baseMs must be a positive number, but it is ${baseMs}.`);
  if (!(maxMs >= baseMs && Number.isFinite(maxMs))) throw new RangeError(`maxMs must be at least baseMs (${baseMs}), but it is ${maxMs}.`);
  // 2 ** 1074 and up is Infinity, which min() turns into maxMs; no overflow to guard against.
  const ceilingMs = Math.floor(Math.min(maxMs, baseMs * 2 ** (attempt - 1)));
  const r = random();
  if (!(r >= 0 && r < 1)) throw new RangeError(`random() must return a number in [0, 1), but it returned ${r}.`);
  return Math.floor(r * (ceilingMs + 1));
}

// --- helpers -----------------------------------------------------------------------------------

function hmac(secret: string, t: number, body: string | Uint8Array): Buffer {
  return createHmac('sha256', secret).update(`${t}.`).update(body).digest();
}

function secretList(secret: string | readonly string[]): readonly string[] {
  const secrets = typeof secret === 'string' ? [secret] : secret;
  // An empty key would make every signature forgeable by anyone; refusing it is the caller's bug to fix.
  if (secrets.length === 0 || secrets.some((s) => s.length === 0)) throw new TypeError('A webhook secret must be a non-empty string.');
  return secrets;
}

type ParsedHeader = { t: number; candidates: Buffer[]; v1Count: number };

function parseSignatureHeader(header: string | undefined): ParsedHeader | Extract<VerifyResult, { ok: false }> {
  if (header === undefined || header.trim() === '') return failure('malformed-header', `the ${SIGNATURE_HEADER} header is missing.`);
  let t: number | undefined;
  const candidates: Buffer[] = [];
  let v1Count = 0;
  for (const element of header.split(',')) {
    const at = element.indexOf('=');
    if (at <= 0) return failure('malformed-header', `${JSON.stringify(element.trim())} is not a key=value element.`);
    const key = element.slice(0, at).trim();
    const value = element.slice(at + 1).trim();
    if (key === 't') {
      if (t !== undefined) return failure('malformed-header', 'the header has more than one t element.');
      if (!/^\d{1,15}$/.test(value)) return failure('malformed-header', `t must be a whole number of Unix seconds, but it is ${JSON.stringify(value)}.`);
      t = Number(value);
    } else if (key === 'v1') {
      v1Count++;
      // A value that is not 64 hex digits cannot be an HMAC-SHA256; it simply never matches.
      if (/^[0-9a-fA-F]{64}$/.test(value)) candidates.push(Buffer.from(value, 'hex'));
    }
  }
  if (t === undefined) return failure('malformed-header', 'the header has no t element.');
  if (v1Count === 0) return failure('no-signature', 'the header has no v1 signature.');
  return { t, candidates, v1Count };
}

function failure(reason: VerifyFailure, message: string): Extract<VerifyResult, { ok: false }> {
  return { ok: false, reason, message };
}
