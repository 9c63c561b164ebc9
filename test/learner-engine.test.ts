// The learner and the engine-backed sampler against the real Python trainer engine (PyTorch on CPU,
// the small built-in model). Skipped with a message when the interpreter has no PyTorch.

import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createMemoryBus } from '../services/core/bus/index.js';
import { createLogger } from '../services/core/logger.js';
import { Registry } from '../services/core/metrics.js';
import {
  connectTrainer,
  EngineSamplerBackend,
  enginePython,
  Learner,
  startEngineProcess,
  type EngineProcess,
  type TrainerClient,
} from '../services/learner/index.js';
import { readDeadLetters } from '../services/learner/testing/dead-letters.js';
import { makeGroups, makeTrajectory, publishTrajectories } from '../services/learner/testing/trajectories.js';

const python = enginePython();
const probe = spawnSync(python, ['-c', 'import torch, grpc'], { encoding: 'utf8' });
const haveTorch = probe.status === 0;
// CI runs scripts/test.sh, which makes .venv-engine: a missing torch there is a failure.
if (!haveTorch && process.env.CI === 'true') {
  throw new Error(`${python} cannot import torch and grpc: run scripts/setup-engine-env.sh or fix PARLEY_PYTHON`);
}
if (!haveTorch) console.warn(`skipping the real-engine tests: ${python} cannot import torch and grpc (${(probe.stderr || probe.error?.message || '').trim().split('\n').at(-1)})`);

const ENGINE_CONFIG = JSON.stringify({ vocab_size: 1024, max_len: 64, layers: 1, d_model: 32, heads: 2, lr: 1e-3 });
const logger = createLogger('learner-engine-test', 'silent');

describe.skipIf(!haveTorch)('learner with the real trainer engine', () => {
  let engine: EngineProcess;
  let trainer: TrainerClient & { close(): void };
  let dir: string;
  beforeAll(async () => {
    engine = await startEngineProcess({ startTimeoutMs: 60_000, logger });
    trainer = connectTrainer(engine.address);
    dir = mkdtempSync(join(tmpdir(), 'parley-learner-engine-'));
  }, 90_000);
  afterAll(async () => {
    trainer?.close();
    await engine?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('trains two steps, checkpoints the engine’s weights and resumes from them', async () => {
    const bus = createMemoryBus();
    const config = { run: 'engine', groupSize: 4, groupsPerStep: 1, checkpointDir: dir, engineConfigJson: ENGINE_CONFIG, lr: 1e-3, microBatchTokens: 64, maxStepsOffPolicy: 5 };
    const registry = new Registry();
    const learner = new Learner(config, { bus, trainer, logger, registry });
    await learner.start();
    await publishTrajectories(bus, 'engine', makeGroups('engine', 2, 4, { length: 24 }));
    await learner.waitForStep(2, 60_000);
    const latest = learner.latest!;
    expect(latest).toMatchObject({ step: 2, policyVersion: 2 });
    expect(existsSync(join(latest.weightsPath, 'engine.json'))).toBe(true);
    // Loss parts reported by the engine reach the metrics.
    const text = await registry.metrics();
    for (const part of ['loss', 'pg_loss', 'clip_frac', 'kl', 'entropy', 'grad_norm']) expect(text).toContain(`parley_learner_loss_value{part="${part}"}`);
    await learner.stop();

    // A new learner on the same folder restores the engine from the committed weights.
    const again = new Learner(config, { bus, trainer, logger, registry: new Registry() });
    await again.start();
    expect(again.status()).toMatchObject({ step: 2, policyVersion: 2, consumed: 8 });
    await publishTrajectories(bus, 'engine', makeGroups('engine', 1, 4, { length: 24, prefix: 'late' }));
    await again.waitForStep(3, 60_000);
    await again.stop();
    await bus.close();
  }, 120_000);

  it('dead-letters a trajectory the engine refuses (longer than max_len) and trains the rest of the step', async () => {
    const bus = createMemoryBus();
    const poisonDir = mkdtempSync(join(tmpdir(), 'parley-learner-poison-'));
    // maxSequenceTokens above the engine's max_len 64: intake lets 80 tokens through, the engine refuses them.
    const config = { run: 'poison', groupSize: 4, groupsPerStep: 1, checkpointDir: poisonDir, engineConfigJson: ENGINE_CONFIG, microBatchTokens: 256, maxSequenceTokens: 1000, maxStepAttempts: 1 };
    const learner = new Learner(config, { bus, trainer, logger, registry: new Registry() });
    try {
      await learner.start();
      const group = makeGroups('poison', 1, 4, { length: 24 });
      group[1] = makeTrajectory({ run: 'poison', groupId: 'g0', sampleIndex: 1, groupSize: 4, reward: 1, length: 80 });
      await publishTrajectories(bus, 'poison', group);
      await learner.waitForStep(1, 60_000);
      const step = (await learner.store.history()).find((r) => r.kind === 'step')!;
      expect(new Set(step.consumed.trained)).toEqual(new Set([group[0]!.id, group[2]!.id, group[3]!.id]));
      const letters = await readDeadLetters(bus, 'poison');
      expect(letters.map((l) => [l.reason, l.trajectoryId])).toEqual([['engine_rejected', group[1]!.id]]);
      expect(letters[0]!.detail).toContain('at most 64');
    } finally {
      await learner.stop();
      await bus.close();
      rmSync(poisonDir, { recursive: true, force: true });
    }
  }, 120_000);

  it('samples through the engine as a policy backend', async () => {
    await trainer.init({ model: 'builtin', configJson: ENGINE_CONFIG, seed: 3n });
    const backend = new EngineSamplerBackend(trainer, { stopTokenIds: [2] });
    const outs = await Promise.all(
      [[5, 6, 7], [8, 9], [10]].map((p) => backend.generate({ promptTokenIds: p, sampling: { temperature: 1, topP: 1, maxTokens: 6 } })),
    );
    for (const o of outs) {
      expect(o.tokenIds.length).toBeGreaterThan(0);
      expect(o.tokenIds.length).toBeLessThanOrEqual(6);
      expect(o.logprobs).toHaveLength(o.tokenIds.length);
      for (const lp of o.logprobs) expect(lp).toBeLessThanOrEqual(0);
      expect(o.finishReason === 'stop' ? o.tokenIds.at(-1) === 2 : o.tokenIds.length === 6).toBe(true);
    }
    const greedy = () => backend.generate({ promptTokenIds: [5, 6, 7], sampling: { temperature: 0, topP: 1, maxTokens: 6 } });
    expect((await greedy()).tokenIds).toEqual((await greedy()).tokenIds);
    await expect(backend.generate({ promptTokenIds: [5000], sampling: { temperature: 1, topP: 1, maxTokens: 2 } })).rejects.toMatchObject({ code: 'invalid_argument' });
  }, 60_000);
});
