// The UserSimulator gRPC implementation: per-conversation users keyed by conversation_id, with limits
// (count, idle TTL, turns), idempotent Start, clear errors, and parley_usersim_* metrics.

import { createHash } from 'node:crypto';
import type { MessageInitShape } from '@bufbuild/protobuf';
import type { GenService } from '@bufbuild/protobuf/codegenv2';
import { ParleyError, invalidArgument, metricsRegistry, type CallContext, type Logger, type Registry, type ServiceImpl } from '../core/index.js';
import { Role } from '../core/gen/parley/v1/chat_pb.js';
import {
  UserSimulator,
  type EndRequest,
  type ReplyRequest,
  type ReplyResponseSchema,
  type StartRequest,
  type StartResponseSchema,
} from '../core/gen/parley/v1/usersim_pb.js';
import { UserTurnCache } from './cache.js';
import { loadGuidelines, resolveApiKey, type UserSimConfig } from './config.js';
import { LlmConversation, LlmUserBackend } from './llm-simulator.js';
import { userSimMetrics, type UserSimMetrics } from './metrics.js';
import { renderSystemPrompt, renderUserScenario } from './scenario.js';
import { ScriptedConversation, scriptedProfile, scriptedProfileFromText, type ScriptedProfile } from './scripted-simulator.js';
import { parseTaskJson, type Task } from './task-schema.js';
import { UserStop, type UserConversation, type UserTurn } from './types.js';

export type UserSimulatorMethods = typeof UserSimulator extends GenService<infer M> ? M : never;
type StartOut = MessageInitShape<typeof StartResponseSchema>;
type ReplyOut = MessageInitShape<typeof ReplyResponseSchema>;

export interface UserSimulatorDeps {
  config: UserSimConfig;
  logger?: Logger;
  /** Metrics registry; default the process registry. */
  registry?: Registry;
  /** LLM backend (llm mode); default one built from the config. */
  backend?: LlmUserBackend;
  /** Guidelines text for the tau2 prompt; default read from config.guidelinesPath. */
  guidelines?: string;
  /** Clock in ms, for TTL tests. */
  now?: () => number;
}

interface Conversation {
  id: string;
  fingerprint: string;
  user: UserConversation;
  started: Promise<StartOut>;
  ready: boolean;
  lastActive: number;
  turns: number;
  stop: UserStop;
  busy: boolean;
}

const STOP_NAMES: Record<UserStop, string> = {
  [UserStop.UNSPECIFIED]: 'none',
  [UserStop.STOP]: '###STOP###',
  [UserStop.TRANSFER]: '###TRANSFER###',
  [UserStop.OUT_OF_SCOPE]: '###OUT-OF-SCOPE###',
};
const MAX_ID_LENGTH = 256;
/** Scripted profiles kept (one per distinct task); the oldest goes first. */
const PROFILE_CACHE_SIZE = 1024;
const REMEMBERED_EVICTIONS = 10_000;

/** The UserSimulator service object (Start, Reply); pass it to startGrpcServer. Call close() when done. */
export class UserSimulatorService implements ServiceImpl<UserSimulatorMethods> {
  private readonly conversations = new Map<string, Conversation>();
  private readonly evicted = new Map<string, string>();
  private readonly profiles = new Map<string, ScriptedProfile>();
  private readonly metrics: UserSimMetrics;
  private readonly backend?: LlmUserBackend;
  private readonly guidelines?: string;
  private readonly now: () => number;
  private readonly sweeper: NodeJS.Timeout;
  private lastSweep = -Infinity;

  /**
   * Builds the service. Throws ParleyError(invalid_argument) when llm mode lacks what it needs
   * (guidelines file unreadable, API key file unreadable) and failed_precondition for an unreadable cache file.
   */
  constructor(private readonly deps: UserSimulatorDeps) {
    const cfg = deps.config;
    this.now = deps.now ?? Date.now;
    this.metrics = userSimMetrics(deps.registry ?? metricsRegistry());
    if (cfg.mode === 'llm') {
      this.backend = deps.backend ?? this.buildBackend(cfg);
      if (cfg.promptStyle === 'tau2') this.guidelines = deps.guidelines ?? loadGuidelines(cfg.guidelinesPath ?? '');
    }
    this.sweeper = setInterval(() => this.sweep(true), Math.min(cfg.idleTtlMs, 60_000));
    this.sweeper.unref();
  }

  /** Live conversations (ended ones included until they idle out). */
  get size(): number {
    return this.conversations.size;
  }

  /**
   * Starts a conversation and returns the user's first message. Fails with invalid_argument (empty or
   * too long conversation_id, no scenario and no task_json, bad task_json), already_exists (same id,
   * different request; an identical request returns the first answer again), resource_exhausted (too
   * many conversations), or the backend's error (the conversation is then forgotten and may be retried).
   */
  async start(req: StartRequest, ctx?: CallContext): Promise<StartOut> {
    return this.counted('start', async () => {
      checkId(req.conversationId);
      this.sweep();
      const fingerprint = startFingerprint(req);
      const existing = this.conversations.get(req.conversationId);
      if (existing) {
        if (existing.fingerprint !== fingerprint) {
          throw new ParleyError(
            'already_exists',
            `conversation_id ${req.conversationId}: already started with a different request; an identical Start is answered again, anything else needs a new id`,
          );
        }
        existing.lastActive = this.now();
        return existing.started;
      }
      const user = this.buildUser(req);
      this.makeRoom();
      const conv: Conversation = {
        id: req.conversationId,
        fingerprint,
        user,
        started: Promise.resolve({}),
        ready: false,
        lastActive: this.now(),
        turns: 0,
        stop: UserStop.UNSPECIFIED,
        busy: true,
      };
      conv.started = this.firstTurn(conv, req, ctx?.signal);
      this.conversations.set(conv.id, conv);
      this.evicted.delete(conv.id);
      this.metrics.conversations.set(this.conversations.size);
      return conv.started;
    });
  }

  /**
   * The user's answer to the agent's text. Fails with invalid_argument (missing conversation_id or
   * agent_message, no text, wrong role), not_found (unknown or idled-out conversation),
   * failed_precondition (Start still running, a Reply already running, or the user already stopped),
   * resource_exhausted (maxTurns reached), or the backend's error (the turn is not recorded; retry it).
   */
  async reply(req: ReplyRequest, ctx?: CallContext): Promise<ReplyOut> {
    return this.counted('reply', async () => {
      checkId(req.conversationId);
      const msg = req.agentMessage;
      if (!msg) throw invalidArgument('agent_message', 'required: the agent\'s latest text message');
      if (msg.role !== Role.ASSISTANT && msg.role !== Role.UNSPECIFIED) {
        throw invalidArgument('agent_message.role', `${Role[msg.role] ?? msg.role} not accepted; the user simulator answers ROLE_ASSISTANT messages`);
      }
      if (!msg.content.trim()) {
        const why = msg.toolCalls.length ? 'it holds only tool calls, which go to the sandbox' : 'empty';
        throw invalidArgument('agent_message.content', `${why}; the user simulator answers the agent's text only`);
      }
      this.sweep();
      let conv = this.conversations.get(req.conversationId);
      if (conv && !conv.busy && conv.lastActive < this.now() - this.deps.config.idleTtlMs) {
        this.forget(conv.id, `dropped after ${this.deps.config.idleTtlMs} ms idle`);
        conv = undefined;
      }
      if (!conv) {
        const why = this.evicted.get(req.conversationId) ?? 'never started';
        throw new ParleyError('not_found', `conversation_id ${req.conversationId}: unknown conversation (${why}); call Start first`);
      }
      if (!conv.ready) throw new ParleyError('failed_precondition', `conversation_id ${conv.id}: Start has not finished`);
      if (conv.busy) throw new ParleyError('failed_precondition', `conversation_id ${conv.id}: a Reply is already running; send turns one at a time`);
      if (conv.stop !== UserStop.UNSPECIFIED) {
        throw new ParleyError('failed_precondition', `conversation_id ${conv.id}: the user already ended it with ${STOP_NAMES[conv.stop]}`);
      }
      if (conv.turns >= this.deps.config.maxTurns) {
        throw new ParleyError('resource_exhausted', `conversation_id ${conv.id}: reached maxTurns=${this.deps.config.maxTurns} user turns`, {
          retryable: false,
        });
      }
      conv.busy = true;
      const started = performance.now();
      try {
        const turn = await conv.user.reply(msg.content, ctx?.signal);
        this.record(conv, 'reply', turn, started);
        return { message: { role: Role.USER, content: turn.text }, stop: turn.stop, usage: usageOf(turn) };
      } finally {
        conv.busy = false;
        conv.lastActive = this.now();
      }
    });
  }

  /**
   * Forgets a conversation whose episode is over, so a full service need not wait for its idle TTL (a
   * conversation the agent ended is never ended by the user). Idempotent: unknown ids answer found = false.
   * A running turn finishes, but the conversation is gone for the next Reply.
   */
  async end(req: EndRequest): Promise<{ found: boolean; turns: number }> {
    return this.counted('end', async () => {
      checkId(req.conversationId);
      const conv = this.conversations.get(req.conversationId);
      if (!conv) return { found: false, turns: 0 };
      this.forget(conv.id, 'ended by the caller');
      this.metrics.conversations.set(this.conversations.size);
      return { found: true, turns: conv.turns };
    });
  }

  /** Stops the idle sweeper and forgets every conversation. Safe to call twice. */
  close(): void {
    clearInterval(this.sweeper);
    this.conversations.clear();
    this.metrics.conversations.set(0);
  }

  private async firstTurn(conv: Conversation, req: StartRequest, signal?: AbortSignal): Promise<StartOut> {
    const started = performance.now();
    try {
      const turn = await conv.user.start({ greeting: req.greeting, firstUtterance: req.firstUtterance }, signal);
      this.record(conv, 'start', turn, started);
      conv.ready = true;
      return { conversationId: conv.id, message: { role: Role.USER, content: turn.text }, stop: turn.stop, usage: usageOf(turn) };
    } catch (e) {
      if (this.conversations.get(conv.id) === conv) this.conversations.delete(conv.id);
      this.metrics.conversations.set(this.conversations.size);
      throw e;
    } finally {
      conv.busy = false;
      conv.lastActive = this.now();
    }
  }

  private record(conv: Conversation, method: string, turn: UserTurn, startedMs: number): void {
    const mode = this.deps.config.mode;
    conv.turns += 1;
    conv.stop = turn.stop;
    this.metrics.turnLatency.observe({ method, mode, source: turn.source }, (performance.now() - startedMs) / 1000);
    if (turn.source === 'llm') {
      this.metrics.promptTokens.inc({ mode }, turn.usage.promptTokens);
      this.metrics.completionTokens.inc({ mode }, turn.usage.completionTokens);
      this.metrics.cost.inc({ mode }, turn.usage.costUsd);
      if (this.deps.config.cache) this.metrics.cacheMisses.inc();
    } else if (turn.source === 'cache') this.metrics.cacheHits.inc();
    if (turn.stop !== UserStop.UNSPECIFIED) this.metrics.stops.inc({ reason: STOP_NAMES[turn.stop] });
    this.deps.logger?.debug({ conversation: conv.id, method, stop: turn.stop, source: turn.source, retries: turn.retries }, 'user turn');
  }

  private async counted<T>(method: string, fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (e) {
      const err = ParleyError.from(e);
      this.metrics.errors.inc({ method, code: err.code });
      if (!['invalid_argument', 'not_found', 'already_exists', 'failed_precondition'].includes(err.code)) {
        this.deps.logger?.warn({ method, code: err.code, msg: err.message }, 'user simulator call failed');
      }
      throw err;
    }
  }

  private buildUser(req: StartRequest): UserConversation {
    const cfg = this.deps.config;
    if (cfg.mode === 'scripted') {
      return new ScriptedConversation(this.scriptedProfileFor(req), { maxIdleTurns: cfg.scriptedMaxIdleTurns });
    }
    const task = parseStartTask(req);
    const scenarioText = req.scenario.trim() ? req.scenario : renderUserScenario(task!.user_scenario);
    const prompt = renderSystemPrompt(cfg.promptStyle, scenarioText, { guidelines: this.guidelines, personaGuidelines: cfg.personaGuidelines });
    return new LlmConversation(this.backend!, prompt, req.seed !== 0n ? Number(req.seed) : undefined);
  }

  /**
   * The scripted user's profile for a Start, kept per task JSON (or scenario text): every sample of a group,
   * and every later step, starts from the same task, and building a profile parses the task and runs the
   * extraction rules (about half a millisecond). Profiles are read-only, so conversations share them.
   */
  private scriptedProfileFor(req: StartRequest): ScriptedProfile {
    const key = req.taskJson.trim() ? `task\u0000${req.taskJson}` : `scenario\u0000${req.scenario}`;
    let profile = this.profiles.get(key);
    if (!profile) {
      const task = parseStartTask(req);
      profile = task ? scriptedProfile(task) : scriptedProfileFromText(req.scenario);
      if (this.profiles.size >= PROFILE_CACHE_SIZE) this.profiles.delete(this.profiles.keys().next().value as string);
      this.profiles.set(key, profile);
    }
    return profile;
  }

  private buildBackend(cfg: UserSimConfig): LlmUserBackend {
    const cache = cfg.cache ? UserTurnCache.open({ path: cfg.cachePath, maxEntries: cfg.cacheMaxEntries, logger: this.deps.logger }) : undefined;
    return new LlmUserBackend({
      baseUrl: cfg.baseUrl!,
      apiKey: resolveApiKey(cfg),
      model: cfg.model!,
      temperature: cfg.temperature,
      maxTokens: cfg.maxTokens,
      timeoutMs: cfg.timeoutMs,
      maxRetries: cfg.maxRetries,
      backoffBaseMs: cfg.backoffBaseMs,
      backoffMaxMs: cfg.backoffMaxMs,
      promptUsdPerMTok: cfg.promptUsdPerMTok,
      completionUsdPerMTok: cfg.completionUsdPerMTok,
      cache,
      onRetry: ({ error }) => this.metrics.retries.inc({ code: error.code }),
    });
  }

  /**
   * Drops conversations idle longer than idleTtlMs (never one with a call in flight). Calls run it at
   * most every 500 ms so a large table is not scanned per request; the timer covers quiet periods.
   */
  private sweep(force = false): void {
    const now = this.now();
    if (!force && now - this.lastSweep < 500) return;
    this.lastSweep = now;
    const cutoff = now - this.deps.config.idleTtlMs;
    for (const [id, conv] of this.conversations) {
      if (!conv.busy && conv.lastActive < cutoff) this.forget(id, `dropped after ${this.deps.config.idleTtlMs} ms idle`);
    }
    this.metrics.conversations.set(this.conversations.size);
  }

  /** At the limit, drops the oldest ended conversation; if none has ended, refuses. */
  private makeRoom(): void {
    if (this.conversations.size < this.deps.config.maxConversations) return;
    this.sweep(true);
    if (this.conversations.size < this.deps.config.maxConversations) return;
    const ended = [...this.conversations.values()].filter((c) => !c.busy && c.stop !== UserStop.UNSPECIFIED).sort((a, b) => a.lastActive - b.lastActive)[0];
    if (ended) return this.forget(ended.id, 'ended, and dropped to make room for new conversations');
    throw new ParleyError('resource_exhausted', `too many live conversations (maxConversations=${this.deps.config.maxConversations}); retry later or raise the limit`);
  }

  private forget(id: string, why: string): void {
    this.conversations.delete(id);
    this.evicted.set(id, why);
    if (this.evicted.size > REMEMBERED_EVICTIONS) this.evicted.delete(this.evicted.keys().next().value as string);
  }
}

/** The Start's task JSON, parsed; undefined when it sends only scenario text. Throws invalid_argument when it sends neither, or bad JSON. */
function parseStartTask(req: StartRequest): Task | undefined {
  const task = req.taskJson.trim() ? parseTaskJson(req.taskJson) : undefined;
  if (!task && !req.scenario.trim()) {
    throw invalidArgument('scenario', 'empty, and task_json is empty too; send the rendered user scenario or the τ² task JSON');
  }
  return task;
}

function checkId(id: string): void {
  if (!id) throw invalidArgument('conversation_id', 'required: a caller-chosen id, unique per conversation');
  if (id.length > MAX_ID_LENGTH) throw invalidArgument('conversation_id', `${id.length} characters; at most ${MAX_ID_LENGTH} accepted`);
}

function startFingerprint(req: StartRequest): string {
  const parts = [req.domain, req.taskId, req.scenario, req.taskJson, req.greeting, req.firstUtterance, req.seed.toString()];
  return createHash('sha256').update(JSON.stringify(parts)).digest('hex');
}

function usageOf(turn: UserTurn) {
  const u = turn.usage;
  return { promptTokens: BigInt(u.promptTokens), completionTokens: BigInt(u.completionTokens), costUsd: u.costUsd, cached: u.cached };
}
