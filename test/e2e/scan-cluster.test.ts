import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, test, type TestContext } from 'node:test';
import { promisify } from 'node:util';
import { CreateRepositoryCommand, DescribeImageScanFindingsCommand, DescribeImagesCommand, type ECRClient } from '@aws-sdk/client-ecr';
import { ADMIN, authedFetch } from '../support/auth.ts';
import { ecrClient } from '../support/aws.ts';
import { sharedStores, startCluster, type SharedStores, type TestCluster } from '../support/cluster.ts';
import { blob, pushBlob, pushManifest, waitFor } from '../support/oci.ts';
import { repoRoot } from '../support/server.ts';
import { assembleImage, nodeAppImage, zeroBombLayer, type ScanImage } from '../support/scan-images.ts';
import { CVSS, fixedRange, osvRecord, writeOsvZip } from '../support/vulndata.ts';

/**
 * Scanning on several nodes sharing one metadata store and one blob store (issue 13, the scan
 * records as a leased queue: src/store/meta/scan-store.ts). On the embedded backend the nodes
 * share a SQLite file and a blob directory, as test/e2e/cluster.test.ts runs them; on the
 * scale-out backend one PostgreSQL database and one S3 prefix. A node SIGKILLed mid-scan loses
 * its lease and another node scans the image again; scan on push, consumed from the event log
 * by every node, scans each pushed image once.
 */

const GiB = 1024 ** 3;
const workDir = mkdtemp(path.join(tmpdir(), 'berth-scan-cluster-'));
after(async () => rm(await workDir, { recursive: true, force: true }));

async function freshDir(name: string): Promise<string> {
  return mkdtemp(path.join(await workDir, `${name}-`));
}

interface ScanRow {
  status: string;
  lease_owner: string | null;
  attempts: number;
}

interface Stores extends SharedStores {
  /** The scan record of an image, read straight from the shared metadata store. */
  scanRow(digest: string): Promise<ScanRow | undefined>;
}

async function scanStores(): Promise<Stores> {
  const stores = await sharedStores('berth-scan-cluster-stores');
  return {
    ...stores,
    async scanRow(digest) {
      const [row] = await stores.query<ScanRow>('select status, lease_owner, attempts from image_scans where digest = $1', [digest]);
      return row && { ...row, attempts: Number(row.attempts) };
    },
  };
}

interface Ctx {
  cluster: TestCluster;
  stores: Stores;
  ecr: ECRClient;
  /** `berth` on the cluster's stores. */
  berth(args: string[]): Promise<string>;
}

async function scanCluster(t: TestContext, env: Record<string, string> = {}): Promise<Ctx> {
  const stores = await scanStores();
  let cluster: TestCluster | undefined;
  t.after(async () => {
    await cluster?.close();
    await stores.cleanup();
  });
  const all = { ...stores.env, BERTH_AUTH_SECRET_KEY: randomBytes(32).toString('base64'), BERTH_SCAN_POLL_INTERVAL_MS: '100', ...env };
  cluster = await startCluster(2, { env: all });
  const dataDir = await freshDir('cli');
  return {
    cluster,
    stores,
    ecr: ecrClient({ baseUrl: cluster.baseUrl }, ADMIN),
    async berth(args) {
      const { stdout } = await promisify(execFile)(path.join(repoRoot, 'bin', 'berth'), [...args, '--data-dir', dataDir], { cwd: repoRoot, env: { ...process.env, ...all } });
      return stdout;
    },
  };
}

/** An npm export about two packages of the node app: lodash 4.17.20 (HIGH) and qs 6.7.0 (MEDIUM). Made-up records. */
async function importNpm(ctx: Ctx): Promise<Record<string, number>> {
  const at = new Date();
  const file = await writeOsvZip(await freshDir('npm'), 'npm', [
    osvRecord('GHSA-c001-0001-0001', 'CVE-2099-5201', 'lodash: a flaw made up for the cluster test', [{ package: { ecosystem: 'npm', name: 'lodash' }, ranges: fixedRange('SEMVER', '4.17.21') }], CVSS.high75, at),
    osvRecord('GHSA-c001-0002-0002', 'CVE-2099-5202', 'qs: a flaw made up for the cluster test', [{ package: { ecosystem: 'npm', name: 'qs' }, ranges: fixedRange('SEMVER', '6.7.3', '6.7.0') }], CVSS.medium59, at),
  ]);
  await ctx.berth(['vulndb', 'import', file]);
  return { HIGH: 1, MEDIUM: 1 };
}

/** Pushes a layout image's blobs and manifest with plain HTTP through the balancer. */
async function pushScanImage(baseUrl: string, repository: string, image: ScanImage, tag: string): Promise<void> {
  const file = (digest: string) => path.join(image.dir, 'blobs', 'sha256', digest.slice('sha256:'.length));
  for (const digest of [image.config.digest, ...image.layers.map((l) => l.digest)]) await pushBlob(baseUrl, repository, blob(await readFile(file(digest))));
  const res = await pushManifest(baseUrl, repository, tag, await readFile(file(image.digest)), image.mediaType);
  assert.equal(res.status, 201, `PUT manifest: ${await res.text()}`);
}

/** The `ECR Image Scan` events of a repository, by image digest, from GET /v2/_events. */
async function scanEvents(baseUrl: string, repository: string): Promise<Map<string, Array<Record<string, unknown>>>> {
  const out = new Map<string, Array<Record<string, unknown>>>();
  let query = new URLSearchParams({ repository, n: '500' }).toString();
  for (;;) {
    const res = await authedFetch(`${baseUrl}/v2/_events?${query}`);
    assert.equal(res.status, 200);
    const { events } = (await res.json()) as { events: Array<{ event: { 'detail-type': string; detail: Record<string, unknown> } }> };
    for (const { event } of events) {
      if (event['detail-type'] !== 'ECR Image Scan') continue;
      const digest = String(event.detail['image-digest']);
      out.set(digest, [...(out.get(digest) ?? []), event.detail]);
    }
    const next = /<\/v2\/_events\?([^>]+)>; rel="next"/.exec(res.headers.get('link') ?? '');
    if (!next) break;
    query = next[1]!;
  }
  return out;
}

/** Every node's `image scanned` log lines for the digest. */
function scannedLines(cluster: TestCluster, digest: string): Array<{ node: number; status: unknown; written: unknown }> {
  return cluster.nodes.flatMap((n, node) => n.logs.filter((l) => l['msg'] === 'image scanned' && l['digest'] === digest).map((l) => ({ node, status: l['status'], written: l['written'] })));
}

function repoName(prefix: string): string {
  return `${prefix}-${randomBytes(5).toString('hex')}/app`;
}

test('scan on push with two nodes: each pushed image is scanned once, by one node, with one ECR Image Scan event', async (t) => {
  const ctx = await scanCluster(t);
  const counts = await importNpm(ctx);
  const repositoryName = repoName('cluster-push');
  await ctx.ecr.send(new CreateRepositoryCommand({ repositoryName, imageScanningConfiguration: { scanOnPush: true } }));

  // Every image its own digest (scan-images gives each config a fresh label), the layers shared.
  const images: ScanImage[] = [];
  const dir = await freshDir('push');
  for (let i = 0; i < 8; i++) images.push(await nodeAppImage(dir, { tag: `v${i}` }));
  await Promise.all(images.map((image) => pushScanImage(ctx.cluster.baseUrl, repositoryName, image, image.tag)));

  await waitFor(
    async () => {
      const out = await ctx.ecr.send(new DescribeImagesCommand({ repositoryName }));
      const details = out.imageDetails ?? [];
      return details.length === images.length && details.every((d) => d.imageScanStatus?.status === 'COMPLETE');
    },
    { timeoutMs: 180_000, intervalMs: 200, what: 'every image to be scanned' },
  );
  // A last push, scanned once the consumer has read the pushes before it: a second reading of
  // those would have queued their images again by now.
  const last = await nodeAppImage(dir, { tag: 'last' });
  await pushScanImage(ctx.cluster.baseUrl, repositoryName, last, 'last');
  images.push(last);
  await waitFor(async () => (await ctx.stores.scanRow(last.digest))?.status === 'COMPLETE', { timeoutMs: 180_000, what: 'the last image to be scanned' });

  const described = (await ctx.ecr.send(new DescribeImagesCommand({ repositoryName }))).imageDetails ?? [];
  assert.deepEqual(
    described.map((d) => [d.imageDigest, d.imageScanStatus?.status, d.imageScanFindingsSummary?.findingSeverityCounts]).sort(),
    images.map((image) => [image.digest, 'COMPLETE', counts]).sort(),
    'every image COMPLETE with its findings, none queued again',
  );
  const events = await scanEvents(ctx.cluster.baseUrl, repositoryName);
  for (const image of images) {
    assert.deepEqual(events.get(image.digest)?.map((d) => d['scan-status']), ['COMPLETE'], `one ECR Image Scan event for ${image.tag}`);
    const lines = scannedLines(ctx.cluster, image.digest);
    assert.equal(lines.length, 1, `${image.tag} was scanned by one node, once: ${JSON.stringify(lines)}`);
    assert.deepEqual([lines[0]!.status, lines[0]!.written], ['COMPLETE', true]);
    assert.equal((await ctx.stores.scanRow(image.digest))?.attempts, 1, `${image.tag}: one attempt`);
  }
  assert.equal(events.size, images.length, 'no event for anything else');
});

/**
 * Starts a slow scan (a layer of GiBs of zeros, the compression-ratio limit lifted) on a
 * two-node cluster with a short lease, waits until a node holds it, and SIGKILLs that node.
 */
async function killMidScan(t: TestContext, env: Record<string, string> = {}) {
  const ctx = await scanCluster(t, { BERTH_SCAN_LEASE_SECONDS: '6', BERTH_SCAN_LIMITS_MAX_COMPRESSION_RATIO: '1000000', ...env });
  const counts = await importNpm(ctx);
  const repositoryName = repoName('cluster-kill');
  await ctx.ecr.send(new CreateRepositoryCommand({ repositoryName, imageScanningConfiguration: { scanOnPush: true } }));

  const dir = await freshDir('slow');
  const app = await nodeAppImage(dir);
  // The same zeros layer as scan-hostile.test.ts, so that the machine's cache has it once.
  const zeros = await zeroBombLayer(dir, [{ name: 'var/tmp/zeros', sizeBytes: 3 * GiB }]);
  const image = { ...(await assembleImage(dir, [...app.layers, zeros], { tag: 'slow' })), packages: app.packages };
  await pushScanImage(ctx.cluster.baseUrl, repositoryName, image, 'slow');

  const running = await waitFor(
    async () => {
      const row = await ctx.stores.scanRow(image.digest);
      assert.notEqual(row?.status, 'COMPLETE', 'the scan finished before it could be caught running: make it slower');
      return row?.status === 'IN_PROGRESS' && row.lease_owner ? row : undefined;
    },
    { timeoutMs: 120_000, intervalMs: 20, what: 'a node to be scanning the image' },
  );
  // The lease owner is `host:pid:random` (src/scan/worker.ts).
  const victim = ctx.cluster.nodes.findIndex((n) => String(n.process.pid) === running.lease_owner!.split(':')[1]);
  assert.ok(victim >= 0, `the lease owner ${running.lease_owner} is one of the nodes`);
  await ctx.cluster.kill(victim);
  const survivor = 1 - victim;
  return { ctx, counts, repositoryName, image, running, survivor };
}

test('a node SIGKILLed mid-scan: after its lease runs out another node scans the image, and only that scan is reported', async (t) => {
  // A short lease so the takeover comes soon; the zeros layer unpacks to GiBs (far past the
  // compression-ratio limit, lifted here) so that the scan is slow enough to be caught running.
  const { ctx, counts, repositoryName, image, running, survivor } = await killMidScan(t);

  const out = await waitFor(
    async () => {
      const res = await ctx.ecr.send(new DescribeImageScanFindingsCommand({ repositoryName, imageId: { imageDigest: image.digest } }));
      return res.imageScanStatus?.status === 'COMPLETE' || res.imageScanStatus?.status === 'FAILED' ? res : undefined;
    },
    { timeoutMs: 300_000, intervalMs: 200, what: 'another node to finish the scan' },
  );
  assert.equal(out.imageScanStatus?.status, 'COMPLETE', out.imageScanStatus?.description);
  assert.deepEqual(out.imageScanFindings?.findingSeverityCounts, counts);
  assert.deepEqual(
    (out.imageScanFindings?.findings ?? []).map((f) => [f.name, f.attributes?.find((a) => a.key === 'package_name')?.value]).sort(),
    [
      ['CVE-2099-5201', 'lodash'],
      ['CVE-2099-5202', 'qs'],
    ],
  );
  const row = await ctx.stores.scanRow(image.digest);
  // One more attempt than when the node was killed (2, unless a lease ran out under load before).
  assert.deepEqual([row?.status, row?.lease_owner, row?.attempts], ['COMPLETE', null, running.attempts + 1], 'claimed again, then released');
  assert.deepEqual(
    scannedLines(ctx.cluster, image.digest).map(({ node, status, written }) => ({ node, status, written })),
    [{ node: survivor, status: 'COMPLETE', written: true }],
    'the survivor scanned it; the killed node never finished',
  );
  const events = await scanEvents(ctx.cluster.baseUrl, repositoryName);
  assert.deepEqual(events.get(image.digest), [
    { 'scan-status': 'COMPLETE', 'repository-name': repositoryName, 'finding-severity-counts': counts, 'image-digest': image.digest, 'image-tags': ['slow'] },
  ]);
});

test('a scan whose node dies scan.maxAttempts times is FAILED by the next node, saying why, not run again', async (t) => {
  const { ctx, repositoryName, image, survivor } = await killMidScan(t, { BERTH_SCAN_MAX_ATTEMPTS: '1' });
  const out = await waitFor(
    async () => {
      const res = await ctx.ecr.send(new DescribeImageScanFindingsCommand({ repositoryName, imageId: { imageDigest: image.digest } }));
      return res.imageScanStatus?.status === 'COMPLETE' || res.imageScanStatus?.status === 'FAILED' ? res : undefined;
    },
    { timeoutMs: 300_000, intervalMs: 200, what: 'the survivor to give the scan up' },
  );
  assert.equal(out.imageScanStatus?.status, 'FAILED');
  assert.match(out.imageScanStatus?.description ?? '', /each time its node stopped before it finished \(scan\.maxAttempts is 1\)/);
  assert.deepEqual(scannedLines(ctx.cluster, image.digest), [], 'no node scanned it again');
  assert.ok(ctx.cluster.nodes[survivor]!.logs.some((l) => l['msg'] === 'an image scan was given up after its nodes stopped mid-scan' && l['digest'] === image.digest));
  const events = await scanEvents(ctx.cluster.baseUrl, repositoryName);
  assert.deepEqual(events.get(image.digest)?.map((d) => d['scan-status']), ['FAILED']);
});
