// A keyed, rate-limited work queue (client-go's workqueue semantics): a key is queued at most once,
// is never handed to two workers at the same time, and a key added while in process runs again after.

import type { Clock, TimerHandle } from './clock.js';
import type { RateLimiter } from './rate-limiter.js';

export interface WorkQueueHooks {
  /** Called whenever the number of ready keys changes. */
  onDepth?: (depth: number) => void;
  /** Called on every rate-limited re-add (a retry). */
  onRetry?: (key: string) => void;
}

export class WorkQueue {
  /** Keys ready to be handed out, in order. */
  private readonly queue: string[] = [];
  /** Keys that need processing (queued, or re-added while in process). */
  private readonly dirty = new Set<string>();
  private readonly processing = new Set<string>();
  /** Delayed adds: the earliest due time per key wins. */
  private readonly waiting = new Map<string, { at: number; timer: TimerHandle }>();
  private readonly getters: ((key: string | undefined) => void)[] = [];
  private shuttingDown = false;

  constructor(
    private readonly limiter: RateLimiter,
    private readonly clock: Clock,
    private readonly hooks: WorkQueueHooks = {},
  ) {}

  /** Ready keys (not counting those in process or waiting for a delay). */
  get length(): number {
    return this.queue.length;
  }

  /** Keys waiting for a delayed add. */
  get waitingCount(): number {
    return this.waiting.size;
  }

  /** Marks `key` for processing. A no-op after shutDown. */
  add(key: string): void {
    if (this.shuttingDown || this.dirty.has(key)) return;
    this.dirty.add(key);
    if (this.processing.has(key)) return;
    const getter = this.getters.shift();
    if (getter) {
      this.dirty.delete(key);
      this.processing.add(key);
      getter(key);
      return;
    }
    this.queue.push(key);
    this.hooks.onDepth?.(this.queue.length);
  }

  /** Adds `key` after `delayMs` (at once when ≤ 0); an earlier pending add of the same key is kept. */
  addAfter(key: string, delayMs: number): void {
    if (this.shuttingDown) return;
    if (delayMs <= 0) {
      this.add(key);
      return;
    }
    const at = this.clock.now() + delayMs;
    const existing = this.waiting.get(key);
    if (existing && existing.at <= at) return;
    if (existing) this.clock.clearTimeout(existing.timer);
    const timer = this.clock.setTimeout(() => {
      this.waiting.delete(key);
      this.add(key);
    }, delayMs);
    this.waiting.set(key, { at, timer });
  }

  /** Re-adds `key` after the rate limiter's delay (a failed attempt). */
  addRateLimited(key: string): void {
    this.hooks.onRetry?.(key);
    this.addAfter(key, this.limiter.when(key));
  }

  /** Clears the key's backoff (call after it succeeded). */
  forget(key: string): void {
    this.limiter.forget(key);
  }

  /** Failures recorded for `key` since its last forget. */
  retries(key: string): number {
    return this.limiter.retries(key);
  }

  /**
   * The next key to process; waits until one is ready. Resolves undefined once the queue is shut
   * down. The caller must call `done(key)` when finished.
   */
  get(): Promise<string | undefined> {
    const key = this.queue.shift();
    if (key !== undefined) {
      this.dirty.delete(key);
      this.processing.add(key);
      this.hooks.onDepth?.(this.queue.length);
      return Promise.resolve(key);
    }
    if (this.shuttingDown) return Promise.resolve(undefined);
    return new Promise((resolve) => this.getters.push(resolve));
  }

  /** Ends processing of `key`; if it was added meanwhile it is queued again. */
  done(key: string): void {
    this.processing.delete(key);
    if (this.dirty.has(key) && !this.shuttingDown) {
      this.dirty.delete(key);
      this.add(key);
    }
  }

  /** Stops handing out keys: pending and future `get()` calls resolve undefined; delayed adds are dropped. Safe to call twice. */
  shutDown(): void {
    if (this.shuttingDown) return;
    this.shuttingDown = true;
    for (const { timer } of this.waiting.values()) this.clock.clearTimeout(timer);
    this.waiting.clear();
    this.queue.length = 0;
    this.dirty.clear();
    this.hooks.onDepth?.(0);
    for (const g of this.getters.splice(0)) g(undefined);
  }

  get isShutDown(): boolean {
    return this.shuttingDown;
  }
}
