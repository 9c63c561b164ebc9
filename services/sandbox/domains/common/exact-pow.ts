// x ** y for doubles, correctly rounded in all but astronomically rare cases, as glibc's pow is.
// V8's Math.pow is only faithful (off by an ulp now and then), which `calculate` would show.

type DD = [number, number];

const SPLITTER = 134217729; // 2^27 + 1
const LN2: DD = [0.6931471805599453, 2.3190468138462996e-17];

function twoSum(a: number, b: number): DD {
  const s = a + b;
  const bb = s - a;
  return [s, a - (s - bb) + (b - bb)];
}

function quickTwoSum(a: number, b: number): DD {
  const s = a + b;
  return [s, b - (s - a)];
}

function twoProd(a: number, b: number): DD {
  const p = a * b;
  let t = SPLITTER * a;
  const ah = t - (t - a);
  const al = a - ah;
  t = SPLITTER * b;
  const bh = t - (t - b);
  const bl = b - bh;
  return [p, ah * bh - p + ah * bl + al * bh + al * bl];
}

function add(a: DD, b: DD): DD {
  const [s, e] = twoSum(a[0], b[0]);
  return quickTwoSum(s, e + a[1] + b[1]);
}

function mul(a: DD, b: DD): DD {
  const [p, e] = twoProd(a[0], b[0]);
  return quickTwoSum(p, e + a[0] * b[1] + a[1] * b[0]);
}

function div(a: DD, b: DD): DD {
  const q1 = a[0] / b[0];
  const r = add(a, mul(b, [-q1, 0]));
  const q2 = r[0] / b[0];
  const r2 = add(r, mul(b, [-q2, 0]));
  const q3 = r2[0] / b[0];
  return add(quickTwoSum(q1, q2), [q3, 0]);
}

/** ln(x) for finite x > 0, as a double-double. */
function logDD(x: number): DD {
  let e = 0;
  let m = x;
  // Bring m into [1/sqrt2, sqrt2) by exact scaling with powers of two.
  if (m < 2 ** -1000) {
    m *= 2 ** 600;
    e -= 600;
  }
  const k = Math.floor(Math.log2(m));
  m *= 2 ** -k;
  e += k;
  if (m >= Math.SQRT2) {
    m /= 2;
    e += 1;
  } else if (m < Math.SQRT1_2) {
    m *= 2;
    e -= 1;
  }
  // ln(m) = 2 atanh(s), s = (m - 1) / (m + 1); m - 1 is exact here (Sterbenz).
  const s = div([m - 1, 0], twoSum(m, 1));
  const s2 = mul(s, s);
  let term = s;
  let sum: DD = s;
  for (let n = 3; n < 80; n += 2) {
    term = mul(term, s2);
    const t = div(term, [n, 0]);
    sum = add(sum, t);
    if (Math.abs(t[0]) < 1e-34 * Math.abs(sum[0])) break;
  }
  return add(mul(sum, [2, 0]), mul(LN2, [e, 0]));
}

/** exp(t) for a double-double t, rounded to a double; Infinity on overflow. */
function expDD(t: DD): number {
  if (t[0] > 710) return Infinity;
  if (t[0] < -746) return 0;
  const k = Math.round(t[0] / LN2[0]);
  const r = add(t, mul(LN2, [-k, 0]));
  // Taylor series on |r| <= 0.35 to double-double precision.
  let term: DD = [1, 0];
  let sum: DD = [1, 0];
  for (let n = 1; n < 40; n++) {
    term = div(mul(term, r), [n, 0]);
    sum = add(sum, term);
    if (Math.abs(term[0]) < 1e-34) break;
  }
  // sum[0] is the correctly rounded value of sum; scaling by 2^k is exact outside the subnormal range.
  const half = Math.trunc(k / 2);
  return sum[0] * 2 ** half * 2 ** (k - half);
}

/**
 * x ** y for finite x > 0 (x != 1) and finite non-zero y, via double-double log and exp.
 * Returns Infinity on overflow and 0 on underflow; never throws.
 */
export function exactPow(x: number, y: number): number {
  return expDD(mul(logDD(x), [y, 0]));
}
