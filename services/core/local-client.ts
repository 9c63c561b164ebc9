// An in-process client over a service implementation object: the same typed shape as the gRPC and NATS
// clients, with protobuf message creation on both sides, for the embedded (laptop) mode and for tests.

import { create, type DescMessage, type MessageInitShape } from '@bufbuild/protobuf';
import type { GenService, GenServiceMethods } from '@bufbuild/protobuf/codegenv2';
import { ParleyError } from './errors.js';
import type { CallContext, ServiceClient, ServiceImpl } from './grpc.js';

/** Calls `impl` directly. Errors reject as ParleyError, as over the wire. */
export function createLocalClient<M extends GenServiceMethods>(service: GenService<M>, impl: ServiceImpl<M>): ServiceClient<M> {
  const out: Record<string, unknown> = { close: () => undefined };
  for (const m of service.methods) {
    if (m.methodKind !== 'unary') continue;
    const fn = (impl as Record<string, (req: unknown, ctx: CallContext) => unknown>)[m.localName]!;
    out[m.localName] = async (req: MessageInitShape<DescMessage>, opts: { timeoutMs?: number; headers?: Record<string, string> } = {}) => {
      const ctx: CallContext = {
        deadline: opts.timeoutMs ? Date.now() + opts.timeoutMs : undefined,
        headers: opts.headers ?? {},
        signal: new AbortController().signal,
      };
      try {
        return create(m.output, (await fn.call(impl, create(m.input, req), ctx)) as MessageInitShape<DescMessage>);
      } catch (e) {
        throw ParleyError.from(e);
      }
    };
  }
  return out as ServiceClient<M>;
}
