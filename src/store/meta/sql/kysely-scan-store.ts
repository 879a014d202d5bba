import { sql, type Selectable } from 'kysely';
import type { RegistryScanningRow, ScanOutcome, ScanRecord, ScanRecordStatus, ScanStore } from '../scan-store.ts';
import { isForeignKeyViolation, IN_CHUNK, type Db, KyselyPart } from './locks.ts';
import type { Schema } from './schema.ts';

type Row = Selectable<Schema['image_scans']> & { account_id: string; repository_name: string };

function toRecord(r: Row): ScanRecord {
  const n = (v: number | string | null): number | null => (v === null ? null : Number(v));
  return {
    repositoryId: Number(r.repository_id),
    accountId: r.account_id,
    repositoryName: r.repository_name,
    digest: r.digest,
    status: r.status as ScanRecordStatus,
    description: r.description,
    reason: r.reason,
    scanType: r.scan_type === 'ENHANCED' ? 'ENHANCED' : 'BASIC',
    requestedAtMs: Number(r.requested_at),
    startedAtMs: n(r.started_at),
    completedAtMs: n(r.completed_at),
    dbVersion: n(r.db_version),
    dbUpdatedAtMs: n(r.db_updated_at),
    severityCounts: r.severity_counts,
    findings: r.findings,
    lastManualAtMs: n(r.last_manual_at),
    attempts: Number(r.attempts),
    leaseOwner: r.lease_owner,
    leaseUntilMs: n(r.lease_until),
  };
}

const COLUMNS = [
  's.repository_id', 's.digest', 's.status', 's.description', 's.reason', 's.scan_type', 's.requested_at', 's.started_at', 's.completed_at',
  's.db_version', 's.db_updated_at', 's.severity_counts', 's.findings', 's.last_manual_at', 's.attempts', 's.lease_owner', 's.lease_until',
  'r.account_id', 'r.name as repository_name',
] as const;

/** Image scanning's state over Kysely; the same SQL on SQLite and PostgreSQL. */
export class KyselyScanStore extends KyselyPart implements ScanStore {
  private joined(db: Db = this.db) {
    return db.selectFrom('image_scans as s').innerJoin('repositories as r', 'r.id', 's.repository_id').select(COLUMNS);
  }

  async registryScanning(accountId: string): Promise<RegistryScanningRow | undefined> {
    const r = await this.db.selectFrom('registry_scanning').selectAll().where('account_id', '=', accountId).executeTakeFirst();
    return r && { scanType: r.scan_type === 'ENHANCED' ? 'ENHANCED' : 'BASIC', rules: r.rules, updatedAtMs: Number(r.updated_at) };
  }

  async putRegistryScanning(accountId: string, row: RegistryScanningRow): Promise<void> {
    await this.db
      .insertInto('registry_scanning')
      .values({ account_id: accountId, scan_type: row.scanType, rules: row.rules, updated_at: row.updatedAtMs })
      .onConflict((oc) => oc.column('account_id').doUpdateSet({ scan_type: row.scanType, rules: row.rules, updated_at: row.updatedAtMs }))
      .execute();
  }

  async layerFacts(diffId: string, analyserVersion: number): Promise<string | undefined> {
    const r = await this.db.selectFrom('scan_layers').select('facts').where('diff_id', '=', diffId).where('analyser_version', '=', analyserVersion).executeTakeFirst();
    return r?.facts;
  }

  async putLayerFacts(diffId: string, analyserVersion: number, facts: string, nowMs: number): Promise<void> {
    await this.db
      .insertInto('scan_layers')
      .values({ diff_id: diffId, analyser_version: analyserVersion, facts, created_at: nowMs })
      .onConflict((oc) => oc.columns(['diff_id', 'analyser_version']).doNothing())
      .execute();
  }

  async inventory(imageDigest: string, analyserVersion: number): Promise<string | undefined> {
    const r = await this.db.selectFrom('scan_inventories').select('inventory').where('image_digest', '=', imageDigest).where('analyser_version', '=', analyserVersion).executeTakeFirst();
    return r?.inventory;
  }

  async putInventory(imageDigest: string, analyserVersion: number, inventory: string, nowMs: number): Promise<void> {
    await this.db
      .insertInto('scan_inventories')
      .values({ image_digest: imageDigest, analyser_version: analyserVersion, inventory, created_at: nowMs })
      .onConflict((oc) => oc.columns(['image_digest', 'analyser_version']).doUpdateSet({ inventory, created_at: nowMs }))
      .execute();
  }

  async getScan(repositoryId: number, digest: string): Promise<ScanRecord | undefined> {
    const r = await this.joined().where('s.repository_id', '=', repositoryId).where('s.digest', '=', digest).executeTakeFirst();
    return r && toRecord(r);
  }

  async getScans(repositoryId: number, digests: string[]): Promise<Map<string, ScanRecord>> {
    const out = new Map<string, ScanRecord>();
    const unique = [...new Set(digests)];
    for (let i = 0; i < unique.length; i += IN_CHUNK) {
      const rows = await this.joined().where('s.repository_id', '=', repositoryId).where('s.digest', 'in', unique.slice(i, i + IN_CHUNK)).execute();
      for (const r of rows) out.set(r.digest, toRecord(r));
    }
    return out;
  }

  async requestScan(repositoryId: number, digest: string, request: { reason: string; scanType: 'BASIC' | 'ENHANCED'; nowMs: number; isManual?: boolean }): Promise<boolean> {
    const manual = request.isManual === true ? request.nowMs : null;
    // An existing record that is not queued or running becomes PENDING; its last result stays.
    const updated = await this.db
      .updateTable('image_scans')
      .set({
        status: 'PENDING',
        reason: request.reason,
        scan_type: request.scanType,
        requested_at: request.nowMs,
        attempts: 0,
        lease_owner: null,
        lease_until: null,
        ...(manual !== null ? { last_manual_at: manual } : {}),
      })
      .where('repository_id', '=', repositoryId)
      .where('digest', '=', digest)
      .where('status', 'not in', ['PENDING', 'IN_PROGRESS'])
      .executeTakeFirst();
    if (Number(updated.numUpdatedRows) > 0) return true;
    // Insert only if the manifest exists (insert ... select), rather than catching the foreign
    // key violation: on PostgreSQL a failed statement aborts the caller's transaction.
    let inserted;
    try {
      inserted = await this.db
      .insertInto('image_scans')
      .columns(['repository_id', 'digest', 'status', 'reason', 'scan_type', 'requested_at', 'last_manual_at', 'attempts'])
      .expression((eb) =>
        eb
          .selectFrom('manifests')
          .select([
            'repository_id',
            'digest',
            sql.lit('PENDING').as('status'),
            sql.val(request.reason).as('reason'),
            sql.val(request.scanType).as('scan_type'),
            sql.val(request.nowMs).as('requested_at'),
            sql.val(manual).as('last_manual_at'),
            sql.lit(0).as('attempts'),
          ])
          .where('repository_id', '=', repositoryId)
          .where('digest', '=', digest),
      )
      .onConflict((oc) => oc.columns(['repository_id', 'digest']).doNothing())
      .executeTakeFirst();
    } catch (err) {
      // The manifest was deleted between the select and the insert (PostgreSQL checks the key
      // at the insert): nothing to scan.
      if (isForeignKeyViolation(err)) return false;
      throw err;
    }
    return Number(inserted.numInsertedOrUpdatedRows ?? 0n) > 0;
  }

  async claimScans(owner: string, nowMs: number, untilMs: number, limit: number): Promise<ScanRecord[]> {
    return this.inTransaction(async (db) => {
      let q = db
        .selectFrom('image_scans')
        .select(['repository_id', 'digest'])
        .where((eb) => eb.or([eb('status', '=', 'PENDING'), eb.and([eb('status', '=', 'IN_PROGRESS'), eb('lease_until', '<', nowMs)])]))
        .orderBy('requested_at')
        .limit(limit);
      if (this.dialect === 'postgres') q = q.forUpdate().skipLocked();
      const due = await q.execute();
      const claimed: ScanRecord[] = [];
      for (const d of due) {
        const row = await db
          .updateTable('image_scans')
          .set((eb) => ({ status: 'IN_PROGRESS', lease_owner: owner, lease_until: untilMs, started_at: nowMs, attempts: eb('attempts', '+', 1) }))
          .where('repository_id', '=', d.repository_id)
          .where('digest', '=', d.digest)
          .where((eb) => eb.or([eb('status', '=', 'PENDING'), eb.and([eb('status', '=', 'IN_PROGRESS'), eb('lease_until', '<', nowMs)])]))
          .returning('repository_id')
          .executeTakeFirst();
        if (!row) continue;
        const full = await this.joined(db).where('s.repository_id', '=', d.repository_id).where('s.digest', '=', d.digest).executeTakeFirst();
        if (full) claimed.push(toRecord(full));
      }
      return claimed;
    });
  }

  async renewScan(repositoryId: number, digest: string, owner: string, untilMs: number): Promise<boolean> {
    const r = await this.db
      .updateTable('image_scans')
      .set({ lease_until: untilMs })
      .where('repository_id', '=', repositoryId)
      .where('digest', '=', digest)
      .where('status', '=', 'IN_PROGRESS')
      .where('lease_owner', '=', owner)
      .executeTakeFirst();
    return Number(r.numUpdatedRows) > 0;
  }

  async finishScan(repositoryId: number, digest: string, owner: string, outcome: ScanOutcome): Promise<boolean> {
    const r = await this.db
      .updateTable('image_scans')
      .set({
        status: outcome.status,
        description: outcome.description,
        completed_at: outcome.completedAtMs,
        db_version: outcome.dbVersion,
        db_updated_at: outcome.dbUpdatedAtMs,
        severity_counts: outcome.severityCounts,
        findings: outcome.findings,
        lease_owner: null,
        lease_until: null,
      })
      .where('repository_id', '=', repositoryId)
      .where('digest', '=', digest)
      .where('status', '=', 'IN_PROGRESS')
      .where('lease_owner', '=', owner)
      .executeTakeFirst();
    return Number(r.numUpdatedRows) > 0;
  }

  async staleScans(belowVersion: number, after: { repositoryId: number; digest: string } | undefined, limit: number): Promise<ScanRecord[]> {
    let q = this.joined()
      .where('s.status', '=', 'COMPLETE')
      .where((eb) => eb.or([eb('s.db_version', 'is', null), eb('s.db_version', '<', belowVersion)]));
    if (after) {
      q = q.where((eb) => eb.or([eb('s.repository_id', '>', after.repositoryId), eb.and([eb('s.repository_id', '=', after.repositoryId), eb('s.digest', '>', after.digest)])]));
    }
    const rows = await q.orderBy('s.repository_id').orderBy('s.digest').limit(limit).execute();
    return rows.map(toRecord);
  }

  async rematchScan(repositoryId: number, digest: string, outcome: ScanOutcome): Promise<boolean> {
    const r = await this.db
      .updateTable('image_scans')
      .set({
        description: outcome.description,
        completed_at: outcome.completedAtMs,
        db_version: outcome.dbVersion,
        db_updated_at: outcome.dbUpdatedAtMs,
        severity_counts: outcome.severityCounts,
        findings: outcome.findings,
      })
      .where('repository_id', '=', repositoryId)
      .where('digest', '=', digest)
      .where('status', '=', 'COMPLETE')
      .where((eb) => eb.or([eb('db_version', 'is', null), eb('db_version', '<', outcome.dbVersion ?? 0)]))
      .executeTakeFirst();
    return Number(r.numUpdatedRows) > 0;
  }

  async pruneCaches(layersBeforeMs: number): Promise<{ inventories: number; layers: number }> {
    const inventories = await this.db
      .deleteFrom('scan_inventories')
      .where('image_digest', 'not in', (eb) => eb.selectFrom('manifests').select('digest'))
      .executeTakeFirst();
    const layers = await this.db.deleteFrom('scan_layers').where('created_at', '<', layersBeforeMs).executeTakeFirst();
    return { inventories: Number(inventories.numDeletedRows), layers: Number(layers.numDeletedRows) };
  }

  async state(name: string): Promise<number> {
    const r = await this.db.selectFrom('scan_state').select('value').where('name', '=', name).executeTakeFirst();
    return r ? Number(r.value) : 0;
  }

  async setState(name: string, value: number): Promise<void> {
    await this.db
      .insertInto('scan_state')
      .values({ name, value })
      .onConflict((oc) => oc.column('name').doUpdateSet({ value }))
      .execute();
  }

  async countByStatus(): Promise<Record<string, number>> {
    const rows = await this.db.selectFrom('image_scans').select((eb) => ['status', eb.fn.countAll<number>().as('n')]).groupBy('status').execute();
    return Object.fromEntries(rows.map((r) => [r.status, Number(r.n)]));
  }
}
