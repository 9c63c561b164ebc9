// A push-fed async iterable with stop(): what the in-process KV watch hands out, and a timer set
// whose timers never keep the process alive and are all cleared on close.

import { BusError } from './errors.js';

/** Values pushed in, read by `for await`; ends on `end()` or `stop()`, throws after `fail()`. */
export class AsyncQueue<T> implements AsyncIterable<T> {
  private readonly buffer: T[] = [];
  private readonly readers: Array<{ resolve: (r: IteratorResult<T>) => void; reject: (e: unknown) => void }> = [];
  private done = false;
  private error: unknown = undefined;

  constructor(private readonly onStop: () => void = () => {}) {}

  push(value: T): void {
    if (this.done) return;
    const reader = this.readers.shift();
    if (reader) reader.resolve({ value, done: false });
    else this.buffer.push(value);
  }

  /** Ends the iteration after the buffered values. */
  end(): void {
    if (this.done) return;
    this.done = true;
    for (const r of this.readers.splice(0)) r.resolve({ value: undefined, done: true });
  }

  /** Ends the iteration with an error, after the buffered values. */
  fail(err: unknown): void {
    if (this.done) return;
    this.error = err;
    this.done = true;
    for (const r of this.readers.splice(0)) r.reject(err);
  }

  /** Ends the iteration at once, dropping buffered values. Safe to call twice. */
  stop(): void {
    if (this.done && this.buffer.length === 0) return;
    this.buffer.length = 0;
    this.end();
    this.onStop();
  }

  [Symbol.asyncIterator](): AsyncIterator<T> {
    return {
      next: () => {
        const value = this.buffer.shift();
        if (value !== undefined) return Promise.resolve({ value, done: false });
        if (this.done) {
          return this.error === undefined ? Promise.resolve({ value: undefined, done: true }) : Promise.reject(this.error);
        }
        return new Promise((resolve, reject) => this.readers.push({ resolve, reject }));
      },
      return: () => {
        this.stop();
        return Promise.resolve({ value: undefined, done: true });
      },
    };
  }
}

/** Timers that do not keep the process alive; `clear()` cancels every one still pending. */
export class TimerSet {
  private readonly timers = new Set<NodeJS.Timeout>();
  private closed = false;

  /** Runs `fn` after `ms`; returns a cancel function. Throws BusError('closed') after clear(). */
  set(ms: number, fn: () => void): () => void {
    if (this.closed) throw new BusError('closed', 'the bus is closed');
    const t = setTimeout(() => {
      this.timers.delete(t);
      fn();
    }, Math.max(0, ms));
    t.unref();
    this.timers.add(t);
    return () => {
      clearTimeout(t);
      this.timers.delete(t);
    };
  }

  get size(): number {
    return this.timers.size;
  }

  clear(): void {
    this.closed = true;
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
  }
}
