import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { ConfigError, loadConfig } from './config/config.ts';
import { createLogger } from './log/logger.ts';
import { redactUrl, StoreConfigError } from './store/open.ts';
import { startBerth } from './app.ts';

type GcFunction = (options: { type: 'minor' | 'major' }) => void;

/**
 * V8's `gc()`, without running the whole process with --expose-gc: the flag is set just long
 * enough to create one context that has the function. Undefined if this V8 does not offer it.
 */
function garbageCollector(): GcFunction | undefined {
  setFlagsFromString('--expose-gc');
  try {
    return runInNewContext('typeof gc === "function" ? gc : undefined') as GcFunction | undefined;
  } finally {
    setFlagsFromString('--no-expose-gc');
  }
}

/** Composition root: config, then stores and server, then signals. */
async function main(): Promise<void> {
  let config;
  try {
    config = loadConfig({ argv: process.argv.slice(2) });
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`berth: configuration error: ${err.message}\n`);
      process.exit(2);
    }
    throw err;
  }
  const log = createLogger({ level: config.log.level });
  const gc = garbageCollector();
  let berth;
  try {
    berth = await startBerth(config, log, { collectYoungGarbage: gc && (() => gc({ type: 'minor' })) });
  } catch (err) {
    if (err instanceof StoreConfigError || (err as Error).name === 'IdentityConflictError' || (err as Error).name === 'MigrationError' || (err as NodeJS.ErrnoException).code === 'EADDRINUSE' || (err as NodeJS.ErrnoException).code === 'EACCES') {
      process.stderr.write(`berth: cannot start: ${(err as Error).message}\n`);
      process.exit(1);
    }
    throw err;
  }
  let closing = false;
  const shutdown = (signal: string) => {
    if (closing) return;
    closing = true;
    log.info({ signal }, 'shutting down');
    const force = setTimeout(() => {
      log.warn('in-flight requests did not finish in time; closing connections');
      process.exit(0);
    }, config.server.shutdownGraceSeconds * 1000);
    force.unref();
    berth.close().then(
      () => process.exit(0),
      (err: unknown) => {
        log.error({ err }, 'error while shutting down');
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', () => shutdown('SIGTERM'));
  process.on('SIGINT', () => shutdown('SIGINT'));
  // Announce readiness only once the signal handlers are in place: a supervisor may stop us
  // the moment it reads this line.
  log.info({ url: berth.url, ...(berth.metricsUrl ? { metricsUrl: berth.metricsUrl } : {}), dataDir: config.dataDir, metadataUrl: redactUrl(config.metadataUrl), blobUrl: config.blobUrl }, 'listening');
  if (process.stderr.isTTY) process.stderr.write(`Berth is listening on ${berth.url} (data in ${config.dataDir})\n`);
}

await main();
