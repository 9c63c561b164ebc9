// Backoff with full jitter, retry classification and the FIFO concurrency limit, with cancellation.

import { describe, expect, it } from 'vitest';
import { ParleyError } from '../core/index.js';
import { ConcurrencyLimit, backoffDelay, withRetries } from './retry.js';

describe('backoffDelay', () => {
  it('is uniform under a doubling cap', () => {
    const p = { maxRetries: 5, baseDelayMs: 100, maxDelayMs: 1000 };
    expect(backoffDelay({ ...p, random: () => 0.999 }, 0)).toBe(99);
    expect(backoffDelay({ ...p, random: () => 0.999 }, 2)).toBe(399);
    expect(backoffDelay({ ...p, random: () => 0.999 }, 10)).toBe(999);
    expect(backoffDelay({ ...p, random: () => 0 }, 3)).toBe(0);
  });
});

describe('withRetries', () => {
  const policy = { maxRetries: 3, baseDelayMs: 1, maxDelayMs: 2 };

  it('retries retryable errors, then succeeds', async () => {
    const seen: string[] = [];
    let n = 0;
    const v = await withRetries(
      policy,
      async () => {
        if (n++ < 2) throw new ParleyError('unavailable', 'down');
        return 'ok';
      },
      { onRetry: (e) => seen.push(e.code) },
    );
    expect(v).toBe('ok');
    expect(seen).toEqual(['unavailable', 'unavailable']);
  });

  it('does not retry non-retryable errors', async () => {
    let n = 0;
    const err = await withRetries(policy, async () => {
      n++;
      throw new ParleyError('invalid_argument', 'bad');
    }).catch((e: unknown) => e as ParleyError);
    expect(err.code).toBe('invalid_argument');
    expect(n).toBe(1);
  });

  it('gives up after maxRetries and says so, keeping the code', async () => {
    let n = 0;
    const err = await withRetries(policy, async () => {
      n++;
      throw new ParleyError('deadline_exceeded', 'slow');
    }).catch((e: unknown) => e as ParleyError);
    expect(n).toBe(4);
    expect(err.code).toBe('deadline_exceeded');
    expect(err.message).toContain('gave up after 4 attempts');
  });

  it('stops waiting when cancelled', async () => {
    const ac = new AbortController();
    const p = withRetries({ maxRetries: 5, baseDelayMs: 10_000, maxDelayMs: 10_000, random: () => 0.5 }, async () => {
      throw new ParleyError('unavailable', 'down');
    }, { signal: ac.signal });
    setTimeout(() => ac.abort(), 20);
    const err = (await p.catch((e: unknown) => e)) as ParleyError;
    expect(err.code).toBe('cancelled');
  });
});

describe('ConcurrencyLimit', () => {
  it('runs at most `limit` at once, in FIFO order', async () => {
    const limit = new ConcurrencyLimit(2);
    let active = 0;
    let most = 0;
    const order: number[] = [];
    await Promise.all(
      Array.from({ length: 8 }, (_, i) =>
        limit.run(async () => {
          active++;
          most = Math.max(most, active);
          order.push(i);
          await new Promise((r) => setTimeout(r, 5));
          active--;
        }),
      ),
    );
    expect(most).toBe(2);
    expect(order).toEqual([0, 1, 2, 3, 4, 5, 6, 7]);
    expect(limit.inFlight).toBe(0);
  });

  it('lets a waiter leave the queue when cancelled, without leaking the slot', async () => {
    const limit = new ConcurrencyLimit(1);
    let release!: () => void;
    const holder = limit.run(() => new Promise<void>((r) => (release = r)));
    const ac = new AbortController();
    const waiter = limit.run(async () => 'never', ac.signal);
    ac.abort();
    expect(((await waiter.catch((e: unknown) => e)) as ParleyError).code).toBe('cancelled');
    expect(limit.queued).toBe(0);
    release();
    await holder;
    expect(await limit.run(async () => 'next')).toBe('next');
  });

  it('rejects a non-positive limit', () => {
    expect(() => new ConcurrencyLimit(0)).toThrow(RangeError);
  });
});
