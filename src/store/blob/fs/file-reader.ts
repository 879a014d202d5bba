import type { FileHandle } from 'node:fs/promises';
import { Readable } from 'node:stream';

/**
 * Streams a byte range of an open file, reading ahead of the consumer: while one chunk is being
 * written to the socket the next is already being read, which fs.ReadStream does not do (it
 * reads only when its single-chunk buffer has drained). Blob pulls are I/O-bound, and the
 * overlap is most of the difference to a sendfile server.
 */
export class FileRangeReader extends Readable {
  private readonly handle: FileHandle;
  private position: number;
  private readonly end: number;
  private readonly chunkBytes: number;
  private reading = false;

  /** Reads [start, end] inclusive; closes the handle when done or destroyed. */
  constructor(handle: FileHandle, start: number, end: number, chunkBytes: number) {
    super({ highWaterMark: chunkBytes * 4 });
    this.handle = handle;
    this.position = start;
    this.end = end;
    this.chunkBytes = chunkBytes;
  }

  override _read(): void {
    if (this.reading) return;
    if (this.position > this.end) {
      this.push(null);
      return;
    }
    this.reading = true;
    const length = Math.min(this.chunkBytes, this.end - this.position + 1);
    this.handle.read(Buffer.allocUnsafe(length), 0, length, this.position).then(
      ({ bytesRead, buffer }) => {
        this.reading = false;
        if (this.destroyed) return;
        if (bytesRead === 0) {
          this.destroy(new Error(`file ended ${this.end - this.position + 1} bytes early`));
          return;
        }
        this.position += bytesRead;
        // push() answers whether there is room for more: if so, read the next chunk at once.
        if (this.push(bytesRead === length ? buffer : buffer.subarray(0, bytesRead))) this._read();
      },
      (err: Error) => {
        this.reading = false;
        this.destroy(err);
      },
    );
  }

  override _destroy(err: Error | null, callback: (error?: Error | null) => void): void {
    this.handle.close().then(
      () => callback(err),
      (closeErr: Error) => callback(err ?? closeErr),
    );
  }
}
