import { imageScanned, arrivedImageDigest, scanFindingsChanged, type ScanChangeDetail } from '../events/envelope.ts';
import type { RegistryScanningRow, ScanOutcome, ScanRecord } from '../store/meta/scan-store.ts';
import type { VulnDbStore } from '../store/meta/vulndb-store.ts';
import type { RegistryContext } from './context.ts';
import { eventContext, recordEvents } from './event-log.ts';

/** What a re-match changed, for its event. */
export interface RematchChange {
  tags: readonly string[];
  added: ScanChangeDetail['added'];
  fixed: ScanChangeDetail['fixed'];
}

/**
 * Image scanning's part of the registry (docs/scanning.md): the registry scanning
 * configuration, the scan records that are also the scan queue, the analysers' caches, and the
 * vulnerability database. A finished scan and its `ECR Image Scan` event commit together.
 */
export class Scans {
  private readonly ctx: RegistryContext;

  constructor(ctx: RegistryContext) {
    this.ctx = ctx;
  }

  /** The vulnerability database's store: imports write it, matching reads it. */
  get vulnDb(): VulnDbStore {
    return this.ctx.meta.vulndb;
  }

  configuration(accountId: string): Promise<RegistryScanningRow | undefined> {
    return this.ctx.meta.scan.registryScanning(accountId);
  }

  putConfiguration(accountId: string, row: RegistryScanningRow): Promise<void> {
    return this.ctx.meta.scan.putRegistryScanning(accountId, row);
  }

  get(repositoryId: number, digest: string): Promise<ScanRecord | undefined> {
    return this.ctx.meta.scan.getScan(repositoryId, digest);
  }

  getMany(repositoryId: number, digests: string[]): Promise<Map<string, ScanRecord>> {
    return this.ctx.meta.scan.getScans(repositoryId, digests);
  }

  request(repositoryId: number, digest: string, request: { reason: string; scanType: 'BASIC' | 'ENHANCED'; isManual?: boolean }): Promise<boolean> {
    return this.ctx.meta.scan.requestScan(repositoryId, digest, { ...request, nowMs: this.ctx.now() });
  }

  claim(owner: string, untilMs: number, limit: number): Promise<ScanRecord[]> {
    return this.ctx.meta.scan.claimScans(owner, this.ctx.now(), untilMs, limit);
  }

  renew(record: ScanRecord, owner: string, untilMs: number): Promise<boolean> {
    return this.ctx.meta.scan.renewScan(record.repositoryId, record.digest, owner, untilMs);
  }

  /**
   * Records the outcome while `owner` still holds the scan, with its `ECR Image Scan` event
   * (none for an unsupported image or an index: its platform images send theirs); resolves false when another node took it.
   */
  async finish(record: ScanRecord, owner: string, outcome: ScanOutcome, tags: readonly string[]): Promise<boolean> {
    return this.ctx.meta.transaction(async (tx) => {
      if (!(await tx.scan.finishScan(record.repositoryId, record.digest, owner, outcome))) return false;
      if (outcome.status === 'COMPLETE' || outcome.status === 'FAILED') {
        const counts = outcome.severityCounts ? (JSON.parse(outcome.severityCounts) as Record<string, number>) : {};
        const event = imageScanned({
          ...eventContext(record.accountId, this.ctx.region, outcome.completedAtMs),
          repositoryName: record.repositoryName,
          status: outcome.status,
          imageDigest: record.digest,
          imageTags: tags,
          severityCounts: counts,
        });
        await recordEvents(tx, outcome.completedAtMs, [event]);
      }
      return true;
    });
  }

  /** COMPLETE scans matched before database version `belowVersion`, in key order. */
  stale(belowVersion: number, after: { repositoryId: number; digest: string } | undefined, limit: number): Promise<ScanRecord[]> {
    return this.ctx.meta.scan.staleScans(belowVersion, after, limit);
  }

  /**
   * Replaces scans' findings after a re-match, in one transaction (one commit for a page of
   * images, not one each); with `change`, also emits the `Berth Image Scan Action` event saying
   * what changed. Resolves how many were replaced (a scan no longer COMPLETE, or already matched
   * at this version, is left).
   */
  async rematch(items: Array<{ record: ScanRecord; outcome: ScanOutcome; change?: RematchChange | undefined }>): Promise<number> {
    if (items.length === 0) return 0;
    return this.ctx.meta.transaction(async (tx) => {
      let replaced = 0;
      const events = [];
      for (const { record, outcome, change } of items) {
        if (!(await tx.scan.rematchScan(record.repositoryId, record.digest, outcome))) continue;
        replaced++;
        if (!change) continue;
        const counts = outcome.severityCounts ? (JSON.parse(outcome.severityCounts) as Record<string, number>) : {};
        const event = scanFindingsChanged({
          ...eventContext(record.accountId, this.ctx.region, outcome.completedAtMs),
          repositoryName: record.repositoryName,
          imageDigest: record.digest,
          imageTags: change.tags,
          severityCounts: counts,
          added: change.added,
          fixed: change.fixed,
        });
        events.push(event);
      }
      // The events last, as the outbox asks (registry/event-log.ts).
      await recordEvents(tx, items[0]!.outcome.completedAtMs, events);
      return replaced;
    });
  }

  /**
   * Whether a PUSH of this image is in the event log past the scan-on-push consumer's cursor
   * (`consumer`): a scan on push that is coming but not queued yet. Reads at most `limit` events.
   */
  async isPushUnread(consumer: string, accountId: string, repository: string, digest: string, limit = 1000): Promise<boolean> {
    // listConsumers, not consumer(): reading must not create the consumer.
    const state = (await this.ctx.meta.events.listConsumers()).find((c) => c.name === consumer);
    const events = await this.ctx.meta.events.read({ after: state?.cursor ?? 0, limit, accountId, repository });
    return events.some((e) => arrivedImageDigest(e) === digest);
  }

  layerFacts(diffId: string, analyserVersion: number): Promise<string | undefined> {
    return this.ctx.meta.scan.layerFacts(diffId, analyserVersion);
  }

  putLayerFacts(diffId: string, analyserVersion: number, facts: string): Promise<void> {
    return this.ctx.meta.scan.putLayerFacts(diffId, analyserVersion, facts, this.ctx.now());
  }

  inventory(imageDigest: string, analyserVersion: number): Promise<string | undefined> {
    return this.ctx.meta.scan.inventory(imageDigest, analyserVersion);
  }

  putInventory(imageDigest: string, analyserVersion: number, inventory: string): Promise<void> {
    return this.ctx.meta.scan.putInventory(imageDigest, analyserVersion, inventory, this.ctx.now());
  }

  pruneCaches(layersBeforeMs: number): Promise<{ inventories: number; layers: number }> {
    return this.ctx.meta.scan.pruneCaches(layersBeforeMs);
  }

  /** The database version continuously scanned images were last re-matched at (0: never). */
  rematchedVersion(): Promise<number> {
    return this.ctx.meta.scan.state('rematched-db-version');
  }

  setRematchedVersion(version: number): Promise<void> {
    return this.ctx.meta.scan.setState('rematched-db-version', version);
  }
}
