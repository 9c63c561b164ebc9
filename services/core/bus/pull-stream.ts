// The consume() loop both implementations share: pull a round of messages, yield them, retry
// transient failures with backoff and jitter, end quietly on stop() or when the bus closes.

import { BusError } from './errors.js';
import type { BusMessage, MessageStream } from './types.js';

/** One pull: yields the messages of one request (zero or more), honouring `signal`. */
export type PullRound = (signal: AbortSignal) => AsyncIterable<BusMessage>;

const BACKOFF_BASE_MS = 100;
const BACKOFF_MAX_MS = 5_000;

/** Exponential backoff with full jitter for the n-th consecutive failure (n ≥ 1). */
export function backoffMs(n: number): number {
  const cap = Math.min(BACKOFF_MAX_MS, BACKOFF_BASE_MS * 2 ** Math.min(n - 1, 16));
  return cap / 2 + Math.random() * (cap / 2);
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const t = setTimeout(done, ms);
    t.unref();
    signal.addEventListener('abort', done, { once: true });
    function done(): void {
      clearTimeout(t);
      signal.removeEventListener('abort', done);
      resolve();
    }
  });
}

export class PullStream implements MessageStream {
  private readonly ctrl = new AbortController();

  constructor(private readonly round: PullRound) {}

  stop(): void {
    this.ctrl.abort();
  }

  async *[Symbol.asyncIterator](): AsyncGenerator<BusMessage, void, undefined> {
    const signal = this.ctrl.signal;
    let failures = 0;
    try {
      while (!signal.aborted) {
        try {
          for await (const msg of this.round(signal)) {
            failures = 0;
            if (signal.aborted) {
              msg.nak(); // pulled after stop(): hand it back at once
              continue;
            }
            yield msg;
          }
        } catch (err) {
          const e = BusError.from(err);
          if (e.code === 'closed' || signal.aborted) return;
          if (!e.retryable) throw e;
          failures += 1;
          await sleep(backoffMs(failures), signal);
        }
      }
    } finally {
      this.stop();
    }
  }
}
