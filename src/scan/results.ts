import type { Finding, Severity } from './types.ts';

/** ECR's severities, most severe first: the order findings are listed in. */
export const SEVERITY_ORDER: readonly Severity[] = ['CRITICAL', 'HIGH', 'MEDIUM', 'LOW', 'INFORMATIONAL', 'UNDEFINED', 'UNTRIAGED'];

/** What a scan record keeps as its findings (image_scans.findings, JSON). */
export interface StoredFindings {
  v: 1;
  findings: Finding[];
  /** The image's layers in manifest order (a finding's package.layer indexes this). */
  layerDigests: string[];
  platform: { os?: string; architecture?: string };
  /** When each finding (by findingKey) was first seen on this image, epoch ms: Inspector's firstObservedAt. */
  firstObservedMs: Record<string, number>;
  notes: string[];
}

/** A finding's identity across scans: the vulnerability in one package at one path. */
export function findingKey(f: Finding): string {
  return `${f.name}\u0000${f.package.ecosystem}\u0000${f.package.name}\u0000${f.package.version}\u0000${f.package.path}`;
}

/** Most severe first, then by name and package, so pages are stable. */
export function sortFindings(findings: Finding[]): Finding[] {
  const rank = (s: Severity): number => SEVERITY_ORDER.indexOf(s);
  return [...findings].sort(
    (a, b) =>
      rank(a.severity) - rank(b.severity) ||
      cmp(a.name, b.name) ||
      cmp(a.package.name, b.package.name) ||
      cmp(a.package.version, b.package.version) ||
      cmp(a.package.path, b.package.path),
  );
}

function cmp(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** ECR's findingSeverityCounts: only the severities present. */
export function severityCounts(findings: readonly Finding[]): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const f of findings) counts[f.severity] = (counts[f.severity] ?? 0) + 1;
  return counts;
}

/** Builds the stored form, carrying first-seen times over from the previous result. */
export function storeFindings(
  findings: Finding[],
  previous: StoredFindings | undefined,
  context: { layerDigests: string[]; platform: { os?: string; architecture?: string }; notes: string[]; nowMs: number },
): StoredFindings {
  const firstObservedMs: Record<string, number> = {};
  for (const f of findings) {
    const key = findingKey(f);
    firstObservedMs[key] = previous?.firstObservedMs[key] ?? context.nowMs;
  }
  return { v: 1, findings: sortFindings(findings), layerDigests: context.layerDigests, platform: context.platform, firstObservedMs, notes: context.notes };
}

export function parseStoredFindings(text: string | null): StoredFindings | undefined {
  if (!text) return undefined;
  const parsed = JSON.parse(text) as StoredFindings;
  return parsed.v === 1 ? parsed : undefined;
}

/** Findings in `next` not in `previous` (added) and in `previous` not in `next` (fixed). */
export function diffFindings(previous: readonly Finding[], next: readonly Finding[]): { added: Finding[]; fixed: Finding[] } {
  const before = new Set(previous.map(findingKey));
  const after = new Set(next.map(findingKey));
  return { added: next.filter((f) => !before.has(findingKey(f))), fixed: previous.filter((f) => !after.has(findingKey(f))) };
}
