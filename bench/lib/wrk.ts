import { writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { runTool } from './proc.ts';

export const WRK_BIN = 'wrk';

export interface WrkOptions {
  url: string;
  method: 'GET';
  headers: Record<string, string>;
  connections: number;
  durationSeconds: number;
  /** Where the generated Lua script is written. */
  scriptDir: string;
}

/** What a load generator reports, whichever one ran. */
export interface LoadResult {
  tool: 'wrk' | 'ab';
  requestsPerSecond: number;
  requests: number;
  p50Ms: number;
  p75Ms: number;
  p90Ms: number;
  p99Ms: number;
  non2xx: number;
  socketErrors: number;
  threads: number;
  raw: string;
}

function luaString(s: string): string {
  return `"${s.replace(/\\/g, '\\\\').replace(/"/g, '\\"')}"`;
}

/** Milliseconds from one of wrk's duration strings: "812.00us", "1.21ms", "2.00s", "1.50m". */
export function parseWrkDuration(text: string): number {
  const m = /^([\d.]+)(us|ms|s|m|h)$/.exec(text.trim());
  if (!m) throw new Error(`wrk duration ${JSON.stringify(text)} not understood`);
  const factor = { us: 0.001, ms: 1, s: 1000, m: 60_000, h: 3_600_000 }[m[2] as 'us' | 'ms' | 's' | 'm' | 'h'];
  return Number(m[1]) * factor;
}

/** Reads requests/s, the --latency percentiles and the error lines from wrk's report. */
export function parseWrkOutput(raw: string, threads: number): LoadResult {
  const percentile = (p: number) => {
    const m = new RegExp(`^\\s+${p}%\\s+(\\S+)\\s*$`, 'm').exec(raw);
    if (!m) throw new Error(`wrk output has no ${p}% latency line:\n${raw}`);
    return parseWrkDuration(m[1]!);
  };
  const rps = /^Requests\/sec:\s+([\d.]+)/m.exec(raw);
  if (!rps) throw new Error(`wrk output has no Requests/sec line:\n${raw}`);
  const requests = /^\s+(\d+) requests in /m.exec(raw);
  const non2xx = /Non-2xx or 3xx responses:\s+(\d+)/.exec(raw);
  const sock = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(raw);
  return {
    tool: 'wrk',
    requestsPerSecond: Number(rps[1]),
    requests: requests ? Number(requests[1]) : 0,
    p50Ms: percentile(50),
    p75Ms: percentile(75),
    p90Ms: percentile(90),
    p99Ms: percentile(99),
    non2xx: non2xx ? Number(non2xx[1]) : 0,
    socketErrors: sock ? Number(sock[1]) + Number(sock[2]) + Number(sock[3]) + Number(sock[4]) : 0,
    threads,
    raw,
  };
}

/**
 * One wrk run. The Lua script sets the method and headers. Only GET: wrk cannot do HEAD (see
 * ab.ts).
 * Threads: one per core at most, never more than connections; wrk shares the machine with the
 * server under test, which the report says.
 */
export async function runWrk(options: WrkOptions): Promise<LoadResult> {
  const threads = Math.max(1, Math.min(options.connections, os.availableParallelism()));
  const lines = [`wrk.method = ${luaString(options.method)}`];
  for (const [k, v] of Object.entries(options.headers)) lines.push(`wrk.headers[${luaString(k)}] = ${luaString(v)}`);
  const script = path.join(options.scriptDir, `wrk-${options.method.toLowerCase()}.lua`);
  await writeFile(script, lines.join('\n') + '\n');
  const args = ['-t', String(threads), '-c', String(options.connections), '-d', `${options.durationSeconds}s`, '--timeout', '10s', '--latency', '-s', script, options.url];
  const raw = await runTool(WRK_BIN, args);
  return parseWrkOutput(raw, threads);
}
