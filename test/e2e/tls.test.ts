import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import https from 'node:https';
import net from 'node:net';
import { test, type TestContext } from 'node:test';
import tls from 'node:tls';
import { startServer } from '../support/server.ts';
import { repoName } from '../support/oci.ts';
import { buildRealImage, readOciLayout, writeOciLayout } from '../support/layout.ts';
import { makeTestPki, type TestPki } from '../support/tls.ts';
import { requireTools, run, toolSandbox } from '../support/tools.ts';
import { adminAuthorization, authedFetch } from '../support/auth.ts';

/** Berth serving HTTPS (--tls-cert/--tls-key) to clients that verify it, and TLS edge cases. */

async function withPki(t: TestContext): Promise<TestPki> {
  const pki = await makeTestPki();
  t.after(() => pki.close());
  return pki;
}

/** GET as the test administrator, verifying the server against `ca`. */
function httpsGet(url: string, ca: Buffer): Promise<{ status: number; body: string; protocol: string }> {
  return new Promise((resolve, reject) => {
    const req = https.get(url, { ca, agent: false, headers: { authorization: adminAuthorization } }, (res) => {
      let body = '';
      res.on('data', (d: Buffer) => (body += d.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body, protocol: (res.socket as tls.TLSSocket).getProtocol() ?? '' }));
      res.on('error', reject);
    });
    req.on('error', reject);
  });
}

/**
 * Sends `bytes` on a fresh connection and resolves with whatever comes back once the server
 * closes it; rejects if the server keeps it open past the deadline.
 */
function sendAndAwaitClose(port: number, bytes: Buffer | string, timeoutMs = 10_000): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1');
    const chunks: Buffer[] = [];
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`the server kept the connection open for ${timeoutMs} ms`));
    }, timeoutMs);
    socket.on('connect', () => socket.write(bytes));
    socket.on('data', (d: Buffer) => chunks.push(d));
    socket.on('error', () => undefined);
    socket.on('close', () => {
      clearTimeout(timer);
      resolve(Buffer.concat(chunks));
    });
  });
}

test('skopeo pushes and pulls over HTTPS with certificate verification on', async (t) => {
  if (!requireTools(t, 'skopeo', 'openssl')) return;
  const pki = await withPki(t);
  const server = await startServer({ args: pki.serverArgs });
  t.after(() => server.close());
  assert.match(server.baseUrl, /^https:\/\/127\.0\.0\.1:\d+$/);
  const tools = await toolSandbox();
  t.after(() => tools.close());
  const host = `127.0.0.1:${server.port}`;
  await tools.login(host);
  const repository = repoName('tls');
  const image = buildRealImage();
  const src = await tools.mkdir('src');
  await writeOciLayout(src, [{ tag: 'v1', content: image }]);

  // Without the CA the same push is refused: verification really is on.
  const untrusted = await tools.skopeo(['copy', '--quiet', '--dest-tls-verify=true', `oci:${src}:v1`, `docker://${host}/${repository}:v1`], { allowFailure: true });
  assert.notEqual(untrusted.code, 0);
  assert.match(untrusted.stderr, /x509: certificate signed by unknown authority/);

  await tools.skopeo(['copy', '--quiet', '--preserve-digests', '--dest-tls-verify=true', '--dest-cert-dir', pki.certDir, `oci:${src}:v1`, `docker://${host}/${repository}:v1`]);
  const out = await tools.mkdir('out');
  await tools.skopeo(['copy', '--quiet', '--src-tls-verify=true', '--src-cert-dir', pki.certDir, `docker://${host}/${repository}:v1`, `oci:${out}:v1`]);
  const layout = await readOciLayout(out, 'v1');
  assert.equal(layout.descriptor.digest, image.digest);
  for (const b of [image.config, ...image.layers]) assert.ok(layout.blobs.get(b.digest)?.equals(b.bytes), `${b.digest} is byte-identical`);

  const ca = await readFile(pki.caFile);
  const res = await httpsGet(`${server.baseUrl}/v2/${repository}/tags/list`, ca);
  assert.equal(res.status, 200);
  assert.deepEqual(JSON.parse(res.body), { name: repository, tags: ['v1'] });
});

test('podman pushes and pulls over HTTPS with --cert-dir', async (t) => {
  if (!requireTools(t, 'podman', 'openssl')) return;
  const pki = await withPki(t);
  const server = await startServer({ args: pki.serverArgs });
  t.after(() => server.close());
  const tools = await toolSandbox();
  t.after(() => tools.close());
  await tools.login(`127.0.0.1:${server.port}`);
  const ref = `127.0.0.1:${server.port}/${repoName('tls')}:v1`;
  const image = buildRealImage();
  const src = await tools.mkdir('src');
  await writeOciLayout(src, [{ tag: 'v1', content: image }]);
  await tools.podman(['pull', '--quiet', `oci:${src}:v1`]);
  const id = image.config.digest.slice('sha256:'.length);
  await tools.podman(['tag', id, ref]);
  await tools.podman(['push', '--quiet', '--tls-verify=true', '--cert-dir', pki.certDir, ref]);
  await tools.podman(['rmi', '--all', '--force']);
  const pulled = await tools.podman(['pull', '--quiet', '--tls-verify=true', '--cert-dir', pki.certDir, ref]);
  assert.equal(pulled.stdout.trim(), id);
});

test('TLS 1.2 and 1.3 are served with modern ciphers; TLS 1.1 is refused', async (t) => {
  if (!requireTools(t, 'openssl')) return;
  const pki = await withPki(t);
  const server = await startServer({ args: pki.serverArgs });
  t.after(() => server.close());
  const sClient = (args: string[]) =>
    run('openssl', ['s_client', '-connect', `127.0.0.1:${server.port}`, '-servername', 'localhost', '-CAfile', pki.caFile, '-verify_return_error', '-brief', ...args], {
      allowFailure: true,
      input: '',
      timeoutMs: 20_000,
    });

  for (const [flag, version] of [['-tls1_2', 'TLSv1.2'], ['-tls1_3', 'TLSv1.3']] as const) {
    const ok = await sClient([flag]);
    assert.equal(ok.code, 0, `${version}: ${ok.stderr}`);
    assert.match(ok.stderr, new RegExp(`Protocol version: ${version.replace('.', '\\.')}`));
    assert.match(ok.stderr, /Verification: OK/);
  }
  // A CBC/SHA-1 suite an ECDSA certificate could serve (stock OpenSSL servers accept it).
  const weak = await sClient(['-tls1_2', '-cipher', 'ECDHE-ECDSA-AES128-SHA']);
  assert.notEqual(weak.code, 0, 'a TLS 1.2 cipher without AEAD is refused');
  assert.match(weak.stderr, /alert handshake failure/);

  // SECLEVEL=0 lets this OpenSSL offer TLS 1.1 at all, so the refusal seen is the server's.
  const old = await sClient(['-tls1_1', '-cipher', 'DEFAULT@SECLEVEL=0']);
  assert.notEqual(old.code, 0);
  assert.match(old.stderr, /alert protocol version/);

  const ca = await readFile(pki.caFile);
  const res = await httpsGet(`${server.baseUrl}/v2/`, ca);
  assert.equal(res.status, 200);
  assert.match(res.protocol, /^TLSv1\.[23]$/);
});

test('plain HTTP sent to the TLS port is closed at once and harms nothing', async (t) => {
  if (!requireTools(t, 'openssl')) return;
  const pki = await withPki(t);
  const server = await startServer({ args: pki.serverArgs });
  t.after(() => server.close());
  const answer = await sendAndAwaitClose(server.port, `GET /v2/ HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: ${adminAuthorization}\r\n\r\n`);
  assert.doesNotMatch(answer.toString('latin1'), /^HTTP\/1\.1 200/);
  await assert.rejects(authedFetch(`http://127.0.0.1:${server.port}/v2/`));

  const ca = await readFile(pki.caFile);
  const res = await httpsGet(`${server.baseUrl}/v2/`, ca);
  assert.equal(res.status, 200);
  assert.ok(server.process.exitCode === null && server.process.signalCode === null, 'server still running');
});

test('a TLS ClientHello sent to the plain-HTTP port is closed at once and harms nothing', async (t) => {
  const server = await startServer();
  t.after(() => server.close());
  const hello = await captureClientHello();
  assert.equal(hello[0], 0x16, 'a TLS handshake record');

  // As skopeo and podman do with --tls-verify=false: try HTTPS first, then fall back to HTTP.
  const answers = await Promise.all(Array.from({ length: 10 }, () => sendAndAwaitClose(server.port, hello)));
  for (const answer of answers) assert.match(answer.toString('latin1'), /^HTTP\/1\.1 400 /);

  const res = await authedFetch(`${server.baseUrl}/v2/`);
  assert.equal(res.status, 200);
  const health = await fetch(`${server.baseUrl}/healthz`);
  assert.equal(health.status, 200);
  assert.ok(!server.logs.some((l) => l['level'] === 'error' || l['level'] === 'fatal'), 'nothing was logged as an error');
});

/** The first flight a real TLS client sends, captured by a listener that then hangs up. */
async function captureClientHello(): Promise<Buffer> {
  const listener = net.createServer();
  const captured = new Promise<Buffer>((resolve) => {
    listener.once('connection', (socket) => {
      socket.once('data', (d: Buffer) => {
        resolve(d);
        socket.destroy();
      });
    });
  });
  await new Promise<void>((resolve) => listener.listen(0, '127.0.0.1', resolve));
  const { port } = listener.address() as net.AddressInfo;
  const client = tls.connect({ host: '127.0.0.1', port, servername: 'localhost', rejectUnauthorized: false });
  client.on('error', () => undefined);
  try {
    return await captured;
  } finally {
    client.destroy();
    listener.close();
  }
}
