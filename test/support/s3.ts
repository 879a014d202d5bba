import { randomBytes } from 'node:crypto';
import { readFileSync, readdirSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import {
  AbortMultipartUploadCommand,
  CreateBucketCommand,
  DeleteBucketCommand,
  DeleteObjectsCommand,
  ListMultipartUploadsCommand,
  ListObjectsV2Command,
  S3Client,
} from '@aws-sdk/client-s3';
import type { S3Settings } from '../../src/store/blob/s3/s3-blob-store.ts';
import { hasTool, run } from './tools.ts';

/**
 * A real S3 API for the tests of one file: a single-node Ceph with radosgw, started by
 * scripts/services/ceph-s3-start.sh in `before` (on free ports of 127.0.0.1, every file under a
 * fresh temp directory, objects in memory), stopped by the PIDs in its pid files in `after`,
 * and its directory removed. Tests get a fresh bucket each from `createBucket()`.
 *
 * With BERTH_TEST_S3_ENDPOINT, BERTH_TEST_S3_ACCESS_KEY_ID and BERTH_TEST_S3_SECRET_ACCESS_KEY
 * set (and optionally BERTH_TEST_S3_REGION), no Ceph is started: the tests use that S3 server,
 * and each file deletes the buckets it created when it ends. `globalSetup` below sets them for a
 * whole run: `node --test --test-global-setup=test/support/s3.ts ...` starts one Ceph for every
 * test file.
 */

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const startScript = path.join(root, 'scripts/services/ceph-s3-start.sh');
const stopScript = path.join(root, 'scripts/services/ceph-s3-stop.sh');
const CEPH_TOOLS = ['ceph-mon', 'ceph-osd', 'radosgw', 'radosgw-admin'];

export interface TestS3 {
  /** e.g. `http://127.0.0.1:40123`. */
  endpoint: string;
  accessKeyId: string;
  secretAccessKey: string;
  region: string;
  /** Settings for S3BlobStore and openBlobStore(): path-style, with the keys above. */
  settings: S3Settings;
  /** A client for the tests' own checks, configured as the store's. */
  client: S3Client;
  /** Creates an empty bucket with a fresh name; resolves the name. */
  createBucket(): Promise<string>;
  /** Every object key under `prefix`, sorted. */
  listKeys(bucket: string, prefix?: string): Promise<string[]>;
  /** The keys of the multipart uploads in progress under `prefix`, sorted (a key once per upload). */
  listMultipartUploads(bucket: string, prefix?: string): Promise<string[]>;
  /** Aborts the bucket's multipart uploads, deletes its objects and the bucket. */
  deleteBucket(bucket: string): Promise<void>;
}

/** A Ceph this process started; `stop()` takes it down by PID and removes its directory. */
export interface StartedS3 extends TestS3 {
  /** radosgw's PID. */
  pid: number;
  dir: string;
  stop(): Promise<void>;
}

/** Why the S3 tests cannot run here, or undefined when Ceph is installed and we are root. */
export function s3Unavailable(): string | undefined {
  const missing = CEPH_TOOLS.filter((t) => !hasTool(t));
  if (missing.length > 0) return `not installed: ${missing.join(', ')} (apt-get install --no-install-recommends ceph-mon ceph-osd radosgw)`;
  if (process.getuid?.() !== 0) return 'ceph-s3-start.sh runs the Ceph daemons as root';
  return undefined;
}

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

/** Polls until `pid` is gone (or a zombie), up to `timeoutMs`; resolves whether it went. */
async function exited(pid: number, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      process.kill(pid, 0);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ESRCH') return true;
      throw err;
    }
    let stat = '';
    try {
      stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    } catch {
      // gone meanwhile, or no /proc: the next kill() tells
    }
    if (/^\d+ \(.*\) Z/.test(stat)) return true;
    if (Date.now() > deadline) return false;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/** The PIDs in the pid files of a Ceph started in `dir` (mon, osd, rgw). */
function daemonPids(dir: string): number[] {
  try {
    return readdirSync(path.join(dir, 'run'))
      .filter((f) => f.endsWith('.pid'))
      .map((f) => Number(readFileSync(path.join(dir, 'run', f), 'utf8').trim()))
      .filter((pid) => Number.isSafeInteger(pid) && pid > 0);
  } catch {
    return [];
  }
}

let nextBucket = 0;

/** A TestS3 over a running server. */
export function connectS3(options: { endpoint: string; accessKeyId: string; secretAccessKey: string; region?: string }): TestS3 {
  const { endpoint, accessKeyId, secretAccessKey } = options;
  const region = options.region ?? 'us-east-1';
  const settings: S3Settings = { endpoint, region, forcePathStyle: true, accessKeyId, secretAccessKey };
  const client = new S3Client({
    endpoint,
    region,
    forcePathStyle: true,
    credentials: { accessKeyId, secretAccessKey },
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
  });
  const listKeys = async (bucket: string, prefix = ''): Promise<string[]> => {
    const keys: string[] = [];
    let token: string | undefined;
    do {
      const out = await client.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix, ContinuationToken: token }));
      for (const o of out.Contents ?? []) keys.push(o.Key!);
      token = out.IsTruncated ? out.NextContinuationToken : undefined;
    } while (token);
    return keys.sort();
  };
  const listUploads = async (bucket: string, prefix = ''): Promise<Array<{ key: string; uploadId: string }>> => {
    const uploads: Array<{ key: string; uploadId: string }> = [];
    let keyMarker: string | undefined;
    let uploadIdMarker: string | undefined;
    for (;;) {
      const out = await client.send(new ListMultipartUploadsCommand({ Bucket: bucket, Prefix: prefix, KeyMarker: keyMarker, UploadIdMarker: uploadIdMarker }));
      for (const u of out.Uploads ?? []) uploads.push({ key: u.Key!, uploadId: u.UploadId! });
      if (!out.IsTruncated) return uploads;
      keyMarker = out.NextKeyMarker;
      uploadIdMarker = out.NextUploadIdMarker;
    }
  };
  return {
    endpoint,
    accessKeyId,
    secretAccessKey,
    region,
    settings,
    client,
    async createBucket() {
      // Lower case, at most 63 characters, unique across the files of a run sharing one server.
      const bucket = `berth-test-${process.pid}-${nextBucket++}-${randomBytes(4).toString('hex')}`;
      await client.send(new CreateBucketCommand({ Bucket: bucket }));
      return bucket;
    },
    listKeys,
    async listMultipartUploads(bucket, prefix = '') {
      return (await listUploads(bucket, prefix)).map((u) => u.key).sort();
    },
    async deleteBucket(bucket) {
      for (const u of await listUploads(bucket)) {
        await client.send(new AbortMultipartUploadCommand({ Bucket: bucket, Key: u.key, UploadId: u.uploadId }));
      }
      const keys = await listKeys(bucket);
      for (let i = 0; i < keys.length; i += 1000) {
        await client.send(new DeleteObjectsCommand({ Bucket: bucket, Delete: { Objects: keys.slice(i, i + 1000).map((Key) => ({ Key })), Quiet: true } }));
      }
      await client.send(new DeleteBucketCommand({ Bucket: bucket }));
    },
  };
}

/** The server named by BERTH_TEST_S3_*, or undefined when BERTH_TEST_S3_ENDPOINT is not set. */
export function s3FromEnv(env: NodeJS.ProcessEnv = process.env): TestS3 | undefined {
  const endpoint = env['BERTH_TEST_S3_ENDPOINT'];
  if (!endpoint) return undefined;
  const accessKeyId = env['BERTH_TEST_S3_ACCESS_KEY_ID'];
  const secretAccessKey = env['BERTH_TEST_S3_SECRET_ACCESS_KEY'];
  if (!accessKeyId || !secretAccessKey) {
    throw new Error('BERTH_TEST_S3_ENDPOINT is set: set BERTH_TEST_S3_ACCESS_KEY_ID and BERTH_TEST_S3_SECRET_ACCESS_KEY too');
  }
  return connectS3({ endpoint, accessKeyId, secretAccessKey, region: env['BERTH_TEST_S3_REGION'] || undefined });
}

/**
 * Starts a Ceph with radosgw in a fresh temp directory, on ports found free on 127.0.0.1
 * (another one found free if the first was taken before Ceph bound it). Rejects with the
 * script's output when it cannot start.
 */
export async function startS3(options: { attempts?: number } = {}): Promise<StartedS3> {
  let lastError: unknown;
  for (let attempt = 0; attempt < (options.attempts ?? 3); attempt++) {
    const dir = path.join(tmpdir(), `berth-s3-${randomBytes(6).toString('hex')}`);
    const [rgwPort, monPort] = [await freePort(), await freePort()];
    // The OSD takes the first free ports of its range (about four), so ranges may overlap
    // between instances; a random one below the ephemeral ports keeps clear of freePort()'s.
    const osdPortMin = 20_000 + 40 * Math.floor(Math.random() * 200);
    const env = {
      ...process.env,
      RGW_PORT: String(rgwPort),
      MON_PORT: String(monPort),
      OSD_PORT_MIN: String(osdPortMin),
      OSD_PORT_MAX: String(osdPortMin + 39),
      // Objects in RAM unless asked otherwise: the fastest start, and nothing left on disk.
      CEPH_OBJECTSTORE: process.env['CEPH_OBJECTSTORE'] ?? 'memstore',
      START_TIMEOUT: '60',
    };
    try {
      const out = await run('bash', [startScript, dir], { env, timeoutMs: 90_000 });
      const vars = Object.fromEntries(out.stdout.split('\n').filter((l) => l.includes('=')).map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]));
      const pid = Number(vars['RGW_PID']);
      const s3 = connectS3({ endpoint: vars['S3_ENDPOINT']!, accessKeyId: vars['S3_ACCESS_KEY']!, secretAccessKey: vars['S3_SECRET_KEY']!, region: vars['S3_REGION'] });
      const pids = daemonPids(dir);
      // Should the process end without stop() (a crash), take the daemons down with it.
      const onExit = () => {
        for (const p of pids) {
          try {
            process.kill(p, 'SIGKILL');
          } catch {
            // already gone
          }
        }
        rmSync(dir, { recursive: true, force: true });
      };
      process.once('exit', onExit);
      let stopping: Promise<void> | undefined;
      return {
        ...s3,
        pid,
        dir,
        stop() {
          stopping ??= (async () => {
            s3.client.destroy();
            await run('bash', [stopScript, dir, '--purge'], { timeoutMs: 60_000 });
            process.removeListener('exit', onExit);
            for (const p of pids) {
              if (!(await exited(p, 10_000))) throw new Error(`Ceph daemon ${p} still runs after ceph-s3-stop.sh`);
            }
          })();
          return stopping;
        },
      };
    } catch (err) {
      lastError = err;
      await run('bash', [stopScript, dir, '--purge'], { allowFailure: true });
    }
  }
  throw lastError;
}

/**
 * Registers `before` and `after` hooks that give the calling test file an S3 server, and
 * returns a getter for it (valid once `before` has run): the one BERTH_TEST_S3_* names, or
 * else a Ceph started for the file. Buckets the file created are deleted in `after`. When
 * neither is possible (Ceph not installed) the file's S3 tests are skipped with one skipped
 * test saying why, and this returns undefined; under CI (CI=true) that test fails instead.
 */
export function useS3(): (() => TestS3) | undefined {
  const fromEnv = s3FromEnv();
  const why = fromEnv ? undefined : s3Unavailable();
  if (why) {
    test('S3 tests', (t) => {
      if (process.env['CI']) throw new Error(why);
      t.skip(why);
    });
    return undefined;
  }

  let server: TestS3 | undefined = fromEnv;
  let started: StartedS3 | undefined;
  /** Buckets the file created and has not deleted yet. */
  const buckets = new Set<string>();

  before(async () => {
    if (!server) server = started = await startS3();
    const { createBucket, deleteBucket } = server;
    server = {
      ...server,
      async createBucket() {
        const bucket = await createBucket();
        buckets.add(bucket);
        return bucket;
      },
      async deleteBucket(bucket) {
        await deleteBucket(bucket);
        buckets.delete(bucket);
      },
    };
  });

  after(async () => {
    if (started) {
      await started.stop();
      return;
    }
    if (server) {
      for (const bucket of buckets) await server.deleteBucket(bucket);
      server.client.destroy();
    }
  });

  return () => {
    if (!server) throw new Error('S3 is not running (useS3() hooks run before the tests)');
    return server;
  };
}

let global: StartedS3 | undefined;

/**
 * For `node --test --test-global-setup=test/support/s3.ts`: starts one Ceph for the whole run
 * and names it in BERTH_TEST_S3_*, which the test processes inherit. Does nothing when they are
 * already set.
 */
export async function globalSetup(): Promise<void> {
  if (process.env['BERTH_TEST_S3_ENDPOINT']) return;
  global = await startS3();
  process.env['BERTH_TEST_S3_ENDPOINT'] = global.endpoint;
  process.env['BERTH_TEST_S3_ACCESS_KEY_ID'] = global.accessKeyId;
  process.env['BERTH_TEST_S3_SECRET_ACCESS_KEY'] = global.secretAccessKey;
  process.env['BERTH_TEST_S3_REGION'] = global.region;
}

export async function globalTeardown(): Promise<void> {
  await global?.stop();
}
