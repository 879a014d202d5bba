/**
 * Image scanning's state (docs/scanning.md): the registry's scanning configuration, the
 * analysers' cached results per layer and per image, and one scan record per image of a
 * repository, which is also the scan queue. A record is a job: requested (PENDING), claimed
 * under a lease by one node (IN_PROGRESS), finished (COMPLETE or FAILED). A node that dies
 * mid-scan loses its lease and another node claims the record again. A record goes with its
 * image: deleting the manifest deletes it.
 */

export interface RegistryScanningRow {
  scanType: 'BASIC' | 'ENHANCED';
  /** The rules as ECR's API gives them, JSON text. */
  rules: string;
  updatedAtMs: number;
}

/** INDEX: an index, whose status and findings are those of its platform images' records. */
export type ScanRecordStatus = 'PENDING' | 'IN_PROGRESS' | 'COMPLETE' | 'FAILED' | 'UNSUPPORTED_IMAGE' | 'INDEX';

export interface ScanRecord {
  repositoryId: number;
  /** The repository's account and name (read with the record). */
  accountId: string;
  repositoryName: string;
  digest: string;
  status: ScanRecordStatus;
  description: string | null;
  /** Why it was (last) requested: 'push', 'manual', 'index' (a platform image of a scanned index). */
  reason: string;
  scanType: 'BASIC' | 'ENHANCED';
  requestedAtMs: number;
  startedAtMs: number | null;
  completedAtMs: number | null;
  /** The database version the findings were matched at, and the database's age then. */
  dbVersion: number | null;
  dbUpdatedAtMs: number | null;
  /** Findings per severity, JSON text (`{"HIGH": 2}`); null until complete. */
  severityCounts: string | null;
  /** The findings, JSON text (src/scan/types.ts Finding[]); null until complete. */
  findings: string | null;
  /** The last manual request (StartImageScan), for ECR's once-a-day quota. */
  lastManualAtMs: number | null;
  attempts: number;
  leaseOwner: string | null;
  leaseUntilMs: number | null;
}

/** What a finished scan writes. */
export interface ScanOutcome {
  status: 'COMPLETE' | 'FAILED' | 'UNSUPPORTED_IMAGE' | 'INDEX';
  description: string;
  completedAtMs: number;
  dbVersion: number | null;
  dbUpdatedAtMs: number | null;
  severityCounts: string | null;
  findings: string | null;
}

export interface ScanStore {
  /** Resolves undefined when the account never set one (ECR's default applies). */
  registryScanning(accountId: string): Promise<RegistryScanningRow | undefined>;
  putRegistryScanning(accountId: string, row: RegistryScanningRow): Promise<void>;

  /** A layer's cached analysis (JSON text) for this analyser version; undefined when none. */
  layerFacts(diffId: string, analyserVersion: number): Promise<string | undefined>;
  /** Idempotent: a concurrent writer's equal result may win. */
  putLayerFacts(diffId: string, analyserVersion: number, facts: string, nowMs: number): Promise<void>;
  /** An image's stored package inventory (JSON text), by manifest digest; undefined when none. */
  inventory(imageDigest: string, analyserVersion: number): Promise<string | undefined>;
  putInventory(imageDigest: string, analyserVersion: number, inventory: string, nowMs: number): Promise<void>;

  getScan(repositoryId: number, digest: string): Promise<ScanRecord | undefined>;
  /** Records of these images that exist, by digest. */
  getScans(repositoryId: number, digests: string[]): Promise<Map<string, ScanRecord>>;
  /**
   * Queues a scan of the image: its record becomes PENDING, requested at `nowMs`, keeping the
   * last findings until the new scan finishes. Does nothing and resolves false when a scan of it
   * is already PENDING or IN_PROGRESS, or when the image does not exist. `isManual` records the
   * request for the quota.
   */
  requestScan(repositoryId: number, digest: string, request: { reason: string; scanType: 'BASIC' | 'ENHANCED'; nowMs: number; isManual?: boolean }): Promise<boolean>;
  /**
   * Takes up to `limit` scans to run: PENDING ones, and IN_PROGRESS ones whose lease ran out
   * before `nowMs` (their node died), oldest request first; each becomes IN_PROGRESS under
   * `owner` until `untilMs`, its attempts counted. Of concurrent claimers, each record goes to one.
   */
  claimScans(owner: string, nowMs: number, untilMs: number, limit: number): Promise<ScanRecord[]>;
  /** Extends the lease while `owner` holds it; resolves false when it does not (another node took over). */
  renewScan(repositoryId: number, digest: string, owner: string, untilMs: number): Promise<boolean>;
  /**
   * Writes the outcome if `owner` still holds the scan (resolves false, writing nothing, if not),
   * and releases it. Call it in a MetaStore transaction with the event it emits.
   */
  finishScan(repositoryId: number, digest: string, owner: string, outcome: ScanOutcome): Promise<boolean>;
  /**
   * COMPLETE scans matched at a database version below `belowVersion` (or never), after `after`
   * in (repositoryId, digest) order, at most `limit`: the images a database import re-matches.
   */
  staleScans(belowVersion: number, after: { repositoryId: number; digest: string } | undefined, limit: number): Promise<ScanRecord[]>;
  /**
   * Replaces a COMPLETE scan's findings after a re-match, if it is still COMPLETE at a version
   * below `outcome.dbVersion` (resolves false otherwise: a new scan or another node won).
   */
  rematchScan(repositoryId: number, digest: string, outcome: ScanOutcome): Promise<boolean>;
  /**
   * Drops cached analyses: inventories of images no repository holds any more, and layer
   * analyses made before `layersBeforeMs` (a layer still in use is simply read again at its next
   * scan). Resolves how many rows of each went.
   */
  pruneCaches(layersBeforeMs: number): Promise<{ inventories: number; layers: number }>;
  /** A named number the scan workers share; 0 when never set. */
  state(name: string): Promise<number>;
  /** Sets it (creating it). */
  setState(name: string, value: number): Promise<void>;
  /** Counts of scan records by status, for metrics. */
  countByStatus(): Promise<Record<string, number>>;
}
