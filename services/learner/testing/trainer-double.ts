// A test double of the Trainer engine: the same method shapes as the gRPC client, deterministic
// numbers, versioned weight folders on disk; it records every call so tests can check what was sent.

import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { create, type MessageInitShape } from '@bufbuild/protobuf';
import { ParleyError } from '../../core/errors.js';
import {
  ComputeLogprobsRequestSchema,
  ComputeLogprobsResponseSchema,
  ForwardBackwardRequestSchema,
  ForwardBackwardResponseSchema,
  InitRequestSchema,
  InitResponseSchema,
  OptimStepRequestSchema,
  OptimStepResponseSchema,
  SampleRequestSchema,
  type SampleRequest,
  SampleResponseSchema,
  SaveWeightsRequestSchema,
  SaveWeightsResponseSchema,
  TrainerLoadWeightsRequestSchema,
  TrainerLoadWeightsResponseSchema,
  type ForwardBackwardRequest,
  type OptimStepRequest,
} from '../../core/gen/parley/v1/trainer_pb.js';
import type { TrainerClient } from '../trainer-client.js';

export type TrainerMethod = keyof TrainerClient;

export interface TrainerDoubleOptions {
  vocabSize?: number;
  /**
   * Longest sequence ForwardBackward and ComputeLogprobs take: a longer one, or a token id past the
   * vocabulary, is refused with INVALID_ARGUMENT as the engine's batching.validate does. 0: no limit.
   */
  maxLen?: number;
  /** Runs before each call; may wait (to hold a step open) or throw (to inject a failure). */
  beforeCall?: (method: TrainerMethod, callIndex: number) => void | Promise<void>;
}

/** The weights file a saved version holds: which sequences each applied optimizer step saw. */
export interface DoubleWeights {
  version: number;
  step: number;
  /** Per optimizer step, the sorted fingerprints (see fingerprint) of the sequences trained on. */
  history: string[][];
}

/** A sequence's identity as the double records it: its token ids joined by commas. */
export function fingerprint(tokenIds: readonly number[]): string {
  return tokenIds.join(',');
}

const WEIGHTS_FILE = 'double-weights.json';

/** The double. Not a model: log-probs are −0.5 per token and the loss is −Σ advantage·mask / tokens. */
export class TrainerDouble implements TrainerClient {
  readonly calls: TrainerMethod[] = [];
  /** The weights last loaded into the reference (null: Init's). */
  referencePath: string | null = null;
  /** Every Sample request, in order. */
  readonly sampleRequests: SampleRequest[] = [];
  readonly forwardBackwards: ForwardBackwardRequest[] = [];
  /** Every OptimStep request, in order. */
  readonly optimSteps: OptimStepRequest[] = [];
  step = 0;
  history: string[][] = [];
  private initialized = false;
  private pending: string[] = [];
  private readonly vocabSize: number;

  constructor(private readonly opts: TrainerDoubleOptions = {}) {
    this.vocabSize = opts.vocabSize ?? 1000;
  }

  private async enter(method: TrainerMethod): Promise<void> {
    this.calls.push(method);
    await this.opts.beforeCall?.(method, this.calls.length - 1);
    if (method !== 'init' && !this.initialized) throw new ParleyError('failed_precondition', 'the engine is not initialised; call Init first');
  }

  /** The engine's token checks (batching.validate), with its messages. */
  private checkTokens(sequences: readonly { tokenIds: readonly number[] }[]): void {
    const maxLen = this.opts.maxLen ?? 0;
    sequences.forEach((s, i) => {
      const n = s.tokenIds.length;
      if (maxLen > 0 && n > maxLen) throw new ParleyError('invalid_argument', `sequences[${i}].token_ids has ${n} tokens; the model takes at most ${maxLen}`);
      const top = s.tokenIds.reduce((a, b) => (b > a ? b : a), 0);
      if (top >= this.vocabSize) throw new ParleyError('invalid_argument', `sequences[${i}].token_ids contains ${top}; token ids must be < vocab_size ${this.vocabSize}`);
    });
  }

  async init(req: MessageInitShape<typeof InitRequestSchema>) {
    await this.enter('init');
    create(InitRequestSchema, req);
    this.initialized = true;
    this.step = 0;
    this.history = [];
    this.pending = [];
    return create(InitResponseSchema, { parameters: 1234n, device: 'double', vocabSize: this.vocabSize });
  }

  async forwardBackward(init: MessageInitShape<typeof ForwardBackwardRequestSchema>) {
    await this.enter('forwardBackward');
    const req = create(ForwardBackwardRequestSchema, init);
    this.checkTokens(req.sequences);
    let sum = 0;
    let n = 0;
    req.sequences.forEach((s, i) => {
      const len = s.tokenIds.length;
      // As the engine's batching.validate: SFT needs only the loss mask; PPO also advantages and behaviour log-probs.
      const required = req.loss?.kind === 'sft' ? ([['lossMask', s.lossMask]] as const) : ([['lossMask', s.lossMask], ['advantages', s.advantages], ['behaviourLogprobs', s.behaviourLogprobs]] as const);
      for (const [name, arr] of required) {
        if (arr.length !== len) throw new ParleyError('invalid_argument', `sequences[${i}].${name} has ${arr.length} entries but token_ids has ${len}`);
      }
      for (let t = 1; t < len; t++) {
        if (s.lossMask[t] !== 1) continue;
        sum += -s.advantages[t]!;
        n++;
      }
    });
    this.forwardBackwards.push(req);
    this.pending.push(...req.sequences.map((s) => fingerprint(s.tokenIds)));
    const tokens = req.sequences.reduce((a, s) => a + s.tokenIds.length, 0);
    return create(ForwardBackwardResponseSchema, {
      metrics: { loss: n ? sum / n : 0, pg_loss: n ? sum / n : 0, clip_frac: 0, kl: 0, entropy: 1, tokens, loss_tokens: n, tokens_per_s: 1e6 },
    });
  }

  async optimStep(init: MessageInitShape<typeof OptimStepRequestSchema>) {
    await this.enter('optimStep');
    this.optimSteps.push(create(OptimStepRequestSchema, init));
    if (this.pending.length === 0) throw new ParleyError('failed_precondition', 'no gradients to apply; call ForwardBackward before OptimStep');
    this.history.push([...this.pending].sort());
    this.pending = [];
    this.step++;
    return create(OptimStepResponseSchema, { step: BigInt(this.step), metrics: { grad_norm: 0.5, lr: 1e-6 } });
  }

  async computeLogprobs(init: MessageInitShape<typeof ComputeLogprobsRequestSchema>) {
    await this.enter('computeLogprobs');
    const req = create(ComputeLogprobsRequestSchema, init);
    this.checkTokens(req.sequences);
    return create(ComputeLogprobsResponseSchema, {
      sequences: req.sequences.map((s) => ({ logprobs: s.tokenIds.map((_, t) => (t === 0 ? 0 : -0.5)) })),
    });
  }

  async saveWeights(init: MessageInitShape<typeof SaveWeightsRequestSchema>) {
    await this.enter('saveWeights');
    const req = create(SaveWeightsRequestSchema, init);
    const version = Number(req.version);
    const folder = join(req.path, `v${String(version).padStart(8, '0')}`);
    const weights: DoubleWeights = { version, step: this.step, history: this.history };
    const tmp = `${folder}.tmp-${process.pid}`;
    await mkdir(tmp, { recursive: true });
    const body = JSON.stringify(weights);
    await writeFile(join(tmp, WEIGHTS_FILE), body);
    try {
      await rename(tmp, folder);
    } catch (e) {
      throw new ParleyError('already_exists', `${folder} already exists; checkpoint versions are immutable`, { cause: e });
    }
    return create(SaveWeightsResponseSchema, { path: folder, bytes: BigInt(body.length) });
  }

  async loadWeights(init: MessageInitShape<typeof TrainerLoadWeightsRequestSchema>) {
    await this.enter('loadWeights');
    const req = create(TrainerLoadWeightsRequestSchema, init);
    const w = await readDoubleWeights(req.path);
    if (req.reference) {
      this.referencePath = req.path;
      return create(TrainerLoadWeightsResponseSchema, { version: BigInt(w.version) });
    }
    this.step = w.step;
    this.history = w.history;
    this.pending = [];
    return create(TrainerLoadWeightsResponseSchema, { version: BigInt(w.version) });
  }

  async sample(init: MessageInitShape<typeof SampleRequestSchema>) {
    await this.enter('sample');
    const req = create(SampleRequestSchema, init);
    this.sampleRequests.push(req);
    if (req.prompts.length === 0) throw new ParleyError('invalid_argument', 'prompts is empty; send at least one prompt');
    return create(SampleResponseSchema, {
      completions: req.prompts.map((p) => {
        const last = p.tokenIds[p.tokenIds.length - 1] ?? 0;
        const ids = Array.from({ length: req.maxTokens }, (_, k) => (last + k + 1) % this.vocabSize);
        const stop = ids.findIndex((id) => req.stopTokenIds.includes(id));
        const tokenIds = stop >= 0 ? ids.slice(0, stop + 1) : ids;
        return { tokenIds, logprobs: tokenIds.map(() => -0.25), finishReason: stop >= 0 ? 'stop' : 'length' };
      }),
    });
  }
}

/** Reads the double's weights from a version folder. Rejects with ParleyError not_found. */
export async function readDoubleWeights(folder: string): Promise<DoubleWeights> {
  try {
    return JSON.parse(await readFile(join(folder, WEIGHTS_FILE), 'utf8')) as DoubleWeights;
  } catch (e) {
    throw new ParleyError('not_found', `no double weights at ${folder}`, { cause: e });
  }
}
