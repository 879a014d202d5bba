import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { DescribeImagesCommand, type ECRClient } from '@aws-sdk/client-ecr';
import { ADMIN, authedFetch } from '../support/auth.ts';
import { awsOk, ecrClient, requireAwsCli } from '../support/aws.ts';
import { assertTools, skipUnlessTools } from '../support/containerd.ts';
import { BUSYBOX, DOCKER_CLI, DOCKERD, busyboxLayer, dockerArchive, engineUnavailable, hostArchitecture, isStaticElf, startDocker, type TestDocker } from '../support/docker.ts';
import { buildRealImage, buildRealIndex, untar, type RealImage } from '../support/layout.ts';
import { MT, pushBlob, pushManifest, repoName } from '../support/oci.ts';
import { startServer, type TestServer } from '../support/server.ts';
import { requireTools, toolSandbox } from '../support/tools.ts';

/**
 * The Docker engine (Debian's docker.io), which ECS and Lambda image builds push and pull with,
 * against the real server: a private dockerd on a containerd of its own (test/support/docker.ts),
 * and the Docker CLI with its config in a sandbox. The flow is ECR's: create the repository with
 * the AWS CLI, `aws ecr get-login-password | docker login --username AWS --password-stdin`, then
 * push and pull. Images are built offline as `docker save` archives and loaded, so the engine's
 * image id (the config digest) is known in advance; the runnable one holds Debian's static busybox.
 *
 * Not covered: `docker buildx imagetools`, since Debian 12 packages no buildx plugin (the test
 * says so when it skips); the manifest list is covered with `docker manifest` instead.
 */

const engineMissing = [DOCKERD, DOCKER_CLI].filter((f) => !existsSync(f));
const dockerSkip =
  engineUnavailable() || skipUnlessTools('containerd', 'ctr') || (engineMissing.length === 0 || process.env['CI'] ? false : `not installed: ${engineMissing.join(', ')} (apt-get install docker.io)`);
const runnable = isStaticElf(BUSYBOX);
const runSkip = runnable || process.env['CI'] ? false : `not installed: a static ${BUSYBOX} to build a runnable image offline (apt-get install busybox-static)`;

interface InspectedImage {
  Id: string;
  RepoTags: string[];
  RepoDigests: string[];
  Architecture: string;
  Os: string;
  Config: { Labels?: Record<string, string> | null };
}

function nonce(image: RealImage): string {
  return (JSON.parse(image.config.bytes.toString()) as { config: { Labels: Record<string, string> } }).config.Labels['test.nonce']!;
}

describe('the Docker engine pushes to and pulls from Berth', { skip: dockerSkip }, () => {
  let server: TestServer;
  let engine: TestDocker;
  let ecr: ECRClient;
  let host: string;

  before(async () => {
    assertTools('containerd', 'ctr');
    assert.deepEqual(engineMissing, [], 'not installed (apt-get install docker.io); .ci/run installs it');
    requireAwsCli();
    server = await startServer({ env: { BERTH_REPOSITORIES_CREATE_ON_PUSH: 'false' } });
    engine = await startDocker();
    ecr = ecrClient(server, ADMIN);
    host = `127.0.0.1:${server.port}`;
  });
  after(async () => {
    try {
      await engine?.close();
    } finally {
      await server?.close();
    }
  });

  const docker = (args: readonly string[], options?: Parameters<TestDocker['docker']>[1]) => engine.docker(args, options);

  async function createRepository(prefix: string): Promise<string> {
    const repositoryName = repoName(prefix);
    await awsOk(server, ADMIN, ['ecr', 'create-repository', '--repository-name', repositoryName]);
    return repositoryName;
  }

  /** `aws ecr get-login-password | docker login --username AWS --password-stdin HOST`. */
  async function login(): Promise<string> {
    const password = (await awsOk(server, ADMIN, ['ecr', 'get-login-password'])).stdout.trim();
    const out = await docker(['login', '--username', 'AWS', '--password-stdin', host], { input: password });
    assert.match(out.stdout, /Login Succeeded/);
    return password;
  }

  /** `docker load` of a `docker save` archive of `image` tagged `refs`; resolves the image id. */
  async function load(image: RealImage, refs: string[]): Promise<string> {
    const file = path.join(engine.dir, 'tmp', `load-${randomBytes(4).toString('hex')}.tar`);
    await writeFile(file, dockerArchive(image, refs));
    const out = await docker(['load', '--input', file]);
    for (const ref of refs) assert.match(out.stdout, new RegExp(`Loaded image: ${ref.replaceAll('.', '\\.')}`));
    return image.config.digest;
  }

  async function inspect(ref: string): Promise<InspectedImage> {
    const [img] = JSON.parse((await docker(['image', 'inspect', ref])).stdout) as InspectedImage[];
    assert.ok(img, `docker image inspect ${ref}`);
    return img;
  }

  async function imageIds(): Promise<string[]> {
    return (await docker(['images', '--all', '--quiet', '--no-trunc'])).stdout.split('\n').filter(Boolean).sort();
  }

  /** `docker push REF`; resolves the manifest digest it reports ("TAG: digest: sha256:... size: N"). */
  async function push(ref: string): Promise<string> {
    const out = await docker(['push', ref]);
    const digest = /digest: (sha256:[0-9a-f]{64}) size: \d+/.exec(out.stdout)?.[1];
    assert.ok(digest, `docker push printed a digest:\n${out.stdout}`);
    return digest;
  }

  async function berthHead(repository: string, reference: string, accept: string): Promise<{ status: number; digest: string | null; mediaType: string | null }> {
    const res = await authedFetch(`${server.baseUrl}/v2/${repository}/manifests/${reference}`, { method: 'HEAD', headers: { accept } });
    return { status: res.status, digest: res.headers.get('docker-content-digest'), mediaType: res.headers.get('content-type') };
  }

  test('get-login-password | docker login, docker load, push, rmi, pull: the same image id, and it runs', async (t) => {
    const repository = await createRepository('docker');
    const password = await login();
    const config = JSON.parse(await readFile(path.join(engine.configDir, 'config.json'), 'utf8')) as { auths: Record<string, { auth: string }> };
    assert.equal(Buffer.from(config.auths[host]!.auth, 'base64').toString(), `AWS:${password}`, 'docker login stored the token in the sandbox config');

    const image = buildRealImage({
      docker: true,
      platform: { os: 'linux', architecture: hostArchitecture() },
      layers: [...(runnable ? [busyboxLayer()] : []), [{ name: 'etc', type: 'dir' }, { name: 'etc/berth-test', content: `payload for ${repository}\n` }]],
    });
    const ref = `${host}/${repository}:v1`;
    const id = await load(image, [ref]);
    assert.equal((await inspect(ref)).Id, id);

    const digest = await push(ref);
    const head = await berthHead(repository, 'v1', `${MT.dockerManifest}, ${MT.ociManifest}`);
    assert.deepEqual([head.status, head.digest, head.mediaType], [200, digest, MT.dockerManifest]);
    const described = await ecr.send(new DescribeImagesCommand({ repositoryName: repository }));
    assert.deepEqual(described.imageDetails?.map((d) => [d.imageDigest, d.imageTags, d.imageManifestMediaType]), [[digest, ['v1'], MT.dockerManifest]]);

    await docker(['rmi', ref]);
    assert.deepEqual(await imageIds(), [], 'the engine holds no image before the pull');
    const pulled = await docker(['pull', ref]);
    assert.match(pulled.stdout, new RegExp(`Digest: ${digest}`));
    const got = await inspect(ref);
    assert.equal(got.Id, id, 'the same image id: the config came back byte for byte');
    assert.deepEqual(got.RepoDigests, [`${host}/${repository}@${digest}`]);
    assert.equal(got.Config.Labels?.['test.nonce'], nonce(image));

    await t.test('docker run --network none of the pulled image', { skip: runSkip }, async () => {
      assert.ok(runnable, `no static ${BUSYBOX} to build a runnable image from: .ci/run installs busybox-static`);
      const out = await docker(['run', '--rm', '--network', 'none', ref, '/bin/busybox', 'cat', '/etc/berth-test']);
      assert.equal(out.stdout, `payload for ${repository}\n`);
    });

    // Pulled by digest too, as ECS task definitions pin images.
    await docker(['rmi', ref, `${host}/${repository}@${digest}`], { allowFailure: true });
    assert.deepEqual(await imageIds(), []);
    await docker(['pull', `${host}/${repository}@${digest}`]);
    assert.equal((await inspect(`${host}/${repository}@${digest}`)).Id, id);
    await docker(['rmi', `${host}/${repository}@${digest}`]);
  });

  test('refused: a push to a repository nobody created, docker login with a wrong token, and a pull or push after docker logout', async () => {
    const repository = await createRepository('docker-auth');
    await login();
    const image = buildRealImage({ docker: true });
    const ref = `${host}/${repository}:v1`;
    await load(image, [ref]);
    await push(ref);

    // Repositories are explicit, as in ECR: a push to one nobody created is refused with ECR's advice.
    const uncreated = `${host}/${repository}-uncreated:v1`;
    await docker(['tag', ref, uncreated]);
    const noRepo = await docker(['push', uncreated], { allowFailure: true });
    assert.notEqual(noRepo.code, 0);
    assert.match(noRepo.stderr, /name unknown: Repository \S+-uncreated does not exist .*create it first \(aws ecr create-repository/, noRepo.stderr);
    await docker(['rmi', uncreated]);

    const bad = await docker(['login', '--username', 'AWS', '--password-stdin', host], { input: 'not-a-token', allowFailure: true });
    assert.notEqual(bad.code, 0);
    assert.match(bad.stderr, /401 Unauthorized/, bad.stderr);

    await docker(['logout', host]);
    await docker(['rmi', ref]);
    const pull = await docker(['pull', ref], { allowFailure: true });
    assert.notEqual(pull.code, 0, 'a pull without credentials fails');
    assert.match(pull.stderr, /no basic auth credentials/, pull.stderr);
    assert.deepEqual(await imageIds(), []);

    await load(image, [`${host}/${repository}:v2`]);
    const refusedPush = await docker(['push', `${host}/${repository}:v2`], { allowFailure: true });
    assert.notEqual(refusedPush.code, 0, 'a push without credentials fails');
    assert.match(refusedPush.stderr, /no basic auth credentials/, refusedPush.stderr);
    assert.equal((await berthHead(repository, 'v2', MT.dockerManifest)).status, 404);
    await docker(['rmi', `${host}/${repository}:v2`]);
  });

  test('a manifest list: docker manifest create and push, docker manifest inspect, docker pull --platform; and an OCI index', async () => {
    const repository = await createRepository('docker-multi');
    await login();
    const amd64 = buildRealImage({ docker: true, platform: { os: 'linux', architecture: 'amd64' } });
    const arm64 = buildRealImage({ docker: true, platform: { os: 'linux', architecture: 'arm64', variant: 'v8' } });
    await load(amd64, [`${host}/${repository}:amd64`]);
    await load(arm64, [`${host}/${repository}:arm64`]);
    const amd64Digest = await push(`${host}/${repository}:amd64`);
    const arm64Digest = await push(`${host}/${repository}:arm64`);
    await docker(['rmi', `${host}/${repository}:amd64`, `${host}/${repository}:arm64`]);

    const list = `${host}/${repository}:multi`;
    await docker(['manifest', 'create', '--insecure', list, `${host}/${repository}:amd64`, `${host}/${repository}:arm64`]);
    await docker(['manifest', 'annotate', '--variant', 'v8', list, `${host}/${repository}:arm64`]);
    const pushed = await docker(['manifest', 'push', '--insecure', '--purge', list]);
    const listDigest = /sha256:[0-9a-f]{64}/.exec(pushed.stdout)?.[0];
    assert.ok(listDigest, pushed.stdout);
    const head = await berthHead(repository, 'multi', `${MT.dockerList}, ${MT.ociIndex}`);
    assert.deepEqual([head.status, head.digest, head.mediaType], [200, listDigest, MT.dockerList]);

    const inspected = JSON.parse((await docker(['manifest', 'inspect', '--insecure', list])).stdout) as { mediaType: string; manifests: { digest: string; mediaType: string; platform: { os: string; architecture: string; variant?: string } }[] };
    assert.equal(inspected.mediaType, MT.dockerList);
    assert.deepEqual(
      inspected.manifests.map((m) => [m.digest, m.mediaType, m.platform.os, m.platform.architecture, m.platform.variant]),
      [
        [amd64Digest, MT.dockerManifest, 'linux', 'amd64', undefined],
        [arm64Digest, MT.dockerManifest, 'linux', 'arm64', 'v8'],
      ],
    );

    await docker(['pull', '--platform', 'linux/arm64/v8', list]);
    const got = await inspect(list);
    assert.equal(got.Id, arm64.config.digest);
    assert.deepEqual([got.Os, got.Architecture], ['linux', 'arm64']);
    await docker(['rmi', list]);

    // An OCI index built in code and pushed over plain HTTP: the engine pulls from that format
    // too. (`docker manifest inspect` of 20.10, Debian 12's CLI, cannot read OCI manifests at
    // all, whatever the registry: docker/cli#3990, fixed in 23.0.)
    const a = buildRealImage({ platform: { os: 'linux', architecture: 'amd64' } });
    const b = buildRealImage({ platform: { os: 'linux', architecture: 's390x' } });
    const index = buildRealIndex([a, b]);
    for (const img of [a, b]) {
      for (const blob of [img.config, ...img.layers]) await pushBlob(server.baseUrl, repository, blob);
      assert.equal((await pushManifest(server.baseUrl, repository, img.digest, img.manifest, img.mediaType)).status, 201);
    }
    assert.equal((await pushManifest(server.baseUrl, repository, 'oci', index.index, index.mediaType)).status, 201);
    const ociPull = await docker(['pull', '--platform', 'linux/s390x', `${host}/${repository}:oci`]);
    assert.match(ociPull.stdout, new RegExp(`Digest: ${index.digest}`));
    const s390x = await inspect(`${host}/${repository}:oci`);
    assert.deepEqual([s390x.Id, s390x.Architecture], [b.config.digest, 's390x']);
    await docker(['rmi', `${host}/${repository}:oci`]);
  });

  test('docker buildx imagetools inspect of a multi-arch index', async (t) => {
    const version = await docker(['buildx', 'version'], { allowFailure: true });
    if (version.code !== 0) {
      // Not a missing install: Debian 12 has no docker-buildx package, so CI cannot have it either.
      t.skip('docker buildx is not available (Debian 12 packages no buildx plugin); the manifest list is covered with docker manifest above');
      return;
    }
    const repository = await createRepository('docker-buildx');
    await login();
    const a = buildRealImage({ platform: { os: 'linux', architecture: 'amd64' } });
    const b = buildRealImage({ platform: { os: 'linux', architecture: 'arm64' } });
    const index = buildRealIndex([a, b]);
    for (const img of [a, b]) {
      for (const blob of [img.config, ...img.layers]) await pushBlob(server.baseUrl, repository, blob);
      await pushManifest(server.baseUrl, repository, img.digest, img.manifest, img.mediaType);
    }
    await pushManifest(server.baseUrl, repository, 'multi', index.index, index.mediaType);
    const out = await docker(['buildx', 'imagetools', 'inspect', '--raw', `${host}/${repository}:multi`]);
    assert.deepEqual(Buffer.from(out.stdout), index.index);
  });
});

test('what the engine pushes and pulls, by the closest client that needs no engine: a docker save archive through skopeo as Docker schema 2', async (t) => {
  if (!requireTools(t, 'skopeo')) return;
  const server = await startServer({ env: { BERTH_REPOSITORIES_CREATE_ON_PUSH: 'false' } });
  t.after(() => server.close());
  const tools = await toolSandbox();
  t.after(() => tools.close());
  const host = `127.0.0.1:${server.port}`;
  const repository = repoName('docker-archive');
  await awsOk(server, ADMIN, ['ecr', 'create-repository', '--repository-name', repository]);
  const password = (await awsOk(server, ADMIN, ['ecr', 'get-login-password'])).stdout.trim();
  await tools.login(host, 'AWS', password);

  const image = buildRealImage({ docker: true });
  const dir = await tools.mkdir('archive');
  const archive = path.join(dir, 'saved.tar');
  await writeFile(archive, dockerArchive(image, [`${host}/${repository}:v1`]));
  await tools.skopeo(['copy', '--quiet', '--format', 'v2s2', '--dest-tls-verify=false', `docker-archive:${archive}`, `docker://${host}/${repository}:v1`]);
  const res = await authedFetch(`${server.baseUrl}/v2/${repository}/manifests/v1`, { headers: { accept: `${MT.dockerManifest}, ${MT.ociManifest}` } });
  assert.equal(res.status, 200);
  assert.equal(res.headers.get('content-type'), MT.dockerManifest);
  const manifest = JSON.parse(Buffer.from(await res.arrayBuffer()).toString()) as { config: { digest: string; mediaType: string }; layers: { mediaType: string }[] };
  assert.deepEqual([manifest.config.digest, manifest.config.mediaType], [image.config.digest, MT.dockerConfig]);
  assert.deepEqual(manifest.layers.map((l) => l.mediaType), [MT.dockerLayer]);

  // Back into the same archive format `docker load` reads: the image id is the config digest.
  const back = path.join(dir, 'pulled.tar');
  await tools.skopeo(['copy', '--quiet', '--src-tls-verify=false', `docker://${host}/${repository}:v1`, `docker-archive:${back}:${host}/${repository}:v1`]);
  const files = untar(await readFile(back));
  const saved = JSON.parse(files.get('manifest.json')!.toString()) as { Config: string; RepoTags: string[] }[];
  assert.deepEqual(saved.map((m) => m.RepoTags), [[`${host}/${repository}:v1`]]);
  assert.deepEqual(files.get(saved[0]!.Config), image.config.bytes);
});
