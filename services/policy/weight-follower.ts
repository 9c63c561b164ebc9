// Weight sync for one policy replica: loads the newest published weights at start, then follows the
// run's weights_published events through the replica's own durable consumer, loading each newer
// version in order and reporting weights_loaded. The cluster's policy pods and the local run share it.

import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BusError, type Bus, type BusMessage, type Consumer, type MessageStream } from '../core/bus/index.js';
import { ParleyError, backoffDelay, runStreamConfigs, runSubjects, sleep, type Logger } from '../core/index.js';
import { parseWeightsPublished, untilWeightsPublished, weightsLoadedMsgId, type WeightsLoadedEvent, type WeightsPublishedEvent } from '../core/weights-events.js';
import type { PolicyMetrics } from './metrics.js';
import { WeightsFetcher, loadPath } from './weights-fetch.js';

/** idle → syncing (loading the newest version) → following → stopped. */
export type WeightFollowerState = 'idle' | 'syncing' | 'following' | 'stopped';

export interface WeightFollowerOptions {
  run: string;
  /** This replica's name (its pod name in a cluster); names its durable consumer and its weights_loaded events. */
  replica: string;
  /** Folder for object-store downloads. Default: <os tmpdir>/parley-weights/<run>/<replica>. */
  cacheDir?: string;
  /** Downloaded versions kept on disk (the newest). Default 2. */
  keepDownloads?: number;
  /** Redelivery after this long without an end; a running load extends it. Default 60 000 ms. */
  ackWaitMs?: number;
  /** start() waits for the learner's first weights_published instead of serving the initial weights when none is there. Default false. */
  awaitFirstPublish?: boolean;
  /** Backoff of retryable failures (full jitter, doubling): first cap and largest cap. Defaults 500 and 30 000 ms. */
  retryBaseMs?: number;
  retryMaxMs?: number;
}

/** What the follower needs of the replica's Policy: a local or remote Policy client fits. */
export interface PolicyWeightsPort {
  /** Policy.LoadWeights; rejects with ParleyError as the service does. */
  loadWeights(req: { version: bigint; uri: string; kind: string }): Promise<{ version: bigint }>;
  /** Policy.Info; only policyVersion is read. */
  info(req: Record<string, never>): Promise<{ policyVersion: bigint }>;
}

export interface WeightFollowerDeps {
  bus: Bus;
  /** The replica's Policy: the service behind a local client (createLocalClient), or a client of it. */
  policy: PolicyWeightsPort;
  logger?: Logger;
  metrics?: PolicyMetrics;
  random?: () => number;
}

/** The durable consumer name of a replica: `policy-<replica>` with what NATS refuses replaced by '_'. */
export function followerDurable(replica: string): string {
  return `policy-${replica.replace(/[^A-Za-z0-9_-]/g, '_')}`.slice(0, 128);
}

/** File-system errors of a download that may pass (a full disk, a busy or flaky mount). */
const TRANSIENT_FS = new Set(['ENOSPC', 'EIO', 'EAGAIN', 'EBUSY', 'EMFILE', 'ENFILE', 'ETIMEDOUT', 'ESTALE']);

function retryable(e: unknown): boolean {
  if (e instanceof BusError || e instanceof ParleyError) return e.retryable;
  const code = (e as { code?: unknown } | undefined)?.code;
  return typeof code === 'string' && TRANSIENT_FS.has(code);
}

const codeOf = (e: unknown): string => (e instanceof BusError ? e.code : ParleyError.from(e).code);

export class WeightFollower {
  private stateNow: WeightFollowerState = 'idle';
  private served = 0;
  /** Version 0 was loaded over the replica's fresh Init (WeightsPublishedEvent.replacesInit). */
  private loadedInitial = false;
  /** The last load this follower did, for weights_loaded reports of redelivered versions. */
  private lastLoad: { version: number; seconds: number; loadedAtMs: number } | undefined;
  private starting: Promise<void> | undefined;
  private stopping: Promise<void> | undefined;
  private readonly abort = new AbortController();
  private readonly fetcher: WeightsFetcher;
  private consumer: Consumer | undefined;
  private stream: MessageStream | undefined;
  private loop: Promise<void> | undefined;
  private readonly waiters = new Set<{ version: number; resolve: () => void }>();
  private readonly o: Required<Omit<WeightFollowerOptions, 'cacheDir'>> & { cacheDir: string };

  constructor(
    opts: WeightFollowerOptions,
    private readonly deps: WeightFollowerDeps,
  ) {
    runSubjects(opts.run); // throws for a run name that is not a DNS-1123 label
    if (opts.replica.trim() === '') throw new ParleyError('invalid_argument', 'replica: required (the pod name, or any name unique in the run)', { field: 'replica' });
    this.o = {
      keepDownloads: 2,
      ackWaitMs: 60_000,
      retryBaseMs: 500,
      retryMaxMs: 30_000,
      ...opts,
      awaitFirstPublish: opts.awaitFirstPublish ?? false,
      cacheDir: opts.cacheDir ?? join(tmpdir(), 'parley-weights', opts.run, followerDurable(opts.replica)),
    };
    this.fetcher = new WeightsFetcher(deps.bus, { cacheDir: this.o.cacheDir, keepDownloads: this.o.keepDownloads });
  }

  get state(): WeightFollowerState {
    return this.stateNow;
  }

  /** The version the replica serves, as this follower last saw it. */
  get version(): number {
    return this.served;
  }

  /**
   * Loads the newest published version, then follows later ones in the background. Resolves once the
   * replica serves the newest version (the replica is ready); safe to call twice. Retryable failures
   * (bus or backend unavailable) are retried with backoff until stop(). Rejects with ParleyError when
   * the newest version cannot be loaded for good (e.g. unimplemented for the backend, not_found), or
   * cancelled when stopped first; the follower is then stopped.
   */
  start(): Promise<void> {
    if (this.stopping && !this.starting) return Promise.reject(new ParleyError('cancelled', 'the weight follower is stopped'));
    this.starting ??= this.boot().catch(async (e: unknown) => {
      const stopped = this.abort.signal.aborted;
      await this.stop();
      if (stopped) throw new ParleyError('cancelled', 'the weight follower stopped while starting', { cause: e });
      throw e instanceof BusError ? new ParleyError(e.retryable ? 'unavailable' : 'internal', `weight follower: ${e.message}`, { cause: e }) : ParleyError.from(e);
    });
    return this.starting;
  }

  /**
   * Resolves once the replica serves `version` or newer. Rejects with ParleyError('deadline_exceeded')
   * after `timeoutMs`, or 'cancelled' when the follower stops first.
   */
  async waitForVersion(version: number, timeoutMs: number): Promise<void> {
    if (this.served >= version) return;
    if (this.stateNow === 'stopped') throw new ParleyError('cancelled', 'the weight follower is stopped');
    let waiter!: { version: number; resolve: () => void };
    const reached = new Promise<void>((resolve) => this.waiters.add((waiter = { version, resolve })));
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new ParleyError('deadline_exceeded', `replica ${this.o.replica} still serves version ${this.served} after ${timeoutMs} ms; waiting for ${version}`)), timeoutMs);
    });
    try {
      await Promise.race([reached, timeout]);
      if (this.served < version) throw new ParleyError('cancelled', 'the weight follower stopped');
    } finally {
      clearTimeout(timer);
      this.waiters.delete(waiter);
    }
  }

  /**
   * Stops following: the consumer loop ends after the message in hand (a load in progress finishes
   * first). With `deleteDurable`, the replica's durable consumer goes too (a pod name that is never
   * reused, as in a Deployment, would otherwise leave it behind). Safe to call twice.
   */
  stop(opts: { deleteDurable?: boolean } = {}): Promise<void> {
    this.stopping ??= (async () => {
      this.stateNow = 'stopped';
      this.abort.abort();
      this.stream?.stop();
      await this.loop;
      for (const w of this.waiters) w.resolve();
      if (opts.deleteDurable && this.consumer) {
        await this.consumer.delete().catch((e: unknown) => this.deps.logger?.warn({ err: e }, 'could not delete the weight follower durable'));
      }
    })();
    return this.stopping;
  }

  private async boot(): Promise<void> {
    this.stateNow = 'syncing';
    const s = runSubjects(this.o.run);
    await this.retrying('binding the events stream', async () => {
      await this.ensureEventsStream();
      this.setServed(Number((await this.deps.policy.info({})).policyVersion));
    });
    // The newest version comes from the events stream itself (the last weights_published message), not
    // from the learner's run-state KV: the event carries the uri, transport and kind a load needs, the
    // learner re-announces its latest weights at every start (deduplicated), and the durable consumer
    // then continues from the same stream, so one source decides both what to load first and what follows.
    await this.retrying('loading the newest published weights', async () => {
      if (this.o.awaitFirstPublish) {
        // The learner publishes version 0 once it starts (after a cold start, which may take minutes).
        this.deps.logger?.info({ run: this.o.run, replica: this.o.replica }, 'waiting for the learner to publish its first weights');
        await untilWeightsPublished(this.deps.bus, this.o.run, this.abort.signal);
      }
      const last = await this.deps.bus.lastMessage(s.eventsStream, s.weightsPublished);
      if (!last) return;
      let event: WeightsPublishedEvent;
      try {
        event = parseWeightsPublished(last.data);
      } catch (e) {
        this.deps.logger?.warn({ err: e, seq: last.seq }, 'the newest weights_published is malformed; following the stream instead');
        return;
      }
      if (event.run === this.o.run) await this.apply(event);
    });
    if (this.abort.signal.aborted) throw new ParleyError('cancelled', 'the weight follower stopped while starting');
    this.consumer = await this.deps.bus.consumer({
      stream: s.eventsStream,
      durable: followerDurable(this.o.replica),
      filterSubject: s.weightsPublished,
      ackWaitMs: this.o.ackWaitMs,
      // Retryable failures nak with backoff and must never exhaust a version; bad events are termed.
      maxDeliver: 1_000_000,
      // One at a time: versions load in stream order.
      maxAckPending: 1,
    });
    this.stream = this.consumer.consume({ expiresMs: 5_000 });
    this.stateNow = 'following';
    this.loop = this.follow(this.stream);
    this.deps.logger?.info({ run: this.o.run, replica: this.o.replica, version: this.served }, 'following published weights');
  }

  private async ensureEventsStream(): Promise<void> {
    const cfg = runStreamConfigs(this.o.run).events;
    try {
      await this.deps.bus.streamInfo(cfg.name);
      return;
    } catch (e) {
      if (!BusError.is(e, 'not_found')) throw e;
    }
    await this.deps.bus.ensureStream(cfg);
  }

  /** Runs `fn` until it succeeds, retrying retryable failures with backoff until stop(). */
  private async retrying(what: string, fn: () => Promise<void>): Promise<void> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await fn();
      } catch (e) {
        if (!retryable(e) || this.abort.signal.aborted) throw e;
        this.deps.metrics?.weightLoadFailures.inc({ code: codeOf(e) });
        const delay = backoffDelay(attempt, this.o.retryBaseMs, this.o.retryMaxMs, this.deps.random);
        this.deps.logger?.warn({ err: e, attempt, delayMs: delay }, `weight follower: ${what} failed; retrying`);
        await sleep(delay, this.abort.signal);
      }
    }
  }

  private async follow(stream: MessageStream): Promise<void> {
    try {
      for await (const msg of stream) await this.handle(msg);
    } catch (e) {
      // The stream or consumer was deleted, or the bus closed: weights stay as they are.
      if (this.stateNow !== 'stopped') this.deps.logger?.error({ err: e, replica: this.o.replica }, 'stopped following published weights');
    }
  }

  /** Ends every message: ack (loaded, already served or older), nak with backoff (retryable), term (bad event or a load that cannot succeed). */
  private async handle(msg: BusMessage): Promise<void> {
    let event: WeightsPublishedEvent;
    try {
      event = parseWeightsPublished(msg.data);
      if (event.run !== this.o.run) throw new ParleyError('invalid_argument', `weights_published.run: '${event.run}' on the subjects of run '${this.o.run}'`);
    } catch (e) {
      this.deps.logger?.warn({ err: e, seq: msg.seq }, 'terminating a malformed weights_published event');
      msg.term(`malformed weights_published: ${(e as Error).message}`);
      return;
    }
    const beat = setInterval(() => msg.working(), Math.max(250, Math.floor(this.o.ackWaitMs / 3)));
    try {
      await this.apply(event);
      msg.ack();
    } catch (e) {
      this.deps.metrics?.weightLoadFailures.inc({ code: codeOf(e) });
      if (retryable(e)) {
        const delay = backoffDelay(msg.deliveryCount, this.o.retryBaseMs, this.o.retryMaxMs, this.deps.random);
        this.deps.logger?.warn({ err: e, version: event.version, delivery: msg.deliveryCount, delayMs: delay }, 'could not load published weights; retrying');
        msg.nak(delay);
      } else {
        // Retrying cannot help (an unsupported kind, a missing folder): the replica keeps serving its version.
        this.deps.logger?.error({ err: e, version: event.version, uri: event.uri }, 'cannot load published weights; skipping this version');
        msg.term(`cannot load version ${event.version}: ${(e as Error).message}`);
      }
    } finally {
      clearInterval(beat);
    }
  }

  /**
   * Loads `e` when it is newer than the served version, then reports weights_loaded for the served
   * version when `e` is it (a redelivery reports again under the same dedup id, so it is stored once).
   * Older versions are skipped. Until the load finishes the replica serves the previous version.
   */
  private async apply(e: WeightsPublishedEvent): Promise<void> {
    if (e.version < this.served) return;
    // Version 0 replaces the replica's fresh Init when the learner started elsewhere (cold start, initial weights).
    const initial = e.version === 0 && e.replacesInit === true && !this.loadedInitial;
    if (e.version > this.served || initial) {
      const started = performance.now();
      const folder = await this.fetcher.fetch(e);
      const fetched = performance.now();
      try {
        const res = await this.deps.policy.loadWeights({ version: BigInt(e.version), uri: loadPath(folder, e.kind), kind: e.kind });
        this.setServed(Number(res.version));
        if (e.version === 0) this.loadedInitial = true;
      } catch (err) {
        // Someone else (an operator's LoadWeights) may have loaded this version or a newer one.
        if (ParleyError.from(err).code !== 'failed_precondition') throw err;
        this.setServed(Number((await this.deps.policy.info({})).policyVersion));
        if (this.served < e.version) throw err;
      }
      const seconds = (performance.now() - started) / 1000;
      this.lastLoad = { version: e.version, seconds, loadedAtMs: Date.now() };
      this.deps.metrics?.weightLoadSeconds.observe(seconds);
      // Where the time went: the download (object store) and the backend's load (e.g. waiting for its engine).
      this.deps.logger?.info({ version: e.version, seconds, fetchSeconds: (fetched - started) / 1000, replica: this.o.replica, transport: e.transport }, 'weights loaded');
    }
    // Version 0 is the learner's starting point, which a replica serves as its initial weights: reported only when loaded.
    if (e.version !== this.served || (e.version === 0 && !this.loadedInitial)) return;
    const done = this.lastLoad?.version === e.version ? this.lastLoad : { seconds: 0, loadedAtMs: Date.now() };
    const report: WeightsLoadedEvent = { run: this.o.run, replica: this.o.replica, version: e.version, seconds: done.seconds, loadedAtMs: done.loadedAtMs };
    await this.deps.bus.publish(runSubjects(this.o.run).weightsLoaded, new TextEncoder().encode(JSON.stringify(report)), {
      msgId: weightsLoadedMsgId(this.o.run, this.o.replica, e.version),
      headers: { 'content-type': 'application/json' },
    });
  }

  private setServed(version: number): void {
    this.served = Math.max(this.served, version);
    for (const w of this.waiters) if (this.served >= w.version) w.resolve();
  }
}
