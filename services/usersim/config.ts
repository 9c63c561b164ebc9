// The user-simulator service's options: one zod schema, every field commented with its default,
// parsed once at start-up from flags layered over PARLEY_USERSIM_* environment variables.

import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { ParleyError, envOverrides, parseConfig, z } from '../core/index.js';

export const UserSimConfigSchema = z.object({
  /** Which user plays: `llm` (an OpenAI-compatible endpoint) or `scripted` (rule-based, no model). Default scripted. */
  mode: z.enum(['llm', 'scripted']).default('scripted'),
  /** Interface the gRPC server binds. Default 0.0.0.0. */
  host: z.string().default('0.0.0.0'),
  /** gRPC port; 0 picks a free one. Default 50053. */
  port: z.coerce.number().int().min(0).max(65535).default(50053),
  /** Port of the Prometheus /metrics endpoint; 0 picks a free one, -1 turns it off. Default 9464. */
  metricsPort: z.coerce.number().int().min(-1).max(65535).default(9464),

  /** OpenAI-compatible API base URL (llm mode), e.g. http://vllm-user:8000/v1. Required in llm mode. */
  baseUrl: z.url().optional(),
  /** Model name sent to the endpoint (llm mode). Required in llm mode. */
  model: z.string().min(1).optional(),
  /** Environment variable holding the API key. Default OPENAI_API_KEY. */
  apiKeyEnv: z.string().min(1).default('OPENAI_API_KEY'),
  /** File holding the API key (a mounted Kubernetes secret); wins over apiKeyEnv. */
  apiKeyFile: z.string().min(1).optional(),
  /** Sampling temperature. Default 0, as τ² evaluates. */
  temperature: z.coerce.number().min(0).max(2).default(0),
  /** Completion token cap per user turn; unset lets the server decide. */
  maxTokens: z.coerce.number().int().positive().optional(),
  /** Per-attempt request timeout in ms. Default 60000. */
  timeoutMs: z.coerce.number().int().positive().default(60_000),
  /** Retries after a retryable failure (429, 5xx, timeout, unusable response). Default 4. */
  maxRetries: z.coerce.number().int().min(0).max(20).default(4),
  /** First backoff delay in ms (doubles per retry, with jitter). Default 500. */
  backoffBaseMs: z.coerce.number().int().min(0).default(500),
  /** Largest backoff delay in ms. Default 20000. */
  backoffMaxMs: z.coerce.number().int().min(0).default(20_000),
  /** US dollars per million prompt tokens, for cost accounting. Default 0. */
  promptUsdPerMTok: z.coerce.number().min(0).default(0),
  /** US dollars per million completion tokens. Default 0. */
  completionUsdPerMTok: z.coerce.number().min(0).default(0),
  /** System prompt style: τ²'s guidelines + scenario, or a τ-bench v1-style prompt. Default tau2. */
  promptStyle: z.enum(['tau2', 'tau-bench-v1']).default('tau2'),
  /** τ²'s user_simulator/simulation_guidelines.md; default $PARLEY_TAU2_DATA/user_simulator/simulation_guidelines.md. */
  guidelinesPath: z.string().min(1).optional(),
  /** Text that replaces a <PERSONA_GUIDELINES> placeholder in the guidelines. Default empty. */
  personaGuidelines: z.string().default(''),

  /** Cache LLM user turns (memory). Default true. */
  cache: z.stringbool().or(z.boolean()).default(true),
  /** JSON-lines file that persists the cache across runs; unset = memory only. */
  cachePath: z.string().min(1).optional(),
  /** Most cached turns held in memory. Default 100000. */
  cacheMaxEntries: z.coerce.number().int().positive().default(100_000),

  /** Most live conversations; Start beyond it fails with RESOURCE_EXHAUSTED. Default 10000. */
  maxConversations: z.coerce.number().int().positive().default(10_000),
  /** A conversation idle this long (ms) is dropped. Default 1800000 (30 minutes). */
  idleTtlMs: z.coerce.number().int().positive().default(30 * 60_000),
  /** Most user turns per conversation (Start counts as one). Default 200, τ²'s step cap. */
  maxTurns: z.coerce.number().int().positive().default(200),
  /** Scripted mode: turns in a row with nothing to add before the user says ###STOP###. Default 2. */
  scriptedMaxIdleTurns: z.coerce.number().int().positive().default(2),

  /** NATS URL: when set, the service is also served over request-reply in `run` (gRPC stays). Flag --nats; env PARLEY_BUS_URL. */
  busUrl: z.string().min(1).optional(),
  /** Run whose subjects (parley.<run>.rpc.UserSimulator.*) are served; required with busUrl. Env PARLEY_RUN. */
  run: z.string().min(1).optional(),
});

export type UserSimConfig = z.infer<typeof UserSimConfigSchema>;
export type UserSimConfigInput = z.input<typeof UserSimConfigSchema>;

/** Run-wide settings, read from the same unprefixed variables in every pod (PARLEY_BUS_URL, PARLEY_RUN). */
const RUN_WIDE_KEYS = ['busUrl', 'run'] as const;
const KEYS = (Object.keys(UserSimConfigSchema.shape) as Array<keyof UserSimConfig>).filter((k) => !(RUN_WIDE_KEYS as readonly string[]).includes(k));

/** PARLEY_USERSIM_<FIELD> variables (e.g. PARLEY_USERSIM_BASE_URL), and PARLEY_BUS_URL and PARLEY_RUN, as config input. */
export function usersimEnv(env: NodeJS.ProcessEnv = process.env): Partial<Record<keyof UserSimConfig, string>> {
  const runWide = envOverrides(RUN_WIDE_KEYS, env);
  const prefixed = envOverrides(
    KEYS.map((k) => `usersim${k[0]!.toUpperCase()}${k.slice(1)}`),
    env,
  );
  const out: Partial<Record<keyof UserSimConfig, string>> = { ...runWide };
  for (const [k, v] of Object.entries(prefixed)) {
    const field = k.slice('usersim'.length);
    out[(field[0]!.toLowerCase() + field.slice(1)) as keyof UserSimConfig] = v;
  }
  return out;
}

/**
 * Parses options (flags over environment) into a config and checks what the chosen mode needs.
 * Throws ParleyError(invalid_argument) naming the field: a bad value, or llm mode without baseUrl,
 * model or a readable guidelines file.
 */
export function parseUserSimConfig(input: UserSimConfigInput | Record<string, unknown>, env: NodeJS.ProcessEnv = process.env): UserSimConfig {
  const defined = Object.fromEntries(Object.entries(input).filter(([, v]) => v !== undefined));
  const cfg = parseConfig(UserSimConfigSchema, { ...usersimEnv(env), ...defined }, 'usersim config');
  if (cfg.mode === 'llm') {
    for (const field of ['baseUrl', 'model'] as const) {
      if (!cfg[field]) throw new ParleyError('invalid_argument', `invalid usersim config: ${field}: required when mode is llm`, { field });
    }
    if (cfg.promptStyle === 'tau2' && !cfg.guidelinesPath) {
      const root = env.PARLEY_TAU2_DATA;
      if (!root) {
        throw new ParleyError(
          'invalid_argument',
          'invalid usersim config: guidelinesPath: required for promptStyle tau2 (path to tau2 user_simulator/simulation_guidelines.md; or set PARLEY_TAU2_DATA)',
          { field: 'guidelinesPath' },
        );
      }
      cfg.guidelinesPath = resolve(root, 'user_simulator', 'simulation_guidelines.md');
    }
  }
  return cfg;
}

/** Reads the guidelines file named by the config. Throws ParleyError(invalid_argument, guidelinesPath) when unreadable. */
export function loadGuidelines(path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch (e) {
    throw new ParleyError('invalid_argument', `invalid usersim config: guidelinesPath: cannot read ${path} (${(e as Error).message})`, {
      field: 'guidelinesPath',
      cause: e,
    });
  }
}

/**
 * The API key: the file's trimmed content when apiKeyFile is set, else the variable apiKeyEnv, else
 * "EMPTY" (what vLLM's server accepts). Throws ParleyError(invalid_argument, apiKeyFile) when the file is unreadable.
 */
export function resolveApiKey(cfg: UserSimConfig, env: NodeJS.ProcessEnv = process.env): string {
  if (cfg.apiKeyFile) {
    try {
      return readFileSync(cfg.apiKeyFile, 'utf8').trim();
    } catch (e) {
      throw new ParleyError('invalid_argument', `invalid usersim config: apiKeyFile: cannot read ${cfg.apiKeyFile}`, { field: 'apiKeyFile', cause: e });
    }
  }
  return env[cfg.apiKeyEnv] || 'EMPTY';
}
