import type { CompiledCondition } from './conditions.ts';
import type { PrincipalSet } from './principal.ts';
import type { PatternSet } from './wildcard.ts';

/**
 * Where a policy is attached, which decides the elements it may and must have:
 * identity (users, groups, roles), resource (ECR repository and registry policies) or trust
 * (a role's assume-role policy).
 */
export type PolicyKind = 'identity' | 'resource' | 'trust';

/** The policy language version; policy variables are substituted only under 2012-10-17. */
export type PolicyVersion = '2012-10-17' | '2008-10-17';

/** A parsed, validated policy whose patterns are compiled once, ready for `evaluate`. */
export interface CompiledPolicy {
  /** Who this policy is, for audit and error messages: e.g. "arn:aws:iam::123456789012:policy/ci-push",
   *  "user/alice inline policy pull", "repository policy of app/api". Passed in by the caller. */
  label: string;
  kind: PolicyKind;
  version: PolicyVersion;
  statements: CompiledStatement[];
}

/** One statement, with its Action, Resource, Principal and Condition elements precompiled. */
export interface CompiledStatement {
  /** 0-based position in the policy's Statement list. */
  readonly index: number;
  readonly sid: string | undefined;
  readonly effect: 'Allow' | 'Deny';
  /** The Action or NotAction patterns; `isNotAction` says which element it was. */
  readonly actions: PatternSet;
  readonly isNotAction: boolean;
  /** The Resource or NotResource patterns; undefined when the statement has neither, which in a
   *  resource or trust policy means the resource the policy is attached to. */
  readonly resources: PatternSet | undefined;
  readonly isNotResource: boolean;
  /** The Principal or NotPrincipal; undefined in identity policies. */
  readonly principals: PrincipalSet | undefined;
  readonly isNotPrincipal: boolean;
  /** Every operator/key pair of the Condition element; all must hold. */
  readonly conditions: readonly CompiledCondition[];
}

/** The caller, as authenticated. */
export interface PrincipalInfo {
  /** e.g. arn:aws:iam::123456789012:user/dev/alice, arn:aws:sts::123456789012:assumed-role/deployer/ci-42,
   *  arn:aws:iam::123456789012:root */
  arn: string;
  accountId: string;
  /** For an assumed-role session: the role's ARN (arn:aws:iam::ACCOUNT:role/PATH/NAME), which a
   *  resource/trust policy may name instead of the session ARN. */
  roleArn?: string;
}

/** Everything a policy can look at for one request. */
export interface RequestContext {
  principal: PrincipalInfo;
  /** e.g. "ecr:PutImage"; matched case-insensitively. */
  action: string;
  /** e.g. arn:aws:ecr:us-east-1:123456789012:repository/app/api; matched case-sensitively. */
  resource: string;
  resourceAccountId: string;
  /** Condition keys available for this request, with their values; key names match case-insensitively
   *  (aws:SourceIp == AWS:SOURCEIP) but tag keys keep their case after the slash. A multi-valued
   *  key is an array; an empty array counts as missing. Missing = not in the context, except that
   *  aws:PrincipalAccount and aws:PrincipalArn default to the principal's account and ARN (the
   *  role's ARN for a session, as in AWS) when the caller leaves them out. */
  keys: Record<string, string | string[] | undefined>;
}

/** Names a statement for audit logs and error messages. */
export interface MatchedStatement {
  /** The policy's label. */
  policy: string;
  sid?: string;
  /** 0-based */
  index: number;
}

/** The outcome of `evaluate`. */
export interface Decision {
  effect: 'allow' | 'deny' | 'implicit-deny';
  /** The statement that decided it: the explicit Deny, or an Allow that granted it (for a cross-account
   *  allow, the identity allow). Absent for implicit deny. */
  statement?: MatchedStatement;
  /** For implicit deny, why, in AWS's words ("no identity-based policy allows the ecr:PutImage action");
   *  for explicit deny, which kind of policy ("an explicit deny in a resource-based policy"). */
  reason?: string;
}

/** The policies that apply to one request. */
export interface EvaluationInput {
  context: RequestContext;
  /** Every identity policy of the principal (user's own inline + attached, its groups', or the role's). */
  identityPolicies: CompiledPolicy[];
  /** Resource-based policies of the resource (repository policy, registry policy, or role trust policy). */
  resourcePolicies: CompiledPolicy[];
  /**
   * Role trust policies: the resource policy must allow even within the account. A trust policy
   * that names the caller itself grants on its own in the same account; one that names only the
   * account (or the caller is in another account) needs an identity allow as well.
   */
  requireResourceAllow?: boolean;
}
