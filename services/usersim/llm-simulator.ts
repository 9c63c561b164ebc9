// The LLM user: any OpenAI-compatible chat endpoint (through the `openai` package) plays the customer
// from a system prompt, seeing the agent's text as "user" turns and its own as "assistant" turns.

import OpenAI, { APIConnectionError, APIConnectionTimeoutError, APIError, APIUserAbortError } from 'openai';
import { ParleyError } from '../core/index.js';
import { backoffDelay, retryAfterMs, sleep } from './backoff.js';
import { cacheKey, type UserTurnCache } from './cache.js';
import { DEFAULT_GREETING, detectStop, freeUsage, type StartInput, type TurnUsage, type UserConversation, type UserTurn } from './types.js';

/** One message as the simulator's model sees it (roles already flipped). */
export interface SimMessage {
  role: 'system' | 'user' | 'assistant';
  content: string;
}

export interface LlmBackendOptions {
  /** Base URL of the OpenAI-compatible API, e.g. http://vllm:8000/v1. */
  baseUrl: string;
  /** Bearer token; vLLM accepts any value. Never logged. */
  apiKey: string;
  model: string;
  temperature: number;
  /** Completion length cap; undefined lets the server decide. */
  maxTokens?: number;
  /** Per-attempt request timeout. */
  timeoutMs: number;
  /** Retries after the first attempt, on retryable failures only. */
  maxRetries: number;
  backoffBaseMs: number;
  backoffMaxMs: number;
  /** US dollars per million prompt tokens. */
  promptUsdPerMTok: number;
  /** US dollars per million completion tokens. */
  completionUsdPerMTok: number;
  cache?: UserTurnCache;
  /** Called before each retry (for metrics and logs). */
  onRetry?: (info: { attempt: number; error: ParleyError; delayMs: number }) => void;
  random?: () => number;
}

/** The text of one completion with its usage and how many attempts failed first. */
export interface Completion {
  text: string;
  usage: TurnUsage;
  source: 'llm' | 'cache';
  retries: number;
}

/** Why a 200 response was unusable; retried like a server error. */
class GarbageCompletion extends Error {}

function extractText(res: unknown): { text: string; promptTokens: number; completionTokens: number } {
  const r = res as { choices?: Array<{ message?: { content?: unknown } }>; usage?: { prompt_tokens?: unknown; completion_tokens?: unknown } } | null;
  if (!r || typeof r !== 'object' || !Array.isArray(r.choices)) {
    throw new GarbageCompletion(`response is not a chat completion (no choices array): ${JSON.stringify(res)?.slice(0, 200)}`);
  }
  const content = r.choices[0]?.message?.content;
  if (typeof content !== 'string' || !content.trim()) throw new GarbageCompletion('completion has no text content');
  const num = (v: unknown) => (typeof v === 'number' && Number.isFinite(v) && v >= 0 ? Math.floor(v) : 0);
  return { text: content, promptTokens: num(r.usage?.prompt_tokens), completionTokens: num(r.usage?.completion_tokens) };
}

/** Maps a failed attempt to a ParleyError whose `retryable` says whether another attempt may help, with any Retry-After. */
function classify(e: unknown, timeoutMs: number): { err: ParleyError; retryAfter: number } {
  const plain = (err: ParleyError) => ({ err, retryAfter: 0 });
  if (e instanceof ParleyError) return plain(e);
  if (e instanceof APIUserAbortError) return plain(new ParleyError('cancelled', 'request cancelled by the caller', { cause: e }));
  if (e instanceof APIConnectionTimeoutError) {
    return plain(new ParleyError('unavailable', `request timed out after ${timeoutMs} ms`, { cause: e, retryable: true }));
  }
  if (e instanceof APIConnectionError) return plain(new ParleyError('unavailable', `cannot reach the endpoint: ${e.message}`, { cause: e }));
  if (e instanceof APIError && typeof e.status === 'number') {
    const s = e.status;
    const what = `HTTP ${s}: ${e.message}`;
    const retryAfter = retryAfterMs(e.headers);
    if (s === 429) return { err: new ParleyError('resource_exhausted', `rate limited (${what})`, { cause: e, retryable: true }), retryAfter };
    if (s === 408 || s === 409 || s >= 500) return { err: new ParleyError('unavailable', what, { cause: e, retryable: true }), retryAfter };
    if (s === 401) return plain(new ParleyError('unauthenticated', `the endpoint rejected the API key (${what})`, { cause: e }));
    if (s === 403) return plain(new ParleyError('permission_denied', what, { cause: e }));
    return plain(new ParleyError('failed_precondition', `the endpoint rejected the request; check model and options (${what})`, { cause: e, retryable: false }));
  }
  if (e instanceof GarbageCompletion || e instanceof SyntaxError) {
    return plain(new ParleyError('unavailable', `unusable response: ${e.message}`, { cause: e, retryable: true }));
  }
  return plain(new ParleyError('internal', `unexpected failure: ${(e as Error)?.message ?? String(e)}`, { cause: e, retryable: false }));
}

/** Chat completions with retries, a per-attempt timeout, token and cost accounting, and the turn cache. */
export class LlmUserBackend {
  private readonly client: OpenAI;

  constructor(readonly opts: LlmBackendOptions) {
    this.client = new OpenAI({ baseURL: opts.baseUrl, apiKey: opts.apiKey, maxRetries: 0, timeout: opts.timeoutMs });
  }

  /**
   * One completion for `messages`. A cache hit returns at once with cost 0 and `usage.cached`. Retries
   * 429, 408, 409, 5xx, connection errors, timeouts and unusable 200s with exponential backoff and jitter.
   * Rejects with ParleyError: `unavailable` (or `resource_exhausted` for 429) once retries are spent,
   * `unauthenticated`/`permission_denied`/`failed_precondition` at once for other 4xx, `cancelled` when
   * `signal` aborts. Never resolves with empty text.
   */
  async complete(messages: SimMessage[], opts: { seed?: number; signal?: AbortSignal } = {}): Promise<Completion> {
    const o = this.opts;
    const key = cacheKey({ model: o.model, messages, temperature: o.temperature, maxTokens: o.maxTokens, seed: opts.seed });
    const hit = o.cache?.get(key);
    if (hit) {
      return { text: hit.text, usage: { promptTokens: hit.promptTokens, completionTokens: hit.completionTokens, costUsd: 0, cached: true }, source: 'cache', retries: 0 };
    }
    const body: OpenAI.Chat.ChatCompletionCreateParamsNonStreaming = { model: o.model, messages, temperature: o.temperature };
    if (o.maxTokens !== undefined) body.max_tokens = o.maxTokens;
    if (opts.seed !== undefined) body.seed = opts.seed;
    for (let attempt = 0; ; attempt++) {
      try {
        const res = await this.client.chat.completions.create(body, { signal: opts.signal, timeout: o.timeoutMs, maxRetries: 0 });
        const { text, promptTokens, completionTokens } = extractText(res);
        o.cache?.set(key, { text, promptTokens, completionTokens });
        const costUsd = (promptTokens * o.promptUsdPerMTok + completionTokens * o.completionUsdPerMTok) / 1e6;
        return { text, usage: { promptTokens, completionTokens, costUsd, cached: false }, source: 'llm', retries: attempt };
      } catch (e) {
        const { err, retryAfter } = opts.signal?.aborted
          ? { err: new ParleyError('cancelled', 'request cancelled by the caller', { cause: e }), retryAfter: 0 }
          : classify(e, o.timeoutMs);
        if (!err.retryable || attempt >= o.maxRetries) {
          if (!err.retryable) throw err;
          throw new ParleyError(err.code, `user simulator LLM at ${o.baseUrl} (model ${o.model}) failed ${attempt + 1} time(s); last error: ${err.message}`, {
            cause: err,
          });
        }
        const delayMs = backoffDelay(attempt, { baseMs: o.backoffBaseMs, maxMs: o.backoffMaxMs }, retryAfter, o.random);
        o.onRetry?.({ attempt: attempt + 1, error: err, delayMs });
        await sleep(delayMs, opts.signal);
      }
    }
  }
}

/** One LLM user in one conversation: keeps the flipped history and commits a turn only when it succeeds. */
export class LlmConversation implements UserConversation {
  private history: SimMessage[] = [];

  constructor(
    private readonly backend: LlmUserBackend,
    private readonly systemPrompt: string,
    private readonly seed?: number,
  ) {}

  /** The messages the model would see next (system prompt first); for tests and debugging. */
  get messages(): readonly SimMessage[] {
    return [{ role: 'system', content: this.systemPrompt }, ...this.history];
  }

  /**
   * The first user message after the agent's greeting (τ²'s default greeting when empty). A non-empty
   * `firstUtterance` is used verbatim and costs nothing. Rejects like LlmUserBackend.complete.
   */
  async start(input: StartInput, signal?: AbortSignal): Promise<UserTurn> {
    const next: SimMessage[] = [{ role: 'user', content: input.greeting || DEFAULT_GREETING }];
    if (input.firstUtterance) {
      this.history = [...next, { role: 'assistant', content: input.firstUtterance }];
      return { text: input.firstUtterance, stop: detectStop(input.firstUtterance), usage: freeUsage(), source: 'pregenerated', retries: 0 };
    }
    return this.generate(next, signal);
  }

  /** The user's answer to the agent's text. Rejects like LlmUserBackend.complete; history is unchanged on failure. */
  async reply(agentText: string, signal?: AbortSignal): Promise<UserTurn> {
    if (!agentText.trim()) {
      throw new ParleyError('invalid_argument', 'agent_message.content: empty; the user simulator sees only the agent\'s text', { field: 'agent_message.content' });
    }
    return this.generate([...this.history, { role: 'user', content: agentText }], signal);
  }

  private async generate(next: SimMessage[], signal?: AbortSignal): Promise<UserTurn> {
    const c = await this.backend.complete([{ role: 'system', content: this.systemPrompt }, ...next], { seed: this.seed, signal });
    this.history = [...next, { role: 'assistant', content: c.text }];
    return { text: c.text, stop: detectStop(c.text), usage: c.usage, source: c.source, retries: c.retries };
  }
}
