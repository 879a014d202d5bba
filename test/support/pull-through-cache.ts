import assert from 'node:assert/strict';
import { once } from 'node:events';
import path from 'node:path';
import { DescribeImagesCommand, type ECRClient } from '@aws-sdk/client-ecr';
import { CreateAccessKeyCommand, CreateUserCommand, PutUserPolicyCommand } from '@aws-sdk/client-iam';
import { ADMIN, basicAuthorization } from './auth.ts';
import { awsOk, iamClient, type AwsCredentials } from './aws.ts';
import type { TestDistribution } from './distribution.ts';
import { readDirImage, readOciLayout, writeOciLayout, type RealImage, type RealIndex } from './layout.ts';
import { MT, sha256, waitFor } from './oci.ts';
import { repoRoot, startServer, type StartOptions, type TestServer } from './server.ts';
import type { ToolSandbox } from './tools.ts';

/**
 * Helpers for the pull-through cache's end-to-end tests (test/e2e/pull-through-cache.test.ts):
 * upstream registries filled with skopeo, Secrets Manager secrets and rules made with the real
 * AWS CLI, the wait for an image to be stored behind a pull, and the event log.
 */

/** A test server of the cache tests, with its `127.0.0.1:PORT` for image references. */
export interface CacheServer extends TestServer {
  host: string;
}

/**
 * Starts a server and returns it with a close() that also checks its log: no error-level line,
 * and no 5xx answer except those `expected5xx` allows (the cache's 502 and 503 are answers the
 * tests ask for).
 */
export async function startCacheServer(options: StartOptions & { expected5xx?: (line: Record<string, unknown>) => boolean } = {}): Promise<CacheServer & { closeAndCheck(): Promise<void> }> {
  const server = await startServer(options);
  const stdoutEnded = once(server.process.stdout!, 'end');
  return Object.assign(server, {
    host: `127.0.0.1:${server.port}`,
    async closeAndCheck() {
      await server.close();
      // The last lines may still be in the pipe when the process exits.
      await stdoutEnded;
      const bad = server.logs.filter(
        (l) => l['level'] === 'error' || l['level'] === 'fatal' || (typeof l['status'] === 'number' && l['status'] >= 500 && !options.expected5xx?.(l)),
      );
      assert.deepEqual(bad, [], `the server on ${server.baseUrl} logged errors or unexpected 5xx answers`);
    },
  });
}

/**
 * Debian's AWS CLI (2.9) predates credentialArn, UpdatePullThroughCacheRule,
 * ValidatePullThroughCacheRule and creation templates: `aws configure add-model` gives it ECR's
 * current model (the one src/aws/models holds), as any user of an older CLI can do. It lands in
 * this test process's own HOME (aws.ts).
 */
export async function giveCliCurrentEcrModel(server: { baseUrl: string }): Promise<void> {
  await awsOk(server, ADMIN, ['configure', 'add-model', '--service-name', 'ecr', '--service-model', `file://${path.join(repoRoot, 'src/aws/models/ecr.json')}`]);
}

/** `aws ecr ARGS...` as `creds` (the administrator by default); resolves the parsed output. */
export async function ecrCli(server: { baseUrl: string }, args: string[], creds: AwsCredentials = ADMIN): Promise<any> {
  return (await awsOk(server, creds, ['ecr', ...args])).json;
}

/**
 * `aws secretsmanager create-secret --name ecr-pullthroughcache/NAME` holding `value` as JSON, as
 * ECR's pull-through cache secrets are made; resolves the secret's ARN.
 */
export async function createCacheSecret(server: { baseUrl: string }, name: string, value: Record<string, string>): Promise<string> {
  const out = await awsOk(server, ADMIN, ['secretsmanager', 'create-secret', '--name', `ecr-pullthroughcache/${name}`, '--secret-string', JSON.stringify(value)]);
  const arn = out.json?.ARN as string | undefined;
  assert.match(arn ?? '', new RegExp(`^arn:aws:secretsmanager:us-east-1:${ADMIN.accountId}:secret:ecr-pullthroughcache/${name}-[A-Za-z0-9]{6}$`), `the ARN CreateSecret returned: ${out.stdout}`);
  return arn!;
}

/**
 * Copies images built in code into a registry with skopeo (from an OCI layout), as
 * `HOST/REPOSITORY:TAG`; an index with every platform (`--all`).
 */
export async function pushWithSkopeo(
  tools: ToolSandbox,
  destination: { host: string; username?: string | undefined; password?: string | undefined },
  repository: string,
  refs: Array<{ tag: string; content: RealImage | RealIndex }>,
): Promise<void> {
  const layout = await tools.mkdir('push');
  await writeOciLayout(layout, refs);
  const creds = destination.username ? ['--dest-creds', `${destination.username}:${destination.password}`] : [];
  for (const { tag } of refs) {
    await tools.skopeo(['copy', '--quiet', '--all', '--dest-tls-verify=false', ...creds, `oci:${layout}:${tag}`, `docker://${destination.host}/${repository}:${tag}`]);
  }
}

/**
 * Pushes an image over plain HTTP with Basic credentials (monolithic blob uploads, then the
 * manifest under `tag`): for Docker schema 2 images, which skopeo 1.9 does not read from an OCI layout.
 */
export async function pushOverHttp(registry: TestDistribution, repository: string, image: RealImage, tag: string): Promise<void> {
  const authorization = basicAuthorization(registry.username!, registry.password!);
  for (const part of [image.config, ...image.layers]) {
    const start = await fetch(`${registry.baseUrl}/v2/${repository}/blobs/uploads/`, { method: 'POST', headers: { authorization } });
    await start.arrayBuffer();
    assert.equal(start.status, 202, `POST upload to ${registry.baseUrl}`);
    const location = new URL(start.headers.get('location')!, registry.baseUrl);
    location.searchParams.set('digest', part.digest);
    const put = await fetch(location, { method: 'PUT', body: part.bytes, headers: { authorization, 'content-type': 'application/octet-stream' } });
    assert.equal(put.status, 201, `PUT ${part.digest}: ${await put.text()}`);
  }
  const res = await fetch(`${registry.baseUrl}/v2/${repository}/manifests/${tag}`, { method: 'PUT', body: image.manifest, headers: { authorization, 'content-type': image.mediaType } });
  assert.equal(res.status, 201, `PUT manifest ${repository}:${tag}: ${await res.text()}`);
}

/** Distribution's `host:port` and credentials, as pushWithSkopeo and pullWithSkopeo take them. */
export function distributionTarget(d: TestDistribution): { host: string; username?: string | undefined; password?: string | undefined } {
  return { host: new URL(d.baseUrl).host, username: d.username, password: d.password };
}

/** What `skopeo copy --all docker://REF oci:DIR` wrote: the top-level descriptor and every blob (manifests included). */
export interface PulledLayout {
  digest: string;
  mediaType: string;
  blobs: Map<string, Buffer>;
}

/**
 * `skopeo copy --all` of `ref` (`HOST/REPO:TAG` or `HOST/REPO@DIGEST`) into a fresh OCI layout;
 * `creds` as `user:password` (otherwise the sandbox's auth file answers).
 */
export async function pullWithSkopeo(tools: ToolSandbox, ref: string, creds?: string): Promise<PulledLayout> {
  const dir = await tools.mkdir('pull');
  await tools.skopeo(['copy', '--quiet', '--all', '--src-tls-verify=false', ...(creds ? ['--src-creds', creds] : []), `docker://${ref}`, `oci:${dir}:pulled`]);
  const { descriptor, blobs } = await readOciLayout(dir, 'pulled');
  return { digest: descriptor.digest, mediaType: descriptor.mediaType, blobs };
}

/**
 * `skopeo copy` of one image into a `dir:` directory, which keeps the manifest as served (an OCI
 * layout would get a Docker schema 2 manifest converted to OCI); the manifest is among the blobs.
 */
export async function pullToDirWithSkopeo(tools: ToolSandbox, ref: string, creds?: string): Promise<PulledLayout> {
  const dir = await tools.mkdir('pull');
  await tools.skopeo(['copy', '--quiet', '--src-tls-verify=false', ...(creds ? ['--src-creds', creds] : []), `docker://${ref}`, `dir:${dir}`]);
  const { manifest, blobs } = await readDirImage(dir);
  const digest = sha256(manifest);
  blobs.set(digest, manifest);
  return { digest, mediaType: (JSON.parse(manifest.toString()) as { mediaType: string }).mediaType, blobs };
}

/** Every blob of an image or index built in code (manifests included), by digest: what a byte-identical pull holds. */
export function expectedBlobs(content: RealImage | RealIndex): Map<string, Buffer> {
  const map = new Map<string, Buffer>();
  const images = 'index' in content ? content.images : [content];
  if ('index' in content) map.set(content.digest, content.index);
  for (const img of images) {
    map.set(img.digest, img.manifest);
    for (const b of [img.config, ...img.layers]) map.set(b.digest, b.bytes);
  }
  return map;
}

/** Asserts that a pull holds exactly `want` (by digest, every byte) under the top-level digest `digest`. */
export function assertSameContent(got: PulledLayout, want: { digest: string; blobs: Map<string, Buffer> }, what: string): void {
  assert.equal(got.digest, want.digest, `${what}: the top-level manifest digest`);
  assert.deepEqual([...got.blobs.keys()].sort(), [...want.blobs.keys()].sort(), `${what}: the same manifests and blobs`);
  for (const [digest, bytes] of want.blobs) assert.ok(got.blobs.get(digest)!.equals(bytes), `${what}: ${digest} is byte-identical`);
}

/**
 * Waits until the image pulled through `server` is stored: the server logged that it cached it
 * (after the tag's check time is recorded), and DescribeImages lists it under `tag`. Resolves
 * the time the log line was seen (the tag was compared with the upstream no later than that).
 */
export async function waitForCached(server: TestServer, ecr: ECRClient, repositoryName: string, digest: string, tag?: string): Promise<number> {
  const seenAt = await waitFor(
    async () =>
      server.logs.some((l) => l['msg'] === 'image cached from upstream' && l['repository'] === repositoryName && l['digest'] === digest && (tag === undefined || l['tag'] === tag)) && Date.now(),
    { what: `${repositoryName}@${digest} to be cached (${server.baseUrl})`, timeoutMs: 60_000 },
  );
  const out = await ecr.send(new DescribeImagesCommand({ repositoryName, imageIds: [{ imageDigest: digest }] }));
  const detail = out.imageDetails?.[0];
  assert.equal(detail?.imageDigest, digest, `${repositoryName}@${digest} is listed by DescribeImages`);
  if (tag !== undefined) assert.ok(detail.imageTags?.includes(tag), `${repositoryName}@${digest} carries ${tag}: ${JSON.stringify(detail.imageTags)}`);
  return seenAt;
}

/** The digest a manifest GET of `name:reference` answers with (and its status), as `authorization`. */
export async function manifestDigest(baseUrl: string, name: string, reference: string, authorization = basicAuthorization(ADMIN.accessKeyId, ADMIN.secretAccessKey)): Promise<string> {
  const res = await fetch(`${baseUrl}/v2/${name}/manifests/${reference}`, {
    headers: { authorization, accept: [MT.ociManifest, MT.ociIndex, MT.dockerManifest, MT.dockerList].join(', ') },
  });
  const body = Buffer.from(await res.arrayBuffer());
  assert.equal(res.status, 200, `GET ${name}:${reference}: ${body.toString()}`);
  return res.headers.get('docker-content-digest')!;
}

/** An event of the log as GET /v2/_events answers it. */
export interface LoggedEvent {
  seq: number;
  event: { 'detail-type': string; account: string; region: string; resources: string[]; detail: Record<string, any> };
}

/** The repository's events (GET /v2/_events, every page), oldest first. */
export async function repositoryEvents(server: { baseUrl: string }, repository: string): Promise<LoggedEvent[]> {
  const events: LoggedEvent[] = [];
  let query = new URLSearchParams({ n: '1000', repository }).toString();
  for (;;) {
    const res = await fetch(`${server.baseUrl}/v2/_events?${query}`, { headers: { authorization: basicAuthorization(ADMIN.accessKeyId, ADMIN.secretAccessKey) } });
    assert.equal(res.status, 200, `GET /v2/_events: ${res.status}`);
    events.push(...((await res.json()) as { events: LoggedEvent[] }).events);
    const next = /<\/v2\/_events\?([^>]+)>; rel="next"/.exec(res.headers.get('link') ?? '');
    if (!next) return events;
    query = next[1]!;
  }
}

/** An IAM user of the server with one inline policy allowing `actions` on every resource, and an access key of it. */
export async function userAllowed(server: { baseUrl: string }, userName: string, actions: string[], resource = '*'): Promise<AwsCredentials> {
  const iam = iamClient(server, ADMIN);
  try {
    await iam.send(new CreateUserCommand({ UserName: userName }));
    const policy = { Version: '2012-10-17', Statement: [{ Effect: 'Allow', Action: actions, Resource: resource }] };
    await iam.send(new PutUserPolicyCommand({ UserName: userName, PolicyName: 'allowed', PolicyDocument: JSON.stringify(policy) }));
    const key = (await iam.send(new CreateAccessKeyCommand({ UserName: userName }))).AccessKey!;
    return { accessKeyId: key.AccessKeyId!, secretAccessKey: key.SecretAccessKey! };
  } finally {
    iam.destroy();
  }
}
