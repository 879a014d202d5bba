import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { Pool } from 'pg';
import { ADMIN } from '../support/auth.ts';
import { aws, awsFails, awsOk, requireAwsCli, type AwsCredentials } from '../support/aws.ts';
import { startServer, type TestServer } from '../support/server.ts';

/**
 * The Secrets Manager API with the real AWS CLI, as an operator sets up the upstream credentials
 * of a pull-through cache rule: create, read, list, rotate by hand (new values), delete and
 * restore; a user allowed to read one secret only; and the values never at rest in plain text,
 * nor in the server's log. The tests share one server and run in order.
 */

const REGION = 'us-east-1';
const run = randomBytes(4).toString('hex');
const HUB = `ecr-pullthroughcache/docker-hub-${run}`;
const QUAY = `ecr-pullthroughcache/quay-${run}`;
const APP = `app/db-${run}`;
const ARN = new RegExp(`^arn:aws:secretsmanager:${REGION}:${ADMIN.accountId}:secret:ecr-pullthroughcache/docker-hub-${run}-[A-Za-z0-9]{6}$`, 'u');

interface State {
  server: TestServer;
  hubArn: string;
  quayArn: string;
  /** Every value the tests stored: none may be at rest in plain text or in the log. */
  values: string[];
}

const s = {} as State;

function value(label: string): string {
  const v = JSON.stringify({ username: `u-${label}`, accessToken: `tok-${label}-${randomBytes(12).toString('hex')}` });
  s.values.push(v);
  return v;
}

const sm = (creds: AwsCredentials, args: string[]) => aws(s.server, creds, ['secretsmanager', ...args]);
const smOk = (args: string[]) => awsOk(s.server, ADMIN, ['secretsmanager', ...args]);

/** Within a minute of now: the CLI turned the epoch seconds of AWS JSON into an ISO date. */
function assertRecent(date: unknown, offsetMs = 0): void {
  assert.equal(typeof date, 'string');
  const ms = Date.parse(date as string);
  assert.ok(Math.abs(ms - (Date.now() + offsetMs)) < 60_000, `${String(date)} is not about ${new Date(Date.now() + offsetMs).toISOString()}`);
}

/** Every sealed value stored, as text: the SQLite file and its WAL, or the PostgreSQL rows. */
async function atRest(server: TestServer): Promise<string> {
  const url = server.storeEnv['BERTH_METADATA_URL'];
  if (url?.startsWith('postgres')) {
    const pool = new Pool({ connectionString: url, max: 1 });
    try {
      const { rows } = await pool.query<{ sealed: string }>('select sealed from secret_versions');
      assert.ok(rows.length > 0);
      for (const r of rows) assert.match(r.sealed, /^v1:[A-Za-z0-9+/=]+$/u, 'sealed');
      const secrets = await pool.query('select * from secrets');
      const audit = await pool.query('select * from audit_events');
      return JSON.stringify([rows, secrets.rows, audit.rows]);
    } finally {
      await pool.end();
    }
  }
  const db = path.join(server.dataDir, 'metadata.db');
  const files = await Promise.all([db, `${db}-wal`].map((f) => readFile(f).catch(() => Buffer.alloc(0))));
  return Buffer.concat(files).toString('latin1');
}

describe('Secrets Manager with the AWS CLI', () => {
  before(async () => {
    requireAwsCli();
    s.values = [];
    s.server = await startServer();
  });
  after(() => s.server?.close());

  test('create-secret, get-secret-value and describe-secret', async () => {
    const hub = value('hub-1');
    const created = await smOk(['create-secret', '--name', HUB, '--secret-string', hub, '--description', 'Docker Hub for the cache']);
    assert.match(created.json.ARN, ARN);
    assert.equal(created.json.Name, HUB);
    assert.match(created.json.VersionId, /^[0-9a-f-]{36}$/u, 'the CLI’s ClientRequestToken');
    s.hubArn = created.json.ARN;

    const got = await smOk(['get-secret-value', '--secret-id', HUB]);
    assert.equal(got.json.SecretString, hub);
    assert.equal(got.json.ARN, s.hubArn);
    assert.equal(got.json.VersionId, created.json.VersionId);
    assert.deepEqual(got.json.VersionStages, ['AWSCURRENT']);
    assertRecent(got.json.CreatedDate);
    // By full ARN and by ARN without its suffix.
    assert.equal((await smOk(['get-secret-value', '--secret-id', s.hubArn])).json.SecretString, hub);
    assert.equal((await smOk(['get-secret-value', '--secret-id', s.hubArn.slice(0, -7)])).json.SecretString, hub);

    const described = await smOk(['describe-secret', '--secret-id', s.hubArn]);
    assert.equal(described.json.Name, HUB);
    assert.equal(described.json.Description, 'Docker Hub for the cache');
    assert.deepEqual(described.json.VersionIdsToStages, { [created.json.VersionId]: ['AWSCURRENT'] });
    assertRecent(described.json.CreatedDate);
    assertRecent(described.json.LastChangedDate);
    assert.equal(described.json.DeletedDate, undefined);
    assert.equal(described.json.SecretString, undefined, 'no value in DescribeSecret');

    const again = await awsFails(s.server, ADMIN, ['secretsmanager', 'create-secret', '--name', HUB, '--secret-string', value('dup')]);
    assert.equal(again.errorCode, 'ResourceExistsException');
    const badName = await awsFails(s.server, ADMIN, ['secretsmanager', 'create-secret', '--name', 'no spaces please', '--secret-string', 'x']);
    assert.equal(badName.errorCode, 'InvalidParameterException');
  });

  test('a binary secret, and list-secrets filtered by name prefix', async () => {
    const file = path.join(s.server.dataDir, `binary-${run}`);
    const bytes = Buffer.concat([Buffer.from([0, 255, 1]), randomBytes(16)]);
    await writeFile(file, bytes);
    s.values.push(bytes.toString('base64'));
    const quay = await smOk(['create-secret', '--name', QUAY, '--secret-binary', `fileb://${file}`]);
    s.quayArn = quay.json.ARN;
    const got = await smOk(['get-secret-value', '--secret-id', QUAY]);
    assert.equal(got.json.SecretBinary, bytes.toString('base64'));
    assert.equal(got.json.SecretString, undefined);
    await smOk(['create-secret', '--name', APP, '--secret-string', value('app')]);

    const listed = await smOk(['list-secrets', '--filters', 'Key=name,Values=ecr-pullthroughcache/']);
    const names = (listed.json.SecretList as Array<{ Name: string }>).map((e) => e.Name);
    assert.deepEqual(names, [HUB, QUAY]);
    const hub = (listed.json.SecretList as Array<Record<string, any>>)[0]!;
    assert.equal(hub['ARN'], s.hubArn);
    assert.deepEqual(Object.values(hub['SecretVersionsToStages']), [['AWSCURRENT']]);
    assertRecent(hub['CreatedDate']);

    // The CLI pages through with NextToken itself: one secret a page.
    const paged = await smOk(['list-secrets', '--page-size', '1', '--filters', `Key=name,Values=${HUB},${APP}`]);
    assert.deepEqual((paged.json.SecretList as Array<{ Name: string }>).map((e) => e.Name), [APP, HUB]);
    const one = await smOk(['list-secrets', '--max-results', '1', '--no-paginate']);
    assert.equal(one.json.SecretList.length, 1);
    assert.ok(one.json.NextToken);
  });

  test('put-secret-value and update-secret move AWSCURRENT and AWSPREVIOUS', async () => {
    const first = (await smOk(['get-secret-value', '--secret-id', HUB])).json;
    const second = value('hub-2');
    const put = await smOk(['put-secret-value', '--secret-id', HUB, '--secret-string', second]);
    assert.deepEqual(put.json.VersionStages, ['AWSCURRENT']);
    assert.equal(put.json.ARN, s.hubArn);
    assert.equal((await smOk(['get-secret-value', '--secret-id', HUB])).json.SecretString, second);
    const previous = await smOk(['get-secret-value', '--secret-id', HUB, '--version-stage', 'AWSPREVIOUS']);
    assert.equal(previous.json.SecretString, first.SecretString);
    assert.equal(previous.json.VersionId, first.VersionId);
    assert.equal((await smOk(['get-secret-value', '--secret-id', HUB, '--version-id', first.VersionId])).json.SecretString, first.SecretString);

    // A token is a version: the same token again with the same value is a retry, with another one a conflict.
    const token = `cccccccc-cccc-4ccc-8ccc-${randomBytes(6).toString('hex')}`;
    const third = value('hub-3');
    await smOk(['put-secret-value', '--secret-id', HUB, '--secret-string', third, '--client-request-token', token]);
    assert.equal((await smOk(['put-secret-value', '--secret-id', HUB, '--secret-string', third, '--client-request-token', token])).json.VersionId, token);
    const conflict = await awsFails(s.server, ADMIN, ['secretsmanager', 'put-secret-value', '--secret-id', HUB, '--secret-string', value('x'), '--client-request-token', token]);
    assert.equal(conflict.errorCode, 'ResourceExistsException');

    const fourth = value('hub-4');
    const updated = await smOk(['update-secret', '--secret-id', s.hubArn, '--description', 'rotated by hand', '--secret-string', fourth]);
    assert.equal(updated.json.ARN, s.hubArn);
    assert.ok(updated.json.VersionId);
    assert.equal((await smOk(['get-secret-value', '--secret-id', HUB])).json.SecretString, fourth);
    const described = await smOk(['describe-secret', '--secret-id', HUB]);
    assert.equal(described.json.Description, 'rotated by hand');
    assert.deepEqual(described.json.VersionIdsToStages, { [token]: ['AWSPREVIOUS'], [updated.json.VersionId]: ['AWSCURRENT'] });
    // A date, as AWS keeps it: midnight UTC of the day of the last read.
    const midnight = Math.floor(Date.now() / 86_400_000) * 86_400_000;
    assert.ok([midnight, midnight - 86_400_000].includes(Date.parse(described.json.LastAccessedDate)), described.json.LastAccessedDate);
  });

  test('delete-secret with a recovery window, restore-secret, and a forced deletion', async () => {
    const deleted = await smOk(['delete-secret', '--secret-id', HUB, '--recovery-window-in-days', '7']);
    assert.equal(deleted.json.ARN, s.hubArn);
    assertRecent(deleted.json.DeletionDate, 7 * 86_400_000);
    const refused = await awsFails(s.server, ADMIN, ['secretsmanager', 'get-secret-value', '--secret-id', HUB]);
    assert.equal(refused.errorCode, 'InvalidRequestException');
    assertRecent((await smOk(['describe-secret', '--secret-id', HUB])).json.DeletedDate);
    const names = async (args: string[]) => ((await smOk(['list-secrets', ...args])).json.SecretList as Array<{ Name: string }>).map((e) => e.Name);
    assert.deepEqual(await names(['--filters', 'Key=name,Values=ecr-pullthroughcache/']), [QUAY]);
    assert.deepEqual(await names(['--include-planned-deletion', '--filters', 'Key=name,Values=ecr-pullthroughcache/']), [HUB, QUAY]);
    const window = await awsFails(s.server, ADMIN, ['secretsmanager', 'delete-secret', '--secret-id', QUAY, '--recovery-window-in-days', '3']);
    assert.equal(window.errorCode, 'InvalidParameterException');

    const restored = await smOk(['restore-secret', '--secret-id', HUB]);
    assert.equal(restored.json.ARN, s.hubArn);
    assert.ok((await smOk(['get-secret-value', '--secret-id', HUB])).json.SecretString);

    await smOk(['delete-secret', '--secret-id', HUB]);
    const forced = await smOk(['delete-secret', '--secret-id', HUB, '--force-delete-without-recovery']);
    assert.equal(forced.json.Name, HUB);
    const gone = await awsFails(s.server, ADMIN, ['secretsmanager', 'describe-secret', '--secret-id', HUB]);
    assert.equal(gone.errorCode, 'ResourceNotFoundException');
    // The name is free at once; the new secret has a new ARN.
    const again = await smOk(['create-secret', '--name', HUB, '--secret-string', value('hub-new')]);
    assert.notEqual(again.json.ARN, s.hubArn);
    s.hubArn = again.json.ARN;
  });

  test('a user allowed GetSecretValue on one secret is denied everything else', async () => {
    const user = `puller-${run}`;
    await awsOk(s.server, ADMIN, ['iam', 'create-user', '--user-name', user]);
    const policy = { Version: '2012-10-17', Statement: [{ Effect: 'Allow', Action: 'secretsmanager:GetSecretValue', Resource: s.hubArn }] };
    await awsOk(s.server, ADMIN, ['iam', 'put-user-policy', '--user-name', user, '--policy-name', 'read-hub', '--policy-document', JSON.stringify(policy)]);
    const key = (await awsOk(s.server, ADMIN, ['iam', 'create-access-key', '--user-name', user])).json.AccessKey;
    const creds: AwsCredentials = { accessKeyId: key.AccessKeyId, secretAccessKey: key.SecretAccessKey };

    const got = await sm(creds, ['get-secret-value', '--secret-id', HUB]);
    assert.equal(got.code, 0, got.stderr);
    assert.ok(got.json.SecretString);
    for (const args of [
      ['get-secret-value', '--secret-id', QUAY],
      ['get-secret-value', '--secret-id', `ecr-pullthroughcache/never-${run}`],
      ['describe-secret', '--secret-id', HUB],
      ['put-secret-value', '--secret-id', HUB, '--secret-string', 'stolen'],
      ['update-secret', '--secret-id', HUB, '--description', 'stolen'],
      ['delete-secret', '--secret-id', HUB, '--force-delete-without-recovery'],
      ['list-secrets'],
      ['create-secret', '--name', `ecr-pullthroughcache/mine-${run}`, '--secret-string', 'x'],
    ]) {
      const r = await sm(creds, args);
      assert.notEqual(r.code, 0, `${args.join(' ')} succeeded`);
      assert.equal(r.errorCode, 'AccessDeniedException', `${args.join(' ')}: ${r.stderr}`);
      assert.match(r.stderr, new RegExp(`not authorized to perform: secretsmanager:${args[0]!.split('-').map((w) => w[0]!.toUpperCase() + w.slice(1)).join('')}`, 'u'));
    }
    assert.ok((await smOk(['get-secret-value', '--secret-id', HUB])).json.SecretString, 'nothing changed');
  });

  test('values are sealed at rest and never logged', async () => {
    const stored = await atRest(s.server);
    assert.ok(stored.includes(QUAY), 'the names are there to be seen: the check reads the right place');
    for (const v of s.values) {
      assert.equal(stored.includes(v), false, 'a value is in the metadata store in plain text');
      const token = /"accessToken":"([^"]+)"/u.exec(v)?.[1];
      if (token) assert.equal(stored.includes(token), false, 'a token is in the metadata store in plain text');
    }
    const log = JSON.stringify(s.server.logs);
    for (const v of s.values) assert.equal(log.includes(JSON.stringify(v).slice(1, -1)) || log.includes(v), false, 'a value is in the log');
    assert.ok(s.server.logs.some((l) => l['operation'] === 'secretsmanager:GetSecretValue'), 'the requests were logged');
  });
});
