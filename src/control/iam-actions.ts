import type { GroupRow, LoginProfileRow, PasswordPolicy, PolicyRow, PrincipalType, RoleRow, Tag, UserRow } from '../store/meta/identity-store.ts';
import { isPasswordExpired, passwordHistoryAfterChange, roleArnOf, userArn } from '../iam/identity.ts';
import { iamArn, newAccessKeyId, newGroupId, newPolicyId, newRoleId, newSecretAccessKey, newUserId } from '../iam/ids.ts';
import { NO_POLICIES } from '../iam/authorizer.ts';
import { managedPolicies, managedPolicyByArn } from '../iam/managed-policies.ts';
import { parsePolicy, PolicyError, type PolicyKind } from '../iam/policy/index.ts';
import { AwsError } from './aws-error.ts';
import type { ActionContext, ActionHandler } from './plane.ts';

/**
 * The IAM Query API subset a registry needs. Errors and limits as IAM has them: names unique per
 * account ignoring case, two access keys per user, entities deletable only once empty.
 */

const noSuch = (what: string, name: string) => new AwsError('NoSuchEntity', `The ${what} with name ${name} cannot be found.`, 404);
const exists = (what: string, name: string) => new AwsError('EntityAlreadyExists', `${what} with name ${name} already exists.`, 409);
const conflict = (message: string) => new AwsError('DeleteConflict', message, 409);

/** IAM returns policy documents URL-encoded (RFC 3986), as AWS does. */
const encodeDoc = (doc: string): string => encodeURIComponent(doc);

function validatePolicy(text: string, kind: PolicyKind, label: string): void {
  try {
    parsePolicy(text, kind, label);
  } catch (err) {
    if (err instanceof PolicyError) throw new AwsError('MalformedPolicyDocument', err.message, 400);
    throw err;
  }
}

function pathOf(input: Record<string, any>): string {
  return (input['Path'] as string | undefined) ?? '/';
}

function page<T>(rows: T[], max: number, keyOf: (row: T) => string): { items: T[]; IsTruncated: boolean; Marker?: string } {
  if (rows.length > max) {
    const items = rows.slice(0, max);
    return { items, IsTruncated: true, Marker: keyOf(items[items.length - 1]!) };
  }
  return { items: rows, IsTruncated: false };
}

function maxItems(input: Record<string, any>): number {
  return (input['MaxItems'] as number | undefined) ?? 100;
}

function tagsOut(tags: Tag[]): Tag[] | undefined {
  return tags.length > 0 ? tags : undefined;
}

function userOut(u: UserRow, withTags = false, passwordLastUsedAtMs?: number | null) {
  return {
    Path: u.path,
    UserName: u.name,
    UserId: u.id,
    Arn: userArn(u),
    CreateDate: new Date(u.createdAtMs),
    ...(passwordLastUsedAtMs ? { PasswordLastUsed: new Date(passwordLastUsedAtMs) } : {}),
    ...(withTags ? { Tags: tagsOut(u.tags) } : {}),
  };
}

function loginProfileOut(p: Pick<LoginProfileRow, 'userName' | 'createdAtMs' | 'isResetRequired'>) {
  return { UserName: p.userName, CreateDate: new Date(p.createdAtMs), PasswordResetRequired: p.isResetRequired };
}

const noLoginProfile = (name: string) => new AwsError('NoSuchEntity', `Login Profile for User ${name} cannot be found.`, 404);
const policyViolation = (message: string) => new AwsError('PasswordPolicyViolation', message, 400);

/** The user a login-profile call is about: UserName, or the caller itself when omitted (as in IAM); undefined when it does not exist. */
async function profileOwner(ctx: ActionContext, input: Record<string, any>): Promise<{ name: string; user: UserRow | undefined }> {
  const given = input['UserName'] as string | undefined;
  if (given === undefined && ctx.principal.type !== 'user') throw new AwsError('ValidationError', 'Must specify userName when calling with non-User credentials', 400);
  const name = given ?? ctx.principal.name;
  return { name, user: await store(ctx).getUser(account(ctx), name) };
}

/**
 * Whether IAM itself lets the caller (a user) act on their own password without a policy
 * saying so: the password policy's AllowUsersToChangePassword, a password that must be reset,
 * or one that expired while HardExpiry is off. Such an allowance is audited as
 * decided by the password policy.
 */
function selfAllowance(policy: PasswordPolicy | undefined, profile: LoginProfileRow | undefined, nowMs: number): string | undefined {
  if (policy?.allowUsersToChangePassword) return 'account password policy#AllowUsersToChangePassword';
  if (profile?.isResetRequired) return 'login profile#PasswordResetRequired';
  if (profile && isPasswordExpired(policy, profile, nowMs) && !policy?.hardExpiry) return 'account password policy#MaxPasswordAge';
  return undefined;
}

/**
 * ctx.authorize, except that an implicit deny gives way to `allowance` (see selfAllowance); an
 * explicit deny in the caller's policies still wins.
 */
async function authorizeSelf(ctx: ActionContext, action: string, resource: string, allowance: string | undefined): Promise<void> {
  if (allowance !== undefined) {
    const q = { caller: ctx.caller, action, resource, resourceAccountId: account(ctx), resourcePolicies: NO_POLICIES };
    if ((await ctx.deps.authorizer.decide(q, false)).effect === 'implicit-deny') {
      ctx.deps.authorizer.recordEvent(q, 'allow', allowance);
      return;
    }
  }
  await ctx.authorize(action, resource);
}

/** UpdateAccountPasswordPolicy's input as a policy: every omitted parameter takes IAM's default. */
function passwordPolicyOf(input: Record<string, any>): PasswordPolicy {
  return {
    minimumPasswordLength: (input['MinimumPasswordLength'] as number | undefined) ?? 6,
    requireSymbols: input['RequireSymbols'] === true,
    requireNumbers: input['RequireNumbers'] === true,
    requireUppercaseCharacters: input['RequireUppercaseCharacters'] === true,
    requireLowercaseCharacters: input['RequireLowercaseCharacters'] === true,
    allowUsersToChangePassword: input['AllowUsersToChangePassword'] === true,
    maxPasswordAge: (input['MaxPasswordAge'] as number | undefined) ?? null,
    passwordReusePrevention: (input['PasswordReusePrevention'] as number | undefined) ?? null,
    hardExpiry: input['HardExpiry'] === true,
  };
}

function passwordPolicyOut(p: PasswordPolicy) {
  return {
    MinimumPasswordLength: p.minimumPasswordLength,
    RequireSymbols: p.requireSymbols,
    RequireNumbers: p.requireNumbers,
    RequireUppercaseCharacters: p.requireUppercaseCharacters,
    RequireLowercaseCharacters: p.requireLowercaseCharacters,
    AllowUsersToChangePassword: p.allowUsersToChangePassword,
    ExpirePasswords: p.maxPasswordAge !== null,
    ...(p.maxPasswordAge !== null ? { MaxPasswordAge: p.maxPasswordAge } : {}),
    ...(p.passwordReusePrevention !== null ? { PasswordReusePrevention: p.passwordReusePrevention } : {}),
    ...(p.hardExpiry ? { HardExpiry: true } : {}),
  };
}

function groupOut(g: GroupRow) {
  return { Path: g.path, GroupName: g.name, GroupId: g.id, Arn: iamArn(g.accountId, 'group', g.path, g.name), CreateDate: new Date(g.createdAtMs) };
}

function roleOut(r: RoleRow) {
  return {
    Path: r.path,
    RoleName: r.name,
    RoleId: r.id,
    Arn: roleArnOf(r),
    CreateDate: new Date(r.createdAtMs),
    AssumeRolePolicyDocument: encodeDoc(r.trustPolicy),
    ...(r.description ? { Description: r.description } : {}),
    MaxSessionDuration: r.maxSessionSeconds,
    Tags: tagsOut(r.tags),
  };
}

async function policyOut(ctx: ActionContext, p: PolicyRow) {
  const arn = iamArn(p.accountId, 'policy', p.path, p.name);
  return {
    PolicyName: p.name,
    PolicyId: p.id,
    Arn: arn,
    Path: p.path,
    DefaultVersionId: 'v1',
    AttachmentCount: await ctx.deps.identity.store.countPolicyAttachments(arn),
    PermissionsBoundaryUsageCount: 0,
    IsAttachable: true,
    ...(p.description ? { Description: p.description } : {}),
    CreateDate: new Date(p.createdAtMs),
    UpdateDate: new Date(p.updatedAtMs),
  };
}

function mergeTags(existing: Tag[], added: Tag[]): Tag[] {
  const map = new Map(existing.map((t) => [t.Key, t]));
  for (const t of added) map.set(t.Key, { Key: t.Key, Value: t.Value ?? '' });
  if (map.size > 50) throw new AwsError('LimitExceeded', 'Cannot exceed quota for TagsPerUser: 50.', 409);
  return [...map.values()];
}

const store = (ctx: ActionContext) => ctx.deps.identity.store;
const account = (ctx: ActionContext) => ctx.principal.accountId;

/** Changes to identities apply at once on this node (and within auth.cacheTtlSeconds elsewhere). */
function changed(ctx: ActionContext): void {
  ctx.deps.identity.invalidate();
}

async function getUserOrThrow(ctx: ActionContext, name: string): Promise<UserRow> {
  const u = await store(ctx).getUser(account(ctx), name);
  if (!u) throw noSuch('user', name);
  return u;
}

async function getGroupOrThrow(ctx: ActionContext, name: string): Promise<GroupRow> {
  const g = await store(ctx).getGroup(account(ctx), name);
  if (!g) throw noSuch('group', name);
  return g;
}

async function getRoleOrThrow(ctx: ActionContext, name: string): Promise<RoleRow> {
  const r = await store(ctx).getRole(account(ctx), name);
  if (!r) throw noSuch('role', name);
  return r;
}

/** The user an access-key call is about: UserName, or the caller itself when omitted (as in IAM). */
async function keyOwner(ctx: ActionContext, input: Record<string, any>): Promise<UserRow> {
  const name = input['UserName'] as string | undefined;
  if (name !== undefined) return getUserOrThrow(ctx, name);
  if (ctx.principal.type !== 'user') throw new AwsError('ValidationError', 'Must specify userName when calling with non-User credentials', 400);
  return getUserOrThrow(ctx, ctx.principal.name);
}

const userResource = (ctx: ActionContext, name: string, u?: UserRow) => iamArn(account(ctx), 'user', u?.path ?? '/', u?.name ?? name);
const groupResource = (ctx: ActionContext, name: string, g?: GroupRow) => iamArn(account(ctx), 'group', g?.path ?? '/', g?.name ?? name);
const roleResource = (ctx: ActionContext, name: string, r?: RoleRow) => iamArn(account(ctx), 'role', r?.path ?? '/', r?.name ?? name);

/** A policy ARN that can be attached in this account: an AWS-managed one, or one of the account's own. */
async function resolvePolicyArn(ctx: ActionContext, arn: string): Promise<PolicyRow | 'managed'> {
  if (managedPolicyByArn.has(arn)) return 'managed';
  const m = /^arn:aws:iam::(\d{12}):policy\/(?:(.*)\/)?([\w+=,.@-]+)$/.exec(arn);
  if (!m || m[1] !== account(ctx)) throw new AwsError('NoSuchEntity', `Policy ${arn} does not exist or is not attachable.`, 404);
  const p = await store(ctx).getPolicy(m[1]!, m[3]!);
  if (!p || iamArn(p.accountId, 'policy', p.path, p.name) !== arn) throw new AwsError('NoSuchEntity', `Policy ${arn} does not exist or is not attachable.`, 404);
  return p;
}

function attachActions(type: PrincipalType, label: 'User' | 'Group' | 'Role'): Record<string, ActionHandler> {
  const nameKey = `${label}Name`;
  const lookup = async (ctx: ActionContext, name: string) =>
    type === 'user' ? getUserOrThrow(ctx, name) : type === 'group' ? getGroupOrThrow(ctx, name) : getRoleOrThrow(ctx, name);
  const resource = (ctx: ActionContext, name: string, row: { path: string; name: string }) =>
    type === 'user' ? userResource(ctx, name, row as UserRow) : type === 'group' ? groupResource(ctx, name, row as GroupRow) : roleResource(ctx, name, row as RoleRow);
  return {
    [`Attach${label}Policy`]: async (ctx, input) => {
      const name = input[nameKey] as string;
      const row = await lookup(ctx, name);
      await ctx.authorize(`iam:Attach${label}Policy`, resource(ctx, name, row));
      await resolvePolicyArn(ctx, input['PolicyArn']);
      const attached = await store(ctx).listAttachedPolicies(account(ctx), type, row.name);
      if (!attached.includes(input['PolicyArn']) && attached.length >= 10) {
        throw new AwsError('LimitExceeded', `Cannot exceed quota for PoliciesPer${label}: 10.`, 409);
      }
      await store(ctx).attachPolicy(account(ctx), type, row.name, input['PolicyArn']);
      changed(ctx);
      return {};
    },
    [`Detach${label}Policy`]: async (ctx, input) => {
      const name = input[nameKey] as string;
      const row = await lookup(ctx, name);
      await ctx.authorize(`iam:Detach${label}Policy`, resource(ctx, name, row));
      if (!(await store(ctx).detachPolicy(account(ctx), type, row.name, input['PolicyArn']))) {
        throw new AwsError('NoSuchEntity', `Policy ${input['PolicyArn']} was not found.`, 404);
      }
      changed(ctx);
      return {};
    },
    [`ListAttached${label}Policies`]: async (ctx, input) => {
      const name = input[nameKey] as string;
      const row = await lookup(ctx, name);
      await ctx.authorize(`iam:ListAttached${label}Policies`, resource(ctx, name, row));
      const arns = (await store(ctx).listAttachedPolicies(account(ctx), type, row.name)).filter((a) => input['Marker'] === undefined || a > input['Marker']);
      const p = page(arns, maxItems(input), (a) => a);
      return {
        AttachedPolicies: p.items.map((arn) => ({ PolicyName: arn.slice(arn.lastIndexOf('/') + 1), PolicyArn: arn })),
        IsTruncated: p.IsTruncated,
        ...(p.Marker ? { Marker: p.Marker } : {}),
      };
    },
    [`Put${label}Policy`]: async (ctx, input) => {
      const name = input[nameKey] as string;
      const row = await lookup(ctx, name);
      await ctx.authorize(`iam:Put${label}Policy`, resource(ctx, name, row));
      validatePolicy(input['PolicyDocument'], 'identity', `${type}/${row.name} inline policy ${input['PolicyName']}`);
      await store(ctx).putInlinePolicy(account(ctx), type, row.name, input['PolicyName'], input['PolicyDocument']);
      changed(ctx);
      return {};
    },
    [`Get${label}Policy`]: async (ctx, input) => {
      const name = input[nameKey] as string;
      const row = await lookup(ctx, name);
      await ctx.authorize(`iam:Get${label}Policy`, resource(ctx, name, row));
      const p = await store(ctx).getInlinePolicy(account(ctx), type, row.name, input['PolicyName']);
      if (!p) throw new AwsError('NoSuchEntity', `The ${type} policy with name ${input['PolicyName']} cannot be found.`, 404);
      return { [nameKey]: row.name, PolicyName: p.name, PolicyDocument: encodeDoc(p.document) };
    },
    [`Delete${label}Policy`]: async (ctx, input) => {
      const name = input[nameKey] as string;
      const row = await lookup(ctx, name);
      await ctx.authorize(`iam:Delete${label}Policy`, resource(ctx, name, row));
      if (!(await store(ctx).deleteInlinePolicy(account(ctx), type, row.name, input['PolicyName']))) {
        throw new AwsError('NoSuchEntity', `The ${type} policy with name ${input['PolicyName']} cannot be found.`, 404);
      }
      changed(ctx);
      return {};
    },
    [`List${label}Policies`]: async (ctx, input) => {
      const name = input[nameKey] as string;
      const row = await lookup(ctx, name);
      await ctx.authorize(`iam:List${label}Policies`, resource(ctx, name, row));
      const names = (await store(ctx).listInlinePolicies(account(ctx), type, row.name)).map((p) => p.name).filter((n) => input['Marker'] === undefined || n > input['Marker']);
      const p = page(names, maxItems(input), (n) => n);
      return { PolicyNames: p.items, IsTruncated: p.IsTruncated, ...(p.Marker ? { Marker: p.Marker } : {}) };
    },
  };
}

/** Deleting a user, group or role requires it to hold nothing (IAM's DeleteConflict). */
async function assertNoPolicies(ctx: ActionContext, type: PrincipalType, name: string): Promise<void> {
  if ((await store(ctx).listAttachedPolicies(account(ctx), type, name)).length > 0) throw conflict('Cannot delete entity, must detach all policies first.');
  if ((await store(ctx).listInlinePolicies(account(ctx), type, name)).length > 0) throw conflict('Cannot delete entity, must delete policies first.');
}

export const iamActions: Record<string, ActionHandler> = {
  // --- users ------------------------------------------------------------------------------
  async CreateUser(ctx, input) {
    const name = input['UserName'] as string;
    const path = pathOf(input);
    await ctx.authorize('iam:CreateUser', iamArn(account(ctx), 'user', path, name));
    const row: UserRow = { accountId: account(ctx), name, id: newUserId(), path, tags: mergeTags([], input['Tags'] ?? []), createdAtMs: Date.now() };
    if (!(await store(ctx).createUser(row))) throw exists('User', name);
    return { User: userOut(row, true) };
  },

  async GetUser(ctx, input) {
    const name = (input['UserName'] as string | undefined) ?? (ctx.principal.type === 'user' ? ctx.principal.name : undefined);
    if (name === undefined) throw new AwsError('ValidationError', 'Must specify userName when calling with non-User credentials', 400);
    const u = await store(ctx).getUser(account(ctx), name);
    await ctx.authorize('iam:GetUser', userResource(ctx, name, u));
    if (!u) throw noSuch('user', name);
    const profile = await store(ctx).getLoginProfile(account(ctx), u.name);
    return { User: userOut(u, true, profile?.lastUsedAtMs) };
  },

  async ListUsers(ctx, input) {
    await ctx.authorize('iam:ListUsers', iamArn(account(ctx), 'user', '/', '*'));
    const rows = await store(ctx).listUsers(account(ctx), input['PathPrefix'] ?? '/', { after: input['Marker'], limit: maxItems(input) + 1 });
    const p = page(rows, maxItems(input), (u) => u.name.toLowerCase());
    return { Users: p.items.map((u) => userOut(u)), IsTruncated: p.IsTruncated, ...(p.Marker ? { Marker: p.Marker } : {}) };
  },

  async DeleteUser(ctx, input) {
    const name = input['UserName'] as string;
    const u = await store(ctx).getUser(account(ctx), name);
    await ctx.authorize('iam:DeleteUser', userResource(ctx, name, u));
    if (!u) throw noSuch('user', name);
    if ((await store(ctx).getLoginProfile(account(ctx), u.name)) !== undefined) throw conflict('Cannot delete entity, must delete login profile first.');
    if ((await store(ctx).listAccessKeys(account(ctx), u.name)).length > 0) throw conflict('Cannot delete entity, must delete access keys first.');
    if ((await store(ctx).listGroupsForUser(account(ctx), u.name)).length > 0) throw conflict('Cannot delete entity, must remove users from group first.');
    await assertNoPolicies(ctx, 'user', u.name);
    await store(ctx).deleteUser(account(ctx), u.name);
    changed(ctx);
    return {};
  },

  async TagUser(ctx, input) {
    const u = await getUserOrThrow(ctx, input['UserName']);
    await ctx.authorize('iam:TagUser', userResource(ctx, u.name, u));
    await store(ctx).setUserTags(account(ctx), u.name, mergeTags(u.tags, input['Tags']));
    changed(ctx);
    return {};
  },

  async UntagUser(ctx, input) {
    const u = await getUserOrThrow(ctx, input['UserName']);
    await ctx.authorize('iam:UntagUser', userResource(ctx, u.name, u));
    const drop = new Set(input['TagKeys'] as string[]);
    await store(ctx).setUserTags(account(ctx), u.name, u.tags.filter((t) => !drop.has(t.Key)));
    changed(ctx);
    return {};
  },

  async ListUserTags(ctx, input) {
    const u = await getUserOrThrow(ctx, input['UserName']);
    await ctx.authorize('iam:ListUserTags', userResource(ctx, u.name, u));
    return { Tags: u.tags, IsTruncated: false };
  },

  // --- access keys ------------------------------------------------------------------------
  async CreateAccessKey(ctx, input) {
    const u = await keyOwner(ctx, input);
    await ctx.authorize('iam:CreateAccessKey', userResource(ctx, u.name, u));
    if ((await store(ctx).listAccessKeys(account(ctx), u.name)).length >= 2) {
      throw new AwsError('LimitExceeded', 'Cannot exceed quota for AccessKeysPerUser: 2', 409);
    }
    const secret = newSecretAccessKey();
    const id = newAccessKeyId();
    const now = Date.now();
    await store(ctx).createAccessKey({
      id,
      accountId: account(ctx),
      userName: u.name,
      secretSealed: ctx.deps.identity.sealSecret(secret),
      status: 'Active',
      createdAtMs: now,
      lastUsedAtMs: null,
      lastUsedService: null,
    });
    return { AccessKey: { UserName: u.name, AccessKeyId: id, Status: 'Active', SecretAccessKey: secret, CreateDate: new Date(now) } };
  },

  async ListAccessKeys(ctx, input) {
    const u = await keyOwner(ctx, input);
    await ctx.authorize('iam:ListAccessKeys', userResource(ctx, u.name, u));
    const keys = await store(ctx).listAccessKeys(account(ctx), u.name);
    return {
      AccessKeyMetadata: keys.map((k) => ({ UserName: k.userName, AccessKeyId: k.id, Status: k.status, CreateDate: new Date(k.createdAtMs) })),
      IsTruncated: false,
    };
  },

  async UpdateAccessKey(ctx, input) {
    const u = await keyOwner(ctx, input);
    await ctx.authorize('iam:UpdateAccessKey', userResource(ctx, u.name, u));
    const key = await store(ctx).getAccessKey(input['AccessKeyId']);
    if (!key || key.accountId !== account(ctx) || key.userName.toLowerCase() !== u.name.toLowerCase()) {
      throw new AwsError('NoSuchEntity', `The Access Key with id ${input['AccessKeyId']} cannot be found.`, 404);
    }
    await store(ctx).setAccessKeyStatus(key.id, input['Status']);
    changed(ctx);
    return {};
  },

  async DeleteAccessKey(ctx, input) {
    const u = await keyOwner(ctx, input);
    await ctx.authorize('iam:DeleteAccessKey', userResource(ctx, u.name, u));
    const key = await store(ctx).getAccessKey(input['AccessKeyId']);
    if (!key || key.accountId !== account(ctx) || key.userName.toLowerCase() !== u.name.toLowerCase()) {
      throw new AwsError('NoSuchEntity', `The Access Key with id ${input['AccessKeyId']} cannot be found.`, 404);
    }
    await store(ctx).deleteAccessKey(key.id);
    changed(ctx);
    return {};
  },

  async GetAccessKeyLastUsed(ctx, input) {
    const key = await store(ctx).getAccessKey(input['AccessKeyId']);
    if (!key || key.accountId !== account(ctx)) throw new AwsError('NoSuchEntity', `The Access Key with id ${input['AccessKeyId']} cannot be found.`, 404);
    await ctx.authorize('iam:GetAccessKeyLastUsed', userResource(ctx, key.userName, await store(ctx).getUser(account(ctx), key.userName)));
    return {
      UserName: key.userName,
      AccessKeyLastUsed: key.lastUsedAtMs
        ? { LastUsedDate: new Date(key.lastUsedAtMs), ServiceName: key.lastUsedService ?? 'N/A', Region: ctx.deps.region }
        : { ServiceName: 'N/A', Region: 'N/A' },
    };
  },

  // --- console passwords (login profiles) and the password policy --------------------------
  async CreateLoginProfile(ctx, input) {
    const { name, user } = await profileOwner(ctx, input);
    await ctx.authorize('iam:CreateLoginProfile', userResource(ctx, name, user));
    if (!user) throw noSuch('user', name);
    const password = input['Password'] as string | undefined;
    // Only an AssumeRoot session may omit it on AWS, and Berth has no such sessions.
    if (password === undefined) throw new AwsError('ValidationError', '1 validation error detected: Value null at \'password\' failed to satisfy constraint: Member must not be null', 400);
    if ((await store(ctx).getLoginProfile(account(ctx), user.name)) !== undefined) throw new AwsError('EntityAlreadyExists', `Login Profile for user ${user.name} already exists.`, 409);
    const violation = await ctx.deps.identity.passwordViolation(user, password);
    if (violation) throw policyViolation(violation);
    const now = Date.now();
    const row: LoginProfileRow = {
      accountId: account(ctx),
      userName: user.name,
      passwordHash: await ctx.deps.identity.hashPassword(password),
      isResetRequired: input['PasswordResetRequired'] === true,
      createdAtMs: now,
      passwordChangedAtMs: now,
      lastUsedAtMs: null,
      previousHashes: [],
    };
    if (!(await store(ctx).createLoginProfile(row))) throw new AwsError('EntityAlreadyExists', `Login Profile for user ${user.name} already exists.`, 409);
    return { LoginProfile: loginProfileOut(row) };
  },

  async GetLoginProfile(ctx, input) {
    const { name, user } = await profileOwner(ctx, input);
    await ctx.authorize('iam:GetLoginProfile', userResource(ctx, name, user));
    if (!user) throw noSuch('user', name);
    const profile = await store(ctx).getLoginProfile(account(ctx), user.name);
    if (!profile) throw noLoginProfile(user.name);
    return { LoginProfile: loginProfileOut(profile) };
  },

  async UpdateLoginProfile(ctx, input) {
    const name = input['UserName'] as string;
    const user = await store(ctx).getUser(account(ctx), name);
    await ctx.authorize('iam:UpdateLoginProfile', userResource(ctx, name, user));
    if (!user) throw noSuch('user', name);
    const profile = await store(ctx).getLoginProfile(account(ctx), user.name);
    if (!profile) throw noLoginProfile(user.name);
    const password = input['Password'] as string | undefined;
    const change: Parameters<typeof ctx.deps.identity.store.updateLoginProfile>[2] = {};
    if (password !== undefined) {
      const violation = await ctx.deps.identity.passwordViolation(user, password);
      if (violation) throw policyViolation(violation);
      change.passwordHash = await ctx.deps.identity.hashPassword(password);
      change.passwordChangedAtMs = Date.now();
      change.previousHashes = passwordHistoryAfterChange(profile);
    }
    if (input['PasswordResetRequired'] !== undefined) change.isResetRequired = input['PasswordResetRequired'] === true;
    if (!(await store(ctx).updateLoginProfile(account(ctx), user.name, change, password !== undefined ? profile.passwordHash : undefined))) {
      if (!(await store(ctx).getLoginProfile(account(ctx), user.name))) throw noLoginProfile(user.name);
      throw new AwsError('EntityTemporarilyUnmodifiable', `Login Profile for User ${user.name} was changed by another request at the same time; try again.`, 409);
    }
    return {};
  },

  async DeleteLoginProfile(ctx, input) {
    const { name, user } = await profileOwner(ctx, input);
    await ctx.authorize('iam:DeleteLoginProfile', userResource(ctx, name, user));
    if (!user) throw noSuch('user', name);
    if (!(await store(ctx).deleteLoginProfile(account(ctx), user.name))) throw noLoginProfile(user.name);
    return {};
  },

  async ChangePassword(ctx, input) {
    // Only an IAM user has a console password of its own (AWS: InvalidUserType for the root
    // user; a role session has no password either).
    if (ctx.principal.type !== 'user') {
      throw new AwsError('InvalidUserType', `ChangePassword changes the password of the IAM user who calls it; ${ctx.principal.arn} is not an IAM user.`, 400);
    }
    const user = await store(ctx).getUser(account(ctx), ctx.principal.name);
    const profile = user && (await store(ctx).getLoginProfile(account(ctx), user.name));
    const policy = await store(ctx).getPasswordPolicy(account(ctx));
    await authorizeSelf(ctx, 'iam:ChangePassword', userResource(ctx, ctx.principal.name, user), selfAllowance(policy, profile, Date.now()));
    if (!user || user.id !== ctx.principal.userId) throw noSuch('user', ctx.principal.name);
    if (!profile) throw noLoginProfile(user.name);
    if (!(await ctx.deps.identity.checkPassword(profile, input['OldPassword']))) {
      throw new AwsError('AccessDenied', 'The old password is incorrect.', 403);
    }
    const next = input['NewPassword'] as string;
    const violation = await ctx.deps.identity.passwordViolation(user, next, profile);
    if (violation) throw policyViolation(violation);
    if (next === input['OldPassword'] && profile.isResetRequired) throw policyViolation('The new password must differ from the current one: the password must be reset.');
    const changed = await store(ctx).updateLoginProfile(
      account(ctx),
      user.name,
      { passwordHash: await ctx.deps.identity.hashPassword(next), passwordChangedAtMs: Date.now(), isResetRequired: false, previousHashes: passwordHistoryAfterChange(profile) },
      profile.passwordHash,
    );
    if (!changed) {
      if (!(await store(ctx).getLoginProfile(account(ctx), user.name))) throw noLoginProfile(user.name);
      throw new AwsError('EntityTemporarilyUnmodifiable', `Login Profile for User ${user.name} was changed by another request at the same time; try again.`, 409);
    }
    return {};
  },

  async GetAccountPasswordPolicy(ctx) {
    const policy = await store(ctx).getPasswordPolicy(account(ctx));
    let allowance: string | undefined;
    if (ctx.principal.type === 'user') {
      // Whoever may change their own password may read the rules it must follow.
      const profile = await store(ctx).getLoginProfile(account(ctx), ctx.principal.name);
      allowance = selfAllowance(policy, profile, Date.now());
    }
    await authorizeSelf(ctx, 'iam:GetAccountPasswordPolicy', '*', allowance);
    if (!policy) throw new AwsError('NoSuchEntity', `The Password Policy with domain name ${account(ctx)} cannot be found.`, 404);
    return { PasswordPolicy: passwordPolicyOut(policy) };
  },

  async UpdateAccountPasswordPolicy(ctx, input) {
    await ctx.authorize('iam:UpdateAccountPasswordPolicy', '*');
    await store(ctx).putPasswordPolicy(account(ctx), passwordPolicyOf(input), Date.now());
    return {};
  },

  async DeleteAccountPasswordPolicy(ctx) {
    await ctx.authorize('iam:DeleteAccountPasswordPolicy', '*');
    if (!(await store(ctx).deletePasswordPolicy(account(ctx)))) throw new AwsError('NoSuchEntity', 'The account policy with name PasswordPolicy cannot be found.', 404);
    return {};
  },

  // --- groups -----------------------------------------------------------------------------
  async CreateGroup(ctx, input) {
    const name = input['GroupName'] as string;
    const path = pathOf(input);
    await ctx.authorize('iam:CreateGroup', iamArn(account(ctx), 'group', path, name));
    const row: GroupRow = { accountId: account(ctx), name, id: newGroupId(), path, createdAtMs: Date.now() };
    if (!(await store(ctx).createGroup(row))) throw exists('Group', name);
    return { Group: groupOut(row) };
  },

  async GetGroup(ctx, input) {
    const g = await getGroupOrThrow(ctx, input['GroupName']);
    await ctx.authorize('iam:GetGroup', groupResource(ctx, g.name, g));
    const members = await store(ctx).listGroupMembers(account(ctx), g.name);
    const users = [];
    for (const name of members) {
      const u = await store(ctx).getUser(account(ctx), name);
      if (u) users.push(userOut(u));
    }
    return { Group: groupOut(g), Users: users, IsTruncated: false };
  },

  async ListGroups(ctx, input) {
    await ctx.authorize('iam:ListGroups', iamArn(account(ctx), 'group', '/', '*'));
    const rows = await store(ctx).listGroups(account(ctx), input['PathPrefix'] ?? '/', { after: input['Marker'], limit: maxItems(input) + 1 });
    const p = page(rows, maxItems(input), (g) => g.name.toLowerCase());
    return { Groups: p.items.map(groupOut), IsTruncated: p.IsTruncated, ...(p.Marker ? { Marker: p.Marker } : {}) };
  },

  async DeleteGroup(ctx, input) {
    const g = await getGroupOrThrow(ctx, input['GroupName']);
    await ctx.authorize('iam:DeleteGroup', groupResource(ctx, g.name, g));
    if ((await store(ctx).listGroupMembers(account(ctx), g.name)).length > 0) throw conflict('Cannot delete entity, must remove users from group first.');
    await assertNoPolicies(ctx, 'group', g.name);
    await store(ctx).deleteGroup(account(ctx), g.name);
    changed(ctx);
    return {};
  },

  async AddUserToGroup(ctx, input) {
    const g = await getGroupOrThrow(ctx, input['GroupName']);
    await ctx.authorize('iam:AddUserToGroup', groupResource(ctx, g.name, g));
    const u = await getUserOrThrow(ctx, input['UserName']);
    await store(ctx).addUserToGroup(account(ctx), g.name, u.name);
    changed(ctx);
    return {};
  },

  async RemoveUserFromGroup(ctx, input) {
    const g = await getGroupOrThrow(ctx, input['GroupName']);
    await ctx.authorize('iam:RemoveUserFromGroup', groupResource(ctx, g.name, g));
    const u = await getUserOrThrow(ctx, input['UserName']);
    if (!(await store(ctx).removeUserFromGroup(account(ctx), g.name, u.name))) {
      throw new AwsError('NoSuchEntity', `User ${u.name} is not in group ${g.name}.`, 404);
    }
    changed(ctx);
    return {};
  },

  async ListGroupsForUser(ctx, input) {
    const u = await getUserOrThrow(ctx, input['UserName']);
    await ctx.authorize('iam:ListGroupsForUser', userResource(ctx, u.name, u));
    return { Groups: (await store(ctx).listGroupsForUser(account(ctx), u.name)).map(groupOut), IsTruncated: false };
  },

  // --- roles ------------------------------------------------------------------------------
  async CreateRole(ctx, input) {
    const name = input['RoleName'] as string;
    const path = pathOf(input);
    await ctx.authorize('iam:CreateRole', iamArn(account(ctx), 'role', path, name));
    validatePolicy(input['AssumeRolePolicyDocument'], 'trust', `trust policy of role ${name}`);
    const max = (input['MaxSessionDuration'] as number | undefined) ?? 3600;
    const row: RoleRow = {
      accountId: account(ctx),
      name,
      id: newRoleId(),
      path,
      trustPolicy: input['AssumeRolePolicyDocument'],
      description: input['Description'] ?? null,
      maxSessionSeconds: max,
      tags: mergeTags([], input['Tags'] ?? []),
      createdAtMs: Date.now(),
    };
    if (!(await store(ctx).createRole(row))) throw exists('Role', name);
    return { Role: roleOut(row) };
  },

  async GetRole(ctx, input) {
    const r = await getRoleOrThrow(ctx, input['RoleName']);
    await ctx.authorize('iam:GetRole', roleResource(ctx, r.name, r));
    return { Role: roleOut(r) };
  },

  async ListRoles(ctx, input) {
    await ctx.authorize('iam:ListRoles', iamArn(account(ctx), 'role', '/', '*'));
    const rows = await store(ctx).listRoles(account(ctx), input['PathPrefix'] ?? '/', { after: input['Marker'], limit: maxItems(input) + 1 });
    const p = page(rows, maxItems(input), (r) => r.name.toLowerCase());
    return { Roles: p.items.map(roleOut), IsTruncated: p.IsTruncated, ...(p.Marker ? { Marker: p.Marker } : {}) };
  },

  async DeleteRole(ctx, input) {
    const r = await getRoleOrThrow(ctx, input['RoleName']);
    await ctx.authorize('iam:DeleteRole', roleResource(ctx, r.name, r));
    await assertNoPolicies(ctx, 'role', r.name);
    await store(ctx).deleteRole(account(ctx), r.name);
    changed(ctx);
    return {};
  },

  async UpdateAssumeRolePolicy(ctx, input) {
    const r = await getRoleOrThrow(ctx, input['RoleName']);
    await ctx.authorize('iam:UpdateAssumeRolePolicy', roleResource(ctx, r.name, r));
    validatePolicy(input['PolicyDocument'], 'trust', `trust policy of role ${r.name}`);
    await store(ctx).setRoleTrustPolicy(account(ctx), r.name, input['PolicyDocument']);
    changed(ctx);
    return {};
  },

  async TagRole(ctx, input) {
    const r = await getRoleOrThrow(ctx, input['RoleName']);
    await ctx.authorize('iam:TagRole', roleResource(ctx, r.name, r));
    await store(ctx).setRoleTags(account(ctx), r.name, mergeTags(r.tags, input['Tags']));
    changed(ctx);
    return {};
  },

  async UntagRole(ctx, input) {
    const r = await getRoleOrThrow(ctx, input['RoleName']);
    await ctx.authorize('iam:UntagRole', roleResource(ctx, r.name, r));
    const drop = new Set(input['TagKeys'] as string[]);
    await store(ctx).setRoleTags(account(ctx), r.name, r.tags.filter((t) => !drop.has(t.Key)));
    changed(ctx);
    return {};
  },

  async ListRoleTags(ctx, input) {
    const r = await getRoleOrThrow(ctx, input['RoleName']);
    await ctx.authorize('iam:ListRoleTags', roleResource(ctx, r.name, r));
    return { Tags: r.tags, IsTruncated: false };
  },

  // --- managed policies -------------------------------------------------------------------
  async CreatePolicy(ctx, input) {
    const name = input['PolicyName'] as string;
    const path = pathOf(input);
    await ctx.authorize('iam:CreatePolicy', iamArn(account(ctx), 'policy', path, name));
    validatePolicy(input['PolicyDocument'], 'identity', iamArn(account(ctx), 'policy', path, name));
    const now = Date.now();
    const row: PolicyRow = { accountId: account(ctx), name, id: newPolicyId(), path, document: input['PolicyDocument'], description: input['Description'] ?? null, createdAtMs: now, updatedAtMs: now };
    if (!(await store(ctx).createPolicy(row))) throw new AwsError('EntityAlreadyExists', `A policy called ${name} already exists. Duplicate names are not allowed.`, 409);
    return { Policy: await policyOut(ctx, row) };
  },

  async GetPolicy(ctx, input) {
    const arn = input['PolicyArn'] as string;
    await ctx.authorize('iam:GetPolicy', arn);
    const resolved = await resolvePolicyArn(ctx, arn);
    if (resolved === 'managed') {
      const m = managedPolicyByArn.get(arn)!;
      return {
        Policy: {
          PolicyName: m.name,
          PolicyId: m.id,
          Arn: m.arn,
          Path: '/',
          DefaultVersionId: 'v1',
          AttachmentCount: await store(ctx).countPolicyAttachments(arn),
          PermissionsBoundaryUsageCount: 0,
          IsAttachable: true,
          Description: m.description,
          CreateDate: new Date(0),
          UpdateDate: new Date(0),
        },
      };
    }
    return { Policy: await policyOut(ctx, resolved) };
  },

  async GetPolicyVersion(ctx, input) {
    const arn = input['PolicyArn'] as string;
    await ctx.authorize('iam:GetPolicyVersion', arn);
    const resolved = await resolvePolicyArn(ctx, arn);
    if (input['VersionId'] !== 'v1') throw new AwsError('NoSuchEntity', `Policy ${arn} version ${input['VersionId']} does not exist or is not attachable.`, 404);
    const document = resolved === 'managed' ? managedPolicyByArn.get(arn)!.document : resolved.document;
    const created = resolved === 'managed' ? 0 : resolved.createdAtMs;
    return { PolicyVersion: { Document: encodeDoc(document), VersionId: 'v1', IsDefaultVersion: true, CreateDate: new Date(created) } };
  },

  async ListPolicies(ctx, input) {
    await ctx.authorize('iam:ListPolicies', iamArn(account(ctx), 'policy', '/', '*'));
    const scope = (input['Scope'] as string | undefined) ?? 'All';
    const out = [];
    if (scope !== 'Local') {
      for (const m of managedPolicies) {
        const count = await store(ctx).countPolicyAttachments(m.arn);
        if (input['OnlyAttached'] && count === 0) continue;
        out.push({ PolicyName: m.name, PolicyId: m.id, Arn: m.arn, Path: '/', DefaultVersionId: 'v1', AttachmentCount: count, PermissionsBoundaryUsageCount: 0, IsAttachable: true, CreateDate: new Date(0), UpdateDate: new Date(0) });
      }
    }
    if (scope !== 'AWS') {
      for (const p of await store(ctx).listPolicies(account(ctx), input['PathPrefix'] ?? '/', { limit: 10_000 })) {
        const o = await policyOut(ctx, p);
        if (input['OnlyAttached'] && o.AttachmentCount === 0) continue;
        out.push(o);
      }
    }
    const after = out.filter((p) => input['Marker'] === undefined || p.Arn > input['Marker']).sort((a, b) => (a.Arn < b.Arn ? -1 : 1));
    const p = page(after, maxItems(input), (x) => x.Arn);
    return { Policies: p.items, IsTruncated: p.IsTruncated, ...(p.Marker ? { Marker: p.Marker } : {}) };
  },

  async DeletePolicy(ctx, input) {
    const arn = input['PolicyArn'] as string;
    await ctx.authorize('iam:DeletePolicy', arn);
    const resolved = await resolvePolicyArn(ctx, arn);
    if (resolved === 'managed') throw new AwsError('AccessDenied', 'AWS managed policies cannot be deleted.', 403);
    if ((await store(ctx).countPolicyAttachments(arn)) > 0) throw conflict('Cannot delete a policy attached to entities.');
    await store(ctx).deletePolicy(account(ctx), resolved.name);
    changed(ctx);
    return {};
  },

  ...attachActions('user', 'User'),
  ...attachActions('group', 'Group'),
  ...attachActions('role', 'Role'),
};
