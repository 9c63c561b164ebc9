// The compact ChatML-like chat template of the builtin model for the local domain: tools are never listed
// and, by default, neither is the system prompt (both are fixed; the model learns them from demonstrations).

/** Whether the template renders the system message (`render`) or drops it (`omit`, the default). */
export type SystemPromptMode = 'omit' | 'render';

const ASSISTANT = [
  "{{- '<|im_start|>assistant\\n' + (message.content if message.content is string else '') -}}",
  '{%- if message.tool_calls -%}',
  '{%- for tool_call in message.tool_calls -%}',
  '{%- set call = tool_call.function if tool_call.function is defined else tool_call -%}',
  '{{- \'<tool_call>{"name": "\' + call.name + \'", "arguments": \' -}}',
  // Arguments given as JSON text are kept verbatim; objects are written with Python's separators, as models emit them.
  '{%- if call.arguments is string -%}{{- call.arguments -}}{%- else -%}{{- call.arguments | tojson -}}{%- endif -%}',
  "{{- '}</tool_call>' -}}",
  '{%- endfor -%}',
  '{%- endif -%}',
  "{{- '<|im_end|>\\n' -}}",
].join('\n');

const OTHER = "{{- '<|im_start|>' + message.role + '\\n' + message.content + '<|im_end|>\\n' -}}";

/**
 * The Jinja source: `<|im_start|>role\ncontent<|im_end|>\n` per message, assistant tool calls as
 * `<tool_call>{"name": ..., "arguments": {...}}</tool_call>` right after the assistant's text, and
 * `<|im_start|>assistant\n` as generation prompt. Tool results use the role `tool`. The system prompt is
 * left out by default: it is the same in every episode, and rendered (about 340 tokens, more than a whole
 * 120–250-token episode) it would push the longest episodes past the builtin model's 512 tokens. Never throws.
 */
export function localChatTemplate(system: SystemPromptMode = 'omit'): string {
  return [
    '{%- for message in messages -%}',
    "{%- if message.role == 'assistant' -%}",
    ASSISTANT,
    "{%- elif message.role == 'system' -%}",
    system === 'render' ? OTHER : "{#- the system prompt is not rendered: the domain's policy is learned -#}",
    '{%- else -%}',
    OTHER,
    '{%- endif -%}',
    '{%- endfor -%}',
    "{%- if add_generation_prompt -%}{{- '<|im_start|>assistant\\n' -}}{%- endif -%}",
  ].join('\n');
}
