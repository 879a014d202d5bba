import { createHash, createHmac, createSecretKey, type Hash as CryptoHash, type Hmac, type KeyObject, timingSafeEqual } from 'node:crypto';
import { HttpRequest } from '@smithy/protocol-http';
import { getCanonicalHeaders, SignatureV4 } from '@smithy/signature-v4';

/**
 * Server-side verification of AWS Signature Version 4 (header and presigned-query forms).
 *
 * The signature is recomputed with the same signer the AWS SDK for JavaScript uses
 * (`@smithy/signature-v4`, configured as the SDK's ECR, IAM and STS clients configure it, with a
 * faster but equivalent `sha256` and a signing-key LRU, see below), fed a request rebuilt from what
 * arrived: only the headers named in SignedHeaders, the raw path, the decoded query. The wire form of the path is what the client's signer saw, and with
 * `uriEscapePath` (the SDK default for every service but S3, and what botocore does too) both
 * sides escape it once more, so `/a%20b` is canonicalised as `/a%2520b` on both ends.
 *
 * Where `sign()`/`presign()` would rewrite what the client signed, the inputs are arranged so that
 * the rewrite reproduces the original: the signing date is the request's own X-Amz-Date, the
 * session token and X-Amz-Content-Sha256 are left to the headers (never injected), unsignable
 * headers the client did sign are passed as signable, and in presigned requests signed `x-amz-*`
 * headers are kept out of the query. The one case smithy cannot reproduce is a signed `Date`
 * header (its `prepareRequest` deletes it): such requests go through `canonicalSignature`, which
 * still uses smithy's canonicalisation but computes the HMAC here.
 *
 * Check order and messages follow what AWS's JSON services answer (recorded in mhart/dynalite's
 * index.js) and STS/IAM's Query errors; see `sigV4ErrorFor` for the codes.
 */

export interface IncomingSignedRequest {
  method: string;
  /** The raw request target as received: path plus query string, e.g. "/?Action=GetCallerIdentity&Version=2011-06-15". */
  url: string;
  /** Lower-case header names as Node gives them (IncomingHttpHeaders). */
  headers: Record<string, string | string[] | undefined>;
  /** The full request body (these APIs have small bodies; the caller buffers them). */
  body: Uint8Array;
}

export interface SigningCredentials {
  accessKeyId: string;
  secretAccessKey: string;
  sessionToken?: string | undefined;
}

/** What the caller's credential store answers for an access key id (and session token, if one was sent). */
export type CredentialLookup = (
  accessKeyId: string,
  sessionToken: string | undefined,
) => Promise<
  | { status: 'ok'; secretAccessKey: string; /** opaque to this module, returned in the result */ identity: unknown }
  | { status: 'unknown' } // no such key (or inactive key - the caller decides)
  | { status: 'expired' } // temporary credentials past their expiry
  | { status: 'invalid-token' } // session token missing/forged/not matching the key, or sent with a long-term key
>;

export type SigV4Failure =
  | 'missing-authentication' // no Authorization header and no X-Amz-Signature query param
  | 'incomplete-signature' // malformed Authorization header / missing parts (Credential, SignedHeaders, Signature), malformed credential scope
  | 'unknown-key'
  | 'invalid-token'
  | 'expired-token'
  | 'signature-mismatch' // also: scope with a wrong region, terminator or date, Host or the date header not signed (AWS's InvalidSignatureException)
  | 'request-expired' // X-Amz-Date outside the allowed clock skew (header auth), or presigned URL past X-Amz-Expires
  | 'wrong-service' // scope's service is not one of the expected services
  | 'unsupported-algorithm'; // not AWS4-HMAC-SHA256

export type SigV4Result =
  | { ok: true; accessKeyId: string; identity: unknown; region: string; service: string; signedAt: Date }
  | { ok: false; failure: SigV4Failure; message: string }; // message in AWS's wording where AWS has one

export interface VerifyOptions {
  /** Services this endpoint accepts in the credential scope, e.g. ['ecr'] or ['iam','sts']. */
  services: string[];
  /**
   * The region the server serves; a scope with another region fails as AWS does. IAM is global
   * and AWS's own endpoint is signed for us-east-1, so for service 'iam' us-east-1 is accepted too
   * (SDK clients pointed at a custom endpoint sign IAM with their configured region instead).
   */
  region: string;
  /** Allowed clock skew, default 15 minutes (AWS). */
  maxSkewMs?: number;
  now?: () => number;
  lookup: CredentialLookup;
}

const ALGORITHM = 'AWS4-HMAC-SHA256';
const TERMINATOR = 'aws4_request';
const DEFAULT_MAX_SKEW_MS = 15 * 60_000;
/** Presigned URLs live at most a week (the signing key is valid for 7 days); smithy refuses more. */
const MAX_EXPIRES_SECONDS = 7 * 24 * 3600;
/**
 * smithy clones the query with an object spread per key, which is quadratic: 3,000 keys cost a
 * second of CPU, before the signature is checked. ECR, IAM and STS requests carry a handful.
 */
const MAX_QUERY_PARAMS = 100;
const SIGNING_KEY_CACHE_SIZE = 1000;

const MSG_MISSING_TOKEN = 'Missing Authentication Token';
const MSG_MISMATCH =
  'The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method. Consult the service documentation for details.';
const MSG_INVALID_TOKEN = 'The security token included in the request is invalid.';
const MSG_EXPIRED_TOKEN = 'The security token included in the request is expired';

// --- signing keys -----------------------------------------------------------------------

/**
 * Derived signing keys, LRU by access key, date, region and service. smithy keeps its own cache,
 * but it is a module-wide FIFO of 50 entries and spends an HMAC per call just to build its cache
 * key; past 50 active principals every request pays the four-HMAC derivation again. CPU time per
 * verification of one ECR request: 30 µs as written, 45 µs with smithy's Hash instead of `Sha256`,
 * 66 µs with smithy's cache as well, 129 µs with that and 200 keys taking turns.
 */
const signingKeys = new Map<string, { secret: string; key: Buffer }>();

/**
 * The KeyObject of each cached key, for `Sha256`: Node 24's createHmac spends ~12 µs importing a
 * Buffer key and ~2 µs given a KeyObject, a quarter of a whole verification.
 */
const keyObjects = new WeakMap<object, KeyObject>();

function signingKey(accessKeyId: string, secret: string, shortDate: string, region: string, service: string): Buffer {
  const cacheKey = `${accessKeyId}\n${shortDate}\n${region}\n${service}`;
  const hit = signingKeys.get(cacheKey);
  signingKeys.delete(cacheKey);
  // The secret is compared too, so a rotated secret (same key id) never uses a stale key.
  if (hit !== undefined && hit.secret === secret) {
    signingKeys.set(cacheKey, hit);
    return hit.key;
  }
  let key: string | KeyObject = `AWS4${secret}`;
  for (const part of [shortDate, region, service]) key = createSecretKey(createHmac('sha256', key).update(part).digest());
  const bytes = createHmac('sha256', key).update(TERMINATOR).digest();
  keyObjects.set(bytes, createSecretKey(bytes));
  signingKeys.set(cacheKey, { secret, key: bytes });
  if (signingKeys.size > SIGNING_KEY_CACHE_SIZE) signingKeys.delete(signingKeys.keys().next().value!);
  return bytes;
}

function sha256Hex(data: string | Uint8Array): string {
  return createHash('sha256').update(data).digest('hex');
}

type SourceData = string | ArrayBuffer | ArrayBufferView;

/**
 * The signer's `sha256`: what the SDK's `Hash.bind(null, "sha256")` from @smithy/hash-node does
 * (createHash, or createHmac keyed with the secret), except that a cached signing key is used
 * through its KeyObject.
 */
class Sha256 {
  private readonly secret: SourceData | undefined;
  private hash: CryptoHash | Hmac;

  constructor(secret?: SourceData) {
    this.secret = secret;
    this.hash = Sha256.start(secret);
  }

  private static start(secret: SourceData | undefined): CryptoHash | Hmac {
    if (secret === undefined) return createHash('sha256');
    if (typeof secret === 'string') return createHmac('sha256', secret);
    const bytes = ArrayBuffer.isView(secret) ? new Uint8Array(secret.buffer, secret.byteOffset, secret.byteLength) : new Uint8Array(secret);
    return createHmac('sha256', keyObjects.get(secret) ?? bytes);
  }

  update(chunk: SourceData): void {
    this.hash.update(typeof chunk === 'string' ? chunk : ArrayBuffer.isView(chunk) ? new Uint8Array(chunk.buffer, chunk.byteOffset, chunk.byteLength) : new Uint8Array(chunk));
  }

  digest(): Promise<Uint8Array> {
    return Promise.resolve(this.hash.digest());
  }

  reset(): void {
    this.hash = Sha256.start(this.secret);
  }
}

interface SignerCredentials {
  accessKeyId: string;
  secretAccessKey: string;
}

class VerifyingSigner extends SignatureV4 {
  /** Replaces smithy's private `getSigningKey` (installed below), same arguments. */
  cachedSigningKey(credentials: SignerCredentials, region: string, shortDate: string, service?: string): Promise<Uint8Array> {
    return Promise.resolve(signingKey(credentials.accessKeyId, credentials.secretAccessKey, shortDate, region, service ?? this.service));
  }

  /** smithy's canonical request for exactly these headers; its `createCanonicalRequest` is protected. */
  canonicalRequest(request: HttpRequest, signedHeaders: Set<string>, payloadHash: string): string {
    return this.createCanonicalRequest(request, getCanonicalHeaders(request, undefined, signedHeaders), payloadHash);
  }
}

// smithy's signRequest and presign derive keys through `this.getSigningKey(...)`, a private
// method, so it cannot be overridden in TypeScript. Should a smithy release rename it, this
// assignment is inert and smithy's own derivation runs: slower, never wrong. sigv4.test.ts
// checks that the name is still the one smithy calls.
Object.defineProperty(VerifyingSigner.prototype, 'getSigningKey', {
  value: VerifyingSigner.prototype.cachedSigningKey,
  writable: true,
  configurable: true,
});

// --- parsing ----------------------------------------------------------------------------

type Query = Record<string, string | string[]>;

type Fail = { ok: false; failure: SigV4Failure; message: string };

function fail(failure: SigV4Failure, message: string): Fail {
  return { ok: false, failure, message };
}

function headerValue(headers: IncomingSignedRequest['headers'], name: string): string | undefined {
  if (!Object.hasOwn(headers, name)) return undefined;
  const value = headers[name];
  // Node joins repeated headers with ", " (AWS's canonical form joins them with ","), so only
  // single-valued headers round-trip; an array only comes from a caller that kept them apart.
  return Array.isArray(value) ? value.join(',') : value;
}

/** Splits the request target; an absolute-form target (`http://host/path`) keeps only the path. */
function splitTarget(url: string): { path: string; rawQuery: string } {
  let target = url;
  if (!target.startsWith('/')) {
    const scheme = /^[a-z][a-z0-9+.-]*:\/\/[^/?]*/i.exec(target);
    if (scheme !== null) target = target.slice(scheme[0].length);
  }
  const q = target.indexOf('?');
  return q < 0 ? { path: target || '/', rawQuery: '' } : { path: target.slice(0, q) || '/', rawQuery: target.slice(q + 1) };
}

/**
 * Decodes the query the way smithy holds it before signing (keys and values decoded, repeated
 * keys as arrays); smithy re-encodes with AWS's URI encoding. A null-prototype object, so a
 * `__proto__` parameter stays a parameter. Undefined when a percent escape is malformed.
 */
function parseQuery(rawQuery: string): { query: Query; count: number } | undefined {
  const query: Query = Object.create(null) as Query;
  let count = 0;
  if (rawQuery === '') return { query, count };
  for (const pair of rawQuery.split('&')) {
    if (pair === '') continue;
    const eq = pair.indexOf('=');
    let key: string;
    let value: string;
    try {
      key = decodeURIComponent(eq < 0 ? pair : pair.slice(0, eq));
      value = eq < 0 ? '' : decodeURIComponent(pair.slice(eq + 1));
    } catch {
      return undefined;
    }
    count++;
    const existing = query[key];
    if (existing === undefined) query[key] = value;
    else if (Array.isArray(existing)) existing.push(value);
    else query[key] = [existing, value];
  }
  return { query, count };
}

interface Scope {
  accessKeyId: string;
  date: string;
  region: string;
  service: string;
  terminator: string;
}

function parseCredential(credential: string): Scope | undefined {
  const parts = credential.split('/');
  if (parts.length !== 5) return undefined;
  const [accessKeyId, date, region, service, terminator] = parts as [string, string, string, string, string];
  return { accessKeyId, date, region, service, terminator };
}

/** `AWS4-HMAC-SHA256 Credential=..., SignedHeaders=..., Signature=...` */
function parseAuthorization(value: string): { algorithm: string; params: Map<string, string> } | Fail {
  const trimmed = value.trim();
  const space = trimmed.search(/\s/);
  const algorithm = space < 0 ? trimmed : trimmed.slice(0, space);
  const params = new Map<string, string>();
  if (space >= 0) {
    for (const part of trimmed.slice(space + 1).split(',')) {
      const item = part.trim();
      if (item === '') continue;
      const eq = item.indexOf('=');
      // AWS quotes the offending text and the whole header; neither is echoed here, so that a
      // signature never reaches a log through an error message.
      if (eq < 0) return fail('incomplete-signature', 'An Authorization header parameter is not a valid key=value pair (missing equal-sign).');
      const key = item.slice(0, eq).trim();
      if (params.has(key)) return fail('incomplete-signature', `Authorization header has more than one '${key}' parameter.`);
      params.set(key, item.slice(eq + 1).trim());
    }
  }
  return { algorithm, params };
}

const ISO_BASIC = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/;

function formatIsoBasic(ms: number): string {
  return new Date(ms).toISOString().replace(/[-:]|\.\d{3}/g, '');
}

/** Milliseconds for `YYYYMMDDTHHMMSSZ`; undefined unless it is a real instant written canonically. */
function parseIsoBasic(value: string): number | undefined {
  const m = ISO_BASIC.exec(value);
  if (m === null) return undefined;
  const ms = Date.UTC(+m[1]!, +m[2]! - 1, +m[3]!, +m[4]!, +m[5]!, +m[6]!);
  // Rejects 20240230T..., 24:00:00 and the like, which Date.UTC would roll over.
  return formatIsoBasic(ms) === value ? ms : undefined;
}

/** The `Date` header, used only without X-Amz-Date: ISO 8601 basic, or the HTTP form (`Mon, 09 Sep 2011 23:36:00 GMT`). */
function parseDateHeader(value: string): number | undefined {
  const iso = parseIsoBasic(value);
  if (iso !== undefined) return iso;
  if (!/GMT$/.test(value)) return undefined;
  const ms = Date.parse(value);
  return Number.isFinite(ms) && ms % 1000 === 0 ? ms : undefined;
}

const badDateMessage = (value: string) => `Date must be in ISO-8601 'basic format'. Got '${value}'. See http://en.wikipedia.org/wiki/ISO_8601`;

/** Everything the signature check needs, from either form. */
interface Claim {
  isPresigned: boolean;
  scope: Scope;
  /** Lower-cased, the form the spec prescribes; a client that wrote other case signed something else and fails. */
  signedHeaders: string[];
  signature: string;
  signedAtMs: number;
  sessionToken: string | undefined;
  expiresSeconds: number;
}

function claimFromHeader(req: IncomingSignedRequest, authorization: string, nowMs: number, maxSkewMs: number): Claim | Fail {
  const parsed = parseAuthorization(authorization);
  if ('ok' in parsed) return parsed;
  const { algorithm, params } = parsed;
  const credential = params.get('Credential');
  const signedHeaders = params.get('SignedHeaders');
  const signature = params.get('Signature');
  const amzDate = headerValue(req.headers, 'x-amz-date');
  const httpDate = headerValue(req.headers, 'date');
  const missing: string[] = [];
  if (!credential) missing.push("Authorization header requires 'Credential' parameter.");
  if (!signature) missing.push("Authorization header requires 'Signature' parameter.");
  if (!signedHeaders) missing.push("Authorization header requires 'SignedHeaders' parameter.");
  if (!amzDate && !httpDate) missing.push("Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header.");
  if (!credential || !signature || !signedHeaders || (!amzDate && !httpDate)) return fail('incomplete-signature', missing.join(' '));

  const signedAtMs = amzDate ? parseIsoBasic(amzDate) : parseDateHeader(httpDate!);
  if (signedAtMs === undefined) return fail('incomplete-signature', badDateMessage((amzDate || httpDate)!));
  const skew = checkSkew(signedAtMs, nowMs, maxSkewMs);
  if (skew !== undefined) return skew;

  const names = signedHeaders.split(';').map((name) => name.toLowerCase());
  if (!names.includes('host') && !names.includes(':authority')) {
    return fail('signature-mismatch', "'Host' must be a 'SignedHeader' in the AWS Authorization.");
  }
  // AWS requires the header that dates the request to be signed; smithy would sign it regardless.
  const dateHeader = amzDate ? 'x-amz-date' : 'date';
  if (!names.includes(dateHeader)) {
    return fail('signature-mismatch', `'${amzDate ? 'X-Amz-Date' : 'Date'}' must be a 'SignedHeader' in the AWS Authorization.`);
  }
  if (algorithm !== ALGORITHM) return fail('unsupported-algorithm', `Unsupported AWS 'algorithm': '${algorithm}' (only ${ALGORITHM} for now).`);

  const scope = parseCredential(credential);
  if (scope === undefined) {
    return fail('incomplete-signature', `Credential must have exactly 5 slash-delimited elements, e.g. keyid/date/region/service/term, got '${credential}'`);
  }
  return {
    isPresigned: false,
    scope,
    signedHeaders: names,
    signature,
    signedAtMs,
    sessionToken: headerValue(req.headers, 'x-amz-security-token') || undefined,
    expiresSeconds: 0,
  };
}

function checkSkew(signedAtMs: number, nowMs: number, maxSkewMs: number): Fail | undefined {
  if (signedAtMs < nowMs - maxSkewMs) {
    return fail('request-expired', `Signature expired: ${formatIsoBasic(signedAtMs)} is now earlier than ${formatIsoBasic(nowMs - maxSkewMs)} (${formatIsoBasic(nowMs)} - ${skewText(maxSkewMs)})`);
  }
  return notYetCurrent(signedAtMs, nowMs, maxSkewMs);
}

function notYetCurrent(signedAtMs: number, nowMs: number, maxSkewMs: number): Fail | undefined {
  if (signedAtMs <= nowMs + maxSkewMs) return undefined;
  return fail('request-expired', `Signature not yet current: ${formatIsoBasic(signedAtMs)} is still later than ${formatIsoBasic(nowMs + maxSkewMs)} (${formatIsoBasic(nowMs)} + ${skewText(maxSkewMs)})`);
}

const skewText = (maxSkewMs: number) => `${Math.round(maxSkewMs / 60_000)} min.`;

const QUERY_AUTH_PARAMS = ['X-Amz-Algorithm', 'X-Amz-Credential', 'X-Amz-Date', 'X-Amz-SignedHeaders', 'X-Amz-Signature', 'X-Amz-Expires'] as const;

function claimFromQuery(query: Query, nowMs: number, maxSkewMs: number): Claim | Fail {
  const values = new Map<string, string>();
  const problems: string[] = [];
  for (const name of QUERY_AUTH_PARAMS) {
    const value = query[name];
    if (Array.isArray(value)) problems.push(`AWS query-string parameters must include '${name}' only once.`);
    else if (!value) problems.push(`AWS query-string parameters must include '${name}'.`);
    else values.set(name, value);
  }
  const algorithm = values.get('X-Amz-Algorithm');
  if (algorithm !== undefined && algorithm !== ALGORITHM) {
    return fail('unsupported-algorithm', `Unsupported AWS 'algorithm': '${algorithm}' (only ${ALGORITHM} for now).`);
  }
  if (problems.length > 0) return fail('incomplete-signature', `${problems.join(' ')} Re-examine the query-string parameters.`);
  const credential = values.get('X-Amz-Credential')!;
  const amzDate = values.get('X-Amz-Date')!;
  const expires = values.get('X-Amz-Expires')!;
  const signedAtMs = parseIsoBasic(amzDate);
  if (signedAtMs === undefined) return fail('incomplete-signature', badDateMessage(amzDate));
  // Canonical decimal only: presign() writes the value back with toString(), which must reproduce it.
  if (!/^[1-9]\d{0,6}$/.test(expires) || Number(expires) > MAX_EXPIRES_SECONDS) {
    return fail('incomplete-signature', `X-Amz-Expires must be a whole number of seconds from 1 to ${MAX_EXPIRES_SECONDS} (a week), got '${expires}'.`);
  }
  const expiresSeconds = Number(expires);
  const early = notYetCurrent(signedAtMs, nowMs, maxSkewMs);
  if (early !== undefined) return early;
  // Presigned URLs are held to X-Amz-Expires, as S3 does. (STS itself is reported to ignore it and
  // allow 15 minutes from X-Amz-Date: aws/aws-sdk-go#2167.)
  if (nowMs > signedAtMs + expiresSeconds * 1000) {
    return fail('request-expired', `Request has expired: signed at ${amzDate} for ${expiresSeconds} seconds, now ${formatIsoBasic(nowMs)}.`);
  }
  const names = values.get('X-Amz-SignedHeaders')!.split(';').map((name) => name.toLowerCase());
  if (!names.includes('host') && !names.includes(':authority')) {
    return fail('signature-mismatch', "'Host' must be a 'SignedHeader' in the AWS Authorization.");
  }
  const scope = parseCredential(credential);
  if (scope === undefined) {
    return fail('incomplete-signature', `Credential must have exactly 5 slash-delimited elements, e.g. keyid/date/region/service/term, got '${credential}'`);
  }
  const token = query['X-Amz-Security-Token'];
  if (Array.isArray(token)) return fail('incomplete-signature', "AWS query-string parameters must include 'X-Amz-Security-Token' only once.");
  return {
    isPresigned: true,
    scope,
    signedHeaders: names,
    signature: values.get('X-Amz-Signature')!,
    signedAtMs,
    sessionToken: token || undefined,
    expiresSeconds,
  };
}

/** AWS reports every scope problem at once, as InvalidSignatureException / SignatureDoesNotMatch. */
function checkScope(scope: Scope, signedAtMs: number, options: VerifyOptions): Fail | undefined {
  const problems: string[] = [];
  const regionOk = scope.region === options.region || (scope.service === 'iam' && scope.region === 'us-east-1');
  if (!regionOk) problems.push(`Credential should be scoped to a valid region, not '${scope.region}'. This endpoint serves '${options.region}'.`);
  const serviceOk = options.services.includes(scope.service);
  if (!serviceOk) problems.push(`Credential should be scoped to correct service: '${options.services.join("' or '")}'.`);
  if (scope.terminator !== TERMINATOR) problems.push(`Credential should be scoped with a valid terminator: '${TERMINATOR}', not '${scope.terminator}'.`);
  const longDate = formatIsoBasic(signedAtMs);
  if (scope.date !== longDate.slice(0, 8)) {
    problems.push(`Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: '${scope.date}' != '${longDate.slice(0, 8)}', from '${longDate}'.`);
  }
  if (problems.length === 0) return undefined;
  return fail(serviceOk ? 'signature-mismatch' : 'wrong-service', problems.join(' '));
}

// --- API --------------------------------------------------------------------------------

/**
 * Parses only the scope without verifying: which service/access key a request claims (for routing one
 * endpoint between ECR, IAM and STS before verifying). Undefined when unsigned or malformed.
 */
export function peekSigV4(req: Pick<IncomingSignedRequest, 'url' | 'headers'>): { accessKeyId: string; region: string; service: string } | undefined {
  let credential: string | undefined;
  const authorization = headerValue(req.headers, 'authorization');
  if (authorization) {
    const match = /(?:^|[\s,])Credential=([^,\s]*)/.exec(authorization);
    credential = match?.[1];
  } else {
    const { rawQuery } = splitTarget(req.url);
    for (const pair of rawQuery.split('&')) {
      if (!pair.startsWith('X-Amz-Credential=')) continue;
      try {
        credential = decodeURIComponent(pair.slice('X-Amz-Credential='.length));
      } catch {
        return undefined;
      }
      break;
    }
  }
  const scope = credential === undefined ? undefined : parseCredential(credential);
  if (scope === undefined || scope.accessKeyId === '') return undefined;
  return { accessKeyId: scope.accessKeyId, region: scope.region, service: scope.service };
}

export async function verifySigV4(req: IncomingSignedRequest, options: VerifyOptions): Promise<SigV4Result> {
  const nowMs = options.now?.() ?? Date.now();
  const maxSkewMs = options.maxSkewMs ?? DEFAULT_MAX_SKEW_MS;
  const { path, rawQuery } = splitTarget(req.url);
  const parsedQuery = parseQuery(rawQuery);
  if (parsedQuery === undefined) return fail('incomplete-signature', 'The query string contains a malformed percent-encoded sequence.');
  const { query } = parsedQuery;
  const authorization = headerValue(req.headers, 'authorization');
  const isPresigned = query['X-Amz-Algorithm'] !== undefined || query['X-Amz-Signature'] !== undefined;
  if (!authorization && !isPresigned) return fail('missing-authentication', MSG_MISSING_TOKEN);
  if (authorization && (isPresigned || Object.keys(query).some((key) => key.toLowerCase() === 'x-amz-signature'))) {
    // smithy leaves any X-Amz-Signature parameter out of the canonical query, so header auth
    // cannot be checked with one present; AWS (S3) refuses the mix outright too.
    return fail('incomplete-signature', 'Only one auth mechanism allowed; only the X-Amz-Algorithm query parameter, the X-Amz-Signature query parameter, or the Authorization header should be specified.');
  }
  if (Object.hasOwn(query, '__proto__')) {
    // smithy's getCanonicalQuery stores its entries in a plain object, so a `__proto__` parameter
    // comes out as "[object Object]" whatever its value: the client's signature cannot cover it.
    return fail('incomplete-signature', "The query parameter '__proto__' cannot be covered by a signature.");
  }
  if (parsedQuery.count > MAX_QUERY_PARAMS) {
    return fail('incomplete-signature', `The query string has ${parsedQuery.count} parameters; at most ${MAX_QUERY_PARAMS} are accepted on signed requests.`);
  }

  const claim = authorization ? claimFromHeader(req, authorization, nowMs, maxSkewMs) : claimFromQuery(query, nowMs, maxSkewMs);
  if ('ok' in claim) return claim;
  const { scope } = claim;
  const scopeFailure = checkScope(scope, claim.signedAtMs, options);
  if (scopeFailure !== undefined) return scopeFailure;
  if (scope.accessKeyId === '') return fail('unknown-key', MSG_INVALID_TOKEN);

  const found = await options.lookup(scope.accessKeyId, claim.sessionToken);
  if (found.status === 'unknown') return fail('unknown-key', MSG_INVALID_TOKEN);
  if (found.status === 'invalid-token') return fail('invalid-token', MSG_INVALID_TOKEN);
  if (found.status === 'expired') return fail('expired-token', MSG_EXPIRED_TOKEN);

  const headers: Record<string, string> = Object.create(null) as Record<string, string>;
  const signedSet = new Set<string>();
  for (const name of claim.signedHeaders) {
    signedSet.add(name);
    // HTTP/2 has no Host header; Node gives the authority as ':authority'.
    const value = headerValue(req.headers, name) ?? (name === 'host' ? headerValue(req.headers, ':authority') : undefined);
    if (value !== undefined) headers[name] = value;
  }

  // X-Amz-Content-Sha256, when signed, is what smithy (and any SDK) puts in the canonical request
  // as the payload hash; AWS services other than S3 still hash the body themselves, so a signed
  // value that is not the body's hash (UNSIGNED-PAYLOAD included) is a mismatch.
  let payloadHash: string | undefined;
  const declaredHash = headers['x-amz-content-sha256'];
  if (declaredHash !== undefined) {
    payloadHash = sha256Hex(req.body);
    if (declaredHash !== payloadHash) return fail('signature-mismatch', "The provided 'x-amz-content-sha256' header does not match what was computed.");
  }

  if (claim.isPresigned) delete query['X-Amz-Signature'];
  const request = new HttpRequest({ method: req.method, path, query, headers, body: req.body });
  const signer = new VerifyingSigner({
    service: scope.service,
    region: scope.region,
    credentials: { accessKeyId: scope.accessKeyId, secretAccessKey: found.secretAccessKey },
    sha256: Sha256,
    uriEscapePath: true,
    applyChecksum: false,
  });
  let expected: string | undefined;
  try {
    expected = signedSet.has('date')
      ? canonicalSignature(signer, request, claim, signedSet, payloadHash ?? sha256Hex(req.body), found.secretAccessKey)
      : await smithySignature(signer, request, claim, signedSet);
  } catch (err) {
    // encodeURIComponent throws on lone surrogates, which a caller-built url may hold.
    if (err instanceof URIError) return fail('signature-mismatch', MSG_MISMATCH);
    throw err;
  }
  if (expected === undefined || !signaturesEqual(expected, claim.signature)) return fail('signature-mismatch', MSG_MISMATCH);
  return { ok: true, accessKeyId: scope.accessKeyId, identity: found.identity, region: scope.region, service: scope.service, signedAt: new Date(claim.signedAtMs) };
}

/** The signature as the SDK's own signer computes it for this request. */
async function smithySignature(signer: VerifyingSigner, request: HttpRequest, claim: Claim, signedSet: Set<string>): Promise<string | undefined> {
  const common = {
    signingDate: new Date(claim.signedAtMs),
    signingRegion: claim.scope.region,
    signingService: claim.scope.service,
    // Lets headers on smithy's never-sign list (user-agent, expect, ...) count when the client signed them.
    signableHeaders: signedSet,
  };
  if (!claim.isPresigned) {
    const signed = await signer.sign(request, common);
    const authorization = signed.headers['authorization'];
    const at = authorization?.lastIndexOf('Signature=') ?? -1;
    return at < 0 ? undefined : authorization!.slice(at + 'Signature='.length);
  }
  // presign() moves x-amz-* headers into the query; the ones this client signed as headers stay.
  const unhoistableHeaders = new Set([...signedSet].filter((name) => name.startsWith('x-amz-')));
  const presigned = await signer.presign(request, { ...common, expiresIn: claim.expiresSeconds, unhoistableHeaders });
  const signature = presigned.query?.['X-Amz-Signature'];
  return typeof signature === 'string' ? signature : undefined;
}

/**
 * For requests that signed a `Date` header, which smithy's `sign()`/`presign()` delete before
 * signing: smithy still builds the canonical request, and the string to sign and its HMAC (fixed
 * by the SigV4 spec) are computed here.
 */
function canonicalSignature(signer: VerifyingSigner, request: HttpRequest, claim: Claim, signedSet: Set<string>, payloadHash: string, secret: string): string {
  const canonical = signer.canonicalRequest(request, signedSet, payloadHash);
  const longDate = formatIsoBasic(claim.signedAtMs);
  const { scope } = claim;
  const stringToSign = `${ALGORITHM}\n${longDate}\n${scope.date}/${scope.region}/${scope.service}/${TERMINATOR}\n${sha256Hex(canonical)}`;
  const key = signingKey(scope.accessKeyId, secret, scope.date, scope.region, scope.service);
  return createHmac('sha256', keyObjects.get(key) ?? key).update(stringToSign).digest('hex');
}

function signaturesEqual(expected: string, provided: string): boolean {
  const a = Buffer.from(expected, 'latin1');
  const b = Buffer.from(provided, 'latin1');
  return a.length === b.length && timingSafeEqual(a, b);
}

/**
 * The AWS error for a failure, per protocol. ECR speaks AWS JSON 1.1 (`__type` names ending in
 * Exception, 400 for every authentication error); IAM and STS speak AWS Query (bare names, 403
 * except the malformed-signature ones).
 *
 * Sources:
 * - JSON: mhart/dynalite index.js, which records DynamoDB's answers (the same service framework as
 *   ECR): MissingAuthenticationTokenException, IncompleteSignatureException (missing parts,
 *   malformed date, unsupported algorithm, credential not 5 elements), InvalidSignatureException
 *   (signature expired, Host not signed, wrong region/service/terminator/date in the scope,
 *   mismatch), UnrecognizedClientException (unknown key, invalid token), all 400. ECR itself:
 *   MissingAuthenticationTokenException 400 "Missing Authentication Token"
 *   (jenkinsci/amazon-ecr-plugin#199); UnrecognizedClientException 400 (aws/aws-sdk-php#1114);
 *   InvalidSignatureException 400 "Signature expired: ... (... - 15 min.)"
 *   (upmc-enterprises/registry-creds#24, #47); IncompleteSignatureException 400
 *   (iann0036/cloud9-sync#10); ExpiredTokenException 400 for JSON services
 *   (salesforce/multicloudj#608).
 * - Query: STS MissingAuthenticationToken 403 (amzn/selling-partner-api-docs#3081);
 *   InvalidClientTokenId 403 (okta-awscli/okta-awscli#145, aws-azure-login#251); ExpiredToken 403
 *   (aws/aws-sdk-java-v2#1649); SignatureDoesNotMatch 403 for "Signature expired" and "Signature not
 *   yet current" (aws/aws-cli#6676, a Terraform report in QT-DevOps/DevOpsIssues#989) and for a
 *   wrong region (cognitect-labs/aws-api#27 for STS, JuliaCloud/AWS.jl#565 for IAM);
 *   IncompleteSignature 400 (AWS "Common Errors" pages of the Query services; brendanhay/amazonka#316).
 */
export function sigV4ErrorFor(failure: SigV4Failure, protocol: 'json' | 'query'): { code: string; status: number } {
  const [json, query] = ERRORS[failure];
  return protocol === 'json' ? json : query;
}

const ERRORS: Record<SigV4Failure, readonly [{ code: string; status: number }, { code: string; status: number }]> = {
  'missing-authentication': [
    { code: 'MissingAuthenticationTokenException', status: 400 },
    { code: 'MissingAuthenticationToken', status: 403 },
  ],
  'incomplete-signature': [
    { code: 'IncompleteSignatureException', status: 400 },
    { code: 'IncompleteSignature', status: 400 },
  ],
  'unsupported-algorithm': [
    { code: 'IncompleteSignatureException', status: 400 },
    { code: 'IncompleteSignature', status: 400 },
  ],
  'unknown-key': [
    { code: 'UnrecognizedClientException', status: 400 },
    { code: 'InvalidClientTokenId', status: 403 },
  ],
  'invalid-token': [
    { code: 'UnrecognizedClientException', status: 400 },
    { code: 'InvalidClientTokenId', status: 403 },
  ],
  'expired-token': [
    { code: 'ExpiredTokenException', status: 400 },
    { code: 'ExpiredToken', status: 403 },
  ],
  'signature-mismatch': [
    { code: 'InvalidSignatureException', status: 400 },
    { code: 'SignatureDoesNotMatch', status: 403 },
  ],
  'request-expired': [
    { code: 'InvalidSignatureException', status: 400 },
    { code: 'SignatureDoesNotMatch', status: 403 },
  ],
  'wrong-service': [
    { code: 'InvalidSignatureException', status: 400 },
    { code: 'SignatureDoesNotMatch', status: 403 },
  ],
};
