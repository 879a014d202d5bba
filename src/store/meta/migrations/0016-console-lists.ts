import { sql, type Kysely } from 'kysely';

/**
 * The console's lists (BerthListRepositories, BerthListImages; docs/ecr-api.md, docs/metadata-schema.md):
 *
 * - `image_sizes`: each manifest's image size as ECR's DescribeImages reports it
 *   (`imageSizeInBytes`: its layers, or an index's images), which only the manifest's JSON
 *   tells. The registry computes it once, the first time images are sorted by size, and the
 *   row goes with its manifest (cascade). Manifests never change, nor does an index's size:
 *   the manifests it lists stay while it does.
 * - `image_sizes_order`: the size order of a repository's images, ties by digest.
 * - `manifests_pushed`: a repository's images in push order, ties by digest.
 * - `repositories_created`: an account's repositories in creation order, ties by name.
 *
 * The new indexes lead with the column their queries fix (repository, account) and match no
 * existing query better than the index it uses now: those look manifests up by digest (the
 * primary key matches two columns there) and repositories by name (the unique constraint).
 */
export async function up(db: Kysely<unknown>, dialect: 'sqlite' | 'postgres'): Promise<void> {
  const text = dialect === 'postgres' ? sql`text collate "C"` : sql`text`;

  await db.schema
    .createTable('image_sizes')
    .addColumn('repository_id', 'integer', (c) => c.notNull())
    .addColumn('digest', text, (c) => c.notNull())
    .addColumn('size_bytes', 'bigint', (c) => c.notNull())
    .addPrimaryKeyConstraint('image_sizes_pk', ['repository_id', 'digest'])
    .addForeignKeyConstraint('image_sizes_manifest', ['repository_id', 'digest'], 'manifests', ['repository_id', 'digest'], (c) => c.onDelete('cascade'))
    .execute();
  await db.schema.createIndex('image_sizes_order').on('image_sizes').columns(['repository_id', 'size_bytes', 'digest']).execute();
  await db.schema.createIndex('manifests_pushed').on('manifests').columns(['repository_id', 'created_at', 'digest']).execute();
  await db.schema.createIndex('repositories_created').on('repositories').columns(['account_id', 'created_at', 'name']).execute();
}
