import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { closeSync, existsSync, openSync, readFileSync } from 'node:fs';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { tar, type RealImage, type RealIndex, type TarEntry } from './layout.ts';
import { MT } from './oci.ts';
import { hasTool, run, type RunOptions, type RunResult } from './tools.ts';

/**
 * A private containerd for the tests of one file, and the `ctr` client that drives it, as ECS and
 * EKS nodes pull. Everything lives under one temp directory: the gRPC socket (--address), root,
 * state, the opt plugin's directory and the config, so that it never meets the machine's own
 * containerd (/run/containerd, /var/lib/containerd) and several test files can run at once.
 *
 * Only the `native` snapshotter is loaded: overlayfs (and the others) would leave mounts behind
 * if the daemon died, while native unpacks into plain directories. The CRI plugin is off: the
 * tests speak to containerd with ctr, as `crictl pull` would through CRI with the same resolver.
 *
 * The daemon is stopped by its PID (SIGTERM, then SIGKILL after a deadline), anything still
 * mounted under its directory is unmounted, and the directory removed.
 */

/** Why the tests that need `names` cannot run here, or false. Under CI a missing tool is no reason to skip (see assertTools). */
export function skipUnlessTools(...names: string[]): string | false {
  const missing = names.filter((n) => !hasTool(n));
  if (missing.length === 0 || process.env['CI']) return false;
  return `not installed: ${missing.join(', ')}`;
}

/** Throws when a tool is missing: in CI (.ci/run installs them all) that fails the tests instead of skipping them. */
export function assertTools(...names: string[]): void {
  const missing = names.filter((n) => !hasTool(n));
  if (missing.length > 0) throw new Error(`not installed: ${missing.join(', ')}; .ci/run installs them`);
}

/** Resolves once `child` has exited, or false when it is still running after `timeoutMs`. */
function exitWithin(child: ChildProcess, exited: Promise<void>, timeoutMs: number): Promise<boolean> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve(true);
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve(false), timeoutMs);
    void exited.then(() => {
      clearTimeout(timer);
      resolve(true);
    });
  });
}

export interface Daemon {
  pid: number;
  /** What the daemon wrote to stdout and stderr so far. */
  log(): string;
  /** Resolves when the daemon has exited. */
  exited: Promise<void>;
  /** SIGTERM, then SIGKILL if it has not exited within `graceMs`; resolves once it is gone. */
  stop(graceMs?: number): Promise<void>;
}

const running = new Set<ChildProcess>();
let exitHookInstalled = false;

/**
 * Starts `command` with its output in `logFile`. Should the test process die before a test's
 * `after` hook runs, the daemon is sent SIGTERM on the way out so that it does not outlive it.
 */
export function spawnDaemon(command: string, args: readonly string[], options: { logFile: string; env: NodeJS.ProcessEnv; cwd: string }): Daemon {
  const fd = openSync(options.logFile, 'a');
  let child: ChildProcess;
  try {
    child = spawn(command, args, { env: options.env, cwd: options.cwd, stdio: ['ignore', fd, fd] });
  } finally {
    closeSync(fd);
  }
  if (child.pid === undefined) throw new Error(`${command} did not start`);
  running.add(child);
  if (!exitHookInstalled) {
    exitHookInstalled = true;
    process.once('exit', () => {
      for (const c of running) c.kill('SIGTERM');
    });
  }
  const exited = new Promise<void>((resolve) => {
    child.once('exit', () => {
      running.delete(child);
      resolve();
    });
    child.once('error', () => {
      running.delete(child);
      resolve();
    });
  });
  return {
    pid: child.pid,
    log: () => {
      try {
        return readFileSync(options.logFile, 'utf8');
      } catch {
        return '';
      }
    },
    exited,
    async stop(graceMs = 30_000) {
      if (await exitWithin(child, exited, 0)) return;
      child.kill('SIGTERM');
      if (await exitWithin(child, exited, graceMs)) return;
      child.kill('SIGKILL');
      await exited;
    },
  };
}

/**
 * Polls `ready` until it resolves true, failing early (with the daemon's log) if the daemon
 * exits, and after `timeoutMs` otherwise.
 */
export async function waitForDaemon(daemon: Daemon, what: string, ready: () => Promise<boolean>, timeoutMs = 60_000): Promise<void> {
  let gone = false;
  void daemon.exited.then(() => (gone = true));
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (gone) throw new Error(`${what} exited before it was ready; its log:\n${daemon.log()}`);
    if (await ready()) return;
    if (Date.now() > deadline) throw new Error(`${what} was not ready within ${timeoutMs} ms; its log:\n${daemon.log()}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** Mount points at or under `dir`, deepest first (from /proc/self/mountinfo, whose paths escape spaces as \040). */
export function mountsUnder(dir: string): string[] {
  let info = '';
  try {
    info = readFileSync('/proc/self/mountinfo', 'utf8');
  } catch {
    return [];
  }
  const found = info
    .split('\n')
    .map((line) => line.split(' ')[4])
    .filter((p): p is string => p !== undefined)
    .map((p) => p.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8))))
    .filter((p) => p === dir || p.startsWith(`${dir}/`));
  return [...new Set(found)].sort((a, b) => b.length - a.length);
}

/** Unmounts whatever a daemon left mounted under `dir` (after a crash or a SIGKILL), then removes `dir`. */
export async function removeDaemonDir(dir: string): Promise<void> {
  for (let attempt = 0; attempt < 5; attempt++) {
    const mounts = mountsUnder(dir);
    if (mounts.length === 0) break;
    for (const m of mounts) await run('umount', [m], { allowFailure: true, timeoutMs: 30_000 });
  }
  const left = mountsUnder(dir);
  // A lazy unmount as a last resort: a busy mount must not survive the test either.
  for (const m of left) await run('umount', ['--lazy', m], { allowFailure: true, timeoutMs: 30_000 });
  await rm(dir, { recursive: true, force: true });
}

export interface TestContainerd {
  dir: string;
  /** The gRPC socket (`ctr --address`). */
  address: string;
  daemon: Daemon;
  /** `ctr --address ... --namespace berth-test ARGS`, with the native snapshotter. */
  ctr(args: readonly string[], options?: RunOptions): Promise<RunResult>;
  /** `ctr content get DIGEST`: the bytes containerd holds for a digest, or undefined when it has none. */
  contentGet(digest: string): Promise<Buffer | undefined>;
  /**
   * Writes `<dir>/certs.d/<hostPort>/hosts.toml` telling containerd to reach `hostPort` over
   * plain HTTP, and resolves the directory to pass as `--hosts-dir`.
   */
  plainHttpHostsDir(hostPort: string): Promise<string>;
  close(): Promise<void>;
}

const SNAPSHOTTERS_OFF = ['aufs', 'btrfs', 'devmapper', 'zfs', 'overlayfs'].map((s) => `io.containerd.snapshotter.v1.${s}`);

export async function startContainerd(): Promise<TestContainerd> {
  const dir = path.join(tmpdir(), `berth-containerd-${randomBytes(6).toString('hex')}`);
  await mkdir(dir, { mode: 0o700 });
  const p = (...parts: string[]) => path.join(dir, ...parts);
  for (const d of ['root', 'state', 'opt', 'tmp', 'home', 'certs.d']) await mkdir(p(d), { recursive: true, mode: 0o700 });
  const address = p('containerd.sock');
  await writeFile(
    p('config.toml'),
    [
      'version = 2',
      `root = "${p('root')}"`,
      `state = "${p('state')}"`,
      `disabled_plugins = ${JSON.stringify(['io.containerd.grpc.v1.cri', ...SNAPSHOTTERS_OFF])}`,
      '[grpc]',
      `  address = "${address}"`,
      '[ttrpc]',
      `  address = "${address}.ttrpc"`,
      '[plugins."io.containerd.internal.v1.opt"]',
      `  path = "${p('opt')}"`,
      '',
    ].join('\n'),
  );
  const env: NodeJS.ProcessEnv = {
    PATH: process.env['PATH'] ?? '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin',
    LANG: 'C.UTF-8',
    HOME: p('home'),
    TMPDIR: p('tmp'),
  };
  const daemon = spawnDaemon('containerd', ['--config', p('config.toml'), '--log-level', 'warn'], { logFile: p('containerd.log'), env, cwd: dir });
  const ctrEnv: NodeJS.ProcessEnv = { ...env, CONTAINERD_SNAPSHOTTER: 'native', CONTAINERD_NAMESPACE: 'berth-test' };
  // --connect-timeout bounds the dial only; a whole command is bounded by run()'s timeoutMs.
  const ctr = (args: readonly string[], options: RunOptions = {}) => run('ctr', ['--address', address, '--connect-timeout', '30s', ...args], { timeoutMs: 120_000, ...options, env: { ...ctrEnv, ...options.env } });
  try {
    await waitForDaemon(daemon, 'containerd', async () => existsSync(address) && (await ctr(['version'], { allowFailure: true, timeoutMs: 30_000 })).code === 0);
  } catch (err) {
    await daemon.stop();
    await removeDaemonDir(dir);
    throw err;
  }
  return {
    dir,
    address,
    daemon,
    ctr: (args, options) => ctr(['--namespace', 'berth-test', ...args], options),
    contentGet(digest) {
      // Layers are binary: run() would decode them as text.
      const args = ['--address', address, '--namespace', 'berth-test', 'content', 'get', digest];
      return new Promise((resolve, reject) => {
        execFile('ctr', args, { env: ctrEnv, encoding: 'buffer', maxBuffer: 256 * 1024 * 1024, timeout: 120_000 }, (err, stdout, stderr) => {
          if (!err) resolve(stdout);
          else if (/not found/.test(stderr.toString())) resolve(undefined);
          else reject(new Error(`ctr content get ${digest}: ${err.message}\n${stderr.toString()}`));
        });
      });
    },
    async plainHttpHostsDir(hostPort) {
      const hostDir = p('certs.d', hostPort);
      await mkdir(hostDir, { recursive: true });
      // containerd's hosts.toml (docs/hosts.md): the scheme of `server` and of each host says plain HTTP.
      await writeFile(path.join(hostDir, 'hosts.toml'), [`server = "http://${hostPort}"`, '', `[host."http://${hostPort}"]`, '  capabilities = ["pull", "resolve", "push"]', ''].join('\n'));
      return p('certs.d');
    },
    async close() {
      await daemon.stop();
      await removeDaemonDir(dir);
    },
  };
}

function isIndex(x: RealImage | RealIndex): x is RealIndex {
  return 'index' in x;
}

/**
 * An OCI image layout as one tar stream (what `ctr images import` and `docker load` read), holding
 * each image or index under its tag (org.opencontainers.image.ref.name).
 */
export function ociArchive(refs: Array<{ tag: string; content: RealImage | RealIndex }>): Buffer {
  const blobs = new Map<string, Buffer>();
  const manifests: unknown[] = [];
  for (const { tag, content } of refs) {
    for (const img of isIndex(content) ? content.images : [content]) {
      for (const b of [img.config, ...img.layers]) blobs.set(b.digest, b.bytes);
      blobs.set(img.digest, img.manifest);
    }
    const top = isIndex(content) ? { digest: content.digest, bytes: content.index } : { digest: content.digest, bytes: content.manifest };
    blobs.set(top.digest, top.bytes);
    manifests.push({ mediaType: content.mediaType, digest: top.digest, size: top.bytes.length, annotations: { 'org.opencontainers.image.ref.name': tag } });
  }
  const entries: TarEntry[] = [
    { name: 'oci-layout', content: JSON.stringify({ imageLayoutVersion: '1.0.0' }) },
    { name: 'index.json', content: JSON.stringify({ schemaVersion: 2, mediaType: MT.ociIndex, manifests }) },
    { name: 'blobs', type: 'dir' },
    { name: 'blobs/sha256', type: 'dir' },
    ...[...blobs].map(([digest, bytes]) => ({ name: `blobs/sha256/${digest.slice('sha256:'.length)}`, content: bytes })),
  ];
  return tar(entries);
}

/** One line of `ctr images ls`: NAME, TYPE (media type), DIGEST, SIZE, PLATFORMS, LABELS. */
export interface CtrImage {
  name: string;
  mediaType: string;
  digest: string;
  platforms: string[];
}

export function parseCtrImages(stdout: string): CtrImage[] {
  return stdout
    .split('\n')
    .slice(1)
    .filter((line) => line.trim())
    .map((line) => {
      // SIZE has a blank inside ("5.6 KiB"): PLATFORMS is the first column after it that looks like one.
      const cols = line.trim().split(/\s+/);
      const [name, mediaType, digest] = cols;
      const platforms = cols.find((c, i) => i > 3 && /^[a-z0-9]+\/[a-z0-9]+/.test(c)) ?? '';
      return { name: name!, mediaType: mediaType!, digest: digest!, platforms: platforms.split(',').filter(Boolean) };
    });
}
