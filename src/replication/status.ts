import { parseDestinationKey } from '../store/meta/replication-store.ts';
import type { MetaStore } from '../store/meta/meta-store.ts';
import { REPLICATION_CONSUMER } from './worker.ts';

/** One destination's state, as `berth replication status` and the metrics show it. */
export interface DestinationStatus {
  destination: string;
  region: string;
  registryId: string;
  /** Images waiting (queued, retrying or being copied). */
  pending: number;
  /** Of those, being copied now. */
  inProgress: number;
  failed: number;
  complete: number;
  /** How long the oldest waiting image has waited since its push (or its backfill); 0 when none waits. */
  lagSeconds: number;
  lastCompletedAt: string | null;
  /** Why the last attempt at a waiting image failed, if one did (a destination that is down says so here). */
  lastError: string | null;
  /** A FAILED image's code and error, if there is one (`backfill --retry-failed` queues them again). */
  lastFailure: { failureCode: string | null; error: string | null } | null;
}

export interface ReplicationStatus {
  /** Pushes in the event log that replication has not read yet. */
  unreadEvents: number;
  destinations: DestinationStatus[];
}

/** Where replication stands: the event log it has not read, and per destination what waits and for how long. */
export async function replicationStatus(meta: Pick<MetaStore, 'events' | 'replication'>, nowMs = Date.now()): Promise<ReplicationStatus> {
  // listConsumers, not consumer(): reading must not create the consumer.
  const consumer = (await meta.events.listConsumers()).find((c) => c.name === REPLICATION_CONSUMER);
  const lastSeq = await meta.events.lastSeq();
  const summaries = await meta.replication.summary();
  return {
    unreadEvents: Math.max(0, lastSeq - (consumer?.cursor ?? lastSeq)),
    destinations: summaries.map((s) => {
      return {
        destination: s.destination,
        ...parseDestinationKey(s.destination),
        pending: s.pending + s.inProgress,
        inProgress: s.inProgress,
        failed: s.failed,
        complete: s.complete,
        lagSeconds: s.oldestWaitingPushedAtMs === null ? 0 : Math.max(0, (nowMs - s.oldestWaitingPushedAtMs) / 1000),
        lastCompletedAt: s.lastCompletedAtMs === null ? null : new Date(s.lastCompletedAtMs).toISOString(),
        lastError: s.lastError,
        lastFailure: s.lastFailure,
      };
    }),
  };
}
