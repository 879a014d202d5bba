import { hostname } from 'node:os';
import { randomUUID } from 'node:crypto';
import type { Logger } from '../log/logger.ts';
import type { MetaStore } from '../store/meta/meta-store.ts';

export interface JobSpec {
  /** Unique across the cluster, e.g. `upload-sweep`. */
  name: string;
  intervalMs: number;
  /** Resolves, optionally, an earlier time for the next run than `intervalMs` from now. */
  run(): Promise<void | { nextRunAtMs?: number | undefined }>;
}

export interface SchedulerOptions {
  meta: MetaStore;
  log: Logger;
  /** How often this node looks for due jobs. */
  tickMs?: number;
  /** How long a lease lasts without renewal; a node that dies holding one loses it after this. */
  leaseMs?: number;
  now?: () => number;
}

/**
 * Runs background jobs once across the cluster. Every node ticks; a due job is run by the one
 * node that takes its lease in the metadata store (`jobs` table), which renews the lease while
 * the job runs and, when done, sets the next run. If that node dies, its lease expires and
 * another node runs the job at its next tick. Jobs must therefore be safe to run again after an
 * interrupted run (every current job is idempotent).
 */
export class Scheduler {
  private readonly meta: MetaStore;
  private readonly log: Logger;
  private readonly tickMs: number;
  private readonly leaseMs: number;
  private readonly now: () => number;
  /** Identifies this process's leases: host, pid and a random part (a restarted process is another owner). */
  readonly owner = `${hostname()}:${process.pid}:${randomUUID().slice(0, 8)}`;
  private readonly jobs: JobSpec[] = [];
  private timer: NodeJS.Timeout | undefined;
  private running = new Set<Promise<void>>();
  private ticking = false;
  /** The pass in progress, for stop() to wait on. */
  private current: Promise<void> | undefined;
  /** The time this node last brought each job forward to. */
  private readonly hurried = new Map<string, number>();
  private stopped = false;

  constructor(options: SchedulerOptions) {
    this.meta = options.meta;
    this.log = options.log;
    this.tickMs = options.tickMs ?? 5000;
    this.leaseMs = options.leaseMs ?? 60_000;
    this.now = options.now ?? Date.now;
  }

  async register(job: JobSpec): Promise<void> {
    this.jobs.push(job);
    await this.meta.ensureJob(job.name, this.now());
  }

  start(): void {
    this.timer = setInterval(() => void this.tick(), this.tickMs);
    this.timer.unref();
    void this.tick();
  }

  /** One pass: runs each due job whose lease this node takes. Resolves when the jobs it started end. */
  tick(): Promise<void> {
    if (this.ticking || this.stopped) return this.current ?? Promise.resolve();
    this.current = this.pass();
    return this.current;
  }

  private async pass(): Promise<void> {
    this.ticking = true;
    try {
      for (const job of this.jobs) {
        if (this.stopped) break;
        const now = this.now();
        let acquired = false;
        try {
          acquired = await this.meta.acquireJob(job.name, this.owner, now, now + this.leaseMs);
        } catch (err) {
          this.log.warn({ err, job: job.name }, 'could not check a background job');
        }
        if (!acquired) continue;
        // Stopped while taking the lease: the job is not started (the stores are closing); its
        // lease runs out and another node runs it.
        if (this.stopped) break;
        const run = this.runLeased(job);
        this.running.add(run);
        await run;
        this.running.delete(run);
      }
    } finally {
      this.ticking = false;
    }
  }

  private async runLeased(job: JobSpec): Promise<void> {
    const renew = setInterval(() => {
      this.meta.renewJob(job.name, this.owner, this.now() + this.leaseMs).then(
        (held) => {
          if (!held) this.log.warn({ job: job.name }, 'lost the lease of a running job (another node may run it too)');
        },
        (err: unknown) => this.log.warn({ err, job: job.name }, 'could not renew a job lease'),
      );
    }, Math.max(1000, Math.floor(this.leaseMs / 3)));
    renew.unref();
    let error: string | null = null;
    let asked: number | undefined;
    try {
      asked = (await job.run())?.nextRunAtMs;
    } catch (err) {
      error = (err as Error).message ?? String(err);
      this.log.error({ err, job: job.name }, 'background job failed');
    } finally {
      clearInterval(renew);
    }
    const now = this.now();
    try {
      await this.meta.finishJob(job.name, this.owner, now, Math.min(now + job.intervalMs, asked ?? Infinity), error);
    } catch (err) {
      this.log.warn({ err, job: job.name }, 'could not record the end of a background job; its lease will expire');
    }
  }

  /**
   * Brings a job's next run forward to `atMs` (never back), on whichever node takes it. Calls
   * while an earlier hurried run is still to come are not written: that run looks again.
   */
  hurry(name: string, atMs: number): void {
    const pending = this.hurried.get(name);
    if (pending !== undefined && pending <= atMs && pending > this.now()) return;
    this.hurried.set(name, atMs);
    this.meta.hurryJob(name, atMs).catch((err: unknown) => {
      this.hurried.delete(name);
      this.log.warn({ err, job: name }, 'could not bring a background job forward');
    });
  }

  /** Stops ticking and waits for the pass in progress, and a job it runs, to end. */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearInterval(this.timer);
    await this.current;
    await Promise.all(this.running);
  }
}
