// The builtin model's vocabulary for a generated local domain: every piece of every text the chat template
// can render there (DB values, tool outputs and errors, user and expert phrases, stock replies, the prompt).

import { join } from 'node:path';
import { Template } from '@huggingface/jinja';
import { GREETING, agentSystemPrompt } from '../../../rollout/prompts.js';
import { ScriptedConversation, parseTaskJson, scriptedProfile } from '../../../usersim/index.js';
import { Environment } from '../../environment.js';
import { loadTasks } from '../../tasks.js';
import { ToolArgumentError } from '../../tool-runner.js';
import { runExpert } from '../local/expert.js';
import { loadLocalDomain } from '../local/index.js';
import { Rng } from '../local/rng.js';
import type { LocalTask } from '../local/task-builder.js';
import { ANYTHING_ELSE, ASK, DONE, FACTS, LOCAL_POLICY, TRANSFER_SUMMARY } from '../local/texts.js';
import { CITIES, ITEMS, NAMES, ORDER_IDS, REASONS, STATUSES, ZIPS } from '../local/words.js';
import { localChatTemplate } from './chat-template.js';
import { PUNCTUATION_RUNS, SINGLE_CHARACTERS, isAddedToken, preTokenize } from './tokenizer-spec.js';

/** Demonstrations rendered per (intent, missing piece) combination, with and without asking. */
const DEMOS_PER_KIND = 3;

/** Agent messages that make the scripted user say each of its stock replies. */
const USER_PROBES = [
  ['Okay.', 'Okay.', 'Okay.'],
  ['Shall I proceed?'],
  ['I am transferring you now.'],
  ['Is there anything else?'],
  ['What is your email?', 'What is your email?'],
  ['Your order has been cancelled.'],
];

function toolErrorTexts(env: Environment, db: { customers: Record<string, { customer_id: string; orders: Record<string, { status: string }> }> }): string[] {
  const out: string[] = [];
  const customer = Object.values(db.customers)[0]!;
  const pending = Object.values(customer.orders).find((o) => o.status === 'pending');
  const shipped = Object.values(db.customers).flatMap((c) => Object.entries(c.orders).filter(([, o]) => o.status !== 'pending').map(([oid]) => ({ c, oid })))[0];
  const probes: [string, Record<string, unknown>][] = [
    ['find_customer', { name: 'Nobody', zip: '00000' }],
    ['get_order', { customer_id: 'cus0', order_id: 'ord10' }],
    ['get_order', { customer_id: customer.customer_id, order_id: 'ord0' }],
    // An echoed argument is a word the model produced, so probe with a known word that is no city.
    ['change_address', { customer_id: customer.customer_id, order_id: pending ? Object.keys(customer.orders).find((k) => customer.orders[k] === pending) : 'ord10', city: 'lamp' }],
    ['find_customer', {}],
    ['find_customer', { name: 'Mary', zip: '10001', email: 'x' }],
    ['find_customer', { name: 1, zip: 2 }],
    ['cancel_order', { customer_id: customer.customer_id, order_id: 'ord10', reason: 'other' }],
  ];
  if (shipped) {
    probes.push(['cancel_order', { customer_id: shipped.c.customer_id, order_id: shipped.oid, reason: REASONS[0] }]);
    probes.push(['change_address', { customer_id: shipped.c.customer_id, order_id: shipped.oid, city: CITIES[0] }]);
  }
  for (const [name, args] of probes) {
    try {
      out.push(env.fork().call(name, args).output);
    } catch (e) {
      // As the sandbox service words a rejected call and the rollout shows it to the agent.
      if (e instanceof ToolArgumentError) out.push(`Error: arguments_json: ${e.message}`);
    }
  }
  out.push("Error: Tool 'unknown' not found.");
  return out;
}

async function userStockReplies(task: LocalTask): Promise<string[]> {
  const out: string[] = [];
  for (const probe of USER_PROBES) {
    const user = new ScriptedConversation(scriptedProfile(parseTaskJson(JSON.stringify(task))));
    for (const text of probe) out.push((await user.reply(text)).text);
  }
  return out;
}

/**
 * Texts covering everything the template can render for the domain in `domainDir`. Rejects with the
 * loader's error for a bad folder.
 */
export async function localDomainCorpus(domainDir: string): Promise<string[]> {
  const domain = loadLocalDomain(domainDir);
  const tasks = loadTasks(join(domainDir, 'tasks.json')) as LocalTask[];
  const env = new Environment(domain);
  const db = domain.initialDb;
  const texts: string[] = [GREETING, agentSystemPrompt(domain.policy), LOCAL_POLICY, ANYTHING_ELSE, TRANSFER_SUMMARY, ...Object.values(ASK), ...Object.values(DONE)];
  texts.push(...NAMES, ...ZIPS, ...CITIES, ...ITEMS, ...STATUSES, ...REASONS, ...ORDER_IDS, ...db.cities);
  texts.push(...Object.keys(FACTS), ...Object.values(FACTS).flatMap((f) => [...f.keywords, f.phrase]));
  for (const t of domain.tools) texts.push(t.name, ...Object.keys(t.parameters.properties));
  for (const c of Object.values(db.customers)) {
    texts.push(env.call('find_customer', { name: c.name, zip: c.zip }).output);
    for (const o of Object.values(c.orders)) texts.push(env.call('get_order', { customer_id: c.customer_id, order_id: o.order_id }).output);
  }
  texts.push(...toolErrorTexts(env, db));
  for (const t of tasks) {
    const user = t.user_scenario.parley_user;
    texts.push(user.opening, ...Object.values(user.facts).map((f) => `${f.phrase.replace('{value}', f.value)}.`));
  }
  if (tasks[0]) texts.push(...(await userStockReplies(tasks[0])));
  // Rendered demonstrations supply the template's own text and the JSON punctuation of calls and results.
  const template = new Template(localChatTemplate('render'));
  const seen = new Map<string, number>();
  const rng = new Rng(0);
  for (const t of tasks) {
    const kind = `${t.parley_local.intent}/${t.parley_local.missing}`;
    const n = seen.get(kind) ?? 0;
    if (n >= DEMOS_PER_KIND) continue;
    seen.set(kind, n + 1);
    for (const skipAsk of [false, true]) {
      const demo = await runExpert(domain, t, { skipAsk, rng });
      texts.push(template.render({ messages: demo.messages, add_generation_prompt: true }));
    }
  }
  return texts;
}

/**
 * The sorted, distinct pre-tokens of `texts` (added tokens left out), plus every punctuation run and
 * single punctuation or whitespace character, so that only unknown words can become [UNK]. Never throws.
 */
export function vocabularyOf(texts: readonly string[]): string[] {
  const words = new Set<string>([...PUNCTUATION_RUNS, ...SINGLE_CHARACTERS]);
  for (const text of texts) for (const piece of preTokenize(text)) if (!isAddedToken(piece)) words.add(piece);
  return [...words].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
}

/** The vocabulary of the local domain in `domainDir` (sorted words). Rejects like localDomainCorpus. */
export async function buildLocalVocabulary(domainDir: string): Promise<string[]> {
  return vocabularyOf(await localDomainCorpus(domainDir));
}
