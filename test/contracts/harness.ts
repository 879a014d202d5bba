import { test } from 'node:test';
import { digestOf } from '../../src/digest/digest.ts';
import type { ManifestRecord, MetaStore } from '../../src/store/meta/meta-store.ts';

/** The time the contract suites write with (ms since the epoch). */
export const T0 = 1_700_000_000_000;
export const MANIFEST_MT = 'application/vnd.oci.image.manifest.v1+json';

let manifests = 0;
/** A manifest record over `payload` (some unique JSON by default), with every optional field null. */
export function manifest(overrides: Partial<ManifestRecord> = {}): ManifestRecord {
  const payload = overrides.payload ?? Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: MANIFEST_MT, n: manifests++, r: Math.random() }));
  return {
    digest: digestOf(payload),
    mediaType: MANIFEST_MT,
    sizeBytes: payload.byteLength,
    artifactType: null,
    subjectDigest: null,
    annotations: null,
    createdAtMs: T0,
    ...overrides,
    payload,
  };
}

export interface MetaStoreHarness {
  store: MetaStore;
  /** Closes the store and removes everything it kept (temp file, database schema). Runs once, after each test. */
  cleanup(): Promise<void>;
}

/** A `test()` that opens a fresh store for each test and cleans it up afterwards, whatever happens. */
export function storeTest(open: () => Promise<MetaStoreHarness>): (title: string, fn: (store: MetaStore) => Promise<void>) => void {
  return (title, fn) =>
    test(title, async () => {
      const harness = await open();
      try {
        await fn(harness.store);
      } finally {
        await harness.cleanup();
      }
    });
}
