// Helpers for the bus conformance suite: opening a bus per test, unique names, byte codecs,
// and asserting on BusError codes.

import { expect, type TestContext } from 'vitest';
import { BusError, type BusErrorCode } from './errors.js';
import type { Bus } from './types.js';

export type MakeBus = () => Promise<{ bus: Bus; cleanup: () => Promise<void> }>;

/** Opens a bus for the running test (tests run concurrently), closed when it finishes. */
export type OpenBus = (ctx: TestContext) => Promise<Bus>;

export function opener(makeBus: MakeBus): OpenBus {
  return async (ctx) => {
    const { bus, cleanup } = await makeBus();
    ctx.onTestFinished(cleanup);
    return bus;
  };
}

let counter = 0;
/** A name unique within this process and run: letters, digits and '_'. */
export function uniq(prefix: string): string {
  counter += 1;
  return `${prefix}_${Date.now().toString(36)}${counter}${Math.random().toString(36).slice(2, 6)}`;
}

const enc = new TextEncoder();
const dec = new TextDecoder();
export const bytes = (s: string): Uint8Array => enc.encode(s);
export const text = (b: Uint8Array): string => dec.decode(b);

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** Awaits `p` and asserts it failed with a BusError of `code` (and retryability, when given). */
export async function expectBusError(p: Promise<unknown> | (() => unknown), code: BusErrorCode, retryable?: boolean): Promise<BusError> {
  let err: unknown = null;
  try {
    await (typeof p === 'function' ? p() : p);
  } catch (e) {
    err = e;
  }
  expect(err, `expected BusError('${code}')`).toBeInstanceOf(BusError);
  const be = err as BusError;
  expect(be.code, be.message).toBe(code);
  if (retryable !== undefined) expect(be.retryable).toBe(retryable);
  return be;
}

/** Retries `fn` until it stops throwing retryable BusErrors, for up to `ms`. */
export async function eventually<T>(fn: () => Promise<T>, ms = 15_000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    try {
      return await fn();
    } catch (err) {
      if (!(err instanceof BusError && err.retryable) || Date.now() > deadline) throw err;
      await sleep(100);
    }
  }
}
