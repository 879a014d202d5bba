import { createHash, randomBytes } from 'node:crypto';
import { mkdir, readFile, readdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { gunzipSync, gzipSync } from 'node:zlib';
import { MT, blob, imageManifest, sha256, type Blob } from './oci.ts';

/**
 * Real container images built in code: ustar layers gzip'd with node:zlib, image configs that
 * podman accepts, OCI indexes, and the OCI image layout (image-spec "image-layout.md") that
 * skopeo and podman read and write as `oci:DIR:tag`.
 */

export interface TarEntry {
  /** Path inside the layer, without a leading slash; directories end without a slash too. */
  name: string;
  type?: 'file' | 'dir' | 'symlink';
  content?: string | Buffer;
  linkname?: string;
  mode?: number;
}

function writeField(header: Buffer, offset: number, length: number, value: string): void {
  const bytes = Buffer.from(value, 'utf8');
  if (bytes.length > length) throw new Error(`tar field too long: ${value}`);
  bytes.copy(header, offset);
}

function octal(value: number, length: number): string {
  // length - 1 digits and a NUL, as ustar writers conventionally do.
  return value.toString(8).padStart(length - 1, '0') + '\0';
}

/** A ustar archive (POSIX.1-1988) with fixed owner and mtime, so the bytes are reproducible. */
export function tar(entries: TarEntry[]): Buffer {
  const parts: Buffer[] = [];
  for (const entry of entries) {
    const type = entry.type ?? 'file';
    const content = type === 'file' ? Buffer.from(entry.content ?? '') : Buffer.alloc(0);
    let name = type === 'dir' ? `${entry.name}/` : entry.name;
    let prefix = '';
    if (Buffer.byteLength(name) > 100) {
      const cut = name.lastIndexOf('/', name.length - 2);
      prefix = name.slice(0, cut);
      name = name.slice(cut + 1);
    }
    const header = Buffer.alloc(512);
    writeField(header, 0, 100, name);
    writeField(header, 100, 8, octal(entry.mode ?? (type === 'dir' ? 0o755 : 0o644), 8));
    writeField(header, 108, 8, octal(0, 8));
    writeField(header, 116, 8, octal(0, 8));
    writeField(header, 124, 12, octal(content.length, 12));
    writeField(header, 136, 12, octal(0, 12));
    header.fill(' ', 148, 156);
    writeField(header, 156, 1, type === 'file' ? '0' : type === 'dir' ? '5' : '2');
    writeField(header, 157, 100, entry.linkname ?? '');
    writeField(header, 257, 6, 'ustar\0');
    writeField(header, 263, 2, '00');
    writeField(header, 265, 32, 'root');
    writeField(header, 297, 32, 'root');
    writeField(header, 329, 8, octal(0, 8));
    writeField(header, 337, 8, octal(0, 8));
    writeField(header, 345, 155, prefix);
    let sum = 0;
    for (const byte of header) sum += byte;
    writeField(header, 148, 8, sum.toString(8).padStart(6, '0') + '\0 ');
    parts.push(header, content);
    const pad = (512 - (content.length % 512)) % 512;
    if (pad > 0) parts.push(Buffer.alloc(pad));
  }
  parts.push(Buffer.alloc(1024));
  return Buffer.concat(parts);
}

/** Reads back the regular files of a ustar archive (for checking what a tool wrote). */
export function untar(archive: Buffer): Map<string, Buffer> {
  const files = new Map<string, Buffer>();
  let offset = 0;
  while (offset + 512 <= archive.length) {
    const header = archive.subarray(offset, offset + 512);
    if (header.every((b) => b === 0)) break;
    const str = (start: number, length: number) => header.subarray(start, start + length).toString('utf8').replace(/\0.*$/s, '');
    const size = parseInt(str(124, 12).trim() || '0', 8);
    const prefix = str(345, 155);
    const name = prefix ? `${prefix}/${str(0, 100)}` : str(0, 100);
    const type = str(156, 1);
    if (type === '0' || type === '') files.set(name.replace(/^\.\//, ''), Buffer.from(archive.subarray(offset + 512, offset + 512 + size)));
    offset += 512 + Math.ceil(size / 512) * 512;
  }
  return files;
}

export interface Layer extends Blob {
  mediaType: string;
  /** sha256 of the uncompressed tar: the config's rootfs.diff_ids entry. */
  diffId: string;
}

export function layer(entries: TarEntry[], options: { docker?: boolean } = {}): Layer {
  const archive = tar(entries);
  const gz = gzipSync(archive, { level: 6 });
  return { ...blob(gz), mediaType: options.docker ? MT.dockerLayer : MT.ociLayer, diffId: sha256(archive) };
}

export interface Platform {
  os: string;
  architecture: string;
  variant?: string;
}

export interface RealImage {
  config: Blob;
  layers: Layer[];
  manifest: Buffer;
  digest: string;
  mediaType: string;
  platform: Platform;
}

export interface RealImageOptions {
  platform?: Platform;
  /** One entry per layer; by default one layer holding a file with random content. */
  layers?: TarEntry[][];
  docker?: boolean;
  /** Extra config labels (a random `test.nonce` label is always added so every image is new). */
  labels?: Record<string, string>;
}

/** An image whose layers are real gzip'd tarballs and whose config a container engine accepts. */
export function buildRealImage(options: RealImageOptions = {}): RealImage {
  const platform = options.platform ?? { os: 'linux', architecture: 'amd64' };
  const docker = options.docker ?? false;
  const nonce = randomBytes(8).toString('hex');
  const layerEntries = options.layers ?? [
    [
      { name: 'etc', type: 'dir' },
      { name: 'etc/berth-test', content: `${platform.os}/${platform.architecture} ${nonce}\n` },
      { name: 'data', type: 'dir' },
      { name: 'data/random.bin', content: randomBytes(4096) },
    ],
  ];
  const layers = layerEntries.map((entries) => layer(entries, { docker }));
  const created = '2024-01-01T00:00:00Z';
  const config = blob(
    JSON.stringify({
      created,
      architecture: platform.architecture,
      ...(platform.variant ? { variant: platform.variant } : {}),
      os: platform.os,
      config: {
        Env: ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'],
        Cmd: ['/bin/sh'],
        Labels: { 'test.nonce': nonce, ...options.labels },
      },
      rootfs: { type: 'layers', diff_ids: layers.map((l) => l.diffId) },
      history: layers.map(() => ({ created, created_by: 'berth test/support/layout.ts' })),
    }),
  );
  return { config, layers, ...imageManifest(config, layers, docker), platform };
}

export interface RealIndex {
  images: RealImage[];
  index: Buffer;
  digest: string;
  mediaType: string;
}

/** An OCI image index listing each image with its platform. */
export function buildRealIndex(images: RealImage[]): RealIndex {
  const index = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: MT.ociIndex,
      manifests: images.map((img) => ({ mediaType: img.mediaType, digest: img.digest, size: img.manifest.length, platform: img.platform })),
    }),
  );
  return { images, index, digest: sha256(index), mediaType: MT.ociIndex };
}

function isIndex(x: RealImage | RealIndex): x is RealIndex {
  return 'index' in x;
}

/** Writes an OCI image layout holding the given images or indexes, each under its tag. */
export async function writeOciLayout(dir: string, refs: Array<{ tag: string; content: RealImage | RealIndex }>): Promise<void> {
  const blobDir = path.join(dir, 'blobs', 'sha256');
  await mkdir(blobDir, { recursive: true });
  const put = (b: Blob) => writeFile(path.join(blobDir, b.digest.slice('sha256:'.length)), b.bytes);
  const manifests: unknown[] = [];
  for (const { tag, content } of refs) {
    const images = isIndex(content) ? content.images : [content];
    for (const img of images) {
      for (const b of [img.config, ...img.layers, { digest: img.digest, bytes: img.manifest }]) await put(b);
    }
    const top = isIndex(content) ? { digest: content.digest, bytes: content.index } : { digest: content.digest, bytes: content.manifest };
    if (isIndex(content)) await put(top);
    manifests.push({ mediaType: content.mediaType, digest: top.digest, size: top.bytes.length, annotations: { 'org.opencontainers.image.ref.name': tag } });
  }
  await writeFile(path.join(dir, 'oci-layout'), JSON.stringify({ imageLayoutVersion: '1.0.0' }));
  await writeFile(path.join(dir, 'index.json'), JSON.stringify({ schemaVersion: 2, mediaType: MT.ociIndex, manifests }));
}

export interface LayoutDescriptor {
  mediaType: string;
  digest: string;
  size: number;
  annotations?: Record<string, string>;
  platform?: Platform;
}

/** What a tool wrote to an OCI layout: the top-level descriptor for `tag` and every blob. */
export async function readOciLayout(dir: string, tag?: string): Promise<{ descriptor: LayoutDescriptor; blobs: Map<string, Buffer> }> {
  const index = JSON.parse(await readFile(path.join(dir, 'index.json'), 'utf8')) as { manifests: LayoutDescriptor[] };
  const descriptor = tag === undefined ? index.manifests[0] : index.manifests.find((m) => m.annotations?.['org.opencontainers.image.ref.name'] === tag);
  if (!descriptor) throw new Error(`no manifest tagged ${tag} in ${dir}`);
  const blobs = new Map<string, Buffer>();
  const blobDir = path.join(dir, 'blobs', 'sha256');
  for (const name of await readdir(blobDir)) blobs.set(`sha256:${name}`, await readFile(path.join(blobDir, name)));
  return { descriptor, blobs };
}

/**
 * What `skopeo copy ... dir:DIR` wrote: manifest.json and one file per blob named by its hex
 * digest. Every blob file is checked against its name.
 */
export async function readDirImage(dir: string): Promise<{ manifest: Buffer; blobs: Map<string, Buffer> }> {
  const manifest = await readFile(path.join(dir, 'manifest.json'));
  const blobs = new Map<string, Buffer>();
  for (const name of await readdir(dir)) {
    if (!/^[0-9a-f]{64}$/.test(name)) continue;
    const bytes = await readFile(path.join(dir, name));
    const digest = `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
    if (digest !== `sha256:${name}`) throw new Error(`${dir}/${name} holds bytes with digest ${digest}`);
    blobs.set(digest, bytes);
  }
  return { manifest, blobs };
}

/** The files of a gzip'd layer, for checking the content of what came back. */
export function layerFiles(gz: Buffer): Map<string, Buffer> {
  return untar(gunzipSync(gz));
}
