import { describe, expect, it } from 'vitest';
import { CapacityServer } from './capacity-server.js';

describe('CapacityServer', () => {
  it('shares its capacity between requests and hands a finished one\'s share to the rest at once', async () => {
    const server = new CapacityServer({ capacityTokensPerS: 1000, maxSequenceTokensPerS: 1000 });
    // Both decode at 500 tokens/s until the short one finishes (100 ms); the long one then runs alone at
    // 1000 tokens/s for its last 100 tokens: 200 ms in all, on the server's clock.
    const [short, long] = await Promise.all([server.decode(50), server.decode(150)]);
    expect(short.finishedMs - short.arrivedMs).toBeGreaterThan(95);
    expect(short.finishedMs - short.arrivedMs).toBeLessThan(110);
    expect(long.finishedMs - long.arrivedMs).toBeGreaterThan(195);
    expect(long.finishedMs - long.arrivedMs).toBeLessThan(215);
    expect(server.tokensDecoded).toBeCloseTo(200, 6);
    // The caller resumes after the last token, soon after when the loop is free.
    expect(performance.now()).toBeGreaterThanOrEqual(long.finishedMs);
  });

  it('caps one sequence at the per-sequence speed and counts busy and saturated time', async () => {
    const server = new CapacityServer({ capacityTokensPerS: 1000, maxSequenceTokensPerS: 500 });
    server.resetCounters();
    const alone = await server.decode(50);
    expect(alone.finishedMs - alone.arrivedMs).toBeGreaterThan(95); // 50 tokens at 500/s
    await Promise.all([server.decode(50), server.decode(50)]); // two sequences use the whole capacity
    const { busyMs, saturatedMs } = server.busy;
    expect(busyMs).toBeGreaterThan(190);
    expect(saturatedMs).toBeGreaterThan(95);
    expect(saturatedMs).toBeLessThan(busyMs);
    expect(server.tokensDecoded).toBeCloseTo(150, 6);
  });
});
