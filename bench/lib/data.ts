import { createHash, randomFill } from 'node:crypto';
import { open } from 'node:fs/promises';
import { promisify } from 'node:util';

const randomFillAsync = promisify(randomFill) as <T extends NodeJS.ArrayBufferView>(buf: T) => Promise<T>;

/** Write size for generated files: big enough to be quick, small enough to keep memory flat. */
const GEN_CHUNK_BYTES = 4 * 1024 * 1024;

export interface BlobFile {
  path: string;
  digest: string;
  sizeBytes: number;
}

/**
 * Writes `sizeBytes` of random bytes to `path` and returns their sha256 digest. Random data
 * keeps any layer of the stack from compressing or deduplicating it. Streams through one
 * buffer, so a GiB file costs 4 MiB of memory.
 */
export async function writeRandomFile(path: string, sizeBytes: number): Promise<BlobFile> {
  const hash = createHash('sha256');
  const buf = Buffer.allocUnsafe(Math.min(GEN_CHUNK_BYTES, Math.max(1, sizeBytes)));
  const handle = await open(path, 'w');
  try {
    let written = 0;
    while (written < sizeBytes) {
      const n = Math.min(buf.length, sizeBytes - written);
      const chunk = buf.subarray(0, n);
      await randomFillAsync(chunk);
      hash.update(chunk);
      await handle.write(chunk, 0, n);
      written += n;
    }
  } finally {
    await handle.close();
  }
  return { path, digest: `sha256:${hash.digest('hex')}`, sizeBytes };
}

/** Random bytes held in memory, for the small blobs of the image and tag scenarios. */
export async function randomBlob(sizeBytes: number): Promise<{ bytes: Buffer; digest: string }> {
  const bytes = await randomFillAsync(Buffer.allocUnsafe(sizeBytes));
  return { bytes, digest: sha256(bytes) };
}

export function sha256(bytes: Uint8Array): string {
  return `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
}

/** A deterministic PRNG (mulberry32), so layer sizes repeat across runs with the same seed. */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
