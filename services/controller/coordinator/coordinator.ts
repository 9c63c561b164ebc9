// The run coordinator of a cluster run: lists the train tasks from the run's Sandbox, then keeps the
// run's task queue topped up through the shared TaskFeed, following the learner's step from the
// run-state KV bucket, until the learner reaches the run's steps. An explicit state machine.

import type { Bus } from '../../core/bus/index.js';
import { ParleyError } from '../../core/errors.js';
import type { Logger } from '../../core/logger.js';
import type { Registry } from '../../core/metrics.js';
import { backoffDelay, sleep } from '../../core/retry.js';
import { runSubjects } from '../../core/run-subjects.js';
import { coordinatorConfig, type CoordinatorConfig, type CoordinatorConfigInput } from './config.js';
import { KvGroupCounter, type GroupCounter } from './group-counter.js';
import { kvLearnerProgress, type LearnerProgress, type LearnerProgressSource } from './learner-progress.js';
import { coordinatorMetrics, type CoordinatorMetrics } from './metrics.js';
import { TaskFeed } from './task-feed.js';

/**
 * idle → starting (listing tasks, loading the counter) → running ⇄ finished (the learner reached the
 * run's steps; nothing is published) → stopping → stopped. A start that fails for good ends in stopped.
 */
export type CoordinatorState = 'idle' | 'starting' | 'running' | 'finished' | 'stopping' | 'stopped';

/** Lists the task ids of a domain's split, in a stable order. Rejects with ParleyError. */
export type TaskLister = (domain: string, split: string) => Promise<string[]>;

export interface CoordinatorDeps {
  bus: Bus;
  logger: Logger;
  registry: Registry;
  /** The train tasks (in a cluster: the run's Sandbox, ListTasks). */
  tasks: TaskLister;
  /** Default: the learner's entry in the run-state KV bucket. */
  progress?: LearnerProgressSource;
  /** Default: the coordinator's entry in the run-state KV bucket. */
  counter?: GroupCounter;
  /** Random source in [0,1) for backoff jitter. */
  random?: () => number;
  /** Awaited before the first top-up (serveCoordinator: the learner's first weights, then the evaluation before training). */
  beforeFirstTopUp?: (signal: AbortSignal) => Promise<void>;
}

export interface CoordinatorStatus {
  state: CoordinatorState;
  /** The learner progress last read. */
  step: number;
  policyVersion: number;
  /** Groups of the sequence published so far. */
  nextGroup: number;
  /** Tasks queued at the last look. */
  queued: number;
  lastError?: string;
}

const MAX_BACKOFF_MS = 30_000;

/**
 * The coordinator. `start()` resolves once it is publishing (retrying a Sandbox or bus that is not
 * reachable yet with backoff, until `stop()`); it rejects with ParleyError when the tasks cannot be
 * listed for good (an unknown domain or split, an empty split) or the stored counter is unreadable.
 * Failed top-ups are retried with backoff and jitter and never skip or repeat a group. `stop()` lets a
 * top-up in flight finish. Both are safe to call twice.
 */
export class Coordinator {
  readonly config: CoordinatorConfig;
  private readonly log: Logger;
  private readonly metrics: CoordinatorMetrics;
  private readonly random: () => number;
  private stateNow: CoordinatorState = 'idle';
  private feed?: TaskFeed;
  private progress?: LearnerProgressSource;
  private last: LearnerProgress = { step: 0, policyVersion: 0 };
  private queued = 0;
  private lastError?: string;
  private readonly abort = new AbortController();
  private starting?: Promise<void>;
  private stopping?: Promise<void>;
  private loop?: Promise<void>;

  /** Throws ParleyError(invalid_argument) naming the field for a bad config. */
  constructor(config: CoordinatorConfig | CoordinatorConfigInput, private readonly deps: CoordinatorDeps) {
    this.config = coordinatorConfig(config);
    this.log = deps.logger.child({ component: 'coordinator', run: this.config.run });
    this.metrics = coordinatorMetrics(deps.registry);
    this.random = deps.random ?? Math.random;
  }

  get state(): CoordinatorState {
    return this.stateNow;
  }

  /** True while publishing or finished (what /readyz reports). */
  get ready(): boolean {
    return this.stateNow === 'running' || this.stateNow === 'finished';
  }

  status(): CoordinatorStatus {
    return {
      state: this.stateNow,
      step: this.last.step,
      policyVersion: this.last.policyVersion,
      nextGroup: this.feed?.published ?? 0,
      queued: this.queued,
      ...(this.lastError ? { lastError: this.lastError } : {}),
    };
  }

  /**
   * Lists the tasks, loads the counter and starts publishing; resolves once running. Rejects with
   * ParleyError: failed_precondition after stop(), cancelled when stop() came first, or the error that
   * made the start impossible (the coordinator is then stopped).
   */
  start(): Promise<void> {
    if (this.stateNow === 'stopping' || this.stateNow === 'stopped') {
      return Promise.reject(new ParleyError('failed_precondition', `the coordinator is ${this.stateNow}; create a new one to start again`));
    }
    this.starting ??= this.boot().catch((e: unknown) => {
      this.stateNow = 'stopped';
      throw ParleyError.from(e);
    });
    return this.starting;
  }

  /** Stops after the top-up in flight. Safe to call twice. */
  stop(): Promise<void> {
    if (this.stopping) return this.stopping;
    this.abort.abort(new Error('stopping'));
    if (this.stateNow !== 'stopped') this.stateNow = 'stopping';
    this.stopping = (async () => {
      await this.starting?.catch(() => undefined);
      await this.loop;
      this.stateNow = 'stopped';
      this.log.info({ nextGroup: this.feed?.published }, 'coordinator stopped');
    })();
    return this.stopping;
  }

  private async boot(): Promise<void> {
    const c = this.config;
    this.stateNow = 'starting';
    const taskIds = await this.retrying('list the train tasks', () => this.deps.tasks(c.domain, c.trainSplit));
    const state = await this.retrying('open the run-state bucket', () => this.deps.bus.kv(runSubjects(c.run).stateBucket, { history: 5 }));
    this.progress = this.deps.progress ?? kvLearnerProgress(state);
    const feed = new TaskFeed(c, taskIds, { bus: this.deps.bus, counter: this.deps.counter ?? new KvGroupCounter(state), metrics: this.metrics });
    await this.retrying('create the task stream', () => feed.ensureStream());
    const next = await this.retrying('load the group counter', () => feed.load());
    this.feed = feed;
    if (this.abort.signal.aborted) return;
    this.stateNow = 'running';
    this.log.info({ tasks: taskIds.length, split: c.trainSplit, nextGroup: next, steps: c.steps }, 'coordinator publishing');
    this.loop = this.run(feed);
  }

  private async run(feed: TaskFeed): Promise<void> {
    if (this.deps.beforeFirstTopUp) {
      try {
        await this.deps.beforeFirstTopUp(this.abort.signal);
      } catch (e) {
        if (this.abort.signal.aborted) return;
        this.log.warn({ err: e }, 'waiting before the first top-up failed; publishing anyway');
      }
    }
    let failures = 0;
    while (!this.abort.signal.aborted) {
      let wait = this.config.pollIntervalMs;
      try {
        const progress = await this.progress!.current();
        const r = await feed.topUp(progress);
        this.last = progress;
        this.queued = r.queued;
        const state = r.finished ? 'finished' : 'running';
        if (state !== this.stateNow && !this.abort.signal.aborted) {
          this.stateNow = state;
          if (r.finished) this.log.info({ step: progress.step, nextGroup: feed.published }, `the learner reached ${this.config.steps} steps; no more tasks are published`);
        }
        if (r.published) this.log.debug({ groups: r.published, nextGroup: feed.published, step: progress.step, policyVersion: progress.policyVersion }, 'published task groups');
        failures = 0;
        this.lastError = undefined;
      } catch (e) {
        const err = ParleyError.from(e);
        failures++;
        this.lastError = err.message;
        this.metrics.topUpFailures.inc({ code: err.code });
        this.log.warn({ err: e, failures }, 'top-up failed; retrying');
        wait += backoffDelay(failures, this.config.pollIntervalMs, MAX_BACKOFF_MS, this.random);
      }
      await sleep(wait, this.abort.signal).catch(() => undefined);
    }
  }

  /** Runs `fn` until it succeeds; retryable failures (and bus errors of that kind) back off with jitter; others reject. */
  private async retrying<T>(what: string, fn: () => Promise<T>): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      if (this.abort.signal.aborted) throw new ParleyError('cancelled', `stopped while trying to ${what}`);
      try {
        return await fn();
      } catch (e) {
        const message = `cannot ${what}: ${e instanceof Error ? e.message : String(e)}`;
        if ((e as { retryable?: unknown }).retryable !== true) {
          const err = ParleyError.from(e);
          throw new ParleyError(err.code, message, { cause: e, field: err.field, retryable: false });
        }
        const delay = backoffDelay(attempt, 250, 10_000, this.random);
        this.lastError = message;
        this.log.warn({ err: e, attempt, delayMs: delay }, `cannot ${what} yet; retrying`);
        await sleep(delay, this.abort.signal).catch(() => undefined);
      }
    }
  }
}
