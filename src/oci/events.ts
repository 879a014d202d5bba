import { RegistryError } from '../errors/catalogue.ts';
import type { RepoRef } from '../registry/names.ts';
import { param, queryOf } from './http-util.ts';
import type { OciRoute } from './paths.ts';
import { authorizeAccount, callerOf, type OciHandler } from './plane.ts';

/** Events per page when the request gives no `n`, and at most. */
const DEFAULT_PAGE = 100;
const MAX_PAGE = 1000;

/**
 * GET /v2/_events: the account's event log (docs/events.md), oldest first, for tools that poll
 * rather than take webhooks. Paged like the catalog: `n` events after the sequence number
 * `last`, and a Link header to the next page while there is more; `repository` narrows it to
 * one repository. Each event is shown only to a caller allowed `ecr:DescribeImages` on its
 * repository (`ecr:DescribeRegistry` for the registry's own events), as ECR's EventBridge
 * events go only to the account's own rules.
 */
export const handleEvents: OciHandler<Extract<OciRoute, { kind: 'events' }>> = async (deps, _route, request, reply) => {
  const account = await authorizeAccount(deps, request, 'ecr:DescribeImages');
  const query = queryOf(request);
  const n = param(query, 'n');
  const last = param(query, 'last');
  if (n !== undefined && !/^\d+$/.test(n)) throw new RegistryError('PaginationNumberInvalid', { n }, { message: `The page size n must be a whole number, got ${JSON.stringify(n)}.` });
  if (last !== undefined && !/^\d+$/.test(last)) throw new RegistryError('PaginationNumberInvalid', { last }, { message: `last must be the sequence number of an event (a whole number), got ${JSON.stringify(last)}.` });
  const limit = Math.min(n === undefined ? DEFAULT_PAGE : Number(n), MAX_PAGE);
  const repository = param(query, 'repository') || undefined;
  const caller = callerOf(request);
  const allowed = new Map<string | null, Promise<boolean>>();
  const mayRead = (name: string | null) => {
    let decision = allowed.get(name);
    if (!decision) {
      const repo: RepoRef | undefined = name === null ? undefined : { account, name };
      decision = deps.registry.authorizer.isAllowed(caller, repo ? 'ecr:DescribeImages' : 'ecr:DescribeRegistry', repo, account);
      allowed.set(name, decision);
    }
    return decision;
  };
  const events: { seq: number; event: unknown }[] = [];
  let after = last === undefined ? 0 : Number(last);
  let more = false;
  // Read past what the caller may not see, until the page is full or the log ends.
  while (limit > 0) {
    const batch = await deps.registry.readEvents({ after, limit: limit + 1, accountId: account, repository });
    for (const e of batch) {
      if (events.length === limit) {
        more = true;
        break;
      }
      if (await mayRead(e.repository)) events.push({ seq: e.seq, event: e.body });
      after = e.seq;
    }
    if (more || batch.length < limit + 1) break;
  }
  if (more && events.length > 0) {
    const next = new URLSearchParams({ n: String(limit), last: String(events[events.length - 1]!.seq), ...(repository ? { repository } : {}) });
    reply.header('link', `</v2/_events?${next}>; rel="next"`);
  }
  reply.header('content-type', 'application/json').send(JSON.stringify({ events }));
};
