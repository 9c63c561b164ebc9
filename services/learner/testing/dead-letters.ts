// Reads a run's dead-letter stream for tests, as an operator would: reason, detail, id and payload.

import type { Bus } from '../../core/bus/index.js';
import { DEAD_LETTER_HEADERS } from '../../core/run-subjects.js';
import { runStreams } from '../run-bus.js';

/** One stored dead letter. */
export interface StoredDeadLetter {
  reason: string;
  detail: string;
  trajectoryId?: string;
  data: Uint8Array;
}

let inspectors = 0;

/** Every message in the run's dead-letter stream (read by a throwaway durable, deleted afterwards). */
export async function readDeadLetters(bus: Bus, run: string): Promise<StoredDeadLetter[]> {
  const c = await bus.consumer({ stream: runStreams(run).deadLetters, durable: `inspect${++inspectors}`, ackWaitMs: 30_000, maxDeliver: 2, maxAckPending: 10_000 });
  const out: StoredDeadLetter[] = [];
  for (let m = await c.next({ expiresMs: 300 }); m; m = await c.next({ expiresMs: 300 })) {
    const h = m.headers;
    out.push({ reason: h[DEAD_LETTER_HEADERS.reason]!, detail: h[DEAD_LETTER_HEADERS.detail]!, trajectoryId: h[DEAD_LETTER_HEADERS.trajectoryId], data: m.data });
    m.ack();
  }
  await c.delete();
  return out;
}
