import { sql, type Selectable } from 'kysely';
import type {
  ReplicationDestinationSummary,
  ReplicationRequest,
  ReplicationStore,
  ReplicationTask,
  ReplicationTaskKey,
  ReplicationTaskStatus,
  StoredReplicationConfiguration,
} from '../replication-store.ts';
import { isForeignKeyViolation, withLock, type Db, KyselyPart } from './locks.ts';
import type { Schema } from './schema.ts';

type Row = Selectable<Schema['replication_tasks']> & { account_id: string; repository_name: string };

const COLUMNS = [
  't.repository_id', 't.digest', 't.destination', 't.status', 't.tags', 't.reason', 't.version', 't.attempts', 't.next_attempt_at', 't.pushed_at',
  't.requested_at', 't.completed_at', 't.failure_code', 't.last_error', 't.lease_owner', 't.lease_until', 'r.account_id', 'r.name as repository_name',
] as const;

function toTask(r: Row): ReplicationTask {
  const n = (v: number | string | null): number | null => (v === null ? null : Number(v));
  return {
    repositoryId: Number(r.repository_id),
    digest: r.digest,
    destination: r.destination,
    accountId: r.account_id,
    repositoryName: r.repository_name,
    status: r.status as ReplicationTaskStatus,
    tags: JSON.parse(r.tags) as string[],
    reason: r.reason,
    version: Number(r.version),
    attempts: Number(r.attempts),
    nextAttemptAtMs: Number(r.next_attempt_at),
    pushedAtMs: Number(r.pushed_at),
    requestedAtMs: Number(r.requested_at),
    completedAtMs: n(r.completed_at),
    failureCode: r.failure_code,
    lastError: r.last_error,
    leaseOwner: r.lease_owner,
    leaseUntilMs: n(r.lease_until),
  };
}

/** Replication's state over Kysely; the same SQL on SQLite and PostgreSQL. */
export class KyselyReplicationStore extends KyselyPart implements ReplicationStore {
  private joined(db: Db = this.db) {
    return db.selectFrom('replication_tasks as t').innerJoin('repositories as r', 'r.id', 't.repository_id').select(COLUMNS);
  }

  private whereKey<Q extends { where: (...args: any[]) => Q }>(q: Q, key: ReplicationTaskKey): Q {
    return q.where('repository_id', '=', key.repositoryId).where('digest', '=', key.digest).where('destination', '=', key.destination);
  }

  async getConfiguration(accountId: string): Promise<StoredReplicationConfiguration | undefined> {
    const r = await this.db.selectFrom('replication_configurations').selectAll().where('account_id', '=', accountId).executeTakeFirst();
    return r && { rules: r.rules, startSeqs: r.start_seqs, updatedAtMs: Number(r.updated_at) };
  }

  async putConfiguration(accountId: string, config: StoredReplicationConfiguration): Promise<void> {
    const values = { rules: config.rules, start_seqs: config.startSeqs, updated_at: config.updatedAtMs };
    await this.db
      .insertInto('replication_configurations')
      .values({ account_id: accountId, ...values })
      .onConflict((oc) => oc.column('account_id').doUpdateSet(values))
      .execute();
  }

  async listConfigurations(): Promise<Array<{ accountId: string; config: StoredReplicationConfiguration }>> {
    const rows = await this.db.selectFrom('replication_configurations').selectAll().where('rules', '!=', '[]').orderBy('account_id').execute();
    return rows.map((r) => ({ accountId: r.account_id, config: { rules: r.rules, startSeqs: r.start_seqs, updatedAtMs: Number(r.updated_at) } }));
  }

  async request(requests: ReplicationRequest[], nowMs: number): Promise<number> {
    let changed = 0;
    for (const req of requests) if (await this.requestOne(req, nowMs)) changed++;
    return changed;
  }

  /** One request, in a transaction of its own (a failed insert must not abort a caller's). */
  private async requestOne(req: ReplicationRequest, nowMs: number): Promise<boolean> {
    return this.inTransaction(async (db) => {
      const existing = await withLock(
        db.selectFrom('replication_tasks').selectAll().where('repository_id', '=', req.repositoryId).where('digest', '=', req.digest).where('destination', '=', req.destination),
        this.dialect,
        'update',
      ).executeTakeFirst();
      if (!existing) {
        let inserted;
        try {
          // Insert only if the manifest exists (insert ... select): a request for a deleted image is dropped.
          inserted = await db
            .insertInto('replication_tasks')
            .columns(['repository_id', 'digest', 'destination', 'status', 'tags', 'reason', 'version', 'attempts', 'next_attempt_at', 'pushed_at', 'requested_at'])
            .expression((eb) =>
              eb
                .selectFrom('manifests')
                .select([
                  'repository_id',
                  'digest',
                  sql.val(req.destination).as('destination'),
                  sql.lit('PENDING').as('status'),
                  sql.val(JSON.stringify([...new Set(req.tags)])).as('tags'),
                  sql.val(req.reason).as('reason'),
                  sql.lit(1).as('version'),
                  sql.lit(0).as('attempts'),
                  sql.val(nowMs).as('next_attempt_at'),
                  sql.val(req.pushedAtMs).as('pushed_at'),
                  sql.val(nowMs).as('requested_at'),
                ])
                .where('repository_id', '=', req.repositoryId)
                .where('digest', '=', req.digest),
            )
            .onConflict((oc) => oc.columns(['repository_id', 'digest', 'destination']).doNothing())
            .executeTakeFirst();
        } catch (err) {
          if (isForeignKeyViolation(err)) return false;
          throw err;
        }
        return Number(inserted.numInsertedOrUpdatedRows ?? 0n) > 0;
      }
      if (req.reason === 'backfill') return false;
      if (req.reason === 'retry' && existing.status !== 'FAILED') return false;
      const tags = [...new Set([...(JSON.parse(existing.tags) as string[]), ...req.tags])];
      const settled = existing.status === 'COMPLETE' || existing.status === 'FAILED';
      await db
        .updateTable('replication_tasks')
        .set({
          status: existing.status === 'IN_PROGRESS' ? 'IN_PROGRESS' : 'PENDING',
          tags: JSON.stringify(tags),
          reason: req.reason === 'retry' ? existing.reason : req.reason,
          version: Number(existing.version) + 1,
          attempts: 0,
          next_attempt_at: nowMs,
          failure_code: null,
          ...(settled ? { requested_at: nowMs, pushed_at: req.pushedAtMs, last_error: null } : {}),
        })
        .where('repository_id', '=', req.repositoryId)
        .where('digest', '=', req.digest)
        .where('destination', '=', req.destination)
        .execute();
      return true;
    });
  }

  async claim(owner: string, nowMs: number, untilMs: number, limit: number): Promise<ReplicationTask[]> {
    return this.inTransaction(async (db) => {
      const due = (eb: any) => eb.or([eb.and([eb('status', '=', 'PENDING'), eb('next_attempt_at', '<=', nowMs)]), eb.and([eb('status', '=', 'IN_PROGRESS'), eb('lease_until', '<', nowMs)])]);
      let q = db.selectFrom('replication_tasks').select(['repository_id', 'digest', 'destination']).where(due).orderBy('next_attempt_at').limit(limit);
      if (this.dialect === 'postgres') q = q.forUpdate().skipLocked();
      const rows = await q.execute();
      const claimed: ReplicationTask[] = [];
      for (const d of rows) {
        const key = { repositoryId: Number(d.repository_id), digest: d.digest, destination: d.destination };
        const updated = await this.whereKey(db.updateTable('replication_tasks').set({ status: 'IN_PROGRESS', lease_owner: owner, lease_until: untilMs }), key)
          .where(due)
          .executeTakeFirst();
        if (Number(updated.numUpdatedRows) === 0) continue;
        const full = await this.joined(db).where('t.repository_id', '=', key.repositoryId).where('t.digest', '=', key.digest).where('t.destination', '=', key.destination).executeTakeFirst();
        if (full) claimed.push(toTask(full));
      }
      return claimed;
    });
  }

  async renew(key: ReplicationTaskKey, owner: string, untilMs: number): Promise<boolean> {
    const r = await this.whereKey(this.db.updateTable('replication_tasks').set({ lease_until: untilMs }), key)
      .where('status', '=', 'IN_PROGRESS')
      .where('lease_owner', '=', owner)
      .executeTakeFirst();
    return Number(r.numUpdatedRows) > 0;
  }

  /** The task while `owner` holds it, locked until the transaction ends. */
  private async held(db: Db, key: ReplicationTaskKey, owner: string) {
    return withLock(
      this.whereKey(db.selectFrom('replication_tasks').selectAll(), key).where('status', '=', 'IN_PROGRESS').where('lease_owner', '=', owner),
      this.dialect,
      'update',
    ).executeTakeFirst();
  }

  async complete(key: ReplicationTaskKey, owner: string, version: number, tagsDone: string[], nowMs: number): Promise<boolean> {
    return this.inTransaction(async (db) => {
      const row = await this.held(db, key, owner);
      if (!row) return false;
      const released = { lease_owner: null, lease_until: null };
      if (Number(row.version) === version) {
        await this.whereKey(
          db.updateTable('replication_tasks').set({ ...released, status: 'COMPLETE', tags: '[]', completed_at: nowMs, attempts: 0, failure_code: null, last_error: null }),
          key,
        ).execute();
      } else {
        const done = new Set(tagsDone);
        const left = (JSON.parse(row.tags) as string[]).filter((t) => !done.has(t));
        await this.whereKey(db.updateTable('replication_tasks').set({ ...released, status: 'PENDING', tags: JSON.stringify(left), next_attempt_at: nowMs }), key).execute();
      }
      return true;
    });
  }

  async release(key: ReplicationTaskKey, owner: string, nowMs: number): Promise<boolean> {
    const r = await this.whereKey(this.db.updateTable('replication_tasks').set({ status: 'PENDING', next_attempt_at: nowMs, lease_owner: null, lease_until: null }), key)
      .where('status', '=', 'IN_PROGRESS')
      .where('lease_owner', '=', owner)
      .executeTakeFirst();
    return Number(r.numUpdatedRows) > 0;
  }

  async retry(key: ReplicationTaskKey, owner: string, failure: { error: string; nextAttemptAtMs: number }): Promise<boolean> {
    const r = await this.whereKey(
      this.db.updateTable('replication_tasks').set((eb) => ({
        status: 'PENDING',
        attempts: eb('attempts', '+', 1),
        next_attempt_at: failure.nextAttemptAtMs,
        last_error: failure.error.slice(0, 2000),
        lease_owner: null,
        lease_until: null,
      })),
      key,
    )
      .where('status', '=', 'IN_PROGRESS')
      .where('lease_owner', '=', owner)
      .executeTakeFirst();
    return Number(r.numUpdatedRows) > 0;
  }

  async fail(key: ReplicationTaskKey, owner: string, version: number, failure: { failureCode: string; error: string; nowMs: number }): Promise<boolean> {
    return this.inTransaction(async (db) => {
      const row = await this.held(db, key, owner);
      if (!row) return false;
      const changed = Number(row.version) !== version;
      await this.whereKey(
        db.updateTable('replication_tasks').set({
          status: changed ? 'PENDING' : 'FAILED',
          failure_code: changed ? null : failure.failureCode,
          last_error: failure.error.slice(0, 2000),
          next_attempt_at: failure.nowMs,
          lease_owner: null,
          lease_until: null,
        }),
        key,
      ).execute();
      return true;
    });
  }

  async tasksOf(repositoryId: number, digest: string): Promise<ReplicationTask[]> {
    const rows = await this.joined().where('t.repository_id', '=', repositoryId).where('t.digest', '=', digest).orderBy('t.destination').execute();
    return rows.map(toTask);
  }

  async summary(): Promise<ReplicationDestinationSummary[]> {
    const rows = await this.db
      .selectFrom('replication_tasks')
      .select((eb) => [
        'destination',
        'status',
        eb.fn.countAll().as('n'),
        eb.fn.min('pushed_at').as('oldest_pushed'),
        eb.fn.max('completed_at').as('last_completed'),
        eb.fn.max('last_error').as('last_error'),
        eb.fn.max('failure_code').as('failure_code'),
      ])
      .groupBy(['destination', 'status'])
      .orderBy('destination')
      .execute();
    const out = new Map<string, ReplicationDestinationSummary>();
    for (const r of rows) {
      let s = out.get(r.destination);
      if (!s) {
        s = { destination: r.destination, pending: 0, inProgress: 0, failed: 0, complete: 0, oldestWaitingPushedAtMs: null, lastCompletedAtMs: null, lastError: null, lastFailure: null };
        out.set(r.destination, s);
      }
      const n = Number(r.n);
      const status = r.status as ReplicationTaskStatus;
      if (status === 'PENDING') s.pending += n;
      else if (status === 'IN_PROGRESS') s.inProgress += n;
      else if (status === 'FAILED') s.failed += n;
      else s.complete += n;
      if (status === 'PENDING' || status === 'IN_PROGRESS') {
        const oldest = Number(r.oldest_pushed);
        s.oldestWaitingPushedAtMs = s.oldestWaitingPushedAtMs === null ? oldest : Math.min(s.oldestWaitingPushedAtMs, oldest);
        if (r.last_error) s.lastError = String(r.last_error);
      }
      if (status === 'COMPLETE' && r.last_completed !== null) s.lastCompletedAtMs = Number(r.last_completed);
      if (status === 'FAILED') s.lastFailure = { failureCode: r.failure_code === null ? null : String(r.failure_code), error: r.last_error === null ? null : String(r.last_error) };
    }
    return [...out.values()];
  }
}
