// The episode driver: one (task, sample) conversation between the policy, the simulated user and the
// sandbox, following DESIGN §2 (MUA and τ² modes), ending in a scored Trajectory.

import { create, type MessageInitShape } from '@bufbuild/protobuf';
import { ParleyError } from '../core/errors.js';
import { withRetry, type RetryOptions } from '../core/retry.js';
import { Role, type ChatMessage, type ToolSchema } from '../core/gen/parley/v1/chat_pb.js';
import { ChatMessageSchema } from '../core/gen/parley/v1/chat_pb.js';
import { TrajectorySchema, type RolloutTask } from '../core/gen/parley/v1/rollout_pb.js';
import { Termination } from '../core/gen/parley/v1/sandbox_pb.js';
import { UserStop } from '../core/gen/parley/v1/usersim_pb.js';
import type { EpisodePorts } from './ports.js';
import { GREETING, agentSystemPrompt } from './prompts.js';
import { TrajectoryBuilder } from './trajectory-builder.js';

export type TrajectoryInit = MessageInitShape<typeof TrajectorySchema>;

export interface EpisodeOptions {
  /** τ² limits: message hops (tau2's step_count; a backstop in MUA mode) and tool errors (τ² mode only). */
  maxSteps: number;
  maxToolErrors: number;
  /** Context limit in tokens (the episode ends with CONTEXT_LIMIT past it). */
  maxContextTokens: number;
  /** Sampling for the policy. */
  temperature: number;
  topP: number;
  maxTokensPerTurn: number;
  /** Retries of each actor call on retryable errors before the episode is handed back (nak). */
  retry: RetryOptions;
  worker: string;
  /**
   * Ends the episode at once (a crashed worker, a drain that timed out): it makes no further calls, not
   * even to close its session, and rejects with EpisodeAbortedError. A call already in flight is abandoned.
   */
  signal?: AbortSignal;
}

export const DEFAULT_EPISODE_OPTIONS: EpisodeOptions = {
  maxSteps: 200,
  maxToolErrors: 10,
  maxContextTokens: 32768,
  temperature: 1,
  topP: 1,
  maxTokensPerTurn: 1024,
  retry: { attempts: 4, baseDelayMs: 100, maxDelayMs: 2000 },
  worker: 'worker',
};

/** A retryable failure that outlived its retries: the worker naks the task so another attempt runs later. */
export class TransientEpisodeError extends Error {
  override name = 'TransientEpisodeError';
  constructor(override readonly cause: ParleyError) {
    super(`transient failure: ${cause.message}`);
  }
}

/** The episode was aborted through EpisodeOptions.signal; its task is someone else's to end. */
export class EpisodeAbortedError extends Error {
  override name = 'EpisodeAbortedError';
  constructor() {
    super('episode aborted');
  }
}

/** Resolves `p`, or rejects with EpisodeAbortedError as soon as `signal` fires (p is then left to settle unobserved). */
function unlessAborted<T>(p: Promise<T>, signal: AbortSignal | undefined): Promise<T> {
  if (!signal) return p;
  if (signal.aborted) {
    p.catch(() => undefined);
    return Promise.reject(new EpisodeAbortedError());
  }
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(new EpisodeAbortedError());
    signal.addEventListener('abort', onAbort, { once: true });
    p.then(
      (v) => {
        signal.removeEventListener('abort', onAbort);
        resolve(v);
      },
      (e: unknown) => {
        signal.removeEventListener('abort', onAbort);
        reject(e);
      },
    );
  });
}

export interface TaskInfo {
  scenario: string;
  taskJson: string;
}

/** The trajectory id (dedup key) of a rollout task. */
export function trajectoryId(t: Pick<RolloutTask, 'run' | 'taskId' | 'groupId' | 'sampleIndex'>): string {
  return `${t.run}/${t.taskId}/${t.groupId}/${t.sampleIndex}`;
}

const USER_STOPS: Partial<Record<UserStop, Termination>> = {
  [UserStop.STOP]: Termination.USER_STOP,
  [UserStop.TRANSFER]: Termination.TRANSFER,
  [UserStop.OUT_OF_SCOPE]: Termination.OUT_OF_SCOPE,
};
/** Terminations after which the simulator already considers the conversation over. */
const USER_ENDED = new Set([Termination.USER_STOP, Termination.OUT_OF_SCOPE]);

/** A domain's tools and the agent's system prompt built from its policy, as a sandbox answered them. */
interface DomainSchema {
  digest: string;
  tools: ToolSchema[];
  systemPrompt: string;
}

/** Per sandbox client: the schemas of the domains it answered, by domain name (see OpenSessionRequest.known_schema_digest). */
const schemaCaches = new WeakMap<EpisodePorts['sandbox'], Map<string, DomainSchema>>();

function domainSchemas(sandbox: EpisodePorts['sandbox']): Map<string, DomainSchema> {
  let m = schemaCaches.get(sandbox);
  if (!m) schemaCaches.set(sandbox, (m = new Map()));
  return m;
}

/**
 * The schema an OpenSession answer stands for: the cached one when the digest matched (the sandbox then
 * leaves tools and policy out), else the answer's own (cached when the sandbox gave a digest).
 */
function schemaOf(
  cache: Map<string, DomainSchema>,
  domain: string,
  answer: { tools: ToolSchema[]; policy: string; schemaDigest: string },
  known: DomainSchema | undefined,
): DomainSchema {
  if (known && answer.schemaDigest === known.digest) return known;
  const schema = { digest: answer.schemaDigest, tools: answer.tools, systemPrompt: agentSystemPrompt(answer.policy) };
  if (answer.schemaDigest) cache.set(domain, schema);
  return schema;
}

/**
 * Runs one episode and returns its Trajectory. Retryable actor failures are retried, then thrown as
 * TransientEpisodeError (the caller naks); permanent ones end the episode with termination ERROR
 * (`error:<kind>` in termination_detail) and reward 0. A user-simulator failure ends it with USER_SIMULATOR_ERROR.
 *
 * Ends by mode. tau2: the user's stop tokens, max_steps and max_errors (counted and checked as tau2's
 * orchestrator does), no turn horizon, and a terminal tool or the agent's ###STOP### end nothing; only stops
 * are scored. mua (MUA-RL): the user's stop tokens, a terminal tool, the horizon over user replies plus
 * tool executions, a reply cut at max_tokens, a malformed tool call; every end but ERROR is scored.
 */
export async function runEpisode(
  ports: EpisodePorts,
  task: RolloutTask,
  info: TaskInfo,
  opts: EpisodeOptions = DEFAULT_EPISODE_OPTIONS,
  attempt = 1,
): Promise<TrajectoryInit> {
  const id = trajectoryId(task);
  const started = performance.now();
  const timings = { policyMs: 0, userMs: 0, toolMs: 0, totalMs: 0 };
  // `timed` false: the caller accounts for the time (a call that runs beside another).
  const call = async <T>(what: 'policy' | 'user' | 'tool', fn: () => Promise<T>, timed = true): Promise<T> => {
    const t0 = performance.now();
    try {
      if (opts.signal?.aborted) throw new EpisodeAbortedError();
      return await unlessAborted(withRetry(fn, { ...opts.retry, signal: opts.signal }), opts.signal);
    } catch (e) {
      if (e instanceof EpisodeAbortedError) throw e;
      const err = ParleyError.from(e);
      if (err.retryable) throw new TransientEpisodeError(err);
      throw Object.assign(err, { actor: what });
    } finally {
      const dt = timed ? performance.now() - t0 : 0;
      if (what === 'policy') timings.policyMs += dt;
      else if (what === 'user') timings.userMs += dt;
      else timings.toolMs += dt;
    }
  };

  const conversationId = `${id}#${attempt}`;
  // The user simulator starts while the sandbox opens: the two calls do not depend on each other. Only the
  // time spent waiting for it after the sandbox answered counts as user time.
  const userStart = call('user', () =>
    ports.user.start({
      conversationId,
      domain: task.domain,
      taskId: task.taskId,
      scenario: info.scenario,
      taskJson: info.taskJson,
      greeting: GREETING,
      firstUtterance: task.firstUtterance,
      seed: task.seed,
    }),
    false,
  );
  userStart.catch(() => undefined); // awaited below, unless the sandbox fails first
  // Releases the conversation once its Start settled (an End before it would find nothing).
  const endUser = () =>
    void userStart.then(
      () => ports.user.end?.({ conversationId }).catch(() => undefined),
      () => undefined,
    );

  // A group shares one base session (opened idempotently); every sample forks it, so all start identical.
  // One call opens the base and forks it; a sandbox that predates `fork` answers without a copy. The
  // domain's tools and policy come once per sandbox client: later opens send their digest and get none.
  const schemas = domainSchemas(ports.sandbox);
  const openSample = async () => {
    const known = schemas.get(task.domain);
    const base = await call('tool', () =>
      ports.sandbox.openSession({ domain: task.domain, taskId: task.taskId, sessionId: `${task.run}/${task.groupId}/base`, fork: true, knownSchemaDigest: known?.digest ?? '' }),
    );
    const sessionId = base.forkSessionId || (await call('tool', () => ports.sandbox.forkSession({ sessionId: base.sessionId, count: 1 }))).sessionIds[0]!;
    return { sessionId, schema: schemaOf(schemas, task.domain, base, known) };
  };
  const { sessionId, schema } = await openSample().catch((e: unknown) => {
    if (!(e instanceof EpisodeAbortedError)) endUser();
    throw e;
  });
  const tools = schema.tools;

  const messages: ChatMessage[] = [
    create(ChatMessageSchema, { role: Role.SYSTEM, content: schema.systemPrompt }),
    create(ChatMessageSchema, { role: Role.ASSISTANT, content: GREETING }),
  ];
  const builder = new TrajectoryBuilder();
  const versions: bigint[] = [];
  let termination = Termination.UNSPECIFIED;
  let detail = '';
  let turns = 0;
  let toolErrors = 0;
  let gapRole = 'user';
  const tau2 = task.mode === 'tau2';
  // tau2's step_count (orchestrator.py Orchestrator.step): one per hop, i.e. per user message, per agent
  // message and per environment answer to a tool-call message (however many calls it held).
  let steps = 0;
  // MUA-RL's current_turns (verl sglang_rollout.py _async_rollout_a_request, zzwkk/MUA-RL): one per user
  // reply and one per tool execution; the horizon bounds it. The first user message is the prompt's.
  let counted = 0;
  // tau2 orchestrator.py Orchestrator._check_termination, called after every step that does not wait for
  // the environment: max_steps, then max_errors, each overriding what the step decided (a user stop on the
  // 200th step ends as MAX_STEPS there too). MUA-RL has neither limit; max_steps stays as a backstop there.
  const checkLimits = () => {
    if (steps >= opts.maxSteps) termination = Termination.MAX_STEPS;
    if (tau2 && toolErrors >= opts.maxToolErrors) termination = Termination.TOO_MANY_ERRORS;
  };

  try {
    const waited = performance.now();
    const first = await userStart;
    timings.userMs += performance.now() - waited;
    messages.push(create(ChatMessageSchema, { role: Role.USER, content: first.message?.content ?? '' }));
    steps++;
    if (USER_STOPS[first.stop]) termination = USER_STOPS[first.stop]!;
    checkLimits();

    while (termination === Termination.UNSPECIFIED) {
      // The turn horizon is MUA's (ScalingInter-RL's) alone: tau2 has none, whatever the task carries.
      if (!tau2 && task.horizon > 0 && counted >= task.horizon) {
        termination = Termination.MAX_TURNS;
        break;
      }
      const gen = await call('policy', () =>
        ports.policy.generate({
          conversationId,
          messages,
          tools,
          sampling: { temperature: opts.temperature, topP: opts.topP, maxTokens: opts.maxTokensPerTurn, seed: task.seed + BigInt(turns) },
          firstToolCallOnly: !tau2,
          minPolicyVersion: task.minPolicyVersion,
        }),
      );
      turns++;
      steps++;
      versions.push(gen.policyVersion);
      builder.addTurn(gen.promptTokenIds, gen.completionTokenIds, gen.completionLogprobs, gapRole);
      const reply = gen.message ?? create(ChatMessageSchema, { role: Role.ASSISTANT });
      messages.push(create(ChatMessageSchema, { ...reply, role: Role.ASSISTANT, tokenIds: gen.completionTokenIds }));
      if (gen.finishReason === 'malformed_tool_call') {
        termination = Termination.MALFORMED_TOOL_CALL;
        detail = gen.parseError;
        break;
      }
      // MUA-RL ends a rollout whose reply hit the token limit (finish_reason "length"); tau2 passes the cut reply on.
      if (!tau2 && gen.finishReason === 'length') {
        termination = Termination.MAX_TOKENS;
        break;
      }
      if (builder.length >= opts.maxContextTokens) {
        termination = Termination.CONTEXT_LIMIT;
        break;
      }
      if (reply.toolCalls.length > 0) {
        gapRole = 'tool';
        const calls = tau2 ? reply.toolCalls : reply.toolCalls.slice(0, 1);
        let terminal = false;
        for (const tc of calls) {
          const out = await call('tool', () => ports.sandbox.call({ sessionId, toolName: tc.name, argumentsJson: tc.argumentsJson, callId: tc.id })).then(
            (r) => ({ output: r.output, error: r.error, terminal: r.terminal }),
            (e: unknown) => {
              // A bad call from the model (unknown tool, bad arguments) is the model's error, shown to it as τ² does.
              if (e instanceof ParleyError && (e.code === 'invalid_argument' || (e.code === 'not_found' && e.field === 'tool_name'))) {
                return { output: `Error: ${e.message}`, error: true, terminal: false };
              }
              throw e;
            },
          );
          if (out.error) toolErrors++;
          terminal ||= out.terminal;
          messages.push(create(ChatMessageSchema, { role: Role.TOOL, content: out.output, toolCallId: tc.id, toolError: out.error }));
        }
        steps++;
        counted += calls.length;
        // MUA-RL ends the rollout at a terminal tool. tau2 returns its output to the agent and goes on: the
        // user simulator ends the conversation with ###TRANSFER### once the agent has told it.
        if (!tau2 && terminal) termination = Termination.TRANSFER;
        checkLimits();
        continue;
      }
      if (reply.content.trim() === '') {
        // Nothing to say and nothing to call: the agent's error (tau2's agent_error), not the user's to answer.
        termination = Termination.AGENT_ERROR;
        detail = 'the agent replied with neither text nor a tool call';
        break;
      }
      // The agent's ###STOP### ends nothing: tau2's LLMAgent never stops (only its solo agent does) and
      // MUA-RL checks the stop word in the user's replies only. The text goes to the user, who may end it.
      checkLimits();
      if (termination !== Termination.UNSPECIFIED) break;
      gapRole = 'user';
      const user = await call('user', () => ports.user.reply({ conversationId, agentMessage: reply }));
      messages.push(create(ChatMessageSchema, { role: Role.USER, content: user.message?.content ?? '' }));
      steps++;
      counted++;
      if (USER_STOPS[user.stop]) termination = USER_STOPS[user.stop]!;
      checkLimits();
    }
  } catch (e) {
    if (e instanceof EpisodeAbortedError) throw e;
    if (e instanceof TransientEpisodeError) {
      // The retry is a new attempt with a new conversation id: this one is over.
      endUser();
      await ports.sandbox.closeSession({ sessionId }).catch(() => undefined);
      throw e;
    }
    const err = ParleyError.from(e);
    const actor = (e as { actor?: string }).actor;
    if (actor === 'policy' && err.code === 'out_of_range') {
      // The prompt filled the context window: a normal (unscored) end, as τ² ends on its limits.
      termination = Termination.CONTEXT_LIMIT;
      detail = err.message;
    } else {
      termination = actor === 'user' ? Termination.USER_SIMULATOR_ERROR : Termination.ERROR;
      detail = `error:${actor ?? 'internal'}:${err.code}: ${err.message}`;
    }
  }

  let reward = 0;
  let components: TrajectoryInit['components'] = [];
  let closed = false;
  // An ERROR (an actor failed for good) is not an end of the conversation and is never scored.
  if (termination !== Termination.ERROR) {
    // Scoring reads only the assistant and user messages (their text and tool calls): the system prompt,
    // the tool outputs and the sampled token ids (thousands per episode) stay here. The same call closes
    // the session. The trajectory has no use for the DB hashes.
    const scored = messages.filter((m) => m.role === Role.ASSISTANT || m.role === Role.USER).map((m) => (m.tokenIds.length > 0 ? { ...m, tokenIds: [] } : m));
    // MUA-RL computes its DB-hash reward for every rollout, however it ended (the reward manager never
    // looks at the finish reason); tau2 scores only stops (evaluator.py), which the sandbox applies unasked.
    const ev = await call('tool', () =>
      ports.sandbox.evaluate({ sessionId, taskId: task.taskId, termination, messages: scored, closeSession: true, omitDbHashes: true, scoreAnyTermination: !tau2 }),
    );
    reward = ev.reward;
    components = ev.components;
    closed = ev.closed;
  }
  if (opts.signal?.aborted) throw new EpisodeAbortedError();
  if (!closed) await ports.sandbox.closeSession({ sessionId }).catch(() => undefined);
  // A conversation the user did not end is released now, not at the simulator's idle TTL (a full
  // simulator refuses new ones). Not awaited: nothing here depends on it, and a failure only delays that.
  if (!USER_ENDED.has(termination)) endUser();
  const built = builder.build();
  timings.totalMs = performance.now() - started;
  if (built.prefixViolations > 0) detail = `${detail}${detail ? '; ' : ''}prefix_violations:${built.prefixViolations}`;
  return {
    id,
    task,
    tokenIds: built.tokenIds,
    lossMask: built.lossMask,
    logprobs: built.logprobs,
    spans: built.spans,
    reward,
    components,
    termination,
    terminationDetail: detail,
    turns,
    policyVersions: versions,
    timings,
    worker: opts.worker,
  };
}
