import { sql } from 'kysely';
import type { AccountUsage, BlobRecord, GcStore, ManifestCandidate, ManifestKey, ManifestState, RemovedManifest, RepositoryUsage, TotalUsage } from '../gc-store.ts';
import { deleteManifestRows, IN_CHUNK, KyselyPart, withLock, type Db, type Dialect, type InTransaction } from './locks.ts';
import { pacer, scanWindow } from './pacing.ts';

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
export class KyselyGcStore extends KyselyPart implements GcStore {
  /** Rows one query of a long pass reads (pacing.ts). */
  private readonly window: number;

  constructor(db: Db, dialect: Dialect, inTransaction: InTransaction) {
    super(db, dialect, inTransaction);
    this.window = scanWindow(dialect);
  }

  // --- manifests ----------------------------------------------------------------------------

  async listManifestCandidates(query: { createdBeforeMs: number; after?: ManifestKey | undefined; limit: number }): Promise<ManifestCandidate[]> {
    // In windows of the primary key: a window's keys first (from the index alone), then the
    // test on that range only, so that no query walks far however rare candidates are.
    const out: ManifestCandidate[] = [];
    const pace = pacer();
    let after = query.after;
    while (out.length < query.limit) {
      let keys = this.db.selectFrom('manifests').select(['repository_id', 'digest']).orderBy('repository_id').orderBy('digest').limit(this.window);
      if (after) keys = keys.where((eb) => eb(eb.refTuple('repository_id', 'digest'), '>', eb.tuple(after!.repositoryId, after!.digest)));
      const window = await keys.execute();
      if (window.length === 0) break;
      const last = window[window.length - 1]!;
      const upto: ManifestKey = { repositoryId: last.repository_id, digest: last.digest };
      let q = this.db
        .selectFrom('manifests as m')
        .innerJoin('repositories as r', 'r.id', 'm.repository_id')
        .select(['m.repository_id', 'm.digest', 'm.size_bytes', 'm.created_at', 'r.account_id', 'r.name'])
        .where((eb) => eb(eb.refTuple('m.repository_id', 'm.digest'), '<=', eb.tuple(upto.repositoryId, upto.digest)))
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
        .limit(query.limit - out.length);
      if (after) q = q.where((eb) => eb(eb.refTuple('m.repository_id', 'm.digest'), '>', eb.tuple(after!.repositoryId, after!.digest)));
      for (const r of await q.execute()) {
        out.push({
          repositoryId: r.repository_id,
          digest: r.digest,
          accountId: r.account_id,
          repositoryName: r.name,
          sizeBytes: Number(r.size_bytes),
          createdAtMs: Number(r.created_at),
        });
      }
      if (window.length < this.window) break;
      after = upto;
      await pace();
    }
    return out;
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
    // In windows of blobs_last_used, as listManifestCandidates does with manifests.
    const out: BlobRecord[] = [];
    const pace = pacer();
    let after = query.after;
    while (out.length < query.limit) {
      let keys = this.db.selectFrom('blobs').select(['last_used_at', 'digest']).where('last_used_at', '<', query.usedBeforeMs).orderBy('last_used_at').orderBy('digest').limit(this.window);
      if (after) keys = keys.where((eb) => eb(eb.refTuple('last_used_at', 'digest'), '>', eb.tuple(after!.lastUsedAtMs, after!.digest)));
      const window = await keys.execute();
      if (window.length === 0) break;
      const last = window[window.length - 1]!;
      const upto = { lastUsedAtMs: Number(last.last_used_at), digest: last.digest };
      let q = this.db
        .selectFrom('blobs as b')
        .select(['b.digest', 'b.size_bytes', 'b.created_at', 'b.last_used_at', 'b.deleting_at'])
        .where((eb) => eb(eb.refTuple('b.last_used_at', 'b.digest'), '<=', eb.tuple(upto.lastUsedAtMs, upto.digest)))
        .where('b.last_used_at', '<', query.usedBeforeMs)
        .where('b.deleting_at', 'is', null)
        .where((eb) => eb.not(eb.exists(eb.selectFrom('manifest_references as r').select('r.reference_digest').whereRef('r.reference_digest', '=', 'b.digest'))))
        .orderBy('b.last_used_at')
        .orderBy('b.digest')
        .limit(query.limit - out.length);
      if (after) q = q.where((eb) => eb(eb.refTuple('b.last_used_at', 'b.digest'), '>', eb.tuple(after!.lastUsedAtMs, after!.digest)));
      out.push(...(await q.execute()).map(toBlob));
      if (window.length < this.window) break;
      after = upto;
      await pace();
    }
    return out;
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

  // Each pass below reads in windows and yields between them (pacing.ts), so it never holds a
  // SQLite server's event loop for long. The figures are therefore not one snapshot: writes
  // landing during a pass may be counted in one window and not another, which storage metrics
  // (recomputed every 30 s) tolerate.

  async repositoryUsage(query: { afterId?: number | undefined; limit: number }): Promise<RepositoryUsage[]> {
    const pace = pacer();
    const repositories = await this.db
      .selectFrom('repositories')
      .select(['id', 'account_id', 'name'])
      .where('id', '>', query.afterId ?? -1)
      .orderBy('id')
      .limit(query.limit)
      .execute();
    const out: RepositoryUsage[] = [];
    for (const r of repositories) {
      const usage: RepositoryUsage = { repositoryId: Number(r.id), accountId: r.account_id, name: r.name, manifests: 0, manifestBytes: 0, blobs: 0, blobBytes: 0 };
      let afterDigest: string | undefined;
      for (;;) {
        let q = this.db.selectFrom('manifests').select(['digest', 'size_bytes']).where('repository_id', '=', r.id).orderBy('digest').limit(this.window);
        if (afterDigest !== undefined) q = q.where('digest', '>', afterDigest);
        const rows = await q.execute();
        for (const m of rows) {
          usage.manifests++;
          usage.manifestBytes += Number(m.size_bytes);
        }
        await pace();
        if (rows.length < this.window) break;
        afterDigest = rows[rows.length - 1]!.digest;
      }
      // The distinct blobs its manifests reference, in digest order: grouped by the digest alone,
      // so that the grouping follows manifest_references_target and stops at the window's end
      // (grouping by the blob's size too made SQLite sort every reference of the repository
      // for each window); then the window's sizes.
      afterDigest = undefined;
      for (;;) {
        let q = this.db
          .selectFrom('manifest_references')
          .select('reference_digest')
          .where('repository_id', '=', r.id)
          .where('kind', '=', 'blob')
          .groupBy('reference_digest')
          .orderBy('reference_digest')
          .limit(this.window);
        if (afterDigest !== undefined) q = q.where('reference_digest', '>', afterDigest);
        const digests = (await q.execute()).map((row) => row.reference_digest);
        if (digests.length > 0) {
          const sizes = await this.db.selectFrom('blobs').select('size_bytes').where('digest', 'in', digests).execute();
          for (const b of sizes) {
            usage.blobs++;
            usage.blobBytes += Number(b.size_bytes);
          }
        }
        await pace();
        if (digests.length < this.window) break;
        afterDigest = digests[digests.length - 1];
      }
      out.push(usage);
    }
    return out;
  }

  /** Calls `fn` with successive ranges (after, upto] of blob digests, scanWindow rows of `blobs` each. */
  private async blobWindows(fn: (after: string | undefined, upto: string) => Promise<void>): Promise<void> {
    const pace = pacer();
    let after: string | undefined;
    for (;;) {
      let q = this.db.selectFrom('blobs').select('digest').orderBy('digest').limit(this.window);
      if (after !== undefined) q = q.where('digest', '>', after);
      const rows = await q.execute();
      if (rows.length === 0) return;
      const upto = rows[rows.length - 1]!.digest;
      await fn(after, upto);
      await pace();
      if (rows.length < this.window) return;
      after = upto;
    }
  }

  /** Count and bytes of every manifest, per repository id, in windows of the primary key. */
  private async manifestTotals(): Promise<Map<number, { manifests: number; bytes: number }>> {
    const pace = pacer();
    const totals = new Map<number, { manifests: number; bytes: number }>();
    let after: { repositoryId: number; digest: string } | undefined;
    for (;;) {
      let q = this.db.selectFrom('manifests').select(['repository_id', 'digest', 'size_bytes']).orderBy('repository_id').orderBy('digest').limit(this.window);
      if (after) q = q.where((eb) => eb(eb.refTuple('repository_id', 'digest'), '>', eb.tuple(after!.repositoryId, after!.digest)));
      const rows = await q.execute();
      for (const m of rows) {
        const t = totals.get(m.repository_id) ?? { manifests: 0, bytes: 0 };
        t.manifests++;
        t.bytes += Number(m.size_bytes);
        totals.set(m.repository_id, t);
      }
      await pace();
      if (rows.length < this.window) return totals;
      const last = rows[rows.length - 1]!;
      after = { repositoryId: last.repository_id, digest: last.digest };
    }
  }

  async accountUsage(): Promise<AccountUsage[]> {
    const accounts = new Map<string, AccountUsage>();
    const accountOf = new Map<number, string>();
    const pace = pacer();
    let afterId = -1;
    for (;;) {
      const rows = await this.db.selectFrom('repositories').select(['id', 'account_id']).where('id', '>', afterId).orderBy('id').limit(this.window).execute();
      for (const r of rows) {
        accountOf.set(Number(r.id), r.account_id);
        const a = accounts.get(r.account_id) ?? { accountId: r.account_id, repositories: 0, manifests: 0, manifestBytes: 0, blobs: 0, blobBytes: 0, sharedBlobs: 0, sharedBytes: 0 };
        a.repositories++;
        accounts.set(r.account_id, a);
      }
      await pace();
      if (rows.length < this.window) break;
      afterId = Number(rows[rows.length - 1]!.id);
    }
    for (const [repositoryId, t] of await this.manifestTotals()) {
      const a = accounts.get(accountOf.get(repositoryId) ?? '');
      if (!a) continue;
      a.manifests += t.manifests;
      a.manifestBytes += t.bytes;
    }
    // Each blob once per account, with the number of the account's repositories referencing it.
    await this.blobWindows(async (after, upto) => {
      const { rows } = await sql<{ account_id: string; size_bytes: number; repositories: number }>`
        select r.account_id, b.size_bytes, count(distinct mr.repository_id) as repositories
        from manifest_references mr
          join repositories r on r.id = mr.repository_id
          join blobs b on b.digest = mr.reference_digest
        where mr.kind = 'blob' and mr.reference_digest > ${after ?? ''} and mr.reference_digest <= ${upto}
        group by r.account_id, b.digest, b.size_bytes`.execute(this.db);
      for (const row of rows) {
        const a = accounts.get(row.account_id);
        if (!a) continue;
        const sizeBytes = Number(row.size_bytes);
        a.blobs++;
        a.blobBytes += sizeBytes;
        if (Number(row.repositories) > 1) {
          a.sharedBlobs++;
          a.sharedBytes += sizeBytes;
        }
      }
    });
    return [...accounts.values()].sort((x, y) => (x.accountId < y.accountId ? -1 : x.accountId > y.accountId ? 1 : 0));
  }

  async totalUsage(): Promise<TotalUsage> {
    const total: TotalUsage = { manifests: 0, manifestBytes: 0, blobs: 0, blobBytes: 0, unreferencedBlobs: 0, unreferencedBytes: 0 };
    for (const t of (await this.manifestTotals()).values()) {
      total.manifests += t.manifests;
      total.manifestBytes += t.bytes;
    }
    // Each blob asked once whether a manifest references it.
    await this.blobWindows(async (after, upto) => {
      let q = this.db
        .selectFrom('blobs as b')
        .select((eb) => [
          'b.size_bytes',
          eb.exists(eb.selectFrom('manifest_references as r').select('r.reference_digest').whereRef('r.reference_digest', '=', 'b.digest')).as('referenced'),
        ])
        .where('b.digest', '<=', upto);
      if (after !== undefined) q = q.where('b.digest', '>', after);
      for (const row of await q.execute()) {
        const sizeBytes = Number(row.size_bytes);
        total.blobs++;
        total.blobBytes += sizeBytes;
        // SQLite answers 0 or 1, PostgreSQL a boolean.
        if (!row.referenced || Number(row.referenced) === 0) {
          total.unreferencedBlobs++;
          total.unreferencedBytes += sizeBytes;
        }
      }
    });
    return total;
  }
}
