// The run coordinator's settings, each documented with its default, parsed once at start-up; a bad
// value fails naming the field. TaskFeedConfig drives publishing (shared with `parley run`);
// CoordinatorConfig adds the cluster actor's loop; ServeCoordinatorConfig adds the process.

import { z } from 'zod';
import { envOverrides, parseConfig } from '../../core/config.js';
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

export const CoordinatorConfigSchema = TaskFeedConfigSchema.extend({
  /** Split (split_tasks.json) whose tasks are drawn; empty: every task of the domain. */
  trainSplit: z.string().default('train'),
  /** How often the queue depth and the learner's step are read (ms). */
  pollIntervalMs: num().int().min(50).default(1000),
});

export type CoordinatorConfig = z.infer<typeof CoordinatorConfigSchema>;
export type CoordinatorConfigInput = z.input<typeof CoordinatorConfigSchema>;

export const ServeCoordinatorConfigSchema = z.object({
  /** Message bus: nats://host:port (memory:// only for tests that pass their own bus). Env: PARLEY_BUS_URL. */
  busUrl: z.string().min(1).default('memory://'),
  /** Where the train task ids come from: 'nats' (the run's Sandbox over request-reply) or a Sandbox gRPC host:port. Env: PARLEY_SANDBOX. */
  sandbox: z.string().min(1).default('nats'),
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
  return { ...taskFeedSettings(spec, spec.data.domain), trainSplit: spec.data.trainSplit };
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
