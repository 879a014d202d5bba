/**
 * SemVer 2.0.0 precedence (section 11), for npm, Go modules and crates.io.
 *
 * Leniency, on purpose: a leading `v` is accepted (Go writes `v1.2.3`; its pseudo-versions
 * `v0.0.0-20240101120000-abcdef123456` are ordinary pre-releases, and `+incompatible` is build
 * metadata), and a missing minor or patch counts as 0 (`1.2` is `1.2.0`), because package metadata
 * and advisories sometimes write versions that way. Anything else SemVer forbids stays invalid.
 */
import { compareDigits, compareStrings } from './numeric.ts';

interface SemVer {
  core: [string, string, string];
  prerelease: string[];
}

const NUMBER = '0|[1-9]\\d*';
const IDENT = '(?:0|[1-9]\\d*|\\d*[A-Za-z-][0-9A-Za-z-]*)';
const PATTERN = new RegExp(
  `^v?(${NUMBER})(?:\\.(${NUMBER}))?(?:\\.(${NUMBER}))?` +
    `(?:-(${IDENT}(?:\\.${IDENT})*))?(?:\\+([0-9A-Za-z-]+(?:\\.[0-9A-Za-z-]+)*))?$`,
);

function parse(v: string): SemVer | undefined {
  const m = PATTERN.exec(v);
  if (m === null) return undefined;
  return { core: [m[1]!, m[2] ?? '0', m[3] ?? '0'], prerelease: m[4] === undefined ? [] : m[4].split('.') };
}

const isNumeric = (id: string) => /^\d+$/.test(id);

/** Section 11.4: numeric identifiers by value and before alphanumeric ones; a longer list wins a tie. */
function comparePrerelease(a: string[], b: string[]): -1 | 0 | 1 {
  if (a.length === 0 || b.length === 0) return a.length === b.length ? 0 : a.length === 0 ? 1 : -1;
  for (let i = 0; i < Math.min(a.length, b.length); i++) {
    const x = a[i]!;
    const y = b[i]!;
    const nx = isNumeric(x);
    const ny = isNumeric(y);
    const d = nx && ny ? compareDigits(x, y) : nx !== ny ? (nx ? -1 : 1) : compareStrings(x, y);
    if (d !== 0) return d;
  }
  return a.length === b.length ? 0 : a.length < b.length ? -1 : 1;
}

/**
 * Build metadata is ignored, so `1.0.0+a` equals `1.0.0+b`. Never throws: a version that does not
 * parse sorts before every valid one, and two such versions compare as plain strings.
 */
export function compareSemver(a: string, b: string): -1 | 0 | 1 {
  const x = parse(a);
  const y = parse(b);
  if (x === undefined || y === undefined) {
    if (x !== undefined) return 1;
    if (y !== undefined) return -1;
    return compareStrings(a, b);
  }
  for (let i = 0; i < 3; i++) {
    const d = compareDigits(x.core[i]!, y.core[i]!);
    if (d !== 0) return d;
  }
  return comparePrerelease(x.prerelease, y.prerelease);
}

export function isValidSemver(v: string): boolean {
  return parse(v) !== undefined;
}
