import assert from 'node:assert/strict';
import { test } from 'node:test';
import pino from 'pino';
import { openSqliteMetaStore } from '../store/meta/sqlite/sqlite-meta-store.ts';
import { Scheduler } from './scheduler.ts';

const log = pino({ level: 'silent' });

test('three schedulers on one store run a due job once per interval between them', async (t) => {
  const meta = await openSqliteMetaStore(':memory:');
  t.after(() => meta.close());
  let clock = 1_000_000;
  const now = () => clock;
  let runs = 0;
  let concurrent = 0;
  let maxConcurrent = 0;
  const job = {
    name: 'sweep',
    intervalMs: 60_000,
    async run() {
      runs++;
      concurrent++;
      maxConcurrent = Math.max(maxConcurrent, concurrent);
      await new Promise((r) => setTimeout(r, 20));
      concurrent--;
    },
  };
  const nodes = [0, 1, 2].map(() => new Scheduler({ meta, log, now, tickMs: 1_000_000 }));
  for (const n of nodes) await n.register(job);
  await Promise.all(nodes.map((n) => n.tick()));
  assert.equal(runs, 1, 'one node ran it');
  await Promise.all(nodes.map((n) => n.tick()));
  assert.equal(runs, 1, 'not due again within the interval');
  clock += 60_000;
  await Promise.all(nodes.map((n) => n.tick()));
  assert.equal(runs, 2, 'due again after the interval, run once');
  assert.equal(maxConcurrent, 1);
  for (const n of nodes) await n.stop();
});

test('a job whose node died mid-run is run by another node once the lease expires', async (t) => {
  const meta = await openSqliteMetaStore(':memory:');
  t.after(() => meta.close());
  let clock = 5_000_000;
  const now = () => clock;
  await meta.ensureJob('gc', clock);
  // A node took the lease and died without finishing.
  assert.equal(await meta.acquireJob('gc', 'dead-node', clock, clock + 60_000), true);
  let runs = 0;
  const survivor = new Scheduler({ meta, log, now, leaseMs: 60_000, tickMs: 1_000_000 });
  await survivor.register({ name: 'gc', intervalMs: 3_600_000, run: async () => void runs++ });
  await survivor.tick();
  assert.equal(runs, 0, 'the lease is still live');
  clock += 60_001;
  await survivor.tick();
  assert.equal(runs, 1, 'taken over after the lease expired');
  const state = await meta.getJob('gc');
  assert.equal(state?.leaseOwner, null);
  assert.equal(state?.nextRunAtMs, clock + 3_600_000);
  await survivor.stop();
});

test('a failing job is recorded with its error and scheduled again', async (t) => {
  const meta = await openSqliteMetaStore(':memory:');
  t.after(() => meta.close());
  const clock = 7_000_000;
  const s = new Scheduler({ meta, log, now: () => clock, tickMs: 1_000_000 });
  await s.register({ name: 'flaky', intervalMs: 1000, run: async () => { throw new Error('disk on fire'); } });
  await s.tick();
  const state = await meta.getJob('flaky');
  assert.equal(state?.lastError, 'disk on fire');
  assert.equal(state?.nextRunAtMs, clock + 1000);
  await s.stop();
});

test('a job may ask for an earlier next run, and hurry() from any node brings it forward, once per pending time', async (t) => {
  const meta = await openSqliteMetaStore(':memory:');
  t.after(() => meta.close());
  let clock = 9_000_000;
  const now = () => clock;
  let runs = 0;
  let ask: number | undefined;
  const job = { name: 'gc', intervalMs: 86_400_000, run: async () => (runs++, { nextRunAtMs: ask }) };
  const a = new Scheduler({ meta, log, now, tickMs: 1_000_000 });
  const b = new Scheduler({ meta, log, now, tickMs: 1_000_000 });
  await a.register(job);
  await b.register(job);
  ask = clock + 5000;
  await a.tick();
  assert.equal(runs, 1);
  assert.equal((await meta.getJob('gc'))?.nextRunAtMs, clock + 5000, 'the earlier time the job asked for');
  ask = undefined;
  clock += 5000;
  await b.tick();
  assert.equal(runs, 2);
  assert.equal((await meta.getJob('gc'))?.nextRunAtMs, clock + 86_400_000, 'else the interval');

  // A deletion on node b brings the run forward; node a runs it when due.
  b.hurry('gc', clock + 2000);
  await new Promise((r) => setTimeout(r, 20));
  assert.equal((await meta.getJob('gc'))?.nextRunAtMs, clock + 2000);
  // A later deletion while that run is pending does not postpone it (the run looks again itself).
  b.hurry('gc', clock + 3000);
  await new Promise((r) => setTimeout(r, 20));
  assert.equal((await meta.getJob('gc'))?.nextRunAtMs, clock + 2000);
  clock += 1999;
  await a.tick();
  assert.equal(runs, 2, 'not due yet');
  clock += 1;
  await a.tick();
  assert.equal(runs, 3, 'run at the time asked');
  await a.stop();
  await b.stop();
});

test('stop() during a pass waits for it, and a job whose lease was being taken is not started (the stores are about to close)', async () => {
  const meta = await openSqliteMetaStore(':memory:');
  let runs = 0;
  const scheduler = new Scheduler({ meta, log, tickMs: 1_000_000 });
  await scheduler.register({ name: 'prune', intervalMs: 1, run: async () => void runs++ });
  // The pass is taking the job's lease (awaiting the store) when the node stops.
  const pass = scheduler.tick();
  await scheduler.stop();
  await meta.close();
  await pass;
  assert.equal(runs, 0);
});
