import { createHash, randomBytes, randomInt } from 'node:crypto';

const BASE32 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';

function base32(n: number): string {
  const bytes = randomBytes(n);
  let out = '';
  for (let i = 0; i < n; i++) out += BASE32[bytes[i]! & 31];
  return out;
}

/** IAM's unique-id prefixes: AKIA access key, ASIA temporary key, AIDA user, AGPA group, AROA role, ANPA policy. */
export const newAccessKeyId = (): string => 'AKIA' + base32(16);
export const newTemporaryKeyId = (): string => 'ASIA' + base32(16);
export const newUserId = (): string => 'AIDA' + base32(17);
export const newGroupId = (): string => 'AGPA' + base32(17);
export const newRoleId = (): string => 'AROA' + base32(17);
export const newPolicyId = (): string => 'ANPA' + base32(17);

/** 40 characters of [A-Za-z0-9+/], like AWS secret access keys. */
export function newSecretAccessKey(): string {
  return randomBytes(30).toString('base64');
}

/** A random 12-digit account id that does not start with 0. */
export function newAccountId(): string {
  let id = String(randomInt(1, 10));
  for (let i = 0; i < 11; i++) id += String(randomInt(0, 10));
  return id;
}

export const isAccountId = (s: string): boolean => /^\d{12}$/.test(s);

export function iamArn(accountId: string, kind: 'user' | 'group' | 'role' | 'policy', path: string, name: string): string {
  return `arn:aws:iam::${accountId}:${kind}${path}${name}`;
}

export function repositoryArn(region: string, accountId: string, name: string): string {
  return `arn:aws:ecr:${region}:${accountId}:repository/${name}`;
}

/**
 * The id of the account's AWS managed key for ECR (alias `aws/ecr`), which ECR uses for a KMS or
 * KMS_DSSE repository given no key. Berth holds no KMS keys, so the id is derived from the
 * account and region rather than stored: the same account always reports the same key, and no
 * two accounts (or regions) share one. It is shaped like a KMS key id (a version-4 UUID).
 */
export function awsManagedEcrKeyId(region: string, accountId: string): string {
  const hex = createHash('sha256').update(`aws/ecr:${region}:${accountId}`).digest('hex');
  const variant = ((parseInt(hex[16]!, 16) & 0x3) | 0x8).toString(16);
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-4${hex.slice(13, 16)}-${variant}${hex.slice(17, 20)}-${hex.slice(20, 32)}`;
}

export function kmsKeyArn(region: string, accountId: string, keyId: string): string {
  return `arn:aws:kms:${region}:${accountId}:key/${keyId}`;
}
