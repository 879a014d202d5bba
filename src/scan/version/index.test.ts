// The entry points: ecosystem to scheme, and the promise that comparing never throws and stays
// antisymmetric whatever the input.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { compareVersions, isValidVersion, schemeOfEcosystem, type VersionScheme } from './index.ts';
import { seededRandom } from './version-testing.ts';

test('schemeOfEcosystem maps OSV ecosystem strings', () => {
  const cases: Array<[string, VersionScheme | undefined]> = [
    ['Debian:12', 'deb'],
    ['Debian', 'deb'],
    ['Ubuntu:22.04', 'deb'],
    ['Ubuntu:Pro:18.04:LTS', 'deb'],
    ['Alpine:v3.20', 'apk'],
    ['Wolfi', 'apk'],
    ['Rocky Linux:9', 'rpm'],
    ['AlmaLinux:9', 'rpm'],
    ['Red Hat:enterprise_linux:9::baseos', 'rpm'],
    ['openSUSE:Leap 15.5', 'rpm'],
    ['SUSE:Linux Enterprise Server 15 SP5', 'rpm'],
    ['npm', 'semver'],
    ['Go', 'semver'],
    ['crates.io', 'semver'],
    ['PyPI', 'pep440'],
    ['Maven', 'maven'],
    ['Maven:https://repo.maven.apache.org/maven2/', 'maven'],
    ['RubyGems', undefined],
    ['NuGet', undefined],
    ['Packagist', undefined],
    ['GIT', undefined],
    ['', undefined],
    ['debian:12', undefined],
  ];
  for (const [ecosystem, scheme] of cases) assert.equal(schemeOfEcosystem(ecosystem), scheme, ecosystem);
});

test('compareVersions never throws and is antisymmetric on arbitrary strings', () => {
  const random = seededRandom(0xbad);
  const alphabet = ['0', '1', '9', '.', '-', '_', '~', '^', '+', ':', '!', 'a', 'Z', 'rc', 'v', ' ', '%', 'é', '\u0000', ''];
  const garbage = () => Array.from({ length: Math.floor(random() * 8) }, () => alphabet[Math.floor(random() * alphabet.length)]).join('');
  const schemes: VersionScheme[] = ['deb', 'rpm', 'apk', 'semver', 'pep440', 'maven'];
  for (let i = 0; i < 500; i++) {
    const [a, b] = [garbage(), garbage()];
    for (const scheme of schemes) {
      const ab = compareVersions(scheme, a, b);
      const ba = compareVersions(scheme, b, a);
      assert.ok(ab === -1 || ab === 0 || ab === 1);
      assert.equal(ab, -ba || 0, `${scheme}: ${JSON.stringify(a)} vs ${JSON.stringify(b)}`);
      assert.equal(compareVersions(scheme, a, a), 0);
      assert.equal(typeof isValidVersion(scheme, a), 'boolean');
    }
  }
});
