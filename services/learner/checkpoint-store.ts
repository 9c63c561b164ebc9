// Crash-safe learner checkpoints: one JSON record per commit (temp file + fsync + rename), then a
// `latest` pointer replaced the same way. The pointer's rename is the commit point. Every record carries
// a SHA-256 of its own content; a damaged latest record gives way to the one committed before it.

import { createHash, randomBytes } from 'node:crypto';
import { mkdir, open, readFile, readdir, rename, rm, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { ParleyError } from '../core/errors.js';
import { createLogger, type Logger } from '../core/logger.js';
import { Counter, getOrCreate, type Registry } from '../core/metrics.js';

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

/**
 * The hex SHA-256 a record file carries in its `sha256` field: over the JSON text of the record without
 * that field, as JSON.stringify writes it (parsing and writing again gives the same text).
 */
const digest = (text: string) => createHash('sha256').update(text).digest('hex');

/** Where CheckpointStore reports records it had to skip. */
export interface CheckpointStoreOptions {
  /** Warnings about skipped records; default: a `checkpoint-store` logger on stderr. */
  logger?: Logger;
  /** When given, skipped records count in parley_learner_checkpoint_records_skipped_total. */
  registry?: Registry;
}

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
 * there leaves a file the next commit of that seq replaces). A committed record that no longer
 * matches its checksum, does not parse or is missing is skipped with a warning: latest() falls back
 * to the record committed before it, history() leaves it out. Records of older versions, written
 * without a checksum, are read as before.
 */
export class CheckpointStore {
  readonly weightsDir: string;
  private readonly recordsDir: string;
  private readonly pointerPath: string;
  private readonly log: Logger;
  private readonly skipped?: Counter;
  /** Damaged records already reported (each is warned about and counted once). */
  private readonly reported = new Set<number>();

  constructor(readonly dir: string, opts: CheckpointStoreOptions = {}) {
    this.weightsDir = join(dir, 'weights');
    this.recordsDir = join(dir, 'checkpoints');
    this.pointerPath = join(dir, 'latest');
    this.log = opts.logger ?? createLogger('checkpoint-store');
    if (opts.registry) {
      const name = 'parley_learner_checkpoint_records_skipped_total';
      this.skipped = getOrCreate(opts.registry, name, () => new Counter({ name, help: 'Committed checkpoint records found damaged, unparseable or missing at load, and skipped', registers: [] }));
    }
  }

  recordPath(seq: number): string {
    return join(this.recordsDir, `ckpt-${pad(seq)}.json`);
  }

  /**
   * The latest committed record that reads back intact, or null when none was ever committed. A damaged
   * record (see the class) is skipped with a warning for the one committed before it. Rejects with
   * ParleyError data_loss when the pointer is unreadable or no committed record is intact (never guesses).
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
    if (!Number.isInteger(pointer?.seq) || pointer.seq < 0) {
      throw new ParleyError('data_loss', `${this.pointerPath} names no checkpoint (seq ${JSON.stringify(pointer?.seq)}); restore it or remove the checkpoint folder`);
    }
    for (let seq = pointer.seq; seq >= 0; seq--) {
      const rec = await this.readOrSkip(seq);
      if (rec) return rec;
    }
    throw new ParleyError('data_loss', `no committed checkpoint in ${this.dir} is intact: records 0 to ${pointer.seq} are damaged or missing (see the warnings); restore one or remove the checkpoint folder`);
  }

  /**
   * The committed record `seq`, checked against its checksum when it has one. Rejects with ParleyError
   * data_loss when it is missing, unreadable, damaged or of another format.
   */
  async read(seq: number): Promise<CheckpointRecord> {
    const path = this.recordPath(seq);
    let rec: CheckpointRecord & { sha256?: unknown };
    try {
      rec = JSON.parse(await readFile(path, 'utf8')) as CheckpointRecord & { sha256?: unknown };
    } catch (e) {
      throw new ParleyError('data_loss', `checkpoint ${path} is missing or unreadable: ${(e as Error).message}`, { cause: e });
    }
    if (rec === null || typeof rec !== 'object') throw new ParleyError('data_loss', `checkpoint ${path} is not a JSON object`);
    const { sha256, ...body } = rec;
    if (sha256 !== undefined && sha256 !== digest(JSON.stringify(body))) {
      throw new ParleyError('data_loss', `checkpoint ${path} does not match its sha256 ${JSON.stringify(sha256)}: it was changed or damaged after it was written`);
    }
    if (body.format !== CHECKPOINT_FORMAT || body.seq !== seq) {
      throw new ParleyError('data_loss', `checkpoint ${path} has format ${JSON.stringify(body.format)} seq ${body.seq}; expected ${CHECKPOINT_FORMAT} seq ${seq}`);
    }
    return body;
  }

  /** read(seq), or undefined when that record is damaged (warned about and counted the first time). */
  private async readOrSkip(seq: number): Promise<CheckpointRecord | undefined> {
    try {
      return await this.read(seq);
    } catch (e) {
      if (!(e instanceof ParleyError) || e.code !== 'data_loss') throw e;
      if (!this.reported.has(seq)) {
        this.reported.add(seq);
        this.log.warn({ err: e.message, path: this.recordPath(seq), seq }, 'skipping a damaged checkpoint record');
        this.skipped?.inc();
      }
      return undefined;
    }
  }

  /** Commits `rec` with its checksum: its record, then the pointer. Returns the record's path. Rejects with the file-system error. */
  async commit(rec: CheckpointRecord): Promise<string> {
    await mkdir(this.recordsDir, { recursive: true });
    const path = this.recordPath(rec.seq);
    const { sha256: _, ...body } = rec as CheckpointRecord & { sha256?: unknown };
    await writeFileAtomic(path, JSON.stringify({ ...body, sha256: digest(JSON.stringify(body)) }));
    this.reported.delete(rec.seq);
    const pointer: Pointer = { seq: rec.seq, file: `checkpoints/ckpt-${pad(rec.seq)}.json` };
    await writeFileAtomic(this.pointerPath, JSON.stringify(pointer) + '\n');
    return path;
  }

  /**
   * Every intact committed record from `fromSeq` to latest(), in order; damaged ones are skipped with a
   * warning. Rejects with data_loss as latest() does.
   */
  async history(fromSeq = 0): Promise<CheckpointRecord[]> {
    const last = await this.latest();
    if (!last) return [];
    const out: CheckpointRecord[] = [];
    for (let s = Math.max(0, fromSeq); s < last.seq; s++) {
      const rec = await this.readOrSkip(s);
      if (rec) out.push(rec);
    }
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
