// Generates the local domain from a seed and writes it as a normal tau2 domain folder: db.json,
// tasks.json (train + held-out eval), split_tasks.json ({train, test}) and policy.md.

import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { LocalCustomer, LocalDb, LocalOrder } from './model.js';
import { Rng } from './rng.js';
import { MISSABLE, buildLocalTask, type LocalTask } from './task-builder.js';
import { LOCAL_POLICY, type Intent, type MissingInfo } from './texts.js';
import { CITIES, CUSTOMER_ID_RANGE, ITEMS, NAMES, ORDER_IDS, REASONS, ZIPS } from './words.js';

export interface GenerateLocalOptions {
  /** Seed of everything generated: the same seed writes byte-identical files. */
  seed: number;
  /** Training tasks (default 3000). */
  trainTasks?: number;
  /** Held-out evaluation tasks (default 200); they share no task id and no (customer, order) pair with training. */
  evalTasks?: number;
  /** Share of tasks, per split, whose opening leaves out something a tool needs (default 0.6). */
  missingInfoShare?: number;
  /** Customers in the DB (default 200), each with 2 to 4 orders. */
  customers?: number;
  /**
   * What the held-out set holds out (default 'pairs'): 'pairs' — no (customer, order) pair of an eval task
   * appears in training (the stricter test of copying unseen combinations); 'tasks' — eval tasks are other
   * task instances over the same customers and orders (new openings, intents and missing details).
   */
  holdout?: 'pairs' | 'tasks';
  /** Folder to write; created when missing, files in it overwritten. */
  outDir: string;
}

export interface GeneratedLocalDomain {
  dir: string;
  train: string[];
  test: string[];
  customers: number;
  orders: number;
}

const INTENT_WEIGHTS: [Intent, number][] = [['cancel', 0.4], ['change', 0.35], ['status', 0.25]];
const STATUS_WEIGHTS: [string, number][] = [['pending', 0.55], ['shipped', 0.2], ['delivered', 0.15], ['cancelled', 0.1]];
/** At most this share of all (customer, order) pairs is held out for evaluation. */
const MAX_EVAL_PAIR_SHARE = 0.3;

interface Pair {
  customer: LocalCustomer;
  order: LocalOrder;
}

function weighted<T>(rng: Rng, items: [T, number][]): T {
  const total = items.reduce((s, [, w]) => s + w, 0);
  let x = rng.next() * total;
  for (const [v, w] of items) if ((x -= w) < 0) return v;
  return items[items.length - 1]![0];
}

function checkCount(name: string, v: number, min: number, max = 1_000_000): number {
  if (!Number.isInteger(v) || v < min || v > max) throw new RangeError(`${name}: must be an integer in [${min}, ${max}], got ${v}`);
  return v;
}

function buildDb(rng: Rng, customers: number): LocalDb {
  const ids = rng.shuffle(Array.from({ length: CUSTOMER_ID_RANGE.max - CUSTOMER_ID_RANGE.min + 1 }, (_, i) => CUSTOMER_ID_RANGE.min + i));
  const taken = new Set<string>();
  const list: LocalCustomer[] = [];
  for (let i = 0; i < customers; i++) {
    let name: string;
    let zip: string;
    do {
      name = rng.pick(NAMES);
      zip = rng.pick(ZIPS);
    } while (taken.has(`${name}/${zip}`));
    taken.add(`${name}/${zip}`);
    const orderIds = rng.shuffle(ORDER_IDS).slice(0, 2 + rng.int(3)).sort();
    const orders: Record<string, LocalOrder> = {};
    for (const oid of orderIds) {
      const status = weighted(rng, STATUS_WEIGHTS);
      orders[oid] = { order_id: oid, item: rng.pick(ITEMS), city: rng.pick(CITIES), status, cancel_reason: status === 'cancelled' ? rng.pick(REASONS) : null };
    }
    const all = Object.values(orders);
    if (!all.some((o) => o.status === 'pending')) Object.assign(all[0]!, { status: 'pending', cancel_reason: null });
    list.push({ customer_id: `cus${ids[i]}`, name, zip, orders });
  }
  list.sort((a, b) => a.customer_id.localeCompare(b.customer_id));
  return { customers: Object.fromEntries(list.map((c) => [c.customer_id, c])), cities: [...CITIES] };
}

/** The pieces a task on this pair may leave out: the order id only where guessing another order cannot pass. */
function missable(intent: Intent, p: Pair): MissingInfo[] {
  const others = Object.values(p.customer.orders).filter((o) => o.order_id !== p.order.order_id);
  return MISSABLE[intent].filter((m) => m !== 'order_id' || intent !== 'status' || others.every((o) => o.status !== p.order.status));
}

function buildSplit(prefix: string, count: number, pool: Pair[], share: number, rng: Rng): LocalTask[] {
  if (count === 0) return [];
  const eligible: Record<Intent, Pair[]> = {
    cancel: rng.shuffle(pool.filter((p) => p.order.status === 'pending')),
    change: rng.shuffle(pool.filter((p) => p.order.status === 'pending')),
    status: rng.shuffle(pool),
  };
  const cursor: Record<Intent, number> = { cancel: 0, change: 0, status: 0 };
  const used = new Set<Pair>();
  // Spread tasks over as many pairs as possible: an intent whose pairs are all used waits until every intent's are.
  const fresh = (i: Intent) => eligible[i].some((p) => !used.has(p));
  const missingCount = Math.round(share * count);
  const missingFlags = rng.shuffle(Array.from({ length: count }, (_, i) => i < missingCount));
  const tasks: LocalTask[] = [];
  for (let i = 0; i < count; i++) {
    const open = INTENT_WEIGHTS.filter(([intent]) => fresh(intent));
    const intent = weighted(rng, open.length > 0 ? open : INTENT_WEIGHTS.filter(([intent]) => eligible[intent].length > 0));
    const list = eligible[intent];
    let k = 0;
    while (k < list.length - 1 && used.has(list[(cursor[intent] + k) % list.length]!)) k++;
    const pair = list[(cursor[intent] + k) % list.length]!;
    cursor[intent] += k + 1;
    used.add(pair);
    const missing = missingFlags[i] ? rng.pick(missable(intent, pair)) : null;
    const value =
      intent === 'change' ? rng.pick(CITIES.filter((c) => c !== pair.order.city)) : intent === 'cancel' ? rng.pick(REASONS) : null;
    tasks.push(buildLocalTask(`${prefix}-${i}`, pair.customer, pair.order, intent, missing, value, rng));
  }
  return tasks;
}

/**
 * Generates the domain and writes it to `outDir`. Deterministic for a seed. Throws RangeError naming the
 * option when a count or the share is out of range (or there are too few customers for a held-out set),
 * and the file system's error when `outDir` cannot be written.
 */
export function generateLocalDomain(opts: GenerateLocalOptions): GeneratedLocalDomain {
  const trainCount = checkCount('trainTasks', opts.trainTasks ?? 3000, 0);
  const evalCount = checkCount('evalTasks', opts.evalTasks ?? 200, 0);
  const customers = checkCount('customers', opts.customers ?? 200, 2, 5000);
  const share = opts.missingInfoShare ?? 0.6;
  if (!(share >= 0 && share <= 1)) throw new RangeError(`missingInfoShare: must be in [0, 1], got ${share}`);
  const root = new Rng(opts.seed);
  const db = buildDb(root.fork('db'), customers);

  const pairs: Pair[] = Object.values(db.customers).flatMap((customer) => Object.values(customer.orders).map((order) => ({ customer, order })));
  const taskRng = root.fork('tasks');
  const shuffled = taskRng.shuffle(pairs);
  // Half again as many pairs as eval tasks, so that most eval tasks get a pair of their own.
  const evalPairs = evalCount === 0 ? 0 : Math.max(1, Math.min(Math.ceil(evalCount * 1.5), Math.floor(pairs.length * MAX_EVAL_PAIR_SHARE)));
  const byTask = opts.holdout === 'tasks';
  const evalPool = byTask ? shuffled : shuffled.slice(0, evalPairs);
  const trainPool = byTask ? shuffled : shuffled.slice(evalPairs);
  if (trainCount > 0 && trainPool.length === 0) throw new RangeError(`customers: ${customers} leave no (customer, order) pair for training`);
  const train = buildSplit('train', trainCount, trainPool, share, taskRng.fork('train'));
  const test = buildSplit('eval', evalCount, evalPool, share, taskRng.fork('eval'));

  mkdirSync(opts.outDir, { recursive: true });
  writeFileSync(join(opts.outDir, 'db.json'), JSON.stringify(db, null, 2) + '\n');
  // One task per line: a readable, greppable file of a few megabytes.
  writeFileSync(join(opts.outDir, 'tasks.json'), '[\n' + [...train, ...test].map((t) => JSON.stringify(t)).join(',\n') + '\n]\n');
  const splits = { train: train.map((t) => t.id), test: test.map((t) => t.id) };
  writeFileSync(join(opts.outDir, 'split_tasks.json'), JSON.stringify(splits, null, 2) + '\n');
  writeFileSync(join(opts.outDir, 'policy.md'), LOCAL_POLICY);
  writeFileSync(
    join(opts.outDir, 'generation.json'),
    JSON.stringify({ seed: opts.seed, trainTasks: trainCount, evalTasks: evalCount, missingInfoShare: share, customers, holdout: opts.holdout ?? 'pairs' }, null, 2) + '\n',
  );
  return { dir: opts.outDir, ...splits, customers, orders: pairs.length };
}
