// Request-reply pieces both implementations share: running a handler (a throw becomes an error
// reply in the NATS micro-services headers), reading such a reply back, tracking running handlers.

import { BusError } from './errors.js';
import type { Headers, InboundMessage, Reply, ReplyPayload, RequestHandler } from './types.js';
import { checkHeaders, HANDLER_ERROR_CODE_HEADER, HANDLER_ERROR_HEADER } from './validate.js';

/** Runs the handler; a throw, or a reply with bad headers, becomes an error reply. */
export async function runHandler(handler: RequestHandler, msg: InboundMessage): Promise<ReplyPayload | undefined> {
  try {
    const reply = await handler(msg);
    if (reply !== undefined) checkHeaders(reply.headers);
    return reply;
  } catch (err) {
    const text = (err instanceof Error ? err.message : String(err)).replace(/[\r\n]+/g, ' ') || 'handler failed';
    return { data: new Uint8Array(0), headers: { [HANDLER_ERROR_CODE_HEADER]: '500', [HANDLER_ERROR_HEADER]: text } };
  }
}

/** Returns the reply, or throws BusError('handler_failed') when it carries a handler's error. */
export function checkReply(subject: string, reply: Reply): Reply {
  const code = reply.headers[HANDLER_ERROR_CODE_HEADER];
  if (code !== undefined) {
    const text = reply.headers[HANDLER_ERROR_HEADER] ?? '';
    throw new BusError('handler_failed', `handler of ${subject} failed (${code}): ${text}`);
  }
  return reply;
}

export function copyHeaders(h: Headers | undefined): Headers {
  return { ...h };
}

function noop(): void {}

/** Tracks a subscription's running handlers so close() can wait for them. */
export class HandlerTracker {
  private readonly running = new Set<Promise<unknown>>();
  closed = false;

  track(p: Promise<unknown>): void {
    const done: Promise<unknown> = p.then(noop, noop).finally(() => this.running.delete(done));
    this.running.add(done);
  }

  async drain(): Promise<void> {
    this.closed = true;
    while (this.running.size > 0) await Promise.allSettled([...this.running]);
  }
}
