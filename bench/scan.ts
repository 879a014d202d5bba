/**
 * Image scanning (issue 13): how long a scan takes, cold and with warm layer caches, for the
 * debootstrap image and for a 20-layer image; how long re-matching 1,000 stored inventories takes
 * after a database import; and the server's memory while it scans. See docs/benchmarks.md,
 * "Scanning".
 *
 * - **Cold**: a server on a fresh copy of a data directory that holds only the vulnerability
 *   database (imported once with `berth vulndb import --data-dir`), so its layer cache is empty.
 *   The image is pushed, then the time from StartImageScan to DescribeImageScanFindings answering
 *   COMPLETE, polled every 10 ms for the first half second and every 50 ms after. Also the
 *   server's own figure, the durationMs of its "image scanned" log line (claim to finish), its
 *   CPU during the scan, and its peak RSS (VmHWM reset at StartImageScan, and RSS polled).
 * - **Warm**: on the same server, the same image pushed to another repository (layers mounted)
 *   and scanned again: every layer's facts come from the cache (by diff_id).
 * - **Re-match**: `--images` images (default 1,000; each its own config, all sharing the
 *   debootstrap layer) in 10 repositories under ENHANCED scanning with CONTINUOUS_SCAN, scanned
 *   on push; then a newer database is imported with `berth vulndb import` against the running
 *   server, and the time from the new version being visible in the store until every image's
 *   scan record carries it, both read from the SQLite store every 25 ms.
 *
 * The server runs with `scan.pollIntervalMs` set to `--poll-interval-ms` (20 here; the server's
 * own default is 1000), `scan.manualScanQuotaSeconds` 0, and log level info (its default), whose
 * lines the bench reads. The vulnerability data is test/support/vulndata.ts's Debian data plus
 * bulk made up here (addBulkTracker, bulkNpm), so that the database has a realistic shape.
 *
 *   node bench/scan.ts [--reps N] [--warm-reps N] [--images N] [--quick] [--only cold,layers20,rematch]
 *                      [--poll-interval-ms N] [--work-dir DIR] [--keep-data]
 *                      [--berth-node-args="--cpu-prof --cpu-prof-dir=/tmp/prof"]
 *
 * Progress goes to stderr; the markdown report to stdout; everything measured to
 * bench/results/<time>-scan.json.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream, readdirSync, rmSync, statSync } from 'node:fs';
import { cp, mkdir, readFile, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { createInterface } from 'node:readline';
import { DatabaseSync } from 'node:sqlite';
import { createGunzip } from 'node:zlib';
import { parseArgs } from 'node:util';
import {
  DescribeImageScanFindingsCommand,
  ECRClient,
  PutRegistryScanningConfigurationCommand,
  StartImageScanCommand,
  type DescribeImageScanFindingsCommandOutput,
} from '@aws-sdk/client-ecr';
import { seededRandom } from './lib/data.ts';
import { peakRssDuring, treeCpuSeconds, treeRssBytes } from './lib/proc.ts';
import { mapLimit, RegistryClient } from './lib/registry-client.ts';
import { formatNumber, median } from './lib/report.ts';
import { BERTH_BENCH_ADMIN, freePort, launch, stopChild, waitForHttp } from './lib/servers.ts';
import { MT } from '../test/support/oci.ts';
import {
  assembleImage,
  DEBIAN_OS_RELEASE,
  debootstrapImage,
  cacheRoot,
  layerOf,
  withParents,
  type ImagePackage,
  type LayerBlob,
  type ScanEntry,
  type ScanImage,
} from '../test/support/scan-images.ts';
import { debianVulnData, fixedRange, osvRecord, writeOsvZip, CVSS, type OsvRecord } from '../test/support/vulndata.ts';
import { benchWorkDir } from './lib/work-dir.ts';

const MiB = 1024 * 1024;
const repoRoot = path.resolve(import.meta.dirname, '..');
const resultsDir = path.join(import.meta.dirname, 'results');
const berthBin = path.join(repoRoot, 'bin', 'berth');
const UNFINISHED = new Set(['IN_PROGRESS', 'PENDING']);
/** The re-match phase spreads its images over this many repositories. */
const REMATCH_REPOSITORIES = 10;
/** Unrelated source packages in the bulk Debian tracker data, 8 issues each. */
const BULK_TRACKER_SOURCES = 6000;
/** Bulk npm advisories; about half name a package the 20-layer image holds. */
const BULK_NPM_RECORDS = 3000;
const NODE_MODULES = 300;

const TARGETS = { coldMs: 5000, warmMs: 200, rematchSeconds: 10 };

function log(message: string): void {
  process.stderr.write(`[scan ${new Date().toISOString().slice(11, 19)}] ${message}\n`);
}

type Phase = 'cold' | 'layers20' | 'rematch';
const PHASES: Phase[] = ['cold', 'layers20', 'rematch'];

interface Settings {
  reps: number;
  warmReps: number;
  images: number;
  isQuick: boolean;
  pollIntervalMs: number;
  phases: Phase[];
  berthNodeArgs: string[];
}

function parseSettings(): { settings: Settings; workBase: string; isKeepData: boolean } {
  const { values } = parseArgs({
    options: {
      reps: { type: 'string' },
      'warm-reps': { type: 'string' },
      images: { type: 'string' },
      quick: { type: 'boolean', default: false },
      only: { type: 'string', default: PHASES.join(',') },
      'poll-interval-ms': { type: 'string', default: '20' },
      'work-dir': { type: 'string', default: os.tmpdir() },
      'keep-data': { type: 'boolean', default: false },
      'berth-node-args': { type: 'string', default: '' },
      help: { type: 'boolean', default: false },
    },
  });
  if (values.help) {
    process.stdout.write('usage: node bench/scan.ts [--reps N] [--warm-reps N] [--images N] [--quick] [--only cold,layers20,rematch] [--poll-interval-ms N] [--work-dir DIR] [--keep-data] [--berth-node-args ARGS]\n');
    process.exit(0);
  }
  const isQuick = values.quick;
  const whole = (name: string, v: string | undefined, fallback: number, max: number) => {
    const n = v === undefined ? fallback : Number(v);
    if (!Number.isInteger(n) || n < 1 || n > max) throw new Error(`--${name} must be a whole number from 1 to ${max}, got ${v}`);
    return n;
  };
  const phases = values.only.split(',').map((s) => s.trim()) as Phase[];
  for (const p of phases) if (!PHASES.includes(p)) throw new Error(`--only: unknown phase ${JSON.stringify(p)} (${PHASES.join(', ')})`);
  return {
    settings: {
      reps: whole('reps', values.reps, isQuick ? 1 : 3, 50),
      warmReps: whole('warm-reps', values['warm-reps'], isQuick ? 2 : 5, 50),
      images: whole('images', values.images, isQuick ? 100 : 1000, 100_000),
      isQuick,
      pollIntervalMs: whole('poll-interval-ms', values['poll-interval-ms'], 20, 60_000),
      phases,
      berthNodeArgs: values['berth-node-args'].split(' ').filter((a) => a !== ''),
    },
    workBase: values['work-dir'],
    isKeepData: values['keep-data'],
  };
}

// --- the server -------------------------------------------------------------------------------

interface LogLine {
  msg: string;
  time: string;
  repository?: string;
  digest?: string;
  durationMs?: number;
  status?: string;
  [key: string]: unknown;
}

interface ScanServer {
  baseUrl: string;
  pid: number;
  dataDir: string;
  ecr: ECRClient;
  client: RegistryClient;
  /** The log lines the bench looks at, as they arrive. */
  lines: LogLine[];
  waitForLine(pick: (l: LogLine) => boolean, timeoutMs?: number): Promise<LogLine>;
  stop(): Promise<void>;
}

/** Lines the bench reads; every line still goes to stdout.log. */
const WATCHED = new Set(['image scanned', 'continuously scanned images re-matched against the new vulnerability database', 'an image scan failed unexpectedly']);

/**
 * Berth with its embedded stores in `dir`/data, copied from `template` first when given (a data
 * directory holding only an imported database). Logs at info and reads them from stdout.
 */
async function startScanServer(dir: string, settings: Settings, template?: string): Promise<ScanServer> {
  const dataDir = path.join(dir, 'data');
  await mkdir(dir, { recursive: true });
  if (template) await cp(template, dataDir, { recursive: true });
  const port = await freePort();
  const child = launch(process.execPath, [...settings.berthNodeArgs, 'src/main.ts', '--listen', `127.0.0.1:${port}`, '--data-dir', dataDir], {
    cwd: repoRoot,
    env: {
      ...process.env,
      BERTH_LOG_LEVEL: 'info',
      BERTH_SCAN_POLL_INTERVAL_MS: String(settings.pollIntervalMs),
      BERTH_SCAN_MANUAL_SCAN_QUOTA_SECONDS: '0',
      BERTH_REPOSITORIES_CREATE_ON_PUSH: 'true',
      BERTH_BOOTSTRAP_ACCOUNT_ID: BERTH_BENCH_ADMIN.accountId,
      BERTH_BOOTSTRAP_ACCESS_KEY_ID: BERTH_BENCH_ADMIN.accessKeyId,
      BERTH_BOOTSTRAP_SECRET_ACCESS_KEY: BERTH_BENCH_ADMIN.secretAccessKey,
    },
    logFile: path.join(dir, 'stderr.log'),
  });
  const lines: LogLine[] = [];
  const waiters = new Set<() => void>();
  const out = createWriteStream(path.join(dir, 'stdout.log'));
  createInterface({ input: child.stdout! }).on('line', (text) => {
    out.write(text + '\n');
    if (!text.includes('"msg"')) return;
    let line: LogLine;
    try {
      line = JSON.parse(text) as LogLine;
    } catch {
      return;
    }
    if (!WATCHED.has(line.msg)) return;
    lines.push(line);
    for (const w of [...waiters]) w();
  });
  const baseUrl = `http://127.0.0.1:${port}`;
  await waitForHttp(`${baseUrl}/healthz`, child, 'Berth');
  const authorization = `Basic ${Buffer.from(`${BERTH_BENCH_ADMIN.accessKeyId}:${BERTH_BENCH_ADMIN.secretAccessKey}`).toString('base64')}`;
  const ecr = new ECRClient({
    region: 'us-east-1',
    endpoint: baseUrl,
    credentials: { accessKeyId: BERTH_BENCH_ADMIN.accessKeyId, secretAccessKey: BERTH_BENCH_ADMIN.secretAccessKey },
    maxAttempts: 1,
  });
  const client = new RegistryClient(baseUrl, { authorization, maxSockets: 16 });
  return {
    baseUrl,
    pid: child.pid!,
    dataDir,
    ecr,
    client,
    lines,
    waitForLine: (pick, timeoutMs = 10_000) =>
      new Promise<LogLine>((resolve, reject) => {
        const check = () => {
          const found = lines.find(pick);
          if (!found) return;
          waiters.delete(check);
          clearTimeout(timer);
          resolve(found);
        };
        const timer = setTimeout(() => {
          waiters.delete(check);
          reject(new Error(`no matching log line within ${timeoutMs} ms`));
        }, timeoutMs);
        waiters.add(check);
        check();
      }),
    stop: async () => {
      client.close();
      ecr.destroy();
      await stopChild(child);
      out.end();
    },
  };
}

function berth(args: string[]): string {
  const r = spawnSync(berthBin, args, { cwd: repoRoot, encoding: 'utf8', maxBuffer: 64 * MiB });
  if (r.status !== 0) throw new Error(`berth ${args.slice(0, 2).join(' ')} exited ${r.status}: ${r.stderr}`);
  return r.stdout;
}

/** `berth vulndb import` as its own process, not blocking the bench's event loop (the server's logs keep being read). */
function berthAsync(args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    const child: ChildProcess = spawn(berthBin, args, { cwd: repoRoot, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout!.on('data', (c: Buffer) => (stdout += c.toString()));
    child.stderr!.on('data', (c: Buffer) => (stderr += c.toString()));
    child.once('exit', (code) => (code === 0 ? resolve(stdout) : reject(new Error(`berth ${args.slice(0, 2).join(' ')} exited ${code}: ${stderr}`))));
  });
}

/** The JSON the CLI prints last (indented); its log lines come before it, one JSON object a line. */
function printed<T>(stdout: string): T {
  const lines = stdout.split('\n');
  const start = lines.lastIndexOf('{');
  if (start < 0) throw new Error(`berth printed no result: ${stdout.slice(-500)}`);
  return JSON.parse(lines.slice(start).join('\n')) as T;
}

// --- images -----------------------------------------------------------------------------------

/** What a push needs: the layers' files, the config and manifest bytes. */
interface Pushable {
  layers: LayerBlob[];
  config: { digest: string; bytes: Buffer };
  manifest: { digest: string; mediaType: string; bytes: Buffer };
  /** Uncompressed bytes of all layers. */
  tarBytes: number;
}

async function pushableOf(image: Omit<ScanImage, 'packages'>, tarBytes: number): Promise<Pushable> {
  const blob = (digest: string) => readFile(path.join(image.dir, 'blobs', 'sha256', digest.slice('sha256:'.length)));
  return {
    layers: image.layers,
    config: { digest: image.config.digest, bytes: await blob(image.config.digest) },
    manifest: { digest: image.digest, mediaType: image.mediaType, bytes: await blob(image.digest) },
    tarBytes,
  };
}

/** Pushes the image under `tag`; layers are mounted from `mountFrom` when given (they are already on the server). */
async function pushImage(client: RegistryClient, repo: string, image: Pushable, tag: string, mountFrom?: string): Promise<void> {
  for (const layer of image.layers) {
    if (mountFrom !== undefined) {
      const res = await client.request('POST', `/v2/${repo}/blobs/uploads/?mount=${layer.digest}&from=${mountFrom}`, { headers: { 'content-length': 0 } });
      if (res.status === 201) continue;
    }
    await client.pushBlobMonolithic(repo, { digest: layer.digest, sizeBytes: layer.size, path: layer.file });
  }
  await client.pushBlobMonolithic(repo, { digest: image.config.digest, sizeBytes: image.config.bytes.length, bytes: image.config.bytes });
  await client.putManifest(repo, tag, image.manifest.mediaType, image.manifest.bytes);
}

/** The size of a gzip layer's tar, by unpacking it. */
async function gunzippedBytes(file: string): Promise<number> {
  let n = 0;
  for await (const chunk of createReadStream(file).pipe(createGunzip())) n += (chunk as Buffer).length;
  return n;
}

/** Text that compresses about as source code does. */
function textContent(rand: () => number, bytes: number): Buffer {
  const words = ['const', 'return', 'function', 'value', 'index', 'buffer', 'length', 'if', 'else', 'for', 'of', 'await', 'this', 'result', 'error', 'module'];
  const parts: string[] = [];
  let n = 0;
  while (n < bytes) {
    const line = `  ${words[Math.floor(rand() * words.length)]} ${words[Math.floor(rand() * words.length)]}_${Math.floor(rand() * 1e6)} = ${Math.floor(rand() * 1e9)};\n`;
    parts.push(line);
    n += line.length;
  }
  return Buffer.from(parts.join('')).subarray(0, bytes);
}

/** Bytes that do not compress, from the seeded generator. */
function randomContent(rand: () => number, bytes: number): Buffer {
  const buf = Buffer.allocUnsafe(bytes + 4);
  for (let i = 0; i < bytes; i += 4) buf.writeUInt32LE(Math.floor(rand() * 0x1_0000_0000), i);
  return buf.subarray(0, bytes);
}

/** Real ELF executables from this machine's /usr/bin, for the layer the ELF analysers read. */
function systemBinaries(count: number): string[] {
  const out: string[] = [];
  for (const name of readdirSync('/usr/bin').sort()) {
    const file = path.join('/usr/bin', name);
    const s = statSync(file, { throwIfNoEntry: false });
    if (!s || !s.isFile() || s.size > 8 * MiB || s.size < 1024 || (s.mode & 0o111) === 0) continue;
    out.push(file);
    if (out.length >= count) break;
  }
  return out;
}

/**
 * Twenty gzip layers of a few hundred files each: a Debian base (os-release and the debootstrap
 * image's dpkg status), 150 of this machine's executables, an app's node_modules (300 packages),
 * Python's dist-packages (150 distributions), a layer whiting out 20 of the node packages, and
 * fifteen of mixed text and incompressible files. Deterministic but for the config's label.
 */
async function twentyLayerImage(dir: string, dpkgStatus: string, debPackages: ImagePackage[]): Promise<Pushable> {
  const rand = seededRandom(13);
  const layers: ScanEntry[][] = [];
  const pad = (entries: ScanEntry[], prefix: string, count: number) => {
    for (let i = 0; i < count; i++) {
      const isText = rand() < 0.67;
      const bytes = isText ? 1024 + Math.floor(rand() * 15 * 1024) : 4096 + Math.floor(rand() * 60 * 1024);
      entries.push({ name: `${prefix}/f${i}.${isText ? 'js' : 'bin'}`, content: isText ? textContent(rand, bytes) : randomContent(rand, bytes) });
    }
    return entries;
  };
  const docs = debPackages.map((p) => ({ name: `usr/share/doc/${p.name}/copyright`, content: textContent(rand, 2048) }));
  layers.push(pad([{ name: 'etc/os-release', content: DEBIAN_OS_RELEASE }, { name: 'var/lib/dpkg/status', content: dpkgStatus }, ...docs], 'usr/share/base', Math.max(0, 300 - docs.length)));
  layers.push(systemBinaries(150).map((f) => ({ name: `usr/local/bin/${path.basename(f)}`, fromFile: f, mode: 0o755 })));
  const app = 'srv/app';
  const node: ScanEntry[] = [{ name: `${app}/package.json`, content: JSON.stringify({ name: 'bench-app', version: '1.0.0', private: true }) }];
  for (let i = 0; i < NODE_MODULES; i++) {
    node.push({ name: `${app}/node_modules/bench-mod-${i}/package.json`, content: JSON.stringify({ name: `bench-mod-${i}`, version: `1.${i % 10}.0`, main: 'index.js', license: 'MIT' }) });
    node.push({ name: `${app}/node_modules/bench-mod-${i}/index.js`, content: textContent(rand, 512 + Math.floor(rand() * 4096)) });
  }
  layers.push(node);
  const site = 'usr/lib/python3/dist-packages';
  const py: ScanEntry[] = [];
  for (let i = 0; i < 150; i++) {
    const name = `bench_py_${i}`;
    py.push({ name: `${site}/${name}-2.${i % 7}.0.dist-info/METADATA`, content: `Metadata-Version: 2.1\nName: ${name}\nVersion: 2.${i % 7}.0\nSummary: bench\n\n` });
    py.push({ name: `${site}/${name}-2.${i % 7}.0.dist-info/RECORD`, content: '' });
    py.push({ name: `${site}/${name}/__init__.py`, content: textContent(rand, 256 + Math.floor(rand() * 2048)) });
  }
  layers.push(py);
  const whiteouts: ScanEntry[] = [];
  for (let i = 0; i < 20; i++) whiteouts.push({ name: `${app}/node_modules/.wh.bench-mod-${i * 7}`, content: '' });
  layers.push(pad(whiteouts, 'srv/app/assets', 280));
  for (let l = 5; l < 20; l++) layers.push(pad([], `opt/layer${l}`, 300));

  const blobs: LayerBlob[] = [];
  let tarBytes = 0;
  for (const entries of layers) {
    const blob = await layerOf(dir, withParents(entries));
    blobs.push(blob);
    tarBytes += await gunzippedBytes(blob.file);
  }
  const image = await assembleImage(dir, blobs, { tag: 'layers20' });
  return pushableOf(image, tarBytes);
}

/** `count` images over the debootstrap layer, each with its own config (a label), in memory. */
function sharedLayerImages(layer: LayerBlob, count: number): Pushable[] {
  const out: Pushable[] = [];
  for (let i = 0; i < count; i++) {
    const config = Buffer.from(JSON.stringify({
      architecture: 'amd64',
      os: 'linux',
      config: { Cmd: ['/bin/bash'], Labels: { 'bench.image': String(i) } },
      rootfs: { type: 'layers', diff_ids: [layer.diffId] },
    }));
    const configDigest = sha256(config);
    const manifest = Buffer.from(JSON.stringify({
      schemaVersion: 2,
      mediaType: MT.ociManifest,
      config: { mediaType: MT.ociConfig, digest: configDigest, size: config.length },
      layers: [{ mediaType: layer.mediaType, digest: layer.digest, size: layer.size }],
    }));
    out.push({ layers: [layer], config: { digest: configDigest, bytes: config }, manifest: { digest: sha256(manifest), mediaType: MT.ociManifest, bytes: manifest }, tarBytes: 0 });
  }
  return out;
}

function sha256(bytes: Buffer): string {
  return `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
}

/** A file of a gzip layer, read with GNU tar. */
function fileInLayer(layerFile: string, name: string): string {
  const r = spawnSync('tar', ['-xzOf', layerFile, name], { encoding: 'utf8', maxBuffer: 64 * MiB });
  if (r.status !== 0) throw new Error(`tar could not read ${name} from ${layerFile}: ${r.stderr}`);
  return r.stdout;
}

// --- vulnerability data -----------------------------------------------------------------------

type TrackerJson = Record<string, Record<string, unknown>>;

/**
 * Adds made-up issues to the Debian tracker data: for every source package of the image, one
 * fixed below its version, one for which bookworm was never affected, and for every third an
 * open "unimportant" one; the second generation (the newer database) adds an open "low" one to
 * every other source, so that every image's findings change. Then BULK_TRACKER_SOURCES source
 * packages the image does not hold, eight issues each, in bookworm and bullseye, so the
 * database is not trivially small.
 */
function addBulkTracker(tracker: TrackerJson, packages: ImagePackage[], generation: 1 | 2): void {
  const sources = new Map<string, string>();
  for (const p of packages) sources.set(p.sourceName ?? p.name, p.sourceVersion ?? p.version);
  let k = 0;
  for (const [name, version] of sources) {
    const entry = (tracker[name] ??= {});
    const id = (n: number) => `CVE-2098-${String(k * 10 + n).padStart(5, '0')}`;
    const issue = (what: string, bookworm: Record<string, unknown>) => ({
      description: `${name}: ${what} (made up for bench/scan.ts)`,
      scope: 'local',
      releases: { bookworm: { repositories: { bookworm: version }, ...bookworm }, bullseye: { status: 'resolved', fixed_version: '0', urgency: 'low' } },
    });
    entry[id(1)] = issue('fixed before this release', { status: 'resolved', fixed_version: `${version}~bench1`, urgency: 'medium' });
    entry[id(2)] = issue('code not present', { status: 'resolved', fixed_version: '0', urgency: 'unimportant' });
    if (k % 3 === 0) entry[id(3)] = issue('minor issue, no fix', { status: 'open', urgency: 'unimportant' });
    if (generation === 2 && k % 2 === 0) entry[id(4)] = issue('new issue, no fix yet', { status: 'open', urgency: 'low' });
    k++;
  }
  for (let i = 0; i < BULK_TRACKER_SOURCES; i++) {
    const entry: Record<string, unknown> = {};
    for (let j = 0; j < 8; j++) {
      entry[`CVE-2097-${String(i * 8 + j).padStart(5, '0')}`] = {
        description: `bench-src-${i}: made-up issue ${j}`,
        scope: j % 2 === 0 ? 'remote' : 'local',
        releases: {
          bookworm: { status: 'resolved', repositories: { bookworm: `${j + 2}.0-1` }, fixed_version: `${j + 1}.0-1`, urgency: 'medium' },
          bullseye: j % 3 === 0 ? { status: 'open', repositories: { bullseye: `${j + 1}.0-1` }, urgency: 'low', nodsa: 'Minor issue', nodsa_reason: 'ignored' } : { status: 'resolved', fixed_version: `${j + 1}.0-1~deb11u1`, urgency: 'high' },
        },
      };
    }
    tracker[`bench-src-${i}`] = entry;
  }
}

/** npm advisories for the 20-layer image's node_modules (and as many packages it does not hold). */
function bulkNpm(at: Date): OsvRecord[] {
  const out: OsvRecord[] = [];
  for (let i = 0; i < BULK_NPM_RECORDS; i++) {
    const name = `bench-mod-${i % (NODE_MODULES * 2)}`;
    out.push(osvRecord(`BENCH-NPM-${i}`, `CVE-2096-${String(i).padStart(5, '0')}`, `${name}: made-up advisory ${i}`, [{ package: { ecosystem: 'npm', name }, ranges: fixedRange('SEMVER', `1.${(i % 9) + 1}.0`) }], CVSS.medium54, at));
  }
  return out;
}

/** The files of one generation of the database: Debian (OSV and tracker, with the bulk) and npm. */
async function vulnData(dir: string, packages: ImagePackage[], generation: 1 | 2): Promise<string[]> {
  // Both recent, the second newer, as a daily update would be.
  const at = new Date(Date.now() - (3 - generation) * 3_600_000);
  const debian = await debianVulnData(dir, packages, { modifiedAt: at });
  const trackerFile = debian.files.find((f) => f.endsWith('.json'));
  if (!trackerFile) throw new Error('debianVulnData wrote no tracker JSON');
  const tracker = JSON.parse(await readFile(trackerFile, 'utf8')) as TrackerJson;
  addBulkTracker(tracker, packages, generation);
  await writeFile(trackerFile, JSON.stringify(tracker));
  return [...debian.files, await writeOsvZip(dir, 'npm', bulkNpm(at))];
}

// --- measuring --------------------------------------------------------------------------------

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Epoch milliseconds, comparable with the server's log times. */
function nowMs(): number {
  return performance.timeOrigin + performance.now();
}

/**
 * DescribeImageScanFindings until the scan has an outcome: every 10 ms for the first half
 * second (warm scans), every 50 ms after (so that polling takes little from a long scan).
 */
async function waitForScan(ecr: ECRClient, repositoryName: string, imageDigest: string, t0: number): Promise<DescribeImageScanFindingsCommandOutput> {
  for (;;) {
    const out = await ecr.send(new DescribeImageScanFindingsCommand({ repositoryName, imageId: { imageDigest }, maxResults: 1 }));
    if (!UNFINISHED.has(out.imageScanStatus?.status ?? 'PENDING')) return out;
    const elapsed = performance.now() - t0;
    if (elapsed > 600_000) throw new Error(`the scan of ${repositoryName}@${imageDigest} did not finish in 10 minutes`);
    await sleep(elapsed < 500 ? 10 : 50);
  }
}

interface ScanSample {
  image: 'debootstrap' | 'layers20';
  kind: 'cold' | 'warm';
  rep: number;
  /** StartImageScan sent to DescribeImageScanFindings answering COMPLETE. */
  clientMs: number;
  /** The server's "image scanned" durationMs: claimed to recorded. */
  serverMs: number;
  /** Server CPU from StartImageScan to COMPLETE (the polling requests included). */
  serverCpuSeconds: number;
  findings: number;
  startRssBytes?: number;
  peakRssBytes?: number;
  peakAnonBytes?: number;
}

async function timedScan(server: ScanServer, repositoryName: string, digest: string): Promise<Omit<ScanSample, 'image' | 'kind' | 'rep'>> {
  const cpu0 = treeCpuSeconds(server.pid);
  const t0 = performance.now();
  await server.ecr.send(new StartImageScanCommand({ repositoryName, imageId: { imageDigest: digest } }));
  const out = await waitForScan(server.ecr, repositoryName, digest, t0);
  const clientMs = performance.now() - t0;
  const serverCpuSeconds = treeCpuSeconds(server.pid) - cpu0;
  const status = out.imageScanStatus?.status;
  if (status !== 'COMPLETE') throw new Error(`the scan of ${repositoryName}@${digest} ended ${status}: ${out.imageScanStatus?.description}`);
  const line = await server.waitForLine((l) => l.msg === 'image scanned' && l.repository === repositoryName && l.digest === digest);
  const findings = Object.values(out.imageScanFindings?.findingSeverityCounts ?? {}).reduce((a, b) => a + b, 0);
  return { clientMs, serverMs: Number(line.durationMs), serverCpuSeconds, findings };
}

/**
 * For each repetition, a fresh server from the template: the image pushed and scanned cold
 * (memory watched), then pushed to `warmReps` other repositories and scanned warm.
 */
async function coldAndWarm(name: ScanSample['image'], image: Pushable, template: string, work: string, settings: Settings, isKeepData: boolean): Promise<ScanSample[]> {
  const samples: ScanSample[] = [];
  for (let rep = 1; rep <= settings.reps; rep++) {
    const dir = path.join(work, `${name}-${rep}`);
    const server = await startScanServer(dir, settings, template);
    try {
      const repo = `bench/${name}-cold`;
      await pushImage(server.client, repo, image, 'latest');
      // Let the push's own work (events, the scan-on-push consumer finding nothing to do) settle.
      await sleep(500);
      const r = await peakRssDuring(server.pid, () => timedScan(server, repo, image.manifest.digest), 20);
      const cold: ScanSample = { image: name, kind: 'cold', rep, ...r.result, startRssBytes: r.startRssBytes, peakRssBytes: r.peakRssBytes, peakAnonBytes: r.peakAnonBytes };
      samples.push(cold);
      log(`${name} cold ${rep}: ${formatNumber(cold.clientMs)} ms (server ${formatNumber(cold.serverMs)} ms, CPU ${formatNumber(cold.serverCpuSeconds)} s), ${cold.findings} findings, RSS ${formatNumber(r.startRssBytes / MiB)} -> peak ${formatNumber(r.peakRssBytes / MiB)} MiB`);
      for (let w = 1; w <= settings.warmReps; w++) {
        const warmRepo = `bench/${name}-warm-${w}`;
        await pushImage(server.client, warmRepo, image, 'latest', repo);
        await sleep(200);
        const warm: ScanSample = { image: name, kind: 'warm', rep, ...(await timedScan(server, warmRepo, image.manifest.digest)) };
        samples.push(warm);
        log(`${name} warm ${rep}.${w}: ${formatNumber(warm.clientMs)} ms (server ${formatNumber(warm.serverMs)} ms, CPU ${formatNumber(warm.serverCpuSeconds)} s), ${warm.findings} findings`);
        if (warm.findings !== cold.findings) throw new Error(`the warm scan found ${warm.findings} findings, the cold one ${cold.findings}`);
      }
    } finally {
      await server.stop();
      if (!isKeepData) rmSync(dir, { recursive: true, force: true });
    }
  }
  return samples;
}

interface RematchResult {
  images: number;
  pushSeconds: number;
  /** First push to every image scanned (scan on push, warm layer cache). */
  scanAllSeconds: number;
  importSeconds: number;
  oldVersion: number;
  newVersion: number;
  /** The import started to every record at the new version. */
  importAndRematchSeconds: number;
  /** The new version visible in the store to every record at it. */
  rematchFromVisibleSeconds: number;
  /** The import's process exited to every record at it. */
  rematchFromImportExitSeconds: number;
  /** The new version visible to the server's "re-matched" log line. */
  serverRematchSeconds: number | undefined;
  rematchedLogged: number | undefined;
  changedLogged: number | undefined;
  findingsBefore: number;
  findingsAfter: number;
  serverCpuSeconds: number;
  startRssBytes: number;
  peakRssBytes: number;
}

async function rematchPhase(layer: LayerBlob, template: string, newDb: string[], work: string, settings: Settings, isKeepData: boolean): Promise<RematchResult> {
  const dir = path.join(work, 'rematch');
  const server = await startScanServer(dir, settings, template);
  const store = () => new DatabaseSync(path.join(server.dataDir, 'metadata.db'), { readOnly: true });
  try {
    await server.ecr.send(new PutRegistryScanningConfigurationCommand({ scanType: 'ENHANCED', rules: [{ scanFrequency: 'CONTINUOUS_SCAN', repositoryFilters: [{ filter: 'bench/rematch-*', filterType: 'WILDCARD' }] }] }));
    const repos = Array.from({ length: REMATCH_REPOSITORIES }, (_, i) => `bench/rematch-${i}`);
    // The layer goes up once and is mounted into the other repositories; only manifests are counted as images.
    await server.client.pushBlobMonolithic(repos[0]!, { digest: layer.digest, sizeBytes: layer.size, path: layer.file });
    for (const repo of repos.slice(1)) {
      const res = await server.client.request('POST', `/v2/${repo}/blobs/uploads/?mount=${layer.digest}&from=${repos[0]}`, { headers: { 'content-length': 0 } });
      if (res.status !== 201) throw new Error(`mount into ${repo}: status ${res.status}`);
    }
    const images = sharedLayerImages(layer, settings.images);
    log(`re-match: pushing ${images.length} images over ${repos.length} repositories (scanned on push)`);
    const t0 = performance.now();
    await mapLimit(images, 8, async (img, i) => {
      const repo = repos[i % repos.length]!;
      await server.client.pushBlobMonolithic(repo, { digest: img.config.digest, sizeBytes: img.config.bytes.length, bytes: img.config.bytes });
      await server.client.putManifest(repo, `v${i}`, img.manifest.mediaType, img.manifest.bytes);
    });
    const pushSeconds = (performance.now() - t0) / 1000;
    log(`re-match: pushed in ${formatNumber(pushSeconds)} s; waiting for the scans`);
    const db = store();
    let lastLog = performance.now();
    for (;;) {
      const rows = db.prepare('SELECT status, COUNT(*) AS n FROM image_scans GROUP BY status').all() as Array<{ status: string; n: number }>;
      const by = Object.fromEntries(rows.map((r) => [r.status, Number(r.n)]));
      if ((by['FAILED'] ?? 0) > 0) throw new Error(`${by['FAILED']} scans FAILED: see ${dir}/stdout.log`);
      if ((by['COMPLETE'] ?? 0) >= images.length) break;
      if (performance.now() - lastLog > 10_000) {
        lastLog = performance.now();
        log(`re-match: scans ${JSON.stringify(by)}`);
      }
      if (performance.now() - t0 > 3_600_000) throw new Error('the scans did not finish within an hour');
      await sleep(100);
    }
    const scanAllSeconds = (performance.now() - t0) / 1000;
    log(`re-match: ${images.length} images scanned ${formatNumber(scanAllSeconds)} s after the first push`);
    const findingsOf = async (i: number) => {
      const out = await server.ecr.send(new DescribeImageScanFindingsCommand({ repositoryName: repos[i % repos.length]!, imageId: { imageDigest: images[i]!.manifest.digest }, maxResults: 1 }));
      return Object.values(out.imageScanFindings?.findingSeverityCounts ?? {}).reduce((a, b) => a + b, 0);
    };
    const findingsBefore = await findingsOf(images.length - 1);
    const oldVersion = Number((db.prepare('SELECT version FROM vuln_meta WHERE id = 1').get() as { version: number }).version);
    await sleep(1000);

    log('re-match: importing the newer database with `berth vulndb import`');
    const cpu0 = treeCpuSeconds(server.pid);
    const result = await peakRssDuring(server.pid, async () => {
      const importStart = nowMs();
      let importExit: number | undefined;
      let newVersion: number | undefined;
      const imported = berthAsync(['vulndb', 'import', ...newDb, '--data-dir', server.dataDir]).then((out) => {
        importExit = nowMs();
        newVersion = printed<{ version: number }>(out).version;
      });
      let failure: unknown;
      imported.catch((err: unknown) => (failure = err));
      let visible: number | undefined;
      for (;;) {
        if (failure) throw failure;
        const version = Number((db.prepare('SELECT version FROM vuln_meta WHERE id = 1').get() as { version: number }).version);
        if (visible === undefined && version > oldVersion) visible = nowMs();
        if (newVersion !== undefined) {
          const done = Number((db.prepare("SELECT COUNT(*) AS n FROM image_scans WHERE status = 'COMPLETE' AND db_version >= ?").get(newVersion) as { n: number }).n);
          if (done >= images.length) break;
        }
        if (nowMs() - importStart > 600_000) throw new Error('the re-match did not finish within 10 minutes');
        await sleep(25);
      }
      const done = nowMs();
      await imported;
      return { importStart, importExit: importExit!, visible: visible!, done, newVersion: newVersion! };
    }, 20);
    const serverCpuSeconds = treeCpuSeconds(server.pid) - cpu0;
    const t = result.result;
    const line = await server.waitForLine((l) => l.msg.startsWith('continuously scanned images re-matched') && Number(l['version']) === t.newVersion, 30_000).catch(() => undefined);
    db.close();
    const findingsAfter = await findingsOf(images.length - 1);
    return {
      images: images.length,
      pushSeconds,
      scanAllSeconds,
      importSeconds: (t.importExit - t.importStart) / 1000,
      oldVersion,
      newVersion: t.newVersion,
      importAndRematchSeconds: (t.done - t.importStart) / 1000,
      rematchFromVisibleSeconds: (t.done - t.visible) / 1000,
      rematchFromImportExitSeconds: (t.done - t.importExit) / 1000,
      serverRematchSeconds: line ? (Date.parse(line.time) - t.visible) / 1000 : undefined,
      rematchedLogged: line ? Number(line['rematched']) : undefined,
      changedLogged: line ? Number(line['changed']) : undefined,
      findingsBefore,
      findingsAfter,
      serverCpuSeconds,
      startRssBytes: result.startRssBytes,
      peakRssBytes: result.peakRssBytes,
    };
  } finally {
    await server.stop();
    if (!isKeepData) rmSync(dir, { recursive: true, force: true });
  }
}

// --- the report -------------------------------------------------------------------------------

function stats(values: number[]): { median: number; min: number; max: number; samples: number[] } {
  return { median: median(values), min: Math.min(...values), max: Math.max(...values), samples: values };
}

async function main(): Promise<void> {
  const { settings, workBase, isKeepData } = parseSettings();
  const startedAt = new Date();
  const loadBefore = os.loadavg();
  const { work, cleanUp } = await benchWorkDir(workBase, 'berth-bench-scan-', { keep: isKeepData, log });
  const git = spawnSync('git', ['-C', repoRoot, 'rev-parse', '--short', 'HEAD'], { encoding: 'utf8' }).stdout.trim();
  const isDirty = spawnSync('git', ['-C', repoRoot, 'status', '--porcelain', '--untracked-files=no', '--', 'src'], { encoding: 'utf8' }).stdout.trim() !== '';
  const machine = { cpus: os.cpus().length, cpuModel: os.cpus()[0]?.model ?? 'unknown', memoryGiB: os.totalmem() / 2 ** 30, node: process.version, platform: `${os.type()} ${os.release()}` };
  log(`work directory ${work}; ${settings.reps} cold repetition(s) with ${settings.warmReps} warm scans each, ${settings.images} images to re-match, scan.pollIntervalMs ${settings.pollIntervalMs}`);

  try {
    log(`the debootstrap image (built once per machine under ${cacheRoot}; the first build takes minutes)`);
    const deb = await debootstrapImage(path.join(work, 'images', 'debian'));
    const debLayer = deb.layers[0]!;
    const debImage = await pushableOf(deb, await gunzippedBytes(debLayer.file));
    const debInfo = { compressedBytes: debLayer.size, tarBytes: debImage.tarBytes, packages: deb.packages.length };
    log(`debootstrap: ${formatNumber(debLayer.size / MiB)} MiB gzip, ${formatNumber(debImage.tarBytes / MiB)} MiB tar, ${deb.packages.length} packages`);

    let layers20: Pushable | undefined;
    if (settings.phases.includes('layers20')) {
      log('building the 20-layer image');
      layers20 = await twentyLayerImage(path.join(work, 'images', 'layers20'), fileInLayer(debLayer.file, 'var/lib/dpkg/status'), deb.packages);
      log(`20 layers: ${formatNumber(layers20.layers.reduce((a, l) => a + l.size, 0) / MiB)} MiB gzip, ${formatNumber(layers20.tarBytes / MiB)} MiB tar`);
    }

    log('writing the vulnerability data and importing it into the template data directory');
    const db1 = await vulnData(path.join(work, 'db1'), deb.packages, 1);
    const template = path.join(work, 'template');
    const t0 = performance.now();
    const firstImport = printed<{ version: number; sources: Array<Record<string, unknown>> }>(berth(['vulndb', 'import', ...db1, '--data-dir', template]));
    const templateImportSeconds = (performance.now() - t0) / 1000;
    const dbBytes = statSync(path.join(template, 'metadata.db')).size;
    log(`imported in ${formatNumber(templateImportSeconds)} s: version ${firstImport.version}, ${JSON.stringify(firstImport.sources.map((s) => [s['name'], s['records'] ?? s['recordCount']]))}; metadata.db ${formatNumber(dbBytes / MiB)} MiB`);

    const samples: ScanSample[] = [];
    if (settings.phases.includes('cold')) samples.push(...(await coldAndWarm('debootstrap', debImage, template, work, settings, isKeepData)));
    if (layers20) samples.push(...(await coldAndWarm('layers20', layers20, template, work, settings, isKeepData)));
    let rematch: RematchResult | undefined;
    if (settings.phases.includes('rematch')) {
      const db2 = await vulnData(path.join(work, 'db2'), deb.packages, 2);
      rematch = await rematchPhase(debLayer, template, db2, work, settings, isKeepData);
      log(`re-match: ${JSON.stringify(rematch)}`);
    }

    const finishedAt = new Date();
    const loadAfter = os.loadavg();
    const pick = (image: ScanSample['image'], kind: ScanSample['kind'], f: (s: ScanSample) => number | undefined) => {
      const xs = samples.filter((s) => s.image === image && s.kind === kind).map(f).filter((v): v is number => v !== undefined);
      return xs.length > 0 ? stats(xs) : undefined;
    };
    interface Line {
      id: string;
      label: string;
      unit: string;
      value: ReturnType<typeof stats> | undefined;
      target?: number;
    }
    const lines: Line[] = [];
    const scanLines = (image: ScanSample['image'], label: string) => {
      for (const kind of ['cold', 'warm'] as const) {
        const target = kind === 'cold' ? TARGETS.coldMs : TARGETS.warmMs;
        lines.push({ id: `${image}.${kind}.clientMs`, label: `${label}, ${kind}: StartImageScan to COMPLETE`, unit: 'ms', value: pick(image, kind, (s) => s.clientMs), ...(image === 'debootstrap' || kind === 'warm' ? { target } : {}) });
        lines.push({ id: `${image}.${kind}.serverMs`, label: '... the server\'s "image scanned" durationMs', unit: 'ms', value: pick(image, kind, (s) => s.serverMs) });
        lines.push({ id: `${image}.${kind}.cpu`, label: '... server CPU meanwhile', unit: 's', value: pick(image, kind, (s) => s.serverCpuSeconds) });
        if (kind === 'cold') {
          lines.push({ id: `${image}.cold.startRssMiB`, label: '... server RSS before the scan', unit: 'MiB', value: pick(image, kind, (s) => s.startRssBytes && s.startRssBytes / MiB) });
          lines.push({ id: `${image}.cold.peakRssMiB`, label: '... server peak RSS during the scan', unit: 'MiB', value: pick(image, kind, (s) => s.peakRssBytes && s.peakRssBytes / MiB) });
          lines.push({ id: `${image}.cold.peakAnonMiB`, label: '... peak anonymous RSS (polled every 20 ms)', unit: 'MiB', value: pick(image, kind, (s) => s.peakAnonBytes && s.peakAnonBytes / MiB) });
        }
      }
    };
    const findingsOf = (image: ScanSample['image']) => samples.find((s) => s.image === image)?.findings;
    scanLines('debootstrap', `Debootstrap minbase (${formatNumber(debInfo.compressedBytes / MiB)} MiB gzip, ${formatNumber(debInfo.tarBytes / MiB)} MiB tar, ${debInfo.packages} packages, ${findingsOf('debootstrap') ?? '?'} findings)`);
    if (layers20) scanLines('layers20', `20 layers (${formatNumber(layers20.layers.reduce((a, l) => a + l.size, 0) / MiB)} MiB gzip, ${formatNumber(layers20.tarBytes / MiB)} MiB tar, ${findingsOf('layers20') ?? '?'} findings)`);
    const one = (v: number | undefined) => (v === undefined ? undefined : stats([v]));
    if (rematch) {
      lines.push({ id: 'rematch.scanAllSeconds', label: `Scan on push of ${rematch.images} images sharing the debootstrap layer: first push to all COMPLETE`, unit: 's', value: one(rematch.scanAllSeconds) });
      lines.push({ id: 'rematch.importSeconds', label: '`berth vulndb import` of the newer database (its process)', unit: 's', value: one(rematch.importSeconds) });
      lines.push({ id: 'rematch.fromVisibleSeconds', label: `Re-match of ${rematch.images} images: new version visible to all records at it`, unit: 's', value: one(rematch.rematchFromVisibleSeconds), target: TARGETS.rematchSeconds });
      lines.push({ id: 'rematch.fromImportExitSeconds', label: '... from the import process exiting', unit: 's', value: one(rematch.rematchFromImportExitSeconds) });
      lines.push({ id: 'rematch.serverSeconds', label: "... new version visible to the server's \"re-matched\" log line", unit: 's', value: one(rematch.serverRematchSeconds) });
      lines.push({ id: 'rematch.importAndRematchSeconds', label: '... import and re-match together', unit: 's', value: one(rematch.importAndRematchSeconds) });
      lines.push({ id: 'rematch.cpu', label: '... server CPU during import and re-match', unit: 's', value: one(rematch.serverCpuSeconds) });
      lines.push({ id: 'rematch.startRssMiB', label: '... server RSS before the import', unit: 'MiB', value: one(rematch.startRssBytes / MiB) });
      lines.push({ id: 'rematch.peakRssMiB', label: '... server peak RSS during import and re-match', unit: 'MiB', value: one(rematch.peakRssBytes / MiB) });
    }

    await mkdir(resultsDir, { recursive: true });
    const resultFile = path.join(resultsDir, `${startedAt.toISOString().replace(/[:.]/g, '-')}-scan${settings.isQuick ? '-quick' : ''}.json`);
    await writeFile(
      resultFile,
      JSON.stringify({ startedAt, finishedAt, settings, machine, berth: `${git}${isDirty ? ' (src/ has uncommitted changes)' : ''}`, loadAverage: { before: loadBefore, after: loadAfter }, debootstrap: debInfo, database: { import: firstImport, templateImportSeconds, metadataDbBytes: dbBytes }, samples, rematch, lines }, null, 2) + '\n',
    );
    const minutes = ((finishedAt.getTime() - startedAt.getTime()) / 60_000).toFixed(1);
    const table = [
      '| Figure | Unit | Median | Min - max | Target | Met |',
      '|---|---|--:|--:|--:|---|',
      ...lines.filter((l) => l.value !== undefined).map((l) => {
        const v = l.value;
        const range = v && v.samples.length > 1 ? `${formatNumber(v.min)} - ${formatNumber(v.max)}` : '';
        const met = l.target === undefined || !v ? '' : v.median <= l.target ? 'yes' : '**no**';
        return `| ${l.label} | ${l.unit} | ${formatNumber(v?.median)} | ${range} | ${l.target === undefined ? '' : formatNumber(l.target)} | ${met} |`;
      }),
    ];
    process.stdout.write(
      [
        `## Scan benchmark, ${startedAt.toISOString().slice(0, 16).replace('T', ' ')} UTC (${minutes} min), Berth ${git}${isDirty ? ' + uncommitted src/' : ''}`,
        '',
        `${machine.cpus} x ${machine.cpuModel}, ${formatNumber(machine.memoryGiB)} GiB, Node ${machine.node}. Load average before ${loadBefore.map((x) => x.toFixed(2)).join(' ')}, after ${loadAfter.map((x) => x.toFixed(2)).join(' ')}. scan.pollIntervalMs ${settings.pollIntervalMs}; ${settings.reps} cold scans per image (a fresh server each), ${settings.warmReps} warm scans after each.`,
        '',
        ...table,
        '',
        `Database: ${JSON.stringify(firstImport.sources.map((s) => `${String(s['name'])} ${String(s['records'] ?? s['recordCount'] ?? '?')}`))}, imported into an empty store in ${formatNumber(templateImportSeconds)} s; metadata.db ${formatNumber(dbBytes / MiB)} MiB.`,
        rematch ? `Re-match: versions ${rematch.oldVersion} -> ${rematch.newVersion}; the server logged ${rematch.rematchedLogged ?? '?'} re-matched, ${rematch.changedLogged ?? '?'} changed; one image's findings ${rematch.findingsBefore} -> ${rematch.findingsAfter}.` : '',
        '',
        `Results: ${path.relative(repoRoot, resultFile)}`,
        '',
      ].join('\n'),
    );
  } finally {
    cleanUp();
  }
}

await main();
