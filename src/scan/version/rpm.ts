/**
 * rpm's version order: rpmvercmp() on each of epoch, version and release, as rpm >= 4.15 has it
 * (the `~` pre-release and `^` post-release markers) and as `rpm.vercmp()` applies it to a whole
 * `[epoch:]version[-release]`.
 */
import { compareDigits, compareStrings, isAsciiLetter, isDigit } from './numeric.ts';

const TILDE = 126;
const CARET = 94;

function isAlnum(c: number): boolean {
  return isDigit(c) || isAsciiLetter(c);
}

/**
 * rpmvercmp(): both strings are cut into runs of digits and runs of letters, anything else only
 * separates. `~` sorts before everything, even the end of the string; `^` sorts after the end of the
 * string but before any further segment. A numeric run beats a letter run; when one string runs out,
 * the one with segments left is newer.
 */
export function rpmvercmp(a: string, b: string): -1 | 0 | 1 {
  if (a === b) return 0;
  let i = 0;
  let j = 0;
  while (i < a.length || j < b.length) {
    while (i < a.length && !isAlnum(a.charCodeAt(i)) && a.charCodeAt(i) !== TILDE && a.charCodeAt(i) !== CARET) i++;
    while (j < b.length && !isAlnum(b.charCodeAt(j)) && b.charCodeAt(j) !== TILDE && b.charCodeAt(j) !== CARET) j++;
    const ca = i < a.length ? a.charCodeAt(i) : -1;
    const cb = j < b.length ? b.charCodeAt(j) : -1;

    if (ca === TILDE || cb === TILDE) {
      if (ca !== TILDE) return 1;
      if (cb !== TILDE) return -1;
      i++;
      j++;
      continue;
    }
    if (ca === CARET || cb === CARET) {
      if (ca === -1) return -1;
      if (cb === -1) return 1;
      if (ca !== CARET) return 1;
      if (cb !== CARET) return -1;
      i++;
      j++;
      continue;
    }
    if (ca === -1 || cb === -1) break;

    const numeric = isDigit(ca);
    const inRun = numeric ? isDigit : isAsciiLetter;
    const si = i;
    while (i < a.length && inRun(a.charCodeAt(i))) i++;
    const sj = j;
    while (j < b.length && inRun(b.charCodeAt(j))) j++;
    const segA = a.slice(si, i);
    const segB = b.slice(sj, j);
    // b has a run of the other kind here: a numeric run is newer than a letter run.
    if (segB === '') return numeric ? 1 : -1;
    const d = numeric ? compareDigits(segA, segB) : compareStrings(segA, segB);
    if (d !== 0) return d;
  }
  if (i >= a.length && j >= b.length) return 0;
  return i < a.length ? 1 : -1;
}

interface Evr {
  epoch?: string;
  version: string;
  release?: string;
}

/** As rpm splits an EVR: an epoch only when the string starts with digits (possibly none) and ':'. */
function parseEvr(v: string): Evr {
  const m = /^(\d*):/.exec(v);
  const epoch = m === null ? undefined : m[1] === '' ? '0' : m[1];
  const rest = m === null ? v : v.slice(m[0].length);
  const hyphen = rest.lastIndexOf('-');
  if (hyphen < 0) return { epoch, version: rest };
  return { epoch, version: rest.slice(0, hyphen), release: rest.slice(hyphen + 1) };
}

/**
 * Epochs first (a missing epoch is 0), then versions, then releases; a version with a release is
 * newer than the same version without one, as rpm.vercmp() answers. Never throws: rpm compares any
 * string (it only refuses the empty one, which sorts here before everything else).
 */
export function compareRpm(a: string, b: string): -1 | 0 | 1 {
  if (a === '' || b === '') return a === b ? 0 : a === '' ? -1 : 1;
  const x = parseEvr(a);
  const y = parseEvr(b);
  const byEpoch = rpmvercmp(x.epoch ?? '0', y.epoch ?? '0');
  if (byEpoch !== 0) return byEpoch;
  const byVersion = rpmvercmp(x.version, y.version);
  if (byVersion !== 0) return byVersion;
  if (x.release !== undefined && y.release !== undefined) return rpmvercmp(x.release, y.release);
  if (x.release !== undefined) return 1;
  if (y.release !== undefined) return -1;
  return 0;
}

/**
 * What rpm would accept as the EVR of a package: an optional numeric epoch, then a version and an
 * optional release made of the characters rpm allows in those tags (letters, digits, `._+~^`).
 */
export function isValidRpm(v: string): boolean {
  return /^(\d+:)?[A-Za-z0-9._+~^]+(-[A-Za-z0-9._+~^]+)?$/.test(v) && /[A-Za-z0-9]/.test(v);
}
