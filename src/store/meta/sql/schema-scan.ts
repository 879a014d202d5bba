/** Image scanning's tables (migration 0010-scan, docs/metadata-schema.md). */
export interface ScanSchema {
  registry_scanning: { account_id: string; scan_type: string; rules: string; updated_at: number };
  scan_layers: { diff_id: string; analyser_version: number; facts: string; created_at: number };
  scan_state: { name: string; value: number };
  scan_inventories: { image_digest: string; analyser_version: number; inventory: string; created_at: number };
  image_scans: {
    repository_id: number;
    digest: string;
    status: string;
    description: string | null;
    reason: string;
    scan_type: string;
    requested_at: number;
    started_at: number | null;
    completed_at: number | null;
    db_version: number | null;
    db_updated_at: number | null;
    severity_counts: string | null;
    findings: string | null;
    last_manual_at: number | null;
    attempts: number;
    lease_owner: string | null;
    lease_until: number | null;
  };
}
