import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { AffectedRange, Finding, Inventory, OsInfo, Package, VulnAffected, VulnRecord } from '../types.ts';
import { Matcher, matchInventory, type VulnLookup } from './matcher.ts';

/**
 * An in-memory VulnLookup: the store interface's semantics (exact ecosystem and names, prefix
 * on the ecosystem, records by id with a row per source) over hand-made rows. The real stores
 * pass their own contract tests; this double lets each rule be shown with a few rows.
 */
class MemoryLookup implements VulnLookup {
  readonly calls: string[] = [];
  readonly rows: VulnAffected[];
  readonly recordRows: VulnRecord[];
  constructor(rows: VulnAffected[], recordRows: VulnRecord[]) {
    this.rows = rows;
    this.recordRows = recordRows;
  }

  async affected(ecosystem: string, packages: string[]): Promise<VulnAffected[]> {
    this.calls.push(`affected ${ecosystem} ${packages.length}`);
    const names = new Set(packages);
    return this.rows.filter((r) => r.ecosystem === ecosystem && names.has(r.package)).map((r) => structuredClone(r));
  }

  async affectedByPrefix(prefix: string, packages: string[]): Promise<VulnAffected[]> {
    this.calls.push(`prefix ${prefix} ${packages.length}`);
    const names = new Set(packages);
    return this.rows.filter((r) => r.ecosystem.startsWith(prefix) && names.has(r.package)).map((r) => structuredClone(r));
  }

  async records(ids: string[]): Promise<VulnRecord[]> {
    this.calls.push(`records ${ids.length}`);
    const wanted = new Set(ids);
    return this.recordRows.filter((r) => wanted.has(r.id)).map((r) => structuredClone(r));
  }
}

const fixedAt = (fixed: string, introduced = '0'): AffectedRange => ({ type: 'ECOSYSTEM', events: [{ introduced }, { fixed }] });

function row(vulnId: string, ecosystem: string, pkg: string, extra: Partial<VulnAffected> = {}): VulnAffected {
  return { vulnId, ecosystem, package: pkg, ranges: [], versions: [], source: `osv:${ecosystem.split(':')[0]}`, ...extra };
}

function record(id: string, extra: Partial<VulnRecord> = {}): VulnRecord {
  return { id, aliases: [], related: [], severity: [], references: [], source: 'osv', ...extra };
}

function deb(name: string, version: string, extra: Partial<Package> = {}): Package {
  return { ecosystem: 'deb', name, version, path: 'var/lib/dpkg/status', ...extra };
}

const debian12: OsInfo = { id: 'debian', versionId: '12', codename: 'bookworm' };
const CRITICAL_V31 = 'CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H';
const HIGH_V31 = 'CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:N/A:N';

async function match(inventory: Inventory, rows: VulnAffected[], records: VulnRecord[]) {
  const lookup = new MemoryLookup(rows, records);
  const result = await matchInventory(inventory, lookup);
  return { ...result, lookup };
}

function byName(findings: Finding[], name: string, pkg?: string): Finding {
  const found = findings.filter((f) => f.name === name && (pkg === undefined || f.package.name === pkg));
  assert.equal(found.length, 1, `${found.length} findings ${name} ${pkg ?? ''}: ${JSON.stringify(findings.map((f) => [f.name, f.package.name]))}`);
  return found[0] as Finding;
}

const summary = (findings: Finding[]) => findings.map((f) => `${f.package.name} ${f.name}`).sort();

test('Debian packages match by source package and source version; statuses of the tracker', async () => {
  const inventory: Inventory = {
    os: debian12,
    notes: [],
    packages: [
      deb('libssl3', '3.0.11-1~deb12u1', { sourceName: 'openssl' }),
      deb('openssl', '3.0.11-1~deb12u1'),
      // A binNMU: the binary's "+b1" is not in the source version advisories use.
      deb('libfoo1', '1.2-3+b1', { sourceName: 'foo', sourceVersion: '1.2-3' }),
      deb('bash', '5.2.15-2+b2', { sourceVersion: '5.2.15-2' }),
      deb('tar', '1.34+dfsg-1.2'),
      deb('zlib1g', '1:1.2.13.dfsg-1', { sourceName: 'zlib' }),
      deb('coreutils', '9.1-1'),
    ],
  };
  const rows = [
    row('DSA-5532-1', 'Debian:12', 'openssl', { ranges: [fixedAt('3.0.11-1~deb12u2')] }),
    // Not the image's release.
    row('DSA-5417-1', 'Debian:11', 'openssl', { ranges: [fixedAt('9.9.9-1')] }),
    row('CVE-2024-1111', 'Debian:12', 'foo', { ranges: [fixedAt('1.2-4')], status: 'fixed', source: 'debian-tracker' }),
    row('CVE-2024-2222', 'Debian:12', 'bash', { ranges: [{ type: 'ECOSYSTEM', events: [{ introduced: '0' }] }], status: 'unfixed', distroSeverity: 'low', source: 'debian-tracker' }),
    row('CVE-2005-2541', 'Debian:12', 'tar', { ranges: [{ type: 'ECOSYSTEM', events: [{ introduced: '0' }] }], status: 'will_not_fix', distroSeverity: 'unimportant', source: 'debian-tracker' }),
    row('CVE-2023-4444', 'Debian:12', 'zlib', { ranges: [{ type: 'ECOSYSTEM', events: [{ introduced: '0' }] }], status: 'postponed', distroSeverity: 'medium', source: 'debian-tracker' }),
    // The tracker says this release never had the flaw: OSV's range does not overrule it.
    row('CVE-2023-5555', 'Debian:12', 'coreutils', { ranges: [], status: 'not_affected', source: 'debian-tracker' }),
    row('DEBIAN-CVE-2023-5555', 'Debian:12', 'coreutils', { ranges: [fixedAt('9.9-1')] }),
    // Fixed below the installed version: not a finding.
    row('CVE-2022-0001', 'Debian:12', 'coreutils', { ranges: [fixedAt('8.32-4')], status: 'fixed', source: 'debian-tracker' }),
  ];
  const records = [
    record('DSA-5532-1', { aliases: ['CVE-2023-5363'], summary: 'openssl - security update', details: 'A bug in processing key lengths.', source: 'osv:Debian' }),
    record('DSA-5417-1', { aliases: ['CVE-2023-0001'], source: 'osv:Debian' }),
    record('CVE-2024-1111', { source: 'debian-tracker', details: 'foo overflows.' }),
    record('CVE-2024-2222', { source: 'debian-tracker' }),
    record('CVE-2005-2541', { source: 'debian-tracker' }),
    record('CVE-2023-4444', { source: 'debian-tracker' }),
  ];
  const { findings, notes, lookup } = await match(inventory, rows, records);
  assert.deepEqual(notes, []);
  assert.deepEqual(summary(findings), [
    'bash CVE-2024-2222',
    'libfoo1 CVE-2024-1111',
    'libssl3 CVE-2023-5363',
    'openssl CVE-2023-5363',
    'tar CVE-2005-2541',
    'zlib1g CVE-2023-4444',
  ]);

  const ssl = byName(findings, 'CVE-2023-5363', 'libssl3');
  assert.equal(ssl.vulnId, 'DSA-5532-1');
  assert.equal(ssl.fixedVersion, '3.0.11-1~deb12u2');
  assert.equal(ssl.status, 'fixed');
  assert.equal(ssl.uri, 'https://security-tracker.debian.org/tracker/CVE-2023-5363');
  assert.equal(ssl.title, 'openssl - security update');
  assert.equal(ssl.description, 'A bug in processing key lengths.');
  assert.equal(ssl.severity, 'UNDEFINED');
  assert.deepEqual(ssl.aliases, ['DSA-5532-1']);

  const foo = byName(findings, 'CVE-2024-1111');
  assert.equal(foo.fixedVersion, '1.2-4');
  assert.equal(foo.title, 'CVE-2024-1111 - libfoo1');

  const bash = byName(findings, 'CVE-2024-2222');
  assert.equal(bash.status, 'unfixed');
  assert.equal(bash.fixedVersion, undefined);
  assert.equal(bash.severity, 'LOW');
  assert.equal(bash.distroSeverity, 'low');

  const tar = byName(findings, 'CVE-2005-2541');
  assert.equal(tar.status, 'will_not_fix');
  assert.equal(tar.severity, 'INFORMATIONAL');

  const zlib = byName(findings, 'CVE-2023-4444');
  assert.equal(zlib.status, 'postponed');
  assert.equal(zlib.severity, 'MEDIUM');

  // One query for the release with the six source names of the seven packages.
  assert.deepEqual(lookup.calls.filter((c) => c.startsWith('affected') || c.startsWith('prefix')), ['affected Debian:12 6']);
});

test('the tracker and OSV say the same CVE once, with the fix either knows', async () => {
  const inventory: Inventory = { os: debian12, notes: [], packages: [deb('libexpat1', '2.5.0-1', { sourceName: 'expat' })] };
  const rows = [
    row('CVE-2024-45490', 'Debian:12', 'expat', { ranges: [{ type: 'ECOSYSTEM', events: [{ introduced: '0' }] }], status: 'unfixed', distroSeverity: 'high', source: 'debian-tracker' }),
    row('DLA-3900-1', 'Debian:12', 'expat', { ranges: [fixedAt('2.5.0-1+deb12u1')] }),
    row('DEBIAN-CVE-2024-45490', 'Debian:12', 'expat', { ranges: [fixedAt('2.5.0-1+deb12u1')] }),
  ];
  const records = [
    record('CVE-2024-45490', { source: 'debian-tracker' }),
    record('DLA-3900-1', { aliases: ['CVE-2024-45490'], source: 'osv:Debian', summary: 'expat - security update' }),
    record('DEBIAN-CVE-2024-45490', { related: ['CVE-2024-45490'], source: 'osv:Debian', details: 'An issue in libexpat.' }),
  ];
  const { findings } = await match(inventory, rows, records);
  assert.equal(findings.length, 1, JSON.stringify(summary(findings)));
  const f = byName(findings, 'CVE-2024-45490');
  assert.equal(f.fixedVersion, '2.5.0-1+deb12u1');
  assert.equal(f.status, 'fixed');
  assert.equal(f.severity, 'HIGH');
  assert.deepEqual(f.aliases, ['DEBIAN-CVE-2024-45490', 'DLA-3900-1']);
});

test('an advisory bundling CVEs gives way to the CVEs\' own entries, and stands alone otherwise', async () => {
  const inventory: Inventory = { os: debian12, notes: [], packages: [deb('curl', '7.88.1-10'), deb('wget', '1.21.3-1')] };
  const rows = [
    row('DSA-9000-1', 'Debian:12', 'curl', { ranges: [fixedAt('7.88.1-10+deb12u1')] }),
    row('CVE-2023-0101', 'Debian:12', 'curl', { ranges: [fixedAt('7.88.1-10+deb12u1')], status: 'fixed', source: 'debian-tracker' }),
    row('CVE-2023-0102', 'Debian:12', 'curl', { ranges: [fixedAt('7.88.1-9')], status: 'fixed', source: 'debian-tracker' }),
    row('DSA-9001-1', 'Debian:12', 'wget', { ranges: [fixedAt('1.21.3-1+deb12u1')] }),
  ];
  const records = [
    record('DSA-9000-1', { related: ['CVE-2023-0101', 'CVE-2023-0102'], source: 'osv:Debian' }),
    record('CVE-2023-0101', { source: 'debian-tracker' }),
    record('DSA-9001-1', { related: ['CVE-2023-0201', 'CVE-2023-0202'], source: 'osv:Debian' }),
  ];
  const { findings } = await match(inventory, rows, records);
  assert.deepEqual(summary(findings), ['curl CVE-2023-0101', 'wget DSA-9001-1']);
  assert.equal(byName(findings, 'DSA-9001-1').uri, 'https://security-tracker.debian.org/tracker/DSA-9001-1');
});

test('Alpine packages match by origin in the branch\'s ecosystem; severity from the record\'s CVSS', async () => {
  const inventory: Inventory = {
    os: { id: 'alpine', versionId: '3.20.3' },
    notes: [],
    packages: [
      { ecosystem: 'apk', name: 'libcrypto3', version: '3.3.1-r0', sourceName: 'openssl', path: 'lib/apk/db/installed' },
      { ecosystem: 'apk', name: 'busybox', version: '1.36.1-r29', path: 'lib/apk/db/installed' },
    ],
  };
  const rows = [
    row('CVE-2024-6119', 'Alpine:v3.20', 'openssl', { ranges: [fixedAt('3.3.2-r0')] }),
    row('CVE-2024-0002', 'Alpine:v3.19', 'busybox', { ranges: [fixedAt('1.36.1-r99')] }),
    row('ALPINE-CVE-2023-42363', 'Alpine:v3.20', 'busybox', { ranges: [fixedAt('1.36.1-r29')] }),
  ];
  const records = [record('CVE-2024-6119', { severity: [{ type: 'CVSS_V3', score: HIGH_V31 }], source: 'osv:Alpine' })];
  const { findings, lookup } = await match(inventory, rows, records);
  assert.deepEqual(summary(findings), ['libcrypto3 CVE-2024-6119']);
  const f = byName(findings, 'CVE-2024-6119');
  assert.equal(f.fixedVersion, '3.3.2-r0');
  assert.equal(f.severity, 'HIGH');
  assert.deepEqual(f.cvss, [{ version: '3.1', vector: HIGH_V31, baseScore: 7.5 }]);
  assert.equal(f.uri, 'https://security.alpinelinux.org/vuln/CVE-2024-6119');
  assert.ok(lookup.calls.includes('affected Alpine:v3.20 2'));
});

test('severity: the record\'s CVSS before the distro\'s rating, the rating before nothing', async () => {
  const inventory: Inventory = { os: debian12, notes: [], packages: [deb('a', '1.0-1'), deb('b', '1.0-1'), deb('c', '1.0-1'), deb('d', '1.0-1')] };
  const open = { ranges: [{ type: 'ECOSYSTEM' as const, events: [{ introduced: '0' }] }], status: 'unfixed' as const, source: 'debian-tracker' };
  const rows = [
    row('CVE-2024-0010', 'Debian:12', 'a', { ...open, distroSeverity: 'low' }),
    row('CVE-2024-0011', 'Debian:12', 'b', { ...open, distroSeverity: 'medium' }),
    row('CVE-2024-0012', 'Debian:12', 'c', { ...open, distroSeverity: 'not yet assigned' }),
    row('CVE-2024-0013', 'Debian:12', 'd', { ...open, distroSeverity: 'high' }),
  ];
  const records = [
    record('CVE-2024-0010', { severity: [{ type: 'CVSS_V3', score: CRITICAL_V31 }], source: 'debian-tracker' }),
    record('CVE-2024-0011', { source: 'debian-tracker' }),
    // A vector that is not valid is not a score, and text is never read as one.
    record('CVE-2024-0012', { severity: [{ type: 'CVSS_V3', score: 'CVSS:3.1/AV:N/AC:L' }, { type: 'CVSS_V3', score: 'CRITICAL' }], source: 'debian-tracker' }),
    // A v2 and a v4 vector: v4 is preferred to v2.
    record('CVE-2024-0013', {
      severity: [
        { type: 'CVSS_V2', score: 'AV:L/AC:H/Au:M/C:N/I:N/A:P' },
        { type: 'CVSS_V4', score: 'CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:H/VI:H/VA:H/SC:N/SI:N/SA:N' },
      ],
      source: 'debian-tracker',
    }),
  ];
  const { findings } = await match(inventory, rows, records);
  const a = byName(findings, 'CVE-2024-0010');
  assert.equal(a.severity, 'CRITICAL');
  assert.equal(a.distroSeverity, 'low');
  assert.equal(byName(findings, 'CVE-2024-0011').severity, 'MEDIUM');
  const c = byName(findings, 'CVE-2024-0012');
  assert.equal(c.severity, 'UNDEFINED');
  assert.deepEqual(c.cvss, []);
  const d = byName(findings, 'CVE-2024-0013');
  assert.equal(d.severity, 'CRITICAL');
  assert.deepEqual(d.cvss.map((s) => [s.version, s.baseScore]), [['2.0', 0.8], ['4.0', 9.3]]);
  // Most severe first.
  assert.deepEqual(findings.map((f) => f.severity), ['CRITICAL', 'CRITICAL', 'MEDIUM', 'UNDEFINED']);
});

test('a CVSS vector in an alias\'s record rates a finding whose own record has none', async () => {
  const inventory: Inventory = { os: { id: 'alpine', versionId: '3.20.0' }, notes: [], packages: [{ ecosystem: 'apk', name: 'musl', version: '1.2.5-r0', path: 'lib/apk/db/installed' }] };
  const rows = [row('ALPINE-CVE-2025-0001', 'Alpine:v3.20', 'musl', { ranges: [fixedAt('1.2.5-r1')] })];
  const records = [
    record('ALPINE-CVE-2025-0001', { source: 'osv:Alpine' }),
    record('CVE-2025-0001', { severity: [{ type: 'CVSS_V3', score: CRITICAL_V31 }], source: 'osv:GIT', summary: 'musl overflow' }),
  ];
  const { findings } = await match(inventory, rows, records);
  const f = byName(findings, 'CVE-2025-0001');
  assert.equal(f.severity, 'CRITICAL');
  assert.equal(f.vulnId, 'ALPINE-CVE-2025-0001');
  assert.equal(f.title, 'musl overflow');
});

test('Ubuntu: LTS ecosystems, the archive\'s word over Ubuntu Pro\'s, Ubuntu priorities', async () => {
  const inventory: Inventory = {
    os: { id: 'ubuntu', versionId: '22.04', codename: 'jammy' },
    notes: [],
    packages: [deb('libc6', '2.35-0ubuntu3.6', { sourceName: 'glibc' }), deb('vim', '2:8.2.3995-1ubuntu2.15')],
  };
  const rows = [
    row('UBUNTU-CVE-2024-2961', 'Ubuntu:22.04:LTS', 'glibc', { ranges: [fixedAt('2.35-0ubuntu3.7')], distroSeverity: 'high' }),
    // The archive fixed it at a version below the installed one; Pro's entry does not count.
    row('UBUNTU-CVE-2023-9999', 'Ubuntu:22.04:LTS', 'vim', { ranges: [fixedAt('2:8.2.3995-1ubuntu2.10')] }),
    row('UBUNTU-CVE-2023-9999', 'Ubuntu:Pro:22.04:LTS', 'vim', { ranges: [fixedAt('2:8.2.3995-1ubuntu2.16+esm1')] }),
    // Only Ubuntu Pro has it: it counts.
    row('UBUNTU-CVE-2024-7777', 'Ubuntu:Pro:22.04:LTS', 'vim', { ranges: [fixedAt('2:8.2.3995-1ubuntu2.16+esm1')] }),
    row('UBUNTU-CVE-2024-8888', 'Ubuntu:20.04:LTS', 'vim', { ranges: [fixedAt('2:9.9-1')] }),
  ];
  const records = [
    record('UBUNTU-CVE-2024-2961', { related: ['CVE-2024-2961'], severity: [{ type: 'Ubuntu', score: 'high' }], source: 'osv:Ubuntu' }),
    record('UBUNTU-CVE-2024-7777', { severity: [{ type: 'Ubuntu', score: 'negligible' }], source: 'osv:Ubuntu' }),
  ];
  const { findings } = await match(inventory, rows, records);
  assert.deepEqual(summary(findings), ['libc6 CVE-2024-2961', 'vim CVE-2024-7777']);
  const glibc = byName(findings, 'CVE-2024-2961');
  assert.equal(glibc.severity, 'HIGH');
  assert.equal(glibc.uri, 'https://ubuntu.com/security/CVE-2024-2961');
  assert.equal(glibc.fixedVersion, '2.35-0ubuntu3.7');
  const vim = byName(findings, 'CVE-2024-7777');
  assert.equal(vim.severity, 'INFORMATIONAL');
  assert.equal(vim.distroSeverity, 'negligible');
});

test('RPM distros: binary or source names, Red Hat\'s CPE ecosystems, Red Hat impact ratings', async () => {
  const rpm = (name: string, version: string, sourceName?: string): Package => ({ ecosystem: 'rpm', name, version, path: 'var/lib/rpm/rpmdb.sqlite', ...(sourceName ? { sourceName } : {}) });
  const packages = [rpm('openssl-libs', '1:3.0.7-27.el9', 'openssl'), rpm('curl-minimal', '7.76.1-29.el9', 'curl')];
  const rows = [
    row('RHSA-2024:1001', 'Red Hat:enterprise_linux:9::baseos', 'openssl-libs', { ranges: [fixedAt('1:3.0.7-28.el9_4')], distroSeverity: 'Moderate' }),
    row('RHSA-2024:1002', 'Red Hat:rhel_eus:9.2::baseos', 'openssl-libs', { ranges: [fixedAt('1:3.0.7-99.el9_2')] }),
    row('RHSA-2024:1003', 'Red Hat:enterprise_linux:8::baseos', 'curl', { ranges: [fixedAt('9.9-1.el8')] }),
    row('RHSA-2024:1004', 'Red Hat:enterprise_linux:9::appstream', 'curl', { ranges: [fixedAt('7.76.1-31.el9')], distroSeverity: 'Important' }),
    row('RLSA-2024:1001', 'Rocky Linux:9', 'openssl-libs', { ranges: [fixedAt('1:3.0.7-28.el9_4')] }),
    row('ALSA-2024:1004', 'AlmaLinux:9', 'curl-minimal', { ranges: [fixedAt('7.76.1-31.el9')] }),
  ];
  const records = [
    record('RHSA-2024:1001', { related: ['CVE-2024-0727'], source: 'osv:Red Hat' }),
    record('RHSA-2024:1004', { related: ['CVE-2024-2004', 'CVE-2024-2398'], source: 'osv:Red Hat' }),
    record('RLSA-2024:1001', { related: ['CVE-2024-0727'], severity: [{ type: 'CVSS_V3', score: HIGH_V31 }], source: 'osv:Rocky Linux' }),
    record('ALSA-2024:1004', { related: ['CVE-2024-2004'], source: 'osv:AlmaLinux' }),
  ];

  const rhel = await match({ os: { id: 'rhel', versionId: '9.4' }, notes: [], packages }, rows, records);
  assert.deepEqual(summary(rhel.findings), ['curl-minimal RHSA-2024:1004', 'openssl-libs RHSA-2024:1001']);
  const curl = byName(rhel.findings, 'RHSA-2024:1004');
  assert.equal(curl.severity, 'HIGH');
  assert.equal(curl.uri, 'https://access.redhat.com/errata/RHSA-2024:1004');
  assert.equal(byName(rhel.findings, 'RHSA-2024:1001').severity, 'MEDIUM');
  assert.deepEqual(rhel.lookup.calls.filter((c) => !c.startsWith('records')), ['prefix Red Hat:enterprise_linux:9 4']);

  const rocky = await match({ os: { id: 'rocky', versionId: '9.4' }, notes: [], packages }, rows, records);
  assert.deepEqual(summary(rocky.findings), ['openssl-libs RLSA-2024:1001']);
  assert.equal(rocky.findings[0]?.severity, 'HIGH');
  assert.equal(rocky.findings[0]?.fixedVersion, '1:3.0.7-28.el9_4');
  assert.equal(rocky.findings[0]?.uri, 'https://osv.dev/vulnerability/RLSA-2024%3A1001');

  const alma = await match({ os: { id: 'almalinux', versionId: '9.4' }, notes: [], packages }, rows, records);
  assert.deepEqual(summary(alma.findings), ['curl-minimal ALSA-2024:1004']);
});

test('OS packages: never language feeds; an OS without advisories is noted', async () => {
  const packages = [deb('requests', '2.0.0-1'), { ecosystem: 'rpm' as const, name: 'bash', version: '5.1-1', path: 'var/lib/rpm/rpmdb.sqlite' }];
  const rows = [row('GHSA-aaaa-bbbb-cccc', 'PyPI', 'requests', { ranges: [fixedAt('3.0.0')] }), row('GHSA-aaaa-bbbb-dddd', 'npm', 'bash', { ranges: [{ type: 'SEMVER', events: [{ introduced: '0' }] }] })];
  const { findings, notes, lookup } = await match({ os: debian12, notes: [], packages }, rows, []);
  assert.deepEqual(findings, []);
  assert.deepEqual(notes, ["1 rpm package not matched: the image's OS is Debian 12, whose advisories describe deb packages"]);
  assert.ok(!lookup.calls.some((c) => c.includes('PyPI') || c.includes('npm')));

  const fedora = await match({ os: { id: 'fedora', versionId: '40' }, notes: [], packages: [packages[1] as Package, packages[1] as Package] }, rows, []);
  assert.deepEqual(fedora.notes, ['2 rpm packages not matched: Fedora has no advisories in OSV']);
  const none = await match({ notes: [], packages: [packages[0] as Package] }, rows, []);
  assert.deepEqual(none.notes, ["1 deb package not matched: the image's operating system is unknown"]);
});

test('npm: SEMVER ranges and versions lists; GHSA and PYSEC of one CVE are one finding', async () => {
  const npm = (name: string, version: string): Package => ({ ecosystem: 'npm', name, version, path: `app/node_modules/${name}/package.json` });
  const inventory: Inventory = {
    notes: [],
    packages: [npm('lodash', '4.17.20'), npm('minimist', '1.2.5'), npm('listed', '1.0.0'), npm('listed-other', '1.0.1'), npm('old', '0.9.0'), npm('two-ranges', '3.1.0'), npm('two-ranges', '2.1.0')],
  };
  const rows = [
    row('GHSA-35jh-r3h4-6jhm', 'npm', 'lodash', { ranges: [{ type: 'SEMVER', events: [{ introduced: '0' }, { fixed: '4.17.21' }] }] }),
    row('GHSA-xvch-5gv4-984h', 'npm', 'minimist', { ranges: [{ type: 'SEMVER', events: [{ introduced: '0' }, { fixed: '0.2.4' }, { introduced: '1.0.0' }, { fixed: '1.2.6' }] }] }),
    // Only a versions list (and a GIT range, which is not evaluated).
    row('GHSA-list-0000-0001', 'npm', 'listed', { ranges: [{ type: 'GIT', events: [{ introduced: '0' }, { fixed: 'abc123' }] }], versions: ['1.0.0', '1.0.2'] }),
    row('GHSA-list-0000-0002', 'npm', 'listed-other', { versions: ['1.0.0', '1.0.2'] }),
    // An introduction and a fix at one version: an empty range.
    row('GHSA-empty-0000-0001', 'npm', 'old', { ranges: [{ type: 'SEMVER', events: [{ introduced: '0.9.0' }, { fixed: '0.9.0' }] }] }),
    row('GHSA-two0-0000-0001', 'npm', 'two-ranges', {
      ranges: [
        { type: 'SEMVER', events: [{ introduced: '1.0.0' }, { fixed: '1.5.0' }] },
        { type: 'SEMVER', events: [{ introduced: '3.0.0' }, { fixed: '3.2.0' }] },
      ],
    }),
  ];
  const records = [
    record('GHSA-35jh-r3h4-6jhm', { aliases: ['CVE-2021-23337'], severity: [{ type: 'CVSS_V3', score: 'CVSS:3.1/AV:N/AC:L/PR:H/UI:N/S:U/C:H/I:H/A:H' }], summary: 'Command Injection in lodash', source: 'osv:npm' }),
    record('GHSA-xvch-5gv4-984h', { aliases: ['CVE-2021-44906'], source: 'osv:npm' }),
    record('GHSA-list-0000-0001', { source: 'osv:npm' }),
    record('GHSA-two0-0000-0001', { source: 'osv:npm' }),
  ];
  const { findings, lookup } = await match(inventory, rows, records);
  assert.deepEqual(summary(findings), ['listed GHSA-list-0000-0001', 'lodash CVE-2021-23337', 'minimist CVE-2021-44906', 'two-ranges GHSA-two0-0000-0001']);
  const lodash = byName(findings, 'CVE-2021-23337');
  assert.equal(lodash.fixedVersion, '4.17.21');
  assert.equal(lodash.severity, 'HIGH');
  assert.equal(lodash.uri, 'https://github.com/advisories/GHSA-35jh-r3h4-6jhm');
  assert.equal(lodash.title, 'Command Injection in lodash');
  assert.equal(byName(findings, 'CVE-2021-44906').fixedVersion, '1.2.6');
  assert.equal(byName(findings, 'GHSA-list-0000-0001').fixedVersion, undefined);
  const two = byName(findings, 'GHSA-two0-0000-0001');
  assert.equal(two.package.version, '3.1.0');
  assert.equal(two.fixedVersion, '3.2.0');
  assert.deepEqual(lookup.calls.filter((c) => !c.startsWith('records')), ['affected npm 6']);
});

test('PyPI: normalised names; aliases from several databases are one finding', async () => {
  const py = (name: string, version: string): Package => ({ ecosystem: 'pypi', name, version, path: `usr/lib/python3/site-packages/${name}.dist-info/METADATA` });
  const inventory: Inventory = { notes: [], packages: [py('PyYAML', '5.3'), py('Zope.Interface', '5.0.0'), py('requests', '2.31.0')] };
  const rows = [
    row('PYSEC-2021-142', 'PyPI', 'pyyaml', { ranges: [fixedAt('5.4')] }),
    row('GHSA-8q59-q68h-6hv4', 'PyPI', 'pyyaml', { ranges: [fixedAt('5.4', '5.1')] }),
    row('PYSEC-0000-0001', 'PyPI', 'zope-interface', { ranges: [fixedAt('5.0.1')] }),
    row('PYSEC-2023-74', 'PyPI', 'requests', { ranges: [fixedAt('2.31.0', '2.3.0')] }),
  ];
  const records = [
    record('PYSEC-2021-142', { aliases: ['CVE-2020-14343', 'GHSA-8q59-q68h-6hv4'], source: 'osv:PyPI' }),
    record('GHSA-8q59-q68h-6hv4', { aliases: ['CVE-2020-14343'], severity: [{ type: 'CVSS_V3', score: CRITICAL_V31 }], source: 'osv:PyPI' }),
    record('PYSEC-0000-0001', { source: 'osv:PyPI' }),
  ];
  const { findings } = await match(inventory, rows, records);
  assert.deepEqual(summary(findings), ['PyYAML CVE-2020-14343', 'Zope.Interface PYSEC-0000-0001']);
  const yaml = byName(findings, 'CVE-2020-14343');
  assert.equal(yaml.severity, 'CRITICAL');
  assert.equal(yaml.fixedVersion, '5.4');
  assert.deepEqual(yaml.aliases, ['GHSA-8q59-q68h-6hv4', 'PYSEC-2021-142']);
  assert.equal(byName(findings, 'PYSEC-0000-0001').uri, 'https://osv.dev/vulnerability/PYSEC-0000-0001');
});

test('Go modules and the standard library; Maven; crates.io', async () => {
  const inventory: Inventory = {
    notes: [],
    packages: [
      { ecosystem: 'go', name: 'stdlib', version: '1.21.3', path: 'usr/bin/app' },
      { ecosystem: 'go', name: 'golang.org/x/net', version: 'v0.7.0', path: 'usr/bin/app' },
      { ecosystem: 'go', name: 'example.com/main', version: '(devel)', path: 'usr/bin/app' },
      { ecosystem: 'maven', name: 'org.apache.logging.log4j:log4j-core', version: '2.14.1', path: 'app/lib/log4j-core-2.14.1.jar' },
      { ecosystem: 'maven', name: 'org.apache.logging.log4j:log4j-api', version: '2.17.1', path: 'app/lib/log4j-api-2.17.1.jar' },
      { ecosystem: 'cargo', name: 'smallvec', version: '1.6.0', path: 'app/Cargo.lock' },
    ],
  };
  const rows = [
    row('GO-2023-2185', 'Go', 'stdlib', { ranges: [{ type: 'SEMVER', events: [{ introduced: '0' }, { fixed: '1.20.11' }, { introduced: '1.21.0-0' }, { fixed: '1.21.4' }] }] }),
    row('GO-2023-2102', 'Go', 'golang.org/x/net', { ranges: [{ type: 'SEMVER', events: [{ introduced: '0' }, { fixed: '0.17.0' }] }] }),
    row('GHSA-jfh8-c2jp-5v3q', 'Maven', 'org.apache.logging.log4j:log4j-core', { ranges: [fixedAt('2.15.0', '2.0-beta9')] }),
    row('GHSA-jfh8-c2jp-5v3q', 'Maven', 'org.apache.logging.log4j:log4j-api', { ranges: [fixedAt('2.15.0', '2.0-beta9')] }),
    row('RUSTSEC-2021-0003', 'crates.io', 'smallvec', { ranges: [{ type: 'SEMVER', events: [{ introduced: '1.6.0' }, { fixed: '1.6.1' }] }] }),
  ];
  const records = [
    record('GO-2023-2185', { aliases: ['CVE-2023-45283'], source: 'osv:Go' }),
    record('GO-2023-2102', { aliases: ['CVE-2023-39325', 'GHSA-4374-p667-p6c8'], source: 'osv:Go' }),
    record('GHSA-4374-p667-p6c8', { aliases: ['CVE-2023-39325'], severity: [{ type: 'CVSS_V3', score: HIGH_V31 }], source: 'osv:Go' }),
    record('GHSA-jfh8-c2jp-5v3q', { aliases: ['CVE-2021-44228'], severity: [{ type: 'CVSS_V3', score: 'CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:C/C:H/I:H/A:H' }], source: 'osv:Maven' }),
    record('RUSTSEC-2021-0003', { aliases: ['CVE-2021-25900'], source: 'osv:crates.io' }),
  ];
  const { findings, notes } = await match(inventory, rows, records);
  assert.deepEqual(summary(findings), [
    'golang.org/x/net CVE-2023-39325',
    'org.apache.logging.log4j:log4j-core CVE-2021-44228',
    'smallvec CVE-2021-25900',
    'stdlib CVE-2023-45283',
  ]);
  const stdlib = byName(findings, 'CVE-2023-45283');
  assert.equal(stdlib.fixedVersion, '1.21.4');
  assert.equal(stdlib.uri, 'https://pkg.go.dev/vuln/GO-2023-2185');
  assert.equal(stdlib.severity, 'UNDEFINED');
  const net = byName(findings, 'CVE-2023-39325');
  assert.equal(net.fixedVersion, '0.17.0');
  // The GO record has no score; its GHSA alias, which did not match by itself, has one.
  assert.equal(net.severity, 'HIGH');
  assert.equal(net.package.version, 'v0.7.0');
  const log4j = byName(findings, 'CVE-2021-44228');
  assert.equal(log4j.severity, 'CRITICAL');
  assert.equal(log4j.fixedVersion, '2.15.0');
  assert.equal(byName(findings, 'CVE-2021-25900').fixedVersion, '1.6.1');
  assert.deepEqual(notes, ['1 package has a version that cannot be ordered (e.g. example.com/main "(devel)"): only exact version lists were checked']);
});

test('last_affected and limit events', async () => {
  const crate = (name: string, version: string): Package => ({ ecosystem: 'cargo', name, version, path: 'Cargo.lock' });
  const inventory: Inventory = {
    notes: [],
    packages: [crate('last', '1.2.0'), crate('last', '1.2.1'), crate('limited', '1.4.0'), crate('limited', '2.1.0'), crate('limited-star', '9.0.0'), crate('unsorted', '1.5.0')],
  };
  const rows = [
    row('RUSTSEC-0000-0001', 'crates.io', 'last', { ranges: [{ type: 'SEMVER', events: [{ introduced: '1.0.0' }, { last_affected: '1.2.0' }] }] }),
    row('RUSTSEC-0000-0002', 'crates.io', 'limited', { ranges: [{ type: 'SEMVER', events: [{ introduced: '1.0.0' }, { limit: '2.0.0' }] }] }),
    row('RUSTSEC-0000-0003', 'crates.io', 'limited-star', { ranges: [{ type: 'SEMVER', events: [{ introduced: '1.0.0' }, { limit: '*' }] }] }),
    // Events out of order are sorted by version before the walk.
    row('RUSTSEC-0000-0004', 'crates.io', 'unsorted', { ranges: [{ type: 'SEMVER', events: [{ fixed: '2.0.0' }, { introduced: '1.0.0' }, { fixed: '1.4.0' }, { introduced: '1.5.0' }] }] }),
  ];
  const { findings } = await match(inventory, rows, []);
  assert.deepEqual(
    findings.map((f) => `${f.package.name}@${f.package.version} ${f.name} ${f.fixedVersion ?? '-'}`).sort(),
    ['last@1.2.0 RUSTSEC-0000-0001 -', 'limited-star@9.0.0 RUSTSEC-0000-0003 -', 'limited@1.4.0 RUSTSEC-0000-0002 -', 'unsorted@1.5.0 RUSTSEC-0000-0004 2.0.0'],
  );
  for (const f of findings) assert.equal(f.status, f.fixedVersion ? 'fixed' : 'unfixed');
});

test('an empty inventory asks nothing', async () => {
  const { findings, notes, lookup } = await match({ os: debian12, notes: [], packages: [] }, [], []);
  assert.deepEqual([findings, notes, lookup.calls], [[], [], []]);
});

test('a Matcher kept for many inventories asks the database once per package and record', async () => {
  const rows = [
    row('CVE-2024-3333', 'Debian:12', 'openssl', { ranges: [fixedAt('3.0.13-1~deb12u1')], status: 'fixed', source: 'debian-tracker', distroSeverity: 'high' }),
    row('CVE-2024-4444', 'Debian:12', 'zlib', { ranges: [fixedAt('1:1.2.13.dfsg-2')], status: 'fixed', source: 'debian-tracker' }),
  ];
  const records = [record('CVE-2024-3333', { source: 'debian-tracker', summary: 'openssl flaw' }), record('CVE-2024-4444', { source: 'debian-tracker' })];
  const lookup = new MemoryLookup(rows, records);
  const matcher = new Matcher(lookup);
  const old = deb('libssl3', '3.0.11-1~deb12u1', { sourceName: 'openssl' });
  const patched = deb('libssl3', '3.0.13-1~deb12u1', { sourceName: 'openssl' });
  const zlib = deb('zlib1g', '1:1.2.13.dfsg-1', { sourceName: 'zlib' });

  const first = await matcher.match({ os: debian12, notes: [], packages: [old] });
  const again = await matcher.match({ os: debian12, notes: [], packages: [{ ...old, path: 'other/status' }] });
  assert.deepEqual(summary(first.findings), ['libssl3 CVE-2024-3333']);
  assert.deepEqual(summary(again.findings), ['libssl3 CVE-2024-3333']);
  assert.equal(again.findings[0]?.package.path, 'other/status');
  const callsAfterTwo = [...lookup.calls];
  assert.deepEqual(callsAfterTwo, ['affected Debian:12 1', 'records 1']);

  // Another version of a known package: evaluated anew, nothing asked.
  const fixed = await matcher.match({ os: debian12, notes: [], packages: [patched] });
  assert.deepEqual(fixed.findings, []);
  assert.deepEqual(lookup.calls, callsAfterTwo);

  // A new package: only its name is asked for.
  const both = await matcher.match({ os: debian12, notes: [], packages: [old, zlib] });
  assert.deepEqual(summary(both.findings), ['libssl3 CVE-2024-3333', 'zlib1g CVE-2024-4444']);
  assert.deepEqual(lookup.calls.slice(callsAfterTwo.length), ['affected Debian:12 1', 'records 1']);

  // Findings of one draft do not share lists.
  (first.findings[0] as Finding).references.push('https://example.test/');
  assert.deepEqual(again.findings[0]?.references, []);
  const third = await matcher.match({ os: debian12, notes: [], packages: [old] });
  assert.deepEqual(third.findings[0]?.references, []);
  assert.equal(third.findings[0]?.severity, 'HIGH');
});
