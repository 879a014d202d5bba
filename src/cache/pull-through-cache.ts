import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import type { Readable } from 'node:stream';
import { RegistryError, isRegistryError } from '../errors/catalogue.ts';
import { isDigest, type Digest } from '../digest/digest.ts';
import type { LocalFamily } from '../http/metrics.ts';
import type { Logger } from '../log/logger.ts';
import { OciError, type OciClient } from '../oci-client/client.ts';
import type { Caller } from '../registry/access.ts';
import { parseManifest } from '../registry/manifest.ts';
import { isTagImmutable } from '../registry/tag-mutability.ts';
import type { RepoRef } from '../registry/names.ts';
import type { Registry } from '../registry/registry.ts';
import type { CacheRule } from '../store/meta/cache-store.ts';
import type { Repository } from '../store/meta/meta-store.ts';
import { BlobFetches, type BlobSource } from './fetches.ts';
import { ruleFor, upstreamRepository } from './rules.ts';
import { CredentialsError, Upstreams, isCredentialFailure, type SecretReader } from './upstreams.ts';

export interface PullThroughCacheOptions {
  registry: Registry;
  secrets: SecretReader;
  log: Logger;
  /** How long a cached tag is served before the upstream is asked again whether it moved (cache.refreshSeconds). */
  refreshMs: number;
  /** Inactivity timeout of a request to an upstream. */
  timeoutMs: number;
  /** Lease of a blob fetch, across the cluster. */
  fetchLeaseMs: number;
  /** Extra CA certificates (PEM) for HTTPS upstreams. */
  ca?: string | undefined;
  /** How long this node trusts what it read of an account's rules (rules changed on another node apply after it). */
  rulesTtlMs?: number;
}

/** A manifest as the upstream served it, to send to the client while the image is brought in. */
export interface UpstreamManifest {
  digest: Digest;
  mediaType: string;
  bytes: Buffer;
}

/** Counters for the metrics endpoint. */
export interface CacheStats {
  /** Pulls answered from the cache because the upstream failed (by reason: unavailable, rate-limited, refused, not-found). */
  staleServes: Map<string, number>;
  upstreamBytes: number;
  upstreamManifests: number;
  blobsCached: number;
  imagesCached: number;
}

interface Match {
  rule: CacheRule;
  /** The repository name at the upstream. */
  upstreamName: string;
}

/**
 * The pull-through cache (docs/pull-through-cache.md): a pull from a repository that a rule
 * covers is answered from the upstream registry when the registry does not hold what is asked,
 * and what the upstream gives is brought in as an ordinary image (a PUSH, then scanning,
 * replication, lifecycle and GC as for any other).
 *
 * - A manifest asked by digest comes from the upstream once; by tag, the cache asks the upstream
 *   whether the tag moved at most every `refreshMs`, and serves the cached image when the
 *   upstream fails, rate-limits or no longer has the tag.
 * - The manifest is sent to the client at once; the image is brought in behind it (its blobs,
 *   and an index's platform manifests), and stored once all of it is there, so that nothing half
 *   cached is ever visible.
 * - A blob is streamed to the clients that ask for it while it is written and verified (see
 *   fetches.ts), fetched once however many clients or nodes ask.
 * - The first pull of an image needs ecr:BatchImportUpstreamImage (and ecr:CreateRepository when
 *   it creates the repository), besides pull permissions; later pulls only pull permissions.
 */
export class PullThroughCache {
  private readonly options: PullThroughCacheOptions;
  private readonly registry: Registry;
  private readonly log: Logger;
  readonly upstreams: Upstreams;
  private readonly fetches: BlobFetches;
  private readonly rules = new Map<string, { rules: Promise<CacheRule[]>; atMs: number }>();
  private readonly imports = new Map<string, Promise<void>>();
  /** Manifest requests to upstreams in flight, shared by concurrent pulls. */
  private readonly inFlight = new Map<string, Promise<unknown>>();
  readonly stats: CacheStats = { staleServes: new Map(), upstreamBytes: 0, upstreamManifests: 0, blobsCached: 0, imagesCached: 0 };

  constructor(options: PullThroughCacheOptions) {
    this.options = options;
    this.registry = options.registry;
    this.log = options.log.child({ task: 'pull-through-cache' });
    this.upstreams = new Upstreams({ secrets: options.secrets, ca: options.ca, timeoutMs: options.timeoutMs, userAgent: 'berth-pull-through-cache' });
    this.fetches = new BlobFetches({
      registry: options.registry,
      log: this.log,
      owner: `${hostname()}-${process.pid}-${randomUUID().slice(0, 8)}`,
      leaseMs: options.fetchLeaseMs,
      stallMs: options.timeoutMs,
      onBytes: (n) => (this.stats.upstreamBytes += n),
    });
  }

  close(): void {
    this.upstreams.close();
  }

  /** This node's counters, for the metrics endpoint (docs/pull-through-cache.md#monitoring). */
  metrics(): LocalFamily[] {
    const st = this.stats;
    return [
      { name: 'berth_pull_through_cache_upstream_bytes_total', type: 'counter', help: 'Bytes of blobs this node read from pull-through cache upstreams.', samples: [[{}, st.upstreamBytes]] },
      { name: 'berth_pull_through_cache_upstream_manifest_requests_total', type: 'counter', help: 'Manifest requests (checks of a tag, and fetches) this node made to pull-through cache upstreams.', samples: [[{}, st.upstreamManifests]] },
      { name: 'berth_pull_through_cache_blob_fetches_total', type: 'counter', help: 'Blobs this node began to fetch from pull-through cache upstreams.', samples: [[{}, st.blobsCached]] },
      { name: 'berth_pull_through_cache_images_cached_total', type: 'counter', help: 'Images this node brought in from pull-through cache upstreams and stored.', samples: [[{}, st.imagesCached]] },
      {
        name: 'berth_pull_through_cache_stale_serves_total',
        type: 'counter',
        help: 'Pulls of a cached tag answered from the cache because its upstream failed, by reason: unavailable, rate-limited, refused or not-found.',
        samples: ['unavailable', 'rate-limited', 'refused', 'not-found'].map((reason) => [{ reason }, st.staleServes.get(reason) ?? 0]),
      },
    ];
  }

  /** Forgets what this node read of the account's rules (after a change through this node). */
  rulesChanged(accountId: string): void {
    this.rules.delete(accountId);
  }

  private async rulesOf(accountId: string): Promise<CacheRule[]> {
    const now = Date.now();
    const found = this.rules.get(accountId);
    if (found && now - found.atMs < (this.options.rulesTtlMs ?? 5000)) return found.rules;
    const rules = this.registry.pullThroughCache.listRules(accountId);
    this.rules.set(accountId, { rules, atMs: now });
    rules.catch(() => this.rules.delete(accountId));
    return rules;
  }

  /** The rule covering the repository and the upstream repository it maps to, or undefined. */
  async match(repo: RepoRef): Promise<Match | undefined> {
    const rules = await this.rulesOf(repo.account);
    if (rules.length === 0) return undefined;
    const found = ruleFor(rules, repo.name);
    if (!found) return undefined;
    return { rule: found.rule, upstreamName: upstreamRepository(found.rule, found.rest) };
  }

  // --- manifests --------------------------------------------------------------------------------

  /**
   * For a GET or HEAD of a manifest (the caller may pull: checked). Undefined when the registry
   * answers as usual: no rule covers the repository, or what it holds is current (or all there
   * is while the upstream fails). Otherwise the upstream's manifest, which is being brought in.
   */
  async manifest(repo: RepoRef, reference: string, caller: Caller): Promise<UpstreamManifest | undefined> {
    const match = await this.match(repo);
    if (!match) return undefined;
    const repository = await this.registry.findRepository(repo);
    if (isDigest(reference)) {
      if (repository && (await this.registry.hasManifest(repository.id, reference))) return undefined;
      await this.authorizeImport(caller, repo, !repository);
      const manifest = await this.upstreamManifest(match, reference);
      if (!manifest) throw new RegistryError('ManifestUnknown', { reference }, { message: `Manifest ${reference} is neither cached in repository ${repo.name} nor held by its upstream (${match.rule.upstreamRegistryUrl}/${match.upstreamName}).` });
      this.bringIn(repo, match, manifest, undefined);
      return manifest;
    }
    const tag = reference;
    const cached = repository ? await this.registry.tagDigest(repository.id, tag) : undefined;
    if (repository && cached !== undefined) {
      const check = await this.registry.pullThroughCache.tagCheck(repository.id, tag);
      if (check && Date.now() - check.checkedAtMs < this.options.refreshMs) return undefined;
    }
    // Nothing cached: only a caller who may bring the image in learns what the upstream holds.
    if (cached === undefined) await this.authorizeImport(caller, repo, !repository);
    let head: { digest: string } | undefined;
    try {
      head = await this.shared(`head ${this.keyOf(match)}:${tag}`, () => this.ask(match, `${repo.name}:${tag}`, async (client) => {
        const answer = await client.headManifest(match.upstreamName, tag);
        this.stats.upstreamManifests++;
        return answer;
      }));
    } catch (err) {
      if (cached !== undefined) return this.serveStale(repo, tag, match, err);
      throw err;
    }
    if (!head) {
      if (cached !== undefined) return this.serveStale(repo, tag, match, undefined);
      throw new RegistryError('ManifestUnknown', { reference }, { message: `Tag ${tag} is neither cached in repository ${repo.name} nor held by its upstream (${match.rule.upstreamRegistryUrl}/${match.upstreamName}).` });
    }
    if (repository && head.digest === cached) {
      await this.registry.pullThroughCache.recordTagCheck(repository.id, tag, head.digest, Date.now());
      return undefined;
    }
    if (repository && cached !== undefined && isTagImmutable(await this.registry.repositorySettings(repository), tag)) {
      // The tag cannot move here: keep serving what it names, and ask again only after the next interval.
      await this.registry.pullThroughCache.recordTagCheck(repository.id, tag, head.digest, Date.now());
      this.log.info({ account: repo.account, repository: repo.name, tag, cached, upstream: head.digest }, 'the tag moved upstream but is immutable here; serving the cached image');
      return undefined;
    }
    // Someone who may only pull gets what is cached; the new content waits for someone who may
    // bring it in. (With nothing cached, the caller was asked before the upstream.)
    if (cached !== undefined && !(await this.registry.authorizer.isAllowed(caller, 'ecr:BatchImportUpstreamImage', repo))) return undefined;
    let got: UpstreamManifest | undefined;
    try {
      // By the digest the upstream just reported, so that what is verified is what the tag names.
      got = await this.upstreamManifest(match, isDigest(head.digest) ? head.digest : tag);
    } catch (err) {
      if (cached !== undefined) return this.serveStale(repo, tag, match, err);
      throw err;
    }
    if (!got) {
      if (cached !== undefined) return this.serveStale(repo, tag, match, undefined);
      throw new RegistryError('ManifestUnknown', { reference }, { message: `Tag ${tag} vanished from the upstream (${match.rule.upstreamRegistryUrl}/${match.upstreamName}) while it was read.` });
    }
    this.bringIn(repo, match, got, tag);
    return got;
  }

  private upstreamManifest(match: Match, reference: string): Promise<UpstreamManifest | undefined> {
    return this.shared(`get ${this.keyOf(match)}:${reference}`, () => this.ask(match, `${match.upstreamName}:${reference}`, async (client) => {
      const got = await client.getManifest(match.upstreamName, reference);
      this.stats.upstreamManifests++;
      return got && { digest: got.digest as Digest, mediaType: got.mediaType, bytes: got.bytes };
    }));
  }

  /**
   * One call to the rule's upstream: a refusal of the credentials drops the client (so that the
   * secret is read again), and every failure becomes the error a client of the cache gets.
   */
  private async ask<T>(match: Match, what: string, call: (client: OciClient) => Promise<T>): Promise<T> {
    try {
      return await call(await this.upstreams.client(match.rule));
    } catch (err) {
      if (isCredentialFailure(err)) this.upstreams.forget(match.rule);
      throw this.upstreamError(match, err, what);
    }
  }

  private keyOf(match: Match): string {
    return `${match.rule.accountId}/${match.rule.ecrRepositoryPrefix}@${match.rule.updatedAtMs} ${match.upstreamName}`;
  }

  /**
   * One request to the upstream for concurrent callers asking the same thing (manifest requests
   * count against rate limits such as Docker Hub's), shared until it settles.
   */
  private shared<T>(key: string, ask: () => Promise<T>): Promise<T> {
    const found = this.inFlight.get(key) as Promise<T> | undefined;
    if (found) return found;
    const asked = ask().finally(() => this.inFlight.delete(key));
    this.inFlight.set(key, asked);
    return asked;
  }

  /** Answers with the cached image: the upstream failed (`err`, as upstreamError gives it) or no longer has the tag (undefined). */
  private serveStale(repo: RepoRef, tag: string, match: Match, err: unknown): undefined {
    const reason =
      err === undefined ? 'not-found' : isRegistryError(err, 'UpstreamRateLimited') ? 'rate-limited' : isRegistryError(err, 'UpstreamRejected') ? 'refused' : 'unavailable';
    this.stats.staleServes.set(reason, (this.stats.staleServes.get(reason) ?? 0) + 1);
    this.log.warn(
      { account: repo.account, repository: repo.name, tag, upstream: match.rule.upstreamRegistryUrl, reason, err: err === undefined ? undefined : { message: (err as Error).message } },
      err === undefined ? 'the upstream no longer has the tag; serving the cached image' : 'the upstream failed; serving the cached image',
    );
    return undefined;
  }

  // --- bringing an image in ------------------------------------------------------------------------

  /** Brings the image in behind the client's pull, once per image and tag in this process. */
  private bringIn(repo: RepoRef, match: Match, manifest: UpstreamManifest, tag: string | undefined): void {
    const key = `${repo.account}/${repo.name}@${manifest.digest}#${tag ?? ''}`;
    if (this.imports.has(key)) return;
    const work = this.importImage(repo, match, manifest, tag, 0)
      .then(() => {
        this.stats.imagesCached++;
        this.log.info({ account: repo.account, repository: repo.name, digest: manifest.digest, tag, upstream: match.rule.upstreamRegistryUrl }, 'image cached from upstream');
      })
      .catch((err: unknown) => {
        const known = isRegistryError(err) || err instanceof OciError || err instanceof CredentialsError;
        this.log[known ? 'warn' : 'error']({ account: repo.account, repository: repo.name, digest: manifest.digest, tag, err: known ? { message: (err as Error).message } : err }, 'could not cache an image from upstream');
      })
      .finally(() => this.imports.delete(key));
    this.imports.set(key, work);
  }

  private async importImage(repo: RepoRef, match: Match, manifest: UpstreamManifest, tag: string | undefined, depth: number): Promise<void> {
    const { repository } = await this.registry.repositoryForTemplateUse(repo, 'PULL_THROUGH_CACHE');
    const parsed = parseManifest(manifest.bytes, manifest.mediaType);
    if (depth < 2) {
      for (const child of parsed.manifests) {
        if (await this.registry.hasManifest(repository.id, child.digest)) continue;
        const got = await this.upstreamManifest(match, child.digest);
        if (!got) throw new RegistryError('ManifestUnknown', { reference: child.digest }, { message: `The upstream's index lists ${child.digest}, which the upstream does not hold.` });
        await this.importImage(repo, match, got, undefined, depth + 1);
      }
    }
    const digests = [...new Set(parsed.blobs.map((b) => b.digest))];
    const linked = await this.registry.findLinkedBlobs(repository.id, digests);
    for (const digest of digests) {
      if (linked.has(digest)) continue;
      await this.blobInto(repo, repository, match, digest).done;
    }
    await this.registry.putManifest(repo, tag ?? manifest.digest, manifest.mediaType, manifest.bytes, {
      cachedFrom: { ecrRepositoryPrefix: match.rule.ecrRepositoryPrefix, upstreamRegistryUrl: match.rule.upstreamRegistryUrl },
    });
    if (tag !== undefined) await this.registry.pullThroughCache.recordTagCheck(repository.id, tag, manifest.digest, Date.now());
  }

  private blobInto(repo: RepoRef, repository: Repository, match: Match, digest: Digest) {
    return this.fetches.fetch(repo, repository.id, digest, this.source(match, digest));
  }

  private source(match: Match, digest: Digest): BlobSource {
    const what = `${match.upstreamName}@${digest}`;
    return {
      has: () => this.ask(match, what, (client) => client.hasBlob(match.upstreamName, digest)),
      open: () =>
        this.ask(match, what, async (client) => {
          const opened = await client.openBlob(match.upstreamName, digest);
          if (opened) this.stats.blobsCached++;
          return opened;
        }),
    };
  }

  // --- blobs ---------------------------------------------------------------------------------------

  /**
   * For a GET or HEAD of a blob the repository does not hold (the caller may pull: checked).
   * Undefined when no rule covers the repository (the registry's BlobUnknown stands). Otherwise
   * either a stream of the upstream's bytes (this request joined the fetch from its start), or
   * 'stored': the blob is now in the repository; read it as usual.
   */
  async blob(repo: RepoRef, digest: Digest, caller: Caller): Promise<{ kind: 'stream'; size: number | undefined; stream: Readable } | { kind: 'stored' } | undefined> {
    const match = await this.match(repo);
    if (!match) return undefined;
    let repository = await this.registry.findRepository(repo);
    await this.authorizeImport(caller, repo, !repository);
    repository ??= (await this.registry.repositoryForTemplateUse(repo, 'PULL_THROUGH_CACHE')).repository;
    const current = this.fetches.current(digest);
    // Joining a fetch made for another upstream repository: only if ours holds the blob too.
    if (current && !(await this.source(match, digest).has())) {
      throw new RegistryError('BlobUnknown', { digest }, { message: `Blob ${digest} is neither cached in repository ${repo.name} nor held by its upstream.` });
    }
    const fetch = current ?? this.blobInto(repo, repository, match, digest);
    const started = await fetch.started;
    if (started.kind === 'streaming') {
      const stream = fetch.subscribe();
      if (stream) return { kind: 'stream', size: started.size, stream };
    }
    try {
      await fetch.done;
    } catch (err) {
      throw this.upstreamError(match, err, `${match.upstreamName}@${digest}`);
    }
    if (current && !(await this.registry.linkBlob(repository.id, digest))) {
      throw new RegistryError('BlobUnknown', { digest }, { message: `Blob ${digest} could not be cached in repository ${repo.name}; pull again.` });
    }
    return { kind: 'stored' };
  }

  /**
   * ValidatePullThroughCacheRule: whether the rule's credentials can be read and the upstream
   * accepts them (GET /v2/ with them, answering its challenge); `failure` says what is wrong.
   */
  async validate(rule: CacheRule): Promise<{ isValid: boolean; failure?: string }> {
    let client: OciClient;
    try {
      client = await this.upstreams.fresh(rule);
    } catch (err) {
      if (err instanceof CredentialsError) return { isValid: false, failure: err.message };
      throw err;
    }
    try {
      await client.ping();
      return { isValid: true };
    } catch (err) {
      if (!(err instanceof OciError)) throw err;
      if (err.status === 401 || err.status === 403) {
        return { isValid: false, failure: `The upstream registry ${rule.upstreamRegistryUrl} refused the credentials${rule.credentialArn ? ` in ${rule.credentialArn}` : ' (none: the rule pulls anonymously)'}: ${err.message}` };
      }
      return { isValid: false, failure: `The upstream registry ${rule.upstreamRegistryUrl} could not be reached: ${err.message}` };
    } finally {
      client.close();
    }
  }

  // --- permissions and failures ------------------------------------------------------------------

  private async authorizeImport(caller: Caller, repo: RepoRef, creating: boolean): Promise<void> {
    await this.registry.authorizer.authorize(caller, 'ecr:BatchImportUpstreamImage', repo);
    if (creating) await this.registry.authorizer.authorize(caller, 'ecr:CreateRepository', repo);
  }

  /**
   * The client-facing error for an upstream failure when nothing cached can answer instead. Bytes
   * that do not match their digest (or their announced size) when a blob fetch commits them are
   * the upstream's fault, not the client's (whose request carried no bytes).
   */
  private upstreamError(match: Match, err: unknown, what: string): Error {
    if (isRegistryError(err, 'DigestInvalid') || isRegistryError(err, 'SizeInvalid')) {
      return new RegistryError('UpstreamRejected', { rule: match.rule.ecrRepositoryPrefix }, {
        message: `Cannot pull ${what}: the upstream ${match.rule.upstreamRegistryUrl} of pull-through cache rule ${match.rule.ecrRepositoryPrefix} served bytes that do not match the blob's digest or size; nothing was cached.`,
      });
    }
    if (isRegistryError(err)) return err;
    const upstream = `the upstream ${match.rule.upstreamRegistryUrl} of pull-through cache rule ${match.rule.ecrRepositoryPrefix}`;
    if (err instanceof CredentialsError) {
      return new RegistryError('UpstreamRejected', { rule: match.rule.ecrRepositoryPrefix }, { message: `Cannot pull ${what} from ${upstream}: ${err.message}` });
    }
    if (err instanceof OciError) {
      if (err.status === 429) {
        const after = err.retryAfterMs === undefined ? '' : ` (retry after ${Math.ceil(err.retryAfterMs / 1000)} s)`;
        // retryAfterSeconds: the OCI plane passes it on as the answer's Retry-After.
        const detail = { rule: match.rule.ecrRepositoryPrefix, ...(err.retryAfterMs === undefined ? {} : { retryAfterSeconds: Math.ceil(err.retryAfterMs / 1000) }) };
        return new RegistryError('UpstreamRateLimited', detail, { message: `Cannot pull ${what}: ${upstream} is rate-limiting${after}, and it is not cached yet.` });
      }
      if (err.status === 401 || err.status === 403) {
        return new RegistryError('UpstreamRejected', { rule: match.rule.ecrRepositoryPrefix }, {
          message: `Cannot pull ${what}: ${upstream} refused the rule's credentials (${err.message}). Check the secret ${match.rule.credentialArn ?? '(none: the rule pulls anonymously)'}; aws ecr validate-pull-through-cache-rule says what is wrong.`,
        });
      }
      if (err.code === 'DIGEST_INVALID' || err.code === 'SIZE_INVALID') {
        return new RegistryError('UpstreamRejected', { rule: match.rule.ecrRepositoryPrefix }, { message: `Cannot pull ${what}: ${upstream} served content that cannot be cached (${err.message}).` });
      }
    }
    return new RegistryError('UpstreamUnavailable', { rule: match.rule.ecrRepositoryPrefix }, {
      message: `Cannot pull ${what}: ${upstream} did not answer (${(err as Error).message ?? String(err)}), and it is not cached yet.`,
    });
  }
}
