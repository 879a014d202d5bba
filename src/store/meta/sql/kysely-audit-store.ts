import { CompiledQuery, sql, type Selectable } from 'kysely';
import { auditLookupKeys, type AuditEvent, type AuditListFilter, type AuditLookup, type AuditStore, type StoredAuditEvent } from '../audit-store.ts';
import { KyselyPart } from './locks.ts';
import type { Schema } from './schema.ts';

/** Compiled `insert into audit_events` statements, by dialect adapter and row count. */
const insertSql = new Map<string, string>();

/** Rows per insert statement: 19 parameters a row, well under both databases' limits. */
const INSERT_CHUNK = 100;

function toEvent(r: Selectable<Schema['audit_events']>): StoredAuditEvent {
  return {
    id: Number(r.id),
    atMs: Number(r.at),
    requestId: r.request_id,
    plane: r.plane,
    accountId: r.account_id,
    principal: r.principal,
    accessKeyId: r.access_key_id,
    action: r.action,
    resource: r.resource,
    decision: r.decision,
    policy: r.policy,
    sourceIp: r.source_ip,
    userAgent: r.user_agent,
    errorCode: r.error_code,
  };
}

/**
 * The audit trail over Kysely; the same SQL on SQLite and PostgreSQL. Lookups are served by the
 * indexes of migration 0015-audit-lookup, read backwards from the page's start: (account_id, KEY,
 * at, id) for the user name, event name, resource name and access key, and (account_id, at, id)
 * filtered for the others.
 */
export class KyselyAuditStore extends KyselyPart implements AuditStore {
  async append(events: AuditEvent[]): Promise<void> {
    const rows = events.map((e) => {
      const keys = auditLookupKeys(e);
      return {
        at: e.atMs,
        request_id: e.requestId,
        plane: e.plane,
        account_id: e.accountId,
        principal: e.principal,
        access_key_id: e.accessKeyId,
        action: e.action,
        resource: e.resource,
        decision: e.decision,
        policy: e.policy,
        source_ip: e.sourceIp,
        user_agent: e.userAgent,
        error_code: e.errorCode,
        event_name: keys.eventName,
        event_source: keys.eventSource,
        user_name: keys.userName,
        resource_name: keys.resourceName,
        resource_type: keys.resourceType,
        read_only: keys.readOnly ? 1 : 0,
      };
    });
    // The statement text for a batch of n rows is built once and reused: auditing runs on every
    // request, and building a 100-row insert through the query builder each time costs more
    // than running it (docs/benchmarks.md).
    for (let i = 0; i < rows.length; i += INSERT_CHUNK) {
      const chunk = rows.slice(i, i + INSERT_CHUNK);
      const cacheKey = `${this.db.getExecutor().adapter.constructor.name}/${chunk.length}`;
      let text = insertSql.get(cacheKey);
      if (!text) {
        text = this.db.insertInto('audit_events').values(chunk).compile().sql;
        insertSql.set(cacheKey, text);
      }
      await this.db.executeQuery(CompiledQuery.raw(text, chunk.flatMap((r) => Object.values(r))));
    }
  }

  async list(filter: AuditListFilter): Promise<StoredAuditEvent[]> {
    let q = this.db.selectFrom('audit_events').selectAll().orderBy('id').limit(filter.limit);
    if (filter.afterId !== undefined) q = q.where('id', '>', filter.afterId);
    if (filter.sinceMs !== undefined) q = q.where('at', '>=', filter.sinceMs);
    if (filter.untilMs !== undefined) q = q.where('at', '<', filter.untilMs);
    if (filter.accountId !== undefined) q = q.where('account_id', '=', filter.accountId);
    return (await q.execute()).map(toEvent);
  }

  async lookup(query: AuditLookup): Promise<StoredAuditEvent[]> {
    let q = this.db.selectFrom('audit_events').selectAll().where('account_id', '=', query.accountId);
    if (query.eventId !== undefined) q = q.where('id', '=', query.eventId);
    if (query.eventName !== undefined) q = q.where('event_name', '=', query.eventName);
    if (query.eventSource !== undefined) q = q.where('event_source', '=', query.eventSource);
    if (query.userName !== undefined) q = q.where('user_name', '=', query.userName);
    if (query.resourceName !== undefined) q = q.where('resource_name', '=', query.resourceName);
    if (query.resourceType !== undefined) q = q.where('resource_type', '=', query.resourceType);
    if (query.accessKeyId !== undefined) q = q.where('access_key_id', '=', query.accessKeyId);
    if (query.readOnly !== undefined) q = q.where('read_only', '=', query.readOnly ? 1 : 0);
    if (query.startMs !== undefined) q = q.where('at', '>=', query.startMs);
    if (query.endMs !== undefined) q = q.where('at', '<=', query.endMs);
    // A row value, so that both databases read the index from the cursor on rather than filter.
    if (query.after !== undefined) q = q.where(sql<boolean>`(at, id) < (${query.after.atMs}, ${query.after.id})`);
    const rows = await q.orderBy('at', 'desc').orderBy('id', 'desc').limit(query.limit).execute();
    return rows.map(toEvent);
  }
}
