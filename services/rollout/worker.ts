// The rollout worker: pulls RolloutTasks from the run's JetStream work queue, runs episodes with bounded
// concurrency, publishes each Trajectory with its dedup id, and ends every message explicitly
// (ack after publish, nak with delay on transient failures, term on malformed tasks).

import { fromBinary } from '@bufbuild/protobuf';
import type { Bus, BusMessage, Consumer, MessageStream } from '../core/bus/index.js';
import { ParleyError } from '../core/errors.js';
import type { Logger } from '../core/logger.js';
import { Counter, Gauge, Histogram, getOrCreate, metricsRegistry, type Registry } from '../core/metrics.js';
import { backoffDelay, sleep } from '../core/retry.js';
import { runSubjects } from '../core/run-subjects.js';
import { RolloutTaskSchema, type RolloutTask } from '../core/gen/parley/v1/rollout_pb.js';
import { Termination } from '../core/gen/parley/v1/sandbox_pb.js';
import { DEFAULT_EPISODE_OPTIONS, EpisodeAbortedError, TransientEpisodeError, runEpisode, type EpisodeOptions, type TaskInfo } from './episode.js';
import type { EpisodePorts } from './ports.js';
import { encodeTrajectory } from './trajectory-codec.js';

export type WorkerState = 'idle' | 'running' | 'draining' | 'stopped';

export interface RolloutWorkerOptions {
  run: string;
  name: string;
  /** Episodes in flight at once. */
  concurrency: number;
  /** A message not ended or heartbeated within this is redelivered (heartbeats every third of it). */
  ackWaitMs: number;
  maxDeliver: number;
  /** Transient failures retried in place before the task is handed back (one delivery spent). Default 20. */
  transientRetries?: number;
  /** How long `stop()` waits for in-flight episodes before naking them. */
  drainTimeoutMs: number;
  episode: EpisodeOptions;
}

export interface RolloutWorkerDeps {
  bus: Bus;
  ports: EpisodePorts;
  logger: Logger;
  registry?: Registry;
}

function workerMetrics(registry: Registry) {
  return {
    outcomes: getOrCreate(registry, 'parley_rollout_tasks_total', () =>
      new Counter({ name: 'parley_rollout_tasks_total', help: 'Rollout task outcomes: published, retry_transient (retried in place), nak_transient, term_malformed, nak_error.', labelNames: ['outcome'], registers: [] }),
    ),
    terminations: getOrCreate(registry, 'parley_rollout_episodes_total', () =>
      new Counter({ name: 'parley_rollout_episodes_total', help: 'Finished episodes by termination.', labelNames: ['termination'], registers: [] }),
    ),
    inflight: getOrCreate(registry, 'parley_rollout_episodes_inflight', () =>
      new Gauge({ name: 'parley_rollout_episodes_inflight', help: 'Episodes in progress.', registers: [] }),
    ),
    seconds: getOrCreate(registry, 'parley_rollout_episode_duration_seconds', () =>
      new Histogram({ name: 'parley_rollout_episode_duration_seconds', help: 'Episode wall time.', buckets: [0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30, 60, 300], registers: [] }),
    ),
    reward: getOrCreate(registry, 'parley_rollout_reward_ratio', () =>
      new Histogram({ name: 'parley_rollout_reward_ratio', help: 'Episode rewards.', buckets: [0, 0.25, 0.5, 0.75, 1], registers: [] }),
    ),
    tokens: getOrCreate(registry, 'parley_rollout_tokens_total', () =>
      new Counter({ name: 'parley_rollout_tokens_total', help: 'Tokens in published trajectories (all, and sampled).', labelNames: ['kind'], registers: [] }),
    ),
  };
}

/** Checks a decoded task; returns the problem or undefined. */
export function taskProblem(t: RolloutTask): string | undefined {
  if (!t.run) return 'run: required';
  if (!t.taskId) return 'task_id: required';
  if (!t.domain) return 'domain: required';
  if (!t.groupId) return 'group_id: required';
  if (t.sampleIndex < 0) return 'sample_index: must be ≥ 0';
  if (t.horizon < 0) return 'horizon: must be ≥ 0';
  if (t.mode !== '' && t.mode !== 'mua' && t.mode !== 'tau2') return `mode: '${t.mode}' is not one of mua, tau2`;
  return undefined;
}

/** Tasks whose info a worker keeps. */
const TASK_INFO_CACHE = 4096;

export class RolloutWorker {
  private state: WorkerState = 'idle';
  private stream: MessageStream | undefined;
  private loop: Promise<void> | undefined;
  private failure: Error | undefined;
  private readonly inflight = new Set<Promise<void>>();
  private readonly inflightMsgs = new Set<BusMessage>();
  /** Task info by domain and task id, least recently used first. */
  private readonly taskInfo = new Map<string, Promise<TaskInfo | undefined>>();
  private readonly metrics: ReturnType<typeof workerMetrics>;
  private readonly subjects;
  private crashed = false;
  /** One per episode in flight, aborted on a crash or a drain that ran out of time. */
  private readonly aborts = new Set<AbortController>();

  constructor(
    private readonly opts: RolloutWorkerOptions,
    private readonly deps: RolloutWorkerDeps,
  ) {
    this.subjects = runSubjects(opts.run);
    this.metrics = workerMetrics(deps.registry ?? metricsRegistry());
  }

  get currentState(): WorkerState {
    return this.state;
  }

  /** Starts pulling tasks. Safe to call twice. Rejects when the streams cannot be bound. */
  async start(): Promise<void> {
    if (this.state !== 'idle') return;
    this.state = 'running';
    const consumer = await this.deps.bus.consumer({
      stream: this.subjects.tasksStream,
      durable: 'rollout',
      ackWaitMs: this.opts.ackWaitMs,
      maxDeliver: this.opts.maxDeliver,
      maxAckPending: Math.max(this.opts.concurrency * 4, 64),
    });
    this.loop = this.pull(consumer).catch((e: unknown) => {
      // The task stream ended on its own (deleted with its run, or a bus error that is not retryable):
      // nothing more will arrive. In-flight episodes finish and publish; the owner learns it from ended().
      this.failure = e instanceof Error ? e : new Error(String(e));
      if (this.state === 'running') this.state = 'stopped';
      this.deps.logger.error({ err: this.failure }, 'the task stream ended; this worker pulls no more tasks');
    });
  }

  /** Resolves when pulling ends: with the error that ended it, or undefined after stop() or crash(). */
  async ended(): Promise<Error | undefined> {
    await this.loop;
    return this.failure;
  }

  private async pull(consumer: Consumer): Promise<void> {
    this.stream = consumer.consume({ expiresMs: 5000, batch: 1 });
    for await (const msg of this.stream) {
      if (this.state !== 'running') {
        msg.nak();
        break;
      }
      const p = this.handle(msg).finally(() => this.inflight.delete(p));
      this.inflight.add(p);
      if (this.inflight.size >= this.opts.concurrency) await Promise.race(this.inflight);
    }
  }

  /**
   * What the episode needs of a task (scenario, task JSON), asked of the sandbox per task and kept for the
   * most recent TASK_INFO_CACHE tasks (a group's samples share it): a domain's whole list may not fit in a
   * bus message. Resolves undefined for a task the domain does not have.
   */
  private infoFor(domain: string, taskId: string): Promise<TaskInfo | undefined> {
    const key = `${domain}\u0000${taskId}`;
    let p = this.taskInfo.get(key);
    if (p) {
      this.taskInfo.delete(key);
      this.taskInfo.set(key, p);
      return p;
    }
    p = this.deps.ports.sandbox.listTasks({ domain, split: '', taskIds: [taskId] }).then(
      (r) => r.tasks.map((t) => ({ scenario: t.scenario, taskJson: t.taskJson }))[0],
      (e: unknown) => {
        if (ParleyError.from(e).code === 'not_found') return undefined;
        throw e;
      },
    );
    p.catch(() => this.taskInfo.delete(key));
    this.taskInfo.set(key, p);
    while (this.taskInfo.size > TASK_INFO_CACHE) this.taskInfo.delete(this.taskInfo.keys().next().value!);
    return p;
  }

  private async handle(msg: BusMessage): Promise<void> {
    let task: RolloutTask;
    try {
      task = fromBinary(RolloutTaskSchema, msg.data);
    } catch (e) {
      this.metrics.outcomes.inc({ outcome: 'term_malformed' });
      msg.term(`malformed RolloutTask: ${(e as Error).message}`);
      this.deps.logger.warn({ seq: msg.seq }, 'terminated a malformed task message');
      return;
    }
    const problem = taskProblem(task);
    if (problem) {
      this.metrics.outcomes.inc({ outcome: 'term_malformed' });
      msg.term(`invalid RolloutTask: ${problem}`);
      this.deps.logger.warn({ seq: msg.seq, problem }, 'terminated an invalid task');
      return;
    }
    this.inflightMsgs.add(msg);
    const abort = new AbortController();
    this.aborts.add(abort);
    this.metrics.inflight.inc();
    const heartbeat = setInterval(() => msg.working(), Math.max(50, this.opts.ackWaitMs / 3));
    const started = performance.now();
    try {
      let info: TaskInfo | undefined;
      try {
        info = await this.infoFor(task.domain, task.taskId);
      } catch (e) {
        throw new TransientEpisodeError(ParleyError.from(e));
      }
      const traj = info
        ? await this.episodeHeld(msg, task, info, abort.signal)
        : {
            id: `${task.run}/${task.taskId}/${task.groupId}/${task.sampleIndex}`,
            task,
            termination: Termination.ERROR,
            terminationDetail: `error:task:not_found: no task '${task.taskId}' in domain '${task.domain}'`,
            worker: this.opts.name,
          };
      if (this.crashed) return; // a crashed worker neither publishes nor ends the message
      const bytes = encodeTrajectory(traj);
      await this.deps.bus.publish(this.subjects.trajectories, bytes, { msgId: traj.id! });
      msg.ack();
      this.metrics.outcomes.inc({ outcome: 'published' });
      this.metrics.terminations.inc({ termination: Termination[traj.termination ?? 0] ?? 'UNKNOWN' });
      this.metrics.reward.observe(traj.reward ?? 0);
      this.metrics.tokens.inc({ kind: 'all' }, traj.tokenIds?.length ?? 0);
      this.metrics.tokens.inc({ kind: 'sampled' }, (traj.lossMask ?? []).reduce((a: number, b: number) => a + b, 0));
      this.metrics.seconds.observe((performance.now() - started) / 1000);
    } catch (e) {
      // A crashed worker ends nothing; an episode aborted by a timed-out drain was already nak'ed.
      if (this.crashed || e instanceof EpisodeAbortedError) return;
      const delay = backoffDelay(msg.deliveryCount, 500, 30_000);
      if (e instanceof TransientEpisodeError) {
        this.metrics.outcomes.inc({ outcome: 'nak_transient' });
        this.deps.logger.warn({ seq: msg.seq, err: e.cause.message, delay }, 'transient failure; task handed back');
      } else {
        this.metrics.outcomes.inc({ outcome: 'nak_error' });
        this.deps.logger.error({ seq: msg.seq, err: e }, 'episode failed; task handed back');
      }
      msg.nak(delay);
    } finally {
      clearInterval(heartbeat);
      this.inflightMsgs.delete(msg);
      this.aborts.delete(abort);
      this.metrics.inflight.dec();
    }
  }

  /**
   * Runs the episode, retrying transient failures (an actor not answering yet, e.g. a policy whose vLLM is
   * still loading its model) in place with backoff while the message is held by heartbeats, up to
   * `transientRetries` times: a delivery is spent only on failures that outlast them, so a slow start never
   * exhausts a task's maxDeliver. Each attempt has its own conversation id. Rejects with the last error.
   */
  private async episodeHeld(msg: BusMessage, task: RolloutTask, info: TaskInfo, signal: AbortSignal) {
    for (let local = 0; ; local++) {
      try {
        // Attempt numbers: delivery d gets d*100 + local, unique across deliveries and retries.
        return await runEpisode(this.deps.ports, task, info, { ...this.opts.episode, worker: this.opts.name, signal }, msg.deliveryCount * 100 + local);
      } catch (e) {
        if (!(e instanceof TransientEpisodeError) || local + 1 >= (this.opts.transientRetries ?? 20) || signal.aborted || this.crashed) throw e;
        const delay = backoffDelay(local + 1, 500, 15_000);
        this.metrics.outcomes.inc({ outcome: 'retry_transient' });
        this.deps.logger.warn({ seq: msg.seq, err: e.cause.message, delay, retry: local + 1 }, 'transient failure; retrying the episode while holding the task');
        await sleep(delay, signal).catch(() => undefined);
      }
    }
  }

  /**
   * Simulates a crash (for in-process benchmarks): stops at once; in-flight episodes make no further calls
   * (as a killed process would not) and are abandoned without publishing or ending their messages, which
   * the bus redelivers after the ack wait.
   */
  crash(): void {
    this.crashed = true;
    this.state = 'stopped';
    this.stream?.stop();
    for (const a of this.aborts) a.abort();
  }

  /**
   * Drains: stops pulling, waits up to drainTimeoutMs for in-flight episodes, naks the rest for prompt
   * redelivery elsewhere and aborts them (they make no further calls). Safe to call twice.
   */
  async stop(): Promise<void> {
    if (this.state === 'stopped' || this.state === 'draining') return this.loop;
    if (this.state === 'idle') {
      this.state = 'stopped';
      return;
    }
    this.state = 'draining';
    this.stream?.stop();
    const timeout = new Promise<'timeout'>((r) => setTimeout(() => r('timeout'), this.opts.drainTimeoutMs).unref());
    const done = Promise.all([...this.inflight]).then(() => 'done' as const);
    if ((await Promise.race([done, timeout])) === 'timeout') {
      for (const m of this.inflightMsgs) m.nak();
      this.deps.logger.warn({ left: this.inflightMsgs.size }, 'drain timed out; unfinished tasks handed back');
      for (const a of this.aborts) a.abort();
    }
    await this.loop?.catch(() => undefined);
    this.state = 'stopped';
  }
}

export const DEFAULT_WORKER_OPTIONS: Omit<RolloutWorkerOptions, 'run' | 'name'> = {
  concurrency: 8,
  ackWaitMs: 30_000,
  maxDeliver: 5,
  drainTimeoutMs: 30_000,
  episode: DEFAULT_EPISODE_OPTIONS,
};
