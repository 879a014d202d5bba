import { sql, type Kysely, type SelectQueryBuilder, type Transaction } from 'kysely';
import type { Schema } from './schema.ts';

export type Db = Kysely<Schema> | Transaction<Schema>;
export type Dialect = 'sqlite' | 'postgres';

/** Runs fn in a transaction: the current one if there is one, else a new one. */
export type InTransaction = <T>(fn: (db: Db) => Promise<T>) => Promise<T>;

/**
 * What every part of the Kysely metadata store is made with: the database (or the transaction
 * the store was opened in), its dialect, and a way to run several statements in one transaction.
 */
export abstract class KyselyPart {
  protected readonly db: Db;
  protected readonly dialect: Dialect;
  protected readonly inTransaction: InTransaction;

  constructor(db: Db, dialect: Dialect, inTransaction: InTransaction) {
    this.db = db;
    this.dialect = dialect;
    this.inTransaction = inTransaction;
  }
}

/**
 * Whether a statement failed on a foreign key (PostgreSQL's 23503, SQLite's message): a row it
 * references was deleted meanwhile. Check before writing where you can (insert ... select): on
 * PostgreSQL a failed statement aborts the transaction it ran in.
 */
export function isForeignKeyViolation(err: unknown): boolean {
  const e = err as { code?: string; message?: string };
  return e.code === '23503' || /FOREIGN KEY constraint failed/i.test(String(e.message ?? ''));
}

/** Rows per `in (...)` list: well under SQLite's and PostgreSQL's limits on bound parameters. */
export const IN_CHUNK = 500;

/**
 * Row locks for garbage collection's protocol (docs/gc.md). On PostgreSQL, `for update` and
 * `for share`; SQLite has neither and needs none: every write transaction begins IMMEDIATE and
 * so holds the database's one write lock from its first statement to its end.
 */
export function withLock<DB, TB extends keyof DB, O>(q: SelectQueryBuilder<DB, TB, O>, dialect: Dialect, mode: 'update' | 'share'): SelectQueryBuilder<DB, TB, O> {
  if (dialect !== 'postgres') return q;
  return mode === 'update' ? q.forUpdate() : q.forShare();
}

/** Digests sorted by bytes, as the databases order them (COLLATE "C" on PostgreSQL). */
export function byteSorted(digests: Iterable<string>): string[] {
  return [...new Set(digests)].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
}

/**
 * Marks live blobs used at `nowMs` (a time only moves forward), locking their rows until the
 * transaction ends, in digest order so that two writers never deadlock. A collection deleting
 * one of them holds its row: this waits, and then finds it gone. Resolves the digests touched;
 * those missing are not recorded, or being deleted.
 */
export async function touchBlobs(db: Db, dialect: Dialect, digests: Iterable<string>, nowMs: number): Promise<Set<string>> {
  const sorted = byteSorted(digests);
  const touched = new Set<string>();
  for (let i = 0; i < sorted.length; i += IN_CHUNK) {
    const chunk = sorted.slice(i, i + IN_CHUNK);
    const locked = await withLock(
      db.selectFrom('blobs').select('digest').where('digest', 'in', chunk).where('deleting_at', 'is', null).orderBy('digest'),
      dialect,
      'update',
    ).execute();
    if (locked.length === 0) continue;
    const found = locked.map((r) => r.digest);
    await db
      .updateTable('blobs')
      .set({ last_used_at: sql<number>`case when last_used_at < ${nowMs} then ${nowMs} else last_used_at end` })
      .where('digest', 'in', found)
      .execute();
    for (const d of found) touched.add(d);
  }
  return touched;
}

/**
 * Locks manifests of a repository against garbage collection until the transaction ends
 * (`for share`: writers do not block each other; a collection's `for update` waits, or they wait
 * for it and find the manifest gone). Resolves the digests found.
 */
export async function lockManifests(db: Db, dialect: Dialect, repositoryId: number, digests: Iterable<string>): Promise<Set<string>> {
  const sorted = byteSorted(digests);
  const found = new Set<string>();
  for (let i = 0; i < sorted.length; i += IN_CHUNK) {
    const rows = await withLock(
      db.selectFrom('manifests').select('digest').where('repository_id', '=', repositoryId).where('digest', 'in', sorted.slice(i, i + IN_CHUNK)).orderBy('digest'),
      dialect,
      'share',
    ).execute();
    for (const r of rows) found.add(r.digest);
  }
  return found;
}

/** Deletes a manifest with its tags and its references, in the caller's transaction. Resolves whether it was there. */
export async function deleteManifestRows(db: Db, repositoryId: number, digest: string): Promise<boolean> {
  await db.deleteFrom('tags').where('repository_id', '=', repositoryId).where('manifest_digest', '=', digest).execute();
  await db.deleteFrom('manifest_references').where('repository_id', '=', repositoryId).where('manifest_digest', '=', digest).execute();
  const res = await db.deleteFrom('manifests').where('repository_id', '=', repositoryId).where('digest', '=', digest).executeTakeFirst();
  return Number(res.numDeletedRows) > 0;
}
