import { createHash, randomBytes } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { copyFile, link, mkdir, mkdtemp, open, readFile, readdir, rename, rm, stat, unlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { PassThrough, Readable, Transform, type TransformCallback } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { execFile, spawn } from 'node:child_process';
import { promisify } from 'node:util';
import { createGzip, createZstdCompress, deflateSync } from 'node:zlib';
import * as tarStream from 'tar-stream';
import yazl from 'yazl';
import { MT } from './oci.ts';
import { run, type ToolSandbox } from './tools.ts';

/**
 * Real images for the scanner's tests, built in code into OCI image layouts (image-spec
 * image-layout.md) that skopeo pushes as `oci:DIR:TAG`. Unlike layout.ts, every layer is
 * streamed to a file (a debootstrap rootfs is a few hundred MiB, a hostile layer expands to
 * GiBs), hashed on the way: the digest over the compressed bytes, the diff_id over the tar.
 *
 * Each builder returns what the image really holds, read back from what was built (the dpkg
 * status debootstrap wrote, the rpm database rpm wrote, the Go toolchain's version), so the
 * tests can predict exact findings without hard-coding anything the machine decides.
 */

const execFileAsync = promisify(execFile);

export const MT_ZSTD_LAYER = 'application/vnd.oci.image.layer.v1.tar+zstd';
export const MT_TAR_LAYER = 'application/vnd.oci.image.layer.v1.tar';

/** Where builders keep what is slow to make (the debootstrap layer), shared by test processes. */
export const cacheRoot = path.join(tmpdir(), 'berth-test-cache');

export type Compression = 'gzip' | 'zstd' | 'none';

export interface LayerBlob {
  /** sha256 of the bytes as stored (compressed). */
  digest: string;
  size: number;
  /** sha256 of the uncompressed tar. */
  diffId: string;
  mediaType: string;
  /** The blob's file inside the layout. */
  file: string;
}

export interface Platform {
  os: string;
  architecture: string;
  variant?: string;
}

/** A package the image holds, as the scanner should report it (src/scan/types.ts Package, trimmed). */
export interface ImagePackage {
  ecosystem: 'deb' | 'rpm' | 'apk' | 'npm' | 'pypi' | 'go' | 'maven' | 'cargo';
  name: string;
  version: string;
  sourceName?: string;
  sourceVersion?: string;
  /** The file that names it, relative to the root. */
  path: string;
}

export interface ScanImage {
  /** The OCI layout directory; push `oci:${dir}:${tag}`. */
  dir: string;
  tag: string;
  /** Manifest digest. */
  digest: string;
  mediaType: string;
  manifestSize: number;
  platform: Platform;
  layers: LayerBlob[];
  config: { digest: string; size: number };
  os?: { id: string; versionId: string };
  /** What the merged image holds (after whiteouts). */
  packages: ImagePackage[];
}

// --- layers ---------------------------------------------------------------------------------

function hashing(hash: ReturnType<typeof createHash>, count: { bytes: number }): Transform {
  return new Transform({
    transform(chunk: Buffer, _enc, cb: TransformCallback) {
      hash.update(chunk);
      count.bytes += chunk.length;
      cb(null, chunk);
    },
  });
}

const mediaTypes: Record<Compression, string> = { gzip: MT.ociLayer, zstd: MT_ZSTD_LAYER, none: MT_TAR_LAYER };

/**
 * Streams a tar into the layout's blob directory, compressed, hashing the tar (diff_id) and
 * the stored bytes (digest) as they pass; nothing is held in memory.
 */
export async function writeLayerBlob(dir: string, tar: Readable, compression: Compression = 'gzip'): Promise<LayerBlob> {
  const blobDir = path.join(dir, 'blobs', 'sha256');
  await mkdir(blobDir, { recursive: true });
  const tmp = path.join(blobDir, `.tmp-${randomBytes(6).toString('hex')}`);
  const tarHash = createHash('sha256');
  const blobHash = createHash('sha256');
  const tarCount = { bytes: 0 };
  const blobCount = { bytes: 0 };
  const compressor = compression === 'gzip' ? createGzip({ level: 6 }) : compression === 'zstd' ? createZstdCompress() : new PassThrough();
  await pipeline(tar, hashing(tarHash, tarCount), compressor, hashing(blobHash, blobCount), createWriteStream(tmp));
  const hex = blobHash.digest('hex');
  const file = path.join(blobDir, hex);
  await rename(tmp, file);
  return { digest: `sha256:${hex}`, size: blobCount.bytes, diffId: `sha256:${tarHash.digest('hex')}`, mediaType: mediaTypes[compression], file };
}

/** One tar entry; a file's content is bytes or a file on disk (streamed). */
export interface ScanEntry {
  name: string;
  type?: 'file' | 'dir' | 'symlink' | 'link';
  content?: string | Buffer;
  /** Stream the content from this file instead. */
  fromFile?: string;
  linkname?: string;
  mode?: number;
}

const epoch = new Date('2024-01-01T00:00:00Z');

/** tar-stream's streams are streamx streams, which node's pipeline() takes as they are. */
function asReadable(pack: tarStream.Pack): Readable {
  return pack as unknown as Readable;
}

/** A tar of the entries (tar-stream's ustar, pax for long names), as a stream. */
export function tarOf(entries: ScanEntry[]): Readable {
  const pack = tarStream.pack();
  void (async () => {
    try {
      for (const e of entries) {
        const type = e.type ?? 'file';
        const header = { name: e.name, mtime: epoch, uid: 0, gid: 0, uname: 'root', gname: 'root' };
        if (type === 'dir') await entry(pack, { ...header, type: 'directory', mode: e.mode ?? 0o755 });
        else if (type === 'symlink' || type === 'link') await entry(pack, { ...header, type, linkname: e.linkname!, mode: e.mode ?? 0o777 });
        else if (e.fromFile !== undefined) {
          const size = (await stat(e.fromFile)).size;
          await new Promise<void>((resolve, reject) => {
            const sink = pack.entry({ ...header, type: 'file', size, mode: e.mode ?? 0o644 }, (err) => (err ? reject(err) : resolve()));
            createReadStream(e.fromFile!).on('error', reject).pipe(sink);
          });
        } else await entry(pack, { ...header, type: 'file', mode: e.mode ?? 0o644 }, Buffer.from(e.content ?? ''));
      }
      pack.finalize();
    } catch (err) {
      pack.destroy(err as Error);
    }
  })();
  return asReadable(pack);
}

type TarHeader = Parameters<tarStream.Pack['entry']>[0];

function entry(pack: tarStream.Pack, header: TarHeader, content?: Buffer): Promise<void> {
  return new Promise((resolve, reject) => {
    const cb = (err?: Error | null) => (err ? reject(err) : resolve());
    if (content === undefined) pack.entry(header, cb);
    else pack.entry(header, content, cb);
  });
}

/** The directories each entry needs, as entries of their own, before the entries (as real layers have them). */
export function withParents(entries: ScanEntry[]): ScanEntry[] {
  const seen = new Set<string>();
  const out: ScanEntry[] = [];
  for (const e of entries) {
    const parts = e.name.split('/');
    for (let i = 1; i < parts.length; i++) {
      const d = parts.slice(0, i).join('/');
      if (!seen.has(d)) {
        seen.add(d);
        out.push({ name: d, type: 'dir' });
      }
    }
    if (e.type === 'dir') seen.add(e.name);
    out.push(e);
  }
  return out;
}

// --- images and layouts ---------------------------------------------------------------------

async function putBlob(dir: string, bytes: Buffer): Promise<{ digest: string; size: number }> {
  const hex = createHash('sha256').update(bytes).digest('hex');
  const blobDir = path.join(dir, 'blobs', 'sha256');
  await mkdir(blobDir, { recursive: true });
  await writeFile(path.join(blobDir, hex), bytes);
  return { digest: `sha256:${hex}`, size: bytes.length };
}

/** Adds (or replaces) a tagged descriptor in the layout's index.json. */
async function tagInLayout(dir: string, tag: string, descriptor: { mediaType: string; digest: string; size: number }): Promise<void> {
  await writeFile(path.join(dir, 'oci-layout'), JSON.stringify({ imageLayoutVersion: '1.0.0' }));
  const indexFile = path.join(dir, 'index.json');
  let manifests: Array<{ annotations?: Record<string, string> }> = [];
  try {
    manifests = (JSON.parse(await readFile(indexFile, 'utf8')) as { manifests: typeof manifests }).manifests;
  } catch {
    // a new layout
  }
  const refName = 'org.opencontainers.image.ref.name';
  manifests = manifests.filter((m) => m.annotations?.[refName] !== tag);
  manifests.push({ ...descriptor, annotations: { [refName]: tag } });
  await writeFile(indexFile, JSON.stringify({ schemaVersion: 2, mediaType: MT.ociIndex, manifests }));
}

export interface AssembleOptions {
  tag?: string;
  platform?: Platform;
  labels?: Record<string, string>;
  /** One line per layer, for the config's history. */
  createdBy?: string[];
}

/**
 * Writes the config and manifest for the layers (already in the layout) and tags the manifest.
 * The config carries a random label, so every image built is a new manifest digest.
 */
export async function assembleImage(dir: string, layers: LayerBlob[], options: AssembleOptions = {}): Promise<Omit<ScanImage, 'packages'>> {
  const platform = options.platform ?? { os: 'linux', architecture: 'amd64' };
  const tag = options.tag ?? 'latest';
  const created = epoch.toISOString();
  const configBytes = Buffer.from(
    JSON.stringify({
      created,
      architecture: platform.architecture,
      ...(platform.variant ? { variant: platform.variant } : {}),
      os: platform.os,
      config: {
        Env: ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'],
        Cmd: ['/bin/sh'],
        Labels: { 'test.nonce': randomBytes(8).toString('hex'), ...options.labels },
      },
      rootfs: { type: 'layers', diff_ids: layers.map((l) => l.diffId) },
      history: layers.map((_, i) => ({ created, created_by: options.createdBy?.[i] ?? 'berth test/support/scan-images.ts' })),
    }),
  );
  const config = await putBlob(dir, configBytes);
  const manifestBytes = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: MT.ociManifest,
      config: { mediaType: MT.ociConfig, ...config },
      layers: layers.map((l) => ({ mediaType: l.mediaType, digest: l.digest, size: l.size })),
    }),
  );
  const manifest = await putBlob(dir, manifestBytes);
  await tagInLayout(dir, tag, { mediaType: MT.ociManifest, ...manifest });
  return { dir, tag, digest: manifest.digest, mediaType: MT.ociManifest, manifestSize: manifest.size, platform, layers, config };
}

/** An image of layers given as entry lists. */
async function imageOf(dir: string, layers: Array<{ entries: ScanEntry[]; compression?: Compression }>, options: AssembleOptions): Promise<Omit<ScanImage, 'packages'>> {
  const blobs: LayerBlob[] = [];
  for (const l of layers) blobs.push(await writeLayerBlob(dir, tarOf(l.entries), l.compression));
  return assembleImage(dir, blobs, options);
}

export interface IndexImage {
  dir: string;
  tag: string;
  digest: string;
  mediaType: string;
  images: ScanImage[];
}

/**
 * An OCI index over images already written to the same layout (build each with `{ dir }` of
 * the index and its own platform), tagged `tag`.
 */
export async function multiArchIndex(dir: string, images: ScanImage[], tag = 'multi'): Promise<IndexImage> {
  for (const img of images) if (img.dir !== dir) throw new Error(`image ${img.digest} is in ${img.dir}, not ${dir}`);
  const bytes = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: MT.ociIndex,
      manifests: images.map((img) => ({ mediaType: img.mediaType, digest: img.digest, size: img.manifestSize, platform: img.platform })),
    }),
  );
  const index = await putBlob(dir, bytes);
  await tagInLayout(dir, tag, { mediaType: MT.ociIndex, ...index });
  return { dir, tag, digest: index.digest, mediaType: MT.ociIndex, images };
}

/** Pushes a layout's tag with skopeo (every platform of an index), digests preserved. */
export async function pushLayout(tools: ToolSandbox, host: string, image: { dir: string; tag: string }, repository: string, tag = image.tag): Promise<void> {
  await tools.skopeo(['copy', '--quiet', '--all', '--preserve-digests', '--dest-tls-verify=false', `oci:${image.dir}:${image.tag}`, `docker://${host}/${repository}:${tag}`], { timeoutMs: 600_000 });
}

// --- os-release -----------------------------------------------------------------------------

function osRelease(fields: Record<string, string>): string {
  return Object.entries(fields).map(([k, v]) => `${k}=${/^[A-Za-z0-9._-]+$/.test(v) ? v : JSON.stringify(v)}`).join('\n') + '\n';
}

/** The fields of an os-release file. */
export function parseOsRelease(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of text.split('\n')) {
    const m = /^([A-Z0-9_]+)=(.*)$/.exec(line.trim());
    if (m) out[m[1]!] = m[2]!.replace(/^"(.*)"$/, '$1').replace(/^'(.*)'$/, '$1');
  }
  return out;
}

// --- busybox --------------------------------------------------------------------------------

const BUSYBOX = '/bin/busybox';

/** Debian's busybox-static, which the busybox and Alpine-style images carry as content. */
async function busyboxEntries(): Promise<ScanEntry[]> {
  const applets = (await run(BUSYBOX, ['--list-full'])).stdout.split('\n').filter(Boolean).sort();
  const entries: ScanEntry[] = [{ name: 'bin/busybox', fromFile: BUSYBOX, mode: 0o755 }];
  for (const applet of applets) {
    if (applet === 'bin/busybox') continue;
    entries.push({ name: applet, type: 'symlink', linkname: '/bin/busybox' });
  }
  return withParents(entries);
}

/** /bin/busybox and its applet links: no OS release, no package database, so no packages. */
export async function busyboxImage(dir: string, options: AssembleOptions = {}): Promise<ScanImage> {
  const image = await imageOf(dir, [{ entries: [...(await busyboxEntries()), { name: 'tmp', type: 'dir', mode: 0o1777 }] }], { tag: 'busybox', ...options });
  return { ...image, packages: [] };
}

// --- Alpine ---------------------------------------------------------------------------------

interface ApkPackage {
  name: string;
  version: string;
  origin: string;
  description: string;
}

/** Real Alpine 3.20 packages at versions Alpine shipped (apk's installed database, apk-tools' format). */
export const ALPINE_PACKAGES: readonly ApkPackage[] = [
  { name: 'musl', version: '1.2.5-r0', origin: 'musl', description: 'the musl c library (libc) implementation' },
  { name: 'busybox', version: '1.36.1-r29', origin: 'busybox', description: 'Size optimized toolbox of many common UNIX utilities' },
  { name: 'libcrypto3', version: '3.3.1-r0', origin: 'openssl', description: 'Crypto library from openssl' },
  { name: 'zlib', version: '1.3.1-r1', origin: 'zlib', description: 'A compression/decompression Library' },
];

function apkInstalled(packages: readonly ApkPackage[]): string {
  return packages
    .map((p) =>
      [
        `C:Q1${createHash('sha1').update(p.name + p.version).digest('base64')}`,
        `P:${p.name}`,
        `V:${p.version}`,
        'A:x86_64',
        'S:100000',
        'I:200000',
        `T:${p.description}`,
        'U:https://alpinelinux.org',
        'L:MIT',
        `o:${p.origin}`,
        'm:Natanael Copa <ncopa@alpinelinux.org>',
        't:1717000000',
        `c:${createHash('sha1').update(p.origin).digest('hex')}`,
        'F:usr/share/doc',
        '',
        '',
      ].join('\n'),
    )
    .join('');
}

/** An Alpine 3.20.3 rootfs in miniature: os-release, alpine-release, apk's database, busybox. */
export async function alpineStyleImage(dir: string, options: AssembleOptions & { packages?: readonly ApkPackage[] } = {}): Promise<ScanImage> {
  const packages = options.packages ?? ALPINE_PACKAGES;
  const entries: ScanEntry[] = withParents([
    ...(await busyboxEntries()),
    { name: 'etc/alpine-release', content: '3.20.3\n' },
    {
      name: 'etc/os-release',
      content: osRelease({ NAME: 'Alpine Linux', ID: 'alpine', VERSION_ID: '3.20.3', PRETTY_NAME: 'Alpine Linux v3.20', HOME_URL: 'https://alpinelinux.org/' }),
    },
    { name: 'lib/apk/db/installed', content: apkInstalled(packages) },
  ]);
  const image = await imageOf(dir, [{ entries }], { tag: 'alpine', ...options });
  return {
    ...image,
    os: { id: 'alpine', versionId: '3.20.3' },
    packages: packages.map((p) => ({ ecosystem: 'apk', name: p.name, version: p.version, sourceName: p.origin, path: 'lib/apk/db/installed' })),
  };
}

// --- rpm ------------------------------------------------------------------------------------

interface RpmSpec {
  /** The spec's Name (the source package). */
  source: string;
  /** The binary package built: the source name, or `<source>-<sub>` with `sub` set. */
  sub?: string;
  epoch?: number;
  version: string;
  release: string;
}

/** Rocky Linux 9.3-like packages: one a subpackage of another source, one with an Epoch. */
export const ROCKY_PACKAGES: readonly RpmSpec[] = [
  { source: 'openssl', sub: 'libs', epoch: 1, version: '3.0.7', release: '24.el9' },
  { source: 'bash', version: '5.1.8', release: '6.el9_1' },
  { source: 'zlib', version: '1.2.11', release: '40.el9' },
];

function specFile(p: RpmSpec): string {
  const lines = [
    `Name: ${p.source}`,
    ...(p.epoch !== undefined ? [`Epoch: ${p.epoch}`] : []),
    `Version: ${p.version}`,
    `Release: ${p.release}`,
    `Summary: ${p.source} for Berth's scanner tests`,
    'License: MIT',
    'BuildArch: noarch',
    '%description',
    'A package that installs nothing, for its rpm database entry.',
  ];
  if (p.sub) lines.push(`%package ${p.sub}`, `Summary: ${p.source}-${p.sub} for Berth's scanner tests`, `%description ${p.sub}`, 'Nothing.', `%files ${p.sub}`);
  else lines.push('%files');
  return `${lines.join('\n')}\n`;
}

/**
 * A Rocky Linux 9.3 rootfs with an rpm database (SQLite, as RHEL 9 and its rebuilds keep it)
 * written by Debian's rpm from packages rpmbuild makes here. The packages are read back from
 * the database with `rpm -qa`.
 */
export async function rpmImage(dir: string, options: AssembleOptions & { packages?: readonly RpmSpec[] } = {}): Promise<ScanImage> {
  const specs = options.packages ?? ROCKY_PACKAGES;
  const work = await mkdtemp(path.join(tmpdir(), 'berth-rpm-'));
  try {
    const top = path.join(work, 'top');
    const root = path.join(work, 'root');
    await mkdir(root);
    const rpms: string[] = [];
    for (const spec of specs) {
      const file = path.join(work, `${spec.source}.spec`);
      await writeFile(file, specFile(spec));
      await run('rpmbuild', ['--quiet', '--define', `_topdir ${top}`, '--define', '_build_id_links none', '-bb', file]);
      const name = spec.sub ? `${spec.source}-${spec.sub}` : spec.source;
      rpms.push(path.join(top, 'RPMS', 'noarch', `${name}-${spec.version}-${spec.release}.noarch.rpm`));
    }
    const db = ['--root', root, '--define', '_dbpath /var/lib/rpm', '--define', '_db_backend sqlite'];
    await run('rpm', [...db, '--initdb']);
    await run('rpm', [...db, '-i', '--nodeps', '--justdb', '--nosignature', ...rpms]);
    const query = await run('rpm', [...db, '-qa', '--qf', '%{NAME}|%{EPOCHNUM}|%{VERSION}|%{RELEASE}|%{ARCH}|%{SOURCERPM}\\n']);
    const dbFile = path.join(root, 'var/lib/rpm/rpmdb.sqlite');
    const packages: ImagePackage[] = query.stdout
      .split('\n')
      .filter(Boolean)
      .map((line) => {
        const [name, epochNum, version, release, , sourceRpm] = line.split('|') as [string, string, string, string, string, string];
        const sourceName = sourceRpm.replace(/-[^-]+-[^-]+\.src\.rpm$/, '');
        return { ecosystem: 'rpm' as const, name, version: `${epochNum !== '0' ? `${epochNum}:` : ''}${version}-${release}`, sourceName, path: 'var/lib/rpm/rpmdb.sqlite' };
      })
      .sort((a, b) => a.name.localeCompare(b.name));
    const osFields = {
      NAME: 'Rocky Linux',
      VERSION: '9.3 (Blue Onyx)',
      ID: 'rocky',
      ID_LIKE: 'rhel centos fedora',
      VERSION_ID: '9.3',
      PLATFORM_ID: 'platform:el9',
      PRETTY_NAME: 'Rocky Linux 9.3 (Blue Onyx)',
      CPE_NAME: 'cpe:/o:rocky:rocky:9::baseos',
    };
    // Only the database file itself: rpm left its write-ahead log empty and the -shm is scratch.
    const entries = withParents([
      { name: 'etc/os-release', content: osRelease(osFields) },
      { name: 'etc/rocky-release', content: 'Rocky Linux release 9.3 (Blue Onyx)\n' },
      { name: 'var/lib/rpm/rpmdb.sqlite', fromFile: dbFile },
      { name: 'bin/busybox', fromFile: BUSYBOX, mode: 0o755 },
    ]);
    const image = await imageOf(dir, [{ entries }], { tag: 'rocky', ...options });
    return { ...image, os: { id: 'rocky', versionId: '9.3' }, packages };
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

// --- npm ------------------------------------------------------------------------------------

const NODE_APP = 'usr/src/app';

/** The node_modules of the app: known-vulnerable versions, one scoped, one nested. */
export const NPM_PACKAGES: ReadonlyArray<{ name: string; version: string; path: string }> = [
  { name: 'lodash', version: '4.17.20', path: `${NODE_APP}/node_modules/lodash/package.json` },
  { name: 'minimist', version: '1.2.5', path: `${NODE_APP}/node_modules/minimist/package.json` },
  { name: '@babel/traverse', version: '7.22.0', path: `${NODE_APP}/node_modules/@babel/traverse/package.json` },
  { name: 'express', version: '4.17.1', path: `${NODE_APP}/node_modules/express/package.json` },
  { name: 'qs', version: '6.7.0', path: `${NODE_APP}/node_modules/express/node_modules/qs/package.json` },
];

/**
 * A node app in two layers: the first installs node_modules, the second deletes minimist with
 * a whiteout (`.wh.minimist`, image-spec layer.md), so its findings must not show. `before`
 * lists what the first layer alone holds.
 */
export async function nodeAppImage(dir: string, options: AssembleOptions & { withoutWhiteout?: boolean } = {}): Promise<ScanImage & { before: ImagePackage[]; removed: string }> {
  const pkgJson = (name: string, version: string, extra: Record<string, unknown> = {}) =>
    `${JSON.stringify({ name, version, description: `${name} as npm published it`, license: 'MIT', main: 'index.js', ...extra }, null, 2)}\n`;
  const entries: ScanEntry[] = [
    { name: `${NODE_APP}/package.json`, content: pkgJson('berth-scan-app', '1.0.0', { private: true, dependencies: { lodash: '4.17.20', minimist: '1.2.5', express: '4.17.1', '@babel/traverse': '7.22.0' } }) },
    { name: `${NODE_APP}/server.js`, content: "require('express')().listen(3000);\n" },
  ];
  for (const p of NPM_PACKAGES) {
    entries.push({ name: p.path, content: pkgJson(p.name, p.version) });
    entries.push({ name: p.path.replace(/package\.json$/, 'index.js'), content: `module.exports = {}; // ${p.name}\n` });
  }
  const removed = 'minimist';
  const layers = [{ entries: withParents(entries) }];
  if (!options.withoutWhiteout) layers.push({ entries: withParents([{ name: `${NODE_APP}/node_modules/.wh.${removed}`, content: '' }]) });
  const image = await imageOf(dir, layers, { tag: 'node', createdBy: ['COPY node_modules', `RUN npm uninstall ${removed}`], ...options });
  const before = NPM_PACKAGES.map((p) => ({ ecosystem: 'npm' as const, name: p.name, version: p.version, path: p.path }));
  return { ...image, before, removed, packages: options.withoutWhiteout ? before : before.filter((p) => p.name !== removed) };
}

// --- Python ---------------------------------------------------------------------------------

const SITE = 'usr/lib/python3.11/site-packages';

/**
 * site-packages with three wheels' dist-info and one egg-info; its layer is zstd-compressed.
 * Names are reported normalised (PEP 503: lower case, runs of -_. as -), as OSV's PyPI matching does.
 */
export async function pythonImage(dir: string, options: AssembleOptions = {}): Promise<ScanImage> {
  const dists = [
    { name: 'requests', version: '2.25.0', kind: 'dist-info' },
    { name: 'urllib3', version: '1.26.4', kind: 'dist-info' },
    { name: 'PyYAML', version: '5.3.1', kind: 'dist-info' },
    { name: 'Jinja2', version: '2.10', kind: 'egg-info' },
  ] as const;
  const entries: ScanEntry[] = [];
  const packages: ImagePackage[] = [];
  for (const d of dists) {
    const meta = `Metadata-Version: 2.1\nName: ${d.name}\nVersion: ${d.version}\nSummary: ${d.name} as PyPI published it\nLicense: MIT\n\n`;
    const file = d.kind === 'dist-info' ? `${SITE}/${d.name}-${d.version}.dist-info/METADATA` : `${SITE}/${d.name}-${d.version}-py3.11.egg-info/PKG-INFO`;
    entries.push({ name: file, content: meta });
    if (d.kind === 'dist-info') entries.push({ name: file.replace(/METADATA$/, 'RECORD'), content: '' });
    entries.push({ name: `${SITE}/${d.name.toLowerCase()}/__init__.py`, content: '' });
    packages.push({ ecosystem: 'pypi', name: d.name.toLowerCase().replace(/[-_.]+/g, '-'), version: d.version, path: file });
  }
  entries.push({ name: 'etc/os-release', content: osRelease({ NAME: 'Debian GNU/Linux', ID: 'debian', VERSION_ID: '12', VERSION_CODENAME: 'bookworm' }) });
  const image = await imageOf(dir, [{ entries: withParents(entries), compression: 'zstd' }], { tag: 'python', ...options });
  return { ...image, os: { id: 'debian', versionId: '12' }, packages };
}

// --- Go -------------------------------------------------------------------------------------

/** The dependency the Go binary records, at a version with one real Go advisory fixed above it and one below. */
export const GO_DEP = { module: 'golang.org/x/text', version: 'v0.3.5' };
const GO_DEP_PACKAGES = ['internal/language', 'internal/language/compact', 'internal/tag', 'language'];

/**
 * A Go binary built here with Debian's Go, offline: golang.org/x/text from Debian's
 * golang-golang-x-text-dev (/usr/share/gocode) is vendored, and vendor/modules.txt names it at
 * GO_DEP.version, so the build info records exactly that module version (a directory `replace`
 * would record the replacement path with no version). Stdlib is the toolchain's version.
 */
export async function goBinaryImage(dir: string, options: AssembleOptions = {}): Promise<ScanImage & { goVersion: string }> {
  const work = await mkdtemp(path.join(tmpdir(), 'berth-go-'));
  try {
    const src = path.join(work, 'app');
    const vendored = path.join(src, 'vendor', GO_DEP.module);
    for (const pkg of GO_DEP_PACKAGES) {
      const from = path.join('/usr/share/gocode/src', GO_DEP.module, pkg);
      await mkdir(path.join(vendored, pkg), { recursive: true });
      for (const f of await readdir(from, { withFileTypes: true })) {
        if (f.isFile() && f.name.endsWith('.go') && !f.name.endsWith('_test.go')) await copyFile(path.join(from, f.name), path.join(vendored, pkg, f.name));
      }
    }
    await writeFile(path.join(src, 'vendor', 'modules.txt'), `# ${GO_DEP.module} ${GO_DEP.version}\n## explicit\n${GO_DEP_PACKAGES.map((p) => `${GO_DEP.module}/${p}`).join('\n')}\n`);
    await writeFile(path.join(src, 'go.mod'), `module example.com/berth/scan-app\n\ngo 1.17\n\nrequire ${GO_DEP.module} ${GO_DEP.version}\n`);
    await writeFile(
      path.join(src, 'main.go'),
      'package main\n\nimport (\n\t"fmt"\n\t"os"\n\n\t"golang.org/x/text/language"\n)\n\nfunc main() {\n\tfmt.Println(language.Make(os.Getenv("LANG")))\n}\n',
    );
    const goCache = path.join(cacheRoot, 'gocache');
    await mkdir(goCache, { recursive: true });
    const env = {
      ...process.env,
      GOPROXY: 'off',
      GOFLAGS: '-mod=vendor',
      GOTOOLCHAIN: 'local',
      GOPATH: path.join(work, 'gopath'),
      GOCACHE: goCache,
      CGO_ENABLED: '0',
      GOOS: 'linux',
      GOARCH: 'amd64',
    };
    const binary = path.join(work, 'app-bin');
    await execFileAsync('go', ['build', '-trimpath', '-o', binary, '.'], { cwd: src, env, timeout: 600_000 });
    const goVersion = (await run('go', ['env', 'GOVERSION'], { env })).stdout.trim().replace(/^go/, '');
    const entries = withParents([
      { name: 'usr/local/bin/app', fromFile: binary, mode: 0o755 },
      { name: 'etc/os-release', content: osRelease({ NAME: 'Distroless', ID: 'debian', VERSION_ID: '12', VERSION_CODENAME: 'bookworm' }) },
    ]);
    const image = await imageOf(dir, [{ entries }], { tag: 'go', ...options });
    return {
      ...image,
      goVersion,
      packages: [
        { ecosystem: 'go', name: 'stdlib', version: goVersion, path: 'usr/local/bin/app' },
        // Module versions as Go writes them, with the "v" (src/scan/analyse/go.ts).
        { ecosystem: 'go', name: GO_DEP.module, version: GO_DEP.version, path: 'usr/local/bin/app' },
      ],
    };
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

// --- Java -----------------------------------------------------------------------------------

function zipBuffer(files: Array<{ name: string; content: Buffer | string; compress?: boolean }>): Promise<Buffer> {
  const zip = new yazl.ZipFile();
  for (const f of files) zip.addBuffer(Buffer.from(f.content), f.name, { mtime: epoch, compress: f.compress ?? true });
  zip.end();
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    zip.outputStream.on('data', (c: Buffer) => chunks.push(c));
    zip.outputStream.on('error', reject);
    zip.outputStream.on('end', () => resolve(Buffer.concat(chunks)));
  });
}

function pomProperties(groupId: string, artifactId: string, version: string): string {
  return `#Created by Apache Maven 3.8.1\ngroupId=${groupId}\nartifactId=${artifactId}\nversion=${version}\n`;
}

/**
 * usr/app/app.jar: log4j-core 2.14.1's Maven metadata, and a nested lib/jackson-databind-2.9.10.jar
 * (stored, as Spring Boot nests jars) with its own. Package names are OSV's Maven names, group:artifact.
 */
export async function jarImage(dir: string, options: AssembleOptions = {}): Promise<ScanImage> {
  const manifest = 'Manifest-Version: 1.0\nCreated-By: Berth tests\nMain-Class: example.App\n';
  const jackson = await zipBuffer([
    { name: 'META-INF/MANIFEST.MF', content: 'Manifest-Version: 1.0\nBundle-SymbolicName: com.fasterxml.jackson.core.jackson-databind\nBundle-Version: 2.9.10\n' },
    { name: 'META-INF/maven/com.fasterxml.jackson.core/jackson-databind/pom.properties', content: pomProperties('com.fasterxml.jackson.core', 'jackson-databind', '2.9.10') },
    { name: 'com/fasterxml/jackson/databind/ObjectMapper.class', content: Buffer.from('cafebabe0000003400', 'hex') },
  ]);
  const app = await zipBuffer([
    { name: 'META-INF/MANIFEST.MF', content: manifest },
    { name: 'META-INF/maven/org.apache.logging.log4j/log4j-core/pom.properties', content: pomProperties('org.apache.logging.log4j', 'log4j-core', '2.14.1') },
    { name: 'org/apache/logging/log4j/core/Logger.class', content: Buffer.from('cafebabe0000003400', 'hex') },
    { name: 'example/App.class', content: Buffer.from('cafebabe0000003700', 'hex') },
    { name: 'lib/jackson-databind-2.9.10.jar', content: jackson, compress: false },
  ]);
  const jarPath = 'usr/app/app.jar';
  const image = await imageOf(dir, [{ entries: withParents([{ name: jarPath, content: app }]) }], { tag: 'jar', ...options });
  return {
    ...image,
    packages: [
      { ecosystem: 'maven', name: 'org.apache.logging.log4j:log4j-core', version: '2.14.1', path: jarPath },
      { ecosystem: 'maven', name: 'com.fasterxml.jackson.core:jackson-databind', version: '2.9.10', path: `${jarPath}!lib/jackson-databind-2.9.10.jar` },
    ],
  };
}

// --- Rust -----------------------------------------------------------------------------------

export const CARGO_LOCK_PACKAGES = [
  { name: 'smallvec', version: '1.6.0' },
  { name: 'time', version: '0.1.43' },
] as const;
export const AUDITABLE_PACKAGES = [{ name: 'regex', version: '1.5.4' }] as const;

/**
 * A Rust app's Cargo.lock, and an ELF (built with cc) carrying cargo-auditable's `.dep-v0`
 * section: zlib-compressed JSON of the dependency tree, as cargo-auditable embeds it.
 */
export async function rustImage(dir: string, options: AssembleOptions = {}): Promise<ScanImage> {
  const work = await mkdtemp(path.join(tmpdir(), 'berth-rust-'));
  try {
    const lock = [
      '# This file is automatically @generated by Cargo.',
      '# It is not intended for manual editing.',
      'version = 3',
      '',
      '[[package]]',
      'name = "rust-app"',
      'version = "0.1.0"',
      'dependencies = [',
      ...CARGO_LOCK_PACKAGES.map((p) => ` "${p.name}",`),
      ']',
      ...CARGO_LOCK_PACKAGES.flatMap((p) => [
        '',
        '[[package]]',
        `name = "${p.name}"`,
        `version = "${p.version}"`,
        'source = "registry+https://github.com/rust-lang/crates.io-index"',
        `checksum = "${createHash('sha256').update(p.name + p.version).digest('hex')}"`,
      ]),
      '',
    ].join('\n');
    const c = path.join(work, 'main.c');
    await writeFile(c, '#include <stdio.h>\nint main(void) { puts("rust in spirit"); return 0; }\n');
    const bin = path.join(work, 'auditable');
    await run('cc', ['-O1', '-o', bin, c]);
    const deps = {
      packages: [
        { name: 'auditable-app', version: '0.1.0', source: 'local', kind: 'runtime', dependencies: [1], root: true },
        ...AUDITABLE_PACKAGES.map((p) => ({ name: p.name, version: p.version, source: 'crates.io', kind: 'runtime' })),
      ],
    };
    const section = path.join(work, 'dep-v0');
    await writeFile(section, deflateSync(JSON.stringify(deps)));
    await run('objcopy', ['--add-section', `.dep-v0=${section}`, '--set-section-flags', '.dep-v0=noload,readonly', bin]);
    const entries = withParents([
      { name: 'usr/src/rust-app/Cargo.lock', content: lock },
      { name: 'usr/local/bin/auditable-app', fromFile: bin, mode: 0o755 },
    ]);
    const image = await imageOf(dir, [{ entries }], { tag: 'rust', ...options });
    return {
      ...image,
      packages: [
        ...CARGO_LOCK_PACKAGES.map((p) => ({ ecosystem: 'cargo' as const, name: p.name, version: p.version, path: 'usr/src/rust-app/Cargo.lock' })),
        ...AUDITABLE_PACKAGES.map((p) => ({ ecosystem: 'cargo' as const, name: p.name, version: p.version, path: 'usr/local/bin/auditable-app' })),
      ],
    };
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

// --- debootstrap ----------------------------------------------------------------------------

interface DebootstrapCache {
  digest: string;
  size: number;
  diffId: string;
  osRelease: Record<string, string>;
}

/** Binary packages from a dpkg status file, installed ones only, with their source and its version. */
export function parseDpkgStatus(text: string, file = 'var/lib/dpkg/status'): ImagePackage[] {
  const out: ImagePackage[] = [];
  for (const para of text.split(/\n\s*\n/)) {
    const fields: Record<string, string> = {};
    for (const line of para.split('\n')) {
      const m = /^([A-Za-z0-9-]+):\s*(.*)$/.exec(line);
      if (m) fields[m[1]!] = m[2]!;
    }
    const name = fields['Package'];
    const version = fields['Version'];
    if (!name || !version || !/\binstalled$/.test(fields['Status'] ?? '')) continue;
    const source = /^(\S+)(?:\s+\((\S+)\))?$/.exec(fields['Source'] ?? '');
    // As dpkg writes it: Source only when it differs from Package, its version only when that differs too.
    out.push({ ecosystem: 'deb', name, version, ...(source ? { sourceName: source[1]! } : {}), ...(source?.[2] ? { sourceVersion: source[2] } : {}), path: file });
  }
  return out.sort((a, b) => a.name.localeCompare(b.name));
}

const DEBOOTSTRAP_KEY = 'debootstrap-bookworm-minbase-v2';

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Runs `make` once per machine for `key`: the first caller (of any process) takes a lock file
 * holding its pid and builds into a temp directory that it renames into place; the others wait
 * for the result. A lock whose process died is taken over.
 */
async function cachedOnce(key: string, make: (tmp: string) => Promise<void>, timeoutMs = 20 * 60_000): Promise<string> {
  await mkdir(cacheRoot, { recursive: true });
  const final = path.join(cacheRoot, key);
  const lock = `${final}.lock`;
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      await stat(path.join(final, 'done'));
      return final;
    } catch {
      // not built yet
    }
    let handle;
    try {
      handle = await open(lock, 'wx');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      const holder = Number((await readFile(lock, 'utf8').catch(() => '')).trim());
      if (holder > 0 && !isAlive(holder)) await unlink(lock).catch(() => {});
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${lock} (held by pid ${holder})`);
      await new Promise((r) => setTimeout(r, 1000));
      continue;
    }
    try {
      await handle.writeFile(String(process.pid));
      await handle.close();
      const tmp = `${final}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`;
      await rm(tmp, { recursive: true, force: true });
      await mkdir(tmp, { recursive: true });
      try {
        await make(tmp);
        await writeFile(path.join(tmp, 'done'), new Date().toISOString());
        await rm(final, { recursive: true, force: true });
        await rename(tmp, final);
      } finally {
        await rm(tmp, { recursive: true, force: true });
      }
      return final;
    } finally {
      await unlink(lock).catch(() => {});
    }
  }
}

/** The tar of a directory's content from GNU tar (names without "./", sorted, numeric owners). */
function tarDirectory(root: string, names: string[]): Readable {
  const child = spawn('tar', ['--numeric-owner', '--sort=name', '-C', root, '-cf', '-', '--', ...names], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const out = new PassThrough();
  child.stdout.pipe(out, { end: false });
  child.once('close', (code) => {
    if (code === 0) out.end();
    else out.destroy(new Error(`tar exited with ${code}: ${stderr}`));
  });
  return out;
}

let debootstrapCache: Promise<DebootstrapCache> | undefined;

async function buildDebootstrapLayer(): Promise<DebootstrapCache> {
  const dir = await cachedOnce(DEBOOTSTRAP_KEY, async (tmp) => {
    const rootfs = path.join(tmp, 'rootfs');
    await run('debootstrap', ['--variant=minbase', 'bookworm', rootfs, 'http://deb.debian.org/debian'], { timeoutMs: 15 * 60_000 });
    await copyFile(path.join(rootfs, 'var/lib/dpkg/status'), path.join(tmp, 'dpkg-status'));
    const osRel = parseOsRelease(await readFile(path.join(rootfs, 'etc/os-release'), 'utf8').catch(async () => readFile(path.join(rootfs, 'usr/lib/os-release'), 'utf8')));
    // The apt lists and caches debootstrap leaves would only make the layer bigger.
    for (const d of ['var/cache/apt/archives', 'var/lib/apt/lists']) {
      for (const f of await readdir(path.join(rootfs, d)).catch(() => [] as string[])) await rm(path.join(rootfs, d, f), { recursive: true, force: true });
    }
    const layer = await writeLayerBlob(tmp, tarDirectory(rootfs, (await readdir(rootfs)).sort()), 'gzip');
    await rename(layer.file, path.join(tmp, 'layer.tar.gz'));
    await rm(path.join(tmp, 'blobs'), { recursive: true, force: true });
    await rm(rootfs, { recursive: true, force: true });
    const meta: DebootstrapCache = { digest: layer.digest, size: layer.size, diffId: layer.diffId, osRelease: osRel };
    await writeFile(path.join(tmp, 'meta.json'), JSON.stringify(meta));
  });
  return JSON.parse(await readFile(path.join(dir, 'meta.json'), 'utf8')) as DebootstrapCache;
}

let debootstrapPackages: Promise<ImagePackage[]> | undefined;

/**
 * Debian bookworm minbase from `debootstrap` against Debian's mirror, as one gzip'd layer (a
 * hundred-odd MiB), built once per machine and cached under cacheRoot. Its packages are those
 * var/lib/dpkg/status lists, whatever versions the mirror had that day.
 */
export async function debootstrapImage(dir: string, options: AssembleOptions = {}): Promise<ScanImage & { osRelease: Record<string, string> }> {
  debootstrapCache ??= buildDebootstrapLayer();
  let cached: DebootstrapCache;
  try {
    cached = await debootstrapCache;
  } catch (err) {
    debootstrapCache = undefined;
    throw err;
  }
  const blobDir = path.join(dir, 'blobs', 'sha256');
  await mkdir(blobDir, { recursive: true });
  const file = path.join(blobDir, cached.digest.slice('sha256:'.length));
  const source = path.join(cacheRoot, DEBOOTSTRAP_KEY, 'layer.tar.gz');
  await link(source, file).catch(async (err: NodeJS.ErrnoException) => {
    if (err.code !== 'EEXIST') await copyFile(source, file);
  });
  const layer: LayerBlob = { digest: cached.digest, size: cached.size, diffId: cached.diffId, mediaType: MT.ociLayer, file };
  const image = await assembleImage(dir, [layer], { tag: 'debian', createdBy: ['debootstrap --variant=minbase bookworm'], ...options });
  debootstrapPackages ??= readFile(path.join(cacheRoot, DEBOOTSTRAP_KEY, 'dpkg-status'), 'utf8').then((text) => parseDpkgStatus(text));
  const packages = await debootstrapPackages;
  return { ...image, os: { id: cached.osRelease['ID'] ?? 'debian', versionId: cached.osRelease['VERSION_ID'] ?? '' }, osRelease: cached.osRelease, packages };
}

// --- hostile layers -------------------------------------------------------------------------

/**
 * A gzip layer whose tar holds files of zeros (`sizeBytes` each): a few MiB on the wire, GiBs
 * when read. Streamed through zlib to a file, and cached per machine, since deflating GiBs
 * takes a while.
 */
export async function zeroBombLayer(dir: string, files: Array<{ name: string; sizeBytes: number }>): Promise<LayerBlob> {
  const key = `zero-bomb-${createHash('sha256').update(JSON.stringify(files)).digest('hex').slice(0, 16)}`;
  const cached = await cachedOnce(key, async (tmp) => {
    const pack = tarStream.pack();
    const chunk = Buffer.alloc(1024 * 1024);
    void (async () => {
      try {
        for (const f of files) {
          await new Promise<void>((resolve, reject) => {
            const sink = pack.entry({ name: f.name, size: f.sizeBytes, mode: 0o644, mtime: epoch, type: 'file' }, (err) => (err ? reject(err) : resolve()));
            void (async () => {
              let left = f.sizeBytes;
              while (left > 0) {
                const piece = left >= chunk.length ? chunk : chunk.subarray(0, left);
                left -= piece.length;
                if (!sink.write(piece)) await new Promise<void>((r) => sink.once('drain', () => r()));
              }
              sink.end(Buffer.alloc(0));
            })().catch(reject);
          });
        }
        pack.finalize();
      } catch (err) {
        pack.destroy(err as Error);
      }
    })();
    const layer = await writeLayerBlob(tmp, asReadable(pack), 'gzip');
    await rename(layer.file, path.join(tmp, 'layer.tar.gz'));
    await writeFile(path.join(tmp, 'meta.json'), JSON.stringify({ digest: layer.digest, size: layer.size, diffId: layer.diffId }));
  });
  const meta = JSON.parse(await readFile(path.join(cached, 'meta.json'), 'utf8')) as { digest: string; size: number; diffId: string };
  const file = path.join(dir, 'blobs', 'sha256', meta.digest.slice('sha256:'.length));
  await mkdir(path.dirname(file), { recursive: true });
  await link(path.join(cached, 'layer.tar.gz'), file).catch(async (err: NodeJS.ErrnoException) => {
    if (err.code !== 'EEXIST') await copyFile(path.join(cached, 'layer.tar.gz'), file);
  });
  return { ...meta, mediaType: MT.ociLayer, file };
}

/** A layer of the entries, gzip'd (for the hostile tests, which assemble images themselves). */
export async function layerOf(dir: string, entries: ScanEntry[], compression: Compression = 'gzip'): Promise<LayerBlob> {
  return writeLayerBlob(dir, tarOf(entries), compression);
}

/** A gzip layer of many tiny entries (a tar bomb by count): `count` empty files under var/bomb/. */
export async function manyEntriesLayer(dir: string, count: number): Promise<LayerBlob> {
  const pack = tarStream.pack();
  void (async () => {
    try {
      await entry(pack, { name: 'var/bomb', type: 'directory', mode: 0o755, mtime: epoch });
      for (let i = 0; i < count; i++) await entry(pack, { name: `var/bomb/${i.toString(36)}`, type: 'file', mode: 0o644, mtime: epoch }, Buffer.alloc(0));
      pack.finalize();
    } catch (err) {
      pack.destroy(err as Error);
    }
  })();
  return writeLayerBlob(dir, asReadable(pack), 'gzip');
}

/**
 * A gzip layer cut in half: its digest is that of the bytes kept (so a registry accepts the
 * blob), its diff_id that of the whole tar, as a layer damaged after it was built would be.
 */
export async function truncatedLayer(dir: string, entries: ScanEntry[]): Promise<LayerBlob> {
  const whole = await writeLayerBlob(dir, tarOf(entries), 'gzip');
  const bytes = await readFile(whole.file);
  await unlink(whole.file);
  const kept = bytes.subarray(0, Math.floor(bytes.length / 2));
  const blob = await putBlob(dir, kept);
  return { ...blob, diffId: whole.diffId, mediaType: MT.ociLayer, file: path.join(dir, 'blobs', 'sha256', blob.digest.slice('sha256:'.length)) };
}

/** A dpkg status paragraph for a package, for layers that pretend to be Debian. */
export function dpkgStatusEntry(name: string, version: string, source?: string): string {
  return `Package: ${name}\nStatus: install ok installed\n${source ? `Source: ${source}\n` : ''}Priority: optional\nSection: libs\nInstalled-Size: 100\nMaintainer: Berth tests <tests@berth.invalid>\nArchitecture: amd64\nVersion: ${version}\nDescription: ${name} for Berth's scanner tests\n\n`;
}

export const DEBIAN_OS_RELEASE = osRelease({ PRETTY_NAME: 'Debian GNU/Linux 12 (bookworm)', NAME: 'Debian GNU/Linux', VERSION_ID: '12', VERSION: '12 (bookworm)', VERSION_CODENAME: 'bookworm', ID: 'debian' });
