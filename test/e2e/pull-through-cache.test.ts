import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { DescribeImagesCommand, DescribeRepositoriesCommand, type ECRClient } from '@aws-sdk/client-ecr';
import { ADMIN, basicAuthorization } from '../support/auth.ts';
import { aws, awsFails, awsOk, ecrClient, requireAwsCli, type AwsCredentials } from '../support/aws.ts';
import { startDistribution, type TestDistribution } from '../support/distribution.ts';
import { buildRealImage, buildRealIndex } from '../support/layout.ts';
import { MT, pushImage, repoName, sha256 } from '../support/oci.ts';
import {
  assertSameContent,
  createCacheSecret,
  distributionTarget,
  ecrCli,
  expectedBlobs,
  giveCliCurrentEcrModel,
  manifestDigest,
  pullToDirWithSkopeo,
  pullWithSkopeo,
  pushOverHttp,
  pushWithSkopeo,
  repositoryEvents,
  startCacheServer,
  userAllowed,
  waitForCached,
  type CacheServer,
} from '../support/pull-through-cache.ts';
import { scrapeMetrics } from '../support/metrics.ts';
import { runBerth } from '../support/server.ts';
import { hasTool, toolSandbox, type ToolSandbox } from '../support/tools.ts';

/**
 * The pull-through cache with real clients (docs/pull-through-cache.md): upstreams are CNCF
 * Distribution with htpasswd, and other Berth servers (one behind the Docker token flow, one as
 * an ECR upstream reached through a role); secrets and rules are made with the real AWS CLI;
 * podman and skopeo pull through the cache, and what they get is compared byte for byte with
 * what the upstream holds.
 *
 * Servers, shared by the tests (each test uses its own rule prefixes and repositories):
 * - `b`: the cache as deployed (refresh every 24 hours), with the rule `dist` for `d1`;
 * - `a`: refreshes on every pull (BERTH_CACHE_REFRESH_SECONDS=0), so the upstream is always asked;
 * - `c`: refreshes after 2 seconds;
 * - `u`: a Berth with the bearer challenge (BERTH_AUTH_CHALLENGE=bearer): an upstream that hands
 *   out tokens, and an ECR upstream;
 * - `d1`: Distribution with htpasswd.
 */

const TOOLS = ['skopeo', 'podman', 'docker-registry', 'htpasswd'];
const missing = TOOLS.filter((name) => !hasTool(name));
if (missing.length > 0 && process.env['CI']) throw new Error(`not installed: ${missing.join(', ')}`);

const A = ADMIN.accountId;
const ADMIN_AUTH = basicAuthorization(ADMIN.accessKeyId, ADMIN.secretAccessKey);
const ACCEPT = [MT.ociManifest, MT.ociIndex, MT.dockerManifest, MT.dockerList].join(', ');

/** The cache's own answers that are 5xx by design: an upstream down (503) or refusing the credentials (502). */
const cacheAnswer = (l: Record<string, unknown>) => (l['status'] === 503 && l['errorCode'] === 'UNAVAILABLE') || (l['status'] === 502 && l['errorCode'] === 'DENIED');

describe('pull-through cache with real clients and upstreams', { skip: missing.length > 0 ? `not installed: ${missing.join(', ')}` : false }, () => {
  let d1: TestDistribution;
  let b: Awaited<ReturnType<typeof startCacheServer>>;
  let a: Awaited<ReturnType<typeof startCacheServer>>;
  let c: Awaited<ReturnType<typeof startCacheServer>>;
  let u: Awaited<ReturnType<typeof startCacheServer>>;
  let tools: ToolSandbox;
  let ecrB: ECRClient;
  let ecrA: ECRClient;
  let ecrC: ECRClient;
  /** The secret of `b` holding d1's user name and password, and the rule `dist` made with it. */
  let d1SecretB: string;

  /** A rule of `server` for d1, with a secret of that server (`a` and `c` get theirs in the tests that use them). */
  async function ruleForD1(server: CacheServer, prefix: string, secretArn: string): Promise<any> {
    return ecrCli(server, ['create-pull-through-cache-rule', '--ecr-repository-prefix', prefix, '--upstream-registry-url', d1.baseUrl, '--credential-arn', secretArn]);
  }

  before(async () => {
    requireAwsCli();
    [d1, u, b, a, c] = await Promise.all([
      startDistribution({ auth: true }),
      startCacheServer({ env: { BERTH_AUTH_CHALLENGE: 'bearer' } }),
      startCacheServer({ expected5xx: cacheAnswer }),
      startCacheServer({ env: { BERTH_CACHE_REFRESH_SECONDS: '0', BERTH_METRICS_LISTEN: '127.0.0.1:0' }, expected5xx: cacheAnswer }),
      startCacheServer({ env: { BERTH_CACHE_REFRESH_SECONDS: '2' } }),
    ]);
    [ecrB, ecrA, ecrC] = [ecrClient(b, ADMIN), ecrClient(a, ADMIN), ecrClient(c, ADMIN)];
    tools = await toolSandbox();
    for (const server of [b, a, c, u]) await tools.login(server.host);
    await giveCliCurrentEcrModel(b);
    d1SecretB = await createCacheSecret(b, 'dist', { username: d1.username!, accessToken: d1.password! });
    await ruleForD1(b, 'dist', d1SecretB);
  });

  after(async () => {
    for (const client of [ecrB, ecrA, ecrC]) client?.destroy();
    await tools?.close();
    // Every server is closed (and its log checked) even when one check fails; the first failure is reported.
    const results = await Promise.allSettled([d1?.stop(), ...[b, a, c, u].map((s) => s?.closeAndCheck())]);
    const failed = results.find((r) => r.status === 'rejected');
    if (failed) throw (failed as PromiseRejectedResult).reason;
  });

  test('Distribution with htpasswd as upstream: podman and skopeo pull an OCI image, a multi-arch index and a Docker schema 2 image through the cache, byte-identical, and the event log records a PUSH and an ECR Pull Through Cache Action', async () => {
    const rule = (await ecrCli(b, ['describe-pull-through-cache-rules', '--ecr-repository-prefixes', 'dist'])).pullThroughCacheRules;
    assert.deepEqual(
      rule.map((r: any) => ({ ecrRepositoryPrefix: r.ecrRepositoryPrefix, upstreamRegistryUrl: r.upstreamRegistryUrl, credentialArn: r.credentialArn, registryId: r.registryId, upstreamRegistry: r.upstreamRegistry })),
      [{ ecrRepositoryPrefix: 'dist', upstreamRegistryUrl: d1.baseUrl, credentialArn: d1SecretB, registryId: A, upstreamRegistry: undefined }],
    );
    const upstreamRepo = repoName('app');
    const name = `dist/${upstreamRepo}`;
    const image = buildRealImage();
    const index = buildRealIndex([buildRealImage({ platform: { os: 'linux', architecture: 'amd64' } }), buildRealImage({ platform: { os: 'linux', architecture: 'arm64', variant: 'v8' } })]);
    // Docker Hub's images are mostly Docker schema 2: one of those too.
    const dockerImage = buildRealImage({ docker: true });
    await pushWithSkopeo(tools, distributionTarget(d1), upstreamRepo, [
      { tag: 'v1', content: image },
      { tag: 'multi', content: index },
    ]);
    await pushOverHttp(d1, upstreamRepo, dockerImage, 'docker');
    const d1Creds = `${d1.username}:${d1.password}`;
    const upstreamImage = await pullWithSkopeo(tools, `${distributionTarget(d1).host}/${upstreamRepo}:v1`, d1Creds);
    assertSameContent(upstreamImage, { digest: image.digest, blobs: expectedBlobs(image) }, 'Distribution holds what was pushed');

    // podman: the first pull, answered while the image is brought in.
    await tools.podman(['pull', '--quiet', '--tls-verify=false', `${b.host}/${name}:v1`]);
    const [inspected] = JSON.parse((await tools.podman(['image', 'inspect', `${b.host}/${name}:v1`])).stdout) as Array<{ Digest: string; Id: string }>;
    assert.equal(inspected!.Digest, image.digest, 'podman got the upstream manifest');
    assert.equal(inspected!.Id, image.config.digest.slice('sha256:'.length), 'and its config');
    await waitForCached(b, ecrB, name, image.digest, 'v1');
    // skopeo, from the stored copy: the same bytes as the upstream's.
    assertSameContent(await pullWithSkopeo(tools, `${b.host}/${name}:v1`), { digest: image.digest, blobs: upstreamImage.blobs }, 'skopeo through the cache (stored)');

    // The index with every platform: first while it is brought in (streamed from the upstream), then from the store.
    const upstreamIndex = await pullWithSkopeo(tools, `${distributionTarget(d1).host}/${upstreamRepo}:multi`, d1Creds);
    assertSameContent(upstreamIndex, { digest: index.digest, blobs: expectedBlobs(index) }, 'Distribution holds the index as pushed');
    assertSameContent(await pullWithSkopeo(tools, `${b.host}/${name}:multi`), { digest: index.digest, blobs: upstreamIndex.blobs }, 'skopeo --all through the cache (first pull)');
    await waitForCached(b, ecrB, name, index.digest, 'multi');
    for (const platform of index.images) await waitForCached(b, ecrB, name, platform.digest);
    assertSameContent(await pullWithSkopeo(tools, `${b.host}/${name}@${index.digest}`), { digest: index.digest, blobs: upstreamIndex.blobs }, 'skopeo --all through the cache (stored, by digest)');

    const upstreamDocker = await pullToDirWithSkopeo(tools, `${distributionTarget(d1).host}/${upstreamRepo}:docker`, d1Creds);
    assertSameContent(upstreamDocker, { digest: dockerImage.digest, blobs: expectedBlobs(dockerImage) }, 'Distribution holds the Docker image as pushed');
    assert.equal(upstreamDocker.mediaType, MT.dockerManifest);
    assertSameContent(await pullToDirWithSkopeo(tools, `${b.host}/${name}:docker`), { digest: dockerImage.digest, blobs: upstreamDocker.blobs }, 'a Docker schema 2 image through the cache');
    await waitForCached(b, ecrB, name, dockerImage.digest, 'docker');

    // The event log: the repository created by the cache, a PUSH of each tag, and ECR's pull-through cache event.
    const events = await repositoryEvents(b, name);
    const rows = events.map(({ event }) => [event['detail-type'], event.detail['action-type'] ?? event.detail['sync-status'], event.detail['image-tag'], event.detail['image-digest']]);
    assert.deepEqual(rows.filter(([type]) => type === 'Berth Repository Action'), [['Berth Repository Action', 'CREATE', undefined, undefined]]);
    for (const [tag, digest] of [['v1', image.digest], ['multi', index.digest], ['docker', dockerImage.digest]] as const) {
      assert.deepEqual(rows.filter(([, , t, d]) => t === tag && d === digest).map(([type, action]) => `${type} ${action}`).sort(), ['ECR Image Action PUSH', 'ECR Pull Through Cache Action SUCCESS'], `events of ${tag}`);
    }
    const cached = events.find((e) => e.event['detail-type'] === 'ECR Pull Through Cache Action' && e.event.detail['image-tag'] === 'v1')!;
    assert.deepEqual(cached.event.detail, {
      'sync-status': 'SUCCESS',
      'ecr-repository-prefix': 'dist',
      'repository-name': name,
      'upstream-registry-url': d1.baseUrl,
      'image-tag': 'v1',
      'image-digest': image.digest,
    });
    assert.deepEqual(cached.event.resources, [`arn:aws:ecr:us-east-1:${A}:repository/${name}`]);
  });

  test('with the upstream stopped, cached images still pull by tag and by digest (the server warns it served the cached copy); what was never cached fails with 503 UNAVAILABLE naming the upstream', async (t) => {
    const d2 = await startDistribution({ auth: true });
    t.after(() => d2.stop());
    const secret = await createCacheSecret(a, 'down', { username: d2.username!, accessToken: d2.password! });
    await ecrCli(a, ['create-pull-through-cache-rule', '--ecr-repository-prefix', 'down', '--upstream-registry-url', d2.baseUrl, '--credential-arn', secret]);
    const upstreamRepo = repoName('app');
    const name = `down/${upstreamRepo}`;
    const image = buildRealImage();
    const index = buildRealIndex([buildRealImage(), buildRealImage({ platform: { os: 'linux', architecture: 'arm64', variant: 'v8' } })]);
    await pushWithSkopeo(tools, distributionTarget(d2), upstreamRepo, [
      { tag: 'v1', content: image },
      { tag: 'multi', content: index },
    ]);
    assertSameContent(await pullWithSkopeo(tools, `${a.host}/${name}:v1`), { digest: image.digest, blobs: expectedBlobs(image) }, 'first pull');
    assertSameContent(await pullWithSkopeo(tools, `${a.host}/${name}:multi`), { digest: index.digest, blobs: expectedBlobs(index) }, 'first pull of the index');
    await waitForCached(a, ecrA, name, image.digest, 'v1');
    await waitForCached(a, ecrA, name, index.digest, 'multi');

    await d2.stop();
    const warnings = () => a.logs.filter((l) => l['msg'] === 'the upstream failed; serving the cached image' && l['repository'] === name);
    assert.deepEqual(warnings(), [], 'no warning while the upstream was up');
    assertSameContent(await pullWithSkopeo(tools, `${a.host}/${name}:v1`), { digest: image.digest, blobs: expectedBlobs(image) }, 'by tag, upstream down');
    assertSameContent(await pullWithSkopeo(tools, `${a.host}/${name}@${image.digest}`), { digest: image.digest, blobs: expectedBlobs(image) }, 'by digest, upstream down');
    assertSameContent(await pullWithSkopeo(tools, `${a.host}/${name}:multi`), { digest: index.digest, blobs: expectedBlobs(index) }, 'the index by tag, upstream down');
    // podman, which never pulled it, fetches every layer from the cache.
    await tools.podman(['pull', '--quiet', '--tls-verify=false', `${a.host}/${name}:v1`]);
    const [inspected] = JSON.parse((await tools.podman(['image', 'inspect', `${a.host}/${name}:v1`])).stdout) as Array<{ Digest: string }>;
    assert.equal(inspected!.Digest, image.digest, 'podman pulled the cached image with the upstream down');
    const warned = warnings();
    assert.deepEqual([...new Set(warned.map((l) => `${l['level']} ${l['tag']} ${l['upstream']} ${l['reason']}`))].sort(), [`warn multi ${d2.baseUrl} unavailable`, `warn v1 ${d2.baseUrl} unavailable`]);
    // And the metric counts each of them (other tests on this server add their own, never fewer).
    const metrics = await scrapeMetrics(a);
    assert.ok((metrics.get('berth_pull_through_cache_stale_serves_total{reason="unavailable"}') ?? 0) >= warned.length, `stale serves counted: ${metrics.get('berth_pull_through_cache_stale_serves_total{reason="unavailable"}')} for ${warned.length} warnings`);
    assert.ok((metrics.get('berth_pull_through_cache_images_cached_total') ?? 0) >= 2, 'cached images counted');
    assert.ok((metrics.get('berth_pull_through_cache_upstream_bytes_total') ?? 0) > 0, 'upstream bytes counted');

    const validated = await ecrCli(a, ['validate-pull-through-cache-rule', '--ecr-repository-prefix', 'down']);
    assert.equal(validated.isValid, false);
    assert.match(validated.failure, /could not be reached/);
    assert.ok(validated.failure.includes(d2.baseUrl), validated.failure);
    for (const reference of ['never-pulled', sha256('never pushed')]) {
      const res = await fetch(`${a.baseUrl}/v2/${name}/manifests/${reference}`, { headers: { authorization: ADMIN_AUTH, accept: ACCEPT } });
      const body = (await res.json()) as { errors: Array<{ code: string; message: string }> };
      assert.equal(res.status, 503, JSON.stringify(body));
      assert.equal(body.errors[0]!.code, 'UNAVAILABLE');
      assert.ok(body.errors[0]!.message.includes(d2.baseUrl), `the message names the upstream: ${body.errors[0]!.message}`);
      assert.match(body.errors[0]!.message, /rule down\b/);
    }
  });

  test('a tag that moves upstream: the cache keeps the old image until the refresh interval has passed, then brings in the new one', async () => {
    const secretC = await createCacheSecret(c, 'dist', { username: d1.username!, accessToken: d1.password! });
    await ruleForD1(c, 'dist', secretC);
    const upstreamRepo = repoName('moving');
    const name = `dist/${upstreamRepo}`;
    const first = buildRealImage();
    const second = buildRealImage();
    await pushWithSkopeo(tools, distributionTarget(d1), upstreamRepo, [{ tag: 'latest', content: first }]);

    // c compares the tag with the upstream every 2 s; b every 24 hours.
    const t0 = Date.now();
    assert.equal(await manifestDigest(c.baseUrl, name, 'latest'), first.digest);
    assert.equal(await manifestDigest(b.baseUrl, name, 'latest'), first.digest);
    await waitForCached(c, ecrC, name, first.digest, 'latest');
    await waitForCached(b, ecrB, name, first.digest, 'latest');

    await pushWithSkopeo(tools, distributionTarget(d1), upstreamRepo, [{ tag: 'latest', content: second }]);
    // Within the interval the cached image is served, not the upstream's new one.
    assert.equal(await manifestDigest(b.baseUrl, name, 'latest'), first.digest, 'b, within its interval, serves the cached image');
    assertSameContent(await pullWithSkopeo(tools, `${b.host}/${name}:latest`), { digest: first.digest, blobs: expectedBlobs(first) }, 'skopeo through b after the upstream moved');

    // c: once 2 s have passed since it last compared, a pull asks the upstream and gets the new image.
    const seen: Array<{ digest: string; endedAtMs: number }> = [];
    const deadline = Date.now() + 30_000;
    while (seen.at(-1)?.digest !== second.digest) {
      assert.ok(Date.now() < deadline, `c never served the new digest: ${JSON.stringify(seen)}`);
      const digest = await manifestDigest(c.baseUrl, name, 'latest');
      seen.push({ digest, endedAtMs: Date.now() });
      if (digest !== second.digest) await new Promise((resolve) => setTimeout(resolve, 100));
    }
    assert.ok(seen.slice(0, -1).every((s) => s.digest === first.digest), `before the change, only the old digest: ${JSON.stringify(seen)}`);
    // The tag was last compared after t0, so the new digest cannot come before t0 + 2 s.
    assert.ok(seen.at(-1)!.endedAtMs - t0 >= 2000, `the new digest came ${seen.at(-1)!.endedAtMs - t0} ms after the first pull, within the 2 s interval`);
    await waitForCached(c, ecrC, name, second.digest, 'latest');
    assertSameContent(await pullWithSkopeo(tools, `${c.host}/${name}:latest`), { digest: second.digest, blobs: expectedBlobs(second) }, 'skopeo through c after the refresh');
    assert.equal(await manifestDigest(b.baseUrl, name, 'latest'), first.digest, 'b still serves the image it cached');
  });

  test('a caller who may only pull gets the cached image when the tag moved upstream; one who may import gets the new one', async () => {
    const secretA = await createCacheSecret(a, 'dist', { username: d1.username!, accessToken: d1.password! });
    await ruleForD1(a, 'dist', secretA);
    const upstreamRepo = repoName('moving');
    const name = `dist/${upstreamRepo}`;
    const first = buildRealImage();
    const second = buildRealImage();
    await pushWithSkopeo(tools, distributionTarget(d1), upstreamRepo, [{ tag: 'latest', content: first }]);
    assert.equal(await manifestDigest(a.baseUrl, name, 'latest'), first.digest);
    await waitForCached(a, ecrA, name, first.digest, 'latest');

    const reader = await userAllowed(a, 'reader', ['ecr:BatchGetImage', 'ecr:GetDownloadUrlForLayer', 'ecr:GetAuthorizationToken']);
    const readerAuth = basicAuthorization(reader.accessKeyId, reader.secretAccessKey);
    await pushWithSkopeo(tools, distributionTarget(d1), upstreamRepo, [{ tag: 'latest', content: second }]);
    // a asks the upstream on every pull (refresh 0): the tag moved, but the reader may not bring the new image in.
    assert.equal(await manifestDigest(a.baseUrl, name, 'latest', readerAuth), first.digest, 'the pull-only caller gets the cached image');
    assertSameContent(await pullWithSkopeo(tools, `${a.host}/${name}:latest`, `${reader.accessKeyId}:${reader.secretAccessKey}`), { digest: first.digest, blobs: expectedBlobs(first) }, 'skopeo as the pull-only caller');
    assert.equal(await manifestDigest(a.baseUrl, name, 'latest'), second.digest, 'the administrator gets the new image');
    await waitForCached(a, ecrA, name, second.digest, 'latest');
    assert.equal(await manifestDigest(a.baseUrl, name, 'latest', readerAuth), second.digest, 'once cached, the reader gets it too');

    // The tag gone from the upstream (its image deleted): the cached image is still served, with a warning.
    const deleted = await fetch(`${d1.baseUrl}/v2/${upstreamRepo}/manifests/${second.digest}`, { method: 'DELETE', headers: { authorization: basicAuthorization(d1.username!, d1.password!) } });
    assert.equal(deleted.status, 202);
    assertSameContent(await pullWithSkopeo(tools, `${a.host}/${name}:latest`), { digest: second.digest, blobs: expectedBlobs(second) }, 'skopeo after the tag left the upstream');
    assert.ok(
      a.logs.some((l) => l['msg'] === 'the upstream no longer has the tag; serving the cached image' && l['repository'] === name && l['tag'] === 'latest' && l['reason'] === 'not-found'),
      'the server warned that it served the cached image',
    );
  });

  test('an immutable cached tag does not move when the upstream moves it: pulls keep the cached image, and the pulled digest of the new image still comes in', async () => {
    const secretA = await createCacheSecret(a, 'fixed', { username: d1.username!, accessToken: d1.password! });
    await ecrCli(a, ['create-repository-creation-template', '--prefix', 'fixed', '--applied-for', 'PULL_THROUGH_CACHE', '--image-tag-mutability', 'IMMUTABLE']);
    await ruleForD1(a, 'fixed', secretA);
    const upstreamRepo = repoName('pinned');
    const name = `fixed/${upstreamRepo}`;
    const first = buildRealImage();
    const second = buildRealImage();
    await pushWithSkopeo(tools, distributionTarget(d1), upstreamRepo, [{ tag: 'v1', content: first }]);
    assert.equal(await manifestDigest(a.baseUrl, name, 'v1'), first.digest);
    await waitForCached(a, ecrA, name, first.digest, 'v1');

    await pushWithSkopeo(tools, distributionTarget(d1), upstreamRepo, [{ tag: 'v1', content: second }]);
    // a asks the upstream on every pull (refresh 0): the tag moved there, but it is immutable here.
    assert.equal(await manifestDigest(a.baseUrl, name, 'v1'), first.digest, 'the immutable tag still names the cached image');
    assertSameContent(await pullWithSkopeo(tools, `${a.host}/${name}:v1`), { digest: first.digest, blobs: expectedBlobs(first) }, 'skopeo gets the cached image');
    assert.ok(
      a.logs.some((l) => l['msg'] === 'the tag moved upstream but is immutable here; serving the cached image' && l['repository'] === name && l['upstream'] === second.digest),
      'the server logged why it kept the cached image',
    );
    // The new image by its digest comes in without a tag.
    assertSameContent(await pullWithSkopeo(tools, `${a.host}/${name}@${second.digest}`), { digest: second.digest, blobs: expectedBlobs(second) }, 'the new image by digest');
    await waitForCached(a, ecrA, name, second.digest);
    const images = await ecrA.send(new DescribeImagesCommand({ repositoryName: name }));
    const tagsOf = (digest: string) => images.imageDetails?.find((d) => d.imageDigest === digest)?.imageTags ?? [];
    assert.deepEqual(tagsOf(first.digest), ['v1'], 'v1 still names the first image');
    assert.deepEqual(tagsOf(second.digest), [], 'the second image is cached untagged');
  });

  test('a Berth with the bearer challenge as upstream: the cache gets a token from its realm with the secret (an access key) and pulls with it', async () => {
    const anonymous = await fetch(`${u.baseUrl}/v2/`);
    await anonymous.arrayBuffer();
    assert.equal(anonymous.status, 401);
    assert.match(anonymous.headers.get('www-authenticate') ?? '', /^Bearer realm="[^"]+\/token"/);
    const upstreamRepo = repoName('team');
    const image = buildRealImage({ layers: [[{ name: 'one', content: 'first layer\n' }], [{ name: 'two', content: 'second layer\n' }]] });
    await pushImage(u.baseUrl, upstreamRepo, image, 'v1');

    const secret = await createCacheSecret(b, 'berth-token', { username: ADMIN.accessKeyId, accessToken: ADMIN.secretAccessKey });
    await ecrCli(b, ['create-pull-through-cache-rule', '--ecr-repository-prefix', 'tok', '--upstream-registry-url', u.baseUrl, '--credential-arn', secret]);
    const validated = await ecrCli(b, ['validate-pull-through-cache-rule', '--ecr-repository-prefix', 'tok']);
    assert.equal(validated.isValid, true, JSON.stringify(validated));
    const tokensBefore = u.logs.filter((l) => l['msg'] === 'request' && l['path'] === '/token' && l['status'] === 200).length;
    const name = `tok/${upstreamRepo}`;
    assertSameContent(await pullWithSkopeo(tools, `${b.host}/${name}:v1`), { digest: image.digest, blobs: expectedBlobs(image) }, 'skopeo through the cache');
    await waitForCached(b, ecrB, name, image.digest, 'v1');

    // The upstream handed out a token, and answered the cache's manifest and blob requests (a blob
    // with a redirect to its object store on the scale-out backend, which the cache followed).
    const requests = u.logs.filter((l) => l['msg'] === 'request');
    assert.ok(requests.filter((l) => l['path'] === '/token' && l['status'] === 200).length > tokensBefore, 'a token was issued to the cache');
    assert.ok(requests.some((l) => l['path'] === `/v2/${upstreamRepo}/manifests/v1` && l['status'] === 200), 'the upstream served the manifest');
    for (const part of [image.config, ...image.layers]) {
      assert.ok(requests.some((l) => l['path'] === `/v2/${upstreamRepo}/blobs/${part.digest}` && (l['status'] === 200 || l['status'] === 307)), `the upstream served ${part.digest}`);
    }
  });

  test('another Berth as an ECR upstream: the cache assumes the rule\'s role there with the secret\'s access key, gets an authorization token and pulls', async () => {
    // In u: a user who may only assume the role, and the role, trusted by the cache's account, that may pull.
    const roleName = 'pull-through-cache';
    const roleArn = `arn:aws:iam::${A}:role/${roleName}`;
    const trust = { Version: '2012-10-17', Statement: [{ Effect: 'Allow', Principal: { AWS: `arn:aws:iam::${A}:root` }, Action: 'sts:AssumeRole' }] };
    await awsOk(u, ADMIN, ['iam', 'create-role', '--role-name', roleName, '--assume-role-policy-document', JSON.stringify(trust)]);
    const pulls = ['ecr:GetAuthorizationToken', 'ecr:BatchGetImage', 'ecr:GetDownloadUrlForLayer', 'ecr:BatchCheckLayerAvailability'];
    await awsOk(u, ADMIN, ['iam', 'put-role-policy', '--role-name', roleName, '--policy-name', 'pull', '--policy-document', JSON.stringify({ Version: '2012-10-17', Statement: [{ Effect: 'Allow', Action: pulls, Resource: '*' }] })]);
    const cacheUser = await userAllowed(u, 'cache-of-b', ['sts:AssumeRole'], roleArn);
    // The user alone may not use ECR: what pulls must be the role.
    assert.equal((await awsFails(u, cacheUser, ['ecr', 'get-authorization-token'])).errorCode, 'AccessDeniedException');
    const upstreamRepo = repoName('base');
    const image = buildRealImage();
    await pushImage(u.baseUrl, upstreamRepo, image, 'v1');

    const secret = await createCacheSecret(b, 'berth-ecr', { accessKeyId: cacheUser.accessKeyId, secretAccessKey: cacheUser.secretAccessKey, region: 'us-east-1' });
    const created = await ecrCli(b, [
      'create-pull-through-cache-rule',
      '--ecr-repository-prefix', 'upecr',
      '--upstream-registry', 'ecr',
      '--upstream-registry-url', u.baseUrl,
      '--credential-arn', secret,
      '--custom-role-arn', roleArn,
    ]);
    assert.equal(created.upstreamRegistry, 'ecr');
    assert.equal(created.customRoleArn, roleArn);
    const validated = await ecrCli(b, ['validate-pull-through-cache-rule', '--ecr-repository-prefix', 'upecr']);
    assert.deepEqual([validated.isValid, validated.failure], [true, undefined]);
    const name = `upecr/${upstreamRepo}`;
    assertSameContent(await pullWithSkopeo(tools, `${b.host}/${name}:v1`), { digest: image.digest, blobs: expectedBlobs(image) }, 'skopeo through the cache');
    await waitForCached(b, ecrB, name, image.digest, 'v1');

    // u's audit log: the user assumed the role.
    const audit = (await runBerth(u, ['audit', '--account', A])).split('\n').filter(Boolean).map((l) => JSON.parse(l) as { eventName: string; decision: string; userIdentity: { arn: string }; resources?: Array<{ ARN: string }> });
    const assumed = audit.filter((e) => e.eventName === 'AssumeRole' && e.decision === 'allow');
    assert.ok(assumed.length > 0, 'the role was assumed in the upstream');
    assert.equal(assumed[0]!.userIdentity.arn, `arn:aws:iam::${A}:user/cache-of-b`);
    assert.deepEqual(assumed[0]!.resources?.map((r) => r.ARN), [roleArn]);
    assert.ok(audit.some((e) => e.eventName === 'GetAuthorizationToken' && e.decision === 'allow' && e.userIdentity.arn.includes(`assumed-role/${roleName}/`)), 'the role got the authorization token');
  });

  test('a wrong secret: ValidatePullThroughCacheRule says why, a pull fails with 502 DENIED naming the secret, and after PutSecretValue the next pull works', async () => {
    const upstreamRepo = repoName('app');
    const image = buildRealImage();
    await pushWithSkopeo(tools, distributionTarget(d1), upstreamRepo, [{ tag: 'v1', content: image }]);
    const secret = await createCacheSecret(b, 'wrong', { username: d1.username!, accessToken: 'not-the-password' });
    await ecrCli(b, ['create-pull-through-cache-rule', '--ecr-repository-prefix', 'wrong', '--upstream-registry-url', d1.baseUrl, '--credential-arn', secret]);

    const invalid = await ecrCli(b, ['validate-pull-through-cache-rule', '--ecr-repository-prefix', 'wrong']);
    assert.equal(invalid.isValid, false);
    assert.equal(invalid.credentialArn, secret);
    assert.match(invalid.failure, /refused the credentials/);
    assert.ok(invalid.failure.includes(d1.baseUrl) && invalid.failure.includes(secret), invalid.failure);

    const name = `wrong/${upstreamRepo}`;
    const res = await fetch(`${b.baseUrl}/v2/${name}/manifests/v1`, { headers: { authorization: ADMIN_AUTH, accept: ACCEPT } });
    const body = (await res.json()) as { errors: Array<{ code: string; message: string }> };
    assert.equal(res.status, 502, JSON.stringify(body));
    assert.equal(body.errors[0]!.code, 'DENIED');
    assert.match(body.errors[0]!.message, /refused the rule's credentials/);
    assert.ok(body.errors[0]!.message.includes(secret), `the message names the secret: ${body.errors[0]!.message}`);
    const skopeo = await tools.skopeo(['inspect', '--raw', '--tls-verify=false', `docker://${b.host}/${name}:v1`], { allowFailure: true });
    assert.notEqual(skopeo.code, 0);
    assert.match(skopeo.stderr, /502 Bad Gateway/);
    assert.equal((await sdkRepositoryExists(ecrB, name)), false, 'nothing was cached, not even the repository');

    // The right password: the client is made anew after a refusal, so the next pull reads the secret again.
    await awsOk(b, ADMIN, ['secretsmanager', 'put-secret-value', '--secret-id', secret, '--secret-string', JSON.stringify({ username: d1.username, accessToken: d1.password })]);
    assert.deepEqual(await ecrCli(b, ['validate-pull-through-cache-rule', '--ecr-repository-prefix', 'wrong']).then((v) => [v.isValid, v.failure]), [true, undefined]);
    assertSameContent(await pullWithSkopeo(tools, `${b.host}/${name}:v1`), { digest: image.digest, blobs: expectedBlobs(image) }, 'skopeo after the secret was fixed');
    await waitForCached(b, ecrB, name, image.digest, 'v1');
  });

  test('IAM: the first pull needs ecr:BatchImportUpstreamImage and ecr:CreateRepository; later pulls only pull permissions; the PULL_THROUGH_CACHE creation template shapes the new repository', async () => {
    await ecrCli(b, ['create-repository-creation-template', '--prefix', 'iam', '--applied-for', 'PULL_THROUGH_CACHE', '--image-tag-mutability', 'IMMUTABLE', '--resource-tags', 'Key=cached,Value=yes', '--description', 'cached images']);
    await ruleForD1(b, 'iam', d1SecretB);
    const upstreamRepo = repoName('app');
    const name = `iam/${upstreamRepo}`;
    const image = buildRealImage();
    await pushWithSkopeo(tools, distributionTarget(d1), upstreamRepo, [{ tag: 'v1', content: image }]);

    const puller = await userAllowed(b, 'puller', ['ecr:BatchGetImage', 'ecr:GetDownloadUrlForLayer', 'ecr:GetAuthorizationToken']);
    const importer = await userAllowed(b, 'importer-without-create', ['ecr:BatchGetImage', 'ecr:GetDownloadUrlForLayer', 'ecr:GetAuthorizationToken', 'ecr:BatchImportUpstreamImage']);
    const refused = async (creds: AwsCredentials, action: string) => {
      const res = await fetch(`${b.baseUrl}/v2/${name}/manifests/v1`, { headers: { authorization: basicAuthorization(creds.accessKeyId, creds.secretAccessKey), accept: ACCEPT } });
      const body = (await res.json()) as { errors: Array<{ code: string; message: string }> };
      assert.equal(res.status, 403, JSON.stringify(body));
      assert.equal(body.errors[0]!.code, 'DENIED');
      assert.ok(body.errors[0]!.message.includes(action), `the refusal names ${action}: ${body.errors[0]!.message}`);
    };
    await refused(puller, 'ecr:BatchImportUpstreamImage');
    await refused(importer, 'ecr:CreateRepository');
    const skopeo = await tools.skopeo(['copy', '--quiet', '--src-tls-verify=false', '--src-creds', `${puller.accessKeyId}:${puller.secretAccessKey}`, `docker://${b.host}/${name}:v1`, `dir:${await tools.mkdir('refused')}`], { allowFailure: true });
    assert.notEqual(skopeo.code, 0, 'skopeo cannot do the first pull as the puller');
    assert.match(skopeo.stderr, /BatchImportUpstreamImage/);
    assert.equal(await sdkRepositoryExists(ecrB, name), false, 'a refused first pull creates no repository');

    // The administrator's first pull brings the image in, into a repository made from the template.
    await tools.podman(['pull', '--quiet', '--tls-verify=false', `${b.host}/${name}:v1`]);
    await waitForCached(b, ecrB, name, image.digest, 'v1');
    const [repository] = (await ecrCli(b, ['describe-repositories', '--repository-names', name])).repositories;
    assert.equal(repository.imageTagMutability, 'IMMUTABLE', 'from the PULL_THROUGH_CACHE template');
    assert.deepEqual((await ecrCli(b, ['list-tags-for-resource', '--resource-arn', repository.repositoryArn])).tags, [{ Key: 'cached', Value: 'yes' }]);

    // Now the puller pulls it, through skopeo and podman, with pull permissions only.
    assertSameContent(await pullWithSkopeo(tools, `${b.host}/${name}:v1`, `${puller.accessKeyId}:${puller.secretAccessKey}`), { digest: image.digest, blobs: expectedBlobs(image) }, 'skopeo as the puller');
    // podman too, with the administrator's copy gone from its storage first, so that it fetches every layer.
    await tools.podman(['rmi', '--force', `${b.host}/${name}:v1`]);
    await tools.podman(['pull', '--quiet', '--tls-verify=false', '--creds', `${puller.accessKeyId}:${puller.secretAccessKey}`, `${b.host}/${name}@${image.digest}`]);
    const [inspected] = JSON.parse((await tools.podman(['image', 'inspect', `${b.host}/${name}@${image.digest}`])).stdout) as Array<{ Id: string }>;
    assert.equal(inspected!.Id, image.config.digest.slice('sha256:'.length));
  });

  test('the ECR API through the AWS CLI: create, duplicate, describe with a filter and pages, update, validate, delete; a secret that does not exist', async () => {
    const second = await createCacheSecret(b, 'api-second', { username: d1.username!, accessToken: d1.password! });
    const created = await ruleForD1(b, 'api-one', d1SecretB);
    assert.deepEqual(
      { ...created, createdAt: Number.isNaN(Date.parse(created.createdAt)) ? created.createdAt : 'a time' },
      { ecrRepositoryPrefix: 'api-one', upstreamRegistryUrl: d1.baseUrl, createdAt: 'a time', registryId: A, credentialArn: d1SecretB, upstreamRepositoryPrefix: 'ROOT' },
    );
    await ecrCli(b, ['create-pull-through-cache-rule', '--ecr-repository-prefix', 'api-two', '--upstream-registry-url', d1.baseUrl, '--credential-arn', d1SecretB, '--upstream-repository-prefix', 'team']);
    // api-two/NAME is team/NAME upstream.
    const teamRepo = repoName('team');
    const image = buildRealImage();
    await pushWithSkopeo(tools, distributionTarget(d1), teamRepo, [{ tag: 'v1', content: image }]);
    const mapped = `api-two/${teamRepo.slice('team/'.length)}`;
    assert.equal(await manifestDigest(b.baseUrl, mapped, 'v1'), image.digest);
    await waitForCached(b, ecrB, mapped, image.digest, 'v1');

    const duplicate = await awsFails(b, ADMIN, ['ecr', 'create-pull-through-cache-rule', '--ecr-repository-prefix', 'api-one', '--upstream-registry-url', d1.baseUrl, '--credential-arn', d1SecretB]);
    assert.equal(duplicate.errorCode, 'PullThroughCacheRuleAlreadyExistsException');
    const noSecret = await awsFails(b, ADMIN, ['ecr', 'create-pull-through-cache-rule', '--ecr-repository-prefix', 'api-three', '--upstream-registry-url', d1.baseUrl, '--credential-arn', `arn:aws:secretsmanager:us-east-1:${A}:secret:ecr-pullthroughcache/absent-AbCdEf`]);
    assert.equal(noSecret.errorCode, 'SecretNotFoundException');

    const filtered = (await ecrCli(b, ['describe-pull-through-cache-rules', '--ecr-repository-prefixes', 'api-two'])).pullThroughCacheRules;
    assert.deepEqual(filtered.map((r: any) => [r.ecrRepositoryPrefix, r.upstreamRepositoryPrefix, r.credentialArn]), [['api-two', 'team', d1SecretB]]);
    // Pages of one (other tests' rules are in the list too): together they are the whole list.
    const all = (await ecrCli(b, ['describe-pull-through-cache-rules'])).pullThroughCacheRules.map((r: any) => r.ecrRepositoryPrefix);
    assert.ok(all.includes('api-one') && all.includes('api-two') && !all.includes('api-three'), all.join(' '));
    const paged: string[] = [];
    let token: string | undefined;
    do {
      const page = await ecrCli(b, ['describe-pull-through-cache-rules', '--max-results', '1', ...(token ? ['--next-token', token] : [])]);
      assert.equal(page.pullThroughCacheRules.length, 1);
      paged.push(page.pullThroughCacheRules[0].ecrRepositoryPrefix);
      token = page.nextToken;
      assert.ok(paged.length <= all.length, `pages beyond the ${all.length} rules: ${paged.join(' ')}`);
    } while (token);
    assert.deepEqual(paged, all);

    const updated = await ecrCli(b, ['update-pull-through-cache-rule', '--ecr-repository-prefix', 'api-one', '--credential-arn', second]);
    assert.equal(updated.credentialArn, second);
    assert.equal((await ecrCli(b, ['describe-pull-through-cache-rules', '--ecr-repository-prefixes', 'api-one'])).pullThroughCacheRules[0].credentialArn, second);
    const valid = await ecrCli(b, ['validate-pull-through-cache-rule', '--ecr-repository-prefix', 'api-one']);
    assert.deepEqual([valid.isValid, valid.credentialArn, valid.upstreamRegistryUrl], [true, second, d1.baseUrl]);
    const notUpdated = await awsFails(b, ADMIN, ['ecr', 'update-pull-through-cache-rule', '--ecr-repository-prefix', 'api-absent', '--credential-arn', second]);
    assert.equal(notUpdated.errorCode, 'PullThroughCacheRuleNotFoundException');

    const deleted = await ecrCli(b, ['delete-pull-through-cache-rule', '--ecr-repository-prefix', 'api-one']);
    assert.deepEqual([deleted.ecrRepositoryPrefix, deleted.credentialArn], ['api-one', second]);
    for (const args of [
      ['describe-pull-through-cache-rules', '--ecr-repository-prefixes', 'api-one'],
      ['delete-pull-through-cache-rule', '--ecr-repository-prefix', 'api-one'],
      ['validate-pull-through-cache-rule', '--ecr-repository-prefix', 'api-one'],
    ]) {
      const gone = await aws(b, ADMIN, ['ecr', ...args]);
      assert.equal(gone.errorCode, 'PullThroughCacheRuleNotFoundException', `${args[0]}: ${gone.stderr}`);
    }
    await ecrCli(b, ['delete-pull-through-cache-rule', '--ecr-repository-prefix', 'api-two']);
  });
});

/** Whether DescribeRepositories knows the repository. */
async function sdkRepositoryExists(ecr: ECRClient, repositoryName: string): Promise<boolean> {
  try {
    await ecr.send(new DescribeRepositoriesCommand({ repositoryNames: [repositoryName] }));
    return true;
  } catch (err) {
    if ((err as Error).name === 'RepositoryNotFoundException') return false;
    throw err;
  }
}
