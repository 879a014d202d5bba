import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { Readable, Transform, type TransformCallback } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { setTimeout as delay } from 'node:timers/promises';
import { after, before, test, type TestContext } from 'node:test';
import { CreatePullThroughCacheRuleCommand, DescribeImagesCommand, type ECRClient } from '@aws-sdk/client-ecr';
import { ADMIN, authedFetch } from '../support/auth.ts';
import { ecrClient } from '../support/aws.ts';
import { backend } from '../support/backend.ts';
import { sharedStores, startCluster } from '../support/cluster.ts';
import { startDistribution, type TestDistribution } from '../support/distribution.ts';
import { checkErrorBody, expectError } from '../support/http.ts';
import { readDirImage } from '../support/layout.ts';
import { blob, buildImage, getBlob, imageOver, MT, pushImage, sha256, waitFor, type BuiltImage } from '../support/oci.ts';
import { startServer, type TestServer } from '../support/server.ts';
import { requireTools, toolSandbox, type ToolSandbox } from '../support/tools.ts';

/**
 * The pull-through cache under concurrency and failure, with real servers: CNCF Distribution as
 * the upstream, behind a small reverse proxy that counts the requests it passes on (and paces
 * blob bodies, so that a fetch lasts long enough for clients to overlap it); node:http servers
 * playing upstreams that lie about blob bytes or rate-limit. What is checked: concurrent first
 * pulls read each blob from the upstream once (on one node, and across two nodes on shared
 * stores), every client gets identical bytes, a client going away does not stop the caching,
 * bad bytes are never cached nor served whole, and a rate limit reaches the client as a 429.
 */

const MiB = 1024 * 1024;
const ACCEPT = [MT.ociManifest, MT.ociIndex, MT.dockerManifest, MT.dockerList].join(', ');

let distribution: TestDistribution;
let server: TestServer;
let ecr: ECRClient;
let tools: ToolSandbox | undefined;

before(async () => {
  distribution = await startDistribution();
  server = await startServer({ env: { BERTH_CACHE_UPSTREAM_TIMEOUT_SECONDS: '20' } });
  ecr = ecrClient(server, ADMIN);
});

after(async () => {
  ecr?.destroy();
  await tools?.close();
  await server?.close();
  await distribution?.stop();
  // Upstream failures are 502/503/429 answers and warnings by design; never a 500 nor an error a human must look at.
  const bad = (server?.logs ?? []).filter((l) => l['status'] === 500 || l['level'] === 'error' || l['level'] === 'fatal');
  assert.deepEqual(bad, [], 'the server answered 500 or logged errors');
});

async function sandbox(): Promise<ToolSandbox> {
  if (!tools) {
    tools = await toolSandbox();
    await tools.login(`127.0.0.1:${server.port}`, ADMIN.accessKeyId, ADMIN.secretAccessKey);
  }
  return tools;
}

// --- upstreams ------------------------------------------------------------------------------------

interface CountingUpstream {
  /** e.g. http://127.0.0.1:41234, to name in a rule. */
  baseUrl: string;
  /** Requests passed on, by method and path (no query). */
  count(method: string, path: string): number;
  /** Responses sent whole, by method and path. */
  completed(method: string, path: string): number;
  /** Every request, as "METHOD /path". */
  requests: string[];
  /** Closes the listener and every connection: the upstream is then unreachable. Idempotent. */
  stop(): Promise<void>;
}

/** Splits chunks into 64 KiB slices, sent at about `bytesPerSecond`. */
function pacer(bytesPerSecond: number): Transform {
  const slice = 64 * 1024;
  return new Transform({
    transform(chunk: Buffer, _encoding, callback: TransformCallback) {
      void (async () => {
        for (let i = 0; i < chunk.length; i += slice) {
          this.push(chunk.subarray(i, i + slice));
          await delay(Math.max(1, Math.round((slice * 1000) / bytesPerSecond)));
        }
      })().then(() => callback(), callback);
    },
  });
}

/**
 * A reverse proxy to `target` that counts what it passes on per path; blob bodies are paced at
 * `bytesPerSecond` when given. Distribution logs no access lines in its test configuration, so
 * counting happens here.
 */
async function countingUpstream(t: TestContext, target: string, options: { bytesPerSecond?: number } = {}): Promise<CountingUpstream> {
  const counts = new Map<string, number>();
  const completions = new Map<string, number>();
  const requests: string[] = [];
  const origin = new URL(target);
  const agent = new http.Agent({ keepAlive: true });
  const proxy = http.createServer((req, res) => {
    const key = `${req.method} ${req.url!.split('?')[0]}`;
    requests.push(key);
    counts.set(key, (counts.get(key) ?? 0) + 1);
    res.on('finish', () => completions.set(key, (completions.get(key) ?? 0) + 1));
    const forward = http.request({ host: origin.hostname, port: origin.port, method: req.method, path: req.url, headers: { ...req.headers, host: origin.host }, agent }, (answer) => {
      res.writeHead(answer.statusCode ?? 502, answer.headers);
      const paced = options.bytesPerSecond !== undefined && req.method === 'GET' && /\/blobs\/sha256:/.test(req.url!);
      (paced ? pipeline(answer, pacer(options.bytesPerSecond!), res) : pipeline(answer, res)).catch(() => res.destroy());
    });
    forward.on('error', () => (res.headersSent ? res.destroy() : res.writeHead(502).end()));
    req.pipe(forward);
  });
  await new Promise<void>((resolve) => proxy.listen(0, '127.0.0.1', resolve));
  let stopped: Promise<void> | undefined;
  const stop = () =>
    (stopped ??= new Promise<void>((resolve) => {
      proxy.close(() => resolve());
      proxy.closeAllConnections();
      agent.destroy();
    }));
  t.after(stop);
  return {
    baseUrl: `http://127.0.0.1:${(proxy.address() as AddressInfo).port}`,
    count: (method, path) => counts.get(`${method} ${path}`) ?? 0,
    completed: (method, path) => completions.get(`${method} ${path}`) ?? 0,
    requests,
    stop,
  };
}

/** A node:http server answering as a registry does, with `handle` deciding the rest; `/v2/` answers 200. */
async function fakeRegistry(t: TestContext, handle: (req: http.IncomingMessage, res: http.ServerResponse) => void): Promise<{ baseUrl: string; requests: string[]; stop(): Promise<void> }> {
  const requests: string[] = [];
  const fake = http.createServer((req, res) => {
    requests.push(`${req.method} ${req.url}`);
    if (req.url === '/v2/' || req.url === '/v2') {
      res.writeHead(200, { 'content-type': 'application/json', 'docker-distribution-api-version': 'registry/2.0' }).end('{}');
      return;
    }
    handle(req, res);
  });
  await new Promise<void>((resolve) => fake.listen(0, '127.0.0.1', resolve));
  let stopped: Promise<void> | undefined;
  const stop = () =>
    (stopped ??= new Promise<void>((resolve) => {
      fake.close(() => resolve());
      fake.closeAllConnections();
    }));
  t.after(stop);
  return { baseUrl: `http://127.0.0.1:${(fake.address() as AddressInfo).port}`, requests, stop };
}

// --- Berth ----------------------------------------------------------------------------------------

/** A rule with a fresh prefix for `upstreamRegistryUrl`; resolves the prefix. */
async function cacheRule(client: ECRClient, upstreamRegistryUrl: string): Promise<string> {
  const ecrRepositoryPrefix = `ptc-${randomBytes(4).toString('hex')}`;
  await client.send(new CreatePullThroughCacheRuleCommand({ ecrRepositoryPrefix, upstreamRegistryUrl }));
  return ecrRepositoryPrefix;
}

/** Whether the registry lists the image under `tag` (the cache stores an image only once all of it is there). */
async function isCached(client: ECRClient, repositoryName: string, tag: string): Promise<boolean> {
  try {
    const out = await client.send(new DescribeImagesCommand({ repositoryName, imageIds: [{ imageTag: tag }] }));
    return out.imageDetails?.length === 1;
  } catch (err) {
    const name = (err as Error).name;
    if (name === 'ImageNotFoundException' || name === 'RepositoryNotFoundException') return false;
    throw err;
  }
}

/** A pull as a client makes it over plain HTTP: the manifest, then every blob at once; each checked byte for byte. */
async function pullOverHttp(baseUrl: string, repository: string, reference: string, image: BuiltImage): Promise<void> {
  const res = await authedFetch(`${baseUrl}/v2/${repository}/manifests/${reference}`, { headers: { accept: ACCEPT } });
  const manifest = Buffer.from(await res.arrayBuffer());
  assert.equal(res.status, 200, `GET ${repository}:${reference}: ${manifest.toString()}`);
  assert.ok(manifest.equals(image.manifest), `${repository}:${reference}: the manifest is byte-identical`);
  assert.equal(res.headers.get('docker-content-digest'), image.digest);
  await Promise.all(
    [image.config, ...image.layers].map(async (b) => {
      const got = await getBlob(baseUrl, repository, b.digest);
      assert.ok(got, `${repository}: blob ${b.digest} found`);
      assert.equal(got.length, b.bytes.length, `${repository}: blob ${b.digest} whole`);
      assert.ok(got.equals(b.bytes), `${repository}: blob ${b.digest} byte-identical`);
    }),
  );
}

async function pullWithSkopeo(repository: string, image: BuiltImage): Promise<void> {
  const sandboxed = await sandbox();
  const dir = await sandboxed.mkdir('pull');
  await sandboxed.skopeo(['copy', '--quiet', '--src-tls-verify=false', `docker://127.0.0.1:${server.port}/${repository}:v1`, `dir:${dir}`], { timeoutMs: 90_000 });
  const got = await readDirImage(dir);
  assert.ok(got.manifest.equals(image.manifest), 'skopeo got the manifest byte-identical');
  for (const b of [image.config, ...image.layers]) assert.ok(got.blobs.get(b.digest)?.equals(b.bytes), `skopeo got blob ${b.digest} byte-identical`);
}

/** Runs every client to its end and fails with every client's failure, not only the first. */
async function allClients(clients: Array<Promise<void>>): Promise<void> {
  const results = await Promise.allSettled(clients);
  const failures = results.flatMap((r, i) => (r.status === 'rejected' ? [`client ${i}: ${(r.reason as Error).stack ?? String(r.reason)}`] : []));
  assert.deepEqual(failures, [], 'every client pulled the image');
}

function upstreamName(): string {
  return `team/app-${randomBytes(4).toString('hex')}`;
}

/** Asserts that the upstream served each blob of the image exactly once. */
function assertEachBlobOnce(upstream: CountingUpstream, repository: string, image: BuiltImage): void {
  for (const b of [image.config, ...image.layers]) {
    assert.equal(upstream.count('GET', `/v2/${repository}/blobs/${b.digest}`), 1, `GET of blob ${b.digest} (${b.bytes.length} bytes) at the upstream; all requests:\n${upstream.requests.join('\n')}`);
  }
}

/** A client's GET of a blob through Berth, as it goes: the status, the first bytes of a 200, and how it ended. */
interface BlobClient {
  status: number;
  /** Resolves once the first bytes of a 200 body came (at once for other answers). */
  firstBytes: Promise<void>;
  /** The bytes received and whether the body came whole; the error body's text for other answers. */
  ended: Promise<{ bytes: number; whole: boolean; text: string }>;
}

async function blobClient(repository: string, digest: string): Promise<BlobClient> {
  const res = await authedFetch(`${server.baseUrl}/v2/${repository}/blobs/${digest}`);
  if (res.status !== 200) {
    const text = await res.text();
    return { status: res.status, firstBytes: Promise.resolve(), ended: Promise.resolve({ bytes: 0, whole: true, text }) };
  }
  let first!: () => void;
  const firstBytes = new Promise<void>((resolve) => (first = resolve));
  const ended = (async () => {
    let bytes = 0;
    try {
      for await (const chunk of res.body as AsyncIterable<Uint8Array>) {
        bytes += chunk.byteLength;
        first();
      }
      return { bytes, whole: true, text: '' };
    } catch {
      return { bytes, whole: false, text: '' };
    } finally {
      first();
    }
  })();
  return { status: 200, firstBytes, ended };
}

/** A handler serving `image` as a registry does, except `special.digest`, whose GET `special.send` answers; `extra` may take a request first. */
function serveImage(image: BuiltImage, special: { digest: string; send(res: http.ServerResponse): void }, extra?: (req: http.IncomingMessage, res: http.ServerResponse, m: RegExpExecArray | null) => boolean) {
  return (req: http.IncomingMessage, res: http.ServerResponse): void => {
    const m = /^\/v2\/(.+)\/(manifests|blobs)\/([^/?]+)$/.exec(req.url ?? '');
    const body = (bytes: Buffer, headers: Record<string, string>) => {
      res.writeHead(200, { 'content-length': String(bytes.length), ...headers });
      res.end(req.method === 'HEAD' ? undefined : bytes);
    };
    if (extra?.(req, res, m)) return;
    if (m?.[2] === 'manifests' && (m[3] === 'v1' || m[3] === image.digest)) return body(image.manifest, { 'content-type': image.mediaType, 'docker-content-digest': image.digest });
    if (m?.[2] === 'blobs' && m[3] === special.digest && req.method === 'GET') return special.send(res);
    const found = [image.config, ...image.layers].find((b) => b.digest === m?.[3]);
    if (m?.[2] === 'blobs' && found) return body(found.bytes, { 'content-type': 'application/octet-stream', 'docker-content-digest': found.digest });
    res.writeHead(404, { 'content-type': 'application/json' }).end(JSON.stringify({ errors: [{ code: m?.[2] === 'blobs' ? 'BLOB_UNKNOWN' : 'MANIFEST_UNKNOWN', message: 'unknown' }] }));
  };
}

/**
 * Clients ask for a blob the upstream fails to deliver soundly: the first (which starts the
 * fetch) gets a 200 whose body breaks off before its end, since the last chunk is held back
 * until the digest is verified; one arriving with it gets the same or the error; one arriving
 * once bytes flow waits for the fetch and gets the error `late` (status and code). None ever
 * gets the whole body, none a 500.
 */
async function assertBlobFailsForEveryone(repository: string, digest: string, sizeBytes: number, late: { status: number; code: string }): Promise<void> {
  const alongside = blobClient(repository, digest);
  const first = await blobClient(repository, digest);
  const second = await alongside;
  assert.ok(first.status === 200 || second.status === 200, 'the client that started the fetch is answered as the bytes come');
  await Promise.race([first, second].filter((c) => c.status === 200).map((c) => c.firstBytes));
  const third = await blobClient(repository, digest);
  for (const c of [first, second, third]) {
    const end = await c.ended;
    // A client that comes while the bytes flow waits for the fetch and gets its failure; one that
    // comes after it failed (a busy machine can be that slow) starts a fetch of its own, which
    // fails the same way: either way it never gets the whole of a blob that is not sound.
    if (c.status !== 200) {
      assert.equal(c.status, late.status, end.text);
      checkErrorBody('application/json', end.text, late.code);
    } else {
      assert.equal(end.whole, false, `a client never gets the whole body of a blob that is not sound (${end.bytes} of ${sizeBytes} bytes came)`);
      assert.ok(end.bytes < sizeBytes);
    }
  }
}

function assertServerUp(logsFrom: number): Promise<void> {
  assert.equal(server.process.exitCode, null, 'the server is still running');
  assert.equal(server.process.signalCode, null);
  assert.deepEqual(server.logs.slice(logsFrom).filter((l) => l['status'] === 500 || l['level'] === 'error' || l['level'] === 'fatal'), [], 'no 500 answer, no error logged');
  return authedFetch(`${server.baseUrl}/v2/`).then((res) => assert.equal(res.status, 200));
}

// --- tests ----------------------------------------------------------------------------------------

test('eight clients (six over HTTP, two skopeo) pull one uncached image at once: identical bytes, each blob read from the upstream once', async (t) => {
  if (!requireTools(t, 'skopeo')) return;
  const upstream = await countingUpstream(t, distribution.baseUrl, { bytesPerSecond: 24 * MiB });
  const image = buildImage({ layers: 3, layerBytes: 3 * MiB });
  const name = upstreamName();
  await pushImage(distribution.baseUrl, name, image, 'v1');
  const prefix = await cacheRule(ecr, upstream.baseUrl);
  const repository = `${prefix}/${name}`;
  await sandbox();

  await allClients([...Array.from({ length: 6 }, () => pullOverHttp(server.baseUrl, repository, 'v1', image)), pullWithSkopeo(repository, image), pullWithSkopeo(repository, image)]);
  await waitFor(() => isCached(ecr, repository, 'v1'), { what: `${repository}:v1 to be cached` });
  assertEachBlobOnce(upstream, name, image);

  // What was cached is served with the upstream gone, by digest and by tag.
  await upstream.stop();
  await pullOverHttp(server.baseUrl, repository, image.digest, image);
  await pullOverHttp(server.baseUrl, repository, 'v1', image);
});

test('a client that goes away after the first bytes of a large layer: another client gets every byte, and the layer is cached', async (t) => {
  // Slow enough that the client leaves well before the layer has all come.
  const upstream = await countingUpstream(t, distribution.baseUrl, { bytesPerSecond: 8 * MiB });
  const large = blob(randomBytes(16 * MiB));
  const image = imageOver([blob(randomBytes(256 * 1024)), large]);
  const name = upstreamName();
  await pushImage(distribution.baseUrl, name, image, 'v1');
  const repository = `${await cacheRule(ecr, upstream.baseUrl)}/${name}`;
  const largePath = `/v2/${name}/blobs/${large.digest}`;

  const leaving = new AbortController();
  const first = await authedFetch(`${server.baseUrl}/v2/${repository}/blobs/${large.digest}`, { signal: leaving.signal });
  assert.equal(first.status, 200);
  assert.equal(first.headers.get('content-length'), String(large.bytes.length));
  const reader = first.body!.getReader();
  const { value } = await reader.read();
  assert.ok(value && value.length > 0 && value.length < large.bytes.length, 'the first bytes came');
  assert.ok(large.bytes.subarray(0, value.length).equals(Buffer.from(value)), 'and they are the layer’s');

  const staying = pullOverHttp(server.baseUrl, repository, 'v1', image);
  leaving.abort();
  await reader.cancel().catch(() => {});
  assert.equal(upstream.completed('GET', largePath), 0, 'the client left while the layer was still coming from the upstream');
  await staying;

  await waitFor(() => isCached(ecr, repository, 'v1'), { what: `${repository}:v1 to be cached` });
  assertEachBlobOnce(upstream, name, image);
  await upstream.stop();
  const cached = await getBlob(server.baseUrl, repository, large.digest);
  assert.ok(cached?.equals(large.bytes), 'the large layer is served from the cache with the upstream gone');
  await pullOverHttp(server.baseUrl, repository, image.digest, image);
});

test('an upstream whose bytes do not match their digest: the pull fails, nothing is cached or served whole, and the server stays up', async (t) => {
  const image = buildImage({ layers: 2, layerBytes: 2 * MiB });
  const bad = image.layers[1]!;
  const corrupted = Buffer.from(bad.bytes);
  corrupted[corrupted.length - 1] = corrupted[corrupted.length - 1]! ^ 0xff;
  const otherDigest = sha256('a manifest the upstream does not hold');
  const liar = await fakeRegistry(
    t,
    serveImage(
      image,
      {
        digest: bad.digest,
        send(res) {
          res.writeHead(200, { 'content-length': String(corrupted.length), 'content-type': 'application/octet-stream', 'docker-content-digest': bad.digest });
          pipeline(Readable.from([corrupted]), pacer(MiB), res).catch(() => res.destroy());
        },
      },
      // Asked for a manifest by another digest, it serves the image's bytes under that digest.
      (req, res, m) => {
        if (m?.[2] !== 'manifests' || m[3] !== otherDigest) return false;
        res.writeHead(200, { 'content-type': image.mediaType, 'content-length': String(image.manifest.length), 'docker-content-digest': otherDigest });
        res.end(req.method === 'HEAD' ? undefined : image.manifest);
        return true;
      },
    ),
  );
  const repository = `${await cacheRule(ecr, liar.baseUrl)}/team/liar`;
  const logsFrom = server.logs.length;

  // Clients ask for the bad layer (before the manifest: the fetch is theirs, not the image's being brought in).
  await assertBlobFailsForEveryone(repository, bad.digest, bad.bytes.length, { status: 502, code: 'DENIED' });
  const manifest = await authedFetch(`${server.baseUrl}/v2/${repository}/manifests/v1`, { headers: { accept: ACCEPT } });
  assert.equal(manifest.status, 200, 'the manifest itself is sound and served at once');
  assert.ok(Buffer.from(await manifest.arrayBuffer()).equals(image.manifest));
  await waitFor(async () => server.logs.slice(logsFrom).some((l) => l['msg'] === 'could not cache an image from upstream' && l['repository'] === repository), {
    what: 'the image brought in behind the pull to fail',
  });
  assert.equal(await isCached(ecr, repository, 'v1'), false, 'nothing half cached is listed');
  // A manifest whose bytes do not match the digest asked for is refused too.
  await expectError(await authedFetch(`${server.baseUrl}/v2/${repository}/manifests/${otherDigest}`, { headers: { accept: ACCEPT } }), 502, 'DENIED');

  // With the liar gone, nothing it sent is served: neither the bad layer nor the image was cached.
  await liar.stop();
  await expectError(await authedFetch(`${server.baseUrl}/v2/${repository}/blobs/${bad.digest}`), 503, 'UNAVAILABLE');
  await expectError(await authedFetch(`${server.baseUrl}/v2/${repository}/manifests/v1`, { headers: { accept: ACCEPT } }), 503, 'UNAVAILABLE');
  await expectError(await authedFetch(`${server.baseUrl}/v2/${repository}/manifests/${image.digest}`, { headers: { accept: ACCEPT } }), 503, 'UNAVAILABLE');
  await assertServerUp(logsFrom);
});

test('an upstream that breaks the connection midway through a blob: clients fail cleanly (503 for those waiting), a later pull caches it', async (t) => {
  const image = buildImage({ layers: 1, layerBytes: 2 * MiB });
  const layer = image.layers[0]!;
  let breaks = true;
  const flaky = await fakeRegistry(
    t,
    serveImage(image, {
      digest: layer.digest,
      send(res) {
        res.writeHead(200, { 'content-length': String(layer.bytes.length), 'content-type': 'application/octet-stream', 'docker-content-digest': layer.digest });
        if (!breaks) {
          pipeline(Readable.from([layer.bytes]), pacer(4 * MiB), res).catch(() => res.destroy());
          return;
        }
        // Half the bytes, then the connection drops.
        const paced = Readable.from([layer.bytes.subarray(0, layer.bytes.length / 2)]).pipe(pacer(MiB));
        paced.pipe(res, { end: false });
        paced.on('end', () => res.socket?.destroy());
      },
    }),
  );
  const repository = `${await cacheRule(ecr, flaky.baseUrl)}/team/flaky`;
  const logsFrom = server.logs.length;
  await assertBlobFailsForEveryone(repository, layer.digest, layer.bytes.length, { status: 503, code: 'UNAVAILABLE' });
  // The upstream mends: the next pull fetches the blob afresh and caches it.
  breaks = false;
  await pullOverHttp(server.baseUrl, repository, 'v1', image);
  await waitFor(() => isCached(ecr, repository, 'v1'), { what: `${repository}:v1 to be cached` });
  await flaky.stop();
  await pullOverHttp(server.baseUrl, repository, image.digest, image);
  await assertServerUp(logsFrom);
});

test('an upstream answering 429 with Retry-After to a first pull: the client gets 429 TOOMANYREQUESTS', async (t) => {
  const limited = await fakeRegistry(t, (_req, res) => {
    res.writeHead(429, { 'content-type': 'application/json', 'retry-after': '37' }).end(JSON.stringify({ errors: [{ code: 'TOOMANYREQUESTS', message: 'You have reached your pull rate limit.' }] }));
  });
  const repository = `${await cacheRule(ecr, limited.baseUrl)}/library/alpine`;
  const asked = [
    authedFetch(`${server.baseUrl}/v2/${repository}/manifests/3.20`, { headers: { accept: ACCEPT } }),
    authedFetch(`${server.baseUrl}/v2/${repository}/manifests/${sha256('an image')}`, { headers: { accept: ACCEPT } }),
    authedFetch(`${server.baseUrl}/v2/${repository}/blobs/${sha256('a layer')}`),
  ];
  for (const res of await Promise.all(asked)) {
    assert.equal(res.headers.get('retry-after'), '37', `${res.url}: the upstream's Retry-After is passed on`);
    const body = await expectError(res, 429, 'TOOMANYREQUESTS');
    assert.match(body.errors[0]!.message, /rate-limiting \(retry after 37 s\)/);
  }
  const head = await authedFetch(`${server.baseUrl}/v2/${repository}/manifests/3.20`, { method: 'HEAD', headers: { accept: ACCEPT } });
  assert.equal(head.status, 429);
  assert.equal(head.headers.get('retry-after'), '37');
  assert.ok(limited.requests.some((r) => r.includes('/manifests/3.20')), 'the upstream was asked');
  assert.equal(await isCached(ecr, repository, '3.20'), false);
});

test('two nodes on shared stores, eight clients split across them: the upstream serves each blob once', async (t) => {
  if (backend !== 'scaleout') {
    t.skip('a cluster on shared stores is the scale-out backend’s (PostgreSQL leases, one S3 bucket)');
    return;
  }
  const stores = await sharedStores('berth-ptc-cluster');
  const cluster = await startCluster(2, { env: { ...stores.env, BERTH_AUTH_SECRET_KEY: randomBytes(32).toString('base64'), BERTH_CACHE_UPSTREAM_TIMEOUT_SECONDS: '20' } });
  t.after(async () => {
    await cluster.close();
    await stores.cleanup();
  });
  const clusterEcr = ecrClient(cluster.nodes[0]!, ADMIN);
  t.after(() => clusterEcr.destroy());
  const upstream = await countingUpstream(t, distribution.baseUrl, { bytesPerSecond: 16 * MiB });
  const image = buildImage({ layers: 3, layerBytes: 3 * MiB });
  const name = upstreamName();
  await pushImage(distribution.baseUrl, name, image, 'v1');
  const repository = `${await cacheRule(clusterEcr, upstream.baseUrl)}/${name}`;

  await allClients(Array.from({ length: 8 }, (_, i) => pullOverHttp(cluster.nodes[i % 2]!.baseUrl, repository, 'v1', image)));
  await waitFor(() => isCached(clusterEcr, repository, 'v1'), { what: `${repository}:v1 to be cached` });
  assertEachBlobOnce(upstream, name, image);
  const bad = cluster.nodes.flatMap((n) => n.logs.filter((l) => l['status'] === 500 || l['level'] === 'error' || l['level'] === 'fatal'));
  assert.deepEqual(bad, [], 'no node answered 500 or logged errors');
});
