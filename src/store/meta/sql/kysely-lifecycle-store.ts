import type { LifecycleImageRecord, LifecyclePolicyRecord, LifecyclePreview, LifecyclePreviewStatus, LifecycleRepository, LifecycleStore } from '../lifecycle-store.ts';
import type { Db } from './locks.ts';
import { pacer } from './pacing.ts';

/** Manifests per window: each brings its tags and about ten references per manifest. */
const WINDOW = 200;

function group<T>(rows: T[], key: (r: T) => string, value: (r: T) => string): Map<string, string[]> {
  const map = new Map<string, string[]>();
  for (const r of rows) {
    const list = map.get(key(r));
    if (list) list.push(value(r));
    else map.set(key(r), [value(r)]);
  }
  return map;
}

/** Lifecycle policies and previews over Kysely; the same SQL on SQLite and PostgreSQL. */
export class KyselyLifecycleStore implements LifecycleStore {
  private readonly db: Db;

  constructor(db: Db) {
    this.db = db;
  }

  async getPolicy(repositoryId: number): Promise<LifecyclePolicyRecord | undefined> {
    const r = await this.db.selectFrom('lifecycle_policies').select(['policy_text', 'updated_at', 'last_evaluated_at']).where('repository_id', '=', repositoryId).executeTakeFirst();
    return r && { text: r.policy_text, updatedAtMs: Number(r.updated_at), lastEvaluatedAtMs: r.last_evaluated_at === null ? null : Number(r.last_evaluated_at) };
  }

  async putPolicy(repositoryId: number, text: string, nowMs: number): Promise<boolean> {
    if (!(await this.repositoryExists(repositoryId))) return false;
    await this.db
      .insertInto('lifecycle_policies')
      .values({ repository_id: repositoryId, policy_text: text, updated_at: nowMs, last_evaluated_at: null })
      .onConflict((oc) => oc.column('repository_id').doUpdateSet({ policy_text: text, updated_at: nowMs }))
      .execute();
    return true;
  }

  async markEvaluated(repositoryId: number, atMs: number): Promise<boolean> {
    const res = await this.db.updateTable('lifecycle_policies').set({ last_evaluated_at: atMs }).where('repository_id', '=', repositoryId).executeTakeFirst();
    return Number(res.numUpdatedRows) > 0;
  }

  async deletePolicy(repositoryId: number): Promise<boolean> {
    const res = await this.db.deleteFrom('lifecycle_policies').where('repository_id', '=', repositoryId).executeTakeFirst();
    return Number(res.numDeletedRows) > 0;
  }

  async listRepositoriesWithPolicy(): Promise<LifecycleRepository[]> {
    const rows = await this.db
      .selectFrom('lifecycle_policies as p')
      .innerJoin('repositories as r', 'r.id', 'p.repository_id')
      .select(['r.id', 'r.account_id', 'r.name'])
      .orderBy('r.id')
      .execute();
    return rows.map((r) => ({ repositoryId: r.id, accountId: r.account_id, name: r.name }));
  }

  async putPreview(repositoryId: number, p: LifecyclePreview): Promise<boolean> {
    if (!(await this.repositoryExists(repositoryId))) return false;
    const row = {
      status: p.status,
      policy_text: p.policyText,
      result: p.result === null || p.result === undefined ? null : JSON.stringify(p.result),
      started_at: p.startedAtMs,
      finished_at: p.finishedAtMs,
    };
    await this.db
      .insertInto('lifecycle_previews')
      .values({ repository_id: repositoryId, ...row })
      .onConflict((oc) => oc.column('repository_id').doUpdateSet(row))
      .execute();
    return true;
  }

  async getPreview(repositoryId: number): Promise<LifecyclePreview | undefined> {
    const r = await this.db.selectFrom('lifecycle_previews').selectAll().where('repository_id', '=', repositoryId).executeTakeFirst();
    return (
      r && {
        status: r.status as LifecyclePreviewStatus,
        policyText: r.policy_text,
        result: r.result === null ? null : (JSON.parse(r.result) as unknown),
        startedAtMs: Number(r.started_at),
        finishedAtMs: r.finished_at === null ? null : Number(r.finished_at),
      }
    );
  }

  async listLifecycleImages(repositoryId: number): Promise<LifecycleImageRecord[]> {
    // In windows of the repository's manifests, with each window's tags, children and sizes
    // looked up by digest, yielding between windows (pacing.ts).
    const out: LifecycleImageRecord[] = [];
    const pace = pacer();
    let after: string | undefined;
    for (;;) {
      let q = this.db
        .selectFrom('manifests')
        .select(['digest', 'created_at', 'last_pulled_at', 'subject_digest'])
        .where('repository_id', '=', repositoryId)
        .orderBy('digest')
        .limit(WINDOW);
      if (after !== undefined) q = q.where('digest', '>', after);
      const manifests = await q.execute();
      if (manifests.length === 0) break;
      const digests = manifests.map((m) => m.digest);
      const tags = await this.db
        .selectFrom('tags')
        .select(['manifest_digest', 'name'])
        .where('repository_id', '=', repositoryId)
        .where('manifest_digest', 'in', digests)
        .orderBy('manifest_digest')
        .orderBy('name')
        .execute();
      const children = await this.db
        .selectFrom('manifest_references')
        .select(['manifest_digest', 'reference_digest'])
        .where('repository_id', '=', repositoryId)
        .where('manifest_digest', 'in', digests)
        .where('kind', '=', 'manifest')
        .orderBy('manifest_digest')
        .orderBy('reference_digest')
        .execute();
      await pace();
      const sizes = await this.db
        .selectFrom('manifest_references as r')
        .innerJoin('blobs as b', 'b.digest', 'r.reference_digest')
        .select((eb) => ['r.manifest_digest', eb.fn.sum<number>('b.size_bytes').as('size_bytes')])
        .where('r.repository_id', '=', repositoryId)
        .where('r.manifest_digest', 'in', digests)
        .where('r.kind', '=', 'blob')
        .groupBy('r.manifest_digest')
        .execute();
      const tagsOf = group(tags, (t) => t.manifest_digest, (t) => t.name);
      const childrenOf = group(children, (c) => c.manifest_digest, (c) => c.reference_digest);
      const sizeOf = new Map(sizes.map((s) => [s.manifest_digest, Number(s.size_bytes ?? 0)]));
      for (const m of manifests) {
        out.push({
          digest: m.digest,
          tags: tagsOf.get(m.digest) ?? [],
          pushedAtMs: Number(m.created_at),
          lastPulledAtMs: m.last_pulled_at === null ? null : Number(m.last_pulled_at),
          children: childrenOf.get(m.digest) ?? [],
          subject: m.subject_digest,
          sizeBytes: sizeOf.get(m.digest) ?? 0,
        });
      }
      if (manifests.length < WINDOW) break;
      after = digests[digests.length - 1];
      await pace();
    }
    return out;
  }

  private async repositoryExists(repositoryId: number): Promise<boolean> {
    return (await this.db.selectFrom('repositories').select('id').where('id', '=', repositoryId).executeTakeFirst()) !== undefined;
  }
}
