// Renders a tau2 task's user_scenario as the user simulator's <scenario> text (TOOLS.md §4.4).

import type { Tau2Task } from './domain.js';

/** Python textwrap.indent: prefix every line that is not whitespace-only. */
export function indent(text: string, prefix = '\t'): string {
  return text
    .split(/(?<=\n)/)
    .map((line) => (line.trim() === '' ? line : prefix + line))
    .join('');
}

/** The scenario text of a task; '' when the task has no user_scenario. */
export function renderScenario(task: Tau2Task): string {
  const sc = task.user_scenario;
  if (!sc) return '';
  const lines: string[] = [];
  if (sc.persona) lines.push(`Persona:\n${indent(sc.persona)}`);
  const ins = sc.instructions;
  let body: string;
  if (typeof ins === 'string') {
    body = ins;
  } else {
    const parts: string[] = [];
    if (ins.domain) parts.push(`Domain: ${ins.domain}`);
    if (ins.reason_for_call) parts.push(`Reason for call:\n${indent(ins.reason_for_call)}`);
    if (ins.known_info) parts.push(`Known info:\n${indent(ins.known_info)}`);
    if (ins.unknown_info) parts.push(`Unknown info:\n${indent(ins.unknown_info)}`);
    if (ins.task_instructions) parts.push(`Task instructions:\n${indent(ins.task_instructions)}`);
    body = parts.join('\n');
  }
  lines.push(`Instructions:\n${indent(body)}`);
  return lines.join('\n');
}
