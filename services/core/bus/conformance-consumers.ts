// Conformance: durable pull consumers — ack, redelivery after ack wait, nak with delay, term,
// working(), maxDeliver, maxAckPending, filters, consume(), and resuming a durable.

import { expect, it } from 'vitest';
import { bytes, expectBusError, sleep, text, type OpenBus } from './conformance-helpers.js';
import { makeStream } from './conformance-streams.js';
import type { Bus, ConsumerConfig } from './types.js';

async function setup(bus: Bus, count: number, cfg: Partial<ConsumerConfig> = {}) {
  const { name, subject } = await makeStream(bus);
  for (let i = 0; i < count; i++) await bus.publish(`${subject}.m`, bytes(`m${i}`), { headers: { 'X-Index': String(i) } });
  const config: ConsumerConfig = { stream: name, durable: 'd', ackWaitMs: 400, maxDeliver: 5, maxAckPending: 100, ...cfg };
  return { name, subject, config, consumer: await bus.consumer(config) };
}

export function consumerConformance(open: OpenBus): void {
  it('delivers in order with subject, headers, seq and deliveryCount; acked messages do not return', async (ctx) => {
    const bus = await open(ctx);
    const { consumer, subject } = await setup(bus, 3, { ackWaitMs: 5_000 });
    let lastSeq = 0;
    for (let i = 0; i < 3; i++) {
      const m = (await consumer.next())!;
      expect(text(m.data)).toBe(`m${i}`);
      expect(m.subject).toBe(`${subject}.m`);
      expect(m.headers['X-Index']).toBe(String(i));
      expect(m.seq).toBeGreaterThan(lastSeq);
      expect([m.deliveryCount, m.redelivered]).toEqual([1, false]);
      lastSeq = m.seq;
      m.ack();
      m.nak(); // ignored: the first end wins
    }
    expect(await consumer.next({ expiresMs: 1_000 })).toBeNull();
    expect(await consumer.info()).toEqual({ pending: 0, ackPending: 0 });
  });

  it('redelivers an unacked message after ackWait with a higher deliveryCount', async (ctx) => {
    const bus = await open(ctx);
    const { consumer } = await setup(bus, 1);
    const first = (await consumer.next())!;
    const again = (await consumer.next({ expiresMs: 3_000 }))!;
    expect(again.seq).toBe(first.seq);
    expect([again.deliveryCount, again.redelivered]).toEqual([2, true]);
    again.ack();
    expect(await consumer.next({ expiresMs: 1_000 })).toBeNull();
  });

  it('nak redelivers at once, nak(delay) only after the delay', async (ctx) => {
    const bus = await open(ctx);
    const { consumer } = await setup(bus, 1, { ackWaitMs: 10_000 });
    (await consumer.next())!.nak();
    const second = (await consumer.next({ expiresMs: 2_000 }))!;
    expect(second.deliveryCount).toBe(2);
    const t0 = Date.now();
    second.nak(700);
    const third = (await consumer.next({ expiresMs: 5_000 }))!;
    expect(Date.now() - t0).toBeGreaterThanOrEqual(600);
    expect(third.deliveryCount).toBe(3);
    third.ack();
  });

  it('term ends a message for good', async (ctx) => {
    const bus = await open(ctx);
    const { consumer } = await setup(bus, 2);
    const m = (await consumer.next())!;
    m.term('unparseable');
    const next = (await consumer.next())!;
    expect(next.seq).toBe(m.seq + 1);
    next.ack();
    expect(await consumer.next({ expiresMs: 1_500 })).toBeNull(); // well past ackWait
  });

  it('working() restarts the ack wait so a long job is not redelivered', async (ctx) => {
    const bus = await open(ctx);
    const { consumer } = await setup(bus, 1, { ackWaitMs: 500 });
    const m = (await consumer.next())!;
    const rival = consumer.next({ expiresMs: 2_500 }); // would receive a redelivery
    for (let i = 0; i < 6; i++) {
      await sleep(250);
      m.working();
    }
    m.ack();
    expect(await rival).toBeNull();
  });

  it('stops delivering after maxDeliver deliveries', async (ctx) => {
    const bus = await open(ctx);
    const { consumer } = await setup(bus, 1, { ackWaitMs: 300, maxDeliver: 2 });
    expect((await consumer.next())!.deliveryCount).toBe(1);
    expect((await consumer.next({ expiresMs: 2_000 }))!.deliveryCount).toBe(2);
    expect(await consumer.next({ expiresMs: 1_500 })).toBeNull();
  });

  it('holds new messages back at maxAckPending', async (ctx) => {
    const bus = await open(ctx);
    const { consumer } = await setup(bus, 2, { ackWaitMs: 10_000, maxAckPending: 1 });
    const m = (await consumer.next())!;
    expect(await consumer.next({ expiresMs: 1_000 })).toBeNull();
    m.ack();
    expect(text((await consumer.next({ expiresMs: 2_000 }))!.data)).toBe('m1');
  });

  it('a filtered consumer sees only matching subjects', async (ctx) => {
    const bus = await open(ctx);
    const { name, subject } = await makeStream(bus);
    for (const k of ['a', 'b', 'a', 'c']) await bus.publish(`${subject}.${k}.x`, bytes(k));
    const c = await bus.consumer({ stream: name, durable: 'only_a', filterSubject: `${subject}.a.*`, ackWaitMs: 5_000, maxDeliver: 1, maxAckPending: 10 });
    const got: string[] = [];
    for (let m = await c.next({ expiresMs: 1_000 }); m; m = await c.next({ expiresMs: 1_000 })) {
      got.push(text(m.data));
      m.ack();
    }
    expect(got).toEqual(['a', 'a']);
  });

  it('a re-created durable resumes where it left off, with the unacked message redelivered', async (ctx) => {
    const bus = await open(ctx);
    const { consumer, config } = await setup(bus, 4);
    (await consumer.next())!.ack();
    await (await consumer.next())!.ackSync();
    const abandoned = (await consumer.next())!;
    const again = await bus.consumer({ ...config, ackWaitMs: 500 }); // settings may change
    const seen: Array<[string, number]> = [];
    for (let m = await again.next({ expiresMs: 2_000 }); m; m = await again.next({ expiresMs: 1_500 })) {
      seen.push([text(m.data), m.deliveryCount]);
      m.ack();
    }
    expect(seen.map(([d]) => d).sort()).toEqual(['m2', 'm3']);
    expect(seen.find(([d]) => d === text(abandoned.data))?.[1]).toBe(2);
    await expectBusError(bus.consumer({ ...config, filterSubject: 'other.>' }), 'conflict', false);
  });

  it('consume() iterates messages in batches until stopped', async (ctx) => {
    const bus = await open(ctx);
    const { consumer } = await setup(bus, 5, { ackWaitMs: 5_000 });
    const stream = consumer.consume({ batch: 2, expiresMs: 2_000 });
    const got: string[] = [];
    for await (const m of stream) {
      got.push(text(m.data));
      m.ack();
      if (got.length === 5) stream.stop();
    }
    expect(got).toEqual(['m0', 'm1', 'm2', 'm3', 'm4']);
    expect(() => consumer.consume({ batch: 0 })).toThrow();
  });

  it('a deleted consumer fails with not_found', async (ctx) => {
    const bus = await open(ctx);
    const { consumer } = await setup(bus, 1);
    expect(await consumer.delete()).toBe(true);
    expect(await consumer.delete()).toBe(false);
    await expectBusError(consumer.next({ expiresMs: 1_000 }), 'not_found', false);
    await expectBusError(consumer.info(), 'not_found');
  });
}
