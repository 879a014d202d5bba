import { randomUUID } from 'node:crypto';
import type { Logger } from '../log/logger.ts';
import type { Digest } from '../digest/digest.ts';
import type { BlobStore } from '../store/blob/blob-store.ts';
import type { AccountUsage, ManifestCandidate, ManifestKey, ManifestState, RepositoryUsage, TotalUsage } from '../store/meta/gc-store.ts';
import type { MetaStore } from '../store/meta/meta-store.ts';

/**
 * Online garbage collection (docs/gc.md): removes, while the registry serves pushes and pulls,
 *
 * 1. manifests nothing keeps: untagged, listed by no index of their repository, and no referrer
 *    of a manifest the repository holds; over and over within the run, since removing an index
 *    frees its children and removing a subject frees its referrers;
 * 2. blobs no manifest references (rows, repository links and bytes), and rows an earlier,
 *    interrupted collection had marked;
 * 3. bytes in the blob store that no row records (a crash between a blob's commit and its
 *    metadata, or during an earlier collection);
 * 4. abandoned upload sessions (Registry.sweepUploads), when a registry is given.
 *
 * Only what is older than `graceMs` is a candidate: manifests pushed, blobs last used (committed,
 * linked, named by a manifest pushed or left by a manifest deleted) and bytes written before
 * then. Every deletion locks its row and checks again in a transaction of its own, so a push in
 * flight either keeps what it uses or fails cleanly and is retried; see gc-store.ts.
 *
 * Idempotent and safe to interrupt at any point: the next run finishes what this one started.
 */

export interface GcDeps {
  meta: MetaStore;
  blobs: BlobStore;
  /** For the upload sweep; without it, uploads are left to the server's own sweep. */
  registry?: { sweepUploads(options?: { dryRun?: boolean }): Promise<{ sessions: number; orphans: number }> };
  log: Logger;
  now?: () => number;
}

export interface GcOptions {
  /** Only what is older than this is collected (setting `gc.graceSeconds`, default 3600 s). */
  graceMs: number;
  /** Remove nothing; report what a run would remove. */
  dryRun: boolean;
  /** Rows read per query. Default 500. */
  batchSize?: number;
  /** Blob deletions in flight at once. Default 4. */
  concurrency?: number;
  /** Leave untagged manifests alone (only blobs, bytes and uploads are collected). Default false. */
  keepUntaggedManifests?: boolean;
}

export interface GcRemovedManifest {
  accountId: string;
  repository: string;
  repositoryId: number;
  digest: Digest;
  sizeBytes: number;
}

export interface GcRemovedBlob {
  digest: Digest;
  sizeBytes: number;
}

export interface GcReport {
  runId: string;
  dryRun: boolean;
  startedAtMs: number;
  finishedAtMs: number;
  /** Candidates were pushed, last used or written before this. */
  cutoffMs: number;
  /** Manifests removed (dry run: that would be), by repository id and digest. */
  manifests: GcRemovedManifest[];
  /** Blobs removed with their rows and repository links, by digest. */
  blobs: GcRemovedBlob[];
  /** Bytes removed that no row recorded, by digest. */
  orphans: GcRemovedBlob[];
  /** Upload sessions and upload bytes swept; null without a registry. */
  uploads: { sessions: number; orphans: number } | null;
  /** Bytes freed in the blob store: blobs and orphans. */
  bytesReclaimed: number;
  /** Manifest payload bytes freed in the metadata store. */
  manifestBytesReclaimed: number;
  /** Deletions that failed (logged); the next run tries them again. */
  errors: number;
  /**
   * When the oldest unreferenced blob still within the grace period becomes collectable (null
   * when there is none, and in a dry run): the scheduled job runs again then.
   */
  nextDueAtMs: number | null;
}

/**
 * Resolves at once, or, when the pass has held the event loop for more than a few milliseconds
 * since it last gave it back, after letting pending I/O and timers run. On SQLite every query
 * completes synchronously and resolves as a microtask, so a collection that only awaits the
 * store would hold the server's requests until it ends.
 */
function pacer(budgetMs = 4): () => Promise<void> {
  let since = performance.now();
  return async () => {
    if (performance.now() - since < budgetMs) return;
    await new Promise((resolve) => setImmediate(resolve));
    since = performance.now();
  };
}

const byKey = (a: ManifestKey, b: ManifestKey) => a.repositoryId - b.repositoryId || (a.digest < b.digest ? -1 : a.digest > b.digest ? 1 : 0);
const byDigest = (a: { digest: string }, b: { digest: string }) => (a.digest < b.digest ? -1 : a.digest > b.digest ? 1 : 0);

/** Runs one collection; see the module comment. Rejects only when a store cannot be read at all. */
export async function collectGarbage(deps: GcDeps, options: GcOptions): Promise<GcReport> {
  const run = new Collection(deps, options);
  return run.run();
}

class Collection {
  private readonly meta: MetaStore;
  private readonly blobs: BlobStore;
  private readonly deps: GcDeps;
  private readonly options: GcOptions;
  private readonly now: () => number;
  private readonly log: Logger;
  private readonly batch: number;
  private readonly report: GcReport;
  /** Manifests removed by this run (dry run: that would be), by repository. */
  private readonly removed = new Map<number, Set<Digest>>();
  /** Dry run: for each blob, how many references of the manifests that would go name it. */
  private readonly freedReferences = new Map<Digest, number>();
  private readonly pace = pacer();

  constructor(deps: GcDeps, options: GcOptions) {
    this.deps = deps;
    this.meta = deps.meta;
    this.blobs = deps.blobs;
    this.options = options;
    this.now = deps.now ?? Date.now;
    this.batch = Math.max(1, options.batchSize ?? 500);
    const startedAtMs = this.now();
    const runId = randomUUID().slice(0, 8);
    this.log = deps.log.child({ task: 'gc', runId, dryRun: options.dryRun });
    this.report = {
      runId,
      dryRun: options.dryRun,
      startedAtMs,
      finishedAtMs: startedAtMs,
      cutoffMs: startedAtMs - Math.max(0, options.graceMs),
      manifests: [],
      blobs: [],
      orphans: [],
      uploads: null,
      bytesReclaimed: 0,
      manifestBytesReclaimed: 0,
      errors: 0,
      nextDueAtMs: null,
    };
  }

  async run(): Promise<GcReport> {
    const r = this.report;
    this.log.info({ graceMs: this.options.graceMs, cutoffMs: r.cutoffMs }, 'garbage collection started');
    if (!this.options.keepUntaggedManifests) await this.collectManifests();
    await this.collectBlobs();
    await this.collectOrphans();
    if (this.deps.registry) r.uploads = await this.deps.registry.sweepUploads({ dryRun: this.options.dryRun });
    if (!this.options.dryRun) {
      const [oldest] = await this.meta.gc.listBlobCandidates({ usedBeforeMs: Number.MAX_SAFE_INTEGER, limit: 1 });
      r.nextDueAtMs = oldest ? oldest.lastUsedAtMs + Math.max(0, this.options.graceMs) : null;
    }
    r.manifests.sort(byKey);
    r.blobs.sort(byDigest);
    r.orphans.sort(byDigest);
    r.bytesReclaimed = [...r.blobs, ...r.orphans].reduce((sum, b) => sum + b.sizeBytes, 0);
    r.manifestBytesReclaimed = r.manifests.reduce((sum, m) => sum + m.sizeBytes, 0);
    r.finishedAtMs = this.now();
    this.log.info(
      {
        manifests: r.manifests.length,
        blobs: r.blobs.length,
        orphans: r.orphans.length,
        uploads: r.uploads,
        bytesReclaimed: r.bytesReclaimed,
        manifestBytesReclaimed: r.manifestBytesReclaimed,
        errors: r.errors,
        durationMs: r.finishedAtMs - r.startedAtMs,
      },
      this.options.dryRun ? 'garbage collection dry run finished' : 'garbage collection finished',
    );
    return r;
  }

  // --- manifests ----------------------------------------------------------------------------

  private isRemoved(repositoryId: number, digest: Digest): boolean {
    return this.removed.get(repositoryId)?.has(digest) ?? false;
  }

  /**
   * Whether the manifest is garbage once the manifests this run removed are gone. A real run
   * asks the store, which decides the same from what is left (deleteManifestIfUnused); a dry
   * run removes nothing, so it decides here, with this.removed standing in for the deletions.
   */
  private isCollectable(s: ManifestState): boolean {
    return (
      s.createdAtMs < this.report.cutoffMs &&
      !s.isTagged &&
      s.parents.every((p) => this.isRemoved(s.repositoryId, p)) &&
      (s.subjectDigest === null || !s.subjectExists || this.isRemoved(s.repositoryId, s.subjectDigest))
    );
  }

  private async collectManifests(): Promise<void> {
    let after: ManifestKey | undefined;
    for (;;) {
      const page = await this.meta.gc.listManifestCandidates({ createdBeforeMs: this.report.cutoffMs, after, limit: this.batch });
      for (const c of page) await this.removeManifestAndFreed(c);
      if (page.length < this.batch) return;
      const last = page[page.length - 1]!;
      after = { repositoryId: last.repositoryId, digest: last.digest };
    }
  }

  /** Removes the manifest, then whatever its removal frees (children, referrers), breadth first. */
  private async removeManifestAndFreed(first: ManifestKey): Promise<void> {
    const queue: ManifestKey[] = [first];
    while (queue.length > 0) {
      await this.pace();
      const key = queue.shift()!;
      if (this.isRemoved(key.repositoryId, key.digest)) continue;
      let freed: (ManifestCandidate & { children: Digest[]; referrers: Digest[]; blobs: Digest[] }) | undefined;
      try {
        if (this.options.dryRun) {
          const state = await this.meta.gc.getManifestState(key.repositoryId, key.digest);
          freed = state && this.isCollectable(state) ? state : undefined;
        } else {
          freed = await this.meta.gc.deleteManifestIfUnused(key.repositoryId, key.digest, this.report.cutoffMs);
        }
      } catch (err) {
        this.failed(err, 'could not remove a manifest', { repositoryId: key.repositoryId, digest: key.digest });
        continue;
      }
      if (!freed) continue;
      let set = this.removed.get(key.repositoryId);
      if (!set) this.removed.set(key.repositoryId, (set = new Set()));
      set.add(key.digest);
      this.report.manifests.push({ accountId: freed.accountId, repository: freed.repositoryName, repositoryId: key.repositoryId, digest: key.digest, sizeBytes: freed.sizeBytes });
      this.log.debug({ repository: freed.repositoryName, digest: key.digest }, 'manifest removed');
      if (this.options.dryRun) for (const b of freed.blobs) this.freedReferences.set(b, (this.freedReferences.get(b) ?? 0) + 1);
      for (const digest of [...freed.children, ...freed.referrers]) queue.push({ repositoryId: key.repositoryId, digest });
    }
  }

  // --- blobs --------------------------------------------------------------------------------

  private async collectBlobs(): Promise<void> {
    const gc = this.meta.gc;
    const cutoff = this.report.cutoffMs;

    // Rows an interrupted collection marked: writers already treat them as absent.
    let afterDigest: Digest | undefined;
    for (;;) {
      const page = await gc.listDeletingBlobs({ after: afterDigest, limit: this.batch });
      await this.eachLimited(page, async (b) => {
        if (this.options.dryRun) this.report.blobs.push({ digest: b.digest, sizeBytes: b.sizeBytes });
        else await this.deleteMarked(b.digest);
      });
      if (page.length < this.batch) break;
      afterDigest = page[page.length - 1]!.digest;
    }

    let after: { lastUsedAtMs: number; digest: Digest } | undefined;
    for (;;) {
      const page = await gc.listBlobCandidates({ usedBeforeMs: cutoff, after, limit: this.batch });
      await this.eachLimited(page, async (b) => {
        if (this.options.dryRun) {
          this.report.blobs.push({ digest: b.digest, sizeBytes: b.sizeBytes });
          return;
        }
        // Two transactions: the mark commits first, so that a crash after the bytes are gone
        // leaves a row every reader already counts as absent (docs/gc.md).
        if (await gc.markBlobForDeletion(b.digest, cutoff, this.now())) await this.deleteMarked(b.digest);
      });
      if (page.length < this.batch) break;
      const last = page[page.length - 1]!;
      after = { lastUsedAtMs: last.lastUsedAtMs, digest: last.digest };
    }

    if (this.options.dryRun && this.freedReferences.size > 0) {
      // Blobs that only the manifests this run would remove reference: a real run finds them
      // unreferenced once those are gone (removing a manifest does not mark its blobs used).
      const digests = [...this.freedReferences.keys()];
      for (let i = 0; i < digests.length; i += this.batch) {
        const usage = await gc.getBlobUsage(digests.slice(i, i + this.batch));
        for (const [digest, u] of usage) {
          if (u.deletingAtMs === null && u.lastUsedAtMs < cutoff && u.references === this.freedReferences.get(digest)) {
            this.report.blobs.push({ digest, sizeBytes: u.sizeBytes });
          }
        }
      }
    }
  }

  private async deleteMarked(digest: Digest): Promise<void> {
    try {
      const blob = await this.meta.gc.deleteMarkedBlob(digest, (b) => this.blobs.delete(b.digest));
      if (!blob) return;
      this.report.blobs.push({ digest, sizeBytes: blob.sizeBytes });
      this.log.debug({ digest, sizeBytes: blob.sizeBytes }, 'blob removed');
    } catch (err) {
      this.failed(err, 'could not remove a blob', { digest });
    }
  }

  // --- bytes without a row --------------------------------------------------------------------

  private async collectOrphans(): Promise<void> {
    if (!this.blobs.listBlobs) {
      this.log.warn('the blob store cannot list its blobs: bytes that no row records are not swept');
      return;
    }
    let pending: { digest: Digest; sizeBytes: number }[] = [];
    const flush = async () => {
      const recorded = await this.meta.gc.findRecordedBlobs(pending.map((b) => b.digest));
      const orphans = pending.filter((b) => !recorded.has(b.digest));
      pending = [];
      await this.eachLimited(orphans, async (b) => {
        if (this.options.dryRun) {
          this.report.orphans.push(b);
          return;
        }
        try {
          if (await this.meta.gc.deleteUnrecordedBytes(b.digest, b.sizeBytes, this.now(), () => this.blobs.delete(b.digest))) {
            this.report.orphans.push(b);
            this.log.debug({ digest: b.digest, sizeBytes: b.sizeBytes }, 'unrecorded blob bytes removed');
          }
        } catch (err) {
          this.failed(err, 'could not remove unrecorded blob bytes', { digest: b.digest });
        }
      });
    };
    for await (const b of this.blobs.listBlobs()) {
      // Bytes appear before their row (docs/blob-layout.md): young ones are a commit in progress.
      if (b.modifiedAtMs >= this.report.cutoffMs) continue;
      pending.push({ digest: b.digest, sizeBytes: b.sizeBytes });
      if (pending.length >= this.batch) await flush();
    }
    if (pending.length > 0) await flush();
  }

  // --- helpers --------------------------------------------------------------------------------

  private failed(err: unknown, msg: string, fields: Record<string, unknown>): void {
    this.report.errors++;
    this.log.warn({ err, ...fields }, msg);
  }

  /** Runs fn over the items, at most `concurrency` at once. */
  private async eachLimited<T>(items: readonly T[], fn: (item: T) => Promise<void>): Promise<void> {
    let next = 0;
    const worker = async () => {
      while (next < items.length) {
        const item = items[next++]!;
        await this.pace();
        await fn(item);
      }
    };
    await Promise.all(Array.from({ length: Math.min(items.length, Math.max(1, this.options.concurrency ?? 4)) }, worker));
  }
}

/** Storage accounting (docs/gc.md): the whole registry, per account, per repository. */
export interface StorageReport {
  total: TotalUsage;
  accounts: AccountUsage[];
  /** By repository id; only the account's when an account is given. */
  repositories: RepositoryUsage[];
}

export async function storageReport(meta: MetaStore, options: { accountId?: string } = {}): Promise<StorageReport> {
  const total = await meta.gc.totalUsage();
  const accounts = (await meta.gc.accountUsage()).filter((a) => options.accountId === undefined || a.accountId === options.accountId);
  const repositories: RepositoryUsage[] = [];
  let afterId: number | undefined;
  // Small pages: each is a pass over those repositories' manifests and references.
  const pageSize = 50;
  for (;;) {
    const page = await meta.gc.repositoryUsage({ afterId, limit: pageSize });
    repositories.push(...page.filter((r) => options.accountId === undefined || r.accountId === options.accountId));
    if (page.length < pageSize) break;
    afterId = page[page.length - 1]!.repositoryId;
  }
  return { total, accounts, repositories };
}
