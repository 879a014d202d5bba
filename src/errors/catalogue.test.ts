import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { RegistryError, catalogue, isRegistryError, type ErrorName, type ErrorSpec } from './catalogue.ts';

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const entries = Object.entries(catalogue) as [ErrorName, ErrorSpec][];

/** The catalogue table of docs/errors.md: name -> cells (name, code, status, message, description). */
function docRows(): Map<string, string[]> {
  const doc = readFileSync(path.join(repoRoot, 'docs', 'errors.md'), 'utf8');
  const section = doc.slice(doc.indexOf('## The catalogue'));
  const rows = new Map<string, string[]>();
  for (const line of section.split('\n')) {
    if (!line.startsWith('| `')) {
      if (rows.size > 0) break;
      continue;
    }
    const cells = line.slice(1, -1).split('|').map((c) => c.trim());
    rows.set(cells[0]!.replace(/`/g, ''), cells);
  }
  return rows;
}

test('every catalogue entry has a rendering; OCI ones have a spec-shaped code and an error status', () => {
  for (const [name, spec] of entries) {
    assert.ok(spec.oci || spec.ecr, `${name} has no rendering`);
    if (!spec.oci) continue;
    assert.match(spec.oci.code, /^[A-Z]+(?:_[A-Z]+)*$/, `${name} code`);
    assert.ok(Number.isInteger(spec.oci.status) && spec.oci.status >= 400 && spec.oci.status <= 599, `${name} status ${spec.oci.status}`);
    assert.ok(spec.message.length > 0 && spec.message.endsWith('.'), `${name} message`);
    assert.ok(spec.description.length > 0 && spec.description.endsWith('.'), `${name} description`);
  }
});

test('docs/errors.md lists every catalogue entry with its OCI code, status, ECR exception, message and description', () => {
  const rows = docRows();
  for (const [name, spec] of entries) {
    const cells = rows.get(name);
    assert.ok(cells, `docs/errors.md has no row for ${name}`);
    assert.equal(cells[1], spec.oci ? `\`${spec.oci.code}\`` : '', `${name} code`);
    assert.equal(cells[2], spec.oci ? String(spec.oci.status) : '', `${name} status`);
    assert.equal(cells[3], spec.ecr ? `\`${spec.ecr.type}\` (${spec.ecr.status})` : '', `${name} ECR exception`);
    assert.equal(cells[4], spec.message, `${name} message`);
    assert.equal(cells[5], spec.description, `${name} description`);
  }
});

test('every ECR rendering names an exception of ECR\'s service model', async () => {
  const { loadModel } = await import('../aws/model.ts');
  const model = loadModel('ecr');
  for (const [name, spec] of entries) {
    if (!spec.ecr) continue;
    const known = spec.ecr.type in model.shapes || ['UnrecognizedClientException', 'AccessDeniedException'].includes(spec.ecr.type);
    assert.ok(known, `${name}: ${spec.ecr.type} is not an ECR error`);
  }
});

test('docs/errors.md lists nothing that is not in the catalogue', () => {
  for (const name of docRows().keys()) assert.ok(name in catalogue, `docs/errors.md lists ${name}, which the catalogue does not have`);
});

test('RegistryError carries the entry name, the default or a specific message, detail and cause', () => {
  const cause = new Error('disk on fire');
  const plain = new RegistryError('NameUnknown');
  assert.equal(plain.errorName, 'NameUnknown');
  assert.equal(plain.message, catalogue.NameUnknown.message);
  assert.equal(plain.name, 'RegistryError');
  assert.equal(plain.detail, undefined);
  assert.ok(plain instanceof Error);

  const specific = new RegistryError('BlobUnknown', { digest: 'sha256:abc' }, { message: 'Blob sha256:abc is not here.', cause });
  assert.equal(specific.message, 'Blob sha256:abc is not here.');
  assert.deepEqual(specific.detail, { digest: 'sha256:abc' });
  assert.equal(specific.cause, cause);
});

test('isRegistryError tells catalogue errors apart, optionally by name', () => {
  const err = new RegistryError('TagInvalid', { tag: '-x' });
  assert.equal(isRegistryError(err), true);
  assert.equal(isRegistryError(err, 'TagInvalid'), true);
  assert.equal(isRegistryError(err, 'NameInvalid'), false);
  assert.equal(isRegistryError(new Error('TagInvalid')), false);
  assert.equal(isRegistryError(undefined), false);
  assert.equal(isRegistryError({ errorName: 'TagInvalid' }), false);
});
