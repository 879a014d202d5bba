import type { Logger } from '../log/logger.ts';
import type { AuditEvent, AuditLookup, StoredAuditEvent } from '../store/meta/audit-store.ts';
import type { MetaStore } from '../store/meta/meta-store.ts';

/**
 * The append-only audit trail. Records are queued in memory and written in one transaction
 * every `flushIntervalMs` (200 ms by default) or every 500 records, so that auditing every
 * pull does not cost a synchronous database commit per request; a graceful shutdown writes
 * what is queued. A crash loses at most the last interval's records.
 */
export class AuditLog {
  private readonly meta: MetaStore;
  private readonly log: Logger;
  private queue: AuditEvent[] = [];
  private readonly timer: NodeJS.Timeout;
  private flushing: Promise<void> = Promise.resolve();

  constructor(meta: MetaStore, log: Logger, flushIntervalMs: number) {
    this.meta = meta;
    this.log = log;
    this.timer = setInterval(() => void this.flush(), flushIntervalMs);
    this.timer.unref();
  }

  record(event: AuditEvent): void {
    this.queue.push(event);
    if (this.queue.length >= 500) void this.flush();
  }

  /** Writes what is queued; resolves when it is stored. */
  flush(): Promise<void> {
    this.flushing = this.flushing.then(async () => {
      if (this.queue.length === 0) return;
      const batch = this.queue;
      this.queue = [];
      try {
        // One transaction per batch: one commit (one fsync on SQLite) however many records.
        await this.meta.transaction((tx) => tx.audit.append(batch));
      } catch (err) {
        this.log.error({ err, records: batch.length }, 'could not write audit records');
      }
    });
    return this.flushing;
  }

  /**
   * The stored records matching `query`, newest first (CloudTrail's LookupEvents), after writing
   * what this node has queued: a caller sees its own requests at once. Other nodes' records
   * appear once they write them, within their flush interval.
   */
  async lookup(query: AuditLookup): Promise<StoredAuditEvent[]> {
    await this.flush();
    return this.meta.audit.lookup(query);
  }

  async close(): Promise<void> {
    clearInterval(this.timer);
    await this.flush();
  }
}
