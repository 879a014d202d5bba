import { ApiError } from '../api.ts';
import type { Routes } from '../console.ts';
import { html } from '../html.ts';
import { pager, when } from '../layout.ts';

interface LookupEvent {
  EventId: string;
  EventName: string;
  EventTime: number;
  EventSource: string;
  Username?: string;
  Resources?: { ResourceType?: string; ResourceName: string }[];
  CloudTrailEvent: string;
}

/** A datetime-local field (UTC) as epoch seconds, or undefined. */
function instant(value: string | null): number | undefined {
  if (!value) return undefined;
  const ms = Date.parse(/Z|[+-]\d\d:\d\d$/.test(value) ? value : `${value}Z`);
  return Number.isNaN(ms) ? undefined : Math.floor(ms / 1000);
}

export function auditRoutes(): Routes {
  return {
    get: {
      '/console/audit': async (ctx) => {
        const q = ctx.query;
        const filters = { user: (q.get('user') ?? '').trim(), action: (q.get('action') ?? '').trim(), repository: (q.get('repository') ?? '').trim(), from: q.get('from') ?? '', to: q.get('to') ?? '' };
        const attributes = [
          ...(filters.user ? [{ AttributeKey: 'Username', AttributeValue: filters.user }] : []),
          ...(filters.action ? [{ AttributeKey: 'EventName', AttributeValue: filters.action }] : []),
          ...(filters.repository ? [{ AttributeKey: 'ResourceName', AttributeValue: filters.repository }] : []),
        ];
        const start = instant(filters.from);
        // datetime-local has minutes: "to 10:00" includes the whole of 10:00.
        const endMinute = instant(filters.to);
        const end = endMinute === undefined ? undefined : endMinute + (/T\d\d:\d\d$/.test(filters.to) ? 59 : 0);
        const next = q.get('next') ?? undefined;
        let events: LookupEvent[] = [];
        let nextToken: string | undefined;
        let problem: string | undefined;
        try {
          const out = await ctx.api.call<{ Events?: LookupEvent[]; NextToken?: string }>('cloudtrail', 'LookupEvents', {
            ...(attributes.length ? { LookupAttributes: attributes } : {}),
            ...(start !== undefined ? { StartTime: start } : {}),
            ...(end !== undefined ? { EndTime: end } : {}),
            MaxResults: 50,
            ...(next ? { NextToken: next } : {}),
          });
          events = out.Events ?? [];
          nextToken = out.NextToken;
        } catch (err) {
          if (!(err instanceof ApiError) || err.denied) throw err;
          problem = err.message;
        }
        const href = (token?: string) => {
          const p = new URLSearchParams(Object.entries(filters).filter(([, v]) => v));
          if (token) p.set('next', token);
          const s = p.toString();
          return `/console/audit${s ? `?${s}` : ''}`;
        };
        const field = (id: keyof typeof filters, label: string, type = 'search', hint = '') =>
          html`<label for="${id}">${label}</label><input id="${id}" name="${id}" type="${type}" value="${filters[id]}"${hint ? html` placeholder="${hint}"` : ''}>`;
        return {
          title: 'Audit log',
          section: 'audit',
          status: problem ? 400 : 200,
          notices: problem ? [{ kind: 'error', text: problem }] : [],
          body: html`<h1>Audit log</h1>
<form method="get" action="/console/audit" class="filters" role="search">
  ${field('user', 'User', 'search', 'alice')}
  ${field('action', 'Action', 'search', 'PutImage')}
  ${field('repository', 'Repository', 'search', 'team/app')}
  ${field('from', 'From (UTC)', 'datetime-local')}
  ${field('to', 'To (UTC)', 'datetime-local')}
  <button type="submit">Filter</button>
</form>
<div class="table-wrap"><table class="audit">
<caption>Newest first${events.length ? '' : ': no events match'}</caption>
<thead><tr><th scope="col">Time</th><th scope="col">User</th><th scope="col">Action</th><th scope="col">Resource</th><th scope="col">Result</th><th scope="col">Details</th></tr></thead>
<tbody>${events.map((e) => {
  let record: { errorCode?: string; sourceIPAddress?: string; decision?: string } = {};
  try {
    record = JSON.parse(e.CloudTrailEvent) as typeof record;
  } catch {
    record = {};
  }
  return html`<tr>
  <td>${when(e.EventTime)}</td>
  <td>${e.Username ?? html`<span class="muted">anonymous</span>`}</td>
  <td>${e.EventName} <span class="muted">${e.EventSource.replace('.amazonaws.com', '')}</span></td>
  <td>${(e.Resources ?? []).map((r) => html`<code class="wrap">${r.ResourceName}</code> `)}</td>
  <td>${record.errorCode ? html`<span class="status failed">${record.errorCode}</span>` : html`<span class="status complete">OK</span>`}</td>
  <td><details><summary>Record</summary><pre class="json" tabindex="0"><code>${JSON.stringify(record, null, 2)}</code></pre></details></td>
</tr>`;
})}</tbody>
</table></div>
${pager(nextToken ? href(nextToken) : undefined, next ? href() : undefined, `${events.length} shown`)}`,
        };
      },
    },
  };
}
