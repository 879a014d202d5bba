// PEP 440 ordering: ordered lists checked pairwise (every i < j), the normalisation rules as
// equalities, and, where Python's `packaging` is installed, packaging.version on generated pairs.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { compareVersions, isValidVersion } from './index.ts';
import { canRun, checkAscending, checkEqualGroups, generatePairs, pick } from './version-testing.ts';

const compare = (a: string, b: string) => compareVersions('pep440', a, b);

// PEP 440's example ordering from "Summary of permitted suffixes and relative ordering", with an
// epoch, longer releases and local labels placed around it by the PEP's rules.
const ASCENDING = [
  '0.9',
  '1.dev0',
  '1.0.dev456',
  '1.0a1',
  '1.0a2.dev456',
  '1.0a12.dev456',
  '1.0a12',
  '1.0b1.dev456',
  '1.0b2',
  '1.0b2.post345.dev456',
  '1.0b2.post345',
  '1.0rc1.dev456',
  '1.0rc1',
  '1.0',
  '1.0+abc',
  '1.0+abc.5',
  '1.0+abc.7',
  '1.0+5',
  '1.0+5.1',
  '1.0+10',
  '1.0.post456.dev34',
  '1.0.post456',
  '1.0.post457',
  '1.0.15',
  '1.1.dev1',
  '1.1',
  '1.1.0.1',
  '2.0',
  '10.0',
  '1!0.1',
  '1!1.0',
  '2!0.0.1',
];

// Each group is one version in the spellings the PEP's "Normalization" section accepts.
const EQUAL = [
  ['1.0rc1', '1.0RC1', '1.0c1', '1.0-rc1', '1.0_rc_1', '1.0.rc.1', '1.0pre1', '1.0preview1', '1.0-pre-1'],
  ['1.0a1', '1.0alpha1', '1.0ALPHA1', '1.0-a1', '1.0_a_1', '1.0.alpha.1'],
  ['1.0b2', '1.0beta2', '1.0-beta.2', '1.0B2'],
  ['1.0a0', '1.0a', '1.0alpha'],
  ['1.0.post1', '1.0-post1', '1.0post1', '1.0-1', '1.0rev1', '1.0r1', '1.0.post-1', '1.0_post_1'],
  ['1.0.post0', '1.0.post', '1.0-post', '1.0rev'],
  ['1.0.dev0', '1.0-dev', '1.0dev', '1.0.dev'],
  ['1.0', '1', '1.0.0', '1.00', 'v1.0', 'V1.0', '0!1.0', ' 1.0 ', '1.0\n'],
  ['1.1', '1.01', '01.1'],
  ['1.0+ubuntu-1', '1.0+ubuntu.1', '1.0+ubuntu_1', '1.0+UBUNTU.1'],
  ['1.0+5', '1.0+05'],
];

test('pep440 order: the PEP examples pairwise, and normalisation', (t) => {
  const order = checkAscending(compare, ASCENDING);
  const equal = checkEqualGroups(compare, EQUAL);
  t.diagnostic(`${order.pairs} ordered pairs and ${equal.pairs} equal pairs`);
  assert.deepEqual([...order.failures, ...equal.failures], []);
});

test('pep440 validity, and the fallback for invalid versions', () => {
  for (const v of [...ASCENDING, ...EQUAL.flat()]) assert.ok(isValidVersion('pep440', v), v);
  for (const v of ['', 'abc', '2004d', '1.0-foo', '1..0', '1.0.', '1.0+', '1.0+abc..1', '1.0a1b1', '1.0+ab c', '1!', 'French toast']) {
    assert.ok(!isValidVersion('pep440', v), v);
  }
  assert.equal(compare('1.0-foo', '0.0.dev0'), -1);
  assert.equal(compare('abc', 'abd'), -1);
});

const PIECES = ['0', '1', '2', '10', '01', '.', '.', 'a', 'b', 'rc', 'c', 'alpha', 'post', 'dev', '-', '_', 'r', 'rev', '+', 'ubuntu', '!'];

function build(random: () => number): string[] {
  const parts: string[] = [];
  if (random() < 0.15) parts.push(pick(random, ['1!', '0!', '2!']));
  parts.push(pick(random, ['0', '1', '2', '10']));
  for (let n = Math.floor(random() * 3); n > 0; n--) parts.push('.', pick(random, ['0', '1', '2', '10', '01']));
  if (random() < 0.4) parts.push(pick(random, ['a', 'b', 'rc', 'c', 'alpha', 'beta', 'pre', '-rc', '.a']), pick(random, ['', '0', '1', '2', '10']));
  if (random() < 0.3) parts.push(pick(random, ['.post', '-post', 'post', '-', '.rev', 'r']), pick(random, ['', '0', '1', '2', '10']));
  if (random() < 0.3) parts.push(pick(random, ['.dev', 'dev', '-dev']), pick(random, ['', '0', '1', '10']));
  if (random() < 0.2) parts.push('+', pick(random, ['abc', '1', '5', 'ubuntu']), pick(random, ['', '.1', '.abc', '-2']));
  return parts;
}

test("pep440 order matches Python's packaging.version on generated pairs", (t) => {
  if (!canRun('python3', ['-c', 'import packaging.version'])) {
    t.skip("python3 with the packaging module is not installed (Debian package python3-packaging)");
    return;
  }
  const pairs = generatePairs(1200, 0x440, build, PIECES, (parts) => parts.join('')).filter(([a, b]) => a !== '' && b !== '');
  const program = [
    'import json, sys',
    'from packaging.version import Version, InvalidVersion',
    'def cmp(a, b):',
    '    try:',
    '        x, y = Version(a), Version(b)',
    '    except InvalidVersion:',
    '        return "error"',
    '    return "<" if x < y else ">" if x > y else "="',
    'print(json.dumps([cmp(a, b) for a, b in json.load(sys.stdin)]))',
  ].join('\n');
  const r = spawnSync('python3', ['-c', program], { input: JSON.stringify(pairs), encoding: 'utf8', maxBuffer: 1 << 24 });
  assert.equal(r.status, 0, r.stderr);
  const answers = JSON.parse(r.stdout) as string[];
  const symbol = { '-1': '<', '0': '=', '1': '>' } as const;
  let compared = 0;
  const failures: string[] = [];
  pairs.forEach(([a, b], i) => {
    const isValid = isValidVersion('pep440', a) && isValidVersion('pep440', b);
    if ((answers[i] === 'error') === isValid) failures.push(`${a} / ${b}: packaging ${answers[i] === 'error' ? 'rejects' : 'accepts'} the pair`);
    if (answers[i] === 'error') return;
    compared++;
    const ours = symbol[compare(a, b)];
    if (ours !== answers[i]) failures.push(`${a} ${answers[i]} ${b} by packaging, ${ours} here`);
  });
  t.diagnostic(`${compared} pairs compared with packaging.version (${pairs.length - compared} with an invalid version)`);
  assert.ok(compared >= 500, `only ${compared} pairs were valid`);
  assert.deepEqual(failures, []);
});
