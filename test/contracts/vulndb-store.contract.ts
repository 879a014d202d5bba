import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { VulnAffectedRow, VulnDbStore, VulnRecordRow, VulnSourceRow } from '../../src/store/meta/vulndb-store.ts';
import { T0 } from './harness.ts';

export interface VulnDbStoreHarness {
  vulndb: VulnDbStore;
  /** Closes the store and removes everything it kept. Runs once, after each test. */
  cleanup(): Promise<void>;
}

/** A record; an override of undefined leaves the field out, as the store gives it back. */
function record(source: string, id: string, overrides: Partial<VulnRecordRow> = {}): VulnRecordRow {
  const r: VulnRecordRow = {
    id,
    aliases: [`CVE-${id}`],
    related: [],
    summary: `summary of ${id} ü`,
    details: 'details\nwith 😀',
    published: '2024-01-02T03:04:05Z',
    modified: '2024-02-03T04:05:06Z',
    severity: [{ type: 'CVSS_V3', score: 'CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H' }],
    references: [{ type: 'ADVISORY', url: `https://example.com/${id}` }],
    source,
    ...overrides,
  };
  return Object.fromEntries(Object.entries(r).filter(([, v]) => v !== undefined)) as unknown as VulnRecordRow;
}

function affected(source: string, vulnId: string, ecosystem: string, pkg: string, overrides: Partial<VulnAffectedRow> = {}): VulnAffectedRow {
  return {
    vulnId,
    ecosystem,
    package: pkg,
    ranges: [{ type: 'ECOSYSTEM', events: [{ introduced: '0' }, { fixed: '1.2-3' }] }],
    versions: ['1.0-1', '1.1-1'],
    source,
    ...overrides,
  };
}

function source(name: string, overrides: Partial<VulnSourceRow> = {}): VulnSourceRow {
  return { name, description: `${name} export`, updatedAtMs: T0, importedAtMs: T0 + 1000, recordCount: 1, sha256: `sha256:${'ab'.repeat(32)}`, ...overrides };
}

/** Imports one generation of the given sources, each with its records and affected rows; resolves the new version. */
async function importSources(store: VulnDbStore, rows: Array<{ source: VulnSourceRow; records: VulnRecordRow[]; affected: VulnAffectedRow[] }>): Promise<number> {
  const generation = await store.beginImport(rows.map((r) => r.source.name));
  for (const r of rows) {
    await store.putRecords(generation, r.records);
    await store.putAffected(generation, r.affected);
  }
  return store.activate(
    generation,
    rows.map((r) => r.source),
  );
}

const FAR_FUTURE = () => Date.now() + 3_600_000;

/** The vulnerability database (VulnDbStore, src/store/meta/vulndb-store.ts), on every MetaStore driver. */
export function vulnDbStoreContract(name: string, open: () => Promise<VulnDbStoreHarness>): void {
  function vulnTest(title: string, fn: (store: VulnDbStore) => Promise<void>): void {
    test(title, async () => {
      const harness = await open();
      try {
        await fn(harness.vulndb);
      } finally {
        await harness.cleanup();
      }
    });
  }

  describe(`VulnDbStore contract: ${name}`, () => {
    vulnTest('removeSource takes one source out at once, with its rows, and bumps the version; an unknown name changes nothing', async (store) => {
      await importSources(store, [
        { source: source('osv:npm'), records: [record('osv:npm', 'GHSA-1')], affected: [affected('osv:npm', 'GHSA-1', 'npm', 'lodash')] },
        { source: source('osv:Go'), records: [record('osv:Go', 'GO-1')], affected: [affected('osv:Go', 'GO-1', 'Go', 'stdlib')] },
      ]);
      assert.equal(await store.removeSource('osv:PyPI'), false);
      assert.equal((await store.status()).version, 1, 'nothing removed, no new version');
      assert.equal(await store.removeSource('osv:npm'), true);
      const status = await store.status();
      assert.deepEqual([status.version, status.sources.map((s) => s.name)], [2, ['osv:Go']]);
      assert.deepEqual(await store.affected('npm', ['lodash']), []);
      assert.deepEqual(await store.records(['GHSA-1']), []);
      assert.deepEqual((await store.affected('Go', ['stdlib'])).map((a) => a.vulnId), ['GO-1'], 'the other source stays');
      assert.equal(await store.sweepAbandoned(FAR_FUTURE()), 0, 'its rows are already gone');
      assert.equal(await store.removeSource('osv:npm'), false);
    });

    vulnTest('an empty database: version 0, no sources, lookups find nothing', async (store) => {
      assert.deepEqual(await store.status(), { version: 0, sources: [] });
      assert.deepEqual(await store.affected('Debian:12', ['openssl']), []);
      assert.deepEqual(await store.affectedByPrefix('Debian:', ['openssl']), []);
      assert.deepEqual(await store.records(['CVE-2024-0001']), []);
      assert.deepEqual(await store.affected('Debian:12', []), []);
      assert.equal(await store.sweepAbandoned(FAR_FUTURE()), 0);
    });

    vulnTest('a begun import is invisible until activate, then every row and field reads back as written', async (store) => {
      const deb = source('osv:Debian', { recordCount: 2 });
      const records = [record('osv:Debian', 'DSA-1-1'), record('osv:Debian', 'DSA-2-1', { summary: undefined, details: undefined, published: undefined, modified: undefined, related: ['CVE-2'] })];
      const rows = [
        affected('osv:Debian', 'DSA-1-1', 'Debian:12', 'openssl', { distroSeverity: 'high', status: 'fixed' }),
        affected('osv:Debian', 'DSA-2-1', 'Debian:12', 'openssl', { ranges: [], versions: [] }),
        affected('osv:Debian', 'DSA-2-1', 'Debian:11', 'zlib'),
      ];
      const generation = await store.beginImport(['osv:Debian']);
      await store.putRecords(generation, records);
      await store.putAffected(generation, rows);
      assert.deepEqual(await store.affected('Debian:12', ['openssl']), [], 'not before activate');
      assert.deepEqual(await store.records(['DSA-1-1']), []);
      assert.deepEqual(await store.status(), { version: 0, sources: [] });

      assert.equal(await store.activate(generation, [deb]), 1, 'activate resolves the new version');
      assert.deepEqual(await store.status(), { version: 1, sources: [deb] });
      assert.deepEqual(await store.affected('Debian:12', ['openssl']), rows.slice(0, 2), 'optional fields absent stay absent');
      assert.deepEqual(await store.affected('Debian:11', ['zlib', 'openssl']), rows.slice(2));
      assert.deepEqual(await store.records(['DSA-2-1', 'DSA-1-1', 'DSA-1-1', 'nope']), [records[0], records[1]]);
      assert.equal(await store.sweepAbandoned(FAR_FUTURE()), 0, 'nothing left behind');
    });

    vulnTest('a second import of a source replaces it whole; other sources stay as they were', async (store) => {
      const npm = source('osv:npm', { updatedAtMs: T0 - 5 });
      await importSources(store, [
        { source: source('osv:Debian'), records: [record('osv:Debian', 'DSA-1-1')], affected: [affected('osv:Debian', 'DSA-1-1', 'Debian:12', 'openssl')] },
        { source: npm, records: [record('osv:npm', 'GHSA-1')], affected: [affected('osv:npm', 'GHSA-1', 'npm', 'lodash', { ranges: [{ type: 'SEMVER', events: [{ introduced: '0' }, { fixed: '4.17.21' }] }] })] },
      ]);
      assert.equal((await store.status()).version, 1);

      const debian2 = source('osv:Debian', { recordCount: 1, updatedAtMs: T0 + 50, description: 'second' });
      const newRow = affected('osv:Debian', 'DSA-9-1', 'Debian:12', 'curl');
      await importSources(store, [{ source: debian2, records: [record('osv:Debian', 'DSA-9-1')], affected: [newRow] }]);
      const status = await store.status();
      assert.equal(status.version, 2);
      assert.deepEqual(status.sources, [debian2, npm], 'sorted by name; npm untouched');
      assert.deepEqual(await store.affected('Debian:12', ['openssl', 'curl']), [newRow], 'the old rows are gone from lookups');
      assert.deepEqual(await store.records(['DSA-1-1']), []);
      assert.deepEqual((await store.records(['DSA-9-1'])).map((r) => r.id), ['DSA-9-1']);
      assert.equal((await store.affected('npm', ['lodash'])).length, 1, 'another source is unaffected');
      assert.equal((await store.records(['GHSA-1'])).length, 1);
      assert.equal(await store.sweepAbandoned(FAR_FUTURE()), 0, 'the replaced generation was deleted by activate');
    });

    vulnTest('abort leaves nothing; the generation then refuses writes and activation; abort is idempotent', async (store) => {
      await importSources(store, [{ source: source('osv:Debian'), records: [record('osv:Debian', 'DSA-1-1')], affected: [affected('osv:Debian', 'DSA-1-1', 'Debian:12', 'openssl')] }]);
      const before = await store.status();

      const generation = await store.beginImport(['osv:Debian']);
      await store.putRecords(generation, [record('osv:Debian', 'DSA-7-1')]);
      await store.putAffected(generation, [affected('osv:Debian', 'DSA-7-1', 'Debian:12', 'openssl')]);
      await store.abortImport(generation);
      await store.abortImport(generation);
      assert.deepEqual(await store.status(), before, 'the old database is still in use');
      assert.deepEqual((await store.affected('Debian:12', ['openssl'])).map((a) => a.vulnId), ['DSA-1-1']);
      await assert.rejects(store.putRecords(generation, [record('osv:Debian', 'DSA-8-1')]), /not in progress/);
      await assert.rejects(store.putAffected(generation, [affected('osv:Debian', 'DSA-8-1', 'Debian:12', 'openssl')]), /not in progress/);
      await assert.rejects(store.activate(generation, [source('osv:Debian')]), /cannot be activated/);
      assert.deepEqual(await store.status(), before, 'a refused activation does not bump the version');
      assert.equal(await store.sweepAbandoned(FAR_FUTURE()), 0, 'abort deleted every row it wrote');
    });

    vulnTest('an import that began earlier cannot undo one that began later and was activated first', async (store) => {
      const older = await store.beginImport(['osv:npm']);
      const newer = await store.beginImport(['osv:npm']);
      assert.ok(newer > older, 'generations grow');
      await store.putAffected(older, [affected('osv:npm', 'OLD', 'npm', 'left-pad')]);
      await store.putAffected(newer, [affected('osv:npm', 'NEW', 'npm', 'left-pad')]);
      await store.activate(newer, [source('osv:npm')]);
      await assert.rejects(store.activate(older, [source('osv:npm')]), /replaced by a newer import/);
      assert.deepEqual((await store.affected('npm', ['left-pad'])).map((a) => a.vulnId), ['NEW']);
      assert.equal((await store.status()).version, 1);
      await store.abortImport(older);
      assert.equal(await store.sweepAbandoned(FAR_FUTURE()), 0);
    });

    vulnTest('the version grows with every activation, and several sources activate together', async (store) => {
      const versions: number[] = [];
      for (let i = 0; i < 3; i++) {
        const version = await importSources(store, [
          { source: source('a'), records: [], affected: [affected('a', `A-${i}`, 'PyPI', 'requests')] },
          { source: source('b'), records: [], affected: [affected('b', `B-${i}`, 'PyPI', 'requests')] },
        ]);
        assert.equal((await store.status()).version, version);
        versions.push(version);
        assert.deepEqual((await store.affected('PyPI', ['requests'])).map((a) => a.vulnId), [`A-${i}`, `B-${i}`]);
      }
      assert.deepEqual(versions, [1, 2, 3]);
    });

    vulnTest('lookups are exact: ecosystem, package name and case; a prefix is a prefix', async (store) => {
      const rows = [
        affected('s', 'V1', 'Debian:12', 'openssl'),
        affected('s', 'V2', 'Debian:11', 'openssl'),
        affected('s', 'V3', 'Debian:12', 'OpenSSL'),
        affected('s', 'V4', 'Debian:12', 'openssl-dev'),
        affected('s', 'V5', 'Red Hat:enterprise_linux:9::baseos', 'openssl'),
        affected('s', 'V6', 'Red Hat:enterprise_linux:8::appstream', 'openssl'),
        affected('s', 'V7', 'Red Hatter', 'openssl'),
        affected('s', 'V8', 'Red Hat', 'openssl'),
        affected('s', 'V9', 'npm', '@scope/päckage-😀'),
        affected('s', 'V10', 'Red Hat;x', 'openssl'),
      ];
      await importSources(store, [{ source: source('s'), records: [], affected: rows }]);
      const ids = (r: VulnAffectedRow[]) => r.map((a) => a.vulnId).sort();
      assert.deepEqual(ids(await store.affected('Debian:12', ['openssl'])), ['V1']);
      assert.deepEqual(ids(await store.affected('Debian:12', ['OpenSSL', 'openssl-dev'])), ['V3', 'V4']);
      assert.deepEqual(ids(await store.affected('debian:12', ['openssl'])), []);
      assert.deepEqual(ids(await store.affected('Debian', ['openssl'])), []);
      assert.deepEqual(ids(await store.affectedByPrefix('Red Hat:', ['openssl'])), ['V5', 'V6']);
      assert.deepEqual(ids(await store.affectedByPrefix('Red Hat:enterprise_linux:9', ['openssl', 'OpenSSL'])), ['V5']);
      assert.deepEqual(ids(await store.affectedByPrefix('Debian:', ['openssl'])), ['V1', 'V2']);
      assert.deepEqual(ids(await store.affectedByPrefix('Red', ['nope'])), []);
      assert.deepEqual(ids(await store.affected('npm', ['@scope/päckage-😀'])), ['V9']);
      assert.deepEqual(ids(await store.affectedByPrefix('np', ['@scope/päckage-😀'])), ['V9']);
    });

    vulnTest('records: one row per source for an id in several; a record put twice is kept once, as last put', async (store) => {
      const generation = await store.beginImport(['x', 'y']);
      await store.putRecords(generation, [record('x', 'CVE-1', { summary: 'first' }), record('y', 'CVE-1')]);
      await store.putRecords(generation, [record('x', 'CVE-1', { summary: 'second' }), record('x', 'CVE-1', { summary: 'third' })]);
      await store.activate(generation, [source('x'), source('y')]);
      const got = await store.records(['CVE-1']);
      assert.deepEqual(
        got.map((r) => [r.source, r.summary]),
        [
          ['x', 'third'],
          ['y', 'summary of CVE-1 ü'],
        ],
      );
    });

    vulnTest('large imports: thousands of rows over many packages, read back in full and replaced in full', async (store) => {
      const packages = Array.from({ length: 1500 }, (_, i) => `pkg-${i}`);
      const generation = await store.beginImport(['big']);
      for (let start = 0; start < packages.length; start += 700) {
        const slice = packages.slice(start, start + 700);
        await store.putRecords(generation, slice.map((p) => record('big', `V-${p}`)));
        await store.putAffected(generation, slice.flatMap((p) => [affected('big', `V-${p}`, 'Go', p), affected('big', `W-${p}`, 'Go', p)]));
      }
      await store.activate(generation, [source('big', { recordCount: packages.length })]);
      assert.equal((await store.affected('Go', packages)).length, 3000);
      assert.equal((await store.affectedByPrefix('G', packages)).length, 3000);
      assert.equal((await store.records(packages.map((p) => `V-${p}`))).length, 1500);

      await importSources(store, [{ source: source('big'), records: [], affected: [affected('big', 'ONLY', 'Go', 'pkg-7')] }]);
      assert.deepEqual((await store.affected('Go', packages)).map((a) => a.vulnId), ['ONLY']);
      assert.equal(await store.sweepAbandoned(FAR_FUTURE()), 0, 'every replaced row was deleted');
    });

    vulnTest('sweepAbandoned deletes imports begun before the cutoff and never activated, and keeps younger ones', async (store) => {
      await importSources(store, [{ source: source('osv:Go'), records: [record('osv:Go', 'GO-1')], affected: [affected('osv:Go', 'GO-1', 'Go', 'stdlib')] }]);
      const abandoned = await store.beginImport(['osv:Go']);
      await store.putRecords(abandoned, [record('osv:Go', 'GO-2'), record('osv:Go', 'GO-3')]);
      await store.putAffected(abandoned, [affected('osv:Go', 'GO-2', 'Go', 'stdlib')]);
      const startedBefore = Date.now() - 60_000;
      assert.equal(await store.sweepAbandoned(startedBefore), 0, 'a young import is left alone');
      await store.putAffected(abandoned, [affected('osv:Go', 'GO-3', 'Go', 'stdlib')]);

      assert.equal(await store.sweepAbandoned(FAR_FUTURE()), 4, 'its two records and two affected rows');
      await assert.rejects(store.activate(abandoned, [source('osv:Go')]), /cannot be activated/);
      await assert.rejects(store.putRecords(abandoned, [record('osv:Go', 'GO-4')]), /not in progress/);
      assert.deepEqual((await store.affected('Go', ['stdlib'])).map((a) => a.vulnId), ['GO-1'], 'the active generation is kept, whatever its age');
      assert.equal((await store.status()).version, 1);
      assert.equal(await store.sweepAbandoned(FAR_FUTURE()), 0);
    });
  });
}
