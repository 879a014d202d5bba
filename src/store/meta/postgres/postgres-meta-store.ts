import { Kysely, PostgresDialect, sql } from 'kysely';
import { Pool } from 'pg';
import type { MetaStore } from '../meta-store.ts';
import { KyselyMetaStore } from '../sql/kysely-meta-store.ts';
import type { Schema } from '../sql/schema.ts';

export interface PostgresMetaStoreOptions {
  /** Connections this node keeps to the database at most. Default 10. */
  poolSize?: number;
}

/**
 * The metadata store for several nodes: one PostgreSQL database that every node shares, over
 * `pg` (pure JavaScript; pg-native is never loaded). The queries are KyselyMetaStore's, the
 * same as on SQLite (ADR 0002). `url` is a libpq-style URL
 * (`postgres://user:password@host:5432/berth`); its query may set `sslmode`, `application_name`
 * or `options` (`options=-c search_path=berth` keeps Berth's tables in their own schema).
 *
 * `pg` returns bigint columns and counts as strings, so that values past 2^53 stay exact; the
 * stores convert every numeric column they read with Number() (times and sizes stay far below
 * 2^53), and the contract suite checks it with values past 2^32. `bytea` comes back as Buffer.
 *
 * Any number of nodes may open the same empty database at once: Kysely's Migrator takes a
 * session-level `pg_advisory_lock` on one connection, reads which migrations are applied only
 * once it holds it, and runs the pending ones in one transaction; the other nodes wait, then
 * find nothing left to do. What it does before the lock (create its two bookkeeping tables and
 * the lock row if missing) tolerates a concurrent creator. test/contracts/postgres.test.ts
 * starts several nodes at once on an empty database.
 */
export async function openPostgresMetaStore(url: string, options: PostgresMetaStoreOptions = {}): Promise<MetaStore> {
  const pool = new Pool({ connectionString: url, max: options.poolSize ?? 10 });
  // An idle connection that the server drops (restart, failover, idle timeout) is removed from
  // the pool and replaced on next use; without a listener its 'error' event would end the process.
  pool.on('error', () => {});
  const db = new Kysely<Schema>({ dialect: new PostgresDialect({ pool }) });
  try {
    // Tables go to the first schema of the search_path; Kysely's bookkeeping goes with them.
    const { rows } = await sql<{ schema: string | null }>`select current_schema() as schema`.execute(db);
    const schema = rows[0]?.schema;
    if (!schema) throw new Error('metadata store: no schema of the search_path exists to create tables in');
    await KyselyMetaStore.migrate(db, 'postgres', { migrationTableSchema: schema });
  } catch (err) {
    await db.destroy();
    throw err;
  }
  return new KyselyMetaStore(db, { dialect: 'postgres' });
}
