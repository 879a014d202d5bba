import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { describe, test } from 'node:test';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import type { MetaStore } from '../../src/store/meta/meta-store.ts';
import { migrationProvider } from '../../src/store/meta/migrations/index.ts';
import { openPostgresMetaStore } from '../../src/store/meta/postgres/postgres-meta-store.ts';
import { EVENT_APPEND_LOCK_KEY } from '../../src/store/meta/sql/kysely-event-store.ts';
import { openMetaStore } from '../../src/store/open.ts';
import { usePostgres, type TestPostgres } from '../support/postgres.ts';
import { eventStoreContract } from './event-store.contract.ts';
import { identityStoreContract } from './identity-store.contract.ts';
import { loginStoreContract } from './login-store.contract.ts';
import { metaStoreContract } from './meta-store.contract.ts';
import { cacheStoreContract } from './cache-store.contract.ts';
import { replicationStoreContract } from './replication-store.contract.ts';
import { scanStoreContract } from './scan-store.contract.ts';
import { secretStoreContract } from './secret-store.contract.ts';
import { vulnDbStoreContract } from './vulndb-store.contract.ts';
import { auditStoreContract } from './audit-store.contract.ts';
import { listingStoreContract } from './listing-store.contract.ts';
import { legacyPostgres } from './audit-legacy.ts';

const postgres = usePostgres();

let shared: Promise<string> | undefined;
let nextSchema = 0;

/**
 * A store in a fresh schema of a database the file's tests share (cheaper than a database per
 * test: each test still migrates an empty schema). Cleanup closes the store, checks that no
 * connection of it is left (by its application_name), and drops the schema; the last test
 * checks that no schema is left.
 */
async function open(pg: TestPostgres): Promise<{ store: MetaStore; database: string; schema: string; cleanup(): Promise<void> }> {
  shared ??= pg.createDatabase();
  const database = await shared;
  const schema = `contract_${nextSchema++}`;
  await pg.query(`create schema ${schema} authorization berth`, [], database);
  const cleanup = async () => {
    await waitForNoConnections(pg, schema);
    await pg.query(`drop schema ${schema} cascade`, [], database);
  };
  let store: MetaStore;
  try {
    store = await openPostgresMetaStore(pg.url(database, { searchPath: schema, applicationName: schema }), { poolSize: 8 });
  } catch (err) {
    await cleanup();
    throw err;
  }
  return {
    store,
    database,
    schema,
    cleanup: async () => {
      await store.close();
      await cleanup();
    },
  };
}

/** Polls until no connection tagged `applicationName` is left; fails after 30 s (generous for a busy machine). */
async function waitForNoConnections(pg: TestPostgres, applicationName: string): Promise<void> {
  const deadline = Date.now() + 30_000;
  for (;;) {
    const [row] = await pg.query<{ n: string }>('select count(*) as n from pg_stat_activity where application_name = $1', [applicationName]);
    if (Number(row?.n) === 0) return;
    if (Date.now() > deadline) throw new Error(`the store left ${row?.n} connections open after close()`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

const moduleUrl = pathToFileURL(path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../src/store/meta/postgres/postgres-meta-store.ts')).href;

/**
 * Another Berth node starting: a process that loads the driver, says `ready`, waits for a line
 * on stdin, opens the store (running migrations), checks it and exits 0.
 */
function startNode(url: string): { child: ChildProcess; ready: Promise<void>; done: Promise<{ code: number | null; stdout: string; stderr: string }> } {
  const code = [
    `import { openPostgresMetaStore } from ${JSON.stringify(moduleUrl)};`,
    `process.stdout.write('ready\\n');`,
    `await new Promise((resolve) => process.stdin.once('data', resolve));`,
    `const store = await openPostgresMetaStore(process.env.BERTH_TEST_PG_URL, { poolSize: 2 });`,
    `await store.check();`,
    `await store.close();`,
    `process.stdout.write('opened\\n');`,
    `process.exit(0);`,
  ].join('\n');
  const child = spawn(process.execPath, ['--input-type=module', '-e', code], { env: { ...process.env, BERTH_TEST_PG_URL: url }, stdio: ['pipe', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  let onReady: () => void;
  const ready = new Promise<void>((resolve) => (onReady = resolve));
  child.stdout!.on('data', (d: Buffer) => {
    stdout += d.toString();
    if (stdout.includes('ready\n')) onReady();
  });
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  const done = new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => child.once('close', (code) => resolve({ code, stdout, stderr })));
  return { child, ready, done };
}

/** What the migrations made, in a form two databases can be compared by. */
async function schemaOf(pg: TestPostgres, database: string) {
  const columns = await pg.query(
    `select table_name, column_name, data_type, collation_name, is_nullable, column_default
       from information_schema.columns where table_schema = 'public' order by table_name, column_name`,
    [],
    database,
  );
  const indexes = await pg.query(`select tablename, indexname, indexdef from pg_indexes where schemaname = 'public' order by tablename, indexname`, [], database);
  const constraints = await pg.query(
    `select conrelid::regclass::text as table_name, conname, pg_get_constraintdef(oid) as def
       from pg_constraint where connamespace = 'public'::regnamespace order by 1, 2`,
    [],
    database,
  );
  return { columns, indexes, constraints };
}

if (postgres) {
  metaStoreContract('postgres', () => open(postgres()));

  identityStoreContract('postgres', async () => {
    const { store, cleanup } = await open(postgres());
    return { meta: store, cleanup };
  });

  loginStoreContract('postgres', () => open(postgres()));

  eventStoreContract('postgres', async () => {
    const pg = postgres();
    const { store, database, cleanup } = await open(pg);
    // A bigint advisory lock shows in pg_locks as its high and low 32 bits.
    const classid = Number(EVENT_APPEND_LOCK_KEY >> 32n);
    const objid = Number(EVENT_APPEND_LOCK_KEY & 0xffffffffn);
    const appendLockWaiters = async () => {
      const [row] = await pg.query<{ n: string }>(
        `select count(*) as n from pg_locks
          where locktype = 'advisory' and not granted and classid = $1 and objid = $2 and objsubid = 1
            and database = (select oid from pg_database where datname = current_database())`,
        [classid, objid],
        database,
      );
      return Number(row?.n);
    };
    return { store, cleanup, appendLockWaiters };
  });

  scanStoreContract('postgres', () => open(postgres()));

  replicationStoreContract('postgres', () => open(postgres()));

  cacheStoreContract('postgres', () => open(postgres()));

  secretStoreContract('postgres', () => open(postgres()));

  auditStoreContract('postgres', () => open(postgres()), () => legacyPostgres(postgres()));

  listingStoreContract('postgres', () => open(postgres()));

  vulnDbStoreContract('postgres', async () => {
    const { store, cleanup } = await open(postgres());
    return { vulndb: store.vulndb, cleanup };
  });

  describe('PostgreSQL driver', () => {
    test('nodes starting at once on an empty database: 4 pools here and 3 other processes all migrate it, once', async (t) => {
      const pg = postgres();
      const database = await pg.createDatabase();
      t.after(() => pg.dropDatabase(database, { force: true }));
      const url = pg.url(database);

      const nodes = Array.from({ length: 3 }, () => startNode(url));
      const timer = setTimeout(() => {
        for (const n of nodes) if (n.child.exitCode === null && n.child.pid) process.kill(n.child.pid, 'SIGKILL');
      }, 60_000);
      t.after(() => clearTimeout(timer));
      await Promise.all(nodes.map((n) => n.ready));

      // Go: the other processes and the pools here open the store at the same moment.
      for (const n of nodes) n.child.stdin!.end('go\n');
      const opened = await Promise.allSettled([1, 2, 3, 4].map((poolSize) => openPostgresMetaStore(url, { poolSize })));
      const stores = opened.flatMap((o) => (o.status === 'fulfilled' ? [o.value] : []));
      t.after(() => Promise.all(stores.map((s) => s.close())));
      assert.deepEqual(opened.filter((o) => o.status === 'rejected'), [], 'every store here opened');
      for (const [i, n] of nodes.entries()) {
        const { code, stdout, stderr } = await n.done;
        assert.equal(code, 0, `process ${i} exited 0\n${stderr}`);
        assert.match(stdout, /opened/, `process ${i} opened the store`);
      }

      const applied = await pg.query<{ name: string }>('select name from kysely_migration order by name', [], database);
      const expected = Object.keys(await migrationProvider('postgres').getMigrations()).sort();
      assert.deepEqual(applied.map((r) => r.name), expected, 'each migration applied exactly once');

      // The schema is exactly the one a single node makes alone.
      const reference = await pg.createDatabase();
      t.after(() => pg.dropDatabase(reference, { force: true }));
      await (await openPostgresMetaStore(pg.url(reference), { poolSize: 1 })).close();
      assert.deepEqual(await schemaOf(pg, database), await schemaOf(pg, reference));

      // And every store works on it: of concurrent creations of one repository, one creates it.
      const results = await Promise.all(stores.map((s, i) => s.createRepository('111122223333', 'race/app', 1_700_000_000_000 + i)));
      assert.equal(results.filter((r) => r.created).length, 1);
    });

    test('opening an already migrated database changes nothing', async (t) => {
      const pg = postgres();
      const database = await pg.createDatabase();
      t.after(() => pg.dropDatabase(database, { force: true }));
      const first = await openPostgresMetaStore(pg.url(database));
      await first.createRepository('111122223333', 'kept', 1_700_000_000_000);
      await first.close();
      const before = await pg.query('select name, timestamp from kysely_migration order by name', [], database);
      const again = await openPostgresMetaStore(pg.url(database));
      t.after(() => again.close());
      assert.deepEqual(await pg.query('select name, timestamp from kysely_migration order by name', [], database), before);
      assert.ok(await again.getRepository('111122223333', 'kept'));
    });

    test('every text column compares as bytes (COLLATE "C"), whatever the database default', async (t) => {
      const pg = postgres();
      const { database, schema, cleanup } = await open(pg);
      t.after(cleanup);
      const loose = await pg.query<{ table_name: string; column_name: string; collation_name: string | null }>(
        `select table_name, column_name, collation_name from information_schema.columns
          where table_schema = $1 and data_type in ('text', 'character varying') and table_name not like 'kysely_%'
            and collation_name is distinct from 'C'`,
        [schema],
        database,
      );
      assert.deepEqual(loose, [], 'text columns added by a migration on PostgreSQL need collate "C"');
    });

    test('Kysely’s bookkeeping stays in the store’s schema: a second schema of one database migrates on its own', async (t) => {
      const pg = postgres();
      const a = await open(pg);
      t.after(a.cleanup);
      const b = await open(pg);
      t.after(b.cleanup);
      assert.equal(a.database, b.database);
      await a.store.createRepository('111122223333', 'only/in-a', 1_700_000_000_000);
      assert.deepEqual(await b.store.listRepositories('111122223333', { limit: 10 }), []);
      for (const s of [a.schema, b.schema]) {
        const tables = await pg.query<{ table_name: string }>(`select table_name from information_schema.tables where table_schema = $1 and table_name like 'kysely_%' order by 1`, [s], a.database);
        assert.deepEqual(tables.map((r) => r.table_name), ['kysely_migration', 'kysely_migration_lock'], s);
      }
    });

    test('metadataUrl postgres:// and postgresql:// open the PostgreSQL store', async (t) => {
      const pg = postgres();
      const database = await pg.createDatabase({ collation: 'c' });
      t.after(() => pg.dropDatabase(database));
      for (const url of [pg.url(database), pg.url(database).replace(/^postgres:/, 'postgresql:')]) {
        const store = await openMetaStore(url, { poolSize: 2 });
        await store.check();
        await store.close();
      }
    });

    test('a database that cannot be reached rejects with the reason', async () => {
      const pg = postgres();
      await assert.rejects(openPostgresMetaStore(pg.url('no_such_database'), { poolSize: 1 }), /no_such_database/);
    });

    test('the tests left no schema or database behind', async () => {
      const pg = postgres();
      if (shared) {
        const database = await shared;
        const left = await pg.query<{ nspname: string }>(`select nspname from pg_namespace where nspname like 'contract_%'`, [], database);
        assert.deepEqual(left, [], 'every test dropped its schema');
        await pg.dropDatabase(database);
      }
      // The tests before this one drop their databases in t.after, which has run by now.
      assert.deepEqual(await pg.query(`select datname from pg_database where datname like 'berth_test_%'`), []);
    });
  });
}
