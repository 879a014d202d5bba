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
