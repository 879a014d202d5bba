import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { open, readdir, type FileHandle } from 'node:fs/promises';
import path from 'node:path';
import { Readable } from 'node:stream';
import { inflateRawSync } from 'node:zlib';
import yauzl from 'yauzl';
import { mapOsvRecord, osvSourceName } from './osv.ts';
import type { GenerationWriter } from './writer.ts';

/**
 * OSV records from OSV.dev's exports: a per-ecosystem `all.zip` (one JSON file per record), a
 * directory of JSON files (as osv-scanner's offline databases and the Go vulnerability
 * database's tree hold them), or one JSON file (a record or an array of records).
 *
 * Each record goes to the source of every ecosystem family it affects ("osv:Debian" for
 * "Debian:12"). A per-ecosystem export also lists records of other ecosystems that affect its
 * own (a GitHub advisory for both npm and PyPI is in both exports), so an input's sources are
 * the families every one of its records affects: exactly one for a per-ecosystem export. An
 * input whose records share no family is a combined export (OSV's all-ecosystems `all.zip`),
 * and each family it names is a source, complete. Records that all affect two families (a
 * tiny export) cannot be told apart and are refused. Rows written for a family that is not one
 * of the input's sources are dropped when the import is activated.
 */

/** A JSON document larger than this is refused: the largest real OSV records are a few MB. */
export const MAX_OSV_DOCUMENT_BYTES = 32 * 1024 * 1024;

export interface OsvInputResult {
  /** The families (not source names) the input's records all affect, or every one for a combined export. */
  families: string[];
  sha256: string;
  records: number;
  withdrawn: number;
  /** Documents that were not OSV records (index files beside the records, say). */
  ignored: number;
}

async function readBounded(stream: Readable, limit: number, what: string): Promise<Buffer> {
  const parts: Buffer[] = [];
  let size = 0;
  for await (const chunk of stream as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > limit) {
      stream.destroy();
      throw new Error(`${what} is larger than ${limit} bytes`);
    }
    parts.push(chunk);
  }
  return Buffer.concat(parts);
}

/** sha256 of a file, read as a stream: "sha256:<hex>". */
export async function fileSha256(file: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(file) as AsyncIterable<Buffer>) hash.update(chunk);
  return `sha256:${hash.digest('hex')}`;
}

function parseJson(bytes: Buffer, what: string): unknown {
  try {
    return JSON.parse(bytes.toString('utf8')) as unknown;
  } catch (err) {
    throw new Error(`${what}: not valid JSON (${(err as Error).message})`, { cause: err });
  }
}

/** Bytes a zip is read in: OSV's entries are small and lie one after the other. */
const ZIP_BLOCK_BYTES = 1024 * 1024;
/** Blocks kept: yauzl reads the central directory (at the end) and the entries (from the start) in turn. */
const ZIP_BLOCKS_KEPT = 4;
/** Entries up to this size are inflated in one synchronous call rather than through a stream. */
const SMALL_ENTRY_BYTES = 1024 * 1024;

/**
 * A zip file for yauzl, read in blocks of a megabyte. OSV's exports are tens of thousands of
 * entries of a few hundred bytes each: reading each header and each entry with its own file
 * read spent most of an import waiting on the thread pool.
 */
class BlockReader extends yauzl.RandomAccessReader {
  private readonly handle: FileHandle;
  private readonly file: string;
  private readonly size: number;
  private blocks: Array<{ start: number; bytes: Buffer }> = [];

  constructor(handle: FileHandle, file: string, size: number) {
    super();
    this.handle = handle;
    this.file = file;
    this.size = size;
  }

  private async slice(start: number, end: number): Promise<Buffer> {
    const hit = this.blocks.find((b) => start >= b.start && end <= b.start + b.bytes.length);
    if (hit) return hit.bytes.subarray(start - hit.start, end - hit.start);
    const length = Math.min(Math.max(end - start, ZIP_BLOCK_BYTES), this.size - start);
    const bytes = Buffer.alloc(length);
    const { bytesRead } = await this.handle.read(bytes, 0, length, start);
    if (bytesRead < end - start) throw new Error('unexpected end of file');
    const block = { start, bytes: bytes.subarray(0, bytesRead) };
    if (length <= ZIP_BLOCK_BYTES) this.blocks = [block, ...this.blocks].slice(0, ZIP_BLOCKS_KEPT);
    return block.bytes.subarray(0, end - start);
  }

  override read(buffer: Buffer, offset: number, length: number, position: number, callback: (err: Error | null, bytesRead?: number) => void): void {
    this.slice(position, position + length).then(
      (bytes) => {
        bytes.copy(buffer, offset);
        callback(null, length);
      },
      (err: Error) => callback(err),
    );
  }

  override _readStreamForRange(start: number, end: number): Readable {
    // A large entry is streamed from the file rather than held as a block.
    if (end - start > ZIP_BLOCK_BYTES) return createReadStream(this.file, { start, end: end - 1 });
    const slice = this.slice(start, end);
    return Readable.from(
      (async function* () {
        yield await slice;
      })(),
    );
  }
}

/** An entry's bytes, inflated and checked against its declared size. */
async function entryBytes(zip: yauzl.ZipFile, entry: yauzl.Entry, what: string): Promise<Buffer> {
  const small = entry.compressedSize <= SMALL_ENTRY_BYTES && (entry.compressionMethod === 0 || entry.compressionMethod === 8);
  if (!small) return readBounded(await zip.openReadStreamPromise(entry), MAX_OSV_DOCUMENT_BYTES, what);
  const raw = await readBounded(await zip.openReadStreamPromise(entry, { decompress: false }), entry.compressedSize, what);
  let bytes: Buffer;
  try {
    bytes = entry.compressionMethod === 0 ? raw : inflateRawSync(raw, { maxOutputLength: Math.max(1, entry.uncompressedSize), chunkSize: Math.max(64, entry.uncompressedSize) });
  } catch (err) {
    throw new Error(`${what}: cannot be inflated to its declared ${entry.uncompressedSize} bytes (${(err as Error).message})`, { cause: err });
  }
  if (bytes.length !== entry.uncompressedSize) throw new Error(`${what}: ${bytes.length} bytes, its zip header says ${entry.uncompressedSize}`);
  return bytes;
}

/** The JSON documents of a zip, one entry at a time. */
async function* zipDocuments(file: string): AsyncGenerator<{ name: string; doc: unknown }> {
  const handle = await open(file, 'r');
  try {
    const { size } = await handle.stat();
    // validateEntrySizes: an entry that inflates past its declared size is an error, so the
    // declared size bounds every read below.
    const zip = await yauzl.fromRandomAccessReaderPromise(new BlockReader(handle, file, size), size, { lazyEntries: true, autoClose: false, validateEntrySizes: true, strictFileNames: false });
    for await (const entry of zip.eachEntry()) {
      if (entry.fileName.endsWith('/') || !entry.fileName.toLowerCase().endsWith('.json')) continue;
      const what = `${file}: ${entry.fileName}`;
      if (entry.uncompressedSize > MAX_OSV_DOCUMENT_BYTES) throw new Error(`${what} is larger than ${MAX_OSV_DOCUMENT_BYTES} bytes`);
      yield { name: entry.fileName, doc: parseJson(await entryBytes(zip, entry, what), what) };
    }
  } catch (err) {
    if ((err as Error).message.startsWith(file)) throw err;
    throw new Error(`${file}: not a readable zip file (${(err as Error).message})`, { cause: err });
  } finally {
    await handle.close();
  }
}

/** The .json files under a directory, in name order, not following symbolic links. */
async function* jsonFiles(dir: string, rel = ''): AsyncGenerator<string> {
  const entries = await readdir(path.join(dir, rel), { withFileTypes: true });
  entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  for (const e of entries) {
    const relPath = rel === '' ? e.name : `${rel}/${e.name}`;
    if (e.isDirectory()) yield* jsonFiles(dir, relPath);
    else if (e.isFile() && e.name.toLowerCase().endsWith('.json')) yield relPath;
  }
}

async function readFileBounded(file: string, what: string): Promise<Buffer> {
  const handle = await open(file, 'r');
  try {
    return await readBounded(handle.createReadStream({ autoClose: false }), MAX_OSV_DOCUMENT_BYTES, what);
  } finally {
    await handle.close();
  }
}

/**
 * Reads OSV records from a zip, a directory or a JSON file into the writer, under the source of
 * each family they affect. The directory's sha256 is that of its listing as `sha256sum` prints
 * it (`<hex>  <relative path>` lines, in name order), over the .json files read.
 */
export async function readOsvInput(input: string, kind: 'zip' | 'dir' | 'json', writer: GenerationWriter): Promise<OsvInputResult> {
  let common: Set<string> | undefined;
  const seenFamilies = new Set<string>();
  const result = { records: 0, withdrawn: 0, ignored: 0 };
  const listing = createHash('sha256');

  const take = async (doc: unknown): Promise<void> => {
    const docs = Array.isArray(doc) ? doc : [doc];
    for (const d of docs) {
      const mapped = mapOsvRecord(d);
      if (mapped.kind === 'invalid') {
        result.ignored++;
        continue;
      }
      if (mapped.kind === 'withdrawn') {
        result.withdrawn++;
        continue;
      }
      result.records++;
      const { record, affectedByFamily } = mapped.value;
      const families = [...affectedByFamily.keys()];
      // A record that names no package (GIT ranges only) says nothing about which export this is.
      if (families.length > 0) common = new Set(common === undefined ? families : families.filter((f) => common!.has(f)));
      for (const family of families) {
        seenFamilies.add(family);
        const source = osvSourceName(family);
        if (!(await writer.addRecord({ ...record, source }))) continue;
        await writer.addAffected(affectedByFamily.get(family)!.map((a) => ({ ...a, source })));
      }
    }
  };

  if (kind === 'zip') {
    for await (const { doc } of zipDocuments(input)) await take(doc);
  } else if (kind === 'dir') {
    for await (const rel of jsonFiles(input)) {
      const bytes = await readFileBounded(path.join(input, rel), `${input}/${rel}`);
      listing.update(`${createHash('sha256').update(bytes).digest('hex')}  ${rel}\n`);
      await take(parseJson(bytes, `${input}/${rel}`));
    }
  } else {
    await take(parseJson(await readFileBounded(input, input), input));
  }

  if (result.records + result.withdrawn === 0) throw new Error(`${input}: no OSV records found`);
  let families: string[];
  if (common === undefined) families = [];
  else if (common.size === 1) families = [...common];
  else if (common.size === 0) families = [...seenFamilies].sort();
  else {
    throw new Error(
      `${input}: every record affects each of ${[...common].sort().map((f) => JSON.stringify(f)).join(', ')}; cannot tell which ecosystem's export this is (import each ecosystem's own export)`,
    );
  }
  const sha256 = kind === 'dir' ? `sha256:${listing.digest('hex')}` : await fileSha256(input);
  return { families, sha256, ...result };
}
