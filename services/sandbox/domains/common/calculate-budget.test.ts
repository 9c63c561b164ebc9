// calculate's work budget: expressions that would keep Python busy for seconds are refused before any
// work is done, as a tool error; everything within the budget answers exactly as before.

import { describe, expect, it } from 'vitest';
import { ToolError } from '../../domain.js';
import { DEFAULT_CALC_LIMITS } from './calc-budget.js';
import { calculate } from './calculate.js';

function shown(expression: string): string {
  try {
    return calculate(expression);
  } catch (e) {
    if (!(e instanceof ToolError)) throw e;
    return `Error: ${e.message}`;
  }
}

/** The 175-byte probe that held the event loop for 4 s: sixteen 12.7-million-bit powers. */
const BOMB = Array(16).fill('9**4000000').join('+');

describe('calculate work budget', () => {
  it('refuses a power whose result would exceed the size limit, before computing it', () => {
    expect(BOMB.length).toBe(175);
    expect(shown(BOMB)).toBe('Error: calculation too large: an intermediate result would exceed 65536 bits');
    expect(shown('9 ** 99999999999999999999999')).toBe('Error: calculation too large: an intermediate result would exceed 65536 bits');
    expect(shown('(-3) ** 100000')).toBe('Error: calculation too large: an intermediate result would exceed 65536 bits');
    // The estimate is exact at the boundary: 2**65535 has 65536 bits, 2**65536 one more.
    expect(shown('2 ** 65535 // 2 ** 65534')).toBe('2.0');
    expect(shown('2 ** 65536 // 2 ** 65535')).toBe('Error: calculation too large: an intermediate result would exceed 65536 bits');
    expect(shown('2 ** 40000 * 2 ** 30000')).toBe('Error: calculation too large: an intermediate result would exceed 65536 bits');
  });

  it('bounds the total work of many admitted operations', () => {
    // Each term is three operations on 60 000-bit integers; Python would answer 40.0.
    const terms = Array(20).fill('(2 ** 60000 // 2 ** 59999)').join(' + ');
    expect(shown(terms)).toBe('Error: calculation too large: intermediate results would exceed 1048576 bits in all');
    expect(shown(Array(3).fill('(2 ** 60000 // 2 ** 59999)').join(' + '))).toBe('6.0');
  });

  it('bounds the tokens, and so the parse and the number of operations', () => {
    // Balanced so that the tree stays within the compiler's depth: 6 × 2000 + 5 operations, 24 017 tokens.
    const group = '(' + '1+'.repeat(2000) + '1)';
    expect(shown(Array(6).fill(group).join('+'))).toBe(`Error: calculation too large: more than ${DEFAULT_CALC_LIMITS.maxTokens} tokens`);
    expect(shown('('.repeat(150) + '1' + ')'.repeat(150) + ' + 1'.repeat(4900))).toBe('Error: calculation too large: more than 10000 tokens');
    expect(shown(Array(2).fill(group).join('+'))).toBe('4002.0');
  });

  it('answers Python errors that come before the budget runs out, as Python does', () => {
    expect(shown('1 / 0 + ' + BOMB)).toBe('Error: division by zero');
    expect(shown('9 ** 20000 * 1.0')).toBe('Error: int too large to convert to float');
    expect(shown('9 ** 20000 / 9 ** 19999')).toBe('9.0');
  });

  it('takes its limits from the caller', () => {
    expect(() => calculate('2 ** 100', { ...DEFAULT_CALC_LIMITS, maxIntBits: 64 })).toThrow(
      new ToolError('calculation too large: an intermediate result would exceed 64 bits'),
    );
    expect(calculate('2 ** 63', { ...DEFAULT_CALC_LIMITS, maxIntBits: 64 })).toBe('9.223372036854776e+18');
  });
});
