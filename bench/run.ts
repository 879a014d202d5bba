/**
 * Berth against CNCF Distribution and nginx on this machine: blob push and pull, manifest
 * requests under wrk, a 20-layer image, 1,000 tags, and memory. Servers run side by side and
 * each figure is taken from all of them in turn (A, B, C, A, B, C, ...) in every repetition, so
 * drift in the machine's load touches them alike. See docs/benchmarks.md.
 *
 *   node bench/run.ts [--reps N] [--quick] [--servers berth,distribution,nginx] [--work-dir DIR] [--keep-data]
 *
 * Progress goes to stderr; the markdown report to stdout; everything measured to
 * bench/results/<time>.json.
 */
import { readFileSync } from 'node:fs';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { seededRandom, writeRandomFile, type BlobFile } from './lib/data.ts';
import { commandOutput, peakRssDuring, resetPeakRss, treeCpuSeconds, treePeakRssBytes } from './lib/proc.ts';
import { mapLimit, RegistryClient } from './lib/registry-client.ts';
import {
  checkTargets, cpuTable, formatNumber, makeRow, markdownTable, samplesList, scenarioRows, SERVER_ORDER, targetsTable, type Measurement, type Row,
} from './lib/report.ts';
import { makeImage, OCI_MANIFEST, pushImage, scenarios, sizeLabel, type Fixtures, type RepData, type Settings } from './lib/scenarios.ts';
import { DISTRIBUTION_BIN, NGINX_BIN, SERVER_LABELS, startBerth, startDistribution, startNginx, type BenchServer, type ServerName } from './lib/servers.ts';
import { placeBlobFile } from './lib/static-mirror.ts';
import { AB_BIN } from './lib/ab.ts';
import { CURL_BIN } from './lib/curl.ts';
import { WRK_BIN } from './lib/wrk.ts';
import { benchWorkDir } from './lib/work-dir.ts';

const MiB = 1024 * 1024;
const GiB = 1024 * MiB;
const repoRoot = path.resolve(import.meta.dirname, '..');
const resultsDir = path.join(import.meta.dirname, 'results');

function log(message: string): void {
  process.stderr.write(`[bench ${new Date().toISOString().slice(11, 19)}] ${message}\n`);
}

function parseSettings(): { settings: Settings; workBase: string; isKeepData: boolean } {
  const { values } = parseArgs({
    options: {
      reps: { type: 'string' },
      quick: { type: 'boolean', default: false },
      servers: { type: 'string', default: SERVER_ORDER.join(',') },
      'work-dir': { type: 'string', default: os.tmpdir() },
      'keep-data': { type: 'boolean', default: false },
      help: { type: 'boolean', default: false },
    },
  });
  if (values.help) {
    process.stdout.write('usage: node bench/run.ts [--reps N] [--quick] [--servers berth,distribution,nginx] [--work-dir DIR] [--keep-data]\n');
    process.exit(0);
  }
  const isQuick = values.quick;
  const reps = values.reps === undefined ? (isQuick ? 1 : 3) : Number(values.reps);
  if (!Number.isInteger(reps) || reps < 1 || reps > 50) throw new Error(`--reps must be a whole number from 1 to 50, got ${values.reps}`);
  const servers = values.servers.split(',').map((s) => s.trim()) as ServerName[];
  for (const s of servers) if (!SERVER_ORDER.includes(s)) throw new Error(`--servers: unknown server ${JSON.stringify(s)}`);
  const settings: Settings = isQuick
    ? {
        reps, isQuick, pushBlobBytes: 64 * MiB, chunkBytes: 8 * MiB, bigBlobBytes: 256 * MiB, streamBlobBytes: 16 * MiB, streams: 16,
        wrkSeconds: 1, wrkConnections: [1, 16, 64], layers: 20, layerMinBytes: 1 * MiB, layerMaxBytes: 4 * MiB, imageConcurrency: 4,
        tags: 200, tagConcurrency: 4, servers,
      }
    : {
        reps, isQuick, pushBlobBytes: 256 * MiB, chunkBytes: 8 * MiB, bigBlobBytes: 1 * GiB, streamBlobBytes: 64 * MiB, streams: 16,
        wrkSeconds: 10, wrkConnections: [1, 16, 64], layers: 20, layerMinBytes: 1 * MiB, layerMaxBytes: 4 * MiB, imageConcurrency: 4,
        tags: 1000, tagConcurrency: 4, servers,
      };
  return { settings, workBase: values['work-dir'], isKeepData: values['keep-data'] };
}

/** stdout and stderr together: nginx -v prints to stderr, and wrk --version exits 1. */
function machineInfo(): Record<string, string | number> {
  const cpuinfo = readFileSync('/proc/cpuinfo', 'utf8');
  const berthCommit = commandOutput('git', ['-C', repoRoot, 'rev-parse', '--short', 'HEAD']);
  const isDirty = commandOutput('git', ['-C', repoRoot, 'status', '--porcelain', '--untracked-files=no', '--', 'src']) !== '';
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
    ab: `ApacheBench ${/Version (\S+)/.exec(commandOutput(AB_BIN, ['-V']))?.[1] ?? 'unknown'}`,
    berth: `${berthCommit}${isDirty ? ' (src/ has uncommitted changes)' : ''}`,
  };
}

function layerSizes(settings: Settings, seed: number): number[] {
  const rand = seededRandom(seed);
  const span = settings.layerMaxBytes - settings.layerMinBytes;
  return Array.from({ length: settings.layers }, () => settings.layerMinBytes + Math.floor(rand() * span));
}

async function main(): Promise<void> {
  const { settings, workBase, isKeepData } = parseSettings();
  const startedAt = new Date();
  const machine = machineInfo();
  const loadBefore = os.loadavg();
  const { work, cleanUp } = await benchWorkDir(workBase, 'berth-bench-', { keep: isKeepData, log });
  const servers: BenchServer[] = [];
  log(`work directory ${work}; ${settings.isQuick ? 'quick' : 'full'} mode, ${settings.reps} repetition(s), servers ${settings.servers.join(', ')}`);

  const measurements: Measurement[] = [];
  const failures: { rep: number; scenario: string; server: ServerName; error: string }[] = [];
  const uploadMemory: Partial<Record<ServerName, { peakRssBytes: number; startRssBytes: number; peakAnonBytes: number; mbps: number }>> = {};
  const peakRss: Partial<Record<ServerName, number[]>> = {};
  const list = scenarios(settings);

  try {
    log(`generating ${sizeLabel(settings.bigBlobBytes)} and ${settings.streams} x ${sizeLabel(settings.streamBlobBytes)} of random blobs`);
    const bigBlob = await writeRandomFile(path.join(work, 'big.bin'), settings.bigBlobBytes);
    const streamBlobs: BlobFile[] = [];
    for (let i = 0; i < settings.streams; i++) streamBlobs.push(await writeRandomFile(path.join(work, `stream-${i}.bin`), settings.streamBlobBytes));

    for (const name of SERVER_ORDER) {
      if (!settings.servers.includes(name)) continue;
      const dir = path.join(work, name);
      const server = name === 'berth' ? await startBerth(dir, repoRoot) : name === 'distribution' ? await startDistribution(dir) : await startNginx(dir, OCI_MANIFEST);
      servers.push(server);
      log(`${SERVER_LABELS[name]} is up at ${server.baseUrl} (pid ${server.pid})`);
    }
    const clients = new Map(servers.map((s) => [s.name, new RegistryClient(s.baseUrl, { authorization: s.authorization })]));

    const fixtures: Fixtures = {
      pullRepo: 'bench/pull',
      bigBlob,
      streamBlobs,
      manifestRepo: 'bench/manifest',
      manifestTag: 'latest',
      // A typical small image manifest: five layers, about 1.2 KB of JSON.
      manifestImage: await makeImage([4096, 8192, 16384, 32768, 65536]),
    };
    for (const server of servers) {
      const client = clients.get(server.name)!;
      if (server.staticRoot) {
        for (const b of [bigBlob, ...streamBlobs]) await placeBlobFile(server.staticRoot, fixtures.pullRepo, b.digest, b.path);
      } else {
        // The one large upload is also the memory figure: Berth's peak RSS while it takes 1 GiB.
        log(`${SERVER_LABELS[server.name]}: pushing the ${sizeLabel(bigBlob.sizeBytes)} blob while sampling memory`);
        const t0 = performance.now();
        const { peakRssBytes, startRssBytes, peakAnonBytes } = await peakRssDuring(server.pid, () => client.pushBlobMonolithic(fixtures.pullRepo, bigBlob));
        const mbps = bigBlob.sizeBytes / 1e6 / ((performance.now() - t0) / 1000);
        uploadMemory[server.name] = { peakRssBytes, startRssBytes, peakAnonBytes, mbps };
        log(`${SERVER_LABELS[server.name]}: ${formatNumber(mbps)} MB/s, RSS ${formatNumber(startRssBytes / MiB)} -> peak ${formatNumber(peakRssBytes / MiB)} MiB (anonymous ${formatNumber(peakAnonBytes / MiB)} MiB)`);
        await mapLimit(streamBlobs, 4, (b) => client.pushBlobMonolithic(fixtures.pullRepo, b));
      }
      await pushImage(server, client, fixtures.manifestRepo, fixtures.manifestImage, [fixtures.manifestTag], 4);
      // Benchmarking an error page would be worthless: check each server answers as a registry would.
      const res = await client.getManifest(fixtures.manifestRepo, fixtures.manifestTag);
      if (!res.body.equals(fixtures.manifestImage.manifest) || !String(res.headers['content-type']).startsWith(OCI_MANIFEST)) {
        throw new Error(`${server.name}: GET manifest by tag returned other bytes or content type ${res.headers['content-type']}`);
      }
      const head = await client.request('HEAD', `/v2/${fixtures.manifestRepo}/manifests/${fixtures.manifestImage.digest}`, { headers: { accept: OCI_MANIFEST } });
      if (head.status !== 200) throw new Error(`${server.name}: HEAD manifest by digest answered ${head.status}`);
    }

    for (let rep = 1; rep <= settings.reps; rep++) {
      log(`repetition ${rep}/${settings.reps}: generating fresh blobs`);
      const data: RepData = {
        rep,
        monolithicBlob: await writeRandomFile(path.join(work, `push-mono-${rep}.bin`), settings.pushBlobBytes),
        chunkedBlob: await writeRandomFile(path.join(work, `push-chunked-${rep}.bin`), settings.pushBlobBytes),
        image: await makeImage(layerSizes(settings, rep)),
        tagBase: await makeImage([2048]),
      };
      for (const s of servers) resetPeakRss(s.pid);
      for (const scenario of list) {
        for (const server of servers) {
          if (!scenario.servers.includes(server.name)) continue;
          const client = clients.get(server.name)!;
          const cpu0 = treeCpuSeconds(server.pid);
          const client0 = process.cpuUsage();
          const t0 = performance.now();
          try {
            const values = await scenario.run({ settings, fixtures, data, server, client, scratchDir: work });
            const clientCpu = process.cpuUsage(client0);
            measurements.push({
              rep,
              scenario: scenario.id,
              server: server.name,
              values,
              serverCpuSeconds: treeCpuSeconds(server.pid) - cpu0,
              clientCpuSeconds: (clientCpu.user + clientCpu.system) / 1e6,
              wallSeconds: (performance.now() - t0) / 1000,
            });
            const shown = scenario.metrics.filter((m) => values[m.key] !== undefined).map((m) => `${formatNumber(values[m.key])} ${m.unit}`);
            log(`rep ${rep} ${scenario.id} ${SERVER_LABELS[server.name]}: ${shown.join(', ')}`);
          } catch (err) {
            const error = (err as Error).message;
            failures.push({ rep, scenario: scenario.id, server: server.name, error });
            log(`rep ${rep} ${scenario.id} ${SERVER_LABELS[server.name]}: FAILED: ${error}`);
          }
        }
      }
      for (const s of servers) (peakRss[s.name] ??= []).push(treePeakRssBytes(s.pid));
      await rm(data.monolithicBlob.path, { force: true });
      await rm(data.chunkedBlob.path, { force: true });
    }
    for (const c of clients.values()) c.close();
  } finally {
    for (const s of servers) await s.stop();
    cleanUp();
  }

  const toMiB = (xs: number[] | undefined) => xs?.map((x) => x / MiB);
  const rows: Row[] = [
    ...scenarioRows(list, measurements),
    makeRow('upload-memory.peakMiB', `Peak RSS during a ${sizeLabel(settings.bigBlobBytes)} upload (monolithic)`, 'MiB', 'lower', {
      berth: toMiB(uploadMemory.berth && [uploadMemory.berth.peakRssBytes]),
      distribution: toMiB(uploadMemory.distribution && [uploadMemory.distribution.peakRssBytes]),
    }),
    makeRow('upload-memory.anonMiB', 'Peak anonymous RSS during that upload (RSS less file-backed pages, polled every 50 ms)', 'MiB', 'lower', {
      berth: toMiB(uploadMemory.berth && [uploadMemory.berth.peakAnonBytes]),
      distribution: toMiB(uploadMemory.distribution && [uploadMemory.distribution.peakAnonBytes]),
    }),
    makeRow('upload-memory.startMiB', 'RSS just before that upload', 'MiB', 'lower', {
      berth: toMiB(uploadMemory.berth && [uploadMemory.berth.startRssBytes]),
      distribution: toMiB(uploadMemory.distribution && [uploadMemory.distribution.startRssBytes]),
    }),
    makeRow('upload-memory.mbps', `${sizeLabel(settings.bigBlobBytes)} upload throughput (one run)`, 'MB/s', 'higher', {
      berth: uploadMemory.berth && [uploadMemory.berth.mbps],
      distribution: uploadMemory.distribution && [uploadMemory.distribution.mbps],
    }),
    makeRow('peak-rss.peakMiB', 'Peak RSS over a repetition (all of the above)', 'MiB', 'lower', {
      berth: toMiB(peakRss.berth),
      distribution: toMiB(peakRss.distribution),
      nginx: toMiB(peakRss.nginx),
    }),
  ];
  const targets = checkTargets(rows);
  const finishedAt = new Date();
  const loadAfter = os.loadavg();

  await mkdir(resultsDir, { recursive: true });
  const resultFile = path.join(resultsDir, `${startedAt.toISOString().replace(/[:.]/g, '-')}${settings.isQuick ? '-quick' : ''}.json`);
  await writeFile(resultFile, JSON.stringify({
    startedAt: startedAt.toISOString(),
    finishedAt: finishedAt.toISOString(),
    settings,
    machine,
    loadAverage: { before: loadBefore, after: loadAfter },
    rows,
    targets,
    uploadMemory,
    peakRssBytes: peakRss,
    measurements,
    failures,
  }, null, 2) + '\n');

  const minutes = ((finishedAt.getTime() - startedAt.getTime()) / 60_000).toFixed(1);
  const report = [
    `## Berth benchmark, ${startedAt.toISOString().slice(0, 16).replace('T', ' ')} UTC (${settings.isQuick ? 'quick' : 'full'}, ${settings.reps} rep${settings.reps > 1 ? 's' : ''}, ${minutes} min)`,
    '',
    `Machine: ${machine.cpus} CPUs (${machine.cpuModel}), ${machine.memoryGiB} GiB, Linux ${machine.kernel}. Node ${machine.node}; ${machine.distribution}; ${machine.nginx}; ${machine.wrk}; ${machine.ab}; ${machine.curl}. Berth ${machine.berth}.`,
    `Load average before ${loadBefore.map((x) => x.toFixed(2)).join(' ')}, after ${loadAfter.map((x) => x.toFixed(2)).join(' ')}.`,
    '',
    'Medians over the repetitions. Ratios are Berth divided by the other server, whatever the direction of "better".',
    '',
    markdownTable(rows),
    '',
    '### Targets',
    '',
    targetsTable(targets),
    '',
    '### Every repetition, in order',
    '',
    samplesList(rows),
    '',
    '### Server CPU per scenario (median seconds of user+system CPU)',
    '',
    cpuTable(list, measurements),
    '',
    failures.length > 0 ? `### Failures\n\n${failures.map((f) => `- rep ${f.rep} ${f.scenario} ${f.server}: ${f.error}`).join('\n')}\n` : '',
    `Results: ${path.relative(repoRoot, resultFile)}`,
    '',
  ].join('\n');
  process.stdout.write(report);
  if (failures.length > 0) process.exitCode = 1;
}

await main();
