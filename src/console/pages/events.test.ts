import assert from 'node:assert/strict';
import { test } from 'node:test';
import { headerFromForm } from './events.ts';

test('headerFromForm: Name: value, trimmed; empty is none', () => {
  assert.deepEqual(headerFromForm('  Authorization:  Bearer abc:123  '), { Authorization: 'Bearer abc:123' });
  assert.deepEqual(headerFromForm('X-Empty:'), { 'X-Empty': '' });
  assert.deepEqual(headerFromForm('   '), {});
});

test('headerFromForm: what is not Name: value is refused with a sentence; a __proto__ name stays a plain entry', () => {
  for (const text of ['no colon', ': value', 'Two words: value']) assert.match(String(headerFromForm(text)), /Name: value/, text);
  const odd = headerFromForm('__proto__: x');
  assert.deepEqual(Object.keys(odd), ['__proto__']);
  assert.equal(Object.getPrototypeOf(odd), Object.prototype);
});
