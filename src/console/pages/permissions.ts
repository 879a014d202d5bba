import type { ConsoleApi } from '../api.ts';

/**
 * What the signed-in user may do, asked of BerthCheckPermissions (the IAM evaluation of the
 * caller's own permissions, repository policy included), so that a page shows a forbidden action
 * as such instead of offering a button that fails. The API still decides when the action is tried.
 */
export async function permissions<A extends string>(api: ConsoleApi, actions: readonly A[], repositoryName?: string): Promise<Record<A, boolean>> {
  const out = await api.call<{ results: { action: string; allowed: boolean }[] }>('ecr', 'BerthCheckPermissions', { actions: [...actions], ...(repositoryName !== undefined ? { repositoryName } : {}) });
  const allowed = new Map(out.results.map((r) => [r.action, r.allowed]));
  return Object.fromEntries(actions.map((a) => [a, allowed.get(a) === true])) as Record<A, boolean>;
}
