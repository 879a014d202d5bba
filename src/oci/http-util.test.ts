import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { FastifyRequest } from 'fastify';
import { RegistryError, type ErrorName } from '../errors/catalogue.ts';
import { MAX_PAGE, byteRange, chunkBounds, contentLength, hasBody, nextLink, pageOf, param } from './http-util.ts';

/** Just enough of a request for the header helpers. */
function requestWith(headers: Record<string, string>): FastifyRequest {
  return { headers } as unknown as FastifyRequest;
}

function rejectsWith(name: ErrorName, pattern?: RegExp) {
  return (err: unknown) => {
    assert.ok(err instanceof RegistryError, String(err));
    assert.equal(err.errorName, name);
    if (pattern) assert.match(err.message, pattern);
    return true;
  };
}

test('byteRange: no header means the whole blob', () => {
  assert.equal(byteRange(undefined, 100), undefined);
});

test('byteRange: bytes=a-b, bytes=a- and bytes=-n', () => {
  assert.deepEqual(byteRange('bytes=0-9', 100), { start: 0, end: 9 });
  assert.deepEqual(byteRange('bytes=10-', 100), { start: 10, end: 99 });
  assert.deepEqual(byteRange('bytes=-10', 100), { start: 90, end: 99 });
  assert.deepEqual(byteRange('bytes=99-99', 100), { start: 99, end: 99 });
  assert.deepEqual(byteRange(' bytes=1-2 ', 100), { start: 1, end: 2 });
});

test('byteRange: an end past the blob is clipped, a suffix longer than the blob is the whole blob', () => {
  assert.deepEqual(byteRange('bytes=50-1000', 100), { start: 50, end: 99 });
  assert.deepEqual(byteRange('bytes=-1000', 100), { start: 0, end: 99 });
});

test('byteRange: malformed headers and multiple ranges are ignored (RFC 9110 allows serving it all)', () => {
  for (const header of ['', 'bytes=', 'bytes=-', 'bytes=5-2', 'bytes=0-1,5-6', 'items=0-1', 'bytes=a-b', 'bytes 0-1', 'bytes=0x1-2']) {
    assert.equal(byteRange(header, 100), undefined, JSON.stringify(header));
  }
});

test('byteRange: a range that starts at or past the end is unsatisfiable', () => {
  assert.throws(() => byteRange('bytes=100-', 100), rejectsWith('RangeNotSatisfiable', /100 bytes/));
  assert.throws(() => byteRange('bytes=150-200', 100), rejectsWith('RangeNotSatisfiable'));
  assert.throws(() => byteRange('bytes=-0', 100), rejectsWith('RangeNotSatisfiable'));
  assert.throws(() => byteRange('bytes=0-', 0), rejectsWith('RangeNotSatisfiable', /0 bytes/));
  assert.throws(() => byteRange('bytes=-5', 0), rejectsWith('RangeNotSatisfiable'));
  try {
    byteRange('bytes=100-', 100);
  } catch (err) {
    assert.deepEqual((err as RegistryError).detail, { size: 100 });
  }
});

test('chunkBounds: without Content-Range, only the length', () => {
  assert.deepEqual(chunkBounds(requestWith({})), { length: undefined });
  assert.deepEqual(chunkBounds(requestWith({ 'content-length': '42' })), { length: 42 });
  assert.deepEqual(chunkBounds(requestWith({ 'content-length': '0' })), { length: 0 });
});

test('chunkBounds: the spec form start-end and the RFC 9110 forms', () => {
  const expected = { start: 0, end: 99, length: 100 };
  for (const range of ['0-99', 'bytes 0-99/100', 'bytes 0-99/*', 'bytes=0-99', ' 0-99 ']) {
    assert.deepEqual(chunkBounds(requestWith({ 'content-length': '100', 'content-range': range })), expected, range);
  }
  assert.deepEqual(chunkBounds(requestWith({ 'content-range': '100-199' })), { start: 100, end: 199, length: undefined });
  assert.deepEqual(chunkBounds(requestWith({ 'content-range': '5-5' })), { start: 5, end: 5, length: undefined });
});

test('chunkBounds: a malformed or backwards Content-Range is RangeInvalid', () => {
  for (const range of ['', 'garbage', '99-0', '-99', '0-', 'bytes */100', '0-99/100/1', 'bytes 0-99/abc']) {
    assert.throws(() => chunkBounds(requestWith({ 'content-range': range })), rejectsWith('RangeInvalid', /Content-Range/), JSON.stringify(range));
  }
});

test('contentLength: a number, undefined when absent, SizeInvalid when not digits', () => {
  assert.equal(contentLength(requestWith({ 'content-length': '1048576' })), 1048576);
  assert.equal(contentLength(requestWith({})), undefined);
  for (const value of ['abc', '-1', '1.5', '']) {
    assert.throws(() => contentLength(requestWith({ 'content-length': value })), rejectsWith('SizeInvalid'), JSON.stringify(value));
  }
  assert.throws(() => chunkBounds(requestWith({ 'content-length': 'x', 'content-range': '0-1' })), rejectsWith('SizeInvalid'));
});

test('hasBody: a declared length above zero or chunked transfer', () => {
  assert.equal(hasBody(requestWith({})), false);
  assert.equal(hasBody(requestWith({ 'content-length': '0' })), false);
  assert.equal(hasBody(requestWith({ 'content-length': '5' })), true);
  assert.equal(hasBody(requestWith({ 'transfer-encoding': 'chunked' })), true);
});

test('pageOf: no n means the largest page; n is clamped to it', () => {
  assert.deepEqual(pageOf({}), { limit: MAX_PAGE, after: undefined });
  assert.deepEqual(pageOf({ n: '5' }), { limit: 5, after: undefined });
  assert.deepEqual(pageOf({ n: '0' }), { limit: 0, after: undefined });
  assert.deepEqual(pageOf({ n: String(MAX_PAGE) }), { limit: MAX_PAGE, after: undefined });
  assert.deepEqual(pageOf({ n: String(MAX_PAGE + 1) }), { limit: MAX_PAGE, after: undefined });
  assert.deepEqual(pageOf({ n: '99999999999999999999' }), { limit: MAX_PAGE, after: undefined });
});

test('pageOf: last is where the page starts after; an empty last means the start', () => {
  assert.deepEqual(pageOf({ n: '2', last: 'v1.0' }), { limit: 2, after: 'v1.0' });
  assert.deepEqual(pageOf({ last: '' }), { limit: MAX_PAGE, after: undefined });
  assert.deepEqual(pageOf({ last: 'team/app' }), { limit: MAX_PAGE, after: 'team/app' });
});

test('pageOf: the first of repeated parameters counts', () => {
  assert.deepEqual(pageOf({ n: ['3', '4'], last: ['a', 'b'] }), { limit: 3, after: 'a' });
  assert.equal(param({ x: ['1', '2'] }, 'x'), '1');
  assert.equal(param({ x: '1' }, 'x'), '1');
  assert.equal(param({}, 'x'), undefined);
});

test('pageOf: an n that is not a whole number is PaginationNumberInvalid', () => {
  for (const n of ['-1', 'abc', '1.5', '', ' 5', '1e3']) {
    assert.throws(() => pageOf({ n }), rejectsWith('PaginationNumberInvalid', /whole number/), JSON.stringify(n));
  }
});

test('nextLink: an RFC 8288 Link to the next page, last URL-encoded', () => {
  assert.equal(nextLink('/v2/team/app/tags/list', 2, 'v1.0'), '</v2/team/app/tags/list?n=2&last=v1.0>; rel="next"');
  assert.equal(nextLink('/v2/_catalog', 10, 'team/app'), '</v2/_catalog?n=10&last=team%2Fapp>; rel="next"');
});
