// The sampling backend contract: token ids in, token ids and log-probs out. vLLM's OpenAI server
// implements it now; the local trainer engine's Sample RPC plugs in behind the same interface later.

export interface Sampling {
  temperature: number;
  topP: number;
  maxTokens: number;
  /** Undefined: the backend's own randomness. */
  seed?: number;
}

export interface BackendGenerateInput {
  promptTokenIds: readonly number[];
  sampling: Sampling;
  /** LoRA adapter name to sample with; undefined: the base model (or whatever full weights are loaded). */
  adapter?: string;
  /** Aborts the request (and its retries); the backend then rejects with ParleyError('cancelled'). */
  signal?: AbortSignal;
}

export type BackendFinishReason = 'stop' | 'length';

export interface BackendGenerateOutput {
  /** Sampled ids, end-of-turn token included when the model produced one. */
  tokenIds: number[];
  /** Log-probability of each sampled id under the sampling policy, same length as tokenIds. */
  logprobs: number[];
  finishReason: BackendFinishReason;
}

/**
 * A sampler. Every method rejects with ParleyError: `unavailable` / `deadline_exceeded` (retryable)
 * when the backend is down, slow or answers garbage; `invalid_argument` when it refuses the request;
 * `not_found` for an unknown model or adapter; `cancelled` when the signal fires; `internal` for a
 * response that is well-formed JSON of the wrong shape.
 */
export interface PolicyBackend {
  /** Short name for Info and metrics, e.g. `openai-compatible`. */
  readonly kind: string;
  generate(input: BackendGenerateInput): Promise<BackendGenerateOutput>;
  /** Loads a LoRA adapter from `path` under an immutable `name`. Absent: adapters are unsupported. */
  loadAdapter?(name: string, path: string, signal?: AbortSignal): Promise<void>;
  /** Unloads a LoRA adapter; rejects with not_found when it is not loaded. */
  unloadAdapter?(name: string, signal?: AbortSignal): Promise<void>;
  /** Replaces the full weights with those at `uri`. Absent: full-weight loads are unsupported. */
  loadFullWeights?(version: number, uri: string, signal?: AbortSignal): Promise<void>;
  /**
   * Resolves once the backend can serve (an inference server that answers, an engine initialised);
   * rejects only when `signal` aborts. Absent: always ready.
   */
  ready?(signal?: AbortSignal): Promise<void>;
  /** Releases connections; safe to call twice. */
  close?(): Promise<void>;
}
