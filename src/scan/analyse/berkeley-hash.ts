/**
 * The values of a BerkeleyDB hash database (db 4.x and 5.x, hash format versions 8 and 9), as
 * rpm's `Packages` file before rpm 4.16 holds them: key = header instance number, value = the
 * package's header blob. libdb is not needed: the pages are walked in file order and every
 * key/data pair of every hash page is taken, values on overflow pages followed through their
 * chain. The layout is libdb's (dbinc/db_page.h):
 * - page 0 is the metadata page: magic 0x061561 in the byte order of the machine that wrote it
 *   (which is then the order of every number in the file), page size, last page number;
 * - a page header is 26 bytes: lsn, pgno, prev, next, entry count, free-space offset,
 *   level, type; hash pages (types 2 and 13) follow it with an array of item offsets, the
 *   items packed downwards from the end of the page, keys at even indexes, data at odd;
 * - an item's first byte is its type: H_KEYDATA (the bytes follow, up to the previous item)
 *   or H_OFFPAGE (first overflow page and total length); overflow pages (type 7) hold
 *   `hf_offset` bytes after the header and chain through `next`.
 * Every number comes from the image, so page numbers, offsets and lengths are checked, and
 * overflow chains are bounded by the length they claim.
 */
import type { AnalyserInput } from './analyser.ts';
import { ScanInputError } from './analyser.ts';
import type { ByteSource } from './byte-source.ts';
import { openSource, readRange } from './byte-source.ts';

const HASH_MAGIC = 0x061561;
const PAGE_HEADER_BYTES = 26;
const P_HASH_UNSORTED = 2;
const P_OVERFLOW = 7;
const P_HASHMETA = 8;
const P_HASH = 13;
const H_KEYDATA = 1;
const H_DUPLICATE = 2;
const H_OFFPAGE = 3;
const H_OFFDUP = 4;
/** Checksummed pages have a different header; rpm never sets it. */
const DBMETA_CHKSUM = 0x01;
/** Pages read at once while walking the file. */
const CHUNK_PAGES = 64;
const FORMAT = 'corrupt BerkeleyDB rpm database';

export interface BerkeleyLimits {
  maxValueBytes: number;
  maxValues: number;
}

/**
 * Yields the data of every key/data pair, in file order, skipping rpm's record 0 (a counter,
 * not a package). Throws ScanInputError for anything that is not a readable hash database.
 */
export async function* readBerkeleyHashValues(input: AnalyserInput, limits: BerkeleyLimits): AsyncGenerator<Buffer> {
  const { source, close } = await openSource(input);
  try {
    yield* walk(source, limits);
  } finally {
    await close();
  }
}

async function* walk(source: ByteSource, limits: BerkeleyLimits): AsyncGenerator<Buffer> {
  if (source.size < 512) throw new ScanInputError(`${FORMAT}: file too short for a metadata page`);
  const meta = await source.read(0, 512);
  let littleEndian: boolean;
  if (meta.readUInt32LE(12) === HASH_MAGIC) littleEndian = true;
  else if (meta.readUInt32BE(12) === HASH_MAGIC) littleEndian = false;
  else throw new ScanInputError('not a BerkeleyDB hash database');
  const u16 = (b: Buffer, at: number) => (littleEndian ? b.readUInt16LE(at) : b.readUInt16BE(at));
  const u32 = (b: Buffer, at: number) => (littleEndian ? b.readUInt32LE(at) : b.readUInt32BE(at));

  const version = u32(meta, 16);
  const pageSize = u32(meta, 20);
  const encryption = meta[24]!;
  const type = meta[25]!;
  const metaFlags = meta[26]!;
  const lastPage = u32(meta, 32);
  if (type !== P_HASHMETA) throw new ScanInputError(`${FORMAT}: the first page is not a hash metadata page`);
  if (version < 8 || version > 10) throw new ScanInputError(`${FORMAT}: hash format version ${version} is not supported`);
  if (encryption !== 0 || metaFlags & DBMETA_CHKSUM) throw new ScanInputError(`${FORMAT}: encrypted or checksummed databases are not supported`);
  if (pageSize < 512 || pageSize > 65536 || (pageSize & (pageSize - 1)) !== 0) {
    throw new ScanInputError(`${FORMAT}: page size ${pageSize} is impossible`);
  }
  const pageCount = Math.min(lastPage + 1, Math.floor(source.size / pageSize));

  const readOverflow = async (first: number, total: number): Promise<Buffer> => {
    if (total > limits.maxValueBytes) throw new ScanInputError(`${FORMAT}: a record is larger than ${limits.maxValueBytes} bytes`);
    const out = Buffer.alloc(total);
    let done = 0;
    let pgno = first;
    // Each page carries at least one byte, so a chain longer than the total is a loop.
    for (let hops = 0; done < total; hops++) {
      if (hops > total || pgno === 0 || pgno >= pageCount) throw new ScanInputError(`${FORMAT}: broken overflow chain`);
      const page = await readRange(source, pgno * pageSize, pageSize, FORMAT, 'an overflow page');
      const length = u16(page, 22);
      if (page[25] !== P_OVERFLOW || length === 0 || PAGE_HEADER_BYTES + length > pageSize || done + length > total) {
        throw new ScanInputError(`${FORMAT}: broken overflow chain`);
      }
      page.copy(out, done, PAGE_HEADER_BYTES, PAGE_HEADER_BYTES + length);
      done += length;
      pgno = u32(page, 16);
    }
    return out;
  };

  /** An item's bytes: inline, or gathered from its overflow pages. */
  const item = async (page: Buffer, offsets: number[], index: number): Promise<Buffer> => {
    const start = offsets[index]!;
    const end = index === 0 ? pageSize : offsets[index - 1]!;
    if (start < PAGE_HEADER_BYTES + 2 * offsets.length || start >= end || end > pageSize) {
      throw new ScanInputError(`${FORMAT}: a hash page item lies outside its page`);
    }
    switch (page[start]) {
      case H_KEYDATA:
        return page.subarray(start + 1, end);
      case H_OFFPAGE:
        if (start + 12 > end) throw new ScanInputError(`${FORMAT}: a hash page item is truncated`);
        return readOverflow(u32(page, start + 4), u32(page, start + 8));
      case H_DUPLICATE:
      case H_OFFDUP:
        throw new ScanInputError(`${FORMAT}: duplicate records, which rpm never writes`);
      default:
        throw new ScanInputError(`${FORMAT}: unknown hash item type ${page[start]}`);
    }
  };

  let values = 0;
  for (let chunkStart = 1; chunkStart < pageCount; chunkStart += CHUNK_PAGES) {
    const pages = Math.min(CHUNK_PAGES, pageCount - chunkStart);
    const chunk = await readRange(source, chunkStart * pageSize, pages * pageSize, FORMAT, 'a page');
    for (let p = 0; p < pages; p++) {
      const page = chunk.subarray(p * pageSize, (p + 1) * pageSize);
      const pageType = page[25];
      if (pageType !== P_HASH && pageType !== P_HASH_UNSORTED) continue;
      const entries = u16(page, 20);
      if (entries % 2 !== 0 || PAGE_HEADER_BYTES + 2 * entries > pageSize) {
        throw new ScanInputError(`${FORMAT}: a hash page has an impossible entry count`);
      }
      const offsets: number[] = [];
      for (let i = 0; i < entries; i++) offsets.push(u16(page, PAGE_HEADER_BYTES + 2 * i));
      for (let i = 0; i < entries; i += 2) {
        const key = await item(page, offsets, i);
        // Record 0 holds rpm's next instance number, not a header.
        if (key.length === 4 && key.readUInt32LE(0) === 0) continue;
        if (++values > limits.maxValues) throw new ScanInputError(`${FORMAT}: more than ${limits.maxValues} records`);
        const value = await item(page, offsets, i + 1);
        if (value.length > limits.maxValueBytes) throw new ScanInputError(`${FORMAT}: a record is larger than ${limits.maxValueBytes} bytes`);
        yield Buffer.from(value);
      }
    }
  }
}
