// The in-process bus, the embedded default on a laptop: streams, durable consumers, KV, objects and
// request-reply in one process, with the same semantics as the NATS bus (conformance.ts checks).

import { TimerSet } from './async-queue.js';
import { BusError } from './errors.js';
import { MemConsumer } from './memory-consumer.js';
import { MemKv } from './memory-kv.js';
import { MemObjects } from './memory-objects.js';
import { MemStream } from './memory-stream.js';
import { checkReply, copyHeaders, HandlerTracker, runHandler } from './request-reply.js';
import type {
  Bus,
  Consumer,
  ConsumerConfig,
  InboundMessage,
  KvBucket,
  KvOptions,
  ObjectStore,
  PublishAck,
  PublishOptions,
  Reply,
  RequestHandler,
  RequestOptions,
  StreamConfig,
  StreamMessage,
  StreamState,
  SubscribeOptions,
  Subscription,
} from './types.js';
import {
  checkConsumerConfig,
  checkHeaders,
  checkName,
  checkStreamConfig,
  checkSubject,
  checkTimeout,
  subjectMatches,
  subjectsOverlap,
} from './validate.js';

/** Subjects whose routes are kept; past this the table starts over (request subjects are few in practice). */
const MAX_ROUTES = 10_000;

interface MemSub {
  subject: string;
  queue: string | undefined;
  handler: RequestHandler;
  tracker: HandlerTracker;
}

/** Creates an in-process bus. Everything lives until close(); nothing is persisted. */
export function createMemoryBus(): Bus {
  return new MemoryBus();
}

class MemoryBus implements Bus {
  readonly maxPayload = Number.POSITIVE_INFINITY;
  readonly kind = 'memory' as const;
  private readonly timers = new TimerSet();
  private readonly streams = new Map<string, MemStream>();
  private readonly buckets = new Map<string, MemKv>();
  private readonly stores = new Map<string, MemObjects>();
  private readonly subs = new Set<MemSub>();
  private readonly queueTurn = new Map<string, number>();
  /** Subscriptions matching a subject, by subject, grouped as route() needs them; cleared when subscriptions change. */
  private readonly routes = new Map<string, { plain: MemSub[]; groups: [string, MemSub[]][] }>();
  private readonly inflight = new Set<() => void>(); // pending requests, rejected on close
  private closing: Promise<void> | null = null;

  private readonly assertOpen = (): void => {
    if (this.closing) throw new BusError('closed', 'the bus is closed');
  };

  async ensureStream(config: StreamConfig): Promise<StreamState> {
    this.assertOpen();
    checkStreamConfig(config);
    const cfg: StreamConfig = { ...config, subjects: [...config.subjects] };
    for (const other of this.streams.values()) {
      if (other.config.name === cfg.name) continue;
      const clash = other.config.subjects.find((a) => cfg.subjects.some((b) => subjectsOverlap(a, b)));
      if (clash) throw new BusError('conflict', `subjects of stream ${cfg.name} overlap ${clash} of stream ${other.config.name}`);
    }
    const existing = this.streams.get(cfg.name);
    if (!existing) {
      const s = new MemStream(cfg, this.timers);
      this.streams.set(cfg.name, s);
      return s.state();
    }
    if (existing.config.retention !== cfg.retention) {
      throw new BusError('conflict', `stream ${cfg.name} exists with retention ${existing.config.retention}; retention cannot change`);
    }
    existing.config = cfg;
    return existing.state();
  }

  async streamInfo(name: string): Promise<StreamState> {
    return this.stream(name).state();
  }

  async deleteStream(name: string): Promise<boolean> {
    this.assertOpen();
    checkName('stream', name);
    const s = this.streams.get(name);
    if (!s) return false;
    this.streams.delete(name);
    s.destroy('not_found');
    return true;
  }

  async publish(subject: string, data: Uint8Array, opts: PublishOptions = {}): Promise<PublishAck> {
    this.assertOpen();
    checkSubject(subject, false);
    checkHeaders(opts.headers);
    for (const s of this.streams.values()) {
      if (s.captures(subject)) return s.publish(subject, data, opts);
    }
    throw new BusError('not_found', `no stream captures subject ${subject}`);
  }

  async lastMessage(stream: string, subject: string): Promise<StreamMessage | null> {
    this.assertOpen();
    checkName('stream', stream);
    checkSubject(subject, false);
    const s = this.stream(stream);
    s.prune();
    let last: StreamMessage | null = null;
    for (const m of s.messages.values()) {
      if (m.subject === subject) last = { subject, data: new Uint8Array(m.data), headers: copyHeaders(m.headers), seq: m.seq, storedAt: new Date(m.time) };
    }
    return last;
  }

  async consumer(config: ConsumerConfig): Promise<Consumer> {
    this.assertOpen();
    checkConsumerConfig(config);
    this.stream(config.stream).bind({ ...config });
    const { stream, durable } = config;
    const lookup = () => {
      const core = this.stream(stream).consumers.get(durable);
      if (!core) throw new BusError('not_found', `consumer ${durable} of stream ${stream} does not exist`);
      return core;
    };
    const remove = () => {
      const s = this.stream(stream);
      const core = s.consumers.get(durable);
      if (!core) return false;
      s.consumers.delete(durable);
      core.destroy('not_found');
      return true;
    };
    return new MemConsumer(stream, durable, lookup, remove);
  }

  async kv(bucket: string, opts: KvOptions = {}): Promise<KvBucket> {
    this.assertOpen();
    checkName('bucket', bucket);
    if (opts.ttlMs !== undefined) checkTimeout('ttlMs', opts.ttlMs);
    let b = this.buckets.get(bucket);
    if (!b) {
      b = new MemKv(bucket, { ...opts }, this.assertOpen);
      this.buckets.set(bucket, b);
    }
    return b;
  }

  async objects(bucket: string): Promise<ObjectStore> {
    this.assertOpen();
    checkName('bucket', bucket);
    let s = this.stores.get(bucket);
    if (!s) {
      s = new MemObjects(bucket, this.assertOpen);
      this.stores.set(bucket, s);
    }
    return s;
  }

  async request(subject: string, data: Uint8Array, opts: RequestOptions): Promise<Reply> {
    this.assertOpen();
    checkSubject(subject, false);
    checkHeaders(opts.headers);
    checkTimeout('timeoutMs', opts.timeoutMs);
    const targets = this.route(subject);
    if (targets.length === 0) throw new BusError('no_responders', `no responders on ${subject}`);
    const reply = await new Promise<Reply>((resolve, reject) => {
      let settled = false;
      const finish = (fn: () => void): void => {
        if (settled) return;
        settled = true;
        cancel();
        this.inflight.delete(onClose);
        fn();
      };
      const onClose = (): void => finish(() => reject(new BusError('closed', 'the bus closed before the reply came')));
      const cancel = this.timers.set(opts.timeoutMs, () =>
        finish(() => reject(new BusError('timeout', `no reply on ${subject} within ${opts.timeoutMs} ms`))),
      );
      this.inflight.add(onClose);
      for (const sub of targets) {
        const msg: InboundMessage = { subject, data: new Uint8Array(data), headers: copyHeaders(opts.headers), expectsReply: true };
        const run = Promise.resolve()
          .then(() => runHandler(sub.handler, msg))
          .then((r) => {
            if (r === undefined) return;
            const out = { data: new Uint8Array(r.data ?? new Uint8Array(0)), headers: copyHeaders(r.headers) };
            finish(() => resolve(out));
          });
        sub.tracker.track(run);
      }
    });
    return checkReply(subject, reply);
  }

  async subscribe(subject: string, opts: SubscribeOptions, handler: RequestHandler): Promise<Subscription> {
    this.assertOpen();
    checkSubject(subject, true);
    if (opts.queue !== undefined) checkSubject(opts.queue, false);
    const sub: MemSub = { subject, queue: opts.queue, handler, tracker: new HandlerTracker() };
    this.subs.add(sub);
    this.routes.clear();
    return {
      subject,
      close: async () => {
        this.subs.delete(sub);
        this.routes.clear();
        await sub.tracker.drain();
      },
    };
  }

  close(): Promise<void> {
    this.closing ??= (async () => {
      this.timers.clear();
      for (const reject of [...this.inflight]) reject();
      for (const s of this.streams.values()) s.destroy('closed');
      for (const b of this.buckets.values()) b.close();
      const subs = [...this.subs];
      this.subs.clear();
      this.routes.clear();
      await Promise.all(subs.map((s) => s.tracker.drain()));
    })();
    return this.closing;
  }

  private stream(name: string): MemStream {
    this.assertOpen();
    checkName('stream', name);
    const s = this.streams.get(name);
    if (!s) throw new BusError('not_found', `stream ${name} does not exist`);
    return s;
  }

  /** Every plain subscriber, plus one member (in turn) of each queue group. */
  private route(subject: string): MemSub[] {
    let r = this.routes.get(subject);
    if (!r) {
      const plainSubs: MemSub[] = [];
      const byQueue = new Map<string, MemSub[]>();
      for (const s of this.subs) {
        if (!subjectMatches(s.subject, subject)) continue;
        if (s.queue === undefined) plainSubs.push(s);
        else byQueue.set(s.queue, [...(byQueue.get(s.queue) ?? []), s]);
      }
      r = { plain: plainSubs, groups: [...byQueue] };
      if (this.routes.size >= MAX_ROUTES) this.routes.clear();
      this.routes.set(subject, r);
    }
    const plain = [...r.plain];
    for (const [queue, members] of r.groups) {
      const turn = this.queueTurn.get(queue) ?? 0;
      this.queueTurn.set(queue, turn + 1);
      plain.push(members[turn % members.length] as MemSub);
    }
    return plain;
  }
}
