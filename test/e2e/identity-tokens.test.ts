import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { GetAuthorizationTokenCommand, type ECRClient } from '@aws-sdk/client-ecr';
import { AttachRolePolicyCommand, CreateAccessKeyCommand, CreateRoleCommand, CreateUserCommand, GetUserCommand, PutUserPolicyCommand, type IAMClient } from '@aws-sdk/client-iam';
import { AssumeRoleCommand, GetCallerIdentityCommand, STSClient } from '@aws-sdk/client-sts';
import { ADMIN, basicAuthorization } from '../support/auth.ts';
import { type AwsCredentials, ecrClient, ecrRequest, iamClient, queryErrorCode, queryRequest, REGION, sdkError, signedFetch, stsClient } from '../support/aws.ts';
import { checkErrorBody } from '../support/http.ts';
import { buildRealImage, readOciLayout, writeOciLayout } from '../support/layout.ts';
import { MT, repoName, type Blob } from '../support/oci.ts';
import { startServer, type TestServer } from '../support/server.ts';
import { requireTools, toolSandbox } from '../support/tools.ts';

/**
 * Authentication edge cases on both planes, with plain HTTP and the AWS SDK: the 401
 * challenges (Basic and Bearer), the token endpoint, bad tokens and credentials, SigV4
 * failures as each AWS protocol spells them, GetAuthorizationToken, and a policy condition on
 * the source address.
 *
 * Not tested here: an expired authorization token. Tokens live at least 60 s
 * (auth.tokenTtlSeconds' minimum) and role sessions at least 900 s, and these tests do not
 * wait that long; an expired *signature* is covered below, and a role session's token is
 * checked to carry the session's own expiry.
 */

const keyBasic = basicAuthorization(ADMIN.accessKeyId, ADMIN.secretAccessKey);



async function expectUnauthorized(res: Response, what: string): Promise<void> {
  const text = await res.text();
  assert.equal(res.status, 401, `${what}: expected 401, got ${res.status}: ${text}`);
  checkErrorBody(res.headers.get('content-type'), text, 'UNAUTHORIZED');
}

/** Monolithic blob uploads then the manifest, every request with `authorization`. */
async function pushWith(baseUrl: string, authorization: string, repository: string, image: { config: Blob; layers: Blob[]; manifest: Buffer; mediaType: string }, reference: string): Promise<void> {
  for (const b of [image.config, ...image.layers]) {
    const start = await fetch(`${baseUrl}/v2/${repository}/blobs/uploads/`, { method: 'POST', headers: { authorization } });
    assert.equal(start.status, 202, `POST upload: ${await start.text()}`);
    const location = new URL(start.headers.get('location')!, baseUrl);
    location.searchParams.set('digest', b.digest);
    const put = await fetch(location, { method: 'PUT', body: b.bytes, headers: { authorization, 'content-type': 'application/octet-stream' } });
    assert.equal(put.status, 201, `PUT upload: ${await put.text()}`);
  }
  const res = await fetch(`${baseUrl}/v2/${repository}/manifests/${reference}`, { method: 'PUT', body: image.manifest, headers: { authorization, 'content-type': image.mediaType } });
  assert.equal(res.status, 201, `PUT manifest: ${await res.text()}`);
}

/** A token with one character changed (in the middle, away from base64 padding bits). */
function flip(token: string): string {
  for (let i = Math.floor(token.length / 2); i < token.length; i++) {
    const c = token[i]!;
    if (/[A-Za-z0-9]/.test(c)) return token.slice(0, i) + (c === 'A' ? 'B' : 'A') + token.slice(i + 1);
  }
  throw new Error(`no character to flip in ${token}`);
}

describe('with the Basic challenge (the default)', () => {
  let server: TestServer;
  let ecr: ECRClient;
  let iam: IAMClient;
  let sts: STSClient;
  const repository = repoName('tokens');
  const image = buildRealImage();

  before(async () => {
    server = await startServer();
    ecr = ecrClient(server, ADMIN);
    iam = iamClient(server, ADMIN);
    sts = stsClient(server, ADMIN);
    await pushWith(server.baseUrl, keyBasic, repository, image, 'v1');
  });
  after(() => server?.close());

  const get = (path: string, init: RequestInit = {}) => fetch(new URL(path, server.baseUrl), init);

  test('anonymous requests answer 401 UNAUTHORIZED with the Basic challenge', async () => {
    const challenge = `Basic realm="http://127.0.0.1:${server.port}/",service="berth"`;
    for (const path of ['/v2/', '/v2/_catalog', `/v2/${repository}/manifests/v1`, `/v2/${repository}/tags/list`, `/v2/${repository}/blobs/${image.config.digest}`]) {
      const res = await get(path);
      assert.equal(res.headers.get('www-authenticate'), challenge, path);
      await expectUnauthorized(res, path);
    }
    const head = await get(`/v2/${repository}/manifests/v1`, { method: 'HEAD' });
    assert.equal(head.status, 401);
    assert.equal(head.headers.get('www-authenticate'), challenge);
    const push = await get(`/v2/${repository}/blobs/uploads/`, { method: 'POST' });
    assert.equal(push.headers.get('www-authenticate'), challenge);
    await expectUnauthorized(push, 'anonymous upload');
  });

  test('GetAuthorizationToken through the SDK: a 12 h AWS:<token> pair for the endpoint the client used', async () => {
    const before = Date.now();
    const out = await ecr.send(new GetAuthorizationTokenCommand({}));
    const data = out.authorizationData?.[0];
    assert.ok(data?.authorizationToken && data.expiresAt && data.proxyEndpoint, JSON.stringify(out));
    const expectedMs = before + 12 * 3600_000;
    assert.ok(Math.abs(data.expiresAt.getTime() - expectedMs) < 60_000, `expires in 12 h: ${data.expiresAt.toISOString()}`);
    assert.equal(data.proxyEndpoint, server.baseUrl);
    const decoded = Buffer.from(data.authorizationToken, 'base64').toString('utf8');
    assert.match(decoded, /^AWS:.{20,}$/);
    const password = decoded.slice('AWS:'.length);

    const base = await get('/v2/', { headers: { authorization: basicAuthorization('AWS', password) } });
    assert.equal(base.status, 200, await base.text());
    const manifest = await get(`/v2/${repository}/manifests/v1`, { headers: { authorization: `Basic ${data.authorizationToken}`, accept: MT.ociManifest } });
    assert.equal(manifest.status, 200);
    assert.deepEqual(Buffer.from(await manifest.arrayBuffer()), image.manifest);
    const bearer = await get(`/v2/${repository}/manifests/v1`, { method: 'HEAD', headers: { authorization: `Bearer ${password}`, accept: MT.ociManifest } });
    assert.equal(bearer.status, 200, 'the same token works as a Bearer token');
  });

  test('forged and garbage tokens and wrong secrets answer 401 UNAUTHORIZED', async () => {
    const out = await ecr.send(new GetAuthorizationTokenCommand({}));
    const password = Buffer.from(out.authorizationData![0]!.authorizationToken!, 'base64').toString('utf8').slice('AWS:'.length);
    const forged = flip(password);
    assert.notEqual(forged, password);
    const cases: [string, string][] = [
      ['a forged token as the AWS password', basicAuthorization('AWS', forged)],
      ['a forged Bearer token', `Bearer ${forged}`],
      ['a garbage Bearer token', 'Bearer not-a-token'],
      ['a garbage AWS password', basicAuthorization('AWS', 'garbage')],
      ['a truncated token', basicAuthorization('AWS', password.slice(0, -4))],
      ['a wrong secret for a real key', basicAuthorization(ADMIN.accessKeyId, `${ADMIN.secretAccessKey}x`)],
      ['an unknown access key', basicAuthorization('AKIAUNKNOWNUNKNOWN00', ADMIN.secretAccessKey)],
      ['Basic credentials that are not USER:PASSWORD', 'Basic bm8tY29sb24taGVyZQ=='],
      ['an unsupported scheme', `Token ${password}`],
    ];
    for (const [what, authorization] of cases) {
      await expectUnauthorized(await get(`/v2/${repository}/manifests/v1`, { headers: { authorization } }), what);
      await expectUnauthorized(await get('/v2/', { headers: { authorization } }), `${what} on /v2/`);
    }
    const token = await get('/token?service=berth', { headers: { authorization: basicAuthorization('AWS', forged) } });
    assert.equal(token.status, 401, 'the token endpoint refuses a forged token too');
    await token.arrayBuffer();
  });

  test('SigV4 with an unknown access key: UnrecognizedClientException (ECR), InvalidClientTokenId (STS, IAM)', async () => {
    const unknown: AwsCredentials = { accessKeyId: 'AKIAUNKNOWNUNKNOWN00', secretAccessKey: ADMIN.secretAccessKey };
    const e = await sdkError(ecrClient(server, unknown).send(new GetAuthorizationTokenCommand({})));
    assert.deepEqual([e.name, e.status], ['UnrecognizedClientException', 400], e.message);
    const s = await sdkError(stsClient(server, unknown).send(new GetCallerIdentityCommand({})));
    assert.deepEqual([s.name, s.status], ['InvalidClientTokenId', 403], s.message);
    const i = await sdkError(iamClient(server, unknown).send(new GetUserCommand({})));
    assert.deepEqual([i.name, i.status], ['InvalidClientTokenId', 403], i.message);
  });

  test('SigV4 with the wrong secret: InvalidSignatureException (ECR), SignatureDoesNotMatch (STS, IAM)', async () => {
    const wrong: AwsCredentials = { accessKeyId: ADMIN.accessKeyId, secretAccessKey: `${ADMIN.secretAccessKey}-wrong` };
    const e = await sdkError(ecrClient(server, wrong).send(new GetAuthorizationTokenCommand({})));
    assert.deepEqual([e.name, e.status], ['InvalidSignatureException', 400], e.message);
    const s = await sdkError(stsClient(server, wrong).send(new GetCallerIdentityCommand({})));
    assert.deepEqual([s.name, s.status], ['SignatureDoesNotMatch', 403], s.message);
    const i = await sdkError(iamClient(server, wrong).send(new GetUserCommand({})));
    assert.deepEqual([i.name, i.status], ['SignatureDoesNotMatch', 403], i.message);
  });

  test('unsigned requests: MissingAuthenticationTokenException (ECR), MissingAuthenticationToken (STS)', async () => {
    const ecrCall = ecrRequest('GetAuthorizationToken');
    const e = await fetch(new URL('/', server.baseUrl), { method: 'POST', headers: ecrCall.headers, body: ecrCall.body });
    const eText = await e.text();
    assert.equal(e.status, 400, eText);
    assert.equal(e.headers.get('x-amzn-errortype')?.split(':')[0], 'MissingAuthenticationTokenException');
    assert.equal((JSON.parse(eText) as { __type: string }).__type, 'MissingAuthenticationTokenException');

    const stsCall = queryRequest('sts', 'GetCallerIdentity');
    const s = await fetch(new URL('/', server.baseUrl), { method: 'POST', headers: stsCall.headers, body: stsCall.body });
    const sText = await s.text();
    assert.equal(s.status, 403, sText);
    assert.equal(queryErrorCode(sText), 'MissingAuthenticationToken', sText);
  });

  test('a request signed 20 minutes ago is refused as expired on both protocols', async () => {
    const twentyMinutesAgo = new Date(Date.now() - 20 * 60_000);
    // The same requests signed now pass: only the date differs.
    const ecrCall = ecrRequest('GetAuthorizationToken');
    const fresh = await signedFetch(server, ADMIN, { service: 'ecr', ...ecrCall });
    assert.equal(fresh.status, 200, await fresh.text());
    const stsCall = queryRequest('sts', 'GetCallerIdentity');
    const freshSts = await signedFetch(server, ADMIN, { service: 'sts', ...stsCall });
    assert.equal(freshSts.status, 200, await freshSts.text());

    const e = await signedFetch(server, ADMIN, { service: 'ecr', ...ecrCall, signingDate: twentyMinutesAgo });
    const eBody = (await e.json()) as { __type: string; message: string };
    assert.equal(e.status, 400, JSON.stringify(eBody));
    assert.equal(eBody.__type, 'InvalidSignatureException');
    assert.match(eBody.message, /Signature expired/i);

    const s = await signedFetch(server, ADMIN, { service: 'sts', ...stsCall, signingDate: twentyMinutesAgo });
    const sText = await s.text();
    assert.equal(s.status, 403, sText);
    assert.equal(queryErrorCode(sText), 'SignatureDoesNotMatch', sText);
    assert.match(sText, /Signature expired/i);

    // What the SDK surfaces for a client whose clock is 20 minutes slow.
    const slow = new STSClient({ region: REGION, endpoint: server.baseUrl, credentials: ADMIN, maxAttempts: 1, systemClockOffset: -20 * 60_000 });
    const err = await sdkError(slow.send(new GetCallerIdentityCommand({})));
    assert.deepEqual([err.name, err.status], ['SignatureDoesNotMatch', 403], err.message);
  });

  test('an aws:SourceIp condition: 10.0.0.0/8 does not match the test client, 127.0.0.0/8 does', async () => {
    await iam.send(new CreateUserCommand({ UserName: 'from-lan' }));
    const key = (await iam.send(new CreateAccessKeyCommand({ UserName: 'from-lan' }))).AccessKey!;
    const creds: AwsCredentials = { accessKeyId: key.AccessKeyId!, secretAccessKey: key.SecretAccessKey! };
    const policy = (cidr: string) =>
      JSON.stringify({
        Version: '2012-10-17',
        Statement: [{ Effect: 'Allow', Action: ['ecr:GetAuthorizationToken', 'ecr:BatchGetImage'], Resource: '*', Condition: { IpAddress: { 'aws:SourceIp': cidr } } }],
      });
    const pull = () => get(`/v2/${repository}/manifests/v1`, { headers: { authorization: basicAuthorization(creds.accessKeyId, creds.secretAccessKey), accept: MT.ociManifest } });

    await iam.send(new PutUserPolicyCommand({ UserName: 'from-lan', PolicyName: 'by-address', PolicyDocument: policy('10.0.0.0/8') }));
    const denied = await sdkError(ecrClient(server, creds).send(new GetAuthorizationTokenCommand({})));
    assert.deepEqual([denied.name, denied.status], ['AccessDeniedException', 400], denied.message);
    assert.match(denied.message, /ecr:GetAuthorizationToken/);
    const refused = await pull();
    const text = await refused.text();
    assert.equal(refused.status, 403, text);
    checkErrorBody(refused.headers.get('content-type'), text, 'DENIED');

    await iam.send(new PutUserPolicyCommand({ UserName: 'from-lan', PolicyName: 'by-address', PolicyDocument: policy('127.0.0.0/8') }));
    const out = await ecrClient(server, creds).send(new GetAuthorizationTokenCommand({}));
    assert.ok(out.authorizationData?.[0]?.authorizationToken);
    const allowed = await pull();
    assert.equal(allowed.status, 200, await allowed.text());
  });

  test('role sessions: DurationSeconds is bounded, and their tokens expire with the session', async () => {
    const trust = { Version: '2012-10-17', Statement: [{ Effect: 'Allow', Principal: { AWS: `arn:aws:iam::${ADMIN.accountId}:user/admin` }, Action: 'sts:AssumeRole' }] };
    const role = (await iam.send(new CreateRoleCommand({ RoleName: 'puller', AssumeRolePolicyDocument: JSON.stringify(trust) }))).Role!;
    await iam.send(new AttachRolePolicyCommand({ RoleName: 'puller', PolicyArn: 'arn:aws:iam::aws:policy/AmazonEC2ContainerRegistryReadOnly' }));

    for (const seconds of [899, 3601]) {
      const e = await sdkError(sts.send(new AssumeRoleCommand({ RoleArn: role.Arn!, RoleSessionName: 'bounds', DurationSeconds: seconds })));
      assert.deepEqual([e.name, e.status], ['ValidationError', 400], `DurationSeconds ${seconds}: ${e.message}`);
    }
    const assumed = await sts.send(new AssumeRoleCommand({ RoleArn: role.Arn!, RoleSessionName: 'short', DurationSeconds: 900 }));
    const c = assumed.Credentials!;
    const session: AwsCredentials = { accessKeyId: c.AccessKeyId!, secretAccessKey: c.SecretAccessKey!, sessionToken: c.SessionToken! };
    const out = await ecrClient(server, session).send(new GetAuthorizationTokenCommand({}));
    const expiresAt = out.authorizationData![0]!.expiresAt!;
    assert.ok(expiresAt.getTime() <= c.Expiration!.getTime() + 1000, `the token (${expiresAt.toISOString()}) outlives the session (${c.Expiration!.toISOString()})`);
    assert.ok(expiresAt.getTime() > Date.now() + 800_000, `the token lives as long as the session: ${expiresAt.toISOString()}`);

    // A session token with one character changed does not sign anything.
    const forged = await sdkError(stsClient(server, { ...session, sessionToken: flip(session.sessionToken!) }).send(new GetCallerIdentityCommand({})));
    assert.equal(forged.status, 403, `${forged.name}: ${forged.message}`);
    assert.match(forged.name, /^(InvalidClientTokenId|ExpiredToken)$/);
  });
});

describe('with the Bearer challenge (BERTH_AUTH_CHALLENGE=bearer)', () => {
  let server: TestServer;
  const repository = repoName('bearer');

  before(async () => {
    server = await startServer({ env: { BERTH_AUTH_CHALLENGE: 'bearer' } });
  });
  after(() => server?.close());

  const get = (path: string, init: RequestInit = {}) => fetch(new URL(path, server.baseUrl), init);

  test('anonymous requests get a Bearer challenge naming the token endpoint and the scope', async () => {
    const realm = `Bearer realm="http://127.0.0.1:${server.port}/token",service="berth"`;
    const cases: [string, string, string][] = [
      ['GET', '/v2/', realm],
      ['GET', `/v2/${repository}/manifests/latest`, `${realm},scope="repository:${repository}:pull"`],
      ['GET', `/v2/${repository}/tags/list`, `${realm},scope="repository:${repository}:pull"`],
      ['POST', `/v2/${repository}/blobs/uploads/`, `${realm},scope="repository:${repository}:pull,push"`],
      ['GET', '/v2/_catalog', `${realm},scope="registry:catalog:*"`],
    ];
    for (const [method, path, challenge] of cases) {
      const res = await get(path, { method });
      assert.equal(res.headers.get('www-authenticate'), challenge, `${method} ${path}`);
      await expectUnauthorized(res, `${method} ${path}`);
    }
  });

  test('the token flow with plain HTTP: GET /token with Basic, then Bearer on /v2/', async () => {
    const anonymous = await get('/token?service=berth');
    assert.equal(anonymous.status, 401);
    assert.match(anonymous.headers.get('www-authenticate') ?? '', /^Basic /);
    await anonymous.arrayBuffer();

    const before = Date.now();
    const res = await get(`/token?service=berth&scope=${encodeURIComponent(`repository:${repository}:pull,push`)}`, { headers: { authorization: keyBasic } });
    const text = await res.text();
    assert.equal(res.status, 200, text);
    const body = JSON.parse(text) as { token: string; access_token: string; expires_in: number; issued_at: string };
    assert.equal(typeof body.token, 'string');
    assert.equal(body.access_token, body.token);
    assert.ok(body.expires_in > 43_000 && body.expires_in <= 43_200, `expires_in ${body.expires_in}`);
    assert.ok(Math.abs(Date.parse(body.issued_at) - before) < 10_000, `issued_at ${body.issued_at}`);

    const bearer = `Bearer ${body.token}`;
    const base = await get('/v2/', { headers: { authorization: bearer } });
    assert.equal(base.status, 200, await base.text());
    const image = buildRealImage();
    await pushWith(server.baseUrl, bearer, repository, image, 'v1');
    const manifest = await get(`/v2/${repository}/manifests/v1`, { headers: { authorization: bearer, accept: MT.ociManifest } });
    assert.equal(manifest.status, 200);
    assert.deepEqual(Buffer.from(await manifest.arrayBuffer()), image.manifest);

    // A docker login password (AWS:<token>) is accepted by the token endpoint too.
    const again = await get('/token?service=berth', { headers: { authorization: basicAuthorization('AWS', body.token) } });
    assert.equal(again.status, 200, await again.text());
    await expectUnauthorized(await get('/v2/', { headers: { authorization: `Bearer ${flip(body.token)}` } }), 'a forged bearer token');
  });

  test('skopeo follows the Bearer challenge by itself', async (t) => {
    if (!requireTools(t, 'skopeo')) return;
    const tools = await toolSandbox();
    t.after(() => tools.close());
    const host = `127.0.0.1:${server.port}`;
    const name = repoName('bearer-skopeo');
    const image = buildRealImage();
    const src = await tools.mkdir('src');
    await writeOciLayout(src, [{ tag: 'v1', content: image }]);
    const creds = `${ADMIN.accessKeyId}:${ADMIN.secretAccessKey}`;
    const tokenRequests = () => server.logs.filter((l) => l['msg'] === 'request' && l['path'] === '/token' && l['status'] === 200).length;
    const tokensBefore = tokenRequests();
    await tools.skopeo(['copy', '--quiet', '--preserve-digests', '--dest-tls-verify=false', '--dest-creds', creds, `oci:${src}:v1`, `docker://${host}/${name}:v1`]);
    const back = await tools.mkdir('back');
    await tools.skopeo(['copy', '--quiet', '--src-tls-verify=false', '--src-creds', creds, `docker://${host}/${name}:v1`, `oci:${back}:v1`]);
    const layout = await readOciLayout(back, 'v1');
    assert.equal(layout.descriptor.digest, image.digest);
    for (const l of image.layers) assert.ok(layout.blobs.get(l.digest)?.equals(l.bytes), `layer ${l.digest} is byte-identical`);
    assert.ok(tokenRequests() > tokensBefore, 'skopeo fetched tokens from the token endpoint');
    const anonymous = await tools.skopeo(['inspect', '--tls-verify=false', '--no-creds', `docker://${host}/${name}:v1`], { allowFailure: true });
    assert.notEqual(anonymous.code, 0, 'without credentials skopeo is refused');
  });
});
