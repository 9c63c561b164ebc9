// Advantage estimators over finished episodes: GRPO, Dr.GRPO, RLOO (group baselines on sequence
// rewards, broadcast to the policy's tokens) and REINFORCE++ (mask-aware token returns, batch-whitened).

import { ParleyError } from '../core/errors.js';

/** The advantage estimators the learner implements. */
export type Algorithm = 'grpo' | 'dr_grpo' | 'rloo' | 'reinforce_pp';
export const ALGORITHMS: readonly Algorithm[] = ['grpo', 'dr_grpo', 'rloo', 'reinforce_pp'];

/**
 * Which standard deviation GRPO divides by. `sample` (Bessel-corrected, n−1) is what verl's
 * `compute_grpo_outcome_advantage`, TRL's GRPOTrainer and OpenRLHF's group_norm compute (each calls
 * `torch.std`, unbiased by default); `population` (n) is the textbook σ. DeepSeekMath does not say.
 */
export type GroupStd = 'sample' | 'population';

/** What every estimator needs of one episode. */
export interface ScoredSequence {
  /** The episode's scalar reward. */
  reward: number;
  /** 1 on tokens the policy sampled, 0 elsewhere. */
  lossMask: ArrayLike<number>;
}

/** The ε of (r − mean) / (std + ε), as in DESIGN §2. */
export const ADVANTAGE_EPS = 1e-6;

function mean(xs: readonly number[]): number {
  let s = 0;
  for (const x of xs) s += x;
  return s / xs.length;
}

function std(xs: readonly number[], kind: GroupStd): number {
  const n = xs.length;
  const denom = kind === 'sample' ? n - 1 : n;
  if (denom <= 0) return 0;
  const m = mean(xs);
  let s = 0;
  for (const x of xs) s += (x - m) * (x - m);
  return Math.sqrt(s / denom);
}

function checkRewards(rewards: readonly number[], min: number, what: string): void {
  if (rewards.length < min) {
    throw new ParleyError('invalid_argument', `${what}: a group needs at least ${min} rewards, got ${rewards.length}`);
  }
  const bad = rewards.find((r) => !Number.isFinite(r));
  if (bad !== undefined) throw new ParleyError('invalid_argument', `${what}: reward ${bad} is not a finite number`);
}

/** True when every reward of the group is equal: every group-relative advantage is then 0. */
export function isZeroVariance(rewards: readonly number[]): boolean {
  return rewards.every((r) => r === rewards[0]);
}

/**
 * GRPO: (r_i − mean) / (std + ε) within one group. Throws invalid_argument for an empty group or a
 * non-finite reward. A group of one has no baseline: it takes μ = 0 and σ = 1, so its advantage is
 * r / (1 + ε), as verl's compute_grpo_outcome_advantage (verl/trainer/ppo/core_algos.py) sets it.
 */
export function grpoAdvantages(rewards: readonly number[], opts: { std?: GroupStd; eps?: number } = {}): number[] {
  checkRewards(rewards, 1, 'grpo');
  const single = rewards.length === 1;
  const m = single ? 0 : mean(rewards);
  const s = single ? 1 : std(rewards, opts.std ?? 'sample');
  const eps = opts.eps ?? ADVANTAGE_EPS;
  return rewards.map((r) => (r - m) / (s + eps));
}

/**
 * Dr.GRPO ("GRPO done right", Liu et al. 2025): r_i − mean, no division by the group's std (which
 * up-weights groups whose rewards barely differ). Its other half, a loss normalised by a constant
 * rather than each sequence's length, lives in the loss scales (micro-batches.ts). A group of one
 * takes μ = 0 (advantage r), as verl's GRPO estimator with norm_adv_by_std_in_grpo=False does.
 * Throws invalid_argument for an empty group or a non-finite reward.
 */
export function drGrpoAdvantages(rewards: readonly number[]): number[] {
  checkRewards(rewards, 1, 'dr_grpo');
  const m = rewards.length === 1 ? 0 : mean(rewards);
  return rewards.map((r) => r - m);
}

/**
 * RLOO: r_i minus the mean of the other n−1 rewards of its group (Ahmadian et al. 2024), which is
 * n/(n−1)·(r_i − mean). Throws invalid_argument for groups smaller than 2 (no one is left out).
 */
export function rlooAdvantages(rewards: readonly number[]): number[] {
  checkRewards(rewards, 2, 'rloo');
  const n = rewards.length;
  let total = 0;
  for (const r of rewards) total += r;
  return rewards.map((r) => r - (total - r) / (n - 1));
}

/** Sets `advantage` on every token whose mask is 1 and 0 elsewhere. */
export function broadcastToTokens(advantage: number, lossMask: ArrayLike<number>): Float32Array {
  const out = new Float32Array(lossMask.length);
  for (let t = 0; t < lossMask.length; t++) if (lossMask[t] === 1) out[t] = advantage;
  return out;
}

/**
 * REINFORCE++ (Hu 2025): the outcome reward sits on the last token the policy sampled; returns are
 * discounted backwards over the policy's tokens only (G_t = γ·G_next, so a token with k policy tokens
 * after it gets γ^k·R; tool results and user turns, mask 0, neither add a discount step nor get a
 * return); then every policy token of the whole batch is whitened together, with OpenRLHF's
 * (G − μ)/sqrt(max(var, 1e-8)) over the masked population. Mask-0 tokens get 0. The KL term stays
 * in the loss (the engine's k3) rather than in the per-token reward.
 * Throws invalid_argument for a non-finite reward or a γ outside [0, 1].
 */
export function reinforcePlusPlusAdvantages(seqs: readonly ScoredSequence[], opts: { gamma?: number } = {}): Float32Array[] {
  const gamma = opts.gamma ?? 1;
  if (!(gamma >= 0 && gamma <= 1)) throw new ParleyError('invalid_argument', `reinforce_pp: gamma must be in [0, 1], got ${gamma}`);
  const returns: Float64Array[] = [];
  let count = 0;
  let sum = 0;
  for (const seq of seqs) {
    if (!Number.isFinite(seq.reward)) throw new ParleyError('invalid_argument', `reinforce_pp: reward ${seq.reward} is not a finite number`);
    const g = new Float64Array(seq.lossMask.length);
    let ret = seq.reward;
    for (let t = seq.lossMask.length - 1; t >= 0; t--) {
      if (seq.lossMask[t] !== 1) continue;
      g[t] = ret;
      sum += ret;
      count++;
      ret *= gamma;
    }
    returns.push(g);
  }
  if (count === 0) return seqs.map((s) => new Float32Array(s.lossMask.length));
  const mu = sum / count;
  let sq = 0;
  seqs.forEach((seq, i) => {
    const g = returns[i]!;
    for (let t = 0; t < g.length; t++) if (seq.lossMask[t] === 1) sq += (g[t]! - mu) ** 2;
  });
  const scale = 1 / Math.sqrt(Math.max(sq / count, 1e-8));
  return seqs.map((seq, i) => {
    const g = returns[i]!;
    const out = new Float32Array(g.length);
    for (let t = 0; t < g.length; t++) if (seq.lossMask[t] === 1) out[t] = (g[t]! - mu) * scale;
    return out;
  });
}

export interface AdvantageOptions {
  algorithm: Algorithm;
  /** GRPO's std (see GroupStd). */
  groupStd?: GroupStd;
  /** GRPO's ε. */
  eps?: number;
  /** REINFORCE++'s discount over policy tokens. */
  gamma?: number;
}

/**
 * Per-token advantages for a step's groups (each inner array one group, in order), returned in the
 * same nesting. Group estimators broadcast each sequence's advantage to its policy tokens;
 * REINFORCE++ whitens across every group at once. Throws invalid_argument as the estimators do.
 */
export function computeAdvantages(groups: readonly (readonly ScoredSequence[])[], opts: AdvantageOptions): Float32Array[][] {
  if (opts.algorithm === 'reinforce_pp') {
    const flat = groups.flat();
    const adv = reinforcePlusPlusAdvantages(flat, { gamma: opts.gamma });
    let k = 0;
    return groups.map((g) => g.map(() => adv[k++]!));
  }
  return groups.map((group) => {
    const rewards = group.map((s) => s.reward);
    const seqAdv =
      opts.algorithm === 'grpo'
        ? grpoAdvantages(rewards, { std: opts.groupStd, eps: opts.eps })
        : opts.algorithm === 'dr_grpo'
          ? drGrpoAdvantages(rewards)
          : rlooAdvantages(rewards);
    return group.map((s, i) => broadcastToTokens(seqAdv[i]!, s.lossMask));
  });
}
