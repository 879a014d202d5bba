import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, test, type TestContext } from 'node:test';
import {
  BatchGetRepositoryScanningConfigurationCommand,
  CreateRepositoryCommand,
  DescribeImageScanFindingsCommand,
  DescribeImagesCommand,
  type DescribeImagesCommandOutput,
  GetRegistryScanningConfigurationCommand,
  PutImageScanningConfigurationCommand,
  PutRegistryScanningConfigurationCommand,
  StartImageScanCommand,
  type DescribeImageScanFindingsCommandOutput,
  type ECRClient,
  type EnhancedImageScanFinding,
  type ImageScanFinding,
} from '@aws-sdk/client-ecr';
import { ADMIN } from '../support/auth.ts';
import { AWS_CLI, awsEnv, awsOk, ecrClient, requireAwsCli, sdkError } from '../support/aws.ts';
import { pushBlob, pushManifest, waitFor, blob, MT } from '../support/oci.ts';
import { runBerth, startServer, type TestServer } from '../support/server.ts';
import { requireTools, run, toolSandbox, type ToolSandbox } from '../support/tools.ts';
import {
  alpineStyleImage,
  busyboxImage,
  debootstrapImage,
  goBinaryImage,
  jarImage,
  multiArchIndex,
  nodeAppImage,
  pushLayout,
  pythonImage,
  rpmImage,
  rustImage,
  type ScanImage,
} from '../support/scan-images.ts';
import { debianVulnData, languageVulnData, type ExpectedFinding, type NotExpected } from '../support/vulndata.ts';

/**
 * Image scanning end to end (issue 13, docs/scanning.md): real images built in code, pushed
 * with skopeo and podman, scanned by the real server against vulnerability data imported with
 * `berth vulndb import`, and read back through ECR's API with the AWS SDK and the AWS CLI.
 * Every expected finding comes from test/support/vulndata.ts, which derives it from what the
 * image really holds; the assertions are on the whole set, package by package.
 */

const DAY_MS = 86_400_000;

interface Ctx {
  server: TestServer;
  tools: ToolSandbox;
  host: string;
  ecr: ECRClient;
  /** A fresh directory for layouts and data files. */
  mkdir(name: string): Promise<string>;
  importDb(files: string[]): Promise<string>;
  close(): Promise<void>;
}

async function scanServer(env: Record<string, string> = {}): Promise<Ctx> {
  const server = await startServer({ env: { BERTH_SCAN_POLL_INTERVAL_MS: '100', ...env } });
  const tools = await toolSandbox();
  const host = `127.0.0.1:${server.port}`;
  await tools.login(host);
  return {
    server,
    tools,
    host,
    ecr: ecrClient(server, ADMIN),
    mkdir: (name) => tools.mkdir(name),
    importDb: (files) => runBerth(server, ['vulndb', 'import', ...files]),
    async close() {
      await tools.close();
      await server.close();
    },
  };
}

/** What the images and data are built with (.ci/run installs them; golang-golang-x-vuln-dev too). */
const BUILD_TOOLS = ['skopeo', 'go', 'rpm', 'rpmbuild', 'cc', 'objcopy'];

async function setup(t: TestContext, env: Record<string, string> = {}, ...extraTools: string[]): Promise<Ctx | undefined> {
  if (!requireTools(t, ...BUILD_TOOLS, ...extraTools)) return undefined;
  const ctx = await scanServer(env);
  t.after(() => ctx.close());
  return ctx;
}

function repoName(prefix: string): string {
  return `${prefix}-${randomBytes(5).toString('hex')}/app`;
}

const unfinished = new Set(['IN_PROGRESS', 'PENDING']);

/**
 * DescribeImageScanFindings until the scan has an outcome (a status other than IN_PROGRESS or
 * PENDING; ScanNotFoundException until the scan is recorded), or until `done` says so.
 */
async function waitForScan(
  ecr: ECRClient,
  repositoryName: string,
  imageDigest: string,
  done: (out: DescribeImageScanFindingsCommandOutput) => boolean = (out) => !unfinished.has(out.imageScanStatus?.status ?? 'PENDING'),
  timeoutMs = 180_000,
): Promise<DescribeImageScanFindingsCommandOutput> {
  return waitFor(
    async () => {
      try {
        const out = await ecr.send(new DescribeImageScanFindingsCommand({ repositoryName, imageId: { imageDigest } }));
        return done(out) ? out : undefined;
      } catch (err) {
        if ((err as Error).name === 'ScanNotFoundException') return undefined;
        throw err;
      }
    },
    { timeoutMs, intervalMs: 200, what: `the scan of ${repositoryName}@${imageDigest}` },
  );
}

/** Every finding of an image, page by page (maxResults `pageSize`), and the number of pages. */
async function allFindings(ecr: ECRClient, repositoryName: string, imageDigest: string, pageSize = 100) {
  const findings: ImageScanFinding[] = [];
  const enhanced: EnhancedImageScanFinding[] = [];
  let nextToken: string | undefined;
  let pages = 0;
  let first: DescribeImageScanFindingsCommandOutput | undefined;
  do {
    const out = await ecr.send(new DescribeImageScanFindingsCommand({ repositoryName, imageId: { imageDigest }, maxResults: pageSize, ...(nextToken ? { nextToken } : {}) }));
    first ??= out;
    pages++;
    const page = [...(out.imageScanFindings?.findings ?? []), ...(out.imageScanFindings?.enhancedFindings ?? [])];
    assert.ok(page.length <= pageSize, `page ${pages} has ${page.length} findings, more than maxResults ${pageSize}`);
    findings.push(...(out.imageScanFindings?.findings ?? []));
    enhanced.push(...(out.imageScanFindings?.enhancedFindings ?? []));
    nextToken = out.nextToken;
  } while (nextToken);
  return { findings, enhanced, pages, first: first! };
}

function attr(f: ImageScanFinding, key: string): string | undefined {
  return f.attributes?.find((a) => a.key === key)?.value;
}

const basicKey = (name: string, pkg: string, version: string, severity: string) => `${name} | ${pkg} | ${version} | ${severity}`;

function severityCounts(expected: ExpectedFinding[], enhanced = false): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const e of expected) {
    const s = enhanced && e.severity === 'UNDEFINED' ? 'UNTRIAGED' : e.severity;
    counts[s] = (counts[s] ?? 0) + 1;
  }
  return counts;
}

/** Basic findings are exactly the expected ones, with their package attributes and CVSS. */
function assertBasicFindings(findings: ImageScanFinding[], expected: ExpectedFinding[], notExpected: NotExpected[] = []): void {
  const got = findings.map((f) => basicKey(f.name ?? '', attr(f, 'package_name') ?? '', attr(f, 'package_version') ?? '', f.severity ?? '')).sort();
  const want = expected.map((e) => basicKey(e.name, e.package, e.version, e.severity)).sort();
  assert.deepEqual(got, want, 'the findings, package by package');
  for (const e of expected) {
    const f = findings.find((x) => x.name === e.name && attr(x, 'package_name') === e.package)!;
    assert.match(f.uri ?? '', /^https?:\/\//, `${e.name} ${e.package}: uri`);
    assert.ok(f.description, `${e.name} ${e.package}: description`);
    if (e.cvss) {
      assert.equal(Number(attr(f, 'CVSS3_SCORE')), e.cvss.baseScore, `${e.name} ${e.package}: CVSS3_SCORE`);
      assert.equal(attr(f, 'CVSS3_VECTOR'), e.cvss.vector, `${e.name} ${e.package}: CVSS3_VECTOR`);
    }
  }
  for (const n of notExpected) {
    assert.ok(!findings.some((f) => f.name === n.name && attr(f, 'package_name') === n.package), `no ${n.name} for ${n.package}: ${n.why}`);
  }
}

/** Enhanced findings (Inspector's shape) are exactly the expected ones. */
function assertEnhancedFindings(findings: EnhancedImageScanFinding[], expected: ExpectedFinding[], image: { repositoryName: string; digest: string }): void {
  const key = (f: EnhancedImageScanFinding) => {
    const p = f.packageVulnerabilityDetails?.vulnerablePackages?.[0];
    return basicKey(f.packageVulnerabilityDetails?.vulnerabilityId ?? '', p?.name ?? '', p?.version ?? '', f.severity ?? '');
  };
  const want = expected.map((e) => basicKey(e.name, e.package, e.version, e.severity === 'UNDEFINED' ? 'UNTRIAGED' : e.severity)).sort();
  assert.deepEqual(findings.map(key).sort(), want, 'the enhanced findings, package by package');
  for (const e of expected) {
    const f = findings.find((x) => x.packageVulnerabilityDetails?.vulnerabilityId === e.name && x.packageVulnerabilityDetails?.vulnerablePackages?.[0]?.name === e.package)!;
    const what = `${e.name} ${e.package}`;
    assert.equal(f.type, 'PACKAGE_VULNERABILITY', `${what}: type`);
    assert.equal(f.status, 'ACTIVE', `${what}: status`);
    assert.equal(f.awsAccountId, ADMIN.accountId, `${what}: awsAccountId`);
    assert.ok(f.findingArn?.startsWith('arn:aws:inspector2:'), `${what}: findingArn ${f.findingArn}`);
    assert.ok(f.firstObservedAt instanceof Date && f.lastObservedAt instanceof Date, `${what}: observed times`);
    assert.equal(f.fixAvailable, e.fixedVersion ? 'YES' : 'NO', `${what}: fixAvailable`);
    if (e.fixedVersion) assert.equal(f.packageVulnerabilityDetails?.vulnerablePackages?.[0]?.fixedInVersion, e.fixedVersion, `${what}: fixedInVersion`);
    if (e.cvss) {
      assert.equal(f.score, e.cvss.baseScore, `${what}: score`);
      assert.equal(f.scoreDetails?.cvss?.scoringVector, e.cvss.vector, `${what}: scoringVector`);
      assert.ok(f.packageVulnerabilityDetails?.cvss?.some((c) => c.baseScore === e.cvss!.baseScore && c.scoringVector === e.cvss!.vector), `${what}: packageVulnerabilityDetails.cvss`);
    }
    const resource = f.resources?.[0];
    assert.equal(resource?.type, 'AWS_ECR_CONTAINER_IMAGE', `${what}: resource type`);
    assert.equal(resource?.details?.awsEcrContainerImage?.repositoryName, image.repositoryName, `${what}: resource repository`);
    assert.equal(resource?.details?.awsEcrContainerImage?.imageHash, image.digest, `${what}: resource imageHash`);
  }
}

/** Layouts and data, built once per test process (debootstrap's layer is cached per machine too). */
const workDir = (async () => {
  const dir = path.join(tmpdir(), `berth-scan-e2e-${randomBytes(6).toString('hex')}`);
  await mkdir(dir);
  return dir;
})();
after(async () => rm(await workDir, { recursive: true, force: true }));

/** Lower case only: podman names an image pulled from oci:DIR after DIR, and image names may not contain capitals. */
async function freshDir(name: string): Promise<string> {
  const dir = path.join(await workDir, `${name}-${randomBytes(5).toString('hex')}`);
  await mkdir(dir, { recursive: true });
  return dir;
}

/** The vulnerability data for every image but the Debian one (needs the Go version of the Go image). */
async function languageData(goVersion: string, options: { extraNpm?: boolean; modifiedAt?: Date } = {}) {
  return languageVulnData(await freshDir('vulndata'), { goVersion, ...options });
}

/** The Go toolchain's version, as goBinaryImage reports it, for data built before the image. */
async function goVersion(): Promise<string> {
  return (await run('go', ['env', 'GOVERSION'], { env: { ...process.env, GOTOOLCHAIN: 'local' } })).stdout.trim().replace(/^go/, '');
}

// --- basic scanning, the debootstrap image, the AWS CLI -------------------------------------

test('scan on push (repository setting): the debootstrap image pushed with skopeo, read with the AWS CLI waiter and paginated findings', async (t) => {
  if (!requireTools(t, 'debootstrap')) return;
  if (process.getuid?.() !== 0) {
    if (process.env['CI']) throw new Error('debootstrap needs root');
    t.skip('debootstrap needs root');
    return;
  }
  requireAwsCli();
  const ctx = await setup(t);
  if (!ctx) return;
  const { ecr } = ctx;
  const image = await debootstrapImage(await freshDir('debian'));
  const data = await debianVulnData(await freshDir('debian-data'), image.packages);
  await ctx.importDb(data.files);
  assert.ok(data.expected.length > 8, `the Debian data expects several findings (${data.expected.length}), enough to page through`);

  const repositoryName = repoName('debian');
  await ecr.send(new CreateRepositoryCommand({ repositoryName, imageScanningConfiguration: { scanOnPush: true } }));
  const config = await ecr.send(new BatchGetRepositoryScanningConfigurationCommand({ repositoryNames: [repositoryName] }));
  assert.equal(config.scanningConfigurations?.[0]?.scanOnPush, true);
  assert.equal(config.scanningConfigurations?.[0]?.scanFrequency, 'SCAN_ON_PUSH');
  await pushLayout(ctx.tools, ctx.host, image, repositoryName, 'bookworm');

  // The waiter as a user runs it, straight after the push (it polls every 5 s).
  const waited = await run(AWS_CLI, ['--endpoint-url', ctx.server.baseUrl, 'ecr', 'wait', 'image-scan-complete', '--repository-name', repositoryName, '--image-id', `imageDigest=${image.digest}`], {
    env: await awsEnv(ADMIN),
    timeoutMs: 300_000,
    allowFailure: true,
  });
  assert.equal(waited.code, 0, `aws ecr wait image-scan-complete: ${waited.stderr}`);

  const { findings, pages, first } = await allFindings(ecr, repositoryName, image.digest, 5);
  assert.equal(first.imageScanStatus?.status, 'COMPLETE');
  assert.equal(first.imageId?.imageDigest, image.digest);
  assert.ok(first.imageScanFindings?.imageScanCompletedAt instanceof Date, 'imageScanCompletedAt');
  assert.ok(first.imageScanFindings?.vulnerabilitySourceUpdatedAt instanceof Date, 'vulnerabilitySourceUpdatedAt');
  assert.deepEqual(first.imageScanFindings?.findingSeverityCounts, severityCounts(data.expected));
  assert.equal(pages, Math.ceil(data.expected.length / 5), 'pages of five');
  assertBasicFindings(findings, data.expected, data.notExpected);

  // The AWS CLI's own pagination: --max-items stops early with a NextToken, --starting-token resumes.
  const cli = (args: string[]) => awsOk(ctx.server, ADMIN, ['ecr', 'describe-image-scan-findings', '--repository-name', repositoryName, '--image-id', `imageDigest=${image.digest}`, ...args]);
  const head = (await cli(['--page-size', '3', '--max-items', '7'])).json;
  assert.equal(head.imageScanFindings.findings.length, 7);
  assert.ok(head.NextToken, 'NextToken after --max-items');
  const rest = (await cli(['--page-size', '4', '--starting-token', head.NextToken])).json;
  const viaCli = [...head.imageScanFindings.findings, ...rest.imageScanFindings.findings] as Array<{ name: string; severity: string; attributes: Array<{ key: string; value: string }> }>;
  const cliKeys = viaCli.map((f) => basicKey(f.name, f.attributes.find((a) => a.key === 'package_name')?.value ?? '', f.attributes.find((a) => a.key === 'package_version')?.value ?? '', f.severity));
  assert.deepEqual(cliKeys.sort(), data.expected.map((e) => basicKey(e.name, e.package, e.version, e.severity)).sort(), 'the CLI pages hold every finding once');

  const described = await ecr.send(new DescribeImagesCommand({ repositoryName, imageIds: [{ imageDigest: image.digest }] }));
  const detail = described.imageDetails?.[0];
  assert.equal(detail?.imageScanStatus?.status, 'COMPLETE');
  assert.deepEqual(detail?.imageScanFindingsSummary?.findingSeverityCounts, severityCounts(data.expected));
});

// --- registry rules: BASIC scan on push with a wildcard filter, one image per ecosystem ------

let rulesCtx: Promise<Ctx & { data: Awaited<ReturnType<typeof languageData>> }> | undefined;
after(async () => {
  if (rulesCtx) await (await rulesCtx).close();
});

/** One server for the per-image tests: BASIC scanning, SCAN_ON_PUSH for repositories `scan-*`. */
function rulesServer() {
  rulesCtx ??= (async () => {
    const ctx = await scanServer();
    const data = await languageData(await goVersion());
    await ctx.importDb(data.files);
    await ctx.ecr.send(
      new PutRegistryScanningConfigurationCommand({ scanType: 'BASIC', rules: [{ scanFrequency: 'SCAN_ON_PUSH', repositoryFilters: [{ filter: 'scan-*', filterType: 'WILDCARD' }] }] }),
    );
    return { ...ctx, data };
  })();
  return rulesCtx;
}

async function scanWithRules(t: TestContext, build: (dir: string) => Promise<ScanImage>, key: keyof Awaited<ReturnType<typeof languageData>>['expected']): Promise<void> {
  if (!requireTools(t, ...BUILD_TOOLS)) return;
  const ctx = await rulesServer();
  const image = await build(await freshDir(key));
  const repositoryName = repoName('scan');
  await ctx.ecr.send(new CreateRepositoryCommand({ repositoryName }));
  await pushLayout(ctx.tools, ctx.host, image, repositoryName);
  const out = await waitForScan(ctx.ecr, repositoryName, image.digest);
  assert.equal(out.imageScanStatus?.status, 'COMPLETE', out.imageScanStatus?.description);
  const { findings } = await allFindings(ctx.ecr, repositoryName, image.digest);
  assertBasicFindings(findings, ctx.data.expected[key], ctx.data.notExpected[key]);
  assert.deepEqual(out.imageScanFindings?.findingSeverityCounts ?? {}, severityCounts(ctx.data.expected[key]));
}

test('registry rules: GetRegistryScanningConfiguration and BatchGetRepositoryScanningConfiguration report the wildcard rule', async (t) => {
  if (!requireTools(t, ...BUILD_TOOLS)) return;
  const { ecr } = await rulesServer();
  const got = await ecr.send(new GetRegistryScanningConfigurationCommand({}));
  assert.equal(got.registryId, ADMIN.accountId);
  assert.deepEqual(got.scanningConfiguration, { scanType: 'BASIC', rules: [{ scanFrequency: 'SCAN_ON_PUSH', repositoryFilters: [{ filter: 'scan-*', filterType: 'WILDCARD' }] }] });
  const matching = repoName('scan');
  const other = repoName('plain');
  for (const repositoryName of [matching, other]) await ecr.send(new CreateRepositoryCommand({ repositoryName }));
  const out = await ecr.send(new BatchGetRepositoryScanningConfigurationCommand({ repositoryNames: [matching, other] }));
  const byName = new Map(out.scanningConfigurations?.map((c) => [c.repositoryName, c]));
  assert.equal(byName.get(matching)?.scanOnPush, true);
  assert.equal(byName.get(matching)?.scanFrequency, 'SCAN_ON_PUSH');
  assert.deepEqual(byName.get(matching)?.appliedScanFilters, [{ filter: 'scan-*', filterType: 'WILDCARD' }]);
  assert.equal(byName.get(other)?.scanOnPush, false);
  assert.equal(byName.get(other)?.scanFrequency, 'MANUAL');
  assert.deepEqual(out.failures ?? [], []);
});

test('registry rules: an Alpine-style image pushed with podman to a matching repository is scanned; one pushed elsewhere is not', async (t) => {
  if (!requireTools(t, ...BUILD_TOOLS, 'podman')) return;
  const ctx = await rulesServer();
  const image = await alpineStyleImage(await freshDir('alpine'));
  const matching = repoName('scan');
  const other = repoName('plain');
  for (const repositoryName of [matching, other]) await ctx.ecr.send(new CreateRepositoryCommand({ repositoryName }));
  await ctx.tools.podman(['pull', '--quiet', `oci:${image.dir}:${image.tag}`]);
  const imageId = image.config.digest.slice('sha256:'.length);
  const pushed: Record<string, string> = {};
  for (const repositoryName of [other, matching]) {
    const ref = `${ctx.host}/${repositoryName}:v1`;
    await ctx.tools.podman(['tag', imageId, ref]);
    const digestFile = path.join(ctx.tools.dir, `${repositoryName.replace(/\W/g, '_')}.digest`);
    await ctx.tools.podman(['push', '--quiet', '--tls-verify=false', '--digestfile', digestFile, ref]);
    pushed[repositoryName] = (await readFile(digestFile, 'utf8')).trim();
  }
  const out = await waitForScan(ctx.ecr, matching, pushed[matching]!);
  assert.equal(out.imageScanStatus?.status, 'COMPLETE', out.imageScanStatus?.description);
  const { findings } = await allFindings(ctx.ecr, matching, pushed[matching]!);
  assertBasicFindings(findings, ctx.data.expected.alpine, ctx.data.notExpected.alpine);
  // Pushed first, to a repository no rule covers: never scanned.
  const err = await sdkError(ctx.ecr.send(new DescribeImageScanFindingsCommand({ repositoryName: other, imageId: { imageDigest: pushed[other]! } })));
  assert.equal(err.name, 'ScanNotFoundException');
  const described = await ctx.ecr.send(new DescribeImagesCommand({ repositoryName: other }));
  assert.equal(described.imageDetails?.[0]?.imageScanStatus, undefined, 'no scan status for an image never scanned');
});

test('rpm: a Rocky Linux 9.3 SQLite rpm database built with rpm gives exact findings (epochs, binary package names)', (t) => scanWithRules(t, rpmImage, 'rocky'));
test('npm: node_modules findings, scoped and nested packages, and the whited-out package is gone', (t) => scanWithRules(t, nodeAppImage, 'node'));
test('PyPI: dist-info and egg-info packages in a zstd layer, names normalised', (t) => scanWithRules(t, pythonImage, 'python'));
test('Go: a binary built with Debian Go: its module (real Go advisory) and stdlib findings', (t) => scanWithRules(t, goBinaryImage, 'go'));
test('Maven: a jar and the jar nested in it', (t) => scanWithRules(t, jarImage, 'jar'));
test('crates.io: Cargo.lock and cargo-auditable data in an ELF', (t) => scanWithRules(t, rustImage, 'rust'));

test('whiteout: the node app without its second layer still has minimist, and its finding', async (t) => {
  if (!requireTools(t, ...BUILD_TOOLS)) return;
  const ctx = await rulesServer();
  const image = await nodeAppImage(await freshDir('node-one-layer'), { withoutWhiteout: true });
  const repositoryName = repoName('scan');
  await ctx.ecr.send(new CreateRepositoryCommand({ repositoryName }));
  await pushLayout(ctx.tools, ctx.host, image, repositoryName);
  const out = await waitForScan(ctx.ecr, repositoryName, image.digest);
  assert.equal(out.imageScanStatus?.status, 'COMPLETE', out.imageScanStatus?.description);
  const { findings } = await allFindings(ctx.ecr, repositoryName, image.digest);
  assertBasicFindings(findings, ctx.data.nodeBeforeWhiteout, [{ name: 'CVE-2099-5005', package: 'express', why: 'fixed in 4.17.0, below 4.17.1' }]);
});

// --- manual scans, quota, unsupported artifacts, per-platform index scans -------------------

test('StartImageScan scans an image once; a second request within the quota is LimitExceededException', async (t) => {
  const ctx = await setup(t);
  if (!ctx) return;
  const data = await languageData(await goVersion());
  await ctx.importDb(data.files);
  const image = await rpmImage(await freshDir('rpm-manual'));
  const repositoryName = repoName('manual');
  await ctx.ecr.send(new CreateRepositoryCommand({ repositoryName }));
  await pushLayout(ctx.tools, ctx.host, image, repositoryName, 'v1');
  const before = await sdkError(ctx.ecr.send(new DescribeImageScanFindingsCommand({ repositoryName, imageId: { imageTag: 'v1' } })));
  assert.equal(before.name, 'ScanNotFoundException', 'no scan on push without a rule or the repository setting');

  const started = await ctx.ecr.send(new StartImageScanCommand({ repositoryName, imageId: { imageTag: 'v1' } }));
  assert.equal(started.imageId?.imageDigest, image.digest);
  assert.equal(started.repositoryName, repositoryName);
  assert.ok(['IN_PROGRESS', 'PENDING', 'COMPLETE'].includes(started.imageScanStatus?.status ?? ''), `StartImageScan status ${started.imageScanStatus?.status}`);
  const out = await waitForScan(ctx.ecr, repositoryName, image.digest);
  assert.equal(out.imageScanStatus?.status, 'COMPLETE', out.imageScanStatus?.description);
  assertBasicFindings((await allFindings(ctx.ecr, repositoryName, image.digest)).findings, data.expected.rocky, data.notExpected.rocky);

  const again = await sdkError(ctx.ecr.send(new StartImageScanCommand({ repositoryName, imageId: { imageDigest: image.digest } })));
  assert.equal(again.name, 'LimitExceededException');
  assert.equal(again.status, 400);
});

test('StartImageScan of an OCI artifact is UnsupportedImageTypeException', async (t) => {
  const ctx = await setup(t);
  if (!ctx) return;
  const repositoryName = repoName('artifact');
  await ctx.ecr.send(new CreateRepositoryCommand({ repositoryName }));
  const empty = blob('{}');
  const payload = blob('an SBOM, say, and nothing a scanner reads\n');
  for (const b of [empty, payload]) await pushBlob(ctx.server.baseUrl, repositoryName, b);
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: MT.ociManifest,
      artifactType: 'application/vnd.example.berth.test+text',
      config: { mediaType: MT.ociEmpty, digest: empty.digest, size: empty.bytes.length },
      layers: [{ mediaType: 'text/plain', digest: payload.digest, size: payload.bytes.length }],
    }),
  );
  const res = await pushManifest(ctx.server.baseUrl, repositoryName, 'sbom', manifest, MT.ociManifest);
  assert.equal(res.status, 201);
  const err = await sdkError(ctx.ecr.send(new StartImageScanCommand({ repositoryName, imageId: { imageTag: 'sbom' } })));
  assert.equal(err.name, 'UnsupportedImageTypeException');
  assert.equal(err.status, 400);
});

test('an index is scanned per platform: busybox (amd64) and the Alpine-style image (arm64)', async (t) => {
  const ctx = await setup(t);
  if (!ctx) return;
  const data = await languageData(await goVersion());
  await ctx.importDb(data.files);
  const dir = await freshDir('multi');
  const amd64 = await busyboxImage(dir, { tag: 'amd64' });
  const arm64 = await alpineStyleImage(dir, { tag: 'arm64', platform: { os: 'linux', architecture: 'arm64', variant: 'v8' } });
  const index = await multiArchIndex(dir, [amd64, arm64]);
  const repositoryName = repoName('multi');
  await ctx.ecr.send(new CreateRepositoryCommand({ repositoryName }));
  await ctx.ecr.send(new PutImageScanningConfigurationCommand({ repositoryName, imageScanningConfiguration: { scanOnPush: true } }));
  await pushLayout(ctx.tools, ctx.host, index, repositoryName);

  const arm = await waitForScan(ctx.ecr, repositoryName, arm64.digest);
  assert.equal(arm.imageScanStatus?.status, 'COMPLETE', arm.imageScanStatus?.description);
  assertBasicFindings((await allFindings(ctx.ecr, repositoryName, arm64.digest)).findings, data.expected.alpine, data.notExpected.alpine);
  const amd = await waitForScan(ctx.ecr, repositoryName, amd64.digest);
  // busybox has no OS release file and no package database: ECR's answer for such an image.
  assert.equal(amd.imageScanStatus?.status, 'UNSUPPORTED_IMAGE', amd.imageScanStatus?.description);
  assert.match(amd.imageScanStatus?.description ?? '', /^UnsupportedImageError: The operating system and\/or package manager are not supported\./);
  assert.equal(amd.imageScanFindings, undefined);
  // The index's own scan is its platform images': the Alpine image's findings, nothing for busybox.
  const whole = await waitForScan(ctx.ecr, repositoryName, index.digest);
  assert.equal(whole.imageScanStatus?.status, 'COMPLETE', whole.imageScanStatus?.description);
  const findings = await allFindings(ctx.ecr, repositoryName, index.digest);
  assertBasicFindings(findings.findings, data.expected.alpine, data.notExpected.alpine);
});

// --- the database: missing, too old, a new import under continuous scanning ----------------

test('with no vulnerability database a scan is FAILED, and its description says why', async (t) => {
  const ctx = await setup(t);
  if (!ctx) return;
  const image = await alpineStyleImage(await freshDir('alpine-nodb'));
  const repositoryName = repoName('nodb');
  await ctx.ecr.send(new CreateRepositoryCommand({ repositoryName, imageScanningConfiguration: { scanOnPush: true } }));
  await pushLayout(ctx.tools, ctx.host, image, repositoryName);
  const out = await waitForScan(ctx.ecr, repositoryName, image.digest);
  assert.equal(out.imageScanStatus?.status, 'FAILED');
  assert.match(out.imageScanStatus?.description ?? '', /vulnerability database/i);
  assert.match(out.imageScanStatus?.description ?? '', /vulndb import/);
  assert.deepEqual(out.imageScanFindings?.findings ?? [], []);
  const described = await ctx.ecr.send(new DescribeImagesCommand({ repositoryName }));
  assert.equal(described.imageDetails?.[0]?.imageScanStatus?.status, 'FAILED');
});

test('a database older than scan.maxDatabaseAgeDays fails the scan, saying how old it is', async (t) => {
  const ctx = await setup(t, { BERTH_SCAN_MAX_DATABASE_AGE_DAYS: '30' });
  if (!ctx) return;
  const data = await languageData(await goVersion(), { modifiedAt: new Date(Date.now() - 60 * DAY_MS) });
  await ctx.importDb(data.files);
  const image = await alpineStyleImage(await freshDir('alpine-old'));
  const repositoryName = repoName('olddb');
  await ctx.ecr.send(new CreateRepositoryCommand({ repositoryName, imageScanningConfiguration: { scanOnPush: true } }));
  await pushLayout(ctx.tools, ctx.host, image, repositoryName);
  const out = await waitForScan(ctx.ecr, repositoryName, image.digest);
  assert.equal(out.imageScanStatus?.status, 'FAILED');
  assert.match(out.imageScanStatus?.description ?? '', /vulnerability database/i);
  assert.match(out.imageScanStatus?.description ?? '', /\b(60|59) days\b/);
});

test('berth vulndb status lists each imported source with its records', async (t) => {
  const ctx = await setup(t);
  if (!ctx) return;
  const data = await languageData(await goVersion());
  await ctx.importDb(data.files);
  const status = await runBerth(ctx.server, ['vulndb', 'status']);
  for (const source of ['osv:Alpine', 'osv:Rocky Linux', 'osv:npm', 'osv:PyPI', 'osv:Go', 'osv:Maven', 'osv:crates.io']) assert.ok(status.includes(source), `${source} in:\n${status}`);
  // A source taken out is gone from the status at once.
  await runBerth(ctx.server, ['vulndb', 'remove', 'osv:PyPI']);
  const after = JSON.parse(await runBerth(ctx.server, ['vulndb', 'status'])) as { sources: Array<{ name: string }> };
  assert.deepEqual(after.sources.map((s) => s.name).sort(), ['osv:Alpine', 'osv:Go', 'osv:Maven', 'osv:Rocky Linux', 'osv:crates.io', 'osv:npm'].sort());
});

test('ENHANCED continuous scanning: Inspector-shaped findings, and a new database import adds a finding without a new push', async (t) => {
  const ctx = await setup(t);
  if (!ctx) return;
  const version = await goVersion();
  const data = await languageData(version);
  await ctx.importDb(data.files);
  const rules = { scanType: 'ENHANCED' as const, rules: [{ scanFrequency: 'CONTINUOUS_SCAN' as const, repositoryFilters: [{ filter: 'cont-*', filterType: 'WILDCARD' as const }] }] };
  const put = await ctx.ecr.send(new PutRegistryScanningConfigurationCommand(rules));
  assert.deepEqual(put.registryScanningConfiguration, rules);
  const repositoryName = repoName('cont');
  await ctx.ecr.send(new CreateRepositoryCommand({ repositoryName }));
  const repoConfig = await ctx.ecr.send(new BatchGetRepositoryScanningConfigurationCommand({ repositoryNames: [repositoryName] }));
  assert.equal(repoConfig.scanningConfigurations?.[0]?.scanFrequency, 'CONTINUOUS_SCAN');
  assert.equal(repoConfig.scanningConfigurations?.[0]?.scanOnPush, true);

  const image = await nodeAppImage(await freshDir('node-cont'));
  await pushLayout(ctx.tools, ctx.host, image, repositoryName);
  // By default (scan.continuousStatus COMPLETE) the waiter works for continuous scans too.
  const waited = await run(AWS_CLI, ['--endpoint-url', ctx.server.baseUrl, 'ecr', 'wait', 'image-scan-complete', '--repository-name', repositoryName, '--image-id', `imageDigest=${image.digest}`], {
    env: await awsEnv(ADMIN),
    timeoutMs: 300_000,
    allowFailure: true,
  });
  assert.equal(waited.code, 0, `aws ecr wait image-scan-complete: ${waited.stderr}`);
  const first = await waitForScan(ctx.ecr, repositoryName, image.digest);
  assert.equal(first.imageScanStatus?.status, 'COMPLETE', first.imageScanStatus?.description);
  const scanned = await allFindings(ctx.ecr, repositoryName, image.digest);
  assert.deepEqual(scanned.findings, [], 'no basic findings under enhanced scanning');
  assertEnhancedFindings(scanned.enhanced, data.expected.node, { repositoryName, digest: image.digest });
  assert.deepEqual(first.imageScanFindings?.findingSeverityCounts, severityCounts(data.expected.node, true));
  const pushedAt = (await ctx.ecr.send(new DescribeImagesCommand({ repositoryName }))).imageDetails?.[0]?.imagePushedAt;

  // A newer npm export with one more lodash advisory: the image gains it, nothing pushed.
  const newer = await languageData(version, { extraNpm: true });
  await ctx.importDb(newer.files.filter((f) => path.basename(path.dirname(f)) === 'npm'));
  const added = newer.expected.node.find((e) => e.name === 'CVE-2099-5006')!;
  await waitForScan(ctx.ecr, repositoryName, image.digest, (out) => (out.imageScanFindings?.enhancedFindings ?? []).some((f) => f.packageVulnerabilityDetails?.vulnerabilityId === added.name));
  const rescanned = await allFindings(ctx.ecr, repositoryName, image.digest);
  assertEnhancedFindings(rescanned.enhanced, newer.expected.node, { repositoryName, digest: image.digest });
  const details = (await ctx.ecr.send(new DescribeImagesCommand({ repositoryName }))).imageDetails!;
  assert.equal(details.length, 1, 'still the one image');
  assert.deepEqual(details[0]?.imagePushedAt, pushedAt);
  assert.deepEqual(details[0]?.imageScanFindingsSummary?.findingSeverityCounts, severityCounts(newer.expected.node, true));
});

test('scan.continuousStatus ACTIVE: a continuously scanned image reports ACTIVE, as ECR’s enhanced scanning does; one scanned on push only, COMPLETE', async (t) => {
  const ctx = await setup(t, { BERTH_SCAN_CONTINUOUS_STATUS: 'ACTIVE' });
  if (!ctx) return;
  const data = await languageData(await goVersion());
  await ctx.importDb(data.files);
  await ctx.ecr.send(
    new PutRegistryScanningConfigurationCommand({
      scanType: 'ENHANCED',
      rules: [
        { scanFrequency: 'CONTINUOUS_SCAN', repositoryFilters: [{ filter: 'cont-*', filterType: 'WILDCARD' }] },
        { scanFrequency: 'SCAN_ON_PUSH', repositoryFilters: [{ filter: 'push-*', filterType: 'WILDCARD' }] },
      ],
    }),
  );
  const image = await nodeAppImage(await freshDir('node-active'));
  const statuses: Record<string, string | undefined> = {};
  for (const prefix of ['cont', 'push']) {
    const repositoryName = repoName(prefix);
    await ctx.ecr.send(new CreateRepositoryCommand({ repositoryName }));
    await pushLayout(ctx.tools, ctx.host, image, repositoryName);
    const out = await waitForScan(ctx.ecr, repositoryName, image.digest);
    statuses[prefix] = out.imageScanStatus?.status;
    const described: DescribeImagesCommandOutput = await ctx.ecr.send(new DescribeImagesCommand({ repositoryName }));
    const listed = described.imageDetails?.[0];
    assert.equal(listed?.imageScanStatus?.status, out.imageScanStatus?.status, 'DescribeImages says the same');
    assert.deepEqual(listed?.imageScanFindingsSummary?.findingSeverityCounts, severityCounts(data.expected.node, true));
    if (prefix === 'cont') assert.equal(out.imageScanStatus?.description, 'Continuous scan is selected for image.');
  }
  assert.deepEqual(statuses, { cont: 'ACTIVE', push: 'COMPLETE' });
});

test('straight after a push, before the scan-on-push consumer has read it, the image is IN_PROGRESS, not ScanNotFoundException', async (t) => {
  // This node does not scan (another node of a cluster would): its consumer never reads the push.
  const ctx = await setup(t, { BERTH_SCAN_ENABLED: 'false' });
  if (!ctx) return;
  const image = await nodeAppImage(await freshDir('node-unread'));
  const scanned = repoName('unread');
  const unscanned = repoName('unscanned');
  await ctx.ecr.send(new CreateRepositoryCommand({ repositoryName: scanned, imageScanningConfiguration: { scanOnPush: true } }));
  await ctx.ecr.send(new CreateRepositoryCommand({ repositoryName: unscanned }));
  await pushLayout(ctx.tools, ctx.host, image, scanned);
  await pushLayout(ctx.tools, ctx.host, image, unscanned);
  const out = await ctx.ecr.send(new DescribeImageScanFindingsCommand({ repositoryName: scanned, imageId: { imageDigest: image.digest } }));
  assert.deepEqual(out.imageScanStatus, { status: 'IN_PROGRESS', description: 'The image was pushed and its scan is starting.' });
  assert.equal(out.imageScanFindings, undefined);
  // A repository that does not scan on push has no scan coming.
  const err = await sdkError(ctx.ecr.send(new DescribeImageScanFindingsCommand({ repositoryName: unscanned, imageId: { imageDigest: image.digest } })));
  assert.equal(err.name, 'ScanNotFoundException');
});
