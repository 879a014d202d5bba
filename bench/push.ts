/**
 * The push path side by side: Berth, CNCF Distribution and nginx (PUT to disk, no hashing, no
 * fsync) receive the same bytes, and each figure is taken from all three in turn, the order
 * rotating from one repetition to the next. Also the memory figures of an idle server and of
 * one 1 GiB upload, monolithic and chunked. See docs/benchmarks.md, "The push path".
 *
 *   node bench/push.ts [--reps N] [--quick] [--servers berth,distribution,nginx] [--work-dir DIR] [--keep-data]
 *                      [--berth-node-args "--cpu-prof --cpu-prof-dir=/tmp/prof"]
 *
 * Progress goes to stderr; the markdown report to stdout; everything measured to
 * bench/results/<time>-push.json.
 */
import { spawnSync } from 'node:child_process';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import http from 'node:http';
import { createReadStream } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { pipeline } from 'node:stream/promises';
import { parseArgs } from 'node:util';
import { writeRandomFile, type BlobFile } from './lib/data.ts';
import { peakRssDuring, resetPeakRss, treeAnonRssBytes, treeCpuSeconds, treePeakRssBytes, treeRssBytes } from './lib/proc.ts';
import { RegistryClient } from './lib/registry-client.ts';
import { formatNumber, makeRow, markdownTable, median, samplesList, SERVER_ORDER, type Row } from './lib/report.ts';
import { sizeLabel } from './lib/scenarios.ts';
import { SERVER_LABELS, startBerth, startDistribution, startNginx, type BenchServer, type ServerName } from './lib/servers.ts';
import { benchWorkDir } from './lib/work-dir.ts';

const MiB = 1024 * 1024;
const MB = 1e6;
const repoRoot = path.resolve(import.meta.dirname, '..');
const resultsDir = path.join(import.meta.dirname, 'results');
/** How long a fresh server is left alone before its idle memory is read. */
const SETTLE_MS = 3000;

function log(message: string): void {
  process.stderr.write(`[push ${new Date().toISOString().slice(11, 19)}] ${message}\n`);
}

interface Settings {
  reps: number;
  isQuick: boolean;
  smallBlobBytes: number;
  smallBlobs: number;
  bigBlobBytes: number;
  memoryBlobBytes: number;
  chunkBytes: number;
  servers: ServerName[];
  berthNodeArgs: string[];
}

function parseSettings(): { settings: Settings; workBase: string; isKeepData: boolean } {
  const { values } = parseArgs({
    options: {
      reps: { type: 'string' },
      quick: { type: 'boolean', default: false },
      servers: { type: 'string', default: SERVER_ORDER.join(',') },
      'work-dir': { type: 'string', default: os.tmpdir() },
      'keep-data': { type: 'boolean', default: false },
      'berth-node-args': { type: 'string', default: '' },
      help: { type: 'boolean', default: false },
    },
  });
  if (values.help) {
    process.stdout.write('usage: node bench/push.ts [--reps N] [--quick] [--servers berth,distribution,nginx] [--work-dir DIR] [--keep-data] [--berth-node-args ARGS]\n');
    process.exit(0);
  }
  const isQuick = values.quick;
  const reps = values.reps === undefined ? (isQuick ? 1 : 3) : Number(values.reps);
  if (!Number.isInteger(reps) || reps < 1 || reps > 50) throw new Error(`--reps must be a whole number from 1 to 50, got ${values.reps}`);
  const servers = values.servers.split(',').map((s) => s.trim()) as ServerName[];
  for (const s of servers) if (!SERVER_ORDER.includes(s)) throw new Error(`--servers: unknown server ${JSON.stringify(s)}`);
  const berthNodeArgs = values['berth-node-args'].split(' ').filter((a) => a !== '');
  const settings: Settings = isQuick
    ? { reps, isQuick, smallBlobBytes: 64 * MiB, smallBlobs: 2, bigBlobBytes: 128 * MiB, memoryBlobBytes: 256 * MiB, chunkBytes: 8 * MiB, servers, berthNodeArgs }
    : { reps, isQuick, smallBlobBytes: 64 * MiB, smallBlobs: 8, bigBlobBytes: 512 * MiB, memoryBlobBytes: 1024 * MiB, chunkBytes: 8 * MiB, servers, berthNodeArgs };
  return { settings, workBase: values['work-dir'], isKeepData: values['keep-data'] };
}

/** nginx has no registry API: one PUT of the whole file, which it writes to disk and renames. */
async function nginxPut(server: BenchServer, agent: http.Agent, name: string, blob: BlobFile): Promise<void> {
  await new Promise<void>((resolve, reject) => {
    const req = http.request(`${server.baseUrl}/put/${name}`, { method: 'PUT', agent, headers: { 'content-length': blob.sizeBytes, 'content-type': 'application/octet-stream' } }, (res) => {
      res.resume();
      res.once('end', () => (res.statusCode === 201 || res.statusCode === 204 ? resolve() : reject(new Error(`nginx PUT ${name}: status ${res.statusCode}`))));
    });
    req.once('error', reject);
    pipeline(createReadStream(blob.path, { highWaterMark: MiB }), req).catch(reject);
  });
}

/** Starts the writeback of everything dirty and waits for it, so no server pays for another's pages. */
function syncDisks(): void {
  spawnSync('sync');
}

interface Pusher {
  server: BenchServer;
  push(blob: BlobFile, tag: string, options?: { chunkBytes?: number }): Promise<void>;
  close(): void;
}

function pusherFor(server: BenchServer): Pusher {
  if (server.staticRoot) {
    const agent = new http.Agent({ keepAlive: true });
    return {
      server,
      push: (blob, tag) => nginxPut(server, agent, `${tag}/${blob.digest}`, blob),
      close: () => agent.destroy(),
    };
  }
  const client = new RegistryClient(server.baseUrl, { authorization: server.authorization });
  return {
    server,
    push: async (blob, tag, options = {}) => {
      if (options.chunkBytes !== undefined) await client.pushBlobChunked(`bench/${tag}`, blob, options.chunkBytes);
      else await client.pushBlobMonolithic(`bench/${tag}`, blob);
    },
    close: () => client.close(),
  };
}

interface Sample {
  rep: number;
  scenario: string;
  server: ServerName;
  mbps: number;
  wallSeconds: number;
  serverCpuSeconds: number;
  clientCpuSeconds: number;
  peakRssBytes: number;
}

async function main(): Promise<void> {
  const { settings, workBase, isKeepData } = parseSettings();
  const startedAt = new Date();
  const loadBefore = os.loadavg();
  const { work, cleanUp } = await benchWorkDir(workBase, 'berth-push-', { keep: isKeepData, log });
  const servers: BenchServer[] = [];
  log(`work directory ${work}; ${settings.reps} repetition(s), servers ${settings.servers.join(', ')}`);
  const idle: Partial<Record<ServerName, { rssBytes: number; anonBytes: number }>> = {};
  const idleAfter: Partial<Record<ServerName, { rssBytes: number; anonBytes: number }>> = {};
  const memory: Partial<Record<ServerName, Record<'monolithic' | 'chunked', { peakRssBytes: number; startRssBytes: number; peakAnonBytes: number; mbps: number }>>> = {};
  const samples: Sample[] = [];
  const git = spawnSync('git', ['-C', repoRoot, 'rev-parse', '--short', 'HEAD'], { encoding: 'utf8' }).stdout.trim();
  const isDirty = spawnSync('git', ['-C', repoRoot, 'status', '--porcelain', '--untracked-files=no', '--', 'src'], { encoding: 'utf8' }).stdout.trim() !== '';

  try {
    for (const name of SERVER_ORDER) {
      if (!settings.servers.includes(name)) continue;
      const dir = path.join(work, name);
      const server = name === 'berth'
        ? await startBerth(dir, repoRoot, { nodeArgs: settings.berthNodeArgs })
        : name === 'distribution' ? await startDistribution(dir) : await startNginx(dir, 'application/octet-stream');
      servers.push(server);
      log(`${SERVER_LABELS[name]} is up at ${server.baseUrl} (pid ${server.pid})`);
    }
    await new Promise((r) => setTimeout(r, SETTLE_MS));
    for (const s of servers) {
      idle[s.name] = { rssBytes: treeRssBytes(s.pid), anonBytes: treeAnonRssBytes(s.pid) };
      log(`${SERVER_LABELS[s.name]} idle: RSS ${formatNumber(idle[s.name]!.rssBytes / MiB)} MiB, anonymous ${formatNumber(idle[s.name]!.anonBytes / MiB)} MiB`);
    }
    const pushers = servers.map(pusherFor);

    log(`memory: one ${sizeLabel(settings.memoryBlobBytes)} upload per server, monolithic then chunked`);
    for (const kind of ['monolithic', 'chunked'] as const) {
      const blob = await writeRandomFile(path.join(work, `memory-${kind}.bin`), settings.memoryBlobBytes);
      for (const p of pushers) {
        if (kind === 'chunked' && p.server.staticRoot) continue;
        syncDisks();
        const t0 = performance.now();
        const r = await peakRssDuring(p.server.pid, () => p.push(blob, `memory-${kind}`, kind === 'chunked' ? { chunkBytes: settings.chunkBytes } : {}));
        const mbps = blob.sizeBytes / MB / ((performance.now() - t0) / 1000);
        (memory[p.server.name] ??= {} as never)[kind] = { peakRssBytes: r.peakRssBytes, startRssBytes: r.startRssBytes, peakAnonBytes: r.peakAnonBytes, mbps };
        log(`${SERVER_LABELS[p.server.name]} ${kind}: ${formatNumber(mbps)} MB/s, RSS ${formatNumber(r.startRssBytes / MiB)} -> peak ${formatNumber(r.peakRssBytes / MiB)} MiB (anonymous ${formatNumber(r.peakAnonBytes / MiB)})`);
      }
      await rm(blob.path, { force: true });
    }

    const scenarios = [
      { id: 'push-small', label: `Blob push, monolithic, ${settings.smallBlobs} x ${sizeLabel(settings.smallBlobBytes)} one after another`, bytes: settings.smallBlobBytes, count: settings.smallBlobs },
      { id: 'push-big', label: `Blob push, monolithic, one ${sizeLabel(settings.bigBlobBytes)} blob`, bytes: settings.bigBlobBytes, count: 1 },
    ];
    for (let rep = 1; rep <= settings.reps; rep++) {
      // Rotate who goes first, so that whatever the machine does in the background is shared.
      const order = pushers.map((_, i) => pushers[(i + rep - 1) % pushers.length]!);
      for (const scenario of scenarios) {
        const blobs: BlobFile[] = [];
        for (let i = 0; i < scenario.count; i++) blobs.push(await writeRandomFile(path.join(work, `${scenario.id}-${rep}-${i}.bin`), scenario.bytes));
        for (const p of order) {
          syncDisks();
          resetPeakRss(p.server.pid);
          const cpu0 = treeCpuSeconds(p.server.pid);
          const client0 = process.cpuUsage();
          const t0 = performance.now();
          for (const b of blobs) await p.push(b, `${scenario.id}-r${rep}`);
          const wallSeconds = (performance.now() - t0) / 1000;
          const clientCpu = process.cpuUsage(client0);
          const sample: Sample = {
            rep,
            scenario: scenario.id,
            server: p.server.name,
            mbps: (scenario.bytes * scenario.count) / MB / wallSeconds,
            wallSeconds,
            serverCpuSeconds: treeCpuSeconds(p.server.pid) - cpu0,
            clientCpuSeconds: (clientCpu.user + clientCpu.system) / 1e6,
            peakRssBytes: treePeakRssBytes(p.server.pid),
          };
          samples.push(sample);
          log(`rep ${rep} ${scenario.id} ${SERVER_LABELS[p.server.name]}: ${formatNumber(sample.mbps)} MB/s, CPU ${formatNumber(sample.serverCpuSeconds)} s, peak RSS ${formatNumber(sample.peakRssBytes / MiB)} MiB`);
        }
        for (const b of blobs) await rm(b.path, { force: true });
      }
    }
    await new Promise((r) => setTimeout(r, SETTLE_MS));
    for (const s of servers) idleAfter[s.name] = { rssBytes: treeRssBytes(s.pid), anonBytes: treeAnonRssBytes(s.pid) };
    for (const p of pushers) p.close();
  } finally {
    for (const s of servers) await s.stop();
    cleanUp();
  }

  const of = (pick: (s: Sample) => number, scenario: string) => {
    const out: Partial<Record<ServerName, number[]>> = {};
    for (const s of samples) if (s.scenario === scenario) (out[s.server] ??= []).push(pick(s));
    return out;
  };
  const per = (pick: (name: ServerName) => number | undefined) => {
    const out: Partial<Record<ServerName, number[]>> = {};
    for (const name of settings.servers) {
      const v = pick(name);
      if (v !== undefined) out[name] = [v];
    }
    return out;
  };
  const rows: Row[] = [
    makeRow('push-small.mbps', `Blob push, monolithic, ${settings.smallBlobs} x ${sizeLabel(settings.smallBlobBytes)} in sequence`, 'MB/s', 'higher', of((s) => s.mbps, 'push-small')),
    makeRow('push-big.mbps', `Blob push, monolithic, one ${sizeLabel(settings.bigBlobBytes)} blob`, 'MB/s', 'higher', of((s) => s.mbps, 'push-big')),
    makeRow('push-small.cpu', `... server CPU for the ${settings.smallBlobs} x ${sizeLabel(settings.smallBlobBytes)}`, 's', 'lower', of((s) => s.serverCpuSeconds, 'push-small')),
    makeRow('push-big.cpu', `... server CPU for the ${sizeLabel(settings.bigBlobBytes)} blob`, 's', 'lower', of((s) => s.serverCpuSeconds, 'push-big')),
    makeRow('push-small.peakMiB', `Peak RSS during the ${sizeLabel(settings.smallBlobBytes)} pushes`, 'MiB', 'lower', of((s) => s.peakRssBytes / MiB, 'push-small')),
    makeRow('push-big.peakMiB', `Peak RSS during the ${sizeLabel(settings.bigBlobBytes)} push`, 'MiB', 'lower', of((s) => s.peakRssBytes / MiB, 'push-big')),
    makeRow('idle.rssMiB', `RSS idle, ${SETTLE_MS / 1000} s after start`, 'MiB', 'lower', per((n) => idle[n] && idle[n].rssBytes / MiB)),
    makeRow('idle.anonMiB', 'Anonymous RSS idle (less file-backed pages)', 'MiB', 'lower', per((n) => idle[n] && idle[n].anonBytes / MiB)),
    makeRow('memory-monolithic.peakMiB', `Peak RSS during one ${sizeLabel(settings.memoryBlobBytes)} upload, monolithic`, 'MiB', 'lower', per((n) => memory[n]?.monolithic && memory[n].monolithic.peakRssBytes / MiB)),
    makeRow('memory-monolithic.anonMiB', '... peak anonymous RSS (polled every 50 ms)', 'MiB', 'lower', per((n) => memory[n]?.monolithic && memory[n].monolithic.peakAnonBytes / MiB)),
    makeRow('memory-chunked.peakMiB', `Peak RSS during one ${sizeLabel(settings.memoryBlobBytes)} upload, chunked (${sizeLabel(settings.chunkBytes)} PATCHes)`, 'MiB', 'lower', per((n) => memory[n]?.chunked && memory[n].chunked.peakRssBytes / MiB)),
    makeRow('memory-chunked.anonMiB', '... peak anonymous RSS (polled every 50 ms)', 'MiB', 'lower', per((n) => memory[n]?.chunked && memory[n].chunked.peakAnonBytes / MiB)),
    makeRow('idle-after.rssMiB', `RSS idle again, ${SETTLE_MS / 1000} s after the last push`, 'MiB', 'lower', per((n) => idleAfter[n] && idleAfter[n].rssBytes / MiB)),
  ];
  const finishedAt = new Date();
  const loadAfter = os.loadavg();
  await mkdir(resultsDir, { recursive: true });
  const resultFile = path.join(resultsDir, `${startedAt.toISOString().replace(/[:.]/g, '-')}-push${settings.isQuick ? '-quick' : ''}.json`);
  await writeFile(resultFile, JSON.stringify({ startedAt, finishedAt, settings, berth: `${git}${isDirty ? ' (src/ has uncommitted changes)' : ''}`, loadAverage: { before: loadBefore, after: loadAfter }, idle, idleAfter, memory, samples, rows }, null, 2) + '\n');
  const minutes = ((finishedAt.getTime() - startedAt.getTime()) / 60_000).toFixed(1);
  const cpuPerGiB = (scenario: string, name: ServerName, bytes: number) => {
    const xs = samples.filter((s) => s.scenario === scenario && s.server === name).map((s) => s.serverCpuSeconds / (bytes / (1024 * MiB)));
    return xs.length > 0 ? formatNumber(median(xs)) : 'n/a';
  };
  process.stdout.write([
    `## Push benchmark, ${startedAt.toISOString().slice(0, 16).replace('T', ' ')} UTC (${settings.reps} rep${settings.reps > 1 ? 's' : ''}, ${minutes} min), Berth ${git}${isDirty ? ' + uncommitted src/' : ''}`,
    '',
    `Load average before ${loadBefore.map((x) => x.toFixed(2)).join(' ')}, after ${loadAfter.map((x) => x.toFixed(2)).join(' ')}. Medians; ratios are Berth divided by the other.`,
    '',
    markdownTable(rows),
    '',
    `Server CPU seconds per GiB pushed (medians): 64 MiB blobs Berth ${cpuPerGiB('push-small', 'berth', settings.smallBlobBytes * settings.smallBlobs)}, Distribution ${cpuPerGiB('push-small', 'distribution', settings.smallBlobBytes * settings.smallBlobs)}, nginx ${cpuPerGiB('push-small', 'nginx', settings.smallBlobBytes * settings.smallBlobs)}; big blob Berth ${cpuPerGiB('push-big', 'berth', settings.bigBlobBytes)}, Distribution ${cpuPerGiB('push-big', 'distribution', settings.bigBlobBytes)}, nginx ${cpuPerGiB('push-big', 'nginx', settings.bigBlobBytes)}.`,
    '',
    '### Every repetition',
    '',
    samplesList(rows.slice(0, 6)),
    '',
    `Results: ${path.relative(repoRoot, resultFile)}`,
    '',
  ].join('\n'));
}

await main();
