import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { test } from 'node:test';
import zlib from 'node:zlib';
import tar from 'tar-stream';
import type { FileFacts, LayerFacts, Package } from '../types.ts';
import { dpkgAnalyser } from './dpkg.ts';
import { analyseLayer } from './layer.ts';
import { defaultScanLimits } from './limits.ts';
import { mergeLayers } from './merge.ts';
import { npmAnalyser } from './npm.ts';
import { osReleaseAnalyser } from './os-release.ts';

function layer(files: Record<string, FileFacts>, hide: { whiteouts?: string[]; opaqueDirs?: string[] } = {}): LayerFacts {
  return { analyserVersion: 1, files, whiteouts: hide.whiteouts ?? [], opaqueDirs: hide.opaqueDirs ?? [] };
}

function npm(name: string, version: string, file: string): Package {
  return { ecosystem: 'npm', name, version, path: file };
}

function npmFile(name: string, version: string, file: string): Record<string, FileFacts> {
  return { [file]: { packages: [npm(name, version, file)] } };
}

const names = (packages: Package[]) => packages.map((p) => `${p.name}@${p.version}#${p.layer}`);

test('a whiteout hides the path and everything under it in lower layers, not siblings sharing a prefix', () => {
  const inventory = mergeLayers([
    layer({
      ...npmFile('lodash', '4.17.20', 'app/node_modules/lodash/package.json'),
      ...npmFile('lodash-es', '4.17.20', 'app/node_modules/lodash-es/package.json'),
      ...npmFile('left-pad', '1.3.0', 'app/node_modules/left-pad/package.json'),
    }),
    layer({}, { whiteouts: ['app/node_modules/lodash', 'app/node_modules/left-pad/package.json'] }),
  ]);
  assert.deepEqual(names(inventory.packages), ['lodash-es@4.17.20#0']);
});

test('a whiteout hides lower layers only, never a file of its own layer or a later one', () => {
  const inventory = mergeLayers([
    layer(npmFile('a', '1.0.0', 'node_modules/a/package.json')),
    layer(npmFile('a', '2.0.0', 'node_modules/a/package.json'), { whiteouts: ['node_modules/a'] }),
    layer(npmFile('b', '1.0.0', 'node_modules/b/package.json')),
  ]);
  assert.deepEqual(names(inventory.packages), ['a@2.0.0#1', 'b@1.0.0#2']);
});

test('an opaque directory hides what lower layers had under it, but not the directory path itself', () => {
  const inventory = mergeLayers([
    layer({
      ...npmFile('old', '1.0.0', 'srv/app/node_modules/old/package.json'),
      ...npmFile('kept', '1.0.0', 'srv/app-data/node_modules/kept/package.json'),
      ...npmFile('itself', '1.0.0', 'srv/app'),
    }),
    layer(npmFile('new', '1.0.0', 'srv/app/node_modules/new/package.json'), { opaqueDirs: ['srv/app'] }),
  ]);
  assert.deepEqual(names(inventory.packages), ['itself@1.0.0#0', 'kept@1.0.0#0', 'new@1.0.0#1']);

  const root = mergeLayers([layer(npmFile('gone', '1.0.0', 'node_modules/gone/package.json')), layer({}, { opaqueDirs: [''] })]);
  assert.deepEqual(root.packages, []);
});

test('a file in a higher layer replaces the facts of the same path, even with no facts at all', () => {
  const status = 'var/lib/dpkg/status';
  const deb = (name: string, version: string): Package => ({ ecosystem: 'deb', name, version, path: status });
  const upgraded = mergeLayers([
    layer({ [status]: { packages: [deb('openssl', '3.0.11-1~deb12u1'), deb('zlib1g', '1:1.2.13.dfsg-1')] } }),
    layer({ [status]: { packages: [deb('openssl', '3.0.13-1~deb12u1'), deb('zlib1g', '1:1.2.13.dfsg-1')] } }),
  ]);
  assert.deepEqual(names(upgraded.packages), ['openssl@3.0.13-1~deb12u1#1', 'zlib1g@1:1.2.13.dfsg-1#1']);

  const emptied = mergeLayers([layer({ [status]: { packages: [deb('openssl', '3.0.11-1~deb12u1')] } }), layer({ [status]: {} })]);
  assert.deepEqual(emptied.packages, []);
});

test('the OS comes from etc/os-release first, then usr/lib/os-release, then the legacy files', () => {
  const debian = { id: 'debian', versionId: '12', codename: 'bookworm' };
  const ubuntu = { id: 'ubuntu', versionId: '22.04', codename: 'jammy' };
  // The lower layer's etc/os-release beats a higher layer's usr/lib/os-release: precedence is by path.
  assert.deepEqual(mergeLayers([layer({ 'etc/os-release': { os: ubuntu } }), layer({ 'usr/lib/os-release': { os: debian } })]).os, ubuntu);
  assert.deepEqual(mergeLayers([layer({ 'usr/lib/os-release': { os: debian }, 'etc/debian_version': { os: { id: 'debian', versionId: '11' } } })]).os, debian);
  // Ubuntu without os-release: its debian_version says "bookworm/sid", its lsb-release the truth.
  assert.deepEqual(
    mergeLayers([layer({ 'etc/debian_version': { os: { id: 'debian', versionId: '' } }, 'etc/lsb-release': { os: ubuntu } })]).os,
    ubuntu,
  );
  // Rocky keeps redhat-release as a copy or link of its own file.
  const rocky = { id: 'rocky', versionId: '9.3' };
  assert.deepEqual(mergeLayers([layer({ 'etc/redhat-release': { os: { id: 'rhel', versionId: '9.3' } }, 'etc/rocky-release': { os: rocky } })]).os, rocky);
  // A whited-out os-release gives way to what is left.
  assert.deepEqual(mergeLayers([layer({ 'etc/os-release': { os: ubuntu }, 'usr/lib/os-release': { os: debian } }), layer({}, { whiteouts: ['etc/os-release'] })]).os, debian);
  assert.equal(mergeLayers([layer({})]).os, undefined);
  assert.equal('os' in mergeLayers([layer({})]), false);
});

test('packages are sorted by ecosystem, name, version and path, duplicates dropped, notes gathered once', () => {
  const py = (name: string, version: string, file: string): Package => ({ ecosystem: 'pypi', name, version, path: file });
  const inventory = mergeLayers([
    layer({
      'b/node_modules/x/package.json': { packages: [npm('x', '1.0.0', 'b/node_modules/x/package.json')] },
      'a/node_modules/x/package.json': { packages: [npm('x', '1.0.0', 'a/node_modules/x/package.json')] },
      'lib/site-packages/six-1.16.0.dist-info/METADATA': { packages: [py('six', '1.16.0', 'lib/site-packages/six-1.16.0.dist-info/METADATA')] },
      'usr/bin/tool': {
        packages: [
          { ecosystem: 'go', name: 'stdlib', version: 'v1.22.0', path: 'usr/bin/tool' },
          { ecosystem: 'go', name: 'stdlib', version: 'v1.22.0', path: 'usr/bin/tool' },
        ],
        notes: ['usr/bin/tool: stripped'],
      },
    }),
    layer({
      'c/node_modules/x/package.json': { packages: [npm('x', '0.9.0', 'c/node_modules/x/package.json')], notes: ['usr/bin/tool: stripped', 'another'] },
    }),
  ]);
  assert.deepEqual(
    inventory.packages.map((p) => [p.ecosystem, p.name, p.version, p.path, p.layer]),
    [
      ['go', 'stdlib', 'v1.22.0', 'usr/bin/tool', 0],
      ['npm', 'x', '0.9.0', 'c/node_modules/x/package.json', 1],
      ['npm', 'x', '1.0.0', 'a/node_modules/x/package.json', 0],
      ['npm', 'x', '1.0.0', 'b/node_modules/x/package.json', 0],
      ['pypi', 'six', '1.16.0', 'lib/site-packages/six-1.16.0.dist-info/METADATA', 0],
    ],
  );
  assert.deepEqual(inventory.notes, ['usr/bin/tool: stripped', 'another']);
});

async function gzipLayer(entries: Array<{ name: string; content: string }>): Promise<Buffer> {
  const pack = tar.pack();
  for (const e of entries) pack.entry({ name: e.name }, e.content);
  pack.finalize();
  const parts: Buffer[] = [];
  for await (const chunk of pack) parts.push(chunk as Buffer);
  return zlib.gzipSync(Buffer.concat(parts));
}

test('a package removed by a later layer whiteout is gone from the merged inventory of real layers', async (t) => {
  const dir = await mkdtemp(path.join(tmpdir(), 'berth-merge-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const layers = [
    await gzipLayer([
      { name: 'usr/lib/os-release', content: 'ID=debian\nVERSION_ID="12"\n' },
      { name: 'var/lib/dpkg/status', content: 'Package: bash\nStatus: install ok installed\nVersion: 5.2.15-2+b2\nSource: bash (5.2.15-2)\n\n' },
      { name: 'app/node_modules/minimist/package.json', content: '{"name":"minimist","version":"0.0.8"}' },
      { name: 'app/node_modules/qs/package.json', content: '{"name":"qs","version":"6.5.2"}' },
    ]),
    await gzipLayer([
      { name: 'app/node_modules/.wh.minimist', content: '' },
      { name: 'app/node_modules/qs/package.json', content: '{"name":"qs","version":"6.11.0"}' },
    ]),
  ];
  const facts: LayerFacts[] = [];
  for (const data of layers) {
    const result = await analyseLayer(Readable.from([data]), {
      mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip',
      analysers: [osReleaseAnalyser, dpkgAnalyser, npmAnalyser],
      limits: defaultScanLimits,
      tempDir: dir,
    });
    facts.push(result.facts);
  }
  const inventory = mergeLayers(facts);
  assert.deepEqual(inventory.os, { id: 'debian', versionId: '12' });
  assert.deepEqual(inventory.packages, [
    { ecosystem: 'deb', name: 'bash', version: '5.2.15-2+b2', sourceName: 'bash', sourceVersion: '5.2.15-2', path: 'var/lib/dpkg/status', layer: 0 },
    { ecosystem: 'npm', name: 'qs', version: '6.11.0', path: 'app/node_modules/qs/package.json', layer: 1 },
  ]);
});
