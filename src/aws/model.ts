// The botocore service model (service-2.json) as the protocol codecs read it, and the constraint
// checks both codecs share. The models themselves live in ./models/, trimmed by scripts/trim-models.ts.
import { readFileSync } from 'node:fs';
import path from 'node:path';

/** A reference from a member, list element, map key or value to a named shape. */
export interface ShapeRef {
  shape: string;
  /** Wire name when it differs from the member name (XML element, query key). */
  locationName?: string;
  /** For a list or map member: items repeat without a wrapper element. */
  flattened?: boolean;
  xmlNamespace?: XmlNamespace;
  xmlAttribute?: boolean;
  queryName?: string;
  location?: string;
  timestampFormat?: TimestampFormat;
  idempotencyToken?: boolean;
  box?: boolean;
  deprecated?: boolean;
  deprecatedMessage?: string;
}

export interface XmlNamespace {
  uri: string;
  prefix?: string;
}

export type TimestampFormat = 'iso8601' | 'rfc822' | 'unixTimestamp';

interface ShapeBase {
  locationName?: string;
  xmlNamespace?: XmlNamespace;
  sensitive?: boolean;
  deprecated?: boolean;
  deprecatedMessage?: string;
  box?: boolean;
}

export interface StructureShape extends ShapeBase {
  type: 'structure';
  members: Record<string, ShapeRef>;
  required?: string[];
  /** Set on error shapes. */
  exception?: boolean;
  /** An exception that is the service's fault (a 5xx). */
  fault?: boolean;
  /** Query-protocol error details: the wire code when it differs from the shape name, and the status. */
  error?: { code?: string; httpStatusCode?: number; senderFault?: boolean };
}

export interface ListShape extends ShapeBase {
  type: 'list';
  member: ShapeRef;
  flattened?: boolean;
  min?: number;
  max?: number;
}

export interface MapShape extends ShapeBase {
  type: 'map';
  key: ShapeRef;
  value: ShapeRef;
  flattened?: boolean;
  min?: number;
  max?: number;
}

export interface StringShape extends ShapeBase {
  type: 'string';
  min?: number;
  max?: number;
  pattern?: string;
  enum?: string[];
}

export interface NumberShape extends ShapeBase {
  type: 'integer' | 'long' | 'float' | 'double';
  min?: number;
  max?: number;
}

export interface BooleanShape extends ShapeBase {
  type: 'boolean';
}

export interface TimestampShape extends ShapeBase {
  type: 'timestamp';
  timestampFormat?: TimestampFormat;
}

export interface BlobShape extends ShapeBase {
  type: 'blob';
  min?: number;
  max?: number;
}

export type Shape =
  | StructureShape
  | ListShape
  | MapShape
  | StringShape
  | NumberShape
  | BooleanShape
  | TimestampShape
  | BlobShape;

export interface Operation {
  name: string;
  http: { method: string; requestUri: string; responseCode?: number };
  input?: ShapeRef;
  /** resultWrapper names the Query protocol's <OpResult> element. */
  output?: ShapeRef & { resultWrapper?: string };
  errors?: ShapeRef[];
  deprecated?: boolean;
  auth?: string[];
  authtype?: string;
}

export interface ServiceMetadata {
  apiVersion: string;
  endpointPrefix: string;
  protocol: string;
  protocols?: string[];
  serviceId: string;
  signatureVersion?: string;
  signingName?: string;
  /** AWS JSON: the X-Amz-Target prefix. */
  targetPrefix?: string;
  jsonVersion?: string;
  /** AWS Query: the namespace of every response document. */
  xmlNamespace?: string;
  globalEndpoint?: string;
  serviceFullName?: string;
  serviceAbbreviation?: string;
  uid?: string;
  auth?: string[];
}

export interface ServiceModel {
  version?: string;
  metadata: ServiceMetadata;
  operations: Record<string, Operation>;
  shapes: Record<string, Shape>;
}

export type ServiceName = 'iam' | 'sts' | 'ecr' | 'secretsmanager' | 'cloudtrail';

/** botocore paginators-1.json: how each list operation pages. */
export interface Paginator {
  input_token: string | string[];
  output_token: string | string[];
  limit_key?: string;
  result_key?: string | string[];
  more_results?: string;
}

const modelsDir = path.join(import.meta.dirname, 'models');
const models = new Map<ServiceName, ServiceModel>();
let ecrPaginators: Readonly<Record<string, Paginator>> | undefined;

function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const child of Object.values(value)) deepFreeze(child);
  }
  return value;
}

/** The trimmed model of one service, read once and shared (frozen, so no caller can change it). */
export function loadModel(name: ServiceName): ServiceModel {
  let model = models.get(name);
  if (model === undefined) {
    const loaded = JSON.parse(readFileSync(path.join(modelsDir, `${name}.json`), 'utf8')) as ServiceModel;
    if (name === 'ecr') {
      // Berth's own operations in ECR's namespace (berth-ecr-extensions.json: e.g. BerthReplicationBackfill),
      // kept out of the trimmed AWS model so that it stays what scripts/trim-models.ts writes.
      const extensions = JSON.parse(readFileSync(path.join(modelsDir, 'berth-ecr-extensions.json'), 'utf8')) as Pick<ServiceModel, 'operations' | 'shapes'>;
      Object.assign(loaded.operations, extensions.operations);
      Object.assign(loaded.shapes, extensions.shapes);
    }
    model = deepFreeze(loaded);
    models.set(name, model);
  }
  return model;
}

/** ECR's paginators by operation name (DescribeRepositories, ListImages, ...). */
export function loadEcrPaginators(): Readonly<Record<string, Paginator>> {
  ecrPaginators ??= deepFreeze(
    (JSON.parse(readFileSync(path.join(modelsDir, 'ecr-paginators.json'), 'utf8')) as { pagination: Record<string, Paginator> })
      .pagination,
  );
  return ecrPaginators;
}

/** The operation by its exact name, or undefined (never a prototype property such as "constructor"). */
export function findOperation(model: ServiceModel, name: string): Operation | undefined {
  return Object.hasOwn(model.operations, name) ? model.operations[name] : undefined;
}

/** The named shape; a missing one means the model file is broken, so this throws. */
export function getShape(model: ServiceModel, name: string): Shape {
  const shape = Object.hasOwn(model.shapes, name) ? model.shapes[name] : undefined;
  if (shape === undefined) throw new Error(`shape ${name} is not in the ${model.metadata.serviceId} model`);
  return shape;
}

/** The error shape for a wire error code: by its Query `error.code` first, else by shape name. */
export function findErrorShape(model: ServiceModel, code: string): StructureShape | undefined {
  let byName: StructureShape | undefined;
  for (const [name, shape] of Object.entries(model.shapes)) {
    if (shape.type !== 'structure' || shape.exception !== true) continue;
    if (shape.error?.code === code) return shape;
    if (name === code) byName = shape;
  }
  return byName;
}

/** An input that breaks the protocol or the model; `code` is the AWS error code the service uses for it. */
export class ProtocolError extends Error {
  override name = 'ProtocolError';
  code: string;
  status: number;
  constructor(code: string, message: string, status = 400) {
    super(message);
    this.code = code;
    this.status = status;
  }
}

/** One failed constraint, in the terms AWS (Coral) validation messages use. */
export interface Violation {
  /** The member path as AWS prints it: lowerCamel names, list items as `tags.1.member.key`. */
  path: string;
  /** The value as AWS prints it between quotes, or `null` for a missing member. */
  value: string | null;
  /** e.g. "Member must have length less than or equal to 64". */
  constraint: string;
}

const REDACTED = '*** Sensitive Data Redacted ***';

/** AWS prints member names lowerCamel in paths (UserName -> userName). */
function pathSegment(member: string): string {
  return member.charAt(0).toLowerCase() + member.slice(1);
}

/** Printed values are cut here, so one huge or repeated value cannot blow up an error message. */
const MAX_PRINTED_CHARS = 1024;
/** Violations listed in one message; the count in front still covers them all. */
const MAX_LISTED_VIOLATIONS = 10;

function printValue(value: unknown): string {
  const printed = printRaw(value);
  return printed.length > MAX_PRINTED_CHARS ? `${printed.slice(0, MAX_PRINTED_CHARS)}...` : printed;
}

function printRaw(value: unknown): string {
  if (value instanceof Date) return value.toISOString();
  if (value instanceof Uint8Array) return `java.nio.HeapByteBuffer[pos=0 lim=${value.length} cap=${value.length}]`;
  if (Array.isArray(value)) return `[${value.map(printRaw).join(', ')}]`;
  if (typeof value === 'object' && value !== null) {
    return `{${Object.entries(value).map(([k, v]) => `${k}: ${printRaw(v)}`).join(', ')}}`;
  }
  return String(value);
}

const patternCache = new Map<string, RegExp>();

/**
 * Model patterns are Java regular expressions that must match the whole value (Coral uses
 * Matcher.matches(): "x y" fails [\w+=,.@-]+ even though "x" matches). Java also accepts escapes
 * such as `\:` that a Unicode-mode JavaScript RegExp rejects, so those become the plain character.
 */
export function compilePattern(pattern: string): RegExp {
  let compiled = patternCache.get(pattern);
  if (compiled === undefined) {
    let source = '';
    let inClass = false;
    for (let i = 0; i < pattern.length; i += 1) {
      const char = pattern.charAt(i);
      if (char === '\\' && i + 1 < pattern.length) {
        const next = pattern.charAt(i + 1);
        const keep = /[A-Za-z0-9^$\\.*+?()[\]{}|/]/u.test(next) || (inClass && next === '-');
        source += keep ? `\\${next}` : next;
        i += 1;
        continue;
      }
      if (char === '[') inClass = true;
      else if (char === ']') inClass = false;
      source += char;
    }
    compiled = new RegExp(`^(?:${source})$`, 'u');
    patternCache.set(pattern, compiled);
  }
  return compiled;
}

/** Length as the model means it: Unicode code points for strings, bytes for blobs, items for lists and maps. */
function sizeOf(value: unknown): number | undefined {
  if (typeof value === 'string') {
    let count = 0;
    for (const _ of value) count += 1;
    return count;
  }
  if (value instanceof Uint8Array) return value.length;
  if (Array.isArray(value)) return value.length;
  if (value instanceof Map) return value.size;
  if (typeof value === 'object' && value !== null) return Object.keys(value).length;
  return undefined;
}

/** The constraints one value breaks by itself (not its children), as Coral phrases them. */
function ownConstraints(shape: Shape, value: unknown): string[] {
  const failed: string[] = [];
  if (shape.type === 'string') {
    if (shape.enum !== undefined && typeof value === 'string' && !shape.enum.includes(value)) {
      failed.push(`Member must satisfy enum value set: [${shape.enum.join(', ')}]`);
    }
    if (shape.pattern !== undefined && typeof value === 'string' && !compilePattern(shape.pattern).test(value)) {
      failed.push(`Member must satisfy regular expression pattern: ${shape.pattern}`);
    }
  }
  if (shape.type === 'string' || shape.type === 'blob' || shape.type === 'list' || shape.type === 'map') {
    const size = sizeOf(value);
    if (size !== undefined && shape.min !== undefined && size < shape.min) {
      failed.push(`Member must have length greater than or equal to ${shape.min}`);
    }
    if (size !== undefined && shape.max !== undefined && size > shape.max) {
      failed.push(`Member must have length less than or equal to ${shape.max}`);
    }
  }
  if (shape.type === 'integer' || shape.type === 'long' || shape.type === 'float' || shape.type === 'double') {
    if (typeof value === 'number' && shape.min !== undefined && value < shape.min) {
      failed.push(`Member must have value greater than or equal to ${shape.min}`);
    }
    if (typeof value === 'number' && shape.max !== undefined && value > shape.max) {
      failed.push(`Member must have value less than or equal to ${shape.max}`);
    }
  }
  return failed;
}

function isScalar(shape: Shape): boolean {
  return shape.type !== 'structure' && shape.type !== 'list' && shape.type !== 'map';
}

/**
 * Every required/length/range/pattern/enum constraint the (already typed) value breaks, in member
 * order. Lists of scalars report at the list, as Coral does ("Member must satisfy constraint:
 * [Member must ...]"); structures inside lists report at `list.N.member.name`, N from 1.
 */
export function findViolations(model: ServiceModel, shapeName: string, value: unknown, at = ''): Violation[] {
  const out: Violation[] = [];
  visit(model, getShape(model, shapeName), value, at, false, out);
  return out;
}

function visit(model: ServiceModel, shape: Shape, value: unknown, at: string, sensitive: boolean, out: Violation[]): void {
  const isSensitive = sensitive || shape.sensitive === true;
  // Printed only when something fails: most requests pass, and printing walks the whole value.
  let printedValue: string | undefined;
  const printed = (): string => (printedValue ??= isSensitive ? REDACTED : printValue(value));
  for (const constraint of ownConstraints(shape, value)) out.push({ path: at, value: printed(), constraint });

  if (shape.type === 'structure' && typeof value === 'object' && value !== null) {
    const record = value as Record<string, unknown>;
    for (const [member, ref] of Object.entries(shape.members)) {
      const childPath = at === '' ? pathSegment(member) : `${at}.${pathSegment(member)}`;
      const child = record[member];
      if (child === undefined || child === null) {
        if (shape.required?.includes(member)) out.push({ path: childPath, value: null, constraint: 'Member must not be null' });
        continue;
      }
      visit(model, getShape(model, ref.shape), child, childPath, isSensitive, out);
    }
  } else if (shape.type === 'list' && Array.isArray(value)) {
    const memberShape = getShape(model, shape.member.shape);
    value.forEach((item, index) => {
      if (isScalar(memberShape)) {
        for (const constraint of ownConstraints(memberShape, item)) {
          out.push({ path: at, value: printed(), constraint: `Member must satisfy constraint: [${constraint}]` });
        }
      } else {
        visit(model, memberShape, item, `${at}.${index + 1}.member`, isSensitive, out);
      }
    });
  } else if (shape.type === 'map' && typeof value === 'object' && value !== null) {
    const keyShape = getShape(model, shape.key.shape);
    const valueShape = getShape(model, shape.value.shape);
    for (const [key, item] of Object.entries(value)) {
      for (const constraint of ownConstraints(keyShape, key)) {
        out.push({ path: at, value: printed(), constraint: `Map keys must satisfy constraint: [${constraint}]` });
      }
      if (isScalar(valueShape)) {
        for (const constraint of ownConstraints(valueShape, item)) {
          out.push({ path: at, value: printed(), constraint: `Map value must satisfy constraint: [${constraint}]` });
        }
      } else {
        visit(model, valueShape, item, `${at}.${key}.member`, isSensitive, out);
      }
    }
  }
}

/** "Value 'x y' at 'userName' failed to satisfy constraint: Member must ..." */
export function describeViolation(violation: Violation): string {
  const value = violation.value === null ? 'null' : `'${violation.value}'`;
  return `Value ${value} at '${violation.path}' failed to satisfy constraint: ${violation.constraint}`;
}

/** Coral's summary: "2 validation errors detected: Value ...; Value ..." (the first ten listed). */
export function describeViolations(violations: readonly Violation[]): string {
  const count = violations.length;
  const listed = violations.slice(0, MAX_LISTED_VIOLATIONS).map(describeViolation).join('; ');
  return `${count} validation error${count === 1 ? '' : 's'} detected: ${listed}`;
}
