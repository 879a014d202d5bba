/**
 * apk-tools' version order (Alpine, Wolfi): `digits{.digits}[letter]{_suffix[digits]}[~hash][-r#]`,
 * compared token by token from the left.
 */
import { compareDigits, compareStrings } from './numeric.ts';

/**
 * Token kinds in the order they may appear. When two versions agree up to a point and then hold
 * different kinds of token, the one whose kind comes later here is older (`1.0` < `1.0-r1`, `1.0a` <
 * `1.0.1`, a malformed token older than anything), except that a pre-release suffix is always older.
 */
const K = {
  firstNumber: 0,
  number: 1,
  letter: 2,
  suffix: 3,
  suffixNumber: 4,
  hash: 5,
  revision: 6,
  end: 7,
  invalid: 8,
} as const;
type Kind = (typeof K)[keyof typeof K];

/** `_alpha` ... `_rc` come before the plain release, `_cvs` ... `_p` after it. */
const SUFFIX_RANK: Record<string, number> = { alpha: 0, beta: 1, pre: 2, rc: 3, cvs: 5, svn: 6, git: 7, hg: 8, p: 9 };
const RELEASE_RANK = 4;

interface Token {
  kind: Kind;
  text: string;
  suffixRank: number;
}

/** Reads the tokens of a version; the sequence ends with one `end` or `invalid` token. */
function tokenize(v: string): Token[] {
  const tokens: Token[] = [];
  let pos = 0;
  const digitsAt = (from: number) => {
    let end = from;
    while (end < v.length && v.charCodeAt(end) >= 48 && v.charCodeAt(end) <= 57) end++;
    return v.slice(from, end);
  };
  const push = (kind: Kind, text = '', suffixRank = 0) => tokens.push({ kind, text, suffixRank });

  const first = digitsAt(0);
  if (first === '') {
    push(K.invalid);
    return tokens;
  }
  push(K.firstNumber, first);
  pos = first.length;
  let last: Kind = K.firstNumber;

  for (;;) {
    if (pos >= v.length) {
      push(K.end);
      return tokens;
    }
    const c = v[pos]!;
    let kind: Kind = K.invalid;
    let text = '';
    let rank = 0;
    if (c >= 'a' && c <= 'z') {
      if (last <= K.number) {
        kind = K.letter;
        text = c;
        pos++;
      }
    } else if (c === '.' || (c >= '0' && c <= '9')) {
      // A '.' starts another number; digits straight after a suffix are the suffix's number.
      const dotted = c === '.';
      const next: Kind = dotted ? K.number : last === K.suffix ? K.suffixNumber : K.number;
      const allowed: boolean = dotted ? last <= K.number : last <= K.number || last === K.suffix;
      if (allowed) {
        text = digitsAt(dotted ? pos + 1 : pos);
        if (text !== '') {
          kind = next;
          pos += text.length + (dotted ? 1 : 0);
        }
      }
    } else if (c === '_') {
      if (last <= K.suffixNumber) {
        const m = /^[a-z]*/.exec(v.slice(pos + 1))![0];
        if (Object.hasOwn(SUFFIX_RANK, m)) {
          kind = K.suffix;
          text = m;
          rank = SUFFIX_RANK[m]!;
          pos += 1 + m.length;
        }
      }
    } else if (c === '~') {
      if (last < K.hash) {
        const m = /^[0-9a-f]*/.exec(v.slice(pos + 1))![0];
        if (m !== '') {
          kind = K.hash;
          text = m;
          pos += 1 + m.length;
        }
      }
    } else if (c === '-') {
      if (last < K.revision && v[pos + 1] === 'r') {
        text = digitsAt(pos + 2);
        if (text !== '') {
          kind = K.revision;
          pos += 2 + text.length;
        }
      }
    }
    push(kind, text, rank);
    if (kind === K.invalid) return tokens;
    last = kind;
  }
}

function compareSameKind(x: Token, y: Token): number {
  switch (x.kind) {
    case K.number:
      // Like Gentoo: a number with a leading zero is a decimal fraction, compared as a string.
      if (x.text.startsWith('0') || y.text.startsWith('0')) return compareStrings(x.text, y.text);
      return compareDigits(x.text, y.text);
    case K.firstNumber:
    case K.suffixNumber:
    case K.revision:
      return compareDigits(x.text, y.text);
    case K.letter:
      return compareStrings(x.text, y.text);
    case K.suffix:
      return x.suffixRank - y.suffixRank;
    default:
      return compareStrings(x.text, y.text);
  }
}

/**
 * apk's comparison, with its fuzzy flavour (`~` in a dependency: `b` is a prefix of `a`) for the
 * tests. Never throws: a malformed version is compared up to its first bad token, which then sorts
 * before any valid token, as apk itself does.
 */
export function compareApkFuzzy(a: string, b: string, isFuzzy: boolean): -1 | 0 | 1 {
  const ta = tokenize(a);
  const tb = tokenize(b);
  let k = 0;
  for (; ; k++) {
    const x = ta[k]!;
    const y = tb[k]!;
    if (x.kind !== y.kind || x.kind >= K.end) break;
    const d = compareSameKind(x, y);
    if (d !== 0) return d < 0 ? -1 : 1;
  }
  const x = ta[k]!;
  const y = tb[k]!;
  if (x.kind === y.kind) return 0;
  if (isFuzzy && y.kind === K.end) return 0;
  if (x.kind === K.suffix && x.suffixRank < RELEASE_RANK) return -1;
  if (y.kind === K.suffix && y.suffixRank < RELEASE_RANK) return 1;
  return x.kind > y.kind ? -1 : 1;
}

export function compareApk(a: string, b: string): -1 | 0 | 1 {
  return compareApkFuzzy(a, b, false);
}

export function isValidApk(v: string): boolean {
  return tokenize(v).at(-1)!.kind === K.end;
}
