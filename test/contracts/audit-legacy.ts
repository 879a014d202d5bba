import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { DatabaseSync, type SQLInputValue } from 'node:sqlite';
import { Kysely, Migrator, PostgresDialect, SqliteDialect, type SqliteDatabase } from 'kysely';
import { Pool } from 'pg';
import type { MetaStore } from '../../src/store/meta/meta-store.ts';
import { migrationProvider } from '../../src/store/meta/migrations/index.ts';
import { openPostgresMetaStore } from '../../src/store/meta/postgres/postgres-meta-store.ts';
import { openSqliteMetaStore } from '../../src/store/meta/sqlite/sqlite-meta-store.ts';
import type { TestPostgres } from '../support/postgres.ts';
import type { LegacyAuditHarness } from './audit-store.contract.ts';

/** Databases that no migration has touched yet, for the test of a migration over existing records (audit-store.contract.ts). */

async function migrateTo(db: Kysely<any>, dialect: 'sqlite' | 'postgres', name: string, migrationTableSchema?: string): Promise<void> {
  const { error } = await new Migrator({ db, provider: migrationProvider(dialect), ...(migrationTableSchema ? { migrationTableSchema } : {}) }).migrateTo(name);
  if (error) throw error;
}

/** A SQLite file in a fresh temp directory, through node:sqlite as the driver opens it. */
export async function legacySqlite(): Promise<LegacyAuditHarness> {
  const dir = await mkdtemp(path.join(tmpdir(), 'berth-sqlite-legacy-'));
  const file = path.join(dir, 'metadata.db');
  const raw = new DatabaseSync(file);
  const database: SqliteDatabase = {
    close: () => raw.close(),
    prepare: (text) => {
      const s = raw.prepare(text);
      return {
        reader: s.columns().length > 0,
        all: (params) => s.all(...(params as SQLInputValue[])),
        run: (params) => s.run(...(params as SQLInputValue[])),
        iterate: (params) => s.iterate(...(params as SQLInputValue[])),
      };
    },
  };
  const db = new Kysely<any>({ dialect: new SqliteDialect({ database }) });
  let store: MetaStore | undefined;
  let closed = false;
  return {
    db,
    migrateTo: (name) => migrateTo(db, 'sqlite', name),
    async openStore() {
      closed = true;
      await db.destroy();
      store = await openSqliteMetaStore(file);
      return store;
    },
    async cleanup() {
      if (!closed) await db.destroy();
      await store?.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/** A fresh PostgreSQL database, dropped by cleanup. */
export async function legacyPostgres(pg: TestPostgres): Promise<LegacyAuditHarness> {
  const name = await pg.createDatabase();
  const url = pg.url(name);
  const db = new Kysely<any>({ dialect: new PostgresDialect({ pool: new Pool({ connectionString: url, max: 1 }) }) });
  let store: MetaStore | undefined;
  let closed = false;
  return {
    db,
    migrateTo: (migration) => migrateTo(db, 'postgres', migration, 'public'),
    async openStore() {
      closed = true;
      await db.destroy();
      store = await openPostgresMetaStore(url, { poolSize: 2 });
      return store;
    },
    async cleanup() {
      if (!closed) await db.destroy();
      await store?.close();
      await pg.dropDatabase(name, { force: true });
    },
  };
}
