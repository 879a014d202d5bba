/**
 * What webhooks cost the push path, and how long a delivery takes (issue 12). Two configurations
 * of the real server (embedded stores, bench/lib/servers.ts), each started fresh for each of its
 * measurements, the order alternating from one repetition to the next:
 *
 * - **none**: no webhook subscription. The outbox is still written with every push (it always
 *   is); only the dispatcher has nothing to do.
 * - **subscribed**: three subscriptions added with `bin/berth events add` before the start, every
 *   event (no pattern): two healthy receivers, which answer 204 at once, and one dead URL (a port
 *   on 127.0.0.1 nothing listens on, so each attempt is refused), with `--max-attempts 3` and the
 *   retry delays shortened (BERTH_EVENTS_RETRY_BASE_MS, BERTH_EVENTS_RETRY_MAX_MS, set for both
 *   configurations) so that it dead-letters steadily instead of waiting out ten minutes of backoff.
 *
 * Throughput: `--clients` concurrent clients push small images (a unique 1 KiB layer by one POST
 * with ?digest=, then the manifest PUT under a new tag; the config blob is pushed once per
 * repository beforehand) for `--seconds` after a warm-up; pushes/s per configuration, medians,
 * and the ratio against the target (within 5 %).
 * Latency: one more server, subscribed, pushed to at a steady `--rate` for `--latency-seconds`;
 * for each event a healthy receiver gets, the time from the push's 201 to its receipt.
 *
 * The receivers run in a child process (this file with --receiver), so that answering
 * deliveries does not take CPU from the clients in the subscribed runs only. Times on both sides
 * are performance.timeOrigin + performance.now(): epoch milliseconds, comparable across processes.
 *
 *   node bench/events.ts [--reps N] [--seconds N] [--quick] [--clients N] [--rate N]
 *                        [--latency-seconds N] [--poll-interval-ms N] [--work-dir DIR] [--keep-data]
 *
 * Progress goes to stderr; the markdown report to stdout; everything measured to
 * bench/results/<time>-events.json. See docs/benchmarks.md, "Events and webhooks".
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdir, writeFile } from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { treeCpuSeconds } from './lib/proc.ts';
import { RegistryClient } from './lib/registry-client.ts';
import { formatNumber, median, percentile } from './lib/report.ts';
import { freePort, startBerth, type BenchServer } from './lib/servers.ts';
import { benchWorkDir } from './lib/work-dir.ts';

const repoRoot = path.resolve(import.meta.dirname, '..');
const resultsDir = path.join(import.meta.dirname, 'results');
const berthBin = path.join(repoRoot, 'bin', 'berth');

const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
const OCI_CONFIG = 'application/vnd.oci.image.config.v1+json';
const OCI_LAYER = 'application/vnd.oci.image.layer.v1.tar+gzip';
const LAYER_BYTES = 1024;
/** The dead subscription gives up after this many attempts, each refused at once. */
const DEAD_MAX_ATTEMPTS = 3;
/** Retry delays for every subscription; only the dead one ever retries. */
const RETRY_BASE_MS = 20;
const RETRY_MAX_MS = 100;
/** Repositories the latency phase spreads its pushes over. */
const LATENCY_REPOSITORIES = 4;
/** How long the latency phase waits after its last push for the deliveries still on their way. */
const DRAIN_DEADLINE_MS = 30_000;

type ConfigName = 'none' | 'subscribed';
const CONFIG_LABELS: Record<ConfigName, string> = { none: 'No subscriptions', subscribed: '3 subscriptions (1 dead)' };

function log(message: string): void {
  process.stderr.write(`[events ${new Date().toISOString().slice(11, 19)}] ${message}\n`);
}

/** Epoch milliseconds with sub-millisecond resolution, the same clock in every process. */
function nowMs(): number {
  return performance.timeOrigin + performance.now();
}

// --- receivers (child process) ------------------------------------------------------------------

/** One delivery a receiver took, as it reports it to the bench. */
interface Receipt {
  receiver: number;
  atMs: number;
  id: string;
  detailType: string;
  repository: string;
  tag: string;
}

type ReceiverMessage = { type: 'ready'; urls: string[] } | { type: 'receipts'; items: Receipt[] } | { type: 'flushed' };

/**
 * The receivers' side: `count` node:http servers on 127.0.0.1 that answer 204 to anything and
 * report what they got over IPC every 50 ms (one message per delivery would cost the bench more
 * than the deliveries cost the receivers).
 */
async function serveReceivers(count: number): Promise<void> {
  let pending: Receipt[] = [];
  const servers: http.Server[] = [];
  for (let i = 0; i < count; i++) {
    const server = http.createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.once('end', () => {
        const atMs = nowMs();
        let receipt: Receipt = { receiver: i, atMs, id: '', detailType: '(not JSON)', repository: '', tag: '' };
        try {
          const e = JSON.parse(Buffer.concat(chunks).toString('utf8')) as { id: string; 'detail-type': string; detail?: Record<string, unknown> };
          receipt = { receiver: i, atMs, id: e.id, detailType: e['detail-type'], repository: String(e.detail?.['repository-name'] ?? ''), tag: String(e.detail?.['image-tag'] ?? '') };
        } catch {
          // Recorded as it is: the bench counts what it cannot match.
        }
        pending.push(receipt);
        res.writeHead(204).end();
      });
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, '127.0.0.1', () => resolve());
    });
    servers.push(server);
  }
  const flush = () => {
    if (pending.length === 0) return;
    process.send!({ type: 'receipts', items: pending } satisfies ReceiverMessage);
    pending = [];
  };
  const timer = setInterval(flush, 50);
  const stop = () => {
    clearInterval(timer);
    flush();
    for (const s of servers) s.closeAllConnections();
    Promise.all(servers.map((s) => new Promise((resolve) => s.close(resolve)))).then(() => process.disconnect());
  };
  process.on('message', (m: unknown) => {
    if (m === 'stop') stop();
    if (m === 'flush') {
      flush();
      process.send!({ type: 'flushed' } satisfies ReceiverMessage);
    }
  });
  // The bench died without asking: nothing is left to report to.
  process.once('disconnect', () => process.exit(0));
  process.send!({ type: 'ready', urls: servers.map((s) => `http://127.0.0.1:${(s.address() as AddressInfo).port}/hook`) } satisfies ReceiverMessage);
}

interface Receivers {
  urls: string[];
  pid: number;
  /** Every receipt reported so far, in arrival order. */
  receipts: Receipt[];
  /** Resolves once every receipt taken before the call has been reported. */
  sync(): Promise<void>;
  stop(): Promise<void>;
}

const children = new Set<ChildProcess>();
process.on('exit', () => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
});

async function startReceivers(count: number): Promise<Receivers> {
  const child = spawn(process.execPath, [import.meta.filename, '--receiver', String(count)], { cwd: repoRoot, stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  children.add(child);
  child.once('exit', () => children.delete(child));
  const receipts: Receipt[] = [];
  const flushWaiters: (() => void)[] = [];
  const urls = await new Promise<string[]>((resolve, reject) => {
    child.once('exit', (code) => reject(new Error(`the receivers exited during startup with code ${code}`)));
    child.on('message', (m: ReceiverMessage) => {
      if (m.type === 'ready') resolve(m.urls);
      else if (m.type === 'receipts') receipts.push(...m.items);
      else flushWaiters.shift()?.();
    });
  });
  return {
    urls,
    pid: child.pid!,
    receipts,
    // IPC keeps the order: once 'flushed' arrives, every receipt taken before the request has too.
    sync: () =>
      new Promise<void>((resolve, reject) => {
        flushWaiters.push(resolve);
        if (!child.send('flush')) reject(new Error('the receivers have no IPC channel'));
      }),
    stop: async () => {
      if (child.exitCode !== null || child.signalCode !== null) return;
      const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
      child.send('stop');
      const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
      await exited;
      clearTimeout(timer);
    },
  };
}

// --- pushing ------------------------------------------------------------------------------------

interface Blob {
  digest: string;
  bytes: Buffer;
}

function blobOf(bytes: Buffer): Blob {
  return { digest: `sha256:${createHash('sha256').update(bytes).digest('hex')}`, bytes };
}

/** Every pushed image shares its repository's config; the layer makes each one new. */
function configBlob(repo: string): Blob {
  return blobOf(Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', config: { Labels: { repository: repo } }, rootfs: { type: 'layers', diff_ids: [] } })));
}

async function setUpRepository(client: RegistryClient, repo: string): Promise<Blob> {
  const config = configBlob(repo);
  await client.pushBlobMonolithic(repo, { digest: config.digest, sizeBytes: config.bytes.length, bytes: config.bytes });
  return config;
}

/** One image: the layer in one POST with ?digest= (spec: "single POST"), then the manifest under `tag`. */
async function pushImage(client: RegistryClient, repo: string, config: Blob, tag: string): Promise<void> {
  const layer = blobOf(randomBytes(LAYER_BYTES));
  const res = await client.request('POST', `/v2/${repo}/blobs/uploads/?digest=${layer.digest}`, {
    headers: { 'content-type': 'application/octet-stream', 'content-length': layer.bytes.length },
    body: layer.bytes,
  });
  if (res.status !== 201) throw new Error(`POST blob ${layer.digest} to ${repo}: status ${res.status}: ${res.body.toString('utf8', 0, 300)}`);
  const manifest = Buffer.from(JSON.stringify({
    schemaVersion: 2,
    mediaType: OCI_MANIFEST,
    config: { mediaType: OCI_CONFIG, digest: config.digest, size: config.bytes.length },
    layers: [{ mediaType: OCI_LAYER, digest: layer.digest, size: layer.bytes.length }],
  }));
  await client.putManifest(repo, tag, OCI_MANIFEST, manifest);
}

// --- servers ------------------------------------------------------------------------------------

interface Subscriptions {
  /** Subscription id to what it points at. */
  kinds: Map<string, 'healthy' | 'dead'>;
  deadUrl: string;
}

function berth(args: string[]): string {
  const r = spawnSync(berthBin, args, { cwd: repoRoot, encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`berth ${args.slice(0, 2).join(' ')} exited ${r.status}: ${r.stderr}`);
  return r.stdout;
}

/** Adds the three subscriptions to the stores in `dataDir`, as an operator would before a start. */
async function subscribe(dataDir: string, receivers: Receivers): Promise<Subscriptions> {
  await mkdir(dataDir, { recursive: true });
  const deadUrl = `http://127.0.0.1:${await freePort()}/hook`;
  const kinds = new Map<string, 'healthy' | 'dead'>();
  for (const [url, kind] of [...receivers.urls.map((u) => [u, 'healthy'] as const), [deadUrl, 'dead'] as const]) {
    const out = JSON.parse(berth(['events', 'add', '--url', url, '--max-attempts', String(kind === 'dead' ? DEAD_MAX_ATTEMPTS : 10), '--data-dir', dataDir])) as { id: string };
    kinds.set(out.id, kind);
  }
  return { kinds, deadUrl };
}

interface SubscriptionState {
  kind: 'healthy' | 'dead';
  cursor: number;
  lag: number;
  deadLetters: number;
}

/** `berth events list` on a stopped server's stores. */
function subscriptionStates(dataDir: string, subscriptions: Subscriptions): SubscriptionState[] {
  const list = JSON.parse(berth(['events', 'list', '--data-dir', dataDir])) as { id: string; cursor: number; lag: number; deadLetters: number }[];
  return list.map((s) => ({ kind: subscriptions.kinds.get(s.id) ?? 'healthy', cursor: s.cursor, lag: s.lag, deadLetters: s.deadLetters }));
}

interface Running {
  server: BenchServer;
  dataDir: string;
  subscriptions: Subscriptions | undefined;
}

async function startConfig(config: ConfigName, dir: string, receivers: Receivers): Promise<Running> {
  // startBerth serves <dir>/data.
  const dataDir = path.join(dir, 'data');
  const subscriptions = config === 'subscribed' ? await subscribe(dataDir, receivers) : undefined;
  const server = await startBerth(dir, repoRoot);
  return { server, dataDir, subscriptions };
}

// --- throughput ---------------------------------------------------------------------------------

interface ThroughputSample {
  rep: number;
  config: ConfigName;
  /** Pushes whose manifest PUT was answered within the window. */
  pushes: number;
  pushesPerSecond: number;
  p50Ms: number;
  p99Ms: number;
  errors: number;
  serverCpuSeconds: number;
  clientCpuSeconds: number;
  /** CPU the receivers' process used in the window: taken from the same two cores as the server's. */
  receiverCpuSeconds: number;
  /** Server CPU per push, in ms: the overhead shows here even when something else caps throughput. */
  serverCpuMsPerPush: number;
  /** Subscribed only: PUSH events each healthy receiver got within the window, per push in it. */
  deliveredInWindow?: number[];
  subscriptions?: SubscriptionState[];
  /** Seconds the server was pushed to (warm-up and window), for the dead-letter rate. */
  loadSeconds: number;
}

interface Settings {
  reps: number;
  isQuick: boolean;
  seconds: number;
  warmupSeconds: number;
  clients: number;
  rate: number;
  latencySeconds: number;
  pollIntervalMs: number | undefined;
}

async function measureThroughput(settings: Settings, rep: number, config: ConfigName, work: string, receivers: Receivers): Promise<ThroughputSample> {
  const dir = path.join(work, `r${rep}-${config}`);
  const running = await startConfig(config, dir, receivers);
  const { server } = running;
  const client = new RegistryClient(server.baseUrl, { authorization: server.authorization, maxSockets: settings.clients });
  const prefix = `events/r${rep}-${config}`;
  let sample: ThroughputSample;
  try {
    const repos = Array.from({ length: settings.clients }, (_, i) => `${prefix}-c${i}`);
    const configs = await Promise.all(repos.map((r) => setUpRepository(client, r)));
    const loadStart = nowMs();
    const windowStart = loadStart + settings.warmupSeconds * 1000;
    const windowEnd = windowStart + settings.seconds * 1000;
    const latencies: number[] = [];
    const inWindow = new Set<string>();
    let errors = 0;
    let firstError: unknown;
    let cpu0 = 0;
    let receiverCpu0 = 0;
    let client0 = process.cpuUsage();
    const cpuAtStart = setTimeout(() => {
      cpu0 = treeCpuSeconds(server.pid);
      receiverCpu0 = treeCpuSeconds(receivers.pid);
      client0 = process.cpuUsage();
    }, windowStart - nowMs());
    const worker = async (w: number) => {
      for (let n = 0; nowMs() < windowEnd; n++) {
        const tag = `t${n}`;
        const t0 = nowMs();
        try {
          await pushImage(client, repos[w]!, configs[w]!, tag);
        } catch (err) {
          errors++;
          firstError ??= err;
          continue;
        }
        const t1 = nowMs();
        if (t0 >= windowStart && t1 <= windowEnd) latencies.push(t1 - t0);
        if (t1 >= windowStart && t1 <= windowEnd) inWindow.add(`${repos[w]}:${tag}`);
      }
    };
    await Promise.all(repos.map((_, w) => worker(w)));
    clearTimeout(cpuAtStart);
    const serverCpuSeconds = treeCpuSeconds(server.pid) - cpu0;
    const receiverCpuSeconds = treeCpuSeconds(receivers.pid) - receiverCpu0;
    const clientCpu = process.cpuUsage(client0);
    if (errors > 0) log(`rep ${rep} ${config}: ${errors} push(es) failed, the first: ${(firstError as Error).message}`);
    if (inWindow.size === 0) throw new Error(`rep ${rep} ${config}: no push finished within the window`, { cause: firstError });
    sample = {
      rep,
      config,
      pushes: inWindow.size,
      pushesPerSecond: inWindow.size / settings.seconds,
      p50Ms: percentile(latencies, 50),
      p99Ms: percentile(latencies, 99),
      errors,
      serverCpuSeconds,
      clientCpuSeconds: (clientCpu.user + clientCpu.system) / 1e6,
      receiverCpuSeconds,
      serverCpuMsPerPush: (serverCpuSeconds * 1000) / inWindow.size,
      loadSeconds: (nowMs() - loadStart) / 1000,
    };
    if (running.subscriptions) {
      await receivers.sync();
      sample.deliveredInWindow = receivers.urls.map((_, r) => {
        const got = new Set<string>();
        for (const x of receivers.receipts) {
          const key = `${x.repository}:${x.tag}`;
          if (x.receiver === r && x.detailType === 'ECR Image Action' && x.atMs <= windowEnd && inWindow.has(key)) got.add(key);
        }
        return got.size / inWindow.size;
      });
    }
  } finally {
    client.close();
    await server.stop();
  }
  if (running.subscriptions) sample.subscriptions = subscriptionStates(running.dataDir, running.subscriptions);
  return sample;
}

// --- latency ------------------------------------------------------------------------------------

interface LatencyResult {
  rate: number;
  seconds: number;
  pushes: number;
  pushErrors: number;
  pushP50Ms: number;
  pushP99Ms: number;
  /** Per healthy receiver: push 201 to receipt, in ms, first receipt of each event. */
  receivers: { events: number; missing: number; duplicates: number; p50Ms: number; p99Ms: number; maxMs: number }[];
  all: { events: number; p50Ms: number; p99Ms: number; maxMs: number };
  subscriptions: SubscriptionState[];
  /** Every latency, receiver by receiver, for another look at the distribution. */
  latenciesMs: number[][];
}

async function measureLatency(settings: Settings, work: string, receivers: Receivers): Promise<LatencyResult> {
  const running = await startConfig('subscribed', path.join(work, 'latency'), receivers);
  const { server } = running;
  const client = new RegistryClient(server.baseUrl, { authorization: server.authorization });
  const pushedAt = new Map<string, number>();
  const pushLatencies: number[] = [];
  let pushErrors = 0;
  let result: Omit<LatencyResult, 'subscriptions'>;
  try {
    const repos = Array.from({ length: LATENCY_REPOSITORIES }, (_, i) => `events/latency-${i}`);
    const configs = await Promise.all(repos.map((r) => setUpRepository(client, r)));
    // Open loop: each push starts on its own schedule, whether or not the one before has finished,
    // as independent clients' pushes do.
    const intervalMs = 1000 / settings.rate;
    const total = Math.round(settings.rate * settings.latencySeconds);
    const start = nowMs() + 100;
    const inFlight: Promise<void>[] = [];
    for (let n = 0; n < total; n++) {
      const due = start + n * intervalMs;
      const wait = due - nowMs();
      if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
      const w = n % repos.length;
      const tag = `t${n}`;
      inFlight.push((async () => {
        const t0 = nowMs();
        try {
          await pushImage(client, repos[w]!, configs[w]!, tag);
        } catch (err) {
          if (pushErrors++ === 0) log(`latency: a push failed: ${(err as Error).message}`);
          return;
        }
        const t1 = nowMs();
        pushedAt.set(`${repos[w]}:${tag}`, t1);
        pushLatencies.push(t1 - t0);
      })());
    }
    await Promise.all(inFlight);
    const firstReceipt = () => {
      const out = receivers.urls.map(() => new Map<string, number>());
      const duplicates = receivers.urls.map(() => 0);
      for (const x of receivers.receipts) {
        const key = `${x.repository}:${x.tag}`;
        if (x.detailType !== 'ECR Image Action' || !pushedAt.has(key)) continue;
        if (out[x.receiver]!.has(key)) duplicates[x.receiver]!++;
        else out[x.receiver]!.set(key, x.atMs);
      }
      return { out, duplicates };
    };
    const deadline = nowMs() + DRAIN_DEADLINE_MS;
    for (;;) {
      await receivers.sync();
      const { out } = firstReceipt();
      if (out.every((m) => m.size >= pushedAt.size) || nowMs() > deadline) break;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    const { out, duplicates } = firstReceipt();
    const latenciesMs = out.map((m) => [...m].map(([key, at]) => at - pushedAt.get(key)!));
    const flat = latenciesMs.flat();
    result = {
      rate: settings.rate,
      seconds: settings.latencySeconds,
      pushes: pushedAt.size,
      pushErrors,
      pushP50Ms: percentile(pushLatencies, 50),
      pushP99Ms: percentile(pushLatencies, 99),
      receivers: latenciesMs.map((xs, r) => ({
        events: xs.length,
        missing: pushedAt.size - xs.length,
        duplicates: duplicates[r]!,
        p50Ms: percentile(xs, 50),
        p99Ms: percentile(xs, 99),
        maxMs: Math.max(...xs),
      })),
      all: { events: flat.length, p50Ms: percentile(flat, 50), p99Ms: percentile(flat, 99), maxMs: Math.max(...flat) },
      latenciesMs,
    };
  } finally {
    client.close();
    await server.stop();
  }
  return { ...result, subscriptions: subscriptionStates(running.dataDir, running.subscriptions!) };
}

// --- main ---------------------------------------------------------------------------------------

function parseSettings(): { settings: Settings; workBase: string; isKeepData: boolean } {
  const { values } = parseArgs({
    options: {
      reps: { type: 'string' },
      seconds: { type: 'string' },
      quick: { type: 'boolean', default: false },
      clients: { type: 'string', default: '8' },
      rate: { type: 'string', default: '20' },
      'latency-seconds': { type: 'string' },
      'poll-interval-ms': { type: 'string' },
      'work-dir': { type: 'string', default: os.tmpdir() },
      'keep-data': { type: 'boolean', default: false },
      help: { type: 'boolean', default: false },
    },
  });
  if (values.help) {
    process.stdout.write('usage: node bench/events.ts [--reps N] [--seconds N] [--quick] [--clients N] [--rate N] [--latency-seconds N] [--poll-interval-ms N] [--work-dir DIR] [--keep-data]\n');
    process.exit(0);
  }
  const isQuick = values.quick;
  const positive = (name: string, v: string | undefined, fallback: number, isWhole = false) => {
    const n = v === undefined ? fallback : Number(v);
    if (!(n > 0) || (isWhole && !Number.isInteger(n))) throw new Error(`--${name} must be a positive ${isWhole ? 'whole ' : ''}number, got ${v}`);
    return n;
  };
  const settings: Settings = {
    reps: positive('reps', values.reps, isQuick ? 1 : 5, true),
    isQuick,
    seconds: positive('seconds', values.seconds, isQuick ? 3 : 12),
    warmupSeconds: isQuick ? 1 : 3,
    clients: positive('clients', values.clients, 8, true),
    rate: positive('rate', values.rate, 20),
    latencySeconds: positive('latency-seconds', values['latency-seconds'], isQuick ? 5 : 30),
    pollIntervalMs: values['poll-interval-ms'] === undefined ? undefined : positive('poll-interval-ms', values['poll-interval-ms'], 0, true),
  };
  return { settings, workBase: values['work-dir'], isKeepData: values['keep-data'] };
}

async function main(): Promise<void> {
  const { settings, workBase, isKeepData } = parseSettings();
  // Read by the servers startBerth launches and by `berth events`, in both configurations alike.
  process.env['BERTH_EVENTS_RETRY_BASE_MS'] = String(RETRY_BASE_MS);
  process.env['BERTH_EVENTS_RETRY_MAX_MS'] = String(RETRY_MAX_MS);
  if (settings.pollIntervalMs !== undefined) process.env['BERTH_EVENTS_POLL_INTERVAL_MS'] = String(settings.pollIntervalMs);
  const startedAt = new Date();
  const loadBefore = os.loadavg();
  const { work, cleanUp } = await benchWorkDir(workBase, 'berth-events-', { keep: isKeepData, log });
  const git = spawnSync('git', ['-C', repoRoot, 'rev-parse', '--short', 'HEAD'], { encoding: 'utf8' }).stdout.trim();
  const isDirty = spawnSync('git', ['-C', repoRoot, 'status', '--porcelain', '--untracked-files=no', '--', 'src'], { encoding: 'utf8' }).stdout.trim() !== '';
  log(`work directory ${work}; ${settings.reps} repetition(s) of ${settings.seconds} s with ${settings.clients} clients, then ${settings.latencySeconds} s at ${settings.rate} pushes/s`);

  const receivers = await startReceivers(2);
  const samples: ThroughputSample[] = [];
  let latency: LatencyResult;
  try {
    for (let rep = 1; rep <= settings.reps; rep++) {
      // Alternate who goes first, so that a drift in the machine's load is shared.
      const order: ConfigName[] = rep % 2 === 1 ? ['none', 'subscribed'] : ['subscribed', 'none'];
      for (const config of order) {
        const s = await measureThroughput(settings, rep, config, work, receivers);
        samples.push(s);
        const extra = s.deliveredInWindow ? `, delivered in window ${s.deliveredInWindow.map((d) => `${(d * 100).toFixed(0)}%`).join('/')}, dead letters ${s.subscriptions?.find((x) => x.kind === 'dead')?.deadLetters ?? 'n/a'}` : '';
        log(`rep ${rep} ${config}: ${formatNumber(s.pushesPerSecond)} pushes/s, p50 ${formatNumber(s.p50Ms)} ms, p99 ${formatNumber(s.p99Ms)} ms, server CPU ${formatNumber(s.serverCpuMsPerPush)} ms/push${extra}`);
      }
    }
    log(`latency: ${settings.latencySeconds} s at ${settings.rate} pushes/s`);
    latency = await measureLatency(settings, work, receivers);
    log(`latency: p50 ${formatNumber(latency.all.p50Ms)} ms, p99 ${formatNumber(latency.all.p99Ms)} ms, max ${formatNumber(latency.all.maxMs)} ms over ${latency.all.events} deliveries`);
  } finally {
    await receivers.stop();
    cleanUp();
  }

  const of = (config: ConfigName, pick: (s: ThroughputSample) => number) => samples.filter((s) => s.config === config).map(pick);
  const med = (config: ConfigName, pick: (s: ThroughputSample) => number) => median(of(config, pick));
  const none = med('none', (s) => s.pushesPerSecond);
  const subscribed = med('subscribed', (s) => s.pushesPerSecond);
  const ratio = subscribed / none;
  // Each repetition measures both back to back: their ratio cancels drifts slower than a pair.
  const pairRatios = Array.from({ length: settings.reps }, (_, i) => {
    const a = samples.find((s) => s.rep === i + 1 && s.config === 'none')!;
    const b = samples.find((s) => s.rep === i + 1 && s.config === 'subscribed')!;
    return b.pushesPerSecond / a.pushesPerSecond;
  });
  const pairRatio = median(pairRatios);
  const isMet = ratio >= 0.95;
  const deadLetterRates = of('subscribed', (s) => (s.subscriptions?.find((x) => x.kind === 'dead')?.deadLetters ?? 0) / s.loadSeconds);
  const delivered = samples.filter((s) => s.deliveredInWindow).flatMap((s) => s.deliveredInWindow!);
  const deliveredPerSecond = samples.filter((s) => s.deliveredInWindow).flatMap((s) => s.deliveredInWindow!.map((d) => d * s.pushesPerSecond));
  const healthyLag = samples.flatMap((s) => (s.subscriptions ?? []).filter((x) => x.kind === 'healthy').map((x) => x.lag));
  const finishedAt = new Date();
  const loadAfter = os.loadavg();
  const machine = { cpus: os.cpus().length, cpuModel: os.cpus()[0]?.model ?? 'unknown', memoryGiB: os.totalmem() / 2 ** 30, node: process.version, platform: `${os.type()} ${os.release()}` };

  await mkdir(resultsDir, { recursive: true });
  const resultFile = path.join(resultsDir, `${startedAt.toISOString().replace(/[:.]/g, '-')}-events${settings.isQuick ? '-quick' : ''}.json`);
  await writeFile(resultFile, JSON.stringify({
    startedAt,
    finishedAt,
    settings: { ...settings, layerBytes: LAYER_BYTES, deadMaxAttempts: DEAD_MAX_ATTEMPTS, retryBaseMs: RETRY_BASE_MS, retryMaxMs: RETRY_MAX_MS },
    berth: `${git}${isDirty ? ' (src/ has uncommitted changes)' : ''}`,
    machine,
    loadAverage: { before: loadBefore, after: loadAfter },
    throughput: { medians: { none, subscribed }, ratio, pairRatios, pairRatio, target: 'subscribed >= 0.95 x none', isMet, samples },
    latency,
  }, null, 2) + '\n');

  const minutes = ((finishedAt.getTime() - startedAt.getTime()) / 60_000).toFixed(1);
  const row = (label: string, unit: string, pick: (s: ThroughputSample) => number, hasRatio = true) => {
    const a = med('none', pick);
    const b = med('subscribed', pick);
    return `| ${label} | ${unit} | ${formatNumber(a)} | ${formatNumber(b)} | ${hasRatio ? (b / a).toFixed(3) : ''} |`;
  };
  const pollNote = settings.pollIntervalMs === undefined ? 'the default events.pollIntervalMs (500 ms)' : `events.pollIntervalMs ${settings.pollIntervalMs}`;
  process.stdout.write([
    `## Events benchmark, ${startedAt.toISOString().slice(0, 16).replace('T', ' ')} UTC (${settings.reps} rep${settings.reps > 1 ? 's' : ''}, ${minutes} min), Berth ${git}${isDirty ? ' + uncommitted src/' : ''}`,
    '',
    `${machine.cpus} x ${machine.cpuModel}, Node ${machine.node}. Load average before ${loadBefore.map((x) => x.toFixed(2)).join(' ')}, after ${loadAfter.map((x) => x.toFixed(2)).join(' ')}.`,
    '',
    `### Push throughput: ${settings.clients} clients, ${settings.seconds} s after ${settings.warmupSeconds} s of warm-up, a fresh server each time (medians of ${settings.reps})`,
    '',
    `| Figure | Unit | ${CONFIG_LABELS.none} | ${CONFIG_LABELS.subscribed} | Ratio |`,
    '|---|---|--:|--:|--:|',
    row('Pushes (1 KiB layer + manifest)', 'pushes/s', (s) => s.pushesPerSecond),
    row('Push latency p50', 'ms', (s) => s.p50Ms),
    row('Push latency p99', 'ms', (s) => s.p99Ms),
    row('Server CPU per push', 'ms', (s) => s.serverCpuMsPerPush),
    row('Bench client CPU, share of the window', '%', (s) => (100 * s.clientCpuSeconds) / settings.seconds, false),
    row('Receivers\' CPU, share of the window', '%', (s) => (100 * s.receiverCpuSeconds) / settings.seconds, false),
    '',
    `Every repetition (pushes/s, none / subscribed = ratio): ${pairRatios.map((r, i) => `${formatNumber(samples.find((s) => s.rep === i + 1 && s.config === 'none')!.pushesPerSecond)} / ${formatNumber(samples.find((s) => s.rep === i + 1 && s.config === 'subscribed')!.pushesPerSecond)} = ${r.toFixed(3)}`).join('; ')}.`,
    '',
    `Target, with subscriptions within 5 % of none: ratio of medians ${ratio.toFixed(3)}, median of the paired ratios ${pairRatio.toFixed(3)}: **${isMet ? 'met' : 'missed'}** (by the ratio of medians).`,
    '',
    `Healthy subscriptions delivered ${(Math.min(...delivered) * 100).toFixed(0)}-${(Math.max(...delivered) * 100).toFixed(0)} % of each window's push events within the window (median ${formatNumber(median(deliveredPerSecond))} events/s each), and were ${Math.min(...healthyLag)}-${Math.max(...healthyLag)} events behind when the server stopped; the dead one recorded ${deadLetterRates.map((r) => formatNumber(r)).join(' / ')} dead letters per second of load.`,
    '',
    `### Delivery latency: ${latency.pushes} pushes at ${settings.rate}/s over ${settings.latencySeconds} s, 3 subscriptions (1 dead), ${pollNote}`,
    '',
    'From the push\'s 201 (the manifest PUT answered, after its commit) to the receiver having the whole delivery; first receipt of each event.',
    '',
    '| Receiver | Events | Missing | Duplicates | p50 ms | p99 ms | max ms |',
    '|---|--:|--:|--:|--:|--:|--:|',
    ...latency.receivers.map((r, i) => `| healthy ${i + 1} | ${r.events} | ${r.missing} | ${r.duplicates} | ${formatNumber(r.p50Ms)} | ${formatNumber(r.p99Ms)} | ${formatNumber(r.maxMs)} |`),
    `| both | ${latency.all.events} | | | ${formatNumber(latency.all.p50Ms)} | ${formatNumber(latency.all.p99Ms)} | ${formatNumber(latency.all.maxMs)} |`,
    '',
    `Push latency meanwhile: p50 ${formatNumber(latency.pushP50Ms)} ms, p99 ${formatNumber(latency.pushP99Ms)} ms${latency.pushErrors > 0 ? `; ${latency.pushErrors} pushes failed` : ''}. Dead letters: ${latency.subscriptions.find((s) => s.kind === 'dead')?.deadLetters ?? 'n/a'}.`,
    '',
    `Results: ${path.relative(repoRoot, resultFile)}`,
    '',
  ].join('\n'));
}

if (process.argv[2] === '--receiver') await serveReceivers(Number(process.argv[3] ?? 2));
else await main();
