import { destinationKey, parseDestinationKey, type ReplicationRule } from '../../registry/replication.ts';
import type { ReplicationTask } from '../../store/meta/replication-store.ts';
import { AwsError } from '../aws-error.ts';
import type { ActionContext, ActionHandler } from '../plane.ts';
import { registryOf, repositoryOf } from './common.ts';
import { resolveImageId } from './images.ts';
import { backfill } from '../../replication/backfill.ts';

/**
 * ECR's replication operations (docs/replication.md): PutReplicationConfiguration,
 * DescribeImageReplicationStatus, and the replication configuration in DescribeRegistry. The
 * copying is src/replication/; these only record and report.
 */

/** ECR's limit on the distinct destinations of one configuration. */
const MAX_DESTINATIONS = 25;

const invalid = (message: string) => new AwsError('InvalidParameterException', message);

/** The rules as given, checked as ECR checks them, in the shape they are stored and described. */
function checkedRules(ctx: ActionContext, rules: Array<Record<string, any>>): ReplicationRule[] {
  const known = new Set([ctx.deps.region, ...ctx.deps.replication.peerRegions]);
  const distinct = new Set<string>();
  return rules.map((rule, i) => {
    const destinations = (rule['destinations'] as Array<{ region: string; registryId: string }>).map((d) => ({ region: d.region, registryId: d.registryId }));
    if (destinations.length === 0) throw invalid(`Invalid parameter at 'replicationConfiguration.rules.${i + 1}.destinations' failed to satisfy constraint: 'A rule needs at least one destination'`);
    for (const d of destinations) {
      if (d.region === ctx.deps.region && d.registryId === ctx.principal.accountId) {
        throw invalid(`Invalid parameter at 'replicationConfiguration' failed to satisfy constraint: 'Replication destination cannot be the same as the source registry (${d.region}, ${d.registryId})'`);
      }
      if (!known.has(d.region)) {
        throw invalid(
          `Invalid parameter at 'replicationConfiguration' failed to satisfy constraint: 'Region ${d.region} is not a region this registry replicates to: it is ${ctx.deps.region} itself (other accounts), or a peer named in replication.peers (${[...ctx.deps.replication.peerRegions].join(', ') || 'none configured'})'`,
        );
      }
      distinct.add(destinationKey(d.region, d.registryId));
    }
    if (distinct.size > MAX_DESTINATIONS) throw invalid(`Invalid parameter at 'replicationConfiguration' failed to satisfy constraint: 'A replication configuration may name at most ${MAX_DESTINATIONS} distinct destinations'`);
    const filters = (rule['repositoryFilters'] as Array<{ filter: string; filterType: 'PREFIX_MATCH' }> | undefined)?.map((f) => ({ filter: f.filter, filterType: f.filterType }));
    return { destinations, ...(filters !== undefined ? { repositoryFilters: filters } : {}) };
  });
}

/** The replication status ECR reports: a task waiting or retrying is IN_PROGRESS. */
function statusOf(task: ReplicationTask): { region: string; registryId: string; status: string; failureCode?: string } {
  const { region, registryId } = parseDestinationKey(task.destination);
  if (task.status === 'COMPLETE') return { region, registryId, status: 'COMPLETE' };
  if (task.status === 'FAILED') return { region, registryId, status: 'FAILED', ...(task.failureCode ? { failureCode: task.failureCode } : {}) };
  return { region, registryId, status: 'IN_PROGRESS' };
}

export const replicationActions: Record<string, ActionHandler> = {
  /** Berth's extension: `berth replication backfill` as an API call, for the caller's account. */
  async BerthReplicationBackfill(ctx, input) {
    await ctx.authorize('ecr:BerthReplicationBackfill', '*');
    const repositoryName = input['repositoryName'] as string | undefined;
    if (repositoryName !== undefined) await repositoryOf(ctx, { repositoryName }, 'ecr:DescribeRepositories');
    const summary = await backfill(ctx.deps.registry, { accountId: ctx.principal.accountId, repository: repositoryName, dryRun: input['dryRun'] === true, retryFailed: input['retryFailed'] === true });
    if (!summary.dryRun && summary.queued + summary.retried > 0) ctx.deps.replication.wake?.();
    return { dryRun: summary.dryRun, repositories: summary.repositories, images: summary.images, queued: summary.queued, alreadyKnown: summary.alreadyKnown, retried: summary.retried };
  },


  async PutReplicationConfiguration(ctx, input) {
    await ctx.authorize('ecr:PutReplicationConfiguration', '*');
    const config = input['replicationConfiguration'] as { rules: Array<Record<string, any>> };
    const rules = checkedRules(ctx, config.rules);
    await ctx.deps.registry.replication.putConfiguration(ctx.principal.accountId, rules);
    return { replicationConfiguration: { rules } };
  },

  async DescribeImageReplicationStatus(ctx, input) {
    const repo = await repositoryOf(ctx, input, 'ecr:DescribeImageReplicationStatus');
    const id = input['imageId'] as { imageDigest?: string; imageTag?: string };
    const resolved = await resolveImageId(ctx, repo.id, id);
    if ('failure' in resolved) {
      if (resolved.failure.failureCode === 'ImageNotFound' || resolved.failure.failureCode === 'ImageTagDoesNotMatchDigest') {
        throw new AwsError(
          'ImageNotFoundException',
          `The image with imageId {imageDigest:'${id.imageDigest ?? 'null'}', imageTag:'${id.imageTag ?? 'null'}'} does not exist within the repository with name '${repo.ref.name}' in the registry with id '${registryOf(ctx, input)}'`,
        );
      }
      throw invalid(resolved.failure.failureReason);
    }
    const tasks = await ctx.deps.registry.replication.tasksOf(repo.id, resolved.digest);
    return {
      repositoryName: repo.ref.name,
      imageId: { imageDigest: resolved.digest, ...(resolved.tag !== undefined ? { imageTag: resolved.tag } : {}) },
      replicationStatuses: tasks.map(statusOf),
    };
  },
};

/** DescribeRegistry's replicationConfiguration for the caller's account. */
export async function describedReplication(ctx: ActionContext): Promise<{ rules: ReplicationRule[] }> {
  return { rules: (await ctx.deps.registry.replication.configuration(ctx.principal.accountId)).rules };
}
