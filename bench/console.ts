/**
 * The web console at scale (issue 19: "usable at 10,000 repositories and 10,000 images in one
 * repository ... a page is ready in well under a second"): the metadata of bench/scale.ts at
 * full size (1,000 repositories, 100,000 manifests, `platform/monorepo` with 10,000 images)
 * plus 9,000 more repositories, 10,000 in all, written straight into a SQLite store; then the real
 * server started on it, a console sign-in over HTTP, and each main page fetched as a browser
 * would (cookie and all), timed from request to the last byte of HTML. Also the bytes of
 * JavaScript and CSS a page downloads. See docs/benchmarks.md, "Web console".
 *
 *   node bench/console.ts [--runs N] [--work-dir DIR] [--keep-data]
 *
 * Progress goes to stderr, the markdown report to stdout, the figures to
 * bench/results/<time>-console.json.
 */
import { spawn, spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { DatabaseSync } from 'node:sqlite';
import { parseArgs } from 'node:util';
import { gzipSync } from 'node:zlib';
import { openMetaStore } from '../src/store/open.ts';
import { numberOption } from './lib/args.ts';
import { formatNumber } from './lib/report.ts';
import { loadSqlite } from './lib/scale-data.ts';
import { BERTH_BENCH_ADMIN, freePort, waitForHttp } from './lib/servers.ts';
import { benchWorkDir } from './lib/work-dir.ts';

const repoRoot = path.resolve(import.meta.dirname, '..');
const node = process.execPath;
const PASSWORD = 'Bench-Console-Password-1';
const EXTRA_REPOSITORIES = 9_000;

const log = (message: string) => process.stderr.write(`[console ${new Date().toISOString().slice(11, 19)}] ${message}\n`);

const { values } = parseArgs({ options: { runs: { type: 'string' }, 'work-dir': { type: 'string' }, 'keep-data': { type: 'boolean' } } });
const runs = numberOption('--runs', values.runs, 10, { min: 1, isWhole: true });
const { work, cleanUp } = await benchWorkDir(values['work-dir'] ?? os.tmpdir(), 'berth-console-bench-', { keep: values['keep-data'] === true, log });

interface PageFigure {
  page: string;
  path: string;
  medianMs: number;
  maxMs: number;
  htmlBytes: number;
}

/** 9,000 more repositories (empty, as many are), after the ones the scale data made. */
function addRepositories(file: string, accountId: string, nowMs: number): void {
  const db = new DatabaseSync(file);
  try {
    const next = Number((db.prepare('select max(id) as id from repositories').get() as { id: number }).id) + 1;
    const insert = db.prepare('insert into repositories (id, account_id, name, created_at) values (?, ?, ?, ?)');
    db.exec('begin');
    for (let i = 0; i < EXTRA_REPOSITORIES; i++) insert.run(next + i, accountId, `apps-${String(i % 90).padStart(2, '0')}/app-${String(i).padStart(5, '0')}`, nowMs - i * 60_000);
    db.exec('commit');
  } finally {
    db.close();
  }
}

async function main(): Promise<void> {
  const metadataFile = path.join(work, 'metadata.db');
  const metadataUrl = `sqlite:${metadataFile}`;
  await mkdir(path.join(work, 'blobs'), { recursive: true });
  await (await openMetaStore(metadataUrl)).close();
  const nowMs = Date.now();
  log('writing 100,000 manifests in 1,000 repositories');
  const loaded = await loadSqlite(metadataFile, 1, BERTH_BENCH_ADMIN.accountId, nowMs);
  addRepositories(metadataFile, BERTH_BENCH_ADMIN.accountId, nowMs);
  const repositories = loaded.shape.repositories + EXTRA_REPOSITORIES;
  log(`${repositories} repositories, ${loaded.shape.bigRepositoryImages} images in ${loaded.shape.bigRepository}`);

  const port = await freePort();
  const env = {
    ...process.env,
    BERTH_LISTEN: `127.0.0.1:${port}`,
    BERTH_DATA_DIR: work,
    BERTH_METADATA_URL: metadataUrl,
    BERTH_BLOB_URL: `file:${path.join(work, 'blobs')}`,
    BERTH_LOG_LEVEL: 'warn',
    BERTH_BOOTSTRAP_ACCOUNT_ID: BERTH_BENCH_ADMIN.accountId,
    BERTH_BOOTSTRAP_ACCESS_KEY_ID: BERTH_BENCH_ADMIN.accessKeyId,
    BERTH_BOOTSTRAP_SECRET_ACCESS_KEY: BERTH_BENCH_ADMIN.secretAccessKey,
  };
  const server = spawn(node, [path.join(repoRoot, 'src/main.ts')], { env, stdio: ['ignore', 'ignore', 'inherit'] });
  try {
    const base = `http://127.0.0.1:${port}`;
    await waitForHttp(`${base}/healthz`, server, 'Berth');
    const set = spawnSync(node, [path.join(repoRoot, 'src/cli/main.ts'), 'user', 'password', '--user', 'admin', '--password-stdin'], { env, input: PASSWORD, encoding: 'utf8' });
    if (set.status !== 0) throw new Error(`berth user password failed: ${set.stderr}`);

    // Sign in as a browser does: the form's token and cookie, then the session cookie.
    const form = await fetch(`${base}/console/signin`);
    const signinCookie = (form.headers.get('set-cookie') ?? '').split(';')[0]!;
    const token = /name="token" value="([^"]+)"/.exec(await form.text())?.[1] ?? '';
    const signin = await fetch(`${base}/console/signin`, {
      method: 'POST',
      redirect: 'manual',
      headers: { cookie: signinCookie, 'content-type': 'application/x-www-form-urlencoded', origin: base },
      body: new URLSearchParams({ token, next: '/console/repositories', account: BERTH_BENCH_ADMIN.accountId, user: 'admin', password: PASSWORD }).toString(),
    });
    const cookie = (signin.headers.get('set-cookie') ?? '').split(';')[0]!;
    if (signin.status !== 303 || !cookie.startsWith('berth_session=')) throw new Error(`sign-in failed: ${signin.status}`);

    const get = async (p: string): Promise<{ ms: number; html: string }> => {
      const t0 = performance.now();
      const res = await fetch(`${base}${p}`, { headers: { cookie, accept: 'text/html' } });
      const html = await res.text();
      const ms = performance.now() - t0;
      if (res.status !== 200) throw new Error(`${p} answered ${res.status}: ${html.slice(0, 300)}`);
      return { ms, html };
    };
    // Before any other page: the account's figures are not totalled yet (cache.figuresSeconds).
    const cold = await get('/console/repositories?sort=sizeInBytes&order=DESC');
    log(`repositories by size, cold: ${cold.ms.toFixed(0)} ms`);
    const big = `/console/repos/${loaded.shape.bigRepository}`;
    const firstImages = await get(big);
    const nextImages = /href="([^"]+)" rel="next"/.exec(firstImages.html)?.[1]?.replace(/&amp;/g, '&');
    const digest = /href="\/console\/repos\/[^"]+\/-\/image\/([^"?]+)"/.exec(firstImages.html)?.[1];
    const pages: [string, string][] = [
      ['Repositories, first page (by name)', '/console/repositories'],
      ['Repositories by size, largest first', '/console/repositories?sort=sizeInBytes&order=DESC'],
      ['Repositories by image count', '/console/repositories?sort=imageCount&order=DESC'],
      ['Repositories, search', '/console/repositories?q=service-09'],
      ['Images of the 10,000-image repository', big],
      ...(nextImages ? ([['Images, second page', nextImages]] as [string, string][]) : []),
      ['Images, filtered by tag', `${big}?q=v1`],
      ...(digest ? ([['An image (overview)', `${big}/-/image/${digest}`], ['An image (layers and history)', `${big}/-/image/${digest}?tab=layers`]] as [string, string][]) : []),
      ['Lifecycle policy', `${big}/-/lifecycle`],
      ['Usage (10,000 repositories)', '/console/usage'],
      ['Audit log', '/console/audit'],
    ];
    const figures: PageFigure[] = [{ page: 'Repositories by size, first request after start (totals computed)', path: '/console/repositories?sort=sizeInBytes&order=DESC', medianMs: cold.ms, maxMs: cold.ms, htmlBytes: Buffer.byteLength(cold.html) }];
    for (const [page, p] of pages) {
      await get(p);
      await get(p);
      const times: number[] = [];
      let htmlBytes = 0;
      for (let i = 0; i < runs; i++) {
        const r = await get(p);
        times.push(r.ms);
        htmlBytes = Buffer.byteLength(r.html);
      }
      times.sort((a, b) => a - b);
      figures.push({ page, path: p, medianMs: times[Math.floor(times.length / 2)]!, maxMs: times.at(-1)!, htmlBytes });
      log(`${page}: ${times[Math.floor(times.length / 2)]!.toFixed(0)} ms`);
    }
    const assets = ['console.js', 'console.css', 'berth.svg'].map((name) => {
      const bytes = readFileSync(path.join(repoRoot, 'src/console/assets', name));
      return { name, bytes: bytes.length, gzipBytes: gzipSync(bytes, { level: 9 }).length };
    });

    const lines = [
      `Web console over ${formatNumber(repositories)} repositories and ${formatNumber(loaded.shape.manifests)} manifests (${formatNumber(loaded.shape.bigRepositoryImages)} in one repository), SQLite, ${runs} runs per page after 2 warm-ups (the first row: one request):`,
      '',
      '| Page | Median | Slowest | HTML |',
      '| --- | ---: | ---: | ---: |',
      ...figures.map((f) => `| ${f.page} | ${f.medianMs.toFixed(0)} ms | ${f.maxMs.toFixed(0)} ms | ${(f.htmlBytes / 1024).toFixed(0)} KiB |`),
      '',
      '| Asset | Bytes | gzip -9 |',
      '| --- | ---: | ---: |',
      ...assets.map((a) => `| ${a.name} | ${formatNumber(a.bytes)} | ${formatNumber(a.gzipBytes)} |`),
    ];
    process.stdout.write(`${lines.join('\n')}\n`);
    const resultsDir = path.join(import.meta.dirname, 'results');
    await mkdir(resultsDir, { recursive: true });
    await writeFile(path.join(resultsDir, `${new Date().toISOString().replace(/[:.]/g, '-')}-console.json`), JSON.stringify({ repositories, manifests: loaded.shape.manifests, figures, assets }, null, 2));
  } finally {
    server.kill('SIGTERM');
    await new Promise((resolve) => server.once('exit', resolve));
    cleanUp();
  }
}

await main();
