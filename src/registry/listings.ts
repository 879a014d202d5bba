import { setImmediate as yieldToEventLoop } from 'node:timers/promises';
import type { Digest } from '../digest/digest.ts';
import type { AccountFigures, ImageListQuery, ListPosition, RepositoryEntry, RepositoryFigures, RepositoryListQuery } from '../store/meta/listing-store.ts';
import type { ImageRecord, Repository } from '../store/meta/meta-store.ts';
import type { RegistryContext } from './context.ts';
import { isIndexMediaType } from './manifest.ts';

/**
 * The console's lists (BerthListRepositories, BerthListImages, BerthDescribeStorageUsage):
 * sorted, filtered and counted keyset pages of repositories and images, and storage figures.
 * One part of the Registry (registry.ts). Who may see which repository is the caller's to
 * decide (IAM, in control/); this part lists what it is told to.
 */

/** Manifests whose image size is computed per batch (their payloads are parsed in memory). */
const SIZE_BATCH = 500;
/** How long a repository whose images all had their size stays unchecked by listings in other orders. */
const SIZES_CHECKED_MS = 60_000;
/**
 * How long an account's figures (every repository's image count and size, the storage usage)
 * serve sorting and the usage page before they are computed again, in the background while the
 * last ones keep serving. Totalling a large account reads every reference it holds (seconds at a
 * million); sorting a page, or paging through sorted pages, must not pay that each time.
 */
const FIGURES_FRESH_MS = 60_000;
/** Repositories whose figures are totalled per query when an account's figures are computed. */
const FIGURES_BATCH = 100;

function manifestJson(payload: Uint8Array): Record<string, unknown> {
  try {
    const doc: unknown = JSON.parse(Buffer.from(payload.buffer, payload.byteOffset, payload.byteLength).toString('utf8'));
    return typeof doc === 'object' && doc !== null ? (doc as Record<string, unknown>) : {};
  } catch {
    return {};
  }
}

/** An image manifest's layers as pushed (compressed), summed: what ECR's imageSizeInBytes counts (the config is not). */
function layerBytes(doc: Record<string, unknown>): number {
  const layers = Array.isArray(doc['layers']) ? (doc['layers'] as { size?: unknown }[]) : [];
  return layers.reduce((sum, l) => sum + (typeof l?.size === 'number' ? l.size : 0), 0);
}

/**
 * ECR's imageSizeInBytes, as DescribeImages reports it (control/ecr/images.ts): an image
 * manifest's layers; for an index, the layers of each image it lists that the repository holds
 * (`children`: their manifests' JSON, by digest).
 */
export function imageSizeBytes(mediaType: string, doc: Record<string, unknown>, children: ReadonlyMap<Digest, Record<string, unknown>>): number {
  if (!isIndexMediaType(mediaType)) return layerBytes(doc);
  const listed = Array.isArray(doc['manifests']) ? (doc['manifests'] as { digest?: unknown }[]) : [];
  return listed.reduce((sum, m) => {
    const child = typeof m?.digest === 'string' ? children.get(m.digest) : undefined;
    return sum + (child ? layerBytes(child) : 0);
  }, 0);
}

function indexChildren(doc: Record<string, unknown>): Digest[] {
  const listed = Array.isArray(doc['manifests']) ? (doc['manifests'] as { digest?: unknown }[]) : [];
  return listed.flatMap((m) => (typeof m?.digest === 'string' ? [m.digest] : []));
}

function repositoryOf(accountId: string, entry: RepositoryEntry): Repository {
  return { id: entry.id, accountId, name: entry.name, createdAtMs: entry.createdAtMs };
}

export interface RepositoryPage {
  repositories: Array<{ repository: Repository; figures: RepositoryFigures }>;
  /** Where the next page starts; undefined on the last page. */
  next: ListPosition | undefined;
}

export interface ImagePage {
  images: ImageRecord[];
  /** How many images pass the filter, on every page. */
  totalCount: number;
  next: ListPosition | undefined;
}

export interface StorageUsage {
  account: AccountFigures;
  repositories: Array<{ repository: Repository; figures: RepositoryFigures }>;
}

export class Listings {
  private readonly ctx: RegistryContext;
  /** The image-size computation running on this node for a repository, and when it began. */
  private readonly sizing = new Map<number, { startedAtMs: number; done: Promise<void> }>();
  /** When a computation last found every image of the repository with its size, by repository. */
  private readonly sized = new Map<number, number>();

  /** Figures by key (an account, or an account's storage usage): when computed, and the answer. */
  private readonly figures = new Map<string, { atMs: number; value: Promise<unknown>; isRefreshing: boolean }>();

  constructor(ctx: RegistryContext) {
    this.ctx = ctx;
  }

  /**
   * `compute()`'s answer, kept FIGURES_FRESH_MS; after that the kept answer is still served while
   * a new one is computed in the background (one at a time per key). A failure is not kept.
   */
  private kept<T>(key: string, compute: () => Promise<T>): Promise<T> {
    const freshMs = this.ctx.options.figuresFreshMs ?? FIGURES_FRESH_MS;
    if (freshMs === 0) return compute();
    const now = Date.now();
    const hit = this.figures.get(key);
    if (hit) {
      if (now - hit.atMs > freshMs && !hit.isRefreshing) {
        hit.isRefreshing = true;
        compute().then(
          (value) => this.figures.set(key, { atMs: Date.now(), value: Promise.resolve(value), isRefreshing: false }),
          (err: unknown) => {
            hit.isRefreshing = false;
            this.ctx.log.warn({ err }, 'could not total repository figures');
          },
        );
      }
      return hit.value as Promise<T>;
    }
    if (this.figures.size >= 1000) this.figures.clear();
    const value = compute();
    this.figures.set(key, { atMs: now, value, isRefreshing: false });
    value.catch(() => this.figures.delete(key));
    return value;
  }

  /**
   * Every repository of the account with its image count and size, totalled a batch of
   * repositories per query with the event loop free in between (SQLite's queries hold it).
   */
  private accountRepositoryFigures(accountId: string): Promise<Array<{ entry: RepositoryEntry; figures: RepositoryFigures }>> {
    return this.kept(`repositories:${accountId}`, async () => {
      const entries = await this.repositoryEntries(accountId);
      const out: Array<{ entry: RepositoryEntry; figures: RepositoryFigures }> = [];
      for (let i = 0; i < entries.length; i += FIGURES_BATCH) {
        const batch = entries.slice(i, i + FIGURES_BATCH);
        const figures = await this.ctx.meta.listings.repositoryFigures(batch.map((e) => e.id));
        for (const entry of batch) {
          const f = figures.get(entry.id);
          if (f) out.push({ entry, figures: f });
        }
        await yieldToEventLoop();
      }
      return out;
    });
  }

  /**
   * A page sorted by image count or size: from the account's kept figures (at most a minute old
   * by default, see FIGURES_FRESH_MS), in the order the store's keyset pages use (key, then name).
   */
  private async sortedByFigures(query: RepositoryListQuery): Promise<Array<{ repository: Repository; position: ListPosition }>> {
    const all = await this.accountRepositoryFigures(query.accountId);
    const excluded = new Set(query.excludeIds ?? []);
    const keyOf = (f: RepositoryFigures) => (query.sortBy === 'imageCount' ? f.imageCount : f.sizeBytes);
    const sign = query.order === 'DESC' ? -1 : 1;
    const compare = (ak: number, an: string, bk: number, bn: string) => sign * (ak - bk || (an < bn ? -1 : an > bn ? 1 : 0));
    const after = query.after;
    const rows = all
      .filter(({ entry }) => !excluded.has(entry.id) && (!query.nameContains || entry.name.includes(query.nameContains)))
      .filter(({ entry, figures }) => after === undefined || compare(keyOf(figures), entry.name, Number(after.value), after.id) > 0)
      .sort((a, b) => compare(keyOf(a.figures), a.entry.name, keyOf(b.figures), b.entry.name))
      .slice(0, query.limit);
    return rows.map(({ entry, figures }) => ({ repository: repositoryOf(query.accountId, entry), position: { value: keyOf(figures), id: entry.name } }));
  }

  /** Every repository of the account, by name, with whether it has a repository policy. */
  repositoryEntries(accountId: string): Promise<RepositoryEntry[]> {
    return this.ctx.meta.listings.listRepositoryEntries(accountId);
  }

  /** A page of the account's repositories with their figures; one deleted meanwhile is left out. */
  async repositories(query: RepositoryListQuery): Promise<RepositoryPage> {
    const { sortBy } = query;
    let listed: Array<{ repository: Repository; position: ListPosition }>;
    if (sortBy === 'name' || sortBy === 'createdAt') {
      // A list in name or creation order starts totalling the account's figures in the background
      // (when they are kept), so that a sort by size or count that follows finds them ready.
      if ((this.ctx.options.figuresFreshMs ?? FIGURES_FRESH_MS) > 0) void this.accountRepositoryFigures(query.accountId).catch(() => {});
      listed = await this.ctx.meta.listings.listRepositories({ ...query, sortBy, limit: query.limit + 1 });
    } else {
      listed = await this.sortedByFigures({ ...query, limit: query.limit + 1 });
    }
    const page = listed.slice(0, query.limit);
    const figures = await this.ctx.meta.listings.repositoryFigures(page.map((r) => r.repository.id));
    return {
      repositories: page.flatMap(({ repository }) => {
        const f = figures.get(repository.id);
        return f ? [{ repository, figures: f }] : [];
      }),
      next: listed.length > query.limit ? page.at(-1)!.position : undefined,
    };
  }

  /**
   * A page of the repository's images (as DescribeImages' records) and how many pass the
   * filter. Sorting by size first records the sizes of the images that have none yet.
   */
  async images(query: ImageListQuery): Promise<ImagePage> {
    if (query.sortBy === 'sizeBytes') await this.recordImageSizes(query.repositoryId);
    else this.prepareImageSizes(query.repositoryId);
    const listed = await this.ctx.meta.listings.listImages({ ...query, limit: query.limit + 1 });
    const page = listed.slice(0, query.limit);
    const records = await this.ctx.meta.getImages(query.repositoryId, page.map((i) => i.digest));
    const totalCount = await this.ctx.meta.listings.countImages(query);
    return {
      images: page.flatMap((i) => records.get(i.digest) ?? []),
      totalCount,
      next: listed.length > query.limit ? page.at(-1)!.position : undefined,
    };
  }

  /** The account's storage over its repositories but the excluded ones, and each of theirs. */
  async storage(accountId: string, excludeIds: readonly number[]): Promise<StorageUsage> {
    // Kept like the sorted lists (FIGURES_FRESH_MS): the account's totals read every reference it holds.
    const account = await this.kept(`account:${accountId}:${[...excludeIds].sort((a, b) => a - b).join(',')}`, () => this.ctx.meta.listings.accountFigures(accountId, { excludeIds }));
    const excluded = new Set(excludeIds);
    const repositories: StorageUsage['repositories'] = [];
    for (const { entry, figures } of await this.accountRepositoryFigures(accountId)) {
      if (excluded.has(entry.id)) continue;
      repositories.push({ repository: repositoryOf(accountId, entry), figures });
    }
    return { account, repositories };
  }

  /**
   * Computes and records the image size of every manifest of the repository that has none yet,
   * those pushed before this call included: a computation already running counts only if it
   * began after the call (else this waits for it and runs another).
   */
  private async recordImageSizes(repositoryId: number): Promise<void> {
    const askedAtMs = this.ctx.now();
    for (let running = this.sizing.get(repositoryId); running; running = this.sizing.get(repositoryId)) {
      const isDone = await running.done.then(() => true, () => false);
      if (isDone && running.startedAtMs > askedAtMs) return;
    }
    const startedAtMs = this.ctx.now();
    const pass = {
      startedAtMs,
      done: this.computeImageSizes(repositoryId)
        .then(() => {
          this.sized.set(repositoryId, startedAtMs);
        })
        .finally(() => {
          if (this.sizing.get(repositoryId) === pass) this.sizing.delete(repositoryId);
        }),
    };
    this.sizing.set(repositoryId, pass);
    return pass.done;
  }

  /**
   * Starts recording the repository's image sizes in the background, unless that was done
   * within the last minute: a repository listed in another order is often sorted by size next,
   * and the first computation over 10,000 images takes a second or more on PostgreSQL (a
   * foreign-key check per row).
   */
  private prepareImageSizes(repositoryId: number): void {
    if (this.sizing.has(repositoryId) || this.ctx.now() - (this.sized.get(repositoryId) ?? -Infinity) < SIZES_CHECKED_MS) return;
    if (this.sized.size > 10_000) this.sized.clear();
    this.recordImageSizes(repositoryId).catch((err: unknown) => {
      this.ctx.log.warn({ err: { message: (err as Error).message }, repositoryId }, 'image sizes not recorded; the next listing by size tries again');
    });
  }

  private async computeImageSizes(repositoryId: number): Promise<void> {
    const { listings } = this.ctx.meta;
    let afterDigest: Digest | undefined;
    for (;;) {
      // In digest order, each batch after the last: one pass, whatever is pushed meanwhile.
      const batch = await listings.listImagesWithoutSize(repositoryId, { afterDigest, limit: SIZE_BATCH });
      if (batch.length === 0) return;
      afterDigest = batch.at(-1)!.digest;
      const docs = new Map(batch.map((m) => [m.digest, manifestJson(m.payload)]));
      const wanted = [...new Set(batch.filter((m) => isIndexMediaType(m.mediaType)).flatMap((m) => indexChildren(docs.get(m.digest)!)))];
      const children = new Map<Digest, Record<string, unknown>>();
      if (wanted.length > 0) {
        for (const child of (await this.ctx.meta.getImages(repositoryId, wanted)).values()) children.set(child.digest, manifestJson(child.payload));
      }
      const sizes = batch.map((m) => ({ digest: m.digest, sizeBytes: imageSizeBytes(m.mediaType, docs.get(m.digest)!, children) }));
      await listings.recordImageSizes(repositoryId, sizes);
      if (batch.length < SIZE_BATCH) return;
      // node:sqlite answers synchronously: let other requests in between batches.
      await yieldToEventLoop();
    }
  }
}
