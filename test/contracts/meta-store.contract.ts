import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { describe, test } from 'node:test';
import type { ManifestRecord, MetaStore } from '../../src/store/meta/meta-store.ts';

export interface MetaStoreFixture {
  store: MetaStore;
  cleanup(): Promise<void>;
}

const digestOf = (s: string | Uint8Array) => `sha256:${createHash('sha256').update(s).digest('hex')}`;

function manifest(overrides: Partial<ManifestRecord> = {}): ManifestRecord {
  const payload = overrides.payload ?? randomBytes(300);
  return {
    digest: digestOf(payload),
    mediaType: 'application/vnd.oci.image.manifest.v1+json',
    sizeBytes: payload.byteLength,
    payload,
    artifactType: null,
    subjectDigest: null,
    annotations: null,
    createdAtMs: 1000,
    ...overrides,
  };
}

/**
 * The MetaStore contract (src/store/meta/meta-store.ts) that every driver passes. `open` gives a
 * fresh, empty, migrated store for each test.
 */
export function metaStoreContract(name: string, open: () => Promise<MetaStoreFixture>): void {
  describe(`MetaStore contract: ${name}`, () => {
    const withStore = (title: string, fn: (store: MetaStore) => Promise<void>) =>
      test(title, async () => {
        const fixture = await open();
        try {
          await fixture.store.check();
          await fn(fixture.store);
        } finally {
          await fixture.cleanup();
        }
      });

    withStore('repositories: created once, even by concurrent callers; listed in order with pages', async (store) => {
      assert.equal(await store.getRepository('team/app'), undefined);
      const results = await Promise.all(Array.from({ length: 10 }, () => store.createRepository('team/app', 5)));
      assert.equal(results.filter((r) => r.created).length, 1);
      assert.equal(new Set(results.map((r) => r.repository.id)).size, 1);
      assert.deepEqual(await store.getRepository('team/app'), results[0]!.repository);
      for (const n of ['b', 'a', 'c/d', 'c']) await store.createRepository(n, 6);
      assert.deepEqual(await store.listRepositories({ limit: 100 }), ['a', 'b', 'c', 'c/d', 'team/app']);
      assert.deepEqual(await store.listRepositories({ limit: 2 }), ['a', 'b']);
      assert.deepEqual(await store.listRepositories({ after: 'b', limit: 2 }), ['c', 'c/d']);
      assert.deepEqual(await store.listRepositories({ after: 'team/app', limit: 2 }), []);
    });

    withStore('blobs: recorded idempotently, linked per repository, unlinked without losing the record', async (store) => {
      const { repository: a } = await store.createRepository('a', 1);
      const { repository: b } = await store.createRepository('b', 1);
      const digest = digestOf('blob');
      assert.equal(await store.getBlob(digest), undefined);
      await store.putBlob({ digest, sizeBytes: 4 }, 1);
      await store.putBlob({ digest, sizeBytes: 4 }, 2);
      assert.deepEqual(await store.getBlob(digest), { digest, sizeBytes: 4 });
      assert.equal(await store.findLinkedBlob(a.id, digest), undefined);
      await store.linkBlob(a.id, digest, 1);
      await store.linkBlob(a.id, digest, 2);
      assert.deepEqual(await store.findLinkedBlob(a.id, digest), { digest, sizeBytes: 4 });
      assert.equal(await store.findLinkedBlob(b.id, digest), undefined);
      await store.linkBlob(b.id, digest, 3);
      assert.deepEqual((await store.findRepositoriesWithBlob(digest, 10)).map((r) => r.name), ['a', 'b']);
      assert.deepEqual((await store.findRepositoriesWithBlob(digest, 1)).map((r) => r.name), ['a']);
      assert.equal(await store.unlinkBlob(a.id, digest), true);
      assert.equal(await store.unlinkBlob(a.id, digest), false);
      assert.equal(await store.findLinkedBlob(a.id, digest), undefined);
      assert.deepEqual(await store.getBlob(digest), { digest, sizeBytes: 4 });
    });

    withStore('findLinkedBlobs answers for more digests than one query can carry', async (store) => {
      const { repository } = await store.createRepository('many', 1);
      const digests = Array.from({ length: 1203 }, (_, i) => digestOf(`blob-${i}`));
      await store.transaction(async (tx) => {
        for (const [i, digest] of digests.entries()) {
          await tx.putBlob({ digest, sizeBytes: i }, 1);
          if (i % 2 === 0) await tx.linkBlob(repository.id, digest, 1);
        }
      });
      const found = await store.findLinkedBlobs(repository.id, [...digests, digestOf('absent')]);
      assert.equal(found.size, 602);
      assert.deepEqual(found.get(digests[1200]!), { digest: digests[1200], sizeBytes: 1200 });
      assert.equal(found.has(digests[1]!), false);
    });

    withStore('manifests: exact bytes, first write wins, tags, references and deletion', async (store) => {
      const { repository } = await store.createRepository('img', 1);
      const payload = Buffer.from([0, 255, 0xc3, 0x28, 10, 32]); // not valid UTF-8
      const m = manifest({ payload, annotations: '{"a":"b"}' });
      const child = manifest();
      await store.putManifest(repository.id, child, []);
      await store.putManifest(repository.id, m, [
        { digest: child.digest, kind: 'manifest' },
        { digest: digestOf('layer'), kind: 'blob' },
        { digest: digestOf('layer'), kind: 'blob' },
      ]);
      await store.putManifest(repository.id, { ...m, mediaType: 'application/other' }, []);
      const got = await store.getManifest(repository.id, m.digest);
      assert.ok(got);
      assert.deepEqual(Buffer.from(got.payload), payload);
      assert.equal(got.mediaType, m.mediaType);
      assert.equal(got.annotations, '{"a":"b"}');
      assert.equal(await store.getManifest(repository.id, digestOf('absent')), undefined);
      assert.deepEqual(await store.findExistingManifests(repository.id, [m.digest, digestOf('absent'), child.digest]), new Set([m.digest, child.digest]));
      assert.deepEqual(await store.findParentManifests(repository.id, child.digest), [m.digest]);
      assert.deepEqual(await store.findParentManifests(repository.id, digestOf('layer')), [], 'blob references are not parents');

      await store.putTag(repository.id, 'v1', child.digest, 2);
      await store.putTag(repository.id, 'v1', m.digest, 3);
      await store.putTag(repository.id, 'latest', m.digest, 3);
      assert.equal(await store.findTagDigest(repository.id, 'v1'), m.digest);
      assert.equal(await store.findTagDigest(repository.id, 'nope'), undefined);
      assert.equal((await store.findManifestByTag(repository.id, 'latest'))?.digest, m.digest);
      assert.deepEqual(await store.listTags(repository.id, { limit: 10 }), ['latest', 'v1']);
      assert.deepEqual(await store.listTags(repository.id, { after: 'latest', limit: 10 }), ['v1']);
      assert.equal(await store.deleteTag(repository.id, 'latest'), true);
      assert.equal(await store.deleteTag(repository.id, 'latest'), false);

      assert.equal(await store.deleteManifest(repository.id, m.digest), true);
      assert.equal(await store.deleteManifest(repository.id, m.digest), false);
      assert.equal(await store.findTagDigest(repository.id, 'v1'), undefined, 'tags go with their manifest');
      assert.deepEqual(await store.findParentManifests(repository.id, child.digest), [], 'references go with their manifest');
      assert.ok(await store.getManifest(repository.id, child.digest));
    });

    withStore('referrers: by subject, optionally by artifact type, oldest first', async (store) => {
      const { repository } = await store.createRepository('ref', 1);
      const subject = digestOf('subject');
      const sig = manifest({ subjectDigest: subject, artifactType: 'application/sig', createdAtMs: 20 });
      const sbom = manifest({ subjectDigest: subject, artifactType: 'application/sbom', createdAtMs: 10 });
      const other = manifest({ subjectDigest: digestOf('other'), artifactType: 'application/sig' });
      for (const m of [sig, sbom, other]) await store.putManifest(repository.id, m, []);
      assert.deepEqual((await store.listReferrers(repository.id, subject)).map((r) => r.digest), [sbom.digest, sig.digest]);
      assert.deepEqual((await store.listReferrers(repository.id, subject, 'application/sig')).map((r) => r.digest), [sig.digest]);
      assert.deepEqual(await store.listReferrers(repository.id, digestOf('none')), []);
      const [first] = await store.listReferrers(repository.id, subject);
      assert.equal(first?.artifactType, 'application/sbom');
      assert.equal(first?.sizeBytes, sbom.sizeBytes);
    });

    withStore('uploads: advance only from the size the caller saw; stale ones listed oldest first', async (store) => {
      const { repository } = await store.createRepository('up', 1);
      await store.createUpload({ id: 'u1', repositoryId: repository.id, sizeBytes: 0, startedAtMs: 100, updatedAtMs: 100 });
      await store.createUpload({ id: 'u2', repositoryId: repository.id, sizeBytes: 0, startedAtMs: 50, updatedAtMs: 50 });
      assert.equal(await store.advanceUpload('u1', 0, 10, 200), true);
      assert.equal(await store.advanceUpload('u1', 0, 20, 201), false, 'a stale size loses');
      assert.deepEqual(await store.getUpload('u1'), { id: 'u1', repositoryId: repository.id, sizeBytes: 10, startedAtMs: 100, updatedAtMs: 200 });
      assert.equal(await store.getUpload('absent'), undefined);
      assert.deepEqual((await store.listStaleUploads(300, 10)).map((u) => u.id), ['u2', 'u1']);
      assert.deepEqual((await store.listStaleUploads(150, 10)).map((u) => u.id), ['u2']);
      assert.equal(await store.deleteUpload('u2'), true);
      assert.equal(await store.deleteUpload('u2'), false);
    });

    withStore('transactions: all writes land together, or none when fn rejects', async (store) => {
      await assert.rejects(
        store.transaction(async (tx) => {
          await tx.createRepository('rolled-back', 1);
          await tx.putBlob({ digest: digestOf('tx'), sizeBytes: 1 }, 1);
          throw new Error('abort');
        }),
        /abort/,
      );
      assert.equal(await store.getRepository('rolled-back'), undefined);
      assert.equal(await store.getBlob(digestOf('tx')), undefined);
      await store.transaction(async (tx) => {
        await tx.createRepository('committed', 1);
        await tx.putBlob({ digest: digestOf('tx'), sizeBytes: 1 }, 1);
      });
      assert.ok(await store.getRepository('committed'));
      assert.ok(await store.getBlob(digestOf('tx')));
    });
  });
}
