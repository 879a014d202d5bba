import ipaddr from 'ipaddr.js';
import { normalizeKey } from './context.ts';
import type { RequestScope, VariableSource } from './context.ts';
import { isStatic, parsePieces, PatternSet, piecesText, substitute } from './wildcard.ts';
import type { Piece } from './wildcard.ts';

/**
 * The Condition element: operators, their values and AWS's rules for missing keys.
 *
 * Within one operator/key pair the policy's values are ORed (NORed for a negated operator);
 * every pair of a statement must hold. When the request lacks the key:
 * - a plain operator is false, a negated one (StringNotEquals, NotIpAddress, ArnNotLike...) true;
 * - `...IfExists` is true;
 * - `ForAllValues:` is true (vacuously: every one of no values matches), `ForAnyValue:` false;
 * - `Null` is what it tests: "true" holds when the key is missing, "false" when it is present.
 * An empty multi-valued key (`[]`) counts as missing. A multi-valued key under an operator with
 * no set prefix holds when any of its values matches (and a negated operator when none does).
 */

/** A JSON value allowed as a condition value. */
type Scalar = string | number | boolean;

/** True when a request value matches at least one of the policy's values. */
type ValueTest = (value: string, vars: VariableSource) => boolean;

interface CompileContext {
  withVariables: boolean;
}

type Compile = (values: readonly string[], cc: CompileContext) => ValueTest | string;

interface OperatorSpec {
  negated: boolean;
  compile: Compile;
}

/** One operator applied to one key, e.g. `"ForAnyValue:StringLike": {"aws:TagKeys": [...]}`. */
export interface CompiledCondition {
  /** The operator as written, e.g. "ForAnyValue:StringLikeIfExists". */
  readonly operator: string;
  /** The key as written, e.g. "aws:ResourceTag/Team". */
  readonly key: string;
  /** Whether the condition holds for the request. */
  holds(scope: RequestScope): boolean;
}

// --- value parsing ---------------------------------------------------------------------------

const NUMBER = /^[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?$/;

function parseNumber(s: string): number | undefined {
  return NUMBER.test(s) ? Number(s) : undefined;
}

const ISO_DATE = /^(\d{4})-(\d{2})-(\d{2})(?:[Tt](\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,9}))?)?)?([Zz]|[+-]\d{2}(?::?\d{2})?)?$/;

/** ISO 8601 (2024-05-01, 2024-05-01T12:00:00Z, ...+02:00; UTC when no zone) or epoch seconds; in ms. */
export function parseDate(s: string): number | undefined {
  if (/^\d+(?:\.\d+)?$/.test(s)) return Number(s) * 1000;
  const m = ISO_DATE.exec(s);
  if (!m) return undefined;
  const [year, month, day, hour, minute, second] = [m[1], m[2], m[3], m[4] ?? '0', m[5] ?? '0', m[6] ?? '0'].map(Number) as [
    number,
    number,
    number,
    number,
    number,
    number,
  ];
  const fraction = m[7] ? Math.floor(Number(`0.${m[7]}`) * 1000) : 0;
  let ms = Date.UTC(year, month - 1, day, hour, minute, second, fraction);
  const check = new Date(ms);
  if (check.getUTCFullYear() !== year || check.getUTCMonth() !== month - 1 || check.getUTCDate() !== day) return undefined;
  if (hour > 23 || minute > 59 || second > 59) return undefined;
  const zone = m[8];
  if (zone && zone.toUpperCase() !== 'Z') {
    const sign = zone.startsWith('-') ? -1 : 1;
    const digits = zone.slice(1).replace(':', '');
    const offsetMinutes = Number(digits.slice(0, 2)) * 60 + Number(digits.slice(2) || '0');
    ms -= sign * offsetMinutes * 60_000;
  }
  return ms;
}

type IpAddress = ReturnType<typeof ipaddr.parse>;

function parseIp(s: string): IpAddress | undefined {
  if (s.includes(':')) {
    if (!ipaddr.IPv6.isValid(s)) return undefined;
    const v6 = ipaddr.IPv6.parse(s);
    // A dual-stack listener reports IPv4 clients as ::ffff:a.b.c.d; policies name them as IPv4.
    return v6.isIPv4MappedAddress() ? v6.toIPv4Address() : v6;
  }
  return ipaddr.IPv4.isValidFourPartDecimal(s) ? ipaddr.IPv4.parse(s) : undefined;
}

function parseCidr(s: string): [IpAddress, number] | undefined {
  const slash = s.indexOf('/');
  const address = slash < 0 ? s : s.slice(0, slash);
  const parsed = address.includes(':')
    ? ipaddr.IPv6.isValid(address)
      ? ipaddr.IPv6.parse(address)
      : undefined
    : ipaddr.IPv4.isValidFourPartDecimal(address)
      ? ipaddr.IPv4.parse(address)
      : undefined;
  if (!parsed) return undefined;
  const max = parsed.kind() === 'ipv4' ? 32 : 128;
  if (slash < 0) return [parsed, max];
  const bits = s.slice(slash + 1);
  if (!/^\d{1,3}$/.test(bits) || Number(bits) > max) return undefined;
  return [parsed, Number(bits)];
}

const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

/** Matches "service:name", e.g. aws:SourceIp, ecr:ResourceTag/Team. */
const CONDITION_KEY = /^[A-Za-z0-9-]+:\S/;

// --- operator families -----------------------------------------------------------------------

function pieces(values: readonly string[], cc: CompileContext): Piece[][] | string {
  const out: Piece[][] = [];
  for (const v of values) {
    const p = parsePieces(v, cc.withVariables);
    if (typeof p === 'string') return p;
    out.push(p);
  }
  return out;
}

/** StringEquals / StringEqualsIgnoreCase (and Bool, which compares "true"/"false" ignoring case). */
function equality(ignoreCase: boolean): Compile {
  const fold = ignoreCase ? (s: string) => s.toLowerCase() : (s: string) => s;
  return (values, cc) => {
    const parsed = pieces(values, cc);
    if (typeof parsed === 'string') return parsed;
    const exact = new Set<string>();
    const templates: Piece[][] = [];
    for (const p of parsed) {
      if (isStatic(p)) exact.add(fold(piecesText(p)));
      else templates.push(p);
    }
    return (value, vars) => {
      const v = fold(value);
      if (exact.has(v)) return true;
      for (const t of templates) {
        const resolved = substitute(t, vars);
        if (resolved && fold(piecesText(resolved)) === v) return true;
      }
      return false;
    };
  };
}

const stringLike: Compile = (values, cc) => {
  const parsed = pieces(values, cc);
  if (typeof parsed === 'string') return parsed;
  const set = new PatternSet(parsed, 'plain');
  return (value, vars) => set.matches(value, vars);
};

/** ARNs have six colon-separated segments, the last of which may contain more colons. */
const ARN_SHAPE = /^arn:[^:]*:[^:]*:[^:]*:[^:]*:/;

const arnLike: Compile = (values, cc) => {
  const parsed = pieces(values, cc);
  if (typeof parsed === 'string') return parsed;
  const set = new PatternSet(parsed, 'arn');
  return (value, vars) => ARN_SHAPE.test(value) && set.matches(value, vars);
};

function numeric(compare: (request: number, policy: number) => boolean): Compile {
  return (values) => {
    const numbers: number[] = [];
    for (const v of values) {
      const n = parseNumber(v);
      if (n === undefined) return `"${v}" is not a number`;
      numbers.push(n);
    }
    return (value) => {
      const n = parseNumber(value);
      return n !== undefined && numbers.some((p) => compare(n, p));
    };
  };
}

function date(compare: (request: number, policy: number) => boolean): Compile {
  return (values) => {
    const times: number[] = [];
    for (const v of values) {
      const t = parseDate(v);
      if (t === undefined) return `"${v}" is not a date (use ISO 8601 such as "2024-05-01T00:00:00Z", or epoch seconds)`;
      times.push(t);
    }
    return (value) => {
      const t = parseDate(value);
      return t !== undefined && times.some((p) => compare(t, p));
    };
  };
}

const bool: Compile = (values, cc) => {
  for (const v of values) {
    if (!/^(true|false)$/i.test(v) && !(cc.withVariables && v.includes('${'))) return `"${v}" is not "true" or "false"`;
  }
  return equality(true)(values, cc);
};

const binaryEquals: Compile = (values) => {
  const blobs: Buffer[] = [];
  for (const v of values) {
    if (!BASE64.test(v)) return `"${v}" is not base64`;
    blobs.push(Buffer.from(v, 'base64'));
  }
  // Request values are strings too, so a binary key arrives base64-encoded; compare the bytes.
  return (value) => {
    if (!BASE64.test(value)) return false;
    const bytes = Buffer.from(value, 'base64');
    return blobs.some((b) => b.equals(bytes));
  };
};

const ipAddress: Compile = (values) => {
  const ranges: [IpAddress, number][] = [];
  for (const v of values) {
    const range = parseCidr(v);
    if (!range) return `"${v}" is not an IP address or CIDR range such as "203.0.113.0/24" or "2001:db8::/32"`;
    ranges.push(range);
  }
  return (value) => {
    const address = parseIp(value);
    return address !== undefined && ranges.some((r) => r[0].kind() === address.kind() && address.match(r));
  };
};

const lt = (a: number, b: number) => a < b;
const le = (a: number, b: number) => a <= b;
const gt = (a: number, b: number) => a > b;
const ge = (a: number, b: number) => a >= b;
const eq = (a: number, b: number) => a === b;

const OPERATORS: Record<string, OperatorSpec> = {
  StringEquals: { negated: false, compile: equality(false) },
  StringNotEquals: { negated: true, compile: equality(false) },
  StringEqualsIgnoreCase: { negated: false, compile: equality(true) },
  StringNotEqualsIgnoreCase: { negated: true, compile: equality(true) },
  StringLike: { negated: false, compile: stringLike },
  StringNotLike: { negated: true, compile: stringLike },
  NumericEquals: { negated: false, compile: numeric(eq) },
  NumericNotEquals: { negated: true, compile: numeric(eq) },
  NumericLessThan: { negated: false, compile: numeric(lt) },
  NumericLessThanEquals: { negated: false, compile: numeric(le) },
  NumericGreaterThan: { negated: false, compile: numeric(gt) },
  NumericGreaterThanEquals: { negated: false, compile: numeric(ge) },
  DateEquals: { negated: false, compile: date(eq) },
  DateNotEquals: { negated: true, compile: date(eq) },
  DateLessThan: { negated: false, compile: date(lt) },
  DateLessThanEquals: { negated: false, compile: date(le) },
  DateGreaterThan: { negated: false, compile: date(gt) },
  DateGreaterThanEquals: { negated: false, compile: date(ge) },
  Bool: { negated: false, compile: bool },
  BinaryEquals: { negated: false, compile: binaryEquals },
  IpAddress: { negated: false, compile: ipAddress },
  NotIpAddress: { negated: true, compile: ipAddress },
  // IAM documents ArnEquals and ArnLike as the same test: segment by segment, wildcards allowed.
  ArnEquals: { negated: false, compile: arnLike },
  ArnLike: { negated: false, compile: arnLike },
  ArnNotEquals: { negated: true, compile: arnLike },
  ArnNotLike: { negated: true, compile: arnLike },
};

const ALL_OPERATOR_NAMES = [...Object.keys(OPERATORS), 'Null'];

function editDistance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    for (let j = 1; j <= b.length; j++) {
      cur[j] = Math.min(prev[j]! + 1, cur[j - 1]! + 1, prev[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
    prev = cur;
  }
  return prev[b.length]!;
}

function unknownOperator(name: string): string {
  const base = name.replace(/^(ForAnyValue|ForAllValues):/i, '').replace(/IfExists$/i, '');
  let best: string | undefined;
  let bestDistance = 4;
  for (const candidate of ALL_OPERATOR_NAMES) {
    const d = editDistance(base.toLowerCase(), candidate.toLowerCase());
    if (d < bestDistance) [best, bestDistance] = [candidate, d];
  }
  const hint = best ? ` (did you mean "${name.replace(base, best)}"?)` : '';
  return `Condition operator "${name}" is not known${hint}`;
}

function describe(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  return typeof value === 'object' ? 'an object' : typeof value;
}

/** One condition's values as strings: a scalar or a non-empty list of scalars. */
function conditionValues(raw: unknown, where: string): string[] | string {
  const list = Array.isArray(raw) ? raw : [raw];
  if (list.length === 0) return `${where} has an empty list of values`;
  const out: string[] = [];
  for (const item of list as unknown[]) {
    if (typeof item !== 'string' && typeof item !== 'number' && typeof item !== 'boolean') {
      return `${where} values must be strings, numbers or booleans, not ${describe(item)}`;
    }
    out.push(String(item as Scalar));
  }
  return out;
}

/**
 * Parses a Condition element. Returns the compiled conditions, or a message (without the
 * statement's name, which the caller adds).
 */
export function parseConditionBlock(block: unknown, cc: CompileContext): CompiledCondition[] | string {
  if (block === null || typeof block !== 'object' || Array.isArray(block)) {
    return `Condition must be an object such as {"StringEquals": {"aws:username": "alice"}}, not ${describe(block)}`;
  }
  const out: CompiledCondition[] = [];
  for (const [operator, keys] of Object.entries(block)) {
    const setMatch = /^(ForAnyValue|ForAllValues):(.*)$/s.exec(operator);
    const setMode = setMatch ? (setMatch[1] === 'ForAnyValue' ? 'any' : 'all') : 'none';
    let base = setMatch ? setMatch[2]! : operator;
    const ifExists = base.endsWith('IfExists') && base !== 'IfExists';
    if (ifExists) base = base.slice(0, -'IfExists'.length);
    const isNull = base === 'Null';
    const spec = OPERATORS[base];
    if (!spec && !isNull) return unknownOperator(operator);
    if (isNull && ifExists) return `Condition operator "${operator}" is not valid: Null already tests whether the key exists and takes no IfExists`;
    if (isNull && setMode !== 'none') return `Condition operator "${operator}" is not valid: Null takes no ForAnyValue/ForAllValues prefix`;
    if (keys === null || typeof keys !== 'object' || Array.isArray(keys)) {
      return `Condition "${operator}" must map condition keys to values, e.g. {"aws:username": "alice"}, not ${describe(keys)}`;
    }
    const entries = Object.entries(keys);
    if (entries.length === 0) return `Condition "${operator}" names no condition key`;
    for (const [key, raw] of entries) {
      if (!CONDITION_KEY.test(key)) return `Condition "${operator}" key "${key}" must have the form "service:name", e.g. "aws:SourceIp"`;
      const where = `Condition "${operator}" on "${key}"`;
      const values = conditionValues(raw, where);
      if (typeof values === 'string') return values;
      const normalized = normalizeKey(key);
      if (isNull) {
        const expectAbsent: boolean[] = [];
        for (const v of values) {
          if (!/^(true|false)$/i.test(v)) return `${where}: Null takes "true" (the key is missing) or "false" (the key is present), not "${v}"`;
          expectAbsent.push(v.toLowerCase() === 'true');
        }
        out.push({
          operator,
          key,
          holds: (scope) => {
            const absent = scope.values(normalized) === undefined;
            return expectAbsent.includes(absent);
          },
        });
        continue;
      }
      const test = spec!.compile(values, cc);
      if (typeof test === 'string') return `${where}: ${test}`;
      out.push(makeCondition(operator, key, normalized, test, { negated: spec!.negated, ifExists, setMode }));
    }
  }
  return out;
}

function makeCondition(
  operator: string,
  key: string,
  normalized: string,
  test: ValueTest,
  mode: { negated: boolean; ifExists: boolean; setMode: 'none' | 'any' | 'all' },
): CompiledCondition {
  const { negated, ifExists, setMode } = mode;
  // `test(v) !== negated` is "v matches" for plain operators and "v matches none" for negated ones.
  if (setMode === 'all') {
    return {
      operator,
      key,
      holds: (scope) => {
        const values = scope.values(normalized);
        return values === undefined || values.every((v) => test(v, scope) !== negated);
      },
    };
  }
  if (setMode === 'any') {
    return {
      operator,
      key,
      holds: (scope) => {
        const values = scope.values(normalized);
        return values === undefined ? ifExists : values.some((v) => test(v, scope) !== negated);
      },
    };
  }
  return {
    operator,
    key,
    holds: (scope) => {
      const values = scope.values(normalized);
      if (values === undefined) return ifExists || negated;
      return values.some((v) => test(v, scope)) !== negated;
    },
  };
}
