// Groups trajectories by group id until the group is complete, applies the staleness bound, drops
// zero-variance groups (dynamic sampling), and hands out whole groups for a step in arrival order.

import { isZeroVariance } from './advantages.js';

/** What the buffer needs of one trajectory. */
export interface GroupMember<T> {
  id: string;
  groupId: string;
  /** Members the group expects; 0 uses the buffer's default. */
  groupSize: number;
  /** Oldest policy version that produced one of its turns; undefined when no turn was sampled. */
  minPolicyVersion: number | undefined;
  reward: number;
  item: T;
}

export interface GroupingOptions {
  /** Members expected when a trajectory does not say (task.group_size 0). */
  defaultGroupSize: number;
  /**
   * A group still incomplete this long after its first member arrived is closed: released with what
   * arrived when that is at least minGroupSize, dropped as incomplete otherwise. 0: wait forever.
   */
  timeoutMs: number;
  /** Fewest members a group needs to be trained on (its baseline needs ≥ 2). */
  minGroupSize: number;
  /** Drop groups whose rewards are all equal (their group-relative advantages are all 0). */
  dropZeroVariance: boolean;
  /** A trajectory is stale when current version − its minPolicyVersion > this. */
  maxStepsOffPolicy: number;
}

/** Why trajectories left the buffer without being trained on. */
export type DropReason = 'stale' | 'zero_variance' | 'incomplete';

export interface Dropped<T> {
  reason: DropReason;
  members: GroupMember<T>[];
  /** The group's id (for zero_variance and incomplete: one whole group). */
  groupId: string;
}

export interface ReadyGroup<T> {
  groupId: string;
  members: GroupMember<T>[];
  /** True when released by the timeout before all members arrived. */
  partial: boolean;
}

interface Pending<T> {
  groupId: string;
  size: number;
  firstAt: number;
  members: GroupMember<T>[];
}

/** True when a trajectory produced by `minVersion` is too old to train policy `current` on. */
export function isStale(minVersion: number | undefined, current: number, maxStepsOffPolicy: number): boolean {
  return minVersion !== undefined && current - minVersion > maxStepsOffPolicy;
}

/** Complete groups remembered, so a member beyond a group's size is recognised (oldest forgotten first). */
const CLOSED_GROUPS_REMEMBERED = 65_536;

/** The buffer. Not thread-safe (one event loop); `now` comes from the caller's clock. */
export class GroupBuffer<T> {
  private readonly pending = new Map<string, Pending<T>>();
  private readonly ready: ReadyGroup<T>[] = [];
  /** Groups that received all their members (insertion order: oldest first). */
  private readonly complete = new Set<string>();

  constructor(private readonly opts: GroupingOptions) {}

  /** Trajectories held (pending and ready). */
  get size(): number {
    let n = 0;
    for (const p of this.pending.values()) n += p.members.length;
    for (const r of this.ready) n += r.members.length;
    return n;
  }

  /** Complete groups waiting for a step. */
  get readyGroups(): number {
    return this.ready.length;
  }

  /**
   * Why `m` must be refused rather than added, or undefined: its group already received every member
   * it declared (a member beyond the group's size). A group closed incomplete by its timeout still
   * takes late members (they start a new group, dropped as incomplete when it stays small).
   */
  refusal(m: GroupMember<T>): { reason: 'group_overflow'; detail: string } | undefined {
    if (!this.complete.has(m.groupId)) return undefined;
    return { reason: 'group_overflow', detail: `${m.id}: group ${m.groupId} already received all its members` };
  }

  /**
   * Adds one trajectory (the caller has already removed duplicates and asked refusal()). Returns what was dropped as a
   * consequence: the trajectory itself when stale, or its whole group when the group completed with
   * zero variance.
   */
  add(m: GroupMember<T>, now: number, currentVersion: number): Dropped<T>[] {
    if (isStale(m.minPolicyVersion, currentVersion, this.opts.maxStepsOffPolicy)) {
      return [{ reason: 'stale', members: [m], groupId: m.groupId }];
    }
    let p = this.pending.get(m.groupId);
    if (!p) {
      p = { groupId: m.groupId, size: m.groupSize > 0 ? m.groupSize : this.opts.defaultGroupSize, firstAt: now, members: [] };
      this.pending.set(m.groupId, p);
    }
    p.members.push(m);
    if (p.members.length < p.size) return [];
    this.pending.delete(m.groupId);
    this.complete.add(m.groupId);
    if (this.complete.size > CLOSED_GROUPS_REMEMBERED) this.complete.delete(this.complete.values().next().value!);
    return this.release(p, false);
  }

  /** Closes groups whose timeout passed (see GroupingOptions.timeoutMs); returns those dropped. */
  expire(now: number): Dropped<T>[] {
    if (this.opts.timeoutMs <= 0) return [];
    const out: Dropped<T>[] = [];
    for (const p of [...this.pending.values()]) {
      if (now - p.firstAt < this.opts.timeoutMs) continue;
      this.pending.delete(p.groupId);
      if (p.members.length >= this.opts.minGroupSize) out.push(...this.release(p, true));
      else out.push({ reason: 'incomplete', members: p.members, groupId: p.groupId });
    }
    return out;
  }

  /** When the earliest pending group times out (ms since epoch), or undefined. */
  nextDeadline(): number | undefined {
    if (this.opts.timeoutMs <= 0) return undefined;
    let first: number | undefined;
    for (const p of this.pending.values()) if (first === undefined || p.firstAt < first) first = p.firstAt;
    return first === undefined ? undefined : first + this.opts.timeoutMs;
  }

  /**
   * Takes the `count` oldest ready groups when at least that many are ready, after re-checking
   * staleness against `currentVersion` (the policy moved on while they waited): stale members are
   * dropped; a group left below minGroupSize is dropped as incomplete, one left with equal rewards
   * as zero_variance. Returns no groups when fewer than `count` remain.
   */
  take(count: number, currentVersion: number): { groups: ReadyGroup<T>[]; dropped: Dropped<T>[] } {
    const dropped: Dropped<T>[] = [];
    for (let i = 0; i < this.ready.length; ) {
      const g = this.ready[i]!;
      const stale = g.members.filter((m) => isStale(m.minPolicyVersion, currentVersion, this.opts.maxStepsOffPolicy));
      if (stale.length === 0) {
        i++;
        continue;
      }
      dropped.push({ reason: 'stale', members: stale, groupId: g.groupId });
      const kept = g.members.filter((m) => !stale.includes(m));
      if (kept.length === 0) {
        this.ready.splice(i, 1);
        continue;
      }
      const verdict = this.verdict(kept);
      if (verdict) {
        dropped.push({ reason: verdict, members: kept, groupId: g.groupId });
        this.ready.splice(i, 1);
      } else {
        this.ready[i] = { ...g, members: kept, partial: true };
        i++;
      }
    }
    if (this.ready.length < count) return { groups: [], dropped };
    return { groups: this.ready.splice(0, count), dropped };
  }

  /**
   * `groups` (taken for a step) without the members in `ids`: a group left below minGroupSize is
   * dropped as incomplete, one left with equal rewards as zero_variance (with dropZeroVariance), one
   * left empty is gone. The rest come back marked partial where they lost members.
   */
  without(groups: readonly ReadyGroup<T>[], ids: ReadonlySet<string>): { groups: ReadyGroup<T>[]; dropped: Dropped<T>[] } {
    const kept: ReadyGroup<T>[] = [];
    const dropped: Dropped<T>[] = [];
    for (const g of groups) {
      const members = g.members.filter((m) => !ids.has(m.id));
      if (members.length === g.members.length) kept.push(g);
      else if (members.length === 0) continue;
      else {
        const verdict = this.verdict(members);
        if (verdict) dropped.push({ reason: verdict, members, groupId: g.groupId });
        else kept.push({ ...g, members, partial: true });
      }
    }
    return { groups: kept, dropped };
  }

  private verdict(members: GroupMember<T>[]): DropReason | undefined {
    if (members.length < this.opts.minGroupSize) return 'incomplete';
    if (this.opts.dropZeroVariance && isZeroVariance(members.map((m) => m.reward))) return 'zero_variance';
    return undefined;
  }

  private release(p: Pending<T>, partial: boolean): Dropped<T>[] {
    const verdict = this.verdict(p.members);
    if (verdict) return [{ reason: verdict, members: p.members, groupId: p.groupId }];
    this.ready.push({ groupId: p.groupId, members: p.members, partial });
    return [];
  }
}
