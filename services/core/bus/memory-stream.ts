// In-process streams and durable consumer state: storage with dedup, max age and max bytes, work-queue removal,
// and per-durable delivery (ack wait and nak timers, redelivery first, maxDeliver, maxAckPending).

import type { TimerSet } from './async-queue.js';
import { BusError } from './errors.js';
import type { ConsumerConfig, ConsumerState, Headers, PublishAck, PublishOptions, StreamConfig, StreamState } from './types.js';
import { MSG_ID_HEADER, subjectMatches, subjectsOverlap } from './validate.js';

export interface StoredMessage {
  seq: number;
  subject: string;
  data: Uint8Array;
  headers: Headers;
  time: number;
}

/** A message handed out by a consumer, with the delivery count it went out with. */
export interface Delivery {
  msg: StoredMessage;
  count: number;
}

/** A message's size as max bytes counts it: payload, subject and headers. */
function storedSize(m: StoredMessage): number {
  let n = m.data.byteLength + m.subject.length;
  for (const [k, v] of Object.entries(m.headers)) n += k.length + v.length;
  return n;
}

export class MemStream {
  readonly messages = new Map<number, StoredMessage>(); // insertion order is seq order
  readonly consumers = new Map<string, ConsumerCore>();
  private readonly dedup = new Map<string, { seq: number; time: number }>();
  private last = 0;
  private bytes = 0;

  constructor(
    public config: StreamConfig,
    readonly timers: TimerSet,
  ) {}

  get lastSeq(): number {
    return this.last;
  }

  captures(subject: string): boolean {
    return this.config.subjects.some((p) => subjectMatches(p, subject));
  }

  publish(subject: string, data: Uint8Array, opts: PublishOptions): PublishAck {
    const now = Date.now();
    this.prune(now);
    if (opts.msgId !== undefined) {
      const seen = this.dedup.get(opts.msgId);
      if (seen) return { seq: seen.seq, duplicate: true };
    }
    const seq = ++this.last;
    const headers = { ...opts.headers, ...(opts.msgId === undefined ? {} : { [MSG_ID_HEADER]: opts.msgId }) };
    const msg: StoredMessage = { seq, subject, data: new Uint8Array(data), headers, time: now };
    this.messages.set(seq, msg);
    this.bytes += storedSize(msg);
    if (opts.msgId !== undefined) this.dedup.set(opts.msgId, { seq, time: now });
    this.prune(now);
    for (const c of this.consumers.values()) c.onPublish(msg);
    return { seq, duplicate: false };
  }

  /** Drops messages past max age, the oldest beyond max bytes, and msgIds past the duplicate window. */
  prune(now = Date.now()): void {
    const { maxAgeMs, maxBytes, duplicateWindowMs } = this.config;
    if (maxAgeMs !== undefined) {
      for (const m of this.messages.values()) {
        if (now - m.time < maxAgeMs) break;
        this.remove(m.seq);
      }
    }
    if (maxBytes !== undefined) {
      for (const m of this.messages.values()) {
        if (this.bytes <= maxBytes) break;
        this.remove(m.seq);
      }
    }
    for (const [id, d] of this.dedup) {
      if (now - d.time < duplicateWindowMs) break;
      this.dedup.delete(id);
    }
  }

  /** Work-queue retention: an acked or termed message leaves the stream. */
  settled(seq: number): void {
    if (this.config.retention === 'workqueue') this.remove(seq);
  }

  private remove(seq: number): void {
    const m = this.messages.get(seq);
    if (!m) return;
    this.messages.delete(seq);
    this.bytes -= storedSize(m);
  }

  state(): StreamState {
    this.prune();
    const first = this.messages.keys().next();
    const firstSeq = first.done ? (this.last === 0 ? 0 : this.last + 1) : first.value;
    return { name: this.config.name, messages: this.messages.size, firstSeq, lastSeq: this.last, consumers: this.consumers.size };
  }

  /** The consumer state for a durable, created or updated from config. */
  bind(config: ConsumerConfig): ConsumerCore {
    const existing = this.consumers.get(config.durable);
    if (existing) {
      if ((existing.config.filterSubject ?? '>') !== (config.filterSubject ?? '>')) {
        throw new BusError('conflict', `consumer ${config.durable} exists with another filterSubject; delete it first`);
      }
      existing.reconfigure(config);
      return existing;
    }
    if (this.config.retention === 'workqueue') {
      for (const c of this.consumers.values()) {
        if (subjectsOverlap(c.config.filterSubject ?? '>', config.filterSubject ?? '>')) {
          throw new BusError('conflict', `work-queue stream ${this.config.name} already has consumer ${c.config.durable} with an overlapping filter`);
        }
      }
    }
    const core = new ConsumerCore(this, config);
    this.consumers.set(config.durable, core);
    return core;
  }

  /** Ends every consumer: waiting pulls reject with `code`. */
  destroy(code: 'not_found' | 'closed'): void {
    for (const c of this.consumers.values()) c.destroy(code);
    this.consumers.clear();
  }
}

interface PendingEntry {
  count: number;
  ready: boolean;
  cancelTimer?: () => void;
}

interface Waiter {
  resolve: (d: Delivery | null) => void;
  reject: (e: unknown) => void;
  cancelTimer: () => void;
}

/** One durable's progress; shared by every handle bound to that durable. */
export class ConsumerCore {
  private cursor: number;
  private readonly pending = new Map<number, PendingEntry>();
  private readonly ready: number[] = []; // seqs due for redelivery, ascending
  private readonly waiters: Waiter[] = [];
  private ended: 'not_found' | 'closed' | null = null;

  constructor(
    private readonly stream: MemStream,
    public config: ConsumerConfig,
  ) {
    this.cursor = stream.state().firstSeq || 1;
  }

  /** New ack wait, max deliver and max ack pending; they apply from the next delivery. */
  reconfigure(config: ConsumerConfig): void {
    this.config = config;
    this.wake();
  }

  isEnded(): boolean {
    return this.ended !== null;
  }

  info(): ConsumerState {
    this.stream.prune();
    let pending = 0;
    for (const m of this.stream.messages.values()) {
      if (m.seq >= this.cursor && this.matches(m)) pending++;
    }
    return { pending, ackPending: this.pending.size };
  }

  /** Resolves the next delivery, or null after `expiresMs` or when `signal` aborts. */
  next(expiresMs: number, signal?: AbortSignal): Promise<Delivery | null> {
    if (this.ended) return Promise.reject(endedError(this.ended));
    const now = this.take();
    if (now || signal?.aborted) return Promise.resolve(now ?? null);
    return new Promise((resolve, reject) => {
      const waiter: Waiter = {
        resolve: (d) => {
          waiter.cancelTimer();
          signal?.removeEventListener('abort', onAbort);
          resolve(d);
        },
        reject,
        cancelTimer: () => {},
      };
      const drop = (): void => {
        const i = this.waiters.indexOf(waiter);
        if (i >= 0) this.waiters.splice(i, 1);
        waiter.resolve(null);
      };
      const onAbort = (): void => drop();
      waiter.cancelTimer = this.stream.timers.set(expiresMs, drop);
      signal?.addEventListener('abort', onAbort, { once: true });
      this.waiters.push(waiter);
    });
  }

  ack(seq: number): void {
    if (!this.forget(seq)) return;
    this.stream.settled(seq);
    this.wake();
  }

  term(seq: number): void {
    this.ack(seq);
  }

  nak(seq: number, delayMs: number): void {
    const p = this.pending.get(seq);
    if (!p || p.ready || this.ended) return;
    p.cancelTimer?.();
    if (p.count >= this.config.maxDeliver) {
      this.forget(seq);
      this.wake();
    } else if (delayMs > 0) {
      p.cancelTimer = this.stream.timers.set(delayMs, () => this.makeReady(seq));
    } else {
      this.makeReady(seq);
    }
  }

  working(seq: number): void {
    const p = this.pending.get(seq);
    if (!p || p.ready || this.ended) return;
    p.cancelTimer?.();
    p.cancelTimer = this.stream.timers.set(this.config.ackWaitMs, () => this.expire(seq));
  }

  onPublish(msg: StoredMessage): void {
    if (this.waiters.length > 0 && this.matches(msg)) this.wake();
  }

  destroy(code: 'not_found' | 'closed'): void {
    if (this.ended) return;
    this.ended = code;
    for (const p of this.pending.values()) p.cancelTimer?.();
    this.pending.clear();
    for (const w of this.waiters.splice(0)) {
      w.cancelTimer();
      w.reject(endedError(code));
    }
  }

  private matches(m: StoredMessage): boolean {
    return this.config.filterSubject === undefined || subjectMatches(this.config.filterSubject, m.subject);
  }

  /** The next delivery available now: a due redelivery first, then a new message if allowed. */
  private take(): Delivery | undefined {
    this.stream.prune();
    while (this.ready.length > 0) {
      const seq = this.ready.shift() as number;
      const p = this.pending.get(seq);
      const msg = this.stream.messages.get(seq);
      if (!p) continue;
      if (!msg) {
        this.pending.delete(seq); // aged out while waiting
        continue;
      }
      p.count += 1;
      p.ready = false;
      p.cancelTimer = this.stream.timers.set(this.config.ackWaitMs, () => this.expire(seq));
      return { msg, count: p.count };
    }
    if (this.pending.size >= this.config.maxAckPending) return undefined;
    this.cursor = Math.max(this.cursor, this.stream.state().firstSeq);
    while (this.cursor <= this.stream.lastSeq) {
      const seq = this.cursor++;
      const msg = this.stream.messages.get(seq);
      if (!msg || !this.matches(msg)) continue;
      const entry: PendingEntry = { count: 1, ready: false };
      entry.cancelTimer = this.stream.timers.set(this.config.ackWaitMs, () => this.expire(seq));
      this.pending.set(seq, entry);
      return { msg, count: 1 };
    }
    return undefined;
  }

  private wake(): void {
    while (this.waiters.length > 0) {
      const d = this.take();
      if (!d) return;
      (this.waiters.shift() as Waiter).resolve(d);
    }
  }

  /** Ack wait passed: redeliver, or give up once maxDeliver deliveries were made. */
  private expire(seq: number): void {
    const p = this.pending.get(seq);
    if (!p) return;
    p.cancelTimer = undefined;
    if (p.count >= this.config.maxDeliver) {
      this.pending.delete(seq);
      this.wake();
    } else {
      this.makeReady(seq);
    }
  }

  private makeReady(seq: number): void {
    const p = this.pending.get(seq);
    if (!p || p.ready) return;
    p.cancelTimer = undefined;
    p.ready = true;
    const at = this.ready.findIndex((s) => s > seq);
    this.ready.splice(at < 0 ? this.ready.length : at, 0, seq);
    this.wake();
  }

  private forget(seq: number): boolean {
    const p = this.pending.get(seq);
    if (!p) return false;
    p.cancelTimer?.();
    this.pending.delete(seq);
    if (p.ready) this.ready.splice(this.ready.indexOf(seq), 1);
    return true;
  }
}

function endedError(code: 'not_found' | 'closed'): BusError {
  return code === 'closed' ? new BusError('closed', 'the bus is closed') : new BusError('not_found', 'the consumer or its stream was deleted');
}
