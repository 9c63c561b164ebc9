// The builtin model's vocabulary size comes from its tokenizer, which is generated where the learner runs;
// a run's rendered settings leave vocab_size out and the learner fills it here at start.

import { loadChatModel } from '../policy/index.js';
import type { LearnerConfig } from './config.js';

/**
 * `c` with engineConfigJson's vocab_size set from modelDir's tokenizer.json when the model is builtin, a
 * modelDir is given and the JSON leaves vocab_size out; otherwise `c` unchanged. Throws ParleyError
 * (not_found, invalid_argument) when the model folder cannot be read.
 */
export function withBuiltinVocabSize(c: LearnerConfig): LearnerConfig {
  if (c.model !== 'builtin' || !c.modelDir) return c;
  const engine = JSON.parse(c.engineConfigJson) as Record<string, unknown>;
  if (engine.vocab_size !== undefined) return c;
  return { ...c, engineConfigJson: JSON.stringify({ ...engine, vocab_size: loadChatModel(c.modelDir).vocabSize }) };
}
