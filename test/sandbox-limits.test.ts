// The Sandbox under hostile input over real gRPC: work, size and nesting budgets answer at once with a
// precise error, and no session can stall or crowd out the others.

import { afterAll, beforeAll, expect, it } from 'vitest';
import { Sandbox } from '../services/core/gen/parley/v1/sandbox_pb.js';
import { createGrpcClient, type ClientOf } from '../services/core/grpc.js';
import { ParleyError } from '../services/core/errors.js';
import { serveSandbox, type RunningSandbox } from '../services/sandbox/index.js';
import { argumentStringBytes } from '../services/sandbox/tool-runner.js';
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

/** Code of a failed call, and whether its message and field are short (an echo of at most 200 characters in its template). */
async function shortFailure(p: Promise<unknown>): Promise<{ code: string; short: boolean }> {
  const e = await failure(p);
  return { code: e.code, short: e.message.length <= 300 && (e.field ?? '').length <= 300 };
}

describeTau2('retail', 'sandbox limits over gRPC', () => {
  let sb: RunningSandbox;
  let client: Client;

  beforeAll(async () => {
    sb = await serveSandbox({ port: 0, host: '127.0.0.1', metricsPort: -1, dataDir: tau2DataDir(), domains: ['retail', 'airline'] });
    client = createGrpcClient(Sandbox, `127.0.0.1:${sb.grpc.port}`);
  });
  afterAll(async () => {
    client?.close();
    await sb?.close();
  });

  const calc = (sessionId: string, expression: string) =>
    client.call({ sessionId, toolName: 'calculate', argumentsJson: JSON.stringify({ expression }), callId: '' });

  it("answers calculate's 175-byte power bomb with a tool error, and other sessions go on", async () => {
    const a = await client.openSession({ domain: 'retail' });
    const b = await client.openSession({ domain: 'retail' });
    const bomb = Array(16).fill('9**4000000').join('+');
    const [bombed, other] = await Promise.all([calc(a.sessionId, bomb), calc(b.sessionId, '(12.5 + 3) * 2')]);
    expect(bombed).toMatchObject({ output: 'Error: calculation too large: an intermediate result would exceed 65536 bits', error: true });
    expect(other).toMatchObject({ output: '31.0', error: false });
    expect(await calc(a.sessionId, '466.75 + 288.82 + 135.24 + 193.38 + 46.66')).toMatchObject({ output: '1130.85', error: false });
  });

  it('cuts echoed strings in every error, so a 128 KiB session id is answered at once beside other calls', async () => {
    const huge = 'x'.repeat(128 * 1024);
    const s = await client.openSession({ domain: 'retail' });
    const [gone, ok] = await Promise.all([
      shortFailure(client.call({ sessionId: huge, toolName: 'calculate', argumentsJson: '{"expression": "1"}', callId: '' })),
      calc(s.sessionId, '1 + 1'),
    ]);
    expect(gone).toEqual({ code: 'not_found', short: true });
    expect(ok.output).toBe('2.0');
    expect(await shortFailure(client.closeSession({ sessionId: huge }))).toEqual({ code: 'not_found', short: true });
    expect(await shortFailure(client.evaluate({ sessionId: huge, messages: [] }))).toEqual({ code: 'not_found', short: true });
    expect(await shortFailure(client.openSession({ domain: 'retail', sessionId: huge }))).toEqual({ code: 'invalid_argument', short: true });
    expect(await shortFailure(client.openSession({ domain: huge }))).toEqual({ code: 'not_found', short: true });
    expect(await shortFailure(client.openSession({ domain: 'retail', taskId: huge }))).toEqual({ code: 'not_found', short: true });
    expect(await shortFailure(client.listTasks({ domain: 'retail', split: huge }))).toEqual({ code: 'not_found', short: true });
    expect(await shortFailure(client.call({ sessionId: s.sessionId, toolName: huge, argumentsJson: '{}', callId: '' }))).toEqual({ code: 'not_found', short: true });
    const key = 'k'.repeat(60_000);
    const e = await failure(client.call({ sessionId: s.sessionId, toolName: 'calculate', argumentsJson: JSON.stringify({ expression: '1', [key]: 1 }), callId: '' }));
    expect(e.code).toBe('invalid_argument');
    expect(e.message).toMatch(/^arguments_json: calculate: unexpected argument 'k+\.\.\. \(\d+ chars\)$/);
    expect(e.message.length).toBeLessThanOrEqual(250);
    expect(e.field!.length).toBeLessThanOrEqual(250);
    // A field travels as metadata, which must be printable ASCII: a key like 'größe' once left the call unanswered.
    const bad = await failure(client.call({ sessionId: s.sessionId, toolName: 'calculate', argumentsJson: '{"expression": "1", "größe": 1}', callId: '' }));
    expect([bad.code, bad.field]).toEqual(['invalid_argument', 'arguments_json.gr\\u00f6\\u00dfe']);
    expect((await calc(s.sessionId, '2 * 3')).output).toBe('6.0');
  });

  it('refuses deep nesting in tool arguments with INVALID_ARGUMENT, and treats __proto__ and constructor as ordinary keys', async () => {
    const s = await client.openSession({ domain: 'retail' });
    for (const inner of ['1', '1.5']) {
      const e = await failure(client.call({ sessionId: s.sessionId, toolName: 'calculate', argumentsJson: `{"expression": ${'['.repeat(30_000)}${inner}${']'.repeat(30_000)}}`, callId: '' }));
      expect([e.code, e.message]).toEqual(['invalid_argument', 'arguments_json: nesting deeper than 100 levels at position 114']);
    }
    for (const key of ['__proto__', 'constructor']) {
      const e = await failure(client.call({ sessionId: s.sessionId, toolName: 'calculate', argumentsJson: `{"expression": "1 + 1", "${key}": {"polluted": 1}}`, callId: '' }));
      expect([e.code, e.message]).toEqual(['invalid_argument', `arguments_json: calculate: unexpected argument '${key}' (accepted: expression)`]);
    }
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    expect((await calc(s.sessionId, '1 + 1')).output).toBe('2.0');
  });

  it('refuses WRITE calls past the session state budget with RESOURCE_EXHAUSTED naming it; forks inherit the count', async () => {
    const budget = sb.config.maxSessionStateBytes;
    expect(budget).toBe(1024 * 1024);
    const s = await client.openSession({ domain: 'retail' });
    const write = (sessionId: string, address1: string) =>
      client.call({
        sessionId,
        toolName: 'modify_user_address',
        argumentsJson: JSON.stringify({ user_id: 'noah_brown_6181', address1, address2: '', city: 'Austin', state: 'TX', country: 'USA', zip: '78701' }),
        callId: '',
      });
    const big = 'x'.repeat(60_000);
    const fits = Math.floor(budget / 60_100);
    for (let i = 0; i < fits; i++) expect((await write(s.sessionId, big)).error).toBe(false);
    const [fork] = (await client.forkSession({ sessionId: s.sessionId, count: 1 })).sessionIds;
    for (const id of [s.sessionId, fork!]) {
      const e = await failure(write(id, big));
      expect(e.code).toBe('resource_exhausted');
      expect(e.message).toMatch(/past its state budget of 1048576 bytes \(maxSessionStateBytes\)$/);
      // Reads and small writes that still fit go on.
      expect((await calc(id, '1 + 1')).output).toBe('2.0');
      expect((await write(id, '1 Main St')).error).toBe(false);
    }
    // A fresh session has its own budget.
    const other = await client.openSession({ domain: 'retail' });
    expect((await write(other.sessionId, big)).error).toBe(false);
  });

  it("fits every task's gold WRITE actions in the default state budget many times over", () => {
    let most = 0;
    for (const d of sb.service.domains.values()) {
      for (const task of d.tasks.values()) {
        let bytes = 0;
        for (const a of task.evaluation_criteria?.actions ?? []) {
          if (d.domain.tools.find((t) => t.name === a.name)?.type === 'WRITE') bytes += argumentStringBytes(a.arguments ?? {});
        }
        most = Math.max(most, bytes);
      }
    }
    expect(most).toBeGreaterThan(0);
    expect(most * 100).toBeLessThan(sb.config.maxSessionStateBytes);
  });
});
