// Starts the Sandbox service: loads domains, serves gRPC (with grpc.health.v1) and Prometheus /metrics.

import { startGrpcServer, type RunningGrpcServer } from '../core/grpc.js';
import { createLogger, type Logger } from '../core/logger.js';
import { Counter, getOrCreate, metricsRegistry, serveMetrics, type MetricsServer } from '../core/metrics.js';
import { Sandbox } from '../core/gen/parley/v1/sandbox_pb.js';
import { resolveSandboxConfig, type SandboxConfig } from './config.js';
import { loadDomains, SandboxService } from './service.js';

export interface RunningSandbox {
  config: SandboxConfig;
  service: SandboxService;
  grpc: RunningGrpcServer;
  metrics: MetricsServer | undefined;
  close(): Promise<void>;
}

/** Loads the configured domains and starts serving. Rejects naming the bad setting, data file or port. */
export async function serveSandbox(opts: Record<string, unknown> = {}, logger: Logger = createLogger('sandbox')): Promise<RunningSandbox> {
  const config = resolveSandboxConfig(opts);
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
  const grpc = await startGrpcServer({
    port: config.port,
    host: config.host,
    logger,
    services: [{ service: Sandbox, impl: service.impl }],
    observe: (_s, method, code) => rpcs.inc({ method, code }),
    maxReceiveMessageBytes: Math.max(4 * 1024 * 1024, config.maxArgumentBytes * 4),
  });
  const metrics = config.metricsPort >= 0 ? await serveMetrics(registry, config.metricsPort) : undefined;
  logger.info({ port: grpc.port, metricsPort: metrics?.port }, 'sandbox serving');
  return {
    config,
    service,
    grpc,
    metrics,
    close: async () => {
      await grpc.close();
      await metrics?.close();
      service.stop();
    },
  };
}
