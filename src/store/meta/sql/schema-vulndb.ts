import type { Generated } from 'kysely';

/** The vulnerability database's tables as Kysely sees them (migration 0009, docs/metadata-schema.md). */
export interface VulnDbSchema {
  vuln_meta: { id: number; version: number };
  vuln_generations: { generation: Generated<number>; sources: string; state: string; started_at: number; finished_at: number | null };
  vuln_sources: { name: string; generation: number; description: string; updated_at: number; imported_at: number; record_count: number; sha256: string };
  /** body: JSON of VulnRecordRow without id and source. */
  vuln_records: { generation: number; source: string; id: string; body: string };
  /** body: JSON of VulnAffectedRow's ranges, versions, status and distroSeverity. */
  vuln_affected: { id: Generated<number>; generation: number; source: string; ecosystem: string; package: string; vuln_id: string; body: string };
}
