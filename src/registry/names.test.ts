import assert from 'node:assert/strict';
import { test } from 'node:test';
import { RegistryError } from '../errors/catalogue.ts';
import { MAX_NAME_LENGTH, assertRepositoryName, assertTag, isValidRepositoryName, isValidTag } from './names.ts';

function rejectsWith(name: 'NameInvalid' | 'TagInvalid', pattern: RegExp) {
  return (err: unknown) => {
    assert.ok(err instanceof RegistryError);
    assert.equal(err.errorName, name);
    assert.match(err.message, pattern);
    return true;
  };
}

test('repository names: ECR grammar, 2 to 256 characters', () => {
  const valid = ['ab', 'a/b', 'library/alpine', 'team/app/api', 'a.b', 'a_b', 'a-b', 'a1-b2.c3_d4', '0x', 'x/y/z/w', 'a'.repeat(MAX_NAME_LENGTH)];
  for (const name of valid) assert.equal(isValidRepositoryName(name), true, name);
  const invalid = [
    '', 'a', // too short
    'a'.repeat(MAX_NAME_LENGTH + 1),
    'Alpine', 'team/App', // uppercase
    'a__b', 'a--b', 'a..b', 'a._b', // ECR allows one separator between alphanumerics (OCI allows __ and --)
    '-ab', 'ab-', '.ab', '_ab', 'ab.', // separators only between alphanumerics
    '/ab', 'ab/', 'a//b', // empty components
    'a b', 'a:b', 'a@b', 'ä/b', 'a\\b',
  ];
  for (const name of invalid) assert.equal(isValidRepositoryName(name), false, JSON.stringify(name));
});

test('MAX_NAME_LENGTH counts the whole name, slashes included', () => {
  const name = `${'a'.repeat(127)}/${'b'.repeat(128)}`;
  assert.equal(name.length, 256);
  assert.equal(isValidRepositoryName(name), true);
  assert.equal(isValidRepositoryName(name + 'b'), false);
});

test('assertRepositoryName explains what is wrong', () => {
  assert.doesNotThrow(() => assertRepositoryName('team/app'));
  assert.throws(() => assertRepositoryName('a'), rejectsWith('NameInvalid', /"a".*at least 2 characters/));
  assert.throws(() => assertRepositoryName('a'.repeat(300)), rejectsWith('NameInvalid', /300 characters long; the limit is 256/));
  assert.throws(() => assertRepositoryName('Team/App'), rejectsWith('NameInvalid', /"Team\/App".*lowercase letters and digits/));
  try {
    assertRepositoryName('a__b');
    assert.fail('expected NameInvalid');
  } catch (err) {
    assert.deepEqual((err as RegistryError).detail, { name: 'a__b' });
  }
});

test('tags: up to 128 of letters, digits, _ . -, not starting with . or -', () => {
  const valid = ['latest', 'v1.0.0', '1.0', 'V1', '_private', 'a-b_c.d', 'sha256-abc', 'x', 'a'.repeat(128)];
  for (const tag of valid) assert.equal(isValidTag(tag), true, tag);
  const invalid = ['', '.hidden', '-x', 'a'.repeat(129), 'a/b', 'a:b', 'sha256:abc', 'a b', 'a+b', 'ä'];
  for (const tag of invalid) assert.equal(isValidTag(tag), false, JSON.stringify(tag));
});

test('assertTag rejects with TagInvalid and the tag in the detail', () => {
  assert.doesNotThrow(() => assertTag('latest'));
  assert.throws(() => assertTag('-x'), rejectsWith('TagInvalid', /Invalid tag "-x"/));
  try {
    assertTag('a/b');
    assert.fail('expected TagInvalid');
  } catch (err) {
    assert.deepEqual((err as RegistryError).detail, { tag: 'a/b' });
  }
});
