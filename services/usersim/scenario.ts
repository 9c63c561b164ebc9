// Renders a τ² task's user_scenario and the user simulator's system prompt exactly as τ² does
// (TOOLS.md §4.4), plus a τ-bench v1-style prompt as an alternative.

import type { StructuredInstructions, UserScenario } from './task-schema.js';

/** Placeholder in τ²'s guideline files that optional persona guidance replaces. */
export const PERSONA_PLACEHOLDER = '<PERSONA_GUIDELINES>';

// Python's str.splitlines boundaries and str.isspace characters, so indentation matches textwrap.indent.
const LINE = /[^\n\r\v\f\x1c\x1d\x1e\x85\u2028\u2029]*(?:\r\n|[\n\r\v\f\x1c\x1d\x1e\x85\u2028\u2029]|$)/gu;
const PY_SPACE_ONLY = /^[\t\n\v\f\r\x1c-\x20\x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*$/u;

/**
 * Python's `textwrap.indent(text, prefix)`: prefixes every line that is not whitespace-only,
 * keeping line endings. Never throws.
 */
export function pyIndent(text: string, prefix: string): string {
  let out = '';
  for (const line of text.match(LINE) ?? []) {
    if (line === '') continue;
    out += PY_SPACE_ONLY.test(line) ? line : prefix + line;
  }
  return out;
}

/** τ²'s rendering of structured instructions (Domain, Reason for call, Known info, Unknown info, Task instructions). */
export function renderStructuredInstructions(s: StructuredInstructions): string {
  const lines = [`Domain: ${s.domain}`, `Reason for call:\n${pyIndent(s.reason_for_call, '\t')}`];
  // τ² tests `is not None`: an empty string still prints its heading.
  if (s.known_info != null) lines.push(`Known info:\n${pyIndent(s.known_info, '\t')}`);
  if (s.unknown_info != null) lines.push(`Unknown info:\n${pyIndent(s.unknown_info, '\t')}`);
  lines.push(`Task instructions:\n${pyIndent(s.task_instructions, '\t')}`);
  return lines.join('\n');
}

/**
 * The `{scenario}` text of a user_scenario: `Persona:` and the tab-indented persona when set, then
 * `Instructions:` and the instructions (structured or a plain string) indented by one tab. Never throws.
 */
export function renderUserScenario(scenario: UserScenario): string {
  const lines: string[] = [];
  if (scenario.persona != null) {
    lines.push('Persona:', pyIndent(scenario.persona, '\t'));
  }
  const instructions =
    typeof scenario.instructions === 'string' ? scenario.instructions : renderStructuredInstructions(scenario.instructions);
  lines.push('Instructions:', pyIndent(instructions, '\t'));
  return lines.join('\n');
}

/**
 * τ²'s user simulator system prompt: `{guidelines}\n\n<scenario>\n{scenario}\n</scenario>`. The
 * guidelines text is used as read from the file (a trailing newline stays, as in τ²); a
 * `<PERSONA_GUIDELINES>` placeholder is replaced by `personaGuidelines` (empty by default). Never throws.
 */
export function renderTau2SystemPrompt(guidelines: string, scenarioText: string, personaGuidelines = ''): string {
  const g = guidelines.split(PERSONA_PLACEHOLDER).join(personaGuidelines);
  return `${g}\n\n<scenario>\n${scenarioText}\n</scenario>`;
}

/**
 * A τ-bench (v1)-style user prompt, in Parley's own words: the user receives its instructions,
 * writes one line per turn, reveals only what the current step needs, and ends with ###STOP###
 * once the goal is met. Never throws.
 */
export function renderV1SystemPrompt(instruction: string): string {
  return [
    'You are role-playing a customer who is chatting with a customer support agent.',
    '',
    `Your instructions:\n${instruction}`,
    '',
    'How to behave:',
    '- Write exactly one line per turn: the next thing the customer would type.',
    '- Share details only when the current step of the conversation needs them; do not recite your instructions.',
    '- Use only facts found in your instructions. If you are asked for something they do not contain, say that you do not know it.',
    '- Speak naturally, in your own words, as the customer and never as the agent.',
    "- When everything your instructions ask for has been done, reply with '###STOP###' alone on the line, and nothing else.",
  ].join('\n');
}

const HEADINGS: Record<string, keyof StructuredInstructions> = {
  'Domain:': 'domain',
  'Reason for call:': 'reason_for_call',
  'Known info:': 'known_info',
  'Unknown info:': 'unknown_info',
  'Task instructions:': 'task_instructions',
};

/**
 * Reads a rendered scenario (the output of renderUserScenario) back into a UserScenario, for callers
 * that send only the `scenario` text. Text without the structured headings becomes plain-string
 * instructions. Best effort, never throws.
 */
export function parseRenderedScenario(text: string): UserScenario {
  const lines = text.split('\n');
  const persona: string[] = [];
  const fields: Partial<Record<keyof StructuredInstructions, string[]>> = {};
  let current: string[] | undefined;
  let section: 'none' | 'persona' | 'instructions' = 'none';
  for (const line of lines) {
    if (line === 'Persona:') section = 'persona';
    else if (line === 'Instructions:') section = 'instructions';
    else if (section === 'persona') persona.push(line.replace(/^\t/, ''));
    else {
      const inner = section === 'instructions' ? line.replace(/^\t/, '') : line;
      const heading = Object.keys(HEADINGS).find((h) => inner.startsWith(h));
      if (heading) {
        current = fields[HEADINGS[heading]!] = [];
        const rest = inner.slice(heading.length).trim();
        if (rest) current.push(rest);
      } else if (current) current.push(inner.replace(/^\t/, ''));
    }
  }
  const join = (k: keyof StructuredInstructions) => fields[k]?.join('\n');
  const personaText = persona.length ? persona.join('\n') : null;
  if (fields.reason_for_call === undefined) {
    const body = section === 'instructions' ? text.slice(text.indexOf('Instructions:\n') + 14).replace(/^\t/gm, '') : text;
    return { persona: personaText, instructions: body };
  }
  return {
    persona: personaText,
    instructions: {
      domain: join('domain') ?? '',
      reason_for_call: join('reason_for_call') ?? '',
      known_info: join('known_info') ?? null,
      unknown_info: join('unknown_info') ?? null,
      task_instructions: join('task_instructions') ?? '',
    },
  };
}

/** Which system prompt the LLM user receives. */
export type PromptStyle = 'tau2' | 'tau-bench-v1';

/**
 * The system prompt for `scenarioText` in the chosen style. `tau2` needs the guidelines text; a
 * missing one throws a plain Error (callers check it at boot, see config.ts).
 */
export function renderSystemPrompt(
  style: PromptStyle,
  scenarioText: string,
  opts: { guidelines?: string; personaGuidelines?: string } = {},
): string {
  if (style === 'tau-bench-v1') return renderV1SystemPrompt(scenarioText);
  if (opts.guidelines === undefined) throw new Error('the tau2 prompt style needs the simulation guidelines text');
  return renderTau2SystemPrompt(opts.guidelines, scenarioText, opts.personaGuidelines);
}
