import { wildcardMatches } from '../registry/tag-mutability.ts';
import type { LifecyclePolicy, LifecycleRule } from './policy.ts';

/**
 * ECR lifecycle policy evaluation, as the ECR User Guide describes it in "Lifecycle policy
 * evaluation rules" and works it through in "Examples of lifecycle policies". Pure logic: the
 * caller lists a repository's images and deletes what comes back.
 *
 * Rules are applied lowest rulePriority first. Each rule identifies every image that meets its
 * tagging requirements, including images an earlier rule already identified ("Rules can never
 * mark images that are marked by higher priority rules, but can still identify them as if they
 * haven't been expired"), and applies its count to all of them. It then marks only images that
 * no earlier rule identified ("An image that matches the tagging requirements of a rule cannot
 * be expired by a rule with a lower priority"). So an earlier rule's images still take up the
 * places an imageCountMoreThan rule keeps: in the guide's "Filtering on all images, Example B"
 * the `any` rule keeps image E, already identified by the untagged rule, and expires D.
 *
 * Berth additions, for manifests that depend on others:
 * - Only top-level images are judged. An image an index in the set lists as a child, or a
 *   referrer whose subject is in the set, goes with its parent or subject; a referrer whose
 *   subject is not in the set is judged like any other image.
 * - When a top-level image expires, its dependents (children, recursively, and referrers of it
 *   and of them, recursively) expire with it, except those a surviving image still reaches.
 */

export interface LifecycleImage {
  digest: string;
  tags: string[];
  pushedAtMs: number;
  lastPulledAtMs: number | null;
  /** Manifests an index lists. */
  children: string[];
  /** The manifest a referrer refers to. */
  subject: string | null;
}

export interface LifecycleDecision {
  digest: string;
  tags: string[];
  pushedAtMs: number;
  rulePriority: number;
  action: 'expire';
  /** Children and referrers that go with this image, in digest order. */
  dependents: string[];
}

export const DAY_MS = 86_400_000;

/**
 * The images the policy expires at `nowMs`, ordered by rulePriority, then pushedAtMs (oldest
 * first), then digest. Images are keyed by digest; a digest listed twice is a caller bug.
 */
export function evaluateLifecycle(policy: LifecyclePolicy, images: readonly LifecycleImage[], nowMs: number): LifecycleDecision[] {
  const byDigest = new Map<string, LifecycleImage>();
  for (const image of images) {
    if (byDigest.has(image.digest)) throw new Error(`evaluateLifecycle: image ${image.digest} is listed twice`);
    byDigest.set(image.digest, image);
  }

  // Edges from an image to what goes with it: the children it lists and the referrers of it.
  const dependentsOf = new Map<string, string[]>();
  const isDependent = new Set<string>();
  const addEdge = (from: string, to: string): void => {
    if (from === to || !byDigest.has(from) || !byDigest.has(to)) return;
    const edges = dependentsOf.get(from);
    if (edges) edges.push(to);
    else dependentsOf.set(from, [to]);
    isDependent.add(to);
  };
  for (const image of images) {
    for (const child of image.children) addEdge(image.digest, child);
    if (image.subject !== null) addEdge(image.subject, image.digest);
  }
  const reach = (start: string): Set<string> => {
    const seen = new Set<string>([start]);
    const queue = [start];
    for (let next = queue.shift(); next !== undefined; next = queue.shift()) {
      for (const to of dependentsOf.get(next) ?? []) {
        if (!seen.has(to)) {
          seen.add(to);
          queue.push(to);
        }
      }
    }
    return seen;
  };

  const topLevel = images.filter((image) => !isDependent.has(image.digest));
  // A pull of a child or a referrer (a platform manifest pinned by digest, a signature check)
  // is a use of the image it belongs to.
  const lastUsedAtMs = new Map<string, number>();
  for (const image of topLevel) {
    let usedAtMs = image.pushedAtMs;
    for (const digest of reach(image.digest)) usedAtMs = Math.max(usedAtMs, byDigest.get(digest)!.lastPulledAtMs ?? usedAtMs);
    lastUsedAtMs.set(image.digest, usedAtMs);
  }

  const identified = new Set<string>();
  const expiredBy = new Map<string, number>();
  for (const rule of [...policy.rules].sort((a, b) => a.rulePriority - b.rulePriority)) {
    const selected = topLevel.filter((image) => meetsTagging(rule, image));
    for (const image of overTheLimit(rule, selected, nowMs, lastUsedAtMs)) {
      if (!identified.has(image.digest)) expiredBy.set(image.digest, rule.rulePriority);
    }
    for (const image of selected) identified.add(image.digest);
  }

  const stillNeeded = new Set<string>();
  for (const image of topLevel) {
    if (!expiredBy.has(image.digest)) for (const digest of reach(image.digest)) stillNeeded.add(digest);
  }
  const decisions: LifecycleDecision[] = topLevel
    .filter((image) => expiredBy.has(image.digest))
    .map((image) => ({
      digest: image.digest,
      tags: [...image.tags],
      pushedAtMs: image.pushedAtMs,
      rulePriority: expiredBy.get(image.digest)!,
      action: 'expire' as const,
      dependents: [],
    }));
  decisions.sort((a, b) => a.rulePriority - b.rulePriority || a.pushedAtMs - b.pushedAtMs || compare(a.digest, b.digest));
  // A dependent shared by two expiring images is listed once, with the first decision.
  const listed = new Set<string>();
  for (const decision of decisions) {
    for (const digest of reach(decision.digest)) {
      if (digest === decision.digest || stillNeeded.has(digest) || listed.has(digest)) continue;
      listed.add(digest);
      decision.dependents.push(digest);
    }
    decision.dependents.sort(compare);
  }
  return decisions;
}

/** ECR's preview summary. Dependents are counted apart, as ECR's preview lists only rule matches. */
export function previewSummary(decisions: readonly LifecycleDecision[]): { expiringImageTotalCount: number; dependentImageTotalCount: number } {
  return {
    expiringImageTotalCount: decisions.length,
    dependentImageTotalCount: decisions.reduce((total, decision) => total + decision.dependents.length, 0),
  };
}

/** Whether an image meets a rule's tagging requirements. Tags compare case-sensitively. */
export function meetsTagging(rule: LifecycleRule, image: Pick<LifecycleImage, 'tags'>): boolean {
  const { tagStatus, tagPrefixList, tagPatternList } = rule.selection;
  if (tagStatus === 'any') return true;
  if (tagStatus === 'untagged') return image.tags.length === 0;
  if (image.tags.length === 0) return false;
  // "An image is successfully matched if all of the tags in the tagPatternList or tagPrefixList
  // value are matched against any of the image's tags."
  if (tagPrefixList) return tagPrefixList.every((prefix) => image.tags.some((tag) => tag.startsWith(prefix)));
  if (tagPatternList) return tagPatternList.every((pattern) => image.tags.some((tag) => matchesTagPattern(pattern, tag)));
  return false;
}

/** A tagPatternList entry against one tag: `*` stands for any run of characters, the rest is literal (as tag-mutability exclusion filters). */
export const matchesTagPattern = wildcardMatches;

/**
 * The selected images the rule's count puts over its limit. imageCountMoreThan keeps the
 * countNumber most recently pushed (equal push times: the lower digest counts as newer); the
 * since* types take images whose time is more than countNumber whole days before now.
 */
function overTheLimit(
  rule: LifecycleRule,
  selected: readonly LifecycleImage[],
  nowMs: number,
  lastUsedAtMs: ReadonlyMap<string, number>,
): LifecycleImage[] {
  const { countType, countNumber } = rule.selection;
  if (countType === 'imageCountMoreThan') {
    const newestFirst = [...selected].sort((a, b) => b.pushedAtMs - a.pushedAtMs || compare(a.digest, b.digest));
    return newestFirst.slice(countNumber);
  }
  const limitMs = countNumber * DAY_MS;
  if (countType === 'sinceImagePushed') return selected.filter((image) => nowMs - image.pushedAtMs > limitMs);
  // sinceImagePulled: "If an image was never pulled, the image's pushed_at_time is used instead."
  return selected.filter((image) => nowMs - (lastUsedAtMs.get(image.digest) ?? image.pushedAtMs) > limitMs);
}

function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
