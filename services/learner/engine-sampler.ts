// A policy sampling backend over the trainer engine's Sample RPC, for small local models: token ids
// in, ids and log-probs out. Concurrent requests with equal settings share one batched Sample call.

import { ParleyError } from '../core/errors.js';
import type { BackendGenerateInput, BackendGenerateOutput, PolicyBackend } from '../policy/index.js';
import type { TrainerClient } from './trainer-client.js';

export interface EngineSamplerOptions {
  /** End-of-turn ids (e.g. the chat template's <|im_end|>): sampling stops after one. */
  stopTokenIds?: readonly number[];
  /**
   * True when this engine is also the one training (the laptop setup): it already holds the newest
   * weights, so loadFullWeights only records the version instead of loading over the training state.
   */
  sharedWithTrainer?: boolean;
  /** Most prompts per Sample call (default 64). */
  maxBatch?: number;
  /** Settles once the engine is initialised (e.g. a policy pod's own Init); calls wait for it and fail with its error. */
  ready?: Promise<unknown>;
}

interface Waiting {
  input: BackendGenerateInput;
  resolve: (o: BackendGenerateOutput) => void;
  reject: (e: unknown) => void;
}

/**
 * The Policy service's backend over the engine (pass it as servePolicy's `backend`). Rejects as
 * PolicyBackend documents; the engine's ParleyError codes pass through. Requests with equal settings
 * share one Sample call; a request's seed goes with its prompt (the engine draws a seeded prompt from its
 * own generator, so batching does not change its completion); a seed of 0 means "the engine's own
 * generator", as the engine reads 0 as unset. LoRA adapters are not served.
 */
export class EngineSamplerBackend implements PolicyBackend {
  readonly kind = 'trainer-engine';
  private queue: Waiting[] = [];
  private scheduled = false;
  private loadedVersion = 0;

  constructor(
    private readonly trainer: Pick<TrainerClient, 'sample' | 'loadWeights'>,
    private readonly opts: EngineSamplerOptions = {},
  ) {}

  /** Version of the weights last loaded (or recorded, when shared with the trainer). */
  get version(): number {
    return this.loadedVersion;
  }

  /**
   * Samples a completion of `promptTokenIds`. Rejects with ParleyError: invalid_argument for an
   * empty prompt or bad settings (also the engine's), not_found for an adapter, cancelled when the
   * signal fires, unavailable when the engine cannot be reached.
   */
  generate(input: BackendGenerateInput): Promise<BackendGenerateOutput> {
    if (this.opts.ready) return this.opts.ready.then(() => this.enqueue(input));
    return this.enqueue(input);
  }

  private enqueue(input: BackendGenerateInput): Promise<BackendGenerateOutput> {
    if (input.signal?.aborted) return Promise.reject(new ParleyError('cancelled', 'generate was cancelled'));
    if (input.promptTokenIds.length === 0) return Promise.reject(new ParleyError('invalid_argument', 'promptTokenIds: empty; send at least one token'));
    if (input.adapter) return Promise.reject(new ParleyError('not_found', `adapter '${input.adapter}': the trainer engine's sampler serves full weights only`));
    return new Promise((resolve, reject) => {
      const w: Waiting = { input, resolve, reject };
      input.signal?.addEventListener('abort', () => reject(new ParleyError('cancelled', 'generate was cancelled')), { once: true });
      this.queue.push(w);
      if (!this.scheduled) {
        this.scheduled = true;
        setImmediate(() => this.flush());
      }
    });
  }

  /** Loads full weights from a version folder (unless shared with the trainer). Rejects with the engine's error. */
  async loadFullWeights(version: number, uri: string): Promise<void> {
    await this.opts.ready;
    if (!this.opts.sharedWithTrainer) await this.trainer.loadWeights({ path: uri });
    this.loadedVersion = version;
  }

  async close(): Promise<void> {
    // The trainer client belongs to whoever made it.
  }

  private flush(): void {
    this.scheduled = false;
    const batches = new Map<string, Waiting[]>();
    for (const w of this.queue.splice(0)) {
      if (w.input.signal?.aborted) continue;
      const s = w.input.sampling;
      const key = `${s.temperature}/${s.topP}/${s.maxTokens}`;
      const list = batches.get(key) ?? [];
      list.push(w);
      batches.set(key, list);
    }
    const max = this.opts.maxBatch ?? 64;
    for (const list of batches.values()) for (let i = 0; i < list.length; i += max) void this.send(list.slice(i, i + max));
  }

  private async send(batch: Waiting[]): Promise<void> {
    const s = batch[0]!.input.sampling;
    try {
      const res = await this.trainer.sample({
        prompts: batch.map((w) => ({ tokenIds: [...w.input.promptTokenIds], seed: BigInt(w.input.sampling.seed ?? 0) })),
        temperature: s.temperature,
        topP: s.topP,
        maxTokens: s.maxTokens,
        stopTokenIds: [...(this.opts.stopTokenIds ?? [])],
      });
      if (res.completions.length !== batch.length) {
        throw new ParleyError('internal', `the engine returned ${res.completions.length} completions for ${batch.length} prompts`);
      }
      batch.forEach((w, i) => {
        const c = res.completions[i]!;
        if (c.finishReason !== 'stop' && c.finishReason !== 'length') {
          return w.reject(new ParleyError('internal', `the engine returned finish_reason '${c.finishReason}' (expected stop or length)`));
        }
        w.resolve({ tokenIds: c.tokenIds, logprobs: c.logprobs, finishReason: c.finishReason });
      });
    } catch (e) {
      const err = ParleyError.from(e);
      for (const w of batch) w.reject(err);
    }
  }
}
