// Builds Trajectory protobufs for tests: a prompt the policy did not sample, then assistant tokens it
// did (around a tool result it did not), with behaviour log-probs on its own tokens only.

import { create, toBinary } from '@bufbuild/protobuf';
import type { Bus } from '../../core/bus/index.js';
import { TrajectorySchema, type Trajectory } from '../../core/gen/parley/v1/rollout_pb.js';

export interface TrajectorySpec {
  run?: string;
  groupId: string;
  sampleIndex: number;
  groupSize: number;
  reward: number;
  /** Total tokens (default 12). */
  length?: number;
  /** Tokens before the first policy token (default a third of the length). */
  promptLength?: number;
  /** Policy version of every turn (default 0). */
  policyVersion?: number;
  /** Offsets the token ids, so sequences differ (default: derived from group and sample). */
  salt?: number;
}

/** The dedup id rollout workers give a trajectory. */
export function trajectoryId(run: string, groupId: string, sampleIndex: number): string {
  return `${run}/task-${groupId}/${groupId}/${sampleIndex}`;
}

/** A Trajectory: prompt (mask 0), then policy tokens (mask 1) interleaved with a tool result (mask 0). */
export function makeTrajectory(spec: TrajectorySpec): Trajectory {
  const run = spec.run ?? 'test';
  const n = spec.length ?? 12;
  const prompt = spec.promptLength ?? Math.floor(n / 3);
  const salt = spec.salt ?? [...spec.groupId].reduce((a, ch) => a * 31 + ch.charCodeAt(0), 7) + spec.sampleIndex * 101;
  const tokenIds = Array.from({ length: n }, (_, t) => 1 + ((salt + t * 13) % 900));
  // A tool result in the middle of the answer: the policy did not write it.
  const toolStart = prompt + Math.floor((n - prompt) / 2);
  const lossMask = tokenIds.map((_, t) => (t >= prompt && !(t >= toolStart && t < toolStart + 2) ? 1 : 0));
  return create(TrajectorySchema, {
    id: trajectoryId(run, spec.groupId, spec.sampleIndex),
    task: { run, taskId: `task-${spec.groupId}`, groupId: spec.groupId, sampleIndex: spec.sampleIndex, groupSize: spec.groupSize },
    tokenIds,
    lossMask,
    logprobs: lossMask.map((m) => (m ? -0.7 : 0)),
    reward: spec.reward,
    policyVersions: [BigInt(spec.policyVersion ?? 0)],
    turns: 1,
  });
}

/** Publishes trajectories to parley.<run>.trajectories with their id as the dedup id (or `msgId`). */
export async function publishTrajectories(bus: Bus, run: string, trajs: readonly Trajectory[], msgId?: (t: Trajectory) => string): Promise<void> {
  for (const t of trajs) await bus.publish(`parley.${run}.trajectories`, toBinary(TrajectorySchema, t), { msgId: msgId ? msgId(t) : t.id });
}

/** `groups` groups of `size`, rewards alternating 0/1 by sample index (so no group has zero variance). */
export function makeGroups(run: string, groups: number, size: number, opts: { prefix?: string; length?: number; policyVersion?: number } = {}): Trajectory[] {
  const out: Trajectory[] = [];
  for (let g = 0; g < groups; g++) {
    for (let i = 0; i < size; i++) {
      out.push(makeTrajectory({ run, groupId: `${opts.prefix ?? 'g'}${g}`, sampleIndex: i, groupSize: size, reward: i % 2, length: opts.length, policyVersion: opts.policyVersion }));
    }
  }
  return out;
}
