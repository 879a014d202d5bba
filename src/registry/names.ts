import { RegistryError } from '../errors/catalogue.ts';

/**
 * Repository names follow ECR's rule (CreateRepository: 2-256 characters, components of
 * lowercase letters and digits joined by single `.`, `_` or `-`, separated by `/`). That is a
 * subset of the OCI Distribution spec's <name> grammar (which also allows `__` and `--`), so
 * every name Berth accepts is valid on both planes. Tags follow the spec's <reference> grammar.
 */
const NAME_COMPONENT = '[a-z0-9]+(?:[._-][a-z0-9]+)*';
const NAME_RE = new RegExp(`^${NAME_COMPONENT}(?:/${NAME_COMPONENT})*$`);
const TAG_RE = /^[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}$/;

export const MAX_NAME_LENGTH = 256;

export function isValidRepositoryName(name: string): boolean {
  return name.length >= 2 && name.length <= MAX_NAME_LENGTH && NAME_RE.test(name);
}

export function assertRepositoryName(name: string): void {
  if (!isValidRepositoryName(name)) {
    const why =
      name.length > MAX_NAME_LENGTH
        ? `it is ${name.length} characters long; the limit is ${MAX_NAME_LENGTH}`
        : name.length < 2
          ? 'it must be at least 2 characters long'
          : 'use lowercase letters and digits, single . _ or - between them, and / between path components';
    throw new RegistryError('NameInvalid', { name }, { message: `Invalid repository name ${JSON.stringify(name)}: ${why}.` });
  }
}

export function isValidTag(tag: string): boolean {
  return TAG_RE.test(tag);
}

export function assertTag(tag: string): void {
  if (!isValidTag(tag)) {
    throw new RegistryError('TagInvalid', { tag }, {
      message: `Invalid tag ${JSON.stringify(tag)}: up to 128 letters, digits, _ . and -, not starting with . or -.`,
    });
  }
}

/** A repository as every layer addresses it: the owning account and the name within it. */
export interface RepoRef {
  account: string;
  name: string;
}
