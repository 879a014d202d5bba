/**
 * Replication between regions (issue 14): how fast Berth copies a repository to another region,
 * against `skopeo sync` copying the same repository at the same moment, and how long a push
 * takes to reach the other region under a steady load. See docs/benchmarks.md, "Replication".
 *
 * Each region is a Berth deployment of its own (node src/main.ts, embedded stores, log level
 * warn), all bootstrapped with the same account and administrator key:
 *
 * - **Throughput**, in each repetition on fresh servers: A (us-east-1) with B (us-west-2) as its
 *   replication peer, and C, a second us-west-2 deployment with B's settings, for skopeo.
 *   `--images` images sharing `--base-layers` base layers, each with one or two unique layers
 *   and its own config, are pushed into one repository of A before any rule exists (not timed).
 *   Then, in an order that alternates between repetitions:
 *   - Berth: PutReplicationConfiguration (A to B), and the clock runs from the
 *     BerthReplicationBackfill call (the API form of `berth replication backfill`, which queues
 *     the images pushed before the rule) until every image's replication task is COMPLETE, read
 *     from A's SQLite store every 50 ms (the table DescribeImageReplicationStatus and
 *     `berth replication status` read; the SDK is asked for every image afterwards, and B for
 *     every tag's digest);
 *   - skopeo: `skopeo sync --src docker --dest docker --preserve-digests` of the repository from
 *     A to C, timed from start to exit, in a sandbox with an empty blob-info cache
 *     (test/support/tools.ts); C is then asked for every tag's digest.
 *   A reaches B, and skopeo reaches C, through a TCP proxy that counts the bytes
 *   (bench/lib/count-proxy.ts), so "sent" is what went over the wire to the destination.
 * - **Lag**, on a fresh A and B with the rule in place and the base layers already replicated
 *   (one warm-up image): `--rate` pushes a second for `--lag-seconds` into A, open loop (each on
 *   its schedule, whether or not the one before has finished); for each, the time from the
 *   manifest PUT's 201 to the first DescribeImageReplicationStatus (SDK, SigV4) answering
 *   COMPLETE, every pending image asked every `--status-poll-ms`; and the time from the 201 to
 *   the task's completion as A's store records it. First at the server's default
 *   replication.pollIntervalMs (1000 ms), then on another fresh pair with `--fast-poll-ms`
 *   (0 skips that run).
 *
 *   node bench/replication.ts [--images N] [--base-layers N] [--base-layer-mib N] [--unique-min-kib N]
 *                             [--unique-max-kib N] [--reps N] [--concurrency N] [--rate N]
 *                             [--lag-seconds N] [--status-poll-ms N] [--fast-poll-ms N] [--skip-lag]
 *                             [--quick] [--work-dir DIR] [--keep-data]
 *
 * Progress goes to stderr; the markdown report to stdout; everything measured to
 * bench/results/<time>-replication.json.
 */
import { readFileSync, rmSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { DatabaseSync } from 'node:sqlite';
import { parseArgs } from 'node:util';
import { DescribeImageReplicationStatusCommand, ECRClient, PutReplicationConfigurationCommand } from '@aws-sdk/client-ecr';
import { startCountingProxy, type CountingProxy } from './lib/count-proxy.ts';
import { randomBlob, seededRandom } from './lib/data.ts';
import { commandOutput, treeCpuSeconds } from './lib/proc.ts';
import { ACCEPT_MANIFESTS, mapLimit, RegistryClient } from './lib/registry-client.ts';
import { formatNumber, median, percentile } from './lib/report.ts';
import { buildImage, configBlob, OCI_MANIFEST, pushImage, type Image, type SmallBlob } from './lib/scenarios.ts';
import { BERTH_BENCH_ADMIN, freePort, launch, stopChild, waitForHttp, type BenchServer } from './lib/servers.ts';
import { ecrRequest, signedFetch } from '../test/support/aws.ts';
import { toolSandbox, type ToolSandbox } from '../test/support/tools.ts';
import { numberOption } from './lib/args.ts';
import { benchWorkDir } from './lib/work-dir.ts';

const MB = 1e6;
const MiB = 1024 * 1024;
const KiB = 1024;
const repoRoot = path.resolve(import.meta.dirname, '..');
const resultsDir = path.join(import.meta.dirname, 'results');

const SOURCE_REGION = 'us-east-1';
const DEST_REGION = 'us-west-2';
/** One path component, so that skopeo sync (without --scoped) names it the same in C as replication does in B. */
const THROUGHPUT_REPO = 'bench-app';
const LAG_REPO = 'bench-lag';
/** The server's default replication.pollIntervalMs (src/config/config.ts), which the lag's first run keeps. */
const DEFAULT_POLL_INTERVAL_MS = 1000;
const STORE_POLL_MS = 50;
const COPY_DEADLINE_MS = 15 * 60_000;
/** How long the lag phase waits after its last push for replications still on their way. */
const DRAIN_DEADLINE_MS = 60_000;
const PUSH_CONCURRENCY = 4;

function log(message: string): void {
  process.stderr.write(`[replication ${new Date().toISOString().slice(11, 19)}] ${message}\n`);
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

interface Settings {
  images: number;
  baseLayers: number;
  baseLayerBytes: number;
  uniqueMinBytes: number;
  uniqueMaxBytes: number;
  reps: number;
  /** BERTH_REPLICATION_CONCURRENCY for A; undefined keeps the server's default (4). */
  concurrency: number | undefined;
  rate: number;
  lagSeconds: number;
  statusPollMs: number;
  /** The lag's second run; 0 skips it. */
  fastPollMs: number;
  isLag: boolean;
  isQuick: boolean;
}

function parseSettings(): { settings: Settings; workBase: string; isKeepData: boolean } {
  const { values } = parseArgs({
    options: {
      images: { type: 'string' },
      'base-layers': { type: 'string', default: '3' },
      'base-layer-mib': { type: 'string', default: '4' },
      'unique-min-kib': { type: 'string', default: '256' },
      'unique-max-kib': { type: 'string', default: '2048' },
      reps: { type: 'string' },
      concurrency: { type: 'string' },
      rate: { type: 'string', default: '1' },
      'lag-seconds': { type: 'string' },
      'status-poll-ms': { type: 'string', default: '100' },
      'fast-poll-ms': { type: 'string', default: '100' },
      'skip-lag': { type: 'boolean', default: false },
      quick: { type: 'boolean', default: false },
      'work-dir': { type: 'string', default: os.tmpdir() },
      'keep-data': { type: 'boolean', default: false },
      help: { type: 'boolean', default: false },
    },
  });
  if (values.help) {
    process.stdout.write(
      'usage: node bench/replication.ts [--images N] [--base-layers N] [--base-layer-mib N] [--unique-min-kib N] [--unique-max-kib N] [--reps N] [--concurrency N] [--rate N] [--lag-seconds N] [--status-poll-ms N] [--fast-poll-ms N] [--skip-lag] [--quick] [--work-dir DIR] [--keep-data]\n',
    );
    process.exit(0);
  }
  const isQuick = values.quick;
  const number = numberOption;
  const settings: Settings = {
    images: number('images', values.images, isQuick ? 10 : 50, { min: 1, isWhole: true }),
    baseLayers: number('base-layers', values['base-layers'], 3, { min: 0, isWhole: true }),
    baseLayerBytes: Math.round(number('base-layer-mib', values['base-layer-mib'], 4, { min: 0.001 }) * MiB),
    uniqueMinBytes: Math.round(number('unique-min-kib', values['unique-min-kib'], 256, { min: 1 }) * KiB),
    uniqueMaxBytes: Math.round(number('unique-max-kib', values['unique-max-kib'], 2048, { min: 1 }) * KiB),
    reps: number('reps', values.reps, isQuick ? 1 : 5, { min: 1, isWhole: true }),
    concurrency: values.concurrency === undefined ? undefined : number('concurrency', values.concurrency, 4, { min: 1, isWhole: true }),
    rate: number('rate', values.rate, 1, { min: 0.01 }),
    lagSeconds: number('lag-seconds', values['lag-seconds'], isQuick ? 10 : 60, { min: 1 }),
    statusPollMs: number('status-poll-ms', values['status-poll-ms'], 100, { min: 10, isWhole: true }),
    fastPollMs: number('fast-poll-ms', values['fast-poll-ms'], 100, { min: 0, isWhole: true }),
    isLag: !values['skip-lag'],
    isQuick,
  };
  if (settings.uniqueMaxBytes < settings.uniqueMinBytes) throw new Error('--unique-max-kib must be at least --unique-min-kib');
  if (settings.fastPollMs > 0 && settings.fastPollMs < 10) throw new Error('--fast-poll-ms must be 0 (skip) or at least 10 (the server\'s minimum)');
  return { settings, workBase: values['work-dir'], isKeepData: values['keep-data'] };
}

// --- regions ------------------------------------------------------------------------------------

interface RegionServer extends BenchServer {
  region: string;
  /** `127.0.0.1:PORT`. */
  host: string;
  port: number;
  dataDir: string;
  ecr: ECRClient;
  client: RegistryClient;
}

/** A new object each time: the SDK marks the credentials object it is given (a `$source` field). */
const adminCredentials = () => ({ accessKeyId: BERTH_BENCH_ADMIN.accessKeyId, secretAccessKey: BERTH_BENCH_ADMIN.secretAccessKey });

/**
 * A Berth deployment for `region` with its embedded stores in `dir`/data,
 * at log level warn, repositories created on push (skopeo's destination needs it; the others get
 * it too, so all run the same settings), with the bench's administrator, and `env` on top.
 */
async function startRegion(dir: string, region: string, options: { env?: Record<string, string> } = {}): Promise<RegionServer> {
  await mkdir(dir, { recursive: true });
  const dataDir = path.join(dir, 'data');
  const port = await freePort();
  const child = launch(process.execPath, ['src/main.ts', '--listen', `127.0.0.1:${port}`, '--data-dir', dataDir], {
    cwd: repoRoot,
    env: {
      ...process.env,
      BERTH_LOG_LEVEL: 'warn',
      BERTH_REGION: region,
      BERTH_REPOSITORIES_CREATE_ON_PUSH: 'true',
      BERTH_BOOTSTRAP_ACCOUNT_ID: BERTH_BENCH_ADMIN.accountId,
      BERTH_BOOTSTRAP_ACCESS_KEY_ID: BERTH_BENCH_ADMIN.accessKeyId,
      BERTH_BOOTSTRAP_SECRET_ACCESS_KEY: BERTH_BENCH_ADMIN.secretAccessKey,
      ...options.env,
    },
    logFile: path.join(dir, 'stderr.log'),
  });
  child.stdout!.resume();
  const baseUrl = `http://127.0.0.1:${port}`;
  await waitForHttp(`${baseUrl}/healthz`, child, `Berth (${region})`);
  const authorization = `Basic ${Buffer.from(`${BERTH_BENCH_ADMIN.accessKeyId}:${BERTH_BENCH_ADMIN.secretAccessKey}`).toString('base64')}`;
  const ecr = new ECRClient({ region, endpoint: baseUrl, credentials: adminCredentials(), maxAttempts: 1 });
  const client = new RegistryClient(baseUrl, { authorization, maxSockets: 16 });
  return {
    name: 'berth',
    region,
    host: `127.0.0.1:${port}`,
    port,
    baseUrl,
    pid: child.pid!,
    authorization,
    dataDir,
    ecr,
    client,
    stop: async () => {
      client.close();
      ecr.destroy();
      await stopChild(child);
    },
  };
}

/** The `replication.peers` of a source whose one peer is `endpoint` (B, or the proxy before it). */
function peersEnv(endpoint: string): Record<string, string> {
  return {
    BERTH_REPLICATION_PEERS: JSON.stringify([{ kind: 'berth', region: DEST_REGION, endpoint, ...adminCredentials() }]),
  };
}

async function putRule(source: RegionServer): Promise<void> {
  await source.ecr.send(
    new PutReplicationConfigurationCommand({
      replicationConfiguration: { rules: [{ destinations: [{ region: DEST_REGION, registryId: BERTH_BENCH_ADMIN.accountId }] }] },
    }),
  );
}

/** The destination's status for one image: COMPLETE, FAILED, IN_PROGRESS, or undefined while no task exists. */
async function replicationStatusOf(source: RegionServer, repositoryName: string, digest: string): Promise<{ status: string | undefined; failureCode?: string }> {
  const out = await source.ecr.send(new DescribeImageReplicationStatusCommand({ repositoryName, imageId: { imageDigest: digest } }));
  const mine = out.replicationStatuses?.find((s) => s.region === DEST_REGION);
  return { status: mine?.status, ...(mine?.failureCode ? { failureCode: mine.failureCode } : {}) };
}

/** Checks that `server` holds each image under its tag, by digest. */
async function checkHolds(server: RegionServer, repo: string, images: TaggedImage[], what: string): Promise<void> {
  await mapLimit(images, 8, async ({ tag, image }) => {
    const res = await server.client.request('HEAD', `/v2/${repo}/manifests/${tag}`, { headers: { accept: ACCEPT_MANIFESTS } });
    const digest = res.headers['docker-content-digest'];
    if (res.status !== 200 || digest !== image.digest) throw new Error(`${what}: ${repo}:${tag} answered ${res.status} with digest ${String(digest)}, wanted ${image.digest}`);
  });
}

/** User plus system CPU of this process's children that have exited and been waited for (cutime, cstime). */
function reapedChildrenCpuSeconds(): number {
  const stat = readFileSync('/proc/self/stat', 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[13]) + Number(fields[14])) / 100;
}

function ownCpuSeconds(): number {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1e6;
}

// --- images -------------------------------------------------------------------------------------

interface TaggedImage {
  tag: string;
  image: Image;
}

/** `count` images over the shared base layers, each with its own 1 or 2 layers (sizes from `seed`) and config. */
async function makeImages(settings: Settings, base: SmallBlob[], count: number, seed: number, tagPrefix: string): Promise<TaggedImage[]> {
  const rand = seededRandom(seed);
  const span = settings.uniqueMaxBytes - settings.uniqueMinBytes;
  const out: TaggedImage[] = [];
  for (let i = 0; i < count; i++) {
    const uniqueCount = rand() < 0.5 ? 1 : 2;
    const unique: SmallBlob[] = [];
    for (let j = 0; j < uniqueCount; j++) unique.push(await randomBlob(settings.uniqueMinBytes + Math.floor(rand() * span)));
    const layers = [...base, ...unique];
    out.push({ tag: `${tagPrefix}${String(i + 1).padStart(4, '0')}`, image: buildImage(configBlob(layers), layers) });
  }
  return out;
}

/** Bytes of an image as a pull would count them: config and layers, not the manifest. */
function imageBytes(image: Image): number {
  return image.config.bytes.length + image.layers.reduce((sum, l) => sum + l.bytes.length, 0);
}

/** Bytes of the distinct blobs (the least any copier must send) and of the manifests. */
function distinctBytes(images: TaggedImage[]): { blobBytes: number; manifestBytes: number } {
  const blobs = new Map<string, number>();
  let manifestBytes = 0;
  for (const { image } of images) {
    for (const b of [image.config, ...image.layers]) blobs.set(b.digest, b.bytes.length);
    manifestBytes += image.manifest.length;
  }
  return { blobBytes: [...blobs.values()].reduce((a, b) => a + b, 0), manifestBytes };
}

// --- throughput ---------------------------------------------------------------------------------

type Copier = 'berth' | 'skopeo';
const COPIER_LABELS: Record<Copier, string> = { berth: 'Berth replication', skopeo: 'skopeo sync' };

interface CopySample {
  rep: number;
  copier: Copier;
  /** Which of the two ran first in its repetition. */
  position: number;
  seconds: number;
  mbps: number;
  /** Bytes the copier sent to the destination (requests, over the proxy) and got back. */
  sentBytes: number;
  receivedBytes: number;
  connections: number;
  sourceCpuSeconds: number;
  destinationCpuSeconds: number;
  /** skopeo's own process; for Berth the copier is the source server. */
  copierCpuSeconds: number | undefined;
  /** This process meanwhile: the proxy, and the store reads or the wait for skopeo. */
  benchCpuSeconds: number;
  /** Berth only: the mean of the tasks IN_PROGRESS over the store reads, against replication.concurrency. */
  meanInFlight?: number;
  /** Berth only: attempts that failed and were retried. */
  retries?: number;
}

/**
 * Starts the clock and the counters of one copy from `source` to `destination` through `proxy`;
 * `finish` reads them into the figures both copiers share.
 */
function startCopy(proxy: CountingProxy, source: RegionServer, destination: RegionServer) {
  proxy.reset();
  const cpuSource = treeCpuSeconds(source.pid);
  const cpuDestination = treeCpuSeconds(destination.pid);
  const cpuChildren = reapedChildrenCpuSeconds();
  const cpuBench = ownCpuSeconds();
  const t0 = performance.now();
  return {
    elapsedMs: () => performance.now() - t0,
    finish(copy: { rep: number; copier: Copier; position: number; logicalBytes: number }): CopySample {
      const seconds = (performance.now() - t0) / 1000;
      return {
        rep: copy.rep,
        copier: copy.copier,
        position: copy.position,
        seconds,
        mbps: copy.logicalBytes / MB / seconds,
        sentBytes: proxy.upstreamBytes(),
        receivedBytes: proxy.downstreamBytes(),
        connections: proxy.connections(),
        sourceCpuSeconds: treeCpuSeconds(source.pid) - cpuSource,
        destinationCpuSeconds: treeCpuSeconds(destination.pid) - cpuDestination,
        // For Berth the copier is the source server; skopeo is a child process of this one.
        copierCpuSeconds: copy.copier === 'skopeo' ? reapedChildrenCpuSeconds() - cpuChildren : undefined,
        benchCpuSeconds: ownCpuSeconds() - cpuBench,
      };
    },
  };
}

interface TaskCounts {
  counts: Record<string, number>;
  attempts: number;
  lastError: string | null;
}

function taskCounts(db: DatabaseSync): TaskCounts {
  const rows = db.prepare('SELECT status, COUNT(*) AS n, SUM(attempts) AS attempts FROM replication_tasks GROUP BY status').all() as Array<{ status: string; n: number; attempts: number }>;
  const lastError = (db.prepare('SELECT last_error FROM replication_tasks WHERE last_error IS NOT NULL LIMIT 1').get() as { last_error: string } | undefined)?.last_error ?? null;
  return {
    counts: Object.fromEntries(rows.map((r) => [r.status, Number(r.n)])),
    attempts: rows.reduce((a, r) => a + Number(r.attempts ?? 0), 0),
    lastError,
  };
}

async function measureBerth(rep: number, position: number, a: RegionServer, b: RegionServer, proxy: CountingProxy, images: TaggedImage[], logicalBytes: number): Promise<CopySample> {
  await putRule(a);
  const db = new DatabaseSync(path.join(a.dataDir, 'metadata.db'), { readOnly: true });
  try {
    const clock = startCopy(proxy, a, b);
    const res = await signedFetch(a, adminCredentials(), { service: 'ecr', ...ecrRequest('BerthReplicationBackfill', {}) });
    const backfill = (await res.json()) as { queued?: number; message?: string };
    if (!res.ok || backfill.queued !== images.length) throw new Error(`BerthReplicationBackfill answered ${res.status}: ${JSON.stringify(backfill)}, wanted ${images.length} queued`);
    let samples = 0;
    let inFlight = 0;
    let lastLog = performance.now();
    let state: TaskCounts;
    for (;;) {
      state = taskCounts(db);
      samples++;
      inFlight += state.counts['IN_PROGRESS'] ?? 0;
      if ((state.counts['FAILED'] ?? 0) > 0) throw new Error(`${state.counts['FAILED']} replications FAILED: ${state.lastError}`);
      if ((state.counts['COMPLETE'] ?? 0) >= images.length) break;
      if (performance.now() - lastLog > 10_000) {
        lastLog = performance.now();
        log(`rep ${rep} berth: tasks ${JSON.stringify(state.counts)}${state.lastError ? `, last error: ${state.lastError}` : ''}`);
      }
      if (clock.elapsedMs() > COPY_DEADLINE_MS) throw new Error(`replication did not finish within ${COPY_DEADLINE_MS / 60_000} minutes: ${JSON.stringify(state.counts)}`);
      await sleep(STORE_POLL_MS);
    }
    const sample: CopySample = { ...clock.finish({ rep, copier: 'berth', position, logicalBytes }), meanInFlight: inFlight / samples, retries: state.attempts };
    // What users see, after the clock: every image COMPLETE by the API, and B serving each tag.
    await mapLimit(images, 4, async ({ tag, image }) => {
      const { status, failureCode } = await replicationStatusOf(a, THROUGHPUT_REPO, image.digest);
      if (status !== 'COMPLETE') throw new Error(`DescribeImageReplicationStatus of ${tag}: ${status} ${failureCode ?? ''}`);
    });
    await checkHolds(b, THROUGHPUT_REPO, images, 'B after replication');
    return sample;
  } finally {
    db.close();
  }
}

async function measureSkopeo(rep: number, position: number, a: RegionServer, c: RegionServer, proxy: CountingProxy, images: TaggedImage[], logicalBytes: number, sandbox: ToolSandbox): Promise<CopySample> {
  const creds = `${BERTH_BENCH_ADMIN.accessKeyId}:${BERTH_BENCH_ADMIN.secretAccessKey}`;
  const clock = startCopy(proxy, a, c);
  await sandbox.skopeo(
    [
      'sync', '--src', 'docker', '--dest', 'docker',
      '--src-tls-verify=false', '--dest-tls-verify=false',
      '--src-creds', creds, '--dest-creds', creds,
      '--preserve-digests',
      `${a.host}/${THROUGHPUT_REPO}`, proxy.host,
    ],
    { timeoutMs: COPY_DEADLINE_MS },
  );
  const sample = clock.finish({ rep, copier: 'skopeo', position, logicalBytes });
  await checkHolds(c, THROUGHPUT_REPO, images, 'C after skopeo sync');
  return sample;
}

async function throughputRep(rep: number, settings: Settings, work: string, base: SmallBlob[], isKeepData: boolean): Promise<{ samples: CopySample[]; logicalBytes: number; distinct: { blobBytes: number; manifestBytes: number } }> {
  const dir = path.join(work, `rep-${rep}`);
  const started: Array<{ stop(): Promise<void> }> = [];
  const sandbox = await toolSandbox();
  try {
    const b = await startRegion(path.join(dir, 'b'), DEST_REGION);
    started.push(b);
    const c = await startRegion(path.join(dir, 'c'), DEST_REGION);
    started.push(c);
    const proxyB = await startCountingProxy({ host: '127.0.0.1', port: b.port });
    started.push({ stop: () => proxyB.close() });
    const proxyC = await startCountingProxy({ host: '127.0.0.1', port: c.port });
    started.push({ stop: () => proxyC.close() });
    const concurrencyEnv: Record<string, string> = settings.concurrency === undefined ? {} : { BERTH_REPLICATION_CONCURRENCY: String(settings.concurrency) };
    const a = await startRegion(path.join(dir, 'a'), SOURCE_REGION, { env: { ...peersEnv(proxyB.baseUrl), ...concurrencyEnv } });
    started.push(a);

    const images = await makeImages(settings, base, settings.images, 1000 + rep, 'v');
    const logicalBytes = images.reduce((sum, { image }) => sum + imageBytes(image), 0);
    const distinct = distinctBytes(images);
    log(`rep ${rep}: pushing ${images.length} images (${formatNumber(logicalBytes / MB)} MB as pulled, ${formatNumber(distinct.blobBytes / MB)} MB of distinct blobs) into A`);
    for (const { tag, image } of images) await pushImage(a, a.client, THROUGHPUT_REPO, image, [tag], PUSH_CONCURRENCY);

    // Alternate who goes first, so that a drift in the machine's load is shared.
    const order: Copier[] = rep % 2 === 1 ? ['berth', 'skopeo'] : ['skopeo', 'berth'];
    const samples: CopySample[] = [];
    for (const [i, copier] of order.entries()) {
      const s = copier === 'berth'
        ? await measureBerth(rep, i + 1, a, b, proxyB, images, logicalBytes)
        : await measureSkopeo(rep, i + 1, a, c, proxyC, images, logicalBytes, sandbox);
      samples.push(s);
      log(`rep ${rep} ${COPIER_LABELS[copier]}: ${formatNumber(s.seconds)} s, ${formatNumber(s.mbps)} MB/s, sent ${formatNumber(s.sentBytes / MB)} MB${s.meanInFlight !== undefined ? `, ${formatNumber(s.meanInFlight)} in flight on average` : ''}`);
    }
    return { samples, logicalBytes, distinct };
  } finally {
    for (const s of started.reverse()) await s.stop();
    await sandbox.close();
    // Three copies of the images a repetition: not kept for the next one.
    if (!isKeepData) rmSync(dir, { recursive: true, force: true });
  }
}

// --- lag ----------------------------------------------------------------------------------------

interface LagStats {
  n: number;
  p50Ms: number;
  p95Ms: number;
  p99Ms: number;
  maxMs: number;
}

interface LagRun {
  pollIntervalMs: number;
  rate: number;
  seconds: number;
  pushes: number;
  pushErrors: number;
  pushP50Ms: number;
  pushP99Ms: number;
  /** 201 to the first DescribeImageReplicationStatus answering COMPLETE. */
  observed: LagStats;
  /** 201 to the task's completed_at in A's store. */
  recorded: LagStats;
  /** Images not COMPLETE by the drain deadline. */
  missing: number;
  failed: number;
  statusRequests: number;
  sourceCpuSeconds: number;
  destinationCpuSeconds: number;
  observedMs: number[];
  recordedMs: number[];
}

function stats(xs: number[]): LagStats {
  return { n: xs.length, p50Ms: percentile(xs, 50), p95Ms: percentile(xs, 95), p99Ms: percentile(xs, 99), maxMs: xs.length > 0 ? Math.max(...xs) : Number.NaN };
}

/** Pushes everything of an image but the blobs the repository holds, then the manifest; resolves when the manifest PUT answered 201. */
async function pushLagImage(a: RegionServer, { tag, image }: TaggedImage): Promise<void> {
  await pushImage(a, a.client, LAG_REPO, image, [tag], PUSH_CONCURRENCY);
}

async function measureLag(settings: Settings, a: RegionServer, b: RegionServer, base: SmallBlob[], pollIntervalMs: number, tagPrefix: string, seed: number): Promise<LagRun> {
  const total = Math.max(1, Math.round(settings.rate * settings.lagSeconds));
  const images = await makeImages(settings, base, total, seed, tagPrefix);
  const ackAt = new Map<string, number>();
  const completeAt = new Map<string, number>();
  const failed = new Set<string>();
  const pending = new Set<string>();
  const pushLatencies: number[] = [];
  let pushErrors = 0;
  let isPushing = true;
  let statusRequests = 0;
  const cpuA = treeCpuSeconds(a.pid);
  const cpuB = treeCpuSeconds(b.pid);

  // Every pending image asked at once, every statusPollMs, as a user waiting for each would.
  const poller = (async () => {
    let drainDeadline = Number.POSITIVE_INFINITY;
    for (;;) {
      const tick = performance.now();
      if (!isPushing && drainDeadline === Number.POSITIVE_INFINITY) drainDeadline = Date.now() + DRAIN_DEADLINE_MS;
      if (!isPushing && pending.size === 0) return;
      if (Date.now() > drainDeadline) return;
      await Promise.all([...pending].map(async (digest) => {
        statusRequests++;
        let answer;
        try {
          answer = await replicationStatusOf(a, LAG_REPO, digest);
        } catch (err) {
          log(`lag: DescribeImageReplicationStatus failed: ${(err as Error).message}`);
          return;
        }
        if (answer.status === 'COMPLETE') {
          completeAt.set(digest, Date.now());
          pending.delete(digest);
        } else if (answer.status === 'FAILED') {
          failed.add(digest);
          pending.delete(digest);
          log(`lag: replication of ${digest} FAILED (${answer.failureCode ?? 'no code'})`);
        }
      }));
      const wait = settings.statusPollMs - (performance.now() - tick);
      if (wait > 0) await sleep(wait);
    }
  })();

  // Open loop: each push starts on its own schedule, whether or not the one before has finished.
  const intervalMs = 1000 / settings.rate;
  const start = performance.now() + 100;
  const inFlight: Promise<void>[] = [];
  for (const [n, tagged] of images.entries()) {
    const wait = start + n * intervalMs - performance.now();
    if (wait > 0) await sleep(wait);
    inFlight.push((async () => {
      const t0 = performance.now();
      try {
        await pushLagImage(a, tagged);
      } catch (err) {
        if (pushErrors++ === 0) log(`lag: a push failed: ${(err as Error).message}`);
        return;
      }
      ackAt.set(tagged.image.digest, Date.now());
      pushLatencies.push(performance.now() - t0);
      pending.add(tagged.image.digest);
    })());
  }
  await Promise.all(inFlight);
  isPushing = false;
  await poller;
  const sourceCpuSeconds = treeCpuSeconds(a.pid) - cpuA;
  const destinationCpuSeconds = treeCpuSeconds(b.pid) - cpuB;

  const db = new DatabaseSync(path.join(a.dataDir, 'metadata.db'), { readOnly: true });
  const recordedMs: number[] = [];
  try {
    const query = db.prepare("SELECT completed_at FROM replication_tasks WHERE digest = ? AND status = 'COMPLETE'");
    for (const [digest, ack] of ackAt) {
      const row = query.get(digest) as { completed_at: number | null } | undefined;
      if (row?.completed_at != null) recordedMs.push(Number(row.completed_at) - ack);
    }
  } finally {
    db.close();
  }
  const observedMs = [...completeAt].map(([digest, at]) => at - ackAt.get(digest)!);
  return {
    pollIntervalMs,
    rate: settings.rate,
    seconds: settings.lagSeconds,
    pushes: ackAt.size,
    pushErrors,
    pushP50Ms: percentile(pushLatencies, 50),
    pushP99Ms: percentile(pushLatencies, 99),
    observed: stats(observedMs),
    recorded: stats(recordedMs),
    missing: ackAt.size - completeAt.size - failed.size,
    failed: failed.size,
    statusRequests,
    sourceCpuSeconds,
    destinationCpuSeconds,
    observedMs,
    recordedMs,
  };
}

/**
 * One lag run on a fresh A and B (a restarted A could wait for its predecessor's lease on the
 * event log's replication consumer, up to replication.leaseSeconds, before it reads a push).
 * `pollIntervalMs` undefined keeps the server's default.
 */
async function lagRun(settings: Settings, dir: string, base: SmallBlob[], pollIntervalMs: number | undefined, seed: number): Promise<LagRun> {
  const env: Record<string, string> = {
    ...(settings.concurrency === undefined ? {} : { BERTH_REPLICATION_CONCURRENCY: String(settings.concurrency) }),
    ...(pollIntervalMs === undefined ? {} : { BERTH_REPLICATION_POLL_INTERVAL_MS: String(pollIntervalMs) }),
  };
  const b = await startRegion(path.join(dir, 'b'), DEST_REGION);
  let a: RegionServer | undefined;
  try {
    a = await startRegion(path.join(dir, 'a'), SOURCE_REGION, { env: { ...peersEnv(b.baseUrl), ...env } });
    await putRule(a);
    // The base layers reach B once, as a real base image would have long before.
    const [warm] = await makeImages(settings, base, 1, seed + 100, 'warm-');
    await pushLagImage(a, warm!);
    const deadline = Date.now() + 60_000;
    while ((await replicationStatusOf(a, LAG_REPO, warm!.image.digest)).status !== 'COMPLETE') {
      if (Date.now() > deadline) throw new Error('the warm-up image was not replicated within 60 s');
      await sleep(100);
    }
    const interval = pollIntervalMs ?? DEFAULT_POLL_INTERVAL_MS;
    log(`lag: ${settings.lagSeconds} s at ${settings.rate} pushes/s, replication.pollIntervalMs ${interval}${pollIntervalMs === undefined ? ' (the default)' : ''}`);
    const run = await measureLag(settings, a, b, base, interval, 'v', seed);
    logLag(run);
    return run;
  } finally {
    await a?.stop();
    await b.stop();
  }
}

async function lagPhase(settings: Settings, work: string, base: SmallBlob[]): Promise<LagRun[]> {
  const runs = [await lagRun(settings, path.join(work, 'lag-default'), base, undefined, 11)];
  if (settings.fastPollMs > 0) runs.push(await lagRun(settings, path.join(work, 'lag-fast'), base, settings.fastPollMs, 12));
  return runs;
}

function logLag(r: LagRun): void {
  log(`lag at ${r.pollIntervalMs} ms: observed p50 ${formatNumber(r.observed.p50Ms)} ms, p95 ${formatNumber(r.observed.p95Ms)}, p99 ${formatNumber(r.observed.p99Ms)}, max ${formatNumber(r.observed.maxMs)} over ${r.observed.n}; recorded p50 ${formatNumber(r.recorded.p50Ms)} ms, max ${formatNumber(r.recorded.maxMs)}${r.missing + r.failed > 0 ? `; ${r.missing} missing, ${r.failed} failed` : ''}`);
}

// --- main ---------------------------------------------------------------------------------------

async function main(): Promise<void> {
  const { settings, workBase, isKeepData } = parseSettings();
  const startedAt = new Date();
  const loadBefore = os.loadavg();
  const { work, cleanUp } = await benchWorkDir(workBase, 'berth-replication-', { keep: isKeepData, log });
  const git = commandOutput('git', ['-C', repoRoot, 'rev-parse', '--short', 'HEAD']);
  const isDirty = commandOutput('git', ['-C', repoRoot, 'status', '--porcelain', '--untracked-files=no', '--', 'src']) !== '';
  // Every repetition starts servers from the checkout: a change to src/ meanwhile would mix versions.
  const sourceState = () => commandOutput('git', ['-C', repoRoot, 'diff', 'HEAD', '--', 'src']) + commandOutput('git', ['-C', repoRoot, 'rev-parse', 'HEAD']);
  const stateBefore = sourceState();
  const skopeoVersion = /skopeo version (\S+)/.exec(commandOutput('skopeo', ['--version']))?.[1];
  if (!skopeoVersion) throw new Error('skopeo is not installed (apt-get install skopeo)');
  log(`work directory ${work}; ${settings.reps} repetition(s) of ${settings.images} images, then ${settings.isLag ? `${settings.lagSeconds} s at ${settings.rate} pushes/s` : 'no lag phase'}`);

  const base: SmallBlob[] = [];
  for (let i = 0; i < settings.baseLayers; i++) base.push(await randomBlob(settings.baseLayerBytes));
  const samples: CopySample[] = [];
  let logicalBytes = 0;
  let distinct = { blobBytes: 0, manifestBytes: 0 };
  let lag: LagRun[] = [];
  try {
    for (let rep = 1; rep <= settings.reps; rep++) {
      const r = await throughputRep(rep, settings, work, base, isKeepData);
      samples.push(...r.samples);
      logicalBytes = r.logicalBytes;
      distinct = r.distinct;
    }
    if (settings.isLag) lag = await lagPhase(settings, work, base);
  } finally {
    cleanUp();
  }

  const of = (copier: Copier, pick: (s: CopySample) => number | undefined) => samples.filter((s) => s.copier === copier).map(pick).filter((v): v is number => v !== undefined);
  const med = (copier: Copier, pick: (s: CopySample) => number | undefined) => {
    const xs = of(copier, pick);
    return xs.length > 0 ? median(xs) : undefined;
  };
  const berthSeconds = med('berth', (s) => s.seconds)!;
  const skopeoSeconds = med('skopeo', (s) => s.seconds)!;
  const pairRatios = Array.from({ length: settings.reps }, (_, i) => {
    const x = samples.find((s) => s.rep === i + 1 && s.copier === 'berth')!;
    const y = samples.find((s) => s.rep === i + 1 && s.copier === 'skopeo')!;
    return y.seconds / x.seconds;
  });
  const speedup = skopeoSeconds / berthSeconds;
  const isMet = berthSeconds <= skopeoSeconds;
  const finishedAt = new Date();
  const loadAfter = os.loadavg();
  const isSourceChanged = sourceState() !== stateBefore;
  if (isSourceChanged) log('warning: src/ or HEAD changed during the run; later servers ran other code than earlier ones');
  const machine = { cpus: os.availableParallelism(), cpuModel: os.cpus()[0]?.model ?? 'unknown', memoryGiB: Math.round((os.totalmem() / 2 ** 30) * 10) / 10, node: process.version, kernel: os.release(), skopeo: skopeoVersion };
  const berth = `${git}${isDirty ? ' (src/ has uncommitted changes)' : ''}${isSourceChanged ? ' (src/ changed during the run)' : ''}`;

  await mkdir(resultsDir, { recursive: true });
  const resultFile = path.join(resultsDir, `${startedAt.toISOString().replace(/[:.]/g, '-')}-replication${settings.isQuick ? '-quick' : ''}.json`);
  await writeFile(resultFile, JSON.stringify({
    startedAt,
    finishedAt,
    settings: { ...settings, defaultPollIntervalMs: DEFAULT_POLL_INTERVAL_MS },
    berth,
    machine,
    loadAverage: { before: loadBefore, after: loadAfter },
    throughput: {
      logicalBytes,
      distinctBlobBytes: distinct.blobBytes,
      manifestBytes: distinct.manifestBytes,
      medians: { berthSeconds, skopeoSeconds },
      speedup,
      pairRatios,
      target: 'Berth replication at least as fast as skopeo sync',
      isMet,
      samples,
    },
    lag,
  }, null, 2) + '\n');

  const minutes = ((finishedAt.getTime() - startedAt.getTime()) / 60_000).toFixed(1);
  const cell = (v: number | undefined, scale = 1) => (v === undefined ? 'n/a' : formatNumber(v / scale));
  const row = (label: string, unit: string, pick: (s: CopySample) => number | undefined, options: { scale?: number; hasRatio?: boolean } = {}) => {
    const x = med('berth', pick);
    const y = med('skopeo', pick);
    const ratio = options.hasRatio && x !== undefined && y !== undefined && y !== 0 ? `${(x / y).toFixed(2)}x` : '';
    return `| ${label} | ${unit} | ${cell(x, options.scale)} | ${cell(y, options.scale)} | ${ratio} |`;
  };
  const lagRow = (r: LagRun, which: 'observed' | 'recorded') => {
    const s = r[which];
    const label = `${r.pollIntervalMs} ms${r.pollIntervalMs === DEFAULT_POLL_INTERVAL_MS ? ' (default)' : ''}, ${which === 'observed' ? `SDK poll every ${settings.statusPollMs} ms` : 'store completed_at'}`;
    return `| ${label} | ${s.n} | ${formatNumber(s.p50Ms)} | ${formatNumber(s.p95Ms)} | ${formatNumber(s.p99Ms)} | ${formatNumber(s.maxMs)} |`;
  };
  const layersText = `${settings.baseLayers} shared base layers of ${formatNumber(settings.baseLayerBytes / MiB)} MiB, 1-2 unique layers of ${formatNumber(settings.uniqueMinBytes / KiB)}-${formatNumber(settings.uniqueMaxBytes / KiB)} KiB`;
  process.stdout.write([
    `## Replication benchmark, ${startedAt.toISOString().slice(0, 16).replace('T', ' ')} UTC (${settings.reps} rep${settings.reps > 1 ? 's' : ''}, ${minutes} min), Berth ${git}${isDirty ? ' + uncommitted src/' : ''}`,
    '',
    ...(isSourceChanged ? ['**src/ or HEAD changed during the run: servers started later ran other code than earlier ones.**', ''] : []),
    `${machine.cpus} x ${machine.cpuModel}, Node ${machine.node}, skopeo ${machine.skopeo}. Load average before ${loadBefore.map((x) => x.toFixed(2)).join(' ')}, after ${loadAfter.map((x) => x.toFixed(2)).join(' ')}.`,
    '',
    `### Throughput: ${settings.images} images in one repository (${layersText}), A to a fresh region (medians of ${settings.reps})`,
    '',
    `${formatNumber(logicalBytes / MB)} MB of images as pulled; ${formatNumber(distinct.blobBytes / MB)} MB of distinct blobs (the least a copier must send) and ${formatNumber(distinct.manifestBytes / 1000)} kB of manifests. Berth: BerthReplicationBackfill to all COMPLETE, replication.concurrency ${settings.concurrency ?? '4 (default)'}, pollIntervalMs ${DEFAULT_POLL_INTERVAL_MS} (default). skopeo: \`skopeo sync --preserve-digests\` to exit.`,
    '',
    '| Figure | Unit | Berth replication | skopeo sync | Berth/skopeo |',
    '|---|---|--:|--:|--:|',
    row('Time to copy all images', 's', (s) => s.seconds, { hasRatio: true }),
    row('Throughput (image bytes as pulled / time)', 'MB/s', (s) => s.mbps, { hasRatio: true }),
    row('Sent to the destination (over the wire)', 'MB', (s) => s.sentBytes, { scale: MB, hasRatio: true }),
    row('Received from the destination', 'MB', (s) => s.receivedBytes, { scale: MB }),
    row('TCP connections to the destination', '', (s) => s.connections),
    row('CPU, source server (A)', 's', (s) => s.sourceCpuSeconds),
    row('CPU, destination server', 's', (s) => s.destinationCpuSeconds),
    row('CPU, skopeo process', 's', (s) => s.copierCpuSeconds),
    row('CPU, this bench (proxy, polling)', 's', (s) => s.benchCpuSeconds),
    row('Images in flight, mean (Berth: tasks IN_PROGRESS)', '', (s) => s.meanInFlight),
    '',
    `Every repetition (seconds, Berth / skopeo, who went first): ${pairRatios.map((_, i) => {
      const x = samples.find((s) => s.rep === i + 1 && s.copier === 'berth')!;
      const y = samples.find((s) => s.rep === i + 1 && s.copier === 'skopeo')!;
      return `${formatNumber(x.seconds)} / ${formatNumber(y.seconds)} (${x.position === 1 ? 'Berth' : 'skopeo'} first)`;
    }).join('; ')}.`,
    '',
    `Target, Berth replication at least as fast as skopeo sync: skopeo's median time / Berth's = ${speedup.toFixed(2)}x (per repetition ${pairRatios.map((r) => r.toFixed(2)).join(', ')}): **${isMet ? 'met' : 'missed'}**.`,
    '',
    ...(lag.length > 0
      ? [
          `### Lag: ${settings.rate} push${settings.rate === 1 ? '' : 'es'}/s for ${settings.lagSeconds} s into A, base layers already in B`,
          '',
          'From the manifest PUT\'s 201 to the first DescribeImageReplicationStatus answering COMPLETE (what a user polling sees), and to the completion time A\'s store records (no polling granularity). A push wakes the replication of the node that took it at once; replication.pollIntervalMs bounds the lag only for pushes that reach another node of a cluster.',
          '',
          '| replication.pollIntervalMs, measured by | Images | p50 ms | p95 ms | p99 ms | max ms |',
          '|---|--:|--:|--:|--:|--:|',
          ...lag.flatMap((r) => [lagRow(r, 'observed'), lagRow(r, 'recorded')]),
          '',
          ...lag.map((r) => `At ${r.pollIntervalMs} ms: ${r.pushes} pushes (p50 ${formatNumber(r.pushP50Ms)} ms, p99 ${formatNumber(r.pushP99Ms)} ms)${r.pushErrors > 0 ? `, ${r.pushErrors} failed` : ''}; ${r.missing} not COMPLETE by the deadline, ${r.failed} FAILED; ${r.statusRequests} status requests; CPU A ${formatNumber(r.sourceCpuSeconds)} s, B ${formatNumber(r.destinationCpuSeconds)} s.`),
          '',
        ]
      : []),
    `Results: ${path.relative(repoRoot, resultFile)}`,
    '',
  ].join('\n'));
}

await main();
