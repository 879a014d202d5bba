import assert from 'node:assert/strict';
import { createCipheriv, randomUUID } from 'node:crypto';
import { Readable } from 'node:stream';
import { describe, test } from 'node:test';
import { isRegistryError, type ErrorName } from '../../src/errors/catalogue.ts';
import { digestOf, newHasher, type Digest, type DigestAlgorithm } from '../../src/digest/digest.ts';
import type { BlobStore } from '../../src/store/blob/blob-store.ts';

/** What a driver's test file hands the suite: a fresh, empty store per test. */
export interface BlobStoreHarness {
  store: BlobStore;
  /** Closes the store and removes everything it kept (temp directory, bucket prefix). Runs once, after each test. */
  cleanup(): Promise<void>;
  /**
   * Whatever the driver holds that is not a committed blob (upload parts, temporary files,
   * multipart uploads), one line each for the failure message. Called at the end of every test,
   * after the test has committed or aborted each of its uploads, so it must then be empty.
   */
  listResidue?(): Promise<string[]>;
}

const MiB = 1024 * 1024;
const PATTERN_KEY = Buffer.from('berth blob store');

/**
 * Deterministic pseudo-random bytes: chunk `index` of stream `seed` is AES-128-CTR over zeros,
 * so any chunk can be made again on its own (for ranged reads of a blob never held in memory).
 */
function patternChunk(seed: number, index: number, length = MiB): Buffer {
  const iv = Buffer.alloc(16);
  iv.writeUInt32BE(seed, 0);
  iv.writeUInt32BE(index, 4);
  return createCipheriv('aes-128-ctr', PATTERN_KEY, iv).update(Buffer.alloc(length));
}

/** The `[start, end)` chunks of stream `seed` that make up `totalBytes`, one MiB at a time. */
function* pattern(seed: number, totalBytes: number, fromChunk = 0, toChunk = Math.ceil(totalBytes / MiB)): Generator<Buffer> {
  for (let i = fromChunk; i < toChunk; i++) yield patternChunk(seed, i, Math.min(MiB, totalBytes - i * MiB));
}

/** Bytes `[start, end]` (inclusive) of stream `seed`. */
function patternSlice(seed: number, start: number, end: number): Buffer {
  const parts: Buffer[] = [];
  for (let i = Math.floor(start / MiB); i * MiB <= end; i++) {
    const chunk = patternChunk(seed, i);
    parts.push(chunk.subarray(Math.max(0, start - i * MiB), Math.min(MiB, end - i * MiB + 1)));
  }
  return Buffer.concat(parts);
}

let nextSeed = 1;
/** Distinct content for each call, so that no two tests' blobs share a digest by accident. */
function bytes(length: number): Buffer {
  return patternSlice(nextSeed++, 0, length - 1);
}

function body(...chunks: Buffer[]): Readable {
  return Readable.from(chunks);
}

/**
 * A request body that sends `sent` and then fails, as when a client goes away mid-chunk. It is
 * sent in small pieces and fails only when asked for more after the last, so that, given
 * backpressure, much of it has reached the store's storage by then: what a failure leaves.
 */
function interruptedBody(sent: Buffer): Readable {
  const pieceBytes = 64 * 1024;
  let offset = 0;
  return new Readable({
    read() {
      if (offset < sent.length) {
        this.push(sent.subarray(offset, offset + pieceBytes));
        offset += pieceBytes;
        return;
      }
      this.destroy(new Error('client went away'));
    },
  });
}

async function readAll(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

function registryError(name: ErrorName): (err: unknown) => true {
  return (err) => {
    assert.ok(isRegistryError(err, name), `expected RegistryError ${name}, got ${err instanceof Error ? err.stack : String(err)}`);
    return true;
  };
}

function uploadId(): string {
  return randomUUID();
}

async function uploadIds(store: BlobStore): Promise<string[]> {
  const ids: string[] = [];
  for await (const u of store.listUploads()) ids.push(u.uploadId);
  return ids.sort();
}

/** Uploads `content` in one chunk and commits it; resolves its digest. */
async function putBlob(store: BlobStore, content: Buffer, algorithm: DigestAlgorithm = 'sha256'): Promise<Digest> {
  const id = uploadId();
  const digest = digestOf(content, algorithm);
  await store.createUpload(id);
  assert.equal(await store.append(id, 0, body(content)), content.length);
  assert.deepEqual(await store.commit(id, content.length, digest), { digest, sizeBytes: content.length });
  return digest;
}

async function assertBlob(store: BlobStore, digest: Digest, content: Buffer): Promise<void> {
  assert.deepEqual(await store.stat(digest), { digest, sizeBytes: content.length });
  const got = await readAll(await store.read(digest));
  assert.equal(got.length, content.length, 'blob length');
  assert.ok(got.equals(content), 'blob bytes round-trip');
}

/**
 * The behaviour every BlobStore driver must have, as blob-store.ts documents it. A driver's test
 * file is one call: `blobStoreContract('fs', async () => ({ store, cleanup, listResidue }))`.
 */
export function blobStoreContract(name: string, open: () => Promise<BlobStoreHarness>): void {
  /** Runs fn on a fresh store, then checks that it left nothing behind, then disposes of it. */
  function blobTest(title: string, fn: (store: BlobStore) => Promise<void>): void {
    test(title, async () => {
      const harness = await open();
      try {
        await fn(harness.store);
        assert.deepEqual(await uploadIds(harness.store), [], 'every upload was committed or aborted, so none is listed');
        if (harness.listResidue) assert.deepEqual(await harness.listResidue(), [], 'the driver left nothing behind');
      } finally {
        await harness.cleanup();
      }
    });
  }

  describe(`BlobStore contract: ${name}`, () => {
    blobTest('check() resolves on a working store', async (store) => {
      await store.check();
    });

    blobTest('stat of a missing blob resolves undefined', async (store) => {
      assert.equal(await store.stat(digestOf(bytes(10))), undefined);
      assert.equal(await store.stat(digestOf(bytes(10), 'sha512')), undefined);
    });

    blobTest('read of a missing blob rejects with BlobUnknown, with or without a range', async (store) => {
      const digest = digestOf(bytes(10));
      await assert.rejects(store.read(digest), registryError('BlobUnknown'));
      await assert.rejects(store.read(digest, { start: 0, end: 0 }), registryError('BlobUnknown'));
    });

    blobTest('an upload round-trips: create, append, commit, stat, read', async (store) => {
      const content = bytes(100_000);
      const digest = digestOf(content);
      const id = uploadId();
      await store.createUpload(id);
      await store.createUpload(id); // idempotent
      assert.equal(await store.append(id, 0, body(content)), content.length);
      assert.equal(await store.stat(digest), undefined, 'bytes stay invisible until commit');
      assert.deepEqual(await store.commit(id, content.length, digest), { digest, sizeBytes: content.length });
      await assertBlob(store, digest, content);
      assert.ok(!(await uploadIds(store)).includes(id), 'a committed upload is gone');
      await assert.rejects(store.append(id, content.length, body(bytes(1))), registryError('BlobUploadUnknown'));
    });

    blobTest('a ranged read yields exactly the bytes from start to end inclusive', async (store) => {
      // Over 1 MiB so that ranges cross the read-ahead chunk boundary of buffered readers.
      const content = bytes(3 * MiB + 17);
      const digest = await putBlob(store, content);
      const ranges = [
        { start: 0, end: 0 },
        { start: 0, end: content.length - 1 },
        { start: content.length - 1, end: content.length - 1 },
        { start: 10, end: 19 },
        { start: MiB - 5, end: MiB + 4 },
        { start: MiB + 3, end: 3 * MiB + 2 },
      ];
      for (const range of ranges) {
        const got = await readAll(await store.read(digest, range));
        assert.equal(got.length, range.end - range.start + 1, `length of ${range.start}-${range.end}`);
        assert.ok(got.equals(content.subarray(range.start, range.end + 1)), `bytes of ${range.start}-${range.end}`);
      }
    });

    blobTest('an append at the upload size continues it, whatever the chunking of each body', async (store) => {
      const parts = [bytes(1), bytes(70_000), bytes(0), bytes(300_001)];
      const content = Buffer.concat(parts);
      const id = uploadId();
      await store.createUpload(id);
      let offset = 0;
      for (const part of parts) {
        // Each body arrives in several stream chunks, as a request body does.
        const pieces = [part.subarray(0, 7), part.subarray(7, 5000), part.subarray(5000)];
        assert.equal(await store.append(id, offset, body(...pieces)), part.length);
        offset += part.length;
      }
      const digest = digestOf(content);
      assert.deepEqual(await store.commit(id, content.length, digest), { digest, sizeBytes: content.length });
      await assertBlob(store, digest, content);
    });

    blobTest('an append after a failed append at the same offset overwrites what the failure left', async (store) => {
      const first = bytes(50_000);
      const retry = bytes(1000);
      const id = uploadId();
      await store.createUpload(id);
      await store.append(id, 0, body(first));
      // The failed body is longer than the retry, so any of its bytes left past the retry would show.
      await assert.rejects(store.append(id, first.length, interruptedBody(bytes(4 * MiB))));
      assert.equal(await store.append(id, first.length, body(retry)), retry.length);
      const content = Buffer.concat([first, retry]);
      const digest = digestOf(content);
      assert.deepEqual(await store.commit(id, content.length, digest), { digest, sizeBytes: content.length });
      await assertBlob(store, digest, content);
    });

    blobTest('a failed first append leaves the upload resumable at 0', async (store) => {
      const content = bytes(2000);
      const id = uploadId();
      await store.createUpload(id);
      await assert.rejects(store.append(id, 0, interruptedBody(bytes(4 * MiB))));
      assert.equal(await store.append(id, 0, body(content)), content.length);
      const digest = digestOf(content);
      await store.commit(id, content.length, digest);
      await assertBlob(store, digest, content);
    });

    blobTest('a commit right after a failed append commits the bytes before it', async (store) => {
      const content = bytes(30_000);
      const id = uploadId();
      await store.createUpload(id);
      await store.append(id, 0, body(content));
      await assert.rejects(store.append(id, content.length, interruptedBody(bytes(4 * MiB))));
      const digest = digestOf(content);
      assert.deepEqual(await store.commit(id, content.length, digest), { digest, sizeBytes: content.length });
      await assertBlob(store, digest, content);
    });

    blobTest('a commit with the wrong digest rejects with DigestInvalid, stores nothing and drops the upload', async (store) => {
      const content = bytes(5000);
      const wrong = digestOf(bytes(5000));
      const id = uploadId();
      await store.createUpload(id);
      await store.append(id, 0, body(content));
      await assert.rejects(store.commit(id, content.length, wrong), registryError('DigestInvalid'));
      assert.equal(await store.stat(wrong), undefined, 'nothing under the claimed digest');
      assert.equal(await store.stat(digestOf(content)), undefined, 'nothing under the actual digest');
      await assert.rejects(store.read(wrong), registryError('BlobUnknown'));
      assert.ok(!(await uploadIds(store)).includes(id), 'the upload is gone');
      await assert.rejects(store.append(id, content.length, body(bytes(1))), registryError('BlobUploadUnknown'));
      await assert.rejects(store.commit(id, content.length, digestOf(content)), registryError('BlobUploadUnknown'));
    });

    blobTest('a commit of a blob that already exists resolves, keeps it and drops the upload', async (store) => {
      const content = bytes(40_000);
      const digest = await putBlob(store, content);
      const id = uploadId();
      await store.createUpload(id);
      await store.append(id, 0, body(content));
      assert.deepEqual(await store.commit(id, content.length, digest), { digest, sizeBytes: content.length });
      await assertBlob(store, digest, content);
      assert.ok(!(await uploadIds(store)).includes(id), 'the second upload is gone');
    });

    blobTest('concurrent commits of one digest from several uploads all resolve and the blob is intact', async (store) => {
      const content = bytes(2 * MiB + 3);
      const digest = digestOf(content);
      const ids = [uploadId(), uploadId(), uploadId(), uploadId()];
      // The uploads themselves run side by side too: appends to different uploads must not mix.
      await Promise.all(
        ids.map(async (id) => {
          await store.createUpload(id);
          await store.append(id, 0, body(content.subarray(0, MiB)));
          await store.append(id, MiB, body(content.subarray(MiB)));
        }),
      );
      const results = await Promise.all(ids.map((id) => store.commit(id, content.length, digest)));
      for (const result of results) assert.deepEqual(result, { digest, sizeBytes: content.length });
      await assertBlob(store, digest, content);
    });

    blobTest('append and commit on an unknown upload reject with BlobUploadUnknown', async (store) => {
      const id = uploadId();
      await assert.rejects(store.append(id, 0, body(bytes(10))), registryError('BlobUploadUnknown'));
      await assert.rejects(store.commit(id, 0, digestOf(Buffer.alloc(0))), registryError('BlobUploadUnknown'));
      assert.ok(!(await uploadIds(store)).includes(id), 'a failed append creates no upload');
    });

    blobTest('an append whose body exceeds maxBytes rejects with SizeInvalid and leaves the upload resumable', async (store) => {
      const head = bytes(1000);
      const id = uploadId();
      await store.createUpload(id);
      await store.append(id, 0, body(head));
      await assert.rejects(store.append(id, head.length, body(bytes(600), bytes(600)), { maxBytes: 1000 }), registryError('SizeInvalid'));
      const exact = bytes(1000);
      assert.equal(await store.append(id, head.length, body(exact.subarray(0, 400), exact.subarray(400)), { maxBytes: 1000 }), 1000, 'a body of exactly maxBytes is accepted');
      const content = Buffer.concat([head, exact]);
      const digest = digestOf(content);
      await store.commit(id, content.length, digest);
      await assertBlob(store, digest, content);
    });

    blobTest('abortUpload drops the upload and is idempotent', async (store) => {
      const id = uploadId();
      await store.createUpload(id);
      await store.append(id, 0, body(bytes(10_000)));
      await store.abortUpload(id);
      await store.abortUpload(id);
      await store.abortUpload(uploadId()); // never existed
      assert.ok(!(await uploadIds(store)).includes(id));
      await assert.rejects(store.append(id, 0, body(bytes(10))), registryError('BlobUploadUnknown'));
      await assert.rejects(store.commit(id, 0, digestOf(Buffer.alloc(0))), registryError('BlobUploadUnknown'));
    });

    blobTest('listUploads lists exactly the uploads in progress, with the time their bytes changed', async (store) => {
      const startedMs = Date.now();
      const [empty, partial, done] = [uploadId(), uploadId(), uploadId()];
      await store.createUpload(empty);
      await store.createUpload(partial);
      await store.append(partial, 0, body(bytes(100)));
      await store.createUpload(done);
      const content = bytes(50);
      await store.append(done, 0, body(content));
      const listed = new Map<string, number>();
      for await (const u of store.listUploads()) listed.set(u.uploadId, u.modifiedAtMs);
      assert.deepEqual([...listed.keys()].sort(), [empty, partial, done].sort());
      for (const [id, modifiedAtMs] of listed) {
        // Generous bounds: filesystem and object-store clocks are coarse, but they are epoch ms.
        assert.ok(Number.isFinite(modifiedAtMs), `${id}: modifiedAtMs is a number`);
        assert.ok(modifiedAtMs > startedMs - 60_000 && modifiedAtMs < Date.now() + 60_000, `${id}: modifiedAtMs ${modifiedAtMs} is near now`);
      }
      await store.commit(done, content.length, digestOf(content));
      await store.abortUpload(empty);
      assert.deepEqual(await uploadIds(store), [partial]);
      await store.abortUpload(partial);
    });

    blobTest('a sha512 digest commits, and a wrong one is refused', async (store) => {
      const parts = [bytes(70_000), bytes(5)];
      const content = Buffer.concat(parts);
      const digest = digestOf(content, 'sha512');
      const id = uploadId();
      await store.createUpload(id);
      await store.append(id, 0, body(parts[0]!));
      await store.append(id, parts[0]!.length, body(parts[1]!));
      assert.deepEqual(await store.commit(id, content.length, digest), { digest, sizeBytes: content.length });
      await assertBlob(store, digest, content);
      assert.equal(await store.stat(digestOf(content)), undefined, 'stored under its sha512 digest only');

      const other = uploadId();
      await store.createUpload(other);
      await store.append(other, 0, body(bytes(10)));
      const wrong = digestOf(bytes(10), 'sha512');
      await assert.rejects(store.commit(other, 10, wrong), registryError('DigestInvalid'));
      assert.equal(await store.stat(wrong), undefined);
    });

    blobTest('a zero-byte blob commits and reads back empty', async (store) => {
      const empty = Buffer.alloc(0);
      const digest = digestOf(empty);
      const id = uploadId();
      await store.createUpload(id);
      assert.deepEqual(await store.commit(id, 0, digest), { digest, sizeBytes: 0 });
      await assertBlob(store, digest, empty);

      const viaAppend = uploadId();
      await store.createUpload(viaAppend);
      assert.equal(await store.append(viaAppend, 0, body(empty)), 0);
      assert.deepEqual(await store.commit(viaAppend, 0, digest), { digest, sizeBytes: 0 });
    });

    blobTest('a 32 MiB blob streams in and out in two appends', async (store) => {
      const seed = nextSeed++;
      const totalBytes = 32 * MiB + 12_345;
      const chunks = Math.ceil(totalBytes / MiB);
      const hasher = newHasher('sha256');
      for (const chunk of pattern(seed, totalBytes)) hasher.update(chunk);
      const digest = `sha256:${hasher.digest('hex')}`;

      const id = uploadId();
      await store.createUpload(id);
      const split = 20;
      assert.equal(await store.append(id, 0, Readable.from(pattern(seed, totalBytes, 0, split))), split * MiB);
      assert.equal(await store.append(id, split * MiB, Readable.from(pattern(seed, totalBytes, split, chunks))), totalBytes - split * MiB);
      assert.deepEqual(await store.commit(id, totalBytes, digest), { digest, sizeBytes: totalBytes });
      assert.deepEqual(await store.stat(digest), { digest, sizeBytes: totalBytes });

      const readBack = newHasher('sha256');
      let readBytes = 0;
      for await (const chunk of await store.read(digest)) {
        readBack.update(chunk as Buffer);
        readBytes += (chunk as Buffer).length;
      }
      assert.equal(readBytes, totalBytes);
      assert.equal(`sha256:${readBack.digest('hex')}`, digest);

      const range = { start: split * MiB - 100, end: split * MiB + 99 };
      const got = await readAll(await store.read(digest, range));
      assert.ok(got.equals(patternSlice(seed, range.start, range.end)), 'range across the two appends');
      const tail = { start: totalBytes - 10, end: totalBytes - 1 };
      assert.ok((await readAll(await store.read(digest, tail))).equals(patternSlice(seed, tail.start, tail.end)), 'last bytes');
    });

    blobTest('delete removes the blob, is idempotent, and the digest can be pushed again', async (store) => {
      const content = bytes(1234);
      const digest = await putBlob(store, content);
      await store.delete(digest);
      assert.equal(await store.stat(digest), undefined);
      await assert.rejects(store.read(digest), registryError('BlobUnknown'));
      await store.delete(digest);
      await store.delete(digestOf(bytes(10))); // never existed
      await store.delete(digestOf(bytes(10), 'sha512'));
      await putBlob(store, content);
      await assertBlob(store, digest, content);
    });
  });
}
