import { sql, type Kysely } from 'kysely';

/**
 * The pull-through cache (docs/pull-through-cache.md, docs/metadata-schema.md):
 *
 * - `pull_through_cache_rules`: an account's rules (CreatePullThroughCacheRule), by the
 *   repository prefix they cover (`ROOT` for every repository).
 * - `pull_through_cache_tags`: when a cached tag was last compared with its upstream, and the
 *   digest the upstream had then; goes with its repository.
 * - `pull_through_cache_fetches`: who is fetching a blob from an upstream right now (a lease), so
 *   that the nodes of a cluster fetch each blob once however many clients ask at once.
 */
export async function up(db: Kysely<unknown>, dialect: 'sqlite' | 'postgres'): Promise<void> {
  const text = dialect === 'postgres' ? sql`text collate "C"` : sql`text`;

  await db.schema
    .createTable('pull_through_cache_rules')
    .addColumn('account_id', text, (c) => c.notNull())
    .addColumn('ecr_repository_prefix', text, (c) => c.notNull())
    .addColumn('upstream_registry_url', text, (c) => c.notNull())
    .addColumn('upstream_registry', text)
    .addColumn('upstream_repository_prefix', text, (c) => c.notNull())
    .addColumn('credential_arn', text)
    .addColumn('custom_role_arn', text)
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .addColumn('updated_at', 'bigint', (c) => c.notNull())
    .addPrimaryKeyConstraint('pull_through_cache_rules_pk', ['account_id', 'ecr_repository_prefix'])
    .execute();

  await db.schema
    .createTable('pull_through_cache_tags')
    .addColumn('repository_id', 'integer', (c) => c.notNull().references('repositories.id').onDelete('cascade'))
    .addColumn('tag', text, (c) => c.notNull())
    .addColumn('upstream_digest', text, (c) => c.notNull())
    .addColumn('checked_at', 'bigint', (c) => c.notNull())
    .addPrimaryKeyConstraint('pull_through_cache_tags_pk', ['repository_id', 'tag'])
    .execute();

  await db.schema
    .createTable('pull_through_cache_fetches')
    .addColumn('digest', text, (c) => c.primaryKey())
    .addColumn('lease_owner', text, (c) => c.notNull())
    .addColumn('lease_until', 'bigint', (c) => c.notNull())
    .execute();
}
