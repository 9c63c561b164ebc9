// The agent's system prompt and greeting, as τ²-bench frames them (TOOLS.md §4.3–4.4), in our own words.

export const GREETING = 'Hi! How can I help you today?';

export const AGENT_INSTRUCTION = [
  'You are a customer service agent that helps the user according to the <policy> provided below.',
  'In each turn you can either send a message to the user or make a tool call; you cannot do both in the same turn.',
  'Try to be helpful and always follow the policy. Always make sure you generate valid JSON only.',
].join('\n');

/** `<instructions>…</instructions>\n<policy>…</policy>` for a domain policy. */
export function agentSystemPrompt(policy: string): string {
  return `<instructions>\n${AGENT_INSTRUCTION}\n</instructions>\n<policy>\n${policy}\n</policy>`;
}
