// The run's ConfigMap: the normalised run spec every actor reads, and the learner's and coordinator's
// settings derived from it (checked by their own schemas), with a content hash that rolls pods on change.

import { createHash } from 'node:crypto';
import { isAbsolute, posix } from 'node:path';
import { stringify } from 'yaml';
import { engineConfigFields, learnerConfig } from '../learner/index.js';
import { coordinatorConfig, coordinatorSettings } from './coordinator/config.js';
import type { ControllerConfig } from './config.js';
import type { RunSpec } from './run-spec.js';

/** Where the ConfigMap is mounted in every actor container. */
export const CONFIG_MOUNT = '/etc/parley/run';
/** Where the shared volume (checkpoints, weights, models) is mounted. */
export const DATA_MOUNT = '/data';

/** Where a pvc model source's claim is mounted, read-only, in the containers that load the model. */
export const MODEL_CLAIM_MOUNT = '/models';

/**
 * The folder a url model source is downloaded into: /data/models/<model name>-<hash of the URL>, so that
 * runs sharing a volume share a download and a changed URL never reuses an old one.
 */
export function downloadedModelDir(spec: RunSpec, url: string): string {
  const slug = spec.model.name.replace(/[^A-Za-z0-9._-]+/g, '-').replace(/^[-.]+/, '').slice(0, 80) || 'model';
  return posix.join(DATA_MOUNT, 'models', `${slug}-${createHash('sha256').update(url).digest('hex').slice(0, 12)}`);
}

/**
 * The model as vLLM (--model) and the engine (Init's model) load it: 'builtin', the folder of a pvc or url
 * source inside the pod, or model.name itself when no source is given (a hub id vLLM and transformers may
 * download, or a path inside their images).
 */
export function modelPath(spec: RunSpec): string {
  const source = spec.model.source;
  if (source?.kind === 'pvc') return posix.join(MODEL_CLAIM_MOUNT, source.path!).replace(/(.)\/+$/, '$1');
  if (source?.kind === 'url') return downloadedModelDir(spec, source.url!);
  return spec.model.name;
}

const ESTIMATOR_TO_LEARNER = { grpo: 'grpo', drgrpo: 'dr_grpo', rloo: 'rloo', reinforce_pp: 'reinforce_pp' } as const;

/** Where the builtin model's pods find its generated local domain, tokenizer folder and demonstrations (`parley prepare builtin`). */
export function builtinDir(spec: RunSpec): string {
  return posix.join(DATA_MOUNT, spec.name, 'builtin');
}

/** The checkpoint folder in the pods: relative run-spec paths live under /data/<run>/. */
export function checkpointDir(spec: RunSpec): string {
  return isAbsolute(spec.checkpoint.dir) ? spec.checkpoint.dir : posix.join(DATA_MOUNT, spec.name, spec.checkpoint.dir);
}

/**
 * The learner's settings for the run. Throws ParleyError(invalid_argument) when the run spec maps to
 * settings the learner rejects (the message names the learner field).
 */
/** The learner settings that follow from the run spec alone (the algorithm, its schedule, the run), shared
 * by the cluster's learner.yaml and the local run. */
export function learnerAlgorithmSettings(spec: RunSpec) {
  const a = spec.algorithm;
  return {
    run: spec.name,
    algorithm: ESTIMATOR_TO_LEARNER[a.estimator],
    groupSize: a.groupSize,
    groupsPerStep: a.groupsPerStep,
    dropZeroVarianceGroups: a.dropZeroVarianceGroups,
    gamma: a.gamma,
    lr: a.learningRate,
    warmupSteps: a.warmupSteps,
    ppoEpochs: a.ppoEpochs,
    maxGradNorm: a.maxGradNorm,
    clipLow: a.clipLow,
    clipHigh: a.clipHigh,
    dualClip: a.dualClip,
    klCoef: a.klCoef,
    entropyCoef: a.entropyCoef,
    aggregation: a.aggregation,
    microBatchTokens: a.microBatchTokens,
    maxStepsOffPolicy: a.maxStepsOffPolicy,
    maxSteps: a.steps,
    horizons: spec.horizon.horizons,
    horizonEverySteps: spec.horizon.everySteps,
    seed: spec.seed,
    // A group of one is its own minimum; room for four steps of trajectories in the learner's buffer.
    minGroupSize: Math.min(2, a.groupSize),
    maxBufferedTrajectories: Math.max(4096, a.groupsPerStep * a.groupSize * 4),
  };
}

/**
 * The engine's Init config (config_json) for the run, for the cluster's learner and the local run alike:
 * model.engine and model.lora under the engine's names, max_len from maxContextTokens and the run's seed.
 * `vocabSize` is the builtin model's tokenizer size where it is known; left out, the learner fills it from
 * its modelDir at start (the cluster renders this before the model folder exists).
 */
export function engineInitConfig(spec: RunSpec, vocabSize?: number): Record<string, unknown> {
  return {
    ...engineConfigFields(spec.model.engine, spec.model.lora),
    max_len: spec.model.maxContextTokens,
    ...(vocabSize === undefined ? {} : { vocab_size: vocabSize }),
    seed: spec.seed,
  };
}

/**
 * The learner's cold start for a spec with sft.enabled: a demonstrations file given by path, or (a number,
 * builtin model only) the file `parley prepare builtin --demonstrations` generates at `generated`.
 */
export function coldStartSettings(spec: RunSpec, generated: string) {
  const s = spec.sft;
  return { demonstrations: typeof s.demonstrations === 'string' ? s.demonstrations : generated, epochs: s.epochs, batchSize: s.batchSize, learningRate: s.learningRate };
}

export function learnerSettings(spec: RunSpec, config: ControllerConfig): Record<string, unknown> {
  const engine = engineInitConfig(spec);
  const settings = {
    ...learnerAlgorithmSettings(spec),
    checkpointDir: checkpointDir(spec),
    // Without a shared volume the policy pods cannot read the learner's folder: weights go through NATS.
    weightsTransport: config.sharedVolumeClaim ? 'directory' : 'object_store',
    model: modelPath(spec),
    engineConfigJson: JSON.stringify(engine),
    ...(spec.sft.enabled ? { coldStart: coldStartSettings(spec, posix.join(builtinDir(spec), 'demonstrations.jsonl')) } : {}),
  };
  learnerConfig(settings);
  return settings;
}

export interface RenderedRunConfig {
  data: Record<string, string>;
  /** First 16 hex digits of the SHA-256 of `data`. */
  hash: string;
}

/** The coordinator's settings for the run, checked by its schema. Throws ParleyError(invalid_argument) naming the coordinator field. */
export function coordinatorRunSettings(spec: RunSpec): Record<string, unknown> {
  const settings = coordinatorSettings(spec);
  coordinatorConfig(settings);
  return settings;
}

/** The ConfigMap data. Throws like learnerSettings and coordinatorRunSettings. */
export function renderRunConfig(spec: RunSpec, config: ControllerConfig): RenderedRunConfig {
  const data = {
    'run.yaml': stringify(spec),
    'learner.yaml': stringify(learnerSettings(spec, config)),
    'coordinator.yaml': stringify(coordinatorRunSettings(spec)),
  };
  return { data, hash: contentHash(data) };
}

/** A short, stable hash of any JSON value (keys in insertion order). */
export function contentHash(value: unknown): string {
  return createHash('sha256').update(JSON.stringify(value)).digest('hex').slice(0, 16);
}
