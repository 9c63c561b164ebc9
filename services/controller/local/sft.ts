// Cold start: supervised fine-tuning of the engine on demonstration conversations. Each assistant turn is
// tokenized exactly as the policy would have sampled it (the text after the generation prompt, through
// the end-of-turn token), so SFT and RL train the same token sequences, masked the same way.

import type { ChatModel } from '../../policy/index.js';
import { renderConversation, type TemplateMessage } from '../../policy/index.js';
import type { TrainerClient } from '../../learner/index.js';

export interface OpenAIMessage {
  role: string;
  content?: string | null;
  tool_calls?: unknown[];
  tool_call_id?: string;
  token_ids?: number[];
}

export interface TokenizedDemo {
  tokenIds: number[];
  lossMask: number[];
}

/** The ids the policy samples for assistant message `i` of `messages` (generation prompt excluded, end-of-turn included). */
export function sampledIds(model: ChatModel, messages: OpenAIMessage[], i: number): number[] {
  const conv = messages.slice(0, i + 1).map((m) => ({ ...m, content: m.content ?? '' })) as TemplateMessage[];
  const prompt = model.render(conv.slice(0, i), { addGenerationPrompt: true, enableThinking: false });
  const full = model.render(conv, { addGenerationPrompt: false, enableThinking: false });
  if (!full.startsWith(prompt)) throw new Error(`demonstration turn ${i}: the template does not render assistant turns after the generation prompt`);
  let completion = full.slice(prompt.length);
  // Keep through the last end-of-turn marker; what follows it (a newline) the template adds, not the model.
  const end = completion.lastIndexOf('<|im_end|>');
  if (end >= 0) completion = completion.slice(0, end + '<|im_end|>'.length);
  return model.encode(completion);
}

/**
 * Tokenizes a demonstration: assistant turns after the first user message carry their sampled ids
 * (loss mask 1); the greeting, system, user and tool turns are context (mask 0).
 * Throws when the conversation cannot be rendered by the model's template.
 */
export function tokenizeDemonstration(model: ChatModel, messages: OpenAIMessage[]): TokenizedDemo {
  const withIds = messages.map((m, i) => {
    const afterUser = messages.slice(0, i).some((x) => x.role === 'user');
    return m.role === 'assistant' && afterUser ? { ...m, token_ids: sampledIds(model, messages, i) } : m;
  });
  const r = renderConversation(model, withIds, undefined, { generationPrompt: 'never' });
  return { tokenIds: r.token_ids, lossMask: r.loss_mask };
}

export interface SftOptions {
  epochs: number;
  learningRate: number;
  /** Tokens per ForwardBackward call (several calls accumulate into one optimizer step). */
  microBatchTokens: number;
  /** Sequences per optimizer step. */
  batchSequences: number;
  maxGradNorm: number;
  seed: number;
  onProgress?: (done: number, total: number, loss: number) => void;
}

function shuffled<T>(xs: T[], seed: number): T[] {
  const out = [...xs];
  let s = seed >>> 0 || 1;
  for (let i = out.length - 1; i > 0; i--) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    const j = s % (i + 1);
    [out[i], out[j]] = [out[j]!, out[i]!];
  }
  return out;
}

/** Runs SFT epochs through the engine. Resolves the mean loss of the last epoch. Rejects with the engine's errors. */
export async function runSft(trainer: TrainerClient, demos: TokenizedDemo[], o: SftOptions): Promise<number> {
  const steps = Math.ceil(demos.length / o.batchSequences) * o.epochs;
  let done = 0;
  let lastEpochLoss = NaN;
  for (let epoch = 0; epoch < o.epochs; epoch++) {
    const order = shuffled(demos, o.seed + epoch);
    let lossSum = 0;
    let batches = 0;
    for (let b = 0; b < order.length; b += o.batchSequences) {
      const batch = order.slice(b, b + o.batchSequences);
      const totalMasked = batch.reduce((a, d) => a + d.lossMask.reduce((x, y) => x + y, 0), 0);
      let loss = 0;
      // Micro-batches by token budget; loss_scale keeps the token mean over the whole batch exact.
      let cur: TokenizedDemo[] = [];
      let curTokens = 0;
      const flush = async () => {
        if (cur.length === 0) return;
        const masked = cur.reduce((a, d) => a + d.lossMask.reduce((x, y) => x + y, 0), 0);
        const r = await trainer.forwardBackward({
          sequences: cur.map((d) => ({ tokenIds: d.tokenIds, lossMask: d.lossMask, advantages: d.tokenIds.map(() => 0) })),
          loss: { kind: 'sft', aggregation: 'token_mean' },
          lossScale: masked / Math.max(1, totalMasked),
        });
        loss += (r.metrics.loss ?? 0) * (masked / Math.max(1, totalMasked));
        cur = [];
        curTokens = 0;
      };
      for (const d of batch) {
        if (curTokens + d.tokenIds.length > o.microBatchTokens && cur.length) await flush();
        cur.push(d);
        curTokens += d.tokenIds.length;
      }
      await flush();
      await trainer.optimStep({ learningRate: o.learningRate, maxGradNorm: o.maxGradNorm });
      lossSum += loss;
      batches++;
      done++;
      o.onProgress?.(done, steps, loss);
    }
    lastEpochLoss = lossSum / Math.max(1, batches);
  }
  return lastEpochLoss;
}
