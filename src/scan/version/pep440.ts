/**
 * PEP 440 version order for PyPI: epoch, release (trailing zeros do not count), pre-release,
 * post-release, dev-release, local label. Input is normalised as the PEP's "Normalization" section
 * says: case, `alpha`/`beta`/`c`/`pre`/`preview` spellings, `-`, `_` and `.` separators, implicit
 * numbers, `1.0-1` as a post-release, a leading `v`, surrounding whitespace.
 */
import { compareDigits, compareStrings } from './numeric.ts';

interface Pep440 {
  epoch: string;
  release: string[];
  /** Pre-release phase rank (a=0, b=1, rc=2) and number. */
  pre?: [number, string];
  post?: string;
  dev?: string;
  local?: string[];
}

const PATTERN = new RegExp(
  '^\\s*v?' +
    '(?:(\\d+)!)?' +
    '(\\d+(?:\\.\\d+)*)' +
    '(?:[-_.]?(alpha|a|beta|b|preview|pre|c|rc)[-_.]?(\\d+)?)?' +
    '(?:-(\\d+)|[-_.]?(post|rev|r)[-_.]?(\\d+)?)?' +
    '(?:[-_.]?(dev)[-_.]?(\\d+)?)?' +
    '(?:\\+([a-z0-9]+(?:[-_.][a-z0-9]+)*))?' +
    '\\s*$',
  'i',
);

const PRE_RANK: Record<string, number> = { a: 0, alpha: 0, b: 1, beta: 1, c: 2, rc: 2, pre: 2, preview: 2 };

function parse(v: string): Pep440 | undefined {
  const m = PATTERN.exec(v);
  if (m === null) return undefined;
  const [, epoch, release, preLabel, preNumber, postImplicit, postLabel, postNumber, devLabel, devNumber, local] = m;
  const parsed: Pep440 = { epoch: epoch ?? '0', release: release!.split('.') };
  if (preLabel !== undefined) parsed.pre = [PRE_RANK[preLabel.toLowerCase()]!, preNumber ?? '0'];
  if (postImplicit !== undefined) parsed.post = postImplicit;
  else if (postLabel !== undefined) parsed.post = postNumber ?? '0';
  if (devLabel !== undefined) parsed.dev = devNumber ?? '0';
  if (local !== undefined) parsed.local = local.toLowerCase().split(/[-_.]/);
  return parsed;
}

function compareRelease(a: string[], b: string[]): -1 | 0 | 1 {
  // Missing components are zeros, which is the same as ignoring trailing zeros.
  for (let i = 0; i < Math.max(a.length, b.length); i++) {
    const d = compareDigits(a[i] ?? '0', b[i] ?? '0');
    if (d !== 0) return d;
  }
  return 0;
}

/**
 * Where a release stands among its pre-releases: a dev-release of the release itself (`1.0.dev1`)
 * comes before all of them, the final release (with or without post or dev parts) after.
 */
function preKey(v: Pep440): [number, number, string] {
  if (v.pre !== undefined) return [0, v.pre[0], v.pre[1]];
  if (v.post === undefined && v.dev !== undefined) return [-1, 0, '0'];
  return [1, 0, '0'];
}

/** Section "Local version identifiers": numeric segments by value and after alphanumeric ones (compared as strings); a longer label wins a tie. */
function compareLocal(a: string[] | undefined, b: string[] | undefined): -1 | 0 | 1 {
  if (a === undefined || b === undefined) return a === b ? 0 : a === undefined ? -1 : 1;
  for (let i = 0; i < Math.min(a.length, b.length); i++) {
    const x = a[i]!;
    const y = b[i]!;
    const nx = /^\d+$/.test(x);
    const ny = /^\d+$/.test(y);
    const d = nx && ny ? compareDigits(x, y) : nx !== ny ? (nx ? 1 : -1) : compareStrings(x, y);
    if (d !== 0) return d;
  }
  return a.length === b.length ? 0 : a.length < b.length ? -1 : 1;
}

function compareParsed(x: Pep440, y: Pep440): number {
  const epoch = compareDigits(x.epoch, y.epoch);
  if (epoch !== 0) return epoch;
  const release = compareRelease(x.release, y.release);
  if (release !== 0) return release;
  const [px, py] = [preKey(x), preKey(y)];
  const pre = px[0] - py[0] || px[1] - py[1] || compareDigits(px[2], py[2]);
  if (pre !== 0) return pre;
  // No post-release sorts before any post-release; no dev-release after any dev-release.
  if (x.post !== y.post) {
    if (x.post === undefined || y.post === undefined) return x.post === undefined ? -1 : 1;
    const post = compareDigits(x.post, y.post);
    if (post !== 0) return post;
  }
  if (x.dev !== y.dev) {
    if (x.dev === undefined || y.dev === undefined) return x.dev === undefined ? 1 : -1;
    const dev = compareDigits(x.dev, y.dev);
    if (dev !== 0) return dev;
  }
  return compareLocal(x.local, y.local);
}

/**
 * Never throws: a version that is not PEP 440 (a legacy one such as `2004d` or `1.0-foo`) sorts
 * before every valid one, as pip's packaging did with LegacyVersion, and two such versions compare as
 * plain strings.
 */
export function comparePep440(a: string, b: string): -1 | 0 | 1 {
  const x = parse(a);
  const y = parse(b);
  if (x === undefined || y === undefined) {
    if (x !== undefined) return 1;
    if (y !== undefined) return -1;
    return compareStrings(a, b);
  }
  const d = compareParsed(x, y);
  return d < 0 ? -1 : d > 0 ? 1 : 0;
}

export function isValidPep440(v: string): boolean {
  return parse(v) !== undefined;
}
