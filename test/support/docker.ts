import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync, readdirSync, rmdirSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { gunzipSync } from 'node:zlib';
import { removeDaemonDir, spawnDaemon, startContainerd, waitForDaemon, type TestContainerd } from './containerd.ts';
import { tar, type RealImage, type TarEntry } from './layout.ts';
import { run, type RunOptions, type RunResult } from './tools.ts';

/**
 * A private Docker engine for the tests of one file: dockerd with its data root, exec root,
 * pidfile, config file, key and socket under one temp directory, on a containerd of its own
 * (startContainerd), and the Docker CLI with DOCKER_HOST and DOCKER_CONFIG pointing there, so
 * that `docker login` writes its config.json into the sandbox, never into ~/.docker.
 *
 * The engine touches as little of the machine as it can: the vfs storage driver (no overlay
 * mounts), no bridge, no iptables and no sysctl changes, containers in a cgroup parent named
 * for the sandbox (removed at the end). dockerd bind-mounts its data root onto itself and
 * unmounts it when it stops; if it had to be killed, close() unmounts what it left.
 *
 * 127.0.0.0/8 is an insecure registry to the engine by default: it tries HTTPS, gets an HTTP
 * answer, and falls back to plain HTTP, which is how these tests reach Berth.
 */

/** Debian's Docker CLI, the one .ci/run installs with the engine (PATH may hold another client first). */
export const DOCKER_CLI = '/usr/bin/docker';
/** Debian's engine, by path: /usr/sbin need not be on a test's PATH. */
export const DOCKERD = '/usr/sbin/dockerd';

/** Why the engine cannot run here, or false: dockerd needs root for its mounts, namespaces and cgroups. */
export function engineUnavailable(): string | false {
  const uid = process.getuid?.();
  if (uid !== undefined && uid !== 0) return `dockerd needs root (running as uid ${uid})`;
  return false;
}

export interface TestDocker {
  dir: string;
  /** DOCKER_CONFIG of the CLI: config.json (credentials from `docker login`) and manifest lists. */
  configDir: string;
  containerd: TestContainerd;
  /** `docker ARGS` against this engine. */
  docker(args: readonly string[], options?: RunOptions): Promise<RunResult>;
  close(): Promise<void>;
}

function dockerdMajorVersion(): Promise<number> {
  return run(DOCKERD, ['--version'], { timeoutMs: 30_000 }).then((r) => Number(/version (\d+)\./i.exec(r.stdout)?.[1] ?? 0));
}

/** Removes the cgroup `parent` (and whatever the engine left in it) from every v1 hierarchy, or from the v2 tree. */
function removeCgroupParent(parent: string): void {
  const root = '/sys/fs/cgroup';
  const tops = [root, ...(existsSync(root) ? readdirSync(root).map((d) => path.join(root, d)) : [])];
  for (const top of tops) {
    const dir = path.join(top, parent);
    if (!existsSync(dir)) continue;
    const remove = (d: string) => {
      for (const entry of readdirSync(d, { withFileTypes: true })) if (entry.isDirectory()) remove(path.join(d, entry.name));
      try {
        rmdirSync(d);
      } catch {
        // a process is still in it: leave it rather than fail the test over it
      }
    };
    remove(dir);
  }
}

/**
 * Directories the engine makes outside its sandbox whatever it is told: dockerd's plugin
 * discovery directory, and the one where containerd 1.6 puts the sockets of container shims.
 * They are removed after the test when they were not there before it and are empty again.
 */
const OUTSIDE_DIRS = ['/run/docker/plugins', '/run/docker', '/run/containerd/s', '/run/containerd'];

export async function startDocker(): Promise<TestDocker> {
  const createdOutside = OUTSIDE_DIRS.filter((d) => !existsSync(d));
  const id = randomBytes(6).toString('hex');
  const dir = path.join(tmpdir(), `berth-docker-${id}`);
  await mkdir(dir, { mode: 0o700 });
  const p = (...parts: string[]) => path.join(dir, ...parts);
  for (const d of ['root', 'exec', 'config', 'home', 'tmp']) await mkdir(p(d), { recursive: true, mode: 0o700 });
  // Engines before 23 write a trust key to /etc/docker/key.json unless told where.
  const config = (await dockerdMajorVersion()) < 23 ? { 'deprecated-key-path': p('key.json') } : {};
  await writeFile(p('daemon.json'), JSON.stringify(config));
  const cgroupParent = `berth-test-docker-${id}`;
  let containerd: TestContainerd;
  try {
    containerd = await startContainerd();
  } catch (err) {
    await removeDaemonDir(dir);
    throw err;
  }
  const socket = p('docker.sock');
  const env: NodeJS.ProcessEnv = {
    PATH: process.env['PATH'] ?? '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin',
    LANG: 'C.UTF-8',
    HOME: p('home'),
    TMPDIR: p('tmp'),
  };
  const daemon = spawnDaemon(
    DOCKERD,
    [
      '--host', `unix://${socket}`,
      '--data-root', p('root'),
      '--exec-root', p('exec'),
      '--pidfile', p('docker.pid'),
      '--config-file', p('daemon.json'),
      '--containerd', containerd.address,
      '--storage-driver', 'vfs',
      '--iptables=false',
      '--ip6tables=false',
      '--ip-forward=false',
      '--ip-masq=false',
      '--bridge=none',
      '--userland-proxy=false',
      '--exec-opt', 'native.cgroupdriver=cgroupfs',
      '--cgroup-parent', `/${cgroupParent}`,
      '--log-level', 'warn',
    ],
    { logFile: p('dockerd.log'), env, cwd: dir },
  );
  const cliEnv: NodeJS.ProcessEnv = { ...env, DOCKER_HOST: `unix://${socket}`, DOCKER_CONFIG: p('config') };
  const docker = (args: readonly string[], options: RunOptions = {}) => run(DOCKER_CLI, args, { timeoutMs: 180_000, ...options, env: { ...cliEnv, ...options.env } });
  const close = async () => {
    try {
      if (existsSync(socket)) {
        // Containers would keep their shims (children of containerd) alive after dockerd.
        const ids = (await docker(['ps', '--all', '--quiet'], { allowFailure: true, timeoutMs: 30_000 })).stdout.split('\n').filter(Boolean);
        if (ids.length > 0) await docker(['rm', '--force', ...ids], { allowFailure: true, timeoutMs: 60_000 });
      }
      await daemon.stop();
    } finally {
      await containerd.close();
      await removeDaemonDir(dir);
      removeCgroupParent(cgroupParent);
      for (const d of createdOutside) {
        try {
          rmdirSync(d);
        } catch {
          // not empty: another engine uses it now
        }
      }
    }
  };
  try {
    await waitForDaemon(daemon, 'dockerd', async () => existsSync(socket) && (await docker(['version', '--format', '{{.Server.Version}}'], { allowFailure: true, timeoutMs: 30_000 })).code === 0, 120_000);
  } catch (err) {
    await close();
    throw err;
  }
  return { dir, configDir: p('config'), containerd, docker, close };
}

/**
 * The archive `docker save` writes and `docker load` reads (manifest.json, the config as
 * <hex>.json, each layer as an uncompressed <diff id>/layer.tar), tagged with `repoTags`. The
 * engine's image id is the config's digest.
 */
export function dockerArchive(image: RealImage, repoTags: string[]): Buffer {
  const hex = (digest: string) => digest.slice('sha256:'.length);
  const layers = image.layers.map((l) => ({ dir: hex(l.diffId), tar: gunzipSync(l.bytes) }));
  const entries: TarEntry[] = [
    { name: 'manifest.json', content: JSON.stringify([{ Config: `${hex(image.config.digest)}.json`, RepoTags: repoTags, Layers: layers.map((l) => `${l.dir}/layer.tar`) }]) },
    { name: `${hex(image.config.digest)}.json`, content: image.config.bytes },
    ...layers.flatMap((l): TarEntry[] => [{ name: l.dir, type: 'dir' }, { name: `${l.dir}/layer.tar`, content: l.tar }]),
  ];
  return tar(entries);
}

/** The architecture of this machine as image configs spell it. */
export function hostArchitecture(): string {
  return ({ x64: 'amd64', arm64: 'arm64', arm: 'arm', ppc64: 'ppc64le', s390x: 's390x', riscv64: 'riscv64' } as Record<string, string>)[process.arch] ?? process.arch;
}

/** Whether `file` is an ELF executable with no program interpreter (a static binary that runs in an empty image). */
export function isStaticElf(file: string): boolean {
  let b: Buffer;
  try {
    b = readFileSync(file);
  } catch {
    return false;
  }
  // 64-bit little-endian ELF only: Debian's busybox-static on amd64 and arm64.
  if (b.length < 64 || b.readUInt32BE(0) !== 0x7f454c46 || b[4] !== 2 || b[5] !== 1) return false;
  const phoff = Number(b.readBigUInt64LE(0x20));
  const phentsize = b.readUInt16LE(0x36);
  const phnum = b.readUInt16LE(0x38);
  const PT_INTERP = 3;
  for (let i = 0; i < phnum; i++) if (b.readUInt32LE(phoff + i * phentsize) === PT_INTERP) return false;
  return true;
}

/** Debian's busybox-static: the one binary a runnable image built offline needs. */
export const BUSYBOX = '/bin/busybox';

/** Layer entries for a runnable image: /bin/busybox and /bin/sh pointing at it. */
export function busyboxLayer(): TarEntry[] {
  return [
    { name: 'bin', type: 'dir' },
    { name: 'bin/busybox', content: readFileSync(BUSYBOX), mode: 0o755 },
    { name: 'bin/sh', type: 'symlink', linkname: 'busybox' },
  ];
}
