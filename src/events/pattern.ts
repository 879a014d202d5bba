/**
 * EventBridge event patterns: validation and matching, for filtering the events Berth emits.
 * Pure logic, no I/O. Compile once with compilePattern(), then call matches() per event.
 *
 * Sources: the EventBridge User Guide ("Amazon EventBridge event patterns", "Comparison operators
 * for use in event patterns", "Content filtering in Amazon EventBridge event patterns", "Arrays in
 * Amazon EventBridge event patterns", "Matching null values and empty strings"), and, where the
 * guide is silent, the behaviour of aws/event-ruler (the library EventBridge matches with) and of
 * AWS's TestEventPattern as recorded by LocalStack's validated tests. In short:
 *
 * - A pattern is a JSON object. A field holds either an object (nested fields) or a non-empty array
 *   of values and operator objects. Fields AND together; the entries of one array OR together.
 * - The event is flattened into leaf values keyed by their dotted path, so a pattern key
 *   "state.status" and nested {"state": {"status": ...}} name the same field, in patterns and in
 *   events alike (event-ruler's README, "JSON keys with dots"; AWS answers the same). A later key
 *   for the same path replaces an earlier one, as the guide says of duplicate keys.
 * - An event array contributes each of its elements, so a field matches when any element does.
 *   Fields taken from objects inside an array must come from the same element of that array
 *   (event-ruler's "array-consistent" matching): {"a": {"x": [1], "y": [2]}} does not match
 *   {"a": [{"x": 1}, {"y": 2}]}.
 * - Only leaves exist: an empty array or an object has no value at its own path, so
 *   {"exists": true} fails and {"exists": false} succeeds there.
 * - String operators (prefix, suffix, equals-ignore-case, wildcard, cidr) only match strings;
 *   numeric only matches JSON numbers; every anything-but form matches any value it does not
 *   exclude, null and numbers included, but never a missing field.
 * - Exact numbers compare by value (300 matches 300.0: AWS does, whatever the guide says).
 *   Exact strings that are IP addresses compare as addresses, as event-ruler does.
 * - "$or" takes at least two objects and expands into alternatives; more than 1000 is refused.
 *
 * Deliberately not copied from EventBridge:
 * - EventBridge refuses some wildcard patterns as "too complex" (a limit on event-ruler's automaton
 *   whose threshold AWS does not publish). Wildcards here match in linear time without an
 *   automaton, so there is no cost to limit and such patterns are accepted.
 * - Numbers: JSON.parse reads numbers as doubles, so event-ruler's refusal of numbers a double
 *   cannot hold exactly (e.g. 12345678901234567890 in a numeric range) cannot be reproduced.
 * - equals-ignore-case folds each code point to its lower and upper case (event-ruler does this
 *   per UTF-16 unit, which breaks characters outside the BMP).
 * - The undocumented event-ruler operator "exactly" is refused like any other unknown operator.
 * - Limits on the pattern's size belong to the API that stores it, not here.
 */
import ipaddr from 'ipaddr.js';

export interface EventPattern {
  /** True when the event matches. Anything that is not a JSON object never matches. */
  matches(event: unknown): boolean;
}

/** A pattern EventBridge would refuse; `path` locates the fault in JSONPath style, `$` being the whole pattern. */
export class EventPatternError extends Error {
  override readonly name = 'EventPatternError';
  readonly path: string;
  readonly reason: string;

  constructor(path: string, reason: string) {
    super(`Event pattern is not valid at ${path}: ${reason}`);
    this.path = path;
    this.reason = reason;
  }
}

/** Parses (when given text), validates and compiles an event pattern. Throws EventPatternError. */
export function compilePattern(text: string | object): EventPattern {
  let document: unknown = text;
  if (typeof text === 'string') {
    try {
      document = JSON.parse(text);
    } catch (err) {
      throw new EventPatternError('$', `the text is not valid JSON (${(err as Error).message}).`);
    }
  }
  if (!isObject(document)) throw fault([], `an event pattern must be a JSON object, but it is ${show(document)}.`);
  const compiler = new Compiler();
  const drafts = compiler.object(document, [], [], [new Map()], false);
  const alternatives = drafts.map((draft) =>
    [...draft].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([path, leaf]) => ({ path, leaf })),
  );
  return new CompiledPattern(alternatives, compiler.steps);
}

// --- compiling ---------------------------------------------------------------------------------

type Scalar = string | number | boolean | null;
type ValueTest = (value: Scalar) => boolean;
type JsonObject = Record<string, unknown>;
type Segment = string | number;

/** What one field of the pattern accepts. */
interface Leaf {
  /** True when the value is one the field's array accepts. */
  readonly accepts: ValueTest;
  /** The array holds {"exists": false}: the field may also be missing. */
  readonly allowsAbsent: boolean;
}

interface Condition {
  readonly path: string;
  readonly leaf: Leaf;
}

/** One alternative of the pattern after "$or" is expanded: every condition must hold. */
type Alternative = readonly Condition[];
type Draft = Map<string, Leaf>;

/** EventBridge's documented ceiling on the alternatives "$or" may expand into. */
const MAX_ALTERNATIVES = 1000;

const OPERATOR_NAMES = 'prefix, suffix, equals-ignore-case, wildcard, anything-but, numeric, exists or cidr';

/** Field names event-ruler refuses inside "$or" (its RESERVED_FIELD_NAMES_IN_OR_RELATIONSHIP). */
const RESERVED_IN_OR: ReadonlySet<string> = new Set([
  'exactly', 'equals-ignore-case', 'prefix', 'suffix', 'anything-but', 'exists', 'wildcard', 'numeric', 'cidr',
  '=', '<', '<=', '>', '>=', 'regex', 'not-wildcard', 'not-equals-ignore-case', 'date-after', 'date-on-or-after',
  'date-before', 'date-on-or-before', 'in-date-range', 'ip-address-in-range', 'ip-address-not-in-range',
]);

class Compiler {
  /** Every key segment the pattern names; event keys outside it cannot matter and are skipped. */
  readonly steps = new Set<string>();

  /** Adds the object's fields to every draft; "$or" forks the drafts. Returns the drafts that result. */
  object(node: JsonObject, fieldPath: readonly string[], at: readonly Segment[], drafts: Draft[], insideOr: boolean): Draft[] {
    const keys = Object.keys(node);
    if (keys.length === 0) throw fault(at, 'an empty object is not allowed; name at least one field to match.');
    for (const key of keys) {
      const value = node[key];
      const where = [...at, key];
      if (key === '$or') {
        drafts = this.or(value, fieldPath, where, drafts);
        continue;
      }
      if (insideOr && RESERVED_IN_OR.has(key)) {
        throw fault(where, `"${key}" cannot be a field name inside "$or": EventBridge reserves it for operators.`);
      }
      for (const step of key.split('.')) this.steps.add(step);
      if (Array.isArray(value)) {
        const leaf = compileLeaf(value, where);
        const path = [...fieldPath, key].join('.');
        for (const draft of drafts) draft.set(path, leaf);
      } else if (isObject(value)) {
        drafts = this.object(value, [...fieldPath, key], where, drafts, insideOr);
      } else {
        throw fault(
          where,
          `a field must hold an array of values to match or an object of nested fields, but it is ${show(value)}.`,
        );
      }
    }
    return drafts;
  }

  private or(value: unknown, fieldPath: readonly string[], at: readonly Segment[], drafts: Draft[]): Draft[] {
    if (!Array.isArray(value)) throw fault(at, `"$or" must be an array of at least two objects, but it is ${show(value)}.`);
    const result: Draft[] = [];
    value.forEach((branch: unknown, index) => {
      if (!isObject(branch)) throw fault([...at, index], `each alternative in "$or" must be an object, but it is ${show(branch)}.`);
      const forks = drafts.map((draft) => new Map(draft));
      result.push(...this.object(branch, fieldPath, [...at, index], forks, true));
      if (result.length > MAX_ALTERNATIVES) {
        throw fault(
          at,
          `the "$or" alternatives combine into more than ${MAX_ALTERNATIVES} patterns, which EventBridge refuses; ` +
            'the count is the product of the number of alternatives in each "$or".',
        );
      }
    });
    if (value.length < 2) throw fault(at, `"$or" must list at least two alternatives, but it has ${value.length}.`);
    return result;
  }
}

/** Collects what one field's array accepts, keeping exact values in sets so long lists stay cheap. */
class LeafBuilder {
  readonly strings = new Set<string>();
  readonly numbers = new Set<number>();
  /** Exact strings that are IP addresses, by address, so that 2001:db8::1 matches 2001:0db8:0:0::1. */
  readonly addresses = new Set<string>();
  readonly networks: [IpAddress, number][] = [];
  readonly tests: ValueTest[] = [];
  acceptsTrue = false;
  acceptsFalse = false;
  acceptsNull = false;
  acceptsAnyValue = false;
  allowsAbsent = false;

  build(): Leaf {
    const { strings, numbers, addresses, networks, tests, acceptsTrue, acceptsFalse, acceptsNull, acceptsAnyValue } = this;
    const checksAddresses = addresses.size > 0 || networks.length > 0;
    const accepts: ValueTest = (value) => {
      if (acceptsAnyValue) return true;
      switch (typeof value) {
        case 'string':
          if (strings.has(value)) return true;
          if (checksAddresses) {
            const address = parseIp(value);
            if (address !== undefined) {
              if (addresses.has(addressKey(address))) return true;
              for (const [network, bits] of networks) if (sameKind(address, network) && address.match(network, bits)) return true;
            }
          }
          break;
        case 'number':
          if (numbers.has(value)) return true;
          break;
        case 'boolean':
          if (value ? acceptsTrue : acceptsFalse) return true;
          break;
        default:
          if (value === null && acceptsNull) return true;
      }
      for (const test of tests) if (test(value)) return true;
      return false;
    };
    return { accepts, allowsAbsent: this.allowsAbsent };
  }
}

function compileLeaf(values: readonly unknown[], at: readonly Segment[]): Leaf {
  if (values.length === 0) throw fault(at, 'an empty array is not allowed; list at least one value to match.');
  const leaf = new LeafBuilder();
  values.forEach((value, index) => {
    const where = [...at, index];
    if (typeof value === 'string') {
      leaf.strings.add(value);
      const address = parseIp(value);
      if (address !== undefined) leaf.addresses.add(addressKey(address));
    } else if (typeof value === 'number') {
      leaf.numbers.add(finite(value, where));
    } else if (typeof value === 'boolean') {
      if (value) leaf.acceptsTrue = true;
      else leaf.acceptsFalse = true;
    } else if (value === null) {
      leaf.acceptsNull = true;
    } else if (isObject(value)) {
      compileOperator(value, where, leaf);
    } else {
      throw fault(
        where,
        `each entry must be a string, a number, true, false, null or an operator object such as {"prefix": "abc"}, but it is ${show(value)}.`,
      );
    }
  });
  return leaf.build();
}

function compileOperator(node: JsonObject, at: readonly Segment[], leaf: LeafBuilder): void {
  const keys = Object.keys(node);
  if (keys.length !== 1) {
    const found = keys.length === 0 ? 'none' : `${keys.length}: ${keys.map((k) => JSON.stringify(k)).join(', ')}`;
    throw fault(at, `an operator object must hold exactly one operator, but it has ${found}.`);
  }
  const operator = keys[0]!;
  const argument = node[operator];
  const where = [...at, operator];
  switch (operator) {
    case 'prefix': {
      if (isObject(argument)) {
        const folded = fold(ignoreCaseArgument(argument, where, 'prefix'));
        leaf.tests.push((value) => typeof value === 'string' && foldedMatchForward(value, 0, folded, 0, false));
      } else {
        const prefix = stringArgument(argument, where, 'prefix must be a string or {"equals-ignore-case": "<string>"}');
        leaf.tests.push((value) => typeof value === 'string' && value.startsWith(prefix));
      }
      return;
    }
    case 'suffix': {
      if (isObject(argument)) {
        const folded = fold(ignoreCaseArgument(argument, where, 'suffix'));
        leaf.tests.push((value) => typeof value === 'string' && foldedMatchBackward(value, value.length, folded, folded.length - 1));
      } else {
        const suffix = stringArgument(argument, where, 'suffix must be a string or {"equals-ignore-case": "<string>"}');
        leaf.tests.push((value) => typeof value === 'string' && value.endsWith(suffix));
      }
      return;
    }
    case 'equals-ignore-case': {
      const folded = fold(stringArgument(argument, where, 'equals-ignore-case must be a string'));
      leaf.tests.push((value) => typeof value === 'string' && foldedMatchForward(value, 0, folded, 0, true));
      return;
    }
    case 'wildcard': {
      const segments = parseWildcard(stringArgument(argument, where, 'wildcard must be a string'), where);
      leaf.tests.push((value) => typeof value === 'string' && wildcardMatches(value, segments));
      return;
    }
    case 'anything-but':
      leaf.tests.push(compileAnythingBut(argument, where));
      return;
    case 'numeric': {
      const range = parseNumericRange(argument, where);
      leaf.tests.push(
        (value) =>
          typeof value === 'number' &&
          (range.lowerOpen ? value > range.lower : value >= range.lower) &&
          (range.upperOpen ? value < range.upper : value <= range.upper),
      );
      return;
    }
    case 'exists':
      if (argument === true) leaf.acceptsAnyValue = true;
      else if (argument === false) leaf.allowsAbsent = true;
      else throw fault(where, `exists must be true or false, but it is ${show(argument)}.`);
      return;
    case 'cidr':
      leaf.networks.push(parseCidr(stringArgument(argument, where, 'cidr must be a string such as "10.0.0.0/24"'), where));
      return;
    default:
      throw fault(
        at,
        `"${operator}" is not an event pattern operator; use one of ${OPERATOR_NAMES} (operator names are case-sensitive).`,
      );
  }
}

function stringArgument(argument: unknown, at: readonly Segment[], requirement: string): string {
  if (typeof argument !== 'string') throw fault(at, `${requirement}, but it is ${show(argument)}.`);
  return argument;
}

/** The {"equals-ignore-case": "..."} object that prefix and suffix accept. */
function ignoreCaseArgument(node: JsonObject, at: readonly Segment[], operator: string): string {
  const keys = Object.keys(node);
  if (keys.length !== 1 || keys[0] !== 'equals-ignore-case') {
    throw fault(
      at,
      `inside ${operator} the only operator allowed is equals-ignore-case, as in {"${operator}": {"equals-ignore-case": "abc"}}, but it is ${show(node)}.`,
    );
  }
  return stringArgument(node['equals-ignore-case'], [...at, 'equals-ignore-case'], 'equals-ignore-case must be a string');
}

function compileAnythingBut(argument: unknown, at: readonly Segment[]): ValueTest {
  if (typeof argument === 'string') return (value) => value !== argument;
  if (typeof argument === 'number') {
    const excluded = finite(argument, at);
    return (value) => value !== excluded;
  }
  if (Array.isArray(argument)) {
    if (argument.length === 0) throw fault(at, 'the anything-but list must not be empty.');
    const kind = typeof argument[0];
    argument.forEach((entry: unknown, index) => {
      if ((typeof entry !== 'string' && typeof entry !== 'number') || typeof entry !== kind) {
        throw fault(
          [...at, index],
          `the anything-but list must hold only strings or only numbers, but entry ${index} is ${show(entry)}.`,
        );
      }
      if (typeof entry === 'number') finite(entry, [...at, index]);
    });
    if (kind === 'string') {
      const excluded = new Set(argument as string[]);
      return (value) => typeof value !== 'string' || !excluded.has(value);
    }
    const excluded = new Set(argument as number[]);
    return (value) => typeof value !== 'number' || !excluded.has(value);
  }
  if (!isObject(argument)) {
    throw fault(
      at,
      'anything-but must be a string, a number, a list of strings or of numbers, or an object with one of prefix, ' +
        `suffix, equals-ignore-case or wildcard, but it is ${show(argument)}.`,
    );
  }
  const keys = Object.keys(argument);
  const inner = keys[0];
  if (keys.length !== 1 || inner === undefined) {
    throw fault(at, `inside anything-but give exactly one of prefix, suffix, equals-ignore-case or wildcard, but it is ${show(argument)}.`);
  }
  const where = [...at, inner];
  const raw = argument[inner];
  if (!['prefix', 'suffix', 'equals-ignore-case', 'wildcard'].includes(inner)) {
    throw fault(where, `"${inner}" cannot be used inside anything-but; use prefix, suffix, equals-ignore-case or wildcard.`);
  }
  const list = Array.isArray(raw) ? raw : [raw];
  const texts = list.map((entry: unknown, index) => {
    const entryAt = Array.isArray(raw) ? [...where, index] : where;
    const text = stringArgument(entry, entryAt, `anything-but ${inner} must be a string or a list of strings`);
    if (text === '' && (inner === 'prefix' || inner === 'suffix')) {
      const reason = inner === 'prefix' ? 'every string starts with it' : 'every string ends with it';
      throw fault(entryAt, `anything-but ${inner} must not be the empty string: ${reason}.`);
    }
    return text;
  });
  switch (inner) {
    case 'prefix':
      return (value) => typeof value !== 'string' || !texts.some((prefix) => value.startsWith(prefix));
    case 'suffix':
      return (value) => typeof value !== 'string' || !texts.some((suffix) => value.endsWith(suffix));
    case 'equals-ignore-case': {
      const folded = texts.map(fold);
      return (value) => typeof value !== 'string' || !folded.some((f) => foldedMatchForward(value, 0, f, 0, true));
    }
    default: {
      const patterns = texts.map((text, index) => parseWildcard(text, Array.isArray(raw) ? [...where, index] : where));
      return (value) => typeof value !== 'string' || !patterns.some((segments) => wildcardMatches(value, segments));
    }
  }
}

function finite(value: number, at: readonly Segment[]): number {
  if (!Number.isFinite(value)) throw fault(at, `numbers must be finite, but it is ${String(value)}.`);
  return value;
}

// --- numeric ranges ----------------------------------------------------------------------------

interface NumericRange {
  lower: number;
  lowerOpen: boolean;
  upper: number;
  upperOpen: boolean;
}

const COMPARISONS = ['=', '<', '<=', '>', '>='];

/** ["=", n], ["<" | "<=", n], or [">" | ">=", n] optionally followed by "<" | "<=", m, with n < m. */
function parseNumericRange(argument: unknown, at: readonly Segment[]): NumericRange {
  if (!Array.isArray(argument)) throw fault(at, `numeric must be an array such as [">", 0, "<=", 5], but it is ${show(argument)}.`);
  const terms: readonly unknown[] = argument;
  const operator = terms[0];
  if (typeof operator !== 'string' || !COMPARISONS.includes(operator)) {
    throw fault([...at, 0], `numeric must start with one of "=", "<", "<=", ">" or ">=", but it starts with ${show(operator)}.`);
  }
  const first = numericTerm(terms, 1, operator, at);
  if (operator === '=' || operator === '<' || operator === '<=') {
    if (terms.length > 2) {
      throw fault([...at, 2], `nothing may follow "${operator}" and its number; only ">" and ">=" can be followed by "<" or "<=".`);
    }
    if (operator === '=') return { lower: first, lowerOpen: false, upper: first, upperOpen: false };
    return { lower: -Infinity, lowerOpen: false, upper: first, upperOpen: operator === '<' };
  }
  const range = { lower: first, lowerOpen: operator === '>', upper: Infinity, upperOpen: false };
  if (terms.length === 2) return range;
  const second = terms[2];
  if (second !== '<' && second !== '<=') {
    throw fault([...at, 2], `a range that starts with "${operator}" can only continue with "<" or "<=", but it continues with ${show(second)}.`);
  }
  range.upper = numericTerm(terms, 3, second, at);
  range.upperOpen = second === '<';
  if (terms.length > 4) throw fault([...at, 4], 'a numeric range has at most two comparisons, as in [">", 0, "<=", 5].');
  if (!(range.lower < range.upper)) {
    throw fault(at, `the lower bound (${range.lower}) must be less than the upper bound (${range.upper}).`);
  }
  return range;
}

function numericTerm(terms: readonly unknown[], index: number, operator: string, at: readonly Segment[]): number {
  const term = terms[index];
  if (typeof term !== 'number') throw fault([...at, index], `"${operator}" must be followed by a number, but it is ${show(term)}.`);
  return finite(term, [...at, index]);
}

// --- wildcards ---------------------------------------------------------------------------------

/**
 * The literal runs between unescaped "*"; a pattern with n stars has n + 1 runs. "\*" and "\\"
 * stand for "*" and "\"; any other backslash, and "**", are refused (guide: "Wildcard matching").
 */
function parseWildcard(pattern: string, at: readonly Segment[]): string[] {
  const segments: string[] = [];
  let current = '';
  for (let i = 0; i < pattern.length; i++) {
    const ch = pattern[i];
    if (ch === '*') {
      if (pattern[i + 1] === '*') {
        throw fault(at, `"**" at character ${i + 1} is not allowed: one "*" already matches any run of characters.`);
      }
      segments.push(current);
      current = '';
    } else if (ch === '\\') {
      const next = pattern[i + 1];
      if (next !== '*' && next !== '\\') {
        throw fault(at, `the backslash at character ${i + 1} must be followed by "*" or "\\", to match that character itself.`);
      }
      current += next;
      i++;
    } else {
      current += ch;
    }
  }
  segments.push(current);
  return segments;
}

/** Glob matching with "*" only: anchored first and last runs, leftmost placement of the rest; linear, no backtracking. */
function wildcardMatches(value: string, segments: readonly string[]): boolean {
  const first = segments[0]!;
  if (segments.length === 1) return value === first;
  const last = segments[segments.length - 1]!;
  if (value.length < first.length + last.length || !value.startsWith(first) || !value.endsWith(last)) return false;
  const limit = value.length - last.length;
  let position = first.length;
  for (let i = 1; i < segments.length - 1; i++) {
    const segment = segments[i]!;
    const found = value.indexOf(segment, position);
    if (found < 0 || found + segment.length > limit) return false;
    position = found + segment.length;
  }
  return true;
}

// --- case-insensitive matching -----------------------------------------------------------------

/**
 * For each code point of the pattern, the texts it matches: its lower- and its upper-case form
 * (one entry when they agree). This is how event-ruler reads equals-ignore-case, and it is not the
 * same as comparing toLowerCase() of both sides: "ß" matches "ß" or "SS" but not "ss".
 */
type Folded = readonly (readonly string[])[];

function fold(text: string): Folded {
  return Array.from(text, (ch) => {
    const lower = ch.toLowerCase();
    const upper = ch.toUpperCase();
    return lower === upper ? [lower] : [lower, upper];
  });
}

/** Matches folded[k..] at value[position..]; `whole` requires the value to end there too. */
function foldedMatchForward(value: string, position: number, folded: Folded, k: number, whole: boolean): boolean {
  for (; k < folded.length; k++) {
    let next = -1;
    for (const text of folded[k]!) {
      if (!value.startsWith(text, position)) continue;
      // Both forms fit only when one is a prefix of the other, which almost never happens, so
      // the second is tried by recursion and the common path stays a loop.
      if (next < 0) next = position + text.length;
      else if (foldedMatchForward(value, position + text.length, folded, k + 1, whole)) return true;
    }
    if (next < 0) return false;
    position = next;
  }
  return !whole || position === value.length;
}

/** Matches folded[0..k] so that it ends at value[end]. */
function foldedMatchBackward(value: string, end: number, folded: Folded, k: number): boolean {
  for (; k >= 0; k--) {
    let next = -1;
    for (const text of folded[k]!) {
      const start = end - text.length;
      if (start < 0 || !value.startsWith(text, start)) continue;
      if (next < 0) next = start;
      else if (foldedMatchBackward(value, start, folded, k - 1)) return true;
    }
    if (next < 0) return false;
    end = next;
  }
  return true;
}

// --- IP addresses ------------------------------------------------------------------------------

type IpAddress = ipaddr.IPv4 | ipaddr.IPv6;

// event-ruler only treats text of these shapes as addresses (its IPv4_REGEX and IPv6_REGEX).
const IPV4_SHAPE = /^[0-9]+\.[0-9]+\.[0-9]+\.[0-9]+$/;
const IPV6_SHAPE = /^[0-9a-fA-F:]*:[0-9a-fA-F:]*$/;

function parseIp(text: string): IpAddress | undefined {
  if (IPV4_SHAPE.test(text)) {
    // Leading zeros are refused: "010.0.0.1" is octal to some parsers and decimal to others.
    return ipaddr.IPv4.isValidFourPartDecimal(text) ? ipaddr.IPv4.parse(text) : undefined;
  }
  if (IPV6_SHAPE.test(text) && ipaddr.IPv6.isValid(text)) {
    const v6 = ipaddr.IPv6.parse(text);
    // Java, and so event-ruler, reads ::ffff:a.b.c.d forms as the IPv4 address.
    return v6.isIPv4MappedAddress() ? v6.toIPv4Address() : v6;
  }
  return undefined;
}

function addressKey(address: IpAddress): string {
  return `${address.kind()}:${address.toByteArray().join('.')}`;
}

function sameKind(a: IpAddress, b: IpAddress): boolean {
  return a.kind() === b.kind();
}

function parseCidr(text: string, at: readonly Segment[]): [IpAddress, number] {
  const parts = text.split('/');
  if (parts.length !== 2) throw fault(at, `a CIDR block must be an address, one "/" and a prefix length, as in "10.0.0.0/24", but it is ${show(text)}.`);
  const [addressText, bitsText] = parts as [string, string];
  if (!/^[0-9]+$/.test(bitsText)) throw fault(at, `the prefix length after "/" must be a whole number, but it is ${show(bitsText)}.`);
  const address = parseIp(addressText);
  if (address === undefined) throw fault(at, `${show(addressText)} is not an IPv4 or IPv6 address.`);
  const bits = Number(bitsText);
  const limit = address.kind() === 'ipv4' ? 31 : 127;
  if (bits > limit) {
    throw fault(
      at,
      `an ${address.kind() === 'ipv4' ? 'IPv4' : 'IPv6'} prefix length must be from 0 to ${limit} (EventBridge refuses /${limit + 1}; ` +
        'to match a single address, list the address itself as a value).',
    );
  }
  return [address, bits];
}

// --- matching ----------------------------------------------------------------------------------

/**
 * The array elements a value sits in, outermost first, as flat pairs [arrayId, index, ...]. Two
 * values may be used together only if they agree on the index of every array they share.
 */
type Membership = readonly number[];

interface FieldValue {
  readonly value: Scalar;
  readonly membership: Membership;
}

type EventIndex = Map<string, FieldValue[]>;

const NO_MEMBERSHIP: Membership = [];

class CompiledPattern implements EventPattern {
  private readonly alternatives: readonly Alternative[];
  private readonly steps: ReadonlySet<string>;

  constructor(alternatives: readonly Alternative[], steps: ReadonlySet<string>) {
    this.alternatives = alternatives;
    this.steps = steps;
  }

  matches(event: unknown): boolean {
    if (!isObject(event)) return false;
    const index = indexEvent(event, this.steps);
    return this.alternatives.some((conditions) => matchFrom(conditions, 0, index, NO_MEMBERSHIP));
  }
}

/** The event's leaf values by dotted path, skipping keys that no pattern step names. */
function indexEvent(event: JsonObject, steps: ReadonlySet<string>): EventIndex {
  const index: EventIndex = new Map();
  let arrays = 0;
  const isUsed = (key: string) => steps.has(key) || (key.includes('.') && key.split('.').every((step) => steps.has(step)));
  const visitObject = (node: JsonObject, path: string, membership: Membership): void => {
    for (const key of Object.keys(node)) {
      if (isUsed(key)) visit(node[key], path === '' ? key : `${path}.${key}`, membership);
    }
  };
  const visit = (node: unknown, path: string, membership: Membership): void => {
    if (Array.isArray(node)) {
      const arrayId = arrays++;
      node.forEach((element: unknown, i) => {
        // Scalars in an array share their parent's place; objects and arrays open an element.
        visit(element, path, element !== null && typeof element === 'object' ? [...membership, arrayId, i] : membership);
      });
    } else if (isObject(node)) {
      visitObject(node, path, membership);
    } else if (node === null || typeof node === 'string' || typeof node === 'number' || typeof node === 'boolean') {
      let values = index.get(path);
      if (values === undefined) index.set(path, (values = []));
      values.push({ value: node, membership });
    }
  };
  visitObject(event, '', NO_MEMBERSHIP);
  return index;
}

/**
 * Whether conditions[k..] hold, using only values consistent with `constraints`. Conditions are in
 * path order, and {"exists": false} is judged against the values chosen for earlier paths, as
 * event-ruler's walk does.
 */
function matchFrom(conditions: Alternative, k: number, index: EventIndex, constraints: Membership): boolean {
  if (k === conditions.length) return true;
  const { path, leaf } = conditions[k]!;
  const values = index.get(path);
  let anyConsistent = false;
  let triedUnconstrained = false;
  if (values !== undefined) {
    for (const { value, membership } of values) {
      const merged = merge(constraints, membership);
      if (merged === null) continue;
      anyConsistent = true;
      // A value that adds no constraint leaves the rest of the search exactly as the last such
      // value left it; if that failed, so would this. Keeps events without object arrays linear.
      if (merged === constraints && triedUnconstrained) continue;
      if (!leaf.accepts(value)) continue;
      if (merged === constraints) triedUnconstrained = true;
      if (matchFrom(conditions, k + 1, index, merged)) return true;
    }
  }
  return leaf.allowsAbsent && !anyConsistent && matchFrom(conditions, k + 1, index, constraints);
}

/** The constraints with the membership added, the same object if it adds nothing, or null on a conflict. */
function merge(constraints: Membership, membership: Membership): Membership | null {
  if (membership.length === 0) return constraints;
  if (constraints.length === 0) return membership;
  let merged: number[] | undefined;
  next: for (let i = 0; i < membership.length; i += 2) {
    const arrayId = membership[i]!;
    const element = membership[i + 1]!;
    for (let j = 0; j < constraints.length; j += 2) {
      if (constraints[j] === arrayId) {
        if (constraints[j + 1] !== element) return null;
        continue next;
      }
    }
    (merged ??= [...constraints]).push(arrayId, element);
  }
  return merged ?? constraints;
}

// --- helpers -----------------------------------------------------------------------------------

function isObject(value: unknown): value is JsonObject {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function fault(at: readonly Segment[], reason: string): EventPatternError {
  return new EventPatternError(formatPath(at), reason);
}

function formatPath(at: readonly Segment[]): string {
  let path = '$';
  for (const segment of at) {
    if (typeof segment === 'number') path += `[${segment}]`;
    else if (/^[A-Za-z_$][\w$-]*$/.test(segment)) path += `.${segment}`;
    else path += `[${JSON.stringify(segment)}]`;
  }
  return path;
}

function show(value: unknown): string {
  if (value === undefined) return 'missing';
  if (typeof value === 'number' && !Number.isFinite(value)) return String(value);
  const text = JSON.stringify(value) ?? String(value);
  return text.length > 80 ? `${text.slice(0, 77)}...` : text;
}
