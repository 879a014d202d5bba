import { RegistryError } from '../errors/catalogue.ts';
import type { AuditLog } from '../audit/audit-log.ts';
import type { Authorizer, Caller, IamPrincipal } from '../registry/access.ts';
import type { RepoRef } from '../registry/names.ts';
import { repositoryArn } from './ids.ts';
import type { Identity } from './identity.ts';
import { evaluate, isContextFree, parsePolicy, type CompiledPolicy, type Decision } from './policy/index.ts';

/** One shared empty list, so that decisions on account-level questions can be cached too. */
export const NO_POLICIES: CompiledPolicy[] = [];

const contextFree = new WeakMap<CompiledPolicy[], boolean>();

/** Whether every policy in the (cached, reused) list answers without request context. */
function allContextFree(policies: CompiledPolicy[]): boolean {
  let known = contextFree.get(policies);
  if (known === undefined) {
    known = policies.every(isContextFree);
    contextFree.set(policies, known);
  }
  return known;
}

export interface AccessQuestion {
  caller: Caller;
  action: string;
  /** The resource ARN, or '*' for account-level actions. */
  resource: string;
  resourceAccountId: string;
  /** Resource-based policies that govern the resource (repository + registry policy, a role's trust policy). */
  resourcePolicies: CompiledPolicy[];
  /** For role trust policies: see EvaluationInput.requireResourceAllow. */
  requireResourceAllow?: boolean;
  /** Extra condition keys (e.g. aws:ResourceTag/...). */
  keys?: Record<string, string | string[] | undefined>;
}

/** The role ECR's replication acts as in the source account (its service-linked role). */
export const REPLICATION_ROLE_NAME = 'AWSServiceRoleForECRReplication';

let replicationRolePolicies: CompiledPolicy[] | undefined;

/** What the service-linked role may do (ECR's AmazonECRReplicationServiceRolePolicy, in effect). */
function replicationRolePolicy(): CompiledPolicy[] {
  replicationRolePolicies ??= [
    parsePolicy(
      JSON.stringify({ Version: '2012-10-17', Statement: [{ Effect: 'Allow', Action: ['ecr:CreateRepository', 'ecr:ReplicateImage'], Resource: '*' }] }),
      'identity',
      REPLICATION_ROLE_NAME,
    ),
  ];
  return replicationRolePolicies;
}

/** Phrases an implicit or explicit deny the way AWS does. */
export function denialMessage(principal: IamPrincipal, action: string, resource: string, decision: Decision): string {
  const why = decision.reason ?? (decision.effect === 'deny' ? 'an explicit deny' : `no identity-based policy allows the ${action} action`);
  const connector = decision.effect === 'deny' ? 'with' : 'because';
  return `User: ${principal.arn} is not authorized to perform: ${action} on resource: ${resource} ${connector} ${why}`;
}

/**
 * IAM's evaluation for every API: gathers the caller's identity policies and the resource's
 * policies, evaluates, and records the decision in the audit log.
 */
export class IamAuthorizer implements Authorizer {
  private readonly identity: Identity;
  private readonly audit: AuditLog;
  /**
   * Decisions over policies without conditions or variables depend only on who asks for what on
   * which resource. They hang off the (cached) policy lists they were computed from, so they
   * live exactly as long as those lists: a reload or a change through this node drops them.
   */
  private readonly decisions = new WeakMap<CompiledPolicy[], WeakMap<CompiledPolicy[], Map<string, Decision>>>();

  constructor(identity: Identity, audit: AuditLog) {
    this.identity = identity;
    this.audit = audit;
  }

  private decisionsFor(identityPolicies: CompiledPolicy[], resourcePolicies: CompiledPolicy[]): Map<string, Decision> {
    let byResource = this.decisions.get(identityPolicies);
    if (!byResource) {
      byResource = new WeakMap();
      this.decisions.set(identityPolicies, byResource);
    }
    let map = byResource.get(resourcePolicies);
    if (!map) {
      map = new Map();
      byResource.set(resourcePolicies, map);
    }
    if (map.size > 10_000) map.clear();
    return map;
  }

  /** Evaluates (and unless told otherwise, audits) one question; never throws for a denial. */
  async decide(q: AccessQuestion, audited = true): Promise<Decision> {
    const principal = q.caller.principal;
    if (principal.kind !== 'iam') {
      if (audited) this.record(q, 'unauthenticated', null);
      return { effect: 'implicit-deny', reason: 'the request carried no valid credentials' };
    }
    if (principal.type === 'root') {
      if (audited) this.record(q, 'allow', 'authentication disabled');
      return { effect: 'allow' };
    }
    const identityPolicies = await this.identity.identityPolicies(principal);
    const cache = q.keys === undefined && allContextFree(identityPolicies) && allContextFree(q.resourcePolicies) ? this.decisionsFor(identityPolicies, q.resourcePolicies) : undefined;
    const cacheKey = `${principal.arn}\n${q.action}\n${q.resource}\n${q.resourceAccountId}\n${q.requireResourceAllow === true}`;
    const hit = cache?.get(cacheKey);
    if (hit) {
      if (audited) this.recordDecision(q, hit);
      return hit;
    }
    const tags = await this.identity.principalTags(principal);
    const now = new Date();
    const keys: Record<string, string | string[] | undefined> = {
      'aws:PrincipalAccount': principal.accountId,
      'aws:PrincipalArn': principal.type === 'assumed-role' ? principal.roleArn : principal.arn,
      'aws:PrincipalType': principal.type === 'assumed-role' ? 'AssumedRole' : 'User',
      'aws:userid': principal.userId,
      'aws:SourceIp': q.caller.sourceIp,
      'aws:CurrentTime': now.toISOString(),
      'aws:EpochTime': String(Math.floor(now.getTime() / 1000)),
      'aws:SecureTransport': String(q.caller.secureTransport),
      'aws:RequestedRegion': this.identity.region,
      ...(principal.type === 'user' ? { 'aws:username': principal.name } : {}),
      ...q.keys,
    };
    for (const t of tags) keys[`aws:PrincipalTag/${t.Key}`] = t.Value;
    const decision = evaluate({
      context: {
        principal: { arn: principal.arn, accountId: principal.accountId, ...(principal.roleArn ? { roleArn: principal.roleArn } : {}) },
        action: q.action,
        resource: q.resource,
        resourceAccountId: q.resourceAccountId,
        keys,
      },
      identityPolicies,
      resourcePolicies: q.resourcePolicies,
      ...(q.requireResourceAllow ? { requireResourceAllow: true } : {}),
    });
    cache?.set(cacheKey, decision);
    if (audited) this.recordDecision(q, decision);
    return decision;
  }

  /** Records an event decided outside policy evaluation (e.g. a refused AssumeRole on a missing role). */
  recordEvent(q: AccessQuestion, decision: string, policy: string | null = null): void {
    this.record(q, decision, policy);
  }

  private recordDecision(q: AccessQuestion, decision: Decision): void {
    const st = decision.statement;
    this.record(q, decision.effect, st ? `${st.policy}#${st.sid ?? `statement ${st.index + 1}`}` : null);
  }

  private record(q: AccessQuestion, decision: string, policy: string | null): void {
    const p = q.caller.principal;
    this.audit.record({
      atMs: Date.now(),
      requestId: q.caller.requestId,
      plane: q.caller.plane,
      // The account that owns the resource (CloudTrail's recipient account): another account's
      // pulls from your repositories are filed under yours. The caller's account is in its ARN.
      accountId: q.resourceAccountId || (p.kind === 'iam' ? p.accountId : null),
      principal: p.kind === 'iam' ? p.arn : null,
      accessKeyId: p.kind === 'iam' ? (p.accessKeyId ?? null) : null,
      action: q.action,
      resource: q.resource,
      decision,
      policy,
      sourceIp: q.caller.sourceIp,
      userAgent: q.caller.userAgent ?? null,
      errorCode: null,
    });
  }

  private async question(caller: Caller, action: string, resource: RepoRef | undefined, account: string | undefined): Promise<AccessQuestion> {
    if (resource) {
      return {
        caller,
        action,
        resource: repositoryArn(this.identity.region, resource.account, resource.name),
        resourceAccountId: resource.account,
        resourcePolicies: await this.identity.repositoryPolicies(resource),
      };
    }
    const p = caller.principal;
    return { caller, action, resource: '*', resourceAccountId: account ?? (p.kind === 'iam' ? p.accountId : ''), resourcePolicies: NO_POLICIES };
  }

  async authorize(caller: Caller, action: string, resource: RepoRef | undefined, account?: string): Promise<void> {
    const q = await this.question(caller, action, resource, account);
    const decision = await this.decide(q);
    if (decision.effect === 'allow') return;
    const p = caller.principal;
    if (p.kind !== 'iam') throw new RegistryError('Unauthorized', undefined, { message: 'Authentication is required: log in with `aws ecr get-login-password | docker login --username AWS --password-stdin HOST`.' });
    throw new RegistryError('Denied', { action, resource: q.resource }, { message: denialMessage(p, action, q.resource, decision) });
  }

  /**
   * Whether the replication of `sourceAccount` may do `action` (ecr:ReplicateImage or
   * ecr:CreateRepository) on `resource` in another account of this deployment: asked as ECR's
   * replication service-linked role of the source account, which its own policy allows, so the
   * destination's registry and repository policies decide (cross-account needs them to allow the
   * source account). Audited like any decision; never throws for a denial.
   */
  async allowsReplication(sourceAccount: string, action: string, resource: RepoRef, requestId: string): Promise<Decision> {
    const roleArn = `arn:aws:iam::${sourceAccount}:role/aws-service-role/replication.ecr.amazonaws.com/${REPLICATION_ROLE_NAME}`;
    const principal: IamPrincipal = {
      kind: 'iam',
      type: 'assumed-role',
      accountId: sourceAccount,
      arn: `arn:aws:sts::${sourceAccount}:assumed-role/${REPLICATION_ROLE_NAME}/replication`,
      userId: `${REPLICATION_ROLE_NAME}:replication`,
      name: REPLICATION_ROLE_NAME,
      accessKeyId: undefined,
      roleArn,
      sessionName: 'replication',
    };
    const caller: Caller = { principal, sourceIp: '127.0.0.1', secureTransport: true, requestId, userAgent: 'berth-replication', plane: 'replication' };
    const q = await this.question(caller, action, resource, undefined);
    const now = new Date();
    const decision = evaluate({
      context: {
        principal: { arn: principal.arn, accountId: sourceAccount, roleArn },
        action,
        resource: q.resource,
        resourceAccountId: q.resourceAccountId,
        keys: {
          'aws:PrincipalAccount': sourceAccount,
          'aws:PrincipalArn': roleArn,
          'aws:PrincipalType': 'AssumedRole',
          'aws:userid': principal.userId,
          'aws:PrincipalIsAWSService': 'false',
          'aws:CurrentTime': now.toISOString(),
          'aws:EpochTime': String(Math.floor(now.getTime() / 1000)),
          'aws:SecureTransport': 'true',
          'aws:RequestedRegion': this.identity.region,
        },
      },
      identityPolicies: replicationRolePolicy(),
      resourcePolicies: q.resourcePolicies,
    });
    this.recordDecision(q, decision);
    return decision;
  }

  async isAllowed(caller: Caller, action: string, resource: RepoRef | undefined, account?: string): Promise<boolean> {
    // Filtering (catalog entries, mount sources) is part of a call that is audited already.
    return (await this.decide(await this.question(caller, action, resource, account), false)).effect === 'allow';
  }
}
