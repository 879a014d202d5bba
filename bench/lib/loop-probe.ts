/**
 * Preloaded into the server under test (`node --import ./bench/lib/loop-probe.ts src/main.ts`)
 * by bench/scale.ts: measures how late the server's event loop runs timers, which is how long
 * it could not answer a request. Over the IPC channel the bench sends `reset` (start a window)
 * and `read` (the window's figures); nothing else in the server changes.
 */
import { monitorEventLoopDelay } from 'node:perf_hooks';

const RESOLUTION_MS = 2;
const histogram = monitorEventLoopDelay({ resolution: RESOLUTION_MS });
histogram.enable();

export interface LoopDelay {
  /** The longest the loop was late, in ms, less the sampling interval (so 0 when never late). */
  maxStallMs: number;
  p99StallMs: number;
  samples: number;
}

if (process.send) {
  process.on('message', (message: unknown) => {
    if (message === 'reset') {
      histogram.reset();
      process.send!({ type: 'reset' });
    } else if (message === 'read') {
      const stall = (ns: number) => Math.max(0, ns / 1e6 - RESOLUTION_MS);
      const figures: LoopDelay = { maxStallMs: stall(histogram.max), p99StallMs: stall(histogram.percentile(99)), samples: histogram.count };
      process.send!({ type: 'read', figures });
    }
  });
  // The channel must not keep a server that is asked to stop alive.
  process.channel?.unref();
}
