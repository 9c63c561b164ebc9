import { describe, expect, it } from 'vitest';
import { deriveSeed } from './seed.js';

describe('deriveSeed', () => {
  it('is deterministic, positive, below 2^48, and unrelated for neighbouring parts', () => {
    expect(deriveSeed(1, 'g0', 0)).toBe(deriveSeed(1, 'g0', 0));
    const seeds = Array.from({ length: 1000 }, (_, i) => deriveSeed(1, 'g0', i));
    expect(new Set(seeds).size).toBe(1000);
    for (const s of seeds) expect(s > 0n && s < 2n ** 48n).toBe(true);
    // Neighbouring samples are not neighbouring seeds (a per-turn offset must not reach the next sample).
    const gaps = seeds.slice(1).map((s, i) => (s > seeds[i]! ? s - seeds[i]! : seeds[i]! - s));
    expect(gaps.filter((g) => g < 1000n)).toHaveLength(0);
    expect(deriveSeed('a', 'bc')).not.toBe(deriveSeed('ab', 'c'));
  });
});
