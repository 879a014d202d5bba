import { webhookConsumer, type DeadLetter, type EventStore, type StoredEvent, type WebhookSubscription } from '../store/meta/event-store.ts';
import type { Registry } from './registry.ts';

/**
 * An account's webhook subscriptions (docs/webhooks.md), as the Berth*EventSubscription
 * operations see them: only those made for the account (`accountId` equal to it). Those for every
 * account, which only the operator's `berth events add` makes, are nobody's here: another
 * account's or an operator-wide id is answered as missing. Who may do what is IAM's, in control/.
 */
export class EventSubscriptions {
  private readonly events: EventStore;

  constructor(events: EventStore) {
    this.events = events;
  }

  /** The account's subscriptions, oldest first (then by id). */
  async list(accountId: string): Promise<WebhookSubscription[]> {
    return (await this.events.listWebhooks()).filter((s) => s.accountId === accountId);
  }

  /** Undefined when there is no such subscription of the account. */
  async get(accountId: string, id: string): Promise<WebhookSubscription | undefined> {
    const found = await this.events.getWebhook(id);
    return found?.accountId === accountId ? found : undefined;
  }

  /** Stores a new subscription, delivering the events written from now on (EventStore.createWebhook). */
  async create(subscription: WebhookSubscription & { accountId: string }): Promise<void> {
    await this.events.createWebhook(subscription);
  }

  /** Resolves false, changing nothing, when there is no such subscription of the account. */
  async setDisabled(accountId: string, id: string, isDisabled: boolean): Promise<boolean> {
    if (!(await this.get(accountId, id))) return false;
    return this.events.setWebhookDisabled(id, isDisabled);
  }

  /** Deletes it with its dead letters and cursor; false when there is no such subscription of the account. */
  async delete(accountId: string, id: string): Promise<boolean> {
    if (!(await this.get(accountId, id))) return false;
    return this.events.deleteWebhook(id);
  }

  /**
   * Each subscription's cursor (the last sequence number it has handled) and how many dead
   * letters it has, read without creating anything: a subscription removed meanwhile has cursor 0.
   */
  async progress(subscriptions: readonly WebhookSubscription[]): Promise<Map<string, { cursor: number; deadLetterCount: number }>> {
    const cursors = new Map((await this.events.listConsumers()).map((c) => [c.name, c.cursor]));
    const out = new Map<string, { cursor: number; deadLetterCount: number }>();
    for (const s of subscriptions) out.set(s.id, { cursor: cursors.get(webhookConsumer(s.id)) ?? 0, deadLetterCount: await this.events.countDeadLetters(s.id) });
    return out;
  }

  /** The reads of the log that a subscription's backlog and recent deliveries are worked out from (events/subscriptions.ts). */
  log(subscription: WebhookSubscription & { accountId: string }): {
    readAfter(after: number, limit: number): Promise<StoredEvent[]>;
    readBefore(before: number, limit: number): Promise<StoredEvent[]>;
    deadLetters(afterSeq: number, limit: number): Promise<DeadLetter[]>;
  } {
    const accountId = subscription.accountId;
    return {
      readAfter: (after, limit) => this.events.read({ after, limit, accountId }),
      readBefore: (before, limit) => this.events.readBackward({ before, limit, accountId }),
      deadLetters: (afterSeq, limit) => this.events.listDeadLetters(subscription.id, { afterSeq, limit }),
    };
  }
}

/** The registry's account-scoped view of the webhook subscriptions. */
export function eventSubscriptions(registry: Registry): EventSubscriptions {
  return new EventSubscriptions(registry.meta.events);
}
