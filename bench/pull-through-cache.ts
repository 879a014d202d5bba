/**
 * The pull-through cache side by side with CNCF Distribution in proxy mode (`proxy.remoteurl`),
 * both caching the same upstream: the first pull of an image through each (cold), the second
 * (warm), and the bytes each fetched from the upstream. See docs/benchmarks.md,
 * "Pull-through cache".
 *
 * - **Upstream**: one plain Distribution on 127.0.0.1 holding two images, pushed once: a 20-layer
 *   image (`--layers` layers of `--layer-min-mib` to `--layer-max-mib`, sizes from a fixed seed)
 *   and an image with one `--big-mib` layer. All bytes are random (incompressible), generated
 *   into files 4 MiB at a time.
 * - **Caches**, each reaching the upstream through a TCP proxy of its own that counts the bytes
 *   (bench/lib/count-proxy.ts): Berth (node src/main.ts, embedded stores, a pull-through cache
 *   rule `cache` made with CreatePullThroughCacheRule, anonymous, upstreamRegistryUrl the proxy),
 *   and Distribution with `proxy: remoteurl:` the proxy. Each repetition starts both afresh with
 *   empty storage, so every first pull is a cold one.
 * - **Client**: this process pulls as docker does: the manifest, then the config and layers
 *   `--concurrency` (3) at a time, hashing every blob to check its digest, keeping no bytes.
 * - **Each repetition**: the direct pulls from the upstream (with no proxy, and through a counting
 *   proxy as the caches reach it: the anchor of the cold pulls), then the two caches one after
 *   the other, the order alternating between repetitions. For each cache and image: the cold
 *   pull; the wait until the cache holds the whole image (Berth: DescribeImages lists the tag;
 *   Distribution: its storage holds every blob's and the manifest's link), polled every
 *   `--poll-ms`; the warm pull. Then, in Berth, each image is pushed into a repository no rule
 *   covers (not timed) and pulled from there: a normal Berth pull, the anchor of the warm pulls.
 * - `--upstream-mbps N` caps each counting proxy at N MB/s from the upstream, all its connections
 *   together, as the link to a distant registry would (the direct pull with no proxy stays uncapped).
 *
 *   node bench/pull-through-cache.ts [--reps N] [--layers N] [--layer-min-mib N] [--layer-max-mib N]
 *                                    [--big-mib N] [--concurrency N] [--poll-ms N] [--upstream-mbps N] [--quick]
 *                                    [--work-dir DIR] [--keep-data] [--berth-label TEXT]
 *                                    [--berth-node-args "--cpu-prof --cpu-prof-dir=/tmp/prof"]
 *
 * Progress goes to stderr; the markdown report to stdout; every sample to
 * bench/results/<time>-pull-through-cache[-<N>mbps][-quick].json.
 */
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { CreatePullThroughCacheRuleCommand, DescribeImagesCommand, ECRClient } from '@aws-sdk/client-ecr';
import { startCountingProxy, type CountingProxy } from './lib/count-proxy.ts';
import { seededRandom, sha256, writeRandomFile, type BlobFile } from './lib/data.ts';
import { commandOutput, treeCpuSeconds } from './lib/proc.ts';
import { mapLimit, pullImageVerified, RegistryClient } from './lib/registry-client.ts';
import { formatNumber, median } from './lib/report.ts';
import { OCI_MANIFEST } from './lib/scenarios.ts';
import { BERTH_BENCH_ADMIN, DISTRIBUTION_BIN, startBerth, startDistribution, type BenchServer } from './lib/servers.ts';
import { numberOption } from './lib/args.ts';
import { benchWorkDir } from './lib/work-dir.ts';

const MB = 1e6;
const MiB = 1024 * 1024;
const repoRoot = path.resolve(import.meta.dirname, '..');
const resultsDir = path.join(import.meta.dirname, 'results');

/** The Berth rule's prefix: `cache/bench/layers` is `bench/layers` upstream. */
const RULE_PREFIX = 'cache';
/** Where the normal Berth pull reads the images pushed into Berth; no rule covers it. */
const DIRECT_PREFIX = 'direct';
const TAG = 'v1';
const STORED_DEADLINE_MS = 5 * 60_000;
/** Upstream bytes over the image's size still counted as "not more": HTTP headers, about 0.5 kB a request. */
const HEADER_ALLOWANCE = 0.001;
const PUSH_CONCURRENCY = 4;

function log(message: string): void {
  process.stderr.write(`[pull-through-cache ${new Date().toISOString().slice(11, 19)}] ${message}\n`);
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

interface Settings {
  reps: number;
  layers: number;
  layerMinBytes: number;
  layerMaxBytes: number;
  bigBytes: number;
  concurrency: number;
  pollMs: number;
  /** Caps each counting proxy (upstream to reader) at this many MB/s, as a WAN link would; undefined: no cap. */
  upstreamMbps: number | undefined;
  isQuick: boolean;
  berthNodeArgs: string[];
}

function parseSettings(): { settings: Settings; workBase: string; isKeepData: boolean; berthLabel: string } {
  const { values } = parseArgs({
    options: {
      reps: { type: 'string' },
      layers: { type: 'string' },
      'layer-min-mib': { type: 'string' },
      'layer-max-mib': { type: 'string' },
      'big-mib': { type: 'string' },
      concurrency: { type: 'string', default: '3' },
      'poll-ms': { type: 'string', default: '100' },
      'upstream-mbps': { type: 'string' },
      quick: { type: 'boolean', default: false },
      'work-dir': { type: 'string', default: os.tmpdir() },
      'keep-data': { type: 'boolean', default: false },
      'berth-label': { type: 'string' },
      'berth-node-args': { type: 'string', default: '' },
      help: { type: 'boolean', default: false },
    },
  });
  if (values.help) {
    process.stdout.write(
      'usage: node bench/pull-through-cache.ts [--reps N] [--layers N] [--layer-min-mib N] [--layer-max-mib N] [--big-mib N] [--concurrency N] [--poll-ms N] [--upstream-mbps N] [--quick] [--work-dir DIR] [--keep-data] [--berth-label TEXT] [--berth-node-args ARGS]\n',
    );
    process.exit(0);
  }
  const isQuick = values.quick;
  const number = numberOption;
  const settings: Settings = {
    reps: number('reps', values.reps, isQuick ? 1 : 3, { min: 1, isWhole: true }),
    layers: number('layers', values.layers, 20, { min: 1, isWhole: true }),
    layerMinBytes: Math.round(number('layer-min-mib', values['layer-min-mib'], isQuick ? 1 : 10, { min: 0.001 }) * MiB),
    layerMaxBytes: Math.round(number('layer-max-mib', values['layer-max-mib'], isQuick ? 3 : 30, { min: 0.001 }) * MiB),
    bigBytes: Math.round(number('big-mib', values['big-mib'], isQuick ? 128 : 1024, { min: 1 }) * MiB),
    concurrency: number('concurrency', values.concurrency, 3, { min: 1, isWhole: true }),
    pollMs: number('poll-ms', values['poll-ms'], 100, { min: 10, isWhole: true }),
    upstreamMbps: values['upstream-mbps'] === undefined ? undefined : number('upstream-mbps', values['upstream-mbps'], 0, { min: 1 }),
    isQuick,
    berthNodeArgs: values['berth-node-args'].split(' ').filter((a) => a !== ''),
  };
  if (settings.layerMaxBytes < settings.layerMinBytes) throw new Error('--layer-max-mib must be at least --layer-min-mib');
  // The bench does not run git (the tree may be shared): say what was measured.
  const berthLabel = values['berth-label'] ?? `working tree of ${new Date().toISOString().slice(0, 10)}`;
  return { settings, workBase: values['work-dir'], isKeepData: values['keep-data'], berthLabel };
}

/** A digest of every file under src/, to tell whether the code the servers ran changed during the run. */
function sourceDigest(): string {
  const hash = createHash('sha256');
  const walk = (dir: string) => {
    for (const entry of readdirSync(dir, { withFileTypes: true }).sort((a, b) => a.name.localeCompare(b.name))) {
      const full = path.join(dir, entry.name);
      if (entry.isDirectory()) walk(full);
      else if (entry.isFile()) hash.update(full).update(readFileSync(full));
    }
  };
  walk(path.join(repoRoot, 'src'));
  return hash.digest('hex').slice(0, 12);
}

function ownCpuSeconds(): number {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1e6;
}

// --- images -------------------------------------------------------------------------------------

type ImageId = 'layers' | 'big';

interface BenchImage {
  id: ImageId;
  label: string;
  /** The repository at the upstream (and, under a prefix, in the caches). */
  repo: string;
  config: { bytes: Buffer; digest: string };
  layers: BlobFile[];
  manifest: Buffer;
  digest: string;
  /** Config and layers: what a pull moves besides the manifest, and what MB/s counts. */
  blobBytes: number;
  /** Manifest, config and layers: all a cache must fetch. */
  totalBytes: number;
}

async function makeImage(id: ImageId, label: string, dir: string, sizes: number[]): Promise<BenchImage> {
  const layers: BlobFile[] = [];
  for (const [i, size] of sizes.entries()) layers.push(await writeRandomFile(path.join(dir, `${id}-${i}.bin`), size));
  const configBytes = Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', config: {}, rootfs: { type: 'layers', diff_ids: layers.map((l) => l.digest) } }));
  const config = { bytes: configBytes, digest: sha256(configBytes) };
  const manifest = Buffer.from(JSON.stringify({
    schemaVersion: 2,
    mediaType: OCI_MANIFEST,
    config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: config.digest, size: configBytes.length },
    layers: layers.map((l) => ({ mediaType: 'application/vnd.oci.image.layer.v1.tar', digest: l.digest, size: l.sizeBytes })),
  }));
  const blobBytes = configBytes.length + layers.reduce((sum, l) => sum + l.sizeBytes, 0);
  return { id, label, repo: `bench/${id}`, config, layers, manifest, digest: sha256(manifest), blobBytes, totalBytes: blobBytes + manifest.length };
}

async function pushImage(client: RegistryClient, repo: string, image: BenchImage): Promise<void> {
  const blobs: Array<{ digest: string; sizeBytes: number; path?: string; bytes?: Buffer }> = [
    { digest: image.config.digest, sizeBytes: image.config.bytes.length, bytes: image.config.bytes },
    ...image.layers,
  ];
  await mapLimit(blobs, PUSH_CONCURRENCY, async (blob) => {
    if (!(await client.blobExists(repo, blob.digest))) await client.pushBlobMonolithic(repo, blob);
  });
  await client.putManifest(repo, TAG, OCI_MANIFEST, image.manifest);
}

// --- samples ------------------------------------------------------------------------------------

type Source = 'upstream' | 'berth' | 'distribution';
type Kind = 'direct' | 'direct-proxy' | 'cold' | 'warm' | 'normal';

interface Sample {
  rep: number;
  image: ImageId;
  source: Source;
  kind: Kind;
  seconds: number;
  mbps: number;
  /** Cold and warm pulls: bytes from the upstream to the cache (TCP, HTTP included) while the client pulled. */
  upstreamBytes?: number;
  /** Cold pulls: from the manifest GET until the cache held the whole image; undefined if it never did. */
  storedSeconds?: number;
  /** Cold pulls: bytes from the upstream until the cache held the whole image (or the deadline). */
  upstreamBytesUntilStored?: number;
  /** Upstream connections the cache opened until stored. */
  upstreamConnections?: number;
  /** CPU of the cache's process (cold and warm pulls; the normal Berth pull: Berth's) while the client pulled. */
  serverCpuSeconds?: number;
  /** Cold pulls: CPU of the cache's process from the manifest GET until it held the whole image (its polling included). */
  serverCpuSecondsUntilStored?: number;
  /** CPU of the upstream Distribution while the client pulled. */
  upstreamCpuSeconds: number;
  /** This process meanwhile: the client (HTTP, sha256) and the counting proxies. */
  benchCpuSeconds: number;
}

interface Meter {
  finish(): { seconds: number; serverCpuSeconds?: number; upstreamCpuSeconds: number; benchCpuSeconds: number };
}

function startMeter(upstream: BenchServer, server: BenchServer | undefined): Meter {
  const cpuServer = server ? treeCpuSeconds(server.pid) : 0;
  const cpuUpstream = treeCpuSeconds(upstream.pid);
  const cpuBench = ownCpuSeconds();
  const t0 = performance.now();
  return {
    finish: () => ({
      seconds: (performance.now() - t0) / 1000,
      ...(server ? { serverCpuSeconds: treeCpuSeconds(server.pid) - cpuServer } : {}),
      upstreamCpuSeconds: treeCpuSeconds(upstream.pid) - cpuUpstream,
      benchCpuSeconds: ownCpuSeconds() - cpuBench,
    }),
  };
}

/** One timed pull through `client`; the image's digest and every blob's are checked. */
async function timedPull(client: RegistryClient, repo: string, image: BenchImage, settings: Settings, meter: Meter) {
  const pulled = await pullImageVerified(client, repo, TAG, { concurrency: settings.concurrency, expectedDigest: image.digest });
  const m = meter.finish();
  if (pulled.blobBytes !== image.blobBytes) throw new Error(`pull of ${repo}:${TAG}: ${pulled.blobBytes} bytes, wanted ${image.blobBytes}`);
  return { ...m, mbps: image.blobBytes / MB / m.seconds };
}

function describe(s: Sample): string {
  const parts = [`${formatNumber(s.seconds)} s`, `${formatNumber(s.mbps)} MB/s`];
  if (s.upstreamBytes !== undefined) parts.push(`upstream ${formatNumber(s.upstreamBytes / MB)} MB during the pull`);
  if (s.upstreamBytesUntilStored !== undefined) parts.push(`${formatNumber(s.upstreamBytesUntilStored / MB)} MB until stored${s.storedSeconds === undefined ? ' (never stored)' : ` at ${formatNumber(s.storedSeconds)} s`}`);
  if (s.serverCpuSeconds !== undefined) parts.push(`cache CPU ${formatNumber(s.serverCpuSeconds)} s`);
  return parts.join(', ');
}

// --- the caches ---------------------------------------------------------------------------------

interface Upstream {
  server: BenchServer;
  client: RegistryClient;
  /** One counting proxy per reader: the anchor's, Berth's, Distribution's. */
  proxies: Record<'direct' | 'berth' | 'distribution', CountingProxy>;
  proxyClient: RegistryClient;
}

/** Polls until `isStored` answers true; the seconds since `t0`, or undefined at the deadline. */
async function waitStored(t0: number, pollMs: number, isStored: () => Promise<boolean>): Promise<number | undefined> {
  const deadline = performance.now() + STORED_DEADLINE_MS;
  for (;;) {
    if (await isStored()) return (performance.now() - t0) / 1000;
    if (performance.now() > deadline) return undefined;
    await sleep(pollMs);
  }
}

/**
 * The cold pull, the wait until the cache holds the image, and the warm pull, of one image
 * through one cache; the client and the wait are the caller's.
 */
async function coldAndWarm(
  rep: number,
  source: 'berth' | 'distribution',
  image: BenchImage,
  repo: string,
  server: BenchServer,
  client: RegistryClient,
  upstream: Upstream,
  settings: Settings,
  isStored: () => Promise<boolean>,
): Promise<Sample[]> {
  const proxy = upstream.proxies[source];
  proxy.reset();
  const t0 = performance.now();
  const cpuServer = treeCpuSeconds(server.pid);
  const cold = await timedPull(client, repo, image, settings, startMeter(upstream.server, server));
  const upstreamBytes = proxy.downstreamBytes();
  const storedSeconds = await waitStored(t0, settings.pollMs, isStored);
  const serverCpuSecondsUntilStored = treeCpuSeconds(server.pid) - cpuServer;
  if (storedSeconds === undefined) log(`rep ${rep} ${source} ${image.id}: the cache did not hold the whole image within ${STORED_DEADLINE_MS / 60_000} minutes`);
  const coldSample: Sample = {
    rep, image: image.id, source, kind: 'cold', ...cold, upstreamBytes,
    ...(storedSeconds === undefined ? {} : { storedSeconds }),
    upstreamBytesUntilStored: proxy.downstreamBytes(),
    upstreamConnections: proxy.connections(),
    serverCpuSecondsUntilStored,
  };
  log(`rep ${rep} ${source} ${image.id} cold: ${describe(coldSample)}`);
  proxy.reset();
  const warm = await timedPull(client, repo, image, settings, startMeter(upstream.server, server));
  const warmSample: Sample = { rep, image: image.id, source, kind: 'warm', ...warm, upstreamBytes: proxy.downstreamBytes() };
  log(`rep ${rep} ${source} ${image.id} warm: ${describe(warmSample)}`);
  return [coldSample, warmSample];
}

async function berthBlock(rep: number, dir: string, images: BenchImage[], upstream: Upstream, settings: Settings): Promise<Sample[]> {
  const server = await startBerth(dir, repoRoot, { nodeArgs: settings.berthNodeArgs });
  const ecr = new ECRClient({
    region: 'us-east-1',
    endpoint: server.baseUrl,
    credentials: { accessKeyId: BERTH_BENCH_ADMIN.accessKeyId, secretAccessKey: BERTH_BENCH_ADMIN.secretAccessKey },
    maxAttempts: 1,
  });
  const client = new RegistryClient(server.baseUrl, { authorization: server.authorization, maxSockets: 16 });
  try {
    // Anonymous: no credentialArn.
    await ecr.send(new CreatePullThroughCacheRuleCommand({ ecrRepositoryPrefix: RULE_PREFIX, upstreamRegistryUrl: upstream.proxies.berth.baseUrl }));
    const samples: Sample[] = [];
    for (const image of images) {
      const repositoryName = `${RULE_PREFIX}/${image.repo}`;
      // The cache stores the image once all of it is there: DescribeImages lists the tag then.
      const isStored = async () => {
        try {
          const out = await ecr.send(new DescribeImagesCommand({ repositoryName, imageIds: [{ imageTag: TAG }] }));
          return out.imageDetails?.some((d) => d.imageDigest === image.digest && d.imageTags?.includes(TAG)) ?? false;
        } catch (err) {
          const name = (err as Error).name;
          if (name === 'RepositoryNotFoundException' || name === 'ImageNotFoundException') return false;
          throw err;
        }
      };
      samples.push(...(await coldAndWarm(rep, 'berth', image, repositoryName, server, client, upstream, settings, isStored)));
    }
    for (const image of images) {
      const repo = `${DIRECT_PREFIX}/${image.repo}`;
      await pushImage(client, repo, image);
      const normal = await timedPull(client, repo, image, settings, startMeter(upstream.server, server));
      const s: Sample = { rep, image: image.id, source: 'berth', kind: 'normal', ...normal };
      log(`rep ${rep} berth ${image.id} normal pull: ${describe(s)}`);
      samples.push(s);
    }
    return samples;
  } finally {
    client.close();
    ecr.destroy();
    await server.stop();
  }
}

/** Whether Distribution's filesystem storage links the manifest and every blob into the repository (what its proxy serves from). */
function distributionHolds(dataDir: string, image: BenchImage): boolean {
  const repoDir = path.join(dataDir, 'docker/registry/v2/repositories', image.repo);
  const linked = (kind: '_layers' | '_manifests/revisions', digest: string) => {
    try {
      return readFileSync(path.join(repoDir, kind, 'sha256', digest.slice('sha256:'.length), 'link'), 'utf8') === digest;
    } catch {
      return false;
    }
  };
  const blobs = [{ digest: image.config.digest, sizeBytes: image.config.bytes.length }, ...image.layers];
  return linked('_manifests/revisions', image.digest) && blobs.every((b) => {
    if (!linked('_layers', b.digest)) return false;
    const hex = b.digest.slice('sha256:'.length);
    try {
      return statSync(path.join(dataDir, 'docker/registry/v2/blobs/sha256', hex.slice(0, 2), hex, 'data')).size === b.sizeBytes;
    } catch {
      return false;
    }
  });
}

async function distributionBlock(rep: number, dir: string, images: BenchImage[], upstream: Upstream, settings: Settings): Promise<Sample[]> {
  const server = await startDistribution(dir, { proxyRemoteUrl: upstream.proxies.distribution.baseUrl });
  const client = new RegistryClient(server.baseUrl, { maxSockets: 16 });
  try {
    const samples: Sample[] = [];
    for (const image of images) {
      const isStored = async () => distributionHolds(path.join(dir, 'data'), image);
      samples.push(...(await coldAndWarm(rep, 'distribution', image, image.repo, server, client, upstream, settings, isStored)));
    }
    return samples;
  } finally {
    client.close();
    await server.stop();
  }
}

async function directPulls(rep: number, images: BenchImage[], upstream: Upstream, settings: Settings): Promise<Sample[]> {
  const samples: Sample[] = [];
  for (const image of images) {
    const direct = await timedPull(upstream.client, image.repo, image, settings, startMeter(upstream.server, undefined));
    samples.push({ rep, image: image.id, source: 'upstream', kind: 'direct', ...direct });
    upstream.proxies.direct.reset();
    const viaProxy = await timedPull(upstream.proxyClient, image.repo, image, settings, startMeter(upstream.server, undefined));
    samples.push({ rep, image: image.id, source: 'upstream', kind: 'direct-proxy', ...viaProxy, upstreamBytes: upstream.proxies.direct.downstreamBytes() });
    log(`rep ${rep} upstream ${image.id}: direct ${formatNumber(direct.seconds)} s (${formatNumber(direct.mbps)} MB/s), through the counting proxy ${formatNumber(viaProxy.seconds)} s (${formatNumber(viaProxy.mbps)} MB/s)`);
  }
  return samples;
}

// --- main ---------------------------------------------------------------------------------------

const KIND_LABELS: Record<Kind, string> = {
  direct: 'direct from the upstream',
  'direct-proxy': 'direct from the upstream, through a counting proxy',
  cold: 'cold (first pull)',
  warm: 'warm (second pull)',
  normal: 'normal pull of the image pushed into Berth',
};

async function main(): Promise<void> {
  const { settings, workBase, isKeepData, berthLabel } = parseSettings();
  const startedAt = new Date();
  const loadBefore = os.loadavg();
  const sourceBefore = sourceDigest();
  const { work, cleanUp } = await benchWorkDir(workBase, 'berth-pull-through-cache-', { keep: isKeepData, log });
  const distributionVersion = /\s(v?\d+\.\d+\.\d+\S*)/.exec(commandOutput(DISTRIBUTION_BIN, ['--version']))?.[1] ?? 'unknown';

  const dataDir = path.join(work, 'data');
  await mkdir(dataDir, { recursive: true });
  const rand = seededRandom(20);
  const span = settings.layerMaxBytes - settings.layerMinBytes;
  const layerSizes = Array.from({ length: settings.layers }, () => settings.layerMinBytes + Math.floor(rand() * span));
  log(`work directory ${work}; generating ${settings.layers} layers and a ${formatNumber(settings.bigBytes / MiB)} MiB layer`);
  const images = [
    await makeImage('layers', `${settings.layers}-layer image`, dataDir, layerSizes),
    await makeImage('big', `one ${formatNumber(settings.bigBytes / MiB)} MiB layer`, dataDir, [settings.bigBytes]),
  ];
  for (const image of images) image.label = `${image.label}, ${formatNumber(image.blobBytes / MB)} MB`;

  const started: Array<{ stop(): Promise<void> }> = [];
  const samples: Sample[] = [];
  let upstreamStoredBytes = 0;
  /** The 1-minute load average as each repetition started: the machine may be shared. */
  const repLoad: number[] = [];
  try {
    const upstreamServer = await startDistribution(path.join(work, 'upstream'));
    started.push(upstreamServer);
    const target = { host: '127.0.0.1', port: Number(new URL(upstreamServer.baseUrl).port) };
    const link = settings.upstreamMbps === undefined ? {} : { downstreamBytesPerSecond: settings.upstreamMbps * MB };
    const proxies = {
      direct: await startCountingProxy(target, link),
      berth: await startCountingProxy(target, link),
      distribution: await startCountingProxy(target, link),
    };
    for (const p of Object.values(proxies)) started.push({ stop: () => p.close() });
    const upstream: Upstream = {
      server: upstreamServer,
      client: new RegistryClient(upstreamServer.baseUrl, { maxSockets: 16 }),
      proxies,
      proxyClient: new RegistryClient(proxies.direct.baseUrl, { maxSockets: 16 }),
    };
    started.push({ stop: async () => { upstream.client.close(); upstream.proxyClient.close(); } });
    for (const image of images) {
      log(`pushing the ${image.label} (${image.layers.length + 1} blobs) into the upstream`);
      await pushImage(upstream.client, image.repo, image);
    }
    upstreamStoredBytes = images.reduce((sum, i) => sum + i.totalBytes, 0);
    // Warm-up, not counted: the upstream's files in the page cache, this process's code compiled.
    for (const image of images) await pullImageVerified(upstream.client, image.repo, TAG, { concurrency: settings.concurrency, expectedDigest: image.digest });

    for (let rep = 1; rep <= settings.reps; rep++) {
      const repDir = path.join(work, `rep-${rep}`);
      repLoad.push(os.loadavg()[0]!);
      log(`rep ${rep} of ${settings.reps}; load average ${os.loadavg().map((x) => x.toFixed(2)).join(' ')}`);
      samples.push(...(await directPulls(rep, images, upstream, settings)));
      // Alternate who goes first, so that a drift in the machine's load is shared.
      const order: Array<'berth' | 'distribution'> = rep % 2 === 1 ? ['berth', 'distribution'] : ['distribution', 'berth'];
      for (const cache of order) {
        const dir = path.join(repDir, cache);
        samples.push(...(cache === 'berth' ? await berthBlock(rep, dir, images, upstream, settings) : await distributionBlock(rep, dir, images, upstream, settings)));
        // Each cache's copy of the images (1.4 GB in a full run) is not kept for the next.
        if (!isKeepData) await rm(dir, { recursive: true, force: true });
      }
    }
  } finally {
    for (const s of started.reverse()) await s.stop();
    cleanUp();
  }

  const finishedAt = new Date();
  const loadAfter = os.loadavg();
  const sourceAfter = sourceDigest();
  const isSourceChanged = sourceAfter !== sourceBefore;
  if (isSourceChanged) log('warning: src/ changed during the run; later servers ran other code than earlier ones');
  const machine = { cpus: os.availableParallelism(), cpuModel: os.cpus()[0]?.model ?? 'unknown', memoryGiB: Math.round((os.totalmem() / 2 ** 30) * 10) / 10, node: process.version, kernel: os.release(), distribution: distributionVersion };

  const of = (image: ImageId, source: Source, kind: Kind, pick: (s: Sample) => number | undefined) =>
    samples.filter((s) => s.image === image && s.source === source && s.kind === kind).map(pick).filter((v): v is number => v !== undefined);
  const med = (image: ImageId, source: Source, kind: Kind, pick: (s: Sample) => number | undefined) => {
    const xs = of(image, source, kind, pick);
    return xs.length > 0 ? median(xs) : undefined;
  };
  const ratio = (a: number | undefined, b: number | undefined) => (a === undefined || b === undefined || b === 0 ? undefined : a / b);
  const fmtRatio = (r: number | undefined) => (r === undefined ? 'n/a' : `${r.toFixed(2)}x`);

  // Targets, by the medians; "never more upstream bytes" by the worst repetition.
  const targets = images.flatMap((image) => {
    const cold = ratio(med(image.id, 'berth', 'cold', (s) => s.mbps), med(image.id, 'upstream', 'direct-proxy', (s) => s.mbps));
    const coldNoProxy = ratio(med(image.id, 'berth', 'cold', (s) => s.mbps), med(image.id, 'upstream', 'direct', (s) => s.mbps));
    const warm = ratio(med(image.id, 'berth', 'warm', (s) => s.mbps), med(image.id, 'berth', 'normal', (s) => s.mbps));
    const worstBytes = Math.max(...of(image.id, 'berth', 'cold', (s) => s.upstreamBytesUntilStored));
    const bytesRatio = worstBytes / image.totalBytes;
    return [
      { image: image.id, target: 'Cold pull >= 0.9x a direct pull from the upstream', value: `${fmtRatio(cold)} (${fmtRatio(coldNoProxy)} of the direct pull with no proxy)`, ratio: cold, isMet: cold !== undefined && cold >= 0.9 },
      { image: image.id, target: 'Warm pull equal to a normal Berth pull (>= 0.9x)', value: fmtRatio(warm), ratio: warm, isMet: warm !== undefined && warm >= 0.9 },
      { image: image.id, target: 'Upstream bytes never more than the image', value: `${formatNumber(worstBytes / MB)} MB for ${formatNumber(image.totalBytes / MB)} MB (${bytesRatio.toFixed(4)}x, worst repetition)`, ratio: bytesRatio, isMet: bytesRatio <= 1 + HEADER_ALLOWANCE },
    ];
  });

  await mkdir(resultsDir, { recursive: true });
  const variant = `${settings.upstreamMbps === undefined ? '' : `-${settings.upstreamMbps}mbps`}${settings.isQuick ? '-quick' : ''}`;
  const resultFile = path.join(resultsDir, `${startedAt.toISOString().replace(/[:.]/g, '-')}-pull-through-cache${variant}.json`);
  await writeFile(resultFile, JSON.stringify({
    startedAt,
    finishedAt,
    settings,
    berth: berthLabel,
    sourceDigest: { before: sourceBefore, after: sourceAfter },
    machine,
    loadAverage: { before: loadBefore, after: loadAfter, atEachRepetition: repLoad },
    images: images.map((i) => ({ id: i.id, label: i.label, layers: i.layers.map((l) => l.sizeBytes), blobBytes: i.blobBytes, totalBytes: i.totalBytes, digest: i.digest })),
    upstreamStoredBytes,
    targets,
    samples,
  }, null, 2) + '\n');

  const minutes = ((finishedAt.getTime() - startedAt.getTime()) / 60_000).toFixed(1);
  const cell = (v: number | undefined, scale = 1) => (v === undefined ? 'n/a' : formatNumber(v / scale));
  const sections = images.flatMap((image) => {
    const direct = med(image.id, 'upstream', 'direct-proxy', (s) => s.mbps);
    const normal = med(image.id, 'berth', 'normal', (s) => s.mbps);
    const pullRow = (label: string, source: Source, kind: Kind) => {
      const mbps = med(image.id, source, kind, (s) => s.mbps);
      return `| ${label} | ${cell(med(image.id, source, kind, (s) => s.seconds))} | ${cell(mbps)} | ${fmtRatio(ratio(mbps, direct))} | ${fmtRatio(ratio(mbps, normal))} |`;
    };
    const both = (label: string, unit: string, kind: Kind, pick: (s: Sample) => number | undefined, scale = 1) =>
      `| ${label} | ${unit} | ${cell(med(image.id, 'berth', kind, pick), scale)} | ${cell(med(image.id, 'distribution', kind, pick), scale)} |`;
    const perRep = (source: Source, kind: Kind) => of(image.id, source, kind, (s) => s.seconds).map((v) => formatNumber(v)).join(' / ');
    return [
      `### ${image.label[0]!.toUpperCase()}${image.label.slice(1)} (${formatNumber(image.totalBytes / MB)} MB with the manifest)`,
      '',
      '| Pull | s | MB/s | vs direct (proxy) | vs normal Berth |',
      '|---|--:|--:|--:|--:|',
      pullRow(`Direct from the upstream, no proxy${settings.upstreamMbps === undefined ? '' : ' (no link cap either)'}`, 'upstream', 'direct'),
      pullRow('Direct from the upstream, through a counting proxy (cold anchor)', 'upstream', 'direct-proxy'),
      pullRow('Berth cache, cold', 'berth', 'cold'),
      pullRow('Distribution proxy, cold', 'distribution', 'cold'),
      pullRow('Berth cache, warm', 'berth', 'warm'),
      pullRow('Distribution proxy, warm', 'distribution', 'warm'),
      pullRow('Berth, normal pull (pushed into Berth; warm anchor)', 'berth', 'normal'),
      '',
      '| Cache figure | Unit | Berth | Distribution proxy |',
      '|---|---|--:|--:|',
      both('Upstream bytes while the client pulled (cold)', 'MB', 'cold', (s) => s.upstreamBytes, MB),
      both(`Upstream bytes until the cache held the image (image: ${formatNumber(image.totalBytes / MB)} MB)`, 'MB', 'cold', (s) => s.upstreamBytesUntilStored, MB),
      both('Upstream bytes / image size', 'x', 'cold', (s) => (s.upstreamBytesUntilStored === undefined ? undefined : s.upstreamBytesUntilStored / image.totalBytes)),
      both('Cache held the whole image, from the manifest GET', 's', 'cold', (s) => s.storedSeconds),
      both('New upstream connections (cold, until held; kept-alive ones reused)', '', 'cold', (s) => s.upstreamConnections),
      both('Upstream bytes during the warm pull', 'kB', 'warm', (s) => s.upstreamBytes, 1000),
      both('CPU, cache process, cold pull', 's', 'cold', (s) => s.serverCpuSeconds),
      both('CPU, cache process, until it held the image', 's', 'cold', (s) => s.serverCpuSecondsUntilStored),
      both('CPU, upstream, cold pull', 's', 'cold', (s) => s.upstreamCpuSeconds),
      both('CPU, this bench (client, proxies), cold pull', 's', 'cold', (s) => s.benchCpuSeconds),
      both('CPU, cache process, warm pull', 's', 'warm', (s) => s.serverCpuSeconds),
      '',
      `Each repetition, seconds: direct (proxy) ${perRep('upstream', 'direct-proxy')}; Berth cold ${perRep('berth', 'cold')}, warm ${perRep('berth', 'warm')}, normal ${perRep('berth', 'normal')}; Distribution cold ${perRep('distribution', 'cold')}, warm ${perRep('distribution', 'warm')}.`,
      '',
    ];
  });
  process.stdout.write([
    `## Pull-through cache benchmark, ${startedAt.toISOString().slice(0, 16).replace('T', ' ')} UTC (${settings.reps} rep${settings.reps > 1 ? 's' : ''}, ${minutes} min), Berth ${berthLabel}`,
    '',
    ...(isSourceChanged ? ['**src/ changed during the run: servers started later ran other code than earlier ones.**', ''] : []),
    `${machine.cpus} x ${machine.cpuModel}, ${machine.memoryGiB} GiB, Node ${machine.node}, Distribution ${machine.distribution}. Load average before ${loadBefore.map((x) => x.toFixed(2)).join(' ')}, after ${loadAfter.map((x) => x.toFixed(2)).join(' ')}; 1-minute load as each repetition started: ${repLoad.map((x) => x.toFixed(2)).join(', ')}.`,
    '',
    ...(settings.upstreamMbps === undefined ? [] : [`**The link from the upstream is capped at ${settings.upstreamMbps} MB/s** (each counting proxy, all its connections together), as a distant registry would be.`, '']),
    `Medians of ${settings.reps}. The client pulls the manifest, then the config and layers ${settings.concurrency} at a time, checking every digest. MB/s is config and layers (1 MB = 10^6 bytes) over the pull's time. Upstream bytes are what went from the upstream to the cache over TCP, HTTP included. ${KIND_LABELS.cold} on an empty cache; ${KIND_LABELS.warm} once the cache held the image.`,
    '',
    ...sections,
    '### Targets (Berth)',
    '',
    '| Image | Target | Berth | Result |',
    '|---|---|--:|---|',
    ...targets.map((t) => `| ${t.image} | ${t.target} | ${t.value} | ${t.isMet ? 'met' : 'missed'} |`),
    '',
    `Results: ${path.relative(repoRoot, resultFile)}`,
    '',
  ].join('\n'));
}

await main();
