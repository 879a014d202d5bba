import type { Registry } from '../registry/registry.ts';
import type { ScanRecord } from '../store/meta/scan-store.ts';
import { parseStoredFindings, severityCounts, sortFindings, type StoredFindings } from './results.ts';
import type { Finding } from './types.ts';

/** A scan as the API shows it: an index's is made of its platform images' scans. */
export interface ScanView {
  /** ACTIVE: complete, and kept up to date by continuous scanning (ENHANCED, CONTINUOUS_SCAN), as ECR says it. */
  status: 'IN_PROGRESS' | 'COMPLETE' | 'ACTIVE' | 'FAILED' | 'UNSUPPORTED_IMAGE';
  description?: string;
  scanType: 'BASIC' | 'ENHANCED';
  completedAtMs?: number;
  dbUpdatedAtMs?: number;
  counts: Record<string, number>;
  /** Sorted, most severe first; each with the platform image it was found in. Empty unless asked for (withFindings). */
  findings: Array<{ finding: Finding; image: string; stored: StoredFindings }>;
}

/**
 * The views of these images' scans (by digest); images never scanned are absent. `isContinuous`:
 * the repository is continuously scanned now, so its ENHANCED results show as ACTIVE.
 */
export async function scanViews(registry: Registry, repositoryId: number, digests: string[], options: { isContinuous?: boolean; withFindings?: boolean } = {}): Promise<Map<string, ScanView>> {
  const records = await registry.scans.getMany(repositoryId, digests);
  const indexChildren = new Map<string, string[]>();
  for (const r of records.values()) {
    if (r.status === 'INDEX') indexChildren.set(r.digest, ((JSON.parse(r.findings ?? '{}') as { children?: Array<{ digest: string }> }).children ?? []).map((c) => c.digest));
  }
  const wanted = [...new Set([...indexChildren.values()].flat())].filter((d) => !records.has(d));
  const children = wanted.length > 0 ? await registry.scans.getMany(repositoryId, wanted) : new Map<string, ScanRecord>();
  const all = new Map([...children, ...records]);
  const out = new Map<string, ScanView>();
  for (const r of records.values()) {
    const withFindings = options.withFindings === true;
    const view = r.status === 'INDEX' ? indexView(r, (indexChildren.get(r.digest) ?? []).map((d) => all.get(d)), withFindings) : imageView(r, withFindings);
    if (options.isContinuous && view.status === 'COMPLETE' && r.scanType === 'ENHANCED') {
      view.status = 'ACTIVE';
      view.description = 'Continuous scan is selected for image.';
    }
    out.set(r.digest, view);
  }
  return out;
}

function imageView(r: ScanRecord, withFindings: boolean): ScanView {
  const base = { scanType: r.scanType, counts: {}, findings: [] };
  switch (r.status) {
    case 'PENDING':
    case 'IN_PROGRESS':
    case 'INDEX':
      return { ...base, status: 'IN_PROGRESS', description: r.reason === 'manual' ? 'The scan was requested and is in progress.' : 'The image is being scanned.' };
    case 'FAILED':
      return { ...base, status: 'FAILED', description: r.description ?? 'The scan failed.', ...(r.completedAtMs !== null ? { completedAtMs: r.completedAtMs } : {}) };
    case 'UNSUPPORTED_IMAGE':
      return { ...base, status: 'UNSUPPORTED_IMAGE', description: r.description ?? 'UnsupportedImageError: The image is not a container image.' };
    case 'COMPLETE': {
      // The counts are stored beside the findings: a listing of many images parses no findings.
      const stored = withFindings ? parseStoredFindings(r.findings) : undefined;
      const findings = (stored?.findings ?? []).map((finding) => ({ finding, image: r.digest, stored: stored! }));
      return {
        ...base,
        status: 'COMPLETE',
        description: r.description ?? 'The scan was completed successfully.',
        ...(r.completedAtMs !== null ? { completedAtMs: r.completedAtMs } : {}),
        ...(r.dbUpdatedAtMs !== null ? { dbUpdatedAtMs: r.dbUpdatedAtMs } : {}),
        counts: r.severityCounts ? (JSON.parse(r.severityCounts) as Record<string, number>) : severityCounts(stored?.findings ?? []),
        findings,
      };
    }
  }
}

/**
 * An index's scan: IN_PROGRESS while any platform image's scan is, FAILED if one failed (saying
 * which), else COMPLETE with every platform image's findings. Platform images that are not
 * container images (attestations) are left out.
 */
function indexView(index: ScanRecord, children: Array<ScanRecord | undefined>, withFindings: boolean): ScanView {
  const views = children.filter((c): c is ScanRecord => c !== undefined).map((c) => ({ record: c, view: imageView(c, withFindings) }));
  const base = { scanType: index.scanType, counts: {}, findings: [] };
  if (index.status === 'PENDING' || index.status === 'IN_PROGRESS' || views.length < children.length || views.some((v) => v.view.status === 'IN_PROGRESS')) {
    return { ...base, status: 'IN_PROGRESS', description: 'The platform images of the index are being scanned.' };
  }
  const failedChild = views.find((v) => v.view.status === 'FAILED');
  if (failedChild) return { ...base, status: 'FAILED', description: `The scan of platform image ${failedChild.record.digest} failed: ${failedChild.view.description ?? ''}` };
  const complete = views.filter((v) => v.view.status === 'COMPLETE');
  if (complete.length === 0) return { ...base, status: 'UNSUPPORTED_IMAGE', description: 'UnsupportedImageError: The index lists no container image.' };
  const findings = complete.flatMap((v) => v.view.findings);
  const order = new Map(sortFindings(findings.map((f) => f.finding)).map((f, i) => [f, i]));
  findings.sort((a, b) => order.get(a.finding)! - order.get(b.finding)!);
  return {
    ...base,
    status: 'COMPLETE',
    description: 'The scan was completed successfully.',
    completedAtMs: Math.max(...complete.map((v) => v.view.completedAtMs ?? 0)),
    ...(complete.some((v) => v.view.dbUpdatedAtMs !== undefined) ? { dbUpdatedAtMs: Math.min(...complete.map((v) => v.view.dbUpdatedAtMs ?? Infinity)) } : {}),
    counts: sumCounts(complete.map((v) => v.view.counts)),
    findings,
  };
}

function sumCounts(all: Array<Record<string, number>>): Record<string, number> {
  const out: Record<string, number> = {};
  for (const counts of all) for (const [k, n] of Object.entries(counts)) out[k] = (out[k] ?? 0) + n;
  return out;
}
