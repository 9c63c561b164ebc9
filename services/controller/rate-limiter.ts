// Rate limiters for the work queue, shaped like client-go's: per-item exponential backoff, an overall
// token bucket, and the larger of several. `when(key)` says how long to wait before the key's next try.

import type { Clock } from './clock.js';

export interface RateLimiter {
  /** Delay in ms before `key` may be processed again; also records one more failure of it. */
  when(key: string): number;
  /** Clears the key's failure history (after a success). */
  forget(key: string): void;
  /** Failures recorded for `key` since the last forget. */
  retries(key: string): number;
}

/** base × 2^(failures) ms per key, capped at `maxMs`. Throws on base ≤ 0 or max < base. */
export class ItemExponentialBackoff implements RateLimiter {
  private readonly failures = new Map<string, number>();

  constructor(
    private readonly baseMs: number,
    private readonly maxMs: number,
  ) {
    if (!(baseMs > 0) || !(maxMs >= baseMs)) throw new RangeError(`backoff needs 0 < baseMs ≤ maxMs (got ${baseMs}, ${maxMs})`);
  }

  when(key: string): number {
    const n = this.failures.get(key) ?? 0;
    this.failures.set(key, n + 1);
    // 2^n overflows to Infinity long before n grows large; min() keeps the cap.
    return Math.min(this.maxMs, this.baseMs * 2 ** n);
  }

  forget(key: string): void {
    this.failures.delete(key);
  }

  retries(key: string): number {
    return this.failures.get(key) ?? 0;
  }
}

/**
 * An overall limit of `qps` items per second with bursts of `burst`, shared by all keys: each call
 * reserves the next token and returns the wait until it is due. Throws on qps ≤ 0 or burst < 1.
 */
export class TokenBucket implements RateLimiter {
  private tokens: number;
  private last: number;

  constructor(
    private readonly qps: number,
    private readonly burst: number,
    private readonly clock: Clock,
  ) {
    if (!(qps > 0) || !(burst >= 1)) throw new RangeError(`token bucket needs qps > 0 and burst ≥ 1 (got ${qps}, ${burst})`);
    this.tokens = burst;
    this.last = clock.now();
  }

  when(): number {
    const now = this.clock.now();
    this.tokens = Math.min(this.burst, this.tokens + ((now - this.last) / 1000) * this.qps);
    this.last = now;
    this.tokens -= 1;
    return this.tokens >= 0 ? 0 : Math.ceil((-this.tokens / this.qps) * 1000);
  }

  forget(): void {}

  retries(): number {
    return 0;
  }
}

/** The longest delay of its limiters (client-go's MaxOfRateLimiter). */
export class MaxOfRateLimiter implements RateLimiter {
  private readonly limiters: RateLimiter[];

  constructor(...limiters: RateLimiter[]) {
    this.limiters = limiters;
  }

  when(key: string): number {
    return Math.max(0, ...this.limiters.map((l) => l.when(key)));
  }

  forget(key: string): void {
    for (const l of this.limiters) l.forget(key);
  }

  retries(key: string): number {
    return Math.max(0, ...this.limiters.map((l) => l.retries(key)));
  }
}

/** The controller's default: 5 ms doubling to 5 minutes per key, and 10 items/s (burst 100) overall. */
export function defaultControllerRateLimiter(clock: Clock, opts: { baseMs?: number; maxMs?: number; qps?: number; burst?: number } = {}): RateLimiter {
  return new MaxOfRateLimiter(new ItemExponentialBackoff(opts.baseMs ?? 5, opts.maxMs ?? 300_000), new TokenBucket(opts.qps ?? 10, opts.burst ?? 100, clock));
}
