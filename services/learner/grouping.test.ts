// Grouping by group id, the timeout policy, the staleness bound and dynamic sampling, with counts.

import { describe, expect, it } from 'vitest';
import { GroupBuffer, isStale, type GroupingOptions, type GroupMember } from './grouping.js';

const base: GroupingOptions = { defaultGroupSize: 4, timeoutMs: 1000, minGroupSize: 2, dropZeroVariance: true, maxStepsOffPolicy: 1 };

function member(groupId: string, i: number, reward: number, version = 0, groupSize = 4): GroupMember<string> {
  const id = `${groupId}/${i}`;
  return { id, groupId, groupSize, minPolicyVersion: version, reward, item: id };
}

describe('isStale', () => {
  it('allows up to maxStepsOffPolicy versions behind the current one', () => {
    expect(isStale(3, 4, 1)).toBe(false);
    expect(isStale(2, 4, 1)).toBe(true);
    expect(isStale(4, 4, 0)).toBe(false);
    expect(isStale(undefined, 100, 0)).toBe(false);
  });
});

describe('GroupBuffer', () => {
  it('releases a group when its size is reached, and hands out whole groups in arrival order', () => {
    const b = new GroupBuffer<string>(base);
    for (let i = 0; i < 4; i++) expect(b.add(member('a', i, i % 2), 0, 0)).toEqual([]);
    for (let i = 0; i < 3; i++) b.add(member('b', i, i % 2), 0, 0);
    expect(b.readyGroups).toBe(1);
    expect(b.size).toBe(7);
    expect(b.take(2, 0).groups).toEqual([]);
    b.add(member('b', 3, 1), 0, 0);
    const { groups } = b.take(2, 0);
    expect(groups.map((g) => g.groupId)).toEqual(['a', 'b']);
    expect(groups[0]!.members.map((m) => m.id)).toEqual(['a/0', 'a/1', 'a/2', 'a/3']);
    expect(b.size).toBe(0);
  });

  it('uses the default size when a trajectory does not carry one', () => {
    const b = new GroupBuffer<string>({ ...base, defaultGroupSize: 2 });
    b.add(member('a', 0, 0, 0, 0), 0, 0);
    b.add(member('a', 1, 1, 0, 0), 0, 0);
    expect(b.readyGroups).toBe(1);
  });

  it('drops a zero-variance group as one group, with all its members', () => {
    const b = new GroupBuffer<string>(base);
    const dropped = [0, 1, 2, 3].flatMap((i) => b.add(member('z', i, 0.5), 0, 0));
    expect(dropped).toHaveLength(1);
    expect(dropped[0]!.reason).toBe('zero_variance');
    expect(dropped[0]!.members.map((m) => m.id)).toEqual(['z/0', 'z/1', 'z/2', 'z/3']);
    expect(b.size).toBe(0);
    const keep = new GroupBuffer<string>({ ...base, dropZeroVariance: false });
    for (let i = 0; i < 4; i++) keep.add(member('z', i, 0.5), 0, 0);
    expect(keep.readyGroups).toBe(1);
  });

  it('drops a stale trajectory on arrival', () => {
    const b = new GroupBuffer<string>(base);
    const d = b.add(member('s', 0, 1, 3), 0, 5);
    expect(d).toEqual([{ reason: 'stale', members: [expect.objectContaining({ id: 's/0' })], groupId: 's' }]);
    expect(b.size).toBe(0);
  });

  it('re-checks staleness at take: stale members go, a group left too small goes as incomplete', () => {
    const b = new GroupBuffer<string>(base);
    // Group x: two members from version 0, two from version 1. Group y: all from version 1.
    [member('x', 0, 0, 0), member('x', 1, 1, 0), member('x', 2, 0, 1), member('x', 3, 1, 1)].forEach((m) => b.add(m, 0, 1));
    [member('y', 0, 0, 0), member('y', 1, 1, 1), member('y', 2, 1, 1), member('y', 3, 1, 1)].forEach((m) => b.add(m, 0, 1));
    // The policy is now at version 2: version-0 samples are 2 behind (bound 1).
    const { groups, dropped } = b.take(2, 2);
    expect(dropped.filter((d) => d.reason === 'stale').flatMap((d) => d.members.map((m) => m.id))).toEqual(['x/0', 'x/1', 'y/0']);
    // y kept three members whose rewards are all 1: it now has zero variance.
    expect(dropped.find((d) => d.reason === 'zero_variance')?.groupId).toBe('y');
    expect(groups).toEqual([]);
    expect(b.readyGroups).toBe(1);
    const rest = b.take(1, 2).groups[0]!;
    expect(rest.members.map((m) => m.id)).toEqual(['x/2', 'x/3']);
    expect(rest.partial).toBe(true);
  });

  it('after the timeout, trains an incomplete group with at least minGroupSize members and drops smaller ones', () => {
    const b = new GroupBuffer<string>(base);
    b.add(member('p', 0, 0), 100, 0);
    b.add(member('p', 1, 1), 200, 0);
    b.add(member('q', 0, 1), 150, 0);
    expect(b.nextDeadline()).toBe(1100);
    expect(b.expire(1099)).toEqual([]);
    const dropped = b.expire(1150);
    expect(dropped).toEqual([{ reason: 'incomplete', members: [expect.objectContaining({ id: 'q/0' })], groupId: 'q' }]);
    const g = b.take(1, 0).groups[0]!;
    expect(g).toMatchObject({ groupId: 'p', partial: true });
    expect(b.nextDeadline()).toBeUndefined();
  });

  it('waits forever with timeout 0', () => {
    const b = new GroupBuffer<string>({ ...base, timeoutMs: 0 });
    b.add(member('p', 0, 0), 0, 0);
    expect(b.expire(Number.MAX_SAFE_INTEGER)).toEqual([]);
    expect(b.nextDeadline()).toBeUndefined();
  });

  it('refuses members beyond a complete group, but takes late members of a group its timeout closed', () => {
    const b = new GroupBuffer<string>(base);
    for (let i = 0; i < 4; i++) b.add(member('full', i, i % 2), 0, 0);
    expect(b.refusal(member('full', 4, 1))?.reason).toBe('group_overflow');
    b.add(member('slow', 0, 0), 0, 0);
    b.add(member('slow', 1, 1), 0, 0);
    b.expire(2000);
    expect(b.refusal(member('slow', 2, 1))).toBeUndefined();
  });

  it('takes members out of groups taken for a step, dropping groups left too small or without variance', () => {
    const b = new GroupBuffer<string>(base);
    for (const g of ['a', 'b', 'c', 'd']) for (let i = 0; i < 4; i++) b.add(member(g, i, i < 2 ? 0 : 1), 0, 0);
    const { groups } = b.take(4, 0);
    const { groups: kept, dropped } = b.without(groups, new Set(['a/0', 'b/0', 'b/1', 'b/2', 'c/0', 'c/1', 'd/0', 'd/1', 'd/2', 'd/3']));
    expect(kept.map((g) => [g.groupId, g.members.length, g.partial])).toEqual([['a', 3, true]]);
    expect(dropped.map((d) => [d.reason, d.groupId, d.members.length])).toEqual([
      ['incomplete', 'b', 1],
      ['zero_variance', 'c', 2],
    ]);
  });
});
