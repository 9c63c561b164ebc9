// What kind of weights the learner announces: lora when the engine trains adapters, else full.

import { describe, expect, it } from 'vitest';
import { weightsKind } from './announce.js';

describe('weightsKind', () => {
  it('is lora only when the engine config has a lora block', () => {
    expect(weightsKind({ engineConfigJson: '{}' })).toBe('full');
    expect(weightsKind({ engineConfigJson: '{"lora": null}' })).toBe('full');
    expect(weightsKind({ engineConfigJson: '{"lora": {"r": 8, "target_modules": ["q_proj"]}}' })).toBe('lora');
  });
});
