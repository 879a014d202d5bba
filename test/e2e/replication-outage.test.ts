import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createCipheriv, createHash, randomBytes } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import http from 'node:http';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { test, type TestContext } from 'node:test';
import { promisify } from 'node:util';
import { DescribeImageReplicationStatusCommand, PutReplicationConfigurationCommand, type ECRClient } from '@aws-sdk/client-ecr';
import { ADMIN, adminAuthorization, authedFetch } from '../support/auth.ts';
import { ecrClient } from '../support/aws.ts';
import { sharedStores, startCluster, type SharedStores, type TestCluster } from '../support/cluster.ts';
import { assertNoServerErrors } from '../support/http.ts';
import { blob, MT, pushBlob, pushManifest, repoName, sha256, waitFor } from '../support/oci.ts';
import { berth, repoRoot, startServer, type TestServer } from '../support/server.ts';
import { scrapeMetrics } from '../support/metrics.ts';
import type { DestinationStatus } from '../../src/replication/status.ts';

/**
 * Replication to another region through outages (issue 14): region A (us-east-1) replicates to
 * region B (us-west-2), a Berth peer named by its endpoint. B goes down while a big image is
 * pushed to A, comes back, and dies again in the middle of the copy; a node of a two-node A
 * cluster dies in the middle of a copy and the other takes the copy over. Each time the copy
 * ends COMPLETE and B holds the layer byte for byte, checked by size and by hashing it back.
 *
 * Short timings (poll, backoff, lease) keep the outages and the takeover quick; small chunks
 * (replication.chunkBytes) make a copy many requests long, so that it can be caught midway.
 */

const MiB = 1024 * 1024;
const WEST = 'us-west-2';
const DESTINATION = `${WEST}/${ADMIN.accountId}`;

const REPLICATION_ENV = {
  BERTH_REPLICATION_POLL_INTERVAL_MS: '100',
  BERTH_REPLICATION_RETRY_BASE_MS: '200',
  BERTH_REPLICATION_RETRY_MAX_MS: '2000',
  BERTH_REPLICATION_LEASE_SECONDS: '3',
  BERTH_REPLICATION_CHUNK_BYTES: String(8 * MiB),
};

/** A's peers: B, reached with the test administrator's keys (B was bootstrapped with the same). */
function peersEnv(b: TestServer): Record<string, string> {
  return {
    BERTH_REPLICATION_PEERS: JSON.stringify([{ region: WEST, endpoint: b.baseUrl, kind: 'berth', accessKeyId: ADMIN.accessKeyId, secretAccessKey: ADMIN.secretAccessKey }]),
  };
}

/** Region B: a plain server in us-west-2, on a fixed port when `port` is given (a restart). */
function startWest(options: { dataDir?: string; port?: number } = {}): Promise<TestServer> {
  return startServer({
    env: { BERTH_REGION: WEST },
    // The last --listen wins (src/config/config.ts): startServer's own is 127.0.0.1:0.
    ...(options.port !== undefined ? { args: ['--listen', `127.0.0.1:${options.port}`] } : {}),
    ...(options.dataDir !== undefined ? { dataDir: options.dataDir } : {}),
  });
}

interface LayerFile {
  file: string;
  digest: string;
  sizeBytes: number;
}

/**
 * Writes `sizeBytes` of pseudo-random bytes (AES-CTR over zeros: fast, incompressible) to a
 * file, hashing them on the way: nothing as big as the layer is held in memory.
 */
async function writeLayer(dir: string, sizeBytes: number): Promise<LayerFile> {
  const file = path.join(dir, `layer-${randomBytes(4).toString('hex')}`);
  const cipher = createCipheriv('aes-128-ctr', randomBytes(16), randomBytes(16));
  const hash = createHash('sha256');
  const zeros = Buffer.alloc(MiB);
  async function* bytes() {
    for (let left = sizeBytes; left > 0; left -= zeros.length) {
      const chunk = cipher.update(left >= zeros.length ? zeros : zeros.subarray(0, left));
      hash.update(chunk);
      yield chunk;
    }
  }
  await pipeline(bytes(), createWriteStream(file));
  return { file, digest: `sha256:${hash.digest('hex')}`, sizeBytes };
}

/** One HTTP exchange as the test administrator, with a streamed body of known length. */
function send(url: URL, method: string, headers: Record<string, string> = {}, body?: { stream: Readable; length: number }): Promise<{ status: number; headers: http.IncomingHttpHeaders; text: string }> {
  return new Promise((resolve, reject) => {
    const request = http.request(url, { method, headers: { authorization: adminAuthorization, ...headers, 'content-length': String(body?.length ?? 0) } }, (response) => {
      let text = '';
      response.setEncoding('utf8');
      response.on('data', (d: string) => (text += d));
      response.on('end', () => resolve({ status: response.statusCode!, headers: response.headers, text }));
      response.on('error', reject);
    });
    request.on('error', reject);
    if (body) pipeline(body.stream, request).catch(reject);
    else request.end();
  });
}

/** Pushes the layer in streamed PATCH chunks (spec "Pushing a blob in chunks"), then PUT ?digest=. */
async function pushLayer(baseUrl: string, repository: string, layer: LayerFile, chunkBytes = 64 * MiB): Promise<void> {
  const start = await send(new URL(`/v2/${repository}/blobs/uploads/`, baseUrl), 'POST');
  assert.equal(start.status, 202, `POST upload: ${start.text}`);
  let location = new URL(start.headers.location!, baseUrl);
  for (let offset = 0; offset < layer.sizeBytes; offset += chunkBytes) {
    const end = Math.min(offset + chunkBytes, layer.sizeBytes) - 1;
    const res = await send(location, 'PATCH', { 'content-type': 'application/octet-stream', 'content-range': `${offset}-${end}` }, { stream: createReadStream(layer.file, { start: offset, end }), length: end - offset + 1 });
    assert.equal(res.status, 202, `PATCH ${offset}-${end}: ${res.text}`);
    location = new URL(res.headers.location!, baseUrl);
  }
  location.searchParams.set('digest', layer.digest);
  const done = await send(location, 'PUT');
  assert.equal(done.status, 201, `PUT upload: ${done.text}`);
}

/** Pushes a one-layer image over the layer file; resolves the manifest digest. */
async function pushLayerImage(baseUrl: string, repository: string, layer: LayerFile, tag: string): Promise<string> {
  const config = blob(JSON.stringify({ os: 'linux', architecture: 'amd64', rootfs: { type: 'layers', diff_ids: [layer.digest] }, nonce: randomBytes(8).toString('hex') }));
  await pushBlob(baseUrl, repository, config);
  await pushLayer(baseUrl, repository, layer);
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: MT.ociManifest,
      config: { mediaType: MT.ociConfig, digest: config.digest, size: config.bytes.length },
      layers: [{ mediaType: MT.ociLayer, digest: layer.digest, size: layer.sizeBytes }],
    }),
  );
  const res = await pushManifest(baseUrl, repository, tag, manifest, MT.ociManifest);
  assert.equal(res.status, 201, `PUT manifest: ${await res.text()}`);
  return sha256(manifest);
}

/**
 * Checks that the server holds the layer: HEAD answers its size and digest, and the bytes a GET
 * streams (from Berth, or from the store it redirects to) hash to the digest.
 */
async function assertHoldsLayer(server: TestServer, repository: string, layer: LayerFile): Promise<void> {
  const url = `${server.baseUrl}/v2/${repository}/blobs/${layer.digest}`;
  const head = await authedFetch(url, { method: 'HEAD' });
  assert.equal(head.status, 200, `HEAD ${layer.digest} in ${repository}`);
  assert.equal(head.headers.get('content-length'), String(layer.sizeBytes));
  assert.equal(head.headers.get('docker-content-digest'), layer.digest);
  let res = await authedFetch(url, { redirect: 'manual' });
  if (res.status === 307) res = await fetch(res.headers.get('location')!);
  assert.equal(res.status, 200, `GET ${layer.digest} in ${repository}`);
  const hash = createHash('sha256');
  let sizeBytes = 0;
  for await (const chunk of res.body as AsyncIterable<Uint8Array>) {
    hash.update(chunk);
    sizeBytes += chunk.length;
  }
  assert.equal(sizeBytes, layer.sizeBytes, 'the GET streams the whole layer');
  assert.equal(`sha256:${hash.digest('hex')}`, layer.digest, 'the layer B holds hashes to its digest');
}

async function replicationStatuses(ecr: ECRClient, repositoryName: string, imageDigest: string) {
  return (await ecr.send(new DescribeImageReplicationStatusCommand({ repositoryName, imageId: { imageDigest } }))).replicationStatuses ?? [];
}

async function putRule(ecr: ECRClient): Promise<void> {
  await ecr.send(new PutReplicationConfigurationCommand({ replicationConfiguration: { rules: [{ destinations: [{ region: WEST, registryId: ADMIN.accountId }] }] } }));
}

/** Waits until DescribeImageReplicationStatus answers COMPLETE for B, failing at once on FAILED (or when `check` throws). */
async function waitComplete(ecr: ECRClient, repositoryName: string, imageDigest: string, what: string, check: () => void = () => {}): Promise<void> {
  await waitFor(
    async () => {
      check();
      const statuses = await replicationStatuses(ecr, repositoryName, imageDigest);
      assert.notEqual(statuses[0]?.status, 'FAILED', `${what}: ${JSON.stringify(statuses)}`);
      return statuses.length === 1 && statuses[0]!.status === 'COMPLETE';
    },
    { timeoutMs: 300_000, intervalMs: 200, what },
  );
}

/** B's completed PATCH requests of the upload sessions of `repository` (each a chunk it accepted). */
function acceptedChunks(b: TestServer, repository: string): number {
  return b.logs.filter((l) => l['msg'] === 'request' && l['method'] === 'PATCH' && l['status'] === 202 && String(l['path']).startsWith(`/v2/${repository}/blobs/uploads/`)).length;
}

/** What the server writes to stderr from now on (a crash's stack trace). */
function collectStderr(server: TestServer): { text: string } {
  const out = { text: '' };
  server.process.stderr!.on('data', (d: Buffer) => (out.text += d.toString()));
  return out;
}

/** Fails at once, with what it wrote to stderr, when the server has exited. */
function assertRunning(server: TestServer, stderr: { text: string }): void {
  const { exitCode, signalCode } = server.process;
  assert.ok(exitCode === null && signalCode === null, `the server exited (${exitCode ?? signalCode}); stderr: ${stderr.text}`);
}


const METRIC_LABELS = `{region="${WEST}",registry_id="${ADMIN.accountId}"}`;


async function westStatus(run: (args: string[]) => Promise<any>): Promise<DestinationStatus | undefined> {
  const status = (await run(['replication', 'status'])) as { destinations: DestinationStatus[] };
  return status.destinations.find((d) => d.destination === DESTINATION);
}

/**
 * On PostgreSQL a retried replication stops its node: the backoff delay is fractional, so
 * next_attempt_at (bigint) is refused with 22P02, and the rejection of the copy's promise is
 * unhandled (src/replication/worker.ts run/recordFailure), which exits the process.
 */

test('B is down during a 600 MiB push to A: IN_PROGRESS with the error shown while it is, COMPLETE once back, even after dying again mid-copy', { timeout: 600_000 }, async (t) => {
  const work = await mkdtemp(path.join(tmpdir(), 'berth-replication-outage-'));
  let west = await startWest();
  const firstWest = west;
  const port = west.port;
  const a = await startServer({ env: { ...REPLICATION_ENV, ...peersEnv(west), BERTH_METRICS_LISTEN: '127.0.0.1:0' } });
  t.after(async () => {
    await a.close();
    await west.close();
    // The first B made the data directory (and on scale-out its stores): its close() removes them.
    await firstWest.close();
    await rm(work, { recursive: true, force: true });
  });
  const aStderr = collectStderr(a);
  const ecr = ecrClient(a, ADMIN);
  await putRule(ecr);

  await west.kill();
  const layer = await writeLayer(work, 600 * MiB);
  const repository = repoName('outage');
  const digest = await pushLayerImage(a.baseUrl, repository, layer, 'big');

  // B is down: the copy fails and is retried, the image stays IN_PROGRESS, and the operator sees why.
  await waitFor(
    async () => {
      assertRunning(a, aStderr);
      return a.logs.filter((l) => l['msg'] === 'replication failed; it is retried' && l['digest'] === digest).length >= 3;
    },
    { timeoutMs: 120_000, what: 'A to have tried B three times' },
  );
  assert.deepEqual(await replicationStatuses(ecr, repository, digest), [{ region: WEST, registryId: ADMIN.accountId, status: 'IN_PROGRESS' }]);
  const down = await waitFor(async () => {
    const s = await westStatus((args) => berth(a, args));
    return s?.lastError ? s : undefined;
  }, { what: 'berth replication status to show the last error' });
  assert.equal(down.pending, 1, JSON.stringify(down));
  assert.equal(down.complete, 0);
  assert.equal(down.failed, 0);
  assert.ok(down.lagSeconds > 0, `lag while B is down: ${down.lagSeconds}`);
  t.diagnostic(`while B is down: ${JSON.stringify(down)}`);
  assert.match(down.lastError!, new RegExp(`${DESTINATION}.*(ECONNREFUSED|refused|connect)`, 's'), 'the error says that B cannot be reached');
  const metricsDown = await scrapeMetrics(a);
  assert.equal(metricsDown.get(`berth_replication_pending_images${METRIC_LABELS}`), 1);
  assert.ok(metricsDown.get(`berth_replication_lag_seconds${METRIC_LABELS}`)! > 0, 'lag_seconds > 0 while B is down');
  assert.equal(metricsDown.get(`berth_replication_complete_images${METRIC_LABELS}`), 0);
  assert.ok(a.logs.every((l) => l['msg'] !== 'image replicated'), 'nothing was replicated while B was down');

  // B comes back on its port: the copy starts, and B is SIGKILLed in the middle of it.
  const chunkCount = Math.ceil(layer.sizeBytes / (8 * MiB));
  west = await startWest({ dataDir: firstWest.dataDir, port });
  const back = west;
  await waitFor(
    async () => {
      assertRunning(a, aStderr);
      return acceptedChunks(back, repository) >= 3;
    },
    { timeoutMs: 180_000, intervalMs: 20, what: 'B to accept a few chunks of the layer' },
  );
  await back.kill();
  const sentBeforeKill = acceptedChunks(back, repository);
  assert.ok(sentBeforeKill < chunkCount, `B died mid-copy: it had accepted ${sentBeforeKill} of ${chunkCount} chunks`);
  t.diagnostic(`B was killed after accepting ${sentBeforeKill} of ${chunkCount} chunks`);
  assert.deepEqual(await replicationStatuses(ecr, repository, digest), [{ region: WEST, registryId: ADMIN.accountId, status: 'IN_PROGRESS' }]);

  // And comes back again: the copy resumes or starts over, and completes.
  west = await startWest({ dataDir: firstWest.dataDir, port });
  await waitComplete(ecr, repository, digest, 'the replication to B to complete after its second outage', () => assertRunning(a, aStderr));
  t.diagnostic(`after its second restart B accepted ${acceptedChunks(west, repository)} chunks`);
  await assertHoldsLayer(west, repository, layer);
  const manifest = await authedFetch(`${west.baseUrl}/v2/${repository}/manifests/big`, { method: 'HEAD', headers: { accept: MT.ociManifest } });
  assert.equal(manifest.status, 200, 'B holds the tag');
  assert.equal(manifest.headers.get('docker-content-digest'), digest);

  const caughtUp = await westStatus((args) => berth(a, args));
  assert.deepEqual(
    { pending: caughtUp?.pending, inProgress: caughtUp?.inProgress, failed: caughtUp?.failed, complete: caughtUp?.complete, lagSeconds: caughtUp?.lagSeconds, lastError: caughtUp?.lastError },
    { pending: 0, inProgress: 0, failed: 0, complete: 1, lagSeconds: 0, lastError: null },
  );
  assert.ok(caughtUp?.lastCompletedAt, 'the completion time is shown');
  const metricsUp = await scrapeMetrics(a);
  assert.equal(metricsUp.get(`berth_replication_pending_images${METRIC_LABELS}`), 0);
  assert.equal(metricsUp.get(`berth_replication_lag_seconds${METRIC_LABELS}`), 0);
  assert.equal(metricsUp.get(`berth_replication_complete_images${METRIC_LABELS}`), 1);
  assert.equal(a.logs.filter((l) => l['msg'] === 'image replicated' && l['digest'] === digest).length, 1, 'the image was replicated once');
  assertNoServerErrors(a.logs);
});

/** The replication task of an image, read straight from the cluster's shared metadata store. */
interface TaskRow {
  status: string;
  lease_owner: string | null;
}

/** The replication task of an image, read straight from the cluster's shared metadata store. */
async function taskOf(stores: SharedStores, digest: string): Promise<TaskRow | undefined> {
  const [row] = await stores.query<TaskRow>('select status, lease_owner from replication_tasks where digest = $1', [digest]);
  return row && { ...row };
}

/**
 * Takeover: A is two nodes on shared stores, both replicating. The test reads which node holds
 * the task's lease (its owner is `host:pid:random`, src/replication/worker.ts), waits until B
 * has accepted a few chunks of the layer from it (only the lease holder copies, so those chunks
 * are its), and SIGKILLs that node while the copy is still short of its last chunk. The other
 * node can only finish the copy by taking the task over once the lease (3 s) has run out.
 */
test('a node of A killed mid-copy: the other node takes the replication over once its lease runs out, and B holds the layer byte for byte', { timeout: 600_000 }, async (t: TestContext) => {
  const work = await mkdtemp(path.join(tmpdir(), 'berth-replication-takeover-'));
  const west = await startWest();
  const stores = await sharedStores('berth-replication-cluster');
  let cluster: TestCluster | undefined;
  t.after(async () => {
    await cluster?.close();
    await stores.cleanup();
    await west.close();
    await rm(work, { recursive: true, force: true });
  });
  const chunkBytes = 512 * 1024;
  const env = { ...stores.env, ...REPLICATION_ENV, ...peersEnv(west), BERTH_REPLICATION_CHUNK_BYTES: String(chunkBytes), BERTH_AUTH_SECRET_KEY: randomBytes(32).toString('base64') };
  cluster = await startCluster(2, { env });
  const c = cluster;
  const ecr = ecrClient(c, ADMIN);
  await putRule(ecr);

  const layer = await writeLayer(work, 200 * MiB);
  const chunkCount = Math.ceil(layer.sizeBytes / chunkBytes);
  const repository = repoName('takeover');
  const digest = await pushLayerImage(c.baseUrl, repository, layer, 'big');

  const owner = await waitFor(
    async () => {
      const row = await taskOf(stores, digest);
      assert.notEqual(row?.status, 'COMPLETE', 'the copy finished before it could be caught running: make it slower');
      return row?.status === 'IN_PROGRESS' && row.lease_owner && acceptedChunks(west, repository) >= 3 ? row.lease_owner : undefined;
    },
    { timeoutMs: 180_000, intervalMs: 20, what: 'a node to be copying the layer to B' },
  );
  const victim = c.nodes.findIndex((n) => String(n.process.pid) === owner.split(':')[1]);
  assert.ok(victim >= 0, `the lease owner ${owner} is one of the nodes`);
  await c.kill(victim);
  const sentBeforeKill = acceptedChunks(west, repository);
  assert.ok(sentBeforeKill < chunkCount, `the node died mid-copy: B had accepted ${sentBeforeKill} of ${chunkCount} chunks`);
  t.diagnostic(`node ${victim} was killed after B had accepted ${sentBeforeKill} of ${chunkCount} chunks from it`);
  const survivor = 1 - victim;

  await waitComplete(ecr, repository, digest, 'the survivor to complete the replication');
  assert.deepEqual(await taskOf(stores, digest), { status: 'COMPLETE', lease_owner: null });
  const replicated = c.nodes.map((n) => n.logs.filter((l) => l['msg'] === 'image replicated' && l['digest'] === digest).length);
  assert.deepEqual(replicated, victim === 0 ? [0, 1] : [1, 0], 'the survivor replicated the image; the killed node never finished');
  assert.ok(acceptedChunks(west, repository) > sentBeforeKill, 'the survivor sent chunks to B after the kill');
  await assertHoldsLayer(west, repository, layer);

  const status = await westStatus(async (args) => {
    // `berth` on the cluster's shared stores, from a data directory of its own.
    const { stdout } = await promisify(execFile)(path.join(repoRoot, 'bin', 'berth'), [...args, '--data-dir', path.join(work, 'cli')], { cwd: repoRoot, env: { ...process.env, ...env } });
    return JSON.parse(stdout);
  });
  assert.deepEqual([status?.pending, status?.complete, status?.failed, status?.lagSeconds], [0, 1, 0, 0]);
  assertNoServerErrors(c.nodes[survivor]!.logs);
});
