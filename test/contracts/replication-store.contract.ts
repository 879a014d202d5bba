import assert from 'node:assert/strict';
import { describe } from 'node:test';
import type { MetaStore, Repository } from '../../src/store/meta/meta-store.ts';
import { destinationKey, type ReplicationRequest, type ReplicationTask } from '../../src/store/meta/replication-store.ts';
import { manifest, storeTest, T0, type MetaStoreHarness } from './harness.ts';

const ACCOUNT = '111122223333';
const WEST = destinationKey('us-west-2', ACCOUNT);
const EU = destinationKey('eu-west-1', '444455556666');
/** A digest no manifest has. */
const ABSENT = `sha256:${'0'.repeat(64)}`;

/**
 * Replication's configurations and tasks (ReplicationStore, src/store/meta/replication-store.ts),
 * on every MetaStore driver. Tasks hang off manifests, so each test creates its repositories
 * and manifests with the MetaStore API first.
 */
export function replicationStoreContract(name: string, open: () => Promise<MetaStoreHarness>): void {
  const replicationTest = storeTest(open);

  async function image(store: MetaStore, repositoryName = 'team/app'): Promise<{ repository: Repository; digest: string }> {
    const repository = (await store.createRepository(ACCOUNT, repositoryName, T0)).repository;
    const m = manifest();
    await store.putManifest(repository.id, m, []);
    return { repository, digest: m.digest };
  }

  const push = (repositoryId: number, digest: string, destination: string, tags: string[] = [], overrides: Partial<ReplicationRequest> = {}): ReplicationRequest => ({
    repositoryId,
    digest,
    destination,
    tags,
    reason: 'push',
    pushedAtMs: T0,
    ...overrides,
  });

  async function only(store: MetaStore, repositoryId: number, digest: string, destination = WEST): Promise<ReplicationTask> {
    const task = (await store.replication.tasksOf(repositoryId, digest)).find((t) => t.destination === destination);
    assert.ok(task, `a task for ${destination}`);
    return task;
  }

  describe(`ReplicationStore contract: ${name}`, () => {
    replicationTest('configurations: undefined until put; put replaces; listed only with rules', async (store) => {
      assert.equal(await store.replication.getConfiguration(ACCOUNT), undefined);
      const first = { rules: '[{"destinations":[{"region":"us-west-2","registryId":"111122223333"}]}]', startSeqs: '{"us-west-2/111122223333":7}', updatedAtMs: T0 };
      await store.replication.putConfiguration(ACCOUNT, first);
      assert.deepEqual(await store.replication.getConfiguration(ACCOUNT), first);
      assert.deepEqual(await store.replication.listConfigurations(), [{ accountId: ACCOUNT, config: first }]);
      const emptied = { rules: '[]', startSeqs: '{}', updatedAtMs: 2 ** 42 };
      await store.replication.putConfiguration(ACCOUNT, emptied);
      assert.deepEqual(await store.replication.getConfiguration(ACCOUNT), emptied, 'replaced whole; times past 2^32 ms kept');
      assert.deepEqual(await store.replication.listConfigurations(), [], 'an account without rules is not listed');
    });

    replicationTest('a push request creates a PENDING task per destination; one for a missing manifest is dropped', async (store) => {
      const { repository, digest } = await image(store);
      assert.equal(await store.replication.request([push(repository.id, digest, WEST, ['v1']), push(repository.id, digest, EU), push(repository.id, ABSENT, WEST)], T0), 2);
      const tasks = await store.replication.tasksOf(repository.id, digest);
      assert.deepEqual(tasks.map((t) => t.destination), [EU, WEST].sort());
      const west = tasks.find((t) => t.destination === WEST)!;
      assert.equal(west.status, 'PENDING');
      assert.deepEqual(west.tags, ['v1']);
      assert.equal(west.accountId, ACCOUNT);
      assert.equal(west.repositoryName, 'team/app');
      assert.equal(west.version, 1);
      assert.equal(west.nextAttemptAtMs, T0);
      assert.deepEqual(await store.replication.tasksOf(repository.id, ABSENT), []);
    });

    replicationTest('claim leases due tasks once; an expired lease is claimed again; a future retry waits', async (store) => {
      const { repository, digest } = await image(store);
      await store.replication.request([push(repository.id, digest, WEST)], T0);
      const [first] = await store.replication.claim('node-a', T0, T0 + 10_000, 10);
      assert.equal(first?.status, 'IN_PROGRESS');
      assert.equal(first?.leaseOwner, 'node-a');
      assert.deepEqual(await store.replication.claim('node-b', T0 + 5_000, T0 + 15_000, 10), [], 'held while the lease lasts');
      assert.equal(await store.replication.renew(first!, 'node-b', T0 + 99_000), false, 'only the owner renews');
      assert.equal(await store.replication.renew(first!, 'node-a', T0 + 20_000), true);
      assert.deepEqual(await store.replication.claim('node-b', T0 + 15_000, T0 + 25_000, 10), [], 'renewed');
      const [taken] = await store.replication.claim('node-b', T0 + 20_001, T0 + 30_000, 10);
      assert.equal(taken?.leaseOwner, 'node-b', 'the lease of a dead node is taken over');
      assert.equal(await store.replication.complete(taken!, 'node-a', taken!.version, [], T0 + 21_000), false, 'the old owner records nothing');

      assert.equal(await store.replication.retry(taken!, 'node-b', { error: 'connect ECONNREFUSED', nextAttemptAtMs: T0 + 60_000 }), true);
      const waiting = await only(store, repository.id, digest);
      assert.equal(waiting.status, 'PENDING');
      assert.equal(waiting.attempts, 1);
      assert.equal(waiting.lastError, 'connect ECONNREFUSED');
      assert.equal(waiting.leaseOwner, null);
      assert.deepEqual(await store.replication.claim('node-b', T0 + 59_999, T0 + 70_000, 10), [], 'not before its next attempt');
      assert.equal((await store.replication.claim('node-b', T0 + 60_000, T0 + 70_000, 10)).length, 1);
    });

    replicationTest('of concurrent claimers each task goes to one', async (store) => {
      const repository = (await store.createRepository(ACCOUNT, 'team/many', T0)).repository;
      const requests: ReplicationRequest[] = [];
      for (let i = 0; i < 12; i++) {
        const m = manifest();
        await store.putManifest(repository.id, m, []);
        requests.push(push(repository.id, m.digest, WEST));
      }
      assert.equal(await store.replication.request(requests, T0), 12);
      const claimed = await Promise.all(['a', 'b', 'c', 'd'].map((owner) => store.replication.claim(owner, T0, T0 + 10_000, 5)));
      const digests = claimed.flat().map((t) => t.digest);
      assert.equal(new Set(digests).size, digests.length, 'no task claimed twice');
      assert.equal(digests.length, 12);
    });

    replicationTest('complete: COMPLETE at the version read; a request meanwhile leaves it PENDING with the tags not done', async (store) => {
      const { repository, digest } = await image(store);
      await store.replication.request([push(repository.id, digest, WEST, ['v1'])], T0);
      const [task] = await store.replication.claim('node-a', T0, T0 + 10_000, 1);
      // A second tag is pushed while the copy runs.
      assert.equal(await store.replication.request([push(repository.id, digest, WEST, ['v2'], { pushedAtMs: T0 + 1 })], T0 + 1), 1);
      const during = await only(store, repository.id, digest);
      assert.equal(during.status, 'IN_PROGRESS', 'the lease is kept');
      assert.deepEqual(during.tags.sort(), ['v1', 'v2']);
      assert.equal(await store.replication.complete(task!, 'node-a', task!.version, ['v1'], T0 + 2), true);
      const after = await only(store, repository.id, digest);
      assert.equal(after.status, 'PENDING', 'another round for v2');
      assert.deepEqual(after.tags, ['v2']);
      const [again] = await store.replication.claim('node-a', T0 + 3, T0 + 10_000, 1);
      assert.equal(await store.replication.complete(again!, 'node-a', again!.version, ['v2'], T0 + 4), true);
      const done = await only(store, repository.id, digest);
      assert.equal(done.status, 'COMPLETE');
      assert.deepEqual(done.tags, []);
      assert.equal(done.completedAtMs, T0 + 4);
      assert.equal(done.leaseOwner, null);
    });

    replicationTest('fail: FAILED with its code until a push asks again; a backfill never re-asks', async (store) => {
      const { repository, digest } = await image(store);
      await store.replication.request([push(repository.id, digest, WEST, ['v1'])], T0);
      const [task] = await store.replication.claim('node-a', T0, T0 + 10_000, 1);
      assert.equal(await store.replication.fail(task!, 'node-b', task!.version, { failureCode: 'X', error: 'no', nowMs: T0 }), false, 'only the owner');
      assert.equal(await store.replication.fail(task!, 'node-a', task!.version, { failureCode: 'TAG_IMMUTABLE_CONFLICT', error: 'tag v1 is immutable there', nowMs: T0 + 1 }), true);
      let failed = await only(store, repository.id, digest);
      assert.equal(failed.status, 'FAILED');
      assert.equal(failed.failureCode, 'TAG_IMMUTABLE_CONFLICT');
      assert.deepEqual(await store.replication.claim('node-a', T0 + 10, T0 + 10_000, 10), [], 'a FAILED task is not retried');

      assert.equal(await store.replication.request([push(repository.id, digest, WEST, ['v1'], { reason: 'backfill' })], T0 + 5), 0, 'a backfill leaves a known task alone');
      failed = await only(store, repository.id, digest);
      assert.equal(failed.status, 'FAILED');

      assert.equal(await store.replication.request([push(repository.id, digest, WEST, ['v3'], { pushedAtMs: T0 + 7 })], T0 + 7), 1);
      const asked = await only(store, repository.id, digest);
      assert.equal(asked.status, 'PENDING');
      assert.equal(asked.failureCode, null);
      assert.equal(asked.pushedAtMs, T0 + 7, 'lag counts from the new push');
      assert.equal(asked.attempts, 0);
    });

    replicationTest('release hands a task back at once without counting an attempt; a retry request re-queues only a FAILED task', async (store) => {
      const { repository, digest } = await image(store);
      await store.replication.request([push(repository.id, digest, WEST, ['v1'])], T0);
      const [task] = await store.replication.claim('node-a', T0, T0 + 60_000, 1);
      assert.equal(await store.replication.release(task!, 'node-b', T0 + 1), false, 'only the owner');
      assert.equal(await store.replication.release(task!, 'node-a', T0 + 1), true);
      const released = await only(store, repository.id, digest);
      assert.equal(released.status, 'PENDING');
      assert.equal(released.attempts, 0);
      assert.equal(released.leaseOwner, null);
      const retry = push(repository.id, digest, WEST, ['v1'], { reason: 'retry' });
      assert.equal(await store.replication.request([retry], T0 + 2), 0, 'a task that did not fail is left alone');

      const [again] = await store.replication.claim('node-b', T0 + 2, T0 + 60_000, 1);
      await store.replication.fail(again!, 'node-b', again!.version, { failureCode: 'REPLICATE_IMAGE_DENIED', error: 'denied', nowMs: T0 + 3 });
      const [summary] = await store.replication.summary();
      assert.deepEqual(summary?.lastFailure, { failureCode: 'REPLICATE_IMAGE_DENIED', error: 'denied' });
      assert.equal(await store.replication.request([retry], T0 + 4), 1);
      const requeued = await only(store, repository.id, digest);
      assert.equal(requeued.status, 'PENDING');
      assert.equal(requeued.failureCode, null);
      assert.equal(requeued.reason, 'push', 'why it exists is kept');
      assert.deepEqual(requeued.tags, ['v1']);
    });

    replicationTest('a backfill request creates a task only where none exists', async (store) => {
      const { repository, digest } = await image(store);
      const backfill = (destination: string) => push(repository.id, digest, destination, ['latest'], { reason: 'backfill' });
      assert.equal(await store.replication.request([backfill(WEST)], T0), 1);
      assert.equal(await store.replication.request([backfill(WEST), backfill(EU)], T0 + 1), 1);
      assert.equal((await only(store, repository.id, digest)).reason, 'backfill');
      assert.equal((await only(store, repository.id, digest)).version, 1, 'the existing task is unchanged');
    });

    replicationTest('tasks go with their manifest; the summary counts per destination and status', async (store) => {
      const a = await image(store, 'team/a');
      const b = await image(store, 'team/b');
      await store.replication.request([push(a.repository.id, a.digest, WEST, [], { pushedAtMs: T0 - 5_000 }), push(b.repository.id, b.digest, WEST), push(b.repository.id, b.digest, EU)], T0);
      const claimed = await store.replication.claim('node-a', T0, T0 + 10_000, 10);
      const bWest = claimed.find((t) => t.repositoryId === b.repository.id && t.destination === WEST)!;
      const bEu = claimed.find((t) => t.destination === EU)!;
      await store.replication.complete(bWest, 'node-a', bWest.version, [], T0 + 100);
      await store.replication.retry(bEu, 'node-a', { error: 'down', nextAttemptAtMs: T0 + 1_000 });
      const summary = await store.replication.summary();
      const west = summary.find((s) => s.destination === WEST)!;
      assert.equal(west.inProgress, 1);
      assert.equal(west.complete, 1);
      assert.equal(west.oldestWaitingPushedAtMs, T0 - 5_000);
      assert.equal(west.lastCompletedAtMs, T0 + 100);
      const eu = summary.find((s) => s.destination === EU)!;
      assert.equal(eu.pending, 1);
      assert.equal(eu.lastError, 'down');

      assert.equal(await store.deleteManifest(a.repository.id, a.digest), true);
      assert.deepEqual(await store.replication.tasksOf(a.repository.id, a.digest), [], 'deleted with the manifest');
      assert.equal(await store.deleteRepository(b.repository.id), true);
      assert.deepEqual(await store.replication.summary(), [], 'and with the repository');
    });
  });
}
