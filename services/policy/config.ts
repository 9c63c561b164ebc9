// The policy service's options: one zod schema, every field documented with its default, parsed once
// at start-up (CLI flags over PARLEY_* environment variables).

import { hostname } from 'node:os';
import { envOverrides, invalidArgument, parseConfig, z } from '../core/index.js';

const bool = z.union([z.boolean(), z.enum(['true', 'false', '1', '0']).transform((v) => v === 'true' || v === '1')]);
const int = (min: number) => z.coerce.number().int().min(min);

export const PolicyConfigSchema = z.object({
  /** Folder with tokenizer.json and tokenizer_config.json (chat template inside, or chat_template.jinja). */
  modelDir: z.string().min(1),
  /**
   * Sampling backend: `openai-compatible` (vLLM's OpenAI server, needs backendUrl) or `trainer-engine`
   * (the PyTorch engine's Sample RPC for the builtin model, needs engineAddress; chosen automatically when
   * only engineAddress is set).
   */
  backend: z.enum(['openai-compatible', 'trainer-engine']).optional(),
  /** OpenAI base URL of the backend, e.g. http://vllm:8000/v1. */
  backendUrl: z.string().url().optional(),
  /** host:port of the trainer engine (trainer-engine backend). Env: PARLEY_ENGINE_ADDRESS. */
  engineAddress: z.string().regex(/^[^\s:]+:[0-9]{1,5}$/, 'host:port').optional(),
  /** Model name the backend serves (vLLM's --served-model-name). */
  modelName: z.string().min(1),
  /** Bearer token for the backend, if it wants one. Never logged. */
  apiKey: z.string().optional(),
  /** Per-attempt HTTP timeout, ms. Default 120000 (long generations take a while). */
  requestTimeoutMs: int(1).default(120_000),
  /** Retries after the first attempt on 5xx, 429, timeouts and connection errors. Default 4. */
  maxRetries: int(0).default(4),
  /** First backoff cap, ms; doubles per retry, full jitter. Default 200. */
  retryBaseMs: int(0).default(200),
  /** Largest backoff, ms. Default 10000. */
  retryMaxMs: int(0).default(10_000),
  /** Most backend requests in flight at once. Default 256. */
  maxConcurrency: int(1).default(256),
  /** Context window: prompt plus completion tokens. Default 32768. */
  maxContextTokens: int(16).default(32_768),
  /** max_tokens when a request leaves it 0. Default 2048 (clamped to what the context leaves). */
  defaultMaxTokens: int(1).default(2048),
  /** Qwen3's enable_thinking template switch. Default false (an empty think block in each prompt). */
  enableThinking: bool.default(false),
  /** Adapter names are `<adapterPrefix>-v<version>`, never reused. Default `policy`. */
  adapterPrefix: z.string().regex(/^[a-z][a-z0-9-]*$/, 'lower-case letters, digits and dashes').default('policy'),
  /** LoRA adapters kept loaded (the newest ones) so in-flight requests finish on theirs. Default 2. */
  keepAdapters: int(1).default(2),
  /** Policy version before any LoadWeights (the base model). Default 0. */
  initialPolicyVersion: int(0).default(0),
  /** Conversations whose token prefix is kept (LRU). Default 4096. */
  prefixCacheConversations: int(1).default(4096),
  /** Tokens kept over all cached prefixes (LRU). Default 20,000,000 (~160 MB). */
  prefixCacheTokens: int(1).default(20_000_000),
  /** Fraction of requests checked for drift against a full re-render (costs one full tokenization). Default 1. */
  driftCheckRate: z.coerce.number().min(0).max(1).default(1),
  /** gRPC listen address. Default 0.0.0.0. */
  host: z.string().default('0.0.0.0'),
  /** gRPC port; 0 picks a free one. Default 50051. */
  port: int(0).max(65535).default(50051),
  /** Prometheus /metrics port; 0 picks a free one. Default 9464. */
  metricsPort: int(0).max(65535).default(9464),
  /** NATS URL: when set, Policy is also served over request-reply in `run` (gRPC stays). Flag --nats; env PARLEY_BUS_URL. */
  busUrl: z.string().min(1).optional(),
  /** Run whose subjects (parley.<run>.rpc.Policy.*) are served; required with busUrl. Env PARLEY_RUN. */
  run: z.string().min(1).optional(),
  /**
   * This replica's name, unique in the run: names its durable consumer of weights_published and its
   * weights_loaded events. Env PARLEY_REPLICA. Default: POD_NAME, else the host name (a pod's host name is its name).
   */
  replica: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,252}$/, 'letters, digits, ".", "_" and "-"').optional(),
  /** Folder for weights downloaded from the object store, one sub-folder per version. Default: <tmpdir>/parley-weights/<run>/<replica>. */
  weightsCacheDir: z.string().min(1).optional(),
  /** Downloaded weight versions kept in weightsCacheDir (the newest). Default 2. */
  keepWeightDownloads: int(1).default(2),
  /**
   * With busUrl: serve only once the run's learner has published weights (its version 0 may replace this
   * replica's initial weights, e.g. after a cold start). The controller sets it in a run's policy pods. Env PARLEY_AWAIT_WEIGHTS.
   */
  awaitWeights: bool.default(false),
});

export type PolicyConfig = Omit<z.infer<typeof PolicyConfigSchema>, 'backend' | 'replica'> & { backend: 'openai-compatible' | 'trainer-engine'; replica: string };
export type PolicyConfigInput = z.input<typeof PolicyConfigSchema>;

/**
 * Resolves the policy config from explicit options layered over `PARLEY_*` environment variables
 * (e.g. PARLEY_BACKEND_URL). Throws ParleyError(invalid_argument) naming every bad field.
 */
export function resolvePolicyConfig(input: Partial<Record<keyof PolicyConfigInput, unknown>>, env: NodeJS.ProcessEnv = process.env): PolicyConfig {
  const fromEnv = envOverrides(Object.keys(PolicyConfigSchema.shape), env);
  const explicit = Object.fromEntries(Object.entries(input).filter(([, v]) => v !== undefined));
  const c = parseConfig(PolicyConfigSchema, { ...fromEnv, ...explicit }, 'policy config');
  const backend = c.backend ?? (c.engineAddress && !c.backendUrl ? 'trainer-engine' : 'openai-compatible');
  if (backend === 'openai-compatible' && !c.backendUrl) throw invalidArgument('backendUrl', 'required for the openai-compatible backend (e.g. http://vllm:8000/v1)');
  if (backend === 'trainer-engine' && !c.engineAddress) throw invalidArgument('engineAddress', 'required for the trainer-engine backend (host:port of the PyTorch engine)');
  return { ...c, backend, replica: c.replica ?? (env.POD_NAME || hostname()) };
}
