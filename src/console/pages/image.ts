import { MediaTypes } from '../../registry/manifest.ts';
import { ApiError, unlessMissing } from '../api.ts';
import type { PageContext, PageResult } from '../console.ts';
import { html, type SafeHtml } from '../html.ts';
import { bytes, copyButton, imagePath, repoPath, shortDigest, when } from '../layout.ts';
import { artifactKind, describe, isIndex, prettyJson, repoHeader, scanCell, SEVERITIES, type ImageDetail, type RepoTarget } from './repository.ts';

/** Every manifest kind, so that BatchGetImage answers the image as it was pushed. */
const ACCEPTED = [MediaTypes.ociManifest, MediaTypes.ociIndex, MediaTypes.dockerManifest, MediaTypes.dockerManifestList, MediaTypes.dockerSchema1];

const TABS = [
  ['overview', 'Overview'],
  ['layers', 'Layers and history'],
  ['findings', 'Scan findings'],
  ['manifest', 'Manifest'],
  ['config', 'Config'],
] as const;
type Tab = (typeof TABS)[number][0];

interface Descriptor {
  mediaType?: string;
  digest: string;
  size?: number;
  artifactType?: string;
  platform?: { os?: string; architecture?: string; variant?: string };
  annotations?: Record<string, string>;
}

interface Finding {
  id: string;
  severity: string;
  packageName: string;
  packageVersion: string;
  /** undefined: the scan does not say (basic findings carry no fixed version). */
  fixedIn: string | undefined;
  fixKnown: boolean;
  description: string;
  uri: string | undefined;
}

/** Basic (ECR) and enhanced (Inspector) findings in one shape. */
function normalize(out: any): Finding[] {
  const f = out.imageScanFindings ?? {};
  if (Array.isArray(f.enhancedFindings)) {
    return f.enhancedFindings.map((e: any) => {
      const p = e.packageVulnerabilityDetails ?? {};
      const pkg = p.vulnerablePackages?.[0] ?? {};
      return {
        id: String(p.vulnerabilityId ?? e.title ?? ''),
        severity: String(e.severity ?? 'UNDEFINED'),
        packageName: String(pkg.name ?? ''),
        packageVersion: [pkg.epoch ? `${pkg.epoch}:` : '', pkg.version ?? '', pkg.release ? `-${pkg.release}` : ''].join(''),
        fixedIn: pkg.fixedInVersion,
        fixKnown: true,
        description: String(e.description ?? ''),
        uri: p.sourceUrl,
      };
    });
  }
  return (f.findings ?? []).map((b: any) => {
    const attr = (k: string) => (b.attributes ?? []).find((a: any) => a.key === k)?.value as string | undefined;
    return { id: String(b.name ?? ''), severity: String(b.severity ?? 'UNDEFINED'), packageName: attr('package_name') ?? '', packageVersion: attr('package_version') ?? '', fixedIn: undefined, fixKnown: false, description: String(b.description ?? ''), uri: b.uri };
  });
}

/** Only http(s) links to advisories: a finding's URI is data from a vulnerability feed. */
function safeUrl(uri: string | undefined): string | undefined {
  if (!uri) return undefined;
  try {
    const u = new URL(uri);
    return u.protocol === 'https:' || u.protocol === 'http:' ? u.toString() : undefined;
  } catch {
    return undefined;
  }
}


export async function imagePage(ctx: PageContext, target: RepoTarget, digestPart: string): Promise<PageResult> {
  const name = target.name;
  const digest = digestPart;
  const tab: Tab = (TABS.map((t) => t[0]) as string[]).includes(ctx.query.get('tab') ?? '') ? (ctx.query.get('tab') as Tab) : 'overview';
  const [described, got, repo] = await Promise.all([
    ctx.api.call<{ imageDetails: ImageDetail[] }>('ecr', 'DescribeImages', { repositoryName: name, imageIds: [{ imageDigest: digest }] }),
    ctx.api.call<{ images: { imageManifest: string; imageManifestMediaType?: string }[]; failures?: { failureReason?: string }[] }>('ecr', 'BatchGetImage', {
      repositoryName: name,
      imageIds: [{ imageDigest: digest }],
      acceptedMediaTypes: ACCEPTED,
    }),
    describe(ctx, name),
  ]);
  const detail = described.imageDetails[0]!;
  const image = got.images[0];
  const uri = repo.repositoryUri;
  const manifestText = image?.imageManifest ?? '';
  let manifest: any = {};
  try {
    manifest = JSON.parse(manifestText);
  } catch {
    manifest = {};
  }
  const tabs = html`<nav aria-label="Image" class="tabs sub"><ul>${TABS.map(([key, label]) => html`<li><a href="${imagePath(name, digest, key)}"${key === tab ? html` aria-current="page"` : ''}>${label}</a></li>`)}</ul></nav>`;
  let body: SafeHtml;
  if (tab === 'overview') body = await overview(ctx, name, digest, detail, manifest, uri);
  else if (tab === 'layers') body = await layers(ctx, name, manifest);
  else if (tab === 'findings') body = await findings(ctx, name, digest, detail);
  else if (tab === 'manifest') body = jsonBlocks('Manifest', manifestText, image?.imageManifestMediaType ?? detail.imageManifestMediaType);
  else body = await config(ctx, name, manifest);
  const title = detail.imageTags?.length ? `${name}:${detail.imageTags[0]}` : `${name}@${shortDigest(digest)}`;
  return {
    title,
    section: 'repositories',
    body: html`${repoHeader(name, 'image', title)}
<h2 class="image-title">${detail.imageTags?.length ? detail.imageTags.map((t) => html`<span class="tag">${t}</span> `) : html`<span class="muted">untagged</span> `}<code>${shortDigest(digest)}</code></h2>
${tabs}
${body}`,
  };
}

async function overview(ctx: PageContext, name: string, digest: string, d: ImageDetail, manifest: any, uri: string): Promise<SafeHtml> {
  const pull = `${uri}@${digest}`;
  const [replication, referrers] = await Promise.all([
    unlessMissing(ctx.api.call<{ replicationStatuses?: { region: string; registryId: string; status: string; failureCode?: string }[] }>('ecr', 'DescribeImageReplicationStatus', { repositoryName: name, imageId: { imageDigest: digest } }), /NotFound|Unsupported/, true),
    unlessMissing(ctx.api.call<{ referrers?: Descriptor[] }>('ecr', 'ListImageReferrers', { repositoryName: name, subjectId: { imageDigest: digest }, maxResults: 50 }), /NotFound|Unsupported/, true),
  ]);
  const platforms: Descriptor[] = isIndex(d.imageManifestMediaType) && Array.isArray(manifest.manifests) ? manifest.manifests : [];
  const platformName = (p: Descriptor['platform']) => (p ? [p.os, p.architecture, p.variant].filter(Boolean).join('/') : 'unknown');
  return html`<dl class="facts">
  <dt>Digest</dt><dd><code class="wrap">${digest}</code> ${copyButton(digest, 'Copy the digest')}</dd>
  <dt>URI</dt><dd><code class="wrap">${pull}</code> ${copyButton(pull, 'Copy the image URI')}</dd>
  ${d.imageTags?.length ? html`<dt>Pull by tag</dt><dd>${d.imageTags.map((t) => html`<code>${uri}:${t}</code> ${copyButton(`${uri}:${t}`, `Copy the URI of tag ${t}`)}<br>`)}</dd>` : ''}
  <dt>Artifact type</dt><dd>${artifactKind(d)} <span class="muted">${d.artifactMediaType ?? ''}</span></dd>
  <dt>Manifest media type</dt><dd><code>${d.imageManifestMediaType ?? '–'}</code></dd>
  <dt>Size</dt><dd>${bytes(d.imageSizeInBytes)}</dd>
  <dt>Pushed</dt><dd>${when(d.imagePushedAt)}</dd>
  <dt>Last pulled</dt><dd>${when(d.lastRecordedPullTime)}</dd>
  <dt>Scan</dt><dd>${scanCell(d)} <a href="${imagePath(name, digest, 'findings')}">Findings</a></dd>
  ${d.subjectManifestDigest ? html`<dt>Refers to</dt><dd><a href="${imagePath(name, d.subjectManifestDigest)}"><code>${shortDigest(d.subjectManifestDigest)}</code></a></dd>` : ''}
</dl>
${platforms.length
  ? html`<section aria-labelledby="platforms-h"><h3 id="platforms-h">Platforms</h3><div class="table-wrap"><table><thead><tr><th scope="col">Platform</th><th scope="col">Digest</th><th scope="col">Size</th></tr></thead><tbody>
${platforms.map((p) => html`<tr><td>${platformName(p.platform)}</td><td><a href="${imagePath(name, p.digest)}"><code>${shortDigest(p.digest)}</code></a></td><td class="num">${bytes(p.size)}</td></tr>`)}
</tbody></table></div></section>`
  : ''}
<section aria-labelledby="referrers-h"><h3 id="referrers-h">Signatures, SBOMs and other referrers</h3>
${referrers?.referrers?.length
  ? html`<div class="table-wrap"><table><thead><tr><th scope="col">Artifact type</th><th scope="col">Digest</th><th scope="col">Size</th></tr></thead><tbody>
${referrers.referrers.map((r) => html`<tr><td>${artifactKind({ artifactMediaType: r.artifactType, imageManifestMediaType: r.mediaType })} <span class="muted">${r.artifactType ?? ''}</span></td><td><a href="${imagePath(name, r.digest)}"><code>${shortDigest(r.digest)}</code></a></td><td class="num">${bytes(r.size)}</td></tr>`)}
</tbody></table></div>`
  : html`<p class="muted">None.</p>`}
</section>
<section aria-labelledby="replication-h" id="replication"><h3 id="replication-h">Replication</h3>
${replication?.replicationStatuses?.length
  ? html`<div class="table-wrap"><table><thead><tr><th scope="col">Region</th><th scope="col">Registry</th><th scope="col">Status</th><th scope="col">Failure</th></tr></thead><tbody>
${replication.replicationStatuses.map((s) => html`<tr><td>${s.region}</td><td>${s.registryId}</td><td><span class="status ${s.status.toLowerCase()}">${s.status}</span></td><td>${s.failureCode ?? ''}</td></tr>`)}
</tbody></table></div>`
  : html`<p class="muted">This image is not replicated (no replication rule covers it, or it was pushed before the rule).</p>`}
</section>`;
}

async function configOf(ctx: PageContext, name: string, manifest: any): Promise<{ text: string; mediaType: string } | undefined> {
  const desc = manifest?.config as Descriptor | undefined;
  if (!desc?.digest || !/^sha(256|512):[0-9a-f]+$/.test(desc.digest)) return undefined;
  const res = await ctx.api.data(`/v2/${name}/blobs/${desc.digest}`, '*/*', 1024 * 1024);
  if (res.status !== 200) return undefined;
  return { text: res.body.toString('utf8'), mediaType: desc.mediaType ?? '' };
}

async function layers(ctx: PageContext, name: string, manifest: any): Promise<SafeHtml> {
  const list: Descriptor[] = Array.isArray(manifest.layers) ? manifest.layers : [];
  if (!manifest.layers) return html`<p class="muted">An index has no layers of its own: open one of its platforms.</p>`;
  const cfg = await configOf(ctx, name, manifest);
  let history: { created?: string; created_by?: string; empty_layer?: boolean; comment?: string }[] = [];
  try {
    history = cfg ? (JSON.parse(cfg.text).history ?? []) : [];
  } catch {
    history = [];
  }
  const total = list.reduce((n, l) => n + (l.size ?? 0), 0);
  return html`<section aria-labelledby="layers-h"><h3 id="layers-h">Layers (${list.length}, ${bytes(total)} compressed)</h3>
<div class="table-wrap"><table><thead><tr><th scope="col">#</th><th scope="col">Digest</th><th scope="col">Media type</th><th scope="col">Size</th></tr></thead><tbody>
${list.map((l, i) => html`<tr><td>${i + 1}</td><td><code>${shortDigest(l.digest)}</code> ${copyButton(l.digest, `Copy the digest of layer ${i + 1}`)}</td><td><code>${l.mediaType ?? ''}</code></td><td class="num">${bytes(l.size)}</td></tr>`)}
</tbody></table></div></section>
<section aria-labelledby="history-h"><h3 id="history-h">Build history</h3>
${history.length
  ? html`<ol class="history">${history.map((h) => html`<li><code class="wrap">${h.created_by ?? h.comment ?? ''}</code> <span class="muted">${h.created ? h.created.slice(0, 19).replace('T', ' ') : ''}${h.empty_layer ? ' · no layer' : ''}</span></li>`)}</ol>`
  : html`<p class="muted">The image's config records no history.</p>`}
</section>`;
}

async function config(ctx: PageContext, name: string, manifest: any): Promise<SafeHtml> {
  const cfg = await configOf(ctx, name, manifest);
  if (!cfg) return html`<p class="muted">This manifest has no config blob to show (an index, or an artifact with an empty config).</p>`;
  return jsonBlocks('Config', cfg.text, cfg.mediaType);
}

function jsonBlocks(label: string, text: string, mediaType: string | undefined): SafeHtml {
  return html`<section aria-labelledby="json-h"><h3 id="json-h">${label} <span class="muted">${mediaType ?? ''}</span></h3>
<h4>Pretty-printed</h4>
<div class="command"><pre class="json" tabindex="0"><code>${prettyJson(text)}</code></pre>${copyButton(text, `Copy the raw ${label.toLowerCase()}`)}</div>
<details><summary>Raw (${Buffer.byteLength(text)} bytes, exactly as stored)</summary><pre class="json" tabindex="0"><code>${text}</code></pre></details>
</section>`;
}

async function findings(ctx: PageContext, name: string, digest: string, d: ImageDetail): Promise<SafeHtml> {
  const severity = (ctx.query.get('severity') ?? '').toUpperCase();
  const pkg = (ctx.query.get('package') ?? '').trim();
  const all: Finding[] = [];
  let status: { status?: string; description?: string } | undefined;
  let nextToken: string | undefined;
  try {
    do {
      const out: any = await ctx.api.call('ecr', 'DescribeImageScanFindings', { repositoryName: name, imageId: { imageDigest: digest }, maxResults: 1000, ...(nextToken ? { nextToken } : {}) });
      status = out.imageScanStatus;
      all.push(...normalize(out));
      nextToken = out.nextToken;
    } while (nextToken && all.length < 20_000);
  } catch (err) {
    if (err instanceof ApiError && /ScanNotFound/.test(err.code)) return html`<p>This image has not been scanned. Scans run on push when the repository or registry scanning configuration says so (<a href="${repoPath(name, 'settings')}">settings</a>).</p>`;
    throw err;
  }
  if (status?.status !== 'COMPLETE' && status?.status !== 'ACTIVE') return html`<p>Scan status: <strong>${status?.status ?? 'unknown'}</strong>. ${status?.description ?? ''}</p>`;
  const order = (s: string) => SEVERITIES.indexOf(s as (typeof SEVERITIES)[number]) === -1 ? 99 : SEVERITIES.indexOf(s as (typeof SEVERITIES)[number]);
  const shown = all
    .filter((f) => !severity || f.severity === severity || (severity === 'UNDEFINED' && f.severity === 'UNTRIAGED'))
    .filter((f) => !pkg || f.packageName.toLowerCase().includes(pkg.toLowerCase()))
    .sort((a, b) => order(a.severity) - order(b.severity) || a.packageName.localeCompare(b.packageName) || a.id.localeCompare(b.id));
  return html`<p>Scan: ${scanCell(d)} · ${status?.description ?? ''}</p>
<form method="get" action="${repoPath(name, `image/${encodeURIComponent(digest)}`)}" class="filters" role="search">
  <input type="hidden" name="tab" value="findings">
  <label for="severity">Severity</label>
  <select id="severity" name="severity"><option value="">Any</option>${SEVERITIES.map((s) => html`<option value="${s}"${s === severity ? html` selected` : ''}>${s[0]}${s.slice(1).toLowerCase()}</option>`)}</select>
  <label for="package">Package</label>
  <input id="package" name="package" type="search" value="${pkg}">
  <button type="submit">Filter</button>
</form>
<div class="table-wrap"><table class="findings">
<caption>${shown.length} of ${all.length} findings</caption>
<thead><tr><th scope="col">Vulnerability</th><th scope="col">Severity</th><th scope="col">Package</th><th scope="col">Installed</th><th scope="col">Fixed in</th><th scope="col">Description</th></tr></thead>
<tbody>${shown.length
  ? shown.slice(0, 2000).map((f) => {
      const link = safeUrl(f.uri);
      return html`<tr><th scope="row">${link ? html`<a href="${link}" rel="noopener noreferrer" target="_blank">${f.id}</a>` : f.id}</th><td><span class="sev ${f.severity.toLowerCase()}">${f.severity}</span></td><td>${f.packageName}</td><td><code>${f.packageVersion}</code></td><td>${f.fixedIn ? html`<code>${f.fixedIn}</code>` : f.fixKnown ? html`<span class="muted">no fix yet</span>` : html`<span class="muted" title="Basic scans do not report fixed versions; an enhanced scan does.">–</span>`}</td><td class="desc">${f.description}</td></tr>`;
    })
  : html`<tr><td colspan="6">No finding matches.</td></tr>`}</tbody>
</table></div>`;
}
