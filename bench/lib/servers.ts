import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { processTree } from './proc.ts';

export type ServerName = 'berth' | 'distribution' | 'nginx';

export const SERVER_LABELS: Record<ServerName, string> = { berth: 'Berth', distribution: 'Distribution', nginx: 'nginx' };

export interface BenchServer {
  name: ServerName;
  baseUrl: string;
  /** The process whose tree is measured (nginx: the master; its workers are children). */
  pid: number;
  /** Only for nginx: the document root that plays the registry's storage. */
  staticRoot?: string;
  /** The Authorization header value every request sends; only Berth asks for credentials. */
  authorization?: string;
  stop(): Promise<void>;
}

export const DISTRIBUTION_BIN = '/usr/bin/docker-registry';
export const NGINX_BIN = '/usr/sbin/nginx';

const STARTUP_DEADLINE_MS = 30_000;
const STOP_DEADLINE_MS = 15_000;

/** Every child this process started, so a crash or Ctrl-C still stops them (by pid). */
const started = new Set<ChildProcess>();
process.on('exit', () => {
  for (const child of started) {
    if (child.exitCode !== null || child.signalCode !== null || child.pid === undefined) continue;
    // The whole tree: nginx workers outlive a killed master.
    for (const pid of processTree(child.pid).reverse()) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
  }
});

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as net.AddressInfo;
      s.close(() => resolve(port));
    });
  });
}

export function launch(command: string, args: string[], options: { cwd: string; env?: NodeJS.ProcessEnv; logFile: string }): ChildProcess {
  const child = spawn(command, args, { cwd: options.cwd, env: options.env ?? process.env, stdio: ['ignore', 'pipe', 'pipe'] });
  started.add(child);
  child.once('exit', () => started.delete(child));
  const log = createWriteStream(options.logFile);
  child.stderr!.pipe(log);
  return child;
}

function exited(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => child.once('exit', () => resolve()));
}

export async function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), STOP_DEADLINE_MS);
  await exited(child);
  clearTimeout(timer);
}

/** Polls `url` until any HTTP response arrives, or fails after the deadline. */
export async function waitForHttp(url: string, child: ChildProcess, name: string): Promise<void> {
  const deadline = Date.now() + STARTUP_DEADLINE_MS;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`${name} exited during startup with code ${child.exitCode}`);
    const ok = await new Promise<boolean>((resolve) => {
      const req = http.get(url, { agent: false }, (res) => {
        res.resume();
        resolve(res.statusCode !== undefined);
      });
      req.on('error', () => resolve(false));
    });
    if (ok) return;
    if (Date.now() > deadline) throw new Error(`${name} did not answer on ${url} within ${STARTUP_DEADLINE_MS} ms`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/**
 * The administrator a fresh Berth store is bootstrapped with (BERTH_BOOTSTRAP_*). Its access key
 * goes straight into HTTP Basic, as a robot account's would: one header, no token round trip.
 */
export const BERTH_BENCH_ADMIN = {
  accountId: '123456789012',
  accessKeyId: 'AKIABERTHBENCHADMIN1',
  secretAccessKey: 'berth-bench-admin-secret-do-not-use',
} as const;

/**
 * Berth with its embedded stores (SQLite metadata, filesystem blobs) in `dir`. At log level warn
 * (no per-request lines, as for the others) Berth does not log "listening", so readiness is
 * polled on /healthz, which needs no credentials.
 */
export async function startBerth(dir: string, repoRoot: string, options: { nodeArgs?: string[] } = {}): Promise<BenchServer> {
  await mkdir(dir, { recursive: true });
  const port = await freePort();
  const child = launch(process.execPath, [...(options.nodeArgs ?? []), 'src/main.ts', '--listen', `127.0.0.1:${port}`, '--data-dir', path.join(dir, 'data')], {
    cwd: repoRoot,
    env: {
      ...process.env,
      BERTH_LOG_LEVEL: 'warn',
      // Distribution creates repositories on push; so does Berth here, so both run the same requests.
      BERTH_REPOSITORIES_CREATE_ON_PUSH: 'true',
      BERTH_BOOTSTRAP_ACCOUNT_ID: BERTH_BENCH_ADMIN.accountId,
      BERTH_BOOTSTRAP_ACCESS_KEY_ID: BERTH_BENCH_ADMIN.accessKeyId,
      BERTH_BOOTSTRAP_SECRET_ACCESS_KEY: BERTH_BENCH_ADMIN.secretAccessKey,
    },
    logFile: path.join(dir, 'stderr.log'),
  });
  child.stdout!.pipe(createWriteStream(path.join(dir, 'stdout.log')));
  const baseUrl = `http://127.0.0.1:${port}`;
  await waitForHttp(`${baseUrl}/healthz`, child, 'Berth');
  const authorization = `Basic ${Buffer.from(`${BERTH_BENCH_ADMIN.accessKeyId}:${BERTH_BENCH_ADMIN.secretAccessKey}`).toString('base64')}`;
  return { name: 'berth', baseUrl, pid: child.pid!, authorization, stop: () => stopChild(child) };
}

/**
 * CNCF Distribution 2.8 on the filesystem driver, configured as its sample config is (in-memory
 * blob descriptor cache), with access logs off as Berth's are at level warn. With
 * `proxyRemoteUrl` it runs as a pull-through cache of that registry (`proxy.remoteurl`,
 * anonymous): it then refuses pushes, and serves pulls without credentials.
 */
export async function startDistribution(dir: string, options: { proxyRemoteUrl?: string } = {}): Promise<BenchServer> {
  await mkdir(dir, { recursive: true });
  const port = await freePort();
  const config = [
    'version: 0.1',
    'log:',
    '  level: error',
    '  accesslog:',
    '    disabled: true',
    'storage:',
    '  filesystem:',
    `    rootdirectory: ${path.join(dir, 'data')}`,
    '  delete:',
    '    enabled: true',
    '  cache:',
    '    blobdescriptor: inmemory',
    '  maintenance:',
    '    uploadpurging:',
    '      enabled: false',
    'http:',
    `  addr: 127.0.0.1:${port}`,
    '  secret: berth-bench-only',
    ...(options.proxyRemoteUrl === undefined ? [] : ['proxy:', `  remoteurl: ${options.proxyRemoteUrl}`]),
    '',
  ].join('\n');
  const configFile = path.join(dir, 'config.yml');
  await writeFile(configFile, config);
  const child = launch(DISTRIBUTION_BIN, ['serve', configFile], { cwd: dir, logFile: path.join(dir, 'stderr.log') });
  child.stdout!.pipe(createWriteStream(path.join(dir, 'stdout.log')));
  const baseUrl = `http://127.0.0.1:${port}`;
  await waitForHttp(`${baseUrl}/v2/`, child, 'Distribution');
  return { name: 'distribution', baseUrl, pid: child.pid!, stop: () => stopChild(child) };
}

/**
 * nginx serving a document root laid out like the registry's URL space, so the same paths
 * (/v2/<repo>/blobs/<digest>, /v2/<repo>/manifests/<reference>) return the same bytes. One
 * worker per core, sendfile on, no access log: a plain static-file deployment. PUT under /put/
 * stores a file, for the push benchmark.
 */
export async function startNginx(dir: string, manifestMediaType: string): Promise<BenchServer> {
  const root = path.join(dir, 'www');
  await mkdir(root, { recursive: true });
  await mkdir(path.join(dir, 'temp'), { recursive: true });
  const port = await freePort();
  const t = path.join(dir, 'temp');
  // Run as root, nginx would drop its workers to "nobody", who cannot read a private temp dir.
  const user = process.getuid?.() === 0 ? `user ${os.userInfo().username};` : '';
  const config = `
daemon off;
${user}
worker_processes auto;
pid ${dir}/nginx.pid;
error_log ${dir}/error.log error;
events { worker_connections 1024; }
http {
  access_log off;
  sendfile on;
  tcp_nopush on;
  keepalive_timeout 65;
  # wrk holds each connection for the whole run, as it does with the registries.
  keepalive_requests 100000000;
  client_body_temp_path ${t}/body;
  proxy_temp_path ${t}/proxy;
  fastcgi_temp_path ${t}/fastcgi;
  uwsgi_temp_path ${t}/uwsgi;
  scgi_temp_path ${t}/scgi;
  types { }
  default_type application/octet-stream;
  server {
    listen 127.0.0.1:${port};
    root ${root};
    location ~ /manifests/ { default_type ${manifestMediaType}; }
    # The push benchmark's reference: PUT writes the body to a temp file and renames it into
    # place (WebDAV), no hashing, no fsync; what the disk and the HTTP stack alone allow.
    location /put/ {
      dav_methods PUT;
      create_full_put_path on;
      client_max_body_size 0;
      client_body_buffer_size 1m;
    }
  }
}
`;
  const configFile = path.join(dir, 'nginx.conf');
  await writeFile(configFile, config);
  const child = launch(NGINX_BIN, ['-p', dir, '-c', configFile, '-e', path.join(dir, 'error.log')], { cwd: dir, logFile: path.join(dir, 'stderr.log') });
  child.stdout!.resume();
  const baseUrl = `http://127.0.0.1:${port}`;
  await waitForHttp(`${baseUrl}/`, child, 'nginx');
  return { name: 'nginx', baseUrl, pid: child.pid!, staticRoot: root, stop: () => stopChild(child) };
}
