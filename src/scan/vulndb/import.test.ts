import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { createReadStream, createWriteStream, existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { test, type TestContext } from 'node:test';
import yazl from 'yazl';
import { openSqliteMetaStore } from '../../store/meta/sqlite/sqlite-meta-store.ts';
import type { VulnDbStore } from '../../store/meta/vulndb-store.ts';
import { bundleArtifactManifest, bundleFromArtifact, VULNDB_ARTIFACT_TYPE } from './artifact.ts';
import { createBundle, extractBundle } from './bundle.ts';
import { fileSha256 } from './osv-input.ts';
import { importVulnDb, vulnDbStatus } from './import.ts';

/** The Go vulnerability database's own test data, as Debian's golang-golang-x-vuln-dev ships it: real OSV records. */
const GO_VULNDB = '/usr/share/gocode/src/golang.org/x/vuln/client/testdata/vulndb';

async function setup(t: TestContext): Promise<{ store: VulnDbStore; dir: string }> {
  const dir = await mkdtemp(path.join(tmpdir(), 'berth-vulndb-test-'));
  const meta = await openSqliteMetaStore(path.join(dir, 'metadata.db'));
  t.after(async () => {
    await meta.close();
    await rm(dir, { recursive: true, force: true });
  });
  return { store: meta.vulndb, dir };
}

async function writeZip(file: string, entries: Array<[string, unknown]>): Promise<string> {
  const zip = new yazl.ZipFile();
  for (const [name, doc] of entries) zip.addBuffer(Buffer.from(typeof doc === 'string' ? doc : JSON.stringify(doc)), name);
  zip.end();
  await mkdir(path.dirname(file), { recursive: true });
  await pipeline(zip.outputStream, createWriteStream(file));
  return file;
}

/** Made-up records in the shape of OSV.dev's Debian export (DSA/DLA records, converted from the tracker). */
function dsa(id: string, cve: string, modified: string, affected: Array<{ ecosystem: string; name: string; fixed?: string; versions?: string[]; urgency?: string }>): Record<string, unknown> {
  return {
    schema_version: '1.6.0',
    id,
    modified,
    published: '2024-01-01T00:00:00Z',
    aliases: [cve],
    upstream: [cve],
    summary: `${affected[0]!.name} - security update`,
    details: `A flaw in ${affected[0]!.name}.`,
    affected: affected.map((a) => ({
      package: { ecosystem: a.ecosystem, name: a.name },
      ranges: [{ type: 'ECOSYSTEM', events: [{ introduced: '0' }, ...(a.fixed ? [{ fixed: a.fixed }] : [])] }],
      versions: a.versions ?? [],
      ...(a.urgency ? { ecosystem_specific: { urgency: a.urgency } } : {}),
    })),
    references: [{ type: 'ADVISORY', url: `https://security-tracker.debian.org/tracker/${id}` }],
  };
}

const debianRecords = (): Array<[string, unknown]> => [
  ['DSA-5001-1.json', dsa('DSA-5001-1', 'CVE-2099-1001', '2024-03-01T10:00:00Z', [{ ecosystem: 'Debian:12', name: 'openssl', fixed: '3.0.13-1~deb12u1', versions: ['3.0.11-1~deb12u2'], urgency: 'high**' }])],
  ['DLA-3001-1.json', dsa('DLA-3001-1', 'CVE-2099-1002', '2024-05-02T11:00:00Z', [{ ecosystem: 'Debian:11', name: 'zlib', fixed: '1:1.2.11.dfsg-2+deb11u3', urgency: 'not yet assigned' }])],
  ['DSA-5002-1.json', { ...dsa('DSA-5002-1', 'CVE-2099-1003', '2025-01-01T00:00:00Z', [{ ecosystem: 'Debian:12', name: 'curl', fixed: '7.88.1-10+deb12u9' }]), withdrawn: '2025-01-02T00:00:00Z' }],
];

const npmRecords = (): Array<[string, unknown]> => [
  [
    'GHSA-aaaa-bbbb-cccc.json',
    {
      id: 'GHSA-aaaa-bbbb-cccc',
      modified: '2024-06-01T00:00:00Z',
      aliases: ['CVE-2099-2001'],
      summary: 'Prototype pollution in lodash',
      severity: [{ type: 'CVSS_V3', score: 'CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H' }],
      affected: [{ package: { ecosystem: 'npm', name: 'lodash' }, ranges: [{ type: 'SEMVER', events: [{ introduced: '0' }, { fixed: '4.17.21' }] }], database_specific: { source: 'x' } }],
      references: [{ type: 'WEB', url: 'https://example.com/lodash' }, { url: 'https://example.com/no-type' }, { type: 'WEB' }],
    },
  ],
  [
    // A GitHub advisory for two ecosystems is in both exports: from the npm one, only npm is taken.
    'GHSA-dddd-eeee-ffff.json',
    {
      id: 'GHSA-dddd-eeee-ffff',
      modified: '2023-01-01T00:00:00Z',
      affected: [
        { package: { ecosystem: 'PyPI', name: 'requests' }, ranges: [{ type: 'ECOSYSTEM', events: [{ introduced: '0' }, { fixed: '2.31.0' }] }] },
        { package: { ecosystem: 'npm', name: 'minimist' }, versions: ['1.2.5', '1.2.6'] },
      ],
    },
  ],
];

/** A tracker file in the shape of https://security-tracker.debian.org/tracker/data/json (made-up entries). */
const trackerJson = () => ({
  openssl: {
    'CVE-2099-1001': {
      description: 'openssl: a flaw',
      scope: 'remote',
      releases: {
        bookworm: { status: 'resolved', repositories: { bookworm: '3.0.13-1~deb12u1' }, fixed_version: '3.0.13-1~deb12u1', urgency: 'medium*' },
        bullseye: { status: 'open', repositories: { bullseye: '1.1.1w-0+deb11u1' }, urgency: 'low', nodsa: 'Minor issue', nodsa_reason: 'postponed' },
        trixie: { status: 'resolved', repositories: { trixie: '3.1.0-1' }, fixed_version: '0', urgency: 'unimportant' },
        sid: { status: 'resolved', repositories: { sid: '3.1.0-1' }, fixed_version: '3.1.0-1', urgency: 'not yet assigned' },
      },
    },
    'CVE-2099-1004': {
      releases: {
        bookworm: { status: 'open', repositories: {}, urgency: 'unimportant', nodsa: 'x', nodsa_reason: 'ignored' },
        bullseye: { status: 'undetermined', repositories: {}, urgency: 'not yet assigned' },
        buster: { status: 'open', repositories: {}, urgency: 'high**' },
      },
    },
  },
  curl: {
    'CVE-2099-1001': { description: 'openssl: a flaw', releases: { bookworm: { status: 'resolved', fixed_version: '7.88.1-10+deb12u9', urgency: 'low' } } },
    'TEMP-0000000-ABCDEF': { description: '', releases: { bookworm: { status: 'open', urgency: 'not yet assigned', nodsa: '', nodsa_reason: '' } } },
  },
  // Releases the tracker knows but the database does not map: nothing from them.
  hello: { 'CVE-2099-1005': { releases: { sid: { status: 'open', urgency: 'low' }, experimental: { status: 'open' } } } },
});

const T_TRACKER = Date.parse('2025-02-03T04:05:06Z');

async function writeTracker(file: string, doc: unknown = trackerJson()): Promise<string> {
  await writeFile(file, JSON.stringify(doc));
  await utimes(file, T_TRACKER / 1000, T_TRACKER / 1000);
  return file;
}

const NOW = Date.parse('2025-03-01T00:00:00Z');

function ids(rows: Array<{ vulnId: string }>): string[] {
  return rows.map((r) => r.vulnId).sort();
}

test('OSV all.zip exports: one source per ecosystem family, rows mapped, withdrawn and foreign records left out', async (t) => {
  const { store, dir } = await setup(t);
  const debian = await writeZip(path.join(dir, 'Debian/all.zip'), debianRecords());
  const npm = await writeZip(path.join(dir, 'npm/all.zip'), npmRecords());
  const summary = await importVulnDb(store, [debian, npm], { now: () => NOW });

  assert.equal(summary.version, 1);
  assert.deepEqual(
    summary.sources.map((s) => [s.name, s.records, s.affected, new Date(s.updatedAtMs).toISOString(), s.input]),
    [
      ['osv:Debian', 2, 2, '2024-05-02T11:00:00.000Z', debian],
      ['osv:npm', 2, 2, '2024-06-01T00:00:00.000Z', npm],
    ],
  );
  assert.match(summary.notes.join('\n'), /1 withdrawn records skipped/);
  const status = await store.status();
  assert.deepEqual(
    status.sources.map((s) => [s.name, s.recordCount, s.importedAtMs, s.sha256, s.description]),
    [
      ['osv:Debian', 2, NOW, await fileSha256(debian), `OSV all.zip ${debian}`],
      ['osv:npm', 2, NOW, await fileSha256(npm), `OSV all.zip ${npm}`],
    ],
  );

  assert.deepEqual(await store.affected('Debian:12', ['openssl', 'curl']), [
    {
      vulnId: 'DSA-5001-1',
      ecosystem: 'Debian:12',
      package: 'openssl',
      ranges: [{ type: 'ECOSYSTEM', events: [{ introduced: '0' }, { fixed: '3.0.13-1~deb12u1' }] }],
      versions: ['3.0.11-1~deb12u2'],
      distroSeverity: 'high',
      source: 'osv:Debian',
    },
  ]);
  const zlib = await store.affected('Debian:11', ['zlib']);
  assert.equal(zlib.length, 1);
  assert.equal(zlib[0]!.distroSeverity, undefined, '"not yet assigned" is no rating');
  assert.deepEqual(await store.affected('npm', ['minimist']), [{ vulnId: 'GHSA-dddd-eeee-ffff', ecosystem: 'npm', package: 'minimist', ranges: [], versions: ['1.2.5', '1.2.6'], source: 'osv:npm' }]);
  assert.deepEqual(await store.affected('PyPI', ['requests']), [], 'the PyPI half of a record in the npm export is not a PyPI source');
  assert.deepEqual(
    await store.records(['DSA-5001-1', 'GHSA-aaaa-bbbb-cccc']),
    [
      {
        id: 'DSA-5001-1',
        aliases: ['CVE-2099-1001'],
        related: ['CVE-2099-1001'],
        summary: 'openssl - security update',
        details: 'A flaw in openssl.',
        published: '2024-01-01T00:00:00Z',
        modified: '2024-03-01T10:00:00Z',
        severity: [],
        references: [{ type: 'ADVISORY', url: 'https://security-tracker.debian.org/tracker/DSA-5001-1' }],
        source: 'osv:Debian',
      },
      {
        id: 'GHSA-aaaa-bbbb-cccc',
        aliases: ['CVE-2099-2001'],
        related: [],
        summary: 'Prototype pollution in lodash',
        modified: '2024-06-01T00:00:00Z',
        severity: [{ type: 'CVSS_V3', score: 'CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H' }],
        references: [
          { type: 'WEB', url: 'https://example.com/lodash' },
          { type: 'WEB', url: 'https://example.com/no-type' },
        ],
        source: 'osv:npm',
      },
    ],
  );
  assert.deepEqual(await store.records(['DSA-5002-1']), [], 'a withdrawn record is not imported');
  assert.equal(await store.sweepAbandoned(NOW * 2), 0, 'the rows of the PyPI half were deleted on activation');
});

test('the Debian security tracker JSON: statuses, fixed versions and urgencies per release', async (t) => {
  const { store, dir } = await setup(t);
  const tracker = await writeTracker(path.join(dir, 'tracker.json'));
  const summary = await importVulnDb(store, [tracker], { now: () => NOW });
  assert.deepEqual(
    summary.sources.map((s) => [s.name, s.records, s.affected, s.updatedAtMs, s.sha256]),
    [['debian-tracker', 3, 7, T_TRACKER, await fileSha256(tracker)]],
    'records once per issue; updatedAt is the file time',
  );

  const rows = await store.affectedByPrefix('Debian:', ['openssl', 'curl', 'hello']);
  const simplified = rows.map((r) => [r.package, r.vulnId, r.ecosystem, r.status, JSON.stringify(r.ranges), r.distroSeverity ?? null]).sort();
  assert.deepEqual(simplified, [
    ['curl', 'CVE-2099-1001', 'Debian:12', 'fixed', '[{"type":"ECOSYSTEM","events":[{"introduced":"0"},{"fixed":"7.88.1-10+deb12u9"}]}]', 'low'],
    ['curl', 'TEMP-0000000-ABCDEF', 'Debian:12', 'unfixed', '[{"type":"ECOSYSTEM","events":[{"introduced":"0"}]}]', null],
    ['openssl', 'CVE-2099-1001', 'Debian:11', 'postponed', '[{"type":"ECOSYSTEM","events":[{"introduced":"0"}]}]', 'low'],
    ['openssl', 'CVE-2099-1001', 'Debian:12', 'fixed', '[{"type":"ECOSYSTEM","events":[{"introduced":"0"},{"fixed":"3.0.13-1~deb12u1"}]}]', 'medium'],
    ['openssl', 'CVE-2099-1001', 'Debian:13', 'not_affected', '[]', 'unimportant'],
    ['openssl', 'CVE-2099-1004', 'Debian:10', 'unfixed', '[{"type":"ECOSYSTEM","events":[{"introduced":"0"}]}]', 'high'],
    ['openssl', 'CVE-2099-1004', 'Debian:12', 'will_not_fix', '[{"type":"ECOSYSTEM","events":[{"introduced":"0"}]}]', 'unimportant'],
  ]);
  assert.ok(rows.every((r) => r.source === 'debian-tracker' && r.versions.length === 0));
  const records = await store.records(['CVE-2099-1001', 'TEMP-0000000-ABCDEF', 'CVE-2099-1005']);
  assert.deepEqual(records, [
    { id: 'CVE-2099-1001', aliases: [], related: [], details: 'openssl: a flaw', severity: [], references: [{ type: 'WEB', url: 'https://security-tracker.debian.org/tracker/CVE-2099-1001' }], source: 'debian-tracker' },
    { id: 'TEMP-0000000-ABCDEF', aliases: [], related: [], severity: [], references: [{ type: 'WEB', url: 'https://security-tracker.debian.org/tracker/TEMP-0000000-ABCDEF' }], source: 'debian-tracker' },
  ]);
});

test('a second import of a source replaces it; sources it does not give stay', async (t) => {
  const { store, dir } = await setup(t);
  await importVulnDb(store, [await writeZip(path.join(dir, 'd1/all.zip'), debianRecords()), await writeZip(path.join(dir, 'npm/all.zip'), npmRecords())]);
  const npmBefore = (await store.status()).sources.find((s) => s.name === 'osv:npm');

  const next = await writeZip(path.join(dir, 'd2/all.zip'), [['DSA-6000-1.json', dsa('DSA-6000-1', 'CVE-2099-3000', '2025-01-01T00:00:00Z', [{ ecosystem: 'Debian:12', name: 'openssl', fixed: '3.0.15-1~deb12u1' }])]]);
  const summary = await importVulnDb(store, [next]);
  assert.equal(summary.version, 2);
  assert.deepEqual(ids(await store.affected('Debian:12', ['openssl'])), ['DSA-6000-1']);
  assert.deepEqual(await store.affected('Debian:11', ['zlib']), []);
  const status = await store.status();
  assert.deepEqual(status.sources.find((s) => s.name === 'osv:npm'), npmBefore);
  assert.equal(status.sources.find((s) => s.name === 'osv:Debian')?.recordCount, 1);
  assert.deepEqual(ids(await store.affected('npm', ['lodash'])), ['GHSA-aaaa-bbbb-cccc']);
});

test('an import that fails midway leaves the previous database in use, and nothing behind', async (t) => {
  const { store, dir } = await setup(t);
  await importVulnDb(store, [await writeZip(path.join(dir, 'Debian/all.zip'), debianRecords())]);
  const before = await store.status();

  // Enough records that rows are written to the store before the broken entry is reached.
  const many: Array<[string, unknown]> = Array.from({ length: 1500 }, (_, i) => [`DSA-${i}.json`, dsa(`DSA-${i}-1`, `CVE-2099-${i}`, '2025-01-01T00:00:00Z', [{ ecosystem: 'Debian:12', name: `pkg-${i}`, fixed: '1.0-1' }])]);
  const broken = await writeZip(path.join(dir, 'broken/all.zip'), [...many, ['DSA-last.json', '{"id": "DSA-9999-1", "affected": [']]);
  const npm = await writeZip(path.join(dir, 'npm/all.zip'), npmRecords());
  let written = 0;
  const counting: VulnDbStore = Object.assign(Object.create(store) as VulnDbStore, {
    putRecords: async (generation: number, records: Parameters<VulnDbStore['putRecords']>[1]) => {
      written += records.length;
      return store.putRecords(generation, records);
    },
  });
  await assert.rejects(importVulnDb(counting, [npm, broken]), (err: Error) => {
    assert.match(err.message, /database in use is unchanged/);
    assert.match(err.message, /DSA-last\.json: not valid JSON/);
    return true;
  });
  assert.ok(written >= 1000, `records were written before the failure (${written})`);
  assert.deepEqual(await store.status(), before);
  assert.deepEqual(ids(await store.affected('Debian:12', ['openssl', 'pkg-1', 'pkg-1499'])), ['DSA-5001-1']);
  assert.deepEqual(await store.affected('npm', ['lodash']), [], 'the input read before the failure is not activated either');
  assert.equal(await store.sweepAbandoned(Date.now() + 3_600_000), 0, 'the aborted import deleted its rows');
});

test('inputs: two giving one source, unknown content and missing paths are refused before anything changes', async (t) => {
  const { store, dir } = await setup(t);
  const a = await writeZip(path.join(dir, 'a/all.zip'), debianRecords());
  const b = await writeZip(path.join(dir, 'b/all.zip'), debianRecords());
  await assert.rejects(importVulnDb(store, [a, b]), /both give the source osv:Debian/);
  await writeFile(path.join(dir, 'notes.txt'), 'hello');
  await assert.rejects(importVulnDb(store, [path.join(dir, 'notes.txt')]), /not an OSV all\.zip/);
  await assert.rejects(importVulnDb(store, [path.join(dir, 'missing.zip')]), /missing\.zip: no such file/);
  const truncated = path.join(dir, 'truncated.json');
  await writeFile(truncated, JSON.stringify(trackerJson()).slice(0, 300));
  await assert.rejects(importVulnDb(store, [truncated]), /truncated\.json: not a Debian security tracker JSON file/);
  const ambiguous = await writeZip(path.join(dir, 'c/all.zip'), [npmRecords()[1]!]);
  await assert.rejects(importVulnDb(store, [ambiguous]), /cannot tell which ecosystem/);
  assert.deepEqual(await store.status(), { version: 0, sources: [] });
  assert.equal(await store.sweepAbandoned(Date.now() + 3_600_000), 0);
});

test('a directory of real OSV JSON files: the Go vulnerability database records Debian ships', async (t) => {
  assert.ok(existsSync(GO_VULNDB), `${GO_VULNDB} is missing: install Debian's golang-golang-x-vuln-dev`);
  const { store } = await setup(t);
  const summary = await importVulnDb(store, [GO_VULNDB], { now: () => NOW });
  // ID/ holds five records, two per-module files nine (three of them the same as in ID/); the
  // index files beside them are not records.
  assert.deepEqual(
    summary.sources.map((s) => [s.name, s.records, s.affected, new Date(s.updatedAtMs).toISOString()]),
    [['osv:Go', 9, 12, '2022-08-29T16:50:59.000Z']],
  );
  assert.match(summary.notes.join('\n'), /5 JSON documents that are not OSV records ignored/);
  assert.match(summary.sources[0]!.sha256, /^sha256:[0-9a-f]{64}$/);
  assert.deepEqual(await store.affected('Go', ['stdlib']), [
    { vulnId: 'GO-2021-0157', ecosystem: 'Go', package: 'stdlib', ranges: [{ type: 'SEMVER', events: [{ introduced: '0' }, { fixed: '1.4.3' }] }], versions: [], source: 'osv:Go' },
    { vulnId: 'GO-2021-0159', ecosystem: 'Go', package: 'stdlib', ranges: [{ type: 'SEMVER', events: [{ introduced: '0' }, { fixed: '1.4.3' }] }], versions: [], source: 'osv:Go' },
  ]);
  assert.deepEqual(ids(await store.affected('Go', ['github.com/tidwall/gjson'])), ['GO-2021-0054', 'GO-2021-0059', 'GO-2021-0265', 'GO-2022-0592']);
  assert.deepEqual(ids(await store.affected('Go', ['github.com/beego/beego', 'github.com/beego/beego/v2'])), ['GO-2022-0463', 'GO-2022-0463', 'GO-2022-0569', 'GO-2022-0569', 'GO-2022-0572', 'GO-2022-0572']);
  const [record] = await store.records(['GO-2021-0159']);
  assert.deepEqual(record?.aliases, ['CVE-2015-5739', 'CVE-2015-5740', 'CVE-2015-5741']);
  assert.match(record?.details ?? '', /./);
});

test('bundles: signed, checked with the public key; unchecked without one; refused when a signature is required and missing', async (t) => {
  const { store, dir } = await setup(t);
  const { publicKey, privateKey } = generateKeyPairSync('ed25519');
  const pem = publicKey.export({ type: 'spki', format: 'pem' }).toString();
  const debian = await writeZip(path.join(dir, 'Debian/all.zip'), debianRecords());
  const npm = await writeZip(path.join(dir, 'npm/all.zip'), npmRecords());
  const tracker = await writeTracker(path.join(dir, 'tracker.json'));
  const createdAt = Date.parse('2025-02-20T00:00:00Z');

  const signed = await createBundle([debian, npm, tracker], path.join(dir, 'signed.tar'), { privateKey, now: () => createdAt });
  assert.equal(signed.isSigned, true);
  assert.deepEqual(
    signed.manifest.sources.map((s) => [s.file, s.kind]),
    [
      ['all.zip', 'osv-zip'],
      ['npm-all.zip', 'osv-zip'],
      ['tracker.json', 'debian-tracker-json'],
    ],
  );
  assert.equal(signed.sha256, await fileSha256(signed.file));

  const summary = await importVulnDb(store, [signed.file], { publicKey: pem, requireSignature: true, now: () => NOW });
  assert.deepEqual(summary.notes.filter((n) => /sign/.test(n)), []);
  assert.deepEqual(
    summary.sources.map((s) => [s.name, s.records, s.updatedAtMs, s.input]),
    [
      ['osv:Debian', 2, Date.parse('2024-05-02T11:00:00Z'), signed.file],
      ['osv:npm', 2, Date.parse('2024-06-01T00:00:00Z'), signed.file],
      ['debian-tracker', 3, createdAt, signed.file],
    ],
    "the tracker's time in a bundle is the bundle's",
  );
  const sources = (await store.status()).sources;
  assert.equal(sources.find((s) => s.name === 'osv:npm')?.sha256, await fileSha256(npm), "a member's hash");
  assert.equal(sources.find((s) => s.name === 'osv:npm')?.description, `bundle ${signed.sha256} npm-all.zip: OSV all.zip`);
  assert.deepEqual(ids(await store.affected('Debian:12', ['openssl'])), ['CVE-2099-1001', 'CVE-2099-1004', 'DSA-5001-1']);

  const unchecked = await importVulnDb(store, [signed.file]);
  assert.match(unchecked.notes.join('\n'), /signed, but no public key is configured: its signature was not checked/);
  assert.equal(unchecked.version, 2);
  await assert.rejects(importVulnDb(store, [signed.file], { requireSignature: true }), /no public key is configured/);

  const unsigned = await createBundle([debian], path.join(dir, 'unsigned.tar'));
  assert.equal(unsigned.isSigned, false);
  await assert.rejects(importVulnDb(store, [unsigned.file], { publicKey: pem, requireSignature: true }), /not signed, and a signature is required/);
  await assert.rejects(importVulnDb(store, [debian], { publicKey: pem, requireSignature: true }), /a signed bundle is required/);
  assert.match((await importVulnDb(store, [unsigned.file], { publicKey: pem })).notes.join('\n'), /the bundle is not signed/);
  assert.equal((await store.status()).version, 3, 'only the imports that were accepted changed the database');
});

test('bundles: a wrong signature, a tampered member, a member not in the manifest are refused and change nothing', async (t) => {
  const { store, dir } = await setup(t);
  const { privateKey } = generateKeyPairSync('ed25519');
  const other = generateKeyPairSync('ed25519');
  const tracker = await writeTracker(path.join(dir, 'tracker.json'));
  const signed = await createBundle([tracker], path.join(dir, 'signed.tar'), { privateKey });

  await assert.rejects(importVulnDb(store, [signed.file], { publicKey: other.publicKey }), /signature of manifest\.json does not verify/);
  const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 });
  await assert.rejects(importVulnDb(store, [signed.file], { publicKey: rsa.publicKey }), /not Ed25519/);

  // One byte of the member changed, the tar otherwise intact: its sha256 no longer matches.
  const bytes = await readFile(signed.file);
  const at = bytes.indexOf('"openssl"');
  assert.ok(at > 0);
  bytes[at + 1] = 'O'.charCodeAt(0);
  const tampered = path.join(dir, 'tampered.tar');
  await writeFile(tampered, bytes);
  await assert.rejects(importVulnDb(store, [tampered]), /tracker\.json has sha256 [0-9a-f]{64}, manifest\.json says/);

  // The manifest changed after signing.
  const edited = Buffer.from(await readFile(signed.file));
  const m = edited.indexOf('"createdAt": "');
  edited[m + 15] = edited[m + 15] === 0x31 ? 0x32 : 0x31;
  const editedFile = path.join(dir, 'edited.tar');
  await writeFile(editedFile, edited);
  await assert.rejects(importVulnDb(store, [editedFile], { publicKey: privateKey }), /does not verify/);

  // A tar that is not a bundle at all (no manifest first).
  const { pack } = await import('tar-stream');
  const p = pack();
  p.entry({ name: 'tracker.json' }, await readFile(tracker));
  p.finalize();
  const notBundle = path.join(dir, 'plain.tar');
  await pipeline(p as unknown as NodeJS.ReadableStream, createWriteStream(notBundle));
  await assert.rejects(importVulnDb(store, [notBundle]), /first member is "tracker\.json", not manifest\.json/);

  assert.deepEqual(await store.status(), { version: 0, sources: [] });
  assert.equal(await store.sweepAbandoned(Date.now() + 3_600_000), 0);
});

test('a bundle extracted alone: members land in the directory, checked', async (t) => {
  const { dir } = await setup(t);
  const tracker = await writeTracker(path.join(dir, 'tracker.json'));
  const bundle = await createBundle([tracker], path.join(dir, 'b.tar'));
  const out = await mkdtemp(path.join(dir, 'x-'));
  const extracted = await extractBundle(bundle.file, out);
  assert.equal(extracted.signature, 'unsigned');
  assert.equal(extracted.sha256, bundle.sha256);
  assert.deepEqual(await readFile(extracted.files[0]!.path), await readFile(tracker));
});

test('a bundle as an OCI artifact: the manifest names it, and its layer is written out checked and imports', async (t) => {
  const { store, dir } = await setup(t);
  const bundle = await createBundle([await writeZip(path.join(dir, 'npm/all.zip'), npmRecords())], path.join(dir, 'b.tar'));
  const manifest = bundleArtifactManifest(bundle.sha256, bundle.size, { 'org.opencontainers.image.created': '2025-02-20T00:00:00Z' });
  assert.equal(manifest.artifactType, VULNDB_ARTIFACT_TYPE);
  assert.deepEqual(manifest.config, { mediaType: 'application/vnd.oci.empty.v1+json', digest: 'sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a', size: 2 });

  const blobs = new Map([[bundle.sha256, bundle.file]]);
  const readBlob = async (digest: string) => createReadStream(blobs.get(digest) ?? path.join(dir, 'absent'));
  const temp = await mkdtemp(path.join(dir, 'artifact-'));
  const file = await bundleFromArtifact(Buffer.from(JSON.stringify(manifest)), readBlob, temp);
  const summary = await importVulnDb(store, [file]);
  assert.deepEqual(summary.sources.map((s) => s.name), ['osv:npm']);

  await assert.rejects(bundleFromArtifact({ ...manifest, artifactType: 'application/vnd.example' }, readBlob, temp), /artifactType is "application\/vnd\.example"/);
  const lying = bundleArtifactManifest(`sha256:${'0'.repeat(64)}`, bundle.size);
  blobs.set(`sha256:${'0'.repeat(64)}`, bundle.file);
  await assert.rejects(bundleFromArtifact(lying, readBlob, temp), /has digest sha256:[0-9a-f]{64}, its manifest says sha256:0000/);
  await assert.rejects(bundleFromArtifact(bundleArtifactManifest(bundle.sha256, bundle.size - 1), readBlob, temp), /larger than the \d+ bytes/);
});

test('vulnDbStatus: sources with their age, and the age of the oldest', async (t) => {
  const { store, dir } = await setup(t);
  assert.deepEqual(await vulnDbStatus(store, NOW), { version: 0, sources: [] });
  await importVulnDb(store, [await writeZip(path.join(dir, 'npm/all.zip'), npmRecords()), await writeTracker(path.join(dir, 'tracker.json'))], { now: () => NOW });
  const status = await vulnDbStatus(store, NOW);
  assert.equal(status.version, 1);
  assert.deepEqual(
    status.sources.map((s) => [s.name, s.recordCount, s.ageMs]),
    [
      ['debian-tracker', 3, NOW - T_TRACKER],
      ['osv:npm', 2, NOW - Date.parse('2024-06-01T00:00:00Z')],
    ],
  );
  assert.equal(status.oldestUpdatedAtMs, Date.parse('2024-06-01T00:00:00Z'));
});
