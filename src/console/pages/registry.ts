import { ApiError, unlessMissing } from '../api.ts';
import type { PageContext, PageResult, Routes } from '../console.ts';
import { html, type SafeHtml } from '../html.ts';
import { csrfField, deniedNote, when, type Notice } from '../layout.ts';
import { EVENT_SUBSCRIPTION_ACTIONS, eventsPost, eventsTab } from './events.ts';
import { permissions } from './permissions.ts';
import { prettyJson } from './repository.ts';

const TABS = [
  ['scanning', 'Scanning'],
  ['replication', 'Replication'],
  ['cache', 'Pull-through cache'],
  ['templates', 'Creation templates'],
  ['policy', 'Registry policy'],
  ['events', 'Event subscriptions'],
] as const;
type Tab = (typeof TABS)[number][0];

const ACTIONS = [
  'ecr:GetRegistryScanningConfiguration', 'ecr:PutRegistryScanningConfiguration',
  'ecr:DescribeRegistry', 'ecr:PutReplicationConfiguration',
  'ecr:DescribePullThroughCacheRules', 'ecr:CreatePullThroughCacheRule', 'ecr:DeletePullThroughCacheRule', 'ecr:ValidatePullThroughCacheRule',
  'ecr:DescribeRepositoryCreationTemplates', 'ecr:CreateRepositoryCreationTemplate', 'ecr:DeleteRepositoryCreationTemplate',
  'ecr:GetRegistryPolicy', 'ecr:PutRegistryPolicy', 'ecr:DeleteRegistryPolicy',
  ...EVENT_SUBSCRIPTION_ACTIONS,
] as const;
type Can = Record<(typeof ACTIONS)[number], boolean>;

const tabHref = (tab: Tab, extra = '') => `/console/registry?tab=${tab}${extra}`;


function editor(ctx: PageContext, o: { id: string; label: string; text: string; action: string; canSave: boolean; saveAction: string; canDelete?: boolean; hint?: SafeHtml; rows?: number }): SafeHtml {
  return html`<form method="post" action="${o.action}" class="stack">
  ${csrfField(ctx.frame)}
  <label for="${o.id}">${o.label}</label>
  ${o.hint ?? ''}
  <textarea id="${o.id}" name="text" rows="${o.rows ?? 14}" class="code" spellcheck="false"${o.canSave ? '' : html` readonly`}>${o.text}</textarea>
  <div class="buttons">
    ${o.canSave ? html`<button type="submit" name="action" value="save" class="primary">Save</button>` : deniedNote('change this', o.saveAction)}
    ${o.canDelete ? html`<button type="submit" name="action" value="delete" class="danger" data-confirm="Delete it?">Delete</button>` : ''}
  </div>
</form>`;
}

async function scanning(ctx: PageContext, can: Can, draft?: string): Promise<SafeHtml> {
  if (!can['ecr:GetRegistryScanningConfiguration']) return deniedNote('read the scanning configuration', 'ecr:GetRegistryScanningConfiguration');
  const out = await ctx.api.call<{ scanningConfiguration?: unknown }>('ecr', 'GetRegistryScanningConfiguration');
  return html`<p>Which repositories are scanned on push or continuously, and with which scanner (<code>BASIC</code> or <code>ENHANCED</code>).</p>
${editor(ctx, { id: 'scanning', label: 'Scanning configuration (the input of PutRegistryScanningConfiguration)', text: draft ?? JSON.stringify(out.scanningConfiguration ?? {}, null, 2), action: '/console/registry/scanning', canSave: can['ecr:PutRegistryScanningConfiguration'], saveAction: 'ecr:PutRegistryScanningConfiguration' })}`;
}

async function replication(ctx: PageContext, can: Can, draft?: string): Promise<SafeHtml> {
  if (!can['ecr:DescribeRegistry']) return deniedNote('read the replication configuration', 'ecr:DescribeRegistry');
  const out = await ctx.api.call<{ replicationConfiguration?: unknown }>('ecr', 'DescribeRegistry');
  return html`<p>Images pushed from now on are copied to the destinations of each rule whose filters match their repository (docs/replication.md).</p>
${editor(ctx, { id: 'replication', label: 'Replication configuration (rules of destinations and repository filters)', text: draft ?? JSON.stringify(out.replicationConfiguration ?? { rules: [] }, null, 2), action: '/console/registry/replication', canSave: can['ecr:PutReplicationConfiguration'], saveAction: 'ecr:PutReplicationConfiguration' })}`;
}

interface CacheRule {
  ecrRepositoryPrefix: string;
  upstreamRegistryUrl: string;
  upstreamRegistry?: string;
  upstreamRepositoryPrefix?: string;
  credentialArn?: string;
  customRoleArn?: string;
  createdAt?: number;
  updatedAt?: number;
}

async function cache(ctx: PageContext, can: Can, values: Record<string, string> = {}): Promise<SafeHtml> {
  if (!can['ecr:DescribePullThroughCacheRules']) return deniedNote('read the pull-through cache rules', 'ecr:DescribePullThroughCacheRules');
  const [rules, secrets] = await Promise.all([
    ctx.api.call<{ pullThroughCacheRules: CacheRule[] }>('ecr', 'DescribePullThroughCacheRules', { maxResults: 1000 }),
    unlessMissing(ctx.api.call<{ SecretList?: { ARN: string; Name: string; LastChangedDate?: number }[] }>('secretsmanager', 'ListSecrets', { MaxResults: 100, Filters: [{ Key: 'name', Values: ['ecr-pullthroughcache/'] }] }), /AccessDenied/),
  ]);
  const secretOptions = (secrets?.SecretList ?? []).map((s) => html`<option value="${s.ARN}"${values['credentialArn'] === s.ARN ? html` selected` : ''}>${s.Name}</option>`);
  return html`<p>A pull from <code>PREFIX/name</code> fetches <code>name</code> from the upstream the first time and serves Berth's copy afterwards (docs/pull-through-cache.md).</p>
<div class="table-wrap"><table><caption>${rules.pullThroughCacheRules.length} rule(s)</caption>
<thead><tr><th scope="col">Prefix</th><th scope="col">Upstream</th><th scope="col">Upstream prefix</th><th scope="col">Credentials</th><th scope="col">Updated</th><th scope="col"><span class="sr-only">Actions</span></th></tr></thead>
<tbody>${rules.pullThroughCacheRules.length
    ? rules.pullThroughCacheRules.map((r) => html`<tr><th scope="row"><code>${r.ecrRepositoryPrefix}</code></th><td><code>${r.upstreamRegistryUrl}</code> <span class="muted">${r.upstreamRegistry ?? ''}</span></td><td>${r.upstreamRepositoryPrefix ?? ''}</td><td>${r.credentialArn ? html`<code class="wrap">${r.credentialArn.split(':secret:')[1] ?? r.credentialArn}</code>` : html`<span class="muted">anonymous</span>`}</td><td>${when(r.updatedAt ?? r.createdAt)}</td>
<td><form method="post" action="/console/registry/cache" class="inline">${csrfField(ctx.frame)}<input type="hidden" name="prefix" value="${r.ecrRepositoryPrefix}">
${can['ecr:ValidatePullThroughCacheRule'] ? html`<button type="submit" name="action" value="validate">Validate</button>` : ''}
${can['ecr:DeletePullThroughCacheRule'] ? html`<button type="submit" name="action" value="delete" class="danger" data-confirm="Delete the rule ${r.ecrRepositoryPrefix}?">Delete</button>` : ''}</form></td></tr>`)
    : html`<tr><td colspan="6">No rules.</td></tr>`}</tbody></table></div>
<div class="two-col">
<section aria-labelledby="new-rule-h"><h3 id="new-rule-h">New rule</h3>
${can['ecr:CreatePullThroughCacheRule']
    ? html`<form method="post" action="/console/registry/cache" class="stack">${csrfField(ctx.frame)}
  <label for="prefix">Repository prefix (2–30 characters, or ROOT)</label><input id="prefix" name="prefix" required value="${values['prefix'] ?? ''}">
  <label for="upstream">Upstream registry URL</label><input id="upstream" name="upstream" required value="${values['upstream'] ?? ''}" placeholder="registry-1.docker.io">
  <label for="upstreamPrefix">Upstream repository prefix (optional)</label><input id="upstreamPrefix" name="upstreamPrefix" value="${values['upstreamPrefix'] ?? ''}">
  <label for="credentialArn">Credentials</label><select id="credentialArn" name="credentialArn"><option value="">None (anonymous)</option>${secretOptions}</select>
  <label for="customRoleArn">Role to assume at an ECR upstream (optional)</label><input id="customRoleArn" name="customRoleArn" value="${values['customRoleArn'] ?? ''}">
  <button type="submit" name="action" value="create" class="primary">Create rule</button></form>`
    : deniedNote('create pull-through cache rules', 'ecr:CreatePullThroughCacheRule')}
</section>
<section aria-labelledby="new-secret-h"><h3 id="new-secret-h">New upstream credentials</h3>
<form method="post" action="/console/registry/secret" class="stack">${csrfField(ctx.frame)}
  <label for="secretName">Name (stored as <code>ecr-pullthroughcache/NAME</code>)</label><input id="secretName" name="name" required pattern="[A-Za-z0-9/_+=.@-]+">
  <label for="secretUser">User name</label><input id="secretUser" name="username" required autocomplete="off">
  <label for="secretToken">Access token or password</label><input id="secretToken" name="token" type="password" required autocomplete="new-password">
  <button type="submit">Store credentials</button></form>
<p class="hint">Stored with Secrets Manager's <code>CreateSecret</code>, sealed at rest; the console never shows a value again.</p>
</section></div>`;
}

interface Template {
  prefix: string;
  description?: string;
  appliedFor?: string[];
  imageTagMutability?: string;
  createdAt?: number;
}

async function templates(ctx: PageContext, can: Can, draft?: string): Promise<SafeHtml> {
  if (!can['ecr:DescribeRepositoryCreationTemplates']) return deniedNote('read the creation templates', 'ecr:DescribeRepositoryCreationTemplates');
  const out = await ctx.api.call<{ repositoryCreationTemplates?: Template[] }>('ecr', 'DescribeRepositoryCreationTemplates', { maxResults: 1000 });
  const list = out.repositoryCreationTemplates ?? [];
  const example = JSON.stringify({ prefix: 'team', description: 'Repositories made by replication or the cache under team/', appliedFor: ['REPLICATION', 'PULL_THROUGH_CACHE'], imageTagMutability: 'IMMUTABLE' }, null, 2);
  return html`<p>Settings given to repositories that replication or the pull-through cache creates under a prefix.</p>
<div class="table-wrap"><table><caption>${list.length} template(s)</caption><thead><tr><th scope="col">Prefix</th><th scope="col">Applied for</th><th scope="col">Tag mutability</th><th scope="col">Description</th><th scope="col"><span class="sr-only">Actions</span></th></tr></thead><tbody>
${list.length
    ? list.map((t) => html`<tr><th scope="row"><code>${t.prefix}</code></th><td>${(t.appliedFor ?? []).join(', ')}</td><td>${t.imageTagMutability ?? ''}</td><td>${t.description ?? ''}</td><td>${can['ecr:DeleteRepositoryCreationTemplate'] ? html`<form method="post" action="/console/registry/templates" class="inline">${csrfField(ctx.frame)}<input type="hidden" name="prefix" value="${t.prefix}"><button type="submit" name="action" value="delete" class="danger" data-confirm="Delete the template ${t.prefix}?">Delete</button></form>` : ''}</td></tr>`)
    : html`<tr><td colspan="5">No templates.</td></tr>`}
</tbody></table></div>
<h3>New template</h3>
${editor(ctx, { id: 'template', label: 'Template (the input of CreateRepositoryCreationTemplate)', text: draft ?? example, action: '/console/registry/templates', canSave: can['ecr:CreateRepositoryCreationTemplate'], saveAction: 'ecr:CreateRepositoryCreationTemplate', rows: 10 })}`;
}

async function policy(ctx: PageContext, can: Can, draft?: string): Promise<SafeHtml> {
  if (!can['ecr:GetRegistryPolicy']) return deniedNote('read the registry policy', 'ecr:GetRegistryPolicy');
  const out = await unlessMissing(ctx.api.call<{ policyText: string }>('ecr', 'GetRegistryPolicy'), /RegistryPolicyNotFound/);
  return html`<p>Who else may act on this registry: other accounts replicating into it (<code>ecr:ReplicateImage</code>, <code>ecr:CreateRepository</code>), or pulling from every repository.</p>
${editor(ctx, { id: 'registry-policy', label: 'Registry policy (JSON); empty when there is none', text: draft ?? (out ? prettyJson(out.policyText) : ''), action: '/console/registry/policy', canSave: can['ecr:PutRegistryPolicy'], saveAction: 'ecr:PutRegistryPolicy', canDelete: out !== undefined && can['ecr:DeleteRegistryPolicy'] })}`;
}

async function render(ctx: PageContext, tab: Tab, o: { notices?: Notice[]; draft?: string; values?: Record<string, string>; status?: number } = {}): Promise<PageResult> {
  const can = (await permissions(ctx.api, ACTIONS)) as Can;
  const body =
    tab === 'scanning' ? await scanning(ctx, can, o.draft)
    : tab === 'replication' ? await replication(ctx, can, o.draft)
    : tab === 'cache' ? await cache(ctx, can, o.values)
    : tab === 'templates' ? await templates(ctx, can, o.draft)
    : tab === 'policy' ? await policy(ctx, can, o.draft)
    : await eventsTab(ctx, can);
  const notices = o.notices ?? [];
  if (ctx.query.get('saved')) notices.push({ kind: 'success', text: 'Saved.' });
  return {
    title: 'Registry settings',
    section: 'registry',
    status: o.status ?? 200,
    notices,
    body: html`<h1>Registry settings</h1>
<nav aria-label="Registry settings" class="tabs"><ul>${TABS.map(([key, label]) => html`<li><a href="${tabHref(key)}"${key === tab ? html` aria-current="page"` : ''}>${label}</a></li>`)}</ul></nav>
${body}`,
  };
}

function parsed(text: string): unknown {
  return JSON.parse(text);
}

/** Runs a change; an API refusal or bad JSON re-renders the tab with the message and the draft. */
async function change(ctx: PageContext, tab: Tab, work: () => Promise<void>, keep: { draft?: string; values?: Record<string, string> } = {}): Promise<PageResult> {
  try {
    await work();
  } catch (err) {
    if (err instanceof ApiError) return render(ctx, tab, { ...keep, notices: [{ kind: err.denied ? 'denied' : 'error', text: `Not done: ${err.message}` }], status: err.denied ? 403 : 400 });
    if (err instanceof SyntaxError) return render(ctx, tab, { ...keep, notices: [{ kind: 'error', text: `Not valid JSON: ${err.message}` }], status: 400 });
    throw err;
  }
  return { redirect: tabHref(tab, '&saved=1') };
}

export function registryRoutes(): Routes {
  return {
    get: {
      '/console/registry': async (ctx) => render(ctx, (TABS.map((t) => t[0]) as string[]).includes(ctx.query.get('tab') ?? '') ? (ctx.query.get('tab') as Tab) : 'scanning'),
    },
    post: {
      '/console/registry/events': eventsPost,
      '/console/registry/scanning': async (ctx) => {
        const text = ctx.form.get('text') ?? '';
        return change(ctx, 'scanning', async () => void (await ctx.api.call('ecr', 'PutRegistryScanningConfiguration', parsed(text) as Record<string, unknown>)), { draft: text });
      },
      '/console/registry/replication': async (ctx) => {
        const text = ctx.form.get('text') ?? '';
        return change(ctx, 'replication', async () => void (await ctx.api.call('ecr', 'PutReplicationConfiguration', { replicationConfiguration: parsed(text) })), { draft: text });
      },
      '/console/registry/policy': async (ctx) => {
        const text = (ctx.form.get('text') ?? '').trim();
        return change(ctx, 'policy', async () => {
          if (ctx.form.get('action') === 'delete' || text === '') await unlessMissing(ctx.api.call('ecr', 'DeleteRegistryPolicy'), /RegistryPolicyNotFound/);
          else await ctx.api.call('ecr', 'PutRegistryPolicy', { policyText: text });
        }, { draft: text });
      },
      '/console/registry/templates': async (ctx) => {
        const text = ctx.form.get('text') ?? '';
        return change(ctx, 'templates', async () => {
          if (ctx.form.get('action') === 'delete') await ctx.api.call('ecr', 'DeleteRepositoryCreationTemplate', { prefix: ctx.form.get('prefix') ?? '' });
          else await ctx.api.call('ecr', 'CreateRepositoryCreationTemplate', parsed(text) as Record<string, unknown>);
        }, { draft: text });
      },
      '/console/registry/cache': async (ctx) => {
        const f = ctx.form;
        const action = f.get('action');
        const prefix = f.get('prefix') ?? '';
        if (action === 'validate') {
          try {
            const out = await ctx.api.call<{ isValid: boolean; failure?: string }>('ecr', 'ValidatePullThroughCacheRule', { ecrRepositoryPrefix: prefix });
            return render(ctx, 'cache', { notices: [out.isValid ? { kind: 'success', text: `The rule ${prefix} reaches its upstream with its credentials.` } : { kind: 'error', text: `The rule ${prefix} does not work: ${out.failure ?? 'unknown failure'}` }] });
          } catch (err) {
            if (err instanceof ApiError) return render(ctx, 'cache', { notices: [{ kind: err.denied ? 'denied' : 'error', text: err.message }], status: 400 });
            throw err;
          }
        }
        const values = Object.fromEntries(f);
        return change(ctx, 'cache', async () => {
          if (action === 'delete') {
            await ctx.api.call('ecr', 'DeletePullThroughCacheRule', { ecrRepositoryPrefix: prefix });
            return;
          }
          const opt = (k: string) => (f.get(k) ?? '').trim();
          await ctx.api.call('ecr', 'CreatePullThroughCacheRule', {
            ecrRepositoryPrefix: prefix.trim(),
            upstreamRegistryUrl: opt('upstream'),
            ...(opt('upstreamPrefix') ? { upstreamRepositoryPrefix: opt('upstreamPrefix') } : {}),
            ...(opt('credentialArn') ? { credentialArn: opt('credentialArn') } : {}),
            ...(opt('customRoleArn') ? { customRoleArn: opt('customRoleArn') } : {}),
          });
        }, { values });
      },
      '/console/registry/secret': async (ctx) => {
        const f = ctx.form;
        return change(ctx, 'cache', async () => {
          await ctx.api.call('secretsmanager', 'CreateSecret', {
            Name: `ecr-pullthroughcache/${(f.get('name') ?? '').trim()}`,
            SecretString: JSON.stringify({ username: f.get('username') ?? '', accessToken: f.get('token') ?? '' }),
          });
        });
      },
    },
  };
}
