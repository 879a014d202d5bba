import type { FileFacts } from '../types.ts';

/** A tar entry as the layer walker hands it to analysers. */
export interface EntryInfo {
  /** Normalised: relative to the root, no leading slash, no `.` or `..` parts. */
  path: string;
  /** Bytes, as the tar header says. */
  size: number;
  /** Permission bits (e.g. 0o755). */
  mode: number;
}

/** How an analyser receives a file's content: the bytes, or a private temporary file (random access). */
export type AnalyserInput = { kind: 'buffer'; data: Buffer } | { kind: 'file'; path: string };

/**
 * One kind of file the scanner understands (a dpkg status file, a Go binary, a jar...). The
 * layer walker (layer.ts) reads each regular file once: it asks every analyser whether it
 * wants the file, and reads the content only when one does. Analysers never see symlinks,
 * hard links, devices or directories: nothing an image says can make them read outside it.
 */
export interface FileAnalyser {
  readonly name: string;
  /** Cheap, by path, size and mode alone; called for every regular file of every layer. */
  wants(entry: EntryInfo): boolean;
  /**
   * An optional second look at the first bytes (at most 512) of a file `wants` accepted, for
   * analysers that recognise content (ELF magic, say); the file is read only when this says yes.
   */
  wantsHead?(entry: EntryInfo, head: Buffer): boolean;
  /** 'buffer' for small text files; 'file' for formats that need random access (SQLite, zip, ELF). */
  readonly input: 'buffer' | 'file';
  /**
   * For 'file' analysers that can also read the bytes from memory: files up to this size are
   * handed over as a buffer rather than written to a temporary file and read back.
   */
  readonly bufferUpToBytes?: number;
  /** Larger files are not read: `tooLarge` says whether that fails the scan or is noted and skipped. */
  readonly maxBytes: number;
  readonly tooLarge: 'fail' | 'skip';
  /**
   * The facts the file gives. May reject with an Error whose message a person understands
   * (it becomes the scan's description); return `{}` for a file that turned out to hold nothing.
   * `tempDir` is a private directory the analyser may write under (nested archives), emptied after.
   */
  analyse(entry: EntryInfo, input: AnalyserInput, context: { tempDir: string; signal: AbortSignal }): Promise<FileFacts>;
}

/** An analysis that must stop the scan: the message is the scan's description. */
export class ScanInputError extends Error {
  override readonly name = 'ScanInputError';
}
