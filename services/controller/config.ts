// The controller's settings: one zod schema, every field documented with its default, resolved once at
// start-up from flags over PARLEY_* environment variables (the chart sets the environment).

import { hostname } from 'node:os';
import { envOverrides, parseConfig, z } from '../core/config.js';
import { ParleyError } from '../core/errors.js';

const int = (min: number) => z.coerce.number().int().min(min);
const bool = z.union([z.boolean(), z.enum(['true', 'false', '1', '0']).transform((v) => v === 'true' || v === '1')]);
const secretRef = z
  .string()
  .regex(/^[a-z0-9]([-a-z0-9.]*[a-z0-9])?\/[-._a-zA-Z0-9]+$/, 'must be <secret-name>/<key>')
  .or(z.literal(''));

export const ControllerConfigSchema = z.object({
  /** Namespace whose TrainingRuns are reconciled; empty: all namespaces (needs the ClusterRole). */
  watchNamespace: z.string().default(''),
  /** The controller's own namespace (the Lease lives here). Env: PARLEY_POD_NAMESPACE or POD_NAMESPACE. */
  podNamespace: z.string().min(1).default('default'),
  /** Elect a leader through a Lease before reconciling (keep on with more than one replica). */
  leaderElect: bool.default(true),
  /** Name of the coordination.k8s.io Lease. */
  leaseName: z.string().min(1).default('parley-controller'),
  /** Holder identity in the Lease; default the host (pod) name and PID. */
  identity: z.string().min(1).default(`${hostname()}-${process.pid}`),
  /** A leader that does not renew for this long loses the Lease (ms). */
  leaseDurationMs: int(1000).default(15_000),
  /** A leader that cannot renew within this time steps down (ms); < leaseDurationMs. */
  renewDeadlineMs: int(500).default(10_000),
  /** Interval of acquire and renew attempts (ms). */
  retryPeriodMs: int(100).default(2_000),
  /** Reconciles running at once (different runs; one run is never reconciled twice at a time). */
  workers: int(1).default(2),
  /** Every run is reconciled again at least this often (ms). */
  resyncMs: int(1000).default(30_000),
  /** Work-queue backoff per run after a failed reconcile: first and largest delay (ms). */
  queueBaseMs: int(1).default(5),
  queueMaxMs: int(1).default(300_000),
  /** Overall reconcile rate (per second) and burst. */
  queueQps: z.coerce.number().positive().default(10),
  queueBurst: int(1).default(100),
  /** Backoff before a failed actor pod is replaced: first and largest delay (ms), doubling per restart. */
  restartBaseMs: int(0).default(10_000),
  restartMaxMs: int(0).default(300_000),
  /** NATS URL the controller and the actors use, e.g. nats://parley-nats.parley.svc:4222. */
  busUrl: z.string().min(1).default('nats://parley-nats:4222'),
  /** `<secret>/<key>` holding the NATS URL with credentials for actor pods (env valueFrom); empty: busUrl in plain text. */
  busUrlSecret: secretRef.default(''),
  /** Image of the TypeScript services (policy sidecar, user simulator, sandbox, rollout, learner). */
  parleyImage: z.string().min(1).default('ghcr.io/parley-dev/parley:0.1.0'),
  /** Image of the PyTorch trainer engine. */
  engineImage: z.string().min(1).default('ghcr.io/parley-dev/parley-engine:0.1.0'),
  /** vLLM's OpenAI-compatible server image (policy, and a user simulator LLM served in the run). */
  vllmImage: z.string().min(1).default('vllm/vllm-openai:v0.10.1.1'),
  imagePullPolicy: z.enum(['Always', 'IfNotPresent', 'Never']).default('IfNotPresent'),
  /** PersistentVolumeClaim mounted at /data in learner and policy pods (checkpoints, weights, models); empty: an emptyDir. */
  sharedVolumeClaim: z.string().default(''),
  /** τ²-bench data root inside the Parley image (holds retail/, airline/, …). */
  tau2DataDir: z.string().min(1).default('/opt/parley/data/tau2'),
  /** Scheduler for gang groups (e.g. a Volcano or scheduler-plugins coscheduling scheduler); empty: the default. */
  gangSchedulerName: z.string().default(''),
  /** Prometheus /metrics and /healthz port (0 = any free port, -1 = off). */
  metricsPort: int(-1).max(65535).default(8080),
  /** Listen address of the metrics server. */
  host: z.string().default('0.0.0.0'),
});

export type ControllerConfig = z.infer<typeof ControllerConfigSchema>;

/**
 * Resolves the controller config from explicit options over PARLEY_* environment variables
 * (POD_NAMESPACE also fills podNamespace). Throws ParleyError(invalid_argument) naming every bad field.
 */
export function resolveControllerConfig(opts: Record<string, unknown> = {}, env: NodeJS.ProcessEnv = process.env): ControllerConfig {
  const fromEnv: Record<string, unknown> = envOverrides(Object.keys(ControllerConfigSchema.shape), env);
  if (fromEnv.podNamespace === undefined && env.POD_NAMESPACE) fromEnv.podNamespace = env.POD_NAMESPACE;
  const explicit = Object.fromEntries(Object.entries(opts).filter(([, v]) => v !== undefined));
  const config = parseConfig(ControllerConfigSchema, { ...fromEnv, ...explicit }, 'controller config');
  if (config.renewDeadlineMs >= config.leaseDurationMs) {
    throw invalidConfig('renewDeadlineMs', `must be below leaseDurationMs (${config.leaseDurationMs})`);
  }
  if (config.queueMaxMs < config.queueBaseMs) throw invalidConfig('queueMaxMs', `must not be below queueBaseMs (${config.queueBaseMs})`);
  if (config.restartMaxMs < config.restartBaseMs) throw invalidConfig('restartMaxMs', `must not be below restartBaseMs (${config.restartBaseMs})`);
  return config;
}

function invalidConfig(field: string, message: string): ParleyError {
  return new ParleyError('invalid_argument', `invalid controller config: ${field}: ${message}`, { field });
}
