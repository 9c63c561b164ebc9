// The sandbox's settings, each documented with its default; parsed once at start-up.

import { z } from 'zod';
import { envOverrides, parseConfig } from '../core/config.js';

export const DomainConfigSchema = z.object({
  /** Domain name: retail, airline or mock. */
  name: z.string().min(1),
  /** Folder holding db.json, policy.md, tasks.json; default <dataDir>/<name>. */
  dataDir: z.string().optional(),
  /** Task file; default <folder>/tasks_release_37199f3.json where the folder holds it (τ² airline, retail), else <folder>/tasks.json. */
  tasksFile: z.string().optional(),
});

export const SandboxConfigSchema = z.object({
  /** Root of a tau2 data checkout (folders retail/, airline/, mock/). Env: PARLEY_DATA_DIR. */
  dataDir: z.string().min(1).default('../shared/data/tau2'),
  /** Domains to load; a missing folder fails at start with its path. */
  domains: z.array(z.union([z.string().min(1), DomainConfigSchema])).min(1).default(['retail', 'airline', 'mock']),
  /** gRPC listen host. */
  host: z.string().default('0.0.0.0'),
  /** gRPC port (0 = pick a free one). Env: PARLEY_PORT. */
  port: z.coerce.number().int().min(0).max(65535).default(50051),
  /** Prometheus /metrics port (0 = pick a free one, -1 = off). Env: PARLEY_METRICS_PORT. */
  metricsPort: z.coerce.number().int().min(-1).max(65535).default(9464),
  /** Most sessions open at once; more → RESOURCE_EXHAUSTED. */
  maxSessions: z.coerce.number().int().positive().default(4096),
  /** A session unused this long is closed (ms). */
  sessionIdleTtlMs: z.coerce.number().int().positive().default(15 * 60_000),
  /** Most tool calls per session (tau2 allows 200 steps); more → RESOURCE_EXHAUSTED. */
  maxCallsPerSession: z.coerce.number().int().positive().default(200),
  /**
   * Most bytes of argument strings (values and keys, UTF-8) one session's successful WRITE tool calls may
   * store, counted across its forks' shared history; more → RESOURCE_EXHAUSTED. The gold replays write
   * at most a few hundred bytes per task; 200 maximal calls would otherwise hold ~13 MiB per session.
   */
  maxSessionStateBytes: z.coerce.number().int().positive().default(1024 * 1024),
  /** Largest arguments_json accepted, in bytes; more → RESOURCE_EXHAUSTED. */
  maxArgumentBytes: z.coerce.number().int().positive().default(64 * 1024),
  /** Most copies one ForkSession may make. */
  maxForkCount: z.coerce.number().int().positive().max(4096).default(256),
  /** NATS URL: when set, the Sandbox is also served over request-reply in `run` (gRPC stays). Flag --nats; env: PARLEY_BUS_URL. */
  busUrl: z.string().min(1).optional(),
  /** Run whose subjects (parley.<run>.rpc.Sandbox.*) are served; required with busUrl. Env: PARLEY_RUN. */
  run: z.string().min(1).optional(),
});

export type SandboxConfig = z.infer<typeof SandboxConfigSchema>;

/** Resolves the sandbox config from explicit options over PARLEY_* environment variables. Throws naming the bad field. */
export function resolveSandboxConfig(opts: Record<string, unknown> = {}, env: NodeJS.ProcessEnv = process.env): SandboxConfig {
  const fromEnv = envOverrides(['dataDir', 'port', 'metricsPort', 'maxSessions', 'sessionIdleTtlMs', 'maxCallsPerSession', 'maxSessionStateBytes', 'maxArgumentBytes', 'busUrl', 'run'], env);
  const defined = Object.fromEntries(Object.entries(opts).filter(([, v]) => v !== undefined));
  return parseConfig(SandboxConfigSchema, { ...fromEnv, ...defined }, 'sandbox config');
}
