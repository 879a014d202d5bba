/**
 * Replication peers (`replication.peers`, docs/replication.md): the other regions a Berth
 * deployment replicates to, each another Berth deployment (`kind: "berth"`, spoken to with its
 * ECR API and data plane, authenticated with an access key or a role assumed with STS) or any
 * OCI registry (`kind: "oci"`: Distribution, Harbor, another vendor; Basic credentials, which the
 * Docker token flow also uses). loadConfig() checks the entries with parsePeers().
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';

/** Repository settings a replication may also copy (opt-in per peer). */
export const COPYABLE_SETTINGS = ['REPOSITORY_POLICY', 'LIFECYCLE_POLICY', 'TAG_MUTABILITY'] as const;
export type CopyableSetting = (typeof COPYABLE_SETTINGS)[number];

export interface BerthPeer {
  kind: 'berth';
  /** The region name rules use as a destination's `region`. */
  region: string;
  /** The peer's base URL (its data plane and ECR API share it). */
  endpoint: string;
  accessKeyId: string;
  secretAccessKey: string;
  /** A role in the destination to assume first (sts:AssumeRole at the peer). */
  roleArn: string | undefined;
  externalId: string | undefined;
  /** Extra CA certificates (PEM) trusted for the peer's TLS. */
  ca: string | undefined;
  copySettings: CopyableSetting[];
}

export interface OciPeer {
  kind: 'oci';
  region: string;
  endpoint: string;
  username: string | undefined;
  password: string | undefined;
  ca: string | undefined;
  /** Prepended to repository names in the destination (e.g. `mirror/`). */
  repositoryPrefix: string;
}

export type Peer = BerthPeer | OciPeer;

export class PeerConfigError extends Error {
  override name = 'PeerConfigError';
}

const FIELDS: Record<Peer['kind'], Set<string>> = {
  berth: new Set(['kind', 'region', 'endpoint', 'accessKeyId', 'secretAccessKey', 'secretAccessKeyFile', 'roleArn', 'externalId', 'caFile', 'copySettings']),
  oci: new Set(['kind', 'region', 'endpoint', 'username', 'password', 'passwordFile', 'caFile', 'repositoryPrefix']),
};

/**
 * Checks the entries and reads their secret and CA files (relative paths against `cwd`). Throws
 * a PeerConfigError naming the entry and the problem. `ownRegion` may not be a peer: the
 * deployment's own region is reached directly (cross-account replication within it).
 */
export function parsePeers(raw: unknown, options: { cwd: string; ownRegion: string }): Peer[] {
  if (!Array.isArray(raw)) throw new PeerConfigError('expected a JSON array of peers');
  const seen = new Set<string>();
  return raw.map((entry: unknown, index): Peer => {
    let where = `[${index}]`;
    const fail = (problem: string): never => {
      throw new PeerConfigError(`${where}: ${problem}`);
    };
    if (entry === null || typeof entry !== 'object' || Array.isArray(entry)) return fail('expected an object');
    const e = entry as Record<string, unknown>;
    const kind = e['kind'] ?? 'berth';
    if (kind !== 'berth' && kind !== 'oci') return fail(`kind: expected "berth" or "oci", got ${JSON.stringify(kind)}`);
    const region = e['region'];
    if (typeof region !== 'string' || !/^[0-9a-z-]{2,25}$/.test(region)) return fail(`region: expected 2 to 25 lower-case letters, digits and hyphens, got ${JSON.stringify(region)}`);
    where = `[${index}] (region ${region})`;
    if (region === options.ownRegion) fail(`region: ${region} is this deployment's own region; replication within it (to another account) needs no peer`);
    if (seen.has(region)) fail('region: another peer has the same region');
    seen.add(region);
    for (const k of Object.keys(e)) if (!FIELDS[kind].has(k)) fail(`unknown field ${JSON.stringify(k)} for a ${kind} peer`);
    const str = (name: string): string | undefined => {
      const v = e[name];
      if (v === undefined) return undefined;
      if (typeof v !== 'string' || v === '') return fail(`${name}: expected a non-empty string`);
      return v;
    };
    const file = (name: string): string | undefined => {
      const f = str(name);
      if (f === undefined) return undefined;
      try {
        return readFileSync(path.resolve(options.cwd, f), 'utf8');
      } catch (err) {
        return fail(`${name}: cannot read ${f}: ${(err as Error).message}`);
      }
    };
    const endpointText = str('endpoint') ?? fail('endpoint: required (the peer\'s base URL, e.g. https://berth.eu-west-1.example.com)');
    let endpoint: URL;
    try {
      endpoint = new URL(endpointText);
    } catch {
      return fail(`endpoint: ${JSON.stringify(endpointText)} is not a URL`);
    }
    if (endpoint.protocol !== 'http:' && endpoint.protocol !== 'https:') fail('endpoint: expected an http or https URL');
    const base = endpoint.origin;
    const ca = file('caFile');
    if (kind === 'berth') {
      const accessKeyId = str('accessKeyId') ?? fail('accessKeyId: required (an access key of the identity Berth acts as at the peer)');
      const secretFromFile = file('secretAccessKeyFile')?.trim();
      const secretAccessKey = str('secretAccessKey') ?? secretFromFile ?? fail('secretAccessKey or secretAccessKeyFile: required');
      const roleArn = str('roleArn');
      if (roleArn !== undefined && !/^arn:aws[a-z-]*:iam::\d{12}:role\/.+$/.test(roleArn)) fail(`roleArn: ${roleArn} is not an IAM role ARN`);
      const copy = e['copySettings'] ?? [];
      if (!Array.isArray(copy) || copy.some((c) => !(COPYABLE_SETTINGS as readonly unknown[]).includes(c))) {
        fail(`copySettings: expected an array of ${COPYABLE_SETTINGS.join(', ')}`);
      }
      return { kind, region, endpoint: base, accessKeyId, secretAccessKey, roleArn, externalId: str('externalId'), ca, copySettings: [...new Set(copy as CopyableSetting[])] };
    }
    const username = str('username');
    const password = str('password') ?? file('passwordFile')?.trim();
    if ((username === undefined) !== (password === undefined)) fail('username and password (or passwordFile) go together');
    const prefix = str('repositoryPrefix') ?? '';
    if (prefix !== '' && !/^[a-z0-9]+(?:[._-][a-z0-9]+)*(?:\/[a-z0-9]+(?:[._-][a-z0-9]+)*)*\/$/.test(prefix)) fail('repositoryPrefix: expected path components ending with /, e.g. "mirror/"');
    return { kind, region, endpoint: base, username, password, ca, repositoryPrefix: prefix };
  });
}
