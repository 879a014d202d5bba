import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { ADMIN_BOOTSTRAP_ENV } from './auth.ts';
import { backend, freshScaleoutStores, type StoreSet } from './backend.ts';

export const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');

export interface StartOptions {
  /** Reuse a data directory (e.g. to restart after a crash); by default a fresh temp dir. */
  dataDir?: string;
  /** Extra command-line flags. */
  args?: string[];
  /**
   * Extra environment variables (BERTH_*). The BERTH_BOOTSTRAP_* variables default to the test
   * administrator (ADMIN in auth.ts), and BERTH_REPOSITORIES_CREATE_ON_PUSH to `true` (see
   * TEST_DEFAULTS); set one here to override it.
   */
  env?: Record<string, string>;
}

/**
 * What every test server runs with unless `env` says otherwise. The data-plane tests push to fresh
 * repository names without creating them first, as Distribution allows; Berth's default is ECR's
 * (repositories are explicit), so those tests opt into create-on-push. Tests of explicit
 * repositories and creation templates pass `BERTH_REPOSITORIES_CREATE_ON_PUSH: 'false'`.
 */
const TEST_DEFAULTS: Readonly<Record<string, string>> = {
  BERTH_REPOSITORIES_CREATE_ON_PUSH: 'true',
  // Figures the tests read right after a push are fresh, not a minute old (cache.figuresSeconds).
  BERTH_CACHE_FIGURES_SECONDS: '0',
};

export interface TestServer {
  /** e.g. http://127.0.0.1:41234 */
  baseUrl: string;
  port: number;
  dataDir: string;
  /**
   * BERTH_* variables naming the stores the server runs on, when they are not the data
   * directory's (the scale-out backend): give them to `berth` commands run against it.
   */
  storeEnv: Record<string, string>;
  process: ChildProcess;
  /** Every log line the server wrote, parsed. */
  logs: Record<string, unknown>[];
  /** SIGTERM and wait; removes the data dir if startServer created it. */
  close(): Promise<void>;
  /** Kill with the signal (SIGKILL by default) and wait; keeps the data dir. */
  kill(signal?: NodeJS.Signals): Promise<void>;
}

/**
 * On the scale-out backend (backend.ts), the PostgreSQL schema and S3 prefix of the server that
 * uses `dataDir`: fresh ones, remembered in the data directory so that a server restarted on
 * it finds its stores again. Undefined on the embedded backend, and when the test chose its
 * own metadata store.
 */
async function scaleoutStoresFor(dataDir: string, env: Record<string, string> | undefined): Promise<StoreSet | undefined> {
  if (backend !== 'scaleout' || env?.['BERTH_METADATA_URL'] !== undefined || env?.['BERTH_BLOB_URL'] !== undefined) return undefined;
  const file = path.join(dataDir, 'test-stores.json');
  try {
    const saved = JSON.parse(await readFile(file, 'utf8')) as { env: Record<string, string> };
    return { env: saved.env, drop: async () => {} };
  } catch {
    const stores = await freshScaleoutStores();
    // A data directory the test named but did not make yet: the server would make it.
    await mkdir(dataDir, { recursive: true });
    await writeFile(file, JSON.stringify({ env: stores.env }));
    return stores;
  }
}

/**
 * Starts the real server (`node src/main.ts`) as a child process on an ephemeral port on
 * 127.0.0.1 and resolves once it logs that it listens. A fresh store is bootstrapped with the
 * test administrator, so `authedFetch` and the helpers in http.ts work against it as they are.
 */
export async function startServer(options: StartOptions = {}): Promise<TestServer> {
  const ownsDir = options.dataDir === undefined;
  const dataDir = options.dataDir ?? (await mkdtemp(path.join(tmpdir(), 'berth-test-')));
  const stores = await scaleoutStoresFor(dataDir, options.env);
  const child = spawn(process.execPath, [path.join(repoRoot, 'src/main.ts'), '--listen', '127.0.0.1:0', '--data-dir', dataDir, ...(options.args ?? [])], {
    cwd: repoRoot,
    env: { ...process.env, BERTH_LOG_LEVEL: process.env['BERTH_LOG_LEVEL'] ?? 'info', ...ADMIN_BOOTSTRAP_ENV, ...TEST_DEFAULTS, ...stores?.env, ...options.env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const logs: Record<string, unknown>[] = [];
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`server did not start within 20 s; stderr: ${stderr}`)), 20_000);
    createInterface({ input: child.stdout! }).on('line', (line) => {
      try {
        const entry = JSON.parse(line) as Record<string, unknown>;
        logs.push(entry);
        if (entry['msg'] === 'listening') {
          clearTimeout(timer);
          resolve(entry['url'] as string);
        }
      } catch {
        // not a log line
      }
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`server exited with ${code} before listening; stderr: ${stderr}`));
    });
  });
  const port = Number(new URL(url).port);
  let stopped = false;
  const stop = async (signal: NodeJS.Signals) => {
    if (!stopped && child.exitCode === null && child.signalCode === null) child.kill(signal);
    stopped = true;
    await exited;
  };
  return {
    baseUrl: url,
    port,
    dataDir,
    storeEnv: { ...stores?.env },
    process: child,
    logs,
    async close() {
      await stop('SIGTERM');
      if (ownsDir) {
        await stores?.drop();
        await rm(dataDir, { recursive: true, force: true });
      }
    },
    async kill(signal: NodeJS.Signals = 'SIGKILL') {
      await stop(signal);
    },
  };
}

/**
 * Runs `bin/berth` (the offline admin command) on the server's stores (its data directory, and
 * on the scale-out backend its database and bucket); resolves what it printed. Rejects as
 * execFile does, with `code` and `stderr`, when it exits with an error.
 */
export async function runBerth(server: TestServer, args: string[]): Promise<string> {
  const { stdout } = await promisify(execFile)(path.join(repoRoot, 'bin', 'berth'), [...args, '--data-dir', server.dataDir], { cwd: repoRoot, env: { ...process.env, ...server.storeEnv } });
  return stdout;
}

/** runBerth, with its JSON output parsed (undefined when it printed nothing). */
export async function berth(server: TestServer, args: string[]): Promise<any> {
  const stdout = await runBerth(server, args);
  return stdout.trim() ? JSON.parse(stdout) : undefined;
}
