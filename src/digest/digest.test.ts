import assert from 'node:assert/strict';
import { test } from 'node:test';
import { RegistryError } from '../errors/catalogue.ts';
import { digestOf, isDigest, looksLikeDigest, newHasher, parseDigest } from './digest.ts';

const EMPTY_SHA256 = 'sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855';
const EMPTY_SHA512 =
  'sha512:cf83e1357eefb8bdf1542850d66d8007d620e4050b5715dc83f4a921d36ce9ce47d0d13c5d85f2b0ff8318d2877eec2f63b931bd47417a81a538327af927da3e';
const HELLO_SHA256 = 'sha256:2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824';

function digestInvalid(pattern: RegExp) {
  return (err: unknown) => {
    assert.ok(err instanceof RegistryError);
    assert.equal(err.errorName, 'DigestInvalid');
    assert.match(err.message, pattern);
    return true;
  };
}

test('digestOf hashes bytes as algorithm:hex', () => {
  assert.equal(digestOf(new Uint8Array()), EMPTY_SHA256);
  assert.equal(digestOf(Buffer.from('hello')), HELLO_SHA256);
  assert.equal(digestOf(new Uint8Array(), 'sha512'), EMPTY_SHA512);
});

test('digestOf hashes only the view it is given, not the whole buffer behind it', () => {
  const backing = Buffer.from('xxhelloyy');
  assert.equal(digestOf(backing.subarray(2, 7)), HELLO_SHA256);
});

test('newHasher hashes incrementally to the same digest', () => {
  const h = newHasher();
  h.update('hel');
  h.update('lo');
  assert.equal(`sha256:${h.digest('hex')}`, HELLO_SHA256);
  assert.equal(`sha512:${newHasher('sha512').digest('hex')}`, EMPTY_SHA512);
});

test('isDigest accepts canonical sha256 and sha512 only', () => {
  assert.equal(isDigest(EMPTY_SHA256), true);
  assert.equal(isDigest(EMPTY_SHA512), true);
  for (const bad of [
    '',
    'sha256:',
    EMPTY_SHA256.toUpperCase(),
    'sha256:' + 'E'.repeat(64), // hex must be lowercase
    EMPTY_SHA256.slice(0, -1), // 63 digits
    EMPTY_SHA256 + '0', // 65 digits
    'sha512:' + 'a'.repeat(64), // wrong length for sha512
    'sha384:' + 'a'.repeat(96),
    'md5:d41d8cd98f00b204e9800998ecf8427e',
    EMPTY_SHA256.replace('sha256:', 'sha256-'),
    ` ${EMPTY_SHA256}`,
    'latest',
  ]) {
    assert.equal(isDigest(bad), false, bad);
  }
});

test('looksLikeDigest tells references that are digests from tags', () => {
  assert.equal(looksLikeDigest(EMPTY_SHA256), true);
  assert.equal(looksLikeDigest('sha256:nonsense'), true);
  assert.equal(looksLikeDigest('latest'), false);
  assert.equal(looksLikeDigest('v1.0'), false);
});

test('parseDigest splits a valid digest', () => {
  assert.deepEqual(parseDigest(EMPTY_SHA256), { algorithm: 'sha256', encoded: EMPTY_SHA256.slice(7) });
  assert.deepEqual(parseDigest(EMPTY_SHA512), { algorithm: 'sha512', encoded: EMPTY_SHA512.slice(7) });
});

test('parseDigest rejects with DigestInvalid and says why', () => {
  assert.throws(() => parseDigest('sha384:' + 'a'.repeat(96)), digestInvalid(/only sha256 \(64 hex digits\) and sha512 \(128 hex digits\) are supported/));
  assert.throws(() => parseDigest('sha256:abc'), digestInvalid(/only sha256/));
  assert.throws(() => parseDigest('sha256:' + 'A'.repeat(64)), digestInvalid(/only sha256/));
  assert.throws(() => parseDigest('not a digest'), digestInvalid(/expected algorithm:hex/));
  assert.throws(() => parseDigest('sha256'), digestInvalid(/expected algorithm:hex/));
  assert.throws(() => parseDigest(''), digestInvalid(/expected algorithm:hex/));
  try {
    parseDigest('sha256:abc');
    assert.fail('expected DigestInvalid');
  } catch (err) {
    assert.deepEqual((err as RegistryError).detail, { digest: 'sha256:abc' });
  }
});
