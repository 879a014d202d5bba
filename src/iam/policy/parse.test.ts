import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parsePolicy, PolicyError } from './index.ts';
import type { PolicyKind } from './index.ts';

type Statement = Record<string, unknown>;

const ACCOUNT = '123456789012';
const ok: Statement = { Effect: 'Allow', Action: 'ecr:BatchGetImage', Resource: '*' };
const okResource: Statement = { Effect: 'Allow', Principal: { AWS: ACCOUNT }, Action: 'ecr:BatchGetImage' };
const okTrust: Statement = { Effect: 'Allow', Principal: { AWS: `arn:aws:iam::${ACCOUNT}:root` }, Action: 'sts:AssumeRole' };

const doc = (...statements: Statement[]): string => JSON.stringify({ Version: '2012-10-17', Statement: statements });
const withCondition = (Condition: unknown): string => doc({ Sid: 'Cond', ...ok, Condition });
const withPrincipal = (Principal: unknown): string => doc({ Sid: 'Share', ...okResource, Principal });

interface Rejected {
  name: string;
  text: string;
  kind?: PolicyKind;
  maxLength?: number;
  /** Every pattern must be found in the message. */
  message: (string | RegExp)[];
}

const rejected: Rejected[] = [
  { name: 'malformed JSON', text: '{"Version": "2012-10-17", "Statement": [', message: [/^Policy document is not valid JSON: /] },
  { name: 'empty document', text: '   ', message: ['Policy document is empty.'] },
  { name: 'a JSON array instead of an object', text: '[]', message: ['Policy document must be a JSON object, not an array.'] },
  { name: 'unknown Version', text: JSON.stringify({ Version: '2013-01-01', Statement: [ok] }), message: ['Version must be "2012-10-17" or "2008-10-17", not "2013-01-01".'] },
  { name: 'Version as a number', text: JSON.stringify({ Version: 2012, Statement: [ok] }), message: [/^Version must be .* not the number 2012\.$/] },
  { name: 'unknown top-level key', text: JSON.stringify({ Version: '2012-10-17', Statements: [ok] }), message: ['Policy document has an unknown key "Statements"'] },
  { name: 'no Statement', text: JSON.stringify({ Version: '2012-10-17' }), message: ['Policy document has no Statement.'] },
  { name: 'empty Statement list', text: JSON.stringify({ Version: '2012-10-17', Statement: [] }), message: ['Statement must not be an empty list.'] },
  { name: 'Statement is a string', text: JSON.stringify({ Version: '2012-10-17', Statement: 'Allow' }), message: ['Statement must be an object or a list of objects'] },
  { name: 'a statement that is not an object', text: JSON.stringify({ Version: '2012-10-17', Statement: [ok, 42] }), message: ['Statement 2 must be an object, not the number 42.'] },
  { name: 'missing Effect', text: doc({ Sid: 'NoEffect', Action: 'ecr:*', Resource: '*' }), message: ['Statement 1 (Sid "NoEffect"): Effect is missing'] },
  {
    name: 'Effect "Permit"',
    text: doc(ok, { Sid: 'PullOnly', Effect: 'Permit', Action: 'ecr:BatchGetImage', Resource: '*' }),
    message: ['Statement 2 (Sid "PullOnly"): Effect must be "Allow" or "Deny", not "Permit".'],
  },
  { name: 'Effect in the wrong case', text: doc({ ...ok, Effect: 'allow' }), message: ['Statement 1: Effect must be "Allow" or "Deny", not "allow".'] },
  { name: 'both Action and NotAction', text: doc({ ...ok, NotAction: 'ecr:PutImage' }), message: ['Statement 1: it has both Action and NotAction'] },
  { name: 'neither Action nor NotAction', text: doc({ Effect: 'Allow', Resource: '*' }), message: ['Statement 1: it needs an Action or a NotAction.'] },
  { name: 'action without a service prefix', text: doc({ ...ok, Action: 'BatchGetImage' }), message: ['Statement 1: Action "BatchGetImage" is not valid: an action is "*" or "service:ActionName"'] },
  { name: 'action with a space', text: doc({ ...ok, Action: ['ecr:PutImage', 'ecr:Get Image'] }), message: ['Action "ecr:Get Image" is not valid'] },
  { name: 'NotAction that is a number', text: doc({ Effect: 'Deny', NotAction: 7, Resource: '*' }), message: ['Statement 1: NotAction must be a string or a list of strings; found the number 7.'] },
  { name: 'empty Action list', text: doc({ ...ok, Action: [] }), message: ['Statement 1: Action must not be an empty list.'] },
  { name: 'unknown statement key', text: doc({ ...ok, Sid: 'X', Condtion: {} }), message: ['Statement 1 (Sid "X"): the statement has an unknown key "Condtion"'] },
  { name: 'statement key in the wrong case', text: doc({ effect: 'Allow', Action: 'ecr:*', Resource: '*' }), message: ['unknown key "effect"', 'did you mean "Effect"?'] },
  { name: 'Sid that is not a string', text: doc({ ...ok, Sid: 3 }), message: ['Statement 1: Sid must be a string, not the number 3.'] },
  {
    name: 'duplicate Sid in an identity policy (IAM\'s words first)',
    text: doc({ ...ok, Sid: 'Pull' }, { ...ok, Sid: 'Push', Action: 'ecr:PutImage' }, { ...ok, Sid: 'Pull' }),
    message: ['Statement IDs (SID) in a single policy must be unique: statement 3 repeats Sid "Pull" of statement 1.'],
  },
  { name: 'duplicate Sid in a trust policy', kind: 'trust', text: doc({ ...okTrust, Sid: 'Assume' }, { ...okTrust, Sid: 'Assume' }), message: [/^Statement IDs \(SID\) in a single policy must be unique/] },
  {
    name: 'a Sid with a hyphen in an identity policy',
    text: doc(ok, { ...ok, Sid: 'pull-all' }),
    message: ['Statement IDs (SID) must be alpha-numeric. Check that your input satisfies the regular expression [0-9A-Za-z]*: statement 2 has Sid "pull-all".'],
  },
  { name: 'a Sid with a space in an identity policy', text: doc({ ...ok, Sid: 'Pull all' }), message: [/^Statement IDs \(SID\) must be alpha-numeric/] },
  { name: 'a Sid with an underscore in a trust policy', kind: 'trust', text: doc({ ...okTrust, Sid: 'assume_role' }), message: [/^Statement IDs \(SID\) must be alpha-numeric/] },
  { name: 'Principal in an identity policy', text: doc({ ...ok, Principal: '*' }), message: ['Statement 1: Principal is not allowed in an identity-based policy'] },
  { name: 'NotPrincipal in an identity policy', text: doc({ ...ok, Effect: 'Deny', NotPrincipal: { AWS: ACCOUNT } }), message: ['NotPrincipal is not allowed in an identity-based policy'] },
  { name: 'identity policy without Resource', text: doc({ Effect: 'Allow', Action: 'ecr:*' }), message: ['Statement 1: it needs a Resource or a NotResource'] },
  { name: 'both Resource and NotResource', text: doc({ ...ok, NotResource: '*' }), message: ['Statement 1: it has both Resource and NotResource'] },
  { name: 'Resource that is not an ARN', text: doc({ ...ok, Resource: 'repository/app' }), message: ['Resource "repository/app" is not valid'] },
  { name: 'unterminated policy variable', text: doc({ ...ok, Resource: 'arn:aws:ecr:*:*:repository/${aws:username' }), message: ['Statement 1: Resource', 'is missing its closing "}"'] },
  { name: 'resource policy without Principal', kind: 'resource', text: doc({ Sid: 'Pull', Effect: 'Allow', Action: 'ecr:BatchGetImage' }), message: ['Statement 1 (Sid "Pull"): Principal is missing; a resource-based policy must say whom it applies to'] },
  { name: 'both Principal and NotPrincipal', kind: 'resource', text: doc({ ...okResource, NotPrincipal: '*' }), message: ['Statement 1: it has both Principal and NotPrincipal'] },
  { name: 'NotPrincipal with Allow', kind: 'resource', text: doc({ Effect: 'Allow', NotPrincipal: { AWS: ACCOUNT }, Action: 'ecr:*' }), message: ['NotPrincipal can only be used with "Effect": "Deny"'] },
  { name: 'trust policy without Principal', kind: 'trust', text: doc({ Effect: 'Allow', Action: 'sts:AssumeRole' }), message: ['Statement 1: Principal is missing; a role trust policy'] },
  { name: 'trust policy with Resource', kind: 'trust', text: doc({ ...okTrust, Resource: '*' }), message: ['Statement 1: Resource is not allowed in a role trust policy'] },
  { name: 'trust policy with NotPrincipal', kind: 'trust', text: doc({ Effect: 'Deny', NotPrincipal: { AWS: ACCOUNT }, Action: 'sts:AssumeRole' }), message: ['NotPrincipal is not allowed in a role trust policy'] },
  {
    name: 'a group ARN as principal',
    kind: 'resource',
    text: withPrincipal({ AWS: `arn:aws:iam::${ACCOUNT}:group/developers` }),
    message: ['Statement 1 (Sid "Share"): Principal "arn:aws:iam::123456789012:group/developers" is an IAM group, and a group cannot be a principal'],
  },
  { name: 'a short account id', kind: 'resource', text: withPrincipal({ AWS: '12345' }), message: ['Principal "12345" is not a valid account id: an account id has exactly 12 digits'] },
  { name: 'an ARN with a bad account id', kind: 'resource', text: withPrincipal({ AWS: 'arn:aws:iam::1234:root' }), message: ['Principal "arn:aws:iam::1234:root" has an invalid account id "1234"'] },
  { name: 'a user name instead of an ARN', kind: 'resource', text: withPrincipal({ AWS: ['alice'] }), message: ['Principal "alice" is not valid: an AWS principal must be "*", a 12-digit account id'] },
  { name: 'a wildcard in a principal ARN', kind: 'resource', text: withPrincipal({ AWS: `arn:aws:iam::${ACCOUNT}:user/*` }), message: ['has a wildcard; principal ARNs cannot contain wildcards'] },
  { name: 'a malformed session ARN', kind: 'trust', text: doc({ ...okTrust, Principal: { AWS: `arn:aws:sts::${ACCOUNT}:assumed-role/deployer` } }), message: ['is not valid: an AWS principal must be'] },
  { name: 'Principal as a bare account id string', kind: 'resource', text: withPrincipal(ACCOUNT), message: ['Principal must be "*" or an object such as {"AWS": "arn:aws:iam::123456789012:root"}, not the string "123456789012"'] },
  { name: 'unknown principal type', kind: 'resource', text: withPrincipal({ Aws: ACCOUNT }), message: ['Principal has an unknown principal type "Aws"'] },
  { name: 'empty Principal object', kind: 'resource', text: withPrincipal({}), message: ['Principal must name at least one principal'] },
  { name: 'unknown condition operator', text: withCondition({ StringEqual: { 'aws:username': 'alice' } }), message: ['Statement 1 (Sid "Cond"): Condition operator "StringEqual" is not known (did you mean "StringEquals"?).'] },
  { name: 'condition operator in the wrong case', text: withCondition({ 'ForAnyValue:stringlike': { 'aws:TagKeys': 'a*' } }), message: ['"ForAnyValue:stringlike" is not known (did you mean "ForAnyValue:StringLike"?)'] },
  { name: 'NullIfExists', text: withCondition({ NullIfExists: { 'aws:username': 'true' } }), message: ['Condition operator "NullIfExists" is not valid'] },
  { name: 'a condition value that is an object', text: withCondition({ StringEquals: { 'aws:username': { name: 'alice' } } }), message: ['Condition "StringEquals" on "aws:username" values must be strings, numbers or booleans, not an object.'] },
  { name: 'a condition value that is null', text: withCondition({ StringEquals: { 'aws:username': ['alice', null] } }), message: ['values must be strings, numbers or booleans, not null'] },
  { name: 'an empty list of condition values', text: withCondition({ StringEquals: { 'aws:username': [] } }), message: ['Condition "StringEquals" on "aws:username" has an empty list of values'] },
  { name: 'a non-number for a Numeric operator', text: withCondition({ NumericLessThan: { 'aws:MultiFactorAuthAge': 'an hour' } }), message: ['Condition "NumericLessThan" on "aws:MultiFactorAuthAge": "an hour" is not a number.'] },
  { name: 'a bad date', text: withCondition({ DateLessThan: { 'aws:CurrentTime': '2024-02-30T00:00:00Z' } }), message: ['"2024-02-30T00:00:00Z" is not a date'] },
  { name: 'a bad IP range', text: withCondition({ IpAddress: { 'aws:SourceIp': '10.0.0.0/33' } }), message: ['"10.0.0.0/33" is not an IP address or CIDR range'] },
  { name: 'a bad Bool value', text: withCondition({ Bool: { 'aws:SecureTransport': 'yes' } }), message: ['"yes" is not "true" or "false"'] },
  { name: 'a condition key without a service prefix', text: withCondition({ StringEquals: { username: 'alice' } }), message: ['key "username" must have the form "service:name"'] },
  { name: 'Condition that is a list', text: withCondition([{ StringEquals: { 'aws:username': 'a' } }]), message: ['Statement 1 (Sid "Cond"): Condition must be an object'] },
  {
    name: 'a key given twice (JSON would drop one)',
    text: `{"Version":"2012-10-17","Statement":[${JSON.stringify(ok)},{"Sid":"Two","Effect":"Allow","Action":"ecr:*","Resource":"*","Condition":{"StringEquals":{"aws:username":"a"},"StringEquals":{"aws:username":"b"}}}]}`,
    message: ['Statement 2 (Sid "Two"): the key "StringEquals" appears twice in Statement[1].Condition'],
  },
  { name: 'a document over the size limit', kind: 'resource', maxLength: 10240, text: doc({ ...okResource, Sid: 'x'.repeat(10300) }), message: [/^Policy document is \d+ characters long; the limit is 10240\.$/] },
];

for (const r of rejected) {
  test(`parsePolicy rejects: ${r.name}`, () => {
    assert.throws(
      () => parsePolicy(r.text, r.kind ?? 'identity', 'test policy', r.maxLength === undefined ? undefined : { maxLength: r.maxLength }),
      (err: unknown) => {
        assert.ok(err instanceof PolicyError, `expected a PolicyError, got ${String(err)}`);
        for (const part of r.message) {
          if (typeof part === 'string') assert.ok(err.message.includes(part), `message ${JSON.stringify(err.message)} lacks ${JSON.stringify(part)}`);
          else assert.match(err.message, part);
        }
        return true;
      },
    );
  });
}

interface Accepted {
  name: string;
  text: string;
  kind?: PolicyKind;
  maxLength?: number;
  check?: (p: ReturnType<typeof parsePolicy>) => void;
}

const everyOperator = Object.fromEntries(
  [
    ['StringEquals', 'a'],
    ['StringNotEquals', 'a'],
    ['StringEqualsIgnoreCase', 'a'],
    ['StringNotEqualsIgnoreCase', 'a'],
    ['StringLike', 'a*'],
    ['StringNotLike', 'a?'],
    ['NumericEquals', 1],
    ['NumericNotEquals', '1.5'],
    ['NumericLessThan', -1],
    ['NumericLessThanEquals', '1e3'],
    ['NumericGreaterThan', 0],
    ['NumericGreaterThanEquals', 2],
    ['DateEquals', '2024-01-01'],
    ['DateNotEquals', 1704067200],
    ['DateLessThan', '2024-01-01T00:00:00Z'],
    ['DateLessThanEquals', '2024-01-01T00:00:00.123+05:30'],
    ['DateGreaterThan', '2024-01-01T00:00Z'],
    ['DateGreaterThanEquals', '2024-01-01T00:00:00-08:00'],
    ['Bool', true],
    ['BinaryEquals', 'QmVydGg='],
    ['IpAddress', ['10.0.0.0/8', '2001:db8::/32']],
    ['NotIpAddress', '192.0.2.1'],
    ['ArnEquals', 'arn:aws:iam::123456789012:role/x'],
    ['ArnLike', 'arn:aws:iam::*:role/*'],
    ['ArnNotEquals', 'arn:aws:iam::123456789012:role/x'],
    ['ArnNotLike', 'arn:aws:iam::*:user/*'],
    ['Null', 'true'],
    ['StringEqualsIfExists', 'a'],
    ['ForAnyValue:StringLike', 'a*'],
    ['ForAllValues:StringEquals', ['a', 'b']],
    ['ForAllValues:StringNotLikeIfExists', 'z*'],
  ].map(([op, value]) => [op, { 'test:key': value }]),
);

const accepted: Accepted[] = [
  {
    name: 'a single statement object and no Version (2008-10-17)',
    text: JSON.stringify({ Statement: ok }),
    check: (p) => {
      assert.equal(p.version, '2008-10-17');
      assert.equal(p.statements.length, 1);
    },
  },
  { name: 'an ECR repository policy without Resource', kind: 'resource', text: doc({ Sid: 'Pull', ...okResource }), check: (p) => assert.equal(p.statements[0]!.resources, undefined) },
  { name: 'a trust policy', kind: 'trust', text: doc(okTrust, { Effect: 'Allow', Principal: { Service: 'ecs-tasks.amazonaws.com' }, Action: 'sts:AssumeRole' }) },
  {
    name: 'every principal form',
    kind: 'resource',
    text: withPrincipal({
      AWS: ['*', ACCOUNT, `arn:aws:iam::${ACCOUNT}:root`, `arn:aws:iam::${ACCOUNT}:user/dev/alice`, `arn:aws:iam::${ACCOUNT}:role/svc/deployer`, `arn:aws:sts::${ACCOUNT}:assumed-role/deployer/ci-42`],
      Service: 'ecs-tasks.amazonaws.com',
      Federated: 'cognito-identity.amazonaws.com',
      CanonicalUser: '79a59df900b949e55d96a1e698fbacedfd6e09d98eacf8f8d5218e7cd47ef2be',
    }),
  },
  { name: 'every condition operator', text: withCondition(everyOperator), check: (p) => assert.equal(p.statements[0]!.conditions.length, Object.keys(everyOperator).length) },
  { name: 'numbers and booleans as condition values', text: withCondition({ StringEquals: { 'aws:username': [1, true, 'x'] } }) },
  { name: 'a policy variable with a default value', text: doc({ ...ok, Resource: "arn:aws:ecr:*:*:repository/${aws:username, 'it''s'}/*" }) },
  { name: 'policy variable syntax is not checked under 2008-10-17', text: JSON.stringify({ Version: '2008-10-17', Statement: { ...ok, Resource: 'arn:aws:s3:::b/${oops' } }) },
  { name: 'a document exactly at the size limit', kind: 'resource', maxLength: 10240, text: doc({ ...okResource, Sid: 'x'.repeat(10240 - doc({ ...okResource, Sid: '' }).length) }) },
  { name: 'no size limit unless one is asked for', kind: 'resource', text: doc({ ...okResource, Sid: 'x'.repeat(20000) }) },
  { name: 'an Id', text: JSON.stringify({ Version: '2012-10-17', Id: 'ci-policy', Statement: [ok] }) },
  { name: 'letters and digits in an identity Sid, and an empty one', text: doc({ ...ok, Sid: 'Pull2Prod' }, { ...ok, Sid: '' }) },
  {
    name: 'an ECR repository or registry policy with repeated Sids and Sids with spaces and punctuation (ECR accepts them)',
    kind: 'resource',
    text: doc({ ...okResource, Sid: 'ReplicationAccessCrossAccount' }, { ...okResource, Sid: 'ReplicationAccessCrossAccount' }, { ...okResource, Sid: 'Allow pull: team-b_ci' }),
    check: (p) => assert.deepEqual(p.statements.map((s) => s.sid), ['ReplicationAccessCrossAccount', 'ReplicationAccessCrossAccount', 'Allow pull: team-b_ci']),
  },
  {
    name: 'the label is kept and statements are numbered from 0',
    text: doc(ok, { ...ok, Sid: 'Second' }),
    check: (p) => {
      assert.equal(p.label, 'test policy');
      assert.deepEqual(
        p.statements.map((s) => [s.index, s.sid]),
        [
          [0, undefined],
          [1, 'Second'],
        ],
      );
    },
  },
];

for (const a of accepted) {
  test(`parsePolicy accepts: ${a.name}`, () => {
    const p = parsePolicy(a.text, a.kind ?? 'identity', 'test policy', a.maxLength === undefined ? undefined : { maxLength: a.maxLength });
    a.check?.(p);
  });
}

test('a stored identity or trust policy is read back even if its Sids break the character rule it was stored before', () => {
  const stored = doc({ ...ok, Sid: 'pull-all_images' });
  assert.throws(() => parsePolicy(stored, 'identity', 'p'), /must be alpha-numeric/);
  assert.equal(parsePolicy(stored, 'identity', 'p', { isStored: true }).statements[0]!.sid, 'pull-all_images');
  const trust = doc({ ...okTrust, Sid: 'assume_role' });
  assert.equal(parsePolicy(trust, 'trust', 't', { isStored: true }).statements.length, 1);
});
