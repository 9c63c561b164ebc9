// One optimizer step: advantages for the step's groups, token-budgeted micro-batches with exact loss
// scales, then the engine calls (old log-probs, ForwardBackward per micro-batch, OptimStep, SaveWeights).

import type { MessageInitShape } from '@bufbuild/protobuf';
import type { LossConfigSchema, SequenceSchema } from '../core/gen/parley/v1/trainer_pb.js';
import { computeAdvantages } from './advantages.js';
import type { LearnerConfig } from './config.js';
import { lossTokens, planMicroBatches, type MicroBatch, type Normalisation } from './micro-batches.js';
import type { TrainerClient } from './trainer-client.js';

type SequenceInit = MessageInitShape<typeof SequenceSchema>;
type LossConfigInit = MessageInitShape<typeof LossConfigSchema>;

/** What a step needs of one trajectory. */
export interface StepTrajectory {
  id: string;
  tokenIds: number[];
  lossMask: number[];
  /** Behaviour log-probs, aligned with tokenIds. */
  logprobs: number[];
  reward: number;
  minPolicyVersion: number | undefined;
}

export interface StepPlan {
  /** One entry per trajectory with at least one loss token, in group order. */
  sequences: (SequenceInit & { tokenIds: number[]; lossMask: number[] })[];
  /** Ids of those sequences (same order). */
  ids: string[];
  microBatches: MicroBatch[];
  loss: LossConfigInit;
  rewardMean: number;
  /** Tokens over every sequence (padding excluded). */
  tokens: number;
}

/** The ForwardBackward loss settings for `cfg` (dr_grpo always aggregates token_mean, rescaled by its constant). */
export function lossConfig(cfg: LearnerConfig): LossConfigInit {
  return {
    kind: 'ppo',
    clipLow: cfg.clipLow,
    clipHigh: cfg.clipHigh,
    dualClip: cfg.dualClip,
    klCoef: cfg.klCoef,
    entropyCoef: cfg.entropyCoef,
    aggregation: cfg.algorithm === 'dr_grpo' ? 'token_mean' : cfg.aggregation,
    isCap: cfg.isCap,
  };
}

/**
 * Plans a step: advantages per group (see computeAdvantages), sequences for the engine, micro-batches
 * and their loss scales. Sequences without a loss token are left out (they add nothing to the loss).
 * A trajectory sampled by an older policy than `currentVersion` is marked off-policy when old
 * log-probs are recomputed, so the engine weights it by its truncated importance ratio.
 * Throws ParleyError(invalid_argument) as the estimators and packer do.
 */
export function planStep(groups: readonly (readonly StepTrajectory[])[], cfg: LearnerConfig, currentVersion: number): StepPlan {
  const adv = computeAdvantages(groups, { algorithm: cfg.algorithm, groupStd: cfg.groupStd, gamma: cfg.gamma });
  const sequences: StepPlan['sequences'] = [];
  const ids: string[] = [];
  let rewardSum = 0;
  let count = 0;
  let tokens = 0;
  groups.forEach((g, gi) =>
    g.forEach((t, i) => {
      rewardSum += t.reward;
      count++;
      if (lossTokens(t.lossMask) === 0) return;
      tokens += t.tokenIds.length;
      ids.push(t.id);
      sequences.push({
        tokenIds: t.tokenIds,
        lossMask: t.lossMask,
        behaviourLogprobs: t.logprobs,
        advantages: Array.from(adv[gi]![i]!),
        offPolicy: cfg.oldLogprobs === 'recompute' && t.minPolicyVersion !== undefined && t.minPolicyVersion < currentVersion,
      });
    }),
  );
  const norm: Normalisation =
    cfg.algorithm === 'dr_grpo'
      ? { kind: 'constant', normaliser: Math.max(1, sequences.length) * cfg.drGrpoMaxTokens }
      : { kind: cfg.aggregation };
  const microBatches = planMicroBatches(
    sequences.map((s) => ({ length: s.tokenIds.length, lossMask: s.lossMask })),
    cfg.microBatchTokens,
    norm,
  ).filter((mb) => mb.lossScale > 0);
  return { sequences, ids, microBatches, loss: lossConfig(cfg), rewardMean: count ? rewardSum / count : 0, tokens };
}

export interface StepResult {
  /** False when no sequence had a loss token: nothing was sent, the weights did not change. */
  updated: boolean;
  weightsPath: string;
  weightsBytes: number;
  /** Engine metrics: loss parts averaged over loss tokens, `loss` the step's total, plus OptimStep's. */
  metrics: Record<string, number>;
}

/** Progress callbacks, for logs and tests that need to act inside a step. */
export interface StepHooks {
  onPhase?(phase: 'logprobs' | 'forward_backward' | 'optim_step' | 'save_weights', index: number): void;
}

/**
 * The learning rate of learner step `step` (0-based): linear warm-up over warmupSteps, then constant, the
 * shape of verl's get_constant_schedule_with_warmup (verl/utils/torch_functional.py), whose scheduler
 * advances once per training step (so every PPO epoch of a step shares its rate). verl's first step
 * runs at lr·0/warmupSteps = 0; here step k runs at lr·(k+1)/warmupSteps, as the engine's own schedule
 * (optim.py lr_at) does, because an OptimStep's learning rate 0 means "the engine's configured lr".
 * With lr 0 (the engine's lr and schedule) there is nothing to warm up here.
 */
export function stepLearningRate(cfg: Pick<LearnerConfig, 'lr' | 'warmupSteps'>, step: number): number {
  return step < cfg.warmupSteps ? (cfg.lr * (step + 1)) / cfg.warmupSteps : cfg.lr;
}

/**
 * Runs a planned step on the engine and saves the new weights as `newVersion` under `weightsDir`.
 * `step` is the 0-based learner step (it sets the warm-up learning rate; default 0). With ppoEpochs > 1
 * every epoch is a ForwardBackward pass over the whole batch and an OptimStep, the old log-probs fixed
 * before the first (verl's dp_actor.update_policy with one mini-batch); metrics are means over epochs.
 * Rejects with the engine's ParleyError; the engine's state is then undefined until the caller
 * reloads committed weights.
 */
export async function executeStep(
  trainer: TrainerClient,
  plan: StepPlan,
  cfg: LearnerConfig,
  target: { weightsDir: string; newVersion: number; step?: number },
  hooks: StepHooks = {},
): Promise<StepResult> {
  if (plan.microBatches.length === 0) return { updated: false, weightsPath: '', weightsBytes: 0, metrics: {} };
  const seqs = plan.sequences;
  if (cfg.oldLogprobs === 'recompute') {
    for (const [k, mb] of plan.microBatches.entries()) {
      hooks.onPhase?.('logprobs', k);
      const res = await trainer.computeLogprobs({ sequences: mb.indices.map((i) => ({ tokenIds: seqs[i]!.tokenIds })), reference: false });
      mb.indices.forEach((i, j) => {
        seqs[i]!.oldLogprobs = res.sequences[j]?.logprobs ?? [];
      });
    }
  }
  const learningRate = stepLearningRate(cfg, target.step ?? 0);
  const epochs: Record<string, number>[] = [];
  for (let epoch = 0; epoch < cfg.ppoEpochs; epoch++) {
    const metrics = await forwardBackwardAll(trainer, plan, hooks, epoch);
    hooks.onPhase?.('optim_step', epoch);
    const opt = await trainer.optimStep({ learningRate, maxGradNorm: cfg.maxGradNorm });
    for (const [name, v] of Object.entries(opt.metrics)) metrics[name] = v;
    epochs.push(metrics);
  }
  const metrics = meanOverEpochs(epochs);
  hooks.onPhase?.('save_weights', 0);
  const saved = await trainer.saveWeights({ path: target.weightsDir, version: BigInt(target.newVersion) });
  return { updated: true, weightsPath: saved.path, weightsBytes: Number(saved.bytes), metrics };
}

const COUNTS = new Set(['tokens', 'loss_tokens', 'off_policy_tokens']);

/** One pass of ForwardBackward over every micro-batch: the pass's loss and its metrics weighted by loss tokens. */
async function forwardBackwardAll(trainer: TrainerClient, plan: StepPlan, hooks: StepHooks, epoch: number): Promise<Record<string, number>> {
  const seqs = plan.sequences;
  const sums: Record<string, number> = {};
  let weightTotal = 0;
  let loss = 0;
  for (const [k, mb] of plan.microBatches.entries()) {
    hooks.onPhase?.('forward_backward', epoch * plan.microBatches.length + k);
    const res = await trainer.forwardBackward({ sequences: mb.indices.map((i) => seqs[i]!), loss: plan.loss, lossScale: mb.lossScale });
    const m = res.metrics;
    loss += (m.loss ?? 0) * mb.lossScale;
    weightTotal += mb.lossTokens;
    for (const [name, v] of Object.entries(m)) {
      if (COUNTS.has(name)) sums[name] = (sums[name] ?? 0) + v;
      else if (name !== 'loss' && name !== 'tokens_per_s') sums[name] = (sums[name] ?? 0) + v * mb.lossTokens;
    }
  }
  const metrics: Record<string, number> = { loss };
  for (const [name, v] of Object.entries(sums)) metrics[name] = COUNTS.has(name) ? v : v / Math.max(1, weightTotal);
  return metrics;
}

/** Each metric's mean over the epochs that reported it; token counts are one pass's (every pass sees the same tokens). */
function meanOverEpochs(epochs: readonly Record<string, number>[]): Record<string, number> {
  if (epochs.length === 1) return epochs[0]!;
  const sums: Record<string, number> = {};
  const counts: Record<string, number> = {};
  for (const e of epochs) {
    for (const [name, v] of Object.entries(e)) {
      sums[name] = (sums[name] ?? 0) + v;
      counts[name] = (counts[name] ?? 0) + 1;
    }
  }
  const out: Record<string, number> = {};
  for (const name of Object.keys(sums)) out[name] = COUNTS.has(name) ? epochs[0]![name] ?? 0 : sums[name]! / counts[name]!;
  return out;
}
