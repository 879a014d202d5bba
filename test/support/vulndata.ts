import { createWriteStream } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import yazl from 'yazl';
import type { ImagePackage } from './scan-images.ts';

/**
 * Vulnerability data for the scanner's tests, in the formats `berth vulndb import` reads: OSV's
 * per-ecosystem `all.zip` exports (written as `<dir>/<Ecosystem>/all.zip`, the layout of OSV's
 * bucket) and the Debian security tracker's JSON. The records name packages really present in
 * the images of scan-images.ts, at versions derived from what those images hold, and each
 * builder returns the findings a correct scanner must report, exactly.
 *
 * The records are made up (ids CVE-2099-*, BERTH-*), except the Go ones Debian ships in
 * golang-golang-x-vuln-dev's test data, which are real Go vulnerability database records
 * (https://pkg.go.dev/vuln/) used here as data.
 */

export type Severity = 'CRITICAL' | 'HIGH' | 'MEDIUM' | 'LOW' | 'INFORMATIONAL' | 'UNDEFINED';

/** CVSS v3.1 vectors whose base scores are known (computed by the specification's formulas). */
export const CVSS = {
  critical10: { vector: 'CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:C/C:H/I:H/A:H', baseScore: 10.0, severity: 'CRITICAL' },
  critical98: { vector: 'CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H', baseScore: 9.8, severity: 'CRITICAL' },
  high88: { vector: 'CVSS:3.1/AV:N/AC:L/PR:N/UI:R/S:U/C:H/I:H/A:H', baseScore: 8.8, severity: 'HIGH' },
  high75: { vector: 'CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:N/I:N/A:H', baseScore: 7.5, severity: 'HIGH' },
  medium59: { vector: 'CVSS:3.1/AV:N/AC:H/PR:N/UI:N/S:U/C:N/I:N/A:H', baseScore: 5.9, severity: 'MEDIUM' },
  medium54: { vector: 'CVSS:3.1/AV:N/AC:L/PR:N/UI:R/S:U/C:L/I:L/A:N', baseScore: 5.4, severity: 'MEDIUM' },
  low25: { vector: 'CVSS:3.1/AV:L/AC:H/PR:L/UI:N/S:U/C:L/I:N/A:N', baseScore: 2.5, severity: 'LOW' },
} as const satisfies Record<string, { vector: string; baseScore: number; severity: Severity }>;

type Cvss = (typeof CVSS)[keyof typeof CVSS];

/** A finding the scanner must report. */
export interface ExpectedFinding {
  /** The name findings show: the CVE alias when the record has one, else the record's id. */
  name: string;
  vulnId: string;
  /** The installed package as the image names it (the binary package for distros). */
  package: string;
  /** Its installed version as the image records it. */
  version: string;
  severity: Severity;
  /** First fixed version, as the source writes it; absent when there is none. */
  fixedVersion?: string;
  status: 'fixed' | 'unfixed' | 'will_not_fix' | 'postponed';
  cvss?: Cvss;
  /** The distro's own rating when the severity came from it. */
  distroSeverity?: string;
}

/** A record that names a package of the image but must give no finding, and why. */
export interface NotExpected {
  name: string;
  package: string;
  why: string;
}

export interface VulnData {
  /** Files to hand to `berth vulndb import`. */
  files: string[];
  expected: ExpectedFinding[];
  notExpected: NotExpected[];
}

interface OsvAffected {
  package: { ecosystem: string; name: string };
  ranges?: Array<{ type: 'ECOSYSTEM' | 'SEMVER'; events: Array<{ introduced?: string; fixed?: string; last_affected?: string; limit?: string }> }>;
  versions?: string[];
}

export interface OsvRecord {
  schema_version: string;
  id: string;
  aliases?: string[];
  summary?: string;
  details?: string;
  published: string;
  modified: string;
  severity?: Array<{ type: string; score: string }>;
  affected: OsvAffected[];
  references?: Array<{ type: string; url: string }>;
}

const DAY_MS = 86_400_000;

/** When records were last modified: recent, so the database is not too old to scan with. */
function stamp(modifiedAt: Date): { published: string; modified: string } {
  return { published: new Date(modifiedAt.getTime() - 30 * DAY_MS).toISOString().replace(/\.\d{3}Z$/, 'Z'), modified: modifiedAt.toISOString().replace(/\.\d{3}Z$/, 'Z') };
}

export function osvRecord(id: string, cve: string | undefined, summary: string, affected: OsvAffected[], cvss: Cvss | undefined, modifiedAt: Date): OsvRecord {
  return {
    schema_version: '1.6.0',
    id,
    ...(cve ? { aliases: [cve] } : {}),
    summary,
    details: `${summary}. Made up for Berth's scanner tests; no such vulnerability exists.`,
    ...stamp(modifiedAt),
    ...(cvss ? { severity: [{ type: 'CVSS_V3', score: cvss.vector }] } : {}),
    affected,
    references: [{ type: 'WEB', url: `https://berth.invalid/advisories/${id}` }],
  };
}

export function fixedRange(type: 'ECOSYSTEM' | 'SEMVER', fixed: string, introduced = '0'): NonNullable<OsvAffected['ranges']> {
  return [{ type, events: [{ introduced }, { fixed }] }];
}

/** Writes OSV records as `<dir>/<ecosystem dir>/all.zip`, one `<id>.json` per record, as OSV's export does. */
export async function writeOsvZip(dir: string, ecosystemDir: string, records: OsvRecord[]): Promise<string> {
  const file = path.join(dir, ecosystemDir, 'all.zip');
  await mkdir(path.dirname(file), { recursive: true });
  const zip = new yazl.ZipFile();
  for (const r of records) zip.addBuffer(Buffer.from(JSON.stringify(r, null, 2)), `${r.id}.json`, { mtime: new Date(r.modified) });
  zip.end();
  await pipeline(zip.outputStream, createWriteStream(file));
  return file;
}

// --- Debian ---------------------------------------------------------------------------------

/** The source packages the Debian data is about, in order of preference, from what minbase holds. */
const DEBIAN_ROLES = {
  /** OSV record fixed above the installed version: affected. */
  osvFixedAbove: ['zlib', 'xz-utils', 'bzip2'],
  /** OSV record fixed below: not affected. */
  osvFixedBelow: ['bash', 'grep', 'sed'],
  /** Tracker: open, no fix (many binaries: findings to paginate through). */
  unfixed: ['util-linux', 'pam', 'systemd'],
  /** Tracker: open, "ignored" (will not fix). */
  willNotFix: ['tar', 'coreutils', 'findutils'],
  /** Tracker: open, "postponed". */
  postponed: ['shadow', 'perl', 'ncurses'],
  /** Tracker: fixed_version "0" (this release was never affected). */
  notAffected: ['gzip', 'dash', 'diffutils'],
  /** Tracker: resolved, fixed between the source version and a binNMU's binary version. */
  trackerFixed: ['e2fsprogs', 'libcap-ng', 'bzip2', 'libselinux'],
} as const;

type DebianRole = keyof typeof DEBIAN_ROLES;

/** One source package of the image with its binaries. */
interface DebianSource {
  name: string;
  version: string;
  binaries: ImagePackage[];
}

function pickSources(packages: ImagePackage[]): Record<DebianRole, DebianSource> {
  const sources = new Map<string, DebianSource>();
  for (const p of packages) {
    const name = p.sourceName ?? p.name;
    const s = sources.get(name) ?? { name, version: p.sourceVersion ?? p.version, binaries: [] };
    s.binaries.push(p);
    sources.set(name, s);
  }
  const used = new Set<string>();
  const picked: Partial<Record<DebianRole, DebianSource>> = {};
  for (const role of Object.keys(DEBIAN_ROLES) as DebianRole[]) {
    const choices = DEBIAN_ROLES[role] as readonly string[];
    let found = choices.map((c) => sources.get(c)).find((s) => s && !used.has(s.name));
    // A binNMU (binary version above its source's) makes the source-version comparison visible.
    if (role === 'trackerFixed') found = [...sources.values()].find((s) => !used.has(s.name) && s.binaries.some((b) => b.version !== s.version && b.version.startsWith(s.version))) ?? found;
    found ??= [...sources.values()].find((s) => !used.has(s.name));
    if (!found) throw new Error(`the image has too few source packages for the Debian test data (role ${role})`);
    used.add(found.name);
    picked[role] = found;
  }
  return picked as Record<DebianRole, DebianSource>;
}

function debianFindings(source: DebianSource, f: Omit<ExpectedFinding, 'package' | 'version'>): ExpectedFinding[] {
  return source.binaries.map((b) => ({ ...f, package: b.name, version: b.version }));
}

/**
 * OSV "Debian:12" records and a Debian tracker JSON about source packages the debootstrap
 * image holds (by `packages`, read from its dpkg status), covering every status the tracker
 * gives: fixed above and below the installed version, unfixed, will-not-fix, postponed and
 * not-affected. Expected findings are one per binary package of an affected source.
 */
export async function debianVulnData(dir: string, packages: ImagePackage[], options: { modifiedAt?: Date } = {}): Promise<VulnData & { sources: Record<DebianRole, DebianSource> }> {
  const at = options.modifiedAt ?? new Date();
  const s = pickSources(packages);
  const eco = 'Debian:12';
  const expected: ExpectedFinding[] = [];
  const notExpected: NotExpected[] = [];

  // A fixed version just above the source version ("+berth1" sorts after the end of a version in
  // dpkg's order) and one just below ("~" sorts before it).
  const above = `${s.osvFixedAbove.version}+berth1`;
  const below = `${s.osvFixedBelow.version}~berth1`;
  const osv = [
    osvRecord('DSA-9901-1', 'CVE-2099-1001', `${s.osvFixedAbove.name}: memory corruption`, [{ package: { ecosystem: eco, name: s.osvFixedAbove.name }, ranges: fixedRange('ECOSYSTEM', above) }], CVSS.critical98, at),
    osvRecord('DSA-9902-1', 'CVE-2099-1002', `${s.osvFixedBelow.name}: fixed before this release`, [{ package: { ecosystem: eco, name: s.osvFixedBelow.name }, ranges: fixedRange('ECOSYSTEM', below) }], CVSS.high75, at),
  ];
  expected.push(...debianFindings(s.osvFixedAbove, { name: 'CVE-2099-1001', vulnId: 'DSA-9901-1', severity: 'CRITICAL', fixedVersion: above, status: 'fixed', cvss: CVSS.critical98 }));
  for (const b of s.osvFixedBelow.binaries) notExpected.push({ name: 'CVE-2099-1002', package: b.name, why: `fixed in ${below}, below ${s.osvFixedBelow.version}` });
  const osvFile = await writeOsvZip(dir, 'Debian', osv);

  // The tracker's JSON: {source: {CVE: {description, releases: {codename: {...}}}}}.
  const release = (fields: Record<string, unknown>, version: string) => ({ bookworm: { repositories: { bookworm: version }, ...fields } });
  const binNmuFixed = trackerFixedVersion(s.trackerFixed);
  const tracker: Record<string, Record<string, unknown>> = {
    [s.unfixed.name]: {
      'CVE-2099-2001': { description: `${s.unfixed.name}: unfixed issue`, scope: 'local', releases: release({ status: 'open', urgency: 'medium' }, s.unfixed.version) },
    },
    [s.willNotFix.name]: {
      'CVE-2099-2002': { description: `${s.willNotFix.name}: minor issue`, scope: 'local', releases: release({ status: 'open', urgency: 'low', nodsa: 'Minor issue', nodsa_reason: 'ignored' }, s.willNotFix.version) },
    },
    [s.postponed.name]: {
      'CVE-2099-2003': { description: `${s.postponed.name}: fix deferred`, scope: 'remote', releases: release({ status: 'open', urgency: 'high', nodsa: 'Minor issue, fix along with a later update', nodsa_reason: 'postponed' }, s.postponed.version) },
    },
    [s.notAffected.name]: {
      'CVE-2099-2004': { description: `${s.notAffected.name}: vulnerable code not present`, scope: 'remote', releases: release({ status: 'resolved', fixed_version: '0', urgency: 'unimportant' }, s.notAffected.version) },
    },
    [s.trackerFixed.name]: {
      'CVE-2099-2005': { description: `${s.trackerFixed.name}: fixed by a later upload`, scope: 'remote', releases: release({ status: 'resolved', fixed_version: binNmuFixed, urgency: 'high' }, s.trackerFixed.version) },
    },
  };
  expected.push(...debianFindings(s.unfixed, { name: 'CVE-2099-2001', vulnId: 'CVE-2099-2001', severity: 'MEDIUM', status: 'unfixed', distroSeverity: 'medium' }));
  expected.push(...debianFindings(s.willNotFix, { name: 'CVE-2099-2002', vulnId: 'CVE-2099-2002', severity: 'LOW', status: 'will_not_fix', distroSeverity: 'low' }));
  expected.push(...debianFindings(s.postponed, { name: 'CVE-2099-2003', vulnId: 'CVE-2099-2003', severity: 'HIGH', status: 'postponed', distroSeverity: 'high' }));
  for (const b of s.notAffected.binaries) notExpected.push({ name: 'CVE-2099-2004', package: b.name, why: 'the tracker says bookworm is not affected' });
  expected.push(...debianFindings(s.trackerFixed, { name: 'CVE-2099-2005', vulnId: 'CVE-2099-2005', severity: 'HIGH', fixedVersion: binNmuFixed, status: 'fixed', distroSeverity: 'high' }));
  const trackerFile = path.join(dir, 'debian-security-tracker.json');
  await writeFile(trackerFile, JSON.stringify(tracker));
  return { files: [osvFile, trackerFile], expected, notExpected, sources: s };
}

/**
 * A fixed version above the source version but below a binNMU's binary version
 * ("1.47.0-2" < "1.47.0-2+b1" < "1.47.0-2+b2"), so only a matcher that compares the source
 * version, as Debian's fixed versions mean, reports it. Without a binNMU, just above.
 */
function trackerFixedVersion(source: DebianSource): string {
  const binNmu = source.binaries.map((b) => /\+b(\d+)$/.exec(b.version)).find((m) => m && Number(m[1]) >= 2);
  return binNmu ? `${source.version}+b1` : `${source.version}+berth1`;
}

// --- the other ecosystems -------------------------------------------------------------------

/** Real Go records shipped by golang-golang-x-vuln-dev, in its test data. */
const GO_VULN_TESTDATA = '/usr/share/gocode/src/golang.org/x/vuln';

async function realGoRecords(): Promise<OsvRecord[]> {
  const text = JSON.parse(await readFile(path.join(GO_VULN_TESTDATA, 'cmd/govulncheck/testdata/vulndb/golang.org/x/text.json'), 'utf8')) as OsvRecord[];
  const stdlib = await Promise.all(['GO-2021-0157', 'GO-2021-0159'].map(async (id) => JSON.parse(await readFile(path.join(GO_VULN_TESTDATA, `client/testdata/vulndb/ID/${id}.json`), 'utf8')) as OsvRecord));
  return [...text, ...stdlib];
}

/** The next patch release of a Go toolchain version: "1.19.8" -> "1.19.9", "1.22" -> "1.22.1". */
function nextPatch(version: string): string {
  const [major, minor, patch] = version.split('.');
  return `${major}.${minor}.${Number(patch ?? 0) + 1}`;
}

export interface LanguageVulnData {
  files: string[];
  /** Expected findings per image, keyed by the builder's name. */
  expected: Record<'alpine' | 'rocky' | 'node' | 'python' | 'go' | 'jar' | 'rust', ExpectedFinding[]>;
  /** Findings of the node image's first layer alone (minimist is removed by the second). */
  nodeBeforeWhiteout: ExpectedFinding[];
  notExpected: Record<'alpine' | 'rocky' | 'node' | 'python' | 'go' | 'jar' | 'rust', NotExpected[]>;
}

/**
 * OSV exports for the other images of scan-images.ts: Alpine:v3.20, Rocky Linux:9, npm, PyPI,
 * Go (the real records plus a stdlib one above the toolchain that built the binary), Maven and
 * crates.io. `goVersion` is goBinaryImage's. `extraNpm` adds one more lodash record (the
 * "newer database" of the continuous-scanning test), returned in `expected.node` too.
 */
export async function languageVulnData(dir: string, options: { goVersion: string; modifiedAt?: Date; extraNpm?: boolean }): Promise<LanguageVulnData> {
  const at = options.modifiedAt ?? new Date();
  const files: string[] = [];
  const r = (id: string, cve: string | undefined, summary: string, eco: string, name: string, ranges: OsvAffected['ranges'], cvss: Cvss | undefined, versions?: string[]) =>
    osvRecord(id, cve, summary, [{ package: { ecosystem: eco, name }, ...(ranges ? { ranges } : {}), ...(versions ? { versions } : {}) }], cvss, at);

  // Alpine: packages by origin (apk's `o:`), versions in apk's order.
  const alpine = 'Alpine:v3.20';
  files.push(
    await writeOsvZip(dir, 'Alpine', [
      r('ALPINE-CVE-2099-3001', 'CVE-2099-3001', 'openssl: key recovery', alpine, 'openssl', fixedRange('ECOSYSTEM', '3.3.2-r0'), CVSS.high75),
      r('ALPINE-CVE-2099-3002', 'CVE-2099-3002', 'busybox: awk overflow', alpine, 'busybox', fixedRange('ECOSYSTEM', '1.36.1-r30'), CVSS.medium54),
      r('ALPINE-CVE-2099-3003', 'CVE-2099-3003', 'musl: fixed in an earlier release', alpine, 'musl', fixedRange('ECOSYSTEM', '1.2.4-r3'), CVSS.critical98),
      r('ALPINE-CVE-2099-3004', 'CVE-2099-3004', 'zlib: fixed in this very release', alpine, 'zlib', fixedRange('ECOSYSTEM', '1.3.1-r1'), CVSS.high75),
    ]),
  );
  // Rocky Linux: binary package names and epoch-qualified versions, as Rocky's advisories give them.
  const rocky = 'Rocky Linux:9';
  files.push(
    await writeOsvZip(dir, 'Rocky Linux', [
      r('RLSA-2099:0001', 'CVE-2099-4001', 'openssl: timing side channel', rocky, 'openssl-libs', fixedRange('ECOSYSTEM', '1:3.0.7-25.el9_3'), CVSS.medium59),
      r('RLSA-2099:0002', 'CVE-2099-4002', 'bash: fixed before 9.3', rocky, 'bash', fixedRange('ECOSYSTEM', '5.1.8-4.el9'), CVSS.high88),
      r('RLSA-2099:0003', 'CVE-2099-4003', 'zlib: heap overflow', rocky, 'zlib', fixedRange('ECOSYSTEM', '1.2.11-40.el9_3'), CVSS.critical98),
    ]),
  );
  const npm = [
    r('GHSA-b001-0001-0001', 'CVE-2099-5001', 'lodash: command injection in template', 'npm', 'lodash', fixedRange('SEMVER', '4.17.21'), CVSS.high75),
    r('GHSA-b001-0002-0002', 'CVE-2099-5002', 'minimist: prototype pollution', 'npm', 'minimist', fixedRange('SEMVER', '1.2.6'), CVSS.critical98),
    r('GHSA-b001-0003-0003', 'CVE-2099-5003', '@babel/traverse: arbitrary code execution', 'npm', '@babel/traverse', fixedRange('SEMVER', '7.23.2'), CVSS.medium54),
    r('GHSA-b001-0004-0004', 'CVE-2099-5004', 'qs: prototype pollution', 'npm', 'qs', fixedRange('SEMVER', '6.7.3', '6.7.0'), CVSS.high75),
    r('GHSA-b001-0005-0005', 'CVE-2099-5005', 'express: fixed before 4.17.1', 'npm', 'express', fixedRange('SEMVER', '4.17.0'), CVSS.high75),
  ];
  if (options.extraNpm) npm.push(r('GHSA-b001-0006-0006', 'CVE-2099-5006', 'lodash: ReDoS in toNumber', 'npm', 'lodash', fixedRange('SEMVER', '4.17.21', '4.0.0'), CVSS.medium59));
  files.push(await writeOsvZip(dir, 'npm', npm));
  files.push(
    await writeOsvZip(dir, 'PyPI', [
      r('PYSEC-2099-1', 'CVE-2099-6001', 'requests: leaks Proxy-Authorization', 'PyPI', 'requests', fixedRange('ECOSYSTEM', '2.31.0'), CVSS.medium59),
      // An exact version list, no ranges.
      r('PYSEC-2099-2', 'CVE-2099-6002', 'urllib3: CRLF injection', 'PyPI', 'urllib3', undefined, CVSS.high75, ['1.26.3', '1.26.4']),
      // OSV spells PyPI names as the project does; matching normalises them (PEP 503).
      r('PYSEC-2099-3', 'CVE-2099-6003', 'PyYAML: arbitrary code execution in full_load', 'PyPI', 'PyYAML', fixedRange('ECOSYSTEM', '5.4'), CVSS.critical98),
      r('PYSEC-2099-4', 'CVE-2099-6004', 'Jinja2: sandbox escape', 'PyPI', 'Jinja2', fixedRange('ECOSYSTEM', '2.11.3'), CVSS.medium54),
      r('PYSEC-2099-5', 'CVE-2099-6005', 'Jinja2: fixed in 2.10 itself', 'PyPI', 'Jinja2', fixedRange('ECOSYSTEM', '2.10'), CVSS.high75),
    ]),
  );
  const stdlibFixed = nextPatch(options.goVersion);
  files.push(
    await writeOsvZip(dir, 'Go', [
      ...(await realGoRecords()),
      r('GO-2099-0001', 'CVE-2099-7001', 'net/http: request smuggling', 'Go', 'stdlib', fixedRange('SEMVER', stdlibFixed), CVSS.high75),
    ]),
  );
  files.push(
    await writeOsvZip(dir, 'Maven', [
      r('GHSA-b002-0001-0001', 'CVE-2099-8001', 'log4j-core: remote code execution via lookups', 'Maven', 'org.apache.logging.log4j:log4j-core', fixedRange('ECOSYSTEM', '2.15.0', '2.0-beta9'), CVSS.critical10),
      r('GHSA-b002-0002-0002', 'CVE-2099-8002', 'log4j-core: fixed in 2.3.1', 'Maven', 'org.apache.logging.log4j:log4j-core', fixedRange('ECOSYSTEM', '2.3.1', '2.0'), CVSS.high75),
      r('GHSA-b002-0003-0003', 'CVE-2099-8003', 'jackson-databind: deserialization gadget', 'Maven', 'com.fasterxml.jackson.core:jackson-databind', fixedRange('ECOSYSTEM', '2.9.10.1', '2.9.0'), CVSS.high88),
    ]),
  );
  files.push(
    await writeOsvZip(dir, 'crates.io', [
      r('RUSTSEC-2099-0001', 'CVE-2099-9001', 'smallvec: buffer overflow in insert_many', 'crates.io', 'smallvec', fixedRange('SEMVER', '1.6.1', '1.0.0'), CVSS.critical98),
      r('RUSTSEC-2099-0002', 'CVE-2099-9002', 'time: segfault in localtime_r', 'crates.io', 'time', fixedRange('SEMVER', '0.2.23'), CVSS.medium59),
      r('RUSTSEC-2099-0003', 'CVE-2099-9003', 'time: fixed in its 0.2 line only', 'crates.io', 'time', fixedRange('SEMVER', '0.2.23', '0.2.0'), CVSS.high75),
      r('RUSTSEC-2099-0004', undefined, 'regex: denial of service on untrusted patterns', 'crates.io', 'regex', fixedRange('SEMVER', '1.5.5'), CVSS.high75),
    ]),
  );

  const f = (name: string, vulnId: string, pkg: string, version: string, cvss: Cvss | undefined, fixedVersion: string | undefined): ExpectedFinding => ({
    name,
    vulnId,
    package: pkg,
    version,
    severity: cvss?.severity ?? 'UNDEFINED',
    ...(fixedVersion ? { fixedVersion } : {}),
    status: fixedVersion ? 'fixed' : 'unfixed',
    ...(cvss ? { cvss } : {}),
  });
  const nodeBeforeWhiteout = [
    f('CVE-2099-5001', 'GHSA-b001-0001-0001', 'lodash', '4.17.20', CVSS.high75, '4.17.21'),
    f('CVE-2099-5002', 'GHSA-b001-0002-0002', 'minimist', '1.2.5', CVSS.critical98, '1.2.6'),
    f('CVE-2099-5003', 'GHSA-b001-0003-0003', '@babel/traverse', '7.22.0', CVSS.medium54, '7.23.2'),
    f('CVE-2099-5004', 'GHSA-b001-0004-0004', 'qs', '6.7.0', CVSS.high75, '6.7.3'),
    ...(options.extraNpm ? [f('CVE-2099-5006', 'GHSA-b001-0006-0006', 'lodash', '4.17.20', CVSS.medium59, '4.17.21')] : []),
  ];
  return {
    files,
    nodeBeforeWhiteout,
    expected: {
      alpine: [
        f('CVE-2099-3001', 'ALPINE-CVE-2099-3001', 'libcrypto3', '3.3.1-r0', CVSS.high75, '3.3.2-r0'),
        f('CVE-2099-3002', 'ALPINE-CVE-2099-3002', 'busybox', '1.36.1-r29', CVSS.medium54, '1.36.1-r30'),
      ],
      rocky: [
        f('CVE-2099-4001', 'RLSA-2099:0001', 'openssl-libs', '1:3.0.7-24.el9', CVSS.medium59, '1:3.0.7-25.el9_3'),
        f('CVE-2099-4003', 'RLSA-2099:0003', 'zlib', '1.2.11-40.el9', CVSS.critical98, '1.2.11-40.el9_3'),
      ],
      node: nodeBeforeWhiteout.filter((x) => x.package !== 'minimist'),
      python: [
        f('CVE-2099-6001', 'PYSEC-2099-1', 'requests', '2.25.0', CVSS.medium59, '2.31.0'),
        f('CVE-2099-6002', 'PYSEC-2099-2', 'urllib3', '1.26.4', CVSS.high75, undefined),
        f('CVE-2099-6003', 'PYSEC-2099-3', 'pyyaml', '5.3.1', CVSS.critical98, '5.4'),
        f('CVE-2099-6004', 'PYSEC-2099-4', 'jinja2', '2.10', CVSS.medium54, '2.11.3'),
      ],
      go: [
        // The real record GO-2021-0113 (golang.org/x/text fixed in 0.3.7), which has no severity.
        f('CVE-2021-38561', 'GO-2021-0113', 'golang.org/x/text', 'v0.3.5', undefined, '0.3.7'),
        f('CVE-2099-7001', 'GO-2099-0001', 'stdlib', options.goVersion, CVSS.high75, stdlibFixed),
      ],
      jar: [
        f('CVE-2099-8001', 'GHSA-b002-0001-0001', 'org.apache.logging.log4j:log4j-core', '2.14.1', CVSS.critical10, '2.15.0'),
        f('CVE-2099-8003', 'GHSA-b002-0003-0003', 'com.fasterxml.jackson.core:jackson-databind', '2.9.10', CVSS.high88, '2.9.10.1'),
      ],
      rust: [
        f('CVE-2099-9001', 'RUSTSEC-2099-0001', 'smallvec', '1.6.0', CVSS.critical98, '1.6.1'),
        f('CVE-2099-9002', 'RUSTSEC-2099-0002', 'time', '0.1.43', CVSS.medium59, '0.2.23'),
        f('RUSTSEC-2099-0004', 'RUSTSEC-2099-0004', 'regex', '1.5.4', CVSS.high75, '1.5.5'),
      ],
    },
    notExpected: {
      alpine: [
        { name: 'CVE-2099-3003', package: 'musl', why: 'fixed in 1.2.4-r3, below 1.2.5-r0' },
        { name: 'CVE-2099-3004', package: 'zlib', why: 'fixed in 1.3.1-r1, the installed version' },
      ],
      rocky: [{ name: 'CVE-2099-4002', package: 'bash', why: 'fixed in 5.1.8-4.el9, below 5.1.8-6.el9_1' }],
      node: [
        { name: 'CVE-2099-5002', package: 'minimist', why: 'removed by a whiteout in the second layer' },
        { name: 'CVE-2099-5005', package: 'express', why: 'fixed in 4.17.0, below 4.17.1' },
      ],
      python: [{ name: 'CVE-2099-6005', package: 'jinja2', why: 'fixed in 2.10, the installed version' }],
      go: [
        { name: 'CVE-2020-14040', package: 'golang.org/x/text', why: 'GO-2020-0015 is fixed in 0.3.3, below v0.3.5' },
        { name: 'CVE-2015-5739', package: 'stdlib', why: 'GO-2021-0157/0159 are fixed in 1.4.3' },
      ],
      jar: [{ name: 'CVE-2099-8002', package: 'org.apache.logging.log4j:log4j-core', why: 'affects 2.0 up to 2.3.1 only' }],
      rust: [{ name: 'CVE-2099-9003', package: 'time', why: 'affects the 0.2 line only' }],
    },
  };
}
