/** Shared by the comparators: version numbers can exceed 2^53, so they are compared as digit strings. */

/** Compares two runs of ASCII digits by value, at any length; leading zeros do not count and an empty run is zero. */
export function compareDigits(a: string, b: string): -1 | 0 | 1 {
  const x = stripZeros(a);
  const y = stripZeros(b);
  if (x.length !== y.length) return x.length < y.length ? -1 : 1;
  return x < y ? -1 : x > y ? 1 : 0;
}

export function sign(n: number): -1 | 0 | 1 {
  return n < 0 ? -1 : n > 0 ? 1 : 0;
}

/** Plain code-unit order: the last resort when a version cannot be read at all. */
export function compareStrings(a: string, b: string): -1 | 0 | 1 {
  return a < b ? -1 : a > b ? 1 : 0;
}

function stripZeros(s: string): string {
  if (s === '') return '0';
  let i = 0;
  while (i < s.length - 1 && s.charCodeAt(i) === 48) i++;
  return s.slice(i);
}

export function isDigit(code: number): boolean {
  return code >= 48 && code <= 57;
}

export function isAsciiLetter(code: number): boolean {
  return (code >= 65 && code <= 90) || (code >= 97 && code <= 122);
}
