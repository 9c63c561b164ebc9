// Cold start: supervised fine-tuning of the engine on demonstration conversations before RL, run by the
// learner itself when it starts a run without a checkpoint (MUA-RL's recipe: SFT, then RL from its
// result, which is also the KL anchor). Each assistant turn is tokenized exactly as the policy would have
// sampled it (the text after the generation prompt, through the end-of-turn token), so SFT and RL train
// the same token sequences, masked the same way. The result is saved once (cold-start.json marks it
// complete); a learner that crashes during SFT starts it again, one that crashes after it reuses it.

import { existsSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ParleyError } from '../core/errors.js';
import type { Logger } from '../core/logger.js';
import { loadChatModel, renderConversation, type ChatModel, type TemplateMessage } from '../policy/index.js';
import type { LearnerConfig } from './config.js';
import type { TrainerClient } from './trainer-client.js';

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

/** A demonstration file's conversations: JSON lines, each a list of OpenAI-style messages or {"messages": [...]}. Throws ParleyError naming the line. */
export function readDemonstrations(path: string): OpenAIMessage[][] {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    throw new ParleyError('not_found', `coldStart.demonstrations: cannot read ${path}: ${(e as Error).message}`, { field: 'coldStart.demonstrations' });
  }
  const out: OpenAIMessage[][] = [];
  text.split('\n').forEach((line, i) => {
    if (!line.trim()) return;
    let v: unknown;
    try {
      v = JSON.parse(line);
    } catch (e) {
      throw new ParleyError('invalid_argument', `coldStart.demonstrations: ${path} line ${i + 1} is not JSON: ${(e as Error).message}`, { field: 'coldStart.demonstrations' });
    }
    const messages = Array.isArray(v) ? v : (v as { messages?: unknown } | null)?.messages;
    if (!Array.isArray(messages) || messages.length === 0) {
      throw new ParleyError('invalid_argument', `coldStart.demonstrations: ${path} line ${i + 1}: expected a list of messages or {"messages": [...]}`, { field: 'coldStart.demonstrations' });
    }
    out.push(messages as OpenAIMessage[]);
  });
  if (out.length === 0) throw new ParleyError('invalid_argument', `coldStart.demonstrations: ${path} holds no conversations`, { field: 'coldStart.demonstrations' });
  return out;
}

/** What cold-start.json records: the SaveWeights folder of the SFT result and how SFT went. */
export interface ColdStartRecord {
  weightsPath: string;
  demonstrations: number;
  finalEpochLoss: number;
  seconds: number;
}

/** Where the cold start's result lives: <checkpointDir>/cold-start. */
export const coldStartDir = (c: Pick<LearnerConfig, 'checkpointDir'>) => join(c.checkpointDir, 'cold-start');

/**
 * Runs the cold start of `c.coldStart` unless an earlier start completed it. Resolves its record (the
 * weights RL starts from). The engine is Init-ed for SFT (its own warm-up and cosine decay to 10%); the
 * caller Init-s it again for RL. Rejects with ParleyError naming a bad demonstration file or model
 * folder, or with the engine's error.
 */
export async function coldStart(trainer: TrainerClient, c: LearnerConfig, log: Logger, onProgress?: (done: number, total: number, loss: number) => void): Promise<ColdStartRecord> {
  const cs = c.coldStart!;
  const dir = coldStartDir(c);
  const marker = join(dir, 'cold-start.json');
  if (existsSync(marker)) {
    const rec = JSON.parse(readFileSync(marker, 'utf8')) as ColdStartRecord;
    log.info({ ...rec }, 'cold start already done; RL starts from its weights');
    return rec;
  }
  if (!c.modelDir) throw new ParleyError('invalid_argument', 'modelDir: the cold start tokenizes its demonstrations with the model\'s tokenizer; set modelDir (PARLEY_MODEL_DIR)', { field: 'modelDir' });
  const started = Date.now();
  const model = loadChatModel(c.modelDir);
  const tokenized = readDemonstrations(cs.demonstrations).map((m, i) => {
    try {
      return tokenizeDemonstration(model, m);
    } catch (e) {
      throw new ParleyError('invalid_argument', `coldStart.demonstrations: conversation ${i + 1} of ${cs.demonstrations}: ${(e as Error).message}`, { field: 'coldStart.demonstrations' });
    }
  });
  const steps = Math.ceil(tokenized.length / cs.batchSize) * cs.epochs;
  const engine = { ...(JSON.parse(c.engineConfigJson) as Record<string, unknown>), warmup_steps: Math.min(100, Math.ceil(steps / 10)), total_steps: steps, min_lr_ratio: 0.1 };
  await trainer.init({ model: c.model, configJson: JSON.stringify(engine), seed: BigInt(c.seed) });
  log.info({ demonstrations: tokenized.length, epochs: cs.epochs, optimizerSteps: steps }, 'cold start: SFT on demonstrations');
  let lastLog = 0;
  const finalEpochLoss = await runSft(trainer, tokenized, {
    epochs: cs.epochs,
    learningRate: cs.learningRate,
    microBatchTokens: c.microBatchTokens,
    batchSequences: cs.batchSize,
    maxGradNorm: c.maxGradNorm,
    seed: c.seed,
    onProgress: (done, total, loss) => {
      onProgress?.(done, total, loss);
      if (Date.now() - lastLog > 10_000 || done === total) {
        lastLog = Date.now();
        log.info({ done, total, loss }, 'cold start: SFT progress');
      }
    },
  });
  const saved = await trainer.saveWeights({ path: dir, version: 0n });
  const rec: ColdStartRecord = { weightsPath: saved.path, demonstrations: tokenized.length, finalEpochLoss, seconds: (Date.now() - started) / 1000 };
  writeFileSync(`${marker}.tmp`, JSON.stringify(rec, null, 2));
  renameSync(`${marker}.tmp`, marker);
  log.info({ ...rec }, 'cold start done');
  return rec;
}
