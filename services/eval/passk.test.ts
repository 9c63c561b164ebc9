// pass^k and pass@k against hand-computed values.

import { describe, expect, it } from 'vitest';
import { bootstrapMean, choose, passAtK, passHatK, passReport } from './passk.js';

describe('pass^k', () => {
  it('computes binomial ratios', () => {
    expect(choose(4, 2)).toBe(6);
    expect(choose(3, 4)).toBe(0);
    // 3 of 4 trials succeed: pass^2 = C(3,2)/C(4,2) = 3/6; pass@2 = 1 - C(1,2)/C(4,2) = 1.
    expect(passHatK({ taskId: 'a', successes: 3, n: 4 }, 2)).toBeCloseTo(0.5);
    expect(passAtK({ taskId: 'a', successes: 3, n: 4 }, 2)).toBeCloseTo(1);
    // 1 of 4: pass^1 = 0.25, pass@2 = 1 - C(3,2)/C(4,2) = 0.5.
    expect(passHatK({ taskId: 'b', successes: 1, n: 4 }, 1)).toBeCloseTo(0.25);
    expect(passAtK({ taskId: 'b', successes: 1, n: 4 }, 2)).toBeCloseTo(0.5);
    expect(() => passHatK({ taskId: 'c', successes: 1, n: 2 }, 3)).toThrow(/at least 3 trials/);
  });

  it('averages over tasks with a bootstrap interval that contains the mean', () => {
    const r = passReport(
      [
        { taskId: 'a', successes: 4, n: 4 },
        { taskId: 'b', successes: 2, n: 4 },
        { taskId: 'c', successes: 0, n: 4 },
      ],
      4,
    );
    expect(r.pass1.value).toBeCloseTo(0.5);
    // pass^2 per task: 1, 1/6, 0 → mean 7/18.
    expect(r.passk['2']!.value).toBeCloseTo(7 / 18);
    expect(r.passk['4']!.value).toBeCloseTo(1 / 3);
    expect(r.pass1.low).toBeLessThanOrEqual(r.pass1.value);
    expect(r.pass1.high).toBeGreaterThanOrEqual(r.pass1.value);
    const constant = bootstrapMean([1, 1, 1]);
    expect(constant).toEqual({ value: 1, low: 1, high: 1 });
  });
});
