import type { Readable } from 'node:stream';
import { Agent } from 'node:https';
import {
  DeleteLifecyclePolicyCommand,
  DeleteRepositoryPolicyCommand,
  ECRClient,
  PutImageTagMutabilityCommand,
  PutLifecyclePolicyCommand,
  SetRepositoryPolicyCommand,
} from '@aws-sdk/client-ecr';
import { AssumeRoleCommand, STSClient } from '@aws-sdk/client-sts';
import { NodeHttpHandler } from '@smithy/node-http-handler';
import type { Digest } from '../digest/digest.ts';
import { REPLICATION_HEADER } from '../oci/plane.ts';
import { ReplicationFailure, type CopiedSettings, type Destination } from './destination.ts';
import { OciClient, OciError, type OciCredentials } from '../oci-client/client.ts';
import type { BerthPeer, Peer } from './peers.ts';

/** What the ECR and STS APIs answer for credentials they do not take. */
const AUTHENTICATION_ERRORS = new Set(['UnrecognizedClientException', 'InvalidSignatureException', 'SignatureDoesNotMatch', 'InvalidClientTokenId', 'ExpiredTokenException', 'IncompleteSignatureException']);

/** What the destination answered, as a replication failure: retried, or permanent with its code. */
export function failureOf(err: unknown, what: string): ReplicationFailure {
  if (err instanceof ReplicationFailure) return err;
  if (err instanceof OciError) {
    // No answer at all (a TLS handshake refused, say): retried, so a peer whose certificate is
    // fixed catches up by itself; the error shows in `berth replication status` meanwhile.
    if (err.retryable || err.status === undefined) return new ReplicationFailure(`${what}: ${err.message}`, { retryable: true, cause: err });
    const text = err.message;
    if (err.status === 401 || (err.code !== undefined && AUTHENTICATION_ERRORS.has(err.code))) return new ReplicationFailure(`${what}: the destination refused the credentials: ${text}`, { failureCode: 'AUTHENTICATION_FAILED', retryable: false, cause: err });
    if (err.status === 403 || err.code === 'DENIED') {
      const code = /ecr:CreateRepository/.test(text) ? 'CREATE_REPOSITORY_DENIED' : 'REPLICATE_IMAGE_DENIED';
      return new ReplicationFailure(`${what}: ${text}`, { failureCode: code, retryable: false, cause: err });
    }
    if (err.code === 'NAME_UNKNOWN') return new ReplicationFailure(`${what}: ${text}`, { failureCode: 'REPOSITORY_NOT_FOUND', retryable: false, cause: err });
    return new ReplicationFailure(`${what}: ${text}`, { failureCode: 'DESTINATION_REJECTED', retryable: false, cause: err });
  }
  // Anything else (a socket closed, a DNS failure) may pass.
  return new ReplicationFailure(`${what}: ${(err as Error).message ?? String(err)}`, { retryable: true, cause: err });
}

/**
 * Another region's registry, over HTTP: a Berth peer (its data plane, with its ECR API for
 * settings) or any OCI registry. Blobs the destination holds are not sent again: it is asked
 * first (HEAD), then asked to mount the blob from where this process last put it, and only then
 * sent, in resumable chunks.
 */
export class RemoteDestination implements Destination {
  readonly label: string;
  private readonly peer: Peer;
  private readonly registryId: string;
  private readonly client: OciClient;
  private ecr: ECRClient | undefined;
  /** Where this destination last received each blob (repository name), for mounts. */
  private readonly placed = new Map<string, string>();
  /** Blobs being sent to this destination now, by digest. */
  private readonly sending = new Map<string, Promise<void>>();

  constructor(options: { peer: Peer; registryId: string; source: { account: string; region: string }; chunkBytes: number }) {
    const { peer, registryId } = options;
    this.peer = peer;
    this.registryId = registryId;
    this.label = `${peer.region}/${registryId}`;
    const url = new URL(peer.endpoint);
    const credentials: OciCredentials =
      peer.kind === 'berth'
        ? { kind: 'ecr', accessKeyId: peer.accessKeyId, secretAccessKey: peer.secretAccessKey, region: peer.region, ...(peer.roleArn ? { roleArn: peer.roleArn } : {}), ...(peer.externalId ? { externalId: peer.externalId } : {}) }
        : peer.username !== undefined
          ? { kind: 'basic', username: peer.username, password: peer.password ?? '' }
          : { kind: 'anonymous' };
    this.client = new OciClient({
      endpoint: peer.endpoint,
      credentials,
      // A Berth peer takes the account from the host's first label (ECR's ACCOUNT.dkr.ecr... host names).
      ...(peer.kind === 'berth' ? { hostHeader: `${registryId}.${url.host}`, headers: { [REPLICATION_HEADER]: `account=${options.source.account}; region=${options.source.region}` } } : {}),
      ...(peer.ca ? { ca: peer.ca } : {}),
      chunkBytes: options.chunkBytes,
      userAgent: 'berth-replication',
    });
  }

  repositoryName(source: string): string {
    return this.peer.kind === 'oci' ? `${this.peer.repositoryPrefix}${source}` : source;
  }

  async prepare(): Promise<void> {
    // A Berth peer creates a missing repository on the first write (a REPLICATION template, as
    // ecr:CreateRepository); an OCI registry creates it on push or refuses with NAME_UNKNOWN.
  }

  async manifestDigest(repository: string, reference: string, signal?: AbortSignal): Promise<string | undefined> {
    try {
      return (await this.client.headManifest(repository, reference, signal))?.digest;
    } catch (err) {
      throw failureOf(err, `${this.label}: reading ${repository}:${reference}`);
    }
  }

  async putBlob(repository: string, blob: { digest: Digest; sizeBytes: number }, open: (offset: number) => Promise<Readable>, signal?: AbortSignal): Promise<void> {
    // One transfer of a blob at a time to this destination: copies of images that share a layer
    // wait for the one sending it, then find it there or mount it, rather than all sending it.
    for (let pending = this.sending.get(blob.digest); pending; pending = this.sending.get(blob.digest)) await pending.catch(() => undefined);
    const transfer = this.transfer(repository, blob, open, signal);
    this.sending.set(blob.digest, transfer);
    try {
      await transfer;
    } finally {
      if (this.sending.get(blob.digest) === transfer) this.sending.delete(blob.digest);
    }
  }

  private async transfer(repository: string, blob: { digest: Digest; sizeBytes: number }, open: (offset: number) => Promise<Readable>, signal: AbortSignal | undefined): Promise<void> {
    const what = `${this.label}: sending blob ${blob.digest} to ${repository}`;
    try {
      if (await this.client.hasBlob(repository, blob.digest, signal, blob.sizeBytes)) return this.remember(blob.digest, repository);
      const from = this.placed.get(blob.digest);
      // Berth mounts without `from` too (it finds the blob in the account); others need it.
      if ((from !== undefined && from !== repository) || this.peer.kind === 'berth') {
        if (await this.client.mountBlob(repository, blob.digest, from !== repository ? from : undefined, signal)) return this.remember(blob.digest, repository);
      }
      await this.client.pushBlob(repository, blob.digest, blob.sizeBytes, open, signal);
      this.remember(blob.digest, repository);
    } catch (err) {
      throw failureOf(err, what);
    }
  }

  private remember(digest: string, repository: string): void {
    this.placed.delete(digest);
    this.placed.set(digest, repository);
    // Bounded: the oldest entries go first.
    if (this.placed.size > 100_000) this.placed.delete(this.placed.keys().next().value!);
  }

  async putManifest(repository: string, reference: string, mediaType: string, payload: Uint8Array, signal?: AbortSignal): Promise<void> {
    try {
      await this.client.putManifest(repository, reference, mediaType, payload, signal);
    } catch (err) {
      if (err instanceof OciError && !err.retryable && err.code === 'TAG_INVALID' && !reference.includes(':')) {
        // The tag is valid (the source holds it): Berth and ECR say TAG_INVALID for an immutable tag that names another image.
        throw new ReplicationFailure(`${this.label}: tag ${reference} of ${repository} is immutable there and names another image: ${err.message}`, {
          failureCode: 'TAG_IMMUTABLE_CONFLICT',
          retryable: false,
          cause: err,
        });
      }
      throw failureOf(err, `${this.label}: putting manifest ${repository}:${reference}`);
    }
  }

  /** Closes kept-alive connections. */
  close(): void {
    this.client.close();
    this.ecr?.destroy();
  }

  /** Only for Berth peers with copySettings: through the peer's ECR API. */
  get copySettings(): ((repository: string, settings: CopiedSettings) => Promise<void>) | undefined {
    if (this.peer.kind !== 'berth' || this.peer.copySettings.length === 0) return undefined;
    return (repository, settings) => this.copyBerthSettings(this.peer as BerthPeer, repository, settings);
  }

  private async copyBerthSettings(peer: BerthPeer, repository: string, settings: CopiedSettings): Promise<void> {
    const ecr = await this.ecrClient(peer);
    const base = { registryId: this.registryId, repositoryName: repository };
    const ignoreMissing = (err: unknown) => {
      if ((err as { name?: string }).name === 'RepositoryPolicyNotFoundException' || (err as { name?: string }).name === 'LifecyclePolicyNotFoundException') return;
      throw err;
    };
    try {
      if (peer.copySettings.includes('TAG_MUTABILITY') && settings.tagMutability) {
        const m = settings.tagMutability;
        await ecr.send(
          new PutImageTagMutabilityCommand({
            ...base,
            imageTagMutability: m.imageTagMutability,
            ...(m.imageTagMutabilityExclusionFilters.length > 0 ? { imageTagMutabilityExclusionFilters: m.imageTagMutabilityExclusionFilters } : {}),
          }),
        );
      }
      if (peer.copySettings.includes('REPOSITORY_POLICY') && settings.repositoryPolicy !== undefined) {
        if (settings.repositoryPolicy) await ecr.send(new SetRepositoryPolicyCommand({ ...base, policyText: settings.repositoryPolicy }));
        else await ecr.send(new DeleteRepositoryPolicyCommand(base)).catch(ignoreMissing);
      }
      if (peer.copySettings.includes('LIFECYCLE_POLICY') && settings.lifecyclePolicy !== undefined) {
        if (settings.lifecyclePolicy) await ecr.send(new PutLifecyclePolicyCommand({ ...base, lifecyclePolicyText: settings.lifecyclePolicy }));
        else await ecr.send(new DeleteLifecyclePolicyCommand(base)).catch(ignoreMissing);
      }
    } catch (err) {
      const e = err as { name?: string; message?: string; $metadata?: { httpStatusCode?: number } };
      const status = e.$metadata?.httpStatusCode;
      const retryable = status === undefined || status >= 500 || status === 429;
      throw new ReplicationFailure(`${this.label}: copying the settings of ${repository}: ${e.name ?? 'Error'}: ${e.message ?? ''}`, {
        retryable,
        ...(retryable ? {} : { failureCode: e.name === 'AccessDeniedException' ? 'REPLICATE_IMAGE_DENIED' : 'DESTINATION_REJECTED' }),
        cause: err,
      });
    }
  }

  private async ecrClient(peer: BerthPeer): Promise<ECRClient> {
    if (this.ecr) return this.ecr;
    const requestHandler = peer.ca ? new NodeHttpHandler({ httpsAgent: new Agent({ ca: peer.ca }) }) : undefined;
    const common = { endpoint: peer.endpoint, region: peer.region, ...(requestHandler ? { requestHandler } : {}) };
    const keys = { accessKeyId: peer.accessKeyId, secretAccessKey: peer.secretAccessKey };
    if (!peer.roleArn) {
      this.ecr = new ECRClient({ ...common, credentials: keys });
      return this.ecr;
    }
    const sts = new STSClient({ ...common, credentials: keys });
    const roleArn = peer.roleArn;
    const externalId = peer.externalId;
    // Assumed again shortly before the session runs out.
    let session: { accessKeyId: string; secretAccessKey: string; sessionToken: string; expiration: Date } | undefined;
    this.ecr = new ECRClient({
      ...common,
      credentials: async () => {
        if (!session || session.expiration.getTime() - Date.now() < 5 * 60_000) {
          const out = await sts.send(new AssumeRoleCommand({ RoleArn: roleArn, RoleSessionName: 'berth-replication', ...(externalId ? { ExternalId: externalId } : {}) }));
          const c = out.Credentials!;
          session = { accessKeyId: c.AccessKeyId!, secretAccessKey: c.SecretAccessKey!, sessionToken: c.SessionToken!, expiration: c.Expiration ?? new Date(Date.now() + 3600_000) };
        }
        return session;
      },
    });
    return this.ecr;
  }
}
