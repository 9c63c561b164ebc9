// Starts the policy actor: loads the model folder, connects the backend, serves Policy over gRPC
// (with grpc.health.v1), over NATS request-reply when busUrl is set, and Prometheus metrics on /metrics.

import { Policy } from '../core/gen/parley/v1/policy_pb.js';
import { ParleyError, createLogger, invalidArgument, metricsRegistry, serveMetrics, startGrpcServer, type Logger, type Registry } from '../core/index.js';
import { busTarget, serveServicesOverBus, type RunningBusServer } from '../core/serve-bus.js';
import type { PolicyBackend } from './backend.js';
import { loadChatModel } from './chat-model.js';
import { resolvePolicyConfig, type PolicyConfig, type PolicyConfigInput } from './config.js';
import { policyMetrics } from './metrics.js';
import { OpenAICompatibleBackend } from './openai-backend.js';
import { createPolicyService, type PolicyServiceImpl } from './policy-service.js';

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
  /** Stops NATS serving and gRPC (gracefully, in-flight calls finish), then metrics and the backend; safe to call twice. */
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
 * Starts the policy service. Rejects with ParleyError: invalid_argument for a bad config (naming the
 * field; busUrl without run names run) or model folder, not_found for missing model files, unavailable
 * when a port cannot be bound or NATS cannot be reached.
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
  const grpc = await startGrpcServer({ services: [{ service: Policy, impl: service }], host: config.host, port: config.port, logger });
  let metricsServer;
  try {
    metricsServer = await serveMetrics(registry, config.metricsPort, config.host);
  } catch (e) {
    await grpc.close(0);
    throw new ParleyError('unavailable', `cannot serve metrics on ${config.host}:${config.metricsPort}: ${(e as Error).message}`, { cause: e });
  }
  let bus: RunningBusServer | undefined;
  try {
    if (target) bus = await serveServicesOverBus(target, [{ service: Policy, impl: service }], { logger });
  } catch (e) {
    await grpc.close(0);
    await metricsServer.close();
    throw e;
  }
  logger.info(
    { port: grpc.port, metricsPort: metricsServer.port, model: config.modelName, backend: backend.kind, run: bus?.run },
    bus ? 'policy serving over gRPC and NATS' : 'policy serving',
  );
  let closing: Promise<void> | undefined;
  return {
    config,
    port: grpc.port,
    metricsPort: metricsServer.port,
    service,
    bus,
    close: () =>
      (closing ??= (async () => {
        await bus?.close();
        await grpc.close();
        await metricsServer.close();
        await backend.close?.();
      })()),
  };
}
