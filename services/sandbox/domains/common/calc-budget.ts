// The work `calculate` may do for one expression. Python would grind through `9**4000000` for seconds
// (and a 64 KiB expression of them for half an hour) on the sandbox's single event loop, stalling every
// session; the budget refuses such expressions before computing them, as an ordinary tool error.

import { PyRuntimeError } from './py-arith.js';

export interface CalcLimits {
  /** Largest integer an operation may produce, in bits (65 536 bits ≈ 19 700 decimal digits). */
  maxIntBits: number;
  /** Sum of the sizes of all integer results (and dividends) of one expression, in bits. */
  maxWorkBits: number;
  /**
   * Most tokens (numbers, operators, parentheses) one expression may have: bounds the parse and, since
   * every operation is a token, the number of operations evaluated.
   */
  maxTokens: number;
}

/**
 * Far beyond any price arithmetic (the gold actions add a handful of two-decimal numbers), yet small
 * enough that the costliest admitted expression takes milliseconds: an operation on 65 536-bit integers
 * takes under a millisecond, and the work budget admits about sixteen of them. 10 000 tokens keep every
 * long-chain behaviour of CPython that the tests pin (its parser and compiler limits come first).
 */
export const DEFAULT_CALC_LIMITS: CalcLimits = { maxIntBits: 1 << 16, maxWorkBits: 1 << 20, maxTokens: 10_000 };

/** An expression refused by the budget: the agent sees `Error: calculation too large: ...`. */
export class CalcBudgetError extends PyRuntimeError {
  override name = 'CalcBudgetError';
  constructor(what: string) {
    super(`calculation too large: ${what}`);
  }
}

/** One expression's budget; each method throws CalcBudgetError past a limit. */
export class CalcBudget {
  private work = 0;

  constructor(readonly limits: CalcLimits = DEFAULT_CALC_LIMITS) {}

  /** Admits the expression's token count, before it is parsed. */
  tokens(count: number): void {
    if (count > this.limits.maxTokens) throw new CalcBudgetError(`more than ${this.limits.maxTokens} tokens`);
  }

  /**
   * Admits an integer result of (about) `bits` bits, before it is computed where the caller can estimate
   * it: refuses one over maxIntBits, and charges it to the work budget.
   */
  intBits(bits: number): void {
    if (bits > this.limits.maxIntBits) {
      throw new CalcBudgetError(`an intermediate result would exceed ${this.limits.maxIntBits} bits`);
    }
    this.work += bits;
    if (this.work > this.limits.maxWorkBits) {
      throw new CalcBudgetError(`intermediate results would exceed ${this.limits.maxWorkBits} bits in all`);
    }
  }
}
