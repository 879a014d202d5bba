import { createHash } from 'node:crypto';
import { repositoryArn } from '../../iam/ids.ts';
import type { RepoRef } from '../../registry/names.ts';
import type { Repository } from '../../store/meta/meta-store.ts';
import { preferredScore } from '../../scan/match/cvss.ts';
import { isContinuouslyScanned, repositoryScanning, storedScanning, type ScanningConfiguration, type ScanningRule } from '../../scan/policy.ts';
import { findingKey } from '../../scan/results.ts';
import { scanTarget } from '../../scan/scanner.ts';
import { SCAN_ON_PUSH_CONSUMER } from '../../scan/worker.ts';
import type { Finding } from '../../scan/types.ts';
import { scanViews, type ScanView } from '../../scan/view.ts';
import { AwsError } from '../aws-error.ts';
import type { ActionContext, ActionHandler } from '../plane.ts';
import { afterToken, nextTokenAfter, registryOf, repositoryOf } from './common.ts';
import { imageNotFound, resolveImageId, type ImageIdentifier } from './images.ts';

/**
 * ECR's scanning operations (docs/scanning.md): the registry scanning configuration, the
 * repository's (deprecated) scanOnPush, StartImageScan and DescribeImageScanFindings. The scans
 * themselves run in src/scan/ (worker.ts); these actions only read and queue.
 */

/** ECR's repository filter grammar for scanning rules. */
const FILTER = /^[a-z0-9*](?:[._\-/a-z0-9*]?[a-z0-9*]+)*$/;
const FREQUENCIES = ['SCAN_ON_PUSH', 'CONTINUOUS_SCAN', 'MANUAL'];

function invalid(message: string): AwsError {
  return new AwsError('ValidationException', message);
}

/** Checks a PutRegistryScanningConfiguration request as ECR does. */
function parseConfiguration(input: Record<string, any>): ScanningConfiguration {
  const scanType = (input['scanType'] as string | undefined) ?? 'BASIC';
  if (scanType !== 'BASIC' && scanType !== 'ENHANCED') throw invalid(`1 validation error detected: Value '${scanType}' at 'scanType' failed to satisfy constraint: Member must satisfy enum value set: [BASIC, ENHANCED]`);
  const rawRules = (input['rules'] as unknown[] | undefined) ?? [];
  if (!Array.isArray(rawRules) || rawRules.length > 2) throw invalid("1 validation error detected: Value at 'rules' failed to satisfy constraint: Member must have length less than or equal to 2");
  const rules: ScanningRule[] = [];
  for (const [i, raw] of rawRules.entries()) {
    const r = (raw ?? {}) as Record<string, any>;
    const frequency = r['scanFrequency'] as string;
    if (!FREQUENCIES.includes(frequency)) throw invalid(`1 validation error detected: Value '${frequency}' at 'rules.${i + 1}.member.scanFrequency' failed to satisfy constraint: Member must satisfy enum value set: [SCAN_ON_PUSH, CONTINUOUS_SCAN, MANUAL]`);
    if (scanType === 'BASIC' && frequency === 'CONTINUOUS_SCAN') throw invalid('CONTINUOUS_SCAN scan frequency is not supported for BASIC scan type; use ENHANCED scanning for continuous scans');
    if (frequency === 'MANUAL') throw invalid('MANUAL is not a scan frequency a rule can set: repositories no rule matches are scanned manually');
    if (rules.some((x) => x.scanFrequency === frequency)) throw invalid(`Only one rule per scan frequency is allowed; ${frequency} is given twice`);
    const filters = (r['repositoryFilters'] as unknown[] | undefined) ?? [];
    if (!Array.isArray(filters) || filters.length === 0 || filters.length > 100) throw invalid(`1 validation error detected: Value at 'rules.${i + 1}.member.repositoryFilters' failed to satisfy constraint: Member must have length between 1 and 100`);
    const repositoryFilters = filters.map((f, j) => {
      const filter = (f as Record<string, any>)?.['filter'];
      const filterType = (f as Record<string, any>)?.['filterType'];
      if (filterType !== 'WILDCARD') throw invalid(`1 validation error detected: Value '${String(filterType)}' at 'rules.${i + 1}.member.repositoryFilters.${j + 1}.member.filterType' failed to satisfy constraint: Member must satisfy enum value set: [WILDCARD]`);
      if (typeof filter !== 'string' || filter.length === 0 || filter.length > 255 || !FILTER.test(filter)) {
        throw invalid(`1 validation error detected: Value '${String(filter)}' at 'rules.${i + 1}.member.repositoryFilters.${j + 1}.member.filter' failed to satisfy constraint: Member must satisfy regular expression pattern: ^[a-z0-9*](?:[._-]*[a-z0-9*]+)*(?:/[a-z0-9*]+(?:[._-]*[a-z0-9*]+)*)*$`);
      }
      return { filter, filterType: 'WILDCARD' as const };
    });
    rules.push({ scanFrequency: frequency as ScanningRule['scanFrequency'], repositoryFilters });
  }
  return { scanType, rules };
}

async function configurationOf(ctx: ActionContext, account: string): Promise<ScanningConfiguration> {
  return storedScanning(await ctx.deps.registry.scans.configuration(account));
}

/** The image a call names, as ECR words it when it names none. */
async function imageOf(ctx: ActionContext, repo: { ref: RepoRef; id: number }, id: ImageIdentifier): Promise<{ digest: string; tag?: string }> {
  if (typeof id !== 'object' || id === null) throw invalid("1 validation error detected: Value null at 'imageId' failed to satisfy constraint: Member must not be null");
  const resolved = await resolveImageId(ctx, repo.id, id);
  if ('failure' in resolved) {
    if (resolved.failure.failureCode === 'ImageNotFound' || resolved.failure.failureCode === 'ImageTagDoesNotMatchDigest') throw imageNotFound(repo.ref, id);
    throw new AwsError('InvalidParameterException', resolved.failure.failureReason);
  }
  return { digest: resolved.digest, ...(resolved.tag !== undefined ? { tag: resolved.tag } : {}) };
}

/** findingSeverityCounts as each scan type spells them: Inspector's UNTRIAGED for enhanced scans' UNDEFINED. */
function countsOf(view: ScanView): Record<string, number> {
  if (view.scanType !== 'ENHANCED' || view.counts['UNDEFINED'] === undefined) return view.counts;
  const { UNDEFINED: untriaged, ...rest } = view.counts;
  return { ...rest, UNTRIAGED: (rest['UNTRIAGED'] ?? 0) + (untriaged ?? 0) };
}

/** What StartImageScan's and DescribeImageScanFindings' answers begin with: the image they are about. */
function scanResponseHead(ref: RepoRef, image: { digest: string; tag?: string }) {
  return { registryId: ref.account, repositoryName: ref.name, imageId: { imageDigest: image.digest, ...(image.tag !== undefined ? { imageTag: image.tag } : {}) } };
}

function scanStatus(view: ScanView): { status: string; description?: string } {
  return { status: view.status, ...(view.description !== undefined ? { description: view.description } : {}) };
}

/**
 * Whether the repository's results show as ACTIVE: under scan.continuousStatus ACTIVE, when its
 * images are continuously scanned now, as ECR's enhanced scanning reports them.
 */
async function isContinuous(ctx: ActionContext, repository: Repository): Promise<boolean> {
  if (ctx.deps.scanning.continuousStatus !== 'ACTIVE') return false;
  return isContinuouslyScanned(await configurationOf(ctx, repository.accountId), repository.name);
}

/** DescribeImages' imageScanStatus and imageScanFindingsSummary, by digest. */
export async function imageScanSummaries(ctx: ActionContext, repository: Repository, digests: string[]): Promise<Map<string, Record<string, unknown>>> {
  const views = await scanViews(ctx.deps.registry, repository.id, digests, { isContinuous: await isContinuous(ctx, repository) });
  const out = new Map<string, Record<string, unknown>>();
  for (const [digest, view] of views) {
    out.set(digest, {
      imageScanStatus: scanStatus(view),
      ...(view.status === 'COMPLETE' || view.status === 'ACTIVE'
        ? {
            imageScanFindingsSummary: {
              ...(view.completedAtMs !== undefined ? { imageScanCompletedAt: new Date(view.completedAtMs) } : {}),
              ...(view.dbUpdatedAtMs !== undefined ? { vulnerabilitySourceUpdatedAt: new Date(view.dbUpdatedAtMs) } : {}),
              findingSeverityCounts: countsOf(view),
            },
          }
        : {}),
    });
  }
  return out;
}

/** The CVSS scores a basic finding lists as attributes, as ECR names them. */
function basicAttributes(f: Finding): Array<{ key: string; value: string }> {
  const attributes = [
    { key: 'package_version', value: f.package.version },
    { key: 'package_name', value: f.package.name },
  ];
  for (const score of f.cvss) {
    const prefix = score.version === '2.0' ? 'CVSS2' : score.version.startsWith('3') ? 'CVSS3' : score.version.startsWith('4') ? 'CVSS4' : undefined;
    if (!prefix || attributes.some((a) => a.key === `${prefix}_VECTOR`)) continue;
    attributes.push({ key: `${prefix}_VECTOR`, value: score.vector }, { key: `${prefix}_SCORE`, value: String(score.baseScore) });
  }
  return attributes;
}

function basicFinding(f: Finding): Record<string, unknown> {
  return { name: f.name, description: f.description, uri: f.uri, severity: f.severity === 'UNTRIAGED' ? 'UNDEFINED' : f.severity, attributes: basicAttributes(f) };
}

/** Inspector's packageManager for each ecosystem. */
const PACKAGE_MANAGER: Record<string, string> = { deb: 'OS', rpm: 'OS', apk: 'OS', npm: 'NODEPKG', pypi: 'PYTHONPKG', go: 'GOBINARY', maven: 'JAR', cargo: 'CARGO' };

/** Splits an OS package version into Inspector's epoch, version and release. */
function versionParts(f: Finding): { epoch: number; version: string; release?: string } {
  const { ecosystem, version } = f.package;
  if (ecosystem !== 'deb' && ecosystem !== 'rpm' && ecosystem !== 'apk') return { epoch: 0, version };
  let rest = version;
  let epoch = 0;
  const colon = rest.indexOf(':');
  if (colon > 0 && /^\d+$/.test(rest.slice(0, colon))) {
    epoch = Number(rest.slice(0, colon));
    rest = rest.slice(colon + 1);
  }
  const dash = rest.lastIndexOf('-');
  return dash > 0 ? { epoch, version: rest.slice(0, dash), release: rest.slice(dash + 1) } : { epoch, version: rest };
}

function enhancedFinding(ctx: ActionContext, ref: RepoRef, image: { digest: string; tags: string[]; pushedAtMs: number | undefined }, item: ScanView['findings'][number]): Record<string, unknown> {
  const { finding: f, stored } = item;
  const key = findingKey(f);
  const id = createHash('sha256').update(`${ref.account}/${ref.name}@${item.image}\u0000${key}`).digest('hex').slice(0, 32);
  // The score the severity came from, by the matcher's preference (src/scan/match/cvss.ts).
  const preferred = preferredScore(f.cvss);
  // Inspector has no UNDEFINED: a finding nobody rated is UNTRIAGED.
  const severity = f.severity === 'UNDEFINED' ? 'UNTRIAGED' : f.severity;
  const parts = versionParts(f);
  const layer = f.package.layer !== undefined ? stored.layerDigests[f.package.layer] : undefined;
  const observed = new Date(stored.firstObservedMs[key] ?? Date.now());
  const platform = stored.platform;
  return {
    awsAccountId: ref.account,
    description: f.description,
    findingArn: `arn:aws:inspector2:${ctx.deps.region}:${ref.account}:finding/${id}`,
    firstObservedAt: observed,
    lastObservedAt: new Date(),
    packageVulnerabilityDetails: {
      cvss: f.cvss.map((c) => ({ baseScore: c.baseScore, scoringVector: c.vector, source: f.source, version: c.version })),
      referenceUrls: f.references.slice(0, 100),
      relatedVulnerabilities: f.aliases.filter((a) => a !== f.name),
      source: f.source,
      sourceUrl: f.uri,
      ...(f.published ? { vendorCreatedAt: new Date(f.published) } : {}),
      vendorSeverity: f.distroSeverity ?? severity,
      ...(f.modified ? { vendorUpdatedAt: new Date(f.modified) } : {}),
      vulnerabilityId: f.name,
      vulnerablePackages: [
        {
          ...(f.package.arch ? { arch: f.package.arch } : {}),
          epoch: parts.epoch,
          filePath: f.package.path,
          ...(f.fixedVersion ? { fixedInVersion: f.fixedVersion } : {}),
          name: f.package.name,
          packageManager: PACKAGE_MANAGER[f.package.ecosystem] ?? 'OS',
          ...(parts.release !== undefined ? { release: parts.release } : {}),
          ...(layer ? { sourceLayerHash: layer } : {}),
          version: parts.version,
        },
      ],
    },
    remediation: { recommendation: { text: f.fixedVersion ? `Upgrade ${f.package.name} to ${f.fixedVersion} or later.` : 'None Provided', url: f.uri } },
    resources: [
      {
        details: {
          awsEcrContainerImage: {
            ...(platform.architecture ? { architecture: platform.architecture } : {}),
            imageHash: item.image,
            imageTags: image.tags,
            ...(platform.os ? { platform: platform.os } : {}),
            ...(image.pushedAtMs !== undefined ? { pushedAt: new Date(image.pushedAtMs) } : {}),
            registry: ref.account,
            repositoryName: ref.name,
          },
        },
        id: `${repositoryArn(ctx.deps.region, ref.account, ref.name)}/${item.image}`,
        type: 'AWS_ECR_CONTAINER_IMAGE',
      },
    ],
    ...(preferred ? { score: preferred.baseScore, scoreDetails: { cvss: { adjustments: [], score: preferred.baseScore, scoreSource: f.source, scoringVector: preferred.vector, version: preferred.version } } } : {}),
    severity,
    status: 'ACTIVE',
    title: f.title,
    type: 'PACKAGE_VULNERABILITY',
    updatedAt: new Date(),
    fixAvailable: f.fixedVersion ? 'YES' : 'NO',
  };
}

function pageSize(input: Record<string, any>): number {
  const max = input['maxResults'] as number | undefined;
  if (max === undefined) return 100;
  if (!Number.isInteger(max) || max < 1 || max > 1000) throw invalid(`1 validation error detected: Value '${max}' at 'maxResults' failed to satisfy constraint: Member must have value between 1 and 1000`);
  return max;
}

export const scanningActions: Record<string, ActionHandler> = {
  async PutRegistryScanningConfiguration(ctx, input) {
    await ctx.authorize('ecr:PutRegistryScanningConfiguration', '*');
    const config = parseConfiguration(input);
    await ctx.deps.registry.scans.putConfiguration(ctx.principal.accountId, { scanType: config.scanType, rules: JSON.stringify(config.rules), updatedAtMs: Date.now() });
    return { registryScanningConfiguration: { scanType: config.scanType, rules: config.rules } };
  },

  async GetRegistryScanningConfiguration(ctx) {
    await ctx.authorize('ecr:GetRegistryScanningConfiguration', '*');
    const config = await configurationOf(ctx, ctx.principal.accountId);
    return { registryId: ctx.principal.accountId, scanningConfiguration: { scanType: config.scanType, rules: config.rules } };
  },

  async BatchGetRepositoryScanningConfiguration(ctx, input) {
    const names = input['repositoryNames'] as string[] | undefined;
    if (!Array.isArray(names) || names.length === 0 || names.length > 25) throw invalid("1 validation error detected: Value at 'repositoryNames' failed to satisfy constraint: Member must have length between 1 and 25");
    const account = registryOf(ctx);
    const config = await configurationOf(ctx, account);
    const scanningConfigurations: Record<string, unknown>[] = [];
    const failures: Record<string, unknown>[] = [];
    for (const name of [...new Set(names)]) {
      let repo;
      try {
        repo = await repositoryOf(ctx, { repositoryName: name }, 'ecr:BatchGetRepositoryScanningConfiguration');
      } catch (err) {
        if (err instanceof AwsError && err.code === 'RepositoryNotFoundException') {
          failures.push({ repositoryName: name, failureCode: 'REPOSITORY_NOT_FOUND', failureReason: 'REPOSITORY_NOT_FOUND' });
          continue;
        }
        throw err;
      }
      const settings = await ctx.deps.registry.repositorySettings(repo.repository);
      const applied = repositoryScanning(config, name, settings.scanOnPush);
      scanningConfigurations.push({ repositoryArn: repo.arn, repositoryName: name, scanOnPush: applied.scanOnPush, scanFrequency: applied.scanFrequency, appliedScanFilters: applied.appliedScanFilters });
    }
    return { scanningConfigurations, failures };
  },

  async StartImageScan(ctx, input) {
    const repo = await repositoryOf(ctx, input, 'ecr:StartImageScan');
    const image = await imageOf(ctx, repo, input['imageId'] as ImageIdentifier);
    const manifest = await ctx.deps.registry.getManifest(repo.ref, image.digest);
    const target = scanTarget(manifest.payload, manifest.mediaType);
    if (target.kind === 'unsupported') throw new AwsError('UnsupportedImageTypeException', `The image type is not supported for scanning: ${target.reason}`);
    const config = await configurationOf(ctx, repo.ref.account);
    const existing = await ctx.deps.registry.scans.get(repo.id, image.digest);
    const quotaMs = ctx.deps.scanning.manualScanQuotaSeconds * 1000;
    // ECR: an image is scanned at most once a day under basic scanning, its scan on push included.
    const lastScanMs = Math.max(existing?.lastManualAtMs ?? -Infinity, existing?.reason === 'push' ? existing.requestedAtMs : -Infinity);
    if (config.scanType === 'BASIC' && quotaMs > 0 && Date.now() - lastScanMs < quotaMs) {
      throw new AwsError('LimitExceededException', `The scan quota per image has been exceeded. Wait and try again: an image can be scanned once every ${Math.round(quotaMs / 3_600_000)} hours, its scan on push included (next at ${new Date(lastScanMs + quotaMs).toISOString()}).`);
    }
    const queued = await ctx.deps.registry.scans.request(repo.id, image.digest, { reason: 'manual', scanType: config.scanType, isManual: true });
    if (!queued && existing && (existing.status === 'PENDING' || existing.status === 'IN_PROGRESS')) {
      throw new AwsError('LimitExceededException', 'A scan of this image is already in progress.');
    }
    ctx.deps.scanning.wake?.();
    return { ...scanResponseHead(repo.ref, image), imageScanStatus: { status: 'IN_PROGRESS', description: 'The scan was requested.' } };
  },

  async DescribeImageScanFindings(ctx, input) {
    const repo = await repositoryOf(ctx, input, 'ecr:DescribeImageScanFindings');
    const id = input['imageId'] as ImageIdentifier;
    const image = await imageOf(ctx, repo, id);
    const limit = pageSize(input);
    const view = (await scanViews(ctx.deps.registry, repo.id, [image.digest], { isContinuous: await isContinuous(ctx, repo.repository), withFindings: true })).get(image.digest);
    if (!view) {
      // A push the scan-on-push consumer has not read yet (it polls every scan.pollIntervalMs):
      // its scan is coming, so the image is IN_PROGRESS, as on ECR, where the scan starts with
      // the push. Without this, `aws ecr wait image-scan-complete` run straight after a push
      // would stop at ScanNotFoundException.
      const settings = await ctx.deps.registry.repositorySettings(repo.repository);
      const applied = repositoryScanning(await configurationOf(ctx, repo.ref.account), repo.ref.name, settings.scanOnPush);
      if (applied.scanOnPush && (await ctx.deps.registry.scans.isPushUnread(SCAN_ON_PUSH_CONSUMER, repo.ref.account, repo.ref.name, image.digest))) {
        return { ...scanResponseHead(repo.ref, image), imageScanStatus: { status: 'IN_PROGRESS', description: 'The image was pushed and its scan is starting.' } };
      }
      throw new AwsError(
        'ScanNotFoundException',
        `Image scan does not exist for the image with '{imageDigest:'${image.digest}', imageTag:'${image.tag ?? 'null'}'}' in the repository with name '${repo.ref.name}' in the registry with id '${repo.ref.account}'`,
      );
    }
    const after = afterToken(input['nextToken'] as string | undefined);
    const start = after === undefined ? 0 : Number(after);
    if (!Number.isInteger(start) || start < 0) throw new AwsError('InvalidParameterException', "Invalid parameter at 'nextToken' failed to satisfy constraint: 'The nextToken is not one this registry returned; start again without it'");
    const page = view.findings.slice(start, start + limit);
    const more = start + limit < view.findings.length;
    const base = { ...scanResponseHead(repo.ref, image), imageScanStatus: scanStatus(view) };
    if (view.status !== 'COMPLETE' && view.status !== 'ACTIVE') return base;
    let findingsOut: Record<string, unknown>;
    if (view.scanType === 'ENHANCED') {
      const record = (await ctx.deps.registry.getImages(repo.id, [image.digest as never])).get(image.digest as never);
      const about = { digest: image.digest, tags: record?.tags ?? [], pushedAtMs: record?.createdAtMs };
      findingsOut = { enhancedFindings: page.map((item) => enhancedFinding(ctx, repo.ref, about, item)) };
    } else {
      findingsOut = { findings: page.map((item) => basicFinding(item.finding)) };
    }
    return {
      ...base,
      imageScanFindings: {
        ...(view.completedAtMs !== undefined ? { imageScanCompletedAt: new Date(view.completedAtMs) } : {}),
        ...(view.dbUpdatedAtMs !== undefined ? { vulnerabilitySourceUpdatedAt: new Date(view.dbUpdatedAtMs) } : {}),
        findingSeverityCounts: countsOf(view),
        ...findingsOut,
      },
      ...(more ? { nextToken: nextTokenAfter(String(start + limit)) } : {}),
    };
  },
};

