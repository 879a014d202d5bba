/**
 * dpkg's version order, as Debian Policy 5.6.12 defines it and `dpkg --compare-versions` implements
 * it: `[epoch:]upstream[-revision]`, epochs numerically, then upstream and revision each by the
 * alternating non-digit / digit comparison.
 */
import { compareDigits, isAsciiLetter, isDigit, sign } from './numeric.ts';

interface DebVersion {
  /** Digits only, compared by value. */
  epoch: string;
  upstream: string;
  revision: string;
  /** What dpkg says: 'error' (refuses to compare), 'warning' (compares, but complains) or 'ok'. */
  syntax: 'ok' | 'warning' | 'error';
}

const INT_MAX = 2147483647;

/**
 * Splits like dpkg's parseversion(): the epoch ends at the first ':', the revision starts after the
 * last '-'. Where dpkg reports an error, the parts are still split as well as they can be so that a
 * comparison can go on (see compareDeb).
 */
function parse(input: string): DebVersion {
  let syntax: DebVersion['syntax'] = 'ok';
  const fail = (level: 'warning' | 'error') => {
    if (syntax !== 'error') syntax = level;
  };
  const v = input.replace(/^[ \t]+|[ \t]+$/g, '');
  if (v === '' || /[ \t]/.test(v)) fail('error');

  let epoch = '0';
  let rest = v;
  const colon = v.indexOf(':');
  if (colon >= 0) {
    // dpkg reads the epoch with strtol(): an optional sign, then digits that must reach the colon.
    const m = /^([+-]?)(\d+)$/.exec(v.slice(0, colon));
    if (m === null) {
      fail('error');
    } else {
      epoch = m[2]!;
      if (m[1] === '-' && /[1-9]/.test(epoch)) fail('error');
      if (compareDigits(epoch, String(INT_MAX)) > 0) fail('error');
      if (m[1] === '-') epoch = '0';
      rest = v.slice(colon + 1);
      if (rest === '') fail('error');
    }
  }

  let upstream = rest;
  let revision = '';
  const hyphen = rest.lastIndexOf('-');
  if (hyphen >= 0) {
    upstream = rest.slice(0, hyphen);
    revision = rest.slice(hyphen + 1);
    if (revision === '') fail('error');
  }
  if (upstream === '') fail('error');
  else if (!isDigit(upstream.charCodeAt(0))) fail('warning');
  if (!/^[A-Za-z0-9.+~:-]*$/.test(upstream) || !/^[A-Za-z0-9.+~]*$/.test(revision)) fail('warning');
  return { epoch, upstream, revision, syntax };
}

/** Policy's sort weight of a non-digit character: '~' before the end, letters before everything else. */
function weight(s: string, i: number): number {
  if (i >= s.length) return 0;
  const c = s.charCodeAt(i);
  if (isDigit(c)) return 0;
  if (isAsciiLetter(c)) return c;
  if (c === 126 /* ~ */) return -1;
  return c + 256;
}

/** The comparison Policy 5.6.12 gives for the upstream and revision parts. */
function compareFragment(a: string, b: string): number {
  let i = 0;
  let j = 0;
  while (i < a.length || j < b.length) {
    while ((i < a.length && !isDigit(a.charCodeAt(i))) || (j < b.length && !isDigit(b.charCodeAt(j)))) {
      const d = weight(a, i) - weight(b, j);
      if (d !== 0) return d;
      i++;
      j++;
    }
    const si = i;
    while (i < a.length && isDigit(a.charCodeAt(i))) i++;
    const sj = j;
    while (j < b.length && isDigit(b.charCodeAt(j))) j++;
    const d = compareDigits(a.slice(si, i), b.slice(sj, j));
    if (d !== 0) return d;
  }
  return 0;
}

/**
 * Never throws. A version dpkg only warns about (no leading digit, odd characters) is compared just
 * as dpkg compares it. One dpkg refuses (a non-numeric epoch, an empty revision...) is compared on
 * the parts split as above: when what precedes the first ':' is not a number, there is no epoch (0)
 * and the colon stays in the upstream part.
 */
export function compareDeb(a: string, b: string): -1 | 0 | 1 {
  const x = parse(a);
  const y = parse(b);
  return sign(
    compareDigits(x.epoch, y.epoch) || compareFragment(x.upstream, y.upstream) || compareFragment(x.revision, y.revision),
  );
}

/** Valid when dpkg parses it with neither an error nor a warning. */
export function isValidDeb(v: string): boolean {
  return parse(v).syntax === 'ok';
}
