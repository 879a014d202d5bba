import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';

/**
 * Dependencies point inward (STYLE.md, "Shape of the tree"): the store drivers import nothing
 * above store/, the registry domain reaches storage only through the store interfaces, and the
 * planes reach storage only through the registry, so that the domain is the one place that owns
 * registry semantics.
 */

const src = import.meta.dirname;

function sources(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true, recursive: true })
    .filter((e) => e.isFile() && e.name.endsWith('.ts') && !e.name.endsWith('.test.ts'))
    .map((e) => path.join(e.parentPath, e.name));
}

/** The src-relative paths a file imports (static and dynamic), packages and node: left out. */
function localImports(file: string): string[] {
  const text = readFileSync(file, 'utf8');
  const specifiers = [...text.matchAll(/(?:from|import)\s*\(?\s*'(\.{1,2}\/[^']+)'/g)].map((m) => m[1]!);
  return specifiers.map((s) => path.relative(src, path.resolve(path.dirname(file), s)).split(path.sep).join('/'));
}

function offenders(dir: string, allowed: (target: string) => boolean): string[] {
  const found: string[] = [];
  for (const file of sources(path.join(src, dir))) {
    for (const target of localImports(file)) if (!allowed(target)) found.push(`${path.relative(src, file)} imports ${target}`);
  }
  return found;
}

const under = (...dirs: string[]) => (target: string) => dirs.some((d) => target.startsWith(`${d}/`));

test('the store drivers and interfaces import only store/, digest/ and errors/', () => {
  assert.deepEqual(offenders('store', under('store', 'digest', 'errors')), []);
});

test('the digest primitives import only errors/', () => {
  assert.deepEqual(offenders('digest', under('digest', 'errors')), []);
});

test('the registry domain imports the store interfaces, never a driver or a plane', () => {
  const drivers = ['store/meta/sql/', 'store/meta/sqlite/', 'store/meta/postgres/', 'store/meta/migrations/', 'store/blob/fs/', 'store/blob/s3/'];
  // events/envelope.ts: the pure builders of the events the registry writes to the outbox.
  const allowed = (target: string) => (under('registry', 'store', 'digest', 'errors', 'log')(target) || target === 'events/envelope.ts') && !drivers.some((d) => target.startsWith(d));
  assert.deepEqual(offenders('registry', allowed), []);
});

test('the ECR actions reach storage through the registry, not the metadata store', () => {
  const found: string[] = [];
  for (const file of sources(path.join(src, 'control', 'ecr'))) {
    const text = readFileSync(file, 'utf8');
    for (const [i, line] of text.split('\n').entries()) {
      if (/\bregistry\.meta\b|\.meta\.(?!dirname)/.test(line)) found.push(`${path.relative(src, file)}:${i + 1}: ${line.trim()}`);
    }
    for (const target of localImports(file)) {
      // Types of the store's records are shared vocabulary; its functions are not.
      const isTypeOnly = new RegExp(`import type [^;]*'[^']*${path.basename(target)}'`).test(text);
      if (target.startsWith('store/') && !isTypeOnly) found.push(`${path.relative(src, file)} imports ${target}`);
    }
  }
  assert.deepEqual(found, []);
});
