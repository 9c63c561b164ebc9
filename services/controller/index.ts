// Public surface of services/controller: the run spec, the TrainingRun resource, the controller and its
// parts (for tests and embedding), the run coordinator, CRD and chart-values generation, and the CLI commands.

export * from './run-spec.js';
export * from './training-run.js';
export { ChartValuesSchema, chartValuesJsonSchema, type ChartValues } from './chart-values.js';
export { ManualClock, realClock, type Clock, type TimerHandle } from './clock.js';
export { registerControllerCommands } from './cli.js';
export { ControllerConfigSchema, resolveControllerConfig, type ControllerConfig } from './config.js';
export { Controller, type ControllerDeps, type ControllerState } from './controller.js';
export { specSchema, statusSchema, trainingRunCrd } from './crd.js';
export { generatedFiles, staleFiles, writeGenerated } from './crd-generate.js';
export { desiredObjects, type DesiredObjects } from './actor-workloads.js';
export { KubeApiError, createKubeClient, type KubeClient, type KindMap, type ManagedKind } from './kube-client.js';
export * from './labels.js';
export { LeaderElector, type ElectorState, type LeaderElectionOptions } from './leader-election.js';
export {
  Coordinator,
  TaskFeed,
  registerCoordinatorServeCommand,
  serveCoordinator,
  type CoordinatorConfig,
  type CoordinatorStatus,
  type RunningCoordinator,
  type TaskFeedConfig,
} from './coordinator/index.js';
export { controllerMetrics, forgetRun, runMetrics, type ControllerMetrics, type RunMetrics } from './metrics.js';
export { deleteRunStreams, provisionRunStreams, runStreamConfigs, runStreamNames } from './nats-provision.js';
export { CONTROLLER_RULES, LEASE_RULES, rbacManifests } from './rbac.js';
export { RunReconciler, type ReconcileOutcome } from './reconciler.js';
export { RunInformers, type RunCache } from './informers.js';
export { renderRunConfig, learnerSettings, coordinatorRunSettings } from './run-config.js';
export { CONTROLLER_DURABLE, RunEventsTracker, type RunProgress } from './run-events.js';
export { computeStatus, isFinal, setCondition, type Observed } from './run-status.js';
export { checkRun, type SpecCheck } from './spec-validation.js';
export { serveController, type RunningController } from './serve.js';
export { WorkQueue } from './work-queue.js';
export { ItemExponentialBackoff, MaxOfRateLimiter, TokenBucket, defaultControllerRateLimiter, type RateLimiter } from './rate-limiter.js';
