import { BlobRedirects, type RedirectPolicy } from './blob-redirect.ts';
import { randomUUID } from 'node:crypto';
import { LRUCache } from 'lru-cache';
import { Readable, type Writable } from 'node:stream';
import { RegistryError, isRegistryError } from '../errors/catalogue.ts';
import type { Logger } from '../log/logger.ts';
import type { BlobInfo, BlobStore, ByteRange } from '../store/blob/blob-store.ts';
import type { ManifestRecord, ManifestSummary, MetaStore, Page, Repository, Upload } from '../store/meta/meta-store.ts';
import type { Authorizer, Caller } from './access.ts';
import { digestOf, looksLikeDigest, parseDigest, type Digest } from './digest.ts';
import { parseManifest, type Descriptor } from './manifest.ts';
import { assertRepositoryName, assertTag, isValidRepositoryName, type RepoRef } from './names.ts';
import { PullRecorder } from './pull-recorder.ts';
import { isTagImmutable } from './tag-mutability.ts';
import { initFromTemplate, templateForPush, type RepositoryInit } from './creation-templates.ts';

export interface RegistryOptions {
  meta: MetaStore;
  blobs: BlobStore;
  authorizer: Authorizer;
  log: Logger;
  /**
   * Create any repository on first push (Distribution's behaviour). Off, as in ECR, a push creates
   * a repository only when a CREATE_ON_PUSH creation template covers its name.
   */
  createOnPush: boolean;
  /** Called after a repository was created with a repository policy (so that policy caches drop what they knew). */
  onPolicyChange?: () => void;
  /** Called after a deletion that may leave garbage (a manifest, a tag, a blob link, a repository), to schedule a collection. */
  onGarbage?: () => void;
  uploadTtlMs: number;
  manifestMaxBytes: number;
  /**
   * How long this process trusts what it read of repositories and manifests (both are
   * immutable once written except for deletion, so staleness is bounded by this and only ever
   * shows a deleted thing a little longer). Tags are never cached: a tag moved through any node
   * is seen at once everywhere.
   */
  cacheTtlMs: number;
  /** Bytes of manifest payload kept in memory. */
  manifestCacheBytes: number;
  /** Which clients download blobs straight from the store (`blobs.redirect`); default never. */
  blobRedirect?: RedirectPolicy;
  /** Lifetime of redirect URLs; default 1200 s. */
  blobRedirectTtlSeconds?: number;
  /** How long recorded pulls (lastRecordedPullTime) wait in memory before one batched write; default 5 s. */
  pullFlushIntervalMs?: number;
  now?: () => number;
}

function cacheKey(repo: RepoRef): string {
  return `${repo.account}/${repo.name}`;
}

export interface PutManifestResult {
  digest: Digest;
  subject: Digest | null;
  created: boolean;
}

/** A chunk's position as the client declared it (Content-Range and Content-Length). */
export interface ChunkBounds {
  start?: number | undefined;
  end?: number | undefined;
  length?: number | undefined;
}

/**
 * The protocol-free registry: repositories, blobs, uploads, manifests and tags. Both planes
 * call it; it calls only the store interfaces. Methods throw RegistryError for every fact a
 * client can cause, and never choose a status.
 */
export class Registry {
  readonly meta: MetaStore;
  readonly blobs: BlobStore;
  readonly authorizer: Authorizer;
  readonly log: Logger;
  private readonly options: RegistryOptions;
  private readonly now: () => number;
  /** Appends to one upload are serialised in this process; advanceUpload() guards across nodes. */
  private readonly uploadLocks = new Map<string, Promise<unknown>>();
  private readonly repositoryCache: LRUCache<string, Repository>;
  /** Keyed by `<repositoryId>@<digest>`. */
  private readonly manifestCache: LRUCache<string, ManifestRecord>;
  private readonly pulls: PullRecorder;

  /** Whether and where blob downloads are redirected to the blob store. */
  readonly redirects: BlobRedirects;

  constructor(options: RegistryOptions) {
    this.options = options;
    this.meta = options.meta;
    this.blobs = options.blobs;
    this.authorizer = options.authorizer;
    this.log = options.log;
    this.now = options.now ?? Date.now;
    const ttl = Math.max(1, options.cacheTtlMs);
    this.repositoryCache = new LRUCache({ max: 10_000, ttl });
    this.manifestCache = new LRUCache({
      maxSize: Math.max(1, options.manifestCacheBytes),
      sizeCalculation: (m) => m.sizeBytes + 256,
      ttl,
    });
    this.redirects = new BlobRedirects(options.blobs, options.blobRedirect ?? 'never', options.blobRedirectTtlSeconds ?? 1200);
    this.pulls = new PullRecorder({ meta: options.meta, log: options.log, flushIntervalMs: options.pullFlushIntervalMs ?? 5000, now: this.now });
  }

  // --- repositories -------------------------------------------------------------------------

  /** The one explicit step that makes a repository exist. Idempotent: `init` applies only when it creates. */
  async createRepository(repo: RepoRef, init: RepositoryInit = {}): Promise<{ repository: Repository; created: boolean }> {
    assertRepositoryName(repo.name);
    const result = await this.meta.transaction(async (tx) => {
      const created = await tx.createRepository(repo.account, repo.name, this.now(), init.settings);
      if (created.created && init.repositoryPolicy) await tx.setRepositoryPolicy(created.repository.id, init.repositoryPolicy);
      return created;
    });
    if (result.created) {
      this.log.info({ account: repo.account, repository: repo.name }, 'repository created');
      if (init.repositoryPolicy) this.options.onPolicyChange?.();
    }
    this.repositoryCache.set(cacheKey(repo), result.repository);
    return result;
  }

  /** The repository, or undefined; only existing repositories are cached. */
  async findRepository(repo: RepoRef): Promise<Repository | undefined> {
    const key = cacheKey(repo);
    const cached = this.repositoryCache.get(key);
    if (cached) return cached;
    const repository = await this.meta.getRepository(repo.account, repo.name);
    if (repository) this.repositoryCache.set(key, repository);
    return repository;
  }

  /** Drops what this process remembers of a repository (after its deletion or a policy change). */
  forgetRepository(repo: RepoRef): void {
    this.repositoryCache.delete(cacheKey(repo));
  }

  async getRepository(repo: RepoRef): Promise<Repository> {
    assertRepositoryName(repo.name);
    const repository = await this.findRepository(repo);
    if (!repository) throw new RegistryError('NameUnknown', { name: repo.name }, { message: `Repository ${repo.name} does not exist.` });
    return repository;
  }

  /**
   * Whether a push to this repository, when it is missing, creates it: with repositories.createOnPush,
   * or when a CREATE_ON_PUSH creation template covers its name. A push that creates is also asked
   * as ecr:CreateRepository (by the plane, before it writes).
   */
  async createsOnPush(repo: RepoRef): Promise<boolean> {
    return this.options.createOnPush || (await this.pushTemplate(repo)) !== undefined;
  }

  private async pushTemplate(repo: RepoRef) {
    return templateForPush(await this.meta.listRepositoryTemplates(repo.account), repo.name);
  }

  /** The repository a push writes into, created first (with its template's settings) when createsOnPush says so. */
  private async repositoryForPush(repo: RepoRef): Promise<Repository> {
    assertRepositoryName(repo.name);
    const existing = await this.findRepository(repo);
    if (existing) return existing;
    const template = await this.pushTemplate(repo);
    if (!template && !this.options.createOnPush) {
      throw new RegistryError('NameUnknown', { name: repo.name }, {
        message: `Repository ${repo.name} does not exist in the registry with id '${repo.account}'; create it first (aws ecr create-repository --repository-name ${repo.name}), or add a repository creation template for CREATE_ON_PUSH that covers it.`,
      });
    }
    return (await this.createRepository(repo, template ? initFromTemplate(template) : {})).repository;
  }

  /** The account's repository names the caller may see, in lexical order. */
  async listRepositories(caller: Caller, account: string, page: Page): Promise<{ names: string[]; more: boolean }> {
    const names: string[] = [];
    let after = page.after;
    // Over-fetch by one to know whether another page follows; filter by what the caller may see.
    for (;;) {
      const batch = await this.meta.listRepositories(account, { after, limit: page.limit + 1 });
      for (const name of batch) {
        if (names.length === page.limit) return { names, more: true };
        if (await this.authorizer.isAllowed(caller, 'ecr:DescribeRepositories', { account, name })) names.push(name);
      }
      if (batch.length < page.limit + 1) return { names, more: false };
      after = batch[batch.length - 1];
    }
  }

  // --- blobs --------------------------------------------------------------------------------

  /** The blob as this repository sees it; a manifest is also readable as a blob (as in Distribution). */
  async statBlob(repo: RepoRef, digest: Digest): Promise<BlobInfo & { manifest?: ManifestRecord }> {
    parseDigest(digest);
    const repository = await this.getRepository(repo);
    const blob = await this.meta.findLinkedBlob(repository.id, digest);
    if (blob) return blob;
    const manifest = await this.meta.getManifest(repository.id, digest);
    if (manifest) return { digest, sizeBytes: manifest.sizeBytes, manifest };
    throw new RegistryError('BlobUnknown', { digest }, { message: `Blob ${digest} is not in repository ${repo.name}.` });
  }

  async openBlob(info: BlobInfo & { manifest?: ManifestRecord }, range?: ByteRange): Promise<Readable> {
    if (info.manifest) {
      const bytes = Buffer.from(info.manifest.payload);
      return Readable.from([range ? bytes.subarray(range.start, range.end + 1) : bytes]);
    }
    try {
      return await this.blobs.read(info.digest, range);
    } catch (err) {
      if (isRegistryError(err, 'BlobUnknown')) this.log.error({ digest: info.digest }, 'blob recorded in metadata is missing from the blob store');
      throw err;
    }
  }

  /**
   * A function that writes the blob into a destination, when the blob store can do that faster
   * than a stream (see BlobStore.openSender); undefined otherwise, and for manifests.
   */
  async openBlobSender(info: BlobInfo & { manifest?: ManifestRecord }, range?: ByteRange): Promise<((destination: Writable) => Promise<void>) | undefined> {
    if (info.manifest || !this.blobs.openSender) return undefined;
    try {
      return await this.blobs.openSender(info.digest, range);
    } catch (err) {
      if (isRegistryError(err, 'BlobUnknown')) this.log.error({ digest: info.digest }, 'blob recorded in metadata is missing from the blob store');
      throw err;
    }
  }

  /** Unlinks the blob from the repository. Its bytes stay while anything else references them. */
  async deleteBlob(repo: RepoRef, digest: Digest): Promise<void> {
    parseDigest(digest);
    const repository = await this.getRepository(repo);
    if (!(await this.meta.unlinkBlob(repository.id, digest))) {
      throw new RegistryError('BlobUnknown', { digest }, { message: `Blob ${digest} is not in repository ${repo.name}.` });
    }
    this.garbageMade();
  }

  /** Tells garbage collection that a deletion may have left something to collect (see RegistryOptions.onGarbage). */
  garbageMade(): void {
    this.options.onGarbage?.();
  }

  // --- uploads ------------------------------------------------------------------------------

  async startUpload(repo: RepoRef): Promise<Upload> {
    const repository = await this.repositoryForPush(repo);
    const now = this.now();
    const upload: Upload = { id: randomUUID(), repositoryId: repository.id, sizeBytes: 0, startedAtMs: now, updatedAtMs: now };
    await this.blobs.createUpload(upload.id);
    await this.meta.createUpload(upload);
    return upload;
  }

  /**
   * Cross-repository mount (spec: "Mounting a blob from another repository"). With `from`, the
   * blob comes only from that repository and only if the caller may pull it there. Without it,
   * any repository the caller may already pull that holds the blob will do, so knowing a digest
   * never grants access to bytes the caller could not read anyway. Resolves undefined when no
   * mount is possible; the caller then opens an ordinary upload session.
   */
  async mountBlob(caller: Caller, repo: RepoRef, digest: Digest, from: string | undefined): Promise<BlobInfo | undefined> {
    parseDigest(digest);
    const repository = await this.repositoryForPush(repo);
    const already = await this.meta.findLinkedBlob(repository.id, digest);
    if (already) return already;
    // ECR's BLOB_MOUNTING account setting: when DISABLED, the client uploads the blob instead.
    if ((await this.meta.getAccountSetting(repo.account, 'BLOB_MOUNTING')) === 'DISABLED') return undefined;
    let candidates: Repository[];
    if (from !== undefined) {
      if (!isValidRepositoryName(from)) return undefined;
      const source = await this.meta.getRepository(repo.account, from);
      candidates = source ? [source] : [];
    } else {
      candidates = await this.meta.findRepositoriesWithBlob(repo.account, digest, 50);
    }
    for (const source of candidates) {
      if (source.id === repository.id) continue;
      if (!(await this.authorizer.isAllowed(caller, 'ecr:GetDownloadUrlForLayer', { account: repo.account, name: source.name }))) continue;
      const blob = await this.meta.findLinkedBlob(source.id, digest);
      if (!blob) continue;
      // Resolves false when garbage collection took the blob meanwhile: the client uploads it.
      if (!(await this.meta.linkBlob(repository.id, digest, this.now()))) return undefined;
      this.log.debug({ repository: repo.name, from: source.name, digest }, 'blob mounted');
      return blob;
    }
    return undefined;
  }

  /** The live upload session, or BlobUploadUnknown if it is absent, elsewhere or expired. */
  async getUpload(repo: RepoRef, uploadId: string): Promise<Upload> {
    const repository = await this.getRepository(repo);
    const upload = await this.meta.getUpload(uploadId);
    if (!upload || upload.repositoryId !== repository.id) {
      throw new RegistryError('BlobUploadUnknown', { uploadId }, { message: `Upload ${uploadId} is not in progress in repository ${repo.name}.` });
    }
    if (upload.updatedAtMs + this.options.uploadTtlMs < this.now()) {
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

  private async appendLocked(upload: Upload, body: Readable, bounds: ChunkBounds): Promise<Upload> {
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
    const written = await this.blobs.append(upload.id, upload.sizeBytes, body, { maxBytes: expected });
    if (expected !== undefined && written !== expected) {
      throw new RegistryError('SizeInvalid', { expected, received: written }, {
        message: `The chunk was declared as ${expected} bytes but ${written} arrived; resend it from byte ${upload.sizeBytes}.`,
      });
    }
    const now = this.now();
    if (!(await this.meta.advanceUpload(upload.id, upload.sizeBytes, upload.sizeBytes + written, now))) {
      throw new RegistryError('RangeInvalid', { uploadId: upload.id }, { message: 'Another request changed this upload at the same time; check its status and resume.' });
    }
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
      if (lastChunk) upload = await this.appendLocked(upload, lastChunk.body, lastChunk.bounds);
      let blob: BlobInfo;
      try {
        blob = await this.blobs.commit(upload.id, upload.sizeBytes, digest);
      } catch (err) {
        // Both leave the upload's bytes gone: the session cannot continue.
        if (isRegistryError(err, 'DigestInvalid') || isRegistryError(err, 'BlobUploadInvalid')) await this.meta.deleteUpload(upload.id);
        throw err;
      }
      const now = this.now();
      try {
        await this.meta.transaction(async (tx) => {
          // putBlob waits for a garbage collection that holds the blob's row. The blob store's
          // commit may have found the bytes already there and kept them instead of the upload's,
          // and that collection may have removed them since: so, with the row recorded (and held
          // until this commits, so no collection can start on it), check that the bytes are
          // there, and refuse rather than record a blob without bytes (docs/gc.md).
          await tx.putBlob(blob, now);
          const linked = await tx.linkBlob(upload.repositoryId, blob.digest, now);
          await tx.deleteUpload(upload.id);
          if (!linked || !(await this.blobs.stat(blob.digest))) {
            throw new RegistryError('BlobUploadInvalid', { uploadId: upload.id, digest: blob.digest }, {
              message: `Blob ${blob.digest} was removed by garbage collection while this upload completed; retry the push.`,
            });
          }
        });
      } catch (err) {
        // The upload's bytes went with the blob store's commit: the session cannot continue.
        if (isRegistryError(err, 'BlobUploadInvalid')) await this.meta.deleteUpload(upload.id);
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
    await this.meta.deleteUpload(uploadId);
    await this.blobs.abortUpload(uploadId);
  }

  /**
   * Removes upload sessions untouched for longer than the TTL, and upload bytes no session owns.
   * With dryRun, removes nothing and counts what it would remove (sessions: at most 100,000).
   */
  async sweepUploads(options: { dryRun?: boolean } = {}): Promise<{ sessions: number; orphans: number }> {
    const cutoff = this.now() - this.options.uploadTtlMs;
    let sessions = 0;
    if (options.dryRun) {
      sessions = (await this.meta.listStaleUploads(cutoff, 100_000)).length;
    } else {
      for (;;) {
        const stale = await this.meta.listStaleUploads(cutoff, 100);
        for (const upload of stale) {
          await this.discardUpload(upload.id);
          sessions++;
        }
        if (stale.length < 100) break;
      }
    }
    // A stale session's bytes have their session still in a dry run, so they are not counted here.
    let orphans = 0;
    for await (const { uploadId, modifiedAtMs } of this.blobs.listUploads()) {
      if (modifiedAtMs >= cutoff) continue;
      if (await this.meta.getUpload(uploadId)) continue;
      if (!options.dryRun) await this.blobs.abortUpload(uploadId);
      orphans++;
    }
    return { sessions, orphans };
  }

  // --- manifests and tags ---------------------------------------------------------------------

  async getManifest(repo: RepoRef, reference: string): Promise<ManifestRecord> {
    const repository = await this.getRepository(repo);
    let digest: Digest | undefined;
    if (looksLikeDigest(reference)) {
      parseDigest(reference);
      digest = reference;
    } else {
      assertTag(reference);
      digest = await this.meta.findTagDigest(repository.id, reference);
    }
    const manifest = digest === undefined ? undefined : await this.findManifest(repository.id, digest);
    if (!manifest) {
      throw new RegistryError('ManifestUnknown', { reference }, { message: `Manifest ${reference} is not in repository ${repo.name}.` });
    }
    return manifest;
  }

  private async findManifest(repositoryId: number, digest: Digest): Promise<ManifestRecord | undefined> {
    const key = `${repositoryId}@${digest}`;
    const cached = this.manifestCache.get(key);
    if (cached) return cached;
    const manifest = await this.meta.getManifest(repositoryId, digest);
    if (manifest) this.manifestCache.set(key, manifest);
    return manifest;
  }

  /**
   * Stores a manifest under its digest, computed over the exact bytes received, and points the
   * tag at it when the reference is a tag. Every blob and child manifest it references must
   * already be in the repository (spec: "Pushing Manifests").
   */
  async putManifest(repo: RepoRef, reference: string, contentType: string | undefined, payload: Uint8Array): Promise<PutManifestResult> {
    assertRepositoryName(repo.name);
    let digest: Digest;
    let tag: string | undefined;
    if (looksLikeDigest(reference)) {
      const { algorithm } = parseDigest(reference);
      digest = digestOf(payload, algorithm);
      if (digest !== reference) {
        throw new RegistryError('DigestInvalid', { expected: reference, actual: digest }, {
          message: `The manifest's digest is ${digest}, not ${reference} as the URL says.`,
        });
      }
    } else {
      assertTag(reference);
      tag = reference;
      digest = digestOf(payload);
    }
    if (payload.byteLength > this.options.manifestMaxBytes) {
      throw new RegistryError('ManifestTooLarge', { sizeBytes: payload.byteLength }, {
        message: `The manifest is ${payload.byteLength} bytes; the limit is ${this.options.manifestMaxBytes}.`,
      });
    }
    const parsed = parseManifest(payload, contentType);
    const repository = await this.repositoryForPush(repo);
    await this.checkReferences(repository, parsed.blobs, parsed.manifests);
    const now = this.now();
    const record: ManifestRecord = {
      digest,
      mediaType: parsed.mediaType,
      sizeBytes: payload.byteLength,
      payload,
      artifactType: parsed.artifactType,
      subjectDigest: parsed.subject?.digest ?? null,
      annotations: parsed.annotations ? JSON.stringify(parsed.annotations) : null,
      createdAtMs: now,
    };
    let created = false;
    await this.meta.transaction(async (tx) => {
      if (tag !== undefined) await this.checkTagMutability(tx, repository, tag, digest);
      // The store holds what the manifest references until this commits, so that garbage
      // collection cannot take it meanwhile; what it took before, since checkReferences, is
      // reported missing (docs/gc.md).
      const outcome = await tx.putManifest(repository.id, record, parsed.references);
      const [blob] = outcome.missingBlobs;
      if (blob !== undefined) {
        throw new RegistryError('ManifestBlobUnknown', { digest: blob }, {
          message: `The manifest references blob ${blob}, which garbage collection removed from repository ${repository.name} a moment ago; push the blob again.`,
        });
      }
      const [child] = outcome.missingManifests;
      if (child !== undefined) {
        throw new RegistryError('ManifestChildUnknown', { digest: child }, {
          message: `The index references manifest ${child}, which garbage collection removed from repository ${repository.name} a moment ago; push it again.`,
        });
      }
      created = outcome.created;
      if (tag !== undefined) await tx.putTag(repository.id, tag, digest, now);
    });
    return { digest, subject: record.subjectDigest, created };
  }

  /**
   * ECR's tag immutability, for both planes: a push to an immutable tag that already exists is
   * refused, even of the image it already points at (as ECR does); delete the tag first.
   */
  private async checkTagMutability(tx: MetaStore, repository: Repository, tag: string, _digest: Digest): Promise<void> {
    const current = await tx.findTagDigest(repository.id, tag);
    if (current === undefined) return;
    const settings = await tx.getRepositorySettings(repository.id);
    if (!settings || !isTagImmutable(settings, tag)) return;
    const why = settings.imageTagMutability === 'IMMUTABLE' ? 'the repository is immutable' : `the tag is immutable (imageTagMutability ${settings.imageTagMutability})`;
    throw new RegistryError('TagImmutable', { tag, digest: current }, {
      message: `The image tag '${tag}' already exists in the '${repository.name}' repository and cannot be overwritten because ${why}.`,
    });
  }

  private async checkReferences(repository: Repository, blobs: Descriptor[], manifests: Descriptor[]): Promise<void> {
    if (blobs.length > 0) {
      const found = await this.meta.findLinkedBlobs(repository.id, [...new Set(blobs.map((b) => b.digest))]);
      for (const b of blobs) {
        const blob = found.get(b.digest);
        if (!blob) {
          throw new RegistryError('ManifestBlobUnknown', { digest: b.digest }, {
            message: `The manifest references blob ${b.digest}, which repository ${repository.name} does not hold; push it first.`,
          });
        }
        if (blob.sizeBytes !== b.size) {
          throw new RegistryError('ManifestInvalid', { digest: b.digest, size: b.size, actual: blob.sizeBytes }, {
            message: `Invalid manifest: it gives blob ${b.digest} a size of ${b.size} bytes, but the blob has ${blob.sizeBytes}.`,
          });
        }
      }
    }
    if (manifests.length > 0) {
      const found = await this.meta.findExistingManifests(repository.id, [...new Set(manifests.map((m) => m.digest))]);
      const missing = manifests.find((m) => !found.has(m.digest));
      if (missing) {
        throw new RegistryError('ManifestChildUnknown', { digest: missing.digest }, {
          message: `The index references manifest ${missing.digest}, which repository ${repository.name} does not hold; push it first.`,
        });
      }
    }
  }

  /**
   * Deletes by digest (the manifest and every tag on it) or by tag (the tag only). A manifest
   * that an index in the same repository still lists is kept, so no index is left dangling.
   */
  async deleteManifest(repo: RepoRef, reference: string): Promise<void> {
    const repository = await this.getRepository(repo);
    const unknown = () => new RegistryError('ManifestUnknown', { reference }, { message: `Manifest ${reference} is not in repository ${repo.name}.` });
    if (!looksLikeDigest(reference)) {
      assertTag(reference);
      if (!(await this.meta.deleteTag(repository.id, reference))) throw unknown();
      this.garbageMade();
      return;
    }
    parseDigest(reference);
    await this.meta.transaction(async (tx) => {
      const parents = await tx.findParentManifests(repository.id, reference);
      if (parents.length > 0) {
        throw new RegistryError('ManifestReferenced', { parents }, {
          message: `Manifest ${reference} is listed by index ${parents[0]}${parents.length > 1 ? ` and ${parents.length - 1} more` : ''}; delete the index first.`,
        });
      }
      if (!(await tx.deleteManifest(repository.id, reference, this.now()))) throw unknown();
    });
    this.manifestCache.delete(`${repository.id}@${reference}`);
    this.garbageMade();
  }

  async listTags(repo: RepoRef, page: Page): Promise<{ names: string[]; more: boolean }> {
    const repository = await this.getRepository(repo);
    const names = await this.meta.listTags(repository.id, { after: page.after, limit: page.limit + 1 });
    const more = names.length > page.limit;
    return { names: more ? names.slice(0, page.limit) : names, more };
  }

  /** Referrers of a subject (spec: "Listing Referrers"); the subject itself need not exist. */
  async listReferrers(repo: RepoRef, subject: Digest, artifactType?: string): Promise<ManifestSummary[]> {
    parseDigest(subject);
    const repository = await this.getRepository(repo);
    return this.meta.listReferrers(repository.id, subject, artifactType);
  }

  // --- pulls --------------------------------------------------------------------------------

  /** getManifest for a pull (a data-plane GET, BatchGetImage): the pull is recorded as lastRecordedPullTime. */
  async pullManifest(repo: RepoRef, reference: string): Promise<ManifestRecord> {
    const manifest = await this.getManifest(repo, reference);
    this.pulls.record((await this.getRepository(repo)).id, manifest.digest);
    return manifest;
  }

  /** Records a pull of a manifest already read (by id, as the ECR API resolves repositories). */
  recordPull(repositoryId: number, digest: Digest): void {
    this.pulls.record(repositoryId, digest);
  }

  /** The latest pull of the image: one this node has not written yet, else the stored one. */
  lastPulledAt(repositoryId: number, digest: Digest, storedMs: number | null): number | null {
    const pending = this.pulls.pendingPull(repositoryId, digest);
    return pending !== undefined && (storedMs === null || pending > storedMs) ? pending : storedMs;
  }

  /** Writes what is still held in memory (recorded pulls); call on shutdown, before the stores close. */
  async close(): Promise<void> {
    await this.pulls.close();
  }
}
