// The controller's Prometheus metrics: its own work (parley_controller_*) and each run's progress and
// health (parley_run_*, labelled namespace and run), which the Grafana dashboards chart.

import { Counter, Gauge, Histogram, getOrCreate, type Registry } from '../core/metrics.js';
import { GROUPS } from './labels.js';
import { PHASES } from './training-run.js';

export interface ControllerMetrics {
  reconciles: Counter<'result'>;
  reconcileSeconds: Histogram;
  queueDepth: Gauge;
  queueRetries: Counter;
  watchRestarts: Counter<'kind'>;
  leader: Gauge;
  runs: Gauge<'phase'>;
}

export interface RunMetrics {
  step: Gauge<'namespace' | 'run'>;
  policyVersion: Gauge<'namespace' | 'run'>;
  reward: Gauge<'namespace' | 'run'>;
  passRate: Gauge<'namespace' | 'run'>;
  episodes: Counter<'namespace' | 'run'>;
  tokensPerSecond: Gauge<'namespace' | 'run'>;
  staleness: Gauge<'namespace' | 'run'>;
  weightSyncSeconds: Histogram<'namespace' | 'run'>;
  actorRestarts: Counter<'namespace' | 'run' | 'group'>;
  actorsReady: Gauge<'namespace' | 'run' | 'group'>;
  actorsDesired: Gauge<'namespace' | 'run' | 'group'>;
  phase: Gauge<'namespace' | 'run' | 'phase'>;
}

const RUN = ['namespace', 'run'] as const;
const GROUP = ['namespace', 'run', 'group'] as const;

/** The controller's metrics in `registry` (created once per registry). */
export function controllerMetrics(registry: Registry): ControllerMetrics {
  return {
    reconciles: getOrCreate(registry, 'parley_controller_reconciles_total', () =>
      new Counter({ name: 'parley_controller_reconciles_total', help: 'Reconciles by result: success, requeue (success with a scheduled retry) or error.', labelNames: ['result'], registers: [] }),
    ),
    reconcileSeconds: getOrCreate(registry, 'parley_controller_reconcile_duration_seconds', () =>
      new Histogram({ name: 'parley_controller_reconcile_duration_seconds', help: 'Wall time of one reconcile.', buckets: [0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30], registers: [] }),
    ),
    queueDepth: getOrCreate(registry, 'parley_controller_queue_depth_items', () =>
      new Gauge({ name: 'parley_controller_queue_depth_items', help: 'Runs waiting in the work queue.', registers: [] }),
    ),
    queueRetries: getOrCreate(registry, 'parley_controller_queue_retries_total', () =>
      new Counter({ name: 'parley_controller_queue_retries_total', help: 'Rate-limited re-adds after failed reconciles.', registers: [] }),
    ),
    watchRestarts: getOrCreate(registry, 'parley_controller_watch_restarts_total', () =>
      new Counter({ name: 'parley_controller_watch_restarts_total', help: 'Informer restarts after a watch or list error, by kind.', labelNames: ['kind'], registers: [] }),
    ),
    leader: getOrCreate(registry, 'parley_controller_leader_status', () =>
      new Gauge({ name: 'parley_controller_leader_status', help: '1 while this replica holds the leader Lease.', registers: [] }),
    ),
    runs: getOrCreate(registry, 'parley_controller_runs_count', () =>
      new Gauge({ name: 'parley_controller_runs_count', help: 'TrainingRuns by phase.', labelNames: ['phase'], registers: [] }),
    ),
  };
}

/** The per-run metrics in `registry` (created once per registry). */
export function runMetrics(registry: Registry): RunMetrics {
  const gauge = <L extends string>(name: string, help: string, labelNames: readonly L[]) =>
    getOrCreate(registry, name, () => new Gauge<L>({ name, help, labelNames, registers: [] }));
  const counter = <L extends string>(name: string, help: string, labelNames: readonly L[]) =>
    getOrCreate(registry, name, () => new Counter<L>({ name, help, labelNames, registers: [] }));
  return {
    step: gauge('parley_run_step_number', 'Learner steps completed.', RUN),
    policyVersion: gauge('parley_run_policy_version_number', 'Newest published policy (weights) version.', RUN),
    reward: gauge('parley_run_reward_mean', 'Mean reward of the latest learner step.', RUN),
    passRate: gauge('parley_run_pass_rate_ratio', 'Share of episodes with full reward in the latest step or evaluation.', RUN),
    episodes: counter('parley_run_episodes_total', 'Episodes (trajectories) trained on.', RUN),
    tokensPerSecond: gauge('parley_run_tokens_per_second', 'Learner throughput in tokens per second, latest step.', RUN),
    staleness: gauge('parley_run_staleness_versions', 'Mean policy-version lag of the latest step\'s trajectories.', RUN),
    weightSyncSeconds: getOrCreate(registry, 'parley_run_weight_sync_seconds', () =>
      new Histogram({
        name: 'parley_run_weight_sync_seconds',
        help: 'Seconds from weights_published to each policy actor\'s weights_loaded.',
        labelNames: RUN,
        buckets: [0.1, 0.5, 1, 2, 5, 10, 30, 60, 120, 300],
        registers: [],
      }),
    ),
    actorRestarts: counter('parley_run_actor_restarts_total', 'Actor failures counted against maxRestarts, by group.', GROUP),
    actorsReady: gauge('parley_run_actors_ready_count', 'Ready actor pods, by group.', GROUP),
    actorsDesired: gauge('parley_run_actors_desired_count', 'Actor pods wanted now, by group.', GROUP),
    phase: gauge('parley_run_phase_info', '1 for the run\'s current phase.', ['namespace', 'run', 'phase']),
  };
}

/** Drops every series of a deleted run (label values are closed sets: groups and phases). */
export function forgetRun(m: RunMetrics, namespace: string, run: string): void {
  const base = { namespace, run };
  for (const g of [m.step, m.policyVersion, m.reward, m.passRate, m.tokensPerSecond, m.staleness]) g.remove(base);
  m.episodes.remove(base);
  m.weightSyncSeconds.remove(base);
  for (const group of GROUPS) {
    m.actorRestarts.remove({ ...base, group });
    m.actorsReady.remove({ ...base, group });
    m.actorsDesired.remove({ ...base, group });
  }
  for (const phase of PHASES) m.phase.remove({ ...base, phase });
}
