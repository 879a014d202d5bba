import ipaddr from 'ipaddr.js';
import type { BlobStore } from '../store/blob/blob-store.ts';
import type { Digest } from '../digest/digest.ts';

/** Which clients are sent to the blob store itself: `blobs.redirect` (docs/configuration.md). */
export type RedirectPolicy = 'always' | 'never' | readonly string[];

type Network = [ReturnType<typeof ipaddr.parse>, number];

/**
 * Decides whether a blob download is answered by a redirect to a short-lived URL of the blob
 * store (a presigned S3 GET) or proxied through Berth, and makes the URL. Redirects offload the
 * bytes to the object store, as ECR and Distribution do; proxying serves clients that cannot
 * reach the store. A store that cannot presign (the filesystem) is always proxied.
 */
export class BlobRedirects {
  private readonly blobs: BlobStore;
  private readonly policy: 'always' | 'never' | Network[];
  private readonly ttlSeconds: number;

  constructor(blobs: BlobStore, policy: RedirectPolicy, ttlSeconds: number) {
    this.blobs = blobs;
    this.ttlSeconds = ttlSeconds;
    this.policy = typeof policy === 'string' ? policy : policy.map((n) => (n.includes('/') ? ipaddr.parseCIDR(n) : single(n)));
  }

  /** Whether a client at `clientIp` gets redirects at all. */
  appliesTo(clientIp: string): boolean {
    if (!this.blobs.presign || this.policy === 'never') return false;
    if (this.policy === 'always') return true;
    const address = normalise(clientIp);
    if (!address) return false;
    return this.policy.some(([net, bits]) => net.kind() === address.kind() && address.match(net, bits));
  }

  /** A presigned URL of the blob for this client, or undefined when it is to be proxied. */
  async urlFor(digest: Digest, clientIp: string): Promise<string | undefined> {
    if (!this.appliesTo(clientIp)) return undefined;
    return this.blobs.presign!(digest, this.ttlSeconds);
  }
}

function single(address: string): Network {
  const parsed = ipaddr.parse(address);
  return [parsed, parsed.kind() === 'ipv4' ? 32 : 128];
}

/** An IPv4-mapped IPv6 address (`::ffff:10.0.0.1`, as Node reports IPv4 peers on a dual-stack socket) as IPv4. */
function normalise(ip: string): ReturnType<typeof ipaddr.parse> | undefined {
  if (!ipaddr.isValid(ip)) return undefined;
  const parsed = ipaddr.parse(ip);
  return parsed.kind() === 'ipv6' && (parsed as ipaddr.IPv6).isIPv4MappedAddress() ? (parsed as ipaddr.IPv6).toIPv4Address() : parsed;
}
