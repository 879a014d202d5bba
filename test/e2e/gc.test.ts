import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { Readable, Writable } from 'node:stream';
import { describe, test, type TestContext } from 'node:test';
import { pathToFileURL } from 'node:url';
import { loadConfig } from '../../src/config/config.ts';
import { collectGarbage, type GcReport } from '../../src/gc/collector.ts';
import { createLogger } from '../../src/log/logger.ts';
import type { BlobStore } from '../../src/store/blob/blob-store.ts';
import type { MetaStore } from '../../src/store/meta/meta-store.ts';
import { openBlobStore, openMetaStore } from '../../src/store/open.ts';
import { ADMIN, authedFetch } from '../support/auth.ts';
import { assertNoServerErrors } from '../support/http.ts';
import { buildRealImage, buildRealIndex, readOciLayout, writeOciLayout, type RealImage, type RealIndex, type TarEntry } from '../support/layout.ts';
import { assertPullsBack, blob, imageOver, type Blob, type BuiltImage } from '../support/oci.ts';
import { backend } from '../support/backend.ts';
import { repoRoot, startServer, type TestServer } from '../support/server.ts';
import { requireTools, toolSandbox, type ToolSandbox } from '../support/tools.ts';

/**
 * Online garbage collection against the real server, on whichever backend the suite runs on
 * (SQLite and a blob directory, or PostgreSQL and S3 with scripts/test-scaleout.ts). The server
 * runs in a child process; the collector runs here (or in a child of its own, to be killed),
 * on the same stores, opened from the server's configuration, as `berth gc` will.
 */

const silent = createLogger({ level: 'silent' });

/** A logger that keeps the collector's warnings, to show in an assertion's message. */
function warnings(): { log: ReturnType<typeof createLogger>; lines: string[] } {
  const lines: string[] = [];
  const destination = new Writable({
    write(chunk: Buffer, _encoding, done) {
      lines.push(chunk.toString().trim());
      done();
    },
  });
  return { log: createLogger({ level: 'warn', destination }), lines };
}
/**
 * The collector's grace period under load: short, so that it takes blobs while pushes that name
 * them are under way. Not shorter than a push takes, though: a client that needs longer than the
 * grace period between uploading a blob and pushing the manifest that names it loses the blob
 * every time, and retries for ever (a real grace period is an hour). A skopeo push takes a few
 * hundred milliseconds on the embedded stores and a second or two on PostgreSQL and Ceph here.
 */
const GRACE_MS = backend === 'scaleout' ? 4000 : 500;

/**
 * The grace period the collections under load use: GRACE_MS, or three times the longest of the
 * last pushes when the machine is slower than that (a busy CI machine can take seconds per
 * push), so that the collector still races the pushes but never makes them retry for ever.
 */
class AdaptiveGrace {
  private readonly recent: number[] = [];
  /** Records how long one push attempt took, from its first blob to its manifest. */
  took(ms: number): void {
    this.recent.push(ms);
    if (this.recent.length > 20) this.recent.shift();
  }
  get ms(): number {
    return Math.max(GRACE_MS, 3 * Math.max(0, ...this.recent));
  }
}
const grace = new AdaptiveGrace();

interface Stores {
  meta: MetaStore;
  blobs: BlobStore;
  close(): Promise<void>;
}

/** The server's configuration: the stores it runs on. */
function serverConfig(server: TestServer) {
  return loadConfig({ argv: ['--data-dir', server.dataDir], env: server.storeEnv });
}

async function openStores(server: TestServer): Promise<Stores> {
  const config = serverConfig(server);
  const meta = await openMetaStore(config.metadataUrl, { poolSize: 6 });
  const blobs = await openBlobStore(config.blobUrl, { s3: config.s3 });
  let closed: Promise<void> | undefined;
  return { meta, blobs, close: () => (closed ??= Promise.all([meta.close(), blobs.close()]).then(() => {})) };
}

/** Every blob row and every blob in the store, and the rows a collection left marked. */
async function inventory(stores: Stores): Promise<{ rows: string[]; stored: string[]; marked: string[] }> {
  const rows: string[] = [];
  const marked: string[] = [];
  let after: string | undefined;
  for (;;) {
    const page = await stores.meta.gc.listBlobRecords({ after, limit: 500 });
    for (const r of page) (r.deletingAtMs === null ? rows : marked).push(r.digest);
    if (page.length < 500) break;
    after = page[page.length - 1]!.digest;
  }
  const stored: string[] = [];
  for await (const b of stores.blobs.listBlobs!()) stored.push(b.digest);
  return { rows: rows.sort(), stored: stored.sort(), marked: marked.sort() };
}

/** An image on the given layers and one random layer of its own. */
function httpImage(shared: Blob[]): BuiltImage {
  return imageOver([...shared, blob(randomBytes(2048 + Math.floor(Math.random() * 4096)))]);
}

interface Stats {
  pushes: number;
  retries: number;
  reasons: Map<string, number>;
}

function retried(stats: Stats, reason: string): void {
  stats.retries++;
  stats.reasons.set(reason, (stats.reasons.get(reason) ?? 0) + 1);
}

/**
 * Pushes an image as clients do: HEAD each blob, upload (or mount) the missing ones, PUT the
 * manifest. A collection may take a blob between the HEAD and the manifest: the registry then
 * refuses cleanly (MANIFEST_BLOB_UNKNOWN, BLOB_UPLOAD_INVALID) and the push starts again, as a
 * client's retry would. Anything else fails the test.
 */
async function pushHttp(base: string, repository: string, image: BuiltImage, tag: string, stats: Stats, mountFrom?: string): Promise<void> {
  for (let attempt = 0; attempt < 20; attempt++) {
    const startedAt = Date.now();
    let ok = true;
    for (const b of [image.config, ...image.layers]) {
      const head = await authedFetch(`${base}/v2/${repository}/blobs/${b.digest}`, { method: 'HEAD' });
      if (head.status === 200) continue;
      assert.equal(head.status, 404, `HEAD ${b.digest}`);
      if (mountFrom !== undefined) {
        const mount = await authedFetch(`${base}/v2/${repository}/blobs/uploads/?mount=${b.digest}&from=${mountFrom}`, { method: 'POST' });
        if (mount.status === 201) continue;
        assert.equal(mount.status, 202, `mount: ${mount.status}`);
        await authedFetch(new URL(mount.headers.get('location')!, base), { method: 'DELETE' });
      }
      const put = await authedFetch(`${base}/v2/${repository}/blobs/uploads/?digest=${b.digest}`, { method: 'POST', body: b.bytes, headers: { 'content-type': 'application/octet-stream' } });
      if (put.status === 201) continue;
      const text = await put.text();
      assert.match(text, /BLOB_UPLOAD_INVALID/, `blob upload: ${put.status} ${text}`);
      assert.match(text, /retry the push/);
      retried(stats, 'BLOB_UPLOAD_INVALID');
      ok = false;
      break;
    }
    if (!ok) continue;
    const res = await authedFetch(`${base}/v2/${repository}/manifests/${tag}`, { method: 'PUT', body: image.manifest, headers: { 'content-type': image.mediaType } });
    grace.took(Date.now() - startedAt);
    if (res.status === 201) {
      stats.pushes++;
      return;
    }
    const text = await res.text();
    assert.match(text, /MANIFEST_BLOB_UNKNOWN/, `manifest PUT: ${res.status} ${text}`);
    retried(stats, 'MANIFEST_BLOB_UNKNOWN');
  }
  assert.fail(`${repository}:${tag} could not be pushed in 20 attempts`);
}

async function deleteManifest(base: string, repository: string, digest: string): Promise<void> {
  const res = await authedFetch(`${base}/v2/${repository}/manifests/${digest}`, { method: 'DELETE' });
  assert.equal(res.status, 202, `DELETE ${repository}@${digest}: ${res.status} ${await res.text()}`);
}

/** Layers several images share, made of the same entries (so the same bytes and digest). */
const baseEntries: TarEntry[][] = [0, 1, 2].map((i) => [
  { name: 'usr', type: 'dir' },
  { name: `usr/base-${i}.bin`, content: randomBytes(30_000) },
]);

function sharedRealImage(i: number): RealImage {
  return buildRealImage({
    layers: [baseEntries[i % 3]!, baseEntries[(i + 1) % 3]!, [{ name: 'app', type: 'dir' }, { name: 'app/unique.bin', content: randomBytes(8192) }]],
  });
}

describe('garbage collection on a live registry', () => {
  test('pushes, pulls, deletions and collections at once: every image kept pulls back byte-identical, and the stores agree afterwards', { timeout: 600_000 }, async (t) => {
    if (!requireTools(t, 'skopeo')) return;
    const server = await startServer({ env: { BERTH_UPLOADS_SWEEP_INTERVAL_SECONDS: '3600' } });
    t.after(() => server.close());
    const stores = await openStores(server);
    t.after(() => stores.close());
    const tools = await toolSandbox();
    t.after(() => tools.close());
    const host = `127.0.0.1:${server.port}`;
    await tools.login(host, ADMIN.accessKeyId, ADMIN.secretAccessKey);
    const base = server.baseUrl;
    const stats: Stats = { pushes: 0, retries: 0, reasons: new Map() };
    const reports: GcReport[] = [];
    const seen = warnings();
    let stop = false;

    // The collector, over and over, with a short grace period, so that it takes what the
    // deletions free while pushes of images sharing those blobs are under way.
    const collecting = (async () => {
      for (let i = 0; !stop; i++) {
        reports.push(await collectGarbage({ meta: stores.meta, blobs: stores.blobs, log: seen.log }, { graceMs: grace.ms, dryRun: i % 5 === 4 }));
      }
    })();

    // skopeo: real images sharing base layers, two repositories, an index kept and one deleted.
    const skopeoKept: { ref: string; content: RealImage | RealIndex }[] = [];
    const skopeoGone: { repository: string; content: RealImage | RealIndex }[] = [];
    async function skopeoPush(content: RealImage | RealIndex, ref: string): Promise<void> {
      const layout = await tools.mkdir('layout');
      await writeOciLayout(layout, [{ tag: 'v1', content }]);
      for (let attempt = 0; ; attempt++) {
        const startedAt = Date.now();
        const r = await tools.skopeo(['copy', '--quiet', '--all', '--preserve-digests', '--dest-tls-verify=false', `oci:${layout}:v1`, `docker://${host}/${ref}`], { timeoutMs: 120_000, allowFailure: true });
        grace.took(Date.now() - startedAt);
        if (r.code === 0) return;
        // Only the clean refusals of a blob taken meanwhile are retried.
        assert.match(r.stderr, /MANIFEST_BLOB_UNKNOWN|BLOB_UPLOAD_INVALID|blob unknown|manifest blob unknown|retry the push/i, `skopeo push of ${ref}: ${r.stderr}`);
        assert.ok(attempt < 10, `skopeo push of ${ref} kept failing: ${r.stderr}`);
        retried(stats, 'skopeo');
      }
    }
    async function skopeoPullAndCompare(ref: string, content: RealImage | RealIndex): Promise<void> {
      const out = await tools.mkdir('pull');
      await tools.skopeo(['copy', '--quiet', '--all', '--preserve-digests', '--src-tls-verify=false', `docker://${host}/${ref}`, `oci:${out}:p`], { timeoutMs: 120_000 });
      const got = await readOciLayout(out, 'p');
      assert.equal(got.descriptor.digest, content.digest, `${ref} has the pushed digest`);
      const images = 'index' in content ? content.images : [content];
      for (const image of images) {
        for (const b of [image.config, ...image.layers, { digest: image.digest, bytes: image.manifest }]) {
          assert.ok(got.blobs.get(b.digest)?.equals(b.bytes), `${ref}: ${b.digest} byte-identical`);
        }
      }
    }
    const skopeoWork = (async () => {
      for (let i = 0; i < 8; i++) {
        const repository = `gc/skopeo${i % 2}`;
        const content = i === 3 || i === 4 ? buildRealIndex([sharedRealImage(i), sharedRealImage(i + 1)]) : sharedRealImage(i);
        await skopeoPush(content, `${repository}:v${i}`);
        if (i % 3 === 0) {
          await deleteManifest(base, repository, content.digest);
          skopeoGone.push({ repository, content });
        } else {
          skopeoKept.push({ ref: `${repository}:v${i}`, content });
        }
        if (i === 4) for (const k of skopeoKept) await skopeoPullAndCompare(k.ref, k.content);
      }
      // A deleted image pushed again, to the other repository: its blobs may be half collected.
      const again = skopeoGone[0]!;
      const ref = `gc/skopeo${again.repository.endsWith('0') ? 1 : 0}:again`;
      await skopeoPush(again.content, ref);
      skopeoKept.push({ ref, content: again.content });
    })();

    // Plain HTTP: many small images on a few shared blobs; a third deleted as soon as pushed, and
    // most of those pushed again: into the same repository (where HEAD still finds the blobs),
    // into the other one mounting from the first, or uploading blobs whose bytes are still
    // there; the last two about when the collector takes the blobs (a grace period later).
    const shared = [0, 1, 2, 3].map(() => blob(randomBytes(4096)));
    const httpKept: { repository: string; tag: string; image: BuiltImage }[] = [];
    const httpGone: { repository: string; image: BuiltImage }[] = [];
    let httpDone = 0;
    async function hammer(worker: number): Promise<void> {
      for (let i = 0; !(stop || (httpDone >= 200 && skopeoSettled)); i++) {
        const repository = `gc/http${(worker + i) % 2}`;
        const image = httpImage([shared[i % 4]!, shared[(i + worker) % 4]!]);
        const tag = `w${worker}-${i}`;
        await pushHttp(base, repository, image, tag, stats);
        if (i % 3 === 1) {
          await deleteManifest(base, repository, image.digest);
          httpGone.push({ repository, image });
          const other = repository.endsWith('0') ? 'gc/http1' : 'gc/http0';
          const variant = Math.floor(i / 3) % 4;
          if (variant < 3) {
            await new Promise((resolve) => setTimeout(resolve, variant === 2 ? 0 : grace.ms - 100 + Math.random() * 300));
            const target = variant === 0 ? repository : other;
            await pushHttp(base, target, image, `${tag}-again`, stats, variant === 2 ? repository : undefined);
            httpKept.push({ repository: target, tag: `${tag}-again`, image });
          }
        } else {
          httpKept.push({ repository, tag, image });
        }
        httpDone++;
      }
    }
    // Pulls of images kept, all along: none may ever fail.
    let pulls = 0;
    async function puller(): Promise<void> {
      while (!(stop || (httpDone >= 200 && skopeoSettled))) {
        const k = httpKept[Math.floor(Math.random() * httpKept.length)];
        if (!k) {
          await new Promise((resolve) => setTimeout(resolve, 20));
          continue;
        }
        await assertPullsBack(base, k.repository, k.tag, k.image);
        pulls++;
      }
    }
    let skopeoSettled = false;
    void skopeoWork.finally(() => (skopeoSettled = true)).catch(() => {});
    try {
      await Promise.all([skopeoWork, hammer(0), hammer(1), hammer(2), hammer(3), puller(), puller()]);
    } finally {
      stop = true;
      await collecting;
    }

    // Bytes no row records, as a crash between a commit and its metadata leaves them.
    const orphan = blob(randomBytes(1000));
    await stores.blobs.createUpload('gc-test-orphan');
    await stores.blobs.append('gc-test-orphan', 0, Readable.from([orphan.bytes]));
    await stores.blobs.commit('gc-test-orphan', orphan.bytes.length, orphan.digest);
    // The collector leaves bytes written at or after its start alone (a commit in progress), and a
    // fast machine starts it within the millisecond of the commit: wait for the clock to pass it.
    let orphanAtMs: number | undefined;
    for await (const b of stores.blobs.listBlobs!()) if (b.digest === orphan.digest) orphanAtMs = b.modifiedAtMs;
    assert.ok(orphanAtMs !== undefined, 'the orphan is listed');
    while (Date.now() <= orphanAtMs) await new Promise((resolve) => setTimeout(resolve, 5));

    // Nothing in flight now: a collection without grace takes all that is left.
    const final = await collectGarbage({ meta: stores.meta, blobs: stores.blobs, log: seen.log }, { graceMs: 0, dryRun: false });
    reports.push(final);
    assert.ok(final.orphans.some((o) => o.digest === orphan.digest), 'bytes without a row are swept');
    const removed = reports.filter((r) => !r.dryRun);
    t.diagnostic(
      `collections ${reports.length}; removed manifests ${removed.reduce((n, r) => n + r.manifests.length, 0)}, blobs ${removed.reduce((n, r) => n + r.blobs.length, 0)}; ` +
        `pushes ${stats.pushes}, retries ${stats.retries} ${JSON.stringify(Object.fromEntries(stats.reasons))}; pulls ${pulls}`,
    );
    assert.ok(removed.reduce((n, r) => n + r.blobs.length, 0) > 20, 'collections ran during the load and removed blobs');
    assert.equal(reports.reduce((n, r) => n + r.errors, 0), 0, `no deletion failed; the collector's warnings:\n${seen.lines.join('\n')}`);

    for (const k of httpKept) await assertPullsBack(base, k.repository, k.tag, k.image);
    for (const k of skopeoKept) await skopeoPullAndCompare(k.ref, k.content);
    for (const g of skopeoGone) {
      const images = 'index' in g.content ? g.content.images : [];
      for (const d of [g.content.digest, ...images.map((i) => i.digest)]) {
        const res = await authedFetch(`${base}/v2/${g.repository}/manifests/${d}`, { method: 'HEAD' });
        assert.equal(res.status, 404, `${g.repository}@${d}: a deleted image goes, and with an index its children`);
      }
    }

    const { rows, stored, marked } = await inventory(stores);
    assert.deepEqual(marked, [], 'no row is left marked');
    assert.deepEqual(stored, rows, 'the blob store holds no bytes without a row, and no row is without bytes');
    const usage = await stores.meta.gc.totalUsage();
    assert.equal(usage.unreferencedBlobs, 0, 'every blob left is referenced');
    await stores.close();
    await server.close();
    assertNoServerErrors(server.logs);
  });

  test('a collection killed at any point leaves a consistent store that the next collection finishes', { timeout: 300_000 }, async (t) => {
    const server = await startServer({ env: { BERTH_UPLOADS_SWEEP_INTERVAL_SECONDS: '3600' } });
    t.after(() => server.close());
    const stores = await openStores(server);
    t.after(() => stores.close());
    const base = server.baseUrl;
    const stats: Stats = { pushes: 0, retries: 0, reasons: new Map() };

    const kept = [0, 1, 2].map(() => httpImage([]));
    for (const [i, image] of kept.entries()) await pushHttp(base, 'gc/crash', image, `kept${i}`, stats);
    // Garbage: blobs no manifest references, and images deleted.
    const garbage = new Map<string, Blob>();
    async function makeGarbage(n: number): Promise<void> {
      for (let i = 0; i < n; i++) {
        const image = httpImage([]);
        await pushHttp(base, 'gc/crash', image, `gone${i}`, stats);
        await deleteManifest(base, 'gc/crash', image.digest);
        for (const b of [image.config, ...image.layers]) garbage.set(b.digest, b);
      }
    }
    await makeGarbage(15);

    for (const where of ['after-bytes-deleted', 'after-mark'] as const) {
      const killed = await killCollection(t, server, where);
      // No live row without bytes, whatever was interrupted.
      const { rows, marked } = await inventory(stores);
      for (const d of rows) assert.ok(await stores.blobs.stat(d), `${where}: live row ${d} has bytes`);
      assert.ok(marked.includes(killed), `${where}: the blob being deleted is still marked`);
      if (where === 'after-bytes-deleted') assert.equal(await stores.blobs.stat(killed), undefined, 'its bytes are gone');
      assert.equal(await stores.meta.getBlob(killed), undefined, 'and readers count it absent');
      // A push of that very blob goes through: the registry puts the bytes back and revives it.
      const b = garbage.get(killed)!;
      const again = httpImage([b]);
      await pushHttp(base, 'gc/crash', again, `revived-${where}`, stats);
      kept.push(again);
      await makeGarbage(5);
    }

    const seen = warnings();
    const next = await collectGarbage({ meta: stores.meta, blobs: stores.blobs, log: seen.log }, { graceMs: 0, dryRun: false });
    assert.equal(next.errors, 0, `the collector's warnings:\n${seen.lines.join('\n')}`);
    assert.ok(next.blobs.length > 0, 'the next collection finishes the job');
    const { rows, stored, marked } = await inventory(stores);
    assert.deepEqual(marked, []);
    assert.deepEqual(stored, rows, 'the blob store holds no bytes without a row, and no row is without bytes');
    assert.equal((await stores.meta.gc.totalUsage()).unreferencedBlobs, 0);
    for (const [i, image] of kept.entries()) {
      const tag = i < 3 ? `kept${i}` : `revived-${i === 3 ? 'after-bytes-deleted' : 'after-mark'}`;
      await assertPullsBack(base, 'gc/crash', tag, image);
    }
    await stores.close();
    await server.close();
    assertNoServerErrors(server.logs);
  });
});

const moduleUrl = (file: string) => pathToFileURL(path.join(repoRoot, file)).href;

/**
 * Runs a collection in a child process on the server's stores and kills it with SIGKILL at
 * `where`: just after the bytes of its third blob are deleted (inside the transaction that holds
 * the row), or just after its third blob's mark has committed. Resolves that blob's digest.
 */
async function killCollection(t: TestContext, server: TestServer, where: 'after-bytes-deleted' | 'after-mark'): Promise<string> {
  const code = `
    import { loadConfig } from ${JSON.stringify(moduleUrl('src/config/config.ts'))};
    import { openBlobStore, openMetaStore } from ${JSON.stringify(moduleUrl('src/store/open.ts'))};
    import { collectGarbage } from ${JSON.stringify(moduleUrl('src/gc/collector.ts'))};
    import { createLogger } from ${JSON.stringify(moduleUrl('src/log/logger.ts'))};
    const config = loadConfig({ argv: ['--data-dir', process.env.GC_DATA_DIR], env: JSON.parse(process.env.GC_STORE_ENV) });
    const meta = await openMetaStore(config.metadataUrl, { poolSize: 2 });
    const blobs = await openBlobStore(config.blobUrl, { s3: config.s3 });
    const where = process.env.GC_KILL_AT;
    let n = 0;
    const hang = (digest) => { process.stdout.write('at ' + digest + '\\n'); return new Promise(() => {}); };
    const deleteBytes = blobs.delete.bind(blobs);
    blobs.delete = async (digest) => {
      await deleteBytes(digest);
      if (where === 'after-bytes-deleted' && ++n === 3) await hang(digest);
    };
    const mark = meta.gc.markBlobForDeletion.bind(meta.gc);
    meta.gc.markBlobForDeletion = async (...args) => {
      const marked = await mark(...args);
      if (marked && where === 'after-mark' && ++n === 3) await hang(args[0]);
      return marked;
    };
    await collectGarbage({ meta, blobs, log: createLogger({ level: 'silent' }) }, { graceMs: 0, dryRun: false, concurrency: 1 });
    process.stdout.write('finished\\n');
    process.exit(0);
  `;
  const child = spawn(process.execPath, ['--input-type=module', '-e', code], {
    cwd: repoRoot,
    env: { ...process.env, GC_DATA_DIR: server.dataDir, GC_STORE_ENV: JSON.stringify(server.storeEnv), GC_KILL_AT: where },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  t.after(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  });
  const digest = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`the collection did not reach ${where} in 60 s; stderr: ${stderr}`)), 60_000);
    createInterface({ input: child.stdout! }).on('line', (line) => {
      if (line.startsWith('at ')) {
        clearTimeout(timer);
        resolve(line.slice(3));
      } else if (line === 'finished') {
        clearTimeout(timer);
        reject(new Error(`the collection finished before ${where}`));
      }
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`the collection exited with ${code} before ${where}; stderr: ${stderr}`));
    });
  });
  child.kill('SIGKILL');
  await exited;
  return digest;
}
