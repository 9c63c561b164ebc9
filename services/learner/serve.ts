// Starts the learner process: bus, trainer engine (spawned or remote), the Learner gRPC service with
// grpc.health.v1, Prometheus /metrics, then the learner itself.

import { resolve } from 'node:path';
import { connectBus, type Bus } from '../core/bus/index.js';
import { serveOverBus } from '../core/bus-rpc.js';
import { startGrpcServer, type RunningGrpcServer } from '../core/grpc.js';
import { createLogger, type Logger } from '../core/logger.js';
import { metricsRegistry, serveMetrics, type MetricsServer } from '../core/metrics.js';
import { resolveLearnerConfig, type LearnerConfig, type ServeLearnerConfig } from './config.js';
import { startEngineProcess, type EngineProcess } from './engine-process.js';
import { withBuiltinVocabSize } from './engine-vocab.js';
import { Learner } from './learner.js';
import { learnerServiceImpl, LearnerService } from './learner-service.js';
import { connectTrainer, waitForTrainerHealthy, type TrainerClient } from './trainer-client.js';

export interface RunningLearner {
  config: { learner: LearnerConfig; serve: ServeLearnerConfig };
  learner: Learner;
  grpc: RunningGrpcServer;
  metrics: MetricsServer | undefined;
  /** The spawned engine, when the learner started one. */
  engine: EngineProcess | undefined;
  /** Stops the learner (finishing its step), the servers, the engine and the bus it opened. Safe to call twice. */
  close(): Promise<void>;
}

/**
 * Starts a learner from options (config field names, see config.ts) over PARLEY_* variables. `deps`
 * may supply the bus and trainer (tests); otherwise they come from busUrl and trainerAddress (or a
 * spawned engine); a builtin model's vocab_size left out of engineConfigJson is read from modelDir. Rejects
 * naming the bad setting or the unreadable model folder, with the engine's start error, or with the
 * learner's start error; whatever was started is closed again.
 */
export async function serveLearner(
  opts: Record<string, unknown> = {},
  logger: Logger = createLogger('learner'),
  deps: { bus?: Bus; trainer?: TrainerClient } = {},
): Promise<RunningLearner> {
  const resolved = resolveLearnerConfig(opts);
  const config = { ...resolved, learner: withBuiltinVocabSize(resolved.learner) };
  const { serve } = config;
  const closers: (() => Promise<void> | void)[] = [];
  const closeAll = async () => {
    for (const c of closers.splice(0).reverse()) {
      try {
        await c();
      } catch (e) {
        logger.warn({ err: e }, 'error while closing the learner');
      }
    }
  };
  try {
    let bus = deps.bus;
    if (!bus) {
      const opened = await connectBus(serve.busUrl === 'memory://' ? undefined : serve.busUrl);
      closers.push(() => opened.close());
      bus = opened;
    }
    let trainer = deps.trainer;
    let engine: EngineProcess | undefined;
    if (!trainer) {
      let address = serve.trainerAddress;
      if (address) {
        await waitForTrainerHealthy(address, serve.engineStartTimeoutMs);
      } else {
        // The engine saves weights only under the checkpoint folder (the learner's steps and its cold start).
        const env = { PARLEY_WEIGHTS_ROOT: resolve(config.learner.checkpointDir) };
        engine = await startEngineProcess({ python: serve.python, logger, startTimeoutMs: serve.engineStartTimeoutMs, env });
        closers.push(() => engine!.stop());
        address = engine.address;
      }
      const client = connectTrainer(address);
      closers.push(() => client.close());
      trainer = client;
    }
    const registry = metricsRegistry();
    const learner = new Learner(config.learner, { bus, trainer, logger, registry });
    closers.push(() => learner.stop());
    const impl = learnerServiceImpl(learner);
    const grpc = await startGrpcServer({ port: serve.port, host: serve.host, logger, services: [{ service: LearnerService, impl }] });
    closers.push(() => grpc.close());
    // The same object over the run's bus (parley.<run>.rpc.Learner.*), where the other actors are.
    const overBus = await serveOverBus(bus, LearnerService, impl, { run: config.learner.run, logger });
    closers.push(() => overBus.close());
    const metrics = serve.metricsPort >= 0 ? await serveMetrics(registry, serve.metricsPort, serve.host) : undefined;
    if (metrics) closers.push(() => metrics.close());
    await learner.start();
    logger.info({ port: grpc.port, metricsPort: metrics?.port, run: config.learner.run, step: learner.status().step }, 'learner serving');
    let closing: Promise<void> | undefined;
    return { config, learner, grpc, metrics, engine, close: () => (closing ??= closeAll()) };
  } catch (e) {
    await closeAll();
    throw e;
  }
}
