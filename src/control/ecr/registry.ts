import { AwsError } from '../aws-error.ts';
import { namesOnlyV1Actions } from './policies.ts';
import { describedReplication } from './replication.ts';
import type { ActionHandler } from '../plane.ts';

/** ECR's registry-wide operations: DescribeRegistry and the account settings. */

interface AccountSetting {
  /** The values PutAccountSetting accepts. */
  values: readonly string[];
  /** What GetAccountSetting answers before anything was put. */
  defaultValue: string;
  /** Why other values ECR documents are refused, when it does. */
  refusal?: string;
}

/**
 * The account settings ECR documents, as Berth offers them. BLOB_MOUNTING governs
 * cross-repository mounts on the data plane (Registry.mountBlob). REGISTRY_POLICY_SCOPE decides
 * what a registry policy may name: under V2 (the default) any ECR action, under V1 only
 * replication's and the pull-through cache's (PutRegistryPolicy). Basic scanning, when it comes,
 * is AWS_NATIVE (ECR has retired CLAIR).
 */
const ACCOUNT_SETTINGS: Readonly<Record<string, AccountSetting>> = {
  BLOB_MOUNTING: { values: ['ENABLED', 'DISABLED'], defaultValue: 'ENABLED' },
  BASIC_SCAN_TYPE_VERSION: { values: ['AWS_NATIVE'], defaultValue: 'AWS_NATIVE', refusal: 'CLAIR is retired in ECR and not offered by this registry' },
  REGISTRY_POLICY_SCOPE: { values: ['V1', 'V2'], defaultValue: 'V2' },
};

function settingNamed(name: string): AccountSetting {
  const setting = ACCOUNT_SETTINGS[name];
  if (!setting) {
    throw new AwsError('InvalidParameterException', `Invalid parameter at 'name' failed to satisfy constraint: 'The account setting ${name} is not supported; supported settings are ${Object.keys(ACCOUNT_SETTINGS).join(', ')}'`);
  }
  return setting;
}

export const registryActions: Record<string, ActionHandler> = {
  async DescribeRegistry(ctx) {
    await ctx.authorize('ecr:DescribeRegistry', '*');
    return { registryId: ctx.principal.accountId, replicationConfiguration: await describedReplication(ctx) };
  },

  async GetAccountSetting(ctx, input) {
    await ctx.authorize('ecr:GetAccountSetting', '*');
    const name = input['name'] as string;
    const setting = settingNamed(name);
    const value = (await ctx.deps.registry.accountSetting(ctx.principal.accountId, name)) ?? setting.defaultValue;
    return { name, value };
  },

  async PutAccountSetting(ctx, input) {
    await ctx.authorize('ecr:PutAccountSetting', '*');
    const name = input['name'] as string;
    const value = input['value'] as string;
    const setting = settingNamed(name);
    if (!setting.values.includes(value)) {
      const valid = setting.values.length === 1 ? `the only valid value is ${setting.values[0]}` : `valid values are ${setting.values.join(' and ')}`;
      throw new AwsError('InvalidParameterException', `Invalid parameter at 'value' failed to satisfy constraint: '${value} is not a valid value for ${name}: ${valid}${setting.refusal ? ` (${setting.refusal})` : ''}'`);
    }
    if (name === 'REGISTRY_POLICY_SCOPE' && value === 'V1') {
      // V1 limits what a registry policy may name; one that names more is kept, so the switch is refused.
      const current = await ctx.deps.identity.store.getRegistryPolicy(ctx.principal.accountId);
      if (current !== undefined && !namesOnlyV1Actions(current)) {
        throw new AwsError('InvalidParameterException', "Invalid parameter at 'value' failed to satisfy constraint: 'The registry policy names actions other than ecr:ReplicateImage, ecr:BatchImportUpstreamImage and ecr:CreateRepository, which scope V1 does not allow; change or delete it first'");
      }
    }
    await ctx.deps.registry.putAccountSetting(ctx.principal.accountId, name, value);
    return { name, value };
  },
};
