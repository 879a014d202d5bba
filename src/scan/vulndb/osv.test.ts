import assert from 'node:assert/strict';
import { test } from 'node:test';
import { cleanDistroSeverity, ecosystemFamily, mapOsvRecord, type MappedOsvRecord } from './osv.ts';

function mapped(doc: unknown): MappedOsvRecord {
  const r = mapOsvRecord(doc);
  assert.equal(r.kind, 'record');
  return (r as { value: MappedOsvRecord }).value;
}

test('ecosystem families are the part before the first colon', () => {
  assert.deepEqual(
    ['Debian:12', 'Alpine:v3.20', 'Red Hat:enterprise_linux:9::baseos', 'Ubuntu:Pro:22.04:LTS', 'npm', 'crates.io', 'Rocky Linux:9'].map(ecosystemFamily),
    ['Debian', 'Alpine', 'Red Hat', 'Ubuntu', 'npm', 'crates.io', 'Rocky Linux'],
  );
});

test('distro ratings: the tracker’s asterisks go, "not yet assigned" is none', () => {
  assert.deepEqual(['low*', 'medium**', 'high', ' unimportant ', 'not yet assigned', 'Not Yet Assigned', '', '**', 3].map(cleanDistroSeverity), ['low', 'medium', 'high', 'unimportant', undefined, undefined, undefined, undefined, undefined]);
});

test('an Ubuntu-shaped record: record-level rating, per-package ecosystems, upstream and related merged', () => {
  const { record, affectedByFamily } = mapped({
    id: 'UBUNTU-CVE-2099-1',
    upstream: ['CVE-2099-1'],
    related: ['CVE-2099-1', 'USN-1-1'],
    severity: [
      { type: 'Ubuntu', score: 'medium' },
      { type: 'CVSS_V3', score: 'CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:N/A:N' },
    ],
    affected: [
      { package: { ecosystem: 'Ubuntu:22.04:LTS', name: 'openssl' }, ranges: [{ type: 'ECOSYSTEM', events: [{ introduced: '0' }, { fixed: '3.0.2-0ubuntu1.15' }] }], ecosystem_specific: { binaries: [{ openssl: '3.0.2-0ubuntu1.15' }] } },
      { package: { ecosystem: 'Ubuntu:24.04:LTS', name: 'openssl' }, ranges: [{ type: 'ECOSYSTEM', events: [{ introduced: '0' }] }], ecosystem_specific: { priority: 'high' } },
      { ranges: [{ type: 'GIT', repo: 'https://example.com/x.git', events: [{ introduced: 'abc' }] }] },
    ],
  });
  assert.deepEqual(record.related, ['CVE-2099-1', 'USN-1-1']);
  assert.deepEqual([...affectedByFamily.keys()], ['Ubuntu'], 'an entry with no package (GIT only) gives no row');
  assert.deepEqual(
    affectedByFamily.get('Ubuntu')!.map((a) => [a.ecosystem, a.distroSeverity]),
    [
      ['Ubuntu:22.04:LTS', 'medium'],
      ['Ubuntu:24.04:LTS', 'high'],
    ],
    "a package's own rating wins over the record's",
  );
});

test('odd fields are dropped, not fatal; per-package severities join the record’s; withdrawn and id-less documents are told apart', () => {
  const { record, affectedByFamily } = mapped({
    id: 'GHSA-x',
    aliases: ['CVE-1', 'CVE-1', 7],
    summary: 42,
    severity: [{ type: 'CVSS_V3', score: 'A' }, { type: 'CVSS_V4' }],
    affected: [
      {
        package: { ecosystem: 'PyPI', name: 'django' },
        severity: [
          { type: 'CVSS_V3', score: 'A' },
          { type: 'CVSS_V4', score: 'B' },
        ],
        ranges: [{ type: 'ECOSYSTEM', events: [{ introduced: '1.0', extra: 'x' }, { fixed: 2 }, {}] }, { type: 'WEIRD', events: [] }, 'x'],
        versions: ['1.0', 3],
        database_specific: { severity: 'HIGH' },
      },
    ],
    references: 'none',
  });
  assert.deepEqual(record, { id: 'GHSA-x', aliases: ['CVE-1'], related: [], severity: [{ type: 'CVSS_V3', score: 'A' }, { type: 'CVSS_V4', score: 'B' }], references: [] });
  assert.deepEqual(affectedByFamily.get('PyPI'), [{ vulnId: 'GHSA-x', ecosystem: 'PyPI', package: 'django', ranges: [{ type: 'ECOSYSTEM', events: [{ introduced: '1.0' }] }], versions: ['1.0'], distroSeverity: 'HIGH' }]);
  assert.deepEqual(mapOsvRecord({ id: 'A', withdrawn: '2024-01-01T00:00:00Z' }), { kind: 'withdrawn' });
  assert.equal(mapOsvRecord({ modified: 'x' }).kind, 'invalid');
  assert.equal(mapOsvRecord(['x']).kind, 'invalid');
  assert.equal(mapOsvRecord('GO-1').kind, 'invalid');
});
