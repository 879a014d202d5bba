import type { BlobStore } from './blob/blob-store.ts';
import { FsBlobStore } from './blob/fs/fs-blob-store.ts';
import { parseS3Location, S3BlobStore, type S3Settings } from './blob/s3/s3-blob-store.ts';
import type { MetaStore } from './meta/meta-store.ts';
import { openPostgresMetaStore } from './meta/postgres/postgres-meta-store.ts';
import { openSqliteMetaStore } from './meta/sqlite/sqlite-meta-store.ts';

export class StoreConfigError extends Error {
  override name = 'StoreConfigError';
}

export interface MetaStoreOptions {
  /** Connections per node, for drivers that pool them (PostgreSQL). */
  poolSize?: number;
}

/** Opens PostgreSQL; a server that cannot be reached or refuses the login is a configuration error. */
async function openPostgres(url: string, options: MetaStoreOptions): Promise<MetaStore> {
  try {
    return await openPostgresMetaStore(url, options);
  } catch (err) {
    const e = err as NodeJS.ErrnoException & { severity?: string };
    if (e.code === 'ECONNREFUSED' || e.code === 'ENOTFOUND' || e.code === 'ETIMEDOUT' || e.code === '28P01' || e.code === '28000' || e.code === '3D000') {
      throw new StoreConfigError(`metadataUrl ${redactUrl(url)}: ${e.message}`, { cause: err });
    }
    throw err;
  }
}

/** The URL without its password, for messages and logs. */
export function redactUrl(url: string): string {
  return url.replace(/^([a-z]+:\/\/[^:/@]*:)[^@]*@/i, '$1***@');
}

/** Drivers, keyed by URL scheme; all compiled in. PostgreSQL takes the whole URL, as libpq does. */
const metaDrivers: Record<string, (rest: string, url: string, options: MetaStoreOptions) => Promise<MetaStore>> = {
  sqlite: (rest) => openSqliteMetaStore(rest),
  postgres: (_rest, url, options) => openPostgres(url, options),
  postgresql: (_rest, url, options) => openPostgres(url, options),
};

export interface BlobStoreOptions {
  /** How to reach the object store, for `s3:` URLs. */
  s3?: S3Settings;
}

const blobDrivers: Record<string, (rest: string, options: BlobStoreOptions) => Promise<BlobStore>> = {
  file: (rest) => FsBlobStore.open(rest),
  s3: async (rest, options) => {
    try {
      parseS3Location(rest);
    } catch (err) {
      throw new StoreConfigError(`blobUrl s3:${rest}: ${(err as Error).message}`);
    }
    return S3BlobStore.open(rest, options.s3 ?? { region: 'us-east-1', forcePathStyle: false }).catch((err: unknown) => {
      throw new StoreConfigError(`blobUrl s3:${rest}: ${(err as Error).message}`, { cause: err });
    });
  },
};

function split(url: string, what: string, drivers: Record<string, unknown>): [string, string] {
  const i = url.indexOf(':');
  const scheme = i > 0 ? url.slice(0, i) : '';
  if (!(scheme in drivers)) {
    throw new StoreConfigError(`${what} ${JSON.stringify(url)}: unknown scheme ${JSON.stringify(scheme)}; expected one of ${Object.keys(drivers).map((s) => s + ':').join(', ')}`);
  }
  return [scheme, url.slice(i + 1).replace(/^\/\/(?=\/)/, '')];
}

export async function openMetaStore(url: string, options: MetaStoreOptions = {}): Promise<MetaStore> {
  const [scheme, rest] = split(url, 'metadataUrl', metaDrivers);
  return metaDrivers[scheme]!(rest, url, options);
}

export async function openBlobStore(url: string, options: BlobStoreOptions = {}): Promise<BlobStore> {
  const [scheme, rest] = split(url, 'blobUrl', blobDrivers);
  return blobDrivers[scheme]!(rest, options);
}
