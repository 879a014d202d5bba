/**
 * Identity metadata: accounts, IAM users, access keys, groups, roles, policies and the audit
 * trail. Like MetaStore, queries are named for the domain and IAM semantics (limits, what may be
 * deleted when, ARNs) live in src/iam/identity.ts, so drivers stay thin. Names of users, groups,
 * roles, policies and inline policies are unique per account ignoring case, as in IAM; every
 * lookup by name ignores case and every row keeps the name as it was created.
 */

export interface Tag {
  Key: string;
  Value: string;
}

export interface AccountRow {
  id: string;
  alias: string | null;
  createdAtMs: number;
}

export interface UserRow {
  accountId: string;
  name: string;
  /** AIDA... */
  id: string;
  path: string;
  tags: Tag[];
  createdAtMs: number;
}

export type KeyStatus = 'Active' | 'Inactive';

export interface AccessKeyRow {
  /** AKIA... */
  id: string;
  accountId: string;
  userName: string;
  /** The secret, sealed (AES-256-GCM) with the instance's secret key: see src/iam/secrets.ts. */
  secretSealed: string;
  status: KeyStatus;
  createdAtMs: number;
  lastUsedAtMs: number | null;
  lastUsedService: string | null;
}

export interface GroupRow {
  accountId: string;
  name: string;
  id: string;
  path: string;
  createdAtMs: number;
}

export interface RoleRow {
  accountId: string;
  name: string;
  id: string;
  path: string;
  trustPolicy: string;
  description: string | null;
  maxSessionSeconds: number;
  tags: Tag[];
  createdAtMs: number;
}

export interface PolicyRow {
  accountId: string;
  name: string;
  id: string;
  path: string;
  document: string;
  description: string | null;
  createdAtMs: number;
  updatedAtMs: number;
}

export type PrincipalType = 'user' | 'group' | 'role';

export interface AuditEvent {
  atMs: number;
  requestId: string;
  plane: string;
  accountId: string | null;
  principal: string | null;
  accessKeyId: string | null;
  action: string;
  resource: string | null;
  /** 'allow', 'deny' (explicit), 'implicit-deny' or 'unauthenticated' */
  decision: string;
  /** The policy and statement that decided, e.g. `repository policy of app#AllowPull`. */
  policy: string | null;
  sourceIp: string;
  userAgent: string | null;
  errorCode: string | null;
}

export interface StoredAuditEvent extends AuditEvent {
  id: number;
}

export interface NamePage {
  /** Only names (case-folded) strictly after this one. */
  after?: string | undefined;
  limit: number;
}

export interface IdentityStore {
  createAccount(row: AccountRow): Promise<boolean>;
  getAccount(id: string): Promise<AccountRow | undefined>;
  listAccounts(): Promise<AccountRow[]>;

  /** Resolves false when a user of that name (ignoring case) exists. */
  createUser(row: UserRow): Promise<boolean>;
  getUser(accountId: string, name: string): Promise<UserRow | undefined>;
  /** Users ordered by name, optionally under a path prefix. */
  listUsers(accountId: string, pathPrefix: string, page: NamePage): Promise<UserRow[]>;
  setUserTags(accountId: string, name: string, tags: Tag[]): Promise<void>;
  deleteUser(accountId: string, name: string): Promise<boolean>;

  createAccessKey(row: AccessKeyRow): Promise<void>;
  getAccessKey(id: string): Promise<AccessKeyRow | undefined>;
  listAccessKeys(accountId: string, userName: string): Promise<AccessKeyRow[]>;
  setAccessKeyStatus(id: string, status: KeyStatus): Promise<boolean>;
  /** Records the last use (at most once a minute per key is enough; the caller throttles). */
  touchAccessKey(id: string, atMs: number, service: string): Promise<void>;
  deleteAccessKey(id: string): Promise<boolean>;

  createGroup(row: GroupRow): Promise<boolean>;
  getGroup(accountId: string, name: string): Promise<GroupRow | undefined>;
  listGroups(accountId: string, pathPrefix: string, page: NamePage): Promise<GroupRow[]>;
  deleteGroup(accountId: string, name: string): Promise<boolean>;
  /** Idempotent. */
  addUserToGroup(accountId: string, groupName: string, userName: string): Promise<void>;
  removeUserFromGroup(accountId: string, groupName: string, userName: string): Promise<boolean>;
  listGroupsForUser(accountId: string, userName: string): Promise<GroupRow[]>;
  listGroupMembers(accountId: string, groupName: string): Promise<string[]>;

  createRole(row: RoleRow): Promise<boolean>;
  getRole(accountId: string, name: string): Promise<RoleRow | undefined>;
  listRoles(accountId: string, pathPrefix: string, page: NamePage): Promise<RoleRow[]>;
  setRoleTrustPolicy(accountId: string, name: string, document: string): Promise<boolean>;
  setRoleTags(accountId: string, name: string, tags: Tag[]): Promise<void>;
  deleteRole(accountId: string, name: string): Promise<boolean>;

  createPolicy(row: PolicyRow): Promise<boolean>;
  getPolicy(accountId: string, name: string): Promise<PolicyRow | undefined>;
  listPolicies(accountId: string, pathPrefix: string, page: NamePage): Promise<PolicyRow[]>;
  deletePolicy(accountId: string, name: string): Promise<boolean>;

  /** Idempotent. */
  attachPolicy(accountId: string, type: PrincipalType, name: string, policyArn: string): Promise<void>;
  detachPolicy(accountId: string, type: PrincipalType, name: string, policyArn: string): Promise<boolean>;
  listAttachedPolicies(accountId: string, type: PrincipalType, name: string): Promise<string[]>;
  /** How many users, groups and roles (in any account) have the policy attached. */
  countPolicyAttachments(policyArn: string): Promise<number>;

  /** Creates or replaces. */
  putInlinePolicy(accountId: string, type: PrincipalType, name: string, policyName: string, document: string): Promise<void>;
  getInlinePolicy(accountId: string, type: PrincipalType, name: string, policyName: string): Promise<{ name: string; document: string } | undefined>;
  deleteInlinePolicy(accountId: string, type: PrincipalType, name: string, policyName: string): Promise<boolean>;
  /** Inline policies of a user, group or role, ordered by name, with their documents. */
  listInlinePolicies(accountId: string, type: PrincipalType, name: string): Promise<{ name: string; document: string }[]>;

  getRegistryPolicy(accountId: string): Promise<string | undefined>;
  setRegistryPolicy(accountId: string, document: string | null, nowMs: number): Promise<void>;

  /** Appends, in one transaction. */
  appendAudit(events: AuditEvent[]): Promise<void>;
  /** Oldest first, after `afterId`. */
  listAudit(filter: { afterId?: number; sinceMs?: number; untilMs?: number; accountId?: string; limit: number }): Promise<StoredAuditEvent[]>;
}
