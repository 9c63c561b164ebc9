// Announcements after a commit: the weights artifact and weights_published, then step_completed.
// Best effort: a failure is logged and the next start announces the latest weights again.

import type { Bus } from '../core/bus/index.js';
import type { Logger } from '../core/logger.js';
import { weightsPublishedMsgId } from '../core/weights-events.js';
import type { CheckpointRecord } from './checkpoint-store.js';
import type { ColdStartRecord } from './cold-start.js';
import type { LearnerConfig } from './config.js';
import {
  publishEvent,
  publishWeightsArtifact,
  runStateBucket,
  runSubjects,
  type LearnerRunState,
  type StepCompletedEvent,
  type WeightsPublishedEvent,
} from './run-bus.js';

/**
 * What the engine's SaveWeights folder holds for this config: `lora` when the engine trains LoRA
 * adapters (engine config_json has a non-null `lora`; the folder's trainable weights are the adapter's
 * and its export/ sub-folder is the PEFT adapter that hf_model.export_pretrained writes), else `full`
 * (the builtin model, or full fine-tuning of a Hugging Face model).
 */
export function weightsKind(cfg: Pick<LearnerConfig, 'engineConfigJson'>): 'full' | 'lora' {
  const engine = JSON.parse(cfg.engineConfigJson) as Record<string, unknown>; // checked by LearnerConfigSchema
  return engine.lora !== undefined && engine.lora !== null ? 'lora' : 'full';
}

/** Publishes the record's weights and a weights_published event (dedup id `<run>/weights/<version>`). Never rejects. */
export async function announceWeights(bus: Bus, cfg: LearnerConfig, rec: CheckpointRecord, log: Logger): Promise<void> {
  try {
    const art = await publishWeightsArtifact(bus, cfg.run, rec.weightsPath, rec.policyVersion, {
      transport: cfg.weightsTransport,
      maxBytes: cfg.objectStoreMaxBytes,
    });
    const event: WeightsPublishedEvent = {
      run: cfg.run,
      version: rec.policyVersion,
      step: rec.step,
      uri: art.uri,
      kind: weightsKind(cfg),
      transport: art.transport,
      bytes: art.bytes,
      publishedAtMs: Date.now(),
      ...(rec.policyVersion === 0 && (cfg.coldStart || cfg.initialWeights) ? { replacesInit: true } : {}),
    };
    await publishEvent(bus, runSubjects(cfg.run).weightsPublished, weightsPublishedMsgId(cfg.run, rec.policyVersion), event);
  } catch (e) {
    log.warn({ err: e, version: rec.policyVersion }, 'could not publish weights; they are announced again at the next start');
  }
}

/** Publishes step_completed (dedup id `<run>/step/<step>`) and the learner's run state in KV. Never rejects. */
export async function announceStep(
  bus: Bus,
  cfg: LearnerConfig,
  rec: CheckpointRecord,
  trajectories: number,
  seconds: number,
  metrics: Record<string, number>,
  log: Logger,
  tokens?: number,
): Promise<void> {
  const horizon = cfg.horizons[rec.horizonStage] ?? 0;
  const event: StepCompletedEvent = {
    run: cfg.run,
    step: rec.step,
    policyVersion: rec.policyVersion,
    trajectories,
    rewardMean: rec.rewardMean,
    seconds,
    horizon,
    horizonStage: rec.horizonStage,
    metrics,
    ...(tokens !== undefined ? { tokens } : {}),
    totals: { ...rec.totals },
  };
  try {
    await publishEvent(bus, runSubjects(cfg.run).stepCompleted, `${cfg.run}/step/${rec.step}`, event);
    const state: LearnerRunState = { step: rec.step, policyVersion: rec.policyVersion, horizon, horizonStage: rec.horizonStage, updatedAt: rec.createdAt };
    await (await bus.kv(runStateBucket(cfg.run))).put('learner', new TextEncoder().encode(JSON.stringify(state)));
  } catch (e) {
    log.warn({ err: e, step: rec.step }, 'could not publish step_completed or the run state');
  }
}

/** Publishes cold_start_completed {run, demonstrations, finalEpochLoss, seconds} (dedup id `<run>/cold-start`). Never rejects. */
export async function announceColdStart(bus: Bus, cfg: LearnerConfig, rec: ColdStartRecord, log: Logger): Promise<void> {
  try {
    const event = { run: cfg.run, demonstrations: rec.demonstrations, finalEpochLoss: rec.finalEpochLoss, seconds: rec.seconds };
    await publishEvent(bus, runSubjects(cfg.run).coldStartCompleted, `${cfg.run}/cold-start`, event);
  } catch (e) {
    log.warn({ err: e }, 'could not publish cold_start_completed');
  }
}
