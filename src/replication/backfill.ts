import type { Registry } from '../registry/registry.ts';
import { destinationsFor } from '../registry/replication.ts';
import type { ReplicationRequest } from '../store/meta/replication-store.ts';

export interface BackfillOptions {
  /** Only this account's rules; default every account with a replication configuration. */
  accountId?: string | undefined;
  /** Only this repository (of the account, or of each account). */
  repository?: string | undefined;
  /** Count what would be queued, queue nothing. */
  dryRun: boolean;
  /** Also queue again the images whose replication FAILED (after the cause was fixed). */
  retryFailed?: boolean | undefined;
  /** Called after each repository. */
  onProgress?: (progress: BackfillProgress) => void;
}

export interface BackfillProgress {
  accountId: string;
  repositoryName: string;
  images: number;
  queued: number;
}

export interface BackfillSummary {
  dryRun: boolean;
  repositories: number;
  images: number;
  /** Replications queued (or, in a dry run, that would be): image and destination pairs with no task yet. */
  queued: number;
  /** Image and destination pairs that already have a task (replicated, waiting, or failed without `retryFailed`): left alone. */
  alreadyKnown: number;
  /** FAILED replications queued again (with `retryFailed`). */
  retried: number;
  /** Per destination key (`REGION/REGISTRYID`). */
  byDestination: Record<string, { queued: number; alreadyKnown: number; retried: number }>;
}

const PAGE = 500;

/**
 * Replicates what was pushed before the rules existed (ECR replicates only later pushes): for
 * every image of every repository the account's rules cover, and each destination they name,
 * queues a replication unless the image already has one there, replicated or not. So a
 * backfill copies each image at most once, however often it is run; a FAILED image is left to
 * a push (or the cause is fixed and it is pushed again).
 */
export async function backfill(registry: Registry, options: BackfillOptions): Promise<BackfillSummary> {
  const summary: BackfillSummary = { dryRun: options.dryRun, repositories: 0, images: 0, queued: 0, alreadyKnown: 0, retried: 0, byDestination: {} };
  const configs = (await registry.replication.configurations()).filter((c) => options.accountId === undefined || c.accountId === options.accountId);
  for (const { accountId, config } of configs) {
    let after: string | undefined;
    for (;;) {
      const names = options.repository !== undefined ? (after === undefined ? [options.repository] : []) : await registry.repositoryNames(accountId, { after, limit: PAGE });
      for (const name of names) {
        const destinations = destinationsFor(config, name);
        if (destinations.length === 0) continue;
        const repository = await registry.findRepository({ account: accountId, name });
        if (!repository) continue;
        summary.repositories++;
        let images = 0;
        let queued = 0;
        let afterDigest: string | undefined;
        for (;;) {
          const page = await registry.listImages(repository.id, { tagStatus: 'ANY', afterDigest: afterDigest as never, limit: PAGE });
          const requests: ReplicationRequest[] = [];
          for (const image of page) {
            images++;
            const known = new Map((await registry.replication.tasksOf(repository.id, image.digest)).map((t) => [t.destination, t.status] as const));
            for (const destination of destinations) {
              const tally = (summary.byDestination[destination] ??= { queued: 0, alreadyKnown: 0, retried: 0 });
              const status = known.get(destination);
              if (status === 'FAILED' && options.retryFailed) {
                tally.retried++;
                summary.retried++;
                requests.push({ repositoryId: repository.id, digest: image.digest, destination, tags: image.tags, reason: 'retry', pushedAtMs: Date.now() });
                continue;
              }
              if (status !== undefined) {
                tally.alreadyKnown++;
                summary.alreadyKnown++;
                continue;
              }
              tally.queued++;
              queued++;
              // Lag counts from the backfill, not from the push long ago.
              requests.push({ repositoryId: repository.id, digest: image.digest, destination, tags: image.tags, reason: 'backfill', pushedAtMs: Date.now() });
            }
          }
          if (!options.dryRun) await registry.replication.request(requests);
          if (page.length < PAGE) break;
          afterDigest = page.at(-1)!.digest;
        }
        summary.images += images;
        summary.queued += queued;
        options.onProgress?.({ accountId, repositoryName: name, images, queued });
      }
      if (names.length < PAGE) break;
      after = names.at(-1);
    }
  }
  return summary;
}
