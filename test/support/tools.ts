import { spawn } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { TestContext } from 'node:test';
import { ADMIN } from './auth.ts';

/**
 * skopeo and podman, each run inside a per-test sandbox of temp directories so that nothing
 * reads or writes the machine's global container state (/etc/containers, /var/lib/containers,
 * /run/libpod, ~/.config/containers) and tests can run in parallel:
 *
 * - registries.conf, policy.json, registries.d, containers.conf and storage.conf are written
 *   into the sandbox and passed by flag or by the CONTAINERS_* variables both tools read;
 * - HOME, XDG_RUNTIME_DIR, XDG_CONFIG_HOME, XDG_DATA_HOME and TMPDIR point into the sandbox,
 *   which also moves the auth file (REGISTRY_AUTH_FILE set explicitly all the same);
 * - credentials: the sandbox's auth.json (containers-auth.json(5)) starts empty, and
 *   `login(host)` writes an entry for a registry, the test administrator's by default, which
 *   both tools then send for every request to that host;
 * - podman gets its own --root/--runroot/--tmpdir with the vfs driver (no overlay mounts, no
 *   fuse), cgroupfs and no events log (no systemd here), and the CNI network backend, whose
 *   state lives in the sandbox (netavark keeps a fixed /run/containers/networks as root);
 * - as root, both tools keep their blob-info cache in /var/lib/containers/cache, which no
 *   flag or config moves (podman 4.3, skopeo 1.9), so they run with _CONTAINERS_ROOTLESS_UID
 *   set, the variable containers/image consults for its effective uid; the cache then goes to
 *   XDG_DATA_HOME inside the sandbox. Podman decides rootless mode by the real euid, so
 *   nothing else changes. That cache is also what makes the tools try cross-repository
 *   mounts, so each sandbox starts with none;
 * - the trust policy is the sandbox's policy.json (skopeo --policy, podman pull/push
 *   --signature-policy), whatever /etc/containers/policy.json says.
 */

export interface RunResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  durationMs: number;
}

export interface RunOptions {
  env?: NodeJS.ProcessEnv;
  /** Kill the tool after this long; the result then has signal SIGKILL. Default 120 s. */
  timeoutMs?: number;
  /** Resolve with a non-zero exit instead of rejecting. */
  allowFailure?: boolean;
  input?: string | Buffer;
}

/** Runs a command without a shell; rejects with its output when it fails (unless allowFailure). */
export function run(command: string, args: readonly string[], options: RunOptions = {}): Promise<RunResult> {
  const started = Date.now();
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { env: options.env ?? process.env, stdio: [options.input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    if (options.input !== undefined) {
      // A tool may exit without reading its input (openssl s_client refused by the server);
      // the exit status reports that, so a broken pipe is no error of its own.
      child.stdin!.on('error', (err: NodeJS.ErrnoException) => {
        if (err.code !== 'EPIPE') reject(err);
      });
      child.stdin!.end(options.input);
    }
    const timer = setTimeout(() => child.kill('SIGKILL'), options.timeoutMs ?? 120_000);
    child.once('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    child.once('close', (code, signal) => {
      clearTimeout(timer);
      const result = { code, signal, stdout, stderr, durationMs: Date.now() - started };
      if (code === 0 || options.allowFailure) resolve(result);
      else reject(new Error(`${command} ${args.join(' ')} exited with ${code ?? signal} after ${result.durationMs} ms\n--- stdout\n${stdout}\n--- stderr\n${stderr}`));
    });
  });
}

const availability = new Map<string, boolean>();

export function hasTool(name: string): boolean {
  let found = availability.get(name);
  if (found === undefined) {
    found = (process.env['PATH'] ?? '').split(path.delimiter).some((d) => {
      try {
        accessSync(path.join(d, name), constants.X_OK);
        return true;
      } catch {
        return false;
      }
    });
    availability.set(name, found);
  }
  return found;
}

/**
 * Skips the test when a tool is not installed, except in CI (CI=true), where a missing tool
 * fails the test: .ci/run installs every one of them. Returns whether the test may go on.
 */
export function requireTools(t: TestContext, ...names: string[]): boolean {
  const missing = names.filter((n) => !hasTool(n));
  if (missing.length === 0) return true;
  const why = `not installed: ${missing.join(', ')} (apt-get install ${missing.join(' ')})`;
  if (process.env['CI']) throw new Error(why);
  t.skip(why);
  return false;
}

export interface ToolSandbox {
  dir: string;
  env: NodeJS.ProcessEnv;
  /** `skopeo` with the sandbox's policy, registries.d and tmpdir. */
  skopeo(args: readonly string[], options?: RunOptions): Promise<RunResult>;
  /** `podman` with the sandbox's storage, runtime dirs and engine settings. */
  podman(args: readonly string[], options?: RunOptions): Promise<RunResult>;
  /** A fresh directory inside the sandbox. */
  mkdir(name: string): Promise<string>;
  /**
   * Stores credentials for `hostPort` (e.g. `127.0.0.1:41234`) in the sandbox's auth file, as
   * `podman login` would, replacing any earlier entry for that host. Call it once the server
   * has started, since only then is the port known.
   */
  login(hostPort: string, user?: string, password?: string): Promise<void>;
  close(): Promise<void>;
}

export async function toolSandbox(): Promise<ToolSandbox> {
  // Lowercase only: podman names an image pulled from oci:DIR after DIR, and image names
  // may not contain capitals.
  const dir = path.join(tmpdir(), `berth-tools-${randomBytes(6).toString('hex')}`);
  await mkdir(dir, { mode: 0o700 });
  const p = (...parts: string[]) => path.join(dir, ...parts);
  for (const d of ['home', 'run', 'tmp', 'registries.d', 'podman/root', 'podman/runroot', 'podman/tmp', 'podman/networks']) {
    await mkdir(p(d), { recursive: true, mode: 0o700 });
  }
  await writeFile(p('registries.conf'), 'unqualified-search-registries = []\nshort-name-mode = "disabled"\n');
  await writeFile(p('policy.json'), JSON.stringify({ default: [{ type: 'insecureAcceptAnything' }] }));
  await writeFile(p('auth.json'), '{"auths":{}}\n', { mode: 0o600 });
  await writeFile(p('storage.conf'), `[storage]\ndriver = "vfs"\nrunroot = "${p('podman/runroot')}"\ngraphroot = "${p('podman/root')}"\n`);
  await writeFile(
    p('containers.conf'),
    [
      '[engine]',
      'cgroup_manager = "cgroupfs"',
      'events_logger = "none"',
      `tmp_dir = "${p('podman/tmp')}"`,
      `static_dir = "${p('podman/root/libpod')}"`,
      `volume_path = "${p('podman/root/volumes')}"`,
      '[network]',
      'network_backend = "cni"',
      `network_config_dir = "${p('podman/networks')}"`,
      '',
    ].join('\n'),
  );
  const env: NodeJS.ProcessEnv = {
    PATH: process.env['PATH'] ?? '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin',
    LANG: 'C.UTF-8',
    HOME: p('home'),
    TMPDIR: p('tmp'),
    XDG_RUNTIME_DIR: p('run'),
    XDG_CONFIG_HOME: p('home', '.config'),
    XDG_DATA_HOME: p('home', '.local', 'share'),
    CONTAINERS_CONF: p('containers.conf'),
    CONTAINERS_REGISTRIES_CONF: p('registries.conf'),
    REGISTRIES_CONFIG_PATH: p('registries.conf'),
    CONTAINERS_STORAGE_CONF: p('storage.conf'),
    REGISTRY_AUTH_FILE: p('auth.json'),
    _CONTAINERS_ROOTLESS_UID: String(process.getuid?.() || 1000),
  };
  let counter = 0;
  const auths: Record<string, { auth: string }> = {};
  return {
    dir,
    env,
    skopeo(args, options = {}) {
      const global = ['--policy', p('policy.json'), '--registries.d', p('registries.d'), '--registries-conf', p('registries.conf'), '--tmpdir', p('tmp')];
      return run('skopeo', [...global, ...args], { ...options, env: { ...env, ...options.env } });
    },
    podman(args, options = {}) {
      const global = [
        '--root', p('podman/root'),
        '--runroot', p('podman/runroot'),
        '--tmpdir', p('podman/tmp'),
        '--storage-driver', 'vfs',
        '--cgroup-manager', 'cgroupfs',
        '--events-backend', 'none',
        '--log-level', 'error',
      ];
      const [command, ...rest] = args;
      const withPolicy = command === 'pull' || command === 'push' ? [command, '--signature-policy', p('policy.json'), ...rest] : args;
      return run('podman', [...global, ...withPolicy], { ...options, env: { ...env, ...options.env } });
    },
    async mkdir(name) {
      const d = p('work', `${++counter}-${name}`);
      await mkdir(d, { recursive: true });
      return d;
    },
    async login(hostPort, user = ADMIN.accessKeyId, password = ADMIN.secretAccessKey) {
      auths[hostPort] = { auth: Buffer.from(`${user}:${password}`).toString('base64') };
      await writeFile(p('auth.json'), `${JSON.stringify({ auths }, null, 2)}\n`, { mode: 0o600 });
    },
    async close() {
      await rm(dir, { recursive: true, force: true });
    },
  };
}
