// gRPC servers and clients built from the generated protobuf-es descriptors: a service implementation
// is a plain typed object; errors cross the wire as gRPC status codes (ParleyError on both sides).

import { listenHost } from './listen-host.js';
import * as grpc from '@grpc/grpc-js';
import { create, fromBinary, toBinary, type DescMessage, type DescService, type MessageInitShape, type MessageShape } from '@bufbuild/protobuf';
import type { GenService, GenServiceMethods } from '@bufbuild/protobuf/codegenv2';
import { HealthImplementation } from 'grpc-health-check';
import { ParleyError } from './errors.js';
import type { Logger } from './logger.js';

/** What a handler may learn about its call. */
export interface CallContext {
  /** Absolute deadline in ms since epoch, if the caller set one. */
  deadline?: number;
  /** Request metadata (lower-case keys). */
  headers: Record<string, string>;
  /** Fires when the caller cancels or the deadline passes. */
  signal: AbortSignal;
}

type UnaryMethods<M extends GenServiceMethods> = {
  [K in keyof M as M[K]['methodKind'] extends 'unary' ? K : never]: M[K];
};

/** A service implementation: one async function per unary method, keyed by the method's local name. */
export type ServiceImpl<M extends GenServiceMethods> = {
  [K in keyof UnaryMethods<M>]: (
    req: MessageShape<M[K]['input']>,
    ctx: CallContext,
  ) => Promise<MessageInitShape<M[K]['output']>> | MessageInitShape<M[K]['output']>;
};

/** The method map of a generated service (`MethodsOf<typeof Sandbox>`). */
export type MethodsOf<S> = S extends GenService<infer M extends GenServiceMethods> ? M : never;

/** A typed client of a generated service, whatever the transport. */
export type ClientOf<S> = ServiceClient<MethodsOf<S>>;

/** A client: one async function per unary method. Rejects with ParleyError. */
export type ServiceClient<M extends GenServiceMethods> = {
  [K in keyof UnaryMethods<M>]: (
    req: MessageInitShape<M[K]['input']>,
    opts?: { timeoutMs?: number; headers?: Record<string, string> },
  ) => Promise<MessageShape<M[K]['output']>>;
} & { close(): void };

function serializer(desc: DescMessage) {
  return (msg: any) => Buffer.from(toBinary(desc, msg));
}
function deserializer(desc: DescMessage) {
  return (buf: Buffer) => fromBinary(desc, buf);
}

/** The grpc-js ServiceDefinition for a protobuf-es service descriptor (path /<typeName>/<Method>). */
export function grpcDefinition(service: DescService): grpc.ServiceDefinition {
  const def: Record<string, grpc.MethodDefinition<any, any>> = {};
  for (const m of service.methods) {
    if (m.methodKind !== 'unary') continue;
    def[m.localName] = {
      path: `/${service.typeName}/${m.name}`,
      requestStream: false,
      responseStream: false,
      requestSerialize: serializer(m.input),
      requestDeserialize: deserializer(m.input),
      responseSerialize: serializer(m.output),
      responseDeserialize: deserializer(m.output),
    };
  }
  return def as grpc.ServiceDefinition;
}

/** Observes each handled call (for metrics); `code` is 'ok' or an error code. */
export type CallObserver = (service: string, method: string, code: string, seconds: number) => void;

/** Trailer carrying a ParleyError's field, so it arrives as it does over the bus (RPC_HEADERS.field). */
const FIELD_TRAILER = 'parley-field';

function fieldOf(md: grpc.Metadata | undefined): string | undefined {
  const v = md?.get(FIELD_TRAILER)[0];
  return v === undefined ? undefined : String(v);
}

/**
 * Wraps a typed implementation as grpc-js handlers: decodes, runs, encodes; any throw becomes a gRPC
 * status (ParleyError keeps its code; anything else is INTERNAL and logged).
 */
export function grpcHandlers<M extends GenServiceMethods>(
  service: GenService<M>,
  impl: ServiceImpl<M>,
  opts: { logger?: Logger; observe?: CallObserver } = {},
): grpc.UntypedServiceImplementation {
  const handlers: grpc.UntypedServiceImplementation = {};
  for (const m of service.methods) {
    if (m.methodKind !== 'unary') continue;
    const fn = (impl as Record<string, (req: unknown, ctx: CallContext) => unknown>)[m.localName];
    if (typeof fn !== 'function') throw new Error(`service ${service.typeName}: no implementation of ${m.name}`);
    handlers[m.localName] = (call: grpc.ServerUnaryCall<any, any>, callback: grpc.sendUnaryData<any>) => {
      const started = performance.now();
      const controller = new AbortController();
      call.on('cancelled', () => controller.abort());
      const deadline = call.getDeadline();
      const headers: Record<string, string> = {};
      for (const [k, v] of Object.entries(call.metadata.getMap())) headers[k] = String(v);
      const ctx: CallContext = {
        deadline: deadline instanceof Date ? deadline.getTime() : Number.isFinite(deadline) ? Number(deadline) : undefined,
        headers,
        signal: controller.signal,
      };
      Promise.resolve()
        .then(() => fn.call(impl, call.request, ctx))
        .then(
          (res) => {
            opts.observe?.(service.name, m.name, 'ok', (performance.now() - started) / 1000);
            callback(null, create(m.output, res as MessageInitShape<DescMessage>));
          },
          (e: unknown) => {
            const err = ParleyError.from(e);
            if (err.code === 'internal' || err.code === 'unknown') {
              opts.logger?.error({ err: e, method: m.name }, 'handler failed');
            }
            opts.observe?.(service.name, m.name, err.code, (performance.now() - started) / 1000);
            const trailers = new grpc.Metadata();
            if (err.field) trailers.set(FIELD_TRAILER, err.field);
            callback({ code: err.grpcStatus, details: err.message, metadata: trailers });
          },
        );
    };
  }
  return handlers;
}

export interface ServiceRegistration {
  service: DescService;
  impl: object;
}

export interface GrpcServerOptions {
  services: ServiceRegistration[];
  host?: string;
  /** 0 picks a free port. */
  port: number;
  logger?: Logger;
  observe?: CallObserver;
  /** Largest request accepted, in bytes (grpc-js answers RESOURCE_EXHAUSTED above it). */
  maxReceiveMessageBytes?: number;
}

export interface RunningGrpcServer {
  port: number;
  health: HealthImplementation;
  /** Graceful: stops accepting, waits for in-flight calls (up to `graceMs`, then forces). */
  close(graceMs?: number): Promise<void>;
}

/** Starts a gRPC server with the given services plus grpc.health.v1. Rejects when the port cannot be bound. */
export async function startGrpcServer(opts: GrpcServerOptions): Promise<RunningGrpcServer> {
  const server = new grpc.Server({
    'grpc.max_receive_message_length': opts.maxReceiveMessageBytes ?? 16 * 1024 * 1024,
  });
  const health = new HealthImplementation({ '': 'SERVING' });
  health.addToServer(server);
  for (const { service, impl } of opts.services) {
    server.addService(
      grpcDefinition(service),
      grpcHandlers(service as GenService<any>, impl as ServiceImpl<any>, { logger: opts.logger, observe: opts.observe }),
    );
    health.setStatus(service.typeName, 'SERVING');
  }
  const host = listenHost(opts.host);
  const port = await new Promise<number>((resolve, reject) => {
    server.bindAsync(`${host}:${opts.port}`, grpc.ServerCredentials.createInsecure(), (err, p) =>
      err ? reject(new ParleyError('unavailable', `cannot bind ${host}:${opts.port}: ${err.message}`, { cause: err })) : resolve(p),
    );
  });
  let closed = false;
  return {
    port,
    health,
    close: (graceMs = 5000) => {
      if (closed) return Promise.resolve();
      closed = true;
      for (const { service } of opts.services) health.setStatus(service.typeName, 'NOT_SERVING');
      health.setStatus('', 'NOT_SERVING');
      return new Promise<void>((resolve) => {
        const timer = setTimeout(() => {
          server.forceShutdown();
          resolve();
        }, graceMs);
        timer.unref();
        server.tryShutdown(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    },
  };
}

/** A typed client for `service` at `address` (host:port). Calls reject with ParleyError carrying the gRPC code. */
export function createGrpcClient<M extends GenServiceMethods>(
  service: GenService<M>,
  address: string,
  opts: { maxSendMessageBytes?: number } = {},
): ServiceClient<M> {
  const Ctor = grpc.makeGenericClientConstructor(grpcDefinition(service), service.name);
  const client = new Ctor(address, grpc.credentials.createInsecure(), {
    'grpc.max_send_message_length': opts.maxSendMessageBytes ?? 64 * 1024 * 1024,
    'grpc.max_receive_message_length': 64 * 1024 * 1024,
  });
  const out: Record<string, unknown> = { close: () => client.close() };
  for (const m of service.methods) {
    if (m.methodKind !== 'unary') continue;
    out[m.localName] = (req: MessageInitShape<DescMessage>, callOpts: { timeoutMs?: number; headers?: Record<string, string> } = {}) =>
      new Promise((resolve, reject) => {
        const md = new grpc.Metadata();
        for (const [k, v] of Object.entries(callOpts.headers ?? {})) md.set(k, v);
        const options: grpc.CallOptions = callOpts.timeoutMs ? { deadline: Date.now() + callOpts.timeoutMs } : {};
        const method = (client as unknown as Record<string, (...a: unknown[]) => unknown>)[m.localName]!;
        method.call(client, create(m.input, req), md, options, (err: grpc.ServiceError | null, res: unknown) =>
          err ? reject(ParleyError.fromGrpc(err.code, err.details, err, fieldOf(err.metadata))) : resolve(res),
        );
      });
  }
  return out as ServiceClient<M>;
}
