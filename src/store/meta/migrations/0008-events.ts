import { sql, type Kysely } from 'kysely';

/**
 * The event outbox (docs/adr/0012-event-outbox.md, docs/metadata-schema.md):
 *
 * - `events`: one row per event, numbered by `seq` in the order the events became visible.
 *   Numbers are never reused, even after pruning has emptied the table (SQLite's `autoincrement`
 *   rather than a plain rowid, which would hand out the highest deleted number again): a
 *   consumer's cursor must never come to stand past an event written later.
 * - `event_consumers`: one row per consumer, with its cursor (the last `seq` it handled) and its
 *   lease, taken like a job's (migration 0004).
 * - `webhook_subscriptions`: where and what to deliver; each is the consumer `webhook:<id>`.
 * - `webhook_dead_letters`: events a subscription gave up on, with the envelope, for redelivery.
 */
export async function up(db: Kysely<unknown>, dialect: 'sqlite' | 'postgres'): Promise<void> {
  // Text columns on PostgreSQL compare as bytes, as migration 0005 made every other one.
  const text = dialect === 'postgres' ? sql`text collate "C"` : sql`text`;

  await db.schema
    .createTable('events')
    .addColumn('seq', dialect === 'postgres' ? 'bigint' : 'integer', (c) => (dialect === 'postgres' ? c.generatedAlwaysAsIdentity().primaryKey() : c.primaryKey().autoIncrement()))
    .addColumn('id', text, (c) => c.notNull().unique())
    .addColumn('account_id', text, (c) => c.notNull())
    .addColumn('repository', text)
    .addColumn('detail_type', text, (c) => c.notNull())
    .addColumn('time_ms', 'bigint', (c) => c.notNull())
    .addColumn('body', text, (c) => c.notNull())
    .execute();
  // The feed and the consumers read an account's or a repository's events in seq order.
  await db.schema.createIndex('events_account').on('events').columns(['account_id', 'seq']).execute();
  await db.schema.createIndex('events_repository').on('events').columns(['account_id', 'repository', 'seq']).execute();
  // Pruning finds old events by time and deletes them by seq, from the index alone.
  await db.schema.createIndex('events_time').on('events').columns(['time_ms', 'seq']).execute();

  await db.schema
    .createTable('event_consumers')
    .addColumn('name', text, (c) => c.primaryKey())
    .addColumn('cursor', 'bigint', (c) => c.notNull().defaultTo(0))
    .addColumn('lease_owner', text)
    .addColumn('lease_until', 'bigint')
    .execute();

  await db.schema
    .createTable('webhook_subscriptions')
    .addColumn('id', text, (c) => c.primaryKey())
    // Null: every account's events.
    .addColumn('account_id', text)
    .addColumn('url', text, (c) => c.notNull())
    // Null: every event.
    .addColumn('pattern', text)
    // Sealed with the instance's secret key (src/iam/secrets.ts), as access-key secrets are.
    .addColumn('secret_sealed', text, (c) => c.notNull())
    .addColumn('headers', text, (c) => c.notNull().defaultTo('{}'))
    .addColumn('timeout_ms', 'integer', (c) => c.notNull())
    .addColumn('max_attempts', 'integer', (c) => c.notNull())
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .addColumn('is_disabled', 'integer', (c) => c.notNull().defaultTo(0))
    .execute();

  // The envelope is kept with the dead letter: the event itself may be pruned long before an
  // operator redelivers it, since the subscription's cursor has passed it.
  await db.schema
    .createTable('webhook_dead_letters')
    .addColumn('subscription_id', text, (c) => c.notNull().references('webhook_subscriptions.id').onDelete('cascade'))
    .addColumn('seq', 'bigint', (c) => c.notNull())
    .addColumn('event_id', text, (c) => c.notNull())
    .addColumn('attempts', 'integer', (c) => c.notNull())
    .addColumn('last_error', text, (c) => c.notNull())
    .addColumn('failed_at', 'bigint', (c) => c.notNull())
    .addColumn('body', text, (c) => c.notNull())
    .addPrimaryKeyConstraint('webhook_dead_letters_pk', ['subscription_id', 'seq'])
    .execute();
}
