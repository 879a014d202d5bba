/**
 * The IAM policy engine: parses, validates and evaluates AWS IAM policy documents (identity,
 * resource and role trust policies) as AWS IAM does. Pure: no I/O, no clock (aws:CurrentTime
 * comes in the request context).
 *
 * Usage: parse each document once when it is stored or loaded (`parsePolicy(text, kind, label)`),
 * keep the CompiledPolicy, and call `evaluate` per request with the principal's identity
 * policies and the resource's policies (for sts:AssumeRole, the role's trust policy).
 *
 * Where AWS's documentation leaves room, this engine chooses:
 * - Resource wildcards: `*` and `?` stay within an ARN segment, except that a `*` ending a
 *   segment may run across colons (IAM Resource element reference). ArnLike/ArnEquals match the
 *   six segments separately. Action and StringLike wildcards match anything.
 * - Missing keys: plain operators false, negated ones true, IfExists true, ForAllValues true,
 *   ForAnyValue false, Null as tested. An empty list counts as missing.
 * - Policy variables (2012-10-17 only): an unresolvable variable makes its Resource entry or
 *   condition value match nothing; substituted values are literal (never wildcards).
 * - NotPrincipal is accepted only with Deny in resource policies and exempts a caller only when
 *   its account is listed too (AWS checks the account, then the user or role and session).
 * - JSON objects with a repeated key are refused rather than silently keeping the last one.
 */
export { evaluate, isContextFree } from './evaluate.ts';
export { parsePolicy } from './parse.ts';
export { PolicyError } from './policy-error.ts';
export type { CompiledCondition } from './conditions.ts';
export type { PrincipalMatch, PrincipalSet } from './principal.ts';
export type {
  CompiledPolicy,
  CompiledStatement,
  Decision,
  EvaluationInput,
  MatchedStatement,
  PolicyKind,
  PolicyVersion,
  PrincipalInfo,
  RequestContext,
} from './types.ts';
export type { PatternSet } from './wildcard.ts';

