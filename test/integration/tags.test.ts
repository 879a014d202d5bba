import assert from 'node:assert/strict';
import { test } from 'node:test';
import { MT, blob, buildImage, pushBlob, pushImage, pushManifest, repoName } from '../support/oci.ts';
import { expectError, nextLink, sharedServer } from '../support/http.ts';

const s = sharedServer();

/** Lowercase only: the spec's "lexical order" is case-insensitive, so mixed case is left out. */
const TAGS = ['v10', 'v2', 'latest', '1.0', 'alpha', 'v1', 'beta-2', 'beta.1', 'z', '0'];
const SORTED = [...TAGS].sort();

async function repoWithTags(tags: string[]): Promise<string> {
  const repository = repoName();
  const image = buildImage();
  await pushImage(s.baseUrl, repository, image, tags[0]);
  for (const tag of tags.slice(1)) {
    const res = await pushManifest(s.baseUrl, repository, tag, image.manifest, image.mediaType);
    assert.equal(res.status, 201);
  }
  return repository;
}

async function list(path: string): Promise<{ res: Response; name: string; tags: string[] }> {
  const res = await s.fetch(path);
  assert.equal(res.status, 200, path);
  assert.match(res.headers.get('content-type') ?? '', /^application\/json/);
  const body = (await res.json()) as { name: string; tags: string[] };
  return { res, name: body.name, tags: body.tags };
}

test('the tag list names the repository and is in lexical order', async () => {
  const repository = await repoWithTags(TAGS);
  const { res, name, tags } = await list(`/v2/${repository}/tags/list`);
  assert.equal(name, repository);
  assert.deepEqual(tags, SORTED);
  assert.equal(res.headers.get('link'), null);
});

test('a repository without tags lists none', async () => {
  const repository = repoName();
  await pushBlob(s.baseUrl, repository, blob('untagged'));
  const image = buildImage();
  await pushImage(s.baseUrl, repository, image, image.digest);
  const { tags } = await list(`/v2/${repository}/tags/list`);
  assert.deepEqual(tags, []);
});

test('n limits the page and a Link header points at the next one', async () => {
  const repository = await repoWithTags(TAGS);
  const { res, tags } = await list(`/v2/${repository}/tags/list?n=3`);
  assert.deepEqual(tags, SORTED.slice(0, 3));
  const link = res.headers.get('link');
  assert.match(link ?? '', /^<[^>]+>; rel="next"$/);
  const next = new URL(nextLink(link)!, s.baseUrl);
  assert.equal(next.pathname, `/v2/${repository}/tags/list`);
  assert.equal(next.searchParams.get('n'), '3');
  assert.equal(next.searchParams.get('last'), SORTED[2]);
});

test('following Link headers returns every tag exactly once, in order', async () => {
  const repository = await repoWithTags(TAGS);
  for (const n of [1, 2, 3, 4, 9]) {
    const seen: string[] = [];
    let next: string | undefined = `/v2/${repository}/tags/list?n=${n}`;
    let pages = 0;
    while (next !== undefined) {
      const { res, tags } = await list(next);
      assert.ok(tags.length <= n);
      seen.push(...tags);
      next = nextLink(res.headers.get('link'));
      if (next !== undefined) assert.equal(tags.length, n, 'only the last page may be short');
      pages++;
      assert.ok(pages <= TAGS.length + 1, 'pagination ends');
    }
    assert.deepEqual(seen, SORTED, `n=${n}`);
    assert.equal(pages, Math.ceil(TAGS.length / n), `n=${n}: no empty trailing page`);
  }
});

test('a page that holds exactly the rest of the tags has no Link header', async () => {
  const repository = await repoWithTags(TAGS);
  for (const n of [TAGS.length, TAGS.length + 1, 10_000, 100_000]) {
    const { res, tags } = await list(`/v2/${repository}/tags/list?n=${n}`);
    assert.deepEqual(tags, SORTED);
    assert.equal(res.headers.get('link'), null, `n=${n}`);
  }
});

test('last starts the list after the given tag, with or without n', async () => {
  const repository = await repoWithTags(TAGS);
  assert.deepEqual((await list(`/v2/${repository}/tags/list?last=${SORTED[3]}`)).tags, SORTED.slice(4));
  assert.deepEqual((await list(`/v2/${repository}/tags/list?n=2&last=${SORTED[3]}`)).tags, SORTED.slice(4, 6));
  // A tag that does not exist still marks a position in the order.
  assert.deepEqual((await list(`/v2/${repository}/tags/list?last=m`)).tags, SORTED.filter((t) => t > 'm'));
  assert.deepEqual((await list(`/v2/${repository}/tags/list?last=${SORTED.at(-1)}`)).tags, []);
});

test('n=0 returns an empty list and no Link header', async () => {
  const repository = await repoWithTags(TAGS);
  const { res, tags } = await list(`/v2/${repository}/tags/list?n=0`);
  assert.deepEqual(tags, []);
  assert.equal(res.headers.get('link'), null);
});

test('an n that is not a whole number answers 400 PAGINATION_NUMBER_INVALID', async () => {
  const repository = await repoWithTags(['v1']);
  for (const n of ['-1', 'abc', '1.5', '2x', '%20']) {
    await expectError(await s.fetch(`/v2/${repository}/tags/list?n=${n}`), 400, 'PAGINATION_NUMBER_INVALID');
  }
});

test('listing the tags of a repository that does not exist answers 404 NAME_UNKNOWN', async () => {
  await expectError(await s.fetch(`/v2/${repoName()}/tags/list`), 404, 'NAME_UNKNOWN');
  await expectError(await s.fetch(`/v2/${repoName()}/tags/list?n=2`), 404, 'NAME_UNKNOWN');
});

test('tag changes show in the list at once', async () => {
  const repository = await repoWithTags(['a', 'b', 'c']);
  assert.equal((await s.fetch(`/v2/${repository}/manifests/b`, { method: 'DELETE' })).status, 202);
  assert.deepEqual((await list(`/v2/${repository}/tags/list`)).tags, ['a', 'c']);
  const other = buildImage();
  await pushImage(s.baseUrl, repository, other, 'd');
  assert.deepEqual((await list(`/v2/${repository}/tags/list`)).tags, ['a', 'c', 'd']);
  const res = await pushManifest(s.baseUrl, repository, 'a', other.manifest, MT.ociManifest);
  assert.equal(res.status, 201);
  assert.deepEqual((await list(`/v2/${repository}/tags/list`)).tags, ['a', 'c', 'd'], 'moving a tag does not duplicate it');
});
