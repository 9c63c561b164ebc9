// The Sandbox gRPC service: domains loaded once, per-session copy-on-write state, tool calls validated
// before they run, tau2 evaluation, limits with precise errors, Prometheus metrics.

import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { basename, join, resolve } from 'node:path';
import { ParleyError } from '../core/errors.js';
import type { CallContext } from '../core/grpc.js';
import { Counter, Gauge, Histogram, getOrCreate, metricsRegistry, type Registry } from '../core/metrics.js';
import { Role, type ChatMessage } from '../core/gen/parley/v1/chat_pb.js';
import { Termination } from '../core/gen/parley/v1/sandbox_pb.js';
import type { SandboxConfig } from './config.js';
import type { Domain, Tau2Task } from './domain.js';
import { ToolError } from './domain.js';
import { echo, echoAscii } from './echo.js';
import { loadDomain } from './domains/index.js';
import { Environment } from './environment.js';
import { cachedGoldState, evaluateEpisode, type EvalMessage, type GoldCache } from './evaluate.js';
import { JsonDepthError, parsePyJson } from './pyjson.js';
import { renderScenario } from './scenario.js';
import { SessionStore } from './sessions.js';
import { defaultTasksFile, loadSplits, loadTasks } from './tasks.js';
import { argumentStringBytes, ToolArgumentError } from './tool-runner.js';


export interface LoadedDomain {
  domain: Domain;
  /** The file name of the task set served (ListTasks reports it). */
  tasksFile: string;
  tasks: Map<string, Tau2Task>;
  splits: Record<string, string[]>;
  initialHash: string;
  goldCache: GoldCache;
}

/** How many answers of session-closing Evaluate calls are kept for retries. */
const CLOSED_BY_EVALUATE_KEPT = 4096;

interface EvaluateAnswer {
  closed: boolean;
  reward: number;
  components: { name: string; value: number; inBasis: boolean; detail: string }[];
  dbHash: string;
  goldDbHash: string;
  skipped: string[];
}

/** tau2 scores only these ends (evaluator.py: AGENT_STOP and USER_STOP; the user's three tokens are all USER_STOP there). */
const STOPS = new Set([Termination.AGENT_STOP, Termination.USER_STOP, Termination.TRANSFER, Termination.OUT_OF_SCOPE]);

/** Loads every configured domain. Throws naming the folder or file that is missing or invalid. */
export function loadDomains(config: SandboxConfig): Map<string, LoadedDomain> {
  const out = new Map<string, LoadedDomain>();
  for (const entry of config.domains) {
    const spec = typeof entry === 'string' ? { name: entry } : entry;
    const dir = resolve(spec.dataDir ?? join(config.dataDir, spec.name));
    if (!existsSync(dir)) throw new Error(`domain '${spec.name}': data folder ${dir} does not exist (set dataDir / PARLEY_DATA_DIR to a tau2 data folder)`);
    const domain = loadDomain(spec.name, dir);
    // τ² airline and retail default to the release task set (the leaderboard's basis, DB and COMMUNICATE).
    const tasksFile = spec.tasksFile ? resolve(spec.tasksFile) : defaultTasksFile(dir);
    const tasks = loadTasks(tasksFile);
    out.set(spec.name, {
      domain,
      tasksFile: basename(tasksFile),
      tasks: new Map(tasks.map((t) => [t.id, t])),
      splits: loadSplits(dir),
      initialHash: new Environment(domain).dbHash(),
      goldCache: new Map(),
    });
  }
  return out;
}

function toEvalMessages(messages: ChatMessage[]): EvalMessage[] {
  const roles: Record<number, EvalMessage['role']> = {
    [Role.SYSTEM]: 'system',
    [Role.USER]: 'user',
    [Role.ASSISTANT]: 'assistant',
    [Role.TOOL]: 'tool',
  };
  return messages.map((m, i) => {
    const role = roles[m.role];
    if (!role) throw new ParleyError('invalid_argument', `messages[${i}].role: must be one of SYSTEM, USER, ASSISTANT, TOOL`, { field: `messages[${i}].role` });
    return { role, content: m.content, toolCalls: m.toolCalls.map((c) => ({ name: c.name, argumentsJson: c.argumentsJson })) };
  });
}

function sandboxMetrics(registry: Registry) {
  return {
    calls: getOrCreate(registry, 'parley_sandbox_tool_calls_total', () =>
      new Counter({ name: 'parley_sandbox_tool_calls_total', help: 'Tool calls by domain, tool and outcome (ok, tool_error, rejected).', labelNames: ['domain', 'tool', 'outcome'], registers: [] }),
    ),
    callSeconds: getOrCreate(registry, 'parley_sandbox_tool_call_duration_seconds', () =>
      new Histogram({ name: 'parley_sandbox_tool_call_duration_seconds', help: 'Tool execution time.', labelNames: ['domain'], buckets: [1e-5, 5e-5, 1e-4, 5e-4, 1e-3, 5e-3, 0.01, 0.05], registers: [] }),
    ),
    sessions: getOrCreate(registry, 'parley_sandbox_sessions_active', () =>
      new Gauge({ name: 'parley_sandbox_sessions_active', help: 'Open sessions.', registers: [] }),
    ),
    opened: getOrCreate(registry, 'parley_sandbox_sessions_opened_total', () =>
      new Counter({ name: 'parley_sandbox_sessions_opened_total', help: 'Sessions opened (including forks).', labelNames: ['domain', 'kind'], registers: [] }),
    ),
    rewards: getOrCreate(registry, 'parley_sandbox_evaluation_reward_ratio', () =>
      new Histogram({ name: 'parley_sandbox_evaluation_reward_ratio', help: 'Rewards computed by Evaluate.', labelNames: ['domain'], buckets: [0, 0.5, 1], registers: [] }),
    ),
  };
}

/**
 * The Sandbox implementation object, served by grpc-js (and by NATS request-reply later) unchanged.
 * Every handler validates its input and throws ParleyError with the field at fault.
 */
/** Most task ids one ListTasks may name. */
const MAX_LISTED_IDS = 10_000;

export class SandboxService {
  readonly sessions: SessionStore;
  private readonly metrics: ReturnType<typeof sandboxMetrics>;

  constructor(
    readonly config: SandboxConfig,
    readonly domains: Map<string, LoadedDomain>,
    registry: Registry = metricsRegistry(),
  ) {
    this.sessions = new SessionStore({
      maxSessions: config.maxSessions,
      idleTtlMs: config.sessionIdleTtlMs,
      maxCallsPerSession: config.maxCallsPerSession,
      maxStateBytes: config.maxSessionStateBytes,
    });
    this.metrics = sandboxMetrics(registry);
  }

  private domain(name: string, field = 'domain'): LoadedDomain {
    if (!name) throw new ParleyError('invalid_argument', `${field}: required (one of ${[...this.domains.keys()].join(', ')})`, { field });
    const d = this.domains.get(name);
    if (!d) throw new ParleyError('not_found', `${field}: unknown domain '${echo(name)}' (loaded: ${[...this.domains.keys()].join(', ')})`, { field });
    return d;
  }

  private task(d: LoadedDomain, id: string, field = 'task_id'): Tau2Task {
    const t = d.tasks.get(id);
    if (!t) throw new ParleyError('not_found', `${field}: no task '${echo(id)}' in domain '${d.domain.name}' (${d.tasks.size} tasks)`, { field });
    return t;
  }

  private readonly schemas = new Map<Domain, { tools: { name: string; description: string; parametersJson: string; toolType: string }[]; digest: string }>();

  /** The domain's tool schemas and the digest of them with its policy, built once (every OpenSession answers them). */
  private toolSchemas(d: Domain) {
    let out = this.schemas.get(d);
    if (!out) {
      const tools = d.tools.map((t) => ({ name: t.name, description: t.description, parametersJson: JSON.stringify(t.parameters), toolType: t.type }));
      const digest = createHash('sha256').update(JSON.stringify([d.name, d.policy, tools])).digest('hex').slice(0, 32);
      out = { tools, digest };
      this.schemas.set(d, out);
    }
    return out;
  }

  readonly impl = {
    listDomains: () => ({
      domains: [...this.domains.values()].map((d) => ({
        name: d.domain.name,
        policy: d.domain.policy,
        tools: this.toolSchemas(d.domain).tools,
        taskCount: d.tasks.size,
        initialDbHash: d.initialHash,
      })),
    }),

    listTasks: (req: { domain: string; split: string; taskIds?: string[]; idsOnly?: boolean }) => {
      const d = this.domain(req.domain);
      let tasks = [...d.tasks.values()];
      if (req.split) {
        const ids = d.splits[req.split];
        if (!ids) throw new ParleyError('not_found', `split: no split '${echo(req.split)}' (available: ${Object.keys(d.splits).join(', ') || 'none'})`, { field: 'split' });
        const keep = new Set(ids);
        tasks = tasks.filter((t) => keep.has(t.id));
      }
      if (req.taskIds?.length) {
        if (req.taskIds.length > MAX_LISTED_IDS) throw new ParleyError('invalid_argument', `task_ids: at most ${MAX_LISTED_IDS} ids per call, got ${req.taskIds.length}`, { field: 'task_ids' });
        const inScope = new Map(tasks.map((t) => [t.id, t]));
        tasks = req.taskIds.map((id, i) => {
          const t = inScope.get(id);
          if (!t) throw new ParleyError('not_found', `task_ids[${i}]: no task '${echo(id)}' in domain '${echo(req.domain)}'${req.split ? ` split '${echo(req.split)}'` : ''}`, { field: `task_ids[${i}]` });
          return t;
        });
      }
      const listed = tasks.map((t) => (req.idsOnly ? { id: t.id, scenario: '', taskJson: '' } : { id: t.id, scenario: renderScenario(t), taskJson: JSON.stringify(t) }));
      return { tasks: listed, tasksFile: d.tasksFile };
    },

    openSession: (req: { domain: string; taskId: string; sessionId: string; fork?: boolean; knownSchemaDigest?: string }) => {
      const d = this.domain(req.domain);
      const task = req.taskId ? this.task(d, req.taskId) : undefined;
      if (req.sessionId) {
        SessionStore.checkId(req.sessionId);
        // Idempotent for redelivered opens: the same id, domain and task returns the live session.
        const existing = this.tryGet(req.sessionId);
        if (existing && existing.domain === req.domain && existing.task?.id === task?.id) return this.opened(existing.id, d, existing.env, task, req);
      }
      const env = new Environment(d.domain);
      if (task) {
        try {
          env.applyInitialState(task);
        } catch (e) {
          throw new ParleyError('failed_precondition', `task_id: initial state of task '${task.id}' cannot be applied: ${echo((e as Error).message)}`, { field: 'task_id' });
        }
      }
      // A base opened to be forked may be closed to make room at the session limit: a later sample reopens it.
      const s = this.sessions.add(req.domain, task, env, req.sessionId || undefined, { evictable: req.fork === true && req.sessionId !== '' });
      this.metrics.opened.inc({ domain: req.domain, kind: 'open' });
      this.metrics.sessions.set(this.sessions.size);
      if (task) this.warmGold(d, task);
      return this.opened(s.id, d, env, task, req);
    },

    forkSession: (req: { sessionId: string; count: number }) => {
      const count = req.count;
      if (!Number.isInteger(count) || count < 1 || count > this.config.maxForkCount) {
        throw new ParleyError('invalid_argument', `count: must be between 1 and ${this.config.maxForkCount}, got ${count}`, { field: 'count' });
      }
      return { sessionIds: this.fork(req.sessionId, count) };
    },

    call: (req: { sessionId: string; toolName: string; argumentsJson: string; callId: string }) => {
      const s = this.sessions.get(req.sessionId);
      const bytes = Buffer.byteLength(req.argumentsJson, 'utf8');
      if (bytes > this.config.maxArgumentBytes) {
        this.metrics.calls.inc({ domain: s.domain, tool: 'oversize', outcome: 'rejected' });
        throw new ParleyError('resource_exhausted', `arguments_json: ${bytes} bytes exceeds the limit of ${this.config.maxArgumentBytes}`, { field: 'arguments_json' });
      }
      if (!req.toolName) throw new ParleyError('invalid_argument', 'tool_name: required', { field: 'tool_name' });
      const tool = s.env.domain.tools.find((t) => t.name === req.toolName);
      if (!tool) {
        this.metrics.calls.inc({ domain: s.domain, tool: 'unknown', outcome: 'rejected' });
        // tau2's words (ToolKit: "Tool '<name>' not found."): the rollout shows the agent `Error: ` + this
        // message, byte for byte what tau2's environment answers (TOOLS.md §0.2). The field names the culprit.
        throw new ParleyError('not_found', `Tool '${echo(req.toolName)}' not found.`, { field: 'tool_name' });
      }
      let args: unknown;
      try {
        args = parsePyJson(req.argumentsJson.trim() === '' ? '{}' : req.argumentsJson);
      } catch (e) {
        this.metrics.calls.inc({ domain: s.domain, tool: tool.name, outcome: 'rejected' });
        const why = e instanceof JsonDepthError ? e.message : `not valid JSON (${echo((e as Error).message)})`;
        throw new ParleyError('invalid_argument', `arguments_json: ${why}`, { field: 'arguments_json' });
      }
      // What a WRITE call may store counts against the session's state budget; a refused write runs nothing.
      const stored = tool.type === 'WRITE' ? argumentStringBytes(args) : 0;
      if (stored > 0) this.sessions.checkStateGrowth(s, stored);
      this.sessions.countCall(s);
      const started = performance.now();
      let result;
      try {
        result = s.env.call(tool.name, args);
      } catch (e) {
        this.metrics.calls.inc({ domain: s.domain, tool: tool.name, outcome: 'rejected' });
        if (e instanceof ToolArgumentError) throw new ParleyError('invalid_argument', `arguments_json: ${echo(e.message)}`, { field: `arguments_json.${echoAscii(e.field)}` });
        if (e instanceof ToolError) throw new ParleyError('not_found', echo(e.message), { field: 'tool_name' });
        throw e;
      }
      if (stored > 0 && !result.error) this.sessions.addStateBytes(s, stored);
      this.metrics.callSeconds.observe({ domain: s.domain }, (performance.now() - started) / 1000);
      this.metrics.calls.inc({ domain: s.domain, tool: tool.name, outcome: result.error ? 'tool_error' : 'ok' });
      return { output: result.output, error: result.error, callId: req.callId, terminal: tool.terminal ?? false, callsMade: s.calls };
    },

    evaluate: (req: { sessionId: string; taskId: string; termination: Termination; messages: ChatMessage[]; closeSession?: boolean; omitDbHashes?: boolean; scoreAnyTermination?: boolean }) => {
      // A retried Evaluate whose first attempt closed the session gets the same answer again.
      const done = this.closedByEvaluate.get(req.sessionId);
      if (done && !this.tryGet(req.sessionId)) return done;
      const s = this.sessions.get(req.sessionId);
      const d = this.domain(s.domain);
      const task = req.taskId ? this.task(d, req.taskId) : s.task;
      if (!task) throw new ParleyError('invalid_argument', 'task_id: required when the session was opened without a task', { field: 'task_id' });
      if (!(req.termination in Termination)) throw new ParleyError('invalid_argument', `termination: unknown value ${req.termination}`, { field: 'termination' });
      // MUA mode asks for a score however the episode ended (MUA-RL's reward has no termination gate).
      const scored = STOPS.has(req.termination) || req.scoreAnyTermination === true;
      const r = evaluateEpisode(s.env, task, toEvalMessages(req.messages), scored, d.goldCache, { hashes: req.omitDbHashes !== true });
      this.metrics.rewards.observe({ domain: s.domain }, r.reward);
      const out: EvaluateAnswer = {
        closed: req.closeSession === true,
        reward: r.reward,
        components: r.components.map((c) => ({ name: c.name, value: c.value, inBasis: c.inBasis, detail: c.detail })),
        dbHash: r.dbHash,
        goldDbHash: r.goldDbHash,
        skipped: r.skipped,
      };
      if (req.closeSession) {
        this.sessions.close(s.id);
        this.metrics.sessions.set(this.sessions.size);
        this.closedByEvaluate.set(s.id, out);
        if (this.closedByEvaluate.size > CLOSED_BY_EVALUATE_KEPT) this.closedByEvaluate.delete(this.closedByEvaluate.keys().next().value!);
      }
      return out;
    },

    closeSession: (req: { sessionId: string }) => {
      const s = this.sessions.close(req.sessionId);
      this.metrics.sessions.set(this.sessions.size);
      return { callsMade: s.calls };
    },
  } satisfies Record<string, (req: any, ctx: CallContext) => unknown>;

  /** The answers of the latest Evaluate calls that closed their session, oldest first (for retries). */
  private readonly closedByEvaluate = new Map<string, EvaluateAnswer>();

  private tryGet(id: string) {
    try {
      return this.sessions.get(id);
    } catch {
      return undefined;
    }
  }

  private opened(id: string, d: LoadedDomain, env: Environment, task: Tau2Task | undefined, req: { fork?: boolean; knownSchemaDigest?: string }) {
    // Hashing a multi-megabyte DB costs milliseconds: reuse the load-time hash when nothing was applied.
    const dbHash = task?.initial_state ? env.dbHash() : d.initialHash;
    const forkSessionId = req.fork ? this.fork(id, 1)[0]! : '';
    const { tools, digest } = this.toolSchemas(d.domain);
    // A client that holds this domain's tools and policy already (same digest) is not sent them again.
    const known = req.knownSchemaDigest === digest;
    return { sessionId: id, tools: known ? [] : tools, policy: known ? '' : d.domain.policy, dbHash, forkSessionId, schemaDigest: digest };
  }

  /** `count` copies of the session `id`, each a new session. */
  private fork(id: string, count: number): string[] {
    const s = this.sessions.get(id);
    // All or nothing for several copies; a single one may make room by closing an idle group base.
    if (count > 1 && this.sessions.size + count > this.config.maxSessions) {
      throw new ParleyError('resource_exhausted', `fork of ${count} would exceed the limit of ${this.config.maxSessions} open sessions`);
    }
    const ids: string[] = [];
    for (let i = 0; i < count; i++) ids.push(this.sessions.add(s.domain, s.task, s.env.fork(), undefined, { stateBytes: s.stateBytes }).id);
    this.metrics.opened.inc({ domain: s.domain, kind: 'fork' }, count);
    this.metrics.sessions.set(this.sessions.size);
    return ids;
  }

  /** Tasks whose gold states are computed after the current call (see warmGold), with their domain. */
  private readonly goldQueued = new Map<Tau2Task, LoadedDomain>();
  private goldTimer: NodeJS.Immediate | undefined;

  /**
   * Replaying a task's gold actions costs most of a millisecond (retail, airline) and used to land on the
   * first Evaluate of each task, in the middle of the episode's closing call. A session opened for a task
   * queues that work for right after its answer has been sent, while the episode runs; Evaluate still
   * computes it itself if it comes first. The gold hashes are left to the first Evaluate that asks for them.
   */
  private warmGold(d: LoadedDomain, task: Tau2Task): void {
    if (d.goldCache.has(task.id) || this.goldQueued.has(task)) return;
    this.goldQueued.set(task, d);
    this.goldTimer ??= setImmediate(() => this.computeQueuedGold());
  }

  /** Computes one queued task's gold hashes per turn of the event loop, so calls in between are not held up. */
  private computeQueuedGold(): void {
    this.goldTimer = undefined;
    const next = this.goldQueued.entries().next();
    if (next.done) return;
    const [task, d] = next.value;
    this.goldQueued.delete(task);
    try {
      cachedGoldState(d.domain, task, d.goldCache);
    } catch {
      // Left to Evaluate, which computes it again and answers the error to its caller.
    }
    if (this.goldQueued.size > 0) this.goldTimer = setImmediate(() => this.computeQueuedGold());
  }

  stop(): void {
    if (this.goldTimer) clearImmediate(this.goldTimer);
    this.goldTimer = undefined;
    this.goldQueued.clear();
    this.sessions.stop();
  }
}
