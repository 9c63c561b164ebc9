// What the next checkpoint will record: trajectories dropped since the last commit (with group
// counts), and the record itself, with running totals carried forward from the last one.

import { CHECKPOINT_FORMAT, type CheckpointRecord, type ConsumedIds } from './checkpoint-store.js';
import type { Dropped } from './grouping.js';

export const emptyIds = (): ConsumedIds => ({ trained: [], stale: [], zeroVariance: [], incomplete: [] });

/** Drops awaiting the next commit. Cleared only when a commit that includes them succeeded. */
export class PendingDrops {
  private ids = emptyIds();
  private groups = { zeroVariance: 0, incomplete: 0 };

  /** Trajectories awaiting the next commit. */
  get count(): number {
    return this.ids.stale.length + this.ids.zeroVariance.length + this.ids.incomplete.length;
  }

  add(dropped: readonly Dropped<unknown>[]): void {
    for (const d of dropped) {
      const ids = d.members.map((m) => m.id);
      if (d.reason === 'stale') this.ids.stale.push(...ids);
      else if (d.reason === 'zero_variance') {
        this.ids.zeroVariance.push(...ids);
        this.groups.zeroVariance++;
      } else {
        this.ids.incomplete.push(...ids);
        this.groups.incomplete++;
      }
    }
  }

  /**
   * The record that follows `last`: a step (with `trained` ids, new weights when `weights` is given)
   * or a flush of drops only. The pending drops go into it; call clear() once it is committed.
   */
  nextRecord(
    last: CheckpointRecord,
    kind: 'step' | 'flush',
    opts: { trained?: string[]; weights?: { path: string }; rewardMean?: number; horizons: readonly number[]; horizonEverySteps: number; now: number },
  ): CheckpointRecord {
    const step = kind === 'step' ? last.step + 1 : last.step;
    const consumed: ConsumedIds = {
      trained: [...(opts.trained ?? [])],
      stale: [...this.ids.stale],
      zeroVariance: [...this.ids.zeroVariance],
      incomplete: [...this.ids.incomplete],
    };
    const n = (k: keyof ConsumedIds) => consumed[k].length;
    const stages = opts.horizons.length;
    return {
      format: CHECKPOINT_FORMAT,
      run: last.run,
      seq: last.seq + 1,
      kind,
      step,
      policyVersion: opts.weights ? last.policyVersion + 1 : last.policyVersion,
      weightsPath: opts.weights ? opts.weights.path : last.weightsPath,
      horizonStage: stages ? Math.min(stages - 1, Math.floor(step / opts.horizonEverySteps)) : 0,
      consumed,
      totals: {
        consumed: last.totals.consumed + n('trained') + n('stale') + n('zeroVariance') + n('incomplete'),
        trained: last.totals.trained + n('trained'),
        droppedStale: last.totals.droppedStale + n('stale'),
        zeroVarianceGroups: last.totals.zeroVarianceGroups + this.groups.zeroVariance,
        incompleteGroups: last.totals.incompleteGroups + this.groups.incomplete,
      },
      rewardMean: kind === 'step' ? (opts.rewardMean ?? 0) : last.rewardMean,
      createdAt: new Date(opts.now).toISOString(),
    };
  }

  /** Forgets the drops (they are in a committed record). */
  clear(): void {
    this.ids = emptyIds();
    this.groups = { zeroVariance: 0, incomplete: 0 };
  }
}
