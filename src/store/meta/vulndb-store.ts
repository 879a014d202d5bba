/**
 * The vulnerability database (docs/scanning.md): OSV-shaped records and the packages they
 * affect, kept per source ("osv:Debian", "debian-tracker"...). An import writes a source's new
 * rows under a fresh generation number, invisible to readers, then makes them the source's
 * active generation in one transaction: a failed or interrupted import leaves the old rows in
 * use, and readers never see half an import. Sources not named by an import stay as they are.
 *
 * Shapes are those of src/scan/types.ts, repeated structurally here so the store imports
 * nothing above store/.
 */

export interface VulnAffectedRow {
  vulnId: string;
  ecosystem: string;
  package: string;
  ranges: Array<{ type: 'ECOSYSTEM' | 'SEMVER' | 'GIT'; events: Array<{ introduced?: string; fixed?: string; last_affected?: string; limit?: string }> }>;
  versions: string[];
  status?: 'fixed' | 'unfixed' | 'will_not_fix' | 'postponed' | 'not_affected';
  distroSeverity?: string;
  source: string;
}

export interface VulnRecordRow {
  id: string;
  aliases: string[];
  related: string[];
  summary?: string;
  details?: string;
  published?: string;
  modified?: string;
  severity: Array<{ type: string; score: string }>;
  references: Array<{ type: string; url: string }>;
  source: string;
}

export interface VulnSourceRow {
  name: string;
  description: string;
  updatedAtMs: number;
  importedAtMs: number;
  recordCount: number;
  sha256: string;
}

export interface VulnDbStore {
  /**
   * Starts writing a new generation; resolves its number (never reused, growing). `sources`
   * names the sources the import expects to write, as far as it knows them before reading its
   * inputs; it is kept with the generation for operators, and activate() decides which sources
   * the generation becomes. Nothing written under it is visible until activate().
   */
  beginImport(sources: string[]): Promise<number>;
  /**
   * Adds records and affected rows to the generation (call in batches of a few thousand).
   * putRecords is idempotent per (source, id): the last put wins. putAffected appends: the
   * caller puts each record's affected rows once. Both reject once the generation is no longer
   * being imported.
   */
  putRecords(generation: number, records: VulnRecordRow[]): Promise<void>;
  putAffected(generation: number, affected: VulnAffectedRow[]): Promise<void>;
  /**
   * In one transaction: makes `generation` the active one of each source in `sources` (their
   * rows of older generations stop being read), records the sources, and bumps the database
   * version. Afterwards, in separate small transactions, deletes the older generations' rows.
   * Resolves the new version. Rejects, changing nothing, when the generation is not being
   * imported (activated already, aborted or swept), or when a source was meanwhile activated by
   * an import that began later (an older import never undoes a newer one). Rows the generation
   * holds for sources not in `sources` are deleted with the old ones.
   */
  activate(generation: number, sources: VulnSourceRow[]): Promise<number>;
  /**
   * Takes a source out of the database, in one transaction that bumps the version (its rows stop
   * being read at once, and are deleted afterwards in small steps). Resolves false, changing
   * nothing, when there is no such source.
   */
  removeSource(name: string): Promise<boolean>;
  /** Deletes what was written under a generation that will not be activated. Idempotent. */
  abortImport(generation: number): Promise<void>;
  /**
   * Deletes what crashed processes left: imports begun before `olderThanMs` and never activated
   * or aborted (their generation then refuses writes and activation), and rows of replaced or
   * aborted generations that a crash kept activate() or abortImport() from deleting. Active
   * rows and younger imports are kept. Resolves the number of rows deleted.
   */
  sweepAbandoned(olderThanMs: number): Promise<number>;
  /**
   * The active sources, by name, and the database version: a number that grows with every
   * activation (0 when nothing was ever imported). Findings record the version they were matched at.
   */
  status(): Promise<{ version: number; sources: VulnSourceRow[] }>;
  /** Affected rows of the active generations for these packages of one ecosystem (exact names). */
  affected(ecosystem: string, packages: string[]): Promise<VulnAffectedRow[]>;
  /** Affected rows of the active generations whose ecosystem starts with `ecosystemPrefix` ("Red Hat:"), for these packages. */
  affectedByPrefix(ecosystemPrefix: string, packages: string[]): Promise<VulnAffectedRow[]>;
  /** Records of the active generations by id; an id in several sources gives a row per source. */
  records(ids: string[]): Promise<VulnRecordRow[]>;
}
