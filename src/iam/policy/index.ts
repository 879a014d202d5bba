/**
 * The IAM policy engine: parses, validates and evaluates AWS IAM policy documents (identity,
 * resource and role trust policies) as AWS IAM does. Pure: no I/O, no clock (aws:CurrentTime
 * comes in the request context).
 */
export { evaluate } from './evaluate.ts';
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
