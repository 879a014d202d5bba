/**
 * Long passes over the metadata (garbage collection, storage accounting, lifecycle listings)
 * read in windows of rows and give the event loop back between windows. node:sqlite answers
 * synchronously and Kysely resolves its promises as microtasks, so a pass that only awaits its
 * queries never lets a request in until it ends, however many queries it makes: on SQLite it
 * must yield on purpose. On PostgreSQL the queries already wait on the network; the windows
 * there keep each query short and each result small.
 */

/** Rows one query of a pass reads at most: a few milliseconds of SQLite's time on a busy machine. */
export const SCAN_WINDOW = 1000;

/**
 * The window for a dialect. PostgreSQL's queries wait on the network rather than hold the event
 * loop, and each costs a round trip, so its windows are larger: with SQLite's, the storage pass
 * over a million references took longer than its 30 s interval (docs/benchmarks.md).
 */
export function scanWindow(dialect: 'sqlite' | 'postgres'): number {
  return dialect === 'sqlite' ? SCAN_WINDOW : 20 * SCAN_WINDOW;
}

/** How long a pass may hold the event loop before it yields. */
const BUDGET_MS = 4;

/** Resolves after the event loop has run its pending I/O and timers. */
export function yieldToEventLoop(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

/**
 * A function that yields to the event loop when the pass has held it for longer than the
 * budget since the last yield, and otherwise resolves at once.
 */
export function pacer(): () => Promise<void> {
  let since = performance.now();
  return async () => {
    if (performance.now() - since < BUDGET_MS) return;
    await yieldToEventLoop();
    since = performance.now();
  };
}
