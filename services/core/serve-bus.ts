// Serves a process's implementation objects over NATS request-reply beside gRPC: one bus connection,
// every service in its run's queue group, closed with the server. Sandbox, usersim and policy use it.

import type { GenService } from '@bufbuild/protobuf/codegenv2';
import { connectBus } from './bus/index.js';
import { serveOverBus } from './bus-rpc.js';
import { ParleyError, invalidArgument } from './errors.js';
import type { CallObserver, ServiceImpl, ServiceRegistration } from './grpc.js';
import type { Logger } from './logger.js';
import { checkRunName } from './run-subjects.js';

/** Where to serve over the bus: the URL and the run whose subjects (parley.<run>.rpc.*) are served. */
export interface BusTarget {
  url: string;
  run: string;
}

/**
 * The bus target from a server's `--nats`/`--run` settings (PARLEY_BUS_URL/PARLEY_RUN): undefined when
 * no URL is given. Throws ParleyError(invalid_argument) naming `run` when a URL comes without a run
 * name, or when the name is not a DNS-1123 label. Call it before slow start-up work.
 */
export function busTarget(settings: { url?: string; run?: string }): BusTarget | undefined {
  if (!settings.url) return undefined;
  const url = settings.url.trim();
  if (!/^(nats|tls):\/\//.test(url)) {
    // memory:// would serve on a bus private to this process, which no other actor can reach.
    const scheme = /^([a-z][a-z0-9+.-]*):/i.exec(url)?.[1];
    // The URL itself is not echoed: it may carry credentials.
    throw invalidArgument('nats', `--nats (env PARLEY_BUS_URL) must be a nats://host:port URL of a NATS server, got ${scheme ? `a ${scheme}: URL` : 'no URL scheme'}`);
  }
  if (!settings.run) throw invalidArgument('run', '--run (env PARLEY_RUN) is required with --nats (env PARLEY_BUS_URL): it names the run whose subjects are served');
  try {
    checkRunName(settings.run);
  } catch (e) {
    throw invalidArgument('run', (e as Error).message);
  }
  return { url: settings.url, run: settings.run };
}

export interface RunningBusServer extends BusTarget {
  /** Stops taking requests (running handlers finish), then closes the connection. Safe to call twice. */
  close(): Promise<void>;
}

/**
 * Connects to `target.url` and serves each service's unary methods over request-reply, one queue
 * group per service. Rejects with ParleyError('unavailable') when the bus cannot be reached, or
 * ParleyError.from the bus's error; nothing is left open on failure.
 */
export async function serveServicesOverBus(
  target: BusTarget,
  services: ServiceRegistration[],
  opts: { logger?: Logger; observe?: CallObserver } = {},
): Promise<RunningBusServer> {
  let bus;
  try {
    bus = await connectBus(target.url, { name: services.map((s) => s.service.name).join(',') });
  } catch (e) {
    throw new ParleyError('unavailable', `cannot serve over NATS: ${(e as Error).message}`, { cause: e });
  }
  const served: { close(): Promise<void> }[] = [];
  let closing: Promise<void> | undefined;
  const close = () =>
    (closing ??= (async () => {
      await Promise.all(served.map((s) => s.close()));
      await bus.close();
    })());
  try {
    for (const { service, impl } of services) {
      served.push(await serveOverBus(bus, service as GenService<any>, impl as ServiceImpl<any>, { run: target.run, logger: opts.logger, observe: opts.observe }));
    }
  } catch (e) {
    await close();
    throw ParleyError.from(e);
  }
  return { ...target, close };
}
