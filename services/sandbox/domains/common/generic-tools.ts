// The GENERIC tools that airline and retail share: calculate (defined beside its evaluator) and
// transfer_to_human_agents, which ends the episode.

import type { ToolDef } from '../../domain.js';

export { calculate, calculateTool } from './calculate.js';

/** transfer_to_human_agents: no state change; tau2 answers `Transfer successful` and the episode ends. */
export function transferTool(): ToolDef {
  return {
    name: 'transfer_to_human_agents',
    description:
      "Hand the conversation over to a human agent, with a summary of the user's issue. " +
      'Use it only when the user asks for a human or the policy and tools cannot resolve the issue.',
    parameters: {
      type: 'object',
      properties: {
        summary: { type: 'string', description: "A short summary of the user's issue." },
      },
      required: ['summary'],
    },
    type: 'GENERIC',
    terminal: true,
    run: () => 'Transfer successful',
  };
}
