// Follows each run's NATS events (step_completed, weights_published, weights_loaded, eval_completed)
// through a durable consumer, keeps the run's latest progress and sets the parley_run_* metrics.

import type { Bus, BusMessage, MessageStream } from '../core/bus/index.js';
import type { Logger } from '../core/logger.js';
import { runSubjects } from '../core/run-subjects.js';
import type { Clock } from './clock.js';
import type { RunMetrics } from './metrics.js';
import type { RunMetricsStatus, TrainingRunStatus } from './training-run.js';

/** The controller's durable consumer name on every run's events stream. */
export const CONTROLLER_DURABLE = 'parley-controller';

export interface RunProgress {
  step: number;
  policyVersion: number;
  /** The latest step whose held-out evaluation was published (eval_completed); -1 before any. */
  evaluatedStep: number;
  metrics: RunMetricsStatus;
}

interface Tracked {
  namespace: string;
  run: string;
  progress: RunProgress;
  /** Local time each version was published (ms), for weight-sync latency. */
  publishedAt: Map<number, number>;
  stream?: MessageStream;
  loop?: Promise<void>;
}

const num = (v: unknown): number | undefined => (typeof v === 'number' && Number.isFinite(v) ? v : undefined);

export class RunEventsTracker {
  private readonly runs = new Map<string, Tracked>();

  constructor(
    private readonly deps: { bus: Bus; logger: Logger; clock: Clock; metrics: RunMetrics },
    /** Called with the run key after an event changed its progress. */
    private readonly onChange: (key: string) => void,
  ) {}

  /** Latest progress of a tracked run. */
  progress(key: string): RunProgress | undefined {
    return this.runs.get(key)?.progress;
  }

  /**
   * Starts following the run's events (once; later calls do nothing), seeded from its last status so a
   * controller restart resumes where the durable consumer left off. Rejects with BusError when the
   * consumer cannot be created (the events stream must exist).
   */
  async follow(namespace: string, run: string, seed: TrainingRunStatus | undefined): Promise<void> {
    const key = `${namespace}/${run}`;
    if (this.runs.get(key)?.stream) return;
    const t: Tracked = this.runs.get(key) ?? {
      namespace,
      run,
      progress: { step: seed?.step ?? 0, policyVersion: seed?.policyVersion ?? 0, evaluatedStep: seed?.evaluatedStep ?? -1, metrics: { ...(seed?.metrics ?? {}) } },
      publishedAt: new Map(),
    };
    this.runs.set(key, t);
    const s = runSubjects(run);
    const consumer = await this.deps.bus.consumer({
      stream: s.eventsStream,
      durable: CONTROLLER_DURABLE,
      filterSubject: `${s.events}.>`,
      ackWaitMs: 30_000,
      maxDeliver: 5,
      maxAckPending: 1000,
    });
    const stream = consumer.consume({ expiresMs: 5_000, batch: 16 });
    t.stream = stream;
    t.loop = (async () => {
      try {
        for await (const msg of stream) this.handle(key, t, msg);
      } catch (e) {
        // The stream was deleted (the run is going away) or the bus closed: the next reconcile follows again.
        this.deps.logger.warn({ run: key, err: (e as Error).message }, 'stopped following run events');
      } finally {
        if (t.stream === stream) t.stream = undefined;
      }
    })();
  }

  /** Stops following `key` (its progress is forgotten). Safe to call for an untracked run. */
  async forget(key: string): Promise<void> {
    const t = this.runs.get(key);
    this.runs.delete(key);
    t?.stream?.stop();
    await t?.loop;
  }

  /** Stops every consumer loop. Safe to call twice. */
  async stop(): Promise<void> {
    await Promise.all([...this.runs.keys()].map((k) => this.forget(k)));
  }

  private handle(key: string, t: Tracked, msg: BusMessage): void {
    const name = msg.subject.slice(msg.subject.lastIndexOf('.') + 1);
    let event: Record<string, unknown>;
    try {
      event = JSON.parse(new TextDecoder().decode(msg.data));
      if (!event || typeof event !== 'object') throw new Error('not an object');
    } catch (e) {
      msg.term(`not a JSON event: ${(e as Error).message}`);
      return;
    }
    const changed = this.apply(t, name, event);
    msg.ack();
    if (changed) this.onChange(key);
  }

  /** Applies one event; true when progress changed. Unknown events are ignored (other components may add some). */
  private apply(t: Tracked, name: string, e: Record<string, unknown>): boolean {
    const m = this.deps.metrics;
    const labels = { namespace: t.namespace, run: t.run };
    const p = t.progress;
    const now = this.deps.clock.now();
    switch (name) {
      case 'step_completed': {
        const step = num(e.step);
        if (step === undefined || step <= p.step) return false; // a redelivery or an older step
        const extra = (e.metrics && typeof e.metrics === 'object' ? e.metrics : {}) as Record<string, unknown>;
        p.step = step;
        p.policyVersion = Math.max(p.policyVersion, num(e.policyVersion) ?? 0);
        const trajectories = num(e.trajectories) ?? 0;
        const seconds = num(e.seconds) ?? 0;
        const tokens = num(extra.tokens);
        const metrics: RunMetricsStatus = { ...p.metrics, episodes: (p.metrics.episodes ?? 0) + trajectories, updatedAt: new Date(now).toISOString() };
        const reward = num(e.rewardMean);
        if (reward !== undefined) metrics.rewardMean = reward;
        const tps = num(extra.tokens_per_second) ?? (tokens !== undefined && seconds > 0 ? tokens / seconds : undefined);
        if (tps !== undefined) metrics.tokensPerSecond = tps;
        const pass = num(extra.pass_rate);
        if (pass !== undefined) metrics.passRate = pass;
        const stale = num(extra.staleness_mean);
        if (stale !== undefined) metrics.stalenessMean = stale;
        p.metrics = metrics;
        m.step.set(labels, step);
        m.policyVersion.set(labels, p.policyVersion);
        m.episodes.inc(labels, trajectories);
        if (reward !== undefined) m.reward.set(labels, reward);
        if (tps !== undefined) m.tokensPerSecond.set(labels, tps);
        if (pass !== undefined) m.passRate.set(labels, pass);
        if (stale !== undefined) m.staleness.set(labels, stale);
        return true;
      }
      case 'weights_published': {
        const version = num(e.version);
        if (version === undefined) return false;
        if (!t.publishedAt.has(version)) t.publishedAt.set(version, num(e.publishedAtMs) ?? now);
        // Keep a bounded history: only recent versions can still be loading.
        for (const v of t.publishedAt.keys()) if (v < version - 16) t.publishedAt.delete(v);
        if (version <= p.policyVersion) return false;
        p.policyVersion = version;
        m.policyVersion.set(labels, version);
        return true;
      }
      case 'weights_loaded': {
        const version = num(e.version);
        const at = version === undefined ? undefined : t.publishedAt.get(version);
        if (at === undefined) return false;
        const seconds = Math.max(0, ((num(e.loadedAtMs) ?? now) - at) / 1000);
        m.weightSyncSeconds.observe(labels, seconds);
        p.metrics = { ...p.metrics, weightSyncSeconds: seconds, updatedAt: new Date(now).toISOString() };
        return true;
      }
      case 'eval_completed': {
        const pass = num(e.passRate);
        const step = num(e.step) ?? 0;
        // A redelivered or older evaluation changes nothing: the status shows the latest one.
        if (pass === undefined || step < p.evaluatedStep) return false;
        p.evaluatedStep = step;
        p.metrics = { ...p.metrics, passRate: pass, updatedAt: new Date(now).toISOString() };
        m.passRate.set(labels, pass);
        return true;
      }
      default:
        return false;
    }
  }
}
