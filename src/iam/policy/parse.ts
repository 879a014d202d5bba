import { parseConditionBlock } from './conditions.ts';
import type { CompiledCondition } from './conditions.ts';
import { PolicyError } from './policy-error.ts';
import { parsePrincipal } from './principal.ts';
import type { PrincipalSet } from './principal.ts';
import type { CompiledPolicy, CompiledStatement, PolicyKind, PolicyVersion } from './types.ts';
import { parsePieces, PatternSet } from './wildcard.ts';
import type { Piece } from './wildcard.ts';

const STATEMENT_KEYS = new Set(['Sid', 'Effect', 'Principal', 'NotPrincipal', 'Action', 'NotAction', 'Resource', 'NotResource', 'Condition']);
const POLICY_KEYS = new Set(['Version', 'Id', 'Statement']);

/**
 * IAM's rule for the Sid of a policy it stores (identity and role trust policies): ASCII letters
 * and digits only, unique within the policy. ECR's repository and registry policies have neither
 * rule: ECR accepts Sids with spaces and repeated Sids (its own registry policy examples repeat one).
 */
const IAM_SID = /^[0-9A-Za-z]*$/;

/** "*" or "service:Action", the action part possibly with wildcards (ecr:BatchGet*, iam:*AccessKey*). */
const ACTION = /^[A-Za-z0-9-]+:[A-Za-z0-9_*?-]+$/;

function describe(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  return typeof value === 'object' ? 'an object' : `the ${typeof value} ${JSON.stringify(value)}`;
}

function isObject(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}

function statementName(index: number, sid: unknown): string {
  return typeof sid === 'string' && sid !== '' ? `Statement ${index + 1} (Sid ${JSON.stringify(sid)})` : `Statement ${index + 1}`;
}

/** Suggests the element name for a key that differs only in case ("effect" -> "Effect"). */
function unknownKey(key: string, known: Set<string>, where: string): string {
  const same = [...known].find((k) => k.toLowerCase() === key.toLowerCase());
  const hint = same ? ` (element names are case-sensitive: did you mean "${same}"?)` : ` (expected one of ${[...known].join(', ')})`;
  return `${where} has an unknown key "${key}"${hint}.`;
}

/**
 * JSON.parse keeps the last of two equal keys in an object, so `"Condition": {"StringEquals": {...},
 * "StringEquals": {...}}` would silently drop a restriction. The policy is refused instead. Runs
 * on text JSON.parse accepted; returns the path of the object holding the repeated key.
 */
function findDuplicateKey(text: string): { path: (string | number)[]; key: string } | undefined {
  type Frame = { kind: 'object'; keys: Set<string>; key: string | undefined } | { kind: 'array'; index: number };
  const stack: Frame[] = [];
  let expectKey = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (c === '"') {
      let j = i + 1;
      while (text[j] !== '"') j += text[j] === '\\' ? 2 : 1;
      const top = stack.at(-1);
      if (expectKey && top?.kind === 'object') {
        const key = JSON.parse(text.slice(i, j + 1)) as string;
        if (top.keys.has(key)) {
          const path: (string | number)[] = [];
          for (const f of stack.slice(0, -1)) path.push(f.kind === 'object' ? f.key! : f.index);
          return { path, key };
        }
        top.keys.add(key);
        top.key = key;
        expectKey = false;
      }
      i = j;
    } else if (c === '{') {
      stack.push({ kind: 'object', keys: new Set(), key: undefined });
      expectKey = true;
    } else if (c === '[') {
      stack.push({ kind: 'array', index: 0 });
    } else if (c === '}' || c === ']') {
      stack.pop();
    } else if (c === ',') {
      const top = stack.at(-1);
      if (top?.kind === 'object') expectKey = true;
      else if (top) top.index++;
    }
  }
  return undefined;
}

/** The string or list-of-strings value of Action, Resource and their Not forms. */
function stringList(value: unknown, element: string): string[] | string {
  const list = Array.isArray(value) ? value : [value];
  if (Array.isArray(value) && list.length === 0) return `${element} must not be an empty list.`;
  for (const item of list as unknown[]) {
    if (typeof item !== 'string') return `${element} must be a string or a list of strings; found ${describe(item)}.`;
  }
  return list as string[];
}

function compileActions(value: unknown, element: 'Action' | 'NotAction'): PatternSet | string {
  const list = stringList(value, element);
  if (typeof list === 'string') return list;
  for (const action of list) {
    if (action !== '*' && !ACTION.test(action)) {
      return `${element} "${action}" is not valid: an action is "*" or "service:ActionName", e.g. "ecr:BatchGetImage" or "ecr:Describe*".`;
    }
  }
  return new PatternSet(
    list.map((a): Piece[] => [{ kind: 'text', text: a }]),
    'plain',
    { ignoreCase: true },
  );
}

function compileResources(value: unknown, element: 'Resource' | 'NotResource', withVariables: boolean): PatternSet | string {
  const list = stringList(value, element);
  if (typeof list === 'string') return list;
  const patterns: Piece[][] = [];
  for (const resource of list) {
    if (resource !== '*' && !resource.startsWith('arn:')) {
      return `${element} "${resource}" is not valid: a resource is "*" or an ARN such as "arn:aws:ecr:us-east-1:123456789012:repository/app/*".`;
    }
    const pieces = parsePieces(resource, withVariables);
    if (typeof pieces === 'string') return `${element} "${resource}": ${pieces}.`;
    patterns.push(pieces);
  }
  return new PatternSet(patterns, 'resource');
}

function compileStatement(raw: unknown, index: number, kind: PolicyKind, version: PolicyVersion, isStored: boolean): CompiledStatement {
  if (!isObject(raw)) throw new PolicyError(`Statement ${index + 1} must be an object, not ${describe(raw)}.`);
  const name = statementName(index, raw['Sid']);
  const fail: (problem: string) => never = (problem) => {
    throw new PolicyError(`${name}: ${problem}`);
  };
  for (const key of Object.keys(raw)) if (!STATEMENT_KEYS.has(key)) fail(unknownKey(key, STATEMENT_KEYS, 'the statement'));

  const sid = raw['Sid'];
  if (sid !== undefined && typeof sid !== 'string') fail(`Sid must be a string, not ${describe(sid)}.`);
  if (kind !== 'resource' && !isStored && typeof sid === 'string' && !IAM_SID.test(sid)) {
    throw new PolicyError(`Statement IDs (SID) must be alpha-numeric. Check that your input satisfies the regular expression [0-9A-Za-z]*: statement ${index + 1} has Sid ${JSON.stringify(sid)}.`);
  }

  const effect = raw['Effect'];
  if (effect === undefined) fail('Effect is missing; it must be "Allow" or "Deny".');
  if (effect !== 'Allow' && effect !== 'Deny') fail(`Effect must be "Allow" or "Deny", not ${typeof effect === 'string' ? `"${effect}"` : describe(effect)}.`);

  const hasAction = 'Action' in raw;
  const hasNotAction = 'NotAction' in raw;
  if (hasAction && hasNotAction) fail('it has both Action and NotAction; use exactly one.');
  if (!hasAction && !hasNotAction) fail('it needs an Action or a NotAction.');
  const actionElement = hasAction ? 'Action' : 'NotAction';
  const actions = compileActions(raw[actionElement], actionElement);
  if (typeof actions === 'string') fail(actions);

  const hasPrincipal = 'Principal' in raw;
  const hasNotPrincipal = 'NotPrincipal' in raw;
  if (hasPrincipal && hasNotPrincipal) fail('it has both Principal and NotPrincipal; use at most one.');
  let principals: PrincipalSet | undefined;
  if (kind === 'identity') {
    if (hasPrincipal || hasNotPrincipal) {
      fail(`${hasPrincipal ? 'Principal' : 'NotPrincipal'} is not allowed in an identity-based policy: the principal is whoever the policy is attached to.`);
    }
  } else {
    if (hasNotPrincipal && kind === 'trust') fail('NotPrincipal is not allowed in a role trust policy; name the principals that may assume the role in Principal.');
    if (!hasPrincipal && !hasNotPrincipal) {
      fail(`Principal is missing; a ${kind === 'trust' ? 'role trust' : 'resource-based'} policy must say whom it applies to, e.g. "Principal": {"AWS": "arn:aws:iam::123456789012:root"}.`);
    }
    if (hasNotPrincipal && effect !== 'Deny') fail('NotPrincipal can only be used with "Effect": "Deny" (an Allow for everyone but some principals is not supported).');
    const element = hasPrincipal ? 'Principal' : 'NotPrincipal';
    const parsed = parsePrincipal(raw[element], element);
    if (typeof parsed === 'string') fail(`${parsed}.`);
    principals = parsed as PrincipalSet;
  }

  const hasResource = 'Resource' in raw;
  const hasNotResource = 'NotResource' in raw;
  if (hasResource && hasNotResource) fail('it has both Resource and NotResource; use at most one.');
  let resources: PatternSet | undefined;
  if (kind === 'trust' && (hasResource || hasNotResource)) {
    fail(`${hasResource ? 'Resource' : 'NotResource'} is not allowed in a role trust policy: the resource is the role itself.`);
  }
  if (kind === 'identity' && !hasResource && !hasNotResource) fail('it needs a Resource or a NotResource (use "Resource": "*" for every resource).');
  if (hasResource || hasNotResource) {
    const element = hasResource ? 'Resource' : 'NotResource';
    const compiled = compileResources(raw[element], element, version === '2012-10-17');
    if (typeof compiled === 'string') fail(compiled);
    resources = compiled as PatternSet;
  }

  let conditions: CompiledCondition[] = [];
  if ('Condition' in raw) {
    const parsed = parseConditionBlock(raw['Condition'], { withVariables: version === '2012-10-17' });
    if (typeof parsed === 'string') fail(`${parsed}.`);
    conditions = parsed as CompiledCondition[];
  }

  return {
    index,
    sid: sid as string | undefined,
    effect: effect as 'Allow' | 'Deny',
    actions: actions as PatternSet,
    isNotAction: hasNotAction,
    resources,
    isNotResource: hasNotResource,
    principals,
    isNotPrincipal: hasNotPrincipal,
    conditions,
  };
}

/**
 * Parses and validates a policy document as IAM does for its kind, and compiles its patterns.
 * Throws PolicyError naming the statement and the problem.
 *
 * - identity: Principal/NotPrincipal forbidden; Resource or NotResource required.
 * - resource: Principal or NotPrincipal required (NotPrincipal only with Deny); Resource optional,
 *   its absence meaning the resource the policy is attached to.
 * - trust: Principal required; NotPrincipal, Resource and NotResource forbidden.
 *
 * Identity and trust policies are IAM's, and take IAM's Sid rule (IAM_SID); resource policies
 * are ECR's, whose Sids may be any string and may repeat.
 *
 * `options.maxLength` caps the document's length in characters (ECR's repository and registry
 * policies allow 10,240).
 */
/**
 * `isStored`: the policy was accepted when it was stored and is read back to be evaluated. IAM's
 * Sid characters are then not checked again: Berth accepted `-` and `_` in identity policies'
 * Sids before it applied IAM's rule, and such a policy must keep granting what it granted.
 */
export function parsePolicy(text: string, kind: PolicyKind, label: string, options: { maxLength?: number; isStored?: boolean } = {}): CompiledPolicy {
  if (options.maxLength !== undefined && text.length > options.maxLength) {
    throw new PolicyError(`Policy document is ${text.length} characters long; the limit is ${options.maxLength}.`);
  }
  if (text.trim() === '') throw new PolicyError('Policy document is empty.');
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (err) {
    throw new PolicyError(`Policy document is not valid JSON: ${(err as Error).message}.`);
  }
  if (!isObject(doc)) throw new PolicyError(`Policy document must be a JSON object, not ${describe(doc)}.`);

  const duplicate = findDuplicateKey(text);
  if (duplicate) {
    const [top, position] = duplicate.path;
    let where = 'Policy document';
    if (top === 'Statement') {
      const statements = doc['Statement'];
      const index = typeof position === 'number' ? position : 0;
      const statement = Array.isArray(statements) ? statements[index] : statements;
      where = statementName(index, isObject(statement) ? statement['Sid'] : undefined);
    }
    const inside = duplicate.path.length ? ` in ${duplicate.path.map((p) => (typeof p === 'number' ? `[${p}]` : p)).join('.').replaceAll('.[', '[')}` : '';
    throw new PolicyError(`${where}: the key "${duplicate.key}" appears twice${inside}; JSON would keep only the last one, so merge them.`);
  }

  for (const key of Object.keys(doc)) if (!POLICY_KEYS.has(key)) throw new PolicyError(unknownKey(key, POLICY_KEYS, 'Policy document'));
  const version = doc['Version'] ?? '2008-10-17';
  if (version !== '2012-10-17' && version !== '2008-10-17') {
    throw new PolicyError(`Version must be "2012-10-17" or "2008-10-17", not ${typeof version === 'string' ? `"${version}"` : describe(version)}.`);
  }
  if (doc['Id'] !== undefined && typeof doc['Id'] !== 'string') throw new PolicyError(`Id must be a string, not ${describe(doc['Id'])}.`);
  const raw = doc['Statement'];
  if (raw === undefined) throw new PolicyError('Policy document has no Statement.');
  if (Array.isArray(raw) && raw.length === 0) throw new PolicyError('Statement must not be an empty list.');
  if (!Array.isArray(raw) && !isObject(raw)) throw new PolicyError(`Statement must be an object or a list of objects, not ${describe(raw)}.`);
  const list: unknown[] = Array.isArray(raw) ? raw : [raw];

  const statements: CompiledStatement[] = [];
  const sids = new Map<string, number>();
  for (const [index, item] of list.entries()) {
    const statement = compileStatement(item, index, kind, version, options.isStored === true);
    if (kind !== 'resource' && statement.sid !== undefined) {
      const first = sids.get(statement.sid);
      if (first !== undefined) {
        throw new PolicyError(`Statement IDs (SID) in a single policy must be unique: statement ${index + 1} repeats Sid ${JSON.stringify(statement.sid)} of statement ${first + 1}.`);
      }
      sids.set(statement.sid, index);
    }
    statements.push(statement);
  }
  return { label, kind, version, statements };
}
