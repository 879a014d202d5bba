import { parsePolicy, PolicyError } from '../../iam/policy/index.ts';
import { AwsError } from '../aws-error.ts';
import type { ActionHandler } from '../plane.ts';
import { registryOf, repositoryOf } from './common.ts';

/**
 * The ECR operations of the identity work: authorization tokens and repository and registry
 * policies. The rest of the ECR API builds on the same dispatcher.
 */

const REPOSITORY_POLICY_MAX = 10_240;

function validated(text: string, what: string): string {
  try {
    parsePolicy(text, 'resource', what, { maxLength: REPOSITORY_POLICY_MAX });
  } catch (err) {
    if (err instanceof PolicyError) throw new AwsError('InvalidParameterException', `Invalid parameter at 'PolicyText' failed to satisfy constraint: 'Invalid ${what} provided': ${err.message}`);
    throw err;
  }
  return text;
}

export const policyActions: Record<string, ActionHandler> = {
  async GetAuthorizationToken(ctx) {
    await ctx.authorize('ecr:GetAuthorizationToken', '*');
    const { token, expiresAt } = ctx.deps.identity.issueToken(ctx.principal);
    return {
      authorizationData: [
        {
          authorizationToken: Buffer.from(`AWS:${token}`).toString('base64'),
          expiresAt,
          proxyEndpoint: ctx.endpoint,
        },
      ],
    };
  },

  async SetRepositoryPolicy(ctx, input) {
    const repo = await repositoryOf(ctx, input, 'ecr:SetRepositoryPolicy');
    const text = validated(input['policyText'], 'repository policy');
    await ctx.deps.registry.setRepositoryPolicy(repo.id, text);
    return { registryId: repo.ref.account, repositoryName: repo.ref.name, policyText: text };
  },

  async GetRepositoryPolicy(ctx, input) {
    const repo = await repositoryOf(ctx, input, 'ecr:GetRepositoryPolicy');
    const text = await ctx.deps.registry.repositoryPolicy(repo.id);
    if (text === undefined) {
      throw new AwsError('RepositoryPolicyNotFoundException', `Repository policy does not exist for the repository with name '${repo.ref.name}' in the registry with id '${repo.ref.account}'`);
    }
    return { registryId: repo.ref.account, repositoryName: repo.ref.name, policyText: text };
  },

  async DeleteRepositoryPolicy(ctx, input) {
    const repo = await repositoryOf(ctx, input, 'ecr:DeleteRepositoryPolicy');
    const text = await ctx.deps.registry.repositoryPolicy(repo.id);
    if (text === undefined) {
      throw new AwsError('RepositoryPolicyNotFoundException', `Repository policy does not exist for the repository with name '${repo.ref.name}' in the registry with id '${repo.ref.account}'`);
    }
    await ctx.deps.registry.setRepositoryPolicy(repo.id, null);
    return { registryId: repo.ref.account, repositoryName: repo.ref.name, policyText: text };
  },

  async PutRegistryPolicy(ctx, input) {
    await ctx.authorize('ecr:PutRegistryPolicy', '*');
    const text = validated(input['policyText'], 'registry policy');
    await ctx.deps.identity.store.setRegistryPolicy(registryOf(ctx), text, Date.now());
    ctx.deps.identity.invalidate();
    return { registryId: registryOf(ctx), policyText: text };
  },

  async GetRegistryPolicy(ctx) {
    await ctx.authorize('ecr:GetRegistryPolicy', '*');
    const text = await ctx.deps.identity.store.getRegistryPolicy(registryOf(ctx));
    if (text === undefined) throw new AwsError('RegistryPolicyNotFoundException', `Registry policy does not exist in the registry with id '${registryOf(ctx)}'`);
    return { registryId: registryOf(ctx), policyText: text };
  },

  async DeleteRegistryPolicy(ctx) {
    await ctx.authorize('ecr:DeleteRegistryPolicy', '*');
    const text = await ctx.deps.identity.store.getRegistryPolicy(registryOf(ctx));
    if (text === undefined) throw new AwsError('RegistryPolicyNotFoundException', `Registry policy does not exist in the registry with id '${registryOf(ctx)}'`);
    await ctx.deps.identity.store.setRegistryPolicy(registryOf(ctx), null, Date.now());
    ctx.deps.identity.invalidate();
    return { registryId: registryOf(ctx), policyText: text };
  },
};
