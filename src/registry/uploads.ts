import { randomUUID } from 'node:crypto';
import { Readable, type Writable } from 'node:stream';
import { RegistryError, isRegistryError } from '../errors/catalogue.ts';
import { parseDigest, type Digest } from '../digest/digest.ts';
import type { BlobInfo, ByteRange } from '../store/blob/blob-store.ts';
import type { ManifestRecord, Repository, Upload } from '../store/meta/meta-store.ts';
import type { Caller } from './access.ts';
import type { RegistryContext } from './context.ts';
import type { RepoRef } from './names.ts';
import type { Repositories } from './repositories.ts';

function changedMeanwhile(uploadId: string): RegistryError {
  return new RegistryError('RangeInvalid', { uploadId }, { message: 'Another request changed this upload at the same time; check its status and resume.' });
}

/** A chunk's position as the client declared it (Content-Range and Content-Length). */
export interface ChunkBounds {
  start?: number | undefined;
  end?: number | undefined;
  length?: number | undefined;
}

/**
 * Blobs and the upload sessions that make them: reading, linking and unlinking blobs in a
 * repository, chunked and monolithic uploads, cross-repository mounts, and the sweep of
 * abandoned uploads. One part of the Registry (registry.ts), which is the door every caller uses.
 */
export class Uploads {
  private readonly ctx: RegistryContext;
  private readonly repositories: Repositories;
  /** Appends to one upload are serialised in this process; advanceUpload() guards across nodes. */
  private readonly uploadLocks = new Map<string, Promise<unknown>>();

  constructor(ctx: RegistryContext, repositories: Repositories) {
    this.ctx = ctx;
    this.repositories = repositories;
  }

  // --- blobs --------------------------------------------------------------------------------

  /** The blob as this repository sees it; a manifest is also readable as a blob (as in Distribution). */
  async statBlob(repo: RepoRef, digest: Digest): Promise<BlobInfo & { manifest?: ManifestRecord }> {
    parseDigest(digest);
    const repository = await this.repositories.get(repo);
    const blob = await this.ctx.meta.findLinkedBlob(repository.id, digest);
    if (blob) return blob;
    const manifest = await this.ctx.meta.getManifest(repository.id, digest);
    if (manifest) return { digest, sizeBytes: manifest.sizeBytes, manifest };
    throw new RegistryError('BlobUnknown', { digest }, { message: `Blob ${digest} is not in repository ${repo.name}.` });
  }

  async openBlob(info: BlobInfo & { manifest?: ManifestRecord }, range?: ByteRange): Promise<Readable> {
    if (info.manifest) {
      const bytes = Buffer.from(info.manifest.payload);
      return Readable.from([range ? bytes.subarray(range.start, range.end + 1) : bytes]);
    }
    try {
      return await this.ctx.blobs.read(info.digest, range);
    } catch (err) {
      if (isRegistryError(err, 'BlobUnknown')) this.ctx.log.error({ digest: info.digest }, 'blob recorded in metadata is missing from the blob store');
      throw err;
    }
  }

  /**
   * A function that writes the blob into a destination, when the blob store can do that faster
   * than a stream (see BlobStore.openSender); undefined otherwise, and for manifests.
   */
  async openBlobSender(info: BlobInfo & { manifest?: ManifestRecord }, range?: ByteRange): Promise<((destination: Writable) => Promise<void>) | undefined> {
    if (info.manifest || !this.ctx.blobs.openSender) return undefined;
    try {
      return await this.ctx.blobs.openSender(info.digest, range);
    } catch (err) {
      if (isRegistryError(err, 'BlobUnknown')) this.ctx.log.error({ digest: info.digest }, 'blob recorded in metadata is missing from the blob store');
      throw err;
    }
  }

  /** Unlinks the blob from the repository. Its bytes stay while anything else references them. */
  async deleteBlob(repo: RepoRef, digest: Digest): Promise<void> {
    parseDigest(digest);
    const repository = await this.repositories.get(repo);
    if (!(await this.ctx.meta.unlinkBlob(repository.id, digest))) {
      throw new RegistryError('BlobUnknown', { digest }, { message: `Blob ${digest} is not in repository ${repo.name}.` });
    }
    this.ctx.garbageMade();
  }

  // --- uploads ------------------------------------------------------------------------------

  async startUpload(repo: RepoRef): Promise<Upload> {
    const repository = await this.repositories.forPush(repo);
    const now = this.ctx.now();
    const upload: Upload = { id: randomUUID(), repositoryId: repository.id, sizeBytes: 0, startedAtMs: now, updatedAtMs: now };
    await this.ctx.blobs.createUpload(upload.id);
    await this.ctx.meta.createUpload(upload);
    return upload;
  }

  /**
   * Cross-repository mount (spec: "Mounting a blob from another repository"). With `from`, the
   * blob comes only from that repository and only if the caller may pull it there. Without it,
   * any repository the caller may already pull that holds the blob will do, so knowing a digest
   * never grants access to bytes the caller could not read anyway. Resolves undefined when no
   * mount is possible; the caller then opens an ordinary upload session.
   */
  /** `sourceAction`: what the caller must be allowed on a source repository (default ecr:GetDownloadUrlForLayer, a pull). */
  async mountBlob(caller: Caller, repo: RepoRef, digest: Digest, from: string | undefined, sourceAction = 'ecr:GetDownloadUrlForLayer'): Promise<BlobInfo | undefined> {
    parseDigest(digest);
    const repository = await this.repositories.forPush(repo);
    const already = await this.ctx.meta.findLinkedBlob(repository.id, digest);
    if (already) return already;
    // ECR's BLOB_MOUNTING account setting: when DISABLED, the client uploads the blob instead.
    if ((await this.repositories.accountSetting(repo.account, 'BLOB_MOUNTING')) === 'DISABLED') return undefined;
    let candidates: Repository[];
    if (from !== undefined) {
      const source = await this.repositories.findUncached({ account: repo.account, name: from });
      candidates = source ? [source] : [];
    } else {
      candidates = await this.repositories.withBlob(repo.account, digest, 50);
    }
    for (const source of candidates) {
      if (source.id === repository.id) continue;
      if (!(await this.ctx.authorizer.isAllowed(caller, sourceAction, { account: repo.account, name: source.name }))) continue;
      const blob = await this.ctx.meta.findLinkedBlob(source.id, digest);
      if (!blob) continue;
      // Resolves false when garbage collection took the blob meanwhile: the client uploads it.
      if (!(await this.ctx.meta.linkBlob(repository.id, digest, this.ctx.now()))) return undefined;
      this.ctx.log.debug({ repository: repo.name, from: source.name, digest }, 'blob mounted');
      return blob;
    }
    return undefined;
  }

  /** The live upload session, or BlobUploadUnknown if it is absent, elsewhere or expired. */
  async getUpload(repo: RepoRef, uploadId: string): Promise<Upload> {
    const repository = await this.repositories.get(repo);
    const upload = await this.ctx.meta.getUpload(uploadId);
    if (!upload || upload.repositoryId !== repository.id) {
      throw new RegistryError('BlobUploadUnknown', { uploadId }, { message: `Upload ${uploadId} is not in progress in repository ${repo.name}.` });
    }
    if (upload.updatedAtMs + this.ctx.options.uploadTtlMs < this.ctx.now()) {
      await this.discardUpload(upload.id);
      throw new RegistryError('BlobUploadUnknown', { uploadId }, { message: `Upload ${uploadId} expired; start a new one.` });
    }
    return upload;
  }

  private async withUploadLock<T>(uploadId: string, fn: () => Promise<T>): Promise<T> {
    const previous = this.uploadLocks.get(uploadId) ?? Promise.resolve();
    const run = previous.then(fn, fn);
    const settled = run.catch(() => undefined);
    this.uploadLocks.set(uploadId, settled);
    try {
      return await run;
    } finally {
      if (this.uploadLocks.get(uploadId) === settled) this.uploadLocks.delete(uploadId);
    }
  }

  /**
   * Appends a chunk (spec: "Pushing a blob in chunks"). A chunk whose Content-Range does not
   * start where the upload stands is refused with RangeInvalid and changes nothing.
   */
  async appendUpload(repo: RepoRef, uploadId: string, body: Readable, bounds: ChunkBounds): Promise<Upload> {
    return this.withUploadLock(uploadId, async () => {
      const upload = await this.getUpload(repo, uploadId);
      return this.appendLocked(upload, body, bounds);
    });
  }

  /**
   * Appends the chunk's bytes. With `record: false` the new size is not written to the metadata
   * store: the caller records it in a transaction of its own (completeUpload), which saves a
   * commit, and with it a sync to disk, per single-request push.
   */
  private async appendLocked(upload: Upload, body: Readable, bounds: ChunkBounds, options: { record: boolean } = { record: true }): Promise<Upload> {
    if (bounds.start !== undefined && bounds.start !== upload.sizeBytes) {
      body.resume();
      throw new RegistryError('RangeInvalid', { expectedStart: upload.sizeBytes, start: bounds.start }, {
        message: `The chunk starts at byte ${bounds.start} but the upload holds ${upload.sizeBytes} bytes; send the chunk that starts at ${upload.sizeBytes}.`,
      });
    }
    let expected = bounds.length;
    if (bounds.start !== undefined && bounds.end !== undefined) {
      const fromRange = bounds.end - bounds.start + 1;
      if (expected !== undefined && expected !== fromRange) {
        body.resume();
        throw new RegistryError('RangeInvalid', { contentLength: expected, contentRange: fromRange }, {
          message: `Content-Range covers ${fromRange} bytes but Content-Length is ${expected}.`,
        });
      }
      expected = fromRange;
    }
    const written = await this.ctx.blobs.append(upload.id, upload.sizeBytes, body, { maxBytes: expected });
    if (expected !== undefined && written !== expected) {
      throw new RegistryError('SizeInvalid', { expected, received: written }, {
        message: `The chunk was declared as ${expected} bytes but ${written} arrived; resend it from byte ${upload.sizeBytes}.`,
      });
    }
    const now = this.ctx.now();
    if (options.record && !(await this.ctx.meta.advanceUpload(upload.id, upload.sizeBytes, upload.sizeBytes + written, now))) throw changedMeanwhile(upload.id);
    return { ...upload, sizeBytes: upload.sizeBytes + written, updatedAtMs: now };
  }

  /**
   * Completes an upload (spec: "PUT <location>?digest=<digest>"), with an optional last chunk.
   * The bytes are verified against the digest before the blob becomes visible; on a mismatch
   * the session and its bytes are dropped.
   */
  async completeUpload(repo: RepoRef, uploadId: string, digest: Digest, lastChunk?: { body: Readable; bounds: ChunkBounds }): Promise<BlobInfo> {
    try {
      parseDigest(digest);
    } catch (err) {
      lastChunk?.body.resume();
      throw err;
    }
    return this.withUploadLock(uploadId, async () => {
      let upload = await this.getUpload(repo, uploadId);
      const recordedBytes = upload.sizeBytes;
      if (lastChunk) upload = await this.appendLocked(upload, lastChunk.body, lastChunk.bounds, { record: false });
      let blob: BlobInfo;
      try {
        blob = await this.ctx.blobs.commit(upload.id, upload.sizeBytes, digest);
      } catch (err) {
        // Both leave the upload's bytes gone: the session cannot continue.
        if (isRegistryError(err, 'DigestInvalid') || isRegistryError(err, 'BlobUploadInvalid')) await this.ctx.meta.deleteUpload(upload.id);
        throw err;
      }
      const now = this.ctx.now();
      try {
        await this.ctx.meta.transaction(async (tx) => {
          // The last chunk's size, recorded here rather than in a commit of its own: the check
          // that no other request changed the upload meanwhile (advanceUpload) still holds.
          if (upload.sizeBytes !== recordedBytes && !(await tx.advanceUpload(upload.id, recordedBytes, upload.sizeBytes, now))) throw changedMeanwhile(upload.id);
          // putBlob waits for a garbage collection that holds the blob's row. The blob store's
          // commit may have found the bytes already there and kept them instead of the upload's,
          // and that collection may have removed them since: so, with the row recorded (and held
          // until this commits, so no collection can start on it), check that the bytes are
          // there, and refuse rather than record a blob without bytes (docs/gc.md).
          await tx.putBlob(blob, now);
          const linked = await tx.linkBlob(upload.repositoryId, blob.digest, now);
          await tx.deleteUpload(upload.id);
          if (!linked || !(await this.ctx.blobs.stat(blob.digest))) {
            throw new RegistryError('BlobUploadInvalid', { uploadId: upload.id, digest: blob.digest }, {
              message: `Blob ${blob.digest} was removed by garbage collection while this upload completed; retry the push.`,
            });
          }
        });
      } catch (err) {
        // The upload's bytes went with the blob store's commit: the session cannot continue.
        if (isRegistryError(err, 'BlobUploadInvalid')) await this.ctx.meta.deleteUpload(upload.id);
        throw err;
      }
      return blob;
    });
  }

  /** Single-request push (spec: "POST ...?digest=<digest>" with the whole blob as the body). */
  async pushBlob(repo: RepoRef, digest: Digest, body: Readable, bounds: ChunkBounds): Promise<BlobInfo> {
    try {
      parseDigest(digest);
    } catch (err) {
      body.resume();
      throw err;
    }
    const upload = await this.startUpload(repo);
    try {
      return await this.completeUpload(repo, upload.id, digest, { body, bounds });
    } catch (err) {
      await this.discardUpload(upload.id).catch(() => undefined);
      throw err;
    }
  }

  async cancelUpload(repo: RepoRef, uploadId: string): Promise<void> {
    const upload = await this.getUpload(repo, uploadId);
    await this.withUploadLock(upload.id, () => this.discardUpload(upload.id));
  }

  private async discardUpload(uploadId: string): Promise<void> {
    await this.ctx.meta.deleteUpload(uploadId);
    await this.ctx.blobs.abortUpload(uploadId);
  }

  /**
   * Removes upload sessions untouched for longer than the TTL, and upload bytes no session owns.
   * With dryRun, removes nothing and counts what it would remove (sessions: at most 100,000).
   */
  async sweepUploads(options: { dryRun?: boolean } = {}): Promise<{ sessions: number; orphans: number }> {
    const cutoff = this.ctx.now() - this.ctx.options.uploadTtlMs;
    let sessions = 0;
    if (options.dryRun) {
      sessions = (await this.ctx.meta.listStaleUploads(cutoff, 100_000)).length;
    } else {
      for (;;) {
        const stale = await this.ctx.meta.listStaleUploads(cutoff, 100);
        for (const upload of stale) {
          await this.discardUpload(upload.id);
          sessions++;
        }
        if (stale.length < 100) break;
      }
    }
    // A stale session's bytes have their session still in a dry run, so they are not counted here.
    let orphans = 0;
    for await (const { uploadId, modifiedAtMs } of this.ctx.blobs.listUploads()) {
      if (modifiedAtMs >= cutoff) continue;
      if (await this.ctx.meta.getUpload(uploadId)) continue;
      if (!options.dryRun) await this.ctx.blobs.abortUpload(uploadId);
      orphans++;
    }
    return { sessions, orphans };
  }

  // --- what the ECR layer operations ask -------------------------------------------------------

  /** The blobs among `digests` that the repository holds, with their sizes. */
  async findLinked(repositoryId: number, digests: Digest[]): Promise<Map<Digest, BlobInfo>> {
    return this.ctx.meta.findLinkedBlobs(repositoryId, digests);
  }

  /** The blob if the repository holds it. */
  async findOneLinked(repositoryId: number, digest: Digest): Promise<BlobInfo | undefined> {
    return this.ctx.meta.findLinkedBlob(repositoryId, digest);
  }

  /** Whether a manifest of the repository references the blob (ECR's "associated with an image"). */
  async isReferenced(repositoryId: number, digest: Digest): Promise<boolean> {
    return this.ctx.meta.isReferenced(repositoryId, digest);
  }
}
