import assert from 'node:assert/strict';
import { test } from 'node:test';
import { evaluate, parsePolicy } from './index.ts';
import type { CompiledPolicy, PrincipalInfo, RequestContext } from './index.ts';

// Account A owns the repository (and the role); B and C are other accounts.
const A = '111111111111';
const B = '222222222222';
const C = '333333333333';
const REPO = `arn:aws:ecr:us-east-1:${A}:repository/app/api`;
const REPO_BASE = `arn:aws:ecr:us-east-1:${A}:repository`;
const ROLE = `arn:aws:iam::${A}:role/deployer`;

const alice: PrincipalInfo = { arn: `arn:aws:iam::${A}:user/alice`, accountId: A };
const bob: PrincipalInfo = { arn: `arn:aws:iam::${A}:user/dev/bob`, accountId: A };
const rootA: PrincipalInfo = { arn: `arn:aws:iam::${A}:root`, accountId: A };
const carol: PrincipalInfo = { arn: `arn:aws:iam::${B}:user/carol`, accountId: B };
const deployerSession: PrincipalInfo = { arn: `arn:aws:sts::${A}:assumed-role/deployer/ci-42`, accountId: A, roleArn: ROLE };
const builderSession: PrincipalInfo = { arn: `arn:aws:sts::${B}:assumed-role/builder/run-1`, accountId: B, roleArn: `arn:aws:iam::${B}:role/ci/builder` };

type Statement = Record<string, unknown>;
type Effect = 'allow' | 'deny' | 'implicit-deny';

interface Case {
  name: string;
  identity?: Statement[][];
  resource?: Statement[][];
  trust?: Statement[][];
  version?: '2008-10-17';
  principal?: PrincipalInfo;
  action?: string;
  arn?: string;
  resourceAccountId?: string;
  keys?: RequestContext['keys'];
  expect: Effect;
  /** The Sid of the deciding statement. */
  sid?: string;
  reason?: string;
}

const allow = (Action: unknown, Resource: unknown = '*', extra: Statement = {}): Statement => ({ Effect: 'Allow', Action, Resource, ...extra });
const deny = (Action: unknown, Resource: unknown = '*', extra: Statement = {}): Statement => ({ Effect: 'Deny', Action, Resource, ...extra });
/** A resource-policy statement (no Resource: the repository it is attached to). */
const grant = (AWS: unknown, Action: unknown = 'ecr:BatchGetImage', extra: Statement = {}): Statement => ({
  Effect: 'Allow',
  Principal: AWS === '*' ? '*' : { AWS },
  Action,
  ...extra,
});
const when = (Condition: Statement, statement: Statement = allow('ecr:*')): Statement => ({ ...statement, Sid: 'Cond', Condition });

const pull = allow('ecr:BatchGetImage', REPO, { Sid: 'Pull' });
const IMPLICIT_IDENTITY = 'no identity-based policy allows the ecr:BatchGetImage action';
const IMPLICIT_RESOURCE = 'no resource-based policy allows the ecr:BatchGetImage action';

const basics: Case[] = [
  { name: 'no policies at all: implicit deny', expect: 'implicit-deny', reason: IMPLICIT_IDENTITY },
  { name: 'identity allow of the exact action and resource', identity: [[pull]], expect: 'allow', sid: 'Pull' },
  { name: 'identity allow of another action', identity: [[allow('ecr:PutImage', REPO)]], expect: 'implicit-deny', reason: IMPLICIT_IDENTITY },
  { name: 'identity allow of another resource', identity: [[allow('ecr:BatchGetImage', `${REPO_BASE}/app/web`)]], expect: 'implicit-deny' },
  {
    name: 'explicit deny beats allow in the same identity policy',
    identity: [[pull, deny('ecr:*', '*', { Sid: 'NoEcr' })]],
    expect: 'deny',
    sid: 'NoEcr',
    reason: 'an explicit deny in an identity-based policy',
  },
  { name: 'explicit deny in another identity policy beats an allow', identity: [[pull], [deny('ecr:BatchGetImage', REPO, { Sid: 'Block' })]], expect: 'deny', sid: 'Block' },
  {
    name: 'explicit deny in the resource policy beats an identity allow',
    identity: [[pull]],
    resource: [[{ Sid: 'NoOne', Effect: 'Deny', Principal: '*', Action: 'ecr:*' }]],
    expect: 'deny',
    sid: 'NoOne',
    reason: 'an explicit deny in a resource-based policy',
  },
  {
    name: 'explicit deny in an identity policy beats a resource-policy grant',
    identity: [[deny('ecr:*', '*', { Sid: 'NoEcr' })]],
    resource: [[grant(alice.arn)]],
    expect: 'deny',
    sid: 'NoEcr',
  },
  { name: 'an allow in the second identity policy grants', identity: [[allow('s3:*')], [pull]], expect: 'allow', sid: 'Pull' },
  { name: 'deny statement that does not cover the action leaves the allow', identity: [[pull, deny('ecr:PutImage')]], expect: 'allow', sid: 'Pull' },
];

const actions: Case[] = [
  { name: 'ecr:* allows any ECR action', identity: [[allow('ecr:*', '*', { Sid: 'All' })]], expect: 'allow', sid: 'All' },
  { name: 'ecr:Batch* matches ecr:BatchGetImage', identity: [[allow('ecr:Batch*')]], expect: 'allow' },
  { name: 'ecr:Batch* does not match ecr:PutImage', identity: [[allow('ecr:Batch*')]], action: 'ecr:PutImage', expect: 'implicit-deny' },
  { name: '? matches exactly one character', identity: [[allow('ecr:?atchGetImage')]], expect: 'allow' },
  { name: '? does not match two characters', identity: [[allow('ecr:?GetImage')]], expect: 'implicit-deny' },
  { name: '"*" allows every action of every service', identity: [[allow('*')]], action: 'iam:CreateUser', arn: `arn:aws:iam::${A}:user/x`, expect: 'allow' },
  { name: 'policy actions match ignoring case', identity: [[allow('ECR:batchgetimage')]], expect: 'allow' },
  { name: 'request actions match ignoring case', identity: [[allow('ecr:BatchGetImage')]], action: 'Ecr:BATCHGETIMAGE', expect: 'allow' },
  { name: 'a wildcard is anchored at both ends', identity: [[allow('ecr:Get*')]], expect: 'implicit-deny' },
  { name: 'another service does not match', identity: [[allow('s3:*')]], expect: 'implicit-deny' },
  { name: 'any entry of an Action list matches', identity: [[allow(['ecr:PutImage', 'ecr:BatchGet*'])]], expect: 'allow' },
];

const resources: Case[] = [
  { name: 'repository/app/* matches app/api', identity: [[allow('ecr:*', `${REPO_BASE}/app/*`)]], expect: 'allow' },
  { name: 'repository/app/* does not match other/api', identity: [[allow('ecr:*', `${REPO_BASE}/app/*`)]], arn: `${REPO_BASE}/other/api`, expect: 'implicit-deny' },
  { name: 'a * region segment matches any region', identity: [[allow('ecr:*', `arn:aws:ecr:*:${A}:repository/*`)]], expect: 'allow' },
  { name: '? in the region segment', identity: [[allow('ecr:*', `arn:aws:ecr:us-east-?:${A}:repository/app/api`)]], expect: 'allow' },
  { name: 'resource ARNs match case-sensitively', identity: [[allow('ecr:*', `${REPO_BASE}/App/api`)]], expect: 'implicit-deny' },
  { name: 'a * inside a segment matches within it', identity: [[allow('ecr:*', `arn:aws:ecr:us-*-1:${A}:repository/app/api`)]], expect: 'allow' },
  {
    name: 'a * followed by more of its segment does not cross a colon',
    identity: [[allow('ecr:*', 'arn:aws:ecr:u*1:repository/app/api')]],
    expect: 'implicit-deny',
  },
  { name: 'a * that ends a segment may run across colons', identity: [[allow('ecr:*', 'arn:aws:ecr:*')]], expect: 'allow' },
  { name: 'Resource "*" matches every resource', identity: [[allow('ecr:*', '*')]], expect: 'allow' },
  { name: 'any entry of a Resource list matches', identity: [[allow('ecr:*', [`${REPO_BASE}/x`, REPO])]], expect: 'allow' },
  { name: 'a repository of another account does not match', identity: [[allow('ecr:*', `arn:aws:ecr:us-east-1:${B}:repository/*`)]], expect: 'implicit-deny' },
  { name: '? does not stand for a colon', identity: [[allow('ecr:*', `arn:aws:ecr:us-east-1?${A}:repository/app/api`)]], expect: 'implicit-deny' },
];

const notElements: Case[] = [
  { name: 'Allow NotAction covers actions outside the list', identity: [[{ Effect: 'Allow', NotAction: 'ecr:Delete*', Resource: '*' }]], expect: 'allow' },
  {
    name: 'Allow NotAction does not cover listed actions',
    identity: [[{ Effect: 'Allow', NotAction: 'ecr:Delete*', Resource: '*' }]],
    action: 'ecr:DeleteRepository',
    expect: 'implicit-deny',
  },
  {
    name: 'deny everything except pulls: a push is denied',
    identity: [[allow('ecr:*', '*', { Sid: 'All' }), { Sid: 'OnlyPull', Effect: 'Deny', NotAction: ['ecr:BatchGetImage', 'ecr:GetDownloadUrlForLayer'], Resource: '*' }]],
    action: 'ecr:PutImage',
    expect: 'deny',
    sid: 'OnlyPull',
  },
  {
    name: 'deny everything except pulls: a pull is allowed',
    identity: [[allow('ecr:*', '*', { Sid: 'All' }), { Sid: 'OnlyPull', Effect: 'Deny', NotAction: ['ecr:BatchGetImage', 'ecr:GetDownloadUrlForLayer'], Resource: '*' }]],
    expect: 'allow',
    sid: 'All',
  },
  {
    name: 'deny everything outside ECR (Deny NotAction ecr:*)',
    identity: [[allow('*'), { Sid: 'EcrOnly', Effect: 'Deny', NotAction: 'ecr:*', Resource: '*' }]],
    action: 'iam:CreateUser',
    expect: 'deny',
    sid: 'EcrOnly',
  },
  { name: 'Allow NotResource covers other resources', identity: [[{ Effect: 'Allow', Action: 'ecr:*', NotResource: `${REPO_BASE}/secret/*` }]], expect: 'allow' },
  {
    name: 'Allow NotResource does not cover listed resources',
    identity: [[{ Effect: 'Allow', Action: 'ecr:*', NotResource: `${REPO_BASE}/secret/*` }]],
    arn: `${REPO_BASE}/secret/keys`,
    expect: 'implicit-deny',
  },
  {
    name: 'Deny NotResource denies everything but the listed repositories',
    identity: [[allow('ecr:*'), { Sid: 'AppOnly', Effect: 'Deny', Action: 'ecr:*', NotResource: `${REPO_BASE}/app/*` }]],
    arn: `${REPO_BASE}/tools/x`,
    expect: 'deny',
    sid: 'AppOnly',
  },
  {
    name: 'Deny NotResource leaves the listed repositories',
    identity: [[allow('ecr:*', '*', { Sid: 'All' }), { Sid: 'AppOnly', Effect: 'Deny', Action: 'ecr:*', NotResource: `${REPO_BASE}/app/*` }]],
    expect: 'allow',
    sid: 'All',
  },
];

const sameAccount: Case[] = [
  { name: 'same account: resource policy naming the user grants without identity policy', resource: [[{ ...grant(alice.arn), Sid: 'Alice' }]], expect: 'allow', sid: 'Alice' },
  { name: 'same account: resource policy naming only the account id does not grant', resource: [[grant(A)]], expect: 'implicit-deny', reason: IMPLICIT_IDENTITY },
  { name: 'same account: resource policy naming only :root does not grant', resource: [[grant(`arn:aws:iam::${A}:root`)]], expect: 'implicit-deny' },
  { name: 'same account: account principal plus identity allow', identity: [[pull]], resource: [[grant(A)]], expect: 'allow', sid: 'Pull' },
  { name: 'same account: "*" principal grants', resource: [[{ ...grant('*'), Sid: 'Public' }]], expect: 'allow', sid: 'Public' },
  { name: 'same account: {"AWS": "*"} grants', resource: [[{ Sid: 'Public', Effect: 'Allow', Principal: { AWS: '*' }, Action: 'ecr:*' }]], expect: 'allow', sid: 'Public' },
  { name: 'same account: a grant to another user does not apply', resource: [[grant(bob.arn)]], expect: 'implicit-deny' },
  { name: 'same account: a user with a path is named with its path', principal: bob, resource: [[grant(bob.arn)]], expect: 'allow' },
  { name: 'same account: a grant of another action does not apply', resource: [[grant(alice.arn, 'ecr:PutImage')]], expect: 'implicit-deny' },
  { name: 'same account: resource policy Resource element that matches', resource: [[grant(alice.arn, 'ecr:*', { Resource: REPO })]], expect: 'allow' },
  { name: 'same account: resource policy Resource element that does not match', resource: [[grant(alice.arn, 'ecr:*', { Resource: `${REPO_BASE}/x` })]], expect: 'implicit-deny' },
  { name: 'same account: the account root is named by its account', principal: rootA, resource: [[grant(A)]], expect: 'allow' },
  { name: 'same account: user ARNs compare ignoring case, as IAM names do', resource: [[grant(`arn:aws:iam::${A}:user/Alice`)]], expect: 'allow' },
];

const crossAccount: Case[] = [
  { name: 'cross account: neither side allows', principal: carol, expect: 'implicit-deny', reason: IMPLICIT_IDENTITY },
  { name: 'cross account: identity allows, no resource policy', principal: carol, identity: [[pull]], expect: 'implicit-deny', reason: IMPLICIT_RESOURCE },
  { name: 'cross account: resource policy names the user, no identity allow', principal: carol, resource: [[grant(carol.arn)]], expect: 'implicit-deny', reason: IMPLICIT_IDENTITY },
  { name: 'cross account: both sides allow (account id)', principal: carol, identity: [[pull]], resource: [[grant(B)]], expect: 'allow', sid: 'Pull' },
  { name: 'cross account: both sides allow (user ARN)', principal: carol, identity: [[pull]], resource: [[grant(carol.arn)]], expect: 'allow', sid: 'Pull' },
  { name: 'cross account: both sides allow (:root)', principal: carol, identity: [[pull]], resource: [[grant(`arn:aws:iam::${B}:root`)]], expect: 'allow' },
  { name: 'cross account: resource policy names a third account', principal: carol, identity: [[pull]], resource: [[grant(C)]], expect: 'implicit-deny', reason: IMPLICIT_RESOURCE },
  { name: 'cross account: "*" principal with an identity allow', principal: carol, identity: [[pull]], resource: [[grant('*')]], expect: 'allow' },
  { name: 'cross account: resource policy names another user of the account', principal: carol, identity: [[pull]], resource: [[grant(`arn:aws:iam::${B}:user/dave`)]], expect: 'implicit-deny' },
  {
    name: 'cross account: resource-policy deny of the whole account',
    principal: carol,
    identity: [[pull]],
    resource: [[grant(B), { Sid: 'NotB', Effect: 'Deny', Principal: { AWS: B }, Action: 'ecr:*' }]],
    expect: 'deny',
    sid: 'NotB',
  },
  { name: 'cross account: resource policy grants another action', principal: carol, identity: [[pull]], resource: [[grant(B, 'ecr:PutImage')]], expect: 'implicit-deny', reason: IMPLICIT_RESOURCE },
  { name: 'cross account: "*" alone does not grant without identity allow', principal: carol, resource: [[grant('*')]], expect: 'implicit-deny', reason: IMPLICIT_IDENTITY },
];

const sessions: Case[] = [
  { name: 'session: resource policy names the role ARN', principal: deployerSession, resource: [[grant(ROLE)]], expect: 'allow' },
  { name: 'session: resource policy names the session ARN', principal: deployerSession, resource: [[grant(deployerSession.arn)]], expect: 'allow' },
  { name: 'session: another session of the role is not this one', principal: deployerSession, resource: [[grant(`arn:aws:sts::${A}:assumed-role/deployer/other`)]], expect: 'implicit-deny' },
  { name: 'session: naming the account only does not grant', principal: deployerSession, resource: [[grant(A)]], expect: 'implicit-deny' },
  { name: 'session cross account: role ARN with path plus identity allow', principal: builderSession, identity: [[pull]], resource: [[grant(builderSession.roleArn)]], expect: 'allow' },
  { name: 'session cross account: role ARN without its path does not match', principal: builderSession, identity: [[pull]], resource: [[grant(`arn:aws:iam::${B}:role/builder`)]], expect: 'implicit-deny' },
  {
    name: 'session: resource-policy deny naming the role',
    principal: deployerSession,
    identity: [[pull]],
    resource: [[{ Sid: 'NoDeployer', Effect: 'Deny', Principal: { AWS: ROLE }, Action: 'ecr:*' }]],
    expect: 'deny',
    sid: 'NoDeployer',
  },
];

/** Trust policies: sts:AssumeRole on the role's ARN, the trust policy as the resource policy. */
const assume = { action: 'sts:AssumeRole', arn: ROLE };
const trustCases: Case[] = [
  { name: 'trust, same account: naming the user lets it assume without identity policy', ...assume, trust: [[{ Sid: 'T', ...grant(alice.arn, 'sts:AssumeRole') }]], expect: 'allow', sid: 'T' },
  { name: 'trust, same account: naming the account needs an identity allow', ...assume, trust: [[grant(A, 'sts:AssumeRole')]], expect: 'implicit-deny', reason: 'no identity-based policy allows the sts:AssumeRole action' },
  { name: 'trust, same account: account plus identity allow', ...assume, identity: [[allow('sts:AssumeRole', ROLE, { Sid: 'Assume' })]], trust: [[grant(A, 'sts:AssumeRole')]], expect: 'allow', sid: 'Assume' },
  {
    name: 'trust, same account: an administrator the trust policy does not name cannot assume',
    ...assume,
    identity: [[allow('*', '*')]],
    trust: [[grant(`arn:aws:iam::${A}:user/someone-else`, 'sts:AssumeRole')]],
    expect: 'implicit-deny',
    reason: 'no resource-based policy allows the sts:AssumeRole action',
  },
  { name: 'trust, same account: no trust statement at all refuses even an identity allow', ...assume, identity: [[allow('sts:AssumeRole', ROLE)]], trust: [[grant(A, 'sts:TagSession')]], expect: 'implicit-deny' },
  { name: 'trust, cross account: both sides', ...assume, principal: carol, identity: [[allow('sts:AssumeRole', ROLE, { Sid: 'Assume' })]], trust: [[grant(`arn:aws:iam::${B}:root`, 'sts:AssumeRole')]], expect: 'allow', sid: 'Assume' },
  { name: 'trust, cross account: trusted account but no identity allow', ...assume, principal: carol, trust: [[grant(B, 'sts:AssumeRole')]], expect: 'implicit-deny' },
  {
    name: 'trust, cross account: account not trusted',
    ...assume,
    principal: carol,
    identity: [[allow('sts:AssumeRole', ROLE)]],
    trust: [[grant(A, 'sts:AssumeRole')]],
    expect: 'implicit-deny',
    reason: 'no resource-based policy allows the sts:AssumeRole action',
  },
  { name: 'trust: another sts action does not cover AssumeRole', ...assume, principal: carol, identity: [[allow('sts:*')]], trust: [[grant(B, 'sts:AssumeRoleWithWebIdentity')]], expect: 'implicit-deny' },
  {
    name: 'trust: a service principal',
    ...assume,
    principal: { arn: 'ecs-tasks.amazonaws.com', accountId: A },
    trust: [[{ Effect: 'Allow', Principal: { Service: 'ecs-tasks.amazonaws.com' }, Action: 'sts:AssumeRole' }]],
    expect: 'allow',
  },
  {
    name: 'trust: sts:ExternalId condition met',
    ...assume,
    principal: carol,
    identity: [[allow('sts:AssumeRole', ROLE)]],
    trust: [[grant(B, 'sts:AssumeRole', { Condition: { StringEquals: { 'sts:ExternalId': 'x-42' } } })]],
    keys: { 'sts:ExternalId': 'x-42' },
    expect: 'allow',
  },
  {
    name: 'trust: sts:ExternalId condition missing',
    ...assume,
    principal: carol,
    identity: [[allow('sts:AssumeRole', ROLE)]],
    trust: [[grant(B, 'sts:AssumeRole', { Condition: { StringEquals: { 'sts:ExternalId': 'x-42' } } })]],
    expect: 'implicit-deny',
  },
];

const denyExcept = (exempt: string[]): Statement => ({ Sid: 'OnlyExempt', Effect: 'Deny', NotPrincipal: { AWS: exempt }, Action: 'ecr:*' });
const notPrincipal: Case[] = [
  { name: 'NotPrincipal: the exempt user (with its account) keeps access', identity: [[pull]], resource: [[denyExcept([alice.arn, A])]], expect: 'allow', sid: 'Pull' },
  { name: 'NotPrincipal: everyone else is denied', principal: bob, identity: [[pull]], resource: [[denyExcept([alice.arn, A])]], expect: 'deny', sid: 'OnlyExempt' },
  { name: 'NotPrincipal: a user listed without its account is still denied', identity: [[pull]], resource: [[denyExcept([alice.arn])]], expect: 'deny' },
  { name: 'NotPrincipal: a session is exempt through its role and account', principal: deployerSession, identity: [[pull]], resource: [[denyExcept([ROLE, `arn:aws:iam::${A}:root`])]], expect: 'allow' },
  { name: 'NotPrincipal: an account alone does not exempt its users', principal: carol, identity: [[pull]], resource: [[grant(B), denyExcept([B])]], expect: 'deny' },
  { name: 'NotPrincipal "*" exempts everyone', identity: [[pull]], resource: [[denyExcept(['*'])]], expect: 'allow' },
];

const strings: Case[] = [
  { name: 'StringEquals true', identity: [[when({ StringEquals: { 'aws:username': 'alice' } })]], keys: { 'aws:username': 'alice' }, expect: 'allow', sid: 'Cond' },
  { name: 'StringEquals false', identity: [[when({ StringEquals: { 'aws:username': 'alice' } })]], keys: { 'aws:username': 'bob' }, expect: 'implicit-deny' },
  { name: 'StringEquals with the key missing is false', identity: [[when({ StringEquals: { 'aws:username': 'alice' } })]], expect: 'implicit-deny' },
  { name: 'StringEquals is case-sensitive', identity: [[when({ StringEquals: { 'aws:username': 'Alice' } })]], keys: { 'aws:username': 'alice' }, expect: 'implicit-deny' },
  { name: 'StringNotEquals true', identity: [[when({ StringNotEquals: { 'aws:username': 'bob' } })]], keys: { 'aws:username': 'alice' }, expect: 'allow' },
  { name: 'StringNotEquals false', identity: [[when({ StringNotEquals: { 'aws:username': 'alice' } })]], keys: { 'aws:username': 'alice' }, expect: 'implicit-deny' },
  { name: 'StringNotEquals with the key missing is true', identity: [[when({ StringNotEquals: { 'aws:username': 'alice' } })]], expect: 'allow' },
  { name: 'StringEqualsIgnoreCase true', identity: [[when({ StringEqualsIgnoreCase: { 'aws:username': 'ALICE' } })]], keys: { 'aws:username': 'alice' }, expect: 'allow' },
  { name: 'StringNotEqualsIgnoreCase false', identity: [[when({ StringNotEqualsIgnoreCase: { 'aws:username': 'ALICE' } })]], keys: { 'aws:username': 'alice' }, expect: 'implicit-deny' },
  { name: 'StringLike true', identity: [[when({ StringLike: { 'aws:username': 'ali*' } })]], keys: { 'aws:username': 'alice' }, expect: 'allow' },
  { name: 'StringLike false', identity: [[when({ StringLike: { 'aws:username': 'b?b' } })]], keys: { 'aws:username': 'alice' }, expect: 'implicit-deny' },
  { name: 'StringNotLike true', identity: [[when({ StringNotLike: { 'aws:username': 'adm-*' } })]], keys: { 'aws:username': 'alice' }, expect: 'allow' },
  { name: 'StringNotLike false', identity: [[when({ StringNotLike: { 'aws:username': 'a*' } })]], keys: { 'aws:username': 'alice' }, expect: 'implicit-deny' },
  { name: 'condition key names match ignoring case', identity: [[when({ StringEquals: { 'AWS:USERNAME': 'alice' } })]], keys: { 'aws:UserName': 'alice' }, expect: 'allow' },
  { name: 'tag keys keep their case', identity: [[when({ StringEquals: { 'aws:ResourceTag/Team': 'core' } })]], keys: { 'aws:ResourceTag/team': 'core' }, expect: 'implicit-deny' },
  { name: 'tag key prefix matches ignoring case', identity: [[when({ StringEquals: { 'AWS:resourcetag/Team': 'core' } })]], keys: { 'aws:ResourceTag/Team': 'core' }, expect: 'allow' },
];

const numbers: Case[] = [
  { name: 'NumericLessThan true', identity: [[when({ NumericLessThan: { 'aws:MultiFactorAuthAge': 3600 } })]], keys: { 'aws:MultiFactorAuthAge': '100' }, expect: 'allow' },
  { name: 'NumericLessThan false', identity: [[when({ NumericLessThan: { 'aws:MultiFactorAuthAge': '3600' } })]], keys: { 'aws:MultiFactorAuthAge': '7200' }, expect: 'implicit-deny' },
  { name: 'NumericEquals compares values, not text', identity: [[when({ NumericEquals: { 'ecr:count': 5 } })]], keys: { 'ecr:count': '5.0' }, expect: 'allow' },
  { name: 'NumericNotEquals true', identity: [[when({ NumericNotEquals: { 'ecr:count': 5 } })]], keys: { 'ecr:count': '6' }, expect: 'allow' },
  { name: 'NumericGreaterThanEquals at the bound', identity: [[when({ NumericGreaterThanEquals: { 'ecr:count': 10 } })]], keys: { 'ecr:count': '10' }, expect: 'allow' },
  { name: 'NumericGreaterThan at the bound', identity: [[when({ NumericGreaterThan: { 'ecr:count': 10 } })]], keys: { 'ecr:count': '10' }, expect: 'implicit-deny' },
  { name: 'NumericLessThanEquals with a non-number in the request', identity: [[when({ NumericLessThanEquals: { 'ecr:count': 10 } })]], keys: { 'ecr:count': 'ten' }, expect: 'implicit-deny' },
];

const dates: Case[] = [
  { name: 'DateGreaterThan true', identity: [[when({ DateGreaterThan: { 'aws:CurrentTime': '2024-01-01T00:00:00Z' } })]], keys: { 'aws:CurrentTime': '2024-06-01T12:00:00Z' }, expect: 'allow' },
  { name: 'DateLessThan false', identity: [[when({ DateLessThan: { 'aws:CurrentTime': '2024-01-01T00:00:00Z' } })]], keys: { 'aws:CurrentTime': '2024-06-01T12:00:00Z' }, expect: 'implicit-deny' },
  {
    name: 'a date range inside',
    identity: [[when({ DateGreaterThan: { 'aws:CurrentTime': '2024-01-01T00:00:00Z' }, DateLessThan: { 'aws:CurrentTime': '2024-12-31T23:59:59Z' } })]],
    keys: { 'aws:CurrentTime': '2024-06-15T08:00:00Z' },
    expect: 'allow',
  },
  {
    name: 'a date range after its end',
    identity: [[when({ DateGreaterThan: { 'aws:CurrentTime': '2024-01-01T00:00:00Z' }, DateLessThan: { 'aws:CurrentTime': '2024-12-31T23:59:59Z' } })]],
    keys: { 'aws:CurrentTime': '2025-02-01T00:00:00Z' },
    expect: 'implicit-deny',
  },
  { name: 'a policy date in epoch seconds', identity: [[when({ DateLessThan: { 'aws:CurrentTime': 1704067200 } })]], keys: { 'aws:CurrentTime': '2023-12-31T23:59:59Z' }, expect: 'allow' },
  { name: 'DateEquals across time zones', identity: [[when({ DateEquals: { 'aws:CurrentTime': '2024-01-01T02:00:00+02:00' } })]], keys: { 'aws:CurrentTime': '2024-01-01T00:00:00Z' }, expect: 'allow' },
  { name: 'aws:EpochTime against an ISO bound', identity: [[when({ DateGreaterThanEquals: { 'aws:EpochTime': '2024-01-01T00:00:00Z' } })]], keys: { 'aws:EpochTime': '1704067200' }, expect: 'allow' },
  { name: 'DateNotEquals true', identity: [[when({ DateNotEquals: { 'aws:CurrentTime': '2024-01-01' } })]], keys: { 'aws:CurrentTime': '2024-01-02T00:00:00Z' }, expect: 'allow' },
  { name: 'DateLessThanEquals with the key missing', identity: [[when({ DateLessThanEquals: { 'aws:CurrentTime': '2030-01-01' } })]], expect: 'implicit-deny' },
];

const denyPlainHttp = { Sid: 'TlsOnly', Effect: 'Deny', Action: 'ecr:*', Resource: '*', Condition: { Bool: { 'aws:SecureTransport': 'false' } } };
const booleansAndBinary: Case[] = [
  { name: 'Bool true', identity: [[when({ Bool: { 'aws:SecureTransport': 'true' } })]], keys: { 'aws:SecureTransport': 'true' }, expect: 'allow' },
  { name: 'Bool false', identity: [[when({ Bool: { 'aws:SecureTransport': 'true' } })]], keys: { 'aws:SecureTransport': 'false' }, expect: 'implicit-deny' },
  { name: 'Bool with the key missing', identity: [[when({ Bool: { 'aws:SecureTransport': 'true' } })]], expect: 'implicit-deny' },
  { name: 'Bool with a JSON boolean and another case', identity: [[when({ Bool: { 'aws:SecureTransport': true } })]], keys: { 'aws:SecureTransport': 'TRUE' }, expect: 'allow' },
  { name: 'deny plain HTTP: plain HTTP is denied', identity: [[pull, denyPlainHttp]], keys: { 'aws:SecureTransport': 'false' }, expect: 'deny', sid: 'TlsOnly' },
  { name: 'deny plain HTTP: TLS is allowed', identity: [[pull, denyPlainHttp]], keys: { 'aws:SecureTransport': 'true' }, expect: 'allow', sid: 'Pull' },
  { name: 'deny plain HTTP: key missing, deny does not apply', identity: [[pull, denyPlainHttp]], expect: 'allow' },
  { name: 'BinaryEquals true', identity: [[when({ BinaryEquals: { 'ecr:blob': 'QmVydGg=' } })]], keys: { 'ecr:blob': 'QmVydGg=' }, expect: 'allow' },
  { name: 'BinaryEquals false', identity: [[when({ BinaryEquals: { 'ecr:blob': 'QmVydGg=' } })]], keys: { 'ecr:blob': 'Qm9hdA==' }, expect: 'implicit-deny' },
];

const corpOnly = { Sid: 'Corp', Effect: 'Deny', Action: 'ecr:*', Resource: '*', Condition: { NotIpAddress: { 'aws:SourceIp': ['203.0.113.0/24', '2001:db8::/32'] } } };
const ips: Case[] = [
  { name: 'IpAddress v4 CIDR inside', identity: [[when({ IpAddress: { 'aws:SourceIp': '203.0.113.0/24' } })]], keys: { 'aws:SourceIp': '203.0.113.7' }, expect: 'allow' },
  { name: 'IpAddress v4 CIDR outside', identity: [[when({ IpAddress: { 'aws:SourceIp': '203.0.113.0/24' } })]], keys: { 'aws:SourceIp': '198.51.100.1' }, expect: 'implicit-deny' },
  { name: 'IpAddress v6 CIDR inside', identity: [[when({ IpAddress: { 'aws:SourceIp': '2001:db8::/32' } })]], keys: { 'aws:SourceIp': '2001:db8:1::5' }, expect: 'allow' },
  { name: 'IpAddress v6 CIDR outside', identity: [[when({ IpAddress: { 'aws:SourceIp': '2001:db8::/32' } })]], keys: { 'aws:SourceIp': '2001:db9::1' }, expect: 'implicit-deny' },
  { name: 'IpAddress v4 CIDR and an IPv4-mapped IPv6 source', identity: [[when({ IpAddress: { 'aws:SourceIp': '203.0.113.0/24' } })]], keys: { 'aws:SourceIp': '::ffff:203.0.113.9' }, expect: 'allow' },
  { name: 'IpAddress v4 CIDR and a v6 source', identity: [[when({ IpAddress: { 'aws:SourceIp': '0.0.0.0/0' } })]], keys: { 'aws:SourceIp': '2001:db8::1' }, expect: 'implicit-deny' },
  { name: 'NotIpAddress outside the range', identity: [[when({ NotIpAddress: { 'aws:SourceIp': '203.0.113.0/24' } })]], keys: { 'aws:SourceIp': '10.0.0.1' }, expect: 'allow' },
  { name: 'deny outside corp ranges: outside is denied', identity: [[pull, corpOnly]], keys: { 'aws:SourceIp': '198.51.100.4' }, expect: 'deny', sid: 'Corp' },
  { name: 'deny outside corp ranges: v6 inside is allowed', identity: [[pull, corpOnly]], keys: { 'aws:SourceIp': '2001:db8::42' }, expect: 'allow', sid: 'Pull' },
  { name: 'IpAddress of a single address', identity: [[when({ IpAddress: { 'aws:SourceIp': '203.0.113.7' } })]], keys: { 'aws:SourceIp': '203.0.113.7' }, expect: 'allow' },
  { name: 'IpAddress with the key missing', identity: [[when({ IpAddress: { 'aws:SourceIp': '0.0.0.0/0' } })]], expect: 'implicit-deny' },
  { name: 'NotIpAddress with the key missing is true', identity: [[when({ NotIpAddress: { 'aws:SourceIp': '10.0.0.0/8' } })]], expect: 'allow' },
  { name: 'NotIpAddress with an unparseable source is true', identity: [[when({ NotIpAddress: { 'aws:SourceIp': '10.0.0.0/8' } })]], keys: { 'aws:SourceIp': 'garbage' }, expect: 'allow' },
];

const arns: Case[] = [
  { name: 'ArnLike on aws:PrincipalArn (the role ARN for a session)', principal: deployerSession, identity: [[when({ ArnLike: { 'aws:PrincipalArn': `arn:aws:iam::${A}:role/*` } })]], expect: 'allow' },
  { name: 'ArnLike wildcards stay inside their segment', identity: [[when({ ArnLike: { 'aws:SourceArn': 'arn:aws:ecr:us*:repository/app/api' } })]], keys: { 'aws:SourceArn': REPO }, expect: 'implicit-deny' },
  { name: 'ArnLike true', identity: [[when({ ArnLike: { 'aws:SourceArn': 'arn:aws:ecr:*:*:repository/app/*' } })]], keys: { 'aws:SourceArn': REPO }, expect: 'allow' },
  { name: 'ArnEquals true', identity: [[when({ ArnEquals: { 'aws:SourceArn': REPO } })]], keys: { 'aws:SourceArn': REPO }, expect: 'allow' },
  { name: 'ArnNotEquals false', identity: [[when({ ArnNotEquals: { 'aws:SourceArn': REPO } })]], keys: { 'aws:SourceArn': REPO }, expect: 'implicit-deny' },
  { name: 'ArnNotLike true', identity: [[when({ ArnNotLike: { 'aws:PrincipalArn': `arn:aws:iam::${B}:*` } })]], expect: 'allow' },
  { name: 'ArnNotLike with the key missing is true', identity: [[when({ ArnNotLike: { 'aws:SourceArn': REPO } })]], expect: 'allow' },
  { name: 'ArnLike with the key missing is false', identity: [[when({ ArnLike: { 'aws:SourceArn': '*' } })]], expect: 'implicit-deny' },
  { name: 'ArnLike against a value that is not an ARN', identity: [[when({ ArnLike: { 'aws:SourceArn': '*' } })]], keys: { 'aws:SourceArn': 'not-an-arn' }, expect: 'implicit-deny' },
];

const nulls: Case[] = [
  { name: 'Null true with the key missing', identity: [[when({ Null: { 'aws:TokenIssueTime': 'true' } })]], expect: 'allow' },
  { name: 'Null true with the key present', identity: [[when({ Null: { 'aws:TokenIssueTime': 'true' } })]], keys: { 'aws:TokenIssueTime': '2024-01-01T00:00:00Z' }, expect: 'implicit-deny' },
  { name: 'Null false with the key present', identity: [[when({ Null: { 'aws:TokenIssueTime': false } })]], keys: { 'aws:TokenIssueTime': '2024-01-01T00:00:00Z' }, expect: 'allow' },
  { name: 'Null false with the key missing', identity: [[when({ Null: { 'aws:TokenIssueTime': 'false' } })]], expect: 'implicit-deny' },
  { name: 'Null true with an empty multi-valued key', identity: [[when({ Null: { 'aws:TagKeys': 'true' } })]], keys: { 'aws:TagKeys': [] }, expect: 'allow' },
  {
    name: 'require a tag on create: Deny when aws:RequestTag/team is null',
    identity: [[allow('ecr:CreateRepository'), deny('ecr:CreateRepository', '*', { Sid: 'NeedTeam', Condition: { Null: { 'aws:RequestTag/team': 'true' } } })]],
    action: 'ecr:CreateRepository',
    expect: 'deny',
    sid: 'NeedTeam',
  },
];

const ifExists: Case[] = [
  { name: 'StringEqualsIfExists with the key missing', identity: [[when({ StringEqualsIfExists: { 'aws:RequestedRegion': 'us-east-1' } })]], expect: 'allow' },
  { name: 'StringEqualsIfExists present and matching', identity: [[when({ StringEqualsIfExists: { 'aws:RequestedRegion': 'us-east-1' } })]], keys: { 'aws:RequestedRegion': 'us-east-1' }, expect: 'allow' },
  { name: 'StringEqualsIfExists present and not matching', identity: [[when({ StringEqualsIfExists: { 'aws:RequestedRegion': 'us-east-1' } })]], keys: { 'aws:RequestedRegion': 'eu-west-1' }, expect: 'implicit-deny' },
  {
    name: 'Deny StringNotEqualsIfExists with the key missing applies',
    identity: [[pull, deny('ecr:*', '*', { Sid: 'Region', Condition: { StringNotEqualsIfExists: { 'aws:RequestedRegion': 'us-east-1' } } })]],
    expect: 'deny',
    sid: 'Region',
  },
  { name: 'NumericLessThanIfExists with the key missing', identity: [[when({ NumericLessThanIfExists: { 'aws:MultiFactorAuthAge': 300 } })]], expect: 'allow' },
  { name: 'BoolIfExists present and false', identity: [[when({ BoolIfExists: { 'aws:MultiFactorAuthPresent': 'true' } })]], keys: { 'aws:MultiFactorAuthPresent': 'false' }, expect: 'implicit-deny' },
  { name: 'IpAddressIfExists with the key missing', identity: [[when({ IpAddressIfExists: { 'aws:SourceIp': '10.0.0.0/8' } })]], expect: 'allow' },
];

const allowedTags = { 'ForAllValues:StringEquals': { 'aws:TagKeys': ['env', 'team'] } };
const anyTag = { 'ForAnyValue:StringEquals': { 'aws:TagKeys': ['env'] } };
const sets: Case[] = [
  { name: 'ForAllValues: every request value is allowed', identity: [[when(allowedTags)]], keys: { 'aws:TagKeys': ['env'] }, expect: 'allow' },
  { name: 'ForAllValues: one request value is not', identity: [[when(allowedTags)]], keys: { 'aws:TagKeys': ['env', 'secret'] }, expect: 'implicit-deny' },
  { name: 'ForAllValues: key missing is true', identity: [[when(allowedTags)]], expect: 'allow' },
  { name: 'ForAllValues: empty set is true', identity: [[when(allowedTags)]], keys: { 'aws:TagKeys': [] }, expect: 'allow' },
  { name: 'ForAnyValue: one request value matches', identity: [[when(anyTag)]], keys: { 'aws:TagKeys': ['team', 'env'] }, expect: 'allow' },
  { name: 'ForAnyValue: no request value matches', identity: [[when(anyTag)]], keys: { 'aws:TagKeys': ['team'] }, expect: 'implicit-deny' },
  { name: 'ForAnyValue: key missing is false', identity: [[when(anyTag)]], expect: 'implicit-deny' },
  { name: 'ForAnyValue: empty set is false', identity: [[when(anyTag)]], keys: { 'aws:TagKeys': [] }, expect: 'implicit-deny' },
  { name: 'ForAnyValue:StringLike', identity: [[when({ 'ForAnyValue:StringLike': { 'aws:TagKeys': 'adm*' } })]], keys: { 'aws:TagKeys': ['x', 'admin'] }, expect: 'allow' },
  { name: 'ForAllValues:StringNotEquals: none is forbidden', identity: [[when({ 'ForAllValues:StringNotEquals': { 'aws:TagKeys': 'secret' } })]], keys: { 'aws:TagKeys': ['a', 'b'] }, expect: 'allow' },
  { name: 'ForAllValues:StringNotEquals: one is forbidden', identity: [[when({ 'ForAllValues:StringNotEquals': { 'aws:TagKeys': 'secret' } })]], keys: { 'aws:TagKeys': ['a', 'secret'] }, expect: 'implicit-deny' },
  { name: 'ForAnyValue:StringNotEquals: all are listed', identity: [[when({ 'ForAnyValue:StringNotEquals': { 'aws:TagKeys': 'env' } })]], keys: { 'aws:TagKeys': ['env'] }, expect: 'implicit-deny' },
  { name: 'ForAnyValue:StringNotEquals: one is not listed', identity: [[when({ 'ForAnyValue:StringNotEquals': { 'aws:TagKeys': 'env' } })]], keys: { 'aws:TagKeys': ['env', 'x'] }, expect: 'allow' },
  {
    name: 'Deny ForAnyValue on a forbidden tag key',
    identity: [[allow('ecr:TagResource'), deny('ecr:TagResource', '*', { Sid: 'NoOwnerTag', Condition: { 'ForAnyValue:StringEquals': { 'aws:TagKeys': 'owner' } } })]],
    action: 'ecr:TagResource',
    keys: { 'aws:TagKeys': ['env', 'owner'] },
    expect: 'deny',
    sid: 'NoOwnerTag',
  },
  { name: 'ForAnyValue:StringEqualsIfExists with the key missing', identity: [[when({ 'ForAnyValue:StringEqualsIfExists': { 'aws:TagKeys': 'env' } })]], expect: 'allow' },
  { name: 'a plain operator on a multi-valued key matches any value', identity: [[when({ StringEquals: { 'aws:TagKeys': 'env' } })]], keys: { 'aws:TagKeys': ['team', 'env'] }, expect: 'allow' },
];

const userRepos = allow('ecr:*', `${REPO_BASE}/\${aws:username}/*`, { Sid: 'Own' });
const variables: Case[] = [
  { name: '${aws:username} in Resource: own repository', identity: [[userRepos]], arn: `${REPO_BASE}/alice/app`, keys: { 'aws:username': 'alice' }, expect: 'allow', sid: 'Own' },
  { name: '${aws:username} in Resource: another user', identity: [[userRepos]], arn: `${REPO_BASE}/bob/app`, keys: { 'aws:username': 'alice' }, expect: 'implicit-deny' },
  { name: '${aws:username} unresolvable (a role session) matches nothing', principal: deployerSession, identity: [[userRepos]], arn: `${REPO_BASE}/alice/app`, expect: 'implicit-deny' },
  {
    name: "a variable's default value",
    principal: deployerSession,
    identity: [[allow('ecr:*', `${REPO_BASE}/\${aws:username, 'shared'}/*`)]],
    arn: `${REPO_BASE}/shared/tools`,
    expect: 'allow',
  },
  { name: '${aws:PrincipalTag/team} in Resource', identity: [[allow('ecr:*', `${REPO_BASE}/\${aws:PrincipalTag/team}/*`)]], arn: `${REPO_BASE}/core/db`, keys: { 'aws:PrincipalTag/team': 'core' }, expect: 'allow' },
  { name: '${aws:PrincipalAccount} comes from the principal', identity: [[allow('ecr:*', 'arn:aws:ecr:us-east-1:${aws:PrincipalAccount}:repository/*')]], expect: 'allow' },
  { name: '${aws:userid} in Resource', identity: [[allow('ecr:*', `${REPO_BASE}/\${aws:userid}`)]], arn: `${REPO_BASE}/AIDAEXAMPLE`, keys: { 'aws:userid': 'AIDAEXAMPLE' }, expect: 'allow' },
  { name: 'under 2008-10-17 a variable is literal text', version: '2008-10-17', identity: [[userRepos]], arn: `${REPO_BASE}/alice/app`, keys: { 'aws:username': 'alice' }, expect: 'implicit-deny' },
  {
    name: 'a variable in a condition value: equal',
    identity: [[when({ StringEquals: { 'aws:ResourceTag/owner': '${aws:username}' } })]],
    keys: { 'aws:username': 'alice', 'aws:ResourceTag/owner': 'alice' },
    expect: 'allow',
  },
  {
    name: 'a variable in a condition value: different',
    identity: [[when({ StringEquals: { 'aws:ResourceTag/owner': '${aws:username}' } })]],
    keys: { 'aws:username': 'alice', 'aws:ResourceTag/owner': 'bob' },
    expect: 'implicit-deny',
  },
  { name: '${*} is a literal asterisk: it matches itself', identity: [[allow('ecr:*', `${REPO_BASE}/weird\${*}`)]], arn: `${REPO_BASE}/weird*`, expect: 'allow' },
  { name: '${*} is a literal asterisk: not a wildcard', identity: [[allow('ecr:*', `${REPO_BASE}/weird\${*}`)]], arn: `${REPO_BASE}/weirdo`, expect: 'implicit-deny' },
  {
    name: 'a substituted value is not a wildcard',
    identity: [[allow('ecr:*', `${REPO_BASE}/\${aws:PrincipalTag/team}/x`)]],
    arn: `${REPO_BASE}/anything/x`,
    keys: { 'aws:PrincipalTag/team': '*' },
    expect: 'implicit-deny',
  },
  {
    name: 'StringLike with a variable and a wildcard',
    identity: [[when({ StringLike: { 'ecr:prefix': 'home/${aws:username}/*' } })]],
    keys: { 'aws:username': 'alice', 'ecr:prefix': 'home/alice/docs' },
    expect: 'allow',
  },
];

const tags: Case[] = [
  { name: 'aws:ResourceTag matches', identity: [[when({ StringEquals: { 'aws:ResourceTag/env': 'prod' } })]], keys: { 'aws:ResourceTag/env': 'prod' }, expect: 'allow' },
  { name: 'ecr:ResourceTag matches', identity: [[when({ StringEquals: { 'ecr:ResourceTag/env': 'prod' } })]], keys: { 'ecr:ResourceTag/env': 'prod' }, expect: 'allow' },
  { name: 'aws:PrincipalTag does not match', identity: [[when({ StringEquals: { 'aws:PrincipalTag/team': 'core' } })]], keys: { 'aws:PrincipalTag/team': 'web' }, expect: 'implicit-deny' },
  {
    name: 'Deny on a protected resource tag',
    identity: [[allow('ecr:*'), deny('ecr:DeleteRepository', '*', { Sid: 'Protected', Condition: { StringEquals: { 'aws:ResourceTag/protected': 'true' } } })]],
    action: 'ecr:DeleteRepository',
    keys: { 'aws:ResourceTag/protected': 'true' },
    expect: 'deny',
    sid: 'Protected',
  },
  {
    name: 'principal tag must equal resource tag (ABAC)',
    identity: [[when({ StringEquals: { 'aws:ResourceTag/team': '${aws:PrincipalTag/team}' } })]],
    keys: { 'aws:ResourceTag/team': 'core', 'aws:PrincipalTag/team': 'core' },
    expect: 'allow',
  },
];

const combined: Case[] = [
  {
    name: 'two operators are ANDed: both hold',
    identity: [[when({ StringEquals: { 'aws:username': 'alice' }, Bool: { 'aws:SecureTransport': 'true' } })]],
    keys: { 'aws:username': 'alice', 'aws:SecureTransport': 'true' },
    expect: 'allow',
  },
  {
    name: 'two operators are ANDed: one fails',
    identity: [[when({ StringEquals: { 'aws:username': 'alice' }, Bool: { 'aws:SecureTransport': 'true' } })]],
    keys: { 'aws:username': 'alice', 'aws:SecureTransport': 'false' },
    expect: 'implicit-deny',
  },
  {
    name: 'two keys under one operator are ANDed',
    identity: [[when({ StringEquals: { 'aws:username': 'alice', 'aws:RequestedRegion': 'us-east-1' } })]],
    keys: { 'aws:username': 'alice', 'aws:RequestedRegion': 'eu-west-1' },
    expect: 'implicit-deny',
  },
  { name: 'values of one key are ORed', identity: [[when({ StringEquals: { 'aws:username': ['bob', 'alice'] } })]], keys: { 'aws:username': 'alice' }, expect: 'allow' },
  { name: 'values of a negated operator are NORed', identity: [[when({ StringNotEquals: { 'aws:username': ['bob', 'alice'] } })]], keys: { 'aws:username': 'alice' }, expect: 'implicit-deny' },
  {
    name: 'resource policy with a condition: met',
    resource: [[grant(alice.arn, 'ecr:*', { Condition: { IpAddress: { 'aws:SourceIp': '10.0.0.0/8' } } })]],
    keys: { 'aws:SourceIp': '10.1.2.3' },
    expect: 'allow',
  },
  {
    name: 'resource policy with a condition: not met',
    resource: [[grant(alice.arn, 'ecr:*', { Condition: { IpAddress: { 'aws:SourceIp': '10.0.0.0/8' } } })]],
    keys: { 'aws:SourceIp': '192.168.1.1' },
    expect: 'implicit-deny',
  },
  {
    name: 'org-style guard: deny callers outside the account via aws:PrincipalAccount',
    principal: carol,
    identity: [[pull]],
    resource: [[grant(B), { Sid: 'OwnAccount', Effect: 'Deny', Principal: '*', Action: 'ecr:*', Condition: { StringNotEquals: { 'aws:PrincipalAccount': A } } }]],
    expect: 'deny',
    sid: 'OwnAccount',
  },
];

const cases: Case[] = [
  ...basics,
  ...actions,
  ...resources,
  ...notElements,
  ...sameAccount,
  ...crossAccount,
  ...sessions,
  ...trustCases,
  ...notPrincipal,
  ...strings,
  ...numbers,
  ...dates,
  ...booleansAndBinary,
  ...ips,
  ...arns,
  ...nulls,
  ...ifExists,
  ...sets,
  ...variables,
  ...tags,
  ...combined,
];

function compile(statements: Statement[][] | undefined, kind: 'identity' | 'resource' | 'trust', version: string, prefix: string): CompiledPolicy[] {
  return (statements ?? []).map((s, i) => parsePolicy(JSON.stringify({ Version: version, Statement: s }), kind, `${prefix}-${i}`));
}

for (const c of cases) {
  test(`evaluate: ${c.name}`, () => {
    const version = c.version ?? '2012-10-17';
    const identityPolicies = compile(c.identity, 'identity', version, 'identity');
    const resourcePolicies = [...compile(c.resource, 'resource', version, 'resource'), ...compile(c.trust, 'trust', version, 'trust')];
    const context: RequestContext = {
      principal: c.principal ?? alice,
      action: c.action ?? 'ecr:BatchGetImage',
      resource: c.arn ?? REPO,
      resourceAccountId: c.resourceAccountId ?? A,
      keys: c.keys ?? {},
    };
    // A role's trust policy must allow the caller even inside the account (as STS AssumeRole asks).
    const decision = evaluate({ context, identityPolicies, resourcePolicies, ...(c.trust ? { requireResourceAllow: true } : {}) });
    assert.equal(decision.effect, c.expect, JSON.stringify(decision));
    if (c.sid !== undefined) assert.equal(decision.statement?.sid, c.sid);
    if (c.reason !== undefined) assert.equal(decision.reason, c.reason);
    if (c.expect === 'implicit-deny') assert.equal(decision.statement, undefined);
    else assert.ok(decision.statement, 'an allow or explicit deny names its statement');
  });
}

test('evaluate: the deciding statement names its policy label and 0-based index', () => {
  const p = parsePolicy(JSON.stringify({ Version: '2012-10-17', Statement: [allow('s3:*'), allow('ecr:*')] }), 'identity', 'arn:aws:iam::111111111111:policy/ci');
  const decision = evaluate({
    context: { principal: alice, action: 'ecr:PutImage', resource: REPO, resourceAccountId: A, keys: {} },
    identityPolicies: [p],
    resourcePolicies: [],
  });
  assert.deepEqual(decision, { effect: 'allow', statement: { policy: 'arn:aws:iam::111111111111:policy/ci', index: 1 } });
});

test('evaluate: a compiled policy gives the same answers on repeated use (variable cache)', () => {
  const p = parsePolicy(JSON.stringify({ Version: '2012-10-17', Statement: [userRepos] }), 'identity', 'own');
  for (let i = 0; i < 300; i++) {
    const user = `user${i % 7}`;
    const context = { principal: alice, action: 'ecr:PutImage', resource: `${REPO_BASE}/${user}/x`, resourceAccountId: A, keys: { 'aws:username': user } };
    assert.equal(evaluate({ context, identityPolicies: [p], resourcePolicies: [] }).effect, 'allow');
    assert.equal(evaluate({ context: { ...context, keys: { 'aws:username': `${user}-other` } }, identityPolicies: [p], resourcePolicies: [] }).effect, 'implicit-deny');
  }
});

test('evaluate: refuses a policy of the wrong kind instead of ignoring its Principal', () => {
  const shared = parsePolicy(JSON.stringify({ Version: '2012-10-17', Statement: [grant(bob.arn, 'ecr:*')] }), 'resource', 'repository policy of app/api');
  const identity = parsePolicy(JSON.stringify({ Version: '2012-10-17', Statement: [pull] }), 'identity', 'user/alice inline policy pull');
  const context: RequestContext = { principal: alice, action: 'ecr:BatchGetImage', resource: REPO, resourceAccountId: A, keys: {} };
  assert.throws(() => evaluate({ context, identityPolicies: [shared], resourcePolicies: [] }), /repository policy of app\/api is a resource policy, passed as an identity policy/);
  assert.throws(() => evaluate({ context, identityPolicies: [], resourcePolicies: [identity] }), /is an identity policy, passed as a resource policy/);
});
