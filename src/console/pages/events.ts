import { ApiError } from '../api.ts';
import type { PageContext, PageResult } from '../console.ts';
import { html, type SafeHtml } from '../html.ts';
import { breadcrumbs, copyButton, csrfField, deniedNote, when, type Notice } from '../layout.ts';
import { permissions } from './permissions.ts';
import { prettyJson } from './repository.ts';

/**
 * Registry settings, Event subscriptions: the account's webhook subscriptions with their recent
 * deliveries, made, paused and deleted through Berth's event subscription operations
 * (docs/webhooks.md, docs/ecr-api.md). A new subscription's secret is shown once, in the answer
 * to the form that made it, never in a URL.
 */

export const EVENT_SUBSCRIPTION_ACTIONS = [
  'ecr:BerthDescribeEventSubscriptions',
  'ecr:BerthListEventDeliveries',
  'ecr:BerthCreateEventSubscription',
  'ecr:BerthUpdateEventSubscription',
  'ecr:BerthDeleteEventSubscription',
] as const;
type Can = Record<(typeof EVENT_SUBSCRIPTION_ACTIONS)[number], boolean>;

const TAB_HREF = '/console/registry?tab=events';
export const EVENTS_POST = '/console/registry/events';
/** Recent deliveries shown per subscription. */
const DELIVERIES_SHOWN = 10;
/** Describe pages read at most (an account has 25 subscriptions unless the operator made more). */
const MAX_PAGES = 5;

interface Subscription {
  subscriptionId: string;
  url: string;
  eventPattern?: string;
  headerNames: string[];
  timeoutSeconds: number;
  maxAttempts: number;
  createdAt: number;
  disabled: boolean;
  cursor: number;
  lag: number;
  deadLetterCount: number;
}

interface Delivery {
  eventId: string;
  seq: number;
  detailType: string;
  time: number;
  repositoryName?: string;
  status: 'DELIVERED' | 'PENDING' | 'FAILED';
  attempts?: number;
  lastError?: string;
}

/** What the create form held, given back after a refusal (never a header's value: it may be a credential). */
export interface EventFormValues {
  url?: string;
  pattern?: string;
  headerName?: string;
}

/**
 * The header field of the create form, `Name: value`, as the API's `headers`; a sentence when it
 * is not of that form. Empty means none.
 */
export function headerFromForm(text: string): Record<string, string> | string {
  const trimmed = text.trim();
  if (trimmed === '') return {};
  const at = trimmed.indexOf(':');
  const name = at > 0 ? trimmed.slice(0, at).trim() : '';
  if (name === '' || /\s/.test(name)) return 'The header must be written as Name: value, for example Authorization: Bearer abc123.';
  return { [name]: trimmed.slice(at + 1).trim() };
}

/** The given permissions, with those of this tab asked of BerthCheckPermissions when the caller did not ask them. */
async function allowed(ctx: PageContext, can: Record<string, boolean>): Promise<Can> {
  const missing = EVENT_SUBSCRIPTION_ACTIONS.filter((a) => !(a in can));
  const asked = missing.length > 0 ? await permissions(ctx.api, missing) : {};
  return Object.fromEntries(EVENT_SUBSCRIPTION_ACTIONS.map((a) => [a, can[a] ?? (asked as Record<string, boolean>)[a] === true])) as Can;
}

async function subscriptions(ctx: PageContext): Promise<Subscription[]> {
  const out: Subscription[] = [];
  let nextToken: string | undefined;
  for (let page = 0; page < MAX_PAGES; page++) {
    const res = await ctx.api.call<{ subscriptions: Subscription[]; nextToken?: string }>('ecr', 'BerthDescribeEventSubscriptions', { maxResults: 100, ...(nextToken ? { nextToken } : {}) });
    out.push(...res.subscriptions);
    nextToken = res.nextToken;
    if (!nextToken) break;
  }
  return out;
}

function deliveryTable(list: Delivery[] | ApiError): SafeHtml {
  if (list instanceof ApiError) return list.denied ? deniedNote('see its deliveries', 'ecr:BerthListEventDeliveries') : html`<p class="notice error">${list.message}</p>`;
  const status = (d: Delivery) =>
    d.status === 'DELIVERED' ? html`<span class="status complete">Delivered</span>`
    : d.status === 'FAILED' ? html`<span class="status failed">Failed</span>`
    : html`<span class="muted">Pending</span>`;
  return html`<div class="table-wrap"><table><caption>Recent deliveries, newest first</caption>
<thead><tr><th scope="col">Time</th><th scope="col">Event</th><th scope="col">Repository</th><th scope="col">Status</th><th scope="col">Why it failed</th></tr></thead>
<tbody>${list.length
    ? list.map((d) => html`<tr><td>${when(d.time)}</td><td>${d.detailType} <span class="muted">#${d.seq}</span></td><td>${d.repositoryName ?? html`<span class="muted">registry</span>`}</td><td>${status(d)}</td><td>${d.status === 'FAILED' ? `${d.lastError ?? ''} after ${d.attempts ?? '?'} attempts` : ''}</td></tr>`)
    : html`<tr><td colspan="5">No events for it since it was made.</td></tr>`}</tbody></table></div>`;
}

function subscriptionSection(ctx: PageContext, can: Can, s: Subscription, deliveries: Delivery[] | ApiError | undefined): SafeHtml {
  const configured = s.subscriptionId.startsWith('config:');
  const hid = `sub-${s.subscriptionId.replace(/[^A-Za-z0-9-]/g, '-')}`;
  const buttons = configured
    ? html`<p class="hint">Managed by the server's configuration (<code>events.webhooks</code>): the operator changes it there.</p>`
    : html`<form method="post" action="${EVENTS_POST}" class="inline">${csrfField(ctx.frame)}<input type="hidden" name="subscriptionId" value="${s.subscriptionId}">
${can['ecr:BerthUpdateEventSubscription'] ? (s.disabled ? html`<button type="submit" name="action" value="enable">Enable</button>` : html`<button type="submit" name="action" value="disable">Disable</button>`) : ''}
${can['ecr:BerthDeleteEventSubscription'] ? html`<button type="submit" name="action" value="delete" class="danger" data-confirm="Delete the subscription to ${s.url} and its record of failed deliveries?">Delete</button>` : ''}</form>`;
  return html`<section aria-labelledby="${hid}">
<h4 id="${hid}"><code class="wrap">${s.url}</code> ${s.disabled ? html`<span class="muted">(disabled)</span>` : ''}</h4>
<dl class="facts">
  <dt>Id</dt><dd><code>${s.subscriptionId}</code></dd>
  <dt>Events</dt><dd>${s.eventPattern ? html`<pre class="json" tabindex="0"><code>${prettyJson(s.eventPattern)}</code></pre>` : 'Every event of the account'}</dd>
  <dt>Headers</dt><dd>${s.headerNames.length ? s.headerNames.map((n) => html`<code>${n}</code> `) : html`<span class="muted">none</span>`} <span class="muted">(values are not shown)</span></dd>
  <dt>Delivery</dt><dd>${s.timeoutSeconds} s per attempt, ${s.maxAttempts} attempts</dd>
  <dt>Progress</dt><dd>${s.lag === 0 ? 'Up to date' : `${s.lag} event(s) waiting`}, at event #${s.cursor}; ${s.deadLetterCount} given up on</dd>
  <dt>Created</dt><dd>${when(s.createdAt)}</dd>
</dl>
${buttons}
${deliveries === undefined ? '' : deliveryTable(deliveries)}
</section>`;
}

function createForm(ctx: PageContext, can: Can, values: EventFormValues): SafeHtml {
  if (!can['ecr:BerthCreateEventSubscription']) return deniedNote('create event subscriptions', 'ecr:BerthCreateEventSubscription');
  const example = JSON.stringify({ 'detail-type': ['ECR Image Action'], detail: { 'action-type': ['PUSH'] } });
  return html`<form method="post" action="${EVENTS_POST}" class="stack">${csrfField(ctx.frame)}
  <label for="event-url">Receiver URL (http:// or https://)</label><input id="event-url" name="url" type="url" required value="${values.url ?? ''}" placeholder="https://ci.example.com/berth">
  <label for="event-pattern">EventBridge event pattern (optional; every event of the account when empty)</label>
  <textarea id="event-pattern" name="pattern" rows="5" class="code" spellcheck="false" placeholder="${example}">${values.pattern ?? ''}</textarea>
  <label for="event-header">Extra request header (optional), as <code>Name: value</code></label><input id="event-header" name="header" autocomplete="off" value="${values.headerName ? `${values.headerName}: ` : ''}" placeholder="Authorization: Bearer abc123">
  <button type="submit" name="action" value="create" class="primary">Create subscription</button>
</form>
<p class="hint">Berth makes a secret for it and shows it once: the receiver checks each delivery's <code>Berth-Signature</code> with it (docs/webhooks.md).</p>`;
}

/**
 * The tab's content. `can` holds the permissions the page already asked; those of this tab that
 * it lacks are asked here.
 */
export async function eventsTab(ctx: PageContext, can: Record<string, boolean>, values: EventFormValues = {}): Promise<SafeHtml> {
  const may = await allowed(ctx, can);
  const intro = html`<p>Berth POSTs the account's events (pushes, deletions, tag moves, scans, policy changes) to each URL below that subscribes to them, signed with the subscription's secret, retrying a receiver that fails (docs/webhooks.md).</p>`;
  if (!may['ecr:BerthDescribeEventSubscriptions']) {
    return html`${intro}${deniedNote('list the event subscriptions', 'ecr:BerthDescribeEventSubscriptions')}
<h3>New subscription</h3>${createForm(ctx, may, values)}`;
  }
  const list = await subscriptions(ctx);
  const deliveries = await Promise.all(
    list.map(async (s) => {
      if (!may['ecr:BerthListEventDeliveries']) return undefined;
      try {
        return (await ctx.api.call<{ deliveries: Delivery[] }>('ecr', 'BerthListEventDeliveries', { subscriptionId: s.subscriptionId, maxResults: DELIVERIES_SHOWN })).deliveries;
      } catch (err) {
        if (err instanceof ApiError) return err;
        throw err;
      }
    }),
  );
  return html`${intro}
<h3>${list.length} subscription(s)</h3>
${list.length ? list.map((s, i) => subscriptionSection(ctx, may, s, deliveries[i])) : html`<p>No subscriptions yet.</p>`}
${may['ecr:BerthListEventDeliveries'] ? '' : deniedNote('see the deliveries', 'ecr:BerthListEventDeliveries')}
<h3>New subscription</h3>
${createForm(ctx, may, values)}`;
}

/** The tab on a page of its own: the answer to a form of the tab that is not a redirect. */
async function page(ctx: PageContext, o: { notices: Notice[]; status?: number; values?: EventFormValues }): Promise<PageResult> {
  return {
    title: 'Event subscriptions',
    section: 'registry',
    status: o.status ?? 200,
    notices: o.notices,
    body: html`${breadcrumbs([['Registry settings', '/console/registry'], ['Event subscriptions']])}
<h1>Event subscriptions</h1>
${await eventsTab(ctx, {}, o.values)}`,
  };
}

function refusal(ctx: PageContext, err: ApiError, values?: EventFormValues): Promise<PageResult> {
  return page(ctx, { notices: [{ kind: err.denied ? 'denied' : 'error', text: `Not done: ${err.message}` }], status: err.denied ? 403 : 400, values });
}

/** POST /console/registry/events: create (then the secret, once), enable, disable or delete. */
export async function eventsPost(ctx: PageContext): Promise<PageResult> {
  const f = ctx.form;
  const action = f.get('action') ?? '';
  try {
    if (action === 'create') {
      const url = (f.get('url') ?? '').trim();
      const pattern = (f.get('pattern') ?? '').trim();
      const header = headerFromForm(f.get('header') ?? '');
      const values: EventFormValues = { url, pattern, headerName: typeof header === 'string' ? undefined : Object.keys(header)[0] };
      if (typeof header === 'string') return page(ctx, { notices: [{ kind: 'error', text: `Not done: ${header}` }], status: 400, values });
      let made: { subscription: Subscription; secret?: string };
      try {
        made = await ctx.api.call('ecr', 'BerthCreateEventSubscription', { url, ...(pattern ? { eventPattern: pattern } : {}), ...(Object.keys(header).length ? { headers: header } : {}) });
      } catch (err) {
        if (err instanceof ApiError) return refusal(ctx, err, values);
        throw err;
      }
      const secret = made.secret;
      const text = secret
        ? html`Subscribed <code class="wrap">${made.subscription.url}</code>. Its secret is shown only now: <code class="wrap">${secret}</code> ${copyButton(secret, 'Copy the secret')} Give it to the receiver, which checks each delivery's signature with it.`
        : html`Subscribed <code class="wrap">${made.subscription.url}</code>.`;
      return page(ctx, { notices: [{ kind: 'success', text }] });
    }
    const subscriptionId = f.get('subscriptionId') ?? '';
    if (action === 'enable' || action === 'disable') await ctx.api.call('ecr', 'BerthUpdateEventSubscription', { subscriptionId, disabled: action === 'disable' });
    else if (action === 'delete') await ctx.api.call('ecr', 'BerthDeleteEventSubscription', { subscriptionId });
    else return page(ctx, { notices: [{ kind: 'error', text: 'Not done: the form named no action.' }], status: 400 });
  } catch (err) {
    if (err instanceof ApiError) return refusal(ctx, err);
    throw err;
  }
  return { redirect: `${TAB_HREF}&saved=1` };
}
