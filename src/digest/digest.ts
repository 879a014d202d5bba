import { createHash, type Hash } from 'node:crypto';
import { RegistryError } from '../errors/catalogue.ts';

/**
 * Digests as the OCI image spec defines them (descriptor.md, "Digests"): `algorithm:encoded`.
 * Berth stores and verifies sha256 and sha512, the two registered algorithms.
 */
export type Digest = string;
export type DigestAlgorithm = 'sha256' | 'sha512';

const DIGEST_RE = /^(sha256:[a-f0-9]{64}|sha512:[a-f0-9]{128})$/;
const GRAMMAR_RE = /^[a-z0-9]+(?:[+._-][a-z0-9]+)*:[a-zA-Z0-9=_-]+$/;

export function isDigest(value: string): boolean {
  return DIGEST_RE.test(value);
}

/** Looks like a digest at all (so that `sha256:...` in a reference is never taken for a tag). */
export function looksLikeDigest(value: string): boolean {
  return value.includes(':');
}

export function parseDigest(value: string): { algorithm: DigestAlgorithm; encoded: string } {
  if (!DIGEST_RE.test(value)) {
    const why = GRAMMAR_RE.test(value)
      ? 'only sha256 (64 hex digits) and sha512 (128 hex digits) are supported'
      : 'expected algorithm:hex, e.g. sha256: followed by 64 lowercase hex digits';
    throw new RegistryError('DigestInvalid', { digest: value }, { message: `Invalid digest ${JSON.stringify(value)}: ${why}.` });
  }
  const [algorithm, encoded] = value.split(':') as [DigestAlgorithm, string];
  return { algorithm, encoded };
}

export function digestOf(bytes: Uint8Array, algorithm: DigestAlgorithm = 'sha256'): Digest {
  return `${algorithm}:${createHash(algorithm).update(bytes).digest('hex')}`;
}

export function newHasher(algorithm: DigestAlgorithm = 'sha256'): Hash {
  return createHash(algorithm);
}
