// The dpkg order against dpkg itself: `dpkg --compare-versions` answers for generated pairs, run
// as one shell script so that the test takes seconds, not one spawn per pair from here.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { compareVersions, isValidVersion } from './index.ts';
import { canRun, generatePairs, pick } from './version-testing.ts';

const EPOCHS = ['0:', '1:', '2:', '10:', '01:'];
const UPSTREAM = ['0', '1', '2', '9', '10', '01', '007', '100', 'a', 'b', 'z', 'A', 'Z', '~', '~~', '+', '.', '.', '~rc', 'dfsg'];
const REVISION = ['0', '1', '2', '10', '01', 'a', 'b', '~', '+', '.', 'deb12u', 'ubuntu', 'build', '~bpo'];
const PIECES = [...UPSTREAM, ...REVISION, '-', ':', '1:'];

function build(random: () => number): string[] {
  const parts: string[] = [];
  if (random() < 0.3) parts.push(pick(random, EPOCHS));
  parts.push(pick(random, ['0', '1', '2', '10', '01']));
  for (let n = Math.floor(random() * 6); n > 0; n--) parts.push(pick(random, UPSTREAM));
  if (random() < 0.6) {
    parts.push('-');
    for (let n = 1 + Math.floor(random() * 3); n > 0; n--) parts.push(pick(random, REVISION));
  }
  return parts;
}

const quote = (s: string) => `'${s.replaceAll("'", `'\\''`)}'`;

function runScript(script: string): string[] {
  const r = spawnSync('sh', ['-s'], { input: script, encoding: 'utf8', maxBuffer: 1 << 24 });
  assert.equal(r.status, 0, r.stderr);
  return r.stdout.trim().split('\n');
}

/** '<', '=', '>' as dpkg answers, or 'error' when dpkg refuses one of the versions. */
function dpkgCompare(pairs: Array<[string, string]>): string[] {
  const script = pairs
    .map(
      ([a, b]) =>
        `dpkg --compare-versions ${quote(a)} lt ${quote(b)} 2>/dev/null; r=$?; ` +
        `if [ $r = 0 ]; then echo '<'; elif [ $r = 2 ]; then echo error; ` +
        `elif dpkg --compare-versions ${quote(a)} eq ${quote(b)} 2>/dev/null; then echo '='; else echo '>'; fi`,
    )
    .join('\n');
  return runScript(script);
}

/** Whether dpkg reads each version with no warning and no error. */
function dpkgAccepts(versions: string[]): boolean[] {
  const script = versions
    .map((v) => `e=$(dpkg --compare-versions ${quote(v)} eq ${quote(v)} 2>&1 >/dev/null); [ -z "$e" ] && echo ok || echo bad`)
    .join('\n');
  return runScript(script).map((line) => line === 'ok');
}

const SYMBOL = { '-1': '<', '0': '=', '1': '>' } as const;

test('dpkg order matches dpkg --compare-versions on generated pairs', (t) => {
  if (!canRun('dpkg', ['--version'])) {
    t.skip('dpkg is not installed');
    return;
  }
  const pairs = generatePairs(700, 0xdeb, build, PIECES, (parts) => parts.join(''));
  const answers = dpkgCompare(pairs);
  assert.equal(answers.length, pairs.length);
  const failures: string[] = [];
  let compared = 0;
  pairs.forEach(([a, b], i) => {
    if (answers[i] === 'error') return;
    compared++;
    const ours = SYMBOL[compareVersions('deb', a, b)];
    if (ours !== answers[i]) failures.push(`${a} ${answers[i]} ${b} by dpkg, ${ours} here`);
  });
  t.diagnostic(`${compared} pairs compared with dpkg (${pairs.length - compared} refused by dpkg)`);
  assert.ok(compared >= 500, `only ${compared} pairs were comparable`);
  assert.deepEqual(failures, []);
});

test('dpkg validity matches what dpkg reads without a warning or an error', (t) => {
  if (!canRun('dpkg', ['--version'])) {
    t.skip('dpkg is not installed');
    return;
  }
  const generated = generatePairs(200, 0x5eed, build, PIECES, (parts) => parts.join('')).flat();
  // Not the empty string: --compare-versions reads it as "no version", which parseversion() never sees.
  const odd = ['a1.0', '1.0_1', '1.0-', ':1.0', '1:', 'x:1', '1.0 1', ' 1.0', '1.0@', '1:-1', '1.0-1_2', '+1:1.0', '99999999999:1', '1.0-a:b', '1:2:3'];
  const versions = [...new Set([...generated, ...odd])];
  const accepted = dpkgAccepts(versions);
  const failures = versions.flatMap((v, i) => (isValidVersion('deb', v) === accepted[i] ? [] : [`${JSON.stringify(v)}: dpkg ${accepted[i] ? 'accepts' : 'rejects'} it`]));
  t.diagnostic(`${versions.length} versions checked (${accepted.filter((ok) => !ok).length} rejected by dpkg)`);
  assert.ok(accepted.some((ok) => !ok) && accepted.some((ok) => ok));
  assert.deepEqual(failures, []);
});

test('dpkg order: Policy 5.6.12 examples', () => {
  const ascending = ['~~', '~~a', '~', '', 'a'];
  // Policy's own example of '~': "~~ < ~~a < ~ < (empty) < a", here as upstream suffixes.
  for (let i = 0; i + 1 < ascending.length; i++) {
    assert.equal(compareVersions('deb', `1.0${ascending[i]}`, `1.0${ascending[i + 1]}`), -1);
  }
  assert.equal(compareVersions('deb', '1:0.1', '9.9'), 1);
  assert.equal(compareVersions('deb', '1.0', '1.0-0'), 0);
  assert.equal(compareVersions('deb', '0:1.0-1', '1.0-1'), 0);
  assert.equal(compareVersions('deb', '1.01', '1.1'), 0);
  assert.equal(compareVersions('deb', '1.0+b1', '1.0a'), 1);
  assert.equal(compareVersions('deb', '18446744073709551617', '18446744073709551616'), 1);
});
