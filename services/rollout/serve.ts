// Starts a rollout worker process: connects to the bus, reaches the sandbox, user simulator and policy over
// NATS request-reply (or gRPC addresses), serves /metrics, and drains on SIGTERM.

import { resolve } from 'node:path';
import type { GenService, GenServiceMethods } from '@bufbuild/protobuf/codegenv2';
import { z } from 'zod';
import { connectBus } from '../core/bus/index.js';
import { createBusClient } from '../core/bus-rpc.js';
import { parseConfig } from '../core/config.js';
import { createGrpcClient } from '../core/grpc.js';
import { createLogger, type Logger } from '../core/logger.js';
import { metricsRegistry, serveMetrics } from '../core/metrics.js';
import { Policy } from '../core/gen/parley/v1/policy_pb.js';
import { Sandbox } from '../core/gen/parley/v1/sandbox_pb.js';
import { UserSimulator } from '../core/gen/parley/v1/usersim_pb.js';
import { loadTasks } from '../sandbox/tasks.js';
import { DEFAULT_EPISODE_OPTIONS } from './episode.js';
import type { EpisodePorts } from './ports.js';
import { CapacityServer } from './sim/capacity-server.js';
import { SimulatedPolicy } from './sim/simulated-policy.js';
import { RolloutWorker } from './worker.js';

export const RolloutServeConfigSchema = z.object({
  /** The run this worker serves. */
  run: z.string().min(1),
  /** Worker name (defaults to the host name and PID). */
  name: z.string().min(1).default(`worker-${process.pid}`),
  /** NATS URL; required: tasks and trajectories travel over JetStream. */
  nats: z.string().min(1),
  /** Episodes in flight. */
  concurrency: z.coerce.number().int().positive().default(8),
  /** Task ack wait (ms); heartbeats every third of it. */
  ackWaitMs: z.coerce.number().int().min(100).default(30_000),
  maxDeliver: z.coerce.number().int().positive().default(5),
  /** How to reach each actor: 'nats' (request-reply in the run) or a gRPC host:port. */
  sandbox: z.string().default('nats'),
  usersim: z.string().default('nats'),
  /** 'nats', a gRPC host:port, or 'simulated' (a capacity-model test double; needs simulatedTasks). */
  policy: z.string().default('nats'),
  /** Task file whose gold actions the simulated policy performs. */
  simulatedTasks: z.string().optional(),
  simulatedCapacity: z.coerce.number().positive().default(2000),
  simulatedSequenceRate: z.coerce.number().positive().default(200),
  /** Deadline of one generation: a busy inference server queues requests, so it is long. */
  policyTimeoutMs: z.coerce.number().int().positive().default(600_000),
  /** Deadline of one sandbox or user-simulator call. */
  actorTimeoutMs: z.coerce.number().int().positive().default(60_000),
  /** Prometheus /metrics port (-1 = off). */
  metricsPort: z.coerce.number().int().min(-1).max(65535).default(-1),
});

export type RolloutServeConfig = z.infer<typeof RolloutServeConfigSchema>;

/** Starts the worker. Rejects naming a bad setting, or when NATS cannot be reached. */
export async function serveRolloutWorker(input: Record<string, unknown>, logger: Logger = createLogger('rollout')) {
  const cfg = parseConfig(RolloutServeConfigSchema, Object.fromEntries(Object.entries(input).filter(([, v]) => v !== undefined)), 'rollout config');
  const bus = await connectBus(cfg.nats);
  const pick = <M extends GenServiceMethods>(service: GenService<M>, where: string, timeoutMs = cfg.actorTimeoutMs) =>
    where === 'nats' ? createBusClient(bus, service, { run: cfg.run, defaultTimeoutMs: timeoutMs }) : createGrpcClient(service, where);
  let policy: EpisodePorts['policy'];
  if (cfg.policy === 'simulated') {
    if (!cfg.simulatedTasks) throw new Error('rollout config: simulatedTasks is required with policy=simulated');
    const tasks = new Map(loadTasks(resolve(cfg.simulatedTasks)).map((t) => [t.id, t]));
    policy = new SimulatedPolicy({
      server: new CapacityServer({ capacityTokensPerS: cfg.simulatedCapacity, maxSequenceTokensPerS: cfg.simulatedSequenceRate }),
      tasks,
      medianCompletionTokens: 40,
      sigma: 0.8,
      extraTurnProbability: 0.3,
      seed: process.pid,
    });
  } else {
    policy = pick(Policy, cfg.policy, cfg.policyTimeoutMs);
  }
  const ports: EpisodePorts = { policy, sandbox: pick(Sandbox, cfg.sandbox), user: pick(UserSimulator, cfg.usersim) };
  const registry = metricsRegistry();
  const worker = new RolloutWorker(
    { run: cfg.run, name: cfg.name, concurrency: cfg.concurrency, ackWaitMs: cfg.ackWaitMs, maxDeliver: cfg.maxDeliver, drainTimeoutMs: 30_000, episode: DEFAULT_EPISODE_OPTIONS },
    { bus, ports, logger, registry },
  );
  await worker.start();
  const metrics = cfg.metricsPort >= 0 ? await serveMetrics(registry, cfg.metricsPort) : undefined;
  logger.info({ run: cfg.run, name: cfg.name, concurrency: cfg.concurrency }, 'rollout worker started');
  return {
    worker,
    close: async () => {
      await worker.stop();
      await metrics?.close();
      await bus.close();
    },
  };
}
