// Exponential backoff with jitter and an abortable sleep, for retries against the LLM endpoint.


export interface BackoffOptions {
  /** Delay before the first retry, before jitter. */
  baseMs: number;
  /** Ceiling of any delay, including one asked for by Retry-After. */
  maxMs: number;
}

/**
 * Delay before retry number `attempt` (0-based): half of min(max, base·2^attempt) plus a random part
 * of the other half ("equal jitter"), raised to `retryAfterMs` when the server asked for more.
 */
export function backoffDelay(attempt: number, opts: BackoffOptions, retryAfterMs = 0, random: () => number = Math.random): number {
  const cap = Math.min(opts.maxMs, opts.baseMs * 2 ** attempt);
  const jittered = cap / 2 + random() * (cap / 2);
  return Math.min(opts.maxMs, Math.max(jittered, retryAfterMs));
}

/** The abortable wait between retries (core's). */
export { sleep } from '../core/retry.js';

/** Milliseconds asked for by a Retry-After (seconds or HTTP date) or retry-after-ms header; 0 when absent or unreadable. */
export function retryAfterMs(headers: Headers | undefined, now = Date.now()): number {
  const ms = Number(headers?.get('retry-after-ms'));
  if (Number.isFinite(ms) && ms > 0) return ms;
  const raw = headers?.get('retry-after');
  if (!raw) return 0;
  const secs = Number(raw);
  if (Number.isFinite(secs)) return Math.max(0, secs * 1000);
  const at = Date.parse(raw);
  return Number.isFinite(at) ? Math.max(0, at - now) : 0;
}
