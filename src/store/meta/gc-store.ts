import type { Digest } from '../../digest/digest.ts';

/** A `blobs` row as garbage collection sees it. */
export interface BlobRecord {
  digest: Digest;
  sizeBytes: number;
  createdAtMs: number;
  /** When it was last committed, linked, named by a manifest being pushed, or left by a manifest being deleted. */
  lastUsedAtMs: number;
  /** When a collection chose it; the row then counts as absent everywhere. Null for a live blob. */
  deletingAtMs: number | null;
}

export interface ManifestKey {
  repositoryId: number;
  digest: Digest;
}

/** A manifest nothing keeps: untagged, listed by no index of its repository, no referrer of a manifest there. */
export interface ManifestCandidate extends ManifestKey {
  accountId: string;
  repositoryName: string;
  sizeBytes: number;
  createdAtMs: number;
}

/** Everything that decides whether a manifest is garbage, and what its removal frees. */
export interface ManifestState extends ManifestCandidate {
  isTagged: boolean;
  /** Manifests of the repository that reference it (indexes listing it), in digest order. */
  parents: Digest[];
  subjectDigest: Digest | null;
  /** Whether the repository holds the subject. */
  subjectExists: boolean;
  /** Manifests it lists, in digest order. */
  children: Digest[];
  /** Manifests of the repository whose subject it is, in digest order. */
  referrers: Digest[];
  /** Blobs it references (config, layers), in digest order. */
  blobs: Digest[];
}

/** What deleting a manifest removed, and what may be garbage now that it is gone. */
export interface RemovedManifest extends ManifestCandidate {
  children: Digest[];
  referrers: Digest[];
  blobs: Digest[];
}

/** A repository's storage: its manifests' payloads and the distinct blobs they reference. */
export interface RepositoryUsage {
  repositoryId: number;
  accountId: string;
  name: string;
  manifests: number;
  manifestBytes: number;
  blobs: number;
  blobBytes: number;
}

/**
 * An account's storage. Blobs referenced by several of its repositories count once in
 * `blobBytes`; `sharedBlobs`/`sharedBytes` are those referenced by more than one repository.
 */
export interface AccountUsage {
  accountId: string;
  repositories: number;
  manifests: number;
  manifestBytes: number;
  blobs: number;
  blobBytes: number;
  sharedBlobs: number;
  sharedBytes: number;
}

/** The whole registry: every recorded blob once, and how much no manifest references. */
export interface TotalUsage {
  manifests: number;
  manifestBytes: number;
  blobs: number;
  blobBytes: number;
  unreferencedBlobs: number;
  unreferencedBytes: number;
}

/**
 * The queries and deletions of garbage collection (src/gc/collector.ts; docs/gc.md explains
 * the protocol). Candidate lists are snapshots: anything may have changed by the time the
 * collector acts, so every deletion locks its row and checks again, in a transaction of its own.
 *
 * Lock order, which every writer keeps so that none deadlocks with another: a manifest row
 * before blob rows, blob rows in digest order, a blob row before its repository links.
 */
export interface GcStore {
  /**
   * Manifests that are garbage now: created before `createdBeforeMs`, without a tag, listed by
   * no manifest of their repository, and either no referrer or a referrer whose subject the
   * repository does not hold. Ordered by (repositoryId, digest), after `after`.
   */
  listManifestCandidates(query: { createdBeforeMs: number; after?: ManifestKey | undefined; limit: number }): Promise<ManifestCandidate[]>;
  /** Resolves undefined when the repository does not hold the manifest. */
  getManifestState(repositoryId: number, digest: Digest): Promise<ManifestState | undefined>;
  /**
   * In one transaction: locks the manifest row, checks again that it is a candidate (as
   * listManifestCandidates defines it), and deletes it with its references. Resolves undefined,
   * having changed nothing, when it is absent or no longer garbage. Touches no blob: what it
   * frees is collectable in the same run.
   */
  deleteManifestIfUnused(repositoryId: number, digest: Digest, createdBeforeMs: number): Promise<RemovedManifest | undefined>;

  /**
   * Live blobs (not being deleted) that no manifest of any repository references and that were
   * last used before `usedBeforeMs`, oldest use first, after `after`.
   */
  listBlobCandidates(query: { usedBeforeMs: number; after?: { lastUsedAtMs: number; digest: Digest } | undefined; limit: number }): Promise<BlobRecord[]>;
  /** Rows a collection marked but did not finish deleting (it died), in digest order. */
  listDeletingBlobs(query: { after?: Digest | undefined; limit: number }): Promise<BlobRecord[]>;
  /** Every row, in digest order (for audits and tests). */
  listBlobRecords(query: { after?: Digest | undefined; limit: number }): Promise<BlobRecord[]>;
  /** The recorded blobs among `digests` (marked ones too), each with how many manifest references name it. */
  getBlobUsage(digests: Digest[]): Promise<Map<Digest, BlobRecord & { references: number }>>;
  /** Which of `digests` have a row, marked or not. */
  findRecordedBlobs(digests: Digest[]): Promise<Set<Digest>>;
  /**
   * First transaction of a blob's deletion: locks the row, checks again that it is live,
   * unreferenced and last used before `usedBeforeMs`, and marks it (`deleting_at`), then commits.
   * From then on writers treat the blob as absent. Resolves whether it marked it.
   */
  markBlobForDeletion(digest: Digest, usedBeforeMs: number, nowMs: number): Promise<boolean>;
  /**
   * Second transaction: locks the marked row, checks that nothing references it (if something
   * does, which no writer should allow, the mark is cleared and nothing is deleted), deletes its
   * repository links and the row, then calls `removeBytes` while the row is still locked, and
   * commits only once the bytes are gone. A writer that wants the blob meanwhile waits, then
   * finds it absent. Resolves the row deleted, or undefined when there was no marked row.
   */
  deleteMarkedBlob(digest: Digest, removeBytes: (blob: BlobRecord) => Promise<void>): Promise<BlobRecord | undefined>;
  /**
   * Bytes that no row records: in one transaction, claims the digest with a placeholder row
   * (marked, so no reader takes it), calls `removeBytes`, and removes the placeholder. A writer
   * recording the blob meanwhile waits for the claim, and finds the bytes gone. Resolves false,
   * having done nothing, when a row exists.
   */
  deleteUnrecordedBytes(digest: Digest, sizeBytes: number, nowMs: number, removeBytes: () => Promise<void>): Promise<boolean>;

  /** Per repository, by id, after `afterId`. */
  repositoryUsage(query: { afterId?: number | undefined; limit: number }): Promise<RepositoryUsage[]>;
  /** Per account that has repositories, by account id. */
  accountUsage(): Promise<AccountUsage[]>;
  totalUsage(): Promise<TotalUsage>;
}
