import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { ADMIN, adminAuthorization } from '../support/auth.ts';
import { startCluster, type TestCluster } from '../support/cluster.ts';
import { buildRealImage, readOciLayout, writeOciLayout, type RealImage } from '../support/layout.ts';
import { requireTools, toolSandbox, type ToolSandbox } from '../support/tools.ts';
import { assertNoServerErrors } from '../support/http.ts';

/**
 * Three Berth nodes on one metadata store and one blob store behind a round-robin balancer that
 * picks a node per request. What the issue asks of a cluster: any node serves any request, an
 * upload continues on another node, a tag pushed through one node is seen at once by all, a node
 * killed mid-upload loses nothing acknowledged, and every image pulls back byte-identical.
 *
 * The stores here are the embedded ones on one machine (a SQLite file and a blob directory that
 * every node opens); with PostgreSQL and S3 drivers the same test runs on those.
 */

export function clusterSuite(name: string, stores: () => Promise<{ env: Record<string, string>; cleanup(): Promise<void> }>): void {
  describe(`a three-node cluster on ${name}`, () => {
    let cluster: TestCluster;
    let tools: ToolSandbox;
    let cleanup: () => Promise<void> = async () => {};
    const host = () => `127.0.0.1:${cluster.port}`;

    before(async () => {
      const s = await stores();
      cleanup = s.cleanup;
      cluster = await startCluster(3, {
        env: {
          ...s.env,
          BERTH_AUTH_SECRET_KEY: randomBytes(32).toString('base64'),
          BERTH_REPOSITORIES_CREATE_ON_PUSH: 'true',
          BERTH_UPLOADS_SWEEP_INTERVAL_SECONDS: '3600',
        },
      });
      tools = await toolSandbox();
      await tools.login(host(), ADMIN.accessKeyId, ADMIN.secretAccessKey);
    });
    after(async () => {
      await tools?.close();
      await cluster?.close();
      await cleanup();
      // No node answered a 5xx or logged an error (a lock timeout, a failed commit...).
      for (const n of cluster?.nodes ?? []) assertNoServerErrors(n.logs);
    });

    const url = (p: string) => `${cluster.baseUrl}${p}`;
    const fetchAuthed = (p: string, init: RequestInit = {}) => fetch(p.startsWith('http') ? p : url(p), { ...init, headers: { authorization: adminAuthorization, ...(init.headers as Record<string, string>) } });

    async function pushWithSkopeo(image: RealImage, ref: string): Promise<void> {
      const layout = await tools.mkdir('layout');
      await writeOciLayout(layout, [{ tag: 'v1', content: image }]);
      await tools.skopeo(['copy', '--quiet', '--preserve-digests', '--dest-tls-verify=false', `oci:${layout}:v1`, `docker://${host()}/${ref}`], { timeoutMs: 120_000 });
    }

    async function pullAndCompare(image: RealImage, ref: string): Promise<void> {
      const out = await tools.mkdir('pull');
      await tools.skopeo(['copy', '--quiet', '--preserve-digests', '--src-tls-verify=false', `docker://${host()}/${ref}`, `oci:${out}:p`], { timeoutMs: 120_000 });
      const got = await readOciLayout(out, 'p');
      assert.equal(got.descriptor.digest, image.digest, `${ref} has the pushed digest`);
      for (const b of [image.config, ...image.layers]) assert.ok(got.blobs.get(b.digest)!.equals(b.bytes), `${ref}: ${b.digest} byte-identical`);
    }

    test('skopeo pushes and pulls many images concurrently through the balancer; every node serves', { timeout: 300_000 }, async (t) => {
      if (!requireTools(t, 'skopeo')) return;
      const images = Array.from({ length: 6 }, () => buildRealImage());
      await Promise.all(images.map((image, i) => pushWithSkopeo(image, `cluster/app${i % 2}:v${i}`)));
      await Promise.all(images.map((image, i) => pullAndCompare(image, `cluster/app${i % 2}:v${i}`)));
      assert.ok(cluster.served.every((n) => n > 10), `each node served requests: ${cluster.served.join(', ')}`);
    });

    test('a chunked upload continues on other nodes; a tag pushed through one node is seen at once by all', async () => {
      const chunks = [randomBytes(300_000), randomBytes(200_000), randomBytes(100_000)];
      const whole = Buffer.concat(chunks);
      const digest = `sha256:${createHash('sha256').update(whole).digest('hex')}`;
      const before = [...cluster.served];
      const start = await fetchAuthed('/v2/cluster/chunked/blobs/uploads/', { method: 'POST' });
      assert.equal(start.status, 202);
      let location = start.headers.get('location')!;
      let offset = 0;
      for (const c of chunks) {
        const res = await fetchAuthed(url(location), {
          method: 'PATCH',
          body: c,
          headers: { 'content-type': 'application/octet-stream', 'content-range': `${offset}-${offset + c.length - 1}` },
        });
        assert.equal(res.status, 202, await res.text());
        offset += c.length;
        location = res.headers.get('location')!;
      }
      const done = await fetchAuthed(url(`${location}${location.includes('?') ? '&' : '?'}digest=${digest}`), { method: 'PUT' });
      assert.equal(done.status, 201, await done.text());
      const used = cluster.served.map((n, i) => n - before[i]!);
      assert.ok(used.filter((n) => n > 0).length === 3, `the upload's requests went to all three nodes: ${used.join(', ')}`);
      const got = Buffer.from(await (await fetchAuthed(`/v2/cluster/chunked/blobs/${digest}`)).arrayBuffer());
      assert.ok(got.equals(whole));

      // A tag moved through one node: every node answers the new digest on the very next request.
      const config = Buffer.from('{}');
      const configDigest = `sha256:${createHash('sha256').update(config).digest('hex')}`;
      assert.equal((await fetchAuthed(`/v2/cluster/chunked/blobs/uploads/?digest=${configDigest}`, { method: 'POST', body: config, headers: { 'content-type': 'application/octet-stream' } })).status, 201);
      for (const layerDigest of [digest, configDigest]) {
        const manifest = JSON.stringify({ schemaVersion: 2, mediaType: 'application/vnd.oci.image.manifest.v1+json', config: { mediaType: 'application/vnd.oci.empty.v1+json', digest: configDigest, size: 2 }, layers: [{ mediaType: 'application/octet-stream', digest: layerDigest, size: layerDigest === digest ? whole.length : 2 }] });
        const put = await fetchAuthed('/v2/cluster/chunked/manifests/latest', { method: 'PUT', body: manifest, headers: { 'content-type': 'application/vnd.oci.image.manifest.v1+json' } });
        assert.equal(put.status, 201);
        const expected = put.headers.get('docker-content-digest');
        for (let i = 0; i < 3; i++) {
          const head = await fetchAuthed('/v2/cluster/chunked/manifests/latest', { method: 'HEAD', headers: { accept: 'application/vnd.oci.image.manifest.v1+json' } });
          assert.equal(head.headers.get('docker-content-digest'), expected, 'every node sees the tag at once');
        }
      }
    });

    test('a node killed mid-upload: the client resumes through the others and nothing is lost', async () => {
      const first = randomBytes(400_000);
      const rest = randomBytes(250_000);
      const whole = Buffer.concat([first, rest]);
      const digest = `sha256:${createHash('sha256').update(whole).digest('hex')}`;
      const start = await fetchAuthed('/v2/cluster/resumed/blobs/uploads/', { method: 'POST' });
      const location = start.headers.get('location')!;
      const patched = await fetchAuthed(url(location), { method: 'PATCH', body: first, headers: { 'content-type': 'application/octet-stream', 'content-range': `0-${first.length - 1}` } });
      assert.equal(patched.status, 202);
      await cluster.kill(1);
      // The client asks where the upload stands (spec: "upload progress") and goes on from there.
      const status = await fetchAuthed(url(location));
      assert.equal(status.status, 204);
      assert.equal(status.headers.get('range'), `0-${first.length - 1}`);
      const more = await fetchAuthed(url(location), { method: 'PATCH', body: rest, headers: { 'content-type': 'application/octet-stream', 'content-range': `${first.length}-${whole.length - 1}` } });
      assert.equal(more.status, 202);
      const done = await fetchAuthed(url(`${location}${location.includes('?') ? '&' : '?'}digest=${digest}`), { method: 'PUT' });
      assert.equal(done.status, 201, await done.text());
      const got = Buffer.from(await (await fetchAuthed(`/v2/cluster/resumed/blobs/${digest}`)).arrayBuffer());
      assert.ok(got.equals(whole), 'the blob is whole after the restart of the upload on other nodes');
    });
  });
}

clusterSuite('shared embedded stores (one SQLite file, one blob directory)', async () => {
  const dir = await mkdtemp(path.join(tmpdir(), 'berth-cluster-'));
  return {
    env: { BERTH_METADATA_URL: `sqlite:${path.join(dir, 'metadata.db')}`, BERTH_BLOB_URL: `file:${path.join(dir, 'blobs')}` },
    cleanup: () => rm(dir, { recursive: true, force: true }),
  };
});
