import { createHash } from 'node:crypto';
import { DatabaseSync } from 'node:sqlite';
import pg from 'pg';
import { seededRandom } from './data.ts';

/**
 * The metadata of bench/scale.ts: repositories, manifests, blobs, links, references and tags as a
 * busy registry holds them, generated in code and written straight into a migrated store's
 * tables (no HTTP, no Kysely: plain prepared statements on SQLite, array-parameter inserts on
 * PostgreSQL), so that 100,000 manifests load in a minute or two.
 *
 * Shape at scale 1 (everything scales with `scale`; the shares stay the same):
 * - 1,000 repositories in one account; `platform/monorepo` holds a tenth of the manifests
 *   (10,000), the others about 90 each.
 * - Every manifest is an OCI image manifest with a config and 9 layers, so 10 references each:
 *   4 base layers from one of 40 base images shared across the registry, 3 layers from a pool of
 *   12 kept per repository (dependencies shared between a repository's images), and a unique
 *   config and 2 unique layers.
 * - Pushes are spread over the last 400 days, oldest first. Each image has a tag (a tenth have
 *   a second one); 4 % are untagged (older than two days, so garbage to a collection with the
 *   default grace period), and 1 % of the blob rows are referenced by nothing.
 */

export const BASE_IMAGES = 40;
export const BASE_LAYERS = 4;
export const REPO_POOL = 12;
export const REPO_LAYERS = 3;
export const UNIQUE_LAYERS = 2;
export const REFERENCES_PER_MANIFEST = 1 + BASE_LAYERS + REPO_LAYERS + UNIQUE_LAYERS;
const DAY_MS = 86_400_000;
const SPAN_MS = 400 * DAY_MS;
const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
const OCI_CONFIG = 'application/vnd.oci.image.config.v1+json';
const OCI_LAYER = 'application/vnd.oci.image.layer.v1.tar+gzip';

export interface ScaleShape {
  scale: number;
  repositories: number;
  manifests: number;
  bigRepository: string;
  bigRepositoryImages: number;
  references: number;
}

export function scaleShape(scale: number): ScaleShape {
  // The smallest size ("empty": a few images) keeps two repositories, so there is a big one and another.
  const repositories = Math.max(2, Math.round(1000 * scale));
  const manifests = Math.max(20, Math.round(100_000 * scale));
  return {
    scale,
    repositories,
    manifests,
    bigRepository: 'platform/monorepo',
    bigRepositoryImages: Math.round(manifests / 10),
    references: manifests * REFERENCES_PER_MANIFEST,
  };
}

export interface BlobRow {
  digest: string;
  sizeBytes: number;
  atMs: number;
}

export interface ManifestRow {
  digest: string;
  payload: Buffer;
  createdAtMs: number;
  lastPulledAtMs: number | null;
  /** The blobs it references, config first. */
  blobs: string[];
  tags: string[];
}

/** One repository's rows: the blobs first recorded with it, its links, manifests and tags. */
export interface RepositoryChunk {
  id: number;
  name: string;
  createdAtMs: number;
  blobs: BlobRow[];
  links: string[];
  manifests: ManifestRow[];
}

/** What the benchmark needs to know about the generated data. */
export interface ScaleIndex {
  shape: ScaleShape;
  accountId: string;
  /** Tagged images, for GET by tag and HEAD by digest: [repository, tag, digest]. */
  images: [string, string, string][];
  untaggedManifests: number;
  orphanBlobs: number;
  blobs: number;
  links: number;
  tags: number;
}

function sha256(text: string): string {
  return `sha256:${createHash('sha256').update(text).digest('hex')}`;
}

function repositoryName(i: number): string {
  return `team-${String(i % 50).padStart(2, '0')}/service-${String(i).padStart(4, '0')}`;
}

/**
 * Generates the data repository by repository (the big one first), calling `sink` with each;
 * deterministic for a given scale and `nowMs`'s day.
 */
export async function generate(scale: number, accountId: string, nowMs: number, sink: (chunk: RepositoryChunk) => Promise<void>): Promise<ScaleIndex> {
  const shape = scaleShape(scale);
  const rand = seededRandom(42);
  const size = (min: number, max: number) => min + Math.floor(rand() * (max - min));
  const index: ScaleIndex = { shape, accountId, images: [], untaggedManifests: 0, orphanBlobs: 0, blobs: 0, links: 0, tags: 0 };
  const baseImages = Array.from({ length: BASE_IMAGES }, (_, b) =>
    Array.from({ length: BASE_LAYERS }, (_, l) => ({ digest: sha256(`base:${b}:${l}`), sizeBytes: size(2_000_000, 40_000_000) })),
  );
  let baseEmitted = false;
  const others = shape.repositories - 1;
  const perOther = Math.floor((shape.manifests - shape.bigRepositoryImages) / others);
  let extra = shape.manifests - shape.bigRepositoryImages - perOther * others;
  for (let r = 0; r < shape.repositories; r++) {
    const isBig = r === 0;
    const name = isBig ? shape.bigRepository : repositoryName(r);
    const count = isBig ? shape.bigRepositoryImages : perOther + (extra-- > 0 ? 1 : 0);
    const repoCreatedAtMs = nowMs - SPAN_MS - DAY_MS;
    const chunk: RepositoryChunk = { id: r + 1, name, createdAtMs: repoCreatedAtMs, blobs: [], links: [], manifests: [] };
    const linked = new Set<string>();
    const link = (d: string) => {
      if (!linked.has(d)) {
        linked.add(d);
        chunk.links.push(d);
      }
    };
    if (!baseEmitted) {
      for (const layers of baseImages) for (const l of layers) chunk.blobs.push({ ...l, atMs: repoCreatedAtMs });
      baseEmitted = true;
    }
    const pool = Array.from({ length: REPO_POOL }, (_, p) => ({ digest: sha256(`repo:${r}:${p}`), sizeBytes: size(100_000, 20_000_000), atMs: repoCreatedAtMs }));
    chunk.blobs.push(...pool);
    const base = baseImages[r % BASE_IMAGES]!;
    for (let i = 0; i < count; i++) {
      const createdAtMs = nowMs - Math.floor(((count - i) / count) * SPAN_MS);
      const config = { digest: sha256(`config:${r}:${i}`), sizeBytes: size(1_000, 12_000), atMs: createdAtMs };
      const unique = Array.from({ length: UNIQUE_LAYERS }, (_, u) => ({ digest: sha256(`layer:${r}:${i}:${u}`), sizeBytes: size(1_000, 5_000_000), atMs: createdAtMs }));
      const shared = Array.from({ length: REPO_LAYERS }, (_, k) => pool[(Math.floor(i / 20) + k * 5) % REPO_POOL]!);
      const layers = [...base, ...shared, ...unique];
      chunk.blobs.push(config, ...unique);
      const doc = {
        schemaVersion: 2,
        mediaType: OCI_MANIFEST,
        config: { mediaType: OCI_CONFIG, digest: config.digest, size: config.sizeBytes },
        layers: layers.map((l) => ({ mediaType: OCI_LAYER, digest: l.digest, size: l.sizeBytes })),
        annotations: { 'org.opencontainers.image.created': new Date(createdAtMs).toISOString(), 'org.opencontainers.image.source': `https://git.example.com/${name}` },
      };
      const payload = Buffer.from(JSON.stringify(doc));
      const digest = `sha256:${createHash('sha256').update(payload).digest('hex')}`;
      // Untagged: 4 %, never among the two newest days (still within a collection's grace period).
      const isUntagged = rand() < 0.04 && nowMs - createdAtMs > 2 * DAY_MS;
      const tags = isUntagged ? [] : isBig ? [`build-${String(i + 1).padStart(6, '0')}`] : [`v1.${i}.0`];
      if (!isUntagged && rand() < 0.1) tags.push(isBig ? `release-${String(i + 1).padStart(6, '0')}` : `v1.${i}`);
      const lastPulledAtMs = rand() < 0.3 ? createdAtMs + Math.floor(rand() * (nowMs - createdAtMs)) : null;
      const blobs = [config.digest, ...layers.map((l) => l.digest)];
      for (const d of blobs) link(d);
      chunk.manifests.push({ digest, payload, createdAtMs, lastPulledAtMs, blobs, tags });
      if (tags.length > 0) index.images.push([name, tags[0]!, digest]);
      else index.untaggedManifests++;
      index.tags += tags.length;
    }
    // Blobs pushed but never referenced (a push that failed, a manifest deleted long ago).
    const orphans = Math.round(count * 0.03);
    for (let o = 0; o < orphans; o++) {
      const d = { digest: sha256(`orphan:${r}:${o}`), sizeBytes: size(1_000, 1_000_000), atMs: nowMs - 30 * DAY_MS };
      chunk.blobs.push(d);
      link(d.digest);
    }
    index.orphanBlobs += orphans;
    index.blobs += chunk.blobs.length;
    index.links += chunk.links.length;
    await sink(chunk);
  }
  return index;
}

/**
 * Rows `jobs` gets before the server first starts: every background job due only in a year, so
 * that none runs on its own during the measurements; the benchmark brings one forward when it
 * wants it (the scheduler then runs it at its next tick).
 */
const JOBS = ['upload-sweep', 'lifecycle', 'gc'];

// --- SQLite ------------------------------------------------------------------------------------

/** Writes the data into a migrated SQLite file, in one transaction. */
export async function loadSqlite(file: string, scale: number, accountId: string, nowMs: number): Promise<ScaleIndex> {
  const db = new DatabaseSync(file);
  try {
    db.exec('PRAGMA journal_mode = WAL; PRAGMA synchronous = OFF; PRAGMA cache_size = -262144;');
    const insRepo = db.prepare('insert into repositories (id, account_id, name, created_at) values (?, ?, ?, ?)');
    const insBlob = db.prepare('insert or ignore into blobs (digest, size_bytes, created_at, last_used_at) values (?, ?, ?, ?)');
    const insLink = db.prepare('insert into repository_blobs (repository_id, digest, created_at) values (?, ?, ?)');
    const insManifest = db.prepare(
      'insert into manifests (repository_id, digest, media_type, size_bytes, payload, artifact_type, subject_digest, annotations, created_at, last_pulled_at) values (?, ?, ?, ?, ?, ?, null, ?, ?, ?)',
    );
    const insRef = db.prepare("insert or ignore into manifest_references (repository_id, manifest_digest, reference_digest, kind) values (?, ?, ?, 'blob')");
    const insTag = db.prepare('insert into tags (repository_id, name, manifest_digest, updated_at) values (?, ?, ?, ?)');
    db.exec('begin');
    const index = await generate(scale, accountId, nowMs, async (c) => {
      insRepo.run(c.id, accountId, c.name, c.createdAtMs);
      for (const b of c.blobs) insBlob.run(b.digest, b.sizeBytes, b.atMs, b.atMs);
      for (const d of c.links) insLink.run(c.id, d, c.createdAtMs);
      for (const m of c.manifests) {
        insManifest.run(c.id, m.digest, OCI_MANIFEST, m.payload.byteLength, m.payload, OCI_CONFIG, annotationsOf(m), m.createdAtMs, m.lastPulledAtMs);
        for (const d of m.blobs) insRef.run(c.id, m.digest, d);
        for (const t of m.tags) insTag.run(c.id, t, m.digest, m.createdAtMs);
      }
    });
    const insJob = db.prepare('insert into jobs (name, next_run_at) values (?, ?) on conflict (name) do update set next_run_at = excluded.next_run_at');
    for (const j of JOBS) insJob.run(j, nowMs + 365 * DAY_MS);
    db.exec('commit');
    db.exec('PRAGMA wal_checkpoint(TRUNCATE);');
    return index;
  } finally {
    db.close();
  }
}

function annotationsOf(m: ManifestRow): string {
  return JSON.stringify((JSON.parse(m.payload.toString('utf8')) as { annotations: unknown }).annotations);
}

// --- PostgreSQL --------------------------------------------------------------------------------

/**
 * Writes the data into a migrated PostgreSQL database: each table's rows of about 20,000
 * references' worth of repositories in one `insert ... select from unnest(...)` per table, in
 * one transaction; then ANALYZE (which autovacuum would run soon after such a load) and the
 * repository id sequence moved past the ids used.
 */
export async function loadPostgres(url: string, scale: number, accountId: string, nowMs: number): Promise<ScaleIndex> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    await client.query('begin');
    let pending: RepositoryChunk[] = [];
    let pendingRefs = 0;
    const flush = async () => {
      if (pending.length === 0) return;
      const repos = pending;
      pending = [];
      pendingRefs = 0;
      await client.query('insert into repositories (id, account_id, name, created_at) select * from unnest($1::int[], $2::text[], $3::text[], $4::bigint[])', [
        repos.map((c) => c.id), repos.map(() => accountId), repos.map((c) => c.name), repos.map((c) => c.createdAtMs),
      ]);
      const blobs = repos.flatMap((c) => c.blobs);
      await client.query('insert into blobs (digest, size_bytes, created_at, last_used_at) select * from unnest($1::text[], $2::bigint[], $3::bigint[], $4::bigint[]) on conflict do nothing', [
        blobs.map((b) => b.digest), blobs.map((b) => b.sizeBytes), blobs.map((b) => b.atMs), blobs.map((b) => b.atMs),
      ]);
      const links = repos.flatMap((c) => c.links.map((d) => [c.id, d, c.createdAtMs] as const));
      await client.query('insert into repository_blobs (repository_id, digest, created_at) select * from unnest($1::int[], $2::text[], $3::bigint[])', [
        links.map((l) => l[0]), links.map((l) => l[1]), links.map((l) => l[2]),
      ]);
      const ms = repos.flatMap((c) => c.manifests.map((m) => ({ id: c.id, m })));
      await client.query(
        `insert into manifests (repository_id, digest, media_type, size_bytes, payload, artifact_type, annotations, created_at, last_pulled_at)
         select r, d, '${OCI_MANIFEST}', s, p, '${OCI_CONFIG}', a, c, l from unnest($1::int[], $2::text[], $3::bigint[], $4::bytea[], $5::text[], $6::bigint[], $7::bigint[]) as x(r, d, s, p, a, c, l)`,
        [ms.map((x) => x.id), ms.map((x) => x.m.digest), ms.map((x) => x.m.payload.byteLength), ms.map((x) => x.m.payload), ms.map((x) => annotationsOf(x.m)), ms.map((x) => x.m.createdAtMs), ms.map((x) => x.m.lastPulledAtMs)],
      );
      const refs = ms.flatMap((x) => [...new Set(x.m.blobs)].map((d) => [x.id, x.m.digest, d] as const));
      await client.query("insert into manifest_references (repository_id, manifest_digest, reference_digest, kind) select r, m, d, 'blob' from unnest($1::int[], $2::text[], $3::text[]) as x(r, m, d)", [
        refs.map((r) => r[0]), refs.map((r) => r[1]), refs.map((r) => r[2]),
      ]);
      const tags = ms.flatMap((x) => x.m.tags.map((t) => [x.id, t, x.m.digest, x.m.createdAtMs] as const));
      await client.query('insert into tags (repository_id, name, manifest_digest, updated_at) select * from unnest($1::int[], $2::text[], $3::text[], $4::bigint[])', [
        tags.map((t) => t[0]), tags.map((t) => t[1]), tags.map((t) => t[2]), tags.map((t) => t[3]),
      ]);
    };
    const index = await generate(scale, accountId, nowMs, async (c) => {
      pending.push(c);
      pendingRefs += c.manifests.length * REFERENCES_PER_MANIFEST;
      if (pendingRefs >= 20_000) await flush();
    });
    await flush();
    for (const j of JOBS) {
      await client.query('insert into jobs (name, next_run_at) values ($1, $2) on conflict (name) do update set next_run_at = excluded.next_run_at', [j, nowMs + 365 * DAY_MS]);
    }
    await client.query("select setval(pg_get_serial_sequence('repositories', 'id'), (select max(id) from repositories))");
    await client.query('commit');
    await client.query('analyze');
    return index;
  } finally {
    await client.end();
  }
}
