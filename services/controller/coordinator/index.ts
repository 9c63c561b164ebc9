// Public surface of the run coordinator: the task feed (the one implementation of rollout-task
// publishing, shared by `parley run` and the cluster), the Coordinator actor, the RunEvaluator beside it,
// their config and commands.

export {
  CoordinatorConfigSchema,
  EvaluationConfigSchema,
  ServeCoordinatorConfigSchema,
  TaskFeedConfigSchema,
  coordinatorConfig,
  coordinatorSettings,
  evaluationSettings,
  heldOutSettings,
  resolveCoordinatorConfig,
  taskFeedConfig,
  taskFeedSettings,
  type CoordinatorConfig,
  type CoordinatorConfigInput,
  type EvaluationConfig,
  type ServeCoordinatorConfig,
  type TaskFeedConfig,
  type TaskFeedConfigInput,
} from './config.js';
export { Coordinator, type CoordinatorDeps, type CoordinatorState, type CoordinatorStatus, type TaskLister } from './coordinator.js';
export { EVAL_STATE_KEY, KvEvalLedger, type EvalLedger, type EvalRunState } from './eval-ledger.js';
export { RunEvaluator, type RunEvaluatorDeps, type RunEvaluatorState, type RunEvaluatorStatus } from './run-evaluator.js';
export { COORDINATOR_STATE_KEY, KvGroupCounter, callbackGroupCounter, type CoordinatorRunState, type GroupCounter } from './group-counter.js';
export { LEARNER_STATE_KEY, kvLearnerProgress, type LearnerProgress, type LearnerProgressSource } from './learner-progress.js';
export { coordinatorMetrics, type CoordinatorMetrics } from './metrics.js';
export { TaskFeed, type TaskFeedDeps, type TopUpResult } from './task-feed.js';
export { drawAt, plannedGroup, type PlannedGroup } from './task-sequence.js';
export { readCoordinatorConfigFile, registerCoordinatorServeCommand } from './cli.js';
export { serveCoordinator, type RunningCoordinator } from './serve.js';
