import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { CreateRepositoryCommand, DescribeRepositoriesCommand, GetAuthorizationTokenCommand } from '@aws-sdk/client-ecr';
import {
  AttachUserPolicyCommand,
  ChangePasswordCommand,
  CreateAccessKeyCommand,
  CreateLoginProfileCommand,
  CreateRoleCommand,
  CreateUserCommand,
  DeleteAccessKeyCommand,
  DeleteAccountPasswordPolicyCommand,
  DeleteLoginProfileCommand,
  DeleteUserCommand,
  DetachUserPolicyCommand,
  GetAccountPasswordPolicyCommand,
  GetLoginProfileCommand,
  GetUserCommand,
  ListAccessKeysCommand,
  UpdateAccountPasswordPolicyCommand,
  UpdateLoginProfileCommand,
} from '@aws-sdk/client-iam';
import { AssumeRoleCommand, GetCallerIdentityCommand, GetSessionTokenCommand } from '@aws-sdk/client-sts';
import { loadConfig } from '../../src/config/config.ts';
import { Identity } from '../../src/iam/identity.ts';
import { Secrets } from '../../src/iam/secrets.ts';
import { createLogger } from '../../src/log/logger.ts';
import type { MetaStore } from '../../src/store/meta/meta-store.ts';
import { openMetaStore } from '../../src/store/open.ts';
import { ADMIN, basicAuthorization } from '../support/auth.ts';
import { aws, awsFails, awsOk, ecrClient, iamClient, requireAwsCli, sdkError, stsClient, type AwsCredentials } from '../support/aws.ts';
import { repoRoot, runBerth, startServer, type TestServer } from '../support/server.ts';

/**
 * Console passwords: IAM login profiles and the account password policy through the AWS CLI
 * and the SDK, ChangePassword by users themselves, STS GetSessionToken for users, the sign-in
 * the web console performs (Identity.signInWithPassword, in this process, on the server's own
 * stores and secret key), and `berth user password`.
 */

const ACCOUNT = ADMIN.accountId;
const READ_ONLY = 'arn:aws:iam::aws:policy/AmazonEC2ContainerRegistryReadOnly';
const FULL_ACCESS = 'arn:aws:iam::aws:policy/AmazonEC2ContainerRegistryFullAccess';
const DAY_MS = 86_400_000;

let server: TestServer;
let meta: MetaStore;
let identity: Identity;
let secrets: Secrets;

before(async () => {
  requireAwsCli();
  server = await startServer();
  const config = loadConfig({ argv: ['--data-dir', server.dataDir], env: server.storeEnv });
  meta = await openMetaStore(config.metadataUrl, { poolSize: 2 });
  secrets = Secrets.load({ secretKey: config.auth.secretKey, keyFile: config.auth.secretKeyFile });
  identity = identityAt(Date.now);
});
after(async () => {
  await meta?.close();
  await server?.close();
});

/** The console's view of identity (same stores, same key as the server), on a clock of its own. */
function identityAt(now: () => number): Identity {
  return new Identity({ meta, secrets, log: createLogger({ level: 'warn' }), region: 'us-east-1', cacheTtlMs: 0, tokenTtlMs: 12 * 3_600_000, now });
}

const admin = () => iamClient(server, ADMIN);
let users = 0;
const uniqueName = (prefix: string) => `${prefix}-${process.pid}-${++users}`;

/** A user with an access key and, optionally, managed policies. */
async function newUser(prefix: string, policies: string[] = []): Promise<{ name: string; creds: AwsCredentials }> {
  const name = uniqueName(prefix);
  await admin().send(new CreateUserCommand({ UserName: name }));
  for (const arn of policies) await admin().send(new AttachUserPolicyCommand({ UserName: name, PolicyArn: arn }));
  const key = (await admin().send(new CreateAccessKeyCommand({ UserName: name }))).AccessKey!;
  return { name, creds: { accessKeyId: key.AccessKeyId!, secretAccessKey: key.SecretAccessKey! } };
}

/** Removes everything a user holds, then the user (IAM's DeleteConflict rules). */
async function deleteUser(name: string, policies: string[] = []): Promise<void> {
  await admin().send(new DeleteLoginProfileCommand({ UserName: name })).catch(() => {});
  for (const k of (await admin().send(new ListAccessKeysCommand({ UserName: name }))).AccessKeyMetadata ?? []) {
    await admin().send(new DeleteAccessKeyCommand({ UserName: name, AccessKeyId: k.AccessKeyId! }));
  }
  for (const arn of policies) await admin().send(new DetachUserPolicyCommand({ UserName: name, PolicyArn: arn }));
  await admin().send(new DeleteUserCommand({ UserName: name }));
}

/** `bin/berth ARGS` on the server's stores with `input` on stdin; resolves the exit code and output. */
function berthWithStdin(args: string[], input: string): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(path.join(repoRoot, 'bin', 'berth'), [...args, '--data-dir', server.dataDir], { cwd: repoRoot, env: { ...process.env, ...server.storeEnv }, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.once('error', reject);
    child.once('close', (code) => resolve({ code, stdout, stderr }));
    child.stdin.end(input);
  });
}

describe('login profiles', () => {
  test('AWS CLI: create, get, update and delete a login profile, with IAM errors', async () => {
    const { name } = await newUser('cli');
    const created = await awsOk(server, ADMIN, ['iam', 'create-login-profile', '--user-name', name, '--password', 'Correct-Horse-7', '--password-reset-required']);
    assert.equal(created.json.LoginProfile.UserName, name);
    assert.equal(created.json.LoginProfile.PasswordResetRequired, true);
    assert.ok(Date.parse(created.json.LoginProfile.CreateDate) > Date.now() - 60_000);
    assert.equal(JSON.stringify(created.json).includes('Correct-Horse-7'), false, 'the password is never returned');

    const got = await awsOk(server, ADMIN, ['iam', 'get-login-profile', '--user-name', name.toUpperCase()]);
    assert.deepEqual([got.json.LoginProfile.UserName, got.json.LoginProfile.PasswordResetRequired], [name, true], 'names ignore case; the profile keeps the user name as created');

    const again = await awsFails(server, ADMIN, ['iam', 'create-login-profile', '--user-name', name, '--password', 'Other-Horse-8']);
    assert.equal(again.errorCode, 'EntityAlreadyExists', again.stderr);
    assert.match(again.stderr, new RegExp(`Login Profile for user ${name} already exists`));

    const missingUser = await awsFails(server, ADMIN, ['iam', 'create-login-profile', '--user-name', 'nobody-here', '--password', 'Correct-Horse-7']);
    assert.equal(missingUser.errorCode, 'NoSuchEntity', missingUser.stderr);

    const weak = await awsFails(server, ADMIN, ['iam', 'update-login-profile', '--user-name', name, '--password', 'short']);
    assert.equal(weak.errorCode, 'PasswordPolicyViolation', weak.stderr);

    await awsOk(server, ADMIN, ['iam', 'update-login-profile', '--user-name', name, '--no-password-reset-required']);
    assert.equal((await awsOk(server, ADMIN, ['iam', 'get-login-profile', '--user-name', name])).json.LoginProfile.PasswordResetRequired, false);
    await awsOk(server, ADMIN, ['iam', 'update-login-profile', '--user-name', name, '--password', 'Battery-Staple-9']);
    assert.equal((await identity.signInWithPassword(ACCOUNT, name, 'Battery-Staple-9')).ok, true, 'the new password signs in');
    assert.deepEqual(await identity.signInWithPassword(ACCOUNT, name, 'Correct-Horse-7'), { ok: false, reason: 'wrong-password' });

    const conflict = await awsFails(server, ADMIN, ['iam', 'delete-user', '--user-name', name]);
    assert.equal(conflict.errorCode, 'DeleteConflict', conflict.stderr);
    assert.match(conflict.stderr, /must delete login profile first/);

    await awsOk(server, ADMIN, ['iam', 'delete-login-profile', '--user-name', name]);
    for (const args of [['get-login-profile', '--user-name', name], ['delete-login-profile', '--user-name', name], ['update-login-profile', '--user-name', name, '--password', 'Battery-Staple-9']]) {
      const gone = await awsFails(server, ADMIN, ['iam', ...args]);
      assert.equal(gone.errorCode, 'NoSuchEntity', `${args[0]}: ${gone.stderr}`);
      assert.match(gone.stderr, new RegExp(`Login Profile for User ${name} cannot be found`));
    }
    assert.deepEqual(await identity.signInWithPassword(ACCOUNT, name, 'Battery-Staple-9'), { ok: false, reason: 'no-login-profile' });
    await deleteUser(name);
  });

  test('SDK: every login-profile operation; UserName defaults to the caller; each is authorized on the user ARN', async () => {
    const { name, creds } = await newUser('sdk', [READ_ONLY]);
    const self = iamClient(server, creds);
    // The user's own credentials: no iam:* permission, so even its own profile is refused.
    const denied = await sdkError(self.send(new CreateLoginProfileCommand({ Password: 'Correct-Horse-7' })));
    assert.equal(denied.status, 403);
    assert.match(denied.message, new RegExp(`iam:CreateLoginProfile on resource: arn:aws:iam::${ACCOUNT}:user/${name}`));

    const out = await admin().send(new CreateLoginProfileCommand({ UserName: name, Password: 'Correct-Horse-7' }));
    assert.deepEqual([out.LoginProfile?.UserName, out.LoginProfile?.PasswordResetRequired], [name, false]);
    assert.ok(out.LoginProfile?.CreateDate instanceof Date);
    const got = await admin().send(new GetLoginProfileCommand({ UserName: name }));
    assert.equal(got.LoginProfile?.CreateDate?.getTime(), out.LoginProfile?.CreateDate?.getTime());
    await admin().send(new UpdateLoginProfileCommand({ UserName: name, PasswordResetRequired: true }));
    assert.equal((await admin().send(new GetLoginProfileCommand({ UserName: name }))).LoginProfile?.PasswordResetRequired, true);

    // The caller's own profile when UserName is omitted: the admin has none.
    const own = await sdkError(admin().send(new GetLoginProfileCommand({})));
    assert.deepEqual([own.name, own.status], ['NoSuchEntityException', 404]);
    assert.match(own.message, /Login Profile for User admin cannot be found/);
    const noUser = await sdkError(admin().send(new GetLoginProfileCommand({ UserName: 'nobody-here' })));
    assert.deepEqual([noUser.name, noUser.status], ['NoSuchEntityException', 404]);
    const tooLong = await sdkError(admin().send(new CreateLoginProfileCommand({ UserName: name, Password: 'x'.repeat(129) })));
    assert.equal(tooLong.name, 'ValidationError');
    assert.doesNotMatch(tooLong.message, /xxxx/, 'a refused password is not echoed');

    // GetUser reports the last sign-in (PasswordLastUsed) once there is one.
    assert.equal((await admin().send(new GetUserCommand({ UserName: name }))).User?.PasswordLastUsed, undefined);
    const signedIn = await identity.signInWithPassword(ACCOUNT, name, 'Correct-Horse-7');
    assert.ok(signedIn.ok);
    assert.equal(signedIn.passwordResetRequired, true);
    const lastUsed = (await admin().send(new GetUserCommand({ UserName: name }))).User?.PasswordLastUsed;
    assert.ok(lastUsed && lastUsed.getTime() > Date.now() - 60_000, 'PasswordLastUsed is set by a sign-in');

    await admin().send(new DeleteLoginProfileCommand({ UserName: name }));
    const gone = await sdkError(admin().send(new DeleteLoginProfileCommand({ UserName: name })));
    assert.deepEqual([gone.name, gone.status], ['NoSuchEntityException', 404]);
    await deleteUser(name, [READ_ONLY]);
  });
});

describe('the account password policy', () => {
  test('none set: GetAccountPasswordPolicy is NoSuchEntity and IAM\'s default rules apply', async () => {
    const none = await sdkError(admin().send(new GetAccountPasswordPolicyCommand({})));
    assert.deepEqual([none.name, none.status], ['NoSuchEntityException', 404]);
    assert.match(none.message, new RegExp(`The Password Policy with domain name ${ACCOUNT} cannot be found`));
    const deleteNone = await sdkError(admin().send(new DeleteAccountPasswordPolicyCommand({})));
    assert.deepEqual([deleteNone.name, deleteNone.status], ['NoSuchEntityException', 404]);

    const { name } = await newUser('defaults');
    // At least 8 characters, three of the four kinds, not the user name.
    for (const [password, why] of [['Ab1!', 'too short'], ['abcdefgh12', 'two kinds only'], ['ABCDEFGH!!', 'two kinds only'], [name.charAt(0).toUpperCase() + name.slice(1), 'the user name']] as const) {
      const e = await sdkError(admin().send(new CreateLoginProfileCommand({ UserName: name, Password: password })));
      assert.deepEqual([e.name, e.status], ['PasswordPolicyViolationException', 400], `${why}: ${e.message}`);
      assert.match(e.message, /Password does not conform to the account password policy/);
    }
    await admin().send(new CreateLoginProfileCommand({ UserName: name, Password: 'abcdefg1!' }));
    await deleteUser(name);
  });

  test('UpdateAccountPasswordPolicy: omitted parameters take IAM\'s defaults; every rule is enforced; limits are validated', async (t) => {
    t.after(() => admin().send(new DeleteAccountPasswordPolicyCommand({})).catch(() => {}));
    await admin().send(new UpdateAccountPasswordPolicyCommand({}));
    assert.deepEqual((await admin().send(new GetAccountPasswordPolicyCommand({}))).PasswordPolicy, {
      MinimumPasswordLength: 6,
      RequireSymbols: false,
      RequireNumbers: false,
      RequireUppercaseCharacters: false,
      RequireLowercaseCharacters: false,
      AllowUsersToChangePassword: false,
      ExpirePasswords: false,
    });
    const { name } = await newUser('rules');
    // A 6-character password of one kind passes the (weak) custom policy, unlike the default rules.
    await admin().send(new CreateLoginProfileCommand({ UserName: name, Password: 'aaaaaa' }));

    await admin().send(
      new UpdateAccountPasswordPolicyCommand({
        MinimumPasswordLength: 12,
        RequireSymbols: true,
        RequireNumbers: true,
        RequireUppercaseCharacters: true,
        RequireLowercaseCharacters: true,
        AllowUsersToChangePassword: true,
        MaxPasswordAge: 90,
        PasswordReusePrevention: 3,
        HardExpiry: true,
      }),
    );
    const cli = await awsOk(server, ADMIN, ['iam', 'get-account-password-policy']);
    assert.deepEqual(cli.json.PasswordPolicy, {
      MinimumPasswordLength: 12,
      RequireSymbols: true,
      RequireNumbers: true,
      RequireUppercaseCharacters: true,
      RequireLowercaseCharacters: true,
      AllowUsersToChangePassword: true,
      ExpirePasswords: true,
      MaxPasswordAge: 90,
      PasswordReusePrevention: 3,
      HardExpiry: true,
    });
    const cases: Array<[string, RegExp]> = [
      ['Aa1!aaaaaaa', /at least 12 characters/],
      ['aa1!aaaaaaaa', /upper-case/],
      ['AA1!AAAAAAAA', /lower-case/],
      ['Aa!!aaaaaaaa', /number/],
      ['Aa1aaaaaaaaa', /symbols/],
    ];
    for (const [password, rule] of cases) {
      const e = await sdkError(admin().send(new UpdateLoginProfileCommand({ UserName: name, Password: password })));
      assert.equal(e.name, 'PasswordPolicyViolationException', password);
      assert.match(e.message, rule, password);
    }
    await admin().send(new UpdateLoginProfileCommand({ UserName: name, Password: 'Aa1!aaaaaaaa' }));

    // The limits are the model's (the AWS CLI checks them before sending; the SDK does not).
    for (const [input, member] of [
      [{ MinimumPasswordLength: 5 }, 'minimumPasswordLength'],
      [{ MinimumPasswordLength: 129 }, 'minimumPasswordLength'],
      [{ MaxPasswordAge: 1096 }, 'maxPasswordAge'],
      [{ PasswordReusePrevention: 25 }, 'passwordReusePrevention'],
    ] as const) {
      const bad = await sdkError(admin().send(new UpdateAccountPasswordPolicyCommand(input)));
      assert.deepEqual([bad.name, bad.status], ['ValidationError', 400], bad.message);
      assert.match(bad.message, new RegExp(member));
    }

    // Only with permission: a read-only user may neither read nor change the policy... unless
    // the policy lets users change their passwords, which lets them read the rules too.
    const { name: reader, creds } = await newUser('reader', [READ_ONLY]);
    assert.equal((await iamClient(server, creds).send(new GetAccountPasswordPolicyCommand({}))).PasswordPolicy?.MinimumPasswordLength, 12);
    const update = await sdkError(iamClient(server, creds).send(new UpdateAccountPasswordPolicyCommand({ MinimumPasswordLength: 6 })));
    assert.equal(update.status, 403);
    await admin().send(new UpdateAccountPasswordPolicyCommand({ MinimumPasswordLength: 8 }));
    const read = await sdkError(iamClient(server, creds).send(new GetAccountPasswordPolicyCommand({})));
    assert.equal(read.status, 403);
    assert.match(read.message, /iam:GetAccountPasswordPolicy/);

    await awsOk(server, ADMIN, ['iam', 'delete-account-password-policy']);
    assert.equal((await awsFails(server, ADMIN, ['iam', 'get-account-password-policy'])).errorCode, 'NoSuchEntity');
    await deleteUser(name);
    await deleteUser(reader, [READ_ONLY]);
  });

  test('MaxPasswordAge: an old password signs in as expired; with HardExpiry it no longer signs in', async (t) => {
    t.after(() => admin().send(new DeleteAccountPasswordPolicyCommand({})).catch(() => {}));
    const { name } = await newUser('aging');
    await admin().send(new CreateLoginProfileCommand({ UserName: name, Password: 'Correct-Horse-7' }));
    await admin().send(new UpdateAccountPasswordPolicyCommand({ MaxPasswordAge: 1 }));
    const fresh = await identity.signInWithPassword(ACCOUNT, name, 'Correct-Horse-7');
    assert.deepEqual(fresh.ok && [fresh.passwordExpired, fresh.passwordResetRequired], [false, false]);
    const later = identityAt(() => Date.now() + 2 * DAY_MS);
    const old = await later.signInWithPassword(ACCOUNT, name, 'Correct-Horse-7');
    assert.deepEqual(old.ok && [old.passwordExpired, old.user.name, old.accountId], [true, name, ACCOUNT]);
    await admin().send(new UpdateAccountPasswordPolicyCommand({ MaxPasswordAge: 1, HardExpiry: true }));
    assert.deepEqual(await later.signInWithPassword(ACCOUNT, name, 'Correct-Horse-7'), { ok: false, reason: 'expired-hard' });
    assert.deepEqual(await later.signInWithPassword(ACCOUNT, name, 'wrong'), { ok: false, reason: 'wrong-password' }, 'expiry shows only to whoever knows the password');
    // An administrator's reset starts the password's age again.
    await admin().send(new UpdateLoginProfileCommand({ UserName: name, Password: 'Battery-Staple-9' }));
    const reset = await identity.signInWithPassword(ACCOUNT, name, 'Battery-Staple-9');
    assert.deepEqual(reset.ok && reset.passwordExpired, false);
    await deleteUser(name);
  });
});

describe('ChangePassword', () => {
  test('by the user with their own credentials: needs permission unless the policy allows it or a reset is due', async (t) => {
    t.after(() => admin().send(new DeleteAccountPasswordPolicyCommand({})).catch(() => {}));
    const { name, creds } = await newUser('changer', [READ_ONLY]);
    const self = iamClient(server, creds);
    const noProfile = await sdkError(self.send(new ChangePasswordCommand({ OldPassword: 'x', NewPassword: 'Correct-Horse-7' })));
    assert.equal(noProfile.status, 403, 'refused before anything else: the user may not change passwords');

    await admin().send(new CreateLoginProfileCommand({ UserName: name, Password: 'Correct-Horse-7' }));
    const denied = await sdkError(self.send(new ChangePasswordCommand({ OldPassword: 'Correct-Horse-7', NewPassword: 'Battery-Staple-9' })));
    assert.equal(denied.status, 403);
    assert.match(denied.message, new RegExp(`not authorized to perform: iam:ChangePassword on resource: arn:aws:iam::${ACCOUNT}:user/${name}`));

    // A password that must be reset may be changed by its user.
    await admin().send(new UpdateLoginProfileCommand({ UserName: name, PasswordResetRequired: true }));
    const wrongOld = await sdkError(self.send(new ChangePasswordCommand({ OldPassword: 'not-it', NewPassword: 'Battery-Staple-9' })));
    assert.deepEqual([wrongOld.status, wrongOld.message], [403, 'The old password is incorrect.']);
    const same = await sdkError(self.send(new ChangePasswordCommand({ OldPassword: 'Correct-Horse-7', NewPassword: 'Correct-Horse-7' })));
    assert.equal(same.name, 'PasswordPolicyViolationException', 'a reset must change the password');
    const weak = await sdkError(self.send(new ChangePasswordCommand({ OldPassword: 'Correct-Horse-7', NewPassword: 'weak' })));
    assert.equal(weak.name, 'PasswordPolicyViolationException');
    await self.send(new ChangePasswordCommand({ OldPassword: 'Correct-Horse-7', NewPassword: 'Battery-Staple-9' }));
    assert.equal((await admin().send(new GetLoginProfileCommand({ UserName: name }))).LoginProfile?.PasswordResetRequired, false, 'the change ends the reset');
    const signedIn = await identity.signInWithPassword(ACCOUNT, name, 'Battery-Staple-9');
    assert.deepEqual(signedIn.ok && signedIn.passwordResetRequired, false);
    // The reset is done: the user may no longer change it on their own...
    assert.equal((await sdkError(self.send(new ChangePasswordCommand({ OldPassword: 'Battery-Staple-9', NewPassword: 'Third-Password-1' })))).status, 403);

    // ...until the password policy allows users to; then PasswordReusePrevention applies.
    await admin().send(new UpdateAccountPasswordPolicyCommand({ AllowUsersToChangePassword: true, PasswordReusePrevention: 2 }));
    const reused = await sdkError(self.send(new ChangePasswordCommand({ OldPassword: 'Battery-Staple-9', NewPassword: 'Correct-Horse-7' })));
    assert.equal(reused.name, 'PasswordPolicyViolationException');
    assert.match(reused.message, /last 2 passwords/);
    // With the user's session credentials (what the console signs with) as well as its key.
    const session = (await stsClient(server, creds).send(new GetSessionTokenCommand({}))).Credentials!;
    const viaSession = iamClient(server, { accessKeyId: session.AccessKeyId!, secretAccessKey: session.SecretAccessKey!, sessionToken: session.SessionToken! });
    await viaSession.send(new ChangePasswordCommand({ OldPassword: 'Battery-Staple-9', NewPassword: 'Third-Password-1' }));
    // Three passwords back is beyond the last 2: allowed again.
    await self.send(new ChangePasswordCommand({ OldPassword: 'Third-Password-1', NewPassword: 'Correct-Horse-7' }));
    assert.equal((await identity.signInWithPassword(ACCOUNT, name, 'Correct-Horse-7')).ok, true);

    // The AWS CLI spelling.
    const cliWrong = await aws(server, creds, ['iam', 'change-password', '--old-password', 'nope', '--new-password', 'Fourth-Password-2']);
    assert.equal(cliWrong.errorCode, 'AccessDenied', cliWrong.stderr);
    await awsOk(server, creds, ['iam', 'change-password', '--old-password', 'Correct-Horse-7', '--new-password', 'Fourth-Password-2']);
    await deleteUser(name, [READ_ONLY]);
  });

  test('only an IAM user has a password to change: a role session gets InvalidUserType; a user without a profile NoSuchEntity', async () => {
    const roleName = uniqueName('pw-role');
    const trust = JSON.stringify({ Version: '2012-10-17', Statement: [{ Effect: 'Allow', Principal: { AWS: `arn:aws:iam::${ACCOUNT}:user/admin` }, Action: 'sts:AssumeRole' }] });
    const role = (await admin().send(new CreateRoleCommand({ RoleName: roleName, AssumeRolePolicyDocument: trust }))).Role!;
    const assumed = (await stsClient(server, ADMIN).send(new AssumeRoleCommand({ RoleArn: role.Arn!, RoleSessionName: 'pw-test' }))).Credentials!;
    const sessionCreds = { accessKeyId: assumed.AccessKeyId!, secretAccessKey: assumed.SecretAccessKey!, sessionToken: assumed.SessionToken! };
    const e = await sdkError(iamClient(server, sessionCreds).send(new ChangePasswordCommand({ OldPassword: 'a', NewPassword: 'Correct-Horse-7' })));
    assert.deepEqual([e.name, e.status], ['InvalidUserTypeException', 400]);
    // The administrator may change passwords (AdministratorAccess), but has none.
    const none = await sdkError(admin().send(new ChangePasswordCommand({ OldPassword: 'a', NewPassword: 'Correct-Horse-7' })));
    assert.deepEqual([none.name, none.status], ['NoSuchEntityException', 404]);
    assert.match(none.message, /Login Profile for User admin cannot be found/);
  });
});

describe('GetSessionToken', () => {
  test('a user\'s session credentials act as the user on ECR, STS and IAM, and stop when the user is deleted', async () => {
    const policies = [FULL_ACCESS];
    const { name, creds } = await newUser('session', policies);
    const out = await stsClient(server, creds).send(new GetSessionTokenCommand({ DurationSeconds: 900 }));
    const c = out.Credentials!;
    assert.match(c.AccessKeyId!, /^ASIA/);
    assert.ok(Math.abs(c.Expiration!.getTime() - (Date.now() + 900_000)) < 60_000, 'expires after DurationSeconds');
    const session: AwsCredentials = { accessKeyId: c.AccessKeyId!, secretAccessKey: c.SecretAccessKey!, sessionToken: c.SessionToken! };

    const who = await stsClient(server, session).send(new GetCallerIdentityCommand({}));
    assert.equal(who.Arn, `arn:aws:iam::${ACCOUNT}:user/${name}`, 'the principal is the user itself');
    const repositoryName = uniqueName('session-repo');
    await ecrClient(server, session).send(new CreateRepositoryCommand({ repositoryName }));
    const listed = await ecrClient(server, session).send(new DescribeRepositoriesCommand({ repositoryNames: [repositoryName] }));
    assert.equal(listed.repositories?.[0]?.repositoryName, repositoryName);
    // The user's policies still decide: FullAccess grants no IAM action.
    assert.equal((await sdkError(iamClient(server, session).send(new ListAccessKeysCommand({})))).status, 403);

    // A registry login with the session's authorization token.
    const auth = (await ecrClient(server, session).send(new GetAuthorizationTokenCommand({}))).authorizationData![0]!;
    assert.ok(auth.expiresAt!.getTime() <= c.Expiration!.getTime() + 1000, 'the token ends with the session at the latest');
    const password = Buffer.from(auth.authorizationToken!, 'base64').toString().slice('AWS:'.length);
    const v2 = () => fetch(`${server.baseUrl}/v2/${repositoryName}/tags/list`, { headers: { authorization: basicAuthorization('AWS', password) } });
    const listed2 = await v2();
    assert.equal(listed2.status, 200, await listed2.text());

    // Session credentials make no more of themselves.
    const again = await sdkError(stsClient(server, session).send(new GetSessionTokenCommand({})));
    assert.deepEqual([again.status, again.message], [403, 'Cannot call GetSessionToken with session credentials']);

    await deleteUser(name, policies);
    const ecrAfter = await sdkError(ecrClient(server, session).send(new DescribeRepositoriesCommand({})));
    assert.deepEqual([ecrAfter.name, ecrAfter.status], ['UnrecognizedClientException', 400]);
    const stsAfter = await sdkError(stsClient(server, session).send(new GetCallerIdentityCommand({})));
    assert.deepEqual([stsAfter.name, stsAfter.status], ['InvalidClientTokenId', 403]);
    const afterDelete = await v2();
    assert.equal(afterDelete.status, 401, 'the token dies with the user');
    await afterDelete.arrayBuffer();

    // A user re-created under the same name is another user: the old session stays dead.
    await admin().send(new CreateUserCommand({ UserName: name }));
    assert.equal((await sdkError(stsClient(server, session).send(new GetCallerIdentityCommand({})))).name, 'InvalidClientTokenId');
    await admin().send(new DeleteUserCommand({ UserName: name }));
  });

  test('AWS CLI get-session-token: 12 hours by default, DurationSeconds 900..129600, no MFA', async () => {
    const { name, creds } = await newUser('sts-cli', [READ_ONLY]);
    const out = await awsOk(server, creds, ['sts', 'get-session-token']);
    const expiresMs = Date.parse(out.json.Credentials.Expiration);
    assert.ok(Math.abs(expiresMs - (Date.now() + 43_200_000)) < 60_000, `12 hours: ${out.json.Credentials.Expiration}`);
    const longest = await awsOk(server, creds, ['sts', 'get-session-token', '--duration-seconds', '129600']);
    assert.ok(Math.abs(Date.parse(longest.json.Credentials.Expiration) - (Date.now() + 129_600_000)) < 60_000);
    for (const seconds of [899, 129_601]) {
      const bad = await sdkError(stsClient(server, creds).send(new GetSessionTokenCommand({ DurationSeconds: seconds })));
      assert.deepEqual([bad.name, bad.status], ['ValidationError', 400], bad.message);
      assert.match(bad.message, /durationSeconds/);
    }
    const mfa = await awsFails(server, creds, ['sts', 'get-session-token', '--serial-number', `arn:aws:iam::${ACCOUNT}:mfa/${name}`, '--token-code', '123456']);
    assert.equal(mfa.errorCode, 'AccessDenied', mfa.stderr);
    const session = { accessKeyId: out.json.Credentials.AccessKeyId, secretAccessKey: out.json.Credentials.SecretAccessKey, sessionToken: out.json.Credentials.SessionToken };
    const who = await awsOk(server, session, ['sts', 'get-caller-identity']);
    assert.equal(who.json.Arn, `arn:aws:iam::${ACCOUNT}:user/${name}`);
    await deleteUser(name, [READ_ONLY]);
  });
});

describe('console sign-in (Identity.signInWithPassword) and its session', () => {
  test('by account id or alias; every failure has its reason; the session it leads to works on the server', async () => {
    const alias = `pw-alias-${process.pid}`;
    const other = await identity.createAccount({ alias });
    const otherAdmin = iamClient(server, other);
    await otherAdmin.send(new CreateUserCommand({ UserName: 'dana' }));
    await otherAdmin.send(new AttachUserPolicyCommand({ UserName: 'dana', PolicyArn: READ_ONLY }));
    await otherAdmin.send(new CreateLoginProfileCommand({ UserName: 'dana', Password: 'Correct-Horse-7', PasswordResetRequired: true }));

    const byId = await identity.signInWithPassword(other.accountId, 'dana', 'Correct-Horse-7');
    const byAlias = await identity.signInWithPassword(alias.toUpperCase(), 'DANA', 'Correct-Horse-7');
    for (const r of [byId, byAlias]) {
      assert.ok(r.ok);
      assert.deepEqual([r.accountId, r.user.name, r.passwordResetRequired, r.passwordExpired], [other.accountId, 'dana', true, false]);
    }
    assert.deepEqual(await identity.signInWithPassword('999988887777', 'dana', 'Correct-Horse-7'), { ok: false, reason: 'unknown-account' });
    assert.deepEqual(await identity.signInWithPassword('no-such-alias', 'dana', 'Correct-Horse-7'), { ok: false, reason: 'unknown-account' });
    assert.deepEqual(await identity.signInWithPassword(other.accountId, 'erin', 'Correct-Horse-7'), { ok: false, reason: 'unknown-user' });
    assert.deepEqual(await identity.signInWithPassword(other.accountId, 'admin', 'Correct-Horse-7'), { ok: false, reason: 'no-login-profile' });
    assert.deepEqual(await identity.signInWithPassword(other.accountId, 'dana', 'correct-horse-7'), { ok: false, reason: 'wrong-password' });
    assert.deepEqual(await identity.signInWithPassword(ACCOUNT, 'dana', 'Correct-Horse-7'), { ok: false, reason: 'unknown-user' }, 'users belong to their account');

    // The console's session: GetSessionToken's kind of credentials, with the secret derived again from the key id.
    const dana = byId.ok ? byId.user : assert.fail('signed in');
    const creds = identity.issueUserSession(dana, 3600);
    assert.match(creds.accessKeyId, /^ASIA/);
    assert.equal(identity.sessionSecretFor(creds.accessKeyId), creds.secretAccessKey);
    assert.ok(Math.abs(creds.expiration.getTime() - (Date.now() + 3_600_000)) < 60_000);
    const session = { accessKeyId: creds.accessKeyId, secretAccessKey: identity.sessionSecretFor(creds.accessKeyId), sessionToken: creds.sessionToken };
    const who = await stsClient(server, session).send(new GetCallerIdentityCommand({}));
    assert.equal(who.Arn, `arn:aws:iam::${other.accountId}:user/dana`);
    await ecrClient(server, session).send(new DescribeRepositoriesCommand({}));
    // A reset is due, so dana may change the password with the session alone.
    await iamClient(server, session).send(new ChangePasswordCommand({ OldPassword: 'Correct-Horse-7', NewPassword: 'Battery-Staple-9' }));
    const changed = await identity.signInWithPassword(alias, 'dana', 'Battery-Staple-9');
    assert.deepEqual(changed.ok && changed.passwordResetRequired, false);

    // Expired session credentials are refused as expired.
    const expired = identityAt(() => Date.now() - 7200_000).issueUserSession(dana, 3600);
    const stale = await sdkError(stsClient(server, { accessKeyId: expired.accessKeyId, secretAccessKey: expired.secretAccessKey, sessionToken: expired.sessionToken }).send(new GetCallerIdentityCommand({})));
    assert.deepEqual([stale.name, stale.status], ['ExpiredToken', 403]);
  });

  test('a sign-in takes about as long for an unknown user or account as for a wrong password', async () => {
    const { name } = await newUser('timing');
    await admin().send(new CreateLoginProfileCommand({ UserName: name, Password: 'Correct-Horse-7' }));
    const timed = async (account: string, user: string) => {
      const times: number[] = [];
      for (let i = 0; i < 3; i++) {
        const t0 = performance.now();
        await identity.signInWithPassword(account, user, 'wrong-password');
        times.push(performance.now() - t0);
      }
      return times.sort((a, b) => a - b)[1]!;
    };
    const wrong = await timed(ACCOUNT, name);
    const unknownUser = await timed(ACCOUNT, 'nobody-here');
    const unknownAccount = await timed('999988887777', name);
    // scrypt dominates (tens of milliseconds); lookups are a small part of it.
    assert.ok(unknownUser > wrong * 0.4 && unknownAccount > wrong * 0.4, `wrong password ${wrong.toFixed(1)} ms, unknown user ${unknownUser.toFixed(1)} ms, unknown account ${unknownAccount.toFixed(1)} ms`);
    await deleteUser(name);
  });
});

describe('berth user password', () => {
  test('sets a generated password (printed once) or one from stdin, creating or updating the login profile', async () => {
    const { name } = await newUser('berth');
    const generated = JSON.parse(await runBerth(server, ['user', 'password', '--account', ACCOUNT, '--user', name, '--reset-required']));
    assert.equal(generated.loginProfile, 'created');
    assert.equal(generated.passwordResetRequired, true);
    assert.equal(typeof generated.password, 'string');
    assert.ok(generated.password.length >= 20);
    const first = await identity.signInWithPassword(ACCOUNT, name, generated.password);
    assert.deepEqual(first.ok && first.passwordResetRequired, true);
    assert.equal((await admin().send(new GetLoginProfileCommand({ UserName: name }))).LoginProfile?.PasswordResetRequired, true);

    // Without --account: the first account, the one the server created on its first start.
    const fromStdin = await berthWithStdin(['user', 'password', '--user', name.toUpperCase(), '--password-stdin'], 'Chosen-Password-5\n');
    assert.equal(fromStdin.code, 0, fromStdin.stderr);
    const printed = JSON.parse(fromStdin.stdout);
    assert.deepEqual(printed, { accountId: ACCOUNT, userName: name, loginProfile: 'updated', passwordResetRequired: false }, 'a given password is not printed');
    const second = await identity.signInWithPassword(ACCOUNT, name, 'Chosen-Password-5');
    assert.deepEqual(second.ok && second.passwordResetRequired, false);
    assert.deepEqual(await identity.signInWithPassword(ACCOUNT, name, generated.password), { ok: false, reason: 'wrong-password' });

    const weak = await berthWithStdin(['user', 'password', '--account', ACCOUNT, '--user', name, '--password-stdin'], 'weak\n');
    assert.equal(weak.code, 1);
    assert.match(weak.stderr, /Password does not conform to the account password policy/);
    await assert.rejects(runBerth(server, ['user', 'password', '--account', ACCOUNT, '--user', 'nobody-here']), (err: { code?: number; stderr?: string }) => err.code === 2 && /does not exist/.test(err.stderr ?? ''));
    const usage = await runBerth(server, ['user', '--help']);
    assert.match(usage, /user password \[--account ID\] --user NAME/);
    await deleteUser(name);
  });
});

test('no password this file used reaches the server\'s log', () => {
  const logText = JSON.stringify(server.logs);
  assert.ok(server.logs.some((l) => l['msg'] === 'request'), 'the server logged its requests');
  for (const password of ['Correct-Horse-7', 'Battery-Staple-9', 'Third-Password-1', 'Fourth-Password-2', 'Chosen-Password-5', 'Aa1!aaaaaaaa']) {
    assert.equal(logText.includes(password), false, password);
  }
});
