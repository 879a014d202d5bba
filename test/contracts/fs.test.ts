import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { FsBlobStore } from '../../src/store/blob/fs/fs-blob-store.ts';
import { blobStoreContract } from './blob-store.contract.ts';

const BLOB_NAME = { sha256: /^[a-f0-9]{64}$/, sha512: /^[a-f0-9]{128}$/ } as const;

/**
 * Everything under the root that is not a committed blob where docs/blob-layout.md puts it:
 * upload files, and any stray or temporary file beside the blobs.
 */
async function listResidue(root: string): Promise<string[]> {
  const residue: string[] = [];
  for (const entry of await readdir(root, { withFileTypes: true })) {
    if (!entry.isDirectory() || (entry.name !== 'blobs' && entry.name !== 'uploads')) residue.push(entry.name);
  }
  for (const name of await readdir(path.join(root, 'uploads'))) residue.push(`uploads/${name}`);
  for (const entry of await readdir(path.join(root, 'blobs'), { withFileTypes: true, recursive: true })) {
    const rel = path.relative(root, path.join(entry.parentPath, entry.name));
    const [, algorithm, prefix, name, ...deeper] = rel.split(path.sep);
    const pattern = algorithm === 'sha256' || algorithm === 'sha512' ? BLOB_NAME[algorithm] : undefined;
    const isLayout =
      pattern !== undefined &&
      deeper.length === 0 &&
      (name === undefined
        ? entry.isDirectory() && (prefix === undefined || /^[a-f0-9]{2}$/.test(prefix))
        : entry.isFile() && pattern.test(name) && name.startsWith(prefix ?? ''));
    if (!isLayout) residue.push(rel);
  }
  return residue.sort();
}

blobStoreContract('fs', async () => {
  const root = await mkdtemp(path.join(tmpdir(), 'berth-fs-contract-'));
  const store = await FsBlobStore.open(root);
  return {
    store,
    listResidue: () => listResidue(root),
    cleanup: async () => {
      await store.close();
      await rm(root, { recursive: true, force: true });
    },
  };
});
