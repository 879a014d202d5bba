import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readdir } from 'node:fs/promises';
import http from 'node:http';
import { test } from 'node:test';
import { blob, pushBlob, repoName, waitFor } from '../support/oci.ts';
import { startServer } from '../support/server.ts';
import { adminAuthorization, authedFetch } from '../support/auth.ts';

/** Starts a download, reads its first bytes, then drops the connection. */
function abortedDownload(url: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const req = http.get(url, { headers: { authorization: adminAuthorization } }, (res) => {
      res.once('data', () => {
        req.destroy();
        resolve();
      });
    });
    req.on('error', (err) => ((err as NodeJS.ErrnoException).code === 'ECONNRESET' ? resolve() : reject(err)));
  });
}

test('downloads dropped mid-blob leave no open files and the server serving', async (t) => {
  // Proxied, also on S3: there a dropped download must release the store's connection too.
  const server = await startServer({ env: { BERTH_BLOBS_REDIRECT: 'never' } });
  t.after(() => server.close());
  const repository = repoName();
  const big = blob(randomBytes(16 * 1024 * 1024));
  await pushBlob(server.baseUrl, repository, big);
  const url = `${server.baseUrl}/v2/${repository}/blobs/${big.digest}`;
  const fdCount = async () => (await readdir(`/proc/${server.process.pid}/fd`)).length;
  const before = await fdCount();

  for (let i = 0; i < 20; i++) await abortedDownload(url);
  await waitFor(async () => (await fdCount()) <= before, { timeoutMs: 60_000, what: 'file handles of dropped downloads to be closed' });

  const res = await authedFetch(url, { headers: { range: 'bytes=1048570-1048580' } });
  assert.equal(res.status, 206);
  assert.deepEqual(Buffer.from(await res.arrayBuffer()), big.bytes.subarray(1048570, 1048581));
  const whole = await authedFetch(url);
  assert.deepEqual(Buffer.from(await whole.arrayBuffer()), big.bytes);
});
