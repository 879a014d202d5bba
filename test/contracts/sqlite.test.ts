import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { openSqliteMetaStore } from '../../src/store/meta/sqlite/sqlite-meta-store.ts';
import { metaStoreContract } from './meta-store.contract.ts';

metaStoreContract('sqlite', async () => {
  const dir = await mkdtemp(path.join(tmpdir(), 'berth-sqlite-contract-'));
  const store = await openSqliteMetaStore(path.join(dir, 'metadata.db'));
  return {
    store,
    cleanup: async () => {
      await store.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
});
