/**
 * The pull-through cache's state in the metadata store (docs/pull-through-cache.md): each
 * account's rules, when each cached tag was last compared with its upstream, and the leases
 * under which a node fetches a blob from an upstream.
 */

/** A pull-through cache rule, as CreatePullThroughCacheRule stored it. */
export interface CacheRule {
  accountId: string;
  /** The repository-name prefix it covers, without a trailing slash; `ROOT` covers every name. */
  ecrRepositoryPrefix: string;
  /** As given, normalised: `host[:port]`, or `http://host[:port]` for a plain-HTTP upstream. */
  upstreamRegistryUrl: string;
  /** ECR's name for the kind of upstream (docker-hub, quay, ecr, ...), or null for any other OCI registry. */
  upstreamRegistry: string | null;
  /** The upstream's repository-name prefix the covered names map to; `ROOT` for none. */
  upstreamRepositoryPrefix: string;
  credentialArn: string | null;
  customRoleArn: string | null;
  createdAtMs: number;
  updatedAtMs: number;
}

export interface CacheStore {
  /** The account's rules, by prefix. */
  listRules(accountId: string): Promise<CacheRule[]>;
  /** Resolves undefined when the account has no rule for the prefix. */
  getRule(accountId: string, ecrRepositoryPrefix: string): Promise<CacheRule | undefined>;
  /**
   * Stores a new rule unless the account already has one for the prefix or already has `limit`
   * rules; resolves what stopped it, or 'created'. Two concurrent creations of one prefix: one
   * is created, the other is 'exists'.
   */
  createRule(rule: CacheRule, limit: number): Promise<'created' | 'exists' | 'limit'>;
  /** Changes the credentials of a rule; resolves the rule as it is now, or undefined when absent. */
  updateRule(accountId: string, ecrRepositoryPrefix: string, patch: { credentialArn: string | null; customRoleArn: string | null; updatedAtMs: number }): Promise<CacheRule | undefined>;
  /** Removes a rule; resolves it, or undefined when it was absent. Cached repositories stay. */
  deleteRule(accountId: string, ecrRepositoryPrefix: string): Promise<CacheRule | undefined>;

  /** When a cached tag was last compared with its upstream, and the digest the upstream had; undefined when never. */
  tagCheck(repositoryId: number, tag: string): Promise<{ upstreamDigest: string; checkedAtMs: number } | undefined>;
  /** Records a comparison (an upsert); a repository that is gone records nothing. */
  recordTagCheck(repositoryId: number, tag: string, upstreamDigest: string, checkedAtMs: number): Promise<void>;

  /**
   * Takes the fetch lease of a blob: true when it was free, had expired (at `nowMs`) or is the
   * owner's already; false while another owner holds it.
   */
  claimFetch(digest: string, owner: string, untilMs: number, nowMs: number): Promise<boolean>;
  /** Extends the owner's lease; false when it no longer holds it. */
  renewFetch(digest: string, owner: string, untilMs: number): Promise<boolean>;
  /** Gives the lease up; a lease another owner took meanwhile is left alone. */
  releaseFetch(digest: string, owner: string): Promise<void>;
}
