/**
 * The bounds on the work one layer may cause (issue 13: "a malicious layer with a 10 GB file,
 * a tar bomb or a path-traversal entry must not hurt the node"). Each refusal is a
 * ScanInputError whose message names the limit, so the scan's description says what to raise.
 */
export interface ScanLimits {
  /** Uncompressed tar bytes per layer; beyond it the layer is refused. */
  maxUncompressedBytes: number;
  /** Tar entries per layer (files, directories, links, whiteouts). */
  maxEntries: number;
  /**
   * Uncompressed/compressed bytes above which a layer is refused as a decompression bomb, once
   * its uncompressed size has passed `ratioCheckAfterBytes`.
   */
  maxCompressionRatio: number;
  /**
   * Below this uncompressed size the ratio is not checked: small layers of repetitive text or
   * zeros compress far beyond any sensible ratio, and they cost nothing to read.
   */
  ratioCheckAfterBytes: number;
  /** Bytes of one entry's path (after pax and GNU long names), as Linux's PATH_MAX. */
  maxPathBytes: number;
}

const GiB = 1024 ** 3;

/**
 * Why these numbers. Real layers: the largest in common use (CUDA, ML frameworks) are a few GiB
 * uncompressed, so 16 GiB leaves room while keeping a bomb's cost to seconds of CPU. A million
 * entries is ten times a full desktop distribution. Compression ratio: text and binaries compress
 * 2:1 to 10:1 with gzip or zstd, and a whole layer rarely passes 20:1; what reaches hundreds to one
 * is long runs of zeros, in practice the sparse /var/log/lastlog that `useradd` writes for a large
 * UID. gzip cannot pass about 1032:1 at all, zstd can reach many thousands. So 200:1, checked only
 * past 1 GiB, refuses a bomb after one GiB of work instead of sixteen and touches only layers that
 * are mostly zeros; an operator with such a layer raises the limit (the message names it).
 */
export const defaultScanLimits: Readonly<ScanLimits> = Object.freeze({
  maxUncompressedBytes: 16 * GiB,
  maxEntries: 1_000_000,
  maxCompressionRatio: 200,
  ratioCheckAfterBytes: 1 * GiB,
  maxPathBytes: 4096,
});

/** A size for people: "512 bytes", "64 MiB", "1.5 GiB". */
export function formatBytes(bytes: number): string {
  if (bytes < 1024) return `${bytes} bytes`;
  const units = ['KiB', 'MiB', 'GiB', 'TiB', 'PiB'];
  let value = bytes / 1024;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  const rounded = value >= 100 ? Math.round(value).toString() : value.toFixed(1).replace(/\.0$/, '');
  return `${rounded} ${units[unit]}`;
}
