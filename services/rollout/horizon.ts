// ScalingInter-RL: the turn horizon grows on a schedule (e.g. [10, 20, 30] every 100 steps).

export interface HorizonSchedule {
  /** Horizons in order; the last one holds for the rest of training. */
  horizons: number[];
  /** Learner steps per stage (Δ). */
  everySteps: number;
}

/** The horizon stage (0-based) at a learner step. */
export function horizonStage(schedule: HorizonSchedule, step: number): number {
  if (schedule.horizons.length === 0) throw new Error('horizon schedule: horizons must not be empty');
  if (!(schedule.everySteps > 0)) throw new Error('horizon schedule: everySteps must be positive');
  return Math.min(schedule.horizons.length - 1, Math.floor(Math.max(0, step) / schedule.everySteps));
}

/** The turn horizon at a learner step. Throws on an empty schedule or a non-positive interval. */
export function horizonAt(schedule: HorizonSchedule, step: number): number {
  return schedule.horizons[horizonStage(schedule, step)]!;
}
