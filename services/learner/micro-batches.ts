// Token-budgeted micro-batches for gradient accumulation, and the loss scale of each, chosen so that
// the sum of the engine's per-micro-batch losses equals the loss of the whole step taken at once.

import { ParleyError } from '../core/errors.js';

/** One micro-batch: indices into the step's sequences, in packing order. */
export interface MicroBatch {
  indices: number[];
  /** Sum of the member sequences' lengths. */
  tokens: number;
  /** Tokens that enter the loss (see lossTokens). */
  lossTokens: number;
  /** Members with at least one loss token. */
  lossSequences: number;
  /** The ForwardBackward loss_scale. */
  lossScale: number;
}

/**
 * Tokens of a sequence that enter the loss: mask 1 at positions ≥ 1. The engine predicts token t from
 * tokens < t, so token 0 never has a log-prob and never counts, whatever its mask says.
 */
export function lossTokens(lossMask: ArrayLike<number>): number {
  let n = 0;
  for (let t = 1; t < lossMask.length; t++) if (lossMask[t] === 1) n++;
  return n;
}

/**
 * Packs sequences of the given lengths into micro-batches whose summed length is ≤ `budget`; a
 * sequence longer than the budget goes alone. Next-fit over lengths sorted longest first (ties by
 * index): the engine pads each micro-batch to its longest member, so keeping similar lengths together
 * bounds the padding, where first-fit would drop short sequences into a long one's batch and pad
 * them to its length. Deterministic. Throws invalid_argument for a budget < 1 or a negative length.
 */
export function packByTokens(lengths: readonly number[], budget: number): number[][] {
  if (!(Number.isInteger(budget) && budget >= 1)) throw new ParleyError('invalid_argument', `microBatchTokens must be an integer ≥ 1, got ${budget}`);
  const order = lengths.map((_, i) => i);
  for (const i of order) {
    const n = lengths[i]!;
    if (!(Number.isInteger(n) && n >= 0)) throw new ParleyError('invalid_argument', `sequence ${i} has length ${n}; lengths must be integers ≥ 0`);
  }
  order.sort((a, b) => lengths[b]! - lengths[a]! || a - b);
  const bins: number[][] = [];
  let current: number[] = [];
  let used = 0;
  for (const i of order) {
    const n = lengths[i]!;
    if (current.length > 0 && used + n > budget) {
      bins.push(current);
      current = [];
      used = 0;
    }
    current.push(i);
    used += n;
  }
  if (current.length > 0) bins.push(current);
  return bins;
}

/**
 * How the step's loss is normalised.
 * - `token_mean`: Σ over every loss token of the step / the step's loss-token count. The engine
 *   returns Σ_mb / n_mb per micro-batch, so scale_mb = n_mb / N makes Σ scale·loss = Σ_all / N.
 * - `seq_mean`: the mean over sequences of each one's token mean; scale_mb = s_mb / S.
 * - `constant`: Dr.GRPO's length-independent normaliser, Σ over every loss token / C with a constant
 *   C (the number of sequences × the generation budget), so a long answer's tokens weigh as much as
 *   a short one's; scale_mb = n_mb / C with the engine in token_mean.
 */
export type Normalisation = { kind: 'token_mean' } | { kind: 'seq_mean' } | { kind: 'constant'; normaliser: number };

export interface PackInput {
  length: number;
  lossMask: ArrayLike<number>;
}

/**
 * Packs `seqs` (see packByTokens) and sets each micro-batch's loss_scale (see Normalisation); the
 * scales sum to 1 for token_mean and seq_mean. Micro-batches without a loss token get scale 0 and
 * should not be sent. Throws invalid_argument for a bad budget or a constant normaliser ≤ 0.
 */
export function planMicroBatches(seqs: readonly PackInput[], budget: number, norm: Normalisation): MicroBatch[] {
  if (norm.kind === 'constant' && !(norm.normaliser > 0)) {
    throw new ParleyError('invalid_argument', `the constant loss normaliser must be > 0, got ${norm.normaliser}`);
  }
  const perSeq = seqs.map((s) => lossTokens(s.lossMask));
  const bins = packByTokens(
    seqs.map((s) => s.length),
    budget,
  );
  const mbs = bins.map((indices) => {
    let tokens = 0;
    let lt = 0;
    let ls = 0;
    for (const i of indices) {
      tokens += seqs[i]!.length;
      lt += perSeq[i]!;
      if (perSeq[i]! > 0) ls++;
    }
    return { indices, tokens, lossTokens: lt, lossSequences: ls, lossScale: 0 };
  });
  const totalTokens = mbs.reduce((a, m) => a + m.lossTokens, 0);
  const totalSeqs = mbs.reduce((a, m) => a + m.lossSequences, 0);
  for (const mb of mbs) {
    if (norm.kind === 'token_mean') mb.lossScale = totalTokens > 0 ? mb.lossTokens / totalTokens : 0;
    else if (norm.kind === 'seq_mean') mb.lossScale = totalSeqs > 0 ? mb.lossSequences / totalSeqs : 0;
    else mb.lossScale = mb.lossTokens / norm.normaliser;
  }
  return mbs;
}
