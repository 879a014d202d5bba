import { parsePolicy, PolicyError } from '../../iam/policy/index.ts';
import { ROOT_PREFIX, type TemplateFields } from '../../registry/creation-templates.ts';
import type { RepositoryTemplate } from '../../store/meta/meta-store.ts';
import { AwsError } from '../aws-error.ts';
import type { ActionContext, ActionHandler } from '../plane.ts';
import { afterToken, nextTokenAfter } from './common.ts';
import { checkedEncryption, checkedMutability, checkTags, encryptionOutput, MAX_TAGS } from './repositories.ts';

/**
 * Repository creation templates (ECR CreateRepositoryCreationTemplate and friends). A template
 * whose appliedFor includes CREATE_ON_PUSH creates the repositories its prefix covers when they
 * are first pushed to (Registry.repositoryForPush); REPLICATION and PULL_THROUGH_CACHE templates
 * are kept for those features.
 */

const invalid = (message: string) => new AwsError('InvalidParameterException', message);

/** ECR assumes a `/` at the end of every prefix, so `prod` and `prod/` are one template: stored as `prod`. */
function normalPrefix(prefix: string): string {
  return prefix === ROOT_PREFIX ? prefix : prefix.replace(/\/$/, '');
}

const MUTABLE_FIELDS = ['description', 'encryptionConfiguration', 'resourceTags', 'imageTagMutability', 'imageTagMutabilityExclusionFilters', 'repositoryPolicy', 'lifecyclePolicy', 'appliedFor', 'customRoleArn'] as const;

/**
 * The template `input` describes, over `base` for an update: members given replace the stored
 * ones; exclusion filters go with the mutability they were given with.
 */
function checkedTemplate(input: Record<string, any>, base?: TemplateFields): TemplateFields {
  const merged: Record<string, unknown> = { ...base };
  for (const field of MUTABLE_FIELDS) if (input[field] !== undefined) merged[field] = input[field];
  if (input['imageTagMutability'] !== undefined && input['imageTagMutabilityExclusionFilters'] === undefined) delete merged['imageTagMutabilityExclusionFilters'];
  const t = merged as Partial<TemplateFields>;

  const appliedFor = [...new Set(t.appliedFor ?? [])];
  if (appliedFor.length === 0) throw invalid("Invalid parameter at 'appliedFor' failed to satisfy constraint: 'appliedFor must name at least one of REPLICATION, PULL_THROUGH_CACHE, CREATE_ON_PUSH'");
  const mutability = checkedMutability(t.imageTagMutability, t.imageTagMutabilityExclusionFilters);
  const encryption = checkedEncryption(t.encryptionConfiguration);
  const resourceTags = checkTags(t.resourceTags ?? [], 'InvalidParameterException');
  if (resourceTags.length > MAX_TAGS) throw invalid(`Invalid parameter at 'resourceTags' failed to satisfy constraint: 'at most ${MAX_TAGS} tags'`);
  if (t.repositoryPolicy) {
    try {
      parsePolicy(t.repositoryPolicy, 'resource', 'repository policy', { maxLength: 10_240 });
    } catch (err) {
      if (err instanceof PolicyError) throw invalid(`Invalid parameter at 'repositoryPolicy' failed to satisfy constraint: 'Invalid repository policy provided': ${err.message}`);
      throw err;
    }
  }
  if (t.lifecyclePolicy) checkLifecyclePolicy(t.lifecyclePolicy);
  if (t.customRoleArn && !/^arn:aws[a-z-]*:iam::\d{12}:role\/.+$/.test(t.customRoleArn)) {
    throw invalid(`Invalid parameter at 'customRoleArn' failed to satisfy constraint: '${t.customRoleArn} is not an IAM role ARN'`);
  }
  return {
    ...(t.description ? { description: t.description } : {}),
    encryptionConfiguration: { encryptionType: encryption.encryptionType, ...(encryption.kmsKey ? { kmsKey: encryption.kmsKey } : {}) },
    resourceTags,
    imageTagMutability: mutability.imageTagMutability,
    ...(mutability.imageTagMutabilityExclusionFilters.length > 0 ? { imageTagMutabilityExclusionFilters: mutability.imageTagMutabilityExclusionFilters } : {}),
    ...(t.repositoryPolicy ? { repositoryPolicy: t.repositoryPolicy } : {}),
    ...(t.lifecyclePolicy ? { lifecyclePolicy: t.lifecyclePolicy } : {}),
    appliedFor,
    ...(t.customRoleArn ? { customRoleArn: t.customRoleArn } : {}),
  };
}

/** Lifecycle policies are evaluated by the lifecycle work; here the text must at least be a policy document with rules. */
function checkLifecyclePolicy(text: string): void {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch {
    throw invalid("Invalid parameter at 'lifecyclePolicy' failed to satisfy constraint: 'Lifecycle policy is not valid JSON'");
  }
  if (typeof doc !== 'object' || doc === null || !Array.isArray((doc as { rules?: unknown }).rules)) {
    throw invalid("Invalid parameter at 'lifecyclePolicy' failed to satisfy constraint: 'A lifecycle policy is an object with a rules array'");
  }
}

/** ECR's RepositoryCreationTemplate; a KMS template without a key names the account's AWS managed key, as repositories do. */
function templateOutput(ctx: ActionContext, t: RepositoryTemplate): Record<string, unknown> {
  const fields = t.template as unknown as TemplateFields;
  return {
    prefix: t.prefix,
    ...fields,
    ...(fields.encryptionConfiguration ? { encryptionConfiguration: encryptionOutput(ctx.deps.region, ctx.principal.accountId, fields.encryptionConfiguration) } : {}),
    createdAt: new Date(t.createdAtMs),
    updatedAt: new Date(t.updatedAtMs),
  };
}

async function findTemplate(ctx: ActionContext, prefix: string): Promise<RepositoryTemplate | undefined> {
  return ctx.deps.registry.repositoryTemplate(ctx.principal.accountId, prefix);
}

async function existingTemplate(ctx: ActionContext, prefix: string): Promise<RepositoryTemplate> {
  const found = await findTemplate(ctx, prefix);
  if (!found) throw new AwsError('TemplateNotFoundException', `The repository creation template with prefix '${prefix}' does not exist in the registry with id '${ctx.principal.accountId}'`);
  return found;
}

const DEFAULT_PAGE = 100;

export const templateActions: Record<string, ActionHandler> = {
  async CreateRepositoryCreationTemplate(ctx, input) {
    await ctx.authorize('ecr:CreateRepositoryCreationTemplate', '*');
    const account = ctx.principal.accountId;
    const prefix = normalPrefix(input['prefix']);
    const template = checkedTemplate(input);
    if (await findTemplate(ctx, prefix)) {
      throw new AwsError('TemplateAlreadyExistsException', `A repository creation template with prefix '${prefix}' already exists in the registry with id '${account}'`);
    }
    const now = Date.now();
    const record: RepositoryTemplate = { prefix, template: { ...template }, createdAtMs: now, updatedAtMs: now };
    await ctx.deps.registry.putRepositoryTemplate(account, record);
    return { registryId: account, repositoryCreationTemplate: templateOutput(ctx, record) };
  },

  async DescribeRepositoryCreationTemplates(ctx, input) {
    await ctx.authorize('ecr:DescribeRepositoryCreationTemplates', '*');
    const account = ctx.principal.accountId;
    const wanted = input['prefixes'] ? new Set((input['prefixes'] as string[]).map(normalPrefix)) : undefined;
    const after = afterToken(input['nextToken']);
    const limit = (input['maxResults'] as number | undefined) ?? DEFAULT_PAGE;
    const all = (await ctx.deps.registry.repositoryTemplates(account)).filter((t) => (!wanted || wanted.has(t.prefix)) && (after === undefined || t.prefix > after));
    const page = all.slice(0, limit);
    return {
      registryId: account,
      repositoryCreationTemplates: page.map((t) => templateOutput(ctx, t)),
      ...(all.length > limit ? { nextToken: nextTokenAfter(page[page.length - 1]!.prefix) } : {}),
    };
  },

  async UpdateRepositoryCreationTemplate(ctx, input) {
    await ctx.authorize('ecr:UpdateRepositoryCreationTemplate', '*');
    const account = ctx.principal.accountId;
    const existing = await existingTemplate(ctx, normalPrefix(input['prefix']));
    const template = checkedTemplate(input, existing.template as unknown as TemplateFields);
    const record: RepositoryTemplate = { ...existing, template: { ...template }, updatedAtMs: Math.max(Date.now(), existing.createdAtMs) };
    await ctx.deps.registry.putRepositoryTemplate(account, record);
    return { registryId: account, repositoryCreationTemplate: templateOutput(ctx, record) };
  },

  async DeleteRepositoryCreationTemplate(ctx, input) {
    await ctx.authorize('ecr:DeleteRepositoryCreationTemplate', '*');
    const account = ctx.principal.accountId;
    const existing = await existingTemplate(ctx, normalPrefix(input['prefix']));
    if (!(await ctx.deps.registry.deleteRepositoryTemplate(account, existing.prefix))) {
      throw new AwsError('TemplateNotFoundException', `The repository creation template with prefix '${existing.prefix}' does not exist in the registry with id '${account}'`);
    }
    return { registryId: account, repositoryCreationTemplate: templateOutput(ctx, existing) };
  },
};
