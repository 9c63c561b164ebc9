// The run's seeded sequence of task groups as a pure function of the group's index: group n has the id
// `g<n>`, a task drawn by the n-th output of a seeded generator, and a sampling seed. A coordinator that
// restarts at index n continues the same sequence without replaying the draws before it.

/** What decides the sequence. */
export interface SequenceSeed {
  /** The run spec's seed. */
  seed: number;
  /** Train task ids in a stable order (the draws index into it). */
  taskIds: readonly string[];
}

/** One group of the sequence. */
export interface PlannedGroup {
  index: number;
  /** `g<index>`: unique in the run, so the trajectory ids built from it are too. */
  groupId: string;
  taskId: string;
  /** The group's seed (sample i samples with deriveSeed(seed, groupId, i), see publishGroup). */
  seed: bigint;
}

// A 32-bit linear congruential generator (Numerical Recipes' constants): x' = A·x + C mod 2^32.
const A = 1664525;
const C = 1013904223;

/** The generator's state after `steps` draws from `state`, in O(log steps) (affine-map composition by squaring). */
export function lcgSkip(state: number, steps: number): number {
  let accMult = 1;
  let accPlus = 0;
  let curMult = A;
  let curPlus = C;
  for (let n = steps; n > 0; n = Math.floor(n / 2)) {
    if (n % 2 === 1) {
      accMult = Math.imul(accMult, curMult) >>> 0;
      accPlus = (Math.imul(accPlus, curMult) + curPlus) >>> 0;
    }
    curPlus = Math.imul(curMult + 1, curPlus) >>> 0;
    curMult = Math.imul(curMult, curMult) >>> 0;
  }
  return (Math.imul(accMult, state >>> 0) + accPlus) >>> 0;
}

/** The generator's starting state for a run seed (never 0). */
export function sequenceState(seed: number): number {
  return (seed * 7919) >>> 0 || 1;
}

/** The n-th draw (0-based) in [0, 1) of the run's generator. */
export function drawAt(seed: number, n: number): number {
  return lcgSkip(sequenceState(seed), n + 1) / 4294967296;
}

/**
 * Group `n` of the sequence. Throws when there are no task ids or `n` is not a non-negative integer.
 */
export function plannedGroup(s: SequenceSeed, n: number): PlannedGroup {
  if (s.taskIds.length === 0) throw new Error('task sequence: no train task ids to draw from');
  if (!Number.isSafeInteger(n) || n < 0) throw new Error(`task sequence: group index must be a non-negative integer, got ${n}`);
  return {
    index: n,
    groupId: `g${n}`,
    taskId: s.taskIds[Math.floor(drawAt(s.seed, n) * s.taskIds.length)]!,
    seed: BigInt(s.seed * 100_000 + n + 1),
  };
}
