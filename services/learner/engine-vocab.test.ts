// The builtin model's vocab_size left out of the rendered engine config is filled from the model folder.

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { writeLocalModelFolder } from '../sandbox/domains/local-model/index.js';
import { learnerConfig, resolveLearnerConfig } from './config.js';
import { withBuiltinVocabSize } from './engine-vocab.js';

describe('withBuiltinVocabSize', () => {
  const root = mkdtempSync(join(tmpdir(), 'parley-vocab-'));
  afterAll(() => rmSync(root, { recursive: true, force: true }));

  it('fills vocab_size from modelDir for builtin when the engine config leaves it out, and only then', async () => {
    const modelDir = join(root, 'model');
    const folder = await writeLocalModelFolder({ words: ['hello', 'order', 'refund'] }, modelDir);
    const filled = withBuiltinVocabSize(learnerConfig({ modelDir, engineConfigJson: '{"layers":2}' }));
    expect(JSON.parse(filled.engineConfigJson)).toEqual({ layers: 2, vocab_size: folder.vocabSize });
    const given = learnerConfig({ modelDir, engineConfigJson: '{"vocab_size":7}' });
    expect(withBuiltinVocabSize(given)).toBe(given);
    const hf = learnerConfig({ modelDir, model: 'Qwen/Qwen3-8B' });
    expect(withBuiltinVocabSize(hf)).toBe(hf);
    const noDir = learnerConfig({});
    expect(withBuiltinVocabSize(noDir)).toBe(noDir);
  });

  it('reads modelDir from PARLEY_MODEL_DIR (the learner pod sets it for the builtin model)', () => {
    expect(resolveLearnerConfig({}, { PARLEY_MODEL_DIR: '/data/run/builtin/model' }).learner.modelDir).toBe('/data/run/builtin/model');
  });

  it('fails naming the folder when it holds no tokenizer', () => {
    expect(() => withBuiltinVocabSize(learnerConfig({ modelDir: join(root, 'missing') }))).toThrow(/missing/);
  });
});
