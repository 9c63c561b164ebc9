// The Policy gRPC service as a plain typed object: validates requests, builds the prompt token-in-
// token-out, samples through a backend, parses the reply, and reports drift, versions and metrics.

import { randomBytes } from 'node:crypto';
import type { GenService } from '@bufbuild/protobuf/codegenv2';
import { Role } from '../core/gen/parley/v1/chat_pb.js';
import { Policy, type GenerateRequest, type SamplingParams } from '../core/gen/parley/v1/policy_pb.js';
import { ParleyError, invalidArgument, type CallContext, type Logger, type ServiceImpl } from '../core/index.js';
import type { MessageInitShape } from '@bufbuild/protobuf';
import type { PolicyBackend, Sampling } from './backend.js';
import type { ChatModel } from './chat-model.js';
import type { PolicyConfig } from './config.js';
import { fromProtoMessages, fromProtoTools, toTemplateTools, validateConversation } from './conversation.js';
import { policyMetrics, type PolicyMetrics } from './metrics.js';
import { PrefixCache } from './prefix-cache.js';
import { buildTito, driftReport, type TitoOptions } from './tito.js';
import { parseAssistantText } from './tool-call-parser.js';
import { WeightsManager } from './weights.js';

export type PolicyMethods = typeof Policy extends GenService<infer M> ? M : never;
export type PolicyServiceImpl = ServiceImpl<PolicyMethods>;

/** The config fields the service reads (servePolicy passes the whole PolicyConfig). */
export type PolicyServiceConfig = Pick<
  PolicyConfig,
  | 'modelName'
  | 'maxContextTokens'
  | 'defaultMaxTokens'
  | 'enableThinking'
  | 'adapterPrefix'
  | 'keepAdapters'
  | 'initialPolicyVersion'
  | 'prefixCacheConversations'
  | 'prefixCacheTokens'
  | 'driftCheckRate'
>;

export interface PolicyServiceDeps {
  config: PolicyServiceConfig;
  model: ChatModel;
  backend: PolicyBackend;
  metrics?: PolicyMetrics;
  logger?: Logger;
  /** Uniform [0, 1) source for drift sampling; Math.random by default. */
  random?: () => number;
}

const MAX_CONVERSATION_ID = 256;

/**
 * Sampling parameters from the request. Without a `sampling` message the temperature is 1; inside one,
 * proto3 defaults apply (temperature 0 = greedy) except top_p 0 and max_tokens 0, which mean "unset"
 * (1 and the configured default). Throws ParleyError(invalid_argument) naming the field.
 */
function samplingFrom(p: SamplingParams | undefined, config: PolicyServiceConfig): Sampling {
  const temperature = p?.temperature ?? 1;
  if (!Number.isFinite(temperature) || temperature < 0) throw invalidArgument('sampling.temperature', `must be a finite number >= 0, got ${temperature}`);
  const topP = p?.topP || 1;
  if (!Number.isFinite(topP) || topP < 0 || topP > 1) throw invalidArgument('sampling.top_p', `must be in (0, 1], got ${topP}`);
  const asked = p?.maxTokens ?? 0;
  if (asked < 0) throw invalidArgument('sampling.max_tokens', `must be >= 0 (0 = the default ${config.defaultMaxTokens}), got ${asked}`);
  const seed = p?.seed ?? 0n;
  if (seed < 0n || seed > BigInt(Number.MAX_SAFE_INTEGER)) throw invalidArgument('sampling.seed', `must be in [0, 2^53), got ${seed}`);
  return { temperature, topP, maxTokens: asked || config.defaultMaxTokens, ...(seed !== 0n ? { seed: Number(seed) } : {}) };
}

/** Clamps max_tokens to what the context leaves. Throws ParleyError(out_of_range) when the prompt fills it. */
function fitContext(sampling: Sampling, promptTokens: number, maxContextTokens: number): Sampling {
  const room = maxContextTokens - promptTokens;
  if (room <= 0) {
    throw new ParleyError('out_of_range', `messages: the prompt has ${promptTokens} tokens and fills the ${maxContextTokens}-token context`, { field: 'messages' });
  }
  return { ...sampling, maxTokens: Math.min(sampling.maxTokens, room) };
}

/**
 * Creates the Policy service implementation. Its methods reject with ParleyError: invalid_argument
 * naming the bad field, out_of_range when the prompt fills the context, failed_precondition when
 * the request needs a newer policy version, or the backend's error (unavailable, deadline_exceeded,
 * resource_exhausted, internal). A failed request changes no state.
 */
export function createPolicyService(deps: PolicyServiceDeps): PolicyServiceImpl {
  const { config, model, backend, logger } = deps;
  const metrics = deps.metrics ?? policyMetrics();
  const random = deps.random ?? Math.random;
  const cache = new PrefixCache({ maxConversations: config.prefixCacheConversations, maxTokens: config.prefixCacheTokens });
  const weights = new WeightsManager(backend, { adapterPrefix: config.adapterPrefix, keepAdapters: config.keepAdapters, initialVersion: config.initialPolicyVersion }, logger);
  metrics.policyVersion.set(config.initialPolicyVersion);

  async function observed<T>(method: string, fn: () => Promise<T>): Promise<T> {
    const started = performance.now();
    let code = 'ok';
    try {
      return await fn();
    } catch (e) {
      const err = ParleyError.from(e);
      code = err.code;
      metrics.errors.inc({ method, code });
      if (err.code === 'internal' || err.code === 'unknown') logger?.error({ err, method }, 'policy request failed');
      throw err;
    } finally {
      metrics.requestSeconds.observe({ method, code }, (performance.now() - started) / 1000);
    }
  }

  async function generate(req: GenerateRequest, ctx: CallContext): Promise<MessageInitShape<typeof Policy.method.generate.output>> {
    const conversationId = req.conversationId;
    if (conversationId === '') throw invalidArgument('conversation_id', 'required: the key under which the token prefix is kept');
    if (conversationId.length > MAX_CONVERSATION_ID) throw invalidArgument('conversation_id', `longer than ${MAX_CONVERSATION_ID} characters`);
    const messages = fromProtoMessages(req.messages);
    validateConversation(messages, model.vocabSize, { forGeneration: true });
    const tools = toTemplateTools(fromProtoTools(req.tools));
    const requested = samplingFrom(req.sampling, config);
    const served = weights.loaded;
    if (req.minPolicyVersion > BigInt(served.version)) {
      throw new ParleyError('failed_precondition', `min_policy_version: the policy serves version ${served.version}, the request needs ${req.minPolicyVersion}`, {
        field: 'min_policy_version',
        retryable: true,
      });
    }

    const opts: TitoOptions = { tools, enableThinking: config.enableThinking, addGenerationPrompt: true };
    const cached = cache.get(conversationId);
    const tito = buildTito(model, messages, opts, cached);
    metrics.prefixCache.inc({ result: tito.reusedMessages > 0 ? 'hit' : cached ? 'reset' : 'miss' });
    const prompt = tito.tokenIds;
    const sampling = fitContext(requested, prompt.length, config.maxContextTokens);

    const backendStarted = performance.now();
    let out;
    try {
      out = await backend.generate({ promptTokenIds: prompt, sampling, adapter: served.adapter, signal: ctx.signal });
      metrics.backendSeconds.observe({ code: 'ok' }, (performance.now() - backendStarted) / 1000);
    } catch (e) {
      metrics.backendSeconds.observe({ code: ParleyError.from(e).code }, (performance.now() - backendStarted) / 1000);
      throw e;
    }
    const outside = out.tokenIds.find((id) => id >= model.vocabSize);
    if (outside !== undefined) {
      throw new ParleyError('internal', `backend sampled token id ${outside}, outside the tokenizer's ${model.vocabSize} ids: do the model folder and the served model match?`);
    }
    if (tito.state) cache.set(conversationId, tito.state);
    metrics.promptTokens.inc(prompt.length);
    metrics.completionTokens.inc(out.tokenIds.length);

    const parsed = parseAssistantText(model.decode(out.tokenIds, true), { firstToolCallOnly: req.firstToolCallOnly });
    const finishReason = out.finishReason === 'length' ? 'length' : parsed.parseError ? 'malformed_tool_call' : parsed.toolCalls.length > 0 ? 'tool_calls' : 'stop';
    metrics.toolCalls.inc({ result: parsed.parseError ? 'malformed' : parsed.toolCalls.length > 0 ? 'ok' : 'none' });

    let drift = -1;
    if (config.driftCheckRate > 0 && random() < config.driftCheckRate) {
      const report = driftReport(model, messages, opts, prompt);
      drift = report.tokens;
      metrics.driftTokens.observe(drift);
      metrics.driftTokensTotal.inc(drift);
      // Think blocks a re-render strips by design: counted apart, so the drift above stays a bug signal.
      metrics.driftExpectedTokensTotal.inc(report.expected);
    }
    const response: MessageInitShape<typeof Policy.method.generate.output> = {
      promptTokenIds: prompt,
      completionTokenIds: out.tokenIds,
      completionLogprobs: out.logprobs,
      message: {
        role: Role.ASSISTANT,
        content: parsed.content,
        reasoningContent: parsed.reasoningContent,
        toolCalls: parsed.toolCalls.map((c) => ({ id: `call_${randomBytes(6).toString('hex')}`, name: c.name, argumentsJson: c.argumentsJson })),
        tokenIds: out.tokenIds,
      },
      finishReason,
      policyVersion: BigInt(served.version),
      parseError: parsed.parseError ?? '',
      driftTokens: drift,
    };
    return response;
  }

  return {
    generate: (req, ctx) => {
      metrics.inFlight.inc();
      return observed('Generate', () => generate(req, ctx)).finally(() => metrics.inFlight.dec());
    },
    loadWeights: (req, ctx) =>
      observed('LoadWeights', async () => {
        if (req.version > BigInt(Number.MAX_SAFE_INTEGER)) throw invalidArgument('version', 'larger than 2^53');
        const loaded = await weights.load(Number(req.version), req.uri, req.kind, ctx.signal);
        metrics.policyVersion.set(loaded.version);
        return { version: BigInt(loaded.version), adapterName: loaded.adapter ?? '' };
      }),
    info: () =>
      observed('Info', async () => ({
        model: config.modelName,
        policyVersion: BigInt(weights.loaded.version),
        backend: backend.kind,
        maxContextTokens: config.maxContextTokens,
      })),
  };
}
