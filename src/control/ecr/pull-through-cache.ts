import { MAX_RULES, NEEDS_CREDENTIALS, ROOT, RuleError, normalizePrefix, normalizeUpstreamUrl, parseUpstreamUrl, upstreamKind } from '../../cache/rules.ts';
import type { CacheRule } from '../../store/meta/cache-store.ts';
import { AwsError } from '../aws-error.ts';
import type { ActionContext, ActionHandler } from '../plane.ts';
import { afterToken, nextTokenAfter } from './common.ts';

/**
 * ECR's pull-through cache rules (docs/pull-through-cache.md): Create, Describe, Update,
 * Delete and Validate. The caching itself is src/cache/; these only record, check and report.
 */

const invalid = (message: string) => new AwsError('InvalidParameterException', message);

function cache(ctx: ActionContext) {
  const found = ctx.deps.cache;
  if (!found) throw new AwsError('UnsupportedOperationException', 'The pull-through cache is turned off on this registry (cache.enabled=false).');
  return found;
}

/** The registry a call names: only the caller's own account has rules it may change. */
function accountOf(ctx: ActionContext, input: Record<string, any>): string {
  const account = ctx.principal.accountId;
  const registryId = input['registryId'] as string | undefined;
  if (registryId !== undefined && registryId !== account) {
    throw invalid(`Invalid parameter at 'registryId' failed to satisfy constraint: 'Pull through cache rules can only be managed in the caller's own registry (${account}), not ${registryId}'`);
  }
  return account;
}

function notFound(account: string, prefix: string): AwsError {
  return new AwsError('PullThroughCacheRuleNotFoundException', `The pull through cache rule with the repository prefix '${prefix}' does not exist in the registry with id '${account}'`);
}

async function existing(ctx: ActionContext, account: string, prefix: string): Promise<CacheRule> {
  const rule = await ctx.deps.registry.pullThroughCache.getRule(account, normalizePrefix(prefix));
  if (!rule) throw notFound(account, prefix);
  return rule;
}

/** A rule as the operations answer it; each output keeps the members its shape has (src/aws/json.ts drops the rest). */
function ruleOutput(rule: CacheRule): Record<string, unknown> {
  return {
    ecrRepositoryPrefix: rule.ecrRepositoryPrefix,
    upstreamRegistryUrl: rule.upstreamRegistryUrl,
    createdAt: new Date(rule.createdAtMs),
    registryId: rule.accountId,
    ...(rule.credentialArn ? { credentialArn: rule.credentialArn } : {}),
    ...(rule.customRoleArn ? { customRoleArn: rule.customRoleArn } : {}),
    upstreamRepositoryPrefix: rule.upstreamRepositoryPrefix,
    ...(rule.upstreamRegistry ? { upstreamRegistry: rule.upstreamRegistry } : {}),
    updatedAt: new Date(rule.updatedAtMs),
  };
}

/** A credentialArn must name a secret of the caller's account and region that the registry can read. */
async function checkCredentials(ctx: ActionContext, rule: CacheRule): Promise<void> {
  if (rule.credentialArn) {
    const parts = rule.credentialArn.split(':');
    if (parts[3] !== ctx.deps.region || parts[4] !== rule.accountId) {
      throw new AwsError('SecretNotFoundException', `The secret ${rule.credentialArn} is not in this registry's region and account (${ctx.deps.region}, ${rule.accountId}).`);
    }
  }
  try {
    const client = await cache(ctx).upstreams.fresh(rule);
    client.close();
  } catch (err) {
    const code = (err as { code?: string }).code;
    if (code === 'SecretNotFoundException' || code === 'UnableToAccessSecretException' || code === 'UnableToDecryptSecretValueException') throw new AwsError(code, (err as Error).message);
    throw err;
  }
}

export const pullThroughCacheActions: Record<string, ActionHandler> = {
  async CreatePullThroughCacheRule(ctx, input) {
    await ctx.authorize('ecr:CreatePullThroughCacheRule', '*');
    const account = accountOf(ctx, input);
    const prefix = normalizePrefix(input['ecrRepositoryPrefix'] as string);
    let url: string;
    let host: string;
    try {
      url = normalizeUpstreamUrl(input['upstreamRegistryUrl'] as string);
      host = parseUpstreamUrl(url).host;
    } catch (err) {
      if (err instanceof RuleError) throw new AwsError(err.code, err.message);
      throw err;
    }
    const inferred = upstreamKind(host);
    const given = input['upstreamRegistry'] as string | undefined;
    if (given !== undefined && inferred !== undefined && given !== inferred) {
      throw new AwsError('UnsupportedUpstreamRegistryException', `The upstream registry ${host} is ${inferred}, not ${given}.`);
    }
    const kind = given ?? inferred ?? null;
    const credentialArn = (input['credentialArn'] as string | undefined) ?? null;
    const customRoleArn = (input['customRoleArn'] as string | undefined) ?? null;
    if (kind !== null && NEEDS_CREDENTIALS.has(kind) && !credentialArn) {
      throw invalid(`Invalid parameter at 'credentialArn' failed to satisfy constraint: 'An upstream registry of type ${kind} needs credentials: a Secrets Manager secret named ecr-pullthroughcache/...'`);
    }
    if (customRoleArn && kind !== 'ecr') {
      throw invalid(`Invalid parameter at 'customRoleArn' failed to satisfy constraint: 'A custom role is only used with an ECR upstream (upstreamRegistry ecr)'`);
    }
    const upstreamPrefix = input['upstreamRepositoryPrefix'] === undefined ? ROOT : normalizePrefix(input['upstreamRepositoryPrefix'] as string);
    const now = Date.now();
    const rule: CacheRule = {
      accountId: account,
      ecrRepositoryPrefix: prefix,
      upstreamRegistryUrl: url,
      upstreamRegistry: kind,
      upstreamRepositoryPrefix: upstreamPrefix,
      credentialArn,
      customRoleArn,
      createdAtMs: now,
      updatedAtMs: now,
    };
    if (await ctx.deps.registry.pullThroughCache.getRule(account, prefix)) {
      throw new AwsError('PullThroughCacheRuleAlreadyExistsException', `A pull through cache rule with the repository prefix '${prefix}' already exists in the registry with id '${account}'`);
    }
    await checkCredentials(ctx, rule);
    const outcome = await ctx.deps.registry.pullThroughCache.createRule(rule, MAX_RULES);
    if (outcome === 'exists') {
      throw new AwsError('PullThroughCacheRuleAlreadyExistsException', `A pull through cache rule with the repository prefix '${prefix}' already exists in the registry with id '${account}'`);
    }
    if (outcome === 'limit') throw new AwsError('LimitExceededException', `The registry with id '${account}' already has ${MAX_RULES} pull through cache rules, the most it may have.`);
    cache(ctx).rulesChanged(account);
    return ruleOutput(rule);
  },

  async DescribePullThroughCacheRules(ctx, input) {
    await ctx.authorize('ecr:DescribePullThroughCacheRules', '*');
    const account = accountOf(ctx, input);
    const prefixes = input['ecrRepositoryPrefixes'] as string[] | undefined;
    let rules: CacheRule[];
    if (prefixes !== undefined) {
      rules = [];
      for (const p of prefixes) rules.push(await existing(ctx, account, p));
    } else {
      rules = await ctx.deps.registry.pullThroughCache.listRules(account);
    }
    const after = afterToken(input['nextToken'] as string | undefined);
    const limit = (input['maxResults'] as number | undefined) ?? 100;
    const rest = after === undefined ? rules : rules.filter((r) => r.ecrRepositoryPrefix > after);
    const page = rest.slice(0, limit);
    return {
      pullThroughCacheRules: page.map(ruleOutput),
      ...(rest.length > limit ? { nextToken: nextTokenAfter(page[page.length - 1]!.ecrRepositoryPrefix) } : {}),
    };
  },

  async UpdatePullThroughCacheRule(ctx, input) {
    await ctx.authorize('ecr:UpdatePullThroughCacheRule', '*');
    const account = accountOf(ctx, input);
    const rule = await existing(ctx, account, input['ecrRepositoryPrefix'] as string);
    const credentialArn = (input['credentialArn'] as string | undefined) ?? rule.credentialArn;
    const customRoleArn = (input['customRoleArn'] as string | undefined) ?? rule.customRoleArn;
    if (input['credentialArn'] === undefined && input['customRoleArn'] === undefined) {
      throw invalid("Invalid parameter at 'credentialArn' failed to satisfy constraint: 'Give a new credentialArn or customRoleArn'");
    }
    if (customRoleArn && rule.upstreamRegistry !== 'ecr') {
      throw invalid(`Invalid parameter at 'customRoleArn' failed to satisfy constraint: 'A custom role is only used with an ECR upstream (upstreamRegistry ecr)'`);
    }
    const now = Math.max(Date.now(), rule.updatedAtMs + 1);
    await checkCredentials(ctx, { ...rule, credentialArn, customRoleArn, updatedAtMs: now });
    const updated = await ctx.deps.registry.pullThroughCache.updateRule(account, rule.ecrRepositoryPrefix, { credentialArn, customRoleArn, updatedAtMs: now });
    if (!updated) throw notFound(account, rule.ecrRepositoryPrefix);
    cache(ctx).rulesChanged(account);
    return ruleOutput(updated);
  },

  async DeletePullThroughCacheRule(ctx, input) {
    await ctx.authorize('ecr:DeletePullThroughCacheRule', '*');
    const account = accountOf(ctx, input);
    const prefix = normalizePrefix(input['ecrRepositoryPrefix'] as string);
    const deleted = await ctx.deps.registry.pullThroughCache.deleteRule(account, prefix);
    if (!deleted) throw notFound(account, prefix);
    cache(ctx).rulesChanged(account);
    return ruleOutput(deleted);
  },

  async ValidatePullThroughCacheRule(ctx, input) {
    await ctx.authorize('ecr:ValidatePullThroughCacheRule', '*');
    const account = accountOf(ctx, input);
    const rule = await existing(ctx, account, input['ecrRepositoryPrefix'] as string);
    const result = await cache(ctx).validate(rule);
    return { ...ruleOutput(rule), isValid: result.isValid, ...(result.failure ? { failure: result.failure } : {}) };
  },
};
