import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { test } from 'node:test';
import { CreateBucketCommand, DeleteBucketCommand } from '@aws-sdk/client-s3';
import { backend, s3Client, s3Env } from '../support/backend.ts';
import { authedFetch } from '../support/auth.ts';
import { blob, pushBlob, repoName } from '../support/oci.ts';
import { startServer } from '../support/server.ts';

/** Stores that cannot be used stop the server at start with a message that says why; /readyz tells when a store goes away. */

async function closedPort(): Promise<number> {
  return new Promise((resolve) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
  });
}

test('a PostgreSQL that cannot be reached stops the start with exit 1, naming the store without its password', async () => {
  const port = await closedPort();
  await assert.rejects(
    startServer({ env: { BERTH_METADATA_URL: `postgres://berth:do-not-print@127.0.0.1:${port}/berth` } }),
    (err: Error) => {
      assert.match(err.message, /exited with 1 before listening/);
      assert.match(err.message, new RegExp(`berth: cannot start: metadataUrl postgres://berth:\\*\\*\\*@127\\.0\\.0\\.1:${port}/berth: .*ECONNREFUSED`));
      assert.doesNotMatch(err.message, /do-not-print/);
      return true;
    },
  );
});

test('an S3 endpoint that cannot be reached, or a bucket that does not exist, stops the start with exit 1 and the reason', { timeout: 120_000 }, async () => {
  const port = await closedPort();
  await assert.rejects(
    startServer({ env: { BERTH_BLOB_URL: 's3://berth-nowhere/blobs', BERTH_S3_ENDPOINT: `http://127.0.0.1:${port}`, BERTH_S3_FORCE_PATH_STYLE: 'true', BERTH_S3_ACCESS_KEY_ID: 'K', BERTH_S3_SECRET_ACCESS_KEY: 'S' } }),
    /exited with 1 before listening.*berth: cannot start: blobUrl s3:\/\/berth-nowhere\/blobs: cannot use bucket "berth-nowhere" at http:\/\/127\.0\.0\.1:\d+/s,
  );
  await assert.rejects(startServer({ env: { BERTH_BLOB_URL: 's3://Not_A_Bucket!' } }), /exited with 1 before listening.*blobUrl s3:\/\/Not_A_Bucket!: "Not_A_Bucket!" is not a bucket name/s);
  if (backend !== 'scaleout') return;
  await assert.rejects(startServer({ env: { BERTH_BLOB_URL: 's3://berth-missing-bucket/x', ...s3Env() } }), /cannot use bucket "berth-missing-bucket" at .*: no such bucket/s);
});

test('/readyz answers 503 once the blob store is gone, and 200 again when it is back', { skip: backend === 'scaleout' ? false : 'needs an S3 bucket it may delete (the scale-out run)' }, async (t) => {
  const bucket = `berth-readyz-${process.pid}`;
  await s3Client().send(new CreateBucketCommand({ Bucket: bucket }));
  const server = await startServer({ env: { BERTH_BLOB_URL: `s3://${bucket}`, ...s3Env() } });
  t.after(() => server.close());
  assert.equal((await fetch(`${server.baseUrl}/readyz`)).status, 200);
  await s3Client().send(new DeleteBucketCommand({ Bucket: bucket }));
  const down = await fetch(`${server.baseUrl}/readyz`);
  assert.equal(down.status, 503);
  assert.deepEqual(await down.json(), { status: 'not ready' });
  assert.equal((await fetch(`${server.baseUrl}/healthz`)).status, 200, 'the process itself is alive');
  await s3Client().send(new CreateBucketCommand({ Bucket: bucket }));
  assert.equal((await fetch(`${server.baseUrl}/readyz`)).status, 200);
  // And it serves: a push lands in the new bucket.
  const b = blob('after the bucket came back');
  await pushBlob(server.baseUrl, repoName(), b);
  assert.equal((await authedFetch(`${server.baseUrl}/v2/`)).status, 200);
});

test('a store migrated by a newer Berth stops the start with exit 1 and says so', async (t) => {
  const dir = await mkdtemp(path.join(tmpdir(), 'berth-newer-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const env = { BERTH_METADATA_URL: `sqlite:${path.join(dir, 'metadata.db')}`, BERTH_BLOB_URL: `file:${path.join(dir, 'blobs')}` };
  const first = await startServer({ dataDir: dir, env });
  await first.close();
  const db = new DatabaseSync(path.join(dir, 'metadata.db'));
  db.prepare('insert into kysely_migration (name, timestamp) values (?, ?)').run('9999-from-the-future', new Date().toISOString());
  db.close();
  await assert.rejects(startServer({ dataDir: dir, env }), /exited with 1 before listening.*berth: cannot start: the metadata store was migrated by a newer version of Berth/s);
});
