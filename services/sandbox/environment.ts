// A domain environment for one episode: copy-on-write agent (and user) state, the task's initial state
// applied as tau2 applies it, tool execution, and the state's hash.

import { CowStore } from './cow-store.js';
import { dbHash } from './db-hash.js';
import type { Domain, DomainState, Tau2Task, ToolDef } from './domain.js';
import { ToolError } from './domain.js';
import { echo } from './echo.js';
import { parsePyJson } from './pyjson.js';
import { findTool, runTool, validateToolArguments, type ToolOutput } from './tool-runner.js';

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v) && Object.getPrototypeOf(v) === Object.prototype;
}

/** Deep-merges `update` into the store at `path` (dicts merge, everything else replaces), like tau2's update_db. */
function deepMerge(store: CowStore<any>, path: string[], update: Record<string, unknown>): void {
  for (const [k, v] of Object.entries(update)) {
    const target = path.reduce<any>((node, key) => node?.[key], store.root);
    if (isPlainObject(v) && isPlainObject(target?.[k])) deepMerge(store, [...path, k], v);
    else store.edit(...path)[k] = v;
  }
}

export class Environment {
  readonly state: DomainState;

  constructor(
    readonly domain: Domain,
    state?: DomainState,
  ) {
    this.state = state ?? {
      db: new CowStore(domain.initialDb),
      userDb: domain.initialUserDb === undefined ? undefined : new CowStore(domain.initialUserDb as object),
    };
  }

  /** A copy of this environment that shares all unchanged state (O(1)). */
  fork(): Environment {
    return new Environment(this.domain, { db: this.state.db.fork(), userDb: this.state.userDb?.fork() });
  }

  /** Validates and runs a tool call; tool-level failures come back as `Error: ...` outputs. Throws ToolArgumentError on schema violations. */
  call(name: string, args: unknown): ToolOutput & { tool: ToolDef } {
    const tool = findTool(this.domain, name);
    if (!tool) throw new ToolError(`Tool '${echo(name)}' not found.`);
    validateToolArguments(tool, args);
    return { ...runTool(this.domain, this.state, tool, args), tool };
  }

  /** Runs a function by name as tau2's environment would for initialization actions and gold replays (errors ignored by callers). */
  runFunction(envType: 'user' | 'assistant', name: string, args: Record<string, unknown>): unknown {
    const fn = this.domain.envFunctions?.[name];
    if (fn) return fn(this.state, args);
    const assertion = this.domain.assertions?.[name];
    if (assertion) return assertion(this.state, args);
    if (envType === 'user') throw new ToolError(`User function '${name}' not found.`);
    return this.call(name, args);
  }

  /**
   * Applies a task's initial_state: initialization_data (deep-merge), initialization_actions, then the
   * WRITE tool calls of message_history. Throws when an initialization action fails (bad task data).
   */
  applyInitialState(task: Tau2Task): void {
    const init = task.initial_state;
    if (!init) return;
    const data = init.initialization_data;
    if (data?.agent_data) deepMerge(this.state.db, [], data.agent_data);
    if (data?.user_data && this.state.userDb) deepMerge(this.state.userDb, [], data.user_data);
    for (const action of init.initialization_actions ?? []) {
      const r = this.runFunction(action.env_type, action.func_name, action.arguments ?? {});
      if (r && typeof r === 'object' && 'error' in r && (r as ToolOutput).error) {
        throw new Error(`task ${task.id}: initialization action ${action.func_name} failed: ${(r as ToolOutput).output}`);
      }
    }
    for (const msg of (init.message_history ?? []) as any[]) {
      if (msg?.role !== 'assistant' || !Array.isArray(msg.tool_calls)) continue;
      for (const call of msg.tool_calls) {
        const tool = findTool(this.domain, call.name);
        if (!tool || tool.type !== 'WRITE') continue;
        const args = typeof call.arguments === 'string' ? parsePyJson(call.arguments) : call.arguments;
        validateToolArguments(tool, args);
        runTool(this.domain, this.state, tool, args);
      }
    }
  }

  /** sha256 of the agent DB in tau2's serialization. */
  dbHash(): string {
    return dbHash(this.state.db.root, this.domain.isFloatField);
  }

  /** sha256 of the user DB, or null where the domain has none. */
  userDbHash(): string | null {
    return this.state.userDb ? dbHash(this.state.userDb.root, this.domain.isFloatField) : null;
  }
}
