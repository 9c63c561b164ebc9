// The generated `local` domain: determinism, held-out disjointness, gold replays, the missing-info share,
// the tools, and the imperfect expert scored by the real Environment, evaluateEpisode and scripted user.

import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateDemonstrations, runExpert } from '../services/sandbox/domains/local/expert.js';
import { generateLocalDomain, loadLocalDomain, type LocalDb, type LocalTask } from '../services/sandbox/domains/local/index.js';
import { Rng } from '../services/sandbox/domains/local/rng.js';
import { Environment } from '../services/sandbox/environment.js';
import { replayTask } from '../services/sandbox/replay.js';
import { renderScenario } from '../services/sandbox/scenario.js';
import { loadSplits, loadTasks } from '../services/sandbox/tasks.js';
import { parseTaskJson } from '../services/usersim/index.js';

const TRAIN = 600;
const EVAL = 100;
let root: string;
let dir: string;
let tasks: LocalTask[];
let splits: Record<string, string[]>;

beforeAll(() => {
  root = mkdtempSync(join(tmpdir(), 'parley-local-'));
  dir = join(root, 'a');
  generateLocalDomain({ seed: 11, trainTasks: TRAIN, evalTasks: EVAL, customers: 120, outDir: dir });
  tasks = loadTasks(join(dir, 'tasks.json')) as LocalTask[];
  splits = loadSplits(dir);
});

afterAll(() => rmSync(root, { recursive: true, force: true }));

const files = (d: string) => Object.fromEntries(readdirSync(d).map((f) => [f, readFileSync(join(d, f), 'utf8')]));
const pairOf = (t: LocalTask) => `${t.parley_local.customer_id}/${t.parley_local.order_id}`;

describe('local domain generation', () => {
  it('writes a tau2 domain folder that is byte-identical for the same seed and differs for another', () => {
    const same = join(root, 'same');
    const other = join(root, 'other');
    generateLocalDomain({ seed: 11, trainTasks: TRAIN, evalTasks: EVAL, customers: 120, outDir: same });
    generateLocalDomain({ seed: 12, trainTasks: TRAIN, evalTasks: EVAL, customers: 120, outDir: other });
    expect(Object.keys(files(dir)).sort()).toEqual(['db.json', 'generation.json', 'policy.md', 'split_tasks.json', 'tasks.json']);
    expect(files(same)).toEqual(files(dir));
    expect(files(other)['tasks.json']).not.toEqual(files(dir)['tasks.json']);
    expect(files(other)['db.json']).not.toEqual(files(dir)['db.json']);
  });

  it('keeps the held-out split disjoint from training: no task id, no (customer, order) pair', () => {
    expect(splits.train).toHaveLength(TRAIN);
    expect(splits.test).toHaveLength(EVAL);
    expect(tasks.map((t) => t.id).sort()).toEqual([...splits.train!, ...splits.test!].sort());
    expect(new Set(tasks.map((t) => t.id)).size).toBe(tasks.length);
    const byId = new Map(tasks.map((t) => [t.id, t]));
    const trainPairs = new Set(splits.train!.map((id) => pairOf(byId.get(id)!)));
    const evalPairs = new Set(splits.test!.map((id) => pairOf(byId.get(id)!)));
    expect([...evalPairs].filter((p) => trainPairs.has(p))).toEqual([]);
    expect(evalPairs.size).toBeGreaterThanOrEqual(EVAL * 0.9);
    expect(new Set(tasks.map((t) => t.parley_local.intent))).toEqual(new Set(['cancel', 'change', 'status']));
  });

  it('leaves information out of the opening in the configured share of each split, and only then', () => {
    for (const split of ['train', 'test']) {
      const ids = new Set(splits[split]);
      const list = tasks.filter((t) => ids.has(t.id));
      const missing = list.filter((t) => t.parley_local.missing !== null);
      expect(missing.length).toBe(Math.round(0.6 * list.length));
    }
    const kinds = new Set<string>();
    for (const t of tasks) {
      const m = t.parley_local;
      const opening = t.user_scenario.parley_user.opening;
      kinds.add(`${m.intent}/${m.missing}`);
      expect(opening.includes(m.name)).toBe(true);
      expect(opening.includes(m.zip)).toBe(m.missing !== 'zip');
      expect(opening.includes(m.order_id)).toBe(m.missing !== 'order_id');
      if (m.intent !== 'status') expect(opening.includes(m.value!)).toBe(m.missing !== 'city' && m.missing !== 'reason');
    }
    expect(kinds.size).toBe(11);
    const none = join(root, 'none');
    generateLocalDomain({ seed: 3, trainTasks: 50, evalTasks: 10, missingInfoShare: 0, customers: 30, outDir: none });
    expect((loadTasks(join(none, 'tasks.json')) as LocalTask[]).every((t) => t.parley_local.missing === null)).toBe(true);
  });

  it('rejects bad options naming the option', () => {
    expect(() => generateLocalDomain({ seed: 1, missingInfoShare: 1.5, outDir: join(root, 'x') })).toThrow(/missingInfoShare/);
    expect(() => generateLocalDomain({ seed: 1, trainTasks: -1, outDir: join(root, 'x') })).toThrow(/trainTasks/);
    expect(() => generateLocalDomain({ seed: 1, customers: 1, outDir: join(root, 'x') })).toThrow(/customers/);
    expect(() => loadLocalDomain(join(root, 'missing'))).toThrow(/db\.json/);
  });
});

describe('local domain tools', () => {
  it('replays every gold action without error and changes the DB as the task intends', () => {
    const domain = loadLocalDomain(dir);
    const initial = new Environment(domain).dbHash();
    for (const t of tasks) {
      const r = replayTask(domain, t);
      expect(r.errors, t.id).toEqual([false, false]);
      const env = new Environment(domain);
      for (const a of t.evaluation_criteria!.actions!) env.call(a.name, a.arguments);
      const m = t.parley_local;
      const order = (env.state.db.root as LocalDb).customers[m.customer_id]!.orders[m.order_id]!;
      if (m.intent === 'cancel') expect([order.status, order.cancel_reason]).toEqual(['cancelled', m.value]);
      if (m.intent === 'change') expect(order.city).toBe(m.value);
      if (m.intent === 'status') expect(r.final_db_hash).toBe(initial);
      else expect(r.final_db_hash).not.toBe(initial);
      expect(env.dbHash()).toBe(r.final_db_hash);
    }
    // Sessions write through copy-on-write: the loaded DB is untouched.
    expect(new Environment(domain).dbHash()).toBe(initial);
  });

  it('fails with tau2-style tool errors for unknown records, non-pending orders and bad arguments', () => {
    const domain = loadLocalDomain(dir);
    const env = new Environment(domain);
    const db = domain.initialDb;
    const [cid, c] = Object.entries(db.customers).find(([, x]) => Object.values(x.orders).some((o) => o.status === 'shipped'))!;
    const shipped = Object.values(c.orders).find((o) => o.status === 'shipped')!.order_id;
    const pending = Object.values(c.orders).find((o) => o.status === 'pending')!.order_id;
    expect(env.call('find_customer', { name: c.name, zip: '00000' }).output).toBe('Error: Customer not found');
    expect(env.call('find_customer', { name: c.name.toLowerCase(), zip: c.zip }).output).toContain(`"customer_id": "${cid}"`);
    expect(env.call('get_order', { customer_id: 'cus1', order_id: shipped }).output).toBe('Error: Customer cus1 not found');
    expect(env.call('get_order', { customer_id: cid, order_id: 'ord0' }).output).toBe(`Error: Order ord0 not found for customer ${cid}`);
    expect(env.call('cancel_order', { customer_id: cid, order_id: shipped, reason: 'mistake' }).output).toBe(
      `Error: Order ${shipped} is shipped; only pending orders can be cancelled`,
    );
    expect(env.call('change_address', { customer_id: cid, order_id: pending, city: 'Atlantis' }).output).toBe('Error: We do not deliver to Atlantis');
    expect(() => env.call('cancel_order', { customer_id: cid, order_id: pending, reason: 'bored' })).toThrow(/reason/);
    expect(env.call('transfer_to_human_agents', { summary: 'x' })).toMatchObject({ output: 'Transfer successful', error: false });
    expect(env.dbHash()).toBe(new Environment(domain).dbHash());
  });

  it('offers its tools and tasks in the shapes the sandbox and the user simulator read', () => {
    const domain = loadLocalDomain(dir);
    expect(domain.tools.map((x) => `${x.name}:${x.type}`)).toEqual([
      'find_customer:READ',
      'get_order:READ',
      'cancel_order:WRITE',
      'change_address:WRITE',
      'transfer_to_human_agents:GENERIC',
    ]);
    expect(domain.tools.find((x) => x.name === 'transfer_to_human_agents')!.terminal).toBe(true);
    for (const t of tasks.slice(0, 50)) {
      expect(renderScenario(t)).toContain('Reason for call');
      expect(parseTaskJson(JSON.stringify(t)).user_scenario.parley_user?.opening).toBe(t.user_scenario.parley_user.opening);
    }
  });
});

describe('imperfect scripted expert', () => {
  it('solves every task when it always asks, through Environment, evaluateEpisode and the scripted user', async () => {
    const domain = loadLocalDomain(dir);
    const goldCache = new Map();
    const rng = new Rng(1);
    const failed: string[] = [];
    for (const t of tasks) {
      const d = await runExpert(domain, t, { skipAsk: false, rng, goldCache });
      if (d.reward !== 1 || d.termination !== 'user_stop') failed.push(`${t.id}: ${d.termination} ${JSON.stringify(d.components)}`);
      const asked = d.messages.some((m) => m.role === 'assistant' && m.content.endsWith('?') && m.content !== 'Hi! How can I help you today?');
      expect(asked, t.id).toBe(t.parley_local.missing !== null);
    }
    expect(failed).toEqual([]);
  });

  it('fails exactly the tasks whose opening lacks information when it never asks', async () => {
    const domain = loadLocalDomain(dir);
    const rng = new Rng(2);
    for (const t of tasks) {
      const d = await runExpert(domain, t, { skipAsk: true, rng });
      expect(d.success, `${t.id} ${t.parley_local.intent}/${t.parley_local.missing}`).toBe(t.parley_local.missing === null);
      expect(d.skippedAsk).toBe(t.parley_local.missing !== null);
      expect(['user_stop', 'transfer']).toContain(d.termination);
    }
  });

  it('produces demonstrations in the episode protocol, deterministic for a seed', async () => {
    const a = await generateDemonstrations({ domainDir: dir, count: 200, skipAskRate: 0.5, seed: 4 });
    const b = await generateDemonstrations({ domainDir: dir, count: 200, skipAskRate: 0.5, seed: 4 });
    expect(b).toEqual(a);
    const trainIds = new Set(splits.train);
    for (const d of a.demonstrations) {
      expect(trainIds.has(d.taskId)).toBe(true);
      expect(d.messages.slice(0, 3).map((m) => m.role)).toEqual(['system', 'assistant', 'user']);
      expect(d.messages[0]!.content).toContain('<policy>');
      expect(d.messages[1]!.content).toBe('Hi! How can I help you today?');
      for (const [i, m] of d.messages.entries()) {
        if (m.role !== 'tool') continue;
        const call = d.messages[i - 1]!.tool_calls![0]!;
        expect(m.tool_call_id).toBe(call.id);
        expect(JSON.parse(call.function.arguments)).toBeTypeOf('object');
      }
    }
    const skipped = a.demonstrations.filter((d) => d.skippedAsk);
    const missing = a.demonstrations.filter((d) => d.missing !== null);
    expect(skipped.length / missing.length).toBeGreaterThan(0.35);
    expect(skipped.length / missing.length).toBeLessThan(0.65);
    expect(a.solvedShare).toBeCloseTo(a.demonstrations.filter((d) => !d.skippedAsk).length / 200, 5);
    const all = await generateDemonstrations({ domainDir: dir, count: 100, skipAskRate: 0, seed: 4, split: 'test' });
    expect(all.solvedShare).toBe(1);
    const none = await generateDemonstrations({ domainDir: dir, count: EVAL, skipAskRate: 1, seed: 4, split: 'test' });
    expect(none.solvedShare).toBeCloseTo(0.4, 5);
    console.log(`expert solved share on held-out tasks: skipAskRate 0 → ${all.solvedShare}, skipAskRate 1 → ${none.solvedShare}`);
    await expect(generateDemonstrations({ domainDir: dir, count: 1, skipAskRate: 2, seed: 1 })).rejects.toThrow(/skipAskRate/);
    await expect(generateDemonstrations({ domainDir: dir, count: 1, skipAskRate: 0, seed: 1, split: 'dev' })).rejects.toThrow(/split/);
  });
});
