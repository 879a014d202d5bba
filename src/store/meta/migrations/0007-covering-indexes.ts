import { sql, type Kysely } from 'kysely';

/**
 * Indexes that serve their queries on their own, found by bench/scale.ts (docs/benchmarks.md,
 * "Scale: 100,000 manifests"). SQLite has no statistics unless ANALYZE runs, which Berth never
 * asks for, and without them its planner takes a covering index that matches fewer columns over
 * one that matches more but needs the table: "which manifests of this repository list this
 * digest" scanned every reference of the repository through the primary key, so that a
 * garbage collection over a repository of n images took n^2 steps. Each index below holds every
 * column its queries read, so that it is both the narrowest and a covering choice:
 *
 * - `manifest_references_target` on (repository_id, reference_digest) becomes
 *   (repository_id, reference_digest, manifest_digest): parents of a manifest, "is this digest
 *   used in the repository", garbage collection's candidate test. Not `kind`: with it, the index
 *   would also cover "what does this manifest reference" (reference_digest, kind by
 *   repository_id and manifest_digest), and win that query over the primary key, which matches
 *   both columns but lacks `kind`, by the same mistake the other way round.
 * - `manifests_subject` on (repository_id, subject_digest) becomes
 *   (repository_id, subject_digest, digest): the referrers of a manifest, in digest order.
 * - `tags_manifest` on (repository_id, manifest_digest) becomes
 *   (repository_id, manifest_digest, name): the tags of given manifests (DescribeImages), each
 *   manifest with its tags (ListImages). Without it both walked every tag of the repository
 *   through the primary key for each page, ListImages for each manifest.
 * - `blobs_deleting`, partial on `deleting_at is not null`, is keyed by `digest` rather than
 *   `deleting_at`: the rows a collection left marked are read in digest order, which the old key
 *   could not give, so the planner walked every blob in digest order instead.
 *
 * Each keeps its name. Migrations run in one transaction on both databases, so no query sees
 * the table without its index; on PostgreSQL the rebuild holds writes to the table meanwhile
 * (seconds for a million references).
 */
export async function up(db: Kysely<unknown>, _dialect: 'sqlite' | 'postgres'): Promise<void> {
  await db.schema.dropIndex('manifest_references_target').execute();
  await db.schema.createIndex('manifest_references_target').on('manifest_references').columns(['repository_id', 'reference_digest', 'manifest_digest']).execute();
  await db.schema.dropIndex('manifests_subject').execute();
  await db.schema.createIndex('manifests_subject').on('manifests').columns(['repository_id', 'subject_digest', 'digest']).execute();
  await db.schema.dropIndex('tags_manifest').execute();
  await db.schema.createIndex('tags_manifest').on('tags').columns(['repository_id', 'manifest_digest', 'name']).execute();
  await db.schema.dropIndex('blobs_deleting').execute();
  await db.schema.createIndex('blobs_deleting').on('blobs').column('digest').where(sql.ref('deleting_at'), 'is not', null).execute();
}
