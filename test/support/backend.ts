import { randomBytes } from 'node:crypto';
import { DeleteObjectsCommand, ListObjectsV2Command, S3Client } from '@aws-sdk/client-s3';
import { Pool } from 'pg';

/**
 * The stores test servers run on. By default the embedded ones (a SQLite file and a blob
 * directory in the server's data directory). With `BERTH_TEST_BACKEND=scaleout` (set by
 * scripts/test-scaleout.ts, which starts the services) every server gets a fresh PostgreSQL
 * database and a fresh prefix of one S3 bucket instead, so that the same suite runs on both
 * deployments:
 *
 *   BERTH_TEST_PG_URL                 a database of a user who may create databases
 *   BERTH_TEST_S3_ENDPOINT, BERTH_TEST_S3_ACCESS_KEY_ID, BERTH_TEST_S3_SECRET_ACCESS_KEY,
 *   BERTH_TEST_S3_BUCKET              an S3 API (Ceph RGW) and a bucket in it
 */
export type Backend = 'embedded' | 'scaleout';

export const backend: Backend = process.env['BERTH_TEST_BACKEND'] === 'scaleout' ? 'scaleout' : 'embedded';

/** For tests that look inside the embedded stores (files, the SQLite database): skip them on scale-out. */
export const embeddedOnly = backend === 'embedded' ? false : 'looks inside the embedded stores; the scale-out run covers the same behaviour through its own drivers';

function env(name: string): string {
  const v = process.env[name];
  if (!v) throw new Error(`BERTH_TEST_BACKEND=scaleout needs ${name} (run the suite with scripts/test-scaleout.ts)`);
  return v;
}

export interface StoreSet {
  /** BERTH_* variables that point a server at the stores. */
  env: Record<string, string>;
  /** Drops the database and deletes the prefix's objects. */
  drop(): Promise<void>;
}

let pool: Pool | undefined;
let s3: S3Client | undefined;

function adminPool(): Pool {
  if (!pool) {
    // Idle connections close at once, so that a test file's process can exit.
    pool = new Pool({ connectionString: env('BERTH_TEST_PG_URL'), max: 2, idleTimeoutMillis: 50, allowExitOnIdle: true });
    pool.on('error', () => {});
  }
  return pool;
}

/** The S3 settings as BERTH_* variables. */
export function s3Env(): Record<string, string> {
  return {
    BERTH_S3_ENDPOINT: env('BERTH_TEST_S3_ENDPOINT'),
    BERTH_S3_REGION: 'us-east-1',
    BERTH_S3_FORCE_PATH_STYLE: 'true',
    BERTH_S3_ACCESS_KEY_ID: env('BERTH_TEST_S3_ACCESS_KEY_ID'),
    BERTH_S3_SECRET_ACCESS_KEY: env('BERTH_TEST_S3_SECRET_ACCESS_KEY'),
  };
}

export function s3Client(): S3Client {
  s3 ??= new S3Client({
    endpoint: env('BERTH_TEST_S3_ENDPOINT'),
    region: 'us-east-1',
    forcePathStyle: true,
    credentials: { accessKeyId: env('BERTH_TEST_S3_ACCESS_KEY_ID'), secretAccessKey: env('BERTH_TEST_S3_SECRET_ACCESS_KEY') },
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
  });
  return s3;
}

/** Every key under `prefix/` in the test bucket. */
export async function listKeys(prefix: string): Promise<string[]> {
  const keys: string[] = [];
  let token: string | undefined;
  do {
    const out = await s3Client().send(new ListObjectsV2Command({ Bucket: env('BERTH_TEST_S3_BUCKET'), Prefix: `${prefix}/`, ContinuationToken: token }));
    for (const o of out.Contents ?? []) keys.push(o.Key!);
    token = out.IsTruncated ? out.NextContinuationToken : undefined;
  } while (token);
  return keys;
}

/**
 * Blob GETs on S3 redirect to presigned URLs by default (blobs.redirect). The real clients of
 * test/e2e follow them, so they run that way; the protocol tests of test/integration check
 * what Berth itself answers for a blob GET (headers, ranges, errors), so their servers proxy.
 */
const redirect = /[\\/]test[\\/]integration[\\/]/.test(process.argv[1] ?? '') ? 'never' : 'always';

/**
 * A fresh PostgreSQL database and S3 prefix, for one server or one cluster. A database, not a
 * schema of a shared one: Kysely's migrator looks at the tables of every schema of its
 * database, and fails when another test drops its schema in the middle of that look.
 */
export async function freshScaleoutStores(): Promise<StoreSet & { database: string; prefix: string; query<R>(text: string, params?: unknown[]): Promise<R[]> }> {
  const id = `t${process.pid}_${randomBytes(5).toString('hex')}`;
  const database = id;
  const prefix = id.replace(/_/g, '-');
  await adminPool().query(`create database ${database}`);
  const url = new URL(env('BERTH_TEST_PG_URL'));
  url.pathname = `/${database}`;
  const bucket = env('BERTH_TEST_S3_BUCKET');
  let pool: Pool | undefined;
  return {
    database,
    prefix,
    env: { BERTH_METADATA_URL: url.toString(), BERTH_METADATA_POOL_SIZE: '5', BERTH_BLOB_URL: `s3://${bucket}/${prefix}`, BERTH_BLOBS_REDIRECT: redirect, ...s3Env() },
    async query<R>(text: string, params: unknown[] = []): Promise<R[]> {
      if (!pool) {
        pool = new Pool({ connectionString: url.toString(), max: 2, idleTimeoutMillis: 50, allowExitOnIdle: true });
        pool.on('error', () => {});
      }
      return (await pool.query(text, params)).rows as R[];
    },
    async drop() {
      await pool?.end();
      await adminPool().query(`drop database if exists ${database} with (force)`);
      for (;;) {
        const keys = await listKeys(prefix);
        if (keys.length === 0) break;
        for (let i = 0; i < keys.length; i += 1000) {
          await s3Client().send(new DeleteObjectsCommand({ Bucket: bucket, Delete: { Objects: keys.slice(i, i + 1000).map((Key) => ({ Key })), Quiet: true } }));
        }
      }
    },
  };
}

/**
 * The upload ids whose bytes the server's blob store holds: the files under
 * `<dataDir>/blobs/uploads` on the embedded backend, the `PREFIX/uploads/<id>/` keys on S3.
 */
export async function storedUploadIds(server: { dataDir: string; storeEnv: Record<string, string> }): Promise<string[]> {
  const blobUrl = server.storeEnv['BERTH_BLOB_URL'];
  if (!blobUrl?.startsWith('s3://')) {
    const { readdir } = await import('node:fs/promises');
    return readdir(`${server.dataDir}/blobs/uploads`).catch(() => []);
  }
  const prefix = blobUrl.slice('s3://'.length).split('/').slice(1).join('/');
  const ids = (await listKeys(`${prefix}/uploads`)).map((k) => k.slice(`${prefix}/uploads/`.length).split('/')[0]!);
  return [...new Set(ids)];
}
