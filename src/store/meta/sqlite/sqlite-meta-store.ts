import { closeSync, existsSync, mkdirSync, openSync } from 'node:fs';
import path from 'node:path';
import { DatabaseSync, type SQLInputValue, type StatementSync } from 'node:sqlite';
import { Kysely, SqliteDialect, type SqliteDatabase, type SqliteStatement } from 'kysely';
import type { MetaStore } from '../meta-store.ts';
import { KyselyMetaStore } from '../sql/kysely-meta-store.ts';
import type { Schema } from '../sql/schema.ts';

/**
 * Adapts node:sqlite (built into Node, no native addon to download) to the better-sqlite3-shaped
 * interface Kysely's SQLite dialect expects. Prepared statements are cached by SQL text: Kysely
 * compiles the same text for the same query shape, so the hot queries are prepared once.
 */
class NodeSqliteDatabase implements SqliteDatabase {
  private readonly statements = new Map<string, SqliteStatement>();
  readonly db: DatabaseSync;

  constructor(db: DatabaseSync) {
    this.db = db;
  }

  close(): void {
    this.statements.clear();
    this.db.close();
  }

  prepare(sqlText: string): SqliteStatement {
    // Kysely opens transactions with a deferred BEGIN. Ours all write, and a deferred transaction
    // that reads first cannot wait for another process's write lock when it then writes (SQLite
    // answers "database is locked" at once, without the busy timeout, to avoid a deadlock).
    // BEGIN IMMEDIATE takes the write lock up front, waiting up to busy_timeout for it, so
    // several processes on one file (nodes sharing it, the berth CLI beside the server) queue.
    const text = /^begin$/i.test(sqlText.trim()) ? 'begin immediate' : sqlText;
    let stmt = this.statements.get(text);
    if (!stmt) {
      const s: StatementSync = this.db.prepare(text);
      const reader = s.columns().length > 0;
      stmt = {
        reader,
        all: (params) => s.all(...(params as SQLInputValue[])),
        run: (params) => s.run(...(params as SQLInputValue[])),
        iterate: (params) => s.iterate(...(params as SQLInputValue[])),
      };
      if (this.statements.size > 500) this.statements.clear();
      this.statements.set(text, stmt);
    }
    return stmt;
  }
}

/**
 * The embedded metadata store: one SQLite file in WAL mode. synchronous=FULL makes every commit
 * durable before the client is told it succeeded (a manifest or tag acknowledged is never lost,
 * even on power failure); busy_timeout lets a second process (the `berth` CLI) wait its turn.
 */
export async function openSqliteMetaStore(file: string): Promise<MetaStore> {
  if (file !== ':memory:') {
    mkdirSync(path.dirname(file), { recursive: true });
    // Created for its owner only: it holds sealed access-key secrets, policies and the audit
    // trail. SQLite gives the -wal and -shm files the database file's mode.
    if (!existsSync(file)) closeSync(openSync(file, 'a', 0o600));
  }
  const raw = new DatabaseSync(file);
  raw.exec('PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON; PRAGMA busy_timeout = 5000;');
  const db = new Kysely<Schema>({ dialect: new SqliteDialect({ database: new NodeSqliteDatabase(raw) }) });
  await KyselyMetaStore.migrate(db, 'sqlite');
  return new KyselyMetaStore(db, { dialect: 'sqlite' });
}
