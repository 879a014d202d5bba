import { open, stat } from 'node:fs/promises';

/** What an input to `berth vulndb import` is, told by its content rather than its name. */
export type InputKind = 'osv-zip' | 'osv-dir' | 'osv-json' | 'debian-tracker-json' | 'bundle';

/** Bytes read to tell: a tar header is 512, and the tracker's first key and value fit easily. */
const SNIFF_BYTES = 4096;

/**
 * The tracker's document opens with a source package whose value opens with an issue id:
 * `{"389-ds-base": {"CVE-2012-0833": {`. An OSV record's first value is never an object keyed
 * by an issue id.
 */
const TRACKER_START = /^\{\s*"(?:[^"\\]|\\.)*"\s*:\s*\{\s*"(?:CVE|TEMP)-/;

export async function sniffInput(input: string): Promise<InputKind> {
  const info = await stat(input).catch((err: NodeJS.ErrnoException) => {
    throw new Error(`${input}: ${err.code === 'ENOENT' ? 'no such file or directory' : err.message}`, { cause: err });
  });
  if (info.isDirectory()) return 'osv-dir';
  if (!info.isFile()) throw new Error(`${input}: not a file or a directory`);
  const handle = await open(input, 'r');
  let head: Buffer;
  try {
    const buf = Buffer.alloc(SNIFF_BYTES);
    const { bytesRead } = await handle.read(buf, 0, SNIFF_BYTES, 0);
    head = buf.subarray(0, bytesRead);
  } finally {
    await handle.close();
  }
  // Local file header, or the end of central directory of an empty zip.
  if (head.length >= 4 && head[0] === 0x50 && head[1] === 0x4b && ((head[2] === 3 && head[3] === 4) || (head[2] === 5 && head[3] === 6))) return 'osv-zip';
  // POSIX ustar magic (and GNU tar's "ustar  "), at offset 257 of the first header.
  if (head.length >= 262 && head.subarray(257, 262).toString('latin1') === 'ustar') return 'bundle';
  const text = head.toString('utf8').replace(/^\uFEFF/, '').trimStart();
  if (text.startsWith('[')) return 'osv-json';
  if (text.startsWith('{')) return TRACKER_START.test(text) ? 'debian-tracker-json' : 'osv-json';
  throw new Error(`${input}: not an OSV all.zip, a directory or file of OSV JSON, a Debian security tracker JSON file or a Berth vulnerability database bundle`);
}
