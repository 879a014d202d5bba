import type { FastifyRequest } from 'fastify';
import { RegistryError } from '../errors/catalogue.ts';
import type { ChunkBounds } from '../registry/registry.ts';

export type Query = Record<string, string | string[] | undefined>;

export function queryOf(request: FastifyRequest): Query {
  return request.query as Query;
}

/** The single value of a query parameter (the first when repeated). */
export function param(query: Query, name: string): string | undefined {
  const v = query[name];
  return Array.isArray(v) ? v[0] : v;
}

export const MAX_PAGE = 10_000;

/** `n` and `last` (spec: "Listing Tags"); no `n` means one page of the largest size. */
export function pageOf(query: Query): { limit: number; after: string | undefined } {
  const n = param(query, 'n');
  let limit = MAX_PAGE;
  if (n !== undefined) {
    if (!/^\d+$/.test(n)) {
      throw new RegistryError('PaginationNumberInvalid', { n }, { message: `The page size n must be a whole number, got ${JSON.stringify(n)}.` });
    }
    limit = Math.min(Number(n), MAX_PAGE);
  }
  const last = param(query, 'last');
  return { limit, after: last === '' ? undefined : last };
}

export function nextLink(path: string, limit: number, last: string): string {
  return `<${path}?n=${limit}&last=${encodeURIComponent(last)}>; rel="next"`;
}

/** Whether the request carries a body at all (as opposed to an empty one). */
export function hasBody(request: FastifyRequest): boolean {
  const te = request.headers['transfer-encoding'];
  const cl = request.headers['content-length'];
  return te !== undefined || (cl !== undefined && cl !== '0');
}

/** Content-Length as a number, or undefined when absent (chunked transfer). */
export function contentLength(request: FastifyRequest): number | undefined {
  const cl = request.headers['content-length'];
  if (cl === undefined) return undefined;
  if (!/^\d+$/.test(cl)) throw new RegistryError('SizeInvalid', { contentLength: cl }, { message: 'The Content-Length header is not a number.' });
  return Number(cl);
}

/**
 * Content-Range of a chunk: `<start>-<end>` as the spec writes it; `bytes <start>-<end>/<total>`
 * (RFC 9110's form, sent by some clients) is accepted as well.
 */
export function chunkBounds(request: FastifyRequest): ChunkBounds {
  const length = contentLength(request);
  const raw = request.headers['content-range'];
  if (raw === undefined) return { length };
  const m = /^(?:bytes[ =])?(\d+)-(\d+)(?:\/(?:\d+|\*))?$/.exec(raw.trim());
  if (!m || Number(m[2]) < Number(m[1])) {
    throw new RegistryError('RangeInvalid', { contentRange: raw }, { message: `Content-Range ${JSON.stringify(raw)} is not of the form <start>-<end>.` });
  }
  return { start: Number(m[1]), end: Number(m[2]), length };
}

/**
 * A blob Range header (RFC 9110 section 14.1.2): one range, `bytes=a-b`, `bytes=a-` or
 * `bytes=-n`. Several ranges or a malformed header are ignored and the whole blob is served, as
 * the RFC allows; a range beyond the end is unsatisfiable.
 */
export function byteRange(header: string | undefined, size: number): { start: number; end: number } | undefined {
  if (header === undefined) return undefined;
  const m = /^bytes=(\d*)-(\d*)$/.exec(header.trim());
  if (!m || (m[1] === '' && m[2] === '')) return undefined;
  let start: number;
  let end: number;
  if (m[1] === '') {
    const suffix = Number(m[2]);
    if (suffix === 0) throw unsatisfiable(size);
    start = Math.max(0, size - suffix);
    end = size - 1;
  } else {
    start = Number(m[1]);
    end = m[2] === '' ? size - 1 : Math.min(Number(m[2]), size - 1);
    if (m[2] !== '' && Number(m[2]) < start) return undefined;
  }
  if (start >= size) throw unsatisfiable(size);
  return { start, end };
}

function unsatisfiable(size: number): RegistryError {
  return new RegistryError('RangeNotSatisfiable', { size }, { message: `The requested range is outside the blob, which has ${size} bytes.` });
}

/** Reads a whole request body of at most maxBytes into memory (manifests only). */
export async function readSmallBody(request: FastifyRequest, maxBytes: number, tooLarge: (size: number) => Error): Promise<Buffer> {
  const declared = contentLength(request);
  if (declared !== undefined && declared > maxBytes) {
    request.raw.resume();
    throw tooLarge(declared);
  }
  return new Promise<Buffer>((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const raw = request.raw;
    const onData = (chunk: Buffer) => {
      size += chunk.length;
      if (size > maxBytes) {
        // Stop keeping bytes but let the rest drain, so the error response can still be read.
        raw.off('data', onData);
        raw.off('end', onEnd);
        raw.resume();
        reject(tooLarge(size));
        return;
      }
      chunks.push(chunk);
    };
    const onEnd = () => resolve(Buffer.concat(chunks, size));
    raw.on('data', onData);
    raw.once('end', onEnd);
    raw.once('error', reject);
  });
}
