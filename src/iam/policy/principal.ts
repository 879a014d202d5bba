import type { PrincipalInfo } from './types.ts';

/**
 * The Principal and NotPrincipal elements of resource and trust policies.
 *
 * AWS stores a named user or role by its unique id, so renaming the case of a name does not break
 * a grant; user and role ARNs therefore compare ignoring case here. A session name is the
 * caller's own string and keeps its case.
 */

/**
 * How a principal element names a caller:
 * - `specific`: by its own ARN (user, role, session), by "*", or as the account root itself;
 * - `account`: only through its account (id or :root), which in the same account delegates to
 *   the account's identity policies and grants nothing by itself;
 * - `none`: not at all.
 */
export type PrincipalMatch = 'none' | 'account' | 'specific';

const ACCOUNT_ID = /^\d{12}$/;
const ROOT_ARN = /^arn:aws[a-z-]*:iam::\d{12}:root$/;
const IAM_ARN = /^arn:(aws[a-z-]*):iam::([^:]*):(.*)$/s;
const STS_ARN = /^arn:(aws[a-z-]*):sts::([^:]*):(.*)$/s;
const SESSION_ARN = /^(arn:aws[a-z-]*:sts::\d{12}:assumed-role\/[^/]+\/)(.+)$/s;
const USER_OR_ROLE = /^(user|role)\/(?:[^/]+\/)*[^/]+$/s;
const SERVICE_NAME = /^[A-Za-z0-9][A-Za-z0-9.-]*$/;

/** The comparison form of a principal ARN (see the module comment). */
function principalKey(arn: string): string {
  const session = SESSION_ARN.exec(arn);
  return session ? session[1]!.toLowerCase() + session[2]! : arn.toLowerCase();
}

const VALID_AWS_PRINCIPALS =
  'an AWS principal must be "*", a 12-digit account id, or the ARN of an account root ' +
  '(arn:aws:iam::ACCOUNT:root), a user (arn:aws:iam::ACCOUNT:user/NAME), a role (arn:aws:iam::ACCOUNT:role/NAME) ' +
  'or an assumed-role session (arn:aws:sts::ACCOUNT:assumed-role/ROLE/SESSION)';

/** The principals one Principal or NotPrincipal element names. */
export class PrincipalSet {
  /** "*" or {"AWS": "*"}. */
  readonly matchesEveryone: boolean;
  readonly #accounts: Set<string>;
  readonly #arns: Set<string>;
  readonly #services: Set<string>;
  readonly #others: Set<string>;

  constructor(entries: { everyone: boolean; accounts: Set<string>; arns: Set<string>; services: Set<string>; others: Set<string> }) {
    this.matchesEveryone = entries.everyone;
    this.#accounts = entries.accounts;
    this.#arns = new Set([...entries.arns].map(principalKey));
    this.#services = new Set([...entries.services].map((s) => s.toLowerCase()));
    this.#others = entries.others;
  }

  /** How a Principal element names the caller. */
  match(principal: PrincipalInfo): PrincipalMatch {
    if (this.matchesEveryone || this.#namesDirectly(principal)) return 'specific';
    if (this.#accounts.has(principal.accountId)) return ROOT_ARN.test(principal.arn) ? 'specific' : 'account';
    return 'none';
  }

  /**
   * Whether a NotPrincipal element exempts the caller. AWS checks each identity in the caller's
   * chain (the account, then the user, or the role and its session) against NotPrincipal, so an
   * exemption needs the account listed as well as the user, role or session; listing a user
   * without its account still denies the user.
   */
  excludes(principal: PrincipalInfo): boolean {
    if (this.matchesEveryone) return true;
    if (this.#services.has(principal.arn.toLowerCase()) || this.#others.has(principal.arn)) return true;
    if (!this.#accounts.has(principal.accountId)) return false;
    return ROOT_ARN.test(principal.arn) || this.#namesDirectly(principal);
  }

  #namesDirectly(principal: PrincipalInfo): boolean {
    if (this.#arns.size) {
      if (this.#arns.has(principalKey(principal.arn))) return true;
      if (principal.roleArn !== undefined && this.#arns.has(principalKey(principal.roleArn))) return true;
    }
    return this.#services.has(principal.arn.toLowerCase()) || this.#others.has(principal.arn);
  }
}

/** Checks one AWS principal string; returns a problem, or where it goes. */
function classifyAws(s: string): { account: string } | { arn: string } | { everyone: true } | { problem: string } {
  if (s === '*') return { everyone: true };
  if (/^\d+$/.test(s)) {
    return ACCOUNT_ID.test(s) ? { account: s } : { problem: `"${s}" is not a valid account id: an account id has exactly 12 digits` };
  }
  if (/[*?]/.test(s)) {
    return {
      problem: `"${s}" has a wildcard; principal ARNs cannot contain wildcards (use "*" alone, or a Condition on aws:PrincipalArn with ArnLike)`,
    };
  }
  const iam = IAM_ARN.exec(s);
  const sts = iam ? null : STS_ARN.exec(s);
  const parts = iam ?? sts;
  if (!parts) return { problem: `"${s}" is not valid: ${VALID_AWS_PRINCIPALS}` };
  const account = parts[2]!;
  const rest = parts[3]!;
  if (!ACCOUNT_ID.test(account)) return { problem: `"${s}" has an invalid account id "${account}": an account id has exactly 12 digits` };
  if (iam) {
    if (rest === 'root') return { account };
    if (USER_OR_ROLE.test(rest)) return { arn: s };
    if (rest.startsWith('group/')) {
      return {
        problem: `"${s}" is an IAM group, and a group cannot be a principal; name its users or roles, or attach an identity-based policy to the group instead`,
      };
    }
  } else if (/^assumed-role\/[^/]+\/[^/]+$/.test(rest)) {
    return { arn: s };
  }
  return { problem: `"${s}" is not valid: ${VALID_AWS_PRINCIPALS}` };
}

function describe(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  return typeof value === 'object' ? 'an object' : `${typeof value} ${JSON.stringify(value)}`;
}

/**
 * Parses a Principal or NotPrincipal element. Returns the set, or a message (without the
 * statement's name, which the caller adds).
 */
export function parsePrincipal(value: unknown, element: 'Principal' | 'NotPrincipal'): PrincipalSet | string {
  const entries = { everyone: false, accounts: new Set<string>(), arns: new Set<string>(), services: new Set<string>(), others: new Set<string>() };
  if (value === '*') return new PrincipalSet({ ...entries, everyone: true });
  if (typeof value === 'string') {
    return `${element} must be "*" or an object such as {"AWS": "arn:aws:iam::123456789012:root"}, not the string "${value}"`;
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    return `${element} must be "*" or an object such as {"AWS": "arn:aws:iam::123456789012:root"}, not ${describe(value)}`;
  }
  const types = Object.entries(value);
  if (types.length === 0) return `${element} must name at least one principal`;
  for (const [type, raw] of types) {
    if (type !== 'AWS' && type !== 'Service' && type !== 'Federated' && type !== 'CanonicalUser') {
      return `${element} has an unknown principal type "${type}" (expected "AWS", "Service", "Federated" or "CanonicalUser")`;
    }
    const list = Array.isArray(raw) ? raw : [raw];
    if (list.length === 0) return `${element} ${type} must not be an empty list`;
    for (const item of list) {
      if (typeof item !== 'string') return `${element} ${type} entries must be strings, not ${describe(item)}`;
      if (type === 'AWS') {
        const c = classifyAws(item);
        if ('problem' in c) return `${element} ${c.problem}`;
        if ('everyone' in c) entries.everyone = true;
        else if ('account' in c) entries.accounts.add(c.account);
        else entries.arns.add(c.arn);
      } else if (type === 'Service') {
        if (!SERVICE_NAME.test(item)) return `${element} Service "${item}" is not a service principal name such as "ecs-tasks.amazonaws.com"`;
        entries.services.add(item);
      } else {
        if (item === '' || /[*?]/.test(item)) return `${element} ${type} "${item}" must be a non-empty name without wildcards`;
        entries.others.add(item);
      }
    }
  }
  return new PrincipalSet(entries);
}
