import type { Logger } from '../log/logger.ts';
import type { BlobStore } from '../store/blob/blob-store.ts';
import type { MetaStore } from '../store/meta/meta-store.ts';
import type { Authorizer } from './access.ts';
import type { RedirectPolicy } from './blob-redirect.ts';

export interface RegistryOptions {
  meta: MetaStore;
  blobs: BlobStore;
  authorizer: Authorizer;
  log: Logger;
  /** The region events and ARNs name. */
  region: string;
  /**
   * Create any repository on first push (Distribution's behaviour). Off, as in ECR, a push creates
   * a repository only when a CREATE_ON_PUSH creation template covers its name.
   */
  createOnPush: boolean;
  /** Called after a repository was created with a repository policy (so that policy caches drop what they knew). */
  onPolicyChange?: () => void;
  /**
   * Called after an image arrived (a push or a replication recorded its event), so that this
   * node's consumers of the event log look now rather than at their next poll. A hint only.
   */
  onImageArrived?: () => void;
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
  /** How long an account's repository figures serve the console's sorted lists and usage (cache.figuresSeconds); 0: computed each time. Default 60 s. */
  figuresFreshMs?: number;
  /** Which clients download blobs straight from the store (`blobs.redirect`); default never. */
  blobRedirect?: RedirectPolicy;
  /** Lifetime of redirect URLs; default 1200 s. */
  blobRedirectTtlSeconds?: number;
  /** How long recorded pulls (lastRecordedPullTime) wait in memory before one batched write; default 5 s. */
  pullFlushIntervalMs?: number;
  now?: () => number;
}

/** What every part of the registry (repositories.ts, uploads.ts, images.ts) works with. */
export interface RegistryContext {
  readonly meta: MetaStore;
  readonly blobs: BlobStore;
  readonly authorizer: Authorizer;
  readonly log: Logger;
  readonly region: string;
  readonly options: RegistryOptions;
  readonly now: () => number;
  /** Tells garbage collection that a deletion may have left something to collect. */
  garbageMade(): void;
}
