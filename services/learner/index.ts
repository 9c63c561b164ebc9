// Public surface of services/learner: the learner, its algorithm pieces, the service, the engine
// process and client, the engine-backed sampler, and the CLI commands.

export * from './advantages.js';
export { CheckpointStore, CHECKPOINT_FORMAT, consumedIdSet, type CheckpointRecord, type ConsumedIds, type LearnerTotals } from './checkpoint-store.js';
export * from './config.js';
export { ENGINE_CONFIG_SCHEMA, engineConfigFields, engineSettingsSchema, loraSettingsSchema, runSpecName, type EngineFieldSchema, type LoraSettings } from './engine-config.js';
export { withBuiltinVocabSize } from './engine-vocab.js';
export { GroupBuffer, isStale, type DropReason, type Dropped, type GroupMember, type GroupingOptions, type ReadyGroup } from './grouping.js';
export { checkTrajectory } from './intake.js';
export { Learner, type Clock, type LearnerDeps, type LearnerState, type LearnerStatus } from './learner.js';
export { learnerServiceImpl, LearnerService } from './learner-service.js';
export { executeStep, lossConfig, planStep, type StepHooks, type StepPlan, type StepResult, type StepTrajectory } from './learner-step.js';
export { learnerMetrics, type LearnerMetrics } from './learner-metrics.js';
export { lossTokens, packByTokens, planMicroBatches, type MicroBatch, type Normalisation } from './micro-batches.js';
export {
  LEARNER_DURABLE,
  parseEvent,
  runStateBucket,
  runStreams,
  runSubjects,
  trajectoryStreamConfig,
  type LearnerRunState,
  type StepCompletedEvent,
  type WeightsPublishedEvent,
} from './run-bus.js';
export { serveLearner, type RunningLearner } from './serve.js';
export { connectTrainer, waitForTrainerHealthy, type TrainerClient } from './trainer-client.js';
export { ENGINE_DIR, enginePython, runEngineForeground, startEngineProcess, type EngineProcess, type EngineProcessOptions } from './engine-process.js';
export { EngineSamplerBackend, type EngineSamplerOptions } from './engine-sampler.js';
export { readLearnerConfigFile, registerEngineCommands, registerLearnerServeCommand } from './cli.js';
