// Token-in-token-out prompt building: sampled assistant ids are kept verbatim and everything after them
// is rendered as a textual delta of the chat template, so a conversation's token sequence only grows.

import { createHash } from 'node:crypto';
import { ParleyError } from '../core/index.js';
import type { ChatModel, TemplateMessage, TemplateTool } from './chat-model.js';
import { toTemplateMessage, type ConversationMessage } from './conversation.js';
import { diffTokens } from './token-diff.js';

export interface TitoOptions {
  tools: TemplateTool[];
  enableThinking: boolean;
  /** Append the assistant header (and Qwen3's empty think block when thinking is off) at the end. */
  addGenerationPrompt: boolean;
}

/** The token sequence up to and including the last sampled assistant turn, reusable by the next request. */
export interface TitoState {
  /** Hash of the tools and template switches the state was built with. */
  settingsKey: string;
  /** Per-message hashes for messages[0..lastAnchor]. */
  fingerprints: string[];
  /** Message index of each sampled assistant turn → token length after its ids. */
  anchorEnds: Map<number, number>;
  tokenIds: number[];
  lossMask: number[];
}

export interface TitoResult {
  tokenIds: number[];
  /** 1 on sampled assistant ids, 0 on everything rendered by the template. */
  lossMask: number[];
  /** Messages whose tokens came from `cached` (0 when nothing was reused). */
  reusedMessages: number;
  /** Present when the conversation holds at least one sampled assistant turn. */
  state?: TitoState;
}

// Stands in for a sampled assistant turn while rendering what follows it; contains no newline, which
// templates such as Qwen3's strip from content edges.
const MARKER = '\u27e6parley:sampled-turn\u27e7';

function sha1(s: string): string {
  return createHash('sha1').update(s).digest('base64');
}

/** A stable hash of one message, including its token ids. */
export function messageFingerprint(m: ConversationMessage): string {
  return sha1(JSON.stringify([m.role, m.content, m.reasoningContent ?? '', m.toolCalls, m.toolCallId ?? '', m.tokenIds ?? []]));
}

function settingsKey(opts: TitoOptions): string {
  return sha1(JSON.stringify([opts.tools, opts.enableThinking]));
}

const closingCache = new WeakMap<ChatModel, Map<boolean, string>>();

/** The text a template puts after the content of a final assistant turn (`<|im_end|>\n` for ChatML). */
function turnClosing(model: ChatModel, enableThinking: boolean, prefix?: TemplateMessage[]): string {
  const probe = prefix ?? [{ role: 'user', content: 'x' }];
  const text = model.render([...probe, { role: 'assistant', content: MARKER }], { addGenerationPrompt: false, enableThinking });
  const at = text.lastIndexOf(MARKER);
  if (at < 0) throw new ParleyError('internal', `chat template of ${model.name} drops assistant content; token-in-token-out needs it`);
  return text.slice(at + MARKER.length);
}

function cachedClosing(model: ChatModel, enableThinking: boolean): string {
  let m = closingCache.get(model);
  if (!m) closingCache.set(model, (m = new Map()));
  let c = m.get(enableThinking);
  if (c === undefined) m.set(enableThinking, (c = turnClosing(model, enableThinking)));
  return c;
}

/**
 * The text that follows the sampled turn at `anchor` up to message `end` (exclusive): what closes the
 * sampled turn (minus the end-of-turn token the model sampled itself), the rendered messages in
 * between, and the generation prompt when asked for.
 */
function deltaAfter(
  model: ChatModel,
  tmpl: TemplateMessage[],
  anchorIds: readonly number[],
  anchor: number,
  end: number,
  opts: TitoOptions,
  addGenerationPrompt: boolean,
): string {
  const msgs = tmpl.slice(0, end);
  msgs[anchor] = { role: 'assistant', content: MARKER };
  const full = model.render(msgs, { tools: opts.tools, addGenerationPrompt, enableThinking: opts.enableThinking });
  const at = full.lastIndexOf(MARKER);
  if (at < 0) throw new ParleyError('internal', `chat template of ${model.name} drops assistant content; token-in-token-out needs it`);
  const after = full.slice(at + MARKER.length);
  let closing = cachedClosing(model, opts.enableThinking);
  if (!after.startsWith(closing)) {
    closing = turnClosing(model, opts.enableThinking, msgs.slice(0, anchor));
    if (!after.startsWith(closing)) {
      throw new ParleyError('internal', `chat template of ${model.name} closes assistant turn ${anchor} differently when messages follow it`);
    }
  }
  // The model usually sampled the end-of-turn token itself (e.g. <|im_end|>); only the rest of the
  // closing text (e.g. "\n") is added. A turn cut off by max_tokens gets the whole closing.
  const lastId = anchorIds[anchorIds.length - 1]!;
  const lastText = model.isAddedToken(lastId) ? model.decode([lastId]) : '';
  const missing = lastText !== '' && closing.startsWith(lastText) ? closing.slice(lastText.length) : closing;
  return missing + after.slice(closing.length);
}

/**
 * Builds the token sequence of a conversation token-in-token-out: the template renders everything up
 * to the first sampled assistant turn; each sampled turn contributes its ids verbatim (loss mask 1);
 * what follows each one is appended as a tokenized textual delta. With `cached` from an earlier call
 * on the same conversation, the tokens of its unchanged prefix are reused instead of rebuilt.
 * Throws ParleyError(invalid_argument) when the template rejects the conversation, internal when the
 * template cannot be rendered incrementally.
 */
export function buildTito(model: ChatModel, messages: ConversationMessage[], opts: TitoOptions, cached?: TitoState): TitoResult {
  const tmpl = messages.map((m) => toTemplateMessage(m, model));
  const anchors: number[] = [];
  messages.forEach((m, i) => m.tokenIds && m.role === 'assistant' && anchors.push(i));
  const fingerprints = anchors.length > 0 ? messages.slice(0, anchors[anchors.length - 1]! + 1).map(messageFingerprint) : [];
  const key = settingsKey(opts);

  let tokenIds: number[] = [];
  let lossMask: number[] = [];
  let prev = -1;
  const anchorEnds = new Map<number, number>();
  if (cached && cached.settingsKey === key) {
    let same = 0;
    while (same < fingerprints.length && same < cached.fingerprints.length && fingerprints[same] === cached.fingerprints[same]) same++;
    for (const a of anchors) {
      const endAt = cached.anchorEnds.get(a);
      if (a >= same || endAt === undefined) break;
      prev = a;
      anchorEnds.set(a, endAt);
    }
    if (prev >= 0) {
      const n = anchorEnds.get(prev)!;
      tokenIds = cached.tokenIds.slice(0, n);
      lossMask = cached.lossMask.slice(0, n);
    }
  }
  const reusedMessages = prev + 1;

  const push = (ids: readonly number[], mask: 0 | 1) => {
    for (const id of ids) {
      tokenIds.push(id);
      lossMask.push(mask);
    }
  };
  for (const a of anchors) {
    if (a <= prev) continue;
    const text =
      prev < 0
        ? model.render(tmpl.slice(0, a), { tools: opts.tools, addGenerationPrompt: true, enableThinking: opts.enableThinking })
        : deltaAfter(model, tmpl, messages[prev]!.tokenIds!, prev, a, opts, true);
    push(model.encode(text), 0);
    push(messages[a]!.tokenIds!, 1);
    anchorEnds.set(a, tokenIds.length);
    prev = a;
  }
  const state: TitoState | undefined =
    anchors.length > 0 ? { settingsKey: key, fingerprints, anchorEnds, tokenIds: [...tokenIds], lossMask: [...lossMask] } : undefined;

  const end = messages.length;
  if (prev < 0) {
    push(model.encode(model.render(tmpl, { tools: opts.tools, addGenerationPrompt: opts.addGenerationPrompt, enableThinking: opts.enableThinking })), 0);
  } else if (end > prev + 1 || opts.addGenerationPrompt) {
    push(model.encode(deltaAfter(model, tmpl, messages[prev]!.tokenIds!, prev, end, opts, opts.addGenerationPrompt)), 0);
  }
  return { tokenIds, lossMask, reusedMessages, ...(state ? { state } : {}) };
}

/**
 * How many tokens differ between two sequences: the tokens of either one outside their longest common
 * subsequence (0 when equal; one substituted token counts 2, one inserted token 1).
 */
export function tokenDifference(a: readonly number[], b: readonly number[]): number {
  const d = diffTokens(a, b);
  return d.aOnly.length + d.bOnly;
}

/** Drift of a token-in-token-out prompt from a full re-render of its conversation. */
export interface DriftReport {
  /** Differing tokens (diff/LCS) that the template does not account for: the drift that matters. */
  tokens: number;
  /**
   * Differing tokens the template produces by design: think blocks (`<think>…</think>` and the whitespace
   * after it, empty ones included) kept verbatim in earlier turns, which a re-render strips.
   */
  expected: number;
  /** True when a part of the sequences exceeded the diff's edit budget and was counted whole (an upper bound). */
  bounded: boolean;
}

/** The single added-token id `text` encodes to, if it is one. */
function addedTokenId(model: ChatModel, text: string): number | undefined {
  const ids = model.encode(text);
  return ids.length === 1 && model.isAddedToken(ids[0]!) ? ids[0] : undefined;
}

/** Marks the tokens of think blocks: `<think>` through `</think>` and the whitespace-only tokens after it. */
function thinkBlockMask(model: ChatModel, ids: readonly number[]): Uint8Array {
  const mask = new Uint8Array(ids.length);
  const open = addedTokenId(model, '<think>');
  const close = addedTokenId(model, '</think>');
  if (open === undefined || close === undefined) return mask;
  for (let i = 0; i < ids.length; i++) {
    if (ids[i] !== open) continue;
    const end = ids.indexOf(close, i + 1);
    if (end < 0) break;
    let j = end + 1;
    while (j < ids.length && model.decode([ids[j]!]).trim() === '' && !model.isAddedToken(ids[j]!)) j++;
    mask.fill(1, i, j);
    i = j - 1;
  }
  return mask;
}

/**
 * Tokenizes a full re-render of the conversation (what a framework that re-tokenizes would train on) and
 * compares it with the token-in-token-out sequence token by token (a diff, aligned message by message at
 * the template's message-start token). Token-in-token-out tokens missing from the re-render inside think
 * blocks are expected (Qwen3's template strips earlier turns' reasoning) and counted apart.
 * Throws like `buildTito`.
 */
export function driftReport(model: ChatModel, messages: ConversationMessage[], opts: TitoOptions, titoIds: readonly number[]): DriftReport {
  const text = model.render(
    messages.map((m) => toTemplateMessage(m, model)),
    { tools: opts.tools, addGenerationPrompt: opts.addGenerationPrompt, enableThinking: opts.enableThinking },
  );
  const rendered = model.encode(text);
  const header = model.encode(model.render([{ role: 'user', content: 'x' }], { addGenerationPrompt: false, enableThinking: opts.enableThinking }))[0];
  const d = diffTokens(titoIds, rendered, header !== undefined && model.isAddedToken(header) ? header : undefined);
  const think = thinkBlockMask(model, titoIds);
  const expected = d.aOnly.reduce((n, i) => n + think[i]!, 0);
  return { tokens: d.aOnly.length + d.bOnly - expected, expected, bounded: d.bounded };
}

/** driftReport's count of unexpected differing tokens. Throws like `buildTito`. */
export function driftTokens(model: ChatModel, messages: ConversationMessage[], opts: TitoOptions, titoIds: readonly number[]): number {
  return driftReport(model, messages, opts, titoIds).tokens;
}
