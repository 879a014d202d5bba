import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, test } from 'node:test';
import {
  eventTime,
  imageDeleted,
  imagePushed,
  lifecycleImageExpired,
  imageScanned,
  scanFindingsChanged,
  imageReplicated,
  pushedImageDigest,
  arrivedImageDigest,
  registryPolicyChanged,
  repositoryCreated,
  repositoryDeleted,
  repositoryPolicyChanged,
  tagMoved,
  type BuiltEvent,
  type EventContext,
} from './envelope.ts';
import { compilePattern } from './pattern.ts';

// --- AWS's events, as data -----------------------------------------------------------------------

const GUIDE = 'ECR User Guide, "Amazon ECR events and EventBridge"';
const CAPTURED = 'events captured from ECR in 2025, quoted in awslabs/cfn-ecr-aws-soci-index-builder pull request 137';

const DIGEST = 'sha256:7f5b2640fe6fb4f46592dfd3410c4a79dac4f89e4782432e0378abcd1234';

/** GUIDE, "Event for a completed image push". */
const awsPush = {
  version: '0',
  id: '13cde686-328b-6117-af20-0e5566167482',
  'detail-type': 'ECR Image Action',
  source: 'aws.ecr',
  account: '123456789012',
  time: '2019-11-16T01:54:34Z',
  region: 'us-west-2',
  resources: [],
  detail: {
    result: 'SUCCESS',
    'repository-name': 'my-repository-name',
    'image-digest': DIGEST,
    'action-type': 'PUSH',
    'image-tag': 'latest',
  },
};

/** GUIDE, "Event for an image deletion". */
const awsDelete = {
  version: '0',
  id: 'dd3b46cb-2c74-f49e-393b-28286b67279d',
  'detail-type': 'ECR Image Action',
  source: 'aws.ecr',
  account: '123456789012',
  time: '2019-11-16T02:01:05Z',
  region: 'us-west-2',
  resources: [],
  detail: {
    result: 'SUCCESS',
    'repository-name': 'my-repository-name',
    'image-digest': DIGEST,
    'action-type': 'DELETE',
    'image-tag': 'latest',
  },
};

/** GUIDE, "Event for a completed image replication": how ECR spells a repository's ARN in `resources`. */
const awsReplication = {
  account: '123456789012',
  region: 'us-east-1',
  resources: ['arn:aws:ecr:us-east-1:123456789012:repository/docker-hub/alpine'],
  detail: { 'repository-name': 'docker-hub/alpine' },
};

/** CAPTURED: a push by digest of an image manifest. */
const capturedUntaggedPush = {
  version: '0',
  id: '446d9337-ebe2-cf4f-42e6-42be36883bbd',
  'detail-type': 'ECR Image Action',
  source: 'aws.ecr',
  account: '123456789012',
  time: '2025-09-25T12:38:33Z',
  region: 'eu-central-1',
  resources: [],
  detail: {
    result: 'SUCCESS',
    'repository-name': 'soci-index-test-repo',
    'image-digest': 'sha256:2c2c0c11d801b86cfd661f214721d7a40c5368dc3c5777dd7c5f3f37860d4f4d',
    'action-type': 'PUSH',
    'artifact-media-type': 'application/vnd.oci.image.config.v1+json',
    'image-tag': '',
    'manifest-media-type': 'application/vnd.oci.image.manifest.v1+json',
  },
};

/** CAPTURED: a tagged push of an image index, which has no config and so no artifact media type. */
const capturedIndexPush = {
  version: '0',
  id: '4198ac28-edd6-ae65-8669-99b84990a06a',
  'detail-type': 'ECR Image Action',
  source: 'aws.ecr',
  account: '123456789012',
  time: '2025-09-25T12:38:34Z',
  region: 'eu-central-1',
  resources: [],
  detail: {
    result: 'SUCCESS',
    'repository-name': 'soci-index-test-repo',
    'image-digest': 'sha256:42b526eda7ef7b19a51f97f059ae2eb3134183709e0ff649a36722d5479be367',
    'action-type': 'PUSH',
    'image-tag': 'v4-soci',
    'manifest-media-type': 'application/vnd.oci.image.index.v1+json',
  },
};

/** The envelope of `sample`, as builder options that reproduce its id and time exactly. */
function contextOf(sample: { id: string; account: string; region: string; time: string }): EventContext {
  return { account: sample.account, region: sample.region, timeMs: Date.parse(sample.time), newId: () => sample.id };
}

describe('ECR Image Action matches what AWS sends', () => {
  test(`a tagged push (${GUIDE}, "Event for a completed image push")`, () => {
    const { event, repository } = imagePushed({
      ...contextOf(awsPush),
      repositoryName: 'my-repository-name',
      imageDigest: DIGEST,
      imageTag: 'latest',
      manifestMediaType: 'application/vnd.docker.distribution.manifest.v2+json',
    });
    // The 2019 sample predates the media-type fields that ECR sends today (see the captured events).
    const expected = { ...awsPush, detail: { ...awsPush.detail, 'manifest-media-type': 'application/vnd.docker.distribution.manifest.v2+json' } };
    assert.deepEqual(event, expected);
    assert.deepEqual(Object.keys(event), Object.keys(awsPush), 'envelope keys in AWS order');
    assert.equal(repository, 'my-repository-name');
  });

  test(`a deletion (${GUIDE}, "Event for an image deletion")`, () => {
    const { event, repository } = imageDeleted({ ...contextOf(awsDelete), repositoryName: 'my-repository-name', imageDigest: DIGEST, imageTag: 'latest' });
    assert.deepEqual(event, awsDelete);
    assert.equal(repository, 'my-repository-name');
  });

  test(`a push by digest carries an empty image-tag (${CAPTURED})`, () => {
    const { event } = imagePushed({
      ...contextOf(capturedUntaggedPush),
      repositoryName: 'soci-index-test-repo',
      imageDigest: capturedUntaggedPush.detail['image-digest'],
      manifestMediaType: 'application/vnd.oci.image.manifest.v1+json',
      artifactMediaType: 'application/vnd.oci.image.config.v1+json',
    });
    assert.deepEqual(event, capturedUntaggedPush);
    assert.equal(JSON.stringify(event), JSON.stringify(capturedUntaggedPush), 'same keys in the same order');
  });

  test(`an index push has no artifact-media-type (${CAPTURED})`, () => {
    const { event } = imagePushed({
      ...contextOf(capturedIndexPush),
      repositoryName: 'soci-index-test-repo',
      imageDigest: capturedIndexPush.detail['image-digest'],
      imageTag: 'v4-soci',
      manifestMediaType: 'application/vnd.oci.image.index.v1+json',
    });
    assert.deepEqual(event, capturedIndexPush);
    assert.equal(JSON.stringify(event), JSON.stringify(capturedIndexPush));
  });

  test('a deletion by digest carries an empty image-tag and the media types it is given', () => {
    const { event } = imageDeleted({
      ...contextOf(awsDelete),
      repositoryName: 'my-repository-name',
      imageDigest: DIGEST,
      manifestMediaType: 'application/vnd.oci.image.manifest.v1+json',
      artifactMediaType: 'application/vnd.oci.image.config.v1+json',
    });
    assert.deepEqual(event.detail, {
      result: 'SUCCESS',
      'repository-name': 'my-repository-name',
      'image-digest': DIGEST,
      'action-type': 'DELETE',
      'artifact-media-type': 'application/vnd.oci.image.config.v1+json',
      'image-tag': '',
      'manifest-media-type': 'application/vnd.oci.image.manifest.v1+json',
    });
  });
});

// --- Berth's own events --------------------------------------------------------------------------

const ctx: EventContext = { account: '111122223333', region: 'eu-west-1', timeMs: Date.parse('2026-03-01T10:20:30.456Z'), newId: () => '0f8fad5b-d9cb-469f-a165-70867728950e' };
const ARN = 'arn:aws:ecr:eu-west-1:111122223333:repository/team/app';
const OLD = `sha256:${'a'.repeat(64)}`;
const NEW = `sha256:${'b'.repeat(64)}`;

function berthEnvelope(detailType: string, resources: string[], detail: object): object {
  return {
    version: '0',
    id: '0f8fad5b-d9cb-469f-a165-70867728950e',
    'detail-type': detailType,
    source: 'aws.ecr',
    account: '111122223333',
    time: '2026-03-01T10:20:30Z',
    region: 'eu-west-1',
    resources,
    detail,
  };
}

describe("Berth's events have the documented shapes", () => {
  test('a moved tag names the image that lost it', () => {
    const built = tagMoved({ ...ctx, repositoryName: 'team/app', imageTag: 'latest', imageDigest: NEW, previousImageDigest: OLD });
    assert.deepEqual(built, {
      event: berthEnvelope('Berth Image Action', [ARN], {
        result: 'SUCCESS',
        'repository-name': 'team/app',
        'image-tag': 'latest',
        'image-digest': NEW,
        'previous-image-digest': OLD,
        'action-type': 'TAG_MOVE',
      }),
      repository: 'team/app',
    });
  });

  test('repository created and deleted', () => {
    for (const [build, actionType] of [[repositoryCreated, 'CREATE'], [repositoryDeleted, 'DELETE']] as const) {
      assert.deepEqual(build({ ...ctx, repositoryName: 'team/app' }), {
        event: berthEnvelope('Berth Repository Action', [ARN], { result: 'SUCCESS', 'repository-name': 'team/app', 'action-type': actionType }),
        repository: 'team/app',
      });
    }
  });

  test('repository policy set and lifecycle policy deleted', () => {
    assert.deepEqual(repositoryPolicyChanged({ ...ctx, repositoryName: 'team/app', policyType: 'REPOSITORY_POLICY', changeType: 'PUT' }), {
      event: berthEnvelope('Berth Repository Action', [ARN], {
        result: 'SUCCESS',
        'repository-name': 'team/app',
        'action-type': 'POLICY_CHANGE',
        'policy-type': 'REPOSITORY_POLICY',
        'change-type': 'PUT',
      }),
      repository: 'team/app',
    });
    const { event } = repositoryPolicyChanged({ ...ctx, repositoryName: 'team/app', policyType: 'LIFECYCLE_POLICY', changeType: 'DELETE' });
    assert.deepEqual(event.detail, {
      result: 'SUCCESS',
      'repository-name': 'team/app',
      'action-type': 'POLICY_CHANGE',
      'policy-type': 'LIFECYCLE_POLICY',
      'change-type': 'DELETE',
    });
  });

  test('registry policy changes have no repository and their own partition', () => {
    assert.deepEqual(registryPolicyChanged({ ...ctx, changeType: 'DELETE' }), {
      event: berthEnvelope('Berth Registry Action', [], {
        result: 'SUCCESS',
        'action-type': 'POLICY_CHANGE',
        'policy-type': 'REGISTRY_POLICY',
        'change-type': 'DELETE',
      }),
      repository: null,
    });
  });

  test('a lifecycle expiry lists the tags, the rule and what went with the image', () => {
    const tags = ['v1', 'v1.0'];
    const dependents = [OLD];
    const built = lifecycleImageExpired({ ...ctx, repositoryName: 'team/app', imageDigest: NEW, imageTags: tags, rulePriority: 3, dependentDigests: dependents });
    assert.deepEqual(built, {
      event: berthEnvelope('Berth Lifecycle Policy Action', [ARN], {
        result: 'SUCCESS',
        'repository-name': 'team/app',
        'image-digest': NEW,
        'image-tags': ['v1', 'v1.0'],
        'rule-priority': 3,
        'dependent-digests': [OLD],
        'action-type': 'EXPIRE',
      }),
      repository: 'team/app',
    });
    // The event owns its arrays: the outbox may hold it while the caller reuses its own.
    tags.push('v2');
    dependents.length = 0;
    assert.deepEqual(built.event.detail['image-tags'], ['v1', 'v1.0']);
    assert.deepEqual(built.event.detail['dependent-digests'], [OLD]);
    const untagged = lifecycleImageExpired({ ...ctx, repositoryName: 'team/app', imageDigest: NEW, imageTags: [], rulePriority: 1 });
    assert.deepEqual([untagged.event.detail['image-tags'], untagged.event.detail['dependent-digests']], [[], []]);
  });

  test(`repository ARNs are spelled as ECR spells them, nested names included (${GUIDE}, replication)`, () => {
    const { event } = repositoryCreated({ account: awsReplication.account, region: awsReplication.region, timeMs: 0, repositoryName: awsReplication.detail['repository-name'] });
    assert.deepEqual(event.resources, awsReplication.resources);
  });
});

// --- every builder -------------------------------------------------------------------------------

function everyEvent(context: EventContext): BuiltEvent[] {
  const repo = { ...context, repositoryName: 'team/app' };
  return [
    imagePushed({ ...repo, imageDigest: NEW, imageTag: 'latest', manifestMediaType: 'application/vnd.oci.image.manifest.v1+json' }),
    imageDeleted({ ...repo, imageDigest: NEW }),
    tagMoved({ ...repo, imageTag: 'latest', imageDigest: NEW, previousImageDigest: OLD }),
    repositoryCreated(repo),
    repositoryDeleted(repo),
    repositoryPolicyChanged({ ...repo, policyType: 'REPOSITORY_POLICY', changeType: 'PUT' }),
    registryPolicyChanged({ ...context, changeType: 'PUT' }),
    lifecycleImageExpired({ ...repo, imageDigest: NEW, imageTags: ['old'], rulePriority: 1 }),
    imageScanned({ ...repo, status: 'COMPLETE', imageDigest: NEW, imageTags: ['latest'], severityCounts: { HIGH: 1 } }),
    scanFindingsChanged({ ...repo, imageDigest: NEW, imageTags: [], severityCounts: {}, added: [], fixed: [{ name: 'CVE-2024-0001', 'package-name': 'zlib', 'package-version': '1.2.13' }] }),
    imageReplicated({ ...repo, imageDigest: NEW, imageTag: 'latest', sourceAccount: '444455556666', sourceRegion: 'us-west-2' }),
  ];
}

describe('every event', () => {
  test('survives JSON unchanged', () => {
    for (const { event } of everyEvent(ctx)) assert.deepEqual(JSON.parse(JSON.stringify(event)), event);
  });

  test('gets a fresh version-4 UUID unless the caller supplies the id', () => {
    const ids = everyEvent({ account: '111122223333', region: 'eu-west-1', timeMs: 0 }).map(({ event }) => event.id);
    for (const id of ids) assert.match(id, /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    assert.equal(new Set(ids).size, ids.length);
  });

  test('is listed in the table of the module comment, and the table lists nothing else', () => {
    const text = readFileSync(new URL('./envelope.ts', import.meta.url), 'utf8');
    const comment = text.slice(0, text.indexOf('*/'));
    const documented = [...comment.matchAll(/^ \* \| `([^`]+)` +\| (?:`([A-Z_]+)`|\(none\)) +\|/gm)].map((m) => `${m[1]} / ${m[2] ?? '(none)'}`);
    const built = everyEvent(ctx).map(({ event }) => `${event['detail-type']} / ${'action-type' in event.detail ? event.detail['action-type'] : '(none)'}`);
    assert.deepEqual([...new Set(documented)].sort(), [...new Set(built)].sort());
  });
});

describe('event time', () => {
  test('is ISO 8601 UTC to the second, the fraction dropped', () => {
    assert.equal(eventTime(Date.parse('2019-11-16T01:54:34Z')), '2019-11-16T01:54:34Z');
    assert.equal(eventTime(Date.parse('2019-11-16T01:54:34.999Z')), '2019-11-16T01:54:34Z');
    assert.equal(eventTime(0), '1970-01-01T00:00:00Z');
    assert.equal(eventTime(-1), '1969-12-31T23:59:59Z');
  });

  test('refuses a time that is not a number', () => {
    assert.throws(() => eventTime(Number.NaN), RangeError);
    assert.throws(() => repositoryCreated({ ...ctx, timeMs: Number.POSITIVE_INFINITY, repositoryName: 'team/app' }), RangeError);
  });
});

describe('rules written for ECR see what ECR would send', () => {
  test('a deploy-on-push rule matches a tagged push and nothing Berth adds', () => {
    // The rule most often seen in the wild: deploy when a tag is pushed.
    const rule = compilePattern({
      source: ['aws.ecr'],
      'detail-type': ['ECR Image Action'],
      detail: { 'action-type': ['PUSH'], result: ['SUCCESS'], 'repository-name': ['team/app'], 'image-tag': ['latest'] },
    });
    const events = everyEvent(ctx);
    assert.deepEqual(events.map(({ event }) => rule.matches(event)), [true, ...events.slice(1).map(() => false)]);
  });

  test('an untagged push is selected by an empty image-tag, as on ECR', () => {
    const untagged = compilePattern({ 'detail-type': ['ECR Image Action'], detail: { 'image-tag': [''] } });
    const push = (imageTag?: string) => imagePushed({ ...ctx, repositoryName: 'team/app', imageDigest: NEW, imageTag, manifestMediaType: 'application/vnd.oci.image.manifest.v1+json' }).event;
    assert.equal(untagged.matches(push()), true);
    assert.equal(untagged.matches(push('v1')), false);
  });

  test('one rule on the source receives everything, and Berth events are told apart by their prefix', () => {
    const all = compilePattern({ source: ['aws.ecr'] });
    const berth = compilePattern({ 'detail-type': [{ prefix: 'Berth ' }] });
    const events = everyEvent(ctx).map(({ event }) => event);
    assert.ok(events.every((e) => all.matches(e)));
    assert.deepEqual(events.map((e) => berth.matches(e)), events.map((e) => !e['detail-type'].startsWith('ECR ')));
  });
});

describe('what the log consumers read from an event', () => {
  const stored = ({ event }: BuiltEvent) => ({ detailType: event['detail-type'], body: event });
  const repo = { ...ctx, repositoryName: 'team/app' };
  const pushed = stored(imagePushed({ ...repo, imageDigest: NEW, imageTag: 'latest', manifestMediaType: 'application/vnd.oci.image.manifest.v1+json' }));
  const replicated = stored(imageReplicated({ ...repo, imageDigest: NEW, imageTag: 'latest', sourceAccount: '444455556666', sourceRegion: 'us-west-2' }));
  const deleted = stored(imageDeleted({ ...repo, imageDigest: NEW }));

  test('replication follows pushes only, so a replicated image is never replicated again', () => {
    assert.equal(pushedImageDigest(pushed), NEW);
    assert.equal(pushedImageDigest(replicated), undefined);
    assert.equal(pushedImageDigest(deleted), undefined);
  });

  test('scan on push scans what arrives by push or by replication', () => {
    assert.equal(arrivedImageDigest(pushed), NEW);
    assert.equal(arrivedImageDigest(replicated), NEW);
    assert.equal(arrivedImageDigest(deleted), undefined);
  });

  test('ECR Replication Action has the shape of ECR\'s sample, with an empty image-tag for a replication by digest', () => {
    assert.deepEqual(replicated.body.detail, {
      result: 'SUCCESS',
      'repository-name': 'team/app',
      'image-digest': NEW,
      'source-account': '444455556666',
      'action-type': 'REPLICATE',
      'source-region': 'us-west-2',
      'image-tag': 'latest',
    });
    assert.equal((stored(imageReplicated({ ...repo, imageDigest: NEW, sourceAccount: '444455556666', sourceRegion: 'us-west-2' })).body.detail as { 'image-tag': string })['image-tag'], '');
  });
});
