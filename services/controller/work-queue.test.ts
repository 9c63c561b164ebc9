// Work queue and rate limiter semantics: dedup, no concurrent processing of a key, re-add while in
// process, delayed adds keeping the earliest, per-item exponential backoff and the overall bucket.

import { describe, expect, it } from 'vitest';
import { ManualClock } from './clock.js';
import { ItemExponentialBackoff, MaxOfRateLimiter, TokenBucket, defaultControllerRateLimiter } from './rate-limiter.js';
import { WorkQueue } from './work-queue.js';

const queue = (clock = new ManualClock()) => new WorkQueue(defaultControllerRateLimiter(clock), clock);

describe('WorkQueue', () => {
  it('queues a key once however often it is added', async () => {
    const q = queue();
    q.add('a');
    q.add('a');
    q.add('b');
    expect(q.length).toBe(2);
    expect(await q.get()).toBe('a');
    expect(await q.get()).toBe('b');
  });

  it('never hands out a key in process; a re-add runs after done', async () => {
    const q = queue();
    q.add('a');
    const key = await q.get();
    q.add('a');
    expect(q.length).toBe(0);
    let got: string | undefined;
    void q.get().then((k) => (got = k));
    await Promise.resolve();
    expect(got).toBeUndefined();
    q.done(key!);
    await Promise.resolve();
    expect(got).toBe('a');
  });

  it('keeps the earliest of several delayed adds', () => {
    const clock = new ManualClock();
    const q = queue(clock);
    q.addAfter('a', 1000);
    q.addAfter('a', 200);
    q.addAfter('a', 5000);
    clock.advance(199);
    expect(q.length).toBe(0);
    clock.advance(1);
    expect(q.length).toBe(1);
    clock.advance(10_000);
    expect(q.length).toBe(1);
  });

  it('backs off per key and forgets after success', () => {
    const clock = new ManualClock();
    const limiter = new ItemExponentialBackoff(10, 1000);
    expect([1, 2, 3, 4, 5, 6, 7, 8].map(() => limiter.when('a'))).toEqual([10, 20, 40, 80, 160, 320, 640, 1000]);
    expect(limiter.when('b')).toBe(10);
    expect(limiter.retries('a')).toBe(8);
    limiter.forget('a');
    expect(limiter.when('a')).toBe(10);
    const q = new WorkQueue(limiter, clock);
    q.addRateLimited('x');
    q.addRateLimited('x');
    expect(q.retries('x')).toBe(2);
    clock.advance(10);
    expect(q.length).toBe(1);
  });

  it('limits the overall rate with a token bucket', () => {
    const clock = new ManualClock();
    const bucket = new TokenBucket(10, 2, clock);
    expect([bucket.when(), bucket.when(), bucket.when(), bucket.when()]).toEqual([0, 0, 100, 200]);
    clock.advance(1000);
    expect(bucket.when()).toBe(0);
    const both = new MaxOfRateLimiter(new ItemExponentialBackoff(1, 10), new TokenBucket(1, 1, clock));
    expect(both.when('k')).toBe(1);
    expect(both.when('k')).toBe(1000);
  });

  it('shutDown wakes waiting workers and drops delayed adds; safe twice', async () => {
    const clock = new ManualClock();
    const q = queue(clock);
    const waiting = q.get();
    q.addAfter('a', 100);
    q.shutDown();
    q.shutDown();
    expect(await waiting).toBeUndefined();
    expect(clock.pending).toBe(0);
    q.add('b');
    expect(await q.get()).toBeUndefined();
  });

  it('rejects nonsensical limiter settings', () => {
    expect(() => new ItemExponentialBackoff(0, 10)).toThrow(RangeError);
    expect(() => new TokenBucket(0, 1, new ManualClock())).toThrow(RangeError);
  });
});
