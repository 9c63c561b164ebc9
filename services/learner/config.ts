// The learner's settings, each documented with its default, parsed once at start-up; a bad value
// fails naming the field. LearnerConfig drives the algorithm; ServeLearnerConfig adds the process.

import { z } from 'zod';
import { envOverrides, parseConfig } from '../core/config.js';
import type { Algorithm } from './advantages.js';

const RUN_NAME = /^[A-Za-z0-9][A-Za-z0-9_-]{0,62}$/;
const num = () => z.coerce.number();
/** true/false, also as the strings a flag or environment variable carries. */
const bool = () => z.preprocess((v) => (v === 'true' ? true : v === 'false' ? false : v), z.boolean());

export const LearnerConfigSchema = z
  .object({
    /** The run's name: subjects live under parley.<run>.*; letters, digits, '-', '_'. */
    run: z.string().regex(RUN_NAME, 'letters, digits, - and _ only (it is a NATS subject token)').default('default'),
    /** Advantage estimator: grpo (DESIGN default), dr_grpo, rloo or reinforce_pp. */
    algorithm: z.enum(['grpo', 'dr_grpo', 'rloo', 'reinforce_pp'] satisfies Algorithm[]).default('grpo'),
    /** Samples per group when a trajectory's task does not say (DESIGN: n = 8). */
    groupSize: num().int().min(1).default(8),
    /** Complete groups per optimizer step. */
    groupsPerStep: num().int().min(1).default(16),
    /** Fewest members a group is trained with (after a timeout or stale drops); rloo needs ≥ 2. */
    minGroupSize: num().int().min(1).default(2),
    /** Close a group this long after its first member arrived (ms): train it with what came (≥ minGroupSize) or drop it. 0: wait forever. */
    groupTimeoutMs: num().int().min(0).default(600_000),
    /** DAPO's dynamic sampling: drop groups whose rewards are all equal (counted), so a step holds only informative groups. Off by default, as in verl. */
    dropZeroVarianceGroups: bool().default(false),
    /** GRPO's std: sample (n−1, what verl/TRL/OpenRLHF compute with torch.std) or population (n). */
    groupStd: z.enum(['sample', 'population']).default('sample'),
    /** REINFORCE++'s discount over the policy's tokens. */
    gamma: num().min(0).max(1).default(1),
    /** Dr.GRPO's constant normaliser per sequence: the generation budget in tokens (loss = Σ tokens / (sequences × this)). */
    drGrpoMaxTokens: num().int().min(1).default(4096),
    /** Learning rate sent with each OptimStep (0: the engine's configured lr). */
    lr: num().min(0).default(1e-6),
    /**
     * Learner steps of linear learning-rate warm-up: step k (0-based) trains at lr·(k+1)/warmupSteps until
     * k reaches warmupSteps, then at lr; counted in learner steps as verl's get_constant_schedule_with_warmup
     * (verl/utils/torch_functional.py) counts training steps, whatever ppoEpochs is. 0: constant lr.
     */
    warmupSteps: num().int().min(0).default(0),
    /**
     * PPO epochs over each step's batch (verl's ppo_epochs): every epoch runs ForwardBackward over every
     * micro-batch against the same old log-probs, then one OptimStep; the weights are saved once after the last.
     */
    ppoEpochs: num().int().min(1).default(1),
    /** Gradient-norm clip sent with each OptimStep (0: no clipping). */
    maxGradNorm: num().min(0).default(1),
    /** PPO clip ε below 1 (DESIGN: 0.2). */
    clipLow: num().gt(0).lt(1).default(0.2),
    /** PPO clip ε above 1 (DESIGN: 0.2; raise for DAPO's clip-higher). */
    clipHigh: num().gt(0).default(0.2),
    /** Dual-clip bound c for negative advantages (DESIGN: 3); 0 turns it off. */
    dualClip: num().refine((v) => v === 0 || v > 1, 'must be 0 (off) or > 1').default(3),
    /** β of the k3 KL loss against the frozen reference (DESIGN: 0.001); 0 turns it off. */
    klCoef: num().min(0).default(0.001),
    /** Entropy bonus coefficient (DESIGN: 0). */
    entropyCoef: num().default(0),
    /** Loss aggregation: token_mean over the whole step (DESIGN) or seq_mean. dr_grpo always uses its constant normaliser. */
    aggregation: z.enum(['token_mean', 'seq_mean']).default('token_mean'),
    /** Truncation cap of importance weights for off-policy (stale) samples. */
    isCap: num().gt(0).default(2),
    /**
     * Old-policy log-probs for the PPO ratio: recompute (a ComputeLogprobs pass before the update, as
     * verl does; stale samples then also get truncated importance weights against their behaviour
     * log-probs) or behaviour (use the sampler's log-probs as they came).
     */
    oldLogprobs: z.enum(['recompute', 'behaviour']).default('recompute'),
    /** Most tokens (summed sequence lengths) per ForwardBackward call; a longer sequence goes alone. */
    microBatchTokens: num().int().min(1).default(16_384),
    /**
     * Rewards a trajectory may carry, [min, max]; one outside (or not finite) is dead-lettered, not
     * trained on. τ²-style rewards are in [0, 1]; the default leaves room for shaped rewards and
     * penalties while refusing forged magnitudes (a 1e30 reward would swamp a step's advantages).
     */
    rewardRange: z.tuple([num(), num()]).default([-10, 10]),
    /**
     * Most tokens in one trajectory; a longer one is dead-lettered at intake. 0: the builtin model's
     * max_len from engineConfigJson (engine default 512); no check for other models, whose own limit
     * the engine enforces (a trajectory it refuses is found and dead-lettered during the step).
     */
    maxSequenceTokens: num().int().min(0).default(0),
    /** Staleness bound: trajectories whose oldest policy version is older than current − this are dropped (counted). */
    maxStepsOffPolicy: num().int().min(0).default(1),
    /** The run's last step (algorithm.steps): no step starts after it, so the final weights are that step's. 0 = no limit. */
    maxSteps: num().int().min(0).default(0),
    /** Folder of learner checkpoints and engine weights (created when absent). */
    checkpointDir: z.string().min(1).default('checkpoints'),
    /** Checkpoints whose consumed ids are remembered for deduplication after a restart. */
    dedupWindowCheckpoints: num().int().min(1).default(1000),
    /** How weights reach the policy: directory (a path on a shared volume) or object_store (NATS object store, small artifacts). */
    weightsTransport: z.enum(['directory', 'object_store']).default('directory'),
    /** Larger artifacts than this go by directory even when weightsTransport is object_store (bytes). */
    objectStoreMaxBytes: num().int().min(1).default(256 * 1024 * 1024),
    /** ScalingInter-RL turn horizons, one per stage (DESIGN example: [10, 20, 30]); empty: no schedule. */
    horizons: z.array(num().int().min(1)).default([]),
    /** Learner steps per horizon stage (DESIGN: Δ = 100). */
    horizonEverySteps: num().int().min(1).default(100),
    /** Engine model: builtin (small CPU transformer) or a Hugging Face model path. */
    model: z.string().min(1).default('builtin'),
    /** Engine settings as JSON text (InitRequest.config_json; fields: engine/parley_engine/config.schema.json). */
    engineConfigJson: z.string().default('{}'),
    /**
     * The builtin model's folder (tokenizer.json): when engineConfigJson leaves vocab_size out, the learner
     * fills it from this tokenizer at start (the cluster's ConfigMap is rendered before the folder exists).
     * Env: PARLEY_MODEL_DIR.
     */
    modelDir: z.string().min(1).optional(),
    /** Weights to start from when no checkpoint exists (e.g. a cold-start SFT result: a SaveWeights folder); empty: the engine's fresh Init. */
    initialWeights: z.string().default(''),
    /**
     * Cold start (MUA-RL): SFT on demonstrations when the run has no checkpoint yet; RL then starts from
     * its result, which is also the KL anchor (learner/cold-start.ts). Needs modelDir (the tokenizer).
     */
    coldStart: z
      .object({
        /** JSON lines of conversations (OpenAI-style messages, or {"messages": [...]}). */
        demonstrations: z.string().min(1),
        epochs: num().int().min(1).default(2),
        /** Conversations per optimizer step. */
        batchSize: num().int().min(1).default(32),
        learningRate: num().positive().default(1e-3),
      })
      .strict()
      .optional(),
    /** Seed for the engine's Init. */
    seed: num().int().min(0).default(0),
    /** A delivered trajectory not ended within this time is redelivered; the learner extends it while it holds one (ms). */
    ackWaitMs: num().int().min(1000).default(120_000),
    /** Most trajectories held unacknowledged (buffered or in a step); must fit groupsPerStep × groupSize. */
    maxBufferedTrajectories: num().int().min(1).default(4096),
    /** Tries of a step that fails with a non-retryable engine error before the learner stops; retryable errors retry forever with backoff. */
    maxStepAttempts: num().int().min(1).default(3),
  })
  .superRefine((c, ctx) => {
    if (c.coldStart && c.initialWeights) ctx.addIssue({ code: 'custom', path: ['coldStart'], message: 'give coldStart or initialWeights, not both: the cold start produces the initial weights' });
    if (!(c.rewardRange[0] < c.rewardRange[1])) ctx.addIssue({ code: 'custom', path: ['rewardRange'], message: 'must be [min, max] with min < max' });
    if (c.minGroupSize > c.groupSize) ctx.addIssue({ code: 'custom', path: ['minGroupSize'], message: `must be ≤ groupSize (${c.groupSize})` });
    if (c.algorithm === 'rloo' && c.minGroupSize < 2) ctx.addIssue({ code: 'custom', path: ['minGroupSize'], message: 'rloo needs groups of at least 2' });
    if (c.maxBufferedTrajectories < c.groupsPerStep * c.groupSize) {
      ctx.addIssue({ code: 'custom', path: ['maxBufferedTrajectories'], message: `must be ≥ groupsPerStep × groupSize (${c.groupsPerStep * c.groupSize})` });
    }
    try {
      const v: unknown = JSON.parse(c.engineConfigJson);
      if (!v || typeof v !== 'object' || Array.isArray(v)) throw new Error('not an object');
    } catch {
      ctx.addIssue({ code: 'custom', path: ['engineConfigJson'], message: 'must be a JSON object' });
    }
  });

export type LearnerConfig = z.infer<typeof LearnerConfigSchema>;
export type LearnerConfigInput = z.input<typeof LearnerConfigSchema>;

export const ServeLearnerConfigSchema = z.object({
  /** gRPC listen host. */
  host: z.string().default('0.0.0.0'),
  /** gRPC port of the Learner service (0 = pick a free one). Env: PARLEY_PORT. */
  port: num().int().min(0).max(65535).default(50061),
  /** Prometheus /metrics port (0 = pick a free one, -1 = off). Env: PARLEY_METRICS_PORT. */
  metricsPort: num().int().min(-1).max(65535).default(9465),
  /** Message bus: memory:// (in-process) or nats://host:port. Env: PARLEY_BUS_URL. */
  busUrl: z.string().default('memory://'),
  /** The trainer engine's host:port; empty: spawn the Python engine beside the learner. Env: PARLEY_TRAINER_ADDRESS. */
  trainerAddress: z.string().default(''),
  /** Python interpreter for a spawned engine. Env: PARLEY_PYTHON. */
  python: z.string().default('/usr/bin/python3'),
  /** How long a spawned engine may take to become healthy (ms). */
  engineStartTimeoutMs: num().int().min(1000).default(120_000),
});

export type ServeLearnerConfig = z.infer<typeof ServeLearnerConfigSchema>;

const ENV_KEYS = ['run', 'algorithm', 'checkpointDir', 'modelDir', 'port', 'metricsPort', 'busUrl', 'trainerAddress', 'python'] as const;

/**
 * Resolves the learner's settings from explicit options over PARLEY_* environment variables.
 * Throws ParleyError(invalid_argument) naming every bad field.
 */
export function resolveLearnerConfig(
  opts: Record<string, unknown> = {},
  env: NodeJS.ProcessEnv = process.env,
): { learner: LearnerConfig; serve: ServeLearnerConfig } {
  const fromEnv: Record<string, unknown> = envOverrides(ENV_KEYS, env);
  const defined = Object.fromEntries(Object.entries(opts).filter(([, v]) => v !== undefined));
  const input = { ...fromEnv, ...defined };
  const serveKeys = Object.keys(ServeLearnerConfigSchema.shape);
  const pick = (keep: boolean) => Object.fromEntries(Object.entries(input).filter(([k]) => serveKeys.includes(k) === keep));
  return {
    learner: parseConfig(LearnerConfigSchema, pick(false), 'learner config'),
    serve: parseConfig(ServeLearnerConfigSchema, pick(true), 'learner config'),
  };
}

/** The learner's settings for `input` with defaults filled in. Throws ParleyError(invalid_argument) naming the field. */
export function learnerConfig(input: LearnerConfigInput | Record<string, unknown> = {}): LearnerConfig {
  return parseConfig(LearnerConfigSchema, input, 'learner config');
}
