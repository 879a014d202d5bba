import { auditLookupKeys, auditResourceOf, parseArn, type StoredAuditEvent } from '../store/meta/audit-store.ts';

// What LookupEvents' handler needs to turn a ResourceName given as an ARN into the records' keys.
export { auditResourceOf, parseArn };
export type { AuditLookup } from '../store/meta/audit-store.ts';

/**
 * An audit record as CloudTrail writes one (CloudTrail's "record contents": eventVersion 1.08),
 * with Berth's own fields after CloudTrail's. The one shape of the audit log: `berth audit`
 * prints it as JSON lines, and LookupEvents returns it as each event's CloudTrailEvent.
 */
export interface CloudTrailRecord {
  eventVersion: '1.08';
  userIdentity: CloudTrailUserIdentity;
  eventTime: string;
  eventSource: string;
  eventName: string;
  awsRegion: string;
  sourceIPAddress: string;
  userAgent: string | null;
  /** Only for a request refused (AccessDenied, or the credentials' error, e.g. InvalidClientTokenId). */
  errorCode?: string;
  requestID: string;
  /** The record's id, a decimal number increasing in the order records were written. */
  eventID: string;
  readOnly: boolean;
  /** What the decision was about; empty for account-level actions (IAM resource `*`) and refused credentials. */
  resources: { ARN: string; accountId?: string; type?: string }[];
  eventType: 'AwsApiCall' | 'AwsConsoleSignIn';
  managementEvent: true;
  /** The account the record is filed under: the resource owner's (null when a SigV4 check failed). */
  recipientAccountId: string | null;
  eventCategory: 'Management';
  // Berth's:
  /** `allow`, `deny` (an explicit deny), `implicit-deny` or `unauthenticated`. */
  decision: string;
  /** The policy and statement that decided, e.g. `arn:aws:iam::111122223333:policy/ci-push#PushAndPullApp`. */
  decidedBy: string | null;
  /** Where the request came in: `oci` (the data plane), `ecr`, `iam`, `sts`, `secretsmanager`, `cloudtrail`, `console`, `lifecycle`, ... */
  plane: string;
}

export interface CloudTrailUserIdentity {
  /** IAMUser, AssumedRole, Root; AWSService for Berth acting by itself (lifecycle policies); Unknown when no one authenticated. */
  type: 'IAMUser' | 'AssumedRole' | 'Root' | 'AWSService' | 'Unknown';
  arn?: string;
  accountId?: string;
  accessKeyId?: string;
  userName?: string;
  invokedBy?: string;
  sessionContext?: { sessionIssuer: { type: 'Role'; accountId: string; userName: string } };
}

/** One event of LookupEvents' output (CloudTrail's `Event` shape). */
export interface LookupEvent {
  EventId: string;
  EventName: string;
  ReadOnly: 'true' | 'false';
  AccessKeyId?: string;
  EventTime: Date;
  EventSource: string;
  Username?: string;
  Resources: { ResourceType?: string; ResourceName: string }[];
  CloudTrailEvent: string;
}

function userIdentityOf(e: StoredAuditEvent): CloudTrailUserIdentity {
  const key = e.accessKeyId !== null ? { accessKeyId: e.accessKeyId } : {};
  if (e.principal === null) return { type: 'Unknown', ...key };
  const arn = parseArn(e.principal);
  // Not an ARN: Berth itself (`berth:lifecycle`), as AWS names its services.
  if (!arn) return { type: 'AWSService', invokedBy: e.principal };
  const base = { arn: e.principal, accountId: arn.accountId, ...key };
  if (arn.resource === 'root') return { type: 'Root', ...base };
  if (arn.service === 'iam' && arn.resource.startsWith('user/')) return { type: 'IAMUser', ...base, userName: arn.resource.slice(arn.resource.lastIndexOf('/') + 1) };
  if (arn.service === 'sts' && arn.resource.startsWith('assumed-role/')) {
    const role = arn.resource.split('/')[1] ?? '';
    return { type: 'AssumedRole', ...base, sessionContext: { sessionIssuer: { type: 'Role', accountId: arn.accountId, userName: role } } };
  }
  return { type: 'Unknown', ...base };
}

/** The record of an audit event, in the deployment's region. */
export function cloudTrailRecord(e: StoredAuditEvent, region: string): CloudTrailRecord {
  const keys = auditLookupKeys(e);
  const resource = e.resource !== null && e.resource !== '*' ? e.resource : undefined;
  const arn = resource === undefined ? undefined : parseArn(resource);
  const type = resource === undefined ? null : auditResourceOf(resource).type;
  const refused = e.decision === 'deny' || e.decision === 'implicit-deny';
  const errorCode = e.errorCode ?? (refused ? 'AccessDenied' : undefined);
  return {
    eventVersion: '1.08',
    userIdentity: userIdentityOf(e),
    eventTime: new Date(e.atMs).toISOString(),
    eventSource: keys.eventSource,
    eventName: keys.eventName,
    awsRegion: region,
    sourceIPAddress: e.sourceIp,
    userAgent: e.userAgent,
    ...(errorCode !== undefined ? { errorCode } : {}),
    requestID: e.requestId,
    eventID: String(e.id),
    readOnly: keys.readOnly,
    resources: resource === undefined ? [] : [{ ARN: resource, ...(arn?.accountId ? { accountId: arn.accountId } : {}), ...(type !== null ? { type } : {}) }],
    eventType: keys.eventSource === 'signin.amazonaws.com' ? 'AwsConsoleSignIn' : 'AwsApiCall',
    managementEvent: true,
    recipientAccountId: e.accountId,
    eventCategory: 'Management',
    decision: e.decision,
    decidedBy: e.policy,
    plane: e.plane,
  };
}

/** The event LookupEvents returns for an audit record, its CloudTrailEvent the record as `berth audit` prints it. */
export function lookupEventOf(e: StoredAuditEvent, region: string): LookupEvent {
  const keys = auditLookupKeys(e);
  return {
    EventId: String(e.id),
    EventName: keys.eventName,
    ReadOnly: keys.readOnly ? 'true' : 'false',
    ...(e.accessKeyId !== null ? { AccessKeyId: e.accessKeyId } : {}),
    EventTime: new Date(e.atMs),
    EventSource: keys.eventSource,
    ...(keys.userName !== null ? { Username: keys.userName } : {}),
    Resources: keys.resourceName === null ? [] : [{ ...(keys.resourceType !== null ? { ResourceType: keys.resourceType } : {}), ResourceName: keys.resourceName }],
    CloudTrailEvent: JSON.stringify(cloudTrailRecord(e, region)),
  };
}
