import type { Scenario } from './scenarios.ts';
import { SERVER_LABELS, type ServerName } from './servers.ts';

export interface Measurement {
  rep: number;
  scenario: string;
  server: ServerName;
  values: Record<string, number>;
  /** CPU the server's process tree used during the measurement. */
  serverCpuSeconds: number;
  /** CPU this benchmark process used meanwhile (the client side of push and pull). */
  clientCpuSeconds: number;
  wallSeconds: number;
}

export interface Row {
  id: string;
  label: string;
  unit: string;
  better: 'higher' | 'lower';
  samples: Partial<Record<ServerName, number[]>>;
  medians: Partial<Record<ServerName, number>>;
}

export const SERVER_ORDER: ServerName[] = ['berth', 'distribution', 'nginx'];

/** The nearest-rank percentile `p` (0-100) of the values; NaN when there are none. */
export function percentile(values: number[], p: number): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

export function median(values: number[]): number {
  const s = [...values].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 === 1 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

export function makeRow(id: string, label: string, unit: string, better: 'higher' | 'lower', samples: Partial<Record<ServerName, number[]>>): Row {
  const medians: Partial<Record<ServerName, number>> = {};
  for (const name of SERVER_ORDER) {
    const xs = samples[name];
    if (xs && xs.length > 0) medians[name] = median(xs);
  }
  return { id, label, unit, better, samples, medians };
}

/** One row per metric of every scenario, from the measurements of all repetitions. */
export function scenarioRows(list: Scenario[], measurements: Measurement[]): Row[] {
  const rows: Row[] = [];
  for (const scenario of list) {
    for (const metric of scenario.metrics) {
      const samples: Partial<Record<ServerName, number[]>> = {};
      for (const m of measurements) {
        if (m.scenario !== scenario.id) continue;
        const v = m.values[metric.key];
        if (v === undefined) continue;
        (samples[m.server] ??= []).push(v);
      }
      rows.push(makeRow(`${scenario.id}.${metric.key}`, metric.label, metric.unit, metric.better, samples));
    }
  }
  return rows;
}

export function formatNumber(v: number | undefined): string {
  if (v === undefined || !Number.isFinite(v)) return 'n/a';
  const abs = Math.abs(v);
  if (abs >= 100) return Math.round(v).toLocaleString('en-US');
  if (abs >= 10) return v.toFixed(1);
  if (abs >= 1) return v.toFixed(2);
  return v.toFixed(3);
}

export function ratio(a: number | undefined, b: number | undefined): number | undefined {
  if (a === undefined || b === undefined || b === 0) return undefined;
  return a / b;
}

function formatRatio(r: number | undefined): string {
  return r === undefined ? 'n/a' : `${r.toFixed(2)}x`;
}

export function markdownTable(rows: Row[]): string {
  const out = [
    '| Figure | Unit | Better | Berth | Distribution | nginx | Berth/Distribution | Berth/nginx |',
    '|---|---|---|--:|--:|--:|--:|--:|',
  ];
  for (const r of rows) {
    const m = r.medians;
    out.push(`| ${r.label} | ${r.unit} | ${r.better} | ${formatNumber(m.berth)} | ${formatNumber(m.distribution)} | ${formatNumber(m.nginx)} | ${formatRatio(ratio(m.berth, m.distribution))} | ${formatRatio(ratio(m.berth, m.nginx))} |`);
  }
  return out.join('\n');
}

/** Every repetition's value, to judge the spread behind each median. */
export function samplesList(rows: Row[]): string {
  const out: string[] = [];
  for (const r of rows) {
    const parts = SERVER_ORDER.filter((n) => r.samples[n]?.length).map((n) => `${SERVER_LABELS[n]} ${r.samples[n]!.map((v) => formatNumber(v)).join(' / ')}`);
    if (parts.length > 0) out.push(`- ${r.label} (${r.unit}): ${parts.join('; ')}`);
  }
  return out.join('\n');
}

/** CPU seconds the server (and the bench client) used per scenario: where the time goes. */
export function cpuTable(list: Scenario[], measurements: Measurement[]): string {
  const out = [
    '| Scenario | Berth CPU s | Distribution CPU s | nginx CPU s | client CPU s (Berth run) | wall s (Berth run) |',
    '|---|--:|--:|--:|--:|--:|',
  ];
  for (const s of list) {
    const of = (server: ServerName, pick: (m: Measurement) => number) => {
      const xs = measurements.filter((m) => m.scenario === s.id && m.server === server).map(pick);
      return xs.length > 0 ? median(xs) : undefined;
    };
    out.push(`| ${s.id} | ${formatNumber(of('berth', (m) => m.serverCpuSeconds))} | ${formatNumber(of('distribution', (m) => m.serverCpuSeconds))} | ${formatNumber(of('nginx', (m) => m.serverCpuSeconds))} | ${formatNumber(of('berth', (m) => m.clientCpuSeconds))} | ${formatNumber(of('berth', (m) => m.wallSeconds))} |`);
  }
  return out.join('\n');
}

export interface TargetResult {
  target: string;
  figure: string;
  value: string;
  isMet: boolean | undefined;
}

/** The targets of the performance issue, checked against the medians. */
export function checkTargets(rows: Row[]): TargetResult[] {
  const byId = new Map(rows.map((r) => [r.id, r]));
  const results: TargetResult[] = [];
  const check = (target: string, id: string, other: ServerName, test: (r: number) => boolean) => {
    const row = byId.get(id);
    if (!row) return;
    const r = ratio(row.medians.berth, row.medians[other]);
    results.push({ target, figure: `${row.label} (${row.unit})`, value: r === undefined ? 'n/a' : `${r.toFixed(2)}x ${SERVER_LABELS[other]}`, isMet: r === undefined ? undefined : test(r) });
  };
  for (const id of ['pull-single.mbps', 'pull-concurrent.mbps', 'pull-single-curl.mbps', 'pull-concurrent-curl.mbps']) check('Blob pull >= 0.9x nginx', id, 'nginx', (r) => r >= 0.9);
  for (const id of ['push-monolithic.mbps', 'push-chunked.mbps']) check('Blob push >= 1.3x Distribution', id, 'distribution', (r) => r >= 1.3);
  for (const row of rows) {
    const m = /^manifest-(get|head)-c(\d+)\.(rps|p99Ms)$/.exec(row.id);
    if (!m) continue;
    if (m[3] === 'rps') check('Manifest GET/HEAD >= 3x Distribution req/s', row.id, 'distribution', (r) => r >= 3);
    else check('Manifest GET/HEAD p99 <= 1/3 of Distribution', row.id, 'distribution', (r) => r <= 1 / 3);
  }
  const mem = byId.get('upload-memory.peakMiB');
  if (mem && mem.medians.berth !== undefined) {
    results.push({ target: 'Peak memory during a 1 GiB upload < 100 MiB', figure: `${mem.label} (MiB)`, value: `${formatNumber(mem.medians.berth)} MiB`, isMet: mem.medians.berth < 100 });
  }
  return results;
}

export function targetsTable(results: TargetResult[]): string {
  const out = ['| Target | Figure | Berth | Result |', '|---|---|--:|---|'];
  for (const t of results) out.push(`| ${t.target} | ${t.figure} | ${t.value} | ${t.isMet === undefined ? 'n/a' : t.isMet ? 'met' : 'missed'} |`);
  return out.join('\n');
}
