import { Hash } from '@smithy/hash-node';
import { HttpRequest } from '@smithy/protocol-http';
import { SignatureV4 } from '@smithy/signature-v4';
import type { FastifyInstance } from 'fastify';

/**
 * The console's way to Berth: the public APIs, called in-process (Fastify's `inject`, no socket)
 * with SigV4 requests signed by the signed-in user's session credentials. Every call therefore
 * passes the same signature check, IAM evaluation and audit as `aws ... --endpoint-url`; the
 * console holds no privilege of its own.
 */

export interface SessionCredentials {
  accessKeyId: string;
  secretAccessKey: string;
  sessionToken: string;
}

type JsonService = 'ecr' | 'secretsmanager' | 'cloudtrail';
type QueryService = 'iam' | 'sts';

const TARGETS: Record<JsonService, string> = {
  ecr: 'AmazonEC2ContainerRegistry_V20150921.',
  secretsmanager: 'secretsmanager.',
  cloudtrail: 'com.amazonaws.cloudtrail.v20131101.CloudTrail_20131101.',
};

/** An API's refusal, as the API spelled it (`AccessDeniedException`, `RepositoryNotFoundException`...). */
export class ApiError extends Error {
  readonly code: string;
  readonly status: number;
  constructor(code: string, message: string, status: number) {
    super(message);
    this.code = code;
    this.status = status;
  }
  get denied(): boolean {
    return /^AccessDenied/.test(this.code);
  }
}

export interface ApiOptions {
  app: FastifyInstance;
  credentials: SessionCredentials;
  region: string;
  /** The Host the browser used: the API answers (URIs, proxyEndpoint) name it. */
  host: string;
  /** The browser's address, so that policies see it as aws:SourceIp. */
  clientIp: string;
}

export interface DataResponse {
  status: number;
  headers: Record<string, unknown>;
  body: Buffer;
}

const USER_AGENT = 'berth-console';

export class ConsoleApi {
  readonly #options: ApiOptions;
  readonly #signers = new Map<string, SignatureV4>();
  #basic: Promise<string> | undefined;

  constructor(options: ApiOptions) {
    this.#options = options;
  }

  #signer(service: string): SignatureV4 {
    let signer = this.#signers.get(service);
    if (!signer) {
      signer = new SignatureV4({ service, region: this.#options.region, credentials: this.#options.credentials, sha256: Hash.bind(null, 'sha256') });
      this.#signers.set(service, signer);
    }
    return signer;
  }

  async #send(service: string, headers: Record<string, string>, body: string): Promise<{ status: number; body: string }> {
    const request = new HttpRequest({ method: 'POST', protocol: 'http:', hostname: this.#options.host, path: '/', headers: { host: this.#options.host, ...headers }, body });
    const signed = await this.#signer(service).sign(request);
    const res = await this.#options.app.inject({
      method: 'POST',
      url: '/',
      headers: { ...(signed.headers as Record<string, string>), 'user-agent': USER_AGENT },
      payload: body,
      remoteAddress: this.#options.clientIp,
    });
    return { status: res.statusCode, body: res.body };
  }

  /** An AWS JSON 1.1 operation (ECR, Secrets Manager, CloudTrail); rejects with ApiError when it fails. */
  async call<T = any>(service: JsonService, operation: string, input: Record<string, unknown> = {}): Promise<T> {
    const res = await this.#send(service, { 'content-type': 'application/x-amz-json-1.1', 'x-amz-target': `${TARGETS[service]}${operation}` }, JSON.stringify(input));
    let parsed: any;
    try {
      parsed = res.body ? JSON.parse(res.body) : {};
    } catch {
      throw new ApiError('InvalidResponse', `${operation} answered ${res.status} with a body that is not JSON.`, res.status);
    }
    if (res.status >= 300) {
      const type = String(parsed.__type ?? 'UnknownError').split('#').pop()!;
      throw new ApiError(type, String(parsed.message ?? parsed.Message ?? `${operation} failed with status ${res.status}.`), res.status);
    }
    return parsed as T;
  }

  /** An AWS Query operation (IAM, STS); resolves the XML answer, rejects with ApiError when it fails. */
  async query(service: QueryService, action: string, params: Record<string, string> = {}): Promise<string> {
    const body = new URLSearchParams({ Action: action, Version: service === 'iam' ? '2010-05-08' : '2011-06-15', ...params }).toString();
    const res = await this.#send(service, { 'content-type': 'application/x-www-form-urlencoded; charset=utf-8' }, body);
    if (res.status >= 300) {
      const code = /<Code>([^<]*)<\/Code>/.exec(res.body)?.[1] ?? 'UnknownError';
      const message = /<Message>([^<]*)<\/Message>/.exec(res.body)?.[1] ?? `${action} failed with status ${res.status}.`;
      throw new ApiError(code, decodeXml(message), res.status);
    }
    return res.body;
  }

  /**
   * A GET on the OCI data plane (`/v2/...`) with an authorization token of this session, as
   * `docker login` would use it; follows a blob redirect (to /download or to the object store).
   * At most `limit` bytes are read.
   */
  async data(path: string, accept: string, limit = 4 * 1024 * 1024): Promise<DataResponse> {
    this.#basic ??= this.call<{ authorizationData: { authorizationToken: string }[] }>('ecr', 'GetAuthorizationToken').then((out) => `Basic ${out.authorizationData[0]!.authorizationToken}`);
    let basic: string;
    try {
      basic = await this.#basic;
    } catch (err) {
      this.#basic = undefined;
      throw err;
    }
    const res = await this.#options.app.inject({ method: 'GET', url: path, headers: { host: this.#options.host, authorization: basic, accept, 'user-agent': USER_AGENT }, remoteAddress: this.#options.clientIp });
    const location = res.headers['location'];
    if (res.statusCode >= 300 && res.statusCode < 400 && typeof location === 'string') {
      const target = new URL(location, `http://${this.#options.host}`);
      if (target.host === this.#options.host) {
        const again = await this.#options.app.inject({ method: 'GET', url: target.pathname + target.search, headers: { host: this.#options.host, 'user-agent': USER_AGENT }, remoteAddress: this.#options.clientIp });
        return { status: again.statusCode, headers: again.headers, body: again.rawPayload.subarray(0, limit) };
      }
      // A presigned URL of the object store: fetched as a client would, bounded.
      const answer = await fetch(target, { redirect: 'follow' });
      const reader = answer.body?.getReader();
      const chunks: Buffer[] = [];
      let size = 0;
      while (reader) {
        const { done, value } = await reader.read();
        if (done) break;
        chunks.push(Buffer.from(value));
        size += value.length;
        if (size >= limit) {
          await reader.cancel();
          break;
        }
      }
      return { status: answer.status, headers: Object.fromEntries(answer.headers), body: Buffer.concat(chunks).subarray(0, limit) };
    }
    return { status: res.statusCode, headers: res.headers, body: res.rawPayload.subarray(0, limit) };
  }
}

/**
 * The call's answer, or undefined when the API says the thing is not there (`missing` matches the
 * error code), or, with `orDenied`, that the user may not see it: a page then shows what it can.
 */
export async function unlessMissing<T>(call: Promise<T>, missing: RegExp, orDenied = false): Promise<T | undefined> {
  try {
    return await call;
  } catch (err) {
    if (err instanceof ApiError && (missing.test(err.code) || (orDenied && err.denied))) return undefined;
    throw err;
  }
}

function decodeXml(text: string): string {
  return text.replace(/&(lt|gt|quot|apos|amp);/g, (_m, e: string) => ({ lt: '<', gt: '>', quot: '"', apos: "'", amp: '&' })[e]!);
}
