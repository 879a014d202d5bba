/**
 * Berth on its scale-out stores (PostgreSQL metadata, S3 blobs) against CNCF Distribution on its
 * S3 driver, on one machine: blob push (monolithic and chunked), blob pull by redirect and by
 * proxy, and manifest GET by tag under wrk, for Berth as one node and as three nodes behind a
 * round-robin balancer (nginx). One PostgreSQL and one Ceph radosgw (memstore) serve everything;
 * see docs/benchmarks.md, "Scale-out: PostgreSQL + S3".
 *
 *   node bench/scaleout.ts [--reps N] [--quick] [--seconds N] [--work-dir DIR] [--keep-data]
 *
 * Each figure is taken from every target in turn within a repetition (the order rotating from
 * one repetition to the next), so drift in the machine's load touches them alike. Progress goes
 * to stderr, the markdown report to stdout, everything measured to
 * bench/results/<time>-scaleout.json. Every process started is stopped by its PID at the end,
 * on error, and on Ctrl-C.
 */
import { randomBytes } from 'node:crypto';
import { readFileSync, rmSync } from 'node:fs';
import { chmod, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { CreateBucketCommand, DeleteObjectsCommand, ListObjectsV2Command, S3Client } from '@aws-sdk/client-s3';
import { writeRandomFile, type BlobFile } from './lib/data.ts';
import { curlPull, CURL_BIN } from './lib/curl.ts';
import { commandOutput, resetPeakRss, treeCpuSeconds, treePeakRssBytes } from './lib/proc.ts';
import { ACCEPT_MANIFESTS, mapLimit, RegistryClient } from './lib/registry-client.ts';
import { formatNumber, median } from './lib/report.ts';
import { makeImage, OCI_MANIFEST, sizeLabel, type Image } from './lib/scenarios.ts';
import { startBalancer, startBerthNode, startDistributionS3, type Balancer, type Process, type S3Target } from './lib/scaleout-servers.ts';
import { DISTRIBUTION_BIN, NGINX_BIN } from './lib/servers.ts';
import { cephUsage, isAlive, startCeph, startPostgres, stopServicesNow, type CephS3, type Postgres } from './lib/services.ts';
import { runWrk, WRK_BIN } from './lib/wrk.ts';

const MiB = 1024 * 1024;
const GiB = 1024 * MiB;
const MB = 1e6;
const repoRoot = path.resolve(import.meta.dirname, '..');
const resultsDir = path.join(import.meta.dirname, 'results');

/** Berth nodes redirect clients from this address and proxy the bytes for any other. */
const REDIRECTED_CLIENT = '127.0.0.1';
/** The address pulls by proxy come from: a loopback address too, but not REDIRECTED_CLIENT. */
const PROXIED_CLIENT = '127.0.0.2';

function log(message: string): void {
  process.stderr.write(`[scaleout ${new Date().toISOString().slice(11, 19)}] ${message}\n`);
}

interface Settings {
  reps: number;
  isQuick: boolean;
  pushSizes: number[];
  chunkBytes: number;
  pullBigBytes: number;
  streams: number;
  streamBytes: number;
  wrkSeconds: number;
  wrkConnections: number[];
  /** memstore's RAM cap for the one OSD. */
  osdSizeGiB: number;
  /** metadata.poolSize of each Berth node. */
  poolSize: number;
}

function parseSettings(): { settings: Settings; workBase: string; isKeepData: boolean } {
  const { values } = parseArgs({
    options: {
      reps: { type: 'string' },
      quick: { type: 'boolean', default: false },
      seconds: { type: 'string' },
      'work-dir': { type: 'string', default: os.tmpdir() },
      'keep-data': { type: 'boolean', default: false },
      help: { type: 'boolean', default: false },
    },
  });
  if (values.help) {
    process.stdout.write('usage: node bench/scaleout.ts [--reps N] [--quick] [--seconds N] [--work-dir DIR] [--keep-data]\n');
    process.exit(0);
  }
  const isQuick = values.quick;
  const reps = values.reps === undefined ? (isQuick ? 1 : 3) : Number(values.reps);
  if (!Number.isInteger(reps) || reps < 1 || reps > 50) throw new Error(`--reps must be a whole number from 1 to 50, got ${values.reps}`);
  const wrkSeconds = values.seconds === undefined ? (isQuick ? 2 : 10) : Number(values.seconds);
  if (!Number.isInteger(wrkSeconds) || wrkSeconds < 1 || wrkSeconds > 600) throw new Error(`--seconds must be a whole number from 1 to 600, got ${values.seconds}`);
  const settings: Settings = isQuick
    ? { reps, isQuick, pushSizes: [16 * MiB, 64 * MiB], chunkBytes: 8 * MiB, pullBigBytes: 64 * MiB, streams: 8, streamBytes: 8 * MiB, wrkSeconds, wrkConnections: [1, 16], osdSizeGiB: 4, poolSize: 10 }
    : { reps, isQuick, pushSizes: [16 * MiB, 256 * MiB], chunkBytes: 8 * MiB, pullBigBytes: 256 * MiB, streams: 16, streamBytes: 16 * MiB, wrkSeconds, wrkConnections: [1, 16], osdSizeGiB: 10, poolSize: 10 };
  return { settings, workBase: values['work-dir'], isKeepData: values['keep-data'] };
}

// --- targets --------------------------------------------------------------------------------

type TargetId = 'berth1' | 'berth1lb' | 'berth3' | 'distribution';
const TARGET_ORDER: TargetId[] = ['berth1', 'berth1lb', 'berth3', 'distribution'];
const TARGET_LABELS: Record<TargetId, string> = {
  berth1: 'Berth, 1 node',
  berth1lb: 'Berth, 1 node via nginx',
  berth3: 'Berth, 3 nodes via nginx',
  distribution: 'Distribution',
};

interface Target {
  id: TargetId;
  family: 'berth' | 'distribution';
  baseUrl: string;
  client: RegistryClient;
  /** Where and as whom a pull gets the bytes from the registry itself; absent: not measured. */
  proxy?: { baseUrl: string; sourceAddress?: string };
}

/** The pids whose CPU is accounted, by component. */
interface Pids {
  berthNodes: number[];
  balancer: number;
  distribution: number[];
  ceph: number[];
  postgres: number;
}

type Component = 'berth1' | 'berth2' | 'berth3' | 'nginx' | 'distribution' | 'ceph' | 'postgres' | 'client';
const COMPONENTS: Component[] = ['berth1', 'berth2', 'berth3', 'nginx', 'distribution', 'ceph', 'postgres', 'client'];

/** This process and the tools it ran and reaped (wrk, curl): utime, stime, cutime, cstime. */
function clientCpuSeconds(): number {
  const stat = readFileSync('/proc/self/stat', 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(f[11]) + Number(f[12]) + Number(f[13]) + Number(f[14])) / 100;
}

/**
 * CPU of a process tree, counting children that have exited too (their time is in the root's
 * cutime and cstime once reaped): PostgreSQL's backends come and go with the nodes' pools.
 */
function cpuSeconds(pid: number): number {
  let reaped = 0;
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    reaped = (Number(f[13]) + Number(f[14])) / 100;
  } catch {
    // exited
  }
  return treeCpuSeconds(pid) + reaped;
}

function cpuSnapshot(pids: Pids): Record<Component, number> {
  const sum = (xs: number[]) => xs.reduce((a, p) => a + cpuSeconds(p), 0);
  return {
    berth1: cpuSeconds(pids.berthNodes[0]!),
    berth2: cpuSeconds(pids.berthNodes[1]!),
    berth3: cpuSeconds(pids.berthNodes[2]!),
    nginx: cpuSeconds(pids.balancer),
    distribution: sum(pids.distribution),
    ceph: sum(pids.ceph),
    postgres: cpuSeconds(pids.postgres),
    client: clientCpuSeconds(),
  };
}

// --- scenarios ------------------------------------------------------------------------------

interface Fixtures {
  pullRepo: string;
  bigBlob: BlobFile;
  streamBlobs: BlobFile[];
  manifestRepo: string;
  manifestTag: string;
  manifestImage: Image;
}

/** Fresh blobs for one repetition: each target pushes its own, so none finds its blob stored. */
type PushData = Map<string, BlobFile>;

interface Context {
  settings: Settings;
  fixtures: Fixtures;
  rep: number;
  target: Target;
  pushData: PushData;
  scratchDir: string;
}

interface Metric {
  key: string;
  label: string;
  unit: string;
  better: 'higher' | 'lower';
}

interface Scenario {
  id: string;
  targets: TargetId[];
  metrics: Metric[];
  run(ctx: Context): Promise<Record<string, number>>;
}

function pushKey(scenarioId: string, target: TargetId): string {
  return `${scenarioId}/${target}`;
}

async function timed<T>(fn: () => Promise<T>): Promise<{ result: T; seconds: number }> {
  const t0 = performance.now();
  const result = await fn();
  return { result, seconds: (performance.now() - t0) / 1000 };
}

function scenarios(settings: Settings): Scenario[] {
  const list: Scenario[] = [];
  for (const sizeBytes of settings.pushSizes) {
    const size = sizeLabel(sizeBytes);
    const monolithicId = `push-monolithic-${sizeBytes / MiB}m`;
    const chunkedId = `push-chunked-${sizeBytes / MiB}m`;
    list.push({
      id: monolithicId,
      targets: TARGET_ORDER,
      metrics: [{ key: 'mbps', label: `Blob push, monolithic (POST+PUT ${size})`, unit: 'MB/s', better: 'higher' }],
      async run(ctx) {
        const blob = ctx.pushData.get(pushKey(monolithicId, ctx.target.id))!;
        const { seconds } = await timed(() => ctx.target.client.pushBlobMonolithic(`bench/push-${ctx.target.id}-r${ctx.rep}`, blob));
        return { mbps: blob.sizeBytes / MB / seconds, seconds };
      },
    });
    const chunks = Math.ceil(sizeBytes / settings.chunkBytes);
    list.push({
      id: chunkedId,
      targets: TARGET_ORDER,
      metrics: [{ key: 'mbps', label: `Blob push, chunked (${size} as ${chunks} PATCHes of ${sizeLabel(settings.chunkBytes)})`, unit: 'MB/s', better: 'higher' }],
      async run(ctx) {
        const blob = ctx.pushData.get(pushKey(chunkedId, ctx.target.id))!;
        const { seconds } = await timed(() => ctx.target.client.pushBlobChunked(`bench/push-${ctx.target.id}-r${ctx.rep}`, blob, settings.chunkBytes));
        return { mbps: blob.sizeBytes / MB / seconds, seconds };
      },
    });
  }
  const pull = (id: string, label: string, mode: 'redirect' | 'proxy', blobs: (f: Fixtures) => BlobFile[]): Scenario => ({
    id,
    targets: ['berth1', 'berth3', 'distribution'],
    metrics: [{ key: 'mbps', label, unit: 'MB/s', better: 'higher' }],
    async run(ctx) {
      const list = blobs(ctx.fixtures);
      const via = mode === 'redirect' ? { baseUrl: ctx.target.baseUrl, sourceAddress: REDIRECTED_CLIENT } : ctx.target.proxy!;
      const urls = list.map((b) => `${via.baseUrl}/v2/${ctx.fixtures.pullRepo}/blobs/${b.digest}`);
      // curl checks each transfer took exactly the redirects wanted: 1 to the store, or none.
      const options = { redirects: mode === 'redirect' ? 1 : 0, ...(via.sourceAddress !== undefined ? { sourceAddress: via.sourceAddress } : {}) };
      const { result, seconds } = await timed(() => curlPull(urls, list.map((b) => b.sizeBytes), {}, options));
      return { mbps: result / MB / seconds, seconds };
    },
  });
  const big = sizeLabel(settings.pullBigBytes);
  const streams = `${settings.streams} streams of ${sizeLabel(settings.streamBytes)}`;
  list.push(
    pull('pull-redirect-single', `Blob pull by redirect, 1 stream (${big}, curl -L)`, 'redirect', (f) => [f.bigBlob]),
    pull('pull-redirect-concurrent', `Blob pull by redirect, ${streams} (aggregate)`, 'redirect', (f) => f.streamBlobs),
    pull('pull-proxy-single', `Blob pull by proxy, 1 stream (${big})`, 'proxy', (f) => [f.bigBlob]),
    pull('pull-proxy-concurrent', `Blob pull by proxy, ${streams} (aggregate)`, 'proxy', (f) => f.streamBlobs),
  );
  for (const connections of settings.wrkConnections) {
    const what = `Manifest GET by tag (wrk), ${connections} conn`;
    list.push({
      id: `manifest-get-c${connections}`,
      targets: TARGET_ORDER,
      metrics: [
        { key: 'rps', label: what, unit: 'req/s', better: 'higher' },
        { key: 'p50Ms', label: `${what}, p50`, unit: 'ms', better: 'lower' },
        { key: 'p99Ms', label: `${what}, p99`, unit: 'ms', better: 'lower' },
      ],
      async run(ctx) {
        const url = `${ctx.target.baseUrl}/v2/${ctx.fixtures.manifestRepo}/manifests/${ctx.fixtures.manifestTag}`;
        const r = await runWrk({ url, method: 'GET', headers: { Accept: ACCEPT_MANIFESTS }, connections, durationSeconds: settings.wrkSeconds, scriptDir: ctx.scratchDir });
        if (r.non2xx > 0 || r.socketErrors > 0 || r.requests === 0) {
          throw new Error(`wrk GET ${url}: ${r.requests} requests, ${r.non2xx} non-2xx responses, ${r.socketErrors} socket errors`);
        }
        return { rps: r.requestsPerSecond, p50Ms: r.p50Ms, p99Ms: r.p99Ms, p90Ms: r.p90Ms, requests: r.requests };
      },
    });
  }
  return list;
}

// --- S3 housekeeping ------------------------------------------------------------------------

function s3Client(ceph: CephS3): S3Client {
  return new S3Client({
    endpoint: ceph.endpoint,
    region: ceph.region,
    forcePathStyle: true,
    credentials: { accessKeyId: ceph.accessKeyId, secretAccessKey: ceph.secretAccessKey },
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
  });
}

/** Deletes every object under `prefix`; resolves how many bytes they held. */
async function deletePrefix(s3: S3Client, bucket: string, prefix: string): Promise<number> {
  let bytes = 0;
  let token: string | undefined;
  do {
    const out = await s3.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix, ContinuationToken: token }));
    const objects = out.Contents ?? [];
    for (const o of objects) bytes += o.Size ?? 0;
    if (objects.length > 0) await s3.send(new DeleteObjectsCommand({ Bucket: bucket, Delete: { Objects: objects.map((o) => ({ Key: o.Key! })), Quiet: true } }));
    token = out.IsTruncated ? out.NextContinuationToken : undefined;
  } while (token);
  return bytes;
}

/**
 * Frees the OSD's RAM of the blobs a repetition pushed, behind the registries' backs (they are
 * never read again). radosgw frees the tails of large objects in its garbage collection, a
 * minute or two later.
 */
async function dropPushedBlobs(s3: S3Client, buckets: { berth: string; distribution: string }, digests: { family: 'berth' | 'distribution'; digest: string }[]): Promise<number> {
  let bytes = 0;
  for (const { family, digest } of digests) {
    const hex = digest.slice('sha256:'.length);
    const prefix = family === 'berth' ? `berth/blobs/sha256/${hex.slice(0, 2)}/${hex}` : `distribution/docker/registry/v2/blobs/sha256/${hex.slice(0, 2)}/${hex}/`;
    bytes += await deletePrefix(s3, buckets[family], prefix);
  }
  return bytes;
}

/** Waits (up to a deadline) for the OSD to hold less than `fraction` of its capacity. */
async function waitForRoom(ceph: CephS3, fraction: number, deadlineMs: number): Promise<void> {
  const deadline = Date.now() + deadlineMs;
  for (;;) {
    const { usedBytes, totalBytes } = await cephUsage(ceph);
    if (usedBytes < totalBytes * fraction) {
      log(`Ceph holds ${formatNumber(usedBytes / GiB)} of ${formatNumber(totalBytes / GiB)} GiB`);
      return;
    }
    if (Date.now() > deadline) throw new Error(`Ceph still holds ${formatNumber(usedBytes / GiB)} of ${formatNumber(totalBytes / GiB)} GiB; a fuller OSD would hang writes`);
    log(`Ceph holds ${formatNumber(usedBytes / GiB)} of ${formatNumber(totalBytes / GiB)} GiB; waiting for radosgw's garbage collection`);
    await new Promise((r) => setTimeout(r, 10_000));
  }
}

// --- report ---------------------------------------------------------------------------------

interface Measurement {
  rep: number;
  scenario: string;
  target: TargetId;
  values: Record<string, number>;
  /** CPU seconds each component used during the measurement. */
  cpuSeconds: Record<Component, number>;
  /** Peak RSS of each server process during the measurement, by name. */
  peakRssMiB: Record<string, number>;
  wallSeconds: number;
}

interface Row {
  id: string;
  label: string;
  unit: string;
  better: 'higher' | 'lower';
  samples: Partial<Record<TargetId, number[]>>;
  medians: Partial<Record<TargetId, number>>;
}

function makeRow(id: string, label: string, unit: string, better: 'higher' | 'lower', samples: Partial<Record<TargetId, number[]>>): Row {
  const medians: Partial<Record<TargetId, number>> = {};
  for (const t of TARGET_ORDER) if (samples[t]?.length) medians[t] = median(samples[t]!);
  return { id, label, unit, better, samples, medians };
}

function scenarioRows(list: Scenario[], measurements: Measurement[]): Row[] {
  const rows: Row[] = [];
  for (const s of list) {
    for (const metric of s.metrics) {
      const samples: Partial<Record<TargetId, number[]>> = {};
      for (const m of measurements) {
        const v = m.scenario === s.id ? m.values[metric.key] : undefined;
        if (v !== undefined) (samples[m.target] ??= []).push(v);
      }
      rows.push(makeRow(`${s.id}.${metric.key}`, metric.label, metric.unit, metric.better, samples));
    }
  }
  return rows;
}

function ratio(a: number | undefined, b: number | undefined): string {
  return a === undefined || b === undefined || b === 0 ? 'n/a' : `${(a / b).toFixed(2)}x`;
}

function markdownTable(rows: Row[]): string {
  const out = [
    `| Figure | Unit | Better | ${TARGET_ORDER.map((t) => TARGET_LABELS[t]).join(' | ')} | 3 nodes / 1 node | Berth 1 node / Distribution |`,
    `|---|---|---|${TARGET_ORDER.map(() => '--:').join('|')}|--:|--:|`,
  ];
  for (const r of rows) {
    const m = r.medians;
    out.push(`| ${r.label} | ${r.unit} | ${r.better} | ${TARGET_ORDER.map((t) => formatNumber(m[t])).join(' | ')} | ${ratio(m.berth3, m.berth1)} | ${ratio(m.berth1, m.distribution)} |`);
  }
  return out.join('\n');
}

function samplesList(rows: Row[]): string {
  const out: string[] = [];
  for (const r of rows) {
    const parts = TARGET_ORDER.filter((t) => r.samples[t]?.length).map((t) => `${TARGET_LABELS[t]} ${r.samples[t]!.map((v) => formatNumber(v)).join(' / ')}`);
    if (parts.length > 0) out.push(`- ${r.label} (${r.unit}): ${parts.join('; ')}`);
  }
  return out.join('\n');
}

/** Median CPU seconds per component for each scenario and target: where the time went. */
function cpuTable(list: Scenario[], measurements: Measurement[]): string {
  const out = [
    `| Scenario | Target | wall s | ${COMPONENTS.map((c) => `${c} CPU s`).join(' | ')} | peak RSS MiB |`,
    `|---|---|--:|${COMPONENTS.map(() => '--:').join('|')}|--:|`,
  ];
  // The largest of the target's own processes: node 1, the busiest of three, or a Distribution.
  const own = (target: TargetId, name: string) =>
    target === 'distribution' ? name.startsWith('distribution') : target === 'berth3' ? name.startsWith('berth node') : name === 'berth node 1';
  const ownPeak = (m: Measurement) => Math.max(...Object.entries(m.peakRssMiB).filter(([name]) => own(m.target, name)).map(([, v]) => v));
  for (const s of list) {
    for (const t of TARGET_ORDER) {
      const ms = measurements.filter((m) => m.scenario === s.id && m.target === t);
      if (ms.length === 0) continue;
      const cpu = COMPONENTS.map((c) => formatNumber(median(ms.map((m) => m.cpuSeconds[c]))));
      out.push(`| ${s.id} | ${TARGET_LABELS[t]} | ${formatNumber(median(ms.map((m) => m.wallSeconds)))} | ${cpu.join(' | ')} | ${formatNumber(median(ms.map(ownPeak)))} |`);
    }
  }
  return out.join('\n');
}

// --- machine --------------------------------------------------------------------------------

function machineInfo(): Record<string, string | number> {
  const cpuinfo = readFileSync('/proc/cpuinfo', 'utf8');
  const berthCommit = commandOutput('git', ['-C', repoRoot, 'rev-parse', '--short', 'HEAD']);
  const isDirty = commandOutput('git', ['-C', repoRoot, 'status', '--porcelain', '--untracked-files=no', '--', 'src']) !== '';
  const pgBin = commandOutput('bash', ['-c', 'ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1']);
  return {
    cpus: os.availableParallelism(),
    cpuModel: /^model name\s*:\s*(.*)$/m.exec(cpuinfo)?.[1] ?? 'unknown',
    memoryGiB: Math.round((os.totalmem() / GiB) * 10) / 10,
    kernel: os.release(),
    node: process.version,
    distribution: `Distribution ${/\d+\.\d+\.\d+\S*/.exec(commandOutput(DISTRIBUTION_BIN, ['--version']))?.[0] ?? 'unknown'}`,
    nginx: `nginx ${/nginx\/(\S+)/.exec(commandOutput(NGINX_BIN, ['-v']))?.[1] ?? 'unknown'}`,
    wrk: `wrk ${/wrk (\S+)/.exec(commandOutput(WRK_BIN, ['--version']))?.[1] ?? 'unknown'}`,
    curl: `curl ${/curl (\S+)/.exec(commandOutput(CURL_BIN, ['--version']))?.[1] ?? 'unknown'}`,
    ceph: `Ceph ${/ceph version (\S+)/.exec(commandOutput('radosgw', ['--version']))?.[1] ?? 'unknown'}`,
    postgres: `PostgreSQL ${/(\d+\.\d+)/.exec(commandOutput(path.join(pgBin, 'postgres'), ['--version']))?.[1] ?? 'unknown'}`,
    berth: `${berthCommit}${isDirty ? ' (src/ has uncommitted changes)' : ''}`,
  };
}

// --- main -----------------------------------------------------------------------------------

async function pushImageTo(client: RegistryClient, repo: string, image: Image, tag: string): Promise<void> {
  await mapLimit([...image.layers, image.config], 4, async (blob) => {
    if (await client.blobExists(repo, blob.digest)) return;
    await client.pushBlobMonolithic(repo, { digest: blob.digest, sizeBytes: blob.bytes.length, bytes: blob.bytes });
  });
  await client.putManifest(repo, tag, OCI_MANIFEST, image.manifest);
}

async function main(): Promise<void> {
  const { settings, workBase, isKeepData } = parseSettings();
  const startedAt = new Date();
  const machine = machineInfo();
  const loadBefore = os.loadavg();
  const work = await mkdtemp(path.join(workBase, 'berth-scaleout-'));
  // PostgreSQL runs as its own user, who must reach its directory in here.
  await chmod(work, 0o755);
  const cleanUp = () => {
    if (!isKeepData) rmSync(work, { recursive: true, force: true });
  };
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.on(signal, () => {
      log(`${signal}: stopping everything`);
      // The services' stop scripts read their pid files, so they go before the directory;
      // the exit hook of servers.ts kills the servers, by pid.
      stopServicesNow();
      cleanUp();
      process.exit(130);
    });
  }
  log(`work directory ${work}; ${settings.isQuick ? 'quick' : 'full'} mode, ${settings.reps} repetition(s)`);

  const measurements: Measurement[] = [];
  const failures: { rep: number; scenario: string; target: TargetId; error: string }[] = [];
  const peakRss: Record<string, number[]> = {};
  const list = scenarios(settings);
  let postgres: Postgres | undefined;
  let ceph: CephS3 | undefined;
  let s3: S3Client | undefined;
  const processes: Process[] = [];
  let balancer: Balancer | undefined;
  const targets: Target[] = [];

  try {
    log('starting PostgreSQL and Ceph (memstore)');
    // Both at once, but both settled before going on, so that a failure stops the other too.
    const [pg, cs] = await Promise.allSettled([
      startPostgres(repoRoot, path.join(work, 'postgres')),
      startCeph(repoRoot, path.join(work, 'ceph'), { osdSizeGiB: settings.osdSizeGiB }),
    ]);
    postgres = pg.status === 'fulfilled' ? pg.value : undefined;
    ceph = cs.status === 'fulfilled' ? cs.value : undefined;
    if (!postgres || !ceph) throw pg.status === 'rejected' ? pg.reason : (cs as PromiseRejectedResult).reason;
    log(`PostgreSQL pid ${postgres.pid}; radosgw at ${ceph.endpoint} (pid ${ceph.pids.rgw}), OSD pid ${ceph.pids.osd}, ${settings.osdSizeGiB} GiB memstore`);
    s3 = s3Client(ceph);
    const buckets = { berth: 'berth-bench', distribution: 'distribution-bench' };
    for (const bucket of Object.values(buckets)) await s3.send(new CreateBucketCommand({ Bucket: bucket }));
    const target = (bucket: string): S3Target => ({ endpoint: ceph!.endpoint, region: ceph!.region, accessKeyId: ceph!.accessKeyId, secretAccessKey: ceph!.secretAccessKey, bucket });

    const secretKey = randomBytes(32).toString('base64');
    const nodeOptions = (i: number) => ({
      repoRoot,
      dir: path.join(work, `berth-${i}`),
      metadataUrl: postgres!.url,
      s3: target(buckets.berth),
      prefix: 'berth',
      secretKey,
      redirect: REDIRECTED_CLIENT,
      trustProxy: '127.0.0.1',
      poolSize: settings.poolSize,
    });
    // One node first, so that it alone migrates the empty database; then the other two.
    const first = await startBerthNode(nodeOptions(1));
    const nodes = [first, ...(await Promise.all([startBerthNode(nodeOptions(2)), startBerthNode(nodeOptions(3))]))];
    processes.push(...nodes);
    log(`Berth nodes at ${nodes.map((n) => `${n.baseUrl} (pid ${n.pid})`).join(', ')}`);
    balancer = await startBalancer(path.join(work, 'nginx'), [[nodes[0]!.port], nodes.map((n) => n.port)]);
    log(`nginx balancer (pid ${balancer.pid}): ${balancer.baseUrls[0]} to node 1, ${balancer.baseUrls[1]} to all three`);
    const distOptions = { s3: target(buckets.distribution), rootDirectory: 'distribution' };
    const dist = await startDistributionS3({ ...distOptions, dir: path.join(work, 'distribution'), isRedirectDisabled: false });
    const distProxy = await startDistributionS3({ ...distOptions, dir: path.join(work, 'distribution-proxy'), isRedirectDisabled: true });
    processes.push(dist, distProxy);
    log(`Distribution at ${dist.baseUrl} (pid ${dist.pid}), with redirect disabled at ${distProxy.baseUrl} (pid ${distProxy.pid})`);

    const pids: Pids = {
      berthNodes: nodes.map((n) => n.pid),
      balancer: balancer.pid,
      distribution: [dist.pid, distProxy.pid],
      ceph: [ceph.pids.rgw, ceph.pids.osd, ceph.pids.mon],
      postgres: postgres.pid,
    };
    // Peak RSS is reset before each measurement and read after it.
    const watched: [string, number][] = [
      ...nodes.map((n, i): [string, number] => [`berth node ${i + 1}`, n.pid]),
      ['distribution', dist.pid],
      ['distribution, redirect disabled', distProxy.pid],
      ['radosgw', ceph.pids.rgw],
      ['ceph-osd (memstore)', ceph.pids.osd],
    ];
    const client = (baseUrl: string) => new RegistryClient(baseUrl);
    targets.push(
      { id: 'berth1', family: 'berth', baseUrl: nodes[0]!.baseUrl, client: client(nodes[0]!.baseUrl), proxy: { baseUrl: nodes[0]!.baseUrl, sourceAddress: PROXIED_CLIENT } },
      { id: 'berth1lb', family: 'berth', baseUrl: balancer.baseUrls[0]!, client: client(balancer.baseUrls[0]!) },
      { id: 'berth3', family: 'berth', baseUrl: balancer.baseUrls[1]!, client: client(balancer.baseUrls[1]!), proxy: { baseUrl: balancer.baseUrls[1]!, sourceAddress: PROXIED_CLIENT } },
      { id: 'distribution', family: 'distribution', baseUrl: dist.baseUrl, client: client(dist.baseUrl), proxy: { baseUrl: distProxy.baseUrl } },
    );

    log(`generating ${sizeLabel(settings.pullBigBytes)} and ${settings.streams} x ${sizeLabel(settings.streamBytes)} of random blobs to pull`);
    const fixtures: Fixtures = {
      pullRepo: 'bench/pull',
      bigBlob: await writeRandomFile(path.join(work, 'pull-big.bin'), settings.pullBigBytes),
      streamBlobs: [],
      manifestRepo: 'bench/manifest',
      manifestTag: 'latest',
      manifestImage: await makeImage([4096, 8192, 16384, 32768, 65536]),
    };
    for (let i = 0; i < settings.streams; i++) fixtures.streamBlobs.push(await writeRandomFile(path.join(work, `pull-stream-${i}.bin`), settings.streamBytes));
    // The content goes in once per store: through node 1 for Berth, the redirecting instance for Distribution.
    for (const t of targets.filter((x) => x.id === 'berth1' || x.id === 'distribution')) {
      await mapLimit([fixtures.bigBlob, ...fixtures.streamBlobs], 4, (b) => t.client.pushBlobMonolithic(fixtures.pullRepo, b));
      await pushImageTo(t.client, fixtures.manifestRepo, fixtures.manifestImage, fixtures.manifestTag);
    }
    // Benchmarking an error page would be worthless: every front must serve the manifest.
    for (const baseUrl of [...targets.map((t) => t.baseUrl), distProxy.baseUrl]) {
      const c = new RegistryClient(baseUrl);
      const res = await c.getManifest(fixtures.manifestRepo, fixtures.manifestTag);
      c.close();
      if (!res.body.equals(fixtures.manifestImage.manifest) || !String(res.headers['content-type']).startsWith(OCI_MANIFEST)) {
        throw new Error(`${baseUrl}: GET manifest by tag returned other bytes or content type ${res.headers['content-type']}`);
      }
    }

    for (let rep = 1; rep <= settings.reps; rep++) {
      await waitForRoom(ceph, 0.35, 300_000);
      log(`repetition ${rep}/${settings.reps}: generating fresh blobs to push`);
      const pushData: PushData = new Map();
      const pushed: { family: 'berth' | 'distribution'; digest: string }[] = [];
      for (const s of list.filter((x) => x.id.startsWith('push-'))) {
        const sizeBytes = Number(/-(\d+)m$/.exec(s.id)![1]) * MiB;
        for (const t of targets) {
          const blob = await writeRandomFile(path.join(work, `push-${s.id}-${t.id}-${rep}.bin`), sizeBytes);
          pushData.set(pushKey(s.id, t.id), blob);
          pushed.push({ family: t.family, digest: blob.digest });
        }
      }
      const repPeaks: Record<string, number> = {};
      // The first target of a scenario finds the page cache and the machine a little different:
      // rotate who goes first.
      const order = TARGET_ORDER.map((_, i) => TARGET_ORDER[(i + rep - 1) % TARGET_ORDER.length]!);
      for (const scenario of list) {
        for (const id of order) {
          const t = targets.find((x) => x.id === id)!;
          if (!scenario.targets.includes(id)) continue;
          for (const [, pid] of watched) resetPeakRss(pid);
          const cpu0 = cpuSnapshot(pids);
          const t0 = performance.now();
          try {
            const values = await scenario.run({ settings, fixtures, rep, target: t, pushData, scratchDir: work });
            const wallSeconds = (performance.now() - t0) / 1000;
            const cpu1 = cpuSnapshot(pids);
            const cpuSeconds = Object.fromEntries(COMPONENTS.map((c) => [c, cpu1[c] - cpu0[c]])) as Record<Component, number>;
            const peakRssMiB = Object.fromEntries(watched.map(([name, pid]) => [name, treePeakRssBytes(pid) / MiB]));
            for (const [name, mib] of Object.entries(peakRssMiB)) repPeaks[name] = Math.max(repPeaks[name] ?? 0, mib);
            measurements.push({ rep, scenario: scenario.id, target: id, values, cpuSeconds, peakRssMiB, wallSeconds });
            const shown = scenario.metrics.filter((m) => values[m.key] !== undefined).map((m) => `${formatNumber(values[m.key])} ${m.unit}`);
            log(`rep ${rep} ${scenario.id} ${TARGET_LABELS[id]}: ${shown.join(', ')}`);
          } catch (err) {
            const error = (err as Error).message;
            failures.push({ rep, scenario: scenario.id, target: id, error });
            log(`rep ${rep} ${scenario.id} ${TARGET_LABELS[id]}: FAILED: ${error}`);
          }
        }
      }
      for (const [name, mib] of Object.entries(repPeaks)) (peakRss[name] ??= []).push(mib);
      for (const blob of pushData.values()) await rm(blob.path, { force: true });
      const freed = await dropPushedBlobs(s3, buckets, pushed);
      log(`dropped ${formatNumber(freed / MiB)} MiB of pushed blobs from the buckets`);
    }
  } finally {
    for (const t of targets) t.client.close();
    s3?.destroy();
    const stops: (() => Promise<void>)[] = [...processes.map((p) => p.stop), ...(balancer ? [balancer.stop] : []), ...(postgres ? [postgres.stop] : []), ...(ceph ? [ceph.stop] : [])];
    for (const stop of stops) {
      try {
        await stop();
      } catch (err) {
        log(`stopping: ${(err as Error).message}`);
      }
    }
    const left = [...processes.map((p) => p.pid), balancer?.pid, postgres?.pid, ...(ceph ? Object.values(ceph.pids) : [])].filter((p): p is number => p !== undefined && isAlive(p));
    if (left.length > 0) log(`still running after stop: pids ${left.join(', ')}`);
    cleanUp();
  }

  const rows: Row[] = scenarioRows(list, measurements);
  const finishedAt = new Date();
  const loadAfter = os.loadavg();
  await mkdir(resultsDir, { recursive: true });
  const resultFile = path.join(resultsDir, `${startedAt.toISOString().replace(/[:.]/g, '-')}-scaleout${settings.isQuick ? '-quick' : ''}.json`);
  await writeFile(resultFile, JSON.stringify({
    startedAt: startedAt.toISOString(),
    finishedAt: finishedAt.toISOString(),
    settings,
    machine,
    loadAverage: { before: loadBefore, after: loadAfter },
    targets: TARGET_LABELS,
    rows,
    peakRssMiB: peakRss,
    measurements,
    failures,
  }, null, 2) + '\n');

  const minutes = ((finishedAt.getTime() - startedAt.getTime()) / 60_000).toFixed(1);
  const report = [
    `## Berth scale-out benchmark, ${startedAt.toISOString().slice(0, 16).replace('T', ' ')} UTC (${settings.isQuick ? 'quick' : 'full'}, ${settings.reps} rep${settings.reps > 1 ? 's' : ''}, ${minutes} min)`,
    '',
    `Machine: ${machine.cpus} CPUs (${machine.cpuModel}), ${machine.memoryGiB} GiB, Linux ${machine.kernel}. Node ${machine.node}; ${machine.distribution}; ${machine.nginx}; ${machine.ceph}; ${machine.postgres}; ${machine.wrk}; ${machine.curl}. Berth ${machine.berth}.`,
    `Load average before ${loadBefore.map((x) => x.toFixed(2)).join(' ')}, after ${loadAfter.map((x) => x.toFixed(2)).join(' ')}.`,
    '',
    'Medians over the repetitions. Pulls by proxy: Berth serves the bytes to a client at 127.0.0.2 (its nodes redirect only 127.0.0.1), Distribution from a second instance with redirect disabled on the same bucket.',
    '',
    markdownTable(rows),
    '',
    '### Peak RSS over a repetition (MiB, median)',
    '',
    Object.entries(peakRss).map(([name, xs]) => `- ${name}: ${formatNumber(median(xs))}`).join('\n'),
    '',
    '### Every repetition, in order',
    '',
    samplesList(rows),
    '',
    '### CPU and memory per scenario (medians: seconds of user+system CPU, client = this process, curl and wrk; peak RSS of the busiest Berth node or Distribution instance)',
    '',
    cpuTable(list, measurements),
    '',
    failures.length > 0 ? `### Failures\n\n${failures.map((f) => `- rep ${f.rep} ${f.scenario} ${TARGET_LABELS[f.target]}: ${f.error}`).join('\n')}\n` : '',
    `Results: ${path.relative(repoRoot, resultFile)}`,
    '',
  ].join('\n');
  process.stdout.write(report);
  if (failures.length > 0) process.exitCode = 1;
}

await main();
