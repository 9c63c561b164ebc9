// One step against the Trainer double: what is sent (old log-probs, off-policy flags, loss settings,
// loss scales) and that gradient accumulation reproduces the step's loss.

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it, onTestFinished } from 'vitest';
import { learnerConfig, type LearnerConfigInput } from './config.js';
import { executeStep, planStep, stepLearningRate, type StepTrajectory } from './learner-step.js';
import { TrainerDouble } from './testing/trainer-double.js';

function traj(id: string, reward: number, length: number, version = 3): StepTrajectory {
  const lossMask = Array.from({ length }, (_, t) => (t >= 2 && t % 3 !== 0 ? 1 : 0));
  return { id, tokenIds: Array.from({ length }, (_, t) => t + 1), lossMask, logprobs: lossMask.map((m) => (m ? -1 : 0)), reward, minPolicyVersion: version };
}

const groups = [
  [traj('a0', 1, 10), traj('a1', 0, 20, 2)],
  [traj('b0', 0, 7), traj('b1', 0.5, 13), traj('b2', 1, 4)],
];

async function run(overrides: Partial<LearnerConfigInput>) {
  const cfg = learnerConfig({ run: 't', groupSize: 2, microBatchTokens: 20, ...overrides });
  const trainer = new TrainerDouble();
  await trainer.init({});
  const dir = mkdtempSync(join(tmpdir(), 'parley-step-'));
  onTestFinished(() => rmSync(dir, { recursive: true, force: true }));
  const plan = planStep(groups, cfg, 3);
  const result = await executeStep(trainer, plan, cfg, { weightsDir: dir, newVersion: 4 });
  return { cfg, trainer, plan, result };
}

describe('a learner step', () => {
  it('recomputes old log-probs, marks samples of older policies off-policy, and sends the DESIGN loss', async () => {
    const { trainer, plan, result } = await run({});
    expect(trainer.calls).toEqual(['init', ...plan.microBatches.map(() => 'computeLogprobs'), ...plan.microBatches.map(() => 'forwardBackward'), 'optimStep', 'saveWeights']);
    const sent = trainer.forwardBackwards.flatMap((r) => r.sequences);
    expect(sent.every((s) => s.oldLogprobs.length === s.tokenIds.length && s.oldLogprobs[1] === -0.5)).toBe(true);
    // Only a1 came from policy 2 while the learner is at 3.
    expect(sent.filter((s) => s.offPolicy).map((s) => s.tokenIds.length)).toEqual([20]);
    expect(trainer.forwardBackwards[0]!.loss).toMatchObject({ kind: 'ppo', clipLow: 0.2, clipHigh: 0.2, dualClip: 3, klCoef: 0.001, entropyCoef: 0, aggregation: 'token_mean' });
    expect(plan.microBatches.reduce((a, m) => a + m.lossScale, 0)).toBeCloseTo(1, 12);
    expect(result).toMatchObject({ updated: true, weightsPath: expect.stringMatching(/v00000004$/) });
    // The step's loss is the token mean of −advantage over every loss token (ratio 1 in the double).
    let sum = 0;
    let n = 0;
    for (const s of sent) {
      for (let t = 1; t < s.tokenIds.length; t++) {
        if (s.lossMask[t] !== 1) continue;
        sum -= s.advantages[t]!;
        n++;
      }
    }
    expect(result.metrics.loss).toBeCloseTo(sum / n, 6);
    expect(result.metrics.loss_tokens).toBe(n);
    expect(result.metrics.grad_norm).toBe(0.5);
  });

  it('uses the behaviour log-probs as they came when asked, with no off-policy flags', async () => {
    const { trainer } = await run({ oldLogprobs: 'behaviour' });
    expect(trainer.calls).not.toContain('computeLogprobs');
    expect(trainer.forwardBackwards.flatMap((r) => r.sequences).every((s) => s.oldLogprobs.length === 0 && !s.offPolicy)).toBe(true);
  });

  it('normalises Dr.GRPO by sequences × the generation budget, however the step is split', async () => {
    const { plan } = await run({ algorithm: 'dr_grpo', drGrpoMaxTokens: 100, aggregation: 'seq_mean' });
    const lossTokens = plan.microBatches.reduce((a, m) => a + m.lossTokens, 0);
    expect(plan.loss.aggregation).toBe('token_mean');
    expect(plan.microBatches.reduce((a, m) => a + m.lossScale, 0)).toBeCloseTo(lossTokens / (5 * 100), 12);
  });

  it('runs ppoEpochs passes over the batch against the same old log-probs, one OptimStep each, one save', async () => {
    const { trainer, plan, result } = await run({ ppoEpochs: 3 });
    const pass = [...plan.microBatches.map(() => 'forwardBackward'), 'optimStep'];
    expect(trainer.calls).toEqual(['init', ...plan.microBatches.map(() => 'computeLogprobs'), ...pass, ...pass, ...pass, 'saveWeights']);
    const perPass = plan.microBatches.length;
    const passes = [0, 1, 2].map((e) => trainer.forwardBackwards.slice(e * perPass, (e + 1) * perPass).flatMap((r) => r.sequences));
    expect(passes[1]!.map((s) => [...s.oldLogprobs])).toEqual(passes[0]!.map((s) => [...s.oldLogprobs]));
    expect(passes[2]!.map((s) => [...s.advantages])).toEqual(passes[0]!.map((s) => [...s.advantages]));
    expect(trainer.optimSteps).toHaveLength(3);
    expect(result.metrics.loss_tokens).toBe(trainer.forwardBackwards.slice(0, perPass).reduce((a, r) => a + r.sequences.reduce((b, s) => b + s.lossMask.slice(1).filter((m) => m === 1).length, 0), 0));
  });

  it('warms the learning rate up over warmupSteps learner steps, the same rate for every epoch of a step', async () => {
    const lrs: number[][] = [];
    for (const step of [0, 1, 3, 4, 10]) {
      const cfg = learnerConfig({ run: 't', groupSize: 2, microBatchTokens: 20, lr: 1e-5, warmupSteps: 4, ppoEpochs: 2 });
      const trainer = new TrainerDouble();
      await trainer.init({});
      const dir = mkdtempSync(join(tmpdir(), 'parley-step-'));
      onTestFinished(() => rmSync(dir, { recursive: true, force: true }));
      await executeStep(trainer, planStep(groups, cfg, 3), cfg, { weightsDir: dir, newVersion: 4, step });
      lrs.push(trainer.optimSteps.map((o) => o.learningRate));
    }
    // Step k < 4 trains at 1e-5 · (k + 1) / 4.
    const want = [2.5e-6, 5e-6, 1e-5, 1e-5, 1e-5];
    lrs.forEach((pair, i) => {
      expect(pair).toHaveLength(2);
      pair.forEach((lr) => expect(lr).toBeCloseTo(want[i]!, 15));
    });
    expect(stepLearningRate({ lr: 1e-5, warmupSteps: 0 }, 0)).toBe(1e-5);
  });

  it('sends nothing when no sequence has a loss token', async () => {
    const cfg = learnerConfig({ run: 't', groupSize: 2 });
    const empty = [[{ ...traj('x', 1, 5), lossMask: [0, 0, 0, 0, 0] }, { ...traj('y', 0, 5), lossMask: [1, 0, 0, 0, 0] }]];
    const plan = planStep(empty, cfg, 0);
    const trainer = new TrainerDouble();
    const result = await executeStep(trainer, plan, cfg, { weightsDir: '/unused', newVersion: 1 });
    expect(result.updated).toBe(false);
    expect(trainer.calls).toEqual([]);
    expect(plan.rewardMean).toBe(0.5);
  });
});
