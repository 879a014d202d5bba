import { readFileSync } from 'node:fs';
import { isIP } from 'node:net';
import path from 'node:path';
import { parseConfigWebhooks, WebhookConfigError, type ConfigWebhook } from '../events/webhook-config.ts';
import { parsePeers, PeerConfigError, type Peer } from '../replication/peers.ts';

/**
 * One schema holds every setting, its default and its documentation. A setting comes, from
 * lowest to highest precedence, from its default, the JSON config file, a `BERTH_*` environment
 * variable named after its key path, and a command-line flag named the same way
 * (`uploads.ttlSeconds` is `BERTH_UPLOADS_TTL_SECONDS` and `--uploads-ttl-seconds`).
 * docs/configuration.md lists the same table; a test keeps them in step.
 */

/** `json`: any JSON value in the config file; a JSON text in the environment or a flag. */
type Kind = 'string' | 'integer' | 'boolean' | 'enum' | 'json';

export interface SettingSpec {
  key: string;
  kind: Kind;
  default: string | number | boolean | undefined;
  values?: readonly string[];
  min?: number;
  doc: string;
}

export const settings = [
  { key: 'listen', kind: 'string', default: '127.0.0.1:5000', doc: 'Address and port to listen on (HOST:PORT; port 0 picks a free one).' },
  { key: 'dataDir', kind: 'string', default: './data', doc: 'Directory for the embedded stores (SQLite metadata and filesystem blobs).' },
  { key: 'metadataUrl', kind: 'string', default: undefined, doc: 'Metadata store: `sqlite:PATH` or `postgres://USER:PASSWORD@HOST:PORT/DATABASE`. Default: `sqlite:<dataDir>/metadata.db`.' },
  { key: 'metadata.poolSize', kind: 'integer', default: 10, min: 1, doc: 'Connections each node keeps open to PostgreSQL at most.' },
  { key: 'blobUrl', kind: 'string', default: undefined, doc: 'Blob store: `file:PATH` or `s3://BUCKET/PREFIX`. Default: `file:<dataDir>/blobs`.' },
  { key: 's3.endpoint', kind: 'string', default: undefined, doc: 'S3 API endpoint for an `s3://` blob store (e.g. `http://127.0.0.1:7480` for Ceph RGW or MinIO). Default: AWS S3 of `s3.region`.' },
  { key: 's3.region', kind: 'string', default: 'us-east-1', doc: 'Region the S3 requests are signed for.' },
  { key: 's3.forcePathStyle', kind: 'boolean', default: false, doc: 'Address the bucket in the path (`http://host/bucket/key`) rather than the host name; most S3-compatible stores need `true`.' },
  { key: 's3.accessKeyId', kind: 'string', default: undefined, doc: 'S3 access key id (with `s3.secretAccessKey`). Default: the AWS SDK\'s credential chain (AWS_* variables, shared files, instance or pod roles).' },
  { key: 's3.secretAccessKey', kind: 'string', default: undefined, doc: 'S3 secret access key; see `s3.accessKeyId`.' },
  { key: 'blobs.redirect', kind: 'string', default: 'always', doc: 'Which clients a blob GET redirects to a short-lived presigned URL of the store, where it can make one (S3): `always`, `never` (Berth streams every blob itself), or a comma-separated list of addresses and CIDRs (clients from there are redirected, others proxied).' },
  { key: 'blobs.redirectTtlSeconds', kind: 'integer', default: 1200, min: 60, doc: 'Lifetime of the presigned URLs of blob redirects and of `GetDownloadUrlForLayer`.' },
  { key: 'tls.cert', kind: 'string', default: undefined, doc: 'PEM certificate chain; with `tls.key`, Berth serves HTTPS (TLS 1.2 and 1.3 only).' },
  { key: 'tls.key', kind: 'string', default: undefined, doc: 'PEM private key for `tls.cert`.' },
  { key: 'log.level', kind: 'enum', default: 'info', values: ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'], doc: 'Least severe log level written.' },
  { key: 'repositories.createOnPush', kind: 'boolean', default: false, doc: 'Create any repository a push names that does not exist (as Distribution does). Off, repositories are explicit as in ECR: created with CreateRepository, or on push by a CREATE_ON_PUSH repository creation template.' },
  { key: 'uploads.ttlSeconds', kind: 'integer', default: 86400, min: 1, doc: 'An upload session untouched for this long expires and its bytes are removed.' },
  { key: 'uploads.sweepIntervalSeconds', kind: 'integer', default: 900, min: 1, doc: 'How often expired upload sessions are swept.' },
  { key: 'lifecycle.intervalSeconds', kind: 'integer', default: 86400, min: 60, doc: 'How often every repository\'s lifecycle policy is applied (once across the cluster).' },
  { key: 'gc.graceSeconds', kind: 'integer', default: 3600, min: 1, doc: 'Garbage collection spares blobs and untagged manifests pushed, linked or referenced within this long, so that pushes in progress rarely have to retry (correctness does not depend on it).' },
  { key: 'gc.intervalSeconds', kind: 'integer', default: 86400, min: 60, doc: 'How often a garbage collection runs anyway, without a deletion to prompt it.' },
  { key: 'gc.deleteUntagged', kind: 'boolean', default: true, doc: 'Garbage collection also removes manifests that nothing keeps: untagged, listed by no index, and no referrer of a manifest the repository holds (older than the grace period). Off, untagged images stay until deleted or expired by a lifecycle policy, as in ECR.' },
  { key: 'gc.delaySeconds', kind: 'integer', default: 600, min: 0, doc: 'A deletion (an image, a tag, a repository, a lifecycle expiry) schedules a garbage collection when what it freed leaves the grace period, plus this long, so that many deletions share one collection.' },
  { key: 'events.retentionSeconds', kind: 'integer', default: 604800, min: 60, doc: 'Events older than this are pruned from the event log, once every consumer (each webhook subscription) has passed them.' },
  { key: 'events.pollIntervalMs', kind: 'integer', default: 500, min: 10, doc: 'How often an idle webhook subscription looks for new events, and each node for new subscriptions.' },
  { key: 'events.leaseSeconds', kind: 'integer', default: 30, min: 1, doc: 'A node delivers a webhook subscription\'s events under a lease renewed every third of this; a node that dies is replaced after at most this long.' },
  { key: 'events.retryBaseMs', kind: 'integer', default: 1000, min: 1, doc: 'A failed webhook delivery is retried after a random delay of up to this, doubling with each further failure (full jitter).' },
  { key: 'events.retryMaxMs', kind: 'integer', default: 600000, min: 1, doc: 'The longest delay between two attempts at a webhook delivery; at least `events.retryBaseMs`.' },
  { key: 'events.webhooks', kind: 'json', default: undefined, doc: 'Webhook subscriptions managed by the configuration: a JSON array of `{id, url, account, pattern, secret | secretFile, headers, timeoutSeconds, maxAttempts, enabled}` (docs/webhooks.md). Applied at each start, where entries removed from the list are unsubscribed. Default: none.' },
  { key: 'scan.enabled', kind: 'boolean', default: true, doc: 'Run image scans on this node (docs/scanning.md). Off, the scanning API still records configuration and requests, and other nodes run the scans.' },
  { key: 'scan.concurrency', kind: 'integer', default: 1, min: 1, doc: 'Images a node scans at once.' },
  { key: 'scan.pollIntervalMs', kind: 'integer', default: 1000, min: 10, doc: 'How often an idle node looks for pushes to scan, requested scans and a newly imported vulnerability database.' },
  { key: 'scan.leaseSeconds', kind: 'integer', default: 60, min: 1, doc: 'A node scans an image under a lease renewed every third of this; a scan whose node dies is taken over after at most this long.' },
  { key: 'scan.maxAttempts', kind: 'integer', default: 3, min: 1, doc: 'Attempts at one scan whose node died or failed unexpectedly before it is FAILED.' },
  { key: 'scan.manualScanQuotaSeconds', kind: 'integer', default: 86400, min: 0, doc: 'StartImageScan scans an image at most once per this long (ECR: once every 24 hours), answering LimitExceededException within it. 0: no limit.' },
  { key: 'scan.continuousStatus', kind: 'enum', default: 'COMPLETE', values: ['COMPLETE', 'ACTIVE'], doc: 'The status the API gives a continuously scanned image\'s results (ENHANCED, CONTINUOUS_SCAN): COMPLETE, with which `aws ecr wait image-scan-complete` works, or ACTIVE, as ECR\'s enhanced scanning says (its waiter then never succeeds, as on ECR).' },
  { key: 'scan.maxDatabaseAgeDays', kind: 'integer', default: 30, min: 0, doc: 'A scan fails, saying so, when the least recently updated source of the vulnerability database is older than this. 0: no limit.' },
  { key: 'scan.limits.maxUncompressedLayerBytes', kind: 'integer', default: 16 * 1024 * 1024 * 1024, min: 1024, doc: 'A layer that unpacks to more than this fails its scan (decompression bombs).' },
  { key: 'scan.limits.maxLayerEntries', kind: 'integer', default: 1000000, min: 1, doc: 'A layer with more tar entries than this fails its scan.' },
  { key: 'scan.limits.maxCompressionRatio', kind: 'integer', default: 200, min: 1, doc: 'A layer whose unpacked size passes 1 GiB and more than this many times its compressed size fails its scan (decompression bombs).' },
  { key: 'replication.enabled', kind: 'boolean', default: true, doc: 'Run replication on this node (docs/replication.md). Off, the API still records configurations and statuses, and other nodes copy the images.' },
  { key: 'replication.concurrency', kind: 'integer', default: 4, min: 1, doc: 'Images a node replicates at once.' },
  { key: 'replication.pollIntervalMs', kind: 'integer', default: 1000, min: 10, doc: 'How often an idle node looks for pushes to replicate and for replications due.' },
  { key: 'replication.leaseSeconds', kind: 'integer', default: 60, min: 1, doc: 'A node replicates an image under a lease renewed every third of this; a replication whose node dies is taken over after at most this long.' },
  { key: 'replication.retryBaseMs', kind: 'integer', default: 2000, min: 1, doc: 'A replication that failed for a reason that may pass (the destination is down) is retried after a random delay of up to this, doubling with each further failure.' },
  { key: 'replication.retryMaxMs', kind: 'integer', default: 300000, min: 1, doc: 'The longest delay between two attempts at a replication; a destination that comes back is caught up within about this long.' },
  { key: 'replication.chunkBytes', kind: 'integer', default: 32 * 1024 * 1024, min: 65536, doc: 'A layer is sent to a remote destination in requests of at most this many bytes; a dropped connection resumes from the last one the destination holds.' },
  { key: 'replication.peers', kind: 'json', default: undefined, doc: 'The other regions this deployment replicates to: a JSON array of `{region, endpoint, kind: "berth", accessKeyId, secretAccessKey | secretAccessKeyFile, roleArn, externalId, caFile, copySettings}` or `{region, endpoint, kind: "oci", username, password | passwordFile, caFile, repositoryPrefix}` (docs/replication.md). Default: none.' },
  { key: 'metrics.listen', kind: 'string', default: undefined, doc: 'HOST:PORT of a separate listener serving Prometheus metrics at /metrics (storage per repository and account, background jobs). Unauthenticated: keep it on loopback or a private network. Unset, there is none.' },
  { key: 'manifests.maxBytes', kind: 'integer', default: 4 * 1024 * 1024, min: 1024, doc: 'Largest manifest accepted, in bytes.' },
  { key: 'cache.ttlSeconds', kind: 'integer', default: 10, min: 0, doc: 'How long a node trusts repositories and manifests it has read (deletions made through another node show after at most this long; tags are never cached).' },
  { key: 'cache.manifestBytes', kind: 'integer', default: 64 * 1024 * 1024, min: 0, doc: 'Memory for cached manifest bodies, in bytes.' },
  { key: 'cache.figuresSeconds', kind: 'integer', default: 60, min: 0, doc: 'How long a node keeps an account\'s repository figures (image counts, sizes, storage usage) for the console\'s sorts by size or image count and its usage page, computing them again in the background after that; 0 computes them on every request.' },
  { key: 'cache.pullThroughEnabled', kind: 'boolean', default: true, doc: 'Serve pull-through cache rules (docs/pull-through-cache.md). Off, pulls never reach an upstream and the rule operations answer UnsupportedOperationException.' },
  { key: 'cache.refreshSeconds', kind: 'integer', default: 86400, min: 0, doc: 'A tag cached through a pull-through cache rule is compared with its upstream at most this often (ECR: once every 24 hours); meanwhile, and whenever the upstream fails, the cached image is served.' },
  { key: 'cache.upstreamTimeoutSeconds', kind: 'integer', default: 60, min: 1, doc: 'A request to a pull-through cache upstream that makes no progress for this long fails (the cached copy is served when there is one).' },
  { key: 'cache.fetchLeaseSeconds', kind: 'integer', default: 60, min: 1, doc: 'A node fetches a blob from an upstream under a lease renewed every third of this; other nodes wait for it rather than fetch the blob again, and take over after it when the node dies.' },
  { key: 'cache.upstreamCaFile', kind: 'string', default: undefined, doc: 'PEM file of extra CA certificates trusted for HTTPS upstreams of the pull-through cache, besides the system roots.' },
  { key: 'console.enabled', kind: 'boolean', default: true, doc: 'Serve the web console at `/console/` on the registry listener (docs/console.md); a browser\'s `GET /` goes there. Off, those paths answer 404 like any unknown path; the registry works the same either way.' },
  { key: 'console.sessionSeconds', kind: 'integer', default: 43200, min: 900, doc: 'How long a console sign-in lasts (12 hours, as the AWS console\'s; at most 129600, the longest session credentials STS issues); the session\'s credentials expire with it.' },
  { key: 'console.signInAttempts', kind: 'integer', default: 5, min: 1, doc: 'Failed console sign-ins allowed per user name and per client address in 5 minutes, on each node; later attempts are refused until the window passes.' },
  { key: 'region', kind: 'string', default: 'us-east-1', doc: 'The AWS region name this instance serves: it appears in ARNs, and SigV4 requests must be signed for it.' },
  { key: 'auth.enabled', kind: 'boolean', default: true, doc: 'Require credentials on every API. `false` lets every request act as the default account (benchmarks and isolated development only).' },
  { key: 'auth.secretKey', kind: 'string', default: undefined, doc: 'The key that seals access-key secrets and signs tokens (base64, 32 bytes or more). Every node of a cluster needs the same one. Default: read from `auth.secretKeyFile`.' },
  { key: 'auth.secretKeyFile', kind: 'string', default: undefined, doc: 'File holding the secret key, created with 32 random bytes (mode 0600) on first start. Default: `<dataDir>/secret.key`.' },
  { key: 'auth.cacheTtlSeconds', kind: 'integer', default: 5, min: 0, doc: 'How long a node trusts what it read about a principal (key status, policies, repository and registry policies); changes made through another node apply within this long.' },
  { key: 'auth.tokenTtlSeconds', kind: 'integer', default: 43200, min: 60, doc: 'Lifetime of authorization tokens (`GetAuthorizationToken`, docker login passwords); 12 hours as in ECR.' },
  { key: 'auth.challenge', kind: 'enum', default: 'basic', values: ['basic', 'bearer'], doc: 'The 401 challenge on the data plane: `basic` (as ECR) or `bearer` (the Docker token flow, with the token endpoint at `/token`). Both kinds of credentials are accepted either way.' },
  { key: 'bootstrap.accountId', kind: 'string', default: undefined, doc: 'Id of the first account, created on first start with an empty store. Default: a random 12-digit id.' },
  { key: 'bootstrap.accessKeyId', kind: 'string', default: undefined, doc: 'Access key id for the first administrator (with `bootstrap.secretAccessKey`), instead of a generated one. Used only on first start.' },
  { key: 'bootstrap.secretAccessKey', kind: 'string', default: undefined, doc: 'Secret access key for the first administrator; see `bootstrap.accessKeyId`.' },
  { key: 'audit.flushIntervalMs', kind: 'integer', default: 200, min: 1, doc: 'Audit records are written in batches at least this often (and on shutdown).' },
  { key: 'server.trustProxy', kind: 'string', default: undefined, doc: 'Behind a reverse proxy or load balancer: which peers may set X-Forwarded-For/-Proto/-Host (`true` for any, a hop count, or a comma-separated list of addresses and CIDRs). Policies then see the client\'s address (`aws:SourceIp`) and scheme (`aws:SecureTransport`).' },
  { key: 'server.shutdownGraceSeconds', kind: 'integer', default: 10, min: 0, doc: 'On SIGTERM, how long in-flight requests may finish before connections are closed.' },
] as const satisfies readonly SettingSpec[];

export interface Config {
  listen: string;
  dataDir: string;
  metadataUrl: string;
  metadata: { poolSize: number };
  blobUrl: string;
  s3: { endpoint: string | undefined; region: string; forcePathStyle: boolean; accessKeyId: string | undefined; secretAccessKey: string | undefined };
  /** `always`, `never`, or the networks (addresses and CIDRs) whose clients are redirected. */
  blobs: { redirect: 'always' | 'never' | string[]; redirectTtlSeconds: number };
  tls: { cert: string | undefined; key: string | undefined };
  log: { level: string };
  repositories: { createOnPush: boolean };
  uploads: { ttlSeconds: number; sweepIntervalSeconds: number };
  manifests: { maxBytes: number };
  lifecycle: { intervalSeconds: number };
  gc: { graceSeconds: number; intervalSeconds: number; delaySeconds: number; deleteUntagged: boolean };
  events: { retentionSeconds: number; pollIntervalMs: number; leaseSeconds: number; retryBaseMs: number; retryMaxMs: number; webhooks: ConfigWebhook[] };
  scan: {
    enabled: boolean;
    concurrency: number;
    pollIntervalMs: number;
    leaseSeconds: number;
    maxAttempts: number;
    manualScanQuotaSeconds: number;
    continuousStatus: 'COMPLETE' | 'ACTIVE';
    maxDatabaseAgeDays: number;
    limits: { maxUncompressedLayerBytes: number; maxLayerEntries: number; maxCompressionRatio: number };
  };
  replication: {
    enabled: boolean;
    concurrency: number;
    pollIntervalMs: number;
    leaseSeconds: number;
    retryBaseMs: number;
    retryMaxMs: number;
    chunkBytes: number;
    peers: Peer[];
  };
  metrics: { listen: string | undefined };
  cache: {
    ttlSeconds: number;
    manifestBytes: number;
    figuresSeconds: number;
    pullThroughEnabled: boolean;
    refreshSeconds: number;
    upstreamTimeoutSeconds: number;
    fetchLeaseSeconds: number;
    upstreamCaFile: string | undefined;
  };
  console: { enabled: boolean; sessionSeconds: number; signInAttempts: number };
  server: { shutdownGraceSeconds: number; trustProxy: boolean | number | string[] | undefined };
  region: string;
  auth: { enabled: boolean; secretKey: string; secretKeyFile: string; cacheTtlSeconds: number; tokenTtlSeconds: number; challenge: 'basic' | 'bearer' };
  bootstrap: { accountId: string | undefined; accessKeyId: string | undefined; secretAccessKey: string | undefined };
  audit: { flushIntervalMs: number };
  /** Where the file settings came from, if any. */
  configFile: string | undefined;
}

export class ConfigError extends Error {
  override name = 'ConfigError';
}

export function envName(key: string): string {
  return 'BERTH_' + key.replace(/([a-z0-9])([A-Z])/g, '$1_$2').replace(/\./g, '_').toUpperCase();
}

export function flagName(key: string): string {
  return '--' + key.replace(/([a-z0-9])([A-Z])/g, '$1-$2').replace(/\./g, '-').toLowerCase();
}

/** coerce()'s source for a value read from the config file. */
const FILE_SOURCE = Symbol('config file');

function coerce(spec: SettingSpec, raw: unknown, source: string | typeof FILE_SOURCE, file?: string): unknown {
  const where = `${spec.key} (from ${source === FILE_SOURCE ? file : source})`;
  switch (spec.kind) {
    case 'string':
      if (typeof raw !== 'string' || raw === '') throw new ConfigError(`${where}: expected a non-empty string`);
      return raw;
    case 'enum':
      if (typeof raw !== 'string' || !spec.values?.includes(raw)) {
        throw new ConfigError(`${where}: expected one of ${spec.values?.join(', ')}, got ${JSON.stringify(raw)}`);
      }
      return raw;
    case 'boolean':
      if (typeof raw === 'boolean') return raw;
      if (raw === 'true' || raw === '1') return true;
      if (raw === 'false' || raw === '0') return false;
      throw new ConfigError(`${where}: expected true or false, got ${JSON.stringify(raw)}`);
    case 'integer': {
      const n = typeof raw === 'number' ? raw : typeof raw === 'string' && /^-?\d+$/.test(raw) ? Number(raw) : NaN;
      if (!Number.isSafeInteger(n)) throw new ConfigError(`${where}: expected a whole number, got ${JSON.stringify(raw)}`);
      if (spec.min !== undefined && n < spec.min) throw new ConfigError(`${where}: must be at least ${spec.min}, got ${n}`);
      return n;
    }
    case 'json':
      // The file holds the value itself; the environment and flags can only hold its text.
      if (source === FILE_SOURCE) return raw;
      try {
        return JSON.parse(raw as string) as unknown;
      } catch (err) {
        throw new ConfigError(`${where}: expected JSON: ${(err as Error).message}`);
      }
  }
}

function getPath(obj: unknown, key: string): unknown {
  let cur: unknown = obj;
  for (const part of key.split('.')) {
    if (cur === null || typeof cur !== 'object') return undefined;
    cur = (cur as Record<string, unknown>)[part];
  }
  return cur;
}

function checkUnknownKeys(obj: unknown, prefix: string, file: string): void {
  if (obj === null || typeof obj !== 'object' || Array.isArray(obj)) {
    throw new ConfigError(`${file}: ${prefix || 'the top level'} must be an object`);
  }
  for (const [k, v] of Object.entries(obj)) {
    const key = prefix ? `${prefix}.${k}` : k;
    // getPath() reads nested objects only, so a dotted name would be accepted and then ignored.
    if (k.includes('.')) throw new ConfigError(`${file}: unknown setting ${JSON.stringify(k)}; write key paths as nested objects`);
    if (settings.some((s) => s.key === key)) continue;
    if (settings.some((s) => s.key.startsWith(key + '.'))) {
      checkUnknownKeys(v, key, file);
      continue;
    }
    throw new ConfigError(`${file}: unknown setting ${key}`);
  }
}

export interface LoadOptions {
  argv?: readonly string[];
  env?: Record<string, string | undefined>;
  cwd?: string;
}

/** Parses flags into key/value pairs; rejects unknown flags with the list of known ones. */
function parseFlags(argv: readonly string[]): { values: Map<string, string>; configFile: string | undefined } {
  const values = new Map<string, string>();
  let configFile: string | undefined;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (!arg.startsWith('--')) throw new ConfigError(`unexpected argument ${JSON.stringify(arg)}`);
    const eq = arg.indexOf('=');
    const name = eq >= 0 ? arg.slice(0, eq) : arg;
    let value: string | undefined = eq >= 0 ? arg.slice(eq + 1) : undefined;
    const takeValue = (): string => {
      if (value !== undefined) return value;
      const next = argv[i + 1];
      if (next === undefined) throw new ConfigError(`${name} needs a value`);
      i++;
      return next;
    };
    if (name === '--config') {
      configFile = takeValue();
      continue;
    }
    const spec = settings.find((s) => flagName(s.key) === name);
    if (!spec) throw new ConfigError(`unknown flag ${name}; see docs/configuration.md`);
    if (spec.kind === 'boolean' && value === undefined && (argv[i + 1] === undefined || argv[i + 1]!.startsWith('--'))) {
      value = 'true';
    }
    values.set(spec.key, takeValue());
  }
  return { values, configFile };
}

export function loadConfig(options: LoadOptions = {}): Config {
  const env = options.env ?? process.env;
  const cwd = options.cwd ?? process.cwd();
  const flags = parseFlags(options.argv ?? []);
  const configFile = flags.configFile ?? env['BERTH_CONFIG'];
  let fileValues: unknown = {};
  if (configFile) {
    let text: string;
    try {
      text = readFileSync(path.resolve(cwd, configFile), 'utf8');
    } catch (err) {
      throw new ConfigError(`cannot read config file ${configFile}: ${(err as Error).message}`);
    }
    try {
      fileValues = JSON.parse(text);
    } catch (err) {
      throw new ConfigError(`config file ${configFile} is not valid JSON: ${(err as Error).message}`);
    }
    checkUnknownKeys(fileValues, '', configFile);
  }

  const resolved = new Map<string, unknown>();
  /** Where each setting given came from, for the checks made after coercion. */
  const sources = new Map<string, string>();
  for (const spec of settings as readonly SettingSpec[]) {
    let value: unknown = spec.default;
    const fromFile = getPath(fileValues, spec.key);
    if (fromFile !== undefined) {
      value = coerce(spec, fromFile, FILE_SOURCE, configFile);
      sources.set(spec.key, configFile!);
    }
    const fromEnv = env[envName(spec.key)];
    if (fromEnv !== undefined && fromEnv !== '') {
      value = coerce(spec, fromEnv, envName(spec.key));
      sources.set(spec.key, envName(spec.key));
    }
    const fromFlag = flags.values.get(spec.key);
    if (fromFlag !== undefined) {
      value = coerce(spec, fromFlag, flagName(spec.key));
      sources.set(spec.key, flagName(spec.key));
    }
    resolved.set(spec.key, value);
  }
  const get = <T>(key: string) => resolved.get(key) as T;

  const dataDir = path.resolve(cwd, get<string>('dataDir'));
  const listen = get<string>('listen');
  parseListen(listen);
  const metricsListen = get<string | undefined>('metrics.listen');
  if (metricsListen !== undefined) parseListen(metricsListen, 'metrics.listen');
  const cert = get<string | undefined>('tls.cert');
  const key = get<string | undefined>('tls.key');
  if ((cert === undefined) !== (key === undefined)) {
    throw new ConfigError('tls.cert and tls.key must be given together');
  }

  if (get<number>('events.retryMaxMs') < get<number>('events.retryBaseMs')) {
    throw new ConfigError(`events.retryMaxMs: must be at least events.retryBaseMs (${get<number>('events.retryBaseMs')}), got ${get<number>('events.retryMaxMs')}`);
  }

  let webhooks: ConfigWebhook[] = [];
  const rawWebhooks = get<unknown>('events.webhooks');
  if (rawWebhooks !== undefined) {
    try {
      webhooks = parseConfigWebhooks(rawWebhooks, { cwd });
    } catch (err) {
      if (err instanceof WebhookConfigError) throw new ConfigError(`events.webhooks (from ${sources.get('events.webhooks')}): ${err.message}`);
      throw err;
    }
  }

  const region = get<string>('region');
  if (!/^[a-z]{2}(-[a-z]+)+-\d+$/.test(region)) throw new ConfigError(`region: expected an AWS-style region name such as us-east-1, got ${JSON.stringify(region)}`);

  if (get<number>('replication.retryMaxMs') < get<number>('replication.retryBaseMs')) {
    throw new ConfigError(`replication.retryMaxMs: must be at least replication.retryBaseMs (${get<number>('replication.retryBaseMs')}), got ${get<number>('replication.retryMaxMs')}`);
  }
  let peers: Peer[] = [];
  const rawPeers = get<unknown>('replication.peers');
  if (rawPeers !== undefined) {
    try {
      peers = parsePeers(rawPeers, { cwd, ownRegion: region });
    } catch (err) {
      if (err instanceof PeerConfigError) throw new ConfigError(`replication.peers (from ${sources.get('replication.peers')}): ${err.message}`);
      throw err;
    }
  }
  const bootstrap = {
    accountId: get<string | undefined>('bootstrap.accountId'),
    accessKeyId: get<string | undefined>('bootstrap.accessKeyId'),
    secretAccessKey: get<string | undefined>('bootstrap.secretAccessKey'),
  };
  if (bootstrap.accountId !== undefined && !/^\d{12}$/.test(bootstrap.accountId)) throw new ConfigError(`bootstrap.accountId: expected 12 digits, got ${JSON.stringify(bootstrap.accountId)}`);
  if ((bootstrap.accessKeyId === undefined) !== (bootstrap.secretAccessKey === undefined)) {
    throw new ConfigError('bootstrap.accessKeyId and bootstrap.secretAccessKey must be given together');
  }
  if (bootstrap.accessKeyId !== undefined && !/^[A-Z0-9]{16,128}$/.test(bootstrap.accessKeyId)) {
    throw new ConfigError('bootstrap.accessKeyId: expected 16 to 128 upper-case letters and digits (like AKIAIOSFODNN7EXAMPLE)');
  }
  if (bootstrap.secretAccessKey !== undefined && bootstrap.secretAccessKey.length < 16) {
    throw new ConfigError('bootstrap.secretAccessKey: expected at least 16 characters');
  }

  const s3 = {
    endpoint: get<string | undefined>('s3.endpoint'),
    region: get<string>('s3.region'),
    forcePathStyle: get<boolean>('s3.forcePathStyle'),
    accessKeyId: get<string | undefined>('s3.accessKeyId'),
    secretAccessKey: get<string | undefined>('s3.secretAccessKey'),
  };
  if ((s3.accessKeyId === undefined) !== (s3.secretAccessKey === undefined)) {
    throw new ConfigError('s3.accessKeyId and s3.secretAccessKey must be given together');
  }
  if (s3.endpoint !== undefined && !/^https?:\/\/[^/]+\/?$/.test(s3.endpoint)) {
    throw new ConfigError(`s3.endpoint: expected http://HOST[:PORT] or https://HOST[:PORT], got ${JSON.stringify(s3.endpoint)}`);
  }

  const config: Config = {
    listen,
    dataDir,
    metadataUrl: get<string | undefined>('metadataUrl') ?? `sqlite:${path.join(dataDir, 'metadata.db')}`,
    metadata: { poolSize: get<number>('metadata.poolSize') },
    blobUrl: get<string | undefined>('blobUrl') ?? `file:${path.join(dataDir, 'blobs')}`,
    s3,
    blobs: { redirect: parseRedirect(get<string>('blobs.redirect')), redirectTtlSeconds: get<number>('blobs.redirectTtlSeconds') },
    tls: { cert: cert && path.resolve(cwd, cert), key: key && path.resolve(cwd, key) },
    log: { level: get<string>('log.level') },
    repositories: { createOnPush: get<boolean>('repositories.createOnPush') },
    uploads: { ttlSeconds: get<number>('uploads.ttlSeconds'), sweepIntervalSeconds: get<number>('uploads.sweepIntervalSeconds') },
    manifests: { maxBytes: get<number>('manifests.maxBytes') },
    lifecycle: { intervalSeconds: get<number>('lifecycle.intervalSeconds') },
    gc: { graceSeconds: get<number>('gc.graceSeconds'), intervalSeconds: get<number>('gc.intervalSeconds'), delaySeconds: get<number>('gc.delaySeconds'), deleteUntagged: get<boolean>('gc.deleteUntagged') },
    events: {
      retentionSeconds: get<number>('events.retentionSeconds'),
      pollIntervalMs: get<number>('events.pollIntervalMs'),
      leaseSeconds: get<number>('events.leaseSeconds'),
      retryBaseMs: get<number>('events.retryBaseMs'),
      retryMaxMs: get<number>('events.retryMaxMs'),
      webhooks,
    },
    scan: {
      enabled: get<boolean>('scan.enabled'),
      concurrency: get<number>('scan.concurrency'),
      pollIntervalMs: get<number>('scan.pollIntervalMs'),
      leaseSeconds: get<number>('scan.leaseSeconds'),
      maxAttempts: get<number>('scan.maxAttempts'),
      manualScanQuotaSeconds: get<number>('scan.manualScanQuotaSeconds'),
      continuousStatus: get<'COMPLETE' | 'ACTIVE'>('scan.continuousStatus'),
      maxDatabaseAgeDays: get<number>('scan.maxDatabaseAgeDays'),
      limits: {
        maxUncompressedLayerBytes: get<number>('scan.limits.maxUncompressedLayerBytes'),
        maxLayerEntries: get<number>('scan.limits.maxLayerEntries'),
        maxCompressionRatio: get<number>('scan.limits.maxCompressionRatio'),
      },
    },
    replication: {
      enabled: get<boolean>('replication.enabled'),
      concurrency: get<number>('replication.concurrency'),
      pollIntervalMs: get<number>('replication.pollIntervalMs'),
      leaseSeconds: get<number>('replication.leaseSeconds'),
      retryBaseMs: get<number>('replication.retryBaseMs'),
      retryMaxMs: get<number>('replication.retryMaxMs'),
      chunkBytes: get<number>('replication.chunkBytes'),
      peers,
    },
    metrics: { listen: metricsListen },
    console: { enabled: get<boolean>('console.enabled'), sessionSeconds: get<number>('console.sessionSeconds'), signInAttempts: get<number>('console.signInAttempts') },
    cache: {
      ttlSeconds: get<number>('cache.ttlSeconds'),
      manifestBytes: get<number>('cache.manifestBytes'),
      figuresSeconds: get<number>('cache.figuresSeconds'),
      pullThroughEnabled: get<boolean>('cache.pullThroughEnabled'),
      refreshSeconds: get<number>('cache.refreshSeconds'),
      upstreamTimeoutSeconds: get<number>('cache.upstreamTimeoutSeconds'),
      fetchLeaseSeconds: get<number>('cache.fetchLeaseSeconds'),
      upstreamCaFile: get<string | undefined>('cache.upstreamCaFile'),
    },
    server: { shutdownGraceSeconds: get<number>('server.shutdownGraceSeconds'), trustProxy: parseTrustProxy(get<string | undefined>('server.trustProxy')) },
    region,
    auth: {
      enabled: get<boolean>('auth.enabled'),
      secretKey: get<string | undefined>('auth.secretKey') ?? '',
      secretKeyFile: path.resolve(cwd, get<string | undefined>('auth.secretKeyFile') ?? path.join(dataDir, 'secret.key')),
      cacheTtlSeconds: get<number>('auth.cacheTtlSeconds'),
      tokenTtlSeconds: get<number>('auth.tokenTtlSeconds'),
      challenge: get<'basic' | 'bearer'>('auth.challenge'),
    },
    bootstrap,
    audit: { flushIntervalMs: get<number>('audit.flushIntervalMs') },
    configFile,
  };
  return deepFreeze(config);
}

function parseTrustProxy(value: string | undefined): boolean | number | string[] | undefined {
  if (value === undefined || value === 'false') return undefined;
  if (value === 'true') return true;
  if (/^\d+$/.test(value)) return Number(value);
  return value.split(',').map((v) => v.trim()).filter(Boolean);
}

function parseRedirect(value: string): 'always' | 'never' | string[] {
  if (value === 'always' || value === 'never') return value;
  const networks = value.split(',').map((v) => v.trim()).filter(Boolean);
  for (const n of networks) {
    const [address, bits, extra] = n.split('/');
    const valid = extra === undefined && address !== undefined && isIP(address) !== 0 && (bits === undefined || (/^\d{1,3}$/.test(bits) && Number(bits) <= (isIP(address) === 4 ? 32 : 128)));
    if (!valid) throw new ConfigError(`blobs.redirect: expected always, never or a comma-separated list of addresses and CIDRs, got ${JSON.stringify(n)}`);
  }
  return networks;
}

export function parseListen(listen: string, key = 'listen'): { host: string; port: number } {
  const m = /^(\[[^\]]+\]|[^:]+):(\d{1,5})$/.exec(listen);
  const port = m ? Number(m[2]) : NaN;
  if (!m || port > 65535) throw new ConfigError(`${key}: expected HOST:PORT, got ${JSON.stringify(listen)}`);
  return { host: m[1]!.replace(/^\[|\]$/g, ''), port };
}

function deepFreeze<T>(obj: T): T {
  if (obj && typeof obj === 'object') {
    for (const v of Object.values(obj)) deepFreeze(v);
    Object.freeze(obj);
  }
  return obj;
}
