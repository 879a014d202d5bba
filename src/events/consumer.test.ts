import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { openSqliteMetaStore } from '../store/meta/sqlite/sqlite-meta-store.ts';
import { consumeEvents } from './consumer.ts';

test('consumeEvents hands every event over once, in batches under the lease, and moves the cursor past each', async (t) => {
  const dir = await mkdtemp(path.join(tmpdir(), 'berth-consumer-'));
  const meta = await openSqliteMetaStore(path.join(dir, 'metadata.db'));
  t.after(async () => {
    await meta.close();
    await rm(dir, { recursive: true, force: true });
  });
  const events = Array.from({ length: 450 }, (_, i) => ({ id: `00000000-0000-4000-8000-${String(i).padStart(12, '0')}`, accountId: '111122223333', repository: 'team/app', detailType: 'ECR Image Action', timeMs: i, body: { i } }));
  await meta.events.append(events);
  let now = 1_000;
  const clock = () => now;
  const seen: number[] = [];
  const batches: number[] = [];
  assert.equal(await consumeEvents(meta.events, { name: 'c', owner: 'node-a', leaseMs: 10_000, now: clock }, async (batch) => {
    batches.push(batch.length);
    seen.push(...batch.map((e) => (e.body as { i: number }).i));
  }), 450);
  assert.deepEqual(batches, [200, 200, 50]);
  assert.deepEqual(seen, events.map((_, i) => i));
  assert.equal((await meta.events.consumer('c')).cursor, await meta.events.lastSeq());

  // Another node finds nothing to do, and an idle pass takes no lease.
  assert.equal(await consumeEvents(meta.events, { name: 'c', owner: 'node-b', leaseMs: 10_000, now: clock }, async () => assert.fail('nothing is new')), 0);
  assert.equal((await meta.events.consumer('c')).leaseOwner, 'node-a');

  // While node-a's lease lasts, node-b handles nothing new; a batch that fails is handed over again.
  await meta.events.append([{ ...events[0]!, id: '00000000-0000-4000-8000-999999999999', body: { i: 450 } }]);
  assert.equal(await consumeEvents(meta.events, { name: 'c', owner: 'node-b', leaseMs: 10_000, now: clock }, async () => assert.fail('node-a holds the lease')), 0);
  now += 20_000;
  await assert.rejects(consumeEvents(meta.events, { name: 'c', owner: 'node-b', leaseMs: 10_000, now: clock }, async () => {
    throw new Error('the node died mid-batch');
  }));
  const again: number[] = [];
  assert.equal(await consumeEvents(meta.events, { name: 'c', owner: 'node-b', leaseMs: 10_000, now: clock }, async (batch) => void again.push(...batch.map((e) => (e.body as { i: number }).i))), 1);
  assert.deepEqual(again, [450]);
});
