// Maven's order: ordered lists checked pairwise (the POM reference's "Version Order Specification"
// examples, and the lists of Maven 3.9's own ComparableVersionTest), and, where Debian's Maven
// libraries and a JRE are installed, ComparableVersion itself on generated pairs.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { compareVersions, isValidVersion } from './index.ts';
import { canRun, checkAscending, checkEqualGroups, generatePairs, pick } from './version-testing.ts';

const compare = (a: string, b: string) => compareVersions('maven', a, b);

// From the POM reference (https://maven.apache.org/pom.html#version-order-specification) and the
// rules it states: qualifiers alpha < beta < milestone < rc = cr < snapshot < "" = ga = final = release < sp,
// unknown qualifiers after them alphabetically, then numbers; '-number' before '.number'.
const SPEC_ASCENDING = [
  '1-alpha',
  '1-alpha1',
  '1-alpha2',
  '1-alpha10',
  '1-beta',
  '1-beta-2',
  '1-milestone-1',
  '1-m2',
  '1-rc',
  '1-cr1',
  '1-rc2',
  '1-snapshot',
  '1',
  '1-sp',
  '1-sp-2',
  '1-sp.1',
  '1-abc',
  '1-foo2',
  '1-foo10',
  '1-xyz',
  '1-1',
  '1-1.1',
  '1-2',
  '1.0.1',
  '1.1-alpha-1',
  '1.1',
  '1.1.1',
  '1.2-SNAPSHOT',
  '1.2',
  '1.10',
  '2.0.0-M1',
  '2.0.0-RC1',
  '2.0.0',
  '2.0.0.1',
  '10',
];

// Maven 3.9's ComparableVersionTest (apache/maven, tag maven-3.9.16, commit
// 2bdd9fddda4b155ebf8000e807eb73fd829a51d5, maven-artifact/src/test/java/org/apache/maven/artifact/
// versioning/ComparableVersionTest.java): VERSIONS_QUALIFIER and VERSIONS_NUMBER, and its equalities.
const MAVEN_QUALIFIERS = [
  '1-alpha2snapshot', '1-alpha2', '1-alpha-123', '1-beta-2', '1-beta123', '1-m2', '1-m11', '1-rc', '1-cr2',
  '1-rc123', '1-SNAPSHOT', '1', '1-sp', '1-sp2', '1-sp123', '1-abc', '1-def', '1-pom-1', '1-1-snapshot',
  '1-1', '1-2', '1-123',
];
const MAVEN_NUMBERS = [
  '2.0', '2.0.a', '2-1', '2.0.2', '2.0.123', '2.1.0', '2.1-a', '2.1b', '2.1-c', '2.1-1', '2.1.0.1', '2.2',
  '2.123', '11.a2', '11.a11', '11.b2', '11.b11', '11.m2', '11.m11', '11', '11.a', '11b', '11c', '11m',
];
const MAVEN_EQUAL = [
  ['1', '1.0', '1.0.0', '1-0', '1.0-0', '1ga', '1release', '1final', '1Ga', '1GA', '1RELEASE', '1RELeaSE', '1Final', '1FinaL', '1FINAL', '1.ga', '1-ga', '1.final'],
  ['1a', '1-a', '1.0-a', '1.0.0-a', '1.0a', '1.0.0a', '1A'],
  ['1x', '1-x', '1.0-x', '1.0.0-x', '1.0x', '1.0.0x', '1X'],
  ['1cr', '1rc', '1Cr', '1Rc', '1cR', '1rC'],
  ['1a1', '1-alpha-1', '1alpha1'],
  ['1b2', '1-beta-2', '1beta2'],
  ['1m3', '1-milestone-3', '1Milestone3', '1MileStone3', '1MILESTONE3'],
  ['1-abcdefghijklmnopqrstuvwxyz', '1-ABCDEFGHIJKLMNOPQRSTUVWXYZ'],
  ['0000000000000000001', '000000001', '01', '1'],
  ['0000000000000000000', '000000000', '00', '0'],
  ['2-abc', '2.0.abc', '2.0.0.abc'],
  ['2-RC', '2.0.rc', '2.0.0.RC'],
];
const MAVEN_PAIRS: Array<[string, string]> = [
  ['1.0-alpha-1-SNAPSHOT', '1.0-alpha-1'],
  ['2.0.1-xyz', '2.0.1-123'],
  ['6.1.0rc3', '6.1.0'],
  ['6.1.0rc3', '6.1H.5-beta'],
  ['6.1.0', '6.1H.5-beta'],
  ['20190126.230843', '1234567890.12345'],
  ['1234567890.12345', '123456789012345.1H.5-beta'],
  ['123456789012345.1H.5-beta', '12345678901234567890.1H.5-beta'],
  ['1-0.alpha', '1-0.beta'],
  ['1-0.beta', '1'],
  ['1.0.0.abc1', '1.0.0-abc2'],
  ['1.0.0.RC1', '1.0.0-RC2'],
  // The POM reference says 1-ga-1 = 1-1; ComparableVersion (3.8 and 3.9) says 1-ga-1 < 1-1, and rules.
  ['1-ga-1', '1-1'],
  ['1-sp-1', '1-ga-1'],
];

test('maven order: the specification examples, pairwise', (t) => {
  let pairs = 0;
  const failures: string[] = [];
  for (const list of [SPEC_ASCENDING, MAVEN_QUALIFIERS, MAVEN_NUMBERS]) {
    const r = checkAscending(compare, list);
    pairs += r.pairs;
    failures.push(...r.failures);
  }
  for (const [a, b] of MAVEN_PAIRS) {
    pairs++;
    if (compare(a, b) !== -1 || compare(b, a) !== 1) failures.push(`${a} < ${b}`);
  }
  const equal = checkEqualGroups(compare, MAVEN_EQUAL);
  t.diagnostic(`${pairs} ordered pairs and ${equal.pairs} equal pairs`);
  assert.deepEqual([...failures, ...equal.failures], []);
});

test('maven validity', () => {
  for (const v of ['1.0', '2.13.4.2', '5.3.1.RELEASE', '9.4.51.v20230217', 'r03', '1.0-SNAPSHOT']) assert.ok(isValidVersion('maven', v), v);
  for (const v of ['', 'LATEST', 'RELEASE', '${project.version}', '1.0 beta']) assert.ok(!isValidVersion('maven', v), v);
});

const JAR = '/usr/share/java/maven3-artifact.jar';
const QUALIFIERS = ['alpha', 'a', 'beta', 'b', 'milestone', 'm', 'rc', 'cr', 'snapshot', 'SNAPSHOT', 'ga', 'final', 'Final', 'release', 'RELEASE', 'sp', 'foo', 'abc', 'x'];
const NUMBERS = ['0', '1', '2', '10', '01', '00', '123456789012'];
const SEPARATORS = ['.', '-', '.', '-', ''];
const PIECES = [...QUALIFIERS, ...NUMBERS, ...SEPARATORS];

function build(random: () => number): string[] {
  const parts = [pick(random, NUMBERS)];
  for (let n = Math.floor(random() * 5); n > 0; n--) {
    parts.push(pick(random, SEPARATORS), pick(random, random() < 0.5 ? NUMBERS : QUALIFIERS));
  }
  return parts;
}

/** ComparableVersion's main() prints "   A op B" for each two adjacent arguments. */
function mavenCompare(pairs: Array<[string, string]>): string[] {
  const out = execFileSync('java', ['-cp', JAR, 'org.apache.maven.artifact.versioning.ComparableVersion', ...pairs.flat()], {
    encoding: 'utf8',
    maxBuffer: 1 << 26,
  });
  const lines = out.split('\n').filter((line) => line.startsWith('   '));
  return pairs.map(([a, b], i) => {
    const line = lines[2 * i]!;
    const op = line.slice(3 + a.length + 1, line.length - b.length - 1);
    assert.equal(line, `   ${a} ${op} ${b}`, 'unexpected output from ComparableVersion');
    return op === '==' ? '=' : op;
  });
}

const SYMBOL = { '-1': '<', '0': '=', '1': '>' } as const;

test("maven order matches Maven's ComparableVersion on generated pairs", (t) => {
  if (!existsSync(JAR) || !canRun('java', ['-version'])) {
    t.skip(`no JRE or no ${JAR} (Debian package libmaven3-core-java)`);
    return;
  }
  const pairs = generatePairs(800, 0x3a7e, build, PIECES, (parts) => parts.join('')).filter(([a, b]) => a !== '' && b !== '');
  const answers = mavenCompare(pairs);
  const failures = pairs.flatMap(([a, b], i) => {
    const ours = SYMBOL[compare(a, b)];
    return ours === answers[i] ? [] : [`${a} ${answers[i]} ${b} by Maven, ${ours} here`];
  });
  const tally = Object.groupBy(answers, (x) => x);
  t.diagnostic(`${pairs.length} pairs compared with ComparableVersion: ${['<', '=', '>'].map((k) => `${k} ${tally[k]?.length ?? 0}`).join(', ')}`);
  assert.deepEqual(failures, []);
});
