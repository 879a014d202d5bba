import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { once } from 'node:events';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import {
  BatchCheckLayerAvailabilityCommand,
  BatchDeleteImageCommand,
  BatchGetImageCommand,
  CompleteLayerUploadCommand,
  CreateRepositoryCommand,
  DescribeImagesCommand,
  GetDownloadUrlForLayerCommand,
  InitiateLayerUploadCommand,
  ListImageReferrersCommand,
  ListImagesCommand,
  PutImageCommand,
  PutImageTagMutabilityCommand,
  UploadLayerPartCommand,
  paginateDescribeImages,
  paginateListImages,
  type ECRClient,
  type ImageDetail,
  type ImageIdentifier,
} from '@aws-sdk/client-ecr';
import { downloadUrl } from '../../src/iam/download-url.ts';
import { Secrets } from '../../src/iam/secrets.ts';
import { ADMIN, authedFetch } from '../support/auth.ts';
import { AWS_CLI, aws, awsEnv, awsFails, awsOk, ecrClient, requireAwsCli } from '../support/aws.ts';
import { assertNoServerErrors, expectError } from '../support/http.ts';
import { buildRealImage, readOciLayout, writeOciLayout } from '../support/layout.ts';
import { MT, blob, buildImage, pushBlob, pushImage, pushManifest, repoName, sha256, type Blob, type BuiltImage } from '../support/oci.ts';
import { backend } from '../support/backend.ts';
import { repoRoot, startServer, type TestServer } from '../support/server.ts';
import { hasTool, run, toolSandbox, type ToolSandbox } from '../support/tools.ts';

/**
 * The ECR image and layer operations end to end, through @aws-sdk/client-ecr and the AWS CLI,
 * against a server where repositories are explicit (created with CreateRepository): both planes
 * see the same images, tags, layers and tag immutability.
 */

interface State {
  server: TestServer;
  ecr: ECRClient;
  tools: ToolSandbox;
  host: string;
}
const s = {} as State;

const noSkopeo = !hasTool('skopeo') && !process.env['CI'] ? 'not installed: skopeo (apt-get install skopeo)' : false;

async function createRepository(options: Partial<{ imageTagMutability: 'MUTABLE' | 'IMMUTABLE' | 'IMMUTABLE_WITH_EXCLUSION' | 'MUTABLE_WITH_EXCLUSION'; filters: string[] }> = {}): Promise<string> {
  const repositoryName = repoName('ecr-images');
  await s.ecr.send(
    new CreateRepositoryCommand({
      repositoryName,
      ...(options.imageTagMutability ? { imageTagMutability: options.imageTagMutability } : {}),
      ...(options.filters ? { imageTagMutabilityExclusionFilters: options.filters.map((filter) => ({ filterType: 'WILDCARD' as const, filter })) } : {}),
    }),
  );
  return repositoryName;
}

/** Resolves the AWS error name the SDK raised (the call must fail). */
async function sdkError(promise: Promise<unknown>): Promise<{ name: string; message: string }> {
  try {
    await promise;
  } catch (err) {
    return err as { name: string; message: string };
  }
  assert.fail('the call succeeded but should have failed');
}

async function expectSdkError(promise: Promise<unknown>, name: string): Promise<string> {
  const err = await sdkError(promise);
  assert.equal(err.name, name, err.message);
  return err.message;
}

/** An OCI index over images already in the repository, as exact bytes. */
function indexOf(images: BuiltImage[]): { bytes: Buffer; digest: string } {
  const bytes = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: MT.ociIndex, manifests: images.map((i) => ({ mediaType: i.mediaType, digest: i.digest, size: i.manifest.length, platform: { os: 'linux', architecture: 'amd64' } })) }));
  return { bytes, digest: sha256(bytes) };
}

function layerSize(image: BuiltImage): number {
  return image.layers.reduce((sum, l) => sum + l.bytes.length, 0);
}

function sortIds(ids: ImageIdentifier[]): string[] {
  return ids.map((i) => `${i.imageDigest} ${i.imageTag ?? '-'}`).sort();
}

async function dataPlaneManifest(repository: string, reference: string): Promise<Response> {
  return authedFetch(`${s.server.baseUrl}/v2/${repository}/manifests/${reference}`, { headers: { accept: `${MT.ociManifest}, ${MT.ociIndex}, ${MT.dockerManifest}` } });
}

/** Uploads a blob through the ECR layer API in parts of at most `partBytes`; resolves the digest. */
async function uploadLayer(repositoryName: string, b: Blob, partBytes = 1000): Promise<string> {
  const { uploadId } = await s.ecr.send(new InitiateLayerUploadCommand({ repositoryName }));
  for (let at = 0; at < b.bytes.length; at += partBytes) {
    const part = b.bytes.subarray(at, Math.min(at + partBytes, b.bytes.length));
    const out = await s.ecr.send(new UploadLayerPartCommand({ repositoryName, uploadId, partFirstByte: at, partLastByte: at + part.length - 1, layerPartBlob: part }));
    assert.equal(out.lastByteReceived, at + part.length - 1);
  }
  const done = await s.ecr.send(new CompleteLayerUploadCommand({ repositoryName, uploadId, layerDigests: [b.digest] }));
  assert.equal(done.layerDigest, b.digest);
  return b.digest;
}

describe('ECR image and layer operations: SDK, AWS CLI, skopeo and the data plane agree', { skip: noSkopeo }, () => {
  before(async () => {
    requireAwsCli();
    // Repositories are explicit here, as in ECR: every test creates its own with CreateRepository.
    s.server = await startServer({ env: { BERTH_REPOSITORIES_CREATE_ON_PUSH: 'false' } });
    s.ecr = ecrClient(s.server, ADMIN);
    s.tools = await toolSandbox();
    s.host = `127.0.0.1:${s.server.port}`;
    // Debian's CLI (2.9) predates ListImageReferrers: give it ECR's current model, as docs/ecr-api.md
    // tells users to (it lands in this test process's own HOME).
    await run(AWS_CLI, ['configure', 'add-model', '--service-name', 'ecr', '--service-model', `file://${path.join(repoRoot, 'src/aws/models/ecr.json')}`], { env: await awsEnv(ADMIN) });
  });
  after(async () => {
    await s.tools?.close();
    if (!s.server) return;
    const ended = once(s.server.process.stdout!, 'end');
    await s.server.close();
    await ended;
    assertNoServerErrors(s.server.logs);
  });

  test('ListImages and DescribeImages: tags, untagged images, indexes, filters, sizes and pagination (SDK)', async () => {
    const repositoryName = await createRepository();
    const a = buildImage({ layers: 2, layerBytes: 700 });
    const b = buildImage({ layers: 1, layerBytes: 300, docker: true });
    const c = buildImage({ layers: 1, layerBytes: 100 });
    await pushImage(s.server.baseUrl, repositoryName, a, 'v1');
    assert.equal((await pushManifest(s.server.baseUrl, repositoryName, 'latest', a.manifest, a.mediaType)).status, 201);
    await pushImage(s.server.baseUrl, repositoryName, b, 'v2');
    await pushImage(s.server.baseUrl, repositoryName, c, c.digest);
    const index = indexOf([a, b]);
    assert.equal((await pushManifest(s.server.baseUrl, repositoryName, 'multi', index.bytes, MT.ociIndex)).status, 201);

    const all = [`${a.digest} latest`, `${a.digest} v1`, `${b.digest} v2`, `${c.digest} -`, `${index.digest} multi`].sort();
    const listed = await s.ecr.send(new ListImagesCommand({ repositoryName }));
    assert.deepEqual(sortIds(listed.imageIds!), all);
    assert.equal(listed.nextToken, undefined);
    const tagged = await s.ecr.send(new ListImagesCommand({ repositoryName, filter: { tagStatus: 'TAGGED' } }));
    assert.deepEqual(sortIds(tagged.imageIds!), all.filter((e) => !e.endsWith(' -')));
    const untagged = await s.ecr.send(new ListImagesCommand({ repositoryName, filter: { tagStatus: 'UNTAGGED' } }));
    assert.deepEqual(sortIds(untagged.imageIds!), [`${c.digest} -`]);

    const pages: ImageIdentifier[][] = [];
    for await (const page of paginateListImages({ client: s.ecr, pageSize: 2 }, { repositoryName })) pages.push(page.imageIds ?? []);
    assert.deepEqual(pages.map((p) => p.length), [2, 2, 1]);
    assert.deepEqual(sortIds(pages.flat()), all, 'the pages together are the whole list, each entry once');

    const details = (await s.ecr.send(new DescribeImagesCommand({ repositoryName }))).imageDetails!;
    const byDigest = new Map(details.map((d) => [d.imageDigest!, d]));
    assert.equal(details.length, 4);
    const da = byDigest.get(a.digest)!;
    assert.deepEqual(da.imageTags, ['latest', 'v1']);
    assert.equal(da.imageSizeInBytes, layerSize(a), 'the layers as pushed');
    assert.equal(da.imageManifestMediaType, MT.ociManifest);
    assert.equal(da.artifactMediaType, MT.ociConfig);
    assert.equal(da.registryId, ADMIN.accountId);
    assert.equal(da.repositoryName, repositoryName);
    assert.ok(da.imagePushedAt instanceof Date && Math.abs(da.imagePushedAt.getTime() - Date.now()) < 60_000, `pushed just now: ${da.imagePushedAt}`);
    assert.equal(da.lastRecordedPullTime, undefined, 'never pulled');
    assert.equal(byDigest.get(b.digest)!.imageManifestMediaType, MT.dockerManifest);
    assert.equal(byDigest.get(b.digest)!.artifactMediaType, MT.dockerConfig);
    assert.equal(byDigest.get(c.digest)!.imageTags, undefined, 'an untagged image has no imageTags');
    assert.equal(byDigest.get(index.digest)!.imageSizeInBytes, layerSize(a) + layerSize(b), 'an index: the images it lists');
    assert.equal(byDigest.get(index.digest)!.imageManifestMediaType, MT.ociIndex);

    const onlyTagged = await s.ecr.send(new DescribeImagesCommand({ repositoryName, filter: { tagStatus: 'TAGGED' } }));
    assert.deepEqual(onlyTagged.imageDetails!.map((d) => d.imageDigest).sort(), [a.digest, b.digest, index.digest].sort());
    const onlyUntagged = await s.ecr.send(new DescribeImagesCommand({ repositoryName, filter: { tagStatus: 'UNTAGGED' } }));
    assert.deepEqual(onlyUntagged.imageDetails!.map((d) => d.imageDigest), [c.digest]);

    const detailPages: ImageDetail[][] = [];
    for await (const page of paginateDescribeImages({ client: s.ecr, pageSize: 3 }, { repositoryName })) detailPages.push(page.imageDetails ?? []);
    assert.deepEqual(detailPages.map((p) => p.length), [3, 1]);
    assert.deepEqual(detailPages.flat().map((d) => d.imageDigest).sort(), details.map((d) => d.imageDigest).sort());

    const picked = await s.ecr.send(new DescribeImagesCommand({ repositoryName, imageIds: [{ imageTag: 'v1' }, { imageDigest: a.digest }, { imageDigest: c.digest }] }));
    assert.deepEqual(picked.imageDetails!.map((d) => d.imageDigest), [a.digest, c.digest], 'by tag or digest, each image once');

    await expectSdkError(s.ecr.send(new DescribeImagesCommand({ repositoryName, imageIds: [{ imageTag: 'v1' }, { imageTag: 'nope' }] })), 'ImageNotFoundException');
    await expectSdkError(s.ecr.send(new DescribeImagesCommand({ repositoryName, imageIds: [{ imageTag: 'v1', imageDigest: b.digest }] })), 'ImageNotFoundException');
    await expectSdkError(s.ecr.send(new DescribeImagesCommand({ repositoryName, imageIds: [{ imageTag: 'v1' }], maxResults: 5 })), 'InvalidParameterException');
    await expectSdkError(s.ecr.send(new ListImagesCommand({ repositoryName, maxResults: 1001 })), 'InvalidParameterException');
    await expectSdkError(s.ecr.send(new ListImagesCommand({ repositoryName, nextToken: 'forged' })), 'InvalidParameterException');
    await expectSdkError(s.ecr.send(new ListImagesCommand({ repositoryName: `${repositoryName}-missing` })), 'RepositoryNotFoundException');
    await expectSdkError(s.ecr.send(new DescribeImagesCommand({ repositoryName: `${repositoryName}-missing` })), 'RepositoryNotFoundException');
  });

  test('ListImages and DescribeImages through the AWS CLI, with --max-items pagination and errors', async () => {
    const repositoryName = await createRepository();
    const images = [buildImage(), buildImage(), buildImage()];
    for (const [i, image] of images.entries()) await pushImage(s.server.baseUrl, repositoryName, image, `t${i}`);
    const untagged = buildImage();
    await pushImage(s.server.baseUrl, repositoryName, untagged, untagged.digest);

    const all = await awsOk(s.server, ADMIN, ['ecr', 'list-images', '--repository-name', repositoryName]);
    assert.equal(all.json.imageIds.length, 4);
    const onlyTagged = await awsOk(s.server, ADMIN, ['ecr', 'list-images', '--repository-name', repositoryName, '--filter', 'tagStatus=TAGGED']);
    assert.deepEqual(onlyTagged.json.imageIds.map((i: ImageIdentifier) => i.imageTag).sort(), ['t0', 't1', 't2']);

    // --max-items pages client-side over the server's pages (--page-size 1 forces several).
    const first = await awsOk(s.server, ADMIN, ['ecr', 'list-images', '--repository-name', repositoryName, '--max-items', '3', '--page-size', '1']);
    assert.equal(first.json.imageIds.length, 3);
    assert.ok(first.json.NextToken, 'a token for the rest');
    const rest = await awsOk(s.server, ADMIN, ['ecr', 'list-images', '--repository-name', repositoryName, '--max-items', '3', '--page-size', '1', '--starting-token', first.json.NextToken]);
    assert.equal(rest.json.imageIds.length, 1);
    assert.equal(rest.json.NextToken, undefined);
    assert.deepEqual(sortIds([...first.json.imageIds, ...rest.json.imageIds]), sortIds(all.json.imageIds));

    const described = await awsOk(s.server, ADMIN, ['ecr', 'describe-images', '--repository-name', repositoryName, '--max-items', '2']);
    assert.equal(described.json.imageDetails.length, 2);
    const more = await awsOk(s.server, ADMIN, ['ecr', 'describe-images', '--repository-name', repositoryName, '--starting-token', described.json.NextToken]);
    assert.equal(more.json.imageDetails.length, 2);
    const one = await awsOk(s.server, ADMIN, ['ecr', 'describe-images', '--repository-name', repositoryName, '--image-ids', 'imageTag=t1']);
    assert.equal(one.json.imageDetails[0].imageDigest, images[1]!.digest);
    assert.deepEqual(one.json.imageDetails[0].imageTags, ['t1']);
    assert.equal(one.json.imageDetails[0].imageSizeInBytes, layerSize(images[1]!));
    assert.equal(typeof one.json.imageDetails[0].imagePushedAt, 'string', 'the CLI prints timestamps');

    assert.equal((await awsFails(s.server, ADMIN, ['ecr', 'describe-images', '--repository-name', repositoryName, '--image-ids', 'imageTag=missing'])).errorCode, 'ImageNotFoundException');
    assert.equal((await awsFails(s.server, ADMIN, ['ecr', 'list-images', '--repository-name', 'no/such-repository'])).errorCode, 'RepositoryNotFoundException');
  });

  test('BatchGetImage: the manifest bytes as pushed, failures per image id, accepted media types, and the pull recorded', async () => {
    const repositoryName = await createRepository();
    const image = buildImage();
    for (const b of [image.config, ...image.layers]) await pushBlob(s.server.baseUrl, repositoryName, b);
    // Odd but valid JSON: the bytes must come back exactly as they were pushed.
    const manifest = Buffer.from(`{\n  "schemaVersion" : 2,   "mediaType": "${MT.ociManifest}",\n "config": ${JSON.stringify({ mediaType: MT.ociConfig, digest: image.config.digest, size: image.config.bytes.length })},\n"layers":${JSON.stringify(image.layers.map((l) => ({ mediaType: MT.ociLayer, digest: l.digest, size: l.bytes.length })))}\t}\n`);
    const digest = sha256(manifest);
    assert.equal((await pushManifest(s.server.baseUrl, repositoryName, 'v1', manifest, MT.ociManifest)).status, 201);

    const got = await s.ecr.send(
      new BatchGetImageCommand({
        repositoryName,
        imageIds: [
          { imageTag: 'v1' },
          { imageDigest: digest },
          { imageTag: 'v1', imageDigest: digest },
          { imageTag: 'nope' },
          { imageTag: 'v1', imageDigest: sha256('other') },
          { imageDigest: 'not-a-digest' },
          { imageTag: '-bad' },
          {},
        ],
      }),
    );
    assert.equal(got.images!.length, 3);
    for (const img of got.images!) {
      assert.equal(img.imageManifest, manifest.toString('utf8'), 'byte for byte');
      assert.equal(img.imageManifestMediaType, MT.ociManifest);
      assert.equal(img.imageId!.imageDigest, digest);
      assert.equal(img.registryId, ADMIN.accountId);
    }
    assert.deepEqual(got.images!.map((i) => i.imageId!.imageTag), ['v1', undefined, 'v1']);
    assert.deepEqual(
      got.failures!.map((f) => [f.imageId, f.failureCode]),
      [
        [{ imageTag: 'nope' }, 'ImageNotFound'],
        [{ imageTag: 'v1', imageDigest: sha256('other') }, 'ImageTagDoesNotMatchDigest'],
        [{ imageDigest: 'not-a-digest' }, 'InvalidImageDigest'],
        [{ imageTag: '-bad' }, 'InvalidImageTag'],
        [{}, 'MissingDigestAndTag'],
      ],
    );
    const refusedType = await s.ecr.send(new BatchGetImageCommand({ repositoryName, imageIds: [{ imageTag: 'v1' }], acceptedMediaTypes: [MT.dockerManifest] }));
    assert.deepEqual(refusedType.images, []);
    assert.equal(refusedType.failures![0]!.failureCode, 'ImageNotFound');
    assert.match(refusedType.failures![0]!.failureReason!, /acceptedMediaTypes/);
    const acceptedType = await s.ecr.send(new BatchGetImageCommand({ repositoryName, imageIds: [{ imageTag: 'v1' }], acceptedMediaTypes: [MT.dockerManifest, MT.ociManifest] }));
    assert.equal(acceptedType.images!.length, 1);

    // BatchGetImage is a pull: lastRecordedPullTime shows it (written in batches, seen at once).
    const [detail] = (await s.ecr.send(new DescribeImagesCommand({ repositoryName, imageIds: [{ imageDigest: digest }] }))).imageDetails!;
    assert.ok(detail!.lastRecordedPullTime instanceof Date && Math.abs(detail!.lastRecordedPullTime.getTime() - Date.now()) < 60_000, `${detail!.lastRecordedPullTime}`);

    const cli = await awsOk(s.server, ADMIN, ['ecr', 'batch-get-image', '--repository-name', repositoryName, '--image-ids', 'imageTag=v1', 'imageTag=gone']);
    assert.equal(cli.json.images[0].imageManifest, manifest.toString('utf8'));
    assert.equal(cli.json.failures[0].failureCode, 'ImageNotFound');
    await expectSdkError(s.ecr.send(new BatchGetImageCommand({ repositoryName: `${repositoryName}-missing`, imageIds: [{ imageTag: 'v1' }] })), 'RepositoryNotFoundException');
  });

  test('a data-plane GET records the pull; HEAD does not', async () => {
    const repositoryName = await createRepository();
    const pulled = buildImage();
    const checked = buildImage();
    await pushImage(s.server.baseUrl, repositoryName, pulled, 'pulled');
    await pushImage(s.server.baseUrl, repositoryName, checked, 'checked');
    assert.equal((await dataPlaneManifest(repositoryName, 'pulled')).status, 200);
    const head = await authedFetch(`${s.server.baseUrl}/v2/${repositoryName}/manifests/checked`, { method: 'HEAD', headers: { accept: MT.ociManifest } });
    assert.equal(head.status, 200);
    const details = (await s.ecr.send(new DescribeImagesCommand({ repositoryName }))).imageDetails!;
    assert.ok(details.find((d) => d.imageDigest === pulled.digest)!.lastRecordedPullTime instanceof Date);
    assert.equal(details.find((d) => d.imageDigest === checked.digest)!.lastRecordedPullTime, undefined);
  });

  test('the layer upload API: parts, errors, a blob the data plane serves byte for byte; BatchCheckLayerAvailability; PutImage makes an image skopeo pulls', async () => {
    const repositoryName = await createRepository();
    const image = buildRealImage();
    const partSize = (await s.ecr.send(new InitiateLayerUploadCommand({ repositoryName }))).partSize;
    assert.equal(partSize, 10 * 1024 * 1024);

    // Layers in several parts, the config in one.
    for (const b of [...image.layers, image.config]) await uploadLayer(repositoryName, b, 1500);
    for (const b of [...image.layers, image.config]) {
      const res = await authedFetch(`${s.server.baseUrl}/v2/${repositoryName}/blobs/${b.digest}`);
      assert.equal(res.status, 200);
      assert.ok(Buffer.from(await res.arrayBuffer()).equals(b.bytes), `${b.digest} is served byte-identical`);
    }

    // Errors of the upload API.
    const { uploadId } = await s.ecr.send(new InitiateLayerUploadCommand({ repositoryName }));
    await s.ecr.send(new UploadLayerPartCommand({ repositoryName, uploadId, partFirstByte: 0, partLastByte: 2, layerPartBlob: Buffer.from('abc') }));
    await expectSdkError(s.ecr.send(new UploadLayerPartCommand({ repositoryName, uploadId, partFirstByte: 5, partLastByte: 7, layerPartBlob: Buffer.from('def') })), 'InvalidLayerPartException');
    await expectSdkError(s.ecr.send(new UploadLayerPartCommand({ repositoryName, uploadId, partFirstByte: 3, partLastByte: 9, layerPartBlob: Buffer.from('def') })), 'InvalidLayerPartException');
    await expectSdkError(s.ecr.send(new CompleteLayerUploadCommand({ repositoryName, uploadId, layerDigests: [sha256('not abc')] })), 'InvalidLayerException');
    await expectSdkError(s.ecr.send(new CompleteLayerUploadCommand({ repositoryName, uploadId, layerDigests: [sha256('abc')] })), 'UploadNotFoundException');
    await expectSdkError(s.ecr.send(new UploadLayerPartCommand({ repositoryName, uploadId: '00000000-0000-4000-8000-000000000000', partFirstByte: 0, partLastByte: 0, layerPartBlob: Buffer.from('x') })), 'UploadNotFoundException');
    const empty = await s.ecr.send(new InitiateLayerUploadCommand({ repositoryName }));
    await expectSdkError(s.ecr.send(new CompleteLayerUploadCommand({ repositoryName, uploadId: empty.uploadId, layerDigests: [sha256('')] })), 'EmptyUploadException');
    const again = await s.ecr.send(new InitiateLayerUploadCommand({ repositoryName }));
    await s.ecr.send(new UploadLayerPartCommand({ repositoryName, uploadId: again.uploadId, partFirstByte: 0, partLastByte: image.config.bytes.length - 1, layerPartBlob: image.config.bytes }));
    await expectSdkError(s.ecr.send(new CompleteLayerUploadCommand({ repositoryName, uploadId: again.uploadId, layerDigests: [image.config.digest] })), 'LayerAlreadyExistsException');
    await expectSdkError(s.ecr.send(new InitiateLayerUploadCommand({ repositoryName: `${repositoryName}-missing` })), 'RepositoryNotFoundException');

    const availability = await s.ecr.send(new BatchCheckLayerAvailabilityCommand({ repositoryName, layerDigests: [image.layers[0]!.digest, sha256('absent'), 'bogus'] }));
    assert.deepEqual(availability.layers, [
      { layerDigest: image.layers[0]!.digest, layerAvailability: 'AVAILABLE', layerSize: image.layers[0]!.bytes.length },
      { layerDigest: sha256('absent'), layerAvailability: 'UNAVAILABLE' },
    ]);
    assert.deepEqual(availability.failures!.map((f) => [f.layerDigest, f.failureCode]), [['bogus', 'InvalidLayerDigest']]);

    // PutImage with the manifest: an image skopeo pulls as it was built.
    const put = await s.ecr.send(new PutImageCommand({ repositoryName, imageManifest: image.manifest.toString('utf8'), imageTag: 'v1' }));
    assert.deepEqual(put.image!.imageId, { imageDigest: image.digest, imageTag: 'v1' });
    assert.equal(put.image!.imageManifestMediaType, MT.ociManifest);
    const out = await s.tools.mkdir('put-image-pull');
    await s.tools.skopeo(['copy', '--quiet', '--src-tls-verify=false', '--src-creds', `${ADMIN.accessKeyId}:${ADMIN.secretAccessKey}`, `docker://${s.host}/${repositoryName}:v1`, `oci:${out}:v1`], { timeoutMs: 60_000 });
    const pulled = await readOciLayout(out, 'v1');
    assert.equal(pulled.descriptor.digest, image.digest);
    for (const b of [image.config, ...image.layers]) assert.ok(pulled.blobs.get(b.digest)!.equals(b.bytes), `${b.digest} pulled byte-identical`);

    // The same through the AWS CLI.
    const partFile = path.join(await s.tools.mkdir('part'), 'part.bin');
    const cliLayer = blob(Buffer.from('a layer through the AWS CLI\n'));
    await writeFile(partFile, cliLayer.bytes);
    const init = await awsOk(s.server, ADMIN, ['ecr', 'initiate-layer-upload', '--repository-name', repositoryName]);
    const part = await awsOk(s.server, ADMIN, [
      'ecr', 'upload-layer-part', '--repository-name', repositoryName, '--upload-id', init.json.uploadId,
      '--part-first-byte', '0', '--part-last-byte', String(cliLayer.bytes.length - 1), '--layer-part-blob', `fileb://${partFile}`,
    ]);
    assert.equal(part.json.lastByteReceived, cliLayer.bytes.length - 1);
    const wrongPart = await awsFails(s.server, ADMIN, [
      'ecr', 'upload-layer-part', '--repository-name', repositoryName, '--upload-id', init.json.uploadId,
      '--part-first-byte', '0', '--part-last-byte', String(cliLayer.bytes.length - 1), '--layer-part-blob', `fileb://${partFile}`,
    ]);
    assert.equal(wrongPart.errorCode, 'InvalidLayerPartException');
    const complete = await awsOk(s.server, ADMIN, ['ecr', 'complete-layer-upload', '--repository-name', repositoryName, '--upload-id', init.json.uploadId, '--layer-digests', cliLayer.digest]);
    assert.equal(complete.json.layerDigest, cliLayer.digest);
    assert.equal((await awsFails(s.server, ADMIN, ['ecr', 'complete-layer-upload', '--repository-name', repositoryName, '--upload-id', init.json.uploadId, '--layer-digests', cliLayer.digest])).errorCode, 'UploadNotFoundException');
    const cliCheck = await awsOk(s.server, ADMIN, ['ecr', 'batch-check-layer-availability', '--repository-name', repositoryName, '--layer-digests', cliLayer.digest, sha256('nothing')]);
    assert.deepEqual(cliCheck.json.layers.map((l: { layerAvailability: string }) => l.layerAvailability), ['AVAILABLE', 'UNAVAILABLE']);
    assert.equal(cliCheck.json.layers[0].layerSize, cliLayer.bytes.length);
    const served = await authedFetch(`${s.server.baseUrl}/v2/${repositoryName}/blobs/${cliLayer.digest}`);
    assert.ok(Buffer.from(await served.arrayBuffer()).equals(cliLayer.bytes));
  });

  test('PutImage: retagging, ImageAlreadyExists, digest mismatch, missing layers and images, invalid manifests (SDK and CLI)', async () => {
    const repositoryName = await createRepository();
    const image = buildImage();
    for (const b of [image.config, ...image.layers]) await pushBlob(s.server.baseUrl, repositoryName, b);
    const imageManifest = image.manifest.toString('utf8');
    const first = await s.ecr.send(new PutImageCommand({ repositoryName, imageManifest, imageTag: 'v1', imageDigest: image.digest }));
    assert.equal(first.image!.imageManifest, imageManifest);
    assert.equal((await dataPlaneManifest(repositoryName, 'v1')).headers.get('docker-content-digest'), image.digest);

    // The documented way to retag in ECR: BatchGetImage, then PutImage under the new tag.
    const retag = await s.ecr.send(new PutImageCommand({ repositoryName, imageManifest, imageTag: 'v2' }));
    assert.deepEqual(retag.image!.imageId, { imageDigest: image.digest, imageTag: 'v2' });
    await expectSdkError(s.ecr.send(new PutImageCommand({ repositoryName, imageManifest, imageTag: 'v1' })), 'ImageAlreadyExistsException');
    await expectSdkError(s.ecr.send(new PutImageCommand({ repositoryName, imageManifest })), 'ImageAlreadyExistsException');
    await expectSdkError(s.ecr.send(new PutImageCommand({ repositoryName, imageManifest, imageTag: 'v3', imageDigest: sha256('something else') })), 'ImageDigestDoesNotMatchException');

    const stranger = buildImage();
    const missingLayers = await expectSdkError(s.ecr.send(new PutImageCommand({ repositoryName, imageManifest: stranger.manifest.toString('utf8'), imageTag: 'x' })), 'LayersNotFoundException');
    assert.match(missingLayers, /sha256:/);
    const index = indexOf([image, stranger]);
    await expectSdkError(s.ecr.send(new PutImageCommand({ repositoryName, imageManifest: index.bytes.toString('utf8'), imageTag: 'multi' })), 'ReferencedImagesNotFoundException');
    await expectSdkError(s.ecr.send(new PutImageCommand({ repositoryName, imageManifest: '{"schemaVersion": 2', imageTag: 'broken' })), 'InvalidParameterException');
    const bare = JSON.stringify({ schemaVersion: 2, config: JSON.parse(imageManifest).config, layers: JSON.parse(imageManifest).layers });
    await expectSdkError(s.ecr.send(new PutImageCommand({ repositoryName, imageManifest: bare, imageTag: 'bare' })), 'InvalidParameterException');
    const typed = await s.ecr.send(new PutImageCommand({ repositoryName, imageManifest: bare, imageTag: 'bare', imageManifestMediaType: MT.ociManifest }));
    assert.equal(typed.image!.imageManifestMediaType, MT.ociManifest, 'imageManifestMediaType gives a manifest without mediaType its type');
    await expectSdkError(s.ecr.send(new PutImageCommand({ repositoryName: `${repositoryName}-missing`, imageManifest, imageTag: 'v1' })), 'RepositoryNotFoundException');

    const cli = await awsOk(s.server, ADMIN, ['ecr', 'put-image', '--repository-name', repositoryName, '--image-manifest', imageManifest, '--image-tag', 'from-cli']);
    assert.deepEqual(cli.json.image.imageId, { imageDigest: image.digest, imageTag: 'from-cli' });
    assert.equal((await awsFails(s.server, ADMIN, ['ecr', 'put-image', '--repository-name', repositoryName, '--image-manifest', imageManifest, '--image-tag', 'from-cli'])).errorCode, 'ImageAlreadyExistsException');
    assert.equal((await awsFails(s.server, ADMIN, ['ecr', 'put-image', '--repository-name', repositoryName, '--image-manifest', stranger.manifest.toString('utf8'), '--image-tag', 'y'])).errorCode, 'LayersNotFoundException');
    assert.equal((await awsFails(s.server, ADMIN, ['ecr', 'put-image', '--repository-name', repositoryName, '--image-manifest', imageManifest, '--image-tag', 'z', '--image-digest', sha256('x')])).errorCode, 'ImageDigestDoesNotMatchException');
  });

  test('BatchDeleteImage: untagging, deleting by digest, the last tag, images an index lists, failures (SDK and CLI); the data plane agrees', async () => {
    const repositoryName = await createRepository();
    const [a, b, c, d] = [buildImage(), buildImage(), buildImage(), buildImage()];
    await pushImage(s.server.baseUrl, repositoryName, a, 'a1');
    assert.equal((await pushManifest(s.server.baseUrl, repositoryName, 'a2', a.manifest, a.mediaType)).status, 201);
    await pushImage(s.server.baseUrl, repositoryName, b, 'b1');
    assert.equal((await pushManifest(s.server.baseUrl, repositoryName, 'b2', b.manifest, b.mediaType)).status, 201);
    await pushImage(s.server.baseUrl, repositoryName, c, 'c1');
    await pushImage(s.server.baseUrl, repositoryName, d, d.digest);
    const index = indexOf([d]);
    assert.equal((await pushManifest(s.server.baseUrl, repositoryName, 'multi', index.bytes, MT.ociIndex)).status, 201);

    const out = await s.ecr.send(
      new BatchDeleteImageCommand({
        repositoryName,
        imageIds: [{ imageTag: 'a1' }, { imageDigest: b.digest }, { imageDigest: d.digest }, { imageTag: 'nope' }, { imageTag: 'c1', imageDigest: a.digest }, { imageDigest: 'sha256:XYZ' }, {}],
      }),
    );
    assert.deepEqual(sortIds(out.imageIds!), [`${a.digest} a1`, `${b.digest} b1`, `${b.digest} b2`].sort());
    assert.deepEqual(
      out.failures!.map((f) => [f.imageId, f.failureCode]),
      [
        [{ imageDigest: d.digest }, 'ImageReferencedByManifestList'],
        [{ imageTag: 'nope' }, 'ImageNotFound'],
        [{ imageTag: 'c1', imageDigest: a.digest }, 'ImageTagDoesNotMatchDigest'],
        [{ imageDigest: 'sha256:XYZ' }, 'InvalidImageDigest'],
        [{}, 'MissingDigestAndTag'],
      ],
    );
    assert.match(out.failures![0]!.failureReason!, new RegExp(index.digest));
    // Untagging a1 left a with a2; deleting b by digest took both its tags.
    await expectError(await dataPlaneManifest(repositoryName, 'a1'), 404, 'MANIFEST_UNKNOWN');
    assert.equal((await dataPlaneManifest(repositoryName, 'a2')).status, 200);
    await expectError(await dataPlaneManifest(repositoryName, b.digest), 404, 'MANIFEST_UNKNOWN');
    await expectError(await dataPlaneManifest(repositoryName, 'b2'), 404, 'MANIFEST_UNKNOWN');
    assert.equal((await dataPlaneManifest(repositoryName, d.digest)).status, 200, 'still listed by the index');

    // As in ECR, the image whose last tag goes is deleted with it.
    const last = await s.ecr.send(new BatchDeleteImageCommand({ repositoryName, imageIds: [{ imageTag: 'a2' }] }));
    assert.deepEqual(last.imageIds, [{ imageDigest: a.digest, imageTag: 'a2' }]);
    await expectError(await dataPlaneManifest(repositoryName, a.digest), 404, 'MANIFEST_UNKNOWN');

    // The CLI: the index, then the image it listed.
    const cli = await awsOk(s.server, ADMIN, ['ecr', 'batch-delete-image', '--repository-name', repositoryName, '--image-ids', 'imageTag=multi', `imageDigest=${sha256('never pushed')}`]);
    assert.deepEqual(cli.json.imageIds, [{ imageDigest: index.digest, imageTag: 'multi' }]);
    assert.equal(cli.json.failures[0].failureCode, 'ImageNotFound');
    const child = await awsOk(s.server, ADMIN, ['ecr', 'batch-delete-image', '--repository-name', repositoryName, '--image-ids', `imageDigest=${d.digest}`]);
    assert.deepEqual(child.json.imageIds, [{ imageDigest: d.digest }]);
    const left = await s.ecr.send(new ListImagesCommand({ repositoryName }));
    assert.deepEqual(sortIds(left.imageIds!), [`${c.digest} c1`]);
    await expectSdkError(s.ecr.send(new BatchDeleteImageCommand({ repositoryName: `${repositoryName}-missing`, imageIds: [{ imageTag: 'x' }] })), 'RepositoryNotFoundException');
  });

  test('GetDownloadUrlForLayer: a short-lived URL that serves the layer without credentials; tampered or expired URLs are refused', async () => {
    const repositoryName = await createRepository();
    const image = buildImage({ layerBytes: 5000 });
    await pushImage(s.server.baseUrl, repositoryName, image, 'v1');
    const layer = image.layers[0]!;
    const { downloadUrl: url, layerDigest } = await s.ecr.send(new GetDownloadUrlForLayerCommand({ repositoryName, layerDigest: layer.digest }));
    assert.equal(layerDigest, layer.digest);
    const res = await fetch(url!);
    assert.equal(res.status, 200);
    assert.ok(Buffer.from(await res.arrayBuffer()).equals(layer.bytes), 'plain fetch, no credentials: the layer byte for byte');
    const ranged = await fetch(url!, { headers: { range: 'bytes=10-19' } });
    assert.equal(ranged.status, 206);
    assert.ok(Buffer.from(await ranged.arrayBuffer()).equals(layer.bytes.subarray(10, 20)));
    if (backend === 'scaleout') {
      // On S3 (blobs.redirect always) the URL is the object store's own, presigned, as ECR's is.
      const direct = new URL(url!);
      assert.equal(direct.origin, new URL(process.env['BERTH_TEST_S3_ENDPOINT']!).origin);
      assert.ok(Number(direct.searchParams.get('X-Amz-Expires')) <= 1200, 'valid for at most blobs.redirectTtlSeconds');
      const tampered = new URL(url!);
      tampered.searchParams.set('X-Amz-Expires', '604800');
      assert.equal((await fetch(tampered)).status, 403, 'a tampered presigned URL is refused by the store');
      const unsigned = new URL(url!);
      unsigned.search = '';
      assert.equal((await fetch(unsigned)).status, 403, 'the object is not public');
    } else {
      const expires = Number(new URL(url!).searchParams.get('X-Berth-Expires'));
      assert.ok(expires * 1000 > Date.now() && expires * 1000 <= Date.now() + 11 * 60_000, 'valid for about ten minutes');

      const tampered = new URL(url!);
      tampered.searchParams.set('X-Berth-Expires', String(expires + 3600));
      await expectError(await fetch(tampered), 403, 'DENIED');
      const otherDigest = new URL(url!.replace(layer.digest, image.config.digest));
      await expectError(await fetch(otherDigest), 403, 'DENIED');
      const unsigned = new URL(url!);
      unsigned.search = '';
      await expectError(await fetch(unsigned), 403, 'DENIED');
      // A URL signed with the server's own key that expired: refused as expired.
      const secrets = new Secrets(Buffer.from(readFileSync(path.join(s.server.dataDir, 'secret.key'), 'utf8').trim(), 'base64'));
      const stale = downloadUrl(secrets, s.server.baseUrl, { account: ADMIN.accountId, name: repositoryName }, layer.digest, Date.now() - 11 * 60_000);
      const expired = await expectError(await fetch(stale), 403, 'DENIED');
      assert.match(expired.errors[0]!.message, /expired/);
      const fresh = downloadUrl(secrets, s.server.baseUrl, { account: ADMIN.accountId, name: repositoryName }, layer.digest, Date.now());
      assert.equal((await fetch(fresh)).status, 200, 'the same signing, not expired, is accepted');
    }

    await expectSdkError(s.ecr.send(new GetDownloadUrlForLayerCommand({ repositoryName, layerDigest: sha256('absent') })), 'LayersNotFoundException');
    const loose = blob('a layer no image uses');
    await uploadLayer(repositoryName, loose);
    await expectSdkError(s.ecr.send(new GetDownloadUrlForLayerCommand({ repositoryName, layerDigest: loose.digest })), 'LayerInaccessibleException');
    await expectSdkError(s.ecr.send(new GetDownloadUrlForLayerCommand({ repositoryName: `${repositoryName}-missing`, layerDigest: layer.digest })), 'RepositoryNotFoundException');

    const cli = await awsOk(s.server, ADMIN, ['ecr', 'get-download-url-for-layer', '--repository-name', repositoryName, '--layer-digest', image.config.digest]);
    const viaCli = await fetch(cli.json.downloadUrl);
    assert.ok(Buffer.from(await viaCli.arrayBuffer()).equals(image.config.bytes));
    assert.equal((await awsFails(s.server, ADMIN, ['ecr', 'get-download-url-for-layer', '--repository-name', repositoryName, '--layer-digest', sha256('absent')])).errorCode, 'LayersNotFoundException');
    assert.equal((await awsFails(s.server, ADMIN, ['ecr', 'get-download-url-for-layer', '--repository-name', repositoryName, '--layer-digest', loose.digest])).errorCode, 'LayerInaccessibleException');
  });

  test('tag immutability holds on both planes: data-plane pushes and PutImage, with exclusion filters', async () => {
    const repositoryName = await createRepository({ imageTagMutability: 'IMMUTABLE' });
    const [one, two] = [buildImage(), buildImage()];
    await pushImage(s.server.baseUrl, repositoryName, one, 'v1');
    for (const b of [two.config, ...two.layers]) await pushBlob(s.server.baseUrl, repositoryName, b);

    const refused = await expectError(await pushManifest(s.server.baseUrl, repositoryName, 'v1', two.manifest, two.mediaType), 400, 'TAG_INVALID');
    assert.equal(refused.errors[0]!.message, `The image tag 'v1' already exists in the '${repositoryName}' repository and cannot be overwritten because the repository is immutable.`);
    await expectError(await pushManifest(s.server.baseUrl, repositoryName, 'v1', one.manifest, one.mediaType), 400, 'TAG_INVALID'); // even the same image, as ECR
    assert.equal((await pushManifest(s.server.baseUrl, repositoryName, 'v2', two.manifest, two.mediaType)).status, 201, 'a new tag is fine');
    assert.equal((await dataPlaneManifest(repositoryName, 'v1')).headers.get('docker-content-digest'), one.digest);

    const message = await expectSdkError(s.ecr.send(new PutImageCommand({ repositoryName, imageManifest: two.manifest.toString('utf8'), imageTag: 'v1' })), 'ImageTagAlreadyExistsException');
    assert.match(message, /cannot be overwritten/);
    await expectSdkError(s.ecr.send(new PutImageCommand({ repositoryName, imageManifest: one.manifest.toString('utf8'), imageTag: 'v1' })), 'ImageAlreadyExistsException');
    assert.equal((await awsFails(s.server, ADMIN, ['ecr', 'put-image', '--repository-name', repositoryName, '--image-manifest', two.manifest.toString('utf8'), '--image-tag', 'v1'])).errorCode, 'ImageTagAlreadyExistsException');

    // Deleting an immutable tag is allowed (immutability only forbids moving it); then it is free again.
    await s.ecr.send(new BatchDeleteImageCommand({ repositoryName, imageIds: [{ imageTag: 'v1' }] }));
    assert.equal((await pushManifest(s.server.baseUrl, repositoryName, 'v1', two.manifest, two.mediaType)).status, 201);

    // Back to MUTABLE: the tag moves.
    await s.ecr.send(new PutImageTagMutabilityCommand({ repositoryName, imageTagMutability: 'MUTABLE' }));
    assert.equal((await pushManifest(s.server.baseUrl, repositoryName, 'v2', one.manifest, one.mediaType)).status, 201);

    // Exclusion filters: IMMUTABLE except dev-*; MUTABLE except release-*.
    const excepted = await createRepository({ imageTagMutability: 'IMMUTABLE_WITH_EXCLUSION', filters: ['dev-*'] });
    for (const img of [one, two]) await pushImage(s.server.baseUrl, excepted, img, img.digest);
    for (const tag of ['dev-1', 'v1']) assert.equal((await pushManifest(s.server.baseUrl, excepted, tag, one.manifest, one.mediaType)).status, 201);
    assert.equal((await pushManifest(s.server.baseUrl, excepted, 'dev-1', two.manifest, two.mediaType)).status, 201, 'dev-* is mutable');
    await expectError(await pushManifest(s.server.baseUrl, excepted, 'v1', two.manifest, two.mediaType), 400, 'TAG_INVALID');
    const mutableExcept = await createRepository({ imageTagMutability: 'MUTABLE_WITH_EXCLUSION', filters: ['release-*'] });
    for (const img of [one, two]) await pushImage(s.server.baseUrl, mutableExcept, img, img.digest);
    await s.ecr.send(new PutImageCommand({ repositoryName: mutableExcept, imageManifest: one.manifest.toString('utf8'), imageTag: 'release-1' }));
    await s.ecr.send(new PutImageCommand({ repositoryName: mutableExcept, imageManifest: one.manifest.toString('utf8'), imageTag: 'latest' }));
    await s.ecr.send(new PutImageCommand({ repositoryName: mutableExcept, imageManifest: two.manifest.toString('utf8'), imageTag: 'latest' }));
    await expectSdkError(s.ecr.send(new PutImageCommand({ repositoryName: mutableExcept, imageManifest: two.manifest.toString('utf8'), imageTag: 'release-1' })), 'ImageTagAlreadyExistsException');
  });

  test('ListImageReferrers: the referrers API\'s data, filtered by artifact type and paged (SDK and CLI)', async () => {
    const repositoryName = await createRepository();
    const subject = buildImage();
    await pushImage(s.server.baseUrl, repositoryName, subject, 'v1');
    const empty = blob('{}');
    await pushBlob(s.server.baseUrl, repositoryName, empty);
    const referrer = (artifactType: string, n: number) => {
      const bytes = Buffer.from(JSON.stringify({
        schemaVersion: 2,
        mediaType: MT.ociManifest,
        artifactType,
        config: { mediaType: MT.ociEmpty, digest: empty.digest, size: 2 },
        layers: [{ mediaType: MT.ociEmpty, digest: empty.digest, size: 2 }],
        subject: { mediaType: subject.mediaType, digest: subject.digest, size: subject.manifest.length },
        annotations: { n: String(n) },
      }));
      return { bytes, digest: sha256(bytes) };
    };
    const refs = [referrer('application/vnd.example.sbom', 1), referrer('application/vnd.example.sig', 2), referrer('application/vnd.example.sig', 3)];
    for (const r of refs) assert.equal((await pushManifest(s.server.baseUrl, repositoryName, r.digest, r.bytes, MT.ociManifest)).status, 201);

    const oci = await (await authedFetch(`${s.server.baseUrl}/v2/${repositoryName}/referrers/${subject.digest}`)).json() as { manifests: { digest: string; artifactType: string; size: number; annotations: Record<string, string> }[] };
    const listed = await s.ecr.send(new ListImageReferrersCommand({ repositoryName, subjectId: { imageDigest: subject.digest } }));
    assert.deepEqual(
      listed.referrers!.map((r) => ({ digest: r.digest, artifactType: r.artifactType, size: r.size, annotations: r.annotations })),
      oci.manifests.map((m) => ({ digest: m.digest, artifactType: m.artifactType, size: m.size, annotations: m.annotations })),
      'the same referrers as the OCI referrers API, in the same order',
    );
    assert.equal(listed.referrers!.length, 3);
    assert.ok(listed.referrers!.every((r) => r.mediaType === MT.ociManifest && r.artifactStatus === 'ACTIVE'));

    const sigs = await s.ecr.send(new ListImageReferrersCommand({ repositoryName, subjectId: { imageDigest: subject.digest }, filter: { artifactTypes: ['application/vnd.example.sig'] } }));
    assert.deepEqual(sigs.referrers!.map((r) => r.digest).sort(), [refs[1]!.digest, refs[2]!.digest].sort());
    const page1 = await s.ecr.send(new ListImageReferrersCommand({ repositoryName, subjectId: { imageDigest: subject.digest }, maxResults: 2 }));
    assert.equal(page1.referrers!.length, 2);
    const page2 = await s.ecr.send(new ListImageReferrersCommand({ repositoryName, subjectId: { imageDigest: subject.digest }, maxResults: 2, nextToken: page1.nextToken }));
    assert.deepEqual([...page1.referrers!, ...page2.referrers!].map((r) => r.digest), listed.referrers!.map((r) => r.digest));
    assert.equal(page2.nextToken, undefined);

    const detail = (await s.ecr.send(new DescribeImagesCommand({ repositoryName, imageIds: [{ imageDigest: refs[0]!.digest }] }))).imageDetails![0]!;
    assert.equal(detail.subjectManifestDigest, subject.digest);
    assert.equal(detail.artifactMediaType, MT.ociEmpty, 'artifactMediaType is the config media type');
    await expectSdkError(s.ecr.send(new ListImageReferrersCommand({ repositoryName: `${repositoryName}-missing`, subjectId: { imageDigest: subject.digest } })), 'RepositoryNotFoundException');

    const cli = await awsOk(s.server, ADMIN, ['ecr', 'list-image-referrers', '--repository-name', repositoryName, '--subject-id', `imageDigest=${subject.digest}`, '--filter', 'artifactTypes=application/vnd.example.sbom']);
    assert.deepEqual(cli.json.referrers.map((r: { digest: string }) => r.digest), [refs[0]!.digest]);
    const cliPage = await awsOk(s.server, ADMIN, ['ecr', 'list-image-referrers', '--repository-name', repositoryName, '--subject-id', `imageDigest=${subject.digest}`, '--max-results', '2']);
    assert.equal(cliPage.json.referrers.length, 2);
    assert.ok(cliPage.json.nextToken);
    const missing = await awsFails(s.server, ADMIN, ['ecr', 'list-image-referrers', '--repository-name', `${repositoryName}-missing`, '--subject-id', `imageDigest=${subject.digest}`]);
    assert.equal(missing.errorCode, 'RepositoryNotFoundException');
  });

  test('round trip: CreateRepository, get-login-password | skopeo login, skopeo copy, describe-images, batch-get-image, batch-delete-image', async () => {
    const repositoryName = repoName('roundtrip');
    const created = await awsOk(s.server, ADMIN, ['ecr', 'create-repository', '--repository-name', repositoryName]);
    assert.equal(created.json.repository.repositoryName, repositoryName);
    const password = (await awsOk(s.server, ADMIN, ['ecr', 'get-login-password'])).stdout.trim();
    await s.tools.skopeo(['login', '--tls-verify=false', '--username', 'AWS', '--password-stdin', s.host], { input: password });

    const image = buildRealImage({ layers: [[{ name: 'hello.txt', content: 'hello from the round trip\n' }], [{ name: 'second.txt', content: 'a second layer\n' }]] });
    const layout = await s.tools.mkdir('roundtrip');
    await writeOciLayout(layout, [{ tag: '1.0', content: image }]);
    await s.tools.skopeo(['copy', '--quiet', '--dest-tls-verify=false', `oci:${layout}:1.0`, `docker://${s.host}/${repositoryName}:1.0`], { timeoutMs: 60_000 });

    const described = await awsOk(s.server, ADMIN, ['ecr', 'describe-images', '--repository-name', repositoryName]);
    assert.equal(described.json.imageDetails.length, 1);
    const detail = described.json.imageDetails[0];
    assert.equal(detail.imageDigest, image.digest);
    assert.deepEqual(detail.imageTags, ['1.0']);
    assert.equal(detail.imageSizeInBytes, image.layers.reduce((sum, l) => sum + l.bytes.length, 0));
    assert.equal(detail.imageManifestMediaType, image.mediaType);

    const got = await awsOk(s.server, ADMIN, ['ecr', 'batch-get-image', '--repository-name', repositoryName, '--image-ids', 'imageTag=1.0']);
    assert.ok(Buffer.from(got.json.images[0].imageManifest, 'utf8').equals(image.manifest), 'the manifest bytes unchanged');
    assert.deepEqual(got.json.failures, []);

    // Made immutable, the tag refuses another image from skopeo too, with ECR's words.
    await awsOk(s.server, ADMIN, ['ecr', 'put-image-tag-mutability', '--repository-name', repositoryName, '--image-tag-mutability', 'IMMUTABLE']);
    const other = buildRealImage();
    await writeOciLayout(layout, [{ tag: '1.0', content: image }, { tag: 'other', content: other }]);
    const refused = await s.tools.skopeo(['copy', '--quiet', '--dest-tls-verify=false', `oci:${layout}:other`, `docker://${s.host}/${repositoryName}:1.0`], { timeoutMs: 60_000, allowFailure: true });
    assert.notEqual(refused.code, 0);
    assert.match(refused.stderr, /already exists in the '[^']+' repository and cannot be overwritten because the repository is immutable/, refused.stderr);

    const deleted = await awsOk(s.server, ADMIN, ['ecr', 'batch-delete-image', '--repository-name', repositoryName, '--image-ids', `imageDigest=${image.digest}`]);
    assert.deepEqual(deleted.json.imageIds, [{ imageDigest: image.digest, imageTag: '1.0' }]);
    await expectError(await dataPlaneManifest(repositoryName, '1.0'), 404, 'MANIFEST_UNKNOWN');
    await expectError(await dataPlaneManifest(repositoryName, image.digest), 404, 'MANIFEST_UNKNOWN');
    const again = await aws(s.server, ADMIN, ['ecr', 'list-images', '--repository-name', repositoryName]);
    assert.deepEqual(again.json.imageIds, []);
  });
});

test('recorded pulls are written to the store: lastRecordedPullTime survives a restart', async () => {
  const first = await startServer({ env: { BERTH_REPOSITORIES_CREATE_ON_PUSH: 'false' } });
  let second: TestServer | undefined;
  try {
    const ecr = ecrClient(first, ADMIN);
    const repositoryName = repoName('pulls');
    await ecr.send(new CreateRepositoryCommand({ repositoryName }));
    const image = buildImage();
    await pushImage(first.baseUrl, repositoryName, image, 'v1');
    await ecr.send(new BatchGetImageCommand({ repositoryName, imageIds: [{ imageTag: 'v1' }] }));
    const before = (await ecr.send(new DescribeImagesCommand({ repositoryName }))).imageDetails![0]!.lastRecordedPullTime;
    assert.ok(before instanceof Date);
    // SIGTERM: the server writes the pulls it still holds before it exits.
    await first.kill('SIGTERM');
    second = await startServer({ dataDir: first.dataDir, env: { BERTH_REPOSITORIES_CREATE_ON_PUSH: 'false' } });
    const after = (await ecrClient(second, ADMIN).send(new DescribeImagesCommand({ repositoryName }))).imageDetails![0]!.lastRecordedPullTime;
    assert.equal(after?.getTime(), before.getTime());
  } finally {
    await second?.kill('SIGTERM');
    await first.close();
  }
});
