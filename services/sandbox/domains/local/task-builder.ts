// Builds one local-domain task in tau2's Task format: the user's scenario and Parley's `parley_user`
// script (opening, facts, goal phrases), the gold actions and reward basis, and `parley_local` metadata.

import type { Tau2Action, Tau2Task } from '../../domain.js';
import type { LocalCustomer, LocalOrder } from './model.js';
import type { Rng } from './rng.js';
import { FACTS, GOAL_PHRASES, GREETINGS, REASON_SENTENCE, REQUESTS, ZIP_SENTENCE, fill, type Intent, type MissingInfo } from './texts.js';

export type { Intent, MissingInfo } from './texts.js';

/** What the task is about, for the expert and for tests; the agent never sees it. */
export interface LocalTaskMeta {
  intent: Intent;
  customer_id: string;
  order_id: string;
  name: string;
  zip: string;
  /** What the opening leaves out, or null when it has everything the tools need. */
  missing: MissingInfo | null;
  /** The new city (change) or the cancellation reason (cancel). */
  value: string | null;
}

export interface ParleyUserBlock {
  opening: string;
  facts: Record<string, { keywords: string[]; value: string; phrase: string }>;
  goal_phrases: string[];
  details: string[];
}

/** A generated task: a tau2 task plus the scripted user's block and the local metadata. */
export interface LocalTask extends Tau2Task {
  user_scenario: NonNullable<Tau2Task['user_scenario']> & { parley_user: ParleyUserBlock };
  parley_local: LocalTaskMeta;
}

/** Which pieces an intent's opening may leave out. */
export const MISSABLE: Record<Intent, MissingInfo[]> = {
  cancel: ['zip', 'order_id', 'reason'],
  change: ['zip', 'order_id', 'city'],
  status: ['zip', 'order_id'],
};

function opening(meta: LocalTaskMeta, rng: Rng): string {
  const v = { name: meta.name, zip: meta.zip, order: meta.order_id, city: meta.value ?? '', reason: meta.value ?? '' };
  const req = REQUESTS[meta.intent];
  const variants = meta.missing === 'order_id' ? req.noOrder : meta.missing === 'city' ? req.noCity! : req.full;
  const parts = [fill(rng.pick(GREETINGS), v)];
  if (meta.missing !== 'zip') parts.push(fill(ZIP_SENTENCE, v));
  parts.push(fill(rng.pick(variants), v));
  if (meta.intent === 'cancel' && meta.missing !== 'reason') parts.push(fill(REASON_SENTENCE, v));
  return parts.join(' ');
}

function fact(key: keyof typeof FACTS, value: string) {
  return { keywords: FACTS[key].keywords, value, phrase: FACTS[key].phrase };
}

function goldActions(id: string, meta: LocalTaskMeta): Tau2Action[] {
  const ids = { customer_id: meta.customer_id, order_id: meta.order_id };
  const second: Record<Intent, Tau2Action> = {
    cancel: { name: 'cancel_order', arguments: { ...ids, reason: meta.value } },
    change: { name: 'change_address', arguments: { ...ids, city: meta.value } },
    status: { name: 'get_order', arguments: ids },
  };
  return [{ name: 'find_customer', arguments: { name: meta.name, zip: meta.zip } }, second[meta.intent]].map((a, i) => ({
    action_id: `${id}_${i}`,
    requestor: 'assistant',
    ...a,
    info: null,
    compare_args: null,
  }));
}

function reasonForCall(meta: LocalTaskMeta, order: LocalOrder): string {
  if (meta.intent === 'cancel') return `You want to cancel your order ${meta.order_id} (a ${order.item}). The reason you give is "${meta.value}".`;
  if (meta.intent === 'change') return `You want your order ${meta.order_id} (a ${order.item}) delivered to ${meta.value} instead of ${order.city}.`;
  return `You want to know the status of your order ${meta.order_id} (a ${order.item}).`;
}

/**
 * Builds a task for `order` of `customer`. `value` is the new city (change) or the reason (cancel), null
 * for status. Throws when `missing` is not one the intent can leave out or `value` does not fit the intent.
 */
export function buildLocalTask(
  id: string,
  customer: LocalCustomer,
  order: LocalOrder,
  intent: Intent,
  missing: MissingInfo | null,
  value: string | null,
  rng: Rng,
): LocalTask {
  if (missing !== null && !MISSABLE[intent].includes(missing)) throw new Error(`task ${id}: a ${intent} task cannot leave out ${missing}`);
  if ((intent === 'status') !== (value === null)) throw new Error(`task ${id}: ${intent} needs ${intent === 'status' ? 'no value' : 'a city or reason'}`);
  const meta: LocalTaskMeta = { intent, customer_id: customer.customer_id, order_id: order.order_id, name: customer.name, zip: customer.zip, missing, value };
  const first = opening(meta, rng);
  const facts: ParleyUserBlock['facts'] = {
    name: fact('name', customer.name),
    'zip code': fact('zip code', customer.zip),
    'order id': fact('order id', order.order_id),
  };
  if (intent === 'change') facts.city = fact('city', value!);
  if (intent === 'cancel') facts.reason = fact('reason', value!);
  return {
    id,
    description: { purpose: `${intent}, ${missing ? `${missing} missing from the opening` : 'everything in the opening'}`, relevant_policies: null, notes: null },
    user_scenario: {
      persona: null,
      instructions: {
        domain: 'local',
        reason_for_call: reasonForCall(meta, order),
        known_info: `Your name is ${customer.name}. Your zip code is ${customer.zip}. The order id is ${order.order_id}.`,
        unknown_info: null,
        task_instructions: `Open with exactly: "${first}" Give any other detail only when the agent asks for it.`,
      },
      parley_user: { opening: first, facts, goal_phrases: GOAL_PHRASES[intent], details: [] },
    },
    initial_state: null,
    evaluation_criteria: {
      actions: goldActions(id, meta),
      communicate_info: intent === 'status' ? [order.status] : [],
      nl_assertions: null,
      env_assertions: null,
      reward_basis: intent === 'status' ? ['DB', 'COMMUNICATE'] : ['DB'],
    },
    parley_local: meta,
  };
}
