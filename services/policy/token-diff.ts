// A minimal token diff (longest common subsequence) for the drift check: which tokens of one sequence
// have no counterpart in the other, so drift is a count of differing tokens, not the span around them.

/** The unmatched tokens of a minimal insert/delete alignment of `a` with `b`. */
export interface TokenDiff {
  /** Positions in `a` outside the common subsequence, ascending. */
  aOnly: number[];
  /** How many tokens of `b` are outside the common subsequence. */
  bOnly: number;
  /** True when the middle part exceeded the edit budget and was counted whole (an upper bound). */
  bounded: boolean;
}

/** Past this many edits between two segments the diff stops and counts the rest as differing. */
export const MAX_EDITS = 2048;

/**
 * Myers' O((N+M)·D) greedy diff (E. Myers, "An O(ND) difference algorithm", 1986) of a[lo..) and b[lo..),
 * keeping each round's frontier for the backtrack (memory O(D²), hence the budget). Returns undefined
 * when more than `maxEdits` edits are needed.
 */
function myers(a: readonly number[], b: readonly number[], maxEdits: number): { aOnly: number[]; bOnly: number } | undefined {
  const n = a.length;
  const m = b.length;
  const max = n + m;
  const offset = max + 1;
  const v = new Int32Array(2 * max + 3);
  const trace: Int32Array[] = [];
  let last = -1;
  for (let d = 0; d <= Math.min(max, maxEdits); d++) {
    for (let k = -d; k <= d; k += 2) {
      let x = k === -d || (k !== d && v[offset + k - 1]! < v[offset + k + 1]!) ? v[offset + k + 1]! : v[offset + k - 1]! + 1;
      let y = x - k;
      while (x < n && y < m && a[x] === b[y]) {
        x++;
        y++;
      }
      v[offset + k] = x;
      if (x >= n && y >= m) last = d;
    }
    trace.push(v.slice(offset - d, offset + d + 1));
    if (last >= 0) break;
  }
  if (last < 0) return undefined;
  const aOnly: number[] = [];
  let bOnly = 0;
  let x = n;
  let y = m;
  for (let d = last; d > 0; d--) {
    const prev = trace[d - 1]!;
    const at = (k: number) => prev[k + d - 1]!;
    const k = x - y;
    const down = k === -d || (k !== d && at(k - 1) < at(k + 1));
    const pk = down ? k + 1 : k - 1;
    const px = at(pk);
    const py = px - pk;
    if (down) bOnly++;
    else aOnly.push(px);
    x = px;
    y = py;
  }
  aOnly.reverse();
  return { aOnly, bOnly };
}

/**
 * The tokens of `a` and `b` outside their longest common subsequence. The common prefix and suffix are
 * trimmed first; where both sequences split into the same number of segments at `boundary` (a chat
 * template's message-start token), segments are aligned pairwise, which keeps each diff small. A segment
 * pair needing more than MAX_EDITS edits counts all its tokens as differing and sets `bounded`.
 */
export function diffTokens(a: readonly number[], b: readonly number[], boundary?: number): TokenDiff {
  const n = Math.min(a.length, b.length);
  let p = 0;
  while (p < n && a[p] === b[p]) p++;
  let s = 0;
  while (s < n - p && a[a.length - 1 - s] === b[b.length - 1 - s]) s++;
  const midA = a.slice(p, a.length - s);
  const midB = b.slice(p, b.length - s);
  const out: TokenDiff = { aOnly: [], bOnly: 0, bounded: false };
  const pieces = (xs: number[]): [number, number][] => {
    const starts = [0];
    if (boundary !== undefined) xs.forEach((t, i) => i > 0 && t === boundary && starts.push(i));
    return starts.map((st, i) => [st, starts[i + 1] ?? xs.length]);
  };
  let segA = pieces(midA);
  let segB = pieces(midB);
  if (segA.length !== segB.length) {
    segA = [[0, midA.length]];
    segB = [[0, midB.length]];
  }
  segA.forEach(([a0, a1], i) => {
    const [b0, b1] = segB[i]!;
    const d = myers(midA.slice(a0, a1), midB.slice(b0, b1), MAX_EDITS);
    if (d) {
      for (const j of d.aOnly) out.aOnly.push(p + a0 + j);
      out.bOnly += d.bOnly;
    } else {
      for (let j = a0; j < a1; j++) out.aOnly.push(p + j);
      out.bOnly += b1 - b0;
      out.bounded = true;
    }
  });
  return out;
}
