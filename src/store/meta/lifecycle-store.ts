import type { Digest } from '../../digest/digest.ts';

/** ECR's LifecyclePolicyPreviewStatus. */
export type LifecyclePreviewStatus = 'IN_PROGRESS' | 'COMPLETE' | 'EXPIRED' | 'FAILED';

export interface LifecyclePolicyRecord {
  /** The policy as given (ECR lifecyclePolicyText). */
  text: string;
  updatedAtMs: number;
  /** When a run last evaluated it (ECR lastEvaluatedAt); null until then. */
  lastEvaluatedAtMs: number | null;
}

/** The last lifecycle policy preview of a repository (ECR StartLifecyclePolicyPreview). */
export interface LifecyclePreview {
  status: LifecyclePreviewStatus;
  /** The policy previewed. */
  policyText: string;
  /** Any JSON value (stored as JSON text); null until there is one. */
  result: unknown;
  startedAtMs: number;
  finishedAtMs: number | null;
}

export interface LifecycleRepository {
  repositoryId: number;
  accountId: string;
  name: string;
}

/** A manifest of a repository as lifecycle rules judge it. */
export interface LifecycleImageRecord {
  digest: Digest;
  /** Its tags, in byte order. */
  tags: string[];
  pushedAtMs: number;
  /** The stored lastRecordedPullTime (the registry may hold a newer one in memory: Registry.lastPulledAt). */
  lastPulledAtMs: number | null;
  /** Manifests it lists (an index's children), in digest order. */
  children: Digest[];
  /** The manifest its `subject` names, if any (whether or not the repository holds it). */
  subject: Digest | null;
  /** The blobs it references directly (config and layers), summed; 0 for an index. */
  sizeBytes: number;
}

/**
 * Lifecycle policies and previews, one of each per repository; both go with their repository.
 * The evaluation itself lives in src/lifecycle/.
 */
export interface LifecycleStore {
  /** Resolves undefined when the repository has none (or does not exist). */
  getPolicy(repositoryId: number): Promise<LifecyclePolicyRecord | undefined>;
  /** Creates or replaces (keeping lastEvaluatedAtMs). Resolves false, storing nothing, when the repository does not exist. */
  putPolicy(repositoryId: number, text: string, nowMs: number): Promise<boolean>;
  /** Records a run's evaluation time. Resolves false when the repository has no policy. */
  markEvaluated(repositoryId: number, atMs: number): Promise<boolean>;
  /** Resolves false when there was none. */
  deletePolicy(repositoryId: number): Promise<boolean>;
  /** Every repository with a policy, by id. */
  listRepositoriesWithPolicy(): Promise<LifecycleRepository[]>;
  /** Creates or replaces the repository's preview. Resolves false when the repository does not exist. */
  putPreview(repositoryId: number, preview: LifecyclePreview): Promise<boolean>;
  /** Resolves undefined when none was started. */
  getPreview(repositoryId: number): Promise<LifecyclePreview | undefined>;
  /** Every manifest of the repository, in digest order. */
  listLifecycleImages(repositoryId: number): Promise<LifecycleImageRecord[]>;
}
