import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { loadModel } from '../../aws/model.ts';
import { ecrActions } from './index.ts';

const doc = readFileSync(path.join(import.meta.dirname, '..', '..', '..', 'docs', 'ecr-api.md'), 'utf8');
const rows = new Map<string, string>();
for (const line of doc.split('\n')) {
  const m = /^\| `(\w+)` \| (supported|planned) \|/.exec(line);
  if (m) {
    assert.ok(!rows.has(m[1]!), `docs/ecr-api.md lists ${m[1]} twice`);
    rows.set(m[1]!, m[2]!);
  }
}

test('docs/ecr-api.md lists every operation of ECR\'s model once', () => {
  const operations = Object.keys(loadModel('ecr').operations).sort();
  assert.deepEqual([...rows.keys()].sort(), operations);
});

test('docs/ecr-api.md says "supported" for exactly the operations the server implements', () => {
  for (const [operation, status] of rows) {
    assert.equal(status === 'supported', operation in ecrActions, `${operation} is documented as ${status}`);
  }
});
