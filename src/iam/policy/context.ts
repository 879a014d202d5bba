import type { RequestContext } from './types.ts';

/**
 * Condition key names compare case-insensitively, except that whatever follows the first slash
 * (the tag key in aws:ResourceTag/Team, aws:PrincipalTag/team, ...) keeps its case.
 */
export function normalizeKey(key: string): string {
  const slash = key.indexOf('/');
  return slash < 0 ? key.toLowerCase() : key.slice(0, slash).toLowerCase() + key.slice(slash);
}

/** Where policy variables get their values. */
export interface VariableSource {
  /** The single value of a key, or undefined when it is missing or multi-valued (AWS cannot
   *  substitute a multi-valued key). `key` is already normalized. */
  variable(key: string): string | undefined;
}

/**
 * One request, as the evaluator sees it. The condition keys are normalized into a map the first
 * time a condition or policy variable asks for one, so requests that no condition looks at pay
 * nothing for them.
 */
export class RequestScope implements VariableSource {
  readonly context: RequestContext;
  #keys: Map<string, readonly string[]> | undefined;

  constructor(context: RequestContext) {
    this.context = context;
  }

  /** The values of a key (normalized name), or undefined when the request does not have it. */
  values(key: string): readonly string[] | undefined {
    this.#keys ??= this.#buildKeys();
    return this.#keys.get(key);
  }

  variable(key: string): string | undefined {
    const values = this.values(key);
    return values?.length === 1 ? values[0] : undefined;
  }

  #buildKeys(): Map<string, readonly string[]> {
    const keys = new Map<string, readonly string[]>();
    for (const [name, value] of Object.entries(this.context.keys)) {
      if (value === undefined) continue;
      const values = typeof value === 'string' ? [value] : value;
      // An empty set is no value at all: Null sees the key as absent, ForAllValues as vacuous.
      if (values.length === 0) continue;
      keys.set(normalizeKey(name), values);
    }
    const { principal } = this.context;
    if (!keys.has('aws:principalaccount')) keys.set('aws:principalaccount', [principal.accountId]);
    if (!keys.has('aws:principalarn')) keys.set('aws:principalarn', [principal.roleArn ?? principal.arn]);
    return keys;
  }
}
