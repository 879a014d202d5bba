// The Query codec against the real clients: requests come from @aws-sdk/client-iam and client-sts
// (and the AWS CLI), responses are read back by their parsers, so both directions are checked
// against AWS's own code rather than against this codec.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import {
  IAMClient,
  CreateUserCommand,
  CreateRoleCommand,
  AttachUserPolicyCommand,
  ListUsersCommand,
  UpdateAccessKeyCommand,
  CreateAccessKeyCommand,
  ListAccessKeysCommand,
  DeleteUserCommand,
  GetUserCommand,
  NoSuchEntityException,
  EntityAlreadyExistsException,
} from '@aws-sdk/client-iam';
import { STSClient, AssumeRoleCommand, GetCallerIdentityCommand } from '@aws-sdk/client-sts';
import { loadModel } from './model.ts';
import type { ServiceModel } from './model.ts';
import { ProtocolError, parseQueryRequest, queryErrorStatus, renderQueryError, renderQueryResponse } from './query.ts';

const iamModel = loadModel('iam');
const stsModel = loadModel('sts');

interface Seen {
  model: ServiceModel;
  operation: string;
  input: Record<string, unknown>;
}

/** What the stub answers: an output to render, or an error code and message. */
type Reply = { output: Record<string, unknown> } | { error: string; message: string };

let server: http.Server;
let endpoint: string;
let reply: Reply = { output: {} };
let seen: Seen | undefined;

// One stub for IAM and STS: it tells them apart by the credential scope's service, as a real
// front end would by host, parses with parseQueryRequest and answers with the rendered reply.
before(async () => {
  server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      const model = /\/sts\/aws4_request/u.test(req.headers.authorization ?? '') ? stsModel : iamModel;
      const requestId = 'c0ffee00-0000-4000-8000-000000000001';
      const params = req.method === 'GET'
        ? new URL(req.url ?? '/', 'http://stub').searchParams
        : new URLSearchParams(Buffer.concat(chunks).toString('utf8'));
      let status = 200;
      let body: string;
      try {
        const { operation, input } = parseQueryRequest(model, params);
        seen = { model, operation, input };
        if ('error' in reply) {
          status = queryErrorStatus(model, reply.error);
          body = renderQueryError(model, reply.error, reply.message, requestId);
        } else {
          body = renderQueryResponse(model, operation, reply.output, requestId);
        }
      } catch (err) {
        if (!(err instanceof ProtocolError)) throw err;
        status = err.status;
        body = renderQueryError(model, err.code, err.message, requestId);
      }
      res.writeHead(status, { 'content-type': 'text/xml', 'x-amzn-requestid': requestId });
      res.end(body);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  assert.ok(address !== null && typeof address === 'object');
  endpoint = `http://127.0.0.1:${address.port}`;
});

after(() => {
  server.closeAllConnections();
  server.close();
});

const clientConfig = () => ({
  endpoint,
  region: 'us-east-1',
  credentials: { accessKeyId: 'AKIAIOSFODNN7EXAMPLE', secretAccessKey: 'wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY' },
  maxAttempts: 1,
});

function withoutMetadata<T extends { $metadata?: unknown }>(out: T): Omit<T, '$metadata'> {
  const { $metadata: _, ...rest } = out;
  return rest;
}

async function iamCall<T>(send: (iam: IAMClient) => Promise<T>, output: Record<string, unknown> = {}): Promise<T> {
  reply = { output };
  seen = undefined;
  const iam = new IAMClient(clientConfig());
  try {
    return await send(iam);
  } finally {
    iam.destroy();
  }
}

const created = new Date('2024-03-01T10:20:30Z');
const user = {
  Path: "/r&d/<core>/'quoted'/",
  UserName: 'alice',
  UserId: 'AIDAJQABLZS4A3QDU576Q',
  Arn: 'arn:aws:iam::123456789012:user/team/alice',
  CreateDate: created,
  Tags: [{ Key: 'dept', Value: 'R D/core=1' }],
};

test('CreateUser with Tags: the SDK request parses to its input, the rendered User parses back', async () => {
  const input = { UserName: 'alice', Path: "/r&d/<core>/'quoted'/", Tags: [{ Key: 'dept', Value: 'R D/core=1' }, { Key: 'cost center', Value: '42' }] };
  const out = await iamCall((iam) => iam.send(new CreateUserCommand(input)), { User: user });
  assert.equal(seen?.operation, 'CreateUser');
  assert.deepEqual(seen?.input, input);
  assert.deepEqual(withoutMetadata(out), { User: user });
  assert.ok(out.User?.CreateDate instanceof Date);
});

test('an empty list is sent as a bare key and parses to []', async () => {
  await iamCall((iam) => iam.send(new CreateUserCommand({ UserName: 'bob', Tags: [] })), { User: { ...user, Tags: undefined } });
  assert.deepEqual(seen?.input, { UserName: 'bob', Tags: [] });
});

test('CreateRole: a JSON policy document and a CR LF description survive both ways', async () => {
  const policy = JSON.stringify({
    Version: '2012-10-17',
    Statement: [{ Effect: 'Allow', Principal: { AWS: 'arn:aws:iam::123456789012:root' }, Action: 'sts:AssumeRole', Condition: { StringEquals: { 'sts:ExternalId': 'a+b=c&d' } } }],
  }, null, 2);
  const description = 'CI deploys\r\n\tfrom main & tags <v*>';
  const input = { RoleName: 'deployer', AssumeRolePolicyDocument: policy, Description: description, MaxSessionDuration: 7200 };
  // IAM returns policy documents URL-encoded (RFC 3986); the codec writes whatever it is given.
  const role = {
    Path: '/', RoleName: 'deployer', RoleId: 'AROAEXAMPLEID1234567', Arn: 'arn:aws:iam::123456789012:role/deployer', CreateDate: created,
    AssumeRolePolicyDocument: encodeURIComponent(policy), Description: description, MaxSessionDuration: 7200,
  };
  const out = await iamCall((iam) => iam.send(new CreateRoleCommand(input)), { Role: role });
  assert.deepEqual(seen?.input, input);
  assert.deepEqual(withoutMetadata(out), { Role: role });
});

test('AttachUserPolicy parses to its input; an operation without output renders no Result', async () => {
  const input = { UserName: 'alice', PolicyArn: 'arn:aws:iam::aws:policy/AmazonEC2ContainerRegistryReadOnly' };
  const out = await iamCall((iam) => iam.send(new AttachUserPolicyCommand(input)));
  assert.deepEqual(seen?.input, input);
  assert.deepEqual(withoutMetadata(out), {});
  assert.equal(out.$metadata.requestId, 'c0ffee00-0000-4000-8000-000000000001');
  const xml = renderQueryResponse(iamModel, 'DeleteUser', {}, 'r-1');
  assert.equal(
    xml,
    '<DeleteUserResponse xmlns="https://iam.amazonaws.com/doc/2010-05-08/"><ResponseMetadata><RequestId>r-1</RequestId></ResponseMetadata></DeleteUserResponse>',
  );
  await iamCall((iam) => iam.send(new DeleteUserCommand({ UserName: 'alice' })));
  assert.equal(seen?.operation, 'DeleteUser');
});

test('ListUsers: MaxItems and Marker parse typed; IsTruncated and Marker reach the SDK', async () => {
  const input = { PathPrefix: '/team/', MaxItems: 2, Marker: 'bWFya2VyLTE=' };
  const users = [user, { ...user, UserName: 'bob', Arn: 'arn:aws:iam::123456789012:user/team/bob', Tags: undefined, PasswordLastUsed: new Date('2024-04-01T00:00:00.250Z') }];
  const out = await iamCall((iam) => iam.send(new ListUsersCommand(input)), { Users: users, IsTruncated: true, Marker: 'bWFya2VyLTI=' });
  assert.deepEqual(seen?.input, input);
  assert.equal(typeof seen?.input.MaxItems, 'number');
  assert.equal(out.IsTruncated, true);
  assert.equal(out.Marker, 'bWFya2VyLTI=');
  assert.deepEqual(out.Users?.map((u) => u.UserName), ['alice', 'bob']);
  assert.deepEqual(out.Users?.[1]?.PasswordLastUsed, new Date('2024-04-01T00:00:00.250Z'));
  assert.deepEqual(out.Users?.[0], user);
});

test('ListUsers with no users: an empty list element parses as []', async () => {
  const out = await iamCall((iam) => iam.send(new ListUsersCommand({})), { Users: [], IsTruncated: false });
  assert.deepEqual(seen?.input, {});
  assert.deepEqual(out.Users, []);
  assert.equal(out.IsTruncated, false);
});

test('UpdateAccessKey: the Status enum parses, and a value outside it is a ValidationError', async () => {
  const input = { UserName: 'alice', AccessKeyId: 'AKIAIOSFODNN7EXAMPLE', Status: 'Inactive' as const };
  await iamCall((iam) => iam.send(new UpdateAccessKeyCommand(input)));
  assert.deepEqual(seen?.input, input);

  const err = await iamCall((iam) => iam.send(new UpdateAccessKeyCommand({ ...input, Status: 'Paused' as 'Active' }))).catch((e: unknown) => e);
  assert.ok(err instanceof Error);
  assert.equal(err.name, 'ValidationError');
  assert.equal(err.message, "1 validation error detected: Value 'Paused' at 'status' failed to satisfy constraint: Member must satisfy enum value set: [Active, Inactive, Expired]");
  assert.equal((err as Error & { $metadata: { httpStatusCode: number } }).$metadata.httpStatusCode, 400);
  assert.equal((err as Error & { $fault: string }).$fault, 'client');
});

test('CreateAccessKey and ListAccessKeys render what the SDK reads', async () => {
  const accessKey = { UserName: 'alice', AccessKeyId: 'AKIAIOSFODNN7EXAMPLE', Status: 'Active', SecretAccessKey: 'wJalrXUtnFEMI/K7MDENG/bPxRfiCYzEXAMPLE+KEY', CreateDate: created };
  const out = await iamCall((iam) => iam.send(new CreateAccessKeyCommand({ UserName: 'alice' })), { AccessKey: accessKey });
  assert.deepEqual(seen?.input, { UserName: 'alice' });
  assert.deepEqual(withoutMetadata(out), { AccessKey: accessKey });

  const metadata = [
    { UserName: 'alice', AccessKeyId: 'AKIAIOSFODNN7EXAMPLE', Status: 'Active', CreateDate: created },
    { UserName: 'alice', AccessKeyId: 'AKIAI44QH8DHBEXAMPLE', Status: 'Inactive', CreateDate: new Date('2024-05-06T07:08:09Z') },
  ];
  const listed = await iamCall((iam) => iam.send(new ListAccessKeysCommand({ UserName: 'alice' })), { AccessKeyMetadata: metadata, IsTruncated: false });
  assert.deepEqual(withoutMetadata(listed), { AccessKeyMetadata: metadata, IsTruncated: false });
});

test('errors from renderQueryError arrive as the SDK typed exceptions with the model status', async () => {
  reply = { error: 'NoSuchEntity', message: 'The user with name ghost cannot be found.' };
  const iam = new IAMClient(clientConfig());
  try {
    const err = await iam.send(new GetUserCommand({ UserName: 'ghost' })).catch((e: unknown) => e);
    assert.ok(err instanceof NoSuchEntityException);
    assert.equal(err.name, 'NoSuchEntityException');
    assert.equal(err.message, 'The user with name ghost cannot be found.');
    assert.equal(err.$metadata.httpStatusCode, 404);
    assert.equal(err.$metadata.requestId, 'c0ffee00-0000-4000-8000-000000000001');

    reply = { error: 'EntityAlreadyExists', message: 'User with name alice already exists.' };
    const exists = await iam.send(new CreateUserCommand({ UserName: 'alice' })).catch((e: unknown) => e);
    assert.ok(exists instanceof EntityAlreadyExistsException);
    assert.equal(exists.$metadata.httpStatusCode, 409);
  } finally {
    iam.destroy();
  }
});

test('a pattern violation from the SDK request comes back as the ValidationError IAM sends', async () => {
  const err = await iamCall((iam) => iam.send(new CreateUserCommand({ UserName: 'x y' }))).catch((e: unknown) => e);
  assert.ok(err instanceof Error);
  assert.equal(err.name, 'ValidationError');
  assert.equal(err.message, "1 validation error detected: Value 'x y' at 'userName' failed to satisfy constraint: Member must satisfy regular expression pattern: [\\w+=,.@-]+");
});

async function stsCall<T>(send: (sts: STSClient) => Promise<T>, output: Record<string, unknown>): Promise<T> {
  reply = { output };
  seen = undefined;
  const sts = new STSClient(clientConfig());
  try {
    return await send(sts);
  } finally {
    sts.destroy();
  }
}

test('STS GetCallerIdentity renders what the SDK reads', async () => {
  const identity = { UserId: 'AIDAJQABLZS4A3QDU576Q', Account: '123456789012', Arn: 'arn:aws:iam::123456789012:user/alice' };
  const out = await stsCall((sts) => sts.send(new GetCallerIdentityCommand({})), identity);
  assert.equal(seen?.model, stsModel);
  assert.equal(seen?.operation, 'GetCallerIdentity');
  assert.deepEqual(withoutMetadata(out), identity);
});

test('STS AssumeRole: DurationSeconds parses as a number; Credentials.Expiration reaches the SDK as a Date', async () => {
  const input = {
    RoleArn: 'arn:aws:iam::123456789012:role/deployer',
    RoleSessionName: 'ci-run-7',
    DurationSeconds: 900,
    PolicyArns: [{ arn: 'arn:aws:iam::aws:policy/ReadOnlyAccess' }],
    Tags: [{ Key: 'project', Value: 'berth' }],
    TransitiveTagKeys: ['project'],
  };
  const expiration = new Date('2026-01-02T03:19:05.359Z');
  const output = {
    Credentials: { AccessKeyId: 'ASIAIOSFODNN7EXAMPLE', SecretAccessKey: 'secret/key+x', SessionToken: 'FwoGZXIvYXdzEB==', Expiration: expiration },
    AssumedRoleUser: { AssumedRoleId: 'AROAEXAMPLEID1234567:ci-run-7', Arn: 'arn:aws:sts::123456789012:assumed-role/deployer/ci-run-7' },
    PackedPolicySize: 6,
  };
  const out = await stsCall((sts) => sts.send(new AssumeRoleCommand(input)), output);
  assert.deepEqual(seen?.input, input);
  assert.deepEqual(withoutMetadata(out), output);
  assert.ok(out.Credentials?.Expiration instanceof Date);
  assert.equal(out.Credentials.Expiration.getTime(), expiration.getTime());
});

// ---------------------------------------------------------------------------------------------
// Parsing rules checked directly

test('unknown and missing Action, and a foreign Version, are rejected as AWS does', () => {
  assert.throws(() => parseQueryRequest(iamModel, new URLSearchParams('Action=CreateBucket&Version=2010-05-08')), {
    code: 'InvalidAction',
    status: 400,
    message: 'Could not find operation CreateBucket for version 2010-05-08',
  });
  assert.throws(() => parseQueryRequest(iamModel, new URLSearchParams('Action=toString&Version=2010-05-08')), { code: 'InvalidAction' });
  assert.throws(() => parseQueryRequest(iamModel, new URLSearchParams('Action=ListUsers&Version=2011-06-15')), {
    code: 'InvalidAction',
    message: 'Could not find operation ListUsers for version 2011-06-15',
  });
  assert.throws(() => parseQueryRequest(iamModel, new URLSearchParams('UserName=a')), { code: 'MissingAction', status: 400 });
});

test('every broken constraint is listed, a missing required member as Value null', () => {
  const params = new URLSearchParams({ Action: 'CreateUser', Version: '2010-05-08', Path: 'no-slashes', 'Tags.member.1.Key': 'k' });
  assert.throws(() => parseQueryRequest(iamModel, params), (err: unknown) => {
    assert.ok(err instanceof ProtocolError);
    assert.equal(err.code, 'ValidationError');
    assert.equal(err.status, 400);
    assert.equal(
      err.message,
      '3 validation errors detected: ' +
        "Value 'no-slashes' at 'path' failed to satisfy constraint: Member must satisfy regular expression pattern: (\\u002F)|(\\u002F[\\u0021-\\u007E]+\\u002F); " +
        "Value null at 'userName' failed to satisfy constraint: Member must not be null; " +
        "Value null at 'tags.1.member.value' failed to satisfy constraint: Member must not be null",
    );
    return true;
  });
});

test('lengths and ranges are reported in Coral words', () => {
  const long = 'a'.repeat(65);
  assert.throws(() => parseQueryRequest(iamModel, new URLSearchParams({ Action: 'CreateUser', UserName: long })), {
    message: `1 validation error detected: Value '${long}' at 'userName' failed to satisfy constraint: Member must have length less than or equal to 64`,
  });
  assert.throws(() => parseQueryRequest(iamModel, new URLSearchParams({ Action: 'ListUsers', MaxItems: '0' })), {
    message: "1 validation error detected: Value '0' at 'maxItems' failed to satisfy constraint: Member must have value greater than or equal to 1",
  });
  assert.throws(() => parseQueryRequest(stsModel, new URLSearchParams({ Action: 'AssumeRole', RoleArn: 'arn:aws:iam::123456789012:role/r', RoleSessionName: 'ci', DurationSeconds: '899' })), {
    message: "1 validation error detected: Value '899' at 'durationSeconds' failed to satisfy constraint: Member must have value greater than or equal to 900",
  });
  const tokenCode = parseQueryRequest.bind(undefined, stsModel, new URLSearchParams({ Action: 'GetSessionToken', SerialNumber: 'arn:aws:iam::123456789012:mfa/alice', TokenCode: '12' }));
  assert.throws(tokenCode, { message: "1 validation error detected: Value '12' at 'tokenCode' failed to satisfy constraint: Member must have length greater than or equal to 6" });
});

test('a value of the wrong type is InvalidParameterValue, before any constraint', () => {
  assert.throws(() => parseQueryRequest(iamModel, new URLSearchParams({ Action: 'ListUsers', MaxItems: 'ten' })), {
    code: 'InvalidParameterValue',
    status: 400,
    message: 'Value (ten) for parameter MaxItems is invalid. Expected an integer.',
  });
  assert.throws(() => parseQueryRequest(iamModel, new URLSearchParams({ Action: 'ListUsers', MaxItems: '1.5' })), { code: 'InvalidParameterValue' });
  assert.throws(() => parseQueryRequest(iamModel, new URLSearchParams({ Action: 'ListUsers', MaxItems: '99999999999' })), { code: 'InvalidParameterValue' });
});

test('list items are ordered by index; unknown parameters and presigning parameters are ignored', () => {
  const params = new URLSearchParams([
    ['Action', 'UntagUser'],
    ['Version', '2010-05-08'],
    ['UserName', 'alice'],
    ['TagKeys.member.10', 'j'],
    ['TagKeys.member.2', 'b'],
    ['TagKeys.member.1', 'a'],
    ['Unknown', 'x'],
    ['X-Amz-Signature', 'abc'],
  ]);
  assert.deepEqual(parseQueryRequest(iamModel, params), { operation: 'UntagUser', input: { UserName: 'alice', TagKeys: ['a', 'b', 'j'] } });
});

test('a scalar list item that breaks its shape is reported at the list, as Coral does', () => {
  const params = new URLSearchParams({ Action: 'UntagUser', UserName: 'alice', 'TagKeys.member.1': 'ok', 'TagKeys.member.2': '' });
  assert.throws(() => parseQueryRequest(iamModel, params), {
    message:
      "2 validation errors detected: Value '[ok, ]' at 'tagKeys' failed to satisfy constraint: Member must satisfy constraint: [Member must satisfy regular expression pattern: [\\p{L}\\p{Z}\\p{N}_.:/=+\\-@]+]; " +
      "Value '[ok, ]' at 'tagKeys' failed to satisfy constraint: Member must satisfy constraint: [Member must have length greater than or equal to 1]",
  });
});

// A model with the wire features IAM and STS do not use (maps, flattened lists, locationName,
// blobs, timestamps), so the codec's handling of them is covered too.
const syntheticModel: ServiceModel = {
  metadata: { apiVersion: '2020-01-01', endpointPrefix: 'x', protocol: 'query', serviceId: 'X', xmlNamespace: 'https://x.example/doc/2020-01-01/' },
  operations: {
    Put: { name: 'Put', http: { method: 'POST', requestUri: '/' }, input: { shape: 'PutInput' }, output: { shape: 'PutOutput', resultWrapper: 'PutResult' } },
  },
  shapes: {
    PutInput: {
      type: 'structure',
      members: {
        Attributes: { shape: 'AttributeMap' },
        Items: { shape: 'FlatList', locationName: 'Item' },
        Named: { shape: 'NamedList' },
        Payload: { shape: 'Bytes' },
        At: { shape: 'Time' },
        Enabled: { shape: 'Flag' },
        Ratio: { shape: 'Ratio' },
        Secret: { shape: 'Secret' },
      },
    },
    PutOutput: {
      type: 'structure',
      members: {
        Attributes: { shape: 'AttributeMap' },
        Items: { shape: 'FlatList', locationName: 'Item' },
        Named: { shape: 'NamedList' },
        Payload: { shape: 'Bytes' },
        At: { shape: 'Time' },
      },
    },
    AttributeMap: { type: 'map', key: { shape: 'Text', locationName: 'Name' }, value: { shape: 'Text', locationName: 'Value' } },
    FlatList: { type: 'list', member: { shape: 'Text' }, flattened: true },
    NamedList: { type: 'list', member: { shape: 'Text', locationName: 'Entry' } },
    Text: { type: 'string' },
    Bytes: { type: 'blob' },
    Time: { type: 'timestamp' },
    Flag: { type: 'boolean' },
    Ratio: { type: 'double' },
    Secret: { type: 'string', min: 8, sensitive: true },
  },
};

test('maps, flattened lists, renamed members and scalar types parse per the model', () => {
  const params = new URLSearchParams([
    ['Action', 'Put'],
    ['Attributes.entry.2.Name', 'b'],
    ['Attributes.entry.2.Value', '2'],
    ['Attributes.entry.1.Name', 'a'],
    ['Attributes.entry.1.Value', '1'],
    ['Item.1', 'x'],
    ['Item.2', 'y'],
    ['Named.Entry.1', 'n'],
    ['Payload', Buffer.from('hi there').toString('base64')],
    ['At', '2024-03-01T10:20:30.5Z'],
    ['Enabled', 'TRUE'],
    ['Ratio', '0.25'],
  ]);
  assert.deepEqual(parseQueryRequest(syntheticModel, params).input, {
    Attributes: { a: '1', b: '2' },
    Items: ['x', 'y'],
    Named: ['n'],
    Payload: new Uint8Array(Buffer.from('hi there')),
    At: new Date('2024-03-01T10:20:30.500Z'),
    Enabled: true,
    Ratio: 0.25,
  });
  assert.throws(() => parseQueryRequest(syntheticModel, new URLSearchParams({ Action: 'Put', Enabled: 'yes' })), { code: 'InvalidParameterValue' });
  assert.throws(() => parseQueryRequest(syntheticModel, new URLSearchParams({ Action: 'Put', At: 'yesterday' })), { code: 'InvalidParameterValue' });
});

test('a map key named __proto__ stays a plain entry', () => {
  const input = parseQueryRequest(syntheticModel, new URLSearchParams({ Action: 'Put', 'Attributes.entry.1.Name': '__proto__', 'Attributes.entry.1.Value': 'x' })).input;
  const attributes = input.Attributes as Record<string, unknown>;
  assert.equal(Object.getPrototypeOf(attributes), Object.prototype);
  assert.deepEqual(Object.getOwnPropertyDescriptor(attributes, '__proto__')?.value, 'x');
});

test('a huge request is parsed in linear time and answered with a bounded message', () => {
  const params = new URLSearchParams({ Action: 'CreateUser', UserName: 'alice' });
  for (let i = 1; i <= 20_000; i += 1) {
    params.append(`Tags.member.${i}.Key`, `k${i}`);
    params.append(`Tags.member.${i}.Value`, '');
    params.append(`Tags.member.${i}.Key.${'x.'.repeat(40)}deep`, 'ignored');
  }
  const started = performance.now();
  assert.throws(() => parseQueryRequest(iamModel, params), (err: unknown) => {
    assert.ok(err instanceof ProtocolError);
    assert.match(err.message, /^1 validation error detected: Value '\[\{Key: k1, Value: \}, .*\.\.\.' at 'tags' failed to satisfy constraint: Member must have length less than or equal to 50$/u);
    assert.ok(err.message.length < 1200);
    return true;
  });
  assert.ok(performance.now() - started < 2500, "parsing must stay linear in the number of parameters");
});

test('a sensitive value is redacted from the message, as AWS does', () => {
  assert.throws(() => parseQueryRequest(syntheticModel, new URLSearchParams({ Action: 'Put', Secret: 'hunter2' })), {
    code: 'ValidationError',
    message: "1 validation error detected: Value '*** Sensitive Data Redacted ***' at 'secret' failed to satisfy constraint: Member must have length greater than or equal to 8",
  });
});

test('maps, flattened lists, renamed members, blobs and timestamps render per the model', () => {
  const xml = renderQueryResponse(syntheticModel, 'Put', {
    Attributes: { a: '1' },
    Items: ['x', 'y'],
    Named: ['n'],
    Payload: new Uint8Array([104, 105]),
    At: new Date('2024-03-01T10:20:30.500Z'),
    Extra: 'dropped',
  }, 'r');
  assert.equal(
    xml,
    '<PutResponse xmlns="https://x.example/doc/2020-01-01/"><PutResult>' +
      '<Attributes><entry><Name>a</Name><Value>1</Value></entry></Attributes>' +
      '<Item>x</Item><Item>y</Item><Named><Entry>n</Entry></Named><Payload>aGk=</Payload><At>2024-03-01T10:20:30.500Z</At>' +
      '</PutResult><ResponseMetadata><RequestId>r</RequestId></ResponseMetadata></PutResponse>',
  );
  assert.throws(() => renderQueryResponse(syntheticModel, 'Put', { At: 'not a date' }, 'r'), TypeError);
});

test('renderQueryError: Sender/Receiver and statuses from the model, escaping in every field', () => {
  assert.equal(
    renderQueryError(iamModel, 'MalformedPolicyDocument', 'Syntax error at "Statement" < 1 & more', 'r&1'),
    '<ErrorResponse xmlns="https://iam.amazonaws.com/doc/2010-05-08/"><Error><Type>Sender</Type><Code>MalformedPolicyDocument</Code>' +
      '<Message>Syntax error at &quot;Statement&quot; &lt; 1 &amp; more</Message></Error><RequestId>r&amp;1</RequestId></ErrorResponse>',
  );
  assert.match(renderQueryError(iamModel, 'ServiceFailure', 'boom', 'r'), /<Type>Receiver<\/Type>/u);
  assert.match(renderQueryError(iamModel, 'NoSuchEntity', 'x', 'r', false), /<Type>Receiver<\/Type>/u);
  assert.match(renderQueryError(stsModel, 'ExpiredTokenException', 'x', 'r'), /^<ErrorResponse xmlns="https:\/\/sts.amazonaws.com\/doc\/2011-06-15\/">/u);
  assert.equal(queryErrorStatus(iamModel, 'NoSuchEntity'), 404);
  assert.equal(queryErrorStatus(iamModel, 'EntityAlreadyExists'), 409);
  assert.equal(queryErrorStatus(iamModel, 'LimitExceeded'), 409);
  assert.equal(queryErrorStatus(iamModel, 'DeleteConflict'), 409);
  assert.equal(queryErrorStatus(iamModel, 'MalformedPolicyDocument'), 400);
  assert.equal(queryErrorStatus(iamModel, 'ServiceFailure'), 500);
  assert.equal(queryErrorStatus(stsModel, 'RegionDisabledException'), 403);
  assert.equal(queryErrorStatus(iamModel, 'AccessDenied'), 403);
  assert.equal(queryErrorStatus(iamModel, 'SomethingElse'), 400);
});

// ---------------------------------------------------------------------------------------------
// The AWS CLI (botocore) as a second, independent client

const AWS_CLI = '/usr/bin/aws';

async function runAws(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const home = mkdtempSync(path.join(tmpdir(), 'berth-aws-cli-'));
  try {
    const env = {
      PATH: process.env.PATH ?? '/usr/bin:/bin',
      HOME: home,
      AWS_ACCESS_KEY_ID: 'AKIAIOSFODNN7EXAMPLE',
      AWS_SECRET_ACCESS_KEY: 'wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY',
      AWS_DEFAULT_REGION: 'us-east-1',
      AWS_REGION: 'us-east-1',
      AWS_CONFIG_FILE: '/dev/null',
      AWS_SHARED_CREDENTIALS_FILE: '/dev/null',
      AWS_MAX_ATTEMPTS: '1',
      AWS_PAGER: '',
    };
    const { stdout, stderr } = await promisify(execFile)(AWS_CLI, [...args, '--endpoint-url', endpoint, '--output', 'json'], { env, timeout: 60_000 });
    return { code: 0, stdout, stderr };
  } catch (err) {
    const failed = err as { code?: number; stdout?: string; stderr?: string };
    if (typeof failed.code !== 'number') throw err;
    return { code: failed.code, stdout: failed.stdout ?? '', stderr: failed.stderr ?? '' };
  } finally {
    rmSync(home, { recursive: true, force: true });
  }
}

test('aws iam list-users reads the rendered response', async (t) => {
  if (!existsSync(AWS_CLI)) {
    t.skip(`${AWS_CLI} is not installed`);
    return;
  }
  reply = { output: { Users: [user], IsTruncated: false } };
  const result = await runAws(['iam', 'list-users', '--path-prefix', '/team/']);
  assert.equal(result.code, 0, result.stderr);
  assert.equal(seen?.operation, 'ListUsers');
  assert.deepEqual(seen?.input, { PathPrefix: '/team/' });
  assert.deepEqual(JSON.parse(result.stdout), {
    Users: [{
      Path: "/r&d/<core>/'quoted'/",
      UserName: 'alice',
      UserId: 'AIDAJQABLZS4A3QDU576Q',
      Arn: 'arn:aws:iam::123456789012:user/team/alice',
      CreateDate: '2024-03-01T10:20:30+00:00',
      Tags: [{ Key: 'dept', Value: 'R D/core=1' }],
    }],
  });
});

test('aws iam get-user reports a rendered error with its code and message', async (t) => {
  if (!existsSync(AWS_CLI)) {
    t.skip(`${AWS_CLI} is not installed`);
    return;
  }
  reply = { error: 'NoSuchEntity', message: 'The user with name ghost cannot be found.' };
  const result = await runAws(['iam', 'get-user', '--user-name', 'ghost']);
  assert.notEqual(result.code, 0);
  assert.match(result.stderr, /An error occurred \(NoSuchEntity\) when calling the GetUser operation( \(reached max retries: \d+\))?: The user with name ghost cannot be found\./u);
});

test('aws sts get-caller-identity reads the rendered response', async (t) => {
  if (!existsSync(AWS_CLI)) {
    t.skip(`${AWS_CLI} is not installed`);
    return;
  }
  const identity = { UserId: 'AIDAJQABLZS4A3QDU576Q', Account: '123456789012', Arn: 'arn:aws:iam::123456789012:user/alice' };
  reply = { output: identity };
  const result = await runAws(['sts', 'get-caller-identity']);
  assert.equal(result.code, 0, result.stderr);
  assert.deepEqual(JSON.parse(result.stdout), identity);
});
