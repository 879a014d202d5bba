/**
 * Berth with a realistic amount of metadata (issue 11, "Scale"): 100,000 manifests in 1,000
 * repositories with 1,000,000 blob references, written straight into the metadata store, then
 * the real server (`node src/main.ts`) started on it and measured: manifest GET by tag and HEAD
 * by digest against a store with a few images only, catalog and tag-list pagination,
 * DescribeImages over the 10,000-image repository, a lifecycle policy preview over it, the
 * storage-metrics pass and one garbage collection, each background pass with the server's
 * event-loop delay and the latency of a trickle of requests while it runs. Every figure is
 * taken at two sizes (10 % and 100 %) so that growth can be checked to be no worse than
 * linear. See docs/benchmarks.md, "Scale: 100,000 manifests".
 *
 *   node bench/scale.ts [--store sqlite|postgres|both] [--scale small|full|both] [--seconds N]
 *                       [--connections N] [--work-dir DIR] [--keep-data]
 *
 * Progress goes to stderr, the markdown report to stdout, everything measured to
 * bench/results/<time>-scale.json.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync, rmSync } from 'node:fs';
import { chmod, mkdir, mkdtemp, writeFile } from 'node:fs/promises';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { DatabaseSync } from 'node:sqlite';
import { parseArgs } from 'node:util';
import { DescribeImagesCommand, ECRClient, GetLifecyclePolicyPreviewCommand, StartLifecyclePolicyPreviewCommand } from '@aws-sdk/client-ecr';
import pg from 'pg';
import { openMetaStore } from '../src/store/open.ts';
import type { LoadFigures, LoadSettings } from './lib/http-load.ts';
import type { LoopDelay } from './lib/loop-probe.ts';
import { formatNumber } from './lib/report.ts';
import { loadPostgres, loadSqlite, scaleShape, type ScaleIndex } from './lib/scale-data.ts';
import { BERTH_BENCH_ADMIN, freePort, waitForHttp } from './lib/servers.ts';
import { startPostgres, stopServicesNow, type Postgres } from './lib/services.ts';

const repoRoot = path.resolve(import.meta.dirname, '..');
const resultsDir = path.join(import.meta.dirname, 'results');
const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
const authorization = `Basic ${Buffer.from(`${BERTH_BENCH_ADMIN.accessKeyId}:${BERTH_BENCH_ADMIN.secretAccessKey}`).toString('base64')}`;

type StoreName = 'sqlite' | 'postgres';
type SizeName = 'empty' | 'small' | 'full';
const SCALES: Record<SizeName, number> = { empty: 0.0002, small: 0.1, full: 1 };

function log(message: string): void {
  process.stderr.write(`[scale ${new Date().toISOString().slice(11, 19)}] ${message}\n`);
}

interface Settings {
  stores: StoreName[];
  sizes: SizeName[];
  loadSeconds: number;
  connections: number;
  workBase: string;
  isKeepData: boolean;
}

function parseSettings(): Settings {
  const { values } = parseArgs({
    options: {
      store: { type: 'string', default: 'both' },
      scale: { type: 'string', default: 'both' },
      seconds: { type: 'string', default: '8' },
      connections: { type: 'string', default: '16' },
      'work-dir': { type: 'string', default: os.tmpdir() },
      'keep-data': { type: 'boolean', default: false },
      help: { type: 'boolean', default: false },
    },
  });
  if (values.help) {
    process.stdout.write('usage: node bench/scale.ts [--store sqlite|postgres|both] [--scale small|full|both] [--seconds N] [--connections N] [--work-dir DIR] [--keep-data]\n');
    process.exit(0);
  }
  const stores: StoreName[] = values.store === 'both' ? ['sqlite', 'postgres'] : [values.store as StoreName];
  if (!stores.every((s) => s === 'sqlite' || s === 'postgres')) throw new Error(`--store must be sqlite, postgres or both, got ${values.store}`);
  const sizes: SizeName[] = values.scale === 'both' ? ['small', 'full'] : [values.scale as SizeName];
  if (!sizes.every((s) => s === 'small' || s === 'full')) throw new Error(`--scale must be small, full or both, got ${values.scale}`);
  const loadSeconds = Number(values.seconds);
  const connections = Number(values.connections);
  if (!(loadSeconds > 0) || !Number.isInteger(connections) || connections < 1) throw new Error('--seconds and --connections must be positive');
  return { stores, sizes: ['empty', ...sizes], loadSeconds, connections, workBase: values['work-dir'], isKeepData: values['keep-data'] };
}

// --- the server under test ---------------------------------------------------------------------

interface Server {
  baseUrl: string;
  metricsUrl: string;
  child: ChildProcess;
  /** Starts a window of the event-loop probe. */
  resetLoop(): Promise<void>;
  /** The figures of the window since resetLoop(). */
  readLoop(): Promise<LoopDelay>;
  stop(): Promise<void>;
}

const children = new Set<ChildProcess>();
process.on('exit', () => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
});

/** `node --import bench/lib/loop-probe.ts src/main.ts` on the given stores, with metrics on a port of its own. */
async function startServer(dir: string, metadataUrl: string): Promise<Server> {
  await mkdir(path.join(dir, 'data'), { recursive: true });
  const port = await freePort();
  const metricsPort = await freePort();
  const child = spawn(process.execPath, ['--import', './bench/lib/loop-probe.ts', 'src/main.ts', '--listen', `127.0.0.1:${port}`, '--data-dir', path.join(dir, 'data')], {
    cwd: repoRoot,
    stdio: ['ignore', 'ignore', 'pipe', 'ipc'],
    env: {
      ...process.env,
      BERTH_LOG_LEVEL: 'warn',
      BERTH_METADATA_URL: metadataUrl,
      BERTH_BLOB_URL: `file:${path.join(dir, 'blobs')}`,
      BERTH_METRICS_LISTEN: `127.0.0.1:${metricsPort}`,
      BERTH_BOOTSTRAP_ACCOUNT_ID: BERTH_BENCH_ADMIN.accountId,
      BERTH_BOOTSTRAP_ACCESS_KEY_ID: BERTH_BENCH_ADMIN.accessKeyId,
      BERTH_BOOTSTRAP_SECRET_ACCESS_KEY: BERTH_BENCH_ADMIN.secretAccessKey,
    },
  });
  children.add(child);
  let stderr = '';
  child.stderr!.on('data', (c: Buffer) => (stderr = (stderr + c.toString()).slice(-4000)));
  child.once('exit', () => children.delete(child));
  const baseUrl = `http://127.0.0.1:${port}`;
  try {
    await waitForHttp(`${baseUrl}/healthz`, child, 'Berth');
  } catch (err) {
    throw new Error(`${(err as Error).message}\n${stderr}`);
  }
  const ask = <T>(message: string) =>
    new Promise<T>((resolve, reject) => {
      const onMessage = (m: { type: string; figures?: T }) => {
        if (m.type !== message) return;
        child.off('message', onMessage);
        resolve(m.figures as T);
      };
      child.on('message', onMessage);
      if (!child.send(message)) reject(new Error('the server has no IPC channel'));
    });
  return {
    baseUrl,
    metricsUrl: `http://127.0.0.1:${metricsPort}/metrics`,
    child,
    resetLoop: () => ask<void>('reset'),
    readLoop: () => ask<LoopDelay>('read'),
    stop: async () => {
      if (child.exitCode !== null || child.signalCode !== null) return;
      const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 20_000);
      await exited;
      clearTimeout(timer);
    },
  };
}

// --- clients -------------------------------------------------------------------------------------

const agent = new http.Agent({ keepAlive: true, maxSockets: 4 });

function request(url: string, method = 'GET', headers: Record<string, string> = {}): Promise<{ status: number; headers: http.IncomingHttpHeaders; body: Buffer; ms: number }> {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const req = http.request(url, { method, agent, headers: { authorization, ...headers } }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.once('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks), ms: performance.now() - t0 }));
      res.once('error', reject);
    });
    req.once('error', reject);
    req.end();
  });
}

/** Runs bench/lib/http-load.ts in a process of its own; its settings go through a file (20,000 paths are too long for argv). */
async function runLoad(settings: LoadSettings, scratchDir: string): Promise<LoadFigures> {
  const file = path.join(scratchDir, 'load-settings.json');
  await writeFile(file, JSON.stringify(settings));
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['bench/lib/http-load.ts', file], { cwd: repoRoot, stdio: ['ignore', 'pipe', 'pipe'] });
    children.add(child);
    let out = '';
    let err = '';
    child.stdout.on('data', (c: Buffer) => (out += c.toString()));
    child.stderr.on('data', (c: Buffer) => (err += c.toString()));
    child.once('exit', (code) => {
      children.delete(child);
      if (code !== 0) reject(new Error(`http-load exited ${code}: ${err}`));
      else resolve(JSON.parse(out) as LoadFigures);
    });
  });
}

function ecrClient(baseUrl: string): ECRClient {
  return new ECRClient({
    region: 'us-east-1',
    endpoint: baseUrl,
    credentials: { accessKeyId: BERTH_BENCH_ADMIN.accessKeyId, secretAccessKey: BERTH_BENCH_ADMIN.secretAccessKey },
    maxAttempts: 1,
  });
}

function percentile(values: number[], p: number): number {
  if (values.length === 0) return 0;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

/**
 * While `pass` runs: HEADs of one manifest by digest, one at a time with 10 ms between them (what
 * a user's pulls see meanwhile), and the server's event-loop delay.
 */
async function duringPass<T>(server: Server, probePath: string, pass: () => Promise<T>): Promise<{ result: T; seconds: number; loop: LoopDelay; trickle: { requests: number; p99Ms: number; maxMs: number } }> {
  await server.resetLoop();
  let running = true;
  const latencies: number[] = [];
  const trickle = (async () => {
    while (running) {
      const r = await request(`${server.baseUrl}${probePath}`, 'HEAD', { accept: OCI_MANIFEST });
      if (r.status !== 200) throw new Error(`trickle HEAD answered ${r.status}`);
      latencies.push(r.ms);
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
  })();
  const t0 = performance.now();
  let result: T;
  try {
    result = await pass();
  } finally {
    running = false;
    await trickle;
  }
  const seconds = (performance.now() - t0) / 1000;
  const loop = await server.readLoop();
  return { result, seconds, loop, trickle: { requests: latencies.length, p99Ms: percentile(latencies, 99), maxMs: Math.max(0, ...latencies) } };
}

// --- direct access to the jobs table (to bring a job forward and see it finish) ---------------

interface JobsAccess {
  /** Makes the job due now; resolves its last_finished_at before. */
  hurry(name: string): Promise<number | null>;
  get(name: string): Promise<{ lastStartedAtMs: number | null; lastFinishedAtMs: number | null; lastError: string | null }>;
  counts(): Promise<{ manifests: number; blobs: number; references: number }>;
  close(): Promise<void>;
}

function sqliteJobs(file: string): JobsAccess {
  const db = new DatabaseSync(file);
  db.exec('PRAGMA busy_timeout = 10000;');
  const get = (name: string) => {
    const r = db.prepare('select last_started_at, last_finished_at, last_error from jobs where name = ?').get(name) as Record<string, number | string | null>;
    return { lastStartedAtMs: r['last_started_at'] as number | null, lastFinishedAtMs: r['last_finished_at'] as number | null, lastError: r['last_error'] as string | null };
  };
  return {
    async hurry(name) {
      const before = get(name).lastFinishedAtMs;
      db.prepare('update jobs set next_run_at = ? where name = ?').run(Date.now(), name);
      return before;
    },
    get: async (name) => get(name),
    async counts() {
      const n = (t: string) => Number((db.prepare(`select count(*) as n from ${t}`).get() as { n: number }).n);
      return { manifests: n('manifests'), blobs: n('blobs'), references: n('manifest_references') };
    },
    close: async () => db.close(),
  };
}

function postgresJobs(url: string): JobsAccess {
  const pool = new pg.Pool({ connectionString: url, max: 1 });
  const get = async (name: string) => {
    const { rows } = await pool.query('select last_started_at, last_finished_at, last_error from jobs where name = $1', [name]);
    const r = rows[0] as Record<string, string | null>;
    const n = (v: string | null) => (v === null ? null : Number(v));
    return { lastStartedAtMs: n(r['last_started_at']!), lastFinishedAtMs: n(r['last_finished_at']!), lastError: r['last_error'] ?? null };
  };
  return {
    async hurry(name) {
      const before = (await get(name)).lastFinishedAtMs;
      await pool.query('update jobs set next_run_at = $1 where name = $2', [Date.now(), name]);
      return before;
    },
    get,
    async counts() {
      const n = async (t: string) => Number((await pool.query(`select count(*) as n from ${t}`)).rows[0].n);
      return { manifests: await n('manifests'), blobs: await n('blobs'), references: await n('manifest_references') };
    },
    close: () => pool.end(),
  };
}

// --- one run: a store of one size ---------------------------------------------------------------

interface PassFigures {
  seconds: number;
  loopMaxStallMs: number;
  loopP99StallMs: number;
  trickleMaxMs: number;
  trickleP99Ms: number;
  [extra: string]: number | string;
}

interface RunResult {
  store: StoreName;
  size: SizeName;
  shape: ScaleIndex['shape'];
  counts: { blobs: number; links: number; tags: number; untaggedManifests: number; orphanBlobs: number };
  loadSeconds: number;
  startSeconds: number;
  requests: Record<string, LoadFigures>;
  passes: Record<string, PassFigures>;
}

function pick<T>(items: readonly T[], n: number, seed: number): T[] {
  if (items.length <= n) return [...items];
  const out: T[] = [];
  let x = seed;
  for (let i = 0; i < n; i++) {
    x = (x * 1103515245 + 12345) % 2147483648;
    out.push(items[x % items.length]!);
  }
  return out;
}

const LIFECYCLE_POLICY = JSON.stringify({
  rules: [
    { rulePriority: 1, description: 'untagged after a day', selection: { tagStatus: 'untagged', countType: 'sinceImagePushed', countUnit: 'days', countNumber: 1 }, action: { type: 'expire' } },
    { rulePriority: 2, description: 'keep the newest builds', selection: { tagStatus: 'tagged', tagPrefixList: ['build-'], countType: 'imageCountMoreThan', countNumber: 500 }, action: { type: 'expire' } },
    { rulePriority: 3, description: 'anything else after 300 days', selection: { tagStatus: 'any', countType: 'sinceImagePushed', countUnit: 'days', countNumber: 300 }, action: { type: 'expire' } },
  ],
});

async function runOne(settings: Settings, store: StoreName, size: SizeName, work: string, postgres: () => Promise<Postgres>): Promise<RunResult> {
  const dir = path.join(work, `${store}-${size}`);
  await mkdir(dir, { recursive: true });
  let metadataUrl: string;
  let jobs: () => JobsAccess;
  if (store === 'sqlite') {
    const file = path.join(dir, 'metadata.db');
    metadataUrl = `sqlite:${file}`;
    jobs = () => sqliteJobs(file);
  } else {
    const pgServer = await postgres();
    const schema = `scale_${size}`;
    const admin = new pg.Client({ connectionString: pgServer.url });
    await admin.connect();
    await admin.query(`create schema ${schema}`);
    await admin.end();
    const url = new URL(pgServer.url);
    url.searchParams.set('options', `-c search_path=${schema}`);
    metadataUrl = url.toString();
    jobs = () => postgresJobs(metadataUrl);
  }
  // Migrations first, by the store itself; then the rows, straight into its tables.
  await (await openMetaStore(metadataUrl)).close();
  const nowMs = Date.now();
  log(`${store} ${size}: loading ${scaleShape(SCALES[size]).manifests.toLocaleString('en-US')} manifests`);
  const t0 = performance.now();
  const index = store === 'sqlite'
    ? await loadSqlite(metadataUrl.slice('sqlite:'.length), SCALES[size], BERTH_BENCH_ADMIN.accountId, nowMs)
    : await loadPostgres(metadataUrl, SCALES[size], BERTH_BENCH_ADMIN.accountId, nowMs);
  const loadSeconds = (performance.now() - t0) / 1000;
  log(`${store} ${size}: loaded in ${loadSeconds.toFixed(1)} s (${index.blobs.toLocaleString('en-US')} blobs, ${index.links.toLocaleString('en-US')} links, ${index.tags.toLocaleString('en-US')} tags)`);

  const t1 = performance.now();
  const server = await startServer(dir, metadataUrl);
  const startSeconds = (performance.now() - t1) / 1000;
  const result: RunResult = {
    store,
    size,
    shape: index.shape,
    counts: { blobs: index.blobs, links: index.links, tags: index.tags, untaggedManifests: index.untaggedManifests, orphanBlobs: index.orphanBlobs },
    loadSeconds,
    startSeconds,
    requests: {},
    passes: {},
  };
  const jobAccess = jobs();
  try {
    const [probeRepo, , probeDigest] = index.images.find(([repo]) => repo !== index.shape.bigRepository) ?? index.images[0]!;
    const probePath = `/v2/${probeRepo}/manifests/${probeDigest}`;
    const check = await request(`${server.baseUrl}${probePath}`, 'GET', { accept: OCI_MANIFEST });
    if (check.status !== 200) throw new Error(`GET ${probePath} answered ${check.status}: ${check.body.toString()}`);

    // Requests: the same 10 images on every store ("hot"), and 20,000 drawn from all ("spread").
    const hot = index.images.filter(([repo]) => repo !== index.shape.bigRepository).slice(0, 10);
    const spread = pick(index.images, 20_000, 7);
    const load = async (name: string, method: 'GET' | 'HEAD', paths: string[]) => {
      const figures = await runLoad({
        baseUrl: server.baseUrl,
        method,
        paths,
        headers: { authorization, accept: OCI_MANIFEST },
        connections: settings.connections,
        durationMs: settings.loadSeconds * 1000,
        warmupMs: 1000,
      }, dir);
      result.requests[name] = figures;
      log(`${store} ${size}: ${name}: ${formatNumber(figures.requestsPerSecond)} req/s, p99 ${formatNumber(figures.p99Ms)} ms${Object.keys(figures.statuses).length > 0 || figures.errors > 0 ? `, statuses ${JSON.stringify(figures.statuses)}, errors ${figures.errors}` : ''}`);
    };
    await load('get-tag-hot', 'GET', hot.map(([repo, tag]) => `/v2/${repo}/manifests/${tag}`));
    await load('head-digest-hot', 'HEAD', hot.map(([repo, , digest]) => `/v2/${repo}/manifests/${digest}`));
    await load('get-tag-spread', 'GET', spread.map(([repo, tag]) => `/v2/${repo}/manifests/${tag}`));
    await load('head-digest-spread', 'HEAD', spread.map(([repo, , digest]) => `/v2/${repo}/manifests/${digest}`));

    const record = (name: string, p: { seconds: number; loop: LoopDelay; trickle: { p99Ms: number; maxMs: number } }, extra: Record<string, number | string> = {}) => {
      result.passes[name] = { seconds: p.seconds, loopMaxStallMs: p.loop.maxStallMs, loopP99StallMs: p.loop.p99StallMs, trickleMaxMs: p.trickle.maxMs, trickleP99Ms: p.trickle.p99Ms, ...extra };
      log(`${store} ${size}: ${name}: ${p.seconds.toFixed(2)} s, event loop stalled up to ${formatNumber(p.loop.maxStallMs)} ms, trickle max ${formatNumber(p.trickle.maxMs)} ms ${JSON.stringify(extra)}`);
    };

    // Catalog, all pages of 100 with the Link header.
    const walk = async (first: string) => {
      let next: string | undefined = first;
      let pages = 0;
      let items = 0;
      const pageMs: number[] = [];
      while (next) {
        const r = await request(`${server.baseUrl}${next}`);
        if (r.status !== 200) throw new Error(`GET ${next} answered ${r.status}`);
        const body = JSON.parse(r.body.toString()) as { repositories?: string[]; tags?: string[] };
        items += (body.repositories ?? body.tags ?? []).length;
        pages++;
        pageMs.push(r.ms);
        next = /<([^>]+)>;\s*rel="next"/.exec(String(r.headers['link'] ?? ''))?.[1];
      }
      return { pages, items, pageP99Ms: percentile(pageMs, 99) };
    };
    const catalog = await duringPass(server, probePath, () => walk('/v2/_catalog?n=100'));
    record('catalog', catalog, catalog.result);
    const bigRepo = index.shape.bigRepository;
    const tags = await duringPass(server, probePath, () => walk(`/v2/${bigRepo}/tags/list?n=100`));
    record('tags-list', tags, tags.result);

    // DescribeImages over the big repository, all pages of 1,000.
    const ecr = ecrClient(server.baseUrl);
    const describe = await duringPass(server, probePath, async () => {
      let nextToken: string | undefined;
      let images = 0;
      let pages = 0;
      do {
        const out = await ecr.send(new DescribeImagesCommand({ repositoryName: bigRepo, maxResults: 1000, nextToken }));
        images += out.imageDetails?.length ?? 0;
        pages++;
        nextToken = out.nextToken;
      } while (nextToken);
      return { images, pages };
    });
    record('describe-images', describe, describe.result);

    // A lifecycle policy preview over it, polled until complete.
    const lifecycle = await duringPass(server, probePath, async () => {
      await ecr.send(new StartLifecyclePolicyPreviewCommand({ repositoryName: bigRepo, lifecyclePolicyText: LIFECYCLE_POLICY }));
      for (;;) {
        const out = await ecr.send(new GetLifecyclePolicyPreviewCommand({ repositoryName: bigRepo, maxResults: 1 }));
        if (out.status === 'COMPLETE') return { expiring: out.summary?.expiringImageTotalCount ?? 0 };
        if (out.status !== 'IN_PROGRESS') throw new Error(`lifecycle preview ${out.status}`);
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
    });
    record('lifecycle-preview', lifecycle, lifecycle.result);
    ecr.destroy();

    // The storage-metrics pass: the first scrape computes it (later ones within 30 s are cached).
    const metrics = await duringPass(server, probePath, async () => {
      const r = await request(server.metricsUrl);
      if (r.status !== 200) throw new Error(`metrics answered ${r.status}`);
      return { lines: r.body.toString().split('\n').length };
    });
    record('metrics', metrics, metrics.result);

    // One garbage collection, run by the server's own scheduler (brought forward in `jobs`).
    const before = await jobAccess.counts();
    const gc = await duringPass(server, probePath, async () => {
      const finishedBefore = await jobAccess.hurry('gc');
      for (;;) {
        const j = await jobAccess.get('gc');
        if (j.lastFinishedAtMs !== null && j.lastFinishedAtMs !== finishedBefore) {
          if (j.lastError) throw new Error(`gc failed: ${j.lastError}`);
          return { runSeconds: (j.lastFinishedAtMs - j.lastStartedAtMs!) / 1000 };
        }
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
    });
    const after = await jobAccess.counts();
    record('gc', gc, { ...gc.result, manifestsRemoved: before.manifests - after.manifests, blobsRemoved: before.blobs - after.blobs });
  } finally {
    await jobAccess.close();
    await server.stop();
  }
  return result;
}

// --- report --------------------------------------------------------------------------------------

function report(runs: RunResult[], settings: Settings, machine: Record<string, string | number>, startedAt: Date): string {
  const out: string[] = [];
  const of = (store: StoreName, size: SizeName) => runs.find((r) => r.store === store && r.size === size);
  const pct = (a: number, b: number) => `${a >= b ? '+' : ''}${(((a - b) / b) * 100).toFixed(0)} %`;
  out.push(`## Scale benchmark, ${startedAt.toISOString().slice(0, 16).replace('T', ' ')} UTC`, '');
  out.push(`Machine: ${machine['cpus']} CPUs (${machine['cpuModel']}), ${machine['memoryGiB']} GiB, Node ${machine['node']}. Load runs: ${settings.loadSeconds} s after 1 s warm-up, ${settings.connections} connections.`, '');
  for (const store of settings.stores) {
    const sizes = settings.sizes.filter((s) => of(store, s));
    out.push(`### ${store === 'sqlite' ? 'SQLite' : 'PostgreSQL'}`, '');
    out.push('| Size | Repositories | Manifests | References | Blobs | Load s | Start s |', '|---|--:|--:|--:|--:|--:|--:|');
    for (const s of sizes) {
      const r = of(store, s)!;
      out.push(`| ${s} | ${r.shape.repositories.toLocaleString('en-US')} | ${r.shape.manifests.toLocaleString('en-US')} | ${r.shape.references.toLocaleString('en-US')} | ${r.counts.blobs.toLocaleString('en-US')} | ${r.loadSeconds.toFixed(1)} | ${r.startSeconds.toFixed(1)} |`);
    }
    out.push('');
    out.push(`| Requests | ${sizes.map((s) => `${s} req/s | ${s} p99 ms`).join(' | ')} | full vs empty req/s | full vs empty p99 |`);
    out.push(`|---|${sizes.map(() => '--:|--:').join('|')}|--:|--:|`);
    const empty = of(store, 'empty');
    const full = of(store, 'full') ?? of(store, 'small');
    for (const name of Object.keys(empty?.requests ?? {})) {
      const cells = sizes.map((s) => {
        const f = of(store, s)!.requests[name]!;
        return `${formatNumber(f.requestsPerSecond)} | ${formatNumber(f.p99Ms)}`;
      });
      const e = empty!.requests[name]!;
      const f = full!.requests[name]!;
      out.push(`| ${name} | ${cells.join(' | ')} | ${pct(f.requestsPerSecond, e.requestsPerSecond)} | ${pct(f.p99Ms, e.p99Ms)} |`);
    }
    out.push('');
    const small = of(store, 'small');
    const big = of(store, 'full');
    out.push('| Operation | Size | Seconds | Loop stall max ms | Trickle HEAD max ms | Details |', '|---|---|--:|--:|--:|---|');
    for (const name of Object.keys(empty?.passes ?? {})) {
      for (const s of sizes) {
        const p = of(store, s)!.passes[name];
        if (!p) continue;
        const { seconds, loopMaxStallMs, loopP99StallMs: _p, trickleMaxMs, trickleP99Ms: _t, ...extra } = p;
        out.push(`| ${name} | ${s} | ${seconds.toFixed(3)} | ${formatNumber(loopMaxStallMs)} | ${formatNumber(trickleMaxMs)} | ${Object.entries(extra).map(([k, v]) => `${k} ${typeof v === 'number' ? formatNumber(v) : v}`).join(', ')} |`);
      }
    }
    out.push('');
    if (small && big) {
      out.push(`Growth from ${small.shape.manifests.toLocaleString('en-US')} to ${big.shape.manifests.toLocaleString('en-US')} manifests (x${(big.shape.manifests / small.shape.manifests).toFixed(0)}): time ratio per operation (linear = ${(big.shape.manifests / small.shape.manifests).toFixed(0)}, constant-size work = 1):`, '');
      out.push('| Operation | Ratio |', '|---|--:|');
      for (const name of Object.keys(big.passes)) out.push(`| ${name} | ${(big.passes[name]!.seconds / small.passes[name]!.seconds).toFixed(2)} |`);
      for (const name of Object.keys(big.requests)) out.push(`| ${name} p99 | ${(big.requests[name]!.p99Ms / small.requests[name]!.p99Ms).toFixed(2)} |`);
      out.push('');
    }
  }
  return out.join('\n');
}

async function main(): Promise<void> {
  const settings = parseSettings();
  const startedAt = new Date();
  const work = await mkdtemp(path.join(settings.workBase, 'berth-scale-'));
  // PostgreSQL runs as its own user when the bench runs as root: it must reach its directory.
  await chmod(work, 0o755);
  let pgServer: Promise<Postgres> | undefined;
  const postgres = () => (pgServer ??= startPostgres(repoRoot, path.join(work, 'postgres')));
  const cleanUp = () => {
    stopServicesNow();
    if (!settings.isKeepData) rmSync(work, { recursive: true, force: true });
  };
  process.on('SIGINT', () => {
    log('interrupted');
    cleanUp();
    process.exit(130);
  });
  const cpuinfo = readFileSync('/proc/cpuinfo', 'utf8');
  const machine = {
    cpus: os.availableParallelism(),
    cpuModel: /^model name\s*:\s*(.*)$/m.exec(cpuinfo)?.[1] ?? 'unknown',
    memoryGiB: Math.round((os.totalmem() / 2 ** 30) * 10) / 10,
    node: process.version,
  };
  log(`work directory ${work}; stores ${settings.stores.join(', ')}; sizes ${settings.sizes.join(', ')}`);
  const runs: RunResult[] = [];
  try {
    for (const store of settings.stores) {
      for (const size of settings.sizes) runs.push(await runOne(settings, store, size, work, postgres));
    }
  } finally {
    agent.destroy();
    if (pgServer) await (await pgServer).stop();
    cleanUp();
  }
  await mkdir(resultsDir, { recursive: true });
  const resultFile = path.join(resultsDir, `${startedAt.toISOString().replace(/[:.]/g, '-')}-scale.json`);
  await writeFile(resultFile, JSON.stringify({ startedAt: startedAt.toISOString(), finishedAt: new Date().toISOString(), settings, machine, runs }, null, 2) + '\n');
  process.stdout.write(report(runs, settings, machine, startedAt) + '\n');
  log(`results in ${resultFile}`);
}

await main();
