/**
 * Maven's version order, as org.apache.maven.artifact.versioning.ComparableVersion of Maven 3.9
 * computes it (the "Version Order Specification" of the POM reference): the version is cut at '.',
 * '-' and digit/letter transitions into a tree of lists (a '-' or a transition opens a nested list),
 * trailing null items (0, "", "ga", "final", "release") are dropped from each list, and the trees are
 * compared item by item, a missing item counting as null.
 *
 * Qualifiers order alpha < beta < milestone < rc = cr < snapshot < "" = ga = final = release < sp,
 * then unknown qualifiers alphabetically; `a1`, `b1`, `m1` mean alpha-1, beta-1, milestone-1.
 */
import { compareDigits, compareStrings } from './numeric.ts';

type Item = { type: 'number'; digits: string } | { type: 'string'; value: string } | ListItem;
interface ListItem {
  type: 'list';
  items: Item[];
}

const QUALIFIERS = ['alpha', 'beta', 'milestone', 'rc', 'snapshot', '', 'sp'];
const ALIASES: Record<string, string> = { ga: '', final: '', release: '', cr: 'rc' };
const RELEASE_INDEX = QUALIFIERS.indexOf('');

function stringItem(text: string, isFollowedByDigit: boolean): Item {
  let value = text;
  if (isFollowedByDigit && value.length === 1) value = { a: 'alpha', b: 'beta', m: 'milestone' }[value] ?? value;
  value = Object.hasOwn(ALIASES, value) ? ALIASES[value]! : value;
  return { type: 'string', value };
}

/**
 * Maven ranks a qualifier by a string: its index among the known ones, or "7-<qualifier>" for unknown
 * ones, compared as strings; so unknown qualifiers sort after `sp`, alphabetically.
 */
function qualifierKey(value: string): string {
  const i = QUALIFIERS.indexOf(value);
  return i === -1 ? `${QUALIFIERS.length}-${value}` : String(i);
}

function isNull(item: Item): boolean {
  switch (item.type) {
    case 'number':
      return /^0*$/.test(item.digits);
    case 'string':
      return qualifierKey(item.value) === String(RELEASE_INDEX);
    case 'list':
      return item.items.length === 0;
  }
}

/** Maven 3.9 uses Character.isDigit (any Unicode digit); only ASCII digits occur in real versions, and Maven 4 agrees. */
function isAsciiDigit(c: string): boolean {
  return c >= '0' && c <= '9';
}

function parse(version: string): ListItem {
  const v = version.toLowerCase();
  const root: ListItem = { type: 'list', items: [] };
  let list = root;
  const opened: ListItem[] = [root];
  const openList = () => {
    const next: ListItem = { type: 'list', items: [] };
    list.items.push(next);
    list = next;
    opened.push(next);
  };
  const parseItem = (isDigit: boolean, text: string): Item =>
    isDigit ? { type: 'number', digits: text } : stringItem(text, false);

  let isDigit = false;
  let start = 0;
  for (let i = 0; i < v.length; i++) {
    const c = v[i]!;
    if (c === '.') {
      list.items.push(i === start ? { type: 'number', digits: '0' } : parseItem(isDigit, v.slice(start, i)));
      start = i + 1;
    } else if (c === '-') {
      list.items.push(i === start ? { type: 'number', digits: '0' } : parseItem(isDigit, v.slice(start, i)));
      start = i + 1;
      openList();
    } else if (isAsciiDigit(c)) {
      if (!isDigit && i > start) {
        // A qualifier followed by a number: `1.0.0.rc1` is ordered like `1.0.0-rc-1`.
        if (list.items.length > 0) openList();
        list.items.push(stringItem(v.slice(start, i), true));
        start = i;
        openList();
      }
      isDigit = true;
    } else {
      if (isDigit && i > start) {
        list.items.push(parseItem(true, v.slice(start, i)));
        start = i;
        openList();
      }
      isDigit = false;
    }
  }
  if (v.length > start) {
    // A trailing qualifier after '.' is treated as after '-': `2.0.x` equals `2-x`.
    if (!isDigit && list.items.length > 0) openList();
    list.items.push(parseItem(isDigit, v.slice(start)));
  }
  // Innermost lists first, as Maven normalises them when it closes each one.
  for (const l of opened.reverse()) normalize(l);
  return root;
}

/** Drops null items from the end, looking past non-empty nested lists (so `1-0-sp` loses its `0`). */
function normalize(list: ListItem): void {
  for (let i = list.items.length - 1; i >= 0; i--) {
    const item = list.items[i]!;
    if (isNull(item)) list.items.splice(i, 1);
    else if (item.type !== 'list') break;
  }
}

/** Maven's Item.compareTo, with `undefined` standing for the missing item of a shorter list. */
function compareItem(x: Item, y: Item | undefined): number {
  switch (x.type) {
    case 'number':
      if (y === undefined) return isNull(x) ? 0 : 1;
      return y.type === 'number' ? compareDigits(x.digits, y.digits) : 1;
    case 'string':
      if (y === undefined) return compareStrings(qualifierKey(x.value), String(RELEASE_INDEX));
      if (y.type === 'string') return compareStrings(qualifierKey(x.value), qualifierKey(y.value));
      return -1;
    case 'list':
      if (y === undefined) {
        for (const item of x.items) {
          const d = compareItem(item, undefined);
          if (d !== 0) return d;
        }
        return 0;
      }
      if (y.type === 'number') return -1;
      if (y.type === 'string') return 1;
      for (let i = 0; i < Math.max(x.items.length, y.items.length); i++) {
        const l = x.items[i];
        const r = y.items[i];
        const d = l === undefined ? (r === undefined ? 0 : -compareItem(r, undefined)) : compareItem(l, r);
        if (d !== 0) return d;
      }
      return 0;
  }
}

/** Maven compares any string, so this never fails. */
export function compareMaven(a: string, b: string): -1 | 0 | 1 {
  const d = compareItem(parse(a), parse(b));
  return d < 0 ? -1 : d > 0 ? 1 : 0;
}

/**
 * Maven orders any string; "valid" here means something a published artifact could carry: no
 * whitespace, at least one digit, no unexpanded `${...}` property (this rules out `LATEST`,
 * `RELEASE` and placeholders a build did not resolve).
 */
export function isValidMaven(v: string): boolean {
  return v !== '' && !/\s/.test(v) && /\d/.test(v) && !v.includes('${');
}
