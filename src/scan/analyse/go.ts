/**
 * Go executables: the toolchain version and the modules they were built from, as the linker
 * records them in the build info (what `go version -m` prints). The format is Go's own
 * (src/debug/buildinfo): a 32-byte header starting "\xff Go buildinf:" at a 16-byte aligned
 * address of the data segment, then either the two strings inline (Go 1.18 and later) or
 * pointers to Go string headers (older releases).
 */
import type { Package } from '../types.ts';
import type { FileAnalyser } from './analyser.ts';
import { ScanInputError } from './analyser.ts';
import type { ElfFile } from './elf.ts';
import { openSource, readRange } from './byte-source.ts';
import { PF_W, PF_X, PT_LOAD, SHT_NOBITS, elfExecutableInput, findSection, parseElf, readVirtual } from './elf.ts';

const MAGIC = Buffer.from('\xff Go buildinf:', 'latin1');
const HEADER_BYTES = 32;
/** Go itself looks no further than this into the data segment for the header. */
const SEARCH_BYTES = 64 * 1024;
const FLAG_BIG_ENDIAN = 1;
const FLAG_INLINE = 2;
const MAX_VERSION_BYTES = 1024;
/** The module list of the largest real binaries is a few hundred KiB. */
const MAX_MODINFO_BYTES = 16 * 1024 * 1024;

export interface GoBuildInfo {
  /** As the binary writes it: "go1.21.3", "go1.22.0 X:nocoverageredesign", "devel go1.23-abc". */
  goVersion: string;
  /** The module list text (`path`, `mod`, `dep`, `=>` and `build` lines), without its sentinels. */
  modInfo: string;
}

export const goAnalyser: FileAnalyser = {
  name: 'go-binary',
  ...elfExecutableInput,
  async analyse(entry, input) {
    const { source, close } = await openSource(input);
    try {
      const elf = await parseElf(source);
      const info = await readGoBuildInfo(elf);
      if (!info) return {};
      if ('unresolved' in info) {
        return { notes: [`${entry.path}: Go build info of a position-independent binary from before Go 1.18 not read`] };
      }
      const packages = goPackages(info, entry.path);
      return packages.length ? { packages } : {};
    } finally {
      await close();
    }
  },
};

/** The build info of a Go executable; undefined when the file holds none (not built by Go). */
export async function readGoBuildInfo(elf: ElfFile): Promise<GoBuildInfo | { unresolved: true } | undefined> {
  const start = dataStart(elf);
  if (!start) return undefined;
  const window = await readRange(elf.source, start.offset, Math.min(start.size, SEARCH_BYTES), 'corrupt Go build info', 'the build info');
  let at = -1;
  for (let i = 0; i + HEADER_BYTES <= window.length; i += 16) {
    if (window.subarray(i, i + MAGIC.length).equals(MAGIC)) {
      at = i;
      break;
    }
  }
  if (at === -1) return undefined;
  const header = window.subarray(at, at + HEADER_BYTES);
  const ptrSize = header[14]!;
  const flags = header[15]!;
  let goVersion: string;
  let modInfo: Buffer;
  if (flags & FLAG_INLINE) {
    let offset = start.offset + at + HEADER_BYTES;
    const version = await readInlineString(elf, offset, MAX_VERSION_BYTES);
    offset = version.next;
    goVersion = version.bytes.toString('utf8');
    modInfo = (await readInlineString(elf, offset, MAX_MODINFO_BYTES)).bytes;
  } else {
    if (ptrSize !== 4 && ptrSize !== 8) throw new ScanInputError('corrupt Go build info: bad pointer size');
    const bigEndian = (flags & FLAG_BIG_ENDIAN) !== 0;
    const readPtr = (b: Buffer, o: number): number => {
      if (ptrSize === 4) return bigEndian ? b.readUInt32BE(o) : b.readUInt32LE(o);
      const v = bigEndian ? b.readBigUInt64BE(o) : b.readBigUInt64LE(o);
      if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw new ScanInputError('corrupt Go build info: pointer out of range');
      return Number(v);
    };
    // Undefined when a pointer leads nowhere: in a position-independent executable the
    // pointers are filled in by relocations at load time and the file holds zeros.
    const readString = async (headerAddr: number, limit: number): Promise<Buffer | undefined> => {
      const hdr = await readVirtual(elf, headerAddr, 2 * ptrSize);
      if (!hdr || hdr.length < 2 * ptrSize) return undefined;
      const dataAddr = readPtr(hdr, 0);
      const length = readPtr(hdr, ptrSize);
      if (length > limit) throw new ScanInputError('corrupt Go build info: string too long');
      if (length === 0) return Buffer.alloc(0);
      const data = await readVirtual(elf, dataAddr, length);
      return data && data.length === length ? data : undefined;
    };
    if (header.length < 16 + 2 * ptrSize) throw new ScanInputError('corrupt Go build info: header too short');
    const version = await readString(readPtr(header, 16), MAX_VERSION_BYTES);
    const mod = await readString(readPtr(header, 16 + ptrSize), MAX_MODINFO_BYTES);
    if (!version || !mod) return { unresolved: true };
    goVersion = version.toString('utf8');
    modInfo = mod;
  }
  return { goVersion, modInfo: stripSentinels(modInfo) };
}

/** Where Go's linker puts the header: its own section, else the first writable, non-executable segment. */
function dataStart(elf: ElfFile): { offset: number; size: number } | undefined {
  const section = findSection(elf, '.go.buildinfo');
  if (section && section.type !== SHT_NOBITS) return { offset: section.offset, size: Math.min(section.size, elf.source.size - section.offset) };
  for (const seg of elf.segments) {
    if (seg.type === PT_LOAD && (seg.flags & (PF_X | PF_W)) === PF_W) {
      return { offset: seg.offset, size: Math.max(0, Math.min(seg.fileSize, elf.source.size - seg.offset)) };
    }
  }
  return undefined;
}

/** An unsigned LEB128 length followed by that many bytes, as Go 1.18+ writes the two strings. */
async function readInlineString(elf: ElfFile, offset: number, limit: number): Promise<{ bytes: Buffer; next: number }> {
  const head = await readRange(elf.source, offset, Math.min(10, elf.source.size - offset), 'corrupt Go build info', 'the build info');
  let length = 0;
  let shift = 0;
  let i = 0;
  for (;;) {
    if (i >= head.length || shift > 49) throw new ScanInputError('corrupt Go build info: bad string length');
    const byte = head[i++]!;
    length += (byte & 0x7f) * 2 ** shift;
    shift += 7;
    if ((byte & 0x80) === 0) break;
  }
  if (length > limit) throw new ScanInputError('corrupt Go build info: string too long');
  const data = await readRange(elf.source, offset + i, length, 'corrupt Go build info', 'the build info');
  return { bytes: data, next: offset + i + length };
}

/** cmd/go wraps the module list in 16-byte markers so that it can be found without the header. */
function stripSentinels(bytes: Buffer): string {
  if (bytes.length >= 33 && bytes[bytes.length - 17] === 0x0a) return bytes.subarray(16, bytes.length - 16).toString('utf8');
  return '';
}

/**
 * The packages a build info names: the toolchain as "stdlib", the main module unless it is
 * "(devel)" (built from a checkout with no version), and every dependency. Module versions
 * stay as Go writes them ("v1.2.3"); a dependency replaced by another module with a version is
 * reported as that module (it is the code that was compiled in), one replaced by a local
 * directory keeps the path and version it was required at.
 */
export function goPackages(info: GoBuildInfo, path: string): Package[] {
  const packages: Package[] = [];
  let goLine: string | undefined;
  let last: Package | undefined;
  for (const line of info.modInfo.split('\n')) {
    const fields = line.split('\t');
    const kind = fields[0];
    if (kind === 'go' && fields[1]) goLine = fields[1];
    if ((kind === 'mod' || kind === 'dep') && fields[1]) {
      last = { ecosystem: 'go', name: fields[1], version: fields[2] ?? '', path };
      packages.push(last);
    } else if (kind === '=>' && last && fields[1]) {
      // A local directory replacement is written with version "(devel)" (or none).
      const version = fields[2] ?? '';
      if (version && version !== '(devel)') {
        last.name = fields[1];
        last.version = version;
      }
      last = undefined;
    } else {
      last = undefined;
    }
  }
  const kept = packages.filter((p) => p.version !== '' && p.version !== '(devel)');
  const stdlib = goStdlibVersion(info.goVersion || goLine || '');
  if (stdlib) kept.unshift({ ecosystem: 'go', name: 'stdlib', version: stdlib, path });
  return kept;
}

/**
 * A toolchain version in the semver spelling OSV's Go records use for "stdlib": "go1.21.3" ->
 * "1.21.3", "go1.20" -> "1.20.0", "go1.21rc2" -> "1.21.0-rc.2". Development toolchains
 * ("devel ...") have no release to compare against: undefined.
 */
export function goStdlibVersion(goVersion: string): string | undefined {
  const word = goVersion.trim().split(/\s+/)[0] ?? '';
  const m = /^go(\d+)\.(\d+)(?:\.(\d+))?(?:(alpha|beta|rc)(\d+))?/.exec(word);
  if (!m) return undefined;
  const [, major, minor, patch, pre, preNumber] = m;
  return `${major}.${minor}.${patch ?? '0'}${pre ? `-${pre}.${preNumber}` : ''}`;
}
