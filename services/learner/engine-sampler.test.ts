// The engine-backed policy backend over the Trainer double: batching of concurrent requests, stop
// tokens, cancellation, adapters, and weight loads shared with the trainer or not.

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it, onTestFinished } from 'vitest';
import type { PolicyBackend } from '../policy/index.js';
import { EngineSamplerBackend } from './engine-sampler.js';
import { TrainerDouble } from './testing/trainer-double.js';

async function initialised(): Promise<TrainerDouble> {
  const t = new TrainerDouble({ vocabSize: 100 });
  await t.init({ model: 'builtin' });
  return t;
}

describe('EngineSamplerBackend', () => {
  it('is a PolicyBackend', async () => {
    const backend: PolicyBackend = new EngineSamplerBackend(await initialised());
    expect(backend.kind).toBe('trainer-engine');
  });

  it('sends concurrent requests with equal settings as one Sample call, each with its own seed', async () => {
    const t = await initialised();
    const b = new EngineSamplerBackend(t, { stopTokenIds: [13] });
    const sampling = { temperature: 1, topP: 1, maxTokens: 5 };
    const outs = await Promise.all([
      b.generate({ promptTokenIds: [1], sampling }),
      b.generate({ promptTokenIds: [10], sampling }),
      b.generate({ promptTokenIds: [50], sampling }),
      b.generate({ promptTokenIds: [50], sampling: { ...sampling, seed: 7 } }),
    ]);
    expect(t.calls.filter((c) => c === 'sample')).toHaveLength(1);
    expect(t.sampleRequests[0]!.prompts.map((p) => p.seed)).toEqual([0n, 0n, 0n, 7n]);
    // The double continues each prompt with last+1, last+2, ...; 13 is an end-of-turn token.
    expect(outs[0]).toEqual({ tokenIds: [2, 3, 4, 5, 6], logprobs: [-0.25, -0.25, -0.25, -0.25, -0.25], finishReason: 'length' });
    expect(outs[1]).toEqual({ tokenIds: [11, 12, 13], logprobs: [-0.25, -0.25, -0.25], finishReason: 'stop' });
    expect(outs[3]!.tokenIds).toEqual([51, 52, 53, 54, 55]);
  });

  it('rejects empty prompts, adapters and cancelled requests with their codes', async () => {
    const b = new EngineSamplerBackend(await initialised());
    const sampling = { temperature: 1, topP: 1, maxTokens: 2 };
    await expect(b.generate({ promptTokenIds: [], sampling })).rejects.toMatchObject({ code: 'invalid_argument' });
    await expect(b.generate({ promptTokenIds: [1], sampling, adapter: 'policy-v3' })).rejects.toMatchObject({ code: 'not_found' });
    const ac = new AbortController();
    const p = b.generate({ promptTokenIds: [1], sampling, signal: ac.signal });
    ac.abort();
    await expect(p).rejects.toMatchObject({ code: 'cancelled' });
  });

  it('passes the engine’s errors through', async () => {
    const b = new EngineSamplerBackend(new TrainerDouble());
    await expect(b.generate({ promptTokenIds: [1], sampling: { temperature: 1, topP: 1, maxTokens: 2 } })).rejects.toMatchObject({ code: 'failed_precondition' });
  });

  it('loads full weights into a separate engine, and only records the version when it is the trainer', async () => {
    const t = await initialised();
    const dir = mkdtempSync(join(tmpdir(), 'parley-sampler-'));
    onTestFinished(() => rmSync(dir, { recursive: true, force: true }));
    const saved = await t.saveWeights({ path: dir, version: 4n });
    const separate = new EngineSamplerBackend(t);
    await separate.loadFullWeights(4, saved.path);
    expect(separate.version).toBe(4);
    expect(t.calls).toContain('loadWeights');
    const t2 = await initialised();
    const shared = new EngineSamplerBackend(t2, { sharedWithTrainer: true });
    await shared.loadFullWeights(9, '/nowhere');
    expect(shared.version).toBe(9);
    expect(t2.calls).not.toContain('loadWeights');
  });
});
