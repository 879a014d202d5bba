import type { AffectedRange, VulnAffected, VulnRecord } from '../types.ts';
import { normalisePythonName } from '../analyse/python.ts';

/**
 * OSV records (https://ossf.github.io/osv-schema/) as the database keeps them: one VulnRecord
 * per record, one VulnAffected per `affected[]` entry that names a package. Only the fields
 * findings use are read; anything malformed in an optional field is dropped rather than
 * refused, as one odd record of an export of a hundred thousand must not stop the import.
 */

/** "Debian:12" -> "Debian", "Red Hat:enterprise_linux:9::baseos" -> "Red Hat", "npm" -> "npm". */
export function ecosystemFamily(ecosystem: string): string {
  const i = ecosystem.indexOf(':');
  return i < 0 ? ecosystem : ecosystem.slice(0, i);
}

/** The source name of an OSV ecosystem family's records. */
export function osvSourceName(family: string): string {
  return `osv:${family}`;
}

export interface MappedOsvRecord {
  /** The record without its source (set per family by the caller). */
  record: Omit<VulnRecord, 'source'>;
  /** Affected rows by ecosystem family, without their source. */
  affectedByFamily: Map<string, Array<Omit<VulnAffected, 'source'>>>;
}

export type OsvMapResult = { kind: 'record'; value: MappedOsvRecord } | { kind: 'withdrawn' } | { kind: 'invalid'; reason: string };

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function str(v: unknown): string | undefined {
  return typeof v === 'string' ? v : undefined;
}

function strings(v: unknown): string[] {
  return Array.isArray(v) ? v.filter((x): x is string => typeof x === 'string') : [];
}

const RANGE_TYPES = new Set(['ECOSYSTEM', 'SEMVER', 'GIT']);
const EVENT_KEYS = ['introduced', 'fixed', 'last_affected', 'limit'] as const;

function ranges(v: unknown): AffectedRange[] {
  if (!Array.isArray(v)) return [];
  const out: AffectedRange[] = [];
  for (const r of v) {
    if (!isObject(r) || typeof r['type'] !== 'string' || !RANGE_TYPES.has(r['type']) || !Array.isArray(r['events'])) continue;
    const events: AffectedRange['events'] = [];
    for (const e of r['events']) {
      if (!isObject(e)) continue;
      const event: AffectedRange['events'][number] = {};
      for (const k of EVENT_KEYS) {
        const value = str(e[k]);
        if (value !== undefined) event[k] = value;
      }
      if (Object.keys(event).length > 0) events.push(event);
    }
    out.push({ type: r['type'] as AffectedRange['type'], events });
  }
  return out;
}

function severities(v: unknown): Array<{ type: string; score: string }> {
  if (!Array.isArray(v)) return [];
  return v.flatMap((s) => (isObject(s) && typeof s['type'] === 'string' && typeof s['score'] === 'string' ? [{ type: s['type'], score: s['score'] }] : []));
}

/**
 * A distro's own rating as it writes it, or undefined when it gives none. The Debian tracker
 * marks ratings it inferred with trailing asterisks ("low*", "medium**"); "not yet assigned"
 * means none.
 */
export function cleanDistroSeverity(v: unknown): string | undefined {
  if (typeof v !== 'string') return undefined;
  const s = v.replace(/\*+$/, '').trim();
  if (s === '' || s.toLowerCase() === 'not yet assigned') return undefined;
  return s;
}

/**
 * Where OSV exports put a distro's rating for one package: Debian's converter writes
 * `ecosystem_specific.urgency`, Ubuntu's `ecosystem_specific.priority` (and a record-level
 * severity of type "Ubuntu"), others `database_specific.severity`.
 */
function distroSeverityOf(affected: Record<string, unknown>, recordSeverity: Array<{ type: string; score: string }>): string | undefined {
  for (const bag of [affected['ecosystem_specific'], affected['database_specific']]) {
    if (!isObject(bag)) continue;
    for (const key of ['urgency', 'priority', 'severity']) {
      const s = cleanDistroSeverity(bag[key]);
      if (s !== undefined) return s;
    }
  }
  return cleanDistroSeverity(recordSeverity.find((s) => s.type === 'Ubuntu')?.score);
}

function uniq(values: string[]): string[] {
  return [...new Set(values)];
}

/** Maps one parsed OSV JSON document. */
export function mapOsvRecord(doc: unknown): OsvMapResult {
  if (!isObject(doc)) return { kind: 'invalid', reason: 'not a JSON object' };
  const id = str(doc['id']);
  if (id === undefined || id === '') return { kind: 'invalid', reason: 'no "id"' };
  if (doc['withdrawn'] !== undefined && doc['withdrawn'] !== null) return { kind: 'withdrawn' };

  let severity = severities(doc['severity']);
  const affectedByFamily = new Map<string, Array<Omit<VulnAffected, 'source'>>>();
  const affectedList = Array.isArray(doc['affected']) ? doc['affected'] : [];
  for (const a of affectedList) {
    if (!isObject(a) || !isObject(a['package'])) continue;
    const ecosystem = str(a['package']['ecosystem']);
    const name = str(a['package']['name']);
    if (!ecosystem || !name) continue;
    // OSV 1.6 allows a severity per affected package; findings show the record's.
    severity = [...severity, ...severities(a['severity']).filter((s) => !severity.some((t) => t.type === s.type && t.score === s.score))];
    // PyPI names are compared as PEP 503 normalises them (PyYAML, pyyaml and py_yaml are one
    // project); the Python analyser reports them so, and the store looks names up exactly.
    const packageName = ecosystem === 'PyPI' ? normalisePythonName(name) : name;
    const row: Omit<VulnAffected, 'source'> = { vulnId: id, ecosystem, package: packageName, ranges: ranges(a['ranges']), versions: strings(a['versions']) };
    const distroSeverity = distroSeverityOf(a, severities(doc['severity']));
    if (distroSeverity !== undefined) row.distroSeverity = distroSeverity;
    const family = ecosystemFamily(ecosystem);
    let rows = affectedByFamily.get(family);
    if (!rows) affectedByFamily.set(family, (rows = []));
    rows.push(row);
  }

  const record: Omit<VulnRecord, 'source'> = {
    id,
    aliases: uniq(strings(doc['aliases'])),
    related: uniq([...strings(doc['upstream']), ...strings(doc['related'])]),
    severity,
    references: Array.isArray(doc['references']) ? doc['references'].flatMap((r) => (isObject(r) && typeof r['url'] === 'string' ? [{ type: str(r['type']) ?? 'WEB', url: r['url'] }] : [])) : [],
  };
  for (const key of ['summary', 'details', 'published', 'modified'] as const) {
    const value = str(doc[key]);
    if (value !== undefined) record[key] = value;
  }
  return { kind: 'record', value: { record, affectedByFamily } };
}

/** Epoch ms of an RFC 3339 time, or undefined when it does not parse. */
export function timeMs(rfc3339: string | undefined): number | undefined {
  if (rfc3339 === undefined) return undefined;
  const t = Date.parse(rfc3339);
  return Number.isFinite(t) ? t : undefined;
}
