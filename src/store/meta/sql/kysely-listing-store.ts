import { sql, type RawBuilder } from 'kysely';
import type { Repository } from '../meta-store.ts';
import type {
  AccountFigures,
  ImageFilter,
  ImageListQuery,
  ListingStore,
  ListPosition,
  RepositoryEntry,
  RepositoryFigures,
  RepositoryListQuery,
  SortOrder,
} from '../listing-store.ts';
import { IN_CHUNK, isForeignKeyViolation, KyselyPart } from './locks.ts';

/**
 * The console's lists over Kysely; the same SQL on SQLite and PostgreSQL. Keyset pages compare
 * row values (`(key, name) > (?, ?)`), which both databases order as the ORDER BY does, and
 * which an index on (scope, key, name) serves directly: migration 0016-console-lists.
 */

/** `%text%` for `LIKE ... ESCAPE '\'`, with LIKE's wildcards in `text` taken literally. */
function containsPattern(text: string): string {
  return `%${text.replace(/[\\%_]/g, (c) => `\\${c}`)}%`;
}

function num(value: unknown): number {
  return Number(value ?? 0);
}

function toRepository(row: { id: number; account_id: string; name: string; created_at: number | string }): Repository {
  return { id: Number(row.id), accountId: row.account_id, name: row.name, createdAtMs: Number(row.created_at) };
}

/** The keys a page is ordered by (ties by the last one), and how a position continues after them. */
function keyset(keys: RawBuilder<unknown>[], order: SortOrder, after: RawBuilder<unknown>[] | undefined): { where: RawBuilder<unknown>; orderBy: RawBuilder<unknown> } {
  const direction = order === 'DESC' ? sql.raw('desc') : sql.raw('asc');
  return {
    where: after === undefined ? sql`1 = 1` : sql`(${sql.join(keys)}) ${sql.raw(order === 'DESC' ? '<' : '>')} (${sql.join(after)})`,
    orderBy: sql.join(keys.map((k) => sql`${k} ${direction}`)),
  };
}

interface FigureRow {
  repository_id: number;
  image_count?: number | string;
  manifest_bytes?: number | string | null;
  blob_count?: number | string;
  blob_bytes?: number | string | null;
}

export class KyselyListingStore extends KyselyPart implements ListingStore {
  /** `column` is none of `ids`: one bound parameter however many there are. */
  private notAmong(column: RawBuilder<unknown>, ids: readonly number[] | undefined): RawBuilder<unknown> {
    if (ids === undefined || ids.length === 0) return sql`1 = 1`;
    return this.dialect === 'postgres'
      ? sql`not (${column} = any(${[...ids]}::integer[]))`
      : sql`${column} not in (select value from json_each(${JSON.stringify(ids)}))`;
  }

  /** Text compared as bytes, as the ORDER BY of names and tags is everywhere (migration 0005). */
  private bytewise(expr: RawBuilder<unknown>): RawBuilder<unknown> {
    return this.dialect === 'postgres' ? sql`${expr} collate "C"` : expr;
  }

  /** Per repository of `scope` (a subquery of repository ids): its manifests and their bytes. */
  private manifestTotals(scope: RawBuilder<unknown>): RawBuilder<FigureRow> {
    return sql<FigureRow>`select repository_id, count(*) as image_count, sum(size_bytes) as manifest_bytes
      from manifests where repository_id in (${scope}) group by repository_id`;
  }

  /**
   * Each blob the manifests of a repository of `scope` reference, once per repository, with its
   * size: (repository_id, digest, size_bytes). On SQLite the distinct pairs come from
   * manifest_references_target alone, and `kind`, which the index lacks, is then asked once per
   * pair rather than read from the table for every reference (a repository of 10,000 images has
   * 30,000 of them): a sixth of the time. PostgreSQL hashes the references either way, and
   * hashing them once, `kind` and all, is the faster there.
   */
  private blobRefs(scope: RawBuilder<unknown>): RawBuilder<unknown> {
    if (this.dialect === 'postgres') {
      return sql`select x.repository_id, b.digest, b.size_bytes
        from (select distinct mr.repository_id, mr.reference_digest from manifest_references mr
              where mr.repository_id in (${scope}) and mr.kind = 'blob') x
          join blobs b on b.digest = x.reference_digest`;
    }
    return sql`select x.repository_id, b.digest, b.size_bytes
      from (select distinct mr.repository_id, mr.reference_digest from manifest_references mr where mr.repository_id in (${scope})) x
        join blobs b on b.digest = x.reference_digest
      where exists (select 1 from manifest_references k
        where k.repository_id = x.repository_id and k.reference_digest = x.reference_digest and k.kind = 'blob')`;
  }

  /** Per repository of `scope`: the distinct blobs its manifests reference, and their bytes. */
  private blobTotals(scope: RawBuilder<unknown>): RawBuilder<FigureRow> {
    return sql<FigureRow>`select r.repository_id, count(*) as blob_count, sum(r.size_bytes) as blob_bytes
      from (${this.blobRefs(scope)}) r group by r.repository_id`;
  }

  private accountScope(accountId: string, excludeIds: readonly number[] | undefined): RawBuilder<unknown> {
    return sql`select id from repositories where account_id = ${accountId} and ${this.notAmong(sql.ref('id'), excludeIds)}`;
  }

  private async figuresOf(scope: RawBuilder<unknown>): Promise<Map<number, RepositoryFigures>> {
    const out = new Map<number, RepositoryFigures>();
    const at = (id: number) => {
      let f = out.get(id);
      if (!f) {
        f = { imageCount: 0, manifestBytes: 0, blobCount: 0, blobBytes: 0, sizeBytes: 0 };
        out.set(id, f);
      }
      return f;
    };
    for (const row of (await this.manifestTotals(scope).execute(this.db)).rows) {
      const f = at(Number(row.repository_id));
      f.imageCount = num(row.image_count);
      f.manifestBytes = num(row.manifest_bytes);
    }
    for (const row of (await this.blobTotals(scope).execute(this.db)).rows) {
      const f = at(Number(row.repository_id));
      f.blobCount = num(row.blob_count);
      f.blobBytes = num(row.blob_bytes);
    }
    for (const f of out.values()) f.sizeBytes = f.manifestBytes + f.blobBytes;
    return out;
  }

  // --- repositories -------------------------------------------------------------------------

  async listRepositoryEntries(accountId: string): Promise<RepositoryEntry[]> {
    const rows = await this.db
      .selectFrom('repositories')
      .select((eb) => ['id', 'name', 'created_at', eb('policy', 'is not', null).as('has_policy')])
      .where('account_id', '=', accountId)
      .orderBy('name')
      .execute();
    // SQLite answers 0 or 1, PostgreSQL a boolean.
    return rows.map((r) => ({ id: Number(r.id), name: r.name, createdAtMs: Number(r.created_at), hasPolicy: Boolean(Number(r.has_policy)) }));
  }

  async listRepositories(query: RepositoryListQuery & { sortBy: 'name' | 'createdAt' }): Promise<Array<{ repository: Repository; position: ListPosition }>> {
    const conditions = [sql`r.account_id = ${query.accountId}`, this.notAmong(sql.ref('r.id'), query.excludeIds)];
    if (query.nameContains) conditions.push(sql`r.name like ${containsPattern(query.nameContains)} escape '\\'`);
    const where = sql.join(conditions, sql` and `);
    type Row = { id: number; account_id: string; name: string; created_at: number | string; k: number | string };
    // Straight off an index: (account_id, name) or repositories_created.
    const key = query.sortBy === 'name' ? sql.ref('r.name') : sql.ref('r.created_at');
    const after = query.after && (query.sortBy === 'name' ? [sql`${query.after.id}`] : [sql`${query.after.value}`, sql`${query.after.id}`]);
    const { where: from, orderBy } = keyset(query.sortBy === 'name' ? [key] : [key, sql.ref('r.name')], query.order, after);
    const rows = (await sql<Row>`select r.id, r.account_id, r.name, r.created_at, ${key} as k from repositories r
      where ${where} and ${from} order by ${orderBy} limit ${query.limit}`.execute(this.db)).rows;
    return rows.map((r) => ({ repository: toRepository(r), position: { value: query.sortBy === 'name' ? r.name : num(r.k), id: r.name } }));
  }

  async repositoryFigures(repositoryIds: readonly number[]): Promise<Map<number, RepositoryFigures>> {
    const out = new Map<number, RepositoryFigures>();
    const ids = [...new Set(repositoryIds)];
    for (let i = 0; i < ids.length; i += IN_CHUNK) {
      const chunk = ids.slice(i, i + IN_CHUNK);
      const existing = await this.db.selectFrom('repositories').select('id').where('id', 'in', chunk).execute();
      if (existing.length === 0) continue;
      const figures = await this.figuresOf(sql`select id from repositories where id in (${sql.join(existing.map((r) => r.id))})`);
      for (const { id } of existing) out.set(Number(id), figures.get(Number(id)) ?? { imageCount: 0, manifestBytes: 0, blobCount: 0, blobBytes: 0, sizeBytes: 0 });
    }
    return out;
  }


  async accountFigures(accountId: string, options: { excludeIds?: readonly number[] | undefined } = {}): Promise<AccountFigures> {
    const scope = this.accountScope(accountId, options.excludeIds);
    const repos = await sql<{ n: number | string }>`select count(*) as n from (${scope}) s`.execute(this.db);
    const manifests = await sql<{ n: number | string; bytes: number | string | null }>`
      select count(*) as n, sum(size_bytes) as bytes from manifests where repository_id in (${scope})`.execute(this.db);
    // Each blob once, with how many of the repositories reference it.
    const blobs = await sql<{ n: number | string; bytes: number | string | null; shared_n: number | string | null; shared_bytes: number | string | null }>`
      select count(*) as n, sum(size_bytes) as bytes,
        sum(case when repositories > 1 then 1 else 0 end) as shared_n,
        sum(case when repositories > 1 then size_bytes else 0 end) as shared_bytes
      from (select r.digest, r.size_bytes, count(*) as repositories from (${this.blobRefs(scope)}) r
            group by r.digest, r.size_bytes) u`.execute(this.db);
    const m = manifests.rows[0];
    const b = blobs.rows[0];
    return {
      repositoryCount: num(repos.rows[0]?.n),
      imageCount: num(m?.n),
      manifestBytes: num(m?.bytes),
      blobCount: num(b?.n),
      blobBytes: num(b?.bytes),
      sharedBlobCount: num(b?.shared_n),
      sharedBlobBytes: num(b?.shared_bytes),
    };
  }

  // --- images -------------------------------------------------------------------------------

  /** The filter's conditions on manifests `m`. */
  private imageConditions(filter: ImageFilter): RawBuilder<unknown> {
    const conditions = [sql`m.repository_id = ${filter.repositoryId}`];
    const tagged = sql`exists (select 1 from tags t where t.repository_id = m.repository_id and t.manifest_digest = m.digest)`;
    if (filter.tagStatus === 'TAGGED') conditions.push(tagged);
    if (filter.tagStatus === 'UNTAGGED') conditions.push(sql`not ${tagged}`);
    if (filter.contains) {
      const pattern = containsPattern(filter.contains);
      conditions.push(sql`(m.digest like ${pattern} escape '\\' or exists (select 1 from tags t
        where t.repository_id = m.repository_id and t.manifest_digest = m.digest and lower(t.name) like ${pattern} escape '\\'))`);
    }
    return sql.join(conditions, sql` and `);
  }

  async listImages(query: ImageListQuery): Promise<Array<{ digest: string; position: ListPosition }>> {
    const where = this.imageConditions(query);
    const after = query.after;
    if (query.sortBy === 'tag') {
      // By the first tag (byte order), untagged images after every tag: (untagged?, first tag, digest).
      const untagged = sql`case when q.first_tag is null then 1 else 0 end`;
      const firstTag = this.bytewise(sql`coalesce(q.first_tag, '')`);
      const from = after && [sql`${after.value === null ? 1 : 0}`, sql`${after.value ?? ''}`, sql`${after.id}`];
      const { where: position, orderBy } = keyset([untagged, firstTag, sql.ref('q.digest')], query.order, from);
      // Each manifest with its tags, grouped: both in (repository, digest) order (the primary key, tags_manifest).
      const { rows } = await sql<{ digest: string; first_tag: string | null }>`select q.digest, q.first_tag from (
          select m.digest, min(t.name) as first_tag
          from manifests m left join tags t on t.repository_id = m.repository_id and t.manifest_digest = m.digest
          where ${where} group by m.digest) q
        where ${position} order by ${orderBy} limit ${query.limit}`.execute(this.db);
      return rows.map((r) => ({ digest: r.digest, position: { value: r.first_tag, id: r.digest } }));
    }
    const from = after && [sql`${after.value}`, sql`${after.id}`];
    if (query.sortBy === 'sizeBytes') {
      const { where: position, orderBy } = keyset([sql.ref('s.size_bytes'), sql.ref('s.digest')], query.order, from);
      const { rows } = await sql<{ digest: string; k: number | string }>`select m.digest, s.size_bytes as k
        from image_sizes s join manifests m on m.repository_id = s.repository_id and m.digest = s.digest
        where s.repository_id = ${query.repositoryId} and ${where} and ${position} order by ${orderBy} limit ${query.limit}`.execute(this.db);
      return rows.map((r) => ({ digest: r.digest, position: { value: num(r.k), id: r.digest } }));
    }
    const { where: position, orderBy } = keyset([sql.ref('m.created_at'), sql.ref('m.digest')], query.order, from);
    const { rows } = await sql<{ digest: string; k: number | string }>`select m.digest, m.created_at as k from manifests m
      where ${where} and ${position} order by ${orderBy} limit ${query.limit}`.execute(this.db);
    return rows.map((r) => ({ digest: r.digest, position: { value: num(r.k), id: r.digest } }));
  }

  async countImages(filter: ImageFilter): Promise<number> {
    const { rows } = await sql<{ n: number | string }>`select count(*) as n from manifests m where ${this.imageConditions(filter)}`.execute(this.db);
    return num(rows[0]?.n);
  }

  async listImagesWithoutSize(repositoryId: number, query: { afterDigest?: string | undefined; limit: number }): Promise<Array<{ digest: string; mediaType: string; payload: Uint8Array }>> {
    let q = this.db
      .selectFrom('manifests as m')
      .select(['m.digest', 'm.media_type', 'm.payload'])
      .where('m.repository_id', '=', repositoryId);
    if (query.afterDigest !== undefined) q = q.where('m.digest', '>', query.afterDigest);
    const rows = await q
      .where(({ not, exists, selectFrom }) =>
        not(exists(selectFrom('image_sizes as s').select('s.digest').whereRef('s.repository_id', '=', 'm.repository_id').whereRef('s.digest', '=', 'm.digest'))),
      )
      .orderBy('m.digest')
      .limit(query.limit)
      .execute();
    return rows.map((r) => ({ digest: r.digest, mediaType: r.media_type, payload: r.payload }));
  }

  async recordImageSizes(repositoryId: number, sizes: ReadonlyArray<{ digest: string; sizeBytes: number }>): Promise<void> {
    const insert = (batch: ReadonlyArray<{ digest: string; sizeBytes: number }>) =>
      this.db
        .insertInto('image_sizes')
        // In digest order, the order writers lock manifests in (locks.ts).
        .values([...batch].sort((a, b) => (a.digest < b.digest ? -1 : a.digest > b.digest ? 1 : 0)).map((s) => ({ repository_id: repositoryId, digest: s.digest, size_bytes: s.sizeBytes })))
        .onConflict((oc) => oc.columns(['repository_id', 'digest']).doNothing())
        .execute();
    for (let i = 0; i < sizes.length; i += IN_CHUNK) {
      const batch = sizes.slice(i, i + IN_CHUNK);
      try {
        await insert(batch);
      } catch (err) {
        if (!isForeignKeyViolation(err)) throw err;
        // A manifest was deleted meanwhile: the others one by one, without it.
        for (const one of batch) {
          await insert([one]).catch((e: unknown) => {
            if (!isForeignKeyViolation(e)) throw e;
          });
        }
      }
    }
  }
}
