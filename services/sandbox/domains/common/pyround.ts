// Python's `round(x, ndigits)` for floats: round-half-even on the exact binary value, which is what
// tau2's tools apply to balances and prices (so `round(2.675, 2)` is 2.67, not 2.68 as toFixed gives).

/**
 * Python `round(x, ndigits)` for a float and 0 ≤ ndigits ≤ 20. Exact: the decimal expansion of the
 * double is rounded as a string (half to even), then parsed back, as CPython does with dtoa.
 * Non-finite values and values too large to carry a fraction come back unchanged; the sign of zero is kept.
 * Throws RangeError for ndigits outside 0..20.
 */
export function pyRound(x: number, ndigits = 2): number {
  if (!Number.isInteger(ndigits) || ndigits < 0 || ndigits > 20) {
    throw new RangeError(`pyRound: ndigits must be an integer in 0..20, got ${ndigits}`);
  }
  if (!Number.isFinite(x) || Math.abs(x) >= 2 ** 52) return x;
  const negative = x < 0 || Object.is(x, -0);
  // Every double below 2**52 has an exact decimal expansion of at most 1074 fraction digits; 100 digits
  // are enough to tell a tie from a near-tie at 20 digits or fewer, since a non-tie differs by at least one ulp.
  const exact = Math.abs(x).toFixed(100);
  const dot = exact.indexOf('.');
  const intPart = exact.slice(0, dot);
  const kept = exact.slice(dot + 1, dot + 1 + ndigits);
  const rest = exact.slice(dot + 1 + ndigits);
  const first = rest.charCodeAt(0) - 48;
  const beyondHalf = /[1-9]/.test(rest.slice(1));
  let digits = intPart + kept;
  const lastDigit = digits.charCodeAt(digits.length - 1) - 48;
  const roundUp = first > 5 || (first === 5 && (beyondHalf || lastDigit % 2 === 1));
  if (roundUp) digits = incrementDecimal(digits);
  const text = ndigits === 0 ? digits : `${digits.slice(0, digits.length - ndigits)}.${digits.slice(-ndigits)}`;
  const result = Number(text);
  return negative ? -result : result;
}

/** Adds one to a string of decimal digits ("0999" → "1000"). */
function incrementDecimal(digits: string): string {
  const out = digits.split('');
  let i = out.length - 1;
  while (i >= 0) {
    if (out[i] === '9') {
      out[i] = '0';
      i--;
    } else {
      out[i] = String.fromCharCode(out[i]!.charCodeAt(0) + 1);
      return out.join('');
    }
  }
  return '1' + out.join('');
}
