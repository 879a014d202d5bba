import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { DatabaseSync } from 'node:sqlite';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { ADMIN, adminAuthorization } from '../support/auth.ts';
import { backend, freshScaleoutStores, listKeys } from '../support/backend.ts';
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
 * On the embedded backend the nodes share a SQLite file and a blob directory on one machine; on
 * the scale-out backend (test/support/backend.ts, scripts/test-scaleout.ts) one PostgreSQL
 * database and one S3 bucket prefix, where blob GETs redirect to presigned S3 URLs.
 */

export interface ClusterStores {
  env: Record<string, string>;
  /** The digests the metadata store records as blobs, and those whose bytes the blob store holds. */
  inventory(): Promise<{ recorded: string[]; stored: string[] }>;
  cleanup(): Promise<void>;
}

export function clusterSuite(name: string, stores: () => Promise<ClusterStores>): void {
  describe(`a three-node cluster on ${name}`, () => {
    let cluster: TestCluster;
    let tools: ToolSandbox;
    let cleanup: () => Promise<void> = async () => {};
    let inventory: ClusterStores['inventory'];
    /** Images acknowledged by the first test, pulled again once a node has died. */
    const pushed: { image: RealImage; ref: string }[] = [];
    const host = () => `127.0.0.1:${cluster.port}`;

    before(async () => {
      const s = await stores();
      cleanup = s.cleanup;
      inventory = s.inventory;
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
      pushed.push(...images.map((image, i) => ({ image, ref: `cluster/app${i % 2}:v${i}` })));
      await Promise.all(images.map((image, i) => pullAndCompare(image, `cluster/app${i % 2}:v${i}`)));
      assert.ok(cluster.served.every((n) => n > 10), `each node served requests: ${cluster.served.join(', ')}`);
    });

    test('podman pushes images concurrently through the balancer, forgets them, and pulls back the same images', { timeout: 300_000 }, async (t) => {
      if (!requireTools(t, 'podman')) return;
      const images = Array.from({ length: 3 }, (_, i) =>
        buildRealImage({ layers: [[{ name: 'etc', type: 'dir' }, { name: 'etc/os-release', content: `ID=cluster-${i}-${randomBytes(4).toString('hex')}\n` }]] }),
      );
      const refs = images.map((_, i) => `${host()}/cluster/podman:v${i}`);
      for (const [i, image] of images.entries()) {
        const src = await tools.mkdir(`podman-src-${i}`);
        await writeOciLayout(src, [{ tag: 'v1', content: image }]);
        await tools.podman(['pull', '--quiet', `oci:${src}:v1`]);
        await tools.podman(['tag', image.config.digest.slice('sha256:'.length), refs[i]!]);
      }
      await Promise.all(refs.map((ref) => tools.podman(['push', '--quiet', '--tls-verify=false', ref], { timeoutMs: 120_000 })));
      await tools.podman(['rmi', '--all', '--force']);
      for (const [i, ref] of refs.entries()) {
        await tools.podman(['pull', '--quiet', '--tls-verify=false', ref], { timeoutMs: 120_000 });
        const [inspected] = JSON.parse((await tools.podman(['image', 'inspect', ref])).stdout) as { Id: string }[];
        assert.equal(`sha256:${inspected!.Id}`, images[i]!.config.digest, `${ref} pulled back as the same image`);
      }
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

    test('after the loss of a node every acknowledged push still pulls back byte-identical', { timeout: 300_000 }, async (t) => {
      if (!requireTools(t, 'skopeo')) return;
      assert.ok(pushed.length > 0, 'the images of the first test');
      for (const { image, ref } of pushed) await pullAndCompare(image, ref);
    });

    test('afterwards the metadata store and the blob store agree: every recorded blob is stored, nothing stored is unrecorded', async () => {
      const { recorded, stored } = await inventory();
      assert.ok(recorded.length > 10, `blobs were recorded: ${recorded.length}`);
      assert.deepEqual([...stored].sort(), [...recorded].sort());
    });
  });
}

/** The blob digests of a filesystem blob store's directory (docs/blob-layout.md). */
async function storedInDirectory(blobsDir: string): Promise<string[]> {
  const out: string[] = [];
  for (const algorithm of await readdir(blobsDir).catch(() => [])) {
    if (algorithm === 'uploads' || algorithm.startsWith('.')) continue;
    for (const fan of await readdir(path.join(blobsDir, algorithm))) {
      for (const name of await readdir(path.join(blobsDir, algorithm, fan))) {
        if (/^[a-f0-9]{64,128}$/.test(name)) out.push(`${algorithm}:${name}`);
      }
    }
  }
  return out;
}

if (backend === 'embedded') {
  clusterSuite('shared embedded stores (one SQLite file, one blob directory)', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'berth-cluster-'));
    return {
      env: { BERTH_METADATA_URL: `sqlite:${path.join(dir, 'metadata.db')}`, BERTH_BLOB_URL: `file:${path.join(dir, 'blobs')}` },
      async inventory() {
        const db = new DatabaseSync(path.join(dir, 'metadata.db'), { readOnly: true });
        try {
          const recorded = (db.prepare('select digest from blobs').all() as { digest: string }[]).map((r) => r.digest);
          return { recorded, stored: await storedInDirectory(path.join(dir, 'blobs', 'blobs')) };
        } finally {
          db.close();
        }
      },
      cleanup: () => rm(dir, { recursive: true, force: true }),
    };
  });
} else {
  clusterSuite('PostgreSQL and S3 (one database, one bucket prefix)', async () => {
    const stores = await freshScaleoutStores();
    return {
      env: stores.env,
      async inventory() {
        const rows = await stores.query<{ digest: string }>('select digest from blobs');
        const stored = (await listKeys(stores.prefix))
          .map((k) => /\/blobs\/([a-z0-9]+)\/[a-f0-9]{2}\/([a-f0-9]+)$/.exec(k))
          .filter((m) => m !== null)
          .map((m) => `${m[1]}:${m[2]}`);
        return { recorded: rows.map((r) => r.digest), stored };
      },
      cleanup: () => stores.drop(),
    };
  });
}
