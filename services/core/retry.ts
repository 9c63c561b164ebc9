// Retries with exponential backoff and full jitter, for retryable ParleyErrors only.

import { ParleyError } from './errors.js';

export interface RetryOptions {
  /** Attempts in total, including the first (≥ 1). */
  attempts: number;
  /** First backoff ceiling in ms; doubles per attempt. */
  baseDelayMs: number;
  /** Largest backoff ceiling in ms. */
  maxDelayMs: number;
  /** Called before each retry (for metrics and logs). */
  onRetry?: (err: ParleyError, attempt: number, delayMs: number) => void;
  signal?: AbortSignal;
  /** Random source in [0,1) (tests pass a fixed one). */
  random?: () => number;
}

/** Resolves after `ms`, or rejects with ParleyError('cancelled') as soon as `signal` fires. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  const cancelled = (sig: AbortSignal) => {
    const reason: unknown = sig.reason;
    return new ParleyError('cancelled', `request cancelled${reason instanceof Error ? `: ${reason.message}` : ''}`, { cause: reason });
  };
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(cancelled(signal));
    const onAbort = () => {
      clearTimeout(timer);
      reject(cancelled(signal!));
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

/** Full-jitter backoff delay for the given retry number (1-based). */
export function backoffDelay(retry: number, base: number, max: number, random: () => number = Math.random): number {
  return Math.floor(random() * Math.min(max, base * 2 ** (retry - 1)));
}

/**
 * Runs `fn` until it succeeds, a non-retryable error occurs, or attempts run out.
 * Rejects with the last error as a ParleyError (its `retryable` flag tells the caller whether to nak).
 */
export async function withRetry<T>(fn: (attempt: number) => Promise<T>, opts: RetryOptions): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await fn(attempt);
    } catch (e) {
      const err = ParleyError.from(e);
      if (!err.retryable || attempt >= opts.attempts || opts.signal?.aborted) throw err;
      const delay = backoffDelay(attempt, opts.baseDelayMs, opts.maxDelayMs, opts.random);
      opts.onRetry?.(err, attempt, delay);
      await new Promise((r) => setTimeout(r, delay));
    }
  }
}
