import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { ADMIN, authedFetch } from '../support/auth.ts';
import { awsOk, requireAwsCli } from '../support/aws.ts';
import { assertNoServerErrors } from '../support/http.ts';
import { assertPullsBack, blob, imageOver, pushImage, repoName, waitFor, type Blob } from '../support/oci.ts';
import { berth, startServer, type TestServer } from '../support/server.ts';
import { scrapeMetrics } from '../support/metrics.ts';

/**
 * Garbage collection as an operator drives it (docs/gc.md): `berth gc` with and without
 * --dry-run, `berth storage`, the Prometheus metrics, and the collection a deletion schedules
 * on its own, with deletions made through the AWS CLI.
 */

const layer = (size: number) => blob(Buffer.alloc(size, Math.floor(Math.random() * 256)).fill(Math.random().toString(36), 0, 12));
const sum = (blobs: Blob[]) => blobs.reduce((n, b) => n + b.bytes.length, 0);

async function blobStatus(server: TestServer, repository: string, digest: string): Promise<number> {
  return (await authedFetch(`${server.baseUrl}/v2/${repository}/blobs/${digest}`, { method: 'HEAD', redirect: 'manual' })).status;
}


const pause = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe('garbage collection for an operator', () => {
  test('berth storage and the metrics count shared layers once per account; berth gc --dry-run lists exactly what berth gc removes', { timeout: 180_000 }, async (t) => {
    requireAwsCli();
    const server = await startServer({ env: { BERTH_REPOSITORIES_CREATE_ON_PUSH: 'true', BERTH_METRICS_LISTEN: '127.0.0.1:0' } });
    t.after(() => server.close());
    const a = repoName('gc-a');
    const b = repoName('gc-b');
    const shared = layer(50_000);
    const [u1, u2, u3, u4, u5] = [1, 2, 3, 4, 5].map((i) => layer(1000 * i));
    const img1 = imageOver([shared, u1!]);
    const img2 = imageOver([shared, u2!]);
    const img3 = imageOver([shared, u3!]);
    const img4 = imageOver([u4!]);
    const img5 = imageOver([u5!]);
    await pushImage(server.baseUrl, a, img1, 'one');
    await pushImage(server.baseUrl, a, img2, 'two');
    await pushImage(server.baseUrl, b, img3, 'three');
    // img4 is untagged when img5 takes its tag: nothing keeps it any more.
    await pushImage(server.baseUrl, a, img4, 'moving');
    await pushImage(server.baseUrl, a, img5, 'moving');

    const before = await berth(server, ['storage']);
    const accountId = before.accounts[0].accountId as string;
    const repoA = before.repositories.find((r: { repositoryName: string }) => r.repositoryName === a);
    const repoB = before.repositories.find((r: { repositoryName: string }) => r.repositoryName === b);
    const blobsA = [img1, img2, img4, img5].flatMap((i) => [i.config, ...i.layers]).filter((x, i, all) => all.findIndex((y) => y.digest === x.digest) === i);
    const blobsB = [img3.config, ...img3.layers];
    assert.deepEqual(repoA, { accountId, repositoryName: a, images: 4, manifestBytes: sum([img1, img2, img4, img5].map((i) => blob(i.manifest))), blobs: blobsA.length, blobBytes: sum(blobsA) });
    assert.deepEqual(repoB, { accountId, repositoryName: b, images: 1, manifestBytes: img3.manifest.length, blobs: blobsB.length, blobBytes: sum(blobsB) });
    const account = before.accounts.find((x: { accountId: string }) => x.accountId === accountId);
    assert.equal(account.repositories, 2);
    assert.equal(account.blobBytes, sum(blobsA) + sum(blobsB) - shared.bytes.length, 'the shared layer counts once in the account');
    assert.equal(account.sharedBlobs, 1);
    assert.equal(account.sharedBytes, shared.bytes.length);
    assert.equal(before.total.unreferencedBlobs, 0);

    const metrics = await scrapeMetrics(server);
    assert.equal(metrics.get(`berth_account_shared_blob_bytes{account="${accountId}"}`), shared.bytes.length);
    assert.equal(metrics.get(`berth_account_stored_bytes{account="${accountId}"}`), account.blobBytes + account.manifestBytes);
    assert.equal(metrics.get(`berth_repository_blob_bytes{account="${accountId}",repository="${a}"}`), sum(blobsA));
    assert.equal(metrics.get(`berth_repository_images{account="${accountId}",repository="${b}"}`), 1);
    await waitFor(async () => (await scrapeMetrics(server)).get('berth_job_last_finished_timestamp_seconds{job="gc"}'), { what: 'the collection at start' });

    // The AWS CLI deletes img1; img4 lost its tag above. With a grace period of a second, once
    // it has passed, both are collectable: img4's manifest and blobs, and img1's own blobs,
    // but not the shared layer, which img2 and img3 still use.
    await awsOk(server, ADMIN, ['ecr', 'batch-delete-image', '--repository-name', a, '--image-ids', `imageDigest=${img1.digest}`]);
    await pause(1100);
    const expectedBlobs = [img1.config, u1!, img4.config, u4!].map((x) => ({ digest: x.digest, sizeBytes: x.bytes.length })).sort((x, y) => (x.digest < y.digest ? -1 : 1));
    const dry = await berth(server, ['gc', '--dry-run', '--gc-grace-seconds', '1']);
    assert.equal(dry.dryRun, true);
    assert.deepEqual(dry.manifests, [{ accountId, repositoryName: a, imageDigest: img4.digest, sizeBytes: img4.manifest.length }]);
    assert.deepEqual(dry.blobs, expectedBlobs);
    assert.equal(dry.bytesReclaimed, sum([img1.config, u1!, img4.config, u4!]));
    assert.equal(await blobStatus(server, a, u1!.digest), 200, 'a dry run removes nothing');
    assert.equal((await authedFetch(`${server.baseUrl}/v2/${a}/manifests/${img4.digest}`, { method: 'HEAD' })).status, 200);

    const real = await berth(server, ['gc', '--gc-grace-seconds', '1']);
    assert.equal(real.dryRun, false);
    assert.deepEqual(real.manifests, dry.manifests, 'the run removes the manifests the dry run listed');
    assert.deepEqual(real.blobs, dry.blobs, 'and the blobs');
    assert.equal(real.bytesReclaimed, dry.bytesReclaimed);
    assert.equal(real.errors, 0);
    for (const [i, gone] of [img1.config, u1!, img4.config, u4!].entries()) assert.equal(await blobStatus(server, a, gone.digest), 404, `blob ${i} ${gone.digest} is gone`);
    // The server trusts a manifest it has read for cache.ttlSeconds (10 s), as after a deletion through another node.
    await waitFor(async () => (await authedFetch(`${server.baseUrl}/v2/${a}/manifests/${img4.digest}`, { method: 'HEAD' })).status === 404, { what: 'the collected manifest to be gone', timeoutMs: 60_000, intervalMs: 500 });
    await assertPullsBack(server.baseUrl, a, 'two', img2);
    await assertPullsBack(server.baseUrl, a, 'moving', img5);
    await assertPullsBack(server.baseUrl, b, 'three', img3);

    const again = await berth(server, ['gc', '--gc-grace-seconds', '1']);
    assert.deepEqual([again.manifests, again.blobs, again.bytesReclaimed], [[], [], 0], 'a second run finds nothing left');

    const after = await berth(server, ['storage', '--account', accountId]);
    const accountAfter = after.accounts[0];
    assert.equal(accountAfter.blobBytes, account.blobBytes - real.bytesReclaimed, 'storage goes down by what was reclaimed');
    assert.equal(accountAfter.sharedBytes, shared.bytes.length);
    assert.equal(after.total.unreferencedBlobs, 0);
    assert.equal(after.repositories.find((r: { repositoryName: string }) => r.repositoryName === a).images, 2);
    await server.close();
    assertNoServerErrors(server.logs);
  });

  test('a deletion schedules a collection on its own: the deleted image\'s blobs are reclaimed without anyone running berth gc', { timeout: 120_000 }, async (t) => {
    requireAwsCli();
    // A grace period of a second and no delay, so that the collection a deletion schedules
    // comes within seconds; the daily interval keeps the periodic run out of the way.
    const server = await startServer({
      env: { BERTH_REPOSITORIES_CREATE_ON_PUSH: 'true', BERTH_METRICS_LISTEN: '127.0.0.1:0', BERTH_GC_GRACE_SECONDS: '1', BERTH_GC_DELAY_SECONDS: '0', BERTH_UPLOADS_SWEEP_INTERVAL_SECONDS: '1' },
    });
    t.after(() => server.close());
    const repository = repoName('gc-auto');
    const kept = imageOver([layer(3000)]);
    const gone = imageOver([layer(4000), layer(5000)]);
    await pushImage(server.baseUrl, repository, kept, 'kept');
    await pushImage(server.baseUrl, repository, gone, 'gone');
    const first = await waitFor(async () => (await scrapeMetrics(server)).get('berth_job_last_finished_timestamp_seconds{job="gc"}'), { what: 'the collection at start', timeoutMs: 60_000 });
    await pause(1100);
    assert.equal(await blobStatus(server, repository, gone.layers[0]!.digest), 200, 'nothing is collected before the deletion');

    await awsOk(server, ADMIN, ['ecr', 'batch-delete-image', '--repository-name', repository, '--image-ids', 'imageTag=gone']);
    await waitFor(async () => {
      for (const b of [gone.config, ...gone.layers]) if ((await blobStatus(server, repository, b.digest)) !== 404) return false;
      return true;
    }, { what: 'the scheduled collection to reclaim the deleted image\'s blobs', timeoutMs: 90_000, intervalMs: 250 });
    // The blobs go before the run records that it finished: wait for that too.
    const ranAgain = async () => (await scrapeMetrics(server)).get('berth_job_last_finished_timestamp_seconds{job="gc"}')! > first;
    await waitFor(ranAgain, { what: 'the gc job to record its second run', timeoutMs: 60_000, intervalMs: 100 });
    const metrics = await scrapeMetrics(server);
    assert.equal(metrics.get('berth_job_last_run_failed{job="gc"}'), 0);
    assert.ok(metrics.get('berth_job_next_run_timestamp_seconds{job="gc"}')! > Date.now() / 1000 + 3600, 'with nothing left in its grace period, the next run is the periodic one');
    await assertPullsBack(server.baseUrl, repository, 'kept', kept);
    const finished = server.logs.filter((l) => l['msg'] === 'garbage collection finished');
    assert.ok(finished.some((l) => (l['blobs'] as number) === 3), 'the server logged the collection that took the three blobs');
    await server.close();
    assertNoServerErrors(server.logs);
  });
});
