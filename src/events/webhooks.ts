/**
 * Webhook delivery (docs/adr/0012-event-outbox.md, docs/webhooks.md): every node runs a
 * WebhookDispatcher, and each subscription is the log's consumer `webhook:<id>`, handled by its
 * own loop on whichever node holds that consumer's lease. A loop reads the events past its
 * cursor, POSTs each one its pattern matches, retrying with exponential backoff and full jitter,
 * and after `maxAttempts` failures records a dead letter and moves on. The cursor moves past an
 * event only once it is delivered or dead-lettered, so a node killed mid-delivery is replaced by
 * one that sends that event again: delivery is at least once, and receivers deduplicate by the
 * envelope's `id`. One loop per subscription means a slow or dead endpoint holds back only its
 * own subscription, and nothing in the request path waits on any of this.
 */
import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import type { Secrets } from '../iam/secrets.ts';
import type { Logger } from '../log/logger.ts';
import { webhookConsumer, type EventStore, type StoredEvent, type WebhookSubscription } from '../store/meta/event-store.ts';
import type { MetaStore } from '../store/meta/meta-store.ts';
import { compilePattern, type EventPattern } from './pattern.ts';
import { retryDelayMs, signDelivery, type RetryOptions } from './signing.ts';

/** Attempts at one event, the first included, unless the subscription says otherwise. */
export const DEFAULT_MAX_ATTEMPTS = 10;
export const DEFAULT_TIMEOUT_MS = 10_000;
/** How long a node holds a subscription without renewing; a node that dies is replaced after this. */
export const DEFAULT_LEASE_MS = 30_000;
/** Events read per query. */
const BATCH_SIZE = 100;
/** How often, at most, a subscription's progress is written while it works through a batch. */
const RECORD_INTERVAL_MS = 1000;
/** A receiver's answer is read only this far, for the dead letter's message. */
const ERROR_BODY_BYTES = 200;

export interface DeliveryRequest {
  url: string;
  /** The subscription's own headers; the content type and the signature headers win over them. */
  headers: Record<string, string>;
  timeoutMs: number;
  /** The secret, plain. */
  secret: string;
  eventId: string;
  /** The exact JSON text sent and signed. */
  body: string;
  /** Aborts the request, e.g. when the node stops. */
  signal?: AbortSignal | undefined;
  /** The signing time; defaults to now. */
  nowMs?: number;
}

export type DeliveryResult = { ok: true; status: number } | { ok: false; status?: number; error: string };

/**
 * One signed POST. Resolves ok for a 2xx answer. Never throws for what the receiver or the
 * network does: a refusal, a timeout, a redirect (not followed, since a receiver that moved
 * should be re-subscribed at its new address, not chased) are failures with a reason.
 */
export async function sendDelivery(r: DeliveryRequest): Promise<DeliveryResult> {
  const headers = new Headers(r.headers);
  headers.set('content-type', 'application/json');
  headers.set('user-agent', 'Berth-Webhooks/1');
  for (const [name, value] of Object.entries(signDelivery({ secret: r.secret, eventId: r.eventId, timeMs: r.nowMs ?? Date.now(), body: r.body }).headers)) headers.set(name, value);
  const timeout = AbortSignal.timeout(r.timeoutMs);
  try {
    const res = await fetch(r.url, { method: 'POST', headers, body: r.body, redirect: 'manual', signal: r.signal ? AbortSignal.any([r.signal, timeout]) : timeout });
    if (res.status >= 200 && res.status < 300) {
      await res.body?.cancel();
      return { ok: true, status: res.status };
    }
    const text = await readSome(res);
    return { ok: false, status: res.status, error: `HTTP ${res.status}${text ? `: ${text}` : ''}` };
  } catch (err) {
    if (timeout.aborted) return { ok: false, error: `no answer within ${r.timeoutMs} ms` };
    if (r.signal?.aborted) return { ok: false, error: 'cancelled' };
    const cause = (err as { cause?: { code?: string; message?: string } }).cause;
    return { ok: false, error: cause?.code ?? cause?.message ?? (err as Error).message };
  }
}

/** The start of a refusal's body, on one line: receivers often say there what was wrong. */
async function readSome(res: Response): Promise<string> {
  try {
    const reader = res.body?.getReader();
    if (!reader) return '';
    const { value } = await reader.read();
    await reader.cancel();
    return Buffer.from(value ?? new Uint8Array()).subarray(0, ERROR_BODY_BYTES).toString('utf8').replace(/\s+/g, ' ').trim();
  } catch {
    return '';
  }
}

/** A subscription's delivery of one event, as the dispatcher and `berth events` make it. */
export function deliveryOf(subscription: WebhookSubscription, secret: string, event: { id: string; body: unknown }, signal?: AbortSignal): Promise<DeliveryResult> {
  return sendDelivery({ url: subscription.url, headers: subscription.headers, timeoutMs: subscription.timeoutMs, secret, eventId: event.id, body: JSON.stringify(event.body), signal });
}

export interface WebhookDispatcherOptions {
  meta: MetaStore;
  secrets: Secrets;
  log: Logger;
  /** How often an idle subscription looks for new events, and the node for new subscriptions. */
  pollIntervalMs: number;
  leaseMs?: number | undefined;
  /** The backoff between attempts (retryDelayMs). */
  retry?: Pick<RetryOptions, 'baseMs' | 'maxMs'> | undefined;
}

type DeadLetter = Parameters<EventStore['putDeadLetter']>[0];
/** Delivered, stopped (the node stops or lost the lease), or given up: the dead letter to record. */
type Outcome = 'delivered' | 'stopped' | DeadLetter;

/**
 * Runs every enabled subscription this node can take. Each gets a loop that tries for the
 * subscription's lease; the one node that holds it delivers, renewing the lease while it works.
 */
export class WebhookDispatcher {
  /** This process's leases: host, pid and a random part, as the scheduler's. */
  readonly owner = `${hostname()}:${process.pid}:${randomUUID().slice(0, 8)}`;
  private readonly meta: MetaStore;
  private readonly secrets: Secrets;
  private readonly log: Logger;
  private readonly pollIntervalMs: number;
  private readonly leaseMs: number;
  private readonly retry: Pick<RetryOptions, 'baseMs' | 'maxMs'>;
  private readonly stopping = new AbortController();
  private readonly loops = new Map<string, { abort: AbortController; done: Promise<void> }>();
  private supervisor: Promise<void> | undefined;

  constructor(options: WebhookDispatcherOptions) {
    this.meta = options.meta;
    this.secrets = options.secrets;
    this.log = options.log;
    this.pollIntervalMs = options.pollIntervalMs;
    this.leaseMs = options.leaseMs ?? DEFAULT_LEASE_MS;
    this.retry = options.retry ?? {};
  }

  start(): void {
    this.supervisor ??= this.supervise();
  }

  /** Stops every loop (a delivery in flight is cancelled and will be sent again) and gives up the leases. */
  async stop(): Promise<void> {
    this.stopping.abort();
    await this.supervisor;
    await Promise.all([...this.loops.values()].map((l) => l.done));
  }

  /** Starts a loop for each enabled subscription and stops those of subscriptions removed or disabled. */
  private async supervise(): Promise<void> {
    const signal = this.stopping.signal;
    while (!signal.aborted) {
      try {
        const enabled = new Set((await this.meta.events.listWebhooks()).filter((s) => !s.isDisabled).map((s) => s.id));
        for (const id of enabled) {
          if (this.loops.has(id) || signal.aborted) continue;
          const abort = new AbortController();
          const done = this.run(id, AbortSignal.any([signal, abort.signal])).finally(() => this.loops.delete(id));
          this.loops.set(id, { abort, done });
        }
        for (const [id, loop] of this.loops) if (!enabled.has(id)) loop.abort.abort();
      } catch (err) {
        this.log.warn({ err }, 'could not list webhook subscriptions');
      }
      await sleep(this.pollIntervalMs, signal);
    }
  }

  /** One subscription's loop on this node. */
  private async run(id: string, signal: AbortSignal): Promise<void> {
    const name = webhookConsumer(id);
    while (!signal.aborted) {
      let held = false;
      try {
        const now = Date.now();
        held = await this.meta.events.acquireConsumer(name, this.owner, now, now + this.leaseMs);
      } catch (err) {
        this.log.warn({ err, subscription: id }, 'could not take a webhook subscription’s lease');
      }
      // Another node has it: look again well before its lease could run out.
      if (!held) {
        await sleep(Math.max(this.pollIntervalMs, Math.floor(this.leaseMs / 3)), signal);
        continue;
      }
      const lease = this.keepLease(name, signal);
      try {
        if ((await this.deliverWhileHeld(id, name, lease.signal)) === 'gone') return;
      } catch (err) {
        if (!lease.signal.aborted) this.log.warn({ err, subscription: id }, 'webhook delivery stopped on an error; it resumes from its cursor');
        // Not a tight loop against a failing database.
        await sleep(Math.max(this.pollIntervalMs, 5000), signal);
      } finally {
        lease.stop();
        await this.meta.events.releaseConsumer(name, this.owner).catch((err: unknown) => this.log.warn({ err, subscription: id }, 'could not release a webhook subscription’s lease; it expires'));
      }
    }
  }

  /**
   * Renews the lease every third of its length while the loop holds it. The signal aborts when
   * the loop must stop: the node stops, or the lease was lost (another node took it over after
   * it expired, or it could not be renewed before it ran out).
   */
  private keepLease(name: string, signal: AbortSignal): { signal: AbortSignal; stop(): void } {
    const lost = new AbortController();
    let until = Date.now() + this.leaseMs;
    const timer = setInterval(() => {
      const now = Date.now();
      this.meta.events.acquireConsumer(name, this.owner, now, now + this.leaseMs).then(
        (held) => {
          if (held) until = now + this.leaseMs;
          else lost.abort();
        },
        (err: unknown) => {
          this.log.warn({ err, consumer: name }, 'could not renew a webhook subscription’s lease');
          if (Date.now() >= until) lost.abort();
        },
      );
    }, Math.max(100, Math.floor(this.leaseMs / 3)));
    timer.unref();
    return { signal: AbortSignal.any([signal, lost.signal]), stop: () => clearInterval(timer) };
  }

  /** Delivers until the signal aborts; resolves 'gone' when the subscription was removed or disabled. */
  private async deliverWhileHeld(id: string, name: string, signal: AbortSignal): Promise<'gone' | 'stopped'> {
    let cursor = (await this.meta.events.consumer(name)).cursor;
    let compiled: { text: string | null; pattern: EventPattern | undefined } | undefined;
    while (!signal.aborted) {
      const subscription = await this.meta.events.getWebhook(id);
      if (!subscription) {
        // Removed: its consumer went with it, unless this loop took the lease (creating the
        // consumer again) just after. Delete it, or it would hold back pruning for ever.
        await this.meta.events.deleteConsumer(name);
        return 'gone';
      }
      if (subscription.isDisabled) return 'gone';
      // Read before the events: every event up to it is visible, so when the read comes back
      // short the cursor may move to it, past other accounts' events the read filtered out.
      const top = await this.meta.events.lastSeq();
      if (top <= cursor) {
        await sleep(this.pollIntervalMs, signal);
        continue;
      }
      const batch = await this.meta.events.read({ after: cursor, limit: BATCH_SIZE, accountId: subscription.accountId ?? undefined });
      if (compiled?.text !== subscription.pattern) compiled = { text: subscription.pattern, pattern: subscription.pattern === null ? undefined : compilePattern(subscription.pattern) };
      const secret = this.secrets.unseal(subscription.secretSealed);
      // The cursor (and any dead letters) are written at the end of a batch, or once a second
      // while a long one goes on, not per event: every commit holds an embedded store's event
      // loop, and pushes wait behind it. A node that dies is replaced by one that sends again
      // what was delivered since the last write, which at least once allows; receivers
      // deduplicate by id.
      let deadLetters: DeadLetter[] = [];
      let done = cursor;
      let stopped = false;
      let recordedAtMs = Date.now();
      for (const event of batch) {
        if (!compiled.pattern || compiled.pattern.matches(event.body)) {
          const outcome = await this.deliverOne(subscription, secret, event, signal);
          if (outcome === 'stopped') {
            stopped = true;
            break;
          }
          if (outcome !== 'delivered') deadLetters.push(outcome);
        }
        done = event.seq;
        if (Date.now() - recordedAtMs >= RECORD_INTERVAL_MS) {
          if (!(await this.record(name, done, deadLetters))) return 'stopped';
          cursor = done;
          deadLetters = [];
          recordedAtMs = Date.now();
        }
      }
      if (!stopped && batch.length < BATCH_SIZE) done = Math.max(done, top);
      if (done > cursor || deadLetters.length > 0) {
        if (!(await this.record(name, done, deadLetters))) return 'stopped';
        cursor = done;
      }
      if (stopped) return 'stopped';
    }
    return 'stopped';
  }

  /** Writes the batch's dead letters and moves the cursor, in one transaction; false when the lease was lost. */
  private async record(name: string, cursor: number, deadLetters: DeadLetter[]): Promise<boolean> {
    return this.meta.transaction(async (tx) => {
      for (const letter of deadLetters) await tx.events.putDeadLetter(letter);
      return tx.events.advanceConsumer(name, this.owner, cursor);
    });
  }

  /** Attempts the event until the receiver takes it or the attempts run out (then its dead letter, to record). */
  private async deliverOne(subscription: WebhookSubscription, secret: string, event: StoredEvent, signal: AbortSignal): Promise<Outcome> {
    let lastError = '';
    for (let attempt = 1; attempt <= subscription.maxAttempts; attempt++) {
      const result = await deliveryOf(subscription, secret, event, signal);
      if (result.ok) return 'delivered';
      // A cancelled request is this node stopping, not the receiver failing.
      if (signal.aborted) return 'stopped';
      lastError = result.error;
      this.log.warn(
        { subscription: subscription.id, eventId: event.id, seq: event.seq, attempt, maxAttempts: subscription.maxAttempts, status: result.status, error: result.error },
        'webhook delivery failed',
      );
      if (attempt < subscription.maxAttempts) {
        await sleep(retryDelayMs(attempt, this.retry), signal);
        if (signal.aborted) return 'stopped';
      }
    }
    this.log.error({ subscription: subscription.id, eventId: event.id, seq: event.seq, attempts: subscription.maxAttempts, error: lastError }, 'webhook delivery given up: dead letter recorded (berth events deliveries)');
    return { subscriptionId: subscription.id, seq: event.seq, eventId: event.id, attempts: subscription.maxAttempts, lastError, failedAtMs: Date.now(), body: event.body };
  }
}

/**
 * The `events-prune` job: deletes events older than `beforeMs` that every consumer has passed.
 * First it forgets the consumers of removed subscriptions that nobody holds: a dispatcher that
 * renewed its lease just as the subscription was removed creates the consumer again, at a cursor
 * that would keep every later event from being pruned.
 */
export async function pruneEvents(meta: MetaStore, beforeMs: number, nowMs = Date.now()): Promise<{ pruned: number; orphans: number }> {
  // Consumers before subscriptions: a subscription created between the two reads is then in the
  // second, so its new consumer is never taken for an orphan.
  const consumers = await meta.events.listConsumers();
  const subscriptions = new Set((await meta.events.listWebhooks()).map((s) => webhookConsumer(s.id)));
  let orphans = 0;
  for (const c of consumers) {
    if (!c.name.startsWith(webhookConsumer('')) || subscriptions.has(c.name)) continue;
    if (c.leaseUntilMs !== null && c.leaseUntilMs >= nowMs) continue;
    await meta.events.deleteConsumer(c.name);
    orphans++;
  }
  return { pruned: await meta.events.prune(beforeMs), orphans };
}

/** Waits `ms`, or less if the signal aborts first; never rejects. */
function sleep(ms: number, signal: AbortSignal): Promise<void> {
  if (signal.aborted) return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal.addEventListener('abort', done, { once: true });
  });
}
