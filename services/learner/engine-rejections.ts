// After the engine refused a step's batch (INVALID_ARGUMENT), finds the trajectories it refuses on
// their own, so the learner dead-letters them and trains the rest instead of stopping on one of them.

import { ParleyError } from '../core/errors.js';
import type { StepTrajectory } from './learner-step.js';
import type { TrainerClient } from './trainer-client.js';

/** Consecutive runs of `items` of at most `budget` tokens each (a longer item goes alone). */
function chunks(items: readonly StepTrajectory[], budget: number): StepTrajectory[][] {
  const out: StepTrajectory[][] = [];
  let cur: StepTrajectory[] = [];
  let tokens = 0;
  for (const t of items) {
    if (cur.length > 0 && tokens + t.tokenIds.length > budget) {
      out.push(cur);
      cur = [];
      tokens = 0;
    }
    cur.push(t);
    tokens += t.tokenIds.length;
  }
  if (cur.length > 0) out.push(cur);
  return out;
}

/**
 * The trajectories of `items` the engine refuses, by id, with the engine's message. Probes with
 * ComputeLogprobs (no gradients, no state) over chunks of at most `tokenBudget` tokens and bisects a
 * refused chunk down to single trajectories: k bad trajectories among n cost about k·log2(n) probes.
 * The engine checks the same token limits (length, vocabulary) there as in ForwardBackward; a refusal
 * only ForwardBackward makes is not found (empty map). Rejects with the engine's error when a probe
 * fails otherwise (unavailable, ...).
 */
export async function findRejected(trainer: TrainerClient, items: readonly StepTrajectory[], tokenBudget: number): Promise<Map<string, string>> {
  const rejected = new Map<string, string>();
  const probe = async (part: StepTrajectory[]): Promise<void> => {
    try {
      await trainer.computeLogprobs({ sequences: part.map((t) => ({ tokenIds: t.tokenIds })), reference: false });
    } catch (e) {
      const err = ParleyError.from(e);
      if (err.code !== 'invalid_argument') throw err;
      if (part.length === 1) {
        rejected.set(part[0]!.id, err.message);
        return;
      }
      const mid = Math.floor(part.length / 2);
      await probe(part.slice(0, mid));
      await probe(part.slice(mid));
    }
  };
  for (const chunk of chunks(items, tokenBudget)) await probe(chunk);
  return rejected;
}
