import { create, fromBinary, toBinary } from '@bufbuild/protobuf';
import { describe, expect, it } from 'vitest';
import { TrajectorySchema } from '../core/gen/parley/v1/rollout_pb.js';
import { Termination } from '../core/gen/parley/v1/sandbox_pb.js';
import type { TrajectoryInit } from './episode.js';
import { encodeTrajectory } from './trajectory-codec.js';

const sample = (n: number): TrajectoryInit => ({
  id: 'run/task/g0/1',
  task: { run: 'run', taskId: 'task', domain: 'retail', groupId: 'g0', sampleIndex: 1, horizon: 30 },
  tokenIds: Array.from({ length: n }, (_, i) => [0, 1, 127, 128, 16383, 16384, 151_643, 2 ** 21, 2 ** 28, 2 ** 32 - 1][i % 10]!),
  lossMask: Array.from({ length: n }, (_, i) => (i % 3 === 0 ? 1 : 0)),
  logprobs: Array.from({ length: n }, (_, i) => (i % 3 === 0 ? -i / 7 : 0)),
  spans: [{ role: 'prompt', start: 0, end: n }],
  reward: 0.5,
  components: [{ name: 'DB', value: 1, inBasis: true, detail: 'ok' }],
  termination: Termination.AGENT_STOP,
  terminationDetail: 'détail ✓',
  turns: 3,
  policyVersions: [1n, 2n],
  timings: { policyMs: 1, userMs: 2, toolMs: 3, totalMs: 6.5 },
  worker: 'w0',
});

describe('encodeTrajectory', () => {
  it('decodes to the same message as toBinary', () => {
    for (const n of [0, 1, 5, 1000]) {
      const t = sample(n);
      const fast = fromBinary(TrajectorySchema, encodeTrajectory(t));
      const slow = fromBinary(TrajectorySchema, toBinary(TrajectorySchema, create(TrajectorySchema, t)));
      expect(fast).toEqual(slow);
      expect(fast.logprobs).toEqual(t.logprobs!.map((x) => Math.fround(x)));
    }
  });

  it('throws like toBinary on a value the field cannot hold', () => {
    expect(() => encodeTrajectory({ ...sample(3), tokenIds: [1, -2, 3] })).toThrow();
    expect(() => encodeTrajectory({ ...sample(3), logprobs: [0, 1e40, 0] })).toThrow();
  });
});
