import { ApiError } from '../api.ts';
import type { PageContext, PageResult, Routes } from '../console.ts';
import { html } from '../html.ts';
import { bytes, copyButton, csrfField, pager, repoPath, when, type Notice } from '../layout.ts';

const SORTS = { repositoryName: 'Name', createdAt: 'Created', imageCount: 'Images', sizeInBytes: 'Size' } as const;
type Sort = keyof typeof SORTS;
const PAGE_SIZE = 50;

interface RepositoryRow {
  repositoryName: string;
  repositoryUri: string;
  createdAt: number;
  imageTagMutability: string;
  imageScanningConfiguration?: { scanOnPush?: boolean };
  encryptionConfiguration?: { encryptionType?: string };
  imageCount?: number;
  sizeInBytes?: number;
}

function listHref(q: string, sort: Sort, order: string, next?: string): string {
  const p = new URLSearchParams();
  if (q) p.set('q', q);
  if (sort !== 'repositoryName') p.set('sort', sort);
  if (order !== 'ASC') p.set('order', order);
  if (next) p.set('next', next);
  const s = p.toString();
  return `/console/repositories${s ? `?${s}` : ''}`;
}

async function list(ctx: PageContext, notices: Notice[] = []): Promise<PageResult> {
  const q = (ctx.query.get('q') ?? '').trim();
  const sort: Sort = (Object.keys(SORTS) as Sort[]).includes(ctx.query.get('sort') as Sort) ? (ctx.query.get('sort') as Sort) : 'repositoryName';
  const order = ctx.query.get('order') === 'DESC' ? 'DESC' : 'ASC';
  const next = ctx.query.get('next') ?? undefined;
  // Create is always offered: whether it is allowed depends on the name (policies may allow
  // only some prefixes), and the API's answer says so.
  const out = await ctx.api.call<{ repositories: RepositoryRow[]; totalCount: number; nextToken?: string }>('ecr', 'BerthListRepositories', {
    ...(q ? { filter: q } : {}),
    sortBy: sort,
    sortOrder: order,
    maxResults: PAGE_SIZE,
    ...(next ? { nextToken: next } : {}),
  });
  const header = (key: Sort) => {
    const active = key === sort;
    const nextOrder = active && order === 'ASC' ? 'DESC' : 'ASC';
    return html`<th scope="col"${active ? html` aria-sort="${order === 'ASC' ? 'ascending' : 'descending'}"` : ''}><a href="${listHref(q, key, nextOrder)}">${SORTS[key]}${active ? (order === 'ASC' ? ' ▲' : ' ▼') : ''}</a></th>`;
  };
  const rows = out.repositories.map(
    (r) => html`<tr>
  <th scope="row"><a href="${repoPath(r.repositoryName)}">${r.repositoryName}</a></th>
  <td class="uri"><code>${r.repositoryUri}</code> ${copyButton(r.repositoryUri, `Copy the URI of ${r.repositoryName}`)}</td>
  <td>${r.imageTagMutability}</td>
  <td>${r.imageScanningConfiguration?.scanOnPush ? 'Enabled' : 'Disabled'}</td>
  <td>${r.encryptionConfiguration?.encryptionType ?? 'AES256'}</td>
  <td>${when(r.createdAt)}</td>
  <td class="num">${r.imageCount ?? '–'}</td>
  <td class="num">${bytes(r.sizeInBytes)}</td>
</tr>`,
  );
  const from = next ? 'more' : `1–${out.repositories.length}`;
  return {
    title: 'Repositories',
    section: 'repositories',
    notices,
    body: html`<div class="title-row"><h1>Repositories</h1><a class="button primary" href="/console/repositories/new">Create repository</a></div>
<form method="get" action="/console/repositories" class="filters" role="search">
  <label for="q">Find repositories</label>
  <input id="q" name="q" type="search" value="${q}" placeholder="Part of a name">
  <input type="hidden" name="sort" value="${sort}"><input type="hidden" name="order" value="${order}">
  <button type="submit">Search</button>
</form>
<div class="table-wrap"><table>
<caption>${out.totalCount} ${out.totalCount === 1 ? 'repository' : 'repositories'}${q ? html` matching “${q}”` : ''}</caption>
<thead><tr>${header('repositoryName')}<th scope="col">URI</th><th scope="col">Tag mutability</th><th scope="col">Scan on push</th><th scope="col">Encryption</th>${header('createdAt')}${header('imageCount')}${header('sizeInBytes')}</tr></thead>
<tbody>${rows.length ? rows : html`<tr><td colspan="8">${q ? 'No repository matches.' : 'No repositories yet.'}</td></tr>`}</tbody>
</table></div>
${pager(out.nextToken ? listHref(q, sort, order, out.nextToken) : undefined, next ? listHref(q, sort, order) : undefined, next ? `Showing ${out.repositories.length} more` : `Showing ${from} of ${out.totalCount}`)}`,
  };
}

function createForm(ctx: PageContext, notices: Notice[] = [], values: Record<string, string> = {}, status = 200): PageResult {
  return {
    title: 'Create repository',
    section: 'repositories',
    status,
    notices,
    body: html`<h1>Create repository</h1>
<form method="post" action="/console/repositories" class="stack narrow">
  ${csrfField(ctx.frame)}
  <label for="name">Repository name</label>
  <input id="name" name="name" required value="${values['name'] ?? ''}" aria-describedby="name-hint" autocomplete="off">
  <p id="name-hint" class="hint">Lowercase letters, digits and separators (<code>.</code> <code>_</code> <code>-</code> <code>/</code>), e.g. <code>team/app</code>.</p>
  <fieldset><legend>Tag mutability</legend>
    <label><input type="radio" name="mutability" value="MUTABLE"${values['mutability'] !== 'IMMUTABLE' ? html` checked` : ''}> Mutable: a tag can be pushed again</label>
    <label><input type="radio" name="mutability" value="IMMUTABLE"${values['mutability'] === 'IMMUTABLE' ? html` checked` : ''}> Immutable: a tag, once pushed, stays on its image</label>
  </fieldset>
  <label><input type="checkbox" name="scanOnPush" value="1"${values['scanOnPush'] ? html` checked` : ''}> Scan images on push</label>
  <button type="submit" class="primary">Create repository</button>
</form>`,
  };
}

export function repositoriesRoutes(): Routes {
  return {
    get: {
      '/console/repositories': (ctx) => list(ctx),
      '/console/repositories/new': async (ctx) => createForm(ctx),
    },
    post: {
      '/console/repositories': async (ctx) => {
        const name = (ctx.form.get('name') ?? '').trim();
        const values = Object.fromEntries(ctx.form);
        try {
          await ctx.api.call('ecr', 'CreateRepository', {
            repositoryName: name,
            imageTagMutability: ctx.form.get('mutability') === 'IMMUTABLE' ? 'IMMUTABLE' : 'MUTABLE',
            imageScanningConfiguration: { scanOnPush: ctx.form.get('scanOnPush') === '1' },
          });
        } catch (err) {
          if (err instanceof ApiError) return createForm(ctx, [{ kind: err.denied ? 'denied' : 'error', text: err.message }], values, err.denied ? 403 : 400);
          throw err;
        }
        return { redirect: `${repoPath(name)}?created=1` };
      },
    },
  };
}
