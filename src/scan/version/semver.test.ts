// SemVer 2.0.0 precedence: ordered lists checked pairwise (every i < j), equalities, validity.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { compareVersions, isValidVersion } from './index.ts';
import { checkAscending, checkEqualGroups } from './version-testing.ts';

const compare = (a: string, b: string) => compareVersions('semver', a, b);

// Section 11's example, "1.0.0-alpha < 1.0.0-alpha.1 < 1.0.0-alpha.beta < 1.0.0-beta < 1.0.0-beta.2 <
// 1.0.0-beta.11 < 1.0.0-rc.1 < 1.0.0", and "1.0.0 < 2.0.0 < 2.1.0 < 2.1.1", merged with the rules
// around them: numeric identifiers by value and before alphanumeric ones, ASCII order, Go's
// pseudo-versions, numbers beyond 2^64.
const ASCENDING = [
  '0.0.0-0',
  'v0.0.0-20190101000000-abcdefabcdef',
  'v0.0.0-20200101000000-abcdefabcdef',
  '0.0.0',
  '0.0.1',
  '0.1.0',
  '0.9.0',
  '0.10.0',
  '1.0.0-0',
  '1.0.0-1',
  '1.0.0-2',
  '1.0.0-10',
  '1.0.0-99999999999999999999',
  '1.0.0-Alpha',
  '1.0.0-alpha',
  '1.0.0-alpha.0',
  '1.0.0-alpha.1',
  '1.0.0-alpha.1.1',
  '1.0.0-alpha.2',
  '1.0.0-alpha.beta',
  '1.0.0-alpha-1',
  '1.0.0-beta',
  '1.0.0-beta.2',
  '1.0.0-beta.11',
  '1.0.0-rc.1',
  '1.0.0',
  '1.0.1',
  'v1.2.3',
  'v1.2.4-0.20200101000000-abcdefabcdef',
  '1.2.4-rc.1',
  '1.2.4',
  '1.10.0',
  '2.0.0',
  '2.1.0',
  '2.1.1',
  '10.0.0',
  '18446744073709551616.0.0',
  '18446744073709551617.0.0',
];

const EQUAL = [
  ['1.0.0', '1.0.0+build', '1.0.0+build.1', 'v1.0.0', 'v1.0.0+20130313144700', '1.0', '1', 'v1'],
  ['1.0.0-rc.1', '1.0.0-rc.1+build.5', 'v1.0.0-rc.1'],
  ['2.0.0+incompatible', 'v2.0.0+incompatible', '2.0.0'],
  ['1.2.0-beta', '1.2-beta'],
];

test('semver precedence: ordered list pairwise, and equalities', (t) => {
  const order = checkAscending(compare, ASCENDING);
  const equal = checkEqualGroups(compare, EQUAL);
  t.diagnostic(`${order.pairs} ordered pairs and ${equal.pairs} equal pairs`);
  assert.deepEqual([...order.failures, ...equal.failures], []);
});

test('semver validity, and the fallback for invalid versions', () => {
  for (const v of ASCENDING) assert.ok(isValidVersion('semver', v), v);
  const invalid = ['', 'x', '01.2.3', '1.02.3', '1.2.3-01', '1.2.3.4', '1.2.3-', '1.2.3+', '1.2.3-a..b', 'go1.21.3', 'V1.2.3', ' 1.2.3', '1.2.3 '];
  for (const v of invalid) assert.ok(!isValidVersion('semver', v), v);
  // Invalid versions sort before valid ones and among themselves as strings; nothing throws.
  assert.equal(compare('x', '0.0.0-0'), -1);
  assert.equal(compare('1.2.3', '1.2.3.4'), 1);
  assert.equal(compare('a', 'b'), -1);
  assert.equal(compare('b', 'b'), 0);
});
