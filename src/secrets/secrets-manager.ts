import { randomInt, randomUUID } from 'node:crypto';
import type { Secrets } from '../iam/secrets.ts';
import { AWSCURRENT, type NewSecretVersion, type PutVersionOutcome, type SecretRecord, type SecretStore, type SecretTag, type SecretVersion } from '../store/meta/secret-store.ts';

/**
 * The AWS Secrets Manager API subset Berth serves (docs/secrets-manager.md): secrets whose values
 * are sealed with the instance key before they reach the store, versions named by the caller's
 * ClientRequestToken, and the staging labels AWSCURRENT and AWSPREVIOUS. Inputs and outputs are
 * spelt as the API spells them, so the control plane's handlers only authorize and pass them on.
 * ECR's pull-through cache reads credentials through readValue().
 */

export type SecretsManagerErrorCode =
  | 'ResourceNotFoundException'
  | 'ResourceExistsException'
  | 'InvalidParameterException'
  | 'InvalidRequestException'
  | 'InvalidNextTokenException'
  | 'DecryptionFailure';

/** A refusal of the API, with the exception Secrets Manager names it by (all are client errors, 400). */
export class SecretsManagerError extends Error {
  override name = 'SecretsManagerError';
  readonly code: SecretsManagerErrorCode;
  constructor(code: SecretsManagerErrorCode, message: string) {
    super(message);
    this.code = code;
  }
}

/**
 * readValue() found no value to use. `missing`: no such secret (or it has no current value);
 * `deleted`: scheduled for deletion; `undecryptable`: its value was sealed with another instance
 * key (auth.secretKey differs between the nodes, or was changed).
 */
export class SecretNotFound extends Error {
  override name = 'SecretNotFound';
  readonly reason: 'missing' | 'deleted' | 'undecryptable';
  readonly secretId: string;
  constructor(secretId: string, reason: 'missing' | 'deleted' | 'undecryptable', options?: { cause?: unknown }) {
    const why = reason === 'missing' ? 'does not exist or has no current value' : reason === 'deleted' ? 'is scheduled for deletion' : 'cannot be unsealed with this instance key';
    super(`The secret ${secretId} ${why}.`, options);
    this.secretId = secretId;
    this.reason = reason;
  }
}

/**
 * Asked with the secret's ARN before an operation reveals anything about the secret (even that it
 * is missing: then with the ARN without its suffix); rejects to refuse.
 */
export type AuthorizeSecret = (arn: string) => Promise<void>;

export interface SecretsManagerOptions {
  store: SecretStore;
  /** Seals values at rest. */
  secrets: Secrets;
  region: string;
  now?: () => number;
}

export interface SecretValue {
  arn: string;
  name: string;
  secretString?: string;
  secretBinary?: Buffer;
}

// Inputs as the model types them (src/aws/json.ts checked lengths, enums and types already).
export interface CreateSecretInput {
  Name: string;
  ClientRequestToken?: string;
  Description?: string;
  KmsKeyId?: string;
  SecretString?: string;
  SecretBinary?: Uint8Array;
  Tags?: SecretTag[];
  AddReplicaRegions?: unknown[];
}
export interface GetSecretValueInput {
  SecretId: string;
  VersionId?: string;
  VersionStage?: string;
}
export interface PutSecretValueInput {
  SecretId: string;
  ClientRequestToken?: string;
  SecretString?: string;
  SecretBinary?: Uint8Array;
  VersionStages?: string[];
}
export interface UpdateSecretInput {
  SecretId: string;
  ClientRequestToken?: string;
  Description?: string;
  KmsKeyId?: string;
  SecretString?: string;
  SecretBinary?: Uint8Array;
}
export interface ListSecretsInput {
  IncludePlannedDeletion?: boolean;
  MaxResults?: number;
  NextToken?: string;
  Filters?: Array<{ Key?: string; Values?: string[] }>;
}
export interface DeleteSecretInput {
  SecretId: string;
  RecoveryWindowInDays?: number;
  ForceDeleteWithoutRecovery?: boolean;
}

const DAY_MS = 86_400_000;
/** Secrets Manager's name alphabet. */
const NAME = /^[A-Za-z0-9/_+=.@-]+$/u;
const SUFFIX_ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';
/** Secrets read from the store per round while ListSecrets filters them. */
const LIST_BATCH = 200;

const notFound = () => new SecretsManagerError('ResourceNotFoundException', "Secrets Manager can't find the specified secret.");
const markedForDeletion = () => new SecretsManagerError('InvalidRequestException', "You can't perform this operation on the secret because it was marked for deletion.");
const invalid = (message: string) => new SecretsManagerError('InvalidParameterException', message);

interface Sealed {
  plain: string;
  sealed: string;
  isBinary: boolean;
}

interface Located {
  /** The secret's ARN, or for a missing one the ARN it would have without its suffix. */
  arn: string;
  record: SecretRecord | undefined;
}

type Entry = Record<string, unknown>;

export class SecretsManager {
  private readonly store: SecretStore;
  private readonly sealer: Secrets;
  private readonly region: string;
  private readonly now: () => number;

  constructor(options: SecretsManagerOptions) {
    this.store = options.store;
    this.sealer = options.secrets;
    this.region = options.region;
    this.now = options.now ?? Date.now;
  }

  /** The ARN without the random suffix: what AWS calls a partial ARN. */
  partialArn(accountId: string, name: string): string {
    return `arn:aws:secretsmanager:${this.region}:${accountId}:secret:${name}`;
  }

  private newArn(accountId: string, name: string): string {
    let suffix = '';
    for (let i = 0; i < 6; i++) suffix += SUFFIX_ALPHABET[randomInt(SUFFIX_ALPHABET.length)];
    return `${this.partialArn(accountId, name)}-${suffix}`;
  }

  /**
   * The secret a SecretId names in the account: by name, by full ARN, or by partial ARN (without
   * the suffix). A secret whose scheduled deletion came due is purged here and counts as missing.
   */
  private async locate(accountId: string, secretId: string): Promise<Located> {
    let record: SecretRecord | undefined;
    let arn: string;
    if (secretId.startsWith('arn:')) {
      const m = /^arn:[\w-]+:secretsmanager:([\w-]+):(\d{12}):secret:(.+)$/u.exec(secretId);
      if (!m) throw invalid(`${secretId} is not a valid Secrets Manager ARN (arn:aws:secretsmanager:REGION:ACCOUNT:secret:NAME).`);
      arn = secretId;
      // Another account's secret is never found (no resource policies here). A full ARN is taken
      // as stored (even from before a change of `region`); a partial one only for this region.
      if (m[2] === accountId) {
        record = await this.store.getSecretByArn(accountId, secretId);
        if (!record && m[1] === this.region) record = await this.store.getSecret(accountId, m[3]!);
      }
    } else {
      record = await this.store.getSecret(accountId, secretId);
      arn = record?.arn ?? this.partialArn(accountId, secretId);
    }
    if (record?.purgeAtMs != null && record.purgeAtMs <= this.now()) {
      await this.store.deleteSecret(record.id);
      record = undefined;
    }
    return { arn: record?.arn ?? arn, record };
  }

  /** locate(), authorize, and the secret or ResourceNotFoundException. */
  private async existing(accountId: string, secretId: string, authorize: AuthorizeSecret): Promise<SecretRecord> {
    const { arn, record } = await this.locate(accountId, secretId);
    await authorize(arn);
    if (!record) throw notFound();
    return record;
  }

  private seal(input: { SecretString?: string | undefined; SecretBinary?: Uint8Array | undefined }): Sealed | undefined {
    if (input.SecretString !== undefined && input.SecretBinary !== undefined) {
      throw invalid("You can't specify both a binary secret value and a string secret value in the same secret.");
    }
    if (input.SecretString !== undefined) return { plain: input.SecretString, sealed: this.sealer.seal(input.SecretString), isBinary: false };
    if (input.SecretBinary !== undefined) {
      const plain = Buffer.from(input.SecretBinary).toString('base64');
      return { plain, sealed: this.sealer.seal(plain), isBinary: true };
    }
    return undefined;
  }

  /** The plain value (base64 for a binary one), or undefined when this instance key cannot unseal it. */
  private unseal(version: SecretVersion): string | undefined {
    try {
      return this.sealer.unseal(version.sealed);
    } catch {
      return undefined;
    }
  }

  private isSameValue(version: SecretVersion, value: Sealed): boolean {
    return version.isBinary === value.isBinary && this.unseal(version) === value.plain;
  }

  /** The outcome of adding a version, as PutSecretValue answers it. */
  private versionOutcome(outcome: PutVersionOutcome, value: Sealed): SecretVersion {
    switch (outcome.status) {
      case 'missing':
        throw notFound();
      case 'deleted':
        throw markedForDeletion();
      case 'exists':
        // A retry of the same request is answered as the first; another value may not reuse the id.
        if (!this.isSameValue(outcome.version, value)) {
          throw new SecretsManagerError('ResourceExistsException', "You can't modify an existing version, you can only create a new version.");
        }
        return outcome.version;
      case 'created':
        return outcome.version;
    }
  }

  /** LastAccessedDate is a date (midnight UTC), so at most one write a day. */
  private async touch(record: SecretRecord): Promise<void> {
    const day = Math.floor(this.now() / DAY_MS) * DAY_MS;
    if (record.lastAccessedAtMs !== day) await this.store.touchAccessed(record.id, day);
  }

  async createSecret(accountId: string, input: CreateSecretInput, authorize: AuthorizeSecret): Promise<Entry> {
    if (!NAME.test(input.Name)) throw invalid('Invalid name. Must be a valid name containing alphanumeric characters, or any of the following: -/_+=.@!');
    if (input.AddReplicaRegions !== undefined) throw invalid('Replicating secrets to other regions (AddReplicaRegions) is not supported by this registry.');
    const tags = input.Tags ?? [];
    if (new Set(tags.map((t) => t.Key)).size !== tags.length) throw invalid('You can’t have duplicate tag keys.');
    const value = this.seal(input);
    const now = this.now();
    const versionId = input.ClientRequestToken ?? randomUUID();
    // A name whose deletion came due is free again.
    await this.store.purgeDue(accountId, now);
    const arn = this.newArn(accountId, input.Name);
    await authorize(arn);
    const record: SecretRecord = {
      id: randomUUID(),
      accountId,
      name: input.Name,
      arn,
      description: input.Description ?? null,
      kmsKeyId: input.KmsKeyId ?? null,
      tags,
      createdAtMs: now,
      lastChangedAtMs: now,
      lastAccessedAtMs: null,
      deletedAtMs: null,
      purgeAtMs: null,
    };
    const first: NewSecretVersion | undefined = value && { versionId, sealed: value.sealed, isBinary: value.isBinary, stages: [AWSCURRENT], createdAtMs: now };
    const outcome = await this.store.createSecret(record, first);
    if (!outcome.created) {
      const { existing } = outcome;
      if (existing.purgeAtMs !== null) {
        throw new SecretsManagerError('InvalidRequestException', "You can't create this secret because a secret with this name is already scheduled for deletion.");
      }
      // A retry (same token, same value) of a creation that succeeded is answered as the first.
      if (value && input.ClientRequestToken !== undefined) {
        const version = await this.store.getVersion(existing.id, { versionId });
        if (version && this.isSameValue(version, value)) return { ARN: existing.arn, Name: existing.name, VersionId: versionId };
      }
      throw new SecretsManagerError('ResourceExistsException', `The operation failed because the secret ${input.Name} already exists.`);
    }
    return { ARN: arn, Name: input.Name, ...(value ? { VersionId: versionId } : {}) };
  }

  async getSecretValue(accountId: string, input: GetSecretValueInput, authorize: AuthorizeSecret): Promise<Entry> {
    const record = await this.existing(accountId, input.SecretId, authorize);
    if (record.purgeAtMs !== null) throw markedForDeletion();
    const stage = input.VersionStage ?? (input.VersionId === undefined ? AWSCURRENT : undefined);
    const version = await this.store.getVersion(record.id, { versionId: input.VersionId, stage });
    if (!version) {
      const which = input.VersionId !== undefined ? `VersionId: ${input.VersionId}` : `staging label: ${stage}`;
      throw new SecretsManagerError('ResourceNotFoundException', `Secrets Manager can't find the specified secret value for ${which}`);
    }
    const plain = this.unseal(version);
    if (plain === undefined) {
      throw new SecretsManagerError('DecryptionFailure', "Secrets Manager can't decrypt the protected secret text: it was sealed with another instance key (auth.secretKey).");
    }
    await this.touch(record);
    return {
      ARN: record.arn,
      Name: record.name,
      VersionId: version.versionId,
      ...(version.isBinary ? { SecretBinary: new Uint8Array(Buffer.from(plain, 'base64')) } : { SecretString: plain }),
      VersionStages: version.stages,
      CreatedDate: new Date(version.createdAtMs),
    };
  }

  async putSecretValue(accountId: string, input: PutSecretValueInput, authorize: AuthorizeSecret): Promise<Entry> {
    const record = await this.existing(accountId, input.SecretId, authorize);
    const value = this.seal(input);
    if (!value) throw invalid('You must provide either SecretString or SecretBinary.');
    if (record.purgeAtMs !== null) throw markedForDeletion();
    const versionId = input.ClientRequestToken ?? randomUUID();
    const now = this.now();
    const outcome = await this.store.putVersion(record.id, { versionId, sealed: value.sealed, isBinary: value.isBinary, stages: input.VersionStages ?? [AWSCURRENT], createdAtMs: now }, now);
    const version = this.versionOutcome(outcome, value);
    return { ARN: record.arn, Name: record.name, VersionId: version.versionId, VersionStages: version.stages };
  }

  async updateSecret(accountId: string, input: UpdateSecretInput, authorize: AuthorizeSecret): Promise<Entry> {
    const record = await this.existing(accountId, input.SecretId, authorize);
    const value = this.seal(input);
    if (record.purgeAtMs !== null) throw markedForDeletion();
    const now = this.now();
    if (input.Description !== undefined || input.KmsKeyId !== undefined) {
      const patch = { ...(input.Description !== undefined ? { description: input.Description } : {}), ...(input.KmsKeyId !== undefined ? { kmsKeyId: input.KmsKeyId } : {}) };
      const updated = await this.store.updateSecret(record.id, patch, now);
      if (updated === 'missing') throw notFound();
      if (updated === 'deleted') throw markedForDeletion();
    }
    if (!value) return { ARN: record.arn, Name: record.name };
    const versionId = input.ClientRequestToken ?? randomUUID();
    const outcome = await this.store.putVersion(record.id, { versionId, sealed: value.sealed, isBinary: value.isBinary, stages: [AWSCURRENT], createdAtMs: now }, now);
    return { ARN: record.arn, Name: record.name, VersionId: this.versionOutcome(outcome, value).versionId };
  }

  private entry(record: SecretRecord): Entry {
    return {
      ARN: record.arn,
      Name: record.name,
      ...(record.description !== null ? { Description: record.description } : {}),
      ...(record.kmsKeyId !== null ? { KmsKeyId: record.kmsKeyId } : {}),
      LastChangedDate: new Date(record.lastChangedAtMs),
      ...(record.lastAccessedAtMs !== null ? { LastAccessedDate: new Date(record.lastAccessedAtMs) } : {}),
      ...(record.deletedAtMs !== null ? { DeletedDate: new Date(record.deletedAtMs) } : {}),
      ...(record.tags.length > 0 ? { Tags: record.tags } : {}),
      CreatedDate: new Date(record.createdAtMs),
    };
  }

  async describeSecret(accountId: string, input: { SecretId: string }, authorize: AuthorizeSecret): Promise<Entry> {
    const record = await this.existing(accountId, input.SecretId, authorize);
    const stages = (await this.store.versionStages([record.id])).get(record.id) ?? {};
    return { ...this.entry(record), VersionIdsToStages: stages };
  }

  /**
   * ListSecrets, in name order. Filters as AWS has them: values of one filter are alternatives,
   * filters must all match; `name`, `tag-key` and `tag-value` are case-sensitive prefixes,
   * `description` a case-insensitive prefix, `all` words found in any of those; a value starting
   * with `!` excludes what it matches. The caller authorizes the call itself (it has no resource).
   */
  async listSecrets(accountId: string, input: ListSecretsInput): Promise<Entry> {
    const limit = input.MaxResults ?? 100;
    let after = input.NextToken === undefined ? undefined : afterToken(input.NextToken);
    const filters = (input.Filters ?? []).map(compileFilter);
    const onlyName = input.Filters?.length === 1 && input.Filters[0]!.Key === 'name' && input.Filters[0]!.Values?.length === 1 ? input.Filters[0]!.Values[0]! : undefined;
    const namePrefix = onlyName !== undefined && !onlyName.startsWith('!') ? onlyName : undefined;
    const now = this.now();
    await this.store.purgeDue(accountId, now);
    const found: SecretRecord[] = [];
    for (;;) {
      const batch = await this.store.listSecrets(accountId, { limit: LIST_BATCH, afterName: after, namePrefix, includePlannedDeletion: input.IncludePlannedDeletion === true });
      for (const record of batch) {
        if (record.purgeAtMs !== null && record.purgeAtMs <= now) continue;
        if (filters.every((matches) => matches(record))) found.push(record);
        if (found.length > limit) break;
      }
      if (found.length > limit || batch.length < LIST_BATCH) break;
      after = batch[batch.length - 1]!.name;
    }
    const page = found.slice(0, limit);
    const stages = await this.store.versionStages(page.map((r) => r.id));
    return {
      SecretList: page.map((r) => ({ ...this.entry(r), SecretVersionsToStages: stages.get(r.id) ?? {} })),
      ...(found.length > limit ? { NextToken: tokenAfter(page[page.length - 1]!.name) } : {}),
    };
  }

  async deleteSecret(accountId: string, input: DeleteSecretInput, authorize: AuthorizeSecret): Promise<Entry> {
    const isForced = input.ForceDeleteWithoutRecovery === true;
    if (isForced && input.RecoveryWindowInDays !== undefined) {
      throw invalid("You can't use ForceDeleteWithoutRecovery in conjunction with RecoveryWindowInDays.");
    }
    const days = input.RecoveryWindowInDays ?? 30;
    if (!isForced && (days < 7 || days > 30)) throw invalid('The RecoveryWindowInDays value must be between 7 and 30 days (inclusive).');
    const record = await this.existing(accountId, input.SecretId, authorize);
    const now = this.now();
    if (isForced) {
      // Also for a secret already scheduled: the way to free its name at once.
      await this.store.deleteSecret(record.id);
      return { ARN: record.arn, Name: record.name, DeletionDate: new Date(now) };
    }
    const alreadyScheduled = () => new SecretsManagerError('InvalidRequestException', "You can't perform this operation on the secret because it was already scheduled for deletion.");
    if (record.purgeAtMs !== null) throw alreadyScheduled();
    const purgeAtMs = now + days * DAY_MS;
    const outcome = await this.store.scheduleDeletion(record.id, now, purgeAtMs);
    if (outcome === 'missing') throw notFound();
    if (outcome === 'deleted') throw alreadyScheduled();
    return { ARN: record.arn, Name: record.name, DeletionDate: new Date(purgeAtMs) };
  }

  async restoreSecret(accountId: string, input: { SecretId: string }, authorize: AuthorizeSecret): Promise<Entry> {
    const record = await this.existing(accountId, input.SecretId, authorize);
    if (!(await this.store.restore(record.id, this.now()))) throw notFound();
    return { ARN: record.arn, Name: record.name };
  }

  /**
   * The current (AWSCURRENT) value of a secret, for Berth's own use (the pull-through cache reads
   * upstream credentials as the ECR service would): no IAM check here. Throws SecretNotFound.
   */
  async readValue(accountId: string, secretIdOrArn: string): Promise<SecretValue> {
    let located: Located;
    try {
      located = await this.locate(accountId, secretIdOrArn);
    } catch (err) {
      if (err instanceof SecretsManagerError) throw new SecretNotFound(secretIdOrArn, 'missing', { cause: err });
      throw err;
    }
    const { record } = located;
    if (!record) throw new SecretNotFound(secretIdOrArn, 'missing');
    if (record.purgeAtMs !== null) throw new SecretNotFound(secretIdOrArn, 'deleted');
    const version = await this.store.getVersion(record.id, { stage: AWSCURRENT });
    if (!version) throw new SecretNotFound(secretIdOrArn, 'missing');
    const plain = this.unseal(version);
    if (plain === undefined) throw new SecretNotFound(secretIdOrArn, 'undecryptable');
    await this.touch(record);
    return version.isBinary
      ? { arn: record.arn, name: record.name, secretBinary: Buffer.from(plain, 'base64') }
      : { arn: record.arn, name: record.name, secretString: plain };
  }
}

/** ListSecrets' NextToken is opaque: this one carries the last name returned. */
function tokenAfter(name: string): string {
  return Buffer.from(JSON.stringify({ v: 1, after: name })).toString('base64url');
}

function afterToken(token: string): string {
  try {
    const parsed = JSON.parse(Buffer.from(token, 'base64url').toString('utf8')) as { v?: unknown; after?: unknown };
    if (parsed.v === 1 && typeof parsed.after === 'string') return parsed.after;
  } catch {
    // fall through
  }
  throw new SecretsManagerError('InvalidNextTokenException', 'The NextToken value is invalid.');
}

/** One ListSecrets filter as a predicate. */
function compileFilter(filter: { Key?: string; Values?: string[] }): (record: SecretRecord) => boolean {
  const key = filter.Key;
  const values = filter.Values;
  if (key === undefined || values === undefined || values.length === 0) throw invalid('A filter needs a Key and at least one value in Values.');
  const fields = (record: SecretRecord): string[] => {
    switch (key) {
      case 'name':
        return [record.name];
      case 'description':
        return record.description === null ? [] : [record.description];
      case 'tag-key':
        return record.tags.map((t) => t.Key);
      case 'tag-value':
        return record.tags.map((t) => t.Value);
      case 'all':
        return [record.name, record.description ?? '', ...record.tags.flatMap((t) => [t.Key, t.Value])];
      default:
        // primary-region and owning-service: no secret here is replicated or owned by a service.
        return [];
    }
  };
  const matchOne = (value: string, record: SecretRecord): boolean => {
    if (key === 'all') {
      const words = value.toLowerCase().split(/\s+/u).filter((w) => w.length > 0);
      const haystack = fields(record).map((f) => f.toLowerCase());
      return words.every((w) => haystack.some((f) => f.includes(w)));
    }
    if (key === 'description') return fields(record).some((f) => f.toLowerCase().startsWith(value.toLowerCase()));
    return fields(record).some((f) => f.startsWith(value));
  };
  const wanted = values.filter((v) => !v.startsWith('!'));
  const excluded = values.filter((v) => v.startsWith('!')).map((v) => v.slice(1));
  return (record) => (wanted.length === 0 || wanted.some((v) => matchOne(v, record))) && !excluded.some((v) => matchOne(v, record));
}
