import { test } from 'node:test';
import type { MetaStore } from '../../src/store/meta/meta-store.ts';

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
