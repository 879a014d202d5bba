import { createHash } from 'node:crypto';
import http from 'node:http';
import https from 'node:https';
import { isIP } from 'node:net';
import { Readable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { checkServerIdentity, rootCertificates, type PeerCertificate } from 'node:tls';
import { ECRClient, GetAuthorizationTokenCommand } from '@aws-sdk/client-ecr';
import { AssumeRoleCommand, STSClient } from '@aws-sdk/client-sts';
import { NodeHttpHandler } from '@smithy/node-http-handler';

/**
 * The client replication pushes with and the pull-through cache pulls with: the OCI Distribution
 * API (spec v1.1, "Push" and "Pull"), against another Berth, ECR, Docker Hub, or any OCI
 * registry. It authenticates as docker and skopeo do (try, read the 401 challenge, answer it with
 * Basic credentials or a bearer token from the realm, anonymous when it has no credentials),
 * uploads blobs in chunks that it resumes from where the registry stands after a failure, checks
 * the manifests it pulls against their digest, streams the blobs it pulls (following the registry
 * to a storage host without taking its credentials along), and turns every failure into an
 * OciError that says whether trying later may help.
 */

export type OciCredentials =
  | { kind: 'anonymous' }
  | { kind: 'basic'; username: string; password: string }
  /**
   * A Berth (or ECR) destination: an ECR authorization token got with SigV4 from the endpoint's
   * ECR API (GetAuthorizationToken), first assuming `roleArn` with STS (AssumeRole at the same
   * endpoint) when given; the token is reused until shortly before it expires.
   */
  | { kind: 'ecr'; accessKeyId: string; secretAccessKey: string; sessionToken?: string; region: string; roleArn?: string; externalId?: string; roleSessionName?: string };

export interface OciClientOptions {
  /** The registry's origin, e.g. http://127.0.0.1:5000 or https://registry.example.com (no path, no user info). */
  endpoint: string;
  credentials: OciCredentials;
  /**
   * Host header to send instead of the endpoint's (Berth picks the account from a
   * `123456789012.` label of the Host: pass `${registryId}.${endpointHost}`). URLs the registry
   * hands back under this name (upload locations, the token realm) are reached at `endpoint`.
   * Over TLS it is also the server name (SNI), and the certificate may be valid for either name.
   */
  hostHeader?: string;
  /** Extra PEM CA certificates trusted for TLS, besides the usual roots; TLS is always verified. */
  ca?: string;
  /** Sent on every data-plane request to the registry (replication sends `x-berth-replication`); never to other hosts. */
  headers?: Record<string, string>;
  /** Bytes per PATCH when uploading a blob (default 32 MiB). A blob no larger is pushed in one PUT. */
  chunkBytes?: number;
  /** Per-request inactivity timeout (default 60 s). */
  timeoutMs?: number;
  userAgent?: string;
  /** Attempts in a row that get no chunk accepted before pushBlob gives up (default 4). */
  attemptsWithoutProgress?: number;
}

/** Everything a registry may answer a manifest request with: OCI and Docker manifests and indexes. */
export const MANIFEST_MEDIA_TYPES: readonly string[] = [
  'application/vnd.oci.image.manifest.v1+json',
  'application/vnd.oci.image.index.v1+json',
  'application/vnd.docker.distribution.manifest.v2+json',
  'application/vnd.docker.distribution.manifest.list.v2+json',
  'application/vnd.docker.distribution.manifest.v1+prettyjws',
  'application/vnd.docker.distribution.manifest.v1+json',
];

/**
 * Every failure of the client. `retryable` says whether the same call may succeed later
 * (network errors, timeouts, 408, 429, 5xx, and a blob push that stopped making progress) or
 * not (other 4xx: credentials, permissions, a digest that does not match the bytes). `code` is
 * the OCI error code from the registry's body when there is one (`DIGEST_INVALID`, `NAME_UNKNOWN`...)
 * or, for a failure of the ECR or STS API, the AWS error type (`__type`, e.g. `AccessDenied`).
 * Some are set whatever the body says: a 429 is `TOOMANYREQUESTS`; a 401 or 403 from the
 * registry or its token endpoint is `UNAUTHORIZED` or `DENIED`; content that does not match its
 * digest is `DIGEST_INVALID`, and a manifest too large to take `SIZE_INVALID`.
 * Messages name the method and the URL's origin and path, never credentials or query strings.
 */
export class OciError extends Error {
  readonly status: number | undefined;
  readonly code: string | undefined;
  readonly retryable: boolean;
  /** The registry's own message for `code`, when it gave one. */
  readonly detail: unknown;
  /** From a Retry-After header (seconds or a date), when the registry sent one. */
  readonly retryAfterMs: number | undefined;

  constructor(message: string, options: { status?: number | undefined; code?: string | undefined; retryable: boolean; detail?: unknown; retryAfterMs?: number | undefined; cause?: unknown }) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'OciError';
    this.status = options.status;
    this.code = options.code;
    this.retryable = options.retryable;
    this.detail = options.detail;
    this.retryAfterMs = options.retryAfterMs;
  }
}

const DEFAULT_CHUNK_BYTES = 32 * 1024 * 1024;
const DEFAULT_TIMEOUT_MS = 60_000;
const DEFAULT_ATTEMPTS_WITHOUT_PROGRESS = 4;
const MAX_REDIRECTS = 5;
/** Error bodies and token answers are small; anything longer is cut there. */
const SMALL_BODY_BYTES = 64 * 1024;
/** Manifests larger than this are refused by Distribution and Berth alike. */
const MANIFEST_BODY_BYTES = 4 * 1024 * 1024;
/** ECR tokens live 12 hours; assumed when GetAuthorizationToken says nothing. */
const ECR_TOKEN_DEFAULT_MS = 12 * 3600_000;

// OCI distribution-spec v1.1, "Pulling manifests": the grammar of names, tags and digests.
const NAME_RE = /^[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*(?:\/[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*)*$/;
const TAG_RE = /^[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}$/;
const DIGEST_RE = /^[a-z0-9]+(?:[+._-][a-z0-9]+)*:[a-zA-Z0-9=_-]+$/;

/** Where a request goes; `isRegistry` when it is the registry itself (then it gets the Host override, credentials and extra headers). */
interface Target {
  url: URL;
  isRegistry: boolean;
}

/** A request body streamed from the blob source: exactly `length` bytes. */
interface StreamBody {
  length: number;
  source: SourceReader;
}

interface Exchange {
  method: string;
  target: Target;
  headers?: Record<string, string>;
  body?: Uint8Array | StreamBody;
  signal?: AbortSignal | undefined;
  /**
   * Bytes of the response body read (default SMALL_BODY_BYTES). A longer body is not read on: the
   * answer resolves with what came so far, `truncated`, and the connection is closed.
   */
  maxBodyBytes?: number;
  /** A 2xx answer resolves at its headers, with the body as `stream` (see responseStream); other answers are read as usual. */
  isStreamed?: boolean;
  /** The target is the registry's token endpoint: a 401 or 403 from it is about the client's credentials, as one from the registry. */
  isTokenRequest?: boolean;
}

interface Answer {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: Buffer;
  /** The body was longer than maxBodyBytes. */
  truncated: boolean;
  method: string;
  url: URL;
  /**
   * Set when the registry (or its token endpoint) answered, not another host it redirected to:
   * whether the client has credentials to offer (`given`) or is anonymous (`none`), for failure()
   * to say what a 401 or 403 means.
   */
  credentials: 'given' | 'none' | undefined;
  /** The body, unread, of a 2xx answer to an isStreamed exchange (then `body` is empty). */
  stream?: Readable;
}

interface Call extends Exchange {
  /** Token scopes the request needs, e.g. `repository:team/app:pull,push`. */
  scopes: string[];
  /** Follow redirects: to any host (GET/HEAD), only within the registry, or not at all (default). */
  redirects?: 'any' | 'registry' | 'none';
}

/** The SDK clients for the endpoint's ECR and STS APIs, sharing one request handler. */
interface AwsClients {
  ecr: ECRClient;
  sts: STSClient | undefined;
  handler: NodeHttpHandler;
}

type Challenge = { scheme: 'basic' } | { scheme: 'bearer'; realm: string; service: string | undefined };

interface CachedToken {
  /** What the token was asked for: repository name → actions. */
  grants: Map<string, Set<string>>;
  token: string;
  reuseUntilMs: number;
}

/** Network failures on a kept-alive socket the server had just closed: worth one immediate retry. */
const staleSocketFailures = new WeakSet<OciError>();

/**
 * A client for one registry, to push to (replication) and to pull from (the pull-through cache).
 * Safe to share between concurrent calls: they share the connections, the challenge learned and
 * the tokens got. `close()` releases the connections.
 */
export class OciClient {
  readonly #endpoint: URL;
  readonly #credentials: OciCredentials;
  readonly #hostHeader: string | undefined;
  readonly #headers: Record<string, string>;
  readonly #chunkBytes: number;
  readonly #timeoutMs: number;
  readonly #userAgent: string;
  readonly #attemptsWithoutProgress: number;
  readonly #agent: http.Agent | https.Agent;
  readonly #ca: string[] | undefined;
  #challenge: Challenge | undefined;
  #tokens: CachedToken[] = [];
  #tokenRequests = new Map<string, Promise<CachedToken>>();
  #ecrToken: { authorizationToken: string; reuseUntilMs: number } | undefined;
  #ecrTokenRequest: Promise<string> | undefined;
  #awsClients: AwsClients | undefined;

  constructor(options: OciClientOptions) {
    let endpoint: URL;
    try {
      endpoint = new URL(options.endpoint);
    } catch {
      throw new OciError(`The registry endpoint ${JSON.stringify(options.endpoint)} is not a URL.`, { retryable: false });
    }
    if (endpoint.protocol !== 'http:' && endpoint.protocol !== 'https:') {
      throw new OciError(`The registry endpoint must be http:// or https://, not ${endpoint.protocol}//.`, { retryable: false });
    }
    if (endpoint.username || endpoint.password) {
      throw new OciError('The registry endpoint must not carry user info; pass credentials instead.', { retryable: false });
    }
    this.#endpoint = new URL(endpoint.origin);
    this.#credentials = options.credentials;
    this.#hostHeader = options.hostHeader?.toLowerCase();
    this.#headers = Object.fromEntries(Object.entries(options.headers ?? {}).map(([k, v]) => [k.toLowerCase(), v]));
    this.#chunkBytes = positiveInteger(options.chunkBytes, DEFAULT_CHUNK_BYTES, 'chunkBytes');
    this.#timeoutMs = positiveInteger(options.timeoutMs, DEFAULT_TIMEOUT_MS, 'timeoutMs');
    this.#attemptsWithoutProgress = positiveInteger(options.attemptsWithoutProgress, DEFAULT_ATTEMPTS_WITHOUT_PROGRESS, 'attemptsWithoutProgress');
    this.#userAgent = options.userAgent ?? 'berth-replication';
    // Node's `ca` replaces the default roots; the option adds to them.
    this.#ca = options.ca === undefined ? undefined : [...rootCertificates, options.ca];
    this.#agent = endpoint.protocol === 'https:' ? new https.Agent({ keepAlive: true, ...(this.#ca ? { ca: this.#ca } : {}) }) : new http.Agent({ keepAlive: true });
  }

  /**
   * GET /v2/: resolves when the registry answers 200 with the credentials given; rejects with an
   * OciError otherwise: status 401 and code UNAUTHORIZED when the registry (or its token endpoint)
   * refuses the credentials, or needs some and the client is anonymous.
   */
  async ping(signal?: AbortSignal): Promise<void> {
    const answer = await this.#call({ method: 'GET', target: this.#registry('/v2/'), scopes: [], signal, redirects: 'registry' });
    if (answer.status !== 200) throw failure(answer, 'checking the registry');
  }

  /**
   * HEAD the blob in `repository`: true when present (and, when `size` is given, of that size),
   * false when absent (404). A redirect to another host (a storage URL) counts as present.
   */
  async hasBlob(repository: string, digest: string, signal?: AbortSignal, size?: number): Promise<boolean> {
    checkName(repository);
    checkDigest(digest);
    const answer = await this.#call({ method: 'HEAD', target: this.#registry(`/v2/${repository}/blobs/${digest}`), scopes: [scope(repository, 'pull')], signal, redirects: 'registry' });
    if (answer.status === 404) return false;
    if (isRedirect(answer.status)) return true;
    if (answer.status !== 200) throw failure(answer, `checking blob ${digest} in ${repository}`);
    if (size === undefined) return true;
    const length = answer.headers['content-length'];
    return length === undefined || Number(length) === size;
  }

  /**
   * POST ?mount=digest (&from= when given; spec "Mounting a blob from another repository"). True
   * when the registry mounted it (201); false when it did not (it answered 202 and opened an
   * upload session instead, which this cancels).
   */
  async mountBlob(repository: string, digest: string, from: string | undefined, signal?: AbortSignal): Promise<boolean> {
    checkName(repository);
    checkDigest(digest);
    if (from !== undefined) checkName(from);
    const query = `mount=${encodeURIComponent(digest)}${from === undefined ? '' : `&from=${encodeURIComponent(from)}`}`;
    const scopes = [scope(repository, 'pull,push'), ...(from === undefined || from === repository ? [] : [scope(from, 'pull')])];
    const answer = await this.#call({ method: 'POST', target: this.#registry(`/v2/${repository}/blobs/uploads/?${query}`), scopes, signal });
    if (answer.status === 201) return true;
    if (answer.status === 202) {
      const location = answer.headers.location;
      if (location) await this.#cancelUpload(this.#locate(location, answer.url), scopes);
      return false;
    }
    throw failure(answer, `mounting blob ${digest} into ${repository}`);
  }

  /**
   * Uploads a blob of `size` bytes, streaming from `open(offset)` (a stream of the blob from that
   * byte to the end). A blob of at most chunkBytes goes in one PUT (spec "POST then PUT"); a
   * larger one in PATCH chunks of chunkBytes with Content-Range, then PUT ?digest= (spec "Pushing
   * a blob in chunks"). Memory stays bounded: chunks are piped from the source, never buffered.
   *
   * After a network error, a timeout, a 5xx or a source stream that fails, it asks the registry
   * where the session stands (GET on the upload URL, its Range header), calls `open()` again at
   * that offset and goes on; a session that is gone (404) makes it check whether the blob arrived
   * after all, else start a new session. It gives up, with a retryable OciError, after
   * attemptsWithoutProgress attempts in a row that got no chunk accepted, and cancels the session.
   * The registry checks the digest on the final PUT: bytes that do not match are a non-retryable
   * OciError with the registry's code (DIGEST_INVALID).
   */
  async pushBlob(repository: string, digest: string, size: number, open: (offset: number) => Promise<NodeJS.ReadableStream | Readable>, signal?: AbortSignal): Promise<void> {
    checkName(repository);
    checkDigest(digest);
    if (!Number.isSafeInteger(size) || size < 0) throw new OciError(`The blob size must be a whole number of bytes, not ${size}.`, { retryable: false });
    const scopes = [scope(repository, 'pull,push')];
    const what = `blob ${digest} (${size} bytes) to ${repository}`;
    let session: Target | undefined;
    let offset = 0;
    let askStatus = false;
    let failuresInARow = 0;
    for (;;) {
      signal?.throwIfAborted();
      let source: SourceReader | undefined;
      let progressed = false;
      try {
        if (session && askStatus) {
          const status = await this.#uploadStatus(session, scopes, signal);
          askStatus = false;
          if (status) ({ target: session, offset } = status);
          else if (await this.hasBlob(repository, digest, signal, size)) return;
          else session = undefined;
        }
        if (!session) {
          session = await this.#startUpload(repository, scopes, signal);
          offset = 0;
        }
        if (offset === 0 && size <= this.#chunkBytes) {
          // Spec "POST then PUT": the whole blob in the request that completes the upload.
          source = size > 0 ? await openSource(open, 0, size) : undefined;
          await this.#completeUpload(session, digest, source && { length: size, source }, scopes, signal);
          return;
        }
        while (offset < size) {
          source ??= await openSource(open, offset, size);
          const length = Math.min(this.#chunkBytes, size - offset);
          const answer = await this.#call({
            method: 'PATCH',
            target: session,
            scopes,
            signal,
            headers: { 'content-type': 'application/octet-stream', 'content-range': `${offset}-${offset + length - 1}` },
            body: { length, source },
          });
          if (answer.status !== 202) throw uploadFailure(answer, `uploading bytes ${offset}-${offset + length - 1} of ${what}`);
          if (answer.headers.location) session = this.#locate(answer.headers.location, answer.url);
          const held = rangeEnd(answer.headers.range);
          // `0-0` may mean one byte as well as none (see rangeEnd).
          if (held !== undefined && held !== offset + length && !(held === 0 && offset + length === 1)) {
            throw new ResyncNeeded(`the registry holds ${held} bytes of ${what} after the chunk that ends at ${offset + length}`);
          }
          offset += length;
          progressed = true;
        }
        await this.#completeUpload(session, digest, undefined, scopes, signal);
        return;
      } catch (err) {
        if (signal?.aborted) throw signal.reason;
        const error = err instanceof ResyncNeeded ? err : asOciError(err, `pushing ${what}`);
        if (!(error instanceof ResyncNeeded) && !error.retryable) {
          if (session) await this.#cancelUpload(session, scopes);
          throw error;
        }
        failuresInARow = progressed ? 1 : failuresInARow + 1;
        if (failuresInARow >= this.#attemptsWithoutProgress) {
          if (session) await this.#cancelUpload(session, scopes);
          const last = error instanceof OciError ? error : error.cause instanceof OciError ? error.cause : undefined;
          throw new OciError(`Gave up pushing ${what} after ${failuresInARow} attempts in a row without progress; the last failure: ${error.message}`, {
            status: last?.status,
            code: last?.code,
            retryable: true,
            retryAfterMs: last?.retryAfterMs,
            cause: error,
          });
        }
        askStatus = true;
        const retryAfterMs = error instanceof OciError ? error.retryAfterMs : undefined;
        await pause(Math.min(retryAfterMs ?? 250 * 2 ** (failuresInARow - 1), 10_000), signal);
      } finally {
        source?.close();
      }
    }
  }

  /**
   * HEAD the manifest: undefined when the registry answers 404, else its digest (the
   * Docker-Content-Digest header), media type and size; a registry that leaves the digest or the
   * length out is asked with getManifest instead. Accepts every OCI and Docker manifest type.
   */
  async headManifest(repository: string, reference: string, signal?: AbortSignal): Promise<{ digest: string; mediaType: string; size: number } | undefined> {
    checkName(repository);
    checkReference(reference);
    const call: Call = {
      method: 'HEAD',
      target: this.#registry(`/v2/${repository}/manifests/${reference}`),
      scopes: [scope(repository, 'pull')],
      headers: { accept: MANIFEST_MEDIA_TYPES.join(', ') },
      signal,
      redirects: 'any',
    };
    const head = await this.#call(call);
    if (head.status === 404) return undefined;
    if (head.status !== 200) throw failure(head, `checking manifest ${repository}:${reference}`);
    const mediaType = (header(head.headers, 'content-type') ?? '').split(';')[0]!.trim();
    const digest = header(head.headers, 'docker-content-digest');
    const length = header(head.headers, 'content-length');
    if (digest !== undefined && length !== undefined) return { digest, mediaType, size: Number(length) };
    const got = await this.getManifest(repository, reference, signal);
    return got && { digest: got.digest, mediaType: got.mediaType, size: got.bytes.length };
  }

  /**
   * GET the manifest (spec "Pulling manifests"), accepting every OCI and Docker manifest and
   * index type, and plain `application/json` as old registries send it. Undefined when the
   * registry answers 404.
   *
   * `digest` is the reference when that is a digest, else the sha256 of `bytes` as received.
   * `mediaType` is the Content-Type; when that is no manifest type (`application/json`, or none),
   * the body's `mediaType` field if it has one.
   *
   * The bytes are checked before they are returned: by a digest reference, they must hash to it
   * (with its algorithm: sha256 or sha512); by a tag, to the Docker-Content-Digest the registry
   * sent, if it sent one. Bytes that do not are a non-retryable OciError with DIGEST_INVALID. A
   * manifest over 4 MiB (what Berth and Distribution take) is not read past that: a non-retryable
   * OciError with SIZE_INVALID.
   */
  async getManifest(repository: string, reference: string, signal?: AbortSignal): Promise<{ digest: string; mediaType: string; bytes: Buffer } | undefined> {
    checkName(repository);
    checkReference(reference);
    // A tag has no colon; a reference that passed checkReference with one is a digest.
    const expected = reference.includes(':') ? reference : undefined;
    if (expected !== undefined && digestOf(Buffer.alloc(0), algorithmOf(expected)) === undefined) {
      throw new OciError(`${JSON.stringify(expected)} uses a digest algorithm that cannot be verified here; only sha256 and sha512 can.`, { retryable: false });
    }
    const what = `manifest ${repository}${expected === undefined ? ':' : '@'}${reference}`;
    const answer = await this.#call({
      method: 'GET',
      target: this.#registry(`/v2/${repository}/manifests/${reference}`),
      scopes: [scope(repository, 'pull')],
      headers: { accept: [...MANIFEST_MEDIA_TYPES, 'application/json'].join(', ') },
      signal,
      redirects: 'any',
      maxBodyBytes: MANIFEST_BODY_BYTES,
    });
    if (answer.status === 404) return undefined;
    if (answer.status !== 200) throw failure(answer, `getting ${what}`);
    if (answer.truncated) {
      throw new OciError(`${answer.method} ${describe(answer.url)} answered with ${what} larger than ${MANIFEST_BODY_BYTES} bytes, the most a manifest may be; it was not read further.`, {
        status: 200,
        code: 'SIZE_INVALID',
        retryable: false,
      });
    }
    const bytes = answer.body;
    const claimed = expected ?? header(answer.headers, 'docker-content-digest')?.trim();
    if (claimed !== undefined) {
      // A Docker-Content-Digest with an algorithm this cannot compute goes unchecked.
      const actual = digestOf(bytes, algorithmOf(claimed));
      if (actual !== undefined && actual !== claimed) {
        throw new OciError(
          `${answer.method} ${describe(answer.url)} served content that does not match ${expected === undefined ? `the digest it claimed (Docker-Content-Digest ${claimed})` : `the digest asked for`}: it hashes to ${actual}.`,
          { status: 200, code: 'DIGEST_INVALID', retryable: false },
        );
      }
    }
    const contentType = (header(answer.headers, 'content-type') ?? '').split(';')[0]!.trim();
    const mediaType = MANIFEST_MEDIA_TYPES.includes(contentType.toLowerCase()) ? contentType : (mediaTypeField(bytes) ?? contentType);
    return { digest: expected ?? digestOf(bytes, 'sha256')!, mediaType, bytes };
  }

  /**
   * GET the blob (spec "Pulling blobs"). Redirects are followed to any host (Docker Hub, ECR and
   * registries on S3 send blob GETs on to a CDN or a presigned URL), but the registry's
   * credentials and the `headers` option go to the registry alone. Resolves as soon as the 200
   * answer's headers arrive: `stream` is the body as it comes, never held whole, and `size` its
   * Content-Length when given. Undefined when the registry answers 404; any other answer (a 206
   * too: it is not the whole blob) rejects with an OciError.
   *
   * The bytes are NOT checked against `digest`: the caller must hash them as it stores them and
   * refuse them if they do not match. The stream errors (with a retryable OciError, or the
   * signal's reason once it aborts) when the connection fails, and when no byte comes for
   * timeoutMs while the reader waits for some (a reader that holds back stops the clock). Read it
   * to its end or destroy it: until then it holds a connection.
   */
  async openBlob(repository: string, digest: string, signal?: AbortSignal): Promise<{ size: number | undefined; stream: Readable } | undefined> {
    checkName(repository);
    checkDigest(digest);
    const what = `blob ${digest} from ${repository}`;
    const answer = await this.#call({
      method: 'GET',
      target: this.#registry(`/v2/${repository}/blobs/${digest}`),
      scopes: [scope(repository, 'pull')],
      signal,
      redirects: 'any',
      isStreamed: true,
    });
    if (answer.stream) {
      if (answer.status !== 200) {
        answer.stream.destroy();
        throw new OciError(`${answer.method} ${describe(answer.url)} answered ${answer.status} while getting ${what}; only a 200 carries the whole blob.`, { status: answer.status, retryable: false });
      }
      const length = header(answer.headers, 'content-length')?.trim();
      return { size: length !== undefined && /^\d+$/.test(length) ? Number(length) : undefined, stream: answer.stream };
    }
    if (answer.status === 404) return undefined;
    throw failure(answer, `getting ${what}`);
  }

  /** PUT the manifest bytes with their media type (spec "Pushing Manifests"); resolves the digest the registry reports (else the bytes' sha256). */
  async putManifest(repository: string, reference: string, mediaType: string, body: Uint8Array, signal?: AbortSignal): Promise<string> {
    checkName(repository);
    checkReference(reference);
    const answer = await this.#call({
      method: 'PUT',
      target: this.#registry(`/v2/${repository}/manifests/${reference}`),
      scopes: [scope(repository, 'pull,push')],
      headers: { 'content-type': mediaType },
      body,
      signal,
    });
    if (answer.status !== 201 && answer.status !== 200) throw failure(answer, `pushing manifest ${repository}:${reference}`);
    return header(answer.headers, 'docker-content-digest') ?? `sha256:${createHash('sha256').update(body).digest('hex')}`;
  }

  /** Closes idle connections and the AWS SDK clients; calls in flight finish. */
  close(): void {
    this.#agent.destroy();
    // Destroying an SDK client destroys its request handler, which is all it holds: the clients share this one.
    this.#awsClients?.handler.destroy();
  }

  // --- uploads -------------------------------------------------------------------------------

  /** POST /v2/<name>/blobs/uploads/: a new session's URL. */
  async #startUpload(repository: string, scopes: string[], signal: AbortSignal | undefined): Promise<Target> {
    const answer = await this.#call({ method: 'POST', target: this.#registry(`/v2/${repository}/blobs/uploads/`), scopes, signal });
    const location = answer.headers.location;
    if (answer.status !== 202 || !location) {
      throw answer.status === 202 ? new OciError(`POST ${describe(answer.url)} answered 202 without a Location.`, { status: 202, retryable: false }) : failure(answer, `starting an upload to ${repository}`);
    }
    return this.#locate(location, answer.url);
  }

  /** PUT <session>?digest=, with the rest of the blob as the body or none. */
  async #completeUpload(session: Target, digest: string, body: StreamBody | undefined, scopes: string[], signal: AbortSignal | undefined): Promise<void> {
    // Appended as text: re-serialising the query (URLSearchParams) could re-encode the session's own parameters.
    const url = new URL(session.url);
    url.search = `${url.search ? `${url.search}&` : '?'}digest=${encodeURIComponent(digest)}`;
    const answer = await this.#call({
      method: 'PUT',
      target: { url, isRegistry: session.isRegistry },
      scopes,
      signal,
      headers: { 'content-type': 'application/octet-stream' },
      ...(body ? { body } : {}),
    });
    if (answer.status !== 201 && answer.status !== 204) throw uploadFailure(answer, `completing the upload of ${digest}`);
  }

  /** Where the session stands (spec "Get the status of an upload"), or undefined when it is gone. */
  async #uploadStatus(session: Target, scopes: string[], signal: AbortSignal | undefined): Promise<{ target: Target; offset: number } | undefined> {
    const answer = await this.#call({ method: 'GET', target: session, scopes, signal });
    // Distribution answers 404 BLOB_UPLOAD_INVALID, and cancels the session, when its signed
    // state in the URL no longer matches the bytes held (after a chunk that failed midway).
    if (answer.status === 404) return undefined;
    const code = errorBody(answer).code;
    if (answer.status === 400 && (code === 'BLOB_UPLOAD_INVALID' || code === 'BLOB_UPLOAD_UNKNOWN')) return undefined;
    if (answer.status !== 204 && answer.status !== 200) throw failure(answer, 'asking where the upload stands');
    const target = answer.headers.location ? this.#locate(answer.headers.location, answer.url) : session;
    return { target, offset: rangeEnd(answer.headers.range) ?? 0 };
  }

  /** DELETE the session; failures are ignored (registries purge abandoned sessions anyway). */
  async #cancelUpload(session: Target, scopes: string[]): Promise<void> {
    try {
      await this.#call({ method: 'DELETE', target: session, scopes });
    } catch {
      // best effort
    }
  }

  // --- HTTP ------------------------------------------------------------------------------------

  #registry(pathAndQuery: string): Target {
    return { url: new URL(pathAndQuery, this.#endpoint), isRegistry: true };
  }

  /**
   * A URL the registry handed back (Location, realm). Under the registry's own name (the Host
   * override, or the endpoint's host) it is reached at the endpoint; elsewhere it is another host.
   */
  #locate(location: string, base: URL): Target {
    if (this.#hostHeader !== undefined) {
      // Compared as text: a name like 123456789012.127.0.0.1 is no valid URL host (it ends like an IPv4 address).
      const prefix = `${this.#endpoint.protocol}//${this.#hostHeader}`;
      const rest = location.slice(prefix.length);
      if (location.toLowerCase().startsWith(prefix) && /^(?:$|[/?#])/.test(rest)) return { url: new URL(rest || '/', this.#endpoint), isRegistry: true };
    }
    let url: URL;
    try {
      url = new URL(location, base);
    } catch {
      // Not echoed: it may hold a signature.
      throw new OciError(`${describe(base)} answered with a location that is not a URL.`, { retryable: false });
    }
    return { url, isRegistry: url.origin === this.#endpoint.origin };
  }

  /**
   * One logical request: credentials for the registry (proactively once a challenge is known),
   * one retry after a 401 that new credentials may answer, redirects as asked, one retry of a
   * replayable request whose kept-alive connection the server had closed.
   */
  async #call(call: Call): Promise<Answer> {
    let target = call.target;
    const replayable = !(call.body !== undefined && !(call.body instanceof Uint8Array));
    let retriedAuth = false;
    let retriedSocket = false;
    for (let hops = 0; ; ) {
      const authorization = target.isRegistry ? await this.#authorization(call.scopes, call.signal) : undefined;
      let answer: Answer;
      try {
        answer = await this.#exchange({ ...call, target, headers: { ...call.headers, ...(authorization ? { authorization } : {}) } });
      } catch (err) {
        if (err instanceof OciError && staleSocketFailures.has(err) && replayable && !retriedSocket) {
          retriedSocket = true;
          continue;
        }
        throw err;
      }
      if (answer.status === 401 && target.isRegistry && !retriedAuth && this.#learnChallenge(answer, authorization) && replayable) {
        retriedAuth = true;
        continue;
      }
      const follow = call.redirects ?? 'none';
      const location = answer.headers.location;
      if (follow !== 'none' && isRedirect(answer.status) && location && hops < MAX_REDIRECTS) {
        const next = this.#locate(location, target.url);
        if (follow === 'registry' && !next.isRegistry) return answer;
        target = next;
        hops++;
        continue;
      }
      return answer;
    }
  }

  /** One HTTP exchange. Rejects with a retryable OciError on network failures, timeouts and source failures. */
  #exchange(exchange: Exchange): Promise<Answer> {
    const { method, target, body } = exchange;
    const url = target.url;
    const headers: Record<string, string> = { 'user-agent': this.#userAgent, ...(target.isRegistry ? this.#headers : {}), ...exchange.headers };
    if (body !== undefined) headers['content-length'] = String(body.length);
    else if (method === 'POST' || method === 'PUT' || method === 'PATCH') headers['content-length'] = '0';
    if (target.isRegistry && this.#hostHeader !== undefined) headers['host'] = this.#hostHeader;
    const isHttps = url.protocol === 'https:';
    const options: https.RequestOptions = {
      method,
      headers,
      timeout: this.#timeoutMs,
      ...(exchange.signal ? { signal: exchange.signal } : {}),
    };
    if (target.isRegistry) options.agent = this.#agent;
    else if (isHttps && this.#ca) options.ca = this.#ca;
    if (isHttps && target.isRegistry && this.#hostHeader !== undefined) {
      // SNI carries the name the registry is addressed by; the certificate may name it or the endpoint.
      const names = [hostnameOf(this.#hostHeader), this.#endpoint.hostname.replace(/^\[|\]$/g, '')];
      options.servername = isIP(names[0]!) ? '' : names[0]!;
      options.checkServerIdentity = (_host: string, cert: PeerCertificate) => {
        let first: Error | undefined;
        for (const name of names) {
          const mismatch = checkServerIdentity(name, cert);
          if (!mismatch) return undefined;
          first ??= mismatch;
        }
        return first;
      };
    }
    const maxBodyBytes = exchange.maxBodyBytes ?? SMALL_BODY_BYTES;
    const where = `${method} ${describe(url)}`;
    const streamed = body !== undefined && !(body instanceof Uint8Array) ? { body, sentBytes: 0 } : undefined;
    const credentials = target.isRegistry || exchange.isTokenRequest ? (this.#credentials.kind === 'anonymous' ? 'none' : 'given') : undefined;
    return new Promise<Answer>((resolve, reject) => {
      let settled = false;
      let responded = false;
      const settle = (fn: () => void) => {
        if (!settled) {
          settled = true;
          fn();
        }
      };
      const request = (isHttps ? https : http).request(url, options, (response) => {
        responded = true;
        const status = response.statusCode ?? 0;
        const answer = (kept: Buffer, truncated: boolean, stream?: Readable): Answer => ({ status, headers: response.headers, body: kept, truncated, method, url, credentials, ...(stream ? { stream } : {}) });
        if (exchange.isStreamed && status >= 200 && status < 300) {
          // The socket's timeout would also fire while the reader holds back: the stream keeps its own.
          request.setTimeout(0);
          settle(() => resolve(answer(Buffer.alloc(0), false, responseStream(request, response, { idleMs: this.#timeoutMs, where, signal: exchange.signal }))));
          return;
        }
        const kept: Buffer[] = [];
        let keptBytes = 0;
        // Not read on past maxBodyBytes: whatever answers could send without end.
        const tooLong = () => {
          settle(() => resolve(answer(Buffer.concat(kept), true)));
          request.destroy();
        };
        response.on('error', (err) => settle(() => reject(networkFailure(err, where, false, exchange.signal))));
        if (method !== 'HEAD' && Number(header(response.headers, 'content-length')) > maxBodyBytes) {
          tooLong();
          return;
        }
        response.on('data', (chunk: Buffer) => {
          const room = maxBodyBytes - keptBytes;
          if (chunk.length <= room) {
            kept.push(chunk);
            keptBytes += chunk.length;
            return;
          }
          kept.push(chunk.subarray(0, room));
          keptBytes = maxBodyBytes;
          tooLong();
        });
        response.on('end', () => {
          // An answer before the whole body went (an early 401 or 413): the connection cannot be reused.
          if (streamed && streamed.sentBytes < streamed.body.length) request.destroy();
          settle(() => resolve(answer(Buffer.concat(kept), false)));
        });
      });
      request.on('timeout', () => request.destroy(new OciError(`${where} timed out after ${this.#timeoutMs} ms without activity.`, { retryable: true })));
      request.on('error', (err) => settle(() => reject(networkFailure(err, where, request.reusedSocket && !responded, exchange.signal))));
      if (body === undefined) request.end();
      else if (body instanceof Uint8Array) request.end(body);
      else if (streamed) {
        pipeBody(request, streamed, () => responded).then(
          () => {
            if (!request.destroyed) request.end();
          },
          (err: unknown) => request.destroy(err instanceof Error ? err : new Error(String(err))),
        );
      }
    });
  }

  // --- authentication --------------------------------------------------------------------------

  /** The Authorization header for a request needing `scopes`, once the registry's challenge is known. */
  async #authorization(scopes: string[], signal: AbortSignal | undefined): Promise<string | undefined> {
    const challenge = this.#challenge;
    if (challenge === undefined) return undefined;
    if (challenge.scheme === 'basic') return this.#basicCredentials(signal);
    return `Bearer ${await this.#bearerToken(challenge, scopes, signal)}`;
  }

  /**
   * Takes in the challenge of a 401 answer; true when a retry with the credentials it asks for
   * may succeed (they differ from what was sent, or a cached token may have been revoked).
   */
  #learnChallenge(answer: Answer, sent: string | undefined): boolean {
    const challenge = parseChallenge(header(answer.headers, 'www-authenticate'));
    if (challenge === undefined) return false;
    if (challenge.scheme === 'basic') {
      if (this.#credentials.kind === 'anonymous') return false;
      this.#challenge = challenge;
      if (sent === undefined || !/^basic /i.test(sent)) return true;
      // An ECR token may have been revoked before its time: get a new one, once.
      if (this.#credentials.kind === 'ecr') {
        this.#ecrToken = undefined;
        return true;
      }
      return false;
    }
    this.#challenge = challenge;
    if (sent !== undefined && /^bearer /i.test(sent)) {
      const token = sent.slice(7);
      this.#tokens = this.#tokens.filter((t) => t.token !== token);
      if (this.#credentials.kind === 'ecr') this.#ecrToken = undefined;
    }
    return true;
  }

  /** `Basic ...` for the configured credentials; undefined for anonymous. */
  async #basicCredentials(signal: AbortSignal | undefined): Promise<string | undefined> {
    const credentials = this.#credentials;
    if (credentials.kind === 'basic') return `Basic ${Buffer.from(`${credentials.username}:${credentials.password}`).toString('base64')}`;
    // The ECR token is already base64 of `AWS:<password>`, the Basic credentials ECR expects.
    if (credentials.kind === 'ecr') return `Basic ${await this.#ecrAuthorizationToken(signal)}`;
    return undefined;
  }

  /** A bearer token covering `scopes` from the challenge's realm (the Docker token flow), cached until shortly before it expires. */
  async #bearerToken(challenge: Extract<Challenge, { scheme: 'bearer' }>, scopes: string[], signal: AbortSignal | undefined): Promise<string> {
    const wanted = parseScopes(scopes);
    const now = Date.now();
    this.#tokens = this.#tokens.filter((t) => t.reuseUntilMs > now);
    const cached = this.#tokens.find((t) => covers(t.grants, wanted));
    if (cached) return cached.token;
    const key = `${challenge.realm} ${challenge.service ?? ''} ${[...scopes].sort().join(' ')}`;
    let pending = this.#tokenRequests.get(key);
    if (!pending) {
      // Shared with concurrent callers: one caller's abort must not fail the others' wait.
      pending = this.#requestToken(challenge, scopes, wanted).finally(() => this.#tokenRequests.delete(key));
      this.#tokenRequests.set(key, pending);
    }
    return (await unlessAborted(pending, signal)).token;
  }

  async #requestToken(challenge: Extract<Challenge, { scheme: 'bearer' }>, scopes: string[], grants: Map<string, Set<string>>): Promise<CachedToken> {
    const target = this.#locate(challenge.realm, this.#endpoint);
    const params = [...(challenge.service === undefined ? [] : [['service', challenge.service]]), ...scopes.map((s) => ['scope', s])];
    if (params.length > 0) target.url.search = `${target.url.search ? `${target.url.search}&` : '?'}${params.map(([k, v]) => `${k}=${encodeURIComponent(v!)}`).join('&')}`;
    const basic = await this.#basicCredentials(undefined);
    // Without credentials the request goes anonymous: Docker Hub, for one, gives anonymous pull tokens.
    const exchange: Exchange = { method: 'GET', target, headers: basic ? { authorization: basic } : {}, isTokenRequest: true };
    const answer = await this.#exchange(exchange).catch((err: unknown) => {
      if (err instanceof OciError && staleSocketFailures.has(err)) return this.#exchange(exchange);
      throw err;
    });
    if (answer.status !== 200) throw failure(answer, 'getting a token from the registry\'s token endpoint');
    let parsed: { token?: unknown; access_token?: unknown; expires_in?: unknown; issued_at?: unknown };
    try {
      parsed = JSON.parse(answer.body.toString('utf8')) as typeof parsed;
    } catch {
      throw new OciError(`GET ${describe(answer.url)} answered 200 with a body that is not JSON.`, { status: 200, retryable: true });
    }
    const token = typeof parsed.token === 'string' && parsed.token ? parsed.token : typeof parsed.access_token === 'string' ? parsed.access_token : '';
    if (!token) throw new OciError(`GET ${describe(answer.url)} answered 200 without a token.`, { status: 200, retryable: false });
    // Docker token spec: expires_in defaults to 60 s; reuse a token until a quarter of its life remains (30 s at most).
    const lifetimeMs = (typeof parsed.expires_in === 'number' && parsed.expires_in > 0 ? parsed.expires_in : 60) * 1000;
    const issuedMs = typeof parsed.issued_at === 'string' && !Number.isNaN(Date.parse(parsed.issued_at)) ? Math.min(Date.parse(parsed.issued_at), Date.now()) : Date.now();
    const entry = { grants, token, reuseUntilMs: issuedMs + lifetimeMs - Math.min(30_000, lifetimeMs / 4) };
    this.#tokens.push(entry);
    return entry;
  }

  /** The ECR authorization token (base64 of `AWS:<password>`), got anew shortly before the last one expires. */
  async #ecrAuthorizationToken(signal: AbortSignal | undefined): Promise<string> {
    if (this.#ecrToken && Date.now() < this.#ecrToken.reuseUntilMs) return this.#ecrToken.authorizationToken;
    // Shared with concurrent callers, as bearer tokens are.
    this.#ecrTokenRequest ??= this.#requestEcrToken().finally(() => (this.#ecrTokenRequest = undefined));
    return unlessAborted(this.#ecrTokenRequest, signal);
  }

  async #requestEcrToken(): Promise<string> {
    const credentials = this.#credentials;
    if (credentials.kind !== 'ecr') throw new Error('unreachable: an ECR token for other credentials');
    const clients = this.#aws(credentials);
    const endpoint = this.#endpoint.origin;
    let ecr = clients.ecr;
    if (credentials.roleArn !== undefined) {
      let assumed;
      try {
        const out = await clients.sts!.send(
          new AssumeRoleCommand({ RoleArn: credentials.roleArn, RoleSessionName: credentials.roleSessionName ?? 'berth-replication', ...(credentials.externalId === undefined ? {} : { ExternalId: credentials.externalId }) }),
        );
        assumed = out.Credentials;
      } catch (err) {
        throw awsFailure(err, `AssumeRole of ${credentials.roleArn}`, endpoint);
      }
      if (!assumed?.AccessKeyId || !assumed.SecretAccessKey) throw new OciError(`AssumeRole at ${endpoint} answered without credentials.`, { retryable: true });
      // A client per role session (its credentials expire with it), on the shared handler: not destroyed, which would close the handler.
      ecr = new ECRClient({
        region: credentials.region,
        endpoint,
        credentials: { accessKeyId: assumed.AccessKeyId, secretAccessKey: assumed.SecretAccessKey, ...(assumed.SessionToken ? { sessionToken: assumed.SessionToken } : {}) },
        requestHandler: clients.handler,
      });
    }
    let data;
    try {
      const out = await ecr.send(new GetAuthorizationTokenCommand({}));
      data = out.authorizationData?.[0];
    } catch (err) {
      throw awsFailure(err, 'GetAuthorizationToken', endpoint);
    }
    const token = data?.authorizationToken;
    if (!token || !Buffer.from(token, 'base64').toString('utf8').includes(':')) {
      throw new OciError(`GetAuthorizationToken at ${endpoint} answered without a usable authorization token.`, { retryable: true });
    }
    const now = Date.now();
    const expiresMs = data?.expiresAt instanceof Date ? data.expiresAt.getTime() : now + ECR_TOKEN_DEFAULT_MS;
    const lifetimeMs = Math.max(0, expiresMs - now);
    // Shortly before it expires: five minutes, or half its life when it is shorter than ten.
    this.#ecrToken = { authorizationToken: token, reuseUntilMs: expiresMs - Math.min(5 * 60_000, lifetimeMs / 2) };
    return token;
  }

  /** The SDK clients for the endpoint's ECR and STS APIs, made once; they trust `ca` as the data plane does. */
  #aws(credentials: Extract<OciCredentials, { kind: 'ecr' }>): AwsClients {
    if (this.#awsClients) return this.#awsClients;
    const handler = new NodeHttpHandler({
      ...(this.#ca ? { httpsAgent: new https.Agent({ keepAlive: true, ca: this.#ca }) } : {}),
      requestTimeout: this.#timeoutMs,
      connectionTimeout: this.#timeoutMs,
    });
    const config = {
      region: credentials.region,
      endpoint: this.#endpoint.origin,
      credentials: { accessKeyId: credentials.accessKeyId, secretAccessKey: credentials.secretAccessKey, ...(credentials.sessionToken ? { sessionToken: credentials.sessionToken } : {}) },
      requestHandler: handler,
      customUserAgent: this.#userAgent,
    };
    this.#awsClients = { ecr: new ECRClient(config), sts: credentials.roleArn === undefined ? undefined : new STSClient(config), handler };
    return this.#awsClients;
  }
}

// --- blob sources ---------------------------------------------------------------------------------

/** Internal: the registry's offset disagrees with ours; ask it where the upload stands and go on from there. */
class ResyncNeeded extends Error {}

/**
 * Reads a blob source in pieces of at most n bytes, keeping what a piece left over: one source
 * chunk (its highWaterMark) in memory at a time.
 */
class SourceReader {
  readonly #stream: NodeJS.ReadableStream | Readable;
  readonly #iterator: AsyncIterator<string | Buffer>;
  #left: Buffer | undefined;
  /** The blob offset of the next byte take() returns. */
  position: number;
  readonly #size: number;

  constructor(stream: NodeJS.ReadableStream | Readable, offset: number, size: number) {
    this.#stream = stream;
    this.#iterator = stream[Symbol.asyncIterator]();
    this.position = offset;
    this.#size = size;
  }

  /** At most `max` bytes (more than none); rejects when the source fails or ends before the blob's size. */
  async take(max: number): Promise<Buffer> {
    let piece = this.#left;
    this.#left = undefined;
    while (piece === undefined || piece.length === 0) {
      let next: IteratorResult<string | Buffer>;
      try {
        next = await this.#iterator.next();
      } catch (err) {
        throw new OciError(`Reading the blob failed at byte ${this.position}: ${(err as Error).message ?? String(err)}`, { retryable: true, cause: err });
      }
      if (next.done) throw new OciError(`The blob source ended at byte ${this.position} of ${this.#size}.`, { retryable: true });
      piece = typeof next.value === 'string' ? Buffer.from(next.value) : next.value;
    }
    if (piece.length > max) {
      this.#left = piece.subarray(max);
      piece = piece.subarray(0, max);
    }
    this.position += piece.length;
    return piece;
  }

  close(): void {
    this.#left = undefined;
    void this.#iterator.return?.()?.catch(() => undefined);
    if ('destroy' in this.#stream && typeof this.#stream.destroy === 'function') this.#stream.destroy();
  }
}

async function openSource(open: (offset: number) => Promise<NodeJS.ReadableStream | Readable>, offset: number, size: number): Promise<SourceReader> {
  let stream: NodeJS.ReadableStream | Readable;
  try {
    stream = await open(offset);
  } catch (err) {
    if (err instanceof OciError) throw err;
    throw new OciError(`Opening the blob at byte ${offset} failed: ${(err as Error).message ?? String(err)}`, { retryable: true, cause: err });
  }
  return new SourceReader(stream, offset, size);
}

/**
 * Writes body.length bytes of the source into the request, with backpressure, counting them in
 * `sentBytes`; stops early once the server has answered or the request is gone.
 */
async function pipeBody(request: http.ClientRequest, streamed: { body: StreamBody; sentBytes: number }, responded: () => boolean): Promise<void> {
  const { body } = streamed;
  while (streamed.sentBytes < body.length) {
    if (responded() || request.destroyed) return;
    const piece = await body.source.take(body.length - streamed.sentBytes);
    streamed.sentBytes += piece.length;
    if (!request.write(piece)) {
      await new Promise<void>((resolve) => {
        const done = () => {
          request.off('drain', done);
          request.off('close', done);
          resolve();
        };
        request.on('drain', done);
        request.on('close', done);
      });
    }
  }
}

// --- response streams -----------------------------------------------------------------------------

/**
 * The body of a response as a stream of its own, never held whole: bytes pass through with
 * backpressure (the response pauses while the reader's buffer is full), and the inactivity timer
 * runs only while the reader waits for bytes, so that a sender that stalls errors the stream but a
 * reader that is slow does not. Failures after the headers (the connection cut, the timer, the
 * signal) error the stream: with an OciError that is retryable, or the signal's reason. Destroying
 * the stream before its end closes the connection.
 */
function responseStream(request: http.ClientRequest, response: http.IncomingMessage, options: { idleMs: number; where: string; signal: AbortSignal | undefined }): Readable {
  let timer: NodeJS.Timeout | undefined;
  const disarm = () => {
    clearTimeout(timer);
    timer = undefined;
  };
  const arm = () => {
    disarm();
    timer = setTimeout(() => stream.destroy(new OciError(`${options.where} timed out after ${options.idleMs} ms without activity while sending the body.`, { retryable: true })), options.idleMs);
  };
  const fail = (err: Error) => {
    // An error once the body is all in (a socket closing later) takes nothing from the reader.
    if (!response.complete) stream.destroy(networkFailure(err, options.where, false, options.signal) as Error);
  };
  const stream = new Readable({
    highWaterMark: 64 * 1024,
    read() {
      arm();
      response.resume();
    },
    destroy(err, callback) {
      disarm();
      if (!response.complete) {
        response.destroy();
        request.destroy();
      }
      callback(err);
    },
  });
  // Paused before the data listener, which would otherwise start the flow before anyone reads.
  response.pause();
  response.on('data', (chunk: Buffer) => {
    disarm();
    if (stream.push(chunk)) arm();
    else response.pause();
  });
  response.on('end', () => {
    disarm();
    stream.push(null);
  });
  response.on('error', fail);
  request.on('error', fail);
  return stream;
}

// --- helpers --------------------------------------------------------------------------------------

/** Waits `ms`; rejects with the signal's reason when it aborts first. */
async function pause(ms: number, signal: AbortSignal | undefined): Promise<void> {
  try {
    await sleep(ms, undefined, signal ? { signal } : {});
  } catch (err) {
    throw signal?.aborted ? signal.reason : err;
  }
}

/** The promise, or the signal's reason as soon as it aborts: for waits shared with other callers. */
function unlessAborted<T>(promise: Promise<T>, signal: AbortSignal | undefined): Promise<T> {
  if (!signal) return promise;
  if (signal.aborted) return Promise.reject(signal.reason);
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(signal.reason);
    signal.addEventListener('abort', onAbort, { once: true });
    promise.then(
      (value) => {
        signal.removeEventListener('abort', onAbort);
        resolve(value);
      },
      (err: unknown) => {
        signal.removeEventListener('abort', onAbort);
        reject(err);
      },
    );
  });
}

function positiveInteger(value: number | undefined, fallback: number, name: string): number {
  if (value === undefined) return fallback;
  if (!Number.isSafeInteger(value) || value <= 0) throw new OciError(`${name} must be a positive whole number, not ${value}.`, { retryable: false });
  return value;
}

function checkName(repository: string): void {
  if (!NAME_RE.test(repository)) throw new OciError(`${JSON.stringify(repository)} is not a valid repository name.`, { retryable: false });
}

function checkDigest(digest: string): void {
  if (!DIGEST_RE.test(digest)) throw new OciError(`${JSON.stringify(digest)} is not a digest (algorithm:hex).`, { retryable: false });
}

function checkReference(reference: string): void {
  if (!TAG_RE.test(reference) && !DIGEST_RE.test(reference)) throw new OciError(`${JSON.stringify(reference)} is neither a tag nor a digest.`, { retryable: false });
}

/** `algorithm:hex` → `algorithm`. */
function algorithmOf(digest: string): string {
  return digest.slice(0, digest.indexOf(':'));
}

/** The digest of `bytes` with `algorithm`, for the two OCI image-spec registers (sha256, sha512); undefined for another. */
function digestOf(bytes: Uint8Array, algorithm: string): string | undefined {
  if (algorithm !== 'sha256' && algorithm !== 'sha512') return undefined;
  return `${algorithm}:${createHash(algorithm).update(bytes).digest('hex')}`;
}

/** The `mediaType` field of a JSON manifest, when it has one. */
function mediaTypeField(bytes: Buffer): string | undefined {
  try {
    const parsed = JSON.parse(bytes.toString('utf8')) as { mediaType?: unknown };
    return typeof parsed?.mediaType === 'string' && parsed.mediaType ? parsed.mediaType : undefined;
  } catch {
    return undefined;
  }
}

function scope(repository: string, actions: string): string {
  return `repository:${repository}:${actions}`;
}

/** `repository:NAME:a,b` scopes as name → actions (other resource types are kept under their whole text). */
function parseScopes(scopes: string[]): Map<string, Set<string>> {
  const grants = new Map<string, Set<string>>();
  for (const s of scopes) {
    const i = s.lastIndexOf(':');
    const resource = i > 0 ? s.slice(0, i) : s;
    const actions = grants.get(resource) ?? new Set<string>();
    for (const a of (i > 0 ? s.slice(i + 1) : '').split(',')) if (a) actions.add(a);
    grants.set(resource, actions);
  }
  return grants;
}

function covers(granted: Map<string, Set<string>>, wanted: Map<string, Set<string>>): boolean {
  for (const [resource, actions] of wanted) {
    const have = granted.get(resource);
    if (!have) return false;
    for (const a of actions) if (!have.has(a)) return false;
  }
  return true;
}

/**
 * The first Bearer challenge of a WWW-Authenticate header, else its Basic one. Challenges are
 * `scheme param=value, param="quoted, value"` (RFC 9110 section 11.6.1), several in one header
 * when a registry sent more than one (Node joins repeated headers with commas).
 */
function parseChallenge(value: string | undefined): Challenge | undefined {
  if (!value) return undefined;
  const challenges: { scheme: string; params: Map<string, string> }[] = [];
  const token = /[!#$%&'*+.^_`|~0-9A-Za-z-]+/y;
  const quoted = /"((?:[^"\\]|\\.)*)"/y;
  let i = 0;
  const read = (re: RegExp): RegExpExecArray | null => {
    re.lastIndex = i;
    const m = re.exec(value);
    if (m) i = re.lastIndex;
    return m;
  };
  const skipSpace = () => {
    while (value[i] === ' ' || value[i] === '\t') i++;
  };
  while (i < value.length) {
    const name = read(token)?.[0];
    if (name === undefined) {
      i++; // a separator, or a character no challenge has
      continue;
    }
    skipSpace();
    if (value[i] !== '=') {
      challenges.push({ scheme: name.toLowerCase(), params: new Map() });
      continue;
    }
    i++;
    skipSpace();
    const q = read(quoted);
    const v = q ? q[1]!.replace(/\\(.)/g, '$1') : (read(token)?.[0] ?? '');
    challenges.at(-1)?.params.set(name.toLowerCase(), v);
  }
  const bearer = challenges.find((c) => c.scheme === 'bearer' && c.params.get('realm'));
  if (bearer) return { scheme: 'bearer', realm: bearer.params.get('realm')!, service: bearer.params.get('service') };
  if (challenges.some((c) => c.scheme === 'basic')) return { scheme: 'basic' };
  return undefined;
}

/** One past the last byte of an upload's `Range: 0-<last>` (or `bytes=0-<last>`); Distribution and Berth say `0-0` for none. */
function rangeEnd(value: string | string[] | undefined): number | undefined {
  const m = /^(?:bytes=)?0-(\d+)$/.exec(String(value ?? '').trim());
  if (!m) return undefined;
  const last = Number(m[1]);
  return last === 0 ? 0 : last + 1;
}

function header(headers: http.IncomingHttpHeaders, name: string): string | undefined {
  const value = headers[name];
  return Array.isArray(value) ? value.join(', ') : value;
}

/** The name in a Host value, without its port or IPv6 brackets. */
function hostnameOf(host: string): string {
  if (host.startsWith('[')) return host.slice(1, host.indexOf(']'));
  return host.replace(/:\d*$/, '');
}

function isRedirect(status: number): boolean {
  return status === 301 || status === 302 || status === 303 || status === 307 || status === 308;
}

/** Origin and path only: query strings can hold signatures (presigned storage URLs) or session state. */
function describe(url: URL): string {
  return `${url.origin}${url.pathname}`;
}

function isRetryableStatus(status: number): boolean {
  return status === 408 || status === 429 || status >= 500;
}

function retryAfter(headers: http.IncomingHttpHeaders): number | undefined {
  const value = header(headers, 'retry-after');
  if (value === undefined) return undefined;
  if (/^\d+$/.test(value.trim())) return Number(value.trim()) * 1000;
  const at = Date.parse(value);
  return Number.isNaN(at) ? undefined : Math.max(0, at - Date.now());
}

/** The first error of an OCI error body (`{"errors":[{code,message,detail}]}`, spec "Error Codes"), when the body is one. */
function errorBody(answer: Answer): { code?: string; message?: string; detail?: unknown } {
  try {
    const parsed = JSON.parse(answer.body.toString('utf8')) as { errors?: { code?: unknown; message?: unknown; detail?: unknown }[] };
    const first = parsed.errors?.[0];
    return {
      ...(typeof first?.code === 'string' ? { code: first.code } : {}),
      ...(typeof first?.message === 'string' ? { message: first.message } : {}),
      detail: first?.detail,
    };
  } catch {
    return {};
  }
}

/**
 * An OciError for an unexpected answer, with the OCI error code and message from its body when
 * there is one. Three answers get a code whatever the body says, so that callers need not know
 * each registry's dialect: 429 is TOOMANYREQUESTS (Docker Hub's pull rate limit; retryable, with
 * Retry-After as retryAfterMs); 401 and 403 from the registry or its token endpoint are
 * UNAUTHORIZED and DENIED, with a message that says whether the registry refused the credentials
 * or needs some (the registry's own code stays in the message).
 */
function failure(answer: Answer, doing: string): OciError {
  const body = errorBody(answer);
  const { message, detail } = body;
  const status = answer.status;
  let code = body.code;
  let meaning = '';
  if (status === 429) code = 'TOOMANYREQUESTS';
  else if ((status === 401 || status === 403) && answer.credentials !== undefined && code !== 'TOOMANYREQUESTS') {
    code = status === 401 ? 'UNAUTHORIZED' : 'DENIED';
    // Docker token spec: a token that is valid but does not cover the request is refused with
    // error="insufficient_scope". Docker Hub answers so for a private repository and for one
    // that does not exist alike: the credentials (or anonymous access) were fine, the repository not.
    const insufficientScope = status === 401 && /\berror="?insufficient_scope/i.test(header(answer.headers, 'www-authenticate') ?? '');
    if (insufficientScope) meaning = ` The registry gives ${answer.credentials === 'none' ? 'anonymous callers' : 'these credentials'} no access to this repository (it may also not exist).`;
    else if (answer.credentials === 'none') meaning = ' The registry needs credentials, and none are configured.';
    else meaning = status === 401 ? ' The registry refused the credentials given.' : ' The registry refused access with the credentials given.';
  }
  const retryable = isRetryableStatus(status) || code === 'TOOMANYREQUESTS';
  const said = body.code ? `${body.code}${message ? `: ${message}` : ''}` : message ?? (answer.body.length > 0 && answer.body.length < 200 && !answer.truncated ? answer.body.toString('utf8').trim() : '');
  return new OciError(`${answer.method} ${describe(answer.url)} answered ${status} while ${doing}${said ? ` (${said})` : ''}.${meaning}`, {
    status,
    code,
    detail,
    retryable,
    retryAfterMs: retryAfter(answer.headers),
  });
}

/** As failure(), but within an upload session: a session that is gone (404) or a registry that disagrees on the offset (416) are worth resuming. */
function uploadFailure(answer: Answer, doing: string): OciError | ResyncNeeded {
  const error = failure(answer, doing);
  if (answer.status === 404 || answer.status === 416) return new ResyncNeeded(error.message, { cause: error });
  // A 401 mid-upload (a token that expired): the challenge was taken in; once more with new credentials.
  if (answer.status === 401) return new ResyncNeeded(error.message, { cause: error });
  return error;
}

function networkFailure(err: Error, where: string, staleSocket: boolean, signal: AbortSignal | undefined): unknown {
  if (signal?.aborted) return signal.reason;
  if (err instanceof OciError) return err;
  const code = (err as NodeJS.ErrnoException).code;
  const tls = isTlsFailure(code);
  // Certificate failures do not mend by themselves: they need configuration (ca, hostHeader).
  const error = new OciError(`${where} failed: ${err.message}${code && !err.message.includes(code) ? ` (${code})` : ''}`, { retryable: !tls, cause: err });
  if (staleSocket && (code === 'ECONNRESET' || code === 'EPIPE')) staleSocketFailures.add(error);
  return error;
}

/** Certificate and TLS failures (OpenSSL's verify codes, Node's ERR_TLS_* and ERR_SSL_*). */
function isTlsFailure(code: string | undefined): boolean {
  return typeof code === 'string' && /CERT|SSL|TLS|SELF_SIGNED|UNABLE_TO_(?:GET_ISSUER|VERIFY_LEAF|DECRYPT|DECODE)|HOSTNAME/.test(code);
}

function asOciError(err: unknown, doing: string): OciError {
  if (err instanceof OciError) return err;
  return new OciError(`Unexpected failure while ${doing}: ${(err as Error)?.message ?? String(err)}`, { retryable: true, cause: err });
}

function awsFailure(err: unknown, operation: string, endpoint: string): OciError {
  if (err instanceof OciError) return err;
  const e = err as Error & { $metadata?: { httpStatusCode?: number }; $retryable?: unknown; code?: string };
  const status = e.$metadata?.httpStatusCode;
  const tls = isTlsFailure(e.code);
  const retryable = !tls && (status === undefined || isRetryableStatus(status) || Boolean(e.$retryable) || /Throttl/.test(e.name));
  return new OciError(`${operation} at ${endpoint} failed: ${e.name}: ${e.message}`, { status, code: status === undefined ? undefined : e.name, retryable, cause: err });
}
