import { isConfigWebhook } from '../../events/webhook-config.ts';
import { newSubscription, recentDeliveries, SubscriptionInputError, subscriptionLag, type SubscriptionField } from '../../events/subscriptions.ts';
import { eventSubscriptions } from '../../registry/event-subscriptions.ts';
import type { WebhookSubscription } from '../../store/meta/event-store.ts';
import { AwsError } from '../aws-error.ts';
import type { ActionContext, ActionHandler } from '../plane.ts';
import { afterToken, nextTokenAfter } from './common.ts';

/**
 * Berth's event subscription operations (docs/ecr-api.md, docs/webhooks.md): the caller
 * account's webhook subscriptions, as `berth events add --account` makes them, through the API
 * so that the console and scripts can manage them. Each is its own IAM action on the registry
 * (`*`), like the other registry-wide operations. Subscriptions for every account, which only the
 * operator's `berth events add` makes, are not shown or changed here; those of the server's
 * configuration (`config:` ids) are shown but changed only there.
 */

/** Subscriptions one account may have: each is a delivery loop on some node. */
export const MAX_SUBSCRIPTIONS_PER_ACCOUNT = 25;
const DEFAULT_DELIVERIES = 20;
const DEFAULT_PAGE = 100;

/** The API's member for each field of the shared check. */
const MEMBERS: Record<SubscriptionField, string> = {
  url: 'url',
  pattern: 'eventPattern',
  secret: 'secret',
  headers: 'headers',
  timeoutSeconds: 'timeoutSeconds',
  maxAttempts: 'maxAttempts',
};

const invalid = (member: string, constraint: string) => new AwsError('InvalidParameterException', `Invalid parameter at '${member}' failed to satisfy constraint: '${constraint}'`);

function notFound(ctx: ActionContext, id: string): AwsError {
  return new AwsError('EventSubscriptionNotFoundException', `The event subscription with id '${id}' does not exist in the registry with id '${ctx.principal.accountId}'`);
}

/** The caller account's subscription the input names; EventSubscriptionNotFoundException otherwise. */
async function subscriptionOf(ctx: ActionContext, input: Record<string, any>): Promise<WebhookSubscription & { accountId: string }> {
  const id = input['subscriptionId'] as string;
  const found = await eventSubscriptions(ctx.deps.registry).get(ctx.principal.accountId, id);
  if (!found) throw notFound(ctx, id);
  return found as WebhookSubscription & { accountId: string };
}

function refuseConfigured(subscription: WebhookSubscription): void {
  if (isConfigWebhook(subscription.id)) {
    throw invalid('subscriptionId', `The event subscription ${subscription.id} is managed by the server's configuration (events.webhooks); the operator changes or removes it there`);
  }
}

/** Subscriptions as the operations show them: never the secret, and of the headers only their names. */
async function described(ctx: ActionContext, subscriptions: readonly WebhookSubscription[]): Promise<Record<string, unknown>[]> {
  const store = eventSubscriptions(ctx.deps.registry);
  const progress = await store.progress(subscriptions);
  const out = [];
  for (const s of subscriptions) {
    const { cursor, deadLetterCount } = progress.get(s.id)!;
    out.push({
      subscriptionId: s.id,
      url: s.url,
      ...(s.pattern !== null ? { eventPattern: s.pattern } : {}),
      headerNames: Object.keys(s.headers),
      timeoutSeconds: s.timeoutMs / 1000,
      maxAttempts: s.maxAttempts,
      createdAt: new Date(s.createdAtMs),
      disabled: s.isDisabled,
      cursor,
      lag: await subscriptionLag(store.log(s as WebhookSubscription & { accountId: string }), s, cursor),
      deadLetterCount,
    });
  }
  return out;
}

/**
 * A dead letter's reason as the API gives it: the status or the network error, not the start of
 * the receiver's answer that the dispatcher keeps with it. A subscription's URL is the caller's to
 * choose, so its answers are not relayed (the operator's `berth events deliveries` shows them).
 */
function reasonOf(lastError: string): string {
  return /^HTTP \d{3}/.exec(lastError)?.[0] ?? lastError;
}

/** Describe's position: the last subscription of a page, by creation time and id (the list's order). */
function positionOf(token: string | undefined): { createdAtMs: number; id: string } | undefined {
  const after = afterToken(token);
  if (after === undefined) return undefined;
  try {
    const [createdAtMs, id] = JSON.parse(after) as unknown[];
    if (typeof createdAtMs === 'number' && typeof id === 'string') return { createdAtMs, id };
  } catch {
    // fall through
  }
  throw invalid('nextToken', 'The nextToken is not one this registry returned; start again without it');
}

export const eventSubscriptionActions: Record<string, ActionHandler> = {
  async BerthCreateEventSubscription(ctx, input) {
    await ctx.authorize('ecr:BerthCreateEventSubscription', '*');
    const accountId = ctx.principal.accountId;
    const store = eventSubscriptions(ctx.deps.registry);
    let made;
    try {
      made = newSubscription(
        {
          accountId,
          url: input['url'] as string,
          pattern: input['eventPattern'] as string | undefined,
          secret: input['secret'] as string | undefined,
          headers: input['headers'] as Record<string, string> | undefined,
          timeoutSeconds: input['timeoutSeconds'] as number | undefined,
          maxAttempts: input['maxAttempts'] as number | undefined,
        },
        { seal: (secret) => ctx.deps.identity.sealSecret(secret) },
      );
    } catch (err) {
      if (err instanceof SubscriptionInputError) throw invalid(MEMBERS[err.field], err.describe(MEMBERS[err.field]));
      throw err;
    }
    if ((await store.list(accountId)).length >= MAX_SUBSCRIPTIONS_PER_ACCOUNT) {
      throw new AwsError(
        'LimitExceededException',
        `The operation did not succeed because it would have exceeded a service limit for your account: a registry may have at most ${MAX_SUBSCRIPTIONS_PER_ACCOUNT} event subscriptions; delete one first`,
      );
    }
    const subscription = { ...made.subscription, accountId };
    await store.create(subscription);
    const [shown] = await described(ctx, [subscription]);
    // As `berth events add`: the secret is shown only when Berth made it, and only now.
    return { subscription: shown, ...(made.isSecretGenerated ? { secret: made.secret } : {}) };
  },

  async BerthDescribeEventSubscriptions(ctx, input) {
    await ctx.authorize('ecr:BerthDescribeEventSubscriptions', '*');
    const after = positionOf(input['nextToken'] as string | undefined);
    const limit = (input['maxResults'] as number | undefined) ?? DEFAULT_PAGE;
    const all = await eventSubscriptions(ctx.deps.registry).list(ctx.principal.accountId);
    const rest = after === undefined ? all : all.filter((s) => s.createdAtMs > after.createdAtMs || (s.createdAtMs === after.createdAtMs && s.id > after.id));
    const page = rest.slice(0, limit);
    const last = page.at(-1);
    return {
      subscriptions: await described(ctx, page),
      ...(rest.length > limit && last ? { nextToken: nextTokenAfter(JSON.stringify([last.createdAtMs, last.id])) } : {}),
    };
  },

  async BerthUpdateEventSubscription(ctx, input) {
    await ctx.authorize('ecr:BerthUpdateEventSubscription', '*');
    const subscription = await subscriptionOf(ctx, input);
    refuseConfigured(subscription);
    const isDisabled = input['disabled'] as boolean;
    if (!(await eventSubscriptions(ctx.deps.registry).setDisabled(ctx.principal.accountId, subscription.id, isDisabled))) throw notFound(ctx, subscription.id);
    const [shown] = await described(ctx, [{ ...subscription, isDisabled }]);
    return { subscription: shown };
  },

  async BerthDeleteEventSubscription(ctx, input) {
    await ctx.authorize('ecr:BerthDeleteEventSubscription', '*');
    const subscription = await subscriptionOf(ctx, input);
    refuseConfigured(subscription);
    const [shown] = await described(ctx, [subscription]);
    if (!(await eventSubscriptions(ctx.deps.registry).delete(ctx.principal.accountId, subscription.id))) throw notFound(ctx, subscription.id);
    return { subscription: shown };
  },

  async BerthListEventDeliveries(ctx, input) {
    await ctx.authorize('ecr:BerthListEventDeliveries', '*');
    const subscription = await subscriptionOf(ctx, input);
    const store = eventSubscriptions(ctx.deps.registry);
    const { cursor } = (await store.progress([subscription])).get(subscription.id)!;
    const records = await recentDeliveries(store.log(subscription), subscription, cursor, (input['maxResults'] as number | undefined) ?? DEFAULT_DELIVERIES);
    return {
      deliveries: records.map(({ event, status, deadLetter }) => ({
        eventId: event.id,
        seq: event.seq,
        detailType: event.detailType,
        time: new Date(event.timeMs),
        ...(event.repository !== null ? { repositoryName: event.repository } : {}),
        status,
        ...(deadLetter ? { attempts: deadLetter.attempts, lastError: reasonOf(deadLetter.lastError) } : {}),
      })),
    };
  },
};
