import { html, type Fragment, type SafeHtml } from './html.ts';

/** What every page of a signed-in user shows in its frame. */
export interface Frame {
  accountId: string;
  userName: string;
  csrf: string;
  /** The section the page belongs to, for the navigation's aria-current. */
  section: 'repositories' | 'registry' | 'usage' | 'audit' | 'account';
}

export interface Notice {
  kind: 'success' | 'error' | 'info' | 'denied';
  text: Fragment;
}

export const ASSET_VERSION = '1';
const asset = (name: string) => `/console/assets/${name}?v=${ASSET_VERSION}`;

export function page(title: string, body: Fragment, frame?: Frame, notices: readonly Notice[] = []): string {
  const nav = (section: Frame['section'], href: string, label: string) =>
    html`<li><a href="${href}"${frame?.section === section ? html` aria-current="page"` : ''}>${label}</a></li>`;
  return `<!doctype html>\n${html`<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${title} · Berth</title>
<link rel="icon" href="${asset('berth.svg')}" type="image/svg+xml">
<link rel="stylesheet" href="${asset('console.css')}">
<script type="module" src="${asset('console.js')}"></script>
</head>
<body>
<a class="skip" href="#main">Skip to content</a>
<header class="top">
  <a class="brand" href="/console/">Berth</a>
  ${frame
    ? html`<nav aria-label="Main"><ul>
      ${nav('repositories', '/console/repositories', 'Repositories')}
      ${nav('registry', '/console/registry', 'Registry settings')}
      ${nav('usage', '/console/usage', 'Usage')}
      ${nav('audit', '/console/audit', 'Audit log')}
    </ul></nav>
    <div class="who">
      <a href="/console/account"${frame.section === 'account' ? html` aria-current="page"` : ''}>${frame.userName} @ ${frame.accountId}</a>
      <form method="post" action="/console/signout"><input type="hidden" name="csrf" value="${frame.csrf}"><button class="link" type="submit">Sign out</button></form>
    </div>`
    : ''}
</header>
<main id="main" tabindex="-1">
${notices.map((n) => html`<div class="notice ${n.kind}" role="${n.kind === 'error' || n.kind === 'denied' ? 'alert' : 'status'}">${n.text}</div>`)}
${body}
</main>
</body>
</html>`.text}`;
}

/** A hidden CSRF field for a form of this session. */
export function csrfField(frame: Frame): SafeHtml {
  return html`<input type="hidden" name="csrf" value="${frame.csrf}">`;
}

export function breadcrumbs(items: readonly [label: string, href?: string][]): SafeHtml {
  return html`<nav aria-label="Breadcrumb" class="crumbs"><ol>${items.map(([label, href]) => (href ? html`<li><a href="${href}">${label}</a></li>` : html`<li aria-current="page">${label}</li>`))}</ol></nav>`;
}

export function copyButton(text: string, label: string): SafeHtml {
  return html`<button type="button" class="copy" data-copy="${text}" aria-label="${label}">Copy</button>`;
}

const UNITS = ['B', 'KB', 'MB', 'GB', 'TB'];
export function bytes(n: number | undefined | null): string {
  if (n === undefined || n === null || !Number.isFinite(n)) return '–';
  let v = n;
  let u = 0;
  while (v >= 1000 && u < UNITS.length - 1) {
    v /= 1000;
    u++;
  }
  return `${u === 0 ? v : v.toFixed(v < 10 ? 2 : v < 100 ? 1 : 0)} ${UNITS[u]}`;
}

/** A time for people (UTC, to the minute) in a <time> element with the exact instant. */
export function when(value: string | number | Date | undefined | null): SafeHtml {
  if (value === undefined || value === null) return html`–`;
  const d = typeof value === 'number' ? new Date(value < 1e11 ? value * 1000 : value) : new Date(value);
  if (Number.isNaN(d.getTime())) return html`–`;
  return html`<time datetime="${d.toISOString()}">${d.toISOString().slice(0, 16).replace('T', ' ')} UTC</time>`;
}

export function shortDigest(digest: string | undefined): string {
  if (!digest) return '–';
  const [alg, hex] = digest.split(':');
  return hex ? `${alg}:${hex.slice(0, 12)}` : digest;
}

/** Path of a repository's pages: `/console/repos/NAME` then `/-/PAGE` (names hold slashes). */
export function repoPath(name: string, sub = ''): string {
  const encoded = name.split('/').map(encodeURIComponent).join('/');
  return `/console/repos/${encoded}${sub ? `/-/${sub}` : ''}`;
}

export function imagePath(name: string, digest: string, tab = ''): string {
  return repoPath(name, `image/${encodeURIComponent(digest)}${tab ? `?tab=${tab}` : ''}`);
}

/** "Next page" links carry the token the API returned; the previous pages live in the browser's history. */
export function pager(nextHref: string | undefined, firstHref: string | undefined, summary: string): SafeHtml {
  return html`<nav class="pager" aria-label="Pages"><span>${summary}</span>${firstHref ? html`<a href="${firstHref}">First page</a>` : ''}${nextHref ? html`<a href="${nextHref}" rel="next">Next page</a>` : ''}</nav>`;
}

export function deniedNote(what: string, action: string): SafeHtml {
  return html`<p class="denied-note" role="note">You do not have permission to ${what} (<code>${action}</code>).</p>`;
}
