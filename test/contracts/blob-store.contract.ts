import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { describe, test } from 'node:test';
import { isRegistryError, type ErrorName } from '../../src/errors/catalogue.ts';
import type { BlobStore } from '../../src/store/blob/blob-store.ts';

export interface BlobStoreFixture {
  store: BlobStore;
  /** Anything the driver left behind (e.g. upload files); must be empty after a test cleans up. */
  residue(): Promise<string[]>;
  cleanup(): Promise<void>;
}

const sha256 = (b: Uint8Array) => `sha256:${createHash('sha256').update(b).digest('hex')}`;
const sha512 = (b: Uint8Array) => `sha512:${createHash('sha512').update(b).digest('hex')}`;

async function readAll(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of stream) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

async function rejectsWith(promise: Promise<unknown>, name: ErrorName): Promise<void> {
  await assert.rejects(promise, (err: unknown) => isRegistryError(err, name));
}

let counter = 0;
const uploadId = () => `contract-${process.pid}-${Date.now()}-${counter++}`;

/** A body that yields `first`, then fails, as a client that disconnects mid-chunk does. */
function failingBody(first: Buffer): Readable {
  let sent = false;
  return new Readable({
    read() {
      if (!sent) {
        sent = true;
        this.push(first);
      } else {
        this.destroy(new Error('client went away'));
      }
    },
  });
}

/** Deterministic bytes, streamed in 1 MiB pieces, with their digest computed on the way. */
function* pattern(totalBytes: number): Generator<Buffer> {
  const pieceBytes = 1024 * 1024;
  for (let offset = 0; offset < totalBytes; offset += pieceBytes) {
    // A fresh buffer each time: a stream may still hold the previous one.
    yield Buffer.alloc(Math.min(pieceBytes, totalBytes - offset), offset % 251);
  }
}

/**
 * The BlobStore contract (src/store/blob/blob-store.ts) that every driver passes. `open` gives a
 * fresh, empty store for each test.
 */
export function blobStoreContract(name: string, open: () => Promise<BlobStoreFixture>): void {
  describe(`BlobStore contract: ${name}`, () => {
    const withStore = (title: string, fn: (store: BlobStore) => Promise<void>) =>
      test(title, async () => {
        const fixture = await open();
        try {
          await fn(fixture.store);
          assert.deepEqual(await fixture.residue(), [], 'the driver leaves no upload behind');
        } finally {
          await fixture.cleanup();
        }
      });

    async function put(store: BlobStore, bytes: Buffer, digest = sha256(bytes)) {
      const id = uploadId();
      await store.createUpload(id);
      const n = await store.append(id, 0, Readable.from([bytes]));
      assert.equal(n, bytes.length);
      return store.commit(id, n, digest);
    }

    withStore('a missing blob: stat resolves undefined, read rejects BlobUnknown, delete resolves', async (store) => {
      const digest = sha256(Buffer.from('absent'));
      assert.equal(await store.stat(digest), undefined);
      await rejectsWith(store.read(digest), 'BlobUnknown');
      await store.delete(digest);
    });

    withStore('upload, commit, stat and read round trip, whole and by range', async (store) => {
      const bytes = randomBytes(100_000);
      const info = await put(store, bytes);
      assert.deepEqual(info, { digest: sha256(bytes), sizeBytes: bytes.length });
      assert.deepEqual(await store.stat(info.digest), info);
      assert.deepEqual(await readAll(await store.read(info.digest)), bytes);
      assert.deepEqual(await readAll(await store.read(info.digest, { start: 10, end: 99 })), bytes.subarray(10, 100));
      assert.deepEqual(await readAll(await store.read(info.digest, { start: 99_999, end: 99_999 })), bytes.subarray(99_999));
    });

    withStore('appends at increasing offsets make one blob', async (store) => {
      const parts = [randomBytes(5000), randomBytes(1), randomBytes(70_000)];
      const whole = Buffer.concat(parts);
      const id = uploadId();
      await store.createUpload(id);
      let offset = 0;
      for (const p of parts) offset += await store.append(id, offset, Readable.from([p]));
      const info = await store.commit(id, offset, sha256(whole));
      assert.deepEqual(await readAll(await store.read(info.digest)), whole);
    });

    withStore('an append that fails half-way leaves the upload resumable at its old offset', async (store) => {
      const first = randomBytes(3000);
      const second = randomBytes(4000);
      const id = uploadId();
      await store.createUpload(id);
      await store.append(id, 0, Readable.from([first]));
      await assert.rejects(store.append(id, first.length, failingBody(randomBytes(2500))));
      await store.append(id, first.length, Readable.from([second]));
      const whole = Buffer.concat([first, second]);
      const info = await store.commit(id, whole.length, sha256(whole));
      assert.deepEqual(await readAll(await store.read(info.digest)), whole);
    });

    withStore('a digest mismatch rejects DigestInvalid, shows nothing and drops the upload', async (store) => {
      const bytes = randomBytes(2048);
      const wrong = sha256(Buffer.from('something else'));
      const id = uploadId();
      await store.createUpload(id);
      await store.append(id, 0, Readable.from([bytes]));
      await rejectsWith(store.commit(id, bytes.length, wrong), 'DigestInvalid');
      assert.equal(await store.stat(wrong), undefined);
      assert.equal(await store.stat(sha256(bytes)), undefined);
      await rejectsWith(store.commit(id, bytes.length, sha256(bytes)), 'BlobUploadUnknown');
    });

    withStore('committing a blob that exists keeps the existing one', async (store) => {
      const bytes = randomBytes(1000);
      const first = await put(store, bytes);
      const second = await put(store, bytes);
      assert.deepEqual(second, first);
      assert.deepEqual(await readAll(await store.read(first.digest)), bytes);
    });

    withStore('concurrent commits of one digest all resolve and leave the blob intact', async (store) => {
      const bytes = randomBytes(512 * 1024);
      const results = await Promise.all(Array.from({ length: 8 }, () => put(store, bytes)));
      for (const r of results) assert.equal(r.digest, sha256(bytes));
      assert.deepEqual(await readAll(await store.read(sha256(bytes))), bytes);
    });

    withStore('append and commit on an unknown upload reject BlobUploadUnknown', async (store) => {
      await rejectsWith(store.append('never-created', 0, Readable.from([Buffer.from('x')])), 'BlobUploadUnknown');
      await rejectsWith(store.commit('never-created', 1, sha256(Buffer.from('x'))), 'BlobUploadUnknown');
    });

    withStore('a body longer than maxBytes rejects SizeInvalid', async (store) => {
      const id = uploadId();
      await store.createUpload(id);
      await rejectsWith(store.append(id, 0, Readable.from([randomBytes(100)]), { maxBytes: 99 }), 'SizeInvalid');
      await store.abortUpload(id);
    });

    withStore('abortUpload is idempotent; listUploads shows uploads in progress only', async (store) => {
      const id = uploadId();
      await store.createUpload(id);
      await store.createUpload(id);
      const listed: string[] = [];
      for await (const u of store.listUploads()) listed.push(u.uploadId);
      assert.ok(listed.includes(id));
      await store.abortUpload(id);
      await store.abortUpload(id);
      const after: string[] = [];
      for await (const u of store.listUploads()) after.push(u.uploadId);
      assert.ok(!after.includes(id));
    });

    withStore('sha512 digests and zero-byte blobs', async (store) => {
      const bytes = randomBytes(777);
      const info = await put(store, bytes, sha512(bytes));
      assert.equal(info.digest, sha512(bytes));
      assert.deepEqual(await readAll(await store.read(info.digest)), bytes);
      const empty = await put(store, Buffer.alloc(0));
      assert.deepEqual(empty, { digest: sha256(Buffer.alloc(0)), sizeBytes: 0 });
      assert.equal((await readAll(await store.read(empty.digest))).length, 0);
    });

    withStore('a 32 MiB blob streams in and out with its digest intact', async (store) => {
      const total = 32 * 1024 * 1024;
      const hash = createHash('sha256');
      for (const piece of pattern(total)) hash.update(piece);
      const digest = `sha256:${hash.digest('hex')}`;
      const id = uploadId();
      await store.createUpload(id);
      const n = await store.append(id, 0, Readable.from(pattern(total)));
      assert.equal(n, total);
      await store.commit(id, n, digest);
      const check = createHash('sha256');
      let size = 0;
      for await (const c of await store.read(digest)) {
        check.update(c as Buffer);
        size += (c as Buffer).length;
      }
      assert.equal(size, total);
      assert.equal(`sha256:${check.digest('hex')}`, digest);
    });

    withStore('delete removes the bytes and is idempotent', async (store) => {
      const info = await put(store, randomBytes(10));
      await store.delete(info.digest);
      await store.delete(info.digest);
      assert.equal(await store.stat(info.digest), undefined);
      await rejectsWith(store.read(info.digest), 'BlobUnknown');
    });
  });
}
