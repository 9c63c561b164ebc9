// Backend selection in the policy config: vLLM by URL, the trainer engine by address, errors naming the field.

import { describe, expect, it } from 'vitest';
import { ParleyError } from '../core/errors.js';
import { resolvePolicyConfig } from './config.js';

const base = { modelDir: '/models/x', modelName: 'm' };

describe('policy config backends', () => {
  it('picks the backend from what is set', () => {
    expect(resolvePolicyConfig({ ...base, backendUrl: 'http://vllm:8000/v1' }, {}).backend).toBe('openai-compatible');
    expect(resolvePolicyConfig({ ...base, engineAddress: '127.0.0.1:50070' }, {}).backend).toBe('trainer-engine');
    expect(resolvePolicyConfig({ ...base }, { PARLEY_ENGINE_ADDRESS: 'engine:50070' }).engineAddress).toBe('engine:50070');
  });

  it('names the missing field', () => {
    const e1 = (() => { try { resolvePolicyConfig({ ...base }, {}); } catch (e) { return e; } })() as ParleyError;
    expect(e1.code).toBe('invalid_argument');
    expect(e1.message).toContain('backendUrl');
    const e2 = (() => { try { resolvePolicyConfig({ ...base, backend: 'trainer-engine' }, {}); } catch (e) { return e; } })() as ParleyError;
    expect(e2.message).toContain('engineAddress');
    const e3 = (() => { try { resolvePolicyConfig({ ...base, engineAddress: 'no-port' }, {}); } catch (e) { return e; } })() as ParleyError;
    expect(e3.message).toContain('engineAddress');
  });
});
