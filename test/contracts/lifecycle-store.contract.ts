import assert from 'node:assert/strict';
import { describe } from 'node:test';
import { digestOf, type Digest } from '../../src/digest/digest.ts';
import type { MetaStore } from '../../src/store/meta/meta-store.ts';
import { manifest, storeTest, T0, type MetaStoreHarness } from './harness.ts';

const ACCOUNT = '111122223333';
const INDEX_MT = 'application/vnd.oci.image.index.v1+json';

let nextId = 0;
function blobDigest(): Digest {
  return digestOf(Buffer.from(`lifecycle contract ${nextId++} ${Math.random()}`));
}

/** Lifecycle policies, previews and the image listing rules judge (LifecycleStore), on every MetaStore driver. */
export function lifecycleStoreContract(name: string, open: () => Promise<MetaStoreHarness>): void {
  const lifecycleTest = storeTest(open);

  describe(`LifecycleStore contract: ${name}`, () => {
    lifecycleTest('a policy is stored, replaced, evaluated and deleted; only existing repositories get one', async (store) => {
      const { repository: r } = await store.createRepository(ACCOUNT, 'lc/app', T0);
      const { repository: s } = await store.createRepository(ACCOUNT, 'lc/other', T0);
      assert.equal(await store.lifecycle.getPolicy(r.id), undefined);
      assert.equal(await store.lifecycle.putPolicy(r.id, '{"rules":[1]}', T0 + 1), true);
      assert.deepEqual(await store.lifecycle.getPolicy(r.id), { text: '{"rules":[1]}', updatedAtMs: T0 + 1, lastEvaluatedAtMs: null });
      assert.equal(await store.lifecycle.markEvaluated(r.id, T0 + 5), true);
      assert.equal(await store.lifecycle.putPolicy(r.id, '{"rules":[2]}', T0 + 10), true);
      assert.deepEqual(await store.lifecycle.getPolicy(r.id), { text: '{"rules":[2]}', updatedAtMs: T0 + 10, lastEvaluatedAtMs: T0 + 5 }, 'replacing keeps the last evaluation');
      assert.equal(await store.lifecycle.markEvaluated(s.id, T0), false, 'no policy to mark');
      assert.equal(await store.lifecycle.putPolicy(999_999, '{}', T0), false, 'no such repository');
      await store.lifecycle.putPolicy(s.id, '{"rules":[]}', T0);
      assert.deepEqual(await store.lifecycle.listRepositoriesWithPolicy(), [
        { repositoryId: r.id, accountId: ACCOUNT, name: 'lc/app' },
        { repositoryId: s.id, accountId: ACCOUNT, name: 'lc/other' },
      ]);
      assert.equal(await store.lifecycle.deletePolicy(r.id), true);
      assert.equal(await store.lifecycle.deletePolicy(r.id), false);
      assert.equal(await store.lifecycle.getPolicy(r.id), undefined);
      assert.deepEqual((await store.lifecycle.listRepositoriesWithPolicy()).map((x) => x.name), ['lc/other']);
    });

    lifecycleTest('a preview is stored and replaced whole, its result as JSON; it goes with its repository', async (store) => {
      const { repository: r } = await store.createRepository(ACCOUNT, 'lc/preview', T0);
      assert.equal(await store.lifecycle.getPreview(r.id), undefined);
      assert.equal(await store.lifecycle.putPreview(r.id, { status: 'IN_PROGRESS', policyText: 'p1', result: null, startedAtMs: T0, finishedAtMs: null }), true);
      assert.deepEqual(await store.lifecycle.getPreview(r.id), { status: 'IN_PROGRESS', policyText: 'p1', result: null, startedAtMs: T0, finishedAtMs: null });
      const result = [{ imageDigest: 'sha256:x', imageTags: ['a', 'ü'], appliedRulePriority: 1 }];
      await store.lifecycle.putPreview(r.id, { status: 'COMPLETE', policyText: 'p1', result, startedAtMs: T0, finishedAtMs: T0 + 7 });
      assert.deepEqual(await store.lifecycle.getPreview(r.id), { status: 'COMPLETE', policyText: 'p1', result, startedAtMs: T0, finishedAtMs: T0 + 7 });
      assert.equal(await store.lifecycle.putPreview(999_999, { status: 'FAILED', policyText: '', result: null, startedAtMs: T0, finishedAtMs: T0 }), false);
      await store.lifecycle.putPolicy(r.id, 'p1', T0);
      assert.equal(await store.deleteRepository(r.id), true);
      assert.equal(await store.lifecycle.getPreview(r.id), undefined);
      assert.deepEqual(await store.lifecycle.listRepositoriesWithPolicy(), []);
    });

    lifecycleTest('listLifecycleImages: every manifest with its tags, push and pull times, children, subject and blob bytes', async (store) => {
      const { repository: r } = await store.createRepository(ACCOUNT, 'lc/images', T0);
      const { repository: other } = await store.createRepository(ACCOUNT, 'lc/images-other', T0);
      const big = blobDigest();
      const small = blobDigest();
      await store.putBlob({ digest: big, sizeBytes: 5 * 1024 ** 3 }, T0);
      await store.putBlob({ digest: small, sizeBytes: 10 }, T0);
      const image = manifest({ createdAtMs: T0 + 1 });
      await store.putManifest(r.id, image, [{ digest: big, kind: 'blob' }, { digest: small, kind: 'blob' }]);
      await store.putTag(r.id, 'b', image.digest, T0);
      await store.putTag(r.id, 'a', image.digest, T0);
      const child = manifest({ createdAtMs: T0 + 2 });
      await store.putManifest(r.id, child, [{ digest: small, kind: 'blob' }]);
      const index = manifest({ mediaType: INDEX_MT, createdAtMs: T0 + 3 });
      await store.putManifest(r.id, index, [{ digest: image.digest, kind: 'manifest' }, { digest: child.digest, kind: 'manifest' }]);
      const sig = manifest({ subjectDigest: image.digest, createdAtMs: T0 + 4 });
      await store.putManifest(r.id, sig, []);
      await store.putManifest(other.id, manifest(), []);
      await store.recordPulls([{ repositoryId: r.id, digest: image.digest, atMs: T0 + 100 }]);

      const images = await store.lifecycle.listLifecycleImages(r.id);
      assert.deepEqual(images.map((i) => i.digest), [image, child, index, sig].map((m) => m.digest).sort());
      const byDigest = new Map(images.map((i) => [i.digest, i]));
      assert.deepEqual(byDigest.get(image.digest), { digest: image.digest, tags: ['a', 'b'], pushedAtMs: T0 + 1, lastPulledAtMs: T0 + 100, children: [], subject: null, sizeBytes: 5 * 1024 ** 3 + 10 });
      assert.deepEqual(byDigest.get(index.digest), { digest: index.digest, tags: [], pushedAtMs: T0 + 3, lastPulledAtMs: null, children: [image.digest, child.digest].sort(), subject: null, sizeBytes: 0 });
      assert.deepEqual(byDigest.get(sig.digest)?.subject, image.digest);
      assert.equal(byDigest.get(child.digest)?.sizeBytes, 10);
      assert.deepEqual(await store.lifecycle.listLifecycleImages(999_999), []);
    });
  });
}
