import { sql, type Selectable } from 'kysely';
import { webhookConsumer, type ConsumerState, type DeadLetter, type EventStore, type NewEvent, type StoredEvent, type WebhookSubscription } from '../event-store.ts';
import { KyselyPart, type Db } from './locks.ts';
import { pacer, scanWindow } from './pacing.ts';
import type { Schema } from './schema.ts';

/**
 * The key of the PostgreSQL advisory lock that every event-producing transaction takes just
 * before it inserts its events and holds until it commits (`pg_advisory_xact_lock`), so that
 * such transactions commit in the order their sequence numbers were assigned and no reader ever
 * sees an event before one with a lower number (docs/adr/0012-event-outbox.md, "Order and
 * visibility"). It is the bytes of "berthevt" read as a signed 64-bit integer; any fixed value
 * would do, as long as nothing else in the database takes it (Kysely's migrator takes
 * 3853314791062309107). Advisory locks belong to the database, not the schema: two Berth
 * installations in two schemas of one database share it, which serialises their appends with
 * each other but is otherwise harmless.
 */
export const EVENT_APPEND_LOCK_KEY = 0x6265727468657674n;

/** Events per insert: 6 parameters each, well under SQLite's and PostgreSQL's limits. */
const INSERT_CHUNK = 1000;

function toEvent(r: Selectable<Schema['events']>): StoredEvent {
  return {
    seq: Number(r.seq),
    id: r.id,
    accountId: r.account_id,
    repository: r.repository,
    detailType: r.detail_type,
    timeMs: Number(r.time_ms),
    body: JSON.parse(r.body) as unknown,
  };
}

function toConsumer(r: Selectable<Schema['event_consumers']>): ConsumerState {
  return { name: r.name, cursor: Number(r.cursor), leaseOwner: r.lease_owner, leaseUntilMs: r.lease_until === null ? null : Number(r.lease_until) };
}

function toWebhook(r: Selectable<Schema['webhook_subscriptions']>): WebhookSubscription {
  return {
    id: r.id,
    accountId: r.account_id,
    url: r.url,
    pattern: r.pattern,
    secretSealed: r.secret_sealed,
    headers: JSON.parse(r.headers) as Record<string, string>,
    timeoutMs: Number(r.timeout_ms),
    maxAttempts: Number(r.max_attempts),
    createdAtMs: Number(r.created_at),
    isDisabled: Number(r.is_disabled) !== 0,
  };
}

function toDeadLetter(r: Selectable<Schema['webhook_dead_letters']>): DeadLetter {
  return {
    subscriptionId: r.subscription_id,
    seq: Number(r.seq),
    eventId: r.event_id,
    attempts: Number(r.attempts),
    lastError: r.last_error,
    failedAtMs: Number(r.failed_at),
    body: JSON.parse(r.body) as unknown,
  };
}

function webhookRow(subscription: WebhookSubscription) {
  return {
    id: subscription.id,
    account_id: subscription.accountId,
    url: subscription.url,
    pattern: subscription.pattern,
    secret_sealed: subscription.secretSealed,
    headers: JSON.stringify(subscription.headers),
    timeout_ms: subscription.timeoutMs,
    max_attempts: subscription.maxAttempts,
    created_at: subscription.createdAtMs,
    is_disabled: subscription.isDisabled ? 1 : 0,
  };
}

/** A new subscription's consumer, at the log's end, replacing any left by an earlier one of the id. */
async function startConsumerAtEnd(db: Db, subscriptionId: string): Promise<void> {
  // Every event up to the highest visible number is committed (append's ordering), so a
  // cursor there skips only the history, never an event still being written.
  const r = await db.selectFrom('events').select((eb) => eb.fn.max('seq').as('seq')).executeTakeFirst();
  const cursor = r?.seq === null || r?.seq === undefined ? 0 : Number(r.seq);
  await db
    .insertInto('event_consumers')
    .values({ name: webhookConsumer(subscriptionId), cursor })
    .onConflict((oc) => oc.column('name').doUpdateSet({ cursor, lease_owner: null, lease_until: null }))
    .execute();
}

/** The event outbox and its consumers over Kysely; the same SQL on SQLite and PostgreSQL but for append's lock. */
export class KyselyEventStore extends KyselyPart implements EventStore {
  async append(events: NewEvent[]): Promise<void> {
    if (events.length === 0) return;
    // Outside a transaction the lock would be released at the end of its own statement, before
    // the insert: a transaction of its own keeps the guarantee for such a caller too.
    await this.inTransaction(async (db) => {
      // On SQLite the transaction already holds the database's one write lock (BEGIN IMMEDIATE),
      // so writers commit in the order they insert.
      if (this.dialect === 'postgres') await sql`select pg_advisory_xact_lock(${sql.lit(EVENT_APPEND_LOCK_KEY)})`.execute(db);
      for (let i = 0; i < events.length; i += INSERT_CHUNK) {
        const rows = events.slice(i, i + INSERT_CHUNK).map((e) => ({
          id: e.id,
          account_id: e.accountId,
          repository: e.repository,
          detail_type: e.detailType,
          time_ms: e.timeMs,
          body: JSON.stringify(e.body),
        }));
        // Rows of one VALUES list take their sequence numbers in list order.
        await db.insertInto('events').values(rows).execute();
      }
    });
  }

  async read(query: { after: number; limit: number; accountId?: string | undefined; repository?: string | undefined }): Promise<StoredEvent[]> {
    if (query.limit <= 0) return [];
    let q = this.db.selectFrom('events').selectAll().where('seq', '>', query.after).orderBy('seq').limit(query.limit);
    if (query.accountId !== undefined) q = q.where('account_id', '=', query.accountId);
    if (query.repository !== undefined) q = q.where('repository', '=', query.repository);
    return (await q.execute()).map(toEvent);
  }

  async readBackward(query: { before: number; limit: number; accountId?: string | undefined; repository?: string | undefined }): Promise<StoredEvent[]> {
    if (query.limit <= 0) return [];
    // Backwards along events_account (or events_repository) when filtered, the primary key otherwise.
    let q = this.db.selectFrom('events').selectAll().where('seq', '<', query.before).orderBy('seq', 'desc').limit(query.limit);
    if (query.accountId !== undefined) q = q.where('account_id', '=', query.accountId);
    if (query.repository !== undefined) q = q.where('repository', '=', query.repository);
    return (await q.execute()).map(toEvent);
  }

  async lastSeq(): Promise<number> {
    const r = await this.db.selectFrom('events').select((eb) => eb.fn.max('seq').as('seq')).executeTakeFirst();
    return r?.seq === null || r?.seq === undefined ? 0 : Number(r.seq);
  }

  async consumer(name: string): Promise<ConsumerState> {
    await this.ensureConsumer(name);
    const r = await this.db.selectFrom('event_consumers').selectAll().where('name', '=', name).executeTakeFirstOrThrow();
    return toConsumer(r);
  }

  async acquireConsumer(name: string, owner: string, nowMs: number, untilMs: number): Promise<boolean> {
    await this.ensureConsumer(name);
    // One conditional UPDATE, as acquireJob: the database serialises writers to the row, so of
    // concurrent callers at most one sees the condition hold.
    const res = await this.db
      .updateTable('event_consumers')
      .set({ lease_owner: owner, lease_until: untilMs })
      .where('name', '=', name)
      .where((eb) => eb.or([eb('lease_owner', '=', owner), eb('lease_until', 'is', null), eb('lease_until', '<', nowMs)]))
      .executeTakeFirst();
    return Number(res.numUpdatedRows) > 0;
  }

  async advanceConsumer(name: string, owner: string, cursor: number): Promise<boolean> {
    const res = await this.db
      .updateTable('event_consumers')
      .set({ cursor: sql<number>`case when ${sql.ref('cursor')} < ${cursor} then ${cursor} else ${sql.ref('cursor')} end` })
      .where('name', '=', name)
      .where('lease_owner', '=', owner)
      .executeTakeFirst();
    return Number(res.numUpdatedRows) > 0;
  }

  async releaseConsumer(name: string, owner: string): Promise<void> {
    await this.db.updateTable('event_consumers').set({ lease_owner: null, lease_until: null }).where('name', '=', name).where('lease_owner', '=', owner).execute();
  }

  async prune(beforeMs: number): Promise<number> {
    // In windows (pacing.ts), each found through events_time alone. The lowest cursor is read
    // again for each window: cursors only move forward, so a later read only narrows it, and a
    // consumer that appears meanwhile (at cursor 0) stops the pass at the next window.
    const window = scanWindow(this.dialect);
    const pace = pacer();
    let deleted = 0;
    for (;;) {
      const lowest = await this.db.selectFrom('event_consumers').select((eb) => eb.fn.min('cursor').as('cursor')).executeTakeFirst();
      const upto = lowest?.cursor === null || lowest?.cursor === undefined ? undefined : Number(lowest.cursor);
      const res = await this.db
        .deleteFrom('events')
        .where('seq', 'in', (eb) => {
          let q = eb.selectFrom('events').select('seq').where('time_ms', '<', beforeMs);
          if (upto !== undefined) q = q.where('seq', '<=', upto);
          return q.limit(window);
        })
        .executeTakeFirst();
      const n = Number(res.numDeletedRows);
      deleted += n;
      if (n < window) return deleted;
      await pace();
    }
  }

  private async ensureConsumer(name: string): Promise<void> {
    await this.db.insertInto('event_consumers').values({ name }).onConflict((oc) => oc.column('name').doNothing()).execute();
  }

  async listConsumers(): Promise<ConsumerState[]> {
    return (await this.db.selectFrom('event_consumers').selectAll().orderBy('name').execute()).map(toConsumer);
  }

  async deleteConsumer(name: string): Promise<void> {
    await this.db.deleteFrom('event_consumers').where('name', '=', name).execute();
  }

  async createWebhook(subscription: WebhookSubscription): Promise<void> {
    await this.inTransaction(async (db) => {
      await db.insertInto('webhook_subscriptions').values(webhookRow(subscription)).execute();
      await startConsumerAtEnd(db, subscription.id);
    });
  }

  async upsertWebhook(subscription: WebhookSubscription): Promise<'created' | 'updated'> {
    return this.inTransaction(async (db) => {
      // The insert decides who creates: a concurrent insert of the same id waits for the first
      // to commit (PostgreSQL's unique index; SQLite's one writer) and then inserts nothing, so
      // only the creator places the cursor and nobody moves one a dispatcher may have advanced.
      const res = await db
        .insertInto('webhook_subscriptions')
        .values(webhookRow(subscription))
        .onConflict((oc) => oc.column('id').doNothing())
        .executeTakeFirst();
      if (Number(res.numInsertedOrUpdatedRows ?? 0n) > 0) {
        await startConsumerAtEnd(db, subscription.id);
        return 'created';
      }
      const { id: _id, created_at: _createdAt, ...fields } = webhookRow(subscription);
      await db.updateTable('webhook_subscriptions').set(fields).where('id', '=', subscription.id).execute();
      return 'updated';
    });
  }

  async listWebhooks(options: { idPrefix?: string } = {}): Promise<WebhookSubscription[]> {
    let q = this.db.selectFrom('webhook_subscriptions').selectAll();
    // substr rather than LIKE: LIKE has wildcards to escape, and is case-insensitive on SQLite.
    if (options.idPrefix !== undefined) q = q.where(sql<boolean>`substr(${sql.ref('id')}, 1, ${sql.lit(options.idPrefix.length)}) = ${options.idPrefix}`);
    return (await q.orderBy('created_at').orderBy('id').execute()).map(toWebhook);
  }

  async getWebhook(id: string): Promise<WebhookSubscription | undefined> {
    const r = await this.db.selectFrom('webhook_subscriptions').selectAll().where('id', '=', id).executeTakeFirst();
    return r && toWebhook(r);
  }

  async setWebhookDisabled(id: string, isDisabled: boolean): Promise<boolean> {
    const res = await this.db.updateTable('webhook_subscriptions').set({ is_disabled: isDisabled ? 1 : 0 }).where('id', '=', id).executeTakeFirst();
    return Number(res.numUpdatedRows) > 0;
  }

  async deleteWebhook(id: string): Promise<boolean> {
    return this.inTransaction(async (db) => {
      await db.deleteFrom('webhook_dead_letters').where('subscription_id', '=', id).execute();
      await db.deleteFrom('event_consumers').where('name', '=', webhookConsumer(id)).execute();
      const res = await db.deleteFrom('webhook_subscriptions').where('id', '=', id).executeTakeFirst();
      return Number(res.numDeletedRows) > 0;
    });
  }

  async putDeadLetter(letter: DeadLetter): Promise<void> {
    const row = {
      subscription_id: letter.subscriptionId,
      seq: letter.seq,
      event_id: letter.eventId,
      attempts: letter.attempts,
      last_error: letter.lastError,
      failed_at: letter.failedAtMs,
      body: JSON.stringify(letter.body),
    };
    await this.db
      .insertInto('webhook_dead_letters')
      .values(row)
      .onConflict((oc) => oc.columns(['subscription_id', 'seq']).doUpdateSet({ event_id: row.event_id, attempts: row.attempts, last_error: row.last_error, failed_at: row.failed_at, body: row.body }))
      .execute();
  }

  async listDeadLetters(subscriptionId: string, options: { afterSeq?: number; limit?: number } = {}): Promise<DeadLetter[]> {
    let q = this.db.selectFrom('webhook_dead_letters').selectAll().where('subscription_id', '=', subscriptionId).orderBy('seq');
    if (options.afterSeq !== undefined) q = q.where('seq', '>', options.afterSeq);
    if (options.limit !== undefined) q = q.limit(options.limit);
    return (await q.execute()).map(toDeadLetter);
  }

  async countDeadLetters(subscriptionId: string): Promise<number> {
    const r = await this.db.selectFrom('webhook_dead_letters').select((eb) => eb.fn.countAll().as('n')).where('subscription_id', '=', subscriptionId).executeTakeFirst();
    return Number(r?.n ?? 0);
  }

  async deleteDeadLetter(subscriptionId: string, seq: number): Promise<boolean> {
    const res = await this.db.deleteFrom('webhook_dead_letters').where('subscription_id', '=', subscriptionId).where('seq', '=', seq).executeTakeFirst();
    return Number(res.numDeletedRows) > 0;
  }
}
