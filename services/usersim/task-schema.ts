// The parts of a τ² task that the user simulator reads (user_scenario, plus Parley's optional
// `parley_user` block for scripted users), validated with zod so bad task_json fails with a field name.

import { z } from 'zod';
import { ParleyError, formatIssues } from '../core/index.js';

/** τ²'s StructuredUserInstructions (retail, airline, telecom). Null and absent fields mean "not set". */
export const StructuredInstructionsSchema = z.object({
  domain: z.string(),
  reason_for_call: z.string(),
  known_info: z.string().nullish(),
  unknown_info: z.string().nullish(),
  task_instructions: z.string(),
});
export type StructuredInstructions = z.infer<typeof StructuredInstructionsSchema>;

/** One fact a scripted user can reveal: shown when the agent's request mentions any keyword. */
export const ParleyFactSchema = z.object({
  /** Phrases that, in the agent's request, ask for this fact (matched case-insensitively, whole words). */
  keywords: z.array(z.string().min(1)).min(1),
  /** The value; a list holds alternatives revealed one per request (e.g. two email addresses). */
  value: z.union([z.string().min(1), z.array(z.string().min(1)).min(1)]),
  /** How to say it, with `{value}` as placeholder; default `My <key> is {value}`. */
  phrase: z.string().optional(),
});

/**
 * Parley's extension for scripted users (not part of τ²): the explicit script a generated domain
 * writes so that the user's first message lacks what the tools need and the agent has to ask.
 */
export const ParleyUserSchema = z.object({
  /** The user's first message, said verbatim. */
  opening: z.string().min(1),
  /** Facts by name (e.g. "zip code"), each revealed only when the agent asks for it. */
  facts: z.record(z.string(), ParleyFactSchema).default({}),
  /** Things the user does not know: asked about them, the user says so. */
  unknown: z.record(z.string(), z.object({ keywords: z.array(z.string().min(1)).min(1) })).default({}),
  /** Agent phrases that mean the goal is done (case-insensitive substrings); replace the default cues. */
  goal_phrases: z.array(z.string().min(1)).optional(),
  /** Further lines revealed, one per open question of the agent ("anything else?"). */
  details: z.array(z.string().min(1)).default([]),
  /** What the user says when asked to confirm; default "Yes, please go ahead." */
  confirm_reply: z.string().min(1).optional(),
});
export type ParleyUser = z.infer<typeof ParleyUserSchema>;

/** τ²'s UserScenario: a persona and either structured instructions or a plain string (mock domain). */
export const UserScenarioSchema = z.object({
  persona: z.string().nullish(),
  instructions: z.union([z.string(), StructuredInstructionsSchema]),
  parley_user: ParleyUserSchema.optional(),
});
export type UserScenario = z.infer<typeof UserScenarioSchema>;

/** A task as far as the user simulator cares; other fields pass through untouched. */
export const TaskSchema = z.looseObject({
  id: z.union([z.string(), z.number()]).optional(),
  user_scenario: UserScenarioSchema,
  parley_user: ParleyUserSchema.optional(),
});
export type Task = z.infer<typeof TaskSchema>;

/**
 * Parses a task's JSON text. Throws ParleyError(invalid_argument, field `task_json…`) when the text is
 * not JSON or lacks a valid `user_scenario`; the message names the bad path and what is accepted.
 */
export function parseTaskJson(text: string, field = 'task_json'): Task {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (e) {
    throw new ParleyError('invalid_argument', `${field}: not valid JSON (${(e as Error).message})`, { field, cause: e });
  }
  const r = TaskSchema.safeParse(raw);
  if (!r.success) {
    const path = r.error.issues[0]?.path.join('.');
    const at = path ? `${field}.${path}` : field;
    throw new ParleyError(
      'invalid_argument',
      `${field}: not a τ² task with a user_scenario {persona?, instructions: string | {domain, reason_for_call, known_info?, unknown_info?, task_instructions}} (${formatIssues(r.error)})`,
      { field: at },
    );
  }
  return r.data;
}

/** The Parley scripted-user block of a task, wherever it sits (task top level wins over user_scenario). */
export function parleyUserOf(task: Task): ParleyUser | undefined {
  return task.parley_user ?? task.user_scenario.parley_user;
}
