import { wildcardMatches } from '../registry/tag-mutability.ts';

/**
 * Which scans a repository gets (ECR's registry scanning configuration, PutRegistryScanningConfiguration):
 *
 * - BASIC: a push is scanned when a SCAN_ON_PUSH rule's filter matches the repository, or the
 *   repository's own (deprecated) `scanOnPush` is set; otherwise scans are manual (StartImageScan).
 * - ENHANCED: the rules alone decide; CONTINUOUS_SCAN scans on push and re-matches whenever a
 *   new vulnerability database is imported, SCAN_ON_PUSH scans on push only. The repository's
 *   own `scanOnPush` is ignored, as ECR ignores it under enhanced scanning.
 *
 * With no configuration an account has ECR's default: BASIC with no rules.
 */

export type ScanFrequency = 'SCAN_ON_PUSH' | 'CONTINUOUS_SCAN' | 'MANUAL';

export interface ScanningFilter {
  filter: string;
  filterType: 'WILDCARD';
}

export interface ScanningRule {
  scanFrequency: ScanFrequency;
  repositoryFilters: ScanningFilter[];
}

export interface ScanningConfiguration {
  scanType: 'BASIC' | 'ENHANCED';
  rules: ScanningRule[];
}

export const DEFAULT_SCANNING: ScanningConfiguration = Object.freeze({ scanType: 'BASIC', rules: [] }) as ScanningConfiguration;

/** What applies to one repository. */
export interface RepositoryScanning {
  scanType: 'BASIC' | 'ENHANCED';
  scanOnPush: boolean;
  scanFrequency: ScanFrequency;
  /** The filters of the rule that applies (empty when none does). */
  appliedScanFilters: ScanningFilter[];
}

/**
 * ECR's scan filters (User Guide, "Filter wildcards"): a filter with a wildcard matches names it
 * matches whole, `*` standing for zero or more characters; a filter without one matches every
 * name that contains it.
 */
export function scanFilterMatches(filter: string, repositoryName: string): boolean {
  return filter.includes('*') ? wildcardMatches(filter, repositoryName) : repositoryName.includes(filter);
}

function matching(config: ScanningConfiguration, frequency: ScanFrequency, repositoryName: string): ScanningRule | undefined {
  return config.rules.find((r) => r.scanFrequency === frequency && r.repositoryFilters.some((f) => scanFilterMatches(f.filter, repositoryName)));
}

export function repositoryScanning(config: ScanningConfiguration, repositoryName: string, repositoryScanOnPush: boolean): RepositoryScanning {
  if (config.scanType === 'ENHANCED') {
    const continuous = matching(config, 'CONTINUOUS_SCAN', repositoryName);
    if (continuous) return { scanType: 'ENHANCED', scanOnPush: true, scanFrequency: 'CONTINUOUS_SCAN', appliedScanFilters: continuous.repositoryFilters };
    const onPush = matching(config, 'SCAN_ON_PUSH', repositoryName);
    if (onPush) return { scanType: 'ENHANCED', scanOnPush: true, scanFrequency: 'SCAN_ON_PUSH', appliedScanFilters: onPush.repositoryFilters };
    return { scanType: 'ENHANCED', scanOnPush: false, scanFrequency: 'MANUAL', appliedScanFilters: [] };
  }
  const onPush = matching(config, 'SCAN_ON_PUSH', repositoryName);
  if (onPush) return { scanType: 'BASIC', scanOnPush: true, scanFrequency: 'SCAN_ON_PUSH', appliedScanFilters: onPush.repositoryFilters };
  if (repositoryScanOnPush) return { scanType: 'BASIC', scanOnPush: true, scanFrequency: 'SCAN_ON_PUSH', appliedScanFilters: [] };
  return { scanType: 'BASIC', scanOnPush: false, scanFrequency: 'MANUAL', appliedScanFilters: [] };
}

/** Whether the repository's images are re-matched after every import (ENHANCED, a CONTINUOUS_SCAN rule). */
export function isContinuouslyScanned(config: ScanningConfiguration, repositoryName: string): boolean {
  return repositoryScanning(config, repositoryName, false).scanFrequency === 'CONTINUOUS_SCAN';
}

/** Reads a stored configuration (written by putRegistryScanningConfiguration, so already valid). */
export function storedScanning(row: { scanType: 'BASIC' | 'ENHANCED'; rules: string } | undefined): ScanningConfiguration {
  if (!row) return DEFAULT_SCANNING;
  return { scanType: row.scanType, rules: JSON.parse(row.rules) as ScanningRule[] };
}
