import { sql } from 'kysely';
import type { VulnAffectedRow, VulnDbStore, VulnRecordRow, VulnSourceRow } from '../vulndb-store.ts';
import { IN_CHUNK, withLock, type Db, KyselyPart } from './locks.ts';
import { pacer, scanWindow } from './pacing.ts';

/** Rows per insert: 4 and 6 parameters each, well under SQLite's and PostgreSQL's limits. */
const INSERT_CHUNK = 500;

/** A lookup spanning several statements retries while activations keep moving the version under it. */
const CONSISTENT_READ_TRIES = 10;

type RecordBody = Omit<VulnRecordRow, 'id' | 'source'>;
type AffectedBody = Pick<VulnAffectedRow, 'ranges' | 'versions' | 'status' | 'distroSeverity'>;

function recordBody(r: VulnRecordRow): string {
  const body: RecordBody = { aliases: r.aliases, related: r.related, severity: r.severity, references: r.references };
  if (r.summary !== undefined) body.summary = r.summary;
  if (r.details !== undefined) body.details = r.details;
  if (r.published !== undefined) body.published = r.published;
  if (r.modified !== undefined) body.modified = r.modified;
  return JSON.stringify(body);
}

function affectedBody(a: VulnAffectedRow): string {
  const body: AffectedBody = { ranges: a.ranges, versions: a.versions };
  if (a.status !== undefined) body.status = a.status;
  if (a.distroSeverity !== undefined) body.distroSeverity = a.distroSeverity;
  return JSON.stringify(body);
}

function toRecord(r: { id: string; source: string; body: string }): VulnRecordRow {
  const body = JSON.parse(r.body) as RecordBody;
  return { id: r.id, source: r.source, ...body };
}

function toAffected(r: { vuln_id: string; ecosystem: string; package: string; source: string; body: string }): VulnAffectedRow {
  const body = JSON.parse(r.body) as AffectedBody;
  return { vulnId: r.vuln_id, ecosystem: r.ecosystem, package: r.package, source: r.source, ...body };
}

function toSource(r: { name: string; description: string; updated_at: number; imported_at: number; record_count: number; sha256: string }): VulnSourceRow {
  return {
    name: r.name,
    description: r.description,
    updatedAtMs: Number(r.updated_at),
    importedAtMs: Number(r.imported_at),
    recordCount: Number(r.record_count),
    sha256: r.sha256,
  };
}

function chunks<T>(items: T[], size: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size));
  return out;
}

/**
 * The smallest string greater than every string starting with `prefix` in byte order (both
 * databases compare these columns as UTF-8 bytes, which is code point order), or undefined when
 * the last character has no simple successor (a surrogate or U+FFFF).
 */
function prefixEnd(prefix: string): string | undefined {
  const last = prefix.charCodeAt(prefix.length - 1);
  if (prefix.length === 0 || (last >= 0xd800 && last <= 0xdfff) || last === 0xffff) return undefined;
  return prefix.slice(0, -1) + String.fromCharCode(last + 1);
}

/**
 * The vulnerability database over Kysely (migration 0009); the same SQL on SQLite and
 * PostgreSQL but for row locks. Readers join every row with `vuln_sources` on (source,
 * generation), so an import's rows become visible exactly when activate() commits.
 *
 * Concurrency on PostgreSQL: activate() locks the `vuln_meta` row first, so activations run one
 * at a time; put*() holds its generation's row `for share` while it inserts and abort marks it
 * `aborted` (which waits for those), so no insert lands in a generation after its rows are
 * deleted. On SQLite every write transaction holds the database's one write lock.
 */
/** Rolls back removeSource's transaction (and its version bump) when there is nothing to remove. */
class NoSuchSource extends Error {}

export class KyselyVulnDbStore extends KyselyPart implements VulnDbStore {
  async beginImport(sources: string[]): Promise<number> {
    const row = await this.db
      .insertInto('vuln_generations')
      .values({ sources: JSON.stringify(sources), state: 'importing', started_at: Date.now(), finished_at: null })
      .returning('generation')
      .executeTakeFirstOrThrow();
    return Number(row.generation);
  }

  async putRecords(generation: number, records: VulnRecordRow[]): Promise<void> {
    if (records.length === 0) return;
    // One statement cannot touch a row twice (PostgreSQL refuses ON CONFLICT on a row its own
    // VALUES list inserted): the last of duplicates wins, as a later call would.
    const byKey = new Map<string, VulnRecordRow>();
    for (const r of records) byKey.set(JSON.stringify([r.source, r.id]), r);
    await this.inTransaction(async (db) => {
      await this.requireImporting(db, generation);
      for (const chunk of chunks([...byKey.values()], INSERT_CHUNK)) {
        await db
          .insertInto('vuln_records')
          .values(chunk.map((r) => ({ generation, source: r.source, id: r.id, body: recordBody(r) })))
          .onConflict((oc) => oc.columns(['generation', 'source', 'id']).doUpdateSet((eb) => ({ body: eb.ref('excluded.body') })))
          .execute();
      }
    });
  }

  async putAffected(generation: number, affected: VulnAffectedRow[]): Promise<void> {
    if (affected.length === 0) return;
    await this.inTransaction(async (db) => {
      await this.requireImporting(db, generation);
      for (const chunk of chunks(affected, INSERT_CHUNK)) {
        await db
          .insertInto('vuln_affected')
          .values(chunk.map((a) => ({ generation, source: a.source, ecosystem: a.ecosystem, package: a.package, vuln_id: a.vulnId, body: affectedBody(a) })))
          .execute();
      }
    });
  }

  async activate(generation: number, sources: VulnSourceRow[]): Promise<number> {
    const names = sources.map((s) => s.name);
    if (new Set(names).size !== names.length) throw new Error(`activate: a source is named twice in ${JSON.stringify(names)}`);
    const { version, replaced } = await this.inTransaction(async (db) => {
      // First, so that on PostgreSQL activations queue here, each seeing the last one's sources.
      await db
        .updateTable('vuln_meta')
        .set({ version: sql<number>`${sql.ref('version')} + 1` })
        .where('id', '=', 1)
        .execute();
      const gen = await withLock(db.selectFrom('vuln_generations').select('state').where('generation', '=', generation), this.dialect, 'update').executeTakeFirst();
      if (gen?.state !== 'importing') throw new Error(`vulnerability database import ${generation} cannot be activated: it is ${gen ? gen.state : 'gone (aborted or swept)'}`);
      const current = names.length === 0 ? [] : await db.selectFrom('vuln_sources').select(['name', 'generation']).where('name', 'in', names).execute();
      for (const c of current) {
        // An import that began earlier must not undo one that began later and won the race.
        if (Number(c.generation) > generation) throw new Error(`vulnerability database source ${c.name} was replaced by a newer import (${c.generation}) while import ${generation} ran`);
      }
      for (const s of sources) {
        const row = { generation, description: s.description, updated_at: s.updatedAtMs, imported_at: s.importedAtMs, record_count: s.recordCount, sha256: s.sha256 };
        await db
          .insertInto('vuln_sources')
          .values({ name: s.name, ...row })
          .onConflict((oc) => oc.column('name').doUpdateSet(row))
          .execute();
      }
      await db.updateTable('vuln_generations').set({ state: 'active', finished_at: Date.now() }).where('generation', '=', generation).execute();
      const meta = await db.selectFrom('vuln_meta').select('version').where('id', '=', 1).executeTakeFirstOrThrow();
      return { version: Number(meta.version), replaced: [...new Set(current.map((c) => Number(c.generation)).filter((g) => g !== generation))] };
    });
    // The replaced rows are already invisible: deleting them is housekeeping, in small steps so
    // that neither database holds a long transaction (or, on SQLite, its one write lock).
    for (const g of [...replaced, generation]) await this.clean(g);
    return version;
  }

  async removeSource(name: string): Promise<boolean> {
    const generation = await this.inTransaction(async (db) => {
      // The version first, as activate() does, so that removals and activations queue.
      await db
        .updateTable('vuln_meta')
        .set({ version: sql<number>`${sql.ref('version')} + 1` })
        .where('id', '=', 1)
        .execute();
      const row = await db.selectFrom('vuln_sources').select('generation').where('name', '=', name).executeTakeFirst();
      if (!row) throw new NoSuchSource();
      await db.deleteFrom('vuln_sources').where('name', '=', name).execute();
      return Number(row.generation);
    }).catch((err: unknown) => {
      if (err instanceof NoSuchSource) return undefined;
      throw err;
    });
    if (generation === undefined) return false;
    await this.clean(generation);
    return true;
  }

  async abortImport(generation: number): Promise<void> {
    // Marked first: a put() still running finishes before this returns (PostgreSQL's row lock)
    // and any later one is refused, so nothing lands after the rows below are deleted.
    await this.db.updateTable('vuln_generations').set({ state: 'aborted', finished_at: Date.now() }).where('generation', '=', generation).where('state', '=', 'importing').execute();
    await this.clean(generation);
  }

  async sweepAbandoned(olderThanMs: number): Promise<number> {
    const generations = await this.db.selectFrom('vuln_generations').select(['generation', 'state', 'started_at']).orderBy('generation').execute();
    let deleted = 0;
    for (const g of generations) {
      const generation = Number(g.generation);
      if (g.state === 'importing') {
        if (Number(g.started_at) >= olderThanMs) continue;
        const res = await this.db
          .updateTable('vuln_generations')
          .set({ state: 'aborted', finished_at: Date.now() })
          .where('generation', '=', generation)
          .where('state', '=', 'importing')
          .executeTakeFirst();
        // Activated meanwhile: clean() below keeps its active rows.
        if (Number(res.numUpdatedRows) === 0) continue;
      }
      deleted += await this.clean(generation);
    }
    return deleted;
  }

  async status(): Promise<{ version: number; sources: VulnSourceRow[] }> {
    return this.consistent(2, async () => (await this.db.selectFrom('vuln_sources').selectAll().orderBy('name').execute()).map(toSource)).then(({ version, value }) => ({ version, sources: value }));
  }

  async affected(ecosystem: string, packages: string[]): Promise<VulnAffectedRow[]> {
    return this.affectedWhere(packages, { exact: ecosystem });
  }

  async affectedByPrefix(ecosystemPrefix: string, packages: string[]): Promise<VulnAffectedRow[]> {
    return this.affectedWhere(packages, { prefix: ecosystemPrefix });
  }

  async records(ids: string[]): Promise<VulnRecordRow[]> {
    const unique = [...new Set(ids)];
    const parts = chunks(unique, IN_CHUNK);
    const { value } = await this.consistent(parts.length, async () => {
      const out: VulnRecordRow[] = [];
      for (const part of parts) {
        const rows = await this.db
          .selectFrom('vuln_records as r')
          .innerJoin('vuln_sources as s', (j) => j.onRef('s.name', '=', 'r.source').onRef('s.generation', '=', 'r.generation'))
          .select(['r.id', 'r.source', 'r.body'])
          .where('r.id', 'in', part)
          .orderBy('r.id')
          .orderBy('r.source')
          .execute();
        out.push(...rows.map(toRecord));
      }
      return out;
    });
    return value;
  }

  private async affectedWhere(packages: string[], ecosystem: { exact: string } | { prefix: string }): Promise<VulnAffectedRow[]> {
    const parts = chunks([...new Set(packages)], IN_CHUNK);
    const { value } = await this.consistent(parts.length, async () => {
      const out: VulnAffectedRow[] = [];
      for (const part of parts) {
        let q = this.db
          .selectFrom('vuln_affected as a')
          .innerJoin('vuln_sources as s', (j) => j.onRef('s.name', '=', 'a.source').onRef('s.generation', '=', 'a.generation'))
          .select(['a.vuln_id', 'a.ecosystem', 'a.package', 'a.source', 'a.body'])
          .where('a.package', 'in', part);
        if ('exact' in ecosystem) {
          q = q.where('a.ecosystem', '=', ecosystem.exact);
        } else {
          const { prefix } = ecosystem;
          // The range lets the (ecosystem, package) index find the rows; substr keeps it exact.
          q = q.where(sql<boolean>`substr(${sql.ref('a.ecosystem')}, 1, ${sql.lit(prefix.length)}) = ${prefix}`);
          const end = prefixEnd(prefix);
          if (end !== undefined) q = q.where('a.ecosystem', '>=', prefix).where('a.ecosystem', '<', end);
        }
        const rows = await q.orderBy('a.package').orderBy('a.vuln_id').orderBy('a.source').orderBy('a.ecosystem').orderBy('a.id').execute();
        out.push(...rows.map(toAffected));
      }
      return out;
    });
    return value;
  }

  /**
   * Runs a read of `statements` statements so that it sees one version of the database: each
   * statement alone reads one snapshot, but an activation may commit between two of them, in
   * which case the read is made again.
   */
  private async consistent<T>(statements: number, read: () => Promise<T>): Promise<{ version: number; value: T }> {
    for (let i = 0; ; i++) {
      const before = await this.version();
      const value = await read();
      if (statements <= 1 && i === 0) return { version: before, value };
      const after = await this.version();
      if (after === before) return { version: after, value };
      if (i + 1 >= CONSISTENT_READ_TRIES) throw new Error(`the vulnerability database changed during ${CONSISTENT_READ_TRIES} reads in a row; try again`);
    }
  }

  private async version(): Promise<number> {
    const r = await this.db.selectFrom('vuln_meta').select('version').where('id', '=', 1).executeTakeFirst();
    return r === undefined ? 0 : Number(r.version);
  }

  private async requireImporting(db: Db, generation: number): Promise<void> {
    const gen = await withLock(db.selectFrom('vuln_generations').select('state').where('generation', '=', generation), this.dialect, 'share').executeTakeFirst();
    if (gen?.state !== 'importing') throw new Error(`vulnerability database import ${generation} is not in progress: it is ${gen ? gen.state : 'gone (aborted or swept)'}`);
  }

  /**
   * Deletes a finished (activated or aborted) generation's rows of every source not active at it,
   * in windows, and the generation's own row once no source is. Resolves the rows deleted.
   */
  private async clean(generation: number): Promise<number> {
    const gen = await this.db.selectFrom('vuln_generations').select('state').where('generation', '=', generation).executeTakeFirst();
    if (gen?.state === 'importing') return 0;
    const active = new Set((await this.db.selectFrom('vuln_sources').select('name').where('generation', '=', generation).execute()).map((r) => r.name));
    const present = await this.db
      .selectFrom('vuln_records')
      .select('source')
      .distinct()
      .where('generation', '=', generation)
      .union(this.db.selectFrom('vuln_affected').select('source').distinct().where('generation', '=', generation))
      .execute();
    const window = scanWindow(this.dialect);
    const pace = pacer();
    let deleted = 0;
    for (const { source } of present) {
      if (active.has(source)) continue;
      for (;;) {
        const res = await this.db
          .deleteFrom('vuln_affected')
          .where('id', 'in', (eb) => eb.selectFrom('vuln_affected').select('id').where('generation', '=', generation).where('source', '=', source).limit(window))
          .executeTakeFirst();
        const n = Number(res.numDeletedRows);
        deleted += n;
        await pace();
        if (n < window) break;
      }
      for (;;) {
        const res = await this.db
          .deleteFrom('vuln_records')
          .where('generation', '=', generation)
          .where('source', '=', source)
          .where('id', 'in', (eb) => eb.selectFrom('vuln_records').select('id').where('generation', '=', generation).where('source', '=', source).limit(window))
          .executeTakeFirst();
        const n = Number(res.numDeletedRows);
        deleted += n;
        await pace();
        if (n < window) break;
      }
    }
    if (active.size === 0) {
      // Only a finished generation's row goes: an import that began meanwhile has another number.
      await this.db.deleteFrom('vuln_generations').where('generation', '=', generation).where('state', '<>', 'importing').execute();
    }
    return deleted;
  }
}
