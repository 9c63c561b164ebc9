// Conformance: request-reply — headers both ways, queue-group load balancing, wildcards, and the
// no_responders, timeout and handler_failed errors.

import { expect, it } from 'vitest';
import { bytes, expectBusError, text, uniq, type OpenBus } from './conformance-helpers.js';

export function requestConformance(open: OpenBus): void {
  it('carries data and headers in both directions', async (ctx) => {
    const bus = await open(ctx);
    const subject = `${uniq('svc').toLowerCase()}.Sandbox.Call`;
    const sub = await bus.subscribe(subject, {}, (msg) => {
      expect(msg.expectsReply).toBe(true);
      return {
        data: bytes(text(msg.data).toUpperCase()),
        headers: { 'Parley-Status': 'OK', 'Echo-Deadline': msg.headers['Parley-Deadline'] ?? 'none' },
      };
    });
    const reply = await bus.request(subject, bytes('hello'), { timeoutMs: 2_000, headers: { 'Parley-Deadline': '1500' } });
    expect(text(reply.data)).toBe('HELLO');
    expect(reply.headers['Parley-Status']).toBe('OK');
    expect(reply.headers['Echo-Deadline']).toBe('1500');
    await sub.close();
    await sub.close();
    await expectBusError(bus.request(subject, bytes('again'), { timeoutMs: 2_000 }), 'no_responders', true);
  });

  it('a queue group handles each request exactly once, spread over its members', async (ctx) => {
    const bus = await open(ctx);
    const subject = `${uniq('svc').toLowerCase()}.work`;
    const handled: Array<{ member: number; id: string }> = [];
    const subs = await Promise.all(
      [0, 1, 2].map((member) =>
        bus.subscribe(subject, { queue: 'sandbox' }, (msg) => {
          handled.push({ member, id: text(msg.data) });
          return { data: bytes(`${member}`) };
        }),
      ),
    );
    const ids = Array.from({ length: 30 }, (_, i) => `req-${i}`);
    const replies = await Promise.all(ids.map((id) => bus.request(subject, bytes(id), { timeoutMs: 5_000 })));
    expect(replies).toHaveLength(30);
    expect(handled.map((h) => h.id).sort()).toEqual([...ids].sort()); // each once, none lost
    expect(new Set(handled.map((h) => h.member)).size).toBeGreaterThan(1);
    await Promise.all(subs.map((s) => s.close()));
  });

  it('wildcard subscriptions see the concrete subject', async (ctx) => {
    const bus = await open(ctx);
    const prefix = uniq('svc').toLowerCase();
    await bus.subscribe(`${prefix}.*.get`, {}, (msg) => ({ data: bytes(msg.subject) }));
    const reply = await bus.request(`${prefix}.session42.get`, bytes(''), { timeoutMs: 2_000 });
    expect(text(reply.data)).toBe(`${prefix}.session42.get`);
  });

  it('fails with no_responders, timeout and handler_failed', async (ctx) => {
    const bus = await open(ctx);
    const prefix = uniq('svc').toLowerCase();
    const none = await expectBusError(bus.request(`${prefix}.nobody`, bytes('x'), { timeoutMs: 5_000 }), 'no_responders', true);
    expect(none.message).toContain(`${prefix}.nobody`);
    await bus.subscribe(`${prefix}.silent`, {}, () => undefined);
    await expectBusError(bus.request(`${prefix}.silent`, bytes('x'), { timeoutMs: 300 }), 'timeout', true);
    await bus.subscribe(`${prefix}.broken`, {}, async () => {
      throw new Error('sandbox exploded\nwith detail');
    });
    const failed = await expectBusError(bus.request(`${prefix}.broken`, bytes('x'), { timeoutMs: 2_000 }), 'handler_failed', false);
    expect(failed.message).toContain('sandbox exploded');
    await expectBusError(bus.request(`${prefix}.bad`, bytes('x'), { timeoutMs: 0 }), 'invalid');
    await expectBusError(bus.subscribe(`${prefix}..bad`, {}, () => undefined), 'invalid');
  });
}
