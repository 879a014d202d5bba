import { sql, type Kysely } from 'kysely';

/**
 * Replication (docs/replication.md, docs/metadata-schema.md):
 *
 * - `replication_configurations`: an account's replication rules (PutReplicationConfiguration)
 *   and, per destination, the event sequence number its replication starts after.
 * - `replication_tasks`: one row per image and destination: its replication status and the
 *   leased work queue. It goes with its manifest (cascade): deletions are not replicated, and a
 *   task for an image that is gone has nothing left to do.
 */
export async function up(db: Kysely<unknown>, dialect: 'sqlite' | 'postgres'): Promise<void> {
  const text = dialect === 'postgres' ? sql`text collate "C"` : sql`text`;

  await db.schema
    .createTable('replication_configurations')
    .addColumn('account_id', text, (c) => c.primaryKey())
    .addColumn('rules', text, (c) => c.notNull())
    .addColumn('start_seqs', text, (c) => c.notNull())
    .addColumn('updated_at', 'bigint', (c) => c.notNull())
    .execute();

  await db.schema
    .createTable('replication_tasks')
    .addColumn('repository_id', 'integer', (c) => c.notNull())
    .addColumn('digest', text, (c) => c.notNull())
    .addColumn('destination', text, (c) => c.notNull())
    .addColumn('status', text, (c) => c.notNull())
    .addColumn('tags', text, (c) => c.notNull())
    .addColumn('reason', text, (c) => c.notNull())
    .addColumn('version', 'integer', (c) => c.notNull())
    .addColumn('attempts', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('next_attempt_at', 'bigint', (c) => c.notNull())
    .addColumn('pushed_at', 'bigint', (c) => c.notNull())
    .addColumn('requested_at', 'bigint', (c) => c.notNull())
    .addColumn('completed_at', 'bigint')
    .addColumn('failure_code', text)
    .addColumn('last_error', text)
    .addColumn('lease_owner', text)
    .addColumn('lease_until', 'bigint')
    .addPrimaryKeyConstraint('replication_tasks_pk', ['repository_id', 'digest', 'destination'])
    .addForeignKeyConstraint('replication_tasks_manifest', ['repository_id', 'digest'], 'manifests', ['repository_id', 'digest'], (c) => c.onDelete('cascade'))
    .execute();

  // Workers find due tasks by status and time; the summary groups by destination and status.
  await db.schema.createIndex('replication_tasks_queue').on('replication_tasks').columns(['status', 'next_attempt_at']).execute();
  await db.schema.createIndex('replication_tasks_destination').on('replication_tasks').columns(['destination', 'status']).execute();
}
