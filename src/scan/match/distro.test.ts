import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { OsInfo, Package } from '../types.ts';
import { advisoryNames, advisoryVersion, distroFeed, distroSeverity, familyOfEcosystem, type DistroFeed } from './distro.ts';

function feed(os: OsInfo): DistroFeed {
  const result = distroFeed(os);
  assert.ok(!('reason' in result), `no feed for ${JSON.stringify(os)}: ${'reason' in result ? result.reason : ''}`);
  return result;
}

function ecosystems(os: OsInfo): string[] {
  return feed(os).queries.map((q) => (q.kind === 'exact' ? `${q.ecosystem} (${q.rank})` : `${q.prefix}* (${q.rank})`));
}

test('OSV ecosystems of each distro release', () => {
  assert.deepEqual(ecosystems({ id: 'debian', versionId: '12', codename: 'bookworm' }), ['Debian:12 (0)']);
  assert.deepEqual(ecosystems({ id: 'debian', versionId: '', codename: 'trixie' }), ['Debian:13 (0)']);
  assert.deepEqual(ecosystems({ id: 'debian', versionId: '', codename: 'sid' }), ['Debian:sid (0)']);
  assert.deepEqual(ecosystems({ id: 'ubuntu', versionId: '22.04', codename: 'jammy' }), [
    'Ubuntu:22.04:LTS (0)',
    'Ubuntu:22.04 (0)',
    'Ubuntu:Pro:22.04:LTS (1)',
    'Ubuntu:Pro:22.04 (1)',
  ]);
  assert.deepEqual(ecosystems({ id: 'ubuntu', versionId: '23.10' }), ['Ubuntu:23.10 (0)', 'Ubuntu:Pro:23.10 (1)']);
  assert.deepEqual(ecosystems({ id: 'alpine', versionId: '3.20.3' }), ['Alpine:v3.20 (0)']);
  assert.deepEqual(ecosystems({ id: 'rocky', versionId: '9.4' }), ['Rocky Linux:9 (0)']);
  assert.deepEqual(ecosystems({ id: 'almalinux', versionId: '9' }), ['AlmaLinux:9 (0)']);
  assert.deepEqual(ecosystems({ id: 'rhel', versionId: '9.4' }), ['Red Hat:enterprise_linux:9* (0)']);
  assert.equal(feed({ id: 'alpine', versionId: '3.19.1' }).packageEcosystem, 'apk');
  assert.equal(feed({ id: 'rocky', versionId: '8.10' }).packageEcosystem, 'rpm');
  assert.equal(feed({ id: 'ubuntu', versionId: '24.04' }).label, 'Ubuntu 24.04');
});

test('Red Hat: the main stream of the major release, not EUS streams nor other releases', () => {
  const query = feed({ id: 'rhel', versionId: '9.4' }).queries[0];
  assert.ok(query?.kind === 'prefix');
  assert.equal(query.accepts('Red Hat:enterprise_linux:9::baseos'), true);
  assert.equal(query.accepts('Red Hat:enterprise_linux:9::appstream'), true);
  assert.equal(query.accepts('Red Hat:enterprise_linux:9'), true);
  assert.equal(query.accepts('Red Hat:enterprise_linux:90::baseos'), false);
  assert.equal(query.accepts('Red Hat:rhel_eus:9.2::baseos'), false);
});

test('operating systems without advisories say why', () => {
  const reason = (os: OsInfo | undefined) => {
    const result = distroFeed(os);
    return 'reason' in result ? result.reason : undefined;
  };
  assert.equal(reason({ id: 'centos', versionId: '7' }), 'CentOS has no advisories in OSV');
  assert.equal(reason({ id: 'fedora', versionId: '40' }), 'Fedora has no advisories in OSV');
  assert.equal(reason({ id: 'plan9', versionId: '4' }), 'no vulnerability feed is known for the operating system "plan9"');
  assert.equal(reason(undefined), "the image's operating system is unknown");
  assert.match(reason({ id: 'debian', versionId: '' }) ?? '', /release of debian is not recognised/);
  assert.match(reason({ id: 'alpine', versionId: 'edge' }) ?? '', /VERSION_ID "edge"/);
});

test('names and versions advisories use for a package', () => {
  const libssl: Package = { ecosystem: 'deb', name: 'libssl3', version: '3.0.11-1~deb12u2+b1', sourceName: 'openssl', sourceVersion: '3.0.11-1~deb12u2', path: 'p' };
  assert.deepEqual(advisoryNames('debian', libssl), ['openssl']);
  assert.equal(advisoryVersion('debian', libssl), '3.0.11-1~deb12u2');
  assert.equal(advisoryVersion('ubuntu', { ...libssl, sourceVersion: undefined }), '3.0.11-1~deb12u2+b1');
  const busybox: Package = { ecosystem: 'apk', name: 'busybox-binsh', version: '1.36.1-r29', sourceName: 'busybox', path: 'p' };
  assert.deepEqual(advisoryNames('alpine', busybox), ['busybox']);
  const rpm: Package = { ecosystem: 'rpm', name: 'openssl-libs', version: '1:3.0.7-27.el9', sourceName: 'openssl', path: 'p' };
  assert.deepEqual(advisoryNames('rocky', rpm), ['openssl-libs', 'openssl']);
  assert.deepEqual(advisoryNames('redhat', { ...rpm, sourceName: 'openssl-libs' }), ['openssl-libs']);
  assert.equal(advisoryVersion('almalinux', rpm), '1:3.0.7-27.el9');
});

test('distro ratings onto ECR severities', () => {
  const table: Array<[Parameters<typeof distroSeverity>[0], string, string | undefined]> = [
    ['debian', 'unimportant', 'INFORMATIONAL'],
    ['debian', 'low', 'LOW'],
    ['debian', 'low*', 'LOW'],
    ['debian', 'medium', 'MEDIUM'],
    ['debian', 'high', 'HIGH'],
    ['debian', 'not yet assigned', undefined],
    ['debian', 'end-of-life', undefined],
    ['ubuntu', 'negligible', 'INFORMATIONAL'],
    ['ubuntu', 'Low', 'LOW'],
    ['ubuntu', 'medium', 'MEDIUM'],
    ['ubuntu', 'high', 'HIGH'],
    ['ubuntu', 'critical', 'CRITICAL'],
    ['ubuntu', 'untriaged', undefined],
    ['redhat', 'Low', 'LOW'],
    ['redhat', 'Moderate', 'MEDIUM'],
    ['rocky', 'Important', 'HIGH'],
    ['almalinux', 'Critical', 'CRITICAL'],
    ['alpine', 'high', undefined],
  ];
  for (const [family, rating, severity] of table) assert.equal(distroSeverity(family, rating), severity, `${family} ${rating}`);
  assert.equal(familyOfEcosystem('Red Hat:enterprise_linux:9::baseos'), 'redhat');
  assert.equal(familyOfEcosystem('Ubuntu:Pro:22.04:LTS'), 'ubuntu');
  assert.equal(familyOfEcosystem('npm'), undefined);
});
