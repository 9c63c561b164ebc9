// Hermes tool-call parsing: valid calls, malformed JSON, missing name or arguments, unterminated
// blocks, several calls, MUA first-call-only mode and Qwen3 reasoning blocks.

import { describe, expect, it } from 'vitest';
import { parseAssistantText, rawTopLevelValue } from './tool-call-parser.js';

describe('parseAssistantText', () => {
  it('parses a valid call and keeps the arguments text verbatim', () => {
    const r = parseAssistantText('Let me check.\n<tool_call>\n{"name": "get_order", "arguments": {"order_id": "#W1", "n": [1, {"a": "}"}]}}\n</tool_call>');
    expect(r.parseError).toBeUndefined();
    expect(r.content).toBe('Let me check.');
    expect(r.toolCalls).toEqual([{ name: 'get_order', argumentsJson: '{"order_id": "#W1", "n": [1, {"a": "}"}]}' }]);
  });

  it('treats plain text as a plain reply', () => {
    expect(parseAssistantText('Your order shipped.')).toEqual({ content: 'Your order shipped.', reasoningContent: '', toolCalls: [], droppedToolCalls: 0 });
  });

  it('reports malformed JSON', () => {
    const r = parseAssistantText('<tool_call>\n{"name": "get_order", "arguments": {"order_id": }\n</tool_call>');
    expect(r.toolCalls).toEqual([]);
    expect(r.parseError).toMatch(/^tool call 1: invalid JSON/);
  });

  it('reports a missing name', () => {
    expect(parseAssistantText('<tool_call>{"arguments": {}}</tool_call>').parseError).toBe('tool call 1: missing "name" (a non-empty string)');
    expect(parseAssistantText('<tool_call>{"name": "", "arguments": {}}</tool_call>').parseError).toMatch(/missing "name"/);
  });

  it('reports missing or non-object arguments', () => {
    expect(parseAssistantText('<tool_call>{"name": "f"}</tool_call>').parseError).toMatch(/missing "arguments"/);
    expect(parseAssistantText('<tool_call>{"name": "f", "arguments": [1]}</tool_call>').parseError).toMatch(/must be a JSON object/);
    expect(parseAssistantText('<tool_call>["f"]</tool_call>').parseError).toMatch(/expected a JSON object/);
  });

  it('accepts arguments given as a JSON string holding an object', () => {
    const r = parseAssistantText('<tool_call>{"name": "f", "arguments": "{\\"a\\": 1}"}</tool_call>');
    expect(r.toolCalls).toEqual([{ name: 'f', argumentsJson: '{"a": 1}' }]);
  });

  it('reports an unterminated block (e.g. cut by max_tokens)', () => {
    const r = parseAssistantText('<tool_call>\n{"name": "f", "argu');
    expect(r.parseError).toBe('tool call 1: unterminated <tool_call> (no </tool_call>)');
  });

  it('parses several calls; one malformed call makes the whole reply malformed', () => {
    const two = '<tool_call>{"name": "a", "arguments": {}}</tool_call>\n<tool_call>{"name": "b", "arguments": {"x": 1}}</tool_call>';
    expect(parseAssistantText(two).toolCalls.map((c) => c.name)).toEqual(['a', 'b']);
    const bad = '<tool_call>{"name": "a", "arguments": {}}</tool_call><tool_call>{oops}</tool_call>';
    const r = parseAssistantText(bad);
    expect(r.toolCalls).toEqual([]);
    expect(r.parseError).toMatch(/^tool call 2: invalid JSON/);
  });

  it('MUA mode keeps only the first call and does not parse the rest', () => {
    const text = '<tool_call>{"name": "a", "arguments": {}}</tool_call>\n<tool_call>{oops}</tool_call>\n<tool_call>{"name": "c", "arguments": {}}</tool_call>';
    const r = parseAssistantText(text, { firstToolCallOnly: true });
    expect(r.parseError).toBeUndefined();
    expect(r.toolCalls).toEqual([{ name: 'a', argumentsJson: '{}' }]);
    expect(r.droppedToolCalls).toBe(2);
  });

  it('MUA mode still reports a malformed first call', () => {
    const r = parseAssistantText('<tool_call>{"name": 1, "arguments": {}}</tool_call><tool_call>{"name": "b", "arguments": {}}</tool_call>', { firstToolCallOnly: true });
    expect(r.parseError).toMatch(/tool call 1: missing "name"/);
  });

  it('splits Qwen3 reasoning from content and tool calls', () => {
    const r = parseAssistantText('<think>\nI need the order.\n</think>\n\n<tool_call>\n{"name": "get_order", "arguments": {"id": "1"}}\n</tool_call>');
    expect(r.reasoningContent).toBe('I need the order.');
    expect(r.content).toBe('');
    expect(r.toolCalls).toHaveLength(1);
    expect(parseAssistantText('<think>\n\n</think>\n\nHi!')).toMatchObject({ reasoningContent: '', content: 'Hi!' });
    expect(parseAssistantText('<think>\nstill thinking')).toMatchObject({ reasoningContent: 'still thinking', content: '' });
  });

  it('ignores tool-call syntax inside reasoning', () => {
    const r = parseAssistantText('<think>maybe <tool_call>{bad}</tool_call></think>Done.');
    expect(r.parseError).toBeUndefined();
    expect(r.content).toBe('Done.');
  });
});

describe('rawTopLevelValue', () => {
  it('finds a top-level value, skipping nested keys of the same name', () => {
    expect(rawTopLevelValue('{"x": {"arguments": 1}, "arguments" : {"a": [1, 2]} }', 'arguments')).toBe('{"a": [1, 2]}');
    expect(rawTopLevelValue('{"name": "f"}', 'arguments')).toBeUndefined();
    expect(rawTopLevelValue('{"s": "a\\"}", "arguments": 5}', 'arguments')).toBe('5');
  });
});
