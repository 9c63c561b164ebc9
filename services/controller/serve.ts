// Starts the controller process: config, kubeconfig (in-cluster or KUBECONFIG), the NATS bus, the
// metrics/health server, then the Controller; close() stops them in reverse order.

import { KubeConfig } from '@kubernetes/client-node';
import { connectBus, type Bus } from '../core/bus/index.js';
import { createLogger, type Logger } from '../core/logger.js';
import { metricsRegistry, serveMetrics, type MetricsServer } from '../core/metrics.js';
import { realClock } from './clock.js';
import { resolveControllerConfig, type ControllerConfig } from './config.js';
import { Controller } from './controller.js';
import { createKubeClient, type KubeClient } from './kube-client.js';

export interface RunningController {
  config: ControllerConfig;
  controller: Controller;
  metrics: MetricsServer | undefined;
  /** Stops the controller, the metrics server and the bus it opened. Safe to call twice. */
  close(): Promise<void>;
}

/**
 * Starts a controller from options (config field names) over PARLEY_* variables. `deps` may supply the
 * Kubernetes client and the bus (tests). Rejects naming a bad setting, when NATS cannot be reached,
 * or when the metrics port cannot be bound; whatever was started is closed again.
 */
export async function serveController(
  opts: Record<string, unknown> = {},
  logger: Logger = createLogger('controller'),
  deps: { k8s?: KubeClient; bus?: Bus } = {},
): Promise<RunningController> {
  const config = resolveControllerConfig(opts);
  const closers: (() => Promise<void>)[] = [];
  const closeAll = async () => {
    for (const c of closers.splice(0).reverse()) {
      try {
        await c();
      } catch (e) {
        logger.warn({ err: e }, 'error while stopping the controller');
      }
    }
  };
  try {
    let k8s = deps.k8s;
    if (!k8s) {
      const kc = new KubeConfig();
      kc.loadFromDefault();
      k8s = createKubeClient(kc);
    }
    let bus = deps.bus;
    if (!bus) {
      const opened = await connectBus(config.busUrl, { name: `parley-controller-${config.identity}` });
      closers.push(() => opened.close());
      bus = opened;
    }
    const registry = metricsRegistry();
    const metrics = config.metricsPort >= 0 ? await serveMetrics(registry, config.metricsPort, config.host) : undefined;
    if (metrics) closers.push(() => metrics.close());
    const controller = new Controller(config, { k8s, bus, logger, registry, clock: realClock() });
    closers.push(() => controller.stop());
    await controller.start();
    // The URL may carry credentials: log only the host part.
    logger.info({ watchNamespace: config.watchNamespace || '(all)', leaderElect: config.leaderElect, metricsPort: metrics?.port, bus: config.busUrl.replace(/\/\/[^@/]*@/, '//***@') }, 'controller started');
    let closing: Promise<void> | undefined;
    return { config, controller, metrics, close: () => (closing ??= closeAll()) };
  } catch (e) {
    await closeAll();
    throw e;
  }
}
