/**
 * Random access to an analyser's input, file or buffer, for the binary formats (ELF, the
 * BerkeleyDB rpm database) that are read a few pieces at a time rather than whole.
 */
import { open } from 'node:fs/promises';
import type { AnalyserInput } from './analyser.ts';
import { ScanInputError } from './analyser.ts';

export interface ByteSource {
  readonly size: number;
  /** Exactly `length` bytes at `offset`; the caller has checked the range against `size`. */
  read(offset: number, length: number): Promise<Buffer>;
}

export function bufferSource(data: Buffer): ByteSource {
  return {
    size: data.length,
    read: async (offset, length) => data.subarray(offset, offset + length),
  };
}

/** Opens the input as a ByteSource; `close` must be called. A file is read in place, never whole. */
export async function openSource(input: AnalyserInput): Promise<{ source: ByteSource; close(): Promise<void> }> {
  if (input.kind === 'buffer') return { source: bufferSource(input.data), close: async () => {} };
  const handle = await open(input.path, 'r');
  try {
    const { size } = await handle.stat();
    const source: ByteSource = {
      size,
      read: async (offset, length) => {
        const out = Buffer.alloc(length);
        let done = 0;
        while (done < length) {
          const { bytesRead } = await handle.read(out, done, length - done, offset + done);
          if (bytesRead === 0) throw new ScanInputError('file shrank while it was read');
          done += bytesRead;
        }
        return out;
      },
    };
    return { source, close: () => handle.close() };
  } catch (err) {
    await handle.close();
    throw err;
  }
}

/**
 * Bytes [offset, offset+length) of the source; a range outside it throws ScanInputError
 * "<format>: <what> lies outside the file", as offsets read from a file may be anything.
 */
export async function readRange(source: ByteSource, offset: number, length: number, format: string, what: string): Promise<Buffer> {
  if (!Number.isSafeInteger(offset) || !Number.isSafeInteger(length) || offset < 0 || length < 0 || offset + length > source.size) {
    throw new ScanInputError(`${format}: ${what} lies outside the file`);
  }
  return length === 0 ? Buffer.alloc(0) : source.read(offset, length);
}
