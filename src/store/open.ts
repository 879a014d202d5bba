import type { BlobStore } from './blob/blob-store.ts';
import { FsBlobStore } from './blob/fs/fs-blob-store.ts';
import type { MetaStore } from './meta/meta-store.ts';
import { openSqliteMetaStore } from './meta/sqlite/sqlite-meta-store.ts';

export class StoreConfigError extends Error {
  override name = 'StoreConfigError';
}

/** Drivers, keyed by URL scheme; all compiled in. */
const metaDrivers: Record<string, (rest: string) => Promise<MetaStore>> = {
  sqlite: (rest) => openSqliteMetaStore(rest),
};

const blobDrivers: Record<string, (rest: string) => Promise<BlobStore>> = {
  file: (rest) => FsBlobStore.open(rest),
};

function split(url: string, what: string, drivers: Record<string, unknown>): [string, string] {
  const i = url.indexOf(':');
  const scheme = i > 0 ? url.slice(0, i) : '';
  if (!(scheme in drivers)) {
    throw new StoreConfigError(`${what} ${JSON.stringify(url)}: unknown scheme ${JSON.stringify(scheme)}; expected one of ${Object.keys(drivers).map((s) => s + ':').join(', ')}`);
  }
  return [scheme, url.slice(i + 1).replace(/^\/\/(?=\/)/, '')];
}

export async function openMetaStore(url: string): Promise<MetaStore> {
  const [scheme, rest] = split(url, 'metadataUrl', metaDrivers);
  return metaDrivers[scheme]!(rest);
}

export async function openBlobStore(url: string): Promise<BlobStore> {
  const [scheme, rest] = split(url, 'blobUrl', blobDrivers);
  return blobDrivers[scheme]!(rest);
}
