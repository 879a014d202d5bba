/**
 * Just enough of ELF (the System V gABI, "Object Files" chapter) to find a named section or the
 * bytes at a virtual address: the Go build info and cargo-auditable's `.dep-v0` live there.
 * Every offset and count comes from a file an image supplied, so each is checked against the
 * file's size before it is used, and nothing is allocated from a size the file states without
 * a caller's limit.
 */
import { ScanInputError } from './analyser.ts';
import type { ByteSource } from './byte-source.ts';
import { readRange as readBytes } from './byte-source.ts';

export const ELF_MAGIC = Buffer.from([0x7f, 0x45, 0x4c, 0x46]);

/** Section type without bytes in the file (.bss). */
export const SHT_NOBITS = 8;
/** Section index meaning "the real value is in section 0" (gABI extended numbering). */
const SHN_XINDEX = 0xffff;
export const PT_LOAD = 1;
export const PF_X = 1;
export const PF_W = 2;

/** Real executables have tens of sections; a header claiming more is not worth believing. */
const MAX_SECTIONS = 65_536;
const MAX_SEGMENTS = 4096;

export interface ElfSection {
  name: string;
  type: number;
  flags: number;
  addr: number;
  offset: number;
  size: number;
}

export interface ElfSegment {
  type: number;
  flags: number;
  offset: number;
  vaddr: number;
  fileSize: number;
  memSize: number;
}

export interface ElfFile {
  is64: boolean;
  littleEndian: boolean;
  sections: ElfSection[];
  segments: ElfSegment[];
  source: ByteSource;
}

export function isElf(head: Buffer): boolean {
  return head.length >= 4 && head.subarray(0, 4).equals(ELF_MAGIC);
}

/** Bytes of the file, refusing ranges outside it. */
function readRange(source: ByteSource, offset: number, length: number, what: string): Promise<Buffer> {
  return readBytes(source, offset, length, 'corrupt ELF file', what);
}

interface Reader {
  u16(b: Buffer, at: number): number;
  u32(b: Buffer, at: number): number;
  /** A 64-bit field as a number; values past 2^53 are refused (no file is that large). */
  addr(b: Buffer, at: number): number;
}

function reader(is64: boolean, littleEndian: boolean): Reader {
  const u16 = (b: Buffer, at: number) => (littleEndian ? b.readUInt16LE(at) : b.readUInt16BE(at));
  const u32 = (b: Buffer, at: number) => (littleEndian ? b.readUInt32LE(at) : b.readUInt32BE(at));
  const u64 = (b: Buffer, at: number) => {
    const v = littleEndian ? b.readBigUInt64LE(at) : b.readBigUInt64BE(at);
    if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw new ScanInputError('corrupt ELF file: an address or size is out of range');
    return Number(v);
  };
  return { u16, u32, addr: is64 ? u64 : u32 };
}

/** Parses the ELF header, section headers (with their names) and program headers. */
export async function parseElf(source: ByteSource): Promise<ElfFile> {
  if (source.size < 52) throw new ScanInputError('corrupt ELF file: shorter than an ELF header');
  const ident = await source.read(0, 16);
  if (!isElf(ident)) throw new ScanInputError('not an ELF file');
  const cls = ident[4];
  const data = ident[5];
  if ((cls !== 1 && cls !== 2) || (data !== 1 && data !== 2)) {
    throw new ScanInputError('corrupt ELF file: unknown class or byte order');
  }
  const is64 = cls === 2;
  const littleEndian = data === 1;
  const r = reader(is64, littleEndian);
  const header = await readRange(source, 0, is64 ? 64 : 52, 'the ELF header');
  const phoff = r.addr(header, is64 ? 32 : 28);
  const shoff = r.addr(header, is64 ? 40 : 32);
  const phentsize = r.u16(header, is64 ? 54 : 42);
  let phnum = r.u16(header, is64 ? 56 : 44);
  const shentsize = r.u16(header, is64 ? 58 : 46);
  let shnum = r.u16(header, is64 ? 60 : 48);
  let shstrndx = r.u16(header, is64 ? 62 : 50);
  const shMin = is64 ? 64 : 40;
  const phMin = is64 ? 56 : 32;

  const sections: ElfSection[] = [];
  if (shoff !== 0) {
    if (shentsize < shMin) throw new ScanInputError('corrupt ELF file: section header entries are too small');
    const first = await readRange(source, shoff, shentsize, 'the section header table');
    // Extended numbering: counts too large for the 16-bit fields sit in section 0.
    if (shnum === 0) shnum = r.addr(first, is64 ? 32 : 20);
    if (shstrndx === SHN_XINDEX) shstrndx = r.u32(first, is64 ? 40 : 24);
    if (phnum === 0xffff) phnum = r.u32(first, is64 ? 44 : 28);
    if (shnum > MAX_SECTIONS) throw new ScanInputError('corrupt ELF file: too many sections');
    const table = await readRange(source, shoff, shnum * shentsize, 'the section header table');
    const raw: Array<ElfSection & { nameOffset: number }> = [];
    for (let i = 0; i < shnum; i++) {
      const at = i * shentsize;
      raw.push({
        nameOffset: r.u32(table, at),
        name: '',
        type: r.u32(table, at + 4),
        flags: r.addr(table, at + 8),
        addr: r.addr(table, at + (is64 ? 16 : 12)),
        offset: r.addr(table, at + (is64 ? 24 : 16)),
        size: r.addr(table, at + (is64 ? 32 : 20)),
      });
    }
    const strtab = raw[shstrndx];
    let names: Buffer | undefined;
    if (strtab && strtab.type !== SHT_NOBITS && strtab.size <= 16 * 1024 * 1024) {
      names = await readRange(source, strtab.offset, strtab.size, 'the section name table');
    }
    for (const { nameOffset, ...section } of raw) {
      if (names && nameOffset < names.length) {
        const end = names.indexOf(0, nameOffset);
        section.name = names.toString('latin1', nameOffset, end === -1 ? names.length : end);
      }
      sections.push(section);
    }
  }

  const segments: ElfSegment[] = [];
  if (phoff !== 0 && phnum > 0) {
    if (phentsize < phMin) throw new ScanInputError('corrupt ELF file: program header entries are too small');
    if (phnum > MAX_SEGMENTS) throw new ScanInputError('corrupt ELF file: too many program headers');
    const table = await readRange(source, phoff, phnum * phentsize, 'the program header table');
    for (let i = 0; i < phnum; i++) {
      const at = i * phentsize;
      segments.push(
        is64
          ? {
              type: r.u32(table, at),
              flags: r.u32(table, at + 4),
              offset: r.addr(table, at + 8),
              vaddr: r.addr(table, at + 16),
              fileSize: r.addr(table, at + 32),
              memSize: r.addr(table, at + 40),
            }
          : {
              type: r.u32(table, at),
              offset: r.addr(table, at + 4),
              vaddr: r.addr(table, at + 8),
              fileSize: r.addr(table, at + 16),
              memSize: r.addr(table, at + 20),
              flags: r.u32(table, at + 24),
            },
      );
    }
  }
  return { is64, littleEndian, sections, segments, source };
}

export function findSection(elf: ElfFile, name: string): ElfSection | undefined {
  return elf.sections.find((s) => s.name === name);
}

/** A section's bytes; refuses sections larger than `maxBytes` and those without bytes in the file. */
export async function readSection(elf: ElfFile, section: ElfSection, maxBytes: number): Promise<Buffer> {
  if (section.type === SHT_NOBITS) return Buffer.alloc(0);
  if (section.size > maxBytes) {
    throw new ScanInputError(`ELF section ${section.name} is larger than ${maxBytes} bytes`);
  }
  return readRange(elf.source, section.offset, section.size, `section ${section.name}`);
}

/**
 * Up to `length` bytes at virtual address `vaddr`, as the loader would map them: from the
 * PT_LOAD segment holding the address (fewer bytes when the segment's file image ends sooner).
 * Undefined when no segment holds it.
 */
export async function readVirtual(elf: ElfFile, vaddr: number, length: number): Promise<Buffer | undefined> {
  for (const seg of elf.segments) {
    if (seg.type !== PT_LOAD || vaddr < seg.vaddr || vaddr >= seg.vaddr + seg.fileSize) continue;
    const skip = vaddr - seg.vaddr;
    const n = Math.min(length, seg.fileSize - skip);
    return readRange(elf.source, seg.offset + skip, n, 'a loaded segment');
  }
  // Sections carry addresses too (objects without program headers, or odd linkers).
  for (const sec of elf.sections) {
    if (sec.type === SHT_NOBITS || sec.addr === 0 || vaddr < sec.addr || vaddr >= sec.addr + sec.size) continue;
    const skip = vaddr - sec.addr;
    const n = Math.min(length, sec.size - skip);
    return readRange(elf.source, sec.offset + skip, n, `section ${sec.name}`);
  }
  return undefined;
}

/**
 * What the analysers of executables share (go.ts, rust.ts): they look at files with an execute
 * bit whose first bytes are ELF's, take those up to 16 MiB from memory and larger ones from a
 * temporary file, and skip (noting it) any larger than 512 MiB.
 */
export const elfExecutableInput = {
  input: 'file',
  bufferUpToBytes: 16 * 1024 * 1024,
  maxBytes: 512 * 1024 * 1024,
  tooLarge: 'skip',
  wants: (entry: { mode: number; size: number }) => (entry.mode & 0o111) !== 0 && entry.size >= 64,
  wantsHead: (_entry: unknown, head: Buffer) => isElf(head),
} as const;
