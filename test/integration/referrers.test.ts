import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { test } from 'node:test';
import { MT, blob, buildImage, pushBlob, pushImage, repoName, sha256, type Blob } from '../support/oci.ts';
import { expectError, sharedServer } from '../support/http.ts';

const s = sharedServer();

const SIGNATURE = 'application/vnd.example.signature.v1';
const SBOM = 'application/vnd.example.sbom.v1+json';
const EMPTY = blob('{}');

interface Descriptor {
  mediaType: string;
  digest: string;
  size: number;
  artifactType?: string;
  annotations?: Record<string, string>;
}

interface Pushed {
  bytes: Buffer;
  digest: string;
  descriptor: Descriptor;
}

function descriptorOf(b: Blob, mediaType: string): Descriptor {
  return { mediaType, digest: b.digest, size: b.bytes.length };
}

async function pushImageSubject(repository: string): Promise<Descriptor> {
  const image = buildImage();
  await pushImage(s.baseUrl, repository, image, 'v1');
  return { mediaType: MT.ociManifest, digest: image.digest, size: image.manifest.length };
}

/** PUT a manifest and check the OCI-Subject answer (spec: "Pushing Manifests with Subject"). */
async function pushReferrer(repository: string, manifest: Record<string, unknown>, reference?: string): Promise<Pushed> {
  const bytes = Buffer.from(JSON.stringify(manifest));
  const digest = sha256(bytes);
  const mediaType = manifest['mediaType'] as string;
  const res = await s.fetch(`/v2/${repository}/manifests/${reference ?? digest}`, { method: 'PUT', body: bytes, headers: { 'content-type': mediaType } });
  assert.equal(res.status, 201, await res.clone().text());
  assert.equal(res.headers.get('docker-content-digest'), digest);
  const subject = manifest['subject'] as Descriptor | undefined;
  assert.equal(res.headers.get('oci-subject'), subject?.digest ?? null);
  return { bytes, digest, descriptor: { mediaType, digest, size: bytes.length } };
}

/** A signature-like artifact: artifactType set, empty config (image-spec "Guidelines for Artifact Usage"). */
async function pushSignature(repository: string, subject: Descriptor, annotations: Record<string, string>): Promise<Pushed> {
  const payload = blob(randomBytes(64));
  await pushBlob(s.baseUrl, repository, EMPTY);
  await pushBlob(s.baseUrl, repository, payload);
  const pushed = await pushReferrer(repository, {
    schemaVersion: 2,
    mediaType: MT.ociManifest,
    artifactType: SIGNATURE,
    config: descriptorOf(EMPTY, MT.ociEmpty),
    layers: [descriptorOf(payload, 'application/vnd.example.signature.payload')],
    subject,
    annotations,
  });
  return { ...pushed, descriptor: { ...pushed.descriptor, artifactType: SIGNATURE, annotations } };
}

/** An SBOM-like artifact the older way: no artifactType, the type is the config's media type. */
async function pushSbom(repository: string, subject: Descriptor, annotations: Record<string, string>): Promise<Pushed> {
  const config = blob(JSON.stringify({ format: 'spdx', nonce: randomBytes(4).toString('hex') }));
  const doc = blob(randomBytes(128));
  await pushBlob(s.baseUrl, repository, config);
  await pushBlob(s.baseUrl, repository, doc);
  const pushed = await pushReferrer(repository, {
    schemaVersion: 2,
    mediaType: MT.ociManifest,
    config: descriptorOf(config, SBOM),
    layers: [descriptorOf(doc, 'application/spdx+json')],
    subject,
    annotations,
  });
  return { ...pushed, descriptor: { ...pushed.descriptor, artifactType: SBOM, annotations } };
}

async function referrers(repository: string, digest: string, query = ''): Promise<{ res: Response; manifests: Descriptor[] }> {
  const res = await s.fetch(`/v2/${repository}/referrers/${digest}${query}`);
  assert.equal(res.status, 200);
  assert.equal(res.headers.get('content-type'), MT.ociIndex);
  const body = (await res.json()) as { schemaVersion: number; mediaType: string; manifests: Descriptor[] };
  assert.equal(body.schemaVersion, 2);
  assert.equal(body.mediaType, MT.ociIndex);
  assert.ok(Array.isArray(body.manifests));
  return { res, manifests: body.manifests };
}

const byDigest = (a: Descriptor, b: Descriptor) => (a.digest < b.digest ? -1 : a.digest > b.digest ? 1 : 0);

test('referrers of an image are listed as an OCI index with their artifact types and annotations', async () => {
  const repository = repoName();
  const subject = await pushImageSubject(repository);
  const signature = await pushSignature(repository, subject, { 'org.example.signer': 'alice', 'org.opencontainers.image.created': '2024-01-01T00:00:00Z' });
  const sbom = await pushSbom(repository, subject, { 'org.example.sbom.format': 'spdx' });
  const { res, manifests } = await referrers(repository, subject.digest);
  assert.equal(res.headers.get('oci-filters-applied'), null);
  assert.deepEqual([...manifests].sort(byDigest), [signature.descriptor, sbom.descriptor].sort(byDigest));
});

test('artifactType filters the referrers and says so in OCI-Filters-Applied', async () => {
  const repository = repoName();
  const subject = await pushImageSubject(repository);
  const signature = await pushSignature(repository, subject, { n: '1' });
  const sbom = await pushSbom(repository, subject, { n: '2' });

  const sigs = await referrers(repository, subject.digest, `?artifactType=${encodeURIComponent(SIGNATURE)}`);
  assert.equal(sigs.res.headers.get('oci-filters-applied'), 'artifactType');
  assert.deepEqual(sigs.manifests, [signature.descriptor]);

  const sboms = await referrers(repository, subject.digest, `?artifactType=${encodeURIComponent(SBOM)}`);
  assert.equal(sboms.res.headers.get('oci-filters-applied'), 'artifactType');
  assert.deepEqual(sboms.manifests, [sbom.descriptor]);

  const none = await referrers(repository, subject.digest, `?artifactType=${encodeURIComponent('application/vnd.example.none')}`);
  assert.equal(none.res.headers.get('oci-filters-applied'), 'artifactType');
  assert.deepEqual(none.manifests, []);
});

test('a subject without referrers gets an empty list', async () => {
  const repository = repoName();
  const subject = await pushImageSubject(repository);
  assert.deepEqual((await referrers(repository, subject.digest)).manifests, []);
  // Also a digest that names nothing at all in the repository.
  assert.deepEqual((await referrers(repository, sha256(randomBytes(8)))).manifests, []);
});

test('referrers pushed before their subject are listed, before and after it arrives', async () => {
  const repository = repoName();
  const image = buildImage();
  const subject: Descriptor = { mediaType: MT.ociManifest, digest: image.digest, size: image.manifest.length };
  const signature = await pushSignature(repository, subject, { early: 'yes' });
  assert.deepEqual((await referrers(repository, subject.digest)).manifests, [signature.descriptor]);
  await pushImage(s.baseUrl, repository, image, 'later');
  assert.deepEqual((await referrers(repository, subject.digest)).manifests, [signature.descriptor]);
});

test('an empty artifactType falls back to the config media type', async () => {
  const repository = repoName();
  const subject = await pushImageSubject(repository);
  const config = blob('{"kind":"attestation"}');
  await pushBlob(s.baseUrl, repository, config);
  const type = 'application/vnd.example.attestation.v1+json';
  const pushed = await pushReferrer(repository, {
    schemaVersion: 2,
    mediaType: MT.ociManifest,
    artifactType: '',
    config: descriptorOf(config, type),
    layers: [],
    subject,
  });
  assert.deepEqual((await referrers(repository, subject.digest)).manifests, [{ ...pushed.descriptor, artifactType: type }]);
});

test('an index can be a referrer; without an artifactType its descriptor has none', async () => {
  const repository = repoName();
  const subject = await pushImageSubject(repository);
  const child = await pushSignature(repository, { mediaType: MT.ociManifest, digest: sha256('unrelated'), size: 9 }, {});
  const plain = await pushReferrer(repository, {
    schemaVersion: 2,
    mediaType: MT.ociIndex,
    manifests: [child.descriptor],
    subject,
    annotations: { 'org.example.bundle': 'plain' },
  });
  const typed = await pushReferrer(repository, {
    schemaVersion: 2,
    mediaType: MT.ociIndex,
    artifactType: 'application/vnd.example.bundle.v1',
    manifests: [child.descriptor],
    subject,
  });
  const { manifests } = await referrers(repository, subject.digest);
  assert.deepEqual(
    [...manifests].sort(byDigest),
    [
      { ...plain.descriptor, annotations: { 'org.example.bundle': 'plain' } },
      { ...typed.descriptor, artifactType: 'application/vnd.example.bundle.v1' },
    ].sort(byDigest),
  );
});

test('a referrer pushed by tag is listed, and a deleted one is not', async () => {
  const repository = repoName();
  const subject = await pushImageSubject(repository);
  await pushBlob(s.baseUrl, repository, EMPTY);
  const tagged = await pushReferrer(
    repository,
    { schemaVersion: 2, mediaType: MT.ociManifest, artifactType: SIGNATURE, config: descriptorOf(EMPTY, MT.ociEmpty), layers: [], subject },
    'sig-tag',
  );
  const other = await pushSbom(repository, subject, { keep: 'me' });
  const before = await referrers(repository, subject.digest);
  assert.deepEqual([...before.manifests].sort(byDigest), [{ ...tagged.descriptor, artifactType: SIGNATURE }, other.descriptor].sort(byDigest));
  assert.equal((await s.fetch(`/v2/${repository}/manifests/${tagged.digest}`, { method: 'DELETE' })).status, 202);
  assert.deepEqual((await referrers(repository, subject.digest)).manifests, [other.descriptor]);
});

test('referrers are listed only in their own repository', async () => {
  const one = repoName();
  const two = repoName();
  const subject = await pushImageSubject(one);
  const signature = await pushSignature(two, subject, { where: 'two' });
  assert.deepEqual((await referrers(one, subject.digest)).manifests, []);
  assert.deepEqual((await referrers(two, subject.digest)).manifests, [signature.descriptor]);
});

test('a manifest without subject gets no OCI-Subject header', async () => {
  const repository = repoName();
  const image = buildImage();
  for (const b of [image.config, ...image.layers]) await pushBlob(s.baseUrl, repository, b);
  const res = await s.fetch(`/v2/${repository}/manifests/v1`, { method: 'PUT', body: image.manifest, headers: { 'content-type': MT.ociManifest } });
  assert.equal(res.status, 201);
  assert.equal(res.headers.get('oci-subject'), null);
});

test('an empty artifactType filter is no filter', async () => {
  const repository = repoName();
  const subject = await pushImageSubject(repository);
  const signature = await pushSignature(repository, subject, {});
  const { res, manifests } = await referrers(repository, subject.digest, '?artifactType=');
  assert.equal(res.headers.get('oci-filters-applied'), null);
  assert.deepEqual(manifests, [signature.descriptor]);
});

test('a malformed subject digest answers 400 DIGEST_INVALID', async () => {
  const repository = repoName();
  await pushImageSubject(repository);
  for (const digest of ['sha256:abc', 'latest', `sha256:${'G'.repeat(64)}`, `md5:${'a'.repeat(32)}`]) {
    await expectError(await s.fetch(`/v2/${repository}/referrers/${digest}`), 400, 'DIGEST_INVALID');
  }
});

test('referrers of a repository that does not exist answer 404 NAME_UNKNOWN; an invalid name 400 NAME_INVALID', async () => {
  // The spec says both "MUST NOT return a 404" and, in its endpoint table, 404 for end-12a; Berth
  // answers NAME_UNKNOWN as every other endpoint does for a repository it has never seen.
  await expectError(await s.fetch(`/v2/${repoName()}/referrers/${sha256('x')}`), 404, 'NAME_UNKNOWN');
  await expectError(await s.fetch(`/v2/Bad..Name/referrers/${sha256('x')}`), 400, 'NAME_INVALID');
});
