// Hermes-style tool-call parsing (`<tool_call>{"name": ..., "arguments": {...}}</tool_call>`, as Qwen3
// emits it) plus Qwen3's `<think>…</think>` reasoning split; malformed calls are reported, never guessed.

export interface ParsedToolCall {
  name: string;
  /** The arguments object's JSON text exactly as the model emitted it. */
  argumentsJson: string;
}

export interface ParsedAssistantText {
  /** Text outside reasoning and tool-call blocks, trimmed. */
  content: string;
  /** Text of the `<think>` block, trimmed; '' when there is none. */
  reasoningContent: string;
  toolCalls: ParsedToolCall[];
  /** Why the tool calls did not parse; undefined when they did (or there were none). */
  parseError?: string;
  /** Well-formed or not, how many calls were dropped by first-call-only (MUA) mode. */
  droppedToolCalls: number;
}

const OPEN = '<tool_call>';
const CLOSE = '</tool_call>';

/** Finds the raw text of a top-level key's value in a JSON object text that is known to parse. */
export function rawTopLevelValue(json: string, key: string): string | undefined {
  let depth = 0;
  let i = 0;
  let expectKey = false;
  while (i < json.length) {
    const c = json[i]!;
    if (c === '"') {
      const end = skipString(json, i);
      if (depth === 1 && expectKey) {
        const k = JSON.parse(json.slice(i, end)) as string;
        let j = end;
        while (/\s/.test(json[j] ?? '')) j++;
        j++; // the colon
        while (/\s/.test(json[j] ?? '')) j++;
        const valueEnd = skipValue(json, j);
        if (k === key) return json.slice(j, valueEnd);
        i = valueEnd;
        expectKey = false;
        continue;
      }
      i = end;
      continue;
    }
    if (c === '{' || c === '[') {
      depth++;
      expectKey = depth === 1 && c === '{';
    } else if (c === '}' || c === ']') depth--;
    else if (c === ',' && depth === 1) expectKey = true;
    i++;
  }
  return undefined;
}

function skipString(s: string, start: number): number {
  let i = start + 1;
  while (i < s.length) {
    if (s[i] === '\\') i += 2;
    else if (s[i] === '"') return i + 1;
    else i++;
  }
  return s.length;
}

function skipValue(s: string, start: number): number {
  const c = s[start];
  if (c === '"') return skipString(s, start);
  if (c === '{' || c === '[') {
    let depth = 0;
    let i = start;
    while (i < s.length) {
      const ch = s[i]!;
      if (ch === '"') {
        i = skipString(s, i);
        continue;
      }
      if (ch === '{' || ch === '[') depth++;
      else if (ch === '}' || ch === ']') {
        depth--;
        if (depth === 0) return i + 1;
      }
      i++;
    }
    return s.length;
  }
  let i = start;
  while (i < s.length && !/[,}\]\s]/.test(s[i]!)) i++;
  return i;
}

function parseOne(body: string, n: number): ParsedToolCall | string {
  const text = body.trim();
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (e) {
    return `tool call ${n}: invalid JSON (${(e as Error).message})`;
  }
  if (!value || typeof value !== 'object' || Array.isArray(value)) return `tool call ${n}: expected a JSON object with "name" and "arguments"`;
  const obj = value as Record<string, unknown>;
  if (typeof obj.name !== 'string' || obj.name.trim() === '') return `tool call ${n}: missing "name" (a non-empty string)`;
  const args = obj.arguments;
  if (args === undefined) return `tool call ${n}: missing "arguments" (a JSON object)`;
  if (typeof args === 'string') {
    // Some models emit the arguments object as a JSON string; accept it when it holds an object.
    try {
      const inner = JSON.parse(args) as unknown;
      if (inner && typeof inner === 'object' && !Array.isArray(inner)) return { name: obj.name, argumentsJson: args };
    } catch {
      // fall through to the error below
    }
    return `tool call ${n}: "arguments" is a string that does not hold a JSON object`;
  }
  if (typeof args !== 'object' || args === null || Array.isArray(args)) return `tool call ${n}: "arguments" must be a JSON object`;
  return { name: obj.name, argumentsJson: rawTopLevelValue(text, 'arguments') ?? JSON.stringify(args) };
}

function splitReasoning(text: string): { reasoning: string; rest: string } {
  const close = text.indexOf('</think>');
  if (close >= 0) {
    const before = text.slice(0, close);
    const open = before.indexOf('<think>');
    return { reasoning: (open >= 0 ? before.slice(open + 7) : before).trim(), rest: text.slice(close + 8) };
  }
  const open = text.indexOf('<think>');
  if (open >= 0 && text.slice(0, open).trim() === '') return { reasoning: text.slice(open + 7).trim(), rest: '' };
  return { reasoning: '', rest: text };
}

/**
 * Parses a decoded assistant completion. Never throws: a malformed call (bad JSON, no name, arguments
 * not an object, an unterminated block) yields `parseError` and no tool calls. With `firstToolCallOnly`
 * (MUA mode) only the first block is parsed and the rest are dropped and counted.
 */
export function parseAssistantText(text: string, opts: { firstToolCallOnly?: boolean } = {}): ParsedAssistantText {
  const { reasoning, rest } = splitReasoning(text);
  const contentParts: string[] = [];
  const toolCalls: ParsedToolCall[] = [];
  let parseError: string | undefined;
  let dropped = 0;
  let pos = 0;
  let n = 0;
  while (pos < rest.length) {
    const open = rest.indexOf(OPEN, pos);
    if (open < 0) {
      contentParts.push(rest.slice(pos));
      break;
    }
    contentParts.push(rest.slice(pos, open));
    const close = rest.indexOf(CLOSE, open + OPEN.length);
    n++;
    if (opts.firstToolCallOnly && n > 1) {
      dropped++;
      pos = close < 0 ? rest.length : close + CLOSE.length;
      continue;
    }
    if (close < 0) {
      parseError ??= `tool call ${n}: unterminated ${OPEN} (no ${CLOSE})`;
      break;
    }
    const parsed = parseOne(rest.slice(open + OPEN.length, close), n);
    if (typeof parsed === 'string') parseError ??= parsed;
    else toolCalls.push(parsed);
    pos = close + CLOSE.length;
  }
  return {
    content: contentParts.join('').trim(),
    reasoningContent: reasoning,
    toolCalls: parseError ? [] : toolCalls,
    ...(parseError ? { parseError } : {}),
    droppedToolCalls: dropped,
  };
}
