// The checkpoint store: the pointer is the commit point, unreadable state fails loudly, and weights
// of uncommitted versions are cleared for their re-save.

import { mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { CHECKPOINT_FORMAT, CheckpointStore, consumedIdSet, writeFileAtomic, type CheckpointRecord } from './checkpoint-store.js';

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});
function tmp(): string {
  const d = mkdtempSync(join(tmpdir(), 'parley-ckpt-'));
  dirs.push(d);
  return d;
}

function record(seq: number, trained: string[] = []): CheckpointRecord {
  return {
    format: CHECKPOINT_FORMAT,
    run: 'r',
    seq,
    kind: seq === 0 ? 'init' : 'step',
    step: seq,
    policyVersion: seq,
    weightsPath: `/w/v${seq}`,
    horizonStage: 0,
    consumed: { trained, stale: [], zeroVariance: [], incomplete: [] },
    totals: { consumed: 0, trained: 0, droppedStale: 0, zeroVarianceGroups: 0, incompleteGroups: 0 },
    rewardMean: 0,
    createdAt: new Date(0).toISOString(),
  };
}

describe('CheckpointStore', () => {
  it('reads back what it committed, and the history in order', async () => {
    const store = new CheckpointStore(tmp());
    expect(await store.latest()).toBeNull();
    await store.commit(record(0));
    await store.commit(record(1, ['a', 'b']));
    await store.commit(record(2, ['c']));
    expect((await store.latest())!.seq).toBe(2);
    expect((await store.history()).map((r) => r.seq)).toEqual([0, 1, 2]);
    expect((await store.history(2)).map((r) => r.seq)).toEqual([2]);
    expect(consumedIdSet(await store.history())).toEqual(new Set(['a', 'b', 'c']));
  });

  it('ignores a record written but never pointed to (a crash between the two renames)', async () => {
    const dir = tmp();
    const store = new CheckpointStore(dir);
    await store.commit(record(0));
    await store.commit(record(1, ['a']));
    writeFileSync(store.recordPath(2), JSON.stringify(record(2, ['b'])));
    expect((await store.latest())!.seq).toBe(1);
    expect(consumedIdSet(await store.history())).toEqual(new Set(['a']));
    // The redone commit replaces the orphan.
    await store.commit(record(2, ['c']));
    expect((await store.latest())!.consumed.trained).toEqual(['c']);
  });

  it('fails with data_loss on a corrupt pointer or record instead of starting over', async () => {
    const dir = tmp();
    const store = new CheckpointStore(dir);
    await store.commit(record(0));
    writeFileSync(store.recordPath(0), '{"format": "something else"');
    await expect(store.latest()).rejects.toMatchObject({ code: 'data_loss' });
    writeFileSync(join(dir, 'latest'), 'garbage');
    await expect(store.latest()).rejects.toMatchObject({ code: 'data_loss' });
  });

  it('writes atomically, leaving no temporary files', async () => {
    const dir = tmp();
    await writeFileAtomic(join(dir, 'x.json'), '{"a":1}');
    await writeFileAtomic(join(dir, 'x.json'), '{"a":2}');
    expect(readdirSync(dir)).toEqual(['x.json']);
  });

  it('removes weight folders of versions above the committed one', async () => {
    const store = new CheckpointStore(tmp());
    for (const v of ['v00000000', 'v00000001', 'v00000002', 'notes']) mkdirSync(join(store.weightsDir, v), { recursive: true });
    expect((await store.removeUncommittedWeights(1)).sort()).toEqual(['v00000002']);
    expect(readdirSync(store.weightsDir).sort()).toEqual(['notes', 'v00000000', 'v00000001']);
    expect(await new CheckpointStore(tmp()).removeUncommittedWeights(0)).toEqual([]);
  });
});
