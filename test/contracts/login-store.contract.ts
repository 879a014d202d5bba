import assert from 'node:assert/strict';
import { describe } from 'node:test';
import type { ConsoleSessionRow, LoginProfileRow, PasswordPolicy, UserRow } from '../../src/store/meta/identity-store.ts';
import { storeTest, T0, type MetaStoreHarness } from './harness.ts';

const ACCOUNT = '111122223333';
const OTHER = '444455556666';

let seq = 0;

function user(name: string, accountId = ACCOUNT): UserRow {
  return { accountId, name, id: `AIDA${String(++seq).padStart(17, '0')}`, path: '/', tags: [], createdAtMs: T0 };
}

function profile(userName: string, overrides: Partial<LoginProfileRow> = {}): LoginProfileRow {
  return {
    accountId: ACCOUNT,
    userName,
    passwordHash: `scrypt$16384$8$1$salt${++seq}$hash`,
    isResetRequired: false,
    createdAtMs: T0,
    passwordChangedAtMs: T0,
    lastUsedAtMs: null,
    previousHashes: [],
    ...overrides,
  };
}

function session(n: number, overrides: Partial<ConsoleSessionRow> = {}): ConsoleSessionRow {
  return {
    idHash: `${String(n).padStart(4, '0')}${'a'.repeat(60)}`,
    accountId: ACCOUNT,
    userName: 'Alice',
    userId: 'AIDAEXAMPLE000000001',
    accessKeyId: `ASIA${String(n).padStart(16, '0')}`,
    sessionToken: `berthsts1.payload-${n}.mac`,
    createdAtMs: T0,
    expiresAtMs: T0 + n * 1000,
    mustChangePassword: false,
    ...overrides,
  };
}

const strict: PasswordPolicy = {
  minimumPasswordLength: 14,
  requireSymbols: true,
  requireNumbers: true,
  requireUppercaseCharacters: true,
  requireLowercaseCharacters: false,
  allowUsersToChangePassword: true,
  maxPasswordAge: 90,
  passwordReusePrevention: 24,
  hardExpiry: true,
};

/**
 * What console sign-in keeps in the identity store (src/store/meta/identity-store.ts) on every
 * MetaStore driver: login profiles (a user's password hash and its history), account password
 * policies, and console session rows.
 */
export function loginStoreContract(name: string, open: () => Promise<MetaStoreHarness>): void {
  const loginTest = storeTest(async () => {
    const harness = await open();
    await harness.store.identity.createAccount({ id: ACCOUNT, alias: null, createdAtMs: T0 });
    await harness.store.identity.createAccount({ id: OTHER, alias: null, createdAtMs: T0 });
    return harness;
  });

  describe(`login profiles, password policies and console sessions: ${name}`, () => {
    loginTest('a login profile: one per user, read by any case of the name, with the name as created', async ({ identity: store }) => {
      await store.createUser(user('Alice'));
      await store.createUser(user('alice', OTHER));
      const row = profile('Alice', { isResetRequired: true, previousHashes: ['old-2', 'old-1'] });
      assert.equal(await store.createLoginProfile(row), true);
      assert.equal(await store.createLoginProfile(profile('ALICE')), false, 'a second profile for the user');
      assert.deepEqual(await store.getLoginProfile(ACCOUNT, 'aLiCe'), row);
      assert.equal(await store.getLoginProfile(OTHER, 'alice'), undefined, 'another account is separate');
      assert.equal(await store.createLoginProfile(profile('alice', { accountId: OTHER })), true);
      assert.equal((await store.getLoginProfile(OTHER, 'ALICE'))?.userName, 'alice');
      assert.equal(await store.getLoginProfile(ACCOUNT, 'bob'), undefined);
    });

    loginTest('updateLoginProfile changes only the fields given; with expectedHash only while the hash is unchanged', async ({ identity: store }) => {
      await store.createUser(user('Alice'));
      const row = profile('Alice');
      await store.createLoginProfile(row);
      assert.equal(await store.updateLoginProfile(ACCOUNT, 'alice', { isResetRequired: true }), true);
      assert.deepEqual(await store.getLoginProfile(ACCOUNT, 'Alice'), { ...row, isResetRequired: true });

      const change = { passwordHash: 'scrypt$new', passwordChangedAtMs: T0 + 5, previousHashes: [row.passwordHash], isResetRequired: false };
      assert.equal(await store.updateLoginProfile(ACCOUNT, 'Alice', change, 'scrypt$not-the-current-one'), false, 'another change came first');
      assert.equal((await store.getLoginProfile(ACCOUNT, 'Alice'))?.passwordHash, row.passwordHash, 'nothing changed');
      assert.equal(await store.updateLoginProfile(ACCOUNT, 'Alice', change, row.passwordHash), true);
      assert.deepEqual(await store.getLoginProfile(ACCOUNT, 'Alice'), { ...row, ...change });
      assert.equal(await store.updateLoginProfile(ACCOUNT, 'Alice', {}, 'scrypt$new'), true, 'an empty change tells whether the profile (and hash) is there');
      assert.equal(await store.updateLoginProfile(ACCOUNT, 'Alice', {}, row.passwordHash), false);
      assert.equal(await store.updateLoginProfile(ACCOUNT, 'bob', { isResetRequired: true }), false, 'no profile');
      assert.equal(await store.updateLoginProfile(ACCOUNT, 'bob', {}), false);

      await store.touchLoginProfile(ACCOUNT, 'ALICE', T0 + 2 ** 33);
      assert.equal((await store.getLoginProfile(ACCOUNT, 'Alice'))?.lastUsedAtMs, T0 + 2 ** 33, 'epoch milliseconds survive as numbers');
      await store.touchLoginProfile(ACCOUNT, 'bob', T0);
    });

    loginTest('deleteLoginProfile resolves whether there was one; a deleted user takes its profile along', async ({ identity: store }) => {
      await store.createUser(user('Alice'));
      await store.createUser(user('Bob'));
      await store.createLoginProfile(profile('Alice'));
      await store.createLoginProfile(profile('Bob'));
      assert.equal(await store.deleteLoginProfile(ACCOUNT, 'ALICE'), true);
      assert.equal(await store.deleteLoginProfile(ACCOUNT, 'alice'), false);
      assert.equal(await store.getLoginProfile(ACCOUNT, 'alice'), undefined);
      assert.equal(await store.deleteUser(ACCOUNT, 'bob'), true);
      await store.createUser(user('Bob'));
      assert.equal(await store.getLoginProfile(ACCOUNT, 'bob'), undefined, 'a user re-created under the same name has no password');
    });

    loginTest('password policies: none until put; put replaces; per account; delete resolves whether there was one', async ({ identity: store }) => {
      assert.equal(await store.getPasswordPolicy(ACCOUNT), undefined);
      await store.putPasswordPolicy(ACCOUNT, strict, T0);
      assert.deepEqual(await store.getPasswordPolicy(ACCOUNT), strict);
      assert.equal(await store.getPasswordPolicy(OTHER), undefined);
      const loose: PasswordPolicy = { ...strict, minimumPasswordLength: 6, requireSymbols: false, maxPasswordAge: null, passwordReusePrevention: null, hardExpiry: false, requireLowercaseCharacters: true };
      await store.putPasswordPolicy(ACCOUNT, loose, T0 + 1);
      assert.deepEqual(await store.getPasswordPolicy(ACCOUNT), loose);
      assert.equal(await store.deletePasswordPolicy(ACCOUNT), true);
      assert.equal(await store.deletePasswordPolicy(ACCOUNT), false);
      assert.equal(await store.getPasswordPolicy(ACCOUNT), undefined);
    });

    loginTest('console sessions: created, read back as written, deleted idempotently', async ({ identity: store }) => {
      const row = session(1, { expiresAtMs: T0 + 2 ** 33 });
      await store.createConsoleSession(row);
      assert.deepEqual(await store.getConsoleSession(row.idHash), row);
      await assert.rejects(store.createConsoleSession({ ...row, userName: 'Mallory' }), 'an id hash is taken once');
      assert.equal((await store.getConsoleSession(row.idHash))?.userName, 'Alice', 'the first row stands');
      assert.equal(await store.getConsoleSession(row.idHash.toUpperCase()), undefined, 'id hashes compare exactly');
      await store.deleteConsoleSession(row.idHash);
      assert.equal(await store.getConsoleSession(row.idHash), undefined);
      await store.deleteConsoleSession(row.idHash);
      await store.deleteConsoleSession('never-existed');
    });

    loginTest('a session that must change its password keeps that until it is cleared, on any reader', async ({ identity: store }) => {
      const row = session(7, { mustChangePassword: true });
      await store.createConsoleSession(row);
      assert.equal((await store.getConsoleSession(row.idHash))?.mustChangePassword, true);
      await store.clearConsoleSessionPasswordChange(row.idHash);
      assert.equal((await store.getConsoleSession(row.idHash))?.mustChangePassword, false);
      await store.clearConsoleSessionPasswordChange(row.idHash);
      await store.clearConsoleSessionPasswordChange('never-existed');
      assert.equal((await store.getConsoleSession(session(8).idHash)), undefined, 'clearing creates nothing');
    });

    loginTest('deleteExpiredConsoleSessions removes those expired at or before the time, and counts them', async ({ identity: store }) => {
      for (let n = 1; n <= 5; n++) await store.createConsoleSession(session(n));
      assert.equal(await store.deleteExpiredConsoleSessions(T0), 0);
      const expired = await store.deleteExpiredConsoleSessions(T0 + 3000);
      assert.equal(expired, 3, 'expiring at T0+1s, +2s and +3s (the boundary included)');
      for (let n = 1; n <= 5; n++) assert.equal((await store.getConsoleSession(session(n).idHash)) !== undefined, n > 3, `session ${n}`);
      assert.equal(await store.deleteExpiredConsoleSessions(T0 + 3000), 0, 'nothing left to expire');
      assert.equal(await store.deleteExpiredConsoleSessions(T0 + 10_000), 2);
    });

    loginTest('writes inside a transaction that rolls back leave nothing', async (meta) => {
      await meta.identity.createUser(user('Alice'));
      await assert.rejects(
        meta.transaction(async (tx) => {
          await tx.identity.createLoginProfile(profile('Alice'));
          await tx.identity.putPasswordPolicy(ACCOUNT, strict, T0);
          await tx.identity.createConsoleSession(session(7));
          throw new Error('roll back');
        }),
        /roll back/,
      );
      assert.equal(await meta.identity.getLoginProfile(ACCOUNT, 'Alice'), undefined);
      assert.equal(await meta.identity.getPasswordPolicy(ACCOUNT), undefined);
      assert.equal(await meta.identity.getConsoleSession(session(7).idHash), undefined);
    });
  });
}
