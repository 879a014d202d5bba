import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { FsBlobStore } from '../../src/store/blob/fs/fs-blob-store.ts';
import { blobStoreContract } from './blob-store.contract.ts';

blobStoreContract('fs', async () => {
  const dir = await mkdtemp(path.join(tmpdir(), 'berth-fs-contract-'));
  const store = await FsBlobStore.open(dir);
  return {
    store,
    residue: async () => readdir(path.join(dir, 'uploads')),
    cleanup: async () => {
      await store.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
});
