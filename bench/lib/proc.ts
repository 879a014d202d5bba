import { spawn, spawnSync } from 'node:child_process';
import { readFileSync, readdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';

/**
 * Memory and CPU of a server's process tree, read from /proc. nginx is a master and its
 * workers; Berth and Distribution are one process each, but the tree is walked for all three
 * so the figures mean the same thing everywhere.
 */

/** Clock ticks per second for /proc/PID/stat times; 100 on every Linux this runs on. */
const TICKS_PER_SECOND = 100;

/** The pid and all its descendants that are still alive. */
export function processTree(pid: number): number[] {
  const out: number[] = [];
  const stack = [pid];
  while (stack.length > 0) {
    const p = stack.pop()!;
    let tasks: string[];
    try {
      tasks = readdirSync(`/proc/${p}/task`);
    } catch {
      continue; // exited
    }
    out.push(p);
    for (const t of tasks) {
      try {
        for (const c of readFileSync(`/proc/${p}/task/${t}/children`, 'utf8').split(' ')) {
          if (c.trim() !== '') stack.push(Number(c));
        }
      } catch {
        // thread exited meanwhile
      }
    }
  }
  return out;
}

function statusKiB(pid: number, field: 'VmRSS' | 'VmHWM' | 'RssAnon'): number {
  try {
    const m = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) : 0;
  } catch {
    return 0;
  }
}

/** Resident memory of the tree now, in bytes. */
export function treeRssBytes(pid: number): number {
  return processTree(pid).reduce((sum, p) => sum + statusKiB(p, 'VmRSS') * 1024, 0);
}

/**
 * Anonymous (private) resident memory of the tree now, in bytes: RSS less the file-backed pages,
 * which for Node are mostly its own executable's code (clean, shared, reclaimable).
 */
export function treeAnonRssBytes(pid: number): number {
  return processTree(pid).reduce((sum, p) => sum + statusKiB(p, 'RssAnon') * 1024, 0);
}

/**
 * Sum over the tree of each process's peak resident memory (VmHWM) since the last reset, in
 * bytes. For one process this is exact; for nginx it bounds the true peak from above, by the
 * few MiB its master uses.
 */
export function treePeakRssBytes(pid: number): number {
  return processTree(pid).reduce((sum, p) => sum + statusKiB(p, 'VmHWM') * 1024, 0);
}

/** Resets VmHWM to the current RSS for every process in the tree (proc(5), clear_refs value 5). */
export function resetPeakRss(pid: number): void {
  for (const p of processTree(pid)) {
    try {
      writeFileSync(`/proc/${p}/clear_refs`, '5');
    } catch {
      // exited, or a kernel without the feature: the polled peak still stands
    }
  }
}

/** User plus system CPU time the tree has used so far, in seconds. */
export function treeCpuSeconds(pid: number): number {
  let ticks = 0;
  for (const p of processTree(pid)) {
    try {
      const stat = readFileSync(`/proc/${p}/stat`, 'utf8');
      // Fields after the parenthesised command name; utime and stime are fields 14 and 15.
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      ticks += Number(fields[11]) + Number(fields[12]);
    } catch {
      // exited
    }
  }
  return ticks / TICKS_PER_SECOND;
}

/**
 * Polls the tree's RSS while `fn` runs and returns the highest sum seen, together with the
 * tree's VmHWM sum (reset when the call starts), whichever is larger. Polling catches peaks
 * that are spread over processes; VmHWM catches spikes shorter than the poll interval.
 */
export async function peakRssDuring<T>(pid: number, fn: () => Promise<T>, intervalMs = 50): Promise<{ result: T; peakRssBytes: number; startRssBytes: number; peakAnonBytes: number }> {
  resetPeakRss(pid);
  const startRssBytes = treeRssBytes(pid);
  let polled = startRssBytes;
  // The kernel keeps no peak of anonymous memory: this one is polled only.
  let peakAnonBytes = treeAnonRssBytes(pid);
  const sample = () => {
    polled = Math.max(polled, treeRssBytes(pid));
    peakAnonBytes = Math.max(peakAnonBytes, treeAnonRssBytes(pid));
  };
  const timer = setInterval(sample, intervalMs);
  try {
    const result = await fn();
    sample();
    return { result, peakRssBytes: Math.max(polled, treePeakRssBytes(pid)), startRssBytes, peakAnonBytes };
  } finally {
    clearInterval(timer);
  }
}

/** Runs a load tool to completion and resolves its stdout; rejects with its output if it exits non-zero. */
export function runTool(bin: string, args: readonly string[]): Promise<string> {
  return new Promise<string>((resolve, reject) => {
    const child = spawn(bin, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (c: Buffer) => (out += c.toString()));
    child.stderr.on('data', (c: Buffer) => (err += c.toString()));
    child.once('error', reject);
    child.once('exit', (code) => (code === 0 ? resolve(out) : reject(new Error(`${path.basename(bin)} exited ${code}: ${err || out}`))));
  });
}

/** What a command printed (stdout, then stderr), trimmed: for versions and commits in reports. */
export function commandOutput(file: string, args: string[]): string {
  const r = spawnSync(file, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  return `${r.stdout ?? ''}${r.stderr ?? ''}`.trim();
}
