import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { FileFacts } from '../types.ts';
import type { FileAnalyser } from './analyser.ts';
import { dpkgAnalyser } from './dpkg.ts';

async function run(analyser: FileAnalyser, path: string, text: string): Promise<FileFacts> {
  const data = Buffer.from(text);
  return analyser.analyse({ path, size: data.length, mode: 0o644 }, { kind: 'buffer', data }, { tempDir: '/nonexistent', signal: new AbortController().signal });
}

const wants = (path: string) => dpkgAnalyser.wants({ path, size: 100, mode: 0o644 });

test('dpkg wants the status file and status.d stanzas, not their md5sums or anything nested', () => {
  assert.equal(wants('var/lib/dpkg/status'), true);
  assert.equal(wants('var/lib/dpkg/status.d/libssl3'), true);
  assert.equal(wants('var/lib/dpkg/status.d/base'), true);
  assert.equal(wants('var/lib/dpkg/status.d/libssl3.md5sums'), false);
  assert.equal(wants('var/lib/dpkg/status-old'), false);
  assert.equal(wants('var/lib/dpkg/status.d/sub/file'), false);
  assert.equal(wants('var/lib/dpkg/available'), false);
  assert.equal(wants('opt/var/lib/dpkg/status'), false);
  assert.equal(dpkgAnalyser.tooLarge, 'fail');
  assert.equal(dpkgAnalyser.maxBytes, 64 * 1024 * 1024);
});

// Stanzas as dpkg writes them (field order and continuation lines from a Debian 12 image).
const status = [
  'Package: libc6',
  'Status: install ok installed',
  'Priority: optional',
  'Section: libs',
  'Installed-Size: 12991',
  'Maintainer: GNU Libc Maintainers <debian-glibc@lists.debian.org>',
  'Architecture: amd64',
  'Multi-Arch: same',
  'Source: glibc',
  'Version: 2.36-9+deb12u4',
  'Depends: libgcc-s1',
  'Conffiles:',
  ' /etc/ld.so.conf.d/x86_64-linux-gnu.conf d4e7a7b88a71b5ffd9e2644e71a0cfab',
  'Description: GNU C Library: Shared libraries',
  ' Contains the standard libraries that are used by nearly all programs on',
  ' the system.',
  ' .',
  ' Version: 9.9 is not a field',
  '',
  'Package: libssl3',
  'Status: deinstall ok config-files',
  'Architecture: amd64',
  'Source: openssl',
  'Version: 3.0.11-1~deb12u2',
  '',
  'Package: removed-long-ago',
  'Status: purge ok not-installed',
  'Architecture: amd64',
  '',
  'Package: libgcc-s1',
  'Status: hold ok installed',
  'Architecture: amd64',
  'Source: gcc-12 (12.2.0-14)',
  'Version: 12.2.0-14',
  '',
  'Package: libpcre2-8-0',
  'Status: install ok unpacked',
  'Architecture: amd64',
  'Source: pcre2 (10.42-1)',
  'Version: 10.42-1+b1',
  '',
  'Package: half-done',
  'Status: install reinstreq half-installed',
  'Version: 1.0-1',
  '',
  'Package: zlib1g',
  'Status: install ok installed',
  'Architecture: amd64',
  'Source: zlib',
  'Version: 1:1.2.13.dfsg-1',
].join('\n');

test('dpkg reads installed packages from the status file, with their source packages', async () => {
  const facts = await run(dpkgAnalyser, 'var/lib/dpkg/status', status);
  const p = 'var/lib/dpkg/status';
  assert.deepEqual(facts, {
    packages: [
      { ecosystem: 'deb', name: 'libc6', version: '2.36-9+deb12u4', arch: 'amd64', sourceName: 'glibc', path: p },
      // Source's version equals Version: not repeated.
      { ecosystem: 'deb', name: 'libgcc-s1', version: '12.2.0-14', arch: 'amd64', sourceName: 'gcc-12', path: p },
      { ecosystem: 'deb', name: 'libpcre2-8-0', version: '10.42-1+b1', arch: 'amd64', sourceName: 'pcre2', sourceVersion: '10.42-1', path: p },
      { ecosystem: 'deb', name: 'zlib1g', version: '1:1.2.13.dfsg-1', arch: 'amd64', sourceName: 'zlib', path: p },
    ],
  });
});

test('dpkg reads CRLF files and stanzas separated by blank lines with spaces', async () => {
  const text = 'Package: a\r\nStatus: install ok installed\r\nVersion: 1.0\r\n \r\nPackage: b\r\nStatus: install ok installed\r\nVersion: 2.0\r\n';
  const facts = await run(dpkgAnalyser, 'var/lib/dpkg/status', text);
  assert.deepEqual(facts.packages?.map((p) => `${p.name}=${p.version}`), ['a=1.0', 'b=2.0']);
});

test('dpkg reads a distroless status.d stanza, which has no Status field', async () => {
  const path = 'var/lib/dpkg/status.d/libssl3';
  const text = 'Package: libssl3\nVersion: 3.0.11-1~deb12u2\nArchitecture: arm64\nSource: openssl\nMaintainer: Debian OpenSSL Team\nDescription: Secure Sockets Layer toolkit\n shared libraries\n';
  assert.deepEqual(await run(dpkgAnalyser, path, text), {
    packages: [{ ecosystem: 'deb', name: 'libssl3', version: '3.0.11-1~deb12u2', arch: 'arm64', sourceName: 'openssl', path }],
  });
});

test('dpkg returns no facts for an empty or package-less file', async () => {
  assert.deepEqual(await run(dpkgAnalyser, 'var/lib/dpkg/status', ''), {});
  assert.deepEqual(await run(dpkgAnalyser, 'var/lib/dpkg/status', 'Package: no-version\nStatus: install ok installed\n'), {});
});
