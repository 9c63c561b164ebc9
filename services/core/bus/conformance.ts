// The one conformance suite every Bus implementation must pass (memory.test.ts, nats.test.ts):
// streams, consumers, KV, object store and request-reply, each test on a fresh bus.

import { describe } from 'vitest';
import { consumerConformance } from './conformance-consumers.js';
import { opener, type MakeBus } from './conformance-helpers.js';
import { requestConformance } from './conformance-request.js';
import { storeConformance } from './conformance-stores.js';
import { streamConformance } from './conformance-streams.js';

export type { MakeBus } from './conformance-helpers.js';

/**
 * Defines the conformance tests under `describe(name)`. `makeBus` is called once per test; its
 * `cleanup` runs when the test finishes. Tests run concurrently and use unique stream, bucket and
 * subject names, so buses made by one factory may share a server.
 */
export function runBusConformance(name: string, makeBus: MakeBus): void {
  const open = opener(makeBus);
  // Tests wait on timers (ack waits, expiries) far more than they compute: run them side by side.
  describe.concurrent(name, () => {
    describe('streams', () => streamConformance(open));
    describe('consumers', () => consumerConformance(open));
    describe('kv and objects', () => storeConformance(open));
    describe('request-reply', () => requestConformance(open));
  });
}
