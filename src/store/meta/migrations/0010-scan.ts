import { sql, type Kysely } from 'kysely';

/**
 * Image scanning (docs/scanning.md, docs/metadata-schema.md):
 *
 * - `registry_scanning`: an account's registry scanning configuration (PutRegistryScanningConfiguration).
 * - `scan_layers`: each layer's analysis, by its uncompressed digest (diffID) and the analysers'
 *   version, so that a layer shared by many images is read once.
 * - `scan_inventories`: each image's merged package inventory, by manifest digest, so that a
 *   database import re-matches images without reading a layer.
 * - `image_scans`: one record per image of a repository: the scan queue (status, lease) and the
 *   last result (findings as JSON). It goes with its manifest (cascade).
 * - `scan_state`: named numbers the scan workers share, such as the database version that
 *   continuously scanned images were last re-matched at.
 */
export async function up(db: Kysely<unknown>, dialect: 'sqlite' | 'postgres'): Promise<void> {
  const text = dialect === 'postgres' ? sql`text collate "C"` : sql`text`;

  await db.schema
    .createTable('registry_scanning')
    .addColumn('account_id', text, (c) => c.primaryKey())
    .addColumn('scan_type', text, (c) => c.notNull())
    .addColumn('rules', text, (c) => c.notNull())
    .addColumn('updated_at', 'bigint', (c) => c.notNull())
    .execute();

  await db.schema
    .createTable('scan_layers')
    .addColumn('diff_id', text, (c) => c.notNull())
    .addColumn('analyser_version', 'integer', (c) => c.notNull())
    .addColumn('facts', text, (c) => c.notNull())
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .addPrimaryKeyConstraint('scan_layers_pk', ['diff_id', 'analyser_version'])
    .execute();

  await db.schema
    .createTable('scan_inventories')
    .addColumn('image_digest', text, (c) => c.notNull())
    .addColumn('analyser_version', 'integer', (c) => c.notNull())
    .addColumn('inventory', text, (c) => c.notNull())
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .addPrimaryKeyConstraint('scan_inventories_pk', ['image_digest', 'analyser_version'])
    .execute();

  await db.schema
    .createTable('image_scans')
    .addColumn('repository_id', 'integer', (c) => c.notNull())
    .addColumn('digest', text, (c) => c.notNull())
    .addColumn('status', text, (c) => c.notNull())
    .addColumn('description', text)
    .addColumn('reason', text, (c) => c.notNull())
    .addColumn('scan_type', text, (c) => c.notNull())
    .addColumn('requested_at', 'bigint', (c) => c.notNull())
    .addColumn('started_at', 'bigint')
    .addColumn('completed_at', 'bigint')
    .addColumn('db_version', 'bigint')
    .addColumn('db_updated_at', 'bigint')
    .addColumn('severity_counts', text)
    .addColumn('findings', text)
    .addColumn('last_manual_at', 'bigint')
    .addColumn('attempts', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('lease_owner', text)
    .addColumn('lease_until', 'bigint')
    .addPrimaryKeyConstraint('image_scans_pk', ['repository_id', 'digest'])
    .addForeignKeyConstraint('image_scans_manifest', ['repository_id', 'digest'], 'manifests', ['repository_id', 'digest'], (c) => c.onDelete('cascade'))
    .execute();
  await db.schema
    .createTable('scan_state')
    .addColumn('name', text, (c) => c.primaryKey())
    .addColumn('value', 'bigint', (c) => c.notNull())
    .execute();

  // Workers find due scans by status and request time; re-matching walks COMPLETE ones by version.
  await db.schema.createIndex('image_scans_queue').on('image_scans').columns(['status', 'requested_at']).execute();
  await db.schema.createIndex('image_scans_version').on('image_scans').columns(['status', 'db_version', 'repository_id', 'digest']).execute();
}
