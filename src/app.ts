import { readFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import type { FastifyInstance } from 'fastify';
import { parseListen, type Config } from './config/config.ts';
import type { Logger } from './log/logger.ts';
import { AuditLog } from './audit/audit-log.ts';
import { IamAuthorizer } from './iam/authorizer.ts';
import { Identity } from './iam/identity.ts';
import { Secrets } from './iam/secrets.ts';
import { SecretsManager } from './secrets/secrets-manager.ts';
import { Scheduler } from './workers/scheduler.ts';
import { runAllLifecycles } from './lifecycle/runner.ts';
import { collectGarbage } from './gc/collector.ts';
import { WebhookDispatcher, pruneEvents } from './events/webhooks.ts';
import { defaultScanLimits } from './scan/analyse/index.ts';
import { REMATCH_JOB, ScanWorker } from './scan/worker.ts';
import { ReplicationWorker } from './replication/worker.ts';
import { PullThroughCache } from './cache/pull-through-cache.ts';
import { syncConfigWebhooks } from './events/webhook-config.ts';
import { startMetricsServer } from './http/metrics.ts';
import { Registry } from './registry/registry.ts';
import { buildServer } from './http/server.ts';
import { openBlobStore, openMetaStore } from './store/open.ts';

export interface Berth {
  url: string;
  /** The Prometheus endpoint, when `metrics.listen` is set. */
  metricsUrl: string | undefined;
  registry: Registry;
  identity: Identity;
  server: FastifyInstance;
  close(): Promise<void>;
}

export interface StartOptions {
  /** A young-generation garbage collection on demand, if the process can run one (main.ts). */
  collectYoungGarbage?: (() => void) | undefined;
}

/** Builds stores, the registry and the HTTP server from a config, and starts listening. */
export async function startBerth(config: Config, log: Logger, options: StartOptions = {}): Promise<Berth> {
  const meta = await openMetaStore(config.metadataUrl, { poolSize: config.metadata.poolSize });
  const blobs = await openBlobStore(config.blobUrl, { s3: config.s3, collectYoungGarbage: options.collectYoungGarbage }).catch(async (err: unknown) => {
    await meta.close();
    throw err;
  });
  const secrets = Secrets.load({ secretKey: config.auth.secretKey, keyFile: config.auth.secretKeyFile });
  const identity = new Identity({
    meta,
    secrets,
    log,
    region: config.region,
    cacheTtlMs: config.auth.cacheTtlSeconds * 1000,
    tokenTtlMs: config.auth.tokenTtlSeconds * 1000,
  });
  await identity.checkSecretKey();
  await identity.bootstrap({ dataDir: config.dataDir, ...config.bootstrap });
  // Before any dispatcher here starts, so the declared subscriptions are what it finds.
  await syncConfigWebhooks({ meta, secrets, log, webhooks: config.events.webhooks });
  const audit = new AuditLog(meta, log, config.audit.flushIntervalMs);
  const authorizer = new IamAuthorizer(identity, audit);
  const secretsManager = new SecretsManager({ store: meta.secrets, secrets, region: config.region });
  // Background work runs once across the cluster: each job is leased in the metadata store.
  const sweepIntervalMs = config.uploads.sweepIntervalSeconds * 1000;
  const scheduler = new Scheduler({ meta, log, tickMs: Math.min(5000, sweepIntervalMs) });
  const graceMs = config.gc.graceSeconds * 1000;
  const delayMs = config.gc.delaySeconds * 1000;
  // The workers that read the log, woken by pushes on this node (they are made after the registry).
  const logReaders: Array<{ wake(): void }> = [];
  const registry = new Registry({
    region: config.region,
    meta,
    onImageArrived: () => {
      for (const reader of logReaders) reader.wake();
    },
    // What a deletion frees is collectable a grace period later; the delay lets deletions batch.
    onGarbage: () => scheduler.hurry('gc', Date.now() + graceMs + delayMs),
    blobs,
    authorizer,
    log,
    createOnPush: config.repositories.createOnPush,
    onPolicyChange: () => identity.invalidate(),
    uploadTtlMs: config.uploads.ttlSeconds * 1000,
    manifestMaxBytes: config.manifests.maxBytes,
    cacheTtlMs: config.cache.ttlSeconds * 1000,
    figuresFreshMs: config.cache.figuresSeconds * 1000,
    manifestCacheBytes: config.cache.manifestBytes,
    blobRedirect: config.blobs.redirect,
    blobRedirectTtlSeconds: config.blobs.redirectTtlSeconds,
  });
  // Every node runs one (unless scan.enabled is off); scans are shared out by their leases.
  const scans = new ScanWorker({
    registry,
    events: meta.events,
    log,
    onDatabaseChanged: () => void scheduler.tick(),
    settings: {
      enabled: config.scan.enabled,
      concurrency: config.scan.concurrency,
      pollIntervalMs: config.scan.pollIntervalMs,
      leaseSeconds: config.scan.leaseSeconds,
      maxAttempts: config.scan.maxAttempts,
      maxDatabaseAgeDays: config.scan.maxDatabaseAgeDays,
      limits: {
        ...defaultScanLimits,
        maxUncompressedBytes: config.scan.limits.maxUncompressedLayerBytes,
        maxEntries: config.scan.limits.maxLayerEntries,
        maxCompressionRatio: config.scan.limits.maxCompressionRatio,
      },
    },
  });
  // Every node runs one; replications are shared out by their leases.
  const replication = new ReplicationWorker({
    registry,
    events: meta.events,
    log,
    region: config.region,
    peers: config.replication.peers,
    settings: config.replication,
    allowsReplication: async (sourceAccount, action, repo) =>
      !config.auth.enabled || (await authorizer.allowsReplication(sourceAccount, action, repo, `replication-${Date.now()}`)).effect === 'allow',
  });
  logReaders.push(scans, replication);
  const cache = config.cache.pullThroughEnabled
    ? new PullThroughCache({
        registry,
        secrets: secretsManager,
        log,
        refreshMs: config.cache.refreshSeconds * 1000,
        timeoutMs: config.cache.upstreamTimeoutSeconds * 1000,
        fetchLeaseMs: config.cache.fetchLeaseSeconds * 1000,
        ca: config.cache.upstreamCaFile === undefined ? undefined : readFileSync(config.cache.upstreamCaFile, 'utf8'),
      })
    : undefined;
  const server = buildServer({ config, log, registry, identity, authorizer, audit, secretsManager, cache, onScanRequested: () => scans.wake(), onReplicationRequested: () => replication.wake() });
  const { host, port } = parseListen(config.listen);
  await server.listen({ host, port });
  const address = server.server.address() as AddressInfo;
  const scheme = config.tls.cert ? 'https' : 'http';
  const url = `${scheme}://${address.family === 'IPv6' ? `[${address.address}]` : address.address}:${address.port}`;

  await scheduler.register({
    name: 'upload-sweep',
    intervalMs: sweepIntervalMs,
    async run() {
      const swept = await registry.sweepUploads();
      if (swept.sessions + swept.orphans > 0) log.info({ task: 'upload-sweep', ...swept }, 'expired uploads removed');
    },
  });
  await scheduler.register({
    name: 'lifecycle',
    intervalMs: config.lifecycle.intervalSeconds * 1000,
    async run() {
      const outcomes = await runAllLifecycles({ registry, region: config.region, log, audit });
      const expired = outcomes.reduce((n, o) => n + o.expired.length, 0);
      log.info({ task: 'lifecycle', repositories: outcomes.length, expired }, 'lifecycle policies applied');
    },
  });
  await scheduler.register({
    name: 'gc',
    intervalMs: config.gc.intervalSeconds * 1000,
    async run() {
      // The collector logs its own summary. It runs again once the oldest garbage still within
      // the grace period is due (at most one run a minute), else after the interval.
      const report = await collectGarbage({ meta, blobs, registry, log }, { graceMs, dryRun: false, keepUntaggedManifests: !config.gc.deleteUntagged });
      return { nextRunAtMs: report.nextDueAtMs === null ? undefined : Math.max(report.nextDueAtMs + delayMs, Date.now() + 60_000) };
    },
  });
  await scheduler.register({
    name: 'events-prune',
    intervalMs: 3600_000,
    async run() {
      const { pruned, orphans } = await pruneEvents(meta, Date.now() - config.events.retentionSeconds * 1000);
      log.info({ task: 'events-prune', pruned, orphans }, 'event log pruned');
    },
  });
  await scheduler.register({
    name: 'scan-maintenance',
    intervalMs: 3600_000,
    async run() {
      // Imports a crashed process left half-written, and cached analyses nothing needs: layer
      // analyses are kept 30 days (a layer still in use is read again at its next scan).
      const abandoned = await registry.scans.vulnDb.sweepAbandoned(Date.now() - 6 * 3600_000);
      const pruned = await registry.scans.pruneCaches(Date.now() - 30 * 86_400_000);
      log.info({ task: 'scan-maintenance', abandonedImportRows: abandoned, ...pruned }, 'scanning caches pruned');
    },
  });
  scheduler.start();
  // Every node runs one; each subscription is delivered by whichever node holds its lease.
  const webhooks = new WebhookDispatcher({
    meta,
    secrets,
    log,
    pollIntervalMs: config.events.pollIntervalMs,
    leaseMs: config.events.leaseSeconds * 1000,
    retry: { baseMs: config.events.retryBaseMs, maxMs: config.events.retryMaxMs },
  });
  webhooks.start();
  scans.start();
  replication.start();
  if (config.scan.enabled) {
    // Once across the cluster, under the scheduler's lease: a node that dies mid-way leaves the
    // version unrecorded, and the next run matches again (re-matching is idempotent).
    await scheduler.register({ name: REMATCH_JOB, intervalMs: Math.max(1000, config.scan.pollIntervalMs), run: async () => void (await scans.rematch()) });
  }
  const metrics = config.metrics.listen === undefined ? undefined : await startMetricsServer({ meta, log, listen: config.metrics.listen, jobs: ['gc', 'lifecycle', 'upload-sweep', 'events-prune', 'scan-maintenance', 'scan-rematch'], ...(cache ? { local: () => cache.metrics() } : {}) });

  return {
    url,
    metricsUrl: metrics?.url,
    registry,
    identity,
    server,
    async close() {
      await metrics?.close();
      await webhooks.stop();
      await scans.stop();
      await replication.stop();
      await scheduler.stop();
      await server.close();
      cache?.close();
      await registry.close();
      await audit.close();
      await meta.close();
      await blobs.close();
    },
  };
}
