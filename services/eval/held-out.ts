// Held-out evaluation during training, decided and described once for every wiring: which learner
// steps are evaluated, the evaluation request for a step (tasks of the eval split, k, horizon, seeds,
// the τ² episode settings, the policy version) and the eval_completed event it ends in. `parley run`
// and the cluster's run coordinator both call these, so the two cannot drift apart.

import type { Bus } from '../core/bus/index.js';
import { ParleyError } from '../core/errors.js';
import { runSubjects } from '../core/run-subjects.js';
import { DEFAULT_EPISODE_OPTIONS, type EpisodeOptions, type TaskInfo } from '../rollout/episode.js';
import { horizonAt, type HorizonSchedule } from '../rollout/horizon.js';
import type { SandboxPort } from '../rollout/ports.js';
import type { EvalOptions, EvalResult } from './evaluator.js';

/** The episode settings of evaluation episodes (the run's rollout settings). */
export type HeldOutEpisodeSettings = Pick<EpisodeOptions, 'maxSteps' | 'maxToolErrors' | 'maxContextTokens' | 'temperature' | 'topP' | 'maxTokensPerTurn'>;

/** Everything the held-out evaluation of a run needs, resolved from its spec. */
export interface HeldOutSettings {
  run: string;
  /** Sandbox domain of the tasks. */
  domain: string;
  /** The eval split (split_tasks.json); a domain without it is evaluated on all its tasks. */
  split: string;
  /** The task file the sandbox serves, when not the domain's tasks.json (reported in the event). */
  taskFile?: string;
  /** Samples per task (pass^1 … pass^k). */
  k: number;
  /** Tasks of the split evaluated (0: all). */
  maxTasks: number;
  /** Evaluate every this many learner steps (0: only after the last step). */
  everySteps: number;
  /** Evaluate step 0 (policy version 0) before training starts. */
  beforeTrain?: boolean;
  /** Learner steps of the run (0: no limit, so no final evaluation). */
  steps: number;
  horizons: number[];
  horizonEverySteps: number;
  mode: 'mua' | 'tau2';
  seed: number;
  /** Evaluation episodes in flight. */
  concurrency: number;
  episode: HeldOutEpisodeSettings;
}

/** parley.<run>.events.eval_completed: held-out pass^k of the policy at a learner step. */
export interface EvalCompletedEvent {
  run: string;
  /** The learner step evaluated. */
  step: number;
  /** True for the evaluation after the run's last step. */
  final: boolean;
  /** The lowest policy version the episodes were sampled from (the learner's version at `step`). */
  policyVersion: number;
  /** pass^1 (the status's passRate). */
  passRate: number;
  /** 95% bootstrap interval of pass^1 over tasks. */
  passRateInterval: [number, number];
  /** pass^k for k = 1 … evaluation.k. */
  passk: Record<string, number>;
  meanReward: number;
  tasks: number;
  episodes: number;
  /** Wall time of the evaluation. */
  seconds: number;
  domain: string;
  split: string;
  /** The task file the sandbox served the tasks from (e.g. tasks_release_37199f3.json). */
  taskFile?: string;
  /** The reward components the tasks are scored on (the union of their reward_basis; all computed). */
  basis: string[];
  /** Episodes by termination (the Termination enum's number). */
  terminations: Record<string, number>;
}

/** Dedup id of eval_completed: one per step, however often a restarted coordinator publishes it. */
export const evalCompletedMsgId = (run: string, step: number): string => `${run}/eval/${step}`;

/** True when the policy after learner step `step` is evaluated: every `everySteps` steps and after the last one. */
export function isEvalStep(s: Pick<HeldOutSettings, 'everySteps' | 'steps'>, step: number): boolean {
  if (!(step > 0)) return false;
  if (s.steps > 0 && step === s.steps) return true;
  return s.everySteps > 0 && step % s.everySteps === 0 && (s.steps === 0 || step < s.steps);
}

/**
 * The step to evaluate when the learner is at `learnerStep` and every step up to `evaluated` is done:
 * the latest evaluation step in (evaluated, learnerStep], or undefined. Steps passed while an earlier
 * evaluation ran are skipped: the policy of a passed step is no longer served.
 */
export function dueEvalStep(s: Pick<HeldOutSettings, 'everySteps' | 'steps'>, learnerStep: number, evaluated: number): number | undefined {
  const at = s.steps > 0 ? Math.min(learnerStep, s.steps) : learnerStep;
  if (s.steps > 0 && at === s.steps) return evaluated < s.steps ? s.steps : undefined;
  if (!(s.everySteps > 0)) return undefined;
  const latest = Math.floor(at / s.everySteps) * s.everySteps;
  return latest > evaluated && latest > 0 ? latest : undefined;
}

/** What an evaluation at a training step is called: `final` after the last step, else `step <n>`. */
export function evalName(s: Pick<HeldOutSettings, 'steps'>, step: number): string {
  return s.steps > 0 && step === s.steps ? 'final' : step === 0 ? 'before training' : `step ${step}`;
}

/** The held-out tasks: task ids in the order of the split, and what the episode driver needs of each. */
export interface HeldOutTasks {
  taskIds: string[];
  info: Map<string, TaskInfo>;
  /** The task file the sandbox serves them from (empty from a sandbox that predates ListTasks.tasks_file). */
  tasksFile: string;
}

/**
 * Lists the eval split through the Sandbox (all the domain's tasks when it has no such split), capped at
 * maxTasks. Rejects with the Sandbox's ParleyError (unknown domain, unreachable sandbox), or
 * failed_precondition when there is no task to evaluate.
 */
/** Tasks fetched per ListTasks call (a τ² task's JSON is a few kB; a bus message carries 1 MiB). */
const TASKS_PER_CALL = 50;

export async function heldOutTasks(sandbox: Pick<SandboxPort, 'listTasks'>, s: Pick<HeldOutSettings, 'domain' | 'split' | 'maxTasks'>): Promise<HeldOutTasks> {
  // Ids first, then the tasks themselves in chunks: a split's whole list may not fit in one bus message.
  let split = s.split;
  let listed;
  try {
    listed = await sandbox.listTasks({ domain: s.domain, split, idsOnly: true });
  } catch (e) {
    const err = ParleyError.from(e);
    if (err.code !== 'not_found' || err.field !== 'split') throw e;
    split = '';
    listed = await sandbox.listTasks({ domain: s.domain, split, idsOnly: true });
  }
  const ids = (s.maxTasks > 0 ? listed.tasks.slice(0, s.maxTasks) : listed.tasks).map((t) => t.id);
  if (ids.length === 0) throw new ParleyError('failed_precondition', `evaluation: domain '${s.domain}' has no task to evaluate in split '${s.split}'`, { field: 'data.evalSplit' });
  const info = new Map<string, TaskInfo>();
  for (let i = 0; i < ids.length; i += TASKS_PER_CALL) {
    const chunk = await sandbox.listTasks({ domain: s.domain, split, taskIds: ids.slice(i, i + TASKS_PER_CALL) });
    for (const t of chunk.tasks) info.set(t.id, { scenario: t.scenario, taskJson: t.taskJson });
  }
  return { taskIds: ids, info, tasksFile: listed.tasksFile ?? '' };
}

export interface HeldOutRequest {
  /** What the evaluation is called (`baseline`, `after SFT`, evalName()): it seeds the episodes. */
  name: string;
  /** The learner step whose policy is evaluated (0 before training). */
  step: number;
  /** The learner's policy version at that step: episodes need at least this version. */
  policyVersion: number;
  taskIds: string[];
  /** The task file they come from (HeldOutTasks.tasksFile), reported in eval_completed. */
  tasksFile?: string;
  signal?: AbortSignal;
  onProgress?: (done: number, total: number) => void;
}

/** Attempts of an evaluation episode whose actors failed transiently (see EvalOptions.episodeAttempts). */
const EPISODE_ATTEMPTS = 5;

/**
 * The turn horizon of an evaluation episode (0: none). MUA mode evaluates under the training schedule's
 * horizon at `step`; τ² mode never applies one: tau2 ends an episode only on its stops and limits
 * (max_steps, max_errors), and a pass^k cut at a training horizon is not tau2's. Throws on a MUA schedule
 * without horizons.
 */
export function evalHorizon(mode: 'mua' | 'tau2', schedule: HorizonSchedule, step: number): number {
  return mode === 'tau2' ? 0 : horizonAt(schedule, step);
}

/** The evaluate() options for one held-out evaluation. Throws on a MUA horizon schedule without horizons. */
export function heldOutRequest(s: HeldOutSettings, r: HeldOutRequest): EvalOptions {
  return {
    run: s.run,
    domain: s.domain,
    taskIds: r.taskIds,
    k: s.k,
    horizon: evalHorizon(s.mode, { horizons: s.horizons, everySteps: s.horizonEverySteps }, r.step),
    mode: s.mode,
    concurrency: s.concurrency,
    episode: { ...DEFAULT_EPISODE_OPTIONS, ...s.episode, worker: 'eval', ...(r.signal ? { signal: r.signal } : {}) },
    seed: s.seed + r.step,
    label: `${r.name.replace(/[^A-Za-z0-9]+/g, '-')}-${r.step}`,
    minPolicyVersion: r.policyVersion,
    episodeAttempts: EPISODE_ATTEMPTS,
    ...(r.tasksFile ? { tasksFile: r.tasksFile } : {}),
    ...(r.onProgress ? { onProgress: r.onProgress } : {}),
  };
}

/** The eval_completed event of an evaluation of learner step `step`. */
export function evalCompletedEvent(s: HeldOutSettings, step: number, policyVersion: number, r: EvalResult, seconds: number): EvalCompletedEvent {
  return {
    run: s.run,
    step,
    final: s.steps > 0 && step === s.steps,
    policyVersion,
    passRate: r.report.pass1.value,
    passRateInterval: [r.report.pass1.low, r.report.pass1.high],
    passk: Object.fromEntries(Object.entries(r.report.passk).map(([k, e]) => [k, e.value])),
    meanReward: r.meanReward,
    tasks: r.report.tasks,
    episodes: r.episodes,
    seconds,
    domain: s.domain,
    split: s.split,
    // What the sandbox served, else what the settings name.
    ...(r.tasksFile || s.taskFile ? { taskFile: r.tasksFile || s.taskFile } : {}),
    basis: r.basis,
    terminations: r.terminations,
  };
}

/**
 * Publishes eval_completed on the run's events stream under its dedup id, so a republish after a
 * restart is stored once. Rejects with BusError (no events stream, NATS unreachable).
 */
export async function publishEvalCompleted(bus: Bus, event: EvalCompletedEvent): Promise<void> {
  const data = new TextEncoder().encode(JSON.stringify(event));
  await bus.publish(runSubjects(event.run).event('eval_completed'), data, { msgId: evalCompletedMsgId(event.run, event.step), headers: { 'content-type': 'application/json' } });
}
