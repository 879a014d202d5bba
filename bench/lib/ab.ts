import { readFile } from 'node:fs/promises';
import path from 'node:path';
import type { LoadResult } from './wrk.ts';
import { runTool } from './proc.ts';

export const AB_BIN = 'ab';

export interface AbOptions {
  url: string;
  headers: Record<string, string>;
  connections: number;
  durationSeconds: number;
  /** Where ab writes its percentile CSV. */
  scratchDir: string;
}

/**
 * HEAD load with ApacheBench, because wrk (4.1 and upstream) cannot do HEAD: its HTTP parser
 * waits for a body the response never sends (wg/wrk#198). ab is single-threaded and speaks
 * HTTP/1.0 with keep-alive; its CSV gives every percentile to the microsecond.
 */
export async function runAbHead(options: AbOptions): Promise<LoadResult> {
  const csv = path.join(options.scratchDir, `ab-head-c${options.connections}.csv`);
  // -t alone caps requests at 50,000; -n after it lifts the cap (ab sizes an array by it).
  const maxRequests = Math.max(200_000, options.durationSeconds * 150_000);
  const args = ['-i', '-k', '-q', '-r', '-s', '10', '-c', String(options.connections), '-t', String(options.durationSeconds), '-n', String(maxRequests), '-e', csv];
  for (const [k, v] of Object.entries(options.headers)) args.push('-H', `${k}: ${v}`);
  args.push(options.url);
  const raw = await runTool(AB_BIN, args);
  const percentiles = new Map<number, number>();
  for (const line of (await readFile(csv, 'utf8')).split('\n').slice(1)) {
    const [p, ms] = line.split(',');
    if (p !== undefined && ms !== undefined) percentiles.set(Number(p), Number(ms));
  }
  const pick = (p: number) => {
    const v = percentiles.get(p);
    if (v === undefined) throw new Error(`ab CSV has no ${p}th percentile`);
    return v;
  };
  const num = (re: RegExp) => Number(re.exec(raw)?.[1] ?? 0);
  const rps = /^Requests per second:\s+([\d.]+)/m.exec(raw);
  if (!rps) throw new Error(`ab output has no "Requests per second" line:\n${raw}`);
  return {
    tool: 'ab',
    requestsPerSecond: Number(rps[1]),
    requests: num(/^Complete requests:\s+(\d+)/m),
    p50Ms: pick(50),
    p75Ms: pick(75),
    p90Ms: pick(90),
    p99Ms: pick(99),
    non2xx: num(/^Non-2xx responses:\s+(\d+)/m),
    socketErrors: num(/^Failed requests:\s+(\d+)/m),
    threads: 1,
    raw,
  };
}
