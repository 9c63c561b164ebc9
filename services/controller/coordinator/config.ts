// The run coordinator's settings, each documented with its default, parsed once at start-up; a bad
// value fails naming the field. TaskFeedConfig drives publishing (shared with `parley run`);
// CoordinatorConfig adds the cluster actor's loop; ServeCoordinatorConfig adds the process.

import { z } from 'zod';
import { envOverrides, parseConfig } from '../../core/config.js';
import type { HeldOutSettings } from '../../eval/index.js';
import type { RunSpec } from '../run-spec.js';

const RUN_NAME = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;
const num = () => z.coerce.number();
/** "required: …" for a missing value, "must be a string" for another type. */
const required = (what: string) => (issue: { input: unknown }) => (issue.input === undefined ? `required: ${what}` : 'must be a string');

export const TaskFeedConfigSchema = z.object({
  /** The run's name (a DNS-1123 label): tasks go to parley.<run>.tasks. Required. */
  run: z.string({ error: required('the TrainingRun name') }).regex(RUN_NAME, 'must be a DNS-1123 label (lower-case letters, digits, -): the TrainingRun name'),
  /** The sandbox domain every task is in (retail, airline, mock, local). Required. */
  domain: z.string({ error: required('the sandbox domain of the tasks, e.g. retail') }).min(1, 'must name the sandbox domain (e.g. retail)'),
  /** Samples per task (the GRPO group). */
  groupSize: num().int().min(1).default(8),
  /** Groups per learner step; a top-up publishes this many, and only while fewer than groupsPerStep × groupSize tasks are queued. */
  groupsPerStep: num().int().min(1).default(16),
  /** Learner steps of the run: nothing is published once the learner reached it (0: no limit). */
  steps: num().int().min(0).default(200),
  /** ScalingInter-RL turn horizons, one per stage; the last holds for the rest of training. */
  horizons: z.array(num().int().min(1)).min(1, 'must hold at least one horizon').default([10, 20, 30]),
  /** Learner steps per horizon stage (Δ). */
  horizonEverySteps: num().int().min(1).default(100),
  /** Episode protocol: mua (first tool call of a reply) or tau2 (every call). */
  mode: z.enum(['mua', 'tau2']).default('mua'),
  /** The run seed: task order and sampling seeds follow from it. */
  seed: num().int().min(0).default(0),
});

export type TaskFeedConfig = z.infer<typeof TaskFeedConfigSchema>;
export type TaskFeedConfigInput = z.input<typeof TaskFeedConfigSchema>;

/** Held-out evaluation by the coordinator (what `evaluationSettings` derives from the run spec). */
export const EvaluationConfigSchema = z
  .object({
    /** Split (split_tasks.json) of the held-out tasks; a domain without it is evaluated on all its tasks. */
    split: z.string().default('test'),
    /** The task file the sandbox serves, when not the domain's tasks.json (reported with the results). */
    taskFile: z.string().optional(),
    /** Samples per task: pass^1 … pass^k. */
    k: num().int().min(1).default(4),
    /** Tasks of the split evaluated (0: all). */
    maxTasks: num().int().min(0).default(0),
    /** Evaluate every this many learner steps (0: only once the learner reached the run's steps). */
    everySteps: num().int().min(0).default(0),
    /** Evaluate policy version 0 before the first tasks are published (verl's val_before_train). */
    beforeTrain: z.preprocess((v) => (v === 'true' ? true : v === 'false' ? false : v), z.boolean()).default(false),
    /** Evaluation episodes in flight. */
    concurrency: num().int().min(1).default(128),
    /** τ² limits and sampling of evaluation episodes: the run's rollout settings. */
    maxSteps: num().int().min(1).default(200),
    maxToolErrors: num().int().min(1).default(10),
    maxContextTokens: num().int().min(1).default(32768),
    temperature: num().min(0).default(1),
    topP: num().gt(0).max(1).default(1),
    maxTokensPerTurn: num().int().min(1).default(512),
  })
  .strict();

export type EvaluationConfig = z.infer<typeof EvaluationConfigSchema>;

export const CoordinatorConfigSchema = TaskFeedConfigSchema.extend({
  /** Split (split_tasks.json) whose tasks are drawn; empty: every task of the domain. */
  trainSplit: z.string().default('train'),
  /** How often the queue depth and the learner's step are read (ms). */
  pollIntervalMs: num().int().min(50).default(1000),
  /** Held-out evaluation during training; absent: this coordinator only publishes tasks. */
  evaluation: EvaluationConfigSchema.optional(),
});

export type CoordinatorConfig = z.infer<typeof CoordinatorConfigSchema>;
export type CoordinatorConfigInput = z.input<typeof CoordinatorConfigSchema>;

export const ServeCoordinatorConfigSchema = z.object({
  /** Message bus: nats://host:port (memory:// only for tests that pass their own bus). Env: PARLEY_BUS_URL. */
  busUrl: z.string().min(1).default('memory://'),
  /** Where the task ids come from and evaluation episodes run: 'nats' (the run's Sandbox over request-reply) or a Sandbox gRPC host:port. Env: PARLEY_SANDBOX. */
  sandbox: z.string().min(1).default('nats'),
  /** The user simulator of evaluation episodes: 'nats' or a gRPC host:port. */
  usersim: z.string().min(1).default('nats'),
  /** The policy of evaluation episodes: 'nats' or a gRPC host:port. */
  policy: z.string().min(1).default('nats'),
  /** Deadline of one generation in an evaluation episode (ms): a busy inference server queues requests. */
  policyTimeoutMs: num().int().positive().default(600_000),
  /** Deadline of one sandbox or user-simulator call (ms). */
  actorTimeoutMs: num().int().positive().default(60_000),
  /** Listen host of /metrics, /healthz and /readyz. */
  host: z.string().default('0.0.0.0'),
  /** Port of /metrics, /healthz and /readyz (0 = any free one, -1 = off). Env: PARLEY_METRICS_PORT. */
  metricsPort: num().int().min(-1).max(65535).default(9464),
});

export type ServeCoordinatorConfig = z.infer<typeof ServeCoordinatorConfigSchema>;

/** The task feed's settings for `input`. Throws ParleyError(invalid_argument) naming every bad field. */
export function taskFeedConfig(input: TaskFeedConfigInput | Record<string, unknown>): TaskFeedConfig {
  return parseConfig(TaskFeedConfigSchema, input, 'coordinator config');
}

/** The coordinator's settings for `input`. Throws ParleyError(invalid_argument) naming every bad field. */
export function coordinatorConfig(input: CoordinatorConfigInput | Record<string, unknown>): CoordinatorConfig {
  return parseConfig(CoordinatorConfigSchema, input, 'coordinator config');
}

const ENV_KEYS = ['run', 'busUrl', 'sandbox', 'metricsPort'] as const;

/**
 * Resolves the coordinator's settings from explicit options over PARLEY_* environment variables.
 * Throws ParleyError(invalid_argument) naming every bad field, e.g.
 * `invalid coordinator config: groupSize: Too small: expected number to be >=1`.
 */
export function resolveCoordinatorConfig(
  opts: Record<string, unknown> = {},
  env: NodeJS.ProcessEnv = process.env,
): { coordinator: CoordinatorConfig; serve: ServeCoordinatorConfig } {
  const defined = Object.fromEntries(Object.entries(opts).filter(([, v]) => v !== undefined));
  const input: Record<string, unknown> = { ...envOverrides(ENV_KEYS, env), ...defined };
  const serveKeys = Object.keys(ServeCoordinatorConfigSchema.shape);
  const pick = (keep: boolean) => Object.fromEntries(Object.entries(input).filter(([k]) => serveKeys.includes(k) === keep));
  return {
    coordinator: parseConfig(CoordinatorConfigSchema.strict(), pick(false), 'coordinator config'),
    serve: parseConfig(ServeCoordinatorConfigSchema, pick(true), 'coordinator config'),
  };
}

/** The coordinator's settings for a run spec (what the controller renders into the run's ConfigMap). */
export function coordinatorSettings(spec: RunSpec): CoordinatorConfigInput {
  return { ...taskFeedSettings(spec, spec.data.domain), trainSplit: spec.data.trainSplit, evaluation: evaluationSettings(spec) };
}

/** Evaluation episodes in flight (the local run's figure; results do not depend on it: every episode has its own seed). */
const EVAL_CONCURRENCY = 128;

/** The held-out evaluation settings of a run spec: its evaluation block, eval split and rollout (τ²) settings. */
export function evaluationSettings(spec: RunSpec): EvaluationConfig {
  const r = spec.rollout;
  return {
    split: spec.data.evalSplit,
    ...(spec.data.tasksFile ? { taskFile: spec.data.tasksFile } : {}),
    k: spec.evaluation.k,
    maxTasks: spec.evaluation.maxTasks,
    everySteps: spec.evaluation.everySteps,
    beforeTrain: spec.evaluation.beforeTrain,
    concurrency: EVAL_CONCURRENCY,
    maxSteps: r.maxSteps,
    maxToolErrors: r.maxToolErrors,
    maxContextTokens: spec.model.maxContextTokens,
    temperature: r.temperature,
    topP: r.topP,
    maxTokensPerTurn: r.maxTokensPerTurn,
  };
}

/** What the held-out evaluator needs: the task feed's run, domain, steps, horizons and seed with the evaluation block. */
export function heldOutSettings(feed: TaskFeedConfig, e: EvaluationConfig): HeldOutSettings {
  return {
    run: feed.run,
    domain: feed.domain,
    split: e.split,
    ...(e.taskFile ? { taskFile: e.taskFile } : {}),
    k: e.k,
    maxTasks: e.maxTasks,
    everySteps: e.everySteps,
    beforeTrain: e.beforeTrain,
    steps: feed.steps,
    horizons: feed.horizons,
    horizonEverySteps: feed.horizonEverySteps,
    mode: feed.mode,
    seed: feed.seed,
    concurrency: e.concurrency,
    episode: { maxSteps: e.maxSteps, maxToolErrors: e.maxToolErrors, maxContextTokens: e.maxContextTokens, temperature: e.temperature, topP: e.topP, maxTokensPerTurn: e.maxTokensPerTurn },
  };
}

/** The task feed's settings for a run spec; `domain` is the sandbox domain the tasks are in. */
export function taskFeedSettings(spec: RunSpec, domain: string): TaskFeedConfig {
  const a = spec.algorithm;
  return {
    run: spec.name,
    domain,
    groupSize: a.groupSize,
    groupsPerStep: a.groupsPerStep,
    steps: a.steps,
    horizons: spec.horizon.horizons,
    horizonEverySteps: spec.horizon.everySteps,
    mode: spec.rollout.mode,
    seed: spec.seed,
  };
}
