import type { KeyObject } from 'node:crypto';
import { mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { VulnDbStore, VulnSourceRow } from '../../store/meta/vulndb-store.ts';
import { extractBundle, type BundleSourceKind } from './bundle.ts';
import { DEBIAN_TRACKER_SOURCE, readDebianTracker } from './debian-tracker.ts';
import { readOsvInput } from './osv-input.ts';
import { osvSourceName } from './osv.ts';
import { sniffInput, type InputKind } from './sniff.ts';
import { GenerationWriter } from './writer.ts';

/**
 * `berth vulndb import`: reads OSV exports, the Debian security tracker JSON and Berth's bundles
 * (docs/scanning.md) into the vulnerability database, atomically: every source the inputs give
 * is written under one new generation and activated in one step, so a failure anywhere leaves
 * the database in use exactly as it was, and a scan never sees half an import.
 */

/** What an import logs: pino's Logger fits. */
export interface ImportLog {
  info(obj: Record<string, unknown>, msg: string): void;
  warn(obj: Record<string, unknown>, msg: string): void;
}

export interface ImportOptions {
  /** The clock for importedAtMs. */
  now?: () => number;
  /** Ed25519 public key (a KeyObject or PEM) that bundles' signatures are checked with. */
  publicKey?: KeyObject | string;
  /**
   * Accept only signed bundles whose signature verifies with `publicKey`: every other input
   * (plain exports, unsigned bundles, bundles with no key to check them) is refused.
   */
  requireSignature?: boolean;
  log?: ImportLog;
  /** Where bundles are unpacked for the import (default: the system's temp directory). */
  tempDir?: string;
}

export interface ImportedSource {
  /** "osv:Debian", "osv:npm", "debian-tracker"... */
  name: string;
  description: string;
  /** The path given (for a bundle's member: the bundle's path). */
  input: string;
  records: number;
  affected: number;
  updatedAtMs: number;
  sha256: string;
}

export interface ImportSummary {
  /** The database version this import made. */
  version: number;
  sources: ImportedSource[];
  /** What an operator should know: records skipped, a bundle's signature not checked... */
  notes: string[];
}

interface PlannedSource {
  name: string;
  description: string;
  input: string;
  sha256: string;
  /** Used when the source's records give no `modified` time. */
  fallbackUpdatedAtMs: number;
}

/** What was read, and from where, for VulnSource.description. */
const KIND_DESCRIPTIONS: Record<Exclude<InputKind, 'bundle'>, string> = {
  'osv-zip': 'OSV all.zip',
  'osv-dir': 'OSV JSON directory',
  'osv-json': 'OSV JSON file',
  'debian-tracker-json': 'Debian security tracker JSON',
};

const BUNDLE_KIND_TO_INPUT: Record<BundleSourceKind, Exclude<InputKind, 'bundle' | 'osv-dir'>> = {
  'osv-zip': 'osv-zip',
  'debian-tracker-json': 'debian-tracker-json',
  'osv-json': 'osv-json',
};

async function mtimeMs(file: string): Promise<number> {
  return Math.floor((await stat(file)).mtimeMs);
}

/**
 * Reads one export into the writer and resolves the sources it gives. `origin` describes a
 * bundle member: its description prefix, hash and time (the bundle's createdAt).
 */
async function readExport(
  file: string,
  kind: Exclude<InputKind, 'bundle'>,
  writer: GenerationWriter,
  notes: string[],
  origin?: { input: string; label: string; sha256: string; createdAtMs: number },
): Promise<PlannedSource[]> {
  const label = origin?.label ?? file;
  const input = origin?.input ?? file;
  const description = origin ? `${origin.label}: ${KIND_DESCRIPTIONS[kind]}` : `${KIND_DESCRIPTIONS[kind]} ${file}`;
  if (kind === 'debian-tracker-json') {
    const { sha256 } = await readDebianTracker(file, writer);
    // The tracker's JSON carries no time of its own: the file's modification time is when it
    // was fetched (or, with `curl -R`, when the tracker last changed it).
    const fallbackUpdatedAtMs = origin?.createdAtMs ?? (await mtimeMs(file));
    return [{ name: DEBIAN_TRACKER_SOURCE, description, input, sha256: origin?.sha256 ?? sha256, fallbackUpdatedAtMs }];
  }
  const result = await readOsvInput(file, kind === 'osv-zip' ? 'zip' : kind === 'osv-dir' ? 'dir' : 'json', writer);
  if (result.families.length === 0) throw new Error(`${label}: none of its OSV records names an affected package`);
  if (result.withdrawn > 0) notes.push(`${label}: ${result.withdrawn} withdrawn records skipped`);
  if (result.ignored > 0) notes.push(`${label}: ${result.ignored} JSON documents that are not OSV records ignored`);
  const fallbackUpdatedAtMs = origin?.createdAtMs ?? (await mtimeMs(file));
  return result.families.map((family) => ({ name: osvSourceName(family), description, input, sha256: origin?.sha256 ?? result.sha256, fallbackUpdatedAtMs }));
}

/**
 * Imports the inputs (paths to OSV all.zip files, directories or files of OSV JSON, Debian
 * tracker JSON files, bundles), telling each by its content. Every source they give replaces
 * the source of that name; sources they do not give stay. Two inputs giving the same source is
 * an error. On any failure nothing changes and the error says what went wrong.
 */
export async function importVulnDb(store: VulnDbStore, inputs: string[], options: ImportOptions = {}): Promise<ImportSummary> {
  if (inputs.length === 0) throw new Error('vulnerability database import: no input given');
  const now = options.now ?? Date.now;
  const kinds = await Promise.all(inputs.map((input) => sniffInput(input)));
  if (options.requireSignature) {
    const plain = inputs.filter((_, i) => kinds[i] !== 'bundle');
    if (plain.length > 0) throw new Error(`vulnerability database import: a signed bundle is required, and ${plain.join(', ')} ${plain.length === 1 ? 'is' : 'are'} not a bundle`);
  }
  const expected = kinds.includes('debian-tracker-json') ? [DEBIAN_TRACKER_SOURCE] : [];
  const generation = await store.beginImport(expected);
  const writer = new GenerationWriter(store, generation);
  const notes: string[] = [];
  const planned: PlannedSource[] = [];
  const temps: string[] = [];
  options.log?.info({ generation, inputs }, 'vulnerability database import started');
  try {
    for (const [i, input] of inputs.entries()) {
      const kind = kinds[i]!;
      let sources: PlannedSource[];
      if (kind === 'bundle') {
        const dir = await mkdtemp(path.join(options.tempDir ?? tmpdir(), 'berth-vulndb-'));
        temps.push(dir);
        const bundle = await extractBundle(input, dir, { publicKey: options.publicKey, requireSignature: options.requireSignature });
        if (bundle.signature === 'unchecked') notes.push(`${input}: the bundle is signed, but no public key is configured: its signature was not checked`);
        if (bundle.signature === 'unsigned') notes.push(`${input}: the bundle is not signed`);
        options.log?.info({ input, bundle: bundle.sha256, signature: bundle.signature, files: bundle.files.map((f) => f.name) }, 'vulnerability database bundle unpacked');
        sources = [];
        for (const f of bundle.files) {
          const origin = { input, label: `bundle ${bundle.sha256} ${f.name}`, sha256: f.sha256, createdAtMs: Date.parse(bundle.manifest.createdAt) };
          sources.push(...(await readExport(f.path, BUNDLE_KIND_TO_INPUT[f.kind], writer, notes, origin)));
          // Each member is read once: its copy goes as soon as it is in the database.
          await rm(f.path, { force: true });
        }
      } else {
        sources = await readExport(input, kind, writer, notes);
      }
      for (const s of sources) {
        const other = planned.find((p) => p.name === s.name);
        if (other) throw new Error(`${s.input} and ${other.input} both give the source ${s.name}; import one of them`);
        planned.push(s);
      }
      options.log?.info({ generation, input, sources: sources.map((s) => s.name) }, 'vulnerability database input read');
    }
    await writer.flush();
    const importedAtMs = now();
    const rows: VulnSourceRow[] = planned.map((p) => {
      const counts = writer.counts.get(p.name) ?? { records: 0, affected: 0, newestModifiedMs: 0 };
      return {
        name: p.name,
        description: p.description,
        updatedAtMs: counts.newestModifiedMs > 0 ? counts.newestModifiedMs : p.fallbackUpdatedAtMs,
        importedAtMs,
        recordCount: counts.records,
        sha256: p.sha256,
      };
    });
    const version = await store.activate(generation, rows);
    const summary: ImportSummary = {
      version,
      sources: rows.map((r, i) => ({
        name: r.name,
        description: r.description,
        input: planned[i]!.input,
        records: r.recordCount,
        affected: writer.counts.get(r.name)?.affected ?? 0,
        updatedAtMs: r.updatedAtMs,
        sha256: r.sha256,
      })),
      notes,
    };
    options.log?.info({ generation, version, sources: summary.sources.map((s) => ({ name: s.name, records: s.records, affected: s.affected })) }, 'vulnerability database import activated');
    return summary;
  } catch (err) {
    try {
      await store.abortImport(generation);
    } catch (abortErr) {
      // The rows stay invisible; sweepAbandoned removes them later.
      options.log?.warn({ generation, err: (abortErr as Error).message }, 'vulnerability database import: could not delete the aborted import');
    }
    const message = (err as Error).message ?? String(err);
    throw new Error(`vulnerability database import failed, the database in use is unchanged: ${message}`, { cause: err });
  } finally {
    for (const dir of temps) await rm(dir, { recursive: true, force: true });
  }
}

export interface VulnDbStatus {
  version: number;
  sources: Array<VulnSourceRow & { ageMs: number }>;
  /** The oldest source's updatedAtMs: the database is as old as its oldest part. Undefined when empty. */
  oldestUpdatedAtMs?: number;
}

/** `berth vulndb status`: the sources with their record counts and age at `nowMs`. */
export async function vulnDbStatus(store: VulnDbStore, nowMs: number = Date.now()): Promise<VulnDbStatus> {
  const { version, sources } = await store.status();
  const status: VulnDbStatus = { version, sources: sources.map((s) => ({ ...s, ageMs: Math.max(0, nowMs - s.updatedAtMs) })) };
  if (sources.length > 0) status.oldestUpdatedAtMs = Math.min(...sources.map((s) => s.updatedAtMs));
  return status;
}
