import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { describe, test, type TestContext } from 'node:test';
import { webhookConsumer, type DeadLetter, type NewEvent, type StoredEvent, type WebhookSubscription } from '../../src/store/meta/event-store.ts';
import type { MetaStore } from '../../src/store/meta/meta-store.ts';
import { waitFor } from '../support/oci.ts';
import { T0, type MetaStoreHarness } from './harness.ts';

const ACCOUNT = '111122223333';
const OTHER_ACCOUNT = '444455556666';

export interface EventStoreHarness extends MetaStoreHarness {
  /**
   * How many sessions are waiting for the lock that append takes on PostgreSQL (from
   * pg_locks). Only a driver with such a lock gives it; the ordering test runs where it does.
   */
  appendLockWaiters?: () => Promise<number>;
}

/** An event as the registry writes one, with a fresh id and a body that carries it. */
function event(overrides: Partial<NewEvent> = {}): NewEvent {
  const id = overrides.id ?? randomUUID();
  const accountId = overrides.accountId ?? ACCOUNT;
  const repository = overrides.repository === undefined ? 'ev/app' : overrides.repository;
  const detailType = overrides.detailType ?? 'ECR Image Action';
  const timeMs = overrides.timeMs ?? T0;
  return {
    id,
    accountId,
    repository,
    detailType,
    timeMs,
    body: overrides.body ?? { version: '0', id, 'detail-type': detailType, account: accountId, time: new Date(timeMs).toISOString(), detail: { 'repository-name': repository, 'image-tag': 'ü/😀' } },
  };
}

function subscription(overrides: Partial<WebhookSubscription> = {}): WebhookSubscription {
  return {
    id: randomUUID(),
    accountId: ACCOUNT,
    url: 'https://hooks.example.com/berth?x=ü',
    pattern: '{"detail-type":["ECR Image Action"]}',
    secretSealed: 'v1:c2VhbGVk',
    headers: { Authorization: 'Bearer t', 'X-Team': 'ü/😀' },
    timeoutMs: 10_000,
    maxAttempts: 10,
    createdAtMs: T0,
    isDisabled: false,
    ...overrides,
  };
}

function deadLetter(subscriptionId: string, seq: number, overrides: Partial<DeadLetter> = {}): DeadLetter {
  const eventId = overrides.eventId ?? randomUUID();
  return { subscriptionId, seq, eventId, attempts: 3, lastError: 'HTTP 500', failedAtMs: T0 + seq, body: { id: eventId, detail: { 'image-tag': 'ü' } }, ...overrides };
}

function ids(events: { id: string }[]): string[] {
  return events.map((e) => e.id);
}

async function all(store: MetaStore): Promise<StoredEvent[]> {
  return store.events.read({ after: 0, limit: 10_000 });
}

/** A promise and the function that resolves it. */
function signal(): { promise: Promise<void>; resolve(): void } {
  let resolve!: () => void;
  const promise = new Promise<void>((r) => (resolve = r));
  return { promise, resolve };
}

/** The event outbox and its consumers (EventStore, docs/adr/0012-event-outbox.md), on every MetaStore driver. */
export function eventStoreContract(name: string, open: () => Promise<EventStoreHarness>): void {
  function eventTest(title: string, fn: (store: MetaStore, harness: EventStoreHarness, t: TestContext) => Promise<void>): void {
    test(title, async (t) => {
      const harness = await open();
      try {
        await fn(harness.store, harness, t);
      } finally {
        await harness.cleanup();
      }
    });
  }

  describe(`EventStore contract: ${name}`, () => {
    eventTest('events appended in a transaction appear when it commits, in order, and not at all when it rolls back', async (store) => {
      assert.equal(await store.events.lastSeq(), 0, 'an empty log');
      assert.deepEqual(await all(store), []);

      const first = [event({ timeMs: T0 + 1 }), event({ timeMs: T0 + 2, repository: null, detailType: 'ECR Registry Policy' })];
      await store.transaction(async (tx) => {
        await tx.events.append(first);
        // The transaction sees its own events; others are shown them only after the commit.
        assert.deepEqual(ids(await tx.events.read({ after: 0, limit: 10 })), first.map((e) => e.id));
      });
      const committed = await all(store);
      assert.deepEqual(
        committed.map(({ seq: _seq, ...e }) => e),
        first,
        'every field comes back as written, the body as JSON',
      );
      assert.ok(committed[0]!.seq > 0 && committed[1]!.seq > committed[0]!.seq, 'sequence numbers increase in the order of the call');
      assert.equal(await store.events.lastSeq(), committed[1]!.seq);

      const rolledBack = event();
      await assert.rejects(
        store.transaction(async (tx) => {
          await tx.createRepository(ACCOUNT, 'ev/rolled-back', T0);
          await tx.events.append([rolledBack]);
          throw new Error('the change failed');
        }),
        /the change failed/,
      );
      assert.deepEqual(ids(await all(store)), first.map((e) => e.id), 'no event of a rolled-back change');
      assert.equal(await store.getRepository(ACCOUNT, 'ev/rolled-back'), undefined);
      assert.equal(await store.events.lastSeq(), committed[1]!.seq);

      // Its id was never taken, and the next event comes after the committed ones.
      await store.transaction((tx) => tx.events.append([rolledBack]));
      const after = await store.events.read({ after: committed[1]!.seq, limit: 10 });
      assert.deepEqual(ids(after), [rolledBack.id]);
      assert.ok(after[0]!.seq > committed[1]!.seq);
    });

    eventTest('read: after a sequence number, in sequence order, at most limit, by account and by repository', async (store) => {
      const written = [
        event({ repository: 'ev/a', timeMs: T0 }),
        event({ repository: 'ev/b' }),
        event({ accountId: OTHER_ACCOUNT, repository: 'ev/a' }),
        event({ repository: null, detailType: 'ECR Registry Policy' }),
        event({ repository: 'ev/a', timeMs: 2 ** 41 }),
        event({ accountId: OTHER_ACCOUNT, repository: null }),
      ];
      // Several calls, in and out of transactions.
      await store.events.append(written.slice(0, 2));
      await store.transaction((tx) => tx.events.append(written.slice(2, 5)));
      await store.events.append([]);
      await store.events.append(written.slice(5));

      const log = await all(store);
      assert.deepEqual(ids(log), ids(written));
      for (let i = 1; i < log.length; i++) assert.ok(log[i]!.seq > log[i - 1]!.seq, 'strictly increasing');
      assert.equal(log[4]!.timeMs, 2 ** 41, 'times past 2^32 come back as numbers');
      assert.equal(await store.events.lastSeq(), log.at(-1)!.seq);

      const seq = log.map((e) => e.seq);
      assert.deepEqual(ids(await store.events.read({ after: seq[1]!, limit: 100 })), ids(log.slice(2)));
      assert.deepEqual(ids(await store.events.read({ after: 0, limit: 2 })), ids(log.slice(0, 2)));
      assert.deepEqual(ids(await store.events.read({ after: seq[2]!, limit: 2 })), ids(log.slice(3, 5)));
      assert.deepEqual(await store.events.read({ after: seq.at(-1)!, limit: 100 }), []);
      assert.deepEqual(await store.events.read({ after: 0, limit: 0 }), []);

      assert.deepEqual(ids(await store.events.read({ after: 0, limit: 100, accountId: ACCOUNT })), ids([log[0]!, log[1]!, log[3]!, log[4]!]), 'an account’s, registry-wide ones included');
      assert.deepEqual(ids(await store.events.read({ after: 0, limit: 100, accountId: OTHER_ACCOUNT })), ids([log[2]!, log[5]!]));
      assert.deepEqual(ids(await store.events.read({ after: 0, limit: 100, accountId: ACCOUNT, repository: 'ev/a' })), ids([log[0]!, log[4]!]), 'a repository’s, in that account only');
      assert.deepEqual(ids(await store.events.read({ after: seq[0]!, limit: 1, accountId: ACCOUNT, repository: 'ev/a' })), ids([log[4]!]));
      assert.deepEqual(await store.events.read({ after: 0, limit: 100, accountId: ACCOUNT, repository: 'ev/none' }), []);
      assert.deepEqual(await store.events.read({ after: 0, limit: 100, accountId: '999999999999' }), []);

      // Backwards: newest first, before a sequence number, with the same filters.
      const reversed = [...log].reverse();
      assert.deepEqual(ids(await store.events.readBackward({ before: Number.MAX_SAFE_INTEGER, limit: 100 })), ids(reversed));
      assert.deepEqual(ids(await store.events.readBackward({ before: seq[4]!, limit: 2 })), ids([log[3]!, log[2]!]));
      assert.deepEqual(ids(await store.events.readBackward({ before: seq[0]!, limit: 100 })), []);
      assert.deepEqual(await store.events.readBackward({ before: Number.MAX_SAFE_INTEGER, limit: 0 }), []);
      assert.deepEqual(ids(await store.events.readBackward({ before: Number.MAX_SAFE_INTEGER, limit: 100, accountId: ACCOUNT })), ids([log[4]!, log[3]!, log[1]!, log[0]!]));
      assert.deepEqual(ids(await store.events.readBackward({ before: seq[4]!, limit: 1, accountId: ACCOUNT })), ids([log[3]!]), 'pages go on from the last one read');
      assert.deepEqual(ids(await store.events.readBackward({ before: Number.MAX_SAFE_INTEGER, limit: 100, accountId: ACCOUNT, repository: 'ev/a' })), ids([log[4]!, log[0]!]));
      assert.deepEqual(await store.events.readBackward({ before: Number.MAX_SAFE_INTEGER, limit: 100, accountId: '999999999999' }), []);
    });

    eventTest('an event id is unique: appending one again fails, and nothing of that call is written', async (store) => {
      const taken = event();
      await store.events.append([taken]);
      const fresh = event();
      await assert.rejects(store.events.append([fresh, event({ id: taken.id })]));
      await assert.rejects(store.transaction((tx) => tx.events.append([event({ id: taken.id })])));
      assert.deepEqual(ids(await all(store)), [taken.id]);
      await store.events.append([fresh]);
      assert.deepEqual(ids(await all(store)), [taken.id, fresh.id]);
    });

    eventTest('sequence numbers are never reused, even after pruning has emptied the log', async (store) => {
      await store.events.append([event(), event(), event()]);
      const highest = await store.events.lastSeq();
      assert.equal(await store.events.prune(T0 + 1), 3);
      assert.deepEqual(await all(store), []);
      await store.events.append([event()]);
      const [next] = await all(store);
      assert.ok(next!.seq > highest, `${next!.seq} comes after ${highest}`);
    });

    eventTest('a consumer starts at cursor 0; its lease is taken, renewed, refused to others until it expires, and released', async (store) => {
      const idle = { name: 'webhook:a', cursor: 0, leaseOwner: null, leaseUntilMs: null };
      assert.deepEqual(await store.events.consumer('webhook:a'), idle);
      assert.deepEqual(await store.events.consumer('webhook:a'), idle, 'idempotent');

      assert.equal(await store.events.acquireConsumer('webhook:a', 'node-1', T0, T0 + 1000), true);
      assert.deepEqual(await store.events.consumer('webhook:a'), { ...idle, leaseOwner: 'node-1', leaseUntilMs: T0 + 1000 });
      assert.equal(await store.events.acquireConsumer('webhook:a', 'node-2', T0 + 500, T0 + 1500), false, 'held by another');
      assert.equal(await store.events.acquireConsumer('webhook:a', 'node-1', T0 + 500, T0 + 2000), true, 'renewed by its owner');
      assert.equal(await store.events.acquireConsumer('webhook:a', 'node-2', T0 + 1999, T0 + 3000), false, 'still held');
      assert.deepEqual(await store.events.consumer('webhook:a'), { ...idle, leaseOwner: 'node-1', leaseUntilMs: T0 + 2000 });

      assert.equal(await store.events.advanceConsumer('webhook:a', 'node-1', 7), true);
      assert.equal(await store.events.advanceConsumer('webhook:a', 'node-2', 9), false, 'only the owner moves the cursor');
      assert.equal((await store.events.consumer('webhook:a')).cursor, 7);

      assert.equal(await store.events.acquireConsumer('webhook:a', 'node-2', T0 + 2001, T0 + 3000), true, 'taken over once expired');
      assert.deepEqual(await store.events.consumer('webhook:a'), { name: 'webhook:a', cursor: 7, leaseOwner: 'node-2', leaseUntilMs: T0 + 3000 });
      assert.equal(await store.events.advanceConsumer('webhook:a', 'node-1', 8), false, 'the old owner has lost it');
      assert.equal(await store.events.acquireConsumer('webhook:a', 'node-1', T0 + 2002, T0 + 4000), false);

      assert.equal(await store.events.advanceConsumer('webhook:a', 'node-2', 12), true);
      assert.equal(await store.events.advanceConsumer('webhook:a', 'node-2', 10), true, 'the owner is answered true');
      assert.equal((await store.events.consumer('webhook:a')).cursor, 12, 'but the cursor never moves back');
      assert.equal(await store.events.advanceConsumer('webhook:a', 'node-2', 2 ** 40), true);
      assert.equal((await store.events.consumer('webhook:a')).cursor, 2 ** 40, 'cursors past 2^32 come back as numbers');

      await store.events.releaseConsumer('webhook:a', 'node-1');
      assert.equal((await store.events.consumer('webhook:a')).leaseOwner, 'node-2', 'only the owner releases');
      await store.events.releaseConsumer('webhook:a', 'node-2');
      assert.deepEqual(await store.events.consumer('webhook:a'), { name: 'webhook:a', cursor: 2 ** 40, leaseOwner: null, leaseUntilMs: null });
      assert.equal(await store.events.advanceConsumer('webhook:a', 'node-2', 2 ** 41), false, 'released: no owner moves it');
      assert.equal(await store.events.acquireConsumer('webhook:a', 'node-1', T0 + 2003, T0 + 4000), true, 'free again before the old lease would have ended');

      // A consumer never seen is created by acquiring it, and cannot be advanced before.
      assert.equal(await store.events.advanceConsumer('webhook:b', 'node-1', 5), false);
      assert.equal(await store.events.acquireConsumer('webhook:b', 'node-1', T0, T0 + 10), true);
      assert.deepEqual(await store.events.consumer('webhook:b'), { name: 'webhook:b', cursor: 0, leaseOwner: 'node-1', leaseUntilMs: T0 + 10 });
    });

    eventTest('of nodes acquiring one consumer at once, one gets it', async (store) => {
      const results = await Promise.all(Array.from({ length: 8 }, (_, i) => store.events.acquireConsumer('replication', `node-${i}`, T0, T0 + 1000)));
      assert.equal(results.filter(Boolean).length, 1);
      const winner = results.indexOf(true);
      assert.equal((await store.events.consumer('replication')).leaseOwner, `node-${winner}`);
    });

    eventTest('prune deletes events older than the time that every consumer has passed, and no others', async (store) => {
      const written = Array.from({ length: 6 }, (_, i) => event({ timeMs: T0 + i }));
      await store.events.append(written);
      const seq = (await all(store)).map((e) => e.seq);

      await store.events.acquireConsumer('a', 'n', T0, T0 + 1000);
      await store.events.advanceConsumer('a', 'n', seq[3]!);
      await store.events.acquireConsumer('b', 'n', T0, T0 + 1000);
      await store.events.advanceConsumer('b', 'n', seq[1]!);

      assert.equal(await store.events.prune(T0 + 100), 2, 'up to the lowest cursor');
      assert.deepEqual(ids(await all(store)), ids(written.slice(2)));

      await store.events.advanceConsumer('b', 'n', seq[4]!);
      assert.equal(await store.events.prune(T0 + 3), 1, 'only those written before the time');
      assert.deepEqual(ids(await all(store)), ids(written.slice(3)));
      assert.equal(await store.events.prune(T0 + 3), 0);

      assert.equal(await store.events.prune(T0 + 100), 1, 'now up to a’s cursor');
      assert.deepEqual(ids(await all(store)), ids(written.slice(4)));

      // A consumer that has handled nothing keeps everything.
      await store.events.consumer('c');
      assert.equal(await store.events.prune(T0 + 100), 0);
      assert.deepEqual(ids(await all(store)), ids(written.slice(4)));
      assert.equal(await store.events.lastSeq(), seq[5]);
    });

    eventTest('prune without consumers deletes every event older than the time, however many', async (store) => {
      const old = Array.from({ length: 2500 }, (_, i) => event({ timeMs: T0 + (i % 10) }));
      const recent = [event({ timeMs: T0 + 10 }), event({ timeMs: T0 + 11 })];
      // Old and recent interleaved in sequence order: pruning goes by time, not by position.
      await store.transaction(async (tx) => {
        await tx.events.append(old.slice(0, 1200));
        await tx.events.append([recent[0]!]);
        await tx.events.append(old.slice(1200));
        await tx.events.append([recent[1]!]);
      });
      assert.equal(await store.events.prune(T0 + 10), old.length);
      assert.deepEqual(ids(await all(store)), recent.map((e) => e.id));
    });

    eventTest('webhook subscriptions: created with their consumer at the end of the log, listed, disabled and deleted with their consumer', async (store) => {
      await store.events.append([event(), event()]);
      const last = await store.events.lastSeq();
      const a = subscription({ createdAtMs: T0 + 1 });
      const b = subscription({ accountId: null, pattern: null, headers: {}, createdAtMs: T0, isDisabled: true });
      await store.events.createWebhook(a);
      await store.events.createWebhook(b);
      assert.deepEqual(await store.events.getWebhook(a.id), a, 'every field comes back as written');
      assert.deepEqual(await store.events.getWebhook(b.id), b, 'nulls and an empty header set too');
      assert.equal(await store.events.getWebhook(randomUUID()), undefined);
      assert.deepEqual((await store.events.listWebhooks()).map((w) => w.id), [b.id, a.id], 'oldest first');
      assert.deepEqual(await store.events.consumer(webhookConsumer(a.id)), { name: webhookConsumer(a.id), cursor: last, leaseOwner: null, leaseUntilMs: null }, 'the history is not for it');

      await assert.rejects(store.events.createWebhook({ ...a, url: 'https://other.example.com/' }), 'an id is taken once');
      assert.equal((await store.events.getWebhook(a.id))?.url, a.url);

      assert.equal(await store.events.setWebhookDisabled(b.id, false), true);
      assert.equal((await store.events.getWebhook(b.id))?.isDisabled, false);
      assert.equal(await store.events.setWebhookDisabled(randomUUID(), true), false);

      await store.events.putDeadLetter(deadLetter(a.id, 1));
      assert.equal(await store.events.deleteWebhook(a.id), true);
      assert.equal(await store.events.getWebhook(a.id), undefined);
      assert.deepEqual(await store.events.listDeadLetters(a.id), [], 'its dead letters go with it');
      assert.equal(await store.events.deleteWebhook(a.id), false);
      assert.deepEqual((await store.events.listWebhooks()).map((w) => w.id), [b.id]);
      // Its consumer went too, so it no longer holds back pruning; b's cursor is at the end.
      assert.equal(await store.events.prune(T0 + 1), 2);
    });

    eventTest('a subscription created inside a transaction that rolls back leaves nothing', async (store) => {
      const a = subscription();
      await assert.rejects(
        store.transaction(async (tx) => {
          await tx.events.createWebhook(a);
          throw new Error('the change failed');
        }),
        /the change failed/,
      );
      assert.equal(await store.events.getWebhook(a.id), undefined);
      await store.events.append([event()]);
      assert.equal(await store.events.prune(T0 + 1), 1, 'no consumer was left behind');
    });

    eventTest('upsertWebhook: creates at the end of the log, then updates everything but the creation time, keeping the cursor and dead letters', async (store) => {
      await store.events.append([event(), event()]);
      const last = await store.events.lastSeq();
      const a = subscription({ id: 'config:a', createdAtMs: T0 });
      assert.equal(await store.events.upsertWebhook(a), 'created');
      assert.deepEqual(await store.events.getWebhook(a.id), a);
      assert.equal((await store.events.consumer(webhookConsumer(a.id))).cursor, last, 'the history is not for it');

      const owner = 'node-1';
      assert.equal(await store.events.acquireConsumer(webhookConsumer(a.id), owner, T0, T0 + 30_000), true);
      await store.events.append([event()]);
      assert.equal(await store.events.advanceConsumer(webhookConsumer(a.id), owner, last + 1), true);
      await store.events.putDeadLetter(deadLetter(a.id, last + 1));

      const changed = subscription({ id: a.id, accountId: null, url: 'https://other.example.com/hook', pattern: null, secretSealed: 'v1:b3RoZXI=', headers: {}, timeoutMs: 1000, maxAttempts: 2, createdAtMs: T0 + 5, isDisabled: true });
      assert.equal(await store.events.upsertWebhook(changed), 'updated');
      assert.deepEqual(await store.events.getWebhook(a.id), { ...changed, createdAtMs: T0 }, 'every field replaced but the creation time');
      assert.deepEqual(await store.events.consumer(webhookConsumer(a.id)), { name: webhookConsumer(a.id), cursor: last + 1, leaseOwner: owner, leaseUntilMs: T0 + 30_000 }, 'cursor and lease untouched');
      assert.equal((await store.events.listDeadLetters(a.id)).length, 1, 'dead letters kept');
      assert.equal(await store.events.upsertWebhook(changed), 'updated', 'idempotent');
      assert.equal((await store.events.consumer(webhookConsumer(a.id))).cursor, last + 1);
    });

    eventTest('upsertWebhook: of concurrent callers for a new id, one creates it and the rest update it', async (store) => {
      await store.events.append([event()]);
      const id = 'config:race';
      const outcomes = await Promise.all(Array.from({ length: 5 }, (_, i) => store.events.upsertWebhook(subscription({ id, url: `https://hooks.example.com/${i}` }))));
      assert.deepEqual(outcomes.filter((o) => o === 'created').length, 1, `one creator: ${outcomes.join(', ')}`);
      assert.deepEqual((await store.events.listWebhooks()).map((w) => w.id), [id]);
      assert.equal((await store.events.consumer(webhookConsumer(id))).cursor, await store.events.lastSeq());
    });

    eventTest('listWebhooks with idPrefix: only ids starting with it, exactly (no wildcards, case-sensitive)', async (store) => {
      const names = ['config:a', 'config:b', 'Config:c', 'configXd', 'config_e', randomUUID()];
      for (const [i, id] of names.entries()) await store.events.createWebhook(subscription({ id, createdAtMs: T0 + i }));
      assert.deepEqual((await store.events.listWebhooks({ idPrefix: 'config:' })).map((w) => w.id), ['config:a', 'config:b'], 'oldest first');
      assert.deepEqual((await store.events.listWebhooks({ idPrefix: 'config_' })).map((w) => w.id), ['config_e'], '_ is no wildcard');
      assert.deepEqual((await store.events.listWebhooks({ idPrefix: '%' })).map((w) => w.id), [], '% is no wildcard');
      assert.deepEqual((await store.events.listWebhooks({ idPrefix: '' })).length, names.length);
      assert.deepEqual((await store.events.listWebhooks()).map((w) => w.id), names);
    });

    eventTest('dead letters: recorded per subscription and sequence number, replaced, listed in order, deleted', async (store) => {
      const a = subscription();
      const b = subscription();
      await store.events.createWebhook(a);
      await store.events.createWebhook(b);
      const letters = [deadLetter(a.id, 2 ** 40), deadLetter(a.id, 3), deadLetter(a.id, 7)];
      for (const l of letters) await store.events.putDeadLetter(l);
      await store.events.putDeadLetter(deadLetter(b.id, 3));
      assert.deepEqual(await store.events.listDeadLetters(a.id), [letters[1], letters[2], letters[0]], 'in sequence order, every field as written');
      assert.deepEqual((await store.events.listDeadLetters(a.id, { afterSeq: 3 })).map((l) => l.seq), [7, 2 ** 40]);
      assert.deepEqual((await store.events.listDeadLetters(a.id, { limit: 2 })).map((l) => l.seq), [3, 7]);
      assert.deepEqual(await store.events.listDeadLetters(randomUUID()), []);
      assert.equal(await store.events.countDeadLetters(a.id), 3);
      assert.equal(await store.events.countDeadLetters(randomUUID()), 0);

      const again = deadLetter(a.id, 7, { eventId: letters[2]!.eventId, attempts: 9, lastError: 'timed out', failedAtMs: T0 + 99 });
      await store.events.putDeadLetter(again);
      assert.deepEqual((await store.events.listDeadLetters(a.id)).find((l) => l.seq === 7), again, 'the same event again replaces its record');
      assert.equal((await store.events.listDeadLetters(a.id)).length, 3);

      assert.equal(await store.events.deleteDeadLetter(a.id, 3), true);
      assert.equal(await store.events.deleteDeadLetter(a.id, 3), false);
      assert.deepEqual((await store.events.listDeadLetters(a.id)).map((l) => l.seq), [7, 2 ** 40]);
      assert.deepEqual((await store.events.listDeadLetters(b.id)).map((l) => l.seq), [3], 'another subscription’s are its own');

      await assert.rejects(store.events.putDeadLetter(deadLetter(randomUUID(), 1)), 'only for a subscription that exists');
    });

    eventTest('listConsumers lists them by name; deleteConsumer forgets one, so it no longer holds back pruning', async (store) => {
      await store.events.append([event(), event()]);
      await store.events.consumer('stuck');
      assert.equal(await store.events.prune(T0 + 1), 0);
      await store.events.consumer('other');
      assert.deepEqual((await store.events.listConsumers()).map((c) => c.name), ['other', 'stuck']);
      await store.events.deleteConsumer('stuck');
      await store.events.deleteConsumer('stuck');
      assert.deepEqual((await store.events.listConsumers()).map((c) => c.name), ['other']);
      await store.events.deleteConsumer('other');
      assert.equal(await store.events.prune(T0 + 1), 2);
      assert.equal((await store.events.consumer('stuck')).cursor, 0, 'named again, it starts over');
    });

    eventTest('ordering: an append waits for an earlier appender to commit, so a reader never sees a later event first', async (store, harness, t) => {
      const lockWaiters = harness.appendLockWaiters;
      if (!lockWaiters) {
        // A second transaction cannot even begin while the first is open.
        t.skip('writers are serialised by the database lock');
        return;
      }
      const a = event({ repository: 'ev/first' });
      const b = event({ repository: 'ev/second' });

      // A reader that polls throughout, as a consumer does: past its cursor, advancing it over
      // what it got; and the whole log each time, to see what was visible together.
      const seen: StoredEvent[] = [];
      const snapshots: string[][] = [];
      let reading = true;
      const reader = (async () => {
        let cursor = 0;
        while (reading) {
          for (const e of await store.events.read({ after: cursor, limit: 100 })) {
            seen.push(e);
            cursor = e.seq;
          }
          snapshots.push(ids(await all(store)));
          await new Promise((resolve) => setImmediate(resolve));
        }
      })();

      const aAppended = signal();
      const commitA = signal();
      const txA = store.transaction(async (tx) => {
        await tx.events.append([a]);
        aAppended.resolve();
        await commitA.promise;
      });
      let txB: Promise<void> = Promise.resolve();
      try {
        await aAppended.promise;
        let bCommitted = false;
        txB = store.transaction((tx) => tx.events.append([b])).then(() => {
          bCommitted = true;
        });
        await waitFor(async () => bCommitted || (await lockWaiters()) > 0, { what: 'B to wait for the append lock, or commit' });
        assert.equal(bCommitted, false, 'B’s append waits while A’s transaction is open');
        assert.deepEqual(await all(store), [], 'nothing is visible before A commits');

        commitA.resolve();
        await Promise.all([txA, txB]);
        await waitFor(async () => seen.length >= 2, { what: 'the reader to see both events' });
      } finally {
        // Settle everything before the harness closes the store, whatever failed.
        commitA.resolve();
        reading = false;
        await Promise.allSettled([txA, txB, reader]);
      }

      assert.deepEqual(ids(seen), [a.id, b.id], 'the reader’s cursor passed over nothing');
      assert.ok(seen[0]!.seq < seen[1]!.seq);
      for (const s of snapshots) assert.deepEqual(s, [a.id, b.id].slice(0, s.length), `never B without A before it: ${JSON.stringify(s)}`);
    });
  });
}
