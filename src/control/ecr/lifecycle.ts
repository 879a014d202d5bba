import type { LifecycleDecision } from '../../lifecycle/evaluate.ts';
import { LifecyclePolicyError, parseLifecyclePolicy } from '../../lifecycle/policy.ts';
import { evaluateRepository } from '../../lifecycle/runner.ts';
import type { LifecyclePolicyRecord, LifecyclePreview } from '../../store/meta/lifecycle-store.ts';
import { AwsError } from '../aws-error.ts';
import type { ActionContext, ActionHandler } from '../plane.ts';
import { afterToken, nextTokenAfter, repositoryOf } from './common.ts';

/**
 * ECR lifecycle policies (docs/lifecycle.md): stored per repository, applied by the scheduled
 * `lifecycle` job and by `berth lifecycle run`, previewed on demand. Validation and evaluation
 * live in src/lifecycle/.
 */

/** A preview still IN_PROGRESS after this long was lost with the node computing it. */
const PREVIEW_STALE_MS = 5 * 60_000;

interface PreviewEntry {
  imageTags: string[];
  imageDigest: string;
  imagePushedAtMs: number;
  appliedRulePriority: number;
}

function validated(text: unknown): string {
  try {
    parseLifecyclePolicy(text as string);
  } catch (err) {
    if (err instanceof LifecyclePolicyError) throw new AwsError('InvalidParameterException', err.message);
    throw err;
  }
  return text as string;
}

/**
 * GetLifecyclePolicy's and DeleteLifecyclePolicy's answer. ECR always sends lastEvaluatedAt: a
 * policy that has not run yet reports the epoch (1970-01-01T00:00:00Z), and tools read the field
 * without checking for it.
 */
function policyOutput(ref: { account: string; name: string }, policy: LifecyclePolicyRecord): Record<string, unknown> {
  return {
    registryId: ref.account,
    repositoryName: ref.name,
    lifecyclePolicyText: policy.text,
    lastEvaluatedAt: new Date(policy.lastEvaluatedAtMs ?? 0),
  };
}

function notFound(ref: { account: string; name: string }): AwsError {
  return new AwsError('LifecyclePolicyNotFoundException', `Lifecycle policy does not exist for the repository with name '${ref.name}' in the registry with id '${ref.account}'`);
}

/** A run deletes every decision and its dependents; the preview lists each of them. */
function previewEntries(decisions: LifecycleDecision[], pushedAt: Map<string, { tags: string[]; pushedAtMs: number }>): PreviewEntry[] {
  const entries: PreviewEntry[] = [];
  for (const d of decisions) {
    entries.push({ imageTags: d.tags, imageDigest: d.digest, imagePushedAtMs: d.pushedAtMs, appliedRulePriority: d.rulePriority });
    for (const digest of d.dependents) {
      const image = pushedAt.get(digest);
      entries.push({ imageTags: image?.tags ?? [], imageDigest: digest, imagePushedAtMs: image?.pushedAtMs ?? d.pushedAtMs, appliedRulePriority: d.rulePriority });
    }
  }
  return entries;
}

async function computePreview(ctx: ActionContext, repositoryId: number, text: string, startedAtMs: number): Promise<void> {
  const { registry } = ctx.deps;
  let preview: LifecyclePreview;
  try {
    const evaluated = await evaluateRepository({ registry, region: ctx.deps.region, log: ctx.deps.registry.log }, repositoryId, text);
    const decisions = evaluated.decisions;
    const images = new Map(evaluated.images.map((i) => [i.digest, i]));
    preview = { status: 'COMPLETE', policyText: text, result: previewEntries(decisions, images), startedAtMs, finishedAtMs: Date.now() };
  } catch (err) {
    registry.log.error({ err }, 'lifecycle policy preview failed');
    preview = { status: 'FAILED', policyText: text, result: null, startedAtMs, finishedAtMs: Date.now() };
  }
  await registry.putLifecyclePreview(repositoryId, preview);
}

export const lifecycleActions: Record<string, ActionHandler> = {
  async PutLifecyclePolicy(ctx, input) {
    const repo = await repositoryOf(ctx, input, 'ecr:PutLifecyclePolicy');
    const text = validated(input['lifecyclePolicyText']);
    await ctx.deps.registry.putLifecyclePolicy(repo.repository, text);
    return { registryId: repo.ref.account, repositoryName: repo.ref.name, lifecyclePolicyText: text };
  },

  async GetLifecyclePolicy(ctx, input) {
    const repo = await repositoryOf(ctx, input, 'ecr:GetLifecyclePolicy');
    const policy = await ctx.deps.registry.lifecyclePolicy(repo.id);
    if (!policy) throw notFound(repo.ref);
    return policyOutput(repo.ref, policy);
  },

  async DeleteLifecyclePolicy(ctx, input) {
    const repo = await repositoryOf(ctx, input, 'ecr:DeleteLifecyclePolicy');
    const policy = await ctx.deps.registry.lifecyclePolicy(repo.id);
    if (!policy || !(await ctx.deps.registry.deleteLifecyclePolicy(repo.repository))) throw notFound(repo.ref);
    return policyOutput(repo.ref, policy);
  },

  async StartLifecyclePolicyPreview(ctx, input) {
    const repo = await repositoryOf(ctx, input, 'ecr:StartLifecyclePolicyPreview');
    const { registry } = ctx.deps;
    let text = input['lifecyclePolicyText'] as string | undefined;
    if (text === undefined) {
      const stored = await registry.lifecyclePolicy(repo.id);
      if (!stored) throw notFound(repo.ref);
      text = stored.text;
    }
    validated(text);
    const current = await registry.lifecyclePreview(repo.id);
    const now = Date.now();
    if (current?.status === 'IN_PROGRESS' && now - current.startedAtMs < PREVIEW_STALE_MS) {
      throw new AwsError('LifecyclePolicyPreviewInProgressException', `The previous lifecycle policy preview request has not completed for the repository with name '${repo.ref.name}' in the registry with id '${repo.ref.account}'`);
    }
    await registry.putLifecyclePreview(repo.id, { status: 'IN_PROGRESS', policyText: text, result: null, startedAtMs: now, finishedAtMs: null });
    // As in ECR, the preview is computed after the call returns; GetLifecyclePolicyPreview says when it is done.
    void computePreview(ctx, repo.id, text, now).catch((err: unknown) => ctx.deps.registry.log.error({ err }, 'could not store a lifecycle policy preview'));
    return { registryId: repo.ref.account, repositoryName: repo.ref.name, lifecyclePolicyText: text, status: 'IN_PROGRESS' };
  },

  async GetLifecyclePolicyPreview(ctx, input) {
    const repo = await repositoryOf(ctx, input, 'ecr:GetLifecyclePolicyPreview');
    const preview = await ctx.deps.registry.lifecyclePreview(repo.id);
    if (!preview) {
      throw new AwsError('LifecyclePolicyPreviewNotFoundException', `There is no dry run for the repository with name '${repo.ref.name}' in the registry with id '${repo.ref.account}'`);
    }
    const imageIds = input['imageIds'] as { imageDigest?: string; imageTag?: string }[] | undefined;
    if (imageIds !== undefined && (input['maxResults'] !== undefined || input['nextToken'] !== undefined)) {
      throw new AwsError('InvalidParameterException', "Invalid parameter at 'imageIds' failed to satisfy constraint: 'maxResults and nextToken cannot be used with imageIds'");
    }
    const status = preview.status === 'IN_PROGRESS' && Date.now() - preview.startedAtMs >= PREVIEW_STALE_MS ? 'FAILED' : preview.status;
    const base = { registryId: repo.ref.account, repositoryName: repo.ref.name, lifecyclePolicyText: preview.policyText, status };
    if (status !== 'COMPLETE') return { ...base, previewResults: [] };

    let entries = (preview.result as PreviewEntry[]) ?? [];
    const total = entries.length;
    const tagStatus = (input['filter'] as { tagStatus?: string } | undefined)?.tagStatus;
    if (tagStatus === 'TAGGED') entries = entries.filter((e) => e.imageTags.length > 0);
    else if (tagStatus === 'UNTAGGED') entries = entries.filter((e) => e.imageTags.length === 0);
    if (imageIds) {
      entries = entries.filter((e) => imageIds.some((id) => (id.imageDigest === undefined || id.imageDigest === e.imageDigest) && (id.imageTag === undefined || e.imageTags.includes(id.imageTag))));
    }
    const limit = (input['maxResults'] as number | undefined) ?? 100;
    const after = afterToken(input['nextToken']);
    const start = after === undefined ? 0 : Number(after);
    if (!Number.isSafeInteger(start) || start < 0) throw new AwsError('InvalidParameterException', "Invalid parameter at 'nextToken' failed to satisfy constraint: 'The nextToken is not one this registry returned; start again without it'");
    const page = entries.slice(start, start + limit);
    return {
      ...base,
      previewResults: page.map((e) => ({
        imageTags: e.imageTags,
        imageDigest: e.imageDigest,
        imagePushedAt: new Date(e.imagePushedAtMs),
        action: { type: 'EXPIRE' },
        appliedRulePriority: e.appliedRulePriority,
      })),
      ...(start + limit < entries.length ? { nextToken: nextTokenAfter(String(start + limit)) } : {}),
      summary: { expiringImageTotalCount: total },
    };
  },
};
