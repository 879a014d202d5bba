// The AWS JSON 1.1 protocol (ECR), server side: the operation comes from X-Amz-Target, the input is
// the JSON body checked against the model, the output is JSON with timestamps as epoch seconds and
// blobs in base64, and errors are {"__type","message"} with an x-amzn-ErrorType header.
import {
  ProtocolError,
  describeViolations,
  findOperation,
  findViolations,
  getShape,
} from './model.ts';
import type { ServiceModel, Shape, StructureShape } from './model.ts';

export { ProtocolError } from './model.ts';

export const JSON_CONTENT_TYPE = 'application/x-amz-json-1.1';

/**
 * The operation named by an X-Amz-Target header ("AmazonEC2ContainerRegistry_V20150921.PutImage").
 * Throws UnknownOperationException (400), as Coral does, for a missing or foreign prefix or an
 * operation the model lacks.
 */
export function operationFromTarget(model: ServiceModel, target: string | undefined): string {
  const prefix = `${model.metadata.targetPrefix ?? ''}.`;
  const name = target?.startsWith(prefix) === true ? target.slice(prefix.length) : undefined;
  if (name === undefined || findOperation(model, name) === undefined) {
    throw new ProtocolError('UnknownOperationException', `Unknown operation ${target ?? '(no X-Amz-Target)'}`);
  }
  return name;
}

// Coral's JSON binding errors name the token met and the type wanted ("STRING_VALUE can not be
// converted to an Integer"); the other wordings here follow that form.
function tokenOf(value: unknown): string {
  if (typeof value === 'string') return 'STRING_VALUE';
  if (typeof value === 'number') return 'NUMBER_VALUE';
  if (value === true) return 'TRUE_VALUE';
  if (value === false) return 'FALSE_VALUE';
  return 'VALUE';
}

const JAVA_TYPE: Record<Shape['type'], string> = {
  structure: 'a Structure',
  list: 'a List',
  map: 'a Map',
  string: 'a String',
  integer: 'an Integer',
  long: 'a Long',
  float: 'a Float',
  double: 'a Double',
  boolean: 'a Boolean',
  timestamp: 'a Date',
  blob: 'a ByteBuffer',
};

function serializationError(shape: Shape, value: unknown): ProtocolError {
  if (Array.isArray(value)) return new ProtocolError('SerializationException', 'Start of list found where not expected');
  if (typeof value === 'object' && value !== null) {
    return new ProtocolError('SerializationException', 'Start of structure or map found where not expected.');
  }
  return new ProtocolError('SerializationException', `${tokenOf(value)} can not be converted to ${JAVA_TYPE[shape.type]}`);
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** A map entry by defineProperty, so a key such as "__proto__" stays a plain entry. */
function setEntry(target: Record<string, unknown>, key: string, value: unknown): void {
  Object.defineProperty(target, key, { value, enumerable: true, writable: true, configurable: true });
}

const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=|[A-Za-z0-9+/]{2,3})?$/u;

/** The typed input: blobs decoded to Uint8Array, timestamps to Date; unknown members and nulls dropped. */
function bind(model: ServiceModel, shape: Shape, value: unknown): unknown {
  switch (shape.type) {
    case 'structure': {
      if (!isRecord(value)) throw serializationError(shape, value);
      const out: Record<string, unknown> = {};
      for (const [member, ref] of Object.entries(shape.members)) {
        const child = value[member];
        if (child !== undefined && child !== null) out[member] = bind(model, getShape(model, ref.shape), child);
      }
      return out;
    }
    case 'list': {
      if (!Array.isArray(value)) throw serializationError(shape, value);
      const memberShape = getShape(model, shape.member.shape);
      return value.filter((item) => item !== null).map((item) => bind(model, memberShape, item));
    }
    case 'map': {
      if (!isRecord(value)) throw serializationError(shape, value);
      const valueShape = getShape(model, shape.value.shape);
      const out: Record<string, unknown> = {};
      for (const [key, item] of Object.entries(value)) {
        if (item !== null) setEntry(out, key, bind(model, valueShape, item));
      }
      return out;
    }
    case 'string':
      if (typeof value !== 'string') throw serializationError(shape, value);
      return value;
    case 'integer':
    case 'long': {
      const limit = shape.type === 'integer' ? 2 ** 31 : Number.MAX_SAFE_INTEGER;
      if (typeof value !== 'number' || !Number.isInteger(value) || value >= limit || value < -limit) {
        throw serializationError(shape, value);
      }
      return value;
    }
    case 'float':
    case 'double':
      if (typeof value !== 'number') throw serializationError(shape, value);
      return value;
    case 'boolean':
      if (typeof value !== 'boolean') throw serializationError(shape, value);
      return value;
    case 'timestamp':
      // AWS JSON sends timestamps as epoch seconds, possibly with a fraction.
      if (typeof value !== 'number' || !Number.isFinite(value)) throw serializationError(shape, value);
      return new Date(Math.round(value * 1000));
    case 'blob':
      if (typeof value !== 'string') throw serializationError(shape, value);
      if (!BASE64.test(value)) throw new ProtocolError('SerializationException', 'Base64 encoded value is invalid');
      return new Uint8Array(Buffer.from(value, 'base64'));
  }
}

/**
 * Checks a parsed JSON body (undefined for an empty one) against the operation's input shape and
 * returns the typed input. Unknown members are ignored and nulls count as absent, as AWS JSON
 * services do (that is what lets older servers take newer clients' requests). Throws ProtocolError:
 * - UnknownOperationException for an operation the model lacks;
 * - SerializationException when a value is not of its member's JSON type (Coral's binding words,
 *   e.g. "STRING_VALUE can not be converted to an Integer");
 * - InvalidParameterException, ECR's code for model constraints, with ECR's message for the first
 *   broken one: "Invalid parameter at 'maxResults' failed to satisfy constraint: 'Member must have
 *   value less than or equal to 1000'". An operation that does not list InvalidParameterException
 *   gets ValidationException with the generic "1 validation error detected: ..." instead.
 */
export function validateJsonInput(model: ServiceModel, operation: string, body: unknown): Record<string, unknown> {
  const op = findOperation(model, operation);
  if (op === undefined) throw new ProtocolError('UnknownOperationException', `Unknown operation ${operation}`);
  if (op.input === undefined) return {};
  const shape = getShape(model, op.input.shape);
  const input = bind(model, shape, body ?? {}) as Record<string, unknown>;
  const violations = findViolations(model, op.input.shape, input);
  const first = violations[0];
  if (first === undefined) return input;
  if (op.errors?.some((ref) => ref.shape === 'InvalidParameterException') === true) {
    throw new ProtocolError('InvalidParameterException', `Invalid parameter at '${first.path}' failed to satisfy constraint: '${first.constraint}'`);
  }
  throw new ProtocolError('ValidationException', describeViolations(violations));
}

function epochSeconds(value: unknown, where: string): number {
  if (typeof value === 'number' && Number.isFinite(value)) return value;
  const date = value instanceof Date ? value : typeof value === 'string' ? new Date(value) : undefined;
  if (date === undefined || Number.isNaN(date.getTime())) throw new TypeError(`${where}: expected a Date, got ${String(value)}`);
  return date.getTime() / 1000;
}

function toWire(model: ServiceModel, shape: Shape, value: unknown, where: string): unknown {
  switch (shape.type) {
    case 'structure': {
      if (!isRecord(value)) throw new TypeError(`${where}: expected an object`);
      return structureToWire(model, shape, value, where);
    }
    case 'list': {
      if (!Array.isArray(value)) throw new TypeError(`${where}: expected an array`);
      const memberShape = getShape(model, shape.member.shape);
      return value.map((item, index) => toWire(model, memberShape, item, `${where}[${index}]`));
    }
    case 'map': {
      if (!isRecord(value)) throw new TypeError(`${where}: expected an object`);
      const valueShape = getShape(model, shape.value.shape);
      const out: Record<string, unknown> = {};
      for (const [key, item] of Object.entries(value)) {
        if (item !== undefined) setEntry(out, key, toWire(model, valueShape, item, `${where}.${key}`));
      }
      return out;
    }
    case 'timestamp':
      return epochSeconds(value, where);
    case 'blob':
      if (!(value instanceof Uint8Array)) throw new TypeError(`${where}: expected a Uint8Array`);
      return Buffer.from(value.buffer, value.byteOffset, value.byteLength).toString('base64');
    case 'string':
      if (typeof value !== 'string') throw new TypeError(`${where}: expected a string, got ${typeof value}`);
      return value;
    case 'boolean':
      if (typeof value !== 'boolean') throw new TypeError(`${where}: expected a boolean, got ${typeof value}`);
      return value;
    default:
      if (typeof value !== 'number') throw new TypeError(`${where}: expected a number, got ${typeof value}`);
      return value;
  }
}

function structureToWire(model: ServiceModel, shape: StructureShape, value: Record<string, unknown>, where: string): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [member, ref] of Object.entries(shape.members)) {
    const child = value[member];
    if (child !== undefined && child !== null) out[member] = toWire(model, getShape(model, ref.shape), child, `${where}.${member}`);
  }
  return out;
}

/**
 * The response body: members per the output shape, Date as epoch seconds (with a fraction when it
 * has milliseconds), Uint8Array as base64, undefined and null left out, keys the shape lacks dropped.
 * A value of the wrong type is a programming error (TypeError).
 */
export function renderJsonOutput(model: ServiceModel, operation: string, output: Record<string, unknown>): string {
  const op = findOperation(model, operation);
  if (op === undefined) throw new Error(`${operation} is not an operation of ${model.metadata.serviceId}`);
  if (op.output === undefined) return '{}';
  const shape = getShape(model, op.output.shape);
  if (shape.type !== 'structure') throw new Error(`${operation} output is not a structure`);
  return JSON.stringify(structureToWire(model, shape, output, operation));
}

/**
 * {"__type":"RepositoryNotFoundException","message":"..."} with its headers, and a default status:
 * 500 for ServerException (the model's only fault) and InternalFailure, 503 for
 * ServiceUnavailableException, else 400, which AWS JSON services use for client errors.
 */
export function renderJsonError(code: string, message: string): { status: number; body: string; headers: Record<string, string> } {
  const status = code === 'ServerException' || code === 'InternalFailure' ? 500 : code === 'ServiceUnavailableException' ? 503 : 400;
  return {
    status,
    body: JSON.stringify({ __type: code, message }),
    headers: { 'content-type': JSON_CONTENT_TYPE, 'x-amzn-ErrorType': code },
  };
}
