// Turns delivered trajectory messages into step inputs exactly once: decodes and checks them, holds
// each id's deliveries until the checkpoint that consumed it, and recognises every duplicate.

import { fromBinary } from '@bufbuild/protobuf';
import type { BusMessage } from '../core/bus/index.js';
import { TrajectorySchema, type Trajectory } from '../core/gen/parley/v1/rollout_pb.js';
import type { GroupMember } from './grouping.js';
import type { StepTrajectory } from './learner-step.js';

/** What became of one delivery. */
export type IntakeResult =
  | { kind: 'new'; member: GroupMember<StepTrajectory> }
  /** Already consumed by a committed checkpoint: acked at once. */
  | { kind: 'consumed'; id: string }
  /** Already held (buffered or in a step): this delivery is kept and ended with the others. */
  | { kind: 'held'; id: string; redelivery: boolean }
  /** Malformed: terminated with the reason. */
  | { kind: 'invalid'; reason: string; detail: string };

/**
 * Checks a decoded trajectory; returns a problem (short reason and a sentence) or undefined.
 * `vocabSize` 0 skips the token-id range check.
 */
export function checkTrajectory(t: Trajectory, vocabSize: number): { reason: string; detail: string } | undefined {
  const n = t.tokenIds.length;
  if (!t.id) return { reason: 'no_id', detail: 'id is empty; rollout workers set <run>/<task_id>/<group_id>/<sample_index>' };
  if (!t.task?.groupId) return { reason: 'no_group', detail: `${t.id}: task.group_id is empty; the learner groups by it` };
  if (n === 0) return { reason: 'empty', detail: `${t.id}: token_ids is empty` };
  if (t.lossMask.length !== n) return { reason: 'mask_length', detail: `${t.id}: loss_mask has ${t.lossMask.length} entries, token_ids ${n}` };
  if (t.logprobs.length !== n) return { reason: 'logprobs_length', detail: `${t.id}: logprobs has ${t.logprobs.length} entries, token_ids ${n}` };
  if (t.lossMask.some((m) => m !== 0 && m !== 1)) return { reason: 'mask_values', detail: `${t.id}: loss_mask must hold only 0 and 1` };
  if (!Number.isFinite(t.reward)) return { reason: 'reward', detail: `${t.id}: reward ${t.reward} is not finite` };
  if (t.logprobs.some((x) => !Number.isFinite(x))) return { reason: 'logprobs_values', detail: `${t.id}: logprobs holds a non-finite value` };
  if (vocabSize > 0) {
    const bad = t.tokenIds.find((id) => id >= vocabSize);
    if (bad !== undefined) return { reason: 'token_range', detail: `${t.id}: token id ${bad} is not below the engine's vocab_size ${vocabSize}` };
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
    public vocabSize = 0,
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

  /** Decodes and classifies one delivery; ends it when it is consumed or invalid, holds it otherwise. */
  accept(msg: BusMessage): IntakeResult {
    let t: Trajectory;
    try {
      t = fromBinary(TrajectorySchema, msg.data);
    } catch (e) {
      const detail = `not a parley.v1.Trajectory protobuf: ${(e as Error).message}`;
      msg.term(detail);
      return { kind: 'invalid', reason: 'decode', detail };
    }
    const problem = checkTrajectory(t, this.vocabSize);
    if (problem) {
      msg.term(problem.detail);
      return { kind: 'invalid', ...problem };
    }
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
