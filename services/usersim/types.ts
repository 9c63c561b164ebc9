// Shapes shared by the LLM and scripted simulators: a user turn, its usage, one conversation's
// interface, and the mapping of τ²'s stop tokens onto the UserStop enum.

import { UserStop } from '../core/gen/parley/v1/usersim_pb.js';

export { UserStop };

/** τ²'s default opening line of the agent, used when a Start request carries no greeting. */
export const DEFAULT_GREETING = 'Hi! How can I help you today?';

/** The three tokens a simulated user emits to end a conversation (τ² orchestrator, TOOLS.md §4.3). */
export const STOP_TOKENS = {
  '###STOP###': UserStop.STOP,
  '###TRANSFER###': UserStop.TRANSFER,
  '###OUT-OF-SCOPE###': UserStop.OUT_OF_SCOPE,
} as const;

/** Token accounting for one user turn. `cached` turns were billed when first generated, never again. */
export interface TurnUsage {
  promptTokens: number;
  completionTokens: number;
  costUsd: number;
  cached: boolean;
}

/** Where a user turn came from; the service turns this into cache-hit/miss metrics. */
export type TurnSource = 'llm' | 'cache' | 'pregenerated' | 'scripted';

/** One message of the simulated user. `text` keeps any stop token verbatim, as τ² does. */
export interface UserTurn {
  text: string;
  stop: UserStop;
  usage: TurnUsage;
  source: TurnSource;
  /** Backend attempts that failed before this turn succeeded (0 for scripted and cached turns). */
  retries: number;
}

/** The start of a conversation: the agent's greeting and, optionally, a pre-generated first user utterance. */
export interface StartInput {
  greeting: string;
  /** Used verbatim as the user's first message when non-empty (shared by every sample of a group). */
  firstUtterance?: string;
}

/**
 * One simulated user in one conversation. Implementations keep their own history and commit a turn
 * only when it succeeds, so a failed call can be retried with the same input.
 */
export interface UserConversation {
  /** The user's first message. Rejects with ParleyError (see the implementation) and leaves no state behind. */
  start(input: StartInput, signal?: AbortSignal): Promise<UserTurn>;
  /** The user's answer to the agent's latest text. Rejects with ParleyError; history is unchanged on failure. */
  reply(agentText: string, signal?: AbortSignal): Promise<UserTurn>;
}

/** A usage record with nothing billed. */
export function freeUsage(cached = false): TurnUsage {
  return { promptTokens: 0, completionTokens: 0, costUsd: 0, cached };
}

/**
 * The stop reason of a user message: the earliest stop token it contains, or UNSPECIFIED.
 * (τ² checks each token with `in`; when several appear, the first in the text wins here.)
 */
export function detectStop(text: string): UserStop {
  let best: { at: number; stop: UserStop } | undefined;
  for (const [token, stop] of Object.entries(STOP_TOKENS)) {
    const at = text.indexOf(token);
    if (at >= 0 && (!best || at < best.at)) best = { at, stop };
  }
  return best?.stop ?? UserStop.UNSPECIFIED;
}
