import type { Logger } from '../log/logger.ts';
import type { MetaStore } from '../store/meta/meta-store.ts';
import type { Digest } from '../digest/digest.ts';

export interface PullRecorderOptions {
  meta: MetaStore;
  log: Logger;
  /** How long a pull waits in memory before it is written; pulls of one image in that time are written once. */
  flushIntervalMs: number;
  now?: () => number;
}

/**
 * ECR's lastRecordedPullTime without a write per pull: pulls are kept in memory, one entry per
 * image (the latest time wins), and written in one transaction a few seconds after the first of
 * them, so a busy image costs one UPDATE per interval however often it is pulled. ECR itself
 * records the time only approximately (at most about once a day). Pulls still in memory are
 * lost if the process dies; close() writes them on a clean shutdown.
 */
export class PullRecorder {
  private readonly options: PullRecorderOptions;
  private readonly now: () => number;
  /** `<repositoryId>@<digest>` -> the latest pull time in epoch ms. */
  private pending = new Map<string, { repositoryId: number; digest: Digest; atMs: number }>();
  private timer: NodeJS.Timeout | undefined;
  private flushing: Promise<void> = Promise.resolve();

  constructor(options: PullRecorderOptions) {
    this.options = options;
    this.now = options.now ?? Date.now;
  }

  record(repositoryId: number, digest: Digest): void {
    const key = `${repositoryId}@${digest}`;
    const atMs = this.now();
    const entry = this.pending.get(key);
    if (entry) entry.atMs = Math.max(entry.atMs, atMs);
    else this.pending.set(key, { repositoryId, digest, atMs });
    if (!this.timer) {
      this.timer = setTimeout(() => void this.flush(), this.options.flushIntervalMs);
      this.timer.unref();
    }
  }

  /** The pull time not yet written for this image, so readers on this node see it at once. */
  pendingPull(repositoryId: number, digest: Digest): number | undefined {
    return this.pending.get(`${repositoryId}@${digest}`)?.atMs;
  }

  /** Writes what is pending now. A failed write is logged and dropped: a pull time is not worth a retry loop. */
  flush(): Promise<void> {
    clearTimeout(this.timer);
    this.timer = undefined;
    const batch = [...this.pending.values()];
    if (batch.length === 0) return this.flushing;
    this.pending = new Map();
    this.flushing = this.flushing.then(async () => {
      try {
        await this.options.meta.recordPulls(batch);
        this.options.log.debug({ task: 'pull-times', count: batch.length }, 'pull times recorded');
      } catch (err) {
        this.options.log.warn({ err, task: 'pull-times', count: batch.length }, 'recording pull times failed; they are dropped');
      }
    });
    return this.flushing;
  }

  async close(): Promise<void> {
    await this.flush();
  }
}
