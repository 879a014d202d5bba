// The rpm order against rpm itself: rpm's Lua interpreter evaluates rpm.vercmp() (which splits
// epoch:version-release as rpm does) for all generated pairs in one `rpm --eval`.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { compareVersions } from './index.ts';
import { rpmvercmp } from './rpm.ts';
import { canRun, checkAscending, checkEqualGroups, generatePairs, pick } from './version-testing.ts';

const EPOCHS = ['0:', '1:', '2:', '10:', '01:'];
const PARTS = ['0', '1', '2', '9', '10', '01', '007', '100', 'a', 'b', 'Z', 'rc', 'git', '.', '.', '_', '+', '~', '~', '^', '^'];
const RELEASE = ['1', '2', '10', '01', '0', '.', 'el', 'el9', 'fc40', '_', '~', '^', '.1'];
const PIECES = [...PARTS, ...RELEASE, '-', ':', '1:'];

function build(random: () => number): string[] {
  const parts: string[] = [];
  if (random() < 0.3) parts.push(pick(random, EPOCHS));
  parts.push(pick(random, ['0', '1', '2', '10', 'a']));
  for (let n = Math.floor(random() * 6); n > 0; n--) parts.push(pick(random, PARTS));
  if (random() < 0.7) {
    parts.push('-');
    for (let n = 1 + Math.floor(random() * 3); n > 0; n--) parts.push(pick(random, RELEASE));
  }
  return parts;
}

/** rpm.vercmp() of each pair, '<', '=', '>', or 'error' when rpm refuses a version. */
function rpmCompare(pairs: Array<[string, string]>): string[] {
  const dir = mkdtempSync(path.join(tmpdir(), 'berth-rpmvercmp-'));
  try {
    // Lua long brackets quote the versions; none of the pieces contains ']'.
    const lines = pairs.map(([a, b]) => `{[==[${a}]==], [==[${b}]==]},`);
    const script = path.join(dir, 'pairs.lua');
    writeFileSync(
      script,
      `local pairs_ = {\n${lines.join('\n')}\n}\n` +
        `for _, p in ipairs(pairs_) do\n` +
        `  local ok, r = pcall(rpm.vercmp, p[1], p[2])\n` +
        `  if not ok then io.write('error\\n') elseif r < 0 then io.write('<\\n') elseif r > 0 then io.write('>\\n') else io.write('=\\n') end\n` +
        `end\n`,
    );
    return execFileSync('rpm', ['--eval', `%{lua: dofile("${script}")}`], { encoding: 'utf8', maxBuffer: 1 << 24 })
      .trim()
      .split('\n');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const SYMBOL = { '-1': '<', '0': '=', '1': '>' } as const;

test('rpm order matches rpm.vercmp on generated pairs', (t) => {
  if (!canRun('rpm', ['--version'])) {
    t.skip('rpm is not installed');
    return;
  }
  const pairs = generatePairs(1500, 0x4e5, build, PIECES, (parts) => parts.join('')).filter(([a, b]) => a !== '' && b !== '');
  const answers = rpmCompare(pairs);
  assert.equal(answers.length, pairs.length);
  const failures: string[] = [];
  let compared = 0;
  pairs.forEach(([a, b], i) => {
    if (answers[i] === 'error') return;
    compared++;
    const ours = SYMBOL[compareVersions('rpm', a, b)];
    if (ours !== answers[i]) failures.push(`${a} ${answers[i]} ${b} by rpm, ${ours} here`);
  });
  const tally = Object.groupBy(answers, (x) => x);
  t.diagnostic(`${compared} pairs compared with rpm.vercmp: ${['<', '=', '>'].map((k) => `${k} ${tally[k]?.length ?? 0}`).join(', ')}`);
  assert.ok(compared >= 1000, `only ${compared} pairs were comparable`);
  assert.deepEqual(failures, []);
});

test('rpm order: epochs, by hand', () => {
  // A missing epoch is 0; the epoch outranks everything after it; it is read as a number.
  const ascending = ['1.0-1', '0:1.0-2', '9.9-9', '1:0.1-1', '1:0.1-2', '01:1.0-1', '2:0-0', '10:0-0'];
  const order = checkAscending((a, b) => compareVersions('rpm', a, b), ascending);
  assert.deepEqual(order.failures, []);
  const equal = checkEqualGroups((a, b) => compareVersions('rpm', a, b), [
    ['1.0-1', '0:1.0-1', ':1.0-1', '00:1.0-1'],
    ['3:2.5.1-4.el9', '03:2.5.1-4.el9', '3:2.5.1-4.el9'],
  ]);
  assert.deepEqual(equal.failures, []);
});

test('rpm order: rpmvercmp ~ and ^ rules, by hand', () => {
  // From rpm's documentation of the markers (rpm >= 4.15): 1.0~rc1 < 1.0 < 1.0^git1 < 1.0.1.
  const ascending = ['1.0~~', '1.0~rc1', '1.0~rc2', '1.0', '1.0^', '1.0^git1', '1.0^git2', '1.0.1~rc1', '1.0.1'];
  assert.deepEqual(checkAscending(rpmvercmp, ascending).failures, []);
  assert.equal(rpmvercmp('1.0', '1_0'), 0);
  assert.equal(rpmvercmp('a', '1'), -1);
  assert.equal(rpmvercmp('2.0010', '2.10'), 0);
});
