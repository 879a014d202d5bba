import type { RepositorySettings, RepositoryTemplate } from '../store/meta/meta-store.ts';

/**
 * Repository creation templates (ECR CreateRepositoryCreationTemplate) as the registry applies
 * them: which template covers a repository a push would create, and what that repository gets
 * from it. Templates are stored in ECR's shape; the ECR API validates them before they are stored.
 */

/** The prefix of the template that covers every repository no other template covers. */
export const ROOT_PREFIX = 'ROOT';

/** The stored template: ECR's RepositoryCreationTemplate without prefix and timestamps. */
export interface TemplateFields {
  description?: string;
  encryptionConfiguration?: { encryptionType: RepositorySettings['encryptionType']; kmsKey?: string };
  resourceTags?: RepositorySettings['tags'];
  imageTagMutability?: RepositorySettings['imageTagMutability'];
  imageTagMutabilityExclusionFilters?: RepositorySettings['imageTagMutabilityExclusionFilters'];
  repositoryPolicy?: string;
  lifecyclePolicy?: string;
  appliedFor: ('REPLICATION' | 'PULL_THROUGH_CACHE' | 'CREATE_ON_PUSH')[];
  customRoleArn?: string;
}

/** What a new repository starts with besides its name. */
export interface RepositoryInit {
  settings?: Partial<RepositorySettings>;
  /** Repository policy text, set in the same transaction as the creation. */
  repositoryPolicy?: string | null;
}

/**
 * ECR reads a prefix as a namespace with an assumed `/` at its end: `prod` covers `prod/app` and
 * `prod/team/app`, but not `prod` itself or `production/app`.
 */
export function prefixCovers(prefix: string, name: string): boolean {
  if (prefix === ROOT_PREFIX) return true;
  return name.startsWith(prefix.endsWith('/') ? prefix : `${prefix}/`);
}

/**
 * The template that creates `name` for `use` (a push, a replication or a pull-through cache):
 * among those whose appliedFor includes it, the longest prefix that covers the name; ROOT only
 * when no other does.
 */
export function templateFor(templates: readonly RepositoryTemplate[], name: string, use: TemplateFields['appliedFor'][number]): RepositoryTemplate | undefined {
  let best: RepositoryTemplate | undefined;
  for (const t of templates) {
    const fields = t.template as Partial<TemplateFields>;
    if (!fields.appliedFor?.includes(use) || !prefixCovers(t.prefix, name)) continue;
    if (!best || best.prefix === ROOT_PREFIX || (t.prefix !== ROOT_PREFIX && t.prefix.length > best.prefix.length)) best = t;
  }
  return best;
}

/** The template that creates `name` on push (CREATE_ON_PUSH). */
export function templateForPush(templates: readonly RepositoryTemplate[], name: string): RepositoryTemplate | undefined {
  return templateFor(templates, name, 'CREATE_ON_PUSH');
}

/** The settings and repository policy a template gives the repositories it creates. */
export function initFromTemplate(template: RepositoryTemplate): RepositoryInit {
  const t = template.template as Partial<TemplateFields>;
  return {
    settings: {
      imageTagMutability: t.imageTagMutability ?? 'MUTABLE',
      imageTagMutabilityExclusionFilters: t.imageTagMutabilityExclusionFilters ?? [],
      encryptionType: t.encryptionConfiguration?.encryptionType ?? 'AES256',
      kmsKey: t.encryptionConfiguration?.kmsKey || null,
      tags: t.resourceTags ?? [],
      lifecyclePolicy: t.lifecyclePolicy || null,
    },
    repositoryPolicy: t.repositoryPolicy || null,
  };
}
