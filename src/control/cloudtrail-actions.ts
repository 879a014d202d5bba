import { createHash } from 'node:crypto';
import { auditResourceOf, lookupEventOf, parseArn, type AuditLookup } from '../audit/cloudtrail.ts';
import { AwsError } from './aws-error.ts';
import type { ActionContext, ActionHandler } from './plane.ts';

/**
 * CloudTrail's LookupEvents over Berth's audit log (docs/security.md, "Audit log"): the records
 * filed under the caller's account, newest first, as CloudTrail's event history. Asked as
 * `cloudtrail:LookupEvents` on `*`.
 *
 * One extension: AWS takes one lookup attribute; Berth takes several, one of each key, and returns
 * the events that match them all (the console filters by user, action and repository at once).
 */

const KEYS = ['EventId', 'EventName', 'ReadOnly', 'Username', 'ResourceType', 'ResourceName', 'EventSource', 'AccessKeyId'] as const;
type LookupKey = (typeof KEYS)[number];
const MAX_RESULTS = 50;

const invalidAttributes = (message: string) => new AwsError('InvalidLookupAttributesException', message, 400);

/**
 * CloudTrail's own errors for what its model also constrains (MaxResults 1..50, the attribute key
 * enum and value length, the event category), checked on the JSON body before the model's
 * generic validation, which would answer ValidationException. Values of the wrong JSON type are
 * left to the model (SerializationException).
 */
export function checkCloudTrailInput(operation: string, body: unknown): void {
  if (operation !== 'LookupEvents' || typeof body !== 'object' || body === null) return;
  const input = body as Record<string, unknown>;
  const max = input['MaxResults'];
  if (typeof max === 'number' && Number.isInteger(max) && (max < 1 || max > MAX_RESULTS)) {
    throw new AwsError('InvalidMaxResultsException', `MaxResults must be between 1 and ${MAX_RESULTS}; got ${max}.`, 400);
  }
  const category = input['EventCategory'];
  if (typeof category === 'string' && category !== 'insight') {
    throw new AwsError('InvalidEventCategoryException', `EventCategory must be insight; got ${category}.`, 400);
  }
  const attributes = input['LookupAttributes'];
  if (!Array.isArray(attributes)) return;
  for (const a of attributes) {
    if (typeof a !== 'object' || a === null) continue;
    const { AttributeKey: key, AttributeValue: value } = a as Record<string, unknown>;
    if (key === undefined || key === null) throw invalidAttributes('Each lookup attribute needs an AttributeKey.');
    if (typeof key === 'string' && !(KEYS as readonly string[]).includes(key)) throw invalidAttributes(`AttributeKey ${key} is not valid: use one of ${KEYS.join(', ')}.`);
    if (value === undefined || value === null) throw invalidAttributes(`The lookup attribute ${String(key)} needs an AttributeValue.`);
    if (typeof value === 'string' && (value.length < 1 || value.length > 2000)) throw invalidAttributes(`The AttributeValue of ${String(key)} must be 1 to 2000 characters long.`);
  }
}

/** What a NextToken is bound to: the account and every parameter but MaxResults. */
function fingerprint(accountId: string, input: Record<string, any>): string {
  const attributes = ((input['LookupAttributes'] ?? []) as Array<{ AttributeKey: string; AttributeValue: string }>)
    .map((a) => [a.AttributeKey, a.AttributeValue])
    .sort(([a], [b]) => (a! < b! ? -1 : a! > b! ? 1 : 0));
  const time = (d: unknown) => (d instanceof Date ? d.getTime() : null);
  const text = JSON.stringify([accountId, attributes, time(input['StartTime']), time(input['EndTime']), input['EventCategory'] ?? null]);
  return createHash('sha256').update(text).digest('base64url').slice(0, 22);
}

/** The opaque token of a page's last event: its time and id, and the request it belongs to. */
function encodeToken(after: { atMs: number; id: number }, print: string): string {
  return Buffer.from(JSON.stringify({ t: after.atMs, i: after.id, f: print })).toString('base64url');
}

function decodeToken(token: string, print: string): { atMs: number; id: number } {
  const invalid = () => new AwsError('InvalidNextTokenException', 'The NextToken is not valid: pass the one LookupEvents returned, with the same lookup attributes, times and event category.', 400);
  let parsed: unknown;
  try {
    parsed = JSON.parse(Buffer.from(token, 'base64url').toString('utf8'));
  } catch {
    throw invalid();
  }
  const { t, i, f } = (parsed ?? {}) as Record<string, unknown>;
  if (!Number.isSafeInteger(t) || !Number.isSafeInteger(i) || f !== print) throw invalid();
  return { atMs: t as number, id: i as number };
}

/** The store query for the attributes, or undefined when they can match nothing (an EventId that is no id, another account's ARN). */
function queryOf(ctx: ActionContext, attributes: Array<{ AttributeKey: LookupKey; AttributeValue: string }>): Omit<AuditLookup, 'limit'> | undefined {
  const accountId = ctx.principal.accountId;
  const query: Omit<AuditLookup, 'limit'> = { accountId };
  const seen = new Set<string>();
  for (const { AttributeKey: key, AttributeValue: value } of attributes) {
    if (seen.has(key)) throw invalidAttributes(`AttributeKey ${key} is given more than once: Berth matches several lookup attributes all at once, one of each key.`);
    seen.add(key);
    switch (key) {
      case 'EventId':
        // Berth's event ids are the records' numbers.
        if (!/^[1-9]\d{0,14}$/u.test(value)) return undefined;
        query.eventId = Number(value);
        break;
      case 'EventName':
        query.eventName = value;
        break;
      case 'EventSource':
        query.eventSource = value;
        break;
      case 'Username':
        query.userName = value;
        break;
      case 'ResourceType':
        query.resourceType = value;
        break;
      case 'AccessKeyId':
        query.accessKeyId = value;
        break;
      case 'ReadOnly':
        if (value !== 'true' && value !== 'false') throw invalidAttributes(`The AttributeValue of ReadOnly must be true or false; got ${value}.`);
        query.readOnly = value === 'true';
        break;
      case 'ResourceName': {
        // A name, or an ARN, which names the resource as the records do (a repository ARN, its name).
        const arn = parseArn(value);
        if (!arn) {
          query.resourceName = value;
          break;
        }
        if (arn.accountId !== '' && arn.accountId !== accountId) return undefined;
        const resource = auditResourceOf(value);
        query.resourceName = resource.name ?? value;
        if (resource.type !== null) {
          if (query.resourceType !== undefined && query.resourceType !== resource.type) return undefined;
          query.resourceType = resource.type;
        }
        break;
      }
    }
  }
  return query;
}

export const cloudTrailActions: Record<string, ActionHandler> = {
  async LookupEvents(ctx, input) {
    await ctx.authorize('cloudtrail:LookupEvents', '*');
    const print = fingerprint(ctx.principal.accountId, input);
    const after = typeof input['NextToken'] === 'string' ? decodeToken(input['NextToken'], print) : undefined;
    const start = input['StartTime'] as Date | undefined;
    const end = input['EndTime'] as Date | undefined;
    if (start && end && start.getTime() > end.getTime()) {
      throw new AwsError('InvalidTimeRangeException', `StartTime (${start.toISOString()}) is after EndTime (${end.toISOString()}).`, 400);
    }
    // Berth records no Insights events.
    if (input['EventCategory'] === 'insight') return { Events: [] };
    const query = queryOf(ctx, input['LookupAttributes'] ?? []);
    if (!query) return { Events: [] };
    const limit = (input['MaxResults'] as number | undefined) ?? MAX_RESULTS;
    const rows = await ctx.deps.audit.lookup({ ...query, startMs: start?.getTime(), endMs: end?.getTime(), after, limit: limit + 1 });
    const page = rows.slice(0, limit);
    const last = page[page.length - 1];
    return {
      Events: page.map((e) => lookupEventOf(e, ctx.deps.region)),
      ...(rows.length > limit && last ? { NextToken: encodeToken({ atMs: last.atMs, id: last.id }, print) } : {}),
    };
  },
};
