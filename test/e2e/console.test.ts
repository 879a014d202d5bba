import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, test, type TestContext } from 'node:test';
import { CreateRepositoryCreationTemplateCommand, DescribeImageScanFindingsCommand, type ECRClient } from '@aws-sdk/client-ecr';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { ADMIN } from '../support/auth.ts';
import { aws, awsFails, awsOk, ecrClient, requireAwsCli } from '../support/aws.ts';
import { fetchWithCookies, launchBrowser, newPage, screenshot, sessionCookie, signIn, type ConsoleUser, type PageProblems } from '../support/browser.ts';
import { blob, buildImage, MT, pushBlob, pushImage, pushManifest, sha256, waitFor } from '../support/oci.ts';
import { alpineStyleImage } from '../support/scan-images.ts';
import { runBerth, startServer, type TestServer } from '../support/server.ts';
import { requireTools, toolSandbox } from '../support/tools.ts';
import { CVSS, fixedRange, osvRecord, writeOsvZip } from '../support/vulndata.ts';

/**
 * The web console in a real browser (Debian's Chromium driven by playwright-core), against one
 * server for the file, set up with the AWS CLI as an administrator would: IAM users with console
 * passwords, repositories, images pushed with podman and scanned. The flows are a person's:
 * sign in, find a repository, copy an image URI, read and filter scan findings, build a
 * lifecycle policy and preview it, save a repository policy; a read-only user who cannot
 * delete; hostile text that stays text; keyboard, labels and a phone-sized screen; sign out.
 * Screenshots of the main pages go to test-results/console/.
 */

const ACCOUNT = ADMIN.accountId;
const ALICE: ConsoleUser = { accountId: ACCOUNT, userName: 'alice', password: `Alice-${randomBytes(6).toString('hex')}-pw1!` };
const BOB: ConsoleUser = { accountId: ACCOUNT, userName: 'bob', password: `Bob-${randomBytes(6).toString('hex')}-pw2!` };

/** Text an attacker controls, in every place the console shows such text. */
const HOSTILE = ['</textarea><script>window.__pwned=1</script>', '<img src=x onerror="window.__pwned=2">', `"'><svg onload="window.__pwned=3">`] as const;
const HOSTILE_TEXT = HOSTILE.join(' ');
/** How the raw HTML must spell them: escaped, never as markup. */
const ESCAPED = ['&lt;/textarea&gt;&lt;script&gt;window.__pwned=1&lt;/script&gt;', '&lt;img src=x onerror=', '&lt;svg onload='];
const RAW = ['<script>window.__pwned', '<img src=x', '<svg onload'];

let server: TestServer;
let host: string;
let browser: Browser;
let ecr: ECRClient;
let workDir: string;
/** Every URL any page of the file requested: no secret may be in one. */
const requested: string[] = [];
/** Session cookies seen, to look for in URLs. */
const sessionIds = new Set<string>();

const suffix = () => randomBytes(4).toString('hex');
const admin = (args: string[]) => awsOk(server, ADMIN, args);

before(async () => {
  requireAwsCli();
  browser = await launchBrowser();
  // Lowercase only: podman names an image pulled from oci:DIR after DIR.
  workDir = path.join(tmpdir(), `berth-console-${randomBytes(6).toString('hex')}`);
  await mkdir(workDir, { recursive: true });
  server = await startServer({ env: { BERTH_SCAN_POLL_INTERVAL_MS: '100' } });
  host = `127.0.0.1:${server.port}`;
  ecr = ecrClient(server, ADMIN);
  // The administrator gives alice the run of the account and bob read access to images, with console passwords.
  await admin(['iam', 'create-user', '--user-name', 'alice']);
  await admin(['iam', 'attach-user-policy', '--user-name', 'alice', '--policy-arn', 'arn:aws:iam::aws:policy/AdministratorAccess']);
  await admin(['iam', 'create-login-profile', '--user-name', 'alice', '--password', ALICE.password]);
  await admin(['iam', 'create-user', '--user-name', 'bob']);
  await admin(['iam', 'attach-user-policy', '--user-name', 'bob', '--policy-arn', 'arn:aws:iam::aws:policy/AmazonEC2ContainerRegistryReadOnly']);
  await admin(['iam', 'create-login-profile', '--user-name', 'bob', '--password', BOB.password]);
  // Vulnerability data for the Alpine-style image (scan-images.ts): a HIGH and a MEDIUM finding.
  const alpine = 'Alpine:v3.20';
  const zip = await writeOsvZip(workDir, 'Alpine', [
    osvRecord('ALPINE-CVE-2099-3001', 'CVE-2099-3001', 'openssl: key recovery', [{ package: { ecosystem: alpine, name: 'openssl' }, ranges: fixedRange('ECOSYSTEM', '3.3.2-r0') }], CVSS.high75, new Date()),
    osvRecord('ALPINE-CVE-2099-3002', 'CVE-2099-3002', 'busybox: awk overflow', [{ package: { ecosystem: alpine, name: 'busybox' }, ranges: fixedRange('ECOSYSTEM', '1.36.1-r30') }], CVSS.medium54, new Date()),
  ]);
  await runBerth(server, ['vulndb', 'import', zip]);
});

after(async () => {
  await browser?.close();
  await server?.close();
  if (workDir) await rm(workDir, { recursive: true, force: true });
  // Last: no password and no session id ever travelled in a URL.
  for (const url of requested) {
    for (const secret of [ALICE.password, BOB.password, ...sessionIds]) {
      assert.ok(!url.includes(secret) && !url.includes(encodeURIComponent(secret)), `a secret in the URL ${url}`);
    }
  }
});

interface Visit {
  context: BrowserContext;
  page: Page;
  problems: PageProblems;
}

/** A fresh browser context; closed after the test, which fails if a page reported a script error or a CSP violation. */
async function visit(t: TestContext, options: Parameters<typeof newPage>[1] = {}): Promise<Visit> {
  const v = await newPage(browser, options);
  v.page.on('request', (r) => requested.push(r.url()));
  t.after(async () => {
    const id = await sessionCookie(v.context, server.baseUrl);
    if (id) sessionIds.add(id);
    await v.context.close();
    assert.deepEqual(v.problems.list, [], 'no script errors or CSP violations');
  });
  return v;
}

/** A signed-in browser (the sign-in form filled in, as a person does). */
async function as(t: TestContext, user: ConsoleUser, options: Parameters<typeof newPage>[1] = {}): Promise<Visit> {
  const v = await visit(t, options);
  await signIn(v.page, server.baseUrl, user);
  const id = await sessionCookie(v.context, server.baseUrl);
  assert.ok(id, 'a session cookie');
  sessionIds.add(id);
  return v;
}

const url = (p: string) => new URL(p, server.baseUrl).toString();
const repoUrl = (name: string, sub = '') => url(`/console/repos/${name}${sub ? `/-/${sub}` : ''}`);

/** The page's alert or status notices, as text. */
async function notices(page: Page): Promise<string[]> {
  return page.locator('main .notice').allInnerTexts();
}

/** Pushes small images by HTTP, in order (so that their push times are in that order); resolves their digests. */
async function pushSeveral(repository: string, references: Array<string | undefined>): Promise<string[]> {
  const digests: string[] = [];
  for (const reference of references) {
    const image = buildImage({ layerBytes: 256 });
    digests.push(await pushImage(server.baseUrl, repository, image, reference ?? image.digest));
  }
  return digests;
}

// --- 1. sign in ---------------------------------------------------------------------------------

test('alice opens / in the browser, is sent to sign in, and signs in with account, user name and password', async (t) => {
  const { page, context } = await visit(t);
  const response = await page.goto(url('/'));
  assert.equal(response?.status(), 200);
  assert.equal(new URL(page.url()).pathname, '/console/signin', 'GET / of a browser lands on the sign-in page');
  await page.getByRole('heading', { name: 'Sign in to Berth' }).waitFor();
  assert.equal(await page.getByLabel('Account ID or alias').inputValue(), ACCOUNT, 'the account is filled in');
  await screenshot(page, 'signin');

  await page.getByLabel('Account ID or alias').fill(ACCOUNT);
  await page.getByLabel('IAM user name').fill('alice');
  await page.getByLabel('Password', { exact: true }).fill(ALICE.password);
  await Promise.all([page.waitForURL('**/console/repositories'), page.getByRole('button', { name: 'Sign in' }).click()]);
  await page.getByRole('heading', { name: 'Repositories', level: 1 }).waitFor();
  assert.equal(await page.locator('header .who a').innerText(), `alice @ ${ACCOUNT}`);
  assert.equal(await page.getByRole('link', { name: 'Repositories' }).first().getAttribute('aria-current'), 'page');
  // The cookie is out of reach of scripts.
  assert.equal(await page.evaluate('document.cookie'), '');
  const cookie = (await context.cookies(url('/console/'))).find((c) => c.name === 'berth_session');
  assert.equal(cookie?.httpOnly, true);
  assert.equal(cookie?.sameSite, 'Strict');
});

// --- 2. find, copy, findings ---------------------------------------------------------------------

test('alice finds a scanned repository with the search box, copies an image URI and filters its scan findings by severity', async (t) => {
  if (!requireTools(t, 'podman')) return;
  const repository = `shop-${suffix()}/web`;
  await admin(['ecr', 'create-repository', '--repository-name', repository, '--image-scanning-configuration', 'scanOnPush=true']);
  // Another repository, which the search must leave out.
  await admin(['ecr', 'create-repository', '--repository-name', `other-${suffix()}/web`]);
  const tools = await toolSandbox();
  t.after(() => tools.close());
  await tools.login(host);
  const imageDir = path.join(workDir, `alpine-${suffix()}`);
  await mkdir(imageDir);
  const image = await alpineStyleImage(imageDir);
  await tools.podman(['pull', '--quiet', `oci:${image.dir}:${image.tag}`]);
  const ref = `${host}/${repository}:v1`;
  await tools.podman(['tag', image.config.digest.slice('sha256:'.length), ref]);
  const digestFile = path.join(tools.dir, 'pushed.digest');
  await tools.podman(['push', '--quiet', '--tls-verify=false', '--digestfile', digestFile, ref]);
  const digest = (await readFile(digestFile, 'utf8')).trim();
  const scanned = await waitFor(
    async () => {
      try {
        const out = await ecr.send(new DescribeImageScanFindingsCommand({ repositoryName: repository, imageId: { imageDigest: digest } }));
        return ['IN_PROGRESS', 'PENDING'].includes(out.imageScanStatus?.status ?? 'PENDING') ? undefined : out;
      } catch (err) {
        if ((err as Error).name === 'ScanNotFoundException') return undefined;
        throw err;
      }
    },
    { timeoutMs: 180_000, intervalMs: 200, what: `the scan of ${repository}@${digest}` },
  );
  assert.equal(scanned.imageScanStatus?.status, 'COMPLETE', scanned.imageScanStatus?.description);

  const { page, context } = await as(t, ALICE);
  await context.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: server.baseUrl });
  await page.goto(url('/console/repositories'));
  await page.getByLabel('Find repositories').fill(repository.slice(0, 'shop-'.length + 8));
  await Promise.all([page.waitForURL(/[?&]q=shop-/), page.getByRole('button', { name: 'Search' }).click()]);
  const rows = page.locator('table tbody tr');
  assert.equal(await rows.count(), 1, 'only the matching repository');
  assert.match(await page.locator('table caption').innerText(), /^1 repository matching/);
  await screenshot(page, 'repositories');
  await Promise.all([page.waitForURL(repoUrl(repository)), rows.getByRole('link', { name: repository }).click()]);

  // The images page: the image with its tag, and a Copy button holding HOST/REPO@DIGEST.
  const row = page.locator('table.images tbody tr', { has: page.locator('.tag', { hasText: /^v1$/ }) });
  assert.equal(await row.count(), 1);
  assert.match(await row.innerText(), /High 1/);
  const copy = row.getByRole('button', { name: /^Copy the URI of/ });
  assert.equal(await copy.getAttribute('data-copy'), `${host}/${repository}@${digest}`);
  await screenshot(page, 'images');
  await copy.click();
  await page.waitForFunction((el) => (el as { textContent: string | null }).textContent === 'Copied', await copy.elementHandle(), { timeout: 10_000 });
  assert.equal(await page.evaluate('navigator.clipboard.readText()'), `${host}/${repository}@${digest}`, 'the URI is on the clipboard');

  // The image: overview, then its scan findings, then only the HIGH ones.
  await Promise.all([page.waitForURL(/\/-\/image\//), row.getByRole('link', { name: digest.slice(0, 'sha256:'.length + 12) }).click()]);
  assert.match(await page.locator('dl.facts').innerText(), new RegExp(`${host}/${repository}@${digest}`));
  await screenshot(page, 'image-overview');
  await Promise.all([page.waitForURL(/tab=findings/), page.getByRole('link', { name: 'Scan findings' }).click()]);
  const findings = page.locator('table.findings tbody tr');
  assert.deepEqual((await findings.locator('th').allInnerTexts()).sort(), ['CVE-2099-3001', 'CVE-2099-3002']);
  assert.match(await page.locator('table.findings caption').innerText(), /^2 of 2 findings/);
  await screenshot(page, 'findings');
  await page.getByLabel('Severity').selectOption('HIGH');
  await Promise.all([page.waitForURL(/severity=HIGH/), page.getByRole('button', { name: 'Filter' }).click()]);
  assert.equal(await findings.count(), 1);
  const high = await findings.first().locator('th, td').allInnerTexts();
  assert.deepEqual(high.slice(0, 4), ['CVE-2099-3001', 'HIGH', 'libcrypto3', '3.3.1-r0']);
  assert.match(await page.locator('table.findings caption').innerText(), /^1 of 2 findings/);
  assert.equal(await page.getByLabel('Severity').inputValue(), 'HIGH', 'the filter stays chosen');
});

// --- 3. lifecycle ---------------------------------------------------------------------------------

test('alice builds a lifecycle policy with the rule builder, previews what it would expire, and saves it', async (t) => {
  const repository = `builds-${suffix()}/app`;
  await admin(['ecr', 'create-repository', '--repository-name', repository]);
  // Oldest first: three untagged builds, two tagged builds, a release.
  const [u1, u2, u3, b1, b2, r1] = await pushSeveral(repository, [undefined, undefined, undefined, 'build-1', 'build-2', 'release-1']);
  void [u3, b2, r1];

  const { page } = await as(t, ALICE);
  await page.goto(repoUrl(repository));
  await Promise.all([page.waitForURL(repoUrl(repository, 'lifecycle')), page.getByRole('link', { name: 'Lifecycle policy' }).click()]);
  assert.match(await page.locator('main').innerText(), /This repository has no lifecycle policy/);

  // Rule 1: untagged images, keep the newest one.
  const builder = page.locator('form', { has: page.getByRole('button', { name: 'Add rule to the policy' }) });
  assert.equal(await builder.getByLabel('Rule priority').inputValue(), '1');
  await builder.getByLabel('Description').fill('Untagged: keep the newest');
  await builder.getByLabel('Images', { exact: true }).selectOption('untagged');
  await builder.getByLabel('Expire', { exact: true }).selectOption('imageCountMoreThan');
  await builder.getByLabel('N', { exact: true }).fill('1');
  await builder.getByRole('button', { name: 'Add rule to the policy' }).click();
  await page.getByText('Rule 1 is in the editor.').waitFor();
  // Rule 2: tagged build-* images, keep the newest one.
  assert.equal(await builder.getByLabel('Rule priority').inputValue(), '2', 'the next free priority');
  await builder.getByLabel('Description').fill('Builds: keep the newest');
  await builder.getByLabel('Images', { exact: true }).selectOption('tagged');
  await builder.getByLabel(/^Tag patterns/).fill('build-*');
  await builder.getByLabel('N', { exact: true }).fill('1');
  await builder.getByRole('button', { name: 'Add rule to the policy' }).click();
  await page.getByText('Rule 2 is in the editor.').waitFor();
  const editor = page.getByLabel('Lifecycle policy (JSON)');
  const policy = JSON.parse(await editor.inputValue()) as { rules: unknown[] };
  assert.deepEqual(policy, {
    rules: [
      { rulePriority: 1, description: 'Untagged: keep the newest', selection: { tagStatus: 'untagged', countType: 'imageCountMoreThan', countNumber: 1 }, action: { type: 'expire' } },
      { rulePriority: 2, description: 'Builds: keep the newest', selection: { tagStatus: 'tagged', tagPatternList: ['build-*'], countType: 'imageCountMoreThan', countNumber: 1 }, action: { type: 'expire' } },
    ],
  });

  // Preview: the older untagged images under rule 1, build-1 under rule 2.
  await page.getByRole('button', { name: 'Preview' }).click();
  const preview = page.locator('#preview');
  await page.locator('#preview table, main .notice.error').first().waitFor({ timeout: 90_000 });
  assert.deepEqual(await page.locator('main .notice.error').allInnerTexts(), [], 'no error');
  assert.match(await preview.innerText(), /3 image\(s\) would expire/);
  const headings = await preview.locator('h4').allInnerTexts();
  assert.deepEqual(headings, ['Rule 1: Untagged: keep the newest · 2 image(s)', 'Rule 2: Builds: keep the newest · 1 image(s)']);
  const linked = async (n: number) => (await preview.locator('table').nth(n).locator('a').evaluateAll((as) => as.map((a) => decodeURIComponent((a as unknown as { getAttribute(n: string): string }).getAttribute('href')).split('/-/image/')[1]))).sort();
  assert.deepEqual(await linked(0), [u1, u2].sort());
  assert.deepEqual(await linked(1), [b1]);
  assert.match(await preview.locator('table').nth(1).innerText(), /build-1/);
  await screenshot(page, 'lifecycle-preview');

  // Save; the AWS CLI reads back the same policy.
  await Promise.all([page.waitForURL(/saved=1/), page.getByRole('button', { name: 'Save policy' }).click()]);
  assert.match((await notices(page)).join('\n'), /The lifecycle policy is saved/);
  const got = await admin(['ecr', 'get-lifecycle-policy', '--repository-name', repository]);
  assert.deepEqual(JSON.parse(got.json.lifecyclePolicyText), policy);
  assert.deepEqual(JSON.parse(await editor.inputValue()), policy, 'the editor shows the saved policy');
  assert.match(await page.locator('main').innerText(), /A lifecycle policy is in force/);
});

// --- 4. repository policy ---------------------------------------------------------------------------

test('an invalid repository policy shows the API’s message and saves nothing; a valid one is saved', async (t) => {
  const repository = `policy-${suffix()}/app`;
  await admin(['ecr', 'create-repository', '--repository-name', repository]);
  const invalid = '{"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": "*", "Action": "ecr:BatchGetImage"}';
  // What the API says about it, as the AWS CLI reports it.
  const cli = await awsFails(server, ADMIN, ['ecr', 'set-repository-policy', '--repository-name', repository, '--policy-text', invalid]);
  const apiMessage = /\): (.*)$/m.exec(cli.stderr.trim())?.[1];
  assert.ok(apiMessage, cli.stderr);

  const { page } = await as(t, ALICE);
  await page.goto(repoUrl(repository, 'settings'));
  const editor = page.getByLabel(/^Policy \(JSON\)/);
  assert.equal(await editor.inputValue(), '');
  await editor.fill(invalid);
  const [response] = await Promise.all([page.waitForResponse((r) => r.request().method() === 'POST'), page.getByRole('button', { name: 'Save policy' }).click()]);
  assert.equal(response.status(), 400);
  await page.locator('main .notice').first().waitFor();
  const said = (await notices(page)).join('\n');
  assert.match(said, /The policy was not saved/);
  assert.ok(said.includes(apiMessage), `the API's message (${apiMessage}) in: ${said}`);
  assert.equal(await editor.inputValue(), invalid, 'the draft is kept for fixing');
  assert.equal((await aws(server, ADMIN, ['ecr', 'get-repository-policy', '--repository-name', repository])).errorCode, 'RepositoryPolicyNotFoundException');

  const valid = { Version: '2012-10-17', Statement: [{ Sid: 'PullFromCi', Effect: 'Allow', Principal: { AWS: `arn:aws:iam::${ACCOUNT}:user/bob` }, Action: ['ecr:BatchGetImage', 'ecr:GetDownloadUrlForLayer'] }] };
  await editor.fill(JSON.stringify(valid));
  await Promise.all([page.waitForURL(/saved=/), page.getByRole('button', { name: 'Save policy' }).click()]);
  assert.match((await notices(page)).join('\n'), /Repository policy saved/);
  const got = await admin(['ecr', 'get-repository-policy', '--repository-name', repository]);
  assert.deepEqual(JSON.parse(got.json.policyText), valid);
  assert.deepEqual(JSON.parse(await editor.inputValue()), valid, 'the editor shows the saved policy');
  await screenshot(page, 'repository-settings');
});

// --- 5. a read-only user ----------------------------------------------------------------------------

test('bob (read-only) sees no Delete button; a forged delete with his own CSRF token is refused and the image stays', async (t) => {
  const repository = `readonly-${suffix()}/app`;
  await admin(['ecr', 'create-repository', '--repository-name', repository]);
  const [digest] = await pushSeveral(repository, ['v1']);

  const { page } = await as(t, BOB);
  await page.goto(repoUrl(repository));
  await page.locator('table.images tbody tr').first().waitFor();
  assert.equal(await page.getByRole('button', { name: 'Delete selected' }).count(), 0, 'no Delete button');
  assert.equal(await page.locator('input[name="digest"]').count(), 0, 'nothing to select');
  const note = page.locator('.denied-note');
  assert.match(await note.innerText(), /You do not have permission to delete images in this repository \(ecr:BatchDeleteImage\)/);

  // Forged: the delete form sent anyway (from the developer tools), with bob's valid token.
  page.once('dialog', (d) => void d.accept());
  const [response] = await Promise.all([
    page.waitForResponse((r) => r.request().method() === 'POST'),
    page.evaluate((d) => {
      const doc = (globalThis as any).document;
      const form = doc.querySelector('form[action$="/-/delete-images"]');
      const input = doc.createElement('input');
      input.type = 'hidden';
      input.name = 'digest';
      input.value = d;
      form.append(input);
      form.requestSubmit();
    }, digest!),
  ]);
  assert.equal(new URLSearchParams(response.request().postData() ?? '').get('digest'), digest, 'the forged form carried the digest');
  assert.equal(response.status(), 403);
  const alert = page.locator('main .notice.denied');
  await alert.waitFor();
  assert.match(await alert.innerText(), /not (authorized|allowed)/i);
  assert.match(await alert.innerText(), /ecr:BatchDeleteImage/);
  const described = await admin(['ecr', 'describe-images', '--repository-name', repository, '--image-ids', `imageDigest=${digest}`]);
  assert.deepEqual(described.json.imageDetails.map((d: { imageTags: string[] }) => d.imageTags), [['v1']], 'the image is still there');
});

// --- 6. hostile text ------------------------------------------------------------------------------

/** The HTML as the server sent it holds the hostile text only in escaped forms. */
function assertEscaped(html: string, what: string): void {
  for (const form of RAW) assert.ok(!html.includes(form), `${what}: raw ${form} in the HTML`);
  for (const form of ESCAPED) assert.ok(html.includes(form), `${what}: ${form} (escaped) in the HTML`);
}

/** The page runs none of the hostile text; its raw HTML (fetched again with the browser's cookies) holds only escaped forms. */
async function assertInert(page: Page, context: BrowserContext, what: string): Promise<void> {
  assert.equal(await page.evaluate('typeof window.__pwned'), 'undefined', `${what}: no hostile script ran`);
  const raw = await fetchWithCookies(context, page.url());
  assert.equal(raw.status, 200, `${what}: ${raw.status}`);
  assertEscaped(raw.text, what);
}

/** Clicks a button that posts a form; resolves the raw HTML of the answer. */
async function posted(page: Page, click: () => Promise<void>): Promise<string> {
  const [response] = await Promise.all([page.waitForResponse((r) => r.request().method() === 'POST'), click()]);
  return response.text();
}

test('hostile text in a rule description, a repository policy, a creation template and an image’s manifest renders as text', async (t) => {
  const repository = `hostile-${suffix()}/app`;
  await admin(['ecr', 'create-repository', '--repository-name', repository]);
  const subjectImage = buildImage({ layerBytes: 256 });
  const subject = await pushImage(server.baseUrl, repository, subjectImage, 'v1');
  await pushSeveral(repository, [undefined, undefined]);
  // A referrer of the image whose artifactType and annotations are hostile.
  const config = blob('{}');
  const layer = blob(randomBytes(64));
  for (const b of [config, layer]) await pushBlob(server.baseUrl, repository, b);
  const referrer = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: MT.ociManifest,
      artifactType: `application/vnd.example+${HOSTILE_TEXT}`,
      config: { mediaType: MT.ociEmpty, digest: config.digest, size: config.bytes.length },
      layers: [{ mediaType: 'application/octet-stream', digest: layer.digest, size: layer.bytes.length }],
      subject: { mediaType: MT.ociManifest, digest: subject, size: subjectImage.manifest.length },
      annotations: { 'org.example.note': HOSTILE_TEXT },
    }),
  );
  const referrerBytes = referrer;
  const referrerDigest = sha256(referrerBytes);
  const put = await pushManifest(server.baseUrl, repository, referrerDigest, referrerBytes, MT.ociManifest);
  assert.equal(put.status, 201, await put.text());
  // A repository policy with a hostile Condition value (set with the AWS CLI), and a creation
  // template with a hostile description (with the SDK: Debian's AWS CLI predates templates).
  const policy = { Version: '2012-10-17', Statement: [{ Sid: 'Hostile', Effect: 'Allow', Principal: { AWS: `arn:aws:iam::${ACCOUNT}:root` }, Action: 'ecr:BatchGetImage', Condition: { StringEquals: { 'aws:UserAgent': HOSTILE_TEXT } } }] };
  await admin(['ecr', 'set-repository-policy', '--repository-name', repository, '--policy-text', JSON.stringify(policy)]);
  const prefix = `hostile-${suffix()}`;
  await ecr.send(new CreateRepositoryCreationTemplateCommand({ prefix, description: HOSTILE_TEXT, appliedFor: ['REPLICATION'] }));

  const { page, context } = await as(t, ALICE);

  // A lifecycle rule described with the hostile text, through the builder, previewed and saved.
  await page.goto(repoUrl(repository, 'lifecycle'));
  const builder = page.locator('form', { has: page.getByRole('button', { name: 'Add rule to the policy' }) });
  await builder.getByLabel('Description').fill(HOSTILE_TEXT);
  // Keep the newest untagged image: the older one is what the preview lists under the rule.
  await builder.getByLabel('N', { exact: true }).fill('1');
  const added = await posted(page, () => builder.getByRole('button', { name: 'Add rule to the policy' }).click());
  assertEscaped(added, 'the page with the rule added (editor and hidden field)');
  await page.getByText('Rule 1 is in the editor.').waitFor();
  const editor = page.getByLabel('Lifecycle policy (JSON)');
  assert.equal((JSON.parse(await editor.inputValue()) as { rules: { description: string }[] }).rules[0]!.description, HOSTILE_TEXT, 'the textarea holds the text, not markup that closed it');
  assert.equal(await builder.getByLabel('Description').inputValue(), '', 'the builder is ready for the next rule');
  const previewed = await posted(page, () => page.getByRole('button', { name: 'Preview' }).click());
  await page.locator('#preview p:not([role="status"]), main .notice.error').first().waitFor({ timeout: 90_000 });
  assert.deepEqual(await page.locator('main .notice.error').allInnerTexts(), [], 'no error');
  assert.equal(await page.locator('#preview h4').innerText(), `Rule 1: ${HOSTILE_TEXT} · 1 image(s)`, 'the description, shown literally');
  assert.equal(await page.evaluate('typeof window.__pwned'), 'undefined', 'preview: no hostile script ran');
  // The preview is the answer to the POST (or, when slow, a page it redirected to).
  if (previewed.includes('id="preview"')) assertEscaped(previewed, 'the preview');
  await Promise.all([page.waitForURL(/saved=1/), page.getByRole('button', { name: 'Save policy' }).click()]);
  assert.equal((JSON.parse(await editor.inputValue()) as { rules: { description: string }[] }).rules[0]!.description, HOSTILE_TEXT);
  await assertInert(page, context, 'lifecycle page');
  const saved = await admin(['ecr', 'get-lifecycle-policy', '--repository-name', repository]);
  assert.equal(JSON.parse(saved.json.lifecyclePolicyText).rules[0].description, HOSTILE_TEXT);

  // The repository policy in its editor.
  await page.goto(repoUrl(repository, 'settings'));
  const shown = JSON.parse(await page.getByLabel(/^Policy \(JSON\)/).inputValue());
  assert.equal(shown.Statement[0].Condition.StringEquals['aws:UserAgent'], HOSTILE_TEXT);
  await assertInert(page, context, 'settings page');

  // The creation template's description in the templates table.
  await page.goto(url('/console/registry?tab=templates'));
  const templateRow = page.locator('tbody tr', { has: page.locator('th code', { hasText: prefix }) });
  assert.equal(await templateRow.locator('td').nth(2).innerText(), HOSTILE_TEXT);
  await assertInert(page, context, 'templates tab');

  // The referrer's artifactType on the image's overview, and its annotations in its manifest.
  await page.goto(url(`/console/repos/${repository}/-/image/${encodeURIComponent(subject)}`));
  const referrers = page.locator('section[aria-labelledby="referrers-h"]');
  assert.ok((await referrers.innerText()).includes(`application/vnd.example+${HOSTILE_TEXT}`), await referrers.innerText());
  await assertInert(page, context, 'image overview');
  await page.goto(url(`/console/repos/${repository}/-/image/${encodeURIComponent(referrerDigest)}?tab=manifest`));
  const pretty = JSON.parse(await page.locator('pre.json code').first().innerText()) as { annotations: Record<string, string> };
  assert.equal(pretty.annotations['org.example.note'], HOSTILE_TEXT);
  assert.equal(await page.getByRole('button', { name: 'Copy the raw manifest' }).getAttribute('data-copy'), referrerBytes.toString(), 'the copy button holds the exact manifest');
  await assertInert(page, context, 'manifest tab');
  // The images list shows the referrer (under its subject) without running anything either.
  await page.goto(repoUrl(repository));
  assert.equal(await page.locator('table.images tbody tr.referrer').count(), 1);
  assert.equal(await page.evaluate('typeof window.__pwned'), 'undefined');
});

// --- 7. keyboard, labels, narrow screens -----------------------------------------------------------------

/** Visible form fields with no accessible name (label, aria-label or aria-labelledby), described. */
function unlabelled(page: Page): Promise<string[]> {
  return page.evaluate(() => {
    const doc = (globalThis as any).document;
    const text = (el: any) => (el?.textContent ?? '').trim();
    const out: string[] = [];
    for (const el of doc.querySelectorAll('input, select, textarea')) {
      if (el.type === 'hidden' || el.getClientRects().length === 0) continue;
      const byLabel = [...(el.labels ?? [])].some((l: any) => text(l) !== '');
      const byAria = (el.getAttribute('aria-label') ?? '').trim() !== '';
      const byIds = (el.getAttribute('aria-labelledby') ?? '').split(/\s+/).some((id: string) => id && text(doc.getElementById(id)) !== '');
      if (!byLabel && !byAria && !byIds) out.push(el.outerHTML.slice(0, 200));
    }
    return out;
  });
}

/**
 * Visible text whose colour against the background behind it is under WCAG 2.1 AA's contrast
 * (4.5:1, or 3:1 for large text: 24 px, or 18.66 px bold), as the browser computes the colours.
 * The background is the first opaque one among the element and its ancestors (the pages use no
 * background images). Placeholders and disabled controls are exempt, as WCAG exempts them.
 */
function lowContrast(page: import('playwright-core').Page): Promise<string[]> {
  return page.evaluate(() => {
    const win = globalThis as any;
    const parse = (c: string): number[] => (c.match(/[\d.]+/g) ?? []).map(Number);
    const luminance = ([r, g, b]: number[]) => {
      const f = (v: number) => {
        const s = v / 255;
        return s <= 0.03928 ? s / 12.92 : ((s + 0.055) / 1.055) ** 2.4;
      };
      return 0.2126 * f(r!) + 0.7152 * f(g!) + 0.0722 * f(b!);
    };
    const backgroundOf = (el: any): number[] => {
      for (let e = el; e; e = e.parentElement) {
        const c = parse(win.getComputedStyle(e).backgroundColor);
        if (c.length === 3 || (c.length === 4 && c[3]! > 0.99)) return c.slice(0, 3);
      }
      return [255, 255, 255];
    };
    const bad: string[] = [];
    const walker = win.document.createTreeWalker(win.document.body, 4 /* NodeFilter.SHOW_TEXT */);
    for (let node = walker.nextNode(); node; node = walker.nextNode()) {
      const el = node.parentElement;
      if (!node.textContent.trim() || !el || el.closest('[disabled], .skip, .offscreen, .sr-only, option, svg')) continue;
      const box = el.getBoundingClientRect();
      const style = win.getComputedStyle(el);
      if (box.width === 0 || box.height === 0 || style.visibility === 'hidden' || style.display === 'none') continue;
      const fg = parse(style.color).slice(0, 3);
      const [l1, l2] = [luminance(fg), luminance(backgroundOf(el))].sort((a, b) => b - a);
      const ratio = (l1! + 0.05) / (l2! + 0.05);
      const size = parseFloat(style.fontSize);
      const large = size >= 24 || (size >= 18.66 && Number(style.fontWeight) >= 700);
      if (ratio < (large ? 3 : 4.5)) bad.push(`"${node.textContent.trim().slice(0, 30)}" ${ratio.toFixed(2)}:1 (${style.color} on ${backgroundOf(el).join(',')})`);
    }
    return [...new Set(bad)].slice(0, 10);
  });
}

test('keyboard, labels and contrast: Tab first reaches “Skip to content”; every visible field has a label; text meets WCAG AA contrast; no page-wide sideways scroll at 390 px', async (t) => {
  const repository = `a11y-${suffix()}/a-rather-long-repository-name-for-a-phone-screen`;
  await admin(['ecr', 'create-repository', '--repository-name', repository]);
  const [digest] = await pushSeveral(repository, ['v1.2.3-with-a-long-tag-name', undefined, 'latest']);

  const anonymous = await visit(t);
  await anonymous.page.goto(url('/console/signin'));
  assert.deepEqual(await unlabelled(anonymous.page), [], 'sign-in page');

  const { page } = await as(t, ALICE);
  const pages = [
    '/console/repositories',
    '/console/repositories/new',
    `/console/repos/${repository}`,
    `/console/repos/${repository}/-/image/${encodeURIComponent(digest!)}`,
    `/console/repos/${repository}/-/image/${encodeURIComponent(digest!)}?tab=findings`,
    `/console/repos/${repository}/-/lifecycle`,
    `/console/repos/${repository}/-/settings`,
    `/console/repos/${repository}/-/push-commands`,
    ...['scanning', 'replication', 'cache', 'templates', 'policy'].map((tab) => `/console/registry?tab=${tab}`),
    '/console/usage',
    '/console/audit',
    '/console/account/password',
  ];
  for (const p of pages) {
    const res = await page.goto(url(p));
    assert.equal(res?.status(), 200, p);
    assert.deepEqual(await unlabelled(page), [], `unlabelled fields on ${p}`);
    assert.deepEqual(await lowContrast(page), [], `text below WCAG 2.1 AA contrast on ${p}`);
  }
  await anonymous.page.goto(url('/console/signin'));
  assert.deepEqual(await lowContrast(anonymous.page), [], 'text below WCAG 2.1 AA contrast on the sign-in page');
  for (const p of ['/console/repositories', `/console/repos/${repository}`]) {
    await page.goto(url(p));
    await page.keyboard.press('Tab');
    const focused = await page.evaluate(() => {
      const el = (globalThis as any).document.activeElement;
      const box = el.getBoundingClientRect();
      return { text: el.textContent.trim(), href: el.getAttribute('href'), visible: box.left >= 0 && box.width > 0 };
    });
    assert.deepEqual(focused, { text: 'Skip to content', href: '#main', visible: true }, `first Tab on ${p}`);
    await page.keyboard.press('Enter');
    await page.waitForFunction(() => (globalThis as any).document.activeElement?.id === 'main');
  }

  // A phone: the page itself never scrolls sideways; wide tables scroll inside their .table-wrap.
  const phone = await as(t, ALICE, { viewport: { width: 390, height: 844 }, isMobile: true, hasTouch: true });
  for (const [p, name] of [['/console/repositories', 'narrow-repositories'], [`/console/repos/${repository}`, 'narrow-images']] as const) {
    await phone.page.goto(url(p));
    const overflow = await phone.page.evaluate(() => {
      const doc = (globalThis as any).document;
      const width = (globalThis as any).innerWidth as number;
      const wide: string[] = [];
      for (const el of doc.querySelectorAll('body *')) {
        if (el.closest('.table-wrap')) continue;
        const r = el.getBoundingClientRect();
        if (r.right > width + 0.5) wide.push(`${el.tagName.toLowerCase()}.${el.className} right=${Math.round(r.right)}`);
      }
      return { scrollWidth: doc.scrollingElement.scrollWidth as number, width, wide: wide.slice(0, 10) };
    });
    assert.ok(overflow.scrollWidth <= overflow.width, `${p} at 390 px: scrollWidth ${overflow.scrollWidth} > ${overflow.width}; too wide: ${overflow.wide.join(', ')}`);
    await screenshot(phone.page, name);
  }
});

// --- 8. screenshots of the other main pages ----------------------------------------------------------------

test('screenshots of the registry settings, usage and audit log pages', async (t) => {
  const { page } = await as(t, ALICE);
  for (const [p, name, heading] of [
    ['/console/registry?tab=scanning', 'registry-settings', 'Registry settings'],
    ['/console/usage', 'usage', 'Usage'],
    ['/console/audit', 'audit-log', 'Audit log'],
  ] as const) {
    const res = await page.goto(url(p));
    assert.equal(res?.status(), 200, p);
    await page.getByRole('heading', { name: heading, level: 1 }).waitFor();
    await screenshot(page, name);
  }
});

// --- 9. sign out -----------------------------------------------------------------------------------

test('signing out returns to the sign-in page, and the old cookie no longer opens pages', async (t) => {
  const { page, context } = await as(t, ALICE);
  const old = await sessionCookie(context, server.baseUrl);
  assert.ok(old);
  await page.goto(url('/console/account'));
  await Promise.all([page.waitForURL(/\/console\/signin\?signedOut=1/), page.getByRole('button', { name: 'Sign out' }).click()]);
  await page.getByText('You have signed out.').waitFor();
  assert.equal(await sessionCookie(context, server.baseUrl), undefined, 'the browser dropped the cookie');
  await page.goto(url('/console/repositories'));
  assert.equal(new URL(page.url()).pathname, '/console/signin');

  // The old cookie, put back into a fresh browser, opens nothing.
  const thief = await visit(t);
  await thief.context.addCookies([{ name: 'berth_session', value: old, url: url('/console/') }]);
  await thief.page.goto(url('/console/repositories'));
  assert.equal(new URL(thief.page.url()).pathname, '/console/signin');
  await thief.page.getByRole('heading', { name: 'Sign in to Berth' }).waitFor();
  const raw = await fetchWithCookies(thief.context, url('/console/account'));
  assert.equal(raw.status, 303);
  assert.equal(raw.headers.get('location'), '/console/signin?next=%2Fconsole%2Faccount');
});
