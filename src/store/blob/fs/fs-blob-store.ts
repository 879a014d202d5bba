import { createReadStream } from 'node:fs';
import { mkdir, open, readdir, rename, rm, stat, unlink, type FileHandle } from 'node:fs/promises';
import type { Hash } from 'node:crypto';
import path from 'node:path';
import type { Readable, Writable } from 'node:stream';
import { RegistryError } from '../../../errors/catalogue.ts';
import { newHasher, parseDigest, type Digest } from '../../../digest/digest.ts';
import type { BlobInfo, BlobStore, ByteRange } from '../blob-store.ts';
import { FileRangeReader, writeFileRange } from './file-reader.ts';
import { writeHashed } from './file-writer.ts';

/** Read buffer for blob streams: large enough that a GiB pull is a few thousand syscalls. */
const READ_CHUNK_BYTES = 1024 * 1024;

/**
 * Request bytes taken in between two young-generation collections, when the store is given a
 * way to ask for one (FsBlobStoreOptions.collectYoungGarbage).
 */
const COLLECT_EVERY_BYTES = 8 * 1024 * 1024;

export interface FsBlobStoreOptions {
  /**
   * Runs a young-generation (minor) garbage collection. Every chunk of a request body is a
   * buffer node:http allocated outside V8's heap for it alone, garbage once written; V8 frees
   * those only when the small JavaScript objects holding them are collected, and an upload
   * allocates too little on the heap itself to start a collection soon: the buffers pile up to
   * V8's 64 MiB allowance for external memory, which then forces a full mark-compact of the
   * whole heap (11-15 per 512 MiB pushed). Asking for a minor collection every 8 MiB taken in
   * keeps them to a few MiB, for under a millisecond each, and makes those mark-compacts rare
   * (docs/benchmarks.md, "The push path and memory").
   */
  collectYoungGarbage?: (() => void) | undefined;
}

interface HashState {
  hasher: Hash;
  /** Bytes the hasher has seen, always the upload's committed prefix. */
  offset: number;
}

/**
 * Blobs on a local filesystem, laid out as docs/blob-layout.md describes:
 *   <root>/blobs/<algorithm>/<first two hex>/<hex>   committed, immutable blobs
 *   <root>/uploads/<uploadId>                         bytes of an upload in progress
 *
 * Digests are computed in the same pass that writes the bytes: the running sha256 of each
 * upload is kept in memory between chunks. After a restart (or if a chunk failed half-way) the
 * hash is rebuilt from the upload file once, so correctness never depends on that memory.
 */
export class FsBlobStore implements BlobStore {
  private readonly root: string;
  private readonly hashes = new Map<string, HashState>();
  private readonly onChunk: ((bytes: number) => void) | undefined;
  /** Bytes taken in since the last collection this store asked for. */
  private uncollectedBytes = 0;

  constructor(root: string, options: FsBlobStoreOptions = {}) {
    this.root = root;
    const collect = options.collectYoungGarbage;
    this.onChunk = collect === undefined ? undefined : (bytes) => {
      this.uncollectedBytes += bytes;
      if (this.uncollectedBytes < COLLECT_EVERY_BYTES) return;
      this.uncollectedBytes = 0;
      collect();
    };
  }

  static async open(root: string, options: FsBlobStoreOptions = {}): Promise<FsBlobStore> {
    await mkdir(path.join(root, 'blobs'), { recursive: true });
    await mkdir(path.join(root, 'uploads'), { recursive: true });
    return new FsBlobStore(root, options);
  }

  private blobPath(digest: Digest): string {
    const { algorithm, encoded } = parseDigest(digest);
    return path.join(this.root, 'blobs', algorithm, encoded.slice(0, 2), encoded);
  }

  private uploadPath(uploadId: string): string {
    if (!/^[A-Za-z0-9_-]{1,128}$/.test(uploadId)) throw new RegistryError('BlobUploadUnknown', { uploadId });
    return path.join(this.root, 'uploads', uploadId);
  }

  async stat(digest: Digest): Promise<BlobInfo | undefined> {
    try {
      const s = await stat(this.blobPath(digest));
      return { digest, sizeBytes: s.size };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw err;
    }
  }

  async read(digest: Digest, range?: ByteRange): Promise<Readable> {
    const file = this.blobPath(digest);
    // Open first so that a missing blob rejects here rather than erroring the stream later.
    const handle = await openExisting(file, 'r', () => new RegistryError('BlobUnknown', { digest }));
    try {
      const end = range ? range.end : (await handle.stat()).size - 1;
      return new FileRangeReader(handle, range?.start ?? 0, end, READ_CHUNK_BYTES);
    } catch (err) {
      await handle.close();
      throw err;
    }
  }

  async openSender(digest: Digest, range?: ByteRange): Promise<(destination: Writable) => Promise<void>> {
    const handle = await openExisting(this.blobPath(digest), 'r', () => new RegistryError('BlobUnknown', { digest }));
    try {
      const end = range ? range.end : (await handle.stat()).size - 1;
      return (destination) => writeFileRange(handle, range?.start ?? 0, end, destination, READ_CHUNK_BYTES).finally(() => handle.close());
    } catch (err) {
      await handle.close();
      throw err;
    }
  }

  async delete(digest: Digest): Promise<void> {
    await rm(this.blobPath(digest), { force: true });
  }

  async createUpload(uploadId: string): Promise<void> {
    const handle = await open(this.uploadPath(uploadId), 'a');
    await handle.close();
  }

  async append(uploadId: string, offset: number, body: Readable, options: { maxBytes?: number } = {}): Promise<number> {
    const file = this.uploadPath(uploadId);
    const handle = await openExisting(file, 'r+', () => new RegistryError('BlobUploadUnknown', { uploadId }));
    let written: number;
    let hasher: Hash;
    try {
      // Drop whatever a failed earlier append left past the committed size.
      await handle.truncate(offset);
      const state = this.hashes.get(uploadId);
      hasher = state && state.offset === offset ? state.hasher : await this.rehash(file, offset, 'sha256');
      this.hashes.delete(uploadId);
      written = await writeHashed(handle, offset, body, hasher, {
        maxBytes: options.maxBytes,
        tooLarge: (maxBytes) => new RegistryError('SizeInvalid', { maxBytes }, { message: `The body is larger than the ${maxBytes} bytes declared.` }),
        onChunk: this.onChunk,
      });
    } finally {
      await handle.close();
    }
    this.hashes.set(uploadId, { hasher, offset: offset + written });
    return written;
  }

  async commit(uploadId: string, sizeBytes: number, digest: Digest): Promise<BlobInfo> {
    const { algorithm, encoded } = parseDigest(digest);
    const file = this.uploadPath(uploadId);
    const state = this.hashes.get(uploadId);
    this.hashes.delete(uploadId);
    const handle = await openExisting(file, 'r+', () => new RegistryError('BlobUploadUnknown', { uploadId }));
    let actual: string;
    try {
      const { size } = await handle.stat();
      if (size < sizeBytes) {
        // Only possible if the machine lost power after a chunk was acknowledged but before the
        // page cache reached the disk: the session cannot be completed, so it is dropped.
        await rm(file, { force: true });
        throw new RegistryError('BlobUploadInvalid', { uploadId, sizeBytes, onDisk: size }, {
          message: `The upload holds ${size} bytes on disk, fewer than the ${sizeBytes} it acknowledged (likely lost in a power failure); start the upload again.`,
        });
      }
      if (size > sizeBytes) await handle.truncate(sizeBytes);
      await handle.sync();
      const hasher = state && state.offset === sizeBytes && algorithm === 'sha256' ? state.hasher : await this.rehash(file, sizeBytes, algorithm);
      actual = `${algorithm}:${hasher.digest('hex')}`;
    } finally {
      await handle.close();
    }
    if (actual !== digest) {
      await rm(file, { force: true });
      throw new RegistryError('DigestInvalid', { expected: digest, actual }, {
        message: `The uploaded content has digest ${actual}, not the ${digest} the client gave; nothing was stored.`,
      });
    }
    const target = path.join(this.root, 'blobs', algorithm, encoded.slice(0, 2), encoded);
    const existing = await this.stat(digest);
    if (existing) {
      await rm(file, { force: true });
      return existing;
    }
    const createdDir = await mkdir(path.dirname(target), { recursive: true });
    if (createdDir !== undefined) {
      // New directories must be durable in their parents too, or a power loss could drop them.
      await syncDir(path.dirname(createdDir));
      if (path.dirname(createdDir) !== path.dirname(path.dirname(target))) await syncDir(path.dirname(path.dirname(target)));
    }
    // rename() is atomic: readers see either no blob or all of it. Two commits of one digest
    // write identical bytes, so whichever rename lands last changes nothing.
    await rename(file, target);
    await syncDir(path.dirname(target));
    return { digest, sizeBytes };
  }

  /** A hasher that has seen the first `length` bytes of the file. */
  private async rehash(file: string, length: number, algorithm: 'sha256' | 'sha512'): Promise<Hash> {
    const hasher = newHasher(algorithm);
    if (length > 0) {
      for await (const chunk of createReadStream(file, { start: 0, end: length - 1, highWaterMark: READ_CHUNK_BYTES })) {
        hasher.update(chunk as Buffer);
      }
    }
    return hasher;
  }

  async abortUpload(uploadId: string): Promise<void> {
    this.hashes.delete(uploadId);
    try {
      await unlink(this.uploadPath(uploadId));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
  }

  async *listUploads(): AsyncIterable<{ uploadId: string; modifiedAtMs: number }> {
    const dir = path.join(this.root, 'uploads');
    for (const name of await readdir(dir)) {
      try {
        const s = await stat(path.join(dir, name));
        yield { uploadId: name, modifiedAtMs: s.mtimeMs };
      } catch {
        // Gone between readdir and stat: committed or aborted meanwhile.
      }
    }
  }

  /**
   * Walks `blobs/<algorithm>/<xx>/`. A blob's time is the later of its file's mtime and ctime:
   * the rename that commits it keeps the upload's mtime (its last chunk, maybe long ago) but
   * sets the ctime, so a blob that has only just appeared is never taken for an old one.
   */
  async *listBlobs(): AsyncIterable<{ digest: Digest; sizeBytes: number; modifiedAtMs: number }> {
    const base = path.join(this.root, 'blobs');
    for (const algorithm of await readdirIfAny(base)) {
      if (algorithm !== 'sha256' && algorithm !== 'sha512') continue;
      const length = algorithm === 'sha256' ? 64 : 128;
      for (const fan of await readdirIfAny(path.join(base, algorithm))) {
        if (!/^[a-f0-9]{2}$/.test(fan)) continue;
        for (const name of await readdirIfAny(path.join(base, algorithm, fan))) {
          if (name.length !== length || !name.startsWith(fan) || !/^[a-f0-9]+$/.test(name)) continue;
          try {
            const s = await stat(path.join(base, algorithm, fan, name));
            yield { digest: `${algorithm}:${name}`, sizeBytes: s.size, modifiedAtMs: Math.max(s.mtimeMs, s.ctimeMs) };
          } catch {
            // Deleted between readdir and stat.
          }
        }
      }
    }
  }

  async check(): Promise<void> {
    await stat(path.join(this.root, 'blobs'));
  }

  async close(): Promise<void> {
    this.hashes.clear();
  }
}

/** The names in a directory; none when it does not exist (yet, or any more). */
async function readdirIfAny(dir: string): Promise<string[]> {
  try {
    return await readdir(dir);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT' || (err as NodeJS.ErrnoException).code === 'ENOTDIR') return [];
    throw err;
  }
}

/** Opens a file, turning "no such file" into the caller's error. */
async function openExisting(file: string, flags: string, missing: () => RegistryError): Promise<FileHandle> {
  try {
    return await open(file, flags);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') throw missing();
    throw err;
  }
}

async function syncDir(dir: string): Promise<void> {
  const handle = await open(dir, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}
