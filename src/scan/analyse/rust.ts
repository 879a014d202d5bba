/**
 * Rust: the crates a project locked (Cargo.lock) and the crates compiled into an executable
 * built with cargo-auditable (its `.dep-v0` ELF section: zlib-compressed JSON).
 *
 * Crates without a source (Cargo.lock) or with source "local" (cargo-auditable) are the
 * project's own workspace and path crates: they are not the crates.io packages advisories
 * name, even when they share a name, so they are left out. cargo-auditable also records
 * build-time crates (build scripts, proc macros); none of their code is in the executable, so
 * only runtime crates are reported.
 */
import { readFile } from 'node:fs/promises';
import { basename } from 'node:path';
import { inflateSync } from 'node:zlib';
import type { FileFacts, Package } from '../types.ts';
import type { EntryInfo, FileAnalyser } from './analyser.ts';
import { ScanInputError } from './analyser.ts';
import { openSource } from './byte-source.ts';
import { elfExecutableInput, findSection, parseElf, readSection } from './elf.ts';

const MAX_DEP_SECTION_BYTES = 4 * 1024 * 1024;
/** cargo-auditable's own reader stops at 8 MiB of JSON. */
const MAX_DEP_JSON_BYTES = 8 * 1024 * 1024;

export const cargoLockAnalyser: FileAnalyser = {
  name: 'cargo-lock',
  input: 'buffer',
  maxBytes: 16 * 1024 * 1024,
  tooLarge: 'skip',
  wants: (entry: EntryInfo) => basename(entry.path) === 'Cargo.lock',
  async analyse(entry, input) {
    const data = input.kind === 'buffer' ? input.data : await readFile(input.path);
    return parseCargoLock(data.toString('utf8'), entry.path);
  },
};

export const cargoAuditableAnalyser: FileAnalyser = {
  name: 'cargo-auditable',
  ...elfExecutableInput,
  async analyse(entry, input) {
    const { source, close } = await openSource(input);
    try {
      const elf = await parseElf(source);
      const section = findSection(elf, '.dep-v0');
      if (!section) return {};
      const compressed = await readSection(elf, section, MAX_DEP_SECTION_BYTES);
      return parseAuditableData(compressed, entry.path);
    } finally {
      await close();
    }
  },
};

/** The `.dep-v0` payload: zlib-compressed JSON `{"packages": [{name, version, source, kind?}, ...]}`. */
export function parseAuditableData(compressed: Buffer, path: string): FileFacts {
  let json: unknown;
  try {
    json = JSON.parse(inflateSync(compressed, { maxOutputLength: MAX_DEP_JSON_BYTES }).toString('utf8'));
  } catch (err) {
    throw new ScanInputError(`${path}: corrupt cargo-auditable dependency data (${(err as Error).message})`, { cause: err });
  }
  const list = (json as { packages?: unknown } | null)?.packages;
  if (!Array.isArray(list)) throw new ScanInputError(`${path}: cargo-auditable dependency data has no package list`);
  const packages: Package[] = [];
  for (const item of list as unknown[]) {
    if (typeof item !== 'object' || item === null) continue;
    const { name, version, source, kind } = item as Record<string, unknown>;
    if (typeof name !== 'string' || typeof version !== 'string' || !name || !version) continue;
    if (kind !== undefined && kind !== 'runtime') continue;
    if (source === 'local') continue;
    packages.push({ ecosystem: 'cargo', name, version, path });
  }
  return packages.length ? { packages } : {};
}

/**
 * Cargo.lock is TOML, but Cargo writes a small and regular part of it: `[[package]]` tables of
 * `key = "string"` pairs and string arrays, plus `version = N` and a `[metadata]` table. That
 * part is read here; a line outside it makes the file unreadable, which is noted rather than
 * failing the scan (a lock file is a hint, not the image's package database).
 */
export function parseCargoLock(text: string, path: string): FileFacts {
  const packages: Package[] = [];
  let current: Record<string, string> | undefined;
  const finish = () => {
    if (current?.name && current.version && current.source) {
      packages.push({ ecosystem: 'cargo', name: current.name, version: current.version, path });
    }
    current = undefined;
  };
  const lines = text.split(/\r?\n/);
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!.trim();
    if (line === '' || line.startsWith('#')) continue;
    if (line.startsWith('[')) {
      finish();
      if (/^\[\[\s*package\s*\]\]$/.test(line)) current = {};
      else if (!/^\[\[?[^\]]*\]\]?$/.test(line)) return unreadable(path, i);
      continue;
    }
    const m = /^("(?:[^"\\]|\\.)*"|[A-Za-z0-9_-]+)\s*=\s*(.*)$/.exec(line);
    if (!m) return unreadable(path, i);
    const value = m[2]!;
    if (value.startsWith('"')) {
      const parsed = tomlString(value);
      if (parsed === undefined) return unreadable(path, i);
      if (current && !m[1]!.startsWith('"')) current[m[1]!] = parsed;
    } else if (value.startsWith('[')) {
      // Arrays (dependencies) hold only strings; skip to the line that closes the array.
      let rest = stripStrings(value);
      while (!rest.includes(']')) {
        if (++i >= lines.length) return unreadable(path, i - 1);
        rest = stripStrings(lines[i]!.trim());
      }
    } else if (!/^[0-9]+$|^true$|^false$/.test(value)) {
      return unreadable(path, i);
    }
  }
  finish();
  return packages.length ? { packages } : {};
}

function unreadable(path: string, index: number): FileFacts {
  return { notes: [`${path}: not a Cargo.lock file this scanner can read (line ${index + 1})`] };
}

/** A TOML basic string that is the whole value (an optional comment may follow); undefined when it is not one. */
function tomlString(value: string): string | undefined {
  const m = /^"((?:[^"\\]|\\.)*)"\s*(#.*)?$/.exec(value);
  if (!m) return undefined;
  try {
    // TOML's basic-string escapes are JSON's plus \UXXXXXXXX, which Cargo never writes.
    return JSON.parse(`"${m[1]}"`) as string;
  } catch {
    return undefined;
  }
}

/** The line with its string literals removed, so that a "]" inside a string does not end an array. */
function stripStrings(line: string): string {
  return line.replace(/"(?:[^"\\]|\\.)*"/g, '""').replace(/#.*$/, '');
}
