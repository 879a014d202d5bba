import { createHash, randomUUID } from 'node:crypto';
import { mkdir, open, readdir, readFile, rm } from 'node:fs/promises';
import path from 'node:path';
import { Transform, type Readable, type TransformCallback } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import zlib from 'node:zlib';
import tar, { type Header as TarHeader } from 'tar-stream';
import type { FileFacts, LayerFacts } from '../types.ts';
import { ScanInputError, type AnalyserInput, type EntryInfo, type FileAnalyser } from './analyser.ts';
import { formatBytes, type ScanLimits } from './limits.ts';

/**
 * The version of what the walker and the analysers report. Layer facts are cached under it, so it
 * goes up whenever the walker or any analyser would report something different for the same layer.
 * index.ts re-exports it next to the list of analysers.
 */
export const ANALYSER_VERSION = 1;

export interface AnalyseLayerOptions {
  /** The layer descriptor's mediaType: it decides the decompression. */
  mediaType: string;
  /** The image config's rootfs.diff_ids entry for this layer, "sha256:<hex>"; checked when given. */
  expectedDiffId?: string;
  analysers: readonly FileAnalyser[];
  limits: ScanLimits;
  /** An existing private directory; the walker spools files here and leaves nothing behind. */
  tempDir: string;
  signal?: AbortSignal;
  /** The layer's index in the manifest, named in error messages ("layer 2: ..."). */
  layerIndex?: number;
}

export interface LayerResult {
  facts: LayerFacts;
  /** "sha256:<hex>" of the uncompressed tar. */
  diffId: string;
  uncompressedBytes: number;
}

type Compression = 'gzip' | 'zstd' | 'none';

// OCI image-spec media-types.md and Docker's image manifest v2.2; the nondistributable
// variants (deprecated, still in old Windows images) have the same content.
const compressionByMediaType: Record<string, Compression> = {
  'application/vnd.oci.image.layer.v1.tar': 'none',
  'application/vnd.oci.image.layer.v1.tar+gzip': 'gzip',
  'application/vnd.oci.image.layer.v1.tar+zstd': 'zstd',
  'application/vnd.oci.image.layer.nondistributable.v1.tar': 'none',
  'application/vnd.oci.image.layer.nondistributable.v1.tar+gzip': 'gzip',
  'application/vnd.oci.image.layer.nondistributable.v1.tar+zstd': 'zstd',
  'application/vnd.docker.image.rootfs.diff.tar': 'none',
  'application/vnd.docker.image.rootfs.diff.tar.gzip': 'gzip',
  'application/vnd.docker.image.rootfs.foreign.diff.tar.gzip': 'gzip',
};

/** True when analyseLayer can read layers of this media type. */
export function isSupportedLayerMediaType(mediaType: string): boolean {
  return Object.hasOwn(compressionByMediaType, mediaType);
}

/**
 * Reads one layer as a stream, once: decompresses it, hashes the tar (the diffID), walks its
 * entries and hands the regular files that analysers want to them. Memory stays bounded: entries
 * are processed one at a time with backpressure, and a file is held in memory only when every
 * analyser that reads it takes a buffer no larger than its maxBytes; otherwise it goes to a
 * private temporary file. Everything the layer can make us do is bounded by `limits`; a refusal,
 * a malformed archive or a diffID mismatch rejects with ScanInputError.
 */
export async function analyseLayer(input: Readable, options: AnalyseLayerOptions): Promise<LayerResult> {
  const where = options.layerIndex === undefined ? 'layer' : `layer ${options.layerIndex}`;
  const compression = compressionByMediaType[options.mediaType];
  const workDir = path.join(options.tempDir, `analyse-${randomUUID()}`);
  try {
    if (compression === undefined) {
      throw new ScanInputError(`${where}: media type ${JSON.stringify(options.mediaType)} is not a layer format the scanner reads (tar, tar+gzip, tar+zstd)`);
    }
    options.signal?.throwIfAborted();
    await mkdir(workDir, { mode: 0o700 });
  } catch (err) {
    // The pipeline below owns the input from here on; before it, release it ourselves.
    input.destroy();
    throw err;
  }
  // Aborted by the caller, or by us once the walk is over so that a straggling analyser stops.
  const controller = new AbortController();
  const signal = options.signal ? AbortSignal.any([controller.signal, options.signal]) : controller.signal;

  const compressed = new CompressedMeter(compression, options.mediaType, where);
  const uncompressed = new UncompressedMeter(options.limits, compressed, compression, where);
  const walker = new Walker(options, where, workDir, signal);
  const extract = tar.extract();
  extract.on('entry', (header, stream, next) => {
    walker.current = walker.entry(header, stream as AsyncIterable<Buffer>);
    walker.current.then(
      () => next(),
      (err: unknown) => next(err instanceof Error ? err : new Error(String(err))),
    );
  });
  const stages: NodeJS.ReadWriteStream[] = [];
  // 256 KiB output chunks rather than zlib's 16 KiB: a sixteenth of the thread-pool round trips,
  // which took a third of a cold scan's time.
  if (compression === 'gzip') stages.push(zlib.createGunzip({ chunkSize: 256 * 1024 }));
  if (compression === 'zstd') stages.push(zlib.createZstdDecompress({ chunkSize: 256 * 1024 }));

  try {
    await pipeline([input, compressed, ...stages, uncompressed, extract], { signal });
  } catch (err) {
    throw translateError(err, where, compression, signal);
  } finally {
    controller.abort();
    // An entry may still be spooling or analysing when a later stage fails; let it settle before
    // its files are removed.
    await walker.current.catch(() => undefined);
    await rm(workDir, { recursive: true, force: true });
  }

  const diffId = `sha256:${uncompressed.hash.digest('hex')}`;
  if (options.expectedDiffId !== undefined && options.expectedDiffId !== diffId) {
    throw new ScanInputError(`${where}: uncompressed content ${diffId} does not match the image config's diff_id ${options.expectedDiffId}`);
  }
  return { facts: walker.facts, diffId, uncompressedBytes: uncompressed.bytes };
}

/** Counts the compressed bytes (for the ratio check) and checks the first bytes match the media type. */
class CompressedMeter extends Transform {
  bytes = 0;
  private head = Buffer.alloc(0);
  private isSniffed = false;
  private readonly compression: Compression;
  private readonly mediaType: string;
  private readonly where: string;

  constructor(compression: Compression, mediaType: string, where: string) {
    super();
    this.compression = compression;
    this.mediaType = mediaType;
    this.where = where;
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    this.bytes += chunk.length;
    if (!this.isSniffed) {
      this.head = Buffer.concat([this.head, chunk.subarray(0, 4 - this.head.length)]);
      if (this.head.length >= 4) {
        const problem = this.sniff();
        if (problem) return callback(new ScanInputError(problem));
      }
    }
    callback(null, chunk);
  }

  override _flush(callback: TransformCallback): void {
    const problem = this.isSniffed ? undefined : this.sniff();
    callback(problem ? new ScanInputError(problem) : null);
  }

  /** A description of the mismatch, or undefined when the content looks like its media type. */
  private sniff(): string | undefined {
    this.isSniffed = true;
    const seen = contentKind(this.head);
    const label = `${this.where}: the media type ${this.mediaType} says`;
    if (this.compression === 'none') {
      return seen === 'gzip' || seen === 'zstd' ? `${label} uncompressed tar, but the content is ${seen}-compressed` : undefined;
    }
    if (this.head.length === 0) return `${label} ${this.compression}, but the layer is empty`;
    if (seen === this.compression) return undefined;
    const hex = [...this.head].map((b) => b.toString(16).padStart(2, '0')).join(' ');
    const what = seen === 'other' ? `it starts with bytes ${hex}` : `it is ${seen}`;
    return `${label} ${this.compression}, but the content is not ${this.compression} (${what})`;
  }
}

function contentKind(head: Buffer): Compression | 'other' {
  if (head[0] === 0x1f && head[1] === 0x8b) return 'gzip';
  // A zstd frame (RFC 8878 section 3.1.1), or a skippable frame 0x184D2A5?, little-endian.
  if (head.length >= 4 && head.readUInt32LE(0) === 0xfd2fb528) return 'zstd';
  if (head.length >= 4 && (head.readUInt32LE(0) & 0xfffffff0) === 0x184d2a50) return 'zstd';
  return 'other';
}

/** Hashes and counts the uncompressed tar, refusing layers past the size and ratio limits. */
class UncompressedMeter extends Transform {
  bytes = 0;
  readonly hash = createHash('sha256');
  private readonly limits: ScanLimits;
  private readonly compressed: CompressedMeter;
  private readonly compression: Compression;
  private readonly where: string;

  constructor(limits: ScanLimits, compressed: CompressedMeter, compression: Compression, where: string) {
    super();
    this.limits = limits;
    this.compressed = compressed;
    this.compression = compression;
    this.where = where;
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    this.bytes += chunk.length;
    const { maxUncompressedBytes, maxCompressionRatio, ratioCheckAfterBytes } = this.limits;
    if (this.bytes > maxUncompressedBytes) {
      return callback(new ScanInputError(`${this.where} is larger than ${formatBytes(maxUncompressedBytes)} uncompressed, the most the scanner reads in one layer (scan.limits.maxUncompressedLayerBytes); refused`));
    }
    if (this.compression !== 'none' && this.bytes > ratioCheckAfterBytes && this.bytes > maxCompressionRatio * this.compressed.bytes) {
      return callback(
        new ScanInputError(
          `${this.where} expands more than ${maxCompressionRatio} times (${formatBytes(this.bytes)} from ${formatBytes(this.compressed.bytes)} so far, scan.limits.maxCompressionRatio); refused as a decompression bomb`,
        ),
      );
    }
    this.hash.update(chunk);
    callback(null, chunk);
  }
}

/** Walks the tar entries of one layer, in order, one at a time, building its LayerFacts. */
class Walker {
  readonly facts: LayerFacts = { analyserVersion: ANALYSER_VERSION, files: {}, whiteouts: [], opaqueDirs: [] };
  /** The entry being processed: awaited before the walker's temporary files are removed. */
  current: Promise<void> = Promise.resolve();
  private entryCount = 0;
  private readonly options: AnalyseLayerOptions;
  private readonly where: string;
  private readonly workDir: string;
  private readonly signal: AbortSignal;

  constructor(options: AnalyseLayerOptions, where: string, workDir: string, signal: AbortSignal) {
    this.options = options;
    this.where = where;
    this.workDir = workDir;
    this.signal = signal;
  }

  async entry(header: TarHeader, stream: AsyncIterable<Buffer>): Promise<void> {
    const { limits, analysers } = this.options;
    this.signal.throwIfAborted();
    this.entryCount++;
    if (this.entryCount > limits.maxEntries) {
      throw new ScanInputError(`${this.where} has more than ${limits.maxEntries} entries, the most the scanner reads in one layer (scan.limits.maxLayerEntries); refused`);
    }
    const nameBytes = Buffer.byteLength(header.name);
    if (nameBytes > limits.maxPathBytes) {
      throw new ScanInputError(`${this.where} has an entry whose path is ${nameBytes} bytes long, more than ${limits.maxPathBytes} (maxPathBytes): ${header.name.slice(0, 120)}...`);
    }
    const entryPath = normaliseEntryPath(header.name);
    if (entryPath === undefined) {
      throw new ScanInputError(`${this.where} has an entry that climbs out of the image root (path traversal): ${JSON.stringify(header.name)}`);
    }
    const size = header.size ?? 0;
    if (size > limits.maxUncompressedBytes) {
      throw new ScanInputError(`${this.where}: ${entryPath} claims to be ${formatBytes(size)}, more than ${formatBytes(limits.maxUncompressedBytes)} the scanner reads in one layer (scan.limits.maxUncompressedLayerBytes); refused`);
    }
    const reader = new EntryReader(stream);
    const base = path.posix.basename(entryPath);
    if (base.startsWith('.wh.')) {
      this.whiteout(entryPath, base);
    } else if (entryPath !== '') {
      // A later entry for the same path replaces an earlier one, as extraction would.
      delete this.facts.files[entryPath];
      const entry: EntryInfo = { path: entryPath, size, mode: (header.mode ?? 0) & 0o7777 };
      // tar-stream says null for type flags it does not know (GNU sparse files among them): never
      // handed to analysers, whose bytes would not be the file's.
      const type: string | null = header.type;
      if (type === 'file' || type === 'contiguous-file') {
        await this.regularFile(entry, reader);
      } else if (type !== 'directory' && analysers.some((a) => a.wants({ ...entry, size: 0 }))) {
        // A link or device never reaches an analyser, but it still replaces whatever a lower layer
        // had at this path (etc/os-release turned into a symlink, say), so the path is recorded
        // with no facts.
        this.facts.files[entryPath] = {};
      }
    }
    // Not reached when the entry is refused: a refused layer is abandoned, not read to its end.
    await reader.drain();
  }

  /** OCI image-spec layer.md, "Whiteouts": they hide paths of lower layers, never of their own. */
  private whiteout(entryPath: string, base: string): void {
    const dir = path.posix.dirname(entryPath);
    const parent = dir === '.' ? '' : dir;
    if (base === '.wh..wh..opq') {
      this.facts.opaqueDirs.push(parent);
    } else if (!base.startsWith('.wh..wh.')) {
      // Other `.wh..wh.` names are the storage driver's own bookkeeping (aufs), not whiteouts.
      const hidden = base.slice('.wh.'.length);
      if (hidden !== '' && hidden !== '.' && hidden !== '..') this.facts.whiteouts.push(parent === '' ? hidden : `${parent}/${hidden}`);
    }
  }

  private async regularFile(entry: EntryInfo, reader: EntryReader): Promise<void> {
    let interested = this.options.analysers.filter((a) => a.wants(entry));
    if (interested.length === 0) return;
    this.facts.files[entry.path] = {};
    if (interested.some((a) => a.wantsHead)) {
      const head = await reader.head(Math.min(512, entry.size));
      interested = interested.filter((a) => !a.wantsHead || a.wantsHead(entry, head));
    }
    const notes: string[] = [];
    const readers: FileAnalyser[] = [];
    for (const analyser of interested) {
      if (entry.size <= analyser.maxBytes) {
        readers.push(analyser);
        continue;
      }
      const message = `${entry.path} is ${formatBytes(entry.size)}, more than the ${formatBytes(analyser.maxBytes)} the ${analyser.name} analyser reads`;
      if (analyser.tooLarge === 'fail') throw new ScanInputError(message);
      notes.push(`${message}; not read`);
    }
    const results: FileFacts[] = notes.length > 0 ? [{ notes }] : [];
    if (readers.length > 0) {
      // Written to a temporary file only for an analyser that needs one at this size: most
      // executables are small enough for the ELF readers to take from memory.
      const needsFile = (a: FileAnalyser) => a.input === 'file' && entry.size > (a.bufferUpToBytes ?? -1);
      const isFileNeeded = readers.some(needsFile);
      const spoolPath = isFileNeeded ? path.join(this.options.tempDir, `entry-${randomUUID()}`) : undefined;
      try {
        let bytes = spoolPath ? await reader.spool(spoolPath) : await reader.buffer();
        for (const analyser of readers) {
          this.signal.throwIfAborted();
          let input: AnalyserInput;
          if (needsFile(analyser) && spoolPath) input = { kind: 'file', path: spoolPath };
          else input = { kind: 'buffer', data: (bytes ??= await readFile(spoolPath!)) };
          results.push(await analyser.analyse(entry, input, { tempDir: this.workDir, signal: this.signal }));
          await emptyDir(this.workDir);
        }
      } finally {
        if (spoolPath) await rm(spoolPath, { force: true });
      }
    }
    this.facts.files[entry.path] = mergeFileFacts(results);
  }
}

/** Facts of one file from several analysers: the first OS, all packages, all notes. */
export function mergeFileFacts(all: FileFacts[]): FileFacts {
  const merged: FileFacts = {};
  for (const facts of all) {
    if (facts.os && !merged.os) merged.os = facts.os;
    if (facts.packages?.length) (merged.packages ??= []).push(...facts.packages);
    if (facts.notes?.length) (merged.notes ??= []).push(...facts.notes);
  }
  return merged;
}

/**
 * Relative to the root, without leading '/', './' or '.' parts, '..' resolved lexically; undefined
 * when a '..' climbs above the root. Lexical resolution is what the walker needs because it never
 * follows links: 'a/../b' is 'b' whatever 'a' is.
 */
export function normaliseEntryPath(name: string): string | undefined {
  const parts: string[] = [];
  for (const part of name.split('/')) {
    if (part === '' || part === '.') continue;
    if (part === '..') {
      if (parts.length === 0) return undefined;
      parts.pop();
      continue;
    }
    parts.push(part);
  }
  return parts.join('/');
}

/** Reads one tar entry's content at most once, with a look at its head first when asked. */
class EntryReader {
  private readonly iterator: AsyncIterator<Buffer>;
  private pending: Buffer[] = [];
  private pendingBytes = 0;
  private isDone = false;

  constructor(stream: AsyncIterable<Buffer>) {
    this.iterator = stream[Symbol.asyncIterator]();
  }

  /** The first `bytes` bytes (fewer if the file is shorter); they stay to be read again. */
  async head(bytes: number): Promise<Buffer> {
    while (this.pendingBytes < bytes && !this.isDone) {
      const next = await this.iterator.next();
      if (next.done) this.isDone = true;
      else {
        this.pending.push(next.value);
        this.pendingBytes += next.value.length;
      }
    }
    return Buffer.concat(this.pending).subarray(0, bytes);
  }

  private async *chunks(): AsyncGenerator<Buffer> {
    const pending = this.pending;
    this.pending = [];
    this.pendingBytes = 0;
    yield* pending;
    while (!this.isDone) {
      const next = await this.iterator.next();
      if (next.done) this.isDone = true;
      else yield next.value;
    }
  }

  async buffer(): Promise<Buffer> {
    const parts: Buffer[] = [];
    for await (const chunk of this.chunks()) parts.push(chunk);
    return Buffer.concat(parts);
  }

  /** Writes the content to a new file only this process can read; resolves undefined. */
  async spool(file: string): Promise<undefined> {
    const handle = await open(file, 'wx', 0o600);
    try {
      for await (const chunk of this.chunks()) await handle.write(chunk);
    } finally {
      await handle.close();
    }
    return undefined;
  }

  /** Reads and discards what is left, so the tar stream moves on; never buffers it. */
  async drain(): Promise<void> {
    this.pending = [];
    this.pendingBytes = 0;
    while (!this.isDone) {
      const next = await this.iterator.next();
      if (next.done) this.isDone = true;
    }
  }
}

async function emptyDir(dir: string): Promise<void> {
  const names = await readdir(dir);
  await Promise.all(names.map((name) => rm(path.join(dir, name), { recursive: true, force: true })));
}

/** Turns what zlib and tar-stream throw about a bad layer into a ScanInputError a person can read. */
function translateError(err: unknown, where: string, compression: Compression, signal: AbortSignal): unknown {
  if (err instanceof ScanInputError || !(err instanceof Error)) return err;
  if (signal.aborted && err.name === 'AbortError') return err;
  const code = (err as NodeJS.ErrnoException).code ?? '';
  if (code === 'Z_BUF_ERROR' || err.message === 'unexpected end of file') {
    return new ScanInputError(`${where} ended early: the ${compression} stream is cut off (${err.message})`, { cause: err });
  }
  if (code.startsWith('Z_') || code.startsWith('ZSTD_') || code === 'ERR_ZLIB_INITIALIZATION_FAILED') {
    return new ScanInputError(`${where}: the content is not valid ${compression} data (${err.message})`, { cause: err });
  }
  if (err.message === 'Unexpected end of data') {
    return new ScanInputError(`${where} ended early: the tar archive stops in the middle of an entry`, { cause: err });
  }
  if (/^(Invalid tar header|Invalid header|Header exceeds max size)/.test(err.message)) {
    return new ScanInputError(`${where} is not a valid tar archive (${err.message})`, { cause: err });
  }
  return err;
}
