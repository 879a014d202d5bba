import type { CacheRule } from '../store/meta/cache-store.ts';

/**
 * Pull-through cache rules as values (docs/pull-through-cache.md): what an upstream URL means,
 * which kind of registry it is, which rule covers a repository name and which upstream
 * repository that name maps to. No I/O here.
 */

/** ECR's prefix that covers every repository name. */
export const ROOT = 'ROOT';

/** ECR's limit on rules per registry. */
export const MAX_RULES = 50;

/** An upstream registry's place on the network: the origin requests go to. */
export interface UpstreamEndpoint {
  /** e.g. https://registry-1.docker.io or http://127.0.0.1:5000 */
  origin: string;
  /** The host[:port] named in the rule. */
  host: string;
}

/** Well-known registries, by host, as ECR names them in `upstreamRegistry`. */
const KNOWN: Array<{ test: (host: string) => boolean; kind: string }> = [
  { test: (h) => h === 'registry-1.docker.io' || h === 'docker.io' || h === 'index.docker.io', kind: 'docker-hub' },
  { test: (h) => h === 'public.ecr.aws', kind: 'ecr-public' },
  { test: (h) => h === 'quay.io', kind: 'quay' },
  { test: (h) => h === 'registry.k8s.io', kind: 'k8s' },
  { test: (h) => h === 'ghcr.io', kind: 'github-container-registry' },
  { test: (h) => h.endsWith('.azurecr.io'), kind: 'azure-container-registry' },
  { test: (h) => h === 'registry.gitlab.com', kind: 'gitlab-container-registry' },
  { test: (h) => h === 'cgr.dev', kind: 'chainguard' },
  { test: (h) => /^\d{12}\.dkr\.ecr\.[a-z0-9-]+\.amazonaws\.com(\.cn)?$/.test(h), kind: 'ecr' },
];

/** Upstreams ECR requires credentials for (a Secrets Manager secret, `credentialArn`). */
export const NEEDS_CREDENTIALS = new Set(['docker-hub', 'github-container-registry', 'azure-container-registry', 'gitlab-container-registry']);

export class RuleError extends Error {
  readonly code: 'InvalidParameterException' | 'UnsupportedUpstreamRegistryException';
  constructor(code: RuleError['code'], message: string) {
    super(message);
    this.code = code;
  }
}

/**
 * Reads an upstream registry URL as a rule names it: `host[:port]` (HTTPS, as ECR takes
 * `registry-1.docker.io`), `https://host[:port]`, or `http://host[:port]` for a registry
 * without TLS (a lab or a loopback test). No path, user info, query or fragment.
 */
export function parseUpstreamUrl(raw: string): UpstreamEndpoint {
  const text = raw.trim();
  const withScheme = /^[a-z][a-z0-9+.-]*:\/\//i.test(text) ? text : `https://${text}`;
  let url: URL;
  try {
    url = new URL(withScheme);
  } catch {
    throw new RuleError('InvalidParameterException', `upstreamRegistryUrl ${JSON.stringify(raw)} is not a registry host name (e.g. registry-1.docker.io, quay.io, or http://127.0.0.1:5000).`);
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') {
    throw new RuleError('InvalidParameterException', `upstreamRegistryUrl must be a host name, https://host or http://host, not ${url.protocol}//.`);
  }
  if (url.username || url.password || (url.pathname !== '/' && url.pathname !== '') || url.search || url.hash || !url.hostname) {
    throw new RuleError('InvalidParameterException', `upstreamRegistryUrl ${JSON.stringify(raw)} must name only a host and an optional port: no path, credentials or query (credentials go in a secret named by credentialArn).`);
  }
  // Docker Hub's registry answers at registry-1.docker.io, whatever name users know it by.
  const host = url.host === 'docker.io' || url.host === 'index.docker.io' ? 'registry-1.docker.io' : url.host;
  return { origin: `${url.protocol}//${host}`, host };
}

/** The rule's upstream URL as stored and shown: as given, minus a trailing slash, the host lower-cased. */
export function normalizeUpstreamUrl(raw: string): string {
  const endpoint = parseUpstreamUrl(raw);
  const explicit = /^https?:\/\//i.test(raw.trim());
  return explicit ? endpoint.origin : raw.trim().replace(/\/+$/, '').toLowerCase();
}

/** ECR's name for the kind of upstream at `host`, or undefined for any other OCI registry. */
export function upstreamKind(host: string): string | undefined {
  const h = host.toLowerCase().replace(/:443$/, '');
  return KNOWN.find((k) => k.test(h))?.kind;
}

/** The prefix as stored: `ROOT`, or the prefix without a trailing slash. */
export function normalizePrefix(prefix: string): string {
  return prefix === ROOT ? ROOT : prefix.replace(/\/+$/, '');
}

/**
 * The rule that covers a repository name: the one with the longest prefix that is a whole
 * leading part of the name (`docker-hub` covers `docker-hub/library/alpine`, not `docker-hubx/a`
 * nor `docker-hub` itself), else a ROOT rule. With it, the rest of the name after the prefix.
 */
export function ruleFor(rules: readonly CacheRule[], name: string): { rule: CacheRule; rest: string } | undefined {
  let best: CacheRule | undefined;
  for (const rule of rules) {
    const p = rule.ecrRepositoryPrefix;
    if (p === ROOT) {
      if (!best) best = rule;
      continue;
    }
    if (name.startsWith(`${p}/`) && name.length > p.length + 1 && (!best || best.ecrRepositoryPrefix === ROOT || p.length > best.ecrRepositoryPrefix.length)) best = rule;
  }
  if (!best) return undefined;
  return { rule: best, rest: best.ecrRepositoryPrefix === ROOT ? name : name.slice(best.ecrRepositoryPrefix.length + 1) };
}

/**
 * The upstream repository a covered name maps to: the rest of the name under the rule's
 * upstream prefix; on Docker Hub a one-component name is an official image under `library/`,
 * as docker itself reads `alpine`.
 */
export function upstreamRepository(rule: CacheRule, rest: string): string {
  const name = rule.upstreamRepositoryPrefix === ROOT ? rest : `${rule.upstreamRepositoryPrefix}/${rest}`;
  if (rule.upstreamRegistry === 'docker-hub' && !name.includes('/')) return `library/${name}`;
  return name;
}
