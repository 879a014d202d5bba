import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseDate } from './conditions.ts';
import { parsePieces, PatternSet } from './wildcard.ts';
import type { GlobFlavor, Piece } from './wildcard.ts';

const noVariables = { variable: () => undefined };

/** The documented semantics, written as plainly as possible, as a RegExp. */
function reference(pattern: string, flavor: Exclude<GlobFlavor, 'arn'>): RegExp {
  let source = '';
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i]!;
    if (c === '*') {
      const endsSegment = i + 1 === pattern.length || pattern[i + 1] === ':';
      source += flavor === 'plain' || endsSegment ? '[\\s\\S]*' : '[^:]*';
    } else if (c === '?') {
      source += flavor === 'plain' ? '[\\s\\S]' : '[^:]';
    } else {
      source += c.replace(/[\\^$.*+?()[\]{}|]/g, '\\$&');
    }
  }
  return new RegExp(`^${source}$`);
}

/** Deterministic pseudo-random strings (mulberry32) over a small alphabet, so every corner gets hit. */
function strings(alphabet: string, maxLength: number, count: number, seed: number): string[] {
  let state = seed >>> 0;
  const next = (): number => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (t ^ (t >>> 14)) >>> 0;
  };
  const out: string[] = [];
  for (let n = 0; n < count; n++) {
    const length = next() % (maxLength + 1);
    let s = '';
    for (let i = 0; i < length; i++) s += alphabet[next() % alphabet.length];
    out.push(s);
  }
  return out;
}

for (const flavor of ['plain', 'resource'] as const) {
  test(`wildcard: the ${flavor} matchers agree with the reference on random inputs`, () => {
    const inputs = strings('ab:', 8, 300, 7);
    const patterns = strings('ab:*?', 8, 1500, flavor === 'plain' ? 11 : 13);
    // The generator must reach the interesting cases: several stars, trailing stars, colons.
    assert.ok(new Set(inputs).size > 150 && new Set(patterns).size > 800);
    assert.ok(patterns.filter((p) => /\*.*\*/.test(p) && p.endsWith('*')).length > 50);
    for (const pattern of patterns) {
      const set = new PatternSet([[{ kind: 'text', text: pattern }]], flavor);
      const re = reference(pattern, flavor);
      for (const input of inputs) {
        assert.equal(set.matches(input, noVariables), re.test(input), `${flavor} pattern ${JSON.stringify(pattern)} on ${JSON.stringify(input)}`);
      }
    }
  });
}

test('wildcard: ArnLike matches segment by segment, the resource segment taking the rest', () => {
  const arn = (p: string) => new PatternSet([[{ kind: 'text', text: p }]], 'arn');
  const value = 'arn:aws:iam::123456789012:role/a:b';
  assert.equal(arn('arn:aws:iam::*:role/*').matches(value, noVariables), true);
  assert.equal(arn('arn:aws:*:role/*').matches(value, noVariables), false);
  assert.equal(arn('arn:aws:iam::123456789012:*').matches(value, noVariables), true);
  assert.equal(arn('arn:*:*:*:*:*').matches(value, noVariables), true);
  assert.equal(arn('arn:*:*:*:*').matches(value, noVariables), true);
});

// A backtracking matcher would take hours here; the linear one answers at once (the test's timeout catches a regression).
test('wildcard: many stars stay linear on long inputs', { timeout: 30_000 }, () => {
  const set = new PatternSet([[{ kind: 'text', text: 'x' + '*a'.repeat(20) + '*c' }]], 'plain');
  assert.equal(set.matches('x' + 'a'.repeat(20_000), noVariables), false);
  const resource = new PatternSet([[{ kind: 'text', text: 'arn:aws:ecr:us-east-1:1:repository/' + 'a*'.repeat(30) + 'b' }]], 'resource');
  assert.equal(resource.matches('arn:aws:ecr:us-east-1:1:repository/' + 'a'.repeat(5_000), noVariables), false);
});

test('wildcard: parsePieces splits variables, escapes and defaults', () => {
  const pieces = (s: string) => parsePieces(s, true);
  assert.deepEqual(pieces('a/${aws:username}/b'), [
    { kind: 'text', text: 'a/' },
    { kind: 'variable', key: 'aws:username', fallback: undefined },
    { kind: 'text', text: '/b' },
  ] satisfies Piece[]);
  assert.deepEqual(pieces('${*}${?}${$}'), [
    { kind: 'literal', text: '*' },
    { kind: 'literal', text: '?' },
    { kind: 'literal', text: '$' },
  ]);
  assert.deepEqual(pieces("${ AWS:PrincipalTag/Team , 'it''s' }"), [{ kind: 'variable', key: 'aws:principaltag/Team', fallback: "it's" }]);
  assert.equal(typeof pieces('${aws:username'), 'string');
  assert.equal(typeof pieces('${}'), 'string');
  assert.equal(typeof pieces("${aws:username, x}"), 'string');
  assert.deepEqual(parsePieces('${aws:username}', false), [{ kind: 'text', text: '${aws:username}' }]);
});

test('wildcard: parseDate reads ISO 8601 and epoch seconds', () => {
  assert.equal(parseDate('2024-01-01T00:00:00Z'), Date.UTC(2024, 0, 1));
  assert.equal(parseDate('2024-01-01'), Date.UTC(2024, 0, 1));
  assert.equal(parseDate('2024-01-01T02:00:00+02:00'), Date.UTC(2024, 0, 1));
  assert.equal(parseDate('2024-01-01T00:00:00.250Z'), Date.UTC(2024, 0, 1) + 250);
  assert.equal(parseDate('1704067200'), Date.UTC(2024, 0, 1));
  assert.equal(parseDate('2024-02-30'), undefined);
  assert.equal(parseDate('2024-01-01T24:00:00Z'), undefined);
  assert.equal(parseDate('yesterday'), undefined);
});
