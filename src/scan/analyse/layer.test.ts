import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { once } from 'node:events';
import { mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { test, type TestContext } from 'node:test';
import zlib from 'node:zlib';
import tar from 'tar-stream';
import type { FileFacts } from '../types.ts';
import { ScanInputError, type AnalyserInput, type EntryInfo, type FileAnalyser } from './analyser.ts';
import { apkAnalyser } from './apk.ts';
import { dpkgAnalyser } from './dpkg.ts';
import { analyseLayer, normaliseEntryPath, type AnalyseLayerOptions } from './layer.ts';
import { defaultScanLimits, type ScanLimits } from './limits.ts';
import { npmAnalyser } from './npm.ts';
import { osReleaseAnalyser } from './os-release.ts';
import { pythonAnalyser } from './python.ts';

const GZIP = 'application/vnd.oci.image.layer.v1.tar+gzip';
const ZSTD = 'application/vnd.oci.image.layer.v1.tar+zstd';
const TAR = 'application/vnd.oci.image.layer.v1.tar';
const DOCKER_GZIP = 'application/vnd.docker.image.rootfs.diff.tar.gzip';
const MiB = 1024 * 1024;
const GiB = 1024 * MiB;

const textAnalysers = [osReleaseAnalyser, dpkgAnalyser, apkAnalyser, npmAnalyser, pythonAnalyser];

interface Entry {
  name: string;
  content?: string | Buffer;
  type?: 'file' | 'symlink' | 'link' | 'directory' | 'character-device';
  linkname?: string;
  mode?: number;
}

async function tarOf(entries: Entry[]): Promise<Buffer> {
  const pack = tar.pack();
  const done = (async () => {
    const parts: Buffer[] = [];
    for await (const chunk of pack) parts.push(chunk as Buffer);
    return Buffer.concat(parts);
  })();
  for (const e of entries) {
    const type = e.type ?? 'file';
    const header = { name: e.name, type, mode: e.mode ?? (type === 'directory' ? 0o755 : 0o644), linkname: e.linkname };
    await new Promise<void>((resolve, reject) => {
      const body = type === 'file' ? (e.content ?? '') : undefined;
      if (body === undefined) pack.entry(header, (err) => (err ? reject(err) : resolve()));
      else pack.entry(header, body, (err) => (err ? reject(err) : resolve()));
    });
  }
  pack.finalize();
  return done;
}

const sha256 = (data: Buffer) => `sha256:${createHash('sha256').update(data).digest('hex')}`;

async function tempDir(t: TestContext): Promise<string> {
  const dir = await mkdtemp(path.join(tmpdir(), 'berth-layer-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

async function analyse(t: TestContext, data: Buffer | Readable, options: Partial<AnalyseLayerOptions> = {}) {
  const dir = await tempDir(t);
  const input = Buffer.isBuffer(data) ? Readable.from([data]) : data;
  const result = await analyseLayer(input, { mediaType: TAR, analysers: textAnalysers, limits: defaultScanLimits, tempDir: dir, ...options });
  assert.deepEqual(await readdir(dir), [], 'the walker leaves nothing in its temporary directory');
  return result;
}

/** Rejects with a ScanInputError whose message matches, and leaves the temporary directory empty. */
async function refused(t: TestContext, data: Buffer | Readable, options: Partial<AnalyseLayerOptions>, pattern: RegExp): Promise<void> {
  const dir = await tempDir(t);
  const input = Buffer.isBuffer(data) ? Readable.from([data]) : data;
  await assert.rejects(
    analyseLayer(input, { mediaType: TAR, analysers: textAnalysers, limits: defaultScanLimits, tempDir: dir, ...options }),
    (err: unknown) => {
      assert.ok(err instanceof ScanInputError, `a ScanInputError, not ${String(err)}`);
      assert.match(err.message, pattern);
      return true;
    },
  );
  assert.deepEqual(await readdir(dir), []);
}

/**
 * A tar stream of zero-filled files generated as it is read, never held whole: each entry is
 * written in 1 MiB pieces with backpressure, and generation stops when the reader gives up.
 */
function zeroFilesTar(files: Array<{ name: string; size: number }>): tar.Pack {
  const pack = tar.pack();
  const zeros = Buffer.alloc(MiB);
  void (async () => {
    for (const file of files) {
      const sink = pack.entry({ name: file.name, size: file.size });
      for (let left = file.size; left > 0; left -= zeros.length) {
        if (pack.destroying) return;
        if (!sink.write(zeros.subarray(0, Math.min(left, zeros.length)))) await once(sink, 'drain');
      }
      sink.end(undefined);
      await once(sink, 'finish');
    }
    pack.finalize();
  })().catch(() => undefined);
  return pack;
}

/** Pipes a generated stream through a compressor; destroying the result stops the generator. */
function compressed(source: tar.Pack, compressor: zlib.Gzip | zlib.ZstdCompress): Readable {
  pipeline(source as unknown as Readable, compressor).catch(() => undefined);
  return compressor;
}

/** A 512-byte tar header written by hand, for what tar-stream's pack will not write (GNU long names, '..'). */
function rawHeader(name: string, size: number, typeflag: string, magic: 'gnu' | 'ustar' = 'ustar'): Buffer {
  const block = Buffer.alloc(512);
  block.write(name.slice(0, 100), 0, 'utf8');
  block.write('0000644\0', 100);
  block.write('0000000\0', 108);
  block.write('0000000\0', 116);
  block.write(`${size.toString(8).padStart(11, '0')}\0`, 124);
  block.write('00000000000\0', 136);
  block.write(typeflag, 156);
  if (magic === 'gnu') block.write('ustar  \0', 257, 'binary');
  else block.write('ustar\u000000', 257, 'binary');
  block.write('        ', 148);
  let sum = 0;
  for (const byte of block) sum += byte;
  block.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148);
  return block;
}

function padded(data: Buffer): Buffer {
  return Buffer.concat([data, Buffer.alloc((512 - (data.length % 512)) % 512)]);
}

const dpkgStatus = `Package: libc6
Status: install ok installed
Architecture: amd64
Source: glibc
Version: 2.36-9+deb12u4

`;

test('a gzip, a zstd and a plain layer of the same tar give the same facts and diffID', async (t) => {
  const layer = await tarOf([
    { name: 'etc/', type: 'directory' },
    { name: 'etc/os-release', content: 'ID=debian\nVERSION_ID="12"\nVERSION_CODENAME=bookworm\n' },
    { name: './var/lib/dpkg/status', content: dpkgStatus },
    { name: 'usr/bin/unrelated', content: Buffer.alloc(100_000, 7), mode: 0o755 },
  ]);
  const expected = {
    analyserVersion: 1,
    files: {
      'etc/os-release': { os: { id: 'debian', versionId: '12', codename: 'bookworm' } },
      'var/lib/dpkg/status': {
        packages: [{ ecosystem: 'deb', name: 'libc6', version: '2.36-9+deb12u4', arch: 'amd64', sourceName: 'glibc', path: 'var/lib/dpkg/status' }],
      },
    },
    whiteouts: [],
    opaqueDirs: [],
  };
  for (const [mediaType, data] of [
    [TAR, layer],
    [GZIP, zlib.gzipSync(layer)],
    [DOCKER_GZIP, zlib.gzipSync(layer)],
    [ZSTD, zlib.zstdCompressSync(layer)],
  ] as const) {
    const result = await analyse(t, data, { mediaType, expectedDiffId: sha256(layer) });
    assert.deepEqual(result.facts, expected, mediaType);
    assert.equal(result.diffId, sha256(layer), mediaType);
    assert.equal(result.uncompressedBytes, layer.length, mediaType);
  }
});

test('whiteouts and opaque directories are recorded by the path they hide', async (t) => {
  const layer = await tarOf([
    { name: 'var/lib/dpkg/.wh.status' },
    { name: '.wh.opt' },
    { name: 'usr/lib/node_modules/.wh..wh..opq' },
    { name: '.wh..wh..opq' },
    { name: 'etc/.wh..wh.plnk' }, // aufs bookkeeping, not a whiteout
  ]);
  const { facts } = await analyse(t, layer);
  assert.deepEqual(facts.whiteouts, ['var/lib/dpkg/status', 'opt']);
  assert.deepEqual(facts.opaqueDirs, ['usr/lib/node_modules', '']);
  assert.deepEqual(facts.files, {});
});

test('pax and GNU long names are read whole', async (t) => {
  const deep = `usr/lib/node_modules/${'d'.repeat(120)}/node_modules/@scope/pkg`;
  const paxLayer = await tarOf([{ name: `${deep}/package.json`, content: '{"name":"@scope/pkg","version":"1.2.3"}' }]);
  const pax = await analyse(t, paxLayer);
  assert.deepEqual(Object.keys(pax.facts.files), [`${deep}/package.json`]);

  const longName = Buffer.from(`${deep}/package.json\0`);
  const content = Buffer.from('{"name":"@scope/pkg","version":"4.5.6"}');
  const gnuLayer = Buffer.concat([
    rawHeader('././@LongLink', longName.length, 'L', 'gnu'),
    padded(longName),
    rawHeader('truncated-name', content.length, '0', 'gnu'),
    padded(content),
    Buffer.alloc(1024),
  ]);
  const gnu = await analyse(t, gnuLayer);
  assert.deepEqual(gnu.facts.files[`${deep}/package.json`]?.packages?.map((p) => p.version), ['4.5.6']);
});

test('an entry that climbs out of the root is refused, one that stays inside is resolved', async (t) => {
  const content = Buffer.from('root:x:0:0::/root:/bin/sh\n');
  const hostile = Buffer.concat([rawHeader('../../etc/passwd', content.length, '0'), padded(content), Buffer.alloc(1024)]);
  await refused(t, hostile, {}, /^layer has an entry that climbs out of the image root \(path traversal\): "\.\.\/\.\.\/etc\/passwd"$/);
  await refused(t, hostile, { layerIndex: 3 }, /^layer 3 has an entry that climbs out/);

  const inside = await tarOf([{ name: 'usr/../etc/./alpine-release', content: '3.20.1\n' }]);
  const { facts } = await analyse(t, inside);
  assert.deepEqual(facts.files, { 'etc/alpine-release': { os: { id: 'alpine', versionId: '3.20.1' } } });
  assert.equal(normaliseEntryPath('/./a//b/../c/'), 'a/c');
  assert.equal(normaliseEntryPath('a/../../b'), undefined);
});

test('a symlink where a database should be is never followed, but hides what lower layers had there', async (t) => {
  const seen: string[] = [];
  const spy: FileAnalyser = { ...dpkgAnalyser, analyse: (entry, input, context) => (seen.push(entry.path), dpkgAnalyser.analyse(entry, input, context)) };
  const layer = await tarOf([
    { name: 'var/lib/dpkg/status', type: 'symlink', linkname: '/etc/shadow' },
    { name: 'etc/os-release', type: 'link', linkname: 'etc/shadow' },
    { name: 'etc/shadow', content: 'root:$6$secret:19000:0:99999:7:::\n' },
  ]);
  const { facts } = await analyse(t, layer, { analysers: [spy, osReleaseAnalyser] });
  assert.deepEqual(seen, []);
  assert.deepEqual(facts.files, { 'var/lib/dpkg/status': {}, 'etc/os-release': {} });
});

test('a later entry for the same path in one layer replaces the earlier one', async (t) => {
  const layer = await tarOf([
    { name: 'etc/alpine-release', content: '3.19.0\n' },
    { name: 'etc/alpine-release', content: '3.20.0\n' },
    { name: 'etc/debian_version', content: '12.5\n' },
    { name: 'etc/debian_version', type: 'directory' },
  ]);
  const { facts } = await analyse(t, layer);
  assert.deepEqual(facts.files, { 'etc/alpine-release': { os: { id: 'alpine', versionId: '3.20.0' } } });
});

test('a file an analyser will not read fails the layer or becomes a note, as the analyser says', async (t) => {
  const big = await tarOf([{ name: 'var/lib/dpkg/status', content: dpkgStatus.repeat(100) }]);
  const smallDpkg: FileAnalyser = { ...dpkgAnalyser, maxBytes: 1024 };
  await refused(t, big, { analysers: [smallDpkg] }, /^var\/lib\/dpkg\/status is 10\.1 KiB, more than the 1 KiB the dpkg analyser reads$/);

  const manifest = JSON.stringify({ name: 'left-pad', version: '1.3.0', readme: 'x'.repeat(4000) });
  const layer = await tarOf([{ name: 'app/node_modules/left-pad/package.json', content: manifest }]);
  const { facts } = await analyse(t, layer, { analysers: [{ ...npmAnalyser, maxBytes: 2048 }] });
  assert.deepEqual(facts.files, {
    'app/node_modules/left-pad/package.json': { notes: ['app/node_modules/left-pad/package.json is 4 KiB, more than the 2 KiB the npm analyser reads; not read'] },
  });
});

test('file analysers get a private spooled copy, buffer analysers the bytes, and the facts of both are merged', async (t) => {
  const ELF = Buffer.from([0x7f, 0x45, 0x4c, 0x46]);
  const calls: Array<{ analyser: string; path: string; kind: string; mode?: number; heads?: number }> = [];
  const binaryFacts = (name: string, input: 'buffer' | 'file'): FileAnalyser => ({
    name,
    input,
    maxBytes: 1 * MiB,
    tooLarge: 'fail',
    wants: (entry: EntryInfo) => (entry.mode & 0o111) !== 0,
    wantsHead: (_entry: EntryInfo, head: Buffer) => head.length <= 512 && head.subarray(0, 4).equals(ELF),
    async analyse(entry: EntryInfo, data: AnalyserInput, context): Promise<FileFacts> {
      let bytes: Buffer;
      if (data.kind === 'file') {
        const info = await stat(data.path);
        calls.push({ analyser: name, path: entry.path, kind: 'file', mode: info.mode & 0o777 });
        bytes = await readFile(data.path);
        // Left behind on purpose: the walker empties the analyser's temporary directory.
        await writeFile(path.join(context.tempDir, 'scratch'), 'x');
      } else {
        calls.push({ analyser: name, path: entry.path, kind: 'buffer' });
        bytes = data.data;
      }
      return { packages: [{ ecosystem: 'go', name, version: `v0.0.${bytes.length}`, path: entry.path }], notes: [`${name} read it`] };
    },
  });
  const binary = Buffer.concat([ELF, Buffer.alloc(70_000, 1)]);
  const layer = await tarOf([
    { name: 'usr/bin/tool', content: binary, mode: 0o755 },
    { name: 'usr/bin/script', content: '#!/bin/sh\necho hi\n', mode: 0o755 },
    { name: 'usr/share/doc/readme', content: 'not executable' },
  ]);
  const { facts } = await analyse(t, layer, { analysers: [binaryFacts('example.com/a', 'file'), binaryFacts('example.com/b', 'buffer')] });
  assert.deepEqual(calls, [
    { analyser: 'example.com/a', path: 'usr/bin/tool', kind: 'file', mode: 0o600 },
    { analyser: 'example.com/b', path: 'usr/bin/tool', kind: 'buffer' },
  ]);
  assert.deepEqual(facts.files, {
    'usr/bin/tool': {
      packages: [
        { ecosystem: 'go', name: 'example.com/a', version: 'v0.0.70004', path: 'usr/bin/tool' },
        { ecosystem: 'go', name: 'example.com/b', version: 'v0.0.70004', path: 'usr/bin/tool' },
      ],
      notes: ['example.com/a read it', 'example.com/b read it'],
    },
    // Wanted by mode, declined by its head: recorded so that it hides a lower layer's binary.
    'usr/bin/script': {},
  });
});

test('an analyser that fails fails the layer, and the walker still cleans up', async (t) => {
  const failing: FileAnalyser = { ...apkAnalyser, analyse: async () => Promise.reject(new ScanInputError('lib/apk/db/installed: garbled')) };
  const layer = await tarOf([{ name: 'lib/apk/db/installed', content: 'P:musl\nV:1.2.5-r0\n' }]);
  await refused(t, layer, { analysers: [failing] }, /^lib\/apk\/db\/installed: garbled$/);
});

test('a diffID that does not match the image config is refused', async (t) => {
  const layer = await tarOf([{ name: 'etc/alpine-release', content: '3.20.1\n' }]);
  const wrong = sha256(Buffer.from('something else'));
  await refused(
    t,
    zlib.gzipSync(layer),
    { mediaType: GZIP, expectedDiffId: wrong, layerIndex: 2 },
    new RegExp(`^layer 2: uncompressed content ${sha256(layer)} does not match the image config's diff_id ${wrong}$`),
  );
});

test('a layer whose content is not what its media type says is refused', async (t) => {
  const layer = await tarOf([{ name: 'etc/alpine-release', content: '3.20.1\n' }]);
  await refused(t, layer, { mediaType: GZIP }, /^layer: the media type application\/vnd\.oci\.image\.layer\.v1\.tar\+gzip says gzip, but the content is not gzip \(it starts with bytes 65 74 63 2f\)$/);
  await refused(t, zlib.zstdCompressSync(layer), { mediaType: GZIP }, /says gzip, but the content is not gzip \(it is zstd\)$/);
  await refused(t, zlib.gzipSync(layer), { mediaType: ZSTD }, /says zstd, but the content is not zstd \(it is gzip\)$/);
  await refused(t, zlib.gzipSync(layer), { mediaType: TAR }, /says uncompressed tar, but the content is gzip-compressed$/);
  await refused(t, Buffer.alloc(0), { mediaType: GZIP }, /says gzip, but the layer is empty$/);
  await refused(t, Buffer.from('not a tar archive at all, just some text that goes on'.repeat(20)), { mediaType: TAR }, /^layer is not a valid tar archive \(Invalid tar header/);
  await refused(t, layer, { mediaType: 'application/vnd.oci.image.config.v1+json' }, /^layer: media type "application\/vnd\.oci\.image\.config\.v1\+json" is not a layer format the scanner reads/);
  // gzip magic followed by garbage
  await refused(t, Buffer.concat([Buffer.from([0x1f, 0x8b]), Buffer.alloc(100, 0x41)]), { mediaType: GZIP }, /^layer: the content is not valid gzip data/);
});

test('a truncated layer is refused as ended early, whatever its compression', async (t) => {
  const layer = await tarOf([{ name: 'var/lib/dpkg/status', content: dpkgStatus }, { name: 'opt/data', content: Buffer.alloc(50_000, 3) }]);
  const gz = zlib.gzipSync(layer);
  await refused(t, gz.subarray(0, gz.length - 10), { mediaType: GZIP }, /^layer ended early: the gzip stream is cut off/);
  const zst = zlib.zstdCompressSync(layer);
  await refused(t, zst.subarray(0, zst.length - 10), { mediaType: ZSTD }, /^layer ended early: the zstd stream is cut off/);
  await refused(t, layer.subarray(0, 2048), { mediaType: TAR }, /^layer ended early: the tar archive stops in the middle of an entry$/);
  // A gzip stream cut inside an entry: the tar is short and gzip is short; either is a clear answer.
  const cut = zlib.gzipSync(layer.subarray(0, 2048));
  await refused(t, cut, { mediaType: GZIP }, /^layer ended early: the tar archive stops in the middle of an entry$/);
});

test('a file claiming gigabytes is refused from its header, before any of it is read', async (t) => {
  const bomb = compressed(zeroFilesTar([{ name: 'var/log/lastlog', size: 4 * GiB }]), zlib.createGzip());
  const limits: ScanLimits = { ...defaultScanLimits, maxUncompressedBytes: 64 * MiB };
  await refused(t, bomb, { mediaType: GZIP, limits }, /^layer: var\/log\/lastlog claims to be 4 GiB, more than 64 MiB the scanner reads in one layer \(scan\.limits\.maxUncompressedLayerBytes\); refused$/);
  assert.ok(bomb.destroyed, 'the input is abandoned');
});

test('a layer past maxUncompressedBytes is refused while it streams', async (t) => {
  const files = Array.from({ length: 256 }, (_, i) => ({ name: `zeros/${i}`, size: 16 * MiB }));
  const bomb = compressed(zeroFilesTar(files), zlib.createZstdCompress());
  const limits: ScanLimits = { ...defaultScanLimits, maxUncompressedBytes: 64 * MiB };
  await refused(t, bomb, { mediaType: ZSTD, limits }, /^layer is larger than 64 MiB uncompressed, the most the scanner reads in one layer \(scan\.limits\.maxUncompressedLayerBytes\); refused$/);
});

test('a layer that expands past the compression ratio is refused as a decompression bomb', async (t) => {
  const bomb = compressed(zeroFilesTar([{ name: 'var/log/lastlog', size: 4 * GiB }]), zlib.createGzip());
  const limits: ScanLimits = { ...defaultScanLimits, ratioCheckAfterBytes: 16 * MiB };
  await refused(t, bomb, { mediaType: GZIP, limits, layerIndex: 0 }, /^layer 0 expands more than 200 times \([\d.]+ MiB from [\d.]+ KiB so far, scan\.limits\.maxCompressionRatio\); refused as a decompression bomb$/);

  // The same zeros, below the size where the ratio is checked, are an ordinary layer.
  const small = compressed(zeroFilesTar([{ name: 'var/log/lastlog', size: 15 * MiB }]), zlib.createGzip());
  const { uncompressedBytes } = await analyse(t, small, { mediaType: GZIP, limits });
  assert.ok(uncompressedBytes > 15 * MiB);
});

test('a layer with more entries than maxEntries is refused', async (t) => {
  const layer = await tarOf(Array.from({ length: 11 }, (_, i) => ({ name: `f${i}` })));
  await refused(t, layer, { limits: { ...defaultScanLimits, maxEntries: 10 } }, /^layer has more than 10 entries, the most the scanner reads in one layer \(scan\.limits\.maxLayerEntries\); refused$/);
  await analyse(t, layer, { limits: { ...defaultScanLimits, maxEntries: 11 } });
});

test('an entry with a path longer than maxPathBytes is refused', async (t) => {
  const layer = await tarOf([{ name: `${'a/'.repeat(40)}file` }]);
  await refused(t, layer, { limits: { ...defaultScanLimits, maxPathBytes: 64 } }, /^layer has an entry whose path is 84 bytes long, more than 64 \(maxPathBytes\)/);
});

test('an abort stops the walk', { timeout: 60_000 }, async (t) => {
  const dir = await tempDir(t);
  const never = new Readable({ read() {} });
  never.push(zlib.gzipSync(await tarOf([{ name: 'etc/alpine-release', content: '3.20.1\n' }])).subarray(0, 20));
  const controller = new AbortController();
  const pending = analyseLayer(never, { mediaType: GZIP, analysers: textAnalysers, limits: defaultScanLimits, tempDir: dir, signal: controller.signal });
  controller.abort();
  await assert.rejects(pending, { name: 'AbortError' });
  assert.deepEqual(await readdir(dir), []);
});

test('an abort while an analyser runs stops the walk before the next entry', { timeout: 60_000 }, async (t) => {
  const controller = new AbortController();
  const seen: string[] = [];
  const aborting: FileAnalyser = {
    ...npmAnalyser,
    async analyse(entry, input, context) {
      seen.push(entry.path);
      controller.abort();
      assert.equal(context.signal.aborted, true, 'the analyser is told');
      return npmAnalyser.analyse(entry, input, context);
    },
  };
  const layer = await tarOf([
    { name: 'node_modules/a/package.json', content: '{"name":"a","version":"1.0.0"}' },
    { name: 'node_modules/b/package.json', content: '{"name":"b","version":"1.0.0"}' },
  ]);
  const dir = await tempDir(t);
  await assert.rejects(
    analyseLayer(Readable.from([layer]), { mediaType: TAR, analysers: [aborting], limits: defaultScanLimits, tempDir: dir, signal: controller.signal }),
    { name: 'AbortError' },
  );
  assert.deepEqual(seen, ['node_modules/a/package.json']);
  assert.deepEqual(await readdir(dir), []);
});
