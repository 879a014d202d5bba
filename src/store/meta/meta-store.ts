import type { Digest } from '../../digest/digest.ts';
import type { BlobInfo } from '../blob/blob-store.ts';
import type { IdentityStore } from './identity-store.ts';
import type { AuditStore } from './audit-store.ts';
import type { GcStore } from './gc-store.ts';
import type { LifecycleStore } from './lifecycle-store.ts';
import type { ReplicationStore } from './replication-store.ts';
import type { SecretStore } from './secret-store.ts';
import type { CacheStore } from './cache-store.ts';
import type { ScanStore } from './scan-store.ts';
import type { VulnDbStore } from './vulndb-store.ts';
import type { EventStore } from './event-store.ts';
import type { ListingStore } from './listing-store.ts';

export interface Repository {
  id: number;
  /** The 12-digit account that owns it; names are unique within an account. */
  accountId: string;
  name: string;
  createdAtMs: number;
}

export type TagMutability = 'MUTABLE' | 'IMMUTABLE' | 'MUTABLE_WITH_EXCLUSION' | 'IMMUTABLE_WITH_EXCLUSION';

/** A repository's ECR settings. Defaults (a repository created by a push): mutable tags, no scan on push, AES256. */
export interface RepositorySettings {
  imageTagMutability: TagMutability;
  /** ECR's exclusion filters: tags matching one of these wildcards get the opposite mutability. */
  imageTagMutabilityExclusionFilters: { filterType: 'WILDCARD'; filter: string }[];
  scanOnPush: boolean;
  encryptionType: 'AES256' | 'KMS' | 'KMS_DSSE';
  kmsKey: string | null;
  tags: { Key: string; Value: string }[];
  /** The lifecycle policy text (applied from a creation template now; the lifecycle work reads it). */
  lifecyclePolicy: string | null;
}

export const defaultRepositorySettings: Readonly<RepositorySettings> = Object.freeze({
  imageTagMutability: 'MUTABLE',
  imageTagMutabilityExclusionFilters: [],
  scanOnPush: false,
  encryptionType: 'AES256',
  kmsKey: null,
  tags: [],
  lifecyclePolicy: null,
});

/** A repository creation template (ECR CreateRepositoryCreationTemplate), stored as ECR's shape. */
export interface RepositoryTemplate {
  prefix: string;
  /** ECR's RepositoryCreationTemplate fields other than prefix and the timestamps. */
  template: Record<string, unknown>;
  createdAtMs: number;
  updatedAtMs: number;
}

export interface ManifestSummary {
  digest: Digest;
  mediaType: string;
  sizeBytes: number;
  artifactType: string | null;
  subjectDigest: string | null;
  /** The manifest's `annotations` as JSON text, or null. */
  annotations: string | null;
  createdAtMs: number;
}

export interface ManifestRecord extends ManifestSummary {
  /** The exact bytes pushed; served back unchanged. */
  payload: Uint8Array;
}

/** What a manifest points at: blobs (config, layers) or child manifests (index entries). */
export interface ManifestReference {
  digest: Digest;
  kind: 'blob' | 'manifest';
}

/**
 * What putManifest did. `missingBlobs` and `missingManifests` are the references the store could
 * not find (blobs not recorded or being deleted by garbage collection, child manifests not in the
 * repository); the manifest is written all the same, so a caller that refuses such a manifest
 * throws inside its transaction.
 */
export interface PutManifestOutcome {
  /** False when the repository already held the manifest (its references were not checked again). */
  created: boolean;
  missingBlobs: Digest[];
  missingManifests: Digest[];
}

export interface Upload {
  id: string;
  repositoryId: number;
  sizeBytes: number;
  startedAtMs: number;
  updatedAtMs: number;
}

export interface Page {
  /** Only names strictly after this one (lexical order). */
  after?: string | undefined;
  limit: number;
}

/** ECR's tagStatus filter (ListImages, DescribeImages). */
export type TagStatus = 'TAGGED' | 'UNTAGGED' | 'ANY';

/** One entry of ListImages: a tag and its image, or (tag null) an image without tags. */
export interface ImageId {
  digest: Digest;
  tag: string | null;
}

/** A manifest as DescribeImages shows it. */
export interface ImageRecord extends ManifestRecord {
  /** Its tags, in byte order. */
  tags: string[];
  /** ECR's lastRecordedPullTime; null until a pull was recorded. */
  lastPulledAtMs: number | null;
}

export interface PullRecord {
  repositoryId: number;
  digest: Digest;
  atMs: number;
}

/**
 * Registry metadata. Queries are named for the domain; registry semantics (manifest parsing,
 * what may reference what) live in registry/, so drivers stay thin. Every method is safe to call
 * concurrently; writes that must land together go through transaction().
 */
export interface JobState {
  name: string;
  nextRunAtMs: number;
  leaseOwner: string | null;
  leaseExpiresAtMs: number | null;
  lastStartedAtMs: number | null;
  lastFinishedAtMs: number | null;
  lastError: string | null;
}

export interface MetaStore {
  /** Accounts, IAM entities, policies and the audit trail, in the same database (and transaction). */
  readonly identity: IdentityStore;
  /** The audit trail: appended by the audit log, exported by `berth audit`, looked up by CloudTrail's LookupEvents. */
  readonly audit: AuditStore;
  /** Garbage collection's queries and deletions (docs/gc.md). */
  readonly gc: GcStore;
  /** Lifecycle policies and previews. */
  readonly lifecycle: LifecycleStore;
  /** The event outbox and its consumers' cursors (docs/adr/0012-event-outbox.md). */
  readonly events: EventStore;
  /** Image scanning: configuration, cached analyses, scan records and queue (docs/scanning.md). */
  readonly scan: ScanStore;
  /** The vulnerability database scans match against (docs/scanning.md). */
  readonly vulndb: VulnDbStore;
  /** Replication configurations and tasks (docs/replication.md). */
  readonly replication: ReplicationStore;
  /** Secrets Manager's secrets, values sealed (docs/secrets-manager.md). */
  readonly secrets: SecretStore;
  /** Pull-through cache rules, tag checks and fetch leases (docs/pull-through-cache.md). */
  readonly cache: CacheStore;
  /** The console's sorted, filtered and counted lists, and storage figures (BerthListRepositories, BerthListImages). */
  readonly listings: ListingStore;

  /** Runs fn with a store whose writes commit together, or not at all if fn rejects. */
  transaction<T>(fn: (tx: MetaStore) => Promise<T>): Promise<T>;

  /** Resolves undefined when absent. */
  getRepository(accountId: string, name: string): Promise<Repository | undefined>;
  /**
   * Idempotent: a concurrent or earlier creation resolves with the existing row and created=false
   * (and `settings` are not applied to it). Settings not given take the defaults.
   */
  createRepository(accountId: string, name: string, nowMs: number, settings?: Partial<RepositorySettings>): Promise<{ repository: Repository; created: boolean }>;
  /** Resolves undefined when the repository does not exist. */
  getRepositorySettings(repositoryId: number): Promise<RepositorySettings | undefined>;
  /** Changes the given settings only. Resolves false when the repository does not exist. */
  updateRepositorySettings(repositoryId: number, patch: Partial<RepositorySettings>): Promise<boolean>;
  /**
   * Deletes the repository with its blob links, manifests, tags, references, upload sessions and
   * lifecycle policy, in one transaction. Blob bytes stay for garbage collection; the blobs its
   * manifests referenced count as used at `nowMs` (default: now), so that they outlive it by the
   * collection's grace period. Resolves false when absent.
   */
  deleteRepository(repositoryId: number, nowMs?: number): Promise<boolean>;
  /** How many manifests the repository holds (DeleteRepository without force refuses a non-empty one). */
  countManifests(repositoryId: number): Promise<number>;

  /** Creates or replaces. */
  putRepositoryTemplate(accountId: string, template: RepositoryTemplate): Promise<void>;
  /** Templates of the account, by prefix. */
  listRepositoryTemplates(accountId: string): Promise<RepositoryTemplate[]>;
  deleteRepositoryTemplate(accountId: string, prefix: string): Promise<boolean>;

  getAccountSetting(accountId: string, name: string): Promise<string | undefined>;
  putAccountSetting(accountId: string, name: string, value: string): Promise<void>;
  /** The account's repository names in lexical order. */
  listRepositories(accountId: string, page: Page): Promise<string[]>;
  /** The account's repositories that link the blob, oldest first. */
  findRepositoriesWithBlob(accountId: string, digest: Digest, limit: number): Promise<Repository[]>;
  /** The repository policy's JSON text; undefined when the repository has none or does not exist. */
  getRepositoryPolicy(repositoryId: number): Promise<string | undefined>;
  /** Sets (text) or removes (null) the repository policy. Resolves false when the repository is gone. */
  setRepositoryPolicy(repositoryId: number, policy: string | null): Promise<boolean>;

  /**
   * Records a blob whose bytes the blob store has just verified, and marks it used at `nowMs`.
   * Idempotent; on a recorded blob it only marks it used, and a blob that garbage collection was
   * deleting becomes live again (the caller has just put its bytes back, and checks that they are
   * there before committing). Waits for a collection deleting the blob to finish.
   */
  putBlob(blob: BlobInfo, nowMs: number): Promise<void>;
  /** Resolves undefined when the blob is not recorded, or garbage collection is deleting it. */
  getBlob(digest: Digest): Promise<BlobInfo | undefined>;
  /**
   * Makes a recorded blob visible in a repository and marks it used at `nowMs`. Idempotent.
   * Resolves false, linking nothing, when the blob is not recorded or garbage collection is
   * deleting it (the caller then has the client upload it).
   */
  linkBlob(repositoryId: number, digest: Digest, nowMs: number): Promise<boolean>;
  /** Resolves the blob only if the repository links it (and it is not being deleted). */
  findLinkedBlob(repositoryId: number, digest: Digest): Promise<BlobInfo | undefined>;
  /** The digests among `digests` that the repository links (and are not being deleted), by digest. */
  findLinkedBlobs(repositoryId: number, digests: Digest[]): Promise<Map<Digest, BlobInfo>>;
  /** Resolves false when the repository did not link it. The bytes stay; GC decides. */
  unlinkBlob(repositoryId: number, digest: Digest): Promise<boolean>;

  /** Resolves undefined when absent. */
  getManifest(repositoryId: number, digest: Digest): Promise<ManifestRecord | undefined>;
  /** Resolves undefined when the tag is absent. */
  findManifestByTag(repositoryId: number, tag: string): Promise<ManifestRecord | undefined>;
  /** Which of the digests exist as manifests in the repository. */
  findExistingManifests(repositoryId: number, digests: Digest[]): Promise<Set<Digest>>;
  /**
   * Idempotent on (repository, digest): the first write wins; references are recorded with it.
   * A new manifest's references are checked and held until the transaction ends, so that garbage
   * collection cannot take them meanwhile: its blobs are marked used at the manifest's
   * `createdAtMs`, its child manifests are locked; those not found are reported in the outcome.
   * An existing manifest is locked likewise (a tag may be pointed at it in the same transaction).
   */
  putManifest(repositoryId: number, manifest: ManifestRecord, references: ManifestReference[]): Promise<PutManifestOutcome>;
  /**
   * Removes the manifest, its tags and its references. The blobs it referenced count as used at
   * `nowMs` (default: now), so that they outlive it by the collection's grace period (a client
   * that saw them a moment ago may still push a manifest naming them). Resolves false when absent.
   */
  deleteManifest(repositoryId: number, digest: Digest, nowMs?: number): Promise<boolean>;
  /** Manifests in the repository that list `digest` as a child manifest. */
  findParentManifests(repositoryId: number, digest: Digest): Promise<Digest[]>;
  /** Manifests whose subject is `digest`, optionally of one artifact type, oldest first. */
  listReferrers(repositoryId: number, subjectDigest: Digest, artifactType?: string): Promise<ManifestSummary[]>;

  /** The digest the tag points at; undefined when the tag is absent. */
  findTagDigest(repositoryId: number, tag: string): Promise<Digest | undefined>;
  /** Points the tag at the manifest, creating or moving it. */
  putTag(repositoryId: number, tag: string, digest: Digest, nowMs: number): Promise<void>;
  /** Resolves false when absent. */
  deleteTag(repositoryId: number, tag: string): Promise<boolean>;
  /** Tags in lexical order. */
  listTags(repositoryId: number, page: Page): Promise<string[]>;

  createUpload(upload: Upload): Promise<void>;
  /** Resolves undefined when absent. */
  getUpload(id: string): Promise<Upload | undefined>;
  /**
   * Moves the upload's size from `fromSize` to `toSize` only if it is still `fromSize`, so that
   * two nodes appending to one upload cannot both succeed. Resolves whether it moved.
   */
  advanceUpload(id: string, fromSize: number, toSize: number, nowMs: number): Promise<boolean>;
  /** Resolves false when absent. */
  deleteUpload(id: string): Promise<boolean>;
  /** Uploads untouched since `beforeMs`, oldest first. */
  listStaleUploads(beforeMs: number, limit: number): Promise<Upload[]>;

  /**
   * ListImages: one entry per tag, and one with tag null per manifest that has no tag, ordered
   * by digest and then tag (byte order); TAGGED and UNTAGGED keep only those kinds of entries.
   * `after` (an entry an earlier page ended with) continues after it, whatever changed since.
   */
  listImageIds(repositoryId: number, query: { tagStatus: TagStatus; after?: ImageId | undefined; limit: number }): Promise<ImageId[]>;
  /**
   * DescribeImages: manifests in digest order (byte order), only those with at least one tag
   * (TAGGED) or none (UNTAGGED), each with its tags and last recorded pull.
   */
  listImages(repositoryId: number, query: { tagStatus: TagStatus; afterDigest?: Digest | undefined; limit: number }): Promise<ImageRecord[]>;
  /** The manifests among `digests` that the repository holds, as listImages shows them; absent ones are left out. */
  getImages(repositoryId: number, digests: Digest[]): Promise<Map<Digest, ImageRecord>>;
  /**
   * Records pulls (lastRecordedPullTime), in transactions of a few hundred. A manifest's time
   * only moves forward, so replays, out-of-order batches and a batch that failed after an earlier
   * one committed are harmless; manifests since deleted are skipped.
   */
  recordPulls(pulls: PullRecord[]): Promise<void>;
  /** Whether a manifest of the repository references the digest (as its config, a layer or a listed manifest). */
  isReferenced(repositoryId: number, digest: Digest): Promise<boolean>;

  /** Registers a job; its first run is due at `firstRunAtMs`. Idempotent: an existing job is left as it is. */
  ensureJob(name: string, firstRunAtMs: number): Promise<void>;
  /**
   * Takes the job's lease for `owner` until `leaseUntilMs` if the job is due and nobody holds a
   * live lease (an expired lease, e.g. of a node that died, can be taken over). Atomic: of
   * concurrent callers on any number of nodes, at most one gets it. Resolves whether it did.
   */
  acquireJob(name: string, owner: string, nowMs: number, leaseUntilMs: number): Promise<boolean>;
  /** Extends a lease the owner still holds. Resolves false when it lost it. */
  renewJob(name: string, owner: string, leaseUntilMs: number): Promise<boolean>;
  /**
   * Ends the owner's run: releases the lease and sets the next run, at `nextRunAtMs` or at the
   * earlier time a hurryJob() made during the run. Resolves false when the owner no longer held the lease.
   */
  finishJob(name: string, owner: string, nowMs: number, nextRunAtMs: number, error: string | null): Promise<boolean>;
  /**
   * Brings the job's next run forward to `atMs` if it was due later (never back). During a run
   * the time is kept for finishJob, so a request made while the job runs is not lost.
   */
  hurryJob(name: string, atMs: number): Promise<void>;
  getJob(name: string): Promise<JobState | undefined>;

  /** Readiness: resolves when the store can serve. */
  check(): Promise<void>;
  close(): Promise<void>;
}
