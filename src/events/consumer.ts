import type { Logger } from '../log/logger.ts';
import type { EventStore, StoredEvent } from '../store/meta/event-store.ts';

/** The least time between two passes of a PollLoop that was woken during a pass. */
const MIN_WAKE_SPACING_MS = 50;

/** Events a consumer reads at a time. */
const BATCH = 200;

/**
 * Reads the log after the consumer's cursor, in batches, while `owner` holds the consumer's lease
 * (taken or renewed before each batch, for `leaseMs`), handing each batch to `handle` and moving
 * the cursor past it once `handle` resolves. So a batch is handled by one node at a time, and a
 * node that dies before moving the cursor leaves the batch to be handled again (`handle` must be
 * idempotent). An idle call only reads: when nothing is past the cursor, no lease is taken (a
 * write, and a commit). Resolves how many events were handed over.
 */
export async function consumeEvents(
  events: EventStore,
  consumer: { name: string; owner: string; leaseMs: number; now: () => number },
  handle: (batch: StoredEvent[]) => Promise<void>,
): Promise<number> {
  const { name, owner, leaseMs, now } = consumer;
  if ((await events.lastSeq()) <= (await events.consumer(name)).cursor) return 0;
  let handled = 0;
  for (;;) {
    const at = now();
    if (!(await events.acquireConsumer(name, owner, at, at + leaseMs))) break;
    const { cursor } = await events.consumer(name);
    const batch = await events.read({ after: cursor, limit: BATCH });
    if (batch.length === 0) break;
    await handle(batch);
    handled += batch.length;
    if (!(await events.advanceConsumer(name, owner, batch.at(-1)!.seq))) break;
    if (batch.length < BATCH) break;
  }
  return handled;
}

/**
 * A background worker's timer: runs its steps in turn every `intervalMs` (and at once on wake()),
 * never two passes at a time; a step that throws is logged and the next steps still run.
 */
export class PollLoop {
  private readonly intervalMs: number;
  private readonly steps: ReadonlyArray<readonly [string, () => Promise<unknown>]>;
  private readonly log: Logger;
  private readonly what: string;
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;
  private ticking: Promise<void> | undefined;
  /** A wake() came during a pass: the next pass starts at once. */
  private again = false;

  constructor(options: { intervalMs: number; steps: ReadonlyArray<readonly [string, () => Promise<unknown>]>; log: Logger; what: string }) {
    this.intervalMs = options.intervalMs;
    this.steps = options.steps;
    this.log = options.log;
    this.what = options.what;
  }

  start(): void {
    this.schedule(0);
  }

  /** Runs a pass now rather than at the next interval; during a pass, right after it. */
  wake(): void {
    if (this.stopped) return;
    if (this.ticking) {
      this.again = true;
      return;
    }
    if (this.timer) clearTimeout(this.timer);
    this.schedule(0);
  }

  /** Stops the timer and waits for a pass in progress. */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    await this.ticking;
  }

  private schedule(delayMs: number): void {
    if (this.stopped) return;
    this.timer = setTimeout(() => {
      this.ticking = this.tick().finally(() => {
        this.ticking = undefined;
        const again = this.again;
        this.again = false;
        // Woken meanwhile: another pass soon, but not back to back under a stream of wakes.
        this.schedule(again ? Math.min(MIN_WAKE_SPACING_MS, this.intervalMs) : this.intervalMs);
      });
    }, delayMs);
    this.timer.unref();
  }

  private async tick(): Promise<void> {
    for (const [name, step] of this.steps) {
      if (this.stopped) return;
      try {
        await step();
      } catch (err) {
        this.log.warn({ err, step: name }, `a ${this.what} step failed; it is retried at the next poll`);
      }
    }
  }
}
