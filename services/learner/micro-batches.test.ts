// Token-budgeted packing, and loss scales that make gradient accumulation reproduce the step's loss.

import { describe, expect, it } from 'vitest';
import { lossTokens, packByTokens, planMicroBatches, type Normalisation } from './micro-batches.js';

/** A seeded generator, so the random batches are the same on every run. */
function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s * 1664525 + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

interface Seq {
  length: number;
  lossMask: number[];
  adv: number[];
}

function randomSeqs(n: number, seed: number): Seq[] {
  const r = rng(seed);
  return Array.from({ length: n }, () => {
    const length = 1 + Math.floor(r() * 60);
    const lossMask = Array.from({ length }, () => (r() < 0.6 ? 1 : 0));
    const adv = Array.from({ length }, () => r() * 4 - 2);
    return { length, lossMask, adv };
  });
}

/** The engine's loss for one micro-batch, as losses.py aggregates it (token 0 never counts). */
function engineLoss(seqs: Seq[], how: 'token_mean' | 'seq_mean'): number {
  const per = seqs.map((s) => {
    let sum = 0;
    let n = 0;
    for (let t = 1; t < s.length; t++) {
      if (s.lossMask[t] !== 1) continue;
      sum += s.adv[t]!;
      n++;
    }
    return { sum, n };
  });
  if (how === 'token_mean') {
    const n = per.reduce((a, p) => a + p.n, 0);
    return per.reduce((a, p) => a + p.sum, 0) / Math.max(1, n);
  }
  const has = per.filter((p) => p.n > 0);
  return has.reduce((a, p) => a + p.sum / p.n, 0) / Math.max(1, has.length);
}

function accumulated(seqs: Seq[], budget: number, norm: Normalisation): number {
  const how = norm.kind === 'seq_mean' ? 'seq_mean' : 'token_mean';
  return planMicroBatches(seqs, budget, norm)
    .filter((mb) => mb.lossScale > 0)
    .reduce((a, mb) => a + mb.lossScale * engineLoss(mb.indices.map((i) => seqs[i]!), how), 0);
}

describe('packByTokens', () => {
  it('packs next-fit over lengths sorted longest first; an over-long sequence goes alone', () => {
    // Sorted: 12 (#3), 9 (#1), 5 (#0), 4 (#4), 3 (#2). 12 > 10 alone; 9 then 9+5 > 10 closes;
    // 5+4 = 9, +3 = 12 > 10 closes; 3 alone.
    expect(packByTokens([5, 9, 3, 12, 4], 10)).toEqual([[3], [1], [0, 4], [2]]);
    expect(packByTokens([], 10)).toEqual([]);
  });

  it('never exceeds the budget except for a single over-long sequence, and keeps every index once', () => {
    const lengths = randomSeqs(300, 7).map((s) => s.length);
    const bins = packByTokens(lengths, 100);
    expect(bins.flat().sort((a, b) => a - b)).toEqual(lengths.map((_, i) => i));
    for (const b of bins) {
      const sum = b.reduce((a, i) => a + lengths[i]!, 0);
      expect(sum <= 100 || b.length === 1).toBe(true);
    }
  });

  it('rejects a bad budget or length', () => {
    expect(() => packByTokens([1], 0)).toThrow(/microBatchTokens/);
    expect(() => packByTokens([-1], 10)).toThrow(/length/);
  });
});

describe('loss scales', () => {
  it('count loss tokens from position 1 (nothing predicts token 0)', () => {
    expect(lossTokens([1, 1, 0, 1])).toBe(2);
  });

  it('make token_mean over micro-batches equal the whole step’s token mean', () => {
    const seqs = randomSeqs(64, 1);
    const whole = engineLoss(seqs, 'token_mean');
    for (const budget of [1, 50, 333, 10_000]) expect(accumulated(seqs, budget, { kind: 'token_mean' })).toBeCloseTo(whole, 12);
    // By hand: A has loss tokens at 1, 2 (adv 1, 3), B at 1 (adv −2). Whole: (1+3−2)/3 = 2/3.
    // Budget 3 splits them: A alone (mean 2, scale 2/3), B alone (mean −2, scale 1/3): 4/3 − 2/3 = 2/3.
    const a = { length: 3, lossMask: [1, 1, 1], adv: [9, 1, 3] };
    const b = { length: 2, lossMask: [0, 1], adv: [0, -2] };
    const mbs = planMicroBatches([a, b], 3, { kind: 'token_mean' });
    expect(mbs.map((m) => m.lossScale)).toEqual([2 / 3, 1 / 3]);
    expect(accumulated([a, b], 3, { kind: 'token_mean' })).toBeCloseTo(2 / 3, 12);
  });

  it('make seq_mean over micro-batches equal the whole step’s sequence mean', () => {
    const seqs = randomSeqs(40, 2);
    const whole = engineLoss(seqs, 'seq_mean');
    for (const budget of [1, 70, 500]) expect(accumulated(seqs, budget, { kind: 'seq_mean' })).toBeCloseTo(whole, 12);
  });

  it('make Dr.GRPO’s constant normaliser independent of how the step is split', () => {
    const seqs = randomSeqs(32, 3);
    let sum = 0;
    for (const s of seqs) for (let t = 1; t < s.length; t++) if (s.lossMask[t] === 1) sum += s.adv[t]!;
    const C = seqs.length * 64;
    for (const budget of [1, 90, 5000]) expect(accumulated(seqs, budget, { kind: 'constant', normaliser: C })).toBeCloseTo(sum / C, 12);
    expect(() => planMicroBatches(seqs, 10, { kind: 'constant', normaliser: 0 })).toThrow(/normaliser/);
  });

  it('give a micro-batch with no loss token scale 0 and the rest sum to 1', () => {
    const mbs = planMicroBatches(
      [
        { length: 5, lossMask: [0, 0, 0, 0, 0] },
        { length: 5, lossMask: [0, 1, 1, 0, 1] },
      ],
      5,
      { kind: 'token_mean' },
    );
    expect(mbs.map((m) => m.lossScale).sort()).toEqual([0, 1]);
  });
});
