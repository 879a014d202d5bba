import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, test, type TestContext } from 'node:test';
import {
  CreateRepositoryCommand,
  DescribeImageScanFindingsCommand,
  PutRegistryScanningConfigurationCommand,
  type DescribeImageScanFindingsCommandOutput,
  type ECRClient,
} from '@aws-sdk/client-ecr';
import { ADMIN, authedFetch } from '../support/auth.ts';
import { REGION, ecrClient } from '../support/aws.ts';
import { blob, pushBlob, pushManifest, waitFor } from '../support/oci.ts';
import { berth, runBerth, startServer, type TestServer } from '../support/server.ts';
import { nodeAppImage, type ScanImage } from '../support/scan-images.ts';
import { CVSS, fixedRange, osvRecord, writeOsvZip, type OsvRecord } from '../support/vulndata.ts';
import { startWebhookReceiver } from '../support/webhook-receiver.ts';

/**
 * The events a scan writes to the event log (src/events/envelope.ts, docs/events.md): `ECR Image
 * Scan` when a scan finishes, in ECR's detail shape, read back with GET /v2/_events and delivered
 * to a webhook; and, for ENHANCED continuous scanning, `Berth Image Scan Action` FINDINGS_CHANGE
 * when a database import adds or removes a finding of an image already scanned. The image is the
 * node app of scan-images.ts (lodash 4.17.20, qs 6.7.0 among its node_modules), pushed with
 * plain HTTP; the vulnerability data is a small npm export written here.
 */

const A = ADMIN.accountId;
const workDir = mkdtemp(path.join(tmpdir(), 'berth-scan-events-'));
after(async () => rm(await workDir, { recursive: true, force: true }));

async function freshDir(name: string): Promise<string> {
  return mkdtemp(path.join(await workDir, `${name}-`));
}

/** Made-up npm advisories about packages the node app holds (no such vulnerabilities exist). */
function npmRecord(id: string, cve: string, pkg: string, fixed: string, introduced: string, cvss: (typeof CVSS)[keyof typeof CVSS]): OsvRecord {
  return osvRecord(id, cve, `${pkg}: a flaw made up for Berth's event tests`, [{ package: { ecosystem: 'npm', name: pkg }, ranges: fixedRange('SEMVER', fixed, introduced) }], cvss, new Date());
}
const LODASH_HIGH = npmRecord('GHSA-e001-0001-0001', 'CVE-2099-5101', 'lodash', '4.17.21', '0', CVSS.high75);
const QS_MEDIUM = npmRecord('GHSA-e001-0002-0002', 'CVE-2099-5102', 'qs', '6.7.3', '6.7.0', CVSS.medium59);
const LODASH_CRITICAL = npmRecord('GHSA-e001-0003-0003', 'CVE-2099-5103', 'lodash', '4.17.21', '4.0.0', CVSS.critical98);

/** Imports an npm export of exactly these records with `berth vulndb import` (it replaces the npm source whole). */
async function importNpm(server: TestServer, records: OsvRecord[]): Promise<void> {
  const file = await writeOsvZip(await freshDir('npm'), 'npm', records);
  await runBerth(server, ['vulndb', 'import', file]);
}

async function scanServer(t: TestContext): Promise<{ server: TestServer; ecr: ECRClient }> {
  const server = await startServer({ env: { BERTH_SCAN_POLL_INTERVAL_MS: '100', BERTH_EVENTS_POLL_INTERVAL_MS: '100', BERTH_EVENTS_RETRY_BASE_MS: '50', BERTH_EVENTS_RETRY_MAX_MS: '400' } });
  t.after(() => server.close());
  return { server, ecr: ecrClient(server, ADMIN) };
}

function repoName(prefix: string): string {
  return `${prefix}-${randomBytes(5).toString('hex')}/app`;
}

/** Pushes a layout image's blobs and manifest with plain HTTP, by tag or (no reference) by digest. */
async function pushScanImage(baseUrl: string, repository: string, image: ScanImage, tag?: string): Promise<void> {
  const file = (digest: string) => path.join(image.dir, 'blobs', 'sha256', digest.slice('sha256:'.length));
  for (const digest of [image.config.digest, ...image.layers.map((l) => l.digest)]) await pushBlob(baseUrl, repository, blob(await readFile(file(digest))));
  const res = await pushManifest(baseUrl, repository, tag ?? image.digest, await readFile(file(image.digest)), image.mediaType);
  assert.equal(res.status, 201, `PUT manifest: ${await res.text()}`);
}

interface LoggedEvent {
  seq: number;
  event: { version: string; id: string; 'detail-type': string; source: string; account: string; time: string; region: string; resources: string[]; detail: Record<string, unknown> };
}

/** The repository's events of one detail-type, from GET /v2/_events, every page. */
async function eventsOf(server: TestServer, repository: string, detailType: string): Promise<LoggedEvent[]> {
  const out: LoggedEvent[] = [];
  let query = new URLSearchParams({ repository, n: '500' }).toString();
  for (;;) {
    const res = await authedFetch(`${server.baseUrl}/v2/_events?${query}`);
    assert.equal(res.status, 200);
    out.push(...((await res.json()) as { events: LoggedEvent[] }).events);
    const next = /<\/v2\/_events\?([^>]+)>; rel="next"/.exec(res.headers.get('link') ?? '');
    if (!next) break;
    query = next[1]!;
  }
  return out.filter((e) => e.event['detail-type'] === detailType);
}

/** DescribeImageScanFindings until the scan has an outcome. */
async function waitForScan(ecr: ECRClient, repositoryName: string, imageDigest: string): Promise<DescribeImageScanFindingsCommandOutput> {
  return waitFor(
    async () => {
      try {
        const out = await ecr.send(new DescribeImageScanFindingsCommand({ repositoryName, imageId: { imageDigest } }));
        return ['PENDING', 'IN_PROGRESS'].includes(out.imageScanStatus?.status ?? 'PENDING') ? undefined : out;
      } catch (err) {
        if ((err as Error).name === 'ScanNotFoundException') return undefined;
        throw err;
      }
    },
    { timeoutMs: 180_000, intervalMs: 200, what: `the scan of ${repositoryName}@${imageDigest}` },
  );
}

const repositoryArn = (name: string) => `arn:aws:ecr:${REGION}:${A}:repository/${name}`;

test('a finished scan writes one ECR Image Scan event in ECR’s shape, read from GET /v2/_events and delivered to a webhook', async (t) => {
  const { server, ecr } = await scanServer(t);
  await importNpm(server, [LODASH_HIGH, QS_MEDIUM]);
  const repositoryName = repoName('events');
  const receiver = await startWebhookReceiver({ secret: 'scan-events-secret' });
  t.after(() => receiver.close());
  await berth(server, ['events', 'add', '--url', receiver.url, '--secret', receiver.secret, '--pattern', JSON.stringify({ 'detail-type': ['ECR Image Scan'], detail: { 'repository-name': [repositoryName] } })]);
  await ecr.send(new CreateRepositoryCommand({ repositoryName, imageScanningConfiguration: { scanOnPush: true } }));

  // One image pushed with a tag, another by digest only (ECR then sends "image-tags": []).
  const tagged = await nodeAppImage(await freshDir('tagged'));
  const untagged = await nodeAppImage(await freshDir('untagged'));
  assert.notEqual(tagged.digest, untagged.digest);
  await pushScanImage(server.baseUrl, repositoryName, tagged, 'v1');
  await pushScanImage(server.baseUrl, repositoryName, untagged);

  const counts = { HIGH: 1, MEDIUM: 1 };
  for (const [image, tags] of [[tagged, ['v1']], [untagged, []]] as const) {
    const out = await waitForScan(ecr, repositoryName, image.digest);
    assert.equal(out.imageScanStatus?.status, 'COMPLETE', out.imageScanStatus?.description);
    assert.deepEqual(out.imageScanFindings?.findingSeverityCounts, counts, 'the findings the event counts');
    // The event commits with the result: it is in the log as soon as the scan reads COMPLETE.
    const logged = (await eventsOf(server, repositoryName, 'ECR Image Scan')).filter((e) => e.event.detail['image-digest'] === image.digest);
    assert.equal(logged.length, 1, `one ECR Image Scan event for ${image.digest}`);
    const { event } = logged[0]!;
    assert.deepEqual(event.detail, {
      'scan-status': 'COMPLETE',
      'repository-name': repositoryName,
      'finding-severity-counts': counts,
      'image-digest': image.digest,
      'image-tags': tags,
    });
    assert.deepEqual(
      { version: event.version, source: event.source, account: event.account, region: event.region, resources: event.resources },
      { version: '0', source: 'aws.ecr', account: A, region: REGION, resources: [repositoryArn(repositoryName)] },
    );
    assert.match(event.time, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);

    // The webhook gets the same event, byte for byte the log's body, signed.
    const delivered = await waitFor(async () => receiver.received.find((d) => d.event?.id === event.id && d.verified.ok), { what: `the delivery of ${event.id}` });
    assert.deepEqual(delivered.event, event);
  }
  assert.ok(
    receiver.received.every((d) => d.event?.['detail-type'] === 'ECR Image Scan'),
    'the pattern let only scan events through, not the pushes',
  );
  assert.equal(new Set(receiver.deliveredIds()).size, 2);
});

test('a scan that fails for want of a vulnerability database writes ECR Image Scan with scan-status FAILED and no counts', async (t) => {
  const { server, ecr } = await scanServer(t);
  const repositoryName = repoName('events-failed');
  await ecr.send(new CreateRepositoryCommand({ repositoryName, imageScanningConfiguration: { scanOnPush: true } }));
  const image = await nodeAppImage(await freshDir('nodb'));
  await pushScanImage(server.baseUrl, repositoryName, image, 'nodb');
  const out = await waitForScan(ecr, repositoryName, image.digest);
  assert.equal(out.imageScanStatus?.status, 'FAILED');
  assert.match(out.imageScanStatus?.description ?? '', /vulnerability database/i);

  const logged = await eventsOf(server, repositoryName, 'ECR Image Scan');
  assert.equal(logged.length, 1);
  assert.deepEqual(logged[0]!.event.detail, {
    'scan-status': 'FAILED',
    'repository-name': repositoryName,
    'finding-severity-counts': {},
    'image-digest': image.digest,
    'image-tags': ['nodb'],
  });
});

test('ENHANCED continuous scanning: an import that adds a finding, and one that drops a record, each write FINDINGS_CHANGE naming it', async (t) => {
  const { server, ecr } = await scanServer(t);
  await importNpm(server, [LODASH_HIGH, QS_MEDIUM]);
  await ecr.send(
    new PutRegistryScanningConfigurationCommand({
      scanType: 'ENHANCED',
      rules: [
        { scanFrequency: 'CONTINUOUS_SCAN', repositoryFilters: [{ filter: 'cont-*', filterType: 'WILDCARD' }] },
        { scanFrequency: 'SCAN_ON_PUSH', repositoryFilters: [{ filter: 'push-*', filterType: 'WILDCARD' }] },
      ],
    }),
  );
  // Created first, so that a re-match pass (in repository order) reaches it before the
  // continuous one: once the continuous image's event is in, this one has been passed over.
  const onPush = repoName('push');
  const continuous = repoName('cont');
  for (const repositoryName of [onPush, continuous]) await ecr.send(new CreateRepositoryCommand({ repositoryName }));
  const image = await nodeAppImage(await freshDir('cont'));
  const other = await nodeAppImage(await freshDir('push'));
  await pushScanImage(server.baseUrl, onPush, other, 'v1');
  await pushScanImage(server.baseUrl, continuous, image, 'v1');
  const first = await waitForScan(ecr, continuous, image.digest);
  assert.equal(first.imageScanStatus?.status, 'COMPLETE', first.imageScanStatus?.description);
  assert.deepEqual(first.imageScanFindings?.findingSeverityCounts, { HIGH: 1, MEDIUM: 1 });
  const otherFirst = await waitForScan(ecr, onPush, other.digest);
  assert.equal(otherFirst.imageScanStatus?.status, 'COMPLETE', otherFirst.imageScanStatus?.description);
  assert.deepEqual(await eventsOf(server, continuous, 'Berth Image Scan Action'), [], 'no change before a new import');

  const changeFor = async (repositoryName: string, digest: string, count: number) =>
    waitFor(
      async () => {
        const changes = (await eventsOf(server, repositoryName, 'Berth Image Scan Action')).filter((e) => e.event.detail['image-digest'] === digest);
        return changes.length >= count ? changes : undefined;
      },
      { timeoutMs: 120_000, what: `change event ${count} for ${repositoryName}@${digest}` },
    );
  const lodash = (record: OsvRecord) => ({ name: record.aliases![0]!, 'package-name': 'lodash', 'package-version': '4.17.20' });

  // A newer export with one more lodash advisory: the image gains it without a push.
  await importNpm(server, [LODASH_HIGH, QS_MEDIUM, LODASH_CRITICAL]);
  const [added] = await changeFor(continuous, image.digest, 1);
  assert.deepEqual(added!.event.detail, {
    result: 'SUCCESS',
    'repository-name': continuous,
    'image-digest': image.digest,
    'image-tags': ['v1'],
    'finding-severity-counts': { CRITICAL: 1, HIGH: 1, MEDIUM: 1 },
    added: [lodash(LODASH_CRITICAL)],
    fixed: [],
    'action-type': 'FINDINGS_CHANGE',
  });
  assert.deepEqual(added!.event.resources, [repositoryArn(continuous)]);
  const afterAdd = await ecr.send(new DescribeImageScanFindingsCommand({ repositoryName: continuous, imageId: { imageDigest: image.digest } }));
  assert.deepEqual(afterAdd.imageScanFindings?.findingSeverityCounts, { CRITICAL: 1, HIGH: 1, MEDIUM: 1 }, 'the findings say what the event says');

  // The next export withdraws the first lodash record: the image no longer has that finding.
  await importNpm(server, [QS_MEDIUM, LODASH_CRITICAL]);
  const changes = await changeFor(continuous, image.digest, 2);
  assert.equal(changes.length, 2, 'one event per import that changed something');
  assert.deepEqual(changes[1]!.event.detail, {
    result: 'SUCCESS',
    'repository-name': continuous,
    'image-digest': image.digest,
    'image-tags': ['v1'],
    'finding-severity-counts': { CRITICAL: 1, MEDIUM: 1 },
    added: [],
    fixed: [lodash(LODASH_HIGH)],
    'action-type': 'FINDINGS_CHANGE',
  });
  const afterFix = await ecr.send(new DescribeImageScanFindingsCommand({ repositoryName: continuous, imageId: { imageDigest: image.digest } }));
  assert.deepEqual(afterFix.imageScanFindings?.findingSeverityCounts, { CRITICAL: 1, MEDIUM: 1 });

  // A re-match is not a scan: still one ECR Image Scan per image. And the image scanned on push
  // only is not re-matched: no change event, its findings as they were.
  assert.equal((await eventsOf(server, continuous, 'ECR Image Scan')).length, 1);
  assert.equal((await eventsOf(server, onPush, 'ECR Image Scan')).length, 1);
  assert.deepEqual(await eventsOf(server, onPush, 'Berth Image Scan Action'), []);
  const otherNow = await ecr.send(new DescribeImageScanFindingsCommand({ repositoryName: onPush, imageId: { imageDigest: other.digest } }));
  assert.deepEqual(otherNow.imageScanFindings?.findingSeverityCounts, { HIGH: 1, MEDIUM: 1 });
});
