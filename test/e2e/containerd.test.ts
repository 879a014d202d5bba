import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { DescribeImagesCommand, GetAuthorizationTokenCommand, type ECRClient } from '@aws-sdk/client-ecr';
import { CreateAccessKeyCommand, CreateUserCommand, PutUserPolicyCommand } from '@aws-sdk/client-iam';
import { ADMIN, authedFetch } from '../support/auth.ts';
import { awsOk, ecrClient, iamClient, requireAwsCli, type AwsCredentials } from '../support/aws.ts';
import { assertTools, ociArchive, parseCtrImages, skipUnlessTools, startContainerd, type CtrImage, type TestContainerd } from '../support/containerd.ts';
import { buildRealImage, buildRealIndex, type RealImage, type RealIndex } from '../support/layout.ts';
import { MT, repoName } from '../support/oci.ts';
import { startServer, type TestServer } from '../support/server.ts';

/**
 * containerd, which ECS and EKS nodes pull with, against the real server: a private containerd
 * (test/support/containerd.ts) driven by `ctr`. Repositories are created with the AWS CLI first,
 * as in ECR (the server runs with create-on-push off), and ctr authenticates as nodes do, with
 * `AWS:<token>` from `aws ecr get-login-password` or from GetAuthorizationToken.
 *
 * Plain HTTP: ctr 1.6 already speaks HTTP to a loopback registry by default; the tests say so
 * anyway, once through a hosts.toml (--hosts-dir, as a node's /etc/containerd/certs.d) and once
 * with --plain-http, and one pull goes through a hosts.toml that maps another registry address
 * onto Berth, which only works if containerd reads that file.
 */

const skip = skipUnlessTools('containerd', 'ctr');

describe('containerd (ctr) pushes to and pulls from Berth', { skip }, () => {
  let server: TestServer;
  let containerd: TestContainerd;
  let ecr: ECRClient;
  let host: string;
  let hostsDir: string;

  before(async () => {
    assertTools('containerd', 'ctr');
    requireAwsCli();
    server = await startServer({ env: { BERTH_REPOSITORIES_CREATE_ON_PUSH: 'false' } });
    containerd = await startContainerd();
    ecr = ecrClient(server, ADMIN);
    host = `127.0.0.1:${server.port}`;
    hostsDir = await containerd.plainHttpHostsDir(host);
  });
  after(async () => {
    try {
      await containerd?.close();
    } finally {
      await server?.close();
    }
  });

  async function createRepository(prefix: string): Promise<string> {
    const repositoryName = repoName(prefix);
    const created = await awsOk(server, ADMIN, ['ecr', 'create-repository', '--repository-name', repositoryName]);
    assert.equal(created.json.repository.repositoryName, repositoryName);
    return repositoryName;
  }

  /** The password half of `AWS:<password>`, as `aws ecr get-login-password` prints it. */
  async function loginPassword(creds: AwsCredentials = ADMIN): Promise<string> {
    const password = (await awsOk(server, creds, ['ecr', 'get-login-password'])).stdout.trim();
    assert.ok(password.length > 20, 'get-login-password printed a token');
    return password;
  }

  /** Imports the archive into containerd under `<host>/<repository>:<tag>`, all platforms. */
  async function importImage(repository: string, tag: string, content: RealImage | RealIndex): Promise<string> {
    const file = path.join(containerd.dir, `import-${randomBytes(4).toString('hex')}.tar`);
    await writeFile(file, ociArchive([{ tag, content }]));
    await containerd.ctr(['images', 'import', '--all-platforms', '--base-name', `${host}/${repository}`, file]);
    return `${host}/${repository}:${tag}`;
  }

  async function images(): Promise<CtrImage[]> {
    return parseCtrImages((await containerd.ctr(['images', 'ls'])).stdout);
  }

  async function image(ref: string): Promise<CtrImage> {
    const found = (await images()).find((i) => i.name === ref);
    assert.ok(found, `ctr images ls lists ${ref}`);
    return found;
  }

  /** What containerd's content store holds for `digest`, or undefined when it holds nothing. */
  function content(digest: string): Promise<Buffer | undefined> {
    return containerd.contentGet(digest);
  }

  /** Forgets the images and, with --sync, garbage-collects their content before returning. */
  async function forget(...refs: string[]): Promise<void> {
    await containerd.ctr(['images', 'rm', '--sync', ...refs]);
  }

  async function berthManifest(repository: string, reference: string, accept: string): Promise<{ digest: string | null; mediaType: string | null; bytes: Buffer }> {
    const res = await authedFetch(`${server.baseUrl}/v2/${repository}/manifests/${reference}`, { headers: { accept } });
    assert.equal(res.status, 200, `GET manifest ${repository}:${reference}`);
    return { digest: res.headers.get('docker-content-digest'), mediaType: res.headers.get('content-type'), bytes: Buffer.from(await res.arrayBuffer()) };
  }

  async function assertHoldsImage(img: RealImage): Promise<void> {
    assert.deepEqual(await content(img.digest), img.manifest, `manifest ${img.digest} byte-identical`);
    assert.deepEqual(await content(img.config.digest), img.config.bytes, `config ${img.config.digest} byte-identical`);
    for (const l of img.layers) assert.deepEqual(await content(l.digest), l.bytes, `layer ${l.digest} byte-identical`);
  }

  test('ctr push through a hosts.toml, then pull by tag and by digest: the same manifest, config and layers', async () => {
    const repository = await createRepository('ctr');
    const password = await loginPassword();
    const img = buildRealImage({
      layers: [
        [{ name: 'etc', type: 'dir' }, { name: 'etc/os-release', content: 'ID=berth-test\n' }],
        [{ name: 'app', type: 'dir' }, { name: 'app/data', content: `payload for ${repository}\n` }],
      ],
    });
    const ref = await importImage(repository, 'v1', img);
    await containerd.ctr(['images', 'push', '--hosts-dir', hostsDir, '--user', `AWS:${password}`, ref]);

    const stored = await berthManifest(repository, 'v1', MT.ociManifest);
    assert.equal(stored.digest, img.digest);
    assert.deepEqual(stored.bytes, img.manifest, 'ctr pushed the manifest bytes it imported');
    const described = await ecr.send(new DescribeImagesCommand({ repositoryName: repository }));
    assert.deepEqual(
      described.imageDetails?.map((d) => [d.imageDigest, d.imageTags, d.imageManifestMediaType]),
      [[img.digest, ['v1'], MT.ociManifest]],
    );

    await forget(ref);
    assert.equal(await content(img.digest), undefined, 'nothing left locally before the pull');
    assert.equal(await content(img.layers[0]!.digest), undefined);

    await containerd.ctr(['images', 'pull', '--plain-http', '--user', `AWS:${password}`, ref]);
    const byTag = await image(ref);
    assert.deepEqual([byTag.mediaType, byTag.digest, byTag.platforms], [MT.ociManifest, img.digest, ['linux/amd64']]);
    await assertHoldsImage(img);

    await forget(ref);
    const byDigestRef = `${host}/${repository}@${img.digest}`;
    await containerd.ctr(['images', 'pull', '--hosts-dir', hostsDir, '--user', `AWS:${password}`, byDigestRef]);
    const byDigest = await image(byDigestRef);
    assert.deepEqual([byDigest.mediaType, byDigest.digest], [MT.ociManifest, img.digest]);
    await assertHoldsImage(img);
    await forget(byDigestRef);
  });

  test('a multi-arch index: ctr pushes all of it, pulls it whole by tag, and one platform by digest through a registry alias', async () => {
    const repository = await createRepository('ctr-multi');
    const password = await loginPassword();
    const amd64 = buildRealImage({ platform: { os: 'linux', architecture: 'amd64' } });
    const arm64 = buildRealImage({ platform: { os: 'linux', architecture: 'arm64', variant: 'v8' } });
    const index = buildRealIndex([amd64, arm64]);
    const ref = await importImage(repository, 'multi', index);
    assert.deepEqual((await image(ref)).platforms, ['linux/amd64', 'linux/arm64/v8']);
    await containerd.ctr(['images', 'push', '--plain-http', '--user', `AWS:${password}`, ref]);

    const stored = await berthManifest(repository, 'multi', MT.ociIndex);
    assert.deepEqual([stored.digest, stored.mediaType], [index.digest, MT.ociIndex]);
    assert.deepEqual(stored.bytes, index.index);
    for (const img of [amd64, arm64]) assert.deepEqual((await berthManifest(repository, img.digest, MT.ociManifest)).bytes, img.manifest);

    await forget(ref);
    await containerd.ctr(['images', 'pull', '--all-platforms', '--plain-http', '--user', `AWS:${password}`, ref]);
    const whole = await image(ref);
    assert.deepEqual([whole.mediaType, whole.digest, whole.platforms], [MT.ociIndex, index.digest, ['linux/amd64', 'linux/arm64/v8']]);
    assert.deepEqual(await content(index.digest), index.index);
    await assertHoldsImage(amd64);
    await assertHoldsImage(arm64);
    await forget(ref);

    // Another registry address, where nothing listens (Berth listens on 127.0.0.1 only), that a
    // hosts.toml sends to Berth, as a node's mirror configuration does: the pull works only
    // if containerd reads that file.
    const alias = `127.0.0.2:${server.port}`;
    const aliasDir = path.join(containerd.dir, 'alias.d');
    await mkdir(path.join(aliasDir, alias), { recursive: true });
    await writeFile(path.join(aliasDir, alias, 'hosts.toml'), `server = "http://${host}"\n\n[host."http://${host}"]\n  capabilities = ["pull", "resolve"]\n`);
    const byDigest = `${alias}/${repository}@${index.digest}`;
    const direct = await containerd.ctr(['images', 'pull', '--plain-http', '--user', `AWS:${password}`, byDigest], { allowFailure: true });
    assert.notEqual(direct.code, 0);
    assert.match(direct.stderr, /connection refused/, `without the hosts.toml: ${direct.stderr}`);
    await containerd.ctr(['images', 'pull', '--hosts-dir', aliasDir, '--platform', 'linux/arm64/v8', '--user', `AWS:${password}`, byDigest]);
    const one = await image(byDigest);
    assert.deepEqual([one.mediaType, one.digest], [MT.ociIndex, index.digest]);
    assert.deepEqual(await content(index.digest), index.index);
    await assertHoldsImage(arm64);
    assert.equal(await content(amd64.config.digest), undefined, 'the other platform was not fetched');
    assert.equal(await content(amd64.layers[0]!.digest), undefined);
    await forget(byDigest);
  });

  test('pulls and pushes without credentials, with a garbage token, a forged token or a wrong secret are refused with 401', async () => {
    const repository = await createRepository('ctr-auth');
    const password = await loginPassword();
    const img = buildRealImage();
    const ref = await importImage(repository, 'v1', img);
    await containerd.ctr(['images', 'push', '--plain-http', '--user', `AWS:${password}`, ref]);
    await forget(ref);

    // One character in the middle of the signature: the last character of base64url may carry
    // only padding bits, and changing those alone leaves the same signature.
    const at = password.lastIndexOf('.') + 8;
    const forged = `${password.slice(0, at)}${password[at] === 'A' ? 'Q' : 'A'}${password.slice(at + 1)}`;
    assert.notEqual(forged, password);
    const attempts: [string, string[]][] = [
      ['no credentials', []],
      ['a garbage token', ['--user', 'AWS:not-a-token']],
      ['a forged token', ['--user', `AWS:${forged}`]],
      ['an access key with a wrong secret', ['--user', `${ADMIN.accessKeyId}:${ADMIN.secretAccessKey}x`]],
    ];
    for (const [what, user] of attempts) {
      const out = await containerd.ctr(['images', 'pull', '--plain-http', ...user, ref], { allowFailure: true });
      assert.notEqual(out.code, 0, `${what}: ctr pull should fail`);
      assert.match(out.stderr, /failed to resolve reference .*401 Unauthorized/, `${what}: ${out.stderr}`);
    }
    assert.equal((await images()).find((i) => i.name === ref), undefined, 'no refused pull left an image');
    assert.equal(await content(img.digest), undefined);

    // The same pull with the real token goes through: the refusals were the credentials'.
    await containerd.ctr(['images', 'pull', '--plain-http', '--user', `AWS:${password}`, ref]);
    assert.equal((await image(ref)).digest, img.digest);

    // Pushes too: nothing lands under the tag.
    const other = await importImage(repository, 'v2', buildRealImage());
    for (const [what, user] of attempts.slice(0, 3)) {
      const out = await containerd.ctr(['images', 'push', '--plain-http', ...user, other], { allowFailure: true });
      assert.notEqual(out.code, 0, `${what}: ctr push should fail`);
      assert.match(out.stderr, /401 Unauthorized/, `${what}: ${out.stderr}`);
    }
    const head = await authedFetch(`${server.baseUrl}/v2/${repository}/manifests/v2`, { method: 'HEAD', headers: { accept: MT.ociManifest } });
    assert.equal(head.status, 404);
    await forget(ref, other);
  });

  test('the node credential-provider flow: GetAuthorizationToken with a read-only node identity, then containerd pulls with it', async () => {
    const repository = await createRepository('ctr-node');
    const img = buildRealImage();
    const ref = await importImage(repository, 'v1', img);
    await containerd.ctr(['images', 'push', '--plain-http', '--user', `AWS:${await loginPassword()}`, ref]);
    await forget(ref);

    // A node's instance role with the actions of AmazonEC2ContainerRegistryReadOnly.
    const iam = iamClient(server, ADMIN);
    const userName = `eks-node-${randomBytes(4).toString('hex')}`;
    await iam.send(new CreateUserCommand({ UserName: userName }));
    const readOnly = {
      Version: '2012-10-17',
      Statement: [{ Effect: 'Allow', Action: ['ecr:GetAuthorizationToken', 'ecr:BatchCheckLayerAvailability', 'ecr:GetDownloadUrlForLayer', 'ecr:BatchGetImage', 'ecr:DescribeImages'], Resource: '*' }],
    };
    await iam.send(new PutUserPolicyCommand({ UserName: userName, PolicyName: 'ecr-read-only', PolicyDocument: JSON.stringify(readOnly) }));
    const key = (await iam.send(new CreateAccessKeyCommand({ UserName: userName }))).AccessKey!;
    const node: AwsCredentials = { accessKeyId: key.AccessKeyId!, secretAccessKey: key.SecretAccessKey! };

    // What ecr-credential-provider (kubelet) and amazon-ecr-credential-helper do for an image.
    const before = Date.now();
    const out = await ecrClient(server, node).send(new GetAuthorizationTokenCommand({}));
    const data = out.authorizationData?.[0];
    assert.ok(data?.authorizationToken && data.proxyEndpoint && data.expiresAt, JSON.stringify(out));
    assert.equal(data.proxyEndpoint, server.baseUrl, 'proxyEndpoint is the registry the client asked');
    assert.equal(new URL(data.proxyEndpoint).host, host);
    const validMs = data.expiresAt.getTime() - before;
    assert.ok(validMs > 11 * 3600_000 && validMs <= 12 * 3600_000 + 60_000, `the token lasts 12 h: expiresAt ${data.expiresAt.toISOString()}`);
    const decoded = Buffer.from(data.authorizationToken, 'base64').toString('utf8');
    const colon = decoded.indexOf(':');
    const [username, password] = [decoded.slice(0, colon), decoded.slice(colon + 1)];
    assert.equal(username, 'AWS');
    assert.ok(password.length > 20);
    // The kubelet's CredentialProviderResponse carries these, keyed by registry, cached until expiry.
    const response = {
      apiVersion: 'credentialprovider.kubelet.k8s.io/v1',
      kind: 'CredentialProviderResponse',
      cacheKeyType: 'Registry',
      cacheDuration: `${Math.floor(validMs / 2 / 1000)}s`,
      auth: { [new URL(data.proxyEndpoint).host]: { username, password } },
    };
    const creds = response.auth[host];
    assert.ok(creds, 'the provider answers for the image registry');

    await containerd.ctr(['images', 'pull', '--hosts-dir', hostsDir, '--user', `${creds.username}:${creds.password}`, ref]);
    assert.equal((await image(ref)).digest, img.digest);
    await assertHoldsImage(img);

    // Read-only: the node's token pulls but cannot push.
    const other = await importImage(repository, 'from-node', buildRealImage());
    const push = await containerd.ctr(['images', 'push', '--plain-http', '--user', `${creds.username}:${creds.password}`, other], { allowFailure: true });
    assert.notEqual(push.code, 0, 'a read-only node identity cannot push');
    assert.match(push.stderr, /403 Forbidden|denied/i, push.stderr);
    const head = await authedFetch(`${server.baseUrl}/v2/${repository}/manifests/from-node`, { method: 'HEAD', headers: { accept: MT.ociManifest } });
    assert.equal(head.status, 404, 'nothing was tagged');
    await forget(ref, other);
  });
});
