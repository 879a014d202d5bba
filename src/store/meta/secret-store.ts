/**
 * Secrets Manager's secrets in the metadata store (docs/secrets-manager.md): each secret's
 * metadata, its versions with their values sealed by the caller (the store never sees a value in
 * plain text) and the staging labels that name versions. The API's semantics (names, ARNs,
 * validation, which labels a new version takes) live in src/secrets/; the one rule kept here is
 * how labels move, because it must happen in the same transaction as the new version.
 */

export interface SecretTag {
  Key: string;
  Value: string;
}

export interface SecretRecord {
  /** Berth's own key of the secret; a secret deleted and created again gets a new one. */
  id: string;
  accountId: string;
  /** Unique in the account. */
  name: string;
  /** `arn:aws:secretsmanager:REGION:ACCOUNT:secret:NAME-XXXXXX`; unique. */
  arn: string;
  description: string | null;
  kmsKeyId: string | null;
  tags: SecretTag[];
  createdAtMs: number;
  lastChangedAtMs: number;
  lastAccessedAtMs: number | null;
  /** When DeleteSecret scheduled the deletion; null when none is scheduled. */
  deletedAtMs: number | null;
  /** When a scheduled deletion comes due (the secret is then as good as gone); null when none is scheduled. */
  purgeAtMs: number | null;
}

export interface SecretVersion {
  secretId: string;
  versionId: string;
  /** The value as the caller sealed it. */
  sealed: string;
  /** SecretBinary (sealed as base64) rather than SecretString. */
  isBinary: boolean;
  /** The staging labels on this version, sorted; empty for a deprecated version. */
  stages: string[];
  createdAtMs: number;
}

export interface NewSecretVersion {
  versionId: string;
  sealed: string;
  isBinary: boolean;
  /** The labels to move onto this version (see putVersion). */
  stages: string[];
  createdAtMs: number;
}

/** What putVersion did. */
export type PutVersionOutcome =
  | { status: 'created'; version: SecretVersion }
  /** A version with this id was there already: nothing changed; the caller compares the values. */
  | { status: 'exists'; version: SecretVersion }
  | { status: 'missing' }
  /** The secret is scheduled for deletion: nothing changed. */
  | { status: 'deleted' };

/** The labels that have a meaning of their own when they move (Secrets Manager's rule). */
export const AWSCURRENT = 'AWSCURRENT';
export const AWSPREVIOUS = 'AWSPREVIOUS';

/** Versions a secret keeps at most; beyond it the oldest ones without a label are removed. */
export const MAX_SECRET_VERSIONS = 100;

export interface SecretStore {
  /** Resolves undefined when the account has no secret of that name; a scheduled deletion is still found. */
  getSecret(accountId: string, name: string): Promise<SecretRecord | undefined>;
  /** The same, by the secret's full ARN within the account. */
  getSecretByArn(accountId: string, arn: string): Promise<SecretRecord | undefined>;
  /**
   * The account's secrets in name order (bytewise), at most `limit`, after `afterName` when
   * given, only names starting with `namePrefix` when given, and those scheduled for deletion
   * only with `includePlannedDeletion`. A secret changed between two pages is seen in its state
   * of the later page, once, as long as its name did not change.
   */
  listSecrets(accountId: string, options: { limit: number; afterName?: string | undefined; namePrefix?: string | undefined; includePlannedDeletion: boolean }): Promise<SecretRecord[]>;
  /**
   * Creates the secret, with its first version when given (its labels simply set). When the
   * account already has a secret of that name (even one scheduled for deletion), nothing
   * changes and it resolves that one: of concurrent creations of one name, exactly one creates.
   */
  createSecret(secret: SecretRecord, firstVersion?: NewSecretVersion): Promise<{ created: true } | { created: false; existing: SecretRecord }>;
  /**
   * Sets the given metadata and `lastChangedAtMs`. Resolves 'missing' when the secret is gone and
   * 'deleted' (nothing changed) when it is scheduled for deletion.
   */
  updateSecret(id: string, patch: { description?: string; kmsKeyId?: string }, nowMs: number): Promise<'updated' | 'missing' | 'deleted'>;
  /**
   * Adds a version and, in the same transaction, moves each label of `version.stages` onto it
   * from whichever version held it. When AWSCURRENT moves, the version that held it takes
   * AWSPREVIOUS (from whichever version held that). The secret's `lastChangedAtMs` becomes
   * `nowMs`, and versions beyond MAX_SECRET_VERSIONS lose their oldest label-less members.
   * Idempotent by version id: a version that exists is left as it is and resolved ('exists'),
   * whatever its value. Concurrent callers on one secret are serialized: labels never end up on
   * two versions, and each AWSCURRENT move sees the one before.
   */
  putVersion(secretId: string, version: NewSecretVersion, nowMs: number): Promise<PutVersionOutcome>;
  /**
   * The version with that id, or the one holding that label; both must agree when both are
   * given. Resolves undefined when there is none (or the secret is gone).
   */
  getVersion(secretId: string, which: { versionId?: string | undefined; stage?: string | undefined }): Promise<SecretVersion | undefined>;
  /**
   * For each of the secrets, its versions that carry a label, as Secrets Manager's
   * VersionIdsToStages (`{versionId: [labels]}`); a secret without any maps to `{}`.
   */
  versionStages(secretIds: readonly string[]): Promise<Map<string, Record<string, string[]>>>;
  /** Records an access (LastAccessedDate); a later time never goes back. No-op when the secret is gone. */
  touchAccessed(id: string, atMs: number): Promise<void>;
  /**
   * Schedules the deletion: `deletedAtMs` is now, `purgeAtMs` when it comes due. Resolves
   * 'missing' when the secret is gone and 'deleted' (nothing changed) when a deletion is
   * already scheduled.
   */
  scheduleDeletion(id: string, deletedAtMs: number, purgeAtMs: number): Promise<'scheduled' | 'missing' | 'deleted'>;
  /**
   * Cancels a scheduled deletion that is not yet due at `nowMs` (idempotent: a secret without
   * one is left as it is). Resolves false when the secret is gone or its deletion came due.
   */
  restore(id: string, nowMs: number): Promise<boolean>;
  /** Deletes the secret with its versions at once. Resolves false when it was not there. */
  deleteSecret(id: string): Promise<boolean>;
  /** Deletes the account's secrets whose scheduled deletion is due at `nowMs`, with their versions; resolves how many. */
  purgeDue(accountId: string, nowMs: number): Promise<number>;
}
