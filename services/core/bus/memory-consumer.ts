// In-process consumer handles and message deliveries over the durable state in memory-stream.ts.

import { BusError } from './errors.js';
import type { ConsumerCore, Delivery } from './memory-stream.js';
import { PullStream } from './pull-stream.js';
import type { BusMessage, ConsumeOptions, Consumer, ConsumerState, MessageStream, NextOptions } from './types.js';
import { checkBatch, pullExpiry } from './validate.js';

/** Finds the durable's current state; throws 'not_found' or 'closed'. */
export type CoreLookup = () => ConsumerCore;

export class MemConsumer implements Consumer {
  constructor(
    readonly stream: string,
    readonly durable: string,
    private readonly lookup: CoreLookup,
    private readonly remove: () => boolean,
  ) {}

  async next(opts: NextOptions = {}): Promise<BusMessage | null> {
    const expires = pullExpiry(opts.expiresMs);
    const core = this.lookup();
    const d = await core.next(expires);
    return d && deliveryMessage(core, d);
  }

  consume(opts: ConsumeOptions = {}): MessageStream {
    const expires = pullExpiry(opts.expiresMs);
    checkBatch(opts.batch);
    const lookup = this.lookup;
    return new PullStream(async function* (signal) {
      const core = lookup();
      const d = await core.next(expires, signal);
      if (d) yield deliveryMessage(core, d);
    });
  }

  async info(): Promise<ConsumerState> {
    return this.lookup().info();
  }

  async delete(): Promise<boolean> {
    return this.remove();
  }
}

/** A delivery as the caller sees it; the first of ack/nak/term wins, later ends are ignored. */
function deliveryMessage(core: ConsumerCore, d: Delivery): BusMessage {
  const { seq } = d.msg;
  let ended = false;
  const end = (fn: () => void): void => {
    if (ended) return;
    ended = true;
    fn();
  };
  const msg: BusMessage = {
    subject: d.msg.subject,
    data: d.msg.data.slice(),
    headers: { ...d.msg.headers },
    seq,
    deliveryCount: d.count,
    redelivered: d.count > 1,
    ack: () => end(() => core.ack(seq)),
    ackSync: async () => {
      msg.ack();
      if (core.isEnded()) throw new BusError('closed', 'the consumer is gone; the ack was not recorded');
    },
    nak: (delayMs = 0) => end(() => core.nak(seq, delayMs)),
    term: (_reason?: string) => end(() => core.term(seq)),
    working: () => {
      if (!ended) core.working(seq);
    },
  };
  return msg;
}
