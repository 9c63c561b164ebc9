// A policy pod's own trainer engine (builtin model): it is initialised exactly as the learner's engine is
// (the learner settings' model, engine settings and seed, read from the run ConfigMap), so before any
// weights are published it serves the same version 0 the learner starts from; the weight follower then
// loads each published version into it.

import { readFileSync } from 'node:fs';
import { parse as parseYaml } from 'yaml';
import { ParleyError } from '../core/errors.js';
import type { TrainerClient } from '../learner/index.js';

/**
 * Calls Trainer.Init with the settings in `file` (the learner's learner.yaml); `vocabSize` fills the
 * builtin model's vocab_size when the settings leave it out. Retries while the engine starts (it is a
 * sibling container). Rejects with ParleyError: invalid_argument for an unreadable file, or the engine's error.
 */
export async function initPolicyEngine(trainer: Pick<TrainerClient, 'init'>, file: string, vocabSize: number): Promise<void> {
  let settings: { model?: string; engineConfigJson?: string; seed?: number };
  try {
    settings = parseYaml(readFileSync(file, 'utf8')) as typeof settings;
  } catch (e) {
    throw new ParleyError('invalid_argument', `PARLEY_ENGINE_INIT_FILE: cannot read ${file}: ${(e as Error).message}`);
  }
  const model = settings.model ?? 'builtin';
  const config = JSON.parse(settings.engineConfigJson || '{}') as Record<string, unknown>;
  if (model === 'builtin' && config.vocab_size === undefined) config.vocab_size = vocabSize;
  for (let attempt = 0; ; attempt++) {
    try {
      await trainer.init({ model, configJson: JSON.stringify(config), seed: BigInt(settings.seed ?? 0) });
      return;
    } catch (e) {
      const err = ParleyError.from(e);
      if (err.code !== 'unavailable' || attempt >= 120) throw err;
      await new Promise((r) => setTimeout(r, 500));
    }
  }
}
