import type { Readable } from 'node:stream';
import type { Digest } from '../digest/digest.ts';
import { isRegistryError } from '../errors/catalogue.ts';
import type { RepoRef } from '../registry/names.ts';
import type { Registry } from '../registry/registry.ts';
import type { RepositorySettings } from '../store/meta/meta-store.ts';

/**
 * Why a replication failed, as DescribeImageReplicationStatus reports it in `failureCode` when
 * retrying cannot help (docs/replication.md lists them). Failures that may pass (the destination
 * is down, overloaded or timing out) are retried and never get a code.
 */
export type FailureCode =
  | 'TAG_IMMUTABLE_CONFLICT'
  | 'REPLICATE_IMAGE_DENIED'
  | 'CREATE_REPOSITORY_DENIED'
  | 'AUTHENTICATION_FAILED'
  | 'REPOSITORY_NOT_FOUND'
  | 'UNKNOWN_DESTINATION'
  | 'DESTINATION_REJECTED';

/** A failure of one replication attempt: retryable, or permanent with its code. */
export class ReplicationFailure extends Error {
  override name = 'ReplicationFailure';
  readonly failureCode: FailureCode | undefined;
  readonly retryable: boolean;

  constructor(message: string, options: { failureCode?: FailureCode; retryable: boolean; cause?: unknown }) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.failureCode = options.failureCode;
    this.retryable = options.retryable;
  }
}

/** A repository's settings that a peer with `copySettings` also gets. */
export interface CopiedSettings {
  repositoryPolicy?: string | null;
  lifecyclePolicy?: string | null;
  tagMutability?: Pick<RepositorySettings, 'imageTagMutability' | 'imageTagMutabilityExclusionFilters'>;
}

/** Where one replication rule's destination puts images: another region's registry, or another account here. */
export interface Destination {
  /** For logs and errors: the region and registry. */
  readonly label: string;
  /** The repository name in the destination for a source repository. */
  repositoryName(source: string): string;
  /** Makes ready to write into the repository (checks permission, creates it when missing). */
  prepare(repository: string): Promise<void>;
  /** The digest `reference` (a tag or digest) names in the destination, or undefined when absent. */
  manifestDigest(repository: string, reference: string, signal?: AbortSignal): Promise<string | undefined>;
  /**
   * Makes the blob present in the repository: already there, mounted or linked from another
   * repository of the destination, or uploaded from `open(offset)`.
   */
  putBlob(repository: string, blob: { digest: Digest; sizeBytes: number }, open: (offset: number) => Promise<Readable>, signal?: AbortSignal): Promise<void>;
  putManifest(repository: string, reference: string, mediaType: string, payload: Uint8Array, signal?: AbortSignal): Promise<void>;
  /** Copies the settings (only the ones given). Optional: a destination that cannot does not offer it. */
  copySettings?(repository: string, settings: CopiedSettings): Promise<void>;
  /** Releases connections (when the node stops). */
  close?(): void;
}

/**
 * Another account of this deployment (same region): images go straight through the registry,
 * blobs are linked (the blob store is shared, so no byte is copied), and the destination's
 * registry and repository policies decide, as for ECR's cross-account replication.
 */
export class LocalDestination implements Destination {
  readonly label: string;
  private readonly registry: Registry;
  private readonly source: { account: string; region: string };
  private readonly account: string;
  private readonly allows: (action: string, repo: RepoRef) => Promise<boolean>;

  constructor(options: { registry: Registry; source: { account: string; region: string }; account: string; allows: (action: string, repo: RepoRef) => Promise<boolean> }) {
    this.registry = options.registry;
    this.source = options.source;
    this.account = options.account;
    this.allows = options.allows;
    this.label = `${options.source.region}/${options.account}`;
  }

  repositoryName(source: string): string {
    return source;
  }

  private ref(repository: string): RepoRef {
    return { account: this.account, name: repository };
  }

  async prepare(repository: string): Promise<void> {
    const ref = this.ref(repository);
    const policyHint = `the registry policy of ${this.account} must allow account ${this.source.account}`;
    if (!(await this.allows('ecr:ReplicateImage', ref))) {
      throw new ReplicationFailure(`Replication into ${repository} of account ${this.account} is not allowed: ${policyHint} ecr:ReplicateImage.`, { failureCode: 'REPLICATE_IMAGE_DENIED', retryable: false });
    }
    if (await this.registry.findRepository(ref)) return;
    if (!(await this.allows('ecr:CreateRepository', ref))) {
      throw new ReplicationFailure(`Repository ${repository} does not exist in account ${this.account} and replication may not create it: ${policyHint} ecr:CreateRepository.`, { failureCode: 'CREATE_REPOSITORY_DENIED', retryable: false });
    }
    await this.registry.repositoryForTemplateUse(ref, 'REPLICATION');
  }

  async manifestDigest(repository: string, reference: string): Promise<string | undefined> {
    const found = await this.registry.findRepository(this.ref(repository));
    if (!found) return undefined;
    if (reference.includes(':')) return (await this.registry.hasManifest(found.id, reference as Digest)) ? reference : undefined;
    return this.registry.tagDigest(found.id, reference);
  }

  async putBlob(repository: string, blob: { digest: Digest; sizeBytes: number }): Promise<void> {
    const found = await this.registry.getRepository(this.ref(repository));
    if (!(await this.registry.linkBlob(found.id, blob.digest))) {
      throw new ReplicationFailure(`Blob ${blob.digest} is no longer in the blob store (garbage collection took it); the next attempt copies the image again.`, { retryable: true });
    }
  }

  async putManifest(repository: string, reference: string, mediaType: string, payload: Uint8Array): Promise<void> {
    try {
      await this.registry.putManifest(this.ref(repository), reference, mediaType, payload, { replicatedFrom: this.source });
    } catch (err) {
      if (isRegistryError(err, 'TagImmutable')) {
        throw new ReplicationFailure(`Tag ${reference} is immutable in ${repository} of account ${this.account} and names another image there.`, { failureCode: 'TAG_IMMUTABLE_CONFLICT', retryable: false, cause: err });
      }
      throw err;
    }
  }
}
