import assert from 'node:assert/strict';
import { describe } from 'node:test';
import { digestOf, type Digest } from '../../src/digest/digest.ts';
import type { ImageFilter, ImageSort, ListPosition, RepositoryFigures, SortOrder } from '../../src/store/meta/listing-store.ts';
import type { ManifestRecord, ManifestReference, MetaStore, Repository } from '../../src/store/meta/meta-store.ts';
import { manifest, storeTest, T0, type MetaStoreHarness } from './harness.ts';

const ACCOUNT = '111122223333';
const OTHER_ACCOUNT = '444455556666';
const INDEX_MT = 'application/vnd.oci.image.index.v1+json';
/** Past 2^32, so that a driver reading bigint sums back as strings or 32-bit integers shows here. */
const BIG = 5 * 1024 ** 3 + 123;
const NO_FIGURES: RepositoryFigures = { imageCount: 0, manifestBytes: 0, blobCount: 0, blobBytes: 0, sizeBytes: 0 };

const blobRefs = (...digests: Digest[]): ManifestReference[] => digests.map((digest) => ({ digest, kind: 'blob' }));
const childRefs = (...digests: Digest[]): ManifestReference[] => digests.map((digest) => ({ digest, kind: 'manifest' }));

/** Byte order, as the store sorts names, tags and digests (not a locale's collation). */
function byBytes(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a), Buffer.from(b));
}

/** Compares sort keys left to right: numbers as numbers, strings as bytes. */
function byKeys(a: Array<number | string>, b: Array<number | string>): number {
  for (let i = 0; i < a.length; i++) {
    const x = a[i]!;
    const y = b[i]!;
    const c = typeof x === 'number' && typeof y === 'number' ? x - y : byBytes(String(x), String(y));
    if (c !== 0) return c;
  }
  return 0;
}

/**
 * Every row of a keyset listing, `limit` at a time, each page continuing after the position the
 * previous one ended at (sent through JSON, as the console's nextToken carries it). Checks each
 * page's size and that paging ends.
 */
async function allPages<T extends { position: ListPosition }>(list: (after: ListPosition | undefined, limit: number) => Promise<T[]>, limit: number): Promise<T[]> {
  const all: T[] = [];
  let after: ListPosition | undefined;
  for (let pages = 0; ; pages++) {
    assert.ok(pages <= 1000, 'paging ends');
    const page = await list(after, limit);
    assert.ok(page.length <= limit, `a page holds at most ${limit}, got ${page.length}`);
    if (page.length === 0) return all;
    all.push(...page);
    after = JSON.parse(JSON.stringify(page.at(-1)!.position)) as ListPosition;
  }
}

/** Asserts that `rows` holds each expected row once, in order, at the position expected for it. */
function assertRows<T>(got: T[], expected: T[], what: string): void {
  assert.deepEqual(got, expected, what);
}

/**
 * The console's lists (ListingStore, src/store/meta/listing-store.ts) on every MetaStore driver:
 * an account's repositories and a repository's images in each order, in keyset pages that hold
 * every row once; their filters; the storage figures of repositories and accounts; and the cache
 * of image sizes (migration 0016-console-lists).
 */
export function listingStoreContract(name: string, open: () => Promise<MetaStoreHarness>): void {
  const listingTest = storeTest(open);

  // --- repositories -------------------------------------------------------------------------

  /**
   * Names whose byte order differs from a locale's (punctuation, digits, `_`), with creation
   * times that tie, in two accounts. Resolves the account's repositories as created.
   */
  async function repositoryFixture(store: MetaStore): Promise<Repository[]> {
    const specs: Array<[string, number]> = [
      ['team/app', 5],
      ['a-b', 1],
      ['a.b', 5],
      ['a/b', 3],
      ['a0', 1],
      ['a_b', 5],
      ['ab', 2],
      ['b', 9],
      ['team/app-x', 0],
      ['team/app/x', 5],
      ['x%y', 4],
      ['xzy', 4],
      ['axb', 1],
    ];
    const out: Repository[] = [];
    for (const [repositoryName, at] of specs) out.push((await store.createRepository(ACCOUNT, repositoryName, T0 + at * 1000)).repository);
    // Another account's repositories, some of the same names, in every part of the orders.
    for (const [repositoryName, at] of [['a-b', 0], ['aa', 3], ['zz', 99], ['team/app', 5]] as const) {
      await store.createRepository(OTHER_ACCOUNT, repositoryName, T0 + at * 1000);
    }
    return out;
  }

  function repositoryOrder(repos: Repository[], sortBy: 'name' | 'createdAt', order: SortOrder): Repository[] {
    const keys = (r: Repository) => (sortBy === 'name' ? [r.name] : [r.createdAtMs, r.name]);
    const sorted = [...repos].sort((a, b) => byKeys(keys(a), keys(b)));
    return order === 'DESC' ? sorted.reverse() : sorted;
  }

  function repositoryRows(repos: Repository[], sortBy: 'name' | 'createdAt') {
    return repos.map((repository) => ({ repository, position: { value: sortBy === 'name' ? repository.name : repository.createdAtMs, id: repository.name } }));
  }

  // --- storage figures ----------------------------------------------------------------------

  /**
   * Repositories sharing blobs: A (two images sharing a config and a layer, and an index of
   * them), B and D (sharing a layer with A and each other), E (empty), and one of another
   * account.
   */
  async function storageFixture(store: MetaStore) {
    const blob = async (label: string, sizeBytes: number) => {
      const digest = digestOf(Buffer.from(`listing contract blob ${label}`));
      await store.putBlob({ digest, sizeBytes }, T0);
      return { digest, sizeBytes };
    };
    const config1 = await blob('config1', 300);
    const config2 = await blob('config2', 400);
    const layer1 = await blob('layer1', BIG);
    const layer2 = await blob('layer2', 1000);
    const layer3 = await blob('layer3', 7);
    const layer4 = await blob('layer4', 50);
    const repo = async (repositoryName: string, accountId = ACCOUNT) => (await store.createRepository(accountId, repositoryName, T0)).repository;
    const a = await repo('storage/a');
    const b = await repo('storage/b');
    const d = await repo('storage/d');
    const e = await repo('storage/empty');
    const other = await repo('storage/a', OTHER_ACCOUNT);
    const put = async (repositoryId: number, references: ManifestReference[], overrides: Partial<ManifestRecord> = {}) => {
      const m = manifest(overrides);
      const outcome = await store.putManifest(repositoryId, m, references);
      assert.deepEqual(outcome, { created: true, missingBlobs: [], missingManifests: [] });
      return m;
    };
    const a1 = await put(a.id, blobRefs(config1.digest, layer1.digest, layer2.digest));
    const a2 = await put(a.id, blobRefs(config1.digest, layer2.digest, layer3.digest));
    // The index's children are manifests, not blobs, even where their bytes are recorded as blobs too.
    await store.putBlob({ digest: a1.digest, sizeBytes: a1.sizeBytes }, T0);
    const aIndex = await put(a.id, childRefs(a1.digest, a2.digest), { mediaType: INDEX_MT });
    const b1 = await put(b.id, blobRefs(config2.digest, layer1.digest));
    const d1 = await put(d.id, blobRefs(config2.digest, layer1.digest, layer3.digest));
    const d2 = await put(d.id, blobRefs(layer4.digest));
    const o1 = await put(other.id, blobRefs(config1.digest, layer1.digest, layer2.digest));
    return { blobs: { config1, config2, layer1, layer2, layer3, layer4 }, repos: { a, b, d, e, other }, manifests: { a1, a2, aIndex, b1, d1, d2, o1 } };
  }

  function figures(manifests: ManifestRecord[], blobs: Array<{ sizeBytes: number }>): RepositoryFigures {
    const manifestBytes = manifests.reduce((s, m) => s + m.sizeBytes, 0);
    const blobBytes = blobs.reduce((s, b) => s + b.sizeBytes, 0);
    return { imageCount: manifests.length, manifestBytes, blobCount: blobs.length, blobBytes, sizeBytes: manifestBytes + blobBytes };
  }

  // --- images -------------------------------------------------------------------------------

  interface Image {
    m: ManifestRecord;
    tags: string[];
    sizeBytes: number | undefined;
  }

  /**
   * A repository of images with push times that tie, tags of both cases (some several to an
   * image, some with LIKE's wildcards), untagged images, and recorded sizes that tie and pass
   * 2^32 (some not recorded); and a second repository holding one of its images under other
   * tags and another size.
   */
  async function imageFixture(store: MetaStore) {
    const repo = (await store.createRepository(ACCOUNT, 'app/images', T0)).repository;
    const elsewhere = (await store.createRepository(ACCOUNT, 'app/elsewhere', T0)).repository;
    const specs: Array<{ at: number; tags: string[]; sizeBytes?: number }> = [
      { at: 1, tags: ['v1.0', 'Latest'], sizeBytes: 10 },
      { at: 2, tags: ['v2'], sizeBytes: 9 },
      { at: 2, tags: [], sizeBytes: 100 },
      { at: 3, tags: ['a_b'], sizeBytes: BIG },
      { at: 3, tags: ['axb'], sizeBytes: 10 },
      { at: 5, tags: [], sizeBytes: 10 },
      { at: 4, tags: ['V1-rc'] },
      { at: 0, tags: [], sizeBytes: 0 },
      { at: 6, tags: ['latest-2', 'zeta'] },
      { at: 2, tags: ['Zed'], sizeBytes: 9 },
      { at: 2, tags: ['v2.1', 'v2.0', 'v2.10'], sizeBytes: 9 },
    ];
    const images: Image[] = [];
    for (const spec of specs) {
      const m = manifest({ createdAtMs: T0 + spec.at * 1000 });
      await store.putManifest(repo.id, m, []);
      for (const tag of spec.tags) await store.putTag(repo.id, tag, m.digest, T0);
      images.push({ m, tags: spec.tags, sizeBytes: spec.sizeBytes });
    }
    // The same manifest in another repository: tagged there (and not here), with another size.
    const shared = images[5]!;
    await store.putManifest(elsewhere.id, shared.m, []);
    await store.putTag(elsewhere.id, 'latest', shared.m.digest, T0);
    const only = manifest({ createdAtMs: T0 + 1500 });
    await store.putManifest(elsewhere.id, only, []);
    await store.putTag(elsewhere.id, 'latest-s', only.digest, T0);
    await store.listings.recordImageSizes(elsewhere.id, [{ digest: shared.m.digest, sizeBytes: 7 }, { digest: only.digest, sizeBytes: 1 }]);
    await store.listings.recordImageSizes(repo.id, images.flatMap((i) => (i.sizeBytes === undefined ? [] : [{ digest: i.m.digest, sizeBytes: i.sizeBytes }])));
    return { repo, elsewhere, images };
  }

  function imageMatches(image: Image, filter: Omit<ImageFilter, 'repositoryId'>): boolean {
    const isTagged = image.tags.length > 0;
    if (filter.tagStatus === 'TAGGED' && !isTagged) return false;
    if (filter.tagStatus === 'UNTAGGED' && isTagged) return false;
    const c = filter.contains;
    return !c || image.m.digest.includes(c) || image.tags.some((t) => t.toLowerCase().includes(c));
  }

  /** The rows listImages should give, in order, with their positions. */
  function imageRows(images: Image[], sortBy: ImageSort, order: SortOrder): Array<{ digest: Digest; position: ListPosition }> {
    const firstTag = (i: Image) => [...i.tags].sort(byBytes)[0];
    const rows = images
      .filter((i) => sortBy !== 'sizeBytes' || i.sizeBytes !== undefined)
      .map((i) => {
        if (sortBy === 'pushedAt') return { keys: [i.m.createdAtMs, i.m.digest], row: { digest: i.m.digest, position: { value: i.m.createdAtMs, id: i.m.digest } } };
        if (sortBy === 'sizeBytes') return { keys: [i.sizeBytes!, i.m.digest], row: { digest: i.m.digest, position: { value: i.sizeBytes!, id: i.m.digest } } };
        const tag = firstTag(i);
        return { keys: [tag === undefined ? 1 : 0, tag ?? '', i.m.digest], row: { digest: i.m.digest, position: { value: tag ?? null, id: i.m.digest } } };
      })
      .sort((a, b) => byKeys(a.keys, b.keys))
      .map((r) => r.row);
    return order === 'DESC' ? rows.reverse() : rows;
  }

  describe(`ListingStore contract: ${name}`, () => {
    // --- listRepositoryEntries ----------------------------------------------------------------

    listingTest('listRepositoryEntries: every repository of the account in byte order, with its creation time and whether it has a policy', async (store) => {
      assert.deepEqual(await store.listings.listRepositoryEntries(ACCOUNT), [], 'an account without repositories');
      const repos = await repositoryFixture(store);
      const withPolicy = repos.find((r) => r.name === 'a_b')!;
      const policyRemoved = repos.find((r) => r.name === 'b')!;
      assert.equal(await store.setRepositoryPolicy(withPolicy.id, '{"Version":"2012-10-17","Statement":[]}'), true);
      assert.equal(await store.setRepositoryPolicy(policyRemoved.id, '{"Version":"2012-10-17","Statement":[]}'), true);
      assert.equal(await store.setRepositoryPolicy(policyRemoved.id, null), true);
      const entries = await store.listings.listRepositoryEntries(ACCOUNT);
      const expected = repositoryOrder(repos, 'name', 'ASC').map((r) => ({ id: r.id, name: r.name, createdAtMs: r.createdAtMs, hasPolicy: r.id === withPolicy.id }));
      assert.deepEqual(entries, expected);
      assert.deepEqual(
        entries.map((e) => e.name),
        ['a-b', 'a.b', 'a/b', 'a0', 'a_b', 'ab', 'axb', 'b', 'team/app', 'team/app-x', 'team/app/x', 'x%y', 'xzy'],
        'byte order, not a locale’s',
      );
      assert.deepEqual(
        (await store.listings.listRepositoryEntries(OTHER_ACCOUNT)).map((e) => e.name),
        ['a-b', 'aa', 'team/app', 'zz'],
        'each account its own',
      );
      assert.deepEqual(await store.listings.listRepositoryEntries('999999999999'), []);
    });

    // --- listRepositories ---------------------------------------------------------------------

    listingTest('listRepositories by name and by creation time, both orders: keyset pages hold every repository once, ties by name', async (store) => {
      const repos = await repositoryFixture(store);
      for (const sortBy of ['name', 'createdAt'] as const) {
        for (const order of ['ASC', 'DESC'] as const) {
          const expected = repositoryRows(repositoryOrder(repos, sortBy, order), sortBy);
          for (const limit of [1, 3, 100]) {
            const got = await allPages((after, l) => store.listings.listRepositories({ accountId: ACCOUNT, sortBy, order, after, limit: l }), limit);
            assertRows(got, expected, `${sortBy} ${order}, ${limit} a page`);
          }
        }
      }
      // The ties, spelled out: created at +1s are a-b, a0 and axb; at +5s a.b, a_b, team/app and team/app/x.
      const byCreation = (await store.listings.listRepositories({ accountId: ACCOUNT, sortBy: 'createdAt', order: 'ASC', limit: 100 })).map((r) => r.repository.name);
      assert.deepEqual(byCreation, ['team/app-x', 'a-b', 'a0', 'axb', 'ab', 'a/b', 'x%y', 'xzy', 'a.b', 'a_b', 'team/app', 'team/app/x', 'b']);
      assert.deepEqual(await store.listings.listRepositories({ accountId: '999999999999', sortBy: 'name', order: 'ASC', limit: 10 }), []);
    });

    listingTest('listRepositories: nameContains matches literally (LIKE’s `_` and `%` included), excludeIds leaves repositories out, in every order and page size', async (store) => {
      const repos = await repositoryFixture(store);
      const id = (n: string) => repos.find((r) => r.name === n)!.id;
      const absentIds = Array.from({ length: 1000 }, (_, i) => 1_000_000 + i);
      const cases: Array<{ nameContains?: string; excludeIds?: number[]; names?: string[] }> = [
        { nameContains: '_', names: ['a_b'] },
        { nameContains: '%', names: ['x%y'] },
        { nameContains: 'x%', names: ['x%y'] },
        { nameContains: 'a_', names: ['a_b'] },
        { nameContains: '.', names: ['a.b'] },
        { nameContains: '\\', names: [] },
        { nameContains: 'app', names: ['team/app', 'team/app-x', 'team/app/x'] },
        { nameContains: 'app/' },
        { nameContains: 'a' },
        { nameContains: 'zz', names: [] },
        { nameContains: '' },
        { excludeIds: [id('a0'), id('team/app'), id('xzy')] },
        { excludeIds: [] },
        { nameContains: 'b', excludeIds: [...absentIds, id('ab'), id('a-b')] },
        { excludeIds: repos.map((r) => r.id), names: [] },
      ];
      for (const c of cases) {
        const kept = repos.filter((r) => r.name.includes(c.nameContains ?? '') && !(c.excludeIds ?? []).includes(r.id));
        if (c.names) assert.deepEqual(kept.map((r) => r.name).sort(byBytes), c.names, `the fixture for ${JSON.stringify(c.nameContains)}`);
        for (const sortBy of ['name', 'createdAt'] as const) {
          for (const order of ['ASC', 'DESC'] as const) {
            const expected = repositoryRows(repositoryOrder(kept, sortBy, order), sortBy);
            for (const limit of [2, 100]) {
              const got = await allPages((after, l) => store.listings.listRepositories({ accountId: ACCOUNT, nameContains: c.nameContains, excludeIds: c.excludeIds, sortBy, order, after, limit: l }), limit);
              assertRows(got, expected, `${JSON.stringify({ nameContains: c.nameContains, excluded: c.excludeIds?.length })} ${sortBy} ${order}, ${limit} a page`);
            }
          }
        }
      }
    });

    listingTest('listRepositories: repositories created or deleted between pages neither repeat rows nor push others out', async (store) => {
      const repos = await repositoryFixture(store);
      for (const sortBy of ['name', 'createdAt'] as const) {
        const expected = repositoryOrder(repos, sortBy, 'ASC');
        const first = await store.listings.listRepositories({ accountId: ACCOUNT, sortBy, order: 'ASC', limit: 4 });
        assert.deepEqual(first.map((r) => r.repository), expected.slice(0, 4));
        // Before the position: one that sorts first in either order; after it: one created, one deleted.
        const early = (await store.createRepository(ACCOUNT, `0-early-${sortBy}`, T0 - 1000)).repository;
        const late = (await store.createRepository(ACCOUNT, `zz-late-${sortBy}`, T0 + 100_000)).repository;
        const gone = expected[6]!;
        assert.equal(await store.deleteRepository(gone.id), true);
        const rest = await allPages((after, limit) => store.listings.listRepositories({ accountId: ACCOUNT, sortBy, order: 'ASC', after: after ?? first.at(-1)!.position, limit }), 3);
        assert.deepEqual(
          rest.map((r) => r.repository.name),
          repositoryOrder([...expected.slice(4).filter((r) => r.id !== gone.id), late], sortBy, 'ASC').map((r) => r.name),
          sortBy,
        );
        assert.ok(!rest.some((r) => r.repository.id === early.id));
        repos.splice(repos.indexOf(gone), 1);
        repos.push(early, late);
      }
    });

    // --- repositoryFigures and accountFigures -------------------------------------------------

    listingTest('repositoryFigures: images, manifest bytes and the distinct blobs of each repository; a shared blob counts in each; missing ids are left out', async (store) => {
      const { blobs, repos, manifests } = await storageFixture(store);
      const { a, b, d, e, other } = repos;
      const expectedA = figures([manifests.a1, manifests.a2, manifests.aIndex], [blobs.config1, blobs.layer1, blobs.layer2, blobs.layer3]);
      const expectedB = figures([manifests.b1], [blobs.config2, blobs.layer1]);
      const expectedD = figures([manifests.d1, manifests.d2], [blobs.config2, blobs.layer1, blobs.layer3, blobs.layer4]);
      const expectedOther = figures([manifests.o1], [blobs.config1, blobs.layer1, blobs.layer2]);
      assert.ok(expectedA.sizeBytes > 2 ** 32);
      const got = await store.listings.repositoryFigures([a.id, b.id, d.id, e.id, other.id, 999_999, a.id]);
      assert.deepEqual(
        [...got.entries()].sort((x, y) => x[0] - y[0]),
        [
          [a.id, expectedA],
          [b.id, expectedB],
          [d.id, expectedD],
          [e.id, NO_FIGURES],
          [other.id, expectedOther],
        ].sort((x, y) => (x[0] as number) - (y[0] as number)),
      );
      assert.deepEqual(await store.listings.repositoryFigures([]), new Map());
      assert.deepEqual(await store.listings.repositoryFigures([999_999]), new Map());
      // More ids than one query's list: the real ones past the first few hundred are still found.
      const many = [...Array.from({ length: 700 }, (_, i) => 2_000_000 + i), b.id, e.id];
      assert.deepEqual(await store.listings.repositoryFigures(many), new Map([[b.id, expectedB], [e.id, NO_FIGURES]]));

      // A deleted image takes its manifest and the blobs only it referenced out of the figures.
      assert.equal(await store.deleteManifest(a.id, manifests.aIndex.digest, T0), true);
      assert.equal(await store.deleteManifest(a.id, manifests.a2.digest, T0), true);
      assert.deepEqual((await store.listings.repositoryFigures([a.id])).get(a.id), figures([manifests.a1], [blobs.config1, blobs.layer1, blobs.layer2]));
      assert.equal(await store.deleteRepository(d.id, T0), true);
      assert.deepEqual([...(await store.listings.repositoryFigures([d.id, b.id])).keys()], [b.id], 'a deleted repository is left out');
    });

    listingTest('accountFigures: every blob of the account once, shared blobs counted among the repositories included, excludeIds', async (store) => {
      assert.deepEqual(await store.listings.accountFigures(ACCOUNT), { repositoryCount: 0, imageCount: 0, manifestBytes: 0, blobCount: 0, blobBytes: 0, sharedBlobCount: 0, sharedBlobBytes: 0 });
      const { blobs, repos, manifests } = await storageFixture(store);
      const { a, b, d, e } = repos;
      const account = (repositoryCount: number, ms: ManifestRecord[], bs: Array<{ sizeBytes: number }>, shared: Array<{ sizeBytes: number }>) => ({
        repositoryCount,
        imageCount: ms.length,
        manifestBytes: ms.reduce((s, m) => s + m.sizeBytes, 0),
        blobCount: bs.length,
        blobBytes: bs.reduce((s, x) => s + x.sizeBytes, 0),
        sharedBlobCount: shared.length,
        sharedBlobBytes: shared.reduce((s, x) => s + x.sizeBytes, 0),
      });
      const { config1, config2, layer1, layer2, layer3, layer4 } = blobs;
      const { a1, a2, aIndex, b1, d1, d2 } = manifests;
      const all = [config1, config2, layer1, layer2, layer3, layer4];
      // layer1 is in a, b and d; config2 in b and d; layer3 in a and d. config1 and layer2 are shared only within a.
      const everything = account(4, [a1, a2, aIndex, b1, d1, d2], all, [config2, layer1, layer3]);
      assert.deepEqual(await store.listings.accountFigures(ACCOUNT), everything);
      assert.deepEqual(await store.listings.accountFigures(ACCOUNT, { excludeIds: [] }), everything);
      assert.deepEqual(await store.listings.accountFigures(ACCOUNT, { excludeIds: [e.id, 999_999] }), account(3, [a1, a2, aIndex, b1, d1, d2], all, [config2, layer1, layer3]));
      assert.deepEqual(await store.listings.accountFigures(ACCOUNT, { excludeIds: [d.id] }), account(3, [a1, a2, aIndex, b1], [config1, config2, layer1, layer2, layer3], [layer1]));
      assert.deepEqual(await store.listings.accountFigures(ACCOUNT, { excludeIds: [a.id] }), account(3, [b1, d1, d2], [config2, layer1, layer3, layer4], [config2, layer1]));
      assert.deepEqual(await store.listings.accountFigures(ACCOUNT, { excludeIds: [b.id, d.id] }), account(2, [a1, a2, aIndex], [config1, layer1, layer2, layer3], []));
      const manyExcluded = [...Array.from({ length: 1000 }, (_, i) => 3_000_000 + i), a.id, b.id, d.id, e.id];
      assert.deepEqual(await store.listings.accountFigures(ACCOUNT, { excludeIds: manyExcluded }), account(0, [], [], []));
      // Another account's repository shares blobs with these, but counts only in its own account.
      assert.deepEqual(await store.listings.accountFigures(OTHER_ACCOUNT), account(1, [manifests.o1], [config1, layer1, layer2], []));
    });

    // --- listImages and countImages -----------------------------------------------------------

    listingTest('listImages in each order, both directions: keyset pages hold every image once, ties by digest; countImages counts what passes the filter', async (store) => {
      const { repo, elsewhere, images } = await imageFixture(store);
      const digestPart = images[2]!.m.digest.slice(20, 40);
      const filters: Array<Omit<ImageFilter, 'repositoryId'> & { expectCount?: number }> = [
        { tagStatus: 'ANY', expectCount: 11 },
        { tagStatus: 'TAGGED', expectCount: 8 },
        { tagStatus: 'UNTAGGED', expectCount: 3 },
        // Tags in lower case: Latest, latest-2; not the other repository's tag on images[5].
        { tagStatus: 'ANY', contains: 'latest', expectCount: 2 },
        { tagStatus: 'TAGGED', contains: 'latest', expectCount: 2 },
        { tagStatus: 'UNTAGGED', contains: 'latest', expectCount: 0 },
        { tagStatus: 'ANY', contains: 'v1', expectCount: 2 },
        { tagStatus: 'ANY', contains: 'z', expectCount: 2 },
        { tagStatus: 'ANY', contains: '_', expectCount: 1 },
        { tagStatus: 'ANY', contains: '%', expectCount: 0 },
        { tagStatus: 'ANY', contains: 'v2.1', expectCount: 1 },
        { tagStatus: 'ANY', contains: 'latest-s', expectCount: 0 },
        { tagStatus: 'ANY', contains: digestPart, expectCount: 1 },
        { tagStatus: 'TAGGED', contains: digestPart, expectCount: 0 },
        { tagStatus: 'UNTAGGED', contains: 'sha256:', expectCount: 3 },
        { tagStatus: 'ANY', contains: images[8]!.m.digest, expectCount: 1 },
      ];
      for (const { expectCount, ...f } of filters) {
        const filter: ImageFilter = { repositoryId: repo.id, ...f };
        const kept = images.filter((i) => imageMatches(i, f));
        assert.equal(kept.length, expectCount, `the fixture for ${JSON.stringify(f)}`);
        assert.equal(await store.listings.countImages(filter), kept.length, `countImages ${JSON.stringify(f)}`);
        for (const sortBy of ['pushedAt', 'sizeBytes', 'tag'] as const) {
          for (const order of ['ASC', 'DESC'] as const) {
            const expected = imageRows(kept, sortBy, order);
            for (const limit of f.contains === undefined && f.tagStatus === 'ANY' ? [1, 3, 100] : [2, 100]) {
              const got = await allPages((after, l) => store.listings.listImages({ ...filter, sortBy, order, after, limit: l }), limit);
              assertRows(got, expected, `${JSON.stringify(f)} ${sortBy} ${order}, ${limit} a page`);
            }
          }
        }
      }
      // Spelled out: the first tag in byte order (upper case first), untagged images last.
      const byTag = await store.listings.listImages({ repositoryId: repo.id, tagStatus: 'ANY', sortBy: 'tag', order: 'ASC', limit: 100 });
      assert.deepEqual(
        byTag.map((r) => r.position.value),
        ['Latest', 'V1-rc', 'Zed', 'a_b', 'axb', 'latest-2', 'v2', 'v2.0', null, null, null],
      );
      // Sizes past 2^32 and below 10 sort as numbers.
      const bySize = await store.listings.listImages({ repositoryId: repo.id, tagStatus: 'ANY', sortBy: 'sizeBytes', order: 'ASC', limit: 100 });
      assert.deepEqual(bySize.map((r) => r.position.value), [0, 9, 9, 9, 10, 10, 10, 100, BIG]);
      // The other repository's images, sizes and tags are its own.
      const there = await store.listings.listImages({ repositoryId: elsewhere.id, tagStatus: 'ANY', sortBy: 'sizeBytes', order: 'ASC', limit: 100 });
      assert.deepEqual(there.map((r) => r.position.value), [1, 7]);
      assert.equal(await store.listings.countImages({ repositoryId: elsewhere.id, tagStatus: 'TAGGED', contains: 'latest' }), 2);
      assert.equal(await store.listings.countImages({ repositoryId: 999_999, tagStatus: 'ANY' }), 0);
      assert.deepEqual(await store.listings.listImages({ repositoryId: 999_999, tagStatus: 'ANY', sortBy: 'pushedAt', order: 'ASC', limit: 10 }), []);
    });

    listingTest('listImages: tags moved and images pushed or deleted between pages neither repeat rows nor push others out', async (store) => {
      const { repo, images } = await imageFixture(store);
      const expected = imageRows(images, 'pushedAt', 'ASC');
      const first = await store.listings.listImages({ repositoryId: repo.id, tagStatus: 'ANY', sortBy: 'pushedAt', order: 'ASC', limit: 4 });
      assert.deepEqual(first, expected.slice(0, 4));
      const early = manifest({ createdAtMs: T0 - 1000 });
      const late = manifest({ createdAtMs: T0 + 100_000 });
      await store.putManifest(repo.id, early, []);
      await store.putManifest(repo.id, late, []);
      const gone = expected[7]!.digest;
      assert.equal(await store.deleteManifest(repo.id, gone, T0), true);
      const rest = await allPages((after, limit) => store.listings.listImages({ repositoryId: repo.id, tagStatus: 'ANY', sortBy: 'pushedAt', order: 'ASC', after: after ?? first.at(-1)!.position, limit }), 2);
      assert.deepEqual(rest.map((r) => r.digest), [...expected.slice(4).map((r) => r.digest).filter((d) => d !== gone), late.digest]);

      // In the tag order, an image whose tags change moves; the others stay where they were.
      const byTag = imageRows(images.filter((i) => i.m.digest !== gone), 'tag', 'ASC');
      const head = await store.listings.listImages({ repositoryId: repo.id, tagStatus: 'TAGGED', sortBy: 'tag', order: 'ASC', limit: 3 });
      assert.deepEqual(head, byTag.slice(0, 3));
      const untagged = images.find((i) => i.tags.length === 0 && i.m.digest !== gone)!;
      await store.putTag(repo.id, 'zzz', untagged.m.digest, T0);
      await store.putTag(repo.id, 'AAA', late.digest, T0);
      const tail = await allPages((after, limit) => store.listings.listImages({ repositoryId: repo.id, tagStatus: 'TAGGED', sortBy: 'tag', order: 'ASC', after: after ?? head.at(-1)!.position, limit }), 2);
      assert.deepEqual(
        tail.map((r) => r.position.value),
        [...byTag.slice(3).flatMap((r) => (r.position.value === null ? [] : [r.position.value])), 'zzz'],
      );
    });

    // --- image sizes ----------------------------------------------------------------------------

    listingTest('listImagesWithoutSize and recordImageSizes: sizes recorded once, per repository; a deleted manifest’s size goes with it', async (store) => {
      const repo = (await store.createRepository(ACCOUNT, 'sizes/here', T0)).repository;
      const elsewhere = (await store.createRepository(ACCOUNT, 'sizes/elsewhere', T0)).repository;
      const ms = Array.from({ length: 6 }, (_, i) => manifest({ createdAtMs: T0 + i, ...(i === 0 ? { mediaType: INDEX_MT } : {}) }));
      for (const m of ms) await store.putManifest(repo.id, m, []);
      const onlyThere = manifest();
      await store.putManifest(elsewhere.id, onlyThere, []);
      await store.putManifest(elsewhere.id, ms[1]!, []);
      const sorted = [...ms].sort((a, b) => byBytes(a.digest, b.digest));
      const asRow = (m: ManifestRecord): { digest: Digest; mediaType: string; payload: Buffer } => ({ digest: m.digest, mediaType: m.mediaType, payload: Buffer.from(m.payload) });
      const without = async (repositoryId: number, limit: number) => {
        const out: Array<ReturnType<typeof asRow>> = [];
        let afterDigest: Digest | undefined;
        for (;;) {
          const page = await store.listings.listImagesWithoutSize(repositoryId, { afterDigest, limit });
          assert.ok(page.length <= limit);
          if (page.length === 0) return out;
          for (const r of page) {
            assert.ok(r.payload instanceof Uint8Array, 'payload is bytes');
            out.push({ digest: r.digest, mediaType: r.mediaType, payload: Buffer.from(r.payload.buffer, r.payload.byteOffset, r.payload.byteLength) });
          }
          afterDigest = page.at(-1)!.digest;
        }
      };
      const sizes = async (repositoryId: number) =>
        (await store.listings.listImages({ repositoryId, tagStatus: 'ANY', sortBy: 'sizeBytes', order: 'ASC', limit: 100 })).map((r) => [r.digest, r.position.value]);

      assert.deepEqual(await without(repo.id, 2), sorted.map(asRow), 'every manifest, in digest order, with its media type and payload');
      assert.deepEqual(await without(repo.id, 100), sorted.map(asRow));
      assert.deepEqual(await sizes(repo.id), [], 'nothing in the size order before sizes are recorded');

      await store.listings.recordImageSizes(repo.id, []);
      await store.listings.recordImageSizes(repo.id, [
        { digest: sorted[3]!.digest, sizeBytes: BIG },
        { digest: sorted[1]!.digest, sizeBytes: 20 },
      ]);
      assert.deepEqual(await without(repo.id, 2), [sorted[0]!, sorted[2]!, sorted[4]!, sorted[5]!].map(asRow));
      assert.deepEqual(await sizes(repo.id), [[sorted[1]!.digest, 20], [sorted[3]!.digest, BIG]]);

      // Idempotent: a size already recorded is kept. A manifest deleted meanwhile, one of another
      // repository and one never pushed are skipped; the rest of the batch is recorded.
      const deleted = sorted[4]!;
      assert.equal(await store.deleteManifest(repo.id, deleted.digest, T0), true);
      await store.listings.recordImageSizes(repo.id, [
        { digest: sorted[1]!.digest, sizeBytes: 999 },
        { digest: deleted.digest, sizeBytes: 5 },
        { digest: onlyThere.digest, sizeBytes: 6 },
        { digest: digestOf(Buffer.from('listing contract never pushed')), sizeBytes: 7 },
        { digest: sorted[0]!.digest, sizeBytes: 20 },
      ]);
      assert.deepEqual(await sizes(repo.id), [[sorted[0]!.digest, 20], [sorted[1]!.digest, 20], [sorted[3]!.digest, BIG]].sort((x, y) => byKeys([x[1] as number, x[0] as string], [y[1] as number, y[0] as string])));
      assert.deepEqual(await without(repo.id, 100), [sorted[2]!, sorted[5]!].map(asRow));
      // The other repository's sizes are its own: the same manifest there still has none.
      assert.deepEqual(await sizes(elsewhere.id), []);
      assert.deepEqual((await without(elsewhere.id, 100)).map((r) => r.digest), [ms[1]!.digest, onlyThere.digest].sort(byBytes));

      // A deleted manifest's size goes with it: pushed again, it has none until recorded again.
      const sized = sorted[3]!;
      assert.equal(await store.deleteManifest(repo.id, sized.digest, T0), true);
      assert.deepEqual(await sizes(repo.id), [[sorted[0]!.digest, 20], [sorted[1]!.digest, 20]].sort((x, y) => byBytes(x[0] as string, y[0] as string)));
      await store.putManifest(repo.id, sized, []);
      assert.deepEqual((await without(repo.id, 100)).map((r) => r.digest), [sorted[2]!, sized, sorted[5]!].map((m) => m.digest));
      await store.listings.recordImageSizes(repo.id, [{ digest: sized.digest, sizeBytes: 3 }]);
      assert.deepEqual((await sizes(repo.id))[0], [sized.digest, 3]);

      // A repository deleted with its sizes recorded takes them along; the other keeps its own.
      await store.listings.recordImageSizes(elsewhere.id, [{ digest: ms[1]!.digest, sizeBytes: 11 }]);
      assert.equal(await store.deleteRepository(repo.id, T0), true);
      assert.deepEqual(await sizes(elsewhere.id), [[ms[1]!.digest, 11]]);
      assert.deepEqual(await store.listings.listImagesWithoutSize(repo.id, { limit: 10 }), []);
    });
  });
}
