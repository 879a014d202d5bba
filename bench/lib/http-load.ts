/**
 * A load generator run as a process of its own by bench/scale.ts (wrk and ab are not on every
 * machine, and wrk cannot send HEAD): `connections` keep-alive connections each send requests
 * back to back for `durationMs` after `warmupMs`, cycling through `paths` from a random start.
 * Reads its settings from the JSON file named by argv[2]; prints its figures as JSON on stdout.
 */
import { readFileSync } from 'node:fs';
import http from 'node:http';
import { performance } from 'node:perf_hooks';

export interface LoadSettings {
  baseUrl: string;
  method: 'GET' | 'HEAD';
  paths: string[];
  headers: Record<string, string>;
  connections: number;
  durationMs: number;
  warmupMs: number;
}

export interface LoadFigures {
  requests: number;
  requestsPerSecond: number;
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
  errors: number;
  /** Status codes other than 200, by code. */
  statuses: Record<string, number>;
}

function percentile(sorted: Float64Array, p: number): number {
  if (sorted.length === 0) return 0;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

async function main(): Promise<void> {
  const s = JSON.parse(readFileSync(process.argv[2]!, 'utf8')) as LoadSettings;
  const url = new URL(s.baseUrl);
  const agent = new http.Agent({ keepAlive: true, maxSockets: s.connections });
  const latencies: number[] = [];
  const statuses: Record<string, number> = {};
  let errors = 0;
  const start = performance.now();
  const measureFrom = start + s.warmupMs;
  const end = measureFrom + s.durationMs;
  const one = (path: string) =>
    new Promise<void>((resolve) => {
      const t0 = performance.now();
      const req = http.request({ host: url.hostname, port: url.port, path, method: s.method, headers: s.headers, agent }, (res) => {
        res.resume();
        res.once('end', () => {
          const t1 = performance.now();
          if (t0 >= measureFrom && t1 <= end) {
            latencies.push(t1 - t0);
            if (res.statusCode !== 200) statuses[String(res.statusCode)] = (statuses[String(res.statusCode)] ?? 0) + 1;
          }
          resolve();
        });
      });
      req.once('error', () => {
        errors++;
        resolve();
      });
      req.end();
    });
  const worker = async (w: number) => {
    let i = Math.floor(Math.random() * s.paths.length) + w;
    while (performance.now() < end) await one(s.paths[i++ % s.paths.length]!);
  };
  await Promise.all(Array.from({ length: s.connections }, (_, w) => worker(w)));
  agent.destroy();
  const sorted = Float64Array.from(latencies).sort();
  const figures: LoadFigures = {
    requests: sorted.length,
    requestsPerSecond: sorted.length / (s.durationMs / 1000),
    p50Ms: percentile(sorted, 50),
    p99Ms: percentile(sorted, 99),
    maxMs: sorted.length > 0 ? sorted[sorted.length - 1]! : 0,
    errors,
    statuses,
  };
  process.stdout.write(JSON.stringify(figures) + '\n');
}

await main();
