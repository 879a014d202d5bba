import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { Pool } from 'pg';
import { run } from './tools.ts';

/**
 * A real PostgreSQL for the tests of one file: started by scripts/services/postgres-start.sh in
 * `before` (on a free port on 127.0.0.1, its files under a fresh temp directory), stopped by
 * the PID in its postmaster.pid in `after`, and its directory removed. Tests get one fresh
 * database each from `createDatabase()`.
 *
 * Test databases sort text by an ICU locale (en-US) unless asked otherwise, as many production
 * databases do; the metadata store must still give byte order (migration 0005).
 */

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const startScript = path.join(root, 'scripts/services/postgres-start.sh');
const stopScript = path.join(root, 'scripts/services/postgres-stop.sh');
const PASSWORD = 'berth-test';
const APP_USER = 'berth';

export interface TestPostgres {
  /** The server's PID (the postmaster). */
  pid: number;
  port: number;
  /**
   * A URL for the application user (`berth`, owner of the databases it creates, not a
   * superuser); `searchPath` puts the store's tables in that schema, `applicationName` tags its
   * connections (pg_stat_activity.application_name).
   */
  url(database: string, options?: { searchPath?: string; applicationName?: string }): string;
  /** Creates an empty database owned by the application user, with a fresh name; resolves the name. */
  createDatabase(options?: { collation?: 'icu' | 'c' }): Promise<string>;
  /**
   * Drops a database. Without `force`, fails if anything is still connected to it (after
   * PostgreSQL's own 5 s wait): that is how a test sees that a store left connections open.
   */
  dropDatabase(name: string, options?: { force?: boolean }): Promise<void>;
  /** Runs SQL as the superuser, in `database` (default `postgres`), over a pool kept per database. */
  query<R extends Record<string, unknown> = Record<string, unknown>>(text: string, params?: unknown[], database?: string): Promise<R[]>;
}

/** The binaries of the newest PostgreSQL installed, or of $PGBIN; undefined when there is none. */
export function postgresBinDir(): string | undefined {
  const candidates = process.env['PGBIN']
    ? [process.env['PGBIN']]
    : (() => {
        try {
          return readdirSync('/usr/lib/postgresql')
            .filter((v) => /^\d+$/.test(v))
            .sort((a, b) => Number(b) - Number(a))
            .map((v) => `/usr/lib/postgresql/${v}/bin`);
        } catch {
          return [];
        }
      })();
  return candidates.find((d) => existsSync(path.join(d, 'initdb')) && existsSync(path.join(d, 'pg_ctl')));
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

/** Polls until `pid` is gone (or a zombie), up to `timeoutMs`; resolves whether it went. */
async function exited(pid: number, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      process.kill(pid, 0);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ESRCH') return true;
      throw err;
    }
    let stat = '';
    try {
      stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    } catch {
      // gone meanwhile, or no /proc: the next kill() tells
    }
    if (/^\d+ \(.*\) Z/.test(stat)) return true;
    if (Date.now() > deadline) return false;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/**
 * Registers `before` and `after` hooks that run one PostgreSQL for the calling test file, and
 * returns a getter for it (valid once `before` has run). When PostgreSQL is not installed the
 * file's PostgreSQL tests are skipped with one skipped test saying so, and this returns
 * undefined; under CI (CI=true), where .ci/run installs it, that test fails instead.
 */
export function usePostgres(): (() => TestPostgres) | undefined {
  const bin = postgresBinDir();
  if (!bin) {
    const why = 'not installed: postgresql (apt-get install postgresql)';
    test('PostgreSQL tests', (t) => {
      if (process.env['CI']) throw new Error(why);
      t.skip(why);
    });
    return undefined;
  }

  let server: TestPostgres | undefined;
  /** Superuser pools, by database. */
  const pools = new Map<string, Pool>();
  let dir: string | undefined;
  let stopped = false;
  let nextDb = 0;

  // Should the process end without `after` (a crash), take the server down with it.
  const onExit = () => {
    if (stopped || !server) return;
    try {
      process.kill(server.pid, 'SIGQUIT');
    } catch {
      // already gone
    }
    if (dir) rmSync(dir, { recursive: true, force: true });
  };

  before(async () => {
    let lastError: unknown;
    // A port found free can be taken before the server binds it; try another then.
    for (let attempt = 0; attempt < 3 && !server; attempt++) {
      dir = path.join(tmpdir(), `berth-pg-${randomBytes(6).toString('hex')}`);
      const port = await freePort();
      try {
        const out = await run('bash', [startScript, dir], {
          env: { ...process.env, PGBIN: bin, PG_PORT: String(port), PG_USER: APP_USER, PG_DB: APP_USER, PG_PASSWORD: PASSWORD },
          timeoutMs: 90_000,
        });
        const vars = Object.fromEntries(out.stdout.split('\n').filter((l) => l.includes('=')).map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]));
        const pid = Number(vars['PGPID']);
        const url = (user: string, database: string) => `postgres://${user}:${PASSWORD}@127.0.0.1:${port}/${database}`;
        const poolFor = (database: string): Pool => {
          let pool = pools.get(database);
          if (!pool) {
            pool = new Pool({ connectionString: url('postgres', database), max: 2 });
            pool.on('error', () => {});
            pools.set(database, pool);
          }
          return pool;
        };
        const query = async <R extends Record<string, unknown>>(text: string, params: unknown[] = [], database = 'postgres'): Promise<R[]> =>
          (await poolFor(database).query<R>(text, params)).rows;
        const version = Number((await query<{ v: string }>(`select current_setting('server_version_num') as v`))[0]?.v);
        // ICU as a database's default collation arrived in PostgreSQL 15.
        const icu = version >= 150000 && (await query(`select 1 from pg_collation where collprovider = 'i' limit 1`)).length === 1;
        server = {
          pid,
          port,
          url(database, options = {}) {
            const params = new URLSearchParams();
            if (options.searchPath) params.set('options', `-c search_path=${options.searchPath}`);
            if (options.applicationName) params.set('application_name', options.applicationName);
            const q = params.toString();
            return url(APP_USER, database) + (q ? `?${q}` : '');
          },
          async createDatabase(options = {}) {
            const name = `berth_test_${process.pid}_${nextDb++}`;
            const locale = (options.collation ?? 'icu') === 'icu' && icu ? ` locale_provider icu icu_locale 'en-US'` : '';
            await query(`create database ${name} owner ${APP_USER} template template0${locale}`);
            return name;
          },
          async dropDatabase(name, options = {}) {
            await pools.get(name)?.end();
            pools.delete(name);
            await query(`drop database ${name}${options.force ? ' with (force)' : ''}`);
          },
          query,
        };
        process.once('exit', onExit);
      } catch (err) {
        lastError = err;
        await run('bash', [stopScript, dir, '--purge'], { env: { ...process.env, PGBIN: bin }, allowFailure: true });
      }
    }
    if (!server) throw lastError;
  });

  after(async () => {
    await Promise.all([...pools.values()].map((p) => p.end()));
    if (dir) {
      await run('bash', [stopScript, dir, '--purge'], { env: { ...process.env, PGBIN: bin }, timeoutMs: 60_000 });
    }
    // pg_ctl returns once the pid file is gone, a moment before the postmaster has exited.
    if (server && !(await exited(server.pid, 10_000))) throw new Error(`PostgreSQL (pid ${server.pid}) still runs after postgres-stop.sh`);
    stopped = true;
    process.removeListener('exit', onExit);
  });

  return () => {
    if (!server) throw new Error('PostgreSQL is not running (usePostgres() hooks run before the tests)');
    return server;
  };
}
