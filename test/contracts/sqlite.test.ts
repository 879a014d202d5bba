import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { openSqliteMetaStore } from '../../src/store/meta/sqlite/sqlite-meta-store.ts';
import type { MetaStore } from '../../src/store/meta/meta-store.ts';
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
import { legacySqlite } from './audit-legacy.ts';

async function open(): Promise<{ store: MetaStore; cleanup(): Promise<void> }> {
  const dir = await mkdtemp(path.join(tmpdir(), 'berth-sqlite-contract-'));
  const store = await openSqliteMetaStore(path.join(dir, 'metadata.db'));
  return {
    store,
    cleanup: async () => {
      await store.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

metaStoreContract('sqlite', open);

identityStoreContract('sqlite', async () => {
  const { store, cleanup } = await open();
  return { meta: store, cleanup };
});

loginStoreContract('sqlite', open);

eventStoreContract('sqlite', open);

scanStoreContract('sqlite', open);

replicationStoreContract('sqlite', open);

cacheStoreContract('sqlite', open);

secretStoreContract('sqlite', open);

auditStoreContract('sqlite', open, legacySqlite);

listingStoreContract('sqlite', open);

vulnDbStoreContract('sqlite', async () => {
  const { store, cleanup } = await open();
  return { vulndb: store.vulndb, cleanup };
});
