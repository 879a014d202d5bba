import { sql } from 'kysely';
import type { AccountUsage, BlobRecord, GcStore, ManifestCandidate, ManifestKey, ManifestState, RemovedManifest, RepositoryUsage, TotalUsage } from '../gc-store.ts';
import { deleteManifestRows, IN_CHUNK, withLock, type Db, type Dialect, type InTransaction } from './locks.ts';

const blobColumns = ['digest', 'size_bytes', 'created_at', 'last_used_at', 'deleting_at'] as const;

interface BlobRow {
  digest: string;
  size_bytes: number;
  created_at: number;
  last_used_at: number;
  deleting_at: number | null;
}

function toBlob(r: BlobRow): BlobRecord {
  return {
    digest: r.digest,
    sizeBytes: Number(r.size_bytes),
    createdAtMs: Number(r.created_at),
    lastUsedAtMs: Number(r.last_used_at),
    deletingAtMs: r.deleting_at === null ? null : Number(r.deleting_at),
  };
}

/** Garbage collection over Kysely: the same SQL on SQLite and PostgreSQL, locks only on PostgreSQL (see locks.ts). */
export class KyselyGcStore implements GcStore {
  private readonly db: Db;
  private readonly dialect: Dialect;
  private readonly inTransaction: InTransaction;

  constructor(db: Db, dialect: Dialect, inTransaction: InTransaction) {
    this.db = db;
    this.dialect = dialect;
    this.inTransaction = inTransaction;
  }

  // --- manifests ----------------------------------------------------------------------------

  async listManifestCandidates(query: { createdBeforeMs: number; after?: ManifestKey | undefined; limit: number }): Promise<ManifestCandidate[]> {
    let q = this.db
      .selectFrom('manifests as m')
      .innerJoin('repositories as r', 'r.id', 'm.repository_id')
      .select(['m.repository_id', 'm.digest', 'm.size_bytes', 'm.created_at', 'r.account_id', 'r.name'])
      .where('m.created_at', '<', query.createdBeforeMs)
      .where((eb) => eb.not(eb.exists(eb.selectFrom('tags as t').select('t.name').whereRef('t.repository_id', '=', 'm.repository_id').whereRef('t.manifest_digest', '=', 'm.digest'))))
      .where((eb) =>
        eb.not(eb.exists(eb.selectFrom('manifest_references as p').select('p.manifest_digest').whereRef('p.repository_id', '=', 'm.repository_id').whereRef('p.reference_digest', '=', 'm.digest'))),
      )
      .where((eb) =>
        eb.or([
          eb('m.subject_digest', 'is', null),
          eb.not(eb.exists(eb.selectFrom('manifests as s').select('s.digest').whereRef('s.repository_id', '=', 'm.repository_id').whereRef('s.digest', '=', 'm.subject_digest'))),
        ]),
      )
      .orderBy('m.repository_id')
      .orderBy('m.digest')
      .limit(query.limit);
    const after = query.after;
    if (after) {
      q = q.where((eb) => eb.or([eb('m.repository_id', '>', after.repositoryId), eb.and([eb('m.repository_id', '=', after.repositoryId), eb('m.digest', '>', after.digest)])]));
    }
    return (await q.execute()).map((r) => ({
      repositoryId: r.repository_id,
      digest: r.digest,
      accountId: r.account_id,
      repositoryName: r.name,
      sizeBytes: Number(r.size_bytes),
      createdAtMs: Number(r.created_at),
    }));
  }

  async getManifestState(repositoryId: number, digest: string): Promise<ManifestState | undefined> {
    return this.state(this.db, repositoryId, digest);
  }

  /** The manifest's state as `db` sees it; undefined when absent. */
  private async state(db: Db, repositoryId: number, digest: string): Promise<ManifestState | undefined> {
    const m = await db
      .selectFrom('manifests as m')
      .innerJoin('repositories as r', 'r.id', 'm.repository_id')
      .select(['m.size_bytes', 'm.created_at', 'm.subject_digest', 'r.account_id', 'r.name'])
      .where('m.repository_id', '=', repositoryId)
      .where('m.digest', '=', digest)
      .executeTakeFirst();
    if (!m) return undefined;
    const tag = await db.selectFrom('tags').select('name').where('repository_id', '=', repositoryId).where('manifest_digest', '=', digest).limit(1).executeTakeFirst();
    const parents = await db.selectFrom('manifest_references').select('manifest_digest').where('repository_id', '=', repositoryId).where('reference_digest', '=', digest).orderBy('manifest_digest').execute();
    const subject = m.subject_digest === null
      ? undefined
      : await db.selectFrom('manifests').select('digest').where('repository_id', '=', repositoryId).where('digest', '=', m.subject_digest).executeTakeFirst();
    const refs = await db.selectFrom('manifest_references').select(['reference_digest', 'kind']).where('repository_id', '=', repositoryId).where('manifest_digest', '=', digest).orderBy('reference_digest').execute();
    const referrers = await db.selectFrom('manifests').select('digest').where('repository_id', '=', repositoryId).where('subject_digest', '=', digest).orderBy('digest').execute();
    return {
      repositoryId,
      digest,
      accountId: m.account_id,
      repositoryName: m.name,
      sizeBytes: Number(m.size_bytes),
      createdAtMs: Number(m.created_at),
      isTagged: tag !== undefined,
      parents: parents.map((p) => p.manifest_digest),
      subjectDigest: m.subject_digest,
      subjectExists: subject !== undefined,
      children: refs.filter((r) => r.kind === 'manifest').map((r) => r.reference_digest),
      referrers: referrers.map((r) => r.digest),
      blobs: refs.filter((r) => r.kind === 'blob').map((r) => r.reference_digest),
    };
  }

  async deleteManifestIfUnused(repositoryId: number, digest: string, createdBeforeMs: number): Promise<RemovedManifest | undefined> {
    return this.inTransaction(async (db) => {
      // Lock the row first: a writer pointing a tag at it or listing it in an index holds it
      // `for share`, so this waits for that writer, and what follows sees what it committed.
      const locked = await withLock(
        db.selectFrom('manifests').select('digest').where('repository_id', '=', repositoryId).where('digest', '=', digest).where('created_at', '<', createdBeforeMs),
        this.dialect,
        'update',
      ).executeTakeFirst();
      if (!locked) return undefined;
      const state = await this.state(db, repositoryId, digest);
      if (!state || state.isTagged || state.parents.length > 0 || (state.subjectDigest !== null && state.subjectExists)) return undefined;
      await deleteManifestRows(db, repositoryId, digest);
      const { isTagged: _t, parents: _p, subjectDigest: _s, subjectExists: _e, ...removed } = state;
      return removed;
    });
  }

  // --- blobs --------------------------------------------------------------------------------

  async listBlobCandidates(query: { usedBeforeMs: number; after?: { lastUsedAtMs: number; digest: string } | undefined; limit: number }): Promise<BlobRecord[]> {
    let q = this.db
      .selectFrom('blobs as b')
      .select(['b.digest', 'b.size_bytes', 'b.created_at', 'b.last_used_at', 'b.deleting_at'])
      .where('b.last_used_at', '<', query.usedBeforeMs)
      .where('b.deleting_at', 'is', null)
      .where((eb) => eb.not(eb.exists(eb.selectFrom('manifest_references as r').select('r.reference_digest').whereRef('r.reference_digest', '=', 'b.digest'))))
      .orderBy('b.last_used_at')
      .orderBy('b.digest')
      .limit(query.limit);
    const after = query.after;
    if (after) {
      q = q.where((eb) => eb.or([eb('b.last_used_at', '>', after.lastUsedAtMs), eb.and([eb('b.last_used_at', '=', after.lastUsedAtMs), eb('b.digest', '>', after.digest)])]));
    }
    return (await q.execute()).map(toBlob);
  }

  async listDeletingBlobs(query: { after?: string | undefined; limit: number }): Promise<BlobRecord[]> {
    let q = this.db.selectFrom('blobs').select(blobColumns).where('deleting_at', 'is not', null).orderBy('digest').limit(query.limit);
    if (query.after !== undefined) q = q.where('digest', '>', query.after);
    return (await q.execute()).map(toBlob);
  }

  async listBlobRecords(query: { after?: string | undefined; limit: number }): Promise<BlobRecord[]> {
    let q = this.db.selectFrom('blobs').select(blobColumns).orderBy('digest').limit(query.limit);
    if (query.after !== undefined) q = q.where('digest', '>', query.after);
    return (await q.execute()).map(toBlob);
  }

  async getBlobUsage(digests: string[]): Promise<Map<string, BlobRecord & { references: number }>> {
    const found = new Map<string, BlobRecord & { references: number }>();
    const unique = [...new Set(digests)];
    for (let i = 0; i < unique.length; i += IN_CHUNK) {
      const rows = await this.db
        .selectFrom('blobs as b')
        .select(['b.digest', 'b.size_bytes', 'b.created_at', 'b.last_used_at', 'b.deleting_at'])
        .select((eb) => eb.selectFrom('manifest_references as r').select((e) => e.fn.countAll<number>().as('n')).whereRef('r.reference_digest', '=', 'b.digest').as('references'))
        .where('b.digest', 'in', unique.slice(i, i + IN_CHUNK))
        .execute();
      for (const r of rows) found.set(r.digest, { ...toBlob(r), references: Number(r.references ?? 0) });
    }
    return found;
  }

  async findRecordedBlobs(digests: string[]): Promise<Set<string>> {
    const found = new Set<string>();
    const unique = [...new Set(digests)];
    for (let i = 0; i < unique.length; i += IN_CHUNK) {
      const rows = await this.db.selectFrom('blobs').select('digest').where('digest', 'in', unique.slice(i, i + IN_CHUNK)).execute();
      for (const r of rows) found.add(r.digest);
    }
    return found;
  }

  async markBlobForDeletion(digest: string, usedBeforeMs: number, nowMs: number): Promise<boolean> {
    return this.inTransaction(async (db) => {
      const row = await withLock(db.selectFrom('blobs').select(['last_used_at', 'deleting_at']).where('digest', '=', digest), this.dialect, 'update').executeTakeFirst();
      // Checked again, after the lock, in statements of their own: on PostgreSQL (READ COMMITTED)
      // each sees what writers that held the row before us committed.
      if (!row || row.deleting_at !== null || Number(row.last_used_at) >= usedBeforeMs) return false;
      if (await this.isReferenced(db, digest)) return false;
      await db.updateTable('blobs').set({ deleting_at: nowMs }).where('digest', '=', digest).execute();
      return true;
    });
  }

  async deleteMarkedBlob(digest: string, removeBytes: (blob: BlobRecord) => Promise<void>): Promise<BlobRecord | undefined> {
    return this.inTransaction(async (db) => {
      const row = await withLock(db.selectFrom('blobs').select(blobColumns).where('digest', '=', digest).where('deleting_at', 'is not', null), this.dialect, 'update').executeTakeFirst();
      if (!row) return undefined;
      if (await this.isReferenced(db, digest)) {
        // No writer references a marked blob; should one have, the blob lives.
        await db.updateTable('blobs').set({ deleting_at: null }).where('digest', '=', digest).execute();
        return undefined;
      }
      await db.deleteFrom('repository_blobs').where('digest', '=', digest).execute();
      await db.deleteFrom('blobs').where('digest', '=', digest).execute();
      const blob = toBlob(row);
      // Still holding the row: a writer recording this digest again waits until the bytes are
      // gone and this commits, then finds no bytes (and its upload fails, to be retried).
      await removeBytes(blob);
      return blob;
    });
  }

  async deleteUnrecordedBytes(digest: string, sizeBytes: number, nowMs: number, removeBytes: () => Promise<void>): Promise<boolean> {
    return this.inTransaction(async (db) => {
      // The placeholder is the lock: a writer's insert of this digest waits for it.
      const claimed = await db
        .insertInto('blobs')
        .values({ digest, size_bytes: sizeBytes, created_at: nowMs, last_used_at: 0, deleting_at: nowMs })
        .onConflict((oc) => oc.column('digest').doNothing())
        .executeTakeFirst();
      if (Number(claimed.numInsertedOrUpdatedRows ?? 0n) === 0) return false;
      await removeBytes();
      await db.deleteFrom('blobs').where('digest', '=', digest).execute();
      return true;
    });
  }

  private async isReferenced(db: Db, digest: string): Promise<boolean> {
    const ref = await db.selectFrom('manifest_references').select('manifest_digest').where('reference_digest', '=', digest).limit(1).executeTakeFirst();
    return ref !== undefined;
  }

  // --- storage accounting --------------------------------------------------------------------

  async repositoryUsage(query: { afterId?: number | undefined; limit: number }): Promise<RepositoryUsage[]> {
    const { rows } = await sql<{ id: number; account_id: string; name: string; manifests: number; manifest_bytes: number; blobs: number; blob_bytes: number }>`
      select r.id, r.account_id, r.name,
        (select count(*) from manifests m where m.repository_id = r.id) as manifests,
        (select coalesce(sum(m.size_bytes), 0) from manifests m where m.repository_id = r.id) as manifest_bytes,
        (select count(*) from blobs b where b.digest in
          (select mr.reference_digest from manifest_references mr where mr.repository_id = r.id and mr.kind = 'blob')) as blobs,
        (select coalesce(sum(b.size_bytes), 0) from blobs b where b.digest in
          (select mr.reference_digest from manifest_references mr where mr.repository_id = r.id and mr.kind = 'blob')) as blob_bytes
      from repositories r
      where r.id > ${query.afterId ?? -1}
      order by r.id
      limit ${query.limit}`.execute(this.db);
    return rows.map((r) => ({
      repositoryId: Number(r.id),
      accountId: r.account_id,
      name: r.name,
      manifests: Number(r.manifests),
      manifestBytes: Number(r.manifest_bytes),
      blobs: Number(r.blobs),
      blobBytes: Number(r.blob_bytes),
    }));
  }

  async accountUsage(): Promise<AccountUsage[]> {
    const { rows: manifestRows } = await sql<{ account_id: string; repositories: number; manifests: number; manifest_bytes: number }>`
      select r.account_id, count(distinct r.id) as repositories, count(m.digest) as manifests, coalesce(sum(m.size_bytes), 0) as manifest_bytes
      from repositories r left join manifests m on m.repository_id = r.id
      group by r.account_id
      order by r.account_id`.execute(this.db);
    // Each blob once per account, with the number of the account's repositories referencing it.
    const { rows: blobRows } = await sql<{ account_id: string; blobs: number; blob_bytes: number; shared_blobs: number; shared_bytes: number }>`
      select x.account_id, count(*) as blobs, coalesce(sum(x.size_bytes), 0) as blob_bytes,
        coalesce(sum(case when x.repositories > 1 then 1 else 0 end), 0) as shared_blobs,
        coalesce(sum(case when x.repositories > 1 then x.size_bytes else 0 end), 0) as shared_bytes
      from (
        select r.account_id, b.digest, b.size_bytes, count(distinct mr.repository_id) as repositories
        from manifest_references mr
          join repositories r on r.id = mr.repository_id
          join blobs b on b.digest = mr.reference_digest
        where mr.kind = 'blob'
        group by r.account_id, b.digest, b.size_bytes
      ) x
      group by x.account_id`.execute(this.db);
    const blobs = new Map(blobRows.map((r) => [r.account_id, r]));
    return manifestRows.map((r) => {
      const b = blobs.get(r.account_id);
      return {
        accountId: r.account_id,
        repositories: Number(r.repositories),
        manifests: Number(r.manifests),
        manifestBytes: Number(r.manifest_bytes),
        blobs: Number(b?.blobs ?? 0),
        blobBytes: Number(b?.blob_bytes ?? 0),
        sharedBlobs: Number(b?.shared_blobs ?? 0),
        sharedBytes: Number(b?.shared_bytes ?? 0),
      };
    });
  }

  async totalUsage(): Promise<TotalUsage> {
    const { rows } = await sql<{ manifests: number; manifest_bytes: number; blobs: number; blob_bytes: number; unreferenced_blobs: number; unreferenced_bytes: number }>`
      select m.manifests, m.manifest_bytes, b.blobs, b.blob_bytes, b.unreferenced_blobs, b.unreferenced_bytes
      from (select count(*) as manifests, coalesce(sum(size_bytes), 0) as manifest_bytes from manifests) m
      cross join (
        -- One pass over the blobs, each asked once whether a manifest references it.
        select count(*) as blobs, coalesce(sum(x.size_bytes), 0) as blob_bytes,
          coalesce(sum(1 - x.referenced), 0) as unreferenced_blobs,
          coalesce(sum(case when x.referenced = 0 then x.size_bytes else 0 end), 0) as unreferenced_bytes
        from (
          select bl.size_bytes, case when exists (select 1 from manifest_references r where r.reference_digest = bl.digest) then 1 else 0 end as referenced
          from blobs bl
        ) x
      ) b`.execute(this.db);
    const r = rows[0]!;
    return {
      manifests: Number(r.manifests),
      manifestBytes: Number(r.manifest_bytes),
      blobs: Number(r.blobs),
      blobBytes: Number(r.blob_bytes),
      unreferencedBlobs: Number(r.unreferenced_blobs),
      unreferencedBytes: Number(r.unreferenced_bytes),
    };
  }
}
