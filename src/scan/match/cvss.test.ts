import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { cvssScore, preferredScore, severityOfScore } from './cvss.ts';

function vectorFile(): Array<{ vector: string; score: number }> {
  const text = readFileSync(new URL('./testdata/cvss-vectors.txt', import.meta.url), 'utf8');
  return text
    .split('\n')
    .filter((line) => line.trim() !== '' && !line.startsWith('#'))
    .map((line) => {
      const [vector, score] = line.trim().split(/\s+/);
      return { vector: vector as string, score: Number(score) };
    });
}

test('scores of the published test vectors, every version', () => {
  const cases = vectorFile();
  const versions = new Set<string>();
  const wrong: string[] = [];
  for (const { vector, score } of cases) {
    const got = cvssScore(vector);
    if (!got) {
      wrong.push(`${vector}: not parsed`);
      continue;
    }
    versions.add(got.version);
    if (got.baseScore !== score) wrong.push(`${vector}: ${got.baseScore}, expected ${score}`);
  }
  assert.deepEqual(wrong, []);
  assert.ok(cases.length > 1000, `only ${cases.length} vectors read`);
  assert.deepEqual([...versions].sort(), ['2.0', '3.0', '3.1', '4.0']);
});

test('scores NVD and the specifications publish', () => {
  const known: Array<[string, number]> = [
    ['CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H', 9.8],
    ['CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:C/C:H/I:H/A:H', 10.0],
    ['CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:N/A:N', 7.5],
    ['CVSS:3.1/AV:N/AC:L/PR:N/UI:R/S:U/C:H/I:H/A:H', 8.8],
    ['CVSS:3.0/AV:N/AC:L/PR:N/UI:R/S:C/C:L/I:L/A:N', 6.1],
    ['CVSS:3.1/AV:N/AC:H/PR:N/UI:R/S:U/C:L/I:N/A:N', 3.1],
    ['CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:N/I:N/A:N', 0],
    ['AV:N/AC:L/Au:N/C:P/I:P/A:P', 7.5],
    ['AV:N/AC:M/Au:N/C:C/I:C/A:C', 9.3],
    ['AV:N/AC:L/Au:N/C:N/I:N/A:N', 0],
    ['CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:H/VI:H/VA:H/SC:N/SI:N/SA:N', 9.3],
    ['CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:H/VI:H/VA:H/SC:H/SI:H/SA:H', 10.0],
    ['CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:L/VI:L/VA:L/SC:N/SI:N/SA:N', 6.9],
    ['CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:N/VI:N/VA:N/SC:N/SI:N/SA:N', 0],
  ];
  for (const [vector, score] of known) assert.equal(cvssScore(vector)?.baseScore, score, vector);
  assert.deepEqual(cvssScore('CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H'), {
    version: '3.1',
    vector: 'CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H',
    baseScore: 9.8,
  });
});

test('v3 temporal and environmental metrics are checked but do not change the base score', () => {
  const base = 'CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H';
  assert.equal(cvssScore(`${base}/E:U/RL:O/RC:R/CR:L/MAV:P`)?.baseScore, 9.8);
  assert.equal(cvssScore(`${base}/E:X`)?.baseScore, 9.8);
  assert.equal(cvssScore(`${base}/E:Q`), undefined);
});

test('v4 threat and environmental metrics count, supplemental ones do not', () => {
  const base = 'CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:H/VI:H/VA:H/SC:N/SI:N/SA:N';
  // Expected scores from FIRST's v4.0 calculator.
  assert.equal(cvssScore(`${base}/E:U`)?.baseScore, 8.1);
  assert.equal(cvssScore(`${base}/E:P`)?.baseScore, 8.9);
  assert.equal(cvssScore(`${base}/E:X`)?.baseScore, 9.3);
  assert.equal(cvssScore(`${base}/S:P/AU:Y/R:I/V:C/RE:H/U:Red`)?.baseScore, 9.3);
  assert.equal(cvssScore(`${base}/MAV:P`)?.baseScore, 7.0);
  assert.equal(cvssScore(`${base}/MAV:X`)?.baseScore, 9.3);
});

test('metrics may come in any order', () => {
  assert.equal(cvssScore('CVSS:3.1/S:U/C:H/I:H/A:H/AV:N/AC:L/PR:N/UI:N')?.baseScore, 9.8);
  // GHSA has published v4 vectors with the impact metrics interleaved.
  assert.equal(cvssScore('CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:H/SC:N/VI:H/SI:N/VA:H/SA:N')?.baseScore, 9.3);
  assert.equal(cvssScore('I:P/A:P/AV:N/AC:L/Au:N/C:P')?.baseScore, 7.5);
});

test('vectors that are not valid give no score', () => {
  const invalid = [
    '',
    'CVSS:3.1/',
    'CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H',
    'CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H/',
    'CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H/A:L',
    'CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H/XX:Y',
    'CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:X',
    'CVSS:3.1/AV:n/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H',
    'CVSS:3.1/AV:N/AC:L/Au:N/UI:N/S:U/C:H/I:H/A:H',
    'CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H:H',
    'CVSS:3.1/AV/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H',
    'CVSS:3.2/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H',
    'CVSS:2.0/AV:N/AC:L/Au:N/C:P/I:P/A:P',
    'AV:N/AC:L/Au:N/C:P/I:P',
    'AV:N/AC:L/Au:N/C:P/I:P/A:H',
    'AV:N/AC:L/PR:N/C:P/I:P/A:P',
    'CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:H/VI:H/VA:H/SC:N/SI:N',
    'CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:H/VI:H/VA:H/SC:N/SI:N/SA:X',
    'CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:H/VI:H/VA:H/SC:N/SI:S/SA:N',
    'CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:H/VI:H/VA:H/SC:N/SI:N/SA:N/E:X/E:A',
    'CVSS:4.0/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H',
    'CVSS:3.1/AV:N/AC:L/AT:N/PR:N/UI:N/VC:H/VI:H/VA:H/SC:N/SI:N/SA:N',
    'high',
    '9.8',
  ];
  for (const vector of invalid) assert.equal(cvssScore(vector), undefined, vector);
});

test('scores map onto ECR severities by the version\'s qualitative rating', () => {
  const v3: Array<[number, string]> = [
    [0, 'INFORMATIONAL'],
    [0.1, 'LOW'],
    [3.9, 'LOW'],
    [4, 'MEDIUM'],
    [6.9, 'MEDIUM'],
    [7, 'HIGH'],
    [8.9, 'HIGH'],
    [9, 'CRITICAL'],
    [10, 'CRITICAL'],
  ];
  for (const [score, severity] of v3) {
    assert.equal(severityOfScore(score, '3.1'), severity, `3.1 ${score}`);
    assert.equal(severityOfScore(score, '4.0'), severity, `4.0 ${score}`);
  }
  const v2: Array<[number, string]> = [
    [0, 'LOW'],
    [3.9, 'LOW'],
    [4, 'MEDIUM'],
    [6.9, 'MEDIUM'],
    [7, 'HIGH'],
    [10, 'HIGH'],
  ];
  for (const [score, severity] of v2) assert.equal(severityOfScore(score, '2.0'), severity, `2.0 ${score}`);
  assert.equal(severityOfScore(Number.NaN, '3.1'), 'UNDEFINED');
  assert.equal(severityOfScore(11, '3.1'), 'UNDEFINED');
});

test('findings are rated by v3.x first, then v4.0, then v2', () => {
  const v2 = cvssScore('AV:N/AC:L/Au:N/C:P/I:P/A:P');
  const v30 = cvssScore('CVSS:3.0/AV:N/AC:L/PR:N/UI:R/S:C/C:L/I:L/A:N');
  const v31 = cvssScore('CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H');
  const v4 = cvssScore('CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:L/VI:L/VA:L/SC:N/SI:N/SA:N');
  assert.ok(v2 && v30 && v31 && v4);
  assert.equal(preferredScore([v2, v4, v30, v31]), v31);
  assert.equal(preferredScore([v2, v4, v30]), v30);
  assert.equal(preferredScore([v2, v4]), v4);
  assert.equal(preferredScore([v2]), v2);
  assert.equal(preferredScore([]), undefined);
});
