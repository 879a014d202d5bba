import { RequestScope } from './context.ts';
import type { PrincipalMatch } from './principal.ts';
import type { CompiledPolicy, CompiledStatement, Decision, EvaluationInput, MatchedStatement } from './types.ts';

/** Whether the statement's Action, Resource and Condition elements cover the request. */
function covers(statement: CompiledStatement, scope: RequestScope): boolean {
  const { action, resource } = scope.context;
  if (statement.actions.matches(action, scope) === statement.isNotAction) return false;
  // No Resource element (resource and trust policies): the resource the policy is attached to.
  if (statement.resources && statement.resources.matches(resource, scope) === statement.isNotResource) return false;
  for (const condition of statement.conditions) if (!condition.holds(scope)) return false;
  return true;
}

/** How a resource or trust policy statement names the caller. */
function principalMatch(statement: CompiledStatement, scope: RequestScope): PrincipalMatch {
  const { principals } = statement;
  if (!principals) return 'none';
  const { principal } = scope.context;
  // NotPrincipal only comes with Deny: the statement is about everyone it does not exempt.
  if (statement.isNotPrincipal) return principals.excludes(principal) ? 'none' : 'specific';
  return principals.match(principal);
}

function matched(policy: CompiledPolicy, statement: CompiledStatement): MatchedStatement {
  return statement.sid === undefined ? { policy: policy.label, index: statement.index } : { policy: policy.label, sid: statement.sid, index: statement.index };
}

/**
 * Decides a request as IAM does for a principal and a resource in one or two accounts
 * (https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_evaluation-logic.html):
 *
 * 1. An explicit Deny that covers the request, in any identity policy or in a resource policy
 *    whose Principal names the caller (through its account too), denies.
 * 2. Same account: an identity-policy Allow grants; so does a resource-policy Allow whose Principal
 *    names the caller itself (user, role or session ARN, or "*"). A Principal that names only the
 *    account delegates to IAM and grants nothing by itself.
 * 3. Cross account: both are needed, an identity-policy Allow and a resource-policy Allow whose
 *    Principal names the caller or the caller's account.
 * Otherwise the request is implicitly denied. Trust policies are the resource policies of an
 * sts:AssumeRole request on the role's ARN.
 *
 * Statements are tried in order, identity policies first, so the deciding statement reported is
 * the first that applies.
 */
export function evaluate(input: EvaluationInput): Decision {
  // A resource policy among the identity policies would have its Principal ignored and grant
  // to every caller; that is a programming error, not a decision.
  for (const policy of input.identityPolicies) {
    if (policy.kind !== 'identity') throw new TypeError(`${policy.label} is a ${policy.kind} policy, passed as an identity policy`);
  }
  for (const policy of input.resourcePolicies) {
    if (policy.kind === 'identity') throw new TypeError(`${policy.label} is an identity policy, passed as a resource policy`);
  }
  const scope = new RequestScope(input.context);
  const { context } = input;

  for (const policy of input.identityPolicies) {
    for (const statement of policy.statements) {
      if (statement.effect === 'Deny' && covers(statement, scope)) {
        return { effect: 'deny', statement: matched(policy, statement), reason: 'an explicit deny in an identity-based policy' };
      }
    }
  }
  for (const policy of input.resourcePolicies) {
    for (const statement of policy.statements) {
      if (statement.effect === 'Deny' && principalMatch(statement, scope) !== 'none' && covers(statement, scope)) {
        return { effect: 'deny', statement: matched(policy, statement), reason: 'an explicit deny in a resource-based policy' };
      }
    }
  }

  let identityAllow: MatchedStatement | undefined;
  search: for (const policy of input.identityPolicies) {
    for (const statement of policy.statements) {
      if (statement.effect === 'Allow' && covers(statement, scope)) {
        identityAllow = matched(policy, statement);
        break search;
      }
    }
  }

  const sameAccount = context.principal.accountId === context.resourceAccountId;
  if (input.requireResourceAllow) {
    let named: MatchedStatement | undefined;
    let viaAccount: MatchedStatement | undefined;
    for (const policy of input.resourcePolicies) {
      for (const statement of policy.statements) {
        if (statement.effect !== 'Allow' || !covers(statement, scope)) continue;
        const match = principalMatch(statement, scope);
        if (match === 'none') continue;
        if (match === 'account' || !sameAccount) viaAccount ??= matched(policy, statement);
        else named ??= matched(policy, statement);
      }
    }
    if (named) return { effect: 'allow', statement: named };
    if (!viaAccount) return implicitDeny('resource', context.action);
    return identityAllow ? { effect: 'allow', statement: identityAllow } : implicitDeny('identity', context.action);
  }
  if (sameAccount && identityAllow) return { effect: 'allow', statement: identityAllow };
  if (!sameAccount && !identityAllow) return implicitDeny('identity', context.action);

  // Same account: only an Allow naming the caller itself grants. Cross account: the caller's
  // account is enough, since the identity side already allows.
  let resourceAllow: MatchedStatement | undefined;
  search: for (const policy of input.resourcePolicies) {
    for (const statement of policy.statements) {
      if (statement.effect !== 'Allow') continue;
      const named = principalMatch(statement, scope);
      if (named === 'none' || (sameAccount && named === 'account')) continue;
      if (covers(statement, scope)) {
        resourceAllow = matched(policy, statement);
        break search;
      }
    }
  }

  if (sameAccount) return resourceAllow ? { effect: 'allow', statement: resourceAllow } : implicitDeny('identity', context.action);
  return resourceAllow ? { effect: 'allow', statement: identityAllow! } : implicitDeny('resource', context.action);
}

function implicitDeny(missing: 'identity' | 'resource', action: string): Decision {
  return { effect: 'implicit-deny', reason: `no ${missing}-based policy allows the ${action} action` };
}

/**
 * Whether the policy's answer depends only on the principal, action and resource: no statement
 * has a Condition or a policy variable. A caller may then cache decisions for such policies.
 */
export function isContextFree(policy: CompiledPolicy): boolean {
  return policy.statements.every((s) => s.conditions.length === 0 && !s.actions.usesVariables && !(s.resources?.usesVariables ?? false));
}
