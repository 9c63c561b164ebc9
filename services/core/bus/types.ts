// The message bus contract: streams, durable pull consumers, KV, object store and request-reply.
// Implemented in-process (memory.ts) and over NATS JetStream (nats.ts); conformance.ts checks both.

/** Message headers: one value per key, keys kept exactly as written (case-sensitive). */
export type Headers = Readonly<Record<string, string>>;

/** The factory for every part of the bus. Every method rejects with BusError('closed') after close(). */
export interface Bus {
  /** Which implementation this is. */
  readonly kind: 'memory' | 'nats';
  /** The largest message the bus carries, in bytes (NATS: the server's max_payload; memory: unbounded). */
  readonly maxPayload: number;

  /**
   * Creates the stream, or updates subjects, duplicate window and max age of an existing one.
   * Fails with 'conflict' when the stream exists with another retention or its subjects overlap
   * another stream's; with 'invalid' for a bad name, subject or window.
   */
  ensureStream(config: StreamConfig): Promise<StreamState>;
  /** The stream's current counts. Fails with 'not_found'. */
  streamInfo(name: string): Promise<StreamState>;
  /** Deletes the stream with its messages and consumers. Resolves false when it did not exist. */
  deleteStream(name: string): Promise<boolean>;

  /**
   * Stores a message in the stream whose subjects capture `subject`, once the store confirmed it.
   * With `msgId`, a second publish of the same id within the stream's duplicate window is not stored
   * again and resolves `{ duplicate: true }` with the first message's seq.
   * Fails with 'not_found' when no stream captures the subject, 'invalid' for a wildcard subject or
   * bad header, 'timeout'/'unavailable' (retryable: publish again with the same msgId).
   */
  publish(subject: string, data: Uint8Array, opts?: PublishOptions): Promise<PublishAck>;

  /**
   * The newest message stored in `stream` on exactly `subject` (no wildcards), or null when the
   * stream holds none there (never published, or removed by max age or a work-queue ack). Reads
   * without a consumer, so it changes no delivery state.
   * Fails with 'not_found' when the stream does not exist, 'invalid' for a bad name or subject.
   */
  lastMessage(stream: string, subject: string): Promise<StreamMessage | null>;

  /**
   * Creates or binds the durable pull consumer `durable` on `stream`, updating its ack wait, max
   * deliver and max ack pending when they changed. Its progress (acks, delivery counts) lives with
   * the stream: a new handle on the same durable, from any process, resumes there.
   * Fails with 'not_found' (no stream), 'conflict' (the durable exists with another filterSubject,
   * or a work-queue stream already has a consumer whose filter overlaps), 'invalid'.
   */
  consumer(config: ConsumerConfig): Promise<Consumer>;

  /** Opens the KV bucket, creating it when absent (options apply only at creation). */
  kv(bucket: string, opts?: KvOptions): Promise<KvBucket>;
  /** Opens the object store bucket, creating it when absent. */
  objects(bucket: string): Promise<ObjectStore>;

  /**
   * Sends a request and waits for the first reply. Fails with 'no_responders' at once when nobody
   * subscribes to the subject, 'timeout' after `timeoutMs`, 'handler_failed' when the responder's
   * handler threw (its message is in the error), 'invalid' for a bad subject or header.
   */
  request(subject: string, data: Uint8Array, opts: RequestOptions): Promise<Reply>;

  /**
   * Subscribes `handler` to `subject` (wildcards allowed). Within one `queue` group each message
   * goes to one member only; every plain subscriber gets its own copy. Handlers run concurrently.
   * What the handler returns is the reply (when the message asked for one; `undefined` sends none,
   * so the requester times out); when it throws, the requester gets BusError('handler_failed').
   * Resolves once the server knows the interest, so a request sent afterwards reaches it.
   */
  subscribe(subject: string, opts: SubscribeOptions, handler: RequestHandler): Promise<Subscription>;

  /**
   * Ends consumer iterations and pending pulls ('closed'), closes subscriptions after their running
   * handlers finish, clears timers, closes the connection. Safe to call twice.
   */
  close(): Promise<void>;
}

// ---- streams -------------------------------------------------------------------------------

export interface StreamConfig {
  /** Stream name: letters, digits, '-' and '_'. */
  name: string;
  /** Subjects captured (wildcards '*' and '>' allowed); must not overlap another stream's. */
  subjects: string[];
  /** 'workqueue': a message is removed once acked or termed; 'limits': kept until maxAgeMs. */
  retention: 'workqueue' | 'limits';
  /** How long a msgId is remembered for deduplication. > 0, and ≤ maxAgeMs when that is set. */
  duplicateWindowMs: number;
  /** Messages older than this are removed. Absent: kept forever. */
  maxAgeMs?: number;
  /** When the stored messages pass this size, the oldest are removed (bytes). Absent: no bound. */
  maxBytes?: number;
}

export interface StreamState {
  name: string;
  /** Messages currently stored. */
  messages: number;
  /** Sequence of the oldest stored message (0 when empty and never written). */
  firstSeq: number;
  /** Sequence of the newest message ever stored (0 when never written). */
  lastSeq: number;
  /** Durable consumers on the stream. */
  consumers: number;
}

export interface PublishOptions {
  /** Deduplication id (JetStream's Nats-Msg-Id; carried as that header). */
  msgId?: string;
  headers?: Headers;
}

/** A stored message read directly from its stream (lastMessage). */
export interface StreamMessage {
  readonly subject: string;
  readonly data: Uint8Array;
  readonly headers: Headers;
  /** Stream sequence. */
  readonly seq: number;
  /** When the stream stored it. */
  readonly storedAt: Date;
}

export interface PublishAck {
  /** The message's stream sequence (the first copy's when duplicate). */
  seq: number;
  /** True when msgId was seen within the duplicate window and nothing was stored. */
  duplicate: boolean;
}

// ---- consumers ------------------------------------------------------------------------------

export interface ConsumerConfig {
  stream: string;
  /** Durable name: letters, digits, '-' and '_'. */
  durable: string;
  /** Only messages whose subject matches (wildcards allowed). Absent: all of the stream's. */
  filterSubject?: string;
  /** A delivered message not acked, naked or termed within this time is delivered again. */
  ackWaitMs: number;
  /** Deliveries per message, after which it is no longer delivered (stays in the stream). ≥ 1. */
  maxDeliver: number;
  /** New messages are held back while this many delivered messages await an end. ≥ 1. */
  maxAckPending: number;
}

export interface NextOptions {
  /**
   * How long to wait for a message. Default 30 000; values below 1 000 are raised to 1 000
   * (JetStream's minimum pull expiry, kept by both implementations so they behave alike).
   */
  expiresMs?: number;
}

export interface ConsumeOptions extends NextOptions {
  /**
   * Messages pulled per round trip from NATS (default 1; the in-process bus hands them out one at
   * a time). Pulled messages count as delivered at once and their ack wait runs while they wait in
   * the buffer; any still buffered when the iteration stops are redelivered after their ack wait.
   */
  batch?: number;
}

export interface ConsumerState {
  /** Messages matching the filter not yet delivered. */
  pending: number;
  /** Delivered messages awaiting ack (including those waiting for redelivery). */
  ackPending: number;
}

/**
 * A handle on a durable pull consumer. Redelivery: a message is delivered again when its ack wait
 * passes without an end, or after the delay of `nak(delay)`, until it was delivered `maxDeliver`
 * times; redeliveries go before new messages. Delivery is at least once: handlers must be
 * idempotent (after a crash the server may redeliver even acked messages).
 */
export interface Consumer {
  readonly stream: string;
  readonly durable: string;
  /**
   * The next message, or null when none arrived within `expiresMs`.
   * Fails with 'not_found' (consumer or stream deleted), 'closed', 'unavailable' (retryable).
   */
  next(opts?: NextOptions): Promise<BusMessage | null>;
  /**
   * Messages as they come, until `stop()` (or `break`) or the bus closes. Transient failures
   * (lost connection) are retried with backoff; the iteration throws BusError only for permanent
   * ones ('not_found' when the consumer or stream was deleted).
   */
  consume(opts?: ConsumeOptions): MessageStream;
  /** Counts as the server sees them. Fails with 'not_found'. */
  info(): Promise<ConsumerState>;
  /** Deletes the durable and its progress. Resolves false when it did not exist. */
  delete(): Promise<boolean>;
}

/** An async iteration over a consumer's messages. */
export interface MessageStream extends AsyncIterable<BusMessage> {
  /** Ends the iteration (pending `next` resolves done). Safe to call twice. */
  stop(): void;
}

/**
 * One delivery of a stored message. Exactly one of ack/nak/term should end it; calls after the first
 * end are ignored. Ends are sent without waiting (a lost ack means a redelivery, never a loss);
 * use `ackSync` where the caller must know the ack was recorded.
 */
export interface BusMessage {
  readonly subject: string;
  readonly data: Uint8Array;
  readonly headers: Headers;
  /** Stream sequence: stable across redeliveries. */
  readonly seq: number;
  /** 1 on first delivery, then 2, 3, … (at most the consumer's maxDeliver). */
  readonly deliveryCount: number;
  /** deliveryCount > 1. */
  readonly redelivered: boolean;
  /** Processing succeeded; never deliver again (a work-queue stream removes the message). */
  ack(): void;
  /** Like ack, resolving once the server recorded it. Fails with 'timeout' or 'closed'. */
  ackSync(): Promise<void>;
  /** Processing failed; deliver again after `delayMs` (default: at once). */
  nak(delayMs?: number): void;
  /** Never deliver again (a work-queue stream removes it). `reason` is informational. */
  term(reason?: string): void;
  /** Still processing: restarts the ack wait. Call well within ackWaitMs for long work. */
  working(): void;
}

// ---- KV -------------------------------------------------------------------------------------

export interface KvOptions {
  /** Entries expire this long after their last write. Absent: never. */
  ttlMs?: number;
  /** Revisions kept per key (1–64, default 1). Only the NATS store keeps more than the latest. */
  history?: number;
}

export interface KvEntry {
  key: string;
  value: Uint8Array;
  /** Bucket-wide, increasing with every write; the token for `update`'s compare-and-set. */
  revision: number;
  createdAt: Date;
}

export interface KvChange {
  key: string;
  operation: 'put' | 'delete';
  /** The new value; empty for a delete. */
  value: Uint8Array;
  revision: number;
}

export interface KvWatchOptions {
  /** Keys to watch ('*' and '>' wildcards allowed). Default: all. */
  key?: string;
  /** Skip the current values and report only later changes. Default false. */
  updatesOnly?: boolean;
}

/** An async iteration over KV changes; ends on `stop()` or when the bus closes. */
export interface KvWatch extends AsyncIterable<KvChange> {
  stop(): void;
}

/**
 * A KV bucket. Keys: letters, digits and `-/_=.` (not starting or ending with '.');
 * a bad key fails with 'invalid'.
 */
export interface KvBucket {
  readonly bucket: string;
  /** The live entry, or null when absent, deleted or expired. */
  get(key: string): Promise<KvEntry | null>;
  /** Writes unconditionally; resolves the new revision. */
  put(key: string, value: Uint8Array): Promise<number>;
  /** Writes only when the key has no live value. Fails with 'conflict' otherwise. */
  create(key: string, value: Uint8Array): Promise<number>;
  /** Writes only when the key's current revision is `revision`. Fails with 'conflict' otherwise. */
  update(key: string, value: Uint8Array, revision: number): Promise<number>;
  /** Deletes (idempotent). With `revision`, only when it is current, else 'conflict'. */
  delete(key: string, opts?: { revision?: number }): Promise<void>;
  /** Keys with a live value, in no particular order. */
  keys(): Promise<string[]>;
  /**
   * Changes to matching keys: first the current entry of each (deleted keys as 'delete'), unless
   * `updatesOnly`, then every later put and delete. Resolves once the watch is in place.
   */
  watch(opts?: KvWatchOptions): Promise<KvWatch>;
}

// ---- object store -------------------------------------------------------------------------------

export interface ObjectInfo {
  name: string;
  size: number;
  /** 'SHA-256=' followed by the padded base64url SHA-256 of the content (as NATS writes it). */
  digest: string;
  modifiedAt: Date;
  description?: string;
}

/** Bytes, or a stream of chunks (a Node Readable, an async generator, a web ReadableStream). */
export type ObjectSource = Uint8Array | AsyncIterable<Uint8Array>;

/** An object store bucket: named blobs of any size, chunked by the implementation. */
export interface ObjectStore {
  readonly bucket: string;
  /** Stores (or replaces) the object. Fails with 'invalid' for an empty name. */
  put(name: string, source: ObjectSource, opts?: { description?: string }): Promise<ObjectInfo>;
  /** The whole content, or null when absent. Fails with 'internal' on a digest mismatch. */
  get(name: string): Promise<Uint8Array | null>;
  /** The object's info, or null when absent. */
  info(name: string): Promise<ObjectInfo | null>;
  /** Removes the object; resolves false when it did not exist. */
  delete(name: string): Promise<boolean>;
  /** Every live object's info. */
  list(): Promise<ObjectInfo[]>;
}

// ---- request-reply --------------------------------------------------------------------------------

export interface RequestOptions {
  /** How long to wait for the reply. > 0. */
  timeoutMs: number;
  headers?: Headers;
}

export interface Reply {
  data: Uint8Array;
  headers: Headers;
}

/** A message as a subscriber sees it. */
export interface InboundMessage {
  readonly subject: string;
  readonly data: Uint8Array;
  readonly headers: Headers;
  /** True when the sender waits for a reply. */
  readonly expectsReply: boolean;
}

export interface SubscribeOptions {
  /** Queue group: each message goes to one member of the group. */
  queue?: string;
}

/** What a handler answers: the reply body and optional headers. */
export interface ReplyPayload {
  data?: Uint8Array;
  headers?: Headers;
}

export type RequestHandler = (msg: InboundMessage) => ReplyPayload | undefined | Promise<ReplyPayload | undefined>;

export interface Subscription {
  readonly subject: string;
  /** Stops new deliveries and waits for running handlers. Safe to call twice. */
  close(): Promise<void>;
}
