/**
 * Identity metadata: accounts, IAM users, access keys, console passwords and the password
 * policy, groups, roles, policies, console sessions and the audit trail. Like MetaStore, queries are named for the domain and IAM semantics (limits, what may be
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

/** A user's console password (IAM's login profile). */
export interface LoginProfileRow {
  accountId: string;
  /** The user's name as it was created (lookups ignore case). */
  userName: string;
  /** scrypt hash with its parameters and salt: see hashPassword in src/iam/secrets.ts. Never the password. */
  passwordHash: string;
  /** The user must choose a new password at the next sign-in (PasswordResetRequired). */
  isResetRequired: boolean;
  createdAtMs: number;
  /** When the current password was set: its age for the password policy's MaxPasswordAge. */
  passwordChangedAtMs: number;
  /** The last successful sign-in with it (IAM's PasswordLastUsed). */
  lastUsedAtMs: number | null;
  /** Hashes of the passwords before this one, newest first, at most 24 (PasswordReusePrevention). */
  previousHashes: string[];
}

/** An account's password policy (UpdateAccountPasswordPolicy), as IAM states it. */
export interface PasswordPolicy {
  minimumPasswordLength: number;
  requireSymbols: boolean;
  requireNumbers: boolean;
  requireUppercaseCharacters: boolean;
  requireLowercaseCharacters: boolean;
  allowUsersToChangePassword: boolean;
  /** Days a password is valid; null: passwords never expire. */
  maxPasswordAge: number | null;
  /** How many previous passwords a user may not reuse; null: any. */
  passwordReusePrevention: number | null;
  /** An expired password cannot be changed by its user, only reset by an administrator. */
  hardExpiry: boolean;
}

/** A signed-in web console session (src/console/sessions.ts). */
export interface ConsoleSessionRow {
  /** SHA-256 of the session id the browser holds; the id itself is never stored. */
  idHash: string;
  accountId: string;
  userName: string;
  userId: string;
  /** The session's temporary credentials (GetSessionToken's); the secret is derived from the key id. */
  accessKeyId: string;
  sessionToken: string;
  createdAtMs: number;
  expiresAtMs: number;
  /** The user signed in with a password that must be changed (reset required or expired): the console asks for a new one first. */
  mustChangePassword: boolean;
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

  /** Resolves false when the user already has one. The user must exist. */
  createLoginProfile(row: LoginProfileRow): Promise<boolean>;
  /** The profile of a user (name ignoring case), with the user's name as created; undefined when the user has none. */
  getLoginProfile(accountId: string, userName: string): Promise<LoginProfileRow | undefined>;
  /**
   * Changes the listed fields; resolves false when the user has no profile. With `expectedHash`,
   * changes it only if the stored hash is still that one (false otherwise), so that of two
   * concurrent password changes from the same old password one wins.
   */
  updateLoginProfile(
    accountId: string,
    userName: string,
    change: Partial<Pick<LoginProfileRow, 'passwordHash' | 'isResetRequired' | 'passwordChangedAtMs' | 'previousHashes'>>,
    expectedHash?: string,
  ): Promise<boolean>;
  /** Records a successful sign-in; nothing when the profile is gone. */
  touchLoginProfile(accountId: string, userName: string, atMs: number): Promise<void>;
  deleteLoginProfile(accountId: string, userName: string): Promise<boolean>;

  /** The account's password policy; undefined when none is set (IAM's defaults apply then). */
  getPasswordPolicy(accountId: string): Promise<PasswordPolicy | undefined>;
  /** Creates or replaces. */
  putPasswordPolicy(accountId: string, policy: PasswordPolicy, nowMs: number): Promise<void>;
  deletePasswordPolicy(accountId: string): Promise<boolean>;

  /** Rejects when a session with that idHash exists (ids are random: it does not happen). */
  createConsoleSession(row: ConsoleSessionRow): Promise<void>;
  /** The row, expired or not (the caller compares expiresAtMs); undefined when there is none. */
  getConsoleSession(idHash: string): Promise<ConsoleSessionRow | undefined>;
  /** Idempotent. */
  deleteConsoleSession(idHash: string): Promise<void>;
  /** The session's user has chosen a new password; idempotent. */
  clearConsoleSessionPasswordChange(idHash: string): Promise<void>;
  /** Deletes the sessions with expiresAtMs at or before nowMs; resolves how many. */
  deleteExpiredConsoleSessions(nowMs: number): Promise<number>;

  getRegistryPolicy(accountId: string): Promise<string | undefined>;
  setRegistryPolicy(accountId: string, document: string | null, nowMs: number): Promise<void>;

}
