import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { AccessKeyRow, GroupRow, IdentityStore, PolicyRow, RoleRow, UserRow } from '../../src/store/meta/identity-store.ts';
import type { MetaStore } from '../../src/store/meta/meta-store.ts';

/** What a driver's test file hands the suite: a fresh, empty, migrated store per test. */
export interface IdentityStoreHarness {
  /** The metadata store; the suite uses `meta.identity`, and `meta.transaction()` for atomicity. */
  meta: MetaStore;
  /** Closes the store and removes everything it kept (temp file, database). Runs once, after each test. */
  cleanup(): Promise<void>;
}

/** Epoch milliseconds past 2^32, so that a driver reading bigint columns as strings shows. */
const T0 = 1_700_000_000_000;
const ACCOUNT = '111122223333';
const OTHER = '444455556666';
const ADMIN_ARN = 'arn:aws:iam::aws:policy/AdministratorAccess';
const READ_ARN = 'arn:aws:iam::aws:policy/AmazonEC2ContainerRegistryReadOnly';

let seq = 0;
const nextId = (prefix: string) => `${prefix}${String(++seq).padStart(17, '0')}`;

function user(name: string, overrides: Partial<UserRow> = {}): UserRow {
  return { accountId: ACCOUNT, name, id: nextId('AIDA'), path: '/', tags: [], createdAtMs: T0, ...overrides };
}

function group(name: string, overrides: Partial<GroupRow> = {}): GroupRow {
  return { accountId: ACCOUNT, name, id: nextId('AGPA'), path: '/', createdAtMs: T0, ...overrides };
}

function role(name: string, overrides: Partial<RoleRow> = {}): RoleRow {
  return {
    accountId: ACCOUNT,
    name,
    id: nextId('AROA'),
    path: '/',
    trustPolicy: '{"Version":"2012-10-17","Statement":[]}',
    description: null,
    maxSessionSeconds: 3600,
    tags: [],
    createdAtMs: T0,
    ...overrides,
  };
}

function policy(name: string, overrides: Partial<PolicyRow> = {}): PolicyRow {
  return { accountId: ACCOUNT, name, id: nextId('ANPA'), path: '/', document: '{"Version":"2012-10-17","Statement":[]}', description: null, createdAtMs: T0, updatedAtMs: T0, ...overrides };
}

function accessKey(userName: string, overrides: Partial<AccessKeyRow> = {}): AccessKeyRow {
  return {
    id: nextId('AKIA'),
    accountId: ACCOUNT,
    userName,
    secretSealed: `sealed:${seq}`,
    status: 'Active',
    createdAtMs: T0,
    lastUsedAtMs: null,
    lastUsedService: null,
    ...overrides,
  };
}

/** Every page of a name-ordered listing, `limit` at a time, each continuing after the last name (case-folded). */
async function allPages<T extends { name: string }>(list: (page: { after?: string; limit: number }) => Promise<T[]>, limit: number): Promise<string[]> {
  const names: string[] = [];
  let after: string | undefined;
  for (;;) {
    const page = await list(after === undefined ? { limit } : { after, limit });
    assert.ok(page.length <= limit, `a page holds at most ${limit}`);
    if (page.length === 0) return names;
    names.push(...page.map((r) => r.name));
    after = page.at(-1)!.name.toLowerCase();
  }
}

/**
 * The behaviour every IdentityStore must have, as src/iam/identity-store.ts documents it. A
 * driver's test file is one call: `identityStoreContract('sqlite', async () => ({ meta, cleanup }))`.
 */
export function identityStoreContract(name: string, open: () => Promise<IdentityStoreHarness>): void {
  function idTest(title: string, fn: (store: IdentityStore, meta: MetaStore) => Promise<void>): void {
    test(title, async () => {
      const harness = await open();
      try {
        await harness.meta.identity.createAccount({ id: ACCOUNT, alias: null, createdAtMs: T0 });
        await harness.meta.identity.createAccount({ id: OTHER, alias: 'other', createdAtMs: T0 + 1 });
        await fn(harness.meta.identity, harness.meta);
      } finally {
        await harness.cleanup();
      }
    });
  }

  describe(`IdentityStore contract: ${name}`, () => {
    // --- accounts -------------------------------------------------------------------------------

    idTest('accounts: created once, read back, listed oldest first then by id', async (store) => {
      assert.equal(await store.createAccount({ id: ACCOUNT, alias: 'again', createdAtMs: T0 + 9 }), false, 'an existing id');
      assert.deepEqual(await store.getAccount(ACCOUNT), { id: ACCOUNT, alias: null, createdAtMs: T0 }, 'the first creation stands');
      assert.deepEqual(await store.getAccount(OTHER), { id: OTHER, alias: 'other', createdAtMs: T0 + 1 });
      assert.equal(await store.getAccount('999999999999'), undefined);
      assert.equal(await store.createAccount({ id: '000000000001', alias: null, createdAtMs: T0 }), true);
      assert.deepEqual(
        (await store.listAccounts()).map((a) => a.id),
        ['000000000001', ACCOUNT, OTHER],
        'created_at, then id',
      );
    });

    // --- users ----------------------------------------------------------------------------------

    idTest('users: names unique per account ignoring case; read by any case; name kept as created', async (store) => {
      const alice = user('Alice', { path: '/dev/', tags: [{ Key: 'team', Value: 'blue' }], createdAtMs: T0 + 5 });
      assert.equal(await store.createUser(alice), true);
      assert.equal(await store.createUser(user('alice')), false, 'the same name in another case');
      assert.equal(await store.createUser(user('ALICE', { accountId: OTHER })), true, 'another account is separate');
      assert.deepEqual(await store.getUser(ACCOUNT, 'aLiCe'), alice);
      assert.equal((await store.getUser(OTHER, 'alice'))?.name, 'ALICE');
      assert.equal(await store.getUser(ACCOUNT, 'alic'), undefined, 'no prefix match');
      await store.setUserTags(ACCOUNT, 'ALICE', [{ Key: 'a', Value: '1' }, { Key: 'b', Value: 'é' }]);
      assert.deepEqual((await store.getUser(ACCOUNT, 'alice'))?.tags, [{ Key: 'a', Value: '1' }, { Key: 'b', Value: 'é' }]);
      assert.deepEqual((await store.getUser(OTHER, 'alice'))?.tags, [], 'the other account’s user is untouched');
      assert.equal(await store.deleteUser(ACCOUNT, 'ALICE'), true);
      assert.equal(await store.deleteUser(ACCOUNT, 'alice'), false);
      assert.equal(await store.getUser(ACCOUNT, 'alice'), undefined);
      assert.ok(await store.getUser(OTHER, 'alice'));
      assert.equal(await store.createUser(user('alice')), true, 'the name is free again');
    });

    idTest('users: listed by name ignoring case, paged after a case-folded name, filtered by path prefix', async (store) => {
      const names = ['bob', 'Carol', 'alice', 'Dave', 'a_b', 'a-b', 'eve'];
      const paths: Record<string, string> = { bob: '/dev/', Carol: '/dev/ops/', Dave: '/Dev/', a_b: '/dev_x/', 'a-b': '/devXx/' };
      for (const n of names) await store.createUser(user(n, { path: paths[n] ?? '/' }));
      await store.createUser(user('zed', { accountId: OTHER }));
      const byKey = [...names].sort((a, b) => Buffer.compare(Buffer.from(a.toLowerCase()), Buffer.from(b.toLowerCase())));
      assert.deepEqual((await store.listUsers(ACCOUNT, '/', { limit: 100 })).map((u) => u.name), byKey);
      assert.deepEqual(await allPages((p) => store.listUsers(ACCOUNT, '/', p), 2), byKey);
      assert.deepEqual((await store.listUsers(ACCOUNT, '/', { after: 'bob', limit: 2 })).map((u) => u.name), ['Carol', 'Dave']);
      assert.deepEqual((await store.listUsers(ACCOUNT, '/dev/', { limit: 100 })).map((u) => u.name), ['bob', 'Carol'], 'a prefix matches the path and paths below it');
      assert.deepEqual((await store.listUsers(ACCOUNT, '/Dev/', { limit: 100 })).map((u) => u.name), ['Dave'], 'path prefixes are case-sensitive, as in IAM');
      assert.deepEqual((await store.listUsers(ACCOUNT, '/dev_', { limit: 100 })).map((u) => u.name), ['a_b'], '_ in a prefix is itself, not a wildcard');
      assert.deepEqual((await store.listUsers(ACCOUNT, '/dev%', { limit: 100 })).map((u) => u.name), [], '% in a prefix is itself, not a wildcard');
      assert.deepEqual((await store.listUsers(OTHER, '/', { limit: 100 })).map((u) => u.name), ['zed']);
    });

    // --- access keys ----------------------------------------------------------------------------

    idTest('access keys: read with their user’s name as created, listed per user oldest first, status and last use', async (store) => {
      await store.createUser(user('Alice'));
      await store.createUser(user('bob'));
      const k2 = accessKey('alice', { createdAtMs: T0 + 2 });
      const k1 = accessKey('ALICE', { createdAtMs: T0 + 1, status: 'Inactive' });
      const kb = accessKey('bob');
      for (const k of [k2, k1, kb]) await store.createAccessKey(k);
      assert.deepEqual(await store.getAccessKey(k1.id), { ...k1, userName: 'Alice' }, 'the user name as created, not as given with the key');
      assert.equal(await store.getAccessKey('AKIAABSENT0000000000'), undefined);
      assert.deepEqual((await store.listAccessKeys(ACCOUNT, 'aLiCe')).map((k) => k.id), [k1.id, k2.id]);
      assert.deepEqual(await store.listAccessKeys(OTHER, 'alice'), []);

      assert.equal(await store.setAccessKeyStatus(k1.id, 'Active'), true);
      assert.equal((await store.getAccessKey(k1.id))?.status, 'Active');
      assert.equal(await store.setAccessKeyStatus('AKIAABSENT0000000000', 'Inactive'), false);

      await store.touchAccessKey(k2.id, T0 + 60_000, 'ecr');
      const touched = await store.getAccessKey(k2.id);
      assert.equal(touched?.lastUsedAtMs, T0 + 60_000);
      assert.equal(touched?.lastUsedService, 'ecr');
      assert.equal((await store.getAccessKey(k1.id))?.lastUsedAtMs, null);

      assert.equal(await store.deleteAccessKey(k2.id), true);
      assert.equal(await store.deleteAccessKey(k2.id), false);
      assert.deepEqual((await store.listAccessKeys(ACCOUNT, 'alice')).map((k) => k.id), [k1.id]);
    });

    // --- groups ---------------------------------------------------------------------------------

    idTest('groups: unique ignoring case, listed and paged by name, path prefix', async (store) => {
      const admins = group('Admins', { path: '/ops/' });
      assert.equal(await store.createGroup(admins), true);
      assert.equal(await store.createGroup(group('admins')), false);
      assert.equal(await store.createGroup(group('admins', { accountId: OTHER })), true);
      await store.createGroup(group('devs'));
      await store.createGroup(group('Builders'));
      assert.deepEqual(await store.getGroup(ACCOUNT, 'ADMINS'), admins);
      assert.deepEqual((await store.listGroups(ACCOUNT, '/', { limit: 10 })).map((g) => g.name), ['Admins', 'Builders', 'devs']);
      assert.deepEqual(await allPages((p) => store.listGroups(ACCOUNT, '/', p), 1), ['Admins', 'Builders', 'devs']);
      assert.deepEqual((await store.listGroups(ACCOUNT, '/ops/', { limit: 10 })).map((g) => g.name), ['Admins']);
      assert.equal(await store.deleteGroup(ACCOUNT, 'builders'), true);
      assert.equal(await store.deleteGroup(ACCOUNT, 'builders'), false);
      assert.equal(await store.getGroup(ACCOUNT, 'Builders'), undefined);
    });

    idTest('group membership: idempotent, by any case; both directions listed by name', async (store) => {
      for (const n of ['Zoe', 'adam', 'Mia']) await store.createUser(user(n));
      for (const g of ['Ops', 'dev', 'QA']) await store.createGroup(group(g));
      await store.addUserToGroup(ACCOUNT, 'ops', 'zoe');
      await store.addUserToGroup(ACCOUNT, 'OPS', 'ZOE');
      await store.addUserToGroup(ACCOUNT, 'Ops', 'Adam');
      await store.addUserToGroup(ACCOUNT, 'dev', 'zoe');
      await store.addUserToGroup(ACCOUNT, 'qa', 'zoe');
      assert.deepEqual(await store.listGroupMembers(ACCOUNT, 'ops'), ['adam', 'Zoe'], 'user names as created, by name ignoring case');
      assert.deepEqual((await store.listGroupsForUser(ACCOUNT, 'zoe')).map((g) => g.name), ['dev', 'Ops', 'QA']);
      assert.deepEqual(await store.listGroupsForUser(ACCOUNT, 'mia'), []);
      assert.deepEqual(await store.listGroupMembers(ACCOUNT, 'absent'), []);
      assert.equal(await store.removeUserFromGroup(ACCOUNT, 'OPS', 'Zoe'), true);
      assert.equal(await store.removeUserFromGroup(ACCOUNT, 'ops', 'zoe'), false);
      assert.deepEqual(await store.listGroupMembers(ACCOUNT, 'Ops'), ['adam']);
      assert.deepEqual((await store.listGroupsForUser(ACCOUNT, 'Zoe')).map((g) => g.name), ['dev', 'QA']);
    });

    // --- roles ----------------------------------------------------------------------------------

    idTest('roles: unique ignoring case, every field round-trips, trust policy and tags replaced', async (store) => {
      const deployer = role('Deployer', { description: 'ships things', maxSessionSeconds: 43_200, tags: [{ Key: 'k', Value: 'v' }], path: '/ci/', createdAtMs: T0 + 3 });
      assert.equal(await store.createRole(deployer), true);
      assert.equal(await store.createRole(role('DEPLOYER')), false);
      await store.createRole(role('auditor'));
      assert.deepEqual(await store.getRole(ACCOUNT, 'deployer'), deployer);
      assert.equal(await store.setRoleTrustPolicy(ACCOUNT, 'DEPLOYER', '{"new":true}'), true);
      assert.equal(await store.setRoleTrustPolicy(ACCOUNT, 'absent', '{}'), false);
      await store.setRoleTags(ACCOUNT, 'deployer', []);
      assert.deepEqual(await store.getRole(ACCOUNT, 'Deployer'), { ...deployer, trustPolicy: '{"new":true}', tags: [] });
      assert.deepEqual((await store.listRoles(ACCOUNT, '/', { limit: 10 })).map((r) => r.name), ['auditor', 'Deployer']);
      assert.deepEqual((await store.listRoles(ACCOUNT, '/', { after: 'auditor', limit: 10 })).map((r) => r.name), ['Deployer']);
      assert.deepEqual((await store.listRoles(ACCOUNT, '/ci/', { limit: 10 })).map((r) => r.name), ['Deployer']);
      assert.deepEqual(await store.listRoles(OTHER, '/', { limit: 10 }), []);
      assert.equal(await store.deleteRole(ACCOUNT, 'deployer'), true);
      assert.equal(await store.deleteRole(ACCOUNT, 'deployer'), false);
    });

    // --- managed policies -----------------------------------------------------------------------

    idTest('managed policies: unique ignoring case, round-trip, listed and paged by name', async (store) => {
      const p = policy('PushOnly', { description: 'push', path: '/team/', createdAtMs: T0 + 1, updatedAtMs: T0 + 2 });
      assert.equal(await store.createPolicy(p), true);
      assert.equal(await store.createPolicy(policy('pushonly')), false);
      assert.equal(await store.createPolicy(policy('pushonly', { accountId: OTHER })), true);
      await store.createPolicy(policy('AllowAll'));
      await store.createPolicy(policy('b-read'));
      assert.deepEqual(await store.getPolicy(ACCOUNT, 'PUSHONLY'), p);
      assert.deepEqual(await allPages((pg) => store.listPolicies(ACCOUNT, '/', pg), 2), ['AllowAll', 'b-read', 'PushOnly']);
      assert.deepEqual((await store.listPolicies(ACCOUNT, '/team/', { limit: 10 })).map((x) => x.name), ['PushOnly']);
      assert.equal(await store.deletePolicy(ACCOUNT, 'pushONLY'), true);
      assert.equal(await store.deletePolicy(ACCOUNT, 'pushonly'), false);
      assert.ok(await store.getPolicy(OTHER, 'PushOnly'), 'the other account keeps its own');
    });

    idTest('attachments: idempotent, per principal type and name ignoring case, listed by ARN, counted across accounts', async (store) => {
      const custom = `arn:aws:iam::${ACCOUNT}:policy/PushOnly`;
      await store.attachPolicy(ACCOUNT, 'user', 'Alice', READ_ARN);
      await store.attachPolicy(ACCOUNT, 'user', 'alice', READ_ARN);
      await store.attachPolicy(ACCOUNT, 'user', 'ALICE', custom);
      await store.attachPolicy(ACCOUNT, 'user', 'alice', ADMIN_ARN);
      await store.attachPolicy(ACCOUNT, 'group', 'alice', READ_ARN);
      await store.attachPolicy(ACCOUNT, 'role', 'Deployer', READ_ARN);
      await store.attachPolicy(OTHER, 'user', 'alice', READ_ARN);
      assert.deepEqual(await store.listAttachedPolicies(ACCOUNT, 'user', 'alice'), [custom, ADMIN_ARN, READ_ARN], 'by ARN, byte order');
      assert.deepEqual(await store.listAttachedPolicies(ACCOUNT, 'group', 'ALICE'), [READ_ARN], 'a group of the same name is another principal');
      assert.deepEqual(await store.listAttachedPolicies(ACCOUNT, 'role', 'deployer'), [READ_ARN]);
      assert.deepEqual(await store.listAttachedPolicies(ACCOUNT, 'role', 'absent'), []);
      assert.equal(await store.countPolicyAttachments(READ_ARN), 4, 'users, groups and roles, in every account');
      assert.equal(await store.countPolicyAttachments(custom), 1);
      assert.equal(await store.countPolicyAttachments('arn:aws:iam::aws:policy/Nothing'), 0);
      assert.equal(await store.detachPolicy(ACCOUNT, 'user', 'Alice', READ_ARN), true);
      assert.equal(await store.detachPolicy(ACCOUNT, 'user', 'alice', READ_ARN), false);
      assert.equal(await store.countPolicyAttachments(READ_ARN), 3);
      assert.deepEqual(await store.listAttachedPolicies(ACCOUNT, 'user', 'alice'), [custom, ADMIN_ARN]);
    });

    // --- inline policies ------------------------------------------------------------------------

    idTest('inline policies: created, replaced (one per name ignoring case), deleted, listed by name per principal', async (store) => {
      await store.putInlinePolicy(ACCOUNT, 'user', 'Alice', 'Zeta', '{"v":1}');
      await store.putInlinePolicy(ACCOUNT, 'user', 'alice', 'alpha', '{"v":2}');
      await store.putInlinePolicy(ACCOUNT, 'user', 'alice', 'Mid', '{"v":3}');
      await store.putInlinePolicy(ACCOUNT, 'group', 'alice', 'alpha', '{"group":true}');
      assert.deepEqual(await store.listInlinePolicies(ACCOUNT, 'user', 'ALICE'), [
        { name: 'alpha', document: '{"v":2}' },
        { name: 'Mid', document: '{"v":3}' },
        { name: 'Zeta', document: '{"v":1}' },
      ]);
      await store.putInlinePolicy(ACCOUNT, 'user', 'alice', 'ZETA', '{"v":4}');
      assert.deepEqual(await store.getInlinePolicy(ACCOUNT, 'user', 'alice', 'zeta'), { name: 'ZETA', document: '{"v":4}' }, 'replaced, with the name as last given');
      assert.equal((await store.listInlinePolicies(ACCOUNT, 'user', 'alice')).length, 3, 'replacing adds nothing');
      assert.deepEqual(await store.getInlinePolicy(ACCOUNT, 'group', 'Alice', 'ALPHA'), { name: 'alpha', document: '{"group":true}' });
      assert.equal(await store.getInlinePolicy(ACCOUNT, 'role', 'alice', 'alpha'), undefined);
      assert.equal(await store.getInlinePolicy(OTHER, 'user', 'alice', 'alpha'), undefined);
      assert.equal(await store.deleteInlinePolicy(ACCOUNT, 'user', 'alice', 'MID'), true);
      assert.equal(await store.deleteInlinePolicy(ACCOUNT, 'user', 'alice', 'mid'), false);
      assert.deepEqual((await store.listInlinePolicies(ACCOUNT, 'user', 'alice')).map((p) => p.name), ['alpha', 'ZETA']);
      assert.deepEqual((await store.listInlinePolicies(ACCOUNT, 'group', 'alice')).map((p) => p.name), ['alpha']);
    });

    // --- registry policy ------------------------------------------------------------------------

    idTest('registry policy: absent reads undefined; set, replaced and removed per account', async (store) => {
      assert.equal(await store.getRegistryPolicy(ACCOUNT), undefined);
      await store.setRegistryPolicy(ACCOUNT, '{"v":1}', T0);
      await store.setRegistryPolicy(ACCOUNT, '{"v":2}', T0 + 1);
      assert.equal(await store.getRegistryPolicy(ACCOUNT), '{"v":2}');
      assert.equal(await store.getRegistryPolicy(OTHER), undefined);
      await store.setRegistryPolicy(ACCOUNT, null, T0 + 2);
      assert.equal(await store.getRegistryPolicy(ACCOUNT), undefined);
      await store.setRegistryPolicy(ACCOUNT, null, T0 + 3);
      assert.equal(await store.getRegistryPolicy(ACCOUNT), undefined, 'removing an absent policy is harmless');
    });

    // --- transactions ---------------------------------------------------------------------------

    idTest('identity writes in a MetaStore transaction commit or roll back together', async (store, meta) => {
      const boom = new Error('boom');
      await assert.rejects(
        meta.transaction(async (tx) => {
          assert.equal(await tx.identity.createAccount({ id: '777788889999', alias: null, createdAtMs: T0 }), true);
          await tx.identity.createUser(user('admin', { accountId: '777788889999' }));
          await tx.identity.attachPolicy('777788889999', 'user', 'admin', ADMIN_ARN);
          await tx.identity.createAccessKey(accessKey('admin', { accountId: '777788889999' }));
          assert.ok(await tx.identity.getUser('777788889999', 'admin'), 'the transaction reads its own writes');
          throw boom;
        }),
        (err) => err === boom,
      );
      assert.equal(await store.getAccount('777788889999'), undefined);
      assert.equal(await store.getUser('777788889999', 'admin'), undefined);
      assert.equal(await store.countPolicyAttachments(ADMIN_ARN), 0);

      const key = accessKey('admin', { accountId: '777788889999' });
      await meta.transaction(async (tx) => {
        await tx.identity.createAccount({ id: '777788889999', alias: null, createdAtMs: T0 });
        await tx.identity.createUser(user('admin', { accountId: '777788889999' }));
        await tx.identity.createAccessKey(key);
      });
      assert.equal((await store.getAccessKey(key.id))?.userName, 'admin');
    });
  });
}
