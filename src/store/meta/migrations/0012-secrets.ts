import { sql, type Kysely } from 'kysely';

/**
 * Secrets Manager's secrets (docs/secrets-manager.md), e.g. the upstream credentials of ECR
 * pull-through cache rules:
 *
 * - `secrets`: one row per secret. `id` is Berth's own key (random), so that the versions of a
 *   secret deleted and created again under the same name never mix; a name is unique in its
 *   account, an ARN everywhere. `deleted_at`/`purge_at` are set while a deletion is scheduled.
 * - `secret_versions`: the values, sealed with the instance key (never in plain text);
 *   `is_binary` tells SecretBinary (sealed as base64) from SecretString.
 * - `secret_version_stages`: the staging labels (AWSCURRENT, AWSPREVIOUS, ...). The primary key
 *   makes a label name at most one version of its secret.
 */
export async function up(db: Kysely<unknown>, dialect: 'sqlite' | 'postgres'): Promise<void> {
  const text = dialect === 'postgres' ? sql`text collate "C"` : sql`text`;

  await db.schema
    .createTable('secrets')
    .addColumn('id', text, (c) => c.primaryKey())
    .addColumn('account_id', text, (c) => c.notNull())
    .addColumn('name', text, (c) => c.notNull())
    .addColumn('arn', text, (c) => c.notNull().unique())
    .addColumn('description', text)
    .addColumn('kms_key_id', text)
    .addColumn('tags', text, (c) => c.notNull().defaultTo('[]'))
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .addColumn('last_changed_at', 'bigint', (c) => c.notNull())
    .addColumn('last_accessed_at', 'bigint')
    .addColumn('deleted_at', 'bigint')
    .addColumn('purge_at', 'bigint')
    .addUniqueConstraint('secrets_account_name', ['account_id', 'name'])
    .execute();

  await db.schema
    .createTable('secret_versions')
    .addColumn('secret_id', text, (c) => c.notNull().references('secrets.id').onDelete('cascade'))
    .addColumn('version_id', text, (c) => c.notNull())
    .addColumn('sealed', text, (c) => c.notNull())
    .addColumn('is_binary', 'integer', (c) => c.notNull())
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .addPrimaryKeyConstraint('secret_versions_pk', ['secret_id', 'version_id'])
    .execute();

  await db.schema
    .createTable('secret_version_stages')
    .addColumn('secret_id', text, (c) => c.notNull())
    .addColumn('stage', text, (c) => c.notNull())
    .addColumn('version_id', text, (c) => c.notNull())
    .addPrimaryKeyConstraint('secret_version_stages_pk', ['secret_id', 'stage'])
    .addForeignKeyConstraint('secret_version_stages_version', ['secret_id', 'version_id'], 'secret_versions', ['secret_id', 'version_id'], (c) => c.onDelete('cascade'))
    .execute();

  // Scheduled deletions come due by time.
  await db.schema.createIndex('secrets_purge').on('secrets').columns(['purge_at']).execute();
}
