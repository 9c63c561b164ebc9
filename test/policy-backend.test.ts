// The openai-compatible backend against the vLLM test double: token ids and log-probs, retries,
// timeouts, garbage and truncated answers, LoRA load/unload and the concurrency limit.

import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import OpenAI from 'openai';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { ParleyError } from '../services/core/index.js';
import { OpenAICompatibleBackend, parseCompletionResponse, type OpenAICompatibleOptions } from '../services/policy/index.js';
import { checkVllmContract } from './fixtures/vllm-contract.js';
import { fakeLogprob, makeAdapterDir, startVllmDouble, type VllmDouble } from './fixtures/vllm-double.js';

describe('openai-compatible backend against the vLLM test double', () => {
  let vllm: VllmDouble;
  const retries: string[] = [];
  const backend = (over: Partial<OpenAICompatibleOptions> = {}) =>
    new OpenAICompatibleBackend({
      baseUrl: vllm.url,
      model: vllm.modelName,
      timeoutMs: 2000,
      retry: { maxRetries: 3, baseDelayMs: 1, maxDelayMs: 5 },
      maxConcurrency: 8,
      onRetry: (code) => retries.push(code),
      ...over,
    });
  const sampling = { temperature: 1, topP: 1, maxTokens: 64 };
  let prompt: number[];

  beforeAll(async () => {
    vllm = await startVllmDouble();
    prompt = vllm.model.encode('<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n');
  });
  afterAll(() => vllm.close());
  beforeEach(() => {
    vllm.reset();
    vllm.latencyMs = 0;
    vllm.complete = () => 'Hello from the vLLM test double.';
    retries.length = 0;
  });

  const failure = (p: Promise<unknown>) => p.then(() => undefined, (e: unknown) => e as ParleyError);

  it('sends the prompt as token ids and reads ids, log-probs and finish reason', async () => {
    const out = await backend().generate({ promptTokenIds: prompt, sampling: { ...sampling, seed: 7 } });
    const expected = [...vllm.model.encode('Hello from the vLLM test double.'), vllm.model.tokenizer.token_to_id('<|im_end|>')!];
    expect(out.tokenIds).toEqual(expected);
    expect(out.logprobs).toEqual(expected.map((id, i) => fakeLogprob(id, i)));
    expect(out.finishReason).toBe('stop');
    const body = vllm.requests[0]!.body;
    expect(body).toMatchObject({ model: vllm.modelName, prompt, max_tokens: 64, logprobs: 0, return_token_ids: true, return_tokens_as_token_ids: true, seed: 7 });
  });

  it('falls back to logprobs.tokens as token_id:N when token_ids are absent', async () => {
    // Without return_token_ids (older vLLM) the ids come only as logprobs tokens.
    const res = await fetch(`${vllm.url}/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: vllm.modelName, prompt, max_tokens: 8, logprobs: 0, return_tokens_as_token_ids: true }),
    });
    const json = (await res.json()) as { choices: { token_ids?: unknown; logprobs: { tokens: string[] } }[] };
    expect(json.choices[0]!.token_ids).toBeUndefined();
    expect(json.choices[0]!.logprobs.tokens[0]).toMatch(/^token_id:\d+$/);
    expect(parseCompletionResponse(json).tokenIds).toEqual(json.choices[0]!.logprobs.tokens.map((t) => Number(t.slice(9))));
  });

  it('reports length when max_tokens cuts the completion', async () => {
    const out = await backend().generate({ promptTokenIds: prompt, sampling: { ...sampling, maxTokens: 3 } });
    expect(out.tokenIds).toHaveLength(3);
    expect(out.finishReason).toBe('length');
  });

  it('retries 500, 503 and 429, then succeeds', async () => {
    vllm.inject('/v1/completions', 'http500', 'http503', 'http429');
    const out = await backend().generate({ promptTokenIds: prompt, sampling });
    expect(out.finishReason).toBe('stop');
    expect(retries).toEqual(['unavailable', 'unavailable', 'resource_exhausted']);
    expect(vllm.requests.filter((r) => r.path === '/v1/completions')).toHaveLength(4);
  });

  it('gives up when the retries are spent', async () => {
    vllm.inject('/v1/completions', 'http500', 'http500', 'http500');
    const err = await failure(backend({ retry: { maxRetries: 2, baseDelayMs: 1, maxDelayMs: 2 } }).generate({ promptTokenIds: prompt, sampling }));
    expect(err).toBeInstanceOf(ParleyError);
    expect(err!.code).toBe('unavailable');
    expect(err!.message).toMatch(/answered 500.*gave up after 3 attempts/);
    expect(vllm.requests).toHaveLength(3);
  });

  it('times out a hanging request, and retries it', async () => {
    vllm.inject('/v1/completions', 'hang');
    const err = await failure(backend({ timeoutMs: 150, retry: { maxRetries: 0, baseDelayMs: 1, maxDelayMs: 1 } }).generate({ promptTokenIds: prompt, sampling }));
    expect(err!.code).toBe('deadline_exceeded');
    expect(err!.message).toContain('150 ms');

    vllm.inject('/v1/completions', 'hang');
    const out = await backend({ timeoutMs: 150 }).generate({ promptTokenIds: prompt, sampling });
    expect(out.finishReason).toBe('stop');
    expect(retries).toEqual(['deadline_exceeded']);
  });

  it('treats garbage and truncated bodies and dropped connections as retryable', async () => {
    vllm.inject('/v1/completions', 'garbage', 'truncated', 'reset');
    const out = await backend().generate({ promptTokenIds: prompt, sampling });
    expect(out.tokenIds.length).toBeGreaterThan(0);
    expect(retries).toEqual(['unavailable', 'unavailable', 'unavailable']);

    vllm.inject('/v1/completions', 'garbage', 'garbage');
    const err = await failure(backend({ retry: { maxRetries: 1, baseDelayMs: 1, maxDelayMs: 1 } }).generate({ promptTokenIds: prompt, sampling }));
    expect(err!.code).toBe('unavailable');
    expect(err!.message).toContain('not JSON');
  });

  it('does not retry a well-formed answer of the wrong shape', async () => {
    vllm.inject('/v1/completions', 'bad-shape');
    const err = await failure(backend().generate({ promptTokenIds: prompt, sampling }));
    expect(err!.code).toBe('internal');
    expect(err!.message).toContain('no choices[0]');
    expect(vllm.requests).toHaveLength(1);
  });

  it('maps a 400 (e.g. max_tokens above the context) to invalid_argument without retrying', async () => {
    const err = await failure(backend().generate({ promptTokenIds: prompt, sampling: { ...sampling, maxTokens: 50_000 } }));
    expect(err!.code).toBe('invalid_argument');
    expect(err!.message).toContain('cannot be greater than max_model_len=40960');
    expect(vllm.requests).toHaveLength(1);
  });

  it('reports an unreachable server as unavailable', async () => {
    const closed = createServer();
    await new Promise<void>((r) => closed.listen(0, '127.0.0.1', () => r()));
    const port = (closed.address() as AddressInfo).port;
    await new Promise<void>((r) => closed.close(() => r()));
    const err = await failure(
      new OpenAICompatibleBackend({ baseUrl: `http://127.0.0.1:${port}`, model: 'm', timeoutMs: 500, retry: { maxRetries: 1, baseDelayMs: 1, maxDelayMs: 1 }, maxConcurrency: 1 }).generate({
        promptTokenIds: prompt,
        sampling,
      }),
    );
    expect(err!.code).toBe('unavailable');
    expect(err!.message).toMatch(/ECONNREFUSED/);
  });

  it('stops at once when the caller cancels', async () => {
    vllm.latencyMs = 500;
    const ac = new AbortController();
    const p = backend().generate({ promptTokenIds: prompt, sampling, signal: ac.signal });
    setTimeout(() => ac.abort(), 30);
    const err = await failure(p);
    expect(err!.code).toBe('cancelled');
    while (vllm.inFlight > 0) await new Promise((r) => setTimeout(r, 20)); // let the double finish it
  });

  it('loads and unloads versioned LoRA adapters and samples with them', async () => {
    const b = backend();
    const dir = makeAdapterDir();
    await b.loadAdapter('policy-v1', dir);
    await b.loadAdapter('policy-v1', dir); // a retried load is idempotent
    expect(await b.listModels()).toEqual([vllm.modelName, 'policy-v1']);
    await b.generate({ promptTokenIds: prompt, sampling, adapter: 'policy-v1' });
    expect(vllm.requests.at(-1)!.body.model).toBe('policy-v1');
    expect(vllm.requests.find((r) => r.path === '/v1/load_lora_adapter')!.body).toEqual({ lora_name: 'policy-v1', lora_path: dir });

    await b.unloadAdapter('policy-v1');
    expect(vllm.adapters.has('policy-v1')).toBe(false);
    expect((await failure(b.unloadAdapter('policy-v1')))!.code).toBe('not_found');
    expect((await failure(b.generate({ promptTokenIds: prompt, sampling, adapter: 'policy-v1' })))!.code).toBe('not_found');
    const missing = await failure(b.loadAdapter('policy-v2', '/nonexistent/v2'));
    expect(missing!.code).toBe('not_found');
    expect(missing!.message).toContain('No adapter found for /nonexistent/v2');
  });

  it('takes a 500 on an adapter load from an otherwise healthy server as a refused adapter, and retries it when unhealthy', async () => {
    // Real vLLM 0.32 answers 500 "Call to add_lora method failed" for a rank above --max-lora-rank and stays up.
    const dir = makeAdapterDir();
    vllm.inject('/v1/load_lora_adapter', 'http500');
    const refused = await failure(backend().loadAdapter('policy-v7', dir));
    expect(refused!.code).toBe('invalid_argument');
    expect(refused!.retryable).toBe(false);
    expect(retries).toEqual([]);
    expect(vllm.requests.filter((r) => r.path === '/v1/load_lora_adapter')).toHaveLength(1);

    vllm.inject('/v1/load_lora_adapter', 'http500');
    vllm.inject('/health', 'http503');
    await backend().loadAdapter('policy-v7', dir);
    expect(retries).toEqual(['unavailable']);
    expect(vllm.adapters.get('policy-v7')).toBe(dir);
    await backend().unloadAdapter('policy-v7');
  });

  it('keeps at most maxConcurrency requests in flight', async () => {
    vllm.latencyMs = 20;
    const b = backend({ maxConcurrency: 4 });
    const outs = await Promise.all(Array.from({ length: 20 }, () => b.generate({ promptTokenIds: prompt, sampling })));
    expect(outs).toHaveLength(20);
    expect(vllm.maxInFlight).toBe(4);
    expect(b.inFlight).toBe(0);
  });

  it('serves chat completions and the model list in shapes the openai SDK accepts', async () => {
    vllm.chat = ({ messages }) => `You said: ${messages.at(-1)!.content}`;
    const client = new OpenAI({ baseURL: vllm.url, apiKey: 'unused', maxRetries: 0 });
    const r = await client.chat.completions.create({ model: vllm.modelName, messages: [{ role: 'user', content: 'hello' }], temperature: 0 });
    expect(r.choices[0]!.message.content).toBe('You said: hello');
    expect(r.choices[0]!.finish_reason).toBe('stop');
    expect(r.usage!.completion_tokens).toBeGreaterThan(0);
    const models = await client.models.list();
    expect(models.data.map((m) => m.id)).toContain(vllm.modelName);
    vllm.inject('/v1/chat/completions', 'http429');
    await expect(client.chat.completions.create({ model: vllm.modelName, messages: [{ role: 'user', content: 'x' }] })).rejects.toMatchObject({ status: 429 });
  });
});

describe('the vLLM test double', () => {
  it('answers as the contract pinned against real vLLM says', async () => {
    const small = await startVllmDouble({ maxModelLen: 512 });
    try {
      await checkVllmContract({ url: small.url, model: small.modelName, maxModelLen: 512, adapterDir: makeAdapterDir(), prompt: small.model.encode('<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n') });
    } finally {
      await small.close();
    }
  });
});
