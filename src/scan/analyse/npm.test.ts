import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { FileFacts } from '../types.ts';
import type { FileAnalyser } from './analyser.ts';
import { npmAnalyser } from './npm.ts';

async function run(analyser: FileAnalyser, path: string, text: string): Promise<FileFacts> {
  const data = Buffer.from(text);
  return analyser.analyse({ path, size: data.length, mode: 0o644 }, { kind: 'buffer', data }, { tempDir: '/nonexistent', signal: new AbortController().signal });
}

const wants = (path: string) => npmAnalyser.wants({ path, size: 100, mode: 0o644 });

test('npm wants installed manifests, plain, scoped and nested, and nothing else', () => {
  for (const path of [
    'app/node_modules/express/package.json',
    'node_modules/express/package.json',
    'usr/lib/node_modules/npm/package.json',
    'app/node_modules/@babel/core/package.json',
    'app/node_modules/express/node_modules/debug/package.json',
    'app/node_modules/@scope/a/node_modules/@other/b/package.json',
    'app/node_modules/.pnpm/lodash@4.17.21/node_modules/lodash/package.json',
  ]) {
    assert.equal(wants(path), true, path);
  }
  for (const path of [
    'app/package.json',
    'package.json',
    'app/node_modules/express/lib/package.json',
    'app/node_modules/express/package-lock.json',
    'app/node_modules/@babel/package.json',
    'app/node_modules/.bin/package.json',
    'app/node_modules/package.json',
    'app/node_modules/express/test/fixtures/node_modules_like/x/package.json',
  ]) {
    assert.equal(wants(path), false, path);
  }
  assert.equal(npmAnalyser.tooLarge, 'skip');
});

test('npm reports the name and version the manifest gives', async () => {
  const path = 'app/node_modules/@babel/core/package.json';
  const manifest = JSON.stringify({ name: '@babel/core', version: '7.24.0', description: 'Babel compiler core.', dependencies: { debug: '^4.1.0' } });
  assert.deepEqual(await run(npmAnalyser, path, manifest), { packages: [{ ecosystem: 'npm', name: '@babel/core', version: '7.24.0', path }] });
  // An alias (npm install foo@npm:bar) lives under its alias; the manifest names the real package.
  const alias = 'app/node_modules/my-lodash/package.json';
  assert.deepEqual(await run(npmAnalyser, alias, '\uFEFF{"name":"lodash","version":"4.17.21"}'), { packages: [{ ecosystem: 'npm', name: 'lodash', version: '4.17.21', path: alias }] });
});

test('npm skips manifests without a name and a version, and ones that are not JSON', async () => {
  const path = 'app/node_modules/x/package.json';
  for (const text of ['{"name":"x"}', '{"version":"1.0.0"}', '{"name":"x","version":1}', '{"name":"","version":"1.0.0"}', 'null', '[]', '{not json', '']) {
    assert.deepEqual(await run(npmAnalyser, path, text), {}, text);
  }
});
