// The Sandbox over real gRPC on a port: domains, gold replays through Call, evaluation, bad input,
// isolation between sessions, forks and limits.

import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { Sandbox, Termination } from '../services/core/gen/parley/v1/sandbox_pb.js';
import { Role } from '../services/core/gen/parley/v1/chat_pb.js';
import { createGrpcClient, type ClientOf } from '../services/core/grpc.js';
import { ParleyError } from '../services/core/errors.js';
import { serveSandbox, type RunningSandbox } from '../services/sandbox/index.js';
import { describeTau2, tau2DataDir } from './fixtures/tau2-data.js';

type Client = ClientOf<typeof Sandbox>;

async function failure(p: Promise<unknown>): Promise<ParleyError> {
  const e = await p.then(
    () => undefined,
    (err: unknown) => err,
  );
  if (!(e instanceof ParleyError)) throw new Error(`expected a ParleyError, got ${String(e)}`);
  return e;
}

describeTau2('retail', 'sandbox over gRPC', () => {
  let sb: RunningSandbox;
  let client: Client;
  const oracle = JSON.parse(readFileSync(join(tau2DataDir(), 'retail', 'gold_replay_reference.json'), 'utf8'));

  beforeAll(async () => {
    sb = await serveSandbox({ port: 0, host: '127.0.0.1', metricsPort: 0, dataDir: tau2DataDir(), maxArgumentBytes: 4096 });
    client = createGrpcClient(Sandbox, `127.0.0.1:${sb.grpc.port}`);
  });
  afterAll(async () => {
    client?.close();
    await sb?.close();
  });

  it('lists the three domains with the reference initial hashes', async () => {
    const r = await client.listDomains({});
    const byName = Object.fromEntries(r.domains.map((d: any) => [d.name, d]));
    expect(Object.keys(byName).sort()).toEqual(['airline', 'mock', 'retail']);
    expect(byName.retail.initialDbHash).toBe(oracle.initial_db_hash);
    expect(byName.retail.tools.length).toBe(16);
    expect(byName.airline.tools.length).toBe(14);
    const schema = JSON.parse(byName.retail.tools.find((t: any) => t.name === 'get_order_details').parametersJson);
    expect(schema.required).toEqual(['order_id']);
  });

  it('replays gold actions through Call and scores them 1 with an agent stop, 0 otherwise', async () => {
    const task = oracle.tasks.find((t: any) => t.db_changed);
    const { sessionId } = await client.openSession({ domain: 'retail', taskId: task.id });
    const messages = [];
    for (const a of task.gold_actions) {
      const r = await client.call({ sessionId, toolName: a.name, argumentsJson: JSON.stringify(a.arguments), callId: a.action_id });
      expect(r.output).toBe(a.output);
      expect(r.error).toBe(a.error);
      messages.push({ role: Role.ASSISTANT, toolCalls: [{ id: a.action_id, name: a.name, argumentsJson: JSON.stringify(a.arguments) }] });
    }
    const good = await client.evaluate({ sessionId, termination: Termination.AGENT_STOP, messages });
    expect(good.dbHash).toBe(task.final_db_hash);
    expect(good.goldDbHash).toBe(task.final_db_hash);
    expect(good.components.find((c) => c.name === 'DB')?.value).toBe(1);
    const bad = await client.evaluate({ sessionId, termination: Termination.MAX_STEPS, messages });
    expect(bad.reward).toBe(0);
    await client.closeSession({ sessionId });
  });

  it('answers bad input with the right status and a message naming the field', async () => {
    const { sessionId } = await client.openSession({ domain: 'retail' });
    const other = await client.openSession({ domain: 'retail' });
    const before = await client.call({ sessionId: other.sessionId, toolName: 'get_order_details', argumentsJson: '{"order_id":"#W2378156"}' });

    let e = await failure(client.openSession({ domain: 'bank' }));
    expect(e.code).toBe('not_found');
    expect(e.message).toMatch(/domain.*bank.*retail/);
    e = await failure(client.call({ sessionId: 'nope', toolName: 'get_user_details', argumentsJson: '{}' }));
    expect(e.code).toBe('not_found');
    expect(e.message).toContain("session 'nope' does not exist");
    e = await failure(client.call({ sessionId, toolName: 'drop_tables', argumentsJson: '{}' }));
    expect(e.code).toBe('not_found');
    expect(e.message).toContain("Tool 'drop_tables' not found");
    e = await failure(client.call({ sessionId, toolName: 'get_user_details', argumentsJson: '{"user_id": ' }));
    expect(e.code).toBe('invalid_argument');
    expect(e.message).toMatch(/arguments_json: not valid JSON/);
    e = await failure(client.call({ sessionId, toolName: 'get_user_details', argumentsJson: '{"user_id": 42}' }));
    expect(e.code).toBe('invalid_argument');
    expect(e.message).toMatch(/user_id.*string/);
    e = await failure(client.call({ sessionId, toolName: 'cancel_pending_order', argumentsJson: '{"order_id":"#W1"}' }));
    expect(e.code).toBe('invalid_argument');
    expect(e.message).toMatch(/missing required argument 'reason'/);
    e = await failure(client.call({ sessionId, toolName: 'get_user_details', argumentsJson: '[1,2]' }));
    expect(e.code).toBe('invalid_argument');
    e = await failure(client.call({ sessionId, toolName: 'get_user_details', argumentsJson: JSON.stringify({ user_id: 'x'.repeat(5000) }) }));
    expect(e.code).toBe('resource_exhausted');
    expect(e.message).toMatch(/arguments_json: \d+ bytes exceeds the limit of 4096/);
    e = await failure(client.forkSession({ sessionId, count: 0 }));
    expect(e.code).toBe('invalid_argument');
    expect(e.message).toContain('count');
    await client.closeSession({ sessionId });
    e = await failure(client.call({ sessionId, toolName: 'get_user_details', argumentsJson: '{"user_id":"a"}' }));
    expect(e.code).toBe('not_found');
    expect(e.message).toContain('was closed');
    e = await failure(client.closeSession({ sessionId }));
    expect(e.code).toBe('not_found');

    // The other session is untouched and still serves.
    const after = await client.call({ sessionId: other.sessionId, toolName: 'get_order_details', argumentsJson: '{"order_id":"#W2378156"}' });
    expect(after.output).toBe(before.output);
  });

  it('keeps concurrent sessions and forks isolated', async () => {
    const tasks = oracle.tasks.filter((t: any) => t.db_changed).slice(0, 12);
    await Promise.all(
      tasks.map(async (task: any) => {
        const { sessionId } = await client.openSession({ domain: 'retail', taskId: task.id });
        for (const a of task.gold_actions) await client.call({ sessionId, toolName: a.name, argumentsJson: JSON.stringify(a.arguments) });
        const r = await client.evaluate({ sessionId, termination: Termination.USER_STOP, messages: [] });
        expect(r.dbHash).toBe(task.final_db_hash);
      }),
    );
    const task = tasks[0];
    const { sessionId } = await client.openSession({ domain: 'retail', taskId: task.id });
    const { sessionIds } = await client.forkSession({ sessionId, count: 4 });
    expect(sessionIds).toHaveLength(4);
    for (const a of task.gold_actions) await client.call({ sessionId: sessionIds[0], toolName: a.name, argumentsJson: JSON.stringify(a.arguments) });
    const changed = await client.evaluate({ sessionId: sessionIds[0], termination: Termination.AGENT_STOP, messages: [] });
    const untouched = await client.evaluate({ sessionId: sessionIds[1], termination: Termination.AGENT_STOP, messages: [] });
    const parent = await client.evaluate({ sessionId, termination: Termination.AGENT_STOP, messages: [] });
    expect(changed.dbHash).toBe(task.final_db_hash);
    expect(untouched.dbHash).toBe(oracle.initial_db_hash);
    expect(parent.dbHash).toBe(oracle.initial_db_hash);
  });

  it('opens and forks a group base in one call, and closes a session with its Evaluate (retries get the same answer)', async () => {
    const task = oracle.tasks.find((t: any) => t.db_changed);
    const a = await client.openSession({ domain: 'retail', taskId: task.id, sessionId: `fork-test/${task.id}/base`, fork: true });
    const b = await client.openSession({ domain: 'retail', taskId: task.id, sessionId: `fork-test/${task.id}/base`, fork: true });
    expect(b.sessionId).toBe(a.sessionId);
    expect(new Set([a.sessionId, a.forkSessionId, b.forkSessionId]).size).toBe(3);
    for (const g of task.gold_actions) await client.call({ sessionId: a.forkSessionId, toolName: g.name, argumentsJson: JSON.stringify(g.arguments) });
    const scored = await client.evaluate({ sessionId: a.forkSessionId, termination: Termination.AGENT_STOP, messages: [], closeSession: true });
    expect([scored.closed, scored.dbHash]).toEqual([true, task.final_db_hash]);
    const again = await client.evaluate({ sessionId: a.forkSessionId, termination: Termination.AGENT_STOP, messages: [], closeSession: true });
    expect(again).toEqual(scored);
    expect((await failure(client.call({ sessionId: a.forkSessionId, toolName: 'get_user_details', argumentsJson: '{"user_id":"x"}' }))).code).toBe('not_found');
    // The sibling fork and the base are untouched.
    expect((await client.evaluate({ sessionId: b.forkSessionId, termination: Termination.AGENT_STOP, messages: [] })).dbHash).toBe(oracle.initial_db_hash);
    expect((await client.evaluate({ sessionId: a.sessionId, termination: Termination.AGENT_STOP, messages: [] })).closed).toBe(false);
    await client.closeSession({ sessionId: b.forkSessionId });
    await client.closeSession({ sessionId: a.sessionId });
  });

  it("leaves out the domain's tools and policy for a client that sends their digest", async () => {
    const full = await client.openSession({ domain: 'retail' });
    expect(full.schemaDigest).toMatch(/^[0-9a-f]{32}$/);
    expect([full.tools.length > 0, full.policy.length > 0]).toEqual([true, true]);
    const known = await client.openSession({ domain: 'retail', knownSchemaDigest: full.schemaDigest, fork: true });
    expect([known.tools, known.policy, known.schemaDigest, known.forkSessionId !== '']).toEqual([[], '', full.schemaDigest, true]);
    // A stale or foreign digest (another domain's) gets everything again.
    const mock = await client.openSession({ domain: 'mock', knownSchemaDigest: full.schemaDigest });
    expect(mock.schemaDigest).not.toBe(full.schemaDigest);
    expect([mock.tools.length > 0, mock.policy.length > 0]).toEqual([true, true]);
    const stale = await client.openSession({ domain: 'retail', knownSchemaDigest: 'f'.repeat(32) });
    expect([stale.tools, stale.policy, stale.schemaDigest]).toEqual([full.tools, full.policy, full.schemaDigest]);
    for (const id of [full.sessionId, known.sessionId, known.forkSessionId, mock.sessionId, stale.sessionId]) await client.closeSession({ sessionId: id });
  });

  it('replays a task\'s gold actions after its first session opened, before any Evaluate; its hash is the reference one', async () => {
    const task = oracle.tasks.filter((t: any) => t.db_changed).at(-1);
    const retail = sb.service.domains.get('retail')!;
    expect(retail.goldCache.has(task.id)).toBe(false);
    const s = await client.openSession({ domain: 'retail', taskId: task.id, sessionId: '' });
    // Queued behind the answer, computed on a later turn of the event loop.
    for (let i = 0; i < 50 && !retail.goldCache.has(task.id); i++) await new Promise((r) => setTimeout(r, 10));
    const gold = retail.goldCache.get(task.id);
    expect(gold?.db).toBeDefined();
    expect(gold?.dbHash).toBeUndefined(); // hashed only when an Evaluate asks for it
    const scored = await client.evaluate({ sessionId: s.sessionId, termination: Termination.AGENT_STOP, messages: [], closeSession: true });
    expect(scored.goldDbHash).toBe(task.final_db_hash);
    expect(scored.dbHash).toBe(oracle.initial_db_hash); // nothing was done in the session
    expect(gold?.dbHash).toBe(task.final_db_hash);
  });

  it('scores the same without the hashes when omit_db_hashes is set', async () => {
    const task = oracle.tasks.filter((t: any) => t.db_changed).at(-2);
    const open = async () => (await client.openSession({ domain: 'retail', taskId: task.id, sessionId: '' })).sessionId;
    // One session left as opened (the DB differs from the gold one), one brought to the gold state.
    const [untouched, solved] = [await open(), await open()];
    for (const a of task.gold_actions) {
      await client.call({ sessionId: solved, toolName: a.name, argumentsJson: JSON.stringify(a.arguments), callId: a.action_id ?? '' }).catch(() => undefined);
    }
    for (const sessionId of [untouched, solved]) {
      const full = await client.evaluate({ sessionId, termination: Termination.AGENT_STOP, messages: [] });
      const lean = await client.evaluate({ sessionId, termination: Termination.AGENT_STOP, messages: [], omitDbHashes: true });
      expect(lean.dbHash).toBe('');
      expect(lean.goldDbHash).toBe('');
      expect(lean.components).toEqual(full.components);
      expect(lean.reward).toBe(full.reward);
      const db = full.components.find((c) => c.name === 'DB')!.value;
      expect(db).toBe(sessionId === solved ? 1 : 0);
      expect(full.dbHash === full.goldDbHash).toBe(sessionId === solved);
      if (sessionId === solved) expect(full.dbHash).toBe(task.final_db_hash);
      else expect(full.dbHash).toBe(oracle.initial_db_hash);
      await client.closeSession({ sessionId });
    }
  });

  it('scores mock tasks with initialization actions and env assertions', async () => {
    const { sessionId } = await client.openSession({ domain: 'mock', taskId: 'update_task_with_history_and_env_assertions' });
    const r0 = await client.evaluate({ sessionId, termination: Termination.AGENT_STOP, messages: [] });
    expect(r0.reward).toBe(0);
    const call = await client.call({ sessionId, toolName: 'update_task_status', argumentsJson: '{"task_id":"task_2","status":"completed"}' });
    expect(call.error).toBe(false);
    const r1 = await client.evaluate({ sessionId, termination: Termination.AGENT_STOP, messages: [] });
    expect(r1.components.find((c) => c.name === 'ENV_ASSERTION')?.value).toBe(1);
    expect(r1.reward).toBe(1);
    const t = await client.openSession({ domain: 'mock', taskId: 'impossible_task_1' });
    const transfer = await client.call({ sessionId: t.sessionId, toolName: 'transfer_to_human_agents', argumentsJson: '{"summary":"delete tasks"}' });
    expect(transfer.terminal).toBe(true);
    const r2 = await client.evaluate({
      sessionId: t.sessionId,
      termination: Termination.AGENT_STOP,
      messages: [{ role: Role.ASSISTANT, toolCalls: [{ name: 'transfer_to_human_agents', argumentsJson: '{"summary":"anything"}' }] }],
    });
    expect(r2.components.find((c) => c.name === 'ACTION')?.value).toBe(1);
    expect(r2.reward).toBe(1);
  });

  it('exports Prometheus metrics', async () => {
    const res = await fetch(`http://127.0.0.1:${sb.metrics!.port}/metrics`);
    const text = await res.text();
    expect(text).toContain('parley_sandbox_tool_calls_total');
    expect(text).toContain('parley_sandbox_sessions_active');
  });
});

describeTau2('mock', 'sandbox limits', () => {
  let sb: RunningSandbox;
  let client: Client;
  beforeAll(async () => {
    sb = await serveSandbox({ port: 0, host: '127.0.0.1', metricsPort: -1, dataDir: tau2DataDir(), domains: ['mock'], maxSessions: 3, maxCallsPerSession: 2, sessionIdleTtlMs: 300 });
    client = createGrpcClient(Sandbox, `127.0.0.1:${sb.grpc.port}`);
  });
  afterAll(async () => {
    client?.close();
    await sb?.close();
  });

  it('enforces sessions per server, calls per session and the idle TTL', async () => {
    const a = await client.openSession({ domain: 'mock' });
    await client.openSession({ domain: 'mock' });
    await client.openSession({ domain: 'mock' });
    let e = await failure(client.openSession({ domain: 'mock' }));
    expect(e.code).toBe('resource_exhausted');
    expect(e.message).toContain('limit is 3');
    await client.call({ sessionId: a.sessionId, toolName: 'get_users', argumentsJson: '{}' });
    await client.call({ sessionId: a.sessionId, toolName: 'get_users', argumentsJson: '{}' });
    e = await failure(client.call({ sessionId: a.sessionId, toolName: 'get_users', argumentsJson: '{}' }));
    expect(e.code).toBe('resource_exhausted');
    expect(e.message).toContain('2 tool calls');
    await new Promise((r) => setTimeout(r, 700));
    e = await failure(client.call({ sessionId: a.sessionId, toolName: 'get_users', argumentsJson: '{}' }));
    expect(e.code).toBe('not_found');
    expect(e.message).toContain('expired');
    const fresh = await client.openSession({ domain: 'mock', sessionId: 'episode-1' });
    const again = await client.openSession({ domain: 'mock', sessionId: 'episode-1' });
    expect(again.sessionId).toBe(fresh.sessionId);
  });

  it('closes the least recently used group base to make room at the limit, never a working session', async () => {
    await new Promise((r) => setTimeout(r, 400)); // the previous test's sessions expire
    const g1 = await client.openSession({ domain: 'mock', sessionId: 'run/g1/base', fork: true }); // base + fork: 2 of 3
    const g2 = await client.openSession({ domain: 'mock', sessionId: 'run/g2/base', fork: true }); // full: g1's base makes room
    let e = await failure(client.call({ sessionId: g1.sessionId, toolName: 'get_users', argumentsJson: '{}' }));
    expect([e.code, e.message]).toEqual(['not_found', expect.stringContaining('group base closed to make room')]);
    // Both forks and g2's base (3 of 3) are live; the forks are never closed for room.
    for (const id of [g1.forkSessionId, g2.forkSessionId, g2.sessionId]) await client.call({ sessionId: id, toolName: 'get_users', argumentsJson: '{}' });
    const g3 = await client.openSession({ domain: 'mock', sessionId: 'run/g3/base', fork: true }); // evicts g2's base, then g3's own base for its fork
    await client.call({ sessionId: g3.forkSessionId, toolName: 'get_users', argumentsJson: '{}' });
    e = await failure(client.openSession({ domain: 'mock' })); // three working forks: no room
    expect(e.code).toBe('resource_exhausted');
  });
});
