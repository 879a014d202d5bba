import { sql, type Kysely, type RawBuilder } from 'kysely';
import { auditLookupKeys, auditResourceOf, auditUserNameOf } from '../audit-store.ts';

/** Rows per insert into the mapping tables (5 parameters a row at most). */
const INSERT_CHUNK = 500;

/**
 * CloudTrail's LookupEvents over the audit trail (docs/security.md, "Audit log";
 * docs/metadata-schema.md): the keys a lookup filters by become columns of `audit_events`, each
 * derived from the record by `auditLookupKeys` (src/store/meta/audit-store.ts), which the store
 * also applies to every record it appends:
 *
 * - `event_name` (`PutImage`), `event_source` (`ecr.amazonaws.com`), `read_only` (1 or 0): from
 *   `plane` and `action`;
 * - `user_name`: from `principal` (a user's or a role session's name, `root`);
 * - `resource_name`, `resource_type`: from `resource` (a repository's name, `AWS::ECR::Repository`).
 *
 * The records already there get their keys here, so that lookups find them as they find new
 * ones: the distinct values of those columns are few next to the records (actions, principals,
 * resources), so their keys are computed once each into temporary tables and the records are
 * updated from them in one statement: for a million records, about 10 s on SQLite and 30 s on
 * PostgreSQL, indexes included, once.
 *
 * Lookups are per account and newest first, by (at, id): the keys the console and investigations
 * filter by (user, event name, resource, access key) each get an index (account_id, KEY, at, id),
 * read backwards from a page's start; the others (event_source, read_only, resource_type: few
 * values) filter the (account_id, at, id) index. Each index costs every audited request an insert,
 * hence no more. Nullable columns: a record an older node writes after this ran has no keys
 * (lookups filtered by them miss it; it is shown with keys derived again when read).
 */
export async function up(db: Kysely<unknown>, dialect: 'sqlite' | 'postgres'): Promise<void> {
  const text = dialect === 'postgres' ? sql`text collate "C"` : sql`text`;
  for (const column of ['event_name', 'event_source', 'user_name', 'resource_name', 'resource_type']) {
    await db.schema.alterTable('audit_events').addColumn(column, text).execute();
  }
  await db.schema.alterTable('audit_events').addColumn('read_only', 'integer').execute();

  const fill = async (table: string, columns: string, rows: RawBuilder<unknown>[]) => {
    for (let i = 0; i < rows.length; i += INSERT_CHUNK) {
      await sql`insert into ${sql.table(table)} (${sql.raw(columns)}) values ${sql.join(rows.slice(i, i + INSERT_CHUNK))}`.execute(db);
    }
  };
  await sql`create temporary table audit_keys_actions (plane ${text} not null, action ${text} not null, event_name ${text}, event_source ${text}, read_only integer, primary key (plane, action))`.execute(db);
  await sql`create temporary table audit_keys_principals (principal ${text} primary key, user_name ${text})`.execute(db);
  await sql`create temporary table audit_keys_resources (resource ${text} primary key, resource_name ${text}, resource_type ${text})`.execute(db);

  const actions = await sql<{ plane: string; action: string }>`select distinct plane, action from audit_events`.execute(db);
  await fill('audit_keys_actions', 'plane, action, event_name, event_source, read_only', actions.rows.map((r) => {
    const k = auditLookupKeys({ plane: r.plane, action: r.action, principal: null, resource: null });
    return sql`(${r.plane}, ${r.action}, ${k.eventName}, ${k.eventSource}, ${k.readOnly ? 1 : 0})`;
  }));
  const principals = await sql<{ principal: string }>`select distinct principal from audit_events where principal is not null`.execute(db);
  await fill('audit_keys_principals', 'principal, user_name', principals.rows.map((r) => sql`(${r.principal}, ${auditUserNameOf(r.principal)})`));
  const resources = await sql<{ resource: string }>`select distinct resource from audit_events where resource is not null`.execute(db);
  await fill('audit_keys_resources', 'resource, resource_name, resource_type', resources.rows.map((r) => {
    const k = auditResourceOf(r.resource);
    return sql`(${r.resource}, ${k.name}, ${k.type})`;
  }));

  await sql`
    update audit_events set
      (event_name, event_source, read_only) = (select k.event_name, k.event_source, k.read_only from audit_keys_actions k where k.plane = audit_events.plane and k.action = audit_events.action),
      user_name = (select k.user_name from audit_keys_principals k where k.principal = audit_events.principal),
      (resource_name, resource_type) = (select k.resource_name, k.resource_type from audit_keys_resources k where k.resource = audit_events.resource)`.execute(db);
  for (const table of ['audit_keys_actions', 'audit_keys_principals', 'audit_keys_resources']) await db.schema.dropTable(table).execute();

  const index = (name: string, columns: string[]) => db.schema.createIndex(name).on('audit_events').columns(columns).execute();
  await index('audit_events_account_at', ['account_id', 'at', 'id']);
  await index('audit_events_account_user', ['account_id', 'user_name', 'at', 'id']);
  await index('audit_events_account_event_name', ['account_id', 'event_name', 'at', 'id']);
  await index('audit_events_account_resource', ['account_id', 'resource_name', 'at', 'id']);
  await index('audit_events_account_access_key', ['account_id', 'access_key_id', 'at', 'id']);
  // PostgreSQL plans by statistics, which the new columns lack until autovacuum gets to the table:
  // without them, a filter on event_source or read_only was planned as a scan of the account's
  // every record (0.5 s a page at a million) instead of reading (account_id, at, id) backwards.
  if (dialect === 'postgres') await sql`analyze audit_events`.execute(db);
}
