import type { FileFacts, Package } from '../types.ts';
import type { AnalyserInput, EntryInfo, FileAnalyser } from './analyser.ts';

/**
 * Alpine packages: apk-tools' installed database, one record per package separated by blank
 * lines, each line a one-letter key, a colon and the value (apk-tools doc/apk-package.5: P name,
 * V version, A architecture, o origin, the source package that Alpine's advisories name).
 */
export const apkAnalyser: FileAnalyser = {
  name: 'apk',
  input: 'buffer',
  maxBytes: 64 * 1024 * 1024,
  tooLarge: 'fail',
  wants: (entry: EntryInfo) => entry.path === 'lib/apk/db/installed',
  async analyse(entry: EntryInfo, input: AnalyserInput): Promise<FileFacts> {
    if (input.kind !== 'buffer') throw new Error('the apk analyser reads buffers');
    const packages = parseInstalled(input.data.toString('utf8'), entry.path);
    return packages.length > 0 ? { packages } : {};
  },
};

function parseInstalled(text: string, path: string): Package[] {
  const packages: Package[] = [];
  let record = new Map<string, string>();
  const finish = () => {
    const name = record.get('P');
    const version = record.get('V');
    if (name && version) {
      const pkg: Package = { ecosystem: 'apk', name, version, path };
      const arch = record.get('A');
      if (arch) pkg.arch = arch;
      const origin = record.get('o');
      if (origin) pkg.sourceName = origin;
      packages.push(pkg);
    }
    record = new Map();
  };
  for (const rawLine of text.split('\n')) {
    const line = rawLine.endsWith('\r') ? rawLine.slice(0, -1) : rawLine;
    if (line === '') {
      finish();
      continue;
    }
    // Keys repeat within a record (F: and R: for each file); only the first of P, V, A, o matters.
    if (line.length >= 2 && line[1] === ':' && !record.has(line[0]!)) record.set(line[0]!, line.slice(2).trim());
  }
  finish();
  return packages;
}
