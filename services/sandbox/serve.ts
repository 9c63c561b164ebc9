// Starts the Sandbox service: loads domains, serves gRPC (with grpc.health.v1) and Prometheus /metrics,
// and, given a NATS URL, the same implementation over request-reply in the run.

import { startGrpcServer, type RunningGrpcServer } from '../core/grpc.js';
import { createLogger, type Logger } from '../core/logger.js';
import { Counter, getOrCreate, metricsRegistry, serveMetrics, type MetricsServer } from '../core/metrics.js';
import { busTarget, serveServicesOverBus, type RunningBusServer } from '../core/serve-bus.js';
import { Sandbox } from '../core/gen/parley/v1/sandbox_pb.js';
import { resolveSandboxConfig, type SandboxConfig } from './config.js';
import { loadDomains, SandboxService } from './service.js';

export interface RunningSandbox {
  config: SandboxConfig;
  service: SandboxService;
  grpc: RunningGrpcServer;
  metrics: MetricsServer | undefined;
  /** The request-reply server; undefined without busUrl. */
  bus: RunningBusServer | undefined;
  close(): Promise<void>;
}

/**
 * Loads the configured domains and starts serving. Rejects naming the bad setting (busUrl without run
 * included), data file or port, or with ParleyError('unavailable') when NATS cannot be reached.
 */
export async function serveSandbox(opts: Record<string, unknown> = {}, logger: Logger = createLogger('sandbox')): Promise<RunningSandbox> {
  const config = resolveSandboxConfig(opts);
  const target = busTarget({ url: config.busUrl, run: config.run });
  const started = performance.now();
  const domains = loadDomains(config);
  for (const d of domains.values()) {
    logger.info({ domain: d.domain.name, tasks: d.tasks.size, tools: d.domain.tools.length, initialDbHash: d.initialHash }, 'domain loaded');
  }
  logger.info({ ms: Math.round(performance.now() - started) }, 'domains loaded');
  const registry = metricsRegistry();
  const service = new SandboxService(config, domains, registry);
  const rpcs = getOrCreate(registry, 'parley_sandbox_rpcs_total', () =>
    new Counter({ name: 'parley_sandbox_rpcs_total', help: 'Sandbox RPCs by method and status code.', labelNames: ['method', 'code'], registers: [] }),
  );
  const observe = (_s: string, method: string, code: string) => rpcs.inc({ method, code });
  const grpc = await startGrpcServer({
    port: config.port,
    host: config.host,
    logger,
    services: [{ service: Sandbox, impl: service.impl }],
    observe,
    maxReceiveMessageBytes: Math.max(4 * 1024 * 1024, config.maxArgumentBytes * 4),
  });
  let metrics: MetricsServer | undefined;
  let bus: RunningBusServer | undefined;
  const close = async () => {
    await bus?.close();
    await grpc.close();
    await metrics?.close();
    service.stop();
  };
  try {
    metrics = config.metricsPort >= 0 ? await serveMetrics(registry, config.metricsPort) : undefined;
    bus = target && (await serveServicesOverBus(target, [{ service: Sandbox, impl: service.impl }], { logger, observe }));
  } catch (e) {
    await close();
    throw e;
  }
  logger.info({ port: grpc.port, metricsPort: metrics?.port, run: bus?.run }, bus ? 'sandbox serving over gRPC and NATS' : 'sandbox serving');
  return { config, service, grpc, metrics, bus, close };
}
