import { once } from 'node:events';
import type { TestContext } from 'node:test';
import { DescribeImageReplicationStatusCommand, ECRClient, PutReplicationConfigurationCommand, type ImageIdentifier } from '@aws-sdk/client-ecr';
import { ADMIN, basicAuthorization } from './auth.ts';
import type { AwsCredentials } from './aws.ts';
import { assertNoServerErrors } from './http.ts';
import { waitFor } from './oci.ts';
import { startServer, type StartOptions, type TestServer } from './server.ts';

/**
 * Replication between test servers, each one a "region": a Berth deployment on its own port and
 * store, bootstrapped with the same test administrator (ADMIN, account 111122223333), so that the
 * administrator's key works as a peer's credentials everywhere. Used by test/e2e/replication*.
 *
 * - startRegion(t, { region, peers }) starts a server for a region with `replication.peers`;
 *   make the destinations first (a peer names their URLs). Every region a test starts is closed
 *   when the test ends, the last started first (sources before their destinations), and its log
 *   is then checked for 5xx answers and error-level lines.
 * - berthPeer(dest) / ociPeer(...) build the `replication.peers` entries.
 * - ecrOf(region, creds) is an SDK ECR client signed for the region (SigV4 must name it);
 *   putRules(...) puts a replication configuration.
 * - waitForReplication(...) polls DescribeImageReplicationStatus until a destination reaches a
 *   status (COMPLETE or FAILED), with a generous deadline.
 * - replicationEvents(region) reads the destination's event log (GET /v2/_events, every page).
 */

/** How fast the test regions replicate: polls and retries every fraction of a second, not every second. */
export const FAST_REPLICATION_ENV: Readonly<Record<string, string>> = {
  BERTH_REPLICATION_POLL_INTERVAL_MS: '200',
  BERTH_REPLICATION_RETRY_BASE_MS: '200',
  BERTH_REPLICATION_RETRY_MAX_MS: '2000',
};

/** One `replication.peers` entry (see parsePeers in src/replication/peers.ts). */
export type PeerConfig = Record<string, unknown> & { region: string; endpoint: string; kind: 'berth' | 'oci' };

export interface Region extends TestServer {
  /** The region this server serves (BERTH_REGION). */
  region: string;
  /** `127.0.0.1:PORT`, for container tools and image references. */
  host: string;
}

export interface RegionOptions {
  region: string;
  /** Its `replication.peers` (BERTH_REPLICATION_PEERS); none by default. */
  peers?: PeerConfig[];
  /** More BERTH_* variables; they win over FAST_REPLICATION_ENV and the region's own. */
  env?: Record<string, string>;
  args?: StartOptions['args'];
}

/** Per test, how to close (and check) each region it started, in the order started. */
const closers = new WeakMap<TestContext, Array<() => Promise<void>>>();

/**
 * Starts a server for `region` with the given peers and registers its closing with the test
 * (once per test, for every region it starts: in reverse order, then each log is checked).
 */
export async function startRegion(t: TestContext, options: RegionOptions): Promise<Region> {
  const server = await startServer({
    env: {
      ...FAST_REPLICATION_ENV,
      BERTH_REGION: options.region,
      ...(options.peers ? { BERTH_REPLICATION_PEERS: JSON.stringify(options.peers) } : {}),
      ...options.env,
    },
    ...(options.args ? { args: options.args } : {}),
  });
  // The last lines may still be in the pipe when the process exits: wait for the end before checking them.
  const stdoutEnded = once(server.process.stdout!, 'end');
  let list = closers.get(t);
  if (!list) {
    const mine: Array<() => Promise<void>> = [];
    list = mine;
    closers.set(t, mine);
    t.after(async () => {
      // Every region is closed even when one's log check fails; the first failure is reported.
      const failures: unknown[] = [];
      for (const close of [...mine].reverse()) await close().catch((err: unknown) => failures.push(err));
      if (failures.length > 0) throw failures[0];
    });
  }
  list.push(async () => {
    await server.close();
    await stdoutEnded;
    assertNoServerErrors(server.logs);
  });
  return Object.assign(server, { region: options.region, host: `127.0.0.1:${server.port}` });
}

/**
 * A `kind: "berth"` peer entry for a region: the administrator's key (the same account in every
 * test region) unless `overrides` names other credentials, a role or copySettings.
 */
export function berthPeer(destination: Region, overrides: Record<string, unknown> = {}): PeerConfig {
  return {
    kind: 'berth',
    region: destination.region,
    endpoint: destination.baseUrl,
    accessKeyId: ADMIN.accessKeyId,
    secretAccessKey: ADMIN.secretAccessKey,
    ...overrides,
  };
}

/** A `kind: "oci"` peer entry for any OCI registry (Distribution...), with Basic credentials when given. */
export function ociPeer(region: string, endpoint: string, options: { username?: string | undefined; password?: string | undefined; repositoryPrefix?: string } = {}): PeerConfig {
  return {
    kind: 'oci',
    region,
    endpoint,
    ...(options.username !== undefined ? { username: options.username, password: options.password } : {}),
    ...(options.repositoryPrefix !== undefined ? { repositoryPrefix: options.repositoryPrefix } : {}),
  };
}

/** An SDK ECR client for the region's server (signed for its region), one attempt per call. */
export function ecrOf(region: Region, creds: AwsCredentials = ADMIN): ECRClient {
  return new ECRClient({
    region: region.region,
    endpoint: region.baseUrl,
    credentials: { accessKeyId: creds.accessKeyId, secretAccessKey: creds.secretAccessKey, ...(creds.sessionToken ? { sessionToken: creds.sessionToken } : {}) },
    maxAttempts: 1,
  });
}

export interface Destination {
  region: string;
  registryId: string;
}

/** PutReplicationConfiguration with one rule per entry: its destinations, and repository prefixes when given. */
export async function putRules(source: Region, rules: Array<{ destinations: Destination[]; prefixes?: string[] }>, creds: AwsCredentials = ADMIN): Promise<void> {
  await ecrOf(source, creds).send(
    new PutReplicationConfigurationCommand({
      replicationConfiguration: {
        rules: rules.map((r) => ({
          destinations: r.destinations,
          ...(r.prefixes ? { repositoryFilters: r.prefixes.map((filter) => ({ filter, filterType: 'PREFIX_MATCH' as const })) } : {}),
        })),
      },
    }),
  );
}

export interface ReplicationStatusEntry {
  region: string;
  registryId: string;
  status: string;
  failureCode?: string;
}

/** DescribeImageReplicationStatus through the SDK: the image's status per destination. */
export async function replicationStatuses(source: Region, repositoryName: string, imageId: ImageIdentifier, creds: AwsCredentials = ADMIN): Promise<ReplicationStatusEntry[]> {
  const out = await ecrOf(source, creds).send(new DescribeImageReplicationStatusCommand({ repositoryName, imageId }));
  return (out.replicationStatuses ?? []).map((s) => ({
    region: s.region!,
    registryId: s.registryId!,
    status: s.status!,
    ...(s.failureCode ? { failureCode: s.failureCode } : {}),
  }));
}

/**
 * Polls the image's replication status until the destination's is `status` (default COMPLETE);
 * resolves that entry. Fails at once when it is COMPLETE or FAILED other than the one awaited
 * (with the entry and the source's last replication log lines), and after `timeoutMs`. After the
 * image is pushed again, its old outcome is still reported until the push is read: pass
 * `failFast: false` then, to wait through it.
 */
export async function waitForReplication(
  source: Region,
  repositoryName: string,
  imageId: ImageIdentifier,
  destination: Destination,
  options: { status?: 'COMPLETE' | 'FAILED'; timeoutMs?: number; creds?: AwsCredentials; failFast?: boolean } = {},
): Promise<ReplicationStatusEntry> {
  const want = options.status ?? 'COMPLETE';
  const what = `${repositoryName}@${imageId.imageDigest ?? imageId.imageTag} to ${destination.region}/${destination.registryId} ${want}`;
  try {
    return await waitFor(
      async () => {
        const entry = (await replicationStatuses(source, repositoryName, imageId, options.creds)).find((s) => s.region === destination.region && s.registryId === destination.registryId);
        if (options.failFast !== false && entry && entry.status !== want && (entry.status === 'COMPLETE' || entry.status === 'FAILED')) {
          throw new Error(`${what}: it is ${JSON.stringify(entry)}`);
        }
        return entry?.status === want ? entry : undefined;
      },
      { timeoutMs: options.timeoutMs ?? 90_000, intervalMs: 200, what },
    );
  } catch (err) {
    const lines = source.logs.filter((l) => l['worker'] === 'replication').slice(-10);
    throw new Error(`${(err as Error).message}\n--- the source's last replication log lines\n${lines.map((l) => JSON.stringify(l)).join('\n')}`, { cause: err });
  }
}

/** An event of the log as GET /v2/_events answers it. */
export interface LoggedEvent {
  seq: number;
  event: { id: string; 'detail-type': string; source: string; account: string; region: string; time: string; resources: string[]; detail: Record<string, any> };
}

/**
 * Every event of the region's log the administrator may see (GET /v2/_events, following Link),
 * of one repository when given, oldest first.
 */
export async function replicationEvents(region: Region, options: { repository?: string; creds?: AwsCredentials } = {}): Promise<LoggedEvent[]> {
  const creds = options.creds ?? ADMIN;
  const events: LoggedEvent[] = [];
  let query = new URLSearchParams({ n: '1000', ...(options.repository ? { repository: options.repository } : {}) }).toString();
  for (;;) {
    const res = await fetch(`${region.baseUrl}/v2/_events?${query}`, { headers: { authorization: basicAuthorization(creds.accessKeyId, creds.secretAccessKey) } });
    if (res.status !== 200) throw new Error(`GET /v2/_events: ${res.status} ${await res.text()}`);
    events.push(...((await res.json()) as { events: LoggedEvent[] }).events);
    const next = /<\/v2\/_events\?([^>]+)>; rel="next"/.exec(res.headers.get('link') ?? '');
    if (!next) return events;
    query = next[1]!;
  }
}
