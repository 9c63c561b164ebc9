// The run spec: one zod schema for a training run, documented field by field with defaults. `parley run`
// parses it from YAML; the Kubernetes TrainingRun CRD's spec schema is generated from it.

import { z } from 'zod';
import { engineSettingsSchema, loraSettingsSchema } from '../learner/index.js';

/**
 * Engine fields the run spec sets elsewhere, so model.engine leaves them out: max_len is
 * model.maxContextTokens, vocab_size comes from the model's tokenizer, seed is the run's seed, lora is
 * model.lora (see engineInitConfig in run-config.ts).
 */
export const ENGINE_FIELDS_SET_ELSEWHERE = ['max_len', 'vocab_size', 'seed', 'lora'] as const;

const quantity = z.union([z.string().regex(/^[0-9]+(\.[0-9]+)?(m|k|Ki|Mi|Gi|Ti|M|G|T)?$/), z.number().nonnegative()]);

/** Kubernetes-native resources (requests and limits), e.g. { limits: { "nvidia.com/gpu": 1 } }. */
export const ResourcesSchema = z
  .object({
    /** Guaranteed resources: cpu, memory, nvidia.com/gpu, … */
    requests: z.record(z.string(), quantity).default({}),
    /** Upper bounds; GPUs are requested through limits as in Kubernetes. */
    limits: z.record(z.string(), quantity).default({}),
  })
  .strict();

export const TolerationSchema = z
  .object({
    key: z.string().optional(),
    operator: z.enum(['Exists', 'Equal']).optional(),
    value: z.string().optional(),
    effect: z.enum(['NoSchedule', 'PreferNoSchedule', 'NoExecute']).optional(),
    tolerationSeconds: z.number().int().optional(),
  })
  .strict();

/** One group of identical actors (Ray-style): how many, what they get, where they run, how they restart. */
export const ActorGroupSchema = z
  .object({
    /** Number of actors in the group. */
    replicas: z.number().int().min(0).default(1),
    resources: ResourcesSchema.prefault({}),
    /** Container image (cluster only); default the chart's image for the actor kind. */
    image: z.string().optional(),
    /** Extra environment variables. */
    env: z.record(z.string(), z.string()).default({}),
    /** Restarts after failure: -1 unlimited, 0 never, n at most n (with exponential backoff). */
    maxRestarts: z.number().int().min(-1).default(-1),
    placement: z
      .object({
        nodeSelector: z.record(z.string(), z.string()).default({}),
        tolerations: z.array(TolerationSchema).default([]),
      })
      .strict()
      .prefault({}),
    /** All-or-nothing scheduling of the group (multi-GPU learners). */
    gang: z.boolean().default(false),
  })
  .strict();

export type ActorGroup = z.infer<typeof ActorGroupSchema>;

const group = (replicas: number, resources: z.input<typeof ResourcesSchema> = {}) => ActorGroupSchema.prefault({ replicas, resources });

export const RunSpecSchema = z
  .object({
    /** Run name: a DNS-1123 label; prefixes every subject, stream and Kubernetes object of the run. */
    name: z.string().regex(/^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/, 'must be a DNS-1123 label (lower-case letters, digits, -)'),
    /** Random seed for task order, sampling and model initialisation. */
    seed: z.number().int().min(0).default(0),
    model: z
      .object({
        /** `builtin` (small CPU transformer over a word vocabulary) or a Hugging Face model id/path served by vLLM. */
        name: z.string().min(1).default('builtin'),
        /** Folder with tokenizer.json and tokenizer_config.json (chat template); default: generated for builtin. */
        tokenizer: z.string().optional(),
        /** Context limit in tokens; episodes end with CONTEXT_LIMIT past it. */
        maxContextTokens: z.number().int().positive().default(4096),
        /**
         * Trainer.Init settings: the engine's config.schema.json fields in camelCase (layers, dModel, heads,
         * positions, copyHead for builtin; dtype, gradientCheckpointing for HF; lr, betas, device, …). Left
         * out: the engine's default. Unknown fields are refused.
         */
        engine: engineSettingsSchema(ENGINE_FIELDS_SET_ELSEWHERE).default({}),
        /** LoRA adapter training (HF models): the engine's lora fields (rank, alpha, dropout, targetModules); absent = full fine-tuning. */
        lora: loraSettingsSchema().optional(),
      })
      .strict()
      .prefault({}),
    data: z
      .object({
        /** Domain: retail, airline, mock (τ²-bench) or local (generated; see local). */
        domain: z.string().min(1),
        /** The domain's data folder (τ²: data/tau2/domains/<domain>). Not used by the local domain. */
        dataDir: z.string().optional(),
        /** Task file instead of <dataDir>/tasks.json. */
        tasksFile: z.string().optional(),
        /** Split names from split_tasks.json for training and evaluation. */
        trainSplit: z.string().default('train'),
        evalSplit: z.string().default('test'),
        /** Local domain generation: task counts and the share of tasks whose first message lacks needed information. */
        local: z
          .object({
            trainTasks: z.number().int().positive().default(2000),
            evalTasks: z.number().int().positive().default(200),
            missingInfoShare: z.number().min(0).max(1).default(0.6),
            /** Customers in the generated DB. */
            customers: z.number().int().min(2).max(900).default(200),
            /** Held out from training: 'pairs' (no eval (customer, order) pair is trained on) or 'tasks' (new task instances). */
            holdout: z.enum(['pairs', 'tasks']).default('pairs'),
          })
          .strict()
          .prefault({}),
      })
      .strict(),
    algorithm: z
      .object({
        /** Advantage estimator. */
        estimator: z.enum(['grpo', 'drgrpo', 'rloo', 'reinforce_pp']).default('grpo'),
        /** Samples per task (the GRPO group). */
        groupSize: z.number().int().min(1).default(8),
        /** Groups per learner step. */
        groupsPerStep: z.number().int().min(1).default(16),
        /** Learner steps to run. */
        steps: z.number().int().min(0).default(200),
        learningRate: z.number().positive().default(1e-6),
        /** Learner steps of linear learning-rate warm-up (then constant), counted per step whatever ppoEpochs is. */
        warmupSteps: z.number().int().min(0).default(0),
        maxGradNorm: z.number().positive().default(1.0),
        /** PPO clip ε (low and high) and dual-clip c (0 disables). */
        clipLow: z.number().positive().default(0.2),
        clipHigh: z.number().positive().default(0.2),
        dualClip: z.number().min(0).default(3),
        /** k3 KL loss coefficient against the frozen reference (0 disables). */
        klCoef: z.number().min(0).default(0.001),
        entropyCoef: z.number().min(0).default(0),
        aggregation: z.enum(['token_mean', 'seq_mean']).default('token_mean'),
        /** PPO epochs over each step's batch: one OptimStep per epoch against the step's old log-probs (verl's ppo_epochs). */
        ppoEpochs: z.number().int().min(1).default(1),
        /** Tokens per micro-batch (gradient accumulation above it). */
        microBatchTokens: z.number().int().positive().default(16384),
        /**
         * Drop groups whose rewards all agree (DAPO's dynamic sampling). Off by default, as in verl and
         * the GRPO/MUA-RL recipes, where such a group stays in the batch with advantage 0.
         */
        dropZeroVarianceGroups: z.boolean().default(false),
        /** Rollouts may run ahead of the learner by at most this many policy versions. */
        maxStepsOffPolicy: z.number().int().min(0).default(1),
        /** Discount for REINFORCE++ returns. */
        gamma: z.number().min(0).max(1).default(1),
      })
      .strict()
      .prefault({}),
    /** ScalingInter-RL: the turn horizon grows by stage. */
    horizon: z
      .object({ horizons: z.array(z.number().int().positive()).min(1).default([10, 20, 30]), everySteps: z.number().int().positive().default(100) })
      .strict()
      .prefault({}),
    rollout: z
      .object({
        /** mua keeps the first tool call of a reply and ends on a malformed call; tau2 executes every call. */
        mode: z.enum(['mua', 'tau2']).default('mua'),
        temperature: z.number().min(0).default(1),
        topP: z.number().gt(0).max(1).default(1),
        maxTokensPerTurn: z.number().int().positive().default(512),
        maxToolErrors: z.number().int().positive().default(10),
        maxSteps: z.number().int().positive().default(200),
        /** Episodes in flight per rollout worker. */
        concurrency: z.number().int().positive().default(16),
      })
      .strict()
      .prefault({}),
    userSimulator: z
      .object({
        mode: z.enum(['scripted', 'llm']).default('scripted'),
        /** OpenAI-compatible endpoint of the user LLM (llm mode). */
        baseUrl: z.string().optional(),
        model: z.string().optional(),
        /** Secret holding the API key (cluster) / environment variable name (local). */
        apiKeySecret: z.string().optional(),
        temperature: z.number().min(0).default(0),
      })
      .strict()
      .prefault({}),
    /** Cold start: supervised fine-tuning on demonstrations before RL. */
    sft: z
      .object({
        enabled: z.boolean().default(false),
        /** Demonstrations to generate (local domain) or a JSON-lines file of conversations. */
        demonstrations: z.union([z.number().int().positive(), z.string()]).default(500),
        epochs: z.number().int().positive().default(2),
        /** Demonstrations per optimizer step. */
        batchSize: z.number().int().positive().default(32),
        learningRate: z.number().positive().default(1e-3),
        /** Share of demonstrations in which the imperfect expert acts without asking (local domain). */
        expertSkipAskRate: z.number().min(0).max(1).default(0.5),
      })
      .strict()
      .prefault({}),
    evaluation: z
      .object({
        /** Samples per task for pass^k. */
        k: z.number().int().min(1).default(4),
        /** Evaluate every N learner steps (0 = only at the start and the end). */
        everySteps: z.number().int().min(0).default(0),
        /** Tasks from the evaluation split (0 = all). */
        maxTasks: z.number().int().min(0).default(0),
      })
      .strict()
      .prefault({}),
    checkpoint: z
      .object({
        /** Directory (a shared volume in the cluster). */
        dir: z.string().default('checkpoints'),
        everySteps: z.number().int().positive().default(1),
        /** Checkpoints kept (older ones are deleted). */
        keep: z.number().int().positive().default(3),
      })
      .strict()
      .prefault({}),
    /** The actor groups of the run. */
    actors: z
      .object({
        policy: group(1, { limits: { 'nvidia.com/gpu': 1 } }),
        userSimulator: group(1),
        sandbox: group(1),
        rollout: group(2),
        learner: group(1, { limits: { 'nvidia.com/gpu': 1 } }),
        /**
         * The run coordinator: publishes the rollout tasks for the learner's step. Always one replica (one
         * seeded task sequence per run); resources, placement, image and maxRestarts as for any group.
         */
        coordinator: ActorGroupSchema.extend({ replicas: z.number().int().min(1).max(1).default(1) }).prefault({
          replicas: 1,
          resources: { requests: { cpu: '100m', memory: '128Mi' }, limits: { memory: '512Mi' } },
        }),
      })
      .strict()
      .prefault({}),
    /** Stop creating new work (Kubernetes: scale actors to zero) while keeping state. */
    suspend: z.boolean().default(false),
  })
  .strict();

export type RunSpec = z.infer<typeof RunSpecSchema>;
export type RunSpecInput = z.input<typeof RunSpecSchema>;
