import { OciClient, OciError, type OciCredentials } from '../oci-client/client.ts';
import type { CacheRule } from '../store/meta/cache-store.ts';
import { parseUpstreamUrl } from './rules.ts';

/** Reads a Secrets Manager secret as ECR's pull-through cache does: as the registry, without the puller's permissions. */
export interface SecretReader {
  readValue(accountId: string, secretId: string): Promise<{ secretString?: string | undefined; secretBinary?: Buffer | undefined }>;
}

/** Why the credentials of a rule cannot be used; ECR's exception names. */
export class CredentialsError extends Error {
  readonly code: 'SecretNotFoundException' | 'UnableToAccessSecretException' | 'UnableToDecryptSecretValueException';
  constructor(code: CredentialsError['code'], message: string) {
    super(message);
    this.code = code;
  }
}

export interface UpstreamsOptions {
  secrets: SecretReader;
  /** Extra CA certificates (PEM) trusted for HTTPS upstreams, besides the system's. */
  ca?: string | undefined;
  timeoutMs: number;
  userAgent: string;
  /** How long a client (and the secret it was made with) is reused; a refused credential drops it at once. */
  reuseMs?: number;
}

/**
 * The clients the cache pulls with, one per rule, made with the rule's credentials: anonymous
 * without `credentialArn`; Basic (`username` and `accessToken` or `password`, as ECR's secrets
 * hold them) at a registry that asks for Basic, or exchanged at its token realm (the Docker
 * token flow); at an `ecr` upstream (another Berth, or ECR), an access key (`accessKeyId`,
 * `secretAccessKey`, optional `region`) that gets an ECR authorization token with SigV4, after
 * assuming `customRoleArn` there when the rule names one.
 */
export class Upstreams {
  private readonly options: UpstreamsOptions;
  private readonly clients = new Map<string, { client: Promise<OciClient>; madeAtMs: number }>();

  constructor(options: UpstreamsOptions) {
    this.options = options;
  }

  private key(rule: CacheRule): string {
    return `${rule.accountId}\n${rule.ecrRepositoryPrefix}\n${rule.updatedAtMs}`;
  }

  /** The rule's client, made anew once `reuseMs` has passed (a secret changed with PutSecretValue applies then). */
  client(rule: CacheRule): Promise<OciClient> {
    const key = this.key(rule);
    const now = Date.now();
    const found = this.clients.get(key);
    if (found && now - found.madeAtMs < (this.options.reuseMs ?? 5 * 60_000)) return found.client;
    if (found) void found.client.then((c) => c.close(), () => {});
    const client = this.make(rule);
    this.clients.set(key, { client, madeAtMs: now });
    // A failure to make it (the secret is missing) is not remembered.
    client.catch(() => {
      if (this.clients.get(key)?.client === client) this.clients.delete(key);
    });
    return client;
  }

  /** Drops the rule's client, so that the next pull reads its secret again (after the upstream refused it). */
  forget(rule: CacheRule): void {
    const key = this.key(rule);
    const found = this.clients.get(key);
    if (!found) return;
    this.clients.delete(key);
    void found.client.then((c) => c.close(), () => {});
  }

  /** A client made now, not shared (ValidatePullThroughCacheRule). Close it after use. */
  fresh(rule: CacheRule): Promise<OciClient> {
    return this.make(rule);
  }

  close(): void {
    for (const { client } of this.clients.values()) void client.then((c) => c.close(), () => {});
    this.clients.clear();
  }

  private async make(rule: CacheRule): Promise<OciClient> {
    const endpoint = parseUpstreamUrl(rule.upstreamRegistryUrl);
    const credentials = await this.credentials(rule, endpoint.host);
    return new OciClient({
      endpoint: endpoint.origin,
      credentials,
      ...(this.options.ca ? { ca: this.options.ca } : {}),
      timeoutMs: this.options.timeoutMs,
      userAgent: this.options.userAgent,
    });
  }

  private async credentials(rule: CacheRule, host: string): Promise<OciCredentials> {
    if (!rule.credentialArn) {
      if (rule.upstreamRegistry === 'ecr') {
        throw new CredentialsError('UnableToAccessSecretException', `The rule for ${rule.ecrRepositoryPrefix} has an ECR upstream but no credentialArn: Berth needs an access key for ${host} (a secret with accessKeyId and secretAccessKey).`);
      }
      return { kind: 'anonymous' };
    }
    let value: { secretString?: string | undefined; secretBinary?: Buffer | undefined };
    try {
      value = await this.options.secrets.readValue(rule.accountId, rule.credentialArn);
    } catch (err) {
      const reason = (err as { reason?: string }).reason;
      if (reason === 'undecryptable') throw new CredentialsError('UnableToDecryptSecretValueException', `The secret ${rule.credentialArn} cannot be decrypted with this registry's key.`);
      if (reason === 'missing' || reason === 'deleted') {
        throw new CredentialsError('SecretNotFoundException', `The secret ${rule.credentialArn} ${reason === 'deleted' ? 'is scheduled for deletion' : 'does not exist'} in account ${rule.accountId}.`);
      }
      throw err;
    }
    const text = value.secretString ?? value.secretBinary?.toString('utf8') ?? '';
    let fields: Record<string, unknown>;
    try {
      fields = JSON.parse(text) as Record<string, unknown>;
      if (typeof fields !== 'object' || fields === null || Array.isArray(fields)) throw new Error('not an object');
    } catch {
      throw new CredentialsError('UnableToAccessSecretException', `The secret ${rule.credentialArn} must hold a JSON object such as {"username":"...","accessToken":"..."}.`);
    }
    const str = (name: string): string | undefined => (typeof fields[name] === 'string' && fields[name] !== '' ? (fields[name] as string) : undefined);
    if (rule.upstreamRegistry === 'ecr') {
      const accessKeyId = str('accessKeyId');
      const secretAccessKey = str('secretAccessKey');
      if (!accessKeyId || !secretAccessKey) {
        throw new CredentialsError('UnableToAccessSecretException', `The secret ${rule.credentialArn} of an ECR upstream must hold {"accessKeyId":"...","secretAccessKey":"..."} (and optionally "region").`);
      }
      const region = str('region') ?? /\.dkr\.ecr\.([a-z0-9-]+)\.amazonaws\.com/.exec(host)?.[1] ?? 'us-east-1';
      return {
        kind: 'ecr',
        accessKeyId,
        secretAccessKey,
        region,
        ...(rule.customRoleArn ? { roleArn: rule.customRoleArn, roleSessionName: 'berth-pull-through-cache' } : {}),
      };
    }
    const username = str('username');
    const password = str('accessToken') ?? str('password');
    if (!username || !password) {
      throw new CredentialsError('UnableToAccessSecretException', `The secret ${rule.credentialArn} must hold {"username":"...","accessToken":"..."} (as ECR's pull-through cache secrets do).`);
    }
    return { kind: 'basic', username, password };
  }
}

/** Whether an upstream failure means the rule's credentials are refused (so that its client is made anew). */
export function isCredentialFailure(err: unknown): boolean {
  return err instanceof OciError && (err.status === 401 || err.status === 403);
}
