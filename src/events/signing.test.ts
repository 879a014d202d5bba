import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { describe, test } from 'node:test';
import { DEFAULT_TOLERANCE_SECONDS, retryDelayMs, signDelivery, verifyDelivery, type VerifyResult } from './signing.ts';

const SECRET = 'whsec-test-0123456789';
const EVENT_ID = '0f8fad5b-d9cb-469f-a165-70867728950e';
const BODY = JSON.stringify({ version: '0', id: EVENT_ID, 'detail-type': 'ECR Image Action', detail: { 'image-tag': 'café' } });
const T_MS = 1_700_000_000_250;

function sign(secret: string | string[] = SECRET, body: string | Uint8Array = BODY, timeMs = T_MS) {
  return signDelivery({ secret, eventId: EVENT_ID, timeMs, body }).headers;
}

function reason(result: VerifyResult): string {
  return result.ok ? 'ok' : result.reason;
}

describe('signDelivery', () => {
  test('produces the Stripe-style header, the timestamp and the event id', () => {
    const headers = sign();
    // Whole seconds: the fraction of the signing time is dropped.
    assert.equal(headers['Berth-Timestamp'], '1700000000');
    assert.equal(headers['Berth-Event-Id'], EVENT_ID);
    // Computed here independently of the module: HMAC-SHA256 over "t.body", in hex.
    const expected = createHmac('sha256', SECRET).update(`1700000000.${BODY}`, 'utf8').digest('hex');
    assert.equal(headers['Berth-Signature'], `t=1700000000,v1=${expected}`);
  });

  test('reproduces the example in the module comment (computed with openssl dgst -sha256 -hmac)', () => {
    const headers = signDelivery({
      secret: 'berth-example-secret',
      eventId: '6a7e8feb-b491-4cf7-a9f1-bf3703467718',
      timeMs: 1_700_000_000_000,
      body: '{"id":"6a7e8feb-b491-4cf7-a9f1-bf3703467718"}',
    }).headers;
    assert.equal(headers['Berth-Signature'], 't=1700000000,v1=a0943b036d0f8946fec6bd5b6d70f5fd83778476a0976db7accad22a46b79b6f');
  });

  test('signs bytes and the same text alike', () => {
    assert.deepEqual(sign(SECRET, Buffer.from(BODY, 'utf8')), sign(SECRET, BODY));
  });

  test('signs once per secret while a secret rotates', () => {
    const header = sign(['old-secret', 'new-secret'])['Berth-Signature'];
    const parts = header.split(',');
    assert.equal(parts.length, 3);
    assert.equal(parts[0], 't=1700000000');
    assert.equal(parts[1], sign('old-secret')['Berth-Signature'].split(',')[1]);
    assert.equal(parts[2], sign('new-secret')['Berth-Signature'].split(',')[1]);
  });

  test('refuses an empty secret and a bad time', () => {
    assert.throws(() => sign(''), TypeError);
    assert.throws(() => sign([]), TypeError);
    assert.throws(() => sign(['ok', '']), TypeError);
    assert.throws(() => sign(SECRET, BODY, Number.NaN), RangeError);
  });
});

describe('verifyDelivery', () => {
  const nowMs = T_MS + 10_000;

  test('accepts what signDelivery signed', () => {
    const header = sign()['Berth-Signature'];
    assert.deepEqual(verifyDelivery({ secret: SECRET, header, body: BODY, nowMs }), { ok: true, timestampSeconds: 1_700_000_000 });
    assert.equal(reason(verifyDelivery({ secret: SECRET, header, body: Buffer.from(BODY), nowMs })), 'ok');
  });

  test('refuses a tampered body', () => {
    const header = sign()['Berth-Signature'];
    const tampered = BODY.replace('café', 'cafe');
    assert.equal(reason(verifyDelivery({ secret: SECRET, header, body: tampered, nowMs })), 'signature-mismatch');
    assert.equal(reason(verifyDelivery({ secret: SECRET, header, body: `${BODY} `, nowMs })), 'signature-mismatch');
  });

  test('refuses the wrong secret', () => {
    const header = sign()['Berth-Signature'];
    const result = verifyDelivery({ secret: 'another-secret', header, body: BODY, nowMs });
    assert.equal(reason(result), 'signature-mismatch');
    assert.ok(!result.ok && result.message.length > 0);
  });

  test('refuses a timestamp that was changed, since it is signed too', () => {
    const header = sign()['Berth-Signature'].replace('t=1700000000', 't=1700000009');
    assert.equal(reason(verifyDelivery({ secret: SECRET, header, body: BODY, nowMs })), 'signature-mismatch');
  });

  test('refuses a replay older than the tolerance, and a timestamp as far in the future', () => {
    const header = sign()['Berth-Signature'];
    const signedAtMs = 1_700_000_000_000;
    const at = (offsetSeconds: number, toleranceSeconds?: number) =>
      reason(verifyDelivery({ secret: SECRET, header, body: BODY, nowMs: signedAtMs + offsetSeconds * 1000, ...(toleranceSeconds === undefined ? {} : { toleranceSeconds }) }));
    assert.equal(DEFAULT_TOLERANCE_SECONDS, 300);
    assert.equal(at(300), 'ok');
    assert.equal(at(301), 'timestamp-out-of-tolerance');
    assert.equal(at(-300), 'ok');
    assert.equal(at(-301), 'timestamp-out-of-tolerance');
    assert.equal(at(3600, 3600), 'ok');
    assert.equal(at(3601, 3600), 'timestamp-out-of-tolerance');
    assert.equal(at(1, 0), 'timestamp-out-of-tolerance');
    assert.equal(at(0, 0), 'ok');
  });

  test('accepts either secret during a rotation, on either side', () => {
    // The sender holds both secrets; a receiver still on the old one, or already on the new one, accepts.
    const both = sign(['old-secret', 'new-secret'])['Berth-Signature'];
    assert.equal(reason(verifyDelivery({ secret: 'old-secret', header: both, body: BODY, nowMs })), 'ok');
    assert.equal(reason(verifyDelivery({ secret: 'new-secret', header: both, body: BODY, nowMs })), 'ok');
    assert.equal(reason(verifyDelivery({ secret: 'other-secret', header: both, body: BODY, nowMs })), 'signature-mismatch');
    // The receiver holds both; a sender on either one is accepted.
    const oldOnly = sign('old-secret')['Berth-Signature'];
    assert.equal(reason(verifyDelivery({ secret: ['new-secret', 'old-secret'], header: oldOnly, body: BODY, nowMs })), 'ok');
  });

  test('ignores schemes it does not know and v1 values that cannot be signatures', () => {
    const [t, v1] = sign()['Berth-Signature'].split(',');
    const header = `${t},v0=${'0'.repeat(64)},v1=not-hex,v1=${'f'.repeat(63)},${v1},v2=whatever`;
    assert.equal(reason(verifyDelivery({ secret: SECRET, header, body: BODY, nowMs })), 'ok');
    assert.equal(reason(verifyDelivery({ secret: SECRET, header: ` ${t} , ${v1!.toUpperCase().replace('V1=', 'v1=')} `, body: BODY, nowMs })), 'ok');
    assert.equal(reason(verifyDelivery({ secret: SECRET, header: `${t},v1=not-hex`, body: BODY, nowMs })), 'signature-mismatch');
  });

  test('names what is wrong with a malformed header', () => {
    const v1 = sign()['Berth-Signature'].split(',')[1]!;
    const cases: [string | undefined, string][] = [
      [undefined, 'malformed-header'],
      ['', 'malformed-header'],
      ['garbage', 'malformed-header'],
      [v1, 'malformed-header'],
      [`t=,${v1}`, 'malformed-header'],
      [`t=17e8,${v1}`, 'malformed-header'],
      [`t=-1700000000,${v1}`, 'malformed-header'],
      [`t=1700000000,t=1700000000,${v1}`, 'malformed-header'],
      [`t=1700000000,,${v1}`, 'malformed-header'],
      [`=x,t=1700000000,${v1}`, 'malformed-header'],
      ['t=1700000000', 'no-signature'],
      [`t=1700000000,v0=${'0'.repeat(64)}`, 'no-signature'],
    ];
    for (const [header, expected] of cases) {
      const result = verifyDelivery({ secret: SECRET, header, body: BODY, nowMs });
      assert.equal(reason(result), expected, `header ${JSON.stringify(header)}`);
      assert.ok(!result.ok && result.message.length > 0);
    }
  });

  test('refuses an empty secret and a negative tolerance, which are the receiver’s own bugs', () => {
    const header = sign()['Berth-Signature'];
    assert.throws(() => verifyDelivery({ secret: '', header, body: BODY, nowMs }), TypeError);
    assert.throws(() => verifyDelivery({ secret: SECRET, header, body: BODY, nowMs, toleranceSeconds: -1 }), RangeError);
  });
});

describe('retryDelayMs', () => {
  const options = { baseMs: 1_000, maxMs: 60_000 };

  test('is 0 to min(maxMs, baseMs * 2^(attempt - 1)), inclusive', () => {
    const ceilings = [1_000, 2_000, 4_000, 8_000, 16_000, 32_000, 60_000, 60_000];
    for (const [i, ceiling] of ceilings.entries()) {
      const attempt = i + 1;
      assert.equal(retryDelayMs(attempt, { ...options, random: () => 0 }), 0, `attempt ${attempt}, lowest`);
      assert.equal(retryDelayMs(attempt, { ...options, random: () => 1 - Number.EPSILON }), ceiling, `attempt ${attempt}, highest`);
    }
  });

  test('the ceiling doubles with each attempt until the cap, and stays there however many attempts fail', () => {
    const half = (attempt: number) => retryDelayMs(attempt, { ...options, random: () => 0.5 });
    assert.deepEqual([1, 2, 3, 4, 5, 6].map(half), [500, 1_000, 2_000, 4_000, 8_000, 16_000]);
    assert.equal(half(7), 30_000);
    assert.equal(half(1_000), 30_000);
    assert.equal(half(Number.MAX_SAFE_INTEGER), 30_000);
  });

  test('spreads delays uniformly over the range', () => {
    // A deterministic stand-in for Math.random: an evenly spaced sweep of [0, 1).
    const n = 1_000;
    let k = 0;
    const sweep = () => k++ / n;
    const delays = Array.from({ length: n }, () => retryDelayMs(3, { ...options, random: sweep }));
    assert.equal(Math.min(...delays), 0);
    assert.ok(Math.max(...delays) <= 4_000 && Math.max(...delays) >= 3_990);
    const belowHalf = delays.filter((d) => d < 2_000).length;
    assert.equal(belowHalf, 500);
  });

  test('is deterministic given the random source', () => {
    const fixed = () => 0.123456;
    assert.equal(retryDelayMs(5, { ...options, random: fixed }), retryDelayMs(5, { ...options, random: fixed }));
    assert.equal(retryDelayMs(5, { ...options, random: fixed }), Math.floor(0.123456 * 16_001));
  });

  test('has working defaults', () => {
    const delay = retryDelayMs(1);
    assert.ok(Number.isInteger(delay) && delay >= 0 && delay <= 1_000);
    assert.equal(retryDelayMs(100, { random: () => 1 - Number.EPSILON }), 600_000);
  });

  test('refuses nonsense', () => {
    assert.throws(() => retryDelayMs(0, options), RangeError);
    assert.throws(() => retryDelayMs(1.5, options), RangeError);
    assert.throws(() => retryDelayMs(1, { baseMs: 0 }), RangeError);
    assert.throws(() => retryDelayMs(1, { baseMs: 1_000, maxMs: 999 }), RangeError);
    assert.throws(() => retryDelayMs(1, { ...options, random: () => 1 }), RangeError);
    assert.throws(() => retryDelayMs(1, { ...options, random: () => Number.NaN }), RangeError);
  });
});
