/** Replication's tables (migration 0011-replication, docs/metadata-schema.md). */
export interface ReplicationSchema {
  replication_configurations: { account_id: string; rules: string; start_seqs: string; updated_at: number };
  replication_tasks: {
    repository_id: number;
    digest: string;
    destination: string;
    status: string;
    tags: string;
    reason: string;
    version: number;
    attempts: number;
    next_attempt_at: number;
    pushed_at: number;
    requested_at: number;
    completed_at: number | null;
    failure_code: string | null;
    last_error: string | null;
    lease_owner: string | null;
    lease_until: number | null;
  };
}
