// The learner's Prometheus metrics (parley_learner_*): progress, what was consumed or dropped, step
// time and throughput, and the loss parts the engine reports.

import { Counter, Gauge, Histogram, getOrCreate, type Registry } from '../core/metrics.js';

export interface LearnerMetrics {
  step: Gauge;
  policyVersion: Gauge;
  rewardMean: Gauge;
  horizon: Gauge;
  consumed: Counter;
  droppedStale: Counter;
  zeroVarianceGroups: Counter;
  incompleteGroups: Counter;
  duplicates: Counter;
  invalid: Counter;
  deadLetters: Counter;
  buffered: Gauge;
  stepSeconds: Histogram;
  tokensPerSecond: Gauge;
  stepFailures: Counter;
  loss: Gauge;
}

/** The learner's metrics in `registry` (created once per registry, shared by later learners). */
export function learnerMetrics(registry: Registry): LearnerMetrics {
  const gauge = (name: string, help: string, labelNames: string[] = []) =>
    getOrCreate(registry, name, () => new Gauge({ name, help, labelNames, registers: [] }));
  const counter = (name: string, help: string, labelNames: string[] = []) =>
    getOrCreate(registry, name, () => new Counter({ name, help, labelNames, registers: [] }));
  return {
    step: gauge('parley_learner_step_number', 'Learner steps completed (committed).'),
    policyVersion: gauge('parley_learner_policy_version_number', 'Version of the latest committed weights.'),
    rewardMean: gauge('parley_learner_reward_mean', 'Mean reward of the trajectories trained on in the latest step.'),
    horizon: gauge('parley_learner_horizon_turns', 'ScalingInter-RL turn horizon at the current step (0: no schedule).'),
    consumed: counter('parley_learner_trajectories_consumed_total', 'Trajectories consumed (trained on or dropped), each once.'),
    droppedStale: counter('parley_learner_trajectories_dropped_stale_total', 'Trajectories dropped for exceeding maxStepsOffPolicy.'),
    zeroVarianceGroups: counter('parley_learner_groups_dropped_zero_variance_total', 'Groups dropped because all rewards were equal.'),
    incompleteGroups: counter('parley_learner_groups_dropped_incomplete_total', 'Groups dropped because too few members arrived in time.'),
    duplicates: counter('parley_learner_trajectories_duplicate_total', 'Deliveries of a trajectory id already held or consumed.'),
    invalid: counter('parley_learner_trajectories_invalid_total', 'Trajectory messages refused at intake as malformed or out of bounds.', ['reason']),
    deadLetters: counter('parley_learner_dead_letters_total', 'Trajectories refused (at intake, or by the engine during a step) and moved to the dead-letter stream.', ['reason']),
    buffered: gauge('parley_learner_buffered_trajectories_count', 'Trajectories held unacknowledged (grouping or in a step).'),
    stepSeconds: getOrCreate(
      registry,
      'parley_learner_step_seconds',
      () =>
        new Histogram({
          name: 'parley_learner_step_seconds',
          help: 'Wall time of a learner step, engine calls and checkpoint included.',
          buckets: [0.01, 0.05, 0.1, 0.5, 1, 2, 5, 10, 30, 60, 120, 300, 600],
          registers: [],
        }),
    ),
    tokensPerSecond: gauge('parley_learner_step_tokens_per_second', 'Tokens trained per second of the latest step.'),
    stepFailures: counter('parley_learner_step_failures_total', 'Step attempts that failed (then retried or fatal).', ['code']),
    loss: gauge('parley_learner_loss_value', 'Loss parts and engine figures of the latest step, by name.', ['part']),
  };
}
