import type {
  ReplicationDestinationSummary,
  ReplicationRequest,
  ReplicationTask,
  ReplicationTaskKey,
} from '../store/meta/replication-store.ts';
import { destinationKey, parseDestinationKey } from '../store/meta/replication-store.ts';

export { destinationKey, parseDestinationKey };
import type { RegistryContext } from './context.ts';

/** ECR's ReplicationRule, as PutReplicationConfiguration validated it. */
export interface ReplicationRule {
  destinations: Array<{ region: string; registryId: string }>;
  repositoryFilters?: Array<{ filter: string; filterType: 'PREFIX_MATCH' }>;
}

/** An account's replication configuration as the registry reads it. */
export interface ReplicationConfiguration {
  rules: ReplicationRule[];
  /** Per destination key: replication follows the pushes whose event sequence number is above this. */
  startSeqs: Record<string, number>;
  updatedAtMs: number;
}

/** Whether a rule's filters cover the repository (none: every repository; else any PREFIX_MATCH). */
export function ruleCovers(rule: ReplicationRule, repositoryName: string): boolean {
  const filters = rule.repositoryFilters ?? [];
  return filters.length === 0 || filters.some((f) => repositoryName.startsWith(f.filter));
}

/**
 * The destinations a repository's pushes go to under the configuration, each once (ECR: the
 * rules are unioned; a destination named by two rules that both cover the repository is one).
 */
export function destinationsFor(config: ReplicationConfiguration, repositoryName: string): string[] {
  const keys = new Set<string>();
  for (const rule of config.rules) {
    if (!ruleCovers(rule, repositoryName)) continue;
    for (const d of rule.destinations) keys.add(destinationKey(d.region, d.registryId));
  }
  return [...keys];
}

/**
 * Replication's part of the registry (docs/replication.md): each account's replication
 * configuration, and the tasks that are both an image's replication status and the queue the
 * replication workers lease from. The copying itself is src/replication/.
 */
export class Replications {
  private readonly ctx: RegistryContext;

  constructor(ctx: RegistryContext) {
    this.ctx = ctx;
  }

  /** The account's configuration; no rules when it never put one. */
  async configuration(accountId: string): Promise<ReplicationConfiguration> {
    const stored = await this.ctx.meta.replication.getConfiguration(accountId);
    if (!stored) return { rules: [], startSeqs: {}, updatedAtMs: 0 };
    return { rules: JSON.parse(stored.rules) as ReplicationRule[], startSeqs: JSON.parse(stored.startSeqs) as Record<string, number>, updatedAtMs: stored.updatedAtMs };
  }

  /**
   * Replaces the account's rules. A destination that is new starts with the pushes made from now
   * on (as in ECR: earlier images are for a backfill); one that stays keeps its start.
   */
  async putConfiguration(accountId: string, rules: ReplicationRule[]): Promise<ReplicationConfiguration> {
    const previous = await this.configuration(accountId);
    const lastSeq = await this.ctx.meta.events.lastSeq();
    const startSeqs: Record<string, number> = {};
    for (const rule of rules) {
      for (const d of rule.destinations) {
        const key = destinationKey(d.region, d.registryId);
        startSeqs[key] = previous.startSeqs[key] ?? lastSeq;
      }
    }
    const updatedAtMs = this.ctx.now();
    await this.ctx.meta.replication.putConfiguration(accountId, { rules: JSON.stringify(rules), startSeqs: JSON.stringify(startSeqs), updatedAtMs });
    return { rules, startSeqs, updatedAtMs };
  }

  /** Every account with at least one rule. */
  async configurations(): Promise<Array<{ accountId: string; config: ReplicationConfiguration }>> {
    const rows = await this.ctx.meta.replication.listConfigurations();
    return rows.map(({ accountId, config }) => ({
      accountId,
      config: { rules: JSON.parse(config.rules) as ReplicationRule[], startSeqs: JSON.parse(config.startSeqs) as Record<string, number>, updatedAtMs: config.updatedAtMs },
    }));
  }

  request(requests: ReplicationRequest[]): Promise<number> {
    return this.ctx.meta.replication.request(requests, this.ctx.now());
  }

  claim(owner: string, untilMs: number, limit: number): Promise<ReplicationTask[]> {
    return this.ctx.meta.replication.claim(owner, this.ctx.now(), untilMs, limit);
  }

  renew(key: ReplicationTaskKey, owner: string, untilMs: number): Promise<boolean> {
    return this.ctx.meta.replication.renew(key, owner, untilMs);
  }

  complete(task: ReplicationTask, owner: string, tagsDone: string[]): Promise<boolean> {
    return this.ctx.meta.replication.complete(task, owner, task.version, tagsDone, this.ctx.now());
  }

  release(task: ReplicationTask, owner: string): Promise<boolean> {
    return this.ctx.meta.replication.release(task, owner, this.ctx.now());
  }

  retry(task: ReplicationTask, owner: string, error: string, nextAttemptAtMs: number): Promise<boolean> {
    return this.ctx.meta.replication.retry(task, owner, { error, nextAttemptAtMs });
  }

  fail(task: ReplicationTask, owner: string, failureCode: string, error: string): Promise<boolean> {
    return this.ctx.meta.replication.fail(task, owner, task.version, { failureCode, error, nowMs: this.ctx.now() });
  }

  tasksOf(repositoryId: number, digest: string): Promise<ReplicationTask[]> {
    return this.ctx.meta.replication.tasksOf(repositoryId, digest);
  }

  summary(): Promise<ReplicationDestinationSummary[]> {
    return this.ctx.meta.replication.summary();
  }
}
