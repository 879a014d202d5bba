import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { FileFacts } from '../types.ts';
import type { FileAnalyser } from './analyser.ts';
import { osReleaseAnalyser, parseAssignments } from './os-release.ts';

async function run(analyser: FileAnalyser, path: string, text: string): Promise<FileFacts> {
  const data = Buffer.from(text);
  return analyser.analyse({ path, size: data.length, mode: 0o644 }, { kind: 'buffer', data }, { tempDir: '/nonexistent', signal: new AbortController().signal });
}

const osOf = async (path: string, text: string) => (await run(osReleaseAnalyser, path, text)).os;

test('os-release wants the os-release files and the legacy release files only', () => {
  for (const path of ['etc/os-release', 'usr/lib/os-release', 'etc/debian_version', 'etc/alpine-release', 'etc/redhat-release', 'etc/centos-release', 'etc/rocky-release', 'etc/lsb-release']) {
    assert.equal(osReleaseAnalyser.wants({ path, size: 100, mode: 0o644 }), true, path);
  }
  for (const path of ['etc/os-release.d/x', 'opt/etc/os-release', 'etc/issue', 'usr/lib/os-release/x']) {
    assert.equal(osReleaseAnalyser.wants({ path, size: 100, mode: 0o644 }), false, path);
  }
});

test('os-release files of the distributions the scanner knows', async () => {
  // As the distributions ship them (Debian 12, Ubuntu 22.04, Alpine 3.20, Rocky 9.3, a debian sid).
  assert.deepEqual(
    await osOf(
      'usr/lib/os-release',
      'PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\nNAME="Debian GNU/Linux"\nVERSION_ID="12"\nVERSION="12 (bookworm)"\nVERSION_CODENAME=bookworm\nID=debian\nHOME_URL="https://www.debian.org/"\n',
    ),
    { id: 'debian', versionId: '12', codename: 'bookworm', prettyName: 'Debian GNU/Linux 12 (bookworm)' },
  );
  assert.deepEqual(
    await osOf('etc/os-release', 'PRETTY_NAME="Ubuntu 22.04.4 LTS"\nNAME="Ubuntu"\nVERSION_ID="22.04"\nVERSION="22.04.4 LTS (Jammy Jellyfish)"\nVERSION_CODENAME=jammy\nID=ubuntu\nID_LIKE=debian\nUBUNTU_CODENAME=jammy\n'),
    { id: 'ubuntu', versionId: '22.04', codename: 'jammy', prettyName: 'Ubuntu 22.04.4 LTS' },
  );
  assert.deepEqual(await osOf('etc/os-release', 'NAME="Alpine Linux"\nID=alpine\nVERSION_ID=3.20.1\nPRETTY_NAME="Alpine Linux v3.20"\n'), {
    id: 'alpine',
    versionId: '3.20.1',
    prettyName: 'Alpine Linux v3.20',
  });
  assert.deepEqual(await osOf('etc/os-release', 'NAME="Rocky Linux"\r\nVERSION="9.3 (Blue Onyx)"\r\nID="rocky"\r\nID_LIKE="rhel centos fedora"\r\nVERSION_ID="9.3"\r\n'), {
    id: 'rocky',
    versionId: '9.3',
  });
  assert.deepEqual(await osOf('etc/os-release', 'PRETTY_NAME="Debian GNU/Linux trixie/sid"\nNAME="Debian GNU/Linux"\nVERSION_CODENAME=trixie\nID=debian\n'), {
    id: 'debian',
    versionId: '',
    codename: 'trixie',
    prettyName: 'Debian GNU/Linux trixie/sid',
  });
  // os-release(5): ID defaults to "linux".
  assert.deepEqual(await osOf('etc/os-release', 'NAME=Something\n'), { id: 'linux', versionId: '' });
});

test('os-release values are unquoted as the shell would', () => {
  const values = parseAssignments(`# a comment\nA="with \\"quotes\\" and \\$dollar"\nB='single $quoted'\nC=bare\n  D = spaced\nE=""\nF="a\\\\b"\n`);
  assert.deepEqual(Object.fromEntries(values), { A: 'with "quotes" and $dollar', B: 'single $quoted', C: 'bare', E: '', F: 'a\\b' });
});

test('the legacy release files name the distribution when os-release is missing', async () => {
  assert.deepEqual(await osOf('etc/debian_version', '12.5\n'), { id: 'debian', versionId: '12', prettyName: 'Debian 12.5' });
  assert.deepEqual(await osOf('etc/debian_version', '8.11\n'), { id: 'debian', versionId: '8', prettyName: 'Debian 8.11' });
  assert.deepEqual(await osOf('etc/debian_version', 'bookworm/sid\n'), { id: 'debian', versionId: '', prettyName: 'Debian bookworm/sid' });
  assert.deepEqual(await osOf('etc/alpine-release', '3.3.3\n'), { id: 'alpine', versionId: '3.3.3' });
  assert.deepEqual(await osOf('etc/rocky-release', 'Rocky Linux release 9.3 (Blue Onyx)\n'), { id: 'rocky', versionId: '9.3', prettyName: 'Rocky Linux release 9.3 (Blue Onyx)' });
  assert.deepEqual(await osOf('etc/centos-release', 'CentOS release 6.10 (Final)\n'), { id: 'centos', versionId: '6', prettyName: 'CentOS release 6.10 (Final)' });
  assert.deepEqual(await osOf('etc/redhat-release', 'Red Hat Enterprise Linux Server release 7.9 (Maipo)\n'), {
    id: 'rhel',
    versionId: '7.9',
    prettyName: 'Red Hat Enterprise Linux Server release 7.9 (Maipo)',
  });
  assert.deepEqual(await osOf('etc/lsb-release', 'DISTRIB_ID=Ubuntu\nDISTRIB_RELEASE=14.04\nDISTRIB_CODENAME=trusty\nDISTRIB_DESCRIPTION="Ubuntu 14.04.6 LTS"\n'), {
    id: 'ubuntu',
    versionId: '14.04',
    codename: 'trusty',
    prettyName: 'Ubuntu 14.04.6 LTS',
  });
  assert.equal(await osOf('etc/redhat-release', 'Some Other Linux release 1 (x)\n'), undefined);
  assert.equal(await osOf('etc/alpine-release', ''), undefined);
  assert.equal(await osOf('etc/lsb-release', 'DISTRIB_RELEASE=1\n'), undefined);
});
