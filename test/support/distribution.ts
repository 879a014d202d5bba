import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { connect, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { run } from './tools.ts';

/**
 * CNCF Distribution (Debian's docker-registry, 2.8) as a destination registry for tests: a real
 * OCI registry that is not Berth. Each one gets a temp directory (config, filesystem storage,
 * logs) and a free port of 127.0.0.1, and `stop()` takes it down by PID and removes the directory.
 */

export const DISTRIBUTION_BIN = '/usr/bin/docker-registry';

const STARTUP_DEADLINE_MS = 30_000;
const STOP_DEADLINE_MS = 15_000;

export interface DistributionOptions {
  /**
   * HTTP Basic auth from an htpasswd file (bcrypt, made with `htpasswd -nbB`). `true` makes up a
   * user name and password; give either to choose them.
   */
  auth?: boolean | { username?: string; password?: string };
  /** Serve HTTPS with this certificate and key (PEM files), e.g. from makeTestPki() in tls.ts. */
  tls?: { certFile: string; keyFile: string };
}

export interface TestDistribution {
  /** e.g. http://127.0.0.1:41234 (https:// with `tls`). */
  baseUrl: string;
  /** Set when started with `auth`. */
  username?: string;
  password?: string;
  pid: number;
  /** The temp directory: config.yml, data/ (the storage root), stderr.log. */
  dir: string;
  /** SIGTERM (SIGKILL after 15 s) by PID, wait for the exit, remove the directory. Idempotent. */
  stop(): Promise<void>;
}

/** Every Distribution this process started and has not stopped: killed by PID if the process exits first. */
const running = new Set<ChildProcess>();
process.on('exit', () => {
  for (const child of running) {
    if (child.pid === undefined || child.exitCode !== null || child.signalCode !== null) continue;
    try {
      process.kill(child.pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
});

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

function exited(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => child.once('exit', () => resolve()));
}

async function stopChild(child: ChildProcess): Promise<void> {
  if (child.pid === undefined || child.exitCode !== null || child.signalCode !== null) return;
  const pid = child.pid;
  const kill = (signal: NodeJS.Signals) => {
    try {
      process.kill(pid, signal);
    } catch {
      // exited meanwhile
    }
  };
  kill('SIGTERM');
  const timer = setTimeout(() => kill('SIGKILL'), STOP_DEADLINE_MS);
  await exited(child);
  clearTimeout(timer);
}

/**
 * Resolves once the port accepts connections: Distribution serves as soon as it listens, and a
 * bare TCP connection needs no credentials or certificate trust. Rejects when the process exits
 * or the deadline passes.
 */
async function waitUntilListening(port: number, child: ChildProcess, stderrFile: string): Promise<void> {
  const deadline = Date.now() + STARTUP_DEADLINE_MS;
  for (;;) {
    if (child.exitCode !== null || child.signalCode !== null) {
      const stderr = await readFile(stderrFile, 'utf8').catch(() => '');
      throw new Error(`docker-registry exited during startup (${child.exitCode ?? child.signalCode}); stderr:\n${stderr}`);
    }
    const listening = await new Promise<boolean>((resolve) => {
      const socket = connect({ host: '127.0.0.1', port }, () => {
        socket.destroy();
        resolve(true);
      });
      socket.on('error', () => resolve(false));
    });
    if (listening) return;
    if (Date.now() > deadline) throw new Error(`docker-registry did not listen on 127.0.0.1:${port} within ${STARTUP_DEADLINE_MS} ms`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

function configYaml(options: { dir: string; port: number; htpasswdFile: string | undefined; tls: DistributionOptions['tls'] }): string {
  const lines = [
    'version: 0.1',
    'log:',
    '  level: warn',
    '  accesslog:',
    '    disabled: true',
    'storage:',
    '  filesystem:',
    `    rootdirectory: ${path.join(options.dir, 'data')}`,
    '  delete:',
    '    enabled: true',
    '  maintenance:',
    '    uploadpurging:',
    '      enabled: false',
    'http:',
    `  addr: 127.0.0.1:${options.port}`,
    // Signs the upload state (`_state`) in Location URLs; any value will do for one run.
    `  secret: ${randomBytes(16).toString('hex')}`,
  ];
  if (options.tls) lines.push('  tls:', `    certificate: ${options.tls.certFile}`, `    key: ${options.tls.keyFile}`);
  if (options.htpasswdFile) lines.push('auth:', '  htpasswd:', '    realm: berth-test', `    path: ${options.htpasswdFile}`);
  return lines.join('\n') + '\n';
}

/**
 * Starts Distribution and resolves once /v2/ answers. With `auth`, every request needs HTTP Basic
 * credentials (a 401 with a `Basic realm=...` challenge otherwise). If the port found free is
 * taken before Distribution binds it, tries again on another.
 */
export async function startDistribution(options: DistributionOptions = {}): Promise<TestDistribution> {
  const dir = await mkdtemp(path.join(tmpdir(), 'berth-distribution-'));
  try {
    let credentials: { username: string; password: string } | undefined;
    let htpasswdFile: string | undefined;
    if (options.auth) {
      const chosen = options.auth === true ? {} : options.auth;
      credentials = { username: chosen.username ?? `replicator-${randomBytes(3).toString('hex')}`, password: chosen.password ?? randomBytes(12).toString('base64url') };
      // -B: bcrypt, the only hash Distribution's htpasswd accepts.
      const { stdout } = await run('htpasswd', ['-nbB', credentials.username, credentials.password], { timeoutMs: 30_000 });
      htpasswdFile = path.join(dir, 'htpasswd');
      await writeFile(htpasswdFile, stdout.trim() + '\n', { mode: 0o600 });
    }
    for (let attempt = 1; ; attempt++) {
      const port = await freePort();
      const configFile = path.join(dir, 'config.yml');
      await writeFile(configFile, configYaml({ dir, port, htpasswdFile, tls: options.tls }));
      const stderrFile = path.join(dir, 'stderr.log');
      const child = spawn(DISTRIBUTION_BIN, ['serve', configFile], { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] });
      running.add(child);
      child.once('exit', () => running.delete(child));
      child.stderr!.pipe(createWriteStream(stderrFile));
      const baseUrl = `${options.tls ? 'https' : 'http'}://127.0.0.1:${port}`;
      try {
        await waitUntilListening(port, child, stderrFile);
      } catch (err) {
        await stopChild(child);
        const addressTaken = /address already in use/.test(await readFile(stderrFile, 'utf8').catch(() => ''));
        if (addressTaken && attempt < 3) continue;
        throw err;
      }
      let stopped: Promise<void> | undefined;
      return {
        baseUrl,
        ...credentials,
        pid: child.pid!,
        dir,
        stop() {
          stopped ??= stopChild(child).then(() => rm(dir, { recursive: true, force: true }));
          return stopped;
        },
      };
    }
  } catch (err) {
    await rm(dir, { recursive: true, force: true });
    throw err;
  }
}
