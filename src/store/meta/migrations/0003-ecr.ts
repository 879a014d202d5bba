import type { Kysely } from 'kysely';

/**
 * What the ECR API keeps about repositories and images: tag mutability, scanning and
 * encryption settings, resource tags, the last recorded pull of each image, repository
 * creation templates and account settings. Added columns have defaults, so existing rows read
 * as ECR's defaults (mutable tags, no scan on push, AES256).
 */
export async function up(db: Kysely<unknown>, _dialect: 'sqlite' | 'postgres'): Promise<void> {
  const repoColumns: [string, string, (c: any) => any][] = [
    ['tag_mutability', 'text', (c) => c.notNull().defaultTo('MUTABLE')],
    ['tag_mutability_filters', 'text', (c) => c.notNull().defaultTo('[]')],
    ['scan_on_push', 'integer', (c) => c.notNull().defaultTo(0)],
    ['encryption_type', 'text', (c) => c.notNull().defaultTo('AES256')],
    ['kms_key', 'text', (c) => c],
    ['tags', 'text', (c) => c.notNull().defaultTo('[]')],
    ['lifecycle_policy', 'text', (c) => c],
  ];
  for (const [name, type, build] of repoColumns) {
    await db.schema.alterTable('repositories').addColumn(name, type as 'text', build).execute();
  }
  await db.schema.alterTable('manifests').addColumn('last_pulled_at', 'bigint').execute();

  await db.schema
    .createTable('repository_templates')
    .addColumn('account_id', 'text', (c) => c.notNull())
    .addColumn('prefix', 'text', (c) => c.notNull())
    .addColumn('template', 'text', (c) => c.notNull())
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .addColumn('updated_at', 'bigint', (c) => c.notNull())
    .addPrimaryKeyConstraint('repository_templates_pk', ['account_id', 'prefix'])
    .execute();

  await db.schema
    .createTable('account_settings')
    .addColumn('account_id', 'text', (c) => c.notNull())
    .addColumn('name', 'text', (c) => c.notNull())
    .addColumn('value', 'text', (c) => c.notNull())
    .addPrimaryKeyConstraint('account_settings_pk', ['account_id', 'name'])
    .execute();
}
