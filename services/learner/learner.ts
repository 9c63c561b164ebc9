// The learner: an explicit state machine that consumes trajectories durably, forms steps of whole
// groups, trains through the engine, checkpoints atomically, and only then acks what the step used.

import { resolve } from 'node:path';
import type { Bus, BusMessage, Consumer, MessageStream } from '../core/bus/index.js';
import { ParleyError } from '../core/errors.js';
import type { Logger } from '../core/logger.js';
import type { Registry } from '../core/metrics.js';
import { CheckpointStore, type CheckpointRecord } from './checkpoint-store.js';
import { PendingDrops } from './ledger.js';
import { restoreOrInitialise } from './resume.js';
import { learnerConfig, type LearnerConfig, type LearnerConfigInput } from './config.js';
import { GroupBuffer, type Dropped, type ReadyGroup } from './grouping.js';
import { Intake, trajectoryLimits } from './intake.js';
import { deadLetter, type DeadLetter } from './dead-letters.js';
import { findRejected } from './engine-rejections.js';
import { executeStep, planStep, type StepHooks, type StepTrajectory } from './learner-step.js';
import { learnerMetrics, type LearnerMetrics } from './learner-metrics.js';
import { announceColdStart, announceWeights, announceStep } from './announce.js';
import type { ColdStartRecord } from './cold-start.js';
import { openRunStreams } from './run-bus.js';
import type { TrainerClient } from './trainer-client.js';

/** How long a refused trajectory waits for redelivery when the dead-letter stream could not take it. */
const DEAD_LETTER_RETRY_MS = 5_000;

export type LearnerState = 'idle' | 'running' | 'paused' | 'stopping' | 'stopped';

/** Wall-clock time in ms since the epoch (group timeouts, step timing). */
export interface Clock {
  now(): number;
}

export interface LearnerDeps {
  bus: Bus;
  trainer: TrainerClient;
  logger: Logger;
  registry: Registry;
  clock?: Clock;
  /** Called inside a step (tests use it to act at a precise point). */
  hooks?: StepHooks;
}

/** What Status reports. */
export interface LearnerStatus {
  state: LearnerState;
  step: number;
  policyVersion: number;
  consumed: number;
  droppedStale: number;
  zeroVarianceGroups: number;
  incompleteGroups: number;
  rewardMean: number;
  horizon: number;
  horizonStage: number;
  buffered: number;
  lastError?: string;
}

/**
 * The learner. `start()` restores the latest checkpoint (or writes the initial one) and begins
 * consuming; `stop()` finishes the step in flight, commits pending drops and hands unconsumed
 * deliveries back. Both are safe to call twice. Trajectories it cannot train on are moved to the
 * run's dead-letter stream: at intake (out of bounds), or when the engine refuses a step's batch
 * (INVALID_ARGUMENT) those it refuses alone, the step then going on without them. A step that fails
 * with a retryable engine error is retried with backoff from the committed weights; a non-retryable
 * one, after `maxStepAttempts` tries, stops the learner with `lastError` set (nothing is acked, so
 * nothing is lost).
 */
export class Learner {
  readonly config: LearnerConfig;
  readonly store: CheckpointStore;
  private readonly log: Logger;
  private readonly clock: Clock;
  private readonly metrics: LearnerMetrics;
  private readonly intake: Intake;
  private readonly groups: GroupBuffer<StepTrajectory>;
  private stateNow: LearnerState = 'idle';
  private last!: CheckpointRecord;
  private readonly drops = new PendingDrops();
  private consumer?: Consumer;
  private messages?: MessageStream;
  private loops: Promise<void>[] = [];
  private keepAlive?: NodeJS.Timeout;
  private starting?: Promise<void>;
  private stopping?: Promise<void>;
  private exclusive: Promise<unknown> = Promise.resolve();
  private wakeUp: () => void = () => undefined;
  private interrupt: () => void = () => undefined;
  private commitWaiters = new Set<() => void>();
  private lastError?: ParleyError;

  constructor(config: LearnerConfig | LearnerConfigInput, private readonly deps: LearnerDeps) {
    this.config = learnerConfig(config);
    this.store = new CheckpointStore(resolve(this.config.checkpointDir), { logger: deps.logger.child({ component: 'checkpoint-store' }), registry: deps.registry });
    this.log = deps.logger.child({ component: 'learner', run: this.config.run });
    this.clock = deps.clock ?? { now: () => Date.now() };
    this.metrics = learnerMetrics(deps.registry);
    this.intake = new Intake(this.config.dedupWindowCheckpoints, trajectoryLimits(this.config, 0));
    const c = this.config;
    this.groups = new GroupBuffer({
      defaultGroupSize: c.groupSize,
      timeoutMs: c.groupTimeoutMs,
      minGroupSize: c.minGroupSize,
      dropZeroVariance: c.dropZeroVarianceGroups,
      maxStepsOffPolicy: c.maxStepsOffPolicy,
    });
  }

  get state(): LearnerState {
    return this.stateNow;
  }

  /** The latest committed checkpoint (undefined before start restored one). */
  get latest(): CheckpointRecord | undefined {
    return this.last;
  }

  status(): LearnerStatus {
    const t = this.last?.totals;
    const stage = this.last?.horizonStage ?? 0;
    return {
      state: this.stateNow,
      step: this.last?.step ?? 0,
      policyVersion: this.last?.policyVersion ?? 0,
      consumed: t?.consumed ?? 0,
      droppedStale: t?.droppedStale ?? 0,
      zeroVarianceGroups: t?.zeroVarianceGroups ?? 0,
      incompleteGroups: t?.incompleteGroups ?? 0,
      rewardMean: this.last?.rewardMean ?? 0,
      horizon: this.config.horizons[stage] ?? 0,
      horizonStage: stage,
      buffered: this.intake.heldCount,
      lastError: this.lastError?.message,
    };
  }

  /**
   * Restores state and starts consuming. Rejects with ParleyError: data_loss for an unreadable
   * checkpoint, failed_precondition for a checkpoint of another run or after stop(), or the engine's
   * or bus's error (the learner is then stopped).
   */
  start(): Promise<void> {
    if (this.stateNow === 'stopping' || this.stateNow === 'stopped') {
      return Promise.reject(new ParleyError('failed_precondition', `the learner is ${this.stateNow}; create a new one to start again`));
    }
    if (this.starting) return this.starting;
    this.starting = this.boot().catch((e: unknown) => {
      this.stateNow = 'stopped';
      throw ParleyError.from(e);
    });
    return this.starting;
  }

  private async boot(): Promise<void> {
    const c = this.config;
    let cold: ColdStartRecord | undefined;
    const { latest: rec, vocabSize, window } = await restoreOrInitialise(this.store, this.deps.trainer, c, this.log, this.clock.now(), (r) => (cold = r));
    this.intake.limits = trajectoryLimits(c, vocabSize);
    for (const r of window) this.intake.remember(r.seq, Object.values(r.consumed).flat());
    this.last = rec;
    this.setGauges();
    this.consumer = await openRunStreams(this.deps.bus, c.run, { ackWaitMs: c.ackWaitMs, maxAckPending: c.maxBufferedTrajectories });
    if (cold) await announceColdStart(this.deps.bus, c, cold, this.log);
    // A crash may have come between a commit and its announcement; announcing again is deduplicated.
    await announceWeights(this.deps.bus, c, rec, this.log);
    this.messages = this.consumer.consume({ batch: Math.min(64, c.maxBufferedTrajectories), expiresMs: 5000 });
    this.keepAlive = setInterval(() => this.intake.keepAlive(), Math.max(500, Math.floor(c.ackWaitMs / 3)));
    this.keepAlive.unref();
    this.stateNow = 'running';
    this.loops = [this.intakeLoop(), this.stepLoop()];
  }

  /** Stops after the step in flight; commits pending drops; hands the rest back. Safe to call twice. */
  stop(): Promise<void> {
    if (this.stopping) return this.stopping;
    if (this.stateNow === 'idle' && !this.starting) {
      this.stateNow = 'stopped';
      return Promise.resolve();
    }
    const halt = () => {
      if (this.stateNow === 'running' || this.stateNow === 'paused') this.stateNow = 'stopping';
      this.messages?.stop();
      this.wake();
      this.interrupt();
    };
    halt(); // at once, so a loop that checks the state next sees it
    this.stopping = (async () => {
      await this.starting?.catch(() => undefined);
      if (this.stateNow === 'stopped') return;
      halt();
      await Promise.all(this.loops);
      clearInterval(this.keepAlive);
      if (!this.lastError && this.drops.count > 0) await this.serial(() => this.commitFlush()).catch((e: unknown) => this.log.warn({ err: e }, 'could not commit pending drops at stop'));
      this.intake.releaseAll();
      this.stateNow = 'stopped';
      for (const w of this.commitWaiters) w();
      this.log.info({ step: this.last?.step }, 'learner stopped');
    })();
    return this.stopping;
  }

  /** Running → paused: no new step starts (the one in flight finishes). Throws failed_precondition unless running or paused. */
  pause(): void {
    if (this.stateNow !== 'running' && this.stateNow !== 'paused') throw new ParleyError('failed_precondition', `cannot pause a learner that is ${this.stateNow}`);
    this.stateNow = 'paused';
  }

  /** Paused → running. Throws failed_precondition unless paused or running. */
  resume(): void {
    if (this.stateNow !== 'running' && this.stateNow !== 'paused') throw new ParleyError('failed_precondition', `cannot resume a learner that is ${this.stateNow}`);
    this.stateNow = 'running';
    this.wake();
  }

  /**
   * Waits for the step in flight, commits pending drops if any, and returns the latest checkpoint.
   * Rejects with failed_precondition unless running or paused, or with the file-system error.
   */
  async checkpoint(): Promise<{ step: number; path: string }> {
    if (this.stateNow !== 'running' && this.stateNow !== 'paused') throw new ParleyError('failed_precondition', `the learner is ${this.stateNow}`);
    return this.serial(async () => {
      if (this.drops.count > 0) await this.commitFlush();
      return { step: this.last.step, path: this.store.recordPath(this.last.seq) };
    });
  }

  /** Resolves once `step` is committed; rejects with failed_precondition if the learner stops first, deadline_exceeded after `timeoutMs`. */
  waitForStep(step: number, timeoutMs = 60_000): Promise<void> {
    return new Promise((resolveWait, reject) => {
      const check = () => {
        if (this.last && this.last.step >= step) return done(undefined);
        if (this.stateNow === 'stopped') done(new ParleyError('failed_precondition', `the learner stopped at step ${this.last?.step ?? 0}: ${this.lastError?.message ?? 'stop()'}`));
      };
      const timer = setTimeout(() => done(new ParleyError('deadline_exceeded', `step ${step} not reached within ${timeoutMs} ms (at ${this.last?.step ?? 0})`)), timeoutMs);
      const done = (err: ParleyError | undefined) => {
        clearTimeout(timer);
        this.commitWaiters.delete(check);
        if (err) reject(err);
        else resolveWait();
      };
      this.commitWaiters.add(check);
      check();
    });
  }

  // ---- loops ----------------------------------------------------------------------------------

  private async intakeLoop(): Promise<void> {
    try {
      for await (const msg of this.messages!) {
        const r = this.intake.accept(msg, this.last.policyVersion);
        if (r.kind === 'new') {
          const refused = this.groups.refusal(r.member);
          if (refused) await this.refuse(this.intake.take(r.member.id), { ...refused, trajectoryId: r.member.id });
          else this.applyDrops(this.groups.add(r.member, this.clock.now(), this.last.policyVersion));
        } else if (r.kind === 'invalid') {
          this.metrics.invalid.inc({ reason: r.reason });
          await this.refuse([msg], { reason: r.reason, detail: r.detail, trajectoryId: r.id });
        } else if (r.kind === 'consumed' || (r.kind === 'held' && !r.redelivery)) this.metrics.duplicates.inc();
        this.metrics.buffered.set(this.intake.heldCount);
        this.wake();
      }
    } catch (e) {
      if (this.stateNow !== 'stopping') this.fail(ParleyError.from(e), 'consuming trajectories failed');
    }
  }

  private async stepLoop(): Promise<void> {
    const flushAt = Math.max(1, Math.floor(this.config.maxBufferedTrajectories / 4));
    while (this.stateNow === 'running' || this.stateNow === 'paused') {
      this.applyDrops(this.groups.expire(this.clock.now()));
      const done = this.config.maxSteps > 0 && this.last.step >= this.config.maxSteps;
      if (this.stateNow === 'running' && !done) {
        const { groups, dropped } = this.groups.take(this.config.groupsPerStep, this.last.policyVersion);
        this.applyDrops(dropped);
        if (groups.length > 0) {
          await this.serial(() => this.runStep(groups));
          continue;
        }
        if (this.drops.count >= flushAt) {
          await this.serial(() => this.commitFlush()).catch((e: unknown) => this.fail(ParleyError.from(e), 'flush checkpoint failed'));
          continue;
        }
      }
      const deadline = this.groups.nextDeadline();
      // Woken by the intake; the 1 s ceiling is a safety net so a missed wake-up costs a second, not a minute.
      await this.sleep(deadline === undefined ? 1000 : Math.min(1000, Math.max(10, deadline - this.clock.now())));
    }
  }

  // ---- steps and commits ----------------------------------------------------------------------

  private async runStep(taken: ReadyGroup<StepTrajectory>[]): Promise<void> {
    const c = this.config;
    const started = this.clock.now();
    const step = this.last.step + 1;
    const newVersion = this.last.policyVersion + 1;
    let groups = taken;
    for (let attempt = 1; groups.length > 0; attempt++) {
      const trained = groups.flatMap((g) => g.members.map((m) => m.id));
      try {
        const plan = planStep(groups.map((g) => g.members.map((m) => m.item)), c, this.last.policyVersion);
        this.log.debug({ step, sequences: plan.sequences.length, microBatches: plan.microBatches.length, attempt }, 'step started');
        const result = await executeStep(this.deps.trainer, plan, c, { weightsDir: this.store.weightsDir, newVersion, step: step - 1 }, this.deps.hooks);
        const rec = this.record('step', { trained, weights: result.updated ? { path: result.weightsPath } : undefined, rewardMean: plan.rewardMean });
        await this.commit(rec);
        const seconds = (this.clock.now() - started) / 1000;
        this.metrics.stepSeconds.observe(seconds);
        this.metrics.tokensPerSecond.set(seconds > 0 ? plan.tokens / seconds : 0);
        for (const [part, v] of Object.entries(result.metrics)) this.metrics.loss.set({ part }, v);
        this.log.info({ step, policyVersion: rec.policyVersion, trajectories: trained.length, rewardMean: rec.rewardMean, seconds, loss: result.metrics.loss }, 'step committed');
        if (result.updated) await announceWeights(this.deps.bus, c, rec, this.log);
        await announceStep(this.deps.bus, c, rec, trained.length, seconds, result.metrics, this.log, plan.tokens);
        return;
      } catch (e) {
        const err = ParleyError.from(e);
        this.metrics.stepFailures.inc({ code: err.code });
        this.log.warn({ err: e, step, attempt, code: err.code }, 'step failed');
        if (this.halted()) return;
        await this.restoreEngine();
        if (err.code === 'invalid_argument') {
          const rest = await this.withoutRejected(groups);
          if (rest) {
            // The engine refused trajectories, not the step: the rest is a new step, with fresh attempts.
            groups = rest;
            attempt = 0;
            continue;
          }
        }
        if (!err.retryable && attempt >= c.maxStepAttempts) return this.fail(err, `step ${step} failed ${attempt} times`);
        await this.sleep(Math.min(30_000, 250 * 2 ** (attempt - 1)) * (0.5 + Math.random()), false);
        if (this.halted()) return;
      }
    }
  }

  /**
   * After the engine refused a step's batch: finds the trajectories it refuses on their own,
   * dead-letters them with its message, and returns the groups without them (groups left too small
   * are dropped as the grouping drops them). Undefined when no trajectory alone is to blame or the
   * search failed (the step then fails as before).
   */
  private async withoutRejected(groups: ReadyGroup<StepTrajectory>[]): Promise<ReadyGroup<StepTrajectory>[] | undefined> {
    let rejected: Map<string, string>;
    try {
      rejected = await findRejected(this.deps.trainer, groups.flatMap((g) => g.members.map((m) => m.item)), this.config.microBatchTokens);
    } catch (e) {
      this.log.warn({ err: e }, 'could not probe the engine for the trajectories it refuses');
      return undefined;
    }
    if (rejected.size === 0) return undefined;
    for (const [id, message] of rejected) await this.refuse(this.intake.take(id), { reason: 'engine_rejected', detail: message, trajectoryId: id });
    const { groups: kept, dropped } = this.groups.without(groups, new Set(rejected.keys()));
    this.applyDrops(dropped);
    return kept;
  }

  /** Puts the engine back on the committed weights after a failed step. */
  private async restoreEngine(): Promise<void> {
    try {
      await this.store.removeUncommittedWeights(this.last.policyVersion);
      await this.deps.trainer.loadWeights({ path: this.last.weightsPath });
    } catch (e) {
      this.log.warn({ err: e }, 'could not restore the engine to the committed weights; will retry');
    }
  }

  private record(kind: 'step' | 'flush', extra: { trained?: string[]; weights?: { path: string }; rewardMean?: number } = {}): CheckpointRecord {
    const c = this.config;
    return this.drops.nextRecord(this.last, kind, { ...extra, horizons: c.horizons, horizonEverySteps: c.horizonEverySteps, now: this.clock.now() });
  }

  private commitFlush(): Promise<void> {
    return this.commit(this.record('flush'));
  }

  /** Writes the checkpoint, then (only then) acks everything it consumed. */
  private async commit(rec: CheckpointRecord): Promise<void> {
    await this.store.commit(rec);
    const prev = this.last.totals;
    this.last = rec;
    this.drops.clear();
    this.intake.commit(rec.seq, Object.values(rec.consumed).flat());
    this.metrics.consumed.inc(rec.totals.consumed - prev.consumed);
    this.metrics.droppedStale.inc(rec.totals.droppedStale - prev.droppedStale);
    this.metrics.zeroVarianceGroups.inc(rec.totals.zeroVarianceGroups - prev.zeroVarianceGroups);
    this.metrics.incompleteGroups.inc(rec.totals.incompleteGroups - prev.incompleteGroups);
    this.metrics.buffered.set(this.intake.heldCount);
    this.setGauges();
    for (const w of [...this.commitWaiters]) w();
  }

  private setGauges(): void {
    this.metrics.step.set(this.last.step);
    this.metrics.policyVersion.set(this.last.policyVersion);
    this.metrics.rewardMean.set(this.last.rewardMean);
    this.metrics.horizon.set(this.config.horizons[this.last.horizonStage] ?? 0);
  }

  private applyDrops(dropped: Dropped<StepTrajectory>[]): void {
    this.drops.add(dropped);
    for (const d of dropped) this.log.debug({ reason: d.reason, groupId: d.groupId, trajectories: d.members.length }, 'dropped');
  }

  /** Dead-letters one trajectory's deliveries; when the bus cannot take it, hands them back for a later try. */
  private async refuse(msgs: BusMessage[], letter: DeadLetter): Promise<void> {
    try {
      await deadLetter(this.deps.bus, this.config.run, msgs, letter);
      this.metrics.deadLetters.inc({ reason: letter.reason });
      this.log.warn({ reason: letter.reason, id: letter.trajectoryId }, `trajectory dead-lettered: ${letter.detail}`);
    } catch (e) {
      for (const m of msgs) m.nak(DEAD_LETTER_RETRY_MS);
      this.log.warn({ err: e, reason: letter.reason, id: letter.trajectoryId }, 'could not dead-letter a refused trajectory; handed back for another try');
    }
  }

  private halted(): boolean {
    return this.stateNow === 'stopping' || this.stateNow === 'stopped';
  }

  private fail(err: ParleyError, what: string): void {
    this.lastError = err;
    this.log.error({ err, code: err.code }, `${what}; the learner stops (nothing was acked, so nothing is lost)`);
    if (this.stateNow === 'running' || this.stateNow === 'paused') void this.stop();
  }

  // ---- plumbing ---------------------------------------------------------------------------------

  private serial<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.exclusive.then(fn, fn);
    this.exclusive = run.catch(() => undefined);
    return run;
  }

  private wake(): void {
    this.wakeUp();
  }

  /** Sleeps until `ms` pass or, with `onEvents`, anything happens (a message, pause/resume, stop). Stop always ends it. */
  private sleep(ms: number, onEvents = true): Promise<void> {
    return new Promise((r) => {
      const t = setTimeout(done, ms);
      function done() {
        clearTimeout(t);
        r();
      }
      if (onEvents) this.wakeUp = done;
      this.interrupt = done;
    });
  }
}
