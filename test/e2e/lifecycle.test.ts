import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import {
  CreateRepositoryCommand,
  DeleteLifecyclePolicyCommand,
  GetLifecyclePolicyCommand,
  GetLifecyclePolicyPreviewCommand,
  ListImagesCommand,
  PutLifecyclePolicyCommand,
  StartLifecyclePolicyPreviewCommand,
  type ECRClient,
  type GetLifecyclePolicyPreviewCommandOutput,
} from '@aws-sdk/client-ecr';
import { ADMIN, authedFetch } from '../support/auth.ts';
import { awsFails, awsOk, ecrClient, requireAwsCli } from '../support/aws.ts';
import { MT, blob, buildImage, pushBlob, pushImage, pushManifest, repoName, sha256, waitFor, type BuiltImage } from '../support/oci.ts';
import { berth, runBerth, startServer, type TestServer } from '../support/server.ts';

/**
 * Lifecycle policies end to end (docs/lifecycle.md): the ECR operations through the SDK and the
 * AWS CLI, a preview, and a run with `berth lifecycle run` that deletes exactly what the preview
 * listed, indexes and referrers going with the images they belong to.
 */

async function sdkError(promise: Promise<unknown>): Promise<Error> {
  try {
    await promise;
  } catch (err) {
    return err as Error;
  }
  assert.fail('expected the call to fail');
}

const pause = () => new Promise((resolve) => setTimeout(resolve, 15));

describe('lifecycle policies', () => {
  let server: TestServer;
  let ecr: ECRClient;
  before(async () => {
    server = await startServer({ env: { BERTH_REPOSITORIES_CREATE_ON_PUSH: 'false' } });
    ecr = ecrClient(server, ADMIN);
  });
  after(() => server?.close());

  async function newRepository(): Promise<string> {
    const repositoryName = repoName('lifecycle');
    await ecr.send(new CreateRepositoryCommand({ repositoryName }));
    return repositoryName;
  }

  async function push(repository: string, reference?: string): Promise<BuiltImage> {
    const image = buildImage({ layerBytes: 300 });
    await pushImage(server.baseUrl, repository, image, reference ?? image.digest);
    await pause(); // distinct push times, so "the newest N" is not decided by digest order
    return image;
  }

  async function pushIndex(repository: string, tag: string, children: BuiltImage[]): Promise<string> {
    const bytes = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: MT.ociIndex, manifests: children.map((c) => ({ mediaType: c.mediaType, digest: c.digest, size: c.manifest.length, platform: { os: 'linux', architecture: 'amd64' } })) }));
    assert.equal((await pushManifest(server.baseUrl, repository, tag, bytes, MT.ociIndex)).status, 201);
    await pause();
    return sha256(bytes);
  }

  async function pushSignature(repository: string, subject: BuiltImage): Promise<string> {
    const empty = blob('{}');
    await pushBlob(server.baseUrl, repository, empty);
    const bytes = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: MT.ociManifest, artifactType: 'application/vnd.dev.cosign.artifact.sig.v1+json', config: { mediaType: 'application/vnd.oci.empty.v1+json', digest: empty.digest, size: 2 }, layers: [{ mediaType: 'application/vnd.oci.empty.v1+json', digest: empty.digest, size: 2 }], subject: { mediaType: subject.mediaType, digest: subject.digest, size: subject.manifest.length } }));
    const digest = sha256(bytes);
    assert.equal((await pushManifest(server.baseUrl, repository, digest, bytes, MT.ociManifest)).status, 201);
    await pause();
    return digest;
  }

  async function completedPreview(repositoryName: string): Promise<GetLifecyclePolicyPreviewCommandOutput> {
    return waitFor(async () => {
      const out = await ecr.send(new GetLifecyclePolicyPreviewCommand({ repositoryName }));
      return out.status === 'COMPLETE' ? out : undefined;
    }, { what: 'the preview to complete' });
  }

  const policy = {
    rules: [
      { rulePriority: 1, description: 'keep the two newest prod images', selection: { tagStatus: 'tagged', tagPatternList: ['prod-*'], countType: 'imageCountMoreThan', countNumber: 2 }, action: { type: 'expire' } },
      { rulePriority: 2, description: 'one untagged image is enough', selection: { tagStatus: 'untagged', countType: 'imageCountMoreThan', countNumber: 1 }, action: { type: 'expire' } },
      { rulePriority: 3, description: 'the newest release only', selection: { tagStatus: 'tagged', tagPrefixList: ['release'], countType: 'imageCountMoreThan', countNumber: 1 }, action: { type: 'expire' } },
      { rulePriority: 10, description: 'nothing older than a year', selection: { tagStatus: 'any', countType: 'sinceImagePushed', countUnit: 'days', countNumber: 365 }, action: { type: 'expire' } },
    ],
  };

  test('the preview lists what a run deletes, image for image; indexes and signatures go with their images', { timeout: 120_000 }, async () => {
    const repositoryName = await newRepository();
    const prod = [];
    for (let i = 1; i <= 4; i++) prod.push(await push(repositoryName, `prod-${i}`));
    const signature = await pushSignature(repositoryName, prod[0]!);
    const dev = [await push(repositoryName, 'dev-1'), await push(repositoryName, 'dev-2')];
    const untagged = [await push(repositoryName), await push(repositoryName)];
    const [c1, c2, c3] = [await push(repositoryName), await push(repositoryName), await push(repositoryName)];
    const release1 = await pushIndex(repositoryName, 'release-1', [c1!, c2!]);
    const release2 = await pushIndex(repositoryName, 'release-2', [c2!, c3!]);

    const text = JSON.stringify(policy, null, 2);
    const put = await ecr.send(new PutLifecyclePolicyCommand({ repositoryName, lifecyclePolicyText: text }));
    assert.equal(put.lifecyclePolicyText, text);
    assert.equal(put.registryId, ADMIN.accountId);

    const started = await ecr.send(new StartLifecyclePolicyPreviewCommand({ repositoryName }));
    assert.equal(started.status, 'IN_PROGRESS');
    const preview = await completedPreview(repositoryName);
    const previewed = new Map((preview.previewResults ?? []).map((r) => [r.imageDigest!, r]));
    const expected = new Map<string, number>([
      [prod[0]!.digest, 1],
      [signature, 1],
      [prod[1]!.digest, 1],
      [untagged[0]!.digest, 2],
      [release1, 3],
      [c1!.digest, 3],
    ]);
    assert.deepEqual(new Map([...previewed].map(([d, r]) => [d, r.appliedRulePriority])), expected);
    assert.deepEqual(previewed.get(prod[0]!.digest)!.imageTags, ['prod-1']);
    assert.equal(previewed.get(prod[0]!.digest)!.action?.type, 'EXPIRE');
    assert.ok(previewed.get(prod[0]!.digest)!.imagePushedAt instanceof Date);
    assert.equal(preview.summary?.expiringImageTotalCount, 6);
    // Filters and paging of the preview.
    const untaggedOnly = await ecr.send(new GetLifecyclePolicyPreviewCommand({ repositoryName, filter: { tagStatus: 'UNTAGGED' } }));
    assert.deepEqual(new Set(untaggedOnly.previewResults!.map((r) => r.imageDigest)), new Set([signature, untagged[0]!.digest, c1!.digest]));
    const firstPage = await ecr.send(new GetLifecyclePolicyPreviewCommand({ repositoryName, maxResults: 4 }));
    assert.equal(firstPage.previewResults!.length, 4);
    const secondPage = await ecr.send(new GetLifecyclePolicyPreviewCommand({ repositoryName, maxResults: 4, nextToken: firstPage.nextToken }));
    assert.equal(secondPage.previewResults!.length, 2);
    assert.equal(secondPage.nextToken, undefined);
    assert.deepEqual(new Set([...firstPage.previewResults!, ...secondPage.previewResults!].map((r) => r.imageDigest)), new Set(expected.keys()));

    // The run deletes exactly what the preview listed, and nothing else.
    const before = await listDigests(repositoryName);
    const [outcome] = await berth(server, ['lifecycle', 'run', '--account', ADMIN.accountId, '--repository', repositoryName]);
    const ran = new Set<string>(outcome.expired.flatMap((e: { imageDigest: string; dependents: string[] }) => [e.imageDigest, ...e.dependents]));
    assert.deepEqual(ran, new Set(expected.keys()), 'the run expired what the preview said');
    const afterRun = await listDigests(repositoryName);
    assert.deepEqual(afterRun, new Set([...before].filter((d) => !expected.has(d))), 'and the repository lost exactly those');
    for (const kept of [prod[2]!, prod[3]!, dev[0]!, dev[1]!, untagged[1]!, c2!, c3!]) {
      assert.equal((await authedFetch(`${server.baseUrl}/v2/${repositoryName}/manifests/${kept.digest}`, { method: 'HEAD' })).status, 200);
    }
    assert.equal((await authedFetch(`${server.baseUrl}/v2/${repositoryName}/manifests/release-2`, { method: 'HEAD', headers: { accept: MT.ociIndex } })).status, 200);
    assert.equal((await authedFetch(`${server.baseUrl}/v2/${repositoryName}/manifests/prod-1`, { method: 'HEAD' })).status, 404);

    // Evaluated: GetLifecyclePolicy says when, and the audit log holds each expiry.
    const got = await ecr.send(new GetLifecyclePolicyCommand({ repositoryName }));
    assert.ok(got.lastEvaluatedAt instanceof Date && Date.now() - got.lastEvaluatedAt.getTime() < 60_000);
    const stdout = await runBerth(server, ['audit', '--account', ADMIN.accountId]);
    const records = stdout.trim().split('\n').map((l) => JSON.parse(l) as Record<string, string>);
    const lifecycleRecords = records.filter((r) => JSON.stringify(r).includes('berth:lifecycle') && JSON.stringify(r).includes(`repository/${repositoryName}@`));
    assert.equal(lifecycleRecords.length, 6, 'one audit record per expired manifest');

    // A second run, naming the repository of the default account without --account, finds nothing more to do.
    const [again] = await berth(server, ['lifecycle', 'run', '--repository', repositoryName]);
    assert.equal(again.accountId, ADMIN.accountId);
    assert.deepEqual(again.expired, []);
  });

  async function listDigests(repositoryName: string): Promise<Set<string>> {
    const out = await ecr.send(new ListImagesCommand({ repositoryName, maxResults: 1000 }));
    return new Set(out.imageIds!.map((i) => i.imageDigest!));
  }

  test('Get and Delete, and ECR\'s errors: no policy, no preview, a policy that is wrong names its rule', async () => {
    const repositoryName = await newRepository();
    const missing = await sdkError(ecr.send(new GetLifecyclePolicyCommand({ repositoryName })));
    assert.equal(missing.name, 'LifecyclePolicyNotFoundException');
    assert.match(missing.message, new RegExp(`repository with name '${repositoryName}'`));
    assert.equal((await sdkError(ecr.send(new DeleteLifecyclePolicyCommand({ repositoryName })))).name, 'LifecyclePolicyNotFoundException');
    assert.equal((await sdkError(ecr.send(new GetLifecyclePolicyPreviewCommand({ repositoryName })))).name, 'LifecyclePolicyPreviewNotFoundException');
    assert.equal((await sdkError(ecr.send(new StartLifecyclePolicyPreviewCommand({ repositoryName })))).name, 'LifecyclePolicyNotFoundException', 'no text and no stored policy');
    assert.equal((await sdkError(ecr.send(new GetLifecyclePolicyCommand({ repositoryName: `${repositoryName}-absent` })))).name, 'RepositoryNotFoundException');

    const bad = JSON.stringify({ rules: [{ rulePriority: 1, selection: { tagStatus: 'any', countType: 'imageCountMoreThan', countNumber: 1 }, action: { type: 'expire' } }, { rulePriority: 2, selection: { tagStatus: 'untagged', countType: 'imageCountMoreThan', countNumber: 1 }, action: { type: 'expire' } }] });
    const refused = await sdkError(ecr.send(new PutLifecyclePolicyCommand({ repositoryName, lifecyclePolicyText: bad })));
    assert.equal(refused.name, 'InvalidParameterException');
    assert.match(refused.message, /Lifecycle policy validation failure/);
    assert.match(refused.message, /rulePriority|rule/);
    assert.equal((await sdkError(ecr.send(new GetLifecyclePolicyCommand({ repositoryName })))).name, 'LifecyclePolicyNotFoundException', 'nothing was stored');

    const text = JSON.stringify(policy);
    await ecr.send(new PutLifecyclePolicyCommand({ repositoryName, lifecyclePolicyText: text }));
    const got = await ecr.send(new GetLifecyclePolicyCommand({ repositoryName }));
    assert.equal(got.lifecyclePolicyText, text);
    // ECR always sends lastEvaluatedAt; before the policy first runs it is the epoch.
    assert.deepEqual(got.lastEvaluatedAt, new Date(0), 'never evaluated yet');
    const deleted = await ecr.send(new DeleteLifecyclePolicyCommand({ repositoryName }));
    assert.equal(deleted.lifecyclePolicyText, text);
    assert.deepEqual(deleted.lastEvaluatedAt, new Date(0));
    assert.equal((await sdkError(ecr.send(new GetLifecyclePolicyCommand({ repositoryName })))).name, 'LifecyclePolicyNotFoundException');
  });

  test('the AWS CLI: put, get, preview and delete, with a policy from ECR\'s documentation in a file', { timeout: 120_000 }, async () => {
    requireAwsCli();
    const repositoryName = await newRepository();
    const old = await push(repositoryName);
    await push(repositoryName);
    // "Filtering on image age" from the ECR User Guide, with the count changed to keep it testable.
    const file = path.join(server.dataDir, 'policy.json');
    await writeFile(file, JSON.stringify({ rules: [{ rulePriority: 1, description: 'Keep only one untagged image, expire all others', selection: { tagStatus: 'untagged', countType: 'imageCountMoreThan', countNumber: 1 }, action: { type: 'expire' } }] }));
    const put = await awsOk(server, ADMIN, ['ecr', 'put-lifecycle-policy', '--repository-name', repositoryName, '--lifecycle-policy-text', `file://${file}`]);
    assert.equal(put.json.repositoryName, repositoryName);
    const got = (await awsOk(server, ADMIN, ['ecr', 'get-lifecycle-policy', '--repository-name', repositoryName])).json;
    assert.match(got.lifecyclePolicyText, /Keep only one untagged image/);
    assert.equal(new Date(got.lastEvaluatedAt).getTime(), 0, `not run yet: lastEvaluatedAt ${got.lastEvaluatedAt}`);
    assert.equal((await awsOk(server, ADMIN, ['ecr', 'start-lifecycle-policy-preview', '--repository-name', repositoryName])).json.status, 'IN_PROGRESS');
    const preview = await waitFor(async () => {
      const out = (await awsOk(server, ADMIN, ['ecr', 'get-lifecycle-policy-preview', '--repository-name', repositoryName])).json;
      return out.status === 'COMPLETE' ? out : undefined;
    }, { what: 'the preview to complete', timeoutMs: 30_000 });
    assert.deepEqual(preview.previewResults.map((r: { imageDigest: string }) => r.imageDigest), [old.digest]);
    assert.equal(preview.summary.expiringImageTotalCount, 1);
    assert.equal((await awsFails(server, ADMIN, ['ecr', 'put-lifecycle-policy', '--repository-name', repositoryName, '--lifecycle-policy-text', JSON.stringify({ rules: [{ rulePriority: 1, description: 'a tagged rule without tags', selection: { tagStatus: 'tagged', countType: 'imageCountMoreThan', countNumber: 1 }, action: { type: 'expire' } }] })])).errorCode, 'InvalidParameterException');
    await awsOk(server, ADMIN, ['ecr', 'delete-lifecycle-policy', '--repository-name', repositoryName]);
    assert.equal((await awsFails(server, ADMIN, ['ecr', 'get-lifecycle-policy', '--repository-name', repositoryName])).errorCode, 'LifecyclePolicyNotFoundException');
  });
});
