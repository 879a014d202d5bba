import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { openBlobStore, openMetaStore, StoreConfigError } from './open.ts';

const openUrl = pathToFileURL(path.join(import.meta.dirname, 'open.ts')).href;
const s3DriverUrl = pathToFileURL(path.join(import.meta.dirname, 'blob/s3/s3-blob-store.ts')).href;
const postgresDriverUrl = pathToFileURL(path.join(import.meta.dirname, 'meta/postgres/postgres-meta-store.ts')).href;

/**
 * In a fresh process: opens the embedded stores through open.ts and lists the client libraries
 * loaded by then, then loads the S3 and PostgreSQL drivers and lists them again (so the check
 * is seen to notice a library when it is there).
 */
function librariesLoaded(dir: string): { embedded: string[]; afterDrivers: string[] } {
  const code = `
    import { registerHooks } from 'node:module';
    const seen = new Set();
    registerHooks({ load(url, context, next) { seen.add(url); return next(url, context); } });
    const libraries = () => ['@aws-sdk/client-s3', 'pg'].filter((name) => [...seen].some((u) => u.includes('/node_modules/' + name + '/')));
    const { openBlobStore, openMetaStore } = await import(${JSON.stringify(openUrl)});
    const meta = await openMetaStore('sqlite:' + process.env.DIR + '/meta.db');
    const blobs = await openBlobStore('file:' + process.env.DIR + '/blobs');
    const embedded = libraries();
    await blobs.close();
    await meta.close();
    await import(${JSON.stringify(s3DriverUrl)});
    await import(${JSON.stringify(postgresDriverUrl)});
    process.stdout.write(JSON.stringify({ embedded, afterDrivers: libraries() }));
  `;
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', code], { env: { ...process.env, DIR: dir }, encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  return JSON.parse(r.stdout) as { embedded: string[]; afterDrivers: string[] };
}

test('the embedded stores load neither the AWS SDK nor the PostgreSQL driver', async (t) => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'berth-open-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const { embedded, afterDrivers } = librariesLoaded(dir);
  assert.deepEqual(embedded, []);
  assert.deepEqual(afterDrivers, ['@aws-sdk/client-s3', 'pg']);
});

test('an unknown scheme stops with a StoreConfigError naming the known ones', async () => {
  for (const url of ['mysql://localhost/berth', 'constructor:x', 'no-scheme']) {
    await assert.rejects(openMetaStore(url), (err) => err instanceof StoreConfigError && /unknown scheme/.test(err.message) && /sqlite:, postgres:/.test(err.message), url);
  }
  for (const url of ['gs://bucket', 'toString:x']) {
    await assert.rejects(openBlobStore(url), (err) => err instanceof StoreConfigError && /unknown scheme/.test(err.message) && /file:, s3:/.test(err.message), url);
  }
});
