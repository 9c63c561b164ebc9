// Starts the coordinator process: the bus, a Sandbox client for the train tasks, /metrics with
// /healthz and /readyz, then the Coordinator; close() stops them in reverse order.

import { connectBus, type Bus } from '../../core/bus/index.js';
import { createBusClient } from '../../core/bus-rpc.js';
import { createGrpcClient } from '../../core/grpc.js';
import { createLogger, type Logger } from '../../core/logger.js';
import { metricsRegistry, serveMetrics, type MetricsServer } from '../../core/metrics.js';
import { Sandbox } from '../../core/gen/parley/v1/sandbox_pb.js';
import { resolveCoordinatorConfig, type CoordinatorConfig, type ServeCoordinatorConfig } from './config.js';
import { Coordinator, type TaskLister } from './coordinator.js';

export interface RunningCoordinator {
  config: { coordinator: CoordinatorConfig; serve: ServeCoordinatorConfig };
  coordinator: Coordinator;
  metrics: MetricsServer | undefined;
  /** Stops the coordinator, the metrics server, the Sandbox client and the bus it opened. Safe to call twice. */
  close(): Promise<void>;
}

/**
 * Starts a coordinator from options (config field names, see config.ts) over PARLEY_* variables; `deps`
 * may supply the bus (tests). Resolves once it publishes. Rejects naming a bad setting, when NATS
 * cannot be reached, when the metrics port cannot be bound, or with the coordinator's start error;
 * whatever was started is closed again.
 */
export async function serveCoordinator(
  opts: Record<string, unknown> = {},
  logger: Logger = createLogger('coordinator'),
  deps: { bus?: Bus } = {},
): Promise<RunningCoordinator> {
  const config = resolveCoordinatorConfig(opts);
  const { serve } = config;
  const closers: (() => Promise<void> | void)[] = [];
  const closeAll = async () => {
    for (const c of closers.splice(0).reverse()) {
      try {
        await c();
      } catch (e) {
        logger.warn({ err: e }, 'error while closing the coordinator');
      }
    }
  };
  try {
    let bus = deps.bus;
    if (!bus) {
      const opened = await connectBus(serve.busUrl === 'memory://' ? undefined : serve.busUrl, { name: `parley-coordinator-${config.coordinator.run}` });
      closers.push(() => opened.close());
      bus = opened;
    }
    const sandbox = serve.sandbox === 'nats' ? createBusClient(bus, Sandbox, { run: config.coordinator.run, defaultTimeoutMs: 30_000 }) : createGrpcClient(Sandbox, serve.sandbox);
    closers.push(() => sandbox.close());
    const tasks: TaskLister = async (domain, split) => (await sandbox.listTasks({ domain, split }, { timeoutMs: 30_000 })).tasks.map((t) => t.id);
    const registry = metricsRegistry();
    const coordinator = new Coordinator(config.coordinator, { bus, logger, registry, tasks });
    closers.push(() => coordinator.stop());
    const metrics = serve.metricsPort >= 0 ? await serveMetrics(registry, serve.metricsPort, serve.host, { ready: () => coordinator.ready }) : undefined;
    if (metrics) closers.push(() => metrics.close());
    await coordinator.start();
    logger.info({ run: config.coordinator.run, metricsPort: metrics?.port, nextGroup: coordinator.status().nextGroup }, 'coordinator serving');
    let closing: Promise<void> | undefined;
    return { config, coordinator, metrics, close: () => (closing ??= closeAll()) };
  } catch (e) {
    await closeAll();
    throw e;
  }
}
