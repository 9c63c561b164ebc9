// Retries with capped exponential backoff and full jitter, and a FIFO concurrency limit; both honour
// an AbortSignal so a cancelled caller stops waiting at once.

import { ParleyError } from '../core/index.js';
import { backoffDelay as fullJitter, sleep } from '../core/retry.js';

export interface RetryPolicy {
  /** Retries after the first attempt (0: try once). */
  maxRetries: number;
  /** Backoff before retry k (0-based) is uniform in [0, min(maxDelayMs, baseDelayMs * 2^k)]. */
  baseDelayMs: number;
  maxDelayMs: number;
  /** Uniform [0, 1) source; Math.random by default (tests may pin it). */
  random?: () => number;
}

/** A ParleyError that may also carry the server's Retry-After hint. */
export interface RetryHint {
  retryAfterMs?: number;
}

function cancelled(signal: AbortSignal): ParleyError {
  const reason: unknown = signal.reason;
  return new ParleyError('cancelled', `request cancelled${reason instanceof Error ? `: ${reason.message}` : ''}`, { cause: reason });
}

export { sleep };

/** The delay before retry `attempt` (0-based): full jitter over a capped exponential. */
export function backoffDelay(policy: RetryPolicy, attempt: number): number {
  return fullJitter(attempt + 1, policy.baseDelayMs, policy.maxDelayMs, policy.random);
}

/**
 * Runs `fn` until it succeeds, throws a non-retryable error, or the retries are spent; then rethrows
 * the last error (a ParleyError whose message says how many attempts were made). `onRetry` sees each
 * error that is about to be retried. Rejects with ParleyError('cancelled') when `signal` fires.
 */
export async function withRetries<T>(
  policy: RetryPolicy,
  fn: (attempt: number) => Promise<T>,
  opts: { signal?: AbortSignal; onRetry?: (err: ParleyError, attempt: number) => void } = {},
): Promise<T> {
  for (let attempt = 0; ; attempt++) {
    if (opts.signal?.aborted) throw cancelled(opts.signal);
    try {
      return await fn(attempt);
    } catch (e) {
      const err = ParleyError.from(e);
      if (opts.signal?.aborted) throw cancelled(opts.signal);
      if (!err.retryable) throw err;
      if (attempt >= policy.maxRetries) {
        if (policy.maxRetries === 0) throw err;
        throw new ParleyError(err.code, `${err.message} (gave up after ${attempt + 1} attempts)`, { cause: err, retryable: true });
      }
      opts.onRetry?.(err, attempt);
      const hinted = (e as RetryHint).retryAfterMs;
      const delay = Math.max(backoffDelay(policy, attempt), Math.min(hinted ?? 0, policy.maxDelayMs));
      await sleep(delay, opts.signal);
    }
  }
}

/** A FIFO semaphore: at most `limit` holders at a time. */
export class ConcurrencyLimit {
  private active = 0;
  private readonly waiting: { resolve: () => void; reject: (e: unknown) => void; signal?: AbortSignal; onAbort?: () => void }[] = [];

  constructor(readonly limit: number) {
    if (!Number.isInteger(limit) || limit < 1) throw new RangeError(`concurrency limit must be a positive integer, got ${limit}`);
  }

  get inFlight(): number {
    return this.active;
  }

  get queued(): number {
    return this.waiting.length;
  }

  /** Runs `fn` once a slot is free. Rejects with ParleyError('cancelled') if `signal` fires while waiting. */
  async run<T>(fn: () => Promise<T>, signal?: AbortSignal): Promise<T> {
    await this.acquire(signal);
    try {
      return await fn();
    } finally {
      this.release();
    }
  }

  private acquire(signal?: AbortSignal): Promise<void> {
    if (signal?.aborted) return Promise.reject(cancelled(signal));
    if (this.active < this.limit) {
      this.active++;
      return Promise.resolve();
    }
    return new Promise<void>((resolve, reject) => {
      const waiter: (typeof this.waiting)[number] = { resolve, reject, signal };
      if (signal) {
        waiter.onAbort = () => {
          const i = this.waiting.indexOf(waiter);
          if (i >= 0) this.waiting.splice(i, 1);
          reject(cancelled(signal));
        };
        signal.addEventListener('abort', waiter.onAbort, { once: true });
      }
      this.waiting.push(waiter);
    });
  }

  private release(): void {
    const next = this.waiting.shift();
    if (next) {
      if (next.onAbort) next.signal?.removeEventListener('abort', next.onAbort);
      next.resolve(); // the slot passes straight to the next waiter
    } else {
      this.active--;
    }
  }
}
