import { isIndexMediaType } from '../../registry/manifest.ts';
import { ApiError, unlessMissing } from '../api.ts';
import type { PageContext, PageHandler, PageResult, Routes } from '../console.ts';
import { html, type SafeHtml } from '../html.ts';
import { breadcrumbs, bytes, copyButton, csrfField, deniedNote, imagePath, pager, repoPath, shortDigest, when, type Notice } from '../layout.ts';
import { imagePage } from './image.ts';
import { lifecyclePage, lifecyclePost } from './lifecycle.ts';
import { permissions } from './permissions.ts';

/** The repository and the page under it, from `/console/repos/NAME[/-/PAGE]`. */
export interface RepoTarget {
  name: string;
  sub: string;
}

export function parseTarget(url: string): RepoTarget | undefined {
  const pathOnly = url.split('?', 1)[0]!.slice('/console/repos/'.length);
  const [namePart, sub = ''] = pathOnly.split('/-/', 2) as [string, string?];
  try {
    const name = namePart.split('/').map(decodeURIComponent).join('/');
    return name ? { name, sub: decodeURIComponent(sub) } : undefined;
  } catch {
    return undefined;
  }
}

export interface ImageDetail {
  imageDigest: string;
  imageTags?: string[];
  imageSizeInBytes?: number;
  imagePushedAt?: number;
  lastRecordedPullTime?: number;
  imageManifestMediaType?: string;
  artifactMediaType?: string;
  subjectManifestDigest?: string;
  imageScanStatus?: { status?: string; description?: string };
  imageScanFindingsSummary?: { findingSeverityCounts?: Record<string, number> };
}

export const SEVERITIES = ['CRITICAL', 'HIGH', 'MEDIUM', 'LOW', 'INFORMATIONAL', 'UNDEFINED'] as const;

export function isIndex(mediaType: string | undefined): boolean {
  return mediaType !== undefined && isIndexMediaType(mediaType);
}

export function artifactKind(d: Pick<ImageDetail, 'imageManifestMediaType' | 'artifactMediaType'>): string {
  if (isIndex(d.imageManifestMediaType)) return 'Image index';
  const t = d.artifactMediaType ?? '';
  if (/vnd\.(oci|docker)\.(image\.config|container\.image)/.test(t)) return 'Image';
  if (/cosign|sigstore|notary|signature/.test(t)) return 'Signature';
  if (/spdx|cyclonedx|sbom/.test(t)) return 'SBOM';
  if (/helm/.test(t)) return 'Helm chart';
  return t || 'Image';
}

export function scanCell(d: ImageDetail): SafeHtml {
  const status = d.imageScanStatus?.status;
  if (!status) return html`<span class="muted">Not scanned</span>`;
  const counts = d.imageScanFindingsSummary?.findingSeverityCounts ?? {};
  const badges = SEVERITIES.filter((s) => counts[s]).map((s) => html`<span class="sev ${s.toLowerCase()}" title="${s}">${s[0]}${s.slice(1).toLowerCase()} ${counts[s]}</span>`);
  return html`${status === 'COMPLETE' || status === 'ACTIVE' ? (badges.length ? badges : html`<span class="sev none">No findings</span>`) : html`<span class="muted">${status.replace(/_/g, ' ').toLowerCase()}</span>`}`;
}

export function repoHeader(name: string, active: string, title: string): SafeHtml {
  const tab = (key: string, href: string, label: string) => html`<li><a href="${href}"${key === active ? html` aria-current="page"` : ''}>${label}</a></li>`;
  return html`${breadcrumbs([['Repositories', '/console/repositories'], [name, active === 'images' ? undefined : repoPath(name)], ...(active === 'images' ? [] : ([[title]] as [string][]))])}
<h1 class="repo-name">${name}</h1>
<nav aria-label="Repository" class="tabs"><ul>
  ${tab('images', repoPath(name), 'Images')}
  ${tab('settings', repoPath(name, 'settings'), 'Settings')}
  ${tab('lifecycle', repoPath(name, 'lifecycle'), 'Lifecycle policy')}
  ${tab('push', repoPath(name, 'push-commands'), 'Push commands')}
</ul></nav>`;
}

const PAGE_SIZE = 50;

interface ReplicationStatus {
  region: string;
  registryId: string;
  status: string;
  failureCode?: string;
}

/**
 * Each image's replication status, when the registry has replication rules (asked once; none, or
 * not allowed to read them: no column to fill, and no call per image).
 */
async function replicationOf(ctx: PageContext, name: string, digests: readonly string[], allowed: boolean): Promise<Map<string, ReplicationStatus[]> | undefined> {
  if (!allowed) return undefined;
  const registry = await unlessMissing(ctx.api.call<{ replicationConfiguration?: { rules?: unknown[] } }>('ecr', 'DescribeRegistry'), /^$/, true);
  if (!registry?.replicationConfiguration?.rules?.length) return undefined;
  const out = new Map<string, ReplicationStatus[]>();
  await Promise.all(
    digests.map(async (imageDigest) => {
      const status = await unlessMissing(ctx.api.call<{ replicationStatuses?: ReplicationStatus[] }>('ecr', 'DescribeImageReplicationStatus', { repositoryName: name, imageId: { imageDigest } }), /NotFound/, true);
      out.set(imageDigest, status?.replicationStatuses ?? []);
    }),
  );
  return out;
}

function replicationCell(statuses: ReplicationStatus[] | undefined): SafeHtml {
  if (statuses === undefined) return html`<span class="muted" title="No replication rule, or not allowed to read them">–</span>`;
  if (statuses.length === 0) return html`<span class="muted">not replicated</span>`;
  const failed = statuses.filter((s) => s.status === 'FAILED');
  if (failed.length) return html`<span class="status failed" title="${failed.map((s) => `${s.region}/${s.registryId}: ${s.failureCode ?? 'FAILED'}`).join(', ')}">Failed (${failed.length} of ${statuses.length})</span>`;
  const pending = statuses.filter((s) => s.status !== 'COMPLETE').length;
  return pending ? html`<span>In progress (${statuses.length - pending} of ${statuses.length})</span>` : html`<span class="status complete">Complete (${statuses.length})</span>`;
}

async function images(ctx: PageContext, target: RepoTarget, notices: Notice[] = [], status = 200): Promise<PageResult> {
  const name = target.name;
  const q = (ctx.query.get('q') ?? '').trim();
  const tagStatus = ['TAGGED', 'UNTAGGED'].includes(ctx.query.get('tagStatus') ?? '') ? ctx.query.get('tagStatus')! : 'ANY';
  const next = ctx.query.get('next') ?? undefined;
  const [out, can, repo] = await Promise.all([
    ctx.api.call<{ imageDetails: ImageDetail[]; totalCount: number; nextToken?: string }>('ecr', 'BerthListImages', {
      repositoryName: name,
      ...(q ? { filter: q } : {}),
      tagStatus,
      sortBy: 'pushedAt',
      sortOrder: 'DESC',
      maxResults: PAGE_SIZE,
      ...(next ? { nextToken: next } : {}),
    }),
    permissions(ctx.api, ['ecr:BatchDeleteImage', 'ecr:DescribeRegistry', 'ecr:DescribeImageReplicationStatus'], name),
    describe(ctx, name),
  ]);
  const uri = repo.repositoryUri;
  const replication = await replicationOf(ctx, name, out.imageDetails.map((d) => d.imageDigest), can['ecr:DescribeRegistry'] && can['ecr:DescribeImageReplicationStatus']);
  const onPage = new Set(out.imageDetails.map((d) => d.imageDigest));
  const children = new Map<string, ImageDetail[]>();
  for (const d of out.imageDetails) {
    if (d.subjectManifestDigest && onPage.has(d.subjectManifestDigest)) children.set(d.subjectManifestDigest, [...(children.get(d.subjectManifestDigest) ?? []), d]);
  }
  const row = (d: ImageDetail, referrer: boolean): SafeHtml => html`<tr${referrer ? html` class="referrer"` : ''}>
  <td>${can['ecr:BatchDeleteImage'] ? html`<input type="checkbox" name="digest" value="${d.imageDigest}" aria-label="Select ${shortDigest(d.imageDigest)}">` : ''}</td>
  <td>${referrer ? html`<span class="muted" aria-label="refers to the image above">↳ </span>` : ''}${d.imageTags?.length ? d.imageTags.map((t) => html`<span class="tag">${t}</span> `) : html`<span class="muted">untagged</span>`}</td>
  <td><a href="${imagePath(name, d.imageDigest)}"><code>${shortDigest(d.imageDigest)}</code></a> ${copyButton(`${uri}@${d.imageDigest}`, `Copy the URI of ${shortDigest(d.imageDigest)}`)}</td>
  <td>${artifactKind(d)}${d.subjectManifestDigest && !referrer ? html` <span class="muted">of <a href="${imagePath(name, d.subjectManifestDigest)}">${shortDigest(d.subjectManifestDigest)}</a></span>` : ''}</td>
  <td class="num">${bytes(d.imageSizeInBytes)}</td>
  <td>${when(d.imagePushedAt)}</td>
  <td>${when(d.lastRecordedPullTime)}</td>
  <td>${scanCell(d)}</td>
  <td><a href="${imagePath(name, d.imageDigest, 'overview')}#replication">${replicationCell(replication?.get(d.imageDigest))}</a></td>
</tr>`;
  const rows: SafeHtml[] = [];
  for (const d of out.imageDetails) {
    if (d.subjectManifestDigest && onPage.has(d.subjectManifestDigest)) continue;
    rows.push(row(d, false));
    for (const c of children.get(d.imageDigest) ?? []) rows.push(row(c, true));
  }
  const href = (nextToken?: string) => {
    const p = new URLSearchParams();
    if (q) p.set('q', q);
    if (tagStatus !== 'ANY') p.set('tagStatus', tagStatus);
    if (nextToken) p.set('next', nextToken);
    const s = p.toString();
    return `${repoPath(name)}${s ? `?${s}` : ''}`;
  };
  if (ctx.query.get('created')) notices.push({ kind: 'success', text: html`Repository ${name} created. See <a href="${repoPath(name, 'push-commands')}">the push commands</a>.` });
  if (ctx.query.get('deleted')) notices.push({ kind: 'success', text: `${ctx.query.get('deleted')} image(s) deleted.` });
  return {
    title: name,
    section: 'repositories',
    status,
    notices,
    body: html`${repoHeader(name, 'images', 'Images')}
<p class="uri-line"><code>${uri}</code> ${copyButton(uri, 'Copy the repository URI')}</p>
<form method="get" action="${repoPath(name)}" class="filters" role="search">
  <label for="q">Filter by tag or digest</label>
  <input id="q" name="q" type="search" value="${q}">
  <label for="tagStatus">Show</label>
  <select id="tagStatus" name="tagStatus">
    <option value="ANY"${tagStatus === 'ANY' ? html` selected` : ''}>All images</option>
    <option value="TAGGED"${tagStatus === 'TAGGED' ? html` selected` : ''}>Tagged only</option>
    <option value="UNTAGGED"${tagStatus === 'UNTAGGED' ? html` selected` : ''}>Untagged only</option>
  </select>
  <button type="submit">Filter</button>
</form>
<form method="post" action="${repoPath(name, 'delete-images')}" data-confirm="Delete the selected images? This cannot be undone.">
${csrfField(ctx.frame)}
<div class="table-wrap"><table class="images">
<caption>${out.totalCount} ${out.totalCount === 1 ? 'image' : 'images'}</caption>
<thead><tr><th scope="col">${can['ecr:BatchDeleteImage'] ? html`<input type="checkbox" data-select-all="digest" aria-label="Select all images on this page">` : html`<span class="sr-only">Select</span>`}</th><th scope="col">Tags</th><th scope="col">Digest</th><th scope="col">Artifact type</th><th scope="col">Size</th><th scope="col">Pushed</th><th scope="col">Last pulled</th><th scope="col">Scan</th><th scope="col">Replication</th></tr></thead>
<tbody>${rows.length ? rows : html`<tr><td colspan="9">${q || tagStatus !== 'ANY' ? 'No image matches.' : 'No images yet: see the push commands.'}</td></tr>`}</tbody>
</table></div>
${can['ecr:BatchDeleteImage'] ? html`<button type="submit" class="danger">Delete selected</button>` : deniedNote('delete images in this repository', 'ecr:BatchDeleteImage')}
</form>
${pager(out.nextToken ? href(out.nextToken) : undefined, next ? href() : undefined, `${out.imageDetails.length} shown of ${out.totalCount}`)}`,
  };
}

async function deleteImages(ctx: PageContext, target: RepoTarget): Promise<PageResult> {
  const digests = ctx.form.getAll('digest').filter((d) => /^sha(256|512):[0-9a-f]+$/.test(d));
  if (digests.length === 0) return images(ctx, target, [{ kind: 'error', text: 'Select at least one image to delete.' }]);
  try {
    const out = await ctx.api.call<{ imageIds: unknown[]; failures?: { failureReason?: string; imageId?: { imageDigest?: string } }[] }>('ecr', 'BatchDeleteImage', {
      repositoryName: target.name,
      imageIds: digests.map((imageDigest) => ({ imageDigest })),
    });
    if (out.failures?.length) {
      return images(ctx, target, out.failures.map((f) => ({ kind: 'error' as const, text: `${shortDigest(f.imageId?.imageDigest)}: ${f.failureReason ?? 'not deleted'}` })));
    }
    return { redirect: `${repoPath(target.name)}?deleted=${digests.length}` };
  } catch (err) {
    if (err instanceof ApiError) return images(ctx, target, [{ kind: err.denied ? 'denied' : 'error', text: err.message }], err.denied ? 403 : 400);
    throw err;
  }
}

interface RepositoryDescription {
  repositoryName: string;
  repositoryUri: string;
  repositoryArn: string;
  createdAt: number;
  imageTagMutability: string;
  imageTagMutabilityExclusionFilters?: { filterType: string; filter: string }[];
  imageScanningConfiguration?: { scanOnPush?: boolean };
  encryptionConfiguration?: { encryptionType?: string; kmsKey?: string };
}

export async function describe(ctx: PageContext, name: string): Promise<RepositoryDescription> {
  const out = await ctx.api.call<{ repositories: RepositoryDescription[] }>('ecr', 'DescribeRepositories', { repositoryNames: [name] });
  return out.repositories[0]!;
}


const SETTINGS_ACTIONS = ['ecr:PutImageTagMutability', 'ecr:PutImageScanningConfiguration', 'ecr:SetRepositoryPolicy', 'ecr:DeleteRepositoryPolicy', 'ecr:GetRepositoryPolicy', 'ecr:DeleteRepository'] as const;

async function settings(ctx: PageContext, target: RepoTarget, notices: Notice[] = [], draft?: { policy?: string }, status = 200): Promise<PageResult> {
  const name = target.name;
  const [repo, can] = await Promise.all([describe(ctx, name), permissions(ctx.api, SETTINGS_ACTIONS, name)]);
  const policy = can['ecr:GetRepositoryPolicy']
    ? await unlessMissing(ctx.api.call<{ policyText: string }>('ecr', 'GetRepositoryPolicy', { repositoryName: name }), /RepositoryPolicyNotFound/)
    : undefined;
  const policyText = draft?.policy ?? (policy ? prettyJson(policy.policyText) : '');
  const filters = (repo.imageTagMutabilityExclusionFilters ?? []).map((f) => f.filter).join('\n');
  const m = repo.imageTagMutability;
  const option = (value: string, label: string) => html`<option value="${value}"${m === value ? html` selected` : ''}>${label}</option>`;
  if (ctx.query.get('saved')) notices.push({ kind: 'success', text: `${ctx.query.get('saved')} saved.` });
  return {
    title: `${name}: settings`,
    section: 'repositories',
    status,
    notices,
    body: html`${repoHeader(name, 'settings', 'Settings')}
<dl class="facts">
  <dt>URI</dt><dd><code>${repo.repositoryUri}</code> ${copyButton(repo.repositoryUri, 'Copy the repository URI')}</dd>
  <dt>ARN</dt><dd><code>${repo.repositoryArn}</code></dd>
  <dt>Created</dt><dd>${when(repo.createdAt)}</dd>
  <dt>Encryption</dt><dd>${repo.encryptionConfiguration?.encryptionType ?? 'AES256'}${repo.encryptionConfiguration?.kmsKey ? html` (<code>${repo.encryptionConfiguration.kmsKey}</code>)` : ''}</dd>
</dl>
<section aria-labelledby="mutability-h"><h2 id="mutability-h">Tag immutability</h2>
<form method="post" action="${repoPath(name, 'mutability')}" class="stack narrow">
  ${csrfField(ctx.frame)}
  <label for="mutability">Tags</label>
  <select id="mutability" name="mutability"${can['ecr:PutImageTagMutability'] ? '' : html` disabled`}>
    ${option('MUTABLE', 'Mutable')}${option('IMMUTABLE', 'Immutable')}${option('MUTABLE_WITH_EXCLUSION', 'Mutable, except tags matching the filters')}${option('IMMUTABLE_WITH_EXCLUSION', 'Immutable, except tags matching the filters')}
  </select>
  <label for="filters">Exclusion filters (one wildcard pattern per line, e.g. <code>release-*</code>)</label>
  <textarea id="filters" name="filters" rows="3"${can['ecr:PutImageTagMutability'] ? '' : html` disabled`}>${filters}</textarea>
  ${can['ecr:PutImageTagMutability'] ? html`<button type="submit">Save tag immutability</button>` : deniedNote('change tag immutability', 'ecr:PutImageTagMutability')}
</form></section>
<section aria-labelledby="scan-h"><h2 id="scan-h">Scanning</h2>
<form method="post" action="${repoPath(name, 'scanning')}" class="stack narrow">
  ${csrfField(ctx.frame)}
  <label><input type="checkbox" name="scanOnPush" value="1"${repo.imageScanningConfiguration?.scanOnPush ? html` checked` : ''}${can['ecr:PutImageScanningConfiguration'] ? '' : html` disabled`}> Scan images on push</label>
  ${can['ecr:PutImageScanningConfiguration'] ? html`<button type="submit">Save scanning</button>` : deniedNote('change scanning', 'ecr:PutImageScanningConfiguration')}
</form></section>
<section aria-labelledby="policy-h"><h2 id="policy-h">Repository policy</h2>
${can['ecr:GetRepositoryPolicy'] ? '' : deniedNote('read the repository policy', 'ecr:GetRepositoryPolicy')}
<form method="post" action="${repoPath(name, 'policy')}" class="stack">
  ${csrfField(ctx.frame)}
  <label for="policy">Policy (JSON); empty when there is none</label>
  <textarea id="policy" name="policy" rows="14" class="code" spellcheck="false"${can['ecr:SetRepositoryPolicy'] ? '' : html` readonly`}>${policyText}</textarea>
  <div class="buttons">
  ${can['ecr:SetRepositoryPolicy'] ? html`<button type="submit" name="action" value="save">Save policy</button>` : deniedNote('change the repository policy', 'ecr:SetRepositoryPolicy')}
  ${policy && can['ecr:DeleteRepositoryPolicy'] ? html`<button type="submit" name="action" value="delete" class="danger" data-confirm="Delete the repository policy?">Delete policy</button>` : ''}
  </div>
</form></section>
<section aria-labelledby="delete-h" class="danger-zone"><h2 id="delete-h">Delete repository</h2>
${can['ecr:DeleteRepository']
  ? html`<form method="post" action="${repoPath(name, 'delete')}" class="stack narrow" data-confirm="Delete the repository ${name}?">
  ${csrfField(ctx.frame)}
  <label><input type="checkbox" name="force" value="1"> Also delete its images (force)</label>
  <button type="submit" class="danger">Delete repository</button>
</form>`
  : deniedNote('delete this repository', 'ecr:DeleteRepository')}
</section>`,
  };
}

export function prettyJson(text: string): string {
  try {
    return JSON.stringify(JSON.parse(text), null, 2);
  } catch {
    return text;
  }
}

async function settingsPost(ctx: PageContext, target: RepoTarget, what: string): Promise<PageResult> {
  const name = target.name;
  try {
    if (what === 'mutability') {
      const mutability = ctx.form.get('mutability') ?? 'MUTABLE';
      const filters = (ctx.form.get('filters') ?? '').split(/\r?\n/).map((s) => s.trim()).filter(Boolean);
      await ctx.api.call('ecr', 'PutImageTagMutability', {
        repositoryName: name,
        imageTagMutability: mutability,
        ...(/WITH_EXCLUSION/.test(mutability) ? { imageTagMutabilityExclusionFilters: filters.map((filter) => ({ filterType: 'WILDCARD', filter })) } : {}),
      });
      return { redirect: `${repoPath(name, 'settings')}?saved=Tag+immutability` };
    }
    if (what === 'scanning') {
      await ctx.api.call('ecr', 'PutImageScanningConfiguration', { repositoryName: name, imageScanningConfiguration: { scanOnPush: ctx.form.get('scanOnPush') === '1' } });
      return { redirect: `${repoPath(name, 'settings')}?saved=Scanning` };
    }
    if (what === 'policy') {
      const text = (ctx.form.get('policy') ?? '').trim();
      if (ctx.form.get('action') === 'delete' || text === '') {
        await unlessMissing(ctx.api.call('ecr', 'DeleteRepositoryPolicy', { repositoryName: name }), /RepositoryPolicyNotFound/);
        return { redirect: `${repoPath(name, 'settings')}?saved=Policy+removal` };
      }
      try {
        await ctx.api.call('ecr', 'SetRepositoryPolicy', { repositoryName: name, policyText: text });
      } catch (err) {
        if (err instanceof ApiError && !err.denied) return settings(ctx, target, [{ kind: 'error', text: html`The policy was not saved: ${err.message}` }], { policy: ctx.form.get('policy') ?? '' }, 400);
        throw err;
      }
      return { redirect: `${repoPath(name, 'settings')}?saved=Repository+policy` };
    }
    if (what === 'delete') {
      await ctx.api.call('ecr', 'DeleteRepository', { repositoryName: name, ...(ctx.form.get('force') === '1' ? { force: true } : {}) });
      return { redirect: '/console/repositories' };
    }
  } catch (err) {
    if (err instanceof ApiError && !/RepositoryNotFound/.test(err.code)) return settings(ctx, target, [{ kind: err.denied ? 'denied' : 'error', text: err.message }], undefined, err.denied ? 403 : 400);
    throw err;
  }
  return notFound();
}

function notFound(): PageResult {
  return { title: 'Not found', section: 'repositories', status: 404, body: html`<h1>Not found</h1><p>There is no such page. <a href="/console/repositories">Back to repositories</a></p>` };
}

async function pushCommands(ctx: PageContext, target: RepoTarget): Promise<PageResult> {
  const name = target.name;
  const repo = await describe(ctx, name);
  const scheme = ctx.request.protocol === 'https' ? 'https' : 'http';
  const host = ctx.request.host;
  const endpoint = `${scheme}://${host}`;
  const uri = repo.repositoryUri;
  const registry = uri.slice(0, uri.length - name.length - 1);
  const region = /\.ecr\.([^.]+)\./.exec(registry)?.[1] ?? 'us-east-1';
  const login = (tool: string) => `aws ecr get-login-password --region ${region} --endpoint-url ${endpoint} | ${tool} login --username AWS --password-stdin ${registry}`;
  const step = (text: string, command: string) => html`<li><p>${text}</p><div class="command"><pre><code>${command}</code></pre>${copyButton(command, `Copy: ${text}`)}</div></li>`;
  const base = name.split('/').pop()!;
  const plain = scheme === 'http' ? ' --tls-verify=false' : '';
  return {
    title: `${name}: push commands`,
    section: 'repositories',
    body: html`${repoHeader(name, 'push', 'Push commands')}
<section aria-labelledby="docker-h"><h2 id="docker-h">Docker</h2><ol class="steps">
  ${step('Get a password for the registry and log Docker in:', login('docker'))}
  ${step('Build your image (skip this if it is built already):', `docker build -t ${base} .`)}
  ${step('Tag it for this repository:', `docker tag ${base}:latest ${uri}:latest`)}
  ${step('Push it:', `docker push ${uri}:latest`)}
</ol></section>
<section aria-labelledby="podman-h"><h2 id="podman-h">Podman</h2><ol class="steps">
  ${step('Log Podman in:', login('podman') + plain)}
  ${step('Build and tag the image:', `podman build -t ${uri}:latest .`)}
  ${step('Push it:', `podman push${plain} ${uri}:latest`)}
</ol></section>
<section aria-labelledby="aws-h"><h2 id="aws-h">AWS CLI</h2><ol class="steps">
  ${step('List the images of this repository:', `aws ecr describe-images --repository-name ${name} --endpoint-url ${endpoint}`)}
  ${step('Get the manifest of a tag:', `aws ecr batch-get-image --repository-name ${name} --image-ids imageTag=latest --endpoint-url ${endpoint}`)}
</ol></section>
<p class="hint">Credentials: an access key of your IAM user (<code>aws configure</code>); docs/console.md explains how to get one.</p>`,
  };
}

function dispatch(method: 'GET' | 'POST'): PageHandler {
  return async (ctx) => {
    const target = parseTarget(ctx.request.url);
    if (!target) return notFound();
    const sub = target.sub;
    if (method === 'GET') {
      if (sub === '') return images(ctx, target);
      if (sub === 'settings') return settings(ctx, target);
      if (sub === 'lifecycle') return lifecyclePage(ctx, target);
      if (sub === 'push-commands') return pushCommands(ctx, target);
      if (sub.startsWith('image/')) return imagePage(ctx, target, sub.slice('image/'.length));
      return notFound();
    }
    if (sub === 'delete-images') return deleteImages(ctx, target);
    if (sub === 'lifecycle') return lifecyclePost(ctx, target);
    if (['mutability', 'scanning', 'policy', 'delete'].includes(sub)) return settingsPost(ctx, target, sub);
    return notFound();
  };
}

export function repositoryRoutes(): Routes {
  return { get: { '/console/repos/*': dispatch('GET') }, post: { '/console/repos/*': dispatch('POST') } };
}
