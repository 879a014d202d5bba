import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { CreateRepositoryCommand, DescribeImagesCommand, DescribeRepositoriesCommand, SetRepositoryPolicyCommand, type ImageDetail } from '@aws-sdk/client-ecr';
import { CreateAccessKeyCommand, CreateUserCommand, PutUserPolicyCommand } from '@aws-sdk/client-iam';
import { ADMIN } from '../support/auth.ts';
import { ecrClient, ecrRequest, iamClient, REGION, signedFetch, type AwsCredentials } from '../support/aws.ts';
import { assertNoServerErrors } from '../support/http.ts';
import { blob, buildImage, imageOver, MT, pushImage, pushManifest } from '../support/oci.ts';
import { runBerth, startServer, type TestServer } from '../support/server.ts';

/**
 * The console's lists (docs/ecr-api.md, "Berth's list operations"): BerthListRepositories,
 * BerthListImages and BerthDescribeStorageUsage, called with signed requests as the console
 * calls them (the SDK does not know them). Every sort in both directions, filters, pages that
 * cover every item once while repositories are created between them, IAM as DescribeRepositories
 * and DescribeImages decide it, and inputs that try to break the SQL.
 */

let server: TestServer;
const A = ADMIN.accountId;
const run = Math.random().toString(36).slice(2, 8);

before(async () => {
  server = await startServer();
});
after(async () => {
  if (server) assertNoServerErrors(server.logs);
  await server?.close();
});

async function call(creds: AwsCredentials, operation: string, input: Record<string, unknown>): Promise<any> {
  const res = await signedFetch(server, creds, { service: 'ecr', ...ecrRequest(operation, input) });
  const body = (await res.json()) as any;
  assert.equal(res.status, 200, `${operation} ${JSON.stringify(input)}: ${JSON.stringify(body)}`);
  return body;
}

async function fails(creds: AwsCredentials, operation: string, input: Record<string, unknown>): Promise<{ status: number; type: string; message: string }> {
  const res = await signedFetch(server, creds, { service: 'ecr', ...ecrRequest(operation, input) });
  const body = (await res.json()) as { __type: string; message: string };
  assert.notEqual(res.status, 200, `${operation} ${JSON.stringify(input)} should fail`);
  assert.ok(res.status < 500, `${operation} ${JSON.stringify(input)}: ${res.status} ${JSON.stringify(body)}`);
  return { status: res.status, type: body.__type, message: body.message };
}

/** Every page of a list, `maxResults` at a time; totalCount must be the same on each page. */
async function allPages(creds: AwsCredentials, operation: string, input: Record<string, unknown>, key: 'repositories' | 'imageDetails', maxResults: number): Promise<{ items: any[]; totalCount: number; pages: number }> {
  const items: any[] = [];
  let totalCount: number | undefined;
  let nextToken: string | undefined;
  let pages = 0;
  do {
    const out = await call(creds, operation, { ...input, maxResults, ...(nextToken ? { nextToken } : {}) });
    assert.ok(out[key].length <= maxResults);
    totalCount ??= out.totalCount;
    assert.equal(out.totalCount, totalCount, 'totalCount is the same on every page');
    items.push(...out[key]);
    nextToken = out.nextToken;
    pages++;
  } while (nextToken);
  return { items, totalCount: totalCount!, pages };
}

async function userWithPolicy(name: string, statements: object[] | undefined): Promise<AwsCredentials & { arn: string }> {
  const iam = iamClient(server, ADMIN);
  const user = (await iam.send(new CreateUserCommand({ UserName: name }))).User!;
  if (statements) await iam.send(new PutUserPolicyCommand({ UserName: name, PolicyName: 'p', PolicyDocument: JSON.stringify({ Version: '2012-10-17', Statement: statements }) }));
  const key = (await iam.send(new CreateAccessKeyCommand({ UserName: name }))).AccessKey!;
  return { accessKeyId: key.AccessKeyId!, secretAccessKey: key.SecretAccessKey!, arn: user.Arn! };
}

const byBytes = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);

/** Checks that `rows` are in the order of (key, name) ascending or descending. */
function assertOrdered<T>(rows: T[], key: (r: T) => number | string, name: (r: T) => string, order: 'ASC' | 'DESC', what: string): void {
  for (let i = 1; i < rows.length; i++) {
    const [a, b] = [rows[i - 1]!, rows[i]!];
    const ka = key(a);
    const kb = key(b);
    const cmp = typeof ka === 'number' && typeof kb === 'number' ? Math.sign(ka - kb) : byBytes(String(ka), String(kb)) || byBytes(name(a), name(b));
    const tie = cmp === 0 ? byBytes(name(a), name(b)) : cmp;
    assert.ok(order === 'ASC' ? tie < 0 : tie > 0, `${what}: ${name(a)} (${ka}) before ${name(b)} (${kb})`);
  }
}

test('BerthListRepositories: every sort both ways, pages covering each repository once, with the members DescribeRepositories gives', async () => {
  const ecr = ecrClient(server, ADMIN);
  const prefix = `cl-sort-${run}`;
  // Different image counts and sizes; a shared layer; names that are LIKE wildcards' neighbours.
  const names = ['a', 'b_x', 'c.y', 'd-z', 'e.f', 'g/h', 'i/j-k', 'l'].map((n) => `${prefix}/${n}`);
  const shared = blob(Buffer.alloc(3000, 7));
  for (const [i, name] of names.entries()) {
    await ecr.send(new CreateRepositoryCommand({ repositoryName: name, ...(i === 2 ? { imageTagMutability: 'IMMUTABLE', imageScanningConfiguration: { scanOnPush: true } } : {}) }));
    for (let k = 0; k < i % 4; k++) await pushImage(server.baseUrl, name, k === 0 ? imageOver([shared, blob(Buffer.alloc(500 * (i + 1), i))]) : buildImage({ layers: 1, layerBytes: 700 * (i + k) }), `v${k}`);
  }
  const described = new Map<string, any>();
  for (const r of (await ecr.send(new DescribeRepositoriesCommand({ repositoryNames: names }))).repositories!) described.set(r.repositoryName!, r);

  for (const sortBy of ['repositoryName', 'createdAt', 'imageCount', 'sizeInBytes']) {
    for (const sortOrder of ['ASC', 'DESC'] as const) {
      const { items, totalCount, pages } = await allPages(ADMIN, 'BerthListRepositories', { filter: prefix, sortBy, sortOrder }, 'repositories', 3);
      const what = `${sortBy} ${sortOrder}`;
      assert.equal(totalCount, names.length, what);
      assert.equal(pages, 3, what);
      assert.deepEqual(items.map((r) => r.repositoryName).sort(), [...names].sort(), `${what}: each repository exactly once`);
      const key = { repositoryName: (r: any) => r.repositoryName, createdAt: (r: any) => r.createdAt, imageCount: (r: any) => r.imageCount, sizeInBytes: (r: any) => r.sizeInBytes }[sortBy]!;
      assertOrdered(items, key, (r) => r.repositoryName, sortOrder, what);
    }
  }

  const { items } = await allPages(ADMIN, 'BerthListRepositories', { filter: prefix }, 'repositories', 100);
  const usage = await call(ADMIN, 'BerthDescribeStorageUsage', {});
  for (const r of items) {
    const d = described.get(r.repositoryName);
    // The members and formats of DescribeRepositories (epoch seconds for createdAt), plus the two counts.
    const { imageCount, sizeInBytes, ...rest } = r;
    assert.deepEqual(rest, { ...d, createdAt: d.createdAt.getTime() / 1000 }, r.repositoryName);
    const images = (await ecr.send(new DescribeImagesCommand({ repositoryName: r.repositoryName }))).imageDetails!;
    assert.equal(imageCount, images.length, r.repositoryName);
    const u = usage.repositories.find((x: any) => x.repositoryName === r.repositoryName);
    assert.equal(sizeInBytes, u.sizeInBytes, `${r.repositoryName}: the size BerthDescribeStorageUsage counts`);
    assert.equal(u.sizeInBytes, u.manifestBytes + u.blobBytes);
  }
  assert.equal(items.find((r) => r.repositoryName === names[0]).sizeInBytes, 0, 'an empty repository');
});

test('BerthListRepositories: the filter is a case-insensitive substring taken literally, and totalCount counts what it matches', async () => {
  const ecr = ecrClient(server, ADMIN);
  const prefix = `cl-filter-${run}`;
  const names = [`${prefix}/under_score`, `${prefix}/underxscore`, `${prefix}/per.cent`, `${prefix}/back-slash`];
  for (const name of names) await ecr.send(new CreateRepositoryCommand({ repositoryName: name }));
  const list = async (filter: string) => {
    const out = await call(ADMIN, 'BerthListRepositories', { filter });
    assert.equal(out.totalCount, out.repositories.length, filter);
    return out.repositories.map((r: any) => r.repositoryName).sort();
  };
  assert.deepEqual(await list(prefix.toUpperCase()), [...names].sort());
  assert.deepEqual(await list(`${prefix}/UNDER_`), [`${prefix}/under_score`], '_ is no wildcard');
  assert.deepEqual(await list(`${prefix}/per.`), [`${prefix}/per.cent`], '. is no wildcard');
  for (const hostile of ['%', `${prefix}/under%score`, '\\', "'; drop table repositories; --", '"', '\u212a', '\u0000', 'über', '🙂', 'x'.repeat(256), `${prefix}/*`]) {
    assert.deepEqual(await list(hostile), [], JSON.stringify(hostile));
  }
  assert.equal((await fails(ADMIN, 'BerthListRepositories', { filter: 'x'.repeat(257) })).status, 400);
});

test('BerthListRepositories: a page continues where the last ended, whatever was created meanwhile', async () => {
  const ecr = ecrClient(server, ADMIN);
  const prefix = `cl-insert-${run}`;
  const names = Array.from({ length: 9 }, (_, i) => `${prefix}/m${i}`);
  for (const name of names) await ecr.send(new CreateRepositoryCommand({ repositoryName: name }));
  for (const sortBy of ['repositoryName', 'createdAt', 'sizeInBytes']) {
    const seen: string[] = [];
    let nextToken: string | undefined;
    let page = 0;
    do {
      const out = await call(ADMIN, 'BerthListRepositories', { filter: prefix, sortBy, maxResults: 4, ...(nextToken ? { nextToken } : {}) });
      seen.push(...out.repositories.map((r: any) => r.repositoryName));
      nextToken = out.nextToken;
      // Before the position, after it, and between.
      const s = sortBy.toLowerCase();
      for (const n of [`${prefix}/a${s}${page}`, `${prefix}/z${s}${page}`, `${prefix}/m${page}x${s}`]) await ecr.send(new CreateRepositoryCommand({ repositoryName: n }));
      page++;
    } while (nextToken);
    for (const name of names) assert.equal(seen.filter((n) => n === name).length, 1, `${sortBy}: ${name} exactly once`);
    assert.equal(new Set(seen).size, seen.length, `${sortBy}: no repository twice`);
  }
});

test('BerthListImages: every sort both ways over images, an index and untagged images, with the imageDetails DescribeImages gives', async () => {
  const ecr = ecrClient(server, ADMIN);
  const repositoryName = `cl-images-${run}/app`;
  const digests: string[] = [];
  for (const [i, tag] of ['Zeta', 'alpha', 'beta_1', 'v1.0', 'v1.1', 'gamma'].entries()) digests.push(await pushImage(server.baseUrl, repositoryName, buildImage({ layers: 1 + (i % 3), layerBytes: 400 + ((i * 911) % 2000) }), tag));
  await pushImage(server.baseUrl, repositoryName, buildImage({ layers: 2, layerBytes: 1000 }), 'alpha'); // takes the tag: the first image keeps none
  const untagged = buildImage({ layers: 1, layerBytes: 5000 });
  await pushImage(server.baseUrl, repositoryName, untagged, untagged.digest);
  // A second tag on one image, and an index over two images.
  const second = await pushManifest(server.baseUrl, repositoryName, 'another', (await getManifest(repositoryName, 'gamma')).body, MT.ociManifest);
  assert.equal(second.status, 201);
  const children = [buildImage({ layers: 1, layerBytes: 1234, platform: { os: 'linux', architecture: 'amd64' } }), buildImage({ layers: 2, layerBytes: 777, platform: { os: 'linux', architecture: 'arm64' } })];
  for (const c of children) await pushImage(server.baseUrl, repositoryName, c, c.digest);
  const platforms = [{ os: 'linux', architecture: 'amd64' }, { os: 'linux', architecture: 'arm64' }];
  const index = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: MT.ociIndex, manifests: children.map((c, i) => ({ mediaType: MT.ociManifest, digest: c.digest, size: c.manifest.length, platform: platforms[i] })) }));
  assert.equal((await pushManifest(server.baseUrl, repositoryName, 'multi', index, MT.ociIndex)).status, 201);

  const all = (await ecr.send(new DescribeImagesCommand({ repositoryName, maxResults: 1000 }))).imageDetails!;
  assert.equal(all.length, 11);
  const byDigest = new Map(all.map((d) => [d.imageDigest!, d]));
  const firstTag = (d: ImageDetail) => [...(d.imageTags ?? [])].sort(byBytes)[0];
  const expected: Record<string, (a: ImageDetail, b: ImageDetail) => number> = {
    pushedAt: (a, b) => a.imagePushedAt!.getTime() - b.imagePushedAt!.getTime() || byBytes(a.imageDigest!, b.imageDigest!),
    sizeInBytes: (a, b) => a.imageSizeInBytes! - b.imageSizeInBytes! || byBytes(a.imageDigest!, b.imageDigest!),
    tag: (a, b) => {
      const [ta, tb] = [firstTag(a), firstTag(b)];
      if ((ta === undefined) !== (tb === undefined)) return ta === undefined ? 1 : -1;
      return byBytes(ta ?? '', tb ?? '') || byBytes(a.imageDigest!, b.imageDigest!);
    },
  };
  for (const sortBy of Object.keys(expected)) {
    for (const sortOrder of ['ASC', 'DESC'] as const) {
      const { items, totalCount } = await allPages(ADMIN, 'BerthListImages', { repositoryName, sortBy, sortOrder }, 'imageDetails', 4);
      const want = [...all].sort(expected[sortBy]!).map((d) => d.imageDigest);
      if (sortOrder === 'DESC') want.reverse();
      assert.deepEqual(items.map((d) => d.imageDigest), want, `${sortBy} ${sortOrder}`);
      assert.equal(totalCount, all.length);
    }
  }
  // Each detail as DescribeImages gives it (epoch seconds for times).
  const { items } = await allPages(ADMIN, 'BerthListImages', { repositoryName }, 'imageDetails', 100);
  for (const d of items) {
    const want = byDigest.get(d.imageDigest)!;
    assert.deepEqual(d, JSON.parse(JSON.stringify(want, (k, v) => (k.endsWith('At') || k === 'lastRecordedPullTime') && typeof v === 'string' ? Date.parse(v) / 1000 : v)), d.imageDigest);
  }
  const indexDetail = items.find((d) => d.imageTags?.includes('multi'));
  assert.equal(indexDetail.imageSizeInBytes, 1234 + 2 * 777, "an index's size is its images'");

  const digestsOf = async (input: Record<string, unknown>) => {
    const out = await call(ADMIN, 'BerthListImages', { repositoryName, ...input });
    assert.equal(out.totalCount, out.imageDetails.length);
    return out.imageDetails.map((d: any) => d.imageDigest).sort();
  };
  const untaggedOnes = all.filter((d) => !d.imageTags?.length).map((d) => d.imageDigest).sort();
  assert.equal(untaggedOnes.length, 4, 'the image that lost its tag, one pushed by digest, and the index children');
  assert.deepEqual(await digestsOf({ tagStatus: 'UNTAGGED' }), untaggedOnes);
  assert.deepEqual(await digestsOf({ tagStatus: 'TAGGED' }), all.filter((d) => d.imageTags?.length).map((d) => d.imageDigest).sort());
  assert.deepEqual(await digestsOf({ filter: 'V1.' }), all.filter((d) => d.imageTags?.some((t) => t.startsWith('v1.'))).map((d) => d.imageDigest).sort(), 'tags, in any case');
  assert.deepEqual(await digestsOf({ filter: 'zeta' }), [digests[0]], 'the tag Zeta, in any case');
  assert.deepEqual(await digestsOf({ filter: 'beta_' }), [digests[2]], '_ is no wildcard');
  assert.deepEqual(await digestsOf({ filter: 'eta_' }), [digests[2]]);
  assert.deepEqual(await digestsOf({ filter: untagged.digest.slice(20, 40).toUpperCase() }), [untagged.digest], 'a piece of a digest');
  assert.deepEqual(await digestsOf({ filter: untagged.digest.slice(20, 40), tagStatus: 'TAGGED' }), []);
  for (const hostile of ['%', '_', 'b%a', '\\', "' or 1=1 --", '\u0000', 'ß', 'sha256:%']) assert.deepEqual(await digestsOf({ filter: hostile }), hostile === '_' ? [digests[2]] : [], JSON.stringify(hostile));
});

async function getManifest(repositoryName: string, reference: string): Promise<{ body: Buffer }> {
  const res = await fetch(`${server.baseUrl}/v2/${repositoryName}/manifests/${reference}`, {
    headers: { accept: MT.ociManifest, authorization: `Basic ${Buffer.from(`${ADMIN.accessKeyId}:${ADMIN.secretAccessKey}`).toString('base64')}` },
  });
  assert.equal(res.status, 200);
  return { body: Buffer.from(await res.arrayBuffer()) };
}

test('nextToken is opaque, and good only for the order it came from', async () => {
  const prefix = `cl-token-${run}`;
  const ecr = ecrClient(server, ADMIN);
  for (let i = 0; i < 3; i++) await ecr.send(new CreateRepositoryCommand({ repositoryName: `${prefix}/r${i}` }));
  const first = await call(ADMIN, 'BerthListRepositories', { filter: prefix, maxResults: 1, sortBy: 'createdAt' });
  assert.ok(first.nextToken);
  const wrongSort = await fails(ADMIN, 'BerthListRepositories', { filter: prefix, maxResults: 1, sortBy: 'imageCount', nextToken: first.nextToken });
  assert.equal(wrongSort.type, 'InvalidParameterException');
  const wrongOrder = await fails(ADMIN, 'BerthListRepositories', { filter: prefix, maxResults: 1, sortBy: 'createdAt', sortOrder: 'DESC', nextToken: first.nextToken });
  assert.equal(wrongOrder.type, 'InvalidParameterException');
  const forged = (after: unknown) => Buffer.from(JSON.stringify({ v: 1, after: JSON.stringify(after) })).toString('base64url');
  for (const nextToken of ['garbage', forged({ s: 'createdAt', o: 'ASC', v: 'x', i: `${prefix}/r0` }), forged({ s: 'createdAt', o: 'ASC', v: 1, i: 'Bad\u0000Name' }), forged({ s: 'repositoryName', o: 'ASC', v: 'a', i: 'b' }), forged([1, 2])]) {
    const out = await fails(ADMIN, 'BerthListRepositories', { filter: prefix, sortBy: 'createdAt', nextToken });
    assert.equal(out.type, 'InvalidParameterException', nextToken);
  }
  const imageRepo = `${prefix}/img`;
  await pushImage(server.baseUrl, imageRepo, buildImage(), 'v1');
  await pushImage(server.baseUrl, imageRepo, buildImage(), 'v2');
  const page = await call(ADMIN, 'BerthListImages', { repositoryName: imageRepo, sortBy: 'tag', maxResults: 1 });
  assert.equal(page.imageDetails[0].imageTags[0], 'v1');
  assert.equal((await call(ADMIN, 'BerthListImages', { repositoryName: imageRepo, sortBy: 'tag', maxResults: 1, nextToken: page.nextToken })).imageDetails[0].imageTags[0], 'v2');
  for (const nextToken of [page.nextToken.slice(1), forged({ s: 'tag', o: 'ASC', v: 'bad tag', i: 'sha256:00' }), forged({ s: 'tag', o: 'ASC', v: null, i: 'not-a-digest' })]) {
    assert.equal((await fails(ADMIN, 'BerthListImages', { repositoryName: imageRepo, sortBy: 'tag', nextToken })).type, 'InvalidParameterException');
  }
  for (const input of [{ maxResults: 0 }, { maxResults: 1001 }, { sortBy: 'name' }, { sortOrder: 'UP' }]) {
    assert.ok(['InvalidParameterException', 'ValidationException'].includes((await fails(ADMIN, 'BerthListRepositories', input)).type), JSON.stringify(input));
  }
  assert.equal((await fails(ADMIN, 'BerthListImages', { repositoryName: `${prefix}/missing` })).type, 'RepositoryNotFoundException');
  assert.ok(['InvalidParameterException', 'ValidationException'].includes((await fails(ADMIN, 'BerthListImages', { repositoryName: imageRepo, tagStatus: 'SOME' })).type));
});

test('IAM: each caller sees what DescribeRepositories and DescribeImages show it, and storage over those only', async () => {
  const ecr = ecrClient(server, ADMIN);
  const team = `cl-iam-${run}-team`;
  const other = `cl-iam-${run}-other`;
  const mine = [`${team}/one`, `${team}/two`, `${team}/secret`];
  const shared = `${other}/shared`;
  const layer = blob(Buffer.alloc(4096, 1));
  for (const name of [...mine, shared, `${other}/hidden`]) {
    await ecr.send(new CreateRepositoryCommand({ repositoryName: name }));
    await pushImage(server.baseUrl, name, imageOver([layer]), 'v1');
  }
  const arn = (name: string) => `arn:aws:ecr:${REGION}:${A}:repository/${name}`;
  const reader = await userWithPolicy(`cl-reader-${run}`, [
    { Effect: 'Allow', Action: ['ecr:DescribeRepositories', 'ecr:DescribeImages'], Resource: arn(`${team}/*`) },
    { Effect: 'Deny', Action: 'ecr:DescribeRepositories', Resource: arn(`${team}/secret`) },
  ]);
  // A repository policy lets the reader see one more repository.
  await ecr.send(new SetRepositoryPolicyCommand({
    repositoryName: shared,
    policyText: JSON.stringify({ Version: '2012-10-17', Statement: [{ Sid: 'reader', Effect: 'Allow', Principal: { AWS: reader.arn }, Action: ['ecr:DescribeRepositories', 'ecr:DescribeImages'] }] }),
  }));
  const visible = [`${team}/one`, `${team}/two`, shared].sort();

  const described: string[] = [];
  let nextToken: string | undefined;
  do {
    const out = await ecrClient(server, reader).send(new DescribeRepositoriesCommand({ maxResults: 2, nextToken }));
    described.push(...out.repositories!.map((r) => r.repositoryName!));
    nextToken = out.nextToken;
  } while (nextToken);
  assert.deepEqual(described.sort(), visible, 'what DescribeRepositories lists to the reader');
  for (const sortBy of ['repositoryName', 'sizeInBytes']) {
    const { items, totalCount } = await allPages(reader, 'BerthListRepositories', { sortBy }, 'repositories', 2);
    assert.deepEqual(items.map((r) => r.repositoryName).sort(), visible, sortBy);
    assert.equal(totalCount, visible.length);
  }
  assert.equal((await call(reader, 'BerthListRepositories', { filter: 'SHARED' })).totalCount, 1);

  const usage = await call(reader, 'BerthDescribeStorageUsage', {});
  assert.deepEqual(usage.repositories.map((r: any) => r.repositoryName).sort(), visible);
  assert.equal(usage.repositoryCount, 3);
  assert.equal(usage.sharedBlobCount, 1, 'the layer all three hold, once');
  assert.equal(usage.blobBytes, 4096 + usage.repositories.reduce((n: number, r: any) => n + r.blobBytes - 4096, 0));

  assert.equal((await call(reader, 'BerthListImages', { repositoryName: `${team}/one` })).imageDetails.length, 1);
  assert.equal((await call(reader, 'BerthListImages', { repositoryName: shared })).totalCount, 1);
  const deniedImages = await fails(reader, 'BerthListImages', { repositoryName: `${other}/hidden` });
  assert.equal(deniedImages.type, 'AccessDeniedException');
  assert.match(deniedImages.message, /ecr:DescribeImages/);

  const nobody = await userWithPolicy(`cl-nobody-${run}`, undefined);
  for (const operation of ['BerthListRepositories', 'BerthDescribeStorageUsage']) {
    const denied = await fails(nobody, operation, {});
    assert.equal(denied.type, 'AccessDeniedException', operation);
    assert.match(denied.message, /ecr:DescribeRepositories/);
  }
  // Allowed on every repository but with none to see (another account's view is its own): an empty list, not a refusal.
  const everything = await userWithPolicy(`cl-all-${run}`, [{ Effect: 'Allow', Action: 'ecr:DescribeRepositories', Resource: '*' }]);
  assert.equal((await call(everything, 'BerthListRepositories', { filter: 'nothing-has-this-name' })).totalCount, 0);
});

test('BerthDescribeStorageUsage: the account counts each blob once, as berth storage does', async () => {
  const out = await call(ADMIN, 'BerthDescribeStorageUsage', {});
  assert.equal(out.registryId, A);
  const cli = JSON.parse(await runBerth(server, ['storage', '--account', A]));
  const account = cli.accounts.find((a: any) => a.accountId === A);
  assert.deepEqual(
    { repositoryCount: out.repositoryCount, imageCount: out.imageCount, manifestBytes: out.manifestBytes, blobCount: out.blobCount, blobBytes: out.blobBytes, sharedBlobCount: out.sharedBlobCount, sharedBlobBytes: out.sharedBlobBytes },
    { repositoryCount: account.repositories, imageCount: account.manifests, manifestBytes: account.manifestBytes, blobCount: account.blobs, blobBytes: account.blobBytes, sharedBlobCount: account.sharedBlobs, sharedBlobBytes: account.sharedBytes },
  );
  assert.equal(out.sizeInBytes, out.manifestBytes + out.blobBytes);
  const repos = new Map(cli.repositories.map((r: any) => [r.repositoryName, r]));
  assert.equal(out.repositories.length, repos.size);
  for (const r of out.repositories) {
    const c = repos.get(r.repositoryName) as any;
    assert.deepEqual([r.imageCount, r.manifestBytes, r.blobCount, r.blobBytes], [c.images, c.manifestBytes, c.blobs, c.blobBytes], r.repositoryName);
  }
  assert.ok(out.sharedBlobCount >= 2, 'layers shared by the repositories of the other tests');
});
