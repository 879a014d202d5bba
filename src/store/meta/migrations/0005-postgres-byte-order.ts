import { sql, type Kysely } from 'kysely';

/** The tables the migrations before this one created. */
const tables = [
  'repositories', 'blobs', 'repository_blobs', 'manifests', 'manifest_references', 'tags', 'uploads',
  'accounts', 'iam_users', 'access_keys', 'iam_groups', 'group_members', 'iam_roles', 'iam_policies',
  'policy_attachments', 'inline_policies', 'registry_policies', 'audit_events',
  'repository_templates', 'account_settings', 'jobs',
];

/**
 * On PostgreSQL, every text column compares and sorts as bytes (`COLLATE "C"`), as SQLite's
 * BINARY does. The store pages by keyset (`name > after ORDER BY name`) and promises byte order
 * for repository names, tags and digests; under a database's default collation
 * (`en_US.UTF-8`, an ICU locale) `a/b`, `a-b` and `a.b` sort otherwise and capitals fold in
 * among lower case. Every text column, not only the sorted ones, so that no join or comparison
 * ever mixes two collations (PostgreSQL refuses `=` between columns of different ones).
 * Text columns that later migrations add on PostgreSQL need `collate "C"` too.
 *
 * Nothing on SQLite. On PostgreSQL the tables are still empty when this runs (no release had
 * a PostgreSQL driver before it), so the indexes it rebuilds cost nothing.
 */
export async function up(db: Kysely<unknown>, dialect: 'sqlite' | 'postgres'): Promise<void> {
  if (dialect !== 'postgres') return;
  const { rows } = await sql<{ table_name: string; column_name: string }>`
    select table_name, column_name from information_schema.columns
    where table_schema = current_schema() and data_type = 'text' and table_name in (${sql.join(tables)})
    order by table_name, ordinal_position`.execute(db);
  const byTable = Map.groupBy(rows, (r) => r.table_name);
  for (const [table, columns] of byTable) {
    const alterations = columns.map((c) => sql`alter column ${sql.ref(c.column_name)} type text collate "C"`);
    await sql`alter table ${sql.table(table)} ${sql.join(alterations)}`.execute(db);
  }
}
