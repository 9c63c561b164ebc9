// The `openai-compatible` backend for vLLM's OpenAI server: /v1/completions with a token-id prompt,
// ids and log-probs back, LoRA hot-loading; per-attempt timeouts, retries and a concurrency limit.

import { ParleyError, type ErrorCode } from '../core/index.js';
import { sleep } from '../core/retry.js';
import type { BackendGenerateInput, BackendGenerateOutput, PolicyBackend } from './backend.js';
import { ConcurrencyLimit, withRetries, type RetryPolicy } from './retry.js';

export interface OpenAICompatibleOptions {
  /** OpenAI base URL, e.g. `http://vllm:8000/v1`; `/v1` is appended when the URL has no path. */
  baseUrl: string;
  /** Served model name (the base model; adapters are addressed by their own names). */
  model: string;
  apiKey?: string;
  /** Limit per HTTP attempt. */
  timeoutMs: number;
  retry: RetryPolicy;
  /** Most HTTP requests in flight at once; others wait in FIFO order. */
  maxConcurrency: number;
  /** Called before each retry with the error code being retried (for metrics). */
  onRetry?: (code: ErrorCode) => void;
}

interface HttpAnswer {
  status: number;
  text: string;
  retryAfterMs?: number;
}

function statusError(status: number, message: string, retryAfterMs?: number): ParleyError {
  const code: ErrorCode =
    status === 429
      ? 'resource_exhausted'
      : status === 408
        ? 'deadline_exceeded'
        : status >= 500
          ? 'unavailable'
          : status === 400 || status === 422
            ? 'invalid_argument'
            : status === 404
              ? 'not_found'
              : status === 401
                ? 'unauthenticated'
                : status === 403
                  ? 'permission_denied'
                  : 'internal';
  const err = new ParleyError(code, message, { retryable: status === 429 || status === 408 || status >= 500 });
  Object.assign(err, { httpStatus: status });
  if (retryAfterMs !== undefined) Object.assign(err, { retryAfterMs });
  return err;
}

function serverMessage(text: string): string {
  try {
    const v = JSON.parse(text) as { message?: unknown; error?: { message?: unknown } | string };
    if (typeof v.message === 'string') return v.message;
    if (v.error && typeof v.error === 'object' && typeof v.error.message === 'string') return v.error.message;
    if (typeof v.error === 'string') return v.error;
  } catch {
    // not JSON: use the text itself
  }
  return text.length > 200 ? `${text.slice(0, 200)}…` : text;
}

function badShape(what: string): ParleyError {
  return new ParleyError('internal', `backend answered with an unexpected completion shape: ${what}`);
}

/**
 * Reads ids, log-probs and finish reason from a vLLM /v1/completions response. Ids come from
 * `choices[0].token_ids` (vLLM's `return_token_ids`) or else from `logprobs.tokens` as `token_id:N`
 * (`return_tokens_as_token_ids`). Throws ParleyError('internal') naming what is missing or malformed.
 */
export function parseCompletionResponse(body: unknown): BackendGenerateOutput {
  const choice = (body as { choices?: unknown[] } | null)?.choices?.[0] as Record<string, unknown> | undefined;
  if (!choice || typeof choice !== 'object') throw badShape('no choices[0]');
  const lp = choice.logprobs as { tokens?: unknown; token_logprobs?: unknown } | null | undefined;
  let ids: number[] | undefined;
  if (Array.isArray(choice.token_ids)) {
    ids = choice.token_ids as number[];
  } else if (lp && Array.isArray(lp.tokens)) {
    ids = (lp.tokens as unknown[]).map((t) => (typeof t === 'string' && t.startsWith('token_id:') ? Number(t.slice(9)) : NaN));
  }
  if (!ids) throw badShape('no token ids (choices[0].token_ids or logprobs.tokens as "token_id:N"; vLLM returns them with return_token_ids)');
  const badId = ids.findIndex((id) => typeof id !== 'number' || !Number.isInteger(id) || id < 0);
  if (badId >= 0) throw badShape(`token id ${badId} is not a non-negative integer`);
  if (!lp || !Array.isArray(lp.token_logprobs)) throw badShape('no logprobs.token_logprobs (request logprobs)');
  const logprobs = (lp.token_logprobs as unknown[]).map((x) => (typeof x === 'number' ? x : NaN));
  if (logprobs.length !== ids.length) throw badShape(`${ids.length} token ids but ${logprobs.length} log-probs`);
  if (logprobs.some((x) => Number.isNaN(x) || x > 1e-6)) throw badShape('a log-prob is missing or positive');
  const finish = choice.finish_reason;
  if (finish !== 'stop' && finish !== 'length') throw badShape(`finish_reason ${JSON.stringify(finish)} (expected "stop" or "length")`);
  return { tokenIds: ids, logprobs, finishReason: finish };
}

/** A PolicyBackend over an OpenAI-compatible server as vLLM documents it. */
export class OpenAICompatibleBackend implements PolicyBackend {
  readonly kind = 'openai-compatible';
  private readonly base: string;
  private readonly limit: ConcurrencyLimit;

  constructor(private readonly opts: OpenAICompatibleOptions) {
    const url = new URL(opts.baseUrl);
    this.base = url.pathname === '/' || url.pathname === '' ? `${url.origin}/v1` : url.href.replace(/\/+$/, '');
    this.limit = new ConcurrencyLimit(opts.maxConcurrency);
  }

  /** HTTP requests now in flight (for metrics and tests). */
  get inFlight(): number {
    return this.limit.inFlight;
  }

  /**
   * Resolves once GET /v1/models answers 2xx (vLLM answers it once the model is loaded; any
   * OpenAI-compatible server has it), looking every `pollMs`. Rejects only when `signal` aborts.
   */
  async ready(signal?: AbortSignal, pollMs = 1000): Promise<void> {
    for (;;) {
      try {
        await this.request('GET', '/models', undefined, signal);
        return;
      } catch (e) {
        if (signal?.aborted) throw e;
      }
      await sleep(pollMs, signal).catch(() => undefined);
    }
  }

  /** Samples a completion for a token-id prompt. Rejects as PolicyBackend describes. */
  async generate(input: BackendGenerateInput): Promise<BackendGenerateOutput> {
    const { sampling } = input;
    const body: Record<string, unknown> = {
      model: input.adapter ?? this.opts.model,
      prompt: input.promptTokenIds,
      max_tokens: sampling.maxTokens,
      temperature: sampling.temperature,
      top_p: sampling.topP,
      n: 1,
      stream: false,
      logprobs: 0,
      return_token_ids: true,
      return_tokens_as_token_ids: true,
    };
    if (sampling.seed !== undefined) body.seed = sampling.seed;
    return this.call(input.signal, async (signal) => {
      const answer = await this.request('POST', '/completions', body, signal);
      let json: unknown;
      try {
        json = JSON.parse(answer.text);
      } catch {
        throw new ParleyError('unavailable', `backend answered ${answer.status} with a body that is not JSON: ${JSON.stringify(answer.text.slice(0, 80))}`);
      }
      return parseCompletionResponse(json);
    });
  }

  /**
   * Loads a LoRA adapter (vLLM: POST /v1/load_lora_adapter, needs VLLM_ALLOW_RUNTIME_LORA_UPDATING).
   * A refusal for a name the server already lists counts as success, so a retried load is idempotent.
   * Rejects with not_found when the folder holds no adapter, invalid_argument when the server refuses the
   * adapter, or as PolicyBackend describes.
   */
  async loadAdapter(name: string, path: string, signal?: AbortSignal): Promise<void> {
    await this.call(signal, async (s) => {
      try {
        await this.request('POST', '/load_lora_adapter', { lora_name: name, lora_path: path }, s);
      } catch (e) {
        if (!(e instanceof ParleyError)) throw e;
        if (e.code === 'invalid_argument' && (await this.listModels(s)).includes(name)) return;
        // vLLM 0.32 answers 500 for an adapter its worker refuses (a rank above --max-lora-rank, a broken
        // adapter_config.json) and stays up. Retrying cannot help then, so a 500 from a server that is
        // otherwise healthy is the adapter's fault; a 500 from one that is not stays retryable.
        if ((e as { httpStatus?: number }).httpStatus === 500 && (await this.healthy(s))) {
          throw new ParleyError('invalid_argument', `the server refused adapter ${name} from ${path} and is otherwise healthy: ${e.message}`, { cause: e });
        }
        throw e;
      }
    });
  }

  /** Whether GET /health (at the server's root, beside /v1) answers 200. Never rejects. */
  private async healthy(signal?: AbortSignal): Promise<boolean> {
    const url = new URL('/health', this.base).href;
    const timeout = AbortSignal.timeout(this.opts.timeoutMs);
    try {
      const res = await fetch(url, { signal: signal ? AbortSignal.any([signal, timeout]) : timeout });
      await res.body?.cancel();
      return res.status === 200;
    } catch {
      return false;
    }
  }

  /** Unloads a LoRA adapter (POST /v1/unload_lora_adapter). Rejects with not_found when it is not loaded. */
  async unloadAdapter(name: string, signal?: AbortSignal): Promise<void> {
    await this.call(signal, (s) => this.request('POST', '/unload_lora_adapter', { lora_name: name }, s));
  }

  /** Model and adapter names the server lists (GET /v1/models). Rejects as PolicyBackend describes. */
  async listModels(signal?: AbortSignal): Promise<string[]> {
    const answer = await this.request('GET', '/models', undefined, signal);
    try {
      const data = (JSON.parse(answer.text) as { data?: { id?: unknown }[] }).data;
      if (!Array.isArray(data)) throw new Error('no data list');
      return data.map((m) => String(m.id));
    } catch (e) {
      throw new ParleyError('unavailable', `backend /models answer is not a model list: ${(e as Error).message}`);
    }
  }

  private call<T>(signal: AbortSignal | undefined, fn: (signal: AbortSignal | undefined) => Promise<T>): Promise<T> {
    return withRetries(this.opts.retry, () => this.limit.run(() => fn(signal), signal), {
      signal,
      onRetry: (err) => this.opts.onRetry?.(err.code),
    });
  }

  private async request(method: 'GET' | 'POST', path: string, body: unknown, signal?: AbortSignal): Promise<HttpAnswer> {
    const url = this.base + path;
    const timeout = AbortSignal.timeout(this.opts.timeoutMs);
    const combined = signal ? AbortSignal.any([signal, timeout]) : timeout;
    const headers: Record<string, string> = { accept: 'application/json' };
    if (body !== undefined) headers['content-type'] = 'application/json';
    if (this.opts.apiKey) headers.authorization = `Bearer ${this.opts.apiKey}`;
    let status: number;
    let text: string;
    let retryAfter: string | null;
    try {
      const res = await fetch(url, { method, headers, body: body === undefined ? undefined : JSON.stringify(body), signal: combined });
      status = res.status;
      retryAfter = res.headers.get('retry-after');
      text = await res.text();
    } catch (e) {
      if (signal?.aborted) throw new ParleyError('cancelled', `${method} ${url} cancelled`, { cause: e });
      if (timeout.aborted) {
        throw new ParleyError('deadline_exceeded', `${method} ${url}: no complete answer within ${this.opts.timeoutMs} ms`, { cause: e });
      }
      const cause = (e as { cause?: { code?: string; message?: string } }).cause;
      const why = cause?.code ?? cause?.message ?? (e as Error).message;
      throw new ParleyError('unavailable', `${method} ${url} failed: ${why}`, { cause: e });
    }
    const seconds = retryAfter === null ? NaN : Number(retryAfter);
    const retryAfterMs = Number.isFinite(seconds) && seconds >= 0 ? seconds * 1000 : undefined;
    if (status < 200 || status >= 300) {
      throw statusError(status, `${method} ${url} answered ${status}: ${serverMessage(text)}`, retryAfterMs);
    }
    return { status, text, ...(retryAfterMs !== undefined ? { retryAfterMs } : {}) };
  }
}
