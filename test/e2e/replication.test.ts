import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { test, type TestContext } from 'node:test';
import { CreateRepositoryCreationTemplateCommand } from '@aws-sdk/client-ecr';
import { ADMIN, authedFetch, basicAuthorization } from '../support/auth.ts';
import { awsFails, awsOk, ecrRequest, requireAwsCli, signedFetch, type AwsCredentials } from '../support/aws.ts';
import { startDistribution } from '../support/distribution.ts';
import { httpRequest } from '../support/http.ts';
import { buildRealImage, readDirImage, writeOciLayout } from '../support/layout.ts';
import { MT, assertPullsBack, blob, buildImage, imageOver, pushBlob, pushImage, pushManifest, repoName, sha256, waitFor, type BuiltImage } from '../support/oci.ts';
import {
  berthPeer,
  ecrOf,
  ociPeer,
  putRules,
  replicationEvents,
  replicationStatuses,
  startRegion,
  waitForReplication,
  type Region,
} from '../support/replication.ts';
import { berth, runBerth } from '../support/server.ts';
import { requireTools, toolSandbox, type ToolSandbox } from '../support/tools.ts';

/**
 * Replication as a user sees it (docs/replication.md): each test starts its own "regions" (Berth
 * servers on loopback, each with its BERTH_REGION and replication.peers), configures replication
 * with the real AWS CLI or the SDK, pushes with podman, skopeo or plain HTTP, waits for
 * DescribeImageReplicationStatus to report the outcome, and reads the destination back with
 * skopeo, the OCI API and its event log.
 */

const A = ADMIN.accountId;
const WEST = { region: 'us-west-2', registryId: A };

/** `aws ecr ARGS...` against a region (signed for it), as `creds`; resolves the parsed output. */
async function ecrCli(region: Region, args: string[], creds: AwsCredentials = ADMIN): Promise<any> {
  return (await awsOk(region, creds, ['ecr', '--region', region.region, ...args])).json;
}

/** The digest `reference` names in the region's repository (default account), or undefined when absent. */
async function headDigest(region: Region, repository: string, reference: string): Promise<string | undefined> {
  const res = await authedFetch(`${region.baseUrl}/v2/${repository}/manifests/${reference}`, {
    method: 'HEAD',
    headers: { accept: [MT.ociManifest, MT.ociIndex, MT.dockerManifest, MT.dockerList].join(', ') },
  });
  if (res.status === 404) return undefined;
  assert.equal(res.status, 200, `HEAD ${repository}:${reference} in ${region.region}`);
  return res.headers.get('docker-content-digest')!;
}

/** A fresh sandbox for skopeo and podman, logged in as the administrator to each host. */
async function sandbox(t: TestContext, ...hosts: string[]): Promise<ToolSandbox> {
  const tools = await toolSandbox();
  t.after(() => tools.close());
  for (const host of hosts) await tools.login(host);
  return tools;
}

/** `skopeo copy` of an image to a dir: layout; resolves its manifest bytes and every blob. */
async function pullToDir(tools: ToolSandbox, ref: string, extra: string[] = []): Promise<{ manifest: Buffer; blobs: Map<string, Buffer> }> {
  const dir = await tools.mkdir('pulled');
  await tools.skopeo(['copy', '--quiet', '--src-tls-verify=false', ...extra, `docker://${ref}`, `dir:${dir}`]);
  return readDirImage(dir);
}

function assertSameImage(got: { manifest: Buffer; blobs: Map<string, Buffer> }, want: { manifest: Buffer; blobs: Map<string, Buffer> }, what: string): void {
  assert.ok(got.manifest.equals(want.manifest), `${what}: the manifest is byte-identical`);
  assert.deepEqual([...got.blobs.keys()].sort(), [...want.blobs.keys()].sort(), `${what}: the same blobs`);
  for (const [digest, bytes] of want.blobs) assert.ok(got.blobs.get(digest)?.equals(bytes), `${what}: blob ${digest} is byte-identical`);
}

/** The `ECR Replication Action` events of a region's log, as `digest tag source-account source-region` rows. */
async function replicatedRows(region: Region, repository?: string): Promise<string[]> {
  return (await replicationEvents(region, repository ? { repository } : {}))
    .filter((e) => e.event['detail-type'] === 'ECR Replication Action')
    .map(({ event: { detail } }) => `${detail['repository-name']} ${detail['image-digest']} ${detail['image-tag']} ${detail['source-account']} ${detail['source-region']}`);
}

test('a podman push to us-east-1 arrives byte-identical in us-west-2, as the AWS CLI and both event logs report; an image pushed before the rule stays behind', async (t) => {
  if (!requireTools(t, 'podman', 'skopeo')) return;
  requireAwsCli();
  // As ECR: us-west-2 creates no repository on a plain push; replication creates the one it needs.
  const b = await startRegion(t, { region: 'us-west-2', env: { BERTH_REPOSITORIES_CREATE_ON_PUSH: 'false' } });
  const a = await startRegion(t, { region: 'us-east-1', peers: [berthPeer(b)] });
  const tools = await sandbox(t, a.host, b.host);
  const repository = repoName('podman');
  // us-west-2 scans every image on arrival: a replicated one too.
  const scanOnPush = [{ scanFrequency: 'SCAN_ON_PUSH', repositoryFilters: [{ filter: '*', filterType: 'WILDCARD' }] }];
  await ecrCli(b, ['put-registry-scanning-configuration', '--scan-type', 'BASIC', '--rules', JSON.stringify(scanOnPush)]);

  const early = buildRealImage();
  await pushImage(a.baseUrl, repository, early, 'early');

  const configuration = { rules: [{ destinations: [WEST] }] };
  await ecrCli(a, ['put-replication-configuration', '--replication-configuration', JSON.stringify(configuration)]);
  assert.deepEqual(await ecrCli(a, ['describe-registry']), { registryId: A, replicationConfiguration: configuration });

  // podman pushes an image built in code (into its storage from an OCI layout first).
  const image = buildRealImage({ layers: [[{ name: 'app', type: 'dir' }, { name: 'app/payload', content: randomBytes(2048) }], [{ name: 'etc', type: 'dir' }, { name: 'etc/motd', content: 'replicated\n' }]] });
  const src = await tools.mkdir('src');
  await writeOciLayout(src, [{ tag: 'v1', content: image }]);
  await tools.podman(['pull', '--quiet', `oci:${src}:v1`]);
  const ref = `${a.host}/${repository}:v1`;
  await tools.podman(['tag', image.config.digest.slice('sha256:'.length), ref]);
  const digestFile = path.join(tools.dir, 'pushed.digest');
  await tools.podman(['push', '--quiet', '--tls-verify=false', '--digestfile', digestFile, ref]);
  const pushed = (await readFile(digestFile, 'utf8')).trim();

  await waitForReplication(a, repository, { imageTag: 'v1' }, WEST);
  const status = await ecrCli(a, ['describe-image-replication-status', '--repository-name', repository, '--image-id', 'imageTag=v1']);
  assert.deepEqual(status, { repositoryName: repository, imageId: { imageDigest: pushed, imageTag: 'v1' }, replicationStatuses: [{ region: 'us-west-2', registryId: A, status: 'COMPLETE' }] });

  // skopeo reads the same manifest bytes from both regions, and the same blobs.
  const rawA = await tools.skopeo(['inspect', '--raw', '--tls-verify=false', `docker://${a.host}/${repository}:v1`]);
  const rawB = await tools.skopeo(['inspect', '--raw', '--tls-verify=false', `docker://${b.host}/${repository}:v1`]);
  assert.equal(sha256(Buffer.from(rawB.stdout, 'utf8')), pushed, 'the manifest in us-west-2 has the pushed digest');
  assert.equal(rawB.stdout, rawA.stdout);
  const fromA = await pullToDir(tools, `${a.host}/${repository}:v1`);
  const fromB = await pullToDir(tools, `${b.host}/${repository}:v1`);
  assert.equal(fromB.blobs.size, 3, 'a config and two layers');
  assertSameImage(fromB, fromA, 'us-west-2 against us-east-1');

  // The source's log has the push; the destination's the replication, naming where it came from, and no push.
  const sourceEvents = (await replicationEvents(a, { repository })).map((e) => [e.event['detail-type'], e.event.detail['action-type'], e.event.detail['image-tag'], e.event.detail['image-digest']]);
  assert.deepEqual(
    sourceEvents.filter(([type]) => type === 'ECR Image Action'),
    [
      ['ECR Image Action', 'PUSH', 'early', early.digest],
      ['ECR Image Action', 'PUSH', 'v1', pushed],
    ],
  );
  const destinationEvents = await replicationEvents(b, { repository });
  assert.deepEqual(destinationEvents.filter((e) => e.event['detail-type'] === 'ECR Image Action'), [], 'a replicated image is no push in the destination');
  const replicated = destinationEvents.filter((e) => e.event['detail-type'] === 'ECR Replication Action');
  assert.deepEqual(replicated.map((e) => e.event.detail['image-tag']), ['v1'], 'one arrival, under its tag');
  for (const { event } of replicated) {
    assert.deepEqual(
      { account: event.account, region: event.region, detail: event.detail },
      { account: A, region: 'us-west-2', detail: { result: 'SUCCESS', 'repository-name': repository, 'image-digest': pushed, 'source-account': A, 'action-type': 'REPLICATE', 'source-region': 'us-east-1', 'image-tag': event.detail['image-tag'] } },
    );
  }

  const [created] = (await ecrCli(b, ['describe-repositories', '--repository-names', repository])).repositories;
  assert.equal(created.imageTagMutability, 'MUTABLE', 'no REPLICATION template: the defaults');
  assert.deepEqual(
    destinationEvents.filter((e) => e.event['detail-type'] === 'Berth Repository Action').map((e) => e.event.detail['action-type']),
    ['CREATE'],
    'replication created the repository',
  );

  // Scan on push in us-west-2 scanned the replicated image (it has no vulnerability database, so the scan says so).
  const scanned = await waitFor(async () => {
    const r = await awsOk(b, ADMIN, ['ecr', '--region', b.region, 'describe-image-scan-findings', '--repository-name', repository, '--image-id', 'imageTag=v1']).catch(() => undefined);
    const scanStatus = r?.json?.imageScanStatus?.status as string | undefined;
    return scanStatus !== undefined && scanStatus !== 'IN_PROGRESS' && scanStatus !== 'PENDING' ? r!.json.imageScanStatus : undefined;
  }, { timeoutMs: 120_000, intervalMs: 500, what: 'the scan of the replicated image in us-west-2' });
  assert.equal(scanned.status, 'FAILED');
  assert.match(scanned.description, /No vulnerability database has been imported/);

  // The image pushed before the rule existed was not replicated (ECR replicates later pushes only).
  const earlyStatus = await ecrCli(a, ['describe-image-replication-status', '--repository-name', repository, '--image-id', 'imageTag=early']);
  assert.deepEqual(earlyStatus.replicationStatuses, []);
  assert.equal(await headDigest(b, repository, early.digest), undefined);
  assert.equal(await headDigest(b, repository, 'early'), undefined);
});

test('replication is not transitive: what us-east-1 sends to us-west-2 goes no further, while us-west-2\'s own push reaches eu-west-1', async (t) => {
  const c = await startRegion(t, { region: 'eu-west-1' });
  const b = await startRegion(t, { region: 'us-west-2', peers: [berthPeer(c)] });
  const a = await startRegion(t, { region: 'us-east-1', peers: [berthPeer(b)] });
  const EU = { region: 'eu-west-1', registryId: A };
  await putRules(a, [{ destinations: [WEST] }]);
  await putRules(b, [{ destinations: [EU] }]);
  const repository = repoName('chain');

  const first = buildImage({ layers: 2 });
  await pushImage(a.baseUrl, repository, first, 'from-east');
  await waitForReplication(a, repository, { imageDigest: first.digest }, WEST);
  await assertPullsBack(b.baseUrl, repository, 'from-east', first);

  // B's own push, after the replicated one in B's log, reaches C; once it has, B's rules have read past the replication.
  const second = buildImage({ layers: 1 });
  await pushImage(b.baseUrl, repository, second, 'from-west');
  await waitForReplication(b, repository, { imageDigest: second.digest }, EU);
  await assertPullsBack(c.baseUrl, repository, 'from-west', second);

  assert.deepEqual(await replicationStatuses(b, repository, { imageDigest: first.digest }), [], 'B queued nothing for the image it received');
  assert.equal(await headDigest(c, repository, first.digest), undefined, 'C never got the image from A');
  assert.equal(await headDigest(c, repository, 'from-east'), undefined);
  assert.deepEqual(await replicatedRows(c), [`${repository} ${second.digest} from-west ${A} us-west-2`], 'C holds only B\'s push');
});

test('a multi-arch index with a signature arrives whole: the index, both platforms, every blob, and the signature in the referrers API', async (t) => {
  const b = await startRegion(t, { region: 'us-west-2' });
  const a = await startRegion(t, { region: 'us-east-1', peers: [berthPeer(b)] });
  await putRules(a, [{ destinations: [WEST] }]);
  const repository = repoName('multi');

  const shared = blob(randomBytes(4096));
  const amd64 = imageOver([shared, blob(randomBytes(2048))], { platform: { os: 'linux', architecture: 'amd64' } });
  const arm64 = imageOver([shared, blob(randomBytes(2048))], { platform: { os: 'linux', architecture: 'arm64' } });
  for (const image of [amd64, arm64]) await pushImage(a.baseUrl, repository, image, image.digest);
  const index = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: MT.ociIndex,
      manifests: [
        { mediaType: MT.ociManifest, digest: amd64.digest, size: amd64.manifest.length, platform: { os: 'linux', architecture: 'amd64' } },
        { mediaType: MT.ociManifest, digest: arm64.digest, size: arm64.manifest.length, platform: { os: 'linux', architecture: 'arm64' } },
      ],
    }),
  );
  const indexDigest = sha256(index);
  assert.equal((await pushManifest(a.baseUrl, repository, 'multi', index, MT.ociIndex)).status, 201);

  // A signature: an artifact manifest whose subject is the index (image-spec "Guidelines for Artifact Usage").
  const SIGNATURE = 'application/vnd.dev.cosign.artifact.sig.v1+json';
  const empty = blob('{}');
  const payload = blob(randomBytes(256));
  for (const part of [empty, payload]) await pushBlob(a.baseUrl, repository, part);
  const signature = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: MT.ociManifest,
      artifactType: SIGNATURE,
      config: { mediaType: MT.ociEmpty, digest: empty.digest, size: empty.bytes.length },
      layers: [{ mediaType: 'application/vnd.dev.cosign.simplesigning.v1+json', digest: payload.digest, size: payload.bytes.length }],
      subject: { mediaType: MT.ociIndex, digest: indexDigest, size: index.length },
      annotations: { 'dev.sigstore.cosign/signature': 'MEUCIQ-test' },
    }),
  );
  const signatureDigest = sha256(signature);
  assert.equal((await pushManifest(a.baseUrl, repository, signatureDigest, signature, MT.ociManifest)).status, 201);

  await waitForReplication(a, repository, { imageTag: 'multi' }, WEST);
  await waitForReplication(a, repository, { imageDigest: signatureDigest }, WEST);

  const got = await authedFetch(`${b.baseUrl}/v2/${repository}/manifests/multi`, { headers: { accept: MT.ociIndex } });
  assert.equal(got.status, 200);
  assert.equal(got.headers.get('content-type'), MT.ociIndex);
  assert.ok(Buffer.from(await got.arrayBuffer()).equals(index), 'the index is byte-identical');
  for (const image of [amd64, arm64]) await assertPullsBack(b.baseUrl, repository, image.digest, image);
  const sig = await authedFetch(`${b.baseUrl}/v2/${repository}/manifests/${signatureDigest}`, { headers: { accept: MT.ociManifest } });
  assert.ok(Buffer.from(await sig.arrayBuffer()).equals(signature), 'the signature manifest is byte-identical');
  for (const part of [empty, payload]) {
    const res = await authedFetch(`${b.baseUrl}/v2/${repository}/blobs/${part.digest}`);
    assert.ok(Buffer.from(await res.arrayBuffer()).equals(part.bytes), `signature blob ${part.digest}`);
  }
  const referrers = await authedFetch(`${b.baseUrl}/v2/${repository}/referrers/${indexDigest}`);
  assert.equal(referrers.status, 200);
  const listed = (await referrers.json()) as { manifests: Array<{ digest: string; artifactType?: string; annotations?: Record<string, string> }> };
  assert.deepEqual(
    listed.manifests.map((m) => ({ digest: m.digest, artifactType: m.artifactType, annotations: m.annotations })),
    [{ digest: signatureDigest, artifactType: SIGNATURE, annotations: { 'dev.sigstore.cosign/signature': 'MEUCIQ-test' } }],
  );
});

test('cross-account in one region: denied until the destination account\'s registry policy allows it, then created from its REPLICATION template', async (t) => {
  requireAwsCli();
  const server = await startRegion(t, { region: 'us-east-1' });
  const second = (await berth(server, ['account', 'create', '--account-id', '444455556666'])) as AwsCredentials & { accountId: string };
  const destination = { region: 'us-east-1', registryId: second.accountId };
  const repository = repoName('shared');
  // The second account's template for what replication creates: immutable tags.
  await ecrOf(server, second).send(new CreateRepositoryCreationTemplateCommand({ prefix: 'ROOT', appliedFor: ['REPLICATION'], imageTagMutability: 'IMMUTABLE' }));
  await ecrCli(server, ['put-replication-configuration', '--replication-configuration', JSON.stringify({ rules: [{ destinations: [destination] }] })]);

  const image = buildImage({ layers: 2 });
  await pushImage(server.baseUrl, repository, image, 'v1');
  const denied = await waitForReplication(server, repository, { imageTag: 'v1' }, destination, { status: 'FAILED' });
  assert.equal(denied.failureCode, 'REPLICATE_IMAGE_DENIED');
  const cliStatus = await ecrCli(server, ['describe-image-replication-status', '--repository-name', repository, '--image-id', 'imageTag=v1']);
  assert.deepEqual(cliStatus.replicationStatuses, [{ region: 'us-east-1', registryId: second.accountId, status: 'FAILED', failureCode: 'REPLICATE_IMAGE_DENIED' }]);
  const missing = await awsFails(server, second, ['ecr', 'describe-repositories', '--repository-names', repository]);
  assert.equal(missing.errorCode, 'RepositoryNotFoundException', 'nothing was created in the second account');

  // The second account lets the first replicate into it and create its repositories.
  const policy = {
    Version: '2012-10-17',
    Statement: [{ Sid: 'ReplicationFromFirst', Effect: 'Allow', Principal: { AWS: `arn:aws:iam::${A}:root` }, Action: ['ecr:ReplicateImage', 'ecr:CreateRepository'], Resource: `arn:aws:ecr:us-east-1:${second.accountId}:repository/*` }],
  };
  await ecrCli(server, ['put-registry-policy', '--policy-text', JSON.stringify(policy)], second);
  assert.equal((await pushManifest(server.baseUrl, repository, 'v2', image.manifest, image.mediaType)).status, 201);
  // Until the worker reads the new push, the status still says FAILED.
  await waitForReplication(server, repository, { imageTag: 'v2' }, destination, { failFast: false });

  const got = await ecrCli(server, ['batch-get-image', '--registry-id', second.accountId, '--repository-name', repository, '--image-ids', 'imageTag=v2'], second);
  assert.equal(got.failures.length, 0, JSON.stringify(got.failures));
  assert.equal(got.images[0].imageId.imageDigest, image.digest);
  assert.equal(got.images[0].imageManifest, image.manifest.toString());
  // The data plane of the second account (its id as the host's first label) serves it, blobs included.
  const head = await httpRequest(new URL(`/v2/${repository}/manifests/v2`, server.baseUrl), {
    method: 'GET',
    headers: { host: `${second.accountId}.127.0.0.1:${server.port}`, accept: image.mediaType, authorization: basicAuthorization(second.accessKeyId, second.secretAccessKey) },
  });
  assert.equal(head.status, 200);
  assert.ok(head.body.equals(image.manifest));
  const layer = await httpRequest(new URL(`/v2/${repository}/blobs/${image.layers[0]!.digest}`, server.baseUrl), {
    method: 'GET',
    headers: { host: `${second.accountId}.127.0.0.1:${server.port}`, authorization: basicAuthorization(second.accessKeyId, second.secretAccessKey) },
  });
  // On an S3 blob store the blob is a redirect to the store (blobs.redirect), as for any pull.
  const layerBytes = layer.status === 307 ? Buffer.from(await (await fetch(String(layer.headers.location))).arrayBuffer()) : layer.body;
  assert.ok([200, 307].includes(layer.status), `GET blob: ${layer.status}`);
  assert.ok(layerBytes.equals(image.layers[0]!.bytes), 'the layer is readable in the second account');

  const [created] = (await ecrCli(server, ['describe-repositories', '--repository-names', repository], second)).repositories;
  assert.equal(created.registryId, second.accountId);
  assert.equal(created.imageTagMutability, 'IMMUTABLE', 'the REPLICATION template of the second account applied');
});

test('an immutable tag that names another image in the destination fails the replication with TAG_IMMUTABLE_CONFLICT and stays as it was', async (t) => {
  requireAwsCli();
  const b = await startRegion(t, { region: 'us-west-2' });
  const a = await startRegion(t, { region: 'us-east-1', peers: [berthPeer(b)] });
  await ecrCli(b, ['create-repository', '--repository-name', 'app', '--image-tag-mutability', 'IMMUTABLE']);
  const x = buildImage({ layers: 1 });
  await pushImage(b.baseUrl, 'app', x, 'v1');
  await putRules(a, [{ destinations: [WEST] }]);

  const y = buildImage({ layers: 1 });
  await pushImage(a.baseUrl, 'app', y, 'v1');
  const failed = await waitForReplication(a, 'app', { imageTag: 'v1' }, WEST, { status: 'FAILED' });
  assert.equal(failed.failureCode, 'TAG_IMMUTABLE_CONFLICT');
  assert.deepEqual((await ecrCli(a, ['describe-image-replication-status', '--repository-name', 'app', '--image-id', 'imageTag=v1'])).replicationStatuses, [
    { region: 'us-west-2', registryId: A, status: 'FAILED', failureCode: 'TAG_IMMUTABLE_CONFLICT' },
  ]);
  assert.equal(await headDigest(b, 'app', 'v1'), x.digest, 'v1 still names the image it named in us-west-2');
  await assertPullsBack(b.baseUrl, 'app', 'v1', x);
  const status = await berth(a, ['replication', 'status']);
  assert.equal(status.destinations[0].lastFailure.failureCode, 'TAG_IMMUTABLE_CONFLICT');
  assert.match(status.destinations[0].lastFailure.error, /immutable/);

  // The operator decides us-east-1's image wins: the tag goes in us-west-2, and the failed replication is queued again.
  await ecrCli(b, ['batch-delete-image', '--repository-name', 'app', '--image-ids', 'imageTag=v1']);
  const plain = await berth(a, ['replication', 'backfill']);
  assert.deepEqual({ queued: plain.queued, alreadyKnown: plain.alreadyKnown, retried: plain.retried }, { queued: 0, alreadyKnown: 1, retried: 0 }, 'a plain backfill leaves a FAILED image alone');
  const retried = await berth(a, ['replication', 'backfill', '--retry-failed']);
  assert.deepEqual({ queued: retried.queued, retried: retried.retried }, { queued: 0, retried: 1 });
  await waitForReplication(a, 'app', { imageTag: 'v1' }, WEST, { failFast: false });
  assert.equal(await headDigest(b, 'app', 'v1'), y.digest, 'v1 now names the replicated image');
});

test('berth replication backfill copies what was pushed before the rule exactly once, with its tags, and says so in dry runs, the API and the status', async (t) => {
  const b = await startRegion(t, { region: 'us-west-2' });
  const a = await startRegion(t, { region: 'us-east-1', peers: [berthPeer(b)] });
  const [one, two, other] = ['backfill/one', 'backfill/two', 'other/x'];
  // Three images in the covered repositories, sharing layers; the first with two tags. One more outside the rule.
  const [l1, l2, l3] = [blob(randomBytes(3000)), blob(randomBytes(3000)), blob(randomBytes(3000))];
  const first = imageOver([l1!, l2!]);
  const second = imageOver([l1!, l3!]);
  const third = imageOver([l2!]);
  await pushImage(a.baseUrl, one, first, 'v1');
  assert.equal((await pushManifest(a.baseUrl, one, 'latest', first.manifest, first.mediaType)).status, 201);
  await pushImage(a.baseUrl, one, second, 'v2');
  await pushImage(a.baseUrl, two, third, 'v1');
  await pushImage(a.baseUrl, other, buildImage({ layers: 1 }), 'v1');
  await putRules(a, [{ destinations: [WEST], prefixes: ['backfill/'] }]);
  const images: Array<[string, BuiltImage, string[]]> = [
    [one, first, ['v1', 'latest']],
    [one, second, ['v2']],
    [two, third, ['v1']],
  ];

  const dry = await berth(a, ['replication', 'backfill', '--dry-run']);
  assert.deepEqual(dry, { dryRun: true, repositories: 2, images: 3, queued: 3, alreadyKnown: 0, retried: 0, byDestination: { 'us-west-2/111122223333': { queued: 3, alreadyKnown: 0, retried: 0 } } });
  const api = await signedFetch(a, ADMIN, { service: 'ecr', ...ecrRequest('BerthReplicationBackfill', { dryRun: true }) });
  assert.equal(api.status, 200, await api.clone().text());
  assert.deepEqual(await api.json(), { dryRun: true, repositories: 2, images: 3, queued: 3, alreadyKnown: 0, retried: 0 });
  for (const [repository, image] of images) assert.deepEqual(await replicationStatuses(a, repository, { imageDigest: image.digest }), [], 'a dry run queues nothing');
  assert.deepEqual((await berth(a, ['replication', 'status'])).destinations, []);

  const run = await berth(a, ['replication', 'backfill']);
  assert.deepEqual({ ...run, byDestination: undefined }, { dryRun: false, repositories: 2, images: 3, queued: 3, alreadyKnown: 0, retried: 0, byDestination: undefined });
  for (const [repository, image, tags] of images) {
    await waitForReplication(a, repository, { imageDigest: image.digest }, WEST);
    for (const tag of tags) assert.equal(await headDigest(b, repository, tag), image.digest, `${repository}:${tag} in us-west-2`);
    await assertPullsBack(b.baseUrl, repository, image.digest, image);
  }
  assert.equal(await headDigest(b, other, 'v1'), undefined, 'a repository no rule covers is not backfilled');

  const again = await berth(a, ['replication', 'backfill']);
  assert.deepEqual({ queued: again.queued, alreadyKnown: again.alreadyKnown }, { queued: 0, alreadyKnown: 3 });
  const status = await berth(a, ['replication', 'status']);
  assert.equal(status.unreadEvents, 0);
  assert.deepEqual(
    status.destinations.map((d: Record<string, unknown>) => ({ destination: d['destination'], pending: d['pending'], inProgress: d['inProgress'], failed: d['failed'], complete: d['complete'], lastError: d['lastError'] })),
    [{ destination: 'us-west-2/111122223333', pending: 0, inProgress: 0, failed: 0, complete: 3, lastError: null }],
  );
  // Each image arrived once per tag: nothing was sent twice.
  const expected = images.flatMap(([repository, image, tags]) => tags.map((tag) => `${repository} ${image.digest} ${tag} ${A} us-east-1`));
  assert.deepEqual((await replicatedRows(b)).sort(), expected.sort());
  // Each distinct blob was uploaded once (three layers, three configs), though the three copies
  // ran at once and share layers: the others found it there or mounted it.
  const uploads = b.logs.filter((l) => l['msg'] === 'request' && l['method'] === 'PUT' && /\/blobs\/uploads\//.test(String(l['path'])) && l['status'] === 201);
  assert.equal(uploads.length, 6, `blob uploads completed in us-west-2: ${uploads.map((l) => l['path']).join(', ')}`);
});

test('any OCI registry as a peer: CNCF Distribution with htpasswd gets the image under mirror/, byte-identical through skopeo', async (t) => {
  if (!requireTools(t, 'skopeo', 'docker-registry', 'htpasswd')) return;
  const distribution = await startDistribution({ auth: true });
  t.after(() => distribution.stop());
  const MIRROR = { region: 'eu-central-1', registryId: A };
  const a = await startRegion(t, { region: 'us-east-1', peers: [ociPeer(MIRROR.region, distribution.baseUrl, { username: distribution.username, password: distribution.password, repositoryPrefix: 'mirror/' })] });
  await putRules(a, [{ destinations: [MIRROR] }]);
  const repository = repoName('oci');
  const image = buildRealImage({ layers: [[{ name: 'one', content: randomBytes(1500) }], [{ name: 'two', content: randomBytes(1500) }]] });
  await pushImage(a.baseUrl, repository, image, 'v1');
  await waitForReplication(a, repository, { imageTag: 'v1' }, MIRROR);

  const tools = await sandbox(t);
  const pulled = await pullToDir(tools, `${new URL(distribution.baseUrl).host}/mirror/${repository}:v1`, ['--src-creds', `${distribution.username}:${distribution.password}`]);
  assertSameImage(pulled, { manifest: image.manifest, blobs: new Map([image.config, ...image.layers].map((part) => [part.digest, part.bytes])) }, 'Distribution against what was pushed');
  // Without credentials Distribution refuses: the copy went through the configured user.
  const anonymous = await fetch(`${distribution.baseUrl}/v2/mirror/${repository}/manifests/v1`, { method: 'HEAD' });
  assert.equal(anonymous.status, 401);
});

test('a peer with copySettings gets the repository policy, the lifecycle policy and tag immutability along with the image', async (t) => {
  requireAwsCli();
  const b = await startRegion(t, { region: 'us-west-2' });
  const a = await startRegion(t, { region: 'us-east-1', peers: [berthPeer(b, { copySettings: ['REPOSITORY_POLICY', 'LIFECYCLE_POLICY', 'TAG_MUTABILITY'] })] });
  await putRules(a, [{ destinations: [WEST] }]);
  const repository = repoName('settings');
  const repositoryPolicy = {
    Version: '2012-10-17',
    Statement: [{ Sid: 'PullFromPartner', Effect: 'Allow', Principal: { AWS: 'arn:aws:iam::444455556666:root' }, Action: ['ecr:BatchGetImage', 'ecr:GetDownloadUrlForLayer'] }],
  };
  const lifecyclePolicy = {
    rules: [{ rulePriority: 1, description: 'expire untagged', selection: { tagStatus: 'untagged', countType: 'sinceImagePushed', countUnit: 'days', countNumber: 14 }, action: { type: 'expire' } }],
  };
  await ecrCli(a, ['create-repository', '--repository-name', repository, '--image-tag-mutability', 'IMMUTABLE']);
  await ecrCli(a, ['set-repository-policy', '--repository-name', repository, '--policy-text', JSON.stringify(repositoryPolicy)]);
  await ecrCli(a, ['put-lifecycle-policy', '--repository-name', repository, '--lifecycle-policy-text', JSON.stringify(lifecyclePolicy)]);

  const image = buildImage({ layers: 1 });
  await pushImage(a.baseUrl, repository, image, 'v1');
  await waitForReplication(a, repository, { imageTag: 'v1' }, WEST);

  const [copied] = (await ecrCli(b, ['describe-repositories', '--repository-names', repository])).repositories;
  assert.equal(copied.imageTagMutability, 'IMMUTABLE');
  assert.deepEqual(JSON.parse((await ecrCli(b, ['get-repository-policy', '--repository-name', repository])).policyText), repositoryPolicy);
  assert.equal(await headDigest(b, repository, 'v1'), image.digest);
  await t.test('the lifecycle policy is copied too', async () => {
    const got = await awsOk(b, ADMIN, ['ecr', '--region', b.region, 'get-lifecycle-policy', '--repository-name', repository]);
    assert.deepEqual(JSON.parse(got.json.lifecyclePolicyText), lifecyclePolicy);
  });
});

test('a peer reached through a role of the destination (STS AssumeRole) replicates; a peer with a wrong secret fails with AUTHENTICATION_FAILED', async (t) => {
  requireAwsCli();
  const EU = { region: 'eu-west-1', registryId: A };
  const b = await startRegion(t, { region: 'us-west-2' });
  const c = await startRegion(t, { region: 'eu-west-1' });
  // In us-west-2: a user that may only assume the role, and the role, trusted by the source account, that may use ECR.
  const roleName = 'replication-from-us-east-1';
  const roleArn = `arn:aws:iam::${A}:role/${roleName}`;
  const trust = { Version: '2012-10-17', Statement: [{ Effect: 'Allow', Principal: { AWS: `arn:aws:iam::${A}:root` }, Action: 'sts:AssumeRole' }] };
  await awsOk(b, ADMIN, ['iam', 'create-role', '--role-name', roleName, '--assume-role-policy-document', JSON.stringify(trust)]);
  await awsOk(b, ADMIN, ['iam', 'put-role-policy', '--role-name', roleName, '--policy-name', 'ecr', '--policy-document', JSON.stringify({ Version: '2012-10-17', Statement: [{ Effect: 'Allow', Action: 'ecr:*', Resource: '*' }] })]);
  await awsOk(b, ADMIN, ['iam', 'create-user', '--user-name', 'replicator']);
  await awsOk(b, ADMIN, ['iam', 'put-user-policy', '--user-name', 'replicator', '--policy-name', 'assume', '--policy-document', JSON.stringify({ Version: '2012-10-17', Statement: [{ Effect: 'Allow', Action: 'sts:AssumeRole', Resource: roleArn }] })]);
  const key = (await awsOk(b, ADMIN, ['iam', 'create-access-key', '--user-name', 'replicator'])).json.AccessKey;
  const replicator = { accessKeyId: key.AccessKeyId as string, secretAccessKey: key.SecretAccessKey as string };
  // The user alone may not use ECR: what replicates must be the role.
  const alone = await awsFails(b, replicator, ['ecr', '--region', b.region, 'get-authorization-token']);
  assert.equal(alone.errorCode, 'AccessDeniedException');

  const a = await startRegion(t, {
    region: 'us-east-1',
    peers: [berthPeer(b, { ...replicator, roleArn }), berthPeer(c, { secretAccessKey: 'not-the-secret-of-the-administrator' })],
  });
  await putRules(a, [{ destinations: [WEST, EU] }]);
  const repository = repoName('role');
  const image = buildImage({ layers: 2 });
  await pushImage(a.baseUrl, repository, image, 'v1');
  await waitForReplication(a, repository, { imageTag: 'v1' }, WEST);
  await assertPullsBack(b.baseUrl, repository, 'v1', image);
  const failed = await waitForReplication(a, repository, { imageTag: 'v1' }, EU, { status: 'FAILED' });
  assert.equal(await headDigest(c, repository, image.digest), undefined);
  await t.test('the wrong secret is reported as AUTHENTICATION_FAILED', () => {
    assert.equal(failed.failureCode, 'AUTHENTICATION_FAILED');
  });

  // us-west-2's audit log shows the replicator assuming the role.
  const audit = (await runBerth(b, ['audit', '--account', A])).split('\n').filter(Boolean).map((l) => JSON.parse(l) as { eventName: string; decision: string; userIdentity: { arn: string }; resources: Array<{ ARN: string }> });
  const assumed = audit.filter((e) => e.eventName === 'AssumeRole' && e.decision === 'allow');
  assert.ok(assumed.length > 0, 'the role was assumed');
  assert.equal(assumed[0]!.userIdentity.arn, `arn:aws:iam::${A}:user/replicator`);
  assert.deepEqual(assumed[0]!.resources.map((r) => r.ARN), [roleArn]);
});
