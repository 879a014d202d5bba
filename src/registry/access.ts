/**
 * The one authorization hook every operation passes. Each plane turns its request into an
 * (action, repository) question for the caller it has authenticated; the identity issue plugs
 * in IAM evaluation here without touching routes.
 */
export type Action = 'pull' | 'push' | 'delete' | 'catalog';

/** Who is asking. Anonymous until authentication exists. */
export interface Principal {
  kind: 'anonymous';
}

export const anonymous: Principal = { kind: 'anonymous' };

export interface Authorizer {
  /** Resolves when allowed; rejects with Denied (or Unauthorized for anonymous callers) when not. */
  authorize(principal: Principal, action: Action, repository: string | undefined): Promise<void>;
  /** Like authorize, but answers instead of throwing (for filtering lists and mount sources). */
  isAllowed(principal: Principal, action: Action, repository: string | undefined): Promise<boolean>;
}

/** Open access: the server runs unauthenticated on loopback until the identity work lands. */
export const allowAll: Authorizer = {
  async authorize() {},
  async isAllowed() {
    return true;
  },
};
