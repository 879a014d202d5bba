import type { FileFacts } from '../types.ts';
import type { AnalyserInput, EntryInfo, FileAnalyser } from './analyser.ts';

/**
 * An installed package's manifest: node_modules/<name>/package.json or
 * node_modules/@scope/<name>/package.json, at any depth (nested node_modules hold the versions
 * that could not be hoisted). A package.json elsewhere is an application or a package's own
 * test fixture, not something installed, and package-lock.json files are intentions, not facts.
 */
const installedManifest = /(?:^|\/)node_modules\/(?:@[^/]+\/)?[^/@.][^/]*\/package\.json$/;

export const npmAnalyser: FileAnalyser = {
  name: 'npm',
  input: 'buffer',
  // Real manifests are a few KiB; the largest on the registry are a few hundred.
  maxBytes: 1024 * 1024,
  tooLarge: 'skip',
  wants: (entry: EntryInfo) => installedManifest.test(entry.path),
  async analyse(entry: EntryInfo, input: AnalyserInput): Promise<FileFacts> {
    if (input.kind !== 'buffer') throw new Error('the npm analyser reads buffers');
    let manifest: unknown;
    try {
      manifest = JSON.parse(input.data.toString('utf8').replace(/^\uFEFF/, ''));
    } catch {
      return {};
    }
    if (typeof manifest !== 'object' || manifest === null) return {};
    const { name, version } = manifest as { name?: unknown; version?: unknown };
    if (typeof name !== 'string' || typeof version !== 'string' || name === '' || version === '') return {};
    return { packages: [{ ecosystem: 'npm', name, version, path: entry.path }] };
  },
};
