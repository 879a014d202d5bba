import { repositoryArn } from '../../iam/ids.ts';
import type { RepoRef } from '../../registry/names.ts';
import type { Repository } from '../../store/meta/meta-store.ts';
import { AwsError } from '../aws-error.ts';
import type { ActionContext } from '../plane.ts';

/** The registry (account) a call names with `registryId`: the caller's own by default. */
export function registryOf(ctx: ActionContext, input?: Record<string, any>): string {
  return (input?.['registryId'] as string | undefined) ?? ctx.principal.accountId;
}

export function repositoryNotFound(ref: RepoRef): AwsError {
  return new AwsError('RepositoryNotFoundException', `The repository with name '${ref.name}' does not exist in the registry with id '${ref.account}'`);
}

/**
 * The repository a call names (`registryId`, `repositoryName`), after asking IAM whether the
 * caller may do `action` on it (with its repository and registry policies, so cross-account
 * calls work as in ECR). Throws RepositoryNotFoundException when it does not exist.
 */
export async function repositoryOf(ctx: ActionContext, input: Record<string, any>, action: string): Promise<{ ref: RepoRef; id: number; arn: string; repository: Repository }> {
  const ref: RepoRef = { account: registryOf(ctx, input), name: input['repositoryName'] as string };
  const arn = repositoryArn(ctx.deps.region, ref.account, ref.name);
  await ctx.authorize(action, arn, { resourceAccountId: ref.account, resourcePolicies: await ctx.deps.identity.repositoryPolicies(ref) });
  const repository = await ctx.deps.registry.findRepository(ref);
  if (!repository) throw repositoryNotFound(ref);
  return { ref, id: repository.id, arn, repository };
}

/**
 * A repository's URI, `HOST/NAME`: HOST is the host the caller reached, which serves
 * the default account; another account's repositories are at `ACCOUNT.HOST` (see accountOfHost).
 */
export async function repositoryUri(ctx: ActionContext, account: string, name: string): Promise<string> {
  const host = new URL(ctx.endpoint).host.replace(/^\d{12}\./, '');
  return account === (await ctx.deps.identity.defaultAccount()) ? `${host}/${name}` : `${account}.${host}/${name}`;
}

/**
 * ECR's nextToken is opaque: this one carries the last key returned, so a page continues after
 * it however the list changed in between.
 */
export function nextTokenAfter(key: string): string {
  return Buffer.from(JSON.stringify({ v: 1, after: key })).toString('base64url');
}

/** The key a nextToken continues after; InvalidParameterException for a token this registry did not issue. */
export function afterToken(token: string | undefined): string | undefined {
  if (token === undefined) return undefined;
  try {
    const parsed = JSON.parse(Buffer.from(token, 'base64url').toString('utf8')) as { v?: unknown; after?: unknown };
    if (parsed.v === 1 && typeof parsed.after === 'string') return parsed.after;
  } catch {
    // fall through
  }
  throw new AwsError('InvalidParameterException', "Invalid parameter at 'nextToken' failed to satisfy constraint: 'The nextToken is not one this registry returned; start again without it'");
}

/**
 * For the operations that push (InitiateLayerUpload, UploadLayerPart, CompleteLayerUpload,
 * PutImage): like repositoryOf, but a missing repository that a push creates
 * (Registry.createsOnPush: a CREATE_ON_PUSH creation template covers it, or
 * repositories.createOnPush) is no error. The caller must then also be allowed
 * ecr:CreateRepository on it, as on the data plane; the registry creates it when it is written to.
 */
export async function pushTargetOf(ctx: ActionContext, input: Record<string, any>, action: string): Promise<{ ref: RepoRef; arn: string; repository: Repository | undefined }> {
  const ref: RepoRef = { account: registryOf(ctx, input), name: input['repositoryName'] as string };
  const arn = repositoryArn(ctx.deps.region, ref.account, ref.name);
  const resourcePolicies = await ctx.deps.identity.repositoryPolicies(ref);
  await ctx.authorize(action, arn, { resourceAccountId: ref.account, resourcePolicies });
  const repository = await ctx.deps.registry.findRepository(ref);
  if (!repository) {
    if (!(await ctx.deps.registry.createsOnPush(ref))) throw repositoryNotFound(ref);
    await ctx.authorize('ecr:CreateRepository', arn, { resourceAccountId: ref.account, resourcePolicies });
  }
  return { ref, arn, repository };
}
