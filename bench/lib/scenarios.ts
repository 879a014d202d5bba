import { performance } from 'node:perf_hooks';
import type { BlobFile } from './data.ts';
import { randomBlob, sha256 } from './data.ts';
import { ACCEPT_MANIFESTS, mapLimit, type RegistryClient } from './registry-client.ts';
import type { BenchServer, ServerName } from './servers.ts';
import { placeBlobBytes, placeManifest } from './static-mirror.ts';
import { runAbHead } from './ab.ts';
import { curlPull } from './curl.ts';
import { runWrk } from './wrk.ts';

export const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
const OCI_CONFIG = 'application/vnd.oci.image.config.v1+json';
const OCI_LAYER = 'application/vnd.oci.image.layer.v1.tar';

export interface Settings {
  reps: number;
  isQuick: boolean;
  pushBlobBytes: number;
  chunkBytes: number;
  bigBlobBytes: number;
  streamBlobBytes: number;
  streams: number;
  wrkSeconds: number;
  wrkConnections: number[];
  layers: number;
  layerMinBytes: number;
  layerMaxBytes: number;
  /** Layers moved at once in the image push and pull (Docker's defaults are 5 up and 3 down). */
  imageConcurrency: number;
  tags: number;
  tagConcurrency: number;
  servers: ServerName[];
}

export interface SmallBlob {
  bytes: Buffer;
  digest: string;
}

export interface Image {
  config: SmallBlob;
  layers: SmallBlob[];
  manifest: Buffer;
  digest: string;
}

/** Content every repetition reads: pushed once, before the first repetition. */
export interface Fixtures {
  pullRepo: string;
  bigBlob: BlobFile;
  streamBlobs: BlobFile[];
  manifestRepo: string;
  manifestTag: string;
  manifestImage: Image;
}

/** Content made fresh for each repetition, so no push finds its blob already stored. */
export interface RepData {
  rep: number;
  monolithicBlob: BlobFile;
  chunkedBlob: BlobFile;
  image: Image;
  tagBase: Image;
}

export interface ScenarioContext {
  settings: Settings;
  fixtures: Fixtures;
  data: RepData;
  server: BenchServer;
  client: RegistryClient;
  scratchDir: string;
}

export interface MetricSpec {
  key: string;
  label: string;
  unit: string;
  better: 'higher' | 'lower';
}

export interface Scenario {
  id: string;
  servers: ServerName[];
  metrics: MetricSpec[];
  run(ctx: ScenarioContext): Promise<Record<string, number>>;
}

const MB = 1e6;
const MiB = 1024 * 1024;

export function sizeLabel(bytes: number): string {
  return bytes >= 1024 * MiB ? `${bytes / (1024 * MiB)} GiB` : `${bytes / MiB} MiB`;
}

async function timed<T>(fn: () => Promise<T>): Promise<{ result: T; seconds: number }> {
  const t0 = performance.now();
  const result = await fn();
  return { result, seconds: (performance.now() - t0) / 1000 };
}

/** An OCI image manifest over the given blobs; annotations make otherwise equal manifests distinct. */
export function buildImage(config: SmallBlob, layers: SmallBlob[], annotations?: Record<string, string>): Image {
  const manifest = Buffer.from(JSON.stringify({
    schemaVersion: 2,
    mediaType: OCI_MANIFEST,
    config: { mediaType: OCI_CONFIG, digest: config.digest, size: config.bytes.length },
    layers: layers.map((l) => ({ mediaType: OCI_LAYER, digest: l.digest, size: l.bytes.length })),
    ...(annotations ? { annotations } : {}),
  }));
  return { config, layers, manifest, digest: sha256(manifest) };
}

/** A config blob that looks like a real image config (Distribution does not read it, Berth may). */
export function configBlob(layers: SmallBlob[]): SmallBlob {
  const bytes = Buffer.from(JSON.stringify({
    architecture: 'amd64',
    os: 'linux',
    config: {},
    rootfs: { type: 'layers', diff_ids: layers.map((l) => l.digest) },
  }));
  return { bytes, digest: sha256(bytes) };
}

export async function makeImage(layerSizes: number[], annotations?: Record<string, string>): Promise<Image> {
  const layers = await Promise.all(layerSizes.map((size) => randomBlob(size)));
  return buildImage(configBlob(layers), layers, annotations);
}

/**
 * Puts an image where `server` serves it: through the protocol for the registries (HEAD each
 * blob first, as clients do), as files for nginx.
 */
export async function pushImage(server: BenchServer, client: RegistryClient, repo: string, image: Image, tags: string[], concurrency: number): Promise<void> {
  if (server.staticRoot) {
    for (const blob of [image.config, ...image.layers]) await placeBlobBytes(server.staticRoot, repo, blob.digest, blob.bytes);
    await placeManifest(server.staticRoot, repo, [...tags, image.digest], image.manifest);
    return;
  }
  await mapLimit([...image.layers, image.config], concurrency, async (blob) => {
    if (await client.blobExists(repo, blob.digest)) return;
    await client.pushBlobMonolithic(repo, { digest: blob.digest, sizeBytes: blob.bytes.length, bytes: blob.bytes });
  });
  for (const tag of tags) await client.putManifest(repo, tag, OCI_MANIFEST, image.manifest);
}

/** Pulls an image by tag as a client does: manifest, config, then layers a few at a time. */
export async function pullImage(client: RegistryClient, repo: string, tag: string, concurrency: number): Promise<number> {
  const res = await client.getManifest(repo, tag);
  const manifest = JSON.parse(res.body.toString('utf8')) as { config: { digest: string; size: number }; layers: { digest: string; size: number }[] };
  let bytes = await client.pullBlob(repo, manifest.config.digest, manifest.config.size);
  const sizes = await mapLimit(manifest.layers, concurrency, (l) => client.pullBlob(repo, l.digest, l.size));
  for (const s of sizes) bytes += s;
  return bytes;
}

/** The server's Authorization header for the external load tools (wrk, ab, curl), if it needs one. */
function authHeader(server: BenchServer): Record<string, string> {
  return server.authorization === undefined ? {} : { Authorization: server.authorization };
}

function wrkScenario(method: 'GET' | 'HEAD', connections: number): Scenario {
  const what = method === 'GET' ? 'Manifest GET by tag (wrk)' : 'Manifest HEAD by digest (ab)';
  return {
    id: `manifest-${method.toLowerCase()}-c${connections}`,
    servers: ['berth', 'distribution', 'nginx'],
    metrics: [
      { key: 'rps', label: `${what}, ${connections} conn`, unit: 'req/s', better: 'higher' },
      { key: 'p50Ms', label: `${what}, ${connections} conn, p50`, unit: 'ms', better: 'lower' },
      { key: 'p99Ms', label: `${what}, ${connections} conn, p99`, unit: 'ms', better: 'lower' },
    ],
    async run(ctx) {
      const { fixtures } = ctx;
      const reference = method === 'GET' ? fixtures.manifestTag : fixtures.manifestImage.digest;
      const url = `${ctx.server.baseUrl}/v2/${fixtures.manifestRepo}/manifests/${reference}`;
      const headers: Record<string, string> = { Accept: ACCEPT_MANIFESTS, ...authHeader(ctx.server) };
      const durationSeconds = ctx.settings.wrkSeconds;
      const r = method === 'GET'
        ? await runWrk({ url, method, headers, connections, durationSeconds, scriptDir: ctx.scratchDir })
        : await runAbHead({ url, headers, connections, durationSeconds, scratchDir: ctx.scratchDir });
      if (r.non2xx > 0 || r.socketErrors > 0 || r.requests === 0) {
        throw new Error(`${r.tool} ${method} ${url}: ${r.requests} requests, ${r.non2xx} non-2xx responses, ${r.socketErrors} socket errors or failures`);
      }
      return { rps: r.requestsPerSecond, p50Ms: r.p50Ms, p99Ms: r.p99Ms, requests: r.requests, p90Ms: r.p90Ms };
    },
  };
}

/** GETs the blobs all at once, through node:http or curl, and reports aggregate MB/s. */
function pullScenario(id: string, label: string, client: 'node' | 'curl', blobs: (f: Fixtures) => BlobFile[]): Scenario {
  return {
    id,
    servers: ['berth', 'distribution', 'nginx'],
    metrics: [{ key: 'mbps', label, unit: 'MB/s', better: 'higher' }],
    async run(ctx) {
      const list = blobs(ctx.fixtures);
      const repo = ctx.fixtures.pullRepo;
      const { result, seconds } = await timed(async () => {
        if (client === 'curl') {
          return curlPull(list.map((b) => `${ctx.server.baseUrl}/v2/${repo}/blobs/${b.digest}`), list.map((b) => b.sizeBytes), authHeader(ctx.server));
        }
        const sizes = await Promise.all(list.map((b) => ctx.client.pullBlob(repo, b.digest, b.sizeBytes)));
        return sizes.reduce((a, b) => a + b, 0);
      });
      return { mbps: result / MB / seconds, seconds };
    },
  };
}

/** Every scenario of one repetition, in the order they run. */
export function scenarios(settings: Settings): Scenario[] {
  const list: Scenario[] = [
    {
      id: 'push-monolithic',
      servers: ['berth', 'distribution'],
      metrics: [{ key: 'mbps', label: `Blob push, monolithic (POST+PUT ${sizeLabel(settings.pushBlobBytes)})`, unit: 'MB/s', better: 'higher' }],
      async run(ctx) {
        const blob = ctx.data.monolithicBlob;
        const { seconds } = await timed(() => ctx.client.pushBlobMonolithic(`bench/push-r${ctx.data.rep}`, blob));
        return { mbps: blob.sizeBytes / MB / seconds, seconds };
      },
    },
    {
      id: 'push-chunked',
      servers: ['berth', 'distribution'],
      metrics: [{ key: 'mbps', label: `Blob push, chunked (PATCH ${sizeLabel(settings.chunkBytes)} x ${settings.pushBlobBytes / settings.chunkBytes})`, unit: 'MB/s', better: 'higher' }],
      async run(ctx) {
        const blob = ctx.data.chunkedBlob;
        const { seconds } = await timed(() => ctx.client.pushBlobChunked(`bench/push-r${ctx.data.rep}`, blob, settings.chunkBytes));
        return { mbps: blob.sizeBytes / MB / seconds, seconds };
      },
    },
    pullScenario('pull-single', `Blob pull, 1 stream (${sizeLabel(settings.bigBlobBytes)})`, 'node', (f) => [f.bigBlob]),
    pullScenario('pull-concurrent', `Blob pull, ${settings.streams} streams (${sizeLabel(settings.streamBlobBytes)} each, aggregate)`, 'node', (f) => f.streamBlobs),
    pullScenario('pull-single-curl', `Blob pull, 1 stream, curl client (${sizeLabel(settings.bigBlobBytes)})`, 'curl', (f) => [f.bigBlob]),
    pullScenario('pull-concurrent-curl', `Blob pull, ${settings.streams} streams, curl client (aggregate)`, 'curl', (f) => f.streamBlobs),
  ];
  for (const method of ['GET', 'HEAD'] as const) {
    for (const c of settings.wrkConnections) list.push(wrkScenario(method, c));
  }
  list.push(
    {
      id: 'image',
      servers: ['berth', 'distribution', 'nginx'],
      metrics: [
        { key: 'pushSeconds', label: `${settings.layers}-layer image push (${sizeLabel(settings.layerMinBytes)}-${sizeLabel(settings.layerMaxBytes)} layers)`, unit: 's', better: 'lower' },
        { key: 'pullSeconds', label: `${settings.layers}-layer image pull`, unit: 's', better: 'lower' },
      ],
      async run(ctx) {
        const repo = `bench/image-r${ctx.data.rep}`;
        const image = ctx.data.image;
        const push = await timed(() => pushImage(ctx.server, ctx.client, repo, image, ['v1'], settings.imageConcurrency));
        const pull = await timed(() => pullImage(ctx.client, repo, 'v1', settings.imageConcurrency));
        const out: Record<string, number> = { pullSeconds: pull.seconds, pullBytes: pull.result };
        // nginx had files written, not pushed: no push figure.
        if (!ctx.server.staticRoot) out['pushSeconds'] = push.seconds;
        return out;
      },
    },
    {
      id: 'tags',
      servers: ['berth', 'distribution'],
      metrics: [
        { key: 'pushSeconds', label: `${settings.tags} tag pushes (PUT manifest, ${settings.tagConcurrency} at a time)`, unit: 's', better: 'lower' },
        { key: 'listMs', label: `Tags list of ${settings.tags} tags (one request)`, unit: 'ms', better: 'lower' },
      ],
      async run(ctx) {
        const repo = `bench/tags-r${ctx.data.rep}`;
        const base = ctx.data.tagBase;
        await pushImage(ctx.server, ctx.client, repo, base, [], 1);
        const tags = Array.from({ length: settings.tags }, (_, i) => `t${String(i).padStart(5, '0')}`);
        // Each tag gets its own manifest (as CI pushes distinct builds), built before the clock starts.
        const manifests = tags.map((tag) => buildImage(base.config, base.layers, { 'org.opencontainers.image.version': tag }).manifest);
        const push = await timed(() => mapLimit(tags, settings.tagConcurrency, (tag, i) => ctx.client.putManifest(repo, tag, OCI_MANIFEST, manifests[i]!)));
        const list = await timed(() => ctx.client.listTags(repo));
        if (list.result.length !== settings.tags) throw new Error(`tags list of ${repo} has ${list.result.length} tags, wanted ${settings.tags}`);
        return { pushSeconds: push.seconds, listMs: list.seconds * 1000, tagsPerSecond: settings.tags / push.seconds };
      },
    },
  );
  return list.map((s) => ({ ...s, servers: s.servers.filter((n) => settings.servers.includes(n)) }));
}

