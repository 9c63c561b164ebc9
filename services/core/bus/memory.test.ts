// Runs the bus conformance suite against the in-process bus, plus connectBus's URL handling.

import { describe, expect, it } from 'vitest';
import { runBusConformance } from './conformance.js';
import { expectBusError } from './conformance-helpers.js';
import { connectBus, createMemoryBus } from './index.js';

runBusConformance('memory bus', async () => {
  const bus = createMemoryBus();
  return { bus, cleanup: () => bus.close() };
});

describe('connectBus', () => {
  it('gives the in-process bus for no URL and memory://', async () => {
    for (const url of [undefined, 'memory://']) {
      const bus = await connectBus(url);
      expect(bus.kind).toBe('memory');
      await bus.close();
    }
  });

  it('rejects other schemes with invalid and unreachable servers with unavailable', async () => {
    await expectBusError(connectBus('http://localhost:4222'), 'invalid', false);
    await expectBusError(connectBus('nats://127.0.0.1:1', { connectTimeoutMs: 1_000 }), 'unavailable', true);
  });
});
