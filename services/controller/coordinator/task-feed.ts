// The one implementation of rollout-task publishing, used by `parley run` and the cluster coordinator:
// keeps the run's task queue topped up with groups of the seeded sequence, stamped with the learner's
// policy version and the horizon of its step, until the learner reaches the run's steps.

import { BusError, type Bus } from '../../core/bus/index.js';
import { ParleyError } from '../../core/errors.js';
import { runStreamConfigs, runSubjects } from '../../core/run-subjects.js';
import { horizonAt } from '../../rollout/horizon.js';
import { publishGroup } from '../../rollout/publisher.js';
import { taskFeedConfig, type TaskFeedConfig, type TaskFeedConfigInput } from './config.js';
import type { GroupCounter } from './group-counter.js';
import type { LearnerProgress } from './learner-progress.js';
import type { CoordinatorMetrics } from './metrics.js';
import { plannedGroup, type PlannedGroup } from './task-sequence.js';

export interface TaskFeedDeps {
  bus: Bus;
  /** Where the index of the next group is kept across restarts. */
  counter: GroupCounter;
  metrics?: CoordinatorMetrics;
}

export interface TopUpResult {
  /** Groups this call published. */
  published: number;
  /** Task messages queued (waiting or in flight) when the call looked. */
  queued: number;
  /** True once the learner reached the run's steps: nothing is published any more. */
  finished: boolean;
}

/**
 * Publishes the run's task groups. Restart-safe: group n is always `g<n>` with the same task and seed
 * (task-sequence.ts), and each sample's dedup id is its trajectory id, so publishing a group again
 * (after a crash between publishing and saving the counter) is dropped by the bus's dedup window.
 * The counter is saved after each group, so a restart resumes the sequence where it stopped.
 */
export class TaskFeed {
  readonly config: TaskFeedConfig;
  private readonly taskIds: readonly string[];
  private next = 0;
  private loaded = false;

  /** Throws ParleyError(invalid_argument) naming the field for a bad config or an empty task list. */
  constructor(
    config: TaskFeedConfig | TaskFeedConfigInput,
    taskIds: readonly string[],
    private readonly deps: TaskFeedDeps,
  ) {
    this.config = taskFeedConfig(config);
    if (taskIds.length === 0) throw new ParleyError('invalid_argument', `taskIds: the train split of domain '${this.config.domain}' has no tasks to publish`, { field: 'taskIds' });
    this.taskIds = [...taskIds];
  }

  /** Index of the next group (groups published so far in the run, once loaded). */
  get published(): number {
    return this.next;
  }

  /** Loads the counter. Rejects with the counter store's error. Safe to call again (reloads). */
  async load(): Promise<number> {
    this.next = await this.deps.counter.load();
    this.loaded = true;
    this.deps.metrics?.nextGroup.set(this.next);
    return this.next;
  }

  /** Group `n` of the run's sequence. */
  group(n: number): PlannedGroup {
    return plannedGroup({ seed: this.config.seed, taskIds: this.taskIds }, n);
  }

  /**
   * Creates the task stream when absent (the config every component uses), leaving an existing one as
   * its creator (the controller) configured it. Rejects with BusError.
   */
  async ensureStream(): Promise<void> {
    const config = runStreamConfigs(this.config.run).tasks;
    try {
      await this.deps.bus.streamInfo(config.name);
    } catch (e) {
      if (!BusError.is(e, 'not_found')) throw e;
      await this.deps.bus.ensureStream(config);
    }
  }

  /**
   * One top-up: when fewer than groupsPerStep × groupSize tasks are queued and the learner is below the
   * run's steps, publishes groupsPerStep groups for the learner's `progress`. Rejects with BusError
   * (retryable ones: call again; nothing is lost or duplicated) or the counter store's error.
   */
  async topUp(progress: LearnerProgress): Promise<TopUpResult> {
    const c = this.config;
    const m = this.deps.metrics;
    if (!this.loaded) await this.load();
    m?.learnerStep.set(progress.step);
    const queued = (await this.deps.bus.streamInfo(runSubjects(c.run).tasksStream)).messages;
    m?.queueDepth.set(queued);
    const finished = c.steps > 0 && progress.step >= c.steps;
    if (finished || queued >= c.groupsPerStep * c.groupSize) return { published: 0, queued, finished };
    const horizon = horizonAt({ horizons: c.horizons, everySteps: c.horizonEverySteps }, progress.step);
    const minPolicyVersion = BigInt(progress.policyVersion);
    m?.horizon.set(horizon);
    for (let g = 0; g < c.groupsPerStep; g++) {
      const p = this.group(this.next);
      const stored = await publishGroup(this.deps.bus, {
        run: c.run, domain: c.domain, taskId: p.taskId, groupId: p.groupId, groupSize: c.groupSize, horizon, minPolicyVersion, mode: c.mode, seed: p.seed,
      });
      // Saved only once the group is stored: a crash before this publishes it again, which dedup drops.
      this.next = await this.deps.counter.save(p.index + 1);
      m?.groupsPublished.inc();
      if (stored < c.groupSize) m?.tasksDuplicate.inc(c.groupSize - stored);
      m?.nextGroup.set(this.next);
    }
    return { published: c.groupsPerStep, queued, finished: false };
  }
}
