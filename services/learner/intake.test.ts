// What intake refuses: the limits a learner config sets, and the bounds of one trajectory.

import { describe, expect, it } from 'vitest';
import { learnerConfig } from './config.js';
import { LOGPROB_EPSILON, checkTrajectory, trajectoryLimits } from './intake.js';
import { makeTrajectory } from './testing/trajectories.js';

describe('trajectory limits', () => {
  it('take the longest sequence from maxSequenceTokens, else the builtin model’s max_len, else none', () => {
    expect(trajectoryLimits(learnerConfig({}), 1000)).toMatchObject({ vocabSize: 1000, maxLength: 512, rewardRange: [-10, 10], maxGroupSize: 8 });
    expect(trajectoryLimits(learnerConfig({ engineConfigJson: '{"max_len": 64}' }), 0).maxLength).toBe(64);
    expect(trajectoryLimits(learnerConfig({ model: '/models/qwen' }), 0).maxLength).toBe(0);
    expect(trajectoryLimits(learnerConfig({ model: '/models/qwen', maxSequenceTokens: 8192 }), 0).maxLength).toBe(8192);
    expect(() => learnerConfig({ rewardRange: [1, 1] })).toThrow(/rewardRange/);
  });

  it('allow float error above a log-prob of 0, refuse more, and take a version no newer than the learner’s', () => {
    const limits = trajectoryLimits(learnerConfig({ groupSize: 4 }), 1000);
    const t = makeTrajectory({ groupId: 'g', sampleIndex: 0, groupSize: 4, reward: 1, policyVersion: 3 });
    t.logprobs[t.logprobs.length - 1] = LOGPROB_EPSILON / 2;
    expect(checkTrajectory(t, limits, 3)).toBeUndefined();
    expect(checkTrajectory(t, limits, 2)?.reason).toBe('policy_version');
    t.logprobs[t.logprobs.length - 1] = 1e-3;
    expect(checkTrajectory(t, limits, 3)?.reason).toBe('logprobs_positive');
  });
});
