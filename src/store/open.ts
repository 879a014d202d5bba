import type { BlobStore } from './blob/blob-store.ts';
import { parseS3Location, type S3Settings } from './blob/s3/location.ts';
import type { MetaStore } from './meta/meta-store.ts';

// Every driver is compiled in, but a driver's module (and the client library under it: the AWS
// SDK, pg) is imported only when the configuration names it. An embedded deployment thus never
// holds the S3 client or the PostgreSQL driver in memory: 3.5 MiB less live V8 heap and about
// 5 MiB less RSS at idle (docs/benchmarks.md, "The push path and memory").

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
    const { openPostgresMetaStore } = await import('./meta/postgres/postgres-meta-store.ts');
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
  sqlite: async (rest) => (await import('./meta/sqlite/sqlite-meta-store.ts')).openSqliteMetaStore(rest),
  postgres: (_rest, url, options) => openPostgres(url, options),
  postgresql: (_rest, url, options) => openPostgres(url, options),
};

export interface BlobStoreOptions {
  /** How to reach the object store, for `s3:` URLs. */
  s3?: S3Settings;
  /** For `file:` URLs: see FsBlobStoreOptions. */
  collectYoungGarbage?: (() => void) | undefined;
}

const blobDrivers: Record<string, (rest: string, options: BlobStoreOptions) => Promise<BlobStore>> = {
  file: async (rest, options) => (await import('./blob/fs/fs-blob-store.ts')).FsBlobStore.open(rest, { collectYoungGarbage: options.collectYoungGarbage }),
  s3: async (rest, options) => {
    try {
      parseS3Location(rest);
    } catch (err) {
      throw new StoreConfigError(`blobUrl s3:${rest}: ${(err as Error).message}`);
    }
    const { S3BlobStore } = await import('./blob/s3/s3-blob-store.ts');
    return S3BlobStore.open(rest, options.s3 ?? { region: 'us-east-1', forcePathStyle: false }).catch((err: unknown) => {
      throw new StoreConfigError(`blobUrl s3:${rest}: ${(err as Error).message}`, { cause: err });
    });
  },
};

function split(url: string, what: string, drivers: Record<string, unknown>): [string, string] {
  const i = url.indexOf(':');
  const scheme = i > 0 ? url.slice(0, i) : '';
  if (!Object.hasOwn(drivers, scheme)) {
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
