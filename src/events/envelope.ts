/**
 * The events Berth emits, as EventBridge events in ECR's shapes. Pure builders, no I/O: each takes
 * what happened and returns the event (a plain JSON value) with the repository it belongs to, the
 * key the outbox orders delivery by (a repository's events are delivered in the order they
 * happened; null is the registry's own partition). This comment is the source of docs/events.md.
 *
 * Sources: the ECR User Guide, "Amazon ECR events and EventBridge" (sample events for a completed
 * image push, an image deletion, a replication, a pull through cache action, a scan, and the
 * archive and restore actions); the EventBridge events reference, "Amazon Elastic Container
 * Registry events" (the detail-types ECR sends); ECR events captured from AWS in 2025 and quoted in
 * awslabs/cfn-ecr-aws-soci-index-builder pull request 137 (pushes with their media types and an
 * untagged push); and the ECR User Guide, "Logging Amazon ECR actions with AWS CloudTrail" (what
 * ECR reports only through CloudTrail).
 *
 * ## The envelope
 *
 * Every event has EventBridge's envelope, in this key order:
 *
 * | field         | value                                                                      |
 * |---------------|----------------------------------------------------------------------------|
 * | `version`     | `"0"`                                                                      |
 * | `id`          | a random UUID (version 4), new for each event                              |
 * | `detail-type` | the event's name, from the table below                                     |
 * | `source`      | `"aws.ecr"`, for Berth's own events too (see below)                        |
 * | `account`     | the registry's 12-digit account id                                         |
 * | `time`        | when it happened, ISO 8601 in UTC to the second: `"2019-11-16T01:54:34Z"`  |
 * | `region`      | the region Berth is configured with                                        |
 * | `resources`   | ARNs the event concerns; see each event                                    |
 * | `detail`      | the event's fields, below                                                  |
 *
 * ## Events
 *
 * | detail-type                     | action-type     | when                                                             | resources          |
 * |---------------------------------|-----------------|------------------------------------------------------------------|--------------------|
 * | `ECR Image Action`              | `PUSH`          | a manifest is pushed (PutImage or the OCI API), once per tag     | `[]`               |
 * | `ECR Image Action`              | `DELETE`        | an image or one of its tags is deleted by a client               | `[]`               |
 * | `Berth Image Action`            | `TAG_MOVE`      | a push moves an existing tag from one image to another           | the repository ARN |
 * | `Berth Repository Action`       | `CREATE`        | a repository is created (by a client, a template or a cache)     | the repository ARN |
 * | `Berth Repository Action`       | `DELETE`        | a repository is deleted                                          | the repository ARN |
 * | `Berth Repository Action`       | `POLICY_CHANGE` | a repository's permissions or lifecycle policy is set or deleted | the repository ARN |
 * | `Berth Registry Action`         | `POLICY_CHANGE` | the registry's permissions policy is set or deleted              | `[]`               |
 * | `Berth Lifecycle Policy Action` | `EXPIRE`        | a lifecycle policy run deletes an image, once per image          | the repository ARN |
 * | `ECR Image Scan`                | (none)          | an image scan finishes, complete or failed                       | the repository ARN |
 * | `Berth Image Scan Action`       | `FINDINGS_CHANGE` | a database import re-matched a continuously scanned image and its findings changed | the repository ARN |
 * | `ECR Replication Action`        | `REPLICATE`     | an image (or a tag of it) arrived by replication from another region or account | the repository ARN |
 *
 * Detail fields, all strings unless marked:
 *
 * - `ECR Image Action` (ECR's own shape): `result` (`"SUCCESS"`), `repository-name`,
 *   `image-digest`, `action-type`, `artifact-media-type` (the config media type of an image
 *   manifest, or an index's artifactType; absent when there is none), `image-tag`,
 *   `manifest-media-type` (always on a PUSH; on a DELETE when known).
 *   `image-tag` is the tag pushed or deleted, and `""` when there is none. For a push by digest
 *   ECR sends the empty string rather than leaving the field out, as the captured events show,
 *   so a pattern written for ECR (`"image-tag": [""]`, or a prefix match) behaves the same here;
 *   no sample shows a deletion by digest, and Berth spells it the same way so that one rule
 *   covers both. A push that names several tags sends one event per tag, as ECR does for the
 *   same tags pushed one by one (PutImage takes one tag); a push by digest sends one event.
 * - `Berth Image Action`: `result`, `repository-name`, `image-tag`, `image-digest` (where the tag
 *   points now), `previous-image-digest` (where it pointed before), `action-type`.
 *   ECR reports a moved tag as the PUSH of its new image and says nothing of the old one; Berth
 *   sends that PUSH as well, and this event adds what ECR leaves out, the image that lost the tag.
 * - `Berth Repository Action`: `result`, `repository-name`, `action-type`; for `POLICY_CHANGE`
 *   also `policy-type` (`"REPOSITORY_POLICY"` or `"LIFECYCLE_POLICY"`) and `change-type`
 *   (`"PUT"` when set, `"DELETE"` when deleted). The policy text is not included: read it
 *   through the API, which checks that the reader may.
 * - `Berth Registry Action`: `result`, `action-type`, `policy-type` (`"REGISTRY_POLICY"`),
 *   `change-type`.
 * - `Berth Lifecycle Policy Action`: `result`, `repository-name`, `image-digest`, `image-tags`
 *   (array; empty for an untagged image, as in ECR's `ECR Image Scan`), `rule-priority` (number:
 *   the rule that expired it), `dependent-digests` (array: the child manifests and referrers
 *   deleted with it, in digest order), `action-type`.
 * - `ECR Image Scan` (ECR's own shape, from the User Guide's sample): `scan-status` (`"COMPLETE"`
 *   or `"FAILED"`), `repository-name`, `finding-severity-counts` (object: severity to number,
 *   only the severities found; empty for a failed scan), `image-digest`, `image-tags` (array).
 * - `Berth Image Scan Action`: `result`, `repository-name`, `image-digest`, `image-tags`,
 *   `finding-severity-counts` (after the change), `added` and `fixed` (arrays of
 *   `{"name", "package-name", "package-version"}`: findings the new database added, and those it
 *   no longer reports), `action-type` (`"FINDINGS_CHANGE"`). ECR reports such changes through
 *   Amazon Inspector's own events, which Berth does not imitate.
 * - `ECR Replication Action` (ECR's own shape, sent in the destination registry): `result`,
 *   `repository-name`, `image-digest`, `source-account`, `action-type` (`"REPLICATE"`),
 *   `source-region`, `image-tag` (`""` for an image replicated by digest). A replicated image
 *   sends this event instead of an `ECR Image Action` PUSH, once per tag as pushes do; so the
 *   destination's own replication rules, which follow pushes, never replicate it again
 *   (replication is not transitive, as in ECR), while scan on push scans it.
 *
 * `result` is always `"SUCCESS"`: Berth emits an event once the change is committed, and a failed
 * request changes nothing.
 *
 * ## Why these names
 *
 * Where ECR sends an event for something, Berth sends ECR's event, field for field, so that rules
 * and consumers written for ECR work unchanged. ECR's image actions carry no resources (`[]` in
 * every sample and capture); the repository is in `repository-name`.
 *
 * What ECR reports only through CloudTrail (repository creation and deletion, policy changes,
 * and lifecycle expirations, which ECR records as CloudTrail's `PolicyExecutionEvent`) gets a
 * detail-type starting with `Berth `, so that it can never be mistaken for, or collide with, an
 * event ECR defines, and a rule for `ECR Image Action` sees only what ECR would have sent. Their
 * action-types follow ECR's style (upper case, words joined by `_`, as in
 * `UPDATE_STORAGE_CLASS`). They keep `source: "aws.ecr"`, as ECR's CloudTrail-delivered events do,
 * so a single rule on the source receives everything Berth emits. Lifecycle expirations do not
 * also produce `ECR Image Action` DELETE events: ECR documents no such event for them.
 *
 * Not emitted (yet): ECR's `ECR Scan Resource Change`,
 * `ECR Pull Through Cache Action`, `ECR Referrer Action` and `ECR Artifact Action`, and the
 * `UPDATE_STORAGE_CLASS` image actions of archival; Berth has no counterpart to most of them yet.
 */
import { randomUUID } from 'node:crypto';
import { repositoryArn } from '../iam/ids.ts';

export type DetailType =
  | 'ECR Image Action'
  | 'Berth Image Action'
  | 'Berth Repository Action'
  | 'Berth Registry Action'
  | 'Berth Lifecycle Policy Action'
  | 'ECR Image Scan'
  | 'Berth Image Scan Action'
  | 'ECR Replication Action'
  | 'ECR Pull Through Cache Action';

export interface Envelope<T extends DetailType, D> {
  version: '0';
  id: string;
  'detail-type': T;
  source: 'aws.ecr';
  account: string;
  time: string;
  region: string;
  resources: string[];
  detail: D;
}

export interface ImageActionDetail {
  result: 'SUCCESS';
  'repository-name': string;
  'image-digest': string;
  'action-type': 'PUSH' | 'DELETE';
  'artifact-media-type'?: string;
  'image-tag': string;
  'manifest-media-type'?: string;
}

export interface TagMoveDetail {
  result: 'SUCCESS';
  'repository-name': string;
  'image-tag': string;
  'image-digest': string;
  'previous-image-digest': string;
  'action-type': 'TAG_MOVE';
}

export type RepositoryPolicyType = 'REPOSITORY_POLICY' | 'LIFECYCLE_POLICY';
export type ChangeType = 'PUT' | 'DELETE';

export type RepositoryActionDetail =
  | { result: 'SUCCESS'; 'repository-name': string; 'action-type': 'CREATE' | 'DELETE' }
  | {
      result: 'SUCCESS';
      'repository-name': string;
      'action-type': 'POLICY_CHANGE';
      'policy-type': RepositoryPolicyType;
      'change-type': ChangeType;
    };

export interface RegistryActionDetail {
  result: 'SUCCESS';
  'action-type': 'POLICY_CHANGE';
  'policy-type': 'REGISTRY_POLICY';
  'change-type': ChangeType;
}

export interface LifecycleExpireDetail {
  result: 'SUCCESS';
  'repository-name': string;
  'image-digest': string;
  'image-tags': string[];
  'rule-priority': number;
  'dependent-digests': string[];
  'action-type': 'EXPIRE';
}

export interface ImageScanDetail {
  'scan-status': 'COMPLETE' | 'FAILED';
  'repository-name': string;
  'finding-severity-counts': Record<string, number>;
  'image-digest': string;
  'image-tags': string[];
}

export interface ScanChangeDetail {
  result: 'SUCCESS';
  'repository-name': string;
  'image-digest': string;
  'image-tags': string[];
  'finding-severity-counts': Record<string, number>;
  added: Array<{ name: string; 'package-name': string; 'package-version': string }>;
  fixed: Array<{ name: string; 'package-name': string; 'package-version': string }>;
  'action-type': 'FINDINGS_CHANGE';
}

export interface ReplicationActionDetail {
  result: 'SUCCESS';
  'repository-name': string;
  'image-digest': string;
  'source-account': string;
  'action-type': 'REPLICATE';
  'source-region': string;
  'image-tag': string;
}

export type ReplicationActionEvent = Envelope<'ECR Replication Action', ReplicationActionDetail>;

/** ECR's event for an image a pull-through cache rule brought in from its upstream. */
export interface PullThroughCacheActionDetail {
  'sync-status': 'SUCCESS';
  'ecr-repository-prefix': string;
  'repository-name': string;
  'upstream-registry-url': string;
  'image-tag': string;
  'image-digest': string;
}

export type PullThroughCacheActionEvent = Envelope<'ECR Pull Through Cache Action', PullThroughCacheActionDetail>;
export type ImageScanEvent = Envelope<'ECR Image Scan', ImageScanDetail>;
export type ScanChangeEvent = Envelope<'Berth Image Scan Action', ScanChangeDetail>;
export type ImageActionEvent = Envelope<'ECR Image Action', ImageActionDetail>;
export type TagMoveEvent = Envelope<'Berth Image Action', TagMoveDetail>;
export type RepositoryActionEvent = Envelope<'Berth Repository Action', RepositoryActionDetail>;
export type RegistryActionEvent = Envelope<'Berth Registry Action', RegistryActionDetail>;
export type LifecycleExpireEvent = Envelope<'Berth Lifecycle Policy Action', LifecycleExpireDetail>;

export type BerthEvent =
  | ImageActionEvent
  | TagMoveEvent
  | RepositoryActionEvent
  | RegistryActionEvent
  | LifecycleExpireEvent
  | ImageScanEvent
  | ScanChangeEvent
  | ReplicationActionEvent
  | PullThroughCacheActionEvent;

/** An event and its ordering partition: the repository's name, or null for the registry itself. */
export interface BuiltEvent<E extends BerthEvent = BerthEvent> {
  event: E;
  repository: string | null;
}

/** What every builder needs besides the event's own facts. */
export interface EventContext {
  /** The registry's account id. */
  account: string;
  region: string;
  /** When the change happened, in epoch milliseconds; the event carries it to the second. */
  timeMs: number;
  /** Makes the event id; tests pass a fixed one. Defaults to crypto.randomUUID. */
  newId?: () => string;
}

export interface ImagePushedOptions extends EventContext {
  repositoryName: string;
  imageDigest: string;
  /** The tag the push named; absent for a push by digest. */
  imageTag?: string | undefined;
  manifestMediaType: string;
  /** The config's media type, or an index's artifactType; absent when the manifest has neither. */
  artifactMediaType?: string | undefined;
}

export interface ImageDeletedOptions extends EventContext {
  repositoryName: string;
  imageDigest: string;
  /** The tag deleted; absent for a deletion by digest. */
  imageTag?: string | undefined;
  manifestMediaType?: string | undefined;
  artifactMediaType?: string | undefined;
}

export interface TagMovedOptions extends EventContext {
  repositoryName: string;
  imageTag: string;
  imageDigest: string;
  previousImageDigest: string;
}

export interface RepositoryOptions extends EventContext {
  repositoryName: string;
}

export interface RepositoryPolicyChangedOptions extends RepositoryOptions {
  policyType: RepositoryPolicyType;
  changeType: ChangeType;
}

export interface RegistryPolicyChangedOptions extends EventContext {
  changeType: ChangeType;
}

export interface LifecycleImageExpiredOptions extends RepositoryOptions {
  imageDigest: string;
  imageTags: readonly string[];
  rulePriority: number;
  dependentDigests?: readonly string[] | undefined;
}

/** `ECR Image Action` PUSH: a manifest was pushed. */
export function imagePushed(o: ImagePushedOptions): BuiltEvent<ImageActionEvent> {
  return imageAction(o, 'PUSH');
}

/** `ECR Image Action` DELETE: an image, or one of its tags, was deleted by a client. */
export function imageDeleted(o: ImageDeletedOptions): BuiltEvent<ImageActionEvent> {
  return imageAction(o, 'DELETE');
}

/** `Berth Image Action` TAG_MOVE: a tag now names a different image. */
export function tagMoved(o: TagMovedOptions): BuiltEvent<TagMoveEvent> {
  const detail: TagMoveDetail = {
    result: 'SUCCESS',
    'repository-name': o.repositoryName,
    'image-tag': o.imageTag,
    'image-digest': o.imageDigest,
    'previous-image-digest': o.previousImageDigest,
    'action-type': 'TAG_MOVE',
  };
  return { event: envelope(o, 'Berth Image Action', [arnOf(o)], detail), repository: o.repositoryName };
}

/** `Berth Repository Action` CREATE. */
export function repositoryCreated(o: RepositoryOptions): BuiltEvent<RepositoryActionEvent> {
  return repositoryAction(o, { result: 'SUCCESS', 'repository-name': o.repositoryName, 'action-type': 'CREATE' });
}

/** `Berth Repository Action` DELETE. */
export function repositoryDeleted(o: RepositoryOptions): BuiltEvent<RepositoryActionEvent> {
  return repositoryAction(o, { result: 'SUCCESS', 'repository-name': o.repositoryName, 'action-type': 'DELETE' });
}

/** `Berth Repository Action` POLICY_CHANGE: the repository's permissions or lifecycle policy was set or deleted. */
export function repositoryPolicyChanged(o: RepositoryPolicyChangedOptions): BuiltEvent<RepositoryActionEvent> {
  return repositoryAction(o, {
    result: 'SUCCESS',
    'repository-name': o.repositoryName,
    'action-type': 'POLICY_CHANGE',
    'policy-type': o.policyType,
    'change-type': o.changeType,
  });
}

/** `Berth Registry Action` POLICY_CHANGE: the registry's permissions policy was set or deleted. */
export function registryPolicyChanged(o: RegistryPolicyChangedOptions): BuiltEvent<RegistryActionEvent> {
  const detail: RegistryActionDetail = {
    result: 'SUCCESS',
    'action-type': 'POLICY_CHANGE',
    'policy-type': 'REGISTRY_POLICY',
    'change-type': o.changeType,
  };
  return { event: envelope(o, 'Berth Registry Action', [], detail), repository: null };
}

/** `Berth Lifecycle Policy Action` EXPIRE: a lifecycle run deleted this image (and its dependents). */
export function lifecycleImageExpired(o: LifecycleImageExpiredOptions): BuiltEvent<LifecycleExpireEvent> {
  const detail: LifecycleExpireDetail = {
    result: 'SUCCESS',
    'repository-name': o.repositoryName,
    'image-digest': o.imageDigest,
    'image-tags': [...o.imageTags],
    'rule-priority': o.rulePriority,
    'dependent-digests': [...(o.dependentDigests ?? [])],
    'action-type': 'EXPIRE',
  };
  return { event: envelope(o, 'Berth Lifecycle Policy Action', [arnOf(o)], detail), repository: o.repositoryName };
}

export interface ImageScannedOptions extends RepositoryOptions {
  status: 'COMPLETE' | 'FAILED';
  imageDigest: string;
  imageTags: readonly string[];
  severityCounts: Readonly<Record<string, number>>;
}

/** `ECR Image Scan`: a scan finished. */
export function imageScanned(o: ImageScannedOptions): BuiltEvent<ImageScanEvent> {
  const detail: ImageScanDetail = {
    'scan-status': o.status,
    'repository-name': o.repositoryName,
    'finding-severity-counts': { ...o.severityCounts },
    'image-digest': o.imageDigest,
    'image-tags': [...o.imageTags],
  };
  return { event: envelope(o, 'ECR Image Scan', [arnOf(o)], detail), repository: o.repositoryName };
}

export interface ScanFindingsChangedOptions extends RepositoryOptions {
  imageDigest: string;
  imageTags: readonly string[];
  severityCounts: Readonly<Record<string, number>>;
  added: ScanChangeDetail['added'];
  fixed: ScanChangeDetail['fixed'];
}

/** `Berth Image Scan Action` FINDINGS_CHANGE: a re-match against a new database changed an image's findings. */
export function scanFindingsChanged(o: ScanFindingsChangedOptions): BuiltEvent<ScanChangeEvent> {
  const detail: ScanChangeDetail = {
    result: 'SUCCESS',
    'repository-name': o.repositoryName,
    'image-digest': o.imageDigest,
    'image-tags': [...o.imageTags],
    'finding-severity-counts': { ...o.severityCounts },
    added: o.added,
    fixed: o.fixed,
    'action-type': 'FINDINGS_CHANGE',
  };
  return { event: envelope(o, 'Berth Image Scan Action', [arnOf(o)], detail), repository: o.repositoryName };
}

export interface ImageReplicatedOptions extends RepositoryOptions {
  imageDigest: string;
  /** The tag replicated; absent for an image replicated by digest. */
  imageTag?: string | undefined;
  sourceAccount: string;
  sourceRegion: string;
}

/** `ECR Replication Action` REPLICATE: an image arrived by replication (in the destination's log). */
export function imageReplicated(o: ImageReplicatedOptions): BuiltEvent<ReplicationActionEvent> {
  const detail: ReplicationActionDetail = {
    result: 'SUCCESS',
    'repository-name': o.repositoryName,
    'image-digest': o.imageDigest,
    'source-account': o.sourceAccount,
    'action-type': 'REPLICATE',
    'source-region': o.sourceRegion,
    'image-tag': o.imageTag ?? '',
  };
  return { event: envelope(o, 'ECR Replication Action', [arnOf(o)], detail), repository: o.repositoryName };
}

export interface ImageCachedOptions extends RepositoryOptions {
  imageDigest: string;
  imageTag?: string | undefined;
  ecrRepositoryPrefix: string;
  upstreamRegistryUrl: string;
}

/**
 * `ECR Pull Through Cache Action` SUCCESS: a pull brought an image in from the upstream of a
 * pull-through cache rule. The image's `ECR Image Action` PUSH is recorded with it, so that scan
 * on push and replication treat a cached image as any other.
 */
export function imageCached(o: ImageCachedOptions): BuiltEvent<PullThroughCacheActionEvent> {
  const detail: PullThroughCacheActionDetail = {
    'sync-status': 'SUCCESS',
    'ecr-repository-prefix': o.ecrRepositoryPrefix,
    'repository-name': o.repositoryName,
    'upstream-registry-url': o.upstreamRegistryUrl,
    'image-tag': o.imageTag ?? '',
    'image-digest': o.imageDigest,
  };
  return { event: envelope(o, 'ECR Pull Through Cache Action', [arnOf(o)], detail), repository: o.repositoryName };
}

/**
 * The digest an image arrived with, by push or by replication: the `image-digest` of an `ECR
 * Image Action` PUSH or an `ECR Replication Action`; undefined for every other event. For scan on push.
 */
export function arrivedImageDigest(event: { detailType: string; body: unknown }): string | undefined {
  if (event.detailType === 'ECR Replication Action') {
    const detail = (event.body as { detail?: Partial<ReplicationActionDetail> }).detail;
    return typeof detail?.['image-digest'] === 'string' ? detail['image-digest'] : undefined;
  }
  return pushedImageDigest(event);
}

/**
 * The digest an event of the log reports pushed: the `image-digest` of an `ECR Image Action`
 * PUSH; undefined for every other event (a replicated image too). For the log's consumers (replication).
 */
export function pushedImageDigest(event: { detailType: string; body: unknown }): string | undefined {
  if (event.detailType !== 'ECR Image Action') return undefined;
  const detail = (event.body as { detail?: Partial<ImageActionDetail> }).detail;
  return detail?.['action-type'] === 'PUSH' && typeof detail['image-digest'] === 'string' ? detail['image-digest'] : undefined;
}

/**
 * EventBridge's `time`: ISO 8601 in UTC, to the second, as every AWS event carries it. The
 * fraction is dropped, not rounded, so an event never claims a moment later than the change.
 */
export function eventTime(timeMs: number): string {
  if (!Number.isFinite(timeMs)) throw new RangeError(`An event time must be a finite number of milliseconds, but it is ${timeMs}.`);
  return new Date(Math.floor(timeMs / 1000) * 1000).toISOString().replace('.000Z', 'Z');
}

// --- helpers -----------------------------------------------------------------------------------

function imageAction(o: ImageDeletedOptions, actionType: 'PUSH' | 'DELETE'): BuiltEvent<ImageActionEvent> {
  // Key order follows the captured events, so Berth's JSON reads like ECR's.
  const detail: ImageActionDetail = {
    result: 'SUCCESS',
    'repository-name': o.repositoryName,
    'image-digest': o.imageDigest,
    'action-type': actionType,
    ...(o.artifactMediaType !== undefined ? { 'artifact-media-type': o.artifactMediaType } : {}),
    'image-tag': o.imageTag ?? '',
    ...(o.manifestMediaType !== undefined ? { 'manifest-media-type': o.manifestMediaType } : {}),
  };
  return { event: envelope(o, 'ECR Image Action', [], detail), repository: o.repositoryName };
}

function repositoryAction(o: RepositoryOptions, detail: RepositoryActionDetail): BuiltEvent<RepositoryActionEvent> {
  return { event: envelope(o, 'Berth Repository Action', [arnOf(o)], detail), repository: o.repositoryName };
}

function envelope<T extends DetailType, D>(context: EventContext, detailType: T, resources: string[], detail: D): Envelope<T, D> {
  return {
    version: '0',
    id: (context.newId ?? randomUUID)(),
    'detail-type': detailType,
    source: 'aws.ecr',
    account: context.account,
    time: eventTime(context.timeMs),
    region: context.region,
    resources,
    detail,
  };
}

function arnOf(o: RepositoryOptions): string {
  return repositoryArn(o.region, o.account, o.repositoryName);
}
