// Durable pull consumers over nats.js: creating or updating the durable, pulling with next/fetch,
// and wrapping JsMsg deliveries in the bus's message type.

import { AckPolicy, DeliverPolicy, nanos, type Consumer as NatsPull, type JetStreamClient, type JetStreamManager, type JsMsg } from 'nats';
import { BusError } from './errors.js';
import { fromNats, fromNatsHeaders, natsErrorIs } from './nats-errors.js';
import { PullStream } from './pull-stream.js';
import type { BusMessage, ConsumeOptions, Consumer, ConsumerConfig, ConsumerState, MessageStream, NextOptions } from './types.js';
import { checkBatch, pullExpiry } from './validate.js';

/** What a consumer needs from the bus that made it. */
export interface NatsConsumerHost {
  js: JetStreamClient;
  jsm: JetStreamManager;
  /** Throws BusError('closed') once the bus closed. */
  assertOpen(): void;
  /** Registers a running pull so close() can stop it; returns the unregister function. */
  track(stop: () => void): () => void;
}

/** Creates the durable, or updates its ack wait, max deliver and max ack pending. */
export async function bindConsumer(host: NatsConsumerHost, cfg: ConsumerConfig): Promise<NatsConsumer> {
  const ctx = `consumer ${cfg.durable} of stream ${cfg.stream}`;
  const wanted = { ack_wait: nanos(cfg.ackWaitMs), max_deliver: cfg.maxDeliver, max_ack_pending: cfg.maxAckPending };
  try {
    const info = await host.jsm.consumers.info(cfg.stream, cfg.durable).catch((err: unknown) => {
      if (natsErrorIs(err, 'not_found') && !isStreamMissing(err)) return null;
      throw err;
    });
    if (!info) {
      await host.jsm.consumers.add(cfg.stream, {
        durable_name: cfg.durable,
        ack_policy: AckPolicy.Explicit,
        deliver_policy: DeliverPolicy.All,
        ...wanted,
        ...(cfg.filterSubject === undefined ? {} : { filter_subject: cfg.filterSubject }),
      });
    } else if ((info.config.filter_subject || undefined) !== cfg.filterSubject) {
      throw new BusError('conflict', `${ctx} exists with another filterSubject; delete it first`);
    } else if (
      info.config.ack_wait !== wanted.ack_wait ||
      info.config.max_deliver !== wanted.max_deliver ||
      info.config.max_ack_pending !== wanted.max_ack_pending
    ) {
      await host.jsm.consumers.update(cfg.stream, cfg.durable, wanted);
    }
    const pull = await host.js.consumers.get(cfg.stream, cfg.durable);
    return new NatsConsumer(host, cfg.stream, cfg.durable, pull);
  } catch (err) {
    throw fromNats(err, ctx);
  }
}

function isStreamMissing(err: unknown): boolean {
  return (err as { api_error?: { err_code?: number } }).api_error?.err_code === 10059;
}

export class NatsConsumer implements Consumer {
  constructor(
    private readonly host: NatsConsumerHost,
    readonly stream: string,
    readonly durable: string,
    private readonly pull: NatsPull,
  ) {}

  async next(opts: NextOptions = {}): Promise<BusMessage | null> {
    const expires = pullExpiry(opts.expiresMs);
    this.host.assertOpen();
    // A one-message fetch rather than nats.js next(), so that close() can end the wait.
    const ctrl = new AbortController();
    const untrack = this.host.track(() => ctrl.abort());
    try {
      for await (const m of this.round(1, expires, ctrl.signal)) return m;
      this.host.assertOpen();
      return null;
    } finally {
      untrack();
    }
  }

  consume(opts: ConsumeOptions = {}): MessageStream {
    const expires = pullExpiry(opts.expiresMs);
    const batch = checkBatch(opts.batch);
    const stream: PullStream = new PullStream((signal) => this.round(batch, expires, signal));
    const untrack = this.host.track(() => stream.stop());
    const iterate = stream[Symbol.asyncIterator].bind(stream);
    return {
      stop: () => stream.stop(),
      [Symbol.asyncIterator]: async function* () {
        try {
          yield* iterate();
        } finally {
          untrack();
        }
      },
    };
  }

  async info(): Promise<ConsumerState> {
    this.host.assertOpen();
    try {
      const i = await this.host.jsm.consumers.info(this.stream, this.durable);
      return { pending: i.num_pending, ackPending: i.num_ack_pending };
    } catch (err) {
      throw fromNats(err, `consumer ${this.durable}`);
    }
  }

  async delete(): Promise<boolean> {
    this.host.assertOpen();
    try {
      return await this.host.jsm.consumers.delete(this.stream, this.durable);
    } catch (err) {
      if (natsErrorIs(err, 'not_found')) return false;
      throw fromNats(err, `deleting consumer ${this.durable}`);
    }
  }

  /**
   * One pull request of up to `batch` messages. An empty round ends in a probe of the durable:
   * gone is 'not_found'; an empty end well before `expires` is a transient failure.
   */
  private async *round(batch: number, expires: number, signal: AbortSignal): AsyncGenerator<BusMessage> {
    this.host.assertOpen();
    const started = Date.now();
    let delivered = 0;
    let iter: Awaited<ReturnType<NatsPull['fetch']>>;
    try {
      iter = await this.pull.fetch({ max_messages: batch, expires });
    } catch (err) {
      throw await this.diagnose(err);
    }
    const onAbort = (): void => void iter.close().catch(() => {});
    signal.addEventListener('abort', onAbort, { once: true });
    try {
      for await (const m of iter) {
        delivered += 1;
        yield wrapMessage(m);
      }
    } catch (err) {
      throw await this.diagnose(err);
    } finally {
      signal.removeEventListener('abort', onAbort);
      onAbort();
    }
    if (delivered > 0 || signal.aborted) return;
    const early = Date.now() - started < expires / 2;
    const e = await this.diagnose(new BusError('unavailable', 'pull ended early with no messages'));
    if (e.code !== 'unavailable' || early) throw e;
  }

  /** Why a pull failed: the bus closed, the durable is gone, or something transient. */
  private async diagnose(err: unknown): Promise<BusError> {
    try {
      this.host.assertOpen();
    } catch (closed) {
      return closed as BusError;
    }
    try {
      await this.host.jsm.consumers.info(this.stream, this.durable);
    } catch (probe) {
      if (natsErrorIs(probe, 'not_found')) return fromNats(probe, `consumer ${this.durable} of stream ${this.stream}`);
    }
    const e = fromNats(err, `pulling from ${this.durable}`);
    return e.retryable ? e : new BusError('unavailable', e.message, { cause: err });
  }
}

/** A JsMsg as a BusMessage; the first end wins, and ends never throw (a lost ack is a redelivery). */
export function wrapMessage(m: JsMsg): BusMessage {
  let ended = false;
  const end = (fn: () => void): void => {
    if (ended) return;
    ended = true;
    try {
      fn();
    } catch {
      // the connection is gone: the server redelivers after the ack wait
    }
  };
  const count = m.info.deliveryCount;
  return {
    subject: m.subject,
    data: m.data,
    headers: fromNatsHeaders(m.headers),
    seq: m.seq,
    deliveryCount: count,
    redelivered: count > 1,
    ack: () => end(() => m.ack()),
    ackSync: async () => {
      if (ended) return;
      ended = true;
      try {
        await m.ackAck();
      } catch (err) {
        throw fromNats(err, `confirming the ack of message ${m.seq}`);
      }
    },
    nak: (delayMs?: number) => end(() => (delayMs && delayMs > 0 ? m.nak(delayMs) : m.nak())),
    // nats-server 2.9 ignores '+TERM <reason>' (reasons need 2.11), so the reason is not sent
    term: (_reason?: string) => end(() => m.term()),
    working: () => {
      if (ended) return;
      try {
        m.working();
      } catch {
        // as above
      }
    },
  };
}
