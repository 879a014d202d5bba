import type { Routes } from '../console.ts';
import { html, type SafeHtml } from '../html.ts';
import { bytes, pager, repoPath } from '../layout.ts';

interface RepositoryStorage {
  repositoryName: string;
  imageCount: number;
  manifestBytes: number;
  blobCount: number;
  blobBytes: number;
  sizeInBytes: number;
}

interface StorageUsage {
  registryId: string;
  repositoryCount: number;
  imageCount: number;
  manifestBytes: number;
  blobCount: number;
  blobBytes: number;
  sharedBlobCount: number;
  sharedBlobBytes: number;
  sizeInBytes: number;
  repositories: RepositoryStorage[];
}

const PAGE_SIZE = 50;
const CHART_BARS = 15;

/** A horizontal bar chart in SVG attributes only (the CSP allows no inline style). */
function chart(rows: RepositoryStorage[]): SafeHtml {
  const top = rows.slice(0, CHART_BARS);
  const max = Math.max(1, ...top.map((r) => r.sizeInBytes));
  const barHeight = 22;
  const labelWidth = 220;
  const width = 720;
  const height = top.length * barHeight + 8;
  return html`<figure class="chart">
<svg role="img" aria-labelledby="chart-title" viewBox="0 0 ${width} ${height}" width="100%" preserveAspectRatio="xMinYMin meet">
<title id="chart-title">The ${top.length} largest repositories by stored bytes</title>
${top.map((r, i) => {
  const w = Math.max(1, Math.round(((width - labelWidth - 90) * r.sizeInBytes) / max));
  const y = i * barHeight + 4;
  const label = r.repositoryName.length > 30 ? `${r.repositoryName.slice(0, 29)}…` : r.repositoryName;
  return html`<text x="0" y="${y + 15}">${label}</text><rect class="bar" x="${labelWidth}" y="${y + 3}" width="${w}" height="${barHeight - 8}" rx="2"></rect><text x="${labelWidth + w + 6}" y="${y + 15}">${bytes(r.sizeInBytes)}</text>`;
})}
</svg>
<figcaption>The ${top.length} largest repositories; every repository is in the table below.</figcaption>
</figure>`;
}

export function usageRoutes(): Routes {
  return {
    get: {
      '/console/usage': async (ctx) => {
        const usage = await ctx.api.call<StorageUsage>('ecr', 'BerthDescribeStorageUsage');
        const rows = [...usage.repositories].sort((a, b) => b.sizeInBytes - a.sizeInBytes || a.repositoryName.localeCompare(b.repositoryName));
        const pageNo = Math.max(0, Math.floor(Number(ctx.query.get('page') ?? '0')) || 0);
        const shown = rows.slice(pageNo * PAGE_SIZE, (pageNo + 1) * PAGE_SIZE);
        const more = (pageNo + 1) * PAGE_SIZE < rows.length;
        return {
          title: 'Usage',
          section: 'usage',
          body: html`<h1>Usage</h1>
<dl class="facts">
  <dt>Account</dt><dd>${usage.registryId}</dd>
  <dt>Stored</dt><dd><strong>${bytes(usage.sizeInBytes)}</strong> (each layer counted once, however many images and repositories share it)</dd>
  <dt>Shared layers</dt><dd>${usage.sharedBlobCount} blobs, ${bytes(usage.sharedBlobBytes)}, are held by more than one repository</dd>
  <dt>Repositories</dt><dd>${usage.repositoryCount}</dd>
  <dt>Images</dt><dd>${usage.imageCount}</dd>
  <dt>Blobs</dt><dd>${usage.blobCount} (${bytes(usage.blobBytes)}), manifests ${bytes(usage.manifestBytes)}</dd>
</dl>
${rows.length ? chart(rows) : ''}
<div class="table-wrap"><table>
<caption>Storage per repository, largest first (a layer shared between repositories counts in each)</caption>
<thead><tr><th scope="col">Repository</th><th scope="col">Images</th><th scope="col">Blobs</th><th scope="col">Stored</th></tr></thead>
<tbody>${shown.length
  ? shown.map((r) => html`<tr><th scope="row"><a href="${repoPath(r.repositoryName)}">${r.repositoryName}</a></th><td class="num">${r.imageCount}</td><td class="num">${r.blobCount}</td><td class="num">${bytes(r.sizeInBytes)}</td></tr>`)
  : html`<tr><td colspan="4">No repositories.</td></tr>`}</tbody>
</table></div>
${pager(more ? `/console/usage?page=${pageNo + 1}` : undefined, pageNo > 0 ? '/console/usage' : undefined, `Repositories ${rows.length ? pageNo * PAGE_SIZE + 1 : 0}–${pageNo * PAGE_SIZE + shown.length} of ${rows.length}`)}`,
        };
      },
    },
  };
}
