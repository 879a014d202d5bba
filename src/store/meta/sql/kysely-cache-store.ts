import { sql, type Selectable } from 'kysely';
import type { CacheRule, CacheStore } from '../cache-store.ts';
import { KyselyPart, type Db } from './locks.ts';
import type { Schema } from './schema.ts';

type RuleRow = Selectable<Schema['pull_through_cache_rules']>;

function toRule(r: RuleRow): CacheRule {
  return {
    accountId: r.account_id,
    ecrRepositoryPrefix: r.ecr_repository_prefix,
    upstreamRegistryUrl: r.upstream_registry_url,
    upstreamRegistry: r.upstream_registry,
    upstreamRepositoryPrefix: r.upstream_repository_prefix,
    credentialArn: r.credential_arn,
    customRoleArn: r.custom_role_arn,
    createdAtMs: Number(r.created_at),
    updatedAtMs: Number(r.updated_at),
  };
}

/** The pull-through cache's state over Kysely; the same SQL on SQLite and PostgreSQL. */
export class KyselyCacheStore extends KyselyPart implements CacheStore {
  async listRules(accountId: string): Promise<CacheRule[]> {
    const rows = await this.db.selectFrom('pull_through_cache_rules').selectAll().where('account_id', '=', accountId).orderBy('ecr_repository_prefix').execute();
    return rows.map(toRule);
  }

  async getRule(accountId: string, ecrRepositoryPrefix: string): Promise<CacheRule | undefined> {
    const r = await this.db.selectFrom('pull_through_cache_rules').selectAll().where('account_id', '=', accountId).where('ecr_repository_prefix', '=', ecrRepositoryPrefix).executeTakeFirst();
    return r && toRule(r);
  }

  async createRule(rule: CacheRule, limit: number): Promise<'created' | 'exists' | 'limit'> {
    return this.inTransaction(async (db) => {
      // Under READ COMMITTED, concurrent creations of different prefixes would each count below the
      // limit: one at a time per account (SQLite's single write lock already serialises them).
      if (this.dialect === 'postgres') await sql`select pg_advisory_xact_lock(hashtextextended(${`pull_through_cache_rules/${rule.accountId}`}, 0))`.execute(db);
      if (await this.existsIn(db, rule.accountId, rule.ecrRepositoryPrefix)) return 'exists';
      const { n } = await db.selectFrom('pull_through_cache_rules').select((eb) => eb.fn.countAll<number | string>().as('n')).where('account_id', '=', rule.accountId).executeTakeFirstOrThrow();
      if (Number(n) >= limit) return 'limit';
      const result = await db
        .insertInto('pull_through_cache_rules')
        .values({
          account_id: rule.accountId,
          ecr_repository_prefix: rule.ecrRepositoryPrefix,
          upstream_registry_url: rule.upstreamRegistryUrl,
          upstream_registry: rule.upstreamRegistry,
          upstream_repository_prefix: rule.upstreamRepositoryPrefix,
          credential_arn: rule.credentialArn,
          custom_role_arn: rule.customRoleArn,
          created_at: rule.createdAtMs,
          updated_at: rule.updatedAtMs,
        })
        .onConflict((oc) => oc.columns(['account_id', 'ecr_repository_prefix']).doNothing())
        .executeTakeFirst();
      return Number(result.numInsertedOrUpdatedRows ?? 0) > 0 ? 'created' : 'exists';
    });
  }

  private async existsIn(db: Db, accountId: string, prefix: string): Promise<boolean> {
    const r = await db.selectFrom('pull_through_cache_rules').select('account_id').where('account_id', '=', accountId).where('ecr_repository_prefix', '=', prefix).executeTakeFirst();
    return r !== undefined;
  }

  async updateRule(accountId: string, ecrRepositoryPrefix: string, patch: { credentialArn: string | null; customRoleArn: string | null; updatedAtMs: number }): Promise<CacheRule | undefined> {
    const result = await this.db
      .updateTable('pull_through_cache_rules')
      .set({ credential_arn: patch.credentialArn, custom_role_arn: patch.customRoleArn, updated_at: patch.updatedAtMs })
      .where('account_id', '=', accountId)
      .where('ecr_repository_prefix', '=', ecrRepositoryPrefix)
      .executeTakeFirst();
    if (Number(result.numUpdatedRows) === 0) return undefined;
    return this.getRule(accountId, ecrRepositoryPrefix);
  }

  async deleteRule(accountId: string, ecrRepositoryPrefix: string): Promise<CacheRule | undefined> {
    return this.inTransaction(async (db) => {
      const r = await db.selectFrom('pull_through_cache_rules').selectAll().where('account_id', '=', accountId).where('ecr_repository_prefix', '=', ecrRepositoryPrefix).executeTakeFirst();
      if (!r) return undefined;
      const result = await db.deleteFrom('pull_through_cache_rules').where('account_id', '=', accountId).where('ecr_repository_prefix', '=', ecrRepositoryPrefix).executeTakeFirst();
      return Number(result.numDeletedRows) > 0 ? toRule(r) : undefined;
    });
  }

  async tagCheck(repositoryId: number, tag: string): Promise<{ upstreamDigest: string; checkedAtMs: number } | undefined> {
    const r = await this.db.selectFrom('pull_through_cache_tags').select(['upstream_digest', 'checked_at']).where('repository_id', '=', repositoryId).where('tag', '=', tag).executeTakeFirst();
    return r && { upstreamDigest: r.upstream_digest, checkedAtMs: Number(r.checked_at) };
  }

  async recordTagCheck(repositoryId: number, tag: string, upstreamDigest: string, checkedAtMs: number): Promise<void> {
    // insert ... select: nothing when the repository is gone, rather than a foreign-key failure.
    await this.db
      .insertInto('pull_through_cache_tags')
      .columns(['repository_id', 'tag', 'upstream_digest', 'checked_at'])
      .expression((eb) =>
        eb
          .selectFrom('repositories')
          .select((s) => [s.val(repositoryId).as('repository_id'), s.val(tag).as('tag'), s.val(upstreamDigest).as('upstream_digest'), s.val(checkedAtMs).as('checked_at')])
          .where('id', '=', repositoryId),
      )
      .onConflict((oc) => oc.columns(['repository_id', 'tag']).doUpdateSet({ upstream_digest: upstreamDigest, checked_at: checkedAtMs }))
      .execute();
  }

  async claimFetch(digest: string, owner: string, untilMs: number, nowMs: number): Promise<boolean> {
    const result = await this.db
      .insertInto('pull_through_cache_fetches')
      .values({ digest, lease_owner: owner, lease_until: untilMs })
      .onConflict((oc) =>
        oc
          .column('digest')
          .doUpdateSet({ lease_owner: owner, lease_until: untilMs })
          .where((eb) => eb.or([eb('pull_through_cache_fetches.lease_owner', '=', owner), eb('pull_through_cache_fetches.lease_until', '<', nowMs)])),
      )
      .executeTakeFirst();
    return Number(result.numInsertedOrUpdatedRows ?? 0) > 0;
  }

  async renewFetch(digest: string, owner: string, untilMs: number): Promise<boolean> {
    const result = await this.db.updateTable('pull_through_cache_fetches').set({ lease_until: untilMs }).where('digest', '=', digest).where('lease_owner', '=', owner).executeTakeFirst();
    return Number(result.numUpdatedRows) > 0;
  }

  async releaseFetch(digest: string, owner: string): Promise<void> {
    await this.db.deleteFrom('pull_through_cache_fetches').where('digest', '=', digest).where('lease_owner', '=', owner).execute();
  }
}
