import type { Generated } from 'kysely';
import type { CacheSchema } from './schema-cache.ts';
import type { ListingsSchema } from './schema-listings.ts';
import type { ReplicationSchema } from './schema-replication.ts';
import type { ScanSchema } from './schema-scan.ts';
import type { SecretsSchema } from './schema-secrets.ts';
import type { VulnDbSchema } from './schema-vulndb.ts';

/** Table shapes as Kysely sees them. docs/metadata-schema.md describes the same tables. */
export interface Schema extends ScanSchema, VulnDbSchema, ReplicationSchema, CacheSchema, SecretsSchema, ListingsSchema {
  repositories: {
    id: Generated<number>;
    account_id: string;
    name: string;
    created_at: number;
    policy: string | null;
    tag_mutability: Generated<string>;
    tag_mutability_filters: Generated<string>;
    scan_on_push: Generated<number>;
    encryption_type: Generated<string>;
    kms_key: string | null;
    tags: Generated<string>;
    lifecycle_policy: string | null;
  };
  blobs: { digest: string; size_bytes: number; created_at: number; last_used_at: number; deleting_at: number | null };
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
    last_pulled_at: Generated<number | null>;
  };
  manifest_references: { repository_id: number; manifest_digest: string; reference_digest: string; kind: string };
  tags: { repository_id: number; name: string; manifest_digest: string; updated_at: number };
  uploads: { id: string; repository_id: number; size_bytes: number; started_at: number; updated_at: number };
  accounts: { id: string; alias: string | null; created_at: number };
  iam_users: { account_id: string; name_key: string; name: string; id: string; path: string; tags: string; created_at: number };
  access_keys: {
    id: string;
    account_id: string;
    user_key: string;
    secret_sealed: string;
    status: string;
    created_at: number;
    last_used_at: number | null;
    last_used_service: string | null;
  };
  iam_groups: { account_id: string; name_key: string; name: string; id: string; path: string; created_at: number };
  group_members: { account_id: string; group_key: string; user_key: string };
  iam_roles: {
    account_id: string;
    name_key: string;
    name: string;
    id: string;
    path: string;
    trust_policy: string;
    description: string | null;
    max_session_seconds: number;
    tags: string;
    created_at: number;
  };
  iam_policies: {
    account_id: string;
    name_key: string;
    name: string;
    id: string;
    path: string;
    document: string;
    description: string | null;
    created_at: number;
    updated_at: number;
  };
  policy_attachments: { account_id: string; principal_type: string; principal_key: string; policy_arn: string };
  inline_policies: { account_id: string; principal_type: string; principal_key: string; name_key: string; name: string; document: string };
  registry_policies: { account_id: string; document: string; updated_at: number };
  login_profiles: {
    account_id: string;
    user_key: string;
    password_hash: string;
    is_reset_required: number;
    created_at: number;
    password_changed_at: number;
    last_used_at: number | null;
    previous_hashes: string;
  };
  password_policies: {
    account_id: string;
    minimum_password_length: number;
    require_symbols: number;
    require_numbers: number;
    require_uppercase_characters: number;
    require_lowercase_characters: number;
    allow_users_to_change_password: number;
    max_password_age: number | null;
    password_reuse_prevention: number | null;
    hard_expiry: number;
    updated_at: number;
  };
  console_sessions: {
    id_hash: string;
    account_id: string;
    user_name: string;
    user_id: string;
    access_key_id: string;
    session_token: string;
    created_at: number;
    expires_at: number;
    must_change_password: number;
  };
  audit_events: {
    id: Generated<number>;
    at: number;
    request_id: string;
    plane: string;
    account_id: string | null;
    principal: string | null;
    access_key_id: string | null;
    action: string;
    resource: string | null;
    decision: string;
    policy: string | null;
    source_ip: string;
    user_agent: string | null;
    error_code: string | null;
    /** LookupEvents' keys, derived from the columns above (audit-store.ts auditLookupKeys; migration 0015-audit-lookup). */
    event_name: string | null;
    event_source: string | null;
    user_name: string | null;
    resource_name: string | null;
    resource_type: string | null;
    /** 1 or 0 */
    read_only: number | null;
  };
  repository_templates: { account_id: string; prefix: string; template: string; created_at: number; updated_at: number };
  account_settings: { account_id: string; name: string; value: string };
  jobs: {
    name: string;
    next_run_at: number;
    lease_owner: string | null;
    lease_expires_at: number | null;
    last_started_at: number | null;
    last_finished_at: number | null;
    last_error: string | null;
  };
  lifecycle_policies: { repository_id: number; policy_text: string; updated_at: number; last_evaluated_at: number | null };
  lifecycle_previews: {
    repository_id: number;
    status: string;
    policy_text: string;
    result: string | null;
    started_at: number;
    finished_at: number | null;
  };
  events: { seq: Generated<number>; id: string; account_id: string; repository: string | null; detail_type: string; time_ms: number; body: string };
  event_consumers: { name: string; cursor: Generated<number>; lease_owner: string | null; lease_until: number | null };
  webhook_subscriptions: {
    id: string;
    account_id: string | null;
    url: string;
    pattern: string | null;
    secret_sealed: string;
    headers: Generated<string>;
    timeout_ms: number;
    max_attempts: number;
    created_at: number;
    is_disabled: Generated<number>;
  };
  webhook_dead_letters: { subscription_id: string; seq: number; event_id: string; attempts: number; last_error: string; failed_at: number; body: string };
}
