import { rmSync } from 'node:fs';
import { mkdtemp } from 'node:fs/promises';
import path from 'node:path';

/**
 * A bench's work directory: a new directory under `base` whose name starts with `prefix`.
 * `cleanUp()` removes it unless `keep`; Ctrl-C does the same (the servers the bench started are
 * its children and go with it) and exits with 130.
 */
export async function benchWorkDir(base: string, prefix: string, options: { keep: boolean; log: (message: string) => void }): Promise<{ work: string; cleanUp: () => void }> {
  const work = await mkdtemp(path.join(base, prefix));
  const cleanUp = () => {
    if (!options.keep) rmSync(work, { recursive: true, force: true });
  };
  process.on('SIGINT', () => {
    options.log('interrupted; stopping servers');
    cleanUp();
    process.exit(130);
  });
  return { work, cleanUp };
}
