// Publishes rollout work: one RolloutTask per (task, sample) of each GRPO group, with the trajectory id as
// the dedup id, so a publisher that restarts and publishes again creates no duplicate work.

import { create, toBinary } from '@bufbuild/protobuf';
import type { Bus } from '../core/bus/index.js';
import { runStreamConfigs, runSubjects } from '../core/run-subjects.js';
import { RolloutTaskSchema } from '../core/gen/parley/v1/rollout_pb.js';
import { trajectoryId } from './episode.js';
import { deriveSeed } from '../core/seed.js';

export interface GroupSpec {
  run: string;
  domain: string;
  taskId: string;
  /** Unique per group within the run (e.g. `s<step>-<task>`). */
  groupId: string;
  groupSize: number;
  horizon: number;
  minPolicyVersion: bigint;
  mode: 'mua' | 'tau2';
  seed: bigint;
  firstUtterance?: string;
}

/** Creates (or updates) the run's task, trajectory and event streams. */
export async function ensureRunStreams(bus: Bus, run: string): Promise<void> {
  const c = runStreamConfigs(run);
  await bus.ensureStream(c.tasks);
  await bus.ensureStream(c.trajectories);
  await bus.ensureStream(c.events);
}

/** Deletes the run's task, trajectory and event streams (with their consumers and messages). */
export async function deleteRunStreams(bus: Bus, run: string): Promise<void> {
  const c = runStreamConfigs(run);
  for (const cfg of [c.tasks, c.trajectories, c.events]) await bus.deleteStream(cfg.name);
}

/** Publishes every sample of a group. Resolves the number newly stored (duplicates are skipped by the bus). */
export async function publishGroup(bus: Bus, g: GroupSpec): Promise<number> {
  if (!(g.groupSize >= 1)) throw new Error(`group ${g.groupId}: groupSize must be ≥ 1`);
  const subject = runSubjects(g.run).tasks;
  let stored = 0;
  for (let i = 0; i < g.groupSize; i++) {
    const task = create(RolloutTaskSchema, {
      run: g.run,
      taskId: g.taskId,
      domain: g.domain,
      groupId: g.groupId,
      sampleIndex: i,
      groupSize: g.groupSize,
      horizon: g.horizon,
      minPolicyVersion: g.minPolicyVersion,
      mode: g.mode,
      // Each sample its own stream: g.seed + i would give sample i + 1 the draws of sample i's second turn.
      seed: deriveSeed(g.seed, g.groupId, i),
      firstUtterance: g.firstUtterance ?? '',
    });
    const ack = await bus.publish(subject, toBinary(RolloutTaskSchema, task), { msgId: trajectoryId(task) });
    if (!ack.duplicate) stored++;
  }
  return stored;
}
