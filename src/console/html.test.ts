import assert from 'node:assert/strict';
import { test } from 'node:test';
import { escapeHtml, html, join, SafeHtml } from './html.ts';
import { breadcrumbs, copyButton, imagePath, page, repoPath } from './layout.ts';

/** What attackers put in repository policies, rule descriptions, annotations and finding texts. */
const HOSTILE = [
  '</textarea><script>window.__pwned=1</script>',
  '<img src=x onerror="window.__pwned=2">',
  `"'><svg onload=window.__pwned=3>`,
  '&lt;already escaped&gt; & <b>bold</b>',
] as const;

/** Markup a value may never bring along once rendered (tags and attribute breakouts). */
function assertInert(out: string, value: string): void {
  assert.doesNotMatch(out, /<script>|<img |<svg |<b>/, `no element from ${JSON.stringify(value)} in ${out}`);
  assert.doesNotMatch(out, /" onerror|' onerror|"'>/, `no attribute breakout from ${JSON.stringify(value)} in ${out}`);
}

test('escapeHtml escapes the five characters that matter in text and in quoted attributes', () => {
  assert.equal(escapeHtml(`<a href="x" title='y'>&</a>`), '&lt;a href=&quot;x&quot; title=&#39;y&#39;&gt;&amp;&lt;/a&gt;');
  assert.equal(escapeHtml('plain text, 100% safe'), 'plain text, 100% safe');
  assert.equal(escapeHtml(''), '');
  // Already-escaped text is escaped again: what is shown is exactly what was stored.
  assert.equal(escapeHtml('&lt;'), '&amp;lt;');
});

test('hostile values become text in element content', () => {
  for (const value of HOSTILE) {
    const out = html`<td>${value}</td>`.text;
    assertInert(out, value);
    assert.equal(out, `<td>${escapeHtml(value)}</td>`);
  }
  assert.equal(html`<textarea>${HOSTILE[0]}</textarea>`.text, '<textarea>&lt;/textarea&gt;&lt;script&gt;window.__pwned=1&lt;/script&gt;</textarea>');
});

test('hostile values cannot leave a double-quoted attribute value', () => {
  for (const value of HOSTILE) {
    const out = html`<input name="x" value="${value}"><button data-copy="${value}" aria-label="${value}">Copy</button>`.text;
    assertInert(out, value);
    // Exactly the attributes written, each with one quoted value.
    assert.equal(out.match(/="/g)?.length, 4, out);
    assert.equal(out.match(/"/g)?.length, 8, out);
  }
  assert.equal(html`<a title="${HOSTILE[2]}">`.text, '<a title="&quot;&#39;&gt;&lt;svg onload=window.__pwned=3&gt;">');
});

test('nested html fragments are kept as markup, arrays are joined, and absent values render as nothing', () => {
  const rows = ['a<b', 'c"d'].map((v) => html`<li>${v}</li>`);
  assert.equal(html`<ul>${rows}</ul>`.text, '<ul><li>a&lt;b</li><li>c&quot;d</li></ul>');
  assert.equal(html`<p>${null}${undefined}${false}</p>`.text, '<p></p>');
  assert.equal(html`<p>${0} ${42} ${1.5}</p>`.text, '<p>0 42 1.5</p>');
  assert.equal(html`<p>${[['x', ['<y>']], html`<br>`]}</p>`.text, '<p>x&lt;y&gt;<br></p>');
  assert.ok(html`x` instanceof SafeHtml);
  assert.equal(String(html`<i>${'&'}</i>`), '<i>&amp;</i>');
});

test('only SafeHtml made by html is trusted: look-alike objects and markup strings are escaped', () => {
  const forged = { text: '<script>window.__pwned=1</script>', toString: () => '<script>window.__pwned=1</script>' };
  const out = html`<p>${forged as unknown as string}</p>`.text;
  assert.equal(out, '<p>&lt;script&gt;window.__pwned=1&lt;/script&gt;</p>');
  // The text of a fragment, once a plain string, is data again.
  const inner = html`<b>${'x'}</b>`.text;
  assert.equal(html`<p>${inner}</p>`.text, '<p>&lt;b&gt;x&lt;/b&gt;</p>');
});

test('join escapes strings and keeps fragments', () => {
  assert.equal(join([' selected', html` data-x="${'"'}"`, null, '<']).text, ' selected data-x="&quot;"&lt;');
});

test('the layout escapes what it is given: title, notices, breadcrumbs, copy buttons', () => {
  const value = HOSTILE[0];
  const out = page(value, html`<p>${value}</p>`, { accountId: '111122223333', userName: `u${HOSTILE[2]}`, csrf: `"><script>`, section: 'repositories' }, [{ kind: 'error', text: value }]);
  assert.doesNotMatch(out, /<script>window|<svg |value=""><script>/);
  assert.match(out, /<title>&lt;\/textarea&gt;&lt;script&gt;window.__pwned=1&lt;\/script&gt; · Berth<\/title>/);
  assert.match(out, /<div class="notice error" role="alert">&lt;\/textarea&gt;/);
  // The page's only scripts are the module from this origin.
  assert.deepEqual(out.match(/<script[^>]*>/g), ['<script type="module" src="/console/assets/console.js?v=1">']);
  assertInert(breadcrumbs([[value, '/console/x'], [HOSTILE[1]]]).text, value);
  const button = copyButton(`host/repo@sha256:${'a'.repeat(64)}${HOSTILE[2]}`, HOSTILE[1]).text;
  assertInert(button, HOSTILE[2]);
  assert.match(button, /^<button type="button" class="copy" data-copy="host\/repo@sha256:a{64}&quot;&#39;&gt;&lt;svg onload=window.__pwned=3&gt;" aria-label="&lt;img src=x onerror=&quot;window.__pwned=2&quot;&gt;">Copy<\/button>$/);
});

test('console paths encode each segment of a repository name and the digest', () => {
  assert.equal(repoPath('team/app'), '/console/repos/team/app');
  assert.equal(repoPath('team/app', 'settings'), '/console/repos/team/app/-/settings');
  assert.equal(repoPath('a b/"c"'), '/console/repos/a%20b/%22c%22');
  const digest = `sha256:${'0'.repeat(64)}`;
  assert.equal(imagePath('team/app', digest, 'findings'), `/console/repos/team/app/-/image/sha256%3A${'0'.repeat(64)}?tab=findings`);
});
