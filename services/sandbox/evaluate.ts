// tau2's reward: DB hash against the gold replay, COMMUNICATE, ACTION and ENV_ASSERTION, the product over
// the task's reward_basis, and 0 for episodes that did not end by a stop. NL_ASSERTION needs an LLM judge
// and is reported as skipped.

import type { Domain, Tau2Task } from './domain.js';
import { dbHash } from './db-hash.js';
import { Environment } from './environment.js';
import { PyFloat, PyInt, parsePyJson, sameSortedDump } from './pyjson.js';
import { rewardBasis, unscoredComponents, type ComponentName } from './reward-basis.js';

export type { ComponentName };

export interface EvalMessage {
  role: 'system' | 'user' | 'assistant' | 'tool';
  content: string;
  toolCalls: { name: string; argumentsJson: string }[];
}

export interface RewardComponentResult {
  name: ComponentName;
  value: number;
  inBasis: boolean;
  detail: string;
}

export interface EvaluationResult {
  reward: number;
  components: RewardComponentResult[];
  /** The episode's DB hash and the gold one; empty when evaluated with `hashes: false`. */
  dbHash: string;
  goldDbHash: string;
  skipped: string[];
}

/** Python `==` over JSON values: 1 == 1.0, dicts by keys, lists in order. */
export function pyEquals(a: unknown, b: unknown): boolean {
  const na = a instanceof PyFloat || a instanceof PyInt ? a.value : a;
  const nb = b instanceof PyFloat || b instanceof PyInt ? b.value : b;
  if (typeof na === 'number' && typeof nb === 'number') return na === nb;
  if (typeof na === 'boolean' || typeof nb === 'boolean') {
    // Python: True == 1 and False == 0.
    const ta = typeof na === 'boolean' ? Number(na) : na;
    const tb = typeof nb === 'boolean' ? Number(nb) : nb;
    return ta === tb;
  }
  if (na === null || nb === null || typeof na !== 'object' || typeof nb !== 'object') return na === nb;
  if (Array.isArray(na) !== Array.isArray(nb)) return false;
  if (Array.isArray(na)) {
    const lb = nb as unknown[];
    return na.length === lb.length && na.every((x, i) => pyEquals(x, lb[i]));
  }
  const ka = Object.keys(na);
  const kb = Object.keys(nb);
  return ka.length === kb.length && ka.every((k) => k in nb && pyEquals((na as any)[k], (nb as any)[k]));
}

/**
 * A task's state after its gold actions. The hashes are computed the first time a caller asks for them:
 * the reward only needs to know whether an episode's state equals this one (see sameSortedDump).
 */
export interface GoldState {
  db: unknown;
  userDb: unknown;
  dbHash?: string;
  userDbHash?: string | null;
}

/** Gold states per task id. */
export type GoldCache = Map<string, GoldState>;

/** Replays the task's gold actions on a fresh environment (errors ignored, as tau2 does). */
export function goldState(domain: Domain, task: Tau2Task): GoldState {
  const env = new Environment(domain);
  env.applyInitialState(task);
  for (const action of task.evaluation_criteria?.actions ?? []) {
    try {
      env.runFunction(action.requestor ?? 'assistant', action.name, action.arguments ?? {});
    } catch {
      // tau2 ignores gold-action exceptions; tools mutate nothing before failing.
    }
  }
  return { db: env.state.db.root, userDb: env.state.userDb?.root };
}

/** The gold state's hashes (computed once, then remembered in `gold`). */
export function goldStateHashes(domain: Domain, gold: GoldState): { db: string; user: string | null } {
  gold.dbHash ??= dbHash(gold.db, domain.isFloatField);
  if (gold.userDbHash === undefined) gold.userDbHash = gold.userDb === undefined ? null : dbHash(gold.userDb, domain.isFloatField);
  return { db: gold.dbHash, user: gold.userDbHash };
}

/** The task's DB hashes after its gold actions (the figures tau2's gold replay reports). */
export function goldHashes(domain: Domain, task: Tau2Task): { db: string; user: string | null } {
  return goldStateHashes(domain, goldState(domain, task));
}

/** The task's gold state from `cache`, computed and remembered there when missing. */
export function cachedGoldState(domain: Domain, task: Tau2Task, cache?: GoldCache): GoldState {
  let gold = cache?.get(task.id);
  if (!gold) {
    gold = goldState(domain, task);
    cache?.set(task.id, gold);
  }
  return gold;
}

function communicate(task: Tau2Task, messages: EvalMessage[]): { value: number; detail: string } {
  const infos = task.evaluation_criteria?.communicate_info ?? [];
  if (infos.length === 0) return { value: 1, detail: 'no communicate_info' };
  const texts = messages.filter((m) => m.role === 'assistant' && m.content).map((m) => m.content.toLowerCase().replace(/,/g, ''));
  const missing = infos.filter((info) => !texts.some((t) => t.includes(info.toLowerCase())));
  return missing.length === 0
    ? { value: 1, detail: `all ${infos.length} communicated` }
    : { value: 0, detail: `not communicated: ${missing.map((s) => JSON.stringify(s)).join(', ')}` };
}

/**
 * The task's initial_state.message_history as evaluation messages. tau2's orchestrator starts the
 * trajectory with it (orchestrator.py initialize: `self.trajectory = message_history`), so its tool calls
 * and the agent's words there count for ACTION and COMMUNICATE as the episode's own do.
 */
export function historyMessages(task: Tau2Task): EvalMessage[] {
  const out: EvalMessage[] = [];
  for (const m of (task.initial_state?.message_history ?? []) as any[]) {
    if (m?.role !== 'assistant' && m?.role !== 'user' && m?.role !== 'system' && m?.role !== 'tool') continue;
    const calls = Array.isArray(m.tool_calls) ? m.tool_calls : [];
    out.push({
      role: m.role,
      content: typeof m.content === 'string' ? m.content : '',
      toolCalls: calls.map((c: any) => ({
        name: String(c?.name ?? ''),
        argumentsJson: typeof c?.arguments === 'string' ? c.arguments : JSON.stringify(c?.arguments ?? {}),
      })),
    });
  }
  return out;
}

function actions(task: Tau2Task, messages: EvalMessage[]): { value: number; detail: string } {
  const gold = task.evaluation_criteria?.actions ?? [];
  const calls: { name: string; args: Record<string, unknown> }[] = [];
  for (const m of messages) {
    if (m.role !== 'assistant' && m.role !== 'user') continue;
    for (const c of m.toolCalls) {
      let args: unknown;
      try {
        args = parsePyJson(c.argumentsJson || '{}');
      } catch {
        continue; // an unparseable call matches nothing
      }
      if (args && typeof args === 'object' && !Array.isArray(args)) calls.push({ name: c.name, args: args as Record<string, unknown> });
    }
  }
  const unmatched = gold.filter(
    (g) =>
      !calls.some((c) => {
        if (c.name !== g.name) return false;
        const keys = g.compare_args ?? Object.keys(c.args);
        return keys.every((k) => pyEquals(c.args[k], g.arguments?.[k]));
      }),
  );
  return unmatched.length === 0
    ? { value: 1, detail: `all ${gold.length} gold actions matched` }
    : { value: 0, detail: `unmatched gold actions: ${unmatched.map((a) => a.action_id ?? a.name).join(', ')}` };
}

/** Python's `type(x)` as tau2's messages print it. */
function pyTypeName(v: unknown): string {
  if (v === null || v === undefined) return "<class 'NoneType'>";
  if (v instanceof PyFloat) return "<class 'float'>";
  if (v instanceof PyInt) return "<class 'int'>";
  if (typeof v === 'number') return Number.isInteger(v) ? "<class 'int'>" : "<class 'float'>";
  if (typeof v === 'string') return "<class 'str'>";
  if (Array.isArray(v)) return "<class 'list'>";
  return "<class 'dict'>";
}

function envAssertions(task: Tau2Task, env: Environment): { value: number; detail: string } {
  const list = task.evaluation_criteria?.env_assertions ?? [];
  const failed: string[] = [];
  for (const a of list) {
    let ok: boolean;
    try {
      // tau2 Environment.run_env_assertion: the function must return a real bool (a truthy 1 or "yes" is an
      // error, not a pass), then `res == assert_value`.
      const res = env.runFunction(a.env_type ?? 'assistant', a.func_name, a.arguments ?? {});
      if (typeof res !== 'boolean') throw new Error(`Function ${a.func_name} returned ${pyTypeName(res)} instead of bool`);
      ok = res === (a.assert_value ?? true);
    } catch (e) {
      ok = false;
      failed.push(`${a.func_name} raised ${(e as Error).message}`);
      continue;
    }
    if (!ok) failed.push(a.func_name);
  }
  return failed.length === 0 ? { value: 1, detail: `${list.length} assertions held` } : { value: 0, detail: `failed: ${failed.join(', ')}` };
}

/**
 * Scores an episode. `stopped` is true when it ended by an agent or user stop; otherwise the reward is 0
 * (components are still computed for metrics). `goldCache` memoizes gold states per task. The DB check
 * compares the episode's state with the gold one directly (exactly what comparing their hashes decides);
 * `hashes: false` leaves the two hashes out of the result, which saves serializing and hashing the DB
 * (about 3 ms for retail) when the episode's state differs from the gold one.
 */
export function evaluateEpisode(
  env: Environment,
  task: Tau2Task,
  messages: EvalMessage[],
  stopped: boolean,
  goldCache?: GoldCache,
  opts: { hashes?: boolean } = {},
): EvaluationResult {
  const criteria = task.evaluation_criteria;
  const basis = rewardBasis(task);
  if (!criteria) {
    // tau2 evaluate_simulation: a task without evaluation criteria scores 1 when the episode stopped.
    const components: RewardComponentResult[] = (['DB', 'COMMUNICATE', 'ACTION', 'ENV_ASSERTION'] as const).map((name) => ({
      name,
      value: 1,
      inBasis: basis.includes(name),
      detail: 'no evaluation criteria',
    }));
    const hash = opts.hashes === false ? '' : env.dbHash();
    return { reward: stopped ? 1 : 0, components, dbHash: hash, goldDbHash: hash, skipped: [] };
  }
  const conversation = [...historyMessages(task), ...messages];
  const gold = cachedGoldState(env.domain, task, goldCache);
  const isFloat = env.domain.isFloatField;
  const dbSame = sameSortedDump(env.state.db.root, gold.db, isFloat);
  const userSame = env.state.userDb === undefined ? gold.userDb === undefined : gold.userDb !== undefined && sameSortedDump(env.state.userDb.root, gold.userDb, isFloat);
  const dbOk = dbSame && userSame;
  let dbHashNow = '';
  let goldDbHash = '';
  if (opts.hashes !== false) {
    goldDbHash = goldStateHashes(env.domain, gold).db;
    dbHashNow = dbSame ? goldDbHash : env.dbHash();
  }
  // tau2 EnvironmentEvaluator: with neither gold actions nor env assertions (null, not empty) there is no
  // target state, and the DB check passes whatever the episode did.
  const noTarget = criteria.actions == null && criteria.env_assertions == null;
  const parts: Record<Exclude<ComponentName, 'NL_ASSERTION'>, { value: number; detail: string }> = {
    DB: noTarget
      ? { value: 1, detail: 'no expected actions or env assertions' }
      : { value: dbOk ? 1 : 0, detail: dbOk ? 'DB matches the gold replay' : 'DB differs from the gold replay' },
    COMMUNICATE: communicate(task, conversation),
    ACTION: actions(task, conversation),
    ENV_ASSERTION: envAssertions(task, env),
  };
  const components: RewardComponentResult[] = (Object.keys(parts) as (keyof typeof parts)[]).map((name) => ({
    name,
    value: parts[name].value,
    inBasis: basis.includes(name),
    detail: parts[name].detail,
  }));
  const skipped: string[] = unscoredComponents(task);
  let reward = stopped ? 1 : 0;
  for (const c of components) if (c.inBasis) reward *= c.value;
  return { reward, components, dbHash: dbHashNow, goldDbHash, skipped };
}
