// Starts the coordinator process: the bus, a Sandbox client for the train tasks, /metrics with
// /healthz and /readyz, the Coordinator, and, when the config has an evaluation block, the RunEvaluator
// beside it with policy and user-simulator clients; close() stops them in reverse order.

import type { GenService, GenServiceMethods } from '@bufbuild/protobuf/codegenv2';
import { connectBus, type Bus } from '../../core/bus/index.js';
import { createBusClient } from '../../core/bus-rpc.js';
import { createGrpcClient } from '../../core/grpc.js';
import { createLogger, type Logger } from '../../core/logger.js';
import { metricsRegistry, serveMetrics, type MetricsServer } from '../../core/metrics.js';
import { Policy } from '../../core/gen/parley/v1/policy_pb.js';
import { Sandbox } from '../../core/gen/parley/v1/sandbox_pb.js';
import { UserSimulator } from '../../core/gen/parley/v1/usersim_pb.js';
import { heldOutSettings, resolveCoordinatorConfig, type CoordinatorConfig, type ServeCoordinatorConfig } from './config.js';
import { untilWeightsPublished } from '../../core/weights-events.js';
import { Coordinator, type TaskLister } from './coordinator.js';
import { RunEvaluator } from './run-evaluator.js';

export interface RunningCoordinator {
  config: { coordinator: CoordinatorConfig; serve: ServeCoordinatorConfig };
  coordinator: Coordinator;
  /** Absent when the config has no evaluation block. */
  evaluator: RunEvaluator | undefined;
  metrics: MetricsServer | undefined;
  /** True once the learner reached the run's steps and, with an evaluator, the final evaluation is published. */
  readonly done: boolean;
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
    let opened: Bus | undefined;
    if (!deps.bus) {
      opened = await connectBus(serve.busUrl === 'memory://' ? undefined : serve.busUrl, { name: `parley-coordinator-${config.coordinator.run}` });
      const own = opened;
      closers.push(() => own.close());
    }
    const bus = deps.bus ?? opened!;
    const run = config.coordinator.run;
    const client = <M extends GenServiceMethods>(service: GenService<M>, where: string, timeoutMs: number) => {
      const c = where === 'nats' ? createBusClient(bus, service, { run, defaultTimeoutMs: timeoutMs }) : createGrpcClient(service, where);
      closers.push(() => c.close());
      return c;
    };
    const sandbox = client(Sandbox, serve.sandbox, serve.actorTimeoutMs);
    const tasks: TaskLister = async (domain, split) => (await sandbox.listTasks({ domain, split, idsOnly: true }, { timeoutMs: 30_000 })).tasks.map((t) => t.id);
    const registry = metricsRegistry();
    const evaluation = config.coordinator.evaluation;
    let evaluator: RunEvaluator | undefined;
    // No tasks before the learner has started (its first weights: policy replicas serve only from then on)
    // and, with evaluation.beforeTrain, before the starting policy is evaluated.
    const beforeFirstTopUp = async (signal: AbortSignal) => {
      await untilWeightsPublished(bus, run, signal);
      await evaluator?.beforeTrainDone();
    };
    const coordinator = new Coordinator(config.coordinator, { bus, logger, registry, tasks, beforeFirstTopUp });
    closers.push(() => coordinator.stop());
    if (evaluation) {
      // Evaluation episodes reach the actors the way rollout workers do (services/rollout/serve.ts).
      const policy = client(Policy, serve.policy, serve.policyTimeoutMs);
      const ports = { sandbox, user: client(UserSimulator, serve.usersim, serve.actorTimeoutMs), policy };
      const servedVersion = async () => Number((await policy.info({}, { timeoutMs: serve.actorTimeoutMs })).policyVersion);
      evaluator = new RunEvaluator(heldOutSettings(config.coordinator, evaluation), { pollIntervalMs: config.coordinator.pollIntervalMs }, { bus, logger, registry, ports, servedVersion });
      closers.push(() => evaluator?.stop());
    }
    const metrics = serve.metricsPort >= 0 ? await serveMetrics(registry, serve.metricsPort, serve.host, { ready: () => coordinator.ready }) : undefined;
    if (metrics) closers.push(() => metrics.close());
    await coordinator.start();
    await evaluator?.start();
    logger.info({ run, metricsPort: metrics?.port, nextGroup: coordinator.status().nextGroup, evaluateEverySteps: evaluation?.everySteps }, 'coordinator serving');
    let closing: Promise<void> | undefined;
    return {
      config,
      coordinator,
      evaluator,
      metrics,
      get done() {
        return coordinator.state === 'finished' && (!evaluator || evaluator.done);
      },
      close: () => (closing ??= closeAll()),
    };
  } catch (e) {
    await closeAll();
    throw e;
  }
}
