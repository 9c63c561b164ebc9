// Advantage estimators against values worked out by hand (the arithmetic is written beside each).

import { describe, expect, it } from 'vitest';
import {
  broadcastToTokens,
  computeAdvantages,
  drGrpoAdvantages,
  grpoAdvantages,
  isZeroVariance,
  reinforcePlusPlusAdvantages,
  rlooAdvantages,
} from './advantages.js';

function close(actual: ArrayLike<number>, expected: number[], digits = 6): void {
  expect(actual.length).toBe(expected.length);
  expected.forEach((e, i) => expect(actual[i]).toBeCloseTo(e, digits));
}

describe('GRPO', () => {
  it('divides by the sample std plus 1e-6 by default', () => {
    // mean 0.25; Σ(r−mean)² = 0.5625 + 3·0.0625 = 0.75; sample var 0.75/3 = 0.25, std 0.5.
    // 0.75 / 0.500001 = 1.499997000006; −0.25 / 0.500001 = −0.499999000002.
    close(grpoAdvantages([1, 0, 0, 0]), [1.499997000006, -0.499999000002, -0.499999000002, -0.499999000002], 10);
    // mean 2.5; Σ(r−mean)² = 2.25+0.25+0.25+2.25 = 5; std √(5/3) = 1.2909944487358056.
    close(grpoAdvantages([1, 2, 3, 4]), [-1.1618941038629222, -0.3872980346209741, 0.3872980346209741, 1.1618941038629222], 10);
  });

  it('can divide by the population std instead', () => {
    // population var 0.75/4 = 0.1875, std 0.4330127018922193; 0.75 / 0.4330137018922193 = 1.732046807578115.
    close(grpoAdvantages([1, 0, 0, 0], { std: 'population' }), [1.732046807578115, -0.5773489358593717, -0.5773489358593717, -0.5773489358593717], 10);
  });

  it('gives 0 to a group with equal rewards', () => {
    close(grpoAdvantages([0.5, 0.5, 0.5]), [0, 0, 0]);
    expect(isZeroVariance([0.5, 0.5, 0.5])).toBe(true);
    expect(isZeroVariance([0.5, 0.5, 0.6])).toBe(false);
  });

  it('gives a group of one the advantage r (μ = 0, σ = 1), as verl does', () => {
    // verl compute_grpo_outcome_advantage: len 1 -> mean 0, std 1; (r − 0) / (1 + 1e-6).
    close(grpoAdvantages([0.7]), [0.7 / (1 + 1e-6)], 12);
    close(grpoAdvantages([-2], { std: 'population' }), [-2 / (1 + 1e-6)], 12);
    close(grpoAdvantages([1], { eps: 0 }), [1], 12);
    close(drGrpoAdvantages([0.7]), [0.7], 12);
    close(computeAdvantages([[{ reward: 1, lossMask: [0, 1] }]], { algorithm: 'grpo' })[0]![0]!, [0, 1 / (1 + 1e-6)]); // Float32 tokens
  });

  it('rejects an empty group and non-finite rewards', () => {
    expect(() => grpoAdvantages([])).toThrow(/at least 1/);
    expect(() => grpoAdvantages([1, Number.NaN])).toThrow(/finite/);
  });
});

describe('Dr.GRPO', () => {
  it('subtracts the group mean and does not divide by the std', () => {
    close(drGrpoAdvantages([1, 0, 0, 0]), [0.75, -0.25, -0.25, -0.25]);
    // mean of [2, 4, 9] is 5.
    close(drGrpoAdvantages([2, 4, 9]), [-3, -1, 4]);
  });
});

describe('RLOO', () => {
  it('subtracts the mean of the other rewards of the group', () => {
    // 1 − mean(0,0,0) = 1; 0 − mean(1,0,0) = −1/3.
    close(rlooAdvantages([1, 0, 0, 0]), [1, -1 / 3, -1 / 3, -1 / 3]);
    // 2 − (4+9)/2 = −4.5; 4 − (2+9)/2 = −1.5; 9 − (2+4)/2 = 6.
    close(rlooAdvantages([2, 4, 9]), [-4.5, -1.5, 6]);
  });

  it('needs at least two samples', () => {
    expect(() => rlooAdvantages([1])).toThrow(/at least 2/);
  });
});

describe('REINFORCE++', () => {
  it('discounts over policy tokens only, then whitens over every policy token of the batch', () => {
    // A: mask [0,1,1,0,1], reward 1, γ 0.5 → returns backwards: t4 = 1, t3 skipped (mask 0, no
    // discount step), t2 = 0.5, t1 = 0.25. B: mask [0,0,1,1], reward −1 → t3 = −1, t2 = −0.5.
    // Policy-token returns 0.25, 0.5, 1, −0.5, −1: mean 0.05; squared deviations 0.04, 0.2025,
    // 0.9025, 0.3025, 1.1025 sum to 2.55; var 0.51; std 0.714142842854285.
    const [a, b] = reinforcePlusPlusAdvantages(
      [
        { reward: 1, lossMask: [0, 1, 1, 0, 1] },
        { reward: -1, lossMask: [0, 0, 1, 1] },
      ],
      { gamma: 0.5 },
    );
    close(a!, [0, 0.280056016805602, 0.6301260378126045, 0, 1.3302660798266093]);
    close(b!, [0, 0, -0.7701540462154055, -1.4702940882294104]);
  });

  it('with γ = 1 gives every policy token its whitened outcome, and 0 when all returns are equal', () => {
    // Returns 1,1 (A) and 0,0,0 (B): mean 0.4, var 0.24, std 0.4898979485566356.
    const [a, b] = reinforcePlusPlusAdvantages([
      { reward: 1, lossMask: [0, 1, 1] },
      { reward: 0, lossMask: [1, 1, 0, 1] },
    ]);
    close(a!, [0, 1.224744871391589, 1.224744871391589]);
    close(b!, [-0.8164965809277261, -0.8164965809277261, 0, -0.8164965809277261]);
    const flat = reinforcePlusPlusAdvantages([{ reward: 2, lossMask: [1, 1] }]);
    close(flat[0]!, [0, 0]);
  });

  it('rejects a γ outside [0, 1]', () => {
    expect(() => reinforcePlusPlusAdvantages([], { gamma: 1.5 })).toThrow(/gamma/);
  });
});

describe('broadcasting and the combined entry point', () => {
  it('puts a sequence advantage on its policy tokens only', () => {
    close(broadcastToTokens(1.5, [0, 1, 1, 0, 1]), [0, 1.5, 1.5, 0, 1.5]);
  });

  it('computes per-group estimators group by group and REINFORCE++ across groups', () => {
    const groups = [
      [
        { reward: 1, lossMask: [0, 1] },
        { reward: 0, lossMask: [0, 1] },
      ],
      [
        { reward: 3, lossMask: [1, 1] },
        { reward: 1, lossMask: [0, 1] },
      ],
    ];
    const rloo = computeAdvantages(groups, { algorithm: 'rloo' });
    close(rloo[0]![0]!, [0, 1]);
    close(rloo[1]![1]!, [0, -2]);
    const dr = computeAdvantages(groups, { algorithm: 'dr_grpo' });
    close(dr[1]![0]!, [1, 1]);
    const rpp = computeAdvantages(groups, { algorithm: 'reinforce_pp' });
    // Policy-token returns 1, 0, 3, 3, 1: mean 1.6, var (0.36+2.56+1.96+1.96+0.36)/5 = 1.44, std 1.2.
    close(rpp[0]![0]!, [0, -0.5]);
    close(rpp[1]![0]!, [1.1666666666666667, 1.1666666666666667]);
  });
});
