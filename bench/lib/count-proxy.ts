import net from 'node:net';
import { performance } from 'node:perf_hooks';
import { Transform, type TransformCallback } from 'node:stream';

/**
 * A TCP proxy on 127.0.0.1 that counts the bytes it carries each way, so that a bench can say
 * how much a copier really sent to a destination (HTTP headers and all), whoever the copier is.
 * It understands nothing of HTTP: every connection is piped to the target as it is, so the
 * destination sees the same requests (Host header included) as it would without it.
 */
export interface CountingProxy {
  /** `127.0.0.1:PORT`, for image references. */
  host: string;
  baseUrl: string;
  /** Bytes from clients to the target since the last reset (what was sent to the destination). */
  upstreamBytes(): number;
  /** Bytes from the target back to clients since the last reset. */
  downstreamBytes(): number;
  /** Connections opened since the last reset. */
  connections(): number;
  reset(): void;
  /** Stops listening and closes every connection still open. */
  close(): Promise<void>;
}

export interface CountingProxyOptions {
  /**
   * Caps the bytes from the target back to clients, all connections together, at this rate, as
   * a network link to a distant registry would (default: no cap).
   */
  downstreamBytesPerSecond?: number;
}

/** One link shared by every connection: each chunk leaves once the link has carried the ones before it. */
class LinkThrottle {
  private readonly bytesPerMs: number;
  private nextFreeAtMs = 0;

  constructor(bytesPerSecond: number) {
    this.bytesPerMs = bytesPerSecond / 1000;
  }

  /** How long the chunk waits before it is passed on. */
  delayMs(bytes: number): number {
    const now = performance.now();
    this.nextFreeAtMs = Math.max(now, this.nextFreeAtMs) + bytes / this.bytesPerMs;
    return this.nextFreeAtMs - now;
  }

  stream(): Transform {
    return new Transform({
      transform: (chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback) => {
        const wait = this.delayMs(chunk.length);
        if (wait < 1) callback(null, chunk);
        else setTimeout(() => callback(null, chunk), wait);
      },
    });
  }
}

export async function startCountingProxy(target: { host: string; port: number }, options: CountingProxyOptions = {}): Promise<CountingProxy> {
  const throttle = options.downstreamBytesPerSecond === undefined ? undefined : new LinkThrottle(options.downstreamBytesPerSecond);
  let up = 0;
  let down = 0;
  let opened = 0;
  const sockets = new Set<net.Socket>();
  const server = net.createServer((client) => {
    opened++;
    const upstream = net.connect(target.port, target.host);
    sockets.add(client);
    sockets.add(upstream);
    const end = () => {
      client.destroy();
      upstream.destroy();
      sockets.delete(client);
      sockets.delete(upstream);
    };
    client.on('data', (chunk: Buffer) => (up += chunk.length));
    upstream.on('data', (chunk: Buffer) => (down += chunk.length));
    client.pipe(upstream);
    if (throttle) upstream.pipe(throttle.stream()).pipe(client);
    else upstream.pipe(client);
    client.once('error', end);
    upstream.once('error', end);
    client.once('close', end);
    upstream.once('close', end);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as net.AddressInfo;
  return {
    host: `127.0.0.1:${port}`,
    baseUrl: `http://127.0.0.1:${port}`,
    upstreamBytes: () => up,
    downstreamBytes: () => down,
    connections: () => opened,
    reset: () => {
      up = 0;
      down = 0;
      opened = 0;
    },
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}
