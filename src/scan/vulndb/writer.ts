import type { VulnDbStore } from '../../store/meta/vulndb-store.ts';
import type { VulnAffected, VulnRecord } from '../types.ts';

/** Rows buffered before they are written: a few thousand per put, as VulnDbStore asks. */
const BATCH_ROWS = 2000;

export interface SourceCounts {
  records: number;
  affected: number;
  /** The newest `modified` of the source's records (epoch ms); 0 when none gave one. */
  newestModifiedMs: number;
}

/**
 * Buffers an import's rows and writes them to one generation in batches, counting per source.
 * A record already added to its source is not added again (an OSV directory may hold a record
 * both alone and in a per-module file); the caller decides what that means for its affected rows.
 */
export class GenerationWriter {
  private readonly store: VulnDbStore;
  readonly generation: number;
  private records: VulnRecord[] = [];
  private affected: VulnAffected[] = [];
  private readonly seen = new Set<string>();
  readonly counts = new Map<string, SourceCounts>();

  constructor(store: VulnDbStore, generation: number) {
    this.store = store;
    this.generation = generation;
  }

  private countsOf(source: string): SourceCounts {
    let c = this.counts.get(source);
    if (!c) this.counts.set(source, (c = { records: 0, affected: 0, newestModifiedMs: 0 }));
    return c;
  }

  /** Adds a record; resolves false, adding nothing, when its source already has one of its id. */
  async addRecord(record: VulnRecord): Promise<boolean> {
    const key = `${record.source}\u0000${record.id}`;
    if (this.seen.has(key)) return false;
    this.seen.add(key);
    const c = this.countsOf(record.source);
    c.records++;
    const modified = record.modified === undefined ? NaN : Date.parse(record.modified);
    if (Number.isFinite(modified) && modified > c.newestModifiedMs) c.newestModifiedMs = modified;
    this.records.push(record);
    await this.flushIfFull();
    return true;
  }

  async addAffected(rows: VulnAffected[]): Promise<void> {
    for (const row of rows) {
      this.countsOf(row.source).affected++;
      this.affected.push(row);
    }
    await this.flushIfFull();
  }

  private async flushIfFull(): Promise<void> {
    if (this.records.length + this.affected.length >= BATCH_ROWS) await this.flush();
  }

  async flush(): Promise<void> {
    const records = this.records;
    const affected = this.affected;
    this.records = [];
    this.affected = [];
    await this.store.putRecords(this.generation, records);
    await this.store.putAffected(this.generation, affected);
  }
}
