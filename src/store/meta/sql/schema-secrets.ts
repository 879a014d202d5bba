import type { Generated } from 'kysely';

/** Secrets Manager's tables (migration 0012-secrets, docs/secrets-manager.md). */
export interface SecretsSchema {
  secrets: {
    id: string;
    account_id: string;
    name: string;
    arn: string;
    description: string | null;
    kms_key_id: string | null;
    tags: Generated<string>;
    created_at: number;
    last_changed_at: number;
    last_accessed_at: number | null;
    deleted_at: number | null;
    purge_at: number | null;
  };
  secret_versions: { secret_id: string; version_id: string; sealed: string; is_binary: number; created_at: number };
  secret_version_stages: { secret_id: string; stage: string; version_id: string };
}
