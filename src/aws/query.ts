// The AWS Query protocol (IAM, STS), server side: form parameters in, XML out, driven by the model.
// Wire rules follow botocore's QuerySerializer/QueryParser and the SDKs' awsQuery protocol:
// lists are Name.member.N (N from 1), an empty list is a bare `Name=`, maps are Name.entry.N.key/value,
// nested structures are Name.Member, and responses wrap members in <OpResult>.
import {
  ProtocolError,
  describeViolations,
  findErrorShape,
  findOperation,
  findViolations,
  getShape,
} from './model.ts';
import type { ServiceModel, Shape, ShapeRef, StructureShape } from './model.ts';

export { ProtocolError } from './model.ts';

/** Parameters of the request itself or of SigV4 presigning, never part of an operation's input. */
const RESERVED = new Set(['Action', 'Version']);

/**
 * Parses a Query request's parameters (the form body, or the query string of a GET) into the
 * operation's input, keyed by the model's member names, with numbers, booleans, Dates and bytes
 * typed per the model. Parameters the input shape does not name are ignored. Throws ProtocolError:
 * - MissingAction (400) without an Action;
 * - InvalidAction (400) "Could not find operation X for version V" for an Action the model lacks,
 *   or a Version other than the model's apiVersion;
 * - InvalidParameterValue (400) for a value that is not of the member's type (MaxItems=ten);
 * - ValidationError (400) with Coral's "N validation error(s) detected: ..." listing every broken
 *   constraint, a missing required member being "Value null at 'userName' ... Member must not be null".
 */
export function parseQueryRequest(model: ServiceModel, params: URLSearchParams): { operation: string; input: Record<string, unknown> } {
  const action = params.get('Action');
  if (action === null || action === '') {
    throw new ProtocolError('MissingAction', 'The request must contain the parameter Action.');
  }
  const version = params.get('Version') ?? model.metadata.apiVersion;
  const operation = findOperation(model, action);
  if (operation === undefined || version !== model.metadata.apiVersion) {
    throw new ProtocolError('InvalidAction', `Could not find operation ${action} for version ${version}`);
  }
  if (operation.input === undefined) return { operation: action, input: {} };

  const reader = new ParamReader(params);
  const input = reader.readStructure(model, getShape(model, operation.input.shape) as StructureShape, '') ?? {};
  const violations = findViolations(model, operation.input.shape, input);
  if (violations.length > 0) throw new ProtocolError('ValidationError', describeViolations(violations));
  return { operation: action, input };
}

/** Deeper keys cannot belong to any model's input; ignoring them bounds the work a request can cause. */
const MAX_KEY_SEGMENTS = 32;

class ParamReader {
  /** First value of each key: URLSearchParams.get() scans every entry, which is quadratic over a request. */
  readonly #values = new Map<string, string>();
  /** For each dotted prefix of a key, the next segments seen after it ("Tags.member" -> {"1", "2"}). */
  readonly #children = new Map<string, Set<string>>();

  constructor(params: URLSearchParams) {
    for (const [key, value] of params) {
      if (this.#values.has(key) || RESERVED.has(key) || key.startsWith('X-Amz-')) continue;
      this.#values.set(key, value);
      const segments = key.split('.', MAX_KEY_SEGMENTS + 1);
      if (segments.length > MAX_KEY_SEGMENTS) continue;
      let prefix = segments[0] ?? '';
      for (const segment of segments.slice(1)) {
        let children = this.#children.get(prefix);
        if (children === undefined) this.#children.set(prefix, (children = new Set()));
        children.add(segment);
        prefix = `${prefix}.${segment}`;
      }
    }
  }

  /** Whether any key continues `prefix.` */
  #hasChildren(prefix: string): boolean {
    return this.#children.has(prefix);
  }

  /** The 1-based indexes N present as `prefix.N`, in numeric order. */
  #indexes(prefix: string): number[] {
    const indexes: number[] = [];
    for (const segment of this.#children.get(prefix) ?? []) {
      if (/^\d{1,9}$/u.test(segment) && Number(segment) >= 1) indexes.push(Number(segment));
    }
    return [...new Set(indexes)].sort((a, b) => a - b);
  }

  readStructure(model: ServiceModel, shape: StructureShape, prefix: string): Record<string, unknown> | undefined {
    if (prefix !== '' && !this.#hasChildren(prefix)) return undefined;
    const out: Record<string, unknown> = {};
    for (const [member, ref] of Object.entries(shape.members)) {
      const name = ref.locationName ?? member;
      const value = this.read(model, ref, prefix === '' ? name : `${prefix}.${name}`);
      if (value !== undefined) out[member] = value;
    }
    return out;
  }

  read(model: ServiceModel, ref: ShapeRef, key: string): unknown {
    const shape = getShape(model, ref.shape);
    switch (shape.type) {
      case 'structure':
        return this.readStructure(model, shape, key);
      case 'list': {
        // botocore and the SDKs send an empty list as the bare key with an empty value.
        if (this.#values.get(key) === '' && !this.#hasChildren(key)) return [];
        const flattened = shape.flattened === true || ref.flattened === true;
        const itemPrefix = flattened ? key : `${key}.${shape.member.locationName ?? 'member'}`;
        const indexes = this.#indexes(itemPrefix);
        if (indexes.length === 0) return undefined;
        return indexes.map((index) => this.read(model, shape.member, `${itemPrefix}.${index}`));
      }
      case 'map': {
        if (this.#values.get(key) === '' && !this.#hasChildren(key)) return {};
        const flattened = shape.flattened === true || ref.flattened === true;
        const entryPrefix = flattened ? key : `${key}.entry`;
        const indexes = this.#indexes(entryPrefix);
        if (indexes.length === 0) return undefined;
        const out: Record<string, unknown> = {};
        for (const index of indexes) {
          const entry = `${entryPrefix}.${index}`;
          const mapKey = this.read(model, shape.key, `${entry}.${shape.key.locationName ?? 'key'}`);
          const mapValue = this.read(model, shape.value, `${entry}.${shape.value.locationName ?? 'value'}`);
          // defineProperty, so a key such as "__proto__" stays a plain entry.
          if (typeof mapKey === 'string') Object.defineProperty(out, mapKey, { value: mapValue, enumerable: true, writable: true, configurable: true });
        }
        return out;
      }
      default: {
        const raw = this.#values.get(key);
        return raw === undefined ? undefined : parseScalar(shape, raw, key);
      }
    }
  }
}

function invalidValue(raw: string, key: string, expected: string): ProtocolError {
  const shown = raw.length > 256 ? `${raw.slice(0, 256)}...` : raw;
  return new ProtocolError('InvalidParameterValue', `Value (${shown}) for parameter ${key} is invalid. Expected ${expected}.`);
}

function parseScalar(shape: Shape, raw: string, key: string): unknown {
  switch (shape.type) {
    case 'string':
      return raw;
    case 'integer':
    case 'long': {
      const value = /^[+-]?\d+$/u.test(raw) ? Number(raw) : Number.NaN;
      const limit = shape.type === 'integer' ? 2 ** 31 : Number.MAX_SAFE_INTEGER;
      if (!Number.isSafeInteger(value) || value >= limit || value < -limit) throw invalidValue(raw, key, `an ${shape.type}`);
      return value;
    }
    case 'float':
    case 'double': {
      const value = raw.trim() === '' ? Number.NaN : Number(raw);
      if (!Number.isFinite(value)) throw invalidValue(raw, key, 'a number');
      return value;
    }
    case 'boolean': {
      const lower = raw.toLowerCase();
      if (lower !== 'true' && lower !== 'false') throw invalidValue(raw, key, 'true or false');
      return lower === 'true';
    }
    case 'timestamp': {
      // Query requests carry ISO 8601; epoch seconds are accepted too, as botocore can send them.
      const date = /^\d+(\.\d+)?$/u.test(raw) ? new Date(Number(raw) * 1000) : new Date(raw);
      if (Number.isNaN(date.getTime())) throw invalidValue(raw, key, 'an ISO 8601 timestamp');
      return date;
    }
    case 'blob': {
      if (!/^[A-Za-z0-9+/]*={0,2}$/u.test(raw)) throw invalidValue(raw, key, 'base64');
      return new Uint8Array(Buffer.from(raw, 'base64'));
    }
    default:
      throw new Error(`${shape.type} is not a scalar shape`);
  }
}

// ---------------------------------------------------------------------------------------------
// Responses

const XML_ESCAPES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&apos;', '\r': '&#xD;' };

/** Escapes text for element content and attributes; \r too, which XML parsers would otherwise fold. */
export function escapeXml(text: string): string {
  return text.replace(/[&<>"'\r]/gu, (char) => XML_ESCAPES[char] ?? char);
}

/** ISO 8601 in UTC: whole seconds without a fraction as IAM writes them (2013-10-28T23:18:23Z), else with milliseconds as STS does. */
function formatTimestamp(date: Date): string {
  return date.toISOString().replace('.000Z', 'Z');
}

function toDate(value: unknown, where: string): Date {
  const date = value instanceof Date ? value : typeof value === 'string' ? new Date(value) : undefined;
  if (date === undefined || Number.isNaN(date.getTime())) throw new TypeError(`${where}: expected a Date, got ${String(value)}`);
  return date;
}

function scalarText(shape: Shape, value: unknown, where: string): string {
  switch (shape.type) {
    case 'string':
      if (typeof value !== 'string') throw new TypeError(`${where}: expected a string, got ${typeof value}`);
      return escapeXml(value);
    case 'integer':
    case 'long':
    case 'float':
    case 'double':
      if (typeof value !== 'number' && typeof value !== 'bigint') throw new TypeError(`${where}: expected a number, got ${typeof value}`);
      return String(value);
    case 'boolean':
      if (typeof value !== 'boolean') throw new TypeError(`${where}: expected a boolean, got ${typeof value}`);
      return value ? 'true' : 'false';
    case 'timestamp':
      return formatTimestamp(toDate(value, where));
    case 'blob':
      if (!(value instanceof Uint8Array)) throw new TypeError(`${where}: expected a Uint8Array`);
      return Buffer.from(value.buffer, value.byteOffset, value.byteLength).toString('base64');
    default:
      throw new Error(`${shape.type} is not a scalar shape`);
  }
}

/** The XML of one value under element `name` (or, for a flattened list or map, its repeated items). */
function renderValue(model: ServiceModel, ref: ShapeRef, name: string, value: unknown, where: string): string {
  const shape = getShape(model, ref.shape);
  switch (shape.type) {
    case 'structure': {
      if (typeof value !== 'object' || value === null) throw new TypeError(`${where}: expected an object`);
      return `<${name}>${renderMembers(model, shape, value as Record<string, unknown>, where)}</${name}>`;
    }
    case 'list': {
      if (!Array.isArray(value)) throw new TypeError(`${where}: expected an array`);
      const flattened = shape.flattened === true || ref.flattened === true;
      const itemName = shape.member.locationName ?? (flattened ? name : 'member');
      const items = value.map((item, index) => renderValue(model, shape.member, itemName, item, `${where}[${index}]`)).join('');
      return flattened ? items : `<${name}>${items}</${name}>`;
    }
    case 'map': {
      if (typeof value !== 'object' || value === null) throw new TypeError(`${where}: expected an object`);
      const flattened = shape.flattened === true || ref.flattened === true;
      const keyName = shape.key.locationName ?? 'key';
      const valueName = shape.value.locationName ?? 'value';
      const entries = Object.entries(value)
        .filter(([, item]) => item !== undefined)
        .map(([key, item]) => {
          const inner = renderValue(model, shape.key, keyName, key, `${where}.key`) + renderValue(model, shape.value, valueName, item, `${where}.${key}`);
          return flattened ? `<${name}>${inner}</${name}>` : `<entry>${inner}</entry>`;
        })
        .join('');
      return flattened ? entries : `<${name}>${entries}</${name}>`;
    }
    default:
      return `<${name}>${scalarText(shape, value, where)}</${name}>`;
  }
}

/** Members in model order; undefined and null are left out, as are keys the shape does not have. */
function renderMembers(model: ServiceModel, shape: StructureShape, value: Record<string, unknown>, where: string): string {
  let xml = '';
  for (const [member, ref] of Object.entries(shape.members)) {
    const child = value[member];
    if (child === undefined || child === null) continue;
    xml += renderValue(model, ref, ref.locationName ?? member, child, `${where}.${member}`);
  }
  return xml;
}

function namespaceAttr(model: ServiceModel): string {
  const ns = model.metadata.xmlNamespace;
  return ns === undefined ? '' : ` xmlns="${escapeXml(ns)}"`;
}

/**
 * The body of a successful response, as IAM and STS write it:
 * <OpResponse xmlns="..."><OpResult>members</OpResult><ResponseMetadata><RequestId>id</RequestId></ResponseMetadata></OpResponse>.
 * An operation without an output shape has no OpResult. Members follow the output shape: lists as
 * <member> items, timestamps (Date) in ISO 8601, booleans lowercase, blobs (Uint8Array) in base64.
 * Keys the shape lacks are dropped; a value of the wrong type is a programming error (TypeError).
 * Policy documents are written as given: IAM URL-encodes them (RFC 3986), so callers must too.
 */
export function renderQueryResponse(model: ServiceModel, operation: string, output: Record<string, unknown>, requestId: string): string {
  const op = findOperation(model, operation);
  if (op === undefined) throw new Error(`${operation} is not an operation of ${model.metadata.serviceId}`);
  let result = '';
  if (op.output !== undefined) {
    const shape = getShape(model, op.output.shape);
    if (shape.type !== 'structure') throw new Error(`${operation} output is not a structure`);
    const wrapper = op.output.resultWrapper ?? `${operation}Result`;
    result = `<${wrapper}>${renderMembers(model, shape, output, operation)}</${wrapper}>`;
  }
  return (
    `<${operation}Response${namespaceAttr(model)}>${result}` +
    `<ResponseMetadata><RequestId>${escapeXml(requestId)}</RequestId></ResponseMetadata>` +
    `</${operation}Response>`
  );
}

/**
 * <ErrorResponse xmlns="..."><Error><Type>Sender|Receiver</Type><Code>..</Code><Message>..</Message></Error><RequestId>..</RequestId></ErrorResponse>.
 * Type comes from senderFault when given, else from the model's error shape, else from the status
 * (Receiver for 5xx).
 */
export function renderQueryError(model: ServiceModel, code: string, message: string, requestId: string, senderFault?: boolean): string {
  const isSender = senderFault ?? findErrorShape(model, code)?.error?.senderFault ?? queryErrorStatus(model, code) < 500;
  return (
    `<ErrorResponse${namespaceAttr(model)}><Error>` +
    `<Type>${isSender ? 'Sender' : 'Receiver'}</Type><Code>${escapeXml(code)}</Code><Message>${escapeXml(message)}</Message>` +
    `</Error><RequestId>${escapeXml(requestId)}</RequestId></ErrorResponse>`
  );
}

/**
 * Statuses of the errors every Query service shares, which the models do not list
 * (AWS "Common Errors"; IAM and STS answer AccessDenied with 403).
 */
const COMMON_ERROR_STATUS: Record<string, number> = {
  AccessDenied: 403,
  IncompleteSignature: 400,
  InternalFailure: 500,
  InvalidAction: 400,
  InvalidClientTokenId: 403,
  InvalidParameterCombination: 400,
  InvalidParameterValue: 400,
  InvalidQueryParameter: 400,
  MalformedQueryString: 404,
  MissingAction: 400,
  MissingAuthenticationToken: 403,
  MissingParameter: 400,
  OptInRequired: 403,
  RequestExpired: 400,
  ServiceUnavailable: 503,
  SignatureDoesNotMatch: 403,
  Throttling: 400,
  ValidationError: 400,
};

/**
 * The HTTP status for an error code: the model's error shape when it has one (NoSuchEntity 404,
 * EntityAlreadyExists 409, LimitExceeded 409, MalformedPolicyDocument 400, ServiceFailure 500),
 * then the common Query errors above, else 400.
 */
export function queryErrorStatus(model: ServiceModel, code: string): number {
  const shape = findErrorShape(model, code);
  if (shape?.error?.httpStatusCode !== undefined) return shape.error.httpStatusCode;
  if (shape?.fault === true) return 500;
  return Object.hasOwn(COMMON_ERROR_STATUS, code) ? (COMMON_ERROR_STATUS[code] as number) : 400;
}
