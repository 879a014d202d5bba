import { normalizeKey } from './context.ts';
import type { VariableSource } from './context.ts';

/**
 * Wildcards (`*`, `?`) and policy variables (`${aws:username}`) in policy strings.
 *
 * Patterns are compiled at parse time (see Glob for how they are matched). A pattern holding a
 * policy variable is compiled per request once its values are known.
 */

/**
 * How `*` and `?` behave:
 * - `plain` (Action, StringLike): `*` is any run of characters, `?` any one character.
 * - `resource` (Resource, NotResource): wildcards stay inside one colon-separated ARN segment,
 *   except that a `*` that ends a segment (it is followed by `:` or ends the pattern) may run
 *   across colons, as the IAM Resource element reference documents.
 * - `arn` (ArnLike, ArnEquals): each of the six ARN segments is matched on its own; the sixth
 *   (the resource part, which may itself contain colons) takes the rest of the string.
 */
export type GlobFlavor = 'plain' | 'resource' | 'arn';

/** A policy string split at its policy variables. */
export type Piece =
  /** Text as written: `*` and `?` are wildcards where the element allows them. */
  | { kind: 'text'; text: string }
  /** Text from an escape (`${*}`, `${?}`, `${$}`): never a wildcard. */
  | { kind: 'literal'; text: string }
  /** `${key}` or `${key, 'fallback'}`; `key` is normalized. */
  | { kind: 'variable'; key: string; fallback: string | undefined };

/** A piece with no variable left. */
export type StaticPiece = Exclude<Piece, { kind: 'variable' }>;

/**
 * Splits a policy string at its `${...}` variables. Under the 2008-10-17 language version
 * (`withVariables` false) the string is plain text, `${` included, as in AWS.
 * Returns a message on malformed syntax.
 */
export function parsePieces(raw: string, withVariables: boolean): Piece[] | string {
  if (!withVariables || !raw.includes('${')) return [{ kind: 'text', text: raw }];
  const pieces: Piece[] = [];
  let text = '';
  let i = 0;
  while (i < raw.length) {
    if (raw[i] !== '$' || raw[i + 1] !== '{') {
      text += raw[i];
      i++;
      continue;
    }
    const start = i;
    i += 2;
    let body = '';
    while (i < raw.length && raw[i] !== '}' && raw[i] !== ',') body += raw[i++];
    let fallback: string | undefined;
    if (raw[i] === ',') {
      i++;
      while (raw[i] === ' ') i++;
      if (raw[i] !== "'") return `policy variable at "${raw.slice(start, start + 40)}" has a default value that is not in single quotes`;
      i++;
      fallback = '';
      for (;;) {
        if (i >= raw.length) return `policy variable at "${raw.slice(start, start + 40)}" has an unterminated default value`;
        if (raw[i] === "'") {
          if (raw[i + 1] === "'") {
            fallback += "'";
            i += 2;
            continue;
          }
          i++;
          break;
        }
        fallback += raw[i++];
      }
      while (raw[i] === ' ') i++;
    }
    if (raw[i] !== '}') return `policy variable at "${raw.slice(start, start + 40)}" is missing its closing "}"`;
    i++;
    const name = body.trim();
    if (fallback === undefined && (name === '*' || name === '?' || name === '$')) {
      if (text) pieces.push({ kind: 'text', text });
      text = '';
      pieces.push({ kind: 'literal', text: name });
      continue;
    }
    if (name === '') return `policy variable "${raw.slice(start, i)}" names no key`;
    if (text) pieces.push({ kind: 'text', text });
    text = '';
    pieces.push({ kind: 'variable', key: normalizeKey(name), fallback });
  }
  if (text) pieces.push({ kind: 'text', text });
  return pieces;
}

/** True when the pieces hold no variable. */
export function isStatic(pieces: readonly Piece[]): boolean {
  return pieces.every((p) => p.kind !== 'variable');
}

/**
 * Substitutes the variables. Returns undefined when one has no value and no default: AWS then
 * treats the element as matching nothing. A substituted value is literal text (a `*` in a tag
 * value is not a wildcard).
 */
export function substitute(pieces: readonly Piece[], vars: VariableSource): StaticPiece[] | undefined {
  const out: StaticPiece[] = [];
  for (const piece of pieces) {
    if (piece.kind !== 'variable') {
      out.push(piece);
      continue;
    }
    const value = vars.variable(piece.key) ?? piece.fallback;
    if (value === undefined) return undefined;
    out.push({ kind: 'literal', text: value });
  }
  return out;
}

/** The string the pieces spell, with no wildcard meaning (for StringEquals and friends). */
export function piecesText(pieces: readonly Piece[]): string {
  let s = '';
  for (const p of pieces) if (p.kind !== 'variable') s += p.text;
  return s;
}

/** True when some `*` or `?` in the pieces is a wildcard. */
export function hasWildcard(pieces: readonly Piece[]): boolean {
  return pieces.some((p) => p.kind === 'text' && /[*?]/.test(p.text));
}

const REGEX_SPECIAL = /[\\^$.*+?()[\]{}|]/g;

// Token kinds of a compiled glob.
const LITERAL = 0;
const ONE = 1; // any one character
const ONE_IN_SEGMENT = 2; // any one character but ":"
const STAR = 3; // any run of characters
const STAR_IN_SEGMENT = 4; // any run of characters without ":"

/**
 * A glob as parallel arrays: `chars[i]` is the literal for LITERAL tokens. Matching uses a RegExp
 * only when the pattern has at most one star: a backtracking engine is linear there, while
 * several stars (`*a*a*a*...`) would let a policy author, or a requester choosing a long
 * aws:UserAgent or tag value, stall the event loop. Other patterns use a matcher that is
 * O(length × pattern) in the worst case.
 */
interface Glob {
  chars: string;
  kinds: Uint8Array;
  /** How many STAR / STAR_IN_SEGMENT tokens. */
  stars: number;
  /** Some star may not cross a colon (so the greedy matcher is not exact). */
  hasSegmentStar: boolean;
}

function compileGlob(pieces: readonly StaticPiece[], flavor: GlobFlavor, ignoreCase: boolean): Glob {
  // Flatten first, so that `resource` can look at the next character and `arn` can count
  // segments across piece boundaries.
  let chars = '';
  const wild: boolean[] = [];
  for (const p of pieces) {
    const text = ignoreCase ? p.text.toLowerCase() : p.text;
    chars += text;
    for (let i = 0; i < text.length; i++) wild.push(p.kind === 'text');
  }
  let lastSegment = 0;
  if (flavor === 'arn') for (const c of chars) if (c === ':' && lastSegment < 5) lastSegment++;
  const kinds = new Uint8Array(chars.length);
  let segment = 0;
  let stars = 0;
  let hasSegmentStar = false;
  for (let i = 0; i < chars.length; i++) {
    const c = chars[i]!;
    if (c === ':' && segment < 5) segment++;
    if (!wild[i] || (c !== '*' && c !== '?')) continue;
    let unbounded: boolean;
    if (flavor === 'plain') unbounded = true;
    else if (flavor === 'arn') unbounded = segment === lastSegment;
    else unbounded = c === '*' ? i + 1 === chars.length || chars[i + 1] === ':' : false;
    if (c === '*') {
      stars++;
      if (!unbounded) hasSegmentStar = true;
      kinds[i] = unbounded ? STAR : STAR_IN_SEGMENT;
    } else {
      kinds[i] = unbounded ? ONE : ONE_IN_SEGMENT;
    }
  }
  return { chars, kinds, stars, hasSegmentStar };
}

/** A RegExp source (unanchored) for a glob. */
function regexSource(glob: Glob): string {
  let out = '';
  for (let i = 0; i < glob.kinds.length; i++) {
    switch (glob.kinds[i]) {
      case LITERAL:
        out += glob.chars[i]!.replace(REGEX_SPECIAL, '\\$&');
        break;
      case ONE:
        out += '[\\s\\S]';
        break;
      case ONE_IN_SEGMENT:
        out += '[^:]';
        break;
      case STAR:
        out += '[\\s\\S]*';
        break;
      default:
        out += '[^:]*';
    }
  }
  return out;
}

function tokenMatches(kind: number, patternChar: string, c: string): boolean {
  if (kind === LITERAL) return patternChar === c;
  return kind === ONE || kind === STAR || c !== ':';
}

/**
 * Glob matching when every star may match anything: the classic two-pointer walk that, on a
 * mismatch, retries from the last star one character further.
 */
function greedyMatch(glob: Glob, s: string): boolean {
  const { chars, kinds } = glob;
  const m = kinds.length;
  let p = 0;
  let i = 0;
  let starP = -1;
  let starI = 0;
  while (i < s.length) {
    if (p < m) {
      const k = kinds[p]!;
      if (k === STAR) {
        starP = p++;
        starI = i;
        continue;
      }
      if (tokenMatches(k, chars[p]!, s[i]!)) {
        p++;
        i++;
        continue;
      }
    }
    if (starP < 0) return false;
    p = starP + 1;
    i = ++starI;
  }
  while (p < m && kinds[p] === STAR) p++;
  return p === m;
}

let current = new Uint8Array(64);
let next = new Uint8Array(64);

/** Glob matching by simulating the pattern's NFA: the set of pattern positions reached so far. */
function nfaMatch(glob: Glob, s: string): boolean {
  const { chars, kinds } = glob;
  const m = kinds.length;
  if (current.length <= m) {
    current = new Uint8Array(m + 1);
    next = new Uint8Array(m + 1);
  }
  const closeOverStars = (set: Uint8Array) => {
    for (let p = 0; p < m; p++) if (set[p] && (kinds[p] === STAR || kinds[p] === STAR_IN_SEGMENT)) set[p + 1] = 1;
  };
  current.fill(0, 0, m + 1);
  current[0] = 1;
  closeOverStars(current);
  for (let i = 0; i < s.length; i++) {
    const c = s[i]!;
    next.fill(0, 0, m + 1);
    let alive = false;
    for (let p = 0; p < m; p++) {
      if (!current[p]) continue;
      const k = kinds[p]!;
      if (!tokenMatches(k, chars[p]!, c)) continue;
      if (k === STAR || k === STAR_IN_SEGMENT) next[p] = 1;
      else next[p + 1] = 1;
      alive = true;
    }
    if (!alive) return false;
    closeOverStars(next);
    [current, next] = [next, current];
  }
  return current[m] === 1;
}

function globMatch(glob: Glob, s: string): boolean {
  return glob.hasSegmentStar ? nfaMatch(glob, s) : greedyMatch(glob, s);
}

/**
 * The patterns of one element (an Action list, a Resource list, the values of a StringLike or
 * ArnLike condition), matched as a set: a value matches if any pattern does. Compiled once at
 * parse time; patterns with policy variables are compiled per request from their substituted
 * pieces, which costs a walk over the pattern and no RegExp.
 */
export class PatternSet {
  /** The set contains a pattern that matches every string (`*`). */
  readonly matchesEverything: boolean;
  /** Some pattern has a policy variable, so what it matches depends on the request. */
  readonly usesVariables: boolean;
  readonly #exact: Set<string>;
  /** The patterns with at most one star, as one anchored alternation. */
  readonly #regex: RegExp | undefined;
  readonly #globs: Glob[];
  readonly #templates: Template[];
  readonly #flavor: GlobFlavor;
  readonly #ignoreCase: boolean;

  constructor(patterns: readonly (readonly Piece[])[], flavor: GlobFlavor, options: { ignoreCase?: boolean } = {}) {
    this.#flavor = flavor;
    this.#ignoreCase = options.ignoreCase ?? false;
    this.#exact = new Set();
    this.#globs = [];
    this.#templates = [];
    const sources: string[] = [];
    let everything = false;
    for (const pieces of patterns) {
      const fixed = staticPieces(pieces);
      if (!fixed) {
        this.#templates.push({ pieces, compiled: new Map() });
        continue;
      }
      if (!hasWildcard(fixed)) {
        const text = piecesText(fixed);
        this.#exact.add(this.#ignoreCase ? text.toLowerCase() : text);
        continue;
      }
      const glob = compileGlob(fixed, flavor, this.#ignoreCase);
      if (glob.kinds.length === 1 && glob.kinds[0] === STAR) everything = true;
      if (glob.stars <= 1) sources.push(regexSource(glob));
      else this.#globs.push(glob);
    }
    this.matchesEverything = everything;
    this.usesVariables = this.#templates.length > 0;
    this.#regex = sources.length ? new RegExp(`^(?:${sources.join('|')})$`, this.#ignoreCase ? 'i' : '') : undefined;
  }

  matches(value: string, vars: VariableSource): boolean {
    if (this.matchesEverything) return true;
    const folded = this.#ignoreCase ? value.toLowerCase() : value;
    if (this.#exact.has(folded)) return true;
    if (this.#regex?.test(value)) return true;
    for (const glob of this.#globs) if (globMatch(glob, folded)) return true;
    for (const template of this.#templates) {
      const glob = this.#resolve(template, vars);
      if (glob && globMatch(glob, folded)) return true;
    }
    return false;
  }

  /** The template's glob for this request's variable values; undefined if one is unresolvable. */
  #resolve(template: Template, vars: VariableSource): Glob | undefined {
    let cacheKey = '';
    for (const piece of template.pieces) {
      if (piece.kind !== 'variable') continue;
      const value = vars.variable(piece.key) ?? piece.fallback;
      if (value === undefined) return undefined;
      cacheKey += `${value}\u0000`;
    }
    let glob = template.compiled.get(cacheKey);
    if (!glob) {
      // Bounded: a policy shared by many users keeps at most this many compiled forms.
      if (template.compiled.size >= 256) template.compiled.clear();
      glob = compileGlob(substitute(template.pieces, vars)!, this.#flavor, this.#ignoreCase);
      template.compiled.set(cacheKey, glob);
    }
    return glob;
  }
}

/** A pattern with policy variables, compiled once per distinct set of substituted values. */
interface Template {
  pieces: readonly Piece[];
  compiled: Map<string, Glob>;
}

/** The pieces as StaticPiece[] when they hold no variable. */
function staticPieces(pieces: readonly Piece[]): StaticPiece[] | undefined {
  return isStatic(pieces) ? (pieces as StaticPiece[]) : undefined;
}
