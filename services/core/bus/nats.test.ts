// Runs the bus conformance suite against a real nats-server, then what only a server can do:
// restarts (SIGTERM) and crashes (SIGKILL) lose nothing published before them.

import { afterAll, beforeAll, describe, expect, it, onTestFinished } from 'vitest';
import { haveNatsServer, startNatsServer, type NatsServer } from '../../../test/fixtures/nats-server.js';
import { runBusConformance } from './conformance.js';
import { bytes, eventually, sleep, text, uniq } from './conformance-helpers.js';
import { connectBus, type Bus } from './index.js';

const have = haveNatsServer();

describe.skipIf(!have)('nats bus', () => {
  let server: NatsServer;
  beforeAll(async () => {
    server = await startNatsServer();
  });
  afterAll(async () => {
    await server?.cleanup();
  });

  runBusConformance('conformance', async () => {
    const bus = await connectBus(server.url);
    return { bus, cleanup: () => bus.close() };
  });
});

describe.skipIf(!have)('nats bus across server restarts', () => {
  let server: NatsServer;
  beforeAll(async () => {
    server = await startNatsServer();
  });
  afterAll(async () => {
    await server?.cleanup();
  });

  async function open(): Promise<Bus> {
    const bus = await connectBus(server.url);
    onTestFinished(() => bus.close());
    return bus;
  }

  async function seed(bus: Bus, count: number): Promise<{ stream: string; subject: string; ids: string[] }> {
    const stream = uniq('R');
    const subject = uniq('tasks').toLowerCase();
    await bus.ensureStream({ name: stream, subjects: [`${subject}.>`], retention: 'workqueue', duplicateWindowMs: 60_000 });
    const ids = Array.from({ length: count }, (_, i) => `task-${i}`);
    for (const id of ids) await bus.publish(`${subject}.run`, bytes(id), { msgId: id });
    return { stream, subject, ids };
  }

  it('a clean restart (SIGTERM) keeps messages, durable progress, KV and objects', async () => {
    const bus = await open();
    const { stream, ids } = await seed(bus, 20);
    const cfg = { stream, durable: 'workers', ackWaitMs: 500, maxDeliver: 10, maxAckPending: 100 };
    const before = await bus.consumer(cfg);
    const acked: string[] = [];
    for (let i = 0; i < 5; i++) {
      const m = (await before.next())!;
      await m.ackSync();
      acked.push(text(m.data));
    }
    const kv = await bus.kv(uniq('state'));
    await kv.put('run.step', bytes('41'));
    const store = await bus.objects(uniq('weights'));
    await store.put('adapter-v7', bytes('lora weights'));

    await server.restart();

    const after = await eventually(() => bus.consumer(cfg)); // same bus: it reconnected
    const rest: string[] = [];
    for (let m = await eventually(() => after.next()); m; m = await after.next({ expiresMs: 1_500 })) {
      rest.push(text(m.data));
      m.ack();
    }
    expect(new Set(rest)).toEqual(new Set(ids.slice(5)));
    expect(rest.filter((id) => acked.includes(id))).toEqual([]); // acks recorded before SIGTERM hold
    expect(text((await kv.get('run.step'))!.value)).toBe('41');
    expect(text((await store.get('adapter-v7'))!)).toBe('lora weights');
  });

  it('after a crash (SIGKILL) every published task is still processed (duplicates allowed)', async () => {
    const bus = await open();
    const { stream, ids } = await seed(bus, 40);
    const consumer = await bus.consumer({ stream, durable: 'workers', ackWaitMs: 500, maxDeliver: 20, maxAckPending: 10 });
    const processed = new Set<string>();
    let deliveries = 0;
    const loop = (async () => {
      for await (const m of consumer.consume({ batch: 5, expiresMs: 1_000 })) {
        deliveries += 1;
        await sleep(20); // work, so the crash lands mid-stream
        processed.add(text(m.data)); // idempotent: a set
        m.ack();
        if (processed.size === ids.length) return;
      }
    })();
    while (processed.size < 15) await sleep(5);
    await server.kill();
    const atCrash = processed.size;
    await sleep(300);
    await server.restart();
    const deadline = Date.now() + 30_000;
    while (processed.size < ids.length && Date.now() < deadline) await sleep(50);
    await bus.close(); // ends the loop if it is still waiting
    await loop;
    expect(atCrash).toBeLessThan(ids.length); // the crash landed mid-stream
    expect([...processed].sort()).toEqual([...ids].sort());
    expect(deliveries).toBeGreaterThanOrEqual(ids.length);
  });
});
