import { isRegistryError } from '../../errors/catalogue.ts';
import { awsManagedEcrKeyId, kmsKeyArn, repositoryArn } from '../../iam/ids.ts';
import { isValidRepositoryName, type RepoRef } from '../../registry/names.ts';
import type { Repository, RepositorySettings, TagMutability } from '../../store/meta/meta-store.ts';
import { AwsError } from '../aws-error.ts';
import type { ActionContext, ActionHandler } from '../plane.ts';
import { afterToken, nextTokenAfter, registryOf, repositoryNotFound, repositoryOf, repositoryUri } from './common.ts';

/**
 * ECR's repository operations: CreateRepository, DescribeRepositories, DeleteRepository, the
 * tag-mutability and scanning settings, and resource tags on repositories.
 */

type Tag = { Key: string; Value: string };
type ExclusionFilter = RepositorySettings['imageTagMutabilityExclusionFilters'][number];

const invalid = (message: string) => new AwsError('InvalidParameterException', message);

/**
 * Exclusion filters go with the *_WITH_EXCLUSION mutabilities only, and those need at least one
 * (ECR's rule; the model already bounds the list to 1..5 and checks each filter's pattern).
 */
export function checkedMutability(mutability: TagMutability | undefined, filters: ExclusionFilter[] | undefined): Pick<RepositorySettings, 'imageTagMutability' | 'imageTagMutabilityExclusionFilters'> {
  const imageTagMutability = mutability ?? 'MUTABLE';
  const withExclusion = imageTagMutability.endsWith('_WITH_EXCLUSION');
  if (withExclusion && !filters?.length) {
    throw invalid(`Invalid parameter at 'imageTagMutabilityExclusionFilters' failed to satisfy constraint: 'imageTagMutabilityExclusionFilters are required when imageTagMutability is ${imageTagMutability}'`);
  }
  if (!withExclusion && filters?.length) {
    throw invalid(`Invalid parameter at 'imageTagMutabilityExclusionFilters' failed to satisfy constraint: 'imageTagMutabilityExclusionFilters can only be given with MUTABLE_WITH_EXCLUSION or IMMUTABLE_WITH_EXCLUSION, not ${imageTagMutability}'`);
  }
  return { imageTagMutability, imageTagMutabilityExclusionFilters: filters ?? [] };
}

/**
 * The encryptionConfiguration ECR reports: a KMS or KMS_DSSE repository (or creation template)
 * given no key uses the account's AWS managed key `aws/ecr`, and ECR names that key's ARN in
 * kmsKey. Berth derives the key from the account (awsManagedEcrKeyId), so stored settings keep
 * "no key" and every answer names the same one.
 */
export function encryptionOutput(region: string, accountId: string, config: { encryptionType: RepositorySettings['encryptionType']; kmsKey?: string | null }): { encryptionType: RepositorySettings['encryptionType']; kmsKey?: string } {
  if (config.kmsKey) return { encryptionType: config.encryptionType, kmsKey: config.kmsKey };
  if (config.encryptionType === 'AES256') return { encryptionType: 'AES256' };
  return { encryptionType: config.encryptionType, kmsKey: kmsKeyArn(region, accountId, awsManagedEcrKeyId(region, accountId)) };
}

/** AES256 takes no key; KMS and KMS_DSSE take one or use the account's AWS managed key (encryptionOutput). */
export function checkedEncryption(config: { encryptionType: RepositorySettings['encryptionType']; kmsKey?: string } | undefined): Pick<RepositorySettings, 'encryptionType' | 'kmsKey'> {
  if (!config) return { encryptionType: 'AES256', kmsKey: null };
  const kmsKey = config.kmsKey || null;
  if (config.encryptionType === 'AES256' && kmsKey !== null) {
    throw invalid("Invalid parameter at 'encryptionConfiguration.kmsKey' failed to satisfy constraint: 'kmsKey can only be given when encryptionType is KMS or KMS_DSSE'");
  }
  return { encryptionType: config.encryptionType, kmsKey };
}

export const MAX_TAGS = 50;
// AWS's tag rules: letters, digits, spaces and + - = . _ : / @; keys of 1 to 128 characters that do
// not start with `aws:`, values of up to 256.
const TAG_CHARS = /^[\p{L}\p{Z}\p{N}_.:/=+\-@]*$/u;

/** Throws `code` (InvalidTagParameterException, or InvalidParameterException for templates) for a tag AWS refuses. */
export function checkTagKey(key: string, code = 'InvalidTagParameterException'): void {
  const length = [...key].length;
  if (length < 1 || length > 128) throw new AwsError(code, `The tag key '${key}' must be 1 to 128 characters long.`);
  if (!TAG_CHARS.test(key)) throw new AwsError(code, `The tag key '${key}' may contain only letters, digits, spaces and + - = . _ : / @.`);
  if (key.toLowerCase().startsWith('aws:')) throw new AwsError(code, `The tag key '${key}' uses the prefix 'aws:', which is reserved for AWS.`);
}

export function checkTags(tags: Tag[], code = 'InvalidTagParameterException'): Tag[] {
  const seen = new Set<string>();
  for (const { Key, Value } of tags) {
    checkTagKey(Key, code);
    if ([...Value].length > 256) throw new AwsError(code, `The value of tag '${Key}' is longer than 256 characters.`);
    if (!TAG_CHARS.test(Value)) throw new AwsError(code, `The value of tag '${Key}' may contain only letters, digits, spaces and + - = . _ : / @.`);
    if (seen.has(Key)) throw new AwsError(code, `The tag key '${Key}' is given more than once.`);
    seen.add(Key);
  }
  return tags.map(({ Key, Value }) => ({ Key, Value }));
}

function tooManyTags(count: number): AwsError {
  return new AwsError('TooManyTagsException', `A repository can have at most ${MAX_TAGS} tags; this request would give it ${count}.`);
}

/** ECR's Repository structure. */
export async function repositoryOutput(ctx: ActionContext, repository: Repository, settings: RepositorySettings): Promise<Record<string, unknown>> {
  return {
    repositoryArn: repositoryArn(ctx.deps.region, repository.accountId, repository.name),
    registryId: repository.accountId,
    repositoryName: repository.name,
    repositoryUri: await repositoryUri(ctx, repository.accountId, repository.name),
    createdAt: new Date(repository.createdAtMs),
    imageTagMutability: settings.imageTagMutability,
    ...(settings.imageTagMutabilityExclusionFilters.length > 0 ? { imageTagMutabilityExclusionFilters: settings.imageTagMutabilityExclusionFilters } : {}),
    imageScanningConfiguration: { scanOnPush: settings.scanOnPush },
    encryptionConfiguration: encryptionOutput(ctx.deps.region, repository.accountId, settings),
  };
}

async function settingsOf(ctx: ActionContext, repository: Repository): Promise<RepositorySettings> {
  try {
    return await ctx.deps.registry.repositorySettings(repository);
  } catch (err) {
    if (isRegistryError(err, 'NameUnknown')) throw repositoryNotFound({ account: repository.accountId, name: repository.name });
    throw err;
  }
}

const ARN = /^arn:aws[a-z-]*:ecr:([a-z0-9-]+):(\d{12}):repository\/(.+)$/;

/** The repository a resource ARN names (`arn:aws:ecr:REGION:ACCOUNT:repository/NAME`), after asking IAM about `action` on it. */
async function repositoryAtArn(ctx: ActionContext, arn: string, action: string) {
  const m = ARN.exec(arn);
  if (!m || !isValidRepositoryName(m[3]!)) {
    throw invalid(`Invalid parameter at 'resourceArn' failed to satisfy constraint: 'Invalid ARN': ${arn} is not a repository ARN; expected arn:aws:ecr:${ctx.deps.region}:ACCOUNT:repository/NAME`);
  }
  if (m[1] !== ctx.deps.region) {
    throw invalid(`Invalid parameter at 'resourceArn' failed to satisfy constraint: 'The ARN ${arn} is in region ${m[1]}; this registry serves ${ctx.deps.region}'`);
  }
  return repositoryOf(ctx, { registryId: m[2], repositoryName: m[3] }, action);
}

const DEFAULT_PAGE = 100;

export const repositoryActions: Record<string, ActionHandler> = {
  async CreateRepository(ctx, input) {
    const ref: RepoRef = { account: registryOf(ctx, input), name: input['repositoryName'] };
    await ctx.authorize('ecr:CreateRepository', repositoryArn(ctx.deps.region, ref.account, ref.name), {
      resourceAccountId: ref.account,
      resourcePolicies: await ctx.deps.identity.repositoryPolicies(ref),
    });
    if (!(await ctx.deps.identity.accountExists(ref.account))) {
      throw invalid(`Invalid parameter at 'registryId' failed to satisfy constraint: 'The registry with id '${ref.account}' does not exist'`);
    }
    const tags = checkTags(input['tags'] ?? []);
    if (tags.length > MAX_TAGS) throw tooManyTags(tags.length);
    const settings: RepositorySettings = {
      ...checkedMutability(input['imageTagMutability'], input['imageTagMutabilityExclusionFilters']),
      scanOnPush: input['imageScanningConfiguration']?.['scanOnPush'] === true,
      ...checkedEncryption(input['encryptionConfiguration']),
      tags,
      lifecyclePolicy: null,
    };
    const { repository, created } = await ctx.deps.registry.createRepository(ref, { settings });
    if (!created) {
      throw new AwsError('RepositoryAlreadyExistsException', `The repository with name '${ref.name}' already exists in the registry with id '${ref.account}'`);
    }
    return { repository: await repositoryOutput(ctx, repository, settings) };
  },

  async DescribeRepositories(ctx, input) {
    const account = registryOf(ctx, input);
    const names = input['repositoryNames'] as string[] | undefined;
    if (names) {
      // ECR: "This option cannot be used when you specify repositories with repositoryNames."
      for (const member of ['maxResults', 'nextToken']) {
        if (input[member] !== undefined) throw invalid(`Invalid parameter at '${member}' failed to satisfy constraint: '${member} cannot be used with repositoryNames'`);
      }
      const repositories: Record<string, unknown>[] = [];
      for (const name of new Set(names)) {
        const { repository } = await repositoryOf(ctx, { registryId: account, repositoryName: name }, 'ecr:DescribeRepositories');
        repositories.push(await repositoryOutput(ctx, repository, await settingsOf(ctx, repository)));
      }
      return { repositories };
    }
    // The list form shows the repositories the caller may describe, each asked on its own ARN;
    // a caller that may describe none is refused (Registry.listRepositories).
    const page = await ctx.deps.registry.listRepositories(ctx.caller, account, { after: afterToken(input['nextToken']), limit: input['maxResults'] ?? DEFAULT_PAGE });
    recordListing(ctx, account);
    const repositories: Record<string, unknown>[] = [];
    for (const name of page.names) {
      const repository = await ctx.deps.registry.findRepository({ account, name });
      if (repository) repositories.push(await repositoryOutput(ctx, repository, await settingsOf(ctx, repository)));
    }
    return { repositories, ...(page.more ? { nextToken: nextTokenAfter(page.names[page.names.length - 1]!) } : {}) };
  },

  async DeleteRepository(ctx, input) {
    const { ref, repository } = await repositoryOf(ctx, input, 'ecr:DeleteRepository');
    const settings = await settingsOf(ctx, repository);
    const outcome = await ctx.deps.registry.deleteRepository(repository, { force: input['force'] === true });
    if (outcome === 'not-empty') {
      throw new AwsError('RepositoryNotEmptyException', `The repository with name '${ref.name}' in registry with id '${ref.account}' cannot be deleted because it still contains images`);
    }
    if (outcome === 'missing') throw repositoryNotFound(ref);
    // The deleted repository's policy must not outlive it in the policy caches.
    ctx.deps.identity.invalidate();
    return { repository: await repositoryOutput(ctx, repository, settings) };
  },

  async PutImageTagMutability(ctx, input) {
    const { ref, id } = await repositoryOf(ctx, input, 'ecr:PutImageTagMutability');
    const mutability = checkedMutability(input['imageTagMutability'], input['imageTagMutabilityExclusionFilters']);
    if (!(await ctx.deps.registry.updateRepositorySettings(id, mutability))) throw repositoryNotFound(ref);
    return {
      registryId: ref.account,
      repositoryName: ref.name,
      imageTagMutability: mutability.imageTagMutability,
      ...(mutability.imageTagMutabilityExclusionFilters.length > 0 ? { imageTagMutabilityExclusionFilters: mutability.imageTagMutabilityExclusionFilters } : {}),
    };
  },

  async PutImageScanningConfiguration(ctx, input) {
    const { ref, id } = await repositoryOf(ctx, input, 'ecr:PutImageScanningConfiguration');
    const scanOnPush = input['imageScanningConfiguration']?.['scanOnPush'] === true;
    if (!(await ctx.deps.registry.updateRepositorySettings(id, { scanOnPush }))) throw repositoryNotFound(ref);
    return { registryId: ref.account, repositoryName: ref.name, imageScanningConfiguration: { scanOnPush } };
  },

  async TagResource(ctx, input) {
    const { ref, repository } = await repositoryAtArn(ctx, input['resourceArn'], 'ecr:TagResource');
    const given = checkTags(input['tags']);
    const tags = new Map((await settingsOf(ctx, repository)).tags.map((t) => [t.Key, t.Value]));
    for (const t of given) tags.set(t.Key, t.Value);
    if (tags.size > MAX_TAGS) throw tooManyTags(tags.size);
    const updated = await ctx.deps.registry.updateRepositorySettings(repository.id, { tags: [...tags].map(([Key, Value]) => ({ Key, Value })) });
    if (!updated) throw repositoryNotFound(ref);
    return {};
  },

  async UntagResource(ctx, input) {
    const { ref, repository } = await repositoryAtArn(ctx, input['resourceArn'], 'ecr:UntagResource');
    const keys = new Set(input['tagKeys'] as string[]);
    for (const key of keys) checkTagKey(key);
    const tags = (await settingsOf(ctx, repository)).tags.filter((t) => !keys.has(t.Key));
    if (!(await ctx.deps.registry.updateRepositorySettings(repository.id, { tags }))) throw repositoryNotFound(ref);
    return {};
  },

  async ListTagsForResource(ctx, input) {
    const { repository } = await repositoryAtArn(ctx, input['resourceArn'], 'ecr:ListTagsForResource');
    return { tags: (await settingsOf(ctx, repository)).tags };
  },
};

/** One audit line for a listing, whose entries are filtered per repository without a line each (as the data plane's catalog). */
export function recordListing(ctx: ActionContext, account: string): void {
  ctx.deps.audit.record({
    atMs: Date.now(),
    requestId: ctx.requestId,
    plane: 'ecr',
    accountId: account,
    principal: ctx.principal.arn,
    accessKeyId: ctx.principal.accessKeyId ?? null,
    action: 'ecr:DescribeRepositories',
    resource: '*',
    decision: 'allow',
    policy: 'listing filtered per repository',
    sourceIp: ctx.caller.sourceIp,
    userAgent: ctx.caller.userAgent ?? null,
    errorCode: null,
  });
}
