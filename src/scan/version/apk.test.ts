// The apk order against apk-tools' own version test data (testdata/apk-version.data, copied
// unchanged from apk-tools' test/unit/version.data; its header names the commit), read the way
// apk-tools' test/unit/version_test.c reads it: every line is used.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { compareVersions, isValidVersion } from './index.ts';
import { compareApkFuzzy } from './apk.ts';

const DATA = readFileSync(new URL('testdata/apk-version.data', import.meta.url), 'utf8');

/** apk's result bits: the comparison holds when the result's bit is in the operator's mask. */
const LESS = 2;
const EQUAL = 1;
const GREATER = 4;
const FUZZY = 8;

function mask(op: string): number {
  let m = 0;
  for (const c of op) {
    if (c === '<') m |= LESS;
    else if (c === '>') m |= GREATER;
    else if (c === '=') m |= EQUAL;
    else if (c === '~') m |= FUZZY | EQUAL;
    else throw new Error(`unknown operator ${op}`);
  }
  return m;
}

const RESULT_BIT = { '-1': LESS, '0': EQUAL, '1': GREATER } as const;

test("apk order and validity match apk-tools' version.data", (t) => {
  let comparisons = 0;
  let validity = 0;
  const failures: string[] = [];
  for (const raw of DATA.split('\n')) {
    const line = raw.split('#')[0]!.trim();
    if (line === '') continue;
    const fields = line.split(' ');
    if (fields.length === 3) {
      const [a, opField, b] = fields as [string, string, string];
      const isInverted = opField.startsWith('!');
      const m = mask(isInverted ? opField.slice(1) : opField);
      const result = compareApkFuzzy(a, b, (m & FUZZY) !== 0);
      const holds = (RESULT_BIT[result] & m) !== 0;
      if (holds === isInverted) failures.push(`${line} (got ${result})`);
      // Plain comparisons must also hold through the public entry point, and reversed.
      if (!isInverted && (m & FUZZY) === 0) {
        if ((RESULT_BIT[compareVersions('apk', a, b)] & m) === 0) failures.push(`${line} via compareVersions`);
        const reversed = compareVersions('apk', b, a);
        if (reversed !== -result) failures.push(`${b} vs ${a} is not the reverse of ${line}`);
      }
      comparisons++;
    } else if (fields.length === 1) {
      const [field] = fields as [string];
      const isInverted = field.startsWith('!');
      const version = isInverted ? field.slice(1) : field;
      if (isValidVersion('apk', version) === isInverted) failures.push(`${line}: validity`);
      validity++;
    } else {
      failures.push(`unreadable line ${line}`);
    }
  }
  t.diagnostic(`${comparisons} comparisons and ${validity} validity lines from apk-tools' version.data`);
  assert.ok(comparisons > 700 && validity > 30, 'the data file was not read whole');
  assert.deepEqual(failures, []);
});

test('apk order: suffixes and revisions, by hand', () => {
  const ascending = [
    '1.0_alpha',
    '1.0_alpha1',
    '1.0_beta',
    '1.0_beta2',
    '1.0_pre1',
    '1.0_rc1',
    '1.0_rc1-r1',
    '1.0',
    '1.0-r1',
    '1.0-r10',
    '1.0_cvs1',
    '1.0_svn1',
    '1.0_git20240101',
    '1.0_hg1',
    '1.0_p1',
    '1.0a',
    '1.0b',
    '1.0.1',
    '1.2',
    '1.10',
  ];
  for (let i = 0; i < ascending.length; i++) {
    for (let j = i + 1; j < ascending.length; j++) {
      assert.equal(compareVersions('apk', ascending[i]!, ascending[j]!), -1, `${ascending[i]} < ${ascending[j]}`);
      assert.equal(compareVersions('apk', ascending[j]!, ascending[i]!), 1, `${ascending[j]} > ${ascending[i]}`);
    }
  }
});
