// Conformance: streams and publishing (dedup, retention, max age, config errors) and the
// bus lifecycle.

import { expect, it } from 'vitest';
import { bytes, expectBusError, sleep, text, uniq, type OpenBus } from './conformance-helpers.js';
import type { Bus, StreamConfig } from './types.js';

export async function makeStream(bus: Bus, overrides: Partial<StreamConfig> = {}): Promise<{ name: string; subject: string }> {
  const name = uniq('S');
  const subject = uniq('t').toLowerCase();
  await bus.ensureStream({ name, subjects: [`${subject}.>`], retention: 'limits', duplicateWindowMs: 60_000, ...overrides });
  return { name, subject };
}

export function streamConformance(open: OpenBus): void {
  it('publishes with increasing sequences and reports stream state', async (ctx) => {
    const bus = await open(ctx);
    const { name, subject } = await makeStream(bus);
    const a = await bus.publish(`${subject}.a`, bytes('one'));
    const b = await bus.publish(`${subject}.b`, bytes('two'), { headers: { 'X-Kind': 'test' } });
    expect(a.duplicate).toBe(false);
    expect(b.seq).toBe(a.seq + 1);
    const st = await bus.streamInfo(name);
    expect(st).toMatchObject({ name, messages: 2, firstSeq: a.seq, lastSeq: b.seq, consumers: 0 });
  });

  it('deduplicates by msgId within the window, returning the first sequence', async (ctx) => {
    const bus = await open(ctx);
    const { name, subject } = await makeStream(bus);
    const first = await bus.publish(`${subject}.x`, bytes('v1'), { msgId: 'task-1' });
    const again = await bus.publish(`${subject}.x`, bytes('v2'), { msgId: 'task-1' });
    const other = await bus.publish(`${subject}.x`, bytes('v3'), { msgId: 'task-2' });
    expect(again).toEqual({ seq: first.seq, duplicate: true });
    expect(other.duplicate).toBe(false);
    expect((await bus.streamInfo(name)).messages).toBe(2);
    const c = await bus.consumer({ stream: name, durable: 'd', ackWaitMs: 5_000, maxDeliver: 3, maxAckPending: 10 });
    const m = await c.next();
    expect(text(m!.data)).toBe('v1');
    expect(m!.headers['Nats-Msg-Id']).toBe('task-1');
    m!.ack();
  });

  it('work-queue retention removes acked and termed messages; limits retention keeps them', async (ctx) => {
    const bus = await open(ctx);
    for (const retention of ['workqueue', 'limits'] as const) {
      const { name, subject } = await makeStream(bus, { retention });
      for (let i = 0; i < 3; i++) await bus.publish(`${subject}.job`, bytes(`j${i}`));
      const c = await bus.consumer({ stream: name, durable: 'w', ackWaitMs: 5_000, maxDeliver: 3, maxAckPending: 10 });
      (await c.next())!.ack();
      await (await c.next())!.ackSync();
      (await c.next())!.term('bad input');
      expect(await c.next({ expiresMs: 1_000 })).toBeNull();
      expect((await bus.streamInfo(name)).messages).toBe(retention === 'workqueue' ? 0 : 3);
    }
  });

  it('a work-queue stream refuses a second consumer with an overlapping filter', async (ctx) => {
    const bus = await open(ctx);
    const { name, subject } = await makeStream(bus, { retention: 'workqueue' });
    const base = { stream: name, ackWaitMs: 1_000, maxDeliver: 2, maxAckPending: 5 };
    await bus.consumer({ ...base, durable: 'a', filterSubject: `${subject}.a` });
    await bus.consumer({ ...base, durable: 'b', filterSubject: `${subject}.b` });
    await expectBusError(bus.consumer({ ...base, durable: 'c', filterSubject: `${subject}.*` }), 'conflict', false);
    await bus.consumer({ ...base, durable: 'a', filterSubject: `${subject}.a` }); // re-binding is fine
  });

  it('lastMessage reads the newest message on a subject without a consumer', async (ctx) => {
    const bus = await open(ctx);
    const { name, subject } = await makeStream(bus);
    expect(await bus.lastMessage(name, `${subject}.a`)).toBeNull();
    await bus.publish(`${subject}.a`, bytes('a1'), { msgId: 'a1' });
    const a2 = await bus.publish(`${subject}.a`, bytes('a2'), { msgId: 'a2', headers: { 'X-Kind': 'test' } });
    await bus.publish(`${subject}.b`, bytes('b1'));
    const last = await bus.lastMessage(name, `${subject}.a`);
    expect(last).toMatchObject({ subject: `${subject}.a`, seq: a2.seq, headers: { 'X-Kind': 'test', 'Nats-Msg-Id': 'a2' } });
    expect(text(last!.data)).toBe('a2');
    expect(last!.storedAt).toBeInstanceOf(Date);
    expect(await bus.lastMessage(name, `${subject}.c`)).toBeNull();
    // It is a read: a consumer created afterwards still gets every message.
    const c = await bus.consumer({ stream: name, durable: 'd', ackWaitMs: 5_000, maxDeliver: 1, maxAckPending: 10 });
    expect(text((await c.next())!.data)).toBe('a1');
    await expectBusError(bus.lastMessage(name, `${subject}.*`), 'invalid', false);
    await expectBusError(bus.lastMessage(uniq('missing'), `${subject}.a`), 'not_found', false);
  });

  it('removes messages older than maxAgeMs', async (ctx) => {
    const bus = await open(ctx);
    const { name, subject } = await makeStream(bus, { maxAgeMs: 1_000, duplicateWindowMs: 500 });
    await bus.publish(`${subject}.old`, bytes('x'));
    expect((await bus.streamInfo(name)).messages).toBe(1);
    await sleep(2_000);
    expect((await bus.streamInfo(name)).messages).toBe(0);
  });

  it('removes the oldest messages once the stream holds more than maxBytes', async (ctx) => {
    const bus = await open(ctx);
    const { name, subject } = await makeStream(bus, { maxBytes: 4096 });
    const payload = new Uint8Array(1500);
    for (let i = 0; i < 5; i++) await bus.publish(`${subject}.m`, payload);
    const state = await bus.streamInfo(name);
    expect(state.lastSeq).toBe(5);
    expect(state.messages).toBe(2);
    expect(state.firstSeq).toBe(4);
  });

  it('ensureStream is idempotent, updates settings, and refuses incompatible changes', async (ctx) => {
    const bus = await open(ctx);
    const { name, subject } = await makeStream(bus, { retention: 'workqueue' });
    await bus.publish(`${subject}.a`, bytes('kept'));
    const again = await bus.ensureStream({ name, subjects: [`${subject}.>`], retention: 'workqueue', duplicateWindowMs: 30_000 });
    expect(again.messages).toBe(1);
    await expectBusError(
      bus.ensureStream({ name, subjects: [`${subject}.>`], retention: 'limits', duplicateWindowMs: 30_000 }),
      'conflict',
      false,
    );
    await expectBusError(
      bus.ensureStream({ name: uniq('S'), subjects: [`${subject}.a`], retention: 'limits', duplicateWindowMs: 1_000 }),
      'conflict',
    );
    expect(await bus.deleteStream(name)).toBe(true);
    expect(await bus.deleteStream(name)).toBe(false);
    await expectBusError(bus.streamInfo(name), 'not_found', false);
  });

  it('rejects bad input with invalid and unknown targets with not_found', async (ctx) => {
    const bus = await open(ctx);
    const { subject } = await makeStream(bus);
    await expectBusError(bus.ensureStream({ name: 'has.dot', subjects: ['a'], retention: 'limits', duplicateWindowMs: 1 }), 'invalid');
    await expectBusError(bus.ensureStream({ name: uniq('S'), subjects: ['a.>.b'], retention: 'limits', duplicateWindowMs: 1 }), 'invalid');
    await expectBusError(bus.ensureStream({ name: uniq('S'), subjects: ['q'], retention: 'limits', duplicateWindowMs: 0 }), 'invalid');
    await expectBusError(bus.publish(`${subject}.*`, bytes('x')), 'invalid', false);
    await expectBusError(bus.publish(`${subject}.a`, bytes('x'), { headers: { 'bad key': 'v' } }), 'invalid');
    await expectBusError(bus.publish(uniq('nowhere').toLowerCase(), bytes('x')), 'not_found', false);
    await expectBusError(bus.streamInfo(uniq('missing')), 'not_found');
    await expectBusError(
      bus.consumer({ stream: uniq('missing'), durable: 'd', ackWaitMs: 1_000, maxDeliver: 1, maxAckPending: 1 }),
      'not_found',
    );
  });

  it('close is safe twice and later calls fail with closed', async (ctx) => {
    const bus = await open(ctx);
    const { name, subject } = await makeStream(bus);
    const c = await bus.consumer({ stream: name, durable: 'd', ackWaitMs: 1_000, maxDeliver: 1, maxAckPending: 1 });
    const pending = c.next({ expiresMs: 20_000 });
    const running = (async () => {
      const seen: string[] = [];
      for await (const m of c.consume({ expiresMs: 20_000 })) seen.push(m.subject);
      return seen;
    })();
    await sleep(200);
    await bus.close();
    await bus.close();
    await expectBusError(pending, 'closed', false);
    expect(await running).toEqual([]);
    await expectBusError(bus.publish(`${subject}.a`, bytes('x')), 'closed', false);
    await expectBusError(bus.kv('b'), 'closed');
    await expectBusError(bus.request('x', bytes(''), { timeoutMs: 100 }), 'closed');
  });
}
