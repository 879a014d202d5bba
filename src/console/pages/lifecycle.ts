import { ApiError, unlessMissing } from '../api.ts';
import type { PageContext, PageResult } from '../console.ts';
import { html, type SafeHtml } from '../html.ts';
import { csrfField, deniedNote, imagePath, repoPath, shortDigest, when, type Notice } from '../layout.ts';
import { permissions } from './permissions.ts';
import { prettyJson, repoHeader, type RepoTarget } from './repository.ts';

interface PreviewResult {
  imageTags?: string[];
  imageDigest: string;
  imagePushedAt?: number;
  action?: { type?: string };
  appliedRulePriority?: number;
}

interface Preview {
  status: string;
  lifecyclePolicyText?: string;
  previewResults?: PreviewResult[];
  summary?: { expiringImageTotalCount?: number };
}

interface Rule {
  rulePriority: number;
  description?: string;
  selection: Record<string, unknown>;
  action: { type: 'expire' };
}

/** The rule the builder's fields describe, or why they do not describe one. */
export function ruleFromForm(form: URLSearchParams): Rule | string {
  const priority = Number(form.get('priority'));
  if (!Number.isInteger(priority) || priority < 1) return 'The rule priority must be a whole number of 1 or more.';
  const tagStatus = form.get('tagStatus') ?? 'untagged';
  if (!['tagged', 'untagged', 'any'].includes(tagStatus)) return 'Choose which images the rule selects.';
  const countType = form.get('countType') === 'sinceImagePushed' ? 'sinceImagePushed' : 'imageCountMoreThan';
  const countNumber = Number(form.get('countNumber'));
  if (!Number.isInteger(countNumber) || countNumber < 1) return countType === 'sinceImagePushed' ? 'The age must be a whole number of days, 1 or more.' : 'The number of images to keep must be a whole number, 1 or more.';
  const patterns = (form.get('tagPatterns') ?? '').split(/[\s,]+/).map((s) => s.trim()).filter(Boolean);
  if (tagStatus === 'tagged' && patterns.length === 0) return 'A rule for tagged images needs at least one tag pattern (e.g. release-* or *).';
  const selection: Record<string, unknown> = { tagStatus, ...(tagStatus === 'tagged' ? { tagPatternList: patterns } : {}), countType, ...(countType === 'sinceImagePushed' ? { countUnit: 'days' } : {}), countNumber };
  const description = (form.get('description') ?? '').trim();
  return { rulePriority: priority, ...(description ? { description } : {}), selection, action: { type: 'expire' } };
}

/** The editor's text with the rule added (replacing a rule of the same priority). */
export function withRule(text: string, rule: Rule): string | { error: string } {
  let doc: { rules?: Rule[] } = { rules: [] };
  if (text.trim()) {
    try {
      doc = JSON.parse(text) as { rules?: Rule[] };
    } catch {
      return { error: 'The policy in the editor is not valid JSON, so the rule could not be added to it. Fix or clear it first.' };
    }
    // `null`, a list or a bare value parse, but hold no rules to add to (and `null.rules` would throw).
    if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) {
      return { error: 'The policy in the editor is not a JSON object ({"rules": [...]}), so the rule could not be added to it. Fix or clear it first.' };
    }
  }
  const rules = (Array.isArray(doc.rules) ? doc.rules : []).filter((r) => r?.rulePriority !== rule.rulePriority);
  rules.push(rule);
  rules.sort((a, b) => a.rulePriority - b.rulePriority);
  return JSON.stringify({ ...doc, rules }, null, 2);
}

async function previewOf(ctx: PageContext, name: string, waitMs: number): Promise<Preview | undefined> {
  const deadline = Date.now() + waitMs;
  for (;;) {
    let out: Preview & { nextToken?: string };
    try {
      // maxResults is 1..100 (GetLifecyclePolicyPreview); a finished preview is read page by page.
      out = await ctx.api.call<Preview & { nextToken?: string }>('ecr', 'GetLifecyclePolicyPreview', { repositoryName: name, maxResults: 100 });
      while (out.status === 'COMPLETE' && out.nextToken && (out.previewResults?.length ?? 0) < 10_000) {
        const more = await ctx.api.call<Preview & { nextToken?: string }>('ecr', 'GetLifecyclePolicyPreview', { repositoryName: name, maxResults: 100, nextToken: out.nextToken });
        out = { ...out, previewResults: [...(out.previewResults ?? []), ...(more.previewResults ?? [])], nextToken: more.nextToken };
      }
    } catch (err) {
      if (err instanceof ApiError && /LifecyclePolicyPreviewNotFound/.test(err.code)) return undefined;
      throw err;
    }
    if (out.status !== 'IN_PROGRESS' || Date.now() >= deadline) return out;
    await new Promise((r) => setTimeout(r, 150));
  }
}

function previewTable(name: string, preview: Preview, rules: Rule[]): SafeHtml {
  if (preview.status === 'IN_PROGRESS') return html`<p role="status">The preview is being computed; this page reloads by itself.</p>`;
  if (preview.status === 'FAILED') return html`<p class="notice error">The preview failed.</p>`;
  const results = preview.previewResults ?? [];
  const byRule = new Map<number, PreviewResult[]>();
  for (const r of results) byRule.set(r.appliedRulePriority ?? 0, [...(byRule.get(r.appliedRulePriority ?? 0) ?? []), r]);
  const describe = (p: number) => rules.find((r) => r.rulePriority === p)?.description ?? '';
  return html`<p><strong>${preview.summary?.expiringImageTotalCount ?? results.length}</strong> image(s) would expire.</p>
${[...byRule.keys()].sort((a, b) => a - b).map((p) => html`<h4>Rule ${p}${describe(p) ? html`: ${describe(p)}` : ''} · ${byRule.get(p)!.length} image(s)</h4>
<div class="table-wrap"><table class="preview"><thead><tr><th scope="col">Image</th><th scope="col">Tags</th><th scope="col">Pushed</th><th scope="col">Action</th></tr></thead><tbody>
${byRule.get(p)!.map((r) => html`<tr><td><a href="${imagePath(name, r.imageDigest)}"><code>${shortDigest(r.imageDigest)}</code></a></td><td>${r.imageTags?.length ? r.imageTags.map((t) => html`<span class="tag">${t}</span> `) : html`<span class="muted">untagged</span>`}</td><td>${when(r.imagePushedAt)}</td><td>${(r.action?.type ?? 'EXPIRE').toLowerCase()}</td></tr>`)}
</tbody></table></div>`)}`;
}

function rulesOf(text: string): Rule[] {
  try {
    const doc = JSON.parse(text) as { rules?: Rule[] };
    return Array.isArray(doc.rules) ? doc.rules : [];
  } catch {
    return [];
  }
}

const ACTIONS = ['ecr:GetLifecyclePolicy', 'ecr:PutLifecyclePolicy', 'ecr:DeleteLifecyclePolicy', 'ecr:StartLifecyclePolicyPreview'] as const;

async function render(ctx: PageContext, target: RepoTarget, options: { text?: string; notices?: Notice[]; preview?: Preview; status?: number; builder?: Record<string, string> }): Promise<PageResult> {
  const name = target.name;
  const can = await permissions(ctx.api, ACTIONS, name);
  const saved = can['ecr:GetLifecyclePolicy']
    ? await unlessMissing(ctx.api.call<{ lifecyclePolicyText: string; lastEvaluatedAt?: number }>('ecr', 'GetLifecyclePolicy', { repositoryName: name }), /LifecyclePolicyNotFound/)
    : undefined;
  const text = options.text ?? (saved ? prettyJson(saved.lifecyclePolicyText) : '');
  const notices = options.notices ?? [];
  if (ctx.query.get('saved')) notices.push({ kind: 'success', text: 'The lifecycle policy is saved; it applies from now on.' });
  if (ctx.query.get('deleted')) notices.push({ kind: 'success', text: 'The lifecycle policy is deleted.' });
  const b = options.builder ?? {};
  const sel = (field: string, value: string, dflt: boolean) => ((b[field] ?? (dflt ? value : '')) === value ? html` selected` : '');
  const preview = options.preview;
  return {
    title: `${name}: lifecycle policy`,
    section: 'repositories',
    status: options.status ?? 200,
    notices,
    ...(preview?.status === 'IN_PROGRESS' ? { refreshSeconds: 2 } : {}),
    body: html`${repoHeader(name, 'lifecycle', 'Lifecycle policy')}
<p>${saved ? html`A lifecycle policy is in force${saved.lastEvaluatedAt ? html`, last applied ${when(saved.lastEvaluatedAt)}` : ''}.` : 'This repository has no lifecycle policy: images stay until they are deleted.'}
Preview a policy to see which images each rule would expire before you save it.</p>
${can['ecr:GetLifecyclePolicy'] ? '' : deniedNote('read the lifecycle policy', 'ecr:GetLifecyclePolicy')}
<div class="two-col">
<section aria-labelledby="builder-h"><h2 id="builder-h">Add a rule</h2>
<form method="post" action="${repoPath(name, 'lifecycle')}" class="stack">
  ${csrfField(ctx.frame)}
  <input type="hidden" name="text" value="${text}">
  <label for="priority">Rule priority (lower runs first)</label>
  <input id="priority" name="priority" type="number" min="1" required value="${b['priority'] ?? String(rulesOf(text).reduce((m, r) => Math.max(m, r.rulePriority ?? 0), 0) + 1)}">
  <label for="description">Description</label>
  <input id="description" name="description" value="${b['description'] ?? ''}">
  <label for="tagStatus">Images</label>
  <select id="tagStatus" name="tagStatus"><option value="untagged"${sel('tagStatus', 'untagged', true)}>Untagged images</option><option value="tagged"${sel('tagStatus', 'tagged', false)}>Tagged images matching patterns</option><option value="any"${sel('tagStatus', 'any', false)}>Any image</option></select>
  <label for="tagPatterns">Tag patterns (for tagged images; comma-separated, <code>*</code> as wildcard)</label>
  <input id="tagPatterns" name="tagPatterns" value="${b['tagPatterns'] ?? ''}" placeholder="release-*, v*">
  <label for="countType">Expire</label>
  <select id="countType" name="countType"><option value="imageCountMoreThan"${sel('countType', 'imageCountMoreThan', true)}>All but the newest N images</option><option value="sinceImagePushed"${sel('countType', 'sinceImagePushed', false)}>Images pushed more than N days ago</option></select>
  <label for="countNumber">N</label>
  <input id="countNumber" name="countNumber" type="number" min="1" required value="${b['countNumber'] ?? '10'}">
  <button type="submit" name="action" value="add-rule">Add rule to the policy</button>
</form></section>
<section aria-labelledby="editor-h"><h2 id="editor-h">Policy</h2>
<form method="post" action="${repoPath(name, 'lifecycle')}" class="stack">
  ${csrfField(ctx.frame)}
  <label for="text">Lifecycle policy (JSON)</label>
  <textarea id="text" name="text" rows="18" class="code" spellcheck="false">${text}</textarea>
  <div class="buttons">
    ${can['ecr:StartLifecyclePolicyPreview'] ? html`<button type="submit" name="action" value="preview">Preview</button>` : deniedNote('preview lifecycle policies', 'ecr:StartLifecyclePolicyPreview')}
    ${can['ecr:PutLifecyclePolicy'] ? html`<button type="submit" name="action" value="save" class="primary">Save policy</button>` : deniedNote('save the lifecycle policy', 'ecr:PutLifecyclePolicy')}
    ${saved && can['ecr:DeleteLifecyclePolicy'] ? html`<button type="submit" name="action" value="delete" class="danger" data-confirm="Delete the lifecycle policy?">Delete policy</button>` : ''}
  </div>
</form></section>
</div>
${preview ? html`<section aria-labelledby="preview-h" id="preview"><h2 id="preview-h">Preview</h2>${previewTable(name, preview, rulesOf(preview.lifecyclePolicyText ?? text))}</section>` : ''}`,
  };
}

export async function lifecyclePage(ctx: PageContext, target: RepoTarget): Promise<PageResult> {
  if (ctx.query.get('preview')) {
    const preview = await previewOf(ctx, target.name, 0);
    return render(ctx, target, { ...(preview ? { preview } : {}), ...(preview?.lifecyclePolicyText ? { text: prettyJson(preview.lifecyclePolicyText) } : {}) });
  }
  return render(ctx, target, {});
}

export async function lifecyclePost(ctx: PageContext, target: RepoTarget): Promise<PageResult> {
  const name = target.name;
  const text = ctx.form.get('text') ?? '';
  const action = ctx.form.get('action');
  try {
    if (action === 'add-rule') {
      const rule = ruleFromForm(ctx.form);
      const builder = Object.fromEntries(['priority', 'description', 'tagStatus', 'tagPatterns', 'countType', 'countNumber'].map((k) => [k, ctx.form.get(k) ?? '']));
      if (typeof rule === 'string') return render(ctx, target, { text, notices: [{ kind: 'error', text: rule }], status: 400, builder });
      const next = withRule(text, rule);
      if (typeof next !== 'string') return render(ctx, target, { text, notices: [{ kind: 'error', text: next.error }], status: 400, builder });
      return render(ctx, target, { text: next, notices: [{ kind: 'info', text: `Rule ${rule.rulePriority} is in the editor. Preview the policy, then save it.` }] });
    }
    if (action === 'preview') {
      await ctx.api.call('ecr', 'StartLifecyclePolicyPreview', { repositoryName: name, lifecyclePolicyText: text });
      const preview = await previewOf(ctx, name, 5000);
      if (preview?.status === 'IN_PROGRESS') return { redirect: `${repoPath(name, 'lifecycle')}?preview=1#preview` };
      return render(ctx, target, { text, ...(preview ? { preview } : {}) });
    }
    if (action === 'save') {
      await ctx.api.call('ecr', 'PutLifecyclePolicy', { repositoryName: name, lifecyclePolicyText: text });
      return { redirect: `${repoPath(name, 'lifecycle')}?saved=1` };
    }
    if (action === 'delete') {
      await ctx.api.call('ecr', 'DeleteLifecyclePolicy', { repositoryName: name });
      return { redirect: `${repoPath(name, 'lifecycle')}?deleted=1` };
    }
  } catch (err) {
    if (err instanceof ApiError && !/RepositoryNotFound/.test(err.code)) {
      return render(ctx, target, { text, notices: [{ kind: err.denied ? 'denied' : 'error', text: html`Not done: ${err.message}` }], status: err.denied ? 403 : 400 });
    }
    throw err;
  }
  return render(ctx, target, { text, notices: [{ kind: 'error', text: 'Unknown action.' }], status: 400 });
}
