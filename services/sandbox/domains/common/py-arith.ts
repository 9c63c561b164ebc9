// Python 3.11 arithmetic on the values `calculate` can produce (int, float, complex, the empty tuple and
// Ellipsis), with CPython's results and error messages, so tau2's calculate tool is reproduced exactly.

import type { CalcBudget } from './calc-budget.js';
import { exactPow } from './exact-pow.js';

/** A Python runtime error as `str(exception)` shows it. */
export class PyRuntimeError extends Error {
  override name = 'PyRuntimeError';
}

export type PyValue =
  | { t: 'int'; v: bigint }
  | { t: 'float'; v: number }
  | { t: 'complex'; re: number; im: number }
  | { t: 'tuple' }
  | { t: 'ellipsis' };

export type BinOp = '+' | '-' | '*' | '/' | '//' | '**';

const TWO53 = 1n << 53n;
const SSIZE_MAX = (1n << 63n) - 1n;

const int = (v: bigint): PyValue => ({ t: 'int', v });
const flt = (v: number): PyValue => ({ t: 'float', v });
const cpx = (re: number, im: number): PyValue => ({ t: 'complex', re, im });

function bitLength(n: bigint): bigint {
  return BigInt((n < 0n ? -n : n).toString(2).length);
}

/** The bit length of |n| as a number (0 for 0), from its hex digits: a quarter of the binary string. */
function bitCount(n: bigint): number {
  if (n === 0n) return 0;
  const hex = (n < 0n ? -n : n).toString(16);
  return hex.length * 4 - (Math.clz32(parseInt(hex[0]!, 16)) - 28);
}

/** log2|n| for n != 0, close enough to size a power before computing it. */
function log2Abs(n: bigint): number {
  const a = n < 0n ? -n : n;
  const bits = bitCount(a);
  if (bits <= 1000) return Math.log2(Number(a));
  const shift = bits - 64;
  return shift + Math.log2(Number(a >> BigInt(shift)));
}

/** Python float(int): correctly rounded; OverflowError past the largest double. */
export function intToFloat(n: bigint): number {
  const x = Number(n);
  if (!Number.isFinite(x)) throw new PyRuntimeError('int too large to convert to float');
  return x;
}

/** Python int / int: the correctly rounded quotient (CPython long_true_divide). */
function intTrueDiv(a: bigint, b: bigint): number {
  if (b === 0n) throw new PyRuntimeError('division by zero');
  const negative = a < 0n !== b < 0n;
  let n = a < 0n ? -a : a;
  const d = b < 0n ? -b : b;
  if (n < TWO53 && d < TWO53) return Number(a) / Number(b);
  if (n === 0n) return negative ? -0 : 0;
  // q = n / (d * 2^e) with 53 significant bits, then round half to even on the remainder.
  let e = Number(bitLength(n) - bitLength(d)) - 53;
  if (e < -1074) e = -1074;
  let q = 0n;
  let r = 0n;
  let den = d;
  for (;;) {
    const num = e >= 0 ? n : n << BigInt(-e);
    den = e >= 0 ? d << BigInt(e) : d;
    q = num / den;
    r = num % den;
    if (q < TWO53 || e === -1074) break;
    e += 1;
  }
  if (2n * r > den || (2n * r === den && (q & 1n) === 1n)) q += 1n;
  n = q;
  // Scale in two steps so that 2^e itself never overflows or underflows.
  const half = Math.trunc(e / 2);
  const x = Number(n) * 2 ** half * 2 ** (e - half);
  if (!Number.isFinite(x)) throw new PyRuntimeError('integer division result too large for a float');
  return negative ? -x : x;
}

function floorDivInt(a: bigint, b: bigint): bigint {
  if (b === 0n) throw new PyRuntimeError('integer division or modulo by zero');
  const q = a / b;
  return (a % b !== 0n) && (a < 0n !== b < 0n) ? q - 1n : q;
}

/** CPython float_floor_div (via _float_div_mod); NaN counts as non-zero, as C's `if (x)` does. */
function floorDivFloat(vx: number, wx: number): number {
  if (wx === 0) throw new PyRuntimeError('float floor division by zero');
  const mod = vx % wx;
  let div = (vx - mod) / wx;
  if (mod !== 0 && (wx < 0) !== (mod < 0)) div -= 1.0;
  if (div !== 0) {
    let floordiv = Math.floor(div);
    if (div - floordiv > 0.5) floordiv += 1.0;
    return floordiv;
  }
  const q = vx / wx;
  return q < 0 || Object.is(q, -0) ? -0 : 0;
}

/** CPython float_pow, including its special cases and errors. */
function floatPow(iv: number, iw: number): PyValue {
  if (iw === 0) return flt(1.0);
  if (Number.isNaN(iv)) return flt(iv);
  if (Number.isNaN(iw)) return flt(iv === 1.0 ? 1.0 : iw);
  if (!Number.isFinite(iw)) {
    const a = Math.abs(iv);
    if (a === 1.0) return flt(1.0);
    return flt((iw > 0) === (a > 1.0) ? Math.abs(iw) : 0.0);
  }
  if (!Number.isFinite(iv)) {
    const oddInt = Number.isInteger(iw) && Math.abs(iw % 2) === 1;
    if (iw > 0) return flt(oddInt ? iv : Math.abs(iv));
    return flt(oddInt ? (iv < 0 ? -0 : 0) : 0.0);
  }
  if (iv === 0) {
    const oddInt = Number.isInteger(iw) && Math.abs(iw % 2) === 1;
    if (iw < 0) throw new PyRuntimeError('0.0 cannot be raised to a negative power');
    return flt(oddInt ? iv : 0.0);
  }
  let negate = false;
  if (iv < 0) {
    if (iw !== Math.floor(iw)) return complexPow({ re: iv, im: 0 }, { re: iw, im: 0 });
    negate = Math.abs(iw % 2) === 1;
    iv = -iv;
  }
  if (iv === 1.0) return flt(negate ? -1.0 : 1.0);
  const ix = exactPow(iv, iw);
  if (!Number.isFinite(ix)) throw new PyRuntimeError("(34, 'Numerical result out of range')");
  return flt(negate ? -ix : ix);
}

interface C {
  re: number;
  im: number;
}

const cmul = (a: C, b: C): C => ({ re: a.re * b.re - a.im * b.im, im: a.re * b.im + a.im * b.re });

/** CPython _Py_c_quot; null stands for errno EDOM (division by zero). */
function cquot(a: C, b: C): C | null {
  const absBre = Math.abs(b.re);
  const absBim = Math.abs(b.im);
  if (absBre >= absBim) {
    if (absBre === 0) return null;
    const ratio = b.im / b.re;
    const denom = b.re + b.im * ratio;
    return { re: (a.re + a.im * ratio) / denom, im: (a.im - a.re * ratio) / denom };
  }
  if (absBim >= absBre) {
    const ratio = b.re / b.im;
    const denom = b.re * ratio + b.im;
    return { re: (a.re * ratio + a.im) / denom, im: (a.im * ratio - a.re) / denom };
  }
  return { re: NaN, im: NaN };
}

/** CPython complex_pow (c_powi for small integral exponents, else _Py_c_pow). */
function complexPow(a: C, b: C): PyValue {
  let p: C | null;
  if (b.im === 0 && b.re === Math.floor(b.re) && Math.abs(b.re) <= 100) {
    const n = b.re;
    const powu = (x: C, k: number): C => {
      let r: C = { re: 1, im: 0 };
      let base = x;
      for (let mask = 1; mask > 0 && k >= mask; mask <<= 1) {
        if (k & mask) r = cmul(r, base);
        base = cmul(base, base);
      }
      return r;
    };
    p = n > 0 ? powu(a, n) : cquot({ re: 1, im: 0 }, powu(a, -n));
  } else if (b.re === 0 && b.im === 0) {
    p = { re: 1, im: 0 };
  } else if (a.re === 0 && a.im === 0) {
    p = b.im !== 0 || b.re < 0 ? null : { re: 0, im: 0 };
  } else {
    const vabs = Math.hypot(a.re, a.im);
    let len = Math.pow(vabs, b.re);
    const at = Math.atan2(a.im, a.re);
    let phase = at * b.re;
    if (b.im !== 0) {
      len /= Math.exp(at * b.im);
      phase += b.im * Math.log(vabs);
    }
    p = { re: len * Math.cos(phase), im: len * Math.sin(phase) };
  }
  if (p === null) throw new PyRuntimeError('0.0 to a negative or complex power');
  if (!Number.isFinite(p.re) && !Number.isNaN(p.re)) throw new PyRuntimeError('complex exponentiation');
  if (!Number.isFinite(p.im) && !Number.isNaN(p.im)) throw new PyRuntimeError('complex exponentiation');
  return cpx(p.re, p.im);
}

function asFloat(x: PyValue): number {
  return x.t === 'int' ? intToFloat(x.v) : (x as { v: number }).v;
}

function asComplex(x: PyValue): C {
  return x.t === 'complex' ? x : { re: asFloat(x), im: 0 };
}

const isNumber = (x: PyValue): boolean => x.t === 'int' || x.t === 'float' || x.t === 'complex';

/** Python's type name, as error messages show it. */
export function typeName(x: PyValue): string {
  return x.t;
}

function unsupported(op: BinOp, a: PyValue, b: PyValue): PyRuntimeError {
  const shown = op === '**' ? '** or pow()' : op;
  return new PyRuntimeError(`unsupported operand type(s) for ${shown}: '${typeName(a)}' and '${typeName(b)}'`);
}

function repeatTuple(count: PyValue): PyValue {
  if (count.t !== 'int') throw new PyRuntimeError(`can't multiply sequence by non-int of type '${typeName(count)}'`);
  if (count.v > SSIZE_MAX || count.v < -SSIZE_MAX - 1n) {
    throw new PyRuntimeError("cannot fit 'int' into an index-sized integer");
  }
  return { t: 'tuple' };
}

function intPow(a: bigint, b: bigint, budget: CalcBudget): PyValue {
  if (b < 0n) return floatPow(intToFloat(a), intToFloat(b));
  if (a === 0n || a === 1n) return int(b === 0n ? 1n : a);
  if (a === -1n) return int(b % 2n === 0n ? 1n : -1n);
  // |a| >= 2: the result has floor(b * log2|a|) + 1 bits, sized here before anything is computed.
  const limit = BigInt(budget.limits.maxIntBits);
  budget.intBits(b > limit ? Infinity : Math.floor(Number(b) * log2Abs(a)) + 1);
  return int(a ** b);
}

/**
 * Python `a <op> b`. Throws PyRuntimeError with CPython's message, or CalcBudgetError (before computing
 * it) for an integer result beyond the budget's size or total work.
 */
export function binary(op: BinOp, a: PyValue, b: PyValue, budget: CalcBudget): PyValue {
  if (!isNumber(a) || !isNumber(b)) {
    if (op === '+' && a.t === 'tuple') {
      if (b.t === 'tuple') return { t: 'tuple' };
      throw new PyRuntimeError(`can only concatenate tuple (not "${typeName(b)}") to tuple`);
    }
    if (op === '*' && a.t === 'tuple') return repeatTuple(b);
    if (op === '*' && b.t === 'tuple') return repeatTuple(a);
    throw unsupported(op, a, b);
  }
  if (a.t === 'int' && b.t === 'int') {
    switch (op) {
      case '+':
      case '-':
        budget.intBits(Math.max(bitCount(a.v), bitCount(b.v)) + 1);
        return int(op === '+' ? a.v + b.v : a.v - b.v);
      case '*':
        budget.intBits(bitCount(a.v) + bitCount(b.v));
        return int(a.v * b.v);
      case '/':
        budget.intBits(Math.max(bitCount(a.v), bitCount(b.v)));
        return flt(intTrueDiv(a.v, b.v));
      case '//':
        budget.intBits(Math.max(bitCount(a.v), bitCount(b.v)));
        return int(floorDivInt(a.v, b.v));
      case '**':
        return intPow(a.v, b.v, budget);
    }
  }
  if (a.t === 'complex' || b.t === 'complex') {
    if (op === '//') throw unsupported(op, a, b);
    const x = asComplex(a);
    const y = asComplex(b);
    switch (op) {
      case '+':
        return cpx(x.re + y.re, x.im + y.im);
      case '-':
        return cpx(x.re - y.re, x.im - y.im);
      case '*': {
        const r = cmul(x, y);
        return cpx(r.re, r.im);
      }
      case '/': {
        const r = cquot(x, y);
        if (r === null) throw new PyRuntimeError('complex division by zero');
        return cpx(r.re, r.im);
      }
      case '**':
        return complexPow(x, y);
    }
  }
  const x = asFloat(a);
  const y = asFloat(b);
  switch (op) {
    case '+':
      return flt(x + y);
    case '-':
      return flt(x - y);
    case '*':
      return flt(x * y);
    case '/':
      if (y === 0) throw new PyRuntimeError('float division by zero');
      return flt(x / y);
    case '//':
      return flt(floorDivFloat(x, y));
    case '**':
      return floatPow(x, y);
  }
  throw unsupported(op, a, b);
}

/** Python unary `-x` / `+x`. */
export function unary(op: '+' | '-', x: PyValue): PyValue {
  const neg = op === '-';
  switch (x.t) {
    case 'int':
      return int(neg ? -x.v : x.v);
    case 'float':
      return flt(neg ? -x.v : x.v);
    case 'complex':
      return neg ? cpx(-x.re, -x.im) : x;
    default:
      throw new PyRuntimeError(`bad operand type for unary ${op}: '${typeName(x)}'`);
  }
}

/** Python `float(x)`. */
export function toFloat(x: PyValue): number {
  if (x.t === 'int') return intToFloat(x.v);
  if (x.t === 'float') return x.v;
  throw new PyRuntimeError(`float() argument must be a string or a real number, not '${typeName(x)}'`);
}
