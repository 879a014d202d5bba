import assert from 'node:assert/strict';
import { test } from 'node:test';
import { startServer } from '../support/server.ts';
import { buildImage, pushImage, repoName } from '../support/oci.ts';
import { authedFetch } from '../support/auth.ts';

test('an image pushed over HTTP pulls back byte-identical', async (t) => {
  const server = await startServer();
  t.after(() => server.close());
  const repository = repoName();
  const image = buildImage({ layers: 2 });
  const digest = await pushImage(server.baseUrl, repository, image, 'v1');
  const res = await authedFetch(`${server.baseUrl}/v2/${repository}/manifests/v1`, { headers: { accept: image.mediaType } });
  assert.equal(res.status, 200);
  assert.equal(res.headers.get('docker-content-digest'), digest);
  assert.equal(res.headers.get('content-type'), image.mediaType);
  assert.deepEqual(Buffer.from(await res.arrayBuffer()), image.manifest);
  for (const layer of image.layers) {
    const b = await authedFetch(`${server.baseUrl}/v2/${repository}/blobs/${layer.digest}`);
    assert.equal(b.status, 200);
    assert.deepEqual(Buffer.from(await b.arrayBuffer()), layer.bytes);
  }
});
