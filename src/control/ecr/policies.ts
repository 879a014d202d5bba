import { loadModel } from '../../aws/model.ts';
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

/**
 * What a registry policy may name under ECR's registry policy scope V1 (the account setting
 * REGISTRY_POLICY_SCOPE): replication and pull-through cache. Under V2, the default, it may name
 * any ECR action and governs them all.
 */
const V1_ACTIONS = new Set(['ecr:replicateimage', 'ecr:batchimportupstreamimage', 'ecr:createrepository']);

let ecrActions: string[] | undefined;

/** Every ECR IAM action, lowercased: the API's operations and the permission-only actions. */
function allEcrActions(): string[] {
  ecrActions ??= [...Object.keys(loadModel('ecr').operations).map((o) => `ecr:${o}`), 'ecr:ReplicateImage', 'ecr:BatchImportUpstreamImage'].map((a) => a.toLowerCase());
  return ecrActions;
}

/**
 * Whether every statement of a (parsed, valid) registry policy names only V1's actions: each
 * Action pattern must match at least one of them and no other ECR action (so `ecr:*` is out),
 * and NotAction, which names everything else, is out too.
 */
export function namesOnlyV1Actions(text: string): boolean {
  const doc = JSON.parse(text) as { Statement: unknown };
  const statements = (Array.isArray(doc.Statement) ? doc.Statement : [doc.Statement]) as Record<string, unknown>[];
  for (const statement of statements) {
    if (statement['NotAction'] !== undefined) return false;
    const actions = Array.isArray(statement['Action']) ? statement['Action'] : [statement['Action']];
    for (const action of actions) {
      if (typeof action !== 'string') return false;
      // IAM action names match case-insensitively, with * and ? as wildcards.
      const re = new RegExp(`^${[...action.toLowerCase()].map((c) => (c === '*' ? '.*' : c === '?' ? '.' : c.replace(/[.+^${}()|[\]\\]/g, '\\$&'))).join('')}$`);
      const matched = allEcrActions().filter((a) => re.test(a));
      if (matched.length === 0 || matched.some((a) => !V1_ACTIONS.has(a))) return false;
    }
  }
  return true;
}

/** ECR's refusal of a registry policy that names other actions under scope V1, and why. */
export function invalidV1RegistryPolicy(): AwsError {
  return new AwsError(
    'InvalidParameterException',
    "Invalid parameter at 'PolicyText' failed to satisfy constraint: 'Invalid registry policy provided': under the registry policy scope V1 (account setting REGISTRY_POLICY_SCOPE) a registry policy may name only ecr:ReplicateImage, ecr:BatchImportUpstreamImage and ecr:CreateRepository; put the setting to V2 to name other actions",
  );
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
    await ctx.deps.registry.setRepositoryPolicy(repo.repository, text);
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
    await ctx.deps.registry.setRepositoryPolicy(repo.repository, null);
    return { registryId: repo.ref.account, repositoryName: repo.ref.name, policyText: text };
  },

  async PutRegistryPolicy(ctx, input) {
    await ctx.authorize('ecr:PutRegistryPolicy', '*');
    const text = validated(input['policyText'], 'registry policy');
    if ((await ctx.deps.registry.accountSetting(registryOf(ctx), 'REGISTRY_POLICY_SCOPE')) === 'V1' && !namesOnlyV1Actions(text)) throw invalidV1RegistryPolicy();
    await ctx.deps.registry.setRegistryPolicy(registryOf(ctx), text);
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
    await ctx.deps.registry.setRegistryPolicy(registryOf(ctx), null);
    return { registryId: registryOf(ctx), policyText: text };
  },
};
