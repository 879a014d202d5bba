import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { buildModelFiles, DEFAULT_REFERENCE_DIR } from '../../scripts/trim-models.ts';
import {
  compilePattern,
  describeViolations,
  findErrorShape,
  findOperation,
  findViolations,
  getShape,
  loadEcrPaginators,
  loadModel,
} from './model.ts';
import type { ServiceModel, ServiceName } from './model.ts';

const NAMES: ServiceName[] = ['iam', 'sts', 'ecr', 'secretsmanager', 'cloudtrail'];

test('loadModel reads each model once and shares it frozen', () => {
  const iam = loadModel('iam');
  assert.equal(loadModel('iam'), iam);
  assert.ok(Object.isFrozen(iam) && Object.isFrozen(iam.shapes) && Object.isFrozen(getShape(iam, 'User')));
  assert.equal(iam.metadata.protocol, 'query');
  assert.equal(loadModel('sts').metadata.xmlNamespace, 'https://sts.amazonaws.com/doc/2011-06-15/');
  assert.equal(loadModel('ecr').metadata.targetPrefix, 'AmazonEC2ContainerRegistry_V20150921');
});

test('the trimmed models hold the served operations and every shape they reach, without documentation', () => {
  // ECR's 58 and Berth's extensions (models/berth-ecr-extensions.json: BerthReplicationBackfill, BerthCheckPermissions, BerthListRepositories, BerthListImages, BerthDescribeStorageUsage, and the five event subscription operations: BerthCreateEventSubscription, BerthDescribeEventSubscriptions, BerthUpdateEventSubscription, BerthDeleteEventSubscription, BerthListEventDeliveries).
  const expected: Record<ServiceName, number> = { iam: 61, sts: 3, ecr: 68, secretsmanager: 8, cloudtrail: 1 };
  for (const name of NAMES) {
    const model = loadModel(name);
    assert.equal(Object.keys(model.operations).length, expected[name], name);
    const text = readFileSync(path.join(import.meta.dirname, 'models', `${name}.json`), 'utf8');
    assert.doesNotMatch(text, /"documentation"/u);
    for (const op of Object.values(model.operations)) {
      for (const ref of [op.input, op.output, ...(op.errors ?? [])]) if (ref !== undefined) getShape(model, ref.shape);
    }
    for (const shape of Object.values(model.shapes)) {
      const refs = shape.type === 'structure' ? Object.values(shape.members)
        : shape.type === 'list' ? [shape.member]
        : shape.type === 'map' ? [shape.key, shape.value] : [];
      for (const ref of refs) getShape(model, ref.shape);
    }
  }
  const iam = loadModel('iam');
  assert.ok(findOperation(iam, 'GetAccessKeyLastUsed'));
  assert.equal(findOperation(iam, 'UpdateUser'), undefined);
  assert.equal(findOperation(iam, 'hasOwnProperty'), undefined);
  assert.deepEqual(Object.keys(loadModel('sts').operations).sort(), ['AssumeRole', 'GetCallerIdentity', 'GetSessionToken']);
  const secretsManager = loadModel('secretsmanager');
  assert.equal(secretsManager.metadata.targetPrefix, 'secretsmanager');
  assert.equal(secretsManager.metadata.signingName, 'secretsmanager');
  assert.equal(getShape(secretsManager, 'SecretStringType').sensitive, true);
  assert.equal(findOperation(secretsManager, 'RotateSecret'), undefined);
});

test('error shapes keep their wire code, status and fault', () => {
  const iam = loadModel('iam');
  assert.deepEqual(findErrorShape(iam, 'NoSuchEntity')?.error, { code: 'NoSuchEntity', httpStatusCode: 404, senderFault: true });
  assert.equal(findErrorShape(iam, 'NoSuchEntityException')?.error?.code, 'NoSuchEntity');
  assert.equal(findErrorShape(loadModel('ecr'), 'ServerException')?.fault, true);
  assert.equal(findErrorShape(loadModel('ecr'), 'Nope'), undefined);
});

test('ECR paginators load', () => {
  assert.deepEqual(loadEcrPaginators().DescribeRepositories, {
    input_token: 'nextToken',
    output_token: 'nextToken',
    limit_key: 'maxResults',
    result_key: 'repositories',
  });
});

test('every model pattern compiles, anchored, with Java-only escapes translated', () => {
  for (const name of NAMES) {
    for (const shape of Object.values(loadModel(name).shapes)) {
      if (shape.type === 'string' && shape.pattern !== undefined) assert.doesNotThrow(() => compilePattern(shape.pattern as string), shape.pattern);
    }
  }
  assert.ok(compilePattern('[\\w+=,.@-]+').test('alice@example.com'));
  assert.ok(!compilePattern('[\\w+=,.@-]+').test('x y'));
  assert.ok(compilePattern('[\\w+=,.@\\:-]*').test('a:b-c'));
  assert.ok(compilePattern('^arn:aws(-\\w+)*:secretsmanager:[a-zA-Z0-9-:]+:secret:ecr\\-pullthroughcache\\/[a-zA-Z0-9\\/_+=.@-]+$')
    .test('arn:aws:secretsmanager:us-east-1:123456789012:secret:ecr-pullthroughcache/docker-hub'));
  assert.ok(compilePattern('[\\p{L}\\p{Z}\\p{N}_.:/=+\\-@]+').test('Kostenstelle Zürich'));
});

test('findViolations walks maps, and Coral counts errors in its summary', () => {
  const model: ServiceModel = {
    metadata: { apiVersion: '1', endpointPrefix: 'x', protocol: 'json', serviceId: 'X' },
    operations: {},
    shapes: {
      In: { type: 'structure', required: ['Labels'], members: { Labels: { shape: 'Labels' } } },
      Labels: { type: 'map', key: { shape: 'Key' }, value: { shape: 'Value' }, max: 2 },
      Key: { type: 'string', pattern: '[a-z]+' },
      Value: { type: 'structure', required: ['n'], members: { n: { shape: 'N' } } },
      N: { type: 'integer', max: 9 },
    },
  };
  const violations = findViolations(model, 'In', { Labels: { ok: { n: 1 }, Bad: { n: 10 }, also: {} } });
  assert.deepEqual(violations.map((v) => [v.path, v.constraint]), [
    ['labels', 'Member must have length less than or equal to 2'],
    ['labels', 'Map keys must satisfy constraint: [Member must satisfy regular expression pattern: [a-z]+]'],
    ['labels.Bad.member.n', 'Member must have value less than or equal to 9'],
    ['labels.also.member.n', 'Member must not be null'],
  ]);
  assert.match(describeViolations(violations), /^4 validation errors detected: Value '\{ok: \{n: 1\}/u);
  assert.equal(describeViolations(findViolations(model, 'In', {})), "1 validation error detected: Value null at 'labels' failed to satisfy constraint: Member must not be null");
});

test('the committed models are what scripts/trim-models.ts writes', (t) => {
  if (!existsSync(DEFAULT_REFERENCE_DIR)) {
    t.skip(`no reference models at ${DEFAULT_REFERENCE_DIR}`);
    return;
  }
  for (const [file, text] of buildModelFiles(DEFAULT_REFERENCE_DIR)) {
    assert.equal(readFileSync(path.join(import.meta.dirname, 'models', file), 'utf8'), text, `${file} is stale: run node scripts/trim-models.ts`);
  }
});
