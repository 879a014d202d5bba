import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { SIGNATURE_HEADER, verifyDelivery, type VerifyResult } from '../../src/events/signing.ts';

/** One request a receiver got, with its signature checked against the receiver's secret. */
export interface ReceivedDelivery {
  headers: IncomingHttpHeaders;
  /** The body exactly as received. */
  raw: string;
  /** The parsed body; undefined when it was not JSON. */
  event: { id: string; 'detail-type': string; source: string; account: string; time: string; region: string; resources: string[]; detail: Record<string, unknown> } | undefined;
  verified: VerifyResult;
  /** The status answered; 0 when it never answered. */
  status: number;
}

export interface WebhookReceiver {
  /** e.g. http://127.0.0.1:41234/hook */
  url: string;
  /** Every request received, in arrival order, answered or not. */
  received: ReceivedDelivery[];
  /** The secret deliveries are verified with; set it once the subscription has one. */
  secret: string;
  /** What to answer: a status, or 'hang' to never answer (the sender's timeout ends it). */
  answer: number | 'hang';
  /** How long to wait before answering: a slow receiver. */
  answerDelayMs: number;
  /** The ids of the events received with a good signature and answered 2xx, first arrival only, in arrival order. */
  deliveredIds(): string[];
  /** Stops listening (the sender finds the port closed) until start() listens on the same port again. */
  stop(): Promise<void>;
  start(): Promise<void>;
  close(): Promise<void>;
}

/**
 * A webhook receiver on 127.0.0.1: it verifies each delivery's signature with verifyDelivery, as
 * docs/webhooks.md tells receivers to, records it and answers with `answer`.
 */
export async function startWebhookReceiver(options: { secret?: string } = {}): Promise<WebhookReceiver> {
  let port = 0;
  let server: Server | undefined;
  const receiver: WebhookReceiver = {
    url: '',
    received: [],
    secret: options.secret ?? 'unset-secret-unset',
    answer: 204,
    answerDelayMs: 0,
    deliveredIds() {
      const seen = new Set<string>();
      for (const d of receiver.received) {
        if (d.verified.ok && d.status >= 200 && d.status < 300 && d.event && !seen.has(d.event.id)) seen.add(d.event.id);
      }
      return [...seen];
    },
    async stop() {
      const s = server;
      server = undefined;
      if (!s) return;
      s.closeAllConnections();
      await new Promise<void>((resolve) => s.close(() => resolve()));
    },
    async start() {
      if (server) return;
      const s = createServer((req, res) => {
        const chunks: Buffer[] = [];
        req.on('data', (c: Buffer) => chunks.push(c));
        req.on('end', () => {
          const raw = Buffer.concat(chunks).toString('utf8');
          let event: ReceivedDelivery['event'];
          try {
            event = JSON.parse(raw) as ReceivedDelivery['event'];
          } catch {
            event = undefined;
          }
          const header = req.headers[SIGNATURE_HEADER.toLowerCase()];
          const verified = verifyDelivery({ secret: receiver.secret, header: Array.isArray(header) ? header[0] : header, body: raw });
          const answer = receiver.answer;
          receiver.received.push({ headers: req.headers, raw, event, verified, status: answer === 'hang' ? 0 : verified.ok ? answer : 400 });
          if (answer === 'hang') return;
          setTimeout(() => res.writeHead(verified.ok ? answer : 400).end(verified.ok ? '' : verified.message), receiver.answerDelayMs);
        });
      });
      await new Promise<void>((resolve, reject) => {
        s.once('error', reject);
        s.listen(port, '127.0.0.1', () => resolve());
      });
      port = (s.address() as AddressInfo).port;
      server = s;
      receiver.url = `http://127.0.0.1:${port}/hook`;
    },
    async close() {
      await receiver.stop();
    },
  };
  await receiver.start();
  return receiver;
}
