import assert from 'node:assert/strict';
import { test } from 'node:test';
import { storedUploadIds } from '../support/backend.ts';
import { startServer } from '../support/server.ts';
import { repoName, waitFor } from '../support/oci.ts';
import { authedFetch } from '../support/auth.ts';

test('an abandoned upload session expires and its bytes are removed', async (t) => {
  const server = await startServer({ env: { BERTH_UPLOADS_TTL_SECONDS: '1', BERTH_UPLOADS_SWEEP_INTERVAL_SECONDS: '1' } });
  t.after(() => server.close());
  const repository = repoName();
  const start = await authedFetch(`${server.baseUrl}/v2/${repository}/blobs/uploads/`, { method: 'POST' });
  assert.equal(start.status, 202);
  const location = new URL(start.headers.get('location')!, server.baseUrl);
  const patch = await authedFetch(location, { method: 'PATCH', body: Buffer.alloc(1000, 7) });
  assert.equal(patch.status, 202);
  const uploadId = location.pathname.split('/').pop()!;
  assert.ok((await storedUploadIds(server)).includes(uploadId), 'upload bytes are in the blob store while the session lives');

  await waitFor(async () => !(await storedUploadIds(server)).includes(uploadId), { timeoutMs: 60_000, what: 'the sweeper to remove the upload' });
  const status = await authedFetch(location);
  assert.equal(status.status, 404);
  const body = (await status.json()) as { errors: { code: string }[] };
  assert.equal(body.errors[0]?.code, 'BLOB_UPLOAD_UNKNOWN');
});
