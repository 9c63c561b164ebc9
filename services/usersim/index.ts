// Public surface of services/usersim: the UserSimulator service, its server, and the pieces other
// services may use directly (scenario rendering, the LLM and scripted users, the turn cache).

import { ParleyError, createLogger, metricsRegistry, serveMetrics, startGrpcServer, type Logger, type MetricsServer, type Registry } from '../core/index.js';
import { UserSimulator } from '../core/gen/parley/v1/usersim_pb.js';
import { busTarget, serveServicesOverBus, type RunningBusServer } from '../core/serve-bus.js';
import { parseUserSimConfig, type UserSimConfig, type UserSimConfigInput } from './config.js';
import { UserSimulatorService, type UserSimulatorDeps } from './service.js';

export { UserSimulatorService, type UserSimulatorDeps, type UserSimulatorMethods } from './service.js';
export { UserSimConfigSchema, parseUserSimConfig, usersimEnv, type UserSimConfig, type UserSimConfigInput } from './config.js';
export {
  PERSONA_PLACEHOLDER,
  parseRenderedScenario,
  pyIndent,
  renderStructuredInstructions,
  renderSystemPrompt,
  renderTau2SystemPrompt,
  renderUserScenario,
  renderV1SystemPrompt,
  type PromptStyle,
} from './scenario.js';
export { ParleyUserSchema, TaskSchema, UserScenarioSchema, parseTaskJson, type ParleyUser, type Task, type UserScenario } from './task-schema.js';
export { LlmConversation, LlmUserBackend, type Completion, type LlmBackendOptions, type SimMessage } from './llm-simulator.js';
export { ScriptedConversation, scriptedProfile, scriptedProfileFromText, type ScriptedOptions, type ScriptedProfile } from './scripted-simulator.js';
export { UserTurnCache, cacheKey, type CacheKeyParts, type CachedTurn, type UserTurnCacheOptions } from './cache.js';
export { DEFAULT_GREETING, STOP_TOKENS, UserStop, detectStop, type TurnUsage, type UserConversation, type UserTurn } from './types.js';

export interface ServeUserSimulatorOptions {
  /** Raw options (flags); layered over PARLEY_USERSIM_* variables and parsed with the config schema. */
  config?: UserSimConfigInput | Record<string, unknown>;
  logger?: Logger;
  registry?: Registry;
  /** Overrides for tests: a backend or guidelines text instead of the configured ones. */
  deps?: Partial<Omit<UserSimulatorDeps, 'config' | 'logger' | 'registry'>>;
  env?: NodeJS.ProcessEnv;
}

export interface RunningUserSimulator {
  config: UserSimConfig;
  service: UserSimulatorService;
  /** The bound gRPC port. */
  port: number;
  /** The bound /metrics port; undefined when metricsPort is -1. */
  metricsPort?: number;
  /** The request-reply server; undefined without busUrl. */
  bus?: RunningBusServer;
  /** Graceful stop of NATS serving, gRPC and /metrics; safe to call twice. */
  close(): Promise<void>;
}

/**
 * Starts the UserSimulator gRPC service (plus grpc.health.v1), its /metrics endpoint and, with busUrl,
 * the same object over NATS request-reply in the run. Rejects with ParleyError: invalid_argument for a
 * bad config (the message names the field; busUrl without run names run), failed_precondition for an
 * unreadable cache file, unavailable when a port cannot be bound or NATS cannot be reached (nothing is
 * left running).
 */
export async function serveUserSimulator(opts: ServeUserSimulatorOptions = {}): Promise<RunningUserSimulator> {
  const config = parseUserSimConfig(opts.config ?? {}, opts.env);
  const target = busTarget({ url: config.busUrl, run: config.run });
  const logger = opts.logger ?? createLogger('usersim');
  const registry = opts.registry ?? metricsRegistry();
  const service = new UserSimulatorService({ ...opts.deps, config, logger, registry });
  let metrics: MetricsServer | undefined;
  try {
    const grpc = await startGrpcServer({ services: [{ service: UserSimulator, impl: service }], host: config.host, port: config.port, logger });
    try {
      if (config.metricsPort >= 0) metrics = await serveMetrics(registry, config.metricsPort, config.host);
    } catch (e) {
      await grpc.close(0);
      throw new ParleyError('unavailable', `cannot serve /metrics on ${config.host}:${config.metricsPort}: ${(e as Error).message}`, { cause: e });
    }
    let bus: RunningBusServer | undefined;
    try {
      if (target) bus = await serveServicesOverBus(target, [{ service: UserSimulator, impl: service }], { logger });
    } catch (e) {
      await grpc.close(0);
      await metrics?.close();
      throw e;
    }
    logger.info({ port: grpc.port, metricsPort: metrics?.port, mode: config.mode, model: config.model, run: bus?.run }, bus ? 'user simulator serving over gRPC and NATS' : 'user simulator serving');
    let closing: Promise<void> | undefined;
    return {
      config,
      service,
      port: grpc.port,
      metricsPort: metrics?.port,
      bus,
      close: () =>
        (closing ??= (async () => {
          await bus?.close();
          await grpc.close();
          await metrics?.close();
          service.close();
        })()),
    };
  } catch (e) {
    service.close();
    throw e;
  }
}
