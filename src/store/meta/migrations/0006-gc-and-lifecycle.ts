import { sql, type Kysely } from 'kysely';

/**
 * Garbage collection and lifecycle policies (docs/gc.md, docs/metadata-schema.md):
 *
 * - `blobs.last_used_at`: when the blob was last committed, linked to a repository, named by a
 *   manifest being pushed, or left by a manifest being deleted; backfilled from `created_at`.
 *   Garbage collection takes only blobs unused for longer than its grace period.
 * - `blobs.deleting_at`: set, and committed, when a collection has chosen the blob; from then on
 *   the row counts as absent, so that a collection that dies after removing the bytes leaves no
 *   row that anything may still use. Null otherwise.
 * - `lifecycle_policies` and `lifecycle_previews`: one row per repository each. Existing
 *   `repositories.lifecycle_policy` values (set from creation templates) are copied over.
 */
export async function up(db: Kysely<unknown>, dialect: 'sqlite' | 'postgres'): Promise<void> {
  // Text columns on PostgreSQL compare as bytes, as migration 0005 made every other one.
  const text = dialect === 'postgres' ? sql`text collate "C"` : sql`text`;

  await db.schema.alterTable('blobs').addColumn('last_used_at', 'bigint', (c) => c.notNull().defaultTo(0)).execute();
  await db.schema.alterTable('blobs').addColumn('deleting_at', 'bigint').execute();
  await sql`update blobs set last_used_at = created_at`.execute(db);
  // Candidates are paged by (last_used_at, digest), oldest first.
  await db.schema.createIndex('blobs_last_used').on('blobs').columns(['last_used_at', 'digest']).execute();
  // Rows a collection chose but did not finish: few or none, so a partial index.
  await db.schema.createIndex('blobs_deleting').on('blobs').column('deleting_at').where(sql.ref('deleting_at'), 'is not', null).execute();

  await db.schema
    .createTable('lifecycle_policies')
    .addColumn('repository_id', 'integer', (c) => c.primaryKey().references('repositories.id').onDelete('cascade'))
    .addColumn('policy_text', text, (c) => c.notNull())
    .addColumn('updated_at', 'bigint', (c) => c.notNull())
    .addColumn('last_evaluated_at', 'bigint')
    .execute();

  await db.schema
    .createTable('lifecycle_previews')
    .addColumn('repository_id', 'integer', (c) => c.primaryKey().references('repositories.id').onDelete('cascade'))
    .addColumn('status', text, (c) => c.notNull())
    .addColumn('policy_text', text, (c) => c.notNull())
    .addColumn('result', text)
    .addColumn('started_at', 'bigint', (c) => c.notNull())
    .addColumn('finished_at', 'bigint')
    .execute();

  await sql`insert into lifecycle_policies (repository_id, policy_text, updated_at)
    select id, lifecycle_policy, created_at from repositories where lifecycle_policy is not null`.execute(db);
}
