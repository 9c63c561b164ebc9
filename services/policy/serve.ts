// Starts the policy actor: loads the model folder, connects the backend, serves Policy over gRPC
// (with grpc.health.v1), over NATS request-reply when busUrl is set (following the run's published
// weights first), and Prometheus metrics on /metrics.

import { connectBus, type Bus } from '../core/bus/index.js';
import { Policy } from '../core/gen/parley/v1/policy_pb.js';
import {
  ParleyError,
  createLocalClient,
  createLogger,
  invalidArgument,
  metricsRegistry,
  serveMetrics,
  startGrpcServer,
  type Logger,
  type MetricsServer,
  type Registry,
  type RunningGrpcServer,
} from '../core/index.js';
import { busTarget, serveServicesOverBus, type RunningBusServer } from '../core/serve-bus.js';
import type { PolicyBackend } from './backend.js';
import { loadChatModel } from './chat-model.js';
import { resolvePolicyConfig, type PolicyConfig, type PolicyConfigInput } from './config.js';
import { policyMetrics } from './metrics.js';
import { OpenAICompatibleBackend } from './openai-backend.js';
import { createPolicyService, type PolicyServiceImpl } from './policy-service.js';
import { WeightFollower } from './weight-follower.js';

export interface ServePolicyOptions {
  /** Config fields (validated with PolicyConfigSchema, over PARLEY_* environment variables). */
  config: Partial<Record<keyof PolicyConfigInput, unknown>>;
  /** A backend to use instead of the configured one (e.g. the trainer engine's sampler, or a test's). */
  backend?: PolicyBackend;
  registry?: Registry;
  logger?: Logger;
  /** Environment for PARLEY_* overrides; process.env by default. */
  env?: NodeJS.ProcessEnv;
}

export interface RunningPolicy {
  config: PolicyConfig;
  port: number;
  metricsPort: number;
  service: PolicyServiceImpl;
  /** The request-reply server; undefined without busUrl. */
  bus?: RunningBusServer;
  /** Follows the run's weights_published events; undefined without busUrl. */
  weights?: WeightFollower;
  /**
   * Stops NATS serving, weight following (deleting the replica's durable: pod names are not reused) and
   * gRPC (gracefully, in-flight calls finish), then metrics and the backend; safe to call twice.
   */
  close(): Promise<void>;
}

/**
 * Builds the configured backend. Throws ParleyError(invalid_argument) for a backend that must be passed in
 * (trainer-engine: the caller builds it over the engine's Sample RPC and passes it as `backend`).
 */
export function createBackend(config: PolicyConfig, onRetry?: (code: string) => void): PolicyBackend {
  if (config.backend !== 'openai-compatible' || !config.backendUrl) {
    throw invalidArgument('backend', `the ${config.backend} backend is built by the caller (parley serve policy does it for trainer-engine)`);
  }
  return new OpenAICompatibleBackend({
    baseUrl: config.backendUrl,
    model: config.modelName,
    apiKey: config.apiKey,
    timeoutMs: config.requestTimeoutMs,
    retry: { maxRetries: config.maxRetries, baseDelayMs: config.retryBaseMs, maxDelayMs: config.retryMaxMs },
    maxConcurrency: config.maxConcurrency,
    onRetry,
  });
}

/**
 * Starts the policy service. With busUrl it first loads the run's newest published weights (retrying
 * while the bus or backend is unavailable; gRPC health reports the Policy service NOT_SERVING and
 * /readyz 503 meanwhile), then serves over NATS and follows later versions. Rejects with ParleyError:
 * invalid_argument for a bad config (naming the field; busUrl without run names run) or model folder,
 * not_found for missing model files, unavailable when a port cannot be bound or NATS cannot be reached,
 * or the error that keeps the newest weights from loading for good.
 */
export async function servePolicy(opts: ServePolicyOptions): Promise<RunningPolicy> {
  const config = resolvePolicyConfig(opts.config, opts.env);
  const target = busTarget({ url: config.busUrl, run: config.run });
  const logger = opts.logger ?? createLogger('policy');
  const registry = opts.registry ?? metricsRegistry();
  const metrics = policyMetrics(registry);
  const model = loadChatModel(config.modelDir);
  const backend = opts.backend ?? createBackend(config, (code) => metrics.retries.inc({ code }));
  const service = createPolicyService({ config, model, backend, metrics, logger });
  const grpc: RunningGrpcServer = await startGrpcServer({ services: [{ service: Policy, impl: service }], host: config.host, port: config.port, logger });
  // Not ready for rollouts until the newest weights are in (the process itself is alive: '' stays SERVING).
  if (target) grpc.health.setStatus(Policy.typeName, 'NOT_SERVING');
  let weights: WeightFollower | undefined;
  let metricsServer: MetricsServer;
  try {
    metricsServer = await serveMetrics(registry, config.metricsPort, config.host, { ready: () => !weights || weights.state === 'following' });
  } catch (e) {
    await grpc.close(0);
    throw new ParleyError('unavailable', `cannot serve metrics on ${config.host}:${config.metricsPort}: ${(e as Error).message}`, { cause: e });
  }
  let bus: RunningBusServer | undefined;
  let weightsBus: Bus | undefined;
  try {
    if (target) {
      try {
        weightsBus = await connectBus(target.url, { name: `policy-weights-${config.replica}` });
      } catch (e) {
        throw new ParleyError('unavailable', `cannot follow published weights: ${(e as Error).message}`, { cause: e });
      }
      // Nothing is served (and no adapter loaded) before the inference server answers: a vLLM beside this
      // sidecar takes a while to load its model, and a rollout reaching a replica without one would fail.
      if (backend.ready) {
        logger.info({ backend: backend.kind }, 'waiting for the backend to answer');
        await backend.ready();
      }
      weights = new WeightFollower(
        { run: target.run, replica: config.replica, cacheDir: config.weightsCacheDir, keepDownloads: config.keepWeightDownloads, awaitFirstPublish: config.awaitWeights },
        { bus: weightsBus, policy: createLocalClient(Policy, service), logger, metrics },
      );
      await weights.start();
      bus = await serveServicesOverBus(target, [{ service: Policy, impl: service }], { logger });
      grpc.health.setStatus(Policy.typeName, 'SERVING');
    }
  } catch (e) {
    await weights?.stop();
    await weightsBus?.close();
    await grpc.close(0);
    await metricsServer.close();
    throw e;
  }
  logger.info(
    { port: grpc.port, metricsPort: metricsServer.port, model: config.modelName, backend: backend.kind, run: bus?.run, replica: config.replica, version: weights?.version },
    bus ? 'policy serving over gRPC and NATS' : 'policy serving',
  );
  let closing: Promise<void> | undefined;
  return {
    config,
    port: grpc.port,
    metricsPort: metricsServer.port,
    service,
    bus,
    weights,
    close: () =>
      (closing ??= (async () => {
        await bus?.close();
        await weights?.stop({ deleteDurable: true });
        await weightsBus?.close();
        await grpc.close();
        await metricsServer.close();
        await backend.close?.();
      })()),
  };
}
