// Turns delivered trajectory messages into step inputs exactly once: decodes and checks them, holds
// each id's deliveries until the checkpoint that consumed it, and recognises every duplicate.

import { fromBinary } from '@bufbuild/protobuf';
import type { BusMessage } from '../core/bus/index.js';
import { TrajectorySchema, type Trajectory } from '../core/gen/parley/v1/rollout_pb.js';
import type { LearnerConfig } from './config.js';
import { ENGINE_CONFIG_SCHEMA } from './engine-config.js';
import type { GroupMember } from './grouping.js';
import type { StepTrajectory } from './learner-step.js';

/** What became of one delivery. */
export type IntakeResult =
  | { kind: 'new'; member: GroupMember<StepTrajectory> }
  /** Already consumed by a committed checkpoint: acked at once. */
  | { kind: 'consumed'; id: string }
  /** Already held (buffered or in a step): this delivery is kept and ended with the others. */
  | { kind: 'held'; id: string; redelivery: boolean }
  /** Malformed or out of bounds: not ended here; the caller dead-letters it (see dead-letters.ts). */
  | { kind: 'invalid'; reason: string; detail: string; id?: string };

/** What a trajectory must keep within to be trained on. */
export interface TrajectoryLimits {
  /** Token ids must be below this (the engine's Init answer); 0 skips the check. */
  vocabSize: number;
  /** Most tokens the engine takes in one sequence; 0 skips the check. */
  maxLength: number;
  /** Rewards outside [min, max] are refused. */
  rewardRange: readonly [number, number];
  /** Most members a group may declare (task.group_size). */
  maxGroupSize: number;
}

/** Float error a behaviour log-prob may carry above 0 (a probability is at most 1). */
export const LOGPROB_EPSILON = 1e-6;

/**
 * The limits `c` sets, with the engine's vocabulary size: the longest sequence is maxSequenceTokens,
 * or for the builtin model engineConfigJson's max_len (the engine's default when left out).
 */
export function trajectoryLimits(c: LearnerConfig, vocabSize: number): TrajectoryLimits {
  let maxLength = c.maxSequenceTokens;
  if (maxLength === 0 && c.model === 'builtin') {
    const engine = JSON.parse(c.engineConfigJson) as { max_len?: unknown }; // an object: checked by LearnerConfigSchema
    const fallback = ENGINE_CONFIG_SCHEMA.properties.max_len?.default;
    const v = typeof engine.max_len === 'number' ? engine.max_len : fallback;
    maxLength = typeof v === 'number' ? v : 0;
  }
  return { vocabSize, maxLength, rewardRange: c.rewardRange, maxGroupSize: c.groupSize };
}

/** The laxest limits: only the shape is checked. */
export const NO_LIMITS: TrajectoryLimits = { vocabSize: 0, maxLength: 0, rewardRange: [-Infinity, Infinity], maxGroupSize: Infinity };

/**
 * Checks a decoded trajectory against its shape, `limits`, and the learner's `currentVersion` (a turn
 * sampled by a newer policy than the learner has published can only be forged; versions too old are
 * the grouping's stale drop, counted rather than refused). Returns a problem (short reason and a
 * sentence) or undefined.
 */
export function checkTrajectory(t: Trajectory, limits: TrajectoryLimits = NO_LIMITS, currentVersion = Infinity): { reason: string; detail: string } | undefined {
  const n = t.tokenIds.length;
  if (!t.id) return { reason: 'no_id', detail: 'id is empty; rollout workers set <run>/<task_id>/<group_id>/<sample_index>' };
  if (!t.task?.groupId) return { reason: 'no_group', detail: `${t.id}: task.group_id is empty; the learner groups by it` };
  if (n === 0) return { reason: 'empty', detail: `${t.id}: token_ids is empty` };
  if (t.lossMask.length !== n) return { reason: 'mask_length', detail: `${t.id}: loss_mask has ${t.lossMask.length} entries, token_ids ${n}` };
  if (t.logprobs.length !== n) return { reason: 'logprobs_length', detail: `${t.id}: logprobs has ${t.logprobs.length} entries, token_ids ${n}` };
  if (t.lossMask.some((m) => m !== 0 && m !== 1)) return { reason: 'mask_values', detail: `${t.id}: loss_mask must hold only 0 and 1` };
  if (!Number.isFinite(t.reward)) return { reason: 'reward', detail: `${t.id}: reward ${t.reward} is not finite` };
  const [lo, hi] = limits.rewardRange;
  if (t.reward < lo || t.reward > hi) return { reason: 'reward_range', detail: `${t.id}: reward ${t.reward} is outside the run's rewardRange [${lo}, ${hi}]` };
  if (t.logprobs.some((x) => !Number.isFinite(x))) return { reason: 'logprobs_values', detail: `${t.id}: logprobs holds a non-finite value` };
  const positive = t.logprobs.find((x) => x > LOGPROB_EPSILON);
  if (positive !== undefined) return { reason: 'logprobs_positive', detail: `${t.id}: logprobs holds ${positive}; a log-probability is at most 0` };
  if (limits.maxLength > 0 && n > limits.maxLength) {
    return { reason: 'length', detail: `${t.id}: ${n} tokens; the engine takes at most ${limits.maxLength}` };
  }
  if (limits.vocabSize > 0) {
    const bad = t.tokenIds.find((id) => id >= limits.vocabSize);
    if (bad !== undefined) return { reason: 'token_range', detail: `${t.id}: token id ${bad} is not below the engine's vocab_size ${limits.vocabSize}` };
  }
  const newest = t.policyVersions.reduce<bigint | undefined>((a, v) => (a === undefined || v > a ? v : a), undefined);
  if (newest !== undefined && Number(newest) > currentVersion) {
    return { reason: 'policy_version', detail: `${t.id}: sampled by policy version ${newest}, newer than the learner's ${currentVersion}` };
  }
  const size = t.task.groupSize;
  if (size > limits.maxGroupSize) return { reason: 'group_size', detail: `${t.id}: task.group_size ${size} is above the run's groupSize ${limits.maxGroupSize}` };
  if (size > 0 && t.task.sampleIndex >= size) {
    return { reason: 'sample_index', detail: `${t.id}: task.sample_index ${t.task.sampleIndex} is not below task.group_size ${size}` };
  }
  return undefined;
}

function toMember(t: Trajectory): GroupMember<StepTrajectory> {
  let min: number | undefined;
  for (const v of t.policyVersions) if (min === undefined || Number(v) < min) min = Number(v);
  return {
    id: t.id,
    groupId: t.task!.groupId,
    groupSize: t.task!.groupSize,
    minPolicyVersion: min,
    reward: t.reward,
    item: { id: t.id, tokenIds: t.tokenIds, lossMask: t.lossMask, logprobs: t.logprobs, reward: t.reward, minPolicyVersion: min },
  };
}

/** Deliveries held per trajectory id and the ids consumed by recent checkpoints. One event loop; not thread-safe. */
export class Intake {
  private readonly held = new Map<string, BusMessage[]>();
  private readonly consumed = new Set<string>();
  /** Ids per checkpoint seq, oldest first, for the dedup window. */
  private readonly window: { seq: number; ids: string[] }[] = [];

  constructor(
    private readonly windowCheckpoints: number,
    /** What a trajectory must keep within (set again once the engine answered Init with its vocab size). */
    public limits: TrajectoryLimits = NO_LIMITS,
  ) {}

  /** Trajectory ids held (delivered, not yet consumed by a checkpoint). */
  get heldCount(): number {
    return this.held.size;
  }

  /** Remembers ids consumed by checkpoint `seq` (at start-up, from the checkpoint history). */
  remember(seq: number, ids: readonly string[]): void {
    this.window.push({ seq, ids: [...ids] });
    for (const id of ids) this.consumed.add(id);
    while (this.window.length > this.windowCheckpoints) for (const id of this.window.shift()!.ids) this.consumed.delete(id);
  }

  /**
   * Decodes and classifies one delivery against the learner's `currentVersion`: acks it when already
   * consumed, holds it when new or already held, and leaves an invalid one for the caller to end.
   */
  accept(msg: BusMessage, currentVersion: number): IntakeResult {
    let t: Trajectory;
    try {
      t = fromBinary(TrajectorySchema, msg.data);
    } catch (e) {
      return { kind: 'invalid', reason: 'decode', detail: `not a parley.v1.Trajectory protobuf: ${(e as Error).message}` };
    }
    const problem = checkTrajectory(t, this.limits, currentVersion);
    if (problem) return { kind: 'invalid', ...problem, id: t.id || undefined };
    if (this.consumed.has(t.id)) {
      msg.ack();
      return { kind: 'consumed', id: t.id };
    }
    const prior = this.held.get(t.id);
    if (prior) {
      // The same stream message again (its ack wait passed) replaces the stale delivery handle.
      const same = prior.findIndex((m) => m.seq === msg.seq);
      if (same >= 0) prior[same] = msg;
      else prior.push(msg);
      return { kind: 'held', id: t.id, redelivery: same >= 0 };
    }
    this.held.set(t.id, [msg]);
    return { kind: 'new', member: toMember(t) };
  }

  /** Acks every delivery of `ids` (their checkpoint is committed) and remembers them as checkpoint `seq`. */
  commit(seq: number, ids: readonly string[]): void {
    for (const id of ids) {
      for (const m of this.held.get(id) ?? []) m.ack();
      this.held.delete(id);
    }
    this.remember(seq, ids);
  }

  /** Forgets `id` and returns its held deliveries, for the caller to end (a refused trajectory). */
  take(id: string): BusMessage[] {
    const msgs = this.held.get(id) ?? [];
    this.held.delete(id);
    return msgs;
  }

  /** Restarts the ack wait of every held delivery (long groups and steps). */
  keepAlive(): void {
    for (const msgs of this.held.values()) for (const m of msgs) m.working();
  }

  /** Hands every held delivery back for prompt redelivery (on stop); the learner forgets them. */
  releaseAll(): void {
    for (const msgs of this.held.values()) for (const m of msgs) m.nak();
    this.held.clear();
  }
}
