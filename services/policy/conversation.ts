// Conversations in one internal shape, built from protobuf ChatMessages or OpenAI-style JSON with every
// field validated (errors name the field), and turned into chat-template messages.

import { Role, type ChatMessage, type ToolSchema } from '../core/gen/parley/v1/chat_pb.js';
import { invalidArgument } from '../core/index.js';
import type { ChatModel, TemplateMessage, TemplateTool } from './chat-model.js';
import { parseAssistantText } from './tool-call-parser.js';

export type ConversationRole = 'system' | 'user' | 'assistant' | 'tool';

export interface ConversationToolCall {
  id: string;
  name: string;
  /** JSON object text, verbatim. */
  argumentsJson: string;
}

export interface ConversationMessage {
  role: ConversationRole;
  content: string;
  reasoningContent?: string;
  toolCalls: ConversationToolCall[];
  toolCallId?: string;
  /** Assistant only: the exact sampled ids, used verbatim (token-in-token-out). */
  tokenIds?: number[];
}

export interface ConversationTool {
  name: string;
  description: string;
  parameters: Record<string, unknown>;
}

const ROLE_NAMES: Record<number, ConversationRole> = {
  [Role.SYSTEM]: 'system',
  [Role.USER]: 'user',
  [Role.ASSISTANT]: 'assistant',
  [Role.TOOL]: 'tool',
};

function jsonObject(text: string, field: string): Record<string, unknown> {
  if (text.trim() === '') return {};
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch (e) {
    throw invalidArgument(field, `not valid JSON (${(e as Error).message}); expected a JSON object`);
  }
  if (!v || typeof v !== 'object' || Array.isArray(v)) throw invalidArgument(field, 'expected a JSON object');
  return v as Record<string, unknown>;
}

/**
 * Checks a conversation against a tokenizer: non-empty, assistant token ids within the vocabulary,
 * tool-call arguments JSON objects, and (when a reply is to be generated) not ending with an assistant
 * turn. Throws ParleyError(invalid_argument) naming the field, e.g. `messages[2].token_ids[5]`.
 */
export function validateConversation(
  messages: ConversationMessage[],
  vocabSize: number,
  opts: { field?: string; forGeneration?: boolean } = {},
): void {
  const field = opts.field ?? 'messages';
  if (messages.length === 0) throw invalidArgument(field, 'the conversation is empty; send at least one user message');
  messages.forEach((m, i) => {
    const at = `${field}[${i}]`;
    if (m.tokenIds !== undefined) {
      if (m.role !== 'assistant') throw invalidArgument(`${at}.token_ids`, `only assistant messages carry sampled token ids, not ${m.role}`);
      if (m.tokenIds.length === 0) throw invalidArgument(`${at}.token_ids`, 'empty; omit token_ids for an assistant turn that was not sampled');
      if (i === 0) throw invalidArgument(`${at}.token_ids`, 'a sampled assistant turn cannot open the conversation: it needs the prompt it was sampled from');
      m.tokenIds.forEach((id, j) => {
        if (!Number.isInteger(id) || id < 0 || id >= vocabSize) {
          throw invalidArgument(`${at}.token_ids[${j}]`, `${id} is outside the vocabulary [0, ${vocabSize})`);
        }
      });
    }
    m.toolCalls.forEach((c, j) => {
      if (c.name.trim() === '') throw invalidArgument(`${at}.tool_calls[${j}].name`, 'required');
      jsonObject(c.argumentsJson, `${at}.tool_calls[${j}].arguments`);
    });
  });
  const last = messages[messages.length - 1]!;
  if (opts.forGeneration && last.role === 'assistant') {
    throw invalidArgument(`${field}[${messages.length - 1}].role`, 'the conversation ends with an assistant turn; the policy answers a user, tool or system message');
  }
}

/** Converts protobuf messages. Throws ParleyError(invalid_argument) for an unknown or unspecified role. */
export function fromProtoMessages(messages: readonly ChatMessage[]): ConversationMessage[] {
  return messages.map((m, i) => {
    const role = ROLE_NAMES[m.role];
    if (!role) throw invalidArgument(`messages[${i}].role`, `unknown role ${m.role}; accepted: ROLE_SYSTEM, ROLE_USER, ROLE_ASSISTANT, ROLE_TOOL`);
    return {
      role,
      content: m.content,
      ...(m.reasoningContent ? { reasoningContent: m.reasoningContent } : {}),
      toolCalls: m.toolCalls.map((c) => ({ id: c.id, name: c.name, argumentsJson: c.argumentsJson || '{}' })),
      ...(m.toolCallId ? { toolCallId: m.toolCallId } : {}),
      ...(m.tokenIds.length > 0 ? { tokenIds: [...m.tokenIds] } : {}),
    };
  });
}

/** Converts protobuf tool schemas. Throws ParleyError(invalid_argument) for a missing name or bad parameters JSON. */
export function fromProtoTools(tools: readonly ToolSchema[]): ConversationTool[] {
  return tools.map((t, i) => {
    if (t.name.trim() === '') throw invalidArgument(`tools[${i}].name`, 'required');
    return { name: t.name, description: t.description, parameters: jsonObject(t.parametersJson, `tools[${i}].parameters_json`) };
  });
}

function textContent(v: unknown, field: string): string {
  if (v === undefined || v === null) return '';
  if (typeof v === 'string') return v;
  if (Array.isArray(v)) {
    return v
      .map((part, k) => {
        if (part && typeof part === 'object' && (part as { type?: unknown }).type === 'text' && typeof (part as { text?: unknown }).text === 'string') {
          return (part as { text: string }).text;
        }
        throw invalidArgument(`${field}[${k}]`, 'only text content parts ({"type": "text", "text": ...}) are accepted');
      })
      .join('');
  }
  throw invalidArgument(field, 'expected a string, null or a list of text parts');
}

/**
 * Converts OpenAI-style messages (`role`, `content`, `tool_calls[].function.{name, arguments}`,
 * `tool_call_id`, `reasoning_content` or `reasoning` (the name vLLM 0.32's chat answers use), and Parley's
 * `token_ids`). Throws ParleyError(invalid_argument)
 * naming the field, under the `field` prefix.
 */
export function fromOpenAIMessages(value: unknown, field = 'messages'): ConversationMessage[] {
  if (!Array.isArray(value)) throw invalidArgument(field, 'expected a list of messages');
  return value.map((raw, i) => {
    const at = `${field}[${i}]`;
    if (!raw || typeof raw !== 'object') throw invalidArgument(at, 'expected a message object');
    const m = raw as Record<string, unknown>;
    const role = m.role;
    if (role !== 'system' && role !== 'user' && role !== 'assistant' && role !== 'tool') {
      throw invalidArgument(`${at}.role`, `unknown role ${JSON.stringify(role)}; accepted: system, user, assistant, tool`);
    }
    const calls = m.tool_calls === undefined || m.tool_calls === null ? [] : m.tool_calls;
    if (!Array.isArray(calls)) throw invalidArgument(`${at}.tool_calls`, 'expected a list');
    const toolCalls = calls.map((c: unknown, j: number) => {
      const fn = (c as { function?: Record<string, unknown> } | null)?.function;
      if (!fn || typeof fn.name !== 'string') throw invalidArgument(`${at}.tool_calls[${j}].function.name`, 'required');
      const args = fn.arguments === undefined ? '{}' : typeof fn.arguments === 'string' ? fn.arguments : JSON.stringify(fn.arguments);
      const id = (c as { id?: unknown }).id;
      return { id: typeof id === 'string' ? id : `call_${i}_${j}`, name: fn.name, argumentsJson: args };
    });
    let tokenIds: number[] | undefined;
    if (m.token_ids !== undefined && m.token_ids !== null) {
      if (!Array.isArray(m.token_ids)) throw invalidArgument(`${at}.token_ids`, 'expected a list of integers');
      tokenIds = m.token_ids.map((id: unknown, j: number) => {
        if (typeof id !== 'number' || !Number.isInteger(id)) throw invalidArgument(`${at}.token_ids[${j}]`, 'expected an integer token id');
        return id;
      });
    }
    const reasoning = [m.reasoning_content, m.reasoning].find((r): r is string => typeof r === 'string' && r !== '');
    return {
      role,
      content: textContent(m.content, `${at}.content`),
      ...(reasoning ? { reasoningContent: reasoning } : {}),
      toolCalls,
      ...(typeof m.tool_call_id === 'string' && m.tool_call_id ? { toolCallId: m.tool_call_id } : {}),
      ...(tokenIds ? { tokenIds } : {}),
    };
  });
}

/** Converts OpenAI-style tools (`{type: "function", function: {name, description, parameters}}`). Throws ParleyError(invalid_argument). */
export function fromOpenAITools(value: unknown, field = 'tools'): ConversationTool[] {
  if (value === undefined || value === null) return [];
  if (!Array.isArray(value)) throw invalidArgument(field, 'expected a list of tools');
  return value.map((raw, i) => {
    const fn = (raw as { function?: Record<string, unknown> } | null)?.function ?? (raw as Record<string, unknown> | null);
    if (!fn || typeof fn.name !== 'string' || fn.name === '') throw invalidArgument(`${field}[${i}].function.name`, 'required');
    const params = fn.parameters ?? {};
    if (typeof params !== 'object' || Array.isArray(params)) throw invalidArgument(`${field}[${i}].function.parameters`, 'expected a JSON Schema object');
    return { name: fn.name, description: typeof fn.description === 'string' ? fn.description : '', parameters: params as Record<string, unknown> };
  });
}

/** Tool schemas in the template's shape. */
export function toTemplateTools(tools: readonly ConversationTool[]): TemplateTool[] {
  return tools.map((t) => ({ type: 'function', function: { name: t.name, description: t.description, parameters: t.parameters } }));
}

/**
 * One message in the template's shape. An assistant message that carries only token ids gets its
 * content, reasoning and tool calls from the decoded ids, so templates render what was sampled.
 */
export function toTemplateMessage(m: ConversationMessage, model: ChatModel): TemplateMessage {
  let { content, reasoningContent, toolCalls } = m;
  if (m.role === 'assistant' && m.tokenIds && content === '' && toolCalls.length === 0 && !reasoningContent) {
    const parsed = parseAssistantText(model.decode(m.tokenIds, true));
    content = parsed.content;
    reasoningContent = parsed.reasoningContent || undefined;
    toolCalls = parsed.toolCalls.map((c, j) => ({ id: `call_${j}`, name: c.name, argumentsJson: c.argumentsJson }));
  }
  const out: TemplateMessage = { role: m.role, content };
  if (reasoningContent) out.reasoning_content = reasoningContent;
  if (m.toolCallId) out.tool_call_id = m.toolCallId;
  if (toolCalls.length > 0) {
    out.tool_calls = toolCalls.map((c) => ({
      id: c.id,
      type: 'function',
      function: {
        name: c.name,
        arguments: model.toolArgumentsAsString ? c.argumentsJson : (JSON.parse(c.argumentsJson || '{}') as Record<string, unknown>),
      },
    }));
  }
  return out;
}
