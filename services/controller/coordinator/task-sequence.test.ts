import { describe, expect, it } from 'vitest';
import { drawAt, lcgSkip, plannedGroup, sequenceState } from './task-sequence.js';

/** The generator drawn one value at a time, as `parley run` drew it before the sequence was indexable. */
function sequential(seed: number) {
  let a = seed >>> 0 || 1;
  return () => {
    a = (Math.imul(a, 1664525) + 1013904223) >>> 0;
    return a / 4294967296;
  };
}

describe('task sequence', () => {
  it('draw n equals the n-th draw of the sequential generator', () => {
    for (const seed of [0, 1, 3, 42, 123_456]) {
      const next = sequential(seed * 7919);
      for (let n = 0; n < 2000; n++) expect(drawAt(seed, n)).toBe(next());
    }
  });

  it('skipping composes: k draws then m draws is k + m draws', () => {
    const s = sequenceState(9);
    for (const [k, m] of [[0, 0], [1, 0], [0, 7], [5, 11], [1000, 2 ** 20], [2 ** 31 + 3, 2 ** 33]]) {
      expect(lcgSkip(lcgSkip(s, k!), m!)).toBe(lcgSkip(s, k! + m!));
    }
  });

  it('group n is the same whenever it is asked for, with sampling seeds as `parley run` set them', () => {
    const taskIds = ['a', 'b', 'c', 'd', 'e'];
    const forward = Array.from({ length: 50 }, (_, n) => plannedGroup({ seed: 7, taskIds }, n));
    const backward = Array.from({ length: 50 }, (_, i) => plannedGroup({ seed: 7, taskIds }, 49 - i)).reverse();
    expect(backward).toEqual(forward);
    expect(forward[0]).toEqual({ index: 0, groupId: 'g0', taskId: forward[0]!.taskId, seed: 700_001n });
    expect(forward[12]!.groupId).toBe('g12');
    expect(forward[12]!.seed).toBe(700_013n);
    const next = sequential(7 * 7919);
    for (const g of forward) expect(g.taskId).toBe(taskIds[Math.floor(next() * taskIds.length)]);
    // Draws spread over the tasks (a broken skip tends to repeat one).
    expect(new Set(forward.map((g) => g.taskId)).size).toBe(taskIds.length);
  });

  it('refuses an empty task list and bad indices', () => {
    expect(() => plannedGroup({ seed: 1, taskIds: [] }, 0)).toThrow(/no train task ids/);
    expect(() => plannedGroup({ seed: 1, taskIds: ['a'] }, -1)).toThrow(/non-negative integer/);
    expect(() => plannedGroup({ seed: 1, taskIds: ['a'] }, 1.5)).toThrow(/non-negative integer/);
  });
});
