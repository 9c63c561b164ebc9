// Where the coordinator records how far its held-out evaluations are: the run-state KV bucket, key
// `eval`, written with compare-and-set. A step is marked running before its episodes start (a crash
// then reruns it), its event is stored before it is published (a crash then publishes it again under
// the same dedup id), and it is marked done once published (a restart never evaluates it again).

import type { KvBucket } from '../../core/bus/index.js';
import { ParleyError } from '../../core/errors.js';
import type { EvalCompletedEvent } from '../../eval/index.js';

/** The KV key of the evaluation entry in the run-state bucket. */
export const EVAL_STATE_KEY = 'eval';

/** The evaluation entry of the run-state bucket (JSON). */
export interface EvalRunState {
  /** Every evaluation step up to this one is done (published, or skipped as passed). */
  evaluated: number;
  /** The evaluation in progress: rerun after a restart. */
  running?: { step: number; policyVersion: number; startedAt: string };
  /** An evaluation that finished and may not have been published yet: published again after a restart. */
  pending?: EvalCompletedEvent;
  /** The evaluation before training (step 0) is published, or was skipped because training had begun. */
  initial?: boolean;
  updatedAt: string;
}

/** The coordinator's evaluation progress, persisted across restarts. Every method rejects when the store fails. */
export interface EvalLedger {
  load(): Promise<EvalRunState>;
  /** Records that `step` is being evaluated with at least `policyVersion`. */
  begin(step: number, policyVersion: number): Promise<void>;
  /** Records the finished evaluation's event, before it is published. */
  finish(event: EvalCompletedEvent): Promise<void>;
  /** Records that the event of `step` is published. */
  published(step: number): Promise<void>;
  /** Records that the evaluation before training will not run (the learner is past step 0). */
  skipInitial(): Promise<void>;
}

const empty = (): EvalRunState => ({ evaluated: 0, updatedAt: new Date(0).toISOString() });

/**
 * The ledger in a KV bucket. A write that finds another writer's revision (a second coordinator while a
 * pod is replaced) rejects with BusError('conflict'): the caller loads again and goes on from what that
 * writer recorded.
 */
export class KvEvalLedger implements EvalLedger {
  private revision: number | undefined;
  private state: EvalRunState = empty();

  constructor(
    private readonly kv: KvBucket,
    private readonly key = EVAL_STATE_KEY,
  ) {}

  /** Rejects with ParleyError(data_loss) when the entry is not an evaluation state, or with BusError. */
  async load(): Promise<EvalRunState> {
    const e = await this.kv.get(this.key);
    if (!e) {
      this.revision = undefined;
      this.state = empty();
      return this.state;
    }
    let parsed: Partial<EvalRunState> | null;
    try {
      parsed = JSON.parse(new TextDecoder().decode(e.value)) as Partial<EvalRunState> | null;
    } catch (err) {
      throw new ParleyError('data_loss', `${this.kv.bucket}/${this.key}: not JSON; delete the key to evaluate again from the learner's step`, { cause: err });
    }
    const evaluated = parsed?.evaluated;
    if (typeof evaluated !== 'number' || !Number.isSafeInteger(evaluated) || evaluated < 0) {
      throw new ParleyError('data_loss', `${this.kv.bucket}/${this.key}: evaluated must be a non-negative integer, got ${JSON.stringify(evaluated)}`);
    }
    const running = parsed!.running;
    if (running !== undefined && (typeof running?.step !== 'number' || typeof running.policyVersion !== 'number')) {
      throw new ParleyError('data_loss', `${this.kv.bucket}/${this.key}: running must hold a step and a policyVersion`);
    }
    const pending = parsed!.pending;
    if (pending !== undefined && (typeof pending?.step !== 'number' || typeof pending.run !== 'string')) {
      throw new ParleyError('data_loss', `${this.kv.bucket}/${this.key}: pending must be an eval_completed event`);
    }
    this.revision = e.revision;
    this.state = parsed as EvalRunState;
    return this.state;
  }

  begin(step: number, policyVersion: number): Promise<void> {
    return this.write({ evaluated: this.state.evaluated, running: { step, policyVersion, startedAt: new Date().toISOString() } });
  }

  finish(event: EvalCompletedEvent): Promise<void> {
    return this.write({ evaluated: Math.max(this.state.evaluated, event.step), pending: event });
  }

  published(step: number): Promise<void> {
    return this.write({ evaluated: Math.max(this.state.evaluated, step), ...(step === 0 ? { initial: true } : {}) });
  }

  skipInitial(): Promise<void> {
    return this.write({ evaluated: this.state.evaluated, initial: true });
  }

  private async write(next: Omit<EvalRunState, 'updatedAt'>): Promise<void> {
    const state: EvalRunState = { ...(this.state.initial ? { initial: true } : {}), ...next, updatedAt: new Date().toISOString() };
    const body = new TextEncoder().encode(JSON.stringify(state));
    this.revision = this.revision === undefined ? await this.kv.create(this.key, body) : await this.kv.update(this.key, body, this.revision);
    this.state = state;
  }
}
