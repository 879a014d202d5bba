import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { FileFacts } from '../types.ts';
import type { FileAnalyser } from './analyser.ts';
import { normalisePythonName, pythonAnalyser } from './python.ts';

async function run(analyser: FileAnalyser, path: string, text: string): Promise<FileFacts> {
  const data = Buffer.from(text);
  return analyser.analyse({ path, size: data.length, mode: 0o644 }, { kind: 'buffer', data }, { tempDir: '/nonexistent', signal: new AbortController().signal });
}

const wants = (path: string) => pythonAnalyser.wants({ path, size: 100, mode: 0o644 });

test('python wants dist-info METADATA, egg-info PKG-INFO and egg-info files', () => {
  for (const path of [
    'usr/local/lib/python3.12/site-packages/requests-2.31.0.dist-info/METADATA',
    'usr/lib/python3/dist-packages/six-1.16.0.egg-info/PKG-INFO',
    'usr/lib/python2.7/dist-packages/argparse-1.2.1.egg-info',
    'opt/venv/lib/python3.11/site-packages/Django-4.2.dist-info/METADATA',
  ]) {
    assert.equal(wants(path), true, path);
  }
  for (const path of [
    'usr/local/lib/python3.12/site-packages/requests-2.31.0.dist-info/RECORD',
    'usr/local/lib/python3.12/site-packages/requests/__init__.py',
    'usr/lib/python3/dist-packages/six-1.16.0.egg-info/top_level.txt',
    'METADATA',
    'usr/share/doc/METADATA',
  ]) {
    assert.equal(wants(path), false, path);
  }
});

const metadata = `Metadata-Version: 2.1
Name: Flask_SQLAlchemy
Version: 3.1.1
Summary: Add SQLAlchemy support to your Flask application.
Requires-Python: >=3.8
Description-Content-Type: text/markdown
Requires-Dist: flask >=2.2.5
Requires-Dist: sqlalchemy >=2.0.16

Flask-SQLAlchemy
================

Name: not-this
Version: 0.0.0
`;

test('python reads Name and Version from the headers, normalised as PyPI names packages', async () => {
  const path = 'usr/local/lib/python3.12/site-packages/flask_sqlalchemy-3.1.1.dist-info/METADATA';
  assert.deepEqual(await run(pythonAnalyser, path, metadata), { packages: [{ ecosystem: 'pypi', name: 'flask-sqlalchemy', version: '3.1.1', path }] });
  const egg = 'usr/lib/python3/dist-packages/PyYAML-6.0.1.egg-info';
  assert.deepEqual(await run(pythonAnalyser, egg, 'Metadata-Version: 1.1\r\nName: PyYAML\r\nVersion: 6.0.1\r\nSummary: YAML parser\r\n'), {
    packages: [{ ecosystem: 'pypi', name: 'pyyaml', version: '6.0.1', path: egg }],
  });
});

test('python returns no facts when the headers lack a name or a version', async () => {
  const path = 'x.dist-info/METADATA';
  assert.deepEqual(await run(pythonAnalyser, path, 'Metadata-Version: 2.1\nName: x\n\nVersion: 1.0\n'), {});
  assert.deepEqual(await run(pythonAnalyser, path, ''), {});
});

test('PEP 503 normalisation', () => {
  assert.equal(normalisePythonName('Friendly-Bard'), 'friendly-bard');
  assert.equal(normalisePythonName('FRIENDLY-BARD'), 'friendly-bard');
  assert.equal(normalisePythonName('friendly.bard'), 'friendly-bard');
  assert.equal(normalisePythonName('friendly_bard'), 'friendly-bard');
  assert.equal(normalisePythonName('friendly--bard'), 'friendly-bard');
  assert.equal(normalisePythonName('FrIeNdLy-._.-bArD'), 'friendly-bard');
});
