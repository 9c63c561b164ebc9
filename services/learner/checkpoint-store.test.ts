// The checkpoint store: the pointer is the commit point, a damaged record gives way to the one
// committed before it (checksums), unreadable state fails loudly, and weights of uncommitted versions
// are cleared for their re-save.

import { mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { Logger } from '../core/logger.js';
import { Registry } from '../core/metrics.js';
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

/** A store whose warnings land in `warnings` and whose skip counter is in `registry`. */
function watchedStore(dir: string) {
  const warnings: { obj: Record<string, unknown>; msg: string }[] = [];
  const logger = { warn: (obj: Record<string, unknown>, msg: string) => warnings.push({ obj, msg }) } as unknown as Logger;
  const registry = new Registry();
  const store = new CheckpointStore(dir, { logger, registry });
  const skipped = async () => (await registry.getSingleMetric('parley_learner_checkpoint_records_skipped_total')!.get()).values[0]?.value ?? 0;
  return { store, warnings, skipped };
}

/** Flips one bit of the byte at `at` (negative: from the end). */
function flipByte(path: string, at: number): void {
  const bytes = readFileSync(path);
  const i = at < 0 ? bytes.length + at : at;
  bytes[i] = bytes[i]! ^ 0x01;
  writeFileSync(path, bytes);
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

  it('falls back to the previous committed record when the latest is damaged, with a warning and a count', async () => {
    const { store, warnings, skipped } = watchedStore(tmp());
    for (let seq = 0; seq <= 3; seq++) await store.commit(record(seq, [`t${seq}`]));
    // Still JSON, still the right format and seq: only the checksum tells (a trained id changed).
    flipByte(store.recordPath(3), readFileSync(store.recordPath(3), 'utf8').indexOf('"t3"') + 1);
    expect(JSON.parse(readFileSync(store.recordPath(3), 'utf8')).consumed.trained).toEqual(['u3']);
    expect((await store.latest())!.seq).toBe(2);
    expect(warnings).toHaveLength(1);
    expect(warnings[0]!.msg).toBe('skipping a damaged checkpoint record');
    expect(warnings[0]!.obj).toMatchObject({ seq: 3, path: store.recordPath(3) });
    expect(String(warnings[0]!.obj.err)).toContain('does not match its sha256');
    expect(await skipped()).toBe(1);
    // Truncated: not JSON at all.
    writeFileSync(store.recordPath(2), readFileSync(store.recordPath(2)).subarray(0, 40));
    expect((await store.latest())!.seq).toBe(1);
    expect((await store.history()).map((r) => r.seq)).toEqual([0, 1]);
    expect(await skipped()).toBe(2); // each damaged record is reported once
    expect(warnings.map((w) => w.obj.seq)).toEqual([3, 2]);
    // The next commit of seq 2 replaces the damaged records' place in line.
    await store.commit(record(2, ['again']));
    expect((await store.latest())!.consumed.trained).toEqual(['again']);
  });

  it('leaves a damaged record out of the history', async () => {
    const { store, warnings } = watchedStore(tmp());
    for (let seq = 0; seq <= 2; seq++) await store.commit(record(seq, [`t${seq}`]));
    flipByte(store.recordPath(1), -3); // inside the sha256 itself
    expect((await store.history()).map((r) => r.seq)).toEqual([0, 2]);
    expect(warnings.map((w) => w.obj.seq)).toEqual([1]);
    await expect(store.read(1)).rejects.toMatchObject({ code: 'data_loss' });
  });

  it('fails with data_loss naming the folder when no committed record is intact', async () => {
    const dir = tmp();
    const { store } = watchedStore(dir);
    await store.commit(record(0));
    await store.commit(record(1));
    flipByte(store.recordPath(0), 20);
    writeFileSync(store.recordPath(1), '');
    await expect(store.latest()).rejects.toMatchObject({ code: 'data_loss', message: expect.stringContaining(`no committed checkpoint in ${dir} is intact`) });
  });

  it('reads records written without a checksum (by older versions) and never returns the checksum', async () => {
    const dir = tmp();
    const store = new CheckpointStore(dir);
    await store.commit(record(0));
    writeFileSync(store.recordPath(1), JSON.stringify(record(1, ['old'])));
    writeFileSync(join(dir, 'latest'), JSON.stringify({ seq: 1, file: 'checkpoints/ckpt-00000001.json' }));
    expect(await store.latest()).toEqual(record(1, ['old']));
    const first = await store.read(0);
    expect(first).toEqual(record(0));
    expect(JSON.parse(readFileSync(store.recordPath(0), 'utf8')).sha256).toMatch(/^[0-9a-f]{64}$/);
    // A record read back and committed again (spread into the next one) gets a fresh checksum.
    await store.commit({ ...first, seq: 2 });
    expect((await store.latest())!.seq).toBe(2);
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
