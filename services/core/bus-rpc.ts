// Actor calls over NATS request-reply: the same implementation object that grpc-js serves, reached at
// parley.<run>.rpc.<Service>.<Method> through a queue group per service (location-transparent and
// load-balanced, the Ray way). Protobuf payloads; deadline and status travel in headers.

import { create, fromBinary, toBinary, type DescMessage, type MessageInitShape } from '@bufbuild/protobuf';
import type { GenService, GenServiceMethods } from '@bufbuild/protobuf/codegenv2';
import { BusError } from './bus/errors.js';
import type { Bus, Subscription } from './bus/types.js';
import { ParleyError, type ErrorCode } from './errors.js';
import type { CallContext, CallObserver, ServiceClient, ServiceImpl } from './grpc.js';
import type { Logger } from './logger.js';
import { runSubjects } from './run-subjects.js';

/** Header names of the request-reply protocol. */
export const RPC_HEADERS = {
  /** Absolute deadline, ms since the epoch. */
  deadline: 'parley-deadline',
  /** 'ok' or a ParleyError code. */
  status: 'parley-status',
  message: 'parley-message',
  field: 'parley-field',
} as const;

export interface BusServeOptions {
  run: string;
  /** Queue group; default the service's name (one group per service). */
  queue?: string;
  logger?: Logger;
  observe?: CallObserver;
}

/** Serves every unary method of `service` over the bus. Resolves once all subscriptions are live. */
/** Bytes kept free in a reply for its headers. */
const REPLY_HEADROOM = 4096;

export async function serveOverBus<M extends GenServiceMethods>(
  bus: Bus,
  service: GenService<M>,
  impl: ServiceImpl<M>,
  opts: BusServeOptions,
): Promise<{ close(): Promise<void> }> {
  const subjects = runSubjects(opts.run);
  const subs: Subscription[] = [];
  for (const m of service.methods) {
    if (m.methodKind !== 'unary') continue;
    const fn = (impl as Record<string, (req: unknown, ctx: CallContext) => unknown>)[m.localName];
    if (typeof fn !== 'function') throw new Error(`service ${service.typeName}: no implementation of ${m.name}`);
    const sub = await bus.subscribe(subjects.rpc(service.name, m.name), { queue: opts.queue ?? service.name }, async (msg) => {
      const started = performance.now();
      const deadline = Number(msg.headers[RPC_HEADERS.deadline] ?? NaN);
      const controller = new AbortController();
      let timer: NodeJS.Timeout | undefined;
      if (Number.isFinite(deadline)) {
        const left = deadline - Date.now();
        if (left <= 0) return errorReply(new ParleyError('deadline_exceeded', `${m.name}: deadline passed before the call started`));
        timer = setTimeout(() => controller.abort(), left);
        timer.unref();
      }
      try {
        let req: unknown;
        try {
          req = fromBinary(m.input, msg.data);
        } catch (e) {
          throw new ParleyError('invalid_argument', `request: not a valid ${m.input.typeName} message (${(e as Error).message})`);
        }
        const res = await fn.call(impl, req, { deadline: Number.isFinite(deadline) ? deadline : undefined, headers: { ...msg.headers }, signal: controller.signal });
        const data = toBinary(m.output, create(m.output, res as MessageInitShape<DescMessage>));
        // An answer the bus cannot carry would never arrive (the caller would only see a timeout): say why.
        if (data.length > bus.maxPayload - REPLY_HEADROOM) {
          throw new ParleyError('resource_exhausted', `${m.name}: the answer is ${data.length} bytes, more than the bus carries (max_payload ${bus.maxPayload}); ask for less`);
        }
        opts.observe?.(service.name, m.name, 'ok', (performance.now() - started) / 1000);
        return { data, headers: { [RPC_HEADERS.status]: 'ok' } };
      } catch (e) {
        const err = ParleyError.from(e);
        if (err.code === 'internal') opts.logger?.error({ err: e, method: m.name }, 'handler failed');
        opts.observe?.(service.name, m.name, err.code, (performance.now() - started) / 1000);
        return errorReply(err);
      } finally {
        if (timer) clearTimeout(timer);
      }
    });
    subs.push(sub);
  }
  return {
    close: async () => {
      await Promise.all(subs.map((s) => s.close()));
    },
  };
}

function errorReply(err: ParleyError) {
  const headers: Record<string, string> = { [RPC_HEADERS.status]: err.code, [RPC_HEADERS.message]: encodeURIComponent(err.message) };
  if (err.field) headers[RPC_HEADERS.field] = err.field;
  return { data: new Uint8Array(), headers };
}

const BUS_TO_CODE: Record<string, ErrorCode> = {
  timeout: 'deadline_exceeded',
  no_responders: 'unavailable',
  unavailable: 'unavailable',
  closed: 'unavailable',
  invalid: 'invalid_argument',
  not_found: 'not_found',
  conflict: 'aborted',
  handler_failed: 'internal',
};

/** A typed client calling `service` over the bus; the same shape as the gRPC client. Rejects with ParleyError. */
export function createBusClient<M extends GenServiceMethods>(
  bus: Bus,
  service: GenService<M>,
  opts: { run: string; defaultTimeoutMs?: number },
): ServiceClient<M> {
  const subjects = runSubjects(opts.run);
  const out: Record<string, unknown> = { close: () => undefined };
  for (const m of service.methods) {
    if (m.methodKind !== 'unary') continue;
    const subject = subjects.rpc(service.name, m.name);
    out[m.localName] = async (req: MessageInitShape<DescMessage>, callOpts: { timeoutMs?: number; headers?: Record<string, string> } = {}) => {
      const timeoutMs = callOpts.timeoutMs ?? opts.defaultTimeoutMs ?? 60_000;
      let reply;
      try {
        reply = await bus.request(subject, toBinary(m.input, create(m.input, req)), {
          timeoutMs,
          headers: { ...callOpts.headers, [RPC_HEADERS.deadline]: String(Date.now() + timeoutMs) },
        });
      } catch (e) {
        if (e instanceof BusError) {
          throw new ParleyError(BUS_TO_CODE[e.code] ?? 'unavailable', `${service.name}.${m.name} over NATS: ${e.message}`, { cause: e });
        }
        throw ParleyError.from(e);
      }
      const status = reply.headers[RPC_HEADERS.status];
      if (status !== 'ok') {
        const message = decodeURIComponent(reply.headers[RPC_HEADERS.message] ?? 'no status in reply');
        const code = (status ?? 'unknown') as ErrorCode;
        throw new ParleyError(code, message, { field: reply.headers[RPC_HEADERS.field] });
      }
      return fromBinary(m.output, reply.data);
    };
  }
  return out as ServiceClient<M>;
}
