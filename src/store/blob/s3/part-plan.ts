/**
 * How a commit lays an upload's chunks out as the parts of one S3 multipart upload. S3 wants
 * every part but the last to hold at least 5 MiB and none more than 5 GiB, and at most 10,000
 * parts ("Amazon S3 multipart upload limits"); chunks arrive in whatever sizes clients send.
 *
 * A part is either copied server-side from one chunk (UploadPartCopy: no bytes pass through
 * Berth) or streamed: its bytes are read from the chunks, which the commit reads anyway to hash
 * them, and uploaded. Long stretches of one chunk are copied; everything else is streamed, in
 * parts of `partBytes`, a streamed part that a copy follows being first topped up to the minimum
 * from the start of the copied chunk. CNCF Distribution's S3 driver meets the same limit the
 * other way round, by completing and restarting its multipart upload whenever a write would
 * leave a short part behind.
 */

export const MiB = 1024 * 1024;
export const GiB = 1024 * MiB;
export const MIN_PART_BYTES = 5 * MiB;
export const MAX_PART_BYTES = 5 * GiB;
export const MAX_PARTS = 10_000;

/** A stretch of the blob, `[start, end)`, held by one chunk that starts at `start`. */
export interface PlanSegment {
  start: number;
  end: number;
}

export interface PlannedPart {
  partNumber: number;
  /** Blob offsets, `[start, end)`. */
  start: number;
  end: number;
  /** Index of the segment to copy the part from, server-side; absent for a streamed part. */
  copyOf?: number;
}

export interface PlanOptions {
  /** Size of streamed parts (the last may be shorter). At least `minPartBytes`. */
  partBytes: number;
  /** The shortest stretch of one chunk worth copying server-side; Infinity streams everything. */
  copyThresholdBytes: number;
  minPartBytes?: number;
  maxPartBytes?: number;
}

/**
 * Parts, numbered from 1, that cover the segments (contiguous, in order) exactly once. Every
 * part but the last is at least `minPartBytes`, none is over `maxPartBytes` (`partBytes` for
 * streamed ones), and a copied part lies within one segment.
 */
export function planParts(segments: readonly PlanSegment[], options: PlanOptions): PlannedPart[] {
  const minPartBytes = options.minPartBytes ?? MIN_PART_BYTES;
  const maxPartBytes = options.maxPartBytes ?? MAX_PART_BYTES;
  const partBytes = Math.min(maxPartBytes, Math.max(minPartBytes, options.partBytes));
  // A copied part is followed by others, so it must be long enough to be one that is not last.
  const copyThresholdBytes = Math.max(minPartBytes, options.copyThresholdBytes);
  const parts: PlannedPart[] = [];
  let open: { start: number; end: number } | undefined;
  const closeOpen = () => {
    if (open && open.end > open.start) parts.push({ partNumber: parts.length + 1, start: open.start, end: open.end });
    open = undefined;
  };
  for (let i = 0; i < segments.length; i++) {
    const segment = segments[i]!;
    let at = segment.start;
    if (open && open.end - open.start < minPartBytes) {
      // Top the open streamed part up to the minimum, so that a copy may follow it.
      at = Math.min(segment.end, open.start + minPartBytes);
      open.end = at;
    }
    if (segment.end - at >= copyThresholdBytes) {
      closeOpen();
      const count = Math.ceil((segment.end - at) / maxPartBytes);
      const step = Math.ceil((segment.end - at) / count);
      for (let start = at; start < segment.end; start += step) {
        parts.push({ partNumber: parts.length + 1, start, end: Math.min(segment.end, start + step), copyOf: i });
      }
      continue;
    }
    while (at < segment.end) {
      open ??= { start: at, end: at };
      at = Math.min(segment.end, open.start + partBytes);
      open.end = at;
      if (open.end - open.start === partBytes) closeOpen();
    }
  }
  closeOpen();
  return parts;
}
