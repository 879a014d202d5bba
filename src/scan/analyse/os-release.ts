import type { FileFacts, OsInfo } from '../types.ts';
import type { AnalyserInput, EntryInfo, FileAnalyser } from './analyser.ts';

/**
 * The image's operating system. os-release(5) first; images too old to have it (CentOS 6, Debian
 * before 7, Alpine before 3.4...) are identified by their legacy release files. Every file is
 * reported on its own and merge.ts picks the winner, os-release first (see osPrecedence there).
 */
export const osReleaseAnalyser: FileAnalyser = {
  name: 'os-release',
  input: 'buffer',
  maxBytes: 64 * 1024,
  tooLarge: 'skip',
  wants: (entry: EntryInfo) => Object.hasOwn(parsers, entry.path),
  async analyse(entry: EntryInfo, input: AnalyserInput): Promise<FileFacts> {
    if (input.kind !== 'buffer') throw new Error('the os-release analyser reads buffers');
    const os = parsers[entry.path]?.(input.data.toString('utf8'));
    return os ? { os } : {};
  },
};

const parsers: Record<string, (text: string) => OsInfo | undefined> = {
  'etc/os-release': parseOsRelease,
  'usr/lib/os-release': parseOsRelease,
  'etc/lsb-release': parseLsbRelease,
  'etc/alpine-release': parseAlpineRelease,
  'etc/debian_version': parseDebianVersion,
  'etc/redhat-release': parseRedHatRelease,
  'etc/centos-release': parseRedHatRelease,
  'etc/rocky-release': parseRedHatRelease,
  'etc/almalinux-release': parseRedHatRelease,
  'etc/fedora-release': parseRedHatRelease,
};

/**
 * Shell-style assignments as os-release(5) describes them: KEY=value, the value optionally in
 * single or double quotes, with backslash escapes inside double quotes; '#' lines are comments.
 */
export function parseAssignments(text: string): Map<string, string> {
  const values = new Map<string, string>();
  for (const rawLine of text.split(/\r?\n/)) {
    const line = rawLine.trim();
    if (line === '' || line.startsWith('#')) continue;
    const match = /^([A-Za-z_][A-Za-z0-9_]*)=(.*)$/.exec(line);
    if (!match) continue;
    values.set(match[1]!, unquote(match[2]!));
  }
  return values;
}

function unquote(value: string): string {
  if (value.length >= 2 && value.startsWith("'") && value.endsWith("'")) return value.slice(1, -1);
  if (value.length >= 2 && value.startsWith('"') && value.endsWith('"')) return value.slice(1, -1).replace(/\\([\\$"`])/g, '$1');
  return value;
}

function osInfo(id: string, versionId: string, codename: string | undefined, prettyName: string | undefined): OsInfo {
  const os: OsInfo = { id, versionId };
  if (codename) os.codename = codename;
  if (prettyName) os.prettyName = prettyName;
  return os;
}

function parseOsRelease(text: string): OsInfo {
  const values = parseAssignments(text);
  // os-release(5): ID defaults to "linux" when absent.
  const id = (values.get('ID') || 'linux').toLowerCase();
  return osInfo(id, values.get('VERSION_ID') ?? '', values.get('VERSION_CODENAME') || undefined, values.get('PRETTY_NAME') || undefined);
}

function parseLsbRelease(text: string): OsInfo | undefined {
  const values = parseAssignments(text);
  const id = values.get('DISTRIB_ID');
  if (!id) return undefined;
  return osInfo(id.toLowerCase(), values.get('DISTRIB_RELEASE') ?? '', values.get('DISTRIB_CODENAME') || undefined, values.get('DISTRIB_DESCRIPTION') || undefined);
}

function firstLine(text: string): string {
  return text.split(/\r?\n/, 1)[0]!.trim();
}

function parseAlpineRelease(text: string): OsInfo | undefined {
  const version = firstLine(text);
  return version ? osInfo('alpine', version, undefined, undefined) : undefined;
}

/**
 * "12.5" on a release (os-release's VERSION_ID is the major alone, "12"), "bookworm/sid" on
 * testing and unstable, which have no version; old releases wrote "6.0.10" or "5.0".
 */
function parseDebianVersion(text: string): OsInfo | undefined {
  const line = firstLine(text);
  if (!line) return undefined;
  const major = /^(\d+)(?:\.|$)/.exec(line);
  return osInfo('debian', major ? major[1]! : '', undefined, `Debian ${line}`);
}

/** The os-release IDs of the distributions whose release line starts with these names. */
const redHatFamily: Array<[RegExp, string]> = [
  [/^Red Hat Enterprise Linux/i, 'rhel'],
  [/^Rocky Linux/i, 'rocky'],
  [/^AlmaLinux/i, 'almalinux'],
  [/^CentOS/i, 'centos'],
  [/^Fedora/i, 'fedora'],
  [/^Oracle Linux/i, 'ol'],
];

/** "Rocky Linux release 9.3 (Blue Onyx)", "CentOS release 6.10 (Final)", "Fedora release 40 (Forty)". */
function parseRedHatRelease(text: string): OsInfo | undefined {
  const line = firstLine(text);
  const match = /^(.*?)\s+release\s+(\S+)/i.exec(line);
  if (!match) return undefined;
  const id = redHatFamily.find(([pattern]) => pattern.test(match[1]!))?.[1];
  if (!id) return undefined;
  // CentOS's os-release says VERSION_ID="7" where this line says "7.9.2009"; keep to its spelling.
  const versionId = id === 'centos' ? match[2]!.split('.')[0]! : match[2]!;
  // The name in parentheses is not a codename in os-release's sense ("Final", "Core").
  return osInfo(id, versionId, undefined, line);
}
