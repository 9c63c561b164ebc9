// An imperfect scripted expert for the local domain: episodes in the rollout protocol, scored by the sandbox,
// that with a seeded probability act without asking for what the user left out (room for RL to teach).

import { join } from 'node:path';
import { GREETING, agentSystemPrompt } from '../../../rollout/prompts.js';
import { ScriptedConversation, parseTaskJson, scriptedProfile } from '../../../usersim/index.js';
import type { Domain } from '../../domain.js';
import { Environment } from '../../environment.js';
import { evaluateEpisode, type EvalMessage, type GoldCache, type RewardComponentResult } from '../../evaluate.js';
import { pyDumps } from '../../pyjson.js';
import { loadSplits, loadTasks } from '../../tasks.js';
import { loadLocalDomain } from './index.js';
import type { LocalDb } from './model.js';
import { Rng } from './rng.js';
import type { LocalTask, MissingInfo } from './task-builder.js';
import { ANYTHING_ELSE, ASK, DONE, TRANSFER_SUMMARY, fill } from './texts.js';
import { CITIES, REASONS, ZIPS } from './words.js';

/** A message in the OpenAI chat shape that chat templates render. */
export interface DemoMessage {
  role: 'system' | 'user' | 'assistant' | 'tool';
  content: string;
  tool_calls?: { id: string; type: 'function'; function: { name: string; arguments: string } }[];
  tool_call_id?: string;
}

export type DemoTermination = 'user_stop' | 'transfer' | 'max_turns';

export interface Demonstration {
  taskId: string;
  messages: DemoMessage[];
  reward: number;
  success: boolean;
  /** The opening lacked something and the expert acted without asking for it. */
  skippedAsk: boolean;
  missing: MissingInfo | null;
  termination: DemoTermination;
  components: RewardComponentResult[];
}

export interface ExpertOptions {
  /** Act without asking when the opening lacks information (ignored when it has everything). */
  skipAsk: boolean;
  /** Draws the expert's guesses when it skips asking. */
  rng: Rng;
  /** Gold DB hashes per task id, shared across calls to avoid replaying gold actions again. */
  goldCache?: GoldCache;
}

/** Turns after which an episode that has not stopped is cut (the expert needs at most 5). */
const MAX_EXPERT_TURNS = 8;

class ExpertEpisode {
  readonly messages: DemoMessage[];
  termination: DemoTermination | null = null;
  private calls = 0;
  private turns = 0;

  constructor(
    readonly env: Environment,
    private readonly user: ScriptedConversation,
  ) {
    this.messages = [
      { role: 'system', content: agentSystemPrompt(env.domain.policy) },
      { role: 'assistant', content: GREETING },
    ];
  }

  get over(): boolean {
    return this.termination !== null || this.turns >= MAX_EXPERT_TURNS;
  }

  async start(): Promise<void> {
    this.take(await this.user.start({ greeting: GREETING }));
  }

  async say(text: string): Promise<void> {
    this.turns++;
    this.messages.push({ role: 'assistant', content: text });
    this.take(await this.user.reply(text));
  }

  call(name: string, args: Record<string, unknown>): { output: string; error: boolean } {
    this.turns++;
    const id = `call_${this.calls++}`;
    this.messages.push({ role: 'assistant', content: '', tool_calls: [{ id, type: 'function', function: { name, arguments: pyDumps(args) } }] });
    let out: { output: string; error: boolean; terminal: boolean };
    try {
      const r = this.env.call(name, args);
      out = { output: r.output, error: r.error, terminal: r.tool.terminal ?? false };
    } catch (e) {
      out = { output: `Error: ${(e as Error).message}`, error: true, terminal: false };
    }
    this.messages.push({ role: 'tool', content: out.output, tool_call_id: id });
    if (out.terminal) this.termination = 'transfer';
    return out;
  }

  private take(turn: { text: string }): void {
    this.messages.push({ role: 'user', content: turn.text });
    if (turn.text.includes('###STOP###')) this.termination = 'user_stop';
    else if (turn.text.includes('###TRANSFER###') || turn.text.includes('###OUT-OF-SCOPE###')) this.termination = 'transfer';
  }
}

function toEvalMessages(messages: DemoMessage[]): EvalMessage[] {
  return messages.map((m) => ({
    role: m.role,
    content: m.content,
    toolCalls: (m.tool_calls ?? []).map((c) => ({ name: c.function.name, argumentsJson: c.function.arguments })),
  }));
}

/** A zip under which no customer of that name exists, so the guessed lookup fails as a real guess would. */
function wrongZip(db: LocalDb, name: string, rng: Rng): string {
  const used = new Set(Object.values(db.customers).filter((c) => c.name === name).map((c) => c.zip));
  return rng.pick(ZIPS.filter((z) => !used.has(z)));
}

async function act(ep: ExpertEpisode, task: LocalTask, skip: boolean, rng: Rng): Promise<void> {
  const m = task.parley_local;
  const guess = (what: MissingInfo) => skip && m.missing === what;
  const found = ep.call('find_customer', { name: m.name, zip: guess('zip') ? wrongZip(ep.env.state.db.root, m.name, rng) : m.zip });
  if (found.error) return void ep.call('transfer_to_human_agents', { summary: TRANSFER_SUMMARY });
  const customer = JSON.parse(found.output) as { customer_id: string; orders: string[] };
  const orderId = guess('order_id') ? rng.pick(customer.orders.filter((o) => o !== m.order_id)) : m.order_id;
  const ids = { customer_id: customer.customer_id, order_id: orderId };
  let done: { output: string; error: boolean };
  if (m.intent === 'cancel') done = ep.call('cancel_order', { ...ids, reason: guess('reason') ? rng.pick(REASONS.filter((r) => r !== m.value)) : m.value });
  else if (m.intent === 'change') done = ep.call('change_address', { ...ids, city: guess('city') ? rng.pick(CITIES.filter((c) => c !== m.value)) : m.value });
  else done = ep.call('get_order', ids);
  if (done.error) return void ep.call('transfer_to_human_agents', { summary: TRANSFER_SUMMARY });
  const order = JSON.parse(done.output) as { city: string; status: string };
  await ep.say(fill(DONE[m.intent], { order: orderId, city: order.city, status: order.status }));
  if (!ep.over) await ep.say(ANYTHING_ELSE);
}

/**
 * Plays one task as the expert, against the real scripted user and a fresh Environment, and scores it
 * with evaluateEpisode. Rejects only on a bug (a task without `parley_local`, a scripted-user error).
 */
export async function runExpert(domain: Domain, task: LocalTask, opts: ExpertOptions): Promise<Demonstration> {
  const m = task.parley_local;
  if (!m) throw new Error(`task ${task.id}: not a local-domain task (no parley_local block)`);
  const env = new Environment(domain);
  env.applyInitialState(task);
  // The task reaches the scripted user as the sandbox sends it: JSON text, parsed with its defaults.
  const ep = new ExpertEpisode(env, new ScriptedConversation(scriptedProfile(parseTaskJson(JSON.stringify(task)))));
  const skip = opts.skipAsk && m.missing !== null;
  await ep.start();
  if (m.missing !== null && !skip && !ep.over) await ep.say(ASK[m.missing]);
  if (!ep.over) await act(ep, task, skip, opts.rng);
  const termination = ep.termination ?? 'max_turns';
  const ev = evaluateEpisode(env, task, toEvalMessages(ep.messages), termination !== 'max_turns', opts.goldCache);
  return { taskId: task.id, messages: ep.messages, reward: ev.reward, success: ev.reward === 1, skippedAsk: skip, missing: m.missing, termination, components: ev.components };
}

export interface DemonstrationOptions {
  /** A folder written by generateLocalDomain. */
  domainDir: string;
  /** Demonstrations to produce; tasks are drawn from the split in seeded order, repeating when count exceeds it. */
  count: number;
  /** Probability (per demonstration) that the expert acts without asking for missing information. */
  skipAskRate: number;
  seed: number;
  /** Split to draw tasks from (default train). */
  split?: string;
}

export interface DemonstrationSet {
  demonstrations: Demonstration[];
  /** Share of demonstrations with reward 1. */
  solvedShare: number;
}

/**
 * Produces `count` expert demonstrations with their rewards. Deterministic for a seed. Rejects with
 * RangeError for a bad count or rate or an empty split, and with the loader's error for a bad folder.
 */
export async function generateDemonstrations(opts: DemonstrationOptions): Promise<DemonstrationSet> {
  if (!Number.isInteger(opts.count) || opts.count < 0) throw new RangeError(`count: must be a non-negative integer, got ${opts.count}`);
  if (!(opts.skipAskRate >= 0 && opts.skipAskRate <= 1)) throw new RangeError(`skipAskRate: must be in [0, 1], got ${opts.skipAskRate}`);
  const domain = loadLocalDomain(opts.domainDir);
  const tasks = new Map(loadTasks(join(opts.domainDir, 'tasks.json')).map((t) => [t.id, t as LocalTask]));
  const split = opts.split ?? 'train';
  const ids = loadSplits(opts.domainDir)[split];
  if (!ids || ids.length === 0) throw new RangeError(`split: '${split}' is missing or empty in ${opts.domainDir}/split_tasks.json`);
  const rng = new Rng(opts.seed);
  const order = rng.shuffle(ids);
  const goldCache: GoldCache = new Map();
  const demonstrations: Demonstration[] = [];
  for (let i = 0; i < opts.count; i++) {
    const task = tasks.get(order[i % order.length]!);
    if (!task) throw new RangeError(`split '${split}' names task '${order[i % order.length]}', which tasks.json lacks`);
    const skipAsk = rng.chance(opts.skipAskRate);
    demonstrations.push(await runExpert(domain, task, { skipAsk, rng, goldCache }));
  }
  const solved = demonstrations.filter((d) => d.success).length;
  return { demonstrations, solvedShare: opts.count === 0 ? 0 : solved / opts.count };
}
