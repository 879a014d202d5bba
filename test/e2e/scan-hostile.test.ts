import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, test, type TestContext } from 'node:test';
import { CreateRepositoryCommand, DescribeImageScanFindingsCommand, PutRegistryScanningConfigurationCommand, type DescribeImageScanFindingsCommandOutput, type ECRClient } from '@aws-sdk/client-ecr';
import { ADMIN, authedFetch } from '../support/auth.ts';
import { ecrClient } from '../support/aws.ts';
import { waitFor } from '../support/oci.ts';
import { runBerth, startServer, type TestServer } from '../support/server.ts';
import { requireTools, toolSandbox, type ToolSandbox } from '../support/tools.ts';
import {
  DEBIAN_OS_RELEASE,
  alpineStyleImage,
  assembleImage,
  dpkgStatusEntry,
  layerOf,
  manyEntriesLayer,
  pushLayout,
  truncatedLayer,
  withParents,
  zeroBombLayer,
  type LayerBlob,
} from '../support/scan-images.ts';
import { CVSS, fixedRange, languageVulnData, osvRecord, writeOsvZip } from '../support/vulndata.ts';

/**
 * Hostile layers (issue 13: "a malicious layer with a 10 GB file, a tar bomb or a
 * path-traversal entry must not hurt the node"): each scan fails with a description that says
 * what was wrong, or (a symlink out of the image) reads nothing through the link; after each,
 * the registry still answers and another image still scans.
 */

const GiB = 1024 ** 3;
const MiB = 1024 ** 2;

interface Ctx {
  server: TestServer;
  tools: ToolSandbox;
  host: string;
  ecr: ECRClient;
  alpineExpected: string[];
}

const servers = new Map<string, Promise<Ctx>>();
const workDir = mkdtemp(path.join(tmpdir(), 'berth-scan-hostile-'));
after(async () => {
  for (const ctx of servers.values()) {
    const c = await ctx;
    await c.tools.close();
    await c.server.close();
  }
  await rm(await workDir, { recursive: true, force: true });
});

async function freshDir(name: string): Promise<string> {
  return mkdtemp(path.join(await workDir, `${name}-`));
}

/**
 * A server with scan limits from `env`, every repository scanned on push (a registry rule for
 * `*`), and a database that knows the Alpine-style image (the healthy control) and one Debian
 * package the hostile layers pretend to hold.
 */
function hostileServer(env: Record<string, string>): Promise<Ctx> {
  const key = JSON.stringify(env);
  let ctx = servers.get(key);
  if (!ctx) {
    ctx = (async () => {
      const server = await startServer({ env: { BERTH_SCAN_POLL_INTERVAL_MS: '100', ...env } });
      const tools = await toolSandbox();
      const host = `127.0.0.1:${server.port}`;
      await tools.login(host);
      const dataDir = await freshDir('data');
      const data = await languageVulnData(dataDir, { goVersion: '1.0.0' });
      const debian = await writeOsvZip(dataDir, 'Debian', [
        osvRecord('DSA-9999-1', 'CVE-2099-0666', 'zlib: a flaw only a scanner that follows links would find', [{ package: { ecosystem: 'Debian:12', name: 'zlib' }, ranges: fixedRange('ECOSYSTEM', '1:1.3.dfsg-1') }], CVSS.critical98, new Date()),
      ]);
      await runBerth(server, ['vulndb', 'import', ...data.files, debian]);
      const ecr = ecrClient(server, ADMIN);
      await ecr.send(new PutRegistryScanningConfigurationCommand({ scanType: 'BASIC', rules: [{ scanFrequency: 'SCAN_ON_PUSH', repositoryFilters: [{ filter: '*', filterType: 'WILDCARD' }] }] }));
      return { server, tools, host, ecr, alpineExpected: data.expected.alpine.map((e) => `${e.name} ${e.package}`).sort() };
    })();
    servers.set(key, ctx);
  }
  return ctx;
}

async function waitForScan(ecr: ECRClient, repositoryName: string, imageDigest: string): Promise<DescribeImageScanFindingsCommandOutput> {
  return waitFor(
    async () => {
      try {
        const out = await ecr.send(new DescribeImageScanFindingsCommand({ repositoryName, imageId: { imageDigest } }));
        return ['IN_PROGRESS', 'PENDING'].includes(out.imageScanStatus?.status ?? 'PENDING') ? undefined : out;
      } catch (err) {
        if ((err as Error).name === 'ScanNotFoundException') return undefined;
        throw err;
      }
    },
    { timeoutMs: 300_000, intervalMs: 250, what: `the scan of ${repositoryName}@${imageDigest}` },
  );
}

/** Pushes an image of these layers and waits for its scan's outcome. */
async function scanLayers(ctx: Ctx, name: string, layers: (dir: string) => Promise<LayerBlob[]>): Promise<DescribeImageScanFindingsCommandOutput> {
  const dir = await freshDir(name);
  const image = await assembleImage(dir, await layers(dir), { tag: name });
  const repositoryName = `hostile-${randomBytes(5).toString('hex')}/${name}`;
  await ctx.ecr.send(new CreateRepositoryCommand({ repositoryName }));
  await pushLayout(ctx.tools, ctx.host, image, repositoryName);
  return waitForScan(ctx.ecr, repositoryName, image.digest);
}

/** The registry answers, and an ordinary image pushed after the hostile one scans as it should. */
async function assertHealthy(ctx: Ctx): Promise<void> {
  const res = await authedFetch(`${ctx.server.baseUrl}/v2/`);
  assert.equal(res.status, 200, 'GET /v2/ still answers');
  assert.equal(ctx.server.process.exitCode, null, 'the server is still running');
  const image = await alpineStyleImage(await freshDir('control'));
  const repositoryName = `control-${randomBytes(5).toString('hex')}/alpine`;
  await ctx.ecr.send(new CreateRepositoryCommand({ repositoryName }));
  await pushLayout(ctx.tools, ctx.host, image, repositoryName);
  const out = await waitForScan(ctx.ecr, repositoryName, image.digest);
  assert.equal(out.imageScanStatus?.status, 'COMPLETE', out.imageScanStatus?.description);
  assert.deepEqual((out.imageScanFindings?.findings ?? []).map((f) => `${f.name} ${f.attributes?.find((a) => a.key === 'package_name')?.value}`).sort(), ctx.alpineExpected);
}

function failedWith(out: DescribeImageScanFindingsCommandOutput, pattern: RegExp): void {
  assert.equal(out.imageScanStatus?.status, 'FAILED', `status (description: ${out.imageScanStatus?.description})`);
  assert.match(out.imageScanStatus?.description ?? '', pattern);
  assert.deepEqual(out.imageScanFindings?.findings ?? [], [], 'no findings from a failed scan');
}

const limited = { BERTH_SCAN_LIMITS_MAX_LAYER_ENTRIES: '10000', BERTH_SCAN_LIMITS_MAX_COMPRESSION_RATIO: '100' };

function skipWithoutTools(t: TestContext): boolean {
  return !requireTools(t, 'skopeo');
}

test('a gzip bomb (3 GiB of zeros in 3 MiB) fails as a decompression bomb after about 1 GiB of work', async (t) => {
  if (skipWithoutTools(t)) return;
  const ctx = await hostileServer(limited);
  const out = await scanLayers(ctx, 'zeros', async (dir) => [await zeroBombLayer(dir, [{ name: 'var/tmp/zeros', sizeBytes: 3 * GiB }])]);
  failedWith(out, /decompression bomb/);
  assert.match(out.imageScanStatus?.description ?? '', /scan\.limits\.maxCompressionRatio/);
  await assertHealthy(ctx);
});

test('a layer that unpacks past scan.limits.maxUncompressedLayerBytes fails, naming the limit', async (t) => {
  if (skipWithoutTools(t)) return;
  const ctx = await hostileServer({ BERTH_SCAN_LIMITS_MAX_UNCOMPRESSED_LAYER_BYTES: String(256 * MiB) });
  // Two files, each under the limit, together over it: refused while streaming, not by a header.
  const out = await scanLayers(ctx, 'big', async (dir) => [
    await zeroBombLayer(dir, [
      { name: 'srv/a.bin', sizeBytes: 200 * MiB },
      { name: 'srv/b.bin', sizeBytes: 200 * MiB },
    ]),
  ]);
  failedWith(out, /256 MiB/);
  assert.match(out.imageScanStatus?.description ?? '', /\(scan\.limits\.maxUncompressedLayerBytes\)/);
  await assertHealthy(ctx);
});

test('a tar bomb of entries past scan.limits.maxLayerEntries fails, naming the limit', async (t) => {
  if (skipWithoutTools(t)) return;
  const ctx = await hostileServer(limited);
  const out = await scanLayers(ctx, 'entries', async (dir) => [await manyEntriesLayer(dir, 20_000)]);
  failedWith(out, /more than 10000 entries, the most the scanner reads in one layer \(scan\.limits\.maxLayerEntries\)/);
  await assertHealthy(ctx);
});

test('an entry that climbs out of the root (../../etc/passwd) fails the scan as path traversal', async (t) => {
  if (skipWithoutTools(t)) return;
  const ctx = await hostileServer(limited);
  const out = await scanLayers(ctx, 'traversal', async (dir) => [
    await layerOf(dir, [
      ...withParents([{ name: 'etc/os-release', content: DEBIAN_OS_RELEASE }]),
      { name: '../../etc/passwd', content: 'root::0:0:root:/root:/bin/sh\n' },
    ]),
  ]);
  failedWith(out, /path traversal/);
  assert.match(out.imageScanStatus?.description ?? '', /\.\.\/\.\.\/etc\/passwd/);
  await assertHealthy(ctx);
});

test('a dpkg status that is a symlink out of the image is not followed: COMPLETE, no findings', async (t) => {
  if (skipWithoutTools(t)) return;
  const ctx = await hostileServer(limited);
  // What the link points at, inside the image, would give a finding if the link were followed.
  const out = await scanLayers(ctx, 'symlink', async (dir) => [
    await layerOf(
      dir,
      withParents([
        { name: 'etc/os-release', content: DEBIAN_OS_RELEASE },
        { name: 'etc/shadow', content: dpkgStatusEntry('zlib1g', '1:1.2.13.dfsg-1', 'zlib'), mode: 0o640 },
        { name: 'var/lib/dpkg/status', type: 'symlink', linkname: '/etc/shadow' },
      ]),
    ),
  ]);
  assert.equal(out.imageScanStatus?.status, 'COMPLETE', out.imageScanStatus?.description);
  assert.deepEqual(out.imageScanFindings?.findings ?? [], []);
  await assertHealthy(ctx);
});

test('a truncated gzip layer fails the scan, saying the stream is cut off', async (t) => {
  if (skipWithoutTools(t)) return;
  const ctx = await hostileServer(limited);
  const out = await scanLayers(ctx, 'truncated', async (dir) => [
    await truncatedLayer(
      dir,
      withParents([
        { name: 'etc/os-release', content: DEBIAN_OS_RELEASE },
        { name: 'var/lib/dpkg/status', content: dpkgStatusEntry('zlib1g', '1:1.2.13.dfsg-1') },
        { name: 'usr/share/doc/filler.bin', content: randomBytes(256 * 1024) },
      ]),
    ),
  ]);
  failedWith(out, /ended early|cut off/);
  await assertHealthy(ctx);
});

test("a layer whose content does not match the config's diff_id fails the scan", async (t) => {
  if (skipWithoutTools(t)) return;
  const ctx = await hostileServer(limited);
  const out = await scanLayers(ctx, 'diffid', async (dir) => {
    const layer = await layerOf(dir, withParents([{ name: 'etc/os-release', content: DEBIAN_OS_RELEASE }]));
    return [{ ...layer, diffId: `sha256:${'0'.repeat(64)}` }];
  });
  failedWith(out, /diff_id/);
  await assertHealthy(ctx);
});
