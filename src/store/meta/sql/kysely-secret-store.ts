import type { Selectable } from 'kysely';
import {
  AWSCURRENT,
  AWSPREVIOUS,
  MAX_SECRET_VERSIONS,
  type NewSecretVersion,
  type PutVersionOutcome,
  type SecretRecord,
  type SecretStore,
  type SecretTag,
  type SecretVersion,
} from '../secret-store.ts';
import { byteSorted, IN_CHUNK, KyselyPart, withLock, type Db } from './locks.ts';
import type { Schema } from './schema.ts';

/** Above every character a secret name may hold: `name < prefix + TOP` bounds a prefix range. */
const TOP = '\u{10FFFF}';

const n = (v: number | string | null): number | null => (v === null ? null : Number(v));

function toRecord(r: Selectable<Schema['secrets']>): SecretRecord {
  return {
    id: r.id,
    accountId: r.account_id,
    name: r.name,
    arn: r.arn,
    description: r.description,
    kmsKeyId: r.kms_key_id,
    tags: JSON.parse(r.tags) as SecretTag[],
    createdAtMs: Number(r.created_at),
    lastChangedAtMs: Number(r.last_changed_at),
    lastAccessedAtMs: n(r.last_accessed_at),
    deletedAtMs: n(r.deleted_at),
    purgeAtMs: n(r.purge_at),
  };
}

function toVersion(r: Selectable<Schema['secret_versions']>, stages: string[]): SecretVersion {
  return {
    secretId: r.secret_id,
    versionId: r.version_id,
    sealed: r.sealed,
    isBinary: Number(r.is_binary) === 1,
    stages: byteSorted(stages),
    createdAtMs: Number(r.created_at),
  };
}

/** Secrets Manager's secrets over Kysely; the same SQL on SQLite and PostgreSQL. */
export class KyselySecretStore extends KyselyPart implements SecretStore {
  async getSecret(accountId: string, name: string): Promise<SecretRecord | undefined> {
    const r = await this.db.selectFrom('secrets').selectAll().where('account_id', '=', accountId).where('name', '=', name).executeTakeFirst();
    return r && toRecord(r);
  }

  async getSecretByArn(accountId: string, arn: string): Promise<SecretRecord | undefined> {
    const r = await this.db.selectFrom('secrets').selectAll().where('arn', '=', arn).where('account_id', '=', accountId).executeTakeFirst();
    return r && toRecord(r);
  }

  async listSecrets(accountId: string, options: { limit: number; afterName?: string | undefined; namePrefix?: string | undefined; includePlannedDeletion: boolean }): Promise<SecretRecord[]> {
    let q = this.db.selectFrom('secrets').selectAll().where('account_id', '=', accountId);
    if (options.afterName !== undefined) q = q.where('name', '>', options.afterName);
    if (options.namePrefix) q = q.where('name', '>=', options.namePrefix).where('name', '<', options.namePrefix + TOP);
    if (!options.includePlannedDeletion) q = q.where('purge_at', 'is', null);
    const rows = await q.orderBy('name').limit(options.limit).execute();
    return rows.map(toRecord);
  }

  async createSecret(secret: SecretRecord, firstVersion?: NewSecretVersion): Promise<{ created: true } | { created: false; existing: SecretRecord }> {
    return this.inTransaction(async (db) => {
      const inserted = await db
        .insertInto('secrets')
        .values({
          id: secret.id,
          account_id: secret.accountId,
          name: secret.name,
          arn: secret.arn,
          description: secret.description,
          kms_key_id: secret.kmsKeyId,
          tags: JSON.stringify(secret.tags),
          created_at: secret.createdAtMs,
          last_changed_at: secret.lastChangedAtMs,
          last_accessed_at: secret.lastAccessedAtMs,
          deleted_at: secret.deletedAtMs,
          purge_at: secret.purgeAtMs,
        })
        .onConflict((oc) => oc.columns(['account_id', 'name']).doNothing())
        .executeTakeFirst();
      if (Number(inserted.numInsertedOrUpdatedRows ?? 0n) === 0) {
        const existing = await db.selectFrom('secrets').selectAll().where('account_id', '=', secret.accountId).where('name', '=', secret.name).executeTakeFirstOrThrow();
        return { created: false, existing: toRecord(existing) };
      }
      if (firstVersion) {
        await this.insertVersion(db, secret.id, firstVersion);
        const stages = [...new Set(firstVersion.stages)];
        if (stages.length > 0) {
          await db.insertInto('secret_version_stages').values(stages.map((stage) => ({ secret_id: secret.id, stage, version_id: firstVersion.versionId }))).execute();
        }
      }
      return { created: true };
    });
  }

  private async insertVersion(db: Db, secretId: string, version: NewSecretVersion): Promise<void> {
    await db
      .insertInto('secret_versions')
      .values({ secret_id: secretId, version_id: version.versionId, sealed: version.sealed, is_binary: version.isBinary ? 1 : 0, created_at: version.createdAtMs })
      .execute();
  }

  async updateSecret(id: string, patch: { description?: string; kmsKeyId?: string }, nowMs: number): Promise<'updated' | 'missing' | 'deleted'> {
    const res = await this.db
      .updateTable('secrets')
      .set({
        ...(patch.description !== undefined ? { description: patch.description } : {}),
        ...(patch.kmsKeyId !== undefined ? { kms_key_id: patch.kmsKeyId } : {}),
        last_changed_at: nowMs,
      })
      .where('id', '=', id)
      .where('purge_at', 'is', null)
      .executeTakeFirst();
    if (Number(res.numUpdatedRows) > 0) return 'updated';
    return (await this.exists(this.db, id)) ? 'deleted' : 'missing';
  }

  private async exists(db: Db, id: string): Promise<boolean> {
    return (await db.selectFrom('secrets').select('id').where('id', '=', id).executeTakeFirst()) !== undefined;
  }

  private async stagesOf(db: Db, secretId: string, versionId: string): Promise<string[]> {
    const rows = await db.selectFrom('secret_version_stages').select('stage').where('secret_id', '=', secretId).where('version_id', '=', versionId).execute();
    return rows.map((r) => r.stage);
  }

  async putVersion(secretId: string, version: NewSecretVersion, nowMs: number): Promise<PutVersionOutcome> {
    return this.inTransaction(async (db) => {
      // The secret's row is the lock that serializes label moves (SQLite: the write lock).
      const secret = await withLock(db.selectFrom('secrets').select(['id', 'purge_at']).where('id', '=', secretId), this.dialect, 'update').executeTakeFirst();
      if (!secret) return { status: 'missing' };
      if (secret.purge_at !== null) return { status: 'deleted' };
      const existing = await db.selectFrom('secret_versions').selectAll().where('secret_id', '=', secretId).where('version_id', '=', version.versionId).executeTakeFirst();
      if (existing) return { status: 'exists', version: toVersion(existing, await this.stagesOf(db, secretId, version.versionId)) };

      await this.insertVersion(db, secretId, version);
      const moving = new Map<string, string>(); // label -> version that takes it
      for (const stage of version.stages) moving.set(stage, version.versionId);
      if (moving.has(AWSCURRENT) && !moving.has(AWSPREVIOUS)) {
        const current = await db.selectFrom('secret_version_stages').select('version_id').where('secret_id', '=', secretId).where('stage', '=', AWSCURRENT).executeTakeFirst();
        if (current) moving.set(AWSPREVIOUS, current.version_id);
      }
      if (moving.size > 0) {
        await db.deleteFrom('secret_version_stages').where('secret_id', '=', secretId).where('stage', 'in', [...moving.keys()]).execute();
        await db
          .insertInto('secret_version_stages')
          .values([...moving].map(([stage, versionId]) => ({ secret_id: secretId, stage, version_id: versionId })))
          .execute();
      }
      await db.updateTable('secrets').set({ last_changed_at: nowMs }).where('id', '=', secretId).execute();
      await this.prune(db, secretId);
      return { status: 'created', version: toVersion({ secret_id: secretId, version_id: version.versionId, sealed: version.sealed, is_binary: version.isBinary ? 1 : 0, created_at: version.createdAtMs }, [...new Set(version.stages)]) };
    });
  }

  /** Removes the oldest label-less versions beyond MAX_SECRET_VERSIONS (Secrets Manager's quota). */
  private async prune(db: Db, secretId: string): Promise<void> {
    const { count } = await db.selectFrom('secret_versions').select((eb) => eb.fn.countAll<number | string>().as('count')).where('secret_id', '=', secretId).executeTakeFirstOrThrow();
    const excess = Number(count) - MAX_SECRET_VERSIONS;
    if (excess <= 0) return;
    const old = await db
      .selectFrom('secret_versions as v')
      .select('v.version_id')
      .where('v.secret_id', '=', secretId)
      .where(({ not, exists, selectFrom }) =>
        not(exists(selectFrom('secret_version_stages as s').select('s.stage').whereRef('s.secret_id', '=', 'v.secret_id').whereRef('s.version_id', '=', 'v.version_id'))),
      )
      .orderBy('v.created_at')
      .orderBy('v.version_id')
      .limit(excess)
      .execute();
    if (old.length > 0) {
      await db.deleteFrom('secret_versions').where('secret_id', '=', secretId).where('version_id', 'in', old.map((r) => r.version_id)).execute();
    }
  }

  async getVersion(secretId: string, which: { versionId?: string | undefined; stage?: string | undefined }): Promise<SecretVersion | undefined> {
    let versionId = which.versionId;
    if (versionId === undefined) {
      if (which.stage === undefined) return undefined;
      const labelled = await this.db.selectFrom('secret_version_stages').select('version_id').where('secret_id', '=', secretId).where('stage', '=', which.stage).executeTakeFirst();
      if (!labelled) return undefined;
      versionId = labelled.version_id;
    }
    const row = await this.db.selectFrom('secret_versions').selectAll().where('secret_id', '=', secretId).where('version_id', '=', versionId).executeTakeFirst();
    if (!row) return undefined;
    const version = toVersion(row, await this.stagesOf(this.db, secretId, versionId));
    if (which.stage !== undefined && !version.stages.includes(which.stage)) return undefined;
    return version;
  }

  async versionStages(secretIds: readonly string[]): Promise<Map<string, Record<string, string[]>>> {
    const out = new Map<string, Record<string, string[]>>();
    const ids = [...new Set(secretIds)];
    for (const id of ids) out.set(id, {});
    for (let i = 0; i < ids.length; i += IN_CHUNK) {
      const rows = await this.db
        .selectFrom('secret_version_stages')
        .select(['secret_id', 'version_id', 'stage'])
        .where('secret_id', 'in', ids.slice(i, i + IN_CHUNK))
        .orderBy('secret_id')
        .orderBy('version_id')
        .orderBy('stage')
        .execute();
      for (const r of rows) {
        const versions = out.get(r.secret_id)!;
        (versions[r.version_id] ??= []).push(r.stage);
      }
    }
    return out;
  }

  async touchAccessed(id: string, atMs: number): Promise<void> {
    await this.db
      .updateTable('secrets')
      .set({ last_accessed_at: atMs })
      .where('id', '=', id)
      .where((eb) => eb.or([eb('last_accessed_at', 'is', null), eb('last_accessed_at', '<', atMs)]))
      .execute();
  }

  async scheduleDeletion(id: string, deletedAtMs: number, purgeAtMs: number): Promise<'scheduled' | 'missing' | 'deleted'> {
    const res = await this.db
      .updateTable('secrets')
      .set({ deleted_at: deletedAtMs, purge_at: purgeAtMs, last_changed_at: deletedAtMs })
      .where('id', '=', id)
      .where('purge_at', 'is', null)
      .executeTakeFirst();
    if (Number(res.numUpdatedRows) > 0) return 'scheduled';
    return (await this.exists(this.db, id)) ? 'deleted' : 'missing';
  }

  async restore(id: string, nowMs: number): Promise<boolean> {
    const res = await this.db
      .updateTable('secrets')
      .set({ deleted_at: null, purge_at: null, last_changed_at: nowMs })
      .where('id', '=', id)
      .where('purge_at', '>', nowMs)
      .executeTakeFirst();
    if (Number(res.numUpdatedRows) > 0) return true;
    const row = await this.db.selectFrom('secrets').select('purge_at').where('id', '=', id).executeTakeFirst();
    return row !== undefined && row.purge_at === null;
  }

  async deleteSecret(id: string): Promise<boolean> {
    const res = await this.db.deleteFrom('secrets').where('id', '=', id).executeTakeFirst();
    return Number(res.numDeletedRows) > 0;
  }

  async purgeDue(accountId: string, nowMs: number): Promise<number> {
    const res = await this.db.deleteFrom('secrets').where('account_id', '=', accountId).where('purge_at', '<=', nowMs).executeTakeFirst();
    return Number(res.numDeletedRows);
  }
}
