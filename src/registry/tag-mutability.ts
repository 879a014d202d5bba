import type { RepositorySettings } from '../store/meta/meta-store.ts';

/**
 * ECR's tag mutability (PutImageTagMutability): whether a tag, once it points at an image, may
 * be moved to another. IMMUTABLE and MUTABLE apply to every tag; the _WITH_EXCLUSION variants
 * give the tags that match one of the exclusion filters the opposite setting. A filter is a
 * wildcard in which `*` stands for any run of characters (ECR's WILDCARD filter type).
 */
export function isTagImmutable(settings: Pick<RepositorySettings, 'imageTagMutability' | 'imageTagMutabilityExclusionFilters'>, tag: string): boolean {
  const excluded = () => settings.imageTagMutabilityExclusionFilters.some((f) => wildcardMatches(f.filter, tag));
  switch (settings.imageTagMutability) {
    case 'MUTABLE':
      return false;
    case 'IMMUTABLE':
      return true;
    case 'IMMUTABLE_WITH_EXCLUSION':
      return !excluded();
    case 'MUTABLE_WITH_EXCLUSION':
      return excluded();
  }
}

/** Whether `value` matches `pattern` as a whole, `*` matching any run of characters (none included). */
export function wildcardMatches(pattern: string, value: string): boolean {
  const parts = pattern.split('*');
  if (parts.length === 1) return pattern === value;
  const first = parts[0]!;
  const last = parts[parts.length - 1]!;
  if (value.length < first.length + last.length || !value.startsWith(first) || !value.endsWith(last)) return false;
  let at = first.length;
  const end = value.length - last.length;
  for (const middle of parts.slice(1, -1)) {
    const found = value.indexOf(middle, at);
    if (found < 0 || found + middle.length > end) return false;
    at = found + middle.length;
  }
  return true;
}
