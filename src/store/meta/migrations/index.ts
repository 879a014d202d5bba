import type { Kysely, Migration, MigrationProvider } from 'kysely';
import * as m0001 from './0001-initial.ts';
import * as m0002 from './0002-identity.ts';
import * as m0003 from './0003-ecr.ts';
import * as m0004 from './0004-jobs.ts';
import * as m0005 from './0005-postgres-byte-order.ts';
import * as m0006 from './0006-gc-and-lifecycle.ts';
import * as m0007 from './0007-covering-indexes.ts';
import * as m0008 from './0008-events.ts';
import * as m0009 from './0009-vulndb.ts';
import * as m0010 from './0010-scan.ts';
import * as m0011 from './0011-replication.ts';
import * as m0012 from './0012-secrets.ts';
import * as m0013 from './0013-pull-through-cache.ts';
import * as m0014 from './0014-login-profiles.ts';
import * as m0015 from './0015-audit-lookup.ts';
import * as m0016 from './0016-console-lists.ts';

type Dialect = 'sqlite' | 'postgres';
interface DialectMigration {
  up(db: Kysely<unknown>, dialect: Dialect): Promise<void>;
}

/** Every migration, in order. Names never change once released; new ones are appended. */
const all: Record<string, DialectMigration> = {
  '0001-initial': m0001,
  '0002-identity': m0002,
  '0003-ecr': m0003,
  '0004-jobs': m0004,
  '0005-postgres-byte-order': m0005,
  '0006-gc-and-lifecycle': m0006,
  '0007-covering-indexes': m0007,
  '0008-events': m0008,
  '0009-vulndb': m0009,
  '0010-scan': m0010,
  '0011-replication': m0011,
  '0012-secrets': m0012,
  '0013-pull-through-cache': m0013,
  '0014-login-profiles': m0014,
  '0015-audit-lookup': m0015,
  '0016-console-lists': m0016,
};

export function migrationProvider(dialect: Dialect): MigrationProvider {
  return {
    async getMigrations(): Promise<Record<string, Migration>> {
      return Object.fromEntries(Object.entries(all).map(([name, m]) => [name, { up: (db: Kysely<unknown>) => m.up(db, dialect) }]));
    },
  };
}
