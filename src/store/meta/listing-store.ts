import type { Digest } from '../../digest/digest.ts';
import type { Repository, TagStatus } from './meta-store.ts';

/**
 * Sorted, filtered and counted pages of an account's repositories and of a repository's images,
 * and the storage figures that go with them (the console's lists: BerthListRepositories,
 * BerthListImages, BerthDescribeStorageUsage). Pages are keyset pages: each continues after the
 * position the previous one ended at (its last row's sort value, then its name or digest), so
 * rows added or removed meanwhile neither repeat nor push others out. Every method only reads,
 * except the image-size cache (recordImageSizes), which only ever adds what the manifests imply.
 */

export type SortOrder = 'ASC' | 'DESC';

/** Where a page ended: the last row's sort value and its name (repositories) or digest (images), which breaks ties. */
export interface ListPosition {
  /** A number for times, counts and bytes; a string for names and tags; null for an untagged image in the tag order. */
  value: number | string | null;
  id: string;
}

/** What a repository row is sorted by: its name, creation time, number of images, or sizeBytes (RepositoryFigures). */
export type RepositorySort = 'name' | 'createdAt' | 'imageCount' | 'sizeBytes';

/** A repository of the account as the caller's visibility check needs it. */
export interface RepositoryEntry {
  id: number;
  name: string;
  createdAtMs: number;
  /** Whether it has a repository policy (which then takes part in IAM's decisions on it). */
  hasPolicy: boolean;
}

export interface RepositoryListQuery {
  accountId: string;
  /** Only names containing this (lower-case ASCII; names are lower case). */
  nameContains?: string | undefined;
  /** Repositories left out, by id (those the caller may not see). */
  excludeIds?: readonly number[] | undefined;
  sortBy: RepositorySort;
  order: SortOrder;
  after?: ListPosition | undefined;
  limit: number;
}

/**
 * A repository's storage, as `berth storage` counts it (docs/gc.md): its manifests and their
 * payload bytes, and the distinct blobs they reference (a blob shared with another repository
 * counts in both). sizeBytes is manifestBytes + blobBytes: what the repository needs on its own.
 */
export interface RepositoryFigures {
  imageCount: number;
  manifestBytes: number;
  blobCount: number;
  blobBytes: number;
  sizeBytes: number;
}

/** An account's storage: every blob its repositories reference once, however many share it. */
export interface AccountFigures {
  repositoryCount: number;
  imageCount: number;
  manifestBytes: number;
  blobCount: number;
  blobBytes: number;
  /** Blobs more than one of the repositories counted reference. */
  sharedBlobCount: number;
  sharedBlobBytes: number;
}

/** What an image row is sorted by: push time, ECR's imageSizeInBytes (recordImageSizes), or its first tag in byte order (untagged images after every tag). */
export type ImageSort = 'pushedAt' | 'sizeBytes' | 'tag';

export interface ImageFilter {
  repositoryId: number;
  /** Only images with a tag (compared in lower case) or a digest containing this (lower-case ASCII). */
  contains?: string | undefined;
  tagStatus: TagStatus;
}

export interface ImageListQuery extends ImageFilter {
  sortBy: ImageSort;
  order: SortOrder;
  after?: ListPosition | undefined;
  limit: number;
}

export interface ListingStore {
  /** Every repository of the account, in name order (byte order). */
  listRepositoryEntries(accountId: string): Promise<RepositoryEntry[]>;
  /**
   * A page of the account's repositories by name or creation time (ties by name), off an index.
   * The orders by size and image count need every repository's figures: the registry sorts those
   * (registry/listings.ts), from repositoryFigures.
   */
  listRepositories(query: RepositoryListQuery & { sortBy: 'name' | 'createdAt' }): Promise<Array<{ repository: Repository; position: ListPosition }>>;
  /** The figures of each repository asked for; ids of repositories that do not exist are left out. */
  repositoryFigures(repositoryIds: readonly number[]): Promise<Map<number, RepositoryFigures>>;
  /** The account's storage over its repositories but the excluded ones; shared blobs among those count once. */
  accountFigures(accountId: string, options?: { excludeIds?: readonly number[] | undefined }): Promise<AccountFigures>;

  /**
   * A page of the repository's manifests in the order asked, ties by digest. The sizeBytes order
   * holds only manifests whose size was recorded (recordImageSizes): record first.
   */
  listImages(query: ImageListQuery): Promise<Array<{ digest: Digest; position: ListPosition }>>;
  /** How many manifests of the repository pass the filter. */
  countImages(filter: ImageFilter): Promise<number>;
  /** Manifests of the repository whose image size is not recorded, in digest order (after `afterDigest`), with their payloads. */
  listImagesWithoutSize(repositoryId: number, query: { afterDigest?: Digest | undefined; limit: number }): Promise<Array<{ digest: Digest; mediaType: string; payload: Uint8Array }>>;
  /**
   * Records image sizes (ECR's imageSizeInBytes, computed by the registry from the manifests,
   * which never change). Idempotent: a size already recorded is kept. Sizes of manifests deleted
   * meanwhile are skipped; a recorded size goes with its manifest. Not inside a transaction: on
   * PostgreSQL, skipping a deleted manifest retries the batch row by row after a foreign-key
   * error, which would have aborted the surrounding transaction.
   */
  recordImageSizes(repositoryId: number, sizes: ReadonlyArray<{ digest: Digest; sizeBytes: number }>): Promise<void>;
}
