import type { OciRoute } from './paths.ts';
import { authorize, authorizeAccount, callerOf, type OciHandler } from './plane.ts';
import { nextLink, pageOf, queryOf } from './http-util.ts';

/** GET /v2/<name>/tags/list (spec: "Listing Tags"), paginated with n, last and a Link header. */
export const handleTags: OciHandler<Extract<OciRoute, { kind: 'tags' }>> = async (deps, route, request, reply) => {
  const repo = await authorize(deps, request, 'ecr:ListImages', route.name);
  const page = pageOf(queryOf(request));
  const { names, more } = await deps.registry.listTags(repo, page);
  // Spec ("Listing Tags"): with n=0 the list is empty and there is no Link header.
  if (more && names.length > 0) reply.header('link', nextLink(`/v2/${route.name}/tags/list`, page.limit, names[names.length - 1]!));
  reply.header('content-type', 'application/json').send(JSON.stringify({ name: route.name, tags: names }));
};

/** GET /v2/_catalog: the repositories the caller may pull, paginated like tags. */
export const handleCatalog: OciHandler<Extract<OciRoute, { kind: 'catalog' }>> = async (deps, _route, request, reply) => {
  const account = await authorizeAccount(deps, request, 'ecr:DescribeRepositories');
  const page = pageOf(queryOf(request));
  const { names, more } = await deps.registry.listRepositories(callerOf(request), account, page);
  if (more && names.length > 0) reply.header('link', nextLink('/v2/_catalog', page.limit, names[names.length - 1]!));
  reply.header('content-type', 'application/json').send(JSON.stringify({ repositories: names }));
};
