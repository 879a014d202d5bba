import { repositoryArn } from '../../iam/ids.ts';
import type { RepoRef } from '../../registry/names.ts';
import { AwsError } from '../aws-error.ts';
import type { ActionHandler } from '../plane.ts';
import { registryOf } from './common.ts';

/** At most this many actions per call (a page asks for a handful). */
const MAX_ACTIONS = 50;

/**
 * BerthCheckPermissions (a Berth extension): which of the given ECR actions the caller may do,
 * on one repository (its repository policy included) or, without a repository, on the registry.
 * It is the IAM evaluation every call makes, asked ahead so that the console can show what a
 * user may not do as such. It reveals only the caller's own permissions, so, like
 * sts:GetCallerIdentity, it needs none; the answers are not audited (nothing was attempted).
 */
export const permissionActions: Record<string, ActionHandler> = {
  async BerthCheckPermissions(ctx, input) {
    const actions = (input['actions'] as string[] | undefined) ?? [];
    if (actions.length === 0 || actions.length > MAX_ACTIONS) {
      throw new AwsError('InvalidParameterException', `Invalid parameter at 'actions' failed to satisfy constraint: 'Member must have length between 1 and ${MAX_ACTIONS}'`);
    }
    const bad = actions.find((a) => !/^ecr:[A-Za-z]+$/.test(a));
    if (bad !== undefined) throw new AwsError('InvalidParameterException', `Invalid parameter at 'actions' failed to satisfy constraint: '${bad} is not an ECR action (ecr:Name)'`);
    const name = input['repositoryName'] as string | undefined;
    const ref: RepoRef | undefined = name === undefined ? undefined : { account: registryOf(ctx, input), name };
    const resource = ref ? repositoryArn(ctx.deps.region, ref.account, ref.name) : '*';
    const resourceAccountId = ref?.account ?? ctx.principal.accountId;
    const resourcePolicies = ref ? await ctx.deps.identity.repositoryPolicies(ref) : [];
    const results = [];
    for (const action of actions) {
      const decision = await ctx.deps.authorizer.decide({ caller: ctx.caller, action, resource, resourceAccountId, resourcePolicies }, false);
      results.push({ action, allowed: decision.effect === 'allow' });
    }
    return { results };
  },
};
