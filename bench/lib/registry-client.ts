import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import http from 'node:http';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';

export interface HttpResult {
  status: number;
  headers: http.IncomingHttpHeaders;
  /** Empty when the body was discarded. */
  body: Buffer;
  bodyBytes: number;
}

export interface RequestOptions {
  headers?: http.OutgoingHttpHeaders;
  /** A Buffer, or a factory for a stream (called once, when the request is sent). */
  body?: Buffer | (() => Readable);
  /** Count the response bytes but keep none of them (blob pulls). */
  discardBody?: boolean;
  /** Sees every chunk of the response body as it arrives (to hash it), kept or not. */
  onBodyChunk?: (chunk: Buffer) => void;
}

export class HttpStatusError extends Error {
  readonly status: number;
  constructor(message: string, status: number) {
    super(message);
    this.status = status;
  }
}

/** Bytes per read when streaming a file into a request. */
const FILE_READ_BYTES = 1024 * 1024;

export const ACCEPT_MANIFESTS = [
  'application/vnd.oci.image.manifest.v1+json',
  'application/vnd.oci.image.index.v1+json',
  'application/vnd.docker.distribution.manifest.v2+json',
  'application/vnd.docker.distribution.manifest.list.v2+json',
].join(', ');

/**
 * A minimal OCI Distribution client over node:http with one keep-alive agent per server, as a
 * real client keeps its connections. Only what the benchmarks need; every call checks status.
 * With `authorization`, every request sends that header (a caller's own Authorization wins), as
 * a client that has logged in does; without it, none.
 */
export class RegistryClient {
  readonly baseUrl: string;
  readonly agent: http.Agent;
  readonly authorization: string | undefined;

  constructor(baseUrl: string, options: { maxSockets?: number; authorization?: string | undefined } = {}) {
    this.baseUrl = baseUrl;
    this.agent = new http.Agent({ keepAlive: true, maxSockets: options.maxSockets ?? 64 });
    this.authorization = options.authorization;
  }

  close(): void {
    this.agent.destroy();
  }

  request(method: string, target: string, options: RequestOptions = {}): Promise<HttpResult> {
    const url = new URL(target, this.baseUrl);
    const hasOwn = Object.keys(options.headers ?? {}).some((k) => k.toLowerCase() === 'authorization');
    const headers = this.authorization === undefined || hasOwn ? options.headers : { ...options.headers, authorization: this.authorization };
    return new Promise<HttpResult>((resolve, reject) => {
      const req = http.request(url, { method, agent: this.agent, headers }, (res) => {
        const chunks: Buffer[] = [];
        let bodyBytes = 0;
        res.on('data', (chunk: Buffer) => {
          bodyBytes += chunk.length;
          options.onBodyChunk?.(chunk);
          if (!options.discardBody) chunks.push(chunk);
        });
        res.once('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks), bodyBytes }));
        res.once('error', reject);
      });
      req.once('error', reject);
      const body = options.body;
      if (body === undefined) req.end();
      else if (Buffer.isBuffer(body)) req.end(body);
      // A server that answers early (an error) may close before the body is sent; the response wins.
      else pipeline(body(), req).catch(reject);
    });
  }

  private async expect(method: string, target: string, statuses: number[], options: RequestOptions = {}): Promise<HttpResult> {
    const res = await this.request(method, target, options);
    if (!statuses.includes(res.status)) {
      throw new HttpStatusError(`${method} ${target}: status ${res.status}, wanted ${statuses.join(' or ')}: ${res.body.toString('utf8', 0, 500)}`, res.status);
    }
    return res;
  }

  private async startUpload(repo: string): Promise<string> {
    const res = await this.expect('POST', `/v2/${repo}/blobs/uploads/`, [202], { headers: { 'content-length': 0 } });
    const location = res.headers.location;
    if (!location) throw new Error(`POST upload in ${repo}: no Location header`);
    return location;
  }

  /** The upload URL the server gave, plus `digest=`; Distribution's carries state in its query. */
  private withDigest(location: string, digest: string): string {
    const url = new URL(location, this.baseUrl);
    url.searchParams.set('digest', digest);
    return url.pathname + url.search;
  }

  /** Spec: "Pushing a blob monolithically", the POST-then-PUT form. */
  async pushBlobMonolithic(repo: string, blob: { digest: string; sizeBytes: number; path?: string; bytes?: Buffer }): Promise<void> {
    const location = await this.startUpload(repo);
    const body = blob.bytes ?? (() => createReadStream(blob.path!, { highWaterMark: FILE_READ_BYTES }));
    await this.expect('PUT', this.withDigest(location, blob.digest), [201], {
      headers: { 'content-type': 'application/octet-stream', 'content-length': blob.sizeBytes },
      body,
    });
  }

  /** Spec: "Pushing a blob in chunks": PATCH each chunk with Content-Range, then PUT with no body. */
  async pushBlobChunked(repo: string, blob: { digest: string; sizeBytes: number; path: string }, chunkBytes: number): Promise<number> {
    let location = await this.startUpload(repo);
    let chunks = 0;
    for (let start = 0; start < blob.sizeBytes; start += chunkBytes) {
      const end = Math.min(start + chunkBytes, blob.sizeBytes) - 1;
      const res = await this.expect('PATCH', location, [202], {
        headers: { 'content-type': 'application/octet-stream', 'content-length': end - start + 1, 'content-range': `${start}-${end}` },
        body: () => createReadStream(blob.path, { start, end, highWaterMark: FILE_READ_BYTES }),
      });
      location = res.headers.location ?? location;
      chunks++;
    }
    await this.expect('PUT', this.withDigest(location, blob.digest), [201], { headers: { 'content-length': 0 } });
    return chunks;
  }

  /** GETs a blob, discarding its bytes; returns how many arrived. */
  async pullBlob(repo: string, digest: string, expectedBytes: number): Promise<number> {
    const res = await this.expect('GET', `/v2/${repo}/blobs/${digest}`, [200], { discardBody: true });
    if (res.bodyBytes !== expectedBytes) throw new Error(`GET blob ${digest}: ${res.bodyBytes} bytes, wanted ${expectedBytes}`);
    return res.bodyBytes;
  }

  /** GETs a blob, hashing its bytes as they arrive and keeping none; rejects unless size and sha256 match. */
  async pullBlobVerified(repo: string, digest: string, expectedBytes: number): Promise<number> {
    const hash = createHash('sha256');
    const res = await this.expect('GET', `/v2/${repo}/blobs/${digest}`, [200], { discardBody: true, onBodyChunk: (chunk) => hash.update(chunk) });
    if (res.bodyBytes !== expectedBytes) throw new Error(`GET blob ${digest} from ${repo}: ${res.bodyBytes} bytes, wanted ${expectedBytes}`);
    const got = `sha256:${hash.digest('hex')}`;
    if (got !== digest) throw new Error(`GET blob ${digest} from ${repo}: the bytes hash to ${got}`);
    return res.bodyBytes;
  }

  async blobExists(repo: string, digest: string): Promise<boolean> {
    const res = await this.expect('HEAD', `/v2/${repo}/blobs/${digest}`, [200, 404]);
    return res.status === 200;
  }

  async putManifest(repo: string, reference: string, mediaType: string, bytes: Buffer): Promise<void> {
    await this.expect('PUT', `/v2/${repo}/manifests/${reference}`, [201], { headers: { 'content-type': mediaType, 'content-length': bytes.length }, body: bytes });
  }

  async getManifest(repo: string, reference: string): Promise<HttpResult> {
    return this.expect('GET', `/v2/${repo}/manifests/${reference}`, [200], { headers: { accept: ACCEPT_MANIFESTS } });
  }

  async listTags(repo: string): Promise<string[]> {
    const res = await this.expect('GET', `/v2/${repo}/tags/list`, [200]);
    return (JSON.parse(res.body.toString('utf8')) as { tags: string[] | null }).tags ?? [];
  }
}

export interface PulledImage {
  manifestDigest: string;
  /** Config and layers: the bytes a pull moves besides the manifest. */
  blobBytes: number;
  blobs: number;
}

/**
 * Pulls an image as docker does: the manifest by tag or digest (checked against `expectedDigest`
 * when given), then the config and the layers `concurrency` at a time, each hashed as it arrives
 * and checked against its digest, its bytes discarded. Single-platform OCI or Docker manifests only.
 */
export async function pullImageVerified(client: RegistryClient, repo: string, reference: string, options: { concurrency: number; expectedDigest?: string }): Promise<PulledImage> {
  const res = await client.getManifest(repo, reference);
  const manifestDigest = `sha256:${createHash('sha256').update(res.body).digest('hex')}`;
  if (options.expectedDigest !== undefined && manifestDigest !== options.expectedDigest) {
    throw new Error(`GET manifest ${repo}:${reference}: digest ${manifestDigest}, wanted ${options.expectedDigest}`);
  }
  const manifest = JSON.parse(res.body.toString('utf8')) as { config?: { digest: string; size: number }; layers?: { digest: string; size: number }[] };
  if (!manifest.config || !manifest.layers) throw new Error(`GET manifest ${repo}:${reference}: not an image manifest (an index?)`);
  const blobs = [manifest.config, ...manifest.layers];
  const sizes = await mapLimit(blobs, options.concurrency, (b) => client.pullBlobVerified(repo, b.digest, b.size));
  return { manifestDigest, blobBytes: sizes.reduce((a, b) => a + b, 0), blobs: blobs.length };
}

/** Runs `fn` over `items` with at most `concurrency` in flight; results in input order. */
export async function mapLimit<T, R>(items: readonly T[], concurrency: number, fn: (item: T, index: number) => Promise<R>): Promise<R[]> {
  const results = new Array<R>(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      results[i] = await fn(items[i]!, i);
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, items.length) }, worker));
  return results;
}
