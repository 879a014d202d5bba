import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import http from 'node:http';
import { tmpdir } from 'node:os';
import { connect, createServer, type AddressInfo, type Socket } from 'node:net';
import path from 'node:path';
import { Readable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, test } from 'node:test';
import { AttachRolePolicyCommand, CreateRoleCommand } from '@aws-sdk/client-iam';
import { ADMIN, adminAuthorization, basicAuthorization } from '../../test/support/auth.ts';
import { iamClient } from '../../test/support/aws.ts';
import { startDistribution, type TestDistribution } from '../../test/support/distribution.ts';
import { MT, repoName } from '../../test/support/oci.ts';
import { berth, startServer, type TestServer } from '../../test/support/server.ts';
import { makeTestPki, type TestPki } from '../../test/support/tls.ts';
import { OciClient, OciError, type OciClientOptions, type OciCredentials } from './client.ts';

/**
 * The client replication pushes with and the pull-through cache pulls with, against real
 * registries: CNCF Distribution with htpasswd (and with TLS), and Berth with ECR credentials, its
 * Basic and Bearer challenges, an account label in the Host, a role to assume, and TLS with a
 * private CA. What no real registry here does on demand (Docker Hub's anonymous tokens, a
 * redirect to storage, 429, a stall, content that lies about its digest) is played by small
 * node:http servers in the test.
 */

const KiB = 1024;
const MiB = 1024 * KiB;
const CHUNK = 256 * KiB;

let dir: string;
before(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'berth-oci-client-'));
});
after(() => rm(dir, { recursive: true, force: true }));

interface BlobFile {
  file: string;
  digest: string;
  size: number;
}

/** A file of random bytes and its digest. */
async function blobFile(size: number): Promise<BlobFile> {
  const bytes = randomBytes(size);
  const file = path.join(dir, `blob-${randomBytes(4).toString('hex')}`);
  await writeFile(file, bytes);
  return { file, digest: sha256(bytes), size };
}

function sha256(bytes: Uint8Array): string {
  return `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
}

/**
 * `open(offset)` over a file, recording every offset it is opened at. With `failFirstAfter`, the
 * first stream fails (as a disk or a storage connection would) after that many bytes.
 */
function opener(blob: BlobFile, options: { failFirstAfter?: number } = {}) {
  const offsets: number[] = [];
  const open = async (offset: number): Promise<Readable> => {
    offsets.push(offset);
    const stream = createReadStream(blob.file, { start: offset, highWaterMark: 64 * KiB });
    const limit = options.failFirstAfter;
    if (limit === undefined || offsets.length > 1) return stream;
    return Readable.from(
      (async function* () {
        let passed = 0;
        for await (const chunk of stream as AsyncIterable<Buffer>) {
          if (passed + chunk.length >= limit) {
            yield chunk.subarray(0, limit - passed);
            stream.destroy();
            throw new Error('the source disk went away');
          }
          passed += chunk.length;
          yield chunk;
        }
      })(),
    );
  };
  return { open, offsets };
}

/** The sha256 of the blob as the registry serves it. */
async function digestAtRegistry(baseUrl: string, repository: string, digest: string, authorization: string): Promise<string> {
  const res = await fetch(`${baseUrl}/v2/${repository}/blobs/${digest}`, { headers: { authorization } });
  assert.equal(res.status, 200, `GET blob ${digest}`);
  return sha256(Buffer.from(await res.arrayBuffer()));
}

/** A small OCI image manifest over a config and layers already pushed. */
function manifestOver(config: { digest: string; size: number }, layers: { digest: string; size: number }[]): Buffer {
  return Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: MT.ociManifest,
      config: { mediaType: MT.ociConfig, digest: config.digest, size: config.size },
      layers: layers.map((l) => ({ mediaType: MT.ociLayer, digest: l.digest, size: l.size })),
    }),
  );
}

/**
 * A TCP relay on 127.0.0.1 to `port` that cuts the connection carrying the client's byte number
 * `cutAt` (counted over every connection), once: a network that drops mid-request.
 */
async function droppingRelay(port: number, cutAt: number): Promise<{ url: string; cuts: () => number; close(): Promise<void> }> {
  let passed = 0;
  let cuts = 0;
  const sockets = new Set<Socket>();
  const relay = createServer((client) => {
    const upstream = connect({ host: '127.0.0.1', port });
    for (const s of [client, upstream]) {
      sockets.add(s);
      s.on('close', () => sockets.delete(s));
      s.on('error', () => undefined);
    }
    client.on('data', (chunk: Buffer) => {
      passed += chunk.length;
      if (cuts === 0 && passed >= cutAt) {
        cuts++;
        client.destroy();
        upstream.destroy();
        return;
      }
      if (!upstream.write(chunk)) client.pause();
    });
    upstream.on('drain', () => client.resume());
    upstream.pipe(client);
    client.on('close', () => upstream.destroy());
    upstream.on('close', () => client.destroy());
  });
  await new Promise<void>((resolve) => relay.listen(0, '127.0.0.1', resolve));
  const { port: relayPort } = relay.address() as { port: number };
  return {
    url: `http://127.0.0.1:${relayPort}`,
    cuts: () => cuts,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        relay.close(() => resolve());
      }),
  };
}

async function rejectsWith(call: Promise<unknown>, check: (e: OciError) => void): Promise<OciError> {
  try {
    await call;
  } catch (err) {
    assert.ok(err instanceof OciError, `an OciError, not ${(err as Error)?.stack ?? String(err)}`);
    check(err);
    return err;
  }
  assert.fail('the call succeeded but should have failed');
}

function clientFor(endpoint: string, credentials: OciCredentials, options: Partial<OciClientOptions> = {}): OciClient {
  return new OciClient({ endpoint, credentials, chunkBytes: CHUNK, timeoutMs: 30_000, ...options });
}

const ecrAdmin: OciCredentials = { kind: 'ecr', accessKeyId: ADMIN.accessKeyId, secretAccessKey: ADMIN.secretAccessKey, region: 'us-east-1' };

interface LocalServer {
  url: string;
  port: number;
  close(): Promise<void>;
}

/** A node:http server on 127.0.0.1 and a free port; close() drops its connections too. */
async function localServer(handler: (req: http.IncomingMessage, res: http.ServerResponse) => void): Promise<LocalServer> {
  const server = http.createServer(handler);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** A reverse proxy to 127.0.0.1:`port` that records each request (the Host goes through as sent, so the realm a registry announces points back at the proxy). */
async function recordingProxy(port: number): Promise<LocalServer & { requests: { method: string; url: URL; authorization: string | undefined }[] }> {
  const requests: { method: string; url: URL; authorization: string | undefined }[] = [];
  const server = await localServer((req, res) => {
    requests.push({ method: req.method!, url: new URL(req.url!, 'http://proxy'), authorization: req.headers.authorization });
    const upstream = http.request({ host: '127.0.0.1', port, method: req.method, path: req.url, headers: req.headers, agent: false }, (answer) => {
      res.writeHead(answer.statusCode!, answer.headers);
      answer.pipe(res);
    });
    upstream.on('error', () => res.destroy());
    req.pipe(upstream);
  });
  return { ...server, requests };
}

function sendJson(res: http.ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const bytes = Buffer.from(JSON.stringify(body));
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': bytes.length, ...headers });
  res.end(bytes);
}

function sendOciError(res: http.ServerResponse, status: number, code: string, headers: Record<string, string> = {}): void {
  sendJson(res, status, { errors: [{ code, message: code.toLowerCase().replace(/_/g, ' ') }] }, headers);
}

/** The whole stream, and its sha256. */
async function drain(stream: Readable): Promise<{ bytes: Buffer; digest: string }> {
  const bytes = Buffer.concat(await stream.toArray());
  return { bytes, digest: sha256(bytes) };
}

/** Polls `check` until it holds, or fails at the deadline. */
async function eventually(check: () => boolean, what: string, deadlineMs = 5000): Promise<void> {
  const deadline = Date.now() + deadlineMs;
  while (!check()) {
    if (Date.now() > deadline) assert.fail(`not within ${deadlineMs} ms: ${what}`);
    await sleep(10);
  }
}

/** Completion lines of the server's requests. */
function requestLines(server: TestServer, match: (line: Record<string, unknown>) => boolean): Record<string, unknown>[] {
  return server.logs.filter((l) => l['msg'] === 'request' && match(l));
}

describe('against CNCF Distribution with htpasswd', () => {
  let registry: TestDistribution;
  let client: OciClient;
  let authorization: string;

  before(async () => {
    registry = await startDistribution({ auth: true });
    client = clientFor(registry.baseUrl, { kind: 'basic', username: registry.username!, password: registry.password! });
    authorization = basicAuthorization(registry.username!, registry.password!);
  });
  after(async () => {
    client?.close();
    await registry?.stop();
  });

  test('pushes a blob in chunks from a file, a config in one PUT, and a manifest by tag', async () => {
    const repository = repoName('dist');
    await client.ping();
    const layer = await blobFile(3 * MiB + 12_345);
    const config = await blobFile(700);
    assert.equal(await client.hasBlob(repository, layer.digest), false);

    const layerSource = opener(layer);
    await client.pushBlob(repository, layer.digest, layer.size, layerSource.open);
    assert.deepEqual(layerSource.offsets, [0], 'one pass over the source');
    const configSource = opener(config);
    await client.pushBlob(repository, config.digest, config.size, configSource.open);

    assert.equal(await client.hasBlob(repository, layer.digest), true);
    assert.equal(await client.hasBlob(repository, layer.digest, undefined, layer.size), true);
    assert.equal(await client.hasBlob(repository, layer.digest, undefined, layer.size + 1), false, 'a size that differs');
    assert.equal(await digestAtRegistry(registry.baseUrl, repository, layer.digest, authorization), layer.digest);
    assert.equal(await digestAtRegistry(registry.baseUrl, repository, config.digest, authorization), config.digest);

    const manifest = manifestOver(config, [layer]);
    assert.equal(await client.headManifest(repository, 'v1'), undefined);
    const digest = await client.putManifest(repository, 'v1', MT.ociManifest, manifest);
    assert.equal(digest, sha256(manifest));
    assert.deepEqual(await client.headManifest(repository, 'v1'), { digest, mediaType: MT.ociManifest, size: manifest.length });
    assert.deepEqual(await client.headManifest(repository, digest), { digest, mediaType: MT.ociManifest, size: manifest.length });
  });

  test('pulls what was pushed: a manifest by tag and by digest, an index, and a blob as a stream', async () => {
    const repository = repoName('dist');
    const layer = await blobFile(3 * MiB + 7);
    const config = await blobFile(300);
    await client.pushBlob(repository, layer.digest, layer.size, opener(layer).open);
    await client.pushBlob(repository, config.digest, config.size, opener(config).open);
    const manifest = manifestOver(config, [layer]);
    const digest = await client.putManifest(repository, 'v1', MT.ociManifest, manifest);
    const index = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: MT.ociIndex, manifests: [{ mediaType: MT.ociManifest, digest, size: manifest.length }] }));
    const indexDigest = await client.putManifest(repository, 'multi', MT.ociIndex, index);

    const puller = clientFor(registry.baseUrl, { kind: 'basic', username: registry.username!, password: registry.password! }, { userAgent: 'berth-pull-through-cache' });
    try {
      assert.deepEqual(await puller.getManifest(repository, 'v1'), { digest, mediaType: MT.ociManifest, bytes: manifest });
      assert.deepEqual(await puller.getManifest(repository, digest), { digest, mediaType: MT.ociManifest, bytes: manifest });
      assert.deepEqual(await puller.getManifest(repository, 'multi'), { digest: indexDigest, mediaType: MT.ociIndex, bytes: index });

      const opened = await puller.openBlob(repository, layer.digest);
      assert.ok(opened);
      assert.equal(opened.size, layer.size);
      const got = await drain(opened.stream);
      assert.equal(got.bytes.length, layer.size);
      assert.equal(got.digest, layer.digest);

      assert.equal(await puller.getManifest(repository, 'v2'), undefined, 'a tag the repository lacks');
      assert.equal(await puller.getManifest(repository, sha256(randomBytes(8))), undefined, 'a digest the repository lacks');
      assert.equal(await puller.getManifest(repoName('dist'), 'v1'), undefined, 'a repository Distribution lacks');
      assert.equal(await puller.openBlob(repository, sha256(randomBytes(8))), undefined, 'a blob the repository lacks');
    } finally {
      puller.close();
    }
  });

  test('a wrong password is a non-retryable 401 UNAUTHORIZED that says the credentials were refused', async () => {
    const wrong = clientFor(registry.baseUrl, { kind: 'basic', username: registry.username!, password: 'not-the-password' });
    const refused = (e: OciError) => {
      assert.deepEqual([e.status, e.code, e.retryable], [401, 'UNAUTHORIZED', false], e.message);
      assert.match(e.message, /refused the credentials/);
    };
    try {
      const e = await rejectsWith(wrong.ping(), refused);
      assert.doesNotMatch(e.message, /not-the-password/);
      await rejectsWith(wrong.hasBlob(repoName('dist'), sha256(Buffer.from('x'))), refused);
      await rejectsWith(wrong.getManifest(repoName('dist'), 'latest'), refused);
      await rejectsWith(wrong.openBlob(repoName('dist'), sha256(Buffer.from('x'))), refused);
    } finally {
      wrong.close();
    }
  });

  test('no credentials at all is a non-retryable 401 too, that says credentials are needed', async () => {
    const anonymous = clientFor(registry.baseUrl, { kind: 'anonymous' });
    const needed = (e: OciError) => {
      assert.deepEqual([e.status, e.code, e.retryable], [401, 'UNAUTHORIZED', false], e.message);
      assert.match(e.message, /needs credentials/);
    };
    try {
      await rejectsWith(anonymous.ping(), needed);
      await rejectsWith(anonymous.getManifest(repoName('dist'), 'latest'), needed);
    } finally {
      anonymous.close();
    }
  });

  test('bytes that do not match the digest: DIGEST_INVALID, not retryable', async () => {
    const repository = repoName('dist');
    const blob = await blobFile(600 * KiB);
    const claimed = sha256(Buffer.from('something else'));
    await rejectsWith(client.pushBlob(repository, claimed, blob.size, opener(blob).open), (e) => {
      assert.equal(e.retryable, false, e.message);
      assert.equal(e.code, 'DIGEST_INVALID', e.message);
      assert.equal(e.status, 400);
    });
    assert.equal(await client.hasBlob(repository, claimed), false);
  });

  test('a source that fails midway: the push starts over where Distribution allows, and completes', async () => {
    const repository = repoName('dist');
    const blob = await blobFile(2 * MiB + 99);
    const source = opener(blob, { failFirstAfter: MiB + 100 * KiB });
    await client.pushBlob(repository, blob.digest, blob.size, source.open);
    assert.equal(source.offsets.length, 2, `opened at ${source.offsets.join(', ')}`);
    // Distribution 2.8 cancels a session whose signed state no longer matches its bytes (after
    // the partial chunk), so the second attempt is a new session from byte 0.
    assert.equal(source.offsets[1], 0);
    assert.equal(await digestAtRegistry(registry.baseUrl, repository, blob.digest, authorization), blob.digest);
  });

  test('a mount Distribution cannot do is false, and a blob in the repository is found', async () => {
    const repository = repoName('dist');
    const blob = await blobFile(1000);
    assert.equal(await client.mountBlob(repository, blob.digest, undefined), false);
    assert.equal(await client.mountBlob(repository, blob.digest, repoName('dist')), false);
    await client.pushBlob(repository, blob.digest, blob.size, opener(blob).open);
    const other = repoName('dist');
    assert.equal(await client.mountBlob(other, blob.digest, repository), true);
    assert.equal(await client.hasBlob(other, blob.digest), true);
  });
});

describe('against Distribution over TLS with a private CA', () => {
  let pki: TestPki;
  let registry: TestDistribution;

  before(async () => {
    pki = await makeTestPki();
    registry = await startDistribution({ auth: true, tls: { certFile: pki.certFile, keyFile: pki.keyFile } });
  });
  after(async () => {
    await registry?.stop();
    await pki?.close();
  });

  test('the CA given is trusted; without it the certificate is refused, not retried', async () => {
    const credentials: OciCredentials = { kind: 'basic', username: registry.username!, password: registry.password! };
    const trusting = clientFor(registry.baseUrl, credentials, { ca: await readFile(pki.caFile, 'utf8') });
    const untrusting = clientFor(registry.baseUrl, credentials);
    try {
      await trusting.ping();
      const blob = await blobFile(700 * KiB);
      await trusting.pushBlob(repoName('tls'), blob.digest, blob.size, opener(blob).open);
      await rejectsWith(untrusting.ping(), (e) => {
        assert.equal(e.retryable, false, e.message);
        assert.equal(e.status, undefined);
      });
    } finally {
      trusting.close();
      untrusting.close();
    }
  });
});

describe('against Berth with ECR credentials (Basic challenge)', () => {
  let server: TestServer;
  let client: OciClient;

  before(async () => {
    server = await startServer();
    client = clientFor(server.baseUrl, ecrAdmin, { headers: { 'x-berth-replication': `account=${ADMIN.accountId}; region=eu-west-1` } });
  });
  after(async () => {
    client?.close();
    await server?.close();
  });

  test('pushes an image, mounts from another repository and without `from`, and reuses one ECR token', async () => {
    const repository = repoName('berth');
    await client.ping();
    const layer = await blobFile(MiB + 4321);
    const config = await blobFile(512);
    await client.pushBlob(repository, layer.digest, layer.size, opener(layer).open);
    await client.pushBlob(repository, config.digest, config.size, opener(config).open);
    assert.equal(await client.hasBlob(repository, layer.digest, undefined, layer.size), true);
    assert.equal(await digestAtRegistry(server.baseUrl, repository, layer.digest, adminAuthorization), layer.digest);
    const manifest = manifestOver(config, [layer]);
    const digest = await client.putManifest(repository, 'v1', MT.ociManifest, manifest);
    assert.equal(digest, sha256(manifest));
    assert.deepEqual(await client.headManifest(repository, 'v1'), { digest, mediaType: MT.ociManifest, size: manifest.length });

    const mountedFrom = repoName('berth');
    assert.equal(await client.mountBlob(mountedFrom, layer.digest, repository), true);
    assert.equal(await client.hasBlob(mountedFrom, layer.digest), true);
    // Berth looks for the blob in the account's repositories when no `from` is given.
    const mountedAnywhere = repoName('berth');
    assert.equal(await client.mountBlob(mountedAnywhere, config.digest, undefined), true);
    assert.equal(await client.hasBlob(mountedAnywhere, config.digest), true);
    // A blob no repository holds: not mounted, and the session opened instead is cancelled.
    assert.equal(await client.mountBlob(mountedAnywhere, sha256(randomBytes(8)), undefined), false);

    const tokenCalls = requestLines(server, (l) => l['operation'] === 'ecr:GetAuthorizationToken');
    assert.equal(tokenCalls.length, 1, 'the ECR token is got once and reused');
    const pushes = requestLines(server, (l) => l['plane'] === 'oci' && l['method'] === 'PATCH');
    assert.ok(pushes.length >= 4, `the layer went in chunks: ${pushes.length} PATCH requests`);
  });

  test('pulls with the ECR token; a wrong password for the Basic challenge is 401 UNAUTHORIZED', async () => {
    const repository = repoName('berth');
    const layer = await blobFile(200 * KiB);
    await client.pushBlob(repository, layer.digest, layer.size, opener(layer).open);
    const manifest = manifestOver(layer, [layer]);
    const digest = await client.putManifest(repository, 'v1', MT.ociManifest, manifest);
    assert.deepEqual(await client.getManifest(repository, 'v1'), { digest, mediaType: MT.ociManifest, bytes: manifest });
    const opened = await client.openBlob(repository, layer.digest);
    assert.equal(opened?.size, layer.size);
    assert.equal((await drain(opened!.stream)).digest, layer.digest);
    assert.equal(await client.getManifest(repository, 'v2'), undefined);
    assert.equal(await client.openBlob(repository, sha256(randomBytes(8))), undefined);

    const wrong = clientFor(server.baseUrl, { kind: 'basic', username: ADMIN.accessKeyId, password: 'not-the-secret' });
    try {
      await rejectsWith(wrong.ping(), (e) => {
        assert.deepEqual([e.status, e.code, e.retryable], [401, 'UNAUTHORIZED', false], e.message);
        assert.match(e.message, /refused the credentials/);
      });
    } finally {
      wrong.close();
    }
  });

  test('a source that fails midway resumes from the offset Berth holds', async () => {
    const repository = repoName('berth');
    const blob = await blobFile(2 * MiB + 777);
    const source = opener(blob, { failFirstAfter: MiB + 100 * KiB });
    await client.pushBlob(repository, blob.digest, blob.size, source.open);
    assert.equal(source.offsets.length, 2, `opened at ${source.offsets.join(', ')}`);
    // Four whole chunks were accepted before the fifth failed; Berth drops a partial chunk.
    assert.equal(source.offsets[1], MiB);
    assert.equal(await digestAtRegistry(server.baseUrl, repository, blob.digest, adminAuthorization), blob.digest);
    const statusAsked = requestLines(server, (l) => l['plane'] === 'oci' && l['method'] === 'GET' && String(l['path']).includes('/blobs/uploads/') && l['status'] === 204);
    assert.ok(statusAsked.length >= 1, 'the session status was asked');
  });

  test('a connection that drops mid-chunk: the push resumes from the offset Berth holds', async () => {
    const relay = await droppingRelay(server.port, MiB + 150 * KiB);
    const viaRelay = clientFor(relay.url, ecrAdmin);
    try {
      const repository = repoName('berth');
      const blob = await blobFile(2 * MiB + 5);
      const source = opener(blob);
      await viaRelay.pushBlob(repository, blob.digest, blob.size, source.open);
      assert.equal(relay.cuts(), 1, 'the relay cut a connection');
      assert.equal(source.offsets.length, 2, `opened at ${source.offsets.join(', ')}`);
      assert.ok(source.offsets[1]! > 0 && source.offsets[1]! % CHUNK === 0, `resumed at a chunk Berth had: ${source.offsets[1]}`);
      assert.equal(await digestAtRegistry(server.baseUrl, repository, blob.digest, adminAuthorization), blob.digest);
    } finally {
      viaRelay.close();
      await relay.close();
    }
  });

  test('an aborted push rejects with the signal\'s reason', async () => {
    const blob = await blobFile(MiB);
    const controller = new AbortController();
    const reason = new Error('replication stopped');
    const open = async (offset: number) => {
      controller.abort(reason);
      return createReadStream(blob.file, { start: offset });
    };
    await assert.rejects(client.pushBlob(repoName('berth'), blob.digest, blob.size, open, controller.signal), (e) => e === reason);
  });

  test('bytes that do not match the digest: DIGEST_INVALID, not retryable', async () => {
    const blob = await blobFile(300 * KiB);
    await rejectsWith(client.pushBlob(repoName('berth'), sha256(Buffer.from('other bytes')), blob.size, opener(blob).open), (e) => {
      assert.deepEqual([e.code, e.retryable], ['DIGEST_INVALID', false], e.message);
    });
  });

  test('a role to assume: AssumeRole, then GetAuthorizationToken with the session', async () => {
    const iam = iamClient(server, ADMIN);
    const trust = { Version: '2012-10-17', Statement: [{ Effect: 'Allow', Principal: { AWS: `arn:aws:iam::${ADMIN.accountId}:user/admin` }, Action: 'sts:AssumeRole' }] };
    const role = (await iam.send(new CreateRoleCommand({ RoleName: 'replicator', AssumeRolePolicyDocument: JSON.stringify(trust) }))).Role!;
    await iam.send(new AttachRolePolicyCommand({ RoleName: 'replicator', PolicyArn: 'arn:aws:iam::aws:policy/AmazonEC2ContainerRegistryFullAccess' }));
    iam.destroy();
    const asRole = clientFor(server.baseUrl, { ...ecrAdmin, roleArn: role.Arn!, roleSessionName: 'replication-test' });
    try {
      const before = requestLines(server, (l) => l['operation'] === 'sts:AssumeRole').length;
      const blob = await blobFile(10 * KiB);
      const repository = repoName('role');
      await asRole.pushBlob(repository, blob.digest, blob.size, opener(blob).open);
      assert.equal(await asRole.hasBlob(repository, blob.digest), true);
      assert.equal(requestLines(server, (l) => l['operation'] === 'sts:AssumeRole').length, before + 1);
    } finally {
      asRole.close();
    }
  });

  test('a wrong secret key fails at GetAuthorizationToken: not retryable, with the AWS error type', async () => {
    const wrong = clientFor(server.baseUrl, { ...ecrAdmin, secretAccessKey: 'not-the-secret-key' });
    try {
      const e = await rejectsWith(wrong.ping(), (e) => {
        assert.equal(e.retryable, false, e.message);
        assert.ok(e.status !== undefined && e.status >= 400 && e.status < 500, e.message);
        assert.ok(e.code, 'the AWS error type');
      });
      assert.doesNotMatch(e.message, /not-the-secret-key/);
    } finally {
      wrong.close();
    }
  });
});

describe('against Berth with the Bearer challenge (BERTH_AUTH_CHALLENGE=bearer)', () => {
  let server: TestServer;

  before(async () => {
    server = await startServer({ env: { BERTH_AUTH_CHALLENGE: 'bearer' } });
  });
  after(() => server?.close());

  test('an access key as Basic credentials at the token endpoint; tokens cached per scope', async () => {
    const client = clientFor(server.baseUrl, { kind: 'basic', username: ADMIN.accessKeyId, password: ADMIN.secretAccessKey });
    try {
      const repository = repoName('bearer');
      await client.ping();
      const layer = await blobFile(700 * KiB);
      const config = await blobFile(300);
      await client.pushBlob(repository, layer.digest, layer.size, opener(layer).open);
      await client.pushBlob(repository, config.digest, config.size, opener(config).open);
      const manifest = manifestOver(config, [layer]);
      const digest = await client.putManifest(repository, 'latest', MT.ociManifest, manifest);
      assert.deepEqual(await client.headManifest(repository, 'latest'), { digest, mediaType: MT.ociManifest, size: manifest.length });
      // A pull,push token covers the later pulls of the same repository.
      assert.equal(await client.hasBlob(repository, layer.digest), true);
      // A mount with `from` asks for both repositories' scopes in one token.
      const other = repoName('bearer');
      assert.equal(await client.mountBlob(other, layer.digest, repository), true);

      const tokens = requestLines(server, (l) => l['path'] === '/token' && l['status'] === 200);
      // /v2/ (no scope), the repository (pull,push), the mount (two scopes).
      assert.equal(tokens.length, 3, `token requests: ${tokens.length}`);
    } finally {
      client.close();
    }
  });

  test('pulls ask for a pull token only, and one token serves several pulls', async () => {
    const pusher = clientFor(server.baseUrl, ecrAdmin);
    const proxy = await recordingProxy(server.port);
    const puller = clientFor(proxy.url, { kind: 'basic', username: ADMIN.accessKeyId, password: ADMIN.secretAccessKey }, { userAgent: 'berth-pull-through-cache' });
    try {
      const repository = repoName('bearer');
      const layer = await blobFile(CHUNK + 3);
      const config = await blobFile(100);
      await pusher.pushBlob(repository, layer.digest, layer.size, opener(layer).open);
      await pusher.pushBlob(repository, config.digest, config.size, opener(config).open);
      const manifest = manifestOver(config, [layer]);
      const digest = await pusher.putManifest(repository, 'v1', MT.ociManifest, manifest);

      assert.deepEqual(await puller.getManifest(repository, 'v1'), { digest, mediaType: MT.ociManifest, bytes: manifest });
      assert.deepEqual(await puller.getManifest(repository, digest), { digest, mediaType: MT.ociManifest, bytes: manifest });
      for (const blob of [layer, config]) {
        const opened = await puller.openBlob(repository, blob.digest);
        assert.equal(opened?.size, blob.size);
        assert.equal((await drain(opened!.stream)).digest, blob.digest);
      }
      assert.equal(await puller.getManifest(repository, 'absent'), undefined);
      assert.equal(await puller.openBlob(repository, sha256(randomBytes(8))), undefined);

      const tokenRequests = proxy.requests.filter((r) => r.url.pathname === '/token');
      assert.equal(tokenRequests.length, 1, `token requests: ${tokenRequests.map((r) => r.url.search).join(' ')}`);
      assert.deepEqual(tokenRequests[0]!.url.searchParams.getAll('scope'), [`repository:${repository}:pull`]);
      assert.equal(tokenRequests[0]!.url.searchParams.get('service'), 'berth');
      const pulls = proxy.requests.filter((r) => r.url.pathname.startsWith('/v2/'));
      // Only the first went without the token (to learn the challenge).
      assert.equal(pulls.filter((r) => !r.authorization?.startsWith('Bearer ')).length, 1);
      assert.equal(pulls.length, 7);
    } finally {
      pusher.close();
      puller.close();
      await proxy.close();
    }
  });

  test('wrong credentials at the token endpoint are 401 UNAUTHORIZED; none at all say credentials are needed', async () => {
    const wrong = clientFor(server.baseUrl, { kind: 'basic', username: ADMIN.accessKeyId, password: 'not-the-secret' });
    const anonymous = clientFor(server.baseUrl, { kind: 'anonymous' });
    try {
      const e = await rejectsWith(wrong.ping(), (e) => {
        assert.deepEqual([e.status, e.code, e.retryable], [401, 'UNAUTHORIZED', false], e.message);
        assert.match(e.message, /refused the credentials/);
      });
      assert.doesNotMatch(e.message, /not-the-secret/);
      await rejectsWith(wrong.getManifest(repoName('bearer'), 'v1'), (e) => assert.deepEqual([e.status, e.code, e.retryable], [401, 'UNAUTHORIZED', false], e.message));
      // Berth gives no anonymous tokens (Docker Hub does: see the test servers below).
      await rejectsWith(anonymous.getManifest(repoName('bearer'), 'v1'), (e) => {
        assert.deepEqual([e.status, e.code, e.retryable], [401, 'UNAUTHORIZED', false], e.message);
        assert.match(e.message, /needs credentials/);
      });
    } finally {
      wrong.close();
      anonymous.close();
    }
  });

  test('ECR credentials answer the Bearer challenge too', async () => {
    const client = clientFor(server.baseUrl, ecrAdmin);
    try {
      const blob = await blobFile(CHUNK * 2 + 1);
      const repository = repoName('bearer');
      await client.pushBlob(repository, blob.digest, blob.size, opener(blob).open);
      assert.equal(await digestAtRegistry(server.baseUrl, repository, blob.digest, adminAuthorization), blob.digest);
    } finally {
      client.close();
    }
  });

  test('a Host with an account label reaches that account, and the realm under that name is reached at the endpoint', async () => {
    const accountId = '444455556666';
    const created = await berth(server, ['account', 'create', '--account-id', accountId]);
    const credentials: OciCredentials = { kind: 'ecr', accessKeyId: created.accessKeyId, secretAccessKey: created.secretAccessKey, region: 'us-east-1' };
    const inB = clientFor(server.baseUrl, credentials, { hostHeader: `${accountId}.registry.test:${server.port}` });
    const defaultAccount = clientFor(server.baseUrl, ecrAdmin, { hostHeader: `${ADMIN.accountId}.registry.test:${server.port}` });
    const bare = clientFor(server.baseUrl, ecrAdmin);
    try {
      const repository = repoName('account');
      const blob = await blobFile(200);
      const manifest = manifestOver(blob, []);
      await inB.pushBlob(repository, blob.digest, blob.size, opener(blob).open);
      const digest = await inB.putManifest(repository, 'v1', MT.ociManifest, manifest);
      assert.equal((await inB.headManifest(repository, 'v1'))?.digest, digest);
      // The same repository name in the default account, by its label and by the bare host: absent.
      assert.equal(await defaultAccount.headManifest(repository, 'v1'), undefined);
      assert.equal(await bare.headManifest(repository, 'v1'), undefined);
      // The token endpoint was asked under the account's name (the realm Berth announced).
      assert.ok(requestLines(server, (l) => l['path'] === '/token' && l['status'] === 200).length > 0);
    } finally {
      inB.close();
      defaultAccount.close();
      bare.close();
    }
  });
});

describe('against Berth over TLS with a private CA', () => {
  let pki: TestPki;
  let server: TestServer;

  before(async () => {
    pki = await makeTestPki();
    server = await startServer({ args: pki.serverArgs });
  });
  after(async () => {
    await server?.close();
    await pki?.close();
  });

  test('the ECR API and the data plane both trust the CA; the Host label does not break verification', async () => {
    assert.match(server.baseUrl, /^https:/);
    const client = clientFor(server.baseUrl, ecrAdmin, { ca: await readFile(pki.caFile, 'utf8'), hostHeader: `${ADMIN.accountId}.127.0.0.1:${server.port}` });
    try {
      await client.ping();
      const blob = await blobFile(CHUNK + 5);
      const repository = repoName('tls');
      await client.pushBlob(repository, blob.digest, blob.size, opener(blob).open);
      assert.equal(await client.hasBlob(repository, blob.digest, undefined, blob.size), true);
    } finally {
      client.close();
    }
    const untrusting = clientFor(server.baseUrl, ecrAdmin);
    try {
      await rejectsWith(untrusting.ping(), (e) => assert.equal(e.retryable, false, e.message));
    } finally {
      untrusting.close();
    }
  });
});

describe('against test servers playing what real registries do', () => {
  test('Docker Hub\'s flow: an anonymous pull token from the realm, got once and reused', async () => {
    const token = randomBytes(16).toString('hex');
    const manifest = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: MT.dockerManifest, config: { mediaType: MT.dockerConfig, digest: sha256(Buffer.from('{}')), size: 2 }, layers: [] }));
    const digest = sha256(manifest);
    const layer = randomBytes(100 * KiB);
    const tokenRequests: { url: URL; authorization: string | undefined }[] = [];
    const hub: LocalServer = await localServer((req, res) => {
      const url = new URL(req.url!, hub.url);
      if (url.pathname === '/token') {
        tokenRequests.push({ url, authorization: req.headers.authorization });
        // OAuth2's spelling only (Docker Hub sends `token` as well): the client takes either.
        sendJson(res, 200, { access_token: token, expires_in: 300, issued_at: new Date().toISOString() });
        return;
      }
      const name = url.pathname.split('/').slice(2, 4).join('/');
      if (req.headers.authorization !== `Bearer ${token}` || name !== 'library/app') {
        // As Docker Hub: a repository that is private or absent refuses even a good token.
        const error = req.headers.authorization ? ',error="insufficient_scope"' : '';
        sendOciError(res, 401, 'UNAUTHORIZED', { 'www-authenticate': `Bearer realm="${hub.url}/token",service="registry.test",scope="repository:${name}:pull"${error}` });
        return;
      }
      if (url.pathname === '/v2/library/app/manifests/latest' || url.pathname === `/v2/library/app/manifests/${digest}`) {
        res.writeHead(200, { 'content-type': MT.dockerManifest, 'docker-content-digest': digest, 'content-length': manifest.length });
        res.end(manifest);
      } else if (url.pathname === `/v2/library/app/blobs/${sha256(layer)}`) {
        res.writeHead(200, { 'content-length': layer.length });
        res.end(layer);
      } else {
        sendOciError(res, 404, 'MANIFEST_UNKNOWN');
      }
    });
    const client = clientFor(hub.url, { kind: 'anonymous' });
    try {
      assert.deepEqual(await client.getManifest('library/app', 'latest'), { digest, mediaType: MT.dockerManifest, bytes: manifest });
      assert.deepEqual(await client.getManifest('library/app', 'latest'), { digest, mediaType: MT.dockerManifest, bytes: manifest });
      assert.deepEqual(await client.getManifest('library/app', digest), { digest, mediaType: MT.dockerManifest, bytes: manifest });
      const opened = await client.openBlob('library/app', sha256(layer));
      assert.equal((await drain(opened!.stream)).digest, sha256(layer));
      assert.equal(await client.getManifest('library/app', 'missing'), undefined);
      assert.equal(tokenRequests.length, 1, 'one token for every pull');
      assert.equal(tokenRequests[0]!.authorization, undefined, 'asked for anonymously');
      assert.deepEqual(tokenRequests[0]!.url.searchParams.getAll('scope'), ['repository:library/app:pull']);
      assert.equal(tokenRequests[0]!.url.searchParams.get('service'), 'registry.test');

      await rejectsWith(client.getManifest('library/private', 'latest'), (e) => {
        assert.deepEqual([e.status, e.code, e.retryable], [401, 'UNAUTHORIZED', false], e.message);
        assert.match(e.message, /gives anonymous callers no access to this repository/);
      });
    } finally {
      client.close();
      await hub.close();
    }
  });

  test('a blob redirected to storage: followed without the credentials or extra headers, and streamed as it comes', async () => {
    const bytes = randomBytes(512 * KiB);
    const digest = sha256(bytes);
    let release!: () => void;
    const released = new Promise<void>((resolve) => (release = resolve));
    const storageSaw: http.IncomingHttpHeaders[] = [];
    const storage = await localServer((req, res) => {
      storageSaw.push(req.headers);
      res.writeHead(200, { 'content-length': bytes.length, 'content-type': 'application/octet-stream' });
      // Half now, half once the test has the stream in hand: openBlob must not wait for the end.
      res.write(bytes.subarray(0, bytes.length / 2));
      void released.then(() => res.end(bytes.subarray(bytes.length / 2)));
    });
    const registrySaw: http.IncomingHttpHeaders[] = [];
    const registry = await localServer((req, res) => {
      registrySaw.push(req.headers);
      if (req.headers.authorization !== basicAuthorization('puller', 'secret')) {
        sendOciError(res, 401, 'UNAUTHORIZED', { 'www-authenticate': 'Basic realm="test"' });
        return;
      }
      res.writeHead(307, { location: `${storage.url}/blobs/${digest.slice(7)}?X-Amz-Signature=abc` });
      res.end();
    });
    const client = clientFor(registry.url, { kind: 'basic', username: 'puller', password: 'secret' }, { headers: { 'x-berth-cache': 'rule=hub' } });
    try {
      const opened = await client.openBlob('library/app', digest);
      assert.ok(opened);
      assert.equal(opened.size, bytes.length);
      release();
      const got = await drain(opened.stream);
      assert.ok(got.bytes.equals(bytes));
      assert.equal(registrySaw.at(-1)!['authorization'], basicAuthorization('puller', 'secret'));
      assert.equal(registrySaw.at(-1)!['x-berth-cache'], 'rule=hub');
      assert.equal(storageSaw.length, 1);
      assert.equal(storageSaw[0]!['authorization'], undefined, 'no credentials to storage');
      assert.equal(storageSaw[0]!['x-berth-cache'], undefined, 'no extra headers to storage');
      assert.equal(storageSaw[0]!['host'], `127.0.0.1:${storage.port}`);
    } finally {
      release();
      client.close();
      await registry.close();
      await storage.close();
    }
  });

  test('429 is TOOMANYREQUESTS with Retry-After, retryable; 5xx is retryable', async () => {
    let status = 429;
    const registry = await localServer((_req, res) => {
      if (status === 429) {
        res.writeHead(429, { 'retry-after': '7', 'content-type': 'text/plain' });
        res.end('Too Many Requests');
      } else {
        sendOciError(res, status, 'UNAVAILABLE');
      }
    });
    const client = clientFor(registry.url, { kind: 'anonymous' });
    const limited = (e: OciError) => assert.deepEqual([e.status, e.code, e.retryable, e.retryAfterMs], [429, 'TOOMANYREQUESTS', true, 7000], e.message);
    try {
      await rejectsWith(client.getManifest('library/app', 'latest'), limited);
      await rejectsWith(client.openBlob('library/app', sha256(Buffer.from('x'))), limited);
      await rejectsWith(client.ping(), limited);
      status = 503;
      await rejectsWith(client.getManifest('library/app', 'latest'), (e) => assert.deepEqual([e.status, e.retryable], [503, true], e.message));
      await rejectsWith(client.openBlob('library/app', sha256(Buffer.from('x'))), (e) => assert.deepEqual([e.status, e.retryable], [503, true], e.message));
    } finally {
      client.close();
      await registry.close();
    }
  });

  test('a blob body that stalls, is cut, or is partial errors; a reader that holds back does not', async () => {
    const TIMEOUT_MS = 300;
    const stalls = sha256(Buffer.from('stalls'));
    const cut = sha256(Buffer.from('cut'));
    const partial = sha256(Buffer.from('partial'));
    const whole = randomBytes(4 * MiB);
    const registry = await localServer((req, res) => {
      const digest = req.url!.split('/').at(-1);
      if (digest === stalls || digest === cut) {
        res.writeHead(200, { 'content-length': MiB });
        res.write(Buffer.alloc(1000), () => {
          if (digest === cut) res.socket?.destroy();
        });
      } else if (digest === partial) {
        res.writeHead(206, { 'content-range': `bytes 0-9/100`, 'content-length': 10 });
        res.end(Buffer.alloc(10));
      } else if (digest === sha256(whole)) {
        res.writeHead(200, { 'content-length': whole.length });
        res.end(whole);
      } else {
        sendOciError(res, 404, 'BLOB_UNKNOWN');
      }
    });
    const client = clientFor(registry.url, { kind: 'anonymous' }, { timeoutMs: TIMEOUT_MS });
    try {
      const stalled = await client.openBlob('t/app', stalls);
      assert.equal(stalled?.size, MiB);
      const started = Date.now();
      let received = 0;
      const e = await rejectsWith(
        (async () => {
          for await (const chunk of stalled!.stream) received += (chunk as Buffer).length;
        })(),
        (e) => assert.equal(e.retryable, true, e.message),
      );
      assert.match(e.message, /without activity/);
      assert.equal(received, 1000);
      assert.ok(Date.now() - started >= TIMEOUT_MS - 20, `errored after ${Date.now() - started} ms`);

      const wasCut = await client.openBlob('t/app', cut);
      await rejectsWith(drain(wasCut!.stream), (e) => assert.equal(e.retryable, true, e.message));

      const controller = new AbortController();
      const reason = new Error('the client went away');
      const aborted = await client.openBlob('t/app', stalls, controller.signal);
      const reading = drain(aborted!.stream);
      controller.abort(reason);
      await assert.rejects(reading, (e) => e === reason);

      await rejectsWith(client.openBlob('t/app', partial), (e) => assert.deepEqual([e.status, e.retryable], [206, false], e.message));

      // Held back for several timeouts mid-body, with the sender blocked meanwhile: no error.
      const slow = await client.openBlob('t/app', sha256(whole));
      const chunks: Buffer[] = [];
      const iterator = slow!.stream[Symbol.asyncIterator]();
      const first = await iterator.next();
      chunks.push(first.value as Buffer);
      await sleep(TIMEOUT_MS * 3);
      for (let next = await iterator.next(); !next.done; next = await iterator.next()) chunks.push(next.value as Buffer);
      assert.ok(Buffer.concat(chunks).equals(whole));
    } finally {
      client.close();
      await registry.close();
    }
  });

  test('manifests: checked against their digest, their media type from an application/json body, and none over 4 MiB', async () => {
    const manifest = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: MT.dockerManifest, config: { mediaType: MT.dockerConfig, digest: sha256(Buffer.from('{}')), size: 2 }, layers: [] }));
    const bare = Buffer.from(JSON.stringify({ schemaVersion: 2, config: { mediaType: MT.ociConfig, digest: sha256(Buffer.from('{}')), size: 2 }, layers: [] }));
    const other = Buffer.from('{"schemaVersion":2,"layers":[]}');
    const sha512 = `sha512:${createHash('sha512').update(manifest).digest('hex')}`;
    let endless = { written: 0, closed: false };
    const registry = await localServer((req, res) => {
      const reference = req.url!.split('/').at(-1)!;
      if (reference === 'old' || reference === sha512) {
        res.writeHead(200, { 'content-type': 'application/json; charset=utf-8' });
        res.end(manifest);
      } else if (reference === 'bare') {
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(bare);
      } else if (reference === sha256(other)) {
        // Serves other bytes than the digest asked for.
        res.writeHead(200, { 'content-type': MT.ociManifest });
        res.end(manifest);
      } else if (reference === 'liar') {
        res.writeHead(200, { 'content-type': MT.dockerManifest, 'docker-content-digest': sha256(other) });
        res.end(manifest);
      } else if (reference === 'huge') {
        res.writeHead(200, { 'content-type': MT.ociManifest, 'content-length': 5 * MiB });
        res.write(Buffer.alloc(64 * KiB));
      } else if (reference === 'endless') {
        endless = { written: 0, closed: false };
        res.writeHead(200, { 'content-type': MT.ociManifest });
        res.on('close', () => (endless.closed = true));
        const more = () => {
          while (!res.destroyed && res.write(Buffer.alloc(64 * KiB, 0x20))) endless.written += 64 * KiB;
          if (!res.destroyed) res.once('drain', more);
        };
        more();
      } else {
        sendOciError(res, 404, 'MANIFEST_UNKNOWN');
      }
    });
    const client = clientFor(registry.url, { kind: 'anonymous' });
    try {
      assert.deepEqual(await client.getManifest('t/app', 'old'), { digest: sha256(manifest), mediaType: MT.dockerManifest, bytes: manifest });
      assert.deepEqual(await client.getManifest('t/app', sha512), { digest: sha512, mediaType: MT.dockerManifest, bytes: manifest });
      assert.deepEqual(await client.getManifest('t/app', 'bare'), { digest: sha256(bare), mediaType: 'application/json', bytes: bare });

      const lied = (e: OciError) => {
        assert.deepEqual([e.code, e.retryable], ['DIGEST_INVALID', false], e.message);
        assert.match(e.message, /does not match/);
      };
      await rejectsWith(client.getManifest('t/app', sha256(other)), lied);
      await rejectsWith(client.getManifest('t/app', 'liar'), lied);

      const tooLarge = (e: OciError) => assert.deepEqual([e.code, e.retryable], ['SIZE_INVALID', false], e.message);
      await rejectsWith(client.getManifest('t/app', 'huge'), tooLarge);
      await rejectsWith(client.getManifest('t/app', 'endless'), tooLarge);
      await eventually(() => endless.closed, 'the endless answer is cut off');
      assert.ok(endless.written < 64 * MiB, `${endless.written} bytes were sent`);

      await rejectsWith(client.getManifest('t/app', 'sha384:abc'), (e) => assert.equal(e.retryable, false));
    } finally {
      client.close();
      await registry.close();
    }
  });
});

test('names, digests and options are checked before anything is sent', async () => {
  const client = clientFor('http://127.0.0.1:9', { kind: 'anonymous' });
  try {
    await rejectsWith(client.hasBlob('Not/Valid', sha256(Buffer.from('x'))), (e) => assert.equal(e.retryable, false));
    await rejectsWith(client.hasBlob('ok/name', 'sha256'), (e) => assert.equal(e.retryable, false));
    await rejectsWith(client.headManifest('ok/name', '../v2'), (e) => assert.equal(e.retryable, false));
    // Nothing listens on port 9 (discard): a network failure, worth retrying.
    await rejectsWith(client.ping(), (e) => assert.deepEqual([e.status, e.retryable], [undefined, true]));
  } finally {
    client.close();
  }
  assert.throws(() => new OciClient({ endpoint: 'http://user:secret@127.0.0.1:5000', credentials: { kind: 'anonymous' } }), (e: Error) => e instanceof OciError && !/secret/.test(e.message));
  assert.throws(() => new OciClient({ endpoint: 'ftp://127.0.0.1', credentials: { kind: 'anonymous' } }), OciError);
  assert.throws(() => new OciClient({ endpoint: 'http://127.0.0.1', credentials: { kind: 'anonymous' }, chunkBytes: 0 }), OciError);
});
