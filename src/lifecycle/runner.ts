import { isRegistryError } from '../errors/catalogue.ts';
import type { AuditLog } from '../audit/audit-log.ts';
import type { Logger } from '../log/logger.ts';
import type { RepoRef } from '../registry/names.ts';
import type { Registry } from '../registry/registry.ts';
import type { LifecycleImageRecord } from '../store/meta/lifecycle-store.ts';
import { evaluateLifecycle, type LifecycleDecision } from './evaluate.ts';
import { parseLifecyclePolicy } from './policy.ts';

/**
 * Applies lifecycle policies: lists a repository's images, asks the evaluator what its policy
 * expires, and (unless it is a preview) deletes exactly that. A preview and a run share this
 * code to the point of deletion, so a preview shows what a run at the same moment would do.
 */

export interface LifecycleDeps {
  registry: Registry;
  /** For the repository ARNs of audit records. */
  region: string;
  log: Logger;
  audit?: AuditLog | undefined;
  now?: () => number;
}

export interface ExpiredImage extends LifecycleDecision {
  /** Dependents that were deleted with it (all of them, unless a push raced the run). */
  deletedDependents: string[];
}

export interface LifecycleOutcome {
  repository: RepoRef;
  /** What the policy expires; for a run, what was deleted. */
  expired: ExpiredImage[];
  evaluatedAtMs: number;
}

/** What the policy `text` expires in the repository at this moment. Throws LifecyclePolicyError for a bad policy. */
export async function previewLifecycle(deps: LifecycleDeps, repositoryId: number, text: string): Promise<LifecycleDecision[]> {
  return (await evaluateRepository(deps, repositoryId, text)).decisions;
}

/** previewLifecycle, with the images it evaluated (a preview lists their tags and push times). */
export async function evaluateRepository(deps: LifecycleDeps, repositoryId: number, text: string): Promise<{ decisions: LifecycleDecision[]; images: LifecycleImageRecord[] }> {
  const policy = parseLifecyclePolicy(text);
  const now = (deps.now ?? Date.now)();
  const records = await deps.registry.lifecycleImages(repositoryId);
  const images = records.map((r) => ({
    digest: r.digest,
    tags: r.tags,
    pushedAtMs: r.pushedAtMs,
    // Pulls recorded in this process but not yet written count too.
    lastPulledAtMs: deps.registry.lastPulledAt(repositoryId, r.digest, r.lastPulledAtMs),
    children: r.children,
    subject: r.subject,
  }));
  return { decisions: evaluateLifecycle(policy, images, now), images: records };
}

/**
 * Runs the repository's stored policy: deletes every image it expires, the image first and then
 * its dependents (children of an index, referrers). Each expiry is audited and logged as a
 * `lifecycle.expired` event. Resolves undefined when the repository has no policy.
 */
export async function runLifecycle(deps: LifecycleDeps, repo: RepoRef): Promise<LifecycleOutcome | undefined> {
  const { registry, log } = deps;
  const now = deps.now ?? Date.now;
  const repository = await registry.findRepository(repo);
  if (!repository) return undefined;
  const stored = await registry.lifecyclePolicy(repository.id);
  if (!stored) return undefined;
  const decisions = await previewLifecycle(deps, repository.id, stored.text);
  const expired: ExpiredImage[] = [];
  for (const decision of decisions) {
    if (!(await deleteImage(registry, repo, decision.digest, decision.rulePriority))) continue;
    const deletedDependents: string[] = [];
    // Dependents are listed parents first; a child still listed by a parent that went later
    // in the list is retried once the parents are gone.
    let pending = [...decision.dependents];
    for (let pass = 0; pass < 4 && pending.length > 0; pass++) {
      const next: string[] = [];
      for (const digest of pending) {
        const done = await deleteImage(registry, repo, digest, decision.rulePriority, true);
        if (done === 'referenced') next.push(digest);
        else if (done) deletedDependents.push(digest);
      }
      pending = next;
    }
    expired.push({ ...decision, deletedDependents });
    const at = now();
    for (const digest of [decision.digest, ...deletedDependents]) {
      deps.audit?.record({
        atMs: at,
        requestId: `lifecycle-${at}`,
        plane: 'lifecycle',
        accountId: repo.account,
        principal: 'berth:lifecycle',
        accessKeyId: null,
        action: 'ecr:BatchDeleteImage',
        resource: `arn:aws:ecr:${deps.region}:${repo.account}:repository/${repo.name}@${digest}`,
        decision: 'allow',
        policy: `lifecycle policy rule ${decision.rulePriority}`,
        sourceIp: '-',
        userAgent: null,
        errorCode: null,
      });
    }
    log.info(
      { event: 'lifecycle.expired', account: repo.account, repository: repo.name, digest: decision.digest, tags: decision.tags, rulePriority: decision.rulePriority, dependents: deletedDependents },
      'lifecycle policy expired an image',
    );
  }
  const evaluatedAtMs = now();
  await registry.markLifecycleEvaluated(repository.id, evaluatedAtMs);
  return { repository: repo, expired, evaluatedAtMs };
}

/** Every repository with a policy, in turn; a failure in one is logged and the others still run. */
export async function runAllLifecycles(deps: LifecycleDeps): Promise<LifecycleOutcome[]> {
  const outcomes: LifecycleOutcome[] = [];
  for (const r of await deps.registry.repositoriesWithLifecyclePolicy()) {
    const repo = { account: r.accountId, name: r.name };
    try {
      const outcome = await runLifecycle(deps, repo);
      if (outcome) outcomes.push(outcome);
    } catch (err) {
      deps.log.error({ err, account: r.accountId, repository: r.name }, 'lifecycle policy run failed');
    }
  }
  return outcomes;
}

/** Deletes a manifest and its tags; false when it is already gone, 'referenced' when an index still lists it. */
async function deleteImage(registry: Registry, repo: RepoRef, digest: string, rulePriority: number, dependent = false): Promise<boolean | 'referenced'> {
  try {
    // Recorded as the lifecycle policy's expiry (an EXPIRE event), not a client's deletion.
    await registry.deleteManifest(repo, digest, { expiredBy: { rulePriority } });
    return true;
  } catch (err) {
    if (isRegistryError(err, 'ManifestUnknown')) return false;
    if (isRegistryError(err, 'ManifestReferenced')) return dependent ? 'referenced' : false;
    throw err;
  }
}
