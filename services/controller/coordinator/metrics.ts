// The run coordinator's Prometheus metrics (parley_coordinator_*): what it published, the queue it keeps
// topped up, the learner progress it publishes for, and its held-out evaluations.

import { Counter, Gauge, getOrCreate, type Registry } from '../../core/metrics.js';

export interface CoordinatorMetrics {
  groupsPublished: Counter;
  tasksDuplicate: Counter;
  nextGroup: Gauge;
  queueDepth: Gauge;
  learnerStep: Gauge;
  horizon: Gauge;
  topUpFailures: Counter;
  evalPassRate: Gauge;
  evalSeconds: Gauge;
  evalStep: Gauge;
  evalFailures: Counter;
}

/** The coordinator's metrics in `registry` (created once per registry, shared by later feeds). */
export function coordinatorMetrics(registry: Registry): CoordinatorMetrics {
  const gauge = (name: string, help: string) => getOrCreate(registry, name, () => new Gauge({ name, help, registers: [] }));
  const counter = (name: string, help: string, labelNames: string[] = []) => getOrCreate(registry, name, () => new Counter({ name, help, labelNames, registers: [] }));
  return {
    groupsPublished: counter('parley_coordinator_groups_published_total', 'Task groups this process published (a group republished after a restart counts again).'),
    tasksDuplicate: counter('parley_coordinator_tasks_duplicate_total', 'Task messages the bus dropped as duplicates (a republish after a restart).'),
    nextGroup: gauge('parley_coordinator_next_group_number', 'Index of the next group of the seeded sequence (groups published so far in the run).'),
    queueDepth: gauge('parley_coordinator_queue_depth_messages', 'Rollout tasks in the run\'s task queue (waiting or in flight) at the last look.'),
    learnerStep: gauge('parley_coordinator_learner_step_number', 'The learner step the coordinator last saw.'),
    horizon: gauge('parley_coordinator_horizon_turns', 'Turn horizon stamped on the tasks last published.'),
    topUpFailures: counter('parley_coordinator_topup_failures_total', 'Top-ups that failed (retried with backoff), by error code.', ['code']),
    evalPassRate: gauge('parley_coordinator_eval_pass_rate_ratio', 'Held-out pass^1 of the latest evaluation.'),
    evalSeconds: gauge('parley_coordinator_eval_seconds', 'Wall time of the latest held-out evaluation.'),
    evalStep: gauge('parley_coordinator_eval_step_number', 'The learner step of the latest held-out evaluation.'),
    evalFailures: counter('parley_coordinator_eval_failures_total', 'Held-out evaluations that failed (retried with backoff), by error code.', ['code']),
  };
}
