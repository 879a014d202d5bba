/**
 * ECR lifecycle policy text: parsing and validation, as PutLifecyclePolicy and
 * StartLifecyclePolicyPreview accept it. Pure logic, no I/O.
 *
 * Sources (ECR User Guide): "Lifecycle policy properties" (lifecycle_policy_parameters),
 * "Automate the cleanup of images by using lifecycle policies" (LifecyclePolicies, section
 * "Lifecycle policy evaluation rules"), "Examples of lifecycle policies", the API reference for
 * PutLifecyclePolicy (lifecyclePolicyText: length 100 to 30720) and the ECR service quotas
 * (50 rules per lifecycle policy). Messages keep the wrapper ECR puts around every policy
 * failure (`Invalid parameter at 'LifecyclePolicyText' failed to satisfy constraint:
 * 'Lifecycle policy validation failure: ...'`); ECR's own detail is a JSON-schema message that
 * names no rule, so ours says which rule is wrong and why.
 *
 * Where Berth differs from ECR, on purpose:
 * - `action.type: transition`, `storageClass: archive` and `countType: sinceImageTransitioned`
 *   are refused: they move images to, or select images in, the archive storage class, and Berth
 *   has none. Accepting them would store a policy that silently never does what it says.
 * - `countType: sinceImagePulled` is accepted with `action.type: expire`. ECR allows it only with
 *   `transition` ("It cannot be used with the expire action"; pull-based deletion goes through
 *   archive there). Without an archive tier, expiring is the only way the rule can act.
 */

export type LifecycleTagStatus = 'tagged' | 'untagged' | 'any';
export type LifecycleCountType = 'imageCountMoreThan' | 'sinceImagePushed' | 'sinceImagePulled';

export interface LifecycleRuleSelection {
  tagStatus: LifecycleTagStatus;
  /** Only with tagStatus tagged; an image is selected when every prefix starts one of its tags. */
  tagPrefixList?: string[];
  /** Only with tagStatus tagged; an image is selected when every pattern matches one of its tags. */
  tagPatternList?: string[];
  /** ECR's default and the only class Berth has; kept so the policy reads back as written. */
  storageClass?: 'standard';
  countType: LifecycleCountType;
  /** Present exactly when countType is sinceImagePushed or sinceImagePulled. */
  countUnit?: 'days';
  countNumber: number;
}

export interface LifecycleRule {
  rulePriority: number;
  description?: string;
  selection: LifecycleRuleSelection;
  action: { type: 'expire' };
}

/** Rules in the order the policy text lists them; evaluation orders them by rulePriority. */
export interface LifecyclePolicy {
  rules: LifecycleRule[];
}

export const LIFECYCLE_POLICY_TEXT_MIN_LENGTH = 100;
export const LIFECYCLE_POLICY_TEXT_MAX_LENGTH = 30_720;
export const LIFECYCLE_POLICY_MAX_RULES = 50;
export const TAG_PATTERN_MAX_WILDCARDS = 4;

/** A policy ECR would refuse with InvalidParameterException; `message` is that exception's message. */
export class LifecyclePolicyError extends Error {
  override readonly name = 'LifecyclePolicyError';
  /** The rule at fault, when the fault is in one rule that has a valid rulePriority. */
  readonly rulePriority: number | undefined;

  constructor(message: string, rulePriority?: number) {
    super(message);
    this.rulePriority = rulePriority;
  }
}

const FAILURE_PREFIX = "Invalid parameter at 'LifecyclePolicyText' failed to satisfy constraint: 'Lifecycle policy validation failure: ";

function failure(detail: string, rulePriority?: number): LifecyclePolicyError {
  return new LifecyclePolicyError(`${FAILURE_PREFIX}${detail}'`, rulePriority);
}

/** Length is a member constraint in ECR's model, so it is worded like the other member constraints. */
function lengthFailure(constraint: string): LifecyclePolicyError {
  return new LifecyclePolicyError(`Invalid parameter at 'lifecyclePolicyText' failed to satisfy constraint: '${constraint}'`);
}

const TAG_STATUSES: readonly string[] = ['tagged', 'untagged', 'any'];
const COUNT_TYPES: readonly string[] = ['imageCountMoreThan', 'sinceImagePushed', 'sinceImagePulled', 'sinceImageTransitioned'];
const RULE_PROPERTIES: readonly string[] = ['rulePriority', 'description', 'selection', 'action'];
const SELECTION_PROPERTIES: readonly string[] = ['tagStatus', 'tagPatternList', 'tagPrefixList', 'storageClass', 'countType', 'countUnit', 'countNumber'];
const ACTION_PROPERTIES: readonly string[] = ['type', 'targetStorageClass'];

type JsonObject = Record<string, unknown>;

function isObject(value: unknown): value is JsonObject {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function show(value: unknown): string {
  return value === undefined ? 'missing' : JSON.stringify(value);
}

function isPositiveInteger(value: unknown): value is number {
  return typeof value === 'number' && Number.isSafeInteger(value) && value >= 1;
}

function list(items: readonly string[]): string {
  return items.length === 1 ? items[0]! : `${items.slice(0, -1).join(', ')} and ${items[items.length - 1]}`;
}

function checkProperties(object: JsonObject, allowed: readonly string[], where: string, priority?: number): void {
  const extra = Object.keys(object).filter((key) => !allowed.includes(key));
  if (extra.length > 0) {
    throw failure(`${where} has properties which are not allowed: ${JSON.stringify(extra)}; the allowed properties are ${list(allowed)}.`, priority);
  }
}

function checkRequired(object: JsonObject, required: readonly string[], where: string, priority?: number): void {
  const missing = required.filter((key) => !(key in object));
  if (missing.length > 0) {
    const noun = missing.length === 1 ? 'property' : 'properties';
    throw failure(`${where} is missing the required ${noun} ${list(missing.map((key) => JSON.stringify(key)))}.`, priority);
  }
}

/**
 * Parses and validates lifecycle policy text. Throws LifecyclePolicyError naming the first
 * problem found: the text, then each rule in the order listed, then the rules together.
 */
export function parseLifecyclePolicy(text: string): LifecyclePolicy {
  if (text.length > LIFECYCLE_POLICY_TEXT_MAX_LENGTH) {
    throw lengthFailure(`Member must have length less than or equal to ${LIFECYCLE_POLICY_TEXT_MAX_LENGTH}`);
  }
  if (text.length < LIFECYCLE_POLICY_TEXT_MIN_LENGTH) {
    throw lengthFailure(`Member must have length greater than or equal to ${LIFECYCLE_POLICY_TEXT_MIN_LENGTH}`);
  }
  let document: unknown;
  try {
    document = JSON.parse(text);
  } catch (err) {
    // Node's JSON messages quote with ', which would end ECR's quoted detail early.
    const reason = (err as Error).message.replaceAll("'", '"');
    throw failure(`Could not map policyString into LifecyclePolicy: the text is not valid JSON (${reason}).`);
  }
  if (!isObject(document)) {
    throw failure('Could not map policyString into LifecyclePolicy: the policy must be a JSON object with a "rules" array.');
  }
  checkProperties(document, ['rules'], 'the policy');
  checkRequired(document, ['rules'], 'the policy');
  const rawRules = document['rules'];
  if (!Array.isArray(rawRules)) throw failure(`"rules" must be an array of rules, but it is ${show(rawRules)}.`);
  if (rawRules.length === 0) throw failure('"rules" must contain at least one rule.');
  if (rawRules.length > LIFECYCLE_POLICY_MAX_RULES) {
    throw failure(`the policy has ${rawRules.length} rules, but a lifecycle policy may have at most ${LIFECYCLE_POLICY_MAX_RULES}.`);
  }

  const indexByPriority = new Map<number, number>();
  const rules = rawRules.map((raw: unknown, index) => {
    const rule = parseRule(raw, index, indexByPriority);
    indexByPriority.set(rule.rulePriority, index);
    return rule;
  });
  checkAcrossRules(rules);
  return { rules };
}

function parseRule(raw: unknown, index: number, indexByPriority: ReadonlyMap<number, number>): LifecycleRule {
  const at = `rules[${index}]`;
  if (!isObject(raw)) throw failure(`${at} must be a JSON object, but it is ${show(raw)}.`);
  const rawPriority = raw['rulePriority'];
  if (rawPriority === undefined) throw failure(`${at} is missing the required property "rulePriority".`);
  if (!isPositiveInteger(rawPriority)) {
    throw failure(`${at}: rulePriority must be an integer greater than or equal to 1, but it is ${show(rawPriority)}.`);
  }
  const priority = rawPriority;
  const earlier = indexByPriority.get(priority);
  if (earlier !== undefined) {
    throw failure(`rules[${earlier}] and ${at} both have rulePriority ${priority}; each rule must have a unique rulePriority.`, priority);
  }
  const name = `rule with rulePriority ${priority}`;
  checkProperties(raw, RULE_PROPERTIES, name, priority);
  checkRequired(raw, ['selection', 'action'], name, priority);

  const description = raw['description'];
  if (description !== undefined && typeof description !== 'string') {
    throw failure(`${name}: description must be a string, but it is ${show(description)}.`, priority);
  }
  const rule: LifecycleRule = {
    rulePriority: priority,
    selection: parseSelection(raw['selection'], name, priority),
    action: parseAction(raw['action'], name, priority),
  };
  if (description !== undefined) rule.description = description;
  return rule;
}

function parseSelection(raw: unknown, name: string, priority: number): LifecycleRuleSelection {
  if (!isObject(raw)) throw failure(`${name}: selection must be a JSON object, but it is ${show(raw)}.`, priority);
  checkProperties(raw, SELECTION_PROPERTIES, `${name}: selection`, priority);
  checkRequired(raw, ['tagStatus', 'countType', 'countNumber'], `${name}: selection`, priority);

  const tagStatus = raw['tagStatus'];
  if (typeof tagStatus !== 'string' || !TAG_STATUSES.includes(tagStatus)) {
    throw failure(`${name}: selection.tagStatus must be one of tagged, untagged or any, but it is ${show(tagStatus)}.`, priority);
  }
  const countType = raw['countType'];
  if (typeof countType !== 'string' || !COUNT_TYPES.includes(countType)) {
    throw failure(
      `${name}: selection.countType must be one of imageCountMoreThan, sinceImagePushed or sinceImagePulled, but it is ${show(countType)}.`,
      priority,
    );
  }
  if (countType === 'sinceImageTransitioned') {
    throw failure(`${name}: countType sinceImageTransitioned selects images by time in the archive storage class, and Berth has no archive storage class.`, priority);
  }
  const storageClass = raw['storageClass'];
  if (storageClass === 'archive') {
    throw failure(`${name}: selection.storageClass archive is not supported because Berth has no archive storage class; omit storageClass or use "standard".`, priority);
  }
  if (storageClass !== undefined && storageClass !== 'standard') {
    throw failure(`${name}: selection.storageClass must be "standard", but it is ${show(storageClass)}.`, priority);
  }

  const countUnit = raw['countUnit'];
  if (countType === 'imageCountMoreThan') {
    if (countUnit !== undefined) {
      throw failure(`${name}: selection.countUnit must not be specified when countType is imageCountMoreThan; countNumber is then a number of images.`, priority);
    }
  } else if (countUnit === undefined) {
    throw failure(`${name}: selection.countUnit is required when countType is ${countType}; the only supported value is "days".`, priority);
  } else if (countUnit !== 'days') {
    throw failure(`${name}: selection.countUnit must be "days", but it is ${show(countUnit)}.`, priority);
  }
  const countNumber = raw['countNumber'];
  if (!isPositiveInteger(countNumber)) {
    throw failure(`${name}: selection.countNumber must be an integer greater than or equal to 1, but it is ${show(countNumber)}.`, priority);
  }

  const prefixes = parseTagList(raw, 'tagPrefixList', tagStatus, name, priority);
  const patterns = parseTagList(raw, 'tagPatternList', tagStatus, name, priority);
  if (prefixes && patterns) {
    throw failure(`${name}: selection specifies both tagPrefixList and tagPatternList; a rule may use only one of them.`, priority);
  }
  if (tagStatus === 'tagged' && !prefixes && !patterns) {
    throw failure(`${name}: tagStatus is tagged, so selection needs a tagPrefixList or a tagPatternList.`, priority);
  }
  for (const pattern of patterns ?? []) {
    const wildcards = pattern.split('*').length - 1;
    if (wildcards > TAG_PATTERN_MAX_WILDCARDS) {
      throw failure(
        `${name}: tagPatternList entry ${JSON.stringify(pattern)} has ${wildcards} wildcards (*); at most ${TAG_PATTERN_MAX_WILDCARDS} are allowed in each pattern.`,
        priority,
      );
    }
  }

  const selection: LifecycleRuleSelection = {
    tagStatus: tagStatus as LifecycleTagStatus,
    countType: countType as LifecycleCountType,
    countNumber,
  };
  if (prefixes) selection.tagPrefixList = prefixes;
  if (patterns) selection.tagPatternList = patterns;
  if (storageClass === 'standard') selection.storageClass = 'standard';
  if (countUnit === 'days') selection.countUnit = 'days';
  return selection;
}

function parseTagList(
  selection: JsonObject,
  key: 'tagPrefixList' | 'tagPatternList',
  tagStatus: string,
  name: string,
  priority: number,
): string[] | undefined {
  const value = selection[key];
  if (value === undefined) return undefined;
  if (tagStatus !== 'tagged') {
    throw failure(`${name}: ${key} may only be used when tagStatus is tagged, but tagStatus is ${tagStatus}.`, priority);
  }
  if (!Array.isArray(value) || !value.every((item) => typeof item === 'string')) {
    throw failure(`${name}: selection.${key} must be an array of strings, but it is ${show(value)}.`, priority);
  }
  if (value.length === 0) throw failure(`${name}: selection.${key} must contain at least one entry.`, priority);
  return [...(value as string[])];
}

function parseAction(raw: unknown, name: string, priority: number): { type: 'expire' } {
  if (!isObject(raw)) throw failure(`${name}: action must be a JSON object, but it is ${show(raw)}.`, priority);
  checkProperties(raw, ACTION_PROPERTIES, `${name}: action`, priority);
  checkRequired(raw, ['type'], `${name}: action`, priority);
  const type = raw['type'];
  if (type === 'transition') {
    throw failure(`${name}: action type transition moves images to the archive storage class, and Berth has no archive storage class; use "expire".`, priority);
  }
  if (type !== 'expire') throw failure(`${name}: action.type must be "expire", but it is ${show(type)}.`, priority);
  if (raw['targetStorageClass'] !== undefined) {
    throw failure(`${name}: action.targetStorageClass may only be used with action type transition.`, priority);
  }
  return { type: 'expire' };
}

/** Constraints between rules, from "Lifecycle policy evaluation rules" and "Rule priority". */
function checkAcrossRules(rules: readonly LifecycleRule[]): void {
  const byPriority = [...rules].sort((a, b) => a.rulePriority - b.rulePriority);
  const last = byPriority[byPriority.length - 1]!;
  for (const rule of byPriority) {
    if (rule.selection.tagStatus === 'any' && rule !== last) {
      throw failure(
        `rule with rulePriority ${rule.rulePriority} has tagStatus any, so it must have the highest rulePriority and be evaluated last, ` +
          `but rule with rulePriority ${last.rulePriority} comes after it.`,
        rule.rulePriority,
      );
    }
  }

  const untagged = byPriority.filter((rule) => rule.selection.tagStatus === 'untagged');
  if (untagged.length > 1) {
    const [first, second] = untagged as [LifecycleRule, LifecycleRule];
    throw failure(
      `rules with rulePriority ${first.rulePriority} and ${second.rulePriority} both select untagged images; only one rule may select untagged images.`,
      second.rulePriority,
    );
  }

  // "The set of rules must contain a unique set of tag prefixes": read as no two tagged rules
  // selecting by the same set, since the later one could never expire anything.
  const seen = new Map<string, LifecycleRule>();
  for (const rule of byPriority) {
    const { tagPrefixList, tagPatternList } = rule.selection;
    const key = tagPrefixList ? 'tagPrefixList' : tagPatternList ? 'tagPatternList' : undefined;
    if (!key) continue;
    const values = [...new Set(rule.selection[key])].sort();
    const signature = `${key}\u0000${values.join('\u0000')}`;
    const earlier = seen.get(signature);
    if (earlier) {
      throw failure(
        `rules with rulePriority ${earlier.rulePriority} and ${rule.rulePriority} have the same ${key} ${JSON.stringify(values)}; ` +
          `each tagged rule must select a unique set of tags, because the later rule could never expire an image.`,
        rule.rulePriority,
      );
    }
    seen.set(signature, rule);
  }
}
