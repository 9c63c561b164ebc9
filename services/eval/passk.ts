// pass^k (τ-bench): the chance that all k i.i.d. trials of a task succeed, estimated per task without bias
// as C(c, k) / C(n, k) from n trials with c successes, averaged over tasks; pass@k likewise as
// 1 − C(n−c, k) / C(n, k). Confidence intervals by a seeded bootstrap over tasks.

/** C(n, k) as a float (exact for the small n used here). */
export function choose(n: number, k: number): number {
  if (k < 0 || k > n) return 0;
  let r = 1;
  for (let i = 1; i <= k; i++) r = (r * (n - k + i)) / i;
  return r;
}

export interface TaskTrials {
  taskId: string;
  /** Successes (reward = 1) among `n` trials. */
  successes: number;
  n: number;
}

/** Unbiased pass^k of one task; throws when k > n. */
export function passHatK(t: TaskTrials, k: number): number {
  if (k > t.n) throw new Error(`pass^${k} needs at least ${k} trials of task ${t.taskId}, got ${t.n}`);
  return choose(t.successes, k) / choose(t.n, k);
}

/** Unbiased pass@k of one task; throws when k > n. */
export function passAtK(t: TaskTrials, k: number): number {
  if (k > t.n) throw new Error(`pass@${k} needs at least ${k} trials of task ${t.taskId}, got ${t.n}`);
  return 1 - choose(t.n - t.successes, k) / choose(t.n, k);
}

export interface Estimate {
  value: number;
  /** 95% bootstrap interval over tasks. */
  low: number;
  high: number;
}

function seeded(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = Math.imul(a ^ (a >>> 15), a | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Mean of per-task values with a 95% percentile bootstrap interval (resampling tasks). */
export function bootstrapMean(values: number[], resamples = 2000, seed = 1): Estimate {
  if (values.length === 0) return { value: NaN, low: NaN, high: NaN };
  const mean = values.reduce((a, b) => a + b, 0) / values.length;
  const rand = seeded(seed);
  const means: number[] = [];
  for (let r = 0; r < resamples; r++) {
    let s = 0;
    for (let i = 0; i < values.length; i++) s += values[Math.floor(rand() * values.length)]!;
    means.push(s / values.length);
  }
  means.sort((a, b) => a - b);
  return { value: mean, low: means[Math.floor(0.025 * resamples)]!, high: means[Math.min(resamples - 1, Math.floor(0.975 * resamples))]! };
}

export interface PassReport {
  tasks: number;
  trials: number;
  /** pass^1 = mean success rate. */
  pass1: Estimate;
  /** pass^k for k = 1..K. */
  passk: Record<string, Estimate>;
  /** pass@k for k = 1..K. */
  passAtK: Record<string, Estimate>;
}

/** pass^k and pass@k for k = 1..maxK over tasks with at least maxK trials each. Throws when a task has fewer. */
export function passReport(tasks: TaskTrials[], maxK: number, seed = 1): PassReport {
  const out: PassReport = { tasks: tasks.length, trials: tasks.reduce((a, t) => a + t.n, 0), pass1: { value: NaN, low: NaN, high: NaN }, passk: {}, passAtK: {} };
  for (let k = 1; k <= maxK; k++) {
    out.passk[String(k)] = bootstrapMean(tasks.map((t) => passHatK(t, k)), 2000, seed + k);
    out.passAtK[String(k)] = bootstrapMean(tasks.map((t) => passAtK(t, k)), 2000, seed + 100 + k);
  }
  out.pass1 = out.passk['1']!;
  return out;
}
