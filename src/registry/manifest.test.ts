import assert from 'node:assert/strict';
import { test } from 'node:test';
import { RegistryError } from '../errors/catalogue.ts';
import { digestOf } from '../digest/digest.ts';
import { MediaTypes, isIndexMediaType, parseManifest } from './manifest.ts';

const CONFIG_TYPE = 'application/vnd.oci.image.config.v1+json';
const LAYER_TYPE = 'application/vnd.oci.image.layer.v1.tar+gzip';
const DOCKER_CONFIG_TYPE = 'application/vnd.docker.container.image.v1+json';
const DOCKER_LAYER_TYPE = 'application/vnd.docker.image.rootfs.diff.tar.gzip';

const d = (seed: string) => digestOf(Buffer.from(seed));
const config = { mediaType: CONFIG_TYPE, digest: d('config'), size: 6 };
const layer1 = { mediaType: LAYER_TYPE, digest: d('layer1'), size: 100 };
const layer2 = { mediaType: LAYER_TYPE, digest: d('layer2'), size: 200 };

function bytes(doc: unknown): Buffer {
  return Buffer.from(typeof doc === 'string' ? doc : JSON.stringify(doc));
}

function ociManifest(extra: Record<string, unknown> = {}): Record<string, unknown> {
  return { schemaVersion: 2, mediaType: MediaTypes.ociManifest, config, layers: [layer1, layer2], ...extra };
}

function ociIndex(extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    schemaVersion: 2,
    mediaType: MediaTypes.ociIndex,
    manifests: [
      { mediaType: MediaTypes.ociManifest, digest: d('amd64'), size: 500, platform: { os: 'linux', architecture: 'amd64' } },
      { mediaType: MediaTypes.ociManifest, digest: d('arm64'), size: 501, platform: { os: 'linux', architecture: 'arm64' } },
    ],
    ...extra,
  };
}

/** Asserts that parsing fails with ManifestInvalid and a message matching the pattern. */
function assertInvalid(doc: unknown, contentType: string | undefined, pattern: RegExp): void {
  assert.throws(
    () => parseManifest(bytes(doc), contentType),
    (err: unknown) => {
      assert.ok(err instanceof RegistryError, String(err));
      assert.equal(err.errorName, 'ManifestInvalid');
      assert.match(err.message, /^Invalid manifest: /);
      assert.match(err.message, pattern);
      return true;
    },
  );
}

test('OCI image manifest: blobs are config then layers, all referenced as blobs', () => {
  const parsed = parseManifest(bytes(ociManifest()), MediaTypes.ociManifest);
  assert.equal(parsed.mediaType, MediaTypes.ociManifest);
  assert.deepEqual(parsed.blobs.map((b) => b.digest), [config.digest, layer1.digest, layer2.digest]);
  assert.deepEqual(parsed.manifests, []);
  assert.deepEqual(parsed.references, [
    { digest: config.digest, kind: 'blob' },
    { digest: layer1.digest, kind: 'blob' },
    { digest: layer2.digest, kind: 'blob' },
  ]);
  assert.equal(parsed.subject, null);
  assert.equal(parsed.annotations, null);
});

test('artifactType: the manifest field, else the config media type of an OCI manifest', () => {
  assert.equal(parseManifest(bytes(ociManifest()), undefined).artifactType, CONFIG_TYPE);
  assert.equal(parseManifest(bytes(ociManifest({ artifactType: 'application/vnd.example.sbom' })), undefined).artifactType, 'application/vnd.example.sbom');
  // An empty artifactType counts as missing (distribution spec, "Listing Referrers").
  assert.equal(parseManifest(bytes(ociManifest({ artifactType: '' })), undefined).artifactType, CONFIG_TYPE);
  const emptyConfig = { mediaType: MediaTypes.ociEmpty, digest: d('{}'), size: 2 };
  assert.equal(parseManifest(bytes(ociManifest({ config: emptyConfig, layers: [] })), undefined).artifactType, MediaTypes.ociEmpty);
});

test('an OCI manifest may have no layers (artifacts)', () => {
  const parsed = parseManifest(bytes(ociManifest({ layers: [] })), undefined);
  assert.deepEqual(parsed.blobs.map((b) => b.digest), [config.digest]);
});

test('Docker schema 2 manifest: no artifactType, at least one layer', () => {
  const doc = {
    schemaVersion: 2,
    mediaType: MediaTypes.dockerManifest,
    config: { mediaType: DOCKER_CONFIG_TYPE, digest: config.digest, size: 6 },
    layers: [{ mediaType: DOCKER_LAYER_TYPE, digest: layer1.digest, size: 100 }],
  };
  const parsed = parseManifest(bytes(doc), MediaTypes.dockerManifest);
  assert.equal(parsed.mediaType, MediaTypes.dockerManifest);
  assert.equal(parsed.artifactType, null);
  assert.deepEqual(parsed.blobs.map((b) => b.digest), [config.digest, layer1.digest]);
  assertInvalid({ ...doc, layers: [] }, MediaTypes.dockerManifest, /at least one layer/);
});

test('non-distributable layers with URLs are not required blobs', () => {
  const foreign = { mediaType: 'application/vnd.oci.image.layer.nondistributable.v1.tar+gzip', digest: d('foreign'), size: 9, urls: ['https://example.com/layer'] };
  const parsed = parseManifest(bytes(ociManifest({ layers: [foreign, layer1] })), undefined);
  assert.deepEqual(parsed.blobs.map((b) => b.digest), [config.digest, layer1.digest]);
  assert.equal(parsed.references.some((r) => r.digest === foreign.digest), false);
  // Without URLs (or with an empty list) the layer is an ordinary blob.
  const local = { ...foreign, urls: [] };
  assert.ok(parseManifest(bytes(ociManifest({ layers: [local] })), undefined).blobs.some((b) => b.digest === foreign.digest));
});

test('OCI index: children are manifests, referenced as manifests', () => {
  const parsed = parseManifest(bytes(ociIndex()), MediaTypes.ociIndex);
  assert.equal(parsed.mediaType, MediaTypes.ociIndex);
  assert.deepEqual(parsed.manifests.map((m) => m.digest), [d('amd64'), d('arm64')]);
  assert.deepEqual(parsed.blobs, []);
  assert.deepEqual(parsed.references, [
    { digest: d('amd64'), kind: 'manifest' },
    { digest: d('arm64'), kind: 'manifest' },
  ]);
  assert.equal(parsed.artifactType, null);
  assert.equal(parseManifest(bytes(ociIndex({ artifactType: 'application/vnd.example.bundle' })), undefined).artifactType, 'application/vnd.example.bundle');
  assert.deepEqual(parseManifest(bytes(ociIndex({ manifests: [] })), undefined).references, []);
});

test('an index may list blobs as well; they are referenced as blobs', () => {
  const parsed = parseManifest(bytes(ociIndex({ blobs: [layer1] })), undefined);
  assert.deepEqual(parsed.blobs.map((b) => b.digest), [layer1.digest]);
  assert.deepEqual(parsed.references.at(-1), { digest: layer1.digest, kind: 'blob' });
});

test('Docker manifest list parses like an index', () => {
  const doc = {
    schemaVersion: 2,
    mediaType: MediaTypes.dockerManifestList,
    manifests: [{ mediaType: MediaTypes.dockerManifest, digest: d('amd64'), size: 500, platform: { os: 'linux', architecture: 'amd64' } }],
  };
  const parsed = parseManifest(bytes(doc), MediaTypes.dockerManifestList);
  assert.equal(parsed.mediaType, MediaTypes.dockerManifestList);
  assert.deepEqual(parsed.references, [{ digest: d('amd64'), kind: 'manifest' }]);
});

test('isIndexMediaType knows both index types', () => {
  assert.equal(isIndexMediaType(MediaTypes.ociIndex), true);
  assert.equal(isIndexMediaType(MediaTypes.dockerManifestList), true);
  assert.equal(isIndexMediaType(MediaTypes.ociManifest), false);
  assert.equal(isIndexMediaType(MediaTypes.dockerManifest), false);
});

test('subject and annotations are returned', () => {
  const subject = { mediaType: MediaTypes.ociManifest, digest: d('subject'), size: 321 };
  const annotations = { 'org.opencontainers.image.created': '2024-01-01T00:00:00Z' };
  const parsed = parseManifest(bytes(ociManifest({ subject, annotations, artifactType: 'application/vnd.example.sig' })), undefined);
  assert.deepEqual(parsed.subject, subject);
  assert.deepEqual(parsed.annotations, annotations);
  // The subject need not exist, so it is not a reference the push would check.
  assert.equal(parsed.references.some((r) => r.digest === subject.digest), false);
  assert.deepEqual(parseManifest(bytes(ociIndex({ subject })), undefined).subject, subject);
});

test('without a mediaType field, the Content-Type says what the manifest is', () => {
  const { mediaType: _omit, ...noType } = ociManifest();
  assert.equal(parseManifest(bytes(noType), MediaTypes.ociManifest).mediaType, MediaTypes.ociManifest);
  // Parameters and case in the header do not matter.
  assert.equal(parseManifest(bytes(noType), `${MediaTypes.ociManifest.toUpperCase()}; charset=utf-8`).mediaType, MediaTypes.ociManifest);
  const { mediaType: _omitIndex, ...noTypeIndex } = ociIndex();
  assert.equal(parseManifest(bytes(noTypeIndex), MediaTypes.ociIndex).mediaType, MediaTypes.ociIndex);
  assertInvalid(noType, undefined, /media type is unknown/);
  assertInvalid(noType, '', /media type is unknown/);
  assertInvalid(noType, 'application/json', /"application\/json" is not a manifest type/);
});

test('the mediaType field wins over a Content-Type that is not a manifest type', () => {
  for (const header of [undefined, 'application/json', 'application/octet-stream', 'text/plain; charset=utf-8']) {
    assert.equal(parseManifest(bytes(ociManifest()), header).mediaType, MediaTypes.ociManifest, String(header));
  }
});

test('a Content-Type naming a different manifest type is refused', () => {
  assertInvalid(ociManifest(), MediaTypes.ociIndex, /Content-Type .* does not match the manifest's mediaType/);
  assertInvalid(ociManifest(), MediaTypes.dockerManifest, /does not match/);
  assertInvalid(ociIndex(), MediaTypes.dockerManifestList, /does not match/);
});

test('Docker schema 1 manifests are refused, however they are labelled', () => {
  const schema1 = { schemaVersion: 1, name: 'library/alpine', tag: 'latest', architecture: 'amd64', fsLayers: [], history: [] };
  assertInvalid(schema1, MediaTypes.dockerSchema1, /schema version 1 is not supported/);
  assertInvalid(schema1, MediaTypes.dockerSchema1Signed, /schema version 1 is not supported/);
  assertInvalid(schema1, undefined, /schema version 1 is not supported/);
  assertInvalid({ ...schema1, mediaType: MediaTypes.dockerSchema1 }, 'application/json', /schema version 1 is not supported/);
});

test('unsupported media types and schema versions are refused', () => {
  assertInvalid(ociManifest({ mediaType: 'application/vnd.oci.artifact.manifest.v1+json' }), undefined, /is not a manifest type Berth stores/);
  assertInvalid(ociManifest({ mediaType: 42 }), undefined, /mediaType must be a string/);
  assertInvalid(ociManifest({ schemaVersion: 3 }), undefined, /schemaVersion must be 2/);
  assertInvalid(ociManifest({ schemaVersion: '2' }), undefined, /schemaVersion must be 2/);
  const { schemaVersion: _omit, ...noVersion } = ociManifest();
  assertInvalid(noVersion, undefined, /schemaVersion must be 2/);
});

test('bodies that are not a JSON object are refused', () => {
  assertInvalid('{"schemaVersion": 2,', MediaTypes.ociManifest, /not valid JSON/);
  assertInvalid('', MediaTypes.ociManifest, /not valid JSON/);
  assertInvalid('[]', MediaTypes.ociManifest, /must be a JSON object/);
  assertInvalid('null', MediaTypes.ociManifest, /must be a JSON object/);
  assertInvalid('"manifest"', MediaTypes.ociManifest, /must be a JSON object/);
});

test('bad descriptors are refused with their path', () => {
  const { config: _omit, ...noConfig } = ociManifest();
  assertInvalid(noConfig, undefined, /config must be an object/);
  assertInvalid(ociManifest({ config: [config] }), undefined, /config must be an object/);
  assertInvalid(ociManifest({ config: { ...config, mediaType: '' } }), undefined, /config\.mediaType must be a non-empty string/);
  assertInvalid(ociManifest({ config: { ...config, digest: 'sha256:short' } }), undefined, /config\.digest must be a sha256 or sha512 digest/);
  assertInvalid(ociManifest({ config: { ...config, digest: undefined } }), undefined, /config\.digest/);
  assertInvalid(ociManifest({ layers: undefined }), undefined, /layers must be a list/);
  assertInvalid(ociManifest({ layers: { 0: layer1 } }), undefined, /layers must be a list/);
  assertInvalid(ociManifest({ layers: [layer1, null] }), undefined, /layers\[1\] must be an object/);
  assertInvalid(ociManifest({ layers: [{ ...layer1, size: -1 }] }), undefined, /layers\[0\]\.size must be a non-negative integer/);
  assertInvalid(ociManifest({ layers: [{ ...layer1, size: 1.5 }] }), undefined, /layers\[0\]\.size/);
  assertInvalid(ociManifest({ layers: [{ ...layer1, size: '100' }] }), undefined, /layers\[0\]\.size/);
  assertInvalid(ociManifest({ layers: [{ ...layer1, size: 2 ** 53 }] }), undefined, /layers\[0\]\.size/);
  assertInvalid(ociManifest({ layers: [{ ...layer1, urls: 'https://example.com' }] }), undefined, /layers\[0\]\.urls must be a list of strings/);
  assertInvalid(ociManifest({ layers: [{ ...layer1, urls: [1] }] }), undefined, /layers\[0\]\.urls/);
  assertInvalid(ociManifest({ layers: [{ ...layer1, artifactType: 7 }] }), undefined, /layers\[0\]\.artifactType must be a string/);
  assertInvalid(ociManifest({ layers: [{ ...layer1, annotations: { a: 1 } }] }), undefined, /layers\[0\]\.annotations must map strings to strings/);
  assertInvalid(ociManifest({ subject: 'sha256:abc' }), undefined, /subject must be an object/);
  assertInvalid(ociManifest({ subject: { ...config, digest: 'nope' } }), undefined, /subject\.digest/);
  assertInvalid(ociIndex({ manifests: undefined }), undefined, /manifests must be a list/);
  assertInvalid(ociIndex({ manifests: [{ mediaType: MediaTypes.ociManifest, size: 1 }] }), undefined, /manifests\[0\]\.digest/);
  assertInvalid(ociIndex({ blobs: 'none' }), undefined, /blobs must be a list/);
});

test('top-level annotations and artifactType must have the right types', () => {
  assertInvalid(ociManifest({ annotations: ['a'] }), undefined, /annotations must map strings to strings/);
  assertInvalid(ociManifest({ annotations: { a: true } }), undefined, /annotations must map strings to strings/);
  assertInvalid(ociManifest({ annotations: null }), undefined, /annotations must map strings to strings/);
  assertInvalid(ociManifest({ artifactType: 1 }), undefined, /artifactType must be a string/);
});

test('sha512 descriptors are accepted', () => {
  const layer = { mediaType: LAYER_TYPE, digest: digestOf(Buffer.from('x'), 'sha512'), size: 1 };
  assert.equal(parseManifest(bytes(ociManifest({ layers: [layer] })), undefined).blobs[1]!.digest, layer.digest);
});

test('parses from a view into a larger buffer', () => {
  const payload = bytes(ociManifest());
  const backing = Buffer.concat([Buffer.from('garbage'), payload, Buffer.from('more')]);
  const view = new Uint8Array(backing.buffer, backing.byteOffset + 7, payload.length);
  assert.equal(parseManifest(view, undefined).mediaType, MediaTypes.ociManifest);
});
