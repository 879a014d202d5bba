import { LRUCache } from 'lru-cache';
import { RegistryError } from '../errors/catalogue.ts';
import { digestOf, isDigest, looksLikeDigest, parseDigest, type Digest } from '../digest/digest.ts';
import type { LifecycleImageRecord } from '../store/meta/lifecycle-store.ts';
import type { ImageId, ImageRecord, ManifestRecord, ManifestSummary, MetaStore, Page, Repository, TagStatus } from '../store/meta/meta-store.ts';
import type { RegistryContext } from './context.ts';
import { parseManifest, type Descriptor } from './manifest.ts';
import { assertRepositoryName, assertTag, isValidTag, type RepoRef } from './names.ts';
import { imageCached, imageDeleted, imagePushed, imageReplicated, lifecycleImageExpired, tagMoved, type BuiltEvent } from '../events/envelope.ts';
import { eventContext, recordEvents } from './event-log.ts';
import { PullRecorder } from './pull-recorder.ts';
import type { Repositories } from './repositories.ts';
import { isTagImmutable } from './tag-mutability.ts';

/**
 * Spec ("Pulling manifests", "Deleting Manifests"): a manifest that is not found is 404
 * MANIFEST_UNKNOWN. Nothing can be stored under a reference that is neither a valid tag nor a
 * digest Berth stores, so a read or delete there finds nothing, whatever is wrong with it; only a
 * push, which would store under it, is refused as TagInvalid or DigestInvalid.
 */
function assertStorable(repo: RepoRef, reference: string): void {
  if (isValidTag(reference) || isDigest(reference)) return;
  throw new RegistryError('ManifestUnknown', { reference }, {
    message:
      `Nothing is stored under ${JSON.stringify(reference)} in repository ${repo.name}: it is neither a valid tag ` +
      '(up to 128 letters, digits, _ . and -, not starting with . or -) nor a valid digest (sha256: and 64 lowercase hex digits, or sha512: and 128).',
  });
}

export interface PutManifestOptions {
  /**
   * The push is a replication from this account and region (docs/replication.md): it records an
   * `ECR Replication Action` rather than a PUSH, so that it is not replicated again.
   */
  replicatedFrom?: { account: string; region: string } | undefined;
  /**
   * The image came from the upstream of a pull-through cache rule (docs/pull-through-cache.md):
   * an `ECR Pull Through Cache Action` is recorded besides the PUSH.
   */
  cachedFrom?: { ecrRepositoryPrefix: string; upstreamRegistryUrl: string } | undefined;
}

export interface PutManifestResult {
  digest: Digest;
  subject: Digest | null;
  created: boolean;
}

/**
 * Images: manifests, tags and referrers, the pulls recorded against them, and the image
 * listings of the ECR API. One part of the Registry (registry.ts), which is the door every
 * caller uses.
 */
export class Images {
  private readonly ctx: RegistryContext;
  private readonly repositories: Repositories;
  /** Keyed by `<repositoryId>@<digest>`. */
  private readonly cache: LRUCache<string, ManifestRecord>;
  private readonly pulls: PullRecorder;

  constructor(ctx: RegistryContext, repositories: Repositories) {
    this.ctx = ctx;
    this.repositories = repositories;
    this.cache = new LRUCache({
      maxSize: Math.max(1, ctx.options.manifestCacheBytes),
      sizeCalculation: (m) => m.sizeBytes + 256,
      ttl: Math.max(1, ctx.options.cacheTtlMs),
    });
    this.pulls = new PullRecorder({ meta: ctx.meta, log: ctx.log, flushIntervalMs: ctx.options.pullFlushIntervalMs ?? 5000, now: ctx.now });
  }

  // --- manifests and tags ---------------------------------------------------------------------

  async getManifest(repo: RepoRef, reference: string): Promise<ManifestRecord> {
    const repository = await this.repositories.get(repo);
    assertStorable(repo, reference);
    const digest = isDigest(reference) ? reference : await this.ctx.meta.findTagDigest(repository.id, reference);
    const manifest = digest === undefined ? undefined : await this.findManifest(repository.id, digest);
    if (!manifest) {
      throw new RegistryError('ManifestUnknown', { reference }, { message: `Manifest ${reference} is not in repository ${repo.name}.` });
    }
    return manifest;
  }

  private async findManifest(repositoryId: number, digest: Digest): Promise<ManifestRecord | undefined> {
    const key = `${repositoryId}@${digest}`;
    const cached = this.cache.get(key);
    if (cached) return cached;
    const manifest = await this.ctx.meta.getManifest(repositoryId, digest);
    if (manifest) this.cache.set(key, manifest);
    return manifest;
  }

  /**
   * Stores a manifest under its digest, computed over the exact bytes received, and points the
   * tag at it when the reference is a tag. Every blob and child manifest it references must
   * already be in the repository (spec: "Pushing Manifests").
   */
  async putManifest(repo: RepoRef, reference: string, contentType: string | undefined, payload: Uint8Array, options: PutManifestOptions = {}): Promise<PutManifestResult> {
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
    if (payload.byteLength > this.ctx.options.manifestMaxBytes) {
      throw new RegistryError('ManifestTooLarge', { sizeBytes: payload.byteLength }, {
        message: `The manifest is ${payload.byteLength} bytes; the limit is ${this.ctx.options.manifestMaxBytes}.`,
      });
    }
    const parsed = parseManifest(payload, contentType);
    const repository = await this.repositories.forPush(repo);
    await this.checkReferences(repository, parsed.blobs, parsed.manifests);
    const now = this.ctx.now();
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
    let arrived = false;
    await this.ctx.meta.transaction(async (tx) => {
      const previous = tag === undefined ? undefined : await this.checkTagMutability(tx, repository, tag);
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
      // Events for what changed: a new manifest, or a tag that now points at it. A push of what
      // is already there changes nothing and records nothing.
      if (!created && previous === digest) return;
      const context = { ...eventContext(repo.account, this.ctx.region, now), repositoryName: repository.name };
      const isIndex = parsed.manifests.length > 0 || parsed.blobs.length === 0;
      const from = options.replicatedFrom;
      const events: BuiltEvent[] = [
        from
          ? imageReplicated({ ...context, imageDigest: digest, imageTag: tag, sourceAccount: from.account, sourceRegion: from.region })
          : imagePushed({
              ...context,
              imageDigest: digest,
              imageTag: tag,
              manifestMediaType: parsed.mediaType,
              artifactMediaType: (isIndex ? parsed.artifactType : parsed.blobs[0]?.mediaType) ?? undefined,
            }),
      ];
      const cached = options.cachedFrom;
      if (cached && !from) events.push(imageCached({ ...context, imageDigest: digest, imageTag: tag, ...cached }));
      if (tag !== undefined && previous !== undefined && previous !== digest) events.push(tagMoved({ ...context, imageTag: tag, imageDigest: digest, previousImageDigest: previous }));
      await recordEvents(tx, now, events);
      arrived = true;
    });
    // A hint for this node's log consumers (scan on push, replication): the event is durable either way.
    if (arrived) this.ctx.options.onImageArrived?.();
    return { digest, subject: record.subjectDigest, created };
  }

  /**
   * ECR's tag immutability, for both planes: a push to an immutable tag that already exists is
   * refused, even of the image it already points at (as ECR does); delete the tag first.
   * Resolves the digest the tag points at now (undefined when it is new), for the push's events.
   */
  private async checkTagMutability(tx: MetaStore, repository: Repository, tag: string): Promise<Digest | undefined> {
    const current = await tx.findTagDigest(repository.id, tag);
    if (current === undefined) return undefined;
    const settings = await tx.getRepositorySettings(repository.id);
    if (!settings || !isTagImmutable(settings, tag)) return current;
    const why = settings.imageTagMutability === 'IMMUTABLE' ? 'the repository is immutable' : `the tag is immutable (imageTagMutability ${settings.imageTagMutability})`;
    throw new RegistryError('TagImmutable', { tag, digest: current }, {
      message: `The image tag '${tag}' already exists in the '${repository.name}' repository and cannot be overwritten because ${why}.`,
    });
  }

  private async checkReferences(repository: Repository, blobs: Descriptor[], manifests: Descriptor[]): Promise<void> {
    if (blobs.length > 0) {
      const found = await this.ctx.meta.findLinkedBlobs(repository.id, [...new Set(blobs.map((b) => b.digest))]);
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
      const found = await this.ctx.meta.findExistingManifests(repository.id, [...new Set(manifests.map((m) => m.digest))]);
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
   * Each deletion is an `ECR Image Action` DELETE event, or, for a lifecycle policy's run
   * (`expiredBy`), a `Berth Lifecycle Policy Action` EXPIRE event instead, as ECR reports
   * expiries apart from deletions.
   */
  async deleteManifest(repo: RepoRef, reference: string, options: { expiredBy?: { rulePriority: number } } = {}): Promise<void> {
    const repository = await this.repositories.get(repo);
    const unknown = () => new RegistryError('ManifestUnknown', { reference }, { message: `Manifest ${reference} is not in repository ${repo.name}.` });
    assertStorable(repo, reference);
    const now = this.ctx.now();
    const context = { ...eventContext(repo.account, this.ctx.region, now), repositoryName: repository.name };
    if (!isDigest(reference)) {
      await this.ctx.meta.transaction(async (tx) => {
        const digest = await tx.findTagDigest(repository.id, reference);
        if (digest === undefined || !(await tx.deleteTag(repository.id, reference))) throw unknown();
        await recordEvents(tx, now, [
          options.expiredBy
            ? lifecycleImageExpired({ ...context, imageDigest: digest, imageTags: [reference], rulePriority: options.expiredBy.rulePriority })
            : imageDeleted({ ...context, imageDigest: digest, imageTag: reference }),
        ]);
      });
      this.ctx.garbageMade();
      return;
    }
    await this.ctx.meta.transaction(async (tx) => {
      const parents = await tx.findParentManifests(repository.id, reference);
      if (parents.length > 0) {
        throw new RegistryError('ManifestReferenced', { parents }, {
          message: `Manifest ${reference} is listed by index ${parents[0]}${parents.length > 1 ? ` and ${parents.length - 1} more` : ''}; delete the index first.`,
        });
      }
      const image = (await tx.getImages(repository.id, [reference])).get(reference);
      if (!image || !(await tx.deleteManifest(repository.id, reference, now))) throw unknown();
      await recordEvents(tx, now, [
        options.expiredBy
          ? lifecycleImageExpired({ ...context, imageDigest: reference, imageTags: image.tags, rulePriority: options.expiredBy.rulePriority })
          : imageDeleted({ ...context, imageDigest: reference, manifestMediaType: image.mediaType }),
      ]);
    });
    this.cache.delete(`${repository.id}@${reference}`);
    this.ctx.garbageMade();
  }

  async listTags(repo: RepoRef, page: Page): Promise<{ names: string[]; more: boolean }> {
    const repository = await this.repositories.get(repo);
    const names = await this.ctx.meta.listTags(repository.id, { after: page.after, limit: page.limit + 1 });
    const more = names.length > page.limit;
    return { names: more ? names.slice(0, page.limit) : names, more };
  }

  /** Referrers of a subject (spec: "Listing Referrers"); the subject itself need not exist. */
  async listReferrers(repo: RepoRef, subject: Digest, artifactType?: string): Promise<ManifestSummary[]> {
    parseDigest(subject);
    const repository = await this.repositories.get(repo);
    return this.ctx.meta.listReferrers(repository.id, subject, artifactType);
  }

  // --- pulls --------------------------------------------------------------------------------

  /** getManifest for a pull (a data-plane GET, BatchGetImage): the pull is recorded as lastRecordedPullTime. */
  async pullManifest(repo: RepoRef, reference: string): Promise<ManifestRecord> {
    const manifest = await this.getManifest(repo, reference);
    this.pulls.record((await this.repositories.get(repo)).id, manifest.digest);
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


  /** Writes what is still held in memory (recorded pulls). */
  async close(): Promise<void> {
    await this.pulls.close();
  }

  // --- what the ECR image operations ask -------------------------------------------------------

  /** The digest a tag points at, or undefined. */
  async tagDigest(repositoryId: number, tag: string): Promise<Digest | undefined> {
    return this.ctx.meta.findTagDigest(repositoryId, tag);
  }

  /** Whether the repository holds a manifest with this digest. */
  async hasManifest(repositoryId: number, digest: Digest): Promise<boolean> {
    return (await this.ctx.meta.findExistingManifests(repositoryId, [digest])).size > 0;
  }

  /** The images among `digests` the repository holds, with their tags and pull times. */
  async getImages(repositoryId: number, digests: Digest[]): Promise<Map<Digest, ImageRecord>> {
    return this.ctx.meta.getImages(repositoryId, digests);
  }

  /** ListImages' entries: one per tag, and one per untagged image. */
  async listImageIds(repositoryId: number, query: { tagStatus: TagStatus; after?: ImageId | undefined; limit: number }): Promise<ImageId[]> {
    return this.ctx.meta.listImageIds(repositoryId, query);
  }

  /** DescribeImages' entries, by digest. */
  async listImages(repositoryId: number, query: { tagStatus: TagStatus; afterDigest?: Digest | undefined; limit: number }): Promise<ImageRecord[]> {
    return this.ctx.meta.listImages(repositoryId, query);
  }

  /** Indexes of the repository that list the manifest. */
  async parents(repositoryId: number, digest: Digest): Promise<Digest[]> {
    return this.ctx.meta.findParentManifests(repositoryId, digest);
  }

  /** Every image of the repository as lifecycle rules see it. */
  async lifecycleImages(repositoryId: number): Promise<LifecycleImageRecord[]> {
    return this.ctx.meta.lifecycle.listLifecycleImages(repositoryId);
  }
}
