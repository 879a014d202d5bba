import { CompiledQuery, sql, type Kysely, type Transaction } from 'kysely';
import type {
  AccessKeyRow,
  AccountRow,
  ConsoleSessionRow,
  GroupRow,
  IdentityStore,
  KeyStatus,
  LoginProfileRow,
  NamePage,
  PasswordPolicy,
  PolicyRow,
  PrincipalType,
  RoleRow,
  Tag,
  UserRow,
} from '../identity-store.ts';
import type { Schema } from './schema.ts';

type Db = Kysely<Schema> | Transaction<Schema>;

const key = (name: string): string => name.toLowerCase();

/**
 * Rows whose `path` starts with `prefix`, compared exactly: case-sensitive and with `%`, `_` and
 * `\` meaning themselves, as IAM's PathPrefix does. Not LIKE: SQLite's ignores case (for ASCII)
 * and has no escape character unless given one.
 */
function underPath(prefix: string) {
  return sql<boolean>`substr(path, 1, ${[...prefix].length}) = ${prefix}`;
}

function tagsOf(text: string): Tag[] {
  return JSON.parse(text) as Tag[];
}

function toUser(r: Schema['iam_users']): UserRow {
  return { accountId: r.account_id, name: r.name, id: r.id, path: r.path, tags: tagsOf(r.tags), createdAtMs: Number(r.created_at) };
}

function toKey(r: Schema['access_keys'] & { user_name: string }): AccessKeyRow {
  return {
    id: r.id,
    accountId: r.account_id,
    userName: r.user_name,
    secretSealed: r.secret_sealed,
    status: r.status as KeyStatus,
    createdAtMs: Number(r.created_at),
    lastUsedAtMs: r.last_used_at === null ? null : Number(r.last_used_at),
    lastUsedService: r.last_used_service,
  };
}

function toGroup(r: Schema['iam_groups']): GroupRow {
  return { accountId: r.account_id, name: r.name, id: r.id, path: r.path, createdAtMs: Number(r.created_at) };
}

function toRole(r: Schema['iam_roles']): RoleRow {
  return {
    accountId: r.account_id,
    name: r.name,
    id: r.id,
    path: r.path,
    trustPolicy: r.trust_policy,
    description: r.description,
    maxSessionSeconds: Number(r.max_session_seconds),
    tags: tagsOf(r.tags),
    createdAtMs: Number(r.created_at),
  };
}

function toPolicy(r: Schema['iam_policies']): PolicyRow {
  return {
    accountId: r.account_id,
    name: r.name,
    id: r.id,
    path: r.path,
    document: r.document,
    description: r.description,
    createdAtMs: Number(r.created_at),
    updatedAtMs: Number(r.updated_at),
  };
}

function toLoginProfile(r: Schema['login_profiles'] & { user_name: string }): LoginProfileRow {
  return {
    accountId: r.account_id,
    userName: r.user_name,
    passwordHash: r.password_hash,
    isResetRequired: Number(r.is_reset_required) === 1,
    createdAtMs: Number(r.created_at),
    passwordChangedAtMs: Number(r.password_changed_at),
    lastUsedAtMs: r.last_used_at === null ? null : Number(r.last_used_at),
    previousHashes: JSON.parse(r.previous_hashes) as string[],
  };
}

function toPasswordPolicy(r: Schema['password_policies']): PasswordPolicy {
  return {
    minimumPasswordLength: Number(r.minimum_password_length),
    requireSymbols: Number(r.require_symbols) === 1,
    requireNumbers: Number(r.require_numbers) === 1,
    requireUppercaseCharacters: Number(r.require_uppercase_characters) === 1,
    requireLowercaseCharacters: Number(r.require_lowercase_characters) === 1,
    allowUsersToChangePassword: Number(r.allow_users_to_change_password) === 1,
    maxPasswordAge: r.max_password_age === null ? null : Number(r.max_password_age),
    passwordReusePrevention: r.password_reuse_prevention === null ? null : Number(r.password_reuse_prevention),
    hardExpiry: Number(r.hard_expiry) === 1,
  };
}

function toConsoleSession(r: Schema['console_sessions']): ConsoleSessionRow {
  return {
    idHash: r.id_hash,
    accountId: r.account_id,
    userName: r.user_name,
    userId: r.user_id,
    accessKeyId: r.access_key_id,
    sessionToken: r.session_token,
    createdAtMs: Number(r.created_at),
    expiresAtMs: Number(r.expires_at),
    mustChangePassword: Number(r.must_change_password) === 1,
  };
}

/** IdentityStore over any SQL database Kysely speaks (the same connection as KyselyMetaStore). */
export class KyselyIdentityStore implements IdentityStore {
  private readonly db: Db;

  constructor(db: Db) {
    this.db = db;
  }

  /** Inserts unless the primary key exists; resolves whether it inserted. */
  private async insertOnce<T extends keyof Schema>(table: T, values: Record<string, unknown>, conflict: string[]): Promise<boolean> {
    const res = await (this.db as Kysely<any>)
      .insertInto(table)
      .values(values)
      .onConflict((oc: any) => oc.columns(conflict).doNothing())
      .executeTakeFirst();
    return Number(res.numInsertedOrUpdatedRows ?? 0n) > 0;
  }

  async createAccount(row: AccountRow): Promise<boolean> {
    return this.insertOnce('accounts', { id: row.id, alias: row.alias, created_at: row.createdAtMs }, ['id']);
  }

  async getAccount(id: string): Promise<AccountRow | undefined> {
    const r = await this.db.selectFrom('accounts').selectAll().where('id', '=', id).executeTakeFirst();
    return r && { id: r.id, alias: r.alias, createdAtMs: Number(r.created_at) };
  }

  async listAccounts(): Promise<AccountRow[]> {
    const rows = await this.db.selectFrom('accounts').selectAll().orderBy('created_at').orderBy('id').execute();
    return rows.map((r) => ({ id: r.id, alias: r.alias, createdAtMs: Number(r.created_at) }));
  }

  // --- users ------------------------------------------------------------------------------

  async createUser(row: UserRow): Promise<boolean> {
    return this.insertOnce(
      'iam_users',
      { account_id: row.accountId, name_key: key(row.name), name: row.name, id: row.id, path: row.path, tags: JSON.stringify(row.tags), created_at: row.createdAtMs },
      ['account_id', 'name_key'],
    );
  }

  async getUser(accountId: string, name: string): Promise<UserRow | undefined> {
    const r = await this.db.selectFrom('iam_users').selectAll().where('account_id', '=', accountId).where('name_key', '=', key(name)).executeTakeFirst();
    return r && toUser(r);
  }

  async listUsers(accountId: string, pathPrefix: string, page: NamePage): Promise<UserRow[]> {
    let q = this.db.selectFrom('iam_users').selectAll().where('account_id', '=', accountId).orderBy('name_key').limit(page.limit);
    if (pathPrefix !== '/') q = q.where(underPath(pathPrefix));
    if (page.after !== undefined) q = q.where('name_key', '>', page.after);
    return (await q.execute()).map(toUser);
  }

  async setUserTags(accountId: string, name: string, tags: Tag[]): Promise<void> {
    await this.db.updateTable('iam_users').set({ tags: JSON.stringify(tags) }).where('account_id', '=', accountId).where('name_key', '=', key(name)).execute();
  }

  async deleteUser(accountId: string, name: string): Promise<boolean> {
    const res = await this.db.deleteFrom('iam_users').where('account_id', '=', accountId).where('name_key', '=', key(name)).executeTakeFirst();
    return Number(res.numDeletedRows) > 0;
  }

  // --- access keys ------------------------------------------------------------------------

  async createAccessKey(row: AccessKeyRow): Promise<void> {
    await this.db
      .insertInto('access_keys')
      .values({
        id: row.id,
        account_id: row.accountId,
        user_key: key(row.userName),
        secret_sealed: row.secretSealed,
        status: row.status,
        created_at: row.createdAtMs,
        last_used_at: row.lastUsedAtMs,
        last_used_service: row.lastUsedService,
      })
      .execute();
  }

  private keysQuery() {
    return this.db
      .selectFrom('access_keys as k')
      .innerJoin('iam_users as u', (j) => j.onRef('u.account_id', '=', 'k.account_id').onRef('u.name_key', '=', 'k.user_key'))
      .selectAll('k')
      .select('u.name as user_name');
  }

  async getAccessKey(id: string): Promise<AccessKeyRow | undefined> {
    const r = await this.keysQuery().where('k.id', '=', id).executeTakeFirst();
    return r && toKey(r);
  }

  async listAccessKeys(accountId: string, userName: string): Promise<AccessKeyRow[]> {
    const rows = await this.keysQuery().where('k.account_id', '=', accountId).where('k.user_key', '=', key(userName)).orderBy('k.created_at').orderBy('k.id').execute();
    return rows.map(toKey);
  }

  async setAccessKeyStatus(id: string, status: KeyStatus): Promise<boolean> {
    const res = await this.db.updateTable('access_keys').set({ status }).where('id', '=', id).executeTakeFirst();
    return Number(res.numUpdatedRows) > 0;
  }

  async touchAccessKey(id: string, atMs: number, service: string): Promise<void> {
    await this.db.updateTable('access_keys').set({ last_used_at: atMs, last_used_service: service }).where('id', '=', id).execute();
  }

  async deleteAccessKey(id: string): Promise<boolean> {
    const res = await this.db.deleteFrom('access_keys').where('id', '=', id).executeTakeFirst();
    return Number(res.numDeletedRows) > 0;
  }

  // --- groups -----------------------------------------------------------------------------

  async createGroup(row: GroupRow): Promise<boolean> {
    return this.insertOnce(
      'iam_groups',
      { account_id: row.accountId, name_key: key(row.name), name: row.name, id: row.id, path: row.path, created_at: row.createdAtMs },
      ['account_id', 'name_key'],
    );
  }

  async getGroup(accountId: string, name: string): Promise<GroupRow | undefined> {
    const r = await this.db.selectFrom('iam_groups').selectAll().where('account_id', '=', accountId).where('name_key', '=', key(name)).executeTakeFirst();
    return r && toGroup(r);
  }

  async listGroups(accountId: string, pathPrefix: string, page: NamePage): Promise<GroupRow[]> {
    let q = this.db.selectFrom('iam_groups').selectAll().where('account_id', '=', accountId).orderBy('name_key').limit(page.limit);
    if (pathPrefix !== '/') q = q.where(underPath(pathPrefix));
    if (page.after !== undefined) q = q.where('name_key', '>', page.after);
    return (await q.execute()).map(toGroup);
  }

  async deleteGroup(accountId: string, name: string): Promise<boolean> {
    const res = await this.db.deleteFrom('iam_groups').where('account_id', '=', accountId).where('name_key', '=', key(name)).executeTakeFirst();
    return Number(res.numDeletedRows) > 0;
  }

  async addUserToGroup(accountId: string, groupName: string, userName: string): Promise<void> {
    await this.insertOnce('group_members', { account_id: accountId, group_key: key(groupName), user_key: key(userName) }, ['account_id', 'group_key', 'user_key']);
  }

  async removeUserFromGroup(accountId: string, groupName: string, userName: string): Promise<boolean> {
    const res = await this.db
      .deleteFrom('group_members')
      .where('account_id', '=', accountId)
      .where('group_key', '=', key(groupName))
      .where('user_key', '=', key(userName))
      .executeTakeFirst();
    return Number(res.numDeletedRows) > 0;
  }

  async listGroupsForUser(accountId: string, userName: string): Promise<GroupRow[]> {
    const rows = await this.db
      .selectFrom('group_members as m')
      .innerJoin('iam_groups as g', (j) => j.onRef('g.account_id', '=', 'm.account_id').onRef('g.name_key', '=', 'm.group_key'))
      .selectAll('g')
      .where('m.account_id', '=', accountId)
      .where('m.user_key', '=', key(userName))
      .orderBy('g.name_key')
      .execute();
    return rows.map(toGroup);
  }

  async listGroupMembers(accountId: string, groupName: string): Promise<string[]> {
    const rows = await this.db
      .selectFrom('group_members as m')
      .innerJoin('iam_users as u', (j) => j.onRef('u.account_id', '=', 'm.account_id').onRef('u.name_key', '=', 'm.user_key'))
      .select('u.name')
      .where('m.account_id', '=', accountId)
      .where('m.group_key', '=', key(groupName))
      .orderBy('u.name_key')
      .execute();
    return rows.map((r) => r.name);
  }

  // --- roles ------------------------------------------------------------------------------

  async createRole(row: RoleRow): Promise<boolean> {
    return this.insertOnce(
      'iam_roles',
      {
        account_id: row.accountId,
        name_key: key(row.name),
        name: row.name,
        id: row.id,
        path: row.path,
        trust_policy: row.trustPolicy,
        description: row.description,
        max_session_seconds: row.maxSessionSeconds,
        tags: JSON.stringify(row.tags),
        created_at: row.createdAtMs,
      },
      ['account_id', 'name_key'],
    );
  }

  async getRole(accountId: string, name: string): Promise<RoleRow | undefined> {
    const r = await this.db.selectFrom('iam_roles').selectAll().where('account_id', '=', accountId).where('name_key', '=', key(name)).executeTakeFirst();
    return r && toRole(r);
  }

  async listRoles(accountId: string, pathPrefix: string, page: NamePage): Promise<RoleRow[]> {
    let q = this.db.selectFrom('iam_roles').selectAll().where('account_id', '=', accountId).orderBy('name_key').limit(page.limit);
    if (pathPrefix !== '/') q = q.where(underPath(pathPrefix));
    if (page.after !== undefined) q = q.where('name_key', '>', page.after);
    return (await q.execute()).map(toRole);
  }

  async setRoleTrustPolicy(accountId: string, name: string, document: string): Promise<boolean> {
    const res = await this.db.updateTable('iam_roles').set({ trust_policy: document }).where('account_id', '=', accountId).where('name_key', '=', key(name)).executeTakeFirst();
    return Number(res.numUpdatedRows) > 0;
  }

  async setRoleTags(accountId: string, name: string, tags: Tag[]): Promise<void> {
    await this.db.updateTable('iam_roles').set({ tags: JSON.stringify(tags) }).where('account_id', '=', accountId).where('name_key', '=', key(name)).execute();
  }

  async deleteRole(accountId: string, name: string): Promise<boolean> {
    const res = await this.db.deleteFrom('iam_roles').where('account_id', '=', accountId).where('name_key', '=', key(name)).executeTakeFirst();
    return Number(res.numDeletedRows) > 0;
  }

  // --- managed policies -------------------------------------------------------------------

  async createPolicy(row: PolicyRow): Promise<boolean> {
    return this.insertOnce(
      'iam_policies',
      {
        account_id: row.accountId,
        name_key: key(row.name),
        name: row.name,
        id: row.id,
        path: row.path,
        document: row.document,
        description: row.description,
        created_at: row.createdAtMs,
        updated_at: row.updatedAtMs,
      },
      ['account_id', 'name_key'],
    );
  }

  async getPolicy(accountId: string, name: string): Promise<PolicyRow | undefined> {
    const r = await this.db.selectFrom('iam_policies').selectAll().where('account_id', '=', accountId).where('name_key', '=', key(name)).executeTakeFirst();
    return r && toPolicy(r);
  }

  async listPolicies(accountId: string, pathPrefix: string, page: NamePage): Promise<PolicyRow[]> {
    let q = this.db.selectFrom('iam_policies').selectAll().where('account_id', '=', accountId).orderBy('name_key').limit(page.limit);
    if (pathPrefix !== '/') q = q.where(underPath(pathPrefix));
    if (page.after !== undefined) q = q.where('name_key', '>', page.after);
    return (await q.execute()).map(toPolicy);
  }

  async deletePolicy(accountId: string, name: string): Promise<boolean> {
    const res = await this.db.deleteFrom('iam_policies').where('account_id', '=', accountId).where('name_key', '=', key(name)).executeTakeFirst();
    return Number(res.numDeletedRows) > 0;
  }

  async attachPolicy(accountId: string, type: PrincipalType, name: string, policyArn: string): Promise<void> {
    await this.insertOnce(
      'policy_attachments',
      { account_id: accountId, principal_type: type, principal_key: key(name), policy_arn: policyArn },
      ['account_id', 'principal_type', 'principal_key', 'policy_arn'],
    );
  }

  async detachPolicy(accountId: string, type: PrincipalType, name: string, policyArn: string): Promise<boolean> {
    const res = await this.db
      .deleteFrom('policy_attachments')
      .where('account_id', '=', accountId)
      .where('principal_type', '=', type)
      .where('principal_key', '=', key(name))
      .where('policy_arn', '=', policyArn)
      .executeTakeFirst();
    return Number(res.numDeletedRows) > 0;
  }

  async listAttachedPolicies(accountId: string, type: PrincipalType, name: string): Promise<string[]> {
    const rows = await this.db
      .selectFrom('policy_attachments')
      .select('policy_arn')
      .where('account_id', '=', accountId)
      .where('principal_type', '=', type)
      .where('principal_key', '=', key(name))
      .orderBy('policy_arn')
      .execute();
    return rows.map((r) => r.policy_arn);
  }

  async countPolicyAttachments(policyArn: string): Promise<number> {
    const r = await this.db.selectFrom('policy_attachments').select((eb) => eb.fn.countAll<number>().as('n')).where('policy_arn', '=', policyArn).executeTakeFirst();
    return Number(r?.n ?? 0);
  }

  // --- inline policies --------------------------------------------------------------------

  async putInlinePolicy(accountId: string, type: PrincipalType, name: string, policyName: string, document: string): Promise<void> {
    await this.db
      .insertInto('inline_policies')
      .values({ account_id: accountId, principal_type: type, principal_key: key(name), name_key: key(policyName), name: policyName, document })
      .onConflict((oc) => oc.columns(['account_id', 'principal_type', 'principal_key', 'name_key']).doUpdateSet({ document, name: policyName }))
      .execute();
  }

  async getInlinePolicy(accountId: string, type: PrincipalType, name: string, policyName: string): Promise<{ name: string; document: string } | undefined> {
    const r = await this.db
      .selectFrom('inline_policies')
      .select(['name', 'document'])
      .where('account_id', '=', accountId)
      .where('principal_type', '=', type)
      .where('principal_key', '=', key(name))
      .where('name_key', '=', key(policyName))
      .executeTakeFirst();
    // Plain objects whatever the driver returns (node:sqlite's rows have no prototype).
    return r && { name: r.name, document: r.document };
  }

  async deleteInlinePolicy(accountId: string, type: PrincipalType, name: string, policyName: string): Promise<boolean> {
    const res = await this.db
      .deleteFrom('inline_policies')
      .where('account_id', '=', accountId)
      .where('principal_type', '=', type)
      .where('principal_key', '=', key(name))
      .where('name_key', '=', key(policyName))
      .executeTakeFirst();
    return Number(res.numDeletedRows) > 0;
  }

  async listInlinePolicies(accountId: string, type: PrincipalType, name: string): Promise<{ name: string; document: string }[]> {
    const rows = await this.db
      .selectFrom('inline_policies')
      .select(['name', 'document'])
      .where('account_id', '=', accountId)
      .where('principal_type', '=', type)
      .where('principal_key', '=', key(name))
      .orderBy('name_key')
      .execute();
    return rows.map((r) => ({ name: r.name, document: r.document }));
  }

  // --- login profiles and the password policy -------------------------------------------

  async createLoginProfile(row: LoginProfileRow): Promise<boolean> {
    return this.insertOnce(
      'login_profiles',
      {
        account_id: row.accountId,
        user_key: key(row.userName),
        password_hash: row.passwordHash,
        is_reset_required: row.isResetRequired ? 1 : 0,
        created_at: row.createdAtMs,
        password_changed_at: row.passwordChangedAtMs,
        last_used_at: row.lastUsedAtMs,
        previous_hashes: JSON.stringify(row.previousHashes),
      },
      ['account_id', 'user_key'],
    );
  }

  async getLoginProfile(accountId: string, userName: string): Promise<LoginProfileRow | undefined> {
    const r = await this.db
      .selectFrom('login_profiles as p')
      .innerJoin('iam_users as u', (j) => j.onRef('u.account_id', '=', 'p.account_id').onRef('u.name_key', '=', 'p.user_key'))
      .selectAll('p')
      .select('u.name as user_name')
      .where('p.account_id', '=', accountId)
      .where('p.user_key', '=', key(userName))
      .executeTakeFirst();
    return r && toLoginProfile(r);
  }

  async updateLoginProfile(
    accountId: string,
    userName: string,
    change: Partial<Pick<LoginProfileRow, 'passwordHash' | 'isResetRequired' | 'passwordChangedAtMs' | 'previousHashes'>>,
    expectedHash?: string,
  ): Promise<boolean> {
    const set: Partial<Schema['login_profiles']> = {};
    if (change.passwordHash !== undefined) set.password_hash = change.passwordHash;
    if (change.isResetRequired !== undefined) set.is_reset_required = change.isResetRequired ? 1 : 0;
    if (change.passwordChangedAtMs !== undefined) set.password_changed_at = change.passwordChangedAtMs;
    if (change.previousHashes !== undefined) set.previous_hashes = JSON.stringify(change.previousHashes);
    let q = this.db.updateTable('login_profiles').where('account_id', '=', accountId).where('user_key', '=', key(userName));
    if (expectedHash !== undefined) q = q.where('password_hash', '=', expectedHash);
    if (Object.keys(set).length === 0) {
      // Nothing to change: still tell whether the profile is there (and still has that hash).
      let probe = this.db.selectFrom('login_profiles').select('account_id').where('account_id', '=', accountId).where('user_key', '=', key(userName));
      if (expectedHash !== undefined) probe = probe.where('password_hash', '=', expectedHash);
      return (await probe.executeTakeFirst()) !== undefined;
    }
    const res = await q.set(set).executeTakeFirst();
    return Number(res.numUpdatedRows) > 0;
  }

  async touchLoginProfile(accountId: string, userName: string, atMs: number): Promise<void> {
    await this.db.updateTable('login_profiles').set({ last_used_at: atMs }).where('account_id', '=', accountId).where('user_key', '=', key(userName)).execute();
  }

  async deleteLoginProfile(accountId: string, userName: string): Promise<boolean> {
    const res = await this.db.deleteFrom('login_profiles').where('account_id', '=', accountId).where('user_key', '=', key(userName)).executeTakeFirst();
    return Number(res.numDeletedRows) > 0;
  }

  async getPasswordPolicy(accountId: string): Promise<PasswordPolicy | undefined> {
    const r = await this.db.selectFrom('password_policies').selectAll().where('account_id', '=', accountId).executeTakeFirst();
    return r && toPasswordPolicy(r);
  }

  async putPasswordPolicy(accountId: string, policy: PasswordPolicy, nowMs: number): Promise<void> {
    const values = {
      minimum_password_length: policy.minimumPasswordLength,
      require_symbols: policy.requireSymbols ? 1 : 0,
      require_numbers: policy.requireNumbers ? 1 : 0,
      require_uppercase_characters: policy.requireUppercaseCharacters ? 1 : 0,
      require_lowercase_characters: policy.requireLowercaseCharacters ? 1 : 0,
      allow_users_to_change_password: policy.allowUsersToChangePassword ? 1 : 0,
      max_password_age: policy.maxPasswordAge,
      password_reuse_prevention: policy.passwordReusePrevention,
      hard_expiry: policy.hardExpiry ? 1 : 0,
      updated_at: nowMs,
    };
    await this.db
      .insertInto('password_policies')
      .values({ account_id: accountId, ...values })
      .onConflict((oc) => oc.column('account_id').doUpdateSet(values))
      .execute();
  }

  async deletePasswordPolicy(accountId: string): Promise<boolean> {
    const res = await this.db.deleteFrom('password_policies').where('account_id', '=', accountId).executeTakeFirst();
    return Number(res.numDeletedRows) > 0;
  }

  // --- console sessions -------------------------------------------------------------------

  async createConsoleSession(row: ConsoleSessionRow): Promise<void> {
    await this.db
      .insertInto('console_sessions')
      .values({
        id_hash: row.idHash,
        account_id: row.accountId,
        user_name: row.userName,
        user_id: row.userId,
        access_key_id: row.accessKeyId,
        session_token: row.sessionToken,
        created_at: row.createdAtMs,
        expires_at: row.expiresAtMs,
        must_change_password: row.mustChangePassword ? 1 : 0,
      })
      .execute();
  }

  async clearConsoleSessionPasswordChange(idHash: string): Promise<void> {
    await this.db.updateTable('console_sessions').set({ must_change_password: 0 }).where('id_hash', '=', idHash).execute();
  }

  async getConsoleSession(idHash: string): Promise<ConsoleSessionRow | undefined> {
    const r = await this.db.selectFrom('console_sessions').selectAll().where('id_hash', '=', idHash).executeTakeFirst();
    return r && toConsoleSession(r);
  }

  async deleteConsoleSession(idHash: string): Promise<void> {
    await this.db.deleteFrom('console_sessions').where('id_hash', '=', idHash).execute();
  }

  async deleteExpiredConsoleSessions(nowMs: number): Promise<number> {
    const res = await this.db.deleteFrom('console_sessions').where('expires_at', '<=', nowMs).executeTakeFirst();
    return Number(res.numDeletedRows);
  }

  // --- registry policy --------------------------------------------------------------------

  async getRegistryPolicy(accountId: string): Promise<string | undefined> {
    const r = await this.db.selectFrom('registry_policies').select('document').where('account_id', '=', accountId).executeTakeFirst();
    return r?.document;
  }

  async setRegistryPolicy(accountId: string, document: string | null, nowMs: number): Promise<void> {
    if (document === null) {
      await this.db.deleteFrom('registry_policies').where('account_id', '=', accountId).execute();
      return;
    }
    await this.db
      .insertInto('registry_policies')
      .values({ account_id: accountId, document, updated_at: nowMs })
      .onConflict((oc) => oc.column('account_id').doUpdateSet({ document, updated_at: nowMs }))
      .execute();
  }

}
