import type { FileFacts } from '../types.ts';
import type { AnalyserInput, EntryInfo, FileAnalyser } from './analyser.ts';

/**
 * Installed Python distributions, from their core metadata
 * (https://packaging.python.org/en/latest/specifications/core-metadata/): `*.dist-info/METADATA`
 * (wheels, pip), `*.egg-info/PKG-INFO` (setuptools), and `*.egg-info` as a single file
 * (distutils and Debian's python3-* packages of old).
 */
const metadataFile = /(?:^|\/)[^/]+\.(?:dist-info\/METADATA|egg-info\/PKG-INFO|egg-info)$/;

export const pythonAnalyser: FileAnalyser = {
  name: 'python',
  input: 'buffer',
  // The headers are short, but the body carries the whole README; some are megabytes.
  maxBytes: 16 * 1024 * 1024,
  tooLarge: 'skip',
  wants: (entry: EntryInfo) => metadataFile.test(entry.path),
  async analyse(entry: EntryInfo, input: AnalyserInput): Promise<FileFacts> {
    if (input.kind !== 'buffer') throw new Error('the python analyser reads buffers');
    const headers = parseHeaders(input.data.toString('utf8'));
    const name = headers.get('name');
    const version = headers.get('version');
    if (!name || !version) return {};
    return { packages: [{ ecosystem: 'pypi', name: normalisePythonName(name), version, path: entry.path }] };
  },
};

/** RFC 822-style headers up to the blank line that starts the body; names lower-cased, first value kept. */
function parseHeaders(text: string): Map<string, string> {
  const headers = new Map<string, string>();
  for (const rawLine of text.split('\n')) {
    const line = rawLine.endsWith('\r') ? rawLine.slice(0, -1) : rawLine;
    if (line.trim() === '') break;
    if (line.startsWith(' ') || line.startsWith('\t')) continue;
    const colon = line.indexOf(':');
    if (colon <= 0) continue;
    const key = line.slice(0, colon).trim().toLowerCase();
    if (!headers.has(key)) headers.set(key, line.slice(colon + 1).trim());
  }
  return headers;
}

/** PEP 503 normalisation, as PyPI and OSV's PyPI records name packages. */
export function normalisePythonName(name: string): string {
  return name.toLowerCase().replace(/[-_.]+/g, '-');
}
