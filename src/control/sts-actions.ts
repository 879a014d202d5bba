import { AwsError } from './aws-error.ts';
import type { ActionHandler } from './plane.ts';

/** STS's Credentials member for temporary credentials (AssumeRole, GetSessionToken). */
function credentialsOut(creds: { accessKeyId: string; secretAccessKey: string; sessionToken: string; expiration: Date }) {
  return { AccessKeyId: creds.accessKeyId, SecretAccessKey: creds.secretAccessKey, SessionToken: creds.sessionToken, Expiration: creds.expiration };
}

const ROLE_ARN = /^arn:aws:iam::(\d{12}):role\/(?:(.*)\/)?([\w+=,.@-]+)$/;

/** STS: who am I, role sessions, and users' sessions. */
export const stsActions: Record<string, ActionHandler> = {
  async GetCallerIdentity(ctx) {
    // Always allowed, as in AWS: it reveals nothing the credentials do not already know.
    return { UserId: ctx.principal.userId, Account: ctx.principal.accountId, Arn: ctx.principal.arn };
  },

  async AssumeRole(ctx, input) {
    const roleArn = String(input['RoleArn']);
    const sessionName = String(input['RoleSessionName']);
    const m = ROLE_ARN.exec(roleArn);
    const denied = () =>
      new AwsError('AccessDenied', `User: ${ctx.principal.arn} is not authorized to perform: sts:AssumeRole on resource: ${roleArn}`, 403);
    if (!m) throw new AwsError('ValidationError', `${roleArn} is not a valid role ARN (arn:aws:iam::ACCOUNT:role/NAME).`, 400);
    if (input['Policy'] !== undefined || input['PolicyArns'] !== undefined) {
      // Session policies narrow a session; ignoring them would hand out the role's full
      // permissions to a caller who asked for less, so they are refused until supported.
      throw new AwsError('ValidationError', 'Session policies (Policy, PolicyArns) are not supported by this registry; assume the role without them or use a role with narrower policies.', 400);
    }
    const [, accountId, , roleName] = m;
    const role = await ctx.deps.identity.store.getRole(accountId!, roleName!);
    // A missing role and a refused one look the same to the caller, as in AWS.
    if (!role) {
      ctx.deps.authorizer.recordEvent({ caller: ctx.caller, action: 'sts:AssumeRole', resource: roleArn, resourceAccountId: accountId!, resourcePolicies: [] }, 'implicit-deny', 'no such role');
      throw denied();
    }
    const trust = await ctx.deps.identity.trustPolicy(role);
    const decision = await ctx.deps.authorizer.decide({
      caller: ctx.caller,
      action: 'sts:AssumeRole',
      resource: roleArn,
      resourceAccountId: role.accountId,
      resourcePolicies: trust ? [trust] : [],
      requireResourceAllow: true,
      // Trust policies commonly require the external id a third party was given.
      ...(input['ExternalId'] !== undefined ? { keys: { 'sts:ExternalId': String(input['ExternalId']) } } : {}),
    });
    if (decision.effect !== 'allow') throw denied();
    const duration = input['DurationSeconds'] === undefined ? 3600 : Number(input['DurationSeconds']);
    if (duration > role.maxSessionSeconds) {
      throw new AwsError(
        'ValidationError',
        `The requested DurationSeconds exceeds the MaxSessionDuration set for this role (${role.maxSessionSeconds} seconds).`,
        400,
      );
    }
    if (ctx.principal.type === 'assumed-role' && duration > 3600) {
      throw new AwsError('ValidationError', 'The requested DurationSeconds exceeds the 1 hour session limit for roles assumed by role chaining.', 400);
    }
    const creds = ctx.deps.identity.issueRoleSession(role, sessionName, duration, ctx.principal.arn);
    return {
      Credentials: credentialsOut(creds),
      AssumedRoleUser: { AssumedRoleId: creds.assumedRoleId, Arn: creds.assumedRoleArn },
    };
  },

  async GetSessionToken(ctx, input) {
    // As in AWS: no permission is needed (it only re-issues what the caller already has), and
    // temporary credentials cannot make more of themselves.
    if (ctx.principal.accessKeyId?.startsWith('ASIA') || ctx.principal.type === 'assumed-role') {
      throw new AwsError('AccessDenied', 'Cannot call GetSessionToken with session credentials', 403);
    }
    if (ctx.principal.type !== 'user') {
      throw new AwsError('AccessDenied', 'GetSessionToken issues credentials of an IAM user; with authentication disabled there is no user to issue them for.', 403);
    }
    if (input['SerialNumber'] !== undefined || input['TokenCode'] !== undefined) {
      // No MFA device exists in this registry, so no code can be checked; AWS refuses an
      // unverifiable one rather than issue credentials without it.
      throw new AwsError('AccessDenied', 'MultiFactorAuthentication failed: this registry has no MFA devices; call GetSessionToken without SerialNumber and TokenCode.', 403);
    }
    const user = await ctx.deps.identity.store.getUser(ctx.principal.accountId, ctx.principal.name);
    if (!user || user.id !== ctx.principal.userId) throw new AwsError('InvalidClientTokenId', 'The security token included in the request is invalid.', 403);
    // The model bounds DurationSeconds to 900..129,600 (36 hours) for IAM users; 12 hours by default.
    const duration = input['DurationSeconds'] === undefined ? 43_200 : Number(input['DurationSeconds']);
    const creds = ctx.deps.identity.issueUserSession(user, duration);
    return {
      Credentials: credentialsOut(creds),
    };
  },
};
