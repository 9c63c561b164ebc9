// Public surface of the run coordinator: the task feed (the one implementation of rollout-task
// publishing, shared by `parley run` and the cluster), the Coordinator actor, its config and commands.

export {
  CoordinatorConfigSchema,
  ServeCoordinatorConfigSchema,
  TaskFeedConfigSchema,
  coordinatorConfig,
  coordinatorSettings,
  resolveCoordinatorConfig,
  taskFeedConfig,
  taskFeedSettings,
  type CoordinatorConfig,
  type CoordinatorConfigInput,
  type ServeCoordinatorConfig,
  type TaskFeedConfig,
  type TaskFeedConfigInput,
} from './config.js';
export { Coordinator, type CoordinatorDeps, type CoordinatorState, type CoordinatorStatus, type TaskLister } from './coordinator.js';
export { COORDINATOR_STATE_KEY, KvGroupCounter, callbackGroupCounter, type CoordinatorRunState, type GroupCounter } from './group-counter.js';
export { LEARNER_STATE_KEY, kvLearnerProgress, type LearnerProgress, type LearnerProgressSource } from './learner-progress.js';
export { coordinatorMetrics, type CoordinatorMetrics } from './metrics.js';
export { TaskFeed, type TaskFeedDeps, type TopUpResult } from './task-feed.js';
export { drawAt, plannedGroup, type PlannedGroup } from './task-sequence.js';
export { readCoordinatorConfigFile, registerCoordinatorServeCommand } from './cli.js';
export { serveCoordinator, type RunningCoordinator } from './serve.js';
