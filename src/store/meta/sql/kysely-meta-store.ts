import { Migrator, sql, type Kysely, type Transaction } from 'kysely';
import type { BlobInfo } from '../../blob/blob-store.ts';
import { defaultRepositorySettings, type ImageId, type ImageRecord, type PullRecord, type PutManifestOutcome, type TagStatus, type ManifestRecord, type ManifestReference, type ManifestSummary, type MetaStore, type Page, type Repository, type RepositorySettings, type RepositoryTemplate, type TagMutability, type Upload, type JobState } from '../meta-store.ts';
import { migrationProvider } from '../migrations/index.ts';
import type { Schema } from './schema.ts';
import { KyselyIdentityStore } from './kysely-identity-store.ts';
import type { IdentityStore } from '../identity-store.ts';
import type { GcStore } from '../gc-store.ts';
import type { LifecycleStore } from '../lifecycle-store.ts';
import type { EventStore } from '../event-store.ts';
import { KyselyGcStore } from './kysely-gc-store.ts';
import { KyselyLifecycleStore } from './kysely-lifecycle-store.ts';
import { KyselyScanStore } from './kysely-scan-store.ts';
import { KyselyVulnDbStore } from './kysely-vulndb-store.ts';
import type { VulnDbStore } from '../vulndb-store.ts';
import type { ScanStore } from '../scan-store.ts';
import type { ReplicationStore } from '../replication-store.ts';
import { KyselyReplicationStore } from './kysely-replication-store.ts';
import type { SecretStore } from '../secret-store.ts';
import { KyselySecretStore } from './kysely-secret-store.ts';
import type { CacheStore } from '../cache-store.ts';
import { KyselyCacheStore } from './kysely-cache-store.ts';
import { KyselyEventStore } from './kysely-event-store.ts';
import type { AuditStore } from '../audit-store.ts';
import { KyselyAuditStore } from './kysely-audit-store.ts';
import type { ListingStore } from '../listing-store.ts';
import { KyselyListingStore } from './kysely-listing-store.ts';
import { yieldToEventLoop } from './pacing.ts';
import { deleteManifestRows, IN_CHUNK, lockManifests, touchBlobs, withLock, type Db, type Dialect } from './locks.ts';

/** Pull times written per transaction. */
const PULL_BATCH = 200;

const summaryColumns = ['digest', 'media_type', 'size_bytes', 'artifact_type', 'subject_digest', 'annotations', 'created_at'] as const;

interface ManifestRow {
  digest: string;
  media_type: string;
  size_bytes: number;
  artifact_type: string | null;
  subject_digest: string | null;
  annotations: string | null;
  created_at: number;
  payload?: Uint8Array;
}

function toSummary(row: ManifestRow): ManifestSummary {
  return {
    digest: row.digest,
    mediaType: row.media_type,
    sizeBytes: Number(row.size_bytes),
    artifactType: row.artifact_type,
    subjectDigest: row.subject_digest,
    annotations: row.annotations,
    createdAtMs: Number(row.created_at),
  };
}

function toRecord(row: ManifestRow & { payload: Uint8Array }): ManifestRecord {
  return { ...toSummary(row), payload: row.payload };
}

/** Settings as repository columns; only the fields given. */
function settingsColumns(p: Partial<RepositorySettings>) {
  return {
    ...(p.imageTagMutability !== undefined ? { tag_mutability: p.imageTagMutability } : {}),
    ...(p.imageTagMutabilityExclusionFilters !== undefined ? { tag_mutability_filters: JSON.stringify(p.imageTagMutabilityExclusionFilters) } : {}),
    ...(p.scanOnPush !== undefined ? { scan_on_push: p.scanOnPush ? 1 : 0 } : {}),
    ...(p.encryptionType !== undefined ? { encryption_type: p.encryptionType } : {}),
    ...(p.kmsKey !== undefined ? { kms_key: p.kmsKey } : {}),
    ...(p.tags !== undefined ? { tags: JSON.stringify(p.tags) } : {}),
    ...(p.lifecyclePolicy !== undefined ? { lifecycle_policy: p.lifecyclePolicy } : {}),
  };
}

function toRepository(row: { id: number; account_id: string; name: string; created_at: number }): Repository {
  return { id: row.id, accountId: row.account_id, name: row.name, createdAtMs: Number(row.created_at) };
}

function toUpload(row: Schema['uploads']): Upload {
  return {
    id: row.id,
    repositoryId: row.repository_id,
    sizeBytes: Number(row.size_bytes),
    startedAtMs: Number(row.started_at),
    updatedAtMs: Number(row.updated_at),
  };
}

/**
 * The metadata store over any SQL database Kysely speaks. The SQLite and PostgreSQL drivers
 * differ only in how they connect; every query here is portable between the two.
 */
export class KyselyMetaStore implements MetaStore {
  private readonly db: Db;
  private readonly root: Kysely<Schema>;
  private readonly dialect: Dialect;

  readonly identity: IdentityStore;
  readonly audit: AuditStore;
  readonly gc: GcStore;
  readonly lifecycle: LifecycleStore;
  readonly events: EventStore;
  readonly scan: ScanStore;
  readonly vulndb: VulnDbStore;
  readonly replication: ReplicationStore;
  readonly secrets: SecretStore;
  readonly cache: CacheStore;
  readonly listings: ListingStore;

  constructor(db: Kysely<Schema>, options: { dialect: Dialect; tx?: Transaction<Schema> }) {
    this.root = db;
    this.db = options.tx ?? db;
    this.dialect = options.dialect;
    this.identity = new KyselyIdentityStore(this.db);
    const inTransaction = <T>(fn: (db: Db) => Promise<T>): Promise<T> => (options.tx ? fn(options.tx) : this.root.transaction().execute(fn));
    this.gc = new KyselyGcStore(this.db, this.dialect, inTransaction);
    this.lifecycle = new KyselyLifecycleStore(this.db);
    this.events = new KyselyEventStore(this.db, this.dialect, inTransaction);
    this.scan = new KyselyScanStore(this.db, this.dialect, inTransaction);
    this.vulndb = new KyselyVulnDbStore(this.db, this.dialect, inTransaction);
    this.replication = new KyselyReplicationStore(this.db, this.dialect, inTransaction);
    this.secrets = new KyselySecretStore(this.db, this.dialect, inTransaction);
    this.cache = new KyselyCacheStore(this.db, this.dialect, inTransaction);
    this.audit = new KyselyAuditStore(this.db, this.dialect, inTransaction);
    this.listings = new KyselyListingStore(this.db, this.dialect, inTransaction);
  }

  /**
   * Runs pending migrations. `migrationTableSchema` (PostgreSQL) puts Kysely's bookkeeping
   * tables in the schema Berth's tables go to; without it Kysely looks for them in every schema
   * the user can see and takes another schema's for its own.
   */
  static async migrate(db: Kysely<Schema>, dialect: 'sqlite' | 'postgres', options: { migrationTableSchema?: string } = {}): Promise<void> {
    const migrator = new Migrator({ db, provider: migrationProvider(dialect), ...options });
    const { error, results } = await migrator.migrateToLatest();
    if (error) {
      const message = (error as Error).message ?? String(error);
      if (/corrupted migrations/.test(message)) {
        // The store has migrations this build does not know: a newer Berth migrated it.
        const err = new Error(`the metadata store was migrated by a newer version of Berth (${message}); run that version or newer on every node`, { cause: error });
        err.name = 'MigrationError';
        throw err;
      }
      const failed = results?.find((r) => r.status === 'Error');
      throw new Error(`metadata migration ${failed?.migrationName ?? '(unknown)'} failed: ${message}`, { cause: error });
    }
  }

  async transaction<T>(fn: (tx: MetaStore) => Promise<T>): Promise<T> {
    if (this.db !== this.root) return fn(this);
    return this.root.transaction().execute((trx) => fn(new KyselyMetaStore(this.root, { dialect: this.dialect, tx: trx })));
  }

  async getRepository(accountId: string, name: string): Promise<Repository | undefined> {
    const row = await this.db.selectFrom('repositories').select(['id', 'account_id', 'name', 'created_at']).where('account_id', '=', accountId).where('name', '=', name).executeTakeFirst();
    return row && toRepository(row);
  }

  async createRepository(accountId: string, name: string, nowMs: number, settings?: Partial<RepositorySettings>): Promise<{ repository: Repository; created: boolean }> {
    const inserted = await this.db
      .insertInto('repositories')
      .values({ account_id: accountId, name, created_at: nowMs, policy: null, ...settingsColumns({ ...defaultRepositorySettings, ...settings }) })
      .onConflict((oc) => oc.columns(['account_id', 'name']).doNothing())
      .returning(['id', 'account_id', 'name', 'created_at'])
      .executeTakeFirst();
    if (inserted) return { repository: toRepository(inserted), created: true };
    const existing = await this.getRepository(accountId, name);
    if (!existing) throw new Error(`repository ${name} vanished while being created`);
    return { repository: existing, created: false };
  }

  async listRepositories(accountId: string, page: Page): Promise<string[]> {
    let q = this.db.selectFrom('repositories').select('name').where('account_id', '=', accountId).orderBy('name').limit(page.limit);
    if (page.after !== undefined) q = q.where('name', '>', page.after);
    return (await q.execute()).map((r) => r.name);
  }

  async findRepositoriesWithBlob(accountId: string, digest: string, limit: number): Promise<Repository[]> {
    const rows = await this.db
      .selectFrom('repository_blobs as rb')
      .innerJoin('repositories as r', 'r.id', 'rb.repository_id')
      .select(['r.id', 'r.account_id', 'r.name', 'r.created_at'])
      .where('rb.digest', '=', digest)
      .where('r.account_id', '=', accountId)
      .orderBy('rb.created_at')
      .limit(limit)
      .execute();
    return rows.map(toRepository);
  }

  async getRepositorySettings(repositoryId: number): Promise<RepositorySettings | undefined> {
    const r = await this.db
      .selectFrom('repositories')
      .select(['tag_mutability', 'tag_mutability_filters', 'scan_on_push', 'encryption_type', 'kms_key', 'tags', 'lifecycle_policy'])
      .where('id', '=', repositoryId)
      .executeTakeFirst();
    return (
      r && {
        imageTagMutability: r.tag_mutability as TagMutability,
        imageTagMutabilityExclusionFilters: JSON.parse(r.tag_mutability_filters) as RepositorySettings['imageTagMutabilityExclusionFilters'],
        scanOnPush: Number(r.scan_on_push) === 1,
        encryptionType: r.encryption_type as RepositorySettings['encryptionType'],
        kmsKey: r.kms_key,
        tags: JSON.parse(r.tags) as RepositorySettings['tags'],
        lifecyclePolicy: r.lifecycle_policy,
      }
    );
  }

  async updateRepositorySettings(repositoryId: number, patch: Partial<RepositorySettings>): Promise<boolean> {
    const columns = settingsColumns(patch);
    if (Object.keys(columns).length === 0) return (await this.getRepositorySettings(repositoryId)) !== undefined;
    const res = await this.db.updateTable('repositories').set(columns).where('id', '=', repositoryId).executeTakeFirst();
    return Number(res.numUpdatedRows) > 0;
  }

  async deleteRepository(repositoryId: number, nowMs: number = Date.now()): Promise<boolean> {
    return this.transaction(async (tx) => {
      const db = (tx as KyselyMetaStore).db;
      // Blob rows are locked before the rows that go (the lock order of gc-store.ts).
      const used = await db.selectFrom('manifest_references').select('reference_digest').distinct().where('repository_id', '=', repositoryId).where('kind', '=', 'blob').execute();
      await touchBlobs(db, this.dialect, used.map((r) => r.reference_digest), nowMs);
      await db.deleteFrom('tags').where('repository_id', '=', repositoryId).execute();
      await db.deleteFrom('manifest_references').where('repository_id', '=', repositoryId).execute();
      await db.deleteFrom('manifests').where('repository_id', '=', repositoryId).execute();
      await db.deleteFrom('repository_blobs').where('repository_id', '=', repositoryId).execute();
      await db.deleteFrom('uploads').where('repository_id', '=', repositoryId).execute();
      await db.deleteFrom('lifecycle_policies').where('repository_id', '=', repositoryId).execute();
      await db.deleteFrom('lifecycle_previews').where('repository_id', '=', repositoryId).execute();
      const res = await db.deleteFrom('repositories').where('id', '=', repositoryId).executeTakeFirst();
      return Number(res.numDeletedRows) > 0;
    });
  }

  async countManifests(repositoryId: number): Promise<number> {
    const r = await this.db.selectFrom('manifests').select((eb) => eb.fn.countAll<number>().as('n')).where('repository_id', '=', repositoryId).executeTakeFirst();
    return Number(r?.n ?? 0);
  }

  async putRepositoryTemplate(accountId: string, t: RepositoryTemplate): Promise<void> {
    const template = JSON.stringify(t.template);
    await this.db
      .insertInto('repository_templates')
      .values({ account_id: accountId, prefix: t.prefix, template, created_at: t.createdAtMs, updated_at: t.updatedAtMs })
      .onConflict((oc) => oc.columns(['account_id', 'prefix']).doUpdateSet({ template, updated_at: t.updatedAtMs }))
      .execute();
  }

  async listRepositoryTemplates(accountId: string): Promise<RepositoryTemplate[]> {
    const rows = await this.db.selectFrom('repository_templates').selectAll().where('account_id', '=', accountId).orderBy('prefix').execute();
    return rows.map((r) => ({ prefix: r.prefix, template: JSON.parse(r.template) as Record<string, unknown>, createdAtMs: Number(r.created_at), updatedAtMs: Number(r.updated_at) }));
  }

  async deleteRepositoryTemplate(accountId: string, prefix: string): Promise<boolean> {
    const res = await this.db.deleteFrom('repository_templates').where('account_id', '=', accountId).where('prefix', '=', prefix).executeTakeFirst();
    return Number(res.numDeletedRows) > 0;
  }

  async getAccountSetting(accountId: string, name: string): Promise<string | undefined> {
    const r = await this.db.selectFrom('account_settings').select('value').where('account_id', '=', accountId).where('name', '=', name).executeTakeFirst();
    return r?.value;
  }

  async putAccountSetting(accountId: string, name: string, value: string): Promise<void> {
    await this.db
      .insertInto('account_settings')
      .values({ account_id: accountId, name, value })
      .onConflict((oc) => oc.columns(['account_id', 'name']).doUpdateSet({ value }))
      .execute();
  }

  async getRepositoryPolicy(repositoryId: number): Promise<string | undefined> {
    const row = await this.db.selectFrom('repositories').select('policy').where('id', '=', repositoryId).executeTakeFirst();
    return row?.policy ?? undefined;
  }

  async setRepositoryPolicy(repositoryId: number, policy: string | null): Promise<boolean> {
    const res = await this.db.updateTable('repositories').set({ policy }).where('id', '=', repositoryId).executeTakeFirst();
    return Number(res.numUpdatedRows) > 0;
  }

  async putBlob(blob: BlobInfo, nowMs: number): Promise<void> {
    // An upsert locks the row (PostgreSQL: and waits for a collection holding it; if that deleted
    // the row, the insert goes ahead). It revives a row a collection had marked: the caller has
    // just committed the bytes, and checks they are there before its transaction commits.
    await this.db
      .insertInto('blobs')
      .values({ digest: blob.digest, size_bytes: blob.sizeBytes, created_at: nowMs, last_used_at: nowMs, deleting_at: null })
      .onConflict((oc) =>
        oc.column('digest').doUpdateSet({
          last_used_at: sql<number>`case when blobs.last_used_at < ${nowMs} then ${nowMs} else blobs.last_used_at end`,
          deleting_at: null,
        }),
      )
      .execute();
  }

  async getBlob(digest: string): Promise<BlobInfo | undefined> {
    const row = await this.db.selectFrom('blobs').select(['digest', 'size_bytes']).where('digest', '=', digest).where('deleting_at', 'is', null).executeTakeFirst();
    return row && { digest: row.digest, sizeBytes: Number(row.size_bytes) };
  }

  async linkBlob(repositoryId: number, digest: string, nowMs: number): Promise<boolean> {
    return this.transaction(async (tx) => {
      const db = (tx as KyselyMetaStore).db;
      // Touching the row locks it first: a collection cannot take the blob while it is linked.
      if ((await touchBlobs(db, this.dialect, [digest], nowMs)).size === 0) return false;
      await db
        .insertInto('repository_blobs')
        .values({ repository_id: repositoryId, digest, created_at: nowMs })
        .onConflict((oc) => oc.columns(['repository_id', 'digest']).doNothing())
        .execute();
      return true;
    });
  }

  async findLinkedBlob(repositoryId: number, digest: string): Promise<BlobInfo | undefined> {
    const row = await this.db
      .selectFrom('repository_blobs as rb')
      .innerJoin('blobs as b', 'b.digest', 'rb.digest')
      .select(['b.digest', 'b.size_bytes'])
      .where('rb.repository_id', '=', repositoryId)
      .where('rb.digest', '=', digest)
      .where('b.deleting_at', 'is', null)
      .executeTakeFirst();
    return row && { digest: row.digest, sizeBytes: Number(row.size_bytes) };
  }

  async findLinkedBlobs(repositoryId: number, digests: string[]): Promise<Map<string, BlobInfo>> {
    const found = new Map<string, BlobInfo>();
    for (let i = 0; i < digests.length; i += IN_CHUNK) {
      const chunk = digests.slice(i, i + IN_CHUNK);
      const rows = await this.db
        .selectFrom('repository_blobs as rb')
        .innerJoin('blobs as b', 'b.digest', 'rb.digest')
        .select(['b.digest', 'b.size_bytes'])
        .where('rb.repository_id', '=', repositoryId)
        .where('rb.digest', 'in', chunk)
        .where('b.deleting_at', 'is', null)
        .execute();
      for (const r of rows) found.set(r.digest, { digest: r.digest, sizeBytes: Number(r.size_bytes) });
    }
    return found;
  }

  async unlinkBlob(repositoryId: number, digest: string): Promise<boolean> {
    const res = await this.db.deleteFrom('repository_blobs').where('repository_id', '=', repositoryId).where('digest', '=', digest).executeTakeFirst();
    return Number(res.numDeletedRows) > 0;
  }

  async getManifest(repositoryId: number, digest: string): Promise<ManifestRecord | undefined> {
    const row = await this.db
      .selectFrom('manifests')
      .select([...summaryColumns, 'payload'])
      .where('repository_id', '=', repositoryId)
      .where('digest', '=', digest)
      .executeTakeFirst();
    return row && toRecord(row);
  }

  async findManifestByTag(repositoryId: number, tag: string): Promise<ManifestRecord | undefined> {
    const row = await this.db
      .selectFrom('tags as t')
      .innerJoin('manifests as m', (j) => j.onRef('m.repository_id', '=', 't.repository_id').onRef('m.digest', '=', 't.manifest_digest'))
      .select(['m.digest', 'm.media_type', 'm.size_bytes', 'm.artifact_type', 'm.subject_digest', 'm.annotations', 'm.created_at', 'm.payload'])
      .where('t.repository_id', '=', repositoryId)
      .where('t.name', '=', tag)
      .executeTakeFirst();
    return row && toRecord(row);
  }

  async findExistingManifests(repositoryId: number, digests: string[]): Promise<Set<string>> {
    const found = new Set<string>();
    for (let i = 0; i < digests.length; i += 500) {
      const rows = await this.db
        .selectFrom('manifests')
        .select('digest')
        .where('repository_id', '=', repositoryId)
        .where('digest', 'in', digests.slice(i, i + 500))
        .execute();
      for (const r of rows) found.add(r.digest);
    }
    return found;
  }

  async putManifest(repositoryId: number, m: ManifestRecord, references: ManifestReference[]): Promise<PutManifestOutcome> {
    return this.transaction(async (tx) => {
      const db = (tx as KyselyMetaStore).db;
      // Locks in the order of gc-store.ts: this manifest, child manifests, then blobs.
      if ((await lockManifests(db, this.dialect, repositoryId, [m.digest])).size > 0) return { created: false, missingBlobs: [], missingManifests: [] };
      const unique = [...new Map(references.map((r) => [r.digest, r])).values()];
      const children = unique.filter((r) => r.kind === 'manifest').map((r) => r.digest);
      const blobs = unique.filter((r) => r.kind === 'blob').map((r) => r.digest);
      const foundChildren = await lockManifests(db, this.dialect, repositoryId, children);
      const touched = await touchBlobs(db, this.dialect, blobs, m.createdAtMs);
      const outcome: PutManifestOutcome = {
        created: true,
        missingBlobs: blobs.filter((d) => !touched.has(d)),
        missingManifests: children.filter((d) => !foundChildren.has(d)),
      };
      const inserted = await db
        .insertInto('manifests')
        .values({
          repository_id: repositoryId,
          digest: m.digest,
          media_type: m.mediaType,
          size_bytes: m.sizeBytes,
          payload: m.payload,
          artifact_type: m.artifactType,
          subject_digest: m.subjectDigest,
          annotations: m.annotations,
          created_at: m.createdAtMs,
        })
        .onConflict((oc) => oc.columns(['repository_id', 'digest']).doNothing())
        .executeTakeFirst();
      if (Number(inserted.numInsertedOrUpdatedRows ?? 0n) === 0) {
        // Another writer stored it since the first look (and committed: the insert waited for it).
        await lockManifests(db, this.dialect, repositoryId, [m.digest]);
        return { created: false, missingBlobs: [], missingManifests: [] };
      }
      const rows = unique.map((r) => ({
        repository_id: repositoryId,
        manifest_digest: m.digest,
        reference_digest: r.digest,
        kind: r.kind,
      }));
      for (let i = 0; i < rows.length; i += 200) {
        await db
          .insertInto('manifest_references')
          .values(rows.slice(i, i + 200))
          .onConflict((oc) => oc.columns(['repository_id', 'manifest_digest', 'reference_digest']).doNothing())
          .execute();
      }
      return outcome;
    });
  }

  async deleteManifest(repositoryId: number, digest: string, nowMs: number = Date.now()): Promise<boolean> {
    return this.transaction(async (tx) => {
      const db = (tx as KyselyMetaStore).db;
      // The manifest row first, then its blobs (the lock order of gc-store.ts).
      const row = await withLock(db.selectFrom('manifests').select('digest').where('repository_id', '=', repositoryId).where('digest', '=', digest), this.dialect, 'update').executeTakeFirst();
      if (!row) return false;
      const used = await db.selectFrom('manifest_references').select('reference_digest').where('repository_id', '=', repositoryId).where('manifest_digest', '=', digest).where('kind', '=', 'blob').execute();
      await touchBlobs(db, this.dialect, used.map((r) => r.reference_digest), nowMs);
      return deleteManifestRows(db, repositoryId, digest);
    });
  }

  async findParentManifests(repositoryId: number, digest: string): Promise<string[]> {
    const rows = await this.db
      .selectFrom('manifest_references')
      .select('manifest_digest')
      .where('repository_id', '=', repositoryId)
      .where('reference_digest', '=', digest)
      .where('kind', '=', 'manifest')
      .execute();
    return rows.map((r) => r.manifest_digest);
  }

  async listReferrers(repositoryId: number, subjectDigest: string, artifactType?: string): Promise<ManifestSummary[]> {
    let q = this.db
      .selectFrom('manifests')
      .select(summaryColumns)
      .where('repository_id', '=', repositoryId)
      .where('subject_digest', '=', subjectDigest)
      .orderBy('created_at')
      .orderBy('digest');
    if (artifactType !== undefined) q = q.where('artifact_type', '=', artifactType);
    return (await q.execute()).map(toSummary);
  }

  async findTagDigest(repositoryId: number, tag: string): Promise<string | undefined> {
    const row = await this.db.selectFrom('tags').select('manifest_digest').where('repository_id', '=', repositoryId).where('name', '=', tag).executeTakeFirst();
    return row?.manifest_digest;
  }

  async putTag(repositoryId: number, tag: string, digest: string, nowMs: number): Promise<void> {
    await this.db
      .insertInto('tags')
      .values({ repository_id: repositoryId, name: tag, manifest_digest: digest, updated_at: nowMs })
      .onConflict((oc) => oc.columns(['repository_id', 'name']).doUpdateSet({ manifest_digest: digest, updated_at: nowMs }))
      .execute();
  }

  async deleteTag(repositoryId: number, tag: string): Promise<boolean> {
    const res = await this.db.deleteFrom('tags').where('repository_id', '=', repositoryId).where('name', '=', tag).executeTakeFirst();
    return Number(res.numDeletedRows) > 0;
  }

  async listTags(repositoryId: number, page: Page): Promise<string[]> {
    let q = this.db.selectFrom('tags').select('name').where('repository_id', '=', repositoryId).orderBy('name').limit(page.limit);
    if (page.after !== undefined) q = q.where('name', '>', page.after);
    return (await q.execute()).map((r) => r.name);
  }

  async createUpload(u: Upload): Promise<void> {
    await this.db
      .insertInto('uploads')
      .values({ id: u.id, repository_id: u.repositoryId, size_bytes: u.sizeBytes, started_at: u.startedAtMs, updated_at: u.updatedAtMs })
      .execute();
  }

  async getUpload(id: string): Promise<Upload | undefined> {
    const row = await this.db.selectFrom('uploads').selectAll().where('id', '=', id).executeTakeFirst();
    return row && toUpload(row);
  }

  async advanceUpload(id: string, fromSize: number, toSize: number, nowMs: number): Promise<boolean> {
    const res = await this.db
      .updateTable('uploads')
      .set({ size_bytes: toSize, updated_at: nowMs })
      .where('id', '=', id)
      .where('size_bytes', '=', fromSize)
      .executeTakeFirst();
    return Number(res.numUpdatedRows) > 0;
  }

  async deleteUpload(id: string): Promise<boolean> {
    const res = await this.db.deleteFrom('uploads').where('id', '=', id).executeTakeFirst();
    return Number(res.numDeletedRows) > 0;
  }

  async listStaleUploads(beforeMs: number, limit: number): Promise<Upload[]> {
    const rows = await this.db.selectFrom('uploads').selectAll().where('updated_at', '<', beforeMs).orderBy('updated_at').limit(limit).execute();
    return rows.map(toUpload);
  }

  async listImageIds(repositoryId: number, query: { tagStatus: TagStatus; after?: ImageId | undefined; limit: number }): Promise<ImageId[]> {
    let q = this.db
      .selectFrom('manifests as m')
      .leftJoin('tags as t', (j) => j.onRef('t.repository_id', '=', 'm.repository_id').onRef('t.manifest_digest', '=', 'm.digest'))
      .select(['m.digest', 't.name'])
      .where('m.repository_id', '=', repositoryId)
      .orderBy('m.digest')
      .orderBy('t.name')
      .limit(query.limit);
    if (query.tagStatus === 'TAGGED') q = q.where('t.name', 'is not', null);
    if (query.tagStatus === 'UNTAGGED') q = q.where('t.name', 'is', null);
    const after = query.after;
    if (after) {
      // A manifest has either tag rows or one untagged row, so an untagged entry ends its digest.
      q = after.tag === null
        ? q.where('m.digest', '>', after.digest)
        : q.where((eb) => eb.or([eb('m.digest', '>', after.digest), eb.and([eb('m.digest', '=', after.digest), eb('t.name', '>', after.tag!)])]));
    }
    return (await q.execute()).map((r) => ({ digest: r.digest, tag: r.name ?? null }));
  }

  async listImages(repositoryId: number, query: { tagStatus: TagStatus; afterDigest?: string | undefined; limit: number }): Promise<ImageRecord[]> {
    let q = this.db
      .selectFrom('manifests as m')
      .select(['m.digest', 'm.media_type', 'm.size_bytes', 'm.artifact_type', 'm.subject_digest', 'm.annotations', 'm.created_at', 'm.payload', 'm.last_pulled_at'])
      .where('m.repository_id', '=', repositoryId)
      .orderBy('m.digest')
      .limit(query.limit);
    if (query.afterDigest !== undefined) q = q.where('m.digest', '>', query.afterDigest);
    if (query.tagStatus !== 'ANY') {
      q = q.where((eb) => {
        const tagged = eb.exists(eb.selectFrom('tags as t').select('t.name').whereRef('t.repository_id', '=', 'm.repository_id').whereRef('t.manifest_digest', '=', 'm.digest'));
        return query.tagStatus === 'TAGGED' ? tagged : eb.not(tagged);
      });
    }
    return this.withTags(repositoryId, await q.execute());
  }

  async getImages(repositoryId: number, digests: string[]): Promise<Map<string, ImageRecord>> {
    const found = new Map<string, ImageRecord>();
    const unique = [...new Set(digests)];
    for (let i = 0; i < unique.length; i += 500) {
      const rows = await this.db
        .selectFrom('manifests as m')
        .select(['m.digest', 'm.media_type', 'm.size_bytes', 'm.artifact_type', 'm.subject_digest', 'm.annotations', 'm.created_at', 'm.payload', 'm.last_pulled_at'])
        .where('m.repository_id', '=', repositoryId)
        .where('m.digest', 'in', unique.slice(i, i + 500))
        .execute();
      for (const image of await this.withTags(repositoryId, rows)) found.set(image.digest, image);
    }
    return found;
  }

  private async withTags(repositoryId: number, rows: (ManifestRow & { payload: Uint8Array; last_pulled_at: number | null })[]): Promise<ImageRecord[]> {
    const tags = new Map<string, string[]>();
    for (let i = 0; i < rows.length; i += 500) {
      const found = await this.db
        .selectFrom('tags')
        .select(['manifest_digest', 'name'])
        .where('repository_id', '=', repositoryId)
        .where('manifest_digest', 'in', rows.slice(i, i + 500).map((r) => r.digest))
        // By manifest, then name: the order of tags_manifest. By name alone, SQLite walks every
        // tag of the repository through the primary key to avoid a sort.
        .orderBy('manifest_digest')
        .orderBy('name')
        .execute();
      for (const t of found) {
        const list = tags.get(t.manifest_digest) ?? [];
        list.push(t.name);
        tags.set(t.manifest_digest, list);
      }
    }
    return rows.map((r) => ({
      ...toRecord(r),
      tags: tags.get(r.digest) ?? [],
      lastPulledAtMs: r.last_pulled_at === null ? null : Number(r.last_pulled_at),
    }));
  }

  async recordPulls(pulls: PullRecord[]): Promise<void> {
    // Batches of PULL_BATCH, each a transaction, with the event loop let in between: after a
    // burst of pulls of many images one flush holds thousands of updates, which on SQLite would
    // hold every request for as long as they take (pacing.ts). Each update stands alone (a time
    // only moves forward), so batches need not commit together.
    for (let i = 0; i < pulls.length; i += PULL_BATCH) {
      if (i > 0) await yieldToEventLoop();
      await this.recordPullBatch(pulls.slice(i, i + PULL_BATCH));
    }
  }

  private async recordPullBatch(pulls: PullRecord[]): Promise<void> {
    await this.transaction(async (tx) => {
      const db = (tx as KyselyMetaStore).db;
      for (const p of pulls) {
        await db
          .updateTable('manifests')
          .set({ last_pulled_at: p.atMs })
          .where('repository_id', '=', p.repositoryId)
          .where('digest', '=', p.digest)
          .where((eb) => eb.or([eb('last_pulled_at', 'is', null), eb('last_pulled_at', '<', p.atMs)]))
          .execute();
      }
    });
  }

  async isReferenced(repositoryId: number, digest: string): Promise<boolean> {
    const row = await this.db
      .selectFrom('manifest_references')
      .select('manifest_digest')
      .where('repository_id', '=', repositoryId)
      .where('reference_digest', '=', digest)
      .limit(1)
      .executeTakeFirst();
    return row !== undefined;
  }

  async ensureJob(name: string, firstRunAtMs: number): Promise<void> {
    await this.db.insertInto('jobs').values({ name, next_run_at: firstRunAtMs }).onConflict((oc) => oc.column('name').doNothing()).execute();
  }

  async acquireJob(name: string, owner: string, nowMs: number, leaseUntilMs: number): Promise<boolean> {
    // One conditional UPDATE: the database serialises writers to the row, so of concurrent
    // callers at most one sees the condition hold.
    const res = await this.db
      .updateTable('jobs')
      .set({ lease_owner: owner, lease_expires_at: leaseUntilMs, last_started_at: nowMs })
      .where('name', '=', name)
      .where('next_run_at', '<=', nowMs)
      .where((eb) => eb.or([eb('lease_expires_at', 'is', null), eb('lease_expires_at', '<', nowMs)]))
      .executeTakeFirst();
    return Number(res.numUpdatedRows) > 0;
  }

  async renewJob(name: string, owner: string, leaseUntilMs: number): Promise<boolean> {
    const res = await this.db.updateTable('jobs').set({ lease_expires_at: leaseUntilMs }).where('name', '=', name).where('lease_owner', '=', owner).executeTakeFirst();
    return Number(res.numUpdatedRows) > 0;
  }

  async finishJob(name: string, owner: string, nowMs: number, nextRunAtMs: number, error: string | null): Promise<boolean> {
    const res = await this.db
      .updateTable('jobs')
      .set({
        lease_owner: null,
        lease_expires_at: null,
        // A next_run_at later than the run's start was set by hurryJob() during the run.
        next_run_at: sql<number>`case when next_run_at > last_started_at and next_run_at < ${nextRunAtMs} then next_run_at else ${nextRunAtMs} end`,
        last_finished_at: nowMs,
        last_error: error,
      })
      .where('name', '=', name)
      .where('lease_owner', '=', owner)
      .executeTakeFirst();
    return Number(res.numUpdatedRows) > 0;
  }

  async hurryJob(name: string, atMs: number): Promise<void> {
    // Idle: the earliest time wins. Running (acquireJob left next_run_at at or before the start):
    // the time is recorded for finishJob, again the earliest of those asked for during the run.
    await this.db
      .updateTable('jobs')
      .set({ next_run_at: atMs })
      .where('name', '=', name)
      .where((eb) =>
        eb.or([
          eb('next_run_at', '>', atMs),
          eb.and([eb('lease_owner', 'is not', null), eb('next_run_at', '<=', eb.ref('last_started_at'))]),
        ]),
      )
      .execute();
  }

  async getJob(name: string): Promise<JobState | undefined> {
    const r = await this.db.selectFrom('jobs').selectAll().where('name', '=', name).executeTakeFirst();
    const n = (v: number | null) => (v === null ? null : Number(v));
    return (
      r && {
        name: r.name,
        nextRunAtMs: Number(r.next_run_at),
        leaseOwner: r.lease_owner,
        leaseExpiresAtMs: n(r.lease_expires_at),
        lastStartedAtMs: n(r.last_started_at),
        lastFinishedAtMs: n(r.last_finished_at),
        lastError: r.last_error,
      }
    );
  }

  async check(): Promise<void> {
    await sql`select 1`.execute(this.db);
  }

  async close(): Promise<void> {
    await this.root.destroy();
  }
}
