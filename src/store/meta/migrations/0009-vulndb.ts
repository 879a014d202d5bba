import { sql, type Kysely } from 'kysely';

/**
 * The vulnerability database (src/store/meta/vulndb-store.ts, docs/scanning.md):
 *
 * - `vuln_generations`: one row per import, numbered by `generation` (never reused: SQLite's
 *   `autoincrement`, PostgreSQL's identity), with its state (`importing`, `active` once
 *   activated, `aborted`) and start time; a row stays while rows of its generation remain, so
 *   that sweeping finds every leftover through this small table.
 * - `vuln_sources`: the active generation of each source and what was imported into it.
 * - `vuln_records`, `vuln_affected`: the rows of every generation; readers join them with
 *   `vuln_sources` on (source, generation) and so see only active ones. Bodies are JSON: only the
 *   columns the lookups and the deletions use are columns.
 * - `vuln_meta`: one row, the database version, bumped by every activation.
 */
export async function up(db: Kysely<unknown>, dialect: 'sqlite' | 'postgres'): Promise<void> {
  // Text columns on PostgreSQL compare as bytes, as migration 0005 made every other one; the
  // ecosystem prefix lookup relies on that order.
  const text = dialect === 'postgres' ? sql`text collate "C"` : sql`text`;
  const identity = dialect === 'postgres' ? 'bigint' : 'integer';

  await db.schema.createTable('vuln_meta').addColumn('id', 'integer', (c) => c.primaryKey()).addColumn('version', 'bigint', (c) => c.notNull()).execute();
  await sql`insert into vuln_meta (id, version) values (1, 0)`.execute(db);

  await db.schema
    .createTable('vuln_generations')
    .addColumn('generation', identity, (c) => (dialect === 'postgres' ? c.generatedAlwaysAsIdentity().primaryKey() : c.primaryKey().autoIncrement()))
    // The names the import expected to write, a JSON array, for operators reading the table.
    .addColumn('sources', text, (c) => c.notNull())
    .addColumn('state', text, (c) => c.notNull())
    .addColumn('started_at', 'bigint', (c) => c.notNull())
    .addColumn('finished_at', 'bigint')
    .execute();

  await db.schema
    .createTable('vuln_sources')
    .addColumn('name', text, (c) => c.primaryKey())
    .addColumn('generation', 'bigint', (c) => c.notNull())
    .addColumn('description', text, (c) => c.notNull())
    .addColumn('updated_at', 'bigint', (c) => c.notNull())
    .addColumn('imported_at', 'bigint', (c) => c.notNull())
    .addColumn('record_count', 'bigint', (c) => c.notNull())
    .addColumn('sha256', text, (c) => c.notNull())
    .execute();

  // Generation first: an abort or a sweep deletes a generation's rows through this key alone.
  await db.schema
    .createTable('vuln_records')
    .addColumn('generation', 'bigint', (c) => c.notNull())
    .addColumn('source', text, (c) => c.notNull())
    .addColumn('id', text, (c) => c.notNull())
    .addColumn('body', text, (c) => c.notNull())
    .addPrimaryKeyConstraint('vuln_records_pk', ['generation', 'source', 'id'])
    .execute();
  await db.schema.createIndex('vuln_records_id').on('vuln_records').columns(['id']).execute();

  // A surrogate key, so that old generations are deleted in windows of rows.
  await db.schema
    .createTable('vuln_affected')
    .addColumn('id', identity, (c) => (dialect === 'postgres' ? c.generatedAlwaysAsIdentity().primaryKey() : c.primaryKey()))
    .addColumn('generation', 'bigint', (c) => c.notNull())
    .addColumn('source', text, (c) => c.notNull())
    .addColumn('ecosystem', text, (c) => c.notNull())
    .addColumn('package', text, (c) => c.notNull())
    .addColumn('vuln_id', text, (c) => c.notNull())
    .addColumn('body', text, (c) => c.notNull())
    .execute();
  // The matcher's lookup: one ecosystem (or a prefix of it), a list of package names.
  await db.schema.createIndex('vuln_affected_package').on('vuln_affected').columns(['ecosystem', 'package']).execute();
  await db.schema.createIndex('vuln_affected_generation').on('vuln_affected').columns(['generation', 'source']).execute();
}
