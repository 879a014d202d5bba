import assert from 'node:assert/strict';
import { randomBytes, randomUUID } from 'node:crypto';
import { Readable } from 'node:stream';
import { describe, test, type TestContext } from 'node:test';
import { CreateMultipartUploadCommand, HeadObjectCommand, PutObjectCommand, UploadPartCommand, type S3Client } from '@aws-sdk/client-s3';
import { isRegistryError, type ErrorName } from '../../src/errors/catalogue.ts';
import { digestOf, type Digest } from '../../src/digest/digest.ts';
import { MiB, planParts } from '../../src/store/blob/s3/part-plan.ts';
import { parseS3Location, S3BlobStore, type S3BlobStoreOptions } from '../../src/store/blob/s3/s3-blob-store.ts';
import { openBlobStore, StoreConfigError } from '../../src/store/open.ts';
import { useS3, type TestS3 } from '../support/s3.ts';
import { blobStoreContract } from './blob-store.contract.ts';

const s3 = useS3();

const BLOB_KEY = /^blobs\/(?:sha256\/([a-f0-9]{2})\/([a-f0-9]{64})|sha512\/([a-f0-9]{2})\/([a-f0-9]{128}))$/;

/**
 * What the store left under `prefix` that is not a committed blob where docs/blob-layout.md puts
 * it (upload objects, stray keys), every multipart upload in progress, and any key outside the
 * prefix (the bucket holds only this test's prefix while it runs).
 */
async function listResidue(server: TestS3, bucket: string, prefix: string): Promise<string[]> {
  const root = prefix === '' ? '' : `${prefix}/`;
  const residue: string[] = [];
  for (const key of await server.listKeys(bucket)) {
    if (!key.startsWith(root)) {
      residue.push(`outside the prefix: ${key}`);
      continue;
    }
    const m = BLOB_KEY.exec(key.slice(root.length));
    if (!m || !(m[2] ?? m[4])!.startsWith((m[1] ?? m[3])!)) residue.push(key);
  }
  for (const key of await server.listMultipartUploads(bucket)) residue.push(`multipart upload: ${key}`);
  return residue.sort();
}

/** Deletes every object and multipart upload under `prefix`. */
async function clearPrefix(server: TestS3, bucket: string, prefix: string): Promise<void> {
  const root = prefix === '' ? '' : `${prefix}/`;
  const store = new S3BlobStore({ ...server.settings, bucket, prefix });
  try {
    for await (const { uploadId } of store.listUploads()) await store.abortUpload(uploadId);
    for (const key of await server.listKeys(bucket, root)) {
      const m = BLOB_KEY.exec(key.slice(root.length));
      if (m) await store.delete(m[2] ? `sha256:${m[2]}` : `sha512:${m[4]}`);
    }
  } finally {
    await store.close();
  }
  assert.deepEqual(await server.listKeys(bucket, root), [], `${prefix} is empty after cleanup`);
}

let contractBucket: Promise<string> | undefined;
let nextPrefix = 0;

if (s3) {
  // Parts at S3's 5 MiB minimum and copies from there up, so that the suite's multi-MiB uploads
  // go through multipart appends, UploadPartCopy and streamed parts, not only PutObject.
  blobStoreContract('s3', async () => {
    const server = s3();
    contractBucket ??= server.createBucket();
    const bucket = await contractBucket;
    const prefix = `contract/${nextPrefix++}`;
    const store = new S3BlobStore({ ...server.settings, bucket, prefix, partBytes: 5 * MiB, copyThresholdBytes: 5 * MiB });
    return {
      store,
      listResidue: () => listResidue(server, bucket, prefix),
      cleanup: async () => {
        await store.close();
        await clearPrefix(server, bucket, prefix);
      },
    };
  });

  describe('S3 blob store', () => {
    /** A store on a fresh bucket (under `prefix` if given), closed and emptied after the test. */
    async function openStore(t: TestContext, options: Partial<S3BlobStoreOptions> = {}): Promise<{ store: S3BlobStore; bucket: string; root: string; server: TestS3 }> {
      const server = s3!();
      const bucket = await server.createBucket();
      const prefix = options.prefix ?? '';
      const store = new S3BlobStore({ ...server.settings, bucket, prefix, partBytes: 5 * MiB, copyThresholdBytes: 5 * MiB, ...options });
      t.after(async () => {
        await store.close();
        await server.deleteBucket(bucket);
      });
      return { store, bucket, root: prefix === '' ? '' : `${prefix}/`, server };
    }

    test('a commit of many small chunks and of chunks larger than a part, mixed, is one blob with copied and streamed parts', async (t) => {
      const { store, bucket, server } = await openStore(t);
      const KiB = 1024;
      // Small chunks that must be gathered into streamed parts, long ones copied server-side,
      // and a short streamed part before each copy that must be topped up from the copied chunk.
      const sizes = [300 * KiB, 1 * MiB, 700 * KiB, 2 * MiB, 7 * MiB + 5, 64 * KiB, 64 * KiB, 100, 12 * MiB + 1, 3 * MiB, 6 * MiB, 17, 9 * MiB + 3];
      const chunks = sizes.map((n) => randomBytes(n));
      const content = Buffer.concat(chunks);
      const digest = digestOf(content);
      const id = randomUUID();
      await store.createUpload(id);
      let offset = 0;
      for (const chunk of chunks) {
        assert.equal(await store.append(id, offset, Readable.from([chunk])), chunk.length);
        offset += chunk.length;
      }

      const { sent } = spy(store);
      assert.deepEqual(await store.commit(id, content.length, digest), { digest, sizeBytes: content.length });

      let at = 0;
      const plan = planParts(sizes.map((n) => ({ start: at, end: (at += n) })), { partBytes: 5 * MiB, copyThresholdBytes: 5 * MiB });
      const copied = plan.filter((p) => p.copyOf !== undefined).length;
      assert.ok(copied >= 3 && plan.length - copied >= 3, 'the plan mixes copies and streamed parts');
      assert.ok(plan.some((p, i) => p.copyOf !== undefined && p.start > sizes.slice(0, p.copyOf).reduce((a, b) => a + b, 0) && plan[i - 1]?.copyOf === undefined), 'a streamed part was topped up from a copied chunk');
      assert.equal(count(sent, 'UploadPartCopyCommand'), copied, 'long chunks are copied server-side');
      assert.equal(count(sent, 'UploadPartCommand'), plan.length - copied, 'the rest is streamed');
      assert.equal(count(sent, 'CompleteMultipartUploadCommand'), 1);

      const head = await server.client.send(new HeadObjectCommand({ Bucket: bucket, Key: blobKey(digest) }));
      assert.equal(head.ContentLength, content.length);
      assert.match(head.ETag ?? '', new RegExp(`-${plan.length}"$`), 'one object of the planned parts');
      const got = await readAll(await store.read(digest));
      assert.ok(got.equals(content), 'the blob is the chunks in order');
      // Ranges across part boundaries, as planned, and across chunk boundaries.
      for (const range of [
        { start: plan[0]!.end - 3, end: plan[0]!.end + 2 },
        { start: plan[2]!.start, end: plan[4]!.end - 1 },
        { start: 300 * KiB - 1, end: 300 * KiB },
        { start: content.length - 5, end: content.length - 1 },
      ]) {
        const part = await readAll(await store.read(digest, range));
        assert.ok(part.equals(content.subarray(range.start, range.end + 1)), `bytes ${range.start}-${range.end}`);
      }
      assert.deepEqual(await server.listKeys(bucket), [blobKey(digest)], 'the chunks are gone');
      assert.deepEqual(await server.listMultipartUploads(bucket), []);
    });

    test('an upload sent in one chunk commits as a server-side copy, without reading it back', async (t) => {
      const { store, bucket, server } = await openStore(t);
      // One PutObject chunk, and one that went up in parts (its sha256 kept beside it).
      for (const content of [randomBytes(200_000), randomBytes(11 * MiB + 7)]) {
        const digest = digestOf(content);
        const id = randomUUID();
        await store.createUpload(id);
        await store.append(id, 0, Readable.from([content.subarray(0, 1000), content.subarray(1000)]));
        const { sent } = spy(store);
        assert.deepEqual(await store.commit(id, content.length, digest), { digest, sizeBytes: content.length });
        assert.equal(count(sent, 'GetObjectCommand'), 0, `nothing read back: ${sent.join(' ')}`);
        assert.equal(count(sent, 'UploadPartCommand') + count(sent, 'PutObjectCommand'), 0, `nothing uploaded again: ${sent.join(' ')}`);
        assert.equal(count(sent, 'CopyObjectCommand'), 1);
        assert.ok((await readAll(await store.read(digest))).equals(content));
        const head = await server.client.send(new HeadObjectCommand({ Bucket: bucket, Key: blobKey(digest) }));
        assert.deepEqual(head.Metadata ?? {}, {}, 'the blob does not carry the chunk’s metadata');
      }
      assert.equal((await server.listKeys(bucket, 'uploads/')).length, 0);
    });

    test('a one-chunk upload with a wrong digest is refused without copying, and a sha512 one is hashed', async (t) => {
      const { store, bucket, server } = await openStore(t);
      const content = randomBytes(6 * MiB);
      const id = randomUUID();
      await store.createUpload(id);
      await store.append(id, 0, Readable.from([content]));
      const { sent } = spy(store);
      await assert.rejects(store.commit(id, content.length, digestOf(randomBytes(10))), registryError('DigestInvalid'));
      assert.equal(count(sent, 'CopyObjectCommand') + count(sent, 'GetObjectCommand'), 0, sent.join(' '));
      assert.deepEqual(await server.listKeys(bucket), []);

      const sha512 = digestOf(content, 'sha512');
      const other = randomUUID();
      await store.createUpload(other);
      await store.append(other, 0, Readable.from([content]));
      assert.deepEqual(await store.commit(other, content.length, sha512), { digest: sha512, sizeBytes: content.length });
      assert.ok((await readAll(await store.read(sha512))).equals(content));
    });

    test('a commit with the wrong digest leaves no object under blobs/ and no multipart upload', async (t) => {
      const { store, bucket, server } = await openStore(t);
      for (const sizes of [
        [6 * MiB, 6 * MiB], // both copied
        [1 * MiB, 2 * MiB, 3 * MiB], // streamed parts only
        [100, 200], // one PutObject
      ]) {
        const chunks = sizes.map((n) => randomBytes(n));
        const content = Buffer.concat(chunks);
        const wrong = digestOf(randomBytes(100));
        const id = randomUUID();
        await store.createUpload(id);
        let offset = 0;
        for (const chunk of chunks) offset += await store.append(id, offset, Readable.from([chunk]));
        await assert.rejects(store.commit(id, content.length, wrong), registryError('DigestInvalid'));
        assert.deepEqual(await server.listKeys(bucket), [], `${sizes}: nothing stored, the upload gone`);
        assert.deepEqual(await server.listMultipartUploads(bucket), [], `${sizes}: no multipart upload left`);
        assert.equal(await store.stat(digestOf(content)), undefined);
      }
    });

    test('an append whose body fails half-way leaves the upload resumable at its offset and no multipart upload', async (t) => {
      const { store, bucket, server } = await openStore(t);
      const head = randomBytes(3 * MiB);
      const id = randomUUID();
      await store.createUpload(id);
      await store.append(id, 0, Readable.from([head]));
      // Over two parts, so that parts have gone up before the body fails.
      await assert.rejects(store.append(id, head.length, failingBody(randomBytes(12 * MiB))), /client went away/);
      assert.deepEqual(await server.listMultipartUploads(bucket), [], 'the append’s multipart upload was aborted');
      assert.deepEqual(await server.listKeys(bucket, `uploads/${id}/chunks/`), [`uploads/${id}/chunks/${offsetName(0)}`], 'only the first chunk');
      const tooLong = Readable.from(Array.from({ length: 12 }, () => randomBytes(MiB)));
      await assert.rejects(store.append(id, head.length, tooLong, { maxBytes: 11 * MiB }), registryError('SizeInvalid'));
      assert.deepEqual(await server.listMultipartUploads(bucket), [], 'the append’s multipart upload was aborted when it went over maxBytes');

      const tail = randomBytes(8 * MiB);
      assert.equal(await store.append(id, head.length, Readable.from([tail])), tail.length);
      const content = Buffer.concat([head, tail]);
      const digest = digestOf(content);
      assert.deepEqual(await store.commit(id, content.length, digest), { digest, sizeBytes: content.length });
      assert.ok((await readAll(await store.read(digest))).equals(content));
      assert.deepEqual(await server.listKeys(bucket), [blobKey(digest)]);
      assert.deepEqual(await server.listMultipartUploads(bucket), []);
    });

    test('a longer chunk a failed append left is cut to what the next append wrote over it', async (t) => {
      const { store } = await openStore(t);
      const first = randomBytes(7 * MiB);
      const id = randomUUID();
      await store.createUpload(id);
      await store.append(id, 0, Readable.from([first]));
      // The registry records the first append's size only if it resolves; suppose it did not,
      // and the client sends a shorter body at 0 again.
      const retry = randomBytes(MiB);
      await store.append(id, 0, Readable.from([retry]));
      const digest = digestOf(retry);
      assert.deepEqual(await store.commit(id, retry.length, digest), { digest, sizeBytes: retry.length });
      assert.ok((await readAll(await store.read(digest))).equals(retry));
    });

    test('an upload may be appended to and committed by another node', async (t) => {
      const { store, bucket, server } = await openStore(t, { prefix: 'nodes' });
      const other = new S3BlobStore({ ...server.settings, bucket, prefix: 'nodes' });
      t.after(() => other.close());
      const parts = [randomBytes(6 * MiB), randomBytes(1000), randomBytes(5 * MiB)];
      const id = randomUUID();
      await store.createUpload(id);
      await store.append(id, 0, Readable.from([parts[0]!]));
      await other.append(id, parts[0]!.length, Readable.from([parts[1]!]));
      await store.append(id, parts[0]!.length + parts[1]!.length, Readable.from([parts[2]!]));
      const content = Buffer.concat(parts);
      const digest = digestOf(content);
      assert.deepEqual(await other.commit(id, content.length, digest), { digest, sizeBytes: content.length });
      assert.ok((await readAll(await store.read(digest))).equals(content));
      assert.deepEqual(await server.listKeys(bucket), [`nodes/${blobKey(digest)}`]);
    });

    test('listUploads lists uploads and abandoned multipart uploads, and abortUpload removes them', async (t) => {
      const { store, bucket, root, server } = await openStore(t, { prefix: 'p' });
      // An upload with a chunk, and one whose append died with its multipart upload open.
      const withChunk = randomUUID();
      await store.createUpload(withChunk);
      await store.append(withChunk, 0, Readable.from([randomBytes(1000)]));
      const midAppend = randomUUID();
      const appendKey = `${root}uploads/${midAppend}/chunks/${offsetName(0)}`;
      const appendMpu = await server.client.send(new CreateMultipartUploadCommand({ Bucket: bucket, Key: appendKey }));
      await server.client.send(new UploadPartCommand({ Bucket: bucket, Key: appendKey, UploadId: appendMpu.UploadId, PartNumber: 1, Body: randomBytes(100) }));
      // A commit that died after starting the blob's multipart upload.
      const orphanKey = `${root}${blobKey(digestOf(randomBytes(10)))}`;
      await server.client.send(new CreateMultipartUploadCommand({ Bucket: bucket, Key: orphanKey }));
      // Another store's multipart upload, in the same bucket: not this store's business.
      const foreignKey = `other/${blobKey(digestOf(randomBytes(10)))}`;
      await server.client.send(new CreateMultipartUploadCommand({ Bucket: bucket, Key: foreignKey }));
      // Keys under uploads/ that no upload of Berth's can have: not listed, so never swept.
      const strays = [`${root}uploads/not.an.id/x`, `${root}uploads/loose`];
      for (const Key of strays) await server.client.send(new PutObjectCommand({ Bucket: bucket, Key, Body: 'x' }));

      const listed = new Map<string, number>();
      for await (const u of store.listUploads()) listed.set(u.uploadId, u.modifiedAtMs);
      const orphans = [...listed.keys()].filter((id) => id !== withChunk && id !== midAppend);
      assert.ok(listed.has(withChunk) && listed.has(midAppend), `both uploads listed: ${[...listed.keys()]}`);
      assert.equal(orphans.length, 1, `one abandoned commit listed: ${orphans}`);
      for (const [id, ms] of listed) assert.ok(Math.abs(ms - Date.now()) < 120_000, `${id}: modifiedAtMs ${ms} is near now`);
      const again: string[] = [];
      for await (const u of store.listUploads()) again.push(u.uploadId);
      assert.deepEqual(again.sort(), [...listed.keys()].sort(), 'the made-up id is stable');

      for (const id of listed.keys()) await store.abortUpload(id);
      for await (const u of store.listUploads()) assert.fail(`still listed: ${u.uploadId}`);
      assert.deepEqual(await server.listMultipartUploads(bucket), [foreignKey]);
      assert.deepEqual(await server.listKeys(bucket), strays.sort());
    });

    test('a commit that fails half-way settles every request before it aborts, leaves no multipart upload, and can be retried', async (t) => {
      const { store, bucket, server } = await openStore(t);
      // Streamed parts first, then eight chunks copied four at a time: the copies are still
      // running when the second chunk cannot be read.
      const chunks = [MiB, MiB, 3 * MiB, ...Array<number>(8).fill(5 * MiB)].map((n) => randomBytes(n));
      const content = Buffer.concat(chunks);
      const digest = digestOf(content);
      const id = randomUUID();
      await store.createUpload(id);
      let offset = 0;
      for (const chunk of chunks) offset += await store.append(id, offset, Readable.from([chunk]));

      const watch = spy(store);
      watch.failNext('GetObjectCommand', 2);
      await assert.rejects(store.commit(id, content.length, digest), /injected failure of GetObjectCommand/);
      const abortAt = watch.events.indexOf('start AbortMultipartUploadCommand');
      assert.ok(abortAt > 0, `the blob's multipart upload was aborted: ${watch.events.join(', ')}`);
      assert.ok(watch.events.includes('start UploadPartCopyCommand'), 'copies had started');
      assert.deepEqual(inFlight(watch.events.slice(0, abortAt)), [], `nothing in flight when the abort was sent: ${watch.events.join(', ')}`);
      assert.deepEqual(watch.events.slice(abortAt + 1), ['end AbortMultipartUploadCommand'], 'nothing sent after it');
      assert.deepEqual(await server.listMultipartUploads(bucket), []);
      assert.equal(await store.stat(digest), undefined);

      watch.reset();
      assert.deepEqual(await store.commit(id, content.length, digest), { digest, sizeBytes: content.length }, 'the upload is still there to commit');
      assert.ok((await readAll(await store.read(digest))).equals(content));
      assert.deepEqual(await server.listKeys(bucket), [blobKey(digest)]);
    });

    test('a prefix with every character parseS3Location allows works for appends, copies, listings and presigned URLs', async (t) => {
      const prefix = "Tenant(A)/x!y*z'.w_v-u";
      assert.deepEqual(parseS3Location(`//bucket/${prefix}`), { bucket: 'bucket', prefix });
      const { store, bucket, server } = await openStore(t, { prefix });
      const multi = [randomBytes(6 * MiB), randomBytes(MiB), randomBytes(6 * MiB)];
      const single = randomBytes(6 * MiB + 1);
      const digests: Digest[] = [];
      for (const chunks of [multi, [single]]) {
        const id = randomUUID();
        await store.createUpload(id);
        let offset = 0;
        for (const chunk of chunks) offset += await store.append(id, offset, Readable.from([chunk]));
        const content = Buffer.concat(chunks);
        const digest = digestOf(content);
        const watch = spy(store);
        assert.deepEqual(await store.commit(id, content.length, digest), { digest, sizeBytes: content.length });
        assert.ok(count(watch.sent, 'UploadPartCopyCommand') + count(watch.sent, 'CopyObjectCommand') > 0, 'copied server-side');
        assert.ok((await readAll(await store.read(digest))).equals(content));
        const res = await fetch(await store.presign(digest, 60), { headers: { range: 'bytes=0-9' } });
        assert.equal(res.status, 206);
        assert.ok(Buffer.from(await res.arrayBuffer()).equals(content.subarray(0, 10)));
        digests.push(digest);
      }
      const pending = randomUUID();
      await store.createUpload(pending);
      await store.append(pending, 0, Readable.from([randomBytes(10)]));
      const listed: string[] = [];
      for await (const u of store.listUploads()) listed.push(u.uploadId);
      assert.deepEqual(listed, [pending]);
      await store.abortUpload(pending);
      assert.deepEqual(await server.listKeys(bucket), digests.map((d) => `${prefix}/${blobKey(d)}`).sort());
    });

    test('a commit of many small chunks reads each once, several at a time, into one blob', async (t) => {
      const { store, bucket, server } = await openStore(t);
      const chunks = Array.from({ length: 200 }, () => randomBytes(8 * 1024 + 1));
      const content = Buffer.concat(chunks);
      const digest = digestOf(content);
      const id = randomUUID();
      await store.createUpload(id);
      let offset = 0;
      for (const chunk of chunks) offset += await store.append(id, offset, Readable.from([chunk]));
      const watch = spy(store);
      const started = performance.now();
      assert.deepEqual(await store.commit(id, content.length, digest), { digest, sizeBytes: content.length });
      t.diagnostic(`commit of ${chunks.length} chunks: ${Math.round(performance.now() - started)} ms`);
      assert.equal(count(watch.sent, 'GetObjectCommand'), chunks.length, 'each chunk read once');
      let reading = 0;
      let mostReading = 0;
      for (const event of watch.events) {
        if (event === 'start GetObjectCommand') mostReading = Math.max(mostReading, ++reading);
        else if (event.endsWith(' GetObjectCommand')) reading--;
      }
      assert.ok(mostReading > 1, 'small chunks are requested ahead of their turn');
      assert.ok((await readAll(await store.read(digest))).equals(content));
      assert.deepEqual(await server.listKeys(bucket), [blobKey(digest)]);
    });

    test('presign gives a URL that fetch() can GET, and a tampered one is refused', async (t) => {
      const { store } = await openStore(t, { prefix: 'signed' });
      const content = randomBytes(300_000);
      const digest = digestOf(content);
      await putBlob(store, content);
      const url = await store.presign(digest, 60);
      const ok = await fetch(url);
      assert.equal(ok.status, 200);
      assert.ok(Buffer.from(await ok.arrayBuffer()).equals(content));
      const ranged = await fetch(url, { headers: { range: 'bytes=10-19' } });
      assert.equal(ranged.status, 206);
      assert.ok(Buffer.from(await ranged.arrayBuffer()).equals(content.subarray(10, 20)));

      const signed = new URL(url);
      const signature = signed.searchParams.get('X-Amz-Signature')!;
      const tampered = new URL(url);
      tampered.searchParams.set('X-Amz-Signature', (signature[0] === '0' ? '1' : '0') + signature.slice(1));
      const other = new URL(url);
      other.pathname = other.pathname.replace(/[a-f0-9]{64}$/, digestOf(randomBytes(1)).slice('sha256:'.length));
      const longer = new URL(url);
      longer.searchParams.set('X-Amz-Expires', '604800');
      for (const bad of [tampered, other, longer]) {
        const res = await fetch(bad);
        await res.arrayBuffer();
        assert.equal(res.status, 403, `${bad.pathname}?${bad.search}`);
      }
    });

    test('ranged reads of a blob, and BlobUnknown for a missing one', async (t) => {
      const { store } = await openStore(t);
      const content = randomBytes(2 * MiB + 1);
      const digest = await putBlob(store, content);
      for (const range of [
        { start: 0, end: 0 },
        { start: 5, end: 2 * MiB },
        { start: 2 * MiB, end: 2 * MiB },
      ]) {
        assert.ok((await readAll(await store.read(digest, range))).equals(content.subarray(range.start, range.end + 1)), `${range.start}-${range.end}`);
      }
      await assert.rejects(store.read(digestOf(randomBytes(3)), { start: 0, end: 9 }), registryError('BlobUnknown'));
    });

    test('s3:// locations: bucket and prefix parsed, and bad ones refused with the reason', () => {
      assert.deepEqual(parseS3Location('//bucket'), { bucket: 'bucket', prefix: '' });
      assert.deepEqual(parseS3Location('//bucket/'), { bucket: 'bucket', prefix: '' });
      assert.deepEqual(parseS3Location('//my.bucket-1/a/b/'), { bucket: 'my.bucket-1', prefix: 'a/b' });
      for (const [rest, why] of [
        ['bucket', /s3:\/\/BUCKET/],
        ['', /s3:\/\/BUCKET/],
        ['//', /"" is not a bucket name/],
        ['///prefix', /"" is not a bucket name/],
        ['//ab', /"ab" is not a bucket name/],
        ['//bad_bucket!', /is not a bucket name/],
        ['//bucket/a//b', /empty, "\." or "\.\." component/],
        ['//bucket/a/../b', /component/],
        ['//bucket/./b', /component/],
        ['//bucket/a%20b', /may hold only letters, digits/],
        ['//bucket/a b', /may hold only letters, digits/],
        ['//bucket/ü', /may hold only letters, digits/],
      ] as const) {
        assert.throws(() => parseS3Location(rest), why, JSON.stringify(rest));
      }
    });

    test('open() of a missing bucket, with a wrong key or an endpoint that does not answer says so', async () => {
      const server = s3!();
      await assert.rejects(S3BlobStore.open('//no-such-bucket-berth', server.settings), /cannot use bucket "no-such-bucket-berth" at http:\/\/127\.0\.0\.1:\d+: no such bucket/);
      const bucket = await server.createBucket();
      await assert.rejects(S3BlobStore.open(`//${bucket}`, { ...server.settings, secretAccessKey: 'wrong' }), /: access denied/);
      await assert.rejects(S3BlobStore.open(`//${bucket}`, { ...server.settings, endpoint: 'http://127.0.0.1:9' }), /cannot use bucket .* at http:\/\/127\.0\.0\.1:9: .*ECONNREFUSED/);
      const store = await S3BlobStore.open(`//${bucket}/ok`, server.settings);
      await store.check();
      await store.close();
    });

    test('openBlobStore("s3://BUCKET/some/prefix") opens a working store under the prefix; bad URLs are StoreConfigErrors', async (t) => {
      const server = s3!();
      const bucket = await server.createBucket();
      const store = await openBlobStore(`s3://${bucket}/some/prefix`, { s3: server.settings });
      t.after(() => store.close());
      assert.ok(store instanceof S3BlobStore);
      const content = randomBytes(1000);
      const digest = await putBlob(store, content);
      assert.ok((await readAll(await store.read(digest))).equals(content));
      assert.deepEqual(await server.listKeys(bucket), [`some/prefix/${blobKey(digest)}`]);
      await store.delete(digest);

      for (const url of ['s3:bucket', 's3://', 's3://bucket/a//b', 's3://x']) {
        await assert.rejects(openBlobStore(url, { s3: server.settings }), (err: unknown) => {
          assert.ok(err instanceof StoreConfigError, `${url}: ${String(err)}`);
          assert.match(err.message, /^blobUrl s3:/);
          return true;
        });
      }
      await assert.rejects(openBlobStore('s3://no-such-bucket-berth/p', { s3: server.settings }), (err: unknown) => {
        assert.ok(err instanceof StoreConfigError, String(err));
        assert.match(err.message, /no such bucket/);
        return true;
      });
    });
  });
}

function blobKey(digest: Digest): string {
  const [algorithm, hex] = digest.split(':') as [string, string];
  return `blobs/${algorithm}/${hex.slice(0, 2)}/${hex}`;
}

function offsetName(offset: number): string {
  return String(offset).padStart(16, '0');
}

interface Spy {
  /** The name of every command sent since spy() or the last reset(), in order. */
  sent: string[];
  /** `start X`, then `end X` or `fail X`, for every command. */
  events: string[];
  /** Makes the `nth` (from 1) next command named `command` fail before it is sent. */
  failNext(command: string, nth?: number): void;
  reset(): void;
}

/** Watches, and can break, the requests the store sends from now on. */
function spy(store: S3BlobStore): Spy {
  const client = (store as unknown as { client: S3Client }).client;
  const failures = new Map<string, number>();
  const result: Spy = {
    sent: [],
    events: [],
    failNext(command, nth = 1) {
      failures.set(command, nth);
    },
    reset() {
      result.sent.length = 0;
      result.events.length = 0;
    },
  };
  client.middlewareStack.remove('berthTestSpy');
  client.middlewareStack.add(
    (next, context) => async (args) => {
      const name = context.commandName ?? '?';
      result.sent.push(name);
      result.events.push(`start ${name}`);
      const left = failures.get(name);
      if (left !== undefined) {
        if (left === 1) failures.delete(name);
        else failures.set(name, left - 1);
        if (left === 1) {
          result.events.push(`fail ${name}`);
          throw new Error(`injected failure of ${name}`);
        }
      }
      try {
        const out = await next(args);
        result.events.push(`end ${name}`);
        return out;
      } catch (err) {
        result.events.push(`fail ${name}`);
        throw err;
      }
    },
    { step: 'initialize', name: 'berthTestSpy' },
  );
  return result;
}

/** The commands started but not yet ended or failed by the end of `events`. */
function inFlight(events: string[]): string[] {
  const open = new Map<string, number>();
  for (const event of events) {
    const [what, name] = event.split(' ') as [string, string];
    open.set(name, (open.get(name) ?? 0) + (what === 'start' ? 1 : -1));
  }
  return [...open].filter(([, n]) => n > 0).map(([name, n]) => `${n} × ${name}`);
}

function count(sent: string[], command: string): number {
  return sent.filter((c) => c === command).length;
}

async function putBlob(store: { createUpload(id: string): Promise<void>; append(id: string, offset: number, body: Readable): Promise<number>; commit(id: string, size: number, digest: Digest): Promise<unknown> }, content: Buffer): Promise<Digest> {
  const id = randomUUID();
  const digest = digestOf(content);
  await store.createUpload(id);
  await store.append(id, 0, Readable.from([content]));
  await store.commit(id, content.length, digest);
  return digest;
}

/** Sends `sent` in 256 KiB pieces, then fails, as a client going away mid-chunk. */
function failingBody(sent: Buffer): Readable {
  let offset = 0;
  return new Readable({
    read() {
      if (offset < sent.length) {
        this.push(sent.subarray(offset, (offset += 256 * 1024)));
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
