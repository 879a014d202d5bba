import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { parseListen } from '../config/config.ts';
import type { Logger } from '../log/logger.ts';
import { storageReport, type StorageReport } from '../gc/collector.ts';
import type { MetaStore } from '../store/meta/meta-store.ts';
import { replicationStatus } from '../replication/status.ts';

/**
 * Prometheus metrics (docs/gc.md#storage-accounting): storage per repository and per account,
 * and the background jobs' last runs, in the text exposition format, on a listener of its own
 * (`metrics.listen`), as Distribution serves them on its debug address. The listener has no
 * authentication, since repository names are not public: bind it to loopback or a private
 * network that only the scraper reaches.
 *
 * Storage figures come from the metadata store (the same queries as `berth storage`), computed
 * at most once per `cacheMs` whatever the scrape rate, so a scrape costs one pass over the
 * references table at most every 30 s by default.
 */

export interface MetricsOptions {
  meta: MetaStore;
  log: Logger;
  /** host:port, e.g. 127.0.0.1:9464 (port 0 picks a free one). */
  listen: string;
  /** Background jobs whose last run is reported. */
  jobs: string[];
  cacheMs?: number;
  /** Figures this node keeps in memory (counters since it started), rendered after the store's. */
  local?: () => LocalFamily[];
}

/** A metric family this node counts itself, e.g. the pull-through cache's upstream bytes. */
export interface LocalFamily {
  name: string;
  type: 'gauge' | 'counter';
  help: string;
  samples: Array<[Record<string, string>, number]>;
}

export interface MetricsServer {
  url: string;
  close(): Promise<void>;
}

/** A label value with Prometheus' escapes. */
function label(value: string): string {
  return value.replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(/"/g, '\\"');
}

class Exposition {
  private readonly lines: string[] = [];

  family(name: string, type: 'gauge' | 'counter', help: string, samples: Array<[Record<string, string>, number]>): void {
    this.lines.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`);
    for (const [labels, value] of samples) {
      const set = Object.entries(labels).map(([k, v]) => `${k}="${label(v)}"`).join(',');
      this.lines.push(`${name}${set ? `{${set}}` : ''} ${Number.isFinite(value) ? value : 0}`);
    }
  }

  toString(): string {
    return this.lines.join('\n') + '\n';
  }
}

export async function renderMetrics(meta: MetaStore, storage: StorageReport, jobs: string[], local: LocalFamily[] = []): Promise<string> {
  const out = new Exposition();
  const repo = (r: StorageReport['repositories'][number]) => ({ account: r.accountId, repository: r.name });
  out.family('berth_repository_images', 'gauge', 'Manifests a repository holds (images, indexes and artifacts).', storage.repositories.map((r) => [repo(r), r.manifests]));
  out.family('berth_repository_manifest_bytes', 'gauge', 'Bytes of manifest payloads a repository holds.', storage.repositories.map((r) => [repo(r), r.manifestBytes]));
  out.family('berth_repository_blob_bytes', 'gauge', 'Bytes of the distinct blobs the manifests of a repository reference (a layer shared with another repository counts in both).', storage.repositories.map((r) => [repo(r), r.blobBytes]));
  const account = (a: StorageReport['accounts'][number]) => ({ account: a.accountId });
  out.family('berth_account_repositories', 'gauge', 'Repositories an account holds.', storage.accounts.map((a) => [account(a), a.repositories]));
  out.family('berth_account_stored_bytes', 'gauge', 'Bytes an account stores: its manifests, and each blob its manifests reference once, however many of its repositories share it.', storage.accounts.map((a) => [account(a), a.manifestBytes + a.blobBytes]));
  out.family('berth_account_shared_blob_bytes', 'gauge', 'Bytes of the blobs that more than one repository of the account references (counted once).', storage.accounts.map((a) => [account(a), a.sharedBytes]));
  out.family('berth_stored_blob_bytes', 'gauge', 'Bytes of every blob the metadata store records, each once.', [[{}, storage.total.blobBytes]]);
  out.family('berth_stored_manifest_bytes', 'gauge', 'Bytes of every manifest payload.', [[{}, storage.total.manifestBytes]]);
  out.family('berth_unreferenced_blob_bytes', 'gauge', 'Bytes of recorded blobs that no manifest references: what the next garbage collection may reclaim once their grace period ends.', [[{}, storage.total.unreferencedBytes]]);
  const states = [];
  for (const name of jobs) {
    const job = await meta.getJob(name);
    if (job) states.push(job);
  }
  out.family('berth_job_last_finished_timestamp_seconds', 'gauge', 'When a background job (gc, lifecycle, upload-sweep) last finished, on any node.', states.map((j) => [{ job: j.name }, (j.lastFinishedAtMs ?? 0) / 1000]));
  out.family('berth_job_next_run_timestamp_seconds', 'gauge', 'When a background job is next due.', states.map((j) => [{ job: j.name }, j.nextRunAtMs / 1000]));
  out.family('berth_job_last_run_failed', 'gauge', '1 when the last run of a background job failed.', states.map((j) => [{ job: j.name }, j.lastError === null ? 0 : 1]));
  const scans = await meta.scan.countByStatus();
  out.family('berth_image_scans', 'gauge', 'Image scan records by status: PENDING and IN_PROGRESS are the scan queue (docs/scanning.md).', ['PENDING', 'IN_PROGRESS', 'COMPLETE', 'FAILED', 'UNSUPPORTED_IMAGE'].map((status) => [{ status }, scans[status] ?? 0]));
  const db = await meta.vulndb.status();
  const oldest = db.sources.length > 0 ? Math.min(...db.sources.map((s) => s.updatedAtMs)) : 0;
  out.family('berth_vulndb_version', 'gauge', 'The vulnerability database version: grows with each import (0: none imported).', [[{}, db.version]]);
  out.family('berth_vulndb_oldest_source_timestamp_seconds', 'gauge', 'When the least recently updated source of the vulnerability database was last updated (0: none): scans fail once it is older than scan.maxDatabaseAgeDays.', [[{}, oldest / 1000]]);
  const replication = (await replicationStatus(meta)).destinations;
  const dest = (d: (typeof replication)[number]) => ({ region: d.region, registry_id: d.registryId });
  out.family('berth_replication_pending_images', 'gauge', 'Images waiting to be replicated to a destination: queued, retrying or being copied (docs/replication.md).', replication.map((d) => [dest(d), d.pending]));
  out.family('berth_replication_failed_images', 'gauge', 'Images whose replication to a destination FAILED for a reason retrying cannot mend.', replication.map((d) => [dest(d), d.failed]));
  out.family('berth_replication_complete_images', 'gauge', 'Images a destination holds by replication.', replication.map((d) => [dest(d), d.complete]));
  out.family(
    'berth_replication_lag_seconds',
    'gauge',
    'How long the oldest image waiting for a destination has waited since its push (0 when none waits): a destination that is down shows here.',
    replication.map((d) => [dest(d), d.lagSeconds]),
  );
  for (const f of local) out.family(f.name, f.type, f.help, f.samples);
  return out.toString();
}

export async function startMetricsServer(options: MetricsOptions): Promise<MetricsServer> {
  const cacheMs = options.cacheMs ?? 30_000;
  let cached: { atMs: number; report: Promise<StorageReport> } | undefined;
  const storage = () => {
    const now = Date.now();
    if (!cached || now - cached.atMs >= cacheMs) {
      const report = storageReport(options.meta);
      cached = { atMs: now, report };
      // A failed computation is not kept.
      report.catch(() => {
        if (cached?.report === report) cached = undefined;
      });
    }
    return cached.report;
  };
  const server: Server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?', 1)[0];
    if (path !== '/metrics' || (req.method !== 'GET' && req.method !== 'HEAD')) {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('Only GET /metrics is served here.\n');
      return;
    }
    storage()
      .then((report) => renderMetrics(options.meta, report, options.jobs, options.local?.() ?? []))
      .then(
        (text) => {
          res.writeHead(200, { 'content-type': 'text/plain; version=0.0.4; charset=utf-8' });
          res.end(req.method === 'HEAD' ? undefined : text);
        },
        (err: unknown) => {
          options.log.warn({ err }, 'could not compute metrics');
          res.writeHead(503, { 'content-type': 'text/plain' }).end('The metadata store could not be read; see the server log.\n');
        },
      );
  });
  const { host, port } = parseListen(options.listen, 'metrics.listen');
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host.replace(/^\[|\]$/g, ''), () => {
      server.off('error', reject);
      resolve();
    });
  });
  const address = server.address() as AddressInfo;
  const url = `http://${address.family === 'IPv6' ? `[${address.address}]` : address.address}:${address.port}/metrics`;
  return {
    url,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
