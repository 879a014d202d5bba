import { setImmediate as yieldToEventLoop } from 'node:timers/promises';
import { isDigest } from '../../digest/digest.ts';
import { isRegistryError } from '../../errors/catalogue.ts';
import { repositoryArn } from '../../iam/ids.ts';
import type { CompiledPolicy } from '../../iam/policy/index.ts';
import { isValidRepositoryName, isValidTag } from '../../registry/names.ts';
import type { ImageSort, ListPosition, RepositoryEntry, RepositorySort, SortOrder } from '../../store/meta/listing-store.ts';
import type { TagStatus } from '../../store/meta/meta-store.ts';
import { AwsError } from '../aws-error.ts';
import type { ActionContext, ActionHandler } from '../plane.ts';
import { afterToken, nextTokenAfter, repositoryOf } from './common.ts';
import { imageDetails } from './images.ts';
import { recordListing, repositoryOutput } from './repositories.ts';

/**
 * Berth's list operations for the web console, in ECR's namespace (docs/ecr-api.md): what
 * DescribeRepositories and DescribeImages show, sorted, filtered, counted and paged on the
 * server. Same IAM actions, same checks: BerthListRepositories and BerthDescribeStorageUsage
 * show only the repositories DescribeRepositories would list to the caller, BerthListImages
 * asks ecr:DescribeImages on the repository.
 */

const DEFAULT_PAGE = 100;

const REPOSITORY_SORTS: Record<string, RepositorySort> = { repositoryName: 'name', createdAt: 'createdAt', imageCount: 'imageCount', sizeInBytes: 'sizeBytes' };
const IMAGE_SORTS: Record<string, ImageSort> = { pushedAt: 'pushedAt', sizeInBytes: 'sizeBytes', tag: 'tag' };

/** Filters compare in lower case; only ASCII letters fold, as in the databases (names, tags and digests are ASCII). */
function lowerAscii(text: string): string {
  return text.replace(/[A-Z]/g, (c) => c.toLowerCase());
}

/** What a repository name can hold; a filter with anything else matches nothing. */
const NAME_CHARS = /^[a-z0-9._/-]*$/;
/** What a tag or a digest can hold, in lower case. */
const IMAGE_CHARS = /^[a-z0-9._:+=-]*$/;

const badToken = () => new AwsError('InvalidParameterException', "Invalid parameter at 'nextToken' failed to satisfy constraint: 'The nextToken is not one this registry returned for this sortBy and sortOrder; start again without it'");

/** The nextToken for a page that ended at `position`: opaque, and only good for the same order. */
function tokenAt(sortBy: string, order: SortOrder, position: ListPosition): string {
  return nextTokenAfter(JSON.stringify({ s: sortBy, o: order, v: position.value, i: position.id }));
}

/** The position a nextToken continues after, checked to be one `isValid` accepts for this order. */
function positionOf(token: string | undefined, sortBy: string, order: SortOrder, isValid: (p: ListPosition) => boolean): ListPosition | undefined {
  const after = afterToken(token);
  if (after === undefined) return undefined;
  let parsed: { s?: unknown; o?: unknown; v?: unknown; i?: unknown };
  try {
    parsed = JSON.parse(after) as typeof parsed;
  } catch {
    throw badToken();
  }
  const { s, o, v, i } = parsed ?? {};
  if (s !== sortBy || o !== order || typeof i !== 'string' || !(v === null || typeof v === 'string' || typeof v === 'number')) throw badToken();
  const position = { value: v, id: i };
  if (!isValid(position)) throw badToken();
  return position;
}

const isCount = (v: unknown): boolean => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;

function sortOf<T>(sorts: Record<string, T>, input: Record<string, any>, fallback: string): { wire: string; sortBy: T; order: SortOrder } {
  const wire = (input['sortBy'] as string | undefined) ?? fallback;
  // The model's enum has checked it already.
  return { wire, sortBy: sorts[wire]!, order: (input['sortOrder'] as SortOrder | undefined) ?? 'ASC' };
}

/**
 * The account's repositories the caller may describe (`ecr:DescribeRepositories`), and the ids
 * of the others. Each is asked on its own ARN with the policies that govern it, as
 * DescribeRepositories asks (Registry.listRepositories): its repository policy and the registry
 * policy. Those without a repository policy are asked with the registry policy alone, read
 * once, so that ten thousand repositories take ten thousand evaluations and no query each.
 * As DescribeRepositories, refuses a caller who may describe none of them nor `repository/*`,
 * and records one audit line for the listing.
 */
async function visibleRepositories(ctx: ActionContext, account: string): Promise<{ visible: RepositoryEntry[]; hiddenIds: number[] }> {
  const { identity, authorizer, region, registry } = ctx.deps;
  const action = 'ecr:DescribeRepositories';
  // `*` is no repository's name: its policies are the registry policy alone.
  const shared = await identity.repositoryPolicies({ account, name: '*' });
  const isAllowed = async (name: string, resourcePolicies: CompiledPolicy[]) =>
    (await authorizer.decide({ caller: ctx.caller, action, resource: repositoryArn(region, account, name), resourceAccountId: account, resourcePolicies }, false)).effect === 'allow';
  const visible: RepositoryEntry[] = [];
  const hiddenIds: number[] = [];
  for (const [i, entry] of (await registry.listings.repositoryEntries(account)).entries()) {
    const policies = entry.hasPolicy ? await identity.repositoryPolicies({ account, name: entry.name }) : shared;
    if (await isAllowed(entry.name, policies)) visible.push(entry);
    else hiddenIds.push(entry.id);
    if (i % 1000 === 999) await yieldToEventLoop();
  }
  if (visible.length === 0 && !(await isAllowed('*', shared))) {
    // Asked again, audited, so that the refusal reads as every other denial.
    await ctx.authorize(action, repositoryArn(region, account, '*'), { resourceAccountId: account, resourcePolicies: shared });
  }
  recordListing(ctx, account);
  return { visible, hiddenIds };
}

export const consoleListActions: Record<string, ActionHandler> = {
  async BerthListRepositories(ctx, input) {
    const account = ctx.principal.accountId;
    const { wire, sortBy, order } = sortOf(REPOSITORY_SORTS, input, 'repositoryName');
    const after = positionOf(input['nextToken'], wire, order, (p) => isValidRepositoryName(p.id) && (sortBy === 'name' ? p.value === p.id : isCount(p.value)));
    const limit = (input['maxResults'] as number | undefined) ?? DEFAULT_PAGE;
    const filter = lowerAscii((input['filter'] as string | undefined) ?? '');
    const { visible, hiddenIds } = await visibleRepositories(ctx, account);
    if (!NAME_CHARS.test(filter)) return { repositories: [], totalCount: 0 };
    const page = await ctx.deps.registry.listings.repositories({ accountId: account, nameContains: filter || undefined, excludeIds: hiddenIds, sortBy, order, after, limit });
    // Only those found visible: not one created since, which no one has asked IAM about. Each
    // one's settings: one query each, side by side (a pooled database runs them at once).
    const visibleIds = new Set(visible.map((r) => r.id));
    const repositories = await Promise.all(page.repositories.filter(({ repository }) => visibleIds.has(repository.id)).map(async ({ repository, figures }) => {
      const settings = await ctx.deps.registry.repositorySettings(repository).catch((err: unknown) => {
        if (isRegistryError(err, 'NameUnknown')) return undefined; // deleted meanwhile
        throw err;
      });
      return settings && { ...(await repositoryOutput(ctx, repository, settings)), imageCount: figures.imageCount, sizeInBytes: figures.sizeBytes };
    }));
    return {
      repositories: repositories.filter((r) => r !== undefined),
      totalCount: visible.filter((r) => r.name.includes(filter)).length,
      ...(page.next ? { nextToken: tokenAt(wire, order, page.next) } : {}),
    };
  },

  async BerthListImages(ctx, input) {
    const repo = await repositoryOf(ctx, input, 'ecr:DescribeImages');
    const { wire, sortBy, order } = sortOf(IMAGE_SORTS, input, 'pushedAt');
    const after = positionOf(input['nextToken'], wire, order, (p) => isDigest(p.id) && (sortBy === 'tag' ? p.value === null || (typeof p.value === 'string' && isValidTag(p.value)) : isCount(p.value)));
    const limit = (input['maxResults'] as number | undefined) ?? DEFAULT_PAGE;
    const filter = lowerAscii((input['filter'] as string | undefined) ?? '');
    if (!IMAGE_CHARS.test(filter)) return { imageDetails: [], totalCount: 0 };
    const tagStatus = (input['tagStatus'] as TagStatus | undefined) ?? 'ANY';
    const page = await ctx.deps.registry.listings.images({ repositoryId: repo.id, contains: filter || undefined, tagStatus, sortBy, order, after, limit });
    return {
      imageDetails: await imageDetails(ctx, repo, page.images),
      totalCount: page.totalCount,
      ...(page.next ? { nextToken: tokenAt(wire, order, page.next) } : {}),
    };
  },

  async BerthDescribeStorageUsage(ctx) {
    const account = ctx.principal.accountId;
    const { visible, hiddenIds } = await visibleRepositories(ctx, account);
    const usage = await ctx.deps.registry.listings.storage(account, hiddenIds);
    // Not a repository created since, which no one has asked IAM about (the account figures may
    // count what was pushed to it in that moment: next to nothing).
    const visibleIds = new Set(visible.map((r) => r.id));
    const repositories = usage.repositories.filter(({ repository }) => visibleIds.has(repository.id));
    const a = usage.account;
    return {
      registryId: account,
      repositoryCount: repositories.length,
      imageCount: a.imageCount,
      manifestBytes: a.manifestBytes,
      blobCount: a.blobCount,
      blobBytes: a.blobBytes,
      sharedBlobCount: a.sharedBlobCount,
      sharedBlobBytes: a.sharedBlobBytes,
      sizeInBytes: a.manifestBytes + a.blobBytes,
      repositories: repositories.map(({ repository, figures }) => ({
        repositoryName: repository.name,
        imageCount: figures.imageCount,
        manifestBytes: figures.manifestBytes,
        blobCount: figures.blobCount,
        blobBytes: figures.blobBytes,
        sizeInBytes: figures.sizeBytes,
      })),
    };
  },
};
