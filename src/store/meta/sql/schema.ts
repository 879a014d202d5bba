import type { Generated } from 'kysely';

/** Table shapes as Kysely sees them. docs/metadata-schema.md describes the same tables. */
export interface Schema {
  repositories: { id: Generated<number>; name: string; created_at: number };
  blobs: { digest: string; size_bytes: number; created_at: number };
  repository_blobs: { repository_id: number; digest: string; created_at: number };
  manifests: {
    repository_id: number;
    digest: string;
    media_type: string;
    size_bytes: number;
    payload: Uint8Array;
    artifact_type: string | null;
    subject_digest: string | null;
    annotations: string | null;
    created_at: number;
  };
  manifest_references: { repository_id: number; manifest_digest: string; reference_digest: string; kind: string };
  tags: { repository_id: number; name: string; manifest_digest: string; updated_at: number };
  uploads: { id: string; repository_id: number; size_bytes: number; started_at: number; updated_at: number };
}
