import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseOciPath } from './paths.ts';

const DIGEST = 'sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855';
const UPLOAD = '5b260c08-0dd0-4e68-847e-e000efd8c448';

test('base and catalog', () => {
  assert.deepEqual(parseOciPath('/v2/'), { kind: 'base' });
  assert.deepEqual(parseOciPath('/v2'), { kind: 'base' });
  assert.deepEqual(parseOciPath('/v2/_catalog'), { kind: 'catalog' });
});

test('every route of a one-component name', () => {
  assert.deepEqual(parseOciPath('/v2/app/manifests/latest'), { kind: 'manifest', name: 'app', reference: 'latest' });
  assert.deepEqual(parseOciPath(`/v2/app/manifests/${DIGEST}`), { kind: 'manifest', name: 'app', reference: DIGEST });
  assert.deepEqual(parseOciPath('/v2/app/blobs/uploads/'), { kind: 'uploads', name: 'app' });
  assert.deepEqual(parseOciPath('/v2/app/blobs/uploads'), { kind: 'uploads', name: 'app' });
  assert.deepEqual(parseOciPath(`/v2/app/blobs/uploads/${UPLOAD}`), { kind: 'upload', name: 'app', uploadId: UPLOAD });
  assert.deepEqual(parseOciPath(`/v2/app/blobs/${DIGEST}`), { kind: 'blob', name: 'app', digest: DIGEST });
  assert.deepEqual(parseOciPath('/v2/app/tags/list'), { kind: 'tags', name: 'app' });
  assert.deepEqual(parseOciPath(`/v2/app/referrers/${DIGEST}`), { kind: 'referrers', name: 'app', digest: DIGEST });
});

test('nested names keep all their components', () => {
  assert.deepEqual(parseOciPath('/v2/team/app/manifests/v1'), { kind: 'manifest', name: 'team/app', reference: 'v1' });
  assert.deepEqual(parseOciPath('/v2/a/b/c/d/tags/list'), { kind: 'tags', name: 'a/b/c/d' });
  assert.deepEqual(parseOciPath(`/v2/org/team/app/blobs/${DIGEST}`), { kind: 'blob', name: 'org/team/app', digest: DIGEST });
  assert.deepEqual(parseOciPath('/v2/org/team/app/blobs/uploads/'), { kind: 'uploads', name: 'org/team/app' });
  assert.deepEqual(parseOciPath(`/v2/org/team/app/blobs/uploads/${UPLOAD}`), { kind: 'upload', name: 'org/team/app', uploadId: UPLOAD });
  assert.deepEqual(parseOciPath(`/v2/org/team/app/referrers/${DIGEST}`), { kind: 'referrers', name: 'org/team/app', digest: DIGEST });
});

test('names whose components are route words are routed by the last route segment', () => {
  // A repository may be called blobs, manifests, tags, uploads or referrers, or contain them.
  assert.deepEqual(parseOciPath('/v2/blobs/manifests/latest'), { kind: 'manifest', name: 'blobs', reference: 'latest' });
  assert.deepEqual(parseOciPath('/v2/manifests/manifests/latest'), { kind: 'manifest', name: 'manifests', reference: 'latest' });
  assert.deepEqual(parseOciPath('/v2/a/manifests/b/manifests/v1'), { kind: 'manifest', name: 'a/manifests/b', reference: 'v1' });
  assert.deepEqual(parseOciPath('/v2/team/blobs/uploads/manifests/v1'), { kind: 'manifest', name: 'team/blobs/uploads', reference: 'v1' });
  assert.deepEqual(parseOciPath(`/v2/team/blobs/app/blobs/${DIGEST}`), { kind: 'blob', name: 'team/blobs/app', digest: DIGEST });
  assert.deepEqual(parseOciPath(`/v2/manifests/blobs/${DIGEST}`), { kind: 'blob', name: 'manifests', digest: DIGEST });
  assert.deepEqual(parseOciPath(`/v2/a/manifests/x/blobs/${DIGEST}`), { kind: 'blob', name: 'a/manifests/x', digest: DIGEST });
  assert.deepEqual(parseOciPath(`/v2/foo/blobs/uploads/blobs/${DIGEST}`), { kind: 'blob', name: 'foo/blobs/uploads', digest: DIGEST });
  assert.deepEqual(parseOciPath('/v2/x/blobs/uploads/blobs/uploads/'), { kind: 'uploads', name: 'x/blobs/uploads' });
  assert.deepEqual(parseOciPath(`/v2/x/blobs/uploads/blobs/uploads/${UPLOAD}`), { kind: 'upload', name: 'x/blobs/uploads', uploadId: UPLOAD });
  assert.deepEqual(parseOciPath('/v2/blobs/blobs/uploads/'), { kind: 'uploads', name: 'blobs' });
  assert.deepEqual(parseOciPath('/v2/tags/tags/list'), { kind: 'tags', name: 'tags' });
  assert.deepEqual(parseOciPath('/v2/a/tags/list/tags/list'), { kind: 'tags', name: 'a/tags/list' });
  assert.deepEqual(parseOciPath('/v2/app/manifests/tags/list'), { kind: 'tags', name: 'app/manifests' });
  assert.deepEqual(parseOciPath(`/v2/referrers/referrers/${DIGEST}`), { kind: 'referrers', name: 'referrers', digest: DIGEST });
  assert.deepEqual(parseOciPath('/v2/_catalog/tags/list'), { kind: 'tags', name: '_catalog' });
});

test('an upload URL is an upload, never a blob named "uploads"', () => {
  assert.deepEqual(parseOciPath('/v2/app/blobs/uploads'), { kind: 'uploads', name: 'app' });
  assert.deepEqual(parseOciPath('/v2/app/blobs/uploads/abc'), { kind: 'upload', name: 'app', uploadId: 'abc' });
});

test('tags and digests that look like route words are references', () => {
  assert.deepEqual(parseOciPath('/v2/app/manifests/manifests'), { kind: 'manifest', name: 'app', reference: 'manifests' });
  assert.deepEqual(parseOciPath('/v2/app/manifests/list'), { kind: 'manifest', name: 'app', reference: 'list' });
  assert.deepEqual(parseOciPath('/v2/app/blobs/blobs'), { kind: 'blob', name: 'app', digest: 'blobs' });
});

test('paths outside the API are not routes', () => {
  for (const p of [
    '/',
    '/v1/',
    '/v2x',
    '/v22/app/tags/list',
    '/healthz',
    '/v2/app',
    '/v2/app/',
    '/v2/app/manifests',
    '/v2/app/manifests/',
    '/v2/app/manifests/a/b',
    '/v2/app/blobs',
    '/v2/app/blobs/',
    '/v2/app/tags',
    '/v2/app/tags/list/',
    '/v2/app/referrers',
    '/v2/app/referrers/',
    '/v2/manifests/latest',
    '/v2/blobs/uploads/',
    '/v2//manifests/latest',
    '/v2/_catalog/',
  ]) {
    assert.equal(parseOciPath(p), undefined, p);
  }
});
