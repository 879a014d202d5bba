import type { Readable, Writable } from 'node:stream';
import type { Digest } from '../digest/digest.ts';
import type { Logger } from '../log/logger.ts';
import type { BlobInfo, BlobStore, ByteRange } from '../store/blob/blob-store.ts';
import type { CacheStore } from '../store/meta/cache-store.ts';
import type { StoredEvent } from '../store/meta/event-store.ts';
import type { LifecyclePolicyRecord, LifecyclePreview, LifecycleImageRecord, LifecycleRepository } from '../store/meta/lifecycle-store.ts';
import type { ImageId, ImageRecord, ManifestRecord, ManifestSummary, MetaStore, Page, Repository, RepositorySettings, RepositoryTemplate, TagStatus, Upload } from '../store/meta/meta-store.ts';
import type { Authorizer, Caller } from './access.ts';
import { BlobRedirects } from './blob-redirect.ts';
import type { RegistryContext, RegistryOptions } from './context.ts';
import type { RepositoryInit } from './creation-templates.ts';
import { Images, type PutManifestOptions, type PutManifestResult } from './images.ts';
import { Listings } from './listings.ts';
import type { RepoRef } from './names.ts';
import { Repositories, type RepositoryDeletion } from './repositories.ts';
import { Replications } from './replication.ts';
import { Scans } from './scans.ts';
import { Uploads, type ChunkBounds } from './uploads.ts';

export type { ChunkBounds, PutManifestOptions, PutManifestResult, RegistryOptions, RepositoryDeletion };

/**
 * The protocol-free registry: the one door through which both planes, the features and the
 * workers reach storage. It calls only the store interfaces. Methods throw RegistryError for
 * every fact a client can cause, and never choose a status.
 *
 * Behind the door, each part governs one thing: repositories.ts (repositories, their settings
 * and policies, templates, account settings), uploads.ts (blobs and the uploads that make them)
 * and images.ts (manifests, tags, referrers and pulls). This class only composes them.
 */
export class Registry {
  readonly meta: MetaStore;
  readonly blobs: BlobStore;
  readonly authorizer: Authorizer;
  readonly log: Logger;
  /** Whether and where blob downloads are redirected to the blob store. */
  readonly redirects: BlobRedirects;
  private readonly options: RegistryOptions;
  private readonly repositories: Repositories;
  private readonly uploads: Uploads;
  private readonly images: Images;
  /** Image scanning: configuration, the scan queue and records, caches, the vulnerability database. */
  readonly scans: Scans;
  /** Replication: configurations, and the tasks that are both status and queue. */
  readonly replication: Replications;
  /** The pull-through cache's rules, tag checks and fetch leases (docs/pull-through-cache.md). */
  readonly pullThroughCache: CacheStore;
  /** The console's sorted, filtered and counted lists, and storage figures (listings.ts). */
  readonly listings: Listings;

  constructor(options: RegistryOptions) {
    this.options = options;
    this.meta = options.meta;
    this.blobs = options.blobs;
    this.authorizer = options.authorizer;
    this.log = options.log;
    const ctx: RegistryContext = {
      meta: options.meta,
      blobs: options.blobs,
      authorizer: options.authorizer,
      log: options.log,
      region: options.region,
      options,
      now: options.now ?? Date.now,
      garbageMade: () => this.garbageMade(),
    };
    this.repositories = new Repositories(ctx);
    this.uploads = new Uploads(ctx, this.repositories);
    this.images = new Images(ctx, this.repositories);
    this.scans = new Scans(ctx);
    this.replication = new Replications(ctx);
    this.listings = new Listings(ctx);
    this.pullThroughCache = options.meta.cache;
    this.redirects = new BlobRedirects(options.blobs, options.blobRedirect ?? 'never', options.blobRedirectTtlSeconds ?? 1200);
  }

  /** Tells garbage collection that a deletion may have left something to collect (see RegistryOptions.onGarbage). */
  garbageMade(): void {
    this.options.onGarbage?.();
  }

  /** Writes what is still held in memory (recorded pulls); call on shutdown, before the stores close. */
  async close(): Promise<void> {
    await this.images.close();
  }

  /** The event log (docs/adr/0012-event-outbox.md), in sequence order; see EventStore.read. */
  readEvents(query: { after: number; limit: number; accountId?: string | undefined; repository?: string | undefined }): Promise<StoredEvent[]> {
    return this.meta.events.read(query);
  }

  // --- repositories (repositories.ts) ---------------------------------------------------------

  createRepository(repo: RepoRef, init?: RepositoryInit): Promise<{ repository: Repository; created: boolean }> {
    return this.repositories.create(repo, init);
  }
  findRepository(repo: RepoRef): Promise<Repository | undefined> {
    return this.repositories.find(repo);
  }
  forgetRepository(repo: RepoRef): void {
    this.repositories.forget(repo);
  }
  getRepository(repo: RepoRef): Promise<Repository> {
    return this.repositories.get(repo);
  }
  deleteRepository(repository: Repository, options: { force: boolean }): Promise<RepositoryDeletion> {
    return this.repositories.delete(repository, options);
  }
  /**
   * The repository a replication (`REPLICATION`) or a pull-through cache rule
   * (`PULL_THROUGH_CACHE`) writes into, created from the creation template for that use (or with
   * the defaults) when missing.
   */
  repositoryForTemplateUse(repo: RepoRef, use: 'REPLICATION' | 'PULL_THROUGH_CACHE'): Promise<{ repository: Repository; created: boolean }> {
    return this.repositories.forTemplateUse(repo, use);
  }
  createsOnPush(repo: RepoRef): Promise<boolean> {
    return this.repositories.createsOnPush(repo);
  }
  listRepositories(caller: Caller, account: string, page: Page): Promise<{ names: string[]; more: boolean }> {
    return this.repositories.list(caller, account, page);
  }
  /** Every repository name of the account, in order, unfiltered (for background work, not callers). */
  repositoryNames(account: string, page: Page): Promise<string[]> {
    return this.meta.listRepositories(account, page);
  }
  repositorySettings(repository: Repository): Promise<RepositorySettings> {
    return this.repositories.settings(repository);
  }
  updateRepositorySettings(repositoryId: number, patch: Partial<RepositorySettings>): Promise<boolean> {
    return this.repositories.updateSettings(repositoryId, patch);
  }
  setRegistryPolicy(accountId: string, text: string | null): Promise<boolean> {
    return this.repositories.setRegistryPolicy(accountId, text);
  }
  repositoryPolicy(repositoryId: number): Promise<string | undefined> {
    return this.repositories.policy(repositoryId);
  }
  setRepositoryPolicy(repository: Repository, text: string | null): Promise<boolean> {
    return this.repositories.setPolicy(repository, text);
  }
  lifecyclePolicy(repositoryId: number): Promise<LifecyclePolicyRecord | undefined> {
    return this.repositories.lifecyclePolicy(repositoryId);
  }
  putLifecyclePolicy(repository: Repository, text: string): Promise<boolean> {
    return this.repositories.putLifecyclePolicy(repository, text);
  }
  deleteLifecyclePolicy(repository: Repository): Promise<boolean> {
    return this.repositories.deleteLifecyclePolicy(repository);
  }
  markLifecycleEvaluated(repositoryId: number, atMs: number): Promise<boolean> {
    return this.repositories.markLifecycleEvaluated(repositoryId, atMs);
  }
  repositoriesWithLifecyclePolicy(): Promise<LifecycleRepository[]> {
    return this.repositories.repositoriesWithLifecyclePolicy();
  }
  lifecyclePreview(repositoryId: number): Promise<LifecyclePreview | undefined> {
    return this.repositories.lifecyclePreview(repositoryId);
  }
  putLifecyclePreview(repositoryId: number, preview: LifecyclePreview): Promise<boolean> {
    return this.repositories.putLifecyclePreview(repositoryId, preview);
  }
  repositoryTemplates(accountId: string): Promise<RepositoryTemplate[]> {
    return this.repositories.templates(accountId);
  }
  repositoryTemplate(accountId: string, prefix: string): Promise<RepositoryTemplate | undefined> {
    return this.repositories.template(accountId, prefix);
  }
  putRepositoryTemplate(accountId: string, template: RepositoryTemplate): Promise<void> {
    return this.repositories.putTemplate(accountId, template);
  }
  deleteRepositoryTemplate(accountId: string, prefix: string): Promise<boolean> {
    return this.repositories.deleteTemplate(accountId, prefix);
  }
  accountSetting(accountId: string, name: string): Promise<string | undefined> {
    return this.repositories.accountSetting(accountId, name);
  }
  putAccountSetting(accountId: string, name: string, value: string): Promise<void> {
    return this.repositories.putAccountSetting(accountId, name, value);
  }

  // --- blobs and uploads (uploads.ts) -----------------------------------------------------------

  statBlob(repo: RepoRef, digest: Digest): Promise<BlobInfo & { manifest?: ManifestRecord }> {
    return this.uploads.statBlob(repo, digest);
  }
  openBlob(info: BlobInfo & { manifest?: ManifestRecord }, range?: ByteRange): Promise<Readable> {
    return this.uploads.openBlob(info, range);
  }
  openBlobSender(info: BlobInfo & { manifest?: ManifestRecord }, range?: ByteRange): Promise<((destination: Writable) => Promise<void>) | undefined> {
    return this.uploads.openBlobSender(info, range);
  }
  deleteBlob(repo: RepoRef, digest: Digest): Promise<void> {
    return this.uploads.deleteBlob(repo, digest);
  }
  /**
   * Links a blob the store holds into a repository, without an upload (replication between
   * accounts of this deployment, whose blob store is shared). False when it is gone.
   */
  linkBlob(repositoryId: number, digest: Digest): Promise<boolean> {
    return this.meta.linkBlob(repositoryId, digest, (this.options.now ?? Date.now)());
  }
  findLinkedBlobs(repositoryId: number, digests: Digest[]): Promise<Map<Digest, BlobInfo>> {
    return this.uploads.findLinked(repositoryId, digests);
  }
  findLinkedBlob(repositoryId: number, digest: Digest): Promise<BlobInfo | undefined> {
    return this.uploads.findOneLinked(repositoryId, digest);
  }
  isBlobReferenced(repositoryId: number, digest: Digest): Promise<boolean> {
    return this.uploads.isReferenced(repositoryId, digest);
  }
  startUpload(repo: RepoRef): Promise<Upload> {
    return this.uploads.startUpload(repo);
  }
  mountBlob(caller: Caller, repo: RepoRef, digest: Digest, from: string | undefined, sourceAction?: string): Promise<BlobInfo | undefined> {
    return this.uploads.mountBlob(caller, repo, digest, from, sourceAction);
  }
  getUpload(repo: RepoRef, uploadId: string): Promise<Upload> {
    return this.uploads.getUpload(repo, uploadId);
  }
  appendUpload(repo: RepoRef, uploadId: string, body: Readable, bounds: ChunkBounds): Promise<Upload> {
    return this.uploads.appendUpload(repo, uploadId, body, bounds);
  }
  completeUpload(repo: RepoRef, uploadId: string, digest: Digest, lastChunk?: { body: Readable; bounds: ChunkBounds }): Promise<BlobInfo> {
    return this.uploads.completeUpload(repo, uploadId, digest, lastChunk);
  }
  pushBlob(repo: RepoRef, digest: Digest, body: Readable, bounds: ChunkBounds): Promise<BlobInfo> {
    return this.uploads.pushBlob(repo, digest, body, bounds);
  }
  cancelUpload(repo: RepoRef, uploadId: string): Promise<void> {
    return this.uploads.cancelUpload(repo, uploadId);
  }
  sweepUploads(options?: { dryRun?: boolean }): Promise<{ sessions: number; orphans: number }> {
    return this.uploads.sweepUploads(options);
  }

  // --- manifests, tags and pulls (images.ts) ----------------------------------------------------

  getManifest(repo: RepoRef, reference: string): Promise<ManifestRecord> {
    return this.images.getManifest(repo, reference);
  }
  putManifest(repo: RepoRef, reference: string, contentType: string | undefined, payload: Uint8Array, options?: PutManifestOptions): Promise<PutManifestResult> {
    return this.images.putManifest(repo, reference, contentType, payload, options);
  }
  deleteManifest(repo: RepoRef, reference: string, options?: { expiredBy?: { rulePriority: number } }): Promise<void> {
    return this.images.deleteManifest(repo, reference, options);
  }
  listTags(repo: RepoRef, page: Page): Promise<{ names: string[]; more: boolean }> {
    return this.images.listTags(repo, page);
  }
  listReferrers(repo: RepoRef, subject: Digest, artifactType?: string): Promise<ManifestSummary[]> {
    return this.images.listReferrers(repo, subject, artifactType);
  }
  pullManifest(repo: RepoRef, reference: string): Promise<ManifestRecord> {
    return this.images.pullManifest(repo, reference);
  }
  recordPull(repositoryId: number, digest: Digest): void {
    this.images.recordPull(repositoryId, digest);
  }
  lastPulledAt(repositoryId: number, digest: Digest, storedMs: number | null): number | null {
    return this.images.lastPulledAt(repositoryId, digest, storedMs);
  }
  tagDigest(repositoryId: number, tag: string): Promise<Digest | undefined> {
    return this.images.tagDigest(repositoryId, tag);
  }
  hasManifest(repositoryId: number, digest: Digest): Promise<boolean> {
    return this.images.hasManifest(repositoryId, digest);
  }
  getImages(repositoryId: number, digests: Digest[]): Promise<Map<Digest, ImageRecord>> {
    return this.images.getImages(repositoryId, digests);
  }
  listImageIds(repositoryId: number, query: { tagStatus: TagStatus; after?: ImageId | undefined; limit: number }): Promise<ImageId[]> {
    return this.images.listImageIds(repositoryId, query);
  }
  listImages(repositoryId: number, query: { tagStatus: TagStatus; afterDigest?: Digest | undefined; limit: number }): Promise<ImageRecord[]> {
    return this.images.listImages(repositoryId, query);
  }
  parentManifests(repositoryId: number, digest: Digest): Promise<Digest[]> {
    return this.images.parents(repositoryId, digest);
  }
  lifecycleImages(repositoryId: number): Promise<LifecycleImageRecord[]> {
    return this.images.lifecycleImages(repositoryId);
  }
}
