import { createHash } from 'node:crypto';
import type { Readable } from 'node:stream';
import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CopyObjectCommand,
  CreateMultipartUploadCommand,
  DeleteObjectCommand,
  DeleteObjectsCommand,
  GetObjectCommand,
  HeadBucketCommand,
  HeadObjectCommand,
  ListMultipartUploadsCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  S3Client,
  UploadPartCommand,
  UploadPartCopyCommand,
  type CompletedPart,
  type HeadObjectCommandOutput,
  type MultipartUpload as S3MultipartUpload,
  type _Object as S3Object,
} from '@aws-sdk/client-s3';
import { getSignedUrl } from '@aws-sdk/s3-request-presigner';
import { RegistryError } from '../../../errors/catalogue.ts';
import { newHasher, parseDigest, type Digest, type DigestAlgorithm } from '../../../digest/digest.ts';
import type { BlobInfo, BlobStore, ByteRange } from '../blob-store.ts';
import { MAX_PART_BYTES, MAX_PARTS, MiB, planParts, type PlannedPart } from './part-plan.ts';
import { parseS3Location, type S3Settings } from './location.ts';

// Kept importable from here, where they were first defined.
export { parseS3Location, type S3Settings };

export interface S3BlobStoreOptions extends S3Settings {
  bucket: string;
  /** Key prefix without leading or trailing `/`; `''` for the bucket's root. */
  prefix: string;
  /** Bytes buffered per uploaded part (at least 5 MiB). Default 8 MiB. */
  partBytes?: number;
  /** A stretch of one chunk at least this long is copied server-side at commit. Default 5 MiB, S3's smallest part: every chunk that can be a part is copied, not sent again. */
  copyThresholdBytes?: number;
}

const DEFAULT_PART_BYTES = 8 * MiB;
const DEFAULT_COPY_THRESHOLD_BYTES = 5 * MiB;
/** Chunks a commit asks for ahead of the one it is reading, and how many bytes they may span. */
const READ_AHEAD = 8;
const READ_AHEAD_BYTES = 8 * MiB;
/** Server-side part copies in flight per commit. */
const COPY_CONCURRENCY = 4;
/** Keys per DeleteObjects request, S3's limit. */
const DELETE_BATCH = 1000;
/** listUploads() names an abandoned commit's multipart upload with this and a hash of it. */
const ORPHAN_COMMIT_PREFIX = 'commit-';
const SHA256_HEX = /^[a-f0-9]{64}$/;
const UPLOAD_ID = /^[A-Za-z0-9_-]{1,128}$/;
/** A blob's key below `blobs/`: algorithm, two-digit fan-out, hex. */
const BLOB_KEY = /^(sha256|sha512)\/([a-f0-9]{2})\/([a-f0-9]+)$/;

/**
 * Blobs in an S3 bucket (any S3-compatible store), laid out as docs/blob-layout.md describes:
 *
 *   PREFIX/blobs/<algorithm>/<first two hex>/<hex>        committed, immutable blobs
 *   PREFIX/uploads/<uploadId>/started                     the upload exists
 *   PREFIX/uploads/<uploadId>/chunks/<offset, 16 digits>  the bytes one append wrote at that offset
 *   PREFIX/uploads/<uploadId>/sums/<offset, 16 digits>    that chunk's sha256, when it went up in parts
 *
 * Nothing lives in this process between calls: any node may take the next append or the commit
 * of an upload another node started.
 *
 * Costs. An append streams its body into S3 as one chunk object, holding at most two parts of
 * 8 MiB in memory (one filling, one uploading), and hashes it on the way. S3 cannot append to an
 * object and node:crypto cannot save a hash's state, so the commit of an upload made of several
 * chunks reads all of its bytes back once to hash them; long stretches of a chunk are copied
 * into the blob server-side (UploadPartCopy), the rest is uploaded again, and the multipart
 * upload is completed only once the digest matched. An upload sent in one chunk (the usual push)
 * commits without reading anything: the digest is the chunk's own hash, recorded when it was
 * written, and the blob is a server-side copy of the chunk. Either way the blob appears whole
 * (CompleteMultipartUpload, CopyObject or PutObject) or not at all, and the chunks are then
 * deleted.
 */
export class S3BlobStore implements BlobStore {
  private readonly client: S3Client;
  private readonly bucket: string;
  /** `''` or `PREFIX/`. */
  private readonly root: string;
  private readonly partBytes: number;
  private readonly copyThresholdBytes: number;

  constructor(options: S3BlobStoreOptions) {
    this.bucket = options.bucket;
    this.root = options.prefix === '' ? '' : `${options.prefix}/`;
    this.partBytes = Math.max(5 * MiB, options.partBytes ?? DEFAULT_PART_BYTES);
    this.copyThresholdBytes = options.copyThresholdBytes ?? DEFAULT_COPY_THRESHOLD_BYTES;
    const { accessKeyId, secretAccessKey } = options;
    this.client = new S3Client({
      region: options.region,
      endpoint: options.endpoint,
      forcePathStyle: options.forcePathStyle,
      credentials: accessKeyId !== undefined && secretAccessKey !== undefined ? { accessKeyId, secretAccessKey } : undefined,
      // The SDK's default adds CRC32 checksums (trailers on streamed bodies) that older S3
      // implementations reject, Ceph RGW 16 among them; digests are verified here anyway.
      requestChecksumCalculation: 'WHEN_REQUIRED',
      responseChecksumValidation: 'WHEN_REQUIRED',
      // Each blob being read holds a connection until the client has it all.
      requestHandler: { connectionTimeout: 10_000, httpAgent: { keepAlive: true, maxSockets: 512 }, httpsAgent: { keepAlive: true, maxSockets: 512 } },
    });
  }

  /** Opens the store at `//BUCKET/PREFIX` and checks that the bucket answers. */
  static async open(location: string, settings: S3Settings): Promise<S3BlobStore> {
    const store = new S3BlobStore({ ...parseS3Location(location), ...settings });
    try {
      await store.check();
    } catch (err) {
      store.client.destroy();
      const status = statusOf(err);
      const why = status === 404 ? 'no such bucket' : status === 403 ? 'access denied' : (err as Error).message;
      throw new Error(`cannot use bucket ${JSON.stringify(store.bucket)}${settings.endpoint ? ` at ${settings.endpoint}` : ''}: ${why}`, { cause: err });
    }
    return store;
  }

  // --- keys ---------------------------------------------------------------------------------

  private blobKey(digest: Digest): string {
    const { algorithm, encoded } = parseDigest(digest);
    return `${this.root}blobs/${algorithm}/${encoded.slice(0, 2)}/${encoded}`;
  }

  private uploadDir(uploadId: string): string {
    if (!UPLOAD_ID.test(uploadId)) throw new RegistryError('BlobUploadUnknown', { uploadId });
    return `${this.root}uploads/${uploadId}/`;
  }

  // --- blobs --------------------------------------------------------------------------------

  async stat(digest: Digest): Promise<BlobInfo | undefined> {
    const head = await this.head(this.blobKey(digest));
    return head ? { digest, sizeBytes: head.ContentLength ?? 0 } : undefined;
  }

  async read(digest: Digest, range?: ByteRange): Promise<Readable> {
    try {
      const out = await this.client.send(
        new GetObjectCommand({ Bucket: this.bucket, Key: this.blobKey(digest), Range: range ? `bytes=${range.start}-${range.end}` : undefined }),
      );
      // In Node.js the body is the response itself (an IncomingMessage): streamed, not buffered.
      return out.Body as Readable;
    } catch (err) {
      if ((err as Error).name === 'NoSuchKey') throw new RegistryError('BlobUnknown', { digest });
      throw err;
    }
  }

  async delete(digest: Digest): Promise<void> {
    await this.client.send(new DeleteObjectCommand({ Bucket: this.bucket, Key: this.blobKey(digest) }));
  }

  /** A presigned GET of the blob, valid for `ttlSeconds` (at most 7 days, S3's limit). */
  async presign(digest: Digest, ttlSeconds: number): Promise<string> {
    return getSignedUrl(this.client, new GetObjectCommand({ Bucket: this.bucket, Key: this.blobKey(digest) }), { expiresIn: ttlSeconds });
  }

  async check(): Promise<void> {
    await this.client.send(new HeadBucketCommand({ Bucket: this.bucket }));
  }

  async close(): Promise<void> {
    this.client.destroy();
  }

  // --- uploads ------------------------------------------------------------------------------

  async createUpload(uploadId: string): Promise<void> {
    await this.client.send(new PutObjectCommand({ Bucket: this.bucket, Key: `${this.uploadDir(uploadId)}started`, Body: Buffer.alloc(0) }));
  }

  /**
   * Streams the body into the chunk object for `offset`, replacing any chunk a failed or
   * unrecorded append left there; chunks beyond are ignored by commit(), which follows the
   * chunks from offset 0. A body that fits in one part is one PutObject, carrying its sha256 as
   * metadata; a longer one is a multipart upload (aborted if the body fails), and its sha256 goes
   * to `sums/<offset>`, tied to the chunk by its ETag. An empty body writes nothing.
   */
  async append(uploadId: string, offset: number, body: Readable, options: { maxBytes?: number } = {}): Promise<number> {
    const dir = this.uploadDir(uploadId);
    if (!(await this.head(`${dir}started`))) throw new RegistryError('BlobUploadUnknown', { uploadId });
    const key = `${dir}chunks/${offsetName(offset)}`;
    const sumKey = `${dir}sums/${offsetName(offset)}`;
    const maxBytes = options.maxBytes;
    const hasher = createHash('sha256');
    const pending = new Chunks();
    let upload: MultipartUpload | undefined;
    let partNumber = 0;
    let written = 0;
    let sha256: string;
    try {
      for await (const data of body) {
        const bytes = data as Buffer;
        written += bytes.length;
        if (maxBytes !== undefined && written > maxBytes) {
          throw new RegistryError('SizeInvalid', { maxBytes }, { message: `The body is larger than the ${maxBytes} bytes declared.` });
        }
        hasher.update(bytes);
        pending.push(bytes);
        // Parts grow every thousand so that 10,000 of them hold over 400 GiB. A body of one
        // part or less stays one PutObject.
        while (pending.length > this.partBytes * (1 + Math.floor(partNumber / 1000))) {
          if (!upload) {
            // A sum left by an earlier append at this offset must not outlive its chunk.
            await this.client.send(new DeleteObjectCommand({ Bucket: this.bucket, Key: sumKey }));
            upload = await MultipartUpload.create(this.client, this.bucket, key);
          }
          partNumber++;
          await upload.put(partNumber, pending.take(this.partBytes * (1 + Math.floor((partNumber - 1) / 1000))));
        }
      }
      sha256 = hasher.digest('hex');
      if (!upload) {
        if (written > 0) {
          await this.client.send(new PutObjectCommand({ Bucket: this.bucket, Key: key, Body: pending.take(pending.length), Metadata: { sha256 } }));
        }
        return written;
      }
      if (pending.length > 0) await upload.put(++partNumber, pending.take(pending.length));
      await upload.complete();
    } catch (err) {
      await upload?.abort();
      throw err;
    }
    // Only an optimisation for commit(), which hashes the chunk itself without it.
    try {
      const etag = (await this.head(key))?.ETag;
      if (etag) await this.client.send(new PutObjectCommand({ Bucket: this.bucket, Key: sumKey, Body: Buffer.alloc(0), Metadata: { sha256, etag: unquote(etag) } }));
    } catch {
      // commit() finds no sum, or one whose ETag does not match, and reads the chunk instead.
    }
    return written;
  }

  /**
   * Verifies the first `sizeBytes` bytes of the upload, taken from its chunks in order, and
   * makes them the blob; see the class comment for what that costs. The bytes reach the blob's
   * key only after the digest matched. Concurrent commits of one digest each write identical
   * bytes to the same key, whole, so whichever lands last changes nothing.
   */
  async commit(uploadId: string, sizeBytes: number, digest: Digest): Promise<BlobInfo> {
    const { algorithm, encoded } = parseDigest(digest);
    const dir = this.uploadDir(uploadId);
    if (!(await this.head(`${dir}started`))) throw new RegistryError('BlobUploadUnknown', { uploadId });
    const segments = await this.segments(uploadId, dir, sizeBytes);
    const blobKey = this.blobKey(digest);
    const whole = segments.length === 1 && segments[0]!.length === segments[0]!.chunk.sizeBytes ? segments[0]!.chunk : undefined;
    const known = whole && algorithm === 'sha256' ? await this.chunkSha256(dir, whole) : undefined;
    let actual: Digest;
    let existing: BlobInfo | undefined;
    if (whole && known !== undefined) {
      actual = `sha256:${known}`;
      if (known === encoded) {
        existing = await this.stat(digest);
        if (!existing) await this.copyObject(whole, blobKey);
      }
    } else {
      existing = await this.stat(digest);
      // Hashed even when the blob exists: the registry links it to the repository on the
      // strength of this commit, so the client must have sent its bytes.
      actual = existing ? await this.hashSegments(segments, algorithm) : await this.assemble(segments, algorithm, digest, blobKey);
    }
    await this.dropUpload(uploadId);
    if (actual !== digest) {
      throw new RegistryError('DigestInvalid', { expected: digest, actual }, {
        message: `The uploaded content has digest ${actual}, not the ${digest} the client gave; nothing was stored.`,
      });
    }
    return existing ?? { digest, sizeBytes };
  }

  /**
   * Drops the upload's objects and aborts its multipart uploads. For an id listUploads() made up
   * for an abandoned commit, aborts that commit's multipart upload.
   */
  async abortUpload(uploadId: string): Promise<void> {
    this.uploadDir(uploadId);
    if (uploadId.startsWith(ORPHAN_COMMIT_PREFIX)) {
      for await (const mpu of this.listMultipart(`${this.root}blobs/`)) {
        if (orphanCommitId(mpu) === uploadId) await this.abortMultipart(mpu.Key!, mpu.UploadId!);
      }
    }
    await this.dropUpload(uploadId);
  }

  /**
   * Every upload with objects or multipart uploads under `uploads/`, at the time the newest of
   * them was written. A commit interrupted by a crash leaves a multipart upload under `blobs/`
   * that no upload owns any more; each is listed too, under an id of its own (`commit-` and a
   * hash), so that the registry's sweep aborts it with abortUpload() once it is older than the
   * upload TTL, as it does with any upload that no session owns.
   */
  async *listUploads(): AsyncIterable<{ uploadId: string; modifiedAtMs: number }> {
    const base = `${this.root}uploads/`;
    const latest = new Map<string, number>();
    // Only what abortUpload() can remove: keys of others' under uploads/ are left alone, lest the
    // sweep list them, fail or find them again every time.
    const note = (key: string, at: Date | undefined) => {
      const slash = key.indexOf('/', base.length);
      const uploadId = key.slice(base.length, slash);
      if (slash > 0 && UPLOAD_ID.test(uploadId)) latest.set(uploadId, Math.max(latest.get(uploadId) ?? 0, at?.getTime() ?? 0));
    };
    for await (const object of this.listObjects(base)) note(object.Key!, object.LastModified);
    for await (const mpu of this.listMultipart(base)) note(mpu.Key!, mpu.Initiated);
    for await (const mpu of this.listMultipart(`${this.root}blobs/`)) latest.set(orphanCommitId(mpu), mpu.Initiated?.getTime() ?? 0);
    for (const [uploadId, modifiedAtMs] of latest) yield { uploadId, modifiedAtMs };
  }

  /** Every object under `blobs/` named as a blob is (multipart uploads in progress are not objects). */
  async *listBlobs(): AsyncIterable<{ digest: Digest; sizeBytes: number; modifiedAtMs: number }> {
    const base = `${this.root}blobs/`;
    for await (const object of this.listObjects(base)) {
      const m = BLOB_KEY.exec(object.Key!.slice(base.length));
      if (!m || !m[3]!.startsWith(m[2]!) || m[3]!.length !== (m[1] === 'sha256' ? 64 : 128)) continue;
      yield { digest: `${m[1]}:${m[3]}`, sizeBytes: object.Size ?? 0, modifiedAtMs: object.LastModified?.getTime() ?? 0 };
    }
  }

  // --- commit steps -------------------------------------------------------------------------

  /**
   * The chunks that make up the first `sizeBytes` bytes, following them from offset 0 (the last
   * one possibly cut short). When they stop short, the upload cannot be completed: it is
   * dropped, and the commit rejects with BlobUploadInvalid, as the filesystem store does when it
   * finds fewer bytes than were acknowledged.
   */
  private async segments(uploadId: string, dir: string, sizeBytes: number): Promise<Segment[]> {
    const chunks = new Map<number, Chunk>();
    for await (const object of this.listObjects(`${dir}chunks/`)) {
      const offset = Number(object.Key!.slice(`${dir}chunks/`.length));
      if (Number.isSafeInteger(offset)) chunks.set(offset, { key: object.Key!, offset, sizeBytes: object.Size ?? 0, etag: object.ETag });
    }
    const segments: Segment[] = [];
    for (let at = 0; at < sizeBytes; ) {
      const chunk = chunks.get(at);
      if (!chunk || chunk.sizeBytes === 0) {
        await this.dropUpload(uploadId);
        throw new RegistryError('BlobUploadInvalid', { uploadId, sizeBytes, found: at }, {
          message: `The upload holds ${at} of the ${sizeBytes} bytes it acknowledged; start the upload again.`,
        });
      }
      const length = Math.min(chunk.sizeBytes, sizeBytes - at);
      segments.push({ chunk, length });
      at += length;
    }
    return segments;
  }

  /** The chunk's sha256 as append() recorded it, if it did and the record is the chunk's. */
  private async chunkSha256(dir: string, chunk: Chunk): Promise<string | undefined> {
    const head = await this.head(chunk.key);
    if (!head || chunk.etag === undefined || head.ETag !== chunk.etag) return undefined;
    const own = head.Metadata?.['sha256'];
    if (own !== undefined) return SHA256_HEX.test(own) ? own : undefined;
    const sum = await this.head(`${dir}sums/${offsetName(chunk.offset)}`);
    const sha256 = sum?.Metadata?.['sha256'];
    return sha256 !== undefined && SHA256_HEX.test(sha256) && sum?.Metadata?.['etag'] === unquote(chunk.etag) ? sha256 : undefined;
  }

  /**
   * Reads the segments in order through a hasher, handing each piece to `onBytes` on the way.
   * The chunks after the one being read are asked for ahead of time, up to READ_AHEAD of them
   * within READ_AHEAD_BYTES: a commit of many small chunks then waits for one round trip per
   * few chunks rather than per chunk. An answer read ahead holds no more than its socket
   * buffers until its turn; one left unread when the commit fails is destroyed.
   */
  private async hashSegments(segments: Segment[], algorithm: DigestAlgorithm, onBytes?: (bytes: Buffer, blobOffset: number) => Promise<void>): Promise<Digest> {
    const hasher = newHasher(algorithm);
    const requests = new Map<number, Promise<Readable>>();
    let failed = false;
    const request = (i: number): Promise<Readable> => {
      let body = requests.get(i);
      if (!body) {
        const { chunk, length } = segments[i]!;
        body = this.client
          .send(new GetObjectCommand({ Bucket: this.bucket, Key: chunk.key, Range: `bytes=0-${length - 1}`, IfMatch: chunk.etag }))
          .then((out) => out.Body as Readable);
        // Awaited in its turn, or dropped; once one has failed, the commit will, so nothing
        // more is read ahead.
        body.catch(() => (failed = true));
        requests.set(i, body);
      }
      return body;
    };
    let blobOffset = 0;
    try {
      for (let i = 0; i < segments.length; i++) {
        for (let j = i + 1, ahead = segments[i]!.length; !failed && j < segments.length && j <= i + READ_AHEAD && ahead <= READ_AHEAD_BYTES; ahead += segments[j++]!.length) {
          void request(j);
        }
        const { chunk, length } = segments[i]!;
        const body = await request(i);
        requests.delete(i);
        let read = 0;
        for await (const data of body) {
          const bytes = data as Buffer;
          hasher.update(bytes);
          read += bytes.length;
          if (onBytes) await onBytes(bytes, blobOffset);
          blobOffset += bytes.length;
        }
        if (read !== length) throw new Error(`read ${read} bytes of ${chunk.key}, expected ${length}`);
      }
    } finally {
      // Every request read ahead is settled (and its body dropped) before this returns, so that
      // a failed commit sends nothing after it aborts the multipart upload.
      await Promise.allSettled([...requests.values()].map((body) => body.then((b) => b.destroy())));
    }
    return `${algorithm}:${hasher.digest('hex')}`;
  }

  /**
   * Hashes the segments and, in the same pass, writes them to the blob's key; the blob appears
   * only if the digest matches. Resolves the actual digest.
   */
  private async assemble(segments: Segment[], algorithm: DigestAlgorithm, digest: Digest, blobKey: string): Promise<Digest> {
    const total = segments.reduce((n, s) => n + s.length, 0);
    const planSegments = segments.map((s) => ({ start: s.chunk.offset, end: s.chunk.offset + s.length }));
    let parts = planParts(planSegments, { partBytes: Math.max(this.partBytes, roundUpMiB(total / (MAX_PARTS - 1000))), copyThresholdBytes: this.copyThresholdBytes });
    if (parts.length > MAX_PARTS) parts = planParts(planSegments, { partBytes: roundUpMiB(total / MAX_PARTS), copyThresholdBytes: Infinity });

    if (parts.length <= 1 && parts.every((p) => p.copyOf === undefined)) {
      // Small enough for one part: held in memory (at most partBytes), then one PutObject.
      const held = new Chunks();
      const actual = await this.hashSegments(segments, algorithm, async (bytes) => held.push(bytes));
      if (actual === digest) await this.client.send(new PutObjectCommand({ Bucket: this.bucket, Key: blobKey, Body: held.take(held.length) }));
      return actual;
    }

    const upload = await MultipartUpload.create(this.client, this.bucket, blobKey);
    try {
      const copies = runLimited(
        parts.filter((p) => p.copyOf !== undefined).map((p) => () => {
          const chunk = segments[p.copyOf!]!.chunk;
          return upload.copy(p.partNumber, this.copySource(chunk), p.start - chunk.offset, p.end - chunk.offset - 1);
        }),
        COPY_CONCURRENCY,
      );
      copies.catch(() => undefined);
      const streamed = parts.filter((p) => p.copyOf === undefined);
      const held = new Chunks();
      let next = 0;
      const actual = await this.hashSegments(segments, algorithm, async (bytes, blobOffset) => {
        for (let at = blobOffset; at < blobOffset + bytes.length; ) {
          const part: PlannedPart | undefined = streamed[next];
          const end = blobOffset + bytes.length;
          if (!part || at < part.start) {
            at = part ? Math.min(end, part.start) : end; // bytes of a copied part: hashed only
            continue;
          }
          const upTo = Math.min(end, part.end);
          held.push(bytes.subarray(at - blobOffset, upTo - blobOffset));
          at = upTo;
          if (at === part.end) {
            await upload.put(part.partNumber, held.take(held.length));
            next++;
          }
        }
      });
      await copies;
      if (actual !== digest) {
        await upload.abort();
        return actual;
      }
      await upload.complete();
      return actual;
    } catch (err) {
      await upload.abort();
      throw err;
    }
  }

  /** Copies a whole chunk to `key` server-side: CopyObject, or part by part beyond 5 GiB. */
  private async copyObject(chunk: Chunk, key: string): Promise<void> {
    const source = this.copySource(chunk);
    if (chunk.sizeBytes <= MAX_PART_BYTES) {
      // REPLACE: the blob does not inherit the chunk's metadata.
      await this.client.send(
        new CopyObjectCommand({ Bucket: this.bucket, Key: key, CopySource: source.key, CopySourceIfMatch: source.etag, MetadataDirective: 'REPLACE' }),
      );
      return;
    }
    const upload = await MultipartUpload.create(this.client, this.bucket, key);
    try {
      const parts = planParts([{ start: 0, end: chunk.sizeBytes }], { partBytes: this.partBytes, copyThresholdBytes: 0 });
      await runLimited(parts.map((p) => () => upload.copy(p.partNumber, source, p.start, p.end - 1)), COPY_CONCURRENCY);
      await upload.complete();
    } catch (err) {
      await upload.abort();
      throw err;
    }
  }

  /**
   * A chunk as the source of a server-side copy, pinned to the ETag the commit listed, so that
   * what is copied is what was hashed.
   */
  private copySource(chunk: Chunk): CopySource {
    return { key: `${this.bucket}/${chunk.key.split('/').map(encodeURIComponent).join('/')}`, etag: chunk.etag };
  }

  // --- plumbing -----------------------------------------------------------------------------

  private async dropUpload(uploadId: string): Promise<void> {
    const dir = this.uploadDir(uploadId);
    for await (const mpu of this.listMultipart(dir)) await this.abortMultipart(mpu.Key!, mpu.UploadId!);
    const keys: string[] = [];
    for await (const object of this.listObjects(dir)) keys.push(object.Key!);
    for (let i = 0; i < keys.length; i += DELETE_BATCH) {
      const out = await this.client.send(
        new DeleteObjectsCommand({ Bucket: this.bucket, Delete: { Objects: keys.slice(i, i + DELETE_BATCH).map((Key) => ({ Key })), Quiet: true } }),
      );
      const failed = out.Errors?.[0];
      if (failed) throw new Error(`could not delete ${failed.Key}: ${failed.Code} ${failed.Message}`);
    }
  }

  private async abortMultipart(key: string, uploadId: string): Promise<void> {
    try {
      await this.client.send(new AbortMultipartUploadCommand({ Bucket: this.bucket, Key: key, UploadId: uploadId }));
    } catch (err) {
      if (statusOf(err) !== 404) throw err;
    }
  }

  private async head(key: string): Promise<HeadObjectCommandOutput | undefined> {
    try {
      return await this.client.send(new HeadObjectCommand({ Bucket: this.bucket, Key: key }));
    } catch (err) {
      if (statusOf(err) === 404) return undefined;
      throw err;
    }
  }

  private async *listObjects(prefix: string): AsyncGenerator<S3Object> {
    let token: string | undefined;
    do {
      const out = await this.client.send(new ListObjectsV2Command({ Bucket: this.bucket, Prefix: prefix, ContinuationToken: token }));
      yield* out.Contents ?? [];
      token = out.IsTruncated ? out.NextContinuationToken : undefined;
    } while (token);
  }

  private async *listMultipart(prefix: string): AsyncGenerator<S3MultipartUpload> {
    let keyMarker: string | undefined;
    let uploadIdMarker: string | undefined;
    for (;;) {
      const out = await this.client.send(
        new ListMultipartUploadsCommand({ Bucket: this.bucket, Prefix: prefix, KeyMarker: keyMarker, UploadIdMarker: uploadIdMarker }),
      );
      yield* out.Uploads ?? [];
      if (!out.IsTruncated) return;
      keyMarker = out.NextKeyMarker;
      uploadIdMarker = out.NextUploadIdMarker;
    }
  }
}

/** One append's object. */
interface Chunk {
  key: string;
  /** Where its bytes start in the upload. */
  offset: number;
  sizeBytes: number;
  etag: string | undefined;
}

interface CopySource {
  /** `bucket/key`, URL-encoded. */
  key: string;
  etag: string | undefined;
}

/** The first `length` bytes of a chunk, as a commit uses them. */
interface Segment {
  chunk: Chunk;
  length: number;
}

/**
 * One S3 multipart upload being written. put() sends parts one after the other, each while the
 * caller gathers the next, so at most two part buffers exist at a time; copy() runs beside them.
 */
class MultipartUpload {
  private readonly client: S3Client;
  private readonly bucket: string;
  private readonly key: string;
  private readonly uploadId: string;
  private readonly parts: CompletedPart[] = [];
  private readonly inFlight = new Set<Promise<void>>();
  private lastPut: Promise<void> = Promise.resolve();
  private isAborted = false;

  private constructor(client: S3Client, bucket: string, key: string, uploadId: string) {
    this.client = client;
    this.bucket = bucket;
    this.key = key;
    this.uploadId = uploadId;
  }

  static async create(client: S3Client, bucket: string, key: string): Promise<MultipartUpload> {
    const out = await client.send(new CreateMultipartUploadCommand({ Bucket: bucket, Key: key }));
    return new MultipartUpload(client, bucket, key, out.UploadId!);
  }

  /** Resolves once the previous part is up and this one is on its way; rejects if the previous failed. */
  async put(partNumber: number, body: Buffer): Promise<void> {
    await this.lastPut;
    this.lastPut = this.track(() =>
      this.client.send(new UploadPartCommand({ Bucket: this.bucket, Key: this.key, UploadId: this.uploadId, PartNumber: partNumber, Body: body })).then((out) => {
        this.parts.push({ PartNumber: partNumber, ETag: out.ETag });
      }),
    );
  }

  /** Copies bytes `[first, last]` of `source` as part `partNumber`. */
  copy(partNumber: number, source: CopySource, first: number, last: number): Promise<void> {
    return this.track(() =>
      this.client
        .send(
          new UploadPartCopyCommand({
            Bucket: this.bucket,
            Key: this.key,
            UploadId: this.uploadId,
            PartNumber: partNumber,
            CopySource: source.key,
            CopySourceIfMatch: source.etag,
            CopySourceRange: `bytes=${first}-${last}`,
          }),
        )
        .then((out) => {
          this.parts.push({ PartNumber: partNumber, ETag: out.CopyPartResult?.ETag });
        }),
    );
  }

  /** Makes the object appear, whole. Its ETag is not used: Ceph RGW 16 answers an empty one. */
  async complete(): Promise<void> {
    await Promise.all([...this.inFlight]);
    const parts = [...this.parts].sort((a, b) => a.PartNumber! - b.PartNumber!);
    await this.client.send(new CompleteMultipartUploadCommand({ Bucket: this.bucket, Key: this.key, UploadId: this.uploadId, MultipartUpload: { Parts: parts } }));
  }

  /**
   * Best effort. Refuses new parts from now on, and waits for every request in flight to
   * settle first: a part that lands after the abort would keep its bytes (S3 documents that an
   * abort may then have to be repeated). Whatever stays is listed by listUploads() and swept.
   */
  async abort(): Promise<void> {
    this.isAborted = true;
    await Promise.allSettled([...this.inFlight]);
    await this.client.send(new AbortMultipartUploadCommand({ Bucket: this.bucket, Key: this.key, UploadId: this.uploadId })).catch(() => undefined);
  }

  /** Sends a request, unless the upload is being aborted, and keeps it in `inFlight` until it settles. */
  private track(send: () => Promise<void>): Promise<void> {
    const request = this.isAborted ? Promise.reject(new Error(`the multipart upload of ${this.key} was aborted`)) : send();
    this.inFlight.add(request);
    // Also marks a rejection as handled until someone awaits the request.
    request.then(
      () => this.inFlight.delete(request),
      () => undefined,
    );
    return request;
  }
}

/** Buffers held until they make a part, taken as one Buffer of the length asked for. */
class Chunks {
  private readonly buffers: Buffer[] = [];
  length = 0;

  push(bytes: Buffer): void {
    if (bytes.length === 0) return;
    this.buffers.push(bytes);
    this.length += bytes.length;
  }

  take(count: number): Buffer {
    const out = Buffer.allocUnsafe(count);
    let filled = 0;
    while (filled < count) {
      const first = this.buffers[0]!;
      const n = Math.min(first.length, count - filled);
      first.copy(out, filled, 0, n);
      filled += n;
      if (n === first.length) this.buffers.shift();
      else this.buffers[0] = first.subarray(n);
    }
    this.length -= count;
    return out;
  }
}

/** Runs the tasks, `limit` at a time; once one fails, starts no more, and rejects when all have settled. */
async function runLimited(tasks: Array<() => Promise<void>>, limit: number): Promise<void> {
  let next = 0;
  let failure: { error: unknown } | undefined;
  const worker = async () => {
    while (next < tasks.length && !failure) {
      const task = tasks[next++]!;
      try {
        await task();
      } catch (error) {
        failure ??= { error };
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, tasks.length) }, worker));
  if (failure) throw failure.error;
}

function offsetName(offset: number): string {
  return String(offset).padStart(16, '0');
}

function unquote(etag: string): string {
  return etag.replace(/^"|"$/g, '');
}

function roundUpMiB(bytes: number): number {
  return Math.ceil(bytes / MiB) * MiB;
}

function statusOf(err: unknown): number | undefined {
  return (err as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode;
}

/** The made-up upload id under which listUploads() reports an abandoned commit's multipart upload. */
function orphanCommitId(mpu: S3MultipartUpload): string {
  return ORPHAN_COMMIT_PREFIX + createHash('sha256').update(`${mpu.Key}\n${mpu.UploadId}`).digest('base64url');
}
