import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { sql, type Kysely } from 'kysely';
import { auditLookupKeys, type AuditEvent, type AuditLookup, type StoredAuditEvent } from '../../src/store/meta/audit-store.ts';
import type { MetaStore } from '../../src/store/meta/meta-store.ts';
import { storeTest, T0, type MetaStoreHarness } from './harness.ts';

const ACCOUNT = '111122223333';
const OTHER = '444455556666';
const REPO = (name: string, account = ACCOUNT) => `arn:aws:ecr:us-east-1:${account}:repository/${name}`;
const USER = (name: string, account = ACCOUNT) => `arn:aws:iam::${account}:user/${name}`;

/** A database at the migrations before 0015-audit-lookup, for the test of its backfill. */
export interface LegacyAuditHarness {
  /** Kysely over the database, which nothing has migrated yet. */
  db: Kysely<any>;
  /** Runs the migrations up to and including `name`. */
  migrateTo(name: string): Promise<void>;
  /** Closes `db` and opens the metadata store on the database (which migrates it to the latest). */
  openStore(): Promise<MetaStore>;
  cleanup(): Promise<void>;
}

let requests = 0;
function event(atOffsetMs: number, overrides: Partial<AuditEvent> = {}): AuditEvent {
  return {
    atMs: T0 + atOffsetMs,
    requestId: `req-${++requests}`,
    plane: 'oci',
    accountId: ACCOUNT,
    principal: USER('ci'),
    accessKeyId: 'AKIAAAAAAAAAAAAAAAA1',
    action: 'ecr:BatchGetImage',
    resource: REPO('app/web'),
    decision: 'allow',
    policy: 'arn:aws:iam::111122223333:policy/ci#Pull',
    sourceIp: '10.0.0.7',
    userAgent: 'docker/27.0',
    errorCode: null,
    ...overrides,
  };
}

/** Every page of a lookup, following `after` from each page's last record. */
async function allPages(store: MetaStore, query: Omit<AuditLookup, 'limit' | 'after'>, limit: number): Promise<StoredAuditEvent[][]> {
  const pages: StoredAuditEvent[][] = [];
  let after: AuditLookup['after'];
  for (;;) {
    const page = await store.audit.lookup({ ...query, limit, after });
    if (page.length === 0) return pages;
    pages.push(page);
    const last = page.at(-1)!;
    after = { atMs: last.atMs, id: last.id };
  }
}

const ids = (rows: StoredAuditEvent[]) => rows.map((r) => r.requestId);

/**
 * The audit trail (AuditStore, src/store/meta/audit-store.ts) on every MetaStore driver: records
 * round-trip and are exported oldest first; lookups return an account's records newest first,
 * filtered by every key given, in pages that hold each record once; and migration
 * 0015-audit-lookup gives the records written before it their keys.
 */
export function auditStoreContract(name: string, open: () => Promise<MetaStoreHarness>, openLegacy?: () => Promise<LegacyAuditHarness>): void {
  const auditTest = storeTest(open);

  describe(`AuditStore contract: ${name}`, () => {
    auditTest('append and list: every field round-trips, ids increase in append order, listed oldest first and filtered', async (store) => {
      await store.audit.append([]);
      const events = Array.from({ length: 230 }, (_, i) => event(i));
      events[3] = event(3, { accountId: null, principal: null, accessKeyId: 'AKIAUNKNOWN000000000', resource: null, policy: null, userAgent: null, decision: 'unauthenticated', errorCode: 'InvalidClientTokenId', plane: 'ecr', action: 'ecr:DescribeImages' });
      events[4] = event(4, { accountId: OTHER });
      await store.audit.append(events.slice(0, 150));
      await store.audit.append(events.slice(150));
      const all = await store.audit.list({ limit: 1000 });
      assert.equal(all.length, 230);
      for (const [i, e] of all.entries()) {
        assert.ok(Number.isSafeInteger(e.id));
        if (i > 0) assert.ok(e.id > all[i - 1]!.id, 'ids increase in append order');
        const { id: _id, ...fields } = e;
        assert.deepEqual(fields, events[i], `record ${i} round-trips`);
      }
      const at = (rows: StoredAuditEvent[]) => rows.map((r) => r.atMs - T0);
      assert.deepEqual(at(await store.audit.list({ sinceMs: T0 + 2, untilMs: T0 + 6, limit: 10 })), [2, 3, 4, 5]);
      assert.deepEqual(at(await store.audit.list({ accountId: OTHER, limit: 10 })), [4]);
      assert.deepEqual(at(await store.audit.list({ afterId: all[225]!.id, limit: 10 })), [226, 227, 228, 229]);
      assert.deepEqual(at(await store.audit.list({ afterId: all[0]!.id, accountId: ACCOUNT, limit: 3 })), [1, 2, 5]);
    });

    auditTest('append in a transaction that fails writes nothing', async (store) => {
      const boom = new Error('boom');
      await assert.rejects(
        store.transaction(async (tx) => {
          await tx.audit.append([event(1), event(2)]);
          assert.equal((await tx.audit.lookup({ accountId: ACCOUNT, limit: 10 })).length, 2, 'the transaction reads its own records');
          throw boom;
        }),
        (err) => err === boom,
      );
      assert.deepEqual(await store.audit.list({ limit: 10 }), []);
    });

    auditTest('lookup: one account, newest first by time then id, start and end inclusive, limit', async (store) => {
      // Written out of time order (another node's batch arrives late), with ties in time.
      const a = event(100, { requestId: 'a' });
      const b = event(300, { requestId: 'b' });
      const c = event(200, { requestId: 'c' });
      const d = event(200, { requestId: 'd' });
      const x = event(250, { requestId: 'x', accountId: OTHER, resource: REPO('app/web', OTHER) });
      const n = event(260, { requestId: 'n', accountId: null, principal: null, decision: 'unauthenticated' });
      await store.audit.append([a, b, c, x, n]);
      await store.audit.append([d]);
      const look = async (q: Partial<AuditLookup> = {}) => ids(await store.audit.lookup({ accountId: ACCOUNT, limit: 50, ...q }));
      assert.deepEqual(await look(), ['b', 'd', 'c', 'a'], 'newest first; at one instant, the later written first');
      assert.deepEqual(await look({ accountId: OTHER }), ['x']);
      assert.deepEqual(await look({ startMs: T0 + 200 }), ['b', 'd', 'c']);
      assert.deepEqual(await look({ endMs: T0 + 200 }), ['d', 'c', 'a']);
      assert.deepEqual(await look({ startMs: T0 + 200, endMs: T0 + 200 }), ['d', 'c']);
      assert.deepEqual(await look({ startMs: T0 + 301 }), []);
      assert.deepEqual(await look({ limit: 2 }), ['b', 'd']);
      const [, dRow] = await store.audit.lookup({ accountId: ACCOUNT, limit: 2 });
      assert.deepEqual(await look({ after: { atMs: dRow!.atMs, id: dRow!.id } }), ['c', 'a'], 'after a record: the rest, its tie included');
    });

    test('lookup keys: derived from each record as CloudTrail names them', () => {
      const cases: Array<[Partial<AuditEvent>, Partial<ReturnType<typeof auditLookupKeys>>]> = [
        [{ action: 'ecr:PutImage', resource: REPO('team/app') }, { eventName: 'PutImage', eventSource: 'ecr.amazonaws.com', userName: 'ci', resourceName: 'team/app', resourceType: 'AWS::ECR::Repository', readOnly: false }],
        [{ plane: 'lifecycle', principal: 'berth:lifecycle', action: 'ecr:BatchDeleteImage', resource: `${REPO('team/app')}@sha256:${'a'.repeat(64)}` }, { eventName: 'BatchDeleteImage', userName: 'berth:lifecycle', resourceName: 'team/app', readOnly: false }],
        [{ plane: 'ecr', principal: `arn:aws:sts::${ACCOUNT}:assumed-role/deployer/build-42`, action: 'ecr:DescribeImages' }, { userName: 'build-42', readOnly: true }],
        [{ plane: 'iam', principal: `arn:aws:iam::${ACCOUNT}:root`, action: 'iam:CreateUser', resource: `arn:aws:iam::${ACCOUNT}:user/teams/alice` }, { eventSource: 'iam.amazonaws.com', eventName: 'CreateUser', userName: 'root', resourceName: 'alice', resourceType: 'AWS::IAM::User' }],
        [{ plane: 'sts', principal: USER('deploy/bob'), action: 'sts:AssumeRole', resource: `arn:aws:iam::${ACCOUNT}:role/deployer` }, { eventSource: 'sts.amazonaws.com', userName: 'bob', resourceName: 'deployer', resourceType: 'AWS::IAM::Role', readOnly: true }],
        [{ plane: 'ecr', action: 'ecr:GetAuthorizationToken', resource: '*' }, { eventName: 'GetAuthorizationToken', resourceName: null, resourceType: null, readOnly: true }],
        [{ plane: 'oci', principal: null, action: 'GET /v2/app/web/manifests/latest', resource: null, decision: 'unauthenticated' }, { eventName: 'GET /v2/app/web/manifests/latest', eventSource: 'ecr.amazonaws.com', userName: null, readOnly: true }],
        [{ plane: 'console', action: 'signin:ConsoleLogin', resource: USER('ci') }, { eventName: 'ConsoleLogin', eventSource: 'signin.amazonaws.com', resourceName: 'ci', readOnly: false }],
      ];
      for (const [overrides, expected] of cases) {
        const keys = auditLookupKeys({ ...event(0), ...overrides });
        for (const [k, v] of Object.entries(expected)) assert.equal(keys[k as keyof typeof keys], v, `${k} of ${JSON.stringify(overrides)}`);
      }
    });

    auditTest('lookup: each key filters, several keys all match, another account’s records stay out', async (store) => {
      const alice = USER('alice');
      const bob = `arn:aws:sts::${ACCOUNT}:assumed-role/deployer/bob`;
      await store.audit.append([
        event(1, { requestId: 'alice-push-web', principal: alice, accessKeyId: 'AKIAALICE00000000000', action: 'ecr:PutImage', resource: REPO('app/web') }),
        event(2, { requestId: 'alice-pull-web', principal: alice, accessKeyId: 'AKIAALICE00000000000', action: 'ecr:BatchGetImage', resource: REPO('app/web') }),
        event(3, { requestId: 'bob-push-api', principal: bob, accessKeyId: 'ASIABOB0000000000000', action: 'ecr:PutImage', resource: REPO('app/api') }),
        event(4, { requestId: 'bob-delete-web', principal: bob, accessKeyId: 'ASIABOB0000000000000', plane: 'ecr', action: 'ecr:BatchDeleteImage', resource: REPO('app/web') }),
        event(5, { requestId: 'alice-create-user', principal: alice, accessKeyId: 'AKIAALICE00000000000', plane: 'iam', action: 'iam:CreateUser', resource: USER('carol') }),
        event(6, { requestId: 'other-alice-push-web', accountId: OTHER, principal: USER('alice', OTHER), accessKeyId: 'AKIAALICE00000000000', action: 'ecr:PutImage', resource: REPO('app/web', OTHER) }),
      ]);
      const look = async (q: Partial<AuditLookup>) => ids(await store.audit.lookup({ accountId: ACCOUNT, limit: 50, ...q }));
      assert.deepEqual(await look({ userName: 'alice' }), ['alice-create-user', 'alice-pull-web', 'alice-push-web']);
      assert.deepEqual(await look({ userName: 'bob' }), ['bob-delete-web', 'bob-push-api']);
      assert.deepEqual(await look({ eventName: 'PutImage' }), ['bob-push-api', 'alice-push-web']);
      assert.deepEqual(await look({ eventSource: 'iam.amazonaws.com' }), ['alice-create-user']);
      assert.deepEqual(await look({ resourceName: 'app/web' }), ['bob-delete-web', 'alice-pull-web', 'alice-push-web']);
      assert.deepEqual(await look({ resourceType: 'AWS::IAM::User' }), ['alice-create-user']);
      assert.deepEqual(await look({ accessKeyId: 'ASIABOB0000000000000' }), ['bob-delete-web', 'bob-push-api']);
      assert.deepEqual(await look({ readOnly: true }), ['alice-pull-web']);
      assert.deepEqual(await look({ readOnly: false, userName: 'alice' }), ['alice-create-user', 'alice-push-web']);
      assert.deepEqual(await look({ userName: 'alice', eventName: 'PutImage', resourceName: 'app/web' }), ['alice-push-web']);
      assert.deepEqual(await look({ userName: 'bob', resourceName: 'app/web', eventSource: 'ecr.amazonaws.com' }), ['bob-delete-web']);
      assert.deepEqual(await look({ userName: 'alice', resourceName: 'app/api' }), []);
      assert.deepEqual(await look({ userName: 'Alice' }), [], 'names match exactly');
      const [pushed] = await store.audit.lookup({ accountId: ACCOUNT, userName: 'alice', eventName: 'PutImage', limit: 1 });
      assert.deepEqual(await look({ eventId: pushed!.id }), ['alice-push-web']);
      assert.deepEqual(await look({ eventId: pushed!.id, userName: 'bob' }), []);
      const [foreign] = await store.audit.lookup({ accountId: OTHER, limit: 1 });
      assert.deepEqual(await look({ eventId: foreign!.id }), [], 'another account’s record, by its id');
      assert.deepEqual(ids(await store.audit.lookup({ accountId: OTHER, userName: 'alice', limit: 10 })), ['other-alice-push-web']);
    });

    auditTest('lookup pages: every record exactly once, ties in time across page boundaries included, filtered or not', async (store) => {
      // 157 records over 40 instants, two users, appended in batches out of time order.
      const events = Array.from({ length: 157 }, (_, i) => event((i * 7) % 40, { requestId: `r${i}`, principal: USER(i % 3 === 0 ? 'alice' : 'bob') }));
      for (let i = 0; i < events.length; i += 50) await store.audit.append(events.slice(i, i + 50));
      for (const [query, expected] of [
        [{}, 157],
        [{ userName: 'alice' }, 53],
        [{ userName: 'bob', startMs: T0 + 10, endMs: T0 + 29 }, events.filter((e, i) => i % 3 !== 0 && e.atMs >= T0 + 10 && e.atMs <= T0 + 29).length],
      ] as const) {
        for (const limit of [1, 7, 50]) {
          const pages = await allPages(store, { accountId: ACCOUNT, ...query }, limit);
          const rows = pages.flat();
          assert.equal(rows.length, expected, `${JSON.stringify(query)} by ${limit}`);
          assert.equal(new Set(rows.map((r) => r.id)).size, rows.length, 'no record twice');
          for (let i = 1; i < rows.length; i++) {
            const [p, r] = [rows[i - 1]!, rows[i]!];
            assert.ok(p.atMs > r.atMs || (p.atMs === r.atMs && p.id > r.id), 'newest first, by time then id');
          }
          assert.ok(pages.slice(0, -1).every((p) => p.length === limit), 'full pages but the last');
        }
      }
    });

    if (openLegacy) {
      test('migration 0015-audit-lookup: records written before it get their keys, and lookups find them', async () => {
        const legacy = await openLegacy();
        try {
          await legacy.migrateTo('0014-login-profiles');
          const before = [
            event(1, { requestId: 'old-push', action: 'ecr:PutImage', resource: REPO('app/web') }),
            event(2, { requestId: 'old-expiry', plane: 'lifecycle', principal: 'berth:lifecycle', accessKeyId: null, action: 'ecr:BatchDeleteImage', resource: `${REPO('app/web')}@sha256:${'b'.repeat(64)}` }),
            event(3, { requestId: 'old-role', plane: 'sts', principal: `arn:aws:sts::${ACCOUNT}:assumed-role/deployer/s1`, action: 'sts:AssumeRole', resource: `arn:aws:iam::${ACCOUNT}:role/deployer` }),
            event(4, { requestId: 'old-refused', plane: 'ecr', accountId: null, principal: null, action: 'ecr:DescribeImages', resource: null, decision: 'unauthenticated', errorCode: 'InvalidClientTokenId' }),
            event(5, { requestId: 'old-token', plane: 'ecr', action: 'ecr:GetAuthorizationToken', resource: '*' }),
          ];
          for (const e of before) {
            await sql`insert into audit_events (at, request_id, plane, account_id, principal, access_key_id, action, resource, decision, policy, source_ip, user_agent, error_code)
              values (${e.atMs}, ${e.requestId}, ${e.plane}, ${e.accountId}, ${e.principal}, ${e.accessKeyId}, ${e.action}, ${e.resource}, ${e.decision}, ${e.policy}, ${e.sourceIp}, ${e.userAgent}, ${e.errorCode})`.execute(legacy.db);
          }
          const store = await legacy.openStore();
          await store.audit.append([event(6, { requestId: 'new-push', action: 'ecr:PutImage', resource: REPO('app/web') })]);
          const look = async (q: Partial<AuditLookup>) => ids(await store.audit.lookup({ accountId: ACCOUNT, limit: 50, ...q }));
          assert.deepEqual(await look({}), ['new-push', 'old-token', 'old-role', 'old-expiry', 'old-push']);
          assert.deepEqual(await look({ eventName: 'PutImage' }), ['new-push', 'old-push']);
          assert.deepEqual(await look({ resourceName: 'app/web' }), ['new-push', 'old-expiry', 'old-push']);
          assert.deepEqual(await look({ userName: 'berth:lifecycle' }), ['old-expiry']);
          assert.deepEqual(await look({ userName: 's1', resourceType: 'AWS::IAM::Role', readOnly: true }), ['old-role']);
          assert.deepEqual(await look({ eventSource: 'ecr.amazonaws.com', readOnly: true }), ['old-token']);
          const listed = await store.audit.list({ limit: 10 });
          assert.deepEqual(listed.slice(0, before.length).map(({ id: _id, ...e }) => e), before, 'the records themselves are unchanged');
        } finally {
          await legacy.cleanup();
        }
      });
    }
  });
}
