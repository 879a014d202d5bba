import { sql, type Kysely } from 'kysely';

/**
 * Console passwords and sessions (docs/security.md#console-passwords, docs/metadata-schema.md):
 *
 * - `login_profiles`: a user's console password (IAM's login profile), as an scrypt hash with
 *   its salt, never the password; the hashes of earlier passwords for PasswordReusePrevention.
 *   Goes with its user.
 * - `password_policies`: an account's password policy (UpdateAccountPasswordPolicy); no row
 *   means IAM's default rules.
 * - `console_sessions`: signed-in web console sessions, keyed by the SHA-256 of the id the
 *   browser holds, with the session's temporary credentials; swept by `expires_at`.
 */
export async function up(db: Kysely<unknown>, dialect: 'sqlite' | 'postgres'): Promise<void> {
  const text = dialect === 'postgres' ? sql`text collate "C"` : sql`text`;

  await db.schema
    .createTable('login_profiles')
    .addColumn('account_id', text, (c) => c.notNull())
    .addColumn('user_key', text, (c) => c.notNull())
    .addColumn('password_hash', text, (c) => c.notNull())
    .addColumn('is_reset_required', 'integer', (c) => c.notNull())
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .addColumn('password_changed_at', 'bigint', (c) => c.notNull())
    .addColumn('last_used_at', 'bigint')
    .addColumn('previous_hashes', text, (c) => c.notNull().defaultTo('[]'))
    .addPrimaryKeyConstraint('login_profiles_pk', ['account_id', 'user_key'])
    .addForeignKeyConstraint('login_profiles_user', ['account_id', 'user_key'], 'iam_users', ['account_id', 'name_key'], (c) => c.onDelete('cascade'))
    .execute();

  await db.schema
    .createTable('password_policies')
    .addColumn('account_id', text, (c) => c.primaryKey())
    .addColumn('minimum_password_length', 'integer', (c) => c.notNull())
    .addColumn('require_symbols', 'integer', (c) => c.notNull())
    .addColumn('require_numbers', 'integer', (c) => c.notNull())
    .addColumn('require_uppercase_characters', 'integer', (c) => c.notNull())
    .addColumn('require_lowercase_characters', 'integer', (c) => c.notNull())
    .addColumn('allow_users_to_change_password', 'integer', (c) => c.notNull())
    .addColumn('max_password_age', 'integer')
    .addColumn('password_reuse_prevention', 'integer')
    .addColumn('hard_expiry', 'integer', (c) => c.notNull())
    .addColumn('updated_at', 'bigint', (c) => c.notNull())
    .execute();

  await db.schema
    .createTable('console_sessions')
    .addColumn('id_hash', text, (c) => c.primaryKey())
    .addColumn('account_id', text, (c) => c.notNull())
    .addColumn('user_name', text, (c) => c.notNull())
    .addColumn('user_id', text, (c) => c.notNull())
    .addColumn('access_key_id', text, (c) => c.notNull())
    .addColumn('session_token', text, (c) => c.notNull())
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .addColumn('expires_at', 'bigint', (c) => c.notNull())
    .addColumn('must_change_password', 'integer', (c) => c.notNull().defaultTo(0))
    .execute();
  await db.schema.createIndex('console_sessions_expires').on('console_sessions').column('expires_at').execute();
}
