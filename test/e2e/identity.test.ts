import assert from 'node:assert/strict';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { GetRepositoryPolicyCommand } from '@aws-sdk/client-ecr';
import { DeleteAccessKeyCommand, DeleteRoleCommand, ListAccessKeysCommand } from '@aws-sdk/client-iam';
import { GetCallerIdentityCommand } from '@aws-sdk/client-sts';
import { ADMIN, basicAuthorization } from '../support/auth.ts';
import { aws, awsFails, awsOk, ecrClient, iamClient, requireAwsCli, stsClient, type AwsCredentials } from '../support/aws.ts';
import { checkErrorBody } from '../support/http.ts';
import { buildRealImage, readOciLayout, writeOciLayout, type RealImage } from '../support/layout.ts';
import { MT, waitFor } from '../support/oci.ts';
import { repoRoot, startServer, type TestServer } from '../support/server.ts';
import { hasTool, run, toolSandbox, type ToolSandbox } from '../support/tools.ts';

/**
 * The identity work end to end, as an operator would do it: an administrator sets up a CI user
 * with the real AWS CLI, the user logs in with `aws ecr get-login-password` and pushes with
 * skopeo; then another account, a role, key rotation and the audit trail. The tests share one
 * server and run in order: each builds on what the one before set up.
 */

const A = ADMIN.accountId;
const B = '444455556666';
const REGION = 'us-east-1';
const repoArn = (account: string, name: string) => `arn:aws:ecr:${REGION}:${account}:repository/${name}`;
const ROLE_ARN = `arn:aws:iam::${A}:role/deployer`;
const READ_ONLY = 'arn:aws:iam::aws:policy/AmazonEC2ContainerRegistryReadOnly';

const CI_POLICY = {
  Version: '2012-10-17',
  Statement: [
    { Sid: 'Login', Effect: 'Allow', Action: 'ecr:GetAuthorizationToken', Resource: '*' },
    {
      Sid: 'PushPullApp',
      Effect: 'Allow',
      Action: [
        'ecr:CreateRepository',
        'ecr:BatchCheckLayerAvailability',
        'ecr:InitiateLayerUpload',
        'ecr:UploadLayerPart',
        'ecr:CompleteLayerUpload',
        'ecr:PutImage',
        'ecr:BatchGetImage',
        'ecr:GetDownloadUrlForLayer',
        'ecr:ListImages',
      ],
      Resource: `arn:aws:ecr:${REGION}:${A}:repository/app/*`,
    },
  ],
};

const PULL_FOR_B = {
  Version: '2012-10-17',
  Statement: [
    {
      Sid: 'PullFromB',
      Effect: 'Allow',
      Principal: { AWS: `arn:aws:iam::${B}:root` },
      Action: ['ecr:BatchGetImage', 'ecr:GetDownloadUrlForLayer', 'ecr:BatchCheckLayerAvailability'],
    },
  ],
};

interface State {
  server: TestServer;
  tools: ToolSandbox;
  host: string;
  image: RealImage;
  /** An OCI layout holding `image` as `v1`. */
  layout: string;
  ci: AwsCredentials;
  /** ci's `aws ecr get-login-password`. */
  ciPassword: string;
  b: AwsCredentials;
  /** ci's session as the deployer role, and its `aws ecr get-login-password`. */
  session: AwsCredentials;
  sessionPassword: string;
  /** Every secret the tests handled: none may appear in the server's log or the audit trail. */
  secrets: Set<string>;
}

const s = {} as State;

function remember(...values: (string | undefined)[]): void {
  for (const v of values) if (v) s.secrets.add(v);
}

/** The password as a Basic `AWS:<password>` header, as docker login sends it. */
function awsBasic(password: string): string {
  remember(Buffer.from(`AWS:${password}`).toString('base64'));
  return basicAuthorization('AWS', password);
}

function dataPlane(pathname: string, authorization: string, init: RequestInit = {}): Promise<Response> {
  return fetch(new URL(pathname, s.server.baseUrl), { ...init, headers: { ...(init.headers as Record<string, string>), authorization } });
}

/** Asserts a 403 DENIED whose message names the action and the resource as IAM words it. */
async function expectDenied(res: Response, action: string, resource: string): Promise<string> {
  const text = await res.text();
  assert.equal(res.status, 403, `expected 403 DENIED, got ${res.status}: ${text}`);
  const body = checkErrorBody(res.headers.get('content-type'), text, 'DENIED');
  const message = body.errors[0]!.message;
  const m = /is not authorized to perform: (ecr:\w+) on resource: (\S+)/.exec(message);
  assert.ok(m, `the message names the action and resource: ${message}`);
  assert.equal(m[1], action, message);
  assert.equal(m[2], resource, message);
  return message;
}

async function expectUnauthorized(res: Response, what: string): Promise<void> {
  const text = await res.text();
  assert.equal(res.status, 401, `${what}: expected 401, got ${res.status}: ${text}`);
  checkErrorBody(res.headers.get('content-type'), text, 'UNAUTHORIZED');
}

/** `berth ...` (the offline CLI) against the test server's data directory. */
async function berth(args: string[]): Promise<string> {
  const result = await run(process.execPath, [path.join(repoRoot, 'src/cli/main.ts'), ...args, '--data-dir', s.server.dataDir], { timeoutMs: 30_000, env: { ...process.env, ...s.server.storeEnv } });
  return result.stdout;
}

async function skopeoCopy(from: string, to: string, creds: { src?: string; dest?: string }, allowFailure = false) {
  const flags = [
    '--src-tls-verify=false',
    '--dest-tls-verify=false',
    ...(creds.src ? ['--src-creds', creds.src] : []),
    ...(creds.dest ? ['--dest-creds', creds.dest] : []),
  ];
  return s.tools.skopeo(['copy', '--quiet', '--preserve-digests', ...flags, from, to], { allowFailure, timeoutMs: 60_000 });
}

/** Pulls `ref` to a fresh OCI layout and checks it is `s.image`, blob for blob. */
async function pullAndCompare(ref: string, password: string): Promise<void> {
  const out = await s.tools.mkdir('pull');
  await skopeoCopy(`docker://${s.host}/${ref}`, `oci:${out}:pulled`, { src: `AWS:${password}` });
  const layout = await readOciLayout(out, 'pulled');
  assert.equal(layout.descriptor.digest, s.image.digest);
  const expected = new Map<string, Buffer>([
    [s.image.digest, s.image.manifest],
    [s.image.config.digest, s.image.config.bytes],
    ...s.image.layers.map((l) => [l.digest, l.bytes] as [string, Buffer]),
  ]);
  assert.deepEqual([...layout.blobs.keys()].sort(), [...expected.keys()].sort());
  for (const [digest, bytes] of expected) assert.ok(layout.blobs.get(digest)!.equals(bytes), `${digest} is byte-identical`);
}

// skopeo as the other e2e tests treat it (requireTools): skipped where it is not installed,
// a failure in CI. The AWS CLI is never skipped: before() fails when it is missing.
const noSkopeo = !hasTool('skopeo') && !process.env['CI'] ? 'not installed: skopeo (apt-get install skopeo)' : false;

describe('identity end to end: AWS CLI, skopeo and the berth CLI', { skip: noSkopeo }, () => {
  before(async () => {
    requireAwsCli();
    if (!hasTool('skopeo')) throw new Error('skopeo is not installed (apt-get install skopeo): these tests push and pull with it, and CI installs it.');
    s.server = await startServer();
    s.tools = await toolSandbox();
    s.host = `127.0.0.1:${s.server.port}`;
    s.secrets = new Set([ADMIN.secretAccessKey]);
    s.image = buildRealImage();
    s.layout = await s.tools.mkdir('src');
    await writeOciLayout(s.layout, [{ tag: 'v1', content: s.image }]);
  });
  after(async () => {
    await s.tools?.close();
    await s.server?.close();
  });

  test('an administrator sets up a CI user with the AWS CLI; the user pushes to app/* only', async () => {
    const whoami = await awsOk(s.server, ADMIN, ['sts', 'get-caller-identity']);
    assert.equal(whoami.json.Arn, `arn:aws:iam::${A}:user/admin`);
    assert.equal(whoami.json.Account, A);

    const user = await awsOk(s.server, ADMIN, ['iam', 'create-user', '--user-name', 'ci']);
    assert.equal(user.json.User.UserName, 'ci');
    assert.equal(user.json.User.Arn, `arn:aws:iam::${A}:user/ci`);
    const key = await awsOk(s.server, ADMIN, ['iam', 'create-access-key', '--user-name', 'ci']);
    assert.equal(key.json.AccessKey.Status, 'Active');
    assert.match(key.json.AccessKey.AccessKeyId, /^AKIA[A-Z0-9]{16}$/);
    s.ci = { accessKeyId: key.json.AccessKey.AccessKeyId, secretAccessKey: key.json.AccessKey.SecretAccessKey };
    remember(s.ci.secretAccessKey);

    const policy = await awsOk(s.server, ADMIN, ['iam', 'create-policy', '--policy-name', 'ci-push', '--policy-document', JSON.stringify(CI_POLICY)]);
    assert.equal(policy.json.Policy.Arn, `arn:aws:iam::${A}:policy/ci-push`);
    await awsOk(s.server, ADMIN, ['iam', 'attach-user-policy', '--user-name', 'ci', '--policy-arn', policy.json.Policy.Arn]);

    const login = await awsOk(s.server, s.ci, ['ecr', 'get-login-password']);
    s.ciPassword = login.stdout.trim();
    assert.ok(s.ciPassword.length > 20, `a password: ${login.stdout}`);
    remember(s.ciPassword);

    await skopeoCopy(`oci:${s.layout}:v1`, `docker://${s.host}/app/web:1`, { dest: `AWS:${s.ciPassword}` });
    const stored = await dataPlane('/v2/app/web/manifests/1', awsBasic(s.ciPassword), { headers: { accept: MT.ociManifest } });
    assert.equal(stored.status, 200);
    assert.equal(stored.headers.get('docker-content-digest'), s.image.digest);
    assert.deepEqual(Buffer.from(await stored.arrayBuffer()), s.image.manifest);

    const refused = await skopeoCopy(`oci:${s.layout}:v1`, `docker://${s.host}/other/web:1`, { dest: `AWS:${s.ciPassword}` }, true);
    assert.notEqual(refused.code, 0, 'pushing outside app/* is refused');
    assert.match(refused.stderr, /denied|403|not authorized/i, refused.stderr);

    // The same refusals over plain HTTP, worded as IAM words them.
    const ciArn = `arn:aws:iam::${A}:user/ci`;
    const upload = await dataPlane('/v2/other/web/blobs/uploads/', awsBasic(s.ciPassword), { method: 'POST' });
    const message = await expectDenied(upload, 'ecr:InitiateLayerUpload', repoArn(A, 'other/web'));
    assert.equal(
      message,
      `User: ${ciArn} is not authorized to perform: ecr:InitiateLayerUpload on resource: ${repoArn(A, 'other/web')} because no identity-based policy allows the ecr:InitiateLayerUpload action`,
    );
    const put = await dataPlane('/v2/other/web/manifests/1', awsBasic(s.ciPassword), { method: 'PUT', body: s.image.manifest, headers: { 'content-type': MT.ociManifest } });
    await expectDenied(put, 'ecr:PutImage', repoArn(A, 'other/web'));
    await expectDenied(await dataPlane('/v2/other/web/manifests/1', awsBasic(s.ciPassword)), 'ecr:BatchGetImage', repoArn(A, 'other/web'));
    await expectDenied(await dataPlane('/v2/other/web/tags/list', awsBasic(s.ciPassword)), 'ecr:ListImages', repoArn(A, 'other/web'));

    // An explicit deny wins over the allow on app/*, for that repository only; the token
    // obtained before the change follows it at once.
    const deny = { Version: '2012-10-17', Statement: [{ Sid: 'NoSecret', Effect: 'Deny', Action: 'ecr:PutImage', Resource: repoArn(A, 'app/secret') }] };
    await awsOk(s.server, ADMIN, ['iam', 'put-user-policy', '--user-name', 'ci', '--policy-name', 'no-secret', '--policy-document', JSON.stringify(deny)]);
    const secret = await skopeoCopy(`oci:${s.layout}:v1`, `docker://${s.host}/app/secret:1`, { dest: `AWS:${s.ciPassword}` }, true);
    assert.notEqual(secret.code, 0, 'the explicit deny refuses the push to app/secret');
    const putSecret = await dataPlane('/v2/app/secret/manifests/1', awsBasic(s.ciPassword), { method: 'PUT', body: s.image.manifest, headers: { 'content-type': MT.ociManifest } });
    const denyMessage = await expectDenied(putSecret, 'ecr:PutImage', repoArn(A, 'app/secret'));
    assert.match(denyMessage, /explicit deny/, denyMessage);
    const noImage = await dataPlane('/v2/app/secret/manifests/1', awsBasic(s.ciPassword));
    assert.equal(noImage.status, 404, `nothing was stored under app/secret:1: ${await noImage.text()}`);

    await skopeoCopy(`oci:${s.layout}:v1`, `docker://${s.host}/app/web:2`, { dest: `AWS:${s.ciPassword}` });
    const second = await dataPlane('/v2/app/web/manifests/2', awsBasic(s.ciPassword), { method: 'HEAD', headers: { accept: MT.ociManifest } });
    assert.equal(second.status, 200);
  });

  test('another account pulls only once the repository policy lets it', async () => {
    const created = JSON.parse(await berth(['account', 'create', '--account-id', B])) as { accountId: string; userName: string; accessKeyId: string; secretAccessKey: string };
    assert.equal(created.accountId, B);
    assert.equal(created.userName, 'admin');
    s.b = { accessKeyId: created.accessKeyId, secretAccessKey: created.secretAccessKey };
    remember(s.b.secretAccessKey);

    const whoami = await awsOk(s.server, s.b, ['sts', 'get-caller-identity']);
    assert.equal(whoami.json.Arn, `arn:aws:iam::${B}:user/admin`);
    const bPassword = (await awsOk(s.server, s.b, ['ecr', 'get-login-password'])).stdout.trim();
    remember(bPassword);

    // B's administrator may do anything in B, but app/web is A's: no repository policy, no pull.
    const before = await skopeoCopy(`docker://${s.host}/app/web:1`, `oci:${await s.tools.mkdir('denied')}:x`, { src: `AWS:${bPassword}` }, true);
    assert.notEqual(before.code, 0, 'the pull is refused before the repository policy');
    await expectDenied(await dataPlane('/v2/app/web/manifests/1', awsBasic(bPassword), { headers: { accept: MT.ociManifest } }), 'ecr:BatchGetImage', repoArn(A, 'app/web'));

    const set = await awsOk(s.server, ADMIN, ['ecr', 'set-repository-policy', '--repository-name', 'app/web', '--policy-text', JSON.stringify(PULL_FOR_B)]);
    assert.equal(set.json.registryId, A);
    assert.equal(set.json.repositoryName, 'app/web');
    assert.deepEqual(JSON.parse(set.json.policyText), PULL_FOR_B);

    await pullAndCompare('app/web:1', bPassword);
    // The policy grants pulls only.
    await expectDenied(await dataPlane('/v2/app/web/blobs/uploads/', awsBasic(bPassword), { method: 'POST' }), 'ecr:InitiateLayerUpload', repoArn(A, 'app/web'));

    const got = await awsOk(s.server, ADMIN, ['ecr', 'get-repository-policy', '--repository-name', 'app/web']);
    assert.equal(got.json.registryId, A);
    assert.deepEqual(JSON.parse(got.json.policyText), PULL_FOR_B);

    const permit = { ...PULL_FOR_B, Statement: [{ ...PULL_FOR_B.Statement[0], Effect: 'Permit' }] };
    for (const [what, text] of [['bad JSON', '{"Version": "2012-10-17", "Statement": ['], ['Effect "Permit"', JSON.stringify(permit)]] as const) {
      const bad = await awsFails(s.server, ADMIN, ['ecr', 'set-repository-policy', '--repository-name', 'app/web', '--policy-text', text]);
      assert.equal(bad.errorCode, 'InvalidParameterException', `${what}: ${bad.stderr}`);
    }
    const still = await ecrClient(s.server, ADMIN).send(new GetRepositoryPolicyCommand({ repositoryName: 'app/web' }));
    assert.deepEqual(JSON.parse(still.policyText!), PULL_FOR_B, 'the refused policies stored nothing');
  });

  test('ci assumes a read-only role that names it in its trust policy, and can pull but not push', async () => {
    const trust = { Version: '2012-10-17', Statement: [{ Effect: 'Allow', Principal: { AWS: `arn:aws:iam::${A}:user/ci` }, Action: 'sts:AssumeRole' }] };
    const role = await awsOk(s.server, ADMIN, ['iam', 'create-role', '--role-name', 'deployer', '--assume-role-policy-document', JSON.stringify(trust)]);
    assert.equal(role.json.Role.Arn, ROLE_ARN);
    await awsOk(s.server, ADMIN, ['iam', 'attach-role-policy', '--role-name', 'deployer', '--policy-arn', READ_ONLY]);

    // ci has no identity allow for sts:AssumeRole: within the account, the trust policy naming it suffices.
    const startedMs = Date.now();
    const assumed = await awsOk(s.server, s.ci, ['sts', 'assume-role', '--role-arn', ROLE_ARN, '--role-session-name', 's1', '--duration-seconds', '900']);
    const c = assumed.json.Credentials as { AccessKeyId: string; SecretAccessKey: string; SessionToken: string; Expiration: string };
    assert.match(c.AccessKeyId, /^ASIA[A-Z0-9]{16}$/);
    assert.ok(c.SessionToken.length > 20);
    const expiresMs = Date.parse(c.Expiration);
    assert.ok(Math.abs(expiresMs - (startedMs + 900_000)) < 30_000, `expires 900 s from now: ${c.Expiration}`);
    assert.equal(assumed.json.AssumedRoleUser.Arn, `arn:aws:sts::${A}:assumed-role/deployer/s1`);
    s.session = { accessKeyId: c.AccessKeyId, secretAccessKey: c.SecretAccessKey, sessionToken: c.SessionToken };
    remember(c.SecretAccessKey, c.SessionToken);

    const whoami = await awsOk(s.server, s.session, ['sts', 'get-caller-identity']);
    assert.equal(whoami.json.Arn, `arn:aws:sts::${A}:assumed-role/deployer/s1`);
    assert.equal(whoami.json.Account, A);
    s.sessionPassword = (await awsOk(s.server, s.session, ['ecr', 'get-login-password'])).stdout.trim();
    remember(s.sessionPassword);

    await pullAndCompare('app/web:1', s.sessionPassword);
    const push = await skopeoCopy(`oci:${s.layout}:v1`, `docker://${s.host}/app/web:from-role`, { dest: `AWS:${s.sessionPassword}` }, true);
    assert.notEqual(push.code, 0, 'a read-only role cannot push');
    const message = await expectDenied(await dataPlane('/v2/app/web/blobs/uploads/', awsBasic(s.sessionPassword), { method: 'POST' }), 'ecr:InitiateLayerUpload', repoArn(A, 'app/web'));
    assert.match(message, new RegExp(`^User: arn:aws:sts::${A}:assumed-role/deployer/s1 `), message);
  });

  test('a principal the trust policy does not name cannot assume the role, not even an administrator', async () => {
    // The administrator's identity policy allows sts:AssumeRole on everything, but a role's
    // trust policy must always allow the caller: IAM's evaluation logic makes role trust
    // policies (and KMS key policies) the exception to "an allow in either policy suffices".
    const intruder = await aws(s.server, ADMIN, ['sts', 'assume-role', '--role-arn', ROLE_ARN, '--role-session-name', 'intruder']);
    if (intruder.json?.Credentials) remember(intruder.json.Credentials.SecretAccessKey, intruder.json.Credentials.SessionToken);
    assert.notEqual(intruder.code, 0, `the administrator, not named in the trust policy, assumed the role:\n${intruder.stdout}`);
    assert.equal(intruder.errorCode, 'AccessDenied', intruder.stderr);
  });

  test('deleting the role ends its sessions at once: their credentials and tokens stop working', async () => {
    const conflict = await awsFails(s.server, ADMIN, ['iam', 'delete-role', '--role-name', 'deployer']);
    assert.equal(conflict.errorCode, 'DeleteConflict', `a role with attached policies cannot be deleted: ${conflict.stderr}`);
    await awsOk(s.server, ADMIN, ['iam', 'detach-role-policy', '--role-name', 'deployer', '--policy-arn', READ_ONLY]);

    // A change made through this server applies at once: no waiting for a cache to expire.
    // The session is used just before the deletion and checked just after it through the
    // SDK (milliseconds apart, where a CLI call takes most of a second), so that whatever the
    // server remembers about the role is fresh when the role goes.
    const sessionSts = stsClient(s.server, s.session);
    assert.equal((await sessionSts.send(new GetCallerIdentityCommand({}))).Arn, `arn:aws:sts::${A}:assumed-role/deployer/s1`);
    // With its policy detached the role may do nothing, but its token still authenticates.
    await expectDenied(await dataPlane('/v2/app/web/manifests/1', awsBasic(s.sessionPassword)), 'ecr:BatchGetImage', repoArn(A, 'app/web'));
    await iamClient(s.server, ADMIN).send(new DeleteRoleCommand({ RoleName: 'deployer' }));
    const sdkGone = await sessionSts.send(new GetCallerIdentityCommand({})).then(
      (out) => assert.fail(`the deleted role's temporary credentials still sign requests: ${JSON.stringify(out)}`),
      (err: Error) => err,
    );
    assert.match(sdkGone.name, /^(InvalidClientTokenId|ExpiredToken)$/, sdkGone.message);
    await expectUnauthorized(await dataPlane('/v2/app/web/manifests/1', awsBasic(s.sessionPassword)), "the role session's token after the role was deleted");
    const gone = await aws(s.server, s.session, ['sts', 'get-caller-identity']);
    assert.notEqual(gone.code, 0, `the deleted role's temporary credentials still sign requests:\n${gone.stdout}`);
    assert.match(gone.errorCode ?? '', /^(InvalidClientTokenId|ExpiredToken)$/, gone.stderr);
  });

  test('deactivating an access key stops its token and its signatures; reactivating restores both; two keys at most', async () => {
    const manifest = () => dataPlane('/v2/app/web/manifests/1', awsBasic(s.ciPassword), { method: 'HEAD', headers: { accept: MT.ociManifest } });
    const keyBasic = basicAuthorization(s.ci.accessKeyId, s.ci.secretAccessKey);
    remember(keyBasic.slice('Basic '.length));
    assert.equal((await manifest()).status, 200, 'the token from get-login-password works before');

    await awsOk(s.server, ADMIN, ['iam', 'update-access-key', '--user-name', 'ci', '--access-key-id', s.ci.accessKeyId, '--status', 'Inactive']);
    await expectUnauthorized(await dataPlane('/v2/app/web/manifests/1', awsBasic(s.ciPassword)), 'a token issued through a now inactive key');
    await expectUnauthorized(await dataPlane('/v2/app/web/manifests/1', keyBasic), 'the inactive key as Basic credentials');
    const signed = await awsFails(s.server, s.ci, ['sts', 'get-caller-identity']);
    assert.equal(signed.errorCode, 'InvalidClientTokenId', signed.stderr);
    const listed = await iamClient(s.server, ADMIN).send(new ListAccessKeysCommand({ UserName: 'ci' }));
    assert.deepEqual(listed.AccessKeyMetadata?.map((k) => [k.AccessKeyId, k.Status]), [[s.ci.accessKeyId, 'Inactive']]);

    await awsOk(s.server, ADMIN, ['iam', 'update-access-key', '--user-name', 'ci', '--access-key-id', s.ci.accessKeyId, '--status', 'Active']);
    assert.equal((await manifest()).status, 200, 'the same token works again');
    const back = await awsOk(s.server, s.ci, ['sts', 'get-caller-identity']);
    assert.equal(back.json.Arn, `arn:aws:iam::${A}:user/ci`);

    const second = await awsOk(s.server, ADMIN, ['iam', 'create-access-key', '--user-name', 'ci']);
    remember(second.json.AccessKey.SecretAccessKey);
    const third = await awsFails(s.server, ADMIN, ['iam', 'create-access-key', '--user-name', 'ci']);
    assert.equal(third.errorCode, 'LimitExceeded', third.stderr);
    await iamClient(s.server, ADMIN).send(new DeleteAccessKeyCommand({ UserName: 'ci', AccessKeyId: second.json.AccessKey.AccessKeyId }));
    const deletedBasic = basicAuthorization(second.json.AccessKey.AccessKeyId, second.json.AccessKey.SecretAccessKey);
    remember(deletedBasic.slice('Basic '.length));
    await expectUnauthorized(await dataPlane('/v2/', deletedBasic), 'a deleted key as Basic credentials');
  });

  test('the audit trail records allows and denials by principal, resource and source address; no secret is ever logged', async () => {
    interface AuditLine {
      eventName: string;
      userIdentity: { arn: string | null; accessKeyId: string | null };
      resources: { ARN: string }[];
      decision: string;
      sourceIPAddress: string;
    }
    const ciArn = `arn:aws:iam::${A}:user/ci`;
    const isDeny = (d: string) => d === 'deny' || d === 'implicit-deny';
    let text = '';
    const lines = await waitFor(
      async () => {
        text = await berth(['audit']);
        const parsed = text.split('\n').filter(Boolean).map((l) => JSON.parse(l) as AuditLine);
        const ok = parsed.some((l) => l.eventName === 'PutImage' && l.resources[0]?.ARN === repoArn(A, 'app/secret') && l.decision === 'deny');
        return ok && parsed;
      },
      { timeoutMs: 5000, intervalMs: 250, what: 'the audit records of the pushes' },
    );
    const by = (arn: string, resource: string) => lines.filter((l) => l.userIdentity.arn === arn && l.resources.some((r) => r.ARN === resource));

    const allowed = by(ciArn, repoArn(A, 'app/web')).find((l) => l.eventName === 'PutImage' && l.decision === 'allow');
    assert.ok(allowed, `an allow for ci's ecr:PutImage on app/web in:\n${text}`);
    assert.equal(allowed.sourceIPAddress, '127.0.0.1');
    assert.equal(allowed.userIdentity.accessKeyId, s.ci.accessKeyId);

    const denied = by(ciArn, repoArn(A, 'other/web')).filter((l) => isDeny(l.decision));
    assert.ok(denied.length > 0, `a denial for ci on other/web in:\n${text}`);
    for (const d of denied) assert.equal(d.sourceIPAddress, '127.0.0.1');
    const explicit = by(ciArn, repoArn(A, 'app/secret')).find((l) => l.eventName === 'PutImage');
    assert.equal(explicit?.decision, 'deny', 'the explicit deny is recorded as one');

    const logText = JSON.stringify(s.server.logs);
    assert.ok(s.server.logs.filter((l) => l['msg'] === 'request').length > 50, 'the server logged its requests (so the search below means something)');
    for (const secret of s.secrets) {
      assert.ok(!logText.includes(secret), `the server log holds a secret (${secret.slice(0, 6)}...)`);
      assert.ok(!text.includes(secret), `the audit trail holds a secret (${secret.slice(0, 6)}...)`);
    }
    const bad = s.server.logs.filter((l) => (typeof l['status'] === 'number' && l['status'] >= 500) || l['level'] === 'error' || l['level'] === 'fatal');
    assert.deepEqual(bad, [], 'the server logged 5xx responses or errors');
  });
});
