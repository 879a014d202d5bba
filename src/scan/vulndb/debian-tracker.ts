import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { streamObject } from 'stream-json/streamers/stream-object.js';
import type { AffectedStatus, VulnAffected } from '../types.ts';
import { cleanDistroSeverity } from './osv.ts';
import type { GenerationWriter } from './writer.ts';
import { DEBIAN_CODENAMES } from '../debian-releases.ts';

/**
 * The Debian security tracker's JSON (https://security-tracker.debian.org/tracker/data/json):
 * `{source package: {issue id: {description, scope, releases: {codename: {status,
 * fixed_version, urgency, nodsa, nodsa_reason, repositories}}}}}`. It says what OSV's Debian
 * records leave out: issues with no fix yet ("open"), those the security team will not fix
 * (`nodsa_reason: "ignored"`) or has put off ("postponed"), and releases it found unaffected.
 *
 * The file is about 70 MB: it is read as a stream, one source package at a time, so memory holds
 * the largest package's entry (the kernel's, a few MB), not the file.
 */

export const DEBIAN_TRACKER_SOURCE = 'debian-tracker';

export { DEBIAN_CODENAMES };

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** The tracker page of an issue, for a finding's uri. */
export function debianTrackerUrl(id: string): string {
  return `https://security-tracker.debian.org/tracker/${encodeURIComponent(id)}`;
}

/**
 * The affected row for one release of one package, or undefined when there is nothing to say:
 *
 * - `resolved` with fixed_version "0": the release never had the flaw (`not_affected`, no ranges);
 * - `resolved` with a version: affected before it (`fixed`, range introduced 0, fixed there);
 * - `open`: affected in every version, with no fix; `nodsa_reason` "ignored" is `will_not_fix`,
 *   "postponed" is `postponed`, anything else (no reason, "no-dsa") is `unfixed`;
 * - `undetermined` (the team has not yet looked): skipped, as is any other status, so that a
 *   guess never shows as a finding.
 */
export function trackerAffected(pkg: string, issue: string, codename: string, release: unknown): VulnAffected | undefined {
  const major = DEBIAN_CODENAMES[codename];
  if (major === undefined || !isObject(release)) return undefined;
  const status = release['status'];
  const fixedVersion = typeof release['fixed_version'] === 'string' ? release['fixed_version'] : undefined;
  const base = { vulnId: issue, ecosystem: `Debian:${major}`, package: pkg, versions: [] as string[], source: DEBIAN_TRACKER_SOURCE };
  let row: VulnAffected;
  if (status === 'resolved') {
    if (fixedVersion === undefined || fixedVersion === '') return undefined;
    row =
      fixedVersion === '0'
        ? { ...base, ranges: [], status: 'not_affected' }
        : { ...base, ranges: [{ type: 'ECOSYSTEM', events: [{ introduced: '0' }, { fixed: fixedVersion }] }], status: 'fixed' };
  } else if (status === 'open') {
    const reason = release['nodsa_reason'];
    const open: AffectedStatus = reason === 'ignored' ? 'will_not_fix' : reason === 'postponed' ? 'postponed' : 'unfixed';
    row = { ...base, ranges: [{ type: 'ECOSYSTEM', events: [{ introduced: '0' }] }], status: open };
  } else {
    return undefined;
  }
  const urgency = cleanDistroSeverity(release['urgency']);
  if (urgency !== undefined) row.distroSeverity = urgency;
  return row;
}

/** Reads a tracker file into the writer under DEBIAN_TRACKER_SOURCE; resolves its sha256 ("sha256:<hex>"). */
export async function readDebianTracker(file: string, writer: GenerationWriter): Promise<{ sha256: string; packages: number }> {
  const hash = createHash('sha256');
  const hashing = new Transform({
    transform(chunk: Buffer, _enc, done) {
      hash.update(chunk);
      done(null, chunk);
    },
  });
  // Keys and strings arrive whole (packed); streaming them piecewise as well would only cost time.
  const packages = streamObject.withParserAsStream({ streamValues: false, packValues: true });
  let count = 0;
  // The store's errors pass through as they are; any other is the file's fault.
  const storeErrors = new WeakSet<object>();
  const write = async (fn: () => Promise<unknown>) => {
    try {
      await fn();
    } catch (err) {
      if (typeof err === 'object' && err !== null) storeErrors.add(err);
      throw err;
    }
  };
  const consume = async (items: AsyncIterable<{ key: string; value: unknown }>): Promise<void> => {
    for await (const { key: pkg, value } of items) {
      count++;
      if (!isObject(value)) throw new Error(`package ${JSON.stringify(pkg)} is not an object`);
      for (const [issue, entry] of Object.entries(value)) {
        if (!isObject(entry)) continue;
        const rows: VulnAffected[] = [];
        if (isObject(entry['releases'])) {
          for (const [codename, release] of Object.entries(entry['releases'])) {
            const row = trackerAffected(pkg, issue, codename, release);
            if (row) rows.push(row);
          }
        }
        if (rows.length === 0) continue;
        const description = typeof entry['description'] === 'string' && entry['description'] !== '' ? entry['description'] : undefined;
        await write(() =>
          writer.addRecord({
          id: issue,
          aliases: [],
          related: [],
          ...(description !== undefined ? { details: description } : {}),
          severity: [],
          references: [{ type: 'WEB', url: debianTrackerUrl(issue) }],
          source: DEBIAN_TRACKER_SOURCE,
          }),
        );
        await write(() => writer.addAffected(rows));
      }
    }
  };
  try {
    await pipeline(createReadStream(file), hashing, packages, consume);
  } catch (err) {
    if (typeof err === 'object' && err !== null && storeErrors.has(err)) throw err;
    throw new Error(`${file}: not a Debian security tracker JSON file (${(err as Error).message})`, { cause: err });
  }
  return { sha256: `sha256:${hash.digest('hex')}`, packages: count };
}
