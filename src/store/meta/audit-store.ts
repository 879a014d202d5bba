/**
 * The audit trail in the metadata store: one record per authorization decision (docs/security.md,
 * "Audit log"), appended in batches by src/audit/audit-log.ts, exported oldest first by `berth
 * audit` and looked up newest first by CloudTrail's LookupEvents (src/control/cloudtrail-actions.ts).
 *
 * Each record is stored with the keys LookupEvents finds it by (user name, event name and source,
 * resource name and type, read-only), derived from the record by `auditLookupKeys` when it is
 * appended: the keys are columns with indexes, so that a filtered page is an index range however
 * many records the account has.
 */

/** One authorization decision, as the audit log records it. */
export interface AuditEvent {
  atMs: number;
  requestId: string;
  plane: string;
  accountId: string | null;
  principal: string | null;
  accessKeyId: string | null;
  action: string;
  resource: string | null;
  /** 'allow', 'deny' (explicit), 'implicit-deny' or 'unauthenticated' */
  decision: string;
  /** The policy and statement that decided, e.g. `repository policy of app#AllowPull`. */
  policy: string | null;
  sourceIp: string;
  userAgent: string | null;
  errorCode: string | null;
}

export interface StoredAuditEvent extends AuditEvent {
  id: number;
}

/** What a record is found by: CloudTrail's lookup attributes, derived from the record. */
export interface AuditLookupKeys {
  /** The operation without its service prefix, as CloudTrail's eventName (`PutImage`). */
  eventName: string;
  /** The AWS service, as CloudTrail's eventSource (`ecr.amazonaws.com`). */
  eventSource: string;
  /**
   * The name CloudTrail shows as the user: an IAM user's name, a role session's name, `root`, or
   * the name of a Berth service that acts by itself (`berth:lifecycle`); null when no one
   * authenticated.
   */
  userName: string | null;
  /** The resource's CloudTrail type (`AWS::ECR::Repository`, `AWS::IAM::User`, ...), null when unknown or none. */
  resourceType: string | null;
  /** A repository's or an IAM entity's name, else the resource's ARN; null for account-level actions (`*`). */
  resourceName: string | null;
  readOnly: boolean;
}

/** Service prefixes of IAM actions that name an AWS service: `ecr:PutImage` is ecr.amazonaws.com's PutImage. */
const AWS_SERVICES = new Set(['ecr', 'iam', 'sts', 'secretsmanager', 'cloudtrail', 'signin']);
/** The service of a record whose action names none (refused credentials, `registry:Ping`), by the plane that recorded it. */
const PLANE_SERVICES: Record<string, string> = {
  oci: 'ecr',
  ecr: 'ecr',
  lifecycle: 'ecr',
  replication: 'ecr',
  iam: 'iam',
  sts: 'sts',
  secretsmanager: 'secretsmanager',
  cloudtrail: 'cloudtrail',
  console: 'signin',
};
/** Operations that change nothing, as CloudTrail marks them readOnly (AssumeRole and GetSessionToken included). */
const READ_ONLY = /^(?:(?:Get|List|Describe|BatchGet|BatchCheck|Lookup)[A-Z]|(?:AssumeRole|Ping)$|(?:GET|HEAD) )/u;

const ARN = /^arn:aws[a-z-]*:([a-z0-9-]+):([a-z0-9-]*):(\d{12})?:(.+)$/u;

/** An ARN's service, account and resource part; undefined when `text` is no ARN. */
export function parseArn(text: string): { service: string; accountId: string; resource: string } | undefined {
  const m = ARN.exec(text);
  return m ? { service: m[1]!, accountId: m[3] ?? '', resource: m[4]! } : undefined;
}

const IAM_TYPES: Record<string, string> = { user: 'AWS::IAM::User', role: 'AWS::IAM::Role', group: 'AWS::IAM::Group' };

/**
 * A resource's CloudTrail type and name, from the resource a record names: a repository ARN (with
 * `@DIGEST` for an image a lifecycle policy expired) gives the repository's name, an IAM user,
 * group or role ARN the entity's name; any other ARN is its own name.
 */
export function auditResourceOf(resource: string | null): { type: string | null; name: string | null } {
  if (resource === null || resource === '*') return { type: null, name: null };
  const arn = parseArn(resource);
  if (!arn) return { type: null, name: resource };
  if (arn.service === 'ecr' && arn.resource.startsWith('repository/')) {
    const name = arn.resource.slice('repository/'.length);
    // Repository names hold no `@`: what follows it is an image digest.
    const at = name.indexOf('@');
    return { type: 'AWS::ECR::Repository', name: at >= 0 ? name.slice(0, at) : name };
  }
  if (arn.service === 'iam') {
    const kind = arn.resource.split('/', 1)[0]!;
    if (IAM_TYPES[kind]) return { type: IAM_TYPES[kind], name: arn.resource.slice(arn.resource.lastIndexOf('/') + 1) };
    if (kind === 'policy') return { type: 'AWS::IAM::Policy', name: resource };
  }
  if (arn.service === 'secretsmanager' && arn.resource.startsWith('secret:')) return { type: 'AWS::SecretsManager::Secret', name: resource };
  return { type: null, name: resource };
}

/** The name CloudTrail shows for a principal ARN (see AuditLookupKeys.userName). */
export function auditUserNameOf(principal: string | null): string | null {
  if (principal === null) return null;
  const arn = parseArn(principal);
  if (!arn || (arn.service !== 'iam' && arn.service !== 'sts')) return principal;
  if (arn.resource === 'root') return 'root';
  // user/PATH/NAME, assumed-role/ROLE/SESSION, federated-user/NAME: the last part.
  return arn.resource.slice(arn.resource.lastIndexOf('/') + 1);
}

/** The keys a record is stored and found with. Pure: the same record always gives the same keys. */
export function auditLookupKeys(e: Pick<AuditEvent, 'plane' | 'action' | 'principal' | 'resource'>): AuditLookupKeys {
  const prefix = /^([a-z][a-z0-9-]*):(?=\S)/u.exec(e.action)?.[1];
  const eventName = prefix === undefined ? e.action : e.action.slice(prefix.length + 1);
  const service = prefix !== undefined && AWS_SERVICES.has(prefix) ? prefix : (PLANE_SERVICES[e.plane] ?? e.plane);
  const resource = auditResourceOf(e.resource);
  return {
    eventName,
    eventSource: `${service}.amazonaws.com`,
    userName: auditUserNameOf(e.principal),
    resourceType: resource.type,
    resourceName: resource.name,
    readOnly: READ_ONLY.test(eventName),
  };
}

/**
 * A lookup: the records of one account that match every key given, newest first (by time, then
 * by id: records of one instant in the reverse of the order they were written).
 */
export interface AuditLookup {
  /** The account the records are filed under (the resource owner's, as CloudTrail's recipient account). */
  accountId: string;
  eventId?: number | undefined;
  eventName?: string | undefined;
  eventSource?: string | undefined;
  userName?: string | undefined;
  resourceName?: string | undefined;
  resourceType?: string | undefined;
  accessKeyId?: string | undefined;
  readOnly?: boolean | undefined;
  /** Only records at or after this time. */
  startMs?: number | undefined;
  /** Only records at or before this time. */
  endMs?: number | undefined;
  /** Only records after this one in the lookup's order (older, or as old with a smaller id): the previous page's last. */
  after?: { atMs: number; id: number } | undefined;
  limit: number;
}

export interface AuditListFilter {
  /** Only records with a larger id. */
  afterId?: number | undefined;
  /** Only records at or after this time. */
  sinceMs?: number | undefined;
  /** Only records before this time. */
  untilMs?: number | undefined;
  accountId?: string | undefined;
  limit: number;
}

export interface AuditStore {
  /**
   * Appends the records with their lookup keys, in the caller's transaction if there is one (the
   * audit log writes each batch in one, for one commit). Ids increase in the order given.
   */
  append(events: AuditEvent[]): Promise<void>;
  /** Oldest first, by id (the order records were written); for export (`berth audit`). */
  list(filter: AuditListFilter): Promise<StoredAuditEvent[]>;
  /**
   * The records matching every key given (see AuditLookup), newest first, at most `limit`. A
   * page's last record, as `after`, gives the next page: each record is on exactly one page, and
   * records written meanwhile with a later time are not on the later pages.
   */
  lookup(query: AuditLookup): Promise<StoredAuditEvent[]>;
}
