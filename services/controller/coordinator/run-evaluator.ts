// The run's held-out evaluator in a cluster: a sibling of the Coordinator, started by the same
// `parley serve coordinator` process and following the same learner progress (the run-state KV bucket).
// It is its own loop, not a step of the task loop, because an evaluation takes minutes and the task
// queue must stay topped up meanwhile or the learner starves. Every evaluation.everySteps steps and once
// the learner reached the run's steps it runs held-out pass^k through the evaluator `parley run` uses,
// reaching policy, sandbox and user simulator over NATS request-reply as rollout workers do, and
// publishes eval_completed. Progress is kept in the run-state bucket (eval-ledger.ts).

import type { Bus } from '../../core/bus/index.js';
import { ParleyError } from '../../core/errors.js';
import type { Logger } from '../../core/logger.js';
import type { Registry } from '../../core/metrics.js';
import { backoffDelay, sleep } from '../../core/retry.js';
import { runSubjects } from '../../core/run-subjects.js';
import { untilWeightsPublished } from '../../core/weights-events.js';
import {
  dueEvalStep,
  evalCompletedEvent,
  evalName,
  evaluate,
  heldOutRequest,
  heldOutTasks,
  publishEvalCompleted,
  type EvalCompletedEvent,
  type HeldOutSettings,
  type HeldOutTasks,
} from '../../eval/index.js';
import type { EpisodePorts } from '../../rollout/ports.js';
import { KvEvalLedger, type EvalLedger } from './eval-ledger.js';
import { kvLearnerProgress, type LearnerProgressSource } from './learner-progress.js';
import { coordinatorMetrics, type CoordinatorMetrics } from './metrics.js';

/**
 * idle → waiting (for the next evaluation step) ⇄ evaluating → done (the evaluation after the run's last
 * step is published) → stopping → stopped. Failures are retried from waiting with backoff.
 */
export type RunEvaluatorState = 'idle' | 'waiting' | 'evaluating' | 'done' | 'stopping' | 'stopped';

export interface RunEvaluatorDeps {
  bus: Bus;
  logger: Logger;
  registry: Registry;
  /** Policy, sandbox and user simulator of the evaluation episodes (over NATS in a cluster). */
  ports: EpisodePorts;
  /** Default: the learner's entry in the run-state KV bucket. */
  progress?: LearnerProgressSource;
  /** Default: the `eval` entry in the run-state KV bucket. */
  ledger?: EvalLedger;
  /**
   * The policy version the policy serves (Policy.Info). An evaluation starts once it reaches the version
   * asked for: a Generate refused for an older version reaches the episode driver as a permanent error
   * over NATS and gRPC (the transports do not carry `retryable`), which would count as a failed episode.
   */
  servedVersion?: () => Promise<number>;
  /** Default: the shared evaluator (tests pass a double). */
  evaluate?: typeof evaluate;
  /** Random source in [0,1) for backoff jitter. */
  random?: () => number;
}

export interface RunEvaluatorStatus {
  state: RunEvaluatorState;
  /** Every evaluation step up to this one is done. */
  evaluated: number;
  /** The step being evaluated. */
  evaluating?: number;
  /** The latest published evaluation. */
  last?: Pick<EvalCompletedEvent, 'step' | 'passRate' | 'seconds'>;
  lastError?: string;
}

const MAX_BACKOFF_MS = 60_000;

/**
 * The evaluator. `start()` resolves at once (the bucket and actors are reached in the loop, with backoff
 * and jitter while they are not there yet); `stop()` aborts the evaluation in flight, which the next
 * coordinator reruns. Both are safe to call twice. Nothing it does rejects: failures are logged, counted
 * in parley_coordinator_eval_failures_total and retried.
 */
export class RunEvaluator {
  private readonly log: Logger;
  private readonly metrics: CoordinatorMetrics;
  private readonly random: () => number;
  private readonly evaluateFn: typeof evaluate;
  private readonly abort = new AbortController();
  private stateNow: RunEvaluatorState = 'idle';
  private ledger?: EvalLedger;
  private progress?: LearnerProgressSource;
  private tasks?: HeldOutTasks;
  private evaluated = 0;
  private evaluating?: number;
  private last?: RunEvaluatorStatus['last'];
  private lastError?: string;
  private loop?: Promise<void>;
  private stopping?: Promise<void>;
  /** The step whose evaluation this evaluator began or took over (a restart's is announced once). */
  private begun?: number;
  private initialSettled!: () => void;
  private readonly initialDone = new Promise<void>((resolve) => (this.initialSettled = resolve));

  constructor(
    readonly settings: HeldOutSettings,
    private readonly opts: { pollIntervalMs: number },
    private readonly deps: RunEvaluatorDeps,
  ) {
    this.log = deps.logger.child({ component: 'evaluator', run: settings.run });
    this.metrics = coordinatorMetrics(deps.registry);
    this.random = deps.random ?? Math.random;
    this.evaluateFn = deps.evaluate ?? evaluate;
  }

  get state(): RunEvaluatorState {
    return this.stateNow;
  }

  /**
   * Resolves once the evaluation before training is published or will not run (settings without
   * beforeTrain, a learner already past step 0, stop()). The coordinator publishes no task before.
   */
  beforeTrainDone(): Promise<void> {
    if (!this.settings.beforeTrain) return Promise.resolve();
    return this.initialDone;
  }

  /** True once the evaluation after the run's last step is published. */
  get done(): boolean {
    return this.stateNow === 'done';
  }

  status(): RunEvaluatorStatus {
    return {
      state: this.stateNow,
      evaluated: this.evaluated,
      ...(this.evaluating !== undefined ? { evaluating: this.evaluating } : {}),
      ...(this.last ? { last: this.last } : {}),
      ...(this.lastError ? { lastError: this.lastError } : {}),
    };
  }

  /** Starts the loop. Rejects with ParleyError(failed_precondition) after stop(). */
  start(): Promise<void> {
    if (this.stateNow === 'stopping' || this.stateNow === 'stopped') {
      return Promise.reject(new ParleyError('failed_precondition', `the evaluator is ${this.stateNow}; create a new one to start again`));
    }
    if (!this.loop) {
      this.stateNow = 'waiting';
      this.loop = this.run();
    }
    return Promise.resolve();
  }

  /** Aborts the evaluation in flight and ends the loop. Safe to call twice. */
  stop(): Promise<void> {
    if (this.stopping) return this.stopping;
    this.abort.abort(new Error('stopping'));
    if (this.stateNow !== 'stopped') this.stateNow = 'stopping';
    this.stopping = (async () => {
      await this.loop;
      this.initialSettled();
      this.stateNow = 'stopped';
    })();
    return this.stopping;
  }

  private async run(): Promise<void> {
    let failures = 0;
    while (!this.abort.signal.aborted) {
      let wait = this.opts.pollIntervalMs;
      try {
        const next = await this.step();
        failures = 0;
        this.lastError = undefined;
        if (next === 'done') {
          this.stateNow = 'done';
          this.log.info({ step: this.settings.steps }, 'the evaluation after the last step is published; nothing more to evaluate');
          return;
        }
        if (next === 'again') continue;
      } catch (e) {
        if (this.abort.signal.aborted) break;
        const err = ParleyError.from(e);
        failures++;
        this.lastError = err.message;
        this.metrics.evalFailures.inc({ code: err.code });
        this.log.warn({ err: e, failures, step: this.evaluating }, 'held-out evaluation failed; retrying');
        wait += backoffDelay(failures, this.opts.pollIntervalMs, MAX_BACKOFF_MS, this.random);
      } finally {
        this.evaluating = undefined;
        if (this.stateNow === 'evaluating') this.stateNow = 'waiting';
      }
      await sleep(wait, this.abort.signal).catch(() => undefined);
    }
  }

  /** One look: publishes what is pending, or evaluates the step that is due. Rejects on any failure. */
  private async step(): Promise<'again' | 'wait' | 'done'> {
    const s = this.settings;
    if (!this.ledger || !this.progress) {
      const kv = await this.deps.bus.kv(runSubjects(s.run).stateBucket, { history: 5 });
      this.ledger = this.deps.ledger ?? new KvEvalLedger(kv);
      this.progress = this.deps.progress ?? kvLearnerProgress(kv);
    }
    const ledger = this.ledger;
    const recorded = await ledger.load();
    this.evaluated = recorded.evaluated;
    if (recorded.pending) {
      // Finished before a crash, perhaps unpublished: publish under the same dedup id.
      await this.publish(recorded.pending);
      return 'again';
    }
    if (!s.beforeTrain || recorded.initial) this.initialSettled();
    if (s.steps > 0 && recorded.evaluated >= s.steps) return 'done';
    const progress = await this.progress.current();
    let initial: number | undefined;
    if (s.beforeTrain && !recorded.initial && !recorded.running) {
      if (progress.step > 0) {
        // Training began without it (an evaluator that came late): version 0 is no longer served.
        this.log.warn({ step: progress.step }, 'the learner is past step 0; skipping the evaluation before training');
        await ledger.skipInitial();
        this.initialSettled();
        return 'again';
      }
      initial = 0;
    }
    const step = recorded.running?.step ?? initial ?? dueEvalStep(s, progress.step, recorded.evaluated);
    if (step === undefined) return 'wait';
    // Before the learner's first weights no policy replica serves (they wait for its version 0).
    if (step === 0) await untilWeightsPublished(this.deps.bus, s.run, this.abort.signal);
    const policyVersion = recorded.running?.policyVersion ?? progress.policyVersion;
    this.evaluating = step;
    if (!recorded.running) {
      await ledger.begin(step, policyVersion);
      this.begun = step;
    } else if (this.begun !== step) {
      this.log.info({ step, policyVersion }, 'rerunning an evaluation a restart interrupted');
      this.begun = step;
    }
    this.tasks ??= await heldOutTasks(this.deps.ports.sandbox, s);
    if (this.deps.servedVersion) {
      const served = await this.deps.servedVersion();
      if (served < policyVersion) {
        this.log.debug({ step, policyVersion, served }, 'waiting for the policy to serve the version to evaluate');
        return 'wait';
      }
    }
    this.stateNow = 'evaluating';
    const name = evalName(s, step);
    this.log.info({ step, policyVersion, tasks: this.tasks.taskIds.length, k: s.k }, `held-out evaluation (${name}) started`);
    const started = performance.now();
    const result = await this.evaluateFn(
      this.deps.ports,
      this.tasks.info,
      heldOutRequest(s, { name, step, policyVersion, taskIds: this.tasks.taskIds, tasksFile: this.tasks.tasksFile, signal: this.abort.signal }),
    );
    const event = evalCompletedEvent(s, step, policyVersion, result, (performance.now() - started) / 1000);
    await ledger.finish(event);
    await this.publish(event);
    return 'again';
  }

  private async publish(event: EvalCompletedEvent): Promise<void> {
    await publishEvalCompleted(this.deps.bus, event);
    await this.ledger!.published(event.step);
    if (event.step === 0) this.initialSettled();
    this.evaluated = Math.max(this.evaluated, event.step);
    this.last = { step: event.step, passRate: event.passRate, seconds: event.seconds };
    this.metrics.evalStep.set(event.step);
    this.metrics.evalSeconds.set(event.seconds);
    if (Number.isFinite(event.passRate)) this.metrics.evalPassRate.set(event.passRate);
    this.log.info(
      { step: event.step, policyVersion: event.policyVersion, passRate: event.passRate, passk: event.passk, episodes: event.episodes, seconds: event.seconds },
      `held-out pass^1 ${Number.isFinite(event.passRate) ? event.passRate.toFixed(3) : 'n/a'} at step ${event.step}`,
    );
  }
}
