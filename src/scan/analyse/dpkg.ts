import type { FileFacts, Package } from '../types.ts';
import type { AnalyserInput, EntryInfo, FileAnalyser } from './analyser.ts';

const STATUS_FILE = 'var/lib/dpkg/status';
const STATUS_DIR = 'var/lib/dpkg/status.d/';

/**
 * Debian packages: dpkg's database (var/lib/dpkg/status, deb-control(5) stanzas), and the
 * status.d directory where distroless images keep one stanza per package file, with the
 * package's md5sums beside it.
 */
export const dpkgAnalyser: FileAnalyser = {
  name: 'dpkg',
  input: 'buffer',
  // A full desktop's status file is a few MiB; a layer that says more is not a dpkg database.
  maxBytes: 64 * 1024 * 1024,
  tooLarge: 'fail',
  wants(entry: EntryInfo): boolean {
    if (entry.path === STATUS_FILE) return true;
    if (!entry.path.startsWith(STATUS_DIR)) return false;
    const name = entry.path.slice(STATUS_DIR.length);
    return name !== '' && !name.includes('/') && !name.endsWith('.md5sums');
  },
  async analyse(entry: EntryInfo, input: AnalyserInput): Promise<FileFacts> {
    if (input.kind !== 'buffer') throw new Error('the dpkg analyser reads buffers');
    const packages = parseStanzas(input.data.toString('utf8'))
      .map((stanza) => toPackage(stanza, entry.path))
      .filter((pkg) => pkg !== undefined);
    return packages.length > 0 ? { packages } : {};
  },
};

/**
 * deb822 stanzas: "Field: value" lines, continuation lines starting with a space or tab, stanzas
 * separated by blank lines. Field names are case-insensitive, so they come back lower-cased; a
 * field's value is its first line (continuations matter only for Description and Conffiles).
 */
export function parseStanzas(text: string): Array<Map<string, string>> {
  const stanzas: Array<Map<string, string>> = [];
  let current = new Map<string, string>();
  for (const rawLine of text.split('\n')) {
    const line = rawLine.endsWith('\r') ? rawLine.slice(0, -1) : rawLine;
    if (line.trim() === '') {
      if (current.size > 0) stanzas.push(current);
      current = new Map();
      continue;
    }
    if (line.startsWith(' ') || line.startsWith('\t') || line.startsWith('#')) continue;
    const colon = line.indexOf(':');
    if (colon <= 0) continue;
    current.set(line.slice(0, colon).trim().toLowerCase(), line.slice(colon + 1).trim());
  }
  if (current.size > 0) stanzas.push(current);
  return stanzas;
}

/**
 * dpkg(1) package states whose files are on disk, configured or not: a half-configured or merely
 * unpacked package is as exploitable as an installed one. Not: not-installed, config-files (only
 * conffiles are left) and half-installed (its unpacking failed part-way).
 */
const statesWithFiles = new Set(['installed', 'unpacked', 'half-configured', 'triggers-awaiting', 'triggers-pending']);

function toPackage(stanza: Map<string, string>, path: string): Package | undefined {
  const name = stanza.get('package');
  const version = stanza.get('version');
  if (!name || !version) return undefined;
  // status.d stanzas are copied from the .deb's control file and carry no Status field.
  const status = stanza.get('status');
  if (status !== undefined && !statesWithFiles.has(status.split(/\s+/)[2] ?? '')) return undefined;
  const pkg: Package = { ecosystem: 'deb', name, version, path };
  const arch = stanza.get('architecture');
  if (arch) pkg.arch = arch;
  // "Source: name" or "Source: name (version)" when the source's version differs (binNMUs).
  const source = /^(\S+)(?:\s+\(([^)]+)\))?/.exec(stanza.get('source') ?? '');
  if (source) {
    pkg.sourceName = source[1]!;
    if (source[2] && source[2].trim() !== version) pkg.sourceVersion = source[2].trim();
  }
  return pkg;
}
