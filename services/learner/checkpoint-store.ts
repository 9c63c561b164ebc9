// Crash-safe learner checkpoints: one JSON record per commit (temp file + fsync + rename), then a
// `latest` pointer replaced the same way. The pointer's rename is the commit point.

import { randomBytes } from 'node:crypto';
import { mkdir, open, readFile, readdir, rename, rm, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { ParleyError } from '../core/errors.js';

export const CHECKPOINT_FORMAT = 'parley-learner-checkpoint/1';

/** Trajectory ids a checkpoint consumed, by what happened to them. */
export interface ConsumedIds {
  trained: string[];
  stale: string[];
  zeroVariance: string[];
  incomplete: string[];
}

/** Running totals since the run began. */
export interface LearnerTotals {
  /** Trajectories consumed in any way (trained or dropped), each counted once. */
  consumed: number;
  trained: number;
  droppedStale: number;
  /** Groups dropped because all rewards were equal. */
  zeroVarianceGroups: number;
  /** Groups dropped because too few members arrived. */
  incompleteGroups: number;
}

/** One committed checkpoint of the learner's state. */
export interface CheckpointRecord {
  format: typeof CHECKPOINT_FORMAT;
  run: string;
  /** Commit number: 0 for the initial checkpoint, +1 for every later one. */
  seq: number;
  /** init: weights before training; step: after an optimizer step; flush: drops only. */
  kind: 'init' | 'step' | 'flush';
  /** Learner steps completed. */
  step: number;
  /** Version of the engine weights at `weightsPath` (optimizer updates applied). */
  policyVersion: number;
  weightsPath: string;
  /** ScalingInter-RL stage at `step`. */
  horizonStage: number;
  /** Ids consumed by this commit (not earlier ones). */
  consumed: ConsumedIds;
  totals: LearnerTotals;
  /** Mean reward of the trajectories trained on at the latest step (0 before the first). */
  rewardMean: number;
  createdAt: string;
}

interface Pointer {
  seq: number;
  file: string;
}

const pad = (n: number) => String(n).padStart(8, '0');

/** Writes `data` to `path` atomically: a temp file beside it, fsync, rename, fsync of the folder. */
export async function writeFileAtomic(path: string, data: string | Uint8Array): Promise<void> {
  const dir = join(path, '..');
  const tmp = `${path}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`;
  const fh = await open(tmp, 'w');
  try {
    await fh.writeFile(data);
    await fh.sync();
  } finally {
    await fh.close();
  }
  try {
    await rename(tmp, path);
  } catch (e) {
    await unlink(tmp).catch(() => undefined);
    throw e;
  }
  const dh = await open(dir, 'r');
  try {
    await dh.sync();
  } finally {
    await dh.close();
  }
}

/**
 * The checkpoint folder: `checkpoints/ckpt-<seq>.json`, the `latest` pointer, `weights/` for the
 * engine's versioned weights. A record written but not yet pointed to is not committed (a crash
 * there leaves a file the next commit of that seq replaces).
 */
export class CheckpointStore {
  readonly weightsDir: string;
  private readonly recordsDir: string;
  private readonly pointerPath: string;

  constructor(readonly dir: string) {
    this.weightsDir = join(dir, 'weights');
    this.recordsDir = join(dir, 'checkpoints');
    this.pointerPath = join(dir, 'latest');
  }

  recordPath(seq: number): string {
    return join(this.recordsDir, `ckpt-${pad(seq)}.json`);
  }

  /**
   * The latest committed record, or null when none was ever committed. Rejects with ParleyError
   * data_loss when the pointer or its record is unreadable or of another format (never guesses).
   */
  async latest(): Promise<CheckpointRecord | null> {
    let text: string;
    try {
      text = await readFile(this.pointerPath, 'utf8');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return null;
      throw new ParleyError('data_loss', `cannot read ${this.pointerPath}: ${(e as Error).message}`, { cause: e });
    }
    let pointer: Pointer;
    try {
      pointer = JSON.parse(text) as Pointer;
    } catch (e) {
      throw new ParleyError('data_loss', `${this.pointerPath} is not JSON; restore it or remove the checkpoint folder`, { cause: e });
    }
    return this.read(pointer.seq);
  }

  /** The committed record `seq`. Rejects with ParleyError data_loss when missing or unreadable. */
  async read(seq: number): Promise<CheckpointRecord> {
    const path = this.recordPath(seq);
    let rec: CheckpointRecord;
    try {
      rec = JSON.parse(await readFile(path, 'utf8')) as CheckpointRecord;
    } catch (e) {
      throw new ParleyError('data_loss', `checkpoint ${path} is missing or unreadable: ${(e as Error).message}`, { cause: e });
    }
    if (rec.format !== CHECKPOINT_FORMAT || rec.seq !== seq) {
      throw new ParleyError('data_loss', `checkpoint ${path} has format ${JSON.stringify(rec.format)} seq ${rec.seq}; expected ${CHECKPOINT_FORMAT} seq ${seq}`);
    }
    return rec;
  }

  /** Commits `rec`: its record, then the pointer. Returns the record's path. Rejects with the file-system error. */
  async commit(rec: CheckpointRecord): Promise<string> {
    await mkdir(this.recordsDir, { recursive: true });
    const path = this.recordPath(rec.seq);
    await writeFileAtomic(path, JSON.stringify(rec));
    const pointer: Pointer = { seq: rec.seq, file: `checkpoints/ckpt-${pad(rec.seq)}.json` };
    await writeFileAtomic(this.pointerPath, JSON.stringify(pointer) + '\n');
    return path;
  }

  /** Every committed record from `fromSeq` to the latest, in order. Rejects with data_loss as read does. */
  async history(fromSeq = 0): Promise<CheckpointRecord[]> {
    const last = await this.latest();
    if (!last) return [];
    const out: CheckpointRecord[] = [];
    for (let s = Math.max(0, fromSeq); s < last.seq; s++) out.push(await this.read(s));
    out.push(last);
    return out;
  }

  /**
   * Removes engine weight folders (`v<digits>`) of versions above `committedVersion`: written by a
   * step that crashed before its checkpoint, never published, and in the way of that version's
   * immutable re-save. Returns the removed folder names.
   */
  async removeUncommittedWeights(committedVersion: number): Promise<string[]> {
    let names: string[];
    try {
      names = await readdir(this.weightsDir);
    } catch {
      return [];
    }
    const removed: string[] = [];
    for (const name of names) {
      const m = /^v(\d+)$/.exec(name);
      if (m && Number(m[1]) > committedVersion) {
        await rm(join(this.weightsDir, name), { recursive: true, force: true });
        removed.push(name);
      }
    }
    return removed;
  }
}

/** Ids consumed by the given records, as one set. */
export function consumedIdSet(records: readonly CheckpointRecord[]): Set<string> {
  const out = new Set<string>();
  for (const r of records) for (const list of Object.values(r.consumed)) for (const id of list) out.add(id);
  return out;
}
