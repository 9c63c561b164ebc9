// Where the coordinator keeps how far along the seeded group sequence it is: the run-state KV bucket in
// a cluster (key `coordinator`, written with compare-and-set), the run's state file on a laptop.

import { BusError, type KvBucket } from '../../core/bus/index.js';
import { ParleyError } from '../../core/errors.js';

/** The index of the next group to publish, persisted across restarts. */
export interface GroupCounter {
  /** The stored index (0 when none is stored). Rejects when the store cannot be read or holds garbage. */
  load(): Promise<number>;
  /**
   * Records that every group below `next` is published; resolves the stored index, which is never
   * lower than before (when another writer got further, its value). Rejects when the store fails.
   */
  save(next: number): Promise<number>;
}

/** The KV key of the coordinator's entry in the run-state bucket. */
export const COORDINATOR_STATE_KEY = 'coordinator';

/** The coordinator's entry in the run-state bucket (JSON). */
export interface CoordinatorRunState {
  /** Groups g0 … g<nextGroup-1> are published. */
  nextGroup: number;
  updatedAt: string;
}

/** A counter in a KV bucket. Writes are compare-and-set, so two writers never move it backwards. */
export class KvGroupCounter implements GroupCounter {
  private revision: number | undefined;
  private value = 0;

  constructor(
    private readonly kv: KvBucket,
    private readonly key = COORDINATOR_STATE_KEY,
  ) {}

  /** Rejects with ParleyError(data_loss) when the entry is not a coordinator state, or with BusError. */
  async load(): Promise<number> {
    const e = await this.kv.get(this.key);
    if (!e) {
      this.revision = undefined;
      this.value = 0;
      return 0;
    }
    let parsed: unknown;
    try {
      parsed = JSON.parse(new TextDecoder().decode(e.value));
    } catch (err) {
      throw new ParleyError('data_loss', `${this.kv.bucket}/${this.key}: not JSON; delete the key to start the task sequence over`, { cause: err });
    }
    const next = (parsed as Partial<CoordinatorRunState> | null)?.nextGroup;
    if (typeof next !== 'number' || !Number.isSafeInteger(next) || next < 0) {
      throw new ParleyError('data_loss', `${this.kv.bucket}/${this.key}: nextGroup must be a non-negative integer, got ${JSON.stringify(next)}`);
    }
    this.revision = e.revision;
    this.value = next;
    return next;
  }

  async save(next: number): Promise<number> {
    for (let attempt = 1; ; attempt++) {
      if (next <= this.value && this.revision !== undefined) return this.value;
      const body = new TextEncoder().encode(JSON.stringify({ nextGroup: next, updatedAt: new Date().toISOString() } satisfies CoordinatorRunState));
      try {
        this.revision = this.revision === undefined ? await this.kv.create(this.key, body) : await this.kv.update(this.key, body, this.revision);
        this.value = next;
        return next;
      } catch (e) {
        // Another writer (a second coordinator while a pod is replaced): take its value and go on from the larger.
        if (!BusError.is(e, 'conflict') || attempt >= 3) throw e;
        await this.load();
      }
    }
  }
}

/** A counter held by the caller (the local run keeps it in run-state.json). */
export function callbackGroupCounter(get: () => number, set: (next: number) => void): GroupCounter {
  return {
    load: async () => get(),
    save: async (next) => {
      const stored = Math.max(get(), next);
      set(stored);
      return stored;
    },
  };
}
