import type { RepoRef } from './names.ts';

/**
 * The one authorization hook every operation passes. Each plane authenticates the caller and
 * turns its request into an (IAM action, repository) question; src/iam answers it with IAM's
 * evaluation logic. Actions are spelt as ECR's IAM actions (`ecr:BatchGetImage`, ...).
 */

/** An authenticated caller, as IAM names it. */
export interface IamPrincipal {
  kind: 'iam';
  /** 'root' only when authentication is switched off (every request then acts as the account). */
  type: 'user' | 'assumed-role' | 'root';
  accountId: string;
  /** arn:aws:iam::ACCOUNT:user/PATH/NAME, arn:aws:sts::ACCOUNT:assumed-role/ROLE/SESSION or ...:root */
  arn: string;
  /** AIDA... for a user; AROA...:SESSION for a role session (as GetCallerIdentity shows). */
  userId: string;
  /** The user's or the role's name. */
  name: string;
  /** The access key the request was made with (for audit); undefined for tokens minted without one. */
  accessKeyId: string | undefined;
  /** For role sessions. */
  roleArn?: string;
  sessionName?: string;
  /** When the credentials (or the token) stop working. */
  expiresAtMs?: number;
}

export type Principal = { kind: 'anonymous' } | IamPrincipal;

export const anonymous: Principal = { kind: 'anonymous' };

/** Who is asking and from where: what conditions such as aws:SourceIp and aws:SecureTransport see. */
export interface Caller {
  principal: Principal;
  sourceIp: string;
  secureTransport: boolean;
  requestId: string;
  userAgent: string | undefined;
  /** 'oci', 'ecr', 'iam' or 'sts', for the audit log. */
  plane: string;
}

export interface Authorizer {
  /**
   * Resolves when allowed; rejects with Unauthorized for anonymous callers and Denied (naming
   * the action) otherwise. `resource` undefined means the account itself (e.g. the catalog).
   */
  authorize(caller: Caller, action: string, resource: RepoRef | undefined, account?: string): Promise<void>;
  /** Like authorize, but answers instead of throwing (for filtering lists and mount sources). */
  isAllowed(caller: Caller, action: string, resource: RepoRef | undefined, account?: string): Promise<boolean>;
}

/** Open access, for `auth.enabled=false` (benchmarks and isolated development only). */
export const allowAll: Authorizer = {
  async authorize() {},
  async isAllowed() {
    return true;
  },
};
