import type { BuiltEvent, EventContext } from '../events/envelope.ts';
import type { MetaStore } from '../store/meta/meta-store.ts';

/**
 * Writes events to the outbox of the transaction `tx` (docs/adr/0012-event-outbox.md): they are
 * visible exactly when the change they record commits. Call it as the transaction's last write.
 */
export async function recordEvents(tx: MetaStore, timeMs: number, built: readonly BuiltEvent[]): Promise<void> {
  if (built.length === 0) return;
  await tx.events.append(
    built.map(({ event, repository }) => ({
      id: event.id,
      accountId: event.account,
      repository,
      detailType: event['detail-type'],
      timeMs,
      body: event,
    })),
  );
}

/** The context every event builder takes. */
export function eventContext(account: string, region: string, timeMs: number): EventContext {
  return { account, region, timeMs };
}
