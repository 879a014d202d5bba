import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createWriteStream, readdirSync, readFileSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { processTree } from './proc.ts';
import { freePort } from './servers.ts';

/**
 * The backing services of a scale-out Berth, started with the project's own scripts
 * (scripts/services/): one PostgreSQL and one single-node Ceph with radosgw (a real S3 API), on
 * free ports of 127.0.0.1, every file under the given directory. Each is stopped by its own
 * stop script, which signals only the PIDs in its pid files. Should this process end without
 * that (an error, Ctrl-C), stopServicesNow() runs, from an exit hook or a signal handler: it
 * kills a start script still running and runs the stop script synchronously, then kills by PID
 * whatever is left.
 */

const SCRIPT_DEADLINE_MS = 180_000;

/** Synchronous stops of every service started or starting, by its directory. */
const emergencyStops = new Map<string, () => void>();

/** Stops every service not yet stopped, synchronously; call before removing their directories. */
export function stopServicesNow(): void {
  for (const [dir, stop] of emergencyStops) {
    emergencyStops.delete(dir);
    try {
      stop();
    } catch {
      // best effort: the process is ending
    }
  }
}
process.on('exit', stopServicesNow);

export interface Postgres {
  /** postgres://USER:PASSWORD@127.0.0.1:PORT/DB for the application user (owner of the database). */
  url: string;
  /** The postmaster; its backends are its children. */
  pid: number;
  stop(): Promise<void>;
}

export interface CephS3 {
  endpoint: string;
  accessKeyId: string;
  secretAccessKey: string;
  region: string;
  /** radosgw, the OSD and the monitor, as their pid files name them. */
  pids: { rgw: number; osd: number; mon: number };
  /** The cluster's ceph.conf, for the `ceph` command. */
  conf: string;
  stop(): Promise<void>;
}

/** Runs a service script and resolves its KEY=VALUE output; its stderr goes to `logFile`. */
function runScript(script: string, args: string[], env: NodeJS.ProcessEnv, logFile: string, onSpawn?: (child: ChildProcess) => void): Promise<Record<string, string>> {
  return new Promise((resolve, reject) => {
    const child = spawn('bash', [script, ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    onSpawn?.(child);
    const log = createWriteStream(logFile, { flags: 'a' });
    child.stderr.pipe(log);
    let out = '';
    child.stdout.on('data', (c: Buffer) => (out += c.toString()));
    const timer = setTimeout(() => child.kill('SIGTERM'), SCRIPT_DEADLINE_MS);
    child.once('error', reject);
    child.once('exit', (code) => {
      clearTimeout(timer);
      if (code !== 0) {
        reject(new Error(`${path.basename(script)} ${args.join(' ')} exited ${code}; see ${logFile}`));
        return;
      }
      const vars: Record<string, string> = {};
      for (const line of out.split('\n')) {
        const i = line.indexOf('=');
        if (i > 0) vars[line.slice(0, i)] = line.slice(i + 1);
      }
      resolve(vars);
    });
  });
}

/** Whether `pid` runs (a zombie does not). */
export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  try {
    // A zombie is as good as gone: its parent (not us) has yet to reap it.
    return !/^\d+ \(.*\) Z/.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return false;
  }
}

async function waitGone(pids: number[], timeoutMs: number): Promise<number[]> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const alive = pids.filter(isAlive);
    if (alive.length === 0 || Date.now() > deadline) return alive;
    await new Promise((r) => setTimeout(r, 100));
  }
}

function killAll(pids: number[], signal: NodeJS.Signals): void {
  for (const pid of pids) {
    try {
      process.kill(pid, signal);
    } catch {
      // already gone
    }
  }
}

/**
 * Registers the emergency stop of the service in `dir`: SIGKILL to its start script (and that
 * script's children) if it still runs, then its stop script, synchronously, then SIGKILL to any
 * of `pids()` still alive.
 */
function guard(dir: string, stopScript: string, pids: () => number[]): { setStarter(child: ChildProcess): void } {
  let starter: ChildProcess | undefined;
  emergencyStops.set(dir, () => {
    if (starter?.pid !== undefined && starter.exitCode === null && starter.signalCode === null) killAll(processTree(starter.pid).reverse(), 'SIGKILL');
    spawnSync('bash', [stopScript, dir, '--purge'], { stdio: 'ignore', timeout: 60_000 });
    killAll(pids().filter(isAlive), 'SIGKILL');
  });
  return { setStarter: (child) => (starter = child) };
}

/**
 * Stops a service by its script, then checks that its PIDs are gone, killing any left by PID.
 * Idempotent; the emergency stop is dropped once the service is down.
 */
function stopper(dir: string, run: () => Promise<unknown>, pids: () => number[]): () => Promise<void> {
  let stopping: Promise<void> | undefined;
  return () => {
    stopping ??= (async () => {
      try {
        await run();
      } finally {
        const left = await waitGone(pids(), 15_000);
        killAll(left, 'SIGKILL');
        await waitGone(left, 5_000);
        emergencyStops.delete(dir);
      }
    })();
    return stopping;
  };
}

/** PostgreSQL by scripts/services/postgres-start.sh, in `dir` (which must not exist or be empty). */
export async function startPostgres(repoRoot: string, dir: string): Promise<Postgres> {
  const start = path.join(repoRoot, 'scripts/services/postgres-start.sh');
  const stop = path.join(repoRoot, 'scripts/services/postgres-stop.sh');
  await mkdir(path.dirname(dir), { recursive: true });
  const logFile = `${dir}.log`;
  let lastError: unknown;
  // A port found free can be taken before PostgreSQL binds it: try another then.
  for (let attempt = 0; attempt < 3; attempt++) {
    const port = await freePort();
    let pid = 0;
    const guarded = guard(dir, stop, () => (pid > 0 ? [pid] : []));
    try {
      const env = { ...process.env, PG_PORT: String(port), PG_USER: 'berth', PG_DB: 'berth', PG_PASSWORD: 'berth-bench' };
      const vars = await runScript(start, [dir], env, logFile, guarded.setStarter);
      pid = Number(vars['PGPID']);
      if (!vars['DATABASE_URL'] || !Number.isSafeInteger(pid)) throw new Error(`postgres-start.sh printed no DATABASE_URL or PGPID; see ${logFile}`);
      return { url: vars['DATABASE_URL'], pid, stop: stopper(dir, () => runScript(stop, [dir, '--purge'], process.env, logFile), () => [pid]) };
    } catch (err) {
      lastError = err;
      await runScript(stop, [dir, '--purge'], process.env, logFile).catch(() => undefined);
      emergencyStops.delete(dir);
    }
  }
  throw lastError;
}

/** The PIDs in the pid files of a Ceph started in `dir`, by daemon. */
function cephPids(dir: string): { rgw: number; osd: number; mon: number } {
  const out = { rgw: 0, osd: 0, mon: 0 };
  try {
    for (const f of readdirSync(path.join(dir, 'run'))) {
      if (!f.endsWith('.pid')) continue;
      const pid = Number(readFileSync(path.join(dir, 'run', f), 'utf8').trim());
      if (f.startsWith('client.rgw')) out.rgw = pid;
      else if (f.startsWith('osd.')) out.osd = pid;
      else if (f.startsWith('mon.')) out.mon = pid;
    }
  } catch {
    // not started
  }
  return out;
}

/**
 * Ceph with radosgw by scripts/services/ceph-s3-start.sh in `dir`: memstore, so objects live in
 * RAM up to `osdSizeGiB` (writes hang, rather than fail, near a full OSD: size it with room).
 */
export async function startCeph(repoRoot: string, dir: string, options: { osdSizeGiB: number }): Promise<CephS3> {
  const start = path.join(repoRoot, 'scripts/services/ceph-s3-start.sh');
  const stop = path.join(repoRoot, 'scripts/services/ceph-s3-stop.sh');
  await mkdir(path.dirname(dir), { recursive: true });
  const logFile = `${dir}.log`;
  let lastError: unknown;
  for (let attempt = 0; attempt < 3; attempt++) {
    // The OSD takes the first free ports of its range; a random range below the ephemeral
    // ports keeps clear of freePort()'s and of other instances' (as test/support/s3.ts does).
    const osdPortMin = 20_000 + 40 * Math.floor(Math.random() * 200);
    const env = {
      ...process.env,
      RGW_PORT: String(await freePort()),
      MON_PORT: String(await freePort()),
      OSD_PORT_MIN: String(osdPortMin),
      OSD_PORT_MAX: String(osdPortMin + 39),
      CEPH_OBJECTSTORE: 'memstore',
      CEPH_OSD_SIZE_GB: String(options.osdSizeGiB),
      START_TIMEOUT: '90',
    };
    let pids = { rgw: 0, osd: 0, mon: 0 };
    const all = () => Object.values(pids).filter((p) => p > 0);
    const guarded = guard(dir, stop, () => all());
    try {
      const vars = await runScript(start, [dir], env, logFile, guarded.setStarter);
      pids = cephPids(dir);
      return {
        endpoint: vars['S3_ENDPOINT']!,
        accessKeyId: vars['S3_ACCESS_KEY']!,
        secretAccessKey: vars['S3_SECRET_KEY']!,
        region: vars['S3_REGION'] ?? 'us-east-1',
        pids,
        conf: vars['CEPH_CONF']!,
        stop: stopper(dir, () => runScript(stop, [dir, '--purge'], process.env, logFile), all),
      };
    } catch (err) {
      lastError = err;
      await runScript(stop, [dir, '--purge'], process.env, logFile).catch(() => undefined);
      emergencyStops.delete(dir);
    }
  }
  throw lastError;
}

/**
 * What the OSD holds and can hold, in bytes, from its own counters (perf dump over its admin
 * socket: `ceph df` needs a manager, which this cluster has not). memstore keeps all of it in
 * RAM. The counters lag by a few seconds, and radosgw frees the tails of deleted objects only
 * in its garbage collection, a minute or two later.
 */
export async function cephUsage(ceph: CephS3): Promise<{ usedBytes: number; totalBytes: number }> {
  const runDir = path.join(path.dirname(ceph.conf), 'run');
  const socket = readdirSync(runDir).find((f) => /^osd\.\d+\.asok$/.test(f));
  if (!socket) throw new Error(`no OSD admin socket in ${runDir}`);
  const out = await new Promise<string>((resolve, reject) => {
    const child = spawn('ceph', ['--admin-daemon', path.join(runDir, socket), 'perf', 'dump'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let text = '';
    child.stdout.on('data', (c: Buffer) => (text += c.toString()));
    child.stderr.resume();
    child.once('error', reject);
    child.once('exit', (code) => (code === 0 ? resolve(text) : reject(new Error(`ceph perf dump exited ${code}`))));
  });
  const osd = (JSON.parse(out) as { osd: { stat_bytes: number; stat_bytes_used: number } }).osd;
  return { usedBytes: osd.stat_bytes_used, totalBytes: osd.stat_bytes };
}
