import type { Readable, Writable } from 'node:stream';
import type { Digest } from '../../digest/digest.ts';

export interface BlobInfo {
  digest: Digest;
  sizeBytes: number;
}

/** Inclusive byte range, already checked against the blob's size by the caller. */
export interface ByteRange {
  start: number;
  end: number;
}

/**
 * Content-addressed bytes. A blob is stored once whatever number of repositories use it; which
 * repository may see it is the metadata store's business, not this one's.
 *
 * Uploads are named by an id the caller chooses. Their bytes are invisible under any digest
 * until commit() has verified them; a failure at any point before that leaves no blob behind.
 */
export interface BlobStore {
  /** Resolves undefined when absent; never throws for a missing blob. */
  stat(digest: Digest): Promise<BlobInfo | undefined>;
  /** Rejects with BlobUnknown when absent. The stream ends after `range.end` when a range is given. */
  read(digest: Digest, range?: ByteRange): Promise<Readable>;
  /** Removes the bytes. Resolves when already absent. Only garbage collection calls it. */
  delete(digest: Digest): Promise<void>;

  /** Creates an empty upload. Idempotent. */
  createUpload(uploadId: string): Promise<void>;
  /**
   * Writes `body` at `offset`, which must be the upload's size as the caller last recorded it;
   * bytes an earlier, failed append left beyond `offset` are overwritten. Resolves with the
   * number of bytes written. Rejects with BlobUploadUnknown when the upload is absent; on any
   * failure the upload stays resumable at `offset`. Callers serialise appends to one upload.
   * With `maxBytes`, rejects with SizeInvalid once the body exceeds it.
   */
  append(uploadId: string, offset: number, body: Readable, options?: { maxBytes?: number }): Promise<number>;
  /**
   * Verifies the first `sizeBytes` bytes of the upload against `digest` and makes them visible
   * as that blob, durably and atomically; then the upload is gone. Rejects with DigestInvalid on
   * a mismatch, and the upload is gone then too. When the blob already exists the upload is
   * dropped and the existing blob kept. Concurrent commits of the same digest are safe.
   */
  commit(uploadId: string, sizeBytes: number, digest: Digest): Promise<BlobInfo>;
  /** Drops an upload's bytes. Resolves when already absent. */
  abortUpload(uploadId: string): Promise<void>;
  /** Every upload the store holds, with the time its bytes last changed (for sweeping orphans). */
  listUploads(): AsyncIterable<{ uploadId: string; modifiedAtMs: number }>;
  /**
   * Optional capability: every committed blob, in no particular order, with its size and the time
   * its bytes appeared under the digest, for garbage collection's sweep of bytes that no metadata
   * row records. Blobs committed or deleted while the listing runs may or may not be listed.
   */
  listBlobs?(): AsyncIterable<{ digest: Digest; sizeBytes: number; modifiedAtMs: number }>;
  /**
   * Optional capability: opens the blob (rejecting with BlobUnknown when absent) and returns a
   * function that writes it, or the range, into a destination without ending it. Faster than
   * read() where the driver can reuse its buffers once the destination has written them. The
   * returned function must be called exactly once; it releases what was opened.
   */
  openSender?(digest: Digest, range?: ByteRange): Promise<(destination: Writable) => Promise<void>>;
  /** Optional capability: a short-lived URL from which a client may fetch the blob directly. */
  presign?(digest: Digest, ttlSeconds: number): Promise<string>;
  /** Readiness: resolves when the store can serve. */
  check(): Promise<void>;
  close(): Promise<void>;
}
