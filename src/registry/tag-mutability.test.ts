import assert from 'node:assert/strict';
import { test } from 'node:test';
import { isTagImmutable, wildcardMatches } from './tag-mutability.ts';

test('wildcardMatches: * stands for any run of characters, the rest matches literally', () => {
  assert.equal(wildcardMatches('latest', 'latest'), true);
  assert.equal(wildcardMatches('latest', 'latest2'), false);
  assert.equal(wildcardMatches('*', ''), true);
  assert.equal(wildcardMatches('*', 'anything'), true);
  assert.equal(wildcardMatches('dev-*', 'dev-1'), true);
  assert.equal(wildcardMatches('dev-*', 'dev-'), true);
  assert.equal(wildcardMatches('dev-*', 'prod-1'), false);
  assert.equal(wildcardMatches('*-rc', 'v1-rc'), true);
  assert.equal(wildcardMatches('v*.*-rc*', 'v1.2-rc3'), true);
  assert.equal(wildcardMatches('v*.*-rc*', 'v12-rc3'), false);
  assert.equal(wildcardMatches('a*a', 'a'), false, 'prefix and suffix may not overlap');
  assert.equal(wildcardMatches('a*a', 'aa'), true);
  assert.equal(wildcardMatches('a.b', 'axb'), false, 'dots are literal');
  assert.equal(wildcardMatches('*ab*ab*', 'xabyab'), true);
  assert.equal(wildcardMatches('*ab*ab*', 'xab'), false);
});

test('isTagImmutable follows the mutability setting and its exclusion filters', () => {
  const filters = [{ filterType: 'WILDCARD' as const, filter: 'dev-*' }, { filterType: 'WILDCARD' as const, filter: 'latest' }];
  assert.equal(isTagImmutable({ imageTagMutability: 'MUTABLE', imageTagMutabilityExclusionFilters: filters }, 'v1'), false);
  assert.equal(isTagImmutable({ imageTagMutability: 'IMMUTABLE', imageTagMutabilityExclusionFilters: [] }, 'v1'), true);
  const immutableExcept = { imageTagMutability: 'IMMUTABLE_WITH_EXCLUSION' as const, imageTagMutabilityExclusionFilters: filters };
  assert.equal(isTagImmutable(immutableExcept, 'v1'), true);
  assert.equal(isTagImmutable(immutableExcept, 'dev-42'), false);
  assert.equal(isTagImmutable(immutableExcept, 'latest'), false);
  const mutableExcept = { imageTagMutability: 'MUTABLE_WITH_EXCLUSION' as const, imageTagMutabilityExclusionFilters: filters };
  assert.equal(isTagImmutable(mutableExcept, 'v1'), false);
  assert.equal(isTagImmutable(mutableExcept, 'dev-42'), true);
});
