import { readdir, rm } from 'node:fs/promises';
import { hostname, tmpdir } from 'node:os';
import path from 'node:path';
import { randomUUID } from 'node:crypto';
import type { Digest } from '../digest/digest.ts';
import type { Logger } from '../log/logger.ts';
import type { Registry } from '../registry/registry.ts';
import { consumeEvents, PollLoop } from '../events/consumer.ts';
import { arrivedImageDigest } from '../events/envelope.ts';
import type { EventStore } from '../store/meta/event-store.ts';
import type { ScanOutcome, ScanRecord } from '../store/meta/scan-store.ts';
import type { RematchChange } from '../registry/scans.ts';
import type { VulnDbStore } from '../store/meta/vulndb-store.ts';
import { ScanInputError } from './analyse/analyser.ts';
import { ANALYSER_VERSION, type ScanLimits } from './analyse/index.ts';
import { Matcher, matchInventory } from './match/matcher.ts';
import { isContinuouslyScanned, repositoryScanning, storedScanning, type ScanningConfiguration } from './policy.ts';
import { diffFindings, parseStoredFindings, severityCounts, storeFindings, type StoredFindings } from './results.ts';
import { imageInventory, scanTarget } from './scanner.ts';
import type { Finding, Inventory } from './types.ts';

/** The event-log consumer that turns pushes into scans (docs/adr/0012-event-outbox.md). */
export const SCAN_ON_PUSH_CONSUMER = 'scan-on-push';
/** The background job (src/workers/scheduler.ts) that re-matches continuously scanned images after an import. */
export const REMATCH_JOB = 'scan-rematch';

export interface ScanSettings {
  enabled: boolean;
  concurrency: number;
  pollIntervalMs: number;
  leaseSeconds: number;
  maxAttempts: number;
  maxDatabaseAgeDays: number;
  limits: ScanLimits;
}

export interface ScanWorkerOptions {
  registry: Registry;
  events: EventStore;
  log: Logger;
  settings: ScanSettings;
  now?: () => number;
  /**
   * Called when a poll finds a database version not yet re-matched: the composition root has
   * the scheduler look for the scan-rematch job now rather than at its next tick.
   */
  onDatabaseChanged?: () => void;
}

const DAY_MS = 86_400_000;

/** When the database's most recently updated source was updated (findings' vulnerabilitySourceUpdatedAt); null when it is empty. */
function newestUpdateMs(sources: ReadonlyArray<{ updatedAtMs: number }>): number | null {
  return sources.length > 0 ? Math.max(...sources.map((s) => s.updatedAtMs)) : null;
}

/**
 * Why a scan cannot be matched now, or undefined when it can: no database imported, or one
 * older than `scan.maxDatabaseAgeDays` (issue 13: never COMPLETE with no findings because the
 * database was missing). The database is as old as its least recently updated source.
 */
async function databaseProblem(db: VulnDbStore, maxAgeDays: number, nowMs: number): Promise<string | undefined> {
  const status = await db.status();
  if (status.version === 0 || status.sources.length === 0) {
    return 'No vulnerability database has been imported: an operator imports one with `berth vulndb import` (docs/scanning.md).';
  }
  const oldest = status.sources.reduce((a, b) => (b.updatedAtMs < a.updatedAtMs ? b : a));
  if (maxAgeDays > 0 && nowMs - oldest.updatedAtMs > maxAgeDays * DAY_MS) {
    const days = Math.floor((nowMs - oldest.updatedAtMs) / DAY_MS);
    return `The vulnerability database is too old: its source ${oldest.name} was last updated ${days} days ago (${new Date(oldest.updatedAtMs).toISOString().slice(0, 10)}), more than scan.maxDatabaseAgeDays (${maxAgeDays}). Import a newer one with \`berth vulndb import\`.`;
  }
  return undefined;
}

/**
 * Scanning's background work on one node (docs/scanning.md). Three loops share one timer:
 *
 * - pushes: the `scan-on-push` consumer of the event log reads `ECR Image Action` PUSH events
 *   and queues a scan for each image its repository's configuration scans on push. The cursor
 *   moves only after the scans are queued, so a node dying in between queues them again
 *   (queueing is idempotent) and none is lost;
 * - scans: queued scans are claimed under a lease and run, at most `concurrency` at once; a
 *   scan whose node dies is claimed again once its lease runs out;
 * - re-matching (`rematch`, run as the cluster-wide job `scan-rematch` under the scheduler's
 *   lease, not by this timer): when the database version grows (an import), the stored
 *   inventories of continuously scanned images are matched again, without reading a layer, and
 *   a change event is emitted for each image whose findings changed.
 */
export class ScanWorker {
  private readonly registry: Registry;
  private readonly events: EventStore;
  private readonly log: Logger;
  private readonly settings: ScanSettings;
  private readonly now: () => number;
  private readonly onDatabaseChanged: (() => void) | undefined;
  readonly owner = `${hostname()}:${process.pid}:${randomUUID().slice(0, 8)}`;
  private readonly loop: PollLoop;
  private readonly running = new Set<Promise<void>>();
  private readonly aborts = new Set<AbortController>();
  /** Where scans spool files: the system's temporary directory. */
  private readonly tempRoot = tmpdir();

  constructor(options: ScanWorkerOptions) {
    this.registry = options.registry;
    this.events = options.events;
    this.log = options.log.child({ worker: 'scan' });
    this.settings = options.settings;
    this.now = options.now ?? Date.now;
    this.onDatabaseChanged = options.onDatabaseChanged;
    this.loop = new PollLoop({
      intervalMs: this.settings.pollIntervalMs,
      log: this.log,
      what: 'scanning',
      steps: [
        ['pushes', () => this.queuePushes()],
        ['scans', () => this.startScans()],
        ['database', () => this.checkDatabase()],
      ],
    });
  }

  start(): void {
    if (!this.settings.enabled) return;
    void sweepTempDirs(this.tempRoot).catch((err: unknown) => this.log.warn({ err }, 'could not remove the temporary directories of stopped scans'));
    this.loop.start();
  }

  /**
   * Looks for work now rather than at the next poll: a hint from this node's API that a scan
   * was just requested (the request itself is durable; without the hint it is found at the
   * next poll all the same).
   */
  wake(): void {
    if (this.settings.enabled) this.loop.wake();
  }

  async stop(): Promise<void> {
    const stopping = this.loop.stop();
    for (const a of this.aborts) a.abort(new Error('the server is stopping'));
    await stopping;
    await Promise.allSettled([...this.running]);
    // Another node (or this one restarted) reads the log at once rather than after the lease.
    await this.events.releaseConsumer(SCAN_ON_PUSH_CONSUMER, this.owner).catch(() => undefined);
  }

  /** Reads pushes from the event log and queues the scans they call for. */
  async queuePushes(): Promise<number> {
    let queued = 0;
    const configs = new Map<string, ScanningConfiguration>();
    await consumeEvents(this.events, { name: SCAN_ON_PUSH_CONSUMER, owner: this.owner, leaseMs: this.settings.leaseSeconds * 1000, now: this.now }, async (batch) => {
      for (const event of batch) {
        const digest = arrivedImageDigest(event);
        if (digest === undefined || event.repository === null) continue;
        const config = await this.configurationOf(configs, event.accountId);
        const repository = await this.registry.findRepository({ account: event.accountId, name: event.repository });
        if (!repository) continue;
        const settings = await this.registry.repositorySettings(repository);
        const applied = repositoryScanning(config, repository.name, settings.scanOnPush);
        if (!applied.scanOnPush) continue;
        if (await this.registry.scans.request(repository.id, digest, { reason: 'push', scanType: applied.scanType })) queued++;
      }
    });
    if (queued > 0) this.log.info({ queued }, 'scans queued for pushes');
    return queued;
  }

  /** An account's scanning configuration, read once per pass (`cache`). */
  private async configurationOf(cache: Map<string, ScanningConfiguration>, accountId: string): Promise<ScanningConfiguration> {
    let config = cache.get(accountId);
    if (!config) {
      config = storedScanning(await this.registry.scans.configuration(accountId));
      cache.set(accountId, config);
    }
    return config;
  }

  /** Claims queued scans up to the free concurrency and runs them in the background. */
  async startScans(): Promise<number> {
    const free = this.settings.concurrency - this.running.size;
    if (free <= 0) return 0;
    const leaseMs = this.settings.leaseSeconds * 1000;
    const claimed = await this.registry.scans.claim(this.owner, this.now() + leaseMs, free);
    for (const record of claimed) {
      const run = this.runScan(record).finally(() => this.running.delete(run));
      this.running.add(run);
    }
    return claimed.length;
  }

  private async runScan(record: ScanRecord): Promise<void> {
    const leaseMs = this.settings.leaseSeconds * 1000;
    const abort = new AbortController();
    this.aborts.add(abort);
    const renew = setInterval(() => {
      this.registry.scans.renew(record, this.owner, this.now() + leaseMs).then(
        (held) => {
          if (!held) abort.abort(new Error('another node took the scan over'));
        },
        (err: unknown) => this.log.warn({ err }, 'could not renew a scan lease'),
      );
    }, Math.max(1000, leaseMs / 3));
    renew.unref();
    const log = this.log.child({ repository: record.repositoryName, digest: record.digest });
    const started = this.now();
    try {
      if (record.attempts > this.settings.maxAttempts) {
        // Every earlier attempt ended with its node gone (the lease ran out): an image that kills
        // the node scanning it must not take the cluster down one node after another.
        const outcome = failed(`The scan was started ${record.attempts - 1} times and each time its node stopped before it finished (scan.maxAttempts is ${this.settings.maxAttempts}); StartImageScan tries again.`, this.now());
        await this.registry.scans.finish(record, this.owner, outcome, []);
        log.warn({ attempts: record.attempts - 1 }, 'an image scan was given up after its nodes stopped mid-scan');
        return;
      }
      const outcome = await this.scan(record, abort.signal);
      if (abort.signal.aborted) return;
      const tags = (await this.registry.getImages(record.repositoryId, [record.digest as Digest])).get(record.digest as Digest)?.tags ?? [];
      const written = await this.registry.scans.finish(record, this.owner, outcome, tags);
      log.info({ status: outcome.status, durationMs: this.now() - started, written }, 'image scanned');
    } catch (err) {
      if (abort.signal.aborted) return;
      // Unexpected (a store or blob read failing): the lease runs out and the scan is claimed
      // again, up to scan.maxAttempts, then it is FAILED saying why.
      log.warn({ err, attempt: record.attempts }, 'an image scan failed unexpectedly');
      if (record.attempts >= this.settings.maxAttempts) {
        const message = err instanceof Error ? err.message : String(err);
        await this.registry.scans
          .finish(record, this.owner, failed(`The scan failed ${record.attempts} times; the last error: ${message}`, this.now()), [])
          .catch((e: unknown) => log.warn({ err: e }, 'could not record a failed scan'));
      }
    } finally {
      clearInterval(renew);
      this.aborts.delete(abort);
    }
  }

  /** Scans one image (or queues an index's platform images) and says what to record. */
  private async scan(record: ScanRecord, signal: AbortSignal): Promise<ScanOutcome> {
    const repo = { account: record.accountId, name: record.repositoryName };
    const manifest = await this.registry.getManifest(repo, record.digest);
    const target = scanTarget(manifest.payload, manifest.mediaType);
    if (target.kind === 'unsupported') {
      return unmatched('UNSUPPORTED_IMAGE', `UnsupportedImageError: ${target.reason}`, this.now());
    }
    if (target.kind === 'index') {
      // An index is scanned per platform image: each gets its own scan record; the index's
      // status and findings are read from theirs (src/control/ecr/scanning.ts).
      // A scan on push leaves alone a platform image scanned already (its own push, moments
      // earlier, scanned it); a manual scan of the index scans them all again.
      const rescan = record.reason === 'manual';
      for (const child of target.children) {
        if (!(await this.registry.hasManifest(record.repositoryId, child.digest))) continue;
        if (!rescan && (await this.registry.scans.get(record.repositoryId, child.digest)) !== undefined) continue;
        await this.registry.scans.request(record.repositoryId, child.digest, { reason: 'index', scanType: record.scanType });
      }
      return { ...unmatched('INDEX', 'The index is scanned per platform image.', this.now()), findings: JSON.stringify({ children: target.children }) };
    }
    const problem = await databaseProblem(this.registry.scans.vulnDb, this.settings.maxDatabaseAgeDays, this.now());
    if (problem) return failed(problem, this.now());
    try {
      const result = await imageInventory({ registry: this.registry, repo, digest: record.digest as Digest, manifest: target.manifest, limits: this.settings.limits, log: this.log, signal, tempRoot: this.tempRoot });
      if (result.inventory.os === undefined && result.inventory.packages.length === 0) {
        // Nothing to match (busybox, scratch with a static binary): ECR's answer for such images.
        const notes = result.inventory.notes.length > 0 ? ` ${result.inventory.notes.slice(0, 5).join('; ')}.` : '';
        return unmatched('UNSUPPORTED_IMAGE', `UnsupportedImageError: The operating system and/or package manager are not supported.${notes}`, this.now());
      }
      // The version matched at is read now, not before the layers were read: an import that
      // came meanwhile is then in these findings, or the re-match after it sees this version.
      const matchedAt = await this.registry.scans.vulnDb.status();
      const matched = await matchInventory(result.inventory, this.registry.scans.vulnDb);
      const previous = parseStoredFindings((await this.registry.scans.get(record.repositoryId, record.digest))?.findings ?? null);
      const stored = storeFindings(matched.findings, previous, { layerDigests: result.layerDigests, platform: result.platform, notes: [...result.inventory.notes, ...matched.notes], nowMs: this.now() });
      const notes = stored.notes.length > 0 ? ` Notes: ${stored.notes.slice(0, 5).join('; ')}${stored.notes.length > 5 ? `; and ${stored.notes.length - 5} more` : ''}.` : '';
      return complete(stored, `The scan was completed successfully.${notes}`, matchedAt, this.now());
    } catch (err) {
      if (err instanceof ScanInputError) return failed(err.message, this.now());
      throw err;
    }
  }

  /** Two reads: whether an import has come that continuously scanned images are not matched at yet. */
  private async checkDatabase(): Promise<void> {
    if (!this.onDatabaseChanged) return;
    const { version } = await this.registry.scans.vulnDb.status();
    if (version > (await this.registry.scans.rematchedVersion())) this.onDatabaseChanged();
  }

  /**
   * After an import, re-matches the stored inventory of every COMPLETE scan of a continuously
   * scanned repository (ENHANCED, CONTINUOUS_SCAN), one node at a time.
   */
  async rematch(): Promise<number> {
    const db = this.registry.scans.vulnDb;
    const status = await db.status();
    if (status.version <= (await this.registry.scans.rematchedVersion())) return 0;
    const configs = new Map<string, ScanningConfiguration>();
    let after: { repositoryId: number; digest: string } | undefined;
    let rematched = 0;
    let changed = 0;
    // One matcher for the pass: packages shared by many images are looked up and judged once.
    const matcher = new Matcher(db);
    for (;;) {
      const page = await this.registry.scans.stale(status.version, after, 200);
      if (page.length === 0) break;
      const batch: Array<{ record: ScanRecord; outcome: ScanOutcome; change?: RematchChange | undefined }> = [];
      for (const record of page) {
        after = { repositoryId: record.repositoryId, digest: record.digest };
        const config = await this.configurationOf(configs, record.accountId);
        if (!isContinuouslyScanned(config, record.repositoryName)) continue;
        const inventoryText = await this.registry.scans.inventory(record.digest, ANALYSER_VERSION);
        if (inventoryText === undefined) {
          // Made by an older analyser: scan it again, reading its layers.
          await this.registry.scans.request(record.repositoryId, record.digest, { reason: 'continuous', scanType: record.scanType });
          continue;
        }
        const previous = parseStoredFindings(record.findings);
        const matched = await matcher.match(JSON.parse(inventoryText) as Inventory);
        const nowMs = this.now();
        const stored = storeFindings(matched.findings, previous, {
          layerDigests: previous?.layerDigests ?? [],
          platform: previous?.platform ?? {},
          notes: previous?.notes ?? [],
          nowMs,
        });
        const diff = diffFindings(previous?.findings ?? [], stored.findings);
        const outcome = complete(stored, record.description ?? 'The scan was completed successfully.', status, nowMs);
        const summary = (f: Finding) => ({ name: f.name, 'package-name': f.package.name, 'package-version': f.package.version });
        const hasChange = diff.added.length > 0 || diff.fixed.length > 0;
        if (hasChange) changed++;
        const tags = hasChange ? ((await this.registry.getImages(record.repositoryId, [record.digest as Digest])).get(record.digest as Digest)?.tags ?? []) : [];
        batch.push({ record, outcome, change: hasChange ? { tags, added: diff.added.map(summary), fixed: diff.fixed.map(summary) } : undefined });
      }
      rematched += await this.registry.scans.rematch(batch);
    }
    await this.registry.scans.setRematchedVersion(status.version);
    this.log.info({ version: status.version, rematched, changed }, 'continuously scanned images re-matched against the new vulnerability database');
    return rematched;
  }
}

/**
 * Removes the temporary directories of scans whose process is gone (killed mid-scan: a scan
 * that ends removes its own). Their names carry the process id (src/scan/scanner.ts).
 */
async function sweepTempDirs(root: string): Promise<void> {
  for (const name of await readdir(root)) {
    const m = /^berth-scan-(\d+)-/.exec(name);
    if (!m || isAlive(Number(m[1]))) continue;
    await rm(path.join(root, name), { recursive: true, force: true });
  }
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** The outcome of a scan that matched nothing: failed, unsupported, or an index's. */
function unmatched(status: 'FAILED' | 'UNSUPPORTED_IMAGE' | 'INDEX', description: string, nowMs: number): ScanOutcome {
  return { status, description, completedAtMs: nowMs, dbVersion: null, dbUpdatedAtMs: null, severityCounts: null, findings: null };
}

function failed(description: string, nowMs: number): ScanOutcome {
  return unmatched('FAILED', description, nowMs);
}

/** A complete scan's (or re-match's) outcome: its findings, matched at the database `matchedAt`. */
function complete(stored: StoredFindings, description: string, matchedAt: { version: number; sources: ReadonlyArray<{ updatedAtMs: number }> }, nowMs: number): ScanOutcome {
  return {
    status: 'COMPLETE',
    description,
    completedAtMs: nowMs,
    dbVersion: matchedAt.version,
    dbUpdatedAtMs: newestUpdateMs(matchedAt.sources),
    severityCounts: JSON.stringify(severityCounts(stored.findings)),
    findings: JSON.stringify(stored),
  };
}
