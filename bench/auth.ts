/**
 * What authentication costs on the hottest path: manifest GET by tag under wrk, against two
 * Berth instances side by side, one with auth (`auth.enabled=true`, the default) and one without
 * (`auth.enabled=false`), alternating runs so machine load touches both alike. The authenticated
 * instance is driven with the credentials a logged-in client sends: `Basic AWS:<token>` (docker
 * login with `aws ecr get-login-password`), and separately with a Bearer token from /token.
 * Every request is also authorized by IAM policy evaluation and audited.
 *
 *   node bench/auth.ts [--seconds N] [--reps N]
 *
 * Prints a markdown table; docs/benchmarks.md records a run. Target: authenticated throughput
 * at least 90% of unauthenticated.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { runWrk, type LoadResult } from './lib/wrk.ts';

const repoRoot = path.resolve(import.meta.dirname, '..');
const ADMIN = { accountId: '123456789012', accessKeyId: 'AKIABERTHBENCHADMIN1', secretAccessKey: 'berth-bench-admin-secret-do-not-use' };
const basicKey = `Basic ${Buffer.from(`${ADMIN.accessKeyId}:${ADMIN.secretAccessKey}`).toString('base64')}`;

function log(message: string): void {
  process.stderr.write(`[bench-auth ${new Date().toISOString().slice(11, 19)}] ${message}\n`);
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(port));
    });
  });
}

interface Instance {
  label: string;
  baseUrl: string;
  child: ChildProcess;
}

async function start(label: string, dir: string, authEnabled: boolean): Promise<Instance> {
  const port = await freePort();
  const child = spawn(process.execPath, ['src/main.ts', '--listen', `127.0.0.1:${port}`, '--data-dir', dir, '--auth-enabled', String(authEnabled)], {
    cwd: repoRoot,
    env: {
      ...process.env,
      BERTH_LOG_LEVEL: 'warn',
      BERTH_REPOSITORIES_CREATE_ON_PUSH: 'true',
      BERTH_BOOTSTRAP_ACCOUNT_ID: ADMIN.accountId,
      BERTH_BOOTSTRAP_ACCESS_KEY_ID: ADMIN.accessKeyId,
      BERTH_BOOTSTRAP_SECRET_ACCESS_KEY: ADMIN.secretAccessKey,
    },
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  const baseUrl = `http://127.0.0.1:${port}`;
  for (let i = 0; i < 200; i++) {
    try {
      if ((await fetch(`${baseUrl}/healthz`)).ok) return { label, baseUrl, child };
    } catch {
      // not yet
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`${label} did not start`);
}

async function pushImage(baseUrl: string, headers: Record<string, string>): Promise<void> {
  const put = async (bytes: Buffer) => {
    const digest = `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
    const res = await fetch(`${baseUrl}/v2/bench/app/blobs/uploads/?digest=${digest}`, { method: 'POST', body: bytes, headers: { ...headers, 'content-type': 'application/octet-stream' } });
    if (res.status !== 201) throw new Error(`blob push answered ${res.status}: ${await res.text()}`);
    return { digest, size: bytes.length };
  };
  const config = await put(Buffer.from('{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}'));
  const layer = await put(Buffer.alloc(1024, 1));
  const manifest = JSON.stringify({
    schemaVersion: 2,
    mediaType: 'application/vnd.oci.image.manifest.v1+json',
    config: { mediaType: 'application/vnd.oci.image.config.v1+json', ...config },
    layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar', ...layer }],
  });
  const res = await fetch(`${baseUrl}/v2/bench/app/manifests/latest`, { method: 'PUT', body: manifest, headers: { ...headers, 'content-type': 'application/vnd.oci.image.manifest.v1+json' } });
  if (res.status !== 201) throw new Error(`manifest push answered ${res.status}: ${await res.text()}`);
}

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { seconds: { type: 'string', default: '10' }, reps: { type: 'string', default: '3' } } });
  const seconds = Number(values.seconds);
  const reps = Number(values.reps);
  const work = await mkdtemp(path.join(os.tmpdir(), 'berth-bench-auth-'));
  const open = await start('no auth', path.join(work, 'open'), false);
  const secured = await start('auth', path.join(work, 'auth'), true);
  try {
    await pushImage(open.baseUrl, {});
    await pushImage(secured.baseUrl, { authorization: basicKey });
    // What a logged-in docker client sends: the GetAuthorizationToken password, via the token endpoint here.
    const tokenRes = await fetch(`${secured.baseUrl}/token?service=berth&scope=repository:bench/app:pull`, { headers: { authorization: basicKey } });
    const { token } = (await tokenRes.json()) as { token: string };
    const variants: { label: string; url: string; headers: Record<string, string> }[] = [
      { label: 'no auth', url: open.baseUrl, headers: {} },
      { label: 'Basic AWS:<token>', url: secured.baseUrl, headers: { authorization: `Basic ${Buffer.from(`AWS:${token}`).toString('base64')}` } },
      { label: 'Bearer <token>', url: secured.baseUrl, headers: { authorization: `Bearer ${token}` } },
      { label: 'Basic access key', url: secured.baseUrl, headers: { authorization: basicKey } },
    ];
    const results = new Map<string, LoadResult[]>();
    for (const connections of [1, 16, 64]) {
      for (let rep = 0; rep < reps; rep++) {
        for (const v of variants) {
          log(`${v.label}, ${connections} connections, rep ${rep + 1}`);
          const r = await runWrk({
            url: `${v.url}/v2/bench/app/manifests/latest`,
            method: 'GET',
            headers: { accept: 'application/vnd.oci.image.manifest.v1+json', ...v.headers },
            connections,
            durationSeconds: seconds,
            scriptDir: work,
          });
          if (r.non2xx > 0) throw new Error(`${v.label}: ${r.non2xx} non-2xx responses`);
          const key = `${v.label}|${connections}`;
          results.set(key, [...(results.get(key) ?? []), r]);
        }
      }
    }
    const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
    const lines = ['| Connections | Credentials | req/s (median) | vs no auth | p99 ms (median) |', '| --- | --- | --- | --- | --- |'];
    for (const connections of [1, 16, 64]) {
      const base = median(results.get(`no auth|${connections}`)!.map((r) => r.requestsPerSecond));
      for (const v of variants) {
        const rs = results.get(`${v.label}|${connections}`)!;
        const rps = median(rs.map((r) => r.requestsPerSecond));
        lines.push(`| ${connections} | ${v.label} | ${Math.round(rps)} | ${(rps / base).toFixed(2)}x | ${median(rs.map((r) => r.p99Ms)).toFixed(2)} |`);
      }
    }
    process.stdout.write(`Manifest GET by tag, ${seconds} s per run, ${reps} reps, runs alternating between instances\n\n${lines.join('\n')}\n`);
  } finally {
    for (const i of [open, secured]) i.child.kill('SIGTERM');
    await new Promise((r) => setTimeout(r, 500));
    await rm(work, { recursive: true, force: true });
  }
}

await main();
