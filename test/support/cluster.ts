import { mkdtemp, rm } from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { DatabaseSync, type SQLInputValue } from 'node:sqlite';
import { backend, freshScaleoutStores } from './backend.ts';
import { startServer, type StartOptions, type TestServer } from './server.ts';

/**
 * Several Berth nodes on shared stores behind a round-robin load balancer that picks a node
 * per request (not per connection), so the requests of one upload land on different nodes. A
 * node the test kills is taken out of the rotation, as a balancer's health check would.
 */
export interface TestCluster {
  /** The balancer's URL, e.g. http://127.0.0.1:41234 */
  baseUrl: string;
  port: number;
  nodes: TestServer[];
  /** How many requests each node served through the balancer. */
  served: number[];
  /** SIGKILLs node i and takes it out of the rotation. */
  kill(i: number): Promise<void>;
  close(): Promise<void>;
}

export async function startCluster(count: number, options: StartOptions & { env: Record<string, string> }): Promise<TestCluster> {
  const nodes: TestServer[] = [];
  // Start one node first so that it alone runs the migrations on an empty store, then the rest
  // together (migrations are safe concurrently too; the tests of the stores prove that).
  nodes.push(await startServer(options));
  nodes.push(...(await Promise.all(Array.from({ length: count - 1 }, () => startServer(options)))));
  const up = nodes.map(() => true);
  const served = nodes.map(() => 0);
  let next = 0;
  const agent = new http.Agent({ keepAlive: true, maxSockets: 64 });
  const pick = (): number => {
    for (let i = 0; i < nodes.length; i++) {
      const n = (next + i) % nodes.length;
      if (up[n]) {
        next = n + 1;
        return n;
      }
    }
    return -1;
  };
  const balancer = http.createServer((req, res) => {
    const n = pick();
    if (n < 0) {
      res.writeHead(503).end();
      return;
    }
    served[n]!++;
    const target = nodes[n]!;
    const upstream = http.request(
      { host: '127.0.0.1', port: target.port, method: req.method, path: req.url, headers: req.headers, agent },
      (ures) => {
        res.writeHead(ures.statusCode ?? 502, ures.headers);
        ures.pipe(res);
      },
    );
    upstream.on('error', () => {
      if (!res.headersSent) res.writeHead(502).end();
      else res.destroy();
    });
    req.pipe(upstream);
  });
  await new Promise<void>((resolve) => balancer.listen(0, '127.0.0.1', resolve));
  const port = (balancer.address() as AddressInfo).port;
  return {
    baseUrl: `http://127.0.0.1:${port}`,
    port,
    nodes,
    served,
    async kill(i) {
      up[i] = false;
      await nodes[i]!.kill('SIGKILL');
    },
    async close() {
      await new Promise<void>((resolve) => balancer.close(() => resolve()));
      balancer.closeAllConnections();
      agent.destroy();
      await Promise.all(nodes.map((n) => n.close()));
    },
  };
}

/** One metadata store and one blob store for every node of a cluster, and a way to look inside. */
export interface SharedStores {
  /** BERTH_METADATA_URL and BERTH_BLOB_URL (and S3 settings) for every node. */
  env: Record<string, string>;
  /**
   * Rows of a query straight against the metadata store, with PostgreSQL's `$1` placeholders
   * (translated for SQLite): what the tests of cluster behaviour read of leases and records.
   */
  query<R>(sql: string, params: unknown[]): Promise<R[]>;
  cleanup(): Promise<void>;
}

/** Shared stores on the test backend: a SQLite file and a blob directory, or a fresh PostgreSQL database and S3 prefix. */
export async function sharedStores(prefix: string): Promise<SharedStores> {
  if (backend === 'embedded') {
    const dir = await mkdtemp(path.join(tmpdir(), `${prefix}-`));
    const file = path.join(dir, 'metadata.db');
    return {
      env: { BERTH_METADATA_URL: `sqlite:${file}`, BERTH_BLOB_URL: `file:${path.join(dir, 'blobs')}` },
      async query<R>(sql: string, params: unknown[]): Promise<R[]> {
        const db = new DatabaseSync(file, { readOnly: true });
        try {
          return db.prepare(sql.replace(/\$(\d+)/g, '?$1')).all(...(params as SQLInputValue[])).map((row) => ({ ...row }) as R);
        } finally {
          db.close();
        }
      },
      cleanup: () => rm(dir, { recursive: true, force: true }),
    };
  }
  const stores = await freshScaleoutStores();
  return { env: stores.env, query: (sql, params) => stores.query(sql, params), cleanup: () => stores.drop() };
}
