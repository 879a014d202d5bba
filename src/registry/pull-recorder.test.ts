import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { test } from 'node:test';
import { createLogger } from '../log/logger.ts';
import type { MetaStore, PullRecord } from '../store/meta/meta-store.ts';
import { PullRecorder } from './pull-recorder.ts';

function fakeMeta(fail = false): { meta: MetaStore; batches: PullRecord[][] } {
  const batches: PullRecord[][] = [];
  const meta = {
    async recordPulls(pulls: PullRecord[]) {
      if (fail) throw new Error('database is down');
      batches.push(pulls);
    },
  } as unknown as MetaStore;
  return { meta, batches };
}

function logSink(): { log: ReturnType<typeof createLogger>; lines: Record<string, unknown>[] } {
  const lines: Record<string, unknown>[] = [];
  const destination = new Writable({
    write(chunk, _encoding, done) {
      lines.push(JSON.parse(String(chunk)) as Record<string, unknown>);
      done();
    },
  });
  return { log: createLogger({ level: 'debug', destination }), lines };
}

const D1 = `sha256:${'1'.repeat(64)}`;
const D2 = `sha256:${'2'.repeat(64)}`;

test('pulls of one image between flushes are written once, with the latest time', async () => {
  let now = 1_000;
  const { meta, batches } = fakeMeta();
  const recorder = new PullRecorder({ meta, log: logSink().log, flushIntervalMs: 60_000, now: () => now });
  recorder.record(1, D1);
  now = 2_000;
  recorder.record(1, D1);
  recorder.record(1, D2);
  recorder.record(2, D1);
  assert.equal(recorder.pendingPull(1, D1), 2_000, 'a reader on this node sees the pull before it is written');
  assert.equal(recorder.pendingPull(3, D1), undefined);
  await recorder.flush();
  assert.equal(batches.length, 1, 'one write for the whole batch');
  assert.deepEqual(
    batches[0]!.sort((a, b) => a.repositoryId - b.repositoryId || a.digest.localeCompare(b.digest)),
    [
      { repositoryId: 1, digest: D1, atMs: 2_000 },
      { repositoryId: 1, digest: D2, atMs: 2_000 },
      { repositoryId: 2, digest: D1, atMs: 2_000 },
    ],
  );
  assert.equal(recorder.pendingPull(1, D1), undefined, 'written, so no longer pending');
  await recorder.flush();
  assert.equal(batches.length, 1, 'nothing pending, nothing written');
  await recorder.close();
});

test('the first pull schedules a flush after the interval; close() writes what is left', async () => {
  const { meta, batches } = fakeMeta();
  const recorder = new PullRecorder({ meta, log: logSink().log, flushIntervalMs: 20 });
  recorder.record(1, D1);
  const deadline = Date.now() + 5_000;
  while (batches.length === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
  assert.equal(batches.length, 1, 'flushed by the timer');
  const slow = new PullRecorder({ meta, log: logSink().log, flushIntervalMs: 60_000 });
  slow.record(7, D2);
  await slow.close();
  assert.deepEqual(batches[1]!.map((p) => [p.repositoryId, p.digest]), [[7, D2]]);
  await recorder.close();
});

test('a failed write is logged as a warning and dropped, not retried forever', async () => {
  const { meta } = fakeMeta(true);
  const { log, lines } = logSink();
  const recorder = new PullRecorder({ meta, log, flushIntervalMs: 60_000 });
  recorder.record(1, D1);
  await recorder.flush();
  assert.ok(lines.some((l) => l['level'] === 'warn' && l['task'] === 'pull-times' && l['count'] === 1), JSON.stringify(lines));
  assert.equal(recorder.pendingPull(1, D1), undefined);
  await recorder.close();
});
