import assert from 'node:assert/strict';
import { test } from 'node:test';
import { blob, pushBlob, repoName } from '../support/oci.ts';
import { expectError, expectHeadError, nextLink, sharedServer } from '../support/http.ts';
import { ADMIN, basicAuthorization } from '../support/auth.ts';

const s = sharedServer();

test('GET /v2/ with credentials answers 200 with the API version header', async () => {
  const res = await s.fetch('/v2/');
  assert.equal(res.status, 200);
  assert.equal(res.headers.get('docker-distribution-api-version'), 'registry/2.0');
  assert.deepEqual(await res.json(), {});
});

test('HEAD /v2/ with credentials answers 200 with the API version header and no body', async () => {
  const res = await s.fetch('/v2/', { method: 'HEAD' });
  assert.equal(res.status, 200);
  assert.equal(res.headers.get('docker-distribution-api-version'), 'registry/2.0');
  assert.equal((await res.arrayBuffer()).byteLength, 0);
});

test('/v2 without the trailing slash is the base endpoint too', async () => {
  const res = await s.fetch('/v2');
  assert.equal(res.status, 200);
  assert.equal(res.headers.get('docker-distribution-api-version'), 'registry/2.0');
  await res.arrayBuffer();
});

test('GET /v2/ without credentials answers 401 UNAUTHORIZED with a Basic challenge', async () => {
  const res = await s.fetch('/v2/', { headers: { authorization: '' } });
  // The challenge names the origin the client used (ECR's form).
  assert.equal(res.headers.get('www-authenticate'), `Basic realm="${s.baseUrl}/",service="berth"`);
  // Clients tell a v2 registry by this header on the 401 (spec: "Determining support").
  assert.equal(res.headers.get('docker-distribution-api-version'), 'registry/2.0');
  await expectError(res, 401, 'UNAUTHORIZED');

  const head = await s.fetch('/v2/', { method: 'HEAD', headers: { authorization: '' } });
  assert.match(head.headers.get('www-authenticate') ?? '', /^Basic realm=/);
  await expectHeadError(head, 401);
});

test('GET /v2/ with a wrong secret answers 401 UNAUTHORIZED', async () => {
  const res = await s.fetch('/v2/', { headers: { authorization: basicAuthorization(ADMIN.accessKeyId, 'not-the-secret-at-all') } });
  assert.match(res.headers.get('www-authenticate') ?? '', /^Basic realm=/);
  await expectError(res, 401, 'UNAUTHORIZED');
});

test('unknown paths answer 404 NOT_FOUND', async () => {
  for (const path of ['/v2/foo', '/v2/foo/bar', '/v2/foo/things/x', '/v2/foo/blobs', '/v2/foo/manifests', '/v2/foo/manifests/', '/v2/_catalogue', '/nope', '/v1/', '/']) {
    await expectError(await s.fetch(path), 404, 'NOT_FOUND');
  }
});

test('HEAD on an unknown path answers 404 without a body', async () => {
  await expectHeadError(await s.fetch('/v2/foo', { method: 'HEAD' }), 404);
});

test('methods an endpoint does not support answer 405 UNSUPPORTED', async () => {
  const repository = repoName();
  const layer = blob('method check');
  await pushBlob(s.baseUrl, repository, layer);
  const cases: [string, string][] = [
    ['POST', '/v2/'],
    ['PUT', '/v2/'],
    ['DELETE', '/v2/'],
    ['PATCH', '/v2/'],
    ['POST', '/v2/_catalog'],
    ['DELETE', '/v2/_catalog'],
    ['PUT', `/v2/${repository}/tags/list`],
    ['POST', `/v2/${repository}/tags/list`],
    ['POST', `/v2/${repository}/manifests/latest`],
    ['PATCH', `/v2/${repository}/manifests/latest`],
    ['POST', `/v2/${repository}/blobs/${layer.digest}`],
    ['PUT', `/v2/${repository}/blobs/${layer.digest}`],
    ['PATCH', `/v2/${repository}/blobs/${layer.digest}`],
    ['GET', `/v2/${repository}/blobs/uploads/`],
    ['PUT', `/v2/${repository}/blobs/uploads/`],
    ['DELETE', `/v2/${repository}/blobs/uploads/`],
    ['POST', `/v2/${repository}/blobs/uploads/0b5e1a34-3a6f-4d35-a1b0-8f1f3a7c1a11`],
    ['POST', `/v2/${repository}/referrers/${layer.digest}`],
    ['DELETE', `/v2/${repository}/referrers/${layer.digest}`],
  ];
  for (const [method, path] of cases) {
    const res = await s.fetch(path, { method });
    const body = await expectError(res, 405, 'UNSUPPORTED');
    assert.match(body.errors[0]!.message, new RegExp(method), `${method} ${path}`);
  }
});

test('every response carries a request id and the API version header, errors included', async () => {
  for (const path of ['/v2/', '/v2/foo', `/v2/${repoName()}/tags/list`]) {
    const res = await s.fetch(path);
    assert.match(res.headers.get('x-request-id') ?? '', /^[0-9a-f-]{36}$/, path);
    assert.equal(res.headers.get('docker-distribution-api-version'), 'registry/2.0', path);
    await res.arrayBuffer();
  }
});

test('the catalog lists repositories in order and paginates with Link headers', async () => {
  // Other tests in this file create repositories too: check ours appear once each, in order.
  const prefix = repoName('catalog');
  const names = ['b', 'a', 'e', 'c', 'd'].map((n) => `${prefix}/${n}`);
  for (const name of names) await pushBlob(s.baseUrl, name, blob(`catalog ${name}`));

  const all = await s.fetch('/v2/_catalog');
  assert.equal(all.status, 200);
  assert.match(all.headers.get('content-type') ?? '', /^application\/json/);
  const full = ((await all.json()) as { repositories: string[] }).repositories;
  assert.deepEqual(full.filter((n) => n.startsWith(`${prefix}/`)), [...names].sort());
  assert.deepEqual(full, [...full].sort(), 'catalog is in lexical order');

  const seen: string[] = [];
  let next: string | undefined = '/v2/_catalog?n=2';
  let pages = 0;
  while (next !== undefined) {
    const res = await s.fetch(next);
    assert.equal(res.status, 200);
    const page = ((await res.json()) as { repositories: string[] }).repositories;
    assert.ok(page.length <= 2, `page of ${page.length}`);
    seen.push(...page);
    next = nextLink(res.headers.get('link'));
    if (next !== undefined) assert.equal(page.length, 2, 'a page followed by another is full');
    pages++;
    assert.ok(pages < 1000, 'pagination ends');
  }
  assert.deepEqual(seen, full, 'following Links visits every repository exactly once');

  const after = await s.fetch(`/v2/_catalog?n=2&last=${encodeURIComponent(names[1]!)}`);
  const afterPage = ((await after.json()) as { repositories: string[] }).repositories;
  assert.deepEqual(afterPage, full.filter((n) => n > names[1]!).slice(0, 2));
});

test('the catalog with n=0 is empty and has no Link header', async () => {
  await pushBlob(s.baseUrl, repoName(), blob('catalog n=0'));
  const res = await s.fetch('/v2/_catalog?n=0');
  assert.equal(res.status, 200);
  assert.deepEqual(await res.json(), { repositories: [] });
  assert.equal(res.headers.get('link'), null);
});

test('the catalog refuses a page size that is not a whole number', async () => {
  for (const n of ['-1', 'abc', '1.5', '1e3', '0x10']) {
    await expectError(await s.fetch(`/v2/_catalog?n=${n}`), 400, 'PAGINATION_NUMBER_INVALID');
  }
});
