// Request-reply over one wildcard inbox subscription per connection. nats.js's own request() builds two
// Error objects per call (for async stack traces and for cancelling the finished request), which at
// thousands of actor calls a second is a measurable share of a rollout worker's CPU; this keeps the
// same protocol (reply subject under a private inbox, the server's 503 status for no responders).

import { createInbox, type Msg, type MsgHdrs, type NatsConnection, type Subscription } from 'nats';
import { BusError } from './errors.js';

interface Pending {
  resolve(m: Msg): void;
  reject(e: Error): void;
  timer: NodeJS.Timeout;
  subject: string;
}

export class NatsRequester {
  private readonly prefix = `${createInbox()}.`;
  private readonly pending = new Map<string, Pending>();
  private readonly sub: Subscription;
  private seq = 0;

  constructor(private readonly nc: NatsConnection) {
    this.sub = nc.subscribe(`${this.prefix}*`, {
      callback: (err, msg) => {
        if (err) return;
        const token = msg.subject.slice(this.prefix.length);
        const p = this.pending.get(token);
        if (!p) return; // timed out already
        this.pending.delete(token);
        clearTimeout(p.timer);
        // The server's answer when the subject has no subscriber: an empty message with status 503.
        if (msg.data.length === 0 && msg.headers?.code === 503) p.reject(new BusError('no_responders', `request to ${p.subject}: no responders`));
        else p.resolve(msg);
      },
    });
    void nc.closed().then(() => this.failAll(new BusError('closed', 'the connection closed')));
  }

  /** Sends `data` to `subject`; resolves the first reply, or rejects with timeout / no_responders / closed. */
  request(subject: string, data: Uint8Array, timeoutMs: number, headers?: MsgHdrs): Promise<Msg> {
    const token = (this.seq++).toString(36);
    return new Promise<Msg>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(token);
        reject(new BusError('timeout', `request to ${subject}: no reply within ${timeoutMs} ms`));
      }, timeoutMs);
      this.pending.set(token, { resolve, reject, timer, subject });
      try {
        this.nc.publish(subject, data, { reply: this.prefix + token, ...(headers ? { headers } : {}) });
      } catch (err) {
        this.pending.delete(token);
        clearTimeout(timer);
        reject(err as Error);
      }
    });
  }

  close(): void {
    this.sub.unsubscribe();
    this.failAll(new BusError('closed', 'the bus is closed'));
  }

  private failAll(err: BusError): void {
    for (const p of this.pending.values()) {
      clearTimeout(p.timer);
      p.reject(err);
    }
    this.pending.clear();
  }
}
