// The NATS JetStream bus (nats.js 2.x): file-backed streams with a duplicate window, durable pull
// consumers, KV and object store views, and core request-reply with queue groups.

import {
  connect,
  Empty,
  nanos,
  NatsError,
  RetentionPolicy,
  StorageType,
  type JetStreamClient,
  type JetStreamManager,
  type NatsConnection,
  type StreamInfo,
} from 'nats';
import { BusError } from './errors.js';
import { bindConsumer } from './nats-consumer.js';
import { fromNats, fromNatsHeaders, natsErrorIs, toNatsHeaders } from './nats-errors.js';
import { NatsKv, NatsObjects } from './nats-kv.js';
import { NatsRequester } from './nats-requests.js';
import { checkReply, HandlerTracker, runHandler } from './request-reply.js';
import type {
  Bus,
  Consumer,
  ConsumerConfig,
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
import { checkConsumerConfig, checkHeaders, checkName, checkStreamConfig, checkSubject, checkTimeout } from './validate.js';

/** JetStream API err_code of a direct get that found no message (nats-server's errors.json). */
const NO_MESSAGE_FOUND = 10037;

export interface NatsBusOptions {
  /** Server URL(s): 'nats://host:port', or a comma-separated list for a cluster. */
  servers: string | string[];
  /** Connection name shown by the server's monitoring. */
  name?: string;
  /** How long the first connection may take. Default 5 000. */
  connectTimeoutMs?: number;
}

/**
 * Connects to NATS with JetStream. The connection reconnects forever (every ~250 ms, jittered);
 * calls made while it is down fail with retryable codes. Fails with BusError('unavailable') when
 * the first connection fails or JetStream is not enabled, 'invalid' for a bad URL.
 */
export async function connectNatsBus(opts: NatsBusOptions): Promise<Bus> {
  const servers = (Array.isArray(opts.servers) ? opts.servers : opts.servers.split(',')).map((s) => s.trim());
  for (const s of servers) {
    if (!/^(nats|tls):\/\/[^\s/]+\/?$/.test(s)) throw new BusError('invalid', `NATS server URL ${JSON.stringify(s)} must look like nats://host:port`);
  }
  let nc: NatsConnection;
  try {
    nc = await connect({
      servers,
      name: opts.name ?? 'parley',
      timeout: opts.connectTimeoutMs ?? 5_000,
      maxReconnectAttempts: -1,
      reconnectTimeWait: 250,
      reconnectJitter: 100,
    });
  } catch (err) {
    throw new BusError('unavailable', `cannot connect to NATS at ${servers.join(',')}: ${(err as Error).message}`, { cause: err });
  }
  try {
    return new NatsBus(nc, await nc.jetstreamManager(), nc.jetstream());
  } catch (err) {
    await nc.close();
    throw new BusError('unavailable', `JetStream is not available at ${servers.join(',')}`, { cause: err });
  }
}

class NatsBus implements Bus {
  /** The server's max_payload (1 MiB by default), from the connection's INFO. */
  get maxPayload(): number {
    return this.nc.info?.max_payload ?? 1024 * 1024;
  }
  readonly kind = 'nats' as const;
  private readonly stoppers = new Set<() => void>(); // running consume() loops and KV watches
  private readonly subs = new Set<Subscription>();
  private closing: Promise<void> | null = null;
  private requester: NatsRequester | undefined;

  private readonly assertOpen = (): void => {
    if (this.closing || this.nc.isClosed()) throw new BusError('closed', 'the bus is closed');
  };

  private readonly track = (stop: () => void): (() => void) => {
    this.stoppers.add(stop);
    return () => this.stoppers.delete(stop);
  };

  constructor(
    private readonly nc: NatsConnection,
    private readonly jsm: JetStreamManager,
    private readonly js: JetStreamClient,
  ) {}

  async ensureStream(config: StreamConfig): Promise<StreamState> {
    this.assertOpen();
    checkStreamConfig(config);
    const retention = config.retention === 'workqueue' ? RetentionPolicy.Workqueue : RetentionPolicy.Limits;
    const settings = {
      subjects: [...config.subjects],
      duplicate_window: nanos(config.duplicateWindowMs),
      max_age: nanos(config.maxAgeMs ?? 0),
      max_bytes: config.maxBytes ?? -1,
    };
    const ctx = `stream ${config.name}`;
    try {
      const existing = await this.jsm.streams.info(config.name).catch((err: unknown) => {
        if (natsErrorIs(err, 'not_found')) return null;
        throw err;
      });
      if (!existing) {
        return toState(await this.jsm.streams.add({ name: config.name, retention, storage: StorageType.File, num_replicas: 1, ...settings }));
      }
      if (existing.config.retention !== retention) {
        throw new BusError('conflict', `${ctx} exists with retention ${existing.config.retention}; retention cannot change`);
      }
      return toState(await this.jsm.streams.update(config.name, { ...existing.config, ...settings }));
    } catch (err) {
      throw fromNats(err, ctx);
    }
  }

  async streamInfo(name: string): Promise<StreamState> {
    this.assertOpen();
    checkName('stream', name);
    try {
      return toState(await this.jsm.streams.info(name));
    } catch (err) {
      throw fromNats(err, `stream ${name}`);
    }
  }

  async deleteStream(name: string): Promise<boolean> {
    this.assertOpen();
    checkName('stream', name);
    try {
      return await this.jsm.streams.delete(name);
    } catch (err) {
      if (natsErrorIs(err, 'not_found')) return false;
      throw fromNats(err, `deleting stream ${name}`);
    }
  }

  async publish(subject: string, data: Uint8Array, opts: PublishOptions = {}): Promise<PublishAck> {
    this.assertOpen();
    checkSubject(subject, false);
    checkHeaders(opts.headers);
    const headers = toNatsHeaders(opts.headers);
    try {
      const ack = await this.js.publish(subject, data, {
        ...(opts.msgId === undefined ? {} : { msgID: opts.msgId }),
        ...(headers ? { headers } : {}),
      });
      return { seq: ack.seq, duplicate: ack.duplicate };
    } catch (err) {
      const e = fromNats(err, `publishing to ${subject}`);
      if (e.code !== 'no_responders') throw e;
      // No stream answered: either none captures the subject, or JetStream is not ready yet.
      const owner = await this.jsm.streams.find(subject).catch(() => null);
      if (owner === null) throw new BusError('not_found', `no stream captures subject ${subject}`, { cause: err });
      throw new BusError('unavailable', `stream ${owner} did not answer a publish to ${subject}`, { cause: err });
    }
  }

  async lastMessage(stream: string, subject: string): Promise<StreamMessage | null> {
    this.assertOpen();
    checkName('stream', stream);
    checkSubject(subject, false);
    try {
      const m = await this.jsm.streams.getMessage(stream, { last_by_subj: subject });
      return { subject: m.subject, data: m.data, headers: fromNatsHeaders(m.header), seq: m.seq, storedAt: m.time };
    } catch (err) {
      // 'no message found' and 'stream not found' share a status: only the former is an empty answer.
      if (err instanceof NatsError && err.api_error?.err_code === NO_MESSAGE_FOUND) return null;
      throw fromNats(err, `last message on ${subject} in stream ${stream}`);
    }
  }

  async consumer(config: ConsumerConfig): Promise<Consumer> {
    this.assertOpen();
    checkConsumerConfig(config);
    const host = {
      js: this.js,
      jsm: this.jsm,
      assertOpen: this.assertOpen,
      track: this.track,
    };
    return bindConsumer(host, { ...config });
  }

  async kv(bucket: string, opts: KvOptions = {}): Promise<KvBucket> {
    this.assertOpen();
    checkName('bucket', bucket);
    if (opts.ttlMs !== undefined) checkTimeout('ttlMs', opts.ttlMs);
    try {
      const kv = await this.js.views.kv(bucket, {
        history: opts.history ?? 1,
        ...(opts.ttlMs === undefined ? {} : { ttl: opts.ttlMs }),
      });
      return new NatsKv(bucket, kv, this.assertOpen, this.track);
    } catch (err) {
      throw fromNats(err, `opening KV bucket ${bucket}`);
    }
  }

  async objects(bucket: string): Promise<ObjectStore> {
    this.assertOpen();
    checkName('bucket', bucket);
    try {
      return new NatsObjects(bucket, await this.js.views.os(bucket), this.assertOpen);
    } catch (err) {
      throw fromNats(err, `opening object store ${bucket}`);
    }
  }

  async request(subject: string, data: Uint8Array, opts: RequestOptions): Promise<Reply> {
    this.assertOpen();
    checkSubject(subject, false);
    checkHeaders(opts.headers);
    checkTimeout('timeoutMs', opts.timeoutMs);
    const headers = toNatsHeaders(opts.headers);
    let reply: Reply;
    try {
      this.requester ??= new NatsRequester(this.nc);
      const m = await this.requester.request(subject, data, opts.timeoutMs, headers);
      reply = { data: m.data, headers: fromNatsHeaders(m.headers) };
    } catch (err) {
      throw fromNats(err, `request to ${subject}`);
    }
    return checkReply(subject, reply);
  }

  async subscribe(subject: string, opts: SubscribeOptions, handler: RequestHandler): Promise<Subscription> {
    this.assertOpen();
    checkSubject(subject, true);
    if (opts.queue !== undefined) checkSubject(opts.queue, false);
    const tracker = new HandlerTracker();
    const sub = this.nc.subscribe(subject, {
      ...(opts.queue === undefined ? {} : { queue: opts.queue }),
      callback: (err, msg) => {
        if (err || tracker.closed) return;
        const inbound = { subject: msg.subject, data: msg.data, headers: fromNatsHeaders(msg.headers), expectsReply: Boolean(msg.reply) };
        const run = runHandler(handler, inbound).then((r) => {
          if (r === undefined || !msg.reply) return;
          const h = toNatsHeaders(r.headers);
          try {
            msg.respond(r.data ?? Empty, h ? { headers: h } : undefined);
          } catch {
            // the connection closed: the requester times out
          }
        });
        tracker.track(run);
      },
    });
    try {
      await this.nc.flush(); // the server now knows the interest
    } catch (err) {
      sub.unsubscribe();
      throw fromNats(err, `subscribing to ${subject}`);
    }
    const handle: Subscription = {
      subject,
      close: async () => {
        this.subs.delete(handle);
        if (!sub.isClosed()) sub.unsubscribe();
        await tracker.drain();
      },
    };
    this.subs.add(handle);
    return handle;
  }

  close(): Promise<void> {
    this.closing ??= (async () => {
      for (const stop of [...this.stoppers]) stop();
      this.stoppers.clear();
      await Promise.all([...this.subs].map((s) => s.close()));
      this.requester?.close();
      if (!this.nc.isClosed()) await this.nc.close();
    })();
    return this.closing;
  }
}

function toState(i: StreamInfo): StreamState {
  return {
    name: i.config.name,
    messages: i.state.messages,
    firstSeq: i.state.first_seq,
    lastSeq: i.state.last_seq,
    consumers: i.state.consumer_count,
  };
}
