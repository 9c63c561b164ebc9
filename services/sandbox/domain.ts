// The sandbox's domain plug-in interface: a domain is data (DB, policy, tasks) plus tools that read and
// write a copy-on-write DB, and knowledge of which fields are Python floats (for hash parity with tau2).

import type { CowStore } from './cow-store.js';
import type { FloatFieldPredicate } from './pyjson.js';

/** tau2 tool types; only WRITE tools mutate state. */
export type ToolType = 'READ' | 'WRITE' | 'GENERIC' | 'THINK';

/** JSON Schema of a tool's arguments object (the subset Ajv checks before the tool runs). */
export interface JsonSchemaObject {
  type: 'object';
  properties: Record<string, unknown>;
  required: string[];
  additionalProperties?: boolean;
}

/** A tool's failure as the model sees it: the tool message is `Error: <message>`. */
export class ToolError extends Error {
  override name = 'ToolError';
}

/** Per-session state handed to tools. */
export interface DomainState<DB extends object = any> {
  db: CowStore<DB>;
  /** The simulated user's device/state DB (telecom, mock); absent where the user has no tools. */
  userDb?: CowStore<any>;
}

export interface ToolDef<DB extends object = any> {
  name: string;
  description: string;
  parameters: JsonSchemaObject;
  type: ToolType;
  /** Ends the episode when called (transfer_to_human_agents). */
  terminal?: boolean;
  /**
   * Runs the tool. Arguments arrive as parsed by `parsePyJson` (integral floats as PyFloat).
   * Returns a string (passed through) or a value serialized with `pyDumps` in model field order.
   * Throws ToolError for the reference's tool errors; any other throw is also reported as `Error: <message>`.
   */
  run(state: DomainState<DB>, args: Record<string, unknown>): unknown;
}

/** Result of an environment assertion (ENV_ASSERTION reward basis). */
export type AssertionFn<DB extends object = any> = (state: DomainState<DB>, args: Record<string, unknown>) => boolean;

/** tau2 task object, as read from tasks.json (fields Parley uses). */
export interface Tau2Action {
  action_id?: string;
  requestor?: 'assistant' | 'user';
  name: string;
  arguments: Record<string, unknown>;
  info?: string | null;
  compare_args?: string[] | null;
}

export interface Tau2EnvAssertion {
  env_type?: 'assistant' | 'user';
  func_name: string;
  arguments: Record<string, unknown>;
  assert_value?: boolean;
  message?: string | null;
}

export interface Tau2Task {
  id: string;
  description?: unknown;
  user_scenario?: {
    persona?: string | null;
    instructions: string | {
      domain?: string;
      reason_for_call?: string;
      known_info?: string | null;
      unknown_info?: string | null;
      task_instructions?: string;
    };
  };
  initial_state?: {
    initialization_data?: { agent_data?: Record<string, unknown> | null; user_data?: Record<string, unknown> | null } | null;
    initialization_actions?: { env_type: 'user' | 'assistant'; func_name: string; arguments: Record<string, unknown> }[] | null;
    message_history?: unknown[] | null;
  } | null;
  evaluation_criteria?: {
    actions?: Tau2Action[] | null;
    communicate_info?: string[] | null;
    nl_assertions?: string[] | null;
    env_assertions?: Tau2EnvAssertion[] | null;
    reward_basis?: string[] | null;
  } | null;
  ticket?: string;
}

/** A loaded domain: shared, immutable after load; sessions copy on write. */
export interface Domain<DB extends object = any> {
  name: string;
  policy: string;
  tools: ToolDef<DB>[];
  /** The freshly loaded DB in model field order with every optional field present (null). */
  initialDb: DB;
  initialUserDb?: unknown;
  isFloatField: FloatFieldPredicate;
  /** Assertion functions callable from env_assertions / initialization_actions. */
  assertions?: Record<string, AssertionFn<DB>>;
  /** Functions callable only from initialization_actions (not offered to the agent). */
  envFunctions?: Record<string, (state: DomainState<DB>, args: Record<string, unknown>) => unknown>;
}

/** Builds a domain from a tau2 domain folder (db.json, policy.md). Throws with the path on missing/invalid files. */
export type DomainLoader = (dataDir: string) => Domain;
