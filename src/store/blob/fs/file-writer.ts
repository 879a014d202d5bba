import type { Hash } from 'node:crypto';
import type { FileHandle } from 'node:fs/promises';
import { finished, type Readable } from 'node:stream';

/**
 * Bytes received but not yet written at which the body is paused, and the most one write takes.
 * An upload thus holds at most about twice this in buffers however fast its client sends.
 */
const PENDING_MAX_BYTES = 4 * 1024 * 1024;

export interface WriteHashedOptions {
  /** Fail with `tooLarge()` as soon as more than this many bytes arrive. */
  maxBytes?: number | undefined;
  tooLarge: (maxBytes: number) => Error;
  /** Called with each chunk's length once the chunk is on its way to the file. */
  onChunk?: ((bytes: number) => void) | undefined;
}

/**
 * Writes `body` to the file at `position` and feeds the same bytes to `hasher`, in one pass over
 * the request's own chunks: no copy, no intermediate stream. A chunk that arrives while no write
 * is in flight is written at once; those that arrive during a write are gathered into the next
 * one (one `pwritev`), so writes grow as the disk falls behind. The body is paused while
 * PENDING_MAX_BYTES wait, so a client faster than the disk meets TCP backpressure rather than
 * growing this process. Resolves with the number of bytes written. On failure, drops the rest of
 * the body and rejects once no write is in flight any more, so the caller may truncate or remove
 * the file at once.
 */
export function writeHashed(handle: FileHandle, position: number, body: Readable, hasher: Hash, options: WriteHashedOptions): Promise<number> {
  const { maxBytes, onChunk } = options;
  return new Promise<number>((resolve, reject) => {
    let pending: Buffer[] = [];
    let pendingBytes = 0;
    let received = 0;
    let offset = position;
    let isWriting = false;
    let isEnded = false;
    let failure: Error | undefined;
    let isSettled = false;

    const settle = () => {
      if (isSettled || isWriting) return;
      if (failure === undefined && !(isEnded && pendingBytes === 0)) return;
      isSettled = true;
      body.off('data', onData);
      stopWatching();
      if (failure !== undefined) reject(failure);
      else resolve(received);
    };

    const fail = (err: Error) => {
      if (failure !== undefined) return;
      failure = err;
      pending = [];
      pendingBytes = 0;
      // The rest of the body is read and dropped, not left unread: the connection stays usable
      // for the error response (pipeline() does the same for a server request). Anything the
      // body reports later adds nothing to this failure.
      body.off('data', onData);
      body.on('error', ignore);
      body.resume();
      settle();
    };

    const flush = () => {
      if (isWriting) return;
      if (failure !== undefined || pendingBytes === 0) {
        settle();
        return;
      }
      const buffers = pending;
      const length = pendingBytes;
      pending = [];
      pendingBytes = 0;
      isWriting = true;
      writeAll(handle, buffers, length, offset).then(
        () => {
          isWriting = false;
          offset += length;
          if (body.isPaused() && !isEnded && failure === undefined) body.resume();
          flush();
        },
        (err: Error) => {
          isWriting = false;
          fail(err);
        },
      );
    };

    const onData = (chunk: Buffer) => {
      if (failure !== undefined) return;
      received += chunk.length;
      if (maxBytes !== undefined && received > maxBytes) {
        fail(options.tooLarge(maxBytes));
        return;
      }
      hasher.update(chunk);
      pending.push(chunk);
      pendingBytes += chunk.length;
      onChunk?.(chunk.length);
      if (!isWriting) flush();
      else if (pendingBytes >= PENDING_MAX_BYTES) body.pause();
    };

    // finished() reports an error or a close before the end (the client went away) as well as
    // the end itself, and copes with a body that has already ended.
    const stopWatching = finished(body, (err) => {
      if (err) {
        fail(err);
        return;
      }
      isEnded = true;
      flush();
    });
    body.on('data', onData);
  });
}

function ignore(): void {}

/** pwritev until every byte is down: a regular file may still take fewer bytes than asked. */
async function writeAll(handle: FileHandle, buffers: Buffer[], length: number, position: number): Promise<void> {
  let rest = buffers;
  let left = length;
  let at = position;
  for (;;) {
    const { bytesWritten } = await handle.writev(rest, at);
    left -= bytesWritten;
    at += bytesWritten;
    if (left === 0) return;
    if (bytesWritten === 0) throw new Error(`the file took no bytes at offset ${at}`);
    let skip = bytesWritten;
    while (skip >= rest[0]!.length) {
      skip -= rest[0]!.length;
      rest = rest.slice(1);
    }
    rest = [rest[0]!.subarray(skip), ...rest.slice(1)];
  }
}
