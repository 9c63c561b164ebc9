// A policy pod's own trainer engine (builtin model): it is initialised exactly as the learner's engine is
// (the learner settings' model, engine settings and seed, read from the run ConfigMap), so before any
// weights are published it serves the same version 0 the learner starts from; the weight follower then
// loads each published version into it.

import { withRetry } from '../core/retry.js';
import { learnerConfig, readLearnerConfigFile, withBuiltinVocabSize, type TrainerClient } from '../learner/index.js';

/**
 * Calls Trainer.Init with the learner settings in `file` (the run's learner.yaml), the builtin model's
 * vocab_size filled from `modelDir` as the learner fills it. Retries while the engine starts (it is a
 * sibling container). Rejects with ParleyError: invalid_argument for an unreadable or invalid file, or
 * the engine's error.
 */
export async function initPolicyEngine(trainer: Pick<TrainerClient, 'init'>, file: string, modelDir: string): Promise<void> {
  const c = withBuiltinVocabSize({ ...learnerConfig(readLearnerConfigFile(file)), modelDir });
  await withRetry(() => trainer.init({ model: c.model, configJson: c.engineConfigJson, seed: BigInt(c.seed) }), { attempts: 60, baseDelayMs: 250, maxDelayMs: 2000 });
}
