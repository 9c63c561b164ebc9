// A simulated policy for rollout benchmarks and crash tests (a test double, not a model): a scripted agent
// that asks for the user's identity, performs the task's gold actions one call per turn, summarises and
// stops, with heavy-tailed response lengths decoded on a CapacityServer. It keeps token-in-token-out:
// each prompt extends the previous prompt + completion exactly.

import { create, type MessageInitShape } from '@bufbuild/protobuf';
import { Role, type ChatMessage } from '../../core/gen/parley/v1/chat_pb.js';
import { GenerateResponseSchema, type GenerateRequestSchema, type GenerateResponse } from '../../core/gen/parley/v1/policy_pb.js';
import type { Tau2Task } from '../../sandbox/domain.js';
import type { PolicyPort } from '../ports.js';
import type { CapacityServer } from './capacity-server.js';

export interface SimulatedPolicyOptions {
  server: CapacityServer;
  tasks: Map<string, Tau2Task>;
  /** Median completion length in tokens (log-normal, heavy-tailed). */
  medianCompletionTokens: number;
  /** Log-normal sigma of completion lengths. */
  sigma: number;
  /** Probability of an extra clarification turn, repeated (geometric episode-length tail). */
  extraTurnProbability: number;
  seed: number;
  version?: () => bigint;
}

/** Conversations remembered (a server keeps no state; this double needs each live one's tokens). */
const MAX_CONVERSATIONS = 4096;

interface Conversation {
  tokens: number[];
  seen: number;
  step: number;
  extra: number;
}

/** mulberry32: a small seeded PRNG so runs are repeatable. */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function taskIdOf(conversationId: string): string {
  // <run>/<task_id>/<group_id>/<sample>#<attempt>
  const parts = conversationId.split('#')[0]!.split('/');
  return parts.slice(1, -2).join('/');
}

export class SimulatedPolicy implements PolicyPort {
  private readonly conversations = new Map<string, Conversation>();
  private readonly rand: () => number;
  /**
   * Per conversation (for overhead figures): milliseconds the server spent generating its turns (arrival to
   * last token, on the server's clock), and milliseconds from each last token until the call resumed.
   */
  readonly backend = new Map<string, { generationMs: number; notifyLagMs: number; turns: number }>();
  /** performance.now() of each conversation's first turn, in order (when new work reached the server). */
  readonly starts: { at: number; tokensDecoded: number }[] = [];

  constructor(private readonly opts: SimulatedPolicyOptions) {
    this.rand = seededRandom(opts.seed);
  }

  private completionLength(): number {
    // Box–Muller normal → log-normal.
    const u = Math.max(1e-12, this.rand());
    const z = Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * this.rand());
    return Math.max(4, Math.min(4000, Math.round(this.opts.medianCompletionTokens * Math.exp(this.opts.sigma * z))));
  }

  private pushFakeTokens(into: number[], n: number): number[] {
    for (let i = 0; i < n; i++) into.push(1000 + Math.floor(this.rand() * 30000));
    return into;
  }

  private next(task: Tau2Task | undefined, c: Conversation): Partial<ChatMessage> {
    const actions = task?.evaluation_criteria?.actions ?? [];
    if (c.step === 0) return { content: 'Sure, I can help. To verify your identity, could you tell me your email, or your name and zip code?' };
    if (c.extra > 0) {
      c.extra--;
      return { content: 'Thanks. Could you confirm the details of your request once more?' };
    }
    const i = c.step - 1;
    if (i < actions.length) {
      const a = actions[i]!;
      return { toolCalls: [{ id: `call_${c.step}`, name: a.name, argumentsJson: JSON.stringify(a.arguments) }] as ChatMessage['toolCalls'] };
    }
    const info = (task?.evaluation_criteria?.communicate_info ?? []).join(', ');
    if (i === actions.length) return { content: `All done${info ? `: ${info}` : ''}. Is there anything else I can help you with?` };
    return { content: 'Thank you for contacting us. ###STOP###' };
  }

  async generate(req: MessageInitShape<typeof GenerateRequestSchema>): Promise<GenerateResponse> {
    const id = req.conversationId ?? '';
    let c = this.conversations.get(id);
    if (c) {
      // Most recently used last, so the bound below drops conversations that ended long ago.
      this.conversations.delete(id);
      this.conversations.set(id, c);
    } else {
      c = { tokens: [], seen: 0, step: 0, extra: 0 };
      while (this.rand() < this.opts.extraTurnProbability && c.extra < 50) c.extra++;
      this.conversations.set(id, c);
      if (this.conversations.size > MAX_CONVERSATIONS) this.conversations.delete(this.conversations.keys().next().value as string);
      this.starts.push({ at: performance.now(), tokensDecoded: this.opts.server.tokensDecoded });
    }
    const messages = (req.messages ?? []) as ChatMessage[];
    for (const m of messages.slice(c.seen)) {
      if (m.role === Role.ASSISTANT && m.tokenIds?.length) continue; // already in the sequence
      this.pushFakeTokens(c.tokens, 4 + Math.ceil((m.content?.length ?? 0) / 4));
    }
    c.seen = messages.length;
    // The prompt is copied once the tokens are decoded, not held through the wait: a real server's reply
    // is decoded then too, and thousands of ids kept alive across a generation only make garbage that lives.
    const promptLength = c.tokens.length;
    const reply = this.next(this.opts.tasks.get(taskIdOf(id)), c);
    c.step++;
    const n = this.completionLength();
    const timing = await this.opts.server.decode(n);
    const b = this.backend.get(id) ?? { generationMs: 0, notifyLagMs: 0, turns: 0 };
    b.generationMs += timing.finishedMs - timing.arrivedMs;
    b.notifyLagMs += performance.now() - timing.finishedMs;
    b.turns++;
    this.backend.set(id, b);
    const prompt = c.tokens.slice(0, promptLength);
    const completion = this.pushFakeTokens([], n);
    c.tokens.push(...completion);
    if (reply.content?.includes('###STOP###')) this.conversations.delete(id); // the agent ends the episode here
    const res: MessageInitShape<typeof GenerateResponseSchema> = {
      promptTokenIds: prompt,
      completionTokenIds: completion,
      completionLogprobs: completion.map(() => -this.rand()),
      message: { role: Role.ASSISTANT, content: reply.content ?? '', toolCalls: reply.toolCalls ?? [] },
      finishReason: reply.toolCalls ? 'tool_calls' : 'stop',
      policyVersion: this.opts.version?.() ?? 0n,
    };
    return create(GenerateResponseSchema, res);
  }

  /** Forgets a conversation's state. */
  forget(conversationId: string): void {
    this.conversations.delete(conversationId);
  }
}
