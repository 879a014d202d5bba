// The AWS JSON 1.1 codec against the real ECR client: @aws-sdk/client-ecr serializes the requests
// that validateJsonInput checks, and parses the bodies renderJsonOutput and renderJsonError write.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import {
  ECRClient,
  BatchGetImageCommand,
  CreateRepositoryCommand,
  DescribeImagesCommand,
  DescribeRepositoriesCommand,
  GetAuthorizationTokenCommand,
  InvalidParameterException,
  ListImagesCommand,
  PutImageCommand,
  RepositoryNotFoundException,
  UploadLayerPartCommand,
} from '@aws-sdk/client-ecr';
import { loadModel } from './model.ts';
import { ProtocolError, operationFromTarget, renderJsonError, renderJsonOutput, validateJsonInput } from './json.ts';

const model = loadModel('ecr');

type Reply = { output: Record<string, unknown> } | { error: string; message: string };

let server: http.Server;
let endpoint: string;
let reply: Reply = { output: {} };
let seen: { operation: string; input: Record<string, unknown> } | undefined;
let lastResponse: { status: number; headers: Record<string, string>; body: string } | undefined;

before(async () => {
  server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      let status = 200;
      let headers: Record<string, string> = { 'content-type': 'application/x-amz-json-1.1' };
      let body: string;
      try {
        const operation = operationFromTarget(model, req.headers['x-amz-target'] as string | undefined);
        const text = Buffer.concat(chunks).toString('utf8');
        const input = validateJsonInput(model, operation, text === '' ? undefined : JSON.parse(text));
        seen = { operation, input };
        if ('error' in reply) throw new ProtocolError(reply.error, reply.message);
        body = renderJsonOutput(model, operation, reply.output);
      } catch (err) {
        if (!(err instanceof ProtocolError)) throw err;
        const rendered = renderJsonError(err.code, err.message);
        ({ status, headers, body } = rendered);
      }
      lastResponse = { status, headers, body };
      res.writeHead(status, { ...headers, 'x-amzn-requestid': 'c0ffee00-0000-4000-8000-000000000002' });
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

async function ecrCall<T>(send: (ecr: ECRClient) => Promise<T>, reply_: Reply = { output: {} }): Promise<T> {
  reply = reply_;
  seen = undefined;
  const ecr = new ECRClient({
    endpoint,
    region: 'us-east-1',
    credentials: { accessKeyId: 'AKIAIOSFODNN7EXAMPLE', secretAccessKey: 'wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY' },
    maxAttempts: 1,
  });
  try {
    return await send(ecr);
  } finally {
    ecr.destroy();
  }
}

function withoutMetadata<T extends { $metadata?: unknown }>(out: T): Omit<T, '$metadata'> {
  const { $metadata: _, ...rest } = out;
  return rest;
}

const repository = {
  repositoryArn: 'arn:aws:ecr:us-east-1:123456789012:repository/team/app',
  registryId: '123456789012',
  repositoryName: 'team/app',
  repositoryUri: '123456789012.dkr.ecr.us-east-1.amazonaws.com/team/app',
  createdAt: new Date('2024-03-01T10:20:30.125Z'),
  imageTagMutability: 'IMMUTABLE' as const,
  imageScanningConfiguration: { scanOnPush: false },
  encryptionConfiguration: { encryptionType: 'AES256' as const },
};

test('DescribeRepositories: the SDK request validates to its input; the rendered list parses back', async () => {
  const input = { repositoryNames: ['team/app'], maxResults: 10, nextToken: 'bmV4dA==' };
  const out = await ecrCall((ecr) => ecr.send(new DescribeRepositoriesCommand(input)), { output: { repositories: [repository], nextToken: 'bmV4dDI=' } });
  assert.deepEqual(seen, { operation: 'DescribeRepositories', input });
  assert.deepEqual(withoutMetadata(out), { repositories: [repository], nextToken: 'bmV4dDI=' });
  assert.ok(out.repositories?.[0]?.createdAt instanceof Date);
});

test('BatchGetImage: image ids and media types in, images and failures out', async () => {
  const digest = `sha256:${'ab'.repeat(32)}`;
  const input = {
    repositoryName: 'team/app',
    imageIds: [{ imageTag: 'latest' }, { imageDigest: digest }],
    acceptedMediaTypes: ['application/vnd.oci.image.manifest.v1+json'],
  };
  const manifest = JSON.stringify({ schemaVersion: 2, mediaType: 'application/vnd.oci.image.manifest.v1+json', layers: [] });
  const output = {
    images: [{ registryId: '123456789012', repositoryName: 'team/app', imageId: { imageTag: 'latest', imageDigest: digest }, imageManifest: manifest, imageManifestMediaType: 'application/vnd.oci.image.manifest.v1+json' }],
    failures: [{ imageId: { imageDigest: digest }, failureCode: 'ImageNotFound' as const, failureReason: 'Requested image not found' }],
  };
  const out = await ecrCall((ecr) => ecr.send(new BatchGetImageCommand(input)), { output });
  assert.deepEqual(seen?.input, input);
  assert.deepEqual(withoutMetadata(out), output);
});

test('PutImage: the manifest text survives both ways', async () => {
  const manifest = '{\n  "schemaVersion": 2,\n  "annotations": {"note": "üñí \\"quoted\\" </tag>"}\n}';
  const input = { repositoryName: 'team/app', imageManifest: manifest, imageManifestMediaType: 'application/vnd.oci.image.manifest.v1+json', imageTag: 'v1.2.3' };
  const image = { registryId: '123456789012', repositoryName: 'team/app', imageId: { imageTag: 'v1.2.3', imageDigest: `sha256:${'0'.repeat(64)}` }, imageManifest: manifest, imageManifestMediaType: input.imageManifestMediaType };
  const out = await ecrCall((ecr) => ecr.send(new PutImageCommand(input)), { output: { image } });
  assert.deepEqual(seen?.input, input);
  assert.deepEqual(withoutMetadata(out), { image });
});

test('GetAuthorizationToken: expiresAt reaches the SDK as the same Date, milliseconds included', async () => {
  const expiresAt = new Date('2030-01-01T12:00:00.123Z');
  const data = { authorizationToken: Buffer.from('AWS:token').toString('base64'), expiresAt, proxyEndpoint: 'https://123456789012.dkr.ecr.us-east-1.amazonaws.com' };
  const out = await ecrCall((ecr) => ecr.send(new GetAuthorizationTokenCommand({})), { output: { authorizationData: [data] } });
  assert.deepEqual(seen, { operation: 'GetAuthorizationToken', input: {} });
  assert.deepEqual(withoutMetadata(out), { authorizationData: [data] });
  assert.ok(out.authorizationData?.[0]?.expiresAt instanceof Date);
  assert.equal(out.authorizationData[0].expiresAt.getTime(), expiresAt.getTime());
  assert.equal(JSON.parse(lastResponse?.body ?? '').authorizationData[0].expiresAt, 1893499200.123);
});

test('UploadLayerPart: the base64 blob is decoded to the bytes the SDK sent', async () => {
  const bytes = new Uint8Array([0, 1, 2, 250, 251, 252, 253, 254, 255]);
  const uploadId = '0f9c2a1e-1b2c-4d3e-8f90-a1b2c3d4e5f6';
  const out = await ecrCall(
    (ecr) => ecr.send(new UploadLayerPartCommand({ repositoryName: 'team/app', uploadId, partFirstByte: 0, partLastByte: 8, layerPartBlob: bytes })),
    { output: { registryId: '123456789012', repositoryName: 'team/app', uploadId, lastByteReceived: 8 } },
  );
  assert.deepEqual(seen?.input, { repositoryName: 'team/app', uploadId, partFirstByte: 0, partLastByte: 8, layerPartBlob: bytes });
  assert.equal(out.lastByteReceived, 8);
});

test('an error from renderJsonError arrives as the SDK typed exception', async () => {
  const message = "The repository with name 'team/ghost' does not exist in the registry with id '123456789012'";
  const err = await ecrCall((ecr) => ecr.send(new DescribeImagesCommand({ repositoryName: 'team/ghost' })), { error: 'RepositoryNotFoundException', message }).catch((e: unknown) => e);
  assert.ok(err instanceof RepositoryNotFoundException);
  assert.equal(err.name, 'RepositoryNotFoundException');
  assert.equal(err.message, message);
  assert.equal(err.$metadata.httpStatusCode, 400);
  assert.equal(err.$fault, 'client');
  assert.equal(err.$metadata.requestId, 'c0ffee00-0000-4000-8000-000000000002');
  assert.equal(lastResponse?.headers['x-amzn-ErrorType'], 'RepositoryNotFoundException');

  const serverErr = await ecrCall((ecr) => ecr.send(new ListImagesCommand({ repositoryName: 'team/app' })), { error: 'ServerException', message: 'boom' }).catch((e: unknown) => e);
  assert.ok(serverErr instanceof Error);
  assert.equal(serverErr.name, 'ServerException');
  assert.equal((serverErr as Error & { $metadata: { httpStatusCode: number } }).$metadata.httpStatusCode, 500);
});

async function rejected(send: (ecr: ECRClient) => Promise<unknown>): Promise<InvalidParameterException> {
  const err = await ecrCall(send).catch((e: unknown) => e);
  assert.ok(err instanceof InvalidParameterException, `expected InvalidParameterException, got ${String(err)}`);
  assert.equal(err.$metadata.httpStatusCode, 400);
  return err;
}

test('model violations from SDK requests come back as ECR InvalidParameterException', async () => {
  const missing = await rejected((ecr) => ecr.send(new DescribeImagesCommand({} as { repositoryName: string })));
  assert.equal(missing.message, "Invalid parameter at 'repositoryName' failed to satisfy constraint: 'Member must not be null'");

  const badName = await rejected((ecr) => ecr.send(new CreateRepositoryCommand({ repositoryName: 'Team/App' })));
  assert.equal(
    badName.message,
    "Invalid parameter at 'repositoryName' failed to satisfy constraint: 'Member must satisfy regular expression pattern: " +
      "[a-z0-9]+((\\.|_|__|-+)[a-z0-9]+)*(\\/[a-z0-9]+((\\.|_|__|-+)[a-z0-9]+)*)*'",
  );

  const tooMany = await rejected((ecr) => ecr.send(new DescribeRepositoriesCommand({ maxResults: 1001 })));
  assert.equal(tooMany.message, "Invalid parameter at 'maxResults' failed to satisfy constraint: 'Member must have value less than or equal to 1000'");
  const tooFew = await rejected((ecr) => ecr.send(new ListImagesCommand({ repositoryName: 'team/app', maxResults: 0 })));
  assert.equal(tooFew.message, "Invalid parameter at 'maxResults' failed to satisfy constraint: 'Member must have value greater than or equal to 1'");

  const badEnum = await rejected((ecr) => ecr.send(new CreateRepositoryCommand({ repositoryName: 'team/app', imageTagMutability: 'SOMETIMES' as 'MUTABLE' })));
  assert.equal(
    badEnum.message,
    "Invalid parameter at 'imageTagMutability' failed to satisfy constraint: 'Member must satisfy enum value set: [MUTABLE, IMMUTABLE, IMMUTABLE_WITH_EXCLUSION, MUTABLE_WITH_EXCLUSION]'",
  );

  const emptyIds = await rejected((ecr) => ecr.send(new BatchGetImageCommand({ repositoryName: 'team/app', imageIds: [] })));
  assert.equal(emptyIds.message, "Invalid parameter at 'imageIds' failed to satisfy constraint: 'Member must have length greater than or equal to 1'");

  const badRegistry = await rejected((ecr) => ecr.send(new GetAuthorizationTokenCommand({ registryIds: ['12345'] })));
  assert.equal(
    badRegistry.message,
    "Invalid parameter at 'registryIds' failed to satisfy constraint: 'Member must satisfy constraint: [Member must satisfy regular expression pattern: [0-9]{12}]'",
  );

  const nestedTag = await rejected((ecr) => ecr.send(new DescribeImagesCommand({ repositoryName: 'team/app', imageIds: [{ imageTag: 'x'.repeat(301) }] })));
  assert.equal(nestedTag.message, "Invalid parameter at 'imageIds.1.member.imageTag' failed to satisfy constraint: 'Member must have length less than or equal to 300'");
});

// ---------------------------------------------------------------------------------------------
// Direct checks

test('unknown members are ignored and nulls count as absent', () => {
  assert.deepEqual(
    validateJsonInput(model, 'ListImages', { repositoryName: 'team/app', registryId: null, futureOption: { x: 1 }, filter: { tagStatus: 'TAGGED' } }),
    { repositoryName: 'team/app', filter: { tagStatus: 'TAGGED' } },
  );
  assert.deepEqual(validateJsonInput(model, 'GetAuthorizationToken', undefined), {});
});

test('a value of the wrong JSON type is a SerializationException in Coral words', () => {
  assert.throws(() => validateJsonInput(model, 'ListImages', { repositoryName: 'team/app', maxResults: '10' }), {
    code: 'SerializationException',
    status: 400,
    message: 'STRING_VALUE can not be converted to an Integer',
  });
  assert.throws(() => validateJsonInput(model, 'ListImages', { repositoryName: 42 }), { message: 'NUMBER_VALUE can not be converted to a String' });
  assert.throws(() => validateJsonInput(model, 'ListImages', { repositoryName: 'a', maxResults: 1.5 }), { code: 'SerializationException' });
  assert.throws(() => validateJsonInput(model, 'BatchGetImage', { repositoryName: 'a', imageIds: { imageTag: 'x' } }), {
    message: 'Start of structure or map found where not expected.',
  });
  assert.throws(() => validateJsonInput(model, 'ListImages', ['not', 'an', 'object']), { message: 'Start of list found where not expected' });
  assert.throws(() => validateJsonInput(model, 'UploadLayerPart', {
    repositoryName: 'a1', uploadId: '0f9c2a1e-1b2c-4d3e-8f90-a1b2c3d4e5f6', partFirstByte: 0, partLastByte: 1, layerPartBlob: 'not base64!',
  }), { code: 'SerializationException' });
});

test('an unknown operation or X-Amz-Target is UnknownOperationException', () => {
  assert.equal(operationFromTarget(model, 'AmazonEC2ContainerRegistry_V20150921.PutImage'), 'PutImage');
  for (const target of [undefined, 'AmazonEC2ContainerRegistry_V20150921.CreateBucket', 'Other_V1.PutImage', 'AmazonEC2ContainerRegistry_V20150921.constructor']) {
    assert.throws(() => operationFromTarget(model, target), { code: 'UnknownOperationException', status: 400 });
  }
  assert.throws(() => validateJsonInput(model, 'CreateBucket', {}), { code: 'UnknownOperationException' });
});

test('renderJsonOutput: maps, undefined members, unknown keys and timestamps', () => {
  const body = renderJsonOutput(model, 'DescribeImages', {
    imageDetails: [{
      repositoryName: 'team/app',
      imageDigest: `sha256:${'1'.repeat(64)}`,
      imageTags: undefined,
      imagePushedAt: new Date('2024-01-01T00:00:00Z'),
      imageSizeInBytes: 123456789,
      imageScanFindingsSummary: { findingSeverityCounts: { HIGH: 2, LOW: 1 } },
      internalOnly: 'dropped',
    }],
  });
  assert.deepEqual(JSON.parse(body), {
    imageDetails: [{
      repositoryName: 'team/app',
      imageDigest: `sha256:${'1'.repeat(64)}`,
      imagePushedAt: 1704067200,
      imageSizeInBytes: 123456789,
      imageScanFindingsSummary: { findingSeverityCounts: { HIGH: 2, LOW: 1 } },
    }],
  });
  assert.throws(() => renderJsonOutput(model, 'DescribeImages', { imageDetails: [{ imagePushedAt: 'whenever' }] }), TypeError);
});

test('renderJsonError: body, headers and default statuses', () => {
  assert.deepEqual(renderJsonError('LayersNotFoundException', 'The specified layers could not be found.'), {
    status: 400,
    body: '{"__type":"LayersNotFoundException","message":"The specified layers could not be found."}',
    headers: { 'content-type': 'application/x-amz-json-1.1', 'x-amzn-ErrorType': 'LayersNotFoundException' },
  });
  assert.equal(renderJsonError('ServerException', 'x').status, 500);
});

test('aws ecr describe-repositories reads the rendered response', async (t) => {
  const awsCli = '/usr/bin/aws';
  if (!existsSync(awsCli)) {
    t.skip(`${awsCli} is not installed`);
    return;
  }
  reply = { output: { repositories: [repository] } };
  const home = mkdtempSync(path.join(tmpdir(), 'berth-aws-cli-'));
  t.after(() => rmSync(home, { recursive: true, force: true }));
  const env = {
    PATH: process.env.PATH ?? '/usr/bin:/bin',
    HOME: home,
    AWS_ACCESS_KEY_ID: 'AKIAIOSFODNN7EXAMPLE',
    AWS_SECRET_ACCESS_KEY: 'wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY',
    AWS_DEFAULT_REGION: 'us-east-1',
    AWS_CONFIG_FILE: '/dev/null',
    AWS_SHARED_CREDENTIALS_FILE: '/dev/null',
    AWS_MAX_ATTEMPTS: '1',
  };
  const { stdout } = await promisify(execFile)(awsCli, ['ecr', 'describe-repositories', '--repository-names', 'team/app', '--endpoint-url', endpoint, '--output', 'json'], { env, timeout: 60_000 });
  assert.deepEqual(seen, { operation: 'DescribeRepositories', input: { repositoryNames: ['team/app'] } });
  const parsed = JSON.parse(stdout) as { repositories: Array<Record<string, unknown>> };
  assert.equal(parsed.repositories[0]?.repositoryName, 'team/app');
  assert.equal(parsed.repositories[0]?.createdAt, '2024-03-01T10:20:30.125000+00:00');
});
