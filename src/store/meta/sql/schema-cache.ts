/** The pull-through cache's tables (migration 0013-pull-through-cache, docs/metadata-schema.md). */
export interface CacheSchema {
  pull_through_cache_rules: {
    account_id: string;
    ecr_repository_prefix: string;
    upstream_registry_url: string;
    upstream_registry: string | null;
    upstream_repository_prefix: string;
    credential_arn: string | null;
    custom_role_arn: string | null;
    created_at: number;
    updated_at: number;
  };
  pull_through_cache_tags: { repository_id: number; tag: string; upstream_digest: string; checked_at: number };
  pull_through_cache_fetches: { digest: string; lease_owner: string; lease_until: number };
}
