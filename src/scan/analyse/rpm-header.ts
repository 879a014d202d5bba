/**
 * The rpm header "blob" as every rpm database stores it (rpm's lib/header.c, documented in
 * rpm's docs/manual/format.md as the header structure minus its 8-byte magic): a big-endian
 * index count and data length, the index entries (tag, type, offset, count; 16 bytes each),
 * then the data store the offsets point into. Databases from an image are untrusted, so every
 * count and offset is checked against the blob before it is used.
 */
import type { Package } from '../types.ts';
import { ScanInputError } from './analyser.ts';

export const TAG_NAME = 1000;
export const TAG_VERSION = 1001;
export const TAG_RELEASE = 1002;
export const TAG_EPOCH = 1003;
export const TAG_ARCH = 1022;
export const TAG_SOURCERPM = 1044;

const TYPE_INT32 = 4;
const TYPE_STRING = 6;
const TYPE_STRING_ARRAY = 8;
const TYPE_I18NSTRING = 9;

/** rpm itself refuses headers past these (hdrchkTags, hdrchkData). */
const MAX_INDEX_ENTRIES = 0xffff;
const MAX_DATA_BYTES = 0xffffff;

interface IndexEntry {
  type: number;
  offset: number;
  count: number;
}

export interface RpmHeader {
  /** The first string of a string tag; undefined when the tag is absent. */
  string(tag: number): string | undefined;
  /** The first value of an INT32 tag; undefined when absent. */
  int32(tag: number): number | undefined;
}

export function parseRpmHeader(blob: Buffer): RpmHeader {
  if (blob.length < 8) throw new ScanInputError('corrupt rpm database: a package header is truncated');
  const indexCount = blob.readUInt32BE(0);
  const dataLength = blob.readUInt32BE(4);
  if (indexCount === 0 || indexCount > MAX_INDEX_ENTRIES || dataLength > MAX_DATA_BYTES) {
    throw new ScanInputError('corrupt rpm database: a package header has impossible sizes');
  }
  const dataStart = 8 + indexCount * 16;
  if (dataStart + dataLength > blob.length) {
    throw new ScanInputError('corrupt rpm database: a package header is larger than its record');
  }
  const data = blob.subarray(dataStart, dataStart + dataLength);
  const entries = new Map<number, IndexEntry>();
  for (let i = 0; i < indexCount; i++) {
    const at = 8 + i * 16;
    const tag = blob.readUInt32BE(at);
    const entry = { type: blob.readUInt32BE(at + 4), offset: blob.readUInt32BE(at + 8), count: blob.readUInt32BE(at + 12) };
    if (entry.offset >= dataLength && entry.count > 0) {
      throw new ScanInputError('corrupt rpm database: a package header points outside its data');
    }
    if (!entries.has(tag)) entries.set(tag, entry);
  }
  return {
    string(tag) {
      const entry = entries.get(tag);
      if (!entry) return undefined;
      if (entry.type !== TYPE_STRING && entry.type !== TYPE_STRING_ARRAY && entry.type !== TYPE_I18NSTRING) {
        throw new ScanInputError(`corrupt rpm database: header tag ${tag} is not a string`);
      }
      const end = data.indexOf(0, entry.offset);
      if (end === -1) throw new ScanInputError(`corrupt rpm database: header tag ${tag} is not terminated`);
      return data.toString('utf8', entry.offset, end);
    },
    int32(tag) {
      const entry = entries.get(tag);
      if (!entry) return undefined;
      if (entry.type !== TYPE_INT32 || entry.count < 1 || entry.offset % 4 !== 0 || entry.offset + 4 > dataLength) {
        throw new ScanInputError(`corrupt rpm database: header tag ${tag} is not a number`);
      }
      return data.readUInt32BE(entry.offset);
    },
  };
}

/**
 * The package a header describes, or undefined for rpm's pseudo-packages (the imported
 * signing keys, "gpg-pubkey"). The version is rpm's EVR, "[epoch:]version-release", with the
 * epoch written only when it is set and not 0: rpm compares a missing epoch as 0, so the two
 * spellings are the same version and the short one is what `rpm -q` prints.
 */
export function rpmPackage(header: RpmHeader, path: string): Package | undefined {
  const name = header.string(TAG_NAME);
  const version = header.string(TAG_VERSION);
  const release = header.string(TAG_RELEASE);
  if (!name || version === undefined || release === undefined) {
    throw new ScanInputError('corrupt rpm database: a package header has no name, version or release');
  }
  if (name === 'gpg-pubkey') return undefined;
  const epoch = header.int32(TAG_EPOCH);
  const pkg: Package = {
    ecosystem: 'rpm',
    name,
    version: `${epoch ? `${epoch}:` : ''}${version}-${release}`,
    path,
  };
  const arch = header.string(TAG_ARCH);
  if (arch) pkg.arch = arch;
  const sourceName = sourceRpmName(header.string(TAG_SOURCERPM));
  if (sourceName) pkg.sourceName = sourceName;
  return pkg;
}

/** "openssl-3.0.7-24.el9.src.rpm" -> "openssl": the name is what precedes the last two dashes. */
export function sourceRpmName(sourceRpm: string | undefined): string | undefined {
  if (!sourceRpm) return undefined;
  const base = sourceRpm.replace(/\.(no)?src\.rpm$/, '');
  const release = base.lastIndexOf('-');
  const version = release > 0 ? base.lastIndexOf('-', release - 1) : -1;
  return version > 0 ? base.slice(0, version) : undefined;
}
